//! The store held against its integrity witness, by the server as it opens
//! a data directory and by `verify --data-dir`, with the same messages.
//!
//! The verification proves the store is a consistent log; only the
//! witness, kept outside the store, says whether it is the log that was
//! acknowledged. Both run before anything is served: a store that fails
//! either is refused, naming what is wrong and where. The server's start
//! verifies fully only the records after the verified-through mark
//! ([`verified_through`]); `verify --data-dir` always all of them.

use crate::audit::merkle::{root, StoreReader};
use crate::audit::verify::VerifyReport;
use crate::privacy::access_log::AccessLog;
use crate::store::witness::{self, Head, Witness, WitnessError};
use crate::store::EventLog;
use sha2::{Digest, Sha256};
use std::path::Path;

/// The witness's pin of a checkpoint public key (its text, origin included).
pub fn key_pin(public_key: &str) -> [u8; 32] {
    Sha256::digest(public_key.as_bytes()).into()
}

/// Reads the data directory's witness before the store is verified. `None`:
/// a new, empty store that has none yet (it gets one as it opens). A store
/// holding records without its witness is refused.
pub fn read_witness(dir: &Path, store_head: u64) -> Result<Option<witness::Read>, String> {
    match Witness::read(dir) {
        Ok(r) => Ok(Some(r)),
        Err(WitnessError::Missing(_)) if store_head == 0 => Ok(None),
        Err(e @ WitnessError::Missing(_)) => Err(format!(
            "{e}, and the store holds {store_head} records: what was acknowledged cannot be checked. \
             If this store was written by a version without the witness (and only then), run \
             `complaint-ledger verify --data-dir {} --adopt-witness` once: it verifies the whole store \
             and records its head as the acknowledged one",
            dir.display()
        )),
        Err(e) => Err(e.to_string()),
    }
}

/// After the full verification (`report`): the store holds every record the
/// witness acknowledged, with the same Merkle root at that size, the
/// PII-access log holds every acknowledged entry, and checkpoints are signed
/// with the pinned key.
pub fn check(
    log: &dyn EventLog,
    read: &witness::Read,
    report: &VerifyReport,
    access: &AccessLog,
    public_key: &str,
) -> Result<(), String> {
    let w = &read.head;
    if report.records < w.size {
        return Err(format!(
            "the store holds {} records but {} were acknowledged (integrity witness, commit {}): \
             positions {}..{} are missing; the last acknowledged position is {}",
            report.records,
            w.size,
            w.sequence,
            report.records + 1,
            w.size,
            w.size
        ));
    }
    let at = root(&StoreReader(log), w.size).map_err(|e| {
        format!(
            "the Merkle root at the last acknowledged position {} cannot be computed: {e}",
            w.size
        )
    })?;
    if at != w.root {
        return Err(format!(
            "the store's log differs from the acknowledged one: the Merkle root at the last acknowledged position {} is {} where {} was acknowledged (integrity witness, commit {})",
            w.size,
            hex::encode(at),
            hex::encode(w.root),
            w.sequence
        ));
    }
    let (count, last) = access.head();
    if count < w.access_count {
        return Err(format!(
            "the PII-access log holds {count} entries but {} were acknowledged (integrity witness, commit {}): entries {}..{} are missing",
            w.access_count,
            w.sequence,
            count + 1,
            w.access_count
        ));
    }
    let acknowledged = if w.access_count == count {
        Some(last)
    } else {
        access.hash_of(w.access_count)?
    };
    if w.access_count > 0 && acknowledged != Some(w.access_head) {
        return Err(format!(
            "the PII-access log differs from the acknowledged one at entry {}",
            w.access_count
        ));
    }
    if key_pin(public_key) != w.signing_key {
        return Err(format!(
            "the checkpoint signing key is not the one this ledger signs with (pinned by the integrity witness): \
             public key {public_key} was given. A ledger keeps one signing key for its whole life"
        ));
    }
    Ok(())
}

/// The witness to write through, for a store just checked (`read`), or a
/// new one for a new, empty store.
pub fn open_witness(
    dir: &Path,
    read: Option<&witness::Read>,
    public_key: &str,
    empty_root: [u8; 32],
) -> Result<Witness, String> {
    match read {
        Some(r) => {
            if let Some(why) = &r.fallback {
                tracing::warn!(problem = %why, "one copy of the integrity witness was unusable; the other was read and the next commit rewrites it");
            }
            Witness::open(dir, r).map_err(|e| e.to_string())
        }
        None => Witness::create(
            dir,
            Head {
                sequence: 0,
                size: 0,
                root: empty_root,
                access_count: 0,
                access_head: [0; 32],
                signing_key: key_pin(public_key),
            },
        )
        .map_err(|e| e.to_string()),
    }
}

/// Records a store's present head as the acknowledged one, for a store
/// written before the witness existed (`verify --data-dir --adopt-witness`,
/// after a full verification). Refuses if a witness is there.
pub fn adopt(
    dir: &Path,
    report: &VerifyReport,
    access: &AccessLog,
    public_key: &str,
) -> Result<Head, String> {
    let (access_count, access_head) = access.head();
    let head = Head {
        sequence: 0,
        size: report.records,
        root: report.root,
        access_count,
        access_head,
        signing_key: key_pin(public_key),
    };
    Witness::create(dir, head).map_err(|e| match e {
        WitnessError::Io { problem, .. } if problem.contains("exists") => format!(
            "{} has an integrity witness already; nothing was written",
            dir.display()
        ),
        e => e.to_string(),
    })?;
    Ok(head)
}

/// What [`check_data_dir`] found.
pub struct DataDirReport {
    pub verified: VerifyReport,
    /// The witness read (None: a store that has none and holds no record).
    pub witness: Option<witness::Read>,
    /// Customers' live keys and erased ones.
    pub keys: (u64, u64),
    /// Entries of the PII-access log.
    pub access_entries: u64,
    /// On a clustered node's copy: acknowledged records it had lost in a
    /// crash, fetched back from the stream before verifying (as the
    /// node's next start would).
    pub fetched_back: u64,
}

/// The whole check of a stopped server's data directory, as the server runs
/// it when it starts: the store opens, every record, chain, index and tree
/// hash verifies, the witness's acknowledged head is held, the access log's
/// chain verifies, checkpoints are signed with the pinned key, and every
/// customer key unwraps. `signing_key_file` and `master_key_file` default to
/// the data directory's own files. Writes nothing.
///
/// A clustered node's directory is opened on its cluster (`cluster`): the
/// tables all nodes share (customers' keys, the PII-access log) are there.
pub fn check_data_dir(
    dir: &Path,
    signing_key_file: Option<&Path>,
    master_key_file: Option<&Path>,
    cluster: Option<&crate::store::jetstream::JetStreamOptions>,
    progress: impl FnMut(u64, u64),
) -> Result<DataDirReport, String> {
    use crate::store::SideTable;
    let log: crate::store::AnyLog = match cluster {
        None => Box::new(crate::store::open_data_dir(dir).map_err(|e| e.to_string())?),
        Some(c) => Box::new(
            crate::store::jetstream::JetStreamLog::open(dir, &Default::default(), c.clone())
                .map_err(|e| e.to_string())?,
        ),
    };
    let head = log.head().map_err(|e| e.to_string())?;
    let witnessed = read_witness(dir, head)?;
    let mut fetched_back = 0;
    if let Some(w) = witnessed.as_ref().filter(|_| cluster.is_some()) {
        if w.head.size > head {
            fetched_back =
                super::restore::restore(log.as_ref(), w.head.size).map_err(|e| e.to_string())?;
        }
    }
    let verified = crate::store::contain_panics(dir, || {
        Ok(crate::audit::verify::verify_store(&log, progress))
    })
    .map_err(|e| e.to_string())?
    .map_err(|e| e.to_string())?;
    let access = AccessLog::open(log.side_table("pii-access").map_err(|e| e.to_string())?)?;
    access.verify_all()?;
    let public_key = signing_key(dir, signing_key_file, None, false)?
        .public_key()
        .to_string();
    if let Some(w) = &witnessed {
        check(&log, w, &verified, &access, &public_key)?;
    }
    let keys_tree = log.side_table("customer-keys").map_err(|e| e.to_string())?;
    let keys = if keys_tree.is_empty().map_err(|e| e.to_string())? {
        (0, 0)
    } else {
        let master = master_keys(dir, master_key_file, false)?;
        crate::privacy::keystore::KeyStore::new(keys_tree, master)
            .check_all()
            .map_err(|e| e.to_string())?
    };
    Ok(DataDirReport {
        verified,
        witness: witnessed,
        keys,
        access_entries: access.head().0,
        fetched_back,
    })
}

/// The checkpoint signing key of a data directory (`key_file`, or the
/// directory's own), read with the same messages by the server and by
/// `verify`. `origin`: the log's configured origin (None: the name the key
/// carries). Generated only where `may_generate` (a new store) and no key
/// file was named.
pub fn signing_key(
    dir: &Path,
    key_file: Option<&Path>,
    origin: Option<&str>,
    may_generate: bool,
) -> Result<crate::audit::checkpoint::CheckpointSigner, String> {
    use crate::audit::checkpoint::{CheckpointSigner, KEY_FILE};
    let path = key_file
        .map(Path::to_path_buf)
        .unwrap_or_else(|| dir.join(KEY_FILE));
    if may_generate && key_file.is_none() && !path.exists() {
        let origin = origin.unwrap_or(crate::audit::checkpoint::DEFAULT_ORIGIN);
        return CheckpointSigner::load_or_generate(dir, None, origin).map_err(|e| e.to_string());
    }
    let text = std::fs::read_to_string(&path).map_err(|e| {
        format!(
            "the checkpoint signing key {} cannot be read ({e}); if it is kept outside the data directory, give it with --signing-key-file",
            path.display()
        )
    })?;
    let skey = text.trim();
    // PRIVATE+KEY+name+id+base64: the name is the log's origin.
    let named = skey.split('+').nth(2).unwrap_or_default();
    CheckpointSigner::from_skey(skey, origin.unwrap_or(named)).map_err(|e| {
        format!(
            "the checkpoint signing key {} is damaged or not this ledger's: {e}",
            path.display()
        )
    })
}

/// The master keys wrapping customers' data keys (`key_file`, or the data
/// directory's `pii-master.key`), read with the same messages by the server
/// and by `verify`. Generated only where `may_generate` (the store holds no
/// customer key) and missing.
pub fn master_keys(
    dir: &Path,
    key_file: Option<&Path>,
    may_generate: bool,
) -> Result<crate::privacy::keystore::MasterKeys, String> {
    let path = key_file
        .map(Path::to_path_buf)
        .unwrap_or_else(|| dir.join("pii-master.key"));
    if !may_generate && !path.exists() {
        return Err(format!(
            "the master key file {} is missing, and the store holds customers' keys wrapped by it",
            path.display()
        ));
    }
    crate::privacy::keystore::MasterKeys::load_or_generate(&path)
}

/// The side table holding [`verified_through`]'s mark.
pub const VERIFIED_TABLE: &str = "integrity";
const VERIFIED_KEY: &[u8] = b"verified-through";

/// How far a full verification of this store reached (the start's, or the
/// background scrub's last pass): records 1..=N each had every check, and
/// the Merkle root at N was R. A start re-checks only what was written
/// after N, fully, and does not read the rest
/// (`audit::verify::verify_store_from`);
/// the scrub's first pass, right after such a start, checks everything
/// again in the background.
///
/// Why trusting the mark is safe: it is only believed while the store's
/// tree still has root R at N (so the records the tree was built from are
/// the verified ones, as far as the tree can tell), and a store damaged
/// under the mark is found by the scrub and by `verify --data-dir`, which
/// never read it. A mark that is missing, unreadable or not matching reads
/// as 0: everything is verified at start, as before the mark existed.
pub fn verified_through(log: &dyn EventLog) -> u64 {
    let read = || -> Result<u64, String> {
        let table = log.side_table(VERIFIED_TABLE).map_err(|e| e.to_string())?;
        let Some(v) = table.get(VERIFIED_KEY).map_err(|e| e.to_string())? else {
            return Ok(0);
        };
        let (size, mark) = v
            .split_first_chunk::<8>()
            .filter(|(_, r)| r.len() == 32)
            .ok_or("the mark is malformed")?;
        let size = u64::from_be_bytes(*size);
        if size == 0 || size > log.head().map_err(|e| e.to_string())? {
            return Ok(0);
        }
        let at = root(&StoreReader(log), size).map_err(|e| e.to_string())?;
        Ok(if at.as_slice() == mark { size } else { 0 })
    };
    read().unwrap_or_else(|e| {
        tracing::warn!(error = %e, "the verified-through mark cannot be read; verifying the whole store");
        0
    })
}

/// Records that records 1..=`size`, with Merkle root `root`, passed a full
/// verification. Made durable with the next sync (a mark lost in a crash
/// only costs the next start a longer check).
pub fn record_verified(log: &dyn EventLog, size: u64, root: [u8; 32]) -> Result<(), String> {
    let mut v = size.to_be_bytes().to_vec();
    v.extend_from_slice(&root);
    log.side_table(VERIFIED_TABLE)
        .and_then(|t| t.insert(VERIFIED_KEY, &v))
        .map(|_| ())
        .map_err(|e| e.to_string())
}
