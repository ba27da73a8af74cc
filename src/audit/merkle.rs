//! The log-wide Merkle tree (RFC 6962 / RFC 9162 hashing: leaf
//! `SHA-256(0x00 ‖ record bytes)`, node `SHA-256(0x01 ‖ left ‖ right)`).
//!
//! It is kept incrementally with the stored-hash scheme of Go's
//! `golang.org/x/mod/sumdb/tlog` (as ported by the `tlog_tiles` crate): when
//! the record at leaf index `n` (= position − 1) is written, the hashes of the
//! leaf and of every subtree it completes are stored — at most `1 + log₂ n`,
//! fewer than two on average — in the same atomic batch as the record. The
//! root of any tree size and every inclusion and consistency proof are then
//! read from O(log n) stored hashes; nothing is recomputed from scratch on a
//! request.

use crate::store::{EventLog, StoreError};
use std::collections::HashMap;
use tlog_tiles::tlog::{self, Hash, HashReader};

pub use tlog_tiles::tlog::{
    record_hash as leaf_hash, stored_hash_count, stored_hash_index, EMPTY_HASH,
};

/// Reads stored hashes from the store.
pub struct StoreReader<'a, L: EventLog + ?Sized>(pub &'a L);

impl<L: EventLog + ?Sized> HashReader for StoreReader<'_, L> {
    fn read_hashes(&self, indexes: &[u64]) -> Result<Vec<Hash>, tlog::Error> {
        self.0
            .tree_hashes(indexes)
            .map(|v| v.into_iter().map(Hash).collect())
            .map_err(|e| tlog::Error::InvalidInput(e.to_string()))
    }
}

/// Reads hashes staged by the writer's current batch first, then the store.
pub struct StagedReader<'a, L: EventLog + ?Sized> {
    pub staged: &'a HashMap<u64, [u8; 32]>,
    pub log: &'a L,
}

impl<L: EventLog + ?Sized> HashReader for StagedReader<'_, L> {
    fn read_hashes(&self, indexes: &[u64]) -> Result<Vec<Hash>, tlog::Error> {
        let mut out = Vec::with_capacity(indexes.len());
        for i in indexes {
            match self.staged.get(i) {
                Some(h) => out.push(Hash(*h)),
                None => out.push(StoreReader(self.log).read_hashes(&[*i])?[0]),
            }
        }
        Ok(out)
    }
}

/// The hashes to store when the record with these bytes becomes leaf `n`,
/// with their stored-hash indexes.
pub fn hashes_for_new_leaf<R: HashReader>(
    n: u64,
    record: &[u8],
    reader: &R,
) -> Result<Vec<(u64, [u8; 32])>, StoreError> {
    let hashes = tlog::stored_hashes(n, record, reader).map_err(|e| {
        StoreError::Corrupt(format!("cannot extend the Merkle tree at leaf {n}: {e}"))
    })?;
    let first = stored_hash_index(0, n);
    Ok(hashes
        .into_iter()
        .enumerate()
        .map(|(i, h)| (first + i as u64, h.0))
        .collect())
}

fn err(e: tlog::Error) -> StoreError {
    StoreError::Corrupt(format!("Merkle tree: {e}"))
}

/// Root hash of the tree of the first `size` records.
pub fn root<L: EventLog + ?Sized>(log: &L, size: u64) -> Result<[u8; 32], StoreError> {
    tlog::tree_hash(size, &StoreReader(log))
        .map(|h| h.0)
        .map_err(err)
}

/// Inclusion proof of leaf `index` in the tree of `size` records.
pub fn prove_inclusion<L: EventLog + ?Sized>(
    log: &L,
    size: u64,
    index: u64,
) -> Result<Vec<[u8; 32]>, StoreError> {
    tlog::prove_record(size, index, &StoreReader(log))
        .map(|p| p.into_iter().map(|h| h.0).collect())
        .map_err(err)
}

/// Consistency proof that the tree of `old_size` records is a prefix of the
/// tree of `new_size` records.
pub fn prove_consistency<L: EventLog + ?Sized>(
    log: &L,
    new_size: u64,
    old_size: u64,
) -> Result<Vec<[u8; 32]>, StoreError> {
    tlog::prove_tree(new_size, old_size, &StoreReader(log))
        .map(|p| p.into_iter().map(|h| h.0).collect())
        .map_err(err)
}

/// Longest proof any tree of up to 2^64 leaves can need.
pub const MAX_PROOF_LEN: usize = 128;

/// Why a proof does not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProofError {
    #[error("malformed proof: {0}")]
    Malformed(String),
    #[error("the proof does not verify")]
    Invalid,
}

fn to_hashes(proof: &[Vec<u8>]) -> Result<Vec<Hash>, ProofError> {
    if proof.len() > MAX_PROOF_LEN {
        return Err(ProofError::Malformed(format!(
            "{} hashes is longer than any proof",
            proof.len()
        )));
    }
    proof
        .iter()
        .map(|h| {
            <[u8; 32]>::try_from(h.as_slice()).map(Hash).map_err(|_| {
                ProofError::Malformed(format!("a proof hash is {} bytes, not 32", h.len()))
            })
        })
        .collect()
}

fn hash32(h: &[u8], what: &str) -> Result<Hash, ProofError> {
    <[u8; 32]>::try_from(h)
        .map(Hash)
        .map_err(|_| ProofError::Malformed(format!("{what} is {} bytes, not 32", h.len())))
}

/// Verifies that leaf `index` with hash `leaf` is in the tree of `size`
/// records with root `root` (RFC 9162 §2.1.3.2).
pub fn verify_inclusion(
    proof: &[Vec<u8>],
    size: u64,
    root: &[u8],
    index: u64,
    leaf: &[u8],
) -> Result<(), ProofError> {
    if index >= size {
        return Err(ProofError::Malformed(format!(
            "leaf index {index} is not below tree size {size}"
        )));
    }
    let p = to_hashes(proof)?;
    tlog::check_record(
        &p,
        size,
        hash32(root, "the root")?,
        index,
        hash32(leaf, "the leaf hash")?,
    )
    .map_err(|_| ProofError::Invalid)
}

/// Verifies that the tree of `old_size` records with root `old_root` is a
/// prefix of the tree of `new_size` records with root `new_root`
/// (RFC 9162 §2.1.4.2).
pub fn verify_consistency(
    proof: &[Vec<u8>],
    old_size: u64,
    old_root: &[u8],
    new_size: u64,
    new_root: &[u8],
) -> Result<(), ProofError> {
    let (old, new) = (
        hash32(old_root, "the old root")?,
        hash32(new_root, "the new root")?,
    );
    if old_size > new_size {
        return Err(ProofError::Malformed(format!(
            "old size {old_size} is larger than new size {new_size}"
        )));
    }
    if old_size == 0 {
        // Every tree extends the empty tree; the proof must be empty.
        return if proof.is_empty() {
            Ok(())
        } else {
            Err(ProofError::Invalid)
        };
    }
    if old_size == new_size {
        return if proof.is_empty() && old == new {
            Ok(())
        } else {
            Err(ProofError::Invalid)
        };
    }
    let p = to_hashes(proof)?;
    tlog::check_tree(&p, new_size, new, old_size, old).map_err(|_| ProofError::Invalid)
}
