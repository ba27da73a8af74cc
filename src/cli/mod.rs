//! Command-line tools that speak to a running server as a client.

pub mod audit;
pub mod replay;
