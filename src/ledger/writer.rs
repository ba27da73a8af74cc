//! The single writer and its group commit.
//!
//! All appends go through one thread. It takes every request waiting in its
//! queue (up to a batch limit), decides each against the case state as left
//! by the requests before it in the same batch, stages the accepted records,
//! then stores the whole batch in one atomic sled batch and one durable sync.
//! Only after that sync does it update the case states and hand the commit
//! to the projection host (`projection_host`), which writes the read models
//! on disk (the case list, the blind index, the policy board), publishes
//! the new head and answers: an acknowledged append is durable and in the
//! read models, and a refused request has written nothing. Concurrent appends share one sync, which is what makes
//! durable appends fast.
//!
//! On a clustered log each batch first adopts what other nodes committed
//! (`follow`), and a batch the stream refused because another node got
//! there first is decided again in the next one.

use super::case_cache::CaseCache;
use super::error::LedgerError;
use super::preseal::{still_holds, BlindTokens, Presealed};
use super::projection_host::{Committed, Outlets, ProjectionHost, Stopped};
use super::AppendOutcome;
use crate::audit::merkle::{hashes_for_new_leaf, StagedReader};
use crate::audit::record_hash;
use crate::domain::error::ErrorReason;
use crate::domain::rules::{decide, decide_at};
use crate::domain::{event_type_name, CaseState, CaseStatus, RuleViolation};
use crate::policy::deadlines::{with_stamps_of, LeftToServer};
use crate::policy::Policy;
use crate::privacy::access_log::AccessLog;
use crate::privacy::blind_index::BlindIndex;
use crate::privacy::crypto::{seal, DataKey};
use crate::privacy::fields::personal_fields_mut;
use crate::privacy::keystore::{KeyError, KeyStore};
use crate::projections::board_store::BoardStore;
use crate::projections::fact::OwnedFact;
use crate::projections::summary::{summarize, CaseIndex};
use crate::proto::v1::{self as pb, case_event::Kind, expected_version};
use crate::store::witness::Witness;
use crate::store::{EventLog, NewRecord};
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prost::Message;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use tokio::sync::{broadcast, mpsc, oneshot, watch};

/// Schema version of records written by this build.
pub const SCHEMA_VERSION: u32 = 1;

/// Most requests folded into one group commit.
pub const MAX_BATCH_REQUESTS: usize = 1024;

pub(crate) enum Command {
    Append {
        request: pb::AppendRequest,
        /// The request sealed by its handler, if it could be.
        presealed: Option<Box<Presealed>>,
        actor: String,
        line_scope: Option<String>,
        reply: Reply,
        /// The caller's span: the writer's work for the request is traced
        /// as its child, the group commit as linked to it.
        span: tracing::Span,
    },
    /// PII-access log entries to make durable before the response that
    /// revealed the data is sent; synced with the group commit.
    RecordAccess {
        entries: Vec<pb::PiiAccess>,
        reply: oneshot::Sender<Result<(), LedgerError>>,
    },
    Shutdown {
        reply: oneshot::Sender<()>,
    },
    /// The clustered log moved on (see `follow`): adopt what other nodes
    /// committed. Every group commit does first; this one may have no
    /// append in it.
    CatchUp,
    /// Take no more appends, saying why (the background scrub found the
    /// store damaged): the same state as after a failed durable write.
    Refuse {
        why: String,
        reply: oneshot::Sender<()>,
    },
}

/// The answer to a request to record PII-access entries.
type AccessReply = oneshot::Sender<Result<(), LedgerError>>;

/// Where an append's answer goes.
pub(crate) type Reply = oneshot::Sender<Result<AppendOutcome, LedgerError>>;

/// An event stored (or staged) under an id, as needed to answer a retry or
/// check a correction.
struct KnownEvent {
    position: u64,
    case_id: String,
    case_version: u64,
    event_type: String,
    payload: bytes::Bytes,
    occurred_at: Option<prost_types::Timestamp>,
}

/// Counters of the writer, read by `Ops.GetStats` and `/metrics`.
pub struct WriterStats {
    pub commits: AtomicU64,
    pub records: AtomicU64,
    pub requests: AtomicU64,
    pub max_batch_requests: AtomicU64,
    /// Requests whose handler's sealing the writer took.
    pub presealed: AtomicU64,
    /// Case states the writer holds, and those it folded from the log
    /// because its cache did not hold them (see `case_cache`).
    pub case_states_cached: AtomicU64,
    pub case_state_loads: AtomicU64,
    /// Records other nodes of a clustered ledger committed, adopted here.
    pub adopted: AtomicU64,
    /// Records this node acknowledged, lost from its local copy in a crash
    /// and fetched back from the stream at start (see `restore`).
    pub fetched_back: AtomicU64,
    /// Where the writer thread's time went, nanoseconds.
    pub time: WriterTime,
    /// The longest group-commit sync and the slow ones.
    pub syncs: super::SyncWatch,
    /// Requests and records per group commit, and each commit's sync, as
    /// histograms: what `/metrics` shows of the group commit's shape.
    pub commit_requests: Histogram,
    pub commit_records: Histogram,
    pub sync_seconds: Histogram,
}

impl Default for WriterStats {
    fn default() -> Self {
        Self {
            commits: AtomicU64::default(),
            records: AtomicU64::default(),
            requests: AtomicU64::default(),
            max_batch_requests: AtomicU64::default(),
            presealed: AtomicU64::default(),
            case_states_cached: AtomicU64::default(),
            case_state_loads: AtomicU64::default(),
            adopted: AtomicU64::default(),
            fetched_back: AtomicU64::default(),
            time: WriterTime::default(),
            syncs: super::SyncWatch::default(),
            // 1, 2, 4 … 1024 (MAX_BATCH_REQUESTS).
            commit_requests: Histogram::new(exponential_buckets(1.0, 2.0, 11)),
            commit_records: Histogram::new(exponential_buckets(1.0, 2.0, 14)),
            // 50 µs … ~1.6 s: about 1 ms on an SSD, the slow ones above 100 ms.
            sync_seconds: Histogram::new(exponential_buckets(0.00005, 2.0, 16)),
        }
    }
}

/// The writer thread's wall-clock time by phase, nanoseconds since start
/// (`Ops.GetStats`, the benchmark): what bounds appends on a given machine
/// and disk, without a profiler.
#[derive(Default)]
pub struct WriterTime {
    /// Idle time so far, and since when the writer has been waiting, if it
    /// is: a wait is counted while it lasts, so a reading after a quiet
    /// spell is not credited with it only once the next request arrives.
    idle: std::sync::Mutex<(std::time::Duration, Option<std::time::Instant>)>,
    pub staging: AtomicU64,
    pub storing: AtomicU64,
    pub syncing: AtomicU64,
    pub publishing: AtomicU64,
}

impl WriterTime {
    /// Idle nanoseconds so far, the current wait included.
    pub fn idle_nanos(&self) -> u64 {
        let (total, since) = *self.idle.lock().expect("writer time lock");
        let now = since.map_or(std::time::Duration::ZERO, |s| s.elapsed());
        crate::time::duration_nanos(total + now)
    }

    fn wait(&self) {
        self.idle.lock().expect("writer time lock").1 = Some(std::time::Instant::now());
    }

    fn work(&self) -> std::time::Instant {
        let now = std::time::Instant::now();
        let mut idle = self.idle.lock().expect("writer time lock");
        if let Some(since) = idle.1.take() {
            idle.0 += now - since;
        }
        now
    }

    fn add(counter: &AtomicU64, since: std::time::Instant) -> std::time::Instant {
        let now = std::time::Instant::now();
        counter.fetch_add(crate::time::duration_nanos(now - since), Ordering::Relaxed);
        now
    }
}

/// Whether the writer keeps a case's state in its cache between commits:
/// all but closed cases, as the cache's capacity allows. A closed case takes only a reopen, a note or a
/// correction, rarely, and most cases end closed; keeping them all cost
/// about 3.4 KB per case for as long as the server ran (BENCHMARKS.md,
/// "Where the memory goes"). A closed case's state is folded from its
/// stream when a request names it ([`Writer::ensure_loaded`]).
pub(crate) fn kept_in_memory(state: &CaseState) -> bool {
    state.status != CaseStatus::Closed
}

pub(crate) struct Writer<L: EventLog> {
    pub stats: Arc<WriterStats>,
    pub log: Arc<L>,
    /// States of recently committed cases but closed ones (see
    /// [`kept_in_memory`] and `case_cache`); a miss folds the case's
    /// stream ([`Writer::ensure_loaded`]).
    pub cases: CaseCache,
    /// Closed cases folded from the log for this batch; dropped after it.
    pub loaded: Vec<String>,
    pub index: Arc<CaseIndex>,
    pub board: Arc<BoardStore>,
    pub policy: Arc<Policy>,
    pub keys: Arc<KeyStore>,
    pub blind: Arc<BlindIndex>,
    pub head: u64,
    pub head_tx: watch::Sender<u64>,
    /// The last position known durable, shared with the ledger's readers
    /// (see [`Writer::mark_committed`]).
    pub committed: Arc<AtomicU64>,
    /// Each commit's accepted events, for processes following the log
    /// (early warning) so they need not read back what was just written.
    pub commits_tx: broadcast::Sender<Arc<Vec<OwnedFact>>>,
    pub last_recorded_at: i128,
    /// Why appends are refused, once they are (shared with the
    /// projection host, which may find the reason).
    pub failed: Stopped,
    /// The PII-access log, whose entries each commit makes durable.
    pub access: Arc<AccessLog>,
    /// The acknowledged head, recorded after every durable write and before
    /// any answer (see `store::witness`).
    pub witness: Witness,
    /// The log follows a clustered one that other nodes write too
    /// ([`EventLog::follows_upstream`]); then `follow` adopts their commits.
    pub follows: bool,
    /// Set when a catch-up was asked for and not yet done (one queued
    /// [`Command::CatchUp`] at a time).
    pub nudged: Arc<std::sync::atomic::AtomicBool>,
    /// The highest head a read asked of the stream (see `Ledger`); a
    /// catch-up adopts up to it, and to the announced head.
    pub known_upstream: Arc<AtomicU64>,
    /// The writer's own note that its next batch must first look at the
    /// stream (after a refused or failed write). Kept apart from `nudged`:
    /// setting that one without a queued command would silence every later
    /// nudge until an append came, and a node asked only to read would
    /// never catch up.
    pub look: bool,
    /// Taking turns at the stream's head with another node that appends
    /// (see `follow`).
    pub turns: super::turns::Turns,
}

/// An accepted request as it came, to decide again.
pub(crate) struct Retry {
    pub request: pb::AppendRequest,
    pub actor: String,
    pub line_scope: Option<String>,
    pub span: tracing::Span,
}

impl Retry {
    pub(super) fn again(self, reply: Reply) -> Command {
        Command::Append {
            request: self.request,
            presealed: None,
            actor: self.actor,
            line_scope: self.line_scope,
            reply,
            span: self.span,
        }
    }
}

/// A request refused against this node's log, its answer held until the
/// log is known to have been the stream's at the decision.
pub(crate) type Refused = (Reply, LedgerError, Retry);

/// What one batch has staged but not yet stored.
#[derive(Default)]
pub(super) struct Staged {
    pub(super) records: Vec<NewRecord>,
    /// Merkle tree hashes the staged records complete, with their stored
    /// indexes, in order: a batch's indexes are contiguous.
    pub(super) tree: Vec<(u64, [u8; 32])>,
    pub(super) cases: HashMap<String, CaseState>,
    events: HashMap<String, KnownEvent>,
    pub(super) replies: Vec<(Reply, AppendOutcome)>,
    /// The accepted events, for the policy board once they are durable.
    pub(super) facts: Vec<OwnedFact>,
    /// Blind-index tokens of customers opened in this batch.
    pub(super) blind: Vec<BlindTokens>,
    /// Data keys of customers whose first personal data is in this batch;
    /// stored with the commit.
    new_keys: HashMap<String, DataKey>,
    /// PII-access entries of this batch, recorded and synced with it.
    access: Vec<(Vec<pb::PiiAccess>, AccessReply)>,
    /// On a clustered log, each accepted request as it came, beside its
    /// reply: decided again if another node commits first.
    retries: Vec<Retry>,
    /// On a clustered log, the requests refused, answered only once the
    /// log is known not to have moved on under the decision (see `follow`).
    pub(super) refused: Vec<Refused>,
}

impl<L: EventLog> Writer<L> {
    pub fn run(mut self, mut rx: mpsc::Receiver<Command>) {
        let mut shutdown: Option<oneshot::Sender<()>> = None;
        let outlets = Outlets {
            board: self.board.clone(),
            index: self.index.clone(),
            blind: self.blind.clone(),
            head_tx: std::mem::replace(&mut self.head_tx, watch::channel(self.head).0),
            commits_tx: self.commits_tx.clone(),
        };
        let host = match ProjectionHost::start(outlets, self.failed.clone()) {
            Ok(h) => h,
            Err(e) => {
                tracing::error!(error = %e, "cannot start the projection host thread; refusing appends");
                let _ = self
                    .failed
                    .set(format!("the projection host thread could not start ({e})"));
                // Appends are refused before they reach a commit, so a
                // host that never runs is never handed one.
                ProjectionHost::idle(self.failed.clone())
            }
        };
        let time = &Arc::clone(&self.stats).time;
        // Requests a batch could not take (a clustered log's batch bound,
        // or another node committed first): first in the next batch.
        let mut carry: std::collections::VecDeque<Command> = Default::default();
        while shutdown.is_none() {
            time.wait();
            let first = match carry.pop_front() {
                Some(c) => c,
                None => match rx.blocking_recv() {
                    Some(c) => c,
                    None => break,
                },
            };
            // Requests that come meanwhile join this batch.
            self.wait_for_turn();
            let staging = time.work();
            let mut batch = vec![first];
            batch.extend(carry.drain(..));
            while batch.len() < MAX_BATCH_REQUESTS {
                match rx.try_recv() {
                    Ok(c) => batch.push(c),
                    Err(_) => break,
                }
            }
            // On a clustered log, what other nodes committed (as far as
            // this node has heard) comes first. A batch decided on a log
            // that moved on meanwhile is refused by the stream and decided
            // again; its refusals wait for that (`follow`).
            let behind = self.follow_upstream(&host).err();
            let bound = self.log.max_write_records().unwrap_or(usize::MAX);
            let mut staged = Staged::default();
            let commit_span = tracing::info_span!(
                target: crate::telemetry::TRACE_TARGET,
                "ledger.group_commit",
                requests = batch.len(),
                records = tracing::field::Empty
            );
            for cmd in batch {
                match cmd {
                    Command::Append {
                        request,
                        presealed,
                        actor,
                        line_scope,
                        reply,
                        span,
                    } => {
                        commit_span.follows_from(&span);
                        let _decide = tracing::info_span!(
                            target: crate::telemetry::TRACE_TARGET,
                            parent: &span,
                            "ledger.decide",
                            case_id = %request.case_id,
                            events = request.events.len()
                        )
                        .entered();
                        if let Some(why) = self.failed.get() {
                            let _ = reply.send(Err(LedgerError::Unavailable(why.clone())));
                            continue;
                        }
                        if let Some(why) = &behind {
                            let _ = reply.send(Err(LedgerError::Unavailable(why.clone())));
                            continue;
                        }
                        if !staged.records.is_empty()
                            && staged.records.len() + request.events.len() > bound
                        {
                            carry.push_back(Command::Append {
                                request,
                                presealed,
                                actor,
                                line_scope,
                                reply,
                                span,
                            });
                            continue;
                        }
                        let retry = self.follows.then(|| Retry {
                            request: request.clone(),
                            actor: actor.clone(),
                            line_scope: line_scope.clone(),
                            span: span.clone(),
                        });
                        match self.stage(
                            &mut staged,
                            request,
                            presealed,
                            &actor,
                            line_scope.as_deref(),
                        ) {
                            Ok(outcome) => {
                                staged.replies.push((reply, outcome));
                                staged.retries.extend(retry);
                            }
                            Err(e) => match retry {
                                Some(r) => staged.refused.push((reply, e, r)),
                                None => {
                                    let _ = reply.send(Err(e));
                                }
                            },
                        }
                    }
                    Command::RecordAccess { entries, reply } => {
                        if let Some(why) = self.failed.get() {
                            let _ = reply.send(Err(LedgerError::Unavailable(why.clone())));
                            continue;
                        }
                        staged.access.push((entries, reply));
                    }
                    Command::Shutdown { reply } => shutdown = Some(reply),
                    Command::CatchUp => {}
                    Command::Refuse { why, reply } => {
                        tracing::error!(reason = %why, "refusing further appends");
                        let _ = self.failed.set(why);
                        let _ = reply.send(());
                    }
                }
            }
            let committing = WriterTime::add(&time.staging, staging);
            let synced_before = self.log.sync_nanos();
            let records = staged.records.len();
            commit_span.record("records", records);
            let stored = commit_span.in_scope(|| self.commit(staged, &host, &mut carry));
            let synced = self.log.sync_nanos().saturating_sub(synced_before);
            time.syncing.fetch_add(synced, Ordering::Relaxed);
            if stored.is_some() {
                self.stats
                    .syncs
                    .record(std::time::Duration::from_nanos(synced), records);
                self.stats.sync_seconds.observe(synced as f64 / 1e9);
            }
            let stored = stored.unwrap_or_else(std::time::Instant::now);
            let handing_over =
                crate::time::duration_nanos(stored.saturating_duration_since(committing));
            time.storing
                .fetch_add(handing_over.saturating_sub(synced), Ordering::Relaxed);
            self.drop_loaded();
            WriterTime::add(&time.publishing, stored);
        }
        // Queue closed or shutdown asked: everything before it is committed.
        rx.close();
        while let Some(cmd) = carry.pop_front().or_else(|| rx.try_recv().ok()) {
            match cmd {
                Command::Append { reply, .. } => {
                    let _ = reply.send(Err(LedgerError::Unavailable(
                        "the ledger is shutting down".into(),
                    )));
                }
                Command::RecordAccess { reply, .. } => {
                    let _ = reply.send(Err(LedgerError::Unavailable(
                        "the ledger is shutting down".into(),
                    )));
                }
                Command::Shutdown { reply } | Command::Refuse { reply, .. } => {
                    let _ = reply.send(());
                }
                Command::CatchUp => {}
            }
        }
        // Every commit folded and answered before the shutdown is.
        host.finish();
        if let Some(reply) = shutdown {
            let _ = reply.send(());
        }
    }

    /// Stores and publishes a staged batch, then answers its requests.
    /// Returns when the store answered (`None` if nothing was stored), for
    /// the writer's time by phase.
    fn commit(
        &mut self,
        staged: Staged,
        host: &ProjectionHost,
        carry: &mut std::collections::VecDeque<Command>,
    ) -> Option<std::time::Instant> {
        let store_answered;
        let Staged {
            records,
            cases,
            replies,
            tree,
            facts,
            blind,
            new_keys,
            access,
            retries,
            refused,
            ..
        } = staged;
        let access = self.record_access(access);
        if !records.is_empty() {
            // New data keys first. A customer erased since its key was made
            // (its tombstone is in the way) refuses the whole group commit:
            // nothing is written, the keys stored for it are taken back, and
            // every request in it may simply be retried. On a clustered log
            // a key once stored stays, unused until the customer's first
            // data: another node may already have sealed with it.
            let mut stored: Vec<(&String, &DataKey)> = Vec::new();
            let mut keys_stored = Ok(());
            for (customer, key) in &new_keys {
                match self.keys.store(customer, key) {
                    Ok(()) => stored.push((customer, key)),
                    Err(KeyError::Erased(c)) => {
                        for (customer, key) in stored.into_iter().filter(|_| !self.follows) {
                            if let Err(e) = self.keys.unstore(customer, key) {
                                tracing::warn!(error = %e, %customer, "an unused data key stayed stored");
                            }
                        }
                        let why = format!(
                            "customer {c} was erased while this group commit was prepared; nothing was written, retry"
                        );
                        for (reply, _) in replies {
                            let _ = reply.send(Err(LedgerError::Unavailable(why.clone())));
                        }
                        for (reply, _, _) in refused {
                            let _ = reply.send(Err(LedgerError::Unavailable(why.clone())));
                        }
                        return self.commit_access_only(access);
                    }
                    // Another node stored the customer's key first: decided
                    // again, these requests seal with that one.
                    Err(KeyError::Exists(_)) if self.follows => {
                        keys_stored = Err(crate::store::StoreError::Conflict {
                            upstream_head: self.head,
                        });
                        break;
                    }
                    Err(KeyError::Unavailable(m)) => {
                        keys_stored = Err(crate::store::StoreError::Unavailable(m));
                        break;
                    }
                    Err(e) => {
                        keys_stored = Err(crate::store::StoreError::Io(std::io::Error::other(
                            e.to_string(),
                        )));
                        break;
                    }
                }
            }
            let writing = std::time::Instant::now();
            let written = keys_stored
                .and_then(|_| self.log.write_durable(&records, &tree))
                .and_then(|_| {
                    let head = records.last().map(|r| r.position).unwrap_or(self.head);
                    self.witness_head(head)
                });
            if written.is_ok() {
                let head = records.last().map(|r| r.position).unwrap_or(self.head);
                self.turns.committed(head, writing.elapsed());
            }
            store_answered = Some(std::time::Instant::now());
            let written = match written {
                Err(e) if self.follows && Self::passing(&e) => {
                    // Nothing of it is known to be stored (its keys stay,
                    // see above); another node's commit is adopted by the
                    // next batch, which decides these requests again.
                    self.requeue(e, replies, retries, refused, carry);
                    self.commit_access_only(access);
                    return store_answered;
                }
                w => w,
            };
            if let Err(e) = written {
                for (reply, _) in access {
                    let _ = reply.send(Err(LedgerError::Storage(format!(
                        "the PII-access log could not be made durable: {e}"
                    ))));
                }
                let why = self.stop_appends("a durable write", &e);
                for (reply, _) in replies {
                    let _ = reply.send(Err(LedgerError::Storage(why.clone())));
                }
                for (reply, _, _) in refused {
                    let _ = reply.send(Err(LedgerError::Storage(why.clone())));
                }
                return store_answered;
            }
            self.head = records.last().map(|r| r.position).unwrap_or(self.head);
            // The stream took the batch at this node's head: the refusals
            // were decided on the log as it was.
            Self::answer_refusals(refused);
            let requests = replies.iter().filter(|(_, o)| !o.duplicate).count() as u64;
            self.stats.commits.fetch_add(1, Ordering::Relaxed);
            self.stats
                .records
                .fetch_add(records.len() as u64, Ordering::Relaxed);
            self.stats.requests.fetch_add(requests, Ordering::Relaxed);
            self.stats
                .max_batch_requests
                .fetch_max(requests, Ordering::Relaxed);
            self.stats.commit_requests.observe(requests as f64);
            self.stats.commit_records.observe(records.len() as f64);
            let rows: Vec<_> = cases.iter().map(|(id, s)| summarize(id, s)).collect();
            for (case_id, state) in cases {
                if kept_in_memory(&state) {
                    self.cases.insert(case_id, state);
                } else {
                    self.cases.remove(&case_id);
                }
            }

            for (reply, recorded) in access {
                let _ = reply.send(recorded);
            }
            // Answered now that the commit is durable; a read that comes
            // after an answer waits for the projection host to fold it
            // (`Ledger::caught_up`).
            self.mark_committed();
            Self::answer(replies);
            host.hand_over(Committed {
                facts,
                rows,
                customers: blind,
                erased: Vec::new(),
                head: self.head,
            });
        } else {
            if !refused.is_empty() {
                self.settle_refusals(refused, carry);
            }
            store_answered = self.commit_access_only(access);
            // Retries only: what they found is in commits already durable
            // (and marked committed).
            Self::answer(replies);
        }
        store_answered
    }

    /// Records that everything through the writer's head is durable:
    /// before any answer that says so, since reads wait for the read
    /// models to reach this position.
    pub(super) fn mark_committed(&self) {
        self.committed.store(self.head, Ordering::Release);
    }

    fn answer(replies: Vec<(Reply, AppendOutcome)>) {
        for (reply, outcome) in replies {
            let _ = reply.send(Ok(outcome));
        }
    }

    /// After a failed durable write (`what`): the disk's state is unknown
    /// until a restart recovers it, so no further append is taken. Returns
    /// the reason every refused request is given.
    pub(super) fn stop_appends(&mut self, what: &str, e: &crate::store::StoreError) -> String {
        let why = format!(
            "{what} failed ({e}); the ledger takes no appends until it is restarted and has recovered"
        );
        tracing::error!(error = %e, "{what} failed; refusing further appends");
        let _ = self.failed.set(why.clone());
        why
    }

    /// Makes a batch's PII-access entries durable when it stores no record
    /// (the records' commit syncs them otherwise), then answers them.
    fn commit_access_only(
        &mut self,
        access: Vec<(AccessReply, Result<(), LedgerError>)>,
    ) -> Option<std::time::Instant> {
        if access.is_empty() {
            return None;
        }
        let synced = self.log.sync().and_then(|_| self.witness_head(self.head));
        let answered = Some(std::time::Instant::now());
        if let Err(e) = synced {
            let why = self.stop_appends("a durable write of the PII-access log", &e);
            for (reply, _) in access {
                let _ = reply.send(Err(LedgerError::Storage(why.clone())));
            }
            return answered;
        }
        for (reply, recorded) in access {
            let _ = reply.send(recorded);
        }
        answered
    }

    /// Writes a batch's PII-access entries into the access log (made durable
    /// by the commit's sync); each request's reply with whether its entries
    /// were written.
    fn record_access(
        &mut self,
        access: Vec<(Vec<pb::PiiAccess>, AccessReply)>,
    ) -> Vec<(AccessReply, Result<(), LedgerError>)> {
        access
            .into_iter()
            .map(|(entries, reply)| {
                let mut result = Ok(());
                for e in entries {
                    if let Err(e) = self.access.record(e) {
                        result = Err(LedgerError::Storage(format!(
                            "the PII-access log could not be written: {e}"
                        )));
                        break;
                    }
                }
                (reply, result)
            })
            .collect()
    }

    /// Records `head` (with its root and the access log's head) in the
    /// integrity witness: after the store's sync, before any answer.
    pub(super) fn witness_head(&mut self, head: u64) -> Result<(), crate::store::StoreError> {
        let root = crate::audit::merkle::root(
            &crate::audit::merkle::StoreReader(self.log.as_ref()),
            head,
        )?;
        let (count, last) = self.access.head();
        self.witness
            .record(head, root, count, last)
            .map_err(|e| crate::store::StoreError::Corrupt(e.to_string()))
    }

    /// Makes a case's state available to this batch when the cache does not
    /// hold it (it is closed, or was dropped from the cache): folded from
    /// its stream (every record of the case, in version order, with its
    /// stored hash, position and recorded time, as a start folds it) into
    /// `cases` until the batch is committed. Nothing to do for a case that
    /// is in memory, staged, or new.
    pub(super) fn ensure_loaded(
        &mut self,
        staged: &Staged,
        case_id: &str,
    ) -> Result<(), LedgerError> {
        if staged.cases.contains_key(case_id)
            || self.cases.contains_key(case_id)
            || self.log.case_positions(case_id, 1, false, 1)?.is_empty()
        {
            return Ok(());
        }
        let mut state = CaseState::default();
        crate::projections::case_stream::for_each_stored(
            self.log.as_ref(),
            case_id,
            u64::MAX,
            |rec, event, bytes| state.apply_record(rec, event, record_hash(bytes)),
        )?;
        tracing::debug!(%case_id, version = state.version, "case state folded from the log");
        self.stats.case_state_loads.fetch_add(1, Ordering::Relaxed);
        self.cases.insert(case_id.to_string(), state);
        self.loaded.push(case_id.to_string());
        Ok(())
    }

    /// Drops the closed cases this batch folded that are still closed, and
    /// the states beyond the cache's capacity.
    fn drop_loaded(&mut self) {
        for case_id in std::mem::take(&mut self.loaded) {
            if self.cases.get(&case_id).is_some_and(|s| !kept_in_memory(s)) {
                self.cases.remove(&case_id);
            }
        }
        self.cases.trim();
        self.stats
            .case_states_cached
            .store(self.cases.len() as u64, Ordering::Relaxed);
    }

    fn known_event(
        &self,
        staged: &Staged,
        event_id: &str,
    ) -> Result<Option<KnownEvent>, LedgerError> {
        if let Some(k) = staged.events.get(event_id) {
            return Ok(Some(KnownEvent {
                position: k.position,
                case_id: k.case_id.clone(),
                case_version: k.case_version,
                event_type: k.event_type.clone(),
                payload: k.payload.clone(),
                occurred_at: k.occurred_at,
            }));
        }
        let Some(pos) = self.log.event_position(event_id)? else {
            return Ok(None);
        };
        let bytes = self.log.read(pos)?.ok_or_else(|| {
            LedgerError::Storage(format!("event index points at missing position {pos}"))
        })?;
        let rec = pb::StoredRecord::decode(bytes.as_slice())
            .map_err(|e| LedgerError::Storage(format!("record {pos} does not decode: {e}")))?;
        Ok(Some(KnownEvent {
            position: pos,
            case_id: rec.case_id,
            case_version: rec.case_version,
            event_type: rec.event_type,
            payload: rec.payload,
            occurred_at: rec.occurred_at,
        }))
    }

    /// Decides one request and stages its records; touches nothing durable.
    fn stage(
        &mut self,
        staged: &mut Staged,
        mut req: pb::AppendRequest,
        presealed: Option<Box<Presealed>>,
        actor: &str,
        line_scope: Option<&str>,
    ) -> Result<AppendOutcome, LedgerError> {
        self.ensure_loaded(staged, &req.case_id)?;
        // Sealing and stamping touch different fields, and sealing is
        // deterministic: sealed here or by the handler, the bytes are equal.
        let presealed = presealed.filter(|p| {
            self.note_presealed(still_holds(
                &self.keys,
                self.case_customer(staged, &req.case_id),
                &req,
                p,
            ))
        });
        let left;
        let (blind, new_keys) = match presealed {
            Some(p) => {
                req = p.request;
                left = self.stamp_deadlines(staged, &mut req)?;
                (p.blind, HashMap::new())
            }
            None => {
                left = self.stamp_deadlines(staged, &mut req)?;
                self.seal_personal_data(staged, &mut req)?
            }
        };
        let payloads: Vec<Vec<u8>> = req
            .events
            .iter()
            .map(|e| {
                e.event
                    .as_ref()
                    .map(|ev| ev.encode_to_vec())
                    .unwrap_or_default()
            })
            .collect();

        // The line first: nothing of another line's case — not even whether
        // an event id is stored there — is told to a line-scoped caller.
        if let Some(scope) = line_scope {
            let opening = req.events.iter().find_map(|e| {
                match e.event.as_ref().and_then(|x| x.kind.as_ref()) {
                    Some(Kind::CaseOpened(o)) => Some(o.business_line.as_str()),
                    _ => None,
                }
            });
            let known = staged
                .cases
                .get(&req.case_id)
                .or_else(|| self.cases.get(&req.case_id))
                .filter(|s| s.exists())
                .map(|s| s.business_line.as_str());
            if known.or(opening).is_some_and(|l| l != scope) {
                return Err(LedgerError::PermissionDenied(format!(
                    "case {} is not a case of business line {scope:?}, the only line this caller may touch",
                    req.case_id
                )));
            }
        }

        // Idempotency: a retry of a stored request returns the original result.
        let mut existing = Vec::new();
        for (i, e) in req.events.iter().enumerate() {
            if let Some(k) = self.known_event(staged, &e.event_id)? {
                let same = k.case_id == req.case_id
                    && k.occurred_at == e.occurred_at
                    && (k.payload == payloads[i]
                        || same_but_stamps(
                            &k.payload,
                            e.event.as_ref(),
                            left.get(i).copied().unwrap_or_default(),
                        ));
                if !same {
                    return Err(LedgerError::EventIdConflict {
                        index: i,
                        event_id: e.event_id.clone(),
                        // A line-scoped caller learns nothing of where.
                        reason: if line_scope.is_some() {
                            "stored with other content".to_string()
                        } else {
                            format!(
                                "stored at position {} (case {}) with other content",
                                k.position, k.case_id
                            )
                        },
                    });
                }
                existing.push((i, k));
            }
        }
        if !existing.is_empty() {
            let consecutive = existing.len() == req.events.len()
                && existing
                    .windows(2)
                    .all(|w| w[1].1.position == w[0].1.position + 1);
            if !consecutive {
                let (i, k) = &existing[0];
                return Err(LedgerError::EventIdConflict {
                    index: *i,
                    event_id: req.events[*i].event_id.clone(),
                    reason: format!(
                        "stored at position {} by an earlier request; a retry must repeat that request exactly",
                        k.position
                    ),
                });
            }
            let first = &existing[0].1;
            let last = &existing[existing.len() - 1].1;
            return Ok(AppendOutcome {
                first_position: first.position,
                last_position: last.position,
                case_version: last.case_version,
                duplicate: true,
            });
        }

        let mut state = match staged.cases.get(&req.case_id) {
            Some(s) => s.clone(),
            None => self.cases.get(&req.case_id).cloned().unwrap_or_default(),
        };
        if let Some(kind) = req.expected_version.as_ref().and_then(|e| e.kind.as_ref()) {
            let ok = match kind {
                expected_version::Kind::Any(_) => true,
                expected_version::Kind::NoCase(_) => !state.exists(),
                expected_version::Kind::Exact(v) => state.version == *v,
            };
            if !ok {
                return Err(LedgerError::WrongExpectedVersion {
                    case_id: req.case_id.clone(),
                    expected: match kind {
                        expected_version::Kind::NoCase(_) => "no case".into(),
                        expected_version::Kind::Exact(v) => format!("version {v}"),
                        expected_version::Kind::Any(_) => "any".into(),
                    },
                    actual: state.version,
                });
            }
        }

        let now = crate::time::now_nanos().max(self.last_recorded_at);
        let recorded_at = crate::time::nanos_ts(now);
        let mut next_position = self.head + staged.records.len() as u64 + 1;
        let first_position = next_position;
        let mut new_records = Vec::with_capacity(req.events.len());
        let mut new_events = Vec::with_capacity(req.events.len());
        let mut staged_facts = Vec::with_capacity(req.events.len());
        for (i, (e, payload)) in req.events.into_iter().zip(payloads).enumerate() {
            let event = e.event.unwrap_or_default();
            decide(&state, &event).map_err(|violation| LedgerError::Rule {
                index: i,
                violation,
            })?;
            let occurred = e
                .occurred_at
                .as_ref()
                .map(crate::time::ts_nanos)
                .unwrap_or(0);
            decide_at(&state, &event, occurred).map_err(|violation| LedgerError::Rule {
                index: i,
                violation,
            })?;
            if let Some(Kind::EventCorrected(c)) = &event.kind {
                self.check_correction(staged, &new_events, &req.case_id, c)
                    .map_err(|violation| LedgerError::Rule {
                        index: i,
                        violation,
                    })?;
            }
            let event_type = event.kind.as_ref().map(event_type_name).unwrap_or_default();
            let record = pb::StoredRecord {
                position: next_position,
                case_id: req.case_id.clone(),
                case_version: state.version + 1,
                event_id: e.event_id.clone(),
                event_type: event_type.to_string(),
                schema_version: SCHEMA_VERSION,
                occurred_at: e.occurred_at,
                recorded_at: Some(recorded_at),
                actor: actor.to_string(),
                acted_for_agent: e.acted_for_agent,
                correlation_id: e.correlation_id.clone(),
                causation_id: e.causation_id,
                payload: payload.into(),
                prev_hash: state.last_hash.to_vec(),
                imported: e.imported,
            };
            let bytes = record.encode_to_vec();
            let hash = record_hash(&bytes);
            state.evolve(&event);
            staged_facts.push(OwnedFact {
                position: next_position,
                case_id: req.case_id.clone(),
                event_id: e.event_id.clone(),
                occurred_at: e.occurred_at,
                recorded_at: now,
                correlation_id: e.correlation_id,
                imported: e.imported,
                event,
            });
            state.version += 1;
            state.last_hash = hash;
            state.last_position = next_position;
            state.last_recorded_at = now;
            new_events.push((
                e.event_id.clone(),
                KnownEvent {
                    position: next_position,
                    case_id: req.case_id.clone(),
                    case_version: record.case_version,
                    event_type: record.event_type,
                    payload: record.payload,
                    occurred_at: record.occurred_at,
                },
            ));
            new_records.push(NewRecord {
                position: next_position,
                case_id: req.case_id.clone(),
                case_version: record.case_version,
                event_id: e.event_id,
                bytes,
            });
            next_position += 1;
        }
        // Every event is accepted: extend the Merkle tree over the new records.
        // The hashes go into the batch only if all of them can be computed:
        // a refused request leaves nothing staged.
        let staged_before = staged.tree.len();
        for r in &new_records {
            let reader = StagedReader {
                staged: &staged.tree,
                log: self.log.as_ref(),
            };
            match hashes_for_new_leaf(r.position - 1, &r.bytes, &reader) {
                // Later leaves of this request read these, so they are staged now.
                Ok(hashes) => staged.tree.extend(hashes),
                Err(e) => {
                    staged.tree.truncate(staged_before);
                    return Err(e.into());
                }
            }
        }
        self.last_recorded_at = now;
        let outcome = AppendOutcome {
            first_position,
            last_position: next_position - 1,
            case_version: state.version,
            duplicate: false,
        };
        staged.records.extend(new_records);
        staged.events.extend(new_events);
        staged.facts.extend(staged_facts);
        staged.blind.extend(blind);
        staged.new_keys.extend(new_keys);
        staged.cases.insert(req.case_id, state);
        Ok(outcome)
    }

    /// The case's customer as this batch leaves it so far ("" before the
    /// case is opened).
    fn case_customer(&self, staged: &Staged, case_id: &str) -> String {
        staged
            .cases
            .get(case_id)
            .or_else(|| self.cases.get(case_id))
            .map(|s| s.customer_id.clone())
            .unwrap_or_default()
    }

    /// Counts whether a handler's sealing was taken (for `Ops.GetStats`).
    fn note_presealed(&self, taken: bool) -> bool {
        if taken {
            self.stats.presealed.fetch_add(1, Ordering::Relaxed);
        }
        taken
    }

    /// Encrypts every personal field of the request under the customer's
    /// data key (created with its first personal data), and computes the
    /// blind-index tokens of a newly opened customer's phone and account.
    /// New customer keys are returned, not stored: the request may still be
    /// refused, and a refused request writes nothing.
    fn seal_personal_data(
        &self,
        staged: &Staged,
        req: &mut pb::AppendRequest,
    ) -> Result<(Vec<BlindTokens>, HashMap<String, DataKey>), LedgerError> {
        let mut new_keys: HashMap<String, DataKey> = HashMap::new();
        let mut customer = self.case_customer(staged, &req.case_id);
        let mut tokens = Vec::new();
        for (i, e) in req.events.iter_mut().enumerate() {
            let Some(event) = e.event.as_mut() else {
                continue;
            };
            if let Some(Kind::CaseOpened(o)) = event.kind.as_ref() {
                customer = o.customer_id.clone();
                if let Some(c) = &o.customer {
                    let t = self.blind.tokens_of(&c.phone, &c.account);
                    if !t.is_empty() {
                        tokens.push((customer.clone(), t));
                    }
                }
            }
            let fields = personal_fields_mut(event);
            if fields.iter().all(|(_, v)| v.is_empty()) {
                continue;
            }
            let refused = |err: KeyError| match err {
                KeyError::Erased(_) => LedgerError::Rule {
                    index: i,
                    violation: RuleViolation::new(ErrorReason::CustomerErased, err.to_string()),
                },
                KeyError::Store(s) => LedgerError::Storage(s),
                KeyError::Exists(_) => LedgerError::Storage(err.to_string()),
                KeyError::Unavailable(s) => LedgerError::Unavailable(s),
            };
            let known = match staged.new_keys.get(&customer).or(new_keys.get(&customer)) {
                Some(k) => Some(k.clone()),
                None => self.keys.get(&customer).map_err(refused)?,
            };
            let key = match known {
                Some(k) => k,
                None => {
                    let k = self.keys.new_key(&customer).map_err(refused)?;
                    new_keys.insert(customer.clone(), k.clone());
                    k
                }
            };
            for (path, value) in fields {
                *value = seal(&key, &customer, &e.event_id, &path, value);
            }
        }
        Ok((tokens, new_keys))
    }

    /// Computes and stamps the deadlines of the request's events from the
    /// case's business-line calendar (see `policy::deadlines`). A
    /// correction's replacement is stamped as of the corrected event's time.
    /// Returns, per event, which deadlines its client left to the server
    /// (read before stamping, for telling a retry from new content); empty
    /// when no event has deadlines.
    fn stamp_deadlines(
        &self,
        staged: &Staged,
        req: &mut pb::AppendRequest,
    ) -> Result<Vec<LeftToServer>, LedgerError> {
        let needs = |k: &Option<Kind>| {
            matches!(
                k,
                Some(Kind::PromiseMade(_))
                    | Some(Kind::ExternalComplaintReceived(_))
                    | Some(Kind::ViolationJudged(_))
                    | Some(Kind::EventCorrected(_))
            )
        };
        if !req
            .events
            .iter()
            .any(|e| e.event.as_ref().is_some_and(|x| needs(&x.kind)))
        {
            return Ok(Vec::new());
        }
        let left = req
            .events
            .iter()
            .map(|e| e.event.as_ref().map(LeftToServer::of).unwrap_or_default())
            .collect();
        let mut business_line = staged
            .cases
            .get(&req.case_id)
            .or_else(|| self.cases.get(&req.case_id))
            .map(|s| s.business_line.clone())
            .unwrap_or_default();
        let mut times: HashMap<String, i128> = HashMap::new();
        for e in req.events.iter_mut() {
            let occurred = e
                .occurred_at
                .as_ref()
                .map(crate::time::ts_nanos)
                .unwrap_or(0);
            times.insert(e.event_id.clone(), occurred);
            let Some(event) = e.event.as_mut() else {
                continue;
            };
            match event.kind.as_mut() {
                Some(Kind::CaseOpened(o)) => business_line = o.business_line.clone(),
                Some(Kind::EventCorrected(c)) => {
                    let at = match times.get(&c.corrected_event_id) {
                        Some(t) => *t,
                        None => self
                            .known_event(staged, &c.corrected_event_id)?
                            .and_then(|k| k.occurred_at)
                            .map(|t| crate::time::ts_nanos(&t))
                            .unwrap_or(occurred),
                    };
                    if let Some(r) = c.replacement.as_deref_mut() {
                        self.policy.stamp_deadlines(r, at, &business_line);
                    }
                }
                _ => self.policy.stamp_deadlines(event, occurred, &business_line),
            }
        }
        Ok(left)
    }

    /// A correction names an earlier event of the same case, and its
    /// replacement (if any) is a fact of the same kind.
    fn check_correction(
        &self,
        staged: &Staged,
        same_request: &[(String, KnownEvent)],
        case_id: &str,
        c: &pb::EventCorrected,
    ) -> Result<(), RuleViolation> {
        let target = match same_request
            .iter()
            .find(|(id, _)| *id == c.corrected_event_id)
        {
            Some((_, k)) => Some((k.case_id.clone(), k.event_type.clone())),
            None => self
                .known_event(staged, &c.corrected_event_id)
                .map_err(|e| {
                    RuleViolation::new(ErrorReason::CorrectionTargetUnreadable, e.to_string())
                })?
                .map(|k| (k.case_id, k.event_type)),
        };
        let Some((target_case, target_type)) = target else {
            return Err(RuleViolation::new(
                ErrorReason::CorrectionTargetUnknown,
                format!("event {:?} does not exist", c.corrected_event_id),
            ));
        };
        if target_case != case_id {
            return Err(RuleViolation::new(
                ErrorReason::CorrectionTargetOtherCase,
                format!("event {:?} belongs to another case", c.corrected_event_id),
            ));
        }
        if target_type == "EventCorrected" {
            return Err(RuleViolation::new(
                ErrorReason::CorrectionOfCorrection,
                "a correction is corrected by a new correction of the original event",
            ));
        }
        if let Some(kind) = c.replacement.as_ref().and_then(|r| r.kind.as_ref()) {
            let rt = event_type_name(kind);
            if rt != target_type {
                return Err(RuleViolation::new(
                    ErrorReason::CorrectionKindMismatch,
                    format!("the replacement is a {rt}, the corrected event a {target_type}"),
                ));
            }
        }
        Ok(())
    }
}

/// Whether `event` (stamped now) is the stored payload but for the
/// deadlines the server stamped: a retry after the calendar changed, whose
/// stamping now differs from the original's.
fn same_but_stamps(stored: &[u8], event: Option<&pb::CaseEvent>, left: LeftToServer) -> bool {
    let (Some(event), Ok(original)) = (event, pb::CaseEvent::decode(stored)) else {
        return false;
    };
    with_stamps_of(event, &original, left).encode_to_vec() == stored
}

#[cfg(test)]
mod tests {
    //! Fault injection: a store whose Merkle hash reads fail.
    use super::*;
    use crate::store::StoreError;

    /// Two records stored; every tree-hash read fails.
    struct UnreadableTree;

    impl EventLog for UnreadableTree {
        fn head(&self) -> Result<u64, StoreError> {
            Ok(2)
        }
        fn write_durable(&self, _: &[NewRecord], _: &[(u64, [u8; 32])]) -> Result<(), StoreError> {
            Err(StoreError::Corrupt("this test writes nothing".into()))
        }
        fn tree_hashes(&self, _: &[u64]) -> Result<Vec<[u8; 32]>, StoreError> {
            Err(StoreError::Corrupt("tree hashes unreadable".into()))
        }
        fn last_tree_index(&self) -> Result<Option<u64>, StoreError> {
            Ok(Some(2))
        }
        fn read(&self, _: u64) -> Result<Option<Vec<u8>>, StoreError> {
            Ok(None)
        }
        fn read_range(&self, _: u64, _: usize) -> Result<Vec<(u64, bytes::Bytes)>, StoreError> {
            Ok(Vec::new())
        }
        fn case_positions(
            &self,
            _: &str,
            _: u64,
            _: bool,
            _: usize,
        ) -> Result<Vec<(u64, u64)>, StoreError> {
            Ok(Vec::new())
        }
        fn event_position(&self, _: &str) -> Result<Option<u64>, StoreError> {
            Ok(None)
        }
        fn sync(&self) -> Result<(), StoreError> {
            Ok(())
        }
        fn side_table(&self, _: &str) -> Result<Box<dyn crate::store::SideTable>, StoreError> {
            Ok(Box::new(crate::store::MemoryTable::default()))
        }
    }

    fn note(id: &str) -> pb::ProposedEvent {
        pb::ProposedEvent {
            event_id: id.into(),
            occurred_at: Some(crate::time::now_ts()),
            event: Some(pb::CaseEvent {
                kind: Some(Kind::NoteAdded(pb::NoteAdded { text: "n".into() })),
            }),
            ..Default::default()
        }
    }

    /// A writer over [`UnreadableTree`] with case `c` opened at version 2.
    fn test_writer() -> Writer<UnreadableTree> {
        test_writer_over(Arc::new(UnreadableTree))
    }

    /// A writer over `log` with case `c` opened at version 2 at its head.
    fn test_writer_over<L: EventLog>(log: Arc<L>) -> Writer<L> {
        let mut opened = CaseState::default();
        opened.apply_stored(
            &pb::CaseEvent {
                kind: Some(Kind::CaseOpened(pb::CaseOpened::default())),
            },
            2,
            [0; 32],
            2,
            0,
        );
        let (head_tx, _) = watch::channel(2);
        let board = Arc::new(
            BoardStore::open(
                Box::new(crate::store::MemoryTable::default()),
                log.clone(),
                0,
                8,
            )
            .expect("board"),
        );
        Writer {
            stats: Arc::default(),
            log,
            cases: {
                let mut cache = CaseCache::new(8);
                cache.insert("c".to_string(), opened);
                cache
            },
            loaded: Vec::new(),
            index: Arc::default(),
            board,
            policy: Arc::default(),
            keys: Arc::new(KeyStore::in_memory()),
            blind: Arc::new(BlindIndex::in_memory([0; 32])),
            head: 2,
            head_tx,
            committed: Arc::default(),
            commits_tx: broadcast::channel(1).0,
            last_recorded_at: 0,
            failed: Stopped::default(),
            access: Arc::new(
                AccessLog::open(crate::store::MemoryTable::default()).expect("access log"),
            ),
            follows: false,
            nudged: Arc::default(),
            known_upstream: Arc::default(),
            look: false,
            turns: Default::default(),
            // The witness file outlives its directory's name: only its
            // writes matter here.
            witness: Witness::create(
                tempfile::tempdir().expect("temporary directory").path(),
                crate::store::witness::Head {
                    sequence: 0,
                    size: 0,
                    root: [0; 32],
                    access_count: 0,
                    access_head: [0; 32],
                    signing_key: [0; 32],
                },
            )
            .expect("witness"),
        }
    }

    #[test]
    fn a_request_refused_while_extending_the_tree_leaves_nothing_staged() {
        let mut writer = test_writer();
        let mut staged = Staged::default();
        // Leaf 2 needs no earlier hash; leaf 3 needs leaf 2's (staged) and the
        // stored subtree of leaves 0-1, whose read fails.
        let request = pb::AppendRequest {
            case_id: "c".into(),
            expected_version: None,
            events: vec![note("n1"), note("n2")],
        };
        let err = writer
            .stage(&mut staged, request, None, "test", None)
            .unwrap_err();
        assert!(matches!(err, LedgerError::Storage(_)), "{err:?}");
        assert!(staged.tree.is_empty(), "leaf 2's hashes were left staged");
        assert!(staged.records.is_empty() && staged.cases.is_empty() && staged.events.is_empty());
    }

    #[test]
    fn a_customer_erased_before_its_first_key_is_stored_refuses_the_commit() {
        let mut writer = test_writer();
        let (k1, k2) = (
            writer.keys.new_key("u1").unwrap(),
            writer.keys.new_key("u2").unwrap(),
        );
        writer.keys.erase("u1").unwrap();
        let (reply, mut answer) = oneshot::channel();
        let staged = Staged {
            records: vec![NewRecord {
                position: 3,
                case_id: "c".into(),
                case_version: 3,
                event_id: "n1".into(),
                bytes: vec![8, 3],
            }],
            replies: vec![(
                reply,
                AppendOutcome {
                    first_position: 3,
                    last_position: 3,
                    case_version: 3,
                    duplicate: false,
                },
            )],
            new_keys: HashMap::from([("u1".to_string(), k1), ("u2".to_string(), k2)]),
            ..Default::default()
        };
        let host = ProjectionHost::idle(writer.failed.clone());
        writer.commit(staged, &host, &mut Default::default());
        let err = answer.try_recv().unwrap().unwrap_err();
        assert!(matches!(err, LedgerError::Unavailable(_)), "{err:?}");
        // Nothing written (this log would have failed the writer), the
        // tombstone kept, and no key left for the other customer.
        assert!(writer.failed.get().is_none());
        assert_eq!(writer.head, 2);
        assert!(writer.keys.is_erased("u1").unwrap());
        assert!(writer.keys.get("u2").unwrap().is_none());
    }

    fn event(id: &str, kind: Kind) -> pb::ProposedEvent {
        pb::ProposedEvent {
            event: Some(pb::CaseEvent { kind: Some(kind) }),
            ..note(id)
        }
    }

    /// A reopen the policy board cannot read the case back for (its
    /// contacts and promises were set aside at the close) is durable and
    /// acknowledged; the board missed it, so the writer takes no further
    /// append until a restart folds the log again.
    #[test]
    fn a_board_that_cannot_take_a_case_back_stops_further_appends() {
        let dir = tempfile::tempdir().unwrap();
        // The case index stops answering after a number of reads
        // (negative: never).
        let reads_left = Arc::new(std::sync::atomic::AtomicI64::new(-1));
        let left = reads_left.clone();
        let log = Arc::new(
            crate::store::hooked::HookedLog::new(
                crate::store::SledLog::open(dir.path(), &Default::default()).unwrap(),
            )
            .before_case_read(move || match left.fetch_sub(1, Ordering::Relaxed) {
                0 => Err(StoreError::Corrupt("the case index is unreadable".into())),
                _ => Ok(()),
            }),
        );
        let (head_tx, published) = watch::channel(0);
        // Appends are answered at the durable commit; the board has folded
        // one once the head is published past it.
        let folded = |position: u64| {
            while *published.borrow() < position {
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
        };
        let writer = Writer {
            cases: CaseCache::new(8),
            head: 0,
            head_tx,
            ..test_writer_over(log.clone())
        };
        let board = writer.board.clone();
        let (tx, rx) = mpsc::channel(4);
        let running = std::thread::spawn(move || writer.run(rx));
        let append = |events: Vec<pb::ProposedEvent>| {
            let (reply, answer) = oneshot::channel();
            tx.blocking_send(Command::Append {
                request: pb::AppendRequest {
                    case_id: "c".into(),
                    expected_version: None,
                    events,
                },
                presealed: None,
                actor: "test".into(),
                line_scope: None,
                reply,
                span: tracing::Span::none(),
            })
            .unwrap();
            answer.blocking_recv().unwrap()
        };
        let opened = Kind::CaseOpened(pb::CaseOpened {
            customer_id: "u1".into(),
            ..Default::default()
        });
        let closed = Kind::CaseClosed(pb::CaseClosed::default());
        let opening = append(vec![event("open", opened), event("close", closed)]).unwrap();
        folded(opening.last_position);
        use crate::projections::board_source::BoardSource;
        assert!(board.case("c").unwrap().unwrap().cases["c"].set_aside());

        // The writer's own reads of the closed case (whether it exists,
        // then its stream) succeed, the board's fails.
        reads_left.store(2, Ordering::Relaxed);
        let reopen = event("reopen", Kind::CaseReopened(pb::CaseReopened::default()));
        let acknowledged = append(vec![reopen]).unwrap();
        assert_eq!(acknowledged.last_position, 3);
        assert_eq!(log.head().unwrap(), 3);
        folded(3);

        reads_left.store(-1, Ordering::Relaxed);
        let refused = append(vec![note("n1")]).unwrap_err();
        let LedgerError::Unavailable(why) = refused else {
            panic!("{refused:?}");
        };
        assert!(
            why.contains("case c") && why.contains("unreadable"),
            "{why}"
        );
        assert_eq!(log.head().unwrap(), 3);
        drop(tx);
        running.join().unwrap();
    }
}
