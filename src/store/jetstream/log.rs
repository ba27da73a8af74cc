//! The event log on a JetStream stream, with the node's local copy.
//!
//! A write is acknowledged by the cluster first — one atomic batch, on a
//! quorum of replicas, each syncing every write (the servers run with
//! `sync_interval: always`; see `deploy/nats/`) — and then stored in the
//! local copy with the same bytes and tree hashes, so every read stays
//! local. The stream's messages hold the log's records at their positions
//! ([`super::stream`]); it denies deletes and purges, so it has no gap. A
//! local copy is only ever behind the stream
//! (records other nodes committed, which the writer adopts), never ahead:
//! [`JetStreamLog::open`] refuses a data directory whose head the stream
//! does not hold byte for byte.

use super::stream::{Upstream, MAX_BATCH};
use super::table::KvTable;
use super::JetStreamOptions;
use crate::store::{EventLog, NewRecord, SideTable, SledLog, SledOptions, StoreError};
use futures_util::StreamExt;
use std::path::Path;
use std::sync::Arc;

/// The side tables that must be one for the ledger: customers' data keys,
/// and the PII-access log (every node appends to the one chain).
const SHARED_TABLES: &[&str] = &["customer-keys", "pii-access"];

/// How often sled writes the local copy out by itself (see
/// [`JetStreamLog::write_durable`]): what a crash can make a node fetch
/// again at its next start.
const LOCAL_FLUSH_MS: u64 = 500;

/// How often at most another node's commits nudge this node's catch-up
/// (see [`JetStreamLog::on_upstream_change`]).
const FOLLOW_INTERVAL: std::time::Duration = std::time::Duration::from_millis(100);

pub struct JetStreamLog {
    /// This process's name in [`NODE_HEADER`] and its commits'
    /// announcements, fresh at each start.
    node: String,
    /// The highest head another node announced (see
    /// [`EventLog::announced_head`]).
    announced: Arc<std::sync::atomic::AtomicU64>,
    local: SledLog,
    upstream: Upstream,
}

impl JetStreamLog {
    /// Connects to the cluster, creates the stream if it is new (or checks
    /// an existing one keeps the ledger's guarantees), and opens the local
    /// copy in `dir`.
    pub fn open(
        dir: &Path,
        local: &SledOptions,
        opts: JetStreamOptions,
    ) -> Result<Self, StoreError> {
        let upstream = Upstream::open(&opts)?;
        let node = {
            use rand_core::RngCore;
            let mut id = [0u8; 8];
            rand_core::OsRng.fill_bytes(&mut id);
            hex::encode(id)
        };
        let log = Self {
            node,
            announced: Default::default(),
            local: SledLog::open(
                dir,
                &SledOptions {
                    background_flush_ms: Some(LOCAL_FLUSH_MS),
                    ..local.clone()
                },
            )?,
            upstream,
        };
        log.check_local_copy()?;
        Ok(log)
    }

    pub fn options(&self) -> &JetStreamOptions {
        &self.upstream.opts
    }

    /// The local copy's head must be a record of the stream, the same bytes.
    fn check_local_copy(&self) -> Result<(), StoreError> {
        let head = self.local.head()?;
        if head == 0 {
            return Ok(());
        }
        let upstream = self.upstream_head()?.unwrap_or(0);
        // A replica that lags (one restarting, say) answers a direct get
        // with nothing: asked again until the leader's answer is had.
        let mut theirs = None;
        let deadline = std::time::Instant::now() + self.upstream.opts.timeout;
        while head <= upstream && theirs.is_none() {
            theirs = self.fetch_upstream(head, 1)?.into_iter().next();
            if theirs.is_none() {
                if std::time::Instant::now() > deadline {
                    return Err(StoreError::Unavailable(format!(
                        "the stream holds {upstream} records but answers none at {head}"
                    )));
                }
                std::thread::sleep(std::time::Duration::from_millis(100));
            }
        }
        let ours = self.local.read(head)?;
        match (theirs, ours) {
            (Some((_, t)), Some(o)) if t[..] == o[..] => Ok(()),
            _ => Err(StoreError::Corrupt(format!(
                "this data directory holds {head} records, and the stream {} does not hold the same record at {head} (it holds {upstream}): the directory belongs to another ledger, or the stream was replaced. Start with an empty data directory to copy the stream",
                self.upstream.opts.stream
            ))),
        }
    }
}

impl EventLog for JetStreamLog {
    fn head(&self) -> Result<u64, StoreError> {
        self.local.head()
    }

    /// Durable once the cluster acknowledged: the stream is the log. The
    /// local copy stores the records after, written behind (sled's
    /// background flush): syncing it too would only make every commit wait
    /// for this node's disk as well as the quorum's. A crash leaves the
    /// copy a shorter log; the next start fetches back what the node
    /// acknowledged (its integrity witness says how far), and the writer
    /// adopts the rest, as it adopts other nodes' commits.
    fn write_durable(
        &self,
        records: &[NewRecord],
        tree: &[(u64, [u8; 32])],
    ) -> Result<(), StoreError> {
        self.upstream.publish(&self.node, records)?;
        self.local.write_behind(records, tree)
    }

    fn sync(&self) -> Result<(), StoreError> {
        self.local.sync()
    }

    fn sync_nanos(&self) -> u64 {
        self.local.sync_nanos()
    }

    fn tree_hashes(&self, indexes: &[u64]) -> Result<Vec<[u8; 32]>, StoreError> {
        self.local.tree_hashes(indexes)
    }

    fn last_tree_index(&self) -> Result<Option<u64>, StoreError> {
        self.local.last_tree_index()
    }

    fn read(&self, position: u64) -> Result<Option<Vec<u8>>, StoreError> {
        self.local.read(position)
    }

    fn read_range(&self, from: u64, limit: usize) -> Result<Vec<(u64, bytes::Bytes)>, StoreError> {
        self.local.read_range(from, limit)
    }

    fn case_positions(
        &self,
        case_id: &str,
        from_version: u64,
        backwards: bool,
        limit: usize,
    ) -> Result<Vec<(u64, u64)>, StoreError> {
        self.local
            .case_positions(case_id, from_version, backwards, limit)
    }

    fn event_position(&self, event_id: &str) -> Result<Option<u64>, StoreError> {
        self.local.event_position(event_id)
    }

    fn side_table(&self, name: &str) -> Result<Box<dyn SideTable>, StoreError> {
        if SHARED_TABLES.contains(&name) {
            let up = &self.upstream;
            let bucket = match name {
                "customer-keys" => up.opts.keys_bucket(),
                other => format!(
                    "{}_{}",
                    up.opts.stream,
                    other.to_uppercase().replace('-', "_")
                ),
            };
            return Ok(Box::new(KvTable::open(
                up.bridge.clone(),
                up.js.clone(),
                &bucket,
                up.opts.replicas,
                up.opts.timeout,
            )?));
        }
        EventLog::side_table(&self.local, name)
    }

    fn size_on_disk(&self) -> Result<u64, StoreError> {
        self.local.size_on_disk()
    }

    fn close(&self) -> Result<(), StoreError> {
        self.local.close()
    }

    fn max_write_records(&self) -> Option<usize> {
        Some(MAX_BATCH)
    }

    fn follows_upstream(&self) -> bool {
        true
    }

    /// Each node announces its commits on the heads subject, one small
    /// core NATS message per batch (not per record: a subscription to the
    /// log's own subjects would bring every record to every node twice); a
    /// slow tick covers what a lost announcement or a reconnect missed.
    /// Nudges only hurry adoption: a read waits for the stream's head
    /// itself, and a stale batch is refused by the stream.
    fn on_upstream_change(&self, nudge: Box<dyn Fn() + Send + Sync>) {
        let client = self.upstream.js.client();
        let subject = self.upstream.opts.heads_subject();
        let me = self.node.clone();
        let announced_head = self.announced.clone();
        self.upstream.bridge.handle().spawn(async move {
            let mut tick = tokio::time::interval(std::time::Duration::from_secs(1));
            let mut sub = client.subscribe(subject.clone()).await.ok();
            // Announcements are heard at once (`announced_head`, which a
            // node that appends reads before each batch), but they nudge
            // a node that only follows at most every FOLLOW_INTERVAL: its
            // catch-ups then take many commits each, not one, and each
            // catch-up's fixed costs (a read of the stream, the witness's
            // sync, the projections' batch, waking threads) are paid once
            // for them all. A read still nudges at once (it waits for it).
            let mut quiet_until = tokio::time::Instant::now();
            // An announced head not yet nudged for.
            let mut held = false;
            loop {
                if held && tokio::time::Instant::now() >= quiet_until {
                    held = false;
                    quiet_until = tokio::time::Instant::now() + FOLLOW_INTERVAL;
                    nudge();
                    continue;
                }
                // Whether to nudge now: another node's commit that says no
                // head, a lost subscription, a tick. Not this node's own
                // commits, nor announced heads (held, above).
                let now = match sub.as_mut() {
                    Some(s) => tokio::select! {
                        m = s.next() => match m {
                            Some(m) => match announced(&m.payload, &me) {
                                Some(Some(h)) => {
                                    announced_head.fetch_max(h, std::sync::atomic::Ordering::AcqRel);
                                    held = true;
                                    false
                                }
                                other => other.is_some(),
                            },
                            None => {
                                sub = client.subscribe(subject.clone()).await.ok();
                                true
                            }
                        },
                        _ = tokio::time::sleep_until(quiet_until), if held => false,
                        _ = tick.tick() => true,
                    },
                    None => {
                        tick.tick().await;
                        sub = client.subscribe(subject.clone()).await.ok();
                        true
                    }
                };
                if now {
                    nudge();
                }
            }
        });
    }

    fn announced_head(&self) -> u64 {
        self.announced.load(std::sync::atomic::Ordering::Acquire)
    }

    /// The position of the stream's last record, from its leader.
    fn upstream_head(&self) -> Result<Option<u64>, StoreError> {
        self.upstream.head().map(Some)
    }

    /// One batched direct get. A replica that lags answers fewer records;
    /// the caller asks again from where they stop.
    fn fetch_upstream(
        &self,
        from: u64,
        limit: usize,
    ) -> Result<Vec<(u64, bytes::Bytes)>, StoreError> {
        self.upstream.fetch(from, limit)
    }

    /// Written behind, as this node's own commits are.
    fn adopt(&self, records: &[NewRecord], tree: &[(u64, [u8; 32])]) -> Result<(), StoreError> {
        self.local.write_behind(records, tree)
    }

    fn tamper_record(&self, position: u64, bytes: Option<Vec<u8>>) -> Result<(), StoreError> {
        self.local.tamper_record(position, bytes)
    }
}

/// What a commit announcement (`<node> <head>`) tells the node `me`:
/// `None` for its own; another node's, with the head if it is given.
fn announced(payload: &[u8], me: &str) -> Option<Option<u64>> {
    let text = std::str::from_utf8(payload).unwrap_or_default();
    let (node, head) = text.split_once(' ').unwrap_or((text, ""));
    (node != me).then(|| head.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::announced;

    #[test]
    fn an_announcement_names_its_node_and_head() {
        assert_eq!(announced(b"n2 42", "n1"), Some(Some(42)));
        // A node's own commit is not news to it.
        assert_eq!(announced(b"n1 42", "n1"), None);
        // Without a readable head, it is still another node's commit.
        assert_eq!(announced(b"n2", "n1"), Some(None));
        assert_eq!(announced(b"n2 x", "n1"), Some(None));
        assert_eq!(announced(&[0xff, b' ', b'1'], "n1"), Some(None));
    }
}
