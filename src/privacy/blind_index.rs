//! Looking customers up by phone or account without keeping either in the
//! clear: a keyed blind index, HMAC-SHA256 of the normalised value under an
//! index key derived from the master key. It lives only in memory, built at
//! start from the personal data that can still be decrypted; erasing a
//! customer drops its entries, and no rebuild can bring them back, because
//! the key that could decrypt the values is gone.

use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::collections::{BTreeSet, HashMap};
use std::sync::RwLock;

pub struct BlindIndex {
    key: [u8; 32],
    entries: RwLock<HashMap<[u8; 32], BTreeSet<String>>>,
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
    pub fn new(key: [u8; 32]) -> Self {
        Self {
            key,
            entries: RwLock::new(HashMap::new()),
        }
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

    pub fn add(&self, customer: &str, tokens: &[[u8; 32]]) {
        let mut e = self.entries.write().expect("blind index lock");
        for t in tokens {
            e.entry(*t).or_default().insert(customer.to_string());
        }
    }

    /// Drops every entry of a customer.
    pub fn forget(&self, customer: &str) {
        let mut e = self.entries.write().expect("blind index lock");
        e.retain(|_, set| {
            set.remove(customer);
            !set.is_empty()
        });
    }

    pub fn lookup(&self, token: &[u8; 32]) -> Vec<String> {
        self.entries
            .read()
            .expect("blind index lock")
            .get(token)
            .map(|s| s.iter().cloned().collect())
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phones_are_found_however_written_and_forgotten_on_erasure() {
        let idx = BlindIndex::new([1; 32]);
        idx.add("u1", &idx.tokens_of("+86 138-0013-8000", "Reader_01"));
        assert_eq!(
            idx.lookup(&idx.token("phone", &normalize_phone("13800138000"))),
            ["u1"]
        );
        assert_eq!(
            idx.lookup(&idx.token("account", &normalize_account(" reader_01 "))),
            ["u1"]
        );
        idx.forget("u1");
        assert!(idx.lookup(&idx.token("phone", "13800138000")).is_empty());
        // Another key, other tokens: the index reveals nothing without it.
        assert_ne!(
            BlindIndex::new([2; 32]).token("phone", "13800138000"),
            idx.token("phone", "13800138000")
        );
    }
}
