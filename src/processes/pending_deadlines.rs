//! Deadlines left pending, computed once the calendar covers them: at each
//! start, every promise and every judgement whose deadline was recorded
//! pending (the calendar of the day did not cover its date, see
//! [`crate::policy::deadlines`]) or provisional (computed from the statutory
//! holidays of a year without a notice) and that the official years of
//! the calendars the server now runs with can compute gets an
//! `EventCorrected` repeating it, appended by this
//! process (actor `policy:deadlines`). The ledger stamps the repetition as
//! of the original event's time, as it stamps a correction a person
//! records; projections and the appeal rule then use the deadline.
//!
//! Why at start: calendars are loaded at start, so a deadline pending now
//! becomes computable only when a server starts with the next year's
//! holiday notice. Without this, each such promise waited for someone to
//! record its correction by hand. Outside complaints are left to a person:
//! their summary is sealed personal data, which a repetition would carry,
//! and `GetCase` shows their pending deadlines.
//!
//! Why a restart never corrects twice: a corrected deadline is no longer
//! pending, and the correction's event id is derived from the corrected
//! event and the calendar's stamp, so an append that slips through (a
//! crash before the board saw it) is answered as a duplicate.

use crate::ledger::{Ledger, LedgerError};
use crate::projections::board_source::BoardSource;
use crate::projections::listings::promise_stored_as;
use crate::projections::promise_book::NO_DUE_TIME;
use crate::proto::v1::{self as pb, case_event::Kind};
use sha2::{Digest, Sha256};
use std::sync::Arc;

/// The actor stamped on the corrections this process appends.
pub const ACTOR: &str = "policy:deadlines";

/// Corrections appended at once.
const AT_ONCE: usize = 256;

/// A recorded event whose deadline is pending, as last corrected.
#[derive(Debug, Clone, PartialEq)]
pub struct PendingDeadline {
    pub case_id: String,
    pub business_line: String,
    /// The event recorded with the pending deadline (a correction targets it).
    pub event_id: String,
    pub event: PendingEvent,
}

#[derive(Debug, Clone, PartialEq)]
pub enum PendingEvent {
    /// A promise made at `made_at`; its words are read from the log at
    /// `read_at` when the board does not keep them (a closed case's).
    Promise {
        made_at: Option<prost_types::Timestamp>,
        promise: Option<pb::PromiseMade>,
        read_at: Option<u64>,
    },
    Judgement(pb::ViolationJudged),
}

/// The promises and judgements the board knows with a pending deadline,
/// or one computed from a provisional calendar year.
pub fn pending(board: &impl BoardSource) -> Result<Vec<PendingDeadline>, String> {
    let mut out = Vec::new();
    // Every promise without a due time sorts after this key.
    let no_due = (NO_DUE_TIME, Arc::<str>::from(""), String::new());
    let pending_promises = board
        .promise_keys(Some(&no_due), usize::MAX)?
        .into_iter()
        .map(|(_, case_id, event_id)| (case_id, event_id, false));
    let provisional = board
        .provisional_keys()?
        .into_iter()
        .map(|(case_id, event_id)| (case_id, event_id, true));
    for (case_id, event_id, provisional) in pending_promises.chain(provisional) {
        let Some(facts) = board.case(&case_id)? else {
            continue;
        };
        let Some(c) = facts.cases.get(&*case_id) else {
            continue;
        };
        let Some(j) = c.promises.judged_one(&event_id, c.utc_offset_minutes, 0) else {
            continue;
        };
        if !j.due_pending && !provisional {
            continue;
        }
        out.push(PendingDeadline {
            case_id: case_id.to_string(),
            business_line: c.business_line.clone(),
            event_id,
            event: PendingEvent::Promise {
                made_at: j.view.made_at,
                promise: j.view.promise,
                read_at: j.read_promise_at,
            },
        });
    }
    for key in board.pending_judgement_keys()? {
        let Some(facts) = board.case(&key.1)? else {
            continue;
        };
        let Some(j) = facts.judgements.get(&key) else {
            continue;
        };
        let business_line = facts
            .cases
            .get(j.case_id.as_str())
            .map(|c| c.business_line.clone())
            .unwrap_or_default();
        out.push(PendingDeadline {
            case_id: j.case_id.clone(),
            business_line,
            event_id: j.event_id.clone(),
            event: PendingEvent::Judgement(j.judgement.clone()),
        });
    }
    Ok(out)
}

/// The correction that repeats `d`'s event for the ledger to stamp its
/// deadline, if the calendar of its business line can compute it now.
pub fn correction(
    policy: &crate::policy::Policy,
    d: &PendingDeadline,
    now: i128,
) -> Option<pb::AppendRequest> {
    let cal = policy.calendar_for(&d.business_line);
    let replacement = match &d.event {
        PendingEvent::Promise {
            made_at, promise, ..
        } => {
            let mut p = promise.clone()?;
            let at = crate::time::ts_nanos(made_at.as_ref()?);
            // Only once the official years cover it: a provisional due
            // time is corrected by the notice, not by itself again.
            cal.add_working_days(at, p.working_days).ok()?;
            p.due_at = None;
            p.due_calendar.clear();
            p.due_pending.clear();
            p.due_provisional = false;
            Kind::PromiseMade(p)
        }
        PendingEvent::Judgement(j) => {
            let at = crate::time::ts_nanos(j.notified_at.as_ref()?);
            cal.add_working_days(at, policy.config.agents.appeal_working_days)
                .ok()?;
            let mut j = j.clone();
            j.contact_deadline = None;
            j.appeal_deadline = None;
            j.deadline_calendar.clear();
            j.deadline_pending.clear();
            j.deadline_provisional = false;
            Kind::ViolationJudged(j)
        }
    };
    let stamp = cal.stamp();
    let id = Sha256::digest(format!("{}\n{stamp}", d.event_id).as_bytes());
    let correction = pb::EventCorrected {
        corrected_event_id: d.event_id.clone(),
        reason: format!("calendar {stamp} now covers the deadline recorded pending or provisional"),
        replacement: Some(Box::new(pb::CaseEvent {
            kind: Some(replacement),
        })),
    };
    Some(pb::AppendRequest {
        case_id: d.case_id.clone(),
        expected_version: None,
        events: vec![pb::ProposedEvent {
            event_id: format!("deadline-{}", hex::encode(&id[..16])),
            occurred_at: Some(crate::time::nanos_ts(now)),
            causation_id: d.event_id.clone(),
            event: Some(pb::CaseEvent {
                kind: Some(Kind::EventCorrected(Box::new(correction))),
            }),
            ..Default::default()
        }],
    })
}

/// Appends the corrections of every pending deadline the calendars can
/// compute now; returns how many were recorded. Runs once, at start.
pub async fn run(ledger: Arc<Ledger>) -> usize {
    // The board and a closed case's promise are read from the store.
    let reader = ledger.clone();
    let found = match tokio::task::spawn_blocking(move || {
        pending(reader.board())?
            .into_iter()
            .map(|mut d| {
                if let PendingEvent::Promise {
                    promise: promise @ None,
                    read_at: Some(at),
                    ..
                } = &mut d.event
                {
                    let stored = reader.read_at(*at).map_err(|e| e.to_string())?;
                    let stored = stored.ok_or_else(|| format!("position {at} is not durable"))?;
                    *promise = Some(promise_stored_as(stored, &d.case_id, &d.event_id)?);
                }
                Ok(d)
            })
            .collect::<Result<Vec<_>, String>>()
    })
    .await
    {
        Ok(Ok(found)) => found,
        Ok(Err(e)) => {
            tracing::error!(error = %e, "pending deadlines: reading the board or a promise failed");
            return 0;
        }
        Err(_) => return 0,
    };
    let now = crate::time::now_nanos();
    let requests: Vec<_> = found
        .iter()
        .filter_map(|d| correction(ledger.policy(), d, now).map(|r| (d, r)))
        .collect();
    let mut recorded = 0;
    // Appended together, they share the writer's group commits (one at a
    // time, each would wait for a durable sync of its own).
    for batch in requests.chunks(AT_ONCE) {
        let mut appends = tokio::task::JoinSet::new();
        for (d, request) in batch {
            let (ledger, request) = (ledger.clone(), request.clone());
            let (case_id, corrected) = (d.case_id.clone(), d.event_id.clone());
            appends.spawn(async move {
                let r = ledger.append(request, ACTOR.to_string()).await;
                (case_id, corrected, r)
            });
        }
        let mut go_on = true;
        while let Some(joined) = appends.join_next().await {
            let Ok((case_id, corrected, r)) = joined else {
                continue;
            };
            match r {
                Ok(o) => {
                    recorded += usize::from(!o.duplicate);
                    tracing::info!(%case_id, %corrected, position = o.first_position, "pending deadline computed");
                }
                Err(LedgerError::Unavailable(why)) => {
                    tracing::warn!(%why, "pending deadlines: the ledger takes no appends; the next start tries again");
                    go_on = false;
                }
                Err(e) => {
                    tracing::warn!(%case_id, %corrected, error = %e, "pending deadline not computed");
                }
            }
        }
        if !go_on {
            break;
        }
    }
    recorded
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::projections::board::Fold;
    use crate::time::parse_rfc3339;

    fn pending_promise(id: &str) -> Kind {
        Kind::PromiseMade(pb::PromiseMade {
            promise_id: id.into(),
            working_days: 2,
            due_calendar: "cn-mainland@2026.1".into(),
            due_pending: "due_at: 2027-01-01 is outside it".into(),
            ..Default::default()
        })
    }

    /// The board's pending promises (a closed case's to be read from the
    /// log) and judgements are found; computed ones are not.
    #[test]
    fn pending_deadlines_are_found_on_the_board() {
        let mut f = Fold::new();
        let opened = Kind::CaseOpened(pb::CaseOpened {
            business_line: "qidian".into(),
            ..Default::default()
        });
        f.add("c1", "open", opened.clone());
        f.add("c1", "p1", pending_promise("p1"));
        f.add(
            "c1",
            "p2",
            Kind::PromiseMade(pb::PromiseMade {
                promise_id: "p2".into(),
                working_days: 2,
                due_at: parse_rfc3339("2026-12-03T18:00:00+08:00"),
                ..Default::default()
            }),
        );
        f.add(
            "c1",
            "j1",
            Kind::ViolationJudged(pb::ViolationJudged {
                judgement_id: "j1".into(),
                deadline_pending: "appeal_deadline: 2027".into(),
                ..Default::default()
            }),
        );
        f.add("c2", "open-2", opened);
        f.add("c2", "p3", pending_promise("p3"));
        f.add("c2", "close", Kind::CaseClosed(pb::CaseClosed::default()));

        let found = pending(&f.board).unwrap();
        let ids: Vec<_> = found.iter().map(|d| d.event_id.as_str()).collect();
        assert_eq!(ids, ["p1", "p3", "j1"]);
        assert!(found.iter().all(|d| d.business_line == "qidian"));
        match &found[0].event {
            PendingEvent::Promise {
                promise, read_at, ..
            } => assert!(promise.is_some() && read_at.is_none()),
            e => panic!("{e:?}"),
        }
        match &found[1].event {
            PendingEvent::Promise {
                promise, read_at, ..
            } => assert!(promise.is_none() && *read_at == Some(6)),
            e => panic!("{e:?}"),
        }
    }

    /// A correction is made only when the calendar covers the deadline; it
    /// repeats the event without the server's stamps, under an id derived
    /// from the event and the calendar.
    #[test]
    fn a_correction_repeats_the_event_once_the_calendar_covers_it() {
        let policy = crate::policy::Policy::default();
        let d = |made: &str| PendingDeadline {
            case_id: "c1".into(),
            business_line: String::new(),
            event_id: "p1".into(),
            event: PendingEvent::Promise {
                made_at: parse_rfc3339(made),
                promise: match pending_promise("p1") {
                    Kind::PromiseMade(p) => Some(p),
                    _ => None,
                },
                read_at: None,
            },
        };
        // 2026-12-30 + 2 working days is in 2027: the shipped calendar
        // cannot say; a month earlier it can.
        assert!(correction(&policy, &d("2026-12-30T10:00:00+08:00"), 0).is_none());
        let r = correction(&policy, &d("2026-11-30T10:00:00+08:00"), 0).unwrap();
        let again = correction(&policy, &d("2026-11-30T10:00:00+08:00"), 7).unwrap();
        assert_eq!(r.events[0].event_id, again.events[0].event_id);
        assert!(r.events[0].event_id.starts_with("deadline-"));
        assert_eq!(r.events[0].event_id.len(), "deadline-".len() + 32);
        assert_eq!(r.events[0].causation_id, "p1");
        let Some(Kind::EventCorrected(c)) = r.events[0].event.as_ref().unwrap().kind.clone() else {
            panic!("{r:?}");
        };
        assert_eq!(c.corrected_event_id, "p1");
        let Some(Kind::PromiseMade(p)) = c.replacement.unwrap().kind else {
            panic!("not a promise");
        };
        assert_eq!((p.working_days, p.due_at), (2, None));
        assert!(p.due_calendar.is_empty() && p.due_pending.is_empty());

        let judged = PendingDeadline {
            event_id: "j1".into(),
            event: PendingEvent::Judgement(pb::ViolationJudged {
                judgement_id: "j1".into(),
                notified_at: parse_rfc3339("2026-12-31T10:00:00+08:00"),
                deadline_pending: "appeal_deadline: 2027".into(),
                ..Default::default()
            }),
            ..d("2026-11-30T10:00:00+08:00")
        };
        assert!(correction(&policy, &judged, 0).is_none());
    }
}
