//! `complaint_ledger.v1.Policies`: the cross-case policy read models —
//! promises due or broken, warnings not escalated, KF-006 queues and factor
//! statistics, agent scorecards, customer histories. Each request is checked
//! field by field, then answered by `queries::board` off the async workers
//! (the board's indexes and cases' facts are read from the store).

use super::cases_service::{checked_ts, DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE};
use super::status::{invalid_field, to_status};
use crate::domain::ids::id_problem;
use crate::ledger::{Ledger, LedgerError};
use crate::projections::kf006::{self, parse_date, queue_day_problem};
use crate::projections::listings::{self, untoken, PromiseQuery, WarningQuery};
use crate::proto::v1::{self as pb, policies_server::Policies as PoliciesApi};
use crate::queries::board as queries;
use crate::time::{nanos_ts, now_nanos};
use std::sync::Arc;
use tonic::{Request, Response, Status};

pub struct PoliciesService {
    ledger: Arc<Ledger>,
}

impl PoliciesService {
    pub fn new(ledger: Arc<Ledger>) -> Self {
        Self { ledger }
    }
}

fn when(field: &str, ts: Option<&prost_types::Timestamp>) -> Result<Option<i128>, Status> {
    ts.map(|t| checked_ts(field, t)).transpose()
}

fn page_size(n: u32) -> usize {
    match n as usize {
        0 => DEFAULT_PAGE_SIZE,
        n => n.min(MAX_PAGE_SIZE),
    }
}

fn page_token(t: &str) -> Result<Option<Vec<String>>, Status> {
    if t.is_empty() {
        return Ok(None);
    }
    untoken(t)
        .map(Some)
        .ok_or_else(|| invalid_field("page_token", "is not a token from a previous response"))
}

fn optional_id(field: &str, v: &str) -> Result<Option<String>, Status> {
    if v.is_empty() {
        return Ok(None);
    }
    match id_problem(v) {
        Some(p) => Err(invalid_field(field, p)),
        None => Ok(Some(v.to_string())),
    }
}

fn required_id(field: &str, v: &str) -> Result<String, Status> {
    match id_problem(v) {
        Some(p) => Err(invalid_field(field, p)),
        None => Ok(v.to_string()),
    }
}

fn date(field: &str, v: &str) -> Result<time::Date, Status> {
    parse_date(v).ok_or_else(|| invalid_field(field, format!("{v:?} is not a date (YYYY-MM-DD)")))
}

/// Runs a board query on a blocking thread: it reads the store.
async fn read_board<T: Send + 'static>(
    ledger: &Arc<Ledger>,
    query: impl FnOnce(&Ledger) -> Result<T, LedgerError> + Send + 'static,
) -> Result<T, Status> {
    let ledger = ledger.clone();
    tokio::task::spawn_blocking(move || query(&ledger))
        .await
        .map_err(|e| Status::internal(format!("reading the policy board failed: {e}")))?
        .map_err(to_status)
}

fn text_or_none(s: String) -> Option<String> {
    Some(s).filter(|s| !s.is_empty())
}

/// The judgement as shown on a scorecard.
#[tonic::async_trait]
impl PoliciesApi for PoliciesService {
    async fn list_promises(
        &self,
        request: Request<pb::ListPromisesRequest>,
    ) -> Result<Response<pb::ListPromisesResponse>, Status> {
        let req = request.into_inner();
        let state = match pb::PromiseState::try_from(req.state) {
            Ok(pb::PromiseState::Unspecified) => None,
            Ok(s) => Some(s),
            Err(_) => {
                return Err(invalid_field(
                    "state",
                    format!("{} is not a known value", req.state),
                ))
            }
        };
        let q = PromiseQuery {
            state,
            due_before: when("due_before", req.due_before.as_ref())?,
            business_line: text_or_none(req.business_line),
            due_pending: req.due_pending,
            now: when("evaluate_at", req.evaluate_at.as_ref())?.unwrap_or_else(now_nanos),
        };
        let after = match page_token(&req.page_token)? {
            None => None,
            Some(parts) => Some(listings::promise_token_key(&parts).ok_or_else(|| {
                invalid_field("page_token", "is not a token from a previous response")
            })?),
        };
        let limit = page_size(req.page_size);
        let now = q.now;
        let (promises, next) = read_board(&self.ledger, move |l| {
            queries::promises(l, &q, after.as_ref(), limit)
        })
        .await?;
        Ok(Response::new(pb::ListPromisesResponse {
            promises,
            next_page_token: next.unwrap_or_default(),
            evaluated_at: Some(nanos_ts(now)),
        }))
    }

    async fn list_warnings(
        &self,
        request: Request<pb::ListWarningsRequest>,
    ) -> Result<Response<pb::ListWarningsResponse>, Status> {
        let req = request.into_inner();
        let q = WarningQuery {
            unanswered_only: req.unanswered_only,
            rule: text_or_none(req.rule),
            case_id: optional_id("case_id", &req.case_id)?,
            now: when("evaluate_at", req.evaluate_at.as_ref())?.unwrap_or_else(now_nanos),
            escalate_within: self.ledger.policy().escalate_within_nanos(),
        };
        let after = match page_token(&req.page_token)? {
            None => 0,
            Some(parts) => parts
                .first()
                .and_then(|p| p.parse::<u64>().ok())
                .ok_or_else(|| {
                    invalid_field("page_token", "is not a token from a previous response")
                })?,
        };
        let limit = page_size(req.page_size);
        let now = q.now;
        let (warnings, next) = read_board(&self.ledger, move |l| {
            queries::warnings(l, &q, after, limit)
        })
        .await?;
        Ok(Response::new(pb::ListWarningsResponse {
            warnings,
            next_page_token: next.unwrap_or_default(),
            evaluated_at: Some(nanos_ts(now)),
        }))
    }

    async fn get_queue(
        &self,
        request: Request<pb::GetQueueRequest>,
    ) -> Result<Response<pb::GetQueueResponse>, Status> {
        let req = request.into_inner();
        let kind = match pb::QueueKind::try_from(req.kind) {
            Ok(pb::QueueKind::Unspecified) | Err(_) => {
                return Err(invalid_field(
                    "kind",
                    "must be QUEUE_KIND_SURVEY or QUEUE_KIND_CALLBACK",
                ))
            }
            Ok(k) => k,
        };
        let day = date("date", &req.date)?;
        if let Some(p) = queue_day_problem(kind, day) {
            return Err(invalid_field("date", p));
        }
        let after = match page_token(&req.page_token)? {
            None => None,
            Some(parts) => Some(kf006::queue_token_key(&parts).ok_or_else(|| {
                invalid_field("page_token", "is not a token from a previous response")
            })?),
        };
        let business_line = text_or_none(req.business_line);
        let limit = page_size(req.page_size);
        let (served, items, next) = read_board(&self.ledger, move |l| {
            queries::queue(
                l,
                kind,
                day,
                business_line.as_deref(),
                after.as_ref(),
                limit,
            )
        })
        .await?;
        Ok(Response::new(pb::GetQueueResponse {
            kind: kind as i32,
            date: day.to_string(),
            week_of: served.to_string(),
            items,
            next_page_token: next.unwrap_or_default(),
        }))
    }

    async fn get_factor_statistics(
        &self,
        request: Request<pb::GetFactorStatisticsRequest>,
    ) -> Result<Response<pb::FactorStatistics>, Status> {
        let req = request.into_inner();
        let day = date("date", &req.date)?;
        let line = text_or_none(req.business_line);
        let stats = read_board(&self.ledger, move |l| {
            queries::factor_statistics(l, day, line.as_deref())
        })
        .await?;
        Ok(Response::new(stats))
    }

    async fn get_scorecard(
        &self,
        request: Request<pb::GetScorecardRequest>,
    ) -> Result<Response<pb::Scorecard>, Status> {
        let req = request.into_inner();
        let agent = required_id("agent_id", &req.agent_id)?;
        let month_ok = req.month.len() == 7 && parse_date(&format!("{}-01", req.month)).is_some();
        if !month_ok {
            return Err(invalid_field(
                "month",
                format!("{:?} is not a month (YYYY-MM)", req.month),
            ));
        }
        let now = when("evaluate_at", req.evaluate_at.as_ref())?.unwrap_or_else(now_nanos);
        let month = req.month;
        let card = read_board(&self.ledger, move |l| {
            queries::scorecard(l, &agent, &month, now)
        })
        .await?;
        Ok(Response::new(card))
    }

    async fn get_customer_history(
        &self,
        request: Request<pb::GetCustomerHistoryRequest>,
    ) -> Result<Response<pb::CustomerHistory>, Status> {
        let req = request.into_inner();
        let customer = required_id("customer_id", &req.customer_id)?;
        let now = when("evaluate_at", req.evaluate_at.as_ref())?.unwrap_or_else(now_nanos);
        let asked = customer.clone();
        let history = read_board(&self.ledger, move |l| {
            queries::customer_history(l, &asked, now)
        })
        .await?;
        match history {
            Some(h) => Ok(Response::new(h)),
            None => Err(Status::not_found(format!(
                "no case names customer {customer}"
            ))),
        }
    }
}
