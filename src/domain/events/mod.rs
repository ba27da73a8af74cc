//! One place per event kind. Each file of this folder is one kind of
//! `events.proto`'s `CaseEvent` oneof, and says all the domain knows of it:
//! how a well-formed one looks (`validate`), when a case accepts it
//! (`decide`, and whether a closed case does), what it changes in the case's
//! state (`evolve`), which of its fields are personal (`personal_fields`,
//! what is sealed, masked and erased), and its line in a timeline
//! (`describe`).
//!
//! Why: spread over one `match` per concern, a new kind touched a file per
//! concern, and a catch-all arm in any of them (the personal fields had one)
//! let a kind through half described — its free text stored unsealed, with
//! nothing to say so. Here the [`EventKind`] trait has no default methods,
//! and the table at the bottom names every kind once and expands into
//! matches without a catch-all: a kind added to the oneof does not compile
//! until it is in the table, and it is not in the table until its file
//! gives all of it.

use super::error::RuleViolation;
use super::field_check::Check;
use super::state::CaseState;
use crate::proto::v1::{self as pb, case_event::Kind, CaseEvent};
use std::borrow::Cow;
use std::fmt::Display;

mod appeal_decided;
mod callback_attempted;
mod callback_completed;
mod case_closed;
mod case_opened;
mod case_reopened;
mod case_resolved;
mod contact_logged;
mod demand_declined;
mod demand_recorded;
mod demand_withdrawn;
mod dissatisfaction_classified;
mod escalated;
mod event_corrected;
mod external_complaint_answered;
mod external_complaint_received;
mod note_added;
mod owner_assigned;
mod personal_data_erased;
mod promise_made;
mod survey_done;
mod ticket_appended;
mod ticket_rejected;
mod ticket_result_given;
mod ticket_submitted;
mod violation_appealed;
mod violation_judged;
mod warning_raised;
mod warning_withdrawn;

/// What each kind's file brings into scope.
mod prelude {
    pub(super) use super::{EventKind, PersonalFields};
    pub(super) use crate::domain::error::{ErrorReason, RuleViolation};
    pub(super) use crate::domain::field_check::{Check, Join};
    pub(super) use crate::domain::party::{acting_party, describe};
    pub(super) use crate::domain::rule_checks::*;
    pub(super) use crate::domain::state::{CaseState, CaseStatus, JudgementStage, TicketStage};
    pub(super) use crate::domain::wording::{acted_by, channel, must_act, short};
    pub(super) use crate::proto::v1::{self as pb, case_event::Kind, EscalationLevel, PartyKind};
    pub(super) use std::fmt::{Display, Write as _};
}

/// Everything the domain knows of one event kind. No method has a default:
/// a kind gives each, personal fields included.
pub trait EventKind {
    /// Whether a closed case takes it. A closed case takes what fixes or
    /// reopens its record; anything else waits for a reopen.
    const TAKEN_BY_A_CLOSED_CASE: bool;

    /// Checks its fields' shape, reporting each problem at its path under
    /// `p`. `top_level` is false inside a correction's replacement.
    fn validate(&self, c: &mut Check<'_>, p: &dyn Display, top_level: bool);

    /// Whether a case in `state` (opened, and not closed unless
    /// [`Self::TAKEN_BY_A_CLOSED_CASE`]) accepts it.
    fn decide(&self, state: &CaseState) -> Result<(), RuleViolation>;

    /// What it changes in the case's state once stored.
    fn evolve(&self, state: &mut CaseState);

    /// Each of its personal fields, by name: exactly those `events.proto`
    /// marks personal (a unit test compares the two).
    fn personal_fields<'a>(&'a mut self, out: &mut PersonalFields<'a>);

    /// Its line in a timeline.
    fn describe(&self) -> String;
}

/// The personal fields of an event, with their paths (`customer.phone`,
/// `replacement.summary`), gathered from its kind.
pub struct PersonalFields<'a> {
    prefix: String,
    fields: Vec<(Cow<'static, str>, &'a mut String)>,
}

impl<'a> PersonalFields<'a> {
    /// Every personal field of `event`.
    pub fn of(event: &'a mut CaseEvent) -> Vec<(Cow<'static, str>, &'a mut String)> {
        let mut out = PersonalFields {
            prefix: String::new(),
            fields: Vec::new(),
        };
        out.event(event);
        out.fields
    }

    /// A personal field named `name`.
    pub fn push(&mut self, name: &'static str, value: &'a mut String) {
        let path = if self.prefix.is_empty() {
            Cow::Borrowed(name)
        } else {
            Cow::Owned(format!("{}{name}", self.prefix))
        };
        self.fields.push((path, value));
    }

    /// The personal fields of an event carried in the field `name` (a
    /// correction's replacement).
    pub fn nested(&mut self, name: &str, event: &'a mut CaseEvent) {
        let outer = self.prefix.len();
        self.prefix.push_str(name);
        self.prefix.push('.');
        self.event(event);
        self.prefix.truncate(outer);
    }

    fn event(&mut self, event: &'a mut CaseEvent) {
        if let Some(kind) = event.kind.as_mut() {
            personal_fields(kind, self);
        }
    }
}

impl CaseState {
    /// Applies one stored event to the state: what its kind changes. Events
    /// reaching here were accepted by the rules, so this never fails. (Here
    /// rather than beside the state, so the state does not import the
    /// kinds that import it.)
    pub fn evolve(&mut self, event: &CaseEvent) {
        if let Some(kind) = &event.kind {
            evolve(kind, self);
        }
    }
}

/// Checks an event's shape: that it names a kind, then the kind's own
/// checks, at `path.<oneof field>`.
pub fn validate_event(c: &mut Check<'_>, path: &dyn Display, event: &CaseEvent, top_level: bool) {
    let Some(kind) = &event.kind else {
        c.fail(path, "names no event: set exactly one event kind");
        return;
    };
    let p = super::field_check::Join(path, field_name(kind));
    validate(kind, c, &p, top_level);
}

/// The table of kinds: `Variant => file`, the variant named as the oneof's
/// message (its stored type name), the file as the oneof's field.
macro_rules! event_kinds {
    ($($kind:ident => $file:ident,)*) => {
        /// All event type names, in proto field order.
        pub const EVENT_TYPES: &[&str] = &[$(stringify!($kind)),*];

        /// The stored type name of an event payload.
        pub fn event_type_name(kind: &Kind) -> &'static str {
            match kind {
                $(Kind::$kind(_) => stringify!($kind),)*
            }
        }

        /// The oneof field name of an event payload, for field paths in
        /// errors.
        pub fn field_name(kind: &Kind) -> &'static str {
            match kind {
                $(Kind::$kind(_) => stringify!($file),)*
            }
        }

        /// Whether a closed case takes an event of this kind.
        pub fn taken_by_a_closed_case(kind: &Kind) -> bool {
            match kind {
                $(Kind::$kind(_) => <pb::$kind as EventKind>::TAKEN_BY_A_CLOSED_CASE,)*
            }
        }

        /// One event of every kind, each with its fields at their
        /// defaults, in proto order: for tests that must cover each kind.
        pub fn every_kind() -> Vec<Kind> {
            vec![$(Kind::$kind(Default::default())),*]
        }

        /// The names of the kinds a closed case takes, in proto order.
        pub fn kinds_taken_by_a_closed_case() -> Vec<&'static str> {
            let mut taken = Vec::new();
            $(if <pb::$kind as EventKind>::TAKEN_BY_A_CLOSED_CASE {
                taken.push(stringify!($kind));
            })*
            taken
        }

        fn validate(kind: &Kind, c: &mut Check<'_>, p: &dyn Display, top_level: bool) {
            match kind {
                $(Kind::$kind(e) => e.validate(c, p, top_level),)*
            }
        }

        /// The kind's own rule for a case in `state`.
        pub fn decide(kind: &Kind, state: &CaseState) -> Result<(), RuleViolation> {
            match kind {
                $(Kind::$kind(e) => e.decide(state),)*
            }
        }

        /// What the event changes in its case's state.
        fn evolve(kind: &Kind, state: &mut CaseState) {
            match kind {
                $(Kind::$kind(e) => e.evolve(state),)*
            }
        }

        fn personal_fields<'a>(kind: &'a mut Kind, out: &mut PersonalFields<'a>) {
            match kind {
                $(Kind::$kind(e) => e.personal_fields(out),)*
            }
        }

        /// The event's line in a timeline.
        pub fn describe(kind: &Kind) -> String {
            match kind {
                $(Kind::$kind(e) => e.describe(),)*
            }
        }
    };
}

event_kinds! {
    CaseOpened => case_opened,
    ContactLogged => contact_logged,
    DemandRecorded => demand_recorded,
    PromiseMade => promise_made,
    TicketSubmitted => ticket_submitted,
    TicketRejected => ticket_rejected,
    TicketAppended => ticket_appended,
    TicketResultGiven => ticket_result_given,
    CallbackAttempted => callback_attempted,
    CallbackCompleted => callback_completed,
    DissatisfactionClassified => dissatisfaction_classified,
    SurveyDone => survey_done,
    Escalated => escalated,
    WarningRaised => warning_raised,
    ExternalComplaintReceived => external_complaint_received,
    ViolationJudged => violation_judged,
    ViolationAppealed => violation_appealed,
    AppealDecided => appeal_decided,
    NoteAdded => note_added,
    EventCorrected => event_corrected,
    CaseResolved => case_resolved,
    CaseClosed => case_closed,
    CaseReopened => case_reopened,
    ExternalComplaintAnswered => external_complaint_answered,
    PersonalDataErased => personal_data_erased,
    DemandDeclined => demand_declined,
    DemandWithdrawn => demand_withdrawn,
    OwnerAssigned => owner_assigned,
    WarningWithdrawn => warning_withdrawn,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_names_every_kind_as_the_proto_oneof_does() {
        let pool =
            prost_reflect::DescriptorPool::decode(crate::proto::FILE_DESCRIPTOR_SET).unwrap();
        let event = pool
            .get_message_by_name("complaint_ledger.v1.CaseEvent")
            .unwrap();
        let oneof = event.oneofs().find(|o| o.name() == "kind").unwrap();
        let proto: Vec<(String, String)> = oneof
            .fields()
            .map(|f| match f.kind() {
                prost_reflect::Kind::Message(m) => (m.name().to_string(), f.name().to_string()),
                other => panic!("{} is a {other:?}", f.name()),
            })
            .collect();
        let names: Vec<&str> = proto.iter().map(|(m, _)| m.as_str()).collect();
        assert_eq!(EVENT_TYPES, names.as_slice());
        let note = Kind::NoteAdded(pb::NoteAdded::default());
        assert_eq!(
            (event_type_name(&note), field_name(&note)),
            ("NoteAdded", "note_added")
        );
        assert!(proto.contains(&("NoteAdded".into(), "note_added".into())));
    }

    #[test]
    fn a_closed_case_takes_what_reopens_or_fixes_its_record() {
        assert_eq!(
            kinds_taken_by_a_closed_case(),
            [
                "NoteAdded",
                "EventCorrected",
                "CaseReopened",
                "PersonalDataErased"
            ]
        );
    }

    #[test]
    fn a_replacements_personal_fields_are_named_under_it() {
        let mut event = CaseEvent {
            kind: Some(Kind::EventCorrected(Box::new(pb::EventCorrected {
                corrected_event_id: "e1".into(),
                reason: "typo".into(),
                replacement: Some(Box::new(CaseEvent {
                    kind: Some(Kind::CaseOpened(pb::CaseOpened {
                        summary: "s".into(),
                        customer: Some(pb::CustomerPersonalData::default()),
                        ..Default::default()
                    })),
                })),
            }))),
        };
        let paths: Vec<String> = PersonalFields::of(&mut event)
            .into_iter()
            .map(|(p, _)| p.into_owned())
            .collect();
        assert_eq!(
            paths,
            [
                "replacement.summary",
                "replacement.customer.name",
                "replacement.customer.phone",
                "replacement.customer.account"
            ]
        );
    }
}
