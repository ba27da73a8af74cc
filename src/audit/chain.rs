//! The per-case hash chain, and the one walk over the log that checks it.
//!
//! Used at every start (the server refuses to run on a log whose chain is
//! broken) and by offline verification of a stopped server's data directory.

use crate::proto::v1::StoredRecord;
use prost::Message;
use sha2::{Digest, Sha256};
use std::collections::HashMap;

/// `prev_hash` of a case's first record.
pub const ZERO_HASH: [u8; 32] = [0; 32];

/// SHA-256 of a record's stored bytes.
pub fn record_hash(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

/// The first place where the log is not what it claims to be.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("position {position}: {problem}")]
pub struct ChainError {
    pub position: u64,
    pub problem: String,
}

/// A case's last record as checked: version, hash (None when it was not
/// computed: the record was found through the case index), position.
type Head = (u64, Option<[u8; 32]>, u64);

/// Case heads kept while checking; beyond them they are dropped and found
/// again through the case index (see [`ChainVerifier::check_with`]), so a
/// walk over a log of millions of cases holds a bounded map, not one entry
/// per case.
const HEADS_KEPT: usize = 1 << 16;

/// Checks records one by one, in position order.
#[derive(Default)]
pub struct ChainVerifier {
    /// The most recent cases' last records.
    heads: HashMap<String, Head>,
    last_position: u64,
    /// Records checked that open their case.
    cases: usize,
}

impl ChainVerifier {
    pub fn new() -> Self {
        Self::default()
    }

    /// A verifier that starts after `position`: the records up to it were
    /// verified before, and their cases' heads are found through the case
    /// index when a later record needs them.
    pub fn after(position: u64) -> Self {
        Self {
            last_position: position,
            ..Self::default()
        }
    }

    /// The last position checked.
    pub fn checked(&self) -> u64 {
        self.last_position
    }

    /// Records checked that open a case: the cases of a walk from position 1.
    pub fn cases(&self) -> usize {
        self.cases
    }

    /// Checks the record stored under `position`, returning it decoded (its
    /// payload a view of `bytes`) and its hash; every record of its case
    /// must have come before it in this verifier.
    pub fn check(
        &mut self,
        position: u64,
        bytes: &bytes::Bytes,
    ) -> Result<(StoredRecord, [u8; 32]), ChainError> {
        self.check_with(
            position,
            bytes,
            |p| Err(format!("the hash of the record at {p} was not kept")),
            |_, _| Ok(None),
        )
    }

    /// As [`Self::check`], for a record whose case's previous record this
    /// verifier may not hold: `version_at(case, version)` finds it through
    /// the case index, and `hash_at(position)` reads it back and hashes it.
    pub fn check_with(
        &mut self,
        position: u64,
        bytes: &bytes::Bytes,
        hash_at: impl FnOnce(u64) -> Result<[u8; 32], String>,
        version_at: impl FnOnce(&str, u64) -> Result<Option<u64>, String>,
    ) -> Result<(StoredRecord, [u8; 32]), ChainError> {
        let fail = |problem: String| ChainError { position, problem };
        let (rec, (prev_version, prev_hash, prev_position)) =
            self.sequence(position, bytes, version_at)?;
        let prev_hash = match prev_hash {
            Some(h) => h,
            None => hash_at(prev_position).map_err(|e| {
                fail(format!(
                    "case {} version {prev_version} at position {prev_position} cannot be read back: {e}",
                    rec.case_id
                ))
            })?,
        };
        if rec.prev_hash.as_slice() != prev_hash {
            return Err(fail(format!(
                "case {} version {} does not chain to version {prev_version} at position {prev_position}: one of the two records was altered, or a record was removed or reordered",
                rec.case_id, rec.case_version
            )));
        }
        let hash = record_hash(bytes);
        if self.heads.len() >= HEADS_KEPT && !self.heads.contains_key(&rec.case_id) {
            self.heads.clear();
        }
        self.heads.insert(
            rec.case_id.clone(),
            (rec.case_version, Some(hash), position),
        );
        self.last_position = position;
        if rec.case_version == 1 {
            self.cases += 1;
        }
        Ok((rec, hash))
    }

    /// Decodes the record at `position` and checks its place: gapless, at
    /// the position it names, its case's next version. Returns its case's
    /// previous head.
    fn sequence(
        &self,
        position: u64,
        bytes: &bytes::Bytes,
        version_at: impl FnOnce(&str, u64) -> Result<Option<u64>, String>,
    ) -> Result<(StoredRecord, Head), ChainError> {
        let fail = |problem: String| ChainError { position, problem };
        let expected = self.last_position + 1;
        if position != expected {
            return Err(ChainError {
                position: expected,
                problem: format!("record missing: the next stored record is at {position}"),
            });
        }
        let rec = StoredRecord::decode(bytes.clone())
            .map_err(|e| fail(format!("record does not decode: {e}")))?;
        if rec.position != position {
            return Err(fail(format!(
                "record says it is at position {}, stored at {position}",
                rec.position
            )));
        }
        let head = match self.heads.get(&rec.case_id) {
            Some(h) => *h,
            None if rec.case_version > 1 => {
                let prev = rec.case_version - 1;
                match version_at(&rec.case_id, prev).map_err(&fail)? {
                    Some(at) if at < position => (prev, None, at),
                    _ => {
                        return Err(fail(format!(
                            "case {} version {} has no version {prev} before it",
                            rec.case_id, rec.case_version
                        )))
                    }
                }
            }
            None => (0, Some(ZERO_HASH), 0),
        };
        if rec.case_version != head.0 + 1 {
            return Err(fail(format!(
                "case {} version {} follows version {}",
                rec.case_id, rec.case_version, head.0
            )));
        }
        Ok((rec, head))
    }
}
