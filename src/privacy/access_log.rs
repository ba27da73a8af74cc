//! The PII-access log: one entry for every response that carried decrypted
//! personal data — who, which case and fields, when, through which RPC and
//! for what stated purpose (`x-purpose` header). Entries are append-only and
//! hash-chained (each hash covers the previous hash and the entry), kept in
//! a side tree of the store, and listed to auditors with their hashes so the
//! chain can be checked.

use crate::proto::v1 as pb;
use crate::store::SideTable;
use prost::Message;
use sha2::{Digest, Sha256};
use std::sync::Mutex;

pub struct AccessLog {
    tree: Box<dyn SideTable>,
    /// Next sequence number and the hash of the last entry.
    head: Mutex<(u64, [u8; 32])>,
}

fn entry_hash(prev: &[u8; 32], body: &[u8]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(prev);
    h.update(body);
    h.finalize().into()
}

impl AccessLog {
    /// Opens the log at its head: the last entry found by sequence (a
    /// galloping search over the dense keys, O(log n) reads, so a start
    /// does not read a log that only grows; on a clustered ledger every
    /// read is a round trip), checked against its own hash and the entry
    /// before it. The whole chain is checked by [`Self::verify_all`]
    /// (`verify --data-dir` and every scrub pass).
    pub fn open(tree: impl SideTable) -> Result<Self, String> {
        let present = |seq: u64| -> Result<bool, String> {
            Ok(tree
                .get(&seq.to_be_bytes())
                .map_err(|e| e.to_string())?
                .is_some())
        };
        // The last present sequence: the first absent one is in (lo, hi].
        let (mut lo, mut hi) = (0u64, 1u64);
        while present(hi)? {
            lo = hi;
            hi = hi.saturating_mul(2);
        }
        while hi - lo > 1 {
            let mid = lo + (hi - lo) / 2;
            if present(mid)? {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        let head = match lo {
            0 => [0u8; 32],
            last => {
                let entry = Self::entry_in(&tree, last)?
                    .ok_or_else(|| format!("the PII-access log lost entry {last} while opening"))?;
                let before = match last {
                    1 => [0u8; 32],
                    n => Self::entry_in(&tree, n - 1)?
                        .and_then(|e| e.hash.as_slice().try_into().ok())
                        .ok_or_else(|| format!("the PII-access log is broken at entry {n}"))?,
                };
                Self::checked(&entry, last, &before)?
            }
        };
        Ok(Self {
            tree: Box::new(tree),
            head: Mutex::new((lo + 1, head)),
        })
    }

    fn entry_in(tree: &dyn SideTable, seq: u64) -> Result<Option<pb::PiiAccess>, String> {
        tree.get(&seq.to_be_bytes())
            .map_err(|e| e.to_string())?
            .map(|v| pb::PiiAccess::decode(v.as_slice()).map_err(|e| e.to_string()))
            .transpose()
    }

    /// Entry `seq`'s hash, once it is found to be entry `seq` chained
    /// after `prev` with a hash that covers it.
    fn checked(e: &pb::PiiAccess, seq: u64, prev: &[u8; 32]) -> Result<[u8; 32], String> {
        if e.sequence != seq || e.prev_hash != prev {
            return Err(format!("the PII-access log is broken at entry {seq}"));
        }
        let mut body = e.clone();
        body.hash.clear();
        let hash = entry_hash(prev, &body.encode_to_vec());
        if hash.as_slice() != e.hash.as_slice() {
            return Err(format!("the PII-access log entry {seq} was altered"));
        }
        Ok(hash)
    }

    /// Checks the whole chain from the first entry to the head as this log
    /// knows it; the number of entries checked.
    pub fn verify_all(&self) -> Result<u64, String> {
        let (count, last) = self.head();
        let mut prev = [0u8; 32];
        for seq in 1..=count {
            let e = Self::entry_in(self.tree.as_ref(), seq)?
                .ok_or_else(|| format!("the PII-access log lost entry {seq}"))?;
            prev = Self::checked(&e, seq, &prev)?;
        }
        if prev != last {
            return Err(format!(
                "the PII-access log differs at its last entry {count}"
            ));
        }
        Ok(count)
    }

    /// Appends one entry; returns its sequence number. Not durable by
    /// itself: the ledger's writer records entries and syncs them with its
    /// group commit before the response that revealed the data is sent.
    ///
    /// An entry is written only where its sequence is free: on a clustered
    /// ledger every node appends to the one log, and a node that finds its
    /// next sequence taken reads on to the end (checking each entry's
    /// chain) and chains after it.
    pub fn record(&self, mut e: pb::PiiAccess) -> Result<u64, String> {
        let mut head = self.head.lock().expect("access log lock");
        loop {
            e.sequence = head.0;
            e.prev_hash = head.1.to_vec();
            e.hash.clear();
            let hash = entry_hash(&head.1, &e.encode_to_vec());
            e.hash = hash.to_vec();
            let written = self
                .tree
                .insert_new(&head.0.to_be_bytes(), &e.encode_to_vec())
                .map_err(|e| e.to_string())?;
            match written {
                Ok(()) => {
                    *head = (head.0 + 1, hash);
                    return Ok(e.sequence);
                }
                Err(_) => self.read_on(&mut head)?,
            }
        }
    }

    /// Moves `head` past the entries another writer added, checking that
    /// each continues the chain.
    fn read_on(&self, head: &mut (u64, [u8; 32])) -> Result<(), String> {
        while let Some(v) = self
            .tree
            .get(&head.0.to_be_bytes())
            .map_err(|e| e.to_string())?
        {
            let e = pb::PiiAccess::decode(v.as_ref()).map_err(|e| e.to_string())?;
            let mut body = e.clone();
            body.hash.clear();
            if e.prev_hash != head.1
                || entry_hash(&head.1, &body.encode_to_vec()).as_slice() != e.hash.as_slice()
            {
                return Err(format!("the PII-access log is broken at entry {}", head.0));
            }
            let mut h = [0u8; 32];
            h.copy_from_slice(&e.hash);
            *head = (head.0 + 1, h);
        }
        Ok(())
    }

    /// How many entries the log holds and the hash of the last one (zeros
    /// when it is empty): what the integrity witness records.
    pub fn head(&self) -> (u64, [u8; 32]) {
        let head = self.head.lock().expect("access log lock");
        (head.0 - 1, head.1)
    }

    /// The hash of entry `sequence`, if it is stored.
    pub fn hash_of(&self, sequence: u64) -> Result<Option<[u8; 32]>, String> {
        let Some(v) = self
            .tree
            .get(&sequence.to_be_bytes())
            .map_err(|e| e.to_string())?
        else {
            return Ok(None);
        };
        let e = pb::PiiAccess::decode(v.as_ref()).map_err(|e| e.to_string())?;
        Ok(e.hash.as_slice().try_into().ok())
    }

    /// Entries after `after`, at most `limit`, optionally of one case:
    /// read by sequence, since the keys are dense.
    pub fn list(
        &self,
        after: u64,
        limit: usize,
        case_id: &str,
    ) -> Result<Vec<pb::PiiAccess>, String> {
        let mut out = Vec::new();
        let mut seq = after.saturating_add(1);
        while out.len() < limit {
            let Some(e) = Self::entry_in(self.tree.as_ref(), seq)? else {
                break;
            };
            seq = seq.saturating_add(1);
            if case_id.is_empty() || e.case_id == case_id {
                out.push(e);
            }
        }
        Ok(out)
    }

    /// Verifies a run of entries as listed: each hash covers its previous
    /// hash and its body.
    pub fn verify_chain(entries: &[pb::PiiAccess]) -> Result<(), u64> {
        for (i, e) in entries.iter().enumerate() {
            if i > 0 && e.prev_hash != entries[i - 1].hash {
                return Err(e.sequence);
            }
            let prev: [u8; 32] = e.prev_hash.as_slice().try_into().map_err(|_| e.sequence)?;
            let mut body = e.clone();
            body.hash.clear();
            if entry_hash(&prev, &body.encode_to_vec()).as_slice() != e.hash.as_slice() {
                return Err(e.sequence);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{MemoryTable, StoreError};
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::Arc;

    /// A table that counts its reads.
    #[derive(Default, Clone)]
    struct Counted(Arc<(MemoryTable, AtomicU64)>);

    impl SideTable for Counted {
        fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
            self.0 .1.fetch_add(1, Ordering::Relaxed);
            self.0 .0.get(key)
        }
        fn insert(&self, key: &[u8], value: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
            self.0 .0.insert(key, value)
        }
        fn remove(&self, key: &[u8]) -> Result<(), StoreError> {
            self.0 .0.remove(key)
        }
        fn insert_new(&self, key: &[u8], value: &[u8]) -> Result<Result<(), Vec<u8>>, StoreError> {
            self.0 .0.insert_new(key, value)
        }
        fn scan(
            &self,
            from: &[u8],
            limit: usize,
        ) -> Result<Vec<crate::store::side_table::Entry>, StoreError> {
            self.0 .0.scan(from, limit)
        }
        fn apply(&self, changes: &[crate::store::side_table::Change]) -> Result<(), StoreError> {
            self.0 .0.apply(changes)
        }
        fn last_at_or_before(
            &self,
            key: &[u8],
        ) -> Result<Option<crate::store::side_table::Entry>, StoreError> {
            self.0 .0.last_at_or_before(key)
        }
    }

    fn entry(case: &str) -> pb::PiiAccess {
        pb::PiiAccess {
            case_id: case.into(),
            actor: "agent-1".into(),
            ..Default::default()
        }
    }

    #[test]
    fn opening_reads_a_logarithm_of_the_log_and_finds_its_head() {
        let table = Counted::default();
        let log = AccessLog::open(table.clone()).unwrap();
        for i in 0..1000 {
            log.record(entry(if i % 3 == 0 { "a" } else { "b" }))
                .unwrap();
        }
        let head = log.head();
        table.0 .1.store(0, Ordering::Relaxed);
        let reopened = AccessLog::open(table.clone()).unwrap();
        assert_eq!(reopened.head(), head);
        assert_eq!(head.0, 1000);
        let reads = table.0 .1.load(Ordering::Relaxed);
        assert!(reads <= 24, "{reads} reads to open a log of 1,000 entries");
        assert_eq!(reopened.verify_all(), Ok(1000));
        // Listed by sequence, a case's entries only, from where asked.
        let listed = reopened.list(990, 100, "a").unwrap();
        let seqs: Vec<u64> = listed.iter().map(|e| e.sequence).collect();
        assert_eq!(seqs, [991, 994, 997, 1000]);
        assert_eq!(reopened.list(0, 5, "").unwrap().len(), 5);
        AccessLog::verify_chain(&reopened.list(0, 1000, "").unwrap()).unwrap();
    }

    #[test]
    fn an_entry_altered_in_the_middle_is_found_by_the_full_check() {
        let table = Counted::default();
        let log = AccessLog::open(table.clone()).unwrap();
        for _ in 0..50 {
            log.record(entry("a")).unwrap();
        }
        let key = 20u64.to_be_bytes();
        let mut e = pb::PiiAccess::decode(table.get(&key).unwrap().unwrap().as_slice()).unwrap();
        e.actor = "someone-else".into();
        table.insert(&key, &e.encode_to_vec()).unwrap();
        // The head is intact: the log opens, and its full check names the entry.
        let reopened = AccessLog::open(table.clone()).unwrap();
        assert_eq!(
            reopened.verify_all(),
            Err("the PII-access log entry 20 was altered".to_string())
        );
        // An altered last entry is found as the log opens.
        let key = 50u64.to_be_bytes();
        let mut e = pb::PiiAccess::decode(table.get(&key).unwrap().unwrap().as_slice()).unwrap();
        e.actor = "someone-else".into();
        table.insert(&key, &e.encode_to_vec()).unwrap();
        assert_eq!(
            AccessLog::open(table).err(),
            Some("the PII-access log entry 50 was altered".to_string())
        );
    }
}
