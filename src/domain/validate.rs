//! Shape checks on an append request, run before anything touches the log:
//! required fields, known enum values, id alphabet, timestamps, and the size
//! limits. Every problem is reported with its field path, all at once, so a
//! client can fix a request in one round trip. What a well-formed event of
//! each kind is, is said by the kind itself (`events/`).

use super::error::FieldViolation;
use super::events::validate_event;
use super::field_check::{Check, Indexed, Join};
pub use super::limits::{LimitExceeded, Limits};
use crate::proto::v1 as pb;
use prost::Message;
use std::collections::HashSet;

/// Why a request was refused before it reached the case rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ValidationError {
    Invalid(Vec<FieldViolation>),
    LimitExceeded(LimitExceeded),
}

/// Checks the shape of a whole append request, received when the server's
/// clock read `now` (nanoseconds since the epoch).
pub fn validate_append(
    req: &pb::AppendRequest,
    limits: &Limits,
    now: i128,
) -> Result<(), ValidationError> {
    let size = req.encoded_len();
    if size > limits.max_request_bytes {
        return Err(ValidationError::LimitExceeded(LimitExceeded {
            limit: "max_request_bytes",
            field: "request".into(),
            actual: size,
            max: limits.max_request_bytes,
        }));
    }
    if req.events.len() > limits.max_events_per_append {
        return Err(ValidationError::LimitExceeded(LimitExceeded {
            limit: "max_events_per_append",
            field: "events".into(),
            actual: req.events.len(),
            max: limits.max_events_per_append,
        }));
    }
    let mut c = Check::new(limits);
    c.id("case_id", &req.case_id);
    if let Some(ev) = &req.expected_version {
        if ev.kind.is_none() {
            c.fail("expected_version", "set one of any, no_case or exact");
        }
    }
    if req.events.is_empty() {
        c.fail("events", "at least one event is required");
    }
    let mut seen = HashSet::new();
    for (i, e) in req.events.iter().enumerate() {
        let p = Indexed("events", i);
        c.id(format_args!("{p}.event_id"), &e.event_id);
        if !e.event_id.is_empty() && !seen.insert(e.event_id.as_str()) {
            c.fail(
                format!("{p}.event_id"),
                "is used twice in this request; event ids must be unique",
            );
        }
        c.timestamp(
            format_args!("{p}.occurred_at"),
            e.occurred_at.as_ref(),
            true,
        );
        c.not_ahead_of(format_args!("{p}.occurred_at"), e.occurred_at.as_ref(), now);
        c.opt_id(format_args!("{p}.acted_for_agent"), &e.acted_for_agent);
        c.text(format_args!("{p}.correlation_id"), &e.correlation_id, false);
        c.text(format_args!("{p}.causation_id"), &e.causation_id, false);
        for (name, v) in [
            ("correlation_id", &e.correlation_id),
            ("causation_id", &e.causation_id),
        ] {
            if v.len() > 128 {
                c.fail(format!("{p}.{name}"), "is longer than 128 bytes");
            }
        }
        match &e.event {
            None => c.fail(format!("{p}.event"), "is required"),
            Some(ev) => {
                let len = ev.encoded_len();
                if len > limits.max_event_bytes && c.exceeded.is_none() {
                    c.exceeded = Some(LimitExceeded {
                        limit: "max_event_bytes",
                        field: format!("{p}.event"),
                        actual: len,
                        max: limits.max_event_bytes,
                    });
                }
                validate_event(&mut c, &Join(&p, "event"), ev, true);
            }
        }
    }
    if let Some(x) = c.exceeded {
        return Err(ValidationError::LimitExceeded(x));
    }
    if c.violations.is_empty() {
        Ok(())
    } else {
        Err(ValidationError::Invalid(c.violations))
    }
}
