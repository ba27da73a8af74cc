//! The stable names of event types, as stored in every record's envelope and
//! used in filters: the domain's own words (`TicketRejected`), never CRUD.

use crate::proto::v1::case_event::Kind;

/// All event type names, in proto field order.
pub const EVENT_TYPES: &[&str] = &[
    "CaseOpened",
    "ContactLogged",
    "DemandRecorded",
    "PromiseMade",
    "TicketSubmitted",
    "TicketRejected",
    "TicketAppended",
    "TicketResultGiven",
    "CallbackAttempted",
    "CallbackCompleted",
    "DissatisfactionClassified",
    "SurveyDone",
    "Escalated",
    "WarningRaised",
    "ExternalComplaintReceived",
    "ViolationJudged",
    "ViolationAppealed",
    "AppealDecided",
    "NoteAdded",
    "EventCorrected",
    "CaseResolved",
    "CaseClosed",
    "CaseReopened",
    "ExternalComplaintAnswered",
    "PersonalDataErased",
];

/// The stored type name of an event payload.
pub fn event_type_name(kind: &Kind) -> &'static str {
    match kind {
        Kind::CaseOpened(_) => "CaseOpened",
        Kind::ContactLogged(_) => "ContactLogged",
        Kind::DemandRecorded(_) => "DemandRecorded",
        Kind::PromiseMade(_) => "PromiseMade",
        Kind::TicketSubmitted(_) => "TicketSubmitted",
        Kind::TicketRejected(_) => "TicketRejected",
        Kind::TicketAppended(_) => "TicketAppended",
        Kind::TicketResultGiven(_) => "TicketResultGiven",
        Kind::CallbackAttempted(_) => "CallbackAttempted",
        Kind::CallbackCompleted(_) => "CallbackCompleted",
        Kind::DissatisfactionClassified(_) => "DissatisfactionClassified",
        Kind::SurveyDone(_) => "SurveyDone",
        Kind::Escalated(_) => "Escalated",
        Kind::WarningRaised(_) => "WarningRaised",
        Kind::ExternalComplaintReceived(_) => "ExternalComplaintReceived",
        Kind::ViolationJudged(_) => "ViolationJudged",
        Kind::ViolationAppealed(_) => "ViolationAppealed",
        Kind::AppealDecided(_) => "AppealDecided",
        Kind::NoteAdded(_) => "NoteAdded",
        Kind::EventCorrected(_) => "EventCorrected",
        Kind::CaseResolved(_) => "CaseResolved",
        Kind::CaseClosed(_) => "CaseClosed",
        Kind::CaseReopened(_) => "CaseReopened",
        Kind::ExternalComplaintAnswered(_) => "ExternalComplaintAnswered",
        Kind::PersonalDataErased(_) => "PersonalDataErased",
    }
}

/// The oneof field name of an event payload, for field paths in errors.
pub fn field_name(kind: &Kind) -> &'static str {
    match kind {
        Kind::CaseOpened(_) => "case_opened",
        Kind::ContactLogged(_) => "contact_logged",
        Kind::DemandRecorded(_) => "demand_recorded",
        Kind::PromiseMade(_) => "promise_made",
        Kind::TicketSubmitted(_) => "ticket_submitted",
        Kind::TicketRejected(_) => "ticket_rejected",
        Kind::TicketAppended(_) => "ticket_appended",
        Kind::TicketResultGiven(_) => "ticket_result_given",
        Kind::CallbackAttempted(_) => "callback_attempted",
        Kind::CallbackCompleted(_) => "callback_completed",
        Kind::DissatisfactionClassified(_) => "dissatisfaction_classified",
        Kind::SurveyDone(_) => "survey_done",
        Kind::Escalated(_) => "escalated",
        Kind::WarningRaised(_) => "warning_raised",
        Kind::ExternalComplaintReceived(_) => "external_complaint_received",
        Kind::ViolationJudged(_) => "violation_judged",
        Kind::ViolationAppealed(_) => "violation_appealed",
        Kind::AppealDecided(_) => "appeal_decided",
        Kind::NoteAdded(_) => "note_added",
        Kind::EventCorrected(_) => "event_corrected",
        Kind::CaseResolved(_) => "case_resolved",
        Kind::CaseClosed(_) => "case_closed",
        Kind::CaseReopened(_) => "case_reopened",
        Kind::ExternalComplaintAnswered(_) => "external_complaint_answered",
        Kind::PersonalDataErased(_) => "personal_data_erased",
    }
}
