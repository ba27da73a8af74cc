//! The early-warning rules (预警机制) as a pure fold over committed events.
//!
//! Feeding events in log order yields the warnings the policy's rules raise
//! ([`Hit`]); [`WarningRules::due`] yields those that time alone raises (a
//! promise due and never answered). Every hit has a deterministic id derived
//! from its rule and the event that triggered it, and is appended with that
//! id as its event id, so the ledger's idempotent append (a durable event-id
//! index) makes raising it twice impossible — across restarts and even if two
//! processes ran at once.
//!
//! It lives with the process that runs it, above the projections whose
//! promise judging it uses, and above the policy whose rules it folds: the
//! policy folder holds only what projections need (calendars, deadlines).

use super::warning_table::{DueKey, WarningTable};
use crate::domain::party::{acting_party, describe, owner_at, uncoordinated};
use crate::policy::config::{Trigger, WarningRule};
use crate::projections::fact::{Fact, OwnedFact};
use crate::projections::promise_book::{moves_promises, CasePromises};
use crate::projections::promises::breach_reason_names;
use crate::proto::v1::{self as pb, case_event::Kind, PromiseState};
use crate::recent::Recent;
use crate::store::StoreError;
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

/// Promises of the due queue judged per round; the rest wait for the next.
const DUE_AT_ONCE: usize = 4096;

/// A warning a rule raised, ready to append.
#[derive(Debug, Clone, PartialEq)]
pub struct Hit {
    pub case_id: String,
    /// Deterministic: the event id and the warning id.
    pub event_id: String,
    pub occurred_at: i128,
    pub causation_id: String,
    pub correlation_id: String,
    pub warning: pb::WarningRaised,
    /// Some: this hit withdraws `warning` (raised earlier, and contradicted
    /// by a fact recorded since) instead of raising it.
    pub withdrawal: Option<pb::WarningWithdrawn>,
}

impl Hit {
    /// The event this hit appends.
    pub fn event(&self) -> pb::CaseEvent {
        let kind = match &self.withdrawal {
            Some(w) => Kind::WarningWithdrawn(w.clone()),
            None => Kind::WarningRaised(self.warning.clone()),
        };
        pb::CaseEvent { kind: Some(kind) }
    }
}

/// The event id of the warning `rule` raises for `trigger` (an event id, or
/// a promise's event id for promise rules).
pub fn warning_event_id(rule: &str, trigger: &str) -> String {
    let h = Sha256::digest(format!("{rule}\n{trigger}").as_bytes());
    format!("warning-{}", &hex::encode(h)[..32])
}

/// What the rules read from the log besides the facts they are fed.
pub trait WarningLog {
    /// Whether an event with this id is in the log: a warning raised, or
    /// withdrawn, by any process at any time.
    fn holds(&self, event_id: &str) -> Result<bool, String>;

    /// A case's events stored before `position`, in order: what a case's
    /// track is folded from when the cache does not hold it.
    fn earlier(&self, case_id: &str, before: u64) -> Result<Vec<OwnedFact>, String>;
}

/// What the rules keep of one case, folded from its events alone.
#[derive(Default)]
struct CaseTrack {
    customer: String,
    offset: i32,
    /// Closed: a track of a closed case takes no fact but a reopen (the
    /// ledger refuses a warning on a closed case); its promises leave the
    /// due queue.
    closed: bool,
    refusals: u32,
    rejections: HashMap<String, u32>,
    promises: CasePromises,
    /// Promise event ids already judged broken (or warned about), with the
    /// business time of the warning.
    broken: BTreeMap<String, i128>,
    /// Warnings of the case already withdrawn.
    withdrawn: HashSet<String>,
    /// Promises recorded by an import, with the server time they were.
    imported: HashMap<String, i128>,
    /// Owner assignments (business time, owner), in the order recorded.
    owners: Vec<(i128, pb::Party)>,
}

impl CaseTrack {
    /// The case's UTC offset, the policy's default where none was given.
    fn offset(&self) -> i32 {
        if self.offset == 0 {
            crate::time::DEFAULT_UTC_OFFSET_MINUTES
        } else {
            self.offset
        }
    }

    /// The places its promises take in the due queue.
    fn due_keys(&self, case_id: &str) -> Vec<DueKey> {
        self.promises
            .promises
            .iter()
            .filter_map(|p| {
                let due = crate::time::ts_nanos(p.promise.due_at.as_ref()?);
                Some((due, case_id.to_string(), p.event_id.clone()))
            })
            .collect()
    }
}

/// The rule state: what each case's events say in a bounded cache of
/// tracks, what holds across cases in a table of the store (see
/// [`WarningTable`]).
pub struct WarningRules {
    /// Shared so `apply` can walk them while it updates the state (a clone
    /// per event is a reference count, not a copy of every rule).
    rules: Arc<[WarningRule]>,
    table: WarningTable,
    /// The most recently used cases' tracks; a miss folds the case's
    /// stream. A closed case is kept as a stub (`closed` and nothing else):
    /// only a reopen, which folds the stream again, needs more of it.
    tracks: Recent<CaseTrack>,
    /// Tracks folded from cases' streams (cache misses).
    loads: u64,
}

impl WarningRules {
    /// The rules `rules`, keeping their cross-case state in `table` and at
    /// most `cache` cases' tracks in memory.
    pub fn new(rules: Vec<WarningRule>, table: WarningTable, cache: usize) -> Self {
        Self {
            rules: rules.into(),
            table,
            tracks: Recent::new(cache.max(1)),
            loads: 0,
        }
    }

    /// The text a changed rule set changes (see [`WarningTable::open`]).
    pub fn fingerprint(rules: &[WarningRule]) -> String {
        format!("{rules:?}")
    }

    pub fn table(&self) -> &WarningTable {
        &self.table
    }

    /// Tracks folded from cases' streams so far.
    pub fn loads(&self) -> u64 {
        self.loads
    }

    /// A case's track as of `before`: from the cache, new for a case this
    /// fact opens, else folded from the case's stream. A reopen always
    /// folds the stream: what happened while the case was closed (a
    /// correction moving a promise, say) was not folded then.
    fn track(&mut self, f: &Fact<'_>, log: &dyn WarningLog) -> Result<CaseTrack, String> {
        let kind = f.event.kind.as_ref();
        let reopens = matches!(kind, Some(Kind::CaseReopened(_)));
        if !reopens {
            if let Some(t) = self.tracks.take(f.case_id) {
                return Ok(t);
            }
            if matches!(kind, Some(Kind::CaseOpened(_))) {
                return Ok(CaseTrack::default());
            }
        }
        self.tracks.remove(f.case_id);
        self.load(f.case_id, f.position, log)
    }

    /// A case's track folded from its events before `before`.
    fn load(
        &mut self,
        case_id: &str,
        before: u64,
        log: &dyn WarningLog,
    ) -> Result<CaseTrack, String> {
        self.loads += 1;
        let mut track = CaseTrack::default();
        for e in log.earlier(case_id, before)? {
            self.fold(&mut track, &e.fact(), true)
                .map_err(|e| e.to_string())?;
        }
        Ok(track)
    }

    /// Whether folding an event of this kind can change a track or raise
    /// anything: the kinds [`Self::fold`] and the rules look at. Any other
    /// (a note, a ticket saved, an escalation) is passed over without
    /// reading its case: on a ledger of many cases, most of whose tracks
    /// are not in the cache, folding a case's stream for a note would cost
    /// more than the note.
    fn folds(kind: &Kind) -> bool {
        moves_promises(kind)
            || matches!(
                kind,
                Kind::CaseOpened(_)
                    | Kind::CaseClosed(_)
                    | Kind::CaseReopened(_)
                    | Kind::WarningRaised(_)
                    | Kind::WarningWithdrawn(_)
                    | Kind::OwnerAssigned(_)
                    | Kind::ContactLogged(_)
                    | Kind::TicketRejected(_)
                    | Kind::CallbackAttempted(_)
                    | Kind::ExternalComplaintReceived(_)
            )
    }

    /// Folds one committed event; returns the warnings it raises.
    pub fn apply(&mut self, f: &Fact<'_>, log: &dyn WarningLog) -> Result<Vec<Hit>, String> {
        if !f.event.kind.as_ref().is_some_and(Self::folds) {
            return Ok(Vec::new());
        }
        let mut track = self.track(f, log)?;
        let hits = if track.closed && !matches!(f.event.kind, Some(Kind::CaseReopened(_))) {
            // A note or a correction of a closed case: the reopen's fold
            // of the case's stream will include it.
            Vec::new()
        } else {
            self.fold(&mut track, f, false).map_err(|e| e.to_string())?
        };
        if track.closed {
            track = CaseTrack {
                closed: true,
                ..CaseTrack::default()
            };
        }
        self.tracks.insert(f.case_id.to_string(), track);
        self.tracks.trim();
        Ok(hits)
    }

    /// Whether a warning with this event id is already in the log.
    pub fn is_raised(&self, event_id: &str, log: &dyn WarningLog) -> Result<bool, String> {
        log.holds(event_id)
    }

    fn hit(rule: &WarningRule, f: &Fact<'_>, trigger: &str, at: i128, reason: String) -> Hit {
        let event_id = warning_event_id(&rule.name, trigger);
        Hit {
            case_id: f.case_id.to_string(),
            event_id: event_id.clone(),
            occurred_at: at,
            causation_id: f.event_id.to_string(),
            correlation_id: f.correlation_id.to_string(),
            warning: pb::WarningRaised {
                warning_id: event_id,
                rule: rule.name.clone(),
                reason,
                required_level: rule.required_level.escalation() as i32,
                triggering_event_id: f.event_id.to_string(),
                found_on_import: f.imported,
            },
            withdrawal: None,
        }
    }

    /// Folds one event of a case whose track is kept. `replaying`: the
    /// event is an earlier one of a reopened case, folded again for its
    /// track only — what it did across cases (a customer's contacts, the
    /// warnings in the log) is folded already, and what it raises was
    /// raised (or refused) when it was new.
    fn fold(
        &mut self,
        track: &mut CaseTrack,
        f: &Fact<'_>,
        replaying: bool,
    ) -> Result<Vec<Hit>, StoreError> {
        let mut hits = Vec::new();
        let Some(kind) = f.event.kind.as_ref() else {
            return Ok(hits);
        };
        let at = f.at();
        match kind {
            Kind::CaseOpened(o) => {
                track.customer = if o.customer_id.is_empty() {
                    format!("case:{}", f.case_id)
                } else {
                    o.customer_id.clone()
                };
                track.offset = o.utc_offset_minutes;
            }
            Kind::WarningRaised(w) => {
                // A promise warned about as broken (by time, or by a
                // process whose track this cache no longer holds) is not
                // warned about again, and may be withdrawn.
                let promise_rule = self.rules.iter().find(|r| r.name == w.rule);
                if let Some(rule) = promise_rule.filter(|r| r.trigger == Trigger::PromiseBroken) {
                    let promise = track
                        .promises
                        .promises
                        .iter()
                        .find(|p| warning_event_id(&rule.name, &p.event_id) == w.warning_id);
                    if let Some(p) = promise {
                        track.broken.entry(p.event_id.clone()).or_insert(at);
                    }
                }
            }
            Kind::WarningWithdrawn(w) => {
                track.withdrawn.insert(w.warning_id.clone());
            }
            Kind::CaseClosed(_) => {
                track.closed = true;
                for k in track.due_keys(f.case_id) {
                    self.table.set_due(&k, false)?;
                }
            }
            Kind::CaseReopened(_) if track.closed => {
                // Its open promises are due again.
                track.closed = false;
                let offset = track.offset();
                for v in track.promises.judged(offset, at) {
                    let due = v.promise.as_ref().and_then(|p| p.due_at.as_ref());
                    if let (Some(due), true) = (due, v.state == PromiseState::Open as i32) {
                        let k = (
                            crate::time::ts_nanos(due),
                            f.case_id.to_string(),
                            v.event_id,
                        );
                        self.table.set_due(&k, true)?;
                    }
                }
            }
            Kind::OwnerAssigned(o) => {
                if let Some(owner) = &o.owner {
                    track.owners.push((at, owner.clone()));
                }
            }
            Kind::PromiseMade(_) if f.imported => {
                track.imported.insert(f.event_id.to_string(), f.recorded_at);
            }
            _ => {}
        }
        if moves_promises(kind) {
            // A correction that moves a promise's due time takes it off its
            // old place in the due queue (judging puts it at the new one).
            if let Kind::EventCorrected(c) = kind {
                let corrects_promise = matches!(
                    c.replacement.as_ref().and_then(|r| r.kind.as_ref()),
                    Some(Kind::PromiseMade(_))
                );
                let old_due = track
                    .promises
                    .promise(&c.corrected_event_id)
                    .and_then(|p| p.due_at.as_ref())
                    .map(crate::time::ts_nanos);
                if let Some(old) = old_due.filter(|_| corrects_promise) {
                    let key = (old, f.case_id.to_string(), c.corrected_event_id.clone());
                    self.table.set_due(&key, false)?;
                }
            }
            track.promises.apply(f);
        }
        let rules = Arc::clone(&self.rules);
        for rule in rules.iter() {
            match (&rule.trigger, kind) {
                (
                    Trigger::RepeatedContacts {
                        contacts,
                        window_hours,
                    },
                    Kind::ContactLogged(c),
                ) if c.direction != pb::Direction::Outbound as i32 && !replaying => {
                    let started = c
                        .started_at
                        .as_ref()
                        .map(crate::time::ts_nanos)
                        .unwrap_or(at);
                    let window = i128::from(*window_hours) * 3_600_000_000_000;
                    let customer = &track.customer;
                    self.table.add_contact(customer, started, f.position)?;
                    let in_window = self.table.contacts_within(
                        customer,
                        started.saturating_sub(window),
                        started,
                        f.position,
                    )?;
                    // One warning per episode: not again until a whole window
                    // has passed since the last one for this customer.
                    let quiet = self
                        .table
                        .last_fired(&rule.name, customer, f.position)?
                        .is_none_or(|last| started - last > window);
                    if in_window >= *contacts as usize && quiet {
                        self.table.fire(&rule.name, customer, f.position, started)?;
                        hits.push(Self::hit(
                            rule,
                            f,
                            f.event_id,
                            at,
                            format!(
                                "contact {} makes {in_window} contacts from the customer within {window_hours} hours",
                                c.contact_id
                            ),
                        ));
                    }
                }
                (Trigger::Threat, Kind::ContactLogged(c)) if !c.threats.is_empty() => {
                    let names: Vec<_> = c
                        .threats
                        .iter()
                        .filter_map(|t| pb::Threat::try_from(*t).ok())
                        .map(|t| t.as_str_name().trim_start_matches("THREAT_").to_lowercase())
                        .collect();
                    hits.push(Self::hit(
                        rule,
                        f,
                        f.event_id,
                        at,
                        format!(
                            "the customer threatened: {} (contact {})",
                            names.join(", "),
                            c.contact_id
                        ),
                    ));
                }
                (Trigger::TicketRejected { times }, Kind::TicketRejected(t)) => {
                    let n = track.rejections.entry(t.ticket_id.clone()).or_default();
                    *n += 1;
                    if *n == *times {
                        let n = *n;
                        hits.push(Self::hit(
                            rule,
                            f,
                            f.event_id,
                            at,
                            format!("ticket {} rejected {n} times", t.ticket_id),
                        ));
                    }
                }
                (Trigger::ResultRefused { times }, Kind::CallbackCompleted(c))
                    if c.customer_response == pb::CustomerResponse::Refused as i32 =>
                {
                    track.refusals += 1;
                    if track.refusals == *times {
                        let n = track.refusals;
                        hits.push(Self::hit(
                            rule,
                            f,
                            f.event_id,
                            at,
                            format!("the customer refused a result {n} times"),
                        ));
                    }
                }
                (Trigger::ExternalComplaint, Kind::ExternalComplaintReceived(x)) => {
                    hits.push(Self::hit(
                        rule,
                        f,
                        f.event_id,
                        at,
                        format!(
                            "complaint {} from {}",
                            x.reference_number,
                            x.body()
                                .as_str_name()
                                .trim_start_matches("OUTSIDE_BODY_")
                                .to_lowercase()
                        ),
                    ));
                }
                (Trigger::UncoordinatedContact, _) => {
                    let outbound = match kind {
                        Kind::ContactLogged(c) if c.direction == pb::Direction::Outbound as i32 => {
                            let started = c.started_at.as_ref().map(crate::time::ts_nanos);
                            Some((
                                &c.contact_id,
                                started.unwrap_or(at),
                                acting_party(c.party.as_ref(), &c.agent_id),
                            ))
                        }
                        Kind::CallbackAttempted(c) => Some((
                            &c.callback_id,
                            at,
                            acting_party(c.party.as_ref(), &c.agent_id),
                        )),
                        Kind::CallbackCompleted(c) => Some((
                            &c.callback_id,
                            at,
                            acting_party(c.party.as_ref(), &c.agent_id),
                        )),
                        _ => None,
                    };
                    if let Some((id, when, actor)) = outbound {
                        if let Some(owner) = owner_at(&track.owners, when)
                            .filter(|_| uncoordinated(&track.owners, when, actor.as_ref()))
                        {
                            let by = actor
                                .as_ref()
                                .map(describe)
                                .unwrap_or_else(|| "nobody named".into());
                            hits.push(Self::hit(
                                rule,
                                f,
                                f.event_id,
                                at,
                                format!(
                                    "{id} by {by}, while {} owns the case: not coordinated with the owner",
                                    describe(owner)
                                ),
                            ));
                        }
                    }
                }
                (
                    Trigger::PromiseBroken,
                    Kind::PromiseMade(_) | Kind::CallbackCompleted(_) | Kind::EventCorrected(_),
                ) => {
                    // Judge the case's promises as of this event: an answer
                    // that came late or on the wrong terms breaks a promise now.
                    hits.extend(self.judge_promises(rule, track, f, at)?);
                }
                _ => {}
            }
        }
        if replaying {
            return Ok(Vec::new());
        }
        Ok(hits)
    }

    /// Re-judges one case's promises at `now`; updates the due queue. A
    /// promise warned about as broken that, judged again as of its warning
    /// with every fact known now (one recorded late among them), was not
    /// broken then gets its warning withdrawn.
    fn judge_promises(
        &self,
        rule: &WarningRule,
        track: &mut CaseTrack,
        f: &Fact<'_>,
        now: i128,
    ) -> Result<Vec<Hit>, StoreError> {
        let offset = track.offset();
        let mut broken = Vec::new();
        for v in track.promises.judged(offset, now) {
            let due = v
                .promise
                .as_ref()
                .and_then(|p| p.due_at.as_ref())
                .map(crate::time::ts_nanos);
            if let Some(due) = due {
                let key = (due, f.case_id.to_string(), v.event_id.clone());
                let open = v.state == PromiseState::Open as i32 && !track.closed;
                self.table.set_due(&key, open)?;
            }
            if v.state == PromiseState::Broken as i32 && !track.broken.contains_key(&v.event_id) {
                track.broken.insert(v.event_id.clone(), now);
                broken.push(v);
            }
        }
        let case_id = f.case_id.to_string();
        let mut hits: Vec<Hit> = broken
            .into_iter()
            .map(|v| {
                let mut h = promise_hit(rule, &case_id, &v, f.event_id, f.correlation_id, now);
                h.warning.found_on_import = f.imported;
                h
            })
            .collect();
        for (promise_event, warned_at) in &track.broken {
            let warning_id = warning_event_id(&rule.name, promise_event);
            if track.withdrawn.contains(&warning_id) {
                continue;
            }
            let Some(then) = track
                .promises
                .judged_one(promise_event, offset, warned_at + 1)
            else {
                continue;
            };
            if then.state == PromiseState::Broken as i32 {
                continue;
            }
            track.withdrawn.insert(warning_id.clone());
            let mut warning = promise_hit(rule, &case_id, &then, "", "", *warned_at).warning;
            warning.warning_id = warning_id.clone();
            let promise_id = then
                .promise
                .as_ref()
                .map(|p| p.promise_id.as_str())
                .unwrap_or("");
            let state = if then.state == PromiseState::Kept as i32 {
                format!(
                    "kept: answered by {} before the warning",
                    then.answered_by_event_id
                )
            } else {
                "not due when the warning was raised".to_string()
            };
            let when = if f.recorded_at > 0 {
                f.recorded_at
            } else {
                now
            };
            hits.push(Hit {
                case_id: case_id.clone(),
                event_id: warning_event_id("withdrawn", &warning_id),
                occurred_at: when.max(now),
                causation_id: f.event_id.to_string(),
                correlation_id: f.correlation_id.to_string(),
                warning,
                withdrawal: Some(pb::WarningWithdrawn {
                    warning_id,
                    reason: format!(
                        "promise {promise_id} was {state}; event {} (recorded later) shows it",
                        f.event_id
                    ),
                    withdrawn_by_event_id: f.event_id.to_string(),
                }),
            });
        }
        Ok(hits)
    }

    /// Promises that fell due by `now` without an answer, judged as of
    /// the facts folded before `next`; with the places in the due queue
    /// they were found at, to be taken out ([`Self::judged_due`]) once
    /// their warnings are in the log — not before, or a crash between the
    /// two would lose them.
    pub fn due(
        &mut self,
        now: i128,
        next: u64,
        log: &dyn WarningLog,
    ) -> Result<(Vec<Hit>, Vec<DueKey>), String> {
        let Some(rule) = self
            .rules
            .iter()
            .find(|r| r.trigger == Trigger::PromiseBroken)
            .cloned()
        else {
            return Ok((Vec::new(), Vec::new()));
        };
        let keys = self
            .table
            .due_before(now, DUE_AT_ONCE)
            .map_err(|e| e.to_string())?;
        let mut hits = Vec::new();
        for (due, case_id, promise_event) in &keys {
            let mut track = match self.tracks.take(case_id) {
                Some(t) => t,
                None => self.load(case_id, next, log)?,
            };
            let offset = track.offset();
            let judged = (!track.closed)
                .then(|| track.promises.judged_one(promise_event, offset, due + 1))
                .flatten();
            if let Some(v) = judged {
                if v.state == PromiseState::Broken as i32 && !track.broken.contains_key(&v.event_id)
                {
                    track.broken.insert(v.event_id.clone(), *due);
                    let mut h = promise_hit(&rule, case_id, &v, promise_event, "", *due);
                    // Imported with its due time already past: found on import.
                    h.warning.found_on_import = track
                        .imported
                        .get(&v.event_id)
                        .is_some_and(|recorded| *due < *recorded);
                    hits.push(h);
                }
            }
            self.tracks.insert(case_id.clone(), track);
            self.tracks.trim();
        }
        Ok((hits, keys))
    }

    /// Takes promises [`Self::due`] judged out of the due queue.
    pub fn judged_due(&self, keys: &[DueKey]) -> Result<(), StoreError> {
        for k in keys {
            self.table.set_due(k, false)?;
        }
        Ok(())
    }
}

fn promise_hit(
    rule: &WarningRule,
    case_id: &str,
    v: &pb::PromiseView,
    cause: &str,
    correlation: &str,
    at: i128,
) -> Hit {
    let event_id = warning_event_id(&rule.name, &v.event_id);
    let reasons = breach_reason_names(&v.breach_reasons);
    let promise_id = v
        .promise
        .as_ref()
        .map(|p| p.promise_id.as_str())
        .unwrap_or("");
    Hit {
        case_id: case_id.to_string(),
        event_id: event_id.clone(),
        occurred_at: at,
        causation_id: cause.to_string(),
        correlation_id: correlation.to_string(),
        warning: pb::WarningRaised {
            warning_id: event_id,
            rule: rule.name.clone(),
            reason: format!("promise {promise_id} broken: {}", reasons.join(", ")),
            required_level: rule.required_level.escalation() as i32,
            triggering_event_id: cause.to_string(),
            found_on_import: false,
        },
        withdrawal: None,
    }
}

/// Hits collected while catching up, minus those whose warnings the log
/// already holds: what is left must still be appended.
#[derive(Default)]
pub struct Pending {
    hits: BTreeMap<String, Hit>,
    /// The event ids of each case's hits.
    by_case: HashMap<String, Vec<String>>,
}

impl Pending {
    pub fn add(&mut self, log: &dyn WarningLog, hits: Vec<Hit>) -> Result<(), String> {
        for h in hits {
            // A warning withdrawn before it was appended is not appended
            // at all: it was never true (an import's facts arriving in
            // more than one append).
            if let Some(w) = &h.withdrawal {
                if self.hits.remove(&w.warning_id).is_some() {
                    if let Some(ids) = self.by_case.get_mut(&h.case_id) {
                        ids.retain(|id| *id != w.warning_id);
                    }
                    continue;
                }
            }
            if !log.holds(&h.event_id)? {
                if let std::collections::btree_map::Entry::Vacant(v) =
                    self.hits.entry(h.event_id.clone())
                {
                    self.by_case
                        .entry(h.case_id.clone())
                        .or_default()
                        .push(h.event_id.clone());
                    v.insert(h);
                }
            }
        }
        Ok(())
    }

    /// Folds one committed event into `rules` and keeps the hits it raises.
    /// A close drops the case's hits not raised yet: the ledger refuses a
    /// warning on a closed case, and a refused hit would be tried again at
    /// every catch-up — or raised by a fold that came after a reopen and
    /// not by one before.
    pub fn fold(
        &mut self,
        rules: &mut WarningRules,
        f: &Fact<'_>,
        log: &dyn WarningLog,
    ) -> Result<(), String> {
        let hits = rules.apply(f, log)?;
        self.add(log, hits)?;
        if matches!(f.event.kind, Some(Kind::CaseClosed(_))) {
            for id in self.by_case.remove(f.case_id).unwrap_or_default() {
                self.hits.remove(&id);
            }
        }
        Ok(())
    }

    /// The hits to append, in time order, minus those whose warnings have
    /// since appeared in the log.
    pub fn settle(&mut self, log: &dyn WarningLog) -> Result<Vec<Hit>, String> {
        self.by_case.clear();
        let mut v = Vec::new();
        for h in std::mem::take(&mut self.hits).into_values() {
            if !log.holds(&h.event_id)? {
                v.push(h);
            }
        }
        v.sort_by(|a, b| (a.occurred_at, &a.event_id).cmp(&(b.occurred_at, &b.event_id)));
        Ok(v)
    }

    pub fn is_empty(&self) -> bool {
        self.hits.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::config::PolicyConfig;
    use crate::projections::fact::OwnedFact;
    use crate::time::{parse_rfc3339, ts_nanos};

    /// The events folded so far, serving a case's history (counted in
    /// `histories`) and the event ids in the log.
    #[derive(Default)]
    struct Events {
        events: Vec<OwnedFact>,
        histories: std::cell::Cell<usize>,
    }

    impl WarningLog for Events {
        fn holds(&self, event_id: &str) -> Result<bool, String> {
            Ok(self.events.iter().any(|e| e.event_id == event_id))
        }

        fn earlier(&self, case_id: &str, before: u64) -> Result<Vec<OwnedFact>, String> {
            self.histories.set(self.histories.get() + 1);
            Ok(crate::projections::fact::earlier_in(
                &self.events,
                case_id,
                before,
            ))
        }
    }

    fn rules(cache: usize) -> WarningRules {
        let memory = || Box::new(crate::store::MemoryTable::default());
        let table = WarningTable::open(memory(), memory(), "").expect("table in memory");
        WarningRules::new(PolicyConfig::default().early_warning.rules, table, cache)
    }

    /// The rules with the events folded into them.
    struct Log {
        rules: WarningRules,
        log: Events,
    }

    impl Log {
        fn new() -> Self {
            Self::with_cache(64)
        }

        fn with_cache(cache: usize) -> Self {
            Self {
                rules: rules(cache),
                log: Events::default(),
            }
        }

        fn histories(&self) -> usize {
            self.log.histories.get()
        }

        fn add(&mut self, case: &str, at: &str, kind: Kind) -> Vec<Hit> {
            let id = format!("e{}", self.log.events.len() + 1);
            self.add_as(&id, case, at, kind)
        }

        fn add_as(&mut self, id: &str, case: &str, at: &str, kind: Kind) -> Vec<Hit> {
            self.add_at(id, case, parse_rfc3339(at), kind)
        }

        /// Appends what a hit raises, as the process does.
        fn add_hit(&mut self, h: &Hit) -> Vec<Hit> {
            let at = Some(crate::time::nanos_ts(h.occurred_at));
            self.add_at(&h.event_id, &h.case_id, at, h.event().kind.unwrap())
        }

        fn add_at(
            &mut self,
            id: &str,
            case: &str,
            at: Option<prost_types::Timestamp>,
            kind: Kind,
        ) -> Vec<Hit> {
            let fact = OwnedFact {
                position: self.log.events.len() as u64 + 1,
                case_id: case.into(),
                event_id: id.into(),
                occurred_at: at,
                recorded_at: 0,
                correlation_id: String::new(),
                imported: false,
                event: pb::CaseEvent { kind: Some(kind) },
            };
            let hits = self
                .rules
                .apply(&fact.fact(), &self.log)
                .expect("history served");
            self.log.events.push(fact);
            hits
        }

        /// What falls due by `now`, taken out of the due queue as the
        /// process does once it is raised.
        fn due(&mut self, now: i128) -> Vec<Hit> {
            let next = self.log.events.len() as u64 + 1;
            let (hits, judged) = self.rules.due(now, next, &self.log).expect("judged");
            self.rules.judged_due(&judged).expect("taken out");
            hits
        }

        fn due_times(&self) -> Vec<i128> {
            let queued = self.rules.table().due_before(i128::MAX, 100).unwrap();
            queued.into_iter().map(|(due, _, _)| due).collect()
        }

        fn track(&self, case: &str) -> Option<&CaseTrack> {
            self.rules.tracks.get(case)
        }
    }

    fn opened(customer: &str) -> Kind {
        Kind::CaseOpened(pb::CaseOpened {
            customer_id: customer.into(),
            ..Default::default()
        })
    }

    fn call(at: &str) -> Kind {
        Kind::ContactLogged(pb::ContactLogged {
            contact_id: at.into(),
            direction: pb::Direction::Inbound as i32,
            started_at: parse_rfc3339(at),
            ..Default::default()
        })
    }

    fn rules_of(hits: &[Hit]) -> Vec<&str> {
        hits.iter().map(|h| h.warning.rule.as_str()).collect()
    }

    #[test]
    fn three_contacts_within_12_hours_across_cases_of_one_customer() {
        let mut log = Log::new();
        log.add("a", "2020-12-03T01:00:00+08:00", opened("u"));
        log.add("b", "2020-12-03T01:00:00+08:00", opened("u"));
        assert!(log
            .add(
                "a",
                "2020-12-03T01:24:30+08:00",
                call("2020-12-03T01:24:30+08:00")
            )
            .is_empty());
        assert!(log
            .add(
                "b",
                "2020-12-03T09:00:00+08:00",
                call("2020-12-03T09:00:00+08:00")
            )
            .is_empty());
        let hits = log.add(
            "a",
            "2020-12-03T13:00:00+08:00",
            call("2020-12-03T13:00:00+08:00"),
        );
        assert_eq!(rules_of(&hits), ["three_contacts_in_12h"]);
        assert_eq!(hits[0].case_id, "a");
        assert_eq!(hits[0].causation_id, "e5");
        assert_eq!(
            hits[0].warning.reason,
            "contact 2020-12-03T13:00:00+08:00 makes 3 contacts from the customer within 12 hours"
        );
        // Later contacts of the same episode do not warn again...
        for at in ["2020-12-03T14:00:00+08:00", "2020-12-03T23:00:00+08:00"] {
            assert!(log.add("a", at, call(at)).is_empty(), "{at}");
        }
        // ...a new night does.
        for at in ["2020-12-05T01:00:00+08:00", "2020-12-05T02:00:00+08:00"] {
            assert!(log.add("b", at, call(at)).is_empty(), "{at}");
        }
        let hits = log.add(
            "b",
            "2020-12-05T03:00:00+08:00",
            call("2020-12-05T03:00:00+08:00"),
        );
        assert_eq!(rules_of(&hits), ["three_contacts_in_12h"]);
    }

    #[test]
    fn three_contacts_spread_over_more_than_12_hours_do_not_warn() {
        let mut log = Log::new();
        log.add("a", "2020-12-03T01:00:00+08:00", opened("u"));
        for at in [
            "2020-12-03T01:00:00+08:00",
            "2020-12-03T08:00:00+08:00",
            "2020-12-03T13:00:01+08:00",
        ] {
            assert!(log.add("a", at, call(at)).is_empty(), "{at}");
        }
        // Outbound calls are ours, not the customer's.
        let mut outbound = call("2020-12-03T13:30:00+08:00");
        if let Kind::ContactLogged(c) = &mut outbound {
            c.direction = pb::Direction::Outbound as i32;
        }
        assert!(log
            .add("a", "2020-12-03T13:30:00+08:00", outbound)
            .is_empty());
    }

    #[test]
    fn a_ticket_rejected_twice_and_a_result_refused_twice() {
        let mut log = Log::new();
        log.add("a", "2020-12-03T01:00:00+08:00", opened("u"));
        let reject = || {
            Kind::TicketRejected(pb::TicketRejected {
                ticket_id: "t1".into(),
                reason: "不详细".into(),
                ..Default::default()
            })
        };
        assert!(log
            .add("a", "2020-12-03T10:00:00+08:00", reject())
            .is_empty());
        let hits = log.add("a", "2020-12-04T10:00:00+08:00", reject());
        assert_eq!(rules_of(&hits), ["ticket_rejected_twice"]);
        assert_eq!(
            hits[0].warning.required_level,
            pb::EscalationLevel::TeamLead as i32
        );
        let refused = || {
            Kind::CallbackCompleted(pb::CallbackCompleted {
                reached: true,
                customer_response: pb::CustomerResponse::Refused as i32,
                ..Default::default()
            })
        };
        assert!(log
            .add("a", "2020-12-05T10:00:00+08:00", refused())
            .is_empty());
        let hits = log.add("a", "2020-12-06T10:00:00+08:00", refused());
        assert_eq!(rules_of(&hits), ["result_refused_twice"]);
        assert_eq!(
            hits[0].warning.required_level,
            pb::EscalationLevel::Manager as i32
        );
    }

    /// Promise p1, due at `due`.
    fn promise(due: &str) -> pb::PromiseMade {
        pb::PromiseMade {
            promise_id: "p1".into(),
            due_at: parse_rfc3339(due),
            ..Default::default()
        }
    }

    /// A correction of the promise recorded by `event_id` to fall due at `due`.
    fn promise_corrected(event_id: &str, due: &str) -> Kind {
        Kind::EventCorrected(Box::new(pb::EventCorrected {
            corrected_event_id: event_id.into(),
            replacement: Some(Box::new(pb::CaseEvent {
                kind: Some(Kind::PromiseMade(promise(due))),
            })),
            ..Default::default()
        }))
    }

    /// A closed case's track is set aside (its promise leaves the due
    /// queue), notes and corrections on it fold nothing, and a reopen folds
    /// the track again from the case's stream: a rejection counted before
    /// the close and a promise corrected while closed both count after it,
    /// and nothing is raised for what happened before the reopen.
    #[test]
    fn a_closed_case_is_set_aside_and_folded_again_when_reopened() {
        let mut log = Log::new();
        log.add("a", "2020-12-03T01:00:00+08:00", opened("u"));
        let reject = || {
            Kind::TicketRejected(pb::TicketRejected {
                ticket_id: "t1".into(),
                ..Default::default()
            })
        };
        assert!(log
            .add("a", "2020-12-03T10:00:00+08:00", reject())
            .is_empty());
        log.add(
            "a",
            "2020-12-03T11:00:00+08:00",
            Kind::PromiseMade(promise("2020-12-07T18:00:00+08:00")),
        );
        assert_eq!(log.due_times().len(), 1);
        log.add(
            "a",
            "2020-12-04T10:00:00+08:00",
            Kind::CaseClosed(Default::default()),
        );
        assert!(log
            .track("a")
            .is_some_and(|t| t.closed && t.promises.promises.is_empty()));
        assert!(log.due_times().is_empty());

        // While closed: a correction moves the promise's due time; a note.
        let corrected = promise_corrected("e3", "2020-12-10T18:00:00+08:00");
        assert!(log
            .add("a", "2020-12-05T10:00:00+08:00", corrected)
            .is_empty());
        assert!(log
            .add(
                "a",
                "2020-12-05T11:00:00+08:00",
                Kind::NoteAdded(Default::default())
            )
            .is_empty());
        let after_first_due = ts_nanos(&parse_rfc3339("2020-12-08T09:00:00+08:00").unwrap());
        assert!(log.due(after_first_due).is_empty());
        assert!(log.track("a").is_some_and(|t| t.closed) && log.histories() == 0);

        // Reopened: folded from its stream once, raising nothing old.
        assert!(log
            .add(
                "a",
                "2020-12-08T10:00:00+08:00",
                Kind::CaseReopened(Default::default())
            )
            .is_empty());
        assert_eq!(log.histories(), 1);
        assert_eq!(log.track("a").unwrap().customer, "u");
        assert!(log.due(after_first_due).is_empty(), "due as corrected");
        let hits = log.add("a", "2020-12-08T11:00:00+08:00", reject());
        assert_eq!(rules_of(&hits), ["ticket_rejected_twice"]);
        let after_corrected_due = ts_nanos(&parse_rfc3339("2020-12-11T09:00:00+08:00").unwrap());
        let hits = log.due(after_corrected_due);
        assert_eq!(rules_of(&hits), ["promise_broken"]);
        assert_eq!(hits[0].event_id, warning_event_id("promise_broken", "e3"));

        // Closed again and reopened: set aside and folded again, once more.
        log.add(
            "a",
            "2020-12-12T10:00:00+08:00",
            Kind::CaseClosed(Default::default()),
        );
        assert!(log.track("a").is_some_and(|t| t.closed));
        log.add(
            "a",
            "2020-12-13T10:00:00+08:00",
            Kind::CaseReopened(Default::default()),
        );
        assert_eq!(log.histories(), 2);
        assert_eq!(log.track("a").unwrap().rejections["t1"], 2);
    }

    /// A correction that moves a promise's due time moves its place in the
    /// due queue: nothing is left waiting at the old time.
    #[test]
    fn a_corrected_due_time_leaves_no_place_at_the_old_one() {
        let mut log = Log::new();
        log.add("a", "2020-12-03T01:00:00+08:00", opened("u"));
        let made = Kind::PromiseMade(promise("2020-12-07T18:00:00+08:00"));
        log.add("a", "2020-12-03T01:51:29+08:00", made);
        let corrected = promise_corrected("e2", "2020-12-10T18:00:00+08:00");
        assert!(log
            .add("a", "2020-12-04T10:00:00+08:00", corrected)
            .is_empty());
        let new_due = ts_nanos(&parse_rfc3339("2020-12-10T18:00:00+08:00").unwrap());
        assert_eq!(log.due_times(), [new_due]);
        let after_old = ts_nanos(&parse_rfc3339("2020-12-08T09:00:00+08:00").unwrap());
        assert!(log.due(after_old).is_empty());
        let hits = log.due(new_due + 1);
        assert_eq!(rules_of(&hits), ["promise_broken"]);
    }

    #[test]
    fn a_promise_due_and_unanswered_is_raised_by_time_once() {
        let mut log = Log::new();
        log.add("a", "2020-12-03T01:00:00+08:00", opened("u"));
        let promise = Kind::PromiseMade(pb::PromiseMade {
            promise_id: "p1".into(),
            due_at: parse_rfc3339("2020-12-07T18:00:00+08:00"),
            ..Default::default()
        });
        assert!(log
            .add("a", "2020-12-03T01:51:29+08:00", promise)
            .is_empty());
        let before = ts_nanos(&parse_rfc3339("2020-12-07T17:00:00+08:00").unwrap());
        assert!(log.due(before).is_empty());
        let after = ts_nanos(&parse_rfc3339("2020-12-08T09:00:00+08:00").unwrap());
        let hits = log.due(after);
        assert_eq!(rules_of(&hits), ["promise_broken"]);
        assert_eq!(hits[0].event_id, warning_event_id("promise_broken", "e2"));
        assert!(log.due(after + 1).is_empty());
        // Its warning in the log marks it raised; a later late answer is no new warning.
        let id = hits[0].event_id.clone();
        assert!(!log.rules.is_raised(&id, &log.log).unwrap());
        log.add_as(
            &id,
            "a",
            "2020-12-08T09:00:01+08:00",
            Kind::WarningRaised(hits[0].warning.clone()),
        );
        assert!(log.rules.is_raised(&id, &log.log).unwrap());
        let late = Kind::CallbackCompleted(pb::CallbackCompleted {
            reached: true,
            promise_id: "p1".into(),
            channel: pb::Channel::OutboundCall as i32,
            ..Default::default()
        });
        assert!(log.add("a", "2020-12-09T10:00:00+08:00", late).is_empty());
    }

    /// A close drops its case's hits not raised yet (a backfilled closed
    /// case's warnings would otherwise be refused, and tried again at every
    /// start), and only its case's.
    #[test]
    fn a_close_drops_its_cases_pending_hits_only() {
        let mut rules = rules(64);
        let events = Events::default();
        let mut pending = Pending::default();
        let mut n = 0;
        let mut fold =
            |rules: &mut WarningRules, pending: &mut Pending, case: &str, at: &str, kind: Kind| {
                n += 1;
                let fact = OwnedFact {
                    position: n,
                    case_id: case.into(),
                    event_id: format!("e{n}"),
                    occurred_at: parse_rfc3339(at),
                    recorded_at: 0,
                    correlation_id: String::new(),
                    imported: false,
                    event: pb::CaseEvent { kind: Some(kind) },
                };
                pending.fold(rules, &fact.fact(), &events).unwrap();
            };
        for (case, customer) in [("a", "u1"), ("b", "u2")] {
            fold(
                &mut rules,
                &mut pending,
                case,
                "2020-12-03T01:00:00+08:00",
                opened(customer),
            );
            for at in [
                "2020-12-03T01:24:30+08:00",
                "2020-12-03T01:49:53+08:00",
                "2020-12-03T01:51:29+08:00",
            ] {
                fold(&mut rules, &mut pending, case, at, call(at));
            }
        }
        let closed = Kind::CaseClosed(pb::CaseClosed::default());
        fold(
            &mut rules,
            &mut pending,
            "a",
            "2020-12-03T02:00:00+08:00",
            closed,
        );
        let left = pending.settle(&events).unwrap();
        assert_eq!(rules_of(&left), ["three_contacts_in_12h"]);
        assert!(left.iter().all(|h| h.case_id == "b"));
    }

    /// Tracks evicted from the cache and folded again from their cases'
    /// streams raise exactly what tracks kept in memory raise: a script
    /// over three interleaved cases, their warnings appended as the
    /// process appends them, through a cache of one and of sixty-four.
    #[test]
    fn a_track_folded_again_raises_what_a_kept_one_does() {
        let run = |cache: usize| {
            let mut log = Log::with_cache(cache);
            let mut raised = Vec::new();
            let mut record = |log: &mut Log, hits: Vec<Hit>| {
                for h in hits {
                    raised.push((
                        h.case_id.clone(),
                        h.event_id.clone(),
                        h.warning.reason.clone(),
                    ));
                    assert!(log.add_hit(&h).is_empty());
                }
            };
            for (case, customer) in [("a", "u"), ("b", "u"), ("c", "w")] {
                log.add(case, "2020-12-03T01:00:00+08:00", opened(customer));
            }
            let day = |d: u32, h: u32| format!("2020-12-{d:02}T{h:02}:00:00+08:00");
            for (i, case) in ["a", "b", "c"].iter().enumerate() {
                let made = Kind::PromiseMade(pb::PromiseMade {
                    promise_id: format!("p{i}"),
                    due_at: parse_rfc3339(&day(4 + i as u32, 18)),
                    ..Default::default()
                });
                let hits = log.add(case, &day(3, 2 + i as u32), made);
                record(&mut log, hits);
            }
            for h in [3, 9, 13, 14] {
                for case in ["a", "b", "c"] {
                    let hits = log.add(case, &day(3, h), call(&day(3, h)));
                    record(&mut log, hits);
                }
            }
            let now = ts_nanos(&parse_rfc3339(&day(5, 12)).unwrap());
            let hits = log.due(now);
            record(&mut log, hits);
            for case in ["c", "a", "b"] {
                let late = Kind::CallbackCompleted(pb::CallbackCompleted {
                    reached: true,
                    promise_id: "p2".into(),
                    channel: pb::Channel::OutboundCall as i32,
                    ..Default::default()
                });
                let hits = log.add(case, &day(6, 10), late);
                record(&mut log, hits);
                let reject = Kind::TicketRejected(pb::TicketRejected {
                    ticket_id: "t".into(),
                    ..Default::default()
                });
                for d in [7, 8] {
                    let hits = log.add(case, &day(d, 10), reject.clone());
                    record(&mut log, hits);
                }
            }
            let hits = log.due(ts_nanos(&parse_rfc3339(&day(9, 12)).unwrap()));
            record(&mut log, hits);
            (raised, log.histories())
        };
        let (kept, no_loads) = run(64);
        let (folded_again, loads) = run(1);
        assert_eq!(no_loads, 0);
        assert!(loads > 10, "the small cache folded {loads} tracks again");
        let rules: std::collections::BTreeSet<&str> =
            kept.iter().map(|(_, id, _)| id.as_str()).collect();
        assert!(kept.len() >= 6, "{kept:?}");
        assert_eq!(rules.len(), kept.len(), "no warning twice: {kept:?}");
        assert_eq!(kept, folded_again);
    }

    /// A kind the rules do not look at is passed over without reading its
    /// case; every kind they do look at is folded (each one's arm in
    /// `fold` or a rule names it).
    #[test]
    fn a_note_on_a_case_not_in_the_cache_reads_nothing() {
        let mut log = Log::with_cache(1);
        log.add("a", "2020-12-03T01:00:00+08:00", opened("u"));
        log.add("b", "2020-12-03T01:00:00+08:00", opened("u"));
        let note = Kind::NoteAdded(Default::default());
        assert!(log.add("a", "2020-12-03T02:00:00+08:00", note).is_empty());
        assert_eq!(log.histories(), 0);
        let call = call("2020-12-03T03:00:00+08:00");
        log.add("a", "2020-12-03T03:00:00+08:00", call);
        assert_eq!(log.histories(), 1);
        for kind in crate::domain::every_kind() {
            let named_by_a_rule = matches!(
                kind,
                Kind::ContactLogged(_)
                    | Kind::TicketRejected(_)
                    | Kind::CallbackCompleted(_)
                    | Kind::CallbackAttempted(_)
                    | Kind::ExternalComplaintReceived(_)
                    | Kind::PromiseMade(_)
                    | Kind::EventCorrected(_)
            );
            if named_by_a_rule {
                assert!(WarningRules::folds(&kind), "{kind:?}");
            }
        }
    }
}
