//! What `/metrics` shows, in the Prometheus text format (prometheus-client):
//! the calls (by method and status code, their latency, those in flight),
//! the group commit (events and appends committed, requests and records per
//! commit, sync durations), and the ledger's state read at each scrape
//! (head position, cases, warnings raised and standing unanswered, each
//! calendar's last covered day, resident memory, build).
//!
//! Names follow Prometheus conventions: a `complaint_ledger_` prefix, base
//! units (seconds, bytes), `_total` on counters. Label values are bounded:
//! a method is named only if the server serves it ("unknown" otherwise), a
//! code is one of gRPC's seventeen.

use crate::ledger::Ledger;
use crate::processes::scrub::ScrubState;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::Registry;
use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// The labels of a call: `service` is the gRPC service's full name. Static
/// strings: labelling a call allocates nothing.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct MethodLabels {
    pub service: &'static str,
    pub method: &'static str,
}

/// A finished call: its method and gRPC status code name (`OK`, `NOT_FOUND`…).
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CallLabels {
    pub service: &'static str,
    pub method: &'static str,
    pub code: &'static str,
}

/// The labels of every served path, kept for the process's life: a
/// server's set of methods is fixed, and servers started again in one
/// process (the tests) share the entries.
fn interned(path: &str) -> MethodLabels {
    use std::collections::HashMap;
    use std::sync::{Mutex, OnceLock};
    static PATHS: OnceLock<Mutex<HashMap<String, MethodLabels>>> = OnceLock::new();
    let mut paths = PATHS
        .get_or_init(Default::default)
        .lock()
        .expect("label table");
    *paths.entry(path.to_string()).or_insert_with(|| {
        let (service, method) = path
            .trim_start_matches('/')
            .split_once('/')
            .unwrap_or(("unknown", "unknown"));
        MethodLabels {
            service: Box::leak(service.to_string().into_boxed_str()),
            method: Box::leak(method.to_string().into_boxed_str()),
        }
    })
}

const UNKNOWN: MethodLabels = MethodLabels {
    service: "unknown",
    method: "unknown",
};

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

/// The metrics of calls, recorded by `api::observe`.
#[derive(Clone)]
pub struct CallMetrics {
    calls: Family<CallLabels, Counter>,
    latency: HistogramFamily<MethodLabels>,
    in_flight: Family<MethodLabels, Gauge>,
    /// The paths the server serves (`/package.Service/Method`).
    known: Arc<HashMap<String, MethodLabels>>,
}

fn latency_histogram() -> Histogram {
    // 100 µs … ~26 s.
    Histogram::new(exponential_buckets(0.0001, 2.0, 19))
}

impl CallMetrics {
    /// The labels of a request path: the service and method it names, or
    /// "unknown" for a path the server does not serve (a client cannot grow
    /// the label set).
    pub fn labels(&self, path: &str) -> MethodLabels {
        self.known.get(path).copied().unwrap_or(UNKNOWN)
    }

    pub fn started(&self, m: &MethodLabels) {
        self.in_flight.get_or_create(m).inc();
    }

    pub fn finished(&self, m: &MethodLabels, code: tonic::Code, seconds: f64) {
        self.in_flight.get_or_create(m).dec();
        self.latency.get_or_create(m).observe(seconds);
        self.calls
            .get_or_create(&CallLabels {
                service: m.service,
                method: m.method,
                code: code_name(code),
            })
            .inc();
    }
}

/// gRPC's name of a status code, as in its specification.
pub fn code_name(code: tonic::Code) -> &'static str {
    use tonic::Code::*;
    match code {
        Ok => "OK",
        Cancelled => "CANCELLED",
        Unknown => "UNKNOWN",
        InvalidArgument => "INVALID_ARGUMENT",
        DeadlineExceeded => "DEADLINE_EXCEEDED",
        NotFound => "NOT_FOUND",
        AlreadyExists => "ALREADY_EXISTS",
        PermissionDenied => "PERMISSION_DENIED",
        ResourceExhausted => "RESOURCE_EXHAUSTED",
        FailedPrecondition => "FAILED_PRECONDITION",
        Aborted => "ABORTED",
        OutOfRange => "OUT_OF_RANGE",
        Unimplemented => "UNIMPLEMENTED",
        Internal => "INTERNAL",
        Unavailable => "UNAVAILABLE",
        DataLoss => "DATA_LOSS",
        Unauthenticated => "UNAUTHENTICATED",
    }
}

/// Every metric of one server.
pub struct Metrics {
    registry: Registry,
    pub calls: CallMetrics,
}

impl Metrics {
    /// The registry of a server over `ledger`, serving the methods of
    /// `descriptors` (and health and reflection).
    pub fn new(
        ledger: Arc<Ledger>,
        scrub: Arc<ScrubState>,
        descriptors: &prost_types::FileDescriptorSet,
    ) -> Self {
        let mut paths = Vec::new();
        for file in &descriptors.file {
            for service in &file.service {
                for method in &service.method {
                    paths.push(format!(
                        "/{}.{}/{}",
                        file.package(),
                        service.name(),
                        method.name()
                    ));
                }
            }
        }
        paths.extend(
            [
                "/grpc.health.v1.Health/Check",
                "/grpc.health.v1.Health/Watch",
                "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
                "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
            ]
            .map(String::from),
        );
        let known: HashMap<String, MethodLabels> = paths
            .into_iter()
            .map(|p| {
                let labels = interned(&p);
                (p, labels)
            })
            .collect();
        let calls = CallMetrics {
            calls: Family::default(),
            latency: Family::new_with_constructor(latency_histogram),
            in_flight: Family::default(),
            known: Arc::new(known),
        };
        let mut registry = Registry::with_prefix("complaint_ledger");
        registry.register(
            "build",
            "The running build",
            Info::new(vec![
                ("version", env!("CARGO_PKG_VERSION").to_string()),
                ("schema_version", crate::ledger::SCHEMA_VERSION.to_string()),
            ]),
        );
        registry.register(
            "grpc_calls",
            "Finished gRPC calls by method and status code",
            calls.calls.clone(),
        );
        registry.register(
            "grpc_call_duration_seconds",
            "gRPC call latency, from the request's arrival to the end of its response",
            calls.latency.clone(),
        );
        registry.register(
            "grpc_calls_in_flight",
            "gRPC calls started and not yet finished",
            calls.in_flight.clone(),
        );
        let stats = ledger.writer_stats();
        registry.register(
            "group_commit_requests",
            "Append requests per group commit",
            stats.commit_requests.clone(),
        );
        registry.register(
            "group_commit_events",
            "Events (records) per group commit",
            stats.commit_records.clone(),
        );
        registry.register(
            "group_commit_sync_duration_seconds",
            "Duration of each group commit's durable sync (store flush and fdatasync)",
            stats.sync_seconds.clone(),
        );
        registry.register_collector(Box::new(LedgerState { ledger, scrub }));
        Self { registry, calls }
    }

    /// The Prometheus text exposition (format 0.0.4).
    pub fn render(&self) -> String {
        let mut out = String::new();
        prometheus_client::encoding::prometheus_text::encode(&mut out, &self.registry)
            .expect("writing to a String cannot fail");
        out
    }
}

/// The ledger's state, read at each scrape.
struct LedgerState {
    ledger: Arc<Ledger>,
    scrub: Arc<ScrubState>,
}

impl std::fmt::Debug for LedgerState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LedgerState")
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CalendarLabels {
    calendar: String,
}

fn counter(
    e: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    value: u64,
) -> Result<(), std::fmt::Error> {
    let c = ConstCounter::new(value);
    c.encode(e.encode_descriptor(name, help, None, c.metric_type())?)
}

fn gauge(
    e: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    value: i64,
) -> Result<(), std::fmt::Error> {
    let g = ConstGauge::new(value);
    g.encode(e.encode_descriptor(name, help, None, g.metric_type())?)
}

impl Collector for LedgerState {
    fn encode(&self, mut e: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let ledger = &self.ledger;
        let s = ledger.writer_stats();
        let load = |c: &std::sync::atomic::AtomicU64| c.load(Ordering::Relaxed);
        let as_i64 = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
        counter(
            &mut e,
            "events_committed",
            "Events durably committed since start",
            load(&s.records),
        )?;
        counter(
            &mut e,
            "appends_committed",
            "Append requests durably committed since start (retries answered from the log excluded)",
            load(&s.requests),
        )?;
        counter(
            &mut e,
            "group_commits",
            "Group commits (one durable sync each) since start",
            load(&s.commits),
        )?;
        counter(
            &mut e,
            "case_state_loads",
            "Case states the writer folded from the log since start because its cache did not hold them",
            load(&s.case_state_loads),
        )?;
        gauge(
            &mut e,
            "case_states_cached",
            "Case states the writer holds (at most --case-cache)",
            as_i64(load(&s.case_states_cached)),
        )?;
        let (facts_cached, fact_loads) = ledger.board().cache_stats();
        counter(
            &mut e,
            "case_fact_loads",
            "Cases' facts the policy board folded from the log since start because its cache did not hold them",
            fact_loads,
        )?;
        gauge(
            &mut e,
            "case_facts_cached",
            "Cases' facts the policy board holds (at most --board-cache)",
            as_i64(facts_cached),
        )?;
        gauge(
            &mut e,
            "board_position",
            "Log position the policy board on disk reached",
            as_i64(ledger.board().position()),
        )?;
        gauge(
            &mut e,
            "warning_position",
            "Log position up to which early warning folded every fact and appended what it raised",
            as_i64(
                crate::processes::warning_table::stored_position(ledger.log().as_ref())
                    .unwrap_or(0),
            ),
        )?;
        counter(
            &mut e,
            "adopted_records",
            "Records other nodes of a clustered ledger committed, adopted into this node's copy since start",
            load(&s.adopted),
        )?;
        counter(
            &mut e,
            "fetched_back_records",
            "Records this node acknowledged that its local copy lost in a crash, fetched back from the clustered stream at start",
            load(&s.fetched_back),
        )?;
        counter(
            &mut e,
            "slow_syncs",
            "Group-commit syncs of 100 ms or more since start",
            s.syncs.slow(),
        )?;
        gauge(
            &mut e,
            "head_position",
            "Position of the last committed record the read models hold (the log's size they show)",
            as_i64(ledger.tree_size()),
        )?;
        gauge(
            &mut e,
            "committed_position",
            "Position of the last record made durable; appends are answered here, and head_position follows once the read models hold it",
            as_i64(ledger.committed()),
        )?;
        gauge(
            &mut e,
            "cases",
            "Cases in the ledger",
            as_i64(ledger.index().len() as u64),
        )?;
        gauge(
            &mut e,
            "closed_cases",
            "Cases whose status is closed",
            as_i64(ledger.index().closed()),
        )?;
        // A board that cannot be read leaves these two out of the scrape,
        // rather than the scrape out: the error is logged.
        match crate::queries::board::warning_counts(ledger, crate::time::now_nanos()) {
            Ok((raised, unanswered)) => {
                counter(
                    &mut e,
                    "warnings_raised",
                    "Early warnings raised (WarningRaised events in the log)",
                    raised,
                )?;
                gauge(
                    &mut e,
                    "warnings_unanswered",
                    "Warnings past their time to escalate without the escalation they require",
                    as_i64(unanswered),
                )?;
            }
            Err(err) => tracing::error!(error = %err, "metrics: the policy board cannot be read"),
        }
        let horizon = ConstGauge::new(0i64);
        let mut family = e.encode_descriptor(
            "calendar_coverage_end_timestamp_seconds",
            "When each calendar in use stops covering (local midnight after its last covered day); deadlines past it are provisional until the next holiday notice",
            None,
            horizon.metric_type(),
        )?;
        for (id, end) in ledger.policy().calendar_horizons() {
            ConstGauge::new(end).encode(family.encode_family(&CalendarLabels { calendar: id })?)?;
        }
        let scrub = self.scrub.status();
        counter(
            &mut e,
            "scrub_passes",
            "Full passes of the background scrub since start (the whole log verified again)",
            scrub.passes,
        )?;
        gauge(
            &mut e,
            "scrub_last_pass_timestamp_seconds",
            "When the background scrub last finished a full pass (0: none since start)",
            scrub.last_pass_at.map(|t| t.seconds).unwrap_or(0),
        )?;
        counter(
            &mut e,
            "scrub_tail_passes",
            "Tail passes of the background scrub since start (the records written since the verified-through mark verified)",
            scrub.tail_passes,
        )?;
        gauge(
            &mut e,
            "verified_through_position",
            "The verified-through mark: records up to it had a full verification; a restart verifies only the ones after it (0 without the scrub)",
            as_i64(scrub.verified_through),
        )?;
        gauge(
            &mut e,
            "scrub_damage_found",
            "1 once the background scrub found the store damaged: appends are stopped (Ops.GetStats scrub.failure says what)",
            i64::from(!scrub.failure.is_empty()),
        )?;
        gauge(
            &mut e,
            "resident_memory_bytes",
            "Resident memory of the server process",
            as_i64(super::ops_service::resident_bytes()),
        )?;
        gauge(
            &mut e,
            "allocated_memory_bytes",
            "Bytes the server's live allocations hold, as its allocator counts them (resident minus this: partly used pages, stacks, code)",
            as_i64(super::ops_service::allocated_bytes()),
        )?;
        Ok(())
    }
}
