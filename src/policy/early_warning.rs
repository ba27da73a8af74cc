//! The early-warning process: follows the log from its start, feeds every
//! event to the [`WarningRules`], and appends each warning they raise as a
//! `WarningRaised` event on the triggering event's case, caused by it
//! (`causation_id`), with a deterministic event id. It also wakes every
//! `tick_seconds` to raise warnings for promises that fell due unanswered.
//!
//! Why restarting never raises a warning twice: the rules are folded again
//! from the whole log, which includes the warnings already raised; a hit
//! whose id is in the log is dropped, and any append that slips through
//! (a crash between append and acknowledgement) is answered by the ledger's
//! durable event-id index as a duplicate, writing nothing.

use super::warnings::{Hit, Pending, WarningRules};
use crate::ledger::{Ledger, LedgerError};
use crate::projections::fact::Fact;
use crate::proto::v1 as pb;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// The actor stamped on warnings this process appends.
pub const ACTOR: &str = "policy:early-warning";

/// Events read per step while catching up.
const CHUNK: usize = 4096;

fn request(h: &Hit) -> pb::AppendRequest {
    pb::AppendRequest {
        case_id: h.case_id.clone(),
        expected_version: None,
        events: vec![pb::ProposedEvent {
            event_id: h.event_id.clone(),
            occurred_at: Some(crate::time::nanos_ts(h.occurred_at)),
            acted_for_agent: String::new(),
            correlation_id: h.correlation_id.clone(),
            causation_id: h.causation_id.clone(),
            event: Some(pb::CaseEvent {
                kind: Some(pb::case_event::Kind::WarningRaised(h.warning.clone())),
            }),
        }],
    }
}

/// Appends a warning; false when the ledger is gone and the process must stop.
async fn raise(ledger: &Ledger, h: &Hit) -> bool {
    match ledger.append(request(h), ACTOR.to_string()).await {
        Ok(o) => {
            if !o.duplicate {
                tracing::info!(
                    case_id = %h.case_id,
                    rule = %h.warning.rule,
                    position = o.first_position,
                    caused_by = %h.causation_id,
                    "early warning raised"
                );
            }
            true
        }
        // Already raised with other content (the policy changed since).
        Err(LedgerError::EventIdConflict { .. }) => true,
        Err(LedgerError::Unavailable(_)) => false,
        Err(e) => {
            // A rule of the case refuses it (e.g. the case is closed).
            tracing::warn!(case_id = %h.case_id, rule = %h.warning.rule, error = %e, "early warning not recorded");
            true
        }
    }
}

/// Runs until `stopping` turns true or the ledger stops taking appends.
pub async fn run(ledger: Arc<Ledger>, mut stopping: watch::Receiver<bool>) {
    let policy = ledger.policy().clone();
    let cfg = &policy.config.early_warning;
    if !cfg.enabled {
        return;
    }
    let tick = Duration::from_secs(cfg.tick_seconds);
    let mut rules = WarningRules::new(cfg.rules.clone());
    let mut head = ledger.head();
    let mut next = 1u64;
    loop {
        // Fold everything committed so far.
        let mut pending = Pending::default();
        loop {
            let l = ledger.clone();
            let from = next;
            let chunk = match tokio::task::spawn_blocking(move || l.read_all(from, CHUNK)).await {
                Ok(Ok(c)) => c,
                Ok(Err(e)) => {
                    tracing::error!(error = %e, "early warning: reading the log failed; stopping");
                    return;
                }
                Err(_) => return,
            };
            let Some(last) = chunk.last().map(|e| e.position) else {
                break;
            };
            for e in &chunk {
                if let Some(f) = Fact::of(e) {
                    let hits = rules.apply(&f);
                    pending.add(&rules, hits);
                }
            }
            next = last + 1;
        }
        let now = crate::time::now_nanos();
        let due = rules.due(now);
        pending.add(&rules, due);
        for h in pending.settle(&rules) {
            if !raise(&ledger, &h).await {
                return;
            }
        }
        tokio::select! {
            changed = head.changed() => if changed.is_err() { return },
            _ = tokio::time::sleep(tick) => {}
            _ = stopping.wait_for(|s| *s) => return,
        }
    }
}
