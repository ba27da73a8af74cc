//! The event log on sled: one tree, one atomic batch per group commit, and a
//! real `fdatasync` after sled's flush (see [`super::durability`]).

use super::durability::Syncer;
use super::keys::{self, trailing_u64};
use super::{EventLog, NewRecord, StoreError};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// Tuning of the sled engine.
#[derive(Debug, Clone)]
pub struct SledOptions {
    /// Page cache size in bytes.
    pub cache_capacity: u64,
}

impl Default for SledOptions {
    fn default() -> Self {
        Self {
            cache_capacity: 64 * 1024 * 1024,
        }
    }
}

pub struct SledLog {
    db: sled::Db,
    dir: PathBuf,
    syncer: Mutex<Syncer>,
}

impl SledLog {
    /// Opens (or creates) the log in `dir`. Fails if another process has it.
    pub fn open(dir: &Path, opts: &SledOptions) -> Result<Self, StoreError> {
        std::fs::create_dir_all(dir)?;
        let config = sled::Config::new()
            .path(dir)
            .cache_capacity(opts.cache_capacity)
            .mode(sled::Mode::HighThroughput)
            .flush_every_ms(None);
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
                other => break other?,
            }
        };
        // Make the creation of a new store itself durable.
        db.flush()?;
        let mut syncer = Syncer::open(dir)?;
        syncer.sync()?;
        if let Ok(d) = std::fs::File::open(dir) {
            d.sync_all()?;
        }
        Ok(Self {
            db,
            dir: dir.to_path_buf(),
            syncer: Mutex::new(syncer),
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

    /// A side tree of the same database (keys, access log): written with the
    /// log's own durability, never part of the hashed log.
    pub fn side_tree(&self, name: &str) -> Result<sled::Tree, StoreError> {
        Ok(self.db.open_tree(name)?)
    }

    /// Makes everything written so far durable (flush, then fdatasync).
    pub fn sync(&self) -> Result<(), StoreError> {
        self.close()
    }

    /// Low-level access for tests that damage a store on purpose.
    #[doc(hidden)]
    pub fn raw(&self) -> &sled::Db {
        &self.db
    }
}

impl EventLog for SledLog {
    fn head(&self) -> Result<u64, StoreError> {
        let last = self.db.scan_prefix([keys::LOG]).next_back().transpose()?;
        Ok(last.and_then(|(k, _)| trailing_u64(&k)).unwrap_or(0))
    }

    fn write_durable(
        &self,
        records: &[NewRecord],
        tree: &[(u64, [u8; 32])],
    ) -> Result<(), StoreError> {
        let mut batch = sled::Batch::default();
        // The tree hashes of one commit have contiguous indexes: one value.
        let mut runs: Vec<(u64, Vec<u8>)> = Vec::new();
        for (index, hash) in tree {
            match runs.last_mut() {
                Some((start, bytes)) if *start + (bytes.len() / 32) as u64 == *index => {
                    bytes.extend_from_slice(hash)
                }
                _ => runs.push((*index, hash.to_vec())),
            }
        }
        for (start, bytes) in runs {
            batch.insert(&keys::tree_key(start)[..], bytes);
        }
        // Case index: one entry per run of consecutive versions stored at
        // consecutive positions (a request's events, or adjacent requests).
        let mut runs: Vec<(&str, u64, u64, u32)> = Vec::new();
        for r in records {
            match runs.last_mut() {
                Some((case, v0, p0, n))
                    if *case == r.case_id
                        && *v0 + u64::from(*n) == r.case_version
                        && *p0 + u64::from(*n) == r.position =>
                {
                    *n += 1
                }
                _ => runs.push((r.case_id.as_str(), r.case_version, r.position, 1)),
            }
        }
        for (case, v0, p0, n) in runs {
            batch.insert(keys::case_key(case, v0), &keys::case_run(p0, n)[..]);
        }
        for r in records {
            let pos = r.position.to_be_bytes();
            batch.insert(&keys::log_key(r.position)[..], r.bytes.as_slice());
            batch.insert(keys::event_key(&r.event_id), &pos[..]);
        }
        self.db.apply_batch(batch)?;
        self.db.flush()?;
        self.syncer.lock().expect("syncer lock").sync()?;
        Ok(())
    }

    fn read(&self, position: u64) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.db.get(keys::log_key(position))?.map(|v| v.to_vec()))
    }

    fn read_range(&self, from: u64, limit: usize) -> Result<Vec<(u64, Vec<u8>)>, StoreError> {
        let mut out = Vec::with_capacity(limit.min(4096));
        for item in self
            .db
            .range(keys::log_key(from.max(1))..=keys::log_key(u64::MAX))
            .take(limit)
        {
            let (k, v) = item?;
            let pos = trailing_u64(&k).ok_or_else(|| StoreError::Corrupt("bad log key".into()))?;
            out.push((pos, v.to_vec()));
        }
        Ok(out)
    }

    fn case_positions(
        &self,
        case_id: &str,
        from_version: u64,
        backwards: bool,
        limit: usize,
    ) -> Result<Vec<(u64, u64)>, StoreError> {
        let run =
            |item: sled::Result<(sled::IVec, sled::IVec)>| -> Result<(u64, u64, u64), StoreError> {
                let (k, v) = item?;
                match (trailing_u64(&k), keys::parse_case_run(&v)) {
                    (Some(version), Some((position, count))) => Ok((version, position, count)),
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
                let (v0, p0, count) = run(item)?;
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
                let (v0, p0, count) = run(item)?;
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
        Ok(self
            .db
            .get(keys::event_key(event_id))?
            .and_then(|v| trailing_u64(&v)))
    }
}
