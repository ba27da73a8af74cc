//! Queries over the policy board: promises by due time, warnings, the
//! KF-006 queues and factor statistics, scorecards, customer histories, a
//! customer's cases, and the counts the metrics endpoint exports.
//!
//! The functions that complete a page from the log (`complete_*`) read
//! stored records and block: call them off the async workers.

use crate::ledger::{Ledger, LedgerError};
use crate::projections::board::{ContactKey, JudgementFact, PromiseKey};
use crate::projections::case_view::judgement_flags;
use crate::projections::kf006;
use crate::projections::listings::{self, ListedPromise, PromiseQuery, WarningQuery};
use crate::proto::v1::{self as pb, QueueKind};
use time::Date;

/// A page of promises as the board lists them, and the token of the next.
pub fn promises(
    ledger: &Ledger,
    q: &PromiseQuery,
    after: Option<&PromiseKey>,
    limit: usize,
) -> (Vec<ListedPromise>, Option<String>) {
    let board = ledger.board().read().expect("board lock");
    listings::promises(&board, q, after, limit)
}

/// Whether completing these promises reads the log (a closed case's).
pub fn promises_need_the_log(listed: &[ListedPromise]) -> bool {
    listed.iter().any(|l| l.read_promise_at.is_some())
}

/// The listed promises with the words the board does not keep (a closed
/// case's), read from the log.
pub fn complete_promises(
    ledger: &Ledger,
    listed: Vec<ListedPromise>,
) -> Result<Vec<pb::PromiseEntry>, LedgerError> {
    let mut promises = Vec::with_capacity(listed.len());
    for l in listed {
        let mut entry = l.entry;
        if let Some(position) = l.read_promise_at {
            let stored = ledger.read_at(position)?.ok_or_else(|| {
                LedgerError::Storage(format!("promise at position {position} is not durable"))
            })?;
            listings::complete_promise(&mut entry, stored).map_err(LedgerError::Storage)?;
        }
        promises.push(entry);
    }
    Ok(promises)
}

/// A page of warnings as the board lists them (without their stored
/// content), and the token of the next.
pub fn warnings(
    ledger: &Ledger,
    q: &WarningQuery,
    after: u64,
    limit: usize,
) -> (Vec<pb::WarningEntry>, Option<String>) {
    let board = ledger.board().read().expect("board lock");
    listings::warnings(&board, q, after, limit)
}

/// The listed warnings with their event ids and content, read from the log.
pub fn complete_warnings(
    ledger: &Ledger,
    mut warnings: Vec<pb::WarningEntry>,
) -> Result<Vec<pb::WarningEntry>, LedgerError> {
    for w in &mut warnings {
        let stored = ledger.read_at(w.position)?.ok_or_else(|| {
            LedgerError::Storage(format!("warning at position {} is not durable", w.position))
        })?;
        listings::complete_warning(w, stored).map_err(LedgerError::Storage)?;
    }
    Ok(warnings)
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
) -> (Date, Vec<pb::QueueItem>, Option<String>) {
    let (served, mut items, next) = {
        let board = ledger.board().read().expect("board lock");
        kf006::queue(&board, kind, day, business_line, after, limit)
    };
    let rows = ledger.index();
    for item in &mut items {
        item.case_version = rows.version(&item.case_id).unwrap_or(0);
    }
    (served, items, next)
}

/// The week's dissatisfied contacts by factor.
pub fn factor_statistics(
    ledger: &Ledger,
    day: Date,
    business_line: Option<&str>,
) -> pb::FactorStatistics {
    let board = ledger.board().read().expect("board lock");
    kf006::factor_statistics(&board, day, business_line)
}

/// An agent's scorecard for a month (`YYYY-MM`, the incident's local
/// month), judgements judged as of `now`.
pub fn scorecard(ledger: &Ledger, agent: &str, month: &str, now: i128) -> pb::Scorecard {
    let board = ledger.board().read().expect("board lock");
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
            .map(|w| crate::time::format_local(w, offset).starts_with(month))
            .unwrap_or(false)
    };
    let judgements = board
        .judgements
        .range((agent.to_string(), String::new(), String::new())..)
        .take_while(|((a, _, _), _)| a == agent)
        .map(|(_, j)| j)
        .filter(in_month);
    crate::projections::scorecard::scorecard(agent, month, judgements, |j| judgement_view(j, now))
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
pub fn customer_history(ledger: &Ledger, customer: &str, now: i128) -> Option<pb::CustomerHistory> {
    let board = ledger.board().read().expect("board lock");
    board
        .customers
        .contains_key(customer)
        .then(|| listings::customer_history(&board, customer, now))
}

/// The ids of the cases that name a customer.
pub fn cases_of_customer(ledger: &Ledger, customer: &str) -> Vec<String> {
    let board = ledger.board().read().expect("board lock");
    board
        .customers
        .get(customer)
        .map(|s| s.iter().map(|c| c.to_string()).collect())
        .unwrap_or_default()
}

/// The cases of each customer with the business line of each.
pub fn cases_with_lines(ledger: &Ledger, customer: &str) -> Vec<(String, String)> {
    let board = ledger.board().read().expect("board lock");
    board
        .customers
        .get(customer)
        .into_iter()
        .flatten()
        .map(|case| {
            let line = board
                .cases
                .get(case)
                .map(|f| f.business_line.clone())
                .unwrap_or_default();
            (case.to_string(), line)
        })
        .collect()
}

/// Warnings raised, and how many stand unanswered past their time to
/// escalate at `now` (one pass over the board's warnings).
pub fn warning_counts(ledger: &Ledger, now: i128) -> (u64, u64) {
    let escalate_within = ledger.policy().escalate_within_nanos();
    let board = ledger.board().read().expect("board lock");
    (
        board.warnings.len() as u64,
        listings::unanswered_warnings(&board, now, escalate_within),
    )
}
