//! Procedure KF-006 for dissatisfied customers (seed 001): each week's
//! dissatisfied contacts are surveyed Monday to Wednesday of the next week
//! (调研) and called back Thursday to Sunday (回访). A callback waits while the
//! second line has not given its result: the item is shown "held", with the
//! tickets to chase, instead of calling the customer with nothing to say.
//! Items not done in their week stay in the queue, marked carried over.

use super::board::{Board, Dissatisfied};
use super::listings::page;
use crate::proto::v1::{self as pb, QueueKind};
use crate::time::ts_nanos;
use time::{Date, Duration, OffsetDateTime, UtcOffset, Weekday};

/// Parses a `YYYY-MM-DD` local date.
pub fn parse_date(s: &str) -> Option<Date> {
    let fmt = time::macros::format_description!("[year]-[month]-[day]");
    Date::parse(s, &fmt).ok()
}

fn monday_of(d: Date) -> Date {
    d - Duration::days(i64::from(d.weekday().number_days_from_monday()))
}

fn local_date(ts: &prost_types::Timestamp, offset_minutes: i32) -> Option<Date> {
    let off = UtcOffset::from_whole_seconds(offset_minutes * 60).ok()?;
    OffsetDateTime::from_unix_timestamp_nanos(ts_nanos(ts))
        .ok()
        .map(|t| t.to_offset(off).date())
}

/// The Monday of the week a dissatisfied contact belongs to.
fn week_of(board: &Board, d: &Dissatisfied) -> Option<Date> {
    let offset = board.cases.get(d.case_id.as_str())?.utc_offset_minutes;
    local_date(d.contact.started_at.as_ref()?, offset).map(monday_of)
}

/// Why a queue cannot be served for a date.
pub fn queue_day_problem(kind: QueueKind, date: Date) -> Option<String> {
    let wd = date.weekday();
    let ok = match kind {
        QueueKind::Survey => matches!(wd, Weekday::Monday | Weekday::Tuesday | Weekday::Wednesday),
        QueueKind::Callback => matches!(
            wd,
            Weekday::Thursday | Weekday::Friday | Weekday::Saturday | Weekday::Sunday
        ),
        QueueKind::Unspecified => return Some("names no queue kind".into()),
    };
    (!ok).then(|| {
        format!(
            "{date} is a {wd}; surveys run Monday to Wednesday and callbacks Thursday to Sunday"
        )
    })
}

/// The queue of `kind` for `date`: (week served, items after `after`, next token).
pub fn queue(
    board: &Board,
    kind: QueueKind,
    date: Date,
    business_line: Option<&str>,
    after: Option<&[String]>,
    limit: usize,
) -> (Date, Vec<pb::QueueItem>, Option<String>) {
    let served = monday_of(date) - Duration::days(7);
    let mut all = Vec::new();
    for d in board.dissatisfied.values() {
        let Some(case) = board.cases.get(d.case_id.as_str()) else {
            continue;
        };
        if business_line.is_some_and(|b| b != case.business_line) {
            continue;
        }
        let Some(week) = week_of(board, d) else {
            continue;
        };
        if week > served {
            continue;
        }
        let c = &d.classification;
        let pending = match kind {
            QueueKind::Survey => c.needs_survey && d.survey.is_none(),
            QueueKind::Callback => c.needs_callback && d.callback.is_none(),
            QueueKind::Unspecified => false,
        };
        if !pending {
            continue;
        }
        let at = d.contact.started_at.as_ref().map(ts_nanos).unwrap_or(0);
        let key = vec![format!("{at:040}"), d.case_id.clone(), c.contact_id.clone()];
        if after.is_some_and(|a| key.as_slice() <= a) {
            continue;
        }
        let chase: Vec<String> = if kind == QueueKind::Callback {
            case.tickets_waiting.iter().cloned().collect()
        } else {
            Vec::new()
        };
        all.push((
            key,
            pb::QueueItem {
                case_id: d.case_id.clone(),
                contact_id: c.contact_id.clone(),
                contact_event_id: d.contact.event_id.clone(),
                contacted_at: d.contact.started_at,
                channel: d.contact.channel,
                agent_id: d.contact.agent_id.clone(),
                factor: d
                    .survey
                    .as_ref()
                    .map(|(_, s)| s.factor)
                    .filter(|f| *f != 0)
                    .unwrap_or(c.factor),
                carried_over: week < served,
                held: !chase.is_empty(),
                chase_tickets: chase,
                case_version: 0,
            },
        ));
    }
    let (items, next) = page(all, limit);
    (served, items, next)
}

/// Statistics by factor of the dissatisfied contacts of the week containing `date`.
pub fn factor_statistics(
    board: &Board,
    date: Date,
    business_line: Option<&str>,
) -> pb::FactorStatistics {
    let monday = monday_of(date);
    let mut rows: std::collections::BTreeMap<i32, pb::FactorCount> = Default::default();
    let mut total = 0;
    for d in board.dissatisfied.values() {
        let Some(case) = board.cases.get(d.case_id.as_str()) else {
            continue;
        };
        if business_line.is_some_and(|b| b != case.business_line)
            || week_of(board, d) != Some(monday)
        {
            continue;
        }
        let c = &d.classification;
        let factor = d
            .survey
            .as_ref()
            .map(|(_, s)| s.factor)
            .filter(|f| *f != 0)
            .unwrap_or(c.factor);
        let r = rows.entry(factor).or_insert_with(|| pb::FactorCount {
            factor,
            ..Default::default()
        });
        total += 1;
        r.dissatisfied += 1;
        r.needs_survey += u32::from(c.needs_survey);
        r.needs_callback += u32::from(c.needs_callback);
        let survey = d.survey.as_ref().map(|(_, s)| s);
        let callback = d.callback.as_ref().map(|(_, _, cb)| cb);
        r.surveyed += u32::from(survey.is_some());
        r.called_back += u32::from(callback.is_some());
        let resolved = callback
            .map(|c| c.resolved)
            .or(survey.map(|s| s.resolved))
            .unwrap_or(false);
        let appended = callback
            .map(|c| c.event_appended)
            .or(survey.map(|s| s.event_appended))
            .unwrap_or(false);
        let satisfied = callback
            .map(|c| c.customer_response == pb::CustomerResponse::Accepted as i32)
            .or(survey.map(|s| s.satisfied))
            .unwrap_or(false);
        r.resolved += u32::from(resolved);
        r.event_appended += u32::from(appended);
        r.satisfied += u32::from(satisfied);
    }
    pb::FactorStatistics {
        week_of: monday.to_string(),
        factors: rows.into_values().collect(),
        total,
    }
}
