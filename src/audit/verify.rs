//! The full verification of a store: one walk over every record, checking
//! gapless positions, each case's hash chain, the case and event-id indexes,
//! and every stored Merkle tree hash (each leaf against its record, each node
//! against its children), then that the tree holds no leaf beyond the last
//! record. An altered record fails its leaf; a removed one leaves a gap, or at
//! the end, leaves the tree longer than the log. The first problem is
//! reported with the position it was found at.

use super::chain::{ChainError, ChainVerifier};
use super::merkle::{hashes_for_new_leaf, stored_hash_count, StoreReader};
use crate::proto::v1::StoredRecord;
use crate::store::{EventLog, StoreError};

/// What a full verification found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyReport {
    pub records: u64,
    pub cases: usize,
    pub root: [u8; 32],
}

/// Why a full verification failed.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error(transparent)]
    Chain(#[from] ChainError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl VerifyError {
    /// The position named, if the store could be read at all.
    pub fn position(&self) -> Option<u64> {
        match self {
            VerifyError::Chain(c) => Some(c.position),
            VerifyError::Store(_) => None,
        }
    }
}

pub(crate) fn bad(position: u64, problem: String) -> VerifyError {
    ChainError { position, problem }.into()
}

/// Verifies a whole store; `progress(checked, total)` is called as it goes.
pub fn verify_store(
    log: &dyn EventLog,
    progress: impl FnMut(u64, u64),
) -> Result<VerifyReport, VerifyError> {
    verify_store_from(log, 1, progress, |_, _| Ok(()))
}

/// Like [`verify_store`], from `full_from` on, handing each record checked
/// to `visit` in position order with its chain hash. The records before
/// `full_from` are not read: a full verification covered them before (the
/// ledger's start: see `ledger::integrity::verified_through`), and the
/// cases they end are found through the case index when a later record
/// continues one. So the cost is the records since, not the log.
pub fn verify_store_from(
    log: &dyn EventLog,
    full_from: u64,
    progress: impl FnMut(u64, u64),
    visit: impl FnMut(StoredRecord, [u8; 32]) -> Result<(), VerifyError>,
) -> Result<VerifyReport, VerifyError> {
    let total = log.head()?;
    let v = verify_records(log, total, None, full_from, progress, visit)?;
    let records = v.checked();
    let last_expected = stored_hash_count(records).checked_sub(1);
    if let Some(last) = log.last_tree_index()? {
        if Some(last) != last_expected && last_expected.is_none_or(|e| last > e) {
            let mut leaves = records;
            while stored_hash_count(leaves + 1) <= last + 1 {
                leaves += 1;
            }
            return Err(bad(
                records + 1,
                format!("record missing: the Merkle tree holds {leaves} records but the log ends at position {records} (records removed from the end)"),
            ));
        }
    }
    let root = super::merkle::root(&StoreReader(log), records)?;
    Ok(VerifyReport {
        records,
        cases: v.cases(),
        root,
    })
}

/// Verifies records 1..=`upto` of a log that may be growing meanwhile
/// (the background scrub of a running server): the same checks per record
/// as [`verify_store`], but not whether the log ends where its tree does,
/// which only a log at rest can say. The report's root is the tree's at
/// `upto`.
pub fn verify_prefix(
    log: &dyn EventLog,
    upto: u64,
    progress: impl FnMut(u64, u64),
) -> Result<VerifyReport, VerifyError> {
    verify_range(log, 1, upto, progress)
}

/// Like [`verify_prefix`], for records `from..=upto` only: the records
/// before `from` had a full verification before (the verified-through
/// mark, `ledger::integrity::verified_through`), so together they make
/// 1..=`upto` verified, and the report's root is the tree's at `upto`.
/// `cases` counts only the cases opened in the range.
pub fn verify_range(
    log: &dyn EventLog,
    from: u64,
    upto: u64,
    progress: impl FnMut(u64, u64),
) -> Result<VerifyReport, VerifyError> {
    let v = verify_records(log, upto, Some(upto), from, progress, |_, _| Ok(()))?;
    if v.checked() < upto {
        return Err(bad(
            v.checked() + 1,
            format!(
                "record missing: the log ends at position {} before {upto}",
                v.checked()
            ),
        ));
    }
    let root = super::merkle::root(&StoreReader(log), upto)?;
    Ok(VerifyReport {
        records: upto,
        cases: v.cases(),
        root,
    })
}

/// Checks each record from `full_from` (up to `upto`, or to the end): its
/// place, its chain, its Merkle leaf and the nodes it completes, its
/// case-index and event-id entries.
fn verify_records(
    log: &dyn EventLog,
    total: u64,
    upto: Option<u64>,
    full_from: u64,
    mut progress: impl FnMut(u64, u64),
    mut visit: impl FnMut(StoredRecord, [u8; 32]) -> Result<(), VerifyError>,
) -> Result<ChainVerifier, VerifyError> {
    let start = full_from.clamp(1, total + 1);
    let mut v = ChainVerifier::after(start - 1);
    let mut from = start;
    loop {
        let want = match upto {
            Some(u) if from > u => break,
            Some(u) => (u - from + 1).min(4096) as usize,
            None => 4096,
        };
        let chunk = log.read_range(from, want)?;
        if chunk.is_empty() {
            break;
        }
        for (pos, bytes) in &chunk {
            let hash_at = |at| {
                let bytes = log
                    .read(at)
                    .map_err(|e| e.to_string())?
                    .ok_or_else(|| format!("no record is stored at {at}"))?;
                Ok(super::chain::record_hash(&bytes))
            };
            let version_at = |case_id: &str, version| {
                let found = log
                    .case_positions(case_id, version, false, 1)
                    .map_err(|e| e.to_string())?;
                Ok(found
                    .first()
                    .filter(|(v, _)| *v == version)
                    .map(|(_, p)| *p))
            };
            let (rec, hash) = v.check_with(*pos, bytes, hash_at, version_at)?;
            // Merkle: this record's leaf and the subtrees it completes.
            let expected = hashes_for_new_leaf(pos - 1, bytes, &StoreReader(log))
                .map_err(|e| bad(*pos, format!("Merkle tree hashes cannot be read: {e}")))?;
            let indexes: Vec<u64> = expected.iter().map(|(i, _)| *i).collect();
            let stored = log
                .tree_hashes(&indexes)
                .map_err(|e| bad(*pos, format!("Merkle tree hashes missing: {e}")))?;
            if stored[0] != expected[0].1 {
                return Err(bad(
                    *pos,
                    "record altered: its bytes do not match the Merkle leaf stored for it".into(),
                ));
            }
            if let Some(k) = (1..expected.len()).find(|k| stored[*k] != expected[*k].1) {
                return Err(bad(
                    *pos,
                    format!(
                        "Merkle tree node {} does not match its children",
                        indexes[k]
                    ),
                ));
            }
            let idx = log.case_positions(&rec.case_id, rec.case_version, false, 1)?;
            if idx.first() != Some(&(rec.case_version, *pos)) {
                return Err(bad(
                    *pos,
                    format!(
                        "case index of {} version {} does not point at this record",
                        rec.case_id, rec.case_version
                    ),
                ));
            }
            if log.event_position(&rec.event_id)? != Some(*pos) {
                return Err(bad(
                    *pos,
                    format!(
                        "event-id index of {} does not point at this record",
                        rec.event_id
                    ),
                ));
            }
            visit(rec, hash)?;
        }
        from = chunk.last().map(|(p, _)| p + 1).unwrap_or(from);
        progress(v.checked(), total);
    }
    Ok(v)
}
