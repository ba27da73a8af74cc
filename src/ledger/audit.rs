//! The ledger's audit operations: signed checkpoints of the current tree,
//! inclusion and consistency proofs, and case bundles. All read the stored
//! Merkle hashes; none recomputes the tree.

use super::{Ledger, LedgerError};
use crate::audit::bundle::BUNDLE_FORMAT;
use crate::audit::merkle;
use crate::proto::v1 as pb;
use crate::store::EventLog;

/// A signed checkpoint of the tree at some size.
#[derive(Debug, Clone)]
pub struct SignedCheckpoint {
    pub size: u64,
    pub root: [u8; 32],
    pub signed_at: prost_types::Timestamp,
    pub note: Vec<u8>,
}

fn invalid(field: &str, why: String) -> LedgerError {
    LedgerError::Invalid(vec![crate::domain::FieldViolation::new(field, why)])
}

impl<L: EventLog> Ledger<L> {
    /// Committed tree size (= last committed position).
    pub fn tree_size(&self) -> u64 {
        *self.head_rx.borrow()
    }

    /// Signs (or reuses, if the tree has not grown) a checkpoint of the
    /// current tree. Blocking.
    pub fn checkpoint(&self) -> Result<SignedCheckpoint, LedgerError> {
        let size = self.tree_size();
        let mut cached = self.checkpoint_cache.lock().expect("checkpoint cache");
        if let Some(c) = cached.as_ref().filter(|c| c.size == size) {
            return Ok(c.clone());
        }
        let root = merkle::root(&merkle::StoreReader(self.log.as_ref()), size)?;
        let signed_at = crate::time::now_ts();
        let time = signed_at.to_string();
        let note = self
            .signer
            .sign(size, root, &time)
            .map_err(|e| LedgerError::Storage(format!("cannot sign a checkpoint: {e}")))?;
        let cp = SignedCheckpoint {
            size,
            root,
            signed_at,
            note,
        };
        *cached = Some(cp.clone());
        Ok(cp)
    }

    pub fn origin(&self) -> &str {
        self.signer.origin()
    }

    pub fn public_key(&self) -> &str {
        self.signer.public_key()
    }

    fn size_or_current(&self, field: &str, size: u64) -> Result<u64, LedgerError> {
        let current = self.tree_size();
        match size {
            0 => Ok(current),
            s if s > current => Err(invalid(
                field,
                format!("{s} is beyond the log's {current} records"),
            )),
            s => Ok(s),
        }
    }

    /// Inclusion proof of the record at `position` in the tree of `tree_size`
    /// records (0 = now), with the record's stored bytes. Blocking.
    pub fn prove_inclusion(
        &self,
        position: u64,
        tree_size: u64,
    ) -> Result<pb::InclusionProof, LedgerError> {
        let size = self.size_or_current("tree_size", tree_size)?;
        if position == 0 || position > size {
            return Err(invalid(
                "position",
                format!("{position} is not a position in a tree of {size} records"),
            ));
        }
        let record = self.stored_record(position)?;
        let hashes =
            merkle::prove_inclusion(&merkle::StoreReader(self.log.as_ref()), size, position - 1)?;
        Ok(pb::InclusionProof {
            position,
            tree_size: size,
            record,
            hashes: hashes.into_iter().map(|h| h.to_vec()).collect(),
        })
    }

    /// Consistency proof from `old_size` to `new_size` (0 = now). Blocking.
    pub fn prove_consistency(
        &self,
        old_size: u64,
        new_size: u64,
    ) -> Result<pb::ConsistencyProof, LedgerError> {
        let new = self.size_or_current("new_size", new_size)?;
        if old_size > new {
            return Err(invalid(
                "old_size",
                format!("{old_size} is larger than the new size {new}"),
            ));
        }
        let hashes = if old_size == 0 || old_size == new {
            Vec::new()
        } else {
            merkle::prove_consistency(&merkle::StoreReader(self.log.as_ref()), new, old_size)?
        };
        Ok(pb::ConsistencyProof {
            old_size,
            new_size: new,
            hashes: hashes.into_iter().map(|h| h.to_vec()).collect(),
        })
    }

    /// A self-contained bundle of a case in a fresh checkpoint's tree.
    /// Blocking.
    pub fn export_case(
        &self,
        case_id: &str,
        since_size: u64,
    ) -> Result<pb::CaseBundle, LedgerError> {
        if !self.case_exists(case_id)? {
            return Err(LedgerError::CaseNotFound(case_id.to_string()));
        }
        let cp = self.checkpoint()?;
        if since_size > cp.size {
            return Err(invalid(
                "since_size",
                format!("{since_size} is beyond the log's {} records", cp.size),
            ));
        }
        let mut records = Vec::new();
        for (_, pos) in self.log.case_positions(case_id, 1, false, usize::MAX)? {
            if pos > cp.size {
                break;
            }
            let record = self.stored_record(pos)?;
            let proof =
                merkle::prove_inclusion(&merkle::StoreReader(self.log.as_ref()), cp.size, pos - 1)?;
            records.push(pb::BundleRecord {
                record,
                inclusion_proof: proof.into_iter().map(|h| h.to_vec()).collect(),
            });
        }
        let consistency = if since_size > 0 && since_size < cp.size {
            merkle::prove_consistency(&merkle::StoreReader(self.log.as_ref()), cp.size, since_size)?
        } else {
            Vec::new()
        };
        Ok(pb::CaseBundle {
            format_version: BUNDLE_FORMAT,
            case_id: case_id.to_string(),
            checkpoint: cp.note,
            public_key: self.public_key().to_string(),
            records,
            consistency_from_size: since_size,
            consistency_proof: consistency.into_iter().map(|h| h.to_vec()).collect(),
        })
    }

    /// Full verification of the running store (see `audit::verify`). Blocking.
    pub fn verify(
        &self,
        progress: impl FnMut(u64, u64),
    ) -> Result<crate::audit::verify::VerifyReport, crate::audit::verify::VerifyError> {
        crate::audit::verify::verify_store(self.log.as_ref(), progress)
    }
}
