//! `complaint-ledger replay`: a case's timeline for a person — when, who,
//! what, in one line each, with corrections marked beside the event they
//! correct. This is the review KF-006 asks for before any survey or callback:
//! nobody should make the customer tell the story again.

use super::client::{explain, ServerArgs};
use crate::domain::party::{acting_party, describe};
use crate::projections::promises::breach_reason_names;
use crate::proto::v1::{self as pb, case_event::Kind};
use crate::time::{format_local, DEFAULT_UTC_OFFSET_MINUTES};
use std::fmt::Write as _;

fn channel(c: i32) -> String {
    pb::Channel::try_from(c)
        .map(|c| {
            c.as_str_name()
                .trim_start_matches("CHANNEL_")
                .to_lowercase()
        })
        .unwrap_or_else(|_| c.to_string())
}

fn short(s: &str, n: usize) -> String {
    let one_line = s.split_whitespace().collect::<Vec<_>>().join(" ");
    if one_line.chars().count() <= n {
        one_line
    } else {
        format!("{}…", one_line.chars().take(n).collect::<String>())
    }
}

/// " (must act: manager 5001)" for a demand or promise that names who.
fn must_act(p: Option<&pb::Party>) -> String {
    match p {
        Some(p) if p.kind != 0 || !p.id.is_empty() => format!(" (must act: {})", describe(p)),
        _ => String::new(),
    }
}

/// " (field_staff t9)": who made a callback, when anyone is named.
fn acted_by(party: Option<&pb::Party>, agent_id: &str) -> String {
    acting_party(party, agent_id)
        .map(|p| format!(" ({})", describe(&p)))
        .unwrap_or_default()
}

/// One line describing an event.
pub fn summarize(kind: &Kind) -> String {
    match kind {
        Kind::CaseOpened(e) => format!(
            "customer {} · {} · {}",
            e.customer_id, e.business_line, e.category
        ),
        Kind::ContactLogged(e) => {
            let silences: u32 = e.silences.iter().map(|s| s.duration_seconds).sum();
            let mut s = format!(
                "{} {} {}s",
                channel(e.channel),
                pb::Direction::try_from(e.direction)
                    .map(|d| d
                        .as_str_name()
                        .trim_start_matches("DIRECTION_")
                        .to_lowercase())
                    .unwrap_or_default(),
                e.duration_seconds
            );
            if silences > 0 {
                let _ = write!(s, " (silent {silences}s)");
            }
            if !e.threats.is_empty() {
                let t: Vec<_> = e
                    .threats
                    .iter()
                    .filter_map(|t| pb::Threat::try_from(*t).ok())
                    .map(|t| t.as_str_name().trim_start_matches("THREAT_").to_lowercase())
                    .collect();
                let _ = write!(s, " threats: {}", t.join(","));
            }
            if let Some(p) = acting_party(e.party.as_ref(), &e.agent_id) {
                let _ = write!(s, " by {}", describe(&p));
            }
            format!("{s} — {}", short(&e.summary, 60))
        }
        Kind::DemandRecorded(e) => format!(
            "demand {}: {}{}",
            e.demand_id,
            short(&e.description, 60),
            must_act(e.required_party.as_ref())
        ),
        Kind::PromiseMade(e) => format!(
            "promise {}: {}{}{}",
            e.promise_id,
            short(&e.description, 60),
            must_act(e.required_party.as_ref()),
            if e.due_provisional {
                " (due by a provisional calendar)"
            } else {
                ""
            }
        ),
        Kind::TicketSubmitted(e) => format!("ticket {} submitted to {}", e.ticket_id, e.team),
        Kind::TicketRejected(e) => format!(
            "ticket {} REJECTED: {} (missing: {})",
            e.ticket_id,
            short(&e.reason, 40),
            e.missing_fields.join(", ")
        ),
        Kind::TicketAppended(e) => format!(
            "ticket {} appended: {}",
            e.ticket_id,
            short(&e.addition, 50)
        ),
        Kind::TicketResultGiven(e) => {
            format!("ticket {} result: {}", e.ticket_id, short(&e.result, 50))
        }
        Kind::CallbackAttempted(e) => format!(
            "callback attempt by {}{} (reached: {})",
            channel(e.channel),
            acted_by(e.party.as_ref(), &e.agent_id),
            e.reached
        ),
        Kind::CallbackCompleted(e) => format!(
            "callback by {}{} — {}",
            channel(e.channel),
            acted_by(e.party.as_ref(), &e.agent_id),
            pb::CustomerResponse::try_from(e.customer_response)
                .map(|r| r
                    .as_str_name()
                    .trim_start_matches("CUSTOMER_RESPONSE_")
                    .to_lowercase())
                .unwrap_or_default()
        ),
        Kind::DissatisfactionClassified(e) => format!(
            "dissatisfied contact {} (factor {})",
            e.contact_id, e.factor
        ),
        Kind::SurveyDone(e) => format!(
            "survey of {} (resolved: {}, satisfied: {})",
            e.contact_id, e.resolved, e.satisfied
        ),
        Kind::Escalated(e) => format!(
            "escalated {} → {}: {}",
            e.from_level().as_str_name(),
            e.to_level().as_str_name(),
            short(&e.reason, 50)
        ),
        Kind::WarningRaised(e) => format!(
            "WARNING {}: {}{}",
            e.rule,
            short(&e.reason, 50),
            if e.found_on_import {
                " (found on import)"
            } else {
                ""
            }
        ),
        Kind::ExternalComplaintReceived(e) => format!(
            "external complaint {} from {}",
            e.reference_number,
            e.body().as_str_name()
        ),
        Kind::ViolationJudged(e) => format!(
            "agent {} judged on item {} (established: {})",
            e.agent_id, e.item, e.established
        ),
        Kind::ViolationAppealed(e) => format!("judgement {} appealed", e.judgement_id),
        Kind::PersonalDataErased(e) => format!(
            "personal data of customer {} ERASED: {}",
            e.customer_id, e.reason
        ),
        Kind::ExternalComplaintAnswered(e) => format!(
            "external complaint {} answered{}",
            e.reference_number,
            if e.resolved { " (settled)" } else { "" }
        ),
        Kind::AppealDecided(e) => format!(
            "appeal on {} decided (upheld: {})",
            e.judgement_id, e.upheld
        ),
        Kind::NoteAdded(e) => format!("note: {}", short(&e.text, 60)),
        Kind::EventCorrected(e) => format!(
            "CORRECTS {}: {}",
            e.corrected_event_id,
            short(&e.reason, 50)
        ),
        Kind::CaseResolved(e) => format!(
            "resolved ({}): {}",
            if e.customer_accepted {
                "customer accepted"
            } else {
                "customer did not accept"
            },
            short(&e.resolution, 50)
        ),
        Kind::CaseClosed(e) => format!("closed: {}", short(&e.reason, 50)),
        Kind::CaseReopened(e) => format!("reopened: {}", short(&e.reason, 50)),
        Kind::DemandDeclined(e) => format!(
            "demand {} DECLINED by {}: {}",
            e.demand_id,
            e.decided_by.as_ref().map(describe).unwrap_or_default(),
            short(&e.reason, 50)
        ),
        Kind::DemandWithdrawn(e) => format!(
            "demand {} WITHDRAWN by the customer{}",
            e.demand_id,
            if e.reason.is_empty() {
                String::new()
            } else {
                format!(": {}", short(&e.reason, 50))
            }
        ),
        Kind::OwnerAssigned(e) => format!(
            "owner: {}{}",
            e.owner.as_ref().map(describe).unwrap_or_default(),
            if e.reason.is_empty() {
                String::new()
            } else {
                format!(" ({})", short(&e.reason, 40))
            }
        ),
        Kind::WarningWithdrawn(e) => format!(
            "warning {} WITHDRAWN: {}",
            e.warning_id,
            short(&e.reason, 80)
        ),
    }
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
