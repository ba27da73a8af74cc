//! `complaint_ledger.v1.Ops`: counters and sizes of the running server, for
//! operators and the benchmark harness.

use crate::ledger::Ledger;
use crate::proto::v1::{self as pb, ops_server::Ops as OpsApi};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use tonic::{Request, Response, Status};

pub struct OpsService {
    ledger: Arc<Ledger>,
}

impl OpsService {
    pub fn new(ledger: Arc<Ledger>) -> Self {
        Self { ledger }
    }
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

#[tonic::async_trait]
impl OpsApi for OpsService {
    async fn get_stats(
        &self,
        _: Request<pb::GetStatsRequest>,
    ) -> Result<Response<pb::Stats>, Status> {
        let s = self.ledger.writer_stats();
        let ledger = self.ledger.clone();
        let disk_bytes =
            tokio::task::spawn_blocking(move || ledger.log().size_on_disk().unwrap_or(0))
                .await
                .unwrap_or(0);
        Ok(Response::new(pb::Stats {
            head_position: self.ledger.tree_size(),
            cases: self.ledger.index().len() as u64,
            commits: s.commits.load(Ordering::Relaxed),
            committed_records: s.records.load(Ordering::Relaxed),
            committed_requests: s.requests.load(Ordering::Relaxed),
            max_batch_requests: s.max_batch_requests.load(Ordering::Relaxed),
            resident_bytes: resident_bytes(),
            disk_bytes,
        }))
    }
}
