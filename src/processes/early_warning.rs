//! The early-warning process: follows the log from its start (the part
//! stored when the ledger opened comes folded from its opening pass), feeds
//! every event to the [`WarningRules`], and appends each warning they raise
//! as a `WarningRaised` event on the triggering event's case, caused by it
//! (`causation_id`), with a deterministic event id. It also wakes every
//! `tick_seconds` to raise warnings for promises that fell due unanswered.
//!
//! Why restarting never raises a warning twice: the rules are folded again
//! from the whole log, which includes the warnings already raised; a hit
//! whose id is in the log is dropped, and any append that slips through
//! (a crash between append and acknowledgement) is answered by the ledger's
//! durable event-id index as a duplicate, writing nothing.

use super::warning_rules::{Hit, Pending, WarningRules};
use crate::ledger::{Ledger, LedgerError};
use crate::projections::fact::{Fact, History, OwnedFact};
use crate::proto::v1 as pb;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::broadcast::error::{RecvError, TryRecvError};
use tokio::sync::watch;

/// The actor stamped on warnings this process appends.
pub const ACTOR: &str = "policy:early-warning";

/// Events read per step while catching up.
const CHUNK: usize = 4096;

/// Warnings appended at once. One at a time, each waited for its own
/// durable sync: a backlog of 80,000 (a policy turned on over a full log)
/// took 48 s, and a stop waited for all of it. Appended together they share
/// the writer's group commits.
const RAISED_AT_ONCE: usize = 256;

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
            event: Some(h.event()),
            imported: false,
        }],
    }
}

/// The early-warning rules folded from the log by the ledger's opening
/// pass (`Ledger::open_following`), so the process does not read the whole
/// log again after start.
pub struct Folded {
    pub rules: WarningRules,
    /// Hits found while folding, not yet known to be raised.
    pub pending: Pending,
    /// The first position not folded.
    pub next: u64,
}

impl Folded {
    /// Empty rules of `policy`'s early warning, to fold the opening pass
    /// into; None when early warning is off.
    pub fn for_policy(policy: &crate::policy::Policy) -> Option<Self> {
        let ew = &policy.config.early_warning;
        ew.enabled.then(|| Folded {
            rules: WarningRules::new(ew.rules.clone()),
            pending: Pending::default(),
            next: 1,
        })
    }

    /// Folds one fact of the opening pass.
    pub fn fold(&mut self, f: &Fact<'_>, history: &mut History<'_>) -> Result<(), String> {
        self.pending.fold(&mut self.rules, f, history)?;
        self.next = f.position + 1;
        Ok(())
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
                    "{}",
                    if h.withdrawal.is_some() {
                        "early warning withdrawn"
                    } else {
                        "early warning raised"
                    }
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

/// Appends warnings in log order, up to [`RAISED_AT_ONCE`] at a time and
/// never two of one case at a time (so each case gets its warnings in
/// order). Stops between rounds once `stopping` turns true: what is left is
/// raised again after the restart, since the rules are folded again from the
/// log and only warnings already in it are dropped. False when the process
/// must stop.
async fn raise_all(ledger: &Arc<Ledger>, hits: Vec<Hit>, stopping: &watch::Receiver<bool>) -> bool {
    let mut hits = hits.into_iter().peekable();
    while hits.peek().is_some() {
        if *stopping.borrow() {
            return false;
        }
        let mut round = tokio::task::JoinSet::new();
        let mut cases = std::collections::HashSet::new();
        while round.len() < RAISED_AT_ONCE {
            let Some(h) = hits.next_if(|h| !cases.contains(&h.case_id)) else {
                break;
            };
            cases.insert(h.case_id.clone());
            let ledger = ledger.clone();
            round.spawn(async move { raise(&ledger, &h).await });
        }
        let mut go_on = true;
        while let Some(r) = round.join_next().await {
            go_on &= r.unwrap_or(false);
        }
        if !go_on {
            return false;
        }
    }
    true
}

/// Folds one committed event into the rules, reading the case's earlier
/// events first when it reopens a case the rules set aside at its close.
/// Err when the log cannot be read: the process stops (and a restart folds
/// the log again).
async fn fold(
    ledger: &Arc<Ledger>,
    rules: &mut WarningRules,
    pending: &mut Pending,
    f: &Fact<'_>,
) -> Result<(), ()> {
    let mut earlier = if rules.needs_history(f) {
        let (l, case_id, before) = (ledger.clone(), f.case_id.to_string(), f.position);
        match tokio::task::spawn_blocking(move || l.case_facts_before(&case_id, before)).await {
            Ok(Ok(facts)) => Some(facts),
            Ok(Err(e)) => {
                tracing::error!(case_id = %f.case_id, error = %e, "early warning: reading a reopened case failed; stopping");
                return Err(());
            }
            Err(_) => return Err(()),
        }
    } else {
        None
    };
    let read = &mut |_: &str, _: u64| {
        earlier
            .take()
            .ok_or_else(|| "the case's earlier events were not read".to_string())
    };
    pending.fold(rules, f, read).map_err(|e| {
        tracing::error!(case_id = %f.case_id, error = %e, "early warning: folding failed; stopping");
    })
}

/// Folds the log from `next` to its head into the rules.
async fn catch_up(
    ledger: &Arc<Ledger>,
    next: &mut u64,
    rules: &mut WarningRules,
    pending: &mut Pending,
) -> Result<(), ()> {
    loop {
        let l = ledger.clone();
        let from = *next;
        let chunk = match tokio::task::spawn_blocking(move || l.read_all(from, CHUNK)).await {
            Ok(Ok(c)) => c,
            Ok(Err(e)) => {
                tracing::error!(error = %e, "early warning: reading the log failed; stopping");
                return Err(());
            }
            Err(_) => return Err(()),
        };
        let Some(last) = chunk.last().map(|e| e.position) else {
            return Ok(());
        };
        for e in &chunk {
            if let Some(f) = Fact::of(e) {
                fold(ledger, rules, pending, &f).await?;
            }
        }
        *next = last + 1;
    }
}

/// Runs until `stopping` turns true or the ledger stops taking appends.
///
/// It reads the log once at start; after that the writer hands it each
/// commit's events (no second read of what was just written). Should it ever
/// miss a commit (it lagged, or a position is skipped) it reads the log from
/// where it was; events it already folded are skipped by position.
pub async fn run(ledger: Arc<Ledger>, opened: Option<Folded>, mut stopping: watch::Receiver<bool>) {
    let policy = ledger.policy().clone();
    let cfg = &policy.config.early_warning;
    if !cfg.enabled {
        return;
    }
    let tick = Duration::from_secs(cfg.tick_seconds);
    // Follow before the first read, so no commit falls between the two.
    let mut commits = ledger.follow_commits();
    // The log as the ledger opened is folded already (in its opening pass,
    // see [`Folded`]); the first read catches up on what was committed since.
    let (mut rules, mut carried, mut next) = match opened {
        Some(f) => (f.rules, f.pending, f.next),
        None => (WarningRules::new(cfg.rules.clone()), Pending::default(), 1),
    };
    let mut read_log = true;
    let mut received: Vec<Arc<Vec<OwnedFact>>> = Vec::new();
    loop {
        let mut pending = std::mem::take(&mut carried);
        loop {
            match commits.try_recv() {
                Ok(c) => received.push(c),
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Lagged(_)) => read_log = true,
                Err(TryRecvError::Closed) => return,
            }
        }
        if read_log {
            if catch_up(&ledger, &mut next, &mut rules, &mut pending)
                .await
                .is_err()
            {
                return;
            }
            read_log = false;
        }
        for commit in received.drain(..) {
            for f in commit.iter() {
                if f.position < next {
                    continue;
                }
                if f.position > next
                    && catch_up(&ledger, &mut next, &mut rules, &mut pending)
                        .await
                        .is_err()
                {
                    return;
                }
                if f.position == next {
                    if fold(&ledger, &mut rules, &mut pending, &f.fact())
                        .await
                        .is_err()
                    {
                        return;
                    }
                    next += 1;
                }
            }
        }
        let now = crate::time::now_nanos();
        let due = rules.due(now);
        pending.add(&rules, due);
        if !raise_all(&ledger, pending.settle(&rules), &stopping).await {
            return;
        }
        tokio::select! {
            r = commits.recv() => match r {
                Ok(c) => received.push(c),
                Err(RecvError::Lagged(_)) => read_log = true,
                Err(RecvError::Closed) => return,
            },
            _ = tokio::time::sleep(tick) => {}
            _ = stopping.wait_for(|s| *s) => return,
        }
    }
}
