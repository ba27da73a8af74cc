//! The stream as the log's authority: a commit goes onto it as one atomic
//! batch, records come back from it by position, and its head is the
//! position of its last message's last record.
//!
//! Each group commit is one atomic batch of messages, each message many
//! records ([`super::commit_message`]); the batch's first message expects
//! the stream's last sequence to be the message that ends at the node's
//! head (`Nats-Expected-Last-Sequence`). A node that is behind — another
//! node committed first, or its copy stops inside a message — is refused
//! or stopped before sending, adopts what it lacks and decides again. So
//! the messages' positions continue each other with no gap, and every
//! node reads the same records at the same positions.

use super::bridge::{read_patiently, Bridge};
use super::commit_message::{self, Span};
use super::positions::{locate, Spans};
use super::{unavailable, JetStreamOptions};
use crate::store::{NewRecord, StoreError};
use async_nats::jetstream::{self, stream};
use bytes::Bytes;
use futures_util::StreamExt;
use jetstream_extra::batch_fetch::{BatchFetchErrorKind, BatchFetchExt};
use jetstream_extra::batch_publish::BatchPublishExt;
use std::sync::Arc;

/// Records in one write at most (an atomic batch takes 1,000 messages;
/// a write of this many records is at most that many messages).
pub const MAX_BATCH: usize = 1000;

/// Bytes one read of the stream asks for at most (the server sends one
/// message at least).
const READ_BYTES: usize = 4 * 1024 * 1024;

/// The header naming the node that published a batch, on its first
/// message: which node committed what, for whoever reads the stream.
const NODE_HEADER: &str = "Complaint-Ledger-Node";

/// The stream, reached through the store's runtime, and what this process
/// learned of where its positions are.
pub(super) struct Upstream {
    pub bridge: Arc<Bridge>,
    pub js: jetstream::Context,
    pub opts: JetStreamOptions,
    spans: Spans,
}

impl Upstream {
    /// Connects and finds (or creates) the stream.
    pub fn open(opts: &JetStreamOptions) -> Result<Self, StoreError> {
        let bridge = Arc::new(Bridge::new()?);
        let o = opts.clone();
        let js = bridge.run(async move { super::open_stream(&o).await })??;
        Ok(Self {
            bridge,
            js,
            opts: opts.clone(),
            spans: Spans::default(),
        })
    }

    /// Publishes a commit's records as one atomic batch after the message
    /// that ends where they begin, then announces the head it reached on
    /// `<stream>.heads` as `<node> <head>`.
    pub fn publish(&self, node: &str, records: &[NewRecord]) -> Result<(), StoreError> {
        if records.len() > MAX_BATCH {
            return Err(StoreError::Engine(format!(
                "{} records in one write; a clustered write takes at most {MAX_BATCH}",
                records.len()
            )));
        }
        let Some(first) = records.first() else {
            return Ok(());
        };
        let last = first.position + records.len() as u64 - 1;
        let expected = match self.message_ending_at(first.position - 1)? {
            Some(seq) => seq,
            None => {
                // The stream goes on inside the message this node's copy
                // stops in: it is behind.
                return Err(StoreError::Conflict {
                    upstream_head: self.head()?,
                });
            }
        };
        let payloads = commit_message::encode(records);
        let sent = payloads.len() as u64;
        let subject = self.opts.commits_subject();
        // The announcement names the node and the head its commit reached,
        // so that the others adopt up to it without asking the stream.
        let me = Bytes::from(format!("{node} {last}"));
        let node = node.to_string();
        let to_send = payloads.clone();
        let messages = move || -> Vec<jetstream::message::OutboundMessage> {
            to_send
                .iter()
                .enumerate()
                .map(|(i, payload)| {
                    // Headers of ours on the batch's first message only:
                    // every byte of a message costs each server that
                    // stores it.
                    let mut headers = async_nats::HeaderMap::new();
                    if i == 0 {
                        headers.insert(NODE_HEADER, node.as_str());
                        headers.insert("Nats-Expected-Last-Sequence", expected.to_string());
                    }
                    jetstream::message::OutboundMessage {
                        subject: subject.clone().into(),
                        payload: payload.clone(),
                        headers: Some(headers),
                    }
                })
                .collect()
        };
        let (js, timeout) = (self.js.clone(), self.opts.timeout);
        let heads = self.opts.heads_subject();
        let acked = self.bridge.run(async move {
            // "No responders": no server took the batch's commit (a stream
            // just created, a leader being elected), so nothing of it is
            // stored and it is sent again, within the timeout. Any other
            // failure may have been stored and is the caller's to settle.
            let deadline = tokio::time::Instant::now() + timeout;
            loop {
                // No acknowledgement of the first message: it would cost
                // a round trip per batch, and a batch the server did not
                // take whole is refused at its commit anyway.
                let mut batch = js.batch_publish().ack_first(false).timeout(timeout).build();
                let mut sending = messages().into_iter();
                let final_one = sending.next_back().expect("one message at least");
                for m in sending {
                    batch.add_message(m).await?;
                }
                let acked = batch.commit_message(final_one).await;
                match &acked {
                    Err(e)
                        if e.to_string().contains("no responders")
                            && tokio::time::Instant::now() < deadline =>
                    {
                        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                        continue;
                    }
                    // Other nodes learn of the commit from this (core NATS,
                    // not the stream; a lost one is covered by their tick).
                    Ok(_) => {
                        let _ = js.client().publish(heads.clone(), me.clone()).await;
                    }
                    Err(_) => {}
                }
                return acked;
            }
        })?;
        match acked {
            Ok(ack) if ack.sequence == expected + sent => {
                for (i, payload) in payloads.iter().enumerate() {
                    self.spans
                        .note(commit_message::span(expected + 1 + i as u64, payload)?);
                }
                Ok(())
            }
            Ok(ack) => Err(StoreError::Corrupt(format!(
                "the stream acknowledged records {}..={last}, sent as {sent} messages after its message {expected}, at sequence {}: another writer's messages are in the stream",
                first.position, ack.sequence
            ))),
            Err(e) if wrong_last_sequence(&e) => Err(StoreError::Conflict {
                upstream_head: self.head()?,
            }),
            Err(e) => Err(unavailable("publishing to the stream", e)),
        }
    }

    /// The sequence of the message whose last record is at `position` (0
    /// for position 0), or `None` when the stream goes on past `position`
    /// inside that message.
    fn message_ending_at(&self, position: u64) -> Result<Option<u64>, StoreError> {
        if position == 0 {
            return Ok(Some(0));
        }
        let span = match self.spans.containing(position) {
            Some(s) => s,
            None => {
                let Some(seq) = self.locate(position)? else {
                    return Err(StoreError::Corrupt(format!(
                        "the stream {} does not reach position {position}, which this node holds: the stream was replaced",
                        self.opts.stream
                    )));
                };
                match self.spans.at_seq(seq) {
                    Some(s) => s,
                    None => self.probe(seq)?,
                }
            }
        };
        Ok((span.last == position).then_some(span.seq))
    }

    /// The position of the stream's last record, as its leader knows it.
    pub fn head(&self) -> Result<u64, StoreError> {
        let last = self.last_seq()?;
        if last == 0 {
            return Ok(0);
        }
        match self.spans.at_seq(last) {
            Some(s) => Ok(s.last),
            None => Ok(self.probe(last)?.last),
        }
    }

    /// The stream's last sequence, asked of its leader.
    fn last_seq(&self) -> Result<u64, StoreError> {
        let (js, name) = (self.js.clone(), self.opts.stream.clone());
        self.bridge.run(read_patiently(self.opts.timeout, move || {
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

    /// The sequence of the message holding `position`, if the stream
    /// reaches it.
    fn locate(&self, position: u64) -> Result<Option<u64>, StoreError> {
        locate(
            &self.spans,
            position,
            || self.last_seq(),
            |seq| self.probe(seq),
        )
    }

    /// Where the message at `seq` is, which the stream holds (a replica
    /// that lags answers nothing for a moment: asked again until the
    /// timeout).
    fn probe(&self, seq: u64) -> Result<Span, StoreError> {
        let deadline = std::time::Instant::now() + self.opts.timeout;
        loop {
            if let Some((got, payload)) = self.read(seq, 1)?.into_iter().next() {
                let s = commit_message::span(got, &payload)?;
                self.spans.note(s);
                return Ok(s);
            }
            if std::time::Instant::now() > deadline {
                return Err(StoreError::Unavailable(format!(
                    "the stream answers no message at sequence {seq}, which it holds"
                )));
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }

    /// Up to `limit` records from position `from` on, without a gap; fewer
    /// (none) where a replica that lags answers fewer.
    pub fn fetch(&self, from: u64, limit: usize) -> Result<Vec<(u64, Bytes)>, StoreError> {
        let Some(seq) = self.locate(from)? else {
            return Ok(Vec::new());
        };
        let limit = limit.clamp(1, MAX_BATCH);
        // As many messages as the records wanted take if they are like the
        // newest one known, and one more; a read that comes short is
        // continued by the caller.
        let messages = limit.div_ceil(self.spans.records_per_message()) + 1;
        let mut got = Vec::new();
        let mut next = from;
        for (s, payload) in self.read(seq, messages)? {
            let (span, records) = commit_message::decode(s, &payload)?;
            if span.first > next || span.last < next {
                return Err(StoreError::Corrupt(format!(
                    "the stream's message {s} holds positions {}..={} where position {next} was next",
                    span.first, span.last
                )));
            }
            self.spans.note(span);
            for (position, bytes) in records {
                if position >= next && got.len() < limit {
                    got.push((position, bytes));
                    next = position + 1;
                }
            }
            if got.len() == limit {
                break;
            }
        }
        Ok(got)
    }

    /// Up to `count` messages of the stream from sequence `from` on, with
    /// their sequences, without a gap.
    fn read(&self, from: u64, count: usize) -> Result<Vec<(u64, Bytes)>, StoreError> {
        let js = self.js.clone();
        let name = self.opts.stream.clone();
        let count = count.clamp(1, MAX_BATCH);
        let timeout = self.opts.timeout;
        // A batch's messages come as a stream with no deadline of its own: a
        // server cut off mid-answer would hold the writer forever.
        let read = async move {
            loop {
                let mut got = Vec::new();
                let mut messages = match js
                    .get_batch(&name, count)
                    .sequence(from)
                    .max_bytes(READ_BYTES)
                    .send()
                    .await
                {
                    Ok(m) => m,
                    Err(e) if e.to_string().to_lowercase().contains("not found") => return Ok(got),
                    Err(e) => return Err(unavailable("reading the stream", e)),
                };
                let mut status_only = false;
                while let Some(m) = messages.next().await {
                    let m = match m {
                        Ok(m) => m,
                        Err(e) if e.to_string().to_lowercase().contains("not found") => break,
                        // A status answer instead of messages (no responder
                        // for the stream's direct gets yet: a replica
                        // starting or a leader being elected), which the
                        // client names "not supported": asked again,
                        // within the timeout.
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
                    if got.len() == count {
                        break;
                    }
                }
                if !status_only {
                    return Ok(got);
                }
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
        };
        self.bridge.run(async move {
            tokio::time::timeout(timeout, read)
                .await
                .unwrap_or_else(|_| Err(unavailable("reading the stream", "no answer in time")))
        })?
    }
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
    let subject = o.commits_subject();
    let config = stream::Config {
        name: o.stream.clone(),
        description: Some("complaint-ledger: the event log, one message per group commit".into()),
        subjects: vec![subject.clone()],
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
    if c.subjects != [subject.clone()] {
        lacks.push("the subject <stream>.commits alone");
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
