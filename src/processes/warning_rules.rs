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

use crate::domain::party::{acting_party, describe, owner_at, uncoordinated};
use crate::policy::config::{Trigger, WarningRule};
use crate::projections::fact::{Fact, History};
use crate::projections::promise_book::{moves_promises, CasePromises};
use crate::projections::promises::breach_reason_names;
use crate::proto::v1::{self as pb, case_event::Kind, PromiseState};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
use std::sync::Arc;

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

/// The event ids of the warnings in the log. Those this process derives
/// ([`warning_event_id`]: `warning-` and 32 hex digits) are kept as the 128
/// bits they spell, about a third of the memory of the string in a set
/// (ids of warnings other writers appended are kept as they are).
#[derive(Default)]
struct RaisedIds {
    derived: HashSet<u128>,
    other: BTreeSet<String>,
}

impl RaisedIds {
    /// The bits of a derived id; None for any other id (upper case hex
    /// included: [`warning_event_id`] writes lower case).
    fn derived(id: &str) -> Option<u128> {
        let hex = id.strip_prefix("warning-")?;
        let lower = |b: u8| b.is_ascii_digit() || (b'a'..=b'f').contains(&b);
        if hex.len() != 32 || !hex.bytes().all(lower) {
            return None;
        }
        u128::from_str_radix(hex, 16).ok()
    }

    fn insert(&mut self, id: &str) {
        match Self::derived(id) {
            Some(bits) => self.derived.insert(bits),
            None => self.other.insert(id.to_string()),
        };
    }

    fn contains(&self, id: &str) -> bool {
        match Self::derived(id) {
            Some(bits) => self.derived.contains(&bits),
            None => self.other.contains(id),
        }
    }
}

#[derive(Default)]
struct CaseTrack {
    customer: String,
    offset: i32,
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

/// The rule state, folded from the log.
pub struct WarningRules {
    /// Shared so `apply` can walk them while it updates the state (a clone
    /// per event is a reference count, not a copy of every rule).
    rules: Arc<[WarningRule]>,
    cases: HashMap<String, CaseTrack>,
    /// Inbound contact start times per customer, oldest first.
    contacts: HashMap<String, VecDeque<i128>>,
    /// Open promises by due time: (due, case, promise event id).
    due: BTreeSet<(i128, String, String)>,
    /// Warning event ids already in the log.
    raised: RaisedIds,
    /// When a repeated-contacts rule last fired for a customer.
    fired: HashMap<(String, String), i128>,
    /// Closed cases whose tracks were set aside. A closed case takes no
    /// warning (the ledger refuses it), only a note, a correction or a
    /// reopen, so its track (~3 KB for a case like the seed's, a promise
    /// book among it) is dropped at the close and folded again from the
    /// case's stream when it is reopened: most of a ledger's cases are
    /// closed, and they would otherwise cost that for as long as it runs.
    set_aside: HashSet<String>,
}

impl WarningRules {
    pub fn new(rules: Vec<WarningRule>) -> Self {
        Self {
            rules: rules.into(),
            cases: HashMap::new(),
            contacts: HashMap::new(),
            due: BTreeSet::new(),
            raised: RaisedIds::default(),
            fired: HashMap::new(),
            set_aside: HashSet::new(),
        }
    }

    /// Whether folding `f` reads the case's earlier events: it reopens a
    /// case whose track was set aside at its close.
    pub fn needs_history(&self, f: &Fact<'_>) -> bool {
        matches!(f.event.kind, Some(Kind::CaseReopened(_))) && self.set_aside.contains(f.case_id)
    }

    /// Folds one committed event; returns the warnings it raises. `history`
    /// is called only when [`Self::needs_history`] says so; its error stops
    /// the fold with nothing changed.
    pub fn apply(&mut self, f: &Fact<'_>, history: &mut History<'_>) -> Result<Vec<Hit>, String> {
        if self.set_aside.contains(f.case_id) {
            if !self.needs_history(f) {
                // A note or a correction of a closed case: the reopen's
                // fold of the case's stream will include it.
                return Ok(Vec::new());
            }
            let earlier = history(f.case_id, f.position)?;
            self.set_aside.remove(f.case_id);
            for e in &earlier {
                self.fold(&e.fact(), true);
            }
        }
        Ok(self.fold(f, false))
    }

    /// Drops a closed case's track and its promises' places in the due
    /// queue; a reopen folds them again (see `set_aside`).
    fn set_case_aside(&mut self, case_id: &str) {
        let Some(track) = self.cases.remove(case_id) else {
            return;
        };
        for p in &track.promises.promises {
            if let Some(due) = p.promise.due_at.as_ref() {
                let key = (
                    crate::time::ts_nanos(due),
                    case_id.to_string(),
                    p.event_id.clone(),
                );
                self.due.remove(&key);
            }
        }
        self.set_aside.insert(case_id.to_string());
    }

    /// Whether a warning with this event id is already in the log.
    pub fn is_raised(&self, event_id: &str) -> bool {
        self.raised.contains(event_id)
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
    fn fold(&mut self, f: &Fact<'_>, replaying: bool) -> Vec<Hit> {
        let mut hits = Vec::new();
        let Some(kind) = f.event.kind.as_ref() else {
            return hits;
        };
        let at = f.at();
        let track = self.cases.entry(f.case_id.to_string()).or_default();
        match kind {
            Kind::CaseOpened(o) => {
                track.customer = if o.customer_id.is_empty() {
                    format!("case:{}", f.case_id)
                } else {
                    o.customer_id.clone()
                };
                track.offset = o.utc_offset_minutes;
            }
            Kind::WarningRaised(_) => {
                self.raised.insert(f.event_id);
            }
            Kind::WarningWithdrawn(w) => {
                self.raised.insert(f.event_id);
                track.withdrawn.insert(w.warning_id.clone());
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
        let track = self.cases.get_mut(f.case_id).expect("inserted above");
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
                    self.due.remove(&key);
                }
            }
            track.promises.apply(f);
        }
        let customer = track.customer.clone();
        let offset = track.offset;
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
                    let times = self.contacts.entry(customer.clone()).or_default();
                    let i = times.partition_point(|t| *t <= started);
                    times.insert(i, started);
                    let in_window = times
                        .iter()
                        .filter(|t| **t <= started && started - **t <= window)
                        .count();
                    // One warning per episode: not again until a whole window
                    // has passed since the last one for this customer.
                    let key = (rule.name.clone(), customer.clone());
                    let quiet = self
                        .fired
                        .get(&key)
                        .is_none_or(|last| started - *last > window);
                    if in_window >= *contacts as usize && quiet {
                        self.fired.insert(key, started);
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
                    let track = self.cases.get_mut(f.case_id).expect("case tracked");
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
                    let track = self.cases.get_mut(f.case_id).expect("case tracked");
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
                    let track = self.cases.get(f.case_id).expect("case tracked");
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
                    hits.extend(self.judge_promises(rule, f, at, offset));
                }
                _ => {}
            }
        }
        if replaying {
            return Vec::new();
        }
        if matches!(kind, Kind::CaseClosed(_)) {
            self.set_case_aside(f.case_id);
        }
        hits
    }

    /// Re-judges one case's promises at `now`; updates the due queue. A
    /// promise warned about as broken that, judged again as of its warning
    /// with every fact known now (one recorded late among them), was not
    /// broken then gets its warning withdrawn.
    fn judge_promises(
        &mut self,
        rule: &WarningRule,
        f: &Fact<'_>,
        now: i128,
        offset: i32,
    ) -> Vec<Hit> {
        let track = self.cases.get_mut(f.case_id).expect("case tracked");
        let offset = if offset == 0 {
            crate::time::DEFAULT_UTC_OFFSET_MINUTES
        } else {
            offset
        };
        let mut broken = Vec::new();
        for v in track.promises.judged(offset, now) {
            let due = v
                .promise
                .as_ref()
                .and_then(|p| p.due_at.as_ref())
                .map(crate::time::ts_nanos);
            if let Some(due) = due {
                let key = (due, f.case_id.to_string(), v.event_id.clone());
                if v.state == PromiseState::Open as i32 {
                    self.due.insert(key);
                } else {
                    self.due.remove(&key);
                }
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
        hits
    }

    /// Promises that fell due by `now` without an answer.
    pub fn due(&mut self, now: i128) -> Vec<Hit> {
        let Some(rule) = self
            .rules
            .iter()
            .find(|r| r.trigger == Trigger::PromiseBroken)
            .cloned()
        else {
            return Vec::new();
        };
        let mut hits = Vec::new();
        while let Some(first) = self.due.first().cloned() {
            if first.0 >= now {
                break;
            }
            self.due.pop_first();
            let (due, case_id, promise_event) = first;
            let Some(track) = self.cases.get_mut(&case_id) else {
                continue;
            };
            let offset = if track.offset == 0 {
                crate::time::DEFAULT_UTC_OFFSET_MINUTES
            } else {
                track.offset
            };
            let Some(v) = track.promises.judged_one(&promise_event, offset, due + 1) else {
                continue;
            };
            if v.state == PromiseState::Broken as i32 && !track.broken.contains_key(&v.event_id) {
                track.broken.insert(v.event_id.clone(), due);
                let mut h = promise_hit(&rule, &case_id, &v, &promise_event, "", due);
                // Imported with its due time already past: found on import.
                h.warning.found_on_import = track
                    .imported
                    .get(&v.event_id)
                    .is_some_and(|recorded| due < *recorded);
                hits.push(h);
            }
        }
        hits
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
    pub fn add(&mut self, rules: &WarningRules, hits: Vec<Hit>) {
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
            if !rules.is_raised(&h.event_id) {
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
    }

    /// Folds one committed event into `rules` and keeps the hits it raises.
    /// A close drops the case's hits not raised yet: the ledger refuses a
    /// warning on a closed case, and a refused hit would be tried again at
    /// every start (a backfilled closed case's every warning, each start) —
    /// or raised by a start that came after a reopen and not by one before.
    pub fn fold(
        &mut self,
        rules: &mut WarningRules,
        f: &Fact<'_>,
        history: &mut History<'_>,
    ) -> Result<(), String> {
        let hits = rules.apply(f, history)?;
        self.add(rules, hits);
        if matches!(f.event.kind, Some(Kind::CaseClosed(_))) {
            for id in self.by_case.remove(f.case_id).unwrap_or_default() {
                self.hits.remove(&id);
            }
        }
        Ok(())
    }

    /// Drops hits whose warnings have since appeared in the log.
    pub fn settle(&mut self, rules: &WarningRules) -> Vec<Hit> {
        self.by_case.clear();
        let mut v: Vec<Hit> = std::mem::take(&mut self.hits)
            .into_values()
            .filter(|h| !rules.is_raised(&h.event_id))
            .collect();
        v.sort_by(|a, b| (a.occurred_at, &a.event_id).cmp(&(b.occurred_at, &b.event_id)));
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::config::PolicyConfig;
    use crate::projections::fact::OwnedFact;
    use crate::time::{parse_rfc3339, ts_nanos};

    #[test]
    fn raised_ids_are_told_apart_exactly_whatever_their_form() {
        let mut ids = RaisedIds::default();
        let derived = warning_event_id("threat_on_contact", "e1");
        let other = warning_event_id("threat_on_contact", "e2");
        let upper = format!("warning-{}", derived["warning-".len()..].to_uppercase());
        ids.insert(&derived);
        ids.insert("warning-from-a-client");
        assert!(ids.derived.len() == 1 && ids.other.len() == 1);
        assert!(ids.contains(&derived));
        assert!(ids.contains("warning-from-a-client"));
        assert!(!ids.contains(&other));
        assert!(!ids.contains(&upper));
        assert!(!ids.contains(&derived[..derived.len() - 1]));
        assert!(!ids.contains(&format!("{derived}0")));
        assert!(!ids.contains(&derived.replacen("warning-", "warning+", 1)));
    }

    /// The rules with the events folded into them, which also serve a
    /// reopened case's history; `histories` counts the cases served.
    struct Log {
        rules: WarningRules,
        n: usize,
        events: Vec<OwnedFact>,
        histories: usize,
    }

    impl Log {
        fn new() -> Self {
            Self {
                rules: WarningRules::new(PolicyConfig::default().early_warning.rules),
                n: 0,
                events: Vec::new(),
                histories: 0,
            }
        }

        fn add(&mut self, case: &str, at: &str, kind: Kind) -> Vec<Hit> {
            let id = format!("e{}", self.n + 1);
            self.add_as(&id, case, at, kind)
        }

        fn add_as(&mut self, id: &str, case: &str, at: &str, kind: Kind) -> Vec<Hit> {
            self.n += 1;
            let fact = OwnedFact {
                position: self.n as u64,
                case_id: case.into(),
                event_id: id.into(),
                occurred_at: parse_rfc3339(at),
                recorded_at: 0,
                correlation_id: String::new(),
                imported: false,
                event: pb::CaseEvent { kind: Some(kind) },
            };
            let (events, histories) = (&self.events, &mut self.histories);
            let hits = self
                .rules
                .apply(&fact.fact(), &mut |case_id, before| {
                    *histories += 1;
                    Ok(crate::projections::fact::earlier_in(
                        events, case_id, before,
                    ))
                })
                .expect("history served");
            self.events.push(fact);
            hits
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
        assert_eq!(log.rules.due.len(), 1);
        log.add(
            "a",
            "2020-12-04T10:00:00+08:00",
            Kind::CaseClosed(Default::default()),
        );
        assert!(!log.rules.cases.contains_key("a") && log.rules.due.is_empty());

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
        assert!(log.rules.due(after_first_due).is_empty());
        assert!(!log.rules.cases.contains_key("a") && log.histories == 0);

        // Reopened: folded from its stream once, raising nothing old.
        assert!(log
            .add(
                "a",
                "2020-12-08T10:00:00+08:00",
                Kind::CaseReopened(Default::default())
            )
            .is_empty());
        assert_eq!(log.histories, 1);
        assert_eq!(log.rules.cases["a"].customer, "u");
        assert!(
            log.rules.due(after_first_due).is_empty(),
            "due as corrected"
        );
        let hits = log.add("a", "2020-12-08T11:00:00+08:00", reject());
        assert_eq!(rules_of(&hits), ["ticket_rejected_twice"]);
        let after_corrected_due = ts_nanos(&parse_rfc3339("2020-12-11T09:00:00+08:00").unwrap());
        let hits = log.rules.due(after_corrected_due);
        assert_eq!(rules_of(&hits), ["promise_broken"]);
        assert_eq!(hits[0].event_id, warning_event_id("promise_broken", "e3"));

        // Closed again and reopened: set aside and folded again, once more.
        log.add(
            "a",
            "2020-12-12T10:00:00+08:00",
            Kind::CaseClosed(Default::default()),
        );
        assert!(!log.rules.cases.contains_key("a"));
        log.add(
            "a",
            "2020-12-13T10:00:00+08:00",
            Kind::CaseReopened(Default::default()),
        );
        assert_eq!(log.histories, 2);
        assert_eq!(log.rules.cases["a"].rejections["t1"], 2);
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
        let queued: Vec<i128> = log.rules.due.iter().map(|(due, _, _)| *due).collect();
        assert_eq!(queued, [new_due]);
        let after_old = ts_nanos(&parse_rfc3339("2020-12-08T09:00:00+08:00").unwrap());
        assert!(log.rules.due(after_old).is_empty());
        let hits = log.rules.due(new_due + 1);
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
        assert!(log.rules.due(before).is_empty());
        let after = ts_nanos(&parse_rfc3339("2020-12-08T09:00:00+08:00").unwrap());
        let hits = log.rules.due(after);
        assert_eq!(rules_of(&hits), ["promise_broken"]);
        assert_eq!(hits[0].event_id, warning_event_id("promise_broken", "e2"));
        assert!(log.rules.due(after + 1).is_empty());
        // Its warning in the log marks it raised; a later late answer is no new warning.
        let id = hits[0].event_id.clone();
        assert!(!log.rules.is_raised(&id));
        log.add_as(
            &id,
            "a",
            "2020-12-08T09:00:01+08:00",
            Kind::WarningRaised(hits[0].warning.clone()),
        );
        assert!(log.rules.is_raised(&id));
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
        let mut rules = WarningRules::new(PolicyConfig::default().early_warning.rules);
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
                pending
                    .fold(rules, &fact.fact(), &mut |_, _| Ok(Vec::new()))
                    .unwrap();
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
        let left = pending.settle(&rules);
        assert_eq!(rules_of(&left), ["three_contacts_in_12h"]);
        assert!(left.iter().all(|h| h.case_id == "b"));
    }
}
