//! Tamper evidence: every record's hash covers its stored bytes, which include
//! the hash of the previous record of its case. Verification replays the whole
//! log and names the first position where the chain does not hold.

pub mod chain;

pub use chain::{record_hash, ChainError, ChainVerifier, ZERO_HASH};
