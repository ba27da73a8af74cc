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

/// Checks records one by one, in position order.
#[derive(Default)]
pub struct ChainVerifier {
    /// Per case: last version, its record hash, its position.
    heads: HashMap<String, (u64, [u8; 32], u64)>,
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
        let (prev_version, prev_hash, prev_position) = self
            .heads
            .get(&rec.case_id)
            .copied()
            .unwrap_or((0, ZERO_HASH, 0));
        if rec.case_version != prev_version + 1 {
            return Err(fail(format!(
                "case {} version {} follows version {prev_version}",
                rec.case_id, rec.case_version
            )));
        }
        if rec.prev_hash.as_slice() != prev_hash {
            return Err(fail(format!(
                "case {} version {} does not chain to version {prev_version} at position {prev_position}: one of the two records was altered, or a record was removed or reordered",
                rec.case_id, rec.case_version
            )));
        }
        let hash = record_hash(bytes);
        self.heads
            .insert(rec.case_id.clone(), (rec.case_version, hash, position));
        self.last_position = position;
        Ok((rec, hash))
    }
}
