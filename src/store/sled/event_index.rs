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
//!   in one atomic batch: a few hundred pairs per value (`J` keys that name
//!   the run and the first hash of the value), and the run's entry in the
//!   directory of runs (`H`); runs of about equal size (within a factor of
//!   two: a commit may overshoot the run length) are merged, a binary
//!   counter, up to four times the run length ([`MERGE_LIMIT`]): the
//!   writer's merge pause and the memory it takes stay bounded; full runs
//!   are merged further, four at a time, by a thread of their own
//!   ([`super::event_index_tiers`]), so the runs a lookup checks grow with
//!   the log by tiers, not by one per 256k events;
//! - runs stay on disk: finding a hash in a run is one ordered sled lookup
//!   for the last value starting at or below it (the key carries the
//!   value's first hash), so memory holds the directory of runs — a few
//!   dozen entries per ten million events — not the pairs, and a start
//!   reads that directory, not the index;
//! - each run has a Bloom filter ([`super::event_filter`]), written with it
//!   and loaded at start (about 1.2 bytes per event in memory): a new id
//!   costs a filter check per run and, almost always, no sled access at all;
//!   a stored one the read of the run that holds it;
//! - a hash is only a candidate: the record at a candidate position is read
//!   and its id compared, so a hash collision never confuses two events.
//!
//! Stores written before runs stayed on disk keep their runs under `I`
//! keys (by value number, without the first hash); the first open rewrites
//! them in this layout, once.
//!
//! Durability follows the log: runs cover positions 1..=n without a gap; the
//! records after the last run are read from the log at open and indexed
//! again (at most a run's worth, plus what a crash lost). Nothing here is
//! ever ahead of the log.

use super::event_filter::RunFilter;
use super::event_index_tiers::Tiers;
use super::event_runs::{
    bad, insert_value, pairs_of, value_keys, write_filter, Inner, Run, PAIRS_PER_VALUE,
};
use super::keys;
use crate::store::StoreError;
use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::hash::Hasher;
use std::sync::{Arc, RwLock};

/// Events per new run.
pub const RUN_LEN: usize = 64 * 1024;

/// Runs stop growing once they hold this many times `run_len` events: a
/// merge rewrites at most this much (with 64k runs, 256k events: 4 MiB, a
/// pause of about 15 ms), and the memory a merge briefly doubles stays
/// small. Full runs are merged further in the background
/// ([`super::event_index_tiers`]).
const MERGE_LIMIT: usize = 4;

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

/// Every pair of a stored run, in order; checked whole: sorted, one per
/// position.
fn read_run(db: &sled::Db, run: Run) -> Result<Vec<(u64, u64)>, StoreError> {
    let mut pairs = Vec::with_capacity(run.len());
    for item in db.scan_prefix(keys::id_chunk_prefix(run.first, run.last)) {
        let (_, v) = item?;
        pairs.extend(pairs_of(run, &v)?);
    }
    let sorted = pairs.windows(2).all(|w| w[0] < w[1]);
    if !sorted || pairs.len() != run.len() {
        return Err(bad(format!(
            "run {}-{} does not hold one sorted entry per position",
            run.first, run.last
        )));
    }
    Ok(pairs)
}

/// The positions of `hash` in a stored run: in the last value whose first
/// hash is below it (its end may hold it) and in every value starting with
/// it (a hash that many events share spans values).
fn positions_in(db: &sled::Db, run: Run, hash: u64) -> Result<Vec<u64>, StoreError> {
    let prefix = keys::id_chunk_prefix(run.first, run.last);
    let upper = keys::id_chunk_key(run.first, run.last, hash, u32::MAX);
    let mut out = Vec::new();
    for item in db.range(prefix.to_vec()..=upper.to_vec()).rev() {
        let (k, v) = item?;
        let first_hash = keys::parse_id_chunk_key(&k)
            .ok_or_else(|| bad("a malformed value key".into()))?
            .2;
        out.extend(
            pairs_of(run, &v)?
                .filter(|(h, _)| *h == hash)
                .map(|(_, p)| p),
        );
        if first_hash < hash {
            break;
        }
    }
    out.sort_unstable();
    Ok(out)
}

/// Adds the writes of a run of `pairs` (sorted) to `batch`: its values,
/// its filter and its directory entry. Returns the filter.
fn write_run(batch: &mut sled::Batch, run: Run, pairs: &[(u64, u64)]) -> RunFilter {
    for (i, chunk) in pairs.chunks(PAIRS_PER_VALUE).enumerate() {
        insert_value(batch, run, i as u32, chunk);
    }
    let hashes: Vec<u64> = pairs.iter().map(|(h, _)| *h).collect();
    let filter = RunFilter::build(&hashes);
    write_filter(batch, run, &filter);
    batch.insert(&keys::id_run_entry(run.first, run.last)[..], &[][..]);
    filter
}

/// The stored filter of a run; None when it is missing or does not check
/// out.
fn read_filter(db: &sled::Db, run: Run) -> Result<Option<RunFilter>, StoreError> {
    let mut bytes = Vec::new();
    for item in db.scan_prefix(keys::id_filter_prefix(run.first, run.last)) {
        bytes.extend_from_slice(&item?.1);
    }
    Ok(RunFilter::decode(&bytes))
}

/// Adds the removal of a run's filter to `batch`.
fn remove_filter(db: &sled::Db, batch: &mut sled::Batch, run: Run) -> Result<(), StoreError> {
    for k in db
        .scan_prefix(keys::id_filter_prefix(run.first, run.last))
        .keys()
    {
        batch.remove(k?);
    }
    Ok(())
}

/// Adds the removal of a stored run to `batch`.
fn remove_run(db: &sled::Db, batch: &mut sled::Batch, run: Run) -> Result<(), StoreError> {
    for k in value_keys(db, run) {
        batch.remove(k?);
    }
    batch.remove(&keys::id_run_entry(run.first, run.last)[..]);
    Ok(())
}

pub(super) struct EventIndex {
    /// Events per new run ([`RUN_LEN`] unless configured).
    run_len: usize,
    db: sled::Db,
    inner: Arc<RwLock<Inner>>,
    /// The merges of full runs (`store::event_index_tiers`); None when
    /// not asked for.
    tiers: Option<Tiers>,
    #[cfg(test)]
    fail_next_seal: std::sync::atomic::AtomicBool,
}

impl EventIndex {
    /// Loads the directory of stored runs of a log whose last record is at
    /// `head`, with their filters, and indexes the records after them
    /// (`read_range` reads the log).
    pub fn open(
        db: &sled::Db,
        head: u64,
        run_len: usize,
        tier_merges: bool,
        read_range: impl Fn(u64, usize) -> Result<Vec<(u64, bytes::Bytes)>, StoreError>,
    ) -> Result<Self, StoreError> {
        migrate_runs(db)?;
        let runs = load_runs(db)?;
        let covered = runs.last().map_or(0, |r| r.last);
        if covered > head {
            return Err(StoreError::Corrupt(format!(
                "the event-id index covers positions up to {covered}, past the last record ({head}): records were removed from the end"
            )));
        }
        let runs = load_filters(db, runs)?;
        let mut index = Self {
            run_len: run_len.max(1),
            db: db.clone(),
            tiers: None,
            #[cfg(test)]
            fail_next_seal: Default::default(),
            inner: Arc::new(RwLock::new(Inner {
                runs,
                recent: HashMap::new(),
                recent_more: Vec::new(),
                through: covered,
            })),
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
            index.seal_runs()?;
            if let Some(e) = unreadable {
                // Not fatal here: verification names the record, with more
                // to say, and a log that does not verify is not served.
                tracing::warn!(error = %e, "event ids not indexed past the unreadable record");
                break;
            }
            next = last + 1;
        }
        if tier_merges {
            index.tiers = Some(Tiers::start(
                db,
                index.inner.clone(),
                MERGE_LIMIT * index.run_len,
            ));
        }
        Ok(index)
    }

    /// Adds the pairs of records just applied to sled (positions after
    /// every indexed one) to `recent`.
    pub fn add(&self, pairs: &[(u64, u64)]) {
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
    }

    /// Stores a run once `recent` holds `run_len` events, merging runs of
    /// equal size; not durable until the next flush (the log above the last
    /// durable run is indexed again at open).
    pub fn seal_runs(&self) -> Result<(), StoreError> {
        let mut inner = self.write();
        if inner.recent.len() + inner.recent_more.len() < self.run_len {
            return Ok(());
        }
        let started = std::time::Instant::now();
        // Memory changes only once the batch is applied: a failed write
        // leaves every id findable, and the next commit tries again.
        let first = inner.runs.last().map_or(1, |(r, _)| r.last + 1);
        let mut run = Run {
            first,
            last: inner.through,
        };
        let mut pairs = inner.recent_pairs();
        let mut batch = sled::Batch::default();
        let mut keep = inner.runs.len();
        while let Some(prev) = keep
            .checked_sub(1)
            .map(|k| inner.runs[k].0)
            .filter(|p| p.len() < 2 * pairs.len() && p.len() < MERGE_LIMIT * self.run_len)
        {
            pairs = merge(read_run(&self.db, prev)?, pairs);
            remove_run(&self.db, &mut batch, prev)?;
            run.first = prev.first;
            keep -= 1;
        }
        let filter = write_run(&mut batch, run, &pairs);
        #[cfg(test)]
        if self
            .fail_next_seal
            .swap(false, std::sync::atomic::Ordering::SeqCst)
        {
            return Err(StoreError::Io(std::io::Error::other("injected failure")));
        }
        self.db.apply_batch(batch)?;
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
        inner.runs.push((run, filter));
        drop(inner);
        if let Some(t) = &self.tiers {
            t.nudge();
        }
        Ok(())
    }

    /// Makes the next [`Self::seal_runs`] fail before it writes, for tests.
    #[cfg(test)]
    pub fn fail_next_seal(&self) {
        self.fail_next_seal
            .store(true, std::sync::atomic::Ordering::SeqCst);
    }

    /// Positions whose event id may be `event_id` (hash equal), oldest first.
    pub fn candidates(&self, event_id: &str) -> Result<Vec<u64>, StoreError> {
        let hash = id_hash(event_id);
        let inner = self.read();
        let mut out = Vec::new();
        for (run, filter) in &inner.runs {
            if filter.may_contain(hash) {
                out.extend(positions_in(&self.db, *run, hash)?);
            }
        }
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
        Ok(out)
    }

    /// Stored runs, for tests.
    #[cfg(test)]
    pub fn runs(&self) -> usize {
        self.read().runs.len()
    }

    /// Whether full runs wait to be merged, for tests.
    #[cfg(test)]
    pub fn tier_merge_due(&self) -> bool {
        let runs: Vec<Run> = self.read().runs.iter().map(|(r, _)| *r).collect();
        super::event_index_tiers::next_group(&runs, MERGE_LIMIT * self.run_len).is_some()
    }

    /// Runs and events in stored runs and in `recent`, for tests.
    #[cfg(test)]
    pub fn counts(&self) -> (usize, usize, usize) {
        let inner = self.read();
        (
            inner.runs.len(),
            inner.runs.iter().map(|(r, _)| r.len()).sum(),
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

fn merge(older: Vec<(u64, u64)>, newer: Vec<(u64, u64)>) -> Vec<(u64, u64)> {
    let mut pairs = Vec::with_capacity(older.len() + newer.len());
    let (mut a, mut b) = (older.into_iter().peekable(), newer.into_iter().peekable());
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
    pairs
}

/// The directory of stored runs, which must cover positions 1..=n without
/// a gap.
fn load_runs(db: &sled::Db) -> Result<Vec<Run>, StoreError> {
    let mut runs: Vec<Run> = Vec::new();
    for item in db.scan_prefix([keys::ID_RUN_ENTRY]).keys() {
        let k = item?;
        let (first, last) =
            keys::parse_id_run_entry(&k).ok_or_else(|| bad("a malformed run entry".into()))?;
        let starts = runs.last().map_or(1, |r| r.last + 1);
        if first != starts || last < first {
            return Err(bad(format!(
                "run {first}-{last} does not follow the runs before it (expected one from {starts})"
            )));
        }
        runs.push(Run { first, last });
    }
    Ok(runs)
}

/// The runs with their filters. A filter missing or damaged is built again
/// from its run and stored (logged): never trusted, never absent.
fn load_filters(db: &sled::Db, runs: Vec<Run>) -> Result<Vec<(Run, RunFilter)>, StoreError> {
    let mut out = Vec::with_capacity(runs.len());
    for run in runs {
        let filter = match read_filter(db, run)? {
            Some(f) => f,
            None => {
                tracing::warn!(
                    first = run.first,
                    last = run.last,
                    "an event-id index run's filter is missing or damaged; building it from the run"
                );
                let hashes: Vec<u64> = read_run(db, run)?.into_iter().map(|(h, _)| h).collect();
                let f = RunFilter::build(&hashes);
                let mut batch = sled::Batch::default();
                remove_filter(db, &mut batch, run)?;
                write_filter(&mut batch, run, &f);
                db.apply_batch(batch)?;
                f
            }
        };
        out.push((run, filter));
    }
    Ok(out)
}

/// Rewrites runs stored in the layout before runs stayed on disk (`I`
/// keys by value number) in this one, each in one atomic batch.
fn migrate_runs(db: &sled::Db) -> Result<(), StoreError> {
    // The run being read: its pairs and its old keys.
    type Reading = (Run, Vec<(u64, u64)>, Vec<sled::IVec>);
    let mut current: Option<Reading> = None;
    let mut moved = 0usize;
    let mut finish = |run: Run, pairs: Vec<(u64, u64)>, old: Vec<sled::IVec>| {
        let sorted = pairs.windows(2).all(|w| w[0] < w[1]);
        if !sorted || pairs.len() != run.len() {
            return Err(bad(format!(
                "run {}-{} does not hold one sorted entry per position",
                run.first, run.last
            )));
        }
        let mut batch = sled::Batch::default();
        for k in old {
            batch.remove(k);
        }
        write_run(&mut batch, run, &pairs);
        db.apply_batch(batch)?;
        moved += 1;
        Ok::<(), StoreError>(())
    };
    for item in db.scan_prefix([keys::ID_RUN]) {
        let (k, v) = item?;
        let (first, last, _) =
            keys::parse_id_run_key(&k).ok_or_else(|| bad("a malformed run key".into()))?;
        let run = Run { first, last };
        match current.as_mut() {
            Some((r, pairs, old)) if *r == run => {
                pairs.extend(pairs_of(run, &v)?);
                old.push(k);
            }
            _ => {
                if let Some((r, pairs, old)) = current.take() {
                    finish(r, pairs, old)?;
                }
                current = Some((run, pairs_of(run, &v)?.collect(), vec![k]));
            }
        }
    }
    if let Some((r, pairs, old)) = current.take() {
        finish(r, pairs, old)?;
    }
    if moved > 0 {
        tracing::info!(
            runs = moved,
            "the event-id index's runs were rewritten to stay on disk"
        );
    }
    Ok(())
}
