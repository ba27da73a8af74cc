//! The real sled store with hooks in front of two of its calls, for tests
//! that need the store to fail or to hold still at a chosen moment: a case
//! index that stops answering, a read model's table that holds its writes.
//! Everything else goes straight to sled.

use super::side_table::SideTable;
use super::{EventLog, NewRecord, SledLog, StoreError};
use std::sync::{Condvar, Mutex};

/// Holds the threads that pass it while closed: what a hook waits on.
#[derive(Default)]
pub(crate) struct Gate {
    closed: Mutex<bool>,
    opened: Condvar,
}

impl Gate {
    pub fn set(&self, closed: bool) {
        *self.closed.lock().unwrap() = closed;
        self.opened.notify_all();
    }

    pub fn pass(&self) {
        let mut closed = self.closed.lock().unwrap();
        while *closed {
            closed = self.opened.wait(closed).unwrap();
        }
    }
}

type CaseRead = Box<dyn Fn() -> Result<(), StoreError> + Send + Sync>;
type WrapTable = Box<dyn Fn(&str, Box<dyn SideTable>) -> Box<dyn SideTable> + Send + Sync>;

pub(crate) struct HookedLog {
    inner: SledLog,
    /// Runs before each read of the case index; an error fails the read.
    before_case_read: CaseRead,
    /// Given each side table as it is opened, by name.
    wrap_table: WrapTable,
}

impl HookedLog {
    pub fn new(inner: SledLog) -> Self {
        Self {
            inner,
            before_case_read: Box::new(|| Ok(())),
            wrap_table: Box::new(|_, t| t),
        }
    }

    pub fn before_case_read(
        mut self,
        f: impl Fn() -> Result<(), StoreError> + Send + Sync + 'static,
    ) -> Self {
        self.before_case_read = Box::new(f);
        self
    }

    pub fn wrap_table(
        mut self,
        f: impl Fn(&str, Box<dyn SideTable>) -> Box<dyn SideTable> + Send + Sync + 'static,
    ) -> Self {
        self.wrap_table = Box::new(f);
        self
    }
}

impl EventLog for HookedLog {
    fn head(&self) -> Result<u64, StoreError> {
        self.inner.head()
    }
    fn write_durable(&self, r: &[NewRecord], t: &[(u64, [u8; 32])]) -> Result<(), StoreError> {
        self.inner.write_durable(r, t)
    }
    fn sync(&self) -> Result<(), StoreError> {
        self.inner.sync()
    }
    fn tree_hashes(&self, i: &[u64]) -> Result<Vec<[u8; 32]>, StoreError> {
        self.inner.tree_hashes(i)
    }
    fn last_tree_index(&self) -> Result<Option<u64>, StoreError> {
        self.inner.last_tree_index()
    }
    fn read(&self, p: u64) -> Result<Option<Vec<u8>>, StoreError> {
        self.inner.read(p)
    }
    fn read_range(&self, f: u64, l: usize) -> Result<Vec<(u64, bytes::Bytes)>, StoreError> {
        self.inner.read_range(f, l)
    }
    fn case_positions(
        &self,
        case_id: &str,
        from: u64,
        backwards: bool,
        limit: usize,
    ) -> Result<Vec<(u64, u64)>, StoreError> {
        (self.before_case_read)()?;
        self.inner.case_positions(case_id, from, backwards, limit)
    }
    fn event_position(&self, e: &str) -> Result<Option<u64>, StoreError> {
        self.inner.event_position(e)
    }
    fn side_table(&self, name: &str) -> Result<Box<dyn SideTable>, StoreError> {
        Ok((self.wrap_table)(
            name,
            EventLog::side_table(&self.inner, name)?,
        ))
    }
    fn close(&self) -> Result<(), StoreError> {
        self.inner.close()
    }
}
