//! The benchmark's figures: one table for people, the same as JSON.

use super::load::LoadResult;
use super::BenchOptions;
use complaint_ledger::proto::v1 as pb;
use serde_json::{json, Value};
use std::fmt::Write as _;

/// One concurrency level of durable single-event appends.
pub struct SingleRow {
    pub clients: usize,
    pub ledger: LoadResult,
    /// Records per group commit the ledger reached.
    pub batch: f64,
    pub grpc: LoadResult,
    pub disk_events_per_second: f64,
    pub postgres: Option<LoadResult>,
    /// CPU the ledger's server process spent per appended event (user +
    /// system, all threads), in microseconds: steadier than events/s on a
    /// shared machine.
    pub server_cpu_us: Option<f64>,
    /// The same for the no-op server, per request: the part of the
    /// ledger's figure that any tonic server pays.
    pub grpc_cpu_us: Option<f64>,
    pub writer: Option<WriterSplit>,
}

/// Where the ledger's writer thread spent a load level, as shares of its
/// wall-clock time (from `Ops.GetStats` before and after the level), and
/// how many of the level's group commits had a sync of 100 ms or more (a
/// level with some measured a disk stall, not only the ledger).
#[derive(Debug, Clone, Copy, Default)]
pub struct WriterSplit {
    pub idle: f64,
    pub staging: f64,
    pub storing: f64,
    pub syncing: f64,
    pub publishing: f64,
    pub slow_syncs: u64,
}

impl WriterSplit {
    pub fn between(before: &pb::Stats, after: &pb::Stats) -> Option<Self> {
        let (b, a) = (before.writer_time?, after.writer_time?);
        let d = |x: u64, y: u64| y.saturating_sub(x) as f64;
        let parts = [
            d(b.idle_us, a.idle_us),
            d(b.staging_us, a.staging_us),
            d(b.storing_us, a.storing_us),
            d(b.syncing_us, a.syncing_us),
            d(b.publishing_us, a.publishing_us),
        ];
        let total: f64 = parts.iter().sum();
        (total > 0.0).then(|| Self {
            idle: parts[0] / total,
            staging: parts[1] / total,
            storing: parts[2] / total,
            syncing: parts[3] / total,
            publishing: parts[4] / total,
            slow_syncs: after.slow_syncs.saturating_sub(before.slow_syncs),
        })
    }

    fn json(&self) -> Value {
        json!({
            "idle": self.idle,
            "staging": self.staging,
            "storing": self.storing,
            "syncing": self.syncing,
            "publishing": self.publishing,
            "slow_syncs": self.slow_syncs,
        })
    }

    fn cells(&self) -> String {
        let p = |x: f64| format!("{:>5.0} %", x * 100.0);
        format!(
            "{:>8} {:>8} {:>8} {:>8} {:>10} {:>10}",
            p(self.idle),
            p(self.staging),
            p(self.storing),
            p(self.syncing),
            p(self.publishing),
            self.slow_syncs
        )
    }
}

/// The large log.
#[derive(Default)]
pub struct Large {
    pub events: u64,
    pub resident_bytes: u64,
    pub disk_bytes: u64,
    pub rebuild_seconds: f64,
    pub verify_seconds: f64,
    /// A start after a full verification covered the log (a scrub pass,
    /// or a start before): it checks only what was written since.
    pub startup_seconds: f64,
    /// A start with no full verification before it: every record checked.
    pub startup_full_seconds: f64,
    /// Resident memory of the restarted server once it has settled (see
    /// `settled_resident_bytes`).
    pub resident_after_restart_bytes: u64,
}

pub struct Report {
    pub seconds_per_level: f64,
    pub cases: u64,
    pub machine: String,
    pub single: Vec<SingleRow>,
    pub batched: Option<LoadResult>,
    /// Server CPU per event of the batched run, microseconds.
    pub batched_cpu_us: Option<f64>,
    pub batched_writer: Option<WriterSplit>,
    pub read_case: Option<LoadResult>,
    /// (events, seconds)
    pub read_all: Option<(u64, f64)>,
    pub subscribe: Option<(u64, f64)>,
    pub token_check: Option<super::credentials::TokenCheck>,
    pub large: Option<Large>,
    /// Closed copies, then open ones.
    pub case_memory: Vec<super::case_memory::CaseMemory>,
}

fn machine() -> String {
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("model name"))
                .map(|l| l.trim_start_matches([' ', '\t', ':']).to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    format!("{cores} cores, {cpu}")
}

fn load_json(r: &LoadResult) -> Value {
    json!({
        "clients": r.clients,
        "requests": r.requests,
        "events": r.events,
        "errors": r.errors,
        "first_error": r.first_error,
        "seconds": r.seconds,
        "events_per_second": r.events_per_second(),
        "requests_per_second": r.requests_per_second(),
        "p50_ms": r.p_ms(0.5),
        "p99_ms": r.p_ms(0.99),
        "p999_ms": r.p_ms(0.999),
    })
}

fn cpu_cell(us: Option<f64>) -> String {
    us.map_or_else(|| "-".into(), |u| format!("{u:.1}"))
}

fn rate(n: u64, s: f64) -> f64 {
    if s > 0.0 {
        n as f64 / s
    } else {
        0.0
    }
}

impl Report {
    pub fn new(opts: &BenchOptions) -> Self {
        Self {
            seconds_per_level: opts.seconds,
            cases: opts.cases,
            machine: machine(),
            single: Vec::new(),
            batched: None,
            batched_cpu_us: None,
            batched_writer: None,
            read_case: None,
            read_all: None,
            subscribe: None,
            token_check: None,
            large: None,
            case_memory: Vec::new(),
        }
    }

    pub fn table(&self) -> String {
        let mut t = String::new();
        let _ = writeln!(
            t,
            "complaint-ledger benchmark · {} · {:.1} s per level · {} cases · {}-byte payloads",
            self.machine,
            self.seconds_per_level,
            self.cases,
            super::PAYLOAD_BYTES
        );
        let _ = writeln!(t, "\ndurable single-event appends through gRPC");
        let _ = writeln!(
            t,
            "{:>7} {:>11} {:>7} {:>7} {:>8} {:>6} {:>7} | {:>11} {:>7} {:>7} | {:>12} | {:>11} {:>7}",
            "clients",
            "ledger ev/s",
            "p50 ms",
            "p99 ms",
            "p99.9 ms",
            "batch",
            "µs CPU",
            "no-op gRPC",
            "µs CPU",
            "÷gRPC",
            "fdatasync/s",
            "PostgreSQL",
            "÷PG"
        );
        for r in &self.single {
            let (pg, ratio) = match &r.postgres {
                Some(p) => (
                    format!("{:.0}", p.events_per_second()),
                    format!(
                        "{:.2}",
                        r.ledger.events_per_second() / p.events_per_second().max(1e-9)
                    ),
                ),
                None => ("-".into(), "-".into()),
            };
            let _ = writeln!(
                t,
                "{:>7} {:>11.0} {:>7.2} {:>7.2} {:>8.2} {:>6.1} {:>7} | {:>11.0} {:>7} {:>7.2} | {:>12.0} | {:>11} {:>7}",
                r.clients,
                r.ledger.events_per_second(),
                r.ledger.p_ms(0.5),
                r.ledger.p_ms(0.99),
                r.ledger.p_ms(0.999),
                r.batch,
                cpu_cell(r.server_cpu_us),
                r.grpc.requests_per_second(),
                cpu_cell(r.grpc_cpu_us),
                r.ledger.events_per_second() / r.grpc.requests_per_second().max(1e-9),
                r.disk_events_per_second,
                pg,
                ratio
            );
            if r.ledger.errors > 0 {
                let _ = writeln!(
                    t,
                    "        ({} errors; first: {})",
                    r.ledger.errors,
                    r.ledger.first_error.clone().unwrap_or_default()
                );
            }
        }
        if let Some(b) = &self.batched {
            let _ = writeln!(t, "\nbatched appends (100 events per request, {} clients): {:.0} events/s, p50 {:.2} ms, p99 {:.2} ms, server CPU {} µs/event", b.clients, b.events_per_second(), b.p_ms(0.5), b.p_ms(0.99), cpu_cell(self.batched_cpu_us));
        }
        let splits: Vec<(String, WriterSplit)> = self
            .single
            .iter()
            .filter_map(|r| r.writer.map(|w| (format!("{} clients", r.clients), w)))
            .chain(self.batched_writer.map(|w| ("batched".to_string(), w)))
            .collect();
        if !splits.is_empty() {
            let _ = writeln!(
                t,
                "\nthe writer thread's time (Ops.GetStats writer_time), and its syncs of 100 ms or more\n{:>11} {:>8} {:>8} {:>8} {:>8} {:>10} {:>10}",
                "appends", "idle", "staging", "storing", "syncing", "publishing", "slow syncs"
            );
            for (name, w) in splits {
                let _ = writeln!(t, "{name:>11} {}", w.cells());
            }
        }
        if let Some(r) = &self.read_case {
            let _ = writeln!(
                t,
                "ReadCase of a 1,000-event case: {:.0} events/s, p50 {:.2} ms per read",
                r.events_per_second(),
                r.p_ms(0.5)
            );
        }
        if let Some((n, s)) = self.read_all {
            let _ = writeln!(
                t,
                "ReadAll streaming: {:.0} events/s ({n} events)",
                rate(n, s)
            );
        }
        if let Some((n, s)) = self.subscribe {
            let _ = writeln!(
                t,
                "Subscribe catch-up: {:.0} events/s ({n} events)",
                rate(n, s)
            );
        }
        if let Some(c) = &self.token_check {
            let _ = writeln!(
                t,
                "bearer-token check (EdDSA JWT, in process): {:.1} µs for a new token, {:.2} µs for one verified before",
                c.new_token_us, c.kept_token_us
            );
        }
        if let Some(l) = &self.large {
            let _ = writeln!(t, "\nat {} events:", l.events);
            let _ = writeln!(
                t,
                "  projection rebuild: {:.0} events/s ({:.2} s)",
                rate(l.events, l.rebuild_seconds),
                l.rebuild_seconds
            );
            let _ = writeln!(
                t,
                "  full verification: {:.0} events/s ({:.2} s)",
                rate(l.events, l.verify_seconds),
                l.verify_seconds
            );
            let _ = writeln!(
                t,
                "  server start: {:.2} s verifying every record, {:.2} s after a full verification (what was written since, and the fold)",
                l.startup_full_seconds, l.startup_seconds
            );
            let _ = writeln!(
                t,
                "  resident memory: {:.1} MB after the fill, {:.1} MB after a restart; disk: {:.0} bytes/event",
                l.resident_bytes as f64 / 1e6,
                l.resident_after_restart_bytes as f64 / 1e6,
                l.disk_bytes as f64 / l.events.max(1) as f64
            );
        }
        for m in &self.case_memory {
            let _ = writeln!(
                t,
                "\n{} copies of seed case 124545, {} ({} events in all, with the warnings raised):",
                m.cases,
                if m.closed { "closed" } else { "open" },
                m.events
            );
            let _ = writeln!(
                t,
                "  resident memory: {:.1} MB empty, {:.1} MB at {} cases, {:.1} MB at {} ({:.1} KB per added case), {:.1} MB after a restart",
                m.empty_bytes as f64 / 1e6,
                m.half_bytes as f64 / 1e6,
                m.cases / 2,
                m.filled_bytes as f64 / 1e6,
                m.cases,
                m.per_added_case() / 1e3,
                m.restarted_bytes as f64 / 1e6,
            );
        }
        t
    }

    pub fn json(&self) -> Value {
        json!({
            "machine": self.machine,
            "seconds_per_level": self.seconds_per_level,
            "cases": self.cases,
            "payload_bytes": super::PAYLOAD_BYTES,
            "single_appends": self.single.iter().map(|r| json!({
                "clients": r.clients,
                "ledger": load_json(&r.ledger),
                "records_per_group_commit": r.batch,
                "server_cpu_us_per_event": r.server_cpu_us,
                "grpc_noop": load_json(&r.grpc),
                "grpc_noop_server_cpu_us_per_request": r.grpc_cpu_us,
                "ledger_over_grpc": r.ledger.events_per_second() / r.grpc.requests_per_second().max(1e-9),
                "fdatasync_file_events_per_second": r.disk_events_per_second,
                "postgres": r.postgres.as_ref().map(load_json),
                "ledger_over_postgres": r.postgres.as_ref().map(|p| r.ledger.events_per_second() / p.events_per_second().max(1e-9)),
                "writer_time_shares": r.writer.map(|w| w.json()),
            })).collect::<Vec<_>>(),
            "batched_appends": self.batched.as_ref().map(load_json),
            "batched_server_cpu_us_per_event": self.batched_cpu_us,
            "batched_writer_time_shares": self.batched_writer.map(|w| w.json()),
            "read_case_1000": self.read_case.as_ref().map(load_json),
            "read_all_events_per_second": self.read_all.map(|(n, s)| rate(n, s)),
            "subscribe_catch_up_events_per_second": self.subscribe.map(|(n, s)| rate(n, s)),
            "bearer_token_check_us": self.token_check.map(|c| json!({
                "new_token": c.new_token_us,
                "kept_token": c.kept_token_us,
            })),
            "large": self.large.as_ref().map(|l| json!({
                "events": l.events,
                "rebuild_events_per_second": rate(l.events, l.rebuild_seconds),
                "verify_events_per_second": rate(l.events, l.verify_seconds),
                "startup_seconds": l.startup_seconds,
                "startup_full_seconds": l.startup_full_seconds,
                "resident_bytes": l.resident_bytes,
                "resident_after_restart_bytes": l.resident_after_restart_bytes,
                "disk_bytes_per_event": l.disk_bytes as f64 / l.events.max(1) as f64,
            })),
            "seed_case_memory": self.case_memory.iter().find(|m| m.closed).map(memory_json),
            "seed_case_memory_open": self.case_memory.iter().find(|m| !m.closed).map(memory_json),
        })
    }
}

fn memory_json(m: &super::case_memory::CaseMemory) -> serde_json::Value {
    json!({
        "cases": m.cases,
        "events": m.events,
        "empty_resident_bytes": m.empty_bytes,
        "half_resident_bytes": m.half_bytes,
        "resident_bytes": m.filled_bytes,
        "resident_bytes_per_added_case": m.per_added_case(),
        "resident_after_restart_bytes": m.restarted_bytes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stats(idle: u64, syncing: u64, slow_syncs: u64) -> pb::Stats {
        pb::Stats {
            writer_time: Some(pb::WriterTime {
                idle_us: idle,
                staging_us: 100,
                storing_us: 100,
                syncing_us: syncing,
                publishing_us: 100,
            }),
            slow_syncs,
            ..Default::default()
        }
    }

    #[test]
    fn a_levels_split_is_its_share_of_the_writers_time_and_counts_its_slow_syncs() {
        let before = stats(1_000, 1_000, 2);
        let after = stats(1_250, 1_500, 5);
        let w = WriterSplit::between(&before, &after).unwrap();
        // Over the level: 250 idle, 500 syncing, 0 of each other phase.
        assert!((w.idle - 1.0 / 3.0).abs() < 1e-9, "{}", w.idle);
        assert!((w.syncing - 2.0 / 3.0).abs() < 1e-9, "{}", w.syncing);
        assert_eq!(w.staging + w.storing + w.publishing, 0.0);
        assert_eq!(w.slow_syncs, 3);
        assert!(w.cells().trim_end().ends_with(" 3"), "{}", w.cells());
        assert_eq!(w.json()["slow_syncs"], 3);
        // A level the writer did not live through has no split.
        assert!(WriterSplit::between(&before, &before).is_none());
    }
}
