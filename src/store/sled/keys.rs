//! Key layout of the single sled tree. One tree, so that a record and its
//! index entries commit in one atomic `apply_batch`:
//!
//! | key                                   | value            |
//! |---------------------------------------|------------------|
//! | `L` first position (u64 BE)           | a pack of records at consecutive positions from that one (see `store::sled::pack`); in stores written before packs, one record |
//! | `C` case id `0x00` first version (u64 BE) | up to [`CASE_RUNS_PER_ENTRY`] runs, each first position (u64 BE) ‖ count (u32 BE): consecutive versions from the key's, each run at consecutive positions (stores before chunked entries held one run per key, which reads the same) |
//! | `J` first position ‖ last position (u64 BE each) ‖ first id hash (u64 BE) ‖ value number (u32 BE) | part of a run of the event-id index: sorted (id hash, position) pairs, 16 bytes each, see `store::event_index` |
//! | `H` first position ‖ last position (u64 BE each) | empty: a run of the event-id index is stored (the directory of runs) |
//! | `B` first position ‖ last position (u64 BE each) ‖ part number (u32 BE) | part of the run's Bloom filter, checksummed whole (see `store::event_filter`); parts stay below sled's blob threshold |
//! | `G` first position ‖ last position (u64 BE each) | empty: a merged run of the event-id index is being written under `J` and `B` keys and is not yet stored (see `store::event_index_tiers`) |
//! | `D` first position ‖ last position (u64 BE each) | empty: a run merged into a larger one, whose `J` and `B` keys are being deleted |
//! | `I` first position ‖ last position ‖ value number | a run of the event-id index in the layout before `J`: rewritten as `J` and `H` at open |
//! | `E` event id                          | position (u64 BE): the event-id index of earlier builds, one entry per event; no longer written or read |
//! | `T` first stored-hash index (u64 BE)  | a run of Merkle tree hashes (32 bytes each) from that index, see `audit::merkle` |
//!
//! One group commit completes a contiguous run of stored-hash indexes, so its
//! tree hashes are one `T` value rather than a key each (fewer sled inserts
//! and fewer tree nodes); a hash is found with a "last key ≤ index" lookup.
//!
//! Ids never contain `0x00` (see `domain::ids`), so prefixes are unambiguous;
//! big-endian numbers make sled's byte order the numeric order.

pub const LOG: u8 = b'L';
pub const CASE: u8 = b'C';
pub const EVENT: u8 = b'E';
pub const TREE: u8 = b'T';
pub const ID_RUN: u8 = b'I';
pub const ID_CHUNK: u8 = b'J';
pub const ID_RUN_ENTRY: u8 = b'H';
pub const ID_FILTER: u8 = b'B';
pub const ID_MERGING: u8 = b'G';
pub const ID_DROPPING: u8 = b'D';

pub fn tree_key(index: u64) -> [u8; 9] {
    let mut k = [TREE; 9];
    k[1..].copy_from_slice(&index.to_be_bytes());
    k
}

pub fn log_key(position: u64) -> [u8; 9] {
    let mut k = [LOG; 9];
    k[1..].copy_from_slice(&position.to_be_bytes());
    k
}

pub fn case_prefix(case_id: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(case_id.len() + 10);
    k.push(CASE);
    k.extend_from_slice(case_id.as_bytes());
    k.push(0);
    k
}

pub fn case_key(case_id: &str, version: u64) -> Vec<u8> {
    let mut k = case_prefix(case_id);
    k.extend_from_slice(&version.to_be_bytes());
    k
}

/// Key of value number `i` of an event-id index run in the layout before
/// `J` keys (written by tests, to check the rewrite).
#[cfg(test)]
pub fn id_run_key(first: u64, last: u64, i: u32) -> [u8; 21] {
    let mut k = [ID_RUN; 21];
    k[1..9].copy_from_slice(&first.to_be_bytes());
    k[9..17].copy_from_slice(&last.to_be_bytes());
    k[17..].copy_from_slice(&i.to_be_bytes());
    k
}

/// Decodes an event-id index run key: (first, last, value number).
pub fn parse_id_run_key(k: &[u8]) -> Option<(u64, u64, u32)> {
    if k.len() != 21 || k[0] != ID_RUN {
        return None;
    }
    Some((
        u64::from_be_bytes(k[1..9].try_into().ok()?),
        u64::from_be_bytes(k[9..17].try_into().ok()?),
        u32::from_be_bytes(k[17..].try_into().ok()?),
    ))
}

/// The prefix of the values of the event-id index run covering
/// `first..=last`.
pub fn id_chunk_prefix(first: u64, last: u64) -> [u8; 17] {
    let mut k = [ID_CHUNK; 17];
    k[1..9].copy_from_slice(&first.to_be_bytes());
    k[9..17].copy_from_slice(&last.to_be_bytes());
    k
}

/// Key of value number `i` of the event-id index run covering
/// `first..=last`, whose first pair has id hash `hash`.
pub fn id_chunk_key(first: u64, last: u64, hash: u64, i: u32) -> [u8; 29] {
    let mut k = [ID_CHUNK; 29];
    k[..17].copy_from_slice(&id_chunk_prefix(first, last));
    k[17..25].copy_from_slice(&hash.to_be_bytes());
    k[25..].copy_from_slice(&i.to_be_bytes());
    k
}

/// Decodes an event-id index value key: (first, last, first hash, value
/// number).
pub fn parse_id_chunk_key(k: &[u8]) -> Option<(u64, u64, u64, u32)> {
    if k.len() != 29 || k[0] != ID_CHUNK {
        return None;
    }
    Some((
        u64::from_be_bytes(k[1..9].try_into().ok()?),
        u64::from_be_bytes(k[9..17].try_into().ok()?),
        u64::from_be_bytes(k[17..25].try_into().ok()?),
        u32::from_be_bytes(k[25..].try_into().ok()?),
    ))
}

/// The directory entry of the event-id index run covering `first..=last`.
pub fn id_run_entry(first: u64, last: u64) -> [u8; 17] {
    id_span(ID_RUN_ENTRY, first, last)
}

/// A key of `prefix` naming the event-id index run `first..=last`.
fn id_span(prefix: u8, first: u64, last: u64) -> [u8; 17] {
    let mut k = id_chunk_prefix(first, last);
    k[0] = prefix;
    k
}

/// The prefix of the parts of the Bloom filter of the event-id index run
/// covering `first..=last`.
pub fn id_filter_prefix(first: u64, last: u64) -> [u8; 17] {
    id_span(ID_FILTER, first, last)
}

/// Key of part `i` of that filter.
pub fn id_filter_key(first: u64, last: u64, i: u32) -> [u8; 21] {
    let mut k = [ID_FILTER; 21];
    k[..17].copy_from_slice(&id_filter_prefix(first, last));
    k[17..].copy_from_slice(&i.to_be_bytes());
    k
}

/// Decodes a directory entry: (first, last).
pub fn parse_id_run_entry(k: &[u8]) -> Option<(u64, u64)> {
    parse_id_span(ID_RUN_ENTRY, k)
}

/// The marker of a merged run being written.
pub fn id_merging(first: u64, last: u64) -> [u8; 17] {
    id_span(ID_MERGING, first, last)
}

/// The marker of a run being deleted after a merge.
pub fn id_dropping(first: u64, last: u64) -> [u8; 17] {
    id_span(ID_DROPPING, first, last)
}

/// Decodes a key of `prefix` naming a run: (first, last).
pub fn parse_id_span(prefix: u8, k: &[u8]) -> Option<(u64, u64)> {
    if k.len() != 17 || k[0] != prefix {
        return None;
    }
    Some((
        u64::from_be_bytes(k[1..9].try_into().ok()?),
        u64::from_be_bytes(k[9..17].try_into().ok()?),
    ))
}

/// A case-index run: `count` versions stored from `position` on.
pub fn case_run(position: u64, count: u32) -> [u8; 12] {
    let mut v = [0; 12];
    v[..8].copy_from_slice(&position.to_be_bytes());
    v[8..].copy_from_slice(&count.to_be_bytes());
    v
}

/// Bytes of one case-index run.
pub const CASE_RUN_BYTES: usize = 12;

/// Most runs one case-index entry holds. A case's later commits extend
/// its last entry rather than adding a key each: a case like the seed's
/// (its opening, then a warning or a note at a time) takes one key, not
/// ten, and sled keeps memory for every page it ever wrote.
pub const CASE_RUNS_PER_ENTRY: usize = 32;

/// Decodes a case-index entry: its runs, each (first position, count).
pub fn parse_case_runs(v: &[u8]) -> Option<Vec<(u64, u64)>> {
    if v.is_empty() || v.len() % CASE_RUN_BYTES != 0 {
        return None;
    }
    v.chunks_exact(CASE_RUN_BYTES)
        .map(|r| {
            let position = u64::from_be_bytes(r[..8].try_into().ok()?);
            let count = u32::from_be_bytes(r[8..].try_into().ok()?);
            (count > 0).then_some((position, u64::from(count)))
        })
        .collect()
}

/// The trailing big-endian u64 of a key or value.
pub fn trailing_u64(bytes: &[u8]) -> Option<u64> {
    let tail: [u8; 8] = bytes.get(bytes.len().checked_sub(8)?..)?.try_into().ok()?;
    Some(u64::from_be_bytes(tail))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_sort_numerically_and_cases_do_not_overlap() {
        assert!(log_key(255) < log_key(256));
        assert!(case_key("12", u64::MAX) < case_key("123", 0));
        assert!(!case_key("123", 1).starts_with(&case_prefix("12")));
        assert_eq!(trailing_u64(&case_key("a", 42)), Some(42));
        assert_eq!(parse_case_runs(&case_run(7, 100)), Some(vec![(7, 100)]));
        let two = [case_run(7, 100), case_run(300, 1)].concat();
        assert_eq!(parse_case_runs(&two), Some(vec![(7, 100), (300, 1)]));
        assert_eq!(parse_case_runs(&case_run(7, 0)), None);
        assert_eq!(parse_case_runs(&[0; 8]), None);
        assert_eq!(parse_case_runs(&[]), None);
    }
}
