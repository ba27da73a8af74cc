//! Server configuration: every setting has a default, a command-line flag and
//! an environment variable (`COMPLAINT_LEDGER_*`), so the same binary runs on
//! a laptop with no flags and in a container configured by its environment.

use crate::ledger::LedgerOptions;
use crate::security::tokens::TokenVerifier;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// Everything `serve` needs.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub listen: SocketAddr,
    /// The operator's HTTP listener (`/metrics`, `/livez`, `/readyz`);
    /// `None` turns it off.
    pub http_listen: Option<SocketAddr>,
    pub data_dir: PathBuf,
    pub ledger: LedgerOptions,
    pub auth: AuthConfig,
    /// How many connections, and for how long (`api::connections`).
    pub connections: ConnectionLimits,
    /// How often the background scrub verifies the whole log
    /// (`processes::scrub`); `None` turns it off.
    pub scrub_interval: Option<Duration>,
    /// How often the scrub verifies what was written since the
    /// verified-through mark and moves the mark (`processes::scrub`), so a
    /// restart verifies at most that long's writes; `None`: only full
    /// passes move it. Nothing without the scrub.
    pub verify_tail_interval: Option<Duration>,
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
            http_listen: None,
            data_dir: data_dir.into(),
            ledger: LedgerOptions::default(),
            auth: AuthConfig {
                rate_limit_per_second: DEFAULT_RATE_LIMIT,
                ..AuthConfig::default()
            },
            connections: Default::default(),
            scrub_interval: None,
            verify_tail_interval: None,
        }
    }
}

/// The connection settings (`serve --max-connections` and friends).
#[derive(Debug, Clone, Copy)]
pub struct ConnectionLimits {
    pub max_connections: usize,
    pub handshake_timeout: Duration,
    pub idle_timeout: Duration,
    /// Concurrent HTTP/2 streams (calls) per connection.
    pub max_streams_per_connection: u32,
    /// HTTP/2 ping interval, and how long a ping may go unanswered.
    pub keepalive_interval: Duration,
    pub keepalive_timeout: Duration,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        Self {
            max_connections: 4096,
            handshake_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(300),
            max_streams_per_connection: 256,
            keepalive_interval: Duration::from_secs(60),
            keepalive_timeout: Duration::from_secs(20),
        }
    }
}
