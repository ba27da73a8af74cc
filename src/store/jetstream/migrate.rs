//! Moving a single-node ledger into a cluster: every record's stored bytes
//! at its position — so each record's hash, its case's chain and the
//! Merkle tree are unchanged, and `verify` shows the same root at the same
//! size on both sides — and customers' data keys, wrapped as they were
//! (the cluster's nodes run with the same master key file).
//!
//! The stream must be empty or hold the directory's own first records
//! byte for byte (a migration that was interrupted continues where it
//! stopped); anything else is another ledger's stream and is refused.

use super::stream::{Upstream, MAX_BATCH};
use super::table::KvTable;
use super::JetStreamOptions;
use crate::proto::v1 as pb;
use crate::store::{EventLog, NewRecord, SideTable, StoreError};
use prost::Message;

/// What a migration did.
#[derive(Debug, Default)]
pub struct Migrated {
    /// Records the stream holds now (the directory's head).
    pub records: u64,
    /// Of them, those it already held (a migration continued).
    pub already: u64,
    /// Customers' keys (and erasure tombstones) copied into the bucket.
    pub keys: u64,
}

/// Copies the log `src` into the cluster; `progress(done, total)` after
/// each batch of records.
pub fn migrate(
    src: &dyn EventLog,
    opts: &JetStreamOptions,
    mut progress: impl FnMut(u64, u64),
) -> Result<Migrated, StoreError> {
    let up = Upstream::open(opts)?;
    let head = src.head()?;
    let there = up.head()?;
    let foreign = |why: String| {
        StoreError::Engine(format!(
            "stream {} {why}: it is another ledger's; migrate into an empty stream",
            opts.stream
        ))
    };
    if there > head {
        return Err(foreign(format!(
            "holds {there} records, more than the {head} of this directory"
        )));
    }
    let mut at = 1;
    while at <= there {
        let theirs = up.fetch(at, MAX_BATCH)?;
        if theirs.is_empty() {
            return Err(StoreError::Unavailable(format!(
                "the stream answers no record at {at} though it holds {there}"
            )));
        }
        for (position, bytes) in theirs {
            if src.read(position)?.as_deref() != Some(&bytes[..]) {
                return Err(foreign(format!(
                    "holds another record than this directory at {position}"
                )));
            }
            at = position + 1;
        }
    }

    // Keys first: a node that adopts a record can then open its data.
    let shared = KvTable::open(
        up.bridge.clone(),
        up.js.clone(),
        &opts.keys_bucket(),
        opts.replicas,
        opts.timeout,
    )?;
    let mut keys = 0;
    src.side_table("customer-keys")?.for_each(&mut |k, v| {
        match shared.insert_new(k, v)? {
            Ok(()) => keys += 1,
            Err(same) if same == v => {}
            Err(_) => {
                return Err(StoreError::Engine(format!(
                    "customer {} has another key in the cluster's bucket than in this directory",
                    String::from_utf8_lossy(k)
                )))
            }
        }
        Ok(())
    })?;

    let mut next = there + 1;
    while next <= head {
        let read = src.read_range(next, MAX_BATCH)?;
        if read.is_empty() {
            return Err(StoreError::Corrupt(format!(
                "this directory holds {head} records but none at {next}"
            )));
        }
        let mut records = Vec::with_capacity(read.len());
        for (position, bytes) in read {
            let rec = pb::StoredRecord::decode(&bytes[..]).map_err(|e| {
                StoreError::Corrupt(format!("record {position} does not decode: {e}"))
            })?;
            records.push(NewRecord::again(position, rec, &bytes));
        }
        up.publish("migrate", &records)?;
        next += records.len() as u64;
        progress(next - 1, head);
    }
    Ok(Migrated {
        records: head,
        already: there,
        keys,
    })
}
