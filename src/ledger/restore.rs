//! A clustered node's local copy after a crash: what it acknowledged, fetched
//! back from the stream before the start verifies.
//!
//! On a clustered log a record is durable once the stream's quorum took it;
//! the node's local copy stores it after, written behind (see
//! `store::jetstream`). A `kill -9` or a power cut can therefore leave the
//! copy shorter than the integrity witness says this node acknowledged. The
//! missing records are the stream's, the same bytes on every node: they are
//! fetched and stored with their tree hashes, and the start then verifies
//! them as any record written since the last verified point (each chain, each
//! position) and checks the witness's root at its size. A log of its own has
//! nowhere to fetch from: there, a store shorter than its witness is damage
//! and refused (`integrity::check`).

use super::error::LedgerError;
use crate::audit::merkle::{hashes_for_new_leaf, StagedReader};
use crate::proto::v1 as pb;
use crate::store::{EventLog, NewRecord};
use prost::Message;

/// Records fetched per read of the stream.
const CHUNK: usize = 1000;

/// How long an empty answer (a lagging replica) is asked again, 10 ms apart,
/// before the start is refused as unavailable.
const EMPTY_READS: u32 = 500;

/// Fetches the stream's records after the local copy's head up to `up_to`
/// into the copy. Returns how many were fetched.
pub(super) fn restore<L: EventLog + ?Sized>(log: &L, up_to: u64) -> Result<u64, LedgerError> {
    let from = log.head()?;
    let mut head = from;
    let mut empty = 0;
    while head < up_to {
        let want = usize::try_from(up_to - head).unwrap_or(CHUNK).min(CHUNK);
        let fetched = log.fetch_upstream(head + 1, want)?;
        if fetched.is_empty() {
            empty += 1;
            if empty > EMPTY_READS {
                return Err(LedgerError::Unavailable(format!(
                    "this node acknowledged {up_to} records and its local copy holds {head}; the stream answers none past {head}"
                )));
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
            continue;
        }
        let mut records = Vec::with_capacity(fetched.len());
        let mut tree: Vec<(u64, [u8; 32])> = Vec::new();
        for (position, bytes) in fetched.into_iter().take(want) {
            let next = head + records.len() as u64 + 1;
            let bad = |why: String| {
                LedgerError::Storage(format!(
                    "fetching acknowledged records back from the stream: record {position} {why}"
                ))
            };
            if position != next {
                return Err(bad(format!("came where position {next} was next")));
            }
            let rec = pb::StoredRecord::decode(&bytes[..])
                .map_err(|e| bad(format!("does not decode: {e}")))?;
            if rec.position != position {
                return Err(bad(format!("says it is at position {}", rec.position)));
            }
            let reader = StagedReader { staged: &tree, log };
            let hashes = hashes_for_new_leaf(position - 1, &bytes, &reader)?;
            tree.extend(hashes);
            records.push(NewRecord::again(position, rec, &bytes));
        }
        log.adopt(&records, &tree)?;
        head += records.len() as u64;
    }
    if head > from {
        tracing::info!(
            fetched = head - from,
            from = from + 1,
            to = head,
            "the local copy lacked records this node acknowledged (written behind, lost in a crash); fetched them back from the stream"
        );
    }
    Ok(head - from)
}
