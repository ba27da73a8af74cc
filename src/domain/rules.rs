//! The case rules: which event a case accepts in its current state
//! (`decide`). A refused event is a `FAILED_PRECONDITION` naming the rule.
//! Rules see only the case's own state; a correction's target is checked by
//! the ledger, which can look events up.

use super::error::{ErrorReason, RuleViolation};
use super::state::{CaseState, CaseStatus, JudgementStage, TicketStage};
use crate::proto::v1::{self as pb, case_event::Kind, CaseEvent};

/// Decides whether `event` may be appended to a case in `state`.
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
    if state.status == CaseStatus::Closed
        && !matches!(
            kind,
            Kind::CaseReopened(_)
                | Kind::NoteAdded(_)
                | Kind::EventCorrected(_)
                | Kind::PersonalDataErased(_)
        )
    {
        return Err(RuleViolation::new(
            ErrorReason::CaseClosed,
            "a closed case takes only CaseReopened, NoteAdded or EventCorrected",
        ));
    }
    let unique = |set_has: bool, rule: ErrorReason, what: &str, id: &str| {
        if set_has {
            Err(RuleViolation::new(
                rule,
                format!("{what} {id:?} already exists on this case"),
            ))
        } else {
            Ok(())
        }
    };
    match kind {
        Kind::CaseOpened(_) => Err(RuleViolation::new(
            ErrorReason::CaseAlreadyOpened,
            "the case is already open; a case is opened once",
        )),
        Kind::ContactLogged(e) => unique(
            state.contacts.contains_key(&e.contact_id),
            ErrorReason::ContactAlreadyLogged,
            "contact",
            &e.contact_id,
        ),
        Kind::DemandRecorded(e) => {
            unique(
                state.demands.contains_key(&e.demand_id),
                ErrorReason::DemandAlreadyRecorded,
                "demand",
                &e.demand_id,
            )?;
            known_contact(state, &e.contact_id)
        }
        Kind::PromiseMade(e) => {
            unique(
                state.promises.contains_key(&e.promise_id),
                ErrorReason::PromiseAlreadyMade,
                "promise",
                &e.promise_id,
            )?;
            known_contact(state, &e.contact_id)
        }
        Kind::TicketSubmitted(e) => {
            unique(
                state.tickets.contains_key(&e.ticket_id),
                ErrorReason::TicketAlreadySubmitted,
                "ticket",
                &e.ticket_id,
            )?;
            known_demands(state, &e.demand_ids)
        }
        Kind::TicketRejected(e) => match state.tickets.get(&e.ticket_id) {
            Some(TicketStage::AwaitingReview) => Ok(()),
            Some(_) => Err(RuleViolation::new(
                ErrorReason::TicketNotAwaitingReview,
                format!("ticket {:?} is not waiting for the second line; only a submitted or appended ticket can be rejected", e.ticket_id),
            )),
            None => Err(unknown_ticket(&e.ticket_id)),
        },
        Kind::TicketAppended(e) => {
            if !state.tickets.contains_key(&e.ticket_id) {
                return Err(unknown_ticket(&e.ticket_id));
            }
            known_demands(state, &e.demand_ids)
        }
        Kind::TicketResultGiven(e) => match state.tickets.get(&e.ticket_id) {
            Some(TicketStage::AwaitingReview) => Ok(()),
            Some(TicketStage::Rejected) => Err(RuleViolation::new(
                ErrorReason::TicketRejectedNeedsAppend,
                format!("ticket {:?} was rejected; append to it before a result can be given", e.ticket_id),
            )),
            Some(TicketStage::ResultGiven) => Err(RuleViolation::new(
                ErrorReason::TicketResultAlreadyGiven,
                format!("ticket {:?} already has a result; append to it to ask for another", e.ticket_id),
            )),
            None => Err(unknown_ticket(&e.ticket_id)),
        },
        Kind::CallbackAttempted(e) => {
            unique(state.callbacks.contains(&e.callback_id), ErrorReason::CallbackAlreadyRecorded, "callback", &e.callback_id)?;
            callback_reference(state, &e.promise_id, &e.ticket_id)
        }
        Kind::CallbackCompleted(e) => {
            unique(state.callbacks.contains(&e.callback_id), ErrorReason::CallbackAlreadyRecorded, "callback", &e.callback_id)?;
            callback_reference(state, &e.promise_id, &e.ticket_id)?;
            known_contact(state, &e.dissatisfied_contact_id)?;
            if !e.dissatisfied_contact_id.is_empty() {
                no_ticket_waiting(state)?;
            }
            known_demands(state, &e.demand_ids)
        }
        Kind::DissatisfactionClassified(e) => {
            known_contact(state, &e.contact_id)?;
            channel_factor(state, &e.contact_id, e.factor)
        }
        Kind::SurveyDone(e) => {
            known_contact(state, &e.contact_id)?;
            channel_factor(state, &e.contact_id, e.factor)
        }
        Kind::Escalated(e) => {
            if e.from_level != state.escalation_level as i32 {
                return Err(RuleViolation::new(
                    ErrorReason::EscalationLevelMismatch,
                    format!(
                        "the case is at {}, not at {}",
                        state.escalation_level.as_str_name(),
                        e.from_level().as_str_name()
                    ),
                ));
            }
            if e.to_level <= e.from_level {
                return Err(RuleViolation::new(
                    ErrorReason::EscalationNotUpward,
                    "an escalation goes up the ladder: agent, team lead, manager, client company, outside body",
                ));
            }
            if !e.warning_id.is_empty() && !state.warnings.contains(&e.warning_id) {
                return Err(RuleViolation::new(
                    ErrorReason::WarningUnknown,
                    format!("warning {:?} was not raised on this case", e.warning_id),
                ));
            }
            Ok(())
        }
        Kind::DemandDeclined(e) => open_demand(state, &e.demand_id),
        Kind::DemandWithdrawn(e) => {
            known_contact(state, &e.contact_id)?;
            open_demand(state, &e.demand_id)
        }
        Kind::OwnerAssigned(_) => Ok(()),
        Kind::WarningWithdrawn(e) => {
            if !state.warnings.contains(&e.warning_id) {
                return Err(RuleViolation::new(
                    ErrorReason::WarningUnknown,
                    format!("warning {:?} was not raised on this case", e.warning_id),
                ));
            }
            if state.withdrawn_warnings.contains(&e.warning_id) {
                return Err(RuleViolation::new(
                    ErrorReason::WarningAlreadyWithdrawn,
                    format!("warning {:?} was already withdrawn", e.warning_id),
                ));
            }
            Ok(())
        }
        Kind::WarningRaised(e) => unique(
            state.warnings.contains(&e.warning_id),
            ErrorReason::WarningAlreadyRaised,
            "warning",
            &e.warning_id,
        ),
        Kind::ViolationJudged(e) => unique(
            state.judgements.contains_key(&e.judgement_id),
            ErrorReason::JudgementAlreadyMade,
            "judgement",
            &e.judgement_id,
        ),
        Kind::ViolationAppealed(e) => match state.judgements.get(&e.judgement_id) {
            Some(JudgementStage::Judged { established: true }) => Ok(()),
            Some(JudgementStage::Judged { established: false }) => Err(RuleViolation::new(
                ErrorReason::JudgementNotEstablished,
                "only an established violation can be appealed",
            )),
            Some(_) => Err(RuleViolation::new(
                ErrorReason::JudgementAlreadyAppealed,
                "a judgement is appealed once",
            )),
            None => Err(unknown_judgement(&e.judgement_id)),
        },
        Kind::AppealDecided(e) => match state.judgements.get(&e.judgement_id) {
            Some(JudgementStage::Appealed) => Ok(()),
            Some(_) => Err(RuleViolation::new(
                ErrorReason::JudgementNotAppealed,
                "only an appealed judgement can have its appeal decided",
            )),
            None => Err(unknown_judgement(&e.judgement_id)),
        },
        Kind::CaseResolved(_) => match state.status {
            CaseStatus::Open => Ok(()),
            _ => Err(RuleViolation::new(
                ErrorReason::CaseNotOpen,
                "only an open case can be resolved",
            )),
        },
        Kind::CaseClosed(_) => Ok(()),
        Kind::CaseReopened(_) => match state.status {
            CaseStatus::Open => Err(RuleViolation::new(
                ErrorReason::CaseNotClosed,
                "the case is open; only a resolved or closed case can be reopened",
            )),
            _ => Ok(()),
        },
        Kind::ExternalComplaintAnswered(e) => {
            if state.external_complaints.contains(&e.reference_number) {
                Ok(())
            } else {
                Err(RuleViolation::new(
                    ErrorReason::ExternalComplaintUnknown,
                    format!(
                        "no outside complaint with reference number {:?} was received on this case",
                        e.reference_number
                    ),
                ))
            }
        }
        Kind::PersonalDataErased(e) => {
            if e.customer_id == state.customer_id {
                Ok(())
            } else {
                Err(RuleViolation::new(
                    ErrorReason::ErasureOfAnotherCustomer,
                    format!("the case belongs to customer {:?}, not {:?}", state.customer_id, e.customer_id),
                ))
            }
        }
        Kind::ExternalComplaintReceived(_) | Kind::NoteAdded(_) | Kind::EventCorrected(_) => {
            Ok(())
        }
    }
}

/// KF-006: the QQ channel classifies dissatisfaction with its own eight
/// factors (a subset of the hotline's 1-13).
pub const QQ_FACTORS: [pb::DissatisfactionFactor; 8] = [
    pb::DissatisfactionFactor::Attitude,
    pb::DissatisfactionFactor::Expertise,
    pb::DissatisfactionFactor::RejectionDelay,
    pb::DissatisfactionFactor::Other,
    pb::DissatisfactionFactor::PolicyContent,
    pb::DissatisfactionFactor::CallbackResult,
    pb::DissatisfactionFactor::FeatureSettings,
    pb::DissatisfactionFactor::UserMissetting,
];

fn channel_factor(state: &CaseState, contact: &str, factor: i32) -> Result<(), RuleViolation> {
    let qq = state.contacts.get(contact) == Some(&(pb::Channel::Qq as i32));
    if qq && factor != 0 && !QQ_FACTORS.iter().any(|f| *f as i32 == factor) {
        return Err(RuleViolation::new(
            ErrorReason::FactorNotUsedOnQq,
            format!(
                "contact {contact:?} was on QQ, whose dissatisfaction factors are {}",
                QQ_FACTORS.map(|f| f.as_str_name()).join(", ")
            ),
        ));
    }
    Ok(())
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

fn unknown_ticket(id: &str) -> RuleViolation {
    RuleViolation::new(
        ErrorReason::TicketUnknown,
        format!("ticket {id:?} was never submitted on this case"),
    )
}

fn unknown_judgement(id: &str) -> RuleViolation {
    RuleViolation::new(
        ErrorReason::JudgementUnknown,
        format!("judgement {id:?} was never made on this case"),
    )
}

fn known_contact(state: &CaseState, id: &str) -> Result<(), RuleViolation> {
    if id.is_empty() || state.contacts.contains_key(id) {
        Ok(())
    } else {
        Err(RuleViolation::new(
            ErrorReason::ContactUnknown,
            format!("contact {id:?} was never logged on this case"),
        ))
    }
}

/// A demand that exists and was not yet declined or withdrawn.
fn open_demand(state: &CaseState, id: &str) -> Result<(), RuleViolation> {
    match state.demands.get(id) {
        Some(true) => Ok(()),
        Some(false) => Err(RuleViolation::new(
            ErrorReason::DemandEnded,
            format!("demand {id:?} was already declined or withdrawn"),
        )),
        None => Err(RuleViolation::new(
            ErrorReason::DemandUnknown,
            format!("demand {id:?} was never recorded on this case"),
        )),
    }
}

fn known_demands(state: &CaseState, ids: &[String]) -> Result<(), RuleViolation> {
    match ids.iter().find(|d| !state.demands.contains_key(*d)) {
        None => Ok(()),
        Some(d) => Err(RuleViolation::new(
            ErrorReason::DemandUnknown,
            format!("demand {d:?} was never recorded on this case"),
        )),
    }
}

/// KF-006: a dissatisfied contact is called back only once the second line
/// has given its result — the held callback waits in the queue with the
/// tickets to chase. Whatever the callback names (the contact alone, or a
/// ticket as well), a ticket of the case still without a result holds it.
fn no_ticket_waiting(state: &CaseState) -> Result<(), RuleViolation> {
    let mut waiting: Vec<&String> = state
        .tickets
        .iter()
        .filter(|(_, stage)| !matches!(stage, TicketStage::ResultGiven))
        .map(|(id, _)| id)
        .collect();
    if waiting.is_empty() {
        return Ok(());
    }
    waiting.sort();
    Err(RuleViolation::new(
        ErrorReason::TicketHasNoResult,
        format!(
            "ticket {} of this case has no result yet; a dissatisfied contact is called back after the result (KF-006): chase the second line first",
            waiting
                .iter()
                .map(|t| format!("{t:?}"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    ))
}

/// A callback needs a promise to answer or a ticket result to deliver.
fn callback_reference(state: &CaseState, promise: &str, ticket: &str) -> Result<(), RuleViolation> {
    if !promise.is_empty() && !state.promises.contains_key(promise) {
        return Err(RuleViolation::new(
            ErrorReason::PromiseUnknown,
            format!("promise {promise:?} was never made on this case"),
        ));
    }
    if !ticket.is_empty() {
        match state.tickets.get(ticket) {
            None => return Err(unknown_ticket(ticket)),
            Some(TicketStage::ResultGiven) => {}
            Some(_) => {
                return Err(RuleViolation::new(
                    ErrorReason::TicketHasNoResult,
                    format!("ticket {ticket:?} has no result yet; chase the second line before calling back"),
                ))
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
