//! The clustered store: the authoritative log is one NATS JetStream stream
//! (file storage, replicated, `deny_delete`, `deny_purge`, atomic batch
//! publish), one message per group commit, and each ledger node keeps a
//! local embedded store beside it as its copy, index and read-model cache.
//!
//! Why a stream-wide expected sequence and not a per-case one: a stored
//! record carries its own position and the hash of its case's previous
//! record, and its bytes are hashed as stored (the Merkle leaf). A node can
//! only seal those bytes if it knows the position the record will take, so
//! each group commit is one atomic batch whose first message expects the
//! stream to end with the message that ends at the node's head. A node
//! that is behind is refused whole (`wrong last sequence`), adopts what it
//! missed and decides again; nothing else coordinates the nodes. The cost
//! is that nodes writing at once take turns at the stream's head, which
//! group commit amortizes.
//!
//! Why one message per commit and not per record (or per case subject):
//! the servers' cost is mostly per message, and the per-case subjects had
//! no reader once concurrency was stream-wide
//! ([`commit_message`] has the measurement).
//!
//! What must be one for the ledger and not one per node — customers' data
//! keys, the PII-access log — is a replicated key-value bucket each
//! ([`table::KvTable`]).

mod bridge;
pub mod commit_message;
mod log;
pub mod migrate;
mod positions;
mod stream;
pub mod table;

pub use log::JetStreamLog;

use super::StoreError;
use std::path::PathBuf;
use std::time::Duration;

/// Where the cluster is and how the ledger uses it.
#[derive(Debug, Clone)]
pub struct JetStreamOptions {
    /// Servers to connect to (any of the cluster's; the client finds the rest).
    pub urls: Vec<String>,
    /// The stream holding the log; also the prefix of its subjects.
    pub stream: String,
    /// Replicas of the stream and buckets (a quorum of them acknowledges).
    pub replicas: usize,
    /// A NATS credentials file (JWT and NKey seed).
    pub credentials: Option<PathBuf>,
    /// CA certificate to trust for the servers' TLS.
    pub tls_ca: Option<PathBuf>,
    /// Client certificate and key for mutual TLS.
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    /// How long a request (a batch's commit, a fetch) may take before the
    /// cluster counts as unavailable.
    pub timeout: Duration,
}

impl JetStreamOptions {
    pub fn new(urls: Vec<String>) -> Self {
        Self {
            urls,
            stream: DEFAULT_STREAM.into(),
            replicas: 3,
            credentials: None,
            tls_ca: None,
            tls_cert: None,
            tls_key: None,
            timeout: Duration::from_secs(5),
        }
    }

    /// The stream's one subject: every message is a commit's records
    /// (see [`commit_message`]).
    pub fn commits_subject(&self) -> String {
        format!("{}.commits", self.stream)
    }

    /// Where nodes announce their commits (core NATS, outside the
    /// stream's subjects): `<stream>.heads`.
    pub fn heads_subject(&self) -> String {
        format!("{}.heads", self.stream)
    }

    /// The bucket of customers' data keys.
    pub fn keys_bucket(&self) -> String {
        format!("{}_KEYS", self.stream)
    }
}

/// The stream's name unless configured.
pub const DEFAULT_STREAM: &str = "COMPLAINT_LEDGER";

fn unavailable(what: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Unavailable(format!("{what}: {e}"))
}

/// Connects to the cluster and finds (or creates) the stream, checked as
/// [`stream::ensure_stream`] checks it. The client keeps trying servers in the
/// background, so a refused connection (a TLS handshake, credentials) shows
/// as no answer: the last such error is named in the failure.
async fn open_stream(o: &JetStreamOptions) -> Result<async_nats::jetstream::Context, StoreError> {
    let last_error = std::sync::Arc::new(std::sync::Mutex::new(None::<String>));
    let client = connect(o, last_error.clone()).await?;
    let mut js = async_nats::jetstream::new(client);
    js.set_timeout(o.timeout);
    match stream::ensure_stream(&js, o).await {
        Ok(()) => Ok(js),
        Err(StoreError::Unavailable(m)) => {
            let seen = last_error.lock().map(|e| e.clone()).unwrap_or_default();
            Err(StoreError::Unavailable(match seen {
                Some(e) => format!("{m}; the last error connecting to NATS: {e}"),
                None => m,
            }))
        }
        Err(e) => Err(e),
    }
}

/// Connects to the cluster with the configured credentials and TLS; the
/// client's connection errors go into `last_error`, until it connects.
async fn connect(
    opts: &JetStreamOptions,
    last_error: std::sync::Arc<std::sync::Mutex<Option<String>>>,
) -> Result<async_nats::Client, StoreError> {
    let mut c = async_nats::ConnectOptions::new()
        .event_callback(move |event| {
            let last_error = last_error.clone();
            async move {
                use async_nats::Event;
                let seen = match &event {
                    Event::ClientError(_) | Event::ServerError(_) => Some(event.to_string()),
                    Event::Connected => None,
                    _ => return,
                };
                if let Ok(mut e) = last_error.lock() {
                    *e = seen;
                }
            }
        })
        .name("complaint-ledger")
        .request_timeout(Some(opts.timeout))
        .retry_on_initial_connect()
        .max_reconnects(None)
        // A server that went silent (a partition, a dead host) is left
        // after a few unanswered pings, not after minutes: the client
        // then reconnects to a server that answers.
        .ping_interval(Duration::from_secs(1))
        .connection_timeout(opts.timeout);
    if let Some(path) = &opts.credentials {
        c = c
            .credentials_file(path)
            .await
            .map_err(|e| StoreError::Engine(format!("NATS credentials {}: {e}", path.display())))?;
    }
    if let Some(ca) = &opts.tls_ca {
        c = c.add_root_certificates(ca.clone()).require_tls(true);
    }
    match (&opts.tls_cert, &opts.tls_key) {
        (Some(cert), Some(key)) => {
            c = c
                .add_client_certificate(cert.clone(), key.clone())
                .require_tls(true)
        }
        (None, None) => {}
        _ => {
            return Err(StoreError::Engine(
                "a NATS client certificate needs its key, and the key its certificate".into(),
            ))
        }
    }
    let urls: Vec<async_nats::ServerAddr> = opts
        .urls
        .iter()
        .map(|u| {
            u.parse()
                .map_err(|e| StoreError::Engine(format!("NATS URL {u:?}: {e}")))
        })
        .collect::<Result<_, _>>()?;
    let client = tokio::time::timeout(opts.timeout * 6, c.connect(urls))
        .await
        .map_err(|_| unavailable("connecting to NATS", "no server answered"))?
        .map_err(|e| unavailable("connecting to NATS", e))?;
    Ok(client)
}
