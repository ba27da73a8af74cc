//! `complaint_ledger.v1.Privacy`: erasing a customer's personal data by
//! destroying its key, finding a customer's cases by phone or account
//! through the blind index, and listing the PII-access log.

use super::caller::{actor_of, caller_of};
use super::status::{invalid_field, to_status};
use crate::domain::ids::id_problem;
use crate::ledger::Ledger;
use crate::privacy::blind_index::{normalize_account, normalize_phone};
use crate::proto::v1::{
    self as pb, find_customer_cases_request::By, privacy_server::Privacy as PrivacyApi,
};
use crate::store::EventLog;
use std::collections::BTreeSet;
use std::sync::Arc;
use tonic::{Request, Response, Status};

pub struct PrivacyService {
    ledger: Arc<Ledger>,
}

impl PrivacyService {
    pub fn new(ledger: Arc<Ledger>) -> Self {
        Self { ledger }
    }
}

#[tonic::async_trait]
impl PrivacyApi for PrivacyService {
    async fn erase_customer_data(
        &self,
        request: Request<pb::EraseCustomerDataRequest>,
    ) -> Result<Response<pb::EraseCustomerDataResponse>, Status> {
        let actor = actor_of(&request)?;
        let req = request.into_inner();
        if let Some(p) = id_problem(&req.customer_id) {
            return Err(invalid_field("customer_id", p));
        }
        if req.reason.trim().is_empty() {
            return Err(invalid_field(
                "reason",
                "is required: say why the data is erased",
            ));
        }
        let (ledger, customer) = (self.ledger.clone(), req.customer_id.clone());
        let cases = tokio::task::spawn_blocking(move || {
            crate::queries::board::cases_of_customer(&ledger, &customer)
        })
        .await
        .map_err(|e| Status::internal(format!("reading the customer's cases failed: {e}")))?
        .map_err(to_status)?;
        if cases.is_empty() {
            return Err(Status::not_found(format!(
                "no case names customer {}",
                req.customer_id
            )));
        }
        // 1. Destroy the key, durably, before saying anything happened.
        let ledger = self.ledger.clone();
        let customer = req.customer_id.clone();
        let destroyed = tokio::task::spawn_blocking(move || {
            // The blind index forgets the customer first: a crash before
            // the sync can leave its entries gone with the key still there
            // (the erasure was not answered, and is to be retried), never
            // the key gone with its entries left naming the customer.
            ledger
                .blind_index()
                .forget(&customer)
                .map_err(|e| Status::internal(e.to_string()))?;
            let destroyed = ledger
                .keys()
                .erase(&customer)
                .map_err(|e| Status::internal(e.to_string()))?;
            ledger
                .log()
                .sync()
                .map_err(|e| Status::internal(e.to_string()))?;
            Ok::<_, Status>(destroyed)
        })
        .await
        .map_err(|e| Status::internal(e.to_string()))??;
        tracing::warn!(customer_id = %req.customer_id, %actor, "personal data erased: data key destroyed");
        // 2. Say so on every case of the customer (idempotent event ids).
        for case_id in &cases {
            let event = pb::ProposedEvent {
                event_id: erasure_event_id(&req.customer_id, case_id),
                occurred_at: Some(crate::time::now_ts()),
                event: Some(pb::CaseEvent {
                    kind: Some(pb::case_event::Kind::PersonalDataErased(
                        pb::PersonalDataErased {
                            customer_id: req.customer_id.clone(),
                            reason: req.reason.clone(),
                        },
                    )),
                }),
                ..Default::default()
            };
            let r = self
                .ledger
                .append(
                    pb::AppendRequest {
                        case_id: case_id.clone(),
                        expected_version: None,
                        events: vec![event],
                    },
                    actor.clone(),
                )
                .await;
            match r {
                Ok(_) | Err(crate::ledger::LedgerError::EventIdConflict { .. }) => {}
                Err(e) => return Err(to_status(e)),
            }
        }
        Ok(Response::new(pb::EraseCustomerDataResponse {
            case_ids: cases,
            key_destroyed: destroyed,
        }))
    }

    async fn find_customer_cases(
        &self,
        request: Request<pb::FindCustomerCasesRequest>,
    ) -> Result<Response<pb::FindCustomerCasesResponse>, Status> {
        let caller = caller_of(&request)?;
        let req = request.into_inner();
        let index = self.ledger.blind_index();
        let token = match &req.by {
            Some(By::Phone(p)) if !normalize_phone(p).is_empty() => {
                index.token("phone", &normalize_phone(p))
            }
            Some(By::Account(a)) if !normalize_account(a).is_empty() => {
                index.token("account", &normalize_account(a))
            }
            _ => return Err(invalid_field("by", "give a phone number or an account")),
        };
        let ledger = self.ledger.clone();
        let lines = tokio::task::spawn_blocking(move || {
            ledger
                .blind_index()
                .lookup(&token)?
                .into_iter()
                .map(|c| crate::queries::board::cases_with_lines(&ledger, &c).map(|l| (c, l)))
                .collect::<Result<Vec<_>, _>>()
        })
        .await
        .map_err(|e| Status::internal(format!("reading the customers' cases failed: {e}")))?
        .map_err(to_status)?;
        // Only customers and cases of the caller's lines: a customer of
        // another line with the same phone is not even named.
        let mut case_ids = BTreeSet::new();
        let mut customers = Vec::new();
        for (c, with_lines) in lines {
            let mut visible = false;
            for (case, line) in with_lines {
                if caller.may_access_line(&line) {
                    case_ids.insert(case);
                    visible = true;
                }
            }
            if visible {
                customers.push(c);
            }
        }
        Ok(Response::new(pb::FindCustomerCasesResponse {
            customer_ids: customers,
            case_ids: case_ids.into_iter().collect(),
        }))
    }

    async fn list_pii_access(
        &self,
        request: Request<pb::ListPiiAccessRequest>,
    ) -> Result<Response<pb::ListPiiAccessResponse>, Status> {
        let req = request.into_inner();
        if !req.case_id.is_empty() {
            if let Some(p) = id_problem(&req.case_id) {
                return Err(invalid_field("case_id", p));
            }
        }
        let limit = match req.limit {
            0 => 100,
            n => n.min(1000) as usize,
        };
        let entries = self
            .ledger
            .access_log()
            .list(req.after_sequence, limit, &req.case_id)
            .map_err(Status::internal)?;
        Ok(Response::new(pb::ListPiiAccessResponse { entries }))
    }
}

/// The event id of a customer's erasure on one case: the same on a retry.
fn erasure_event_id(customer: &str, case: &str) -> String {
    use sha2::Digest;
    let h = sha2::Sha256::digest(format!("{customer}\n{case}").as_bytes());
    format!("erasure-{}", &hex::encode(h)[..32])
}
