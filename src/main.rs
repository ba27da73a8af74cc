//! The `complaint-ledger` command: `serve` runs the gRPC service; `health`
//! probes one; `replay` prints a case's timeline; `checkpoint`, `export` and
//! `verify` are the auditor's tools; `rebuild` and `rotate-master-key` the
//! operator's. Every command that calls a server takes the same connection
//! and credential flags (`cli::client`).

use clap::{Parser, Subcommand};
use complaint_ledger::api::connections::ConnectionLimits;
use complaint_ledger::cli::client::ServerArgs;
use complaint_ledger::cli::{audit, health, rebuild, replay};
use complaint_ledger::config::{AuthConfig, ServerConfig, TlsFiles};
use complaint_ledger::domain::validate::Limits;
use complaint_ledger::ledger::LedgerOptions;
use complaint_ledger::policy::config::PolicyConfig;
use complaint_ledger::policy::Policy;
use complaint_ledger::security::tokens::TokenVerifier;
use complaint_ledger::store::jetstream::JetStreamOptions;
use complaint_ledger::store::SledOptions;
use complaint_ledger::telemetry::LogFormat;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

/// jemalloc instead of the system allocator: the commit path (sled's node
/// copies, protobuf buffers) and the gRPC stack allocate a lot, and glibc's
/// malloc took about a quarter of the server's CPU in the benchmark's
/// profile (see BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// jemalloc's settings, read once at its start (a strong definition of the
/// prefixed `malloc_conf` symbol; `_RJEM_MALLOC_CONF` in the environment
/// still overrides it). Freed memory goes back to the system after 1 s
/// instead of jemalloc's default 10 s, purged by jemalloc's own background
/// thread: the ledger's bursts (group commits, index merges, read chunks)
/// otherwise left their freed pages resident — 185–268 MB right after a
/// 1,000,000-event fill, 145 MB with no decay at all (BENCHMARKS.md).
/// Two arenas instead of four per core: each arena keeps its own partly
/// used pages, and with eight of them the pages that a fill's churn left
/// partly used were a quarter to a third of the server's resident memory
/// (BENCHMARKS.md, change 57); thread caches take most allocations before
/// an arena's lock is needed. Slabs of one page for the sizes up to 1 KiB
/// (jemalloc's own are up to seven pages): sled keeps small records of
/// every page it wrote, made among many short-lived allocations of the
/// same sizes, and a slab holding one of them cannot be given back; a
/// smaller slab pins less (BENCHMARKS.md, change 63). Above 1 KiB a page
/// would hold too few to fill it.
/// A byte array, not a slice: jemalloc reads a C string pointer.
#[allow(non_upper_case_globals)]
#[export_name = "_rjem_malloc_conf"]
pub static malloc_conf: &[u8; 90] =
    b"background_thread:true,dirty_decay_ms:1000,muzzy_decay_ms:0,narenas:2,slab_sizes:1-1024:1\0";

/// Bytes live allocations hold, by jemalloc's own count (its statistics
/// are refreshed first: they are a snapshot as of the last `epoch`).
fn jemalloc_allocated() -> u64 {
    use tikv_jemalloc_ctl::{epoch, stats};
    epoch::advance()
        .and_then(|_| stats::allocated::read())
        .map_or(0, |b| b as u64)
}

#[derive(Parser)]
#[command(
    name = "complaint-ledger",
    version,
    about = "Event-sourced, tamper-evident ledger of disputed customer complaints"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// What to log: an EnvFilter directive such as `info` or
    /// `warn,complaint_ledger=debug`. Each call's access line is logged at
    /// info under `complaint_ledger::access`.
    #[arg(
        long,
        global = true,
        env = "COMPLAINT_LEDGER_LOG",
        default_value = "info"
    )]
    log: String,
    /// How to write log lines (to stderr).
    #[arg(long, global = true, env = "COMPLAINT_LEDGER_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
}

#[derive(Subcommand)]
enum Command {
    /// Run the gRPC service.
    Serve(Box<ServeArgs>),
    /// Ask a server whether it serves (exit 0) or not (exit 1): the
    /// container's HEALTHCHECK and a Kubernetes exec probe.
    Health {
        /// One service's health (e.g. complaint_ledger.v1.Ledger); default:
        /// the server as a whole.
        #[arg(long, default_value = "")]
        service: String,
        /// Seconds to wait for the answer.
        #[arg(long, default_value_t = 5.0)]
        timeout_seconds: f64,
        #[command(flatten)]
        server: ServerArgs,
    },
    /// Print a case's timeline from a running server.
    Replay {
        /// Case id, e.g. 124545.
        #[arg(long = "case")]
        case_id: String,
        /// Show the case as it stood at a version (a number) or a recorded
        /// time (RFC 3339), with its promises as judged then.
        #[arg(long)]
        as_of: Option<replay::AsOf>,
        #[command(flatten)]
        server: ServerArgs,
    },
    /// Load a history recorded elsewhere (JSON Lines of the API's event
    /// JSON, case by case) through the server's validation, rules and early
    /// warning, marked imported.
    Import {
        /// The file, or `-` for standard input.
        file: PathBuf,
        /// Events appended at once, at most 1000 (a case's run of lines is
        /// appended whole when it fits).
        #[arg(long, default_value_t = 1000)]
        batch: usize,
        #[command(flatten)]
        server: ServerArgs,
    },
    /// Fetch, verify and keep the server's current signed checkpoint.
    Checkpoint {
        /// File to keep the signed checkpoint in (a signed note, text).
        #[arg(short = 'o', long)]
        out: PathBuf,
        /// Pinned public key (or a file holding it); default: the server's.
        #[arg(long)]
        pubkey: Option<String>,
        #[command(flatten)]
        server: ServerArgs,
    },
    /// Export a case as a self-contained bundle for offline verification.
    Export {
        /// Case id, e.g. 124545.
        #[arg(long = "case")]
        case_id: String,
        /// File to write the bundle to (protobuf CaseBundle).
        #[arg(short = 'o', long)]
        out: PathBuf,
        /// Include a consistency proof from this kept checkpoint.
        #[arg(long)]
        since: Option<PathBuf>,
        #[command(flatten)]
        server: ServerArgs,
    },
    /// Recompute every projection from the log, with a progress bar: of a
    /// stopped server's store (--data-dir), or inside a running server
    /// (--server), compared with the projections it maintained.
    Rebuild {
        /// Data directory of a stopped server: rebuild offline, print the
        /// projections' digests.
        #[arg(long, conflicts_with = "server")]
        data_dir: Option<PathBuf>,
        /// With --data-dir: the policy file the server runs with (its time
        /// to escalate a warning shapes the board's digest); default: the
        /// shipped config/policy.toml.
        #[arg(long, env = "COMPLAINT_LEDGER_POLICY_FILE")]
        policy_file: Option<PathBuf>,
        /// With --server (or COMPLAINT_LEDGER_SERVER): rebuild inside that
        /// running server and compare (needs the auditor or admin role).
        #[command(flatten)]
        server: ServerArgs,
    },
    /// Move a stopped single-node ledger's data directory into a NATS
    /// JetStream cluster: verified first, then every record's bytes at its
    /// position and the customers' data keys. Start the cluster's nodes
    /// with this directory's signing and master key files.
    Migrate {
        /// The stopped single-node ledger's data directory (kept as it is).
        #[arg(long)]
        data_dir: PathBuf,
        /// The checkpoint signing key, where it is kept outside the data
        /// directory.
        #[arg(long, env = "COMPLAINT_LEDGER_SIGNING_KEY_FILE")]
        signing_key_file: Option<PathBuf>,
        /// The master key file, where it is kept outside the data directory.
        #[arg(long, env = "COMPLAINT_LEDGER_MASTER_KEY_FILE")]
        master_key_file: Option<PathBuf>,
        #[command(flatten)]
        nats: Box<NatsArgs>,
    },
    /// Re-wrap every customer's data key under the first key of a master-key
    /// file (a stopped server's store; the log is not touched).
    RotateMasterKey {
        #[arg(long)]
        data_dir: PathBuf,
        /// `id base64key` lines: the new key first, the old ones after it.
        #[arg(long)]
        master_key_file: PathBuf,
    },
    /// Verify a bundle offline (FILE --pubkey), a stopped server's store
    /// (--data-dir), or a server's growth since a kept checkpoint (--since
    /// --server --pubkey).
    Verify {
        /// A bundle written by `export`.
        bundle: Option<PathBuf>,
        /// Pinned public key, or a file holding it.
        #[arg(long)]
        pubkey: Option<String>,
        /// A checkpoint kept earlier (by `checkpoint -o`).
        #[arg(long)]
        since: Option<PathBuf>,
        /// Data directory of a stopped server: checked as the server checks
        /// it when it starts (store, chains, tree, integrity witness,
        /// PII-access log, keys).
        #[arg(long, conflicts_with_all = ["bundle", "since"])]
        data_dir: Option<PathBuf>,
        /// With --data-dir: the checkpoint signing key, where it is kept
        /// outside the data directory.
        #[arg(long, env = "COMPLAINT_LEDGER_SIGNING_KEY_FILE")]
        signing_key_file: Option<PathBuf>,
        /// With --data-dir: the master key file, where it is kept outside
        /// the data directory.
        #[arg(long, env = "COMPLAINT_LEDGER_MASTER_KEY_FILE")]
        master_key_file: Option<PathBuf>,
        /// With --data-dir, once, for a store written by a version without
        /// the integrity witness: verify it whole and record its head as the
        /// acknowledged one.
        #[arg(long, requires = "data_dir")]
        adopt_witness: bool,
        /// With --data-dir of a clustered node (stopped): its cluster, where
        /// the tables all nodes share are.
        #[command(flatten)]
        nats: Box<NatsArgs>,
        #[command(flatten)]
        server: ServerArgs,
    },
}

/// Where the clustered store is (serve, migrate).
#[derive(clap::Args, Clone)]
struct NatsArgs {
    /// The NATS JetStream cluster holding the authoritative log
    /// (comma-separated server URLs); a data directory is then a node's
    /// copy, index and read models. `serve` without it: the embedded store
    /// alone.
    #[arg(long, env = "COMPLAINT_LEDGER_NATS_URL", value_delimiter = ',')]
    nats_url: Vec<String>,
    /// The JetStream stream of the log (also its subjects' prefix).
    #[arg(long, env = "COMPLAINT_LEDGER_NATS_STREAM", default_value = complaint_ledger::store::jetstream::DEFAULT_STREAM)]
    nats_stream: String,
    /// Replicas of the stream and of the shared key bucket, when created.
    #[arg(long, env = "COMPLAINT_LEDGER_NATS_REPLICAS", default_value_t = 3)]
    nats_replicas: usize,
    /// NATS credentials file (JWT and NKey seed).
    #[arg(long, env = "COMPLAINT_LEDGER_NATS_CREDENTIALS")]
    nats_credentials: Option<PathBuf>,
    /// CA certificate the NATS servers' TLS is checked against.
    #[arg(long, env = "COMPLAINT_LEDGER_NATS_TLS_CA")]
    nats_tls_ca: Option<PathBuf>,
    /// Client certificate and key for NATS mutual TLS.
    #[arg(long, env = "COMPLAINT_LEDGER_NATS_TLS_CERT")]
    nats_tls_cert: Option<PathBuf>,
    #[arg(long, env = "COMPLAINT_LEDGER_NATS_TLS_KEY")]
    nats_tls_key: Option<PathBuf>,
}

impl NatsArgs {
    /// The cluster to run on, if one is named.
    fn options(&self) -> Option<JetStreamOptions> {
        (!self.nats_url.is_empty()).then(|| JetStreamOptions {
            stream: self.nats_stream.clone(),
            replicas: self.nats_replicas.max(1),
            credentials: self.nats_credentials.clone(),
            tls_ca: self.nats_tls_ca.clone(),
            tls_cert: self.nats_tls_cert.clone(),
            tls_key: self.nats_tls_key.clone(),
            ..JetStreamOptions::new(self.nats_url.clone())
        })
    }
}

#[derive(clap::Args)]
struct ServeArgs {
    /// Address to listen on for gRPC: IP:PORT or HOST:PORT (resolved once,
    /// at start; `localhost` prefers 127.0.0.1).
    #[arg(
        long,
        env = "COMPLAINT_LEDGER_LISTEN",
        default_value = "127.0.0.1:50051"
    )]
    listen: String,
    /// Address of the operator's HTTP listener: /metrics (Prometheus),
    /// /livez, /readyz. Empty turns it off. It has no authentication: keep
    /// it where only the scraper and the probes reach it.
    #[arg(
        long,
        env = "COMPLAINT_LEDGER_HTTP_LISTEN",
        default_value = "127.0.0.1:9464"
    )]
    http_listen: String,
    /// Directory of the sled store (created if missing).
    #[arg(long, env = "COMPLAINT_LEDGER_DATA_DIR", default_value = "./data")]
    data_dir: PathBuf,
    /// The log's origin: the name in its checkpoints and of its signing key.
    #[arg(long, env = "COMPLAINT_LEDGER_ORIGIN", default_value = complaint_ledger::audit::checkpoint::DEFAULT_ORIGIN)]
    origin: String,
    /// Signed-note private key file for checkpoints; default: generated in
    /// the data directory at first start.
    #[arg(long, env = "COMPLAINT_LEDGER_SIGNING_KEY_FILE")]
    signing_key_file: Option<PathBuf>,
    /// Largest encoded AppendRequest, bytes.
    #[arg(long, env = "COMPLAINT_LEDGER_MAX_REQUEST_BYTES", default_value_t = Limits::default().max_request_bytes)]
    max_request_bytes: usize,
    /// Most events in one AppendRequest.
    #[arg(long, env = "COMPLAINT_LEDGER_MAX_EVENTS_PER_APPEND", default_value_t = Limits::default().max_events_per_append)]
    max_events_per_append: usize,
    /// Largest encoded event payload, bytes (at most 96 KiB).
    #[arg(long, env = "COMPLAINT_LEDGER_MAX_EVENT_BYTES", default_value_t = Limits::default().max_event_bytes as u64,
          value_parser = clap::value_parser!(u64).range(1..=98_304))]
    max_event_bytes: u64,
    /// Largest single text field, bytes.
    #[arg(long, env = "COMPLAINT_LEDGER_MAX_TEXT_BYTES", default_value_t = Limits::default().max_text_bytes)]
    max_text_bytes: usize,
    /// How far an event's occurred_at may lie ahead of the server's clock, seconds.
    #[arg(long, env = "COMPLAINT_LEDGER_MAX_CLOCK_SKEW_SECONDS", default_value_t = Limits::default().max_clock_skew_seconds)]
    max_clock_skew_seconds: u64,
    /// Policy file (calendars per business line, early-warning rules,
    /// deadlines); default: the shipped config/policy.toml.
    #[arg(long, env = "COMPLAINT_LEDGER_POLICY_FILE")]
    policy_file: Option<PathBuf>,
    /// JWT verification key file: the shared secret (HS256) or a PEM public
    /// key (EdDSA, RS256, ES256). COMPLAINT_LEDGER_JWT_KEY may hold the key
    /// itself instead (it wins over the file). Without either the server
    /// runs in development mode, on loopback only.
    #[arg(long, env = "COMPLAINT_LEDGER_JWT_KEY_FILE")]
    jwt_key_file: Option<PathBuf>,
    /// JWT algorithm: HS256, EdDSA, RS256 or ES256.
    #[arg(long, env = "COMPLAINT_LEDGER_JWT_ALGORITHM", default_value = "EdDSA")]
    jwt_algorithm: String,
    /// Required `iss` of bearer tokens.
    #[arg(long, env = "COMPLAINT_LEDGER_JWT_ISSUER")]
    jwt_issuer: Option<String>,
    /// Required `aud` of bearer tokens.
    #[arg(long, env = "COMPLAINT_LEDGER_JWT_AUDIENCE")]
    jwt_audience: Option<String>,
    /// TLS certificate chain (PEM).
    #[arg(long, env = "COMPLAINT_LEDGER_TLS_CERT", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// TLS private key (PEM).
    #[arg(long, env = "COMPLAINT_LEDGER_TLS_KEY", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// CA certificate (PEM) that signs client certificates: requires mTLS.
    #[arg(long, env = "COMPLAINT_LEDGER_TLS_CLIENT_CA", requires = "tls_cert")]
    tls_client_ca: Option<PathBuf>,
    /// Master keys wrapping customers' data keys (`id base64key` lines, the
    /// first current); default: generated at first start as
    /// `<data-dir>/pii-master.key`. Keep a copy apart from the data.
    #[arg(long, env = "COMPLAINT_LEDGER_MASTER_KEY_FILE")]
    master_key_file: Option<PathBuf>,
    /// Requests per second per caller (0: unlimited).
    #[arg(long, env = "COMPLAINT_LEDGER_RATE_LIMIT_PER_SECOND", default_value_t = complaint_ledger::config::DEFAULT_RATE_LIMIT)]
    rate_limit_per_second: u32,
    #[command(flatten)]
    nats: NatsArgs,
    /// sled page cache, bytes.
    #[arg(long, env = "COMPLAINT_LEDGER_CACHE_BYTES", default_value_t = SledOptions::default().cache_capacity)]
    cache_bytes: u64,
    /// Events per new run of the event-id index (four full runs merge
    /// into one in the background, by tiers); smaller runs only make
    /// more of them. Tests set it low to exercise the merges.
    #[arg(long, env = "COMPLAINT_LEDGER_ID_RUN_LEN", default_value_t = SledOptions::default().id_run_len as u64, value_parser = clap::value_parser!(u64).range(1..))]
    id_run_len: u64,
    /// Case states the writer keeps between appends (~3.4 KB each for a
    /// case like the seed's); an append to a case not kept folds its
    /// stream from the log first.
    #[arg(long, env = "COMPLAINT_LEDGER_CASE_CACHE", default_value_t = complaint_ledger::ledger::DEFAULT_CASE_CACHE)]
    case_cache: usize,
    /// Cases whose facts the policy board keeps in memory to answer
    /// queries and fold commits (a few KB each for a case like the
    /// seed's): open cases, and closed ones a query asked about; a query
    /// or commit naming a case not kept folds its stream from the log
    /// first.
    #[arg(long, env = "COMPLAINT_LEDGER_BOARD_CACHE", default_value_t = complaint_ledger::ledger::DEFAULT_BOARD_CACHE)]
    board_cache: usize,
    /// Connections open at once. At the limit, the oldest connection that
    /// has sent no request yet is closed to admit a new one; when every one
    /// has, new ones are refused. Keep it below the open-files limit.
    #[arg(long, env = "COMPLAINT_LEDGER_MAX_CONNECTIONS", default_value_t = ConnectionLimits::default().max_connections)]
    max_connections: usize,
    /// Seconds a new connection has to send its first request (TLS and
    /// HTTP/2 set-up included).
    #[arg(long, env = "COMPLAINT_LEDGER_HANDSHAKE_TIMEOUT_SECONDS", default_value_t = ConnectionLimits::default().handshake_timeout.as_secs())]
    handshake_timeout_seconds: u64,
    /// Seconds a connection may stay open with no call in flight.
    #[arg(long, env = "COMPLAINT_LEDGER_IDLE_TIMEOUT_SECONDS", default_value_t = ConnectionLimits::default().idle_timeout.as_secs())]
    idle_timeout_seconds: u64,
    /// Concurrent calls (HTTP/2 streams) per connection.
    #[arg(long, env = "COMPLAINT_LEDGER_MAX_STREAMS_PER_CONNECTION", default_value_t = ConnectionLimits::default().max_streams_per_connection)]
    max_streams_per_connection: u32,
    /// Seconds between passes of the background scrub, which verifies the
    /// whole log again while the server runs and stops appends at the
    /// first damage it finds (0: off).
    #[arg(
        long,
        env = "COMPLAINT_LEDGER_SCRUB_INTERVAL_SECONDS",
        default_value_t = 86_400
    )]
    scrub_interval_seconds: u64,
    /// Seconds between the scrub's tail passes, which verify what was
    /// written since the last verification and move the verified-through
    /// mark, so a restart verifies at most that long's writes (0: only the
    /// full passes move it). Nothing without the scrub.
    #[arg(
        long,
        env = "COMPLAINT_LEDGER_VERIFY_TAIL_SECONDS",
        default_value_t = 600
    )]
    verify_tail_seconds: u64,
    /// Verify every record fully at start (hash chains, indexes, Merkle
    /// tree hashes), not only those written since the last full
    /// verification (the start's, or the scrub's last pass). Always so
    /// when the scrub is off.
    #[arg(long, env = "COMPLAINT_LEDGER_VERIFY_ALL_AT_START")]
    verify_all_at_start: bool,
}

/// The address `--listen` names: an IP address and port, or a host name
/// resolved now (IPv4 first, so `localhost` is 127.0.0.1).
fn resolve_listen(what: &str, addr: &str) -> anyhow::Result<SocketAddr> {
    use std::net::ToSocketAddrs;
    if let Ok(a) = addr.parse() {
        return Ok(a);
    }
    let mut found: Vec<SocketAddr> = addr
        .to_socket_addrs()
        .map_err(|e| {
            anyhow::anyhow!("{what} {addr:?} is not an address to listen on (HOST:PORT): {e}")
        })?
        .collect();
    found.sort_by_key(|a| !a.is_ipv4());
    found
        .into_iter()
        .next()
        .ok_or_else(|| anyhow::anyhow!("{what} {addr:?} resolves to no address"))
}

/// The JWT verifier `serve` is configured with, if any: the key from
/// COMPLAINT_LEDGER_JWT_KEY or `--jwt-key-file`, the issuer and audience
/// both required with it.
fn token_verifier(a: &ServeArgs) -> anyhow::Result<Option<TokenVerifier>> {
    let inline = std::env::var("COMPLAINT_LEDGER_JWT_KEY")
        .ok()
        .filter(|k| !k.trim().is_empty());
    if inline.is_none() && a.jwt_key_file.is_none() {
        if a.jwt_issuer.is_some() || a.jwt_audience.is_some() {
            anyhow::bail!("a JWT issuer or audience is configured but no verification key: set --jwt-key-file (COMPLAINT_LEDGER_JWT_KEY_FILE) or COMPLAINT_LEDGER_JWT_KEY");
        }
        return Ok(None);
    }
    let (Some(issuer), Some(audience)) = (&a.jwt_issuer, &a.jwt_audience) else {
        anyhow::bail!("JWT verification needs the issuer and the audience tokens must carry: set --jwt-issuer (COMPLAINT_LEDGER_JWT_ISSUER) and --jwt-audience (COMPLAINT_LEDGER_JWT_AUDIENCE)");
    };
    let verifier = match (&inline, &a.jwt_key_file) {
        (Some(key), _) => {
            if a.jwt_key_file.is_some() {
                tracing::info!("COMPLAINT_LEDGER_JWT_KEY is set: it is used, not the key file");
            }
            TokenVerifier::from_key(&a.jwt_algorithm, key.trim().as_bytes(), issuer, audience)
                .map_err(|e| anyhow::anyhow!("COMPLAINT_LEDGER_JWT_KEY: {e}"))?
        }
        (None, Some(file)) => TokenVerifier::new(&a.jwt_algorithm, file, issuer, audience)
            .map_err(anyhow::Error::msg)?,
        (None, None) => unreachable!("checked above"),
    };
    Ok(Some(verifier))
}

/// The signals that stop the server gracefully, listened for from the
/// moment this is called: a SIGTERM that arrives while a large store is
/// still being checked is kept, and the server stops as soon as it serves,
/// instead of dying to the signal's default action.
fn shutdown_signal() -> impl std::future::Future<Output = ()> + Send + 'static {
    #[cfg(unix)]
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    #[cfg(unix)]
    let mut int = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt()).ok();
    async move {
        #[cfg(unix)]
        {
            let term = async {
                match term.as_mut() {
                    Some(s) => {
                        s.recv().await;
                    }
                    None => std::future::pending::<()>().await,
                }
            };
            let int = async {
                match int.as_mut() {
                    Some(s) => {
                        s.recv().await;
                    }
                    None => std::future::pending::<()>().await,
                }
            };
            tokio::select! {
                _ = int => tracing::info!("SIGINT received"),
                _ = term => tracing::info!("SIGTERM received"),
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
            tracing::info!("interrupt received");
        }
    }
}

async fn run(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Serve(a) => {
            let a = *a;
            let cluster = a.nats.options();
            let stop = shutdown_signal();
            let policy = match &a.policy_file {
                Some(p) => PolicyConfig::load(p).map_err(anyhow::Error::msg)?,
                None => PolicyConfig::default(),
            };
            let policy = Arc::new(Policy::new(policy).map_err(anyhow::Error::msg)?);
            let tokens = token_verifier(&a)?;
            let listen = resolve_listen("--listen", &a.listen)?;
            let http_listen = match a.http_listen.trim() {
                "" => None,
                addr => Some(resolve_listen("--http-listen", addr)?),
            };
            let tls = match (a.tls_cert, a.tls_key) {
                (Some(cert), Some(key)) => Some(TlsFiles {
                    cert,
                    key,
                    client_ca: a.tls_client_ca,
                }),
                _ => None,
            };
            let config = ServerConfig {
                auth: AuthConfig {
                    tokens,
                    tls,
                    rate_limit_per_second: a.rate_limit_per_second,
                },
                connections: ConnectionLimits {
                    max_connections: a.max_connections.max(1),
                    handshake_timeout: std::time::Duration::from_secs(
                        a.handshake_timeout_seconds.max(1),
                    ),
                    idle_timeout: std::time::Duration::from_secs(a.idle_timeout_seconds.max(1)),
                    max_streams_per_connection: a.max_streams_per_connection.max(1),
                    ..ConnectionLimits::default()
                },
                listen,
                http_listen,
                scrub_interval: (a.scrub_interval_seconds > 0)
                    .then(|| std::time::Duration::from_secs(a.scrub_interval_seconds)),
                verify_tail_interval: (a.verify_tail_seconds > 0)
                    .then(|| std::time::Duration::from_secs(a.verify_tail_seconds)),
                data_dir: a.data_dir,
                ledger: LedgerOptions {
                    limits: Limits {
                        max_request_bytes: a.max_request_bytes,
                        max_events_per_append: a.max_events_per_append,
                        max_event_bytes: a.max_event_bytes as usize,
                        max_text_bytes: a.max_text_bytes,
                        max_clock_skew_seconds: a.max_clock_skew_seconds,
                    },
                    sled: SledOptions {
                        cache_capacity: a.cache_bytes,
                        id_run_len: a.id_run_len as usize,
                        ..SledOptions::default()
                    },
                    cluster,
                    origin: a.origin,
                    signing_key_file: a.signing_key_file,
                    policy,
                    master_key_file: a.master_key_file,
                    verify_all_at_start: a.verify_all_at_start,
                    case_cache: a.case_cache,
                    board_cache: a.board_cache,
                },
            };
            complaint_ledger::api::server::run(config, stop).await
        }
        Command::Health {
            service,
            timeout_seconds,
            server,
        } => {
            let timeout = std::time::Duration::from_secs_f64(timeout_seconds.clamp(0.1, 3600.0));
            health::check(&server, &service, timeout).await
        }
        Command::Rebuild {
            data_dir,
            policy_file,
            server,
        } => match (data_dir, server.server.is_some()) {
            (Some(dir), false) => {
                let policy = match &policy_file {
                    Some(p) => PolicyConfig::load(p).map_err(anyhow::Error::msg)?,
                    None => PolicyConfig::default(),
                };
                let policy = Policy::new(policy).map_err(anyhow::Error::msg)?;
                rebuild::offline(&dir, policy.escalate_within_nanos())
            }
            (None, true) => rebuild::online(&server).await,
            _ => anyhow::bail!("say what to rebuild: --data-dir DIR (server stopped) or --server URL"),
        },
        Command::RotateMasterKey {
            data_dir,
            master_key_file,
        } => complaint_ledger::cli::keys::rotate_master_key(&data_dir, &master_key_file),
        Command::Replay { case_id, as_of, server } => replay::run(&server, &case_id, as_of).await,
        Command::Import { file, batch, server } => complaint_ledger::cli::import::run(&server, &file, batch).await,
        Command::Checkpoint { out, pubkey, server } => audit::keep_checkpoint(&server, &out, pubkey.as_deref()).await,
        Command::Export {
            case_id,
            out,
            since,
            server,
        } => audit::export(&server, &case_id, &out, since.as_deref()).await,
        Command::Migrate {
            data_dir,
            signing_key_file,
            master_key_file,
            nats,
        } => {
            let cluster = nats
                .options()
                .ok_or_else(|| anyhow::anyhow!("migrate needs the cluster: --nats-url"))?;
            tokio::task::spawn_blocking(move || {
                complaint_ledger::cli::migrate::run(
                    &data_dir,
                    signing_key_file.as_deref(),
                    master_key_file.as_deref(),
                    &cluster,
                )
            })
            .await?
        }
        Command::Verify {
            bundle,
            pubkey,
            since,
            data_dir,
            signing_key_file,
            master_key_file,
            adopt_witness,
            nats,
            server,
        } => match (bundle, data_dir, since, server.server.is_some()) {
            (None, Some(dir), _, _) => {
                let cluster = nats.options();
                tokio::task::spawn_blocking(move || {
                    audit::verify_data_dir(
                        &dir,
                        signing_key_file.as_deref(),
                        master_key_file.as_deref(),
                        adopt_witness,
                        cluster.as_ref(),
                    )
                })
                .await?
            }
            (Some(file), None, since, _) => {
                let key = pubkey.ok_or_else(|| anyhow::anyhow!("verifying a bundle needs --pubkey (the key you pinned)"))?;
                audit::verify_bundle_file(&file, &key, since.as_deref())
            }
            (None, None, Some(since), _) => {
                let key = pubkey.ok_or_else(|| anyhow::anyhow!("verifying growth needs --pubkey (the key you pinned)"))?;
                audit::verify_growth(&server, &since, &key).await
            }
            _ => anyhow::bail!("say what to verify: a bundle FILE with --pubkey, --data-dir DIR, or --since CHECKPOINT --server URL --pubkey KEY"),
        },
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    complaint_ledger::api::ops_service::count_allocated_with(jemalloc_allocated);
    let json = cli.log_format == LogFormat::Json;
    let telemetry = match complaint_ledger::telemetry::init(&cli.log, cli.log_format) {
        Ok(t) => Some(t),
        Err(e) => {
            eprintln!("error: {e:#}");
            return ExitCode::FAILURE;
        }
    };
    let result = run(cli.command).await;
    if let Some(t) = telemetry {
        t.shutdown();
    }
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // A log collector reading JSON lines gets the fatal error as
            // one of them.
            if json {
                tracing::error!(error = %format!("{e:#}"), "fatal");
            } else {
                eprintln!("error: {e:#}");
            }
            ExitCode::FAILURE
        }
    }
}
