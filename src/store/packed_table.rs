//! A side table that stores its small entries a few dozen to a stored
//! entry: what a read model with millions of short index keys (the policy
//! board's warnings, queues and promises) is kept in.
//!
//! Why: sled keeps, for every page it has ever written, a page-table slot,
//! the disk pointers of the page's fragments and an LRU slot in memory,
//! cached or not — about 20 bytes per key at its 16 keys per leaf. A table
//! with a key per index entry made the server's memory grow with every
//! closed case for as long as it ran. Packed, the same entries take a few
//! percent of the keys. (A sled patched to larger leaves was tried first:
//! its leaves then became blob files the cache does not count, and it
//! deadlocked in its segment accountant.)
//!
//! Layout. A *group* of entries is stored under [`GROUP`] followed by the
//! key of its first entry, and holds every entry from there up to the next
//! group's key, in key order, each key stored as the bytes it shares with
//! the one before and the rest. A write reads the groups it changes, cuts
//! a group grown past [`MAX_ENTRIES`] or [`MAX_BYTES`] into groups filled
//! to three quarters (so a run of appends leaves them mostly full, and an
//! insert in the middle rarely cuts again), drops an emptied one, and
//! re-keys one whose first entry changed; all of it goes to the inner table
//! as one batch, so a crash leaves the table before or after the write, as
//! the inner table guarantees.
//!
//! Keys the owner calls *plain* (a read model's position, counts, layout)
//! are stored as they are, so a layout check reads them alike in every
//! layout; a plain key may not start with `0x00` or [`GROUP`].
//!
//! Writes are serialized (each reads what it changes first); reads run
//! concurrently, each group read whole as of one batch or another.

use super::side_table::{Change, Entry, SideTable};
use super::StoreError;
use prost::encoding::{decode_varint, encode_varint};
use std::collections::BTreeMap;
use std::sync::Mutex;

/// First byte of a group's stored key.
pub const GROUP: u8 = 0x01;

/// First byte of a group's value: its encoding.
const VERSION: u8 = 1;

/// A group past this many entries is cut.
pub const MAX_ENTRIES: usize = 64;

/// A group past this many bytes is cut: sixteen of them (a sled leaf)
/// stay far below sled's blob threshold.
pub const MAX_BYTES: usize = 2048;

/// Groups read at a time by a scan.
const SCAN_GROUPS: usize = 16;

pub struct PackedTable<T> {
    inner: T,
    plain: fn(&[u8]) -> bool,
    writing: Mutex<()>,
}

/// The groups that packed keys fall in, as a write read them first.
type Found = std::collections::HashMap<Vec<u8>, Option<Entry>>;

/// A group being changed by a write.
struct Open {
    /// Its stored key (without [`GROUP`]), if it was stored.
    stored: Option<Vec<u8>>,
    /// Whether it was found as the first group for a key before every
    /// group.
    as_first: bool,
    entries: BTreeMap<Vec<u8>, Vec<u8>>,
    changed: bool,
}

fn stored_key(key: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(key.len() + 1);
    k.push(GROUP);
    k.extend_from_slice(key);
    k
}

fn is_group(stored: &[u8]) -> bool {
    stored.first() == Some(&GROUP)
}

fn malformed(stored: &[u8], why: &str) -> StoreError {
    StoreError::Corrupt(format!(
        "a packed table's group {} is malformed: {why}",
        hex::encode(stored)
    ))
}

/// Walks the entries of the group stored under `stored` with value
/// `value`, in key order, checking the encoding as it goes: `visit` gets
/// each key and value, the key in a buffer reused for the next, so a
/// lookup allocates nothing per entry.
/// The value of `key` in the group stored under `stored`: the whole group
/// is walked (and so checked), only that entry copied.
fn entry_in(stored: &[u8], value: &[u8], key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
    let mut found = None;
    walk(stored, value, |e, v| {
        if e == key {
            found = Some(v.to_vec());
        }
    })?;
    Ok(found)
}

fn walk(
    stored: &[u8],
    value: &[u8],
    mut visit: impl FnMut(&[u8], &[u8]),
) -> Result<(), StoreError> {
    let mut buf = match value.split_first() {
        Some((&VERSION, rest)) => rest,
        Some((v, _)) => return Err(malformed(stored, &format!("encoding {v}"))),
        None => return Err(malformed(stored, "empty")),
    };
    if buf.is_empty() {
        return Err(malformed(stored, "it holds no entry"));
    }
    let read_len = |buf: &mut &[u8]| -> Result<usize, StoreError> {
        let n = decode_varint(buf).map_err(|e| malformed(stored, &e.to_string()))?;
        usize::try_from(n).map_err(|_| malformed(stored, "a length overflows"))
    };
    let mut key: Vec<u8> = stored[1..].to_vec();
    let mut first = true;
    while !buf.is_empty() {
        let shared = read_len(&mut buf)?;
        let rest = read_len(&mut buf)?;
        if shared > key.len() || rest > buf.len() {
            return Err(malformed(stored, "a key runs past its bounds"));
        }
        // In order: the first entry's key is the group's, each next one
        // greater than the one before. Both share the first `shared`
        // bytes, so the rest decides.
        let greater = buf[..rest] > key[shared..];
        key.truncate(shared);
        key.extend_from_slice(&buf[..rest]);
        buf = &buf[rest..];
        let len = read_len(&mut buf)?;
        if len > buf.len() {
            return Err(malformed(stored, "a value runs past its bounds"));
        }
        let in_order = if first { key == stored[1..] } else { greater };
        if !in_order {
            return Err(malformed(stored, "its keys are out of order"));
        }
        first = false;
        visit(&key, &buf[..len]);
        buf = &buf[len..];
    }
    Ok(())
}

/// The entries of the group stored under `stored` with value `value`.
fn decode(stored: &[u8], value: &[u8]) -> Result<Vec<Entry>, StoreError> {
    let mut out: Vec<Entry> = Vec::new();
    walk(stored, value, |k, v| out.push((k.to_vec(), v.to_vec())))?;
    Ok(out)
}

/// The value of a group of `entries` (in key order, not empty).
fn encode<'a>(entries: impl Iterator<Item = (&'a Vec<u8>, &'a Vec<u8>)>) -> Vec<u8> {
    let mut out = vec![VERSION];
    let mut previous: &[u8] = &[];
    for (i, (k, v)) in entries.enumerate() {
        let shared = if i == 0 {
            k.len()
        } else {
            k.iter().zip(previous).take_while(|(a, b)| a == b).count()
        };
        encode_varint(shared as u64, &mut out);
        encode_varint((k.len() - shared) as u64, &mut out);
        out.extend_from_slice(&k[shared..]);
        encode_varint(v.len() as u64, &mut out);
        out.extend_from_slice(v);
        previous = k;
    }
    out
}

/// What an entry adds to a group's value, at most.
fn cost(k: &[u8], v: &[u8]) -> usize {
    k.len() + v.len() + 6
}

impl<T: SideTable> PackedTable<T> {
    /// Packs the entries of `inner`, but those whose key `plain` accepts.
    pub fn new(inner: T, plain: fn(&[u8]) -> bool) -> Self {
        Self {
            inner,
            plain,
            writing: Mutex::new(()),
        }
    }

    /// The table as stored: what a layout check reads and a refold clears.
    pub fn inner(&self) -> &T {
        &self.inner
    }

    /// The group whose key is the greatest at or before `key`.
    fn group_at_or_before(&self, key: &[u8]) -> Result<Option<Entry>, StoreError> {
        Ok(self
            .inner
            .last_at_or_before(&stored_key(key))?
            .filter(|(k, _)| is_group(k)))
    }

    fn first_group(&self) -> Result<Option<Entry>, StoreError> {
        Ok(self
            .inner
            .scan(&[GROUP], 1)?
            .into_iter()
            .next()
            .filter(|(k, _)| is_group(k)))
    }

    /// Packed entries from `from` on, at most `limit`.
    fn packed_scan(&self, from: &[u8], limit: usize) -> Result<Vec<Entry>, StoreError> {
        let mut out = Vec::new();
        // Adds a group's entries from `from` on; true once `limit` is reached.
        let take = |k: &[u8], v: &[u8], out: &mut Vec<Entry>| -> Result<bool, StoreError> {
            for e in decode(k, v)? {
                if out.len() == limit {
                    break;
                }
                if e.0.as_slice() >= from {
                    out.push(e);
                }
            }
            Ok(out.len() == limit)
        };
        if limit == 0 {
            return Ok(out);
        }
        let mut next = match self.group_at_or_before(from)? {
            Some((k, v)) => {
                if take(&k, &v, &mut out)? {
                    return Ok(out);
                }
                let mut after = k;
                after.push(0);
                after
            }
            None => vec![GROUP],
        };
        let groups = (limit / (MAX_ENTRIES / 2)).clamp(1, SCAN_GROUPS);
        loop {
            let page = self.inner.scan(&next, groups)?;
            let full = page.len() == groups;
            for (k, v) in page {
                if !is_group(&k) || take(&k, &v, &mut out)? {
                    return Ok(out);
                }
                next = k;
            }
            if !full {
                return Ok(out);
            }
            next.push(0);
        }
    }

    /// Plain entries from `from` on, at most `limit`.
    fn plain_scan(&self, from: &[u8], limit: usize) -> Result<Vec<Entry>, StoreError> {
        let from = if from < [GROUP + 1].as_slice() {
            &[GROUP + 1][..]
        } else {
            from
        };
        self.inner.scan(from, limit)
    }

    /// Opens the group a change falls in, given the group at or before
    /// its key (`found`): that one, else the first one (re-keyed when
    /// written), else a new one.
    fn open(&self, found: Option<Entry>) -> Result<Open, StoreError> {
        let (found, as_first) = match found {
            Some(g) => (Some(g), false),
            None => (self.first_group()?, true),
        };
        let (stored, entries) = match found {
            Some((k, v)) => {
                let entries = decode(&k, &v)?.into_iter().collect();
                (Some(k[1..].to_vec()), entries)
            }
            None => (None, BTreeMap::new()),
        };
        Ok(Open {
            stored,
            as_first,
            entries,
            changed: false,
        })
    }

    /// The stored changes that write `open` back.
    fn close(open: Open, out: &mut BTreeMap<Vec<u8>, Option<Vec<u8>>>) {
        if !open.changed {
            return;
        }
        if let Some(s) = &open.stored {
            out.insert(stored_key(s), None);
        }
        let (mut n, mut bytes) = (0, 0);
        for (k, v) in &open.entries {
            n += 1;
            bytes += cost(k, v);
        }
        if n == 0 {
            return;
        }
        let (most, most_bytes) = if n <= MAX_ENTRIES && bytes <= MAX_BYTES {
            (n, bytes)
        } else {
            (MAX_ENTRIES * 3 / 4, MAX_BYTES * 3 / 4)
        };
        let mut chunk: Vec<(&Vec<u8>, &Vec<u8>)> = Vec::new();
        let mut chunk_bytes = 0;
        for (k, v) in &open.entries {
            let c = cost(k, v);
            if !chunk.is_empty() && (chunk.len() == most || chunk_bytes + c > most_bytes) {
                out.insert(stored_key(chunk[0].0), Some(encode(chunk.drain(..))));
                chunk_bytes = 0;
            }
            chunk.push((k, v));
            chunk_bytes += c;
        }
        out.insert(stored_key(chunk[0].0), Some(encode(chunk.into_iter())));
    }

    /// The value under packed `key` and the group it falls in (the one
    /// at or before it), as stored now: what a write that must first read
    /// its key hands to [`Self::apply_locked`], so the group is read once.
    fn lookup(&self, key: &[u8]) -> Result<(Option<Vec<u8>>, Option<Entry>), StoreError> {
        let Some((k, v)) = self.group_at_or_before(key)? else {
            return Ok((None, None));
        };
        Ok((entry_in(&k, &v, key)?, Some((k, v))))
    }

    /// Applies the changes `decide` makes of the values `keys` hold now,
    /// reading the group of each key once (not once for the read and once
    /// more for the write), with no other write in between. `decide` gets
    /// the values in the order of `keys`; changes to keys not among them
    /// are applied too, their groups looked up then.
    pub fn update(
        &self,
        keys: &[Vec<u8>],
        decide: impl FnOnce(Vec<Option<Vec<u8>>>) -> Result<Vec<Change>, StoreError>,
    ) -> Result<(), StoreError> {
        let _one = self.writing.lock().expect("packed table writes");
        let mut known = Found::new();
        let mut values = Vec::with_capacity(keys.len());
        for k in keys {
            if (self.plain)(k) {
                values.push(self.inner.get(k)?);
            } else {
                let (value, group) = self.lookup(k)?;
                values.push(value);
                known.insert(k.clone(), group);
            }
        }
        let changes = decide(values)?;
        self.apply_locked(&changes, known)
    }

    fn apply_locked(&self, changes: &[Change], mut known: Found) -> Result<(), StoreError> {
        let mut stored: BTreeMap<Vec<u8>, Option<Vec<u8>>> = BTreeMap::new();
        let mut packed: BTreeMap<&[u8], &Option<Vec<u8>>> = BTreeMap::new();
        for (k, v) in changes {
            if (self.plain)(k) {
                if k.first().is_none_or(|b| *b <= GROUP) {
                    return Err(StoreError::Engine(format!(
                        "a packed table's plain key may not start with 0x00 or 0x01: {}",
                        hex::encode(k)
                    )));
                }
                stored.insert(k.clone(), v.clone());
            } else {
                packed.insert(k, v);
            }
        }
        let mut open: Option<Open> = None;
        for (k, v) in packed {
            // One lookup per change: the group it falls in is the one at
            // or before its key, or, before every group, the first.
            // Taken, not copied: each key is changed once in a batch.
            let found = match known.remove(k) {
                Some(group) => group,
                None => self.group_at_or_before(k)?,
            };
            let same = open.as_ref().is_some_and(|o| match &found {
                Some((g, _)) => o.stored.as_deref() == Some(&g[1..]),
                None => o.as_first,
            });
            if !same {
                if let Some(o) = open.take() {
                    Self::close(o, &mut stored);
                }
                open = Some(self.open(found)?);
            }
            let o = open.as_mut().expect("opened above");
            let changed = match v {
                Some(v) => o.entries.insert(k.to_vec(), v.clone()).as_ref() != Some(v),
                None => o.entries.remove(k).is_some(),
            };
            o.changed |= changed;
        }
        if let Some(o) = open {
            Self::close(o, &mut stored);
        }
        if stored.is_empty() {
            return Ok(());
        }
        let batch: Vec<Change> = stored.into_iter().collect();
        self.inner.apply(&batch)
    }
}

impl<T: SideTable> SideTable for PackedTable<T> {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        if (self.plain)(key) {
            return self.inner.get(key);
        }
        // Read in place: only the entry asked for is copied.
        let mut found = None;
        self.inner
            .with_last_at_or_before(&stored_key(key), &mut |k, v| {
                if is_group(k) {
                    found = entry_in(k, v, key)?;
                }
                Ok(())
            })?;
        Ok(found)
    }

    fn insert(&self, key: &[u8], value: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        let mut had = None;
        self.update(&[key.to_vec()], |old| {
            had = old.into_iter().next().flatten();
            Ok(vec![(key.to_vec(), Some(value.to_vec()))])
        })?;
        Ok(had)
    }

    fn remove(&self, key: &[u8]) -> Result<(), StoreError> {
        self.apply(&[(key.to_vec(), None)])
    }

    fn insert_new(&self, key: &[u8], value: &[u8]) -> Result<Result<(), Vec<u8>>, StoreError> {
        let mut had = None;
        self.update(&[key.to_vec()], |old| {
            had = old.into_iter().next().flatten();
            Ok(match had {
                Some(_) => Vec::new(),
                None => vec![(key.to_vec(), Some(value.to_vec()))],
            })
        })?;
        Ok(match had {
            Some(v) => Err(v),
            None => Ok(()),
        })
    }

    fn scan(&self, from: &[u8], limit: usize) -> Result<Vec<Entry>, StoreError> {
        let packed = self.packed_scan(from, limit)?;
        let plain = self.plain_scan(from, limit)?;
        if plain.is_empty() {
            return Ok(packed);
        }
        let mut out = Vec::with_capacity(limit.min(packed.len() + plain.len()));
        let (mut a, mut b) = (packed.into_iter().peekable(), plain.into_iter().peekable());
        while out.len() < limit {
            let take_a = match (a.peek(), b.peek()) {
                (Some(x), Some(y)) => x.0 < y.0,
                (Some(_), None) => true,
                (None, Some(_)) => false,
                (None, None) => break,
            };
            out.extend(if take_a { a.next() } else { b.next() });
        }
        Ok(out)
    }

    fn last_at_or_before(&self, key: &[u8]) -> Result<Option<Entry>, StoreError> {
        // A group's key is its first entry, so the group at or before `key`
        // holds the packed answer.
        let packed = match self.group_at_or_before(key)? {
            Some((k, v)) => decode(&k, &v)?
                .into_iter()
                .rev()
                .find(|(e, _)| e.as_slice() <= key),
            None => None,
        };
        let plain = self
            .inner
            .last_at_or_before(key)?
            .filter(|(k, _)| k.first().is_some_and(|b| *b > GROUP));
        Ok(match (packed, plain) {
            (Some(a), Some(b)) => Some(if a.0 > b.0 { a } else { b }),
            (a, b) => a.or(b),
        })
    }

    fn apply(&self, changes: &[Change]) -> Result<(), StoreError> {
        let _one = self.writing.lock().expect("packed table writes");
        self.apply_locked(changes, Found::new())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::MemoryTable;
    use proptest::prelude::*;
    use std::sync::Arc;

    fn plain(k: &[u8]) -> bool {
        k.first() == Some(&b'm')
    }

    /// Keys from a small alphabet, so that writes collide, share prefixes
    /// and land before, between and after groups; `m…` keys are plain.
    fn key() -> impl Strategy<Value = Vec<u8>> {
        prop::collection::vec(
            prop::sample::select(vec![0u8, 1, b'a', b'c', b'm', b'z']),
            0..5,
        )
    }

    fn change() -> impl Strategy<Value = Change> {
        (
            key(),
            prop::option::weighted(0.7, prop::collection::vec(any::<u8>(), 0..40)),
        )
    }

    fn reads_agree(t: &PackedTable<Arc<MemoryTable>>, model: &MemoryTable, probes: &[Vec<u8>]) {
        let all = |s: &dyn SideTable| {
            let mut v = Vec::new();
            s.for_each(&mut |k, x| {
                v.push((k.to_vec(), x.to_vec()));
                Ok(())
            })
            .unwrap();
            v
        };
        assert_eq!(all(t), all(model));
        assert_eq!(t.is_empty().unwrap(), model.is_empty().unwrap());
        for p in probes {
            assert_eq!(t.get(p).unwrap(), model.get(p).unwrap(), "get {p:?}");
            assert_eq!(
                t.last_at_or_before(p).unwrap(),
                model.last_at_or_before(p).unwrap(),
                "last at or before {p:?}"
            );
            for limit in [0, 1, 3, 100] {
                assert_eq!(
                    t.scan(p, limit).unwrap(),
                    model.scan(p, limit).unwrap(),
                    "scan {p:?} {limit}"
                );
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// Any sequence of batches reads back as a plain table would hold
        /// it: every entry, every lookup, every scan.
        #[test]
        fn a_packed_table_reads_as_the_plain_table(
            batches in prop::collection::vec(prop::collection::vec(change(), 0..60), 1..12),
            probes in prop::collection::vec(key(), 1..12),
        ) {
            let inner = Arc::new(MemoryTable::default());
            let t = PackedTable::new(inner.clone(), plain);
            let model = MemoryTable::default();
            for batch in &batches {
                t.apply(batch).unwrap();
                model.apply(batch).unwrap();
                reads_agree(&t, &model, &probes);
            }
        }
    }

    #[test]
    fn appends_fill_groups_and_removals_empty_them() {
        let inner = Arc::new(MemoryTable::default());
        let t = PackedTable::new(inner.clone(), plain);
        let model = MemoryTable::default();
        // Appends one at a time, as a read model's index by position.
        for i in 0u64..5000 {
            let mut k = b"r".to_vec();
            k.extend_from_slice(&i.to_be_bytes());
            let c = [(k, Some(format!("case-{}", i % 97).into_bytes()))];
            t.apply(&c).unwrap();
            model.apply(&c).unwrap();
        }
        t.apply(&[(b"m-position".to_vec(), Some(vec![7; 8]))])
            .unwrap();
        model
            .apply(&[(b"m-position".to_vec(), Some(vec![7; 8]))])
            .unwrap();
        let stored = inner.scan(&[], usize::MAX).unwrap().len();
        assert!(stored <= 5000 / 40 + 2, "{stored} stored entries");
        let probes: Vec<Vec<u8>> = [0u64, 1, 47, 48, 2500, 4999, 5000]
            .iter()
            .map(|i| [b"r".as_slice(), &i.to_be_bytes()].concat())
            .chain([b"m".to_vec(), b"m-position".to_vec(), b"zz".to_vec()])
            .collect();
        reads_agree(&t, &model, &probes);
        // Removing the oldest entries, as a queue answered in order, drops
        // emptied groups and re-keys the one cut into.
        let gone: Vec<Change> = (0u64..3001)
            .map(|i| ([b"r".as_slice(), &i.to_be_bytes()].concat(), None))
            .collect();
        t.apply(&gone).unwrap();
        model.apply(&gone).unwrap();
        reads_agree(&t, &model, &probes);
        let stored = inner.scan(&[], usize::MAX).unwrap().len();
        assert!(stored <= 2000 / 40 + 3, "{stored} stored entries");
        // Inserting one big batch (a rebuild's copy) cuts it at once.
        let bulk: Vec<Change> = (0u64..3000)
            .map(|i| ([b"c".as_slice(), &i.to_be_bytes()].concat(), Some(vec![])))
            .collect();
        t.apply(&bulk).unwrap();
        model.apply(&bulk).unwrap();
        reads_agree(&t, &model, &probes);
    }

    #[test]
    fn single_writes_answer_as_a_plain_table_does() {
        let t = PackedTable::new(MemoryTable::default(), plain);
        let model = MemoryTable::default();
        for (k, v) in [(b"a2", b"x"), (b"a1", b"y"), (b"a2", b"z"), (b"m1", b"p")] {
            assert_eq!(t.insert(k, v).unwrap(), model.insert(k, v).unwrap());
        }
        for (k, v) in [(b"a1", b"n"), (b"a0", b"n"), (b"m1", b"n"), (b"m2", b"n")] {
            assert_eq!(t.insert_new(k, v).unwrap(), model.insert_new(k, v).unwrap());
        }
        for k in [b"a1", b"a9", b"m2"] {
            t.remove(k).unwrap();
            model.remove(k).unwrap();
        }
        assert_eq!(t.scan(b"", 100).unwrap(), model.scan(b"", 100).unwrap());
        assert_eq!(t.get(b"a2").unwrap(), Some(b"z".to_vec()));
    }

    /// A table that counts the groups looked up in it.
    #[derive(Default)]
    struct Counted {
        table: MemoryTable,
        lookups: std::sync::atomic::AtomicUsize,
    }

    impl SideTable for Counted {
        fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
            self.table.get(key)
        }
        fn insert(&self, key: &[u8], value: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
            self.table.insert(key, value)
        }
        fn remove(&self, key: &[u8]) -> Result<(), StoreError> {
            self.table.remove(key)
        }
        fn insert_new(&self, key: &[u8], value: &[u8]) -> Result<Result<(), Vec<u8>>, StoreError> {
            self.table.insert_new(key, value)
        }
        fn scan(&self, from: &[u8], limit: usize) -> Result<Vec<Entry>, StoreError> {
            self.table.scan(from, limit)
        }
        fn last_at_or_before(&self, key: &[u8]) -> Result<Option<Entry>, StoreError> {
            self.lookups
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            self.table.last_at_or_before(key)
        }
        fn apply(&self, changes: &[Change]) -> Result<(), StoreError> {
            self.table.apply(changes)
        }
    }

    /// An update reads each key's value and group once, writes what
    /// `decide` makes of the values (other keys and plain ones too), and
    /// writes nothing when `decide` changes nothing.
    #[test]
    fn an_update_reads_each_group_once_and_writes_what_it_decides() {
        let inner = Arc::new(Counted::default());
        let t = PackedTable::new(inner.clone(), plain);
        let model = MemoryTable::default();
        let start: Vec<Change> = (0u8..200).map(|i| (vec![b'a', i], Some(vec![i]))).collect();
        t.apply(&start).unwrap();
        model.apply(&start).unwrap();
        let keys = vec![vec![b'a', 5], vec![b'a', 150], vec![b'b'], b"m1".to_vec()];
        let lookups = || inner.lookups.load(std::sync::atomic::Ordering::Relaxed);
        let before = lookups();
        t.update(&keys, |old| {
            assert_eq!(old, vec![Some(vec![5]), Some(vec![150]), None, None]);
            Ok(vec![
                (vec![b'a', 5], None),
                (vec![b'a', 150], Some(b"new".to_vec())),
                (vec![b'b'], Some(vec![])),
                (b"m1".to_vec(), Some(b"p".to_vec())),
            ])
        })
        .unwrap();
        assert_eq!(lookups() - before, 3, "one lookup per packed key");
        model
            .apply(&[
                (vec![b'a', 5], None),
                (vec![b'a', 150], Some(b"new".to_vec())),
                (vec![b'b'], Some(vec![])),
                (b"m1".to_vec(), Some(b"p".to_vec())),
            ])
            .unwrap();
        assert_eq!(t.scan(b"", 1000).unwrap(), model.scan(b"", 1000).unwrap());
        // A key outside `keys` is looked up when written.
        t.update(&[], |_| Ok(vec![(vec![b'a', 7], None)])).unwrap();
        model.remove(&[b'a', 7]).unwrap();
        assert_eq!(t.scan(b"", 1000).unwrap(), model.scan(b"", 1000).unwrap());
        let stored = inner.table.scan(b"", 1000).unwrap();
        t.update(&keys, |_| Ok(Vec::new())).unwrap();
        assert_eq!(inner.table.scan(b"", 1000).unwrap(), stored);
    }

    #[test]
    fn a_malformed_group_is_damage_and_a_bad_plain_key_is_refused() {
        let inner = Arc::new(MemoryTable::default());
        let t = PackedTable::new(inner.clone(), plain);
        t.apply(&[(b"a1".to_vec(), Some(b"x".to_vec()))]).unwrap();
        inner
            .apply(&[(stored_key(b"a1"), Some(vec![VERSION, 9, 9]))])
            .unwrap();
        assert!(matches!(t.get(b"a1"), Err(StoreError::Corrupt(_))));
        assert!(matches!(t.scan(b"", 10), Err(StoreError::Corrupt(_))));
        let (a1, a0, v) = (b"a1".to_vec(), b"a0".to_vec(), Vec::new());
        inner
            .apply(&[(
                stored_key(&a1),
                Some(encode([(&a1, &v), (&a0, &v)].into_iter())),
            )])
            .unwrap();
        assert!(matches!(t.get(b"a1"), Err(StoreError::Corrupt(_))));
        let t = PackedTable::new(MemoryTable::default(), |_| true);
        assert!(matches!(
            t.apply(&[(vec![GROUP, b'x'], Some(vec![]))]),
            Err(StoreError::Engine(_))
        ));
        assert!(t.is_empty().unwrap());
    }
}
