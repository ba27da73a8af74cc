//! The business of disputed complaints, free of storage and transport:
//! which events exist, what a well-formed event is, and which events a case
//! accepts in its current state.

pub mod error;
pub mod events;
pub mod field_check;
pub mod ids;
pub mod limits;
pub mod party;
mod rule_checks;
pub mod rules;
pub mod state;
pub mod validate;
mod wording;

pub use error::{FieldViolation, RuleViolation};
pub use events::{event_type_name, every_kind, field_name, EVENT_TYPES};
pub use state::{CaseState, CaseStatus};
