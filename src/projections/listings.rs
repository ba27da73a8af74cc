//! Listings across cases from the policy board: promises by due time,
//! warnings and the escalation that answered each, a customer's history.
//! Each is judged at an evaluation time and paginated by an opaque token
//! holding the sort key to go on after; a page walks an index of the board
//! in that order and examines a bounded number of entries, reading each
//! entry's case facts as it goes (see [`BoardSource`]).

use super::board::{PromiseKey, WarningJudged};
use super::board_source::BoardSource;
pub use super::page::{token, untoken, walk_page, PAGE_KEYS, SCAN_BUDGET};
use crate::proto::v1::{self as pb, case_event::Kind, PromiseState};
use crate::time::nanos_ts;
use std::sync::Arc;

/// A sort key whose numbers sort as text (fixed width, offset to positive).
fn num(n: i128) -> String {
    format!("{:040}", n.saturating_add(i128::MAX / 2))
}

#[derive(Debug, Clone, Default)]
pub struct PromiseQuery {
    pub state: Option<PromiseState>,
    pub due_before: Option<i128>,
    pub business_line: Option<String>,
    /// Only promises whose due time is pending.
    pub due_pending: bool,
    pub now: i128,
}

/// The position in the due index a `ListPromises` page token names; None
/// if it is not one of ours.
pub fn promise_token_key(parts: &[String]) -> Option<PromiseKey> {
    let [due, case_id, event_id] = parts else {
        return None;
    };
    let due = due.parse::<i128>().ok()?.checked_sub(i128::MAX / 2)?;
    Some((due, Arc::from(case_id.as_str()), event_id.clone()))
}

fn promise_token(k: &PromiseKey) -> String {
    token(&[num(k.0), k.1.to_string(), k.2.clone()])
}

/// A listed promise; a closed case's comes without its words, which the
/// caller reads from the log at `read_promise_at` and fills in with
/// [`complete_promise`].
#[derive(Debug, Clone, PartialEq)]
pub struct ListedPromise {
    pub entry: pb::PromiseEntry,
    pub read_promise_at: Option<u64>,
}

/// Promises matching `q`, by (due time, case, event), after `after`: a walk
/// of the board's due index, judging each promise it passes, at most
/// [`SCAN_BUDGET`] of them.
pub fn promises(
    board: &impl BoardSource,
    q: &PromiseQuery,
    after: Option<&PromiseKey>,
    limit: usize,
) -> Result<(Vec<ListedPromise>, Option<String>), String> {
    let keys = board.promise_keys(after, PAGE_KEYS)?;
    // Sorted by due time: past due_before nothing further can match.
    let past = |(due, _, _): &PromiseKey| q.due_before.is_some_and(|b| *due >= b);
    let mut failed = None;
    let (out, resume) = walk_page(keys, limit, past, |(_, case_id, event_id)| {
        let facts = board
            .case(case_id)
            .map_err(|e| failed = Some(e))
            .ok()
            .flatten()?;
        let c = facts.cases.get(&**case_id)?;
        if q.business_line
            .as_ref()
            .is_some_and(|b| *b != c.business_line)
        {
            return None;
        }
        let judged = c
            .promises
            .judged_one(event_id, c.utc_offset_minutes, q.now)?;
        if q.state.is_some_and(|s| judged.view.state != s as i32)
            || (q.due_pending && !judged.due_pending)
        {
            return None;
        }
        Some(ListedPromise {
            entry: pb::PromiseEntry {
                case_id: case_id.to_string(),
                customer_id: c.customer_id.clone(),
                business_line: c.business_line.clone(),
                promise: Some(judged.view),
            },
            read_promise_at: judged.read_promise_at,
        })
    });
    match failed {
        Some(e) => Err(e),
        None => Ok((out, resume.as_ref().map(promise_token))),
    }
}

/// Fills a listed promise's words from the event stored where the board
/// says the promise as last corrected is (see [`promise_stored_as`]).
pub fn complete_promise(
    entry: &mut pb::PromiseEntry,
    stored: pb::RecordedEvent,
) -> Result<(), String> {
    let Some(view) = entry.promise.as_mut() else {
        return Err(format!(
            "a listed promise of case {} has no view",
            entry.case_id
        ));
    };
    view.promise = Some(promise_stored_as(stored, &entry.case_id, &view.event_id)?);
    Ok(())
}

/// Promise `event_id` of `case_id` as `stored` holds it: its `PromiseMade`,
/// or the correction that replaced it. An error names what did not match:
/// the board and the log disagree, which only a damaged store can cause.
pub fn promise_stored_as(
    stored: pb::RecordedEvent,
    case_id: &str,
    event_id: &str,
) -> Result<pb::PromiseMade, String> {
    let same_case = stored.case_id == case_id;
    let promise = match stored.event.and_then(|e| e.kind) {
        Some(Kind::PromiseMade(p)) if same_case && stored.event_id == event_id => Some(p),
        Some(Kind::EventCorrected(c)) if same_case && c.corrected_event_id == event_id => {
            match c.replacement.and_then(|r| r.kind) {
                Some(Kind::PromiseMade(p)) => Some(p),
                _ => None,
            }
        }
        _ => None,
    };
    promise.ok_or_else(|| {
        format!(
            "position {} of the log is not promise {event_id} of case {case_id} as the board lists it",
            stored.position
        )
    })
}

#[derive(Debug, Clone, Default)]
pub struct WarningQuery {
    pub unanswered_only: bool,
    pub rule: Option<String>,
    pub case_id: Option<String>,
    pub now: i128,
    /// The policy's time to escalate, nanoseconds.
    pub escalate_within: i128,
}

/// Warnings in the order raised (log position), after position `after`.
///
/// The entries carry what the board keeps; their `event_id` and `warning`
/// are the stored event's, which the caller reads from the log at each
/// entry's position and fills in with [`complete_warning`]. With a case given, only that case's warnings are looked
/// at, not every warning of the ledger; at most [`SCAN_BUDGET`] are.
pub fn warnings(
    board: &impl BoardSource,
    q: &WarningQuery,
    after: u64,
    limit: usize,
) -> Result<(Vec<pb::WarningEntry>, Option<String>), String> {
    let from = after.saturating_add(1);
    let positions: Vec<(u64, std::sync::Arc<str>)> = match &q.case_id {
        Some(case_id) => {
            let Some(facts) = board.case(case_id)? else {
                return Ok((Vec::new(), None));
            };
            let Some(case) = facts.cases.get(case_id.as_str()) else {
                return Ok((Vec::new(), None));
            };
            let first = case.warnings.partition_point(|p| *p < from);
            let case_id: std::sync::Arc<str> = std::sync::Arc::from(case_id.as_str());
            case.warnings[first..]
                .iter()
                .take(PAGE_KEYS)
                .map(|p| (*p, case_id.clone()))
                .collect()
        }
        None => board.warning_keys(from, PAGE_KEYS)?,
    };
    let mut out = Vec::new();
    let mut next = None;
    for (examined, (pos, case_id)) in positions.into_iter().enumerate() {
        if examined == SCAN_BUDGET {
            // Out of budget: the next page goes on after the last one seen.
            next = Some(token(&[(pos - 1).to_string()]));
            break;
        }
        let Some(facts) = board.case(&case_id)? else {
            continue;
        };
        let Some(w) = facts.warnings.get(&pos) else {
            continue;
        };
        if q.rule.as_ref().is_some_and(|r| **r != *w.rule) {
            continue;
        }
        let WarningJudged {
            by,
            answer,
            answered,
            overdue,
        } = facts.judge_warning(w, q.now, q.escalate_within);
        if q.unanswered_only && (answered || !overdue) {
            continue;
        }
        if out.len() == limit {
            next = Some(token(&[(pos - 1).to_string()]));
            break;
        }
        out.push(pb::WarningEntry {
            case_id: w.case_id.to_string(),
            event_id: String::new(),
            position: pos,
            raised_at: Some(nanos_ts(w.at)),
            warning: None,
            answered_by_event_id: answer.map(|a| a.event_id.clone()).unwrap_or_default(),
            answered_at: answer.map(|a| nanos_ts(a.at)),
            escalate_by: Some(nanos_ts(by)),
            overdue,
            withdrawn_by_event_id: w
                .withdrawn
                .as_ref()
                .map(|x| x.0.clone())
                .unwrap_or_default(),
            withdrawn_at: w.withdrawn.as_ref().map(|x| nanos_ts(x.1)),
        });
    }
    Ok((out, next))
}

/// Fills a listed warning's event id and content from the event stored at
/// its position. An error names what did not match: the board and the log
/// disagree, which only a damaged store can cause.
pub fn complete_warning(
    entry: &mut pb::WarningEntry,
    stored: pb::RecordedEvent,
) -> Result<(), String> {
    let kind = stored.event.and_then(|e| e.kind);
    match kind {
        Some(Kind::WarningRaised(w))
            if stored.position == entry.position && stored.case_id == entry.case_id =>
        {
            entry.event_id = stored.event_id;
            entry.warning = Some(w);
            Ok(())
        }
        _ => Err(format!(
            "position {} of the log is not the warning the board lists there (case {})",
            entry.position, entry.case_id
        )),
    }
}

/// A customer's cases with the facts of each, judged at `now`; None when
/// no case names the customer.
pub fn customer_history(
    board: &impl BoardSource,
    customer_id: &str,
    now: i128,
) -> Result<Option<pb::CustomerHistory>, String> {
    let cases = board.customer_cases(customer_id)?;
    if cases.is_empty() {
        return Ok(None);
    }
    let mut h = pb::CustomerHistory {
        customer_id: customer_id.to_string(),
        ..Default::default()
    };
    for case_id in cases {
        let Some(facts) = board.case(&case_id)? else {
            continue;
        };
        let Some(c) = facts.cases.get(&case_id) else {
            continue;
        };
        let judged = c.promises.judged(c.utc_offset_minutes, now);
        let count = |s: PromiseState| judged.iter().filter(|p| p.state == s as i32).count() as u32;
        let demands = c.promises.demand_counts(c.utc_offset_minutes, now);
        let row = pb::CustomerCase {
            case_id: case_id.to_string(),
            business_line: c.business_line.clone(),
            status: c.status,
            opened_at: c.opened_at,
            contacts: c.contacts,
            warnings: c.warnings.len() as u32,
            escalation_level: c.escalation_level,
            promises_kept: count(PromiseState::Kept),
            promises_broken: count(PromiseState::Broken),
            promises_open: count(PromiseState::Open),
            results_refused: c.refusals,
            external_complaints: c.external_complaints,
            resolved: c.resolution_accepted.is_some(),
            resolution_accepted: c.resolution_accepted.unwrap_or(false),
            demands_open: demands.open,
            demands_fulfilled: demands.fulfilled,
            demands_declined: demands.declined,
            demands_withdrawn: demands.withdrawn,
        };
        h.contacts += row.contacts;
        h.warnings += row.warnings;
        h.promises_broken += row.promises_broken;
        h.external_complaints += row.external_complaints;
        h.cases.push(row);
    }
    Ok(Some(h))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::projections::board::Fold;
    use crate::time::ts_nanos;

    fn promise(due_seconds: i64) -> pb::PromiseMade {
        pb::PromiseMade {
            promise_id: "p".into(),
            due_at: Some(prost_types::Timestamp {
                seconds: due_seconds,
                nanos: 0,
            }),
            ..Default::default()
        }
    }

    /// 3,000 promises over 300 cases, due in an order unlike the cases'.
    fn many_promises() -> Fold {
        let mut f = Fold::new();
        for c in 0..300 {
            let case = format!("c{c:03}");
            let line = if c == 7 { "rare" } else { "common" };
            let opened = pb::CaseOpened {
                business_line: line.into(),
                ..Default::default()
            };
            f.add(&case, &format!("{case}-open"), Kind::CaseOpened(opened));
            for p in 0..10 {
                let due = 1_000_000 + ((c * 7919 + p * 104_729) % 3_000) as i64;
                f.add(
                    &case,
                    &format!("{case}-p{p}"),
                    Kind::PromiseMade(promise(due)),
                );
            }
        }
        f
    }

    /// Every page of a promise listing, following its tokens.
    fn all_pages(
        board: &crate::projections::board::Board,
        q: &PromiseQuery,
        limit: usize,
    ) -> (Vec<pb::PromiseEntry>, usize) {
        let (mut out, mut after, mut pages) = (Vec::new(), None, 0);
        loop {
            let (page, next) = promises(board, q, after.as_ref(), limit).unwrap();
            pages += 1;
            assert!(page.len() <= limit);
            out.extend(page.into_iter().map(|l| {
                assert_eq!(l.read_promise_at, None, "an open case's promise is whole");
                l.entry
            }));
            match next {
                None => return (out, pages),
                Some(t) => after = Some(promise_token_key(&untoken(&t).unwrap()).unwrap()),
            }
        }
    }

    fn key_of(e: &pb::PromiseEntry) -> (i128, String, String) {
        let v = e.promise.as_ref().unwrap();
        let due = v
            .promise
            .as_ref()
            .unwrap()
            .due_at
            .as_ref()
            .map(ts_nanos)
            .unwrap();
        (due, e.case_id.clone(), v.event_id.clone())
    }

    /// Pages walk the due index: together they are every promise, sorted
    /// by (due, case, event), whatever the page size; a filter that
    /// matches little ends pages early with a token instead of judging
    /// everything at once; a due-before bound stops the walk; a corrected
    /// due time moves its promise.
    #[test]
    fn promise_pages_walk_the_due_index_within_a_budget() {
        let mut f = many_promises();
        let q = PromiseQuery::default();
        let mut expected: Vec<(i128, String, String)> = Vec::new();
        for (case_id, c) in &f.board.cases {
            for v in c.promises.judged(c.utc_offset_minutes, 0) {
                let due = ts_nanos(v.promise.as_ref().unwrap().due_at.as_ref().unwrap());
                expected.push((due, case_id.to_string(), v.event_id));
            }
        }
        expected.sort();
        assert_eq!(expected.len(), 3_000);
        for limit in [1, 7, 500, 5_000] {
            let (listed, _) = all_pages(&f.board, &q, limit);
            let keys: Vec<_> = listed.iter().map(key_of).collect();
            assert_eq!(keys, expected, "pages of {limit}");
        }

        // One case of 300 matches: the walk takes pages of at most the
        // budget, some of them empty, and finds exactly its promises.
        let rare = PromiseQuery {
            business_line: Some("rare".into()),
            ..Default::default()
        };
        let (listed, pages) = all_pages(&f.board, &rare, 100);
        assert_eq!(listed.len(), 10);
        assert!(listed.iter().all(|e| e.case_id == "c007"));
        assert_eq!(pages, 3_000usize.div_ceil(SCAN_BUDGET));

        let before = PromiseQuery {
            due_before: Some(expected[10].0),
            ..Default::default()
        };
        let (first, next) = promises(&f.board, &before, None, 100).unwrap();
        assert!(next.is_none());
        assert_eq!(
            first.iter().map(|l| key_of(&l.entry)).collect::<Vec<_>>(),
            expected[..10]
        );

        // The earliest promise, corrected to fall due last.
        let (_, case_id, event_id) = expected[0].clone();
        let corrected = pb::EventCorrected {
            corrected_event_id: event_id.clone(),
            replacement: Some(Box::new(pb::CaseEvent {
                kind: Some(Kind::PromiseMade(promise(9_000_000))),
            })),
            ..Default::default()
        };
        f.add(
            &case_id,
            "correction",
            Kind::EventCorrected(Box::new(corrected)),
        );
        assert_eq!(f.board.promises_by_due.len(), 3_000);
        let (listed, _) = all_pages(&f.board, &q, 1_000);
        let last = key_of(listed.last().unwrap());
        assert_eq!((last.1, last.2), (case_id, event_id));
        assert_eq!(key_of(&listed[0]), expected[1]);
    }

    /// A rule filter that matches only the last of many warnings ends a
    /// page at the budget with a token; the next page finds it.
    #[test]
    fn a_warning_page_ends_at_the_budget_with_a_token() {
        let mut f = Fold::new();
        f.add("c1", "open", Kind::CaseOpened(pb::CaseOpened::default()));
        for i in 0..SCAN_BUDGET + 10 {
            let rule = if i == SCAN_BUDGET + 5 {
                "rare"
            } else {
                "common"
            };
            let w = pb::WarningRaised {
                rule: rule.into(),
                ..Default::default()
            };
            f.add("c1", &format!("w{i}"), Kind::WarningRaised(w));
        }
        let q = WarningQuery {
            rule: Some("rare".into()),
            ..Default::default()
        };
        let (first, next) = warnings(&f.board, &q, 0, 100).unwrap();
        assert!(first.is_empty());
        let after: u64 = untoken(&next.unwrap()).unwrap()[0].parse().unwrap();
        let (second, next) = warnings(&f.board, &q, after, 100).unwrap();
        assert!(next.is_none());
        assert_eq!(second.len(), 1);
        assert_eq!(second[0].position, SCAN_BUDGET as u64 + 7);
    }

    #[test]
    fn a_listed_warning_is_completed_only_from_its_own_stored_warning() {
        let listed = pb::WarningEntry {
            case_id: "c1".into(),
            position: 7,
            ..Default::default()
        };
        let warning = pb::WarningRaised {
            warning_id: "warning-1".into(),
            rule: "threat_on_contact".into(),
            ..Default::default()
        };
        let stored = |position: u64, case_id: &str, kind: Kind| pb::RecordedEvent {
            position,
            case_id: case_id.into(),
            event_id: "warning-1".into(),
            event: Some(pb::CaseEvent { kind: Some(kind) }),
            ..Default::default()
        };
        let mut w = listed.clone();
        complete_warning(
            &mut w,
            stored(7, "c1", Kind::WarningRaised(warning.clone())),
        )
        .unwrap();
        assert_eq!(w.event_id, "warning-1");
        assert_eq!(w.warning.as_ref(), Some(&warning));

        let note = Kind::NoteAdded(pb::NoteAdded::default());
        for wrong in [
            stored(7, "c1", note),
            stored(8, "c1", Kind::WarningRaised(warning.clone())),
            stored(7, "c2", Kind::WarningRaised(warning.clone())),
        ] {
            let mut w = listed.clone();
            let e = complete_warning(&mut w, wrong).unwrap_err();
            assert!(e.contains("position 7"), "{e}");
            assert!(w.warning.is_none() && w.event_id.is_empty());
        }
    }

    #[test]
    fn a_listed_promise_is_completed_only_from_its_own_promise_or_correction() {
        let listed = pb::PromiseEntry {
            case_id: "c1".into(),
            promise: Some(pb::PromiseView {
                event_id: "e-p1".into(),
                ..Default::default()
            }),
            ..Default::default()
        };
        let words = |text: &str| pb::PromiseMade {
            promise_id: "p1".into(),
            description: text.into(),
            ..Default::default()
        };
        let stored = |case_id: &str, event_id: &str, kind: Kind| pb::RecordedEvent {
            position: 9,
            case_id: case_id.into(),
            event_id: event_id.into(),
            event: Some(pb::CaseEvent { kind: Some(kind) }),
            ..Default::default()
        };
        let correction = |target: &str, kind: Kind| {
            Kind::EventCorrected(Box::new(pb::EventCorrected {
                corrected_event_id: target.into(),
                replacement: Some(Box::new(pb::CaseEvent { kind: Some(kind) })),
                ..Default::default()
            }))
        };
        let completed = |stored| {
            let mut e = listed.clone();
            complete_promise(&mut e, stored).map(|_| e.promise.unwrap().promise.unwrap())
        };
        let made = stored("c1", "e-p1", Kind::PromiseMade(words("as made")));
        assert_eq!(completed(made).unwrap(), words("as made"));
        let fixed = correction("e-p1", Kind::PromiseMade(words("as corrected")));
        assert_eq!(
            completed(stored("c1", "e-fix", fixed)).unwrap(),
            words("as corrected")
        );

        let note = Kind::NoteAdded(pb::NoteAdded::default());
        for wrong in [
            stored("c1", "e-p1", note.clone()),
            stored("c2", "e-p1", Kind::PromiseMade(words("x"))),
            stored("c1", "e-p2", Kind::PromiseMade(words("x"))),
            stored(
                "c1",
                "e-fix",
                correction("e-p2", Kind::PromiseMade(words("x"))),
            ),
            stored("c1", "e-fix", correction("e-p1", note.clone())),
        ] {
            let e = completed(wrong).unwrap_err();
            assert!(e.contains("position 9") && e.contains("e-p1"), "{e}");
        }
    }
}
