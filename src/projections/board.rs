//! The policy board: the cross-case read models ops and supervisors ask for —
//! promises due or broken, warnings and whether they were escalated, the
//! KF-006 survey and callback queues, agent scorecards, customer histories.
//!
//! It is a pure fold over committed events ([`Board::apply`]). The server
//! folds one case's events at a time into a board of that case, whose
//! index keys (`board_keys`) it keeps in the store (`board_store`); a board
//! folded from the whole log holds every case, which is what the tests and
//! the offline rebuild fold. Everything is kept in ordered maps, so two
//! boards folded from the same events are equal.

use super::fact::{Fact, History, OwnedFact};
use super::promise_book::{due_key, moves_promises, CasePromises, PromiseBook};
use crate::proto::v1::{self as pb, case_event::Kind, CustomerResponse};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use time::Date;

/// What the board keeps of one case.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CaseFacts {
    pub customer_id: String,
    pub business_line: String,
    pub utc_offset_minutes: i32,
    pub opened_at: Option<prost_types::Timestamp>,
    pub status: i32,
    pub contacts: u32,
    /// Contacts by id: (event id, started at, channel, agent), for a
    /// classification to name. Empty while the case is closed (a closed
    /// case takes no classification); a reopen folds them again.
    pub contact_info: BTreeMap<String, ContactInfo>,
    /// Log positions of the case's warnings, in order.
    pub warnings: Vec<u64>,
    pub escalation_level: i32,
    /// Escalations in log order.
    pub escalations: Vec<EscalationFact>,
    /// Results the customer refused.
    pub refusals: u32,
    /// The last resolution: whether the customer accepted it.
    pub resolution_accepted: Option<bool>,
    /// Tickets waiting for the second line's result.
    pub tickets_waiting: BTreeSet<String>,
    pub external_complaints: u32,
    pub promises: PromiseBook,
}

impl CaseFacts {
    pub fn is_closed(&self) -> bool {
        self.status == pb::CaseStatus::Closed as i32
    }

    /// Whether the case's contacts and promise book are set aside: it is
    /// closed. Most of a ledger's cases are; kept whole, their contacts and
    /// books were ~5 KB each (a case like the seed's) for as long as the
    /// server ran.
    pub fn set_aside(&self) -> bool {
        self.promises.is_closed()
    }

    /// What a close leaves: the settled promise book, no contacts.
    fn set_contacts_and_promises_aside(&mut self) {
        self.contact_info = BTreeMap::new();
        self.promises.close(self.utc_offset_minutes);
    }

    /// Takes the contacts and the whole promise book back from the case's
    /// earlier events, as if they had never been set aside.
    fn take_back(&mut self, earlier: &[OwnedFact]) {
        let mut book = CasePromises::default();
        self.contact_info.clear();
        for e in earlier {
            let f = e.fact();
            book.apply(&f);
            if let Some(Kind::ContactLogged(c)) = &f.event.kind {
                self.contact_info
                    .insert(c.contact_id.clone(), ContactInfo::of(&f, c));
            }
        }
        self.promises = PromiseBook::Open(book);
    }
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct ContactInfo {
    pub event_id: String,
    pub started_at: Option<prost_types::Timestamp>,
    pub channel: i32,
    /// The agent who made or took it; empty when that was not an agent.
    pub agent_id: String,
    /// Who made or took it when that was not an agent (most contacts are
    /// an agent's, and cost nothing more here).
    pub other_party: Option<Box<pb::Party>>,
}

impl ContactInfo {
    fn of(f: &Fact<'_>, c: &pb::ContactLogged) -> Self {
        let party = crate::domain::party::acting_party(c.party.as_ref(), &c.agent_id);
        let (agent_id, other_party) = match party {
            Some(p) if p.kind == pb::PartyKind::Agent as i32 => (p.id, None),
            other => (String::new(), other.map(Box::new)),
        };
        ContactInfo {
            event_id: f.event_id.to_string(),
            started_at: c.started_at.or(f.occurred_at),
            channel: c.channel,
            agent_id,
            other_party,
        }
    }

    /// Who made or took it: its agent, or the other party.
    pub fn party(&self) -> Option<pb::Party> {
        match &self.other_party {
            Some(p) => Some((**p).clone()),
            None => crate::domain::party::acting_party(None, &self.agent_id),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct EscalationFact {
    pub event_id: String,
    pub at: i128,
    pub to_level: i32,
    pub warning_id: String,
}

/// A dissatisfied contact's place in the KF-006 queues: (contact time in
/// nanoseconds, case, contact id).
pub type ContactKey = (i128, Arc<str>, String);

/// A promise's place in [`Board::promises_by_due`]: (due time as
/// [`due_key`] gives it, case, promise event id).
pub type PromiseKey = (i128, Arc<str>, String);

/// What the board keeps of a raised warning: what `ListWarnings` filters
/// and judges by. The rest (its event id, reason, triggering event) is read
/// from the log for the warnings a page returns: kept here for every warning
/// ever raised it was ~600 bytes each, the largest part of a closed case's
/// memory (8 warnings for a case like the seed's).
#[derive(Debug, Clone, PartialEq)]
pub struct WarningFact {
    /// Shared with the board's key for the case.
    pub case_id: Arc<str>,
    /// Shared by every warning of the rule.
    pub rule: Arc<str>,
    pub at: i128,
    pub required_level: i32,
    /// A hash of its `warning_id`, to find it when it is withdrawn.
    pub id_hash: u64,
    /// The WarningWithdrawn that withdrew it (event id, business time).
    pub withdrawn: Option<Box<(String, i128)>>,
}

/// A warning as judged at a moment: when it had to be answered, the
/// escalation that answered it, whether it was, and whether it is overdue.
pub struct WarningJudged<'b> {
    pub by: i128,
    pub answer: Option<&'b EscalationFact>,
    pub answered: bool,
    pub overdue: bool,
}

/// The hash [`WarningFact::id_hash`] keeps.
fn warning_id_hash(id: &str) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    id.hash(&mut h);
    h.finish()
}

/// A contact classified as dissatisfied (KF-006), and what was done about it.
#[derive(Debug, Clone, PartialEq)]
pub struct Dissatisfied {
    pub case_id: String,
    pub contact: ContactInfo,
    pub classification: pb::DissatisfactionClassified,
    pub classified_event_id: String,
    /// The survey: (event id, survey without its notes).
    pub survey: Option<(String, pb::SurveyDone)>,
    /// The reached callback that followed it up: (event id, at, callback
    /// without its outcome, promise, ticket or demands). The queue and the
    /// statistics read only its flags; the free text is sealed personal data
    /// of a few hundred bytes that the case view reads from the log.
    pub callback: Option<(
        String,
        Option<prost_types::Timestamp>,
        pb::CallbackCompleted,
    )>,
}

/// A judgement against an agent (standard 003), with its appeal.
#[derive(Debug, Clone, PartialEq)]
pub struct JudgementFact {
    pub case_id: String,
    pub event_id: String,
    pub judgement: pb::ViolationJudged,
    pub appealed_at: Option<i128>,
    /// `Some(upheld)` once the appeal is decided.
    pub appeal_upheld: Option<bool>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Board {
    pub cases: BTreeMap<Arc<str>, CaseFacts>,
    /// Cases of each customer.
    pub customers: BTreeMap<String, BTreeSet<Arc<str>>>,
    /// Warnings by log position.
    pub warnings: BTreeMap<u64, WarningFact>,
    /// The rule names warnings were raised under, each stored once.
    pub rules: BTreeSet<Arc<str>>,
    /// Every promise by (due time, case, promise event id), as
    /// `ListPromises` pages them: a page walks this index from its token
    /// instead of judging every promise of every case.
    pub promises_by_due: BTreeSet<PromiseKey>,
    /// Promises whose due time, as last corrected, is provisional (a year
    /// without an official holiday notice): the ones to correct once it is
    /// loaded. Few: only promises reaching past the official calendar.
    pub provisional_promises: BTreeSet<(Arc<str>, String)>,
    /// Dissatisfied contacts still waiting for a survey, and for a
    /// callback, by (contact time, case, contact): the order the KF-006
    /// queues page them in, so a page walks only what is waiting.
    pub awaiting_survey: BTreeSet<ContactKey>,
    pub awaiting_callback: BTreeSet<ContactKey>,
    /// Dissatisfied contacts by the Monday of their local week: the factor
    /// statistics read one week, not every contact ever classified.
    pub dissatisfied_by_week: BTreeSet<(Date, Arc<str>, String)>,
    /// Dissatisfied contacts by (case, contact).
    pub dissatisfied: BTreeMap<(String, String), Dissatisfied>,
    /// Judgements by (agent, case, judgement id).
    pub judgements: BTreeMap<(String, String, String), JudgementFact>,
    /// Events folded.
    pub events: u64,
}

impl Board {
    /// Whether folding `f` reads the case's earlier events: it reopens a
    /// closed case, or corrects a promise or a demand of one, whose
    /// contacts and promise book were set aside at the close.
    pub fn needs_history(&self, f: &Fact<'_>) -> bool {
        let touches_book = match f.event.kind.as_ref() {
            Some(Kind::CaseReopened(_)) => true,
            Some(Kind::EventCorrected(c)) => matches!(
                c.replacement.as_ref().and_then(|r| r.kind.as_ref()),
                Some(Kind::PromiseMade(_) | Kind::DemandRecorded(_))
            ),
            _ => false,
        };
        touches_book && self.cases.get(f.case_id).is_some_and(|c| c.set_aside())
    }

    /// Whether folding an event of this kind can change what the board
    /// keeps of its case. The kinds it leaves alone are listed (a kind
    /// added later is folded until it is listed here); the store skips
    /// them without reading the case's facts, and a test folds each to
    /// check it changes nothing.
    pub fn folds(kind: &Kind) -> bool {
        !matches!(
            kind,
            Kind::TicketRejected(_)
                | Kind::TicketAppended(_)
                | Kind::CallbackAttempted(_)
                | Kind::NoteAdded(_)
                | Kind::ExternalComplaintAnswered(_)
                | Kind::PersonalDataErased(_)
                | Kind::OwnerAssigned(_)
        )
    }

    /// Folds one committed event. `history` is called only when
    /// [`Self::needs_history`] says so; its error stops the fold with
    /// nothing changed.
    pub fn apply(&mut self, f: &Fact<'_>, history: &mut History<'_>) -> Result<(), String> {
        if self.needs_history(f) {
            let earlier = history(f.case_id, f.position)?;
            if let Some(case) = self.cases.get_mut(f.case_id) {
                case.take_back(&earlier);
            }
        }
        self.fold(f);
        Ok(())
    }

    fn fold(&mut self, f: &Fact<'_>) {
        self.events += 1;
        let Some(kind) = f.event.kind.as_ref() else {
            return;
        };
        let case_key = match self.cases.get_key_value(f.case_id) {
            Some((key, _)) => Arc::clone(key),
            None => {
                let key: Arc<str> = Arc::from(f.case_id);
                self.cases.insert(Arc::clone(&key), CaseFacts::default());
                key
            }
        };
        let case = self.cases.get_mut(f.case_id).expect("inserted above");
        // The dissatisfied contact this event changed, if any.
        let mut refresh: Option<String> = None;
        match kind {
            Kind::CaseOpened(o) => {
                case.customer_id = o.customer_id.clone();
                case.business_line = o.business_line.clone();
                case.utc_offset_minutes = if o.utc_offset_minutes == 0 {
                    crate::time::DEFAULT_UTC_OFFSET_MINUTES
                } else {
                    o.utc_offset_minutes
                };
                case.opened_at = f.occurred_at;
                case.status = pb::CaseStatus::Open as i32;
                case.escalation_level = pb::EscalationLevel::Agent as i32;
                self.customers
                    .entry(o.customer_id.clone())
                    .or_default()
                    .insert(Arc::clone(&case_key));
            }
            Kind::ContactLogged(c) => {
                case.contacts += 1;
                case.contact_info
                    .insert(c.contact_id.clone(), ContactInfo::of(f, c));
            }
            Kind::TicketSubmitted(t) => {
                case.tickets_waiting.insert(t.ticket_id.clone());
            }
            Kind::TicketResultGiven(t) => {
                case.tickets_waiting.remove(&t.ticket_id);
            }
            Kind::CallbackCompleted(c) => {
                if c.customer_response == CustomerResponse::Refused as i32 {
                    case.refusals += 1;
                }
                if c.reached && !c.dissatisfied_contact_id.is_empty() {
                    let key = (f.case_id.to_string(), c.dissatisfied_contact_id.clone());
                    if let Some(d) = self.dissatisfied.get_mut(&key) {
                        refresh = Some(key.1.clone());
                        if d.callback.is_none() {
                            let outcome = pb::CallbackCompleted {
                                callback_id: c.callback_id.clone(),
                                channel: c.channel,
                                agent_id: c.agent_id.clone(),
                                reached: c.reached,
                                customer_response: c.customer_response,
                                dissatisfied_contact_id: c.dissatisfied_contact_id.clone(),
                                resolved: c.resolved,
                                event_appended: c.event_appended,
                                ..Default::default()
                            };
                            d.callback = Some((f.event_id.to_string(), f.occurred_at, outcome));
                        }
                    }
                }
            }
            Kind::DissatisfactionClassified(d) => {
                let contact = case
                    .contact_info
                    .get(&d.contact_id)
                    .cloned()
                    .unwrap_or_default();
                let key = (f.case_id.to_string(), d.contact_id.clone());
                let entry = self
                    .dissatisfied
                    .entry(key)
                    .or_insert_with(|| Dissatisfied {
                        case_id: f.case_id.to_string(),
                        contact,
                        classification: d.clone(),
                        classified_event_id: f.event_id.to_string(),
                        survey: None,
                        callback: None,
                    });
                entry.classification = d.clone();
                entry.classified_event_id = f.event_id.to_string();
                refresh = Some(d.contact_id.clone());
            }
            Kind::SurveyDone(s) => {
                let key = (f.case_id.to_string(), s.contact_id.clone());
                if let Some(d) = self.dissatisfied.get_mut(&key) {
                    refresh = Some(key.1.clone());
                    let result = pb::SurveyDone {
                        notes: String::new(),
                        ..s.clone()
                    };
                    d.survey = Some((f.event_id.to_string(), result));
                }
            }
            Kind::Escalated(e) => {
                case.escalation_level = e.to_level;
                case.escalations.push(EscalationFact {
                    event_id: f.event_id.to_string(),
                    at: f.at(),
                    to_level: e.to_level,
                    warning_id: e.warning_id.clone(),
                });
            }
            Kind::WarningRaised(w) => {
                case.warnings.push(f.position);
                let rule = match self.rules.get(w.rule.as_str()) {
                    Some(r) => Arc::clone(r),
                    None => {
                        let r: Arc<str> = Arc::from(w.rule.as_str());
                        self.rules.insert(Arc::clone(&r));
                        r
                    }
                };
                self.warnings.insert(
                    f.position,
                    WarningFact {
                        case_id: Arc::clone(&case_key),
                        rule,
                        at: f.at(),
                        required_level: w.required_level,
                        id_hash: warning_id_hash(&w.warning_id),
                        withdrawn: None,
                    },
                );
            }
            Kind::WarningWithdrawn(w) => {
                let hash = warning_id_hash(&w.warning_id);
                let position = case.warnings.iter().copied().find(|p| {
                    self.warnings
                        .get(p)
                        .is_some_and(|x| x.id_hash == hash && x.withdrawn.is_none())
                });
                if let Some(fact) = position.and_then(|p| self.warnings.get_mut(&p)) {
                    fact.withdrawn = Some(Box::new((f.event_id.to_string(), f.at())));
                }
            }
            Kind::ExternalComplaintReceived(_) => case.external_complaints += 1,
            Kind::ViolationJudged(j) => {
                self.judgements.insert(
                    (
                        j.agent_id.clone(),
                        f.case_id.to_string(),
                        j.judgement_id.clone(),
                    ),
                    JudgementFact {
                        case_id: f.case_id.to_string(),
                        event_id: f.event_id.to_string(),
                        judgement: j.clone(),
                        appealed_at: None,
                        appeal_upheld: None,
                    },
                );
            }
            Kind::ViolationAppealed(a) => {
                if let Some(j) = self.judgement_mut(f.case_id, &a.judgement_id) {
                    j.appealed_at = Some(f.at());
                }
            }
            Kind::AppealDecided(a) => {
                if let Some(j) = self.judgement_mut(f.case_id, &a.judgement_id) {
                    j.appeal_upheld = Some(a.upheld);
                }
            }
            Kind::CaseResolved(r) => {
                case.status = pb::CaseStatus::Resolved as i32;
                case.resolution_accepted = Some(r.customer_accepted);
            }
            Kind::CaseClosed(_) => {
                case.status = pb::CaseStatus::Closed as i32;
                case.set_contacts_and_promises_aside();
            }
            Kind::CaseReopened(_) => case.status = pb::CaseStatus::Open as i32,
            Kind::EventCorrected(c) => {
                // A judgement as last corrected: a correction is how an
                // appeal deadline left pending (the calendar did not cover
                // it) gets computed. Its appeal and decision stay with it.
                if let Some(Kind::ViolationJudged(r)) =
                    c.replacement.as_ref().and_then(|r| r.kind.as_ref())
                {
                    let key = self
                        .judgements
                        .iter()
                        .find(|(_, j)| j.case_id == f.case_id && j.event_id == c.corrected_event_id)
                        .map(|(k, _)| k.clone());
                    if let Some(mut j) = key.and_then(|k| self.judgements.remove(&k)) {
                        j.judgement = r.clone();
                        self.judgements.insert(
                            (
                                r.agent_id.clone(),
                                f.case_id.to_string(),
                                r.judgement_id.clone(),
                            ),
                            j,
                        );
                    }
                }
            }
            _ => {}
        }
        if let Some(contact_id) = refresh {
            self.refresh_kf006(&case_key, contact_id);
        }
        if moves_promises(kind) {
            if let Some(case) = self.cases.get_mut(f.case_id) {
                // A provisional due time is listed until a correction
                // replaces it.
                let promise = match kind {
                    Kind::PromiseMade(p) => Some((f.event_id, p)),
                    Kind::EventCorrected(c) => {
                        match c.replacement.as_ref().and_then(|r| r.kind.as_ref()) {
                            Some(Kind::PromiseMade(p)) => Some((c.corrected_event_id.as_str(), p)),
                            _ => None,
                        }
                    }
                    _ => None,
                };
                if let Some((event_id, p)) = promise {
                    let key = (Arc::clone(&case_key), event_id.to_string());
                    if p.due_provisional {
                        self.provisional_promises.insert(key);
                    } else {
                        self.provisional_promises.remove(&key);
                    }
                }
                // A promise, or a correction of one, moves in the due index.
                let moved = match kind {
                    Kind::PromiseMade(p) => Some((f.event_id, None, due_key(p))),
                    Kind::EventCorrected(c) => {
                        match c.replacement.as_ref().and_then(|r| r.kind.as_ref()) {
                            Some(Kind::PromiseMade(p)) => case
                                .promises
                                .due_of(&c.corrected_event_id)
                                .map(|old| (c.corrected_event_id.as_str(), Some(old), due_key(p))),
                            _ => None,
                        }
                    }
                    _ => None,
                };
                case.promises.apply(f);
                if case.is_closed() {
                    // A correction of a closed case's promise or demand
                    // took the book back from the log: set it aside again.
                    case.set_contacts_and_promises_aside();
                }
                if let Some((event_id, old, new)) = moved {
                    if let Some(old) = old {
                        self.promises_by_due.remove(&(
                            old,
                            Arc::clone(&case_key),
                            event_id.to_string(),
                        ));
                    }
                    self.promises_by_due
                        .insert((new, case_key, event_id.to_string()));
                }
            }
        }
    }

    /// Puts a dissatisfied contact where it now belongs in the KF-006
    /// indexes: waiting for a survey and for a callback while classified as
    /// needing one and not done, and under its week. A contact without a
    /// start time has no week and is in none of them (nor in the queues).
    fn refresh_kf006(&mut self, case_key: &Arc<str>, contact_id: String) {
        let key = (case_key.to_string(), contact_id);
        let Some(d) = self.dissatisfied.get(&key) else {
            return;
        };
        let offset = self
            .cases
            .get(&**case_key)
            .map(|c| c.utc_offset_minutes)
            .unwrap_or(crate::time::DEFAULT_UTC_OFFSET_MINUTES);
        let Some(started) = d.contact.started_at.as_ref() else {
            return;
        };
        let Some(week) = super::week::week_of_contact(started, offset) else {
            return;
        };
        let at = crate::time::ts_nanos(started);
        let place = (at, Arc::clone(case_key), key.1.clone());
        let c = &d.classification;
        let survey = c.needs_survey && d.survey.is_none();
        let callback = c.needs_callback && d.callback.is_none();
        for (set, waiting) in [
            (&mut self.awaiting_survey, survey),
            (&mut self.awaiting_callback, callback),
        ] {
            if waiting {
                set.insert(place.clone());
            } else {
                set.remove(&place);
            }
        }
        self.dissatisfied_by_week
            .insert((week, Arc::clone(case_key), key.1));
    }

    /// A case's dissatisfied contact, by the parts of an index key.
    pub fn dissatisfied_contact(&self, case_id: &str, contact_id: &str) -> Option<&Dissatisfied> {
        self.dissatisfied
            .get(&(case_id.to_string(), contact_id.to_string()))
    }

    fn judgement_mut(&mut self, case_id: &str, judgement_id: &str) -> Option<&mut JudgementFact> {
        self.judgements
            .values_mut()
            .find(|j| j.case_id == case_id && j.judgement.judgement_id == judgement_id)
    }

    /// SHA-256 of the board's canonical rendering: equal boards, equal digests.
    pub fn digest(&self) -> String {
        hex::encode(Sha256::digest(format!("{self:?}").as_bytes()))
    }

    /// Warning `w` of this board's case judged at `now`, answered by an
    /// escalation to its level within `escalate_within` nanoseconds
    /// (`ListWarnings`, the unanswered warnings' index and count).
    pub fn judge_warning(
        &self,
        w: &WarningFact,
        now: i128,
        escalate_within: i128,
    ) -> WarningJudged<'_> {
        let by = w.at.saturating_add(escalate_within);
        let answer = self
            .escalation_reaching(&w.case_id, w.required_level, by.min(now))
            .filter(|_| w.required_level > 0);
        // A withdrawn warning asks for nothing any more.
        let answered = answer.is_some()
            || w.required_level <= pb::EscalationLevel::Agent as i32
            || w.withdrawn.is_some();
        WarningJudged {
            by,
            answer,
            answered,
            overdue: !answered && now > by,
        }
    }

    /// The first escalation of a case to at least `level` that happened by
    /// `by` (nanoseconds), if any.
    pub fn escalation_reaching(
        &self,
        case_id: &str,
        level: i32,
        by: i128,
    ) -> Option<&EscalationFact> {
        self.cases
            .get(case_id)?
            .escalations
            .iter()
            .find(|e| e.to_level >= level && e.at <= by)
    }
}

/// Folding events into a board in tests: one log position each, its
/// business time that many seconds after the epoch. It keeps what it folded,
/// to give the board a case's earlier events when it asks for them.
#[cfg(test)]
pub(crate) struct Fold {
    pub board: Board,
    pub position: u64,
    pub folded: Vec<OwnedFact>,
}

#[cfg(test)]
impl Fold {
    pub fn new() -> Self {
        Fold {
            board: Board::default(),
            position: 0,
            folded: Vec::new(),
        }
    }

    pub fn add(&mut self, case_id: &str, event_id: &str, kind: Kind) {
        self.position += 1;
        let fact = OwnedFact {
            position: self.position,
            case_id: case_id.to_string(),
            event_id: event_id.to_string(),
            occurred_at: Some(prost_types::Timestamp {
                seconds: self.position as i64,
                nanos: 0,
            }),
            recorded_at: 0,
            correlation_id: String::new(),
            imported: false,
            event: pb::CaseEvent { kind: Some(kind) },
        };
        let folded = &self.folded;
        self.board
            .apply(&fact.fact(), &mut |case_id, before| {
                Ok(super::fact::earlier_in(folded, case_id, before))
            })
            .expect("history from the fold");
        self.folded.push(fact);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A dissatisfied contact keeps what KF-006 counts of its survey and
    /// callback, not their sealed free text; warnings keep what
    /// `ListWarnings` filters by, sharing the case id and the rule name.
    #[test]
    fn follow_ups_and_warnings_are_kept_without_their_texts() {
        let mut f = Fold::new();
        f.add("c1", "e1", Kind::CaseOpened(pb::CaseOpened::default()));
        f.add(
            "c1",
            "e2",
            Kind::DissatisfactionClassified(pb::DissatisfactionClassified {
                contact_id: "k1".into(),
                needs_survey: true,
                needs_callback: true,
                factor: pb::DissatisfactionFactor::Attitude as i32,
            }),
        );
        f.add(
            "c1",
            "e3",
            Kind::SurveyDone(pb::SurveyDone {
                contact_id: "k1".into(),
                resolved: true,
                satisfied: true,
                notes: "sealed:notes".into(),
                ..Default::default()
            }),
        );
        f.add(
            "c1",
            "e4",
            Kind::CallbackCompleted(pb::CallbackCompleted {
                callback_id: "cb1".into(),
                reached: true,
                outcome: "sealed:outcome".into(),
                customer_response: CustomerResponse::Accepted as i32,
                dissatisfied_contact_id: "k1".into(),
                demand_ids: vec!["d1".into()],
                event_appended: true,
                ..Default::default()
            }),
        );
        for position in [5, 6] {
            f.add(
                "c1",
                &format!("e{position}"),
                Kind::WarningRaised(pb::WarningRaised {
                    rule: "threat_on_contact".into(),
                    reason: "a reason".into(),
                    required_level: 2,
                    ..Default::default()
                }),
            );
        }

        let board = &f.board;
        let d = &board.dissatisfied[&("c1".to_string(), "k1".to_string())];
        let (survey_id, survey) = d.survey.as_ref().unwrap();
        assert_eq!(survey_id, "e3");
        assert!(survey.resolved && survey.satisfied && survey.notes.is_empty());
        let (callback_id, _, callback) = d.callback.as_ref().unwrap();
        assert_eq!(callback_id, "e4");
        assert!(callback.reached && callback.event_appended);
        assert_eq!(
            callback.customer_response,
            CustomerResponse::Accepted as i32
        );
        assert!(callback.outcome.is_empty() && callback.demand_ids.is_empty());

        assert_eq!(board.cases["c1"].warnings, [5, 6]);
        let (w5, w6) = (&board.warnings[&5], &board.warnings[&6]);
        assert_eq!(
            (&*w5.case_id, &*w5.rule, w5.required_level),
            ("c1", "threat_on_contact", 2)
        );
        assert!(Arc::ptr_eq(&w5.rule, &w6.rule) && Arc::ptr_eq(&w5.case_id, &w6.case_id));
        assert_eq!(w6.at, 6_000_000_000);
    }

    /// The kinds the store skips leave a case's facts as they were, on
    /// an open case with a contact, a promise and a warning and on a
    /// closed one.
    #[test]
    fn the_kinds_the_board_does_not_fold_change_nothing() {
        let ignored: Vec<Kind> = crate::domain::every_kind()
            .into_iter()
            .filter(|k| !Board::folds(k))
            .collect();
        assert_eq!(ignored.len(), 7);
        let mut f = Fold::new();
        f.add("c1", "open", Kind::CaseOpened(pb::CaseOpened::default()));
        f.add(
            "c1",
            "contact",
            Kind::ContactLogged(pb::ContactLogged {
                contact_id: "k1".into(),
                ..Default::default()
            }),
        );
        f.add(
            "c1",
            "promise",
            Kind::PromiseMade(pb::PromiseMade::default()),
        );
        f.add(
            "c1",
            "warning",
            Kind::WarningRaised(pb::WarningRaised::default()),
        );
        for closed in [false, true] {
            if closed {
                f.add("c1", "close", Kind::CaseClosed(pb::CaseClosed::default()));
            }
            for (i, kind) in ignored.iter().enumerate() {
                let before = f.board.clone();
                f.add("c1", &format!("x{closed}{i}"), kind.clone());
                let mut after = f.board.clone();
                after.events = before.events;
                assert_eq!(after, before, "{kind:?}");
            }
        }
    }

    /// A close sets a case's contacts and promise book aside; a correction
    /// of a promise while closed moves it in the due index and leaves the
    /// book set aside; a reopen takes both back as folded from the case's
    /// events.
    #[test]
    fn a_closed_case_sets_contacts_and_promises_aside_until_it_is_reopened() {
        let promise = |due_seconds| {
            Kind::PromiseMade(pb::PromiseMade {
                promise_id: "p1".into(),
                due_at: Some(prost_types::Timestamp {
                    seconds: due_seconds,
                    nanos: 0,
                }),
                ..Default::default()
            })
        };
        let mut f = Fold::new();
        f.add("c1", "open", Kind::CaseOpened(pb::CaseOpened::default()));
        for k in ["k1", "k2"] {
            f.add(
                "c1",
                &format!("{k}-logged"),
                Kind::ContactLogged(pb::ContactLogged {
                    contact_id: k.into(),
                    agent_id: "8030".into(),
                    channel: pb::Channel::Hotline as i32,
                    ..Default::default()
                }),
            );
        }
        f.add("c1", "p1", promise(100));
        let before = f.board.cases["c1"].clone();
        assert_eq!(before.contact_info.len(), 2);

        f.add("c1", "close", Kind::CaseClosed(pb::CaseClosed::default()));
        let closed = &f.board.cases["c1"];
        assert!(closed.set_aside() && closed.contact_info.is_empty());
        assert_eq!(closed.contacts, 2);

        f.add(
            "c1",
            "p1-corrected",
            Kind::EventCorrected(Box::new(pb::EventCorrected {
                corrected_event_id: "p1".into(),
                replacement: Some(Box::new(pb::CaseEvent {
                    kind: Some(promise(200)),
                })),
                ..Default::default()
            })),
        );
        let closed = &f.board.cases["c1"];
        assert!(closed.set_aside() && closed.contact_info.is_empty());
        assert_eq!(closed.promises.due_of("p1"), Some(200_000_000_000));
        let due: Vec<_> = f.board.promises_by_due.iter().map(|k| k.0).collect();
        assert_eq!(due, [200_000_000_000]);

        f.add(
            "c1",
            "reopen",
            Kind::CaseReopened(pb::CaseReopened::default()),
        );
        let reopened = &f.board.cases["c1"];
        assert!(!reopened.set_aside());
        assert_eq!(reopened.contact_info, before.contact_info);
        let mut whole = reopened.promises.judged(480, 0);
        assert_eq!(whole.len(), 1);
        let words = whole.remove(0).promise.unwrap();
        assert_eq!(words.due_at.unwrap().seconds, 200);
        assert_eq!(
            reopened
                .promises
                .judged_one("p1", 480, 0)
                .unwrap()
                .read_promise_at,
            None
        );
    }
}
