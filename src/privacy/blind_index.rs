//! Looking customers up by phone or account without keeping either in the
//! clear: a keyed blind index, HMAC-SHA256 of the normalised value under an
//! index key derived from the master key, kept in a table of the store
//! (`blind-index`). The writer adds a newly opened customer's tokens right
//! after the commit is durable, with the log position reached; a start
//! adds those of the customers opened after that position, from what can
//! still be decrypted. Erasing a customer removes its entries before its
//! key is destroyed, and no catch-up can bring them back, because the key
//! that could decrypt the values is gone.
//!
//! Why on disk: kept in memory, it grew with every customer ever opened
//! and every start decrypted every customer again to rebuild it.

use crate::store::side_table::Change;
use crate::store::{MemoryTable, SideTable, StoreError, TablePosition};
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// A token's customers: `t`, the token, the customer id.
const BY_TOKEN: u8 = b't';
/// A customer's tokens (to forget them): `u`, the customer id, `\0`, the
/// token.
const BY_CUSTOMER: u8 = b'u';
const POSITION: &[u8] = b"mposition";

pub struct BlindIndex {
    key: [u8; 32],
    table: Box<dyn SideTable>,
    position: TablePosition,
}

fn by_token(token: &[u8; 32], customer: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(33 + customer.len());
    k.push(BY_TOKEN);
    k.extend_from_slice(token);
    k.extend_from_slice(customer.as_bytes());
    k
}

fn by_customer(customer: &str, token: &[u8; 32]) -> Vec<u8> {
    let mut k = Vec::with_capacity(34 + customer.len());
    k.push(BY_CUSTOMER);
    k.extend_from_slice(customer.as_bytes());
    k.push(0);
    k.extend_from_slice(token);
    k
}

/// Entries of `table` whose key starts with `prefix`, a page at a time.
fn with_prefix(table: &dyn SideTable, prefix: &[u8]) -> Result<Vec<Vec<u8>>, StoreError> {
    let mut out = Vec::new();
    let mut from = prefix.to_vec();
    loop {
        let page = table.scan(&from, 256)?;
        let full = page.len() == 256;
        for (k, _) in page {
            if !k.starts_with(prefix) {
                return Ok(out);
            }
            from.clone_from(&k);
            out.push(k);
        }
        if !full {
            return Ok(out);
        }
        from.push(0);
    }
}

/// Normalises a phone number: digits only, without China's +86 prefix.
pub fn normalize_phone(p: &str) -> String {
    let digits: String = p.chars().filter(char::is_ascii_digit).collect();
    match digits.strip_prefix("86") {
        Some(rest) if rest.len() == 11 => rest.to_string(),
        _ => digits,
    }
}

/// Normalises an account name: trimmed, lower case.
pub fn normalize_account(a: &str) -> String {
    a.trim().to_lowercase()
}

impl BlindIndex {
    /// The index kept in `table`, its tokens made with `key`.
    pub fn open(key: [u8; 32], table: Box<dyn SideTable>) -> Result<Self, StoreError> {
        let position = TablePosition::new(table.get_u64(POSITION)?.unwrap_or(0));
        Ok(Self {
            key,
            table,
            position,
        })
    }

    /// An index in memory, for tests.
    pub fn in_memory(key: [u8; 32]) -> Self {
        Self::open(key, Box::new(MemoryTable::default())).expect("a table in memory reads")
    }

    /// The log position whose customers the index holds.
    pub fn position(&self) -> u64 {
        self.position.reached()
    }

    /// The blind token of a kind ("phone", "account") and a normalised value.
    pub fn token(&self, kind: &str, normalized: &str) -> [u8; 32] {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.key).expect("any key length");
        mac.update(kind.as_bytes());
        mac.update(b"\n");
        mac.update(normalized.as_bytes());
        mac.finalize().into_bytes().into()
    }

    /// Tokens of a customer's phone and account (empty ones skipped).
    pub fn tokens_of(&self, phone: &str, account: &str) -> Vec<[u8; 32]> {
        let mut out = Vec::new();
        let p = normalize_phone(phone);
        if !p.is_empty() {
            out.push(self.token("phone", &p));
        }
        let a = normalize_account(account);
        if !a.is_empty() {
            out.push(self.token("account", &a));
        }
        out
    }

    /// Adds customers' tokens, stored through log position `position`, in
    /// one batch with it (the position alone is written only every
    /// [`POSITION_SLACK`](crate::store::side_table::POSITION_SLACK)
    /// positions).
    pub fn add(
        &self,
        customers: &[(String, Vec<[u8; 32]>)],
        position: u64,
    ) -> Result<(), StoreError> {
        if customers.is_empty() && self.position.skip_to(position) {
            return Ok(());
        }
        let mut changes: Vec<Change> = Vec::new();
        for (customer, tokens) in customers {
            for t in tokens {
                changes.push((by_token(t, customer), Some(Vec::new())));
                changes.push((by_customer(customer, t), Some(Vec::new())));
            }
        }
        changes.push((POSITION.to_vec(), Some(position.to_be_bytes().to_vec())));
        self.table.apply(&changes)?;
        self.position.written(position);
        Ok(())
    }

    /// Removes every entry of a customer (made durable by the store's
    /// next sync).
    pub fn forget(&self, customer: &str) -> Result<(), StoreError> {
        let mut prefix = vec![BY_CUSTOMER];
        prefix.extend_from_slice(customer.as_bytes());
        prefix.push(0);
        let mut changes: Vec<Change> = Vec::new();
        for k in with_prefix(self.table.as_ref(), &prefix)? {
            let Ok(token) = <[u8; 32]>::try_from(&k[prefix.len()..]) else {
                continue;
            };
            changes.push((by_token(&token, customer), None));
            changes.push((k, None));
        }
        self.table.apply(&changes)
    }

    /// The customers a token names.
    pub fn lookup(&self, token: &[u8; 32]) -> Result<Vec<String>, StoreError> {
        let mut prefix = vec![BY_TOKEN];
        prefix.extend_from_slice(token);
        Ok(with_prefix(self.table.as_ref(), &prefix)?
            .into_iter()
            .map(|k| String::from_utf8_lossy(&k[prefix.len()..]).to_string())
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phones_are_found_however_written_and_forgotten_on_erasure() {
        let idx = BlindIndex::in_memory([1; 32]);
        let tokens = idx.tokens_of("+86 138-0013-8000", "Reader_01");
        idx.add(&[("u1".into(), tokens.clone()), ("u10".into(), tokens)], 9)
            .unwrap();
        assert_eq!(idx.position(), 9);
        assert_eq!(
            idx.lookup(&idx.token("phone", &normalize_phone("13800138000")))
                .unwrap(),
            ["u1", "u10"]
        );
        assert_eq!(
            idx.lookup(&idx.token("account", &normalize_account(" reader_01 ")))
                .unwrap(),
            ["u1", "u10"]
        );
        idx.forget("u1").unwrap();
        assert_eq!(
            idx.lookup(&idx.token("phone", "13800138000")).unwrap(),
            ["u10"]
        );
        // Another key, other tokens: the index reveals nothing without it.
        assert_ne!(
            BlindIndex::in_memory([2; 32]).token("phone", "13800138000"),
            idx.token("phone", "13800138000")
        );
    }
}
