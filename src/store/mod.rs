//! Durable storage of the event log behind a small trait, so the sled
//! implementation can be replaced (e.g. by a clustered log) without touching
//! the domain or the API.
//!
//! The store knows positions, case versions, event ids and record bytes; it
//! does not interpret payloads or decide anything. One writer calls
//! [`EventLog::write_durable`]; any number of readers read concurrently.

#[cfg(test)]
pub(crate) mod hooked;
pub mod jetstream;
pub mod packed_table;
pub mod side_table;
pub mod sled;
pub mod witness;

pub use self::sled::{contain_panics, SledLog, SledOptions, SledTable};
pub use packed_table::PackedTable;
pub use side_table::{MemoryTable, SideTable, TablePosition};

/// The log a data directory holds, as the embedded store keeps it: what
/// the offline tools (`verify`, `rebuild`, `keys`) read, as any
/// [`EventLog`], naming no engine.
pub fn open_data_dir(dir: &std::path::Path) -> Result<impl EventLog, StoreError> {
    SledLog::open(dir, &SledOptions::default())
}

/// A record ready to be stored at its position.
#[derive(Debug, Clone)]
pub struct NewRecord {
    pub position: u64,
    pub case_id: String,
    pub case_version: u64,
    pub event_id: String,
    /// The encoded `StoredRecord`, stored and hashed as is.
    pub bytes: Vec<u8>,
}

impl NewRecord {
    /// A record read back as `bytes` (decoded as `rec`) to store again at
    /// `position`: another node's, or one copied between stores.
    pub fn again(position: u64, rec: crate::proto::v1::StoredRecord, bytes: &[u8]) -> Self {
        Self {
            position,
            case_id: rec.case_id,
            case_version: rec.case_version,
            event_id: rec.event_id,
            bytes: bytes.to_vec(),
        }
    }
}

/// A storage failure. After a failed durable write the writer stops taking
/// appends: the state of the disk is unknown until a restart recovers it.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The storage engine failed (its own words).
    #[error("storage engine: {0}")]
    Engine(String),
    #[error("storage i/o: {0}")]
    Io(#[from] std::io::Error),
    #[error("storage is corrupt: {0}")]
    Corrupt(String),
    /// A clustered log moved on before this write: another node committed
    /// first. Nothing of the write was stored; the writer adopts what the
    /// log holds up to `upstream_head` and decides again.
    #[error("another node committed first; the log is at {upstream_head}")]
    Conflict { upstream_head: u64 },
    /// A clustered log could not be reached or had no quorum. Whether the
    /// write was stored is unknown; the next write finds out (a stored one
    /// makes it a [`Self::Conflict`], and the writer adopts it).
    #[error("the clustered log is unavailable: {0}")]
    Unavailable(String),
}

/// The durable, append-only event log.
pub trait EventLog: Send + Sync + 'static {
    /// Position of the last stored record (0 when empty).
    fn head(&self) -> Result<u64, StoreError>;

    /// Stores records and the Merkle tree hashes they complete atomically
    /// (all or none) and makes them durable before returning: after `Ok`, a
    /// crash or power cut loses none of them. Positions must continue the log
    /// without a gap.
    fn write_durable(
        &self,
        records: &[NewRecord],
        tree: &[(u64, [u8; 32])],
    ) -> Result<(), StoreError>;

    /// Makes everything written so far durable, side trees included (the
    /// PII-access log, customers' keys).
    fn sync(&self) -> Result<(), StoreError>;

    /// Time spent so far making writes durable (the flush and sync inside
    /// [`Self::write_durable`]), nanoseconds; 0 for a store that does not
    /// count it.
    fn sync_nanos(&self) -> u64 {
        0
    }

    /// Stored Merkle tree hashes by stored-hash index (see `audit::merkle`).
    /// A missing index is an error.
    fn tree_hashes(&self, indexes: &[u64]) -> Result<Vec<[u8; 32]>, StoreError>;

    /// The highest stored-hash index present, if any.
    fn last_tree_index(&self) -> Result<Option<u64>, StoreError>;

    /// The stored bytes of the record at `position`.
    fn read(&self, position: u64) -> Result<Option<Vec<u8>>, StoreError>;

    /// Up to `limit` records from `from` (inclusive) in position order, as
    /// shared views of what the store read (no copy per record).
    fn read_range(&self, from: u64, limit: usize) -> Result<Vec<(u64, bytes::Bytes)>, StoreError>;

    /// `(version, position)` of up to `limit` events of a case, from
    /// `from_version` (inclusive) forwards, or backwards from it.
    fn case_positions(
        &self,
        case_id: &str,
        from_version: u64,
        backwards: bool,
        limit: usize,
    ) -> Result<Vec<(u64, u64)>, StoreError>;

    /// Position of the event with this id, if stored.
    fn event_position(&self, event_id: &str) -> Result<Option<u64>, StoreError>;

    /// A side table of the store by name (customers' keys, the PII-access
    /// log; see [`side_table`]), made durable by [`Self::sync`].
    fn side_table(&self, name: &str) -> Result<Box<dyn SideTable>, StoreError>;

    /// Bytes the store takes on disk; 0 when it cannot tell.
    fn size_on_disk(&self) -> Result<u64, StoreError> {
        Ok(0)
    }

    /// Makes everything durable as the process stops.
    fn close(&self) -> Result<(), StoreError> {
        self.sync()
    }

    /// Most records one [`Self::write_durable`] takes (a clustered log's
    /// atomic batch is bounded); `None` for no bound.
    fn max_write_records(&self) -> Option<usize> {
        None
    }

    /// Whether this store follows an authoritative log other processes
    /// write too (a clustered log): then the writer adopts their commits.
    fn follows_upstream(&self) -> bool {
        false
    }

    /// Calls `nudge` whenever the authoritative log may have moved on
    /// (nothing for a store that is its own authority); the head it
    /// reached, when announced, is [`Self::announced_head`].
    fn on_upstream_change(&self, nudge: Box<dyn Fn() + Send + Sync>) {
        let _ = nudge;
    }

    /// The highest head other nodes announced for the authoritative log,
    /// without asking it (0 when none did, or for a store that follows
    /// none): the writer adopts up to it before deciding a batch.
    fn announced_head(&self) -> u64 {
        0
    }

    /// Where the authoritative log is when this store follows one (a
    /// clustered log another node also writes), asked of it now; `None`
    /// for a store that is its own authority. Records past [`Self::head`]
    /// up to it are fetched with [`Self::fetch_upstream`] and stored with
    /// [`Self::adopt`], by the writer.
    fn upstream_head(&self) -> Result<Option<u64>, StoreError> {
        Ok(None)
    }

    /// Up to `limit` records of the authoritative log from position `from`
    /// on, in order and without a gap (fewer when it has fewer).
    fn fetch_upstream(
        &self,
        from: u64,
        limit: usize,
    ) -> Result<Vec<(u64, bytes::Bytes)>, StoreError> {
        let _ = (from, limit);
        Ok(Vec::new())
    }

    /// Replaces or drops the stored bytes of a record underneath the
    /// ledger: for tests that damage a store on purpose.
    #[doc(hidden)]
    fn tamper_record(&self, position: u64, bytes: Option<Vec<u8>>) -> Result<(), StoreError> {
        let _ = (position, bytes);
        Err(StoreError::Engine(
            "this store cannot be damaged on purpose".into(),
        ))
    }

    /// Stores records another node committed to the authoritative log,
    /// with the tree hashes they complete, here only.
    fn adopt(&self, records: &[NewRecord], tree: &[(u64, [u8; 32])]) -> Result<(), StoreError> {
        let _ = (records, tree);
        Err(StoreError::Engine(
            "this store follows no other log; nothing can be adopted".into(),
        ))
    }
}

/// The log the server runs on, whichever store holds it: the embedded one
/// or a clustered one, chosen at start.
pub type AnyLog = Box<dyn EventLog>;

impl EventLog for AnyLog {
    fn head(&self) -> Result<u64, StoreError> {
        (**self).head()
    }
    fn write_durable(
        &self,
        records: &[NewRecord],
        tree: &[(u64, [u8; 32])],
    ) -> Result<(), StoreError> {
        (**self).write_durable(records, tree)
    }
    fn sync(&self) -> Result<(), StoreError> {
        (**self).sync()
    }
    fn sync_nanos(&self) -> u64 {
        (**self).sync_nanos()
    }
    fn tree_hashes(&self, indexes: &[u64]) -> Result<Vec<[u8; 32]>, StoreError> {
        (**self).tree_hashes(indexes)
    }
    fn last_tree_index(&self) -> Result<Option<u64>, StoreError> {
        (**self).last_tree_index()
    }
    fn read(&self, position: u64) -> Result<Option<Vec<u8>>, StoreError> {
        (**self).read(position)
    }
    fn read_range(&self, from: u64, limit: usize) -> Result<Vec<(u64, bytes::Bytes)>, StoreError> {
        (**self).read_range(from, limit)
    }
    fn case_positions(
        &self,
        case_id: &str,
        from_version: u64,
        backwards: bool,
        limit: usize,
    ) -> Result<Vec<(u64, u64)>, StoreError> {
        (**self).case_positions(case_id, from_version, backwards, limit)
    }
    fn event_position(&self, event_id: &str) -> Result<Option<u64>, StoreError> {
        (**self).event_position(event_id)
    }
    fn side_table(&self, name: &str) -> Result<Box<dyn SideTable>, StoreError> {
        (**self).side_table(name)
    }
    fn size_on_disk(&self) -> Result<u64, StoreError> {
        (**self).size_on_disk()
    }
    fn close(&self) -> Result<(), StoreError> {
        (**self).close()
    }
    fn max_write_records(&self) -> Option<usize> {
        (**self).max_write_records()
    }
    fn follows_upstream(&self) -> bool {
        (**self).follows_upstream()
    }
    fn on_upstream_change(&self, nudge: Box<dyn Fn() + Send + Sync>) {
        (**self).on_upstream_change(nudge)
    }
    fn upstream_head(&self) -> Result<Option<u64>, StoreError> {
        (**self).upstream_head()
    }
    fn announced_head(&self) -> u64 {
        (**self).announced_head()
    }
    fn fetch_upstream(
        &self,
        from: u64,
        limit: usize,
    ) -> Result<Vec<(u64, bytes::Bytes)>, StoreError> {
        (**self).fetch_upstream(from, limit)
    }
    fn adopt(&self, records: &[NewRecord], tree: &[(u64, [u8; 32])]) -> Result<(), StoreError> {
        (**self).adopt(records, tree)
    }
    fn tamper_record(&self, position: u64, bytes: Option<Vec<u8>>) -> Result<(), StoreError> {
        (**self).tamper_record(position, bytes)
    }
}
