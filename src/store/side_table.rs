//! Small ordered tables beside the log: customers' wrapped data keys and
//! the PII-access log. Not part of the hashed log (a key is destroyed on
//! erasure, which the log must never see), but kept in the same store, so
//! the writer's durable sync covers them with the commit that needs them.
//!
//! Behind a trait so the privacy module never names the storage engine:
//! a clustered store keeps them in a replicated bucket instead, and unit
//! tests in memory ([`MemoryTable`]).

use super::StoreError;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

/// One entry: key and value bytes.
pub type Entry = (Vec<u8>, Vec<u8>);

/// One change of a batch: set the key to the value, or remove it.
pub type Change = (Vec<u8>, Option<Vec<u8>>);

/// What [`SideTable::for_each`] calls with each entry.
pub type Visit<'a> = dyn FnMut(&[u8], &[u8]) -> Result<(), StoreError> + 'a;

/// An ordered byte-keyed table.
pub trait SideTable: Send + Sync + 'static {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError>;

    /// Sets `key` to `value`; returns the value it replaced, if any.
    fn insert(&self, key: &[u8], value: &[u8]) -> Result<Option<Vec<u8>>, StoreError>;

    fn remove(&self, key: &[u8]) -> Result<(), StoreError>;

    /// Sets `key` to `value` only where it has no value, atomically; else
    /// leaves it and returns `Err` with the value it has.
    fn insert_new(&self, key: &[u8], value: &[u8]) -> Result<Result<(), Vec<u8>>, StoreError>;

    /// Up to `limit` entries with keys from `from` (inclusive), in key order.
    fn scan(&self, from: &[u8], limit: usize) -> Result<Vec<Entry>, StoreError>;

    /// The entry with the greatest key at or before `key`, if any: where a
    /// table that keeps several items per entry finds the one holding an
    /// item.
    fn last_at_or_before(&self, key: &[u8]) -> Result<Option<Entry>, StoreError>;

    /// Calls `f` with the entry [`Self::last_at_or_before`] finds, as the
    /// table holds it (no copy where the store can lend it: a lookup in a
    /// packed group reads one entry of a group of dozens); false when
    /// there is none.
    fn with_last_at_or_before(&self, key: &[u8], f: &mut Visit<'_>) -> Result<bool, StoreError> {
        match self.last_at_or_before(key)? {
            Some((k, v)) => f(&k, &v).map(|_| true),
            None => Ok(false),
        }
    }

    /// Applies every change, all or none: a crash leaves the table as it
    /// was before the batch or after it, never in between (a read model
    /// writes its entries and the position they reached in one batch).
    fn apply(&self, changes: &[Change]) -> Result<(), StoreError>;

    /// A number stored big-endian under `key` (a read model's position
    /// or counts); None when absent. A value of another length is damage,
    /// reported, never read as zero.
    fn get_u64(&self, key: &[u8]) -> Result<Option<u64>, StoreError> {
        match self.get(key)? {
            None => Ok(None),
            Some(v) => <[u8; 8]>::try_from(v.as_slice())
                .map(|b| Some(u64::from_be_bytes(b)))
                .map_err(|_| {
                    StoreError::Corrupt(format!(
                        "a side table holds {} bytes under {}, not a number",
                        v.len(),
                        String::from_utf8_lossy(key)
                    ))
                }),
        }
    }

    /// Whether the table holds no entry.
    fn is_empty(&self) -> Result<bool, StoreError> {
        Ok(self.scan(&[], 1)?.is_empty())
    }

    /// Removes every entry, a page per batch: a read model emptied to be
    /// folded again. Not atomic as a whole; an owner whose check treats a
    /// table without its layout entry but with other entries as one to
    /// empty finishes the job at its next start after a crash.
    fn clear(&self) -> Result<(), StoreError> {
        loop {
            let page = self.scan(&[], 4096)?;
            if page.is_empty() {
                return Ok(());
            }
            let changes: Vec<Change> = page.into_iter().map(|(k, _)| (k, None)).collect();
            self.apply(&changes)?;
        }
    }

    /// Every entry, in key order, a page at a time.
    fn for_each(&self, f: &mut Visit<'_>) -> Result<(), StoreError> {
        const PAGE: usize = 1024;
        let mut from: Vec<u8> = Vec::new();
        loop {
            let page = self.scan(&from, PAGE)?;
            for (k, v) in &page {
                f(k, v)?;
            }
            match page.last() {
                Some((k, _)) if page.len() == PAGE => {
                    from = k.clone();
                    from.push(0);
                }
                _ => return Ok(()),
            }
        }
    }
}

/// Positions a read model whose batch changes nothing may leave unwritten:
/// a start reads at most this many records again. Most commits change
/// nothing of a given read model (a commit of notes), and writing the
/// position alone cost each of them a batch.
pub const POSITION_SLACK: u64 = 8192;

/// Where a read model kept in a side table stands: the log position it
/// reached, and the one last written with its entries (what a start
/// catches up from). The two differ by less than [`POSITION_SLACK`].
#[derive(Debug, Default)]
pub struct TablePosition {
    reached: AtomicU64,
    stored: AtomicU64,
}

impl TablePosition {
    /// A read model as a start finds it: reached what it stored.
    pub fn new(stored: u64) -> Self {
        Self {
            reached: AtomicU64::new(stored),
            stored: AtomicU64::new(stored),
        }
    }

    /// The log position reached.
    pub fn reached(&self) -> u64 {
        self.reached.load(Ordering::Acquire)
    }

    /// The position last written to the table.
    pub fn stored(&self) -> u64 {
        self.stored.load(Ordering::Relaxed)
    }

    /// Moves to `head` without a write when a batch that changes nothing
    /// may be left out there; false when it must be written.
    pub fn skip_to(&self, head: u64) -> bool {
        if head.saturating_sub(self.stored()) >= POSITION_SLACK {
            return false;
        }
        self.reached.store(head, Ordering::Release);
        true
    }

    /// Moves to `reached`, having written `stored` with the entries.
    pub fn set(&self, reached: u64, stored: u64) {
        self.stored.store(stored, Ordering::Relaxed);
        self.reached.store(reached, Ordering::Release);
    }

    /// Moves to `head`, written with the entries.
    pub fn written(&self, head: u64) {
        self.set(head, head);
    }
}

/// A boxed table is a table (what [`super::EventLog::side_table`] gives),
/// and so is a shared one (a test that opens a table twice).
macro_rules! table_behind_pointer {
    ($($pointer:ident),*) => {$(
        impl<T: SideTable + ?Sized> SideTable for $pointer<T> {
            fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
                (**self).get(key)
            }
            fn insert(&self, key: &[u8], value: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
                (**self).insert(key, value)
            }
            fn remove(&self, key: &[u8]) -> Result<(), StoreError> {
                (**self).remove(key)
            }
            fn insert_new(
                &self,
                key: &[u8],
                value: &[u8],
            ) -> Result<Result<(), Vec<u8>>, StoreError> {
                (**self).insert_new(key, value)
            }
            fn scan(&self, from: &[u8], limit: usize) -> Result<Vec<Entry>, StoreError> {
                (**self).scan(from, limit)
            }
            fn apply(&self, changes: &[Change]) -> Result<(), StoreError> {
                (**self).apply(changes)
            }
            fn last_at_or_before(&self, key: &[u8]) -> Result<Option<Entry>, StoreError> {
                (**self).last_at_or_before(key)
            }
            fn with_last_at_or_before(
                &self,
                key: &[u8],
                f: &mut Visit<'_>,
            ) -> Result<bool, StoreError> {
                (**self).with_last_at_or_before(key, f)
            }
        }
    )*};
}
use std::sync::Arc;
table_behind_pointer!(Box, Arc);

/// A side table in memory, for unit tests.
#[derive(Default)]
pub struct MemoryTable(Mutex<BTreeMap<Vec<u8>, Vec<u8>>>);

impl SideTable for MemoryTable {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.0.lock().expect("table").get(key).cloned())
    }

    fn insert(&self, key: &[u8], value: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self
            .0
            .lock()
            .expect("table")
            .insert(key.to_vec(), value.to_vec()))
    }

    fn remove(&self, key: &[u8]) -> Result<(), StoreError> {
        self.0.lock().expect("table").remove(key);
        Ok(())
    }

    fn insert_new(&self, key: &[u8], value: &[u8]) -> Result<Result<(), Vec<u8>>, StoreError> {
        let mut t = self.0.lock().expect("table");
        Ok(match t.get(key) {
            Some(v) => Err(v.clone()),
            None => {
                t.insert(key.to_vec(), value.to_vec());
                Ok(())
            }
        })
    }

    fn last_at_or_before(&self, key: &[u8]) -> Result<Option<Entry>, StoreError> {
        Ok(self
            .0
            .lock()
            .expect("table")
            .range(..=key.to_vec())
            .next_back()
            .map(|(k, v)| (k.clone(), v.clone())))
    }

    fn scan(&self, from: &[u8], limit: usize) -> Result<Vec<Entry>, StoreError> {
        Ok(self
            .0
            .lock()
            .expect("table")
            .range(from.to_vec()..)
            .take(limit)
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect())
    }

    fn apply(&self, changes: &[Change]) -> Result<(), StoreError> {
        let mut t = self.0.lock().expect("table");
        for (k, v) in changes {
            match v {
                Some(v) => t.insert(k.clone(), v.clone()),
                None => t.remove(k),
            };
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_table_pages_through_every_entry_in_key_order() {
        let t = MemoryTable::default();
        for i in 0u32..2500 {
            t.insert(&i.to_be_bytes(), b"v").unwrap();
        }
        let mut seen = Vec::new();
        t.for_each(&mut |k, _| {
            seen.push(u32::from_be_bytes(k.try_into().unwrap()));
            Ok(())
        })
        .unwrap();
        assert_eq!(seen, (0..2500).collect::<Vec<_>>());
        assert_eq!(
            t.insert_new(&1u32.to_be_bytes(), b"w").unwrap(),
            Err(b"v".to_vec())
        );
        assert_eq!(t.insert_new(&9999u32.to_be_bytes(), b"w").unwrap(), Ok(()));
    }

    #[test]
    fn a_position_waits_at_most_the_slack_and_a_bad_number_is_damage() {
        let p = TablePosition::new(10);
        assert!(p.skip_to(10 + POSITION_SLACK - 1));
        assert_eq!((p.reached(), p.stored()), (10 + POSITION_SLACK - 1, 10));
        assert!(!p.skip_to(10 + POSITION_SLACK));
        p.written(10 + POSITION_SLACK);
        assert_eq!(p.stored(), p.reached());

        let t = MemoryTable::default();
        assert_eq!(t.get_u64(b"n").unwrap(), None);
        t.insert(b"n", &7u64.to_be_bytes()).unwrap();
        assert_eq!(t.get_u64(b"n").unwrap(), Some(7));
        t.insert(b"n", b"seven").unwrap();
        assert!(matches!(t.get_u64(b"n"), Err(StoreError::Corrupt(_))));
    }
}
