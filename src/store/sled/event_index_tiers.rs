//! The event-id index's full runs merged into larger ones, four at a
//! time, on a thread of their own.
//!
//! Why: an append looks up each new event id in every run (a Bloom filter
//! check each, and a sled read for each false positive), and the writer
//! stops merging runs at [`super::event_index`]'s merge limit (256k
//! events) to keep its own pauses short. Runs then grow in number with
//! history — about 60 at 16 million events — and so did the cost of every
//! append (on such a store batched appends fell to about a quarter of a
//! fresh one's rate). Here full runs are merged by tiers: four of a tier
//! into one of the next (1 M, 4 M, 16 M events), up to [`MAX_TIERS`] tiers
//! above the full size, so a store keeps a few runs per tier plus the
//! runs of the largest size, a sixty-fourth of what it kept.
//!
//! A merge streams: the four runs' sorted pairs are merged value by value
//! into the new run's values, written a few at a time, and its filter is
//! built as they pass. Nothing of it is visible before the switch, one
//! atomic batch that adds the new run's directory entry and filter and
//! removes the four entries. Readers hold the index's lock while they
//! read runs, and the switch takes it, so no lookup reads a run being
//! removed; the old runs' values are deleted after the switch.
//!
//! Crashes. The new run's values are written under a marker (`G`) naming
//! it; the switch removes the marker and marks each old run to be dropped
//! (`D`). At start a marker left by a crash names what to delete — a new
//! run never switched in, old runs not yet deleted — and this thread
//! deletes it before it merges anything. sled recovers a prefix of its
//! batches, so a crash leaves one of: nothing, a marker with some of the
//! new run's values, the switch with old runs still to delete, or all of
//! it done. In each the directory covers every position once.

use super::event_filter::RunFilter;
use super::event_runs::{
    insert_value, pairs_of, value_keys, write_filter, Inner, Run, PAIRS_PER_VALUE,
};
use super::keys;
use crate::store::StoreError;
use std::collections::BinaryHeap;
use std::sync::{Arc, Condvar, Mutex, RwLock};

/// Runs of one tier merged into one of the next.
pub const FANOUT: usize = 4;

/// Tiers above a full run: the largest run holds `FANOUT^MAX_TIERS` full
/// runs (with 256k-event runs, 16 M events). Larger runs would cut the
/// number of runs further, but a merge holds the new run's filter and the
/// old ones at once (1.2 bytes per event each) and rewrites the whole run.
pub const MAX_TIERS: u32 = 3;

/// New run values written per batch.
const VALUES_PER_BATCH: usize = 64;

/// Keys deleted per batch.
const DELETES_PER_BATCH: usize = 1024;

/// The tier of a run of `len` events, runs of `full` events being tier 0;
/// None for a run not yet full (the writer still merges those).
fn tier(len: usize, full: usize) -> Option<u32> {
    if len < full {
        return None;
    }
    let mut t = 0;
    let mut size = full * FANOUT;
    while len >= size && t < MAX_TIERS {
        t += 1;
        size *= FANOUT;
    }
    Some(t)
}

/// The oldest [`FANOUT`] adjacent runs of one tier below the top, if any.
pub(super) fn next_group(runs: &[Run], full: usize) -> Option<Vec<Run>> {
    runs.windows(FANOUT)
        .find(|w| {
            let t = tier(w[0].len(), full);
            t.is_some_and(|t| t < MAX_TIERS) && w.iter().all(|r| tier(r.len(), full) == t)
        })
        .map(|w| w.to_vec())
}

/// The pairs of one stored run, read a value at a time.
struct RunReader {
    run: Run,
    values: sled::Iter,
    pairs: Vec<(u64, u64)>,
    at: usize,
}

impl RunReader {
    fn new(db: &sled::Db, run: Run) -> Self {
        Self {
            run,
            values: db.scan_prefix(keys::id_chunk_prefix(run.first, run.last)),
            pairs: Vec::new(),
            at: 0,
        }
    }

    fn next(&mut self) -> Result<Option<(u64, u64)>, StoreError> {
        while self.at == self.pairs.len() {
            let Some(item) = self.values.next() else {
                return Ok(None);
            };
            let (_, v) = item?;
            self.pairs = pairs_of(self.run, &v)?.collect();
            self.at = 0;
        }
        self.at += 1;
        Ok(Some(self.pairs[self.at - 1]))
    }
}

/// The thread that merges; stopped and joined when dropped.
pub(super) struct Tiers {
    signal: Arc<Signal>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// What wakes the thread. Both flags are set under the mutex the thread
/// checks them under before it waits, so a nudge or a stop that comes
/// while it is looking for a group is seen at its next check instead of
/// being lost while nobody waits.
#[derive(Default)]
struct Signal {
    flags: Mutex<Flags>,
    changed: Condvar,
}

#[derive(Default)]
struct Flags {
    /// The index is closing: finish no merge, start none.
    stop: bool,
    /// A run was stored since the thread last looked at the runs.
    nudged: bool,
}

impl Signal {
    fn set(&self, f: impl FnOnce(&mut Flags)) {
        f(&mut self.flags.lock().expect("tiers lock"));
        self.changed.notify_all();
    }
}

struct Work {
    db: sled::Db,
    inner: Arc<RwLock<Inner>>,
    full: usize,
    signal: Arc<Signal>,
}

impl Tiers {
    /// Starts merging the runs of `inner` (full at `full` events), after
    /// deleting what a crash left.
    pub fn start(db: &sled::Db, inner: Arc<RwLock<Inner>>, full: usize) -> Self {
        let signal = Arc::new(Signal::default());
        let work = Work {
            db: db.clone(),
            inner,
            full,
            signal: signal.clone(),
        };
        let thread = std::thread::Builder::new()
            .name("event-id-tiers".into())
            .spawn(move || work.run())
            .map_err(|e| tracing::error!(error = %e, "event-id index merges not started"))
            .ok();
        Self { signal, thread }
    }

    /// Tells the thread a run was stored.
    pub fn nudge(&self) {
        self.signal.set(|f| f.nudged = true);
    }
}

impl Drop for Tiers {
    fn drop(&mut self) {
        self.signal.set(|f| f.stop = true);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Why a merge ended early without an error.
struct Stopped;

impl Work {
    fn stopped(&self) -> bool {
        self.signal.flags.lock().expect("tiers lock").stop
    }

    fn run(self) {
        if let Err(e) = self.clean_up() {
            tracing::error!(error = %e, "event-id index: leftovers of an interrupted merge not deleted; merges stop");
            return;
        }
        loop {
            {
                let mut flags = self.signal.flags.lock().expect("tiers lock");
                if flags.stop {
                    return;
                }
                // Cleared before the runs are read: a run stored from here
                // on sets it again, and the wait below does not start.
                flags.nudged = false;
            }
            let group = {
                let inner = self.inner.read().expect("event index lock");
                let runs: Vec<Run> = inner.runs.iter().map(|(r, _)| *r).collect();
                next_group(&runs, self.full)
            };
            match group {
                Some(group) => match self.merge(&group) {
                    Ok(Ok(())) => {}
                    Ok(Err(Stopped)) => return,
                    Err(e) => {
                        // The runs stay as they were: lookups are right, only
                        // slower. Damage is what verification reports.
                        tracing::error!(error = %e, first = group[0].first, "event-id index: a merge of runs failed; merges stop");
                        return;
                    }
                },
                None => {
                    let flags = self.signal.flags.lock().expect("tiers lock");
                    let _waited = self
                        .signal
                        .changed
                        .wait_while(flags, |f| !f.stop && !f.nudged)
                        .expect("tiers lock");
                }
            }
        }
    }

    /// Deletes what markers name: new runs never switched in, old runs
    /// switched out.
    fn clean_up(&self) -> Result<(), StoreError> {
        for prefix in [keys::ID_MERGING, keys::ID_DROPPING] {
            let marked: Vec<sled::IVec> = self
                .db
                .scan_prefix([prefix])
                .keys()
                .collect::<Result<_, _>>()?;
            for marker in marked {
                let (first, last) = keys::parse_id_span(prefix, &marker).ok_or_else(|| {
                    StoreError::Corrupt("event-id index: a malformed merge marker".into())
                })?;
                if self.db.contains_key(keys::id_run_entry(first, last))? {
                    // A stored run's values are never deleted.
                    return Err(StoreError::Corrupt(format!(
                        "event-id index: run {first}-{last} is both stored and marked for deletion"
                    )));
                }
                self.delete_run_values(Run { first, last })?;
                if self.stopped() {
                    return Ok(());
                }
                self.db.remove(marker)?;
                tracing::info!(
                    first,
                    last,
                    "event-id index: deleted what an interrupted merge left"
                );
            }
        }
        Ok(())
    }

    fn delete_run_values(&self, run: Run) -> Result<(), StoreError> {
        let mut batch = sled::Batch::default();
        let mut in_batch = 0;
        for k in value_keys(&self.db, run) {
            batch.remove(k?);
            in_batch += 1;
            if in_batch == DELETES_PER_BATCH {
                self.db.apply_batch(std::mem::take(&mut batch))?;
                in_batch = 0;
                if self.stopped() {
                    // The marker stays: the next start deletes the rest.
                    return Ok(());
                }
            }
        }
        self.db.apply_batch(batch)?;
        Ok(())
    }

    /// Merges `group` into one run and switches it in.
    fn merge(&self, group: &[Run]) -> Result<Result<(), Stopped>, StoreError> {
        let started = std::time::Instant::now();
        let target = Run {
            first: group[0].first,
            last: group[group.len() - 1].last,
        };
        let marker = keys::id_merging(target.first, target.last);
        self.db.insert(marker, &[][..])?;
        let mut readers: Vec<RunReader> =
            group.iter().map(|r| RunReader::new(&self.db, *r)).collect();
        let mut heads = BinaryHeap::new();
        for (i, r) in readers.iter_mut().enumerate() {
            if let Some(p) = r.next()? {
                heads.push(std::cmp::Reverse((p, i)));
            }
        }
        let mut filter = RunFilter::empty(target.len());
        let mut chunk: Vec<(u64, u64)> = Vec::with_capacity(PAIRS_PER_VALUE);
        let mut values = 0u32;
        let mut batch = sled::Batch::default();
        let mut in_batch = 0;
        let mut count = 0usize;
        let mut last: Option<(u64, u64)> = None;
        while let Some(std::cmp::Reverse((pair, i))) = heads.pop() {
            if last.is_some_and(|l| l >= pair) {
                return Err(StoreError::Corrupt(format!(
                    "event-id index: runs {}-{} do not hold one sorted entry per position",
                    target.first, target.last
                )));
            }
            last = Some(pair);
            count += 1;
            if let Some(p) = readers[i].next()? {
                heads.push(std::cmp::Reverse((p, i)));
            }
            filter.insert(pair.0);
            chunk.push(pair);
            if chunk.len() == PAIRS_PER_VALUE {
                insert_value(&mut batch, target, values, &chunk);
                chunk.clear();
                values += 1;
                in_batch += 1;
                if in_batch == VALUES_PER_BATCH {
                    self.db.apply_batch(std::mem::take(&mut batch))?;
                    in_batch = 0;
                    if self.stopped() {
                        return Ok(Err(Stopped));
                    }
                }
            }
        }
        if !chunk.is_empty() {
            insert_value(&mut batch, target, values, &chunk);
        }
        if count != target.len() {
            return Err(StoreError::Corrupt(format!(
                "event-id index: runs {}-{} hold {count} entries for {} positions",
                target.first,
                target.last,
                target.len()
            )));
        }
        // The switch: the new run in, the old ones out, in one batch.
        write_filter(&mut batch, target, &filter);
        batch.insert(&keys::id_run_entry(target.first, target.last)[..], &[][..]);
        batch.remove(&marker[..]);
        for r in group {
            batch.remove(&keys::id_run_entry(r.first, r.last)[..]);
            batch.insert(&keys::id_dropping(r.first, r.last)[..], &[][..]);
        }
        {
            let mut inner = self.inner.write().expect("event index lock");
            let at = inner
                .runs
                .iter()
                .position(|(r, _)| *r == group[0])
                .filter(|&at| {
                    inner.runs.len() >= at + group.len()
                        && inner.runs[at..at + group.len()]
                            .iter()
                            .map(|(r, _)| *r)
                            .eq(group.iter().copied())
                })
                .ok_or_else(|| {
                    StoreError::Corrupt("event-id index: merged runs changed meanwhile".into())
                })?;
            self.db.apply_batch(batch)?;
            inner.runs.splice(at..at + group.len(), [(target, filter)]);
        }
        for r in group {
            self.delete_run_values(*r)?;
            if self.stopped() {
                return Ok(Err(Stopped));
            }
            self.db.remove(keys::id_dropping(r.first, r.last))?;
        }
        tracing::debug!(
            first = target.first,
            last = target.last,
            ms = started.elapsed().as_millis() as u64,
            "event-id index runs merged"
        );
        Ok(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn runs(lens: &[usize]) -> Vec<Run> {
        let mut first = 1u64;
        lens.iter()
            .map(|&n| {
                let r = Run {
                    first,
                    last: first + n as u64 - 1,
                };
                first += n as u64;
                r
            })
            .collect()
    }

    #[test]
    fn the_oldest_four_full_runs_of_a_tier_merge_and_the_top_tier_stays() {
        // Runs not yet full are the writer's.
        assert_eq!(next_group(&runs(&[8, 8, 8, 8, 8]), 10), None);
        // Four full runs (overshoot allowed): merged.
        let g = next_group(&runs(&[10, 12, 10, 11, 5]), 10).unwrap();
        assert_eq!(g.len(), 4);
        assert_eq!(g[0].first, 1);
        // The oldest group of one tier, not mixed tiers.
        let g = next_group(&runs(&[40, 10, 10, 10, 10, 10]), 10).unwrap();
        assert_eq!(g[0].first, 41);
        // Runs of the top tier are never merged further.
        let top = 10 * FANOUT.pow(MAX_TIERS);
        assert_eq!(next_group(&runs(&[top, top, top, top, top]), 10), None);
        assert_eq!(tier(top * 3, 10), Some(MAX_TIERS));
    }
}
