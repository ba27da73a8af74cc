//! The embedded store: the event log on sled, one process, one disk.
//!
//! Everything that names sled is in this folder; the rest of the server
//! sees the [`crate::store::EventLog`] and [`crate::store::SideTable`]
//! traits. What sled does not do for durability is done here too: the
//! `fdatasync` after its flush (`durability`), records packed a few per
//! value (`pack`), the key layout (`keys`), and the event-id index that
//! follows each commit (`event_index`, behind a Bloom filter in
//! `event_filter`, its full runs merged by tiers in `event_index_tiers`).

pub mod durability;
pub mod event_filter;
mod event_index;
mod event_index_tiers;
mod event_runs;
pub mod keys;
mod log;
pub mod pack;

pub use log::{contain_panics, SledLog, SledOptions, SledTable};
