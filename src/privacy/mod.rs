//! Personal data: encrypted per customer before it is stored, readable only
//! by callers allowed to see it, forgotten by destroying the customer's key.
//!
//! - [`fields`]: which event fields are personal (those the proto marks so);
//! - [`crypto`]: sealing a field with XChaCha20-Poly1305;
//! - [`keystore`]: per-customer data keys wrapped by a master key, erasure,
//!   master-key rotation;
//! - [`reveal`]: decrypting or masking the personal fields of read events;
//! - [`access_log`]: the hash-chained log of every response that revealed
//!   personal data;
//! - [`blind_index`]: finding a customer by phone or account without storing
//!   either in the clear.

pub mod access_log;
pub mod blind_index;
pub mod crypto;
pub mod fields;
pub mod keystore;
pub mod reveal;
