//! The event log on a JetStream stream, with the node's local copy.
//!
//! A write is acknowledged by the cluster first — one atomic batch, on a
//! quorum of replicas, each syncing every write (the servers run with
//! `sync_interval: always`; see `deploy/nats/`) — and then stored in the
//! local copy with the same bytes and tree hashes, so every read stays
//! local. Stream sequence = log position: the stream denies deletes and
//! purges, so it has no gap. A local copy is only ever behind the stream
//! (records other nodes committed, which the writer adopts), never ahead:
//! [`JetStreamLog::open`] refuses a data directory whose head the stream
//! does not hold byte for byte.

use super::bridge::{read_patiently, Bridge};
use super::table::KvTable;
use super::{open_stream, unavailable, JetStreamOptions};
use crate::store::{EventLog, NewRecord, SideTable, SledLog, SledOptions, StoreError};
use async_nats::jetstream::{self, stream};
use futures_util::StreamExt;
use jetstream_extra::batch_fetch::{BatchFetchErrorKind, BatchFetchExt};
use jetstream_extra::batch_publish::BatchPublishExt;
use std::path::Path;
use std::sync::Arc;

/// Records in one atomic batch at most (the server's limit is 1,000).
pub const MAX_BATCH: usize = 1000;

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

/// The header naming the node that published a batch, on its first
/// record: which node committed what, for whoever reads the stream.
const NODE_HEADER: &str = "Complaint-Ledger-Node";

pub struct JetStreamLog {
    /// This process's name in [`NODE_HEADER`] and its commits'
    /// announcements, fresh at each start.
    node: String,
    /// The highest head another node announced (see
    /// [`EventLog::announced_head`]).
    announced: Arc<std::sync::atomic::AtomicU64>,
    local: SledLog,
    bridge: Arc<Bridge>,
    js: jetstream::Context,
    opts: JetStreamOptions,
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
        let bridge = Arc::new(Bridge::new()?);
        let o = opts.clone();
        let js = bridge.run(async move { open_stream(&o).await })??;
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
            bridge,
            js,
            opts,
        };
        log.check_local_copy()?;
        Ok(log)
    }

    pub fn options(&self) -> &JetStreamOptions {
        &self.opts
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
        let deadline = std::time::Instant::now() + self.opts.timeout;
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
                self.opts.stream
            ))),
        }
    }

    fn publish(&self, records: &[NewRecord]) -> Result<(), StoreError> {
        publish(&self.bridge, &self.js, &self.opts, &self.node, records)
    }
}

/// Publishes the records as one atomic batch whose first message expects
/// the stream to end where they begin.
pub(super) fn publish(
    bridge: &Bridge,
    js: &jetstream::Context,
    opts: &JetStreamOptions,
    node: &str,
    records: &[NewRecord],
) -> Result<(), StoreError> {
    if records.len() > MAX_BATCH {
        return Err(StoreError::Engine(format!(
            "{} records in one write; a clustered write takes at most {MAX_BATCH}",
            records.len()
        )));
    }
    let Some(first) = records.first() else {
        return Ok(());
    };
    let expected = first.position - 1;
    let last = first.position + records.len() as u64 - 1;
    let messages: Vec<jetstream::message::OutboundMessage> = records
        .iter()
        .enumerate()
        .map(|(i, r)| {
            // Headers on the batch's first message only: every byte of a
            // message costs each of the servers that store it.
            let mut headers = async_nats::HeaderMap::new();
            if i == 0 {
                headers.insert(NODE_HEADER, node);
                headers.insert("Nats-Expected-Last-Sequence", expected.to_string());
            }
            jetstream::message::OutboundMessage {
                subject: opts.case_subject(&r.case_id).into(),
                payload: bytes::Bytes::copy_from_slice(&r.bytes),
                headers: Some(headers),
            }
        })
        .collect();
    let (js2, timeout) = (js.clone(), opts.timeout);
    // The announcement names the node and the head its commit reached, so
    // that the others adopt up to it without asking the stream.
    let (heads, me) = (
        opts.heads_subject(),
        bytes::Bytes::from(format!("{node} {last}")),
    );
    let acked = bridge.run(async move {
        // No acknowledgement of the first message: it would cost a round
        // trip per batch, and a batch the server did not take whole is
        // refused at its commit anyway.
        let mut batch = js2
            .batch_publish()
            .ack_first(false)
            .timeout(timeout)
            .build();
        let mut messages = messages.into_iter();
        let final_one = messages.next_back().expect("one record at least");
        for m in messages {
            batch.add_message(m).await?;
        }
        let acked = batch.commit_message(final_one).await;
        if acked.is_ok() {
            // Other nodes learn of the commit from this (core NATS, not
            // the stream; a lost one is covered by their tick).
            let _ = js2.client().publish(heads, me).await;
        }
        acked
    })?;
    match acked {
        Ok(ack) if ack.sequence == last => Ok(()),
        Ok(ack) => Err(StoreError::Corrupt(format!(
            "the stream acknowledged records {}..={last} at sequence {}: its sequences are not the log's positions",
            first.position, ack.sequence
        ))),
        Err(e) if wrong_last_sequence(&e) => Err(StoreError::Conflict {
            upstream_head: stream_head(bridge, js, opts)?,
        }),
        Err(e) => Err(unavailable("publishing to the stream", e)),
    }
}

/// The stream's last sequence, asked of its leader.
pub(super) fn stream_head(
    bridge: &Bridge,
    js: &jetstream::Context,
    opts: &JetStreamOptions,
) -> Result<u64, StoreError> {
    let (js, name) = (js.clone(), opts.stream.clone());
    bridge.run(read_patiently(opts.timeout, move || {
        let (js, name) = (js.clone(), name.clone());
        async move {
            // One request: finding the stream reads its state.
            let s = js
                .get_stream(&name)
                .await
                .map_err(|e| unavailable("reading the stream's state", e))?;
            Ok::<_, StoreError>(s.cached_info().state.last_sequence)
        }
    }))?
}

/// Whether a batch was refused because the stream had moved on.
fn wrong_last_sequence(e: &jetstream_extra::batch_publish::BatchPublishError) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(e);
    while let Some(s) = source {
        if let Some(api) = s.downcast_ref::<jetstream::Error>() {
            return api.error_code() == jetstream::ErrorCode::STREAM_WRONG_LAST_SEQUENCE;
        }
        source = s.source();
    }
    e.to_string().contains("wrong last sequence")
}

/// The stream as the ledger needs it; an existing stream that lacks one
/// of its guarantees is refused, never changed.
pub(super) async fn ensure_stream(
    js: &jetstream::Context,
    o: &JetStreamOptions,
) -> Result<(), StoreError> {
    let subjects = format!("{}.case.>", o.stream);
    let config = stream::Config {
        name: o.stream.clone(),
        description: Some("complaint-ledger: the event log, one subject per case".into()),
        subjects: vec![subjects.clone()],
        storage: stream::StorageType::File,
        num_replicas: o.replicas,
        deny_delete: true,
        deny_purge: true,
        allow_atomic_publish: true,
        allow_direct: true,
        ..Default::default()
    };
    // A cluster that is starting, or electing a leader after losing a
    // server, answers nothing for a moment: a node started meanwhile (a
    // deployment starts them together) waits for it.
    let deadline = tokio::time::Instant::now() + o.timeout * 6;
    let s = loop {
        match js.get_or_create_stream(config.clone()).await {
            Ok(s) => break s,
            Err(e) if tokio::time::Instant::now() < deadline => {
                tracing::info!(error = %e, "the stream cannot be created or found yet; waiting");
                tokio::time::sleep(std::time::Duration::from_millis(250)).await;
            }
            Err(e) => {
                return Err(unavailable(
                    &format!("creating or finding stream {}", o.stream),
                    e,
                ))
            }
        }
    };
    // Finding or creating the stream answered its configuration.
    let c = &s.cached_info().config;
    let mut lacks = Vec::new();
    if !c.deny_delete {
        lacks.push("deny_delete");
    }
    if !c.deny_purge {
        lacks.push("deny_purge");
    }
    if !c.allow_atomic_publish {
        lacks.push("allow_atomic");
    }
    if !c.allow_direct {
        lacks.push("allow_direct");
    }
    if c.storage != stream::StorageType::File {
        lacks.push("file storage");
    }
    if c.subjects != [subjects.clone()] {
        lacks.push("the subjects <stream>.case.> alone");
    }
    if c.max_messages > 0
        || c.max_bytes > 0
        || !c.max_age.is_zero()
        || c.max_messages_per_subject > 0
    {
        lacks.push("no limits");
    }
    if !lacks.is_empty() {
        return Err(StoreError::Engine(format!(
            "stream {} exists without {}; the ledger does not run on it",
            o.stream,
            lacks.join(", ")
        )));
    }
    Ok(())
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
        self.publish(records)?;
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
            let bucket = match name {
                "customer-keys" => self.opts.keys_bucket(),
                other => format!(
                    "{}_{}",
                    self.opts.stream,
                    other.to_uppercase().replace('-', "_")
                ),
            };
            return Ok(Box::new(KvTable::open(
                self.bridge.clone(),
                self.js.clone(),
                &bucket,
                self.opts.replicas,
                self.opts.timeout,
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
        let client = self.js.client();
        let subject = self.opts.heads_subject();
        let me = self.node.clone();
        let announced_head = self.announced.clone();
        self.bridge.handle().spawn(async move {
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

    /// The stream's last sequence, asked of its leader.
    fn upstream_head(&self) -> Result<Option<u64>, StoreError> {
        stream_head(&self.bridge, &self.js, &self.opts).map(Some)
    }

    /// One batched direct get. A replica that lags answers fewer records;
    /// the caller asks again from where they stop.
    fn fetch_upstream(
        &self,
        from: u64,
        limit: usize,
    ) -> Result<Vec<(u64, bytes::Bytes)>, StoreError> {
        fetch(&self.bridge, &self.js, &self.opts, from, limit)
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

/// Up to `limit` records of the stream from `from` on, without a gap.
pub(super) fn fetch(
    bridge: &Bridge,
    js: &jetstream::Context,
    opts: &JetStreamOptions,
    from: u64,
    limit: usize,
) -> Result<Vec<(u64, bytes::Bytes)>, StoreError> {
    let js = js.clone();
    let name = opts.stream.clone();
    let limit = limit.clamp(1, MAX_BATCH);
    let timeout = opts.timeout;
    // A batch's messages come as a stream with no deadline of its own: a
    // server cut off mid-answer would hold the writer forever.
    let read = async move {
        loop {
            let mut got = Vec::new();
            let mut messages = match js.get_batch(&name, limit).sequence(from).send().await {
                Ok(m) => m,
                Err(e) if e.to_string().to_lowercase().contains("not found") => return Ok(got),
                Err(e) => return Err(unavailable("reading the stream", e)),
            };
            let mut status_only = false;
            while let Some(m) = messages.next().await {
                let m = match m {
                    Ok(m) => m,
                    Err(e) if e.to_string().to_lowercase().contains("not found") => break,
                    // A status answer instead of records (no responder
                    // for the stream's direct gets yet: a replica starting
                    // or a leader being elected), which the client names
                    // "not supported": asked again, within the timeout.
                    Err(e) if e.kind() == BatchFetchErrorKind::UnsupportedByServer => {
                        status_only = got.is_empty();
                        break;
                    }
                    Err(e) => return Err(unavailable("reading the stream", e)),
                };
                if m.sequence != from + got.len() as u64 {
                    break;
                }
                got.push((m.sequence, m.payload));
                if got.len() == limit {
                    break;
                }
            }
            if !status_only {
                return Ok(got);
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    };
    bridge.run(async move {
        tokio::time::timeout(timeout, read)
            .await
            .unwrap_or_else(|_| Err(unavailable("reading the stream", "no answer in time")))
    })?
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
