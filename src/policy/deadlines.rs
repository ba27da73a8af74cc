//! Deadlines the server computes when an event is appended: a promise's due
//! time from "within N working days", an outside complaint's answer and
//! settlement deadlines, an agent's 48-hour contact and 2-working-day appeal
//! deadlines. Each is stamped into the event with the calendar version that
//! computed it, so the stored event (and every replay of it) carries the
//! answer, and a later calendar change cannot move a deadline.

use super::Policy;
use crate::domain::RuleViolation;
use crate::proto::v1::{case_event::Kind, CaseEvent};
use crate::time::{nanos_ts, ts_nanos};

fn uncovered(e: super::calendar::CalendarError) -> RuleViolation {
    RuleViolation::new("calendar_does_not_cover", e.to_string())
}

impl Policy {
    /// Stamps the deadlines of `event`, which happened at `occurred_at`
    /// (nanoseconds) on a case of `business_line`. A correction's
    /// replacement is stamped by the caller with the corrected event's time.
    pub fn stamp_deadlines(
        &self,
        event: &mut CaseEvent,
        occurred_at: i128,
        business_line: &str,
    ) -> Result<(), RuleViolation> {
        let cal = self.calendar_for(business_line);
        match event.kind.as_mut() {
            Some(Kind::PromiseMade(p)) if p.working_days > 0 && p.due_at.is_none() => {
                let due = cal
                    .add_working_days(occurred_at, p.working_days)
                    .map_err(uncovered)?;
                p.due_at = Some(nanos_ts(due));
                p.due_calendar = cal.stamp();
            }
            Some(Kind::ExternalComplaintReceived(x)) => {
                let rules = &self.config.external_complaints;
                let mut computed = false;
                if x.respond_by.is_none() {
                    let d = cal
                        .add_working_days(occurred_at, rules.respond_within_working_days)
                        .map_err(uncovered)?;
                    x.respond_by = Some(nanos_ts(d));
                    computed = true;
                }
                if x.resolve_by.is_none() {
                    let d = cal
                        .add_working_days(occurred_at, rules.resolve_within_working_days)
                        .map_err(uncovered)?;
                    x.resolve_by = Some(nanos_ts(d));
                    computed = true;
                }
                if computed {
                    x.deadline_calendar = cal.stamp();
                }
            }
            Some(Kind::ViolationJudged(j)) => {
                if let Some(notified) = j.notified_at.as_ref().map(ts_nanos) {
                    let rules = &self.config.agents;
                    let hours = i128::from(rules.contact_deadline_hours) * 3_600_000_000_000;
                    j.contact_deadline = Some(nanos_ts(notified + hours));
                    let appeal = cal
                        .add_working_days(notified, rules.appeal_working_days)
                        .map_err(uncovered)?;
                    j.appeal_deadline = Some(nanos_ts(appeal));
                    j.deadline_calendar = cal.stamp();
                }
            }
            _ => {}
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::v1 as pb;
    use crate::time::{format_local, parse_rfc3339};

    fn at(s: &str) -> i128 {
        ts_nanos(&parse_rfc3339(s).unwrap())
    }

    #[test]
    fn a_working_day_promise_gets_its_due_time_and_calendar() {
        let policy = Policy::default();
        let mut e = CaseEvent {
            kind: Some(Kind::PromiseMade(pb::PromiseMade {
                promise_id: "p".into(),
                working_days: 2,
                ..Default::default()
            })),
        };
        policy
            .stamp_deadlines(&mut e, at("2020-12-03T01:51:29+08:00"), "qidian")
            .unwrap();
        let Some(Kind::PromiseMade(p)) = e.kind else {
            panic!()
        };
        assert_eq!(
            format_local(&p.due_at.unwrap(), 480),
            "2020-12-07 18:00:00 +08:00"
        );
        assert_eq!(p.due_calendar, "cn-mainland@2026.1");
    }

    #[test]
    fn judgements_get_contact_and_appeal_deadlines() {
        let policy = Policy::default();
        // Notified on Friday 2020-12-04 10:00: 48 h -> Sunday 10:00; two
        // working days -> Tuesday 12-08 close of business.
        let mut e = CaseEvent {
            kind: Some(Kind::ViolationJudged(pb::ViolationJudged {
                notified_at: parse_rfc3339("2020-12-04T10:00:00+08:00"),
                ..Default::default()
            })),
        };
        policy.stamp_deadlines(&mut e, 0, "").unwrap();
        let Some(Kind::ViolationJudged(j)) = e.kind else {
            panic!()
        };
        assert_eq!(
            format_local(&j.contact_deadline.unwrap(), 480),
            "2020-12-06 10:00:00 +08:00"
        );
        assert_eq!(
            format_local(&j.appeal_deadline.unwrap(), 480),
            "2020-12-08 18:00:00 +08:00"
        );
    }

    #[test]
    fn outside_complaints_get_samr_deadlines_unless_the_letter_states_one() {
        let policy = Policy::default();
        let mut e = CaseEvent {
            kind: Some(Kind::ExternalComplaintReceived(
                pb::ExternalComplaintReceived {
                    respond_by: parse_rfc3339("2020-12-10T12:00:00+08:00"),
                    ..Default::default()
                },
            )),
        };
        policy
            .stamp_deadlines(&mut e, at("2020-12-03T10:00:00+08:00"), "")
            .unwrap();
        let Some(Kind::ExternalComplaintReceived(x)) = e.kind else {
            panic!()
        };
        assert_eq!(
            format_local(&x.respond_by.unwrap(), 480),
            "2020-12-10 12:00:00 +08:00"
        );
        // 45 working days from Thu 2020-12-03, across New Year's Day 2021.
        assert_eq!(
            format_local(&x.resolve_by.unwrap(), 480),
            "2021-02-05 18:00:00 +08:00"
        );
        assert_eq!(x.deadline_calendar, "cn-mainland@2026.1");
    }

    #[test]
    fn a_date_the_calendar_does_not_cover_is_refused() {
        let policy = Policy::default();
        let mut e = CaseEvent {
            kind: Some(Kind::PromiseMade(pb::PromiseMade {
                working_days: 1,
                ..Default::default()
            })),
        };
        let v = policy
            .stamp_deadlines(&mut e, at("2019-06-03T10:00:00+08:00"), "")
            .unwrap_err();
        assert_eq!(v.rule, "calendar_does_not_cover");
        assert!(v.description.contains("2020-2026"), "{}", v.description);
    }
}
