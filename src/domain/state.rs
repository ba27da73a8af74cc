//! The write-side state of one case: just what the append rules need to
//! decide, and what the case summary shows. It is folded from the case's
//! events (`evolve`) and never stored on its own, so it can always be rebuilt.

use super::party::acting_party;
use crate::proto::v1::{case_event::Kind, CaseEvent, EscalationLevel, PartyKind, StoredRecord};
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

    /// Applies one stored event to the state. Events reaching here were
    /// accepted by the rules, so this never fails.
    pub fn evolve(&mut self, event: &CaseEvent) {
        let Some(kind) = &event.kind else { return };
        match kind {
            Kind::CaseOpened(e) => {
                self.status = CaseStatus::Open;
                self.customer_id = e.customer_id.clone();
                self.business_line = e.business_line.clone();
                self.escalation_level = EscalationLevel::Agent;
            }
            Kind::ContactLogged(e) => {
                self.contacts.insert(e.contact_id.clone(), e.channel);
                // Only agents count as agents: a volunteer or a manager
                // who made a contact is named in `party`, never here.
                if let Some(p) = acting_party(e.party.as_ref(), &e.agent_id)
                    .filter(|p| p.kind == PartyKind::Agent as i32)
                {
                    *self.agents.entry(p.id).or_default() += 1;
                }
            }
            Kind::DemandRecorded(e) => {
                self.demands.insert(e.demand_id.clone(), true);
            }
            Kind::DemandDeclined(e) => {
                self.demands.insert(e.demand_id.clone(), false);
            }
            Kind::DemandWithdrawn(e) => {
                self.demands.insert(e.demand_id.clone(), false);
            }
            Kind::WarningWithdrawn(e) => {
                self.withdrawn_warnings.insert(e.warning_id.clone());
            }
            Kind::PromiseMade(e) => {
                self.promises.insert(e.promise_id.clone(), true);
            }
            Kind::TicketSubmitted(e) => {
                self.tickets
                    .insert(e.ticket_id.clone(), TicketStage::AwaitingReview);
            }
            Kind::TicketRejected(e) => {
                self.tickets
                    .insert(e.ticket_id.clone(), TicketStage::Rejected);
            }
            Kind::TicketAppended(e) => {
                self.tickets
                    .insert(e.ticket_id.clone(), TicketStage::AwaitingReview);
            }
            Kind::TicketResultGiven(e) => {
                self.tickets
                    .insert(e.ticket_id.clone(), TicketStage::ResultGiven);
            }
            Kind::CallbackAttempted(e) => {
                self.callbacks.insert(e.callback_id.clone());
            }
            Kind::CallbackCompleted(e) => {
                self.callbacks.insert(e.callback_id.clone());
                if e.reached {
                    if let Some(open) = self.promises.get_mut(&e.promise_id) {
                        *open = false;
                    }
                }
            }
            Kind::Escalated(e) => {
                self.escalation_level = e.to_level();
            }
            Kind::WarningRaised(e) => {
                self.warnings.insert(e.warning_id.clone());
            }
            Kind::ViolationJudged(e) => {
                if let Some(d) = &e.appeal_deadline {
                    self.appeal_deadlines
                        .insert(e.judgement_id.clone(), crate::time::ts_nanos(d));
                }
                self.judgements.insert(
                    e.judgement_id.clone(),
                    JudgementStage::Judged {
                        established: e.established,
                    },
                );
            }
            Kind::ViolationAppealed(e) => {
                self.judgements
                    .insert(e.judgement_id.clone(), JudgementStage::Appealed);
            }
            Kind::AppealDecided(e) => {
                self.judgements
                    .insert(e.judgement_id.clone(), JudgementStage::Decided);
            }
            Kind::CaseResolved(r) => {
                self.status = CaseStatus::Resolved;
                self.resolution_accepted = Some(r.customer_accepted);
            }
            Kind::CaseClosed(_) => self.status = CaseStatus::Closed,
            Kind::CaseReopened(_) => {
                self.status = CaseStatus::Open;
                self.resolution_accepted = None;
            }
            Kind::ExternalComplaintReceived(e) => {
                self.external_complaints.insert(e.reference_number.clone());
            }
            Kind::DissatisfactionClassified(_)
            | Kind::SurveyDone(_)
            | Kind::ExternalComplaintAnswered(_)
            | Kind::PersonalDataErased(_)
            | Kind::OwnerAssigned(_)
            | Kind::NoteAdded(_) => {}
            Kind::EventCorrected(c) => match c.replacement.as_ref().and_then(|r| r.kind.as_ref()) {
                // A correction of a judgement carries the appeal deadline
                // stamped as of the original notice: one left pending when
                // the calendar did not cover it is enforced from then on.
                Some(Kind::ViolationJudged(j)) => {
                    if let Some(d) = &j.appeal_deadline {
                        self.appeal_deadlines
                            .insert(j.judgement_id.clone(), crate::time::ts_nanos(d));
                    }
                }
                // A corrected resolution corrects the one standing: the
                // state does not keep event ids, and a resolution set aside
                // by a reopen is not corrected into standing again.
                Some(Kind::CaseResolved(r)) if self.status != CaseStatus::Open => {
                    self.resolution_accepted = Some(r.customer_accepted);
                }
                _ => {}
            },
        }
    }
}
