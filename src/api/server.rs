//! Hosts the services on one listener: Ledger, Cases, Policies, Privacy,
//! Audit, Ops, gRPC health and reflection (v1 and v1alpha, so grpcurl works
//! with no proto files); the operator's HTTP listener beside it; and shuts
//! down gracefully: every service NOT_SERVING, stop accepting, let
//! in-flight calls finish, commit every queued append, flush and sync the
//! store.

use super::audit_service::AuditService;
use super::auth::{AuthLayer, AuthState};
use super::cases_service::CasesService;
use super::http::{Phase, Probe};
use super::ledger_service::LedgerService;
use super::metrics::Metrics;
use super::observe::ObserveLayer;
use super::ops_service::OpsService;
use super::policies_service::PoliciesService;
use super::privacy_service::PrivacyService;
use crate::config::ServerConfig;
use crate::ledger::Ledger;
use crate::proto::v1::{
    audit_server::AuditServer, cases_server::CasesServer, ledger_server::LedgerServer,
    ops_server::OpsServer, policies_server::PoliciesServer, privacy_server::PrivacyServer,
};
use crate::proto::{ERROR_DETAILS_DESCRIPTOR_SET, FILE_DESCRIPTOR_SET};
use anyhow::Context;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tonic_health::ServingStatus;

/// A server running in the background (used by tests and tools).
pub struct RunningServer {
    pub addr: SocketAddr,
    /// The ledger it serves, for tests that reach under the API (to damage
    /// the store on purpose).
    #[doc(hidden)]
    pub ledger: Arc<Ledger>,
    /// The HTTP listener (`/metrics`, `/livez`, `/readyz`), if configured.
    pub http_addr: Option<SocketAddr>,
    stop: Option<oneshot::Sender<()>>,
    done: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl RunningServer {
    /// `http://addr`, for clients.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops gracefully and waits until the store is closed.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        self.done.await.context("server task")?
    }
}

/// Opens the ledger, binds, and serves in the background.
pub async fn start(config: ServerConfig) -> anyhow::Result<RunningServer> {
    let (probe, http) = start_http(&config).await?;
    let (opened, listener) = open_and_bind(&config).await?;
    let addr = listener.local_addr()?;
    let (stop, stopped) = oneshot::channel::<()>();
    let served = opened.ledger.clone();
    let done = tokio::spawn(serve_on(
        config,
        opened,
        listener,
        probe,
        http.as_ref().map(|h| h.1.abort_handle()),
        async {
            let _ = stopped.await;
        },
    ));
    Ok(RunningServer {
        addr,
        ledger: served,
        http_addr: http.map(|h| h.0),
        stop: Some(stop),
        done,
    })
}

/// Opens the ledger, binds, prints the addresses, and serves until
/// `shutdown`.
pub async fn run(
    config: ServerConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let (probe, http) = start_http(&config).await?;
    let (opened, listener) = open_and_bind(&config).await?;
    let addr = listener.local_addr()?;
    // Plain lines on stdout for scripts and tests; logs go to stderr. A
    // closed stdout (a supervisor that read the first line and left) is no
    // reason to stop serving: errors are ignored, never a panic.
    {
        use std::io::Write;
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "complaint-ledger listening on {addr}");
        if let Some((http_addr, _)) = &http {
            let _ = writeln!(
                out,
                "complaint-ledger metrics and probes on http://{http_addr}"
            );
        }
        let _ = out.flush();
    }
    serve_on(
        config,
        opened,
        listener,
        probe,
        http.as_ref().map(|h| h.1.abort_handle()),
        shutdown,
    )
    .await
}

/// The operator's HTTP listener, up before the ledger opens (`/readyz`
/// says "starting" meanwhile).
async fn start_http(
    config: &ServerConfig,
) -> anyhow::Result<(Probe, Option<(SocketAddr, tokio::task::JoinHandle<()>)>)> {
    // A configuration refused is refused before anything listens.
    check_auth(config)?;
    let probe = Probe::default();
    let http = match config.http_listen {
        Some(addr) => Some(super::http::start(addr, probe.clone()).await?),
        None => None,
    };
    Ok((probe, http))
}

/// The descriptors reflection describes: every file of the API, and
/// google.rpc's error details (a file in both sets is taken once).
fn served_descriptors() -> anyhow::Result<prost_types::FileDescriptorSet> {
    use prost::Message;
    let mut set = prost_types::FileDescriptorSet::decode(FILE_DESCRIPTOR_SET)
        .context("decoding the embedded descriptor set")?;
    let details = prost_types::FileDescriptorSet::decode(ERROR_DETAILS_DESCRIPTOR_SET)
        .context("decoding the error details' descriptor set")?;
    for file in details.file {
        if !set.file.iter().any(|f| f.name() == file.name()) {
            set.file.push(file);
        }
    }
    Ok(set)
}

/// Refuses a configuration that would expose the ledger without
/// authentication, and says which mode the server runs in.
fn check_auth(config: &ServerConfig) -> anyhow::Result<()> {
    let auth = &config.auth;
    if auth.tokens.is_none() {
        if !config.listen.ip().is_loopback() {
            anyhow::bail!(
                "refusing to listen on {} without authentication: configure JWT verification (--jwt-key-file, --jwt-issuer, --jwt-audience), or listen on a loopback address for development",
                config.listen
            );
        }
        if auth.tls.as_ref().is_some_and(|t| t.client_ca.is_some()) {
            anyhow::bail!("client certificates (mTLS) authenticate the connection but name no role: configure JWT verification too");
        }
        tracing::warn!("development mode: no authentication is configured; every caller has every role and is named by the x-actor header (loopback only)");
    } else if auth.tls.is_none() && !config.listen.ip().is_loopback() {
        tracing::warn!(listen = %config.listen, "bearer tokens travel without TLS: terminate TLS in front of this server or configure --tls-cert/--tls-key");
    }
    // The HTTP listener serves no TLS of its own: the console's tokens and
    // pages need a TLS-terminating proxy in front of it (and the browser
    // offers the console's verifier WebCrypto only over HTTPS or loopback).
    if let Some(http) = config.http_listen.filter(|a| !a.ip().is_loopback()) {
        if auth.tokens.is_some() {
            tracing::warn!(http_listen = %http, "the console (/console) is served over plain HTTP: terminate TLS in front of the HTTP listener before people sign in with their tokens");
        } else {
            tracing::warn!(http_listen = %http, "development mode: the console (/console) answers only callers on loopback");
        }
    }
    Ok(())
}

/// The TLS configuration of the server, if any.
fn tls_config(
    files: &crate::config::TlsFiles,
) -> anyhow::Result<tonic::transport::ServerTlsConfig> {
    use tonic::transport::{Certificate, Identity, ServerTlsConfig};
    let read =
        |p: &std::path::Path| std::fs::read(p).with_context(|| format!("reading {}", p.display()));
    let mut tls =
        ServerTlsConfig::new().identity(Identity::from_pem(read(&files.cert)?, read(&files.key)?));
    if let Some(ca) = &files.client_ca {
        tls = tls.client_ca_root(Certificate::from_pem(read(ca)?));
    }
    Ok(tls)
}

/// The ledger as opened.
struct Opened {
    ledger: Arc<Ledger>,
    /// The opening did not read the records under its verified-through mark.
    partial: bool,
}

async fn open_and_bind(config: &ServerConfig) -> anyhow::Result<(Opened, TcpListener)> {
    let (dir, mut opts) = (config.data_dir.clone(), config.ledger.clone());
    // Without the scrub nothing would verify the records under the
    // verified-through mark again while the server runs: the start does.
    opts.verify_all_at_start |= config.scrub_interval.is_none();
    let (ledger, report) = tokio::task::spawn_blocking(move || Ledger::open(&dir, &opts))
        .await?
        .with_context(|| format!("opening the ledger in {}", config.data_dir.display()))?;
    if report.verified_from > 1 {
        tracing::info!(
            data_dir = %config.data_dir.display(),
            records = report.records,
            cases = report.cases,
            verified_from = report.verified_from,
            "ledger opened; records from verified_from on verified fully (hash chains, indexes, Merkle tree hashes), the ones before it not read (a full verification covered them before); the background scrub verifies them all again now"
        );
    } else {
        tracing::info!(
            data_dir = %config.data_dir.display(),
            records = report.records,
            cases = report.cases,
            "ledger opened; every hash chain, index and Merkle tree hash verified"
        );
    }
    tracing::info!(
        origin = ledger.origin(),
        public_key = ledger.public_key(),
        "checkpoints are signed with this key"
    );
    let listener = TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("binding {}", config.listen))?;
    Ok((
        Opened {
            ledger: Arc::new(ledger),
            partial: report.verified_from > 1,
        },
        listener,
    ))
}

/// The services' names, as the health service knows them.
fn service_names() -> [&'static str; 6] {
    use tonic::server::NamedService;
    [
        <LedgerServer<LedgerService> as NamedService>::NAME,
        <CasesServer<CasesService> as NamedService>::NAME,
        <AuditServer<AuditService> as NamedService>::NAME,
        <PrivacyServer<PrivacyService> as NamedService>::NAME,
        <PoliciesServer<PoliciesService> as NamedService>::NAME,
        <OpsServer<OpsService> as NamedService>::NAME,
    ]
}

/// Sets every service's health, and the server's as a whole ("").
async fn set_health(health: &tonic_health::server::HealthReporter, status: ServingStatus) {
    for name in service_names() {
        health.set_service_status(name, status).await;
    }
    health.set_service_status("", status).await;
}

async fn serve_on(
    config: ServerConfig,
    opened: Opened,
    listener: TcpListener,
    probe: Probe,
    http: Option<tokio::task::AbortHandle>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let Opened { ledger, partial } = opened;
    let addr = listener.local_addr()?;
    let (health, health_service) = tonic_health::server::health_reporter();
    let served = served_descriptors()?;
    let scrub_state = Arc::new(crate::processes::scrub::ScrubState::default());
    let metrics = Metrics::new(ledger.clone(), scrub_state.clone(), &served);
    let calls = metrics.calls.clone();
    probe.metrics_ready(metrics);
    let reflection = || {
        tonic_reflection::server::Builder::configure()
            .register_file_descriptor_set(served.clone())
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
    };
    let reflection_v1 = reflection().build_v1()?;
    let reflection_v1alpha = reflection().build_v1alpha()?;
    // Requests up to this size reach our own limit check, which answers
    // RESOURCE_EXHAUSTED naming the limit; larger ones are cut by tonic.
    let decode_cap = (config.ledger.limits.max_request_bytes * 4).max(16 * 1024 * 1024);
    let (stopping_tx, stopping) = tokio::sync::watch::channel(false);
    let stopping_for_scrub = stopping.clone();
    // The rules keep as many cases' tracks as the board keeps cases' facts.
    let early_warning = tokio::spawn(crate::processes::early_warning::run(
        ledger.clone(),
        config.ledger.board_cache,
        stopping.clone(),
    ));
    let ledger_api = LedgerServer::new(LedgerService::new(ledger.clone(), stopping))
        .max_decoding_message_size(decode_cap)
        .max_encoding_message_size(decode_cap);
    let cases_api = CasesServer::new(CasesService::new(ledger.clone()))
        .max_encoding_message_size(64 * 1024 * 1024);
    let audit_api = AuditServer::new(AuditService::new(ledger.clone()))
        .max_encoding_message_size(256 * 1024 * 1024);
    tracing::info!(%addr, "serving complaint_ledger.v1.Ledger, .Cases, .Policies, .Privacy, .Audit, .Ops, grpc.health.v1, reflection v1 and v1alpha");
    let health_on_stop = health.clone();
    let probe_on_stop = probe.clone();
    let auth = Arc::new(AuthState::new(
        config.auth.tokens.clone(),
        config.auth.rate_limit_per_second,
    ));
    probe.console_ready(super::console::Console::new(
        ledger.clone(),
        auth.clone(),
        stopping_for_scrub.clone(),
    )?);
    let limits = config.connections;
    let connections = super::connections::Registry::new(limits);
    let mut builder = tonic::transport::Server::builder()
        .max_concurrent_streams(limits.max_streams_per_connection)
        .http2_keepalive_interval(Some(limits.keepalive_interval))
        .http2_keepalive_timeout(Some(limits.keepalive_timeout));
    if let Some(files) = &config.auth.tls {
        builder = builder.tls_config(tls_config(files)?)?;
    }
    let sweeper = {
        let auth = auth.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(std::time::Duration::from_secs(60)).await;
                auth.forget_idle();
            }
        })
    };
    let calendar_check = spawn_calendar_coverage_check(config.ledger.policy.clone());
    let pending_deadlines = tokio::spawn(crate::processes::pending_deadlines::run(ledger.clone()));
    let scrub = config.scrub_interval.map(|every| {
        tokio::spawn(crate::processes::scrub::run(
            ledger.clone(),
            crate::processes::scrub::Intervals {
                full: every,
                tail: config.verify_tail_interval,
            },
            scrub_state.clone(),
            stopping_for_scrub.clone(),
            partial,
        ))
    });
    set_health(&health, ServingStatus::Serving).await;
    probe.set(Phase::Serving);
    let result = builder
        .layer(ObserveLayer(calls))
        .layer(super::connections::ActivityLayer(connections.clone()))
        .layer(AuthLayer::new(auth))
        .layer(super::catch_up::CatchUpLayer::new(&ledger))
        .add_service(health_service)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha)
        .add_service(ledger_api)
        .add_service(cases_api)
        .add_service(audit_api)
        .add_service(PrivacyServer::new(PrivacyService::new(ledger.clone())))
        .add_service(
            PoliciesServer::new(PoliciesService::new(ledger.clone()))
                .max_encoding_message_size(64 * 1024 * 1024),
        )
        .add_service(OpsServer::new(OpsService::new(ledger.clone(), scrub_state)))
        // TCP_NODELAY: without it, Nagle's algorithm meets the client's
        // delayed ACKs and a stream's last frame waits ~40 ms.
        .serve_with_incoming_shutdown(
            super::connections::incoming(listener, connections),
            async move {
                shutdown.await;
                tracing::info!("shutting down: finishing in-flight calls, ending subscriptions");
                stopping_tx.send_replace(true);
                probe_on_stop.set(Phase::Stopping);
                set_health(&health_on_stop, ServingStatus::NotServing).await;
            },
        )
        .await;
    sweeper.abort();
    calendar_check.abort();
    pending_deadlines.abort();
    if let Some(scrub) = scrub {
        // A pass under way ends when its blocking read does; not waited for.
        scrub.abort();
    }
    // The early-warning process saw `stopping`; let it finish its append.
    let _ = early_warning.await;
    ledger.shutdown().await;
    tracing::info!("ledger closed");
    if let Some(http) = http {
        http.abort();
    }
    result.context("gRPC server")
}

/// Warns at start, and then daily, of a calendar whose covered years end
/// soon (see `Policy::coverage_warnings`): a server runs for months, and the
/// next year's holiday notice has to be added before deadlines reach it.
fn spawn_calendar_coverage_check(
    policy: Arc<crate::policy::Policy>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut daily = tokio::time::interval(std::time::Duration::from_secs(24 * 3600));
        loop {
            daily.tick().await;
            for w in policy.coverage_warnings(crate::time::now_nanos()) {
                tracing::warn!("{w}");
            }
        }
    })
}
