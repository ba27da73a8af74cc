//! Server configuration: every setting has a default, a command-line flag and
//! an environment variable (`COMPLAINT_LEDGER_*`), so the same binary runs on
//! a laptop with no flags and in a container configured by its environment.

use crate::ledger::LedgerOptions;
use std::net::SocketAddr;
use std::path::PathBuf;

/// Everything `serve` needs.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    pub ledger: LedgerOptions,
}

impl ServerConfig {
    /// Defaults, with the data in `data_dir`, listening on an ephemeral
    /// loopback port.
    pub fn ephemeral(data_dir: impl Into<PathBuf>) -> Self {
        Self {
            listen: "127.0.0.1:0".parse().expect("loopback address"),
            data_dir: data_dir.into(),
            ledger: LedgerOptions::default(),
        }
    }
}
