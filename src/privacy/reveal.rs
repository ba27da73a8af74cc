//! What a reader sees of personal fields: the plaintext for callers allowed
//! to see personal data (and the fields revealed are reported, for the
//! access log), a mask for the others, and `[erased]` once the customer's
//! key is destroyed — for everyone, including the ledger itself.

use super::crypto::{is_sealed, open};
use super::fields::personal_fields_mut;
use super::keystore::KeyStore;
use crate::proto::v1::CaseEvent;
use std::borrow::Cow;

/// Shown instead of personal data to callers who may not see it.
pub const MASKED: &str = "[personal data masked]";
/// Shown once the customer's personal data was erased.
pub const ERASED: &str = "[erased]";
/// Shown if a sealed field does not open (should never happen).
pub const UNREADABLE: &str = "[unreadable]";

/// Decrypts (`reveal`) or masks the personal fields of an event of
/// `customer`; returns the paths of the fields revealed in the clear.
pub fn present(
    event: &mut CaseEvent,
    customer: &str,
    keys: &KeyStore,
    reveal: bool,
) -> Vec<Cow<'static, str>> {
    let mut revealed = Vec::new();
    let mut key = None;
    let mut looked = false;
    for (path, value) in personal_fields_mut(event) {
        if !is_sealed(value) {
            continue;
        }
        if !reveal {
            *value = MASKED.to_string();
            continue;
        }
        if !looked {
            key = keys.get(customer).ok().flatten();
            looked = true;
        }
        *value = match &key {
            None => ERASED.to_string(),
            Some(k) => match open(k, customer, &path, value) {
                Some(pt) => {
                    revealed.push(path);
                    pt
                }
                None => UNREADABLE.to_string(),
            },
        };
    }
    revealed
}
