//! The full projection of one case, folded from its events.
//!
//! Folding on request (rather than keeping every case's full view in memory)
//! makes the view exact as of any version or recorded time, costs one pass
//! over one case's events (tens, rarely hundreds), and cannot drift from the
//! log. Corrections are shown beside what they correct; where an item is
//! judged (promises, demands), the latest correction's replacement counts.

use super::promises::{judge_demand, judge_promise, Delivery, DemandTerms};
use super::summary::status_of;
use crate::domain::party::{acting_party, owner_at, uncoordinated};
use crate::domain::CaseState;
use crate::policy::Policy;
use crate::proto::v1::{self as pb, case_event::Kind, RecordedEvent};
use crate::time::{nanos_ts, ts_nanos};
use std::collections::{BTreeMap, HashMap, HashSet};

/// What to fold up to.
#[derive(Debug, Clone, Copy, Default)]
pub struct AsOf {
    /// Last version to include.
    pub version: Option<u64>,
    /// Last recorded time to include (nanoseconds since the epoch).
    pub recorded_at: Option<i128>,
}

impl AsOf {
    pub fn includes(&self, e: &RecordedEvent) -> bool {
        self.version.is_none_or(|v| e.case_version <= v)
            && self.recorded_at.is_none_or(|t| {
                e.recorded_at
                    .as_ref()
                    .map(crate::time::ts_nanos)
                    .is_some_and(|r| r <= t)
            })
    }
}

fn correction_view(e: &RecordedEvent, c: &pb::EventCorrected) -> pb::CorrectionView {
    pb::CorrectionView {
        event_id: e.event_id.clone(),
        case_version: e.case_version,
        occurred_at: e.occurred_at,
        actor: e.actor.clone(),
        acted_for_agent: e.acted_for_agent.clone(),
        reason: c.reason.clone(),
        replacement: c.replacement.as_deref().cloned(),
    }
}

fn bump(map: &mut BTreeMap<String, u32>, key: &str) {
    *map.entry(key.to_string()).or_default() += 1;
}

fn counts(map: BTreeMap<String, u32>) -> Vec<pb::CountByKey> {
    map.into_iter()
        .map(|(key, count)| pb::CountByKey { key, count })
        .collect()
}

/// Folds a case's events (in version order) into its view. `now` is the time
/// promises and demands are judged at, in nanoseconds since the epoch.
/// `policy` gives the case's calendar, for working times.
pub fn fold(case_id: &str, events: &[RecordedEvent], now: i128, policy: &Policy) -> pb::CaseView {
    let mut corrections: HashMap<&str, Vec<pb::CorrectionView>> = HashMap::new();
    for e in events {
        if let Some(Kind::EventCorrected(c)) = e.event.as_ref().and_then(|x| x.kind.as_ref()) {
            corrections
                .entry(c.corrected_event_id.as_str())
                .or_default()
                .push(correction_view(e, c));
        }
    }
    // The latest replacement of an event, if any.
    let effective = |e: &RecordedEvent| -> Option<pb::CaseEvent> {
        corrections
            .get(e.event_id.as_str())
            .and_then(|cs| cs.iter().rev().find_map(|c| c.replacement.clone()))
            .or_else(|| e.event.clone())
    };
    // Events whose corrections are shown inline, beside them.
    let mut inline: HashSet<&str> = HashSet::new();
    let mut v = pb::CaseView {
        case_id: case_id.to_string(),
        ..Default::default()
    };
    let mut state = CaseState::default();
    let mut by_channel = BTreeMap::new();
    let mut by_agent = BTreeMap::new();
    let mut tickets: Vec<pb::TicketView> = Vec::new();
    let mut deliveries = Vec::new();
    let mut demand_terms = Vec::new();
    let mut offset = crate::time::DEFAULT_UTC_OFFSET_MINUTES;
    let mut appealed_at: HashMap<String, i128> = HashMap::new();
    // Owner assignments (business time, owner), and what ended demands.
    let mut owners: Vec<(i128, pb::Party)> = Vec::new();
    let mut demand_ends: HashMap<String, (&RecordedEvent, bool, String, Option<pb::Party>)> =
        HashMap::new();
    let mut withdrawals: HashMap<String, (&RecordedEvent, &pb::WarningWithdrawn)> = HashMap::new();
    // Outbound contacts and callbacks: (index, business time, is contact).
    let mut outbound: Vec<(usize, i128, bool)> = Vec::new();

    for e in events {
        let Some(event) = &e.event else { continue };
        let Some(kind) = &event.kind else { continue };
        state.evolve(event);
        v.version = e.case_version;
        v.last_recorded_at = e.recorded_at;
        let fixes = corrections
            .get(e.event_id.as_str())
            .cloned()
            .unwrap_or_default();
        if matches!(
            kind,
            Kind::ContactLogged(_)
                | Kind::DemandRecorded(_)
                | Kind::PromiseMade(_)
                | Kind::NoteAdded(_)
        ) {
            inline.insert(e.event_id.as_str());
        }
        let at = e.occurred_at;
        let eff = effective(e).and_then(|x| x.kind);
        match kind {
            Kind::CaseOpened(o) => {
                v.customer_id = o.customer_id.clone();
                v.business_line = o.business_line.clone();
                v.category = o.category.clone();
                v.disputed_items = o.disputed_items.clone();
                v.opened_at = at;
                if o.utc_offset_minutes != 0 {
                    offset = o.utc_offset_minutes;
                }
            }
            Kind::ContactLogged(c) => {
                let counted = match &eff {
                    Some(Kind::ContactLogged(x)) => x,
                    _ => c,
                };
                bump(
                    &mut by_channel,
                    pb::Channel::try_from(counted.channel)
                        .map(|c| c.as_str_name())
                        .unwrap_or("UNKNOWN"),
                );
                let party = acting_party(counted.party.as_ref(), &counted.agent_id);
                if let Some(p) = party
                    .as_ref()
                    .filter(|p| p.kind == pb::PartyKind::Agent as i32)
                {
                    bump(&mut by_agent, &p.id);
                }
                if counted.direction == pb::Direction::Outbound as i32 {
                    let started = counted.started_at.or(at);
                    outbound.push((
                        v.contacts.len(),
                        started.as_ref().map(ts_nanos).unwrap_or(0),
                        true,
                    ));
                }
                v.contacts.push(pb::ContactView {
                    event_id: e.event_id.clone(),
                    case_version: e.case_version,
                    contact: Some(c.clone()),
                    corrections: fixes,
                    party,
                    uncoordinated: false,
                });
            }
            Kind::DemandRecorded(d) => {
                let d_eff = match eff {
                    Some(Kind::DemandRecorded(x)) => x,
                    _ => d.clone(),
                };
                demand_terms.push(DemandTerms {
                    made_at: at.unwrap_or_default(),
                    demand: d_eff.clone(),
                    ended_at: None,
                });
                v.demands.push(pb::DemandView {
                    event_id: e.event_id.clone(),
                    recorded_for: at,
                    demand: Some(d_eff),
                    corrections: fixes,
                    ..Default::default()
                });
            }
            Kind::PromiseMade(p) => {
                let p_eff = match eff {
                    Some(Kind::PromiseMade(x)) => x,
                    _ => p.clone(),
                };
                v.promises.push(pb::PromiseView {
                    event_id: e.event_id.clone(),
                    made_at: at,
                    promise: Some(p_eff),
                    corrections: fixes,
                    ..Default::default()
                });
            }
            Kind::TicketSubmitted(t) => {
                tickets.push(pb::TicketView {
                    ticket_id: t.ticket_id.clone(),
                    state: pb::TicketState::Submitted as i32,
                    team: t.team.clone(),
                    history: vec![step(e, "TicketSubmitted", &t.content, &[])],
                    ..Default::default()
                });
            }
            Kind::TicketRejected(t) => {
                if let Some(tv) = tickets.iter_mut().find(|x| x.ticket_id == t.ticket_id) {
                    tv.state = pb::TicketState::Rejected as i32;
                    tv.rejections += 1;
                    tv.history
                        .push(step(e, "TicketRejected", &t.reason, &t.missing_fields));
                }
            }
            Kind::TicketAppended(t) => {
                if let Some(tv) = tickets.iter_mut().find(|x| x.ticket_id == t.ticket_id) {
                    tv.state = pb::TicketState::Appended as i32;
                    tv.history
                        .push(step(e, "TicketAppended", &t.addition, &t.added_fields));
                }
            }
            Kind::TicketResultGiven(t) => {
                if let Some(tv) = tickets.iter_mut().find(|x| x.ticket_id == t.ticket_id) {
                    tv.state = pb::TicketState::ResultGiven as i32;
                    tv.result_final = t.finality == pb::ResultFinality::Final as i32;
                    tv.history
                        .push(step(e, "TicketResultGiven", &t.result, &[]));
                }
            }
            Kind::CallbackAttempted(c) => {
                outbound.push((
                    v.callbacks.len(),
                    at.as_ref().map(ts_nanos).unwrap_or(0),
                    false,
                ));
                v.callbacks.push(callback_view(
                    e,
                    CallbackFacts {
                        event_type: "CallbackAttempted",
                        channel: c.channel,
                        agent_id: &c.agent_id,
                        party: c.party.as_ref(),
                        reached: c.reached,
                        customer_response: 0,
                        promise_id: &c.promise_id,
                        ticket_id: &c.ticket_id,
                    },
                ))
            }
            Kind::CallbackCompleted(c) => {
                outbound.push((
                    v.callbacks.len(),
                    at.as_ref().map(ts_nanos).unwrap_or(0),
                    false,
                ));
                v.callbacks.push(callback_view(
                    e,
                    CallbackFacts {
                        event_type: "CallbackCompleted",
                        channel: c.channel,
                        agent_id: &c.agent_id,
                        party: c.party.as_ref(),
                        reached: c.reached,
                        customer_response: c.customer_response,
                        promise_id: &c.promise_id,
                        ticket_id: &c.ticket_id,
                    },
                ));
                if let Some(d) = Delivery::of(&e.event_id, at.unwrap_or_default(), c) {
                    deliveries.push(d);
                }
            }
            Kind::DemandDeclined(d) => {
                demand_ends.entry(d.demand_id.clone()).or_insert((
                    e,
                    true,
                    d.reason.clone(),
                    d.decided_by.clone(),
                ));
            }
            Kind::DemandWithdrawn(d) => {
                demand_ends.entry(d.demand_id.clone()).or_insert((
                    e,
                    false,
                    d.reason.clone(),
                    None,
                ));
            }
            Kind::OwnerAssigned(o) => {
                let o = match &eff {
                    Some(Kind::OwnerAssigned(x)) => x,
                    _ => o,
                };
                if let Some(owner) = &o.owner {
                    owners.push((at.as_ref().map(ts_nanos).unwrap_or(0), owner.clone()));
                }
            }
            Kind::WarningWithdrawn(w) => {
                withdrawals.entry(w.warning_id.clone()).or_insert((e, w));
            }
            Kind::DissatisfactionClassified(d) => v.dissatisfactions.push(d.clone()),
            Kind::SurveyDone(s) => v.surveys.push(s.clone()),
            Kind::Escalated(x) => v.escalations.push(pb::EscalationView {
                event_id: e.event_id.clone(),
                at,
                escalation: Some(x.clone()),
            }),
            Kind::WarningRaised(w) => v.warnings.push(pb::WarningView {
                event_id: e.event_id.clone(),
                at,
                warning: Some(w.clone()),
                ..Default::default()
            }),
            Kind::ExternalComplaintReceived(x) => {
                // As last corrected: a correction is how a deadline left
                // pending (the calendar did not cover it) gets computed.
                let x = match eff {
                    Some(Kind::ExternalComplaintReceived(r)) => r,
                    _ => x.clone(),
                };
                v.external_complaints.push(x.clone());
                v.external_complaint_deadlines
                    .push(pb::ExternalComplaintView {
                        event_id: e.event_id.clone(),
                        received_at: at,
                        complaint: Some(x),
                        ..Default::default()
                    });
            }
            Kind::ExternalComplaintAnswered(a) => {
                if let Some(x) = v.external_complaint_deadlines.iter_mut().find(|x| {
                    x.complaint
                        .as_ref()
                        .is_some_and(|c| c.reference_number == a.reference_number)
                }) {
                    if x.answered_at.is_none() {
                        x.answered_at = at;
                        x.answered_by_event_id = e.event_id.clone();
                    }
                    if a.resolved && x.resolved_at.is_none() {
                        x.resolved_at = at;
                    }
                }
            }
            Kind::ViolationJudged(j) => v.judgements.push(pb::JudgementView {
                event_id: e.event_id.clone(),
                case_id: e.case_id.clone(),
                // As last corrected, like outside complaints above.
                judgement: Some(match eff {
                    Some(Kind::ViolationJudged(r)) => r,
                    _ => j.clone(),
                }),
                ..Default::default()
            }),
            Kind::ViolationAppealed(a) => {
                if let Some(j) = v.judgements.iter_mut().find(|j| {
                    j.judgement
                        .as_ref()
                        .is_some_and(|x| x.judgement_id == a.judgement_id)
                }) {
                    j.appealed = true;
                    appealed_at.insert(
                        a.judgement_id.clone(),
                        e.occurred_at.as_ref().map(ts_nanos).unwrap_or(0),
                    );
                }
            }
            Kind::AppealDecided(a) => {
                if let Some(j) = v.judgements.iter_mut().find(|j| {
                    j.judgement
                        .as_ref()
                        .is_some_and(|x| x.judgement_id == a.judgement_id)
                }) {
                    j.appeal_decided = true;
                    j.upheld = a.upheld;
                }
            }
            Kind::NoteAdded(n) => v.notes.push(pb::NoteView {
                event_id: e.event_id.clone(),
                at,
                actor: e.actor.clone(),
                text: n.text.clone(),
                corrections: fixes,
            }),
            Kind::PersonalDataErased(_) => v.personal_data_erased = true,
            Kind::CaseResolved(r) => {
                let r = match &eff {
                    Some(Kind::CaseResolved(x)) => x,
                    _ => r,
                };
                inline.insert(e.event_id.as_str());
                v.resolutions.push(pb::ResolutionView {
                    event_id: e.event_id.clone(),
                    case_version: e.case_version,
                    resolved_at: at,
                    actor: e.actor.clone(),
                    acted_for_agent: e.acted_for_agent.clone(),
                    resolution: r.resolution.clone(),
                    customer_accepted: r.customer_accepted,
                    accepted_at: at.filter(|_| r.customer_accepted),
                    superseded: false,
                    corrections: fixes,
                });
            }
            Kind::CaseReopened(_) => {
                for r in &mut v.resolutions {
                    r.superseded = true;
                }
            }
            Kind::EventCorrected(_) | Kind::CaseClosed(_) => {}
        }
    }
    // Corrections of events that have no list entry of their own.
    for e in events {
        if let Some(Kind::EventCorrected(c)) = e.event.as_ref().and_then(|x| x.kind.as_ref()) {
            if !inline.contains(c.corrected_event_id.as_str()) {
                v.other_corrections.push(correction_view(e, c));
            }
        }
    }
    // A demand's end binds the terms promises are judged on, too.
    for t in &mut demand_terms {
        t.ended_at = demand_ends
            .get(&t.demand.demand_id)
            .and_then(|(e, ..)| e.occurred_at);
    }
    for p in &mut v.promises {
        judge_promise(p, &deliveries, &demand_terms, offset, now);
    }
    for d in &mut v.demands {
        let id = d
            .demand
            .as_ref()
            .map(|x| x.demand_id.clone())
            .unwrap_or_default();
        let end = demand_ends.get(&id);
        let ended_at = end.and_then(|(e, ..)| e.occurred_at);
        judge_demand(
            d,
            &deliveries,
            offset,
            now,
            ended_at,
            end.is_some_and(|x| x.1),
        );
        if let Some((e, _, reason, by)) = end.filter(|_| {
            matches!(
                d.state(),
                pb::DemandState::Declined | pb::DemandState::Withdrawn
            )
        }) {
            d.ended_by_event_id = e.event_id.clone();
            d.ended_at = e.occurred_at;
            d.end_reason = reason.clone();
            d.declined_by = by.clone();
        }
    }
    for w in &mut v.warnings {
        let id = w
            .warning
            .as_ref()
            .map(|x| x.warning_id.as_str())
            .unwrap_or("");
        if let Some((e, x)) = withdrawals.get(id) {
            w.withdrawn_by_event_id = e.event_id.clone();
            w.withdrawn_at = e.occurred_at;
            w.withdrawal_reason = x.reason.clone();
        }
    }
    for (i, at, contact) in outbound {
        if contact {
            let c = &mut v.contacts[i];
            c.uncoordinated = uncoordinated(&owners, at, c.party.as_ref());
        } else {
            let c = &mut v.callbacks[i];
            c.uncoordinated = uncoordinated(&owners, at, c.party.as_ref());
        }
    }
    v.owner = owner_at(&owners, i128::MAX).cloned();
    for j in &mut v.judgements {
        let Some(x) = &j.judgement else { continue };
        (j.appeal_window_open, j.judged_without_agent) =
            judgement_flags(x, appealed_at.get(&x.judgement_id).copied(), now);
    }
    for x in &mut v.external_complaint_deadlines {
        let c = x.complaint.clone().unwrap_or_default();
        x.respond_state = deadline_state(c.respond_by.as_ref(), x.answered_at.as_ref(), now) as i32;
        x.resolve_state = deadline_state(c.resolve_by.as_ref(), x.resolved_at.as_ref(), now) as i32;
    }
    let calendar = policy.calendar_for(&v.business_line);
    v.timely_duties = super::timely::duty_clocks(events, now, calendar);
    v.calendar = calendar.stamp();
    v.status = status_of(state.status) as i32;
    v.escalation_level = state.escalation_level as i32;
    v.contacts_by_channel = counts(by_channel);
    v.contacts_by_agent = counts(by_agent);
    v.tickets = tickets;
    v.evaluated_at = Some(nanos_ts(now));
    v
}

/// Standard 003 as of `now`, for a judgement appealed at `appealed_at` (if
/// it was): whether an appeal is still accepted, and whether the agent was
/// judged without being heard (no appeal by the 48-hour contact deadline).
pub fn judgement_flags(
    j: &pb::ViolationJudged,
    appealed_at: Option<i128>,
    now: i128,
) -> (bool, bool) {
    let heard =
        appealed_at.is_some_and(|a| j.contact_deadline.as_ref().is_none_or(|d| a <= ts_nanos(d)));
    // An appeal deadline the calendar could not compute yet leaves the
    // window open: the ledger accepts the appeal (see `domain::rules`).
    let window_open = appealed_at.is_none()
        && match &j.appeal_deadline {
            Some(d) => now <= ts_nanos(d),
            None => !j.deadline_pending.is_empty(),
        };
    let without_agent = !heard
        && j.contact_deadline
            .as_ref()
            .is_some_and(|d| now > ts_nanos(d));
    (window_open, without_agent)
}

/// Where a deadline stands at `now`, given when the duty was done.
pub fn deadline_state(
    due: Option<&prost_types::Timestamp>,
    done: Option<&prost_types::Timestamp>,
    now: i128,
) -> pb::DeadlineState {
    let Some(due) = due.map(ts_nanos) else {
        return pb::DeadlineState::Unspecified;
    };
    match done.map(ts_nanos) {
        Some(d) if d <= due => pb::DeadlineState::Met,
        Some(_) => pb::DeadlineState::Missed,
        None if now > due => pb::DeadlineState::Overdue,
        None => pb::DeadlineState::Pending,
    }
}

/// What a callback view shows of either kind of callback event.
struct CallbackFacts<'a> {
    event_type: &'static str,
    channel: i32,
    agent_id: &'a str,
    party: Option<&'a pb::Party>,
    reached: bool,
    customer_response: i32,
    promise_id: &'a str,
    ticket_id: &'a str,
}

/// A callback as the case view lists it; whether it was coordinated with
/// the case's owner is filled in once every owner is known.
fn callback_view(e: &RecordedEvent, c: CallbackFacts<'_>) -> pb::CallbackView {
    pb::CallbackView {
        event_id: e.event_id.clone(),
        event_type: c.event_type.into(),
        at: e.occurred_at,
        channel: c.channel,
        agent_id: c.agent_id.to_string(),
        reached: c.reached,
        customer_response: c.customer_response,
        promise_id: c.promise_id.to_string(),
        ticket_id: c.ticket_id.to_string(),
        party: acting_party(c.party, c.agent_id),
        uncoordinated: false,
    }
}

fn step(e: &RecordedEvent, event_type: &str, detail: &str, fields: &[String]) -> pb::TicketStep {
    pb::TicketStep {
        event_id: e.event_id.clone(),
        event_type: event_type.into(),
        at: e.occurred_at,
        detail: detail.to_string(),
        fields: fields.to_vec(),
    }
}
