//! complaint-ledger: an event-sourced, tamper-evident ledger of disputed
//! customer complaints.
//!
//! Data flows one way: [`api`] → [`domain`] validation and rules → [`ledger`]
//! (one group-committing writer) → [`store`] (the durable sled log) →
//! [`projections`] (read models in tables of the store, each caught up from
//! the log position it reached) → queries. [`audit`] verifies what the store holds;
//! [`processes`] (early warning, pending deadlines) follow the commits and
//! append through the ledger. ARCHITECTURE.md is the module map.

pub mod api;
pub mod audit;
pub mod cli;
pub mod config;
pub mod domain;
#[doc(hidden)]
pub mod fuzz;
pub mod ledger;
pub mod policy;
pub mod privacy;
pub mod processes;
pub mod projections;
pub mod proto;
pub mod queries;
pub mod recent;
pub mod security;
pub mod store;
pub mod telemetry;
pub mod time;
