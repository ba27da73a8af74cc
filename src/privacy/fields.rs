//! The personal fields of each event, exactly those `events.proto` marks
//! "personal": customer name, phone, account, and free text that may quote
//! them. Everything that encrypts, masks or decrypts goes through this list.

use crate::proto::v1::{case_event::Kind, CaseEvent};
use std::borrow::Cow;

/// Every personal field of an event, with its path (`customer.phone`,
/// `replacement.summary`), as mutable strings.
pub fn personal_fields_mut(event: &mut CaseEvent) -> Vec<(Cow<'static, str>, &mut String)> {
    let mut out = Vec::new();
    collect(event, "", &mut out);
    out
}

fn collect<'a>(
    event: &'a mut CaseEvent,
    prefix: &str,
    out: &mut Vec<(Cow<'static, str>, &'a mut String)>,
) {
    let Some(kind) = event.kind.as_mut() else {
        return;
    };
    let mut push = |name: &'static str, v: &'a mut String| {
        let path = if prefix.is_empty() {
            Cow::Borrowed(name)
        } else {
            Cow::Owned(format!("{prefix}{name}"))
        };
        out.push((path, v))
    };
    match kind {
        Kind::CaseOpened(e) => {
            push("summary", &mut e.summary);
            if let Some(c) = e.customer.as_mut() {
                push("customer.name", &mut c.name);
                push("customer.phone", &mut c.phone);
                push("customer.account", &mut c.account);
            }
        }
        Kind::ContactLogged(e) => push("summary", &mut e.summary),
        Kind::DemandRecorded(e) => push("description", &mut e.description),
        Kind::TicketSubmitted(e) => push("content", &mut e.content),
        Kind::TicketAppended(e) => push("addition", &mut e.addition),
        Kind::TicketResultGiven(e) => push("result", &mut e.result),
        Kind::CallbackCompleted(e) => push("outcome", &mut e.outcome),
        Kind::SurveyDone(e) => push("notes", &mut e.notes),
        Kind::ExternalComplaintReceived(e) => push("summary", &mut e.summary),
        Kind::ExternalComplaintAnswered(e) => push("answer", &mut e.answer),
        Kind::NoteAdded(e) => push("text", &mut e.text),
        Kind::CaseResolved(e) => push("resolution", &mut e.resolution),
        Kind::DemandDeclined(e) => push("reason", &mut e.reason),
        Kind::DemandWithdrawn(e) => push("reason", &mut e.reason),
        Kind::EventCorrected(c) => {
            if let Some(r) = c.replacement.as_deref_mut() {
                collect(r, &format!("{prefix}replacement."), out);
            }
        }
        // No personal field: listed one by one, so a new kind does not
        // compile until someone says what of it is personal.
        Kind::PromiseMade(_)
        | Kind::TicketRejected(_)
        | Kind::CallbackAttempted(_)
        | Kind::DissatisfactionClassified(_)
        | Kind::Escalated(_)
        | Kind::WarningRaised(_)
        | Kind::WarningWithdrawn(_)
        | Kind::ViolationJudged(_)
        | Kind::ViolationAppealed(_)
        | Kind::AppealDecided(_)
        | Kind::CaseClosed(_)
        | Kind::CaseReopened(_)
        | Kind::PersonalDataErased(_)
        | Kind::OwnerAssigned(_) => {}
    }
}
