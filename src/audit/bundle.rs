//! Case bundles: a case exported for auditors, verifiable offline with only
//! the ledger's pinned public key.
//!
//! A bundle holds the case's records exactly as stored, an inclusion proof
//! of each in one signed checkpoint's tree, that checkpoint, and optionally a
//! consistency proof from a checkpoint the auditor kept. Verification checks
//! the checkpoint's signature against the pinned key (never the key inside
//! the bundle), every inclusion proof against that verified root, the case's
//! hash chain from version 1 with no gap, and — given a kept checkpoint — that
//! the bundle's tree extends it. A server that serves a bundle of a different
//! history than the one the auditor kept cannot pass (immudb's
//! GHSA-672p-m5jq-mrh8 is what happens when clients skip that last step).
//!
//! What a bundle cannot show: events of the case recorded after its last
//! record but hidden by the exporting server. The chain proves nothing was
//! removed or altered before the last exported version.

use super::chain::{record_hash, ZERO_HASH};
use super::checkpoint::{verify_checkpoint, CheckpointError, VerifiedCheckpoint};
use super::merkle::{leaf_hash, verify_consistency, verify_inclusion, ProofError};
use crate::proto::v1::{CaseBundle, StoredRecord};
use prost::Message;

/// Bundle format written by this build.
pub const BUNDLE_FORMAT: u32 = 1;

#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    #[error("bundle format {0} is not supported (this build reads format {BUNDLE_FORMAT})")]
    Format(u32),
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    #[error("the bundle's checkpoint is for log {got:?}, the kept one for {kept:?}")]
    OtherLog { got: String, kept: String },
    #[error("the bundle's checkpoint (size {got}) is older than the kept one (size {kept})")]
    Older { got: u64, kept: u64 },
    #[error("the bundle carries no consistency proof from the kept checkpoint (size {0}); export it with --since")]
    NoConsistencyProof(u64),
    #[error("the bundle's history is not an extension of the kept checkpoint: {0}")]
    Inconsistent(ProofError),
    #[error("the bundle holds no record")]
    Empty,
    #[error("record {index}: {problem}")]
    Record { index: usize, problem: String },
}

/// What a bundle proved.
#[derive(Debug, Clone)]
pub struct BundleReport {
    pub case_id: String,
    pub records: usize,
    pub checkpoint: VerifiedCheckpoint,
    /// The kept checkpoint's size, when its extension was proven.
    pub extends: Option<u64>,
}

/// Verifies a bundle against a pinned public key and, optionally, a
/// checkpoint the auditor kept (already verified).
pub fn verify_bundle(
    bundle: &CaseBundle,
    public_key: &str,
    kept: Option<&VerifiedCheckpoint>,
) -> Result<BundleReport, BundleError> {
    if bundle.format_version != BUNDLE_FORMAT {
        return Err(BundleError::Format(bundle.format_version));
    }
    let cp = verify_checkpoint(&bundle.checkpoint, public_key)?;
    if let Some(k) = kept {
        if k.origin != cp.origin {
            return Err(BundleError::OtherLog {
                got: cp.origin.clone(),
                kept: k.origin.clone(),
            });
        }
        if cp.size < k.size {
            return Err(BundleError::Older {
                got: cp.size,
                kept: k.size,
            });
        }
        if bundle.consistency_from_size != k.size && k.size != cp.size {
            return Err(BundleError::NoConsistencyProof(k.size));
        }
        verify_consistency(
            &bundle.consistency_proof,
            k.size,
            &k.root,
            cp.size,
            &cp.root,
        )
        .map_err(BundleError::Inconsistent)?;
    }
    if bundle.records.is_empty() {
        return Err(BundleError::Empty);
    }
    let mut prev_hash = ZERO_HASH;
    let mut prev_position = 0;
    for (i, r) in bundle.records.iter().enumerate() {
        let fail = |problem: String| BundleError::Record { index: i, problem };
        let rec = StoredRecord::decode(r.record.as_slice())
            .map_err(|e| fail(format!("does not decode: {e}")))?;
        if rec.case_id != bundle.case_id {
            return Err(fail(format!(
                "belongs to case {:?}, not {:?}",
                rec.case_id, bundle.case_id
            )));
        }
        if rec.case_version != i as u64 + 1 {
            return Err(fail(format!(
                "is version {}, expected version {} (a record is missing or out of order)",
                rec.case_version,
                i + 1
            )));
        }
        if rec.prev_hash.as_slice() != prev_hash {
            return Err(fail(format!(
                "version {} does not chain to version {} (altered or substituted)",
                rec.case_version, i
            )));
        }
        if rec.position <= prev_position {
            return Err(fail(format!(
                "position {} does not follow position {prev_position}",
                rec.position
            )));
        }
        if rec.position == 0 || rec.position > cp.size {
            return Err(fail(format!(
                "position {} is not in the checkpoint's tree of {} records",
                rec.position, cp.size
            )));
        }
        let leaf = leaf_hash(&r.record).0;
        verify_inclusion(
            &r.inclusion_proof,
            cp.size,
            &cp.root,
            rec.position - 1,
            &leaf,
        )
        .map_err(|e| fail(format!("position {}: inclusion proof: {e}", rec.position)))?;
        prev_hash = record_hash(&r.record);
        prev_position = rec.position;
    }
    Ok(BundleReport {
        case_id: bundle.case_id.clone(),
        records: bundle.records.len(),
        checkpoint: cp,
        extends: kept.map(|k| k.size),
    })
}
