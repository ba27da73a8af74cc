//! The write-side state of one case: just what the append rules need to
//! decide, and what the case summary shows. It is folded from the case's
//! events (`evolve`) and never stored on its own, so it can always be rebuilt.

use crate::proto::v1::{CaseEvent, EscalationLevel, StoredRecord};
use std::collections::{HashMap, HashSet};

/// Lifecycle of a case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CaseStatus {
    #[default]
    Open,
    Resolved,
    Closed,
}

/// Where a ticket stands with the second line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TicketStage {
    /// Submitted or resubmitted: waiting for the second line.
    AwaitingReview,
    /// Sent back; needs an append before it can be reviewed again.
    Rejected,
    /// A result was given.
    ResultGiven,
}

/// Where a judgement against an agent stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JudgementStage {
    Judged { established: bool },
    Appealed,
    Decided,
}

/// Write-side state of one case.
#[derive(Debug, Clone, Default)]
pub struct CaseState {
    /// Version of the last event (0: no event yet).
    pub version: u64,
    /// Record hash of the last event (zeros before the first).
    pub last_hash: [u8; 32],
    /// Position of the last event in the global log.
    pub last_position: u64,
    /// Server time of the last event, nanoseconds since the epoch.
    pub last_recorded_at: i128,
    pub status: CaseStatus,
    pub customer_id: String,
    pub business_line: String,
    pub escalation_level: EscalationLevel,
    /// Contacts logged, with their channel (KF-006 factors depend on it).
    pub contacts: HashMap<String, i32>,
    /// Agents with at least one contact, and their contact counts.
    pub agents: HashMap<String, u32>,
    /// Demands recorded, and whether each is still open (not declined or
    /// withdrawn).
    pub demands: HashMap<String, bool>,
    /// All promises, and whether each is still waiting for a delivery.
    pub promises: HashMap<String, bool>,
    pub tickets: HashMap<String, TicketStage>,
    pub callbacks: HashSet<String>,
    pub warnings: HashSet<String>,
    /// Warnings a `WarningWithdrawn` said no longer hold.
    pub withdrawn_warnings: HashSet<String>,
    pub judgements: HashMap<String, JudgementStage>,
    /// Appeal deadlines of judgements (nanoseconds), as stamped by the server.
    pub appeal_deadlines: HashMap<String, i128>,
    /// Reference numbers of outside complaints received.
    pub external_complaints: HashSet<String>,
    /// Whether the customer accepted the resolution standing: `None`
    /// before any, and after a reopen.
    pub resolution_accepted: Option<bool>,
}

impl CaseState {
    /// Whether the case has been opened (has at least one event).
    pub fn exists(&self) -> bool {
        self.version > 0
    }

    /// Promises made and not yet answered by any delivery.
    pub fn open_promises(&self) -> usize {
        self.promises.values().filter(|open| **open).count()
    }

    /// Applies a stored record: its decoded payload `event`, then the
    /// version, position and recorded time of its envelope and its `hash`.
    /// How every fold of stored records (a start, a rebuild, a closed case
    /// folded for an append) builds a case's state.
    pub fn apply_record(&mut self, rec: &StoredRecord, event: &CaseEvent, hash: [u8; 32]) {
        let recorded = rec
            .recorded_at
            .as_ref()
            .map(crate::time::ts_nanos)
            .unwrap_or(0);
        self.apply_stored(event, rec.case_version, hash, rec.position, recorded);
    }

    /// Applies a stored event with its envelope facts: the event itself, then
    /// the version, chain hash, position and recorded time it was stored with.
    pub fn apply_stored(
        &mut self,
        event: &CaseEvent,
        version: u64,
        hash: [u8; 32],
        position: u64,
        recorded_at: i128,
    ) {
        self.evolve(event);
        self.version = version;
        self.last_hash = hash;
        self.last_position = position;
        self.last_recorded_at = recorded_at;
    }
}
