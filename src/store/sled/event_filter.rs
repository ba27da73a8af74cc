//! A Bloom filter per run of the event-id index, over the run's id hashes,
//! kept in memory in front of the run on disk.
//!
//! Why: every proposed event's id is looked up before it is appended (a retry
//! must return the original result), and almost every lookup misses. The
//! runs stay on disk, so a lookup without a filter would read every run;
//! with one per run it reads only the runs whose filter says "perhaps" —
//! none for almost every new id, the one that holds it for a stored id.
//!
//! A run's filter is written with the run, in the same batch, and never
//! changes (a merge writes the merged run's own): a start loads the
//! filters, it does not build them. A stored filter is checksummed, so one
//! damaged on disk is found and built again from its run, never trusted to
//! say "not stored" for a stored id. About 1.2 bytes per event.

use fastbloom::BloomFilter;
use sha2::{Digest, Sha256};

/// Target false-positive rate (a false positive costs one read of a run).
const FALSE_POSITIVE_RATE: f64 = 0.01;

/// Bytes of the checksum that ends a stored filter.
const SUM: usize = 16;

pub struct RunFilter {
    bloom: BloomFilter,
}

impl RunFilter {
    /// The filter of a run holding `hashes`.
    pub fn build(hashes: &[u64]) -> Self {
        let mut f = Self::empty(hashes.len());
        for h in hashes {
            f.insert(*h);
        }
        f
    }

    /// A filter for a run of `expected` hashes, filled by [`Self::insert`].
    pub fn empty(expected: usize) -> Self {
        Self {
            bloom: BloomFilter::with_false_pos(FALSE_POSITIVE_RATE).expected_items(expected.max(1)),
        }
    }

    pub fn insert(&mut self, h: u64) {
        self.bloom.insert_hash(h);
    }

    /// False only if no id of the run has hash `h`.
    pub fn may_contain(&self, h: u64) -> bool {
        self.bloom.contains_hash(h)
    }

    /// Bytes it holds in memory.
    #[cfg(test)]
    pub fn memory(&self) -> usize {
        self.bloom.as_slice().len() * 8
    }

    /// The stored form: the number of hashes (u32 BE), the bits (u64 LE
    /// each), and a checksum of both.
    pub fn encode(&self) -> Vec<u8> {
        let words = self.bloom.as_slice();
        let mut out = Vec::with_capacity(4 + words.len() * 8 + SUM);
        out.extend_from_slice(&self.bloom.num_hashes().to_be_bytes());
        for w in words {
            out.extend_from_slice(&w.to_le_bytes());
        }
        let sum = Sha256::digest(&out);
        out.extend_from_slice(&sum[..SUM]);
        out
    }

    /// A stored filter; None when it does not check out.
    pub fn decode(bytes: &[u8]) -> Option<Self> {
        let (body, sum) = bytes.split_at_checked(bytes.len().checked_sub(SUM)?)?;
        if Sha256::digest(body)[..SUM] != *sum || body.len() < 12 || (body.len() - 4) % 8 != 0 {
            return None;
        }
        let hashes = u32::from_be_bytes(body[..4].try_into().ok()?);
        if hashes == 0 {
            return None;
        }
        let bits: Vec<u64> = body[4..]
            .chunks_exact(8)
            .map(|w| u64::from_le_bytes(w.try_into().expect("8 bytes")))
            .collect();
        Some(Self {
            bloom: BloomFilter::from_vec(bits).hashes(hashes),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(from: u64, to: u64) -> Vec<u64> {
        (from..to)
            .map(|i| i.wrapping_mul(0x9e37_79b9_7f4a_7c15))
            .collect()
    }

    #[test]
    fn never_denies_an_id_of_its_run_and_rarely_admits_another() {
        let stored = ids(0, 10_000);
        let f = RunFilter::build(&stored);
        assert!(stored.iter().all(|id| f.may_contain(*id)));
        let false_positives = ids(10_000, 110_000)
            .into_iter()
            .filter(|i| f.may_contain(*i))
            .count();
        assert!(false_positives < 3_000, "{false_positives}");
        assert!(f.memory() < 10_000 * 2, "{} bytes", f.memory());
    }

    #[test]
    fn a_stored_filter_decodes_to_the_same_and_a_damaged_one_not_at_all() {
        let stored = ids(0, 5_000);
        let f = RunFilter::build(&stored);
        let bytes = f.encode();
        let back = RunFilter::decode(&bytes).expect("decodes");
        assert_eq!(back.bloom.as_slice(), f.bloom.as_slice());
        assert!(stored.iter().all(|id| back.may_contain(*id)));
        for at in [0, 3, bytes.len() / 2, bytes.len() - 1] {
            let mut damaged = bytes.clone();
            damaged[at] ^= 0x10;
            assert!(RunFilter::decode(&damaged).is_none(), "flipped at {at}");
        }
        assert!(RunFilter::decode(&bytes[..bytes.len() - 8]).is_none());
        assert!(RunFilter::decode(&[]).is_none());
    }
}
