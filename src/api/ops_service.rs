//! `complaint_ledger.v1.Ops`: counters and sizes of the running server, for
//! operators and the benchmark harness.

use crate::ledger::Ledger;
use crate::processes::scrub::ScrubState;
use crate::processes::warning_table::stored_position;
use crate::proto::v1::{self as pb, ops_server::Ops as OpsApi};
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use tokio_stream::wrappers::ReceiverStream;
use tokio_stream::Stream;
use tonic::{Request, Response, Status};

pub struct OpsService {
    ledger: Arc<Ledger>,
    scrub: Arc<ScrubState>,
}

impl OpsService {
    pub fn new(ledger: Arc<Ledger>, scrub: Arc<ScrubState>) -> Self {
        Self { ledger, scrub }
    }
}

/// Where the binary's allocator says how many bytes live allocations hold:
/// set once by the binary, which chooses the allocator (`main.rs`).
static ALLOCATED: std::sync::OnceLock<fn() -> u64> = std::sync::OnceLock::new();

/// Makes `Ops.GetStats` and the metrics report `source()` as the bytes
/// live allocations hold.
pub fn count_allocated_with(source: fn() -> u64) {
    let _ = ALLOCATED.set(source);
}

/// Bytes live allocations hold; 0 when no allocator said.
pub fn allocated_bytes() -> u64 {
    ALLOCATED.get().map_or(0, |f| f())
}

/// Resident memory of this process from /proc (Linux); 0 elsewhere.
pub fn resident_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        })
        .map(|kb| kb * 1024)
        .unwrap_or(0)
}

fn writer_time(t: &crate::ledger::WriterTime) -> pb::WriterTime {
    let us = |c: &std::sync::atomic::AtomicU64| c.load(Ordering::Relaxed) / 1_000;
    pb::WriterTime {
        idle_us: t.idle_nanos() / 1_000,
        staging_us: us(&t.staging),
        storing_us: us(&t.storing),
        syncing_us: us(&t.syncing),
        publishing_us: us(&t.publishing),
    }
}

#[tonic::async_trait]
impl OpsApi for OpsService {
    async fn get_stats(
        &self,
        _: Request<pb::GetStatsRequest>,
    ) -> Result<Response<pb::Stats>, Status> {
        let s = self.ledger.writer_stats();
        let ledger = self.ledger.clone();
        let (disk_bytes, warning_position) = tokio::task::spawn_blocking(move || {
            let log = ledger.log();
            (
                log.size_on_disk().unwrap_or(0),
                stored_position(log.as_ref()).unwrap_or(0),
            )
        })
        .await
        .unwrap_or((0, 0));
        let (case_facts_cached, case_fact_loads) = self.ledger.board().cache_stats();
        Ok(Response::new(pb::Stats {
            head_position: self.ledger.tree_size(),
            cases: self.ledger.index().len() as u64,
            closed_cases: self.ledger.index().closed(),
            commits: s.commits.load(Ordering::Relaxed),
            committed_records: s.records.load(Ordering::Relaxed),
            committed_requests: s.requests.load(Ordering::Relaxed),
            max_batch_requests: s.max_batch_requests.load(Ordering::Relaxed),
            resident_bytes: resident_bytes(),
            allocated_bytes: allocated_bytes(),
            disk_bytes,
            writer_time: Some(writer_time(&s.time)),
            longest_sync_us: crate::time::duration_nanos(s.syncs.longest()) / 1_000,
            slow_syncs: s.syncs.slow(),
            calendar_warnings: self
                .ledger
                .policy()
                .coverage_warnings(crate::time::now_nanos()),
            scrub: Some(self.scrub.status()),
            case_states_cached: s.case_states_cached.load(Ordering::Relaxed),
            case_state_loads: s.case_state_loads.load(Ordering::Relaxed),
            board_position: self.ledger.board().position(),
            case_facts_cached,
            case_fact_loads,
            warning_position,
            adopted_records: s.adopted.load(Ordering::Relaxed),
            fetched_back_records: s.fetched_back.load(Ordering::Relaxed),
        }))
    }

    type RebuildProjectionsStream =
        Pin<Box<dyn Stream<Item = Result<pb::RebuildProgress, Status>> + Send>>;

    async fn rebuild_projections(
        &self,
        _: Request<pb::RebuildProjectionsRequest>,
    ) -> Result<Response<Self::RebuildProjectionsStream>, Status> {
        let (tx, rx) = tokio::sync::mpsc::channel(16);
        let ledger = self.ledger.clone();
        tokio::task::spawn_blocking(move || {
            let result = ledger.rebuild_projections(|done, total| {
                let _ = tx.blocking_send(Ok(pb::RebuildProgress {
                    done,
                    total,
                    ..Default::default()
                }));
            });
            let _ = tx.blocking_send(result.map_err(|e| Status::internal(e.to_string())));
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }
}
