//! The checks the case rules of several event kinds share: an id that must
//! be new, a contact, demand, promise, ticket or judgement the case must
//! already know, the KF-006 holds. Each kind's `decide` (`events/`) says
//! which apply to it.

use super::error::{ErrorReason, RuleViolation};
use super::state::{CaseState, TicketStage};
use crate::proto::v1 as pb;

/// A new id: refused with `rule` when the case already has `what` `id`.
pub(crate) fn unique(
    set_has: bool,
    rule: ErrorReason,
    what: &str,
    id: &str,
) -> Result<(), RuleViolation> {
    if set_has {
        Err(RuleViolation::new(
            rule,
            format!("{what} {id:?} already exists on this case"),
        ))
    } else {
        Ok(())
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

pub(crate) fn channel_factor(
    state: &CaseState,
    contact: &str,
    factor: i32,
) -> Result<(), RuleViolation> {
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

pub(crate) fn unknown_ticket(id: &str) -> RuleViolation {
    RuleViolation::new(
        ErrorReason::TicketUnknown,
        format!("ticket {id:?} was never submitted on this case"),
    )
}

pub(crate) fn unknown_judgement(id: &str) -> RuleViolation {
    RuleViolation::new(
        ErrorReason::JudgementUnknown,
        format!("judgement {id:?} was never made on this case"),
    )
}

pub(crate) fn known_contact(state: &CaseState, id: &str) -> Result<(), RuleViolation> {
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
pub(crate) fn open_demand(state: &CaseState, id: &str) -> Result<(), RuleViolation> {
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

pub(crate) fn known_demands(state: &CaseState, ids: &[String]) -> Result<(), RuleViolation> {
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
pub(crate) fn no_ticket_waiting(state: &CaseState) -> Result<(), RuleViolation> {
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

/// A callback is recorded once, and needs a promise to answer or a ticket
/// result to deliver.
pub(crate) fn new_callback(
    state: &CaseState,
    callback: &str,
    promise: &str,
    ticket: &str,
) -> Result<(), RuleViolation> {
    unique(
        state.callbacks.contains(callback),
        ErrorReason::CallbackAlreadyRecorded,
        "callback",
        callback,
    )?;
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
