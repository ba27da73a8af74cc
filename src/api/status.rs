//! One gRPC status per ledger error, with machine-readable details
//! (google.rpc `BadRequest`, `PreconditionFailure`, `ErrorInfo`,
//! `QuotaFailure`) so clients can act on the field, the rule or the version.
//! Every refusal carries an `ErrorInfo` whose reason is a value of the
//! documented `ErrorReason` enum (errors.proto).

use crate::ledger::LedgerError;
use crate::proto::v1::ErrorReason;
use std::collections::HashMap;
use tonic::{Code, Status};
use tonic_types::{ErrorDetails, FieldViolation, PreconditionViolation, QuotaViolation, StatusExt};

/// `ErrorInfo.domain` of every error this service details.
pub const ERROR_DOMAIN: &str = "complaint-ledger";

/// The `ErrorInfo` every refusal carries beside its status's own detail:
/// the documented reason (errors.proto) and what identifies the case.
pub(super) fn info(reason: ErrorReason, metadata: HashMap<String, String>) -> ErrorDetails {
    ErrorDetails::with_error_info(reason.as_str_name(), ERROR_DOMAIN, metadata)
}

/// The reason of a size or rate limit, by its configuration name
/// (`max_text_bytes`): the limits are the enum's `MAX_*` and
/// `RATE_LIMIT_PER_SECOND` values, spelled in upper case.
pub fn limit_reason(limit: &str) -> ErrorReason {
    ErrorReason::from_str_name(&limit.to_ascii_uppercase()).unwrap_or(ErrorReason::Unspecified)
}

/// Maps a ledger error to its gRPC status.
pub fn to_status(e: LedgerError) -> Status {
    let message = e.to_string();
    match e {
        LedgerError::Invalid(violations) => {
            let mut d = info(ErrorReason::InvalidField, HashMap::new());
            d.set_bad_request(
                violations
                    .into_iter()
                    .map(|v| FieldViolation::new(v.field, v.description))
                    .collect::<Vec<_>>(),
            );
            Status::with_error_details(Code::InvalidArgument, message, d)
        }
        LedgerError::LimitExceeded(l) => {
            let mut d = info(
                limit_reason(l.limit),
                HashMap::from([("field".to_string(), l.field.to_string())]),
            );
            d.set_quota_failure(vec![QuotaViolation::new(
                l.limit,
                format!(
                    "{} is {} bytes or items; the limit is {}",
                    l.field, l.actual, l.max
                ),
            )]);
            Status::with_error_details(Code::ResourceExhausted, message, d)
        }
        LedgerError::Rule { index, violation } => {
            let field = format!("events[{index}]");
            let mut d = info(
                violation.rule,
                HashMap::from([("event".to_string(), field.clone())]),
            );
            d.set_precondition_failure(vec![PreconditionViolation::new(
                violation.rule_name(),
                field,
                violation.description,
            )]);
            Status::with_error_details(Code::FailedPrecondition, message, d)
        }
        LedgerError::WrongExpectedVersion {
            case_id,
            expected,
            actual,
        } => Status::with_error_details(
            Code::Aborted,
            message,
            info(
                ErrorReason::WrongExpectedVersion,
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
            info(
                ErrorReason::EventIdConflict,
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
    let mut d = info(ErrorReason::InvalidField, HashMap::new());
    d.set_bad_request(vec![FieldViolation::new(field, description.clone())]);
    Status::with_error_details(
        Code::InvalidArgument,
        format!("invalid request: {field}: {description}"),
        d,
    )
}
