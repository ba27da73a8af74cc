//! The promises of one case, kept incrementally: what was promised and
//! demanded (with corrections applied) and what was delivered, so promises
//! can be judged across all cases at any time without re-reading the log.
//! Judging uses the same functions as the full case view.

use super::fact::Fact;
use super::promises::{judge_promise, Delivery, DemandTerms};
use crate::proto::v1::{self as pb, case_event::Kind};

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
                    demand: d.clone(),
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
                            t.demand = d.clone();
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
        let demands: Vec<DemandTerms> = self.demands.iter().map(|(_, t)| t.clone()).collect();
        self.promises
            .iter()
            .map(|p| {
                let mut v = pb::PromiseView {
                    event_id: p.event_id.clone(),
                    made_at: p.made_at,
                    promise: Some(p.promise.clone()),
                    ..Default::default()
                };
                judge_promise(&mut v, &self.deliveries, &demands, offset, now);
                v
            })
            .collect()
    }
}
