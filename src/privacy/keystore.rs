//! Per-customer data keys, wrapped (XChaCha20-Poly1305) by a master key and
//! kept in a side tree of the store — never in the hashed log.
//!
//! - A customer's key is created with the first personal data stored for it.
//! - Erasure (crypto-shredding) deletes the wrapped key durably and leaves a
//!   tombstone: the ciphertext in the log stays, verifiable and unreadable,
//!   and no new personal data is accepted for that customer.
//! - Master-key rotation re-wraps every data key under the new master key;
//!   the log is not touched. Master keys live in a file of `id base64key`
//!   lines, the first being current; older ones are kept to unwrap until a
//!   rotation has re-wrapped everything.

use super::crypto::DataKey;
use crate::store::SideTable;
use base64::Engine;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use rand_core::{OsRng, RngCore};
use std::collections::HashMap;
use std::path::Path;
use std::sync::RwLock;

/// The master keys: the first wraps, all unwrap.
#[derive(Clone)]
pub struct MasterKeys {
    keys: Vec<(String, [u8; 32])>,
}

impl std::fmt::Debug for MasterKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ids: Vec<_> = self.keys.iter().map(|(id, _)| id.as_str()).collect();
        f.debug_struct("MasterKeys").field("ids", &ids).finish()
    }
}

impl MasterKeys {
    /// Parses `id base64key` lines (32-byte keys); `#` starts a comment.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut keys = Vec::new();
        for line in text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
        {
            let (id, b64) = line
                .split_once(char::is_whitespace)
                .ok_or_else(|| "a master key line is `id base64key`".to_string())?;
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(b64.trim())
                .map_err(|e| format!("master key {id}: {e}"))?;
            let key: [u8; 32] = bytes
                .try_into()
                .map_err(|_| format!("master key {id} is not 32 bytes"))?;
            if id.len() > 32 || keys.iter().any(|(k, _)| k == id) {
                return Err(format!("master key id {id:?} is too long or used twice"));
            }
            keys.push((id.to_string(), key));
        }
        if keys.is_empty() {
            return Err("no master key".into());
        }
        Ok(Self { keys })
    }

    /// Reads the master key file, or creates one (mode 0600) with a fresh key.
    pub fn load_or_generate(path: &Path) -> Result<Self, String> {
        if path.exists() {
            let text =
                std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
            return Self::parse(&text).map_err(|e| format!("{}: {e}", path.display()));
        }
        let mut key = [0u8; 32];
        OsRng.fill_bytes(&mut key);
        let text = format!(
            "# Master key wrapping customers' data keys. Keep a copy apart from the data.\nk1 {}\n",
            base64::engine::general_purpose::STANDARD.encode(key)
        );
        write_private(path, &text)?;
        Self::parse(&text)
    }

    pub fn current_id(&self) -> &str {
        &self.keys[0].0
    }

    fn get(&self, id: &str) -> Option<&[u8; 32]> {
        self.keys.iter().find(|(k, _)| k == id).map(|(_, v)| v)
    }

    /// A key derived for another purpose (the blind index).
    pub fn derive(&self, purpose: &str) -> [u8; 32] {
        use hmac::{Hmac, Mac};
        let mut mac =
            <Hmac<sha2::Sha256> as Mac>::new_from_slice(&self.keys[0].1).expect("any key length");
        mac.update(purpose.as_bytes());
        mac.finalize().into_bytes().into()
    }
}

fn write_private(path: &Path, text: &str) -> Result<(), String> {
    use std::io::Write;
    let mut o = std::fs::OpenOptions::new();
    o.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        o.mode(0o600);
    }
    let mut f = o
        .open(path)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    f.write_all(text.as_bytes())
        .and_then(|_| f.sync_all())
        .map_err(|e| format!("{}: {e}", path.display()))
}

/// Why a customer's key cannot be had.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error(
        "the personal data of customer {0} was erased; no new personal data is accepted for it"
    )]
    Erased(String),
    #[error("key store: {0}")]
    Store(String),
    /// The shared key table of a clustered ledger could not be reached:
    /// nothing was decided, the request may be retried.
    #[error("key store: {0}")]
    Unavailable(String),
    /// Another writer stored a key for the customer first (a clustered
    /// ledger's other node): decide again with that key.
    #[error("customer {0} already has a data key")]
    Exists(String),
}

const TOMBSTONE: &[u8] = b"erased";

/// What `KeyStore::each_live` calls with each customer and wrapped key.
type LiveKey<'a> = dyn FnMut(&str, &[u8]) -> Result<(), KeyError> + 'a;

/// Unwrapped keys kept at most: about 6 MiB. A customer's key is unwrapped
/// again (one read, one AES-GCM open) after the cache was emptied; kept for
/// every customer ever seen, it grew by ~100 bytes per customer.
const KEYS_CACHED: usize = 1 << 16;

/// Caches `key` for `customer`, emptying a full cache first.
fn keep(cache: &mut HashMap<String, DataKey>, customer: &str, key: &DataKey) {
    if cache.len() >= KEYS_CACHED && !cache.contains_key(customer) {
        *cache = HashMap::new();
    }
    cache.insert(customer.to_string(), key.clone());
}

/// The data keys of all customers.
pub struct KeyStore {
    tree: Box<dyn SideTable>,
    master: MasterKeys,
    cache: RwLock<HashMap<String, DataKey>>,
}

/// A failure of the key table, keeping whether it was only unreachable.
fn table_err(e: crate::store::StoreError) -> KeyError {
    match e {
        crate::store::StoreError::Unavailable(m) => KeyError::Unavailable(m),
        e => KeyError::Store(e.to_string()),
    }
}

fn store_err(e: impl std::fmt::Display) -> KeyError {
    KeyError::Store(e.to_string())
}

impl KeyStore {
    /// A key store in a temporary database under a fixed master key, for
    /// unit tests.
    #[cfg(test)]
    pub(crate) fn in_memory() -> Self {
        Self::new(
            crate::store::MemoryTable::default(),
            MasterKeys::parse("k1 AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=").expect("test key"),
        )
    }

    pub fn new(tree: impl SideTable, master: MasterKeys) -> Self {
        Self {
            tree: Box::new(tree),
            master,
            cache: RwLock::new(HashMap::new()),
        }
    }

    fn wrap(&self, customer: &str, key: &DataKey) -> Vec<u8> {
        let (id, mk) = (&self.master.keys[0].0, &self.master.keys[0].1);
        let mut nonce = [0u8; 24];
        OsRng.fill_bytes(&mut nonce);
        let ct = XChaCha20Poly1305::new(mk.into())
            .encrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: &key.0,
                    aad: customer.as_bytes(),
                },
            )
            .expect("wrapping cannot fail");
        let mut v = vec![id.len() as u8];
        v.extend_from_slice(id.as_bytes());
        v.extend_from_slice(&nonce);
        v.extend_from_slice(&ct);
        v
    }

    fn unwrap_key(&self, customer: &str, v: &[u8]) -> Result<DataKey, KeyError> {
        let n = *v.first().ok_or_else(|| store_err("empty wrapped key"))? as usize;
        let id = std::str::from_utf8(
            v.get(1..1 + n)
                .ok_or_else(|| store_err("short wrapped key"))?,
        )
        .map_err(store_err)?;
        let mk = self
            .master
            .get(id)
            .ok_or_else(|| store_err(format!("customer {customer}'s key is wrapped by master key {id:?}, which is not configured")))?;
        let rest = &v[1 + n..];
        if rest.len() < 24 {
            return Err(store_err("short wrapped key"));
        }
        let pt = XChaCha20Poly1305::new(mk.into())
            .decrypt(
                XNonce::from_slice(&rest[..24]),
                Payload {
                    msg: &rest[24..],
                    aad: customer.as_bytes(),
                },
            )
            .map_err(|_| {
                store_err(format!(
                    "customer {customer}'s key does not unwrap (wrong master key?)"
                ))
            })?;
        Ok(DataKey(
            pt.try_into()
                .map_err(|_| store_err("wrapped key is not 32 bytes"))?,
        ))
    }

    /// The customer's key, if it has one and was not erased.
    pub fn get(&self, customer: &str) -> Result<Option<DataKey>, KeyError> {
        if let Some(k) = self.cache.read().expect("key cache").get(customer) {
            return Ok(Some(k.clone()));
        }
        // Read the stored key under the cache's write lock, which `erase`
        // holds while it writes the tombstone: a key read before an erasure
        // can then never be cached after it.
        let mut cache = self.cache.write().expect("key cache");
        if let Some(k) = cache.get(customer) {
            return Ok(Some(k.clone()));
        }
        match self.tree.get(customer.as_bytes()).map_err(table_err)? {
            None => Ok(None),
            Some(v) if v == TOMBSTONE => Ok(None),
            Some(v) => {
                let k = self.unwrap_key(customer, &v)?;
                keep(&mut cache, customer, &k);
                Ok(Some(k))
            }
        }
    }

    pub fn is_erased(&self, customer: &str) -> Result<bool, KeyError> {
        Ok(self
            .tree
            .get(customer.as_bytes())
            .map_err(table_err)?
            .is_some_and(|v| v == TOMBSTONE))
    }

    /// A fresh data key for a customer that has none (and was not erased).
    /// Nothing is stored: the writer stores it with the commit that first
    /// uses it ([`KeyStore::store`]), so a refused request writes no key.
    pub fn new_key(&self, customer: &str) -> Result<DataKey, KeyError> {
        if self.is_erased(customer)? {
            return Err(KeyError::Erased(customer.to_string()));
        }
        let mut raw = [0u8; 32];
        OsRng.fill_bytes(&mut raw);
        Ok(DataKey(raw))
    }

    /// Stores a new customer key, wrapped. Written before the records that
    /// use it, in the same database, so the commit's durable sync covers it
    /// (sled recovers a prefix of its writes).
    ///
    /// Only where the customer has no entry: if the customer was erased
    /// after the key was made (a tombstone is there now), nothing is stored
    /// and the answer is [`KeyError::Erased`] — a tombstone is never
    /// overwritten.
    pub fn store(&self, customer: &str, key: &DataKey) -> Result<(), KeyError> {
        let mut cache = self.cache.write().expect("key cache");
        let swapped = self
            .tree
            .insert_new(customer.as_bytes(), &self.wrap(customer, key))
            .map_err(table_err)?;
        match swapped {
            Ok(()) => {
                keep(&mut cache, customer, key);
                Ok(())
            }
            Err(current) if current == TOMBSTONE => Err(KeyError::Erased(customer.to_string())),
            Err(_) => Err(KeyError::Exists(customer.to_string())),
        }
    }

    /// Removes a key just stored for a commit that was then not written
    /// (see the writer); leaves a tombstone or another key alone.
    pub fn unstore(&self, customer: &str, key: &DataKey) -> Result<(), KeyError> {
        let mut cache = self.cache.write().expect("key cache");
        // The wrapping is randomised: compare the unwrapped key.
        if let Some(v) = self.tree.get(customer.as_bytes()).map_err(table_err)? {
            if v != TOMBSTONE && self.unwrap_key(customer, &v)?.0 == key.0 {
                self.tree.remove(customer.as_bytes()).map_err(table_err)?;
                cache.remove(customer);
            }
        }
        Ok(())
    }

    /// Drops the customer's cached key: another node of a clustered ledger
    /// erased it (see `ledger::follow`); the next `get` reads the table.
    pub fn forget(&self, customer: &str) {
        self.cache.write().expect("key cache").remove(customer);
    }

    /// Destroys the customer's key, leaving a tombstone. The caller makes it
    /// durable (`EventLog::sync`) before reporting success.
    pub fn erase(&self, customer: &str) -> Result<bool, KeyError> {
        // The tombstone is written and the cached key dropped under the
        // cache's write lock (see `get`).
        let mut cache = self.cache.write().expect("key cache");
        let old = self
            .tree
            .insert(customer.as_bytes(), TOMBSTONE)
            .map_err(table_err)?;
        cache.remove(customer);
        Ok(old.is_some_and(|v| v != TOMBSTONE))
    }

    /// Re-wraps every data key under the current master key; returns how
    /// many were re-wrapped.
    pub fn rewrap_all(&self) -> Result<u64, KeyError> {
        // Unwrapped first, rewritten after: a table is not written while
        // it is walked.
        let mut keys = Vec::new();
        self.each_live(&mut |customer, v| {
            keys.push((customer.to_string(), self.unwrap_key(customer, v)?));
            Ok(())
        })?;
        for (customer, key) in &keys {
            self.tree
                .insert(customer.as_bytes(), &self.wrap(customer, key))
                .map_err(table_err)?;
        }
        Ok(keys.len() as u64)
    }

    /// Unwraps the first `n` live keys (in key order) under the configured
    /// master keys: a wrong or missing master key file is found at start
    /// without reading every customer's key, which grew a start by a key
    /// per customer ever seen. [`Self::check_all`] (`verify --data-dir`)
    /// reads them all; a key damaged alone is reported when a response
    /// needs it, naming the customer. Returns the keys checked.
    pub fn check_first(&self, n: usize) -> Result<u64, KeyError> {
        const PAGE: usize = 256;
        let mut checked = 0;
        let mut from: Vec<u8> = Vec::new();
        while checked < n {
            let page = self.tree.scan(&from, PAGE).map_err(table_err)?;
            for (k, v) in &page {
                if v.as_slice() == TOMBSTONE {
                    continue;
                }
                self.unwrap_key(&String::from_utf8_lossy(k), v)?;
                checked += 1;
                if checked == n {
                    break;
                }
            }
            match page.last() {
                Some((k, _)) if page.len() == PAGE => {
                    from = k.clone();
                    from.push(0);
                }
                _ => break,
            }
        }
        Ok(checked as u64)
    }

    /// Unwraps every stored key under the configured master keys: a wrong
    /// or damaged master key file, or a damaged wrapped key, is found here
    /// rather than when a response needs the data. Returns the live keys and
    /// the tombstones counted.
    pub fn check_all(&self) -> Result<(u64, u64), KeyError> {
        let (mut live, mut erased) = (0, 0);
        self.tree
            .for_each(&mut |_, v| {
                if v == TOMBSTONE {
                    erased += 1;
                }
                Ok(())
            })
            .map_err(store_err)?;
        self.each_live(&mut |customer, v| {
            self.unwrap_key(customer, v)?;
            live += 1;
            Ok(())
        })?;
        Ok((live, erased))
    }

    /// Customers with a live key.
    pub fn customers(&self) -> Vec<String> {
        let mut out = Vec::new();
        let _ = self.each_live(&mut |customer, _| {
            out.push(customer.to_string());
            Ok(())
        });
        out
    }

    /// Calls `f` with each customer that has a live key and its wrapped
    /// key, in key order; the first error stops the walk.
    fn each_live(&self, f: &mut LiveKey<'_>) -> Result<(), KeyError> {
        let mut failed = None;
        self.tree
            .for_each(&mut |k, v| {
                if v == TOMBSTONE || failed.is_some() {
                    return Ok(());
                }
                if let Err(e) = f(&String::from_utf8_lossy(k), v) {
                    failed = Some(e);
                }
                Ok(())
            })
            .map_err(store_err)?;
        failed.map_or(Ok(()), Err)
    }

    pub fn master(&self) -> &MasterKeys {
        &self.master
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> KeyStore {
        KeyStore::in_memory()
    }

    #[test]
    fn a_key_made_before_an_erasure_is_not_stored_after_it() {
        let keys = store();
        let key = keys.new_key("u1").unwrap();
        keys.erase("u1").unwrap();
        assert!(matches!(keys.store("u1", &key), Err(KeyError::Erased(_))));
        assert!(keys.get("u1").unwrap().is_none());
        assert!(keys.is_erased("u1").unwrap());
    }

    #[test]
    fn a_stored_key_is_taken_back_only_by_its_own_commit() {
        let keys = store();
        let key = keys.new_key("u1").unwrap();
        keys.store("u1", &key).unwrap();
        assert!(keys.store("u1", &keys.new_key("u2").unwrap()).is_err());
        // Another key: left alone.
        keys.unstore("u1", &DataKey([9; 32])).unwrap();
        assert!(keys.get("u1").unwrap().is_some());
        keys.unstore("u1", &key).unwrap();
        assert!(keys.get("u1").unwrap().is_none());
        // A tombstone: left alone.
        keys.erase("u1").unwrap();
        keys.unstore("u1", &key).unwrap();
        assert!(keys.is_erased("u1").unwrap());
    }

    /// A start unwraps the first keys only: a wrong master key is found,
    /// a key damaged past them is left to `check_all` and to its use; the
    /// cache of unwrapped keys stays bounded.
    #[test]
    fn a_start_checks_the_first_keys_and_the_cache_stays_bounded() {
        let table = std::sync::Arc::new(crate::store::MemoryTable::default());
        let master = |k: &str| MasterKeys::parse(&format!("k1 {k}")).unwrap();
        let right = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";
        let keys = KeyStore::new(table.clone(), master(right));
        for i in 0..300 {
            let customer = format!("u{i:03}");
            let key = keys.new_key(&customer).unwrap();
            keys.store(&customer, &key).unwrap();
        }
        keys.erase("u000").unwrap();
        assert_eq!(keys.check_first(256).unwrap(), 256);
        assert_eq!(keys.check_first(1000).unwrap(), 299);
        // The last key damaged: past the first 256, found by check_all.
        let mut v = table.get(b"u299").unwrap().unwrap();
        let end = v.len() - 1;
        v[end] ^= 1;
        table.insert(b"u299", &v).unwrap();
        let fresh = KeyStore::new(table.clone(), master(right));
        assert_eq!(fresh.check_first(256).unwrap(), 256);
        assert!(fresh.check_all().is_err());
        assert!(fresh.get("u299").is_err());
        let wrong = KeyStore::new(
            table,
            master("BAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="),
        );
        assert!(wrong.check_first(256).is_err());
        // The cache empties itself when full instead of growing.
        let mut cache = HashMap::new();
        for i in 0..KEYS_CACHED + 10 {
            keep(&mut cache, &format!("c{i}"), &DataKey([0; 32]));
        }
        assert!(cache.len() <= KEYS_CACHED);
    }
}
