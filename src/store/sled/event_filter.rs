//! A Bloom filter of the stored event ids (by their 64-bit index hash),
//! kept in memory in front of the event-id index.
//!
//! Why: every proposed event's id is looked up before it is appended (a retry
//! must return the original result), and almost every lookup misses. A miss
//! in the index reads its runs on disk; under load those reads would be most
//! of the writer's time. The filter answers "certainly not stored" without
//! touching the index, and "perhaps" otherwise, which the index then settles.
//!
//! It holds no truth of its own: every id is added with its commit (so it
//! never answers "not stored" for a stored id), and when it fills up it is
//! rebuilt from the index at twice the size — a one-off pause of the
//! writer, at twice the events each time — up to [`MAX_CAPACITY`]; past it
//! the filter stays that size (about 40 MiB) and lets more misses through
//! to the index, so memory does not grow with the log for ever.
//!
//! A start does not rebuild it from the whole index: a copy is saved in the
//! data directory (see [`EventIdFilter::save`]) after each run of the index
//! is durable, and the opening loads it and adds the ids of what came after.
//! A copy that does not check out is ignored, and the filter is built from
//! the index instead: it is never trusted for more than it covers.

use fastbloom::BloomFilter;
use sha2::{Digest, Sha256};
use std::path::Path;
use std::sync::RwLock;

/// Target false-positive rate (a false positive costs one index lookup).
const FALSE_POSITIVE_RATE: f64 = 0.01;

/// Smallest capacity, in ids.
const MIN_CAPACITY: usize = 1 << 20;

/// Largest capacity, in ids: about 40 MiB of bits at the target rate.
pub const MAX_CAPACITY: usize = 1 << 25;

/// The saved copy's first bytes (and its layout's version).
const MAGIC: &[u8; 8] = b"CLIDBLM1";

pub struct EventIdFilter {
    inner: RwLock<Inner>,
}

struct Inner {
    bloom: BloomFilter,
    items: usize,
    capacity: usize,
}

impl Inner {
    fn new(capacity: usize) -> Self {
        let capacity = capacity.clamp(MIN_CAPACITY, MAX_CAPACITY);
        Self {
            bloom: BloomFilter::with_false_pos(FALSE_POSITIVE_RATE).expected_items(capacity),
            items: 0,
            capacity,
        }
    }
}

impl EventIdFilter {
    /// A filter of `ids`, sized for at least twice as many as `expected`.
    pub fn build(expected: usize, ids: impl Iterator<Item = u64>) -> Self {
        let mut inner = Inner::new(expected.saturating_mul(2));
        for id in ids {
            inner.bloom.insert_hash(id);
            inner.items += 1;
        }
        Self {
            inner: RwLock::new(inner),
        }
    }

    /// False only if `id` is certainly not stored.
    pub fn may_contain(&self, id: u64) -> bool {
        self.inner
            .read()
            .expect("event filter lock")
            .bloom
            .contains_hash(id)
    }

    /// Adds ids about to be stored. True when the filter is over its
    /// capacity and should be rebuilt (see [`Self::rebuild`]); never once
    /// it is at [`MAX_CAPACITY`].
    pub fn add(&self, ids: impl Iterator<Item = u64>) -> bool {
        let mut inner = self.inner.write().expect("event filter lock");
        for id in ids {
            inner.bloom.insert_hash(id);
            inner.items += 1;
        }
        inner.items > inner.capacity && inner.capacity < MAX_CAPACITY
    }

    /// Replaces the filter by one built from `ids` (all stored ids).
    pub fn rebuild(&self, ids: impl Iterator<Item = u64>) {
        let items = self.inner.read().expect("event filter lock").items;
        let fresh = Self::build(items, ids);
        *self.inner.write().expect("event filter lock") =
            fresh.inner.into_inner().expect("event filter lock");
    }

    /// Ids the filter holds and how many it was sized for.
    pub fn fill(&self) -> (usize, usize) {
        let inner = self.inner.read().expect("event filter lock");
        (inner.items, inner.capacity)
    }

    /// The bytes of a copy that holds every id stored up to `covered`.
    pub fn snapshot(&self, covered: u64) -> Vec<u8> {
        let inner = self.inner.read().expect("event filter lock");
        let words = inner.bloom.as_slice();
        let mut out = Vec::with_capacity(48 + words.len() * 8 + 32);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&covered.to_be_bytes());
        out.extend_from_slice(&(inner.items as u64).to_be_bytes());
        out.extend_from_slice(&(inner.capacity as u64).to_be_bytes());
        out.extend_from_slice(&inner.bloom.num_hashes().to_be_bytes());
        out.extend_from_slice(&(words.len() as u64).to_be_bytes());
        for w in words {
            out.extend_from_slice(&w.to_le_bytes());
        }
        let sum = Sha256::digest(&out);
        out.extend_from_slice(&sum);
        out
    }

    /// Writes a [`Self::snapshot`] to `path`, through a temporary file and
    /// a rename, so a crash leaves the old copy or the new one. Not synced:
    /// a copy lost or torn is only rebuilt.
    pub fn save(bytes: &[u8], path: &Path) -> std::io::Result<()> {
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, bytes)?;
        std::fs::rename(&tmp, path)
    }

    /// The copy saved at `path` and the position it covers; None when there
    /// is none or it does not check out (why is logged).
    pub fn load(path: &Path) -> Option<(Self, u64)> {
        let bytes = match std::fs::read(path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
            Err(e) => {
                tracing::warn!(file = %path.display(), error = %e, "the event-id filter's copy cannot be read; building it from the index");
                return None;
            }
        };
        let parsed = Self::parse(&bytes);
        if parsed.is_none() {
            tracing::warn!(file = %path.display(), "the event-id filter's copy is damaged; building it from the index");
        }
        parsed
    }

    fn parse(bytes: &[u8]) -> Option<(Self, u64)> {
        let (body, sum) = bytes.split_at_checked(bytes.len().checked_sub(32)?)?;
        if Sha256::digest(body).as_slice() != sum || !body.starts_with(MAGIC) {
            return None;
        }
        let u64_at = |at: usize| Some(u64::from_be_bytes(body.get(at..at + 8)?.try_into().ok()?));
        let covered = u64_at(8)?;
        let items = usize::try_from(u64_at(16)?).ok()?;
        let capacity = usize::try_from(u64_at(24)?).ok()?;
        let hashes = u32::from_be_bytes(body.get(32..36)?.try_into().ok()?);
        let n = usize::try_from(u64_at(36)?).ok()?;
        let words = body.get(44..)?;
        if words.len() != n.checked_mul(8)? || n == 0 || hashes == 0 {
            return None;
        }
        let bits: Vec<u64> = words
            .chunks_exact(8)
            .map(|w| u64::from_le_bytes(w.try_into().expect("8 bytes")))
            .collect();
        let inner = Inner {
            bloom: BloomFilter::from_vec(bits).hashes(hashes),
            items,
            capacity,
        };
        Some((
            Self {
                inner: RwLock::new(inner),
            },
            covered,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_denies_an_added_id_and_rarely_admits_another() {
        let stored: Vec<u64> = (0..10_000u64)
            .map(|i| i.wrapping_mul(0x9e37_79b9_7f4a_7c15))
            .collect();
        let f = EventIdFilter::build(stored.len(), stored[..5_000].iter().copied());
        assert!(!f.add(stored[5_000..].iter().copied()));
        assert!(stored.iter().all(|id| f.may_contain(*id)));
        let false_positives = (10_000..110_000u64)
            .filter(|i| f.may_contain(i.wrapping_mul(0x9e37_79b9_7f4a_7c15)))
            .count();
        assert!(false_positives < 3_000, "{false_positives}");
    }

    #[test]
    fn asks_for_a_rebuild_when_full_and_keeps_every_id_through_it() {
        let f = EventIdFilter::build(0, std::iter::empty());
        let (_, capacity) = f.fill();
        let ids: Vec<u64> = (0..=capacity as u64).collect();
        assert!(f.add(ids.iter().copied()));
        f.rebuild(ids.iter().copied());
        let (items, bigger) = f.fill();
        assert_eq!(items, ids.len());
        assert!(bigger >= 2 * capacity);
        assert!(ids.iter().all(|id| f.may_contain(*id)));
    }

    #[test]
    fn stops_growing_at_its_largest_capacity() {
        let f = EventIdFilter::build(MAX_CAPACITY, std::iter::empty());
        assert_eq!(f.fill().1, MAX_CAPACITY);
        // As if it held as many ids as it was sized for.
        f.inner.write().unwrap().items = MAX_CAPACITY;
        assert!(
            !f.add([1, 2, 3].into_iter()),
            "never rebuilt past its largest capacity"
        );
        assert!(f.may_contain(2));
        let below = EventIdFilter::build(MAX_CAPACITY / 4, std::iter::empty());
        below.inner.write().unwrap().items = MAX_CAPACITY / 2;
        assert!(below.add([1].into_iter()), "rebuilt below it");
    }

    #[test]
    fn a_saved_copy_loads_with_every_id_and_a_damaged_one_does_not() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ids.bloom");
        let ids: Vec<u64> = (0..50_000u64)
            .map(|i| i.wrapping_mul(0x9e37_79b9_7f4a_7c15))
            .collect();
        let f = EventIdFilter::build(ids.len(), ids.iter().copied());
        EventIdFilter::save(&f.snapshot(42), &path).unwrap();
        let (loaded, covered) = EventIdFilter::load(&path).expect("loads");
        assert_eq!(covered, 42);
        assert_eq!(loaded.fill(), f.fill());
        assert!(ids.iter().all(|id| loaded.may_contain(*id)));
        let mut bytes = std::fs::read(&path).unwrap();
        let middle = bytes.len() / 2;
        bytes[middle] ^= 1;
        std::fs::write(&path, &bytes).unwrap();
        assert!(EventIdFilter::load(&path).is_none());
        std::fs::write(&path, &bytes[..100]).unwrap();
        assert!(EventIdFilter::load(&path).is_none());
        assert!(EventIdFilter::load(&dir.path().join("none")).is_none());
    }
}
