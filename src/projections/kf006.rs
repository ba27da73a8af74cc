//! Procedure KF-006 for dissatisfied customers (seed 001): each week's
//! dissatisfied contacts are surveyed Monday to Wednesday of the next week
//! (调研) and called back Thursday to Sunday (回访). A callback waits while the
//! second line has not given its result: the item is shown "held", with the
//! tickets to chase, instead of calling the customer with nothing to say.
//! Items not done in their week stay in the queue, marked carried over.

use super::board::ContactKey;
use super::board_source::BoardSource;
use super::page::{token, walk_page, PAGE_KEYS};
use super::week::monday_of;
pub use super::week::{parse_date, week_of_contact};
use crate::proto::v1::{self as pb, QueueKind};
use std::sync::Arc;
use time::{Date, Duration, Weekday};

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

/// The place in a queue a page token names; None if it is not one of ours.
pub fn queue_token_key(parts: &[String]) -> Option<ContactKey> {
    let [at, case_id, contact_id] = parts else {
        return None;
    };
    Some((
        at.parse().ok()?,
        Arc::from(case_id.as_str()),
        contact_id.clone(),
    ))
}

fn queue_token(k: &ContactKey) -> String {
    token(&[format!("{:040}", k.0), k.1.to_string(), k.2.clone()])
}

/// The queue of `kind` for `date`: (week served, items after `after`, next
/// token). A walk of the contacts still waiting for that kind of follow-up,
/// by contact time, examining at most
/// [`SCAN_BUDGET`](super::listings::SCAN_BUDGET) of them (a page cut
/// short by it carries a token, as `ListPromises`' do).
pub fn queue(
    board: &impl BoardSource,
    kind: QueueKind,
    date: Date,
    business_line: Option<&str>,
    after: Option<&ContactKey>,
    limit: usize,
) -> Result<(Date, Vec<pb::QueueItem>, Option<String>), String> {
    let served = monday_of(date) - Duration::days(7);
    if kind == QueueKind::Unspecified {
        return Ok((served, Vec::new(), None));
    }
    let keys = board.waiting_keys(kind, after, PAGE_KEYS)?;
    // Contacts from this instant on fall in a later local week than the
    // served one whatever their case's offset (a case's offset is checked
    // to be less than a day from UTC): the walk stops there.
    let later_weeks = (served + Duration::days(7))
        .midnight()
        .assume_utc()
        .unix_timestamp_nanos()
        + 24 * 3_600_000_000_000;
    let past = |(at, _, _): &ContactKey| *at >= later_weeks;
    let mut failed = None;
    let (out, resume) = walk_page(keys, limit, past, |(_, case_id, contact_id)| {
        let facts = board
            .case(case_id)
            .map_err(|e| failed = Some(e))
            .ok()
            .flatten()?;
        let d = facts.dissatisfied_contact(case_id, contact_id)?;
        let case = facts.cases.get(&**case_id)?;
        if business_line.is_some_and(|b| b != case.business_line) {
            return None;
        }
        let week = d
            .contact
            .started_at
            .as_ref()
            .and_then(|s| week_of_contact(s, case.utc_offset_minutes))?;
        if week > served {
            return None;
        }
        let c = &d.classification;
        let chase: Vec<String> = if kind == QueueKind::Callback {
            case.tickets_waiting.iter().cloned().collect()
        } else {
            Vec::new()
        };
        Some(pb::QueueItem {
            case_id: d.case_id.clone(),
            contact_id: c.contact_id.clone(),
            contact_event_id: d.contact.event_id.clone(),
            contacted_at: d.contact.started_at,
            channel: d.contact.channel,
            agent_id: d.contact.agent_id.clone(),
            party: d.contact.party(),
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
        })
    });
    match failed {
        Some(e) => Err(e),
        None => Ok((served, out, resume.as_ref().map(queue_token))),
    }
}

/// Statistics by factor of the dissatisfied contacts of the week containing
/// `date`: a range of the board's week index.
pub fn factor_statistics(
    board: &impl BoardSource,
    date: Date,
    business_line: Option<&str>,
) -> Result<pb::FactorStatistics, String> {
    let monday = monday_of(date);
    let mut rows: std::collections::BTreeMap<i32, pb::FactorCount> = Default::default();
    let mut total = 0;
    for (case_id, contact_id) in board.week_contacts(monday)? {
        let Some(facts) = board.case(&case_id)? else {
            continue;
        };
        let Some(d) = facts.dissatisfied_contact(&case_id, &contact_id) else {
            continue;
        };
        let Some(case) = facts.cases.get(&*case_id) else {
            continue;
        };
        if business_line.is_some_and(|b| b != case.business_line) {
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
    Ok(pb::FactorStatistics {
        week_of: monday.to_string(),
        factors: rows.into_values().collect(),
        total,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::projections::board::Fold;
    use crate::projections::listings::{untoken, SCAN_BUDGET};
    use crate::proto::v1::case_event::Kind;

    /// Seconds of 2020-12-07 (a Monday) 10:00 +08:00, plus `minutes`.
    fn monday_plus(minutes: i64) -> prost_types::Timestamp {
        prost_types::Timestamp {
            seconds: 1_607_306_400 + minutes * 60,
            nanos: 0,
        }
    }

    /// `cases` cases of one dissatisfied contact each in the week of
    /// 2020-12-07, contacted in an order unlike the cases' names.
    fn dissatisfied(cases: usize) -> Fold {
        let mut f = Fold::new();
        for i in 0..cases {
            let case = format!("c{i:04}");
            f.add(&case, "open", Kind::CaseOpened(pb::CaseOpened::default()));
            let minutes = ((i * 7919) % cases) as i64;
            let logged = pb::ContactLogged {
                contact_id: "k1".into(),
                started_at: Some(monday_plus(minutes)),
                ..Default::default()
            };
            f.add(&case, "logged", Kind::ContactLogged(logged));
            let classified = pb::DissatisfactionClassified {
                contact_id: "k1".into(),
                needs_survey: true,
                needs_callback: true,
                factor: pb::DissatisfactionFactor::Attitude as i32,
            };
            f.add(
                &case,
                "classified",
                Kind::DissatisfactionClassified(classified),
            );
        }
        f
    }

    fn all_pages(
        board: &crate::projections::board::Board,
        kind: QueueKind,
        date: Date,
        limit: usize,
    ) -> Vec<pb::QueueItem> {
        let (mut out, mut after) = (Vec::new(), None);
        loop {
            let (_, page, next) = queue(board, kind, date, None, after.as_ref(), limit).unwrap();
            assert!(page.len() <= limit);
            out.extend(page);
            match next {
                None => return out,
                Some(t) => after = Some(queue_token_key(&untoken(&t).unwrap()).unwrap()),
            }
        }
    }

    /// The queue pages walk the contacts still waiting, by contact time,
    /// whatever the page size and across the budget; a survey done, a
    /// reclassification and a callback take a contact off the queues they
    /// no longer belong to; the statistics read the contacts of the week.
    #[test]
    fn queues_walk_the_waiting_contacts_and_statistics_their_week() {
        let n = SCAN_BUDGET + 100;
        let mut f = dissatisfied(n);
        let survey_day = parse_date("2020-12-14").unwrap();
        let callback_day = parse_date("2020-12-17").unwrap();
        for limit in [1, 50, 500, 5_000] {
            let items = all_pages(&f.board, QueueKind::Survey, survey_day, limit);
            assert_eq!(items.len(), n, "pages of {limit}");
            let times: Vec<i64> = items
                .iter()
                .map(|i| i.contacted_at.unwrap().seconds)
                .collect();
            assert!(times.is_sorted(), "pages of {limit}");
        }
        // Not yet served in the contacts' own week: the walk stops at once.
        let (_, early, next) = queue(
            &f.board,
            QueueKind::Survey,
            parse_date("2020-12-09").unwrap(),
            None,
            None,
            50,
        )
        .unwrap();
        assert!(early.is_empty() && next.is_none());

        let survey = pb::SurveyDone {
            contact_id: "k1".into(),
            satisfied: true,
            ..Default::default()
        };
        f.add("c0001", "surveyed", Kind::SurveyDone(survey));
        let no_callback = pb::DissatisfactionClassified {
            contact_id: "k1".into(),
            needs_survey: true,
            needs_callback: false,
            ..Default::default()
        };
        f.add(
            "c0002",
            "reclassified",
            Kind::DissatisfactionClassified(no_callback),
        );
        let called = pb::CallbackCompleted {
            reached: true,
            dissatisfied_contact_id: "k1".into(),
            ..Default::default()
        };
        f.add("c0003", "called", Kind::CallbackCompleted(called));
        let surveys = all_pages(&f.board, QueueKind::Survey, survey_day, 500);
        let callbacks = all_pages(&f.board, QueueKind::Callback, callback_day, 500);
        let cases = |items: &[pb::QueueItem]| -> Vec<String> {
            let mut v: Vec<String> = items.iter().map(|i| i.case_id.clone()).collect();
            v.sort();
            v
        };
        let without = |gone: &[&str]| -> Vec<String> {
            (0..n)
                .map(|i| format!("c{i:04}"))
                .filter(|c| !gone.contains(&c.as_str()))
                .collect()
        };
        assert_eq!(cases(&surveys), without(&["c0001"]));
        assert_eq!(cases(&callbacks), without(&["c0002", "c0003"]));

        let stats = factor_statistics(&f.board, parse_date("2020-12-10").unwrap(), None).unwrap();
        assert_eq!(stats.total as usize, n);
        assert_eq!(stats.factors.len(), 2, "{:?}", stats.factors);
        let attitude = &stats.factors[1];
        assert_eq!(attitude.surveyed, 1);
        assert_eq!(attitude.called_back, 1);
        let other_week =
            factor_statistics(&f.board, parse_date("2020-12-14").unwrap(), None).unwrap();
        assert_eq!(other_week.total, 0);
    }
}
