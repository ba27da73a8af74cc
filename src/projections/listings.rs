//! Listings across cases from the policy board: promises by due time,
//! warnings and the escalation that answered each, a customer's history.
//! Each is judged at an evaluation time and paginated by an opaque token
//! holding the sort key of the last item returned.

use super::board::{Board, WarningFact};
use crate::proto::v1::{self as pb, case_event::Kind, PromiseState};
use crate::time::{nanos_ts, ts_nanos};

/// Encodes a sort key as a page token.
pub fn token(parts: &[String]) -> String {
    hex::encode(parts.join("\n"))
}

/// Decodes a page token; `None` if it is not one of ours.
pub fn untoken(t: &str) -> Option<Vec<String>> {
    let bytes = hex::decode(t).ok()?;
    Some(
        String::from_utf8(bytes)
            .ok()?
            .split('\n')
            .map(String::from)
            .collect(),
    )
}

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

/// Promises matching `q`, by (due time, case, event), after `after`.
pub fn promises(
    board: &Board,
    q: &PromiseQuery,
    after: Option<&[String]>,
    limit: usize,
) -> (Vec<pb::PromiseEntry>, Option<String>) {
    let mut all = Vec::new();
    for (case_id, c) in &board.cases {
        if c.promises.is_empty()
            || q.business_line
                .as_ref()
                .is_some_and(|b| *b != c.business_line)
        {
            continue;
        }
        for v in c.promises.judged(c.utc_offset_minutes, q.now) {
            let due = v
                .promise
                .as_ref()
                .and_then(|p| p.due_at.as_ref())
                .map(ts_nanos)
                .unwrap_or(i128::MAX / 2);
            let pending = v
                .promise
                .as_ref()
                .is_some_and(|p| p.due_at.is_none() && !p.due_pending.is_empty());
            if q.state.is_some_and(|s| v.state != s as i32)
                || q.due_before.is_some_and(|b| due >= b)
                || (q.due_pending && !pending)
            {
                continue;
            }
            let key = vec![num(due), case_id.to_string(), v.event_id.clone()];
            if after.is_some_and(|a| key.as_slice() <= a) {
                continue;
            }
            all.push((
                key,
                pb::PromiseEntry {
                    case_id: case_id.to_string(),
                    customer_id: c.customer_id.clone(),
                    business_line: c.business_line.clone(),
                    promise: Some(v),
                },
            ));
        }
    }
    page(all, limit)
}

/// Sorts `all` by key and keeps the first `limit`, with the page token of
/// the last kept key when more remain.
pub fn page<T>(mut all: Vec<(Vec<String>, T)>, limit: usize) -> (Vec<T>, Option<String>) {
    all.sort_by(|a, b| a.0.cmp(&b.0));
    let more = all.len() > limit;
    all.truncate(limit);
    let next = if more {
        all.last().map(|(k, _)| token(k))
    } else {
        None
    };
    (all.into_iter().map(|(_, v)| v).collect(), next)
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
/// entry's position and fills in with [`complete_warning`] (outside the
/// board's lock). With a case given, only that case's warnings are looked
/// at, not every warning of the ledger.
pub fn warnings(
    board: &Board,
    q: &WarningQuery,
    after: u64,
    limit: usize,
) -> (Vec<pb::WarningEntry>, Option<String>) {
    let from = after.saturating_add(1);
    let positions: Box<dyn Iterator<Item = (u64, &WarningFact)>> = match &q.case_id {
        Some(case_id) => {
            let Some(case) = board.cases.get(case_id.as_str()) else {
                return (Vec::new(), None);
            };
            let first = case.warnings.partition_point(|p| *p < from);
            Box::new(
                case.warnings[first..]
                    .iter()
                    .filter_map(|p| board.warnings.get(p).map(|w| (*p, w))),
            )
        }
        None => Box::new(board.warnings.range(from..).map(|(p, w)| (*p, w))),
    };
    let mut out = Vec::new();
    let mut next = None;
    for (pos, w) in positions {
        if q.rule.as_ref().is_some_and(|r| **r != *w.rule) {
            continue;
        }
        let by = w.at.saturating_add(q.escalate_within);
        let answer = board
            .escalation_reaching(&w.case_id, w.required_level, by.min(q.now))
            .filter(|_| w.required_level > 0);
        let answered = answer.is_some() || w.required_level <= pb::EscalationLevel::Agent as i32;
        let overdue = !answered && q.now > by;
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
        });
    }
    (out, next)
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

/// A customer's cases with the facts of each, judged at `now`.
pub fn customer_history(board: &Board, customer_id: &str, now: i128) -> pb::CustomerHistory {
    let mut h = pb::CustomerHistory {
        customer_id: customer_id.to_string(),
        ..Default::default()
    };
    for case_id in board.customers.get(customer_id).into_iter().flatten() {
        let Some(c) = board.cases.get(case_id) else {
            continue;
        };
        let judged = c.promises.judged(c.utc_offset_minutes, now);
        let count = |s: PromiseState| judged.iter().filter(|p| p.state == s as i32).count() as u32;
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
        };
        h.contacts += row.contacts;
        h.warnings += row.warnings;
        h.promises_broken += row.promises_broken;
        h.external_complaints += row.external_complaints;
        h.cases.push(row);
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
