//! `complaint_ledger.v1.Cases`: the case projection (now or as of a version or
//! recorded time) and the filtered, paginated case list.

use super::caller::{caller_of, check_line};
use super::observe::note_case;
use super::pii::Presenter;
use super::status::{invalid_field, to_status};
use crate::domain::ids::id_problem;
use crate::ledger::Ledger;
use crate::projections::case_view::{fold, AsOf};
use crate::projections::summary::CaseFilter;
use crate::proto::v1::{self as pb, cases_server::Cases as CasesApi, get_case_request};
use crate::time::{is_valid, now_nanos, ts_nanos};
use std::sync::Arc;
use tonic::{Request, Response, Status};
use tracing::Instrument;

/// Default and largest `ListCases` page.
pub const DEFAULT_PAGE_SIZE: usize = 50;
pub const MAX_PAGE_SIZE: usize = 500;

pub struct CasesService {
    ledger: Arc<Ledger>,
}

impl CasesService {
    pub fn new(ledger: Arc<Ledger>) -> Self {
        Self { ledger }
    }
}

/// A request timestamp, checked: nanoseconds, or INVALID_ARGUMENT naming the field.
pub fn checked_ts(field: &str, ts: &prost_types::Timestamp) -> Result<i128, Status> {
    if is_valid(ts) {
        Ok(ts_nanos(ts))
    } else {
        Err(invalid_field(
            field,
            "is not a valid timestamp between years 1900 and 9999",
        ))
    }
}

#[tonic::async_trait]
impl CasesApi for CasesService {
    async fn get_case(
        &self,
        request: Request<pb::GetCaseRequest>,
    ) -> Result<Response<pb::CaseView>, Status> {
        let caller = caller_of(&request)?;
        note_case(&request, &request.get_ref().case_id);
        let presenter = Presenter::new(self.ledger.clone(), &caller, &request, "Cases.GetCase");
        let req = request.into_inner();
        let span = tracing::info_span!("GetCase", case_id = %req.case_id);
        async move {
            if let Some(p) = id_problem(&req.case_id) {
                return Err(invalid_field("case_id", p));
            }
            let mut as_of = AsOf::default();
            match &req.as_of {
                Some(get_case_request::AsOf::Version(v)) => {
                    if *v == 0 {
                        return Err(invalid_field("version", "versions start at 1"));
                    }
                    as_of.version = Some(*v);
                }
                Some(get_case_request::AsOf::RecordedAt(ts)) => {
                    as_of.recorded_at = Some(checked_ts("recorded_at", ts)?);
                }
                None => {}
            }
            let now = match &req.evaluate_at {
                Some(ts) => checked_ts("evaluate_at", ts)?,
                None => as_of.recorded_at.unwrap_or_else(now_nanos),
            };
            let line = self
                .ledger
                .business_line_of(&req.case_id)
                .map_err(to_status)?;
            check_line(&caller, &req.case_id, &line)?;
            let ledger = self.ledger.clone();
            let policy = self.ledger.policy().clone();
            let case_id = req.case_id.clone();
            // Read the case, keep what the as-of point includes, and only
            // then decrypt (and log) what the response will show.
            let (current, included) = tokio::task::spawn_blocking(move || {
                let events = ledger
                    .read_case(&case_id, 1, false, usize::MAX)
                    .map_err(to_status)?;
                let current = events.last().map(|e| e.case_version).unwrap_or(0);
                let mut included: Vec<_> =
                    events.into_iter().filter(|e| as_of.includes(e)).collect();
                if as_of.version.is_none_or(|v| v <= current) {
                    presenter.present(&mut included)?;
                }
                Ok::<_, Status>((current, included))
            })
            .await
            .map_err(|e| Status::internal(format!("reader failed: {e}")))??;
            if let Some(v) = as_of.version.filter(|v| *v > current) {
                return Err(Status::out_of_range(format!(
                    "case {} has {current} versions; version {v} does not exist yet",
                    req.case_id
                )));
            }
            if included.is_empty() {
                return Err(Status::not_found(format!(
                    "case {} did not exist at that recorded time",
                    req.case_id
                )));
            }
            Ok(Response::new(fold(
                &req.case_id,
                &included,
                now,
                policy.as_ref(),
            )))
        }
        .instrument(span)
        .await
    }

    async fn list_cases(
        &self,
        request: Request<pb::ListCasesRequest>,
    ) -> Result<Response<pb::ListCasesResponse>, Status> {
        let caller = caller_of(&request)?;
        let req = request.into_inner();
        let status = match pb::CaseStatus::try_from(req.status) {
            Ok(pb::CaseStatus::Unspecified) => None,
            Ok(s) => Some(s),
            Err(_) => {
                return Err(invalid_field(
                    "status",
                    format!("{} is not a known value", req.status),
                ))
            }
        };
        for (field, v) in [
            ("customer_id", &req.customer_id),
            ("agent_id", &req.agent_id),
            ("page_token", &req.page_token),
        ] {
            if !v.is_empty() {
                if let Some(p) = id_problem(v) {
                    return Err(invalid_field(field, p));
                }
            }
        }
        let filter = CaseFilter {
            status,
            customer_id: Some(req.customer_id).filter(|s| !s.is_empty()),
            agent_id: Some(req.agent_id).filter(|s| !s.is_empty()),
            only_with_open_promises: req.only_with_open_promises,
            only_closed_without_acceptance: req.only_closed_without_acceptance,
            business_line: caller.line_scope().map(str::to_string),
        };
        let size = match req.page_size as usize {
            0 => DEFAULT_PAGE_SIZE,
            n => n.min(MAX_PAGE_SIZE),
        };
        let ledger = self.ledger.clone();
        let after = req.page_token;
        let (cases, next) =
            tokio::task::spawn_blocking(move || ledger.list_cases(&filter, &after, size))
                .await
                .map_err(|e| Status::internal(format!("reading the case list failed: {e}")))?
                .map_err(to_status)?;
        let next_page_token = next.unwrap_or_default();
        Ok(Response::new(pb::ListCasesResponse {
            cases,
            next_page_token,
        }))
    }
}
