//! Read models derived from the log. Nothing here is a source of truth: each
//! projection is folded from events and can be rebuilt from the log.
//!
//! - [`summary`]: one row per case, kept in memory and updated by the writer
//!   before it acknowledges an append (read-your-writes for `ListCases`).
//! - [`case_view`]: the full picture of one case, folded from its events on
//!   request, so it is exact as of any version or recorded time.
//! - [`promises`]: whether promises and demands were kept, and why not.

pub mod case_view;
pub mod promises;
pub mod rebuild;
pub mod summary;
