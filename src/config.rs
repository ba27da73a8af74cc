//! Server configuration: every setting has a default, a command-line flag and
//! an environment variable (`COMPLAINT_LEDGER_*`), so the same binary runs on
//! a laptop with no flags and in a container configured by its environment.

use crate::ledger::LedgerOptions;
use crate::security::tokens::TokenVerifier;
use std::net::SocketAddr;
use std::path::PathBuf;

/// Everything `serve` needs.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    pub ledger: LedgerOptions,
    pub auth: AuthConfig,
    /// How many connections, and for how long (`api::connections`).
    pub connections: crate::api::connections::ConnectionLimits,
}

/// How callers are authenticated. With no token verifier the server runs in
/// development mode, and only on a loopback address.
#[derive(Debug, Clone, Default)]
pub struct AuthConfig {
    pub tokens: Option<TokenVerifier>,
    pub tls: Option<TlsFiles>,
    /// Requests per second per caller (0: unlimited).
    pub rate_limit_per_second: u32,
}

/// PEM files of the server's TLS identity and, for mTLS, the CA that signs
/// client certificates.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
    pub client_ca: Option<PathBuf>,
}

/// Default per-caller rate limit, requests per second.
pub const DEFAULT_RATE_LIMIT: u32 = 2000;

impl ServerConfig {
    /// Defaults, with the data in `data_dir`, listening on an ephemeral
    /// loopback port.
    pub fn ephemeral(data_dir: impl Into<PathBuf>) -> Self {
        Self {
            listen: "127.0.0.1:0".parse().expect("loopback address"),
            data_dir: data_dir.into(),
            ledger: LedgerOptions::default(),
            auth: AuthConfig {
                rate_limit_per_second: DEFAULT_RATE_LIMIT,
                ..AuthConfig::default()
            },
            connections: Default::default(),
        }
    }
}
