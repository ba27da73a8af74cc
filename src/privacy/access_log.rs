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
    /// Opens the log, checking its whole chain.
    pub fn open(tree: impl SideTable) -> Result<Self, String> {
        let mut prev = [0u8; 32];
        let mut next = 1u64;
        let mut broken = None;
        tree.for_each(&mut |k, v| {
            if broken.is_some() {
                return Ok(());
            }
            let checked = (|| {
                let seq = u64::from_be_bytes(k.try_into().map_err(|_| "bad access-log key")?);
                let e = pb::PiiAccess::decode(v).map_err(|e| e.to_string())?;
                if seq != next || e.prev_hash != prev {
                    return Err(format!("the PII-access log is broken at entry {seq}"));
                }
                let mut body = e.clone();
                body.hash.clear();
                if entry_hash(&prev, &body.encode_to_vec()).as_slice() != e.hash.as_slice() {
                    return Err(format!("the PII-access log entry {seq} was altered"));
                }
                prev.copy_from_slice(&e.hash);
                next += 1;
                Ok(())
            })();
            if let Err(e) = checked {
                broken = Some(e);
            }
            Ok(())
        })
        .map_err(|e| e.to_string())?;
        if let Some(e) = broken {
            return Err(e);
        }
        Ok(Self {
            tree: Box::new(tree),
            head: Mutex::new((next, prev)),
        })
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

    /// Entries after `after`, at most `limit`, optionally of one case.
    pub fn list(
        &self,
        after: u64,
        limit: usize,
        case_id: &str,
    ) -> Result<Vec<pb::PiiAccess>, String> {
        const PAGE: usize = 256;
        let mut out = Vec::new();
        let mut from = after.saturating_add(1);
        loop {
            let page = self
                .tree
                .scan(&from.to_be_bytes(), PAGE)
                .map_err(|e| e.to_string())?;
            for (_, v) in &page {
                let e = pb::PiiAccess::decode(v.as_slice()).map_err(|e| e.to_string())?;
                from = e.sequence.saturating_add(1);
                if !case_id.is_empty() && e.case_id != case_id {
                    continue;
                }
                out.push(e);
                if out.len() == limit {
                    return Ok(out);
                }
            }
            if page.len() < PAGE {
                return Ok(out);
            }
        }
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
