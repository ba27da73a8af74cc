//! Were promises and demands kept? The dispute in case 124545 turned on this:
//! the customer demanded a phone call, not SMS, after 17:00, by Friday, and
//! kept getting SMS; a "1-2 working days" promise passed unanswered.
//!
//! A promise is answered by a reached `CallbackCompleted` naming it: the
//! first by business time (`occurred_at`, whatever order the facts were
//! recorded in) made by the party required and not refused, or failing
//! one, the first of them. Judged as of a time, only what happened by then
//! counts. It is kept if that answer came in time, on the promised
//! channel, by the party required to keep it, was not refused by the
//! customer, and met the terms the customer demanded (channel, time of day,
//! who) before the answer and not ended by then; it is broken otherwise,
//! with every reason; unanswered past its due time it is broken as never
//! done; else open (also while its due time is pending: the calendar did not
//! cover it yet). A demand is fulfilled by a reached callback naming it,
//! not refused, meeting its terms; every reached callback after it and
//! before it ended (declined, withdrawn) that breaks its terms is listed as
//! a breach; an ended demand is never overdue.

use crate::domain::party::meets;
use crate::proto::v1::{self as pb, BreachReason, Channel, DemandState, PromiseState};
use crate::time::{local_minute_of_day, ts_nanos};

/// The breach reasons of a `PromiseView`, as lowercase names
/// (`BREACH_REASON_WRONG_CHANNEL` → `wrong_channel`), for messages.
pub fn breach_reason_names(reasons: &[i32]) -> Vec<String> {
    reasons
        .iter()
        .filter_map(|r| BreachReason::try_from(*r).ok())
        .map(|r| {
            r.as_str_name()
                .trim_start_matches("BREACH_REASON_")
                .to_lowercase()
        })
        .collect()
}

/// A reached delivery to the customer (a completed callback).
#[derive(Debug, Clone, PartialEq)]
pub struct Delivery {
    pub event_id: String,
    pub at: prost_types::Timestamp,
    pub channel: i32,
    pub promise_id: String,
    pub demand_ids: Vec<String>,
    /// Who made it, as `domain::party::acting_party` reads the callback.
    pub party: Option<pb::Party>,
    /// The customer refused it.
    pub refused: bool,
}

impl Delivery {
    /// The delivery a reached `CallbackCompleted` is; None when it did not
    /// reach the customer.
    pub fn of(
        event_id: &str,
        at: prost_types::Timestamp,
        c: &pb::CallbackCompleted,
    ) -> Option<Self> {
        c.reached.then(|| Delivery {
            event_id: event_id.to_string(),
            at,
            channel: c.channel,
            promise_id: c.promise_id.clone(),
            demand_ids: c.demand_ids.clone(),
            party: crate::domain::party::acting_party(c.party.as_ref(), &c.agent_id),
            refused: c.customer_response == pb::CustomerResponse::Refused as i32,
        })
    }
}

/// A demand with the time it was made, for judging deliveries after it.
#[derive(Debug, Clone, PartialEq)]
pub struct DemandTerms {
    pub made_at: prost_types::Timestamp,
    pub demand: pb::DemandRecorded,
    /// When it was declined or withdrawn, if it was: its terms stop there.
    pub ended_at: Option<prost_types::Timestamp>,
}

impl DemandTerms {
    /// Whether its terms bind a delivery at `at`: made by then, not ended.
    fn binds(&self, at: i128) -> bool {
        ts_nanos(&self.made_at) <= at && self.ended_at.as_ref().is_none_or(|e| at < ts_nanos(e))
    }
}

/// How a delivery breaks a demand's terms, if it does.
fn terms_broken(d: &pb::DemandRecorded, delivery: &Delivery, offset: i32) -> Vec<BreachReason> {
    let mut out = Vec::new();
    let wrong_channel = (d.required_channel != Channel::Unspecified as i32
        && delivery.channel != d.required_channel)
        || d.refused_channels.contains(&delivery.channel);
    if wrong_channel {
        out.push(BreachReason::WrongChannel);
    }
    if let Some(w) = &d.window {
        let m = local_minute_of_day(&delivery.at, offset);
        if m < w.from_minute || m >= w.to_minute {
            out.push(BreachReason::OutsideWindow);
        }
    }
    if !meets(d.required_party.as_ref(), delivery.party.as_ref()) {
        out.push(BreachReason::WrongParty);
    }
    out
}

/// The delivery that answers a promise as of `now`: of those naming it by
/// then, the first (by business time) made by the party required and not
/// refused; failing one, the first of them all. A wrong party's call, or one
/// the customer refused, breaks a promise only while nothing better came.
fn answer_to<'d>(
    deliveries: &'d [Delivery],
    p: &pb::PromiseMade,
    now: i128,
) -> Option<&'d Delivery> {
    let naming = || {
        deliveries
            .iter()
            .filter(|d| d.promise_id == p.promise_id && ts_nanos(&d.at) <= now)
    };
    naming()
        .filter(|d| !d.refused && meets(p.required_party.as_ref(), d.party.as_ref()))
        .min_by_key(|d| ts_nanos(&d.at))
        .or_else(|| naming().min_by_key(|d| ts_nanos(&d.at)))
}

/// Judges a promise as of `now` (nanoseconds since the epoch).
pub fn judge_promise(
    view: &mut pb::PromiseView,
    deliveries: &[Delivery],
    demands: &[DemandTerms],
    offset: i32,
    now: i128,
) {
    let Some(p) = &view.promise else { return };
    // No due time: one the calendar could not compute yet (`due_pending`),
    // so the promise is judged neither late nor undone until it has one.
    let due = p.due_at.as_ref().map(ts_nanos);
    let answer = answer_to(deliveries, p, now);
    let mut reasons = Vec::new();
    match answer {
        Some(d) => {
            let at = ts_nanos(&d.at);
            view.answered_by_event_id = d.event_id.clone();
            view.answered_at = Some(d.at);
            view.answered_on = d.channel;
            if due.is_some_and(|due| at > due) {
                reasons.push(BreachReason::Late);
            }
            if p.channel != Channel::Unspecified as i32 && d.channel != p.channel {
                reasons.push(BreachReason::WrongChannel);
            }
            if !meets(p.required_party.as_ref(), d.party.as_ref()) {
                reasons.push(BreachReason::WrongParty);
            }
            if d.refused {
                reasons.push(BreachReason::Refused);
            }
            for t in demands.iter().filter(|t| t.binds(at)) {
                for r in terms_broken(&t.demand, d, offset) {
                    if !reasons.contains(&r) {
                        reasons.push(r);
                    }
                }
            }
            view.state = if reasons.is_empty() {
                PromiseState::Kept
            } else {
                PromiseState::Broken
            } as i32;
        }
        None if due.is_some_and(|due| now > due) => {
            reasons.push(BreachReason::NeverDone);
            view.state = PromiseState::Broken as i32;
        }
        None => view.state = PromiseState::Open as i32,
    }
    view.breach_reasons = reasons.into_iter().map(|r| r as i32).collect();
}

/// Judges a demand as of `now`; `ended` is the DemandDeclined or
/// DemandWithdrawn that ended it by then, if one did (its event id, time
/// and whether it was a decline).
pub fn judge_demand(
    view: &mut pb::DemandView,
    deliveries: &[Delivery],
    offset: i32,
    now: i128,
    ended_at: Option<prost_types::Timestamp>,
    declined: bool,
) {
    let (Some(d), Some(made_at)) = (view.demand.clone(), view.recorded_for) else {
        return;
    };
    // Ended after the time judged at, it still stood then.
    let ended_at = ended_at.filter(|e| ts_nanos(e) <= now);
    let terms = DemandTerms {
        made_at,
        demand: d.clone(),
        ended_at,
    };
    let due = d.due_by.as_ref().map(ts_nanos);
    let mut fulfilled_at = None;
    let mut in_order: Vec<&Delivery> = deliveries
        .iter()
        .filter(|x| terms.binds(ts_nanos(&x.at)))
        .collect();
    in_order.sort_by_key(|x| ts_nanos(&x.at));
    for del in in_order {
        let mut broken = terms_broken(&d, del, offset);
        let names_it = del.demand_ids.contains(&d.demand_id);
        if names_it && del.refused {
            broken.push(BreachReason::Refused);
        }
        for r in &broken {
            view.breaches.push(pb::DemandBreach {
                event_id: del.event_id.clone(),
                at: Some(del.at),
                channel: del.channel,
                reason: *r as i32,
            });
        }
        if broken.is_empty() && fulfilled_at.is_none() && names_it {
            fulfilled_at = Some(ts_nanos(&del.at));
            view.fulfilled_by_event_id = del.event_id.clone();
            if due.is_some_and(|due| ts_nanos(&del.at) > due) {
                view.breaches.push(pb::DemandBreach {
                    event_id: del.event_id.clone(),
                    at: Some(del.at),
                    channel: del.channel,
                    reason: BreachReason::Late as i32,
                });
            }
        }
    }
    // Ended before it fell due, it was never overdue; ended after, the
    // breach stands.
    let end = ended_at.as_ref().map(ts_nanos);
    if fulfilled_at.is_none() {
        if let (Some(due), Some(due_ts)) = (due, d.due_by) {
            if now > due && end.is_none_or(|e| e > due) {
                view.breaches.push(pb::DemandBreach {
                    event_id: String::new(),
                    at: Some(due_ts),
                    channel: Channel::Unspecified as i32,
                    reason: BreachReason::NeverDone as i32,
                });
            }
        }
    }
    view.state = match (fulfilled_at, end) {
        (Some(_), _) => DemandState::Fulfilled,
        (None, Some(_)) if declined => DemandState::Declined,
        (None, Some(_)) => DemandState::Withdrawn,
        (None, None) => DemandState::Open,
    } as i32;
}
