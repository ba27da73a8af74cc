//! The two ways the domain refuses an event: it is malformed (a field is
//! missing or wrong), or it is well-formed but the case's rules forbid it now.

pub use crate::proto::v1::ErrorReason;
use std::fmt;

/// One malformed field, named by its path in the request, e.g.
/// `events[2].event.contact_logged.channel`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldViolation {
    pub field: String,
    pub description: String,
}

impl FieldViolation {
    pub fn new(field: impl Into<String>, description: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            description: description.into(),
        }
    }
}

impl fmt::Display for FieldViolation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.description)
    }
}

/// A case rule that an event would break, e.g. `ticket_not_awaiting_review`.
///
/// Rules are values of the API's documented `ErrorReason` (errors.proto):
/// a rule the enum does not list cannot be refused with, so the list
/// clients read is the list the server enforces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleViolation {
    /// Which rule.
    pub rule: ErrorReason,
    /// What was wrong, for a person.
    pub description: String,
}

impl RuleViolation {
    pub fn new(rule: ErrorReason, description: impl Into<String>) -> Self {
        Self {
            rule,
            description: description.into(),
        }
    }

    /// The rule's name as `PreconditionFailure.type` carries it: the
    /// reason's name in lower case (`case_closed`).
    pub fn rule_name(&self) -> String {
        self.rule.as_str_name().to_ascii_lowercase()
    }
}

impl fmt::Display for RuleViolation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.rule_name(), self.description)
    }
}
