//! The vocabulary of shape checks: a field path written out only when a
//! check fails, and the checks every event kind's `validate` uses (ids,
//! text within the size limit, known enum values, timestamps, parties).
//! Problems are collected, not returned at the first, so a client fixes a
//! request in one round trip.

use super::error::FieldViolation;
use super::ids::{id_problem, optional_id_problem};
use super::limits::{LimitExceeded, Limits};
use crate::proto::v1 as pb;
use std::fmt::{self, Display};

/// A field path such as `events[2].event.note_added.text`, written out only
/// when a check fails: formatting every field's path of every valid request
/// was a few percent of the server's time under load.
pub struct Join<'a>(pub &'a dyn Display, pub &'a str);

impl Display for Join<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.0, self.1)
    }
}

/// `name[i]`, written out only when needed.
pub struct Indexed(pub &'static str, pub usize);

impl Display for Indexed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}[{}]", self.0, self.1)
    }
}

/// The problems found in one request so far: every field violation, and
/// the first limit exceeded.
pub struct Check<'a> {
    limits: &'a Limits,
    pub violations: Vec<FieldViolation>,
    pub exceeded: Option<LimitExceeded>,
}

impl<'a> Check<'a> {
    pub fn new(limits: &'a Limits) -> Self {
        Check {
            limits,
            violations: Vec::new(),
            exceeded: None,
        }
    }

    pub fn fail(&mut self, field: impl Display, description: impl Into<String>) {
        self.violations
            .push(FieldViolation::new(field.to_string(), description));
    }

    pub fn id(&mut self, path: impl Display, v: &str) {
        if let Some(p) = id_problem(v) {
            self.fail(path, p);
        }
    }

    pub fn opt_id(&mut self, path: impl Display, v: &str) {
        if let Some(p) = optional_id_problem(v) {
            self.fail(path, p);
        }
    }

    pub fn text(&mut self, path: impl Display, v: &str, required: bool) {
        if required && v.trim().is_empty() {
            self.fail(&path, "is required");
        }
        if v.len() > self.limits.max_text_bytes && self.exceeded.is_none() {
            self.exceeded = Some(LimitExceeded {
                limit: "max_text_bytes",
                field: path.to_string(),
                actual: v.len(),
                max: self.limits.max_text_bytes,
            });
        }
    }

    pub fn enum_value<E: TryFrom<i32>>(&mut self, path: impl Display, v: i32, required: bool) {
        if E::try_from(v).is_err() {
            self.fail(path, format!("{v} is not a known value"));
        } else if required && v == 0 {
            self.fail(path, "is required (UNSPECIFIED is not a value)");
        }
    }

    pub fn timestamp(
        &mut self,
        path: impl Display,
        v: Option<&prost_types::Timestamp>,
        required: bool,
    ) {
        match v {
            None if required => self.fail(path, "is required"),
            None => {}
            Some(ts) if !crate::time::is_valid(ts) => {
                self.fail(path, "is not a valid timestamp between years 1900 and 9999")
            }
            Some(_) => {}
        }
    }

    /// A business time no later than the server's clock allows.
    pub fn not_ahead_of(
        &mut self,
        path: impl Display,
        v: Option<&prost_types::Timestamp>,
        now: i128,
    ) {
        let Some(ts) = v.filter(|ts| crate::time::is_valid(ts)) else {
            return;
        };
        let skew = self.limits.max_clock_skew_seconds;
        if crate::time::ts_nanos(ts) > now + i128::from(skew) * 1_000_000_000 {
            self.fail(
                path,
                format!(
                    "is {}, after the server's clock ({}) by more than the {skew} s allowed: an event records what happened, not what is planned",
                    crate::time::format_local(ts, 0),
                    crate::time::format_local(&crate::time::nanos_ts(now), 0)
                ),
            );
        }
    }

    /// A field only the server sets.
    pub fn server_stamped(&mut self, path: impl Display, empty: bool) {
        if !empty {
            self.fail(path, "is set by the server; leave it empty");
        }
    }

    /// The party who acted (a contact, a callback): kind and id both, and
    /// `agent_id` naming that same agent or left empty for anyone else.
    pub fn acting_party(&mut self, p: &dyn Display, party: Option<&pb::Party>, agent_id: &str) {
        let Some(party) = party else { return };
        self.enum_value::<pb::PartyKind>(Join(p, "party.kind"), party.kind, true);
        self.id(Join(p, "party.id"), &party.id);
        if agent_id.is_empty() {
            return;
        }
        if party.kind != pb::PartyKind::Agent as i32 {
            self.fail(
                Join(p, "agent_id"),
                "names an agent, but `party` is not one: a party who is not an agent is named in `party` only, so it never counts as an agent",
            );
        } else if party.id != agent_id {
            self.fail(
                Join(p, "agent_id"),
                format!(
                    "names agent {agent_id:?}, but `party` names agent {:?}",
                    party.id
                ),
            );
        }
    }

    /// A party required to act (a demand, a promise): a kind, an id, or
    /// both; absent for anyone.
    pub fn required_party(&mut self, path: impl Display, party: Option<&pb::Party>) {
        let Some(party) = party else { return };
        self.enum_value::<pb::PartyKind>(format_args!("{path}.kind"), party.kind, false);
        self.opt_id(format_args!("{path}.id"), &party.id);
        if party.kind == 0 && party.id.is_empty() {
            self.fail(
                path,
                "names neither a kind nor an id; leave it out when anyone may act",
            );
        }
    }

    pub fn ids(&mut self, path: impl Display, v: &[String]) {
        for (i, id) in v.iter().enumerate() {
            self.id(format_args!("{path}[{i}]"), id);
        }
    }
}
