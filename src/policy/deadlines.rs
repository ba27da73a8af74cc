//! Deadlines the server computes when an event is appended: a promise's due
//! time from "within N working days", an outside complaint's answer and
//! settlement deadlines, an agent's 48-hour contact and 2-working-day appeal
//! deadlines. Each is stamped into the event with the calendar version that
//! computed it, so the stored event (and every replay of it) carries the
//! answer, and a later calendar change cannot move a deadline.
//!
//! A deadline reaching into a year the official notices do not cover yet
//! is computed from the statutory holidays and stamped provisional (see
//! `super::provisional`); [`super::pending_deadlines`] corrects it once the
//! notice is loaded.
//!
//! Recording never waits for the calendar. A deadline whose date the
//! calendar does not cover even provisionally (a 45-working-day deadline set in November
//! runs into a year whose holiday notice may not be published) is left
//! empty, never guessed, and the event says why in its `*_pending` field;
//! the event itself is recorded. A correction of it recorded once the
//! calendar covers the date computes the deadline as of the original event
//! (for promises and judgements, [`super::pending_deadlines`] records it
//! as the server starts).

use super::calendar::{Calendar, CalendarError, Deadline};
use super::Policy;
use crate::proto::v1::{case_event::Kind, CaseEvent};
use crate::time::{nanos_ts, ts_nanos};

/// Deadlines left pending in one event, as `field: reason` lines.
#[derive(Default)]
struct Pending(Vec<String>);

impl Pending {
    /// The deadline, or `None` with the reason noted under `field`;
    /// `provisional` turns true when it used a provisional year.
    fn compute(
        &mut self,
        field: &str,
        r: Result<Deadline, CalendarError>,
        provisional: &mut bool,
    ) -> Option<prost_types::Timestamp> {
        match r {
            Ok(d) => {
                *provisional |= d.provisional;
                Some(nanos_ts(d.at))
            }
            Err(e) => {
                self.0.push(format!("{field}: {e}"));
                None
            }
        }
    }

    fn into_reason(self) -> String {
        self.0.join("; ")
    }
}

impl Policy {
    /// Stamps the deadlines of `event`, which happened at `occurred_at`
    /// (nanoseconds) on a case of `business_line`. A correction's
    /// replacement is stamped by the caller with the corrected event's time.
    /// A deadline the calendar cannot compute yet is left pending (see the
    /// module doc); nothing here refuses an event.
    pub fn stamp_deadlines(&self, event: &mut CaseEvent, occurred_at: i128, business_line: &str) {
        let cal: &Calendar = self.calendar_for(business_line);
        let mut pending = Pending::default();
        match event.kind.as_mut() {
            Some(Kind::PromiseMade(p)) if p.working_days > 0 && p.due_at.is_none() => {
                let mut provisional = false;
                p.due_at = pending.compute(
                    "due_at",
                    cal.deadline(occurred_at, p.working_days),
                    &mut provisional,
                );
                p.due_calendar = cal.stamp();
                p.due_pending = pending.into_reason();
                p.due_provisional = provisional;
            }
            Some(Kind::ExternalComplaintReceived(x)) => {
                let rules = &self.config.external_complaints;
                let mut computed = false;
                let mut provisional = false;
                if x.respond_by.is_none() {
                    x.respond_by = pending.compute(
                        "respond_by",
                        cal.deadline(occurred_at, rules.respond_within_working_days),
                        &mut provisional,
                    );
                    computed |= x.respond_by.is_some();
                }
                if x.resolve_by.is_none() {
                    x.resolve_by = pending.compute(
                        "resolve_by",
                        cal.deadline(occurred_at, rules.resolve_within_working_days),
                        &mut provisional,
                    );
                    computed |= x.resolve_by.is_some();
                }
                if computed {
                    x.deadline_calendar = cal.stamp();
                }
                x.deadline_pending = pending.into_reason();
                x.deadline_provisional = provisional;
            }
            Some(Kind::ViolationJudged(j)) => {
                if let Some(notified) = j.notified_at.as_ref().map(ts_nanos) {
                    let rules = &self.config.agents;
                    let hours = i128::from(rules.contact_deadline_hours) * 3_600_000_000_000;
                    j.contact_deadline = Some(nanos_ts(notified + hours));
                    let mut provisional = false;
                    j.appeal_deadline = pending.compute(
                        "appeal_deadline",
                        cal.deadline(notified, rules.appeal_working_days),
                        &mut provisional,
                    );
                    if j.appeal_deadline.is_some() {
                        j.deadline_calendar = cal.stamp();
                    }
                    j.deadline_pending = pending.into_reason();
                    j.deadline_provisional = provisional;
                }
            }
            _ => {}
        }
    }
}

/// Which deadlines of an event with deadlines a client may give or leave
/// to the server (an outside complaint's), it left to the server; read
/// before stamping. Other server-set fields are never the client's.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LeftToServer {
    respond_by: bool,
    resolve_by: bool,
}

impl LeftToServer {
    pub fn of(event: &CaseEvent) -> Self {
        match event.kind.as_ref() {
            Some(Kind::ExternalComplaintReceived(x)) => Self {
                respond_by: x.respond_by.is_none(),
                resolve_by: x.resolve_by.is_none(),
            },
            Some(Kind::EventCorrected(c)) => {
                c.replacement.as_deref().map(Self::of).unwrap_or_default()
            }
            _ => Self::default(),
        }
    }
}

/// `event`, stamped now, with the server-set deadline fields `stored` got
/// when it was first recorded instead: how a retry is told from new content
/// after the calendar changed (a pending deadline now computable, a newer
/// version's stamp). Every field the client gave stays as it gave it.
pub fn with_stamps_of(event: &CaseEvent, stored: &CaseEvent, left: LeftToServer) -> CaseEvent {
    let mut out = event.clone();
    match (out.kind.as_mut(), stored.kind.as_ref()) {
        (Some(Kind::PromiseMade(p)), Some(Kind::PromiseMade(s))) => {
            if p.working_days > 0 {
                p.due_at = s.due_at;
            }
            p.due_calendar.clone_from(&s.due_calendar);
            p.due_pending.clone_from(&s.due_pending);
            p.due_provisional = s.due_provisional;
        }
        (Some(Kind::ExternalComplaintReceived(x)), Some(Kind::ExternalComplaintReceived(s))) => {
            if left.respond_by {
                x.respond_by = s.respond_by;
            }
            if left.resolve_by {
                x.resolve_by = s.resolve_by;
            }
            x.deadline_calendar.clone_from(&s.deadline_calendar);
            x.deadline_pending.clone_from(&s.deadline_pending);
            x.deadline_provisional = s.deadline_provisional;
        }
        (Some(Kind::ViolationJudged(j)), Some(Kind::ViolationJudged(s))) => {
            j.contact_deadline = s.contact_deadline;
            j.appeal_deadline = s.appeal_deadline;
            j.deadline_calendar.clone_from(&s.deadline_calendar);
            j.deadline_pending.clone_from(&s.deadline_pending);
            j.deadline_provisional = s.deadline_provisional;
        }
        (Some(Kind::EventCorrected(c)), Some(Kind::EventCorrected(s))) => {
            if let (Some(r), Some(sr)) = (c.replacement.as_deref_mut(), s.replacement.as_deref()) {
                *r = with_stamps_of(r, sr, left);
            }
        }
        _ => {}
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::v1 as pb;
    use crate::time::{format_local, parse_rfc3339};

    fn at(s: &str) -> i128 {
        ts_nanos(&parse_rfc3339(s).unwrap())
    }

    fn local(ts: Option<prost_types::Timestamp>) -> String {
        format_local(&ts.unwrap(), 480)
    }

    /// A judgement notified at `notified`, as the shipped policy stamps it.
    fn judged(notified: &str) -> Kind {
        let j = pb::ViolationJudged {
            notified_at: parse_rfc3339(notified),
            ..Default::default()
        };
        stamped(Kind::ViolationJudged(j), 0, "")
    }

    /// `kind` as the shipped policy stamps it, happening at `at`.
    fn stamped(kind: Kind, at: i128, business_line: &str) -> Kind {
        let mut e = CaseEvent { kind: Some(kind) };
        Policy::default().stamp_deadlines(&mut e, at, business_line);
        e.kind.unwrap()
    }

    #[test]
    fn a_working_day_promise_gets_its_due_time_and_calendar() {
        let Kind::PromiseMade(p) = stamped(
            Kind::PromiseMade(pb::PromiseMade {
                promise_id: "p".into(),
                working_days: 2,
                ..Default::default()
            }),
            at("2020-12-03T01:51:29+08:00"),
            "qidian",
        ) else {
            panic!()
        };
        assert_eq!(local(p.due_at), "2020-12-07 18:00:00 +08:00");
        assert_eq!(p.due_calendar, "cn-mainland@2026.1");
    }

    #[test]
    fn judgements_get_contact_and_appeal_deadlines() {
        // Notified on Friday 2020-12-04 10:00: 48 h -> Sunday 10:00; two
        // working days -> Tuesday 12-08 close of business.
        let Kind::ViolationJudged(j) = judged("2020-12-04T10:00:00+08:00") else {
            panic!()
        };
        assert_eq!(local(j.contact_deadline), "2020-12-06 10:00:00 +08:00");
        assert_eq!(local(j.appeal_deadline), "2020-12-08 18:00:00 +08:00");
    }

    #[test]
    fn outside_complaints_get_samr_deadlines_unless_the_letter_states_one() {
        let Kind::ExternalComplaintReceived(x) = stamped(
            Kind::ExternalComplaintReceived(pb::ExternalComplaintReceived {
                respond_by: parse_rfc3339("2020-12-10T12:00:00+08:00"),
                ..Default::default()
            }),
            at("2020-12-03T10:00:00+08:00"),
            "",
        ) else {
            panic!()
        };
        assert_eq!(local(x.respond_by), "2020-12-10 12:00:00 +08:00");
        // 45 working days from Thu 2020-12-03, across New Year's Day 2021.
        assert_eq!(local(x.resolve_by), "2021-02-05 18:00:00 +08:00");
        assert_eq!(x.deadline_calendar, "cn-mainland@2026.1");
    }

    #[test]
    fn a_promise_past_the_notices_is_due_provisionally() {
        // Wednesday 2026-12-30: the 2nd working day after it is in 2027,
        // which no notice covers yet: New Year's Day off by the statute,
        // then the weekend, so Monday 01-04.
        let promise = Kind::PromiseMade(pb::PromiseMade {
            working_days: 2,
            ..Default::default()
        });
        let Kind::PromiseMade(p) = stamped(promise, at("2026-12-30T10:00:00+08:00"), "") else {
            panic!()
        };
        assert_eq!(local(p.due_at), "2027-01-04 18:00:00 +08:00");
        assert!(p.due_provisional);
        assert_eq!(p.due_calendar, "cn-mainland@2026.1");
        assert_eq!(p.due_pending, "");
    }

    /// The shipped policy with the shipped calendar as version 2026.9,
    /// without provisional years.
    fn without_provisional_years(dir: &std::path::Path) -> Policy {
        let text = include_str!("../../calendars/cn-mainland.toml")
            .replace("version = \"2026.1\"", "version = \"2026.9\"")
            .lines()
            .filter(|l| !l.starts_with("provisional ="))
            .collect::<Vec<_>>()
            .join("\n");
        std::fs::write(dir.join("cn.toml"), text).unwrap();
        let mut config = super::super::config::PolicyConfig::default();
        config.calendars.directory = Some(dir.to_path_buf());
        Policy::new(config).unwrap()
    }

    #[test]
    fn a_promise_past_the_calendar_is_kept_pending_never_guessed() {
        let dir = tempfile::tempdir().unwrap();
        let policy = without_provisional_years(dir.path());
        let mut e = CaseEvent {
            kind: Some(Kind::PromiseMade(pb::PromiseMade {
                working_days: 2,
                ..Default::default()
            })),
        };
        policy.stamp_deadlines(&mut e, at("2026-12-30T10:00:00+08:00"), "");
        let Some(Kind::PromiseMade(p)) = e.kind else {
            panic!()
        };
        assert_eq!(p.due_at, None);
        assert!(!p.due_provisional);
        assert_eq!(p.due_calendar, "cn-mainland@2026.9");
        assert!(
            p.due_pending.starts_with("due_at: ")
                && p.due_pending.contains("2020-2026")
                && p.due_pending.contains("2027-01-01"),
            "{}",
            p.due_pending
        );
    }

    #[test]
    fn an_outside_complaint_keeps_the_deadline_it_can_compute() {
        // Monday 2026-11-23: 7 working days end in December, 45 in 2027.
        let complaint = Kind::ExternalComplaintReceived(Default::default());
        let Kind::ExternalComplaintReceived(x) =
            stamped(complaint, at("2026-11-23T10:00:00+08:00"), "")
        else {
            panic!()
        };
        assert_eq!(local(x.respond_by), "2026-12-02 18:00:00 +08:00");
        // 45 working days reach 2027: provisional, by the statute alone.
        assert_eq!(local(x.resolve_by), "2027-01-26 18:00:00 +08:00");
        assert!(x.deadline_provisional);
        assert_eq!(x.deadline_pending, "");
        // Without provisional years, it is left pending.
        let dir = tempfile::tempdir().unwrap();
        let mut e = CaseEvent {
            kind: Some(Kind::ExternalComplaintReceived(Default::default())),
        };
        without_provisional_years(dir.path()).stamp_deadlines(
            &mut e,
            at("2026-11-23T10:00:00+08:00"),
            "",
        );
        let Some(Kind::ExternalComplaintReceived(x)) = e.kind else {
            panic!()
        };
        assert_eq!(local(x.respond_by), "2026-12-02 18:00:00 +08:00");
        assert_eq!(x.resolve_by, None);
        assert!(!x.deadline_provisional);
        assert_eq!(x.deadline_calendar, "cn-mainland@2026.9");
        assert!(
            x.deadline_pending.starts_with("resolve_by: "),
            "{}",
            x.deadline_pending
        );
        assert!(
            !x.deadline_pending.contains("respond_by"),
            "{}",
            x.deadline_pending
        );
    }

    #[test]
    fn a_judgement_before_the_calendar_keeps_its_contact_deadline() {
        let Kind::ViolationJudged(j) = judged("2019-06-03T10:00:00+08:00") else {
            panic!()
        };
        assert_eq!(local(j.contact_deadline), "2019-06-05 10:00:00 +08:00");
        assert_eq!(j.appeal_deadline, None);
        assert_eq!(j.deadline_calendar, "");
        assert!(
            j.deadline_pending.starts_with("appeal_deadline: ")
                && j.deadline_pending.contains("2019-06-03"),
            "{}",
            j.deadline_pending
        );
    }

    #[test]
    fn a_retry_takes_the_original_stamps_but_keeps_what_the_client_gave() {
        let letter = |respond_by: &str| {
            Kind::ExternalComplaintReceived(pb::ExternalComplaintReceived {
                respond_by: parse_rfc3339(respond_by),
                ..Default::default()
            })
        };
        let at = at("2020-12-03T10:00:00+08:00");
        let mut stored = CaseEvent {
            kind: Some(stamped(letter("2020-12-10T12:00:00+08:00"), at, "")),
        };
        if let Some(Kind::ExternalComplaintReceived(x)) = stored.kind.as_mut() {
            x.deadline_calendar = "cn-mainland@older".into();
        }
        // The same letter: equal once the original stamps are taken.
        let retry = CaseEvent {
            kind: Some(letter("2020-12-10T12:00:00+08:00")),
        };
        let left = LeftToServer::of(&retry);
        let now = CaseEvent {
            kind: Some(stamped(retry.kind.unwrap(), at, "")),
        };
        assert_ne!(now, stored);
        assert_eq!(with_stamps_of(&now, &stored, left), stored);
        // Another date in the letter stays another date.
        let other = CaseEvent {
            kind: Some(stamped(letter("2020-12-11T12:00:00+08:00"), at, "")),
        };
        assert_ne!(with_stamps_of(&other, &stored, left), stored);
    }
}
