//! The durable sync that sled 0.34 does not do.
//!
//! `sled::Db::flush` writes its buffers and calls `sync_file_range`, which
//! neither flushes the drive's cache nor the file's metadata, so a power cut
//! can lose "flushed" data (spacejam/sled#1452, #1351). Blob files (values too
//! big for a log segment) are never synced at all. After every flush the
//! writer therefore calls [`Syncer::sync`]: `fdatasync` on sled's log file
//! through our own handle (a sync covers the inode, whichever descriptor
//! wrote), and `fsync` on any new blob files and their directory. sled makes
//! a blob of any page larger than a quarter of a log segment (128 KiB with
//! the default 512 KiB segments); with records of at most 96 KiB that is rare,
//! so the blob step normally finds nothing. (Larger segments would make blobs
//! rarer still, but they multiply sled's memory: 8 MiB segments held 2.5 GB
//! resident at 250,000 events where 512 KiB held 0.4 GB — see BENCHMARKS.md.)

use std::collections::HashSet;
use std::fs::File;
use std::path::{Path, PathBuf};

pub struct Syncer {
    db_file: File,
    blobs_dir: PathBuf,
    synced_blobs: HashSet<std::ffi::OsString>,
}

impl Syncer {
    /// Opens sled's log file `<dir>/db` for syncing.
    pub fn open(dir: &Path) -> std::io::Result<Self> {
        let db_file = File::open(dir.join("db"))?;
        let blobs_dir = dir.join("blobs");
        let mut synced_blobs = HashSet::new();
        if let Ok(rd) = std::fs::read_dir(&blobs_dir) {
            for e in rd.flatten() {
                synced_blobs.insert(e.file_name());
            }
        }
        Ok(Self {
            db_file,
            blobs_dir,
            synced_blobs,
        })
    }

    /// Makes everything sled has flushed durable.
    pub fn sync(&mut self) -> std::io::Result<()> {
        self.db_file.sync_data()?;
        let mut new_blob = false;
        if let Ok(rd) = std::fs::read_dir(&self.blobs_dir) {
            for e in rd.flatten() {
                let name = e.file_name();
                if !self.synced_blobs.contains(&name) {
                    match File::open(e.path()) {
                        Ok(f) => f.sync_all()?,
                        // Removed by sled since the listing (a blob it
                        // replaced): nothing of it is needed any more.
                        Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                        Err(e) => return Err(e),
                    }
                    self.synced_blobs.insert(name);
                    new_blob = true;
                }
            }
        }
        if new_blob {
            File::open(&self.blobs_dir)?.sync_all()?;
        }
        Ok(())
    }
}
