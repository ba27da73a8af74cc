//! Queries over the policy board: promises by due time, warnings, the
//! KF-006 queues and factor statistics, scorecards, customer histories, a
//! customer's cases, and the counts the metrics endpoint exports.
//!
//! Every one reads the store (the board's indexes, and cases' streams for
//! facts not cached) and blocks: call them off the async workers.

use crate::ledger::{Ledger, LedgerError};
use crate::projections::board::{ContactKey, JudgementFact, PromiseKey};
use crate::projections::board_source::BoardSource;
use crate::projections::case_view::judgement_flags;
use crate::projections::kf006;
use crate::projections::listings::{self, PromiseQuery, WarningQuery};
use crate::proto::v1::{self as pb, QueueKind};
use time::Date;

fn storage(e: String) -> LedgerError {
    LedgerError::Storage(e)
}

/// A page of promises, each with its words (a closed case's are read from
/// the log), and the token of the next.
pub fn promises(
    ledger: &Ledger,
    q: &PromiseQuery,
    after: Option<&PromiseKey>,
    limit: usize,
) -> Result<(Vec<pb::PromiseEntry>, Option<String>), LedgerError> {
    let (listed, next) = listings::promises(ledger.board(), q, after, limit).map_err(storage)?;
    let mut promises = Vec::with_capacity(listed.len());
    for l in listed {
        let mut entry = l.entry;
        if let Some(position) = l.read_promise_at {
            let stored = ledger.read_at(position)?.ok_or_else(|| {
                LedgerError::Storage(format!("promise at position {position} is not durable"))
            })?;
            listings::complete_promise(&mut entry, stored).map_err(storage)?;
        }
        promises.push(entry);
    }
    Ok((promises, next))
}

/// A page of warnings with their event ids and content (read from the
/// log), and the token of the next.
pub fn warnings(
    ledger: &Ledger,
    q: &WarningQuery,
    after: u64,
    limit: usize,
) -> Result<(Vec<pb::WarningEntry>, Option<String>), LedgerError> {
    let (mut warnings, next) =
        listings::warnings(ledger.board(), q, after, limit).map_err(storage)?;
    for w in &mut warnings {
        let stored = ledger.read_at(w.position)?.ok_or_else(|| {
            LedgerError::Storage(format!("warning at position {} is not durable", w.position))
        })?;
        listings::complete_warning(w, stored).map_err(storage)?;
    }
    Ok((warnings, next))
}

/// A page of a KF-006 queue for `day`: the week it serves, its items (with
/// the case version to replay before calling), the token of the next page.
pub fn queue(
    ledger: &Ledger,
    kind: QueueKind,
    day: Date,
    business_line: Option<&str>,
    after: Option<&ContactKey>,
    limit: usize,
) -> Result<(Date, Vec<pb::QueueItem>, Option<String>), LedgerError> {
    let (served, mut items, next) =
        kf006::queue(ledger.board(), kind, day, business_line, after, limit).map_err(storage)?;
    for item in &mut items {
        item.case_version = ledger.durable_version(&item.case_id)?.unwrap_or(0);
    }
    Ok((served, items, next))
}

/// The week's dissatisfied contacts by factor.
pub fn factor_statistics(
    ledger: &Ledger,
    day: Date,
    business_line: Option<&str>,
) -> Result<pb::FactorStatistics, LedgerError> {
    kf006::factor_statistics(ledger.board(), day, business_line).map_err(storage)
}

/// An agent's scorecard for a month (`YYYY-MM`, the incident's local
/// month), judgements judged as of `now`.
pub fn scorecard(
    ledger: &Ledger,
    agent: &str,
    month: &str,
    now: i128,
) -> Result<pb::Scorecard, LedgerError> {
    let board = ledger.board();
    let mut judgements = Vec::new();
    for key in board.judgement_keys(agent).map_err(storage)? {
        let Some(facts) = board.case(&key.1).map_err(storage)? else {
            continue;
        };
        let Some(j) = facts.judgements.get(&key) else {
            continue;
        };
        let offset = facts
            .cases
            .get(j.case_id.as_str())
            .map(|c| c.utc_offset_minutes)
            .unwrap_or(crate::time::DEFAULT_UTC_OFFSET_MINUTES);
        let in_month = j
            .judgement
            .elements
            .as_ref()
            .and_then(|e| e.when.as_ref())
            .map(|w| crate::time::format_local(w, offset).starts_with(month))
            .unwrap_or(false);
        if in_month {
            judgements.push(j.clone());
        }
    }
    Ok(crate::projections::scorecard::scorecard(
        agent,
        month,
        judgements.iter(),
        |j| judgement_view(j, now),
    ))
}

fn judgement_view(j: &JudgementFact, now: i128) -> pb::JudgementView {
    let x = &j.judgement;
    let (appeal_window_open, judged_without_agent) = judgement_flags(x, j.appealed_at, now);
    pb::JudgementView {
        event_id: j.event_id.clone(),
        case_id: j.case_id.clone(),
        judgement: Some(x.clone()),
        appealed: j.appealed_at.is_some(),
        appeal_decided: j.appeal_upheld.is_some(),
        upheld: j.appeal_upheld.unwrap_or(false),
        appeal_window_open,
        judged_without_agent,
    }
}

/// A customer's cases with their facts, judged at `now`; None when no case
/// names the customer.
pub fn customer_history(
    ledger: &Ledger,
    customer: &str,
    now: i128,
) -> Result<Option<pb::CustomerHistory>, LedgerError> {
    listings::customer_history(ledger.board(), customer, now).map_err(storage)
}

/// The ids of the cases that name a customer.
pub fn cases_of_customer(ledger: &Ledger, customer: &str) -> Result<Vec<String>, LedgerError> {
    Ok(ledger
        .board()
        .customer_cases(customer)
        .map_err(storage)?
        .iter()
        .map(|c| c.to_string())
        .collect())
}

/// The cases of a customer with the business line of each.
pub fn cases_with_lines(
    ledger: &Ledger,
    customer: &str,
) -> Result<Vec<(String, String)>, LedgerError> {
    let board = ledger.board();
    let mut out = Vec::new();
    for case in board.customer_cases(customer).map_err(storage)? {
        let line = board
            .case(&case)
            .map_err(storage)?
            .and_then(|f| f.cases.get(&*case).map(|c| c.business_line.clone()))
            .unwrap_or_default();
        out.push((case.to_string(), line));
    }
    Ok(out)
}

/// Warnings raised, and how many stand unanswered past their time to
/// escalate at `now` (a range of the board's index of unanswered ones).
pub fn warning_counts(ledger: &Ledger, now: i128) -> Result<(u64, u64), LedgerError> {
    let escalate_within = ledger.policy().escalate_within_nanos();
    let board = ledger.board();
    Ok((
        board.warnings_raised().map_err(storage)?,
        board
            .warnings_overdue(now, escalate_within)
            .map_err(storage)?,
    ))
}
