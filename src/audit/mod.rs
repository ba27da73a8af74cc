//! Tamper evidence and proofs.
//!
//! - [`chain`]: every record's hash covers its stored bytes, which include the
//!   hash of the previous record of its case.
//! - [`merkle`]: the whole log is an RFC 6962 Merkle tree, kept incrementally.
//! - [`checkpoint`]: signed commitments to the tree (C2SP signed notes).
//! - [`verify`]: the full scan of a store, naming the first bad position.
//! - [`bundle`]: self-contained case exports and their offline verification.

pub mod bundle;
pub mod chain;
pub mod checkpoint;
pub mod merkle;
pub mod verify;

pub use chain::{record_hash, ChainError, ChainVerifier, ZERO_HASH};
