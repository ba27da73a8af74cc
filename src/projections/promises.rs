//! Were promises and demands kept? The dispute in case 124545 turned on this:
//! the customer demanded a phone call, not SMS, after 17:00, by Friday, and
//! kept getting SMS; a "1-2 working days" promise passed unanswered.
//!
//! A promise is answered by the first reached `CallbackCompleted` naming it.
//! It is kept if that answer came in time, on the promised channel and on the
//! terms the customer demanded (channel, time of day) before the answer; it is
//! broken otherwise, with every reason; unanswered past its due time it is
//! broken as never done; else open (also while its due time is pending: the
//! calendar did not cover it yet). A demand is fulfilled by a reached
//! callback naming it and meeting its terms; every reached callback after it
//! that breaks its terms is listed as a breach.

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
}

/// A demand with the time it was made, for judging deliveries after it.
#[derive(Debug, Clone, PartialEq)]
pub struct DemandTerms {
    pub made_at: prost_types::Timestamp,
    pub demand: pb::DemandRecorded,
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
    out
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
    let answer = deliveries.iter().find(|d| d.promise_id == p.promise_id);
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
            for t in demands.iter().filter(|t| ts_nanos(&t.made_at) <= at) {
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

/// Judges a demand as of `now`.
pub fn judge_demand(view: &mut pb::DemandView, deliveries: &[Delivery], offset: i32, now: i128) {
    let (Some(d), Some(made_at)) = (view.demand.clone(), view.recorded_for) else {
        return;
    };
    let made = ts_nanos(&made_at);
    let due = d.due_by.as_ref().map(ts_nanos);
    let mut fulfilled_at = None;
    for del in deliveries.iter().filter(|x| ts_nanos(&x.at) >= made) {
        let broken = terms_broken(&d, del, offset);
        for r in &broken {
            view.breaches.push(pb::DemandBreach {
                event_id: del.event_id.clone(),
                at: Some(del.at),
                channel: del.channel,
                reason: *r as i32,
            });
        }
        if broken.is_empty() && fulfilled_at.is_none() && del.demand_ids.contains(&d.demand_id) {
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
    if fulfilled_at.is_none() {
        if let (Some(due), Some(due_ts)) = (due, d.due_by) {
            if now > due {
                view.breaches.push(pb::DemandBreach {
                    event_id: String::new(),
                    at: Some(due_ts),
                    channel: Channel::Unspecified as i32,
                    reason: BreachReason::NeverDone as i32,
                });
            }
        }
    }
    view.state = if fulfilled_at.is_some() {
        DemandState::Fulfilled
    } else {
        DemandState::Open
    } as i32;
}
