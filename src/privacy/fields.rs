//! The personal fields of each event, exactly those `events.proto` marks
//! "personal": customer name, phone, account, and free text that may quote
//! them. Everything that encrypts, masks or decrypts goes through this list.

use crate::domain::events::PersonalFields;
use crate::proto::v1::CaseEvent;
use std::borrow::Cow;

/// Every personal field of an event, with its path (`customer.phone`,
/// `replacement.summary`), as mutable strings. Each kind names its own
/// (`domain/events/`).
pub fn personal_fields_mut(event: &mut CaseEvent) -> Vec<(Cow<'static, str>, &mut String)> {
    PersonalFields::of(event)
}
