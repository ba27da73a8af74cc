//! Which events a `ReadAll` or `Subscribe` wants: the request's filter,
//! checked once (unknown event types and malformed case ids are refused with
//! the field that holds them) and then applied to every event read.

use super::status::invalid_field;
use crate::domain::ids::id_problem;
use crate::domain::EVENT_TYPES;
use crate::proto::v1 as pb;
use std::collections::HashSet;
use tonic::Status;

/// A checked filter; empty lists match everything.
#[derive(Debug, Default)]
pub struct Filter {
    types: HashSet<String>,
    cases: HashSet<String>,
}

impl Filter {
    pub fn parse(f: Option<pb::EventFilter>) -> Result<Self, Status> {
        let f = f.unwrap_or_default();
        for (i, t) in f.event_types.iter().enumerate() {
            if !EVENT_TYPES.contains(&t.as_str()) {
                return Err(invalid_field(
                    &format!("filter.event_types[{i}]"),
                    format!(
                        "{t:?} is not an event type; known: {}",
                        EVENT_TYPES.join(", ")
                    ),
                ));
            }
        }
        for (i, c) in f.case_ids.iter().enumerate() {
            if let Some(p) = id_problem(c) {
                return Err(invalid_field(&format!("filter.case_ids[{i}]"), p));
            }
        }
        Ok(Self {
            types: f.event_types.into_iter().collect(),
            cases: f.case_ids.into_iter().collect(),
        })
    }

    pub fn matches(&self, e: &pb::RecordedEvent) -> bool {
        (self.types.is_empty() || self.types.contains(&e.event_type))
            && (self.cases.is_empty() || self.cases.contains(&e.case_id))
    }
}
