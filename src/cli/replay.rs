//! `complaint-ledger replay`: a case's timeline for a person — when, who,
//! what, in one line each, with corrections marked beside the event they
//! correct. This is the review KF-006 asks for before any survey or callback:
//! nobody should make the customer tell the story again.

use super::client::{explain, ServerArgs};
use crate::projections::promises::breach_reason_names;
use crate::proto::v1::{self as pb, case_event::Kind};
use crate::time::{format_local, DEFAULT_UTC_OFFSET_MINUTES};
use std::fmt::Write as _;

/// One line describing an event, as its kind words it (`domain/events/`).
pub fn summarize(kind: &Kind) -> String {
    crate::domain::events::describe(kind)
}

/// Formats a timeline, one event a line, marking corrected events.
pub fn format_timeline(events: &[pb::RecordedEvent]) -> String {
    let offset = events
        .iter()
        .find_map(|e| match e.event.as_ref().and_then(|x| x.kind.as_ref()) {
            Some(Kind::CaseOpened(o)) if o.utc_offset_minutes != 0 => Some(o.utc_offset_minutes),
            _ => None,
        })
        .unwrap_or(DEFAULT_UTC_OFFSET_MINUTES);
    let corrected: std::collections::HashMap<&str, Vec<&str>> =
        events.iter().fold(Default::default(), |mut m, e| {
            if let Some(Kind::EventCorrected(c)) = e.event.as_ref().and_then(|x| x.kind.as_ref()) {
                m.entry(c.corrected_event_id.as_str())
                    .or_default()
                    .push(e.event_id.as_str());
            }
            m
        });
    let mut out = String::new();
    for e in events {
        let when = e
            .occurred_at
            .as_ref()
            .map(|t| format_local(t, offset))
            .unwrap_or_default();
        let who = if e.acted_for_agent.is_empty() {
            e.actor.clone()
        } else {
            format!("{} ({})", e.acted_for_agent, e.actor)
        };
        let what = e
            .event
            .as_ref()
            .and_then(|x| x.kind.as_ref())
            .map(summarize)
            .unwrap_or_default();
        let mut mark = match corrected.get(e.event_id.as_str()) {
            Some(by) => format!("  [corrected by {}]", by.join(", ")),
            None => String::new(),
        };
        if e.imported {
            mark.push_str("  [imported]");
        }
        let _ = writeln!(
            out,
            "v{:<3} {when}  {who:<18} {:<26} {what}{mark}",
            e.case_version, e.event_type
        );
    }
    out
}

/// A point in a case's history: a version, or a recorded (server) time.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum AsOf {
    Version(u64),
    RecordedAt(prost_types::Timestamp),
}

impl std::str::FromStr for AsOf {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        if let Ok(v) = s.parse::<u64>() {
            return if v == 0 {
                Err("versions start at 1".into())
            } else {
                Ok(AsOf::Version(v))
            };
        }
        crate::time::parse_rfc3339(s)
            .map(AsOf::RecordedAt)
            .ok_or_else(|| format!("{s:?} is neither a version nor an RFC 3339 time"))
    }
}

fn promise_line(p: &pb::PromiseView) -> String {
    let id = p
        .promise
        .as_ref()
        .map(|x| x.promise_id.as_str())
        .unwrap_or("?");
    let state = p
        .state()
        .as_str_name()
        .trim_start_matches("PROMISE_STATE_")
        .to_lowercase();
    let reasons = breach_reason_names(&p.breach_reasons);
    if reasons.is_empty() {
        format!("promise {id}: {state}")
    } else {
        format!("promise {id}: {state} ({})", reasons.join(", "))
    }
}

fn demand_line(d: &pb::DemandView) -> String {
    let id = d
        .demand
        .as_ref()
        .map(|x| x.demand_id.as_str())
        .unwrap_or("?");
    let state = d
        .state()
        .as_str_name()
        .trim_start_matches("DEMAND_STATE_")
        .to_lowercase();
    let reasons: Vec<i32> = d.breaches.iter().map(|b| b.reason).collect();
    let mut reasons = breach_reason_names(&reasons);
    reasons.dedup();
    if reasons.is_empty() {
        format!("demand {id}: {state}")
    } else {
        format!("demand {id}: {state} (breaches: {})", reasons.join(", "))
    }
}

/// Reads a case from a server and prints its timeline, optionally as it
/// stood at a version or recorded time, with the promises as judged then.
pub async fn run(server: &ServerArgs, case_id: &str, as_of: Option<AsOf>) -> anyhow::Result<()> {
    let connection = server.connect().await?;
    let mut stream = connection
        .ledger()
        .read_case(pb::ReadCaseRequest {
            case_id: case_id.to_string(),
            ..Default::default()
        })
        .await
        .map_err(explain)?
        .into_inner();
    let mut events = Vec::new();
    while let Some(e) = stream.message().await.map_err(explain)? {
        let keep = match as_of {
            None => true,
            Some(AsOf::Version(v)) => e.case_version <= v,
            Some(AsOf::RecordedAt(t)) => e
                .recorded_at
                .as_ref()
                .is_some_and(|r| crate::time::ts_nanos(r) <= crate::time::ts_nanos(&t)),
        };
        if keep {
            events.push(e);
        }
    }
    let Some(as_of) = as_of else {
        print!(
            "case {case_id}: {} events\n{}",
            events.len(),
            format_timeline(&events)
        );
        return Ok(());
    };
    let label = match as_of {
        AsOf::Version(v) => format!("version {v}"),
        AsOf::RecordedAt(t) => format!("recorded time {t}"),
    };
    print!(
        "case {case_id} as of {label}: {} events\n{}",
        events.len(),
        format_timeline(&events)
    );
    let view = connection
        .cases()
        .get_case(pb::GetCaseRequest {
            case_id: case_id.to_string(),
            as_of: Some(match as_of {
                AsOf::Version(v) => pb::get_case_request::AsOf::Version(v),
                AsOf::RecordedAt(t) => pb::get_case_request::AsOf::RecordedAt(t),
            }),
            evaluate_at: None,
        })
        .await
        .map_err(explain)?
        .into_inner();
    println!(
        "status {} · escalation {} · {} contacts · {} demands",
        view.status()
            .as_str_name()
            .trim_start_matches("CASE_STATUS_")
            .to_lowercase(),
        view.escalation_level()
            .as_str_name()
            .trim_start_matches("ESCALATION_LEVEL_")
            .to_lowercase(),
        view.contacts.len(),
        view.demands.len()
    );
    for p in &view.promises {
        println!("{}", promise_line(p));
    }
    for d in &view.demands {
        println!("{}", demand_line(d));
    }
    Ok(())
}
