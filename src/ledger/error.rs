//! Every way an append or a read can fail, in domain terms. The API layer
//! maps each to exactly one gRPC status (see `api::status`).

use crate::domain::validate::{LimitExceeded, ValidationError};
use crate::domain::{FieldViolation, RuleViolation};

#[derive(Debug, Clone, thiserror::Error)]
pub enum LedgerError {
    /// Malformed request: every bad field, with its path.
    #[error("invalid request: {}", .0.iter().map(|v| v.to_string()).collect::<Vec<_>>().join("; "))]
    Invalid(Vec<FieldViolation>),
    /// A size limit was exceeded.
    #[error("limit {} exceeded by {}: {} > {}", .0.limit, .0.field, .0.actual, .0.max)]
    LimitExceeded(LimitExceeded),
    /// A case rule forbids event `index` of the request.
    #[error("event {index} breaks rule {}: {}", .violation.rule_name(), .violation.description)]
    Rule {
        index: usize,
        violation: RuleViolation,
    },
    /// The case is not at the version the writer expected.
    #[error("case {case_id} is at version {actual}, the request expected {expected}")]
    WrongExpectedVersion {
        case_id: String,
        expected: String,
        actual: u64,
    },
    /// An event id is already stored, for another event or another request.
    #[error("event id {event_id:?} (events[{index}]) already exists: {reason}")]
    EventIdConflict {
        index: usize,
        event_id: String,
        reason: String,
    },
    #[error("case {0} not found")]
    CaseNotFound(String),
    /// The store failed; the ledger no longer takes appends until restarted.
    #[error("storage failure: {0}")]
    Storage(String),
    /// The ledger is shutting down or stopped after a storage failure.
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// The caller may not touch this case (another business line).
    #[error("{0}")]
    PermissionDenied(String),
}

impl From<ValidationError> for LedgerError {
    fn from(e: ValidationError) -> Self {
        match e {
            ValidationError::Invalid(v) => LedgerError::Invalid(v),
            ValidationError::LimitExceeded(l) => LedgerError::LimitExceeded(l),
        }
    }
}

impl From<crate::store::StoreError> for LedgerError {
    fn from(e: crate::store::StoreError) -> Self {
        use crate::store::StoreError;
        match e {
            // A clustered log out of reach, or moved on: nothing was
            // decided here, and the request may be retried.
            StoreError::Unavailable(_) | StoreError::Conflict { .. } => {
                LedgerError::Unavailable(e.to_string())
            }
            e => LedgerError::Storage(e.to_string()),
        }
    }
}
