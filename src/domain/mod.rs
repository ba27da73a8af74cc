//! The business of disputed complaints, free of storage and transport:
//! which events exist, what a well-formed event is, and which events a case
//! accepts in its current state.

pub mod error;
pub mod event_kind;
pub mod ids;
pub mod party;
pub mod rules;
pub mod state;
pub mod validate;

pub use error::{FieldViolation, RuleViolation};
pub use event_kind::event_type_name;
pub use state::{CaseState, CaseStatus};
