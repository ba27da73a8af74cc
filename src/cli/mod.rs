//! Command-line tools: clients of a running server, and offline tools that
//! open a stopped server's store.

pub mod audit;
pub mod client;
pub mod health;
pub mod keys;
pub mod rebuild;
pub mod replay;
