//! A side table every node of a clustered ledger shares: a JetStream
//! key-value bucket, replicated as the stream is, keeping only each key's
//! latest value (history 1), read from the bucket's leader (no direct
//! gets, which a lagging replica may answer).
//!
//! Customers' data keys live here: a key made by the node that sealed a
//! customer's first personal data must open it on every other node, and an
//! erasure on one node must be an erasure on all. A node keeps the keys it
//! read in its bounded cache, and drops a customer's when it adopts the
//! erasure's `PersonalDataErased` events (`ledger::follow`), which are in
//! the stream before the erasure is answered; a read waits for that
//! adoption.
//!
//! Bucket keys are the table's keys in lower-case hex: the bucket's
//! alphabet is narrower than the table's, and hex sorts as the bytes do.

use super::bridge::{read_patiently, Bridge};
use super::unavailable;
use crate::store::side_table::{Change, Entry};
use crate::store::{SideTable, StoreError};
use async_nats::jetstream::{self, kv};
use futures_util::StreamExt;
use std::sync::Arc;

pub struct KvTable {
    bridge: Arc<Bridge>,
    kv: kv::Store,
    js: jetstream::Context,
    /// The bucket's stream.
    stream: String,
    patience: std::time::Duration,
}

impl KvTable {
    pub(crate) fn open(
        bridge: Arc<Bridge>,
        js: jetstream::Context,
        bucket: &str,
        replicas: usize,
        patience: std::time::Duration,
    ) -> Result<Self, StoreError> {
        let name = bucket.to_string();
        let context = js.clone();
        // Found or created again while the cluster cannot place it (a
        // server starting or briefly taken for offline, a leader being
        // elected), as the stream is (`stream::ensure_stream`): creating
        // the bucket again is harmless, and a node started meanwhile waits.
        let kv = bridge.run(read_patiently(patience * 6, move || {
            let (js, name) = (js.clone(), name.clone());
            async move {
                if let Ok(kv) = js.get_key_value(&name).await {
                    return Ok(kv);
                }
                let created = js
                    .create_key_value(kv::Config {
                        bucket: name.clone(),
                        description: "complaint-ledger: a table all nodes share".into(),
                        history: 1,
                        storage: jetstream::stream::StorageType::File,
                        num_replicas: replicas,
                        ..Default::default()
                    })
                    .await;
                match created {
                    Ok(kv) => Ok(kv),
                    // Another node created it meanwhile.
                    Err(e) => js
                        .get_key_value(&name)
                        .await
                        .map_err(|_| unavailable(&format!("opening bucket {name}"), e)),
                }
            }
        }))??;
        Ok(Self {
            bridge,
            kv,
            js: context,
            stream: format!("KV_{bucket}"),
            patience,
        })
    }
}

fn key_of(k: &[u8]) -> String {
    if k.is_empty() {
        // The bucket takes no empty key; no table key is one (a prefix
        // scan from nothing never names it).
        "_".into()
    } else {
        hex::encode(k)
    }
}

fn bytes_of(k: &str) -> Option<Vec<u8>> {
    if k == "_" {
        Some(Vec::new())
    } else {
        hex::decode(k).ok()
    }
}

impl KvTable {
    /// Every key of the bucket, sorted.
    fn sorted_keys(&self) -> Result<Vec<Vec<u8>>, StoreError> {
        let kv = self.kv.clone();
        // Listing walks the whole bucket (a consumer of its stream): on a
        // busy cluster it takes longer than a read.
        let patience = self.patience * 3;
        let mut keys: Vec<Vec<u8>> = self.bridge.run(read_patiently(patience, move || {
            let kv = kv.clone();
            let listing = async move {
                let mut keys = Vec::new();
                let mut listed = match kv.keys().await {
                    Ok(l) => l,
                    Err(e) => return Err(unavailable("listing a shared table", e)),
                };
                while let Some(k) = listed.next().await {
                    let k = k.map_err(|e| unavailable("listing a shared table", e))?;
                    keys.extend(bytes_of(&k));
                }
                Ok(keys)
            };
            // The keys come as a stream with no deadline of its own.
            async move {
                tokio::time::timeout(patience, listing)
                    .await
                    .unwrap_or_else(|_| {
                        Err(unavailable("listing a shared table", "no answer in time"))
                    })
            }
        }))??;
        keys.sort();
        Ok(keys)
    }
}

impl SideTable for KvTable {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        let kv = self.kv.clone();
        let k = key_of(key);
        let patience = self.patience;
        self.bridge.run(read_patiently(patience, move || {
            let (kv, k) = (kv.clone(), k.clone());
            async move {
                match kv.entry(k).await {
                    Ok(Some(e)) if e.operation == kv::Operation::Put => Ok(Some(e.value.to_vec())),
                    Ok(_) => Ok(None),
                    Err(e) => Err(unavailable("reading a shared table", e)),
                }
            }
        }))?
    }

    fn insert(&self, key: &[u8], value: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        let old = self.get(key)?;
        let kv = self.kv.clone();
        let (k, v) = (key_of(key), bytes::Bytes::copy_from_slice(value));
        self.bridge.run(async move {
            kv.put(k, v)
                .await
                .map_err(|e| unavailable("writing a shared table", e))
        })??;
        Ok(old)
    }

    fn remove(&self, key: &[u8]) -> Result<(), StoreError> {
        let kv = self.kv.clone();
        let k = key_of(key);
        // A purge drops the key's stored values, not only marks it deleted.
        self.bridge.run(async move {
            kv.purge(k)
                .await
                .map_err(|e| unavailable("removing from a shared table", e))
        })?
    }

    /// Tried again while the bucket cannot answer (a leader being elected
    /// after a server was lost): a create that was stored though its answer
    /// was lost is found as the key holding this very value, and counts as
    /// done.
    fn insert_new(&self, key: &[u8], value: &[u8]) -> Result<Result<(), Vec<u8>>, StoreError> {
        let deadline = std::time::Instant::now() + self.patience;
        loop {
            let kv = self.kv.clone();
            let (k, v) = (key_of(key), bytes::Bytes::copy_from_slice(value));
            let created = self.bridge.run(async move { kv.create(k, v).await })?;
            match created {
                Ok(_) => return Ok(Ok(())),
                Err(e) if e.kind() == kv::CreateErrorKind::AlreadyExists => {
                    // Present now, unless removed again since: then retry.
                    match self.get(key)? {
                        Some(current) if current == value => return Ok(Ok(())),
                        Some(current) => return Ok(Err(current)),
                        None => {}
                    }
                }
                Err(e) if std::time::Instant::now() < deadline => {
                    tracing::debug!(error = %e, "a shared table could not be written; trying again");
                    std::thread::sleep(std::time::Duration::from_millis(100));
                }
                Err(e) => return Err(unavailable("writing a shared table", e)),
            }
        }
    }

    fn scan(&self, from: &[u8], limit: usize) -> Result<Vec<Entry>, StoreError> {
        let mut keys = self.sorted_keys()?;
        keys.retain(|k| k.as_slice() >= from);
        let mut out = Vec::new();
        for k in keys {
            if out.len() == limit {
                break;
            }
            if let Some(v) = self.get(&k)? {
                out.push((k, v));
            }
        }
        Ok(out)
    }

    fn last_at_or_before(&self, key: &[u8]) -> Result<Option<Entry>, StoreError> {
        // A key listed may be gone by the time it is read: the one before.
        for k in self.sorted_keys()?.into_iter().rev() {
            if k.as_slice() > key {
                continue;
            }
            if let Some(v) = self.get(&k)? {
                return Ok(Some((k, v)));
            }
        }
        Ok(None)
    }

    /// One change after the other: a bucket has no batch of several keys.
    /// The shared tables (customers' keys) change one key at a time.
    fn apply(&self, changes: &[Change]) -> Result<(), StoreError> {
        for (k, v) in changes {
            match v {
                Some(v) => {
                    self.insert(k, v)?;
                }
                None => self.remove(k)?,
            }
        }
        Ok(())
    }

    /// Asked of the bucket's stream (one request), not by listing keys.
    fn is_empty(&self) -> Result<bool, StoreError> {
        let (js, stream) = (self.js.clone(), self.stream.clone());
        let messages = self.bridge.run(read_patiently(self.patience, move || {
            let (js, stream) = (js.clone(), stream.clone());
            async move {
                // Finding the stream answers its state.
                let s = js
                    .get_stream(&stream)
                    .await
                    .map_err(|e| unavailable("reading a shared table's state", e))?;
                Ok(s.cached_info().state.messages)
            }
        }))??;
        Ok(messages == 0)
    }
}
