//! The case rules: which event a case accepts in its current state
//! (`decide`). A refused event is a `FAILED_PRECONDITION` naming the rule.
//! Rules see only the case's own state; a correction's target is checked by
//! the ledger, which can look events up.

use super::error::{ErrorReason, RuleViolation};
use super::events;
pub use super::rule_checks::QQ_FACTORS;
use super::state::CaseState;
use super::state::CaseStatus;
use crate::proto::v1::{case_event::Kind, CaseEvent};

/// Decides whether `event` may be appended to a case in `state`: the rules
/// every kind shares here, then the kind's own (`events/`).
pub fn decide(state: &CaseState, event: &CaseEvent) -> Result<(), RuleViolation> {
    let Some(kind) = &event.kind else {
        return Err(RuleViolation::new(
            ErrorReason::EventMissing,
            "the event names no kind",
        ));
    };
    if !state.exists() {
        return match kind {
            Kind::CaseOpened(_) => Ok(()),
            _ => Err(RuleViolation::new(
                ErrorReason::CaseNotOpened,
                "a case must be opened (CaseOpened) before anything else is recorded on it",
            )),
        };
    }
    if state.status == CaseStatus::Closed && !events::taken_by_a_closed_case(kind) {
        return Err(RuleViolation::new(
            ErrorReason::CaseClosed,
            format!(
                "a closed case takes only {}",
                events::kinds_taken_by_a_closed_case().join(", ")
            ),
        ));
    }
    events::decide(kind, state)
}

/// Rules that depend on when the event happened (`occurred_at`, nanoseconds
/// since the epoch), checked after [`decide`].
pub fn decide_at(
    state: &CaseState,
    event: &CaseEvent,
    occurred_at: i128,
) -> Result<(), RuleViolation> {
    if let Some(Kind::ViolationAppealed(e)) = &event.kind {
        if let Some(deadline) = state.appeal_deadlines.get(&e.judgement_id) {
            if occurred_at > *deadline {
                return Err(RuleViolation::new(
                    ErrorReason::AppealWindowClosed,
                    format!(
                        "judgement {:?} could be appealed until {} (2 working days after notice)",
                        e.judgement_id,
                        crate::time::format_local(
                            &crate::time::nanos_ts(*deadline),
                            crate::time::DEFAULT_UTC_OFFSET_MINUTES
                        )
                    ),
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::v1 as pb;

    fn ev(kind: Kind) -> CaseEvent {
        CaseEvent { kind: Some(kind) }
    }

    fn opened() -> CaseState {
        let mut s = CaseState::default();
        s.evolve(&ev(Kind::CaseOpened(pb::CaseOpened::default())));
        s.version = 1;
        s
    }

    #[test]
    fn nothing_before_the_case_is_opened() {
        let s = CaseState::default();
        let e = decide(&s, &ev(Kind::NoteAdded(pb::NoteAdded { text: "x".into() }))).unwrap_err();
        assert_eq!(e.rule, ErrorReason::CaseNotOpened);
        assert!(decide(&s, &ev(Kind::CaseOpened(pb::CaseOpened::default()))).is_ok());
    }

    #[test]
    fn a_rejection_needs_a_ticket_waiting_for_review() {
        let mut s = opened();
        let reject = ev(Kind::TicketRejected(pb::TicketRejected {
            ticket_id: "t1".into(),
            reason: "incomplete".into(),
            missing_fields: vec![],
        }));
        assert_eq!(
            decide(&s, &reject).unwrap_err().rule,
            ErrorReason::TicketUnknown
        );
        s.evolve(&ev(Kind::TicketSubmitted(pb::TicketSubmitted {
            ticket_id: "t1".into(),
            ..Default::default()
        })));
        assert!(decide(&s, &reject).is_ok());
        s.evolve(&reject);
        assert_eq!(
            decide(&s, &reject).unwrap_err().rule,
            ErrorReason::TicketNotAwaitingReview
        );
    }

    #[test]
    fn a_closed_case_takes_only_reopen_note_or_correction() {
        let mut s = opened();
        s.evolve(&ev(Kind::CaseClosed(pb::CaseClosed::default())));
        let contact = ev(Kind::ContactLogged(pb::ContactLogged {
            contact_id: "c1".into(),
            ..Default::default()
        }));
        assert_eq!(
            decide(&s, &contact).unwrap_err().rule,
            ErrorReason::CaseClosed
        );
        assert!(decide(&s, &ev(Kind::NoteAdded(pb::NoteAdded { text: "n".into() }))).is_ok());
        assert!(decide(
            &s,
            &ev(Kind::CaseReopened(pb::CaseReopened { reason: "r".into() }))
        )
        .is_ok());
    }

    #[test]
    fn escalation_goes_up_from_the_current_level() {
        let s = opened();
        let esc = |from, to| {
            ev(Kind::Escalated(pb::Escalated {
                from_level: from as i32,
                to_level: to as i32,
                reason: "r".into(),
                ..Default::default()
            }))
        };
        use pb::EscalationLevel as L;
        assert!(decide(&s, &esc(L::Agent, L::TeamLead)).is_ok());
        assert_eq!(
            decide(&s, &esc(L::Manager, L::ClientCompany))
                .unwrap_err()
                .rule,
            ErrorReason::EscalationLevelMismatch
        );
        assert_eq!(
            decide(&s, &esc(L::Agent, L::Agent)).unwrap_err().rule,
            ErrorReason::EscalationNotUpward
        );
    }

    #[test]
    fn a_callback_needs_a_known_promise_or_a_ticket_result() {
        let mut s = opened();
        let cb = |promise: &str, ticket: &str| {
            ev(Kind::CallbackCompleted(pb::CallbackCompleted {
                callback_id: format!("cb-{promise}-{ticket}"),
                promise_id: promise.into(),
                ticket_id: ticket.into(),
                ..Default::default()
            }))
        };
        assert_eq!(
            decide(&s, &cb("p1", "")).unwrap_err().rule,
            ErrorReason::PromiseUnknown
        );
        s.evolve(&ev(Kind::TicketSubmitted(pb::TicketSubmitted {
            ticket_id: "t1".into(),
            ..Default::default()
        })));
        assert_eq!(
            decide(&s, &cb("", "t1")).unwrap_err().rule,
            ErrorReason::TicketHasNoResult
        );
    }
}
