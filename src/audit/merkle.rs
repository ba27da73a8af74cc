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

/// Stored hashes kept in memory: for tests and offline tools.
#[derive(Default)]
pub struct MemoryTree {
    pub hashes: HashMap<u64, [u8; 32]>,
    pub size: u64,
}

impl MemoryTree {
    /// Appends a record (its bytes) as the next leaf.
    pub fn push(&mut self, record: &[u8]) {
        let new = hashes_for_new_leaf(self.size, record, self).expect("earlier hashes are present");
        self.hashes.extend(new);
        self.size += 1;
    }
}

impl HashReader for MemoryTree {
    fn read_hashes(&self, indexes: &[u64]) -> Result<Vec<Hash>, tlog::Error> {
        indexes
            .iter()
            .map(|i| {
                self.hashes
                    .get(i)
                    .copied()
                    .map(Hash)
                    .ok_or(tlog::Error::InvalidInput(format!("no hash {i}")))
            })
            .collect()
    }
}

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
    /// The batch's hashes with their stored indexes, contiguous and in order.
    pub staged: &'a [(u64, [u8; 32])],
    pub log: &'a L,
}

impl<L: EventLog + ?Sized> StagedReader<'_, L> {
    fn staged(&self, index: u64) -> Option<[u8; 32]> {
        let first = self.staged.first()?.0;
        let k = usize::try_from(index.checked_sub(first)?).ok()?;
        self.staged
            .get(k)
            .filter(|(i, _)| *i == index)
            .map(|(_, h)| *h)
    }
}

impl<L: EventLog + ?Sized> HashReader for StagedReader<'_, L> {
    fn read_hashes(&self, indexes: &[u64]) -> Result<Vec<Hash>, tlog::Error> {
        let mut out = Vec::with_capacity(indexes.len());
        for i in indexes {
            match self.staged(*i) {
                Some(h) => out.push(Hash(h)),
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

/// Root hash of the tree of the first `size` records (read from the store
/// with [`StoreReader`], or from a [`MemoryTree`]).
pub fn root<R: HashReader>(reader: &R, size: u64) -> Result<[u8; 32], StoreError> {
    tlog::tree_hash(size, reader).map(|h| h.0).map_err(err)
}

/// Inclusion proof of leaf `index` in the tree of `size` records.
pub fn prove_inclusion<R: HashReader>(
    reader: &R,
    size: u64,
    index: u64,
) -> Result<Vec<[u8; 32]>, StoreError> {
    tlog::prove_record(size, index, reader)
        .map(|p| p.into_iter().map(|h| h.0).collect())
        .map_err(err)
}

/// Consistency proof that the tree of `old_size` records is a prefix of the
/// tree of `new_size` records.
pub fn prove_consistency<R: HashReader>(
    reader: &R,
    new_size: u64,
    old_size: u64,
) -> Result<Vec<[u8; 32]>, StoreError> {
    tlog::prove_tree(new_size, old_size, reader)
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

#[cfg(test)]
mod tests {
    //! Known answers for the RFC 6962 test tree of 8 leaves, and the proof
    //! mutation suite, both from transparency-dev/merkle `proof/verify_test.go`
    //! (Apache-2.0): the leaves, the roots of sizes 1-8, and the inclusion and
    //! consistency proofs listed there. Every mutation of a good proof must
    //! fail to verify.
    use super::*;

    /// A mutated input: description, proof, size, root (or size1, root1,
    /// size2, root2 for consistency), leaf index and leaf hash.
    type Probe = (String, Vec<Vec<u8>>, u64, Vec<u8>, u64, Vec<u8>);

    fn h(s: &str) -> Vec<u8> {
        hex::decode(s).unwrap()
    }

    const LEAVES: [&str; 8] = [
        "",
        "00",
        "10",
        "2021",
        "3031",
        "40414243",
        "5051525354555657",
        "606162636465666768696a6b6c6d6e6f",
    ];
    const ROOTS: [&str; 8] = [
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
        "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
        "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
        "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
    ];
    const SOME_HASH: &str = "abacaba000000000000000000000000000000000000000000060061e00123456";

    /// (leaf number counted from 1, tree size, proof)
    fn inclusion_vectors() -> Vec<(u64, u64, Vec<&'static str>)> {
        vec![
            (1, 1, vec![]),
            (
                1,
                8,
                vec![
                    "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
                    "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                    "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
                ],
            ),
            (
                6,
                8,
                vec![
                    "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
                    "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
                    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
                ],
            ),
            (
                3,
                3,
                vec!["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"],
            ),
            (
                2,
                5,
                vec![
                    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
                    "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                    "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
                ],
            ),
        ]
    }

    fn consistency_vectors() -> Vec<(u64, u64, Vec<&'static str>)> {
        vec![
            (1, 1, vec![]),
            (
                1,
                8,
                vec![
                    "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
                    "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                    "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
                ],
            ),
            (
                6,
                8,
                vec![
                    "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
                    "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
                    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
                ],
            ),
            (
                2,
                5,
                vec![
                    "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                    "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
                ],
            ),
            (
                6,
                7,
                vec![
                    "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
                    "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
                    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
                ],
            ),
        ]
    }

    fn tree() -> MemoryTree {
        let mut t = MemoryTree::default();
        for l in LEAVES {
            t.push(&h(l));
        }
        t
    }

    #[test]
    fn roots_of_trees_of_size_1_to_8_match_rfc6962_vectors() {
        let t = tree();
        for (i, want) in ROOTS.iter().enumerate() {
            assert_eq!(
                hex::encode(root(&t, i as u64 + 1).unwrap()),
                *want,
                "size {}",
                i + 1
            );
        }
        assert_eq!(root(&t, 0).unwrap(), EMPTY_HASH.0);
    }

    #[test]
    fn inclusion_proofs_match_vectors_and_every_mutation_fails() {
        let t = tree();
        for (leaf, size, want) in inclusion_vectors() {
            let index = leaf - 1;
            let proof = prove_inclusion(&t, size, index).unwrap();
            let got: Vec<String> = proof.iter().map(hex::encode).collect();
            assert_eq!(got, want, "leaf {leaf} of {size}");
            let proof: Vec<Vec<u8>> = want.iter().map(|x| h(x)).collect();
            let root = h(ROOTS[size as usize - 1]);
            let leaf_h = leaf_hash(&h(LEAVES[index as usize])).0.to_vec();
            verify_inclusion(&proof, size, &root, index, &leaf_h).unwrap();
            for (desc, p, s, r, i, l) in inclusion_mutations(&proof, size, &root, index, &leaf_h) {
                assert!(
                    verify_inclusion(&p, s, &r, i, &l).is_err(),
                    "mutation {desc:?} of leaf {leaf} in {size} verified"
                );
            }
        }
    }

    fn inclusion_mutations(
        proof: &[Vec<u8>],
        size: u64,
        root: &[u8],
        index: u64,
        leaf: &[u8],
    ) -> Vec<Probe> {
        let p = proof.to_vec();
        let (r, l) = (root.to_vec(), leaf.to_vec());
        let mut out = vec![
            (
                "index + 1".to_string(),
                p.clone(),
                size,
                r.clone(),
                index + 1,
                l.clone(),
            ),
            (
                "index ^ 2".into(),
                p.clone(),
                size,
                r.clone(),
                index ^ 2,
                l.clone(),
            ),
            (
                "size * 2".into(),
                p.clone(),
                size * 2,
                r.clone(),
                index,
                l.clone(),
            ),
            (
                "size / 2".into(),
                p.clone(),
                size / 2,
                r.clone(),
                index,
                l.clone(),
            ),
            (
                "wrong leaf".into(),
                p.clone(),
                size,
                r.clone(),
                index,
                b"WrongLeaf".to_vec(),
            ),
            (
                "empty root".into(),
                p.clone(),
                size,
                EMPTY_HASH.0.to_vec(),
                index,
                l.clone(),
            ),
            (
                "random root".into(),
                p.clone(),
                size,
                h(SOME_HASH),
                index,
                l.clone(),
            ),
            (
                "trailing garbage".into(),
                [p.clone(), vec![vec![]]].concat(),
                size,
                r.clone(),
                index,
                l.clone(),
            ),
            (
                "trailing root".into(),
                [p.clone(), vec![r.clone()]].concat(),
                size,
                r.clone(),
                index,
                l.clone(),
            ),
            (
                "preceding garbage".into(),
                [vec![vec![]], p.clone()].concat(),
                size,
                r.clone(),
                index,
                l.clone(),
            ),
            (
                "preceding root".into(),
                [vec![r.clone()], p.clone()].concat(),
                size,
                r.clone(),
                index,
                l.clone(),
            ),
        ];
        if index > 0 {
            out.push((
                "index - 1".into(),
                p.clone(),
                size,
                r.clone(),
                index - 1,
                l.clone(),
            ));
        }
        for i in 0..p.len() {
            let mut q = p.clone();
            q[i][0] ^= 8;
            out.push((
                format!("proof[{i}] bit 3 flipped"),
                q,
                size,
                r.clone(),
                index,
                l.clone(),
            ));
        }
        if !p.is_empty() {
            out.push((
                "removed component".into(),
                p[..p.len() - 1].to_vec(),
                size,
                r.clone(),
                index,
                l.clone(),
            ));
        }
        if p.len() > 1 {
            let q = [vec![p[0].clone(), h(SOME_HASH)], p[1..].to_vec()].concat();
            out.push((
                "inserted component".into(),
                q,
                size,
                r.clone(),
                index,
                l.clone(),
            ));
        }
        out
    }

    #[test]
    fn consistency_proofs_match_vectors_and_every_mutation_fails() {
        let t = tree();
        for (size1, size2, want) in consistency_vectors() {
            let proof = if size1 == size2 {
                vec![]
            } else {
                prove_consistency(&t, size2, size1).unwrap()
            };
            let got: Vec<String> = proof.iter().map(hex::encode).collect();
            assert_eq!(got, want, "{size1} -> {size2}");
            let proof: Vec<Vec<u8>> = want.iter().map(|x| h(x)).collect();
            let (r1, r2) = (h(ROOTS[size1 as usize - 1]), h(ROOTS[size2 as usize - 1]));
            verify_consistency(&proof, size1, &r1, size2, &r2).unwrap();
            if proof.is_empty() {
                continue;
            }
            let p = proof.clone();
            let mut probes: Vec<Probe> = vec![
                (
                    "size1 - 1".into(),
                    p.clone(),
                    size1 - 1,
                    r1.clone(),
                    size2,
                    r2.clone(),
                ),
                (
                    "size1 + 1".into(),
                    p.clone(),
                    size1 + 1,
                    r1.clone(),
                    size2,
                    r2.clone(),
                ),
                (
                    "size1 ^ 2".into(),
                    p.clone(),
                    size1 ^ 2,
                    r1.clone(),
                    size2,
                    r2.clone(),
                ),
                (
                    "size2 * 2".into(),
                    p.clone(),
                    size1,
                    r1.clone(),
                    size2 * 2,
                    r2.clone(),
                ),
                (
                    "size2 / 2".into(),
                    p.clone(),
                    size1,
                    r1.clone(),
                    size2 / 2,
                    r2.clone(),
                ),
                (
                    "wrong root1".into(),
                    p.clone(),
                    size1,
                    b"WrongRoot".to_vec(),
                    size2,
                    r2.clone(),
                ),
                (
                    "wrong root2".into(),
                    p.clone(),
                    size1,
                    r1.clone(),
                    size2,
                    b"WrongRoot".to_vec(),
                ),
                (
                    "swapped roots".into(),
                    p.clone(),
                    size1,
                    r2.clone(),
                    size2,
                    r1.clone(),
                ),
                (
                    "empty proof".into(),
                    vec![],
                    size1,
                    r1.clone(),
                    size2,
                    r2.clone(),
                ),
                (
                    "trailing garbage".into(),
                    [p.clone(), vec![vec![]]].concat(),
                    size1,
                    r1.clone(),
                    size2,
                    r2.clone(),
                ),
                (
                    "trailing root1".into(),
                    [p.clone(), vec![r1.clone()]].concat(),
                    size1,
                    r1.clone(),
                    size2,
                    r2.clone(),
                ),
                (
                    "trailing root2".into(),
                    [p.clone(), vec![r2.clone()]].concat(),
                    size1,
                    r1.clone(),
                    size2,
                    r2.clone(),
                ),
                (
                    "preceding garbage".into(),
                    [vec![vec![]], p.clone()].concat(),
                    size1,
                    r1.clone(),
                    size2,
                    r2.clone(),
                ),
                (
                    "preceding root1".into(),
                    [vec![r1.clone()], p.clone()].concat(),
                    size1,
                    r1.clone(),
                    size2,
                    r2.clone(),
                ),
                (
                    "preceding root2".into(),
                    [vec![r2.clone()], p.clone()].concat(),
                    size1,
                    r1.clone(),
                    size2,
                    r2.clone(),
                ),
                (
                    "preceding proof[0]".into(),
                    [vec![p[0].clone()], p.clone()].concat(),
                    size1,
                    r1.clone(),
                    size2,
                    r2.clone(),
                ),
                (
                    "truncated proof".into(),
                    p[..p.len() - 1].to_vec(),
                    size1,
                    r1.clone(),
                    size2,
                    r2.clone(),
                ),
                (
                    "random root2".into(),
                    p.clone(),
                    size1,
                    r1.clone(),
                    size2,
                    h(SOME_HASH),
                ),
            ];
            for i in 0..p.len() {
                let mut q = p.clone();
                q[i][0] ^= 16;
                probes.push((
                    format!("proof[{i}] bit 4 flipped"),
                    q,
                    size1,
                    r1.clone(),
                    size2,
                    r2.clone(),
                ));
            }
            for (desc, q, s1, a, s2, b) in probes {
                assert!(
                    verify_consistency(&q, s1, &a, s2, &b).is_err(),
                    "mutation {desc:?} of {size1} -> {size2} verified"
                );
            }
        }
    }

    #[test]
    fn trivial_consistency_cases_follow_rfc9162() {
        let (a, b) = (h(ROOTS[0]), h(ROOTS[1]));
        assert!(
            verify_consistency(&[], 0, &a, 1, &b).is_ok(),
            "every tree extends the empty one"
        );
        assert!(verify_consistency(&[], 1, &a, 1, &a).is_ok());
        assert!(
            verify_consistency(&[], 1, &a, 1, &b).is_err(),
            "same size, other root"
        );
        assert!(
            verify_consistency(&[], 2, &a, 1, &b).is_err(),
            "time travel to the past"
        );
        assert!(
            verify_consistency(std::slice::from_ref(&a), 1, &a, 1, &a).is_err(),
            "same size with a proof"
        );
        assert!(
            verify_consistency(&[], 1, &a, 2, &b).is_err(),
            "empty proof for growth"
        );
        assert!(
            verify_inclusion(&[], 0, &a, 0, &a).is_err(),
            "nothing is in an empty tree"
        );
        assert!(
            verify_inclusion(&vec![vec![0; 32]; MAX_PROOF_LEN + 1], 1 << 40, &a, 3, &a).is_err()
        );
    }
}
