//! The promises of one case, kept incrementally: what was promised and
//! demanded (with corrections applied) and what was delivered, so promises
//! can be judged across all cases at any time without re-reading the log.
//! Judging uses the same functions as the full case view.
//!
//! A closed case keeps a smaller book ([`PromiseBook::Closed`]): it takes
//! no delivery and no demand, so what answered each promise, and how, is
//! settled at the close; only whether an unanswered promise is overdue
//! still changes, with time. Kept whole, the book of a case like the
//! seed's was ~2.5 KB for as long as the server ran, and most cases of a
//! ledger are closed. A correction of a promise or a demand while closed,
//! and a reopen, fold the whole book again from the case's stream.

use super::fact::Fact;
use super::promises::{judge_demand, judge_promise, Delivery, DemandTerms};

/// A case's demands by state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DemandCounts {
    pub open: u32,
    pub fulfilled: u32,
    pub declined: u32,
    pub withdrawn: u32,
}
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
        required_party: d.required_party.clone(),
    }
}

/// A promise as recorded (or as last corrected), with when it was made.
#[derive(Debug, Clone, PartialEq)]
pub struct PromiseEntry {
    pub event_id: String,
    pub made_at: Option<prost_types::Timestamp>,
    /// Log position of the promise as it now reads: its `PromiseMade`, or
    /// the last `EventCorrected` that replaced it.
    pub source: u64,
    pub promise: pb::PromiseMade,
}

/// The promises of an open (or resolved) case, with everything judging
/// them needs.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CasePromises {
    pub promises: Vec<PromiseEntry>,
    pub deliveries: Vec<Delivery>,
    /// Each demand's event id, terms, and whether its end (if it ended)
    /// was a decline rather than a withdrawal.
    demands: Vec<(String, DemandTerms, bool)>,
}

/// Whether an event kind changes what judging a case's promises and
/// demands sees: the kinds [`CasePromises::apply`] takes. Every fold that
/// keeps a promise book (the board's, the early-warning rules') re-judges
/// after these, and only these.
pub fn moves_promises(kind: &Kind) -> bool {
    matches!(
        kind,
        Kind::PromiseMade(_)
            | Kind::DemandRecorded(_)
            | Kind::DemandDeclined(_)
            | Kind::DemandWithdrawn(_)
            | Kind::CallbackCompleted(_)
            | Kind::EventCorrected(_)
    )
}

impl CasePromises {
    /// Applies one event of the case.
    pub fn apply(&mut self, f: &Fact<'_>) {
        match f.event.kind.as_ref() {
            Some(Kind::PromiseMade(p)) => self.promises.push(PromiseEntry {
                event_id: f.event_id.to_string(),
                made_at: f.occurred_at,
                source: f.position,
                promise: p.clone(),
            }),
            Some(Kind::DemandRecorded(d)) => self.demands.push((
                f.event_id.to_string(),
                DemandTerms {
                    made_at: f.occurred_at.unwrap_or_default(),
                    demand: terms_of(d),
                    ended_at: None,
                },
                false,
            )),
            Some(Kind::DemandDeclined(d)) => self.end(&d.demand_id, f, true),
            Some(Kind::DemandWithdrawn(d)) => self.end(&d.demand_id, f, false),
            Some(Kind::CallbackCompleted(c)) => {
                if let Some(d) = Delivery::of(f.event_id, f.occurred_at.unwrap_or_default(), c) {
                    self.deliveries.push(d);
                }
            }
            Some(Kind::EventCorrected(c)) => {
                match c.replacement.as_ref().and_then(|r| r.kind.as_ref()) {
                    Some(Kind::PromiseMade(p)) => {
                        if let Some(e) = self
                            .promises
                            .iter_mut()
                            .find(|e| e.event_id == c.corrected_event_id)
                        {
                            e.promise = p.clone();
                            e.source = f.position;
                        }
                    }
                    Some(Kind::DemandRecorded(d)) => {
                        if let Some((_, t, _)) = self
                            .demands
                            .iter_mut()
                            .find(|(id, _, _)| *id == c.corrected_event_id)
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

    fn end(&mut self, demand_id: &str, f: &Fact<'_>, declined: bool) {
        if let Some((_, t, was_declined)) = self
            .demands
            .iter_mut()
            .find(|(_, t, _)| t.demand.demand_id == demand_id)
        {
            t.ended_at = f.occurred_at.or(Some(Default::default()));
            *was_declined = declined;
        }
    }

    /// The case's demands by state as of `now`: open, fulfilled, declined,
    /// withdrawn.
    pub fn demand_counts(&self, offset: i32, now: i128) -> DemandCounts {
        let mut n = DemandCounts::default();
        for (event_id, t, declined) in &self.demands {
            let mut v = pb::DemandView {
                event_id: event_id.clone(),
                recorded_for: Some(t.made_at),
                demand: Some(t.demand.clone()),
                ..Default::default()
            };
            judge_demand(&mut v, &self.deliveries, offset, now, t.ended_at, *declined);
            match v.state() {
                pb::DemandState::Fulfilled => n.fulfilled += 1,
                pb::DemandState::Declined => n.declined += 1,
                pb::DemandState::Withdrawn => n.withdrawn += 1,
                _ => n.open += 1,
            }
        }
        n
    }

    /// Every promise judged as of `now` (nanoseconds).
    pub fn judged(&self, offset: i32, now: i128) -> Vec<pb::PromiseView> {
        let demands = self.demand_terms();
        self.promises
            .iter()
            .map(|p| self.judge(p, &demands, offset, now))
            .collect()
    }

    /// The promise recorded by `event_id`, as last corrected.
    pub fn promise(&self, event_id: &str) -> Option<&pb::PromiseMade> {
        self.promises
            .iter()
            .find(|p| p.event_id == event_id)
            .map(|p| &p.promise)
    }

    /// The promise recorded by `event_id`, judged as of `now`: one
    /// judgement, not the whole book's.
    pub fn judged_one(&self, event_id: &str, offset: i32, now: i128) -> Option<pb::PromiseView> {
        let p = self.promises.iter().find(|p| p.event_id == event_id)?;
        Some(self.judge(p, &self.demand_terms(), offset, now))
    }

    fn demand_terms(&self) -> Vec<DemandTerms> {
        self.demands.iter().map(|(_, t, _)| t.clone()).collect()
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

    /// The book a close leaves: each promise with what answered it, judged
    /// once (a closed case takes no delivery, and a correction of its terms
    /// folds the whole book again).
    fn close(&self, offset: i32) -> Vec<ClosedPromise> {
        let demands = self.demand_terms();
        self.promises
            .iter()
            .map(|p| {
                // Every delivery counts: a closed case takes no more.
                let v = self.judge(p, &demands, offset, i128::MAX);
                let answer = (!v.answered_by_event_id.is_empty()).then(|| {
                    Box::new(Answer {
                        event_id: v.answered_by_event_id,
                        at: v.answered_at,
                        channel: v.answered_on,
                        state: v.state,
                        reasons: v.breach_reasons,
                    })
                });
                ClosedPromise {
                    event_id: p.event_id.clone(),
                    made_at: p.made_at,
                    source: p.source,
                    due: due_key(&p.promise),
                    due_pending: p.promise.due_at.is_none() && !p.promise.due_pending.is_empty(),
                    answer,
                }
            })
            .collect()
    }
}

/// A promise of a closed case: what listing and judging it need, without
/// its words (read from the log at `source` for the promises a page
/// returns).
#[derive(Debug, Clone, PartialEq)]
pub struct ClosedPromise {
    pub event_id: String,
    pub made_at: Option<prost_types::Timestamp>,
    /// Where the promise as last corrected is stored.
    pub source: u64,
    /// As [`due_key`] gives it.
    pub due: i128,
    /// No due time yet: the calendar did not cover it.
    pub due_pending: bool,
    /// What answered it before the close, if anything did.
    pub answer: Option<Box<Answer>>,
}

/// The delivery that answered a promise and the judgement it got.
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    pub event_id: String,
    pub at: Option<prost_types::Timestamp>,
    pub channel: i32,
    pub state: i32,
    pub reasons: Vec<i32>,
}

impl ClosedPromise {
    /// Judged as of `now`: settled if answered, else open until its due
    /// time and broken as never done after it. The view has no `promise`:
    /// the caller reads it from the log at [`Self::source`].
    fn judge(&self, offset: i32, now: i128) -> pb::PromiseView {
        let mut v = pb::PromiseView {
            event_id: self.event_id.clone(),
            made_at: self.made_at,
            ..Default::default()
        };
        // Judged as of a time before its answer, it was not answered yet.
        // (The close keeps the final answer only: as of a time when a wrong
        // party's call stood before the right one came, the whole book said
        // broken where this says open or never done.)
        let answered_by_now = self.answer.as_ref().filter(|a| {
            a.at.as_ref()
                .is_none_or(|t| crate::time::ts_nanos(t) <= now)
        });
        match answered_by_now {
            Some(a) => {
                v.answered_by_event_id = a.event_id.clone();
                v.answered_at = a.at;
                v.answered_on = a.channel;
                v.state = a.state;
                v.breach_reasons = a.reasons.clone();
            }
            None => {
                // Unanswered: the same judgement as an open book's, from
                // the due time alone.
                v.promise = Some(pb::PromiseMade {
                    due_at: (self.due != NO_DUE_TIME).then(|| crate::time::nanos_ts(self.due)),
                    ..Default::default()
                });
                judge_promise(&mut v, &[], &[], offset, now);
                v.promise = None;
            }
        }
        v
    }
}

/// A case's promises: the whole book while the case is open, what a close
/// settles once it is closed.
#[derive(Debug, Clone, PartialEq)]
pub enum PromiseBook {
    Open(CasePromises),
    /// With its demands' states as the close left them.
    Closed(Vec<ClosedPromise>, DemandCounts),
}

impl Default for PromiseBook {
    fn default() -> Self {
        PromiseBook::Open(CasePromises::default())
    }
}

/// One promise judged, and where its words are to be read from when the
/// book no longer keeps them.
#[derive(Debug, Clone, PartialEq)]
pub struct Judged {
    pub view: pb::PromiseView,
    /// Log position to read the promise from (a closed case's promise);
    /// None when `view.promise` is filled in.
    pub read_promise_at: Option<u64>,
    /// Its due time is pending.
    pub due_pending: bool,
}

impl PromiseBook {
    /// Applies one event of the case. A closed book takes nothing: the
    /// events that change a book reach a closed case only as a correction
    /// of a promise or a demand, and the board folds the whole book again
    /// first ([`Self::is_closed`]).
    pub fn apply(&mut self, f: &Fact<'_>) {
        if let PromiseBook::Open(b) = self {
            b.apply(f);
        }
    }

    pub fn is_closed(&self) -> bool {
        matches!(self, PromiseBook::Closed(..))
    }

    /// Settles the book of a case that closed; `offset` is the case's.
    pub fn close(&mut self, offset: i32) {
        if let PromiseBook::Open(b) = self {
            *self = PromiseBook::Closed(b.close(offset), b.demand_counts(offset, i128::MAX));
        }
    }

    /// Every promise judged as of `now` (nanoseconds). A closed case's
    /// views have no `promise`.
    pub fn judged(&self, offset: i32, now: i128) -> Vec<pb::PromiseView> {
        match self {
            PromiseBook::Open(b) => b.judged(offset, now),
            PromiseBook::Closed(c, _) => c.iter().map(|p| p.judge(offset, now)).collect(),
        }
    }

    /// The promise recorded by `event_id`, judged as of `now`.
    pub fn judged_one(&self, event_id: &str, offset: i32, now: i128) -> Option<Judged> {
        match self {
            PromiseBook::Open(b) => {
                let view = b.judged_one(event_id, offset, now)?;
                let p = view.promise.as_ref()?;
                let due_pending = p.due_at.is_none() && !p.due_pending.is_empty();
                Some(Judged {
                    view,
                    read_promise_at: None,
                    due_pending,
                })
            }
            PromiseBook::Closed(c, _) => {
                let p = c.iter().find(|p| p.event_id == event_id)?;
                Some(Judged {
                    view: p.judge(offset, now),
                    read_promise_at: Some(p.source),
                    due_pending: p.due_pending,
                })
            }
        }
    }

    /// The due key of the promise recorded by `event_id`, as last corrected.
    pub fn due_of(&self, event_id: &str) -> Option<i128> {
        match self {
            PromiseBook::Open(b) => b.promise(event_id).map(due_key),
            PromiseBook::Closed(c, _) => c.iter().find(|p| p.event_id == event_id).map(|p| p.due),
        }
    }

    /// The case's demands by state as of `now` (as the close left them,
    /// for a closed case).
    pub fn demand_counts(&self, offset: i32, now: i128) -> DemandCounts {
        match self {
            PromiseBook::Open(b) => b.demand_counts(offset, now),
            PromiseBook::Closed(_, n) => *n,
        }
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
            imported: false,
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
            .all(|(_, t, _)| t.demand.description.is_empty()));
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

    /// A closed book judges every promise as the whole book did, at any
    /// time after the close: answered ones as settled, unanswered ones open
    /// until due and broken after, a pending one open; its views lack only
    /// the words, to be read where the promise as last corrected is stored.
    #[test]
    fn a_closed_book_judges_as_the_whole_book_did() {
        let due = |seconds| Some(prost_types::Timestamp { seconds, nanos: 0 });
        let promise = |id: &str, due_at, pending: &str| {
            event(Kind::PromiseMade(pb::PromiseMade {
                promise_id: id.into(),
                description: format!("words of {id}"),
                due_at,
                due_pending: pending.into(),
                channel: Channel::OutboundCall as i32,
                ..Default::default()
            }))
        };
        let events = [
            ("kept", promise("p1", due(5_000), "")),
            ("late", promise("p2", due(1_500), "")),
            ("unanswered", promise("p3", due(8_000), "")),
            ("pending", promise("p4", None, "not in the calendar")),
            (
                "answer-p1",
                event(Kind::CallbackCompleted(pb::CallbackCompleted {
                    channel: Channel::OutboundCall as i32,
                    reached: true,
                    promise_id: "p1".into(),
                    ..Default::default()
                })),
            ),
            (
                "demand",
                event(Kind::DemandRecorded(pb::DemandRecorded {
                    demand_id: "d1".into(),
                    window: Some(pb::LocalTimeWindow {
                        from_minute: 17 * 60,
                        to_minute: 24 * 60,
                    }),
                    ..Default::default()
                })),
            ),
            (
                "answer-p2",
                event(Kind::CallbackCompleted(pb::CallbackCompleted {
                    channel: Channel::Sms as i32,
                    reached: true,
                    promise_id: "p2".into(),
                    ..Default::default()
                })),
            ),
            (
                "corrected",
                event(Kind::EventCorrected(Box::new(pb::EventCorrected {
                    corrected_event_id: "unanswered".into(),
                    replacement: Some(Box::new(promise("p3", due(9_000), ""))),
                    ..Default::default()
                }))),
            ),
        ];
        let mut book = CasePromises::default();
        for (i, (id, e)) in events.iter().enumerate() {
            let mut f = fact(id, 1_000 + 100 * i as i64, e);
            f.position = 1 + i as u64;
            book.apply(&f);
        }
        let offset = 480;
        let mut closed = PromiseBook::Open(book.clone());
        closed.close(offset);
        assert!(closed.is_closed());
        for now in [0, 4_000, 8_500, 9_500, 1_000_000] {
            let now = now * 1_000_000_000;
            let mut whole = book.judged(offset, now);
            for v in &mut whole {
                v.promise = None;
            }
            assert_eq!(closed.judged(offset, now), whole, "at {now}");
        }
        let states = |now: i128| -> Vec<i32> {
            closed
                .judged(offset, now * 1_000_000_000)
                .iter()
                .map(|v| v.state)
                .collect()
        };
        let (kept, broken, open) = (
            PromiseState::Kept as i32,
            PromiseState::Broken as i32,
            PromiseState::Open as i32,
        );
        // p1 answered in time by phone; p2 late, by SMS and outside the
        // window demanded before it; p3 falls due at its corrected time;
        // p4 stays open.
        assert_eq!(states(4_000), [kept, broken, open, open]);
        assert_eq!(states(9_500), [kept, broken, broken, open]);

        let p3 = closed.judged_one("unanswered", offset, 0).unwrap();
        assert_eq!(p3.read_promise_at, Some(8), "the correction's position");
        assert!(p3.view.promise.is_none());
        let p4 = closed.judged_one("pending", offset, 0).unwrap();
        assert!(p4.due_pending && p4.read_promise_at == Some(4));
        assert_eq!(closed.due_of("unanswered"), Some(9_000_000_000_000));
        assert_eq!(closed.due_of("pending"), Some(NO_DUE_TIME));
        let whole = PromiseBook::Open(book);
        let p3 = whole.judged_one("unanswered", offset, 0).unwrap();
        assert_eq!(p3.read_promise_at, None);
        assert_eq!(p3.view.promise.unwrap().due_at, due(9_000));
    }
}
