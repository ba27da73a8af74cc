//! `complaint_ledger.v1.Audit`: checkpoints, inclusion and consistency
//! proofs, server-side verification with progress, and case export.

use super::status::{invalid_field, to_status};
use super::streaming::{channel, ResponseStream};
use crate::domain::ids::id_problem;
use crate::ledger::{Ledger, LedgerError};
use crate::proto::v1::{self as pb, audit_server::Audit as AuditApi};
use std::sync::Arc;
use tonic::{Request, Response, Status};

pub struct AuditService {
    ledger: Arc<Ledger>,
}

impl AuditService {
    pub fn new(ledger: Arc<Ledger>) -> Self {
        Self { ledger }
    }

    /// Runs a blocking ledger call off the async workers.
    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Ledger) -> Result<T, LedgerError> + Send + 'static,
    ) -> Result<T, Status> {
        let ledger = self.ledger.clone();
        tokio::task::spawn_blocking(move || f(&ledger))
            .await
            .map_err(|e| Status::internal(format!("worker failed: {e}")))?
            .map_err(to_status)
    }
}

#[tonic::async_trait]
impl AuditApi for AuditService {
    async fn get_checkpoint(
        &self,
        _: Request<pb::GetCheckpointRequest>,
    ) -> Result<Response<pb::Checkpoint>, Status> {
        let cp = self.blocking(|l| l.checkpoint()).await?;
        Ok(Response::new(pb::Checkpoint {
            origin: self.ledger.origin().to_string(),
            tree_size: cp.size,
            root_hash: cp.root.to_vec(),
            signed_at: Some(cp.signed_at),
            signed_note: cp.note,
            public_key: self.ledger.public_key().to_string(),
        }))
    }

    async fn prove_inclusion(
        &self,
        request: Request<pb::ProveInclusionRequest>,
    ) -> Result<Response<pb::InclusionProof>, Status> {
        let r = request.into_inner();
        Ok(Response::new(
            self.blocking(move |l| l.prove_inclusion(r.position, r.tree_size))
                .await?,
        ))
    }

    async fn prove_consistency(
        &self,
        request: Request<pb::ProveConsistencyRequest>,
    ) -> Result<Response<pb::ConsistencyProof>, Status> {
        let r = request.into_inner();
        Ok(Response::new(
            self.blocking(move |l| l.prove_consistency(r.old_size, r.new_size))
                .await?,
        ))
    }

    type VerifyLogStream = ResponseStream<pb::VerifyLogProgress>;

    async fn verify_log(
        &self,
        _: Request<pb::VerifyLogRequest>,
    ) -> Result<Response<Self::VerifyLogStream>, Status> {
        let ledger = self.ledger.clone();
        let (tx, stream) = channel();
        tokio::task::spawn_blocking(move || {
            let progress_tx = tx.clone();
            let result = ledger.verify(|checked, total| {
                let _ = progress_tx.blocking_send(Ok(pb::VerifyLogProgress {
                    checked,
                    total,
                    ..Default::default()
                }));
            });
            let last = match result {
                Ok(r) => pb::VerifyLogProgress {
                    checked: r.records,
                    total: r.records,
                    done: true,
                    ok: true,
                    ..Default::default()
                },
                Err(e) => pb::VerifyLogProgress {
                    done: true,
                    ok: false,
                    first_bad_position: e.position().unwrap_or(0),
                    problem: e.to_string(),
                    ..Default::default()
                },
            };
            let _ = tx.blocking_send(Ok(last));
        });
        Ok(Response::new(stream))
    }

    async fn export_case(
        &self,
        request: Request<pb::ExportCaseRequest>,
    ) -> Result<Response<pb::CaseBundle>, Status> {
        super::observe::note_case(&request, &request.get_ref().case_id);
        let r = request.into_inner();
        if let Some(p) = id_problem(&r.case_id) {
            return Err(invalid_field("case_id", p));
        }
        Ok(Response::new(
            self.blocking(move |l| l.export_case(&r.case_id, r.since_size))
                .await?,
        ))
    }
}
