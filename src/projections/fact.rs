//! One committed event as the cross-case projections see it: borrowed from
//! whoever holds it (the writer after a commit, the startup replay, a
//! rebuild), so feeding a projection never copies an event. An
//! [`OwnedFact`] is the same fact owning its parts: what the writer hands to
//! projections and to processes following the log after a commit.

use crate::proto::v1::{CaseEvent, RecordedEvent, StoredRecord};
use prost_types::Timestamp;

#[derive(Debug, Clone, Copy)]
pub struct Fact<'a> {
    pub position: u64,
    pub case_id: &'a str,
    pub event_id: &'a str,
    pub occurred_at: Option<Timestamp>,
    /// Server time, nanoseconds since the epoch.
    pub recorded_at: i128,
    pub correlation_id: &'a str,
    /// Recorded by an import of earlier history.
    pub imported: bool,
    pub event: &'a CaseEvent,
}

impl<'a> Fact<'a> {
    /// The fact of a recorded event (one that has a payload).
    pub fn of(e: &'a RecordedEvent) -> Option<Self> {
        Some(Fact {
            position: e.position,
            case_id: &e.case_id,
            event_id: &e.event_id,
            occurred_at: e.occurred_at,
            recorded_at: e
                .recorded_at
                .as_ref()
                .map(crate::time::ts_nanos)
                .unwrap_or(0),
            correlation_id: &e.correlation_id,
            imported: e.imported,
            event: e.event.as_ref()?,
        })
    }

    /// The fact of a stored record and its decoded payload.
    pub fn stored(rec: &'a StoredRecord, event: &'a CaseEvent) -> Self {
        Fact {
            position: rec.position,
            case_id: &rec.case_id,
            event_id: &rec.event_id,
            occurred_at: rec.occurred_at,
            recorded_at: rec
                .recorded_at
                .as_ref()
                .map(crate::time::ts_nanos)
                .unwrap_or(0),
            correlation_id: &rec.correlation_id,
            imported: rec.imported,
            event,
        }
    }

    /// Business time in nanoseconds (0 when absent).
    pub fn at(&self) -> i128 {
        self.occurred_at
            .as_ref()
            .map(crate::time::ts_nanos)
            .unwrap_or(0)
    }
}

/// Where a case's earlier events come from, for a projection that set a
/// closed case aside and needs it again: given the case and a log position,
/// its events stored before that position, in order.
pub type History<'h> = dyn FnMut(&str, u64) -> Result<Vec<OwnedFact>, String> + 'h;

/// A committed event owning its parts (see [`Fact`]).
#[derive(Debug, Clone)]
pub struct OwnedFact {
    pub position: u64,
    pub case_id: String,
    pub event_id: String,
    pub occurred_at: Option<Timestamp>,
    pub recorded_at: i128,
    pub correlation_id: String,
    pub imported: bool,
    pub event: CaseEvent,
}

impl OwnedFact {
    /// The fact of a stored record and its decoded payload, owned.
    pub fn stored(rec: &StoredRecord, event: &CaseEvent) -> Self {
        let f = Fact::stored(rec, event);
        OwnedFact {
            position: f.position,
            case_id: f.case_id.to_string(),
            event_id: f.event_id.to_string(),
            occurred_at: f.occurred_at,
            recorded_at: f.recorded_at,
            correlation_id: f.correlation_id.to_string(),
            imported: f.imported,
            event: event.clone(),
        }
    }

    pub fn fact(&self) -> Fact<'_> {
        Fact {
            position: self.position,
            case_id: &self.case_id,
            event_id: &self.event_id,
            occurred_at: self.occurred_at,
            recorded_at: self.recorded_at,
            correlation_id: &self.correlation_id,
            imported: self.imported,
            event: &self.event,
        }
    }
}

/// The events of `case_id` among `facts` at positions below `before`: the
/// history tests give a projection from the events they folded into it.
#[cfg(test)]
pub(crate) fn earlier_in(facts: &[OwnedFact], case_id: &str, before: u64) -> Vec<OwnedFact> {
    facts
        .iter()
        .filter(|f| f.case_id == case_id && f.position < before)
        .cloned()
        .collect()
}
