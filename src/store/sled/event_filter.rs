//! A Bloom filter of the stored event ids (by their 64-bit index hash),
//! kept in memory in front of the event-id index.
//!
//! Why: every proposed event's id is looked up before it is appended (a retry
//! must return the original result), and almost every lookup misses. A miss
//! in sled still walks the tree; under load those walks were a twentieth of
//! the writer's time. The filter answers "certainly not stored" without
//! touching the index, and "perhaps" otherwise, which the index then settles.
//!
//! It holds no truth of its own: it is built from the index when the store
//! opens, every id is added with its commit (so it never answers "not
//! stored" for a stored id), and when it fills up it is rebuilt from the
//! index at twice the size — a one-off pause of the writer, at twice the
//! events each time. About 1.2 bytes per event.

use fastbloom::BloomFilter;
use std::sync::RwLock;

/// Target false-positive rate (a false positive costs one index lookup).
const FALSE_POSITIVE_RATE: f64 = 0.01;

/// Smallest capacity, in ids.
const MIN_CAPACITY: usize = 1 << 20;

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
        let capacity = capacity.max(MIN_CAPACITY);
        Self {
            bloom: BloomFilter::with_false_pos(FALSE_POSITIVE_RATE).expected_items(capacity),
            items: 0,
            capacity,
        }
    }
}

impl EventIdFilter {
    /// A filter of `ids`, sized for at least twice as many.
    pub fn build(expected: usize, ids: impl Iterator<Item = u64>) -> Self {
        let mut inner = Inner::new(expected.saturating_mul(2));
        for id in ids {
            inner.bloom.insert(&id);
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
            .contains(&id)
    }

    /// Adds ids about to be stored. True when the filter is over its
    /// capacity and should be rebuilt (see [`Self::rebuild`]).
    pub fn add(&self, ids: impl Iterator<Item = u64>) -> bool {
        let mut inner = self.inner.write().expect("event filter lock");
        for id in ids {
            inner.bloom.insert(&id);
            inner.items += 1;
        }
        inner.items > inner.capacity
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
}
