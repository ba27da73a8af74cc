//! The durable event-id index: sorted runs of id hashes, written a run at a
//! time, not a sled entry per event.
//!
//! Why: every appended event's id must stay findable forever (a retry,
//! however late and across restarts, returns the original result), and
//! almost every lookup is for an id never seen. One sled entry per event
//! (`E` id → position) cost a random B-tree insert inside every group commit:
//! about a third of the single writer's time under batched appends.
//!
//! The index now works like a small log-structured merge tree:
//!
//! - each event's id is hashed (SipHash-1-3, fixed keys: stable across
//!   builds) to 64 bits; the pair (hash, position) is what is indexed;
//! - pairs of the events since the last run are held in memory (`recent`);
//!   every [`RUN_LEN`] events they are sorted into a *run* and stored in sled
//!   (`I` keys, a few hundred pairs per value) in one atomic batch; runs of
//!   about equal size (within a factor of two: a commit may overshoot the
//!   run length) are merged, a binary counter, up to four times the run
//!   length ([`MERGE_LIMIT`]): a merge pause and the memory it takes stay
//!   bounded, and there is about one run per 256k events;
//! - all runs are kept in memory too (16 bytes per event) and searched by
//!   binary search, behind the Bloom filter ([`super::event_filter`]), so a
//!   new id costs one filter check and no sled access at all;
//! - a hash is only a candidate: the record at a candidate position is read
//!   and its id compared, so a hash collision never confuses two events.
//!
//! Durability follows the log: runs cover positions 1..=n without a gap; the
//! records after the last run are read from the log at open and indexed
//! again (at most a run's worth, plus what a crash lost). Nothing here is
//! ever ahead of the log.

use super::event_filter::EventIdFilter;
use super::keys::{self, trailing_u64};
use crate::store::StoreError;
use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::hash::Hasher;
use std::sync::RwLock;

/// Events per new run.
pub const RUN_LEN: usize = 64 * 1024;

/// Runs stop growing once they hold this many times `run_len` events: a
/// merge rewrites at most this much (with 64k runs, 256k events: 4 MiB, a
/// pause of about 15 ms), and the memory a merge briefly doubles stays
/// small. Beyond it the number of runs grows by one per 256k events, which
/// costs one more binary search per lookup the Bloom filter lets through.
const MERGE_LIMIT: usize = 4;

/// Pairs per stored value (16 bytes each): below sled's blob threshold.
const PAIRS_PER_VALUE: usize = 384;

/// Records read per step when indexing from the log at open.
const CATCH_UP_CHUNK: usize = 4096;

/// The 64-bit hash an event id is indexed by.
pub fn id_hash(event_id: &str) -> u64 {
    let mut h = siphasher::sip::SipHasher13::new_with_keys(
        0x636f_6d70_6c61_696e, // "complain"
        0x742d_6c65_6467_6572, // "t-ledger"
    );
    h.write(event_id.as_bytes());
    h.finish()
}

/// The envelope's event id, decoded without the rest of a stored record
/// (field 4 of `StoredRecord`; the store does not interpret payloads).
#[derive(Clone, PartialEq, prost::Message)]
struct RecordEventId {
    #[prost(string, tag = "4")]
    event_id: String,
}

/// The event id stored in a record's bytes.
pub fn event_id_of(position: u64, bytes: &[u8]) -> Result<String, StoreError> {
    use prost::Message;
    let r = RecordEventId::decode(bytes)
        .map_err(|e| StoreError::Corrupt(format!("record {position} does not decode: {e}")))?;
    Ok(r.event_id)
}

/// Sorted (hash, position) pairs of the events at positions first..=last.
struct Run {
    first: u64,
    last: u64,
    pairs: Vec<(u64, u64)>,
}

impl Run {
    fn positions_of(&self, hash: u64) -> impl Iterator<Item = u64> + '_ {
        let from = self.pairs.partition_point(|(h, _)| *h < hash);
        self.pairs[from..]
            .iter()
            .take_while(move |(h, _)| *h == hash)
            .map(|(_, p)| *p)
    }

    fn value_count(&self) -> usize {
        self.pairs.len().div_ceil(PAIRS_PER_VALUE).max(1)
    }
}

struct Inner {
    runs: Vec<Run>,
    /// Pairs of the events after the last run, in memory only, by hash:
    /// the first position of each hash here, the rare others (a collision
    /// of two ids' 64-bit hashes) in `recent_more`. A hash map, not an
    /// ordered set: every commit inserts its ids at random places, and an
    /// ordered insert cost most of this index's share of the writer; the
    /// pairs are sorted once, into the run.
    recent: HashMap<u64, u64>,
    recent_more: Vec<(u64, u64)>,
    /// Last position indexed (in a run or in `recent`).
    through: u64,
}

impl Inner {
    /// The pairs of `recent`, sorted as a run keeps them.
    fn recent_pairs(&self) -> Vec<(u64, u64)> {
        let mut pairs: Vec<(u64, u64)> = self
            .recent
            .iter()
            .map(|(h, p)| (*h, *p))
            .chain(self.recent_more.iter().copied())
            .collect();
        pairs.sort_unstable();
        pairs
    }
}

pub(super) struct EventIndex {
    /// Events per new run ([`RUN_LEN`] unless configured).
    run_len: usize,
    filter: EventIdFilter,
    inner: RwLock<Inner>,
    #[cfg(test)]
    fail_next_seal: std::sync::atomic::AtomicBool,
}

impl EventIndex {
    /// Loads the stored runs of a log whose last record is at `head` and
    /// indexes the records after them (`read_range` reads the log).
    pub fn open(
        db: &sled::Db,
        head: u64,
        run_len: usize,
        read_range: impl Fn(u64, usize) -> Result<Vec<(u64, bytes::Bytes)>, StoreError>,
    ) -> Result<Self, StoreError> {
        let runs = load_runs(db)?;
        let covered = runs.last().map_or(0, |r| r.last);
        if covered > head {
            return Err(StoreError::Corrupt(format!(
                "the event-id index covers positions up to {covered}, past the last record ({head}): records were removed from the end"
            )));
        }
        let filter = EventIdFilter::build(
            head as usize,
            runs.iter().flat_map(|r| r.pairs.iter().map(|(h, _)| *h)),
        );
        let index = Self {
            run_len: run_len.max(1),
            filter,
            #[cfg(test)]
            fail_next_seal: Default::default(),
            inner: RwLock::new(Inner {
                runs,
                recent: HashMap::new(),
                recent_more: Vec::new(),
                through: covered,
            }),
        };
        if covered < head {
            tracing::info!(
                from = covered + 1,
                to = head,
                "indexing event ids from the log"
            );
        }
        let mut next = covered + 1;
        while next <= head {
            let chunk = read_range(next, CATCH_UP_CHUNK)?;
            let Some(last) = chunk.last().map(|(p, _)| *p) else {
                break;
            };
            let mut ids = Vec::with_capacity(chunk.len());
            let mut unreadable = None;
            for (pos, bytes) in &chunk {
                match event_id_of(*pos, bytes) {
                    Ok(id) => ids.push((id_hash(&id), *pos)),
                    Err(e) => {
                        unreadable = Some(e);
                        break;
                    }
                }
            }
            index.add(&ids);
            index.seal_runs(db)?;
            if let Some(e) = unreadable {
                // Not fatal here: verification names the record, with more
                // to say, and a log that does not verify is not served.
                tracing::warn!(error = %e, "event ids not indexed past the unreadable record");
                break;
            }
            next = last + 1;
        }
        Ok(index)
    }

    /// Adds the pairs of records just applied to sled (positions after
    /// every indexed one): into the filter and `recent`. True when the filter is
    /// full and should be rebuilt ([`Self::rebuild_filter`]).
    pub fn add(&self, pairs: &[(u64, u64)]) -> bool {
        let full = self.filter.add(pairs.iter().map(|(h, _)| *h));
        let mut guard = self.write();
        let inner = &mut *guard;
        for &(h, p) in pairs {
            // A set, as the runs are: a pair given again is kept once.
            match inner.recent.entry(h) {
                Entry::Vacant(v) => {
                    v.insert(p);
                }
                Entry::Occupied(o) if *o.get() == p => {}
                Entry::Occupied(_) if inner.recent_more.contains(&(h, p)) => {}
                Entry::Occupied(_) => inner.recent_more.push((h, p)),
            }
            inner.through = inner.through.max(p);
        }
        full
    }

    /// Stores a run once `recent` holds `run_len` events, merging runs of
    /// equal size; not durable until the next flush (the log above the last
    /// durable run is indexed again at open).
    pub fn seal_runs(&self, db: &sled::Db) -> Result<(), StoreError> {
        let mut inner = self.write();
        if inner.recent.len() + inner.recent_more.len() < self.run_len {
            return Ok(());
        }
        let started = std::time::Instant::now();
        // Memory changes only once the batch is applied: a failed write
        // leaves every id findable, and the next commit tries again.
        let first = inner.runs.last().map_or(1, |r| r.last + 1);
        let mut run = Run {
            first,
            last: inner.through,
            pairs: inner.recent_pairs(),
        };
        let mut batch = sled::Batch::default();
        let mut keep = inner.runs.len();
        while let Some(prev) = keep.checked_sub(1).map(|k| &inner.runs[k]).filter(|p| {
            p.pairs.len() < 2 * run.pairs.len() && p.pairs.len() < MERGE_LIMIT * self.run_len
        }) {
            for i in 0..prev.value_count() {
                batch.remove(&keys::id_run_key(prev.first, prev.last, i as u32)[..]);
            }
            run = merge(prev, run);
            keep -= 1;
        }
        for (i, chunk) in run.pairs.chunks(PAIRS_PER_VALUE).enumerate() {
            let mut value = Vec::with_capacity(chunk.len() * 16);
            for (h, p) in chunk {
                value.extend_from_slice(&h.to_be_bytes());
                value.extend_from_slice(&p.to_be_bytes());
            }
            batch.insert(&keys::id_run_key(run.first, run.last, i as u32)[..], value);
        }
        #[cfg(test)]
        if self
            .fail_next_seal
            .swap(false, std::sync::atomic::Ordering::SeqCst)
        {
            return Err(StoreError::Io(std::io::Error::other("injected failure")));
        }
        db.apply_batch(batch)?;
        inner.runs.truncate(keep);
        inner.recent.clear();
        inner.recent_more.clear();
        tracing::debug!(
            first = run.first,
            last = run.last,
            runs = inner.runs.len() + 1,
            ms = started.elapsed().as_millis() as u64,
            "event-id index run stored"
        );
        inner.runs.push(run);
        Ok(())
    }

    /// Makes the next [`Self::seal_runs`] fail before it writes, for tests.
    #[cfg(test)]
    pub fn fail_next_seal(&self) {
        self.fail_next_seal
            .store(true, std::sync::atomic::Ordering::SeqCst);
    }

    /// Positions whose event id may be `event_id` (hash equal), oldest first.
    pub fn candidates(&self, event_id: &str) -> Vec<u64> {
        let hash = id_hash(event_id);
        if !self.filter.may_contain(hash) {
            return Vec::new();
        }
        let inner = self.read();
        let mut out: Vec<u64> = inner
            .runs
            .iter()
            .flat_map(|r| r.positions_of(hash))
            .collect();
        if let Some(p) = inner.recent.get(&hash) {
            out.push(*p);
            // Positions are added in order: the others of a hash are later.
            out.extend(
                inner
                    .recent_more
                    .iter()
                    .filter(|(h, _)| *h == hash)
                    .map(|(_, p)| *p),
            );
        }
        out
    }

    /// Rebuilds the filter from the index, at twice the size.
    pub fn rebuild_filter(&self) {
        let inner = self.read();
        let hashes = inner
            .runs
            .iter()
            .flat_map(|r| r.pairs.iter().map(|(h, _)| *h))
            .chain(inner.recent.keys().copied())
            .chain(inner.recent_more.iter().map(|(h, _)| *h));
        self.filter.rebuild(hashes);
    }

    /// Events in stored runs and in `recent`, for tests.
    #[cfg(test)]
    pub fn counts(&self) -> (usize, usize, usize) {
        let inner = self.read();
        (
            inner.runs.len(),
            inner.runs.iter().map(|r| r.pairs.len()).sum(),
            inner.recent.len() + inner.recent_more.len(),
        )
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Inner> {
        self.inner.read().expect("event index lock")
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Inner> {
        self.inner.write().expect("event index lock")
    }
}

fn merge(older: &Run, newer: Run) -> Run {
    let mut pairs = Vec::with_capacity(older.pairs.len() + newer.pairs.len());
    let (mut a, mut b) = (
        older.pairs.iter().copied().peekable(),
        newer.pairs.into_iter().peekable(),
    );
    loop {
        let next = match (a.peek(), b.peek()) {
            (Some(x), Some(y)) if x <= y => a.next(),
            (Some(_), Some(_)) => b.next(),
            (Some(_), None) => a.next(),
            (None, Some(_)) => b.next(),
            (None, None) => break,
        };
        pairs.extend(next);
    }
    Run {
        first: older.first,
        last: newer.last,
        pairs,
    }
}

/// The stored runs, which must cover positions 1..=n without a gap.
fn load_runs(db: &sled::Db) -> Result<Vec<Run>, StoreError> {
    let bad = |why: String| StoreError::Corrupt(format!("event-id index: {why}"));
    let mut runs: Vec<Run> = Vec::new();
    let mut expected_value = 0u32;
    for item in db.scan_prefix([keys::ID_RUN]) {
        let (k, v) = item?;
        let (first, last, i) =
            keys::parse_id_run_key(&k).ok_or_else(|| bad("a malformed run key".into()))?;
        if v.len() % 16 != 0 {
            return Err(bad(format!("run {first}-{last} has a torn value")));
        }
        let same = runs
            .last()
            .is_some_and(|r| r.first == first && r.last == last);
        if !same {
            let starts = runs.last().map_or(1, |r| r.last + 1);
            if first != starts || last < first || i != 0 {
                return Err(bad(format!(
                    "run {first}-{last} does not follow the runs before it (expected one from {starts})"
                )));
            }
            runs.push(Run {
                first,
                last,
                pairs: Vec::new(),
            });
            expected_value = 0;
        } else if i != expected_value {
            return Err(bad(format!(
                "run {first}-{last} lacks value {expected_value}"
            )));
        }
        expected_value += 1;
        let run = runs.last_mut().expect("a run");
        for pair in v.chunks_exact(16) {
            let h = u64::from_be_bytes(pair[..8].try_into().expect("8 bytes"));
            let p = trailing_u64(pair).expect("8 bytes");
            run.pairs.push((h, p));
        }
    }
    for r in &runs {
        let sorted = r.pairs.windows(2).all(|w| w[0] < w[1]);
        if !sorted || r.pairs.len() as u64 != r.last - r.first + 1 {
            return Err(bad(format!(
                "run {}-{} does not hold one sorted entry per position",
                r.first, r.last
            )));
        }
    }
    Ok(runs)
}
