//! The integrity witness: the acknowledged head of the ledger, kept in a
//! small file beside the store it guards and made durable before any
//! append or reveal is answered.
//!
//! Why: sled's recovery stops at the first damaged segment and keeps what
//! came before, and the Merkle hashes live in the same store, so a store
//! that lost its tail verifies as a shorter, consistent log. The witness
//! remembers what was acknowledged — log size and root, the PII-access
//! log's length and last hash, and the public key checkpoints are signed
//! with — so a store that comes back shorter, with another root, with a
//! shorter access log, or under another signing key is refused, naming the
//! last acknowledged position.
//!
//! Format: two copies ("slots") of 512 bytes at offsets 0 and 512, each
//! `magic ‖ sequence ‖ size ‖ root ‖ access count ‖ access head ‖ public
//! key ‖ SHA-256 of all before it`, zero-padded. Commit `n` overwrites slot
//! `n mod 2` and syncs (`fdatasync`), after the store's own sync: the witness
//! never gets ahead of the store, so a crash at any moment leaves a witness
//! at or behind what the store holds. A torn or damaged slot leaves the
//! other one, at most one commit older and still at or behind the store;
//! reading falls back to it and says so. Both unreadable, or the file
//! missing beside a store that holds records, is refused. Two slots rather
//! than an append-only file: the witness needs only the latest head, and a
//! file that grew by one entry per group commit would grow without bound.
//!
//! On a clustered node the store is a copy written behind the stream,
//! which holds every acknowledged record: there the witness may be ahead of
//! the copy after a crash, and the start fetches the missing records back
//! from the stream before it checks the root (`ledger::restore`). A store of
//! its own has nowhere to fetch from: a witness ahead of it is damage.
//!
//! What it cannot protect against: someone who rewrites both the store and
//! the witness (they sit in one directory). Auditors' kept checkpoints
//! (`verify --since`) catch that; see the README's guarantees.

use sha2::{Digest, Sha256};
use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};

/// The witness file's name in the data directory.
pub const FILE_NAME: &str = "witness";

const MAGIC: &[u8; 8] = b"CLWIT001";
const SLOT: usize = 512;
/// Bytes of a slot covered by its checksum.
const BODY: usize = 8 + 8 + 8 + 32 + 8 + 32 + 32;
const USED: usize = BODY + 32;

/// One acknowledged head.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Head {
    /// Group commits witnessed so far (the slot is `sequence mod 2`).
    pub sequence: u64,
    /// Records acknowledged: the log's size.
    pub size: u64,
    /// The Merkle root of the log at `size`.
    pub root: [u8; 32],
    /// Entries in the PII-access log.
    pub access_count: u64,
    /// Hash of the last PII-access log entry (zeros when there is none).
    pub access_head: [u8; 32],
    /// The public key the ledger signs its checkpoints with.
    pub signing_key: [u8; 32],
}

impl Head {
    fn encode(&self) -> [u8; SLOT] {
        let mut b = [0u8; SLOT];
        let mut at = 0;
        let mut put = |bytes: &[u8]| {
            b[at..at + bytes.len()].copy_from_slice(bytes);
            at += bytes.len();
        };
        put(MAGIC);
        put(&self.sequence.to_be_bytes());
        put(&self.size.to_be_bytes());
        put(&self.root);
        put(&self.access_count.to_be_bytes());
        put(&self.access_head);
        put(&self.signing_key);
        let sum = Sha256::digest(&b[..BODY]);
        b[BODY..USED].copy_from_slice(&sum);
        b
    }

    fn decode(b: &[u8]) -> Option<Self> {
        if b.len() < USED || &b[..8] != MAGIC {
            return None;
        }
        if Sha256::digest(&b[..BODY]).as_slice() != &b[BODY..USED] {
            return None;
        }
        let u64_at = |at: usize| u64::from_be_bytes(b[at..at + 8].try_into().expect("8 bytes"));
        let h32 = |at: usize| -> [u8; 32] { b[at..at + 32].try_into().expect("32 bytes") };
        Some(Self {
            sequence: u64_at(8),
            size: u64_at(16),
            root: h32(24),
            access_count: u64_at(56),
            access_head: h32(64),
            signing_key: h32(96),
        })
    }
}

/// Why the witness cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WitnessError {
    #[error("the integrity witness {0} is missing")]
    Missing(PathBuf),
    #[error("the integrity witness {path} is damaged: {problem}")]
    Damaged { path: PathBuf, problem: String },
    #[error("the integrity witness {path} cannot be read or written: {problem}")]
    Io { path: PathBuf, problem: String },
}

/// What reading the witness found.
#[derive(Debug, Clone)]
pub struct Read {
    pub head: Head,
    /// A copy that could not be used (torn by a crash, or damaged), if any:
    /// the other copy, at most one commit older, was read instead.
    pub fallback: Option<String>,
}

/// The witness file, open for writing.
pub struct Witness {
    path: PathBuf,
    file: File,
    last: Head,
}

impl Witness {
    /// The witness's path in a data directory.
    pub fn path_in(dir: &Path) -> PathBuf {
        dir.join(FILE_NAME)
    }

    /// Reads the witness of a data directory (nothing is written).
    pub fn read(dir: &Path) -> Result<Read, WitnessError> {
        let path = Self::path_in(dir);
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(WitnessError::Missing(path))
            }
            Err(e) => {
                return Err(WitnessError::Io {
                    path,
                    problem: e.to_string(),
                })
            }
        };
        let slot = |i: usize| bytes.get(i * SLOT..).and_then(Head::decode);
        let damaged = |problem: String| WitnessError::Damaged {
            path: path.clone(),
            problem,
        };
        let why = |i: usize| {
            if bytes.len() < i * SLOT + USED {
                format!(
                    "copy {} is cut short (the file has {} bytes)",
                    i + 1,
                    bytes.len()
                )
            } else {
                format!("copy {} fails its checksum", i + 1)
            }
        };
        let (head, fallback) = match (slot(0), slot(1)) {
            (None, None) => {
                return Err(damaged(format!(
                    "neither copy of the acknowledged head is readable ({}; {})",
                    why(0),
                    why(1)
                )))
            }
            (Some(a), None) => (a, Some(why(1))),
            (None, Some(b)) => (b, Some(why(0))),
            (Some(a), Some(b)) => {
                let (new, old) = if a.sequence > b.sequence {
                    (a, b)
                } else {
                    (b, a)
                };
                let in_place = |h: &Head, i: u64| h.sequence % 2 == i;
                if new.sequence != old.sequence + 1
                    || !(in_place(&a, 0) && in_place(&b, 1))
                    || old.size > new.size
                    || old.access_count > new.access_count
                    || old.signing_key != new.signing_key
                {
                    return Err(damaged(format!(
                        "its two copies disagree (commit {} of {} records, commit {} of {} records)",
                        a.sequence, a.size, b.sequence, b.size
                    )));
                }
                (new, None)
            }
        };
        Ok(Read { head, fallback })
    }

    /// Creates the witness of a new, empty store (fails if one exists).
    pub fn create(dir: &Path, head: Head) -> Result<Self, WitnessError> {
        let path = Self::path_in(dir);
        let io = |e: std::io::Error| WitnessError::Io {
            path: path.clone(),
            problem: e.to_string(),
        };
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(io)?;
        let mut w = Self {
            path: path.clone(),
            file,
            last: head,
        };
        // Both copies, so a later torn copy always has a readable twin.
        let first = Head {
            sequence: head.sequence + 1,
            ..head
        };
        w.write_slot(&head)?;
        w.write_slot(&first)?;
        w.file.sync_all().map_err(io)?;
        File::open(dir).and_then(|d| d.sync_all()).map_err(io)?;
        w.last = first;
        Ok(w)
    }

    /// Opens an existing witness for writing, continuing from `read`.
    pub fn open(dir: &Path, read: &Read) -> Result<Self, WitnessError> {
        let path = Self::path_in(dir);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
            .map_err(|e| WitnessError::Io {
                path: path.clone(),
                problem: e.to_string(),
            })?;
        Ok(Self {
            path,
            file,
            last: read.head,
        })
    }

    /// The last head written.
    pub fn last(&self) -> &Head {
        &self.last
    }

    fn write_slot(&self, head: &Head) -> Result<(), WitnessError> {
        use std::os::unix::fs::FileExt;
        let at = (head.sequence % 2) * SLOT as u64;
        self.file
            .write_all_at(&head.encode(), at)
            .map_err(|e| WitnessError::Io {
                path: self.path.clone(),
                problem: e.to_string(),
            })
    }

    /// Records a new acknowledged head durably (one slot, then
    /// `fdatasync`). Call only after the store has made everything it
    /// names durable. Nothing changed: nothing written.
    pub fn record(
        &mut self,
        size: u64,
        root: [u8; 32],
        access_count: u64,
        access_head: [u8; 32],
    ) -> Result<(), WitnessError> {
        let next = Head {
            sequence: self.last.sequence + 1,
            size,
            root,
            access_count,
            access_head,
            signing_key: self.last.signing_key,
        };
        if (next.size, next.root, next.access_count, next.access_head)
            == (
                self.last.size,
                self.last.root,
                self.last.access_count,
                self.last.access_head,
            )
        {
            return Ok(());
        }
        self.write_slot(&next)?;
        self.file.sync_data().map_err(|e| WitnessError::Io {
            path: self.path.clone(),
            problem: e.to_string(),
        })?;
        self.last = next;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(size: u64) -> Head {
        Head {
            sequence: 0,
            size,
            root: [size as u8; 32],
            access_count: 0,
            access_head: [0; 32],
            signing_key: [7; 32],
        }
    }

    #[test]
    fn the_latest_head_is_read_back_and_a_damaged_copy_falls_back_to_the_other() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = Witness::create(dir.path(), head(0)).unwrap();
        w.record(5, [5; 32], 1, [1; 32]).unwrap();
        w.record(9, [9; 32], 2, [2; 32]).unwrap();
        let r = Witness::read(dir.path()).unwrap();
        assert_eq!(
            (r.head.size, r.head.root, r.head.access_count),
            (9, [9; 32], 2)
        );
        assert!(r.fallback.is_none());
        // Damage the newest copy: the one before it is read, and that is said.
        let path = Witness::path_in(dir.path());
        let mut bytes = std::fs::read(&path).unwrap();
        let newest = (r.head.sequence % 2) as usize * SLOT;
        bytes[newest + 20] ^= 1;
        std::fs::write(&path, &bytes).unwrap();
        let r = Witness::read(dir.path()).unwrap();
        assert_eq!(r.head.size, 5);
        assert!(r.fallback.unwrap().contains("checksum"));
        // Both damaged: refused.
        bytes[(r.head.sequence as usize % 2) * SLOT + 20] ^= 1;
        std::fs::write(&path, &bytes).unwrap();
        assert!(matches!(
            Witness::read(dir.path()),
            Err(WitnessError::Damaged { .. })
        ));
        std::fs::remove_file(&path).unwrap();
        assert!(matches!(
            Witness::read(dir.path()),
            Err(WitnessError::Missing(_))
        ));
    }

    #[test]
    fn an_unchanged_head_writes_nothing_and_a_cut_file_keeps_its_first_copy() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = Witness::create(dir.path(), head(0)).unwrap();
        w.record(3, [3; 32], 0, [0; 32]).unwrap();
        let seq = w.last().sequence;
        w.record(3, [3; 32], 0, [0; 32]).unwrap();
        assert_eq!(w.last().sequence, seq);
        let path = Witness::path_in(dir.path());
        let bytes = std::fs::read(&path).unwrap();
        std::fs::write(&path, &bytes[..SLOT + 40]).unwrap();
        let r = Witness::read(dir.path()).unwrap();
        assert!(r.fallback.unwrap().contains("cut short"));
        assert_eq!(r.head.sequence % 2, 0);
    }
}
