//! The early-warning process: follows the log from the position its table
//! stored (see [`super::warning_table`]), feeds every event to the
//! [`WarningRules`], and appends each warning they raise as a
//! `WarningRaised` event on the triggering event's case, caused by it
//! (`causation_id`), with a deterministic event id. It also wakes every
//! `tick_seconds` to raise warnings for promises that fell due unanswered.
//!
//! Why a restart never raises a warning twice, nor loses one: the table's
//! position moves past a fact only once what the fact raised is in the
//! log, so a restart folds again at most what was not yet raised; a hit
//! whose id is in the log (the ledger's durable event-id index) is dropped,
//! and any append that slips through (a crash between append and
//! acknowledgement) is answered by the ledger as a duplicate, writing
//! nothing.
//!
//! The folds read the store, so they run off the async workers, one round
//! at a time: fold what was committed (or read from the log), judge what
//! fell due, append what was raised, then store the position.

use super::warning_rules::{Hit, Pending, WarningLog, WarningRules};
use super::warning_table::{DueKey, WarningTable};
use crate::ledger::{Ledger, LedgerError};
use crate::projections::fact::{Fact, OwnedFact};
use crate::proto::v1 as pb;
use crate::store::EventLog;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::broadcast::error::{RecvError, TryRecvError};
use tokio::sync::watch;

/// The actor stamped on warnings this process appends.
pub const ACTOR: &str = "policy:early-warning";

/// Events read from the log per round while catching up: what a round
/// raises is appended before the next is read, so a backlog (a policy
/// turned on over a full log) never waits in memory whole.
const CHUNK: usize = 4096;

/// Warnings appended at once. One at a time, each waited for its own
/// durable sync: a backlog of 80,000 took 48 s, and a stop waited for all
/// of it. Appended together they share the writer's group commits.
const RAISED_AT_ONCE: usize = 256;

/// Least time between two rounds while following commits live. A round
/// costs a trip off the async workers, a scan of the due queue and a
/// write of the position, whatever it folds: one per commit, those cost
/// appends at 16 clients about a tenth of their throughput (BENCHMARKS.md,
/// change 60). Commits that come meanwhile wait in the follower's channel
/// ([`crate::ledger::Ledger::follow_commits`] keeps 64, a few times what
/// the writer commits in this time) and are folded in one round. A warning
/// is about a deadline hours or days away; raising it a few milliseconds
/// later changes nothing.
const ROUND_GAP: Duration = Duration::from_millis(10);

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

impl<L: EventLog> WarningLog for Ledger<L> {
    fn holds(&self, event_id: &str) -> Result<bool, String> {
        self.log()
            .event_position(event_id)
            .map(|p| p.is_some())
            .map_err(|e| e.to_string())
    }

    fn earlier(&self, case_id: &str, before: u64) -> Result<Vec<OwnedFact>, String> {
        self.case_facts_before(case_id, before)
            .map_err(|e| e.to_string())
    }
}

/// The process between rounds.
struct Follower {
    ledger: Arc<Ledger>,
    rules: WarningRules,
    pending: Pending,
    /// The first position not folded.
    next: u64,
    /// Places in the due queue judged this round.
    judged: Vec<DueKey>,
    /// The position last stored in the table.
    stored: u64,
}

impl Follower {
    /// Opens the table and the rules (blocking).
    fn open(ledger: Arc<Ledger>, cache: usize) -> Result<Self, String> {
        let rules = ledger.policy().config.early_warning.rules.clone();
        let table =
            WarningTable::open_in(ledger.log().as_ref(), &WarningRules::fingerprint(&rules))
                .map_err(|e| e.to_string())?;
        let next = table.position().map_err(|e| e.to_string())? + 1;
        Ok(Self {
            rules: WarningRules::new(rules, table, cache),
            ledger,
            pending: Pending::default(),
            next,
            judged: Vec::new(),
            stored: next - 1,
        })
    }

    fn fold(&mut self, f: &Fact<'_>) -> Result<(), String> {
        self.pending
            .fold(&mut self.rules, f, self.ledger.as_ref())?;
        self.next = f.position + 1;
        Ok(())
    }

    /// One round's folds (blocking): up to [`CHUNK`] events from the log
    /// when `read_log`, else the commits received; then, once caught up,
    /// the promises due by `now`. Returns the hits to append and whether
    /// the log must be read (more is stored than was folded).
    fn round(
        &mut self,
        read_log: bool,
        received: &[Arc<Vec<OwnedFact>>],
        now: i128,
    ) -> Result<(Vec<Hit>, bool), String> {
        let mut behind = read_log;
        if read_log {
            let chunk = self
                .ledger
                .read_all(self.next, CHUNK)
                .map_err(|e| format!("reading the log: {e}"))?;
            behind = chunk.len() == CHUNK;
            for e in &chunk {
                match Fact::of(e) {
                    Some(f) => self.fold(&f)?,
                    None => self.next = e.position + 1,
                }
            }
        } else {
            'commits: for commit in received {
                for f in commit.iter() {
                    if f.position < self.next {
                        continue;
                    }
                    if f.position > self.next {
                        // Missed a commit: the log has it.
                        behind = true;
                        break 'commits;
                    }
                    self.fold(&f.fact())?;
                }
            }
        }
        if !behind {
            let (hits, judged) = self.rules.due(now, self.next, self.ledger.as_ref())?;
            self.pending.add(self.ledger.as_ref(), hits)?;
            self.judged = judged;
        }
        let hits = self.pending.settle(self.ledger.as_ref())?;
        Ok((hits, behind))
    }

    /// After the round's hits are in the log (blocking): the promises
    /// judged leave the due queue, and the position moves (a tick that
    /// folded nothing writes nothing).
    fn raised(&mut self) -> Result<(), String> {
        self.rules
            .judged_due(&std::mem::take(&mut self.judged))
            .map_err(|e| e.to_string())?;
        if self.next - 1 != self.stored {
            self.rules
                .table()
                .set_position(self.next - 1)
                .map_err(|e| e.to_string())?;
            self.stored = self.next - 1;
        }
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
/// raised after the restart, which folds again from the stored position (not
/// moved past what was not raised) and drops only warnings already in the
/// log. False when the process must stop.
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

/// Runs until `stopping` turns true or the ledger stops taking appends,
/// keeping at most `cache` cases' tracks in memory.
///
/// It catches up from the table's position at start; after that the
/// writer hands it each commit's events (no second read of what was just
/// written). Should it ever miss a commit (it lagged, or a position is
/// skipped) it reads the log from where it was; events it already folded
/// are skipped by position.
pub async fn run(ledger: Arc<Ledger>, cache: usize, mut stopping: watch::Receiver<bool>) {
    let policy = ledger.policy().clone();
    let cfg = &policy.config.early_warning;
    if !cfg.enabled {
        return;
    }
    let tick = Duration::from_secs(cfg.tick_seconds);
    // Follow before the first read, so no commit falls between the two.
    let mut commits = ledger.follow_commits();
    let l = ledger.clone();
    let mut follower = match tokio::task::spawn_blocking(move || Follower::open(l, cache)).await {
        Ok(Ok(f)) => f,
        Ok(Err(e)) => {
            tracing::error!(error = %e, "early warning: its table cannot be opened; not running");
            return;
        }
        Err(_) => return,
    };
    if follower.next > 1 {
        tracing::info!(
            from = follower.next,
            "early warning catches up from its position"
        );
    }
    let mut read_log = true;
    let mut received: Vec<Arc<Vec<OwnedFact>>> = Vec::new();
    loop {
        loop {
            match commits.try_recv() {
                Ok(c) => received.push(c),
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Lagged(_)) => read_log = true,
                Err(TryRecvError::Closed) => return,
            }
        }
        let batch = std::mem::take(&mut received);
        let now = crate::time::now_nanos();
        // A round that raised nothing stores its position in the same
        // trip off the async workers; one that raised waits until its
        // warnings are in the log.
        let done = tokio::task::spawn_blocking(move || {
            let r = follower.round(read_log, &batch, now);
            let stored = match &r {
                Ok((hits, _)) if hits.is_empty() => Some(follower.raised()),
                _ => None,
            };
            (follower, r, stored)
        })
        .await;
        let Ok((f, r, stored)) = done else { return };
        follower = f;
        let hits = match r {
            Ok((hits, behind)) => {
                read_log = behind;
                hits
            }
            Err(e) => {
                tracing::error!(error = %e, "early warning: folding failed; stopping");
                return;
            }
        };
        let stored = match stored {
            Some(stored) => stored,
            None => {
                if !raise_all(&ledger, hits, &stopping).await {
                    return;
                }
                let done = tokio::task::spawn_blocking(move || {
                    let r = follower.raised();
                    (follower, r)
                })
                .await;
                let Ok((f, r)) = done else { return };
                follower = f;
                r
            }
        };
        if let Err(e) = stored {
            tracing::error!(error = %e, "early warning: storing its position failed; stopping");
            return;
        }
        let last_round = tokio::time::Instant::now();
        if read_log {
            if *stopping.borrow() {
                return;
            }
            continue;
        }
        tokio::select! {
            r = commits.recv() => match r {
                Ok(c) => received.push(c),
                Err(RecvError::Lagged(_)) => read_log = true,
                Err(RecvError::Closed) => return,
            },
            _ = tokio::time::sleep(tick) => continue,
            _ = stopping.wait_for(|s| *s) => return,
        }
        // A commit came: let the ones right behind it join its round.
        tokio::select! {
            _ = tokio::time::sleep_until(last_round + ROUND_GAP) => {}
            _ = stopping.wait_for(|s| *s) => return,
        }
    }
}
