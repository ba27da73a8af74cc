//! One gRPC status per ledger error, with machine-readable details
//! (google.rpc `BadRequest`, `PreconditionFailure`, `ErrorInfo`,
//! `QuotaFailure`) so clients can act on the field, the rule or the version.

use crate::ledger::LedgerError;
use std::collections::HashMap;
use tonic::{Code, Status};
use tonic_types::{ErrorDetails, FieldViolation, PreconditionViolation, StatusExt};

/// `ErrorInfo.domain` of every error this service details.
pub const ERROR_DOMAIN: &str = "complaint-ledger";

/// Maps a ledger error to its gRPC status.
pub fn to_status(e: LedgerError) -> Status {
    let message = e.to_string();
    match e {
        LedgerError::Invalid(violations) => Status::with_error_details(
            Code::InvalidArgument,
            message,
            ErrorDetails::with_bad_request(
                violations
                    .into_iter()
                    .map(|v| FieldViolation::new(v.field, v.description))
                    .collect::<Vec<_>>(),
            ),
        ),
        LedgerError::LimitExceeded(l) => Status::with_error_details(
            Code::ResourceExhausted,
            message,
            ErrorDetails::with_quota_failure_violation(
                l.limit,
                format!(
                    "{} is {} bytes or items; the limit is {}",
                    l.field, l.actual, l.max
                ),
            ),
        ),
        LedgerError::Rule { index, violation } => Status::with_error_details(
            Code::FailedPrecondition,
            message,
            ErrorDetails::with_precondition_failure(vec![PreconditionViolation::new(
                violation.rule,
                format!("events[{index}]"),
                violation.description,
            )]),
        ),
        LedgerError::WrongExpectedVersion {
            case_id,
            expected,
            actual,
        } => Status::with_error_details(
            Code::Aborted,
            message,
            ErrorDetails::with_error_info(
                "WRONG_EXPECTED_VERSION",
                ERROR_DOMAIN,
                HashMap::from([
                    ("case_id".to_string(), case_id),
                    ("expected".to_string(), expected),
                    ("actual_version".to_string(), actual.to_string()),
                ]),
            ),
        ),
        LedgerError::EventIdConflict {
            index, event_id, ..
        } => Status::with_error_details(
            Code::AlreadyExists,
            message,
            ErrorDetails::with_error_info(
                "EVENT_ID_CONFLICT",
                ERROR_DOMAIN,
                HashMap::from([
                    ("event_id".to_string(), event_id),
                    ("field".to_string(), format!("events[{index}].event_id")),
                ]),
            ),
        ),
        LedgerError::CaseNotFound(_) => Status::not_found(message),
        LedgerError::Storage(_) => Status::internal(message),
        LedgerError::Unavailable(_) => Status::unavailable(message),
        LedgerError::PermissionDenied(_) => Status::permission_denied(message),
    }
}

/// An `INVALID_ARGUMENT` for one field.
pub fn invalid_field(field: &str, description: impl Into<String>) -> Status {
    let description = description.into();
    Status::with_error_details(
        Code::InvalidArgument,
        format!("invalid request: {field}: {description}"),
        ErrorDetails::with_bad_request_violation(field, description),
    )
}
