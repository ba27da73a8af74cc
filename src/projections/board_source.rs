//! What the cross-case queries read the policy board through: its indexes
//! in order, and one case's facts at a time.
//!
//! Why a trait: the server's board lives on disk ([`super::board_store`]),
//! its indexes in the store and each case's facts folded from the case's
//! stream on demand; a board folded in memory ([`Board`]) answers the same
//! questions, which is what the queries' unit tests fold and what a rebuild
//! compares against. A query written once against this trait reads both
//! the same way.

use super::board::{Board, ContactKey, PromiseKey};
use crate::proto::v1::QueueKind;
use std::ops::{Bound, Deref};
use std::sync::Arc;
use time::Date;

/// (agent, case, judgement id): a judgement's place in the board.
pub type JudgementKey = (String, String, String);

pub trait BoardSource {
    /// One case's facts: a board holding that case (and perhaps others).
    type Case<'a>: Deref<Target = Board>
    where
        Self: 'a;

    /// The facts of `case_id`; None when the board has no such case.
    fn case(&self, case_id: &str) -> Result<Option<Self::Case<'_>>, String>;

    /// Up to `n` promises by (due time, case, event), after `after`.
    fn promise_keys(&self, after: Option<&PromiseKey>, n: usize)
        -> Result<Vec<PromiseKey>, String>;

    /// Every promise whose due time as last corrected is provisional.
    fn provisional_keys(&self) -> Result<Vec<(Arc<str>, String)>, String>;

    /// Up to `n` dissatisfied contacts waiting for a follow-up of `kind`,
    /// by (contact time, case, contact), after `after`.
    fn waiting_keys(
        &self,
        kind: QueueKind,
        after: Option<&ContactKey>,
        n: usize,
    ) -> Result<Vec<ContactKey>, String>;

    /// The dissatisfied contacts of the local week starting `monday`:
    /// (case, contact).
    fn week_contacts(&self, monday: Date) -> Result<Vec<(Arc<str>, String)>, String>;

    /// Up to `n` warnings from log position `from`: (position, case).
    fn warning_keys(&self, from: u64, n: usize) -> Result<Vec<(u64, Arc<str>)>, String>;

    /// The cases of a customer; empty when no case names it.
    fn customer_cases(&self, customer_id: &str) -> Result<Vec<Arc<str>>, String>;

    /// The judgements of an agent.
    fn judgement_keys(&self, agent_id: &str) -> Result<Vec<JudgementKey>, String>;

    /// Every judgement whose appeal deadline is pending or provisional.
    fn pending_judgement_keys(&self) -> Result<Vec<JudgementKey>, String>;

    /// Warnings ever raised.
    fn warnings_raised(&self) -> Result<u64, String>;

    /// Warnings standing unanswered past their time to escalate at `now`,
    /// `escalate_within` nanoseconds after they were raised.
    fn warnings_overdue(&self, now: i128, escalate_within: i128) -> Result<u64, String>;
}

fn after_in<K: Ord + Clone>(
    set: &std::collections::BTreeSet<K>,
    after: Option<&K>,
    n: usize,
) -> Vec<K> {
    let range = match after {
        Some(a) => set.range((Bound::Excluded(a.clone()), Bound::Unbounded)),
        None => set.range(..),
    };
    range.take(n).cloned().collect()
}

/// A board folded in memory answers from its own maps.
impl BoardSource for Board {
    type Case<'a> = &'a Board;

    fn case(&self, case_id: &str) -> Result<Option<&Board>, String> {
        Ok(self.cases.contains_key(case_id).then_some(self))
    }

    fn promise_keys(
        &self,
        after: Option<&PromiseKey>,
        n: usize,
    ) -> Result<Vec<PromiseKey>, String> {
        Ok(after_in(&self.promises_by_due, after, n))
    }

    fn provisional_keys(&self) -> Result<Vec<(Arc<str>, String)>, String> {
        Ok(self.provisional_promises.iter().cloned().collect())
    }

    fn waiting_keys(
        &self,
        kind: QueueKind,
        after: Option<&ContactKey>,
        n: usize,
    ) -> Result<Vec<ContactKey>, String> {
        Ok(match kind {
            QueueKind::Survey => after_in(&self.awaiting_survey, after, n),
            QueueKind::Callback => after_in(&self.awaiting_callback, after, n),
            QueueKind::Unspecified => Vec::new(),
        })
    }

    fn week_contacts(&self, monday: Date) -> Result<Vec<(Arc<str>, String)>, String> {
        let week = (monday, Arc::from(""), String::new())
            ..(
                monday + time::Duration::days(7),
                Arc::from(""),
                String::new(),
            );
        Ok(self
            .dissatisfied_by_week
            .range(week)
            .map(|(_, case, contact)| (Arc::clone(case), contact.clone()))
            .collect())
    }

    fn warning_keys(&self, from: u64, n: usize) -> Result<Vec<(u64, Arc<str>)>, String> {
        Ok(self
            .warnings
            .range(from..)
            .take(n)
            .map(|(p, w)| (*p, Arc::clone(&w.case_id)))
            .collect())
    }

    fn customer_cases(&self, customer_id: &str) -> Result<Vec<Arc<str>>, String> {
        Ok(self
            .customers
            .get(customer_id)
            .map(|s| s.iter().cloned().collect())
            .unwrap_or_default())
    }

    fn judgement_keys(&self, agent_id: &str) -> Result<Vec<JudgementKey>, String> {
        Ok(self
            .judgements
            .range((agent_id.to_string(), String::new(), String::new())..)
            .take_while(|((a, _, _), _)| a == agent_id)
            .map(|(k, _)| k.clone())
            .collect())
    }

    fn pending_judgement_keys(&self) -> Result<Vec<JudgementKey>, String> {
        Ok(self
            .judgements
            .iter()
            .filter(|(_, j)| {
                !j.judgement.deadline_pending.is_empty() || j.judgement.deadline_provisional
            })
            .map(|(k, _)| k.clone())
            .collect())
    }

    fn warnings_raised(&self) -> Result<u64, String> {
        Ok(self.warnings.len() as u64)
    }

    fn warnings_overdue(&self, now: i128, escalate_within: i128) -> Result<u64, String> {
        Ok(self
            .warnings
            .values()
            .filter(|w| self.judge_warning(w, now, escalate_within).overdue)
            .count() as u64)
    }
}
