//! The event-id index's runs as stored, and the index's state in memory:
//! what the index (`event_index`) and the merges of its full runs
//! (`event_index_tiers`) both work on, so that neither imports the other's
//! internals.
//!
//! A run covers the events at positions `first..=last`: their (id hash,
//! position) pairs, sorted, a few hundred per sled value (`J` keys), with
//! its Bloom filter (`B` keys) and its directory entry (`H`); see
//! `super::keys`.

use super::event_filter::RunFilter;
use super::keys::{self, trailing_u64};
use crate::store::StoreError;
use std::collections::HashMap;

/// Pairs per stored value (16 bytes each): below sled's blob threshold.
pub(super) const PAIRS_PER_VALUE: usize = 384;

/// A stored run: the events at positions first..=last, one pair each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Run {
    pub first: u64,
    pub last: u64,
}

impl Run {
    pub fn len(&self) -> usize {
        (self.last - self.first + 1) as usize
    }
}

pub(super) fn bad(why: String) -> StoreError {
    StoreError::Corrupt(format!("event-id index: {why}"))
}

/// The pairs of a stored value.
pub(super) fn pairs_of(
    run: Run,
    v: &[u8],
) -> Result<impl Iterator<Item = (u64, u64)> + '_, StoreError> {
    if v.len() % 16 != 0 || v.is_empty() {
        return Err(bad(format!(
            "run {}-{} has a torn value",
            run.first, run.last
        )));
    }
    Ok(v.chunks_exact(16).map(|pair| {
        let h = u64::from_be_bytes(pair[..8].try_into().expect("8 bytes"));
        (h, trailing_u64(pair).expect("8 bytes"))
    }))
}

/// Adds the writes of a run's filter to `batch`, in parts the size of a
/// run's values: sled stores a larger value as a file of its own.
pub(super) fn write_filter(batch: &mut sled::Batch, run: Run, filter: &RunFilter) {
    for (i, part) in filter.encode().chunks(PAIRS_PER_VALUE * 16).enumerate() {
        batch.insert(
            &keys::id_filter_key(run.first, run.last, i as u32)[..],
            part,
        );
    }
}

/// Adds value number `i` of `run`, holding `chunk` (sorted pairs, at most
/// [`PAIRS_PER_VALUE`]), to `batch`.
pub(super) fn insert_value(batch: &mut sled::Batch, run: Run, i: u32, chunk: &[(u64, u64)]) {
    let mut value = Vec::with_capacity(chunk.len() * 16);
    for (h, p) in chunk {
        value.extend_from_slice(&h.to_be_bytes());
        value.extend_from_slice(&p.to_be_bytes());
    }
    let key = keys::id_chunk_key(run.first, run.last, chunk[0].0, i);
    batch.insert(&key[..], value);
}

/// The keys of a run's values and of its filter's parts (not its
/// directory entry).
pub(super) fn value_keys(
    db: &sled::Db,
    run: Run,
) -> impl Iterator<Item = Result<sled::IVec, sled::Error>> {
    db.scan_prefix(keys::id_chunk_prefix(run.first, run.last))
        .keys()
        .chain(
            db.scan_prefix(keys::id_filter_prefix(run.first, run.last))
                .keys(),
        )
}

/// The index in memory: the directory of stored runs with their filters,
/// and the pairs not yet in a run.
pub(super) struct Inner {
    /// The stored runs, oldest first, each with its filter.
    pub runs: Vec<(Run, RunFilter)>,
    /// Pairs of the events after the last run, in memory only, by hash:
    /// the first position of each hash here, the rare others (a collision
    /// of two ids' 64-bit hashes) in `recent_more`. A hash map, not an
    /// ordered set: every commit inserts its ids at random places, and an
    /// ordered insert cost most of this index's share of the writer; the
    /// pairs are sorted once, into the run.
    pub recent: HashMap<u64, u64>,
    pub recent_more: Vec<(u64, u64)>,
    /// Last position indexed (in a run or in `recent`).
    pub through: u64,
}

impl Inner {
    /// The pairs of `recent`, sorted as a run keeps them.
    pub fn recent_pairs(&self) -> Vec<(u64, u64)> {
        let mut pairs: Vec<(u64, u64)> = self
            .recent
            .iter()
            .map(|(h, p)| (*h, *p))
            .chain(self.recent_more.iter().copied())
            .collect();
        pairs.sort_unstable();
        pairs
    }
}
