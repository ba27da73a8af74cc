//! `complaint_ledger.v1.Policies`: the cross-case policy read models —
//! promises due or broken, warnings not escalated, KF-006 queues and factor
//! statistics, agent scorecards, customer histories. Each request is checked
//! field by field, then answered from the policy board under its read lock
//! (a page of warnings is then completed from the log, outside it).

use super::cases_service::{checked_ts, DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE};
use super::status::{invalid_field, to_status};
use crate::domain::ids::id_problem;
use crate::ledger::Ledger;
use crate::projections::board::JudgementFact;
use crate::projections::case_view::judgement_flags;
use crate::projections::kf006::{self, factor_statistics, parse_date, queue, queue_day_problem};
use crate::projections::listings::{self, untoken, PromiseQuery, WarningQuery};
use crate::projections::scorecard::scorecard;
use crate::proto::v1::{self as pb, policies_server::Policies as PoliciesApi};
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

fn text_or_none(s: String) -> Option<String> {
    Some(s).filter(|s| !s.is_empty())
}

/// The judgement as shown on a scorecard.
fn judgement_view(j: &JudgementFact, now: i128) -> pb::JudgementView {
    let x = &j.judgement;
    let (appeal_window_open, judged_without_agent) = judgement_flags(x, j.appealed_at, now);
    pb::JudgementView {
        event_id: j.event_id.clone(),
        judgement: Some(x.clone()),
        appealed: j.appealed_at.is_some(),
        appeal_decided: j.appeal_upheld.is_some(),
        upheld: j.appeal_upheld.unwrap_or(false),
        appeal_window_open,
        judged_without_agent,
    }
}

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
        let (listed, next) = {
            let board = self.ledger.board().read().expect("board lock");
            listings::promises(&board, &q, after.as_ref(), page_size(req.page_size))
        };
        // A closed case's promises are read from the log (blocking reads,
        // off the async workers); a page of open cases' needs none.
        let complete = move |ledger: &Ledger, listed: Vec<listings::ListedPromise>| {
            let mut promises = Vec::with_capacity(listed.len());
            for l in listed {
                let mut entry = l.entry;
                if let Some(position) = l.read_promise_at {
                    let stored = ledger.read_at(position).map_err(to_status)?;
                    let stored = stored.ok_or_else(|| {
                        Status::internal(format!("promise at position {position} is not durable"))
                    })?;
                    listings::complete_promise(&mut entry, stored).map_err(Status::internal)?;
                }
                promises.push(entry);
            }
            Ok::<_, Status>(promises)
        };
        let promises = if listed.iter().all(|l| l.read_promise_at.is_none()) {
            complete(&self.ledger, listed)?
        } else {
            let ledger = self.ledger.clone();
            tokio::task::spawn_blocking(move || complete(&ledger, listed))
                .await
                .map_err(|e| Status::internal(format!("reading promises failed: {e}")))??
        };
        Ok(Response::new(pb::ListPromisesResponse {
            promises,
            next_page_token: next.unwrap_or_default(),
            evaluated_at: Some(nanos_ts(q.now)),
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
        let (mut warnings, next) = {
            let board = self.ledger.board().read().expect("board lock");
            listings::warnings(&board, &q, after, page_size(req.page_size))
        };
        // What the board does not keep of each warning is read from the log.
        let ledger = self.ledger.clone();
        let warnings = tokio::task::spawn_blocking(move || {
            for w in &mut warnings {
                let stored = ledger.read_at(w.position).map_err(to_status)?;
                let stored = stored.ok_or_else(|| {
                    Status::internal(format!("warning at position {} is not durable", w.position))
                })?;
                listings::complete_warning(w, stored).map_err(Status::internal)?;
            }
            Ok::<_, Status>(warnings)
        })
        .await
        .map_err(|e| Status::internal(format!("reading warnings failed: {e}")))??;
        Ok(Response::new(pb::ListWarningsResponse {
            warnings,
            next_page_token: next.unwrap_or_default(),
            evaluated_at: Some(nanos_ts(q.now)),
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
        let (served, mut items, next) = {
            let board = self.ledger.board().read().expect("board lock");
            queue(
                &board,
                kind,
                day,
                business_line.as_deref(),
                after.as_ref(),
                page_size(req.page_size),
            )
        };
        let rows = self.ledger.index();
        for item in &mut items {
            item.case_version = rows.version(&item.case_id).unwrap_or(0);
        }
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
        let board = self.ledger.board().read().expect("board lock");
        Ok(Response::new(factor_statistics(
            &board,
            day,
            text_or_none(req.business_line).as_deref(),
        )))
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
        let board = self.ledger.board().read().expect("board lock");
        let in_month = |j: &&JudgementFact| {
            let offset = board
                .cases
                .get(j.case_id.as_str())
                .map(|c| c.utc_offset_minutes)
                .unwrap_or(crate::time::DEFAULT_UTC_OFFSET_MINUTES);
            j.judgement
                .elements
                .as_ref()
                .and_then(|e| e.when.as_ref())
                .map(|w| crate::time::format_local(w, offset).starts_with(&req.month))
                .unwrap_or(false)
        };
        let judgements = board
            .judgements
            .range((agent.clone(), String::new(), String::new())..)
            .take_while(|((a, _, _), _)| *a == agent)
            .map(|(_, j)| j)
            .filter(in_month);
        Ok(Response::new(scorecard(
            &agent,
            &req.month,
            judgements,
            |j| judgement_view(j, now),
        )))
    }

    async fn get_customer_history(
        &self,
        request: Request<pb::GetCustomerHistoryRequest>,
    ) -> Result<Response<pb::CustomerHistory>, Status> {
        let req = request.into_inner();
        let customer = required_id("customer_id", &req.customer_id)?;
        let now = when("evaluate_at", req.evaluate_at.as_ref())?.unwrap_or_else(now_nanos);
        let board = self.ledger.board().read().expect("board lock");
        if !board.customers.contains_key(&customer) {
            return Err(Status::not_found(format!(
                "no case names customer {customer}"
            )));
        }
        Ok(Response::new(listings::customer_history(
            &board, &customer, now,
        )))
    }
}
