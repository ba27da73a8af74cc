//! The ledger: the one place where an append is validated, decided, stored
//! and projected, and where reads are served from.
//!
//! Opening a ledger reads what was written since the last full
//! verification, and verifies it fully (every hash chain, index entry and
//! Merkle hash, refusing to start on a broken one); the rest it does not
//! read (see `integrity::verified_through`): the background scrub verifies
//! it again. The read models on disk (the case list, the policy board, the
//! blind index) catch up from the positions they reached; the writer folds
//! a case's state from its stream when a request first names it; early
//! warning catches up from its own table's position once serving. So a
//! start costs what was written since, not the log.
//! Appends go to the single `writer` thread, which group-commits them;
//! reads go straight to the store.

mod audit;
mod case_cache;
pub mod error;
mod follow;
pub mod integrity;
mod preseal;
mod projection_host;
#[cfg(test)]
mod read_your_writes;
mod rebuild;
pub mod recorded;
mod restore;
mod sync_watch;
#[cfg(test)]
pub(crate) mod test_support;
mod turns;
mod writer;

pub use audit::SignedCheckpoint;
pub use case_cache::DEFAULT_CASE_CACHE;

/// Default number of cases whose facts the policy board keeps: the cases
/// a day's queries and commits touch on a busy center, ~30 MB at most for
/// cases like the seed's (BENCHMARKS.md, change 46).
pub const DEFAULT_BOARD_CACHE: usize = 4_096;
pub use error::LedgerError;
pub use sync_watch::SyncWatch;
pub use writer::{WriterStats, WriterTime, SCHEMA_VERSION};

use crate::audit::checkpoint::CheckpointSigner;
use crate::audit::verify::verify_store_from;
use crate::domain::validate::{validate_append, Limits};
use crate::policy::Policy;
use crate::privacy::access_log::AccessLog;
use crate::privacy::blind_index::BlindIndex;
use crate::privacy::keystore::KeyStore;
use crate::projections::board_store::BoardStore;
use crate::projections::fact::{Fact, OwnedFact};
use crate::projections::summary::CaseIndex;
use crate::proto::v1::{self as pb, CaseEvent};
use crate::store::jetstream::{JetStreamLog, JetStreamOptions};
use crate::store::{AnyLog, EventLog, SideTable, SledLog, SledOptions};
use prost::Message;
use std::path::Path;
use std::sync::{Arc, Mutex};
use tokio::sync::{broadcast, mpsc, oneshot, watch};
use writer::{Command, Writer};

/// The result of an accepted append.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppendOutcome {
    pub first_position: u64,
    pub last_position: u64,
    pub case_version: u64,
    /// Every event already existed: a retry, nothing was written.
    pub duplicate: bool,
}

/// The store's table of the policy board (see `projections::board_store`).
pub const BOARD_TABLE: &str = "policy-board";

/// The store's table of the blind index (see `privacy::blind_index`).
pub const BLIND_TABLE: &str = "blind-index";

/// The store's table of the case list (see `projections::summary`).
pub const SUMMARY_TABLE: &str = "case-summaries";

/// How many appends may wait for the writer before callers wait to enqueue.
const QUEUE_DEPTH: usize = 8192;

/// Commits a follower may fall behind before it is told it lagged (and reads
/// the log instead). A commit is dropped once every follower has seen it.
const COMMITS_KEPT: usize = 64;

/// The command side of the ledger over an event log `L` (the embedded sled
/// store unless told otherwise).
pub struct Ledger<L: EventLog = AnyLog> {
    log: Arc<L>,
    index: Arc<CaseIndex>,
    limits: Limits,
    tx: mpsc::Sender<Command>,
    /// The head the projection host published: the read models hold every
    /// commit through it.
    head_rx: watch::Receiver<u64>,
    /// The last position the writer made durable (and so may have
    /// answered): what a read waits for the published head to reach.
    committed: Arc<std::sync::atomic::AtomicU64>,
    writer_thread: Mutex<Option<std::thread::JoinHandle<()>>>,
    commits_tx: broadcast::Sender<Arc<Vec<OwnedFact>>>,
    signer: CheckpointSigner,
    checkpoint_cache: Mutex<Option<SignedCheckpoint>>,
    stats: Arc<WriterStats>,
    policy: Arc<Policy>,
    board: Arc<BoardStore>,
    keys: Arc<KeyStore>,
    access: Arc<AccessLog>,
    blind: Arc<BlindIndex>,
    /// A catch-up is asked of the writer and not yet begun (see `nudge`).
    nudged: Arc<std::sync::atomic::AtomicBool>,
    /// The highest head a read asked of the stream and waits for; the
    /// writer's catch-up adopts up to it (and to the announced head, see
    /// `EventLog::announced_head`) without asking again.
    known_upstream: Arc<std::sync::atomic::AtomicU64>,
}

/// How long a read waits for the read models to hold what was committed
/// (on a clustered ledger: what the stream held) when it came, before it
/// is refused UNAVAILABLE.
const CATCH_UP_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// Asks the writer to adopt what other nodes committed, unless it was
/// asked already and has not begun: a burst of nudges is one catch-up.
fn nudge(tx: &mpsc::Sender<Command>, nudged: &std::sync::atomic::AtomicBool) {
    use std::sync::atomic::Ordering;
    if !nudged.swap(true, Ordering::AcqRel) && tx.try_send(Command::CatchUp).is_err() {
        // The queue is full (a batch comes anyway) or closed.
        nudged.store(false, Ordering::Release);
    }
}

/// Customers' keys a start unwraps (see `KeyStore::check_first`).
const KEYS_CHECKED_AT_START: usize = 256;

/// How to open a ledger.
#[derive(Debug, Clone)]
pub struct LedgerOptions {
    pub sled: SledOptions,
    /// The clustered store to run on; `None`: the embedded store alone.
    pub cluster: Option<JetStreamOptions>,
    pub limits: Limits,
    /// The log's origin: the name in its checkpoints and of its key.
    pub origin: String,
    /// Signed-note private key file; default: generated in the data directory.
    pub signing_key_file: Option<std::path::PathBuf>,
    /// Calendars, deadlines and early-warning rules.
    pub policy: Arc<Policy>,
    /// Master keys wrapping customers' data keys; default: generated at
    /// first start as `<data-dir>/pii-master.key`.
    pub master_key_file: Option<std::path::PathBuf>,
    /// Verify every record fully at start, ignoring the verified-through
    /// mark: for a server whose background scrub is off, so that nothing
    /// else would ever verify the records under the mark again.
    pub verify_all_at_start: bool,
    /// Case states the writer keeps between commits (see `case_cache`).
    pub case_cache: usize,
    /// Cases' facts the policy board keeps (see
    /// `projections::board_store`).
    pub board_cache: usize,
}

impl Default for LedgerOptions {
    fn default() -> Self {
        Self {
            sled: SledOptions::default(),
            cluster: None,
            limits: Limits::default(),
            origin: crate::audit::checkpoint::DEFAULT_ORIGIN.to_string(),
            signing_key_file: None,
            policy: Arc::new(Policy::default()),
            master_key_file: None,
            verify_all_at_start: false,
            case_cache: DEFAULT_CASE_CACHE,
            board_cache: DEFAULT_BOARD_CACHE,
        }
    }
}

/// What opening a ledger found.
#[derive(Debug, Clone, Copy)]
pub struct RecoveryReport {
    pub records: u64,
    pub cases: usize,
    /// The first position the opening verified fully; the records before
    /// it a full verification had covered before, and the opening did not
    /// read them (see `integrity::verified_through`). `records + 1`:
    /// nothing new since.
    pub verified_from: u64,
}

impl Ledger<AnyLog> {
    /// Opens the ledger in `dir` on the store the options choose: the
    /// embedded one, or the clustered stream with `dir` as this node's copy.
    pub fn open(dir: &Path, opts: &LedgerOptions) -> Result<(Self, RecoveryReport), LedgerError> {
        let log: AnyLog = match &opts.cluster {
            None => Box::new(open_sled(dir, opts)?),
            Some(c) => Box::new(JetStreamLog::open(dir, &opts.sled, c.clone())?),
        };
        Self::open_on(log, dir, opts)
    }
}

/// The server time of the record at `position`.
fn recorded_at_of(log: &dyn EventLog, position: u64) -> Result<i128, LedgerError> {
    let bytes = log.read(position)?.ok_or_else(|| {
        LedgerError::Storage(format!("no record is stored at position {position}"))
    })?;
    let rec = pb::StoredRecord::decode(&bytes[..]).map_err(|e| {
        LedgerError::Storage(format!(
            "the record at position {position} does not decode: {e}"
        ))
    })?;
    Ok(rec
        .recorded_at
        .as_ref()
        .map(crate::time::ts_nanos)
        .unwrap_or(0))
}

/// The sled store of `dir`; refused when its main file is gone but the
/// integrity witness says records were acknowledged (sled would start an
/// empty store in its place), with `verify --data-dir`'s words.
fn open_sled(dir: &Path, opts: &LedgerOptions) -> Result<SledLog, LedgerError> {
    if !dir.join("db").exists() && crate::store::witness::Witness::path_in(dir).exists() {
        return Err(LedgerError::Storage(format!(
            "the store's main file {} is missing, beside an integrity witness; refusing to start. Run `complaint-ledger verify --data-dir` for details",
            dir.join("db").display()
        )));
    }
    Ok(SledLog::open(dir, &opts.sled)?)
}

impl<L: EventLog> Ledger<L> {
    /// Opens the ledger on `log`, keeping its integrity witness, keys and
    /// settings in `dir`, verifying and replaying the whole log.
    pub fn open_on(
        log: L,
        dir: &Path,
        opts: &LedgerOptions,
    ) -> Result<(Self, RecoveryReport), LedgerError> {
        let log = Arc::new(log);
        let limits = opts.limits;
        let refuse = |e: String| {
            LedgerError::Storage(format!(
                "{e}; refusing to start. Run `complaint-ledger verify --data-dir` for details"
            ))
        };
        let witnessed = integrity::read_witness(dir, log.head()?).map_err(refuse)?;
        // A clustered node's copy, written behind the stream, may have lost
        // what the node acknowledged last: fetched back, then verified.
        let mut fetched_back = 0;
        if let Some(w) = witnessed.as_ref().filter(|_| log.follows_upstream()) {
            if w.head.size > log.head()? {
                fetched_back = restore::restore(log.as_ref(), w.head.size)?;
            }
        }
        let signer = integrity::signing_key(
            dir,
            opts.signing_key_file.as_deref(),
            Some(&opts.origin),
            witnessed.is_none(),
        )
        .map_err(refuse)?;
        let keys_tree = log.side_table("customer-keys")?;
        let master =
            integrity::master_keys(dir, opts.master_key_file.as_deref(), keys_tree.is_empty()?)
                .map_err(refuse)?;
        let blind = Arc::new(BlindIndex::open(
            master.derive("complaint-ledger blind index v1"),
            log.side_table(BLIND_TABLE)?,
        )?);
        let keys = Arc::new(KeyStore::new(keys_tree, master));
        // The first keys unwrap: a wrong or missing master key file is
        // found now, not by the first response that needs the data (and
        // not by unwrapping every customer's key, which `verify` does).
        keys.check_first(KEYS_CHECKED_AT_START)
            .map_err(|e| refuse(e.to_string()))?;
        let access = Arc::new(AccessLog::open(log.side_table("pii-access")?).map_err(refuse)?);
        // Records a full verification covered before are not read; the
        // rest are verified fully (see `integrity::verified_through`).
        let full_from = if opts.verify_all_at_start {
            1
        } else {
            integrity::verified_through(log.as_ref()) + 1
        };
        // Server times never go back (the writer stamps the later of now
        // and the last), so the last of the records not read is the
        // latest of them.
        let mut last_recorded_at = match full_from - 1 {
            0 => i128::MIN,
            p => recorded_at_of(log.as_ref(), p)?,
        };
        // sled can panic reading a damaged store: an error, never a crash.
        let verified = crate::store::contain_panics(dir, || {
            Ok(verify_store_from(
                log.as_ref(),
                full_from,
                |_, _| {},
                |rec, _| {
                    let event = CaseEvent::decode(&rec.payload[..]).map_err(|e| {
                        crate::audit::verify::bad(
                            rec.position,
                            format!("payload does not decode: {e}"),
                        )
                    })?;
                    let fact = Fact::stored(&rec, &event);
                    last_recorded_at = last_recorded_at.max(fact.recorded_at);
                    Ok(())
                },
            ))
        })?;
        let report = verified.map_err(|e| {
            LedgerError::Storage(format!(
                "the log does not verify, refusing to start: {e}. Run `complaint-ledger verify --data-dir` for details"
            ))
        })?;
        if let Some(w) = &witnessed {
            integrity::check(log.as_ref(), w, &report, &access, signer.public_key())
                .map_err(refuse)?;
        }
        let empty_root =
            crate::audit::merkle::root(&crate::audit::merkle::StoreReader(log.as_ref()), 0)?;
        let witness =
            integrity::open_witness(dir, witnessed.as_ref(), signer.public_key(), empty_root)
                .map_err(refuse)?;
        let head = report.records;
        // The policy board on disk folds what was committed after the
        // position it reached (all of the log, the first time).
        let board = BoardStore::open(
            log.side_table(BOARD_TABLE)?,
            log.clone(),
            opts.policy.escalate_within_nanos(),
            opts.board_cache,
        )?;
        let behind = head.saturating_sub(board.position());
        if behind > 0 {
            tracing::info!(
                from = board.position() + 1,
                to = head,
                "the policy board catches up with the log"
            );
        }
        crate::store::contain_panics(dir, || board.catch_up(head, |_| {})).map_err(|e| {
            refuse(format!(
                "the policy board cannot catch up with the log: {e}"
            ))
        })?;

        // So do the blind index and the case list.
        crate::store::contain_panics(dir, || catch_up_blind(log.as_ref(), &keys, &blind, head))
            .map_err(|e| refuse(format!("the blind index cannot catch up with the log: {e}")))?;
        let index = CaseIndex::open(log.side_table(SUMMARY_TABLE)?)?;
        crate::store::contain_panics(dir, || index.catch_up(log.as_ref(), head))
            .map_err(|e| refuse(format!("the case list cannot catch up with the log: {e}")))?;
        let index = Arc::new(index);
        let root_at_head = report.root;
        let report = RecoveryReport {
            records: head,
            cases: index.len(),
            verified_from: full_from.min(head + 1),
        };
        if head > 0 {
            integrity::record_verified(log.as_ref(), head, root_at_head).map_err(refuse)?;
        }
        // The writer folds each case's state from its stream the first
        // time a request names it.
        let cache = case_cache::CaseCache::new(opts.case_cache);
        let (head_tx, head_rx) = watch::channel(head);
        let (commits_tx, _) = broadcast::channel(COMMITS_KEPT);
        let (tx, rx) = mpsc::channel(QUEUE_DEPTH);
        let stats = Arc::new(WriterStats::default());
        stats
            .fetched_back
            .store(fetched_back, std::sync::atomic::Ordering::Relaxed);
        let board = Arc::new(board);
        let nudged = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let known_upstream = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let committed = Arc::new(std::sync::atomic::AtomicU64::new(head));
        if log.follows_upstream() {
            // Other nodes' commits are adopted as they come, not only when
            // this node is asked something.
            let (to, flag) = (tx.clone(), nudged.clone());
            log.on_upstream_change(Box::new(move || nudge(&to, &flag)));
            nudge(&tx, &nudged);
        }
        let writer = Writer {
            keys: keys.clone(),
            blind: blind.clone(),
            board: board.clone(),
            policy: opts.policy.clone(),
            stats: stats.clone(),
            log: log.clone(),
            cases: cache,
            loaded: Vec::new(),
            index: index.clone(),
            head,
            head_tx,
            committed: committed.clone(),
            commits_tx: commits_tx.clone(),
            last_recorded_at: last_recorded_at.max(0),
            failed: Default::default(),
            access: access.clone(),
            witness,
            follows: log.follows_upstream(),
            nudged: nudged.clone(),
            known_upstream: known_upstream.clone(),
            look: false,
            turns: Default::default(),
        };
        let handle = std::thread::Builder::new()
            .name("ledger-writer".into())
            .spawn(move || writer.run(rx))
            .map_err(|e| LedgerError::Storage(format!("cannot start the writer thread: {e}")))?;
        Ok((
            Self {
                log,
                index,
                limits,
                tx,
                head_rx,
                committed,
                writer_thread: Mutex::new(Some(handle)),
                commits_tx,
                signer,
                checkpoint_cache: Mutex::new(None),
                stats,
                policy: opts.policy.clone(),
                board,
                keys,
                access,
                blind,
                nudged,
                known_upstream,
            },
            report,
        ))
    }

    /// Read-your-writes: waits until the read models hold every commit
    /// the writer had made durable when asked, so a read after an
    /// acknowledged append sees it (appends are answered at the durable
    /// commit, before the projection host folds them). On a clustered
    /// log, also until this node holds every record the stream held when
    /// asked: a read after an append acknowledged by any node sees it.
    /// At once when the host has caught up, as it has but for the last
    /// commit or so.
    pub async fn caught_up(&self) -> Result<(), LedgerError> {
        use std::sync::atomic::Ordering;
        let committed = self.committed.load(Ordering::Acquire);
        let upstream = if self.log.follows_upstream() {
            let log = self.log.clone();
            let target = tokio::task::spawn_blocking(move || log.upstream_head())
                .await
                .map_err(|e| LedgerError::Unavailable(format!("asking the stream's head: {e}")))??
                .unwrap_or(0);
            if *self.head_rx.borrow() < target {
                self.known_upstream.fetch_max(target, Ordering::AcqRel);
                nudge(&self.tx, &self.nudged);
            }
            target
        } else {
            0
        };
        let target = committed.max(upstream);
        if *self.head_rx.borrow() >= target {
            return Ok(());
        }
        let mut head = self.head_rx.clone();
        let reached = tokio::time::timeout(CATCH_UP_WAIT, head.wait_for(|h| *h >= target))
            .await
            .is_ok_and(|r| r.is_ok());
        match reached {
            true => Ok(()),
            false if upstream > committed => Err(LedgerError::Unavailable(format!(
                "this node did not catch up with the stream (at {target}) within {} s",
                CATCH_UP_WAIT.as_secs()
            ))),
            false => Err(LedgerError::Unavailable(format!(
                "the read models did not reach the committed position {target} within {} s",
                CATCH_UP_WAIT.as_secs()
            ))),
        }
    }

    /// Each future commit's accepted events, in position order. A receiver
    /// that falls more than a few dozen commits behind gets `Lagged` and
    /// must read the log from where it was.
    pub fn follow_commits(&self) -> broadcast::Receiver<Arc<Vec<OwnedFact>>> {
        self.commits_tx.subscribe()
    }

    /// The policy this ledger computes deadlines with.
    pub fn policy(&self) -> &Arc<Policy> {
        &self.policy
    }

    /// The cross-case policy projections, as of the last answered commit.
    pub fn board(&self) -> &BoardStore {
        &self.board
    }

    /// Customers' data keys.
    pub fn keys(&self) -> &KeyStore {
        &self.keys
    }

    /// The PII-access log.
    pub fn access_log(&self) -> &AccessLog {
        &self.access
    }

    /// Records PII-access entries and waits until they are durable (synced
    /// with the writer's group commit, the witness updated): a response
    /// that reveals personal data is sent only after this. Blocking.
    pub fn record_access_blocking(&self, entries: Vec<pb::PiiAccess>) -> Result<(), LedgerError> {
        if entries.is_empty() {
            return Ok(());
        }
        let (reply, rx) = oneshot::channel();
        self.tx
            .blocking_send(Command::RecordAccess { entries, reply })
            .map_err(|_| LedgerError::Unavailable("the ledger is shutting down".into()))?;
        rx.blocking_recv()
            .map_err(|_| LedgerError::Unavailable("the ledger writer stopped".into()))?
    }

    /// The blind index of phones and accounts.
    pub fn blind_index(&self) -> &BlindIndex {
        &self.blind
    }

    /// The writer's counters.
    pub fn writer_stats(&self) -> &WriterStats {
        &self.stats
    }

    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    pub fn log(&self) -> &Arc<L> {
        &self.log
    }

    pub fn index(&self) -> &CaseIndex {
        &self.index
    }

    /// The position the read models hold (published by the projection
    /// host), and a way to wait for the next one. It may trail the last
    /// acknowledged append by the commit being folded: a read that must
    /// see that append waits with [`Ledger::caught_up`] first.
    pub fn head(&self) -> watch::Receiver<u64> {
        self.head_rx.clone()
    }

    /// The last position made durable, which appends may have been
    /// answered for; the published [`Ledger::head`] reaches it once the
    /// projection host has folded it.
    pub fn committed(&self) -> u64 {
        self.committed.load(std::sync::atomic::Ordering::Acquire)
    }

    /// Validates, decides and durably appends a request. `actor` is who asked,
    /// as established by the caller's credentials, never by the request.
    pub async fn append(
        &self,
        request: pb::AppendRequest,
        actor: String,
    ) -> Result<AppendOutcome, LedgerError> {
        self.append_scoped(request, actor, None).await
    }

    /// Like [`Ledger::append`], for a caller confined to one business line:
    /// the writer refuses a case of another line (checked against the case
    /// state it decides on, so no concurrent opening can slip past).
    pub async fn append_scoped(
        &self,
        request: pb::AppendRequest,
        actor: String,
        line_scope: Option<String>,
    ) -> Result<AppendOutcome, LedgerError> {
        validate_append(&request, &self.limits, crate::time::now_nanos())?;
        // Seal personal data here, on any core, rather than on the writer
        // thread (see `preseal`); the writer checks the copy still holds.
        let case_customer = self
            .index
            .customer_id(&request.case_id)?
            .unwrap_or_default();
        let presealed =
            preseal::preseal(&self.keys, &self.blind, case_customer, &request).map(Box::new);
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Command::Append {
                request,
                presealed,
                actor,
                line_scope,
                reply,
                span: tracing::Span::current(),
            })
            .await
            .map_err(|_| LedgerError::Unavailable("the ledger is shutting down".into()))?;
        rx.await
            .map_err(|_| LedgerError::Unavailable("the ledger writer stopped".into()))?
    }

    /// Stops taking appends once every queued one is committed, then flushes
    /// and syncs the store. Idempotent.
    /// Takes no more appends from now on, saying `why` to every caller
    /// (what a failed durable write does): for damage found while the
    /// server runs. A restart verifies the store again.
    pub async fn refuse_appends(&self, why: String) {
        let (reply, rx) = oneshot::channel();
        if self.tx.send(Command::Refuse { why, reply }).await.is_ok() {
            let _ = rx.await;
        }
    }

    pub async fn shutdown(&self) {
        let (reply, rx) = oneshot::channel();
        if self.tx.send(Command::Shutdown { reply }).await.is_ok() {
            let _ = rx.await;
        }
        let handle = self
            .writer_thread
            .lock()
            .expect("writer handle lock")
            .take();
        if let Some(h) = handle {
            let _ = tokio::task::spawn_blocking(move || h.join()).await;
        }
        if let Err(e) = self.log.close() {
            tracing::error!(error = %e, "final flush failed");
        }
    }

    /// A case's business line (what a scoped caller's access is checked
    /// against); `CaseNotFound` when no case has this id, or none durable
    /// yet (the case list's row is written a moment before the head that
    /// makes the case's first commit readable is published).
    pub fn business_line_of(&self, case_id: &str) -> Result<String, LedgerError> {
        let not_found = || LedgerError::CaseNotFound(case_id.to_string());
        let line = self.index.business_line(case_id)?.ok_or_else(not_found)?;
        self.durable_version(case_id)?.ok_or_else(not_found)?;
        Ok(line)
    }

    /// Whether a case exists.
    pub fn case_exists(&self, case_id: &str) -> Result<bool, LedgerError> {
        Ok(self.index.contains(case_id)?)
    }

    /// Events of a case: from `from_version` forwards (or backwards), at most
    /// `limit`. Blocking; call from a blocking context.
    pub fn read_case(
        &self,
        case_id: &str,
        from_version: u64,
        backwards: bool,
        limit: usize,
    ) -> Result<Vec<pb::RecordedEvent>, LedgerError> {
        // Only what is durable (see `durable_version`).
        let Some(durable) = self.durable_version(case_id)? else {
            return Ok(Vec::new());
        };
        let (from_version, limit) = if backwards {
            let from = if from_version == 0 {
                durable
            } else {
                from_version.min(durable)
            };
            (from, limit)
        } else {
            let from = from_version.max(1);
            if from > durable {
                return Ok(Vec::new());
            }
            let left = usize::try_from(durable - from + 1).unwrap_or(usize::MAX);
            (from, limit.min(left))
        };
        let mut out = Vec::new();
        for (_, pos) in self
            .log
            .case_positions(case_id, from_version, backwards, limit)?
        {
            out.push(recorded::to_recorded(&self.stored_record(pos)?.into())?);
        }
        Ok(out)
    }

    /// A case's last version at or below the published head, and its
    /// position; None when the case has no such version. The log's case
    /// index shows a commit's entries from its batch on, before the sync
    /// that makes them durable: the head moves only after it.
    pub fn durable_version(&self, case_id: &str) -> Result<Option<u64>, LedgerError> {
        Ok(self.durable_last(case_id)?.map(|(version, _)| version))
    }

    fn durable_last(&self, case_id: &str) -> Result<Option<(u64, u64)>, LedgerError> {
        let head = *self.head_rx.borrow();
        let mut from = 0; // the latest version
        loop {
            let page = self.log.case_positions(case_id, from, true, 64)?;
            if let Some(found) = page.iter().find(|(_, pos)| *pos <= head) {
                return Ok(Some(*found));
            }
            match page.last() {
                Some((version, _)) if page.len() == 64 && *version > 1 => from = version - 1,
                _ => return Ok(None),
            }
        }
    }

    /// A page of the case list (see `CaseIndex::list`), each summary with
    /// its case's durable version and the time its last event was
    /// recorded, read from the log. Blocking.
    pub fn list_cases(
        &self,
        filter: &crate::projections::summary::CaseFilter,
        after: &str,
        limit: usize,
    ) -> Result<(Vec<pb::CaseSummary>, Option<String>), LedgerError> {
        let (listed, next) = self.index.list(filter, after, limit)?;
        let mut cases = Vec::with_capacity(listed.len());
        for mut c in listed {
            // A case whose first commit is not yet published is not
            // listed yet (its row is written a moment before).
            let Some((version, position)) = self.durable_last(&c.case_id)? else {
                continue;
            };
            c.version = version;
            let last = recorded::to_recorded(&self.stored_record(position)?.into())?;
            c.last_recorded_at = last.recorded_at;
            cases.push(c);
        }
        Ok((cases, next))
    }

    /// The stored bytes of a committed position; its absence means the store
    /// lost a record an index or the tree still names.
    fn stored_record(&self, position: u64) -> Result<Vec<u8>, LedgerError> {
        self.log.read(position)?.ok_or_else(|| {
            LedgerError::Storage(format!("record {position} is missing from the store"))
        })
    }

    /// Up to `limit` stored records from `from`, undecoded: (position, bytes).
    /// Readers decode them with [`recorded::to_recorded`]. Not bounded by
    /// the durable head: callers pass ranges that end at it (see
    /// `api::log_reader`).
    pub fn read_all_stored(
        &self,
        from: u64,
        limit: usize,
    ) -> Result<Vec<(u64, bytes::Bytes)>, LedgerError> {
        Ok(self.log.read_range(from, limit)?)
    }

    /// The durable event at a position of the global log, decoded; None
    /// past the durable head. Blocking.
    pub fn read_at(&self, position: u64) -> Result<Option<pb::RecordedEvent>, LedgerError> {
        if position == 0 || position > *self.head_rx.borrow() {
            return Ok(None);
        }
        Ok(Some(recorded::to_recorded(
            &self.stored_record(position)?.into(),
        )?))
    }

    /// The events of a case stored at positions below `before`, in version
    /// order: what the early-warning rules fold again when a case they set
    /// aside at its close is reopened at `before`. Blocking.
    pub fn case_facts_before(
        &self,
        case_id: &str,
        before: u64,
    ) -> Result<Vec<OwnedFact>, LedgerError> {
        Ok(crate::projections::case_stream::facts_before(
            self.log.as_ref(),
            case_id,
            before,
        )?)
    }

    /// Up to `limit` durable events of the global log from `from`
    /// (inclusive), decoded. Blocking.
    pub fn read_all(&self, from: u64, limit: usize) -> Result<Vec<pb::RecordedEvent>, LedgerError> {
        let (from, head) = (from.max(1), *self.head_rx.borrow());
        if from > head {
            return Ok(Vec::new());
        }
        let limit = limit.min(usize::try_from(head - from + 1).unwrap_or(usize::MAX));
        self.log
            .read_range(from, limit)?
            .iter()
            .map(|(_, bytes)| recorded::to_recorded(bytes).map_err(LedgerError::from))
            .collect()
    }
}

/// The blind-index tokens of a stored `CaseOpened`'s phone and account, if
/// the customer's key still opens them.
fn customer_tokens(
    keys: &KeyStore,
    blind: &BlindIndex,
    o: &pb::CaseOpened,
) -> Option<(String, Vec<[u8; 32]>)> {
    let c = o.customer.as_ref()?;
    let key = keys.get(&o.customer_id).ok()??;
    let open = |path: &str, v: &str| {
        crate::privacy::crypto::open(&key, &o.customer_id, path, v).unwrap_or_default()
    };
    let tokens = blind.tokens_of(
        &open("customer.phone", &c.phone),
        &open("customer.account", &c.account),
    );
    Some((o.customer_id.clone(), tokens))
}

/// Adds the customers opened after the blind index's position, through
/// `head`, from what their keys still open.
fn catch_up_blind<L: EventLog + ?Sized>(
    log: &L,
    keys: &KeyStore,
    blind: &BlindIndex,
    head: u64,
) -> Result<(), crate::store::StoreError> {
    let mut customers = Vec::new();
    let from = blind.position() + 1;
    crate::projections::case_stream::for_each_chunk(
        log,
        from,
        head,
        "the blind index",
        |facts, _| {
            for f in facts {
                if let Some(pb::case_event::Kind::CaseOpened(o)) = &f.event.kind {
                    customers.extend(customer_tokens(keys, blind, o));
                }
            }
            Ok(())
        },
    )?;
    if customers.is_empty() && from > head {
        return Ok(());
    }
    blind.add(&customers, head)
}
