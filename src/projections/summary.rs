//! The case list: one summary per case, filterable by status, customer, agent
//! and open promises. Maintained by the ledger's writer from the same state
//! the rules decide on, and rebuilt from the log at every start.

use crate::domain::{CaseState, CaseStatus};
use crate::proto::v1 as pb;
use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::RwLock;

/// One case in the list.
#[derive(Debug, Clone)]
pub struct SummaryEntry {
    pub summary: pb::CaseSummary,
    pub agents: HashSet<String>,
}

/// All case summaries, in case-id order.
#[derive(Default)]
pub struct CaseIndex {
    rows: RwLock<BTreeMap<String, SummaryEntry>>,
    /// How many rows are of closed cases (`Ops.GetStats`), kept as rows
    /// change rather than counted under the lock the writer takes.
    closed: AtomicU64,
}

/// Filter of `ListCases`.
#[derive(Debug, Clone, Default)]
pub struct CaseFilter {
    pub status: Option<pb::CaseStatus>,
    pub customer_id: Option<String>,
    pub agent_id: Option<String>,
    pub only_with_open_promises: bool,
    /// Only closed cases whose standing resolution the customer did not
    /// accept, or that have none.
    pub only_closed_without_acceptance: bool,
    /// Only cases of this business line (a scoped caller's own).
    pub business_line: Option<String>,
}

pub fn status_of(s: CaseStatus) -> pb::CaseStatus {
    match s {
        CaseStatus::Open => pb::CaseStatus::Open,
        CaseStatus::Resolved => pb::CaseStatus::Resolved,
        CaseStatus::Closed => pb::CaseStatus::Closed,
    }
}

/// The summary row of a case state.
pub fn summarize(case_id: &str, s: &CaseState) -> SummaryEntry {
    SummaryEntry {
        summary: pb::CaseSummary {
            case_id: case_id.to_string(),
            version: s.version,
            status: status_of(s.status) as i32,
            customer_id: s.customer_id.clone(),
            business_line: s.business_line.clone(),
            contacts: s.contacts.len() as u32,
            open_promises: s.open_promises() as u32,
            escalation_level: s.escalation_level as i32,
            last_recorded_at: Some(crate::time::nanos_ts(s.last_recorded_at)),
            acceptance: match s.resolution_accepted {
                None => pb::Acceptance::Unspecified,
                Some(true) => pb::Acceptance::Accepted,
                Some(false) => pb::Acceptance::NotAccepted,
            } as i32,
        },
        agents: s.agents.keys().cloned().collect(),
    }
}

impl CaseIndex {
    /// SHA-256 of every row in case-id order (agents sorted): equal indexes,
    /// equal digests.
    pub fn digest(&self) -> String {
        use sha2::{Digest, Sha256};
        let rows = self.rows.read().expect("case index lock");
        let mut h = Sha256::new();
        for (id, e) in rows.iter() {
            let mut agents: Vec<_> = e.agents.iter().collect();
            agents.sort();
            h.update(format!("{id}\n{:?}\n{agents:?}\n", e.summary).as_bytes());
        }
        hex::encode(h.finalize())
    }

    pub fn upsert(&self, entry: SummaryEntry) {
        let closed = |e: &SummaryEntry| e.summary.status == pb::CaseStatus::Closed as i32;
        let now = closed(&entry);
        let mut rows = self.rows.write().expect("case index lock");
        let was = rows
            .insert(entry.summary.case_id.clone(), entry)
            .is_some_and(|old| closed(&old));
        match (was, now) {
            (false, true) => self.closed.fetch_add(1, Ordering::Relaxed),
            (true, false) => self.closed.fetch_sub(1, Ordering::Relaxed),
            _ => 0,
        };
    }

    /// How many cases are closed.
    pub fn closed(&self) -> u64 {
        self.closed.load(Ordering::Relaxed)
    }

    /// A case's customer.
    pub fn customer_id(&self, case_id: &str) -> Option<String> {
        self.rows
            .read()
            .expect("case index lock")
            .get(case_id)
            .map(|e| e.summary.customer_id.clone())
    }

    /// A case's business line.
    pub fn business_line(&self, case_id: &str) -> Option<String> {
        self.rows
            .read()
            .expect("case index lock")
            .get(case_id)
            .map(|e| e.summary.business_line.clone())
    }

    /// A case's current version.
    pub fn version(&self, case_id: &str) -> Option<u64> {
        self.rows
            .read()
            .expect("case index lock")
            .get(case_id)
            .map(|e| e.summary.version)
    }

    pub fn contains(&self, case_id: &str) -> bool {
        self.rows
            .read()
            .expect("case index lock")
            .contains_key(case_id)
    }

    pub fn len(&self) -> usize {
        self.rows.read().expect("case index lock").len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Up to `limit` matching summaries with case id after `after`, and
    /// whether more follow.
    pub fn list(
        &self,
        filter: &CaseFilter,
        after: &str,
        limit: usize,
    ) -> (Vec<pb::CaseSummary>, bool) {
        use std::ops::Bound::{Excluded, Unbounded};
        let rows = self.rows.read().expect("case index lock");
        let lower = if after.is_empty() {
            Unbounded
        } else {
            Excluded(after.to_string())
        };
        let mut out = Vec::new();
        let mut more = false;
        for (_, e) in rows.range::<String, _>((lower, Unbounded)) {
            let s = &e.summary;
            let keep = filter.status.is_none_or(|st| s.status == st as i32)
                && filter
                    .customer_id
                    .as_ref()
                    .is_none_or(|c| &s.customer_id == c)
                && filter
                    .agent_id
                    .as_ref()
                    .is_none_or(|a| e.agents.contains(a))
                && (!filter.only_with_open_promises || s.open_promises > 0)
                && (!filter.only_closed_without_acceptance
                    || (s.status == pb::CaseStatus::Closed as i32
                        && s.acceptance != pb::Acceptance::Accepted as i32))
                && filter
                    .business_line
                    .as_ref()
                    .is_none_or(|b| &s.business_line == b);
            if !keep {
                continue;
            }
            if out.len() == limit {
                more = true;
                break;
            }
            out.push(s.clone());
        }
        (out, more)
    }
}
