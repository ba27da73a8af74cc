//! The event log on sled: one tree, one atomic batch per group commit, and a
//! real `fdatasync` after sled's flush (see [`super::durability`]). Records
//! are stored a few per value ([`super::pack`]); the event-id index follows
//! the commit (`super::event_index`).

use super::durability::Syncer;
use super::event_index::{event_id_of, id_hash, EventIndex};
use super::keys::{self, trailing_u64};
use super::pack;
use crate::store::side_table::{Entry, SideTable};
use crate::store::{EventLog, NewRecord, StoreError};
use bytes::Bytes;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// Tuning of the sled engine.
#[derive(Debug, Clone)]
pub struct SledOptions {
    /// Page cache size in bytes.
    pub cache_capacity: u64,
    /// Events per new run of the event-id index (see `store::event_index`).
    pub id_run_len: usize,
    /// Whether full runs of the event-id index are merged into larger
    /// ones in the background (see `store::event_index_tiers`); off only
    /// in tests that count runs.
    pub id_tier_merges: bool,
    /// sled's own flush every so many milliseconds, for a store written
    /// with [`SledLog::write_behind`] (a clustered node's local copy);
    /// `None` when every write is made durable by the writer.
    pub background_flush_ms: Option<u64>,
}

impl Default for SledOptions {
    fn default() -> Self {
        Self {
            cache_capacity: 64 * 1024 * 1024,
            id_run_len: super::event_index::RUN_LEN,
            id_tier_merges: true,
            background_flush_ms: None,
        }
    }
}

pub struct SledLog {
    db: sled::Db,
    dir: PathBuf,
    syncer: Mutex<Syncer>,
    event_index: EventIndex,
    /// Time spent in the durable writes' flush and sync ([`EventLog::sync_nanos`]).
    sync_nanos: std::sync::atomic::AtomicU64,
    #[cfg(test)]
    fail_next_sync: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl SledLog {
    /// Makes the next durable write fail at its sync, after its batch is
    /// applied (its records then visible in sled but not durable), for tests.
    #[cfg(test)]
    pub fn fail_next_sync(&self) {
        self.fail_next_sync
            .store(true, std::sync::atomic::Ordering::SeqCst);
    }

    /// The switch of [`Self::fail_next_sync`], to hold once the log is
    /// handed to a ledger.
    #[cfg(test)]
    pub fn sync_fault(&self) -> std::sync::Arc<std::sync::atomic::AtomicBool> {
        self.fail_next_sync.clone()
    }

    /// Opens (or creates) the log in `dir`. Fails if another process has it.
    /// sled panics on some damaged files (a missing or altered blob file:
    /// "tried to serialize Uninitialized"); such a panic is an error naming
    /// the directory, never a crash.
    pub fn open(dir: &Path, opts: &SledOptions) -> Result<Self, StoreError> {
        contain_panics(dir, || Self::open_unguarded(dir, opts))
    }

    fn open_unguarded(dir: &Path, opts: &SledOptions) -> Result<Self, StoreError> {
        std::fs::create_dir_all(dir)?;
        let config = sled::Config::new()
            .path(dir)
            .cache_capacity(opts.cache_capacity)
            .mode(sled::Mode::HighThroughput)
            .flush_every_ms(opts.background_flush_ms);
        // sled releases its file lock when its last background I/O task
        // ends, a moment after the database is dropped; a store closed in
        // this process and opened again at once may still be locked. Wait a
        // little for that, not for another process that keeps it.
        let started = std::time::Instant::now();
        let db = loop {
            match config.open() {
                Err(sled::Error::Io(e))
                    if e.to_string().contains("could not acquire lock")
                        && started.elapsed() < std::time::Duration::from_secs(5) =>
                {
                    std::thread::sleep(std::time::Duration::from_millis(50));
                }
                Err(sled::Error::Io(e)) if e.to_string().contains("could not acquire lock") => {
                    return Err(StoreError::Io(e))
                }
                other => break other.map_err(|e| damaged(dir, &e.to_string()))?,
            }
        };
        // Make the creation of a new store itself durable.
        db.flush()?;
        let mut syncer = Syncer::open(dir)?;
        syncer.sync()?;
        if let Ok(d) = std::fs::File::open(dir) {
            d.sync_all()?;
        }
        let head = head_of(&db)?;
        let event_index = EventIndex::open(
            &db,
            head,
            opts.id_run_len,
            opts.id_tier_merges,
            |from, limit| read_range_in(&db, from, limit),
        )?;
        Ok(Self {
            db,
            dir: dir.to_path_buf(),
            syncer: Mutex::new(syncer),
            event_index,
            sync_nanos: Default::default(),
            #[cfg(test)]
            fail_next_sync: Default::default(),
        })
    }

    /// The data directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Bytes sled uses on disk.
    pub fn size_on_disk(&self) -> Result<u64, StoreError> {
        Ok(self.db.size_on_disk()?)
    }

    /// Flushes and syncs; used at shutdown.
    pub fn close(&self) -> Result<(), StoreError> {
        self.db.flush()?;
        self.syncer.lock().expect("syncer lock").sync()?;
        Ok(())
    }

    /// sled's flush, then the sync that makes it durable.
    fn flush_and_sync(&self) -> Result<(), StoreError> {
        self.db.flush()?;
        #[cfg(test)]
        if self
            .fail_next_sync
            .swap(false, std::sync::atomic::Ordering::SeqCst)
        {
            return Err(StoreError::Io(std::io::Error::other(
                "injected sync failure",
            )));
        }
        self.syncer.lock().expect("syncer lock").sync()?;
        Ok(())
    }

    /// A side tree of the same database (keys, access log): written with the
    /// log's own durability, never part of the hashed log.
    /// A side table of the store (see [`crate::store::side_table`]).
    pub fn side_table(&self, name: &str) -> Result<SledTable, StoreError> {
        Ok(SledTable(self.db.open_tree(name)?))
    }

    /// The stored value whose records start at or before `position` and its
    /// first position (the pack that holds `position`, if any does).
    fn pack_holding(&self, position: u64) -> Result<Option<(u64, sled::IVec)>, StoreError> {
        pack_holding_in(&self.db, position)
    }

    /// Replaces the stored bytes of the record at `position`, or removes the
    /// record (`None`), underneath the ledger: for tests that damage a store
    /// on purpose. Not durable until the next flush.
    #[doc(hidden)]
    pub fn tamper_record(&self, position: u64, bytes: Option<Vec<u8>>) -> Result<(), StoreError> {
        let (first, value) = self
            .pack_holding(position)?
            .ok_or_else(|| StoreError::Corrupt(format!("no record at {position}")))?;
        let records: Vec<(u64, Vec<u8>)> = pack::unpack(first, &value)
            .map_err(StoreError::Corrupt)?
            .into_iter()
            .map(|(p, b)| (p, b.to_vec()))
            .collect();
        if !records.iter().any(|(p, _)| *p == position) {
            return Err(StoreError::Corrupt(format!("no record at {position}")));
        }
        self.db.remove(keys::log_key(first))?;
        let (before, after): (Vec<_>, Vec<_>) =
            records.into_iter().partition(|(p, _)| *p < position);
        let after: Vec<_> = after.into_iter().filter(|(p, _)| *p > position).collect();
        let put = |start: u64, rs: Vec<&[u8]>| -> Result<(), StoreError> {
            if !rs.is_empty() {
                self.db.insert(keys::log_key(start), pack::encode(rs))?;
            }
            Ok(())
        };
        match bytes {
            Some(b) => {
                let mut all: Vec<&[u8]> = before.iter().map(|(_, b)| b.as_slice()).collect();
                all.push(&b);
                all.extend(after.iter().map(|(_, b)| b.as_slice()));
                put(first, all)?;
            }
            None => {
                put(first, before.iter().map(|(_, b)| b.as_slice()).collect())?;
                put(
                    position + 1,
                    after.iter().map(|(_, b)| b.as_slice()).collect(),
                )?;
            }
        }
        Ok(())
    }

    /// Low-level access for tests that damage a store on purpose.
    #[doc(hidden)]
    pub fn raw(&self) -> &sled::Db {
        &self.db
    }
}

thread_local! {
    /// Whether this thread is inside [`contain_panics`] (its panics are
    /// reported as errors, not printed).
    static CONTAINING: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Runs `f` on a store in `dir`, turning a panic inside it (sled's, on a
/// damaged file) into [`StoreError::Corrupt`] naming the directory and what
/// sled said. The panic is not printed: the error says it all.
pub fn contain_panics<T>(
    dir: &Path,
    f: impl FnOnce() -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    static HOOK: std::sync::Once = std::sync::Once::new();
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !CONTAINING.with(|c| c.get()) {
                previous(info)
            }
        }));
    });
    let outer = CONTAINING.with(|c| c.replace(true));
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
    CONTAINING.with(|c| c.set(outer));
    result.unwrap_or_else(|payload| {
        let what = payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "no message".into());
        Err(damaged(dir, &format!("it failed: {what}")))
    })
}

/// The error of a store sled cannot open: the directory, what sled said,
/// and which files can be at fault (sled does not name the file).
fn damaged(dir: &Path, said: &str) -> StoreError {
    StoreError::Corrupt(format!(
        "the store in {} cannot be read: the storage engine reports \"{said}\"; \
         one of its files (db, conf, snap.*, blobs/*) is damaged or missing",
        dir.display()
    ))
}

/// Position of the last stored record (0 when empty).
fn head_of(db: &sled::Db) -> Result<u64, StoreError> {
    let Some((k, v)) = db.scan_prefix([keys::LOG]).next_back().transpose()? else {
        return Ok(0);
    };
    let first = trailing_u64(&k).ok_or_else(|| StoreError::Corrupt("bad log key".into()))?;
    Ok(first + pack::count(first, &v).map_err(StoreError::Corrupt)? - 1)
}

/// See [`SledLog::pack_holding`].
fn pack_holding_in(db: &sled::Db, position: u64) -> Result<Option<(u64, sled::IVec)>, StoreError> {
    let found = db.get_lt(keys::log_key(position.saturating_add(1)))?;
    match found {
        Some((k, v)) if k.first() == Some(&keys::LOG) => {
            let first =
                trailing_u64(&k).ok_or_else(|| StoreError::Corrupt("bad log key".into()))?;
            Ok(Some((first, v)))
        }
        _ => Ok(None),
    }
}

/// Up to `limit` records from `from` on (see [`EventLog::read_range`]).
fn read_range_in(db: &sled::Db, from: u64, limit: usize) -> Result<Vec<(u64, Bytes)>, StoreError> {
    let from = from.max(1);
    let mut out = Vec::with_capacity(limit.min(4096));
    if limit == 0 {
        return Ok(out);
    }
    // Start at the pack holding `from`, if one does.
    let start = pack_holding_in(db, from)?.map_or(from, |(first, _)| first);
    let mut last = None;
    for item in db.range(keys::log_key(start)..=keys::log_key(u64::MAX)) {
        let (k, v) = item?;
        let first = trailing_u64(&k).ok_or_else(|| StoreError::Corrupt("bad log key".into()))?;
        // Records are handed out as views of the pack sled read, not copies.
        let v = Bytes::from_owner(v);
        for (pos, bytes) in pack::unpack(first, &v).map_err(StoreError::Corrupt)? {
            if last.is_some_and(|l| pos <= l) {
                return Err(StoreError::Corrupt(format!(
                    "position {pos} is stored twice (overlapping packs)"
                )));
            }
            last = Some(pos);
            if pos < from {
                continue;
            }
            out.push((pos, v.slice_ref(bytes)));
            if out.len() == limit {
                return Ok(out);
            }
        }
    }
    Ok(out)
}

impl SledLog {
    /// Stores records as [`EventLog::write_durable`] does, without making
    /// them durable: for a copy of a log kept durable elsewhere (a
    /// clustered node's, whose stream acknowledged them first). sled's
    /// background flush ([`SledOptions::background_flush_ms`]) or the next
    /// durable write or close writes them out; a crash before that leaves
    /// the store a shorter log (sled recovers a prefix of its writes),
    /// which the owner fetches again.
    pub fn write_behind(
        &self,
        records: &[NewRecord],
        tree: &[(u64, [u8; 32])],
    ) -> Result<(), StoreError> {
        self.apply(records, tree)?;
        self.seal_id_runs();
        Ok(())
    }

    /// One atomic sled batch of the records, their case index runs and
    /// tree hashes; their event ids into the in-memory index.
    fn apply(&self, records: &[NewRecord], tree: &[(u64, [u8; 32])]) -> Result<(), StoreError> {
        let mut batch = sled::Batch::default();
        for (start, bytes) in tree_runs(tree) {
            batch.insert(&keys::tree_key(start)[..], bytes);
        }
        for (key, value) in self.case_entries(records)? {
            batch.insert(key, value);
        }
        // A commit's records have consecutive positions: a few per value.
        for (i, value) in pack::pack(records.iter().map(|r| r.bytes.as_slice())) {
            batch.insert(&keys::log_key(records[i].position)[..], value);
        }
        self.db.apply_batch(batch)?;
        // Event ids go into the in-memory index, not this batch: written as
        // runs behind the commit, indexed again from the log at open.
        let ids: Vec<(u64, u64)> = records
            .iter()
            .map(|r| (id_hash(&r.event_id), r.position))
            .collect();
        self.event_index.add(&ids);
        Ok(())
    }

    /// The case-index entries a commit of `records` writes. A run is
    /// consecutive versions stored at consecutive positions (a request's
    /// events, or adjacent requests); a case's runs extend the last entry
    /// it has when that one ends where they begin and has room (up to
    /// [`keys::CASE_RUNS_PER_ENTRY`] runs), else start a new one. The
    /// entry rewritten holds its earlier runs unchanged: the batch that
    /// stores the records replaces it whole or not at all.
    fn case_entries(&self, records: &[NewRecord]) -> Result<Vec<Entry>, StoreError> {
        // Each case's runs, in version order (a commit's records of one
        // case have rising versions at rising positions).
        let mut by_case: std::collections::BTreeMap<&str, Vec<(u64, u64, u32)>> =
            Default::default();
        for r in records {
            let runs = by_case.entry(r.case_id.as_str()).or_default();
            match runs.last_mut() {
                Some((v0, p0, n))
                    if *v0 + u64::from(*n) == r.case_version
                        && *p0 + u64::from(*n) == r.position
                        && *n < u32::MAX =>
                {
                    *n += 1
                }
                _ => runs.push((r.case_version, r.position, 1)),
            }
        }
        let mut out = Vec::new();
        for (case, runs) in by_case {
            let first_version = runs[0].0;
            // The entry being filled: its first version and its runs.
            // A case's first commit has no entry before it: no lookup.
            let held = match first_version {
                1 => None,
                _ => self.db.get_lt(keys::case_key(case, first_version))?,
            };
            let (mut entry_version, mut entry) = match held {
                Some((k, v)) if k.starts_with(&keys::case_prefix(case)) => {
                    let runs = trailing_u64(&k).zip(keys::parse_case_runs(&v));
                    match runs {
                        Some((v0, runs))
                            if runs.len() < keys::CASE_RUNS_PER_ENTRY
                                && v0 + runs.iter().map(|(_, n)| n).sum::<u64>()
                                    == first_version =>
                        {
                            (v0, v.to_vec())
                        }
                        // Full, or not ending where this commit begins (a
                        // damaged entry stays as it is, for verification
                        // to name): a new entry.
                        _ => (first_version, Vec::new()),
                    }
                }
                _ => (first_version, Vec::new()),
            };
            for (v0, p0, n) in runs {
                // The entry's last run, if this one continues it.
                let last = entry.len().checked_sub(keys::CASE_RUN_BYTES);
                let joins = last.and_then(|at| {
                    let p = u64::from_be_bytes(entry[at..at + 8].try_into().ok()?);
                    let c = u32::from_be_bytes(entry[at + 8..].try_into().ok()?);
                    (p + u64::from(c) == p0).then_some(at).zip(c.checked_add(n))
                });
                if let Some((at, count)) = joins {
                    entry[at + 8..].copy_from_slice(&count.to_be_bytes());
                    continue;
                }
                if entry.len() / keys::CASE_RUN_BYTES == keys::CASE_RUNS_PER_ENTRY {
                    out.push((
                        keys::case_key(case, entry_version),
                        std::mem::take(&mut entry),
                    ));
                    entry_version = v0;
                }
                entry.extend_from_slice(&keys::case_run(p0, n));
            }
            out.push((keys::case_key(case, entry_version), entry));
        }
        Ok(out)
    }

    /// Stores the event-id index's full runs; one that cannot be stored
    /// now is tried again with the next commit (and the ids are indexed
    /// from the log at open), never fails this one.
    fn seal_id_runs(&self) {
        if let Err(e) = self.event_index.seal_runs() {
            tracing::warn!(error = %e, "an event-id index run was not stored; trying again with the next commit");
        }
    }
}

impl EventLog for SledLog {
    fn head(&self) -> Result<u64, StoreError> {
        head_of(&self.db)
    }

    fn write_durable(
        &self,
        records: &[NewRecord],
        tree: &[(u64, [u8; 32])],
    ) -> Result<(), StoreError> {
        self.apply(records, tree)?;
        let syncing = std::time::Instant::now();
        let synced = self.flush_and_sync();
        self.sync_nanos.fetch_add(
            crate::time::duration_nanos(syncing.elapsed()),
            std::sync::atomic::Ordering::Relaxed,
        );
        synced?;
        // The records are durable and their ids findable in memory.
        self.seal_id_runs();
        Ok(())
    }

    fn sync(&self) -> Result<(), StoreError> {
        self.close()
    }

    fn sync_nanos(&self) -> u64 {
        self.sync_nanos.load(std::sync::atomic::Ordering::Relaxed)
    }

    fn read(&self, position: u64) -> Result<Option<Vec<u8>>, StoreError> {
        let Some((first, value)) = self.pack_holding(position)? else {
            return Ok(None);
        };
        Ok(pack::unpack(first, &value)
            .map_err(StoreError::Corrupt)?
            .into_iter()
            .find(|(p, _)| *p == position)
            .map(|(_, bytes)| bytes.to_vec()))
    }

    fn read_range(&self, from: u64, limit: usize) -> Result<Vec<(u64, Bytes)>, StoreError> {
        read_range_in(&self.db, from, limit)
    }

    fn case_positions(
        &self,
        case_id: &str,
        from_version: u64,
        backwards: bool,
        limit: usize,
    ) -> Result<Vec<(u64, u64)>, StoreError> {
        // An entry's runs as (first version, first position, count).
        let runs = |item: sled::Result<(sled::IVec, sled::IVec)>| -> Result<Vec<(u64, u64, u64)>, StoreError> {
            let (k, v) = item?;
            match (trailing_u64(&k), keys::parse_case_runs(&v)) {
                (Some(mut version), Some(runs)) => Ok(runs
                    .into_iter()
                    .map(|(position, count)| {
                        let run = (version, position, count);
                        version += count;
                        run
                    })
                    .collect()),
                _ => Err(StoreError::Corrupt(format!(
                    "bad case index entry for {case_id}"
                ))),
            }
        };
        let mut out = Vec::new();
        if backwards {
            let last = if from_version == 0 {
                u64::MAX
            } else {
                from_version
            };
            let range = keys::case_key(case_id, 0)..=keys::case_key(case_id, last);
            for item in self.db.range(range).rev() {
                for (v0, p0, count) in runs(item)?.into_iter().rev() {
                    for k in (0..count).rev() {
                        if v0 + k > last {
                            continue;
                        }
                        if out.len() == limit {
                            return Ok(out);
                        }
                        out.push((v0 + k, p0 + k));
                    }
                }
            }
        } else {
            let first = from_version.max(1);
            // The run holding `first` starts at or before it.
            let start = match self
                .db
                .get_lt(keys::case_key(case_id, first.saturating_add(1)))?
            {
                Some((k, _)) if k.starts_with(&keys::case_prefix(case_id)) => {
                    trailing_u64(&k).unwrap_or(first)
                }
                _ => first,
            };
            let range = keys::case_key(case_id, start)..=keys::case_key(case_id, u64::MAX);
            for item in self.db.range(range) {
                for (v0, p0, count) in runs(item)? {
                    for k in 0..count {
                        if v0 + k < first {
                            continue;
                        }
                        if out.len() == limit {
                            return Ok(out);
                        }
                        out.push((v0 + k, p0 + k));
                    }
                }
            }
        }
        Ok(out)
    }

    fn tree_hashes(&self, indexes: &[u64]) -> Result<Vec<[u8; 32]>, StoreError> {
        let mut out = Vec::with_capacity(indexes.len());
        // Consecutive lookups often fall in the same run: keep the last one.
        let mut run: Option<(u64, sled::IVec)> = None;
        for &i in indexes {
            let hit = run
                .as_ref()
                .is_some_and(|(start, v)| i >= *start && i < start + (v.len() / 32) as u64);
            if !hit {
                let found = self.db.get_lt(keys::tree_key(i.saturating_add(1)))?;
                run = match found {
                    Some((k, v)) if k.first() == Some(&keys::TREE) => {
                        trailing_u64(&k).map(|start| (start, v))
                    }
                    _ => None,
                };
            }
            let hash = run.as_ref().and_then(|(start, v)| {
                let at = usize::try_from(i.checked_sub(*start)?).ok()? * 32;
                v.get(at..at + 32)
                    .and_then(|h| <[u8; 32]>::try_from(h).ok())
            });
            out.push(hash.ok_or_else(|| StoreError::Corrupt(format!("tree hash {i} is missing")))?);
        }
        Ok(out)
    }

    fn last_tree_index(&self) -> Result<Option<u64>, StoreError> {
        let last = self.db.scan_prefix([keys::TREE]).next_back().transpose()?;
        Ok(last.and_then(|(k, v)| {
            Some(trailing_u64(&k)? + (v.len() / 32) as u64).and_then(|end| end.checked_sub(1))
        }))
    }

    fn event_position(&self, event_id: &str) -> Result<Option<u64>, StoreError> {
        // A hash is a candidate; the record settles it.
        for position in self.event_index.candidates(event_id)? {
            let Some(bytes) = self.read(position)? else {
                return Err(StoreError::Corrupt(format!(
                    "the event-id index points at missing position {position}"
                )));
            };
            if event_id_of(position, &bytes)? == event_id {
                return Ok(Some(position));
            }
        }
        Ok(None)
    }

    fn side_table(&self, name: &str) -> Result<Box<dyn SideTable>, StoreError> {
        Ok(Box::new(SledLog::side_table(self, name)?))
    }

    fn tamper_record(&self, position: u64, bytes: Option<Vec<u8>>) -> Result<(), StoreError> {
        SledLog::tamper_record(self, position, bytes)
    }

    fn size_on_disk(&self) -> Result<u64, StoreError> {
        SledLog::size_on_disk(self)
    }

    fn close(&self) -> Result<(), StoreError> {
        SledLog::close(self)
    }
}

/// Most Merkle tree hashes stored in one value: 6 KiB, as a record pack.
const TREE_RUN_HASHES: usize = pack::MAX_BYTES / 32;

/// A commit's Merkle tree hashes (contiguous indexes) as values of up to
/// [`TREE_RUN_HASHES`]: (first index, hashes). One value per commit grew
/// to ~50 KB under batched appends (800 records, ~1,600 hashes), and a sled
/// leaf of such values passed sled's blob threshold: each commit then
/// wrote the leaf again as a new blob file of ~500 KB, with two more syncs
/// (the file and its directory). Readers find a hash by the value whose
/// first index is at or below it, so stores written with longer values
/// read as before.
fn tree_runs(tree: &[(u64, [u8; 32])]) -> Vec<(u64, Vec<u8>)> {
    let mut runs: Vec<(u64, Vec<u8>)> = Vec::new();
    for (i, (index, hash)) in tree.iter().enumerate() {
        match runs.last_mut() {
            Some((start, bytes))
                if *start + (bytes.len() / 32) as u64 == *index
                    && bytes.len() < TREE_RUN_HASHES * 32 =>
            {
                bytes.extend_from_slice(hash)
            }
            _ => {
                let mut bytes = Vec::with_capacity(32 * TREE_RUN_HASHES.min(tree.len() - i));
                bytes.extend_from_slice(hash);
                runs.push((*index, bytes));
            }
        }
    }
    runs
}

impl From<sled::Error> for StoreError {
    fn from(e: sled::Error) -> Self {
        StoreError::Engine(e.to_string())
    }
}

/// A side table kept as a sled tree of the store's database.
pub struct SledTable(sled::Tree);

impl SideTable for SledTable {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.0.get(key)?.map(|v| v.to_vec()))
    }

    fn insert(&self, key: &[u8], value: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.0.insert(key, value)?.map(|v| v.to_vec()))
    }

    fn remove(&self, key: &[u8]) -> Result<(), StoreError> {
        self.0.remove(key)?;
        Ok(())
    }

    fn insert_new(&self, key: &[u8], value: &[u8]) -> Result<Result<(), Vec<u8>>, StoreError> {
        Ok(self
            .0
            .compare_and_swap(key, None as Option<&[u8]>, Some(value))?
            .map_err(|e| e.current.map(|v| v.to_vec()).unwrap_or_default()))
    }

    fn scan(&self, from: &[u8], limit: usize) -> Result<Vec<Entry>, StoreError> {
        self.0
            .range(from..)
            .take(limit)
            .map(|r| {
                r.map(|(k, v)| (k.to_vec(), v.to_vec()))
                    .map_err(StoreError::from)
            })
            .collect()
    }

    fn last_at_or_before(&self, key: &[u8]) -> Result<Option<Entry>, StoreError> {
        Ok(self
            .0
            .range(..=key)
            .next_back()
            .transpose()?
            .map(|(k, v)| (k.to_vec(), v.to_vec())))
    }

    fn with_last_at_or_before(
        &self,
        key: &[u8],
        f: &mut crate::store::side_table::Visit<'_>,
    ) -> Result<bool, StoreError> {
        match self.0.range(..=key).next_back().transpose()? {
            Some((k, v)) => f(&k, &v).map(|_| true),
            None => Ok(false),
        }
    }

    fn apply(&self, changes: &[crate::store::side_table::Change]) -> Result<(), StoreError> {
        let mut batch = sled::Batch::default();
        for (k, v) in changes {
            match v {
                Some(v) => batch.insert(k.as_slice(), v.as_slice()),
                None => batch.remove(k.as_slice()),
            }
        }
        Ok(self.0.apply_batch(batch)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(pos: u64) -> Vec<u8> {
        // Any bytes not starting with the pack mark; a position to check.
        let mut r = vec![0x0a];
        r.extend_from_slice(&pos.to_be_bytes());
        r.resize(300, 0x55);
        r
    }

    fn new_record(pos: u64) -> NewRecord {
        NewRecord {
            position: pos,
            case_id: format!("c{}", pos % 3),
            case_version: pos,
            event_id: format!("e{pos}"),
            bytes: record(pos),
        }
    }

    #[test]
    fn a_table_lends_the_entry_at_or_before_a_key_as_it_copies_it() {
        let dir = tempfile::tempdir().unwrap();
        let log = SledLog::open(dir.path(), &SledOptions::default()).unwrap();
        let table = log.side_table("lend").unwrap();
        for k in [b"b".as_slice(), b"d", b"f"] {
            table.insert(k, &[k[0]; 3]).unwrap();
        }
        for key in [b"a".as_slice(), b"b", b"c", b"e", b"f", b"z"] {
            let copied = table.last_at_or_before(key).unwrap();
            let mut lent = None;
            let found = table
                .with_last_at_or_before(key, &mut |k, v| {
                    lent = Some((k.to_vec(), v.to_vec()));
                    Ok(())
                })
                .unwrap();
            assert_eq!(found, copied.is_some(), "{key:?}");
            assert_eq!(lent, copied, "{key:?}");
        }
        assert_eq!(table.last_at_or_before(b"a").unwrap(), None);
        assert_eq!(
            table.last_at_or_before(b"e").unwrap(),
            Some((b"d".to_vec(), b"ddd".to_vec()))
        );
    }

    #[test]
    fn a_cases_commits_extend_its_last_index_entry() {
        let dir = tempfile::tempdir().unwrap();
        let log = SledLog::open(dir.path(), &SledOptions::default()).unwrap();
        // Case "a" takes 100 commits of one event each, between which
        // case "b" commits too (so no two of "a"'s runs are adjacent),
        // then a commit of two events of "a" at adjacent positions.
        let mut pos = 0;
        let mut want_a = Vec::new();
        let rec = |case: &str, version: u64, position: u64| NewRecord {
            position,
            case_id: case.into(),
            case_version: version,
            event_id: format!("e{position}"),
            bytes: record(position),
        };
        for v in 1..=100 {
            pos += 1;
            want_a.push((v, pos));
            let a = rec("a", v, pos);
            pos += 1;
            let b = rec("b", v, pos);
            log.write_durable(&[a, b], &[]).unwrap();
        }
        let two = [rec("a", 101, pos + 1), rec("a", 102, pos + 2)];
        want_a.extend([(101, pos + 1), (102, pos + 2)]);
        log.write_durable(&two, &[]).unwrap();
        // 101 runs of "a": four entries of at most 32, not 101 keys.
        let entries = log.db.scan_prefix(keys::case_prefix("a")).count();
        assert_eq!(entries, 4);
        assert_eq!(
            log.case_positions("a", 1, false, usize::MAX).unwrap(),
            want_a
        );
        for from in [1, 31, 32, 33, 64, 65, 100, 101, 102] {
            let forward = log.case_positions("a", from, false, 5).unwrap();
            let want: Vec<_> = want_a
                .iter()
                .copied()
                .filter(|(v, _)| *v >= from)
                .take(5)
                .collect();
            assert_eq!(forward, want, "forward from {from}");
            let backward = log.case_positions("a", from, true, 5).unwrap();
            let want: Vec<_> = want_a
                .iter()
                .rev()
                .copied()
                .filter(|(v, _)| *v <= from)
                .take(5)
                .collect();
            assert_eq!(backward, want, "backward from {from}");
        }
        assert_eq!(
            log.case_positions("a", 0, true, 1).unwrap(),
            vec![(102, pos + 2)]
        );
        assert_eq!(
            log.case_positions("b", 1, false, usize::MAX).unwrap().len(),
            100
        );
        // A one-run entry is byte for byte what stores before chunked
        // entries wrote for every run; it is extended like any other.
        log.write_durable(&[rec("c", 1, pos + 3)], &[]).unwrap();
        assert_eq!(
            log.db.get(keys::case_key("c", 1)).unwrap().unwrap(),
            keys::case_run(pos + 3, 1)[..]
        );
        log.write_durable(&[rec("c", 2, pos + 4), rec("c", 3, pos + 5)], &[])
            .unwrap();
        assert_eq!(log.db.scan_prefix(keys::case_prefix("c")).count(), 1);
        assert_eq!(
            log.case_positions("c", 1, false, 9).unwrap(),
            vec![(1, pos + 3), (2, pos + 4), (3, pos + 5)]
        );
    }

    #[test]
    fn packed_records_read_by_position_range_and_head() {
        let dir = tempfile::tempdir().unwrap();
        let log = SledLog::open(dir.path(), &SledOptions::default()).unwrap();
        assert_eq!(log.head().unwrap(), 0);
        let first: Vec<_> = (1..=70).map(new_record).collect();
        log.write_durable(&first, &[]).unwrap();
        let second: Vec<_> = (71..=75).map(new_record).collect();
        log.write_durable(&second, &[]).unwrap();
        assert_eq!(log.head().unwrap(), 75);
        // Fewer values than records.
        assert!(log.db.scan_prefix([keys::LOG]).count() < 20);
        for pos in [1, 2, 31, 32, 33, 70, 71, 75] {
            assert_eq!(log.read(pos).unwrap(), Some(record(pos)), "{pos}");
        }
        assert_eq!(log.read(0).unwrap(), None);
        assert_eq!(log.read(76).unwrap(), None);
        for from in [0, 1, 17, 69, 70, 71, 75] {
            let got = log.read_range(from, 1000).unwrap();
            let want: Vec<_> = (from.max(1)..=75)
                .map(|p| (p, Bytes::from(record(p))))
                .collect();
            assert_eq!(got, want, "from {from}");
        }
        let got = log.read_range(30, 5).unwrap();
        assert_eq!(
            got.iter().map(|(p, _)| *p).collect::<Vec<_>>(),
            [30, 31, 32, 33, 34]
        );
        assert!(log.read_range(76, 10).unwrap().is_empty());
        assert!(log.read_range(1, 0).unwrap().is_empty());
    }

    fn hash_of(index: u64) -> [u8; 32] {
        let mut h = [0u8; 32];
        h[..8].copy_from_slice(&index.to_be_bytes());
        h[31] = 0xee;
        h
    }

    #[test]
    fn large_commits_store_their_tree_hashes_in_small_values_and_no_blob() {
        let dir = tempfile::tempdir().unwrap();
        let log = SledLog::open(dir.path(), &SledOptions::default()).unwrap();
        // As a commit of batched appends: 800 records, two tree hashes each.
        let mut position = 1;
        for _ in 0..24 {
            let records: Vec<_> = (position..position + 800).map(new_record).collect();
            let tree: Vec<_> = (2 * (position - 1)..2 * (position + 799))
                .map(|i| (i, hash_of(i)))
                .collect();
            log.write_durable(&records, &tree).unwrap();
            position += 800;
        }
        let hashes = 2 * (position - 1);
        for v in log.db.scan_prefix([keys::TREE]).values() {
            assert!(v.unwrap().len() <= pack::MAX_BYTES);
        }
        let all: Vec<u64> = (0..hashes).collect();
        let want: Vec<_> = all.iter().map(|&i| hash_of(i)).collect();
        assert_eq!(log.tree_hashes(&all).unwrap(), want);
        assert_eq!(log.last_tree_index().unwrap(), Some(hashes - 1));
        // A sled leaf of such values stays below sled's blob threshold: a
        // blob is a file of its own to write and sync with each commit.
        let blobs = std::fs::read_dir(dir.path().join("blobs")).map_or(0, |d| d.count());
        assert_eq!(blobs, 0, "sled wrote blob files");

        // A store written with one value per commit reads as before.
        let old: Vec<u8> = (hashes..hashes + 1_000).flat_map(hash_of).collect();
        log.db.insert(keys::tree_key(hashes), old).unwrap();
        let more: Vec<u64> = (hashes - 3..hashes + 1_000).collect();
        let want: Vec<_> = more.iter().map(|&i| hash_of(i)).collect();
        assert_eq!(log.tree_hashes(&more).unwrap(), want);
        assert_eq!(log.last_tree_index().unwrap(), Some(hashes + 999));
        assert!(log.tree_hashes(&[hashes + 1_000]).is_err());
    }

    #[test]
    fn a_store_of_one_record_per_value_reads_as_before_and_grows_in_packs() {
        let dir = tempfile::tempdir().unwrap();
        let log = SledLog::open(dir.path(), &SledOptions::default()).unwrap();
        // As stores written before packs hold them: one bare record per key.
        for pos in 1..=3 {
            log.db.insert(keys::log_key(pos), record(pos)).unwrap();
        }
        assert_eq!(log.head().unwrap(), 3);
        let more: Vec<_> = (4..=8).map(new_record).collect();
        log.write_durable(&more, &[]).unwrap();
        assert_eq!(log.head().unwrap(), 8);
        assert_eq!(log.read(2).unwrap(), Some(record(2)));
        assert_eq!(log.read(6).unwrap(), Some(record(6)));
        let got = log.read_range(2, 100).unwrap();
        assert_eq!(
            got,
            (2..=8)
                .map(|p| (p, Bytes::from(record(p))))
                .collect::<Vec<_>>()
        );
    }

    #[test]
    fn tampering_with_a_packed_record_leaves_its_neighbours_in_place() {
        let dir = tempfile::tempdir().unwrap();
        let log = SledLog::open(dir.path(), &SledOptions::default()).unwrap();
        let rs: Vec<_> = (1..=10).map(new_record).collect();
        log.write_durable(&rs, &[]).unwrap();
        log.tamper_record(5, Some(vec![1, 2, 3])).unwrap();
        assert_eq!(log.read(5).unwrap(), Some(vec![1, 2, 3]));
        log.tamper_record(7, None).unwrap();
        let got: Vec<u64> = log
            .read_range(1, 100)
            .unwrap()
            .iter()
            .map(|(p, _)| *p)
            .collect();
        assert_eq!(got, [1, 2, 3, 4, 5, 6, 8, 9, 10]);
        assert_eq!(log.read(8).unwrap(), Some(record(8)));
        assert_eq!(log.head().unwrap(), 10);
        log.tamper_record(10, None).unwrap();
        assert_eq!(log.head().unwrap(), 9);
    }

    /// A record as the ledger stores it, as far as the index reads it.
    fn enveloped(pos: u64) -> NewRecord {
        use prost::Message;
        let bytes = crate::proto::v1::StoredRecord {
            position: pos,
            event_id: format!("e{pos}"),
            ..Default::default()
        }
        .encode_to_vec();
        NewRecord {
            position: pos,
            case_id: format!("c{}", pos % 3),
            case_version: pos,
            event_id: format!("e{pos}"),
            bytes,
        }
    }

    fn open_with_runs_of(dir: &Path, run_len: usize) -> SledLog {
        let opts = SledOptions {
            id_run_len: run_len,
            ..SledOptions::default()
        };
        SledLog::open(dir, &opts).unwrap()
    }

    fn all_found(log: &SledLog, through: u64) {
        for pos in 1..=through {
            assert_eq!(
                log.event_position(&format!("e{pos}")).unwrap(),
                Some(pos),
                "e{pos}"
            );
        }
        assert_eq!(
            log.event_position(&format!("e{}", through + 1)).unwrap(),
            None
        );
        assert_eq!(log.event_position("never-stored").unwrap(), None);
    }

    #[test]
    fn event_ids_are_found_at_once_in_runs_and_after_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        {
            let log = open_with_runs_of(dir.path(), 8);
            let mut next = 1;
            for size in [7u64, 1, 9, 20, 3, 30, 30] {
                let rs: Vec<_> = (next..next + size).map(enveloped).collect();
                log.write_durable(&rs, &[]).unwrap();
                next += size;
                all_found(&log, next - 1);
            }
            // 100 events: runs of equal size merged (a binary counter), the
            // events since the last run in memory.
            let (runs, in_runs, recent) = log.event_index.counts();
            assert_eq!(in_runs + recent, 100);
            assert!(recent < 30, "{recent}");
            assert!((1..=4).contains(&runs), "{runs}");
            log.close().unwrap();
        }
        let log = open_with_runs_of(dir.path(), 8);
        all_found(&log, 100);
        assert_eq!(log.event_index.counts().1 + log.event_index.counts().2, 100);
        // Old format on disk: no per-event entries are written any more.
        assert_eq!(log.db.scan_prefix([keys::EVENT]).count(), 0);
    }

    fn open_without_tier_merges(dir: &Path, run_len: usize) -> SledLog {
        let opts = SledOptions {
            id_run_len: run_len,
            id_tier_merges: false,
            ..SledOptions::default()
        };
        SledLog::open(dir, &opts).unwrap()
    }

    /// Waits until the background merges have nothing left to do.
    fn tiers_settled(log: &SledLog) -> usize {
        let started = std::time::Instant::now();
        loop {
            let runs = log.event_index.runs();
            let markers = log.db.scan_prefix([keys::ID_MERGING]).count()
                + log.db.scan_prefix([keys::ID_DROPPING]).count();
            if markers == 0 && !log.event_index.tier_merge_due() {
                return runs;
            }
            assert!(
                started.elapsed() < std::time::Duration::from_secs(30),
                "merges did not settle: {runs} runs, {markers} markers"
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }

    /// Every `J` and `B` key belongs to a run of the directory.
    fn only_stored_runs_on_disk(log: &SledLog) {
        let stored: std::collections::HashSet<(u64, u64)> = log
            .db
            .scan_prefix([keys::ID_RUN_ENTRY])
            .keys()
            .map(|k| keys::parse_id_run_entry(&k.unwrap()).unwrap())
            .collect();
        for prefix in [keys::ID_CHUNK, keys::ID_FILTER] {
            for k in log.db.scan_prefix([prefix]).keys() {
                let k = k.unwrap();
                let span = keys::parse_id_span(prefix, &k[..17]).unwrap();
                assert!(
                    stored.contains(&span),
                    "{} key of run {span:?}",
                    prefix as char
                );
            }
        }
    }

    #[test]
    fn full_runs_merge_by_tiers_and_every_id_stays_found() {
        let dir = tempfile::tempdir().unwrap();
        {
            // Runs of 4 events are full at 16: tiers of 16, 64, 256 and
            // 1,024 events.
            let log = open_with_runs_of(dir.path(), 4);
            let mut next = 1;
            while next <= 3_000 {
                let rs: Vec<_> = (next..next + 7).map(enveloped).collect();
                log.write_durable(&rs, &[]).unwrap();
                next += 7;
                if next % 700 == 1 {
                    all_found(&log, next - 1);
                }
            }
            let runs = tiers_settled(&log);
            // Without the merges: 3,003 / 16 = 187 full runs. With them:
            // two of 1,024, at most three of each lower tier, and the
            // writer's runs below 16.
            assert!(runs <= 2 + 3 * 3 + 4, "{runs} runs");
            all_found(&log, 3_003);
            only_stored_runs_on_disk(&log);
            log.close().unwrap();
        }
        let log = open_with_runs_of(dir.path(), 4);
        tiers_settled(&log);
        all_found(&log, 3_003);
        only_stored_runs_on_disk(&log);
    }

    #[test]
    fn what_an_interrupted_merge_left_is_deleted_before_merging() {
        let dir = tempfile::tempdir().unwrap();
        {
            let log = open_without_tier_merges(dir.path(), 4);
            let rs: Vec<_> = (1..=200).map(enveloped).collect();
            for chunk in rs.chunks(10) {
                log.write_durable(chunk, &[]).unwrap();
            }
            assert!(log.event_index.runs() >= 8);
            // A crash in a merge of the first four runs, before its switch:
            // the marker and some values of the new run.
            log.db.insert(keys::id_merging(1, 64), &[][..]).unwrap();
            let bogus: Vec<u8> = [7u64.to_be_bytes(), 1u64.to_be_bytes()].concat();
            log.db
                .insert(&keys::id_chunk_key(1, 64, 7, 0)[..], bogus.clone())
                .unwrap();
            // And one after a switch: a run taken out of the directory,
            // its values not yet deleted.
            log.db.insert(keys::id_dropping(500, 515), &[][..]).unwrap();
            log.db
                .insert(&keys::id_chunk_key(500, 515, 7, 0)[..], bogus)
                .unwrap();
            log.db
                .insert(&keys::id_filter_key(500, 515, 0)[..], &[1u8][..])
                .unwrap();
            log.close().unwrap();
        }
        let log = open_with_runs_of(dir.path(), 4);
        tiers_settled(&log);
        only_stored_runs_on_disk(&log);
        all_found(&log, 200);
        assert!(log.event_index.runs() < 8);
    }

    #[test]
    fn runs_of_uneven_sizes_still_merge_up_to_the_limit() {
        let dir = tempfile::tempdir().unwrap();
        let log = open_without_tier_merges(dir.path(), 8);
        // Commits overshoot the run length by amounts that shrink: each run
        // a little smaller than the one before it.
        let mut next = 1;
        for size in (10..=30u64).rev() {
            let rs: Vec<_> = (next..next + size).map(enveloped).collect();
            log.write_durable(&rs, &[]).unwrap();
            next += size;
        }
        let (runs, in_runs, recent) = log.event_index.counts();
        assert_eq!(in_runs + recent, 420);
        // 21 runs stored and merged, but none past 4 × 8 events (plus the
        // overshoot of one merge): more than 420 / 64 of them.
        assert!((7..=16).contains(&runs), "{runs} runs");
        all_found(&log, 420);
    }

    #[test]
    fn a_run_lost_in_a_crash_is_indexed_again_from_the_log() {
        let dir = tempfile::tempdir().unwrap();
        {
            let log = open_with_runs_of(dir.path(), 8);
            for start in (1..=40).step_by(10) {
                let rs: Vec<_> = (start..start + 10).map(enveloped).collect();
                log.write_durable(&rs, &[]).unwrap();
            }
            log.close().unwrap();
            // As after a crash before the last run's batch was durable.
            let last = log
                .db
                .scan_prefix([keys::ID_RUN_ENTRY])
                .keys()
                .last()
                .unwrap()
                .unwrap();
            let (first, end) = keys::parse_id_run_entry(&last).unwrap();
            for k in log.db.scan_prefix(keys::id_chunk_prefix(first, end)).keys() {
                log.db.remove(k.unwrap()).unwrap();
            }
            log.db.remove(last).unwrap();
            assert!(end >= first);
            log.db.flush().unwrap();
        }
        let log = open_with_runs_of(dir.path(), 8);
        all_found(&log, 40);
    }

    /// A store whose runs are in the layout before they stayed on disk
    /// (`I` keys by value number) is rewritten at open, and every id is
    /// found; a run's filter lost or damaged is built again from the run.
    #[test]
    fn runs_of_the_earlier_layout_are_rewritten_and_a_lost_filter_rebuilt() {
        let dir = tempfile::tempdir().unwrap();
        {
            let log = open_with_runs_of(dir.path(), 8);
            for start in (1..=60).step_by(10) {
                let rs: Vec<_> = (start..start + 10).map(enveloped).collect();
                log.write_durable(&rs, &[]).unwrap();
            }
            log.close().unwrap();
            let entries: Vec<_> = log.db.scan_prefix([keys::ID_RUN_ENTRY]).keys().collect();
            assert!(entries.len() > 1);
            for entry in entries {
                let entry = entry.unwrap();
                let (first, last) = keys::parse_id_run_entry(&entry).unwrap();
                let mut pairs = Vec::new();
                for item in log.db.scan_prefix(keys::id_chunk_prefix(first, last)) {
                    let (k, v) = item.unwrap();
                    pairs.extend_from_slice(&v);
                    log.db.remove(k).unwrap();
                }
                log.db.remove(entry).unwrap();
                for k in log
                    .db
                    .scan_prefix(keys::id_filter_prefix(first, last))
                    .keys()
                {
                    log.db.remove(k.unwrap()).unwrap();
                }
                for (i, value) in pairs.chunks(16 * 3).enumerate() {
                    let k = keys::id_run_key(first, last, i as u32);
                    log.db.insert(&k[..], value).unwrap();
                }
            }
            log.db.flush().unwrap();
        }
        let (first, last) = {
            let log = open_with_runs_of(dir.path(), 8);
            all_found(&log, 60);
            assert_eq!(log.db.scan_prefix([keys::ID_RUN]).count(), 0);
            let entries = log.db.scan_prefix([keys::ID_RUN_ENTRY]).count();
            assert!(entries > 1);
            assert!(log.db.scan_prefix([keys::ID_FILTER]).count() >= entries);
            // One run's filter damaged, another's lost.
            let mut filters = log.db.scan_prefix([keys::ID_FILTER]).keys();
            let k = filters.next().unwrap().unwrap();
            let mut damaged = log.db.get(&k).unwrap().unwrap().to_vec();
            damaged[5] ^= 1;
            log.db.insert(&k, damaged).unwrap();
            let lost = filters
                .map(|k| k.unwrap())
                .find(|other| other[..17] != k[..17])
                .unwrap();
            for part in log.db.scan_prefix(&lost[..17]).keys() {
                log.db.remove(part.unwrap()).unwrap();
            }
            log.close().unwrap();
            let first = u64::from_be_bytes(k[1..9].try_into().unwrap());
            let last = u64::from_be_bytes(k[9..17].try_into().unwrap());
            (first, last)
        };
        let log = open_with_runs_of(dir.path(), 8);
        all_found(&log, 60);
        let stored: Vec<u8> = log
            .db
            .scan_prefix(keys::id_filter_prefix(first, last))
            .flat_map(|part| part.unwrap().1.to_vec())
            .collect();
        assert!(super::super::event_filter::RunFilter::decode(&stored).is_some());
    }

    #[test]
    fn a_run_that_cannot_be_stored_loses_no_id_and_is_stored_later() {
        let dir = tempfile::tempdir().unwrap();
        let log = open_with_runs_of(dir.path(), 8);
        log.write_durable(&(1..=6).map(enveloped).collect::<Vec<_>>(), &[])
            .unwrap();
        log.event_index.fail_next_seal();
        // This commit reaches the run length; storing the run fails, the
        // commit does not, and every id is still found.
        log.write_durable(&(7..=12).map(enveloped).collect::<Vec<_>>(), &[])
            .unwrap();
        assert_eq!(log.event_index.counts(), (0, 0, 12));
        all_found(&log, 12);
        log.write_durable(&[enveloped(13)], &[]).unwrap();
        assert_eq!(log.event_index.counts(), (1, 13, 0));
        all_found(&log, 13);
    }

    #[test]
    fn a_hash_is_only_a_candidate_the_record_decides() {
        let dir = tempfile::tempdir().unwrap();
        let log = open_with_runs_of(dir.path(), 8);
        let rs: Vec<_> = (1..=5).map(enveloped).collect();
        log.write_durable(&rs, &[]).unwrap();
        // As if "ghost" hashed like the event at position 3.
        log.event_index.add(&[(id_hash("ghost"), 3)]);
        assert_eq!(log.event_position("ghost").unwrap(), None);
        assert_eq!(log.event_position("e3").unwrap(), Some(3));
    }

    #[test]
    fn two_events_whose_ids_hash_alike_are_both_candidates_before_and_after_a_run() {
        let dir = tempfile::tempdir().unwrap();
        let log = open_with_runs_of(dir.path(), 8);
        let rs: Vec<_> = (1..=5).map(enveloped).collect();
        log.write_durable(&rs, &[]).unwrap();
        // As if the event at position 5 had an id hashing like e2's.
        log.event_index.add(&[(id_hash("e2"), 5)]);
        assert_eq!(log.event_index.candidates("e2").unwrap(), [2, 5]);
        assert_eq!(log.event_index.counts(), (0, 0, 6));
        // A pair given again is kept once, as in a set.
        log.event_index
            .add(&[(id_hash("e2"), 5), (id_hash("e3"), 3), (id_hash("e2"), 2)]);
        assert_eq!(log.event_index.candidates("e2").unwrap(), [2, 5]);
        assert_eq!(log.event_index.counts(), (0, 0, 6));
        assert_eq!(log.event_position("e2").unwrap(), Some(2));
        // Sealed into a run with the next commit (one run of positions
        // 1..=9, its ten pairs stored): both, in order.
        let more: Vec<_> = (6..=9).map(enveloped).collect();
        log.write_durable(&more, &[]).unwrap();
        assert_eq!(log.event_index.counts(), (1, 9, 0));
        assert_eq!(log.event_index.candidates("e2").unwrap(), [2, 5]);
        assert_eq!(log.event_position("e2").unwrap(), Some(2));
        assert_eq!(log.event_position("e5").unwrap(), Some(5));
        assert_eq!(log.event_position("e9").unwrap(), Some(9));
    }

    #[test]
    fn an_index_past_the_log_or_with_a_gap_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        {
            let log = open_with_runs_of(dir.path(), 4);
            let rs: Vec<_> = (1..=12).map(enveloped).collect();
            log.write_durable(&rs, &[]).unwrap();
            log.close().unwrap();
            // A run beyond the last record: records removed from the end.
            log.db
                .insert(&keys::id_run_entry(13, 13)[..], &[][..])
                .unwrap();
            log.db.flush().unwrap();
        }
        let e = SledLog::open(dir.path(), &SledOptions::default())
            .err()
            .expect("refused")
            .to_string();
        assert!(e.contains("past the last record"), "{e}");
        {
            let log = sled::open(dir.path()).unwrap();
            log.remove(&keys::id_run_entry(13, 13)[..]).unwrap();
            log.insert(&keys::id_run_entry(20, 21)[..], &[][..])
                .unwrap();
            log.flush().unwrap();
        }
        let e = SledLog::open(dir.path(), &SledOptions::default())
            .err()
            .expect("refused")
            .to_string();
        assert!(e.contains("does not follow"), "{e}");
    }

    #[test]
    fn overlapping_packs_are_reported_as_corruption() {
        let dir = tempfile::tempdir().unwrap();
        let log = SledLog::open(dir.path(), &SledOptions::default()).unwrap();
        let rs: Vec<_> = (1..=4).map(new_record).collect();
        log.write_durable(&rs, &[]).unwrap();
        log.db
            .insert(keys::log_key(2), pack::encode([record(2).as_slice()]))
            .unwrap();
        let e = log.read_range(1, 100).unwrap_err().to_string();
        assert!(e.contains("stored twice"), "{e}");
    }
}
