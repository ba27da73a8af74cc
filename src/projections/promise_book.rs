//! The promises of one case, kept incrementally: what was promised and
//! demanded (with corrections applied) and what was delivered, so promises
//! can be judged across all cases at any time without re-reading the log.
//! Judging uses the same functions as the full case view.

use super::fact::Fact;
use super::promises::{judge_promise, Delivery, DemandTerms};
use crate::proto::v1::{self as pb, case_event::Kind};

/// What judging a promise needs of a demand: its terms, not its words.
/// The description is free text, sealed personal data of a few hundred
/// bytes, kept by every case's book for as long as the server runs; the
/// case view reads it from the log.
fn terms_of(d: &pb::DemandRecorded) -> pb::DemandRecorded {
    pb::DemandRecorded {
        demand_id: d.demand_id.clone(),
        contact_id: d.contact_id.clone(),
        description: String::new(),
        required_channel: d.required_channel,
        refused_channels: d.refused_channels.clone(),
        due_by: d.due_by,
        window: d.window,
    }
}

/// A promise as recorded (or as last corrected), with when it was made.
#[derive(Debug, Clone, PartialEq)]
pub struct PromiseEntry {
    pub event_id: String,
    pub made_at: Option<prost_types::Timestamp>,
    pub promise: pb::PromiseMade,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct CasePromises {
    pub promises: Vec<PromiseEntry>,
    pub deliveries: Vec<Delivery>,
    demands: Vec<(String, DemandTerms)>,
}

impl CasePromises {
    /// Applies one event of the case.
    pub fn apply(&mut self, f: &Fact<'_>) {
        match f.event.kind.as_ref() {
            Some(Kind::PromiseMade(p)) => self.promises.push(PromiseEntry {
                event_id: f.event_id.to_string(),
                made_at: f.occurred_at,
                promise: p.clone(),
            }),
            Some(Kind::DemandRecorded(d)) => self.demands.push((
                f.event_id.to_string(),
                DemandTerms {
                    made_at: f.occurred_at.unwrap_or_default(),
                    demand: terms_of(d),
                },
            )),
            Some(Kind::CallbackCompleted(c)) if c.reached => self.deliveries.push(Delivery {
                event_id: f.event_id.to_string(),
                at: f.occurred_at.unwrap_or_default(),
                channel: c.channel,
                promise_id: c.promise_id.clone(),
                demand_ids: c.demand_ids.clone(),
            }),
            Some(Kind::EventCorrected(c)) => {
                match c.replacement.as_ref().and_then(|r| r.kind.as_ref()) {
                    Some(Kind::PromiseMade(p)) => {
                        if let Some(e) = self
                            .promises
                            .iter_mut()
                            .find(|e| e.event_id == c.corrected_event_id)
                        {
                            e.promise = p.clone();
                        }
                    }
                    Some(Kind::DemandRecorded(d)) => {
                        if let Some((_, t)) = self
                            .demands
                            .iter_mut()
                            .find(|(id, _)| *id == c.corrected_event_id)
                        {
                            t.demand = terms_of(d);
                        }
                    }
                    _ => {}
                }
            }
            _ => {}
        }
    }

    pub fn is_empty(&self) -> bool {
        self.promises.is_empty()
    }

    /// Every promise judged as of `now` (nanoseconds).
    pub fn judged(&self, offset: i32, now: i128) -> Vec<pb::PromiseView> {
        let demands = self.demand_terms();
        self.promises
            .iter()
            .map(|p| self.judge(p, &demands, offset, now))
            .collect()
    }

    /// The promise recorded by `event_id`, judged as of `now`.
    pub fn judged_one(&self, event_id: &str, offset: i32, now: i128) -> Option<pb::PromiseView> {
        let p = self.promises.iter().find(|p| p.event_id == event_id)?;
        Some(self.judge(p, &self.demand_terms(), offset, now))
    }

    /// The promise recorded by `event_id`, as last corrected.
    pub fn promise(&self, event_id: &str) -> Option<&pb::PromiseMade> {
        self.promises
            .iter()
            .find(|p| p.event_id == event_id)
            .map(|p| &p.promise)
    }

    fn demand_terms(&self) -> Vec<DemandTerms> {
        self.demands.iter().map(|(_, t)| t.clone()).collect()
    }

    fn judge(
        &self,
        p: &PromiseEntry,
        demands: &[DemandTerms],
        offset: i32,
        now: i128,
    ) -> pb::PromiseView {
        let mut v = pb::PromiseView {
            event_id: p.event_id.clone(),
            made_at: p.made_at,
            promise: Some(p.promise.clone()),
            ..Default::default()
        };
        judge_promise(&mut v, &self.deliveries, demands, offset, now);
        v
    }
}

/// Where a promise with no due time (pending, or none given) sorts: after
/// every real one.
pub const NO_DUE_TIME: i128 = i128::MAX / 2;

/// A promise's due time as listings sort it.
pub fn due_key(p: &pb::PromiseMade) -> i128 {
    p.due_at
        .as_ref()
        .map(crate::time::ts_nanos)
        .unwrap_or(NO_DUE_TIME)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::v1::{BreachReason, Channel, PromiseState};

    fn fact<'a>(id: &'a str, at: i64, event: &'a pb::CaseEvent) -> Fact<'a> {
        Fact {
            position: 1,
            case_id: "c1",
            event_id: id,
            occurred_at: Some(prost_types::Timestamp {
                seconds: at,
                nanos: 0,
            }),
            recorded_at: 0,
            correlation_id: "",
            event,
        }
    }

    fn event(kind: Kind) -> pb::CaseEvent {
        pb::CaseEvent { kind: Some(kind) }
    }

    /// The book keeps a demand's terms, not its words (sealed free text
    /// that every case's book would hold for as long as the server runs),
    /// and still judges promises against those terms.
    #[test]
    fn a_demand_is_kept_as_its_terms_and_still_breaks_a_promise() {
        let promise = event(Kind::PromiseMade(pb::PromiseMade {
            promise_id: "p1".into(),
            due_at: Some(prost_types::Timestamp {
                seconds: 10_000,
                nanos: 0,
            }),
            ..Default::default()
        }));
        let demand = event(Kind::DemandRecorded(pb::DemandRecorded {
            demand_id: "d1".into(),
            description: "sealed:call me, never by SMS".into(),
            required_channel: Channel::OutboundCall as i32,
            ..Default::default()
        }));
        let answer = event(Kind::CallbackCompleted(pb::CallbackCompleted {
            callback_id: "cb1".into(),
            channel: Channel::Sms as i32,
            reached: true,
            promise_id: "p1".into(),
            ..Default::default()
        }));
        let mut book = CasePromises::default();
        book.apply(&fact("e-p1", 1_000, &promise));
        book.apply(&fact("e-d1", 1_100, &demand));
        book.apply(&fact("e-cb1", 2_000, &answer));

        assert!(book
            .demands
            .iter()
            .all(|(_, t)| t.demand.description.is_empty()));
        assert_eq!(
            book.demands[0].1.demand.required_channel,
            Channel::OutboundCall as i32
        );
        let judged = book.judged(480, 3_000 * 1_000_000_000);
        assert_eq!(judged[0].state, PromiseState::Broken as i32);
        assert_eq!(
            judged[0].breach_reasons,
            [BreachReason::WrongChannel as i32]
        );
    }
}
