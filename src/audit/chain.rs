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

/// A case's last record as checked: version, hash (if computed), position.
type Head = (u64, Option<[u8; 32]>, u64);

/// Checks records one by one, in position order.
#[derive(Default)]
pub struct ChainVerifier {
    /// Per case: last version, its record hash (None when it was checked
    /// light), its position.
    heads: HashMap<String, Head>,
    last_position: u64,
}

impl ChainVerifier {
    pub fn new() -> Self {
        Self::default()
    }

    /// Records checked so far (= the last position).
    pub fn checked(&self) -> u64 {
        self.last_position
    }

    /// Cases seen so far.
    pub fn cases(&self) -> usize {
        self.heads.len()
    }

    /// Checks the record stored under `position`, returning it decoded (its
    /// payload a view of `bytes`) and its hash.
    pub fn check(
        &mut self,
        position: u64,
        bytes: &bytes::Bytes,
    ) -> Result<(StoredRecord, [u8; 32]), ChainError> {
        self.check_with(position, bytes, |p| {
            Err(format!("the hash of the record at {p} was not kept"))
        })
    }

    /// As [`Self::check`], for a record whose case's previous record may
    /// have been checked light ([`Self::check_light`]): `hash_at(position)`
    /// reads that record back and hashes it.
    pub fn check_with(
        &mut self,
        position: u64,
        bytes: &bytes::Bytes,
        hash_at: impl FnOnce(u64) -> Result<[u8; 32], String>,
    ) -> Result<(StoredRecord, [u8; 32]), ChainError> {
        let fail = |problem: String| ChainError { position, problem };
        let (rec, (prev_version, prev_hash, prev_position)) = self.sequence(position, bytes)?;
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
        self.heads.insert(
            rec.case_id.clone(),
            (rec.case_version, Some(hash), position),
        );
        self.last_position = position;
        Ok((rec, hash))
    }

    /// The checks that need no hash: the record is where it says, decodes,
    /// and is its case's next version. For records a full verification
    /// covered before (see `verify_store_from`); the chain of the next
    /// record of its case is checked by reading this one back.
    pub fn check_light(
        &mut self,
        position: u64,
        bytes: &bytes::Bytes,
    ) -> Result<StoredRecord, ChainError> {
        let (rec, _) = self.sequence(position, bytes)?;
        self.heads
            .insert(rec.case_id.clone(), (rec.case_version, None, position));
        self.last_position = position;
        Ok(rec)
    }

    /// Decodes the record at `position` and checks its place: gapless, at
    /// the position it names, its case's next version. Returns its case's
    /// previous head.
    fn sequence(
        &self,
        position: u64,
        bytes: &bytes::Bytes,
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
        let head = self
            .heads
            .get(&rec.case_id)
            .copied()
            .unwrap_or((0, Some(ZERO_HASH), 0));
        if rec.case_version != head.0 + 1 {
            return Err(fail(format!(
                "case {} version {} follows version {}",
                rec.case_id, rec.case_version, head.0
            )));
        }
        Ok((rec, head))
    }
}
