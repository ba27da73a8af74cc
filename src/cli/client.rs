//! How every subcommand that talks to a server reaches it: the URL, the TLS
//! trust (a private CA, or the system's roots for `https://`), an optional
//! client certificate for mTLS, and the bearer token every call carries —
//! the same credentials a deployed server demands of any other client.
//!
//! The token is read from `--token-file` / `COMPLAINT_LEDGER_TOKEN_FILE`
//! (re-read at each start, so a rotated token is picked up) or from
//! `COMPLAINT_LEDGER_TOKEN`. There is no `--token` flag on purpose: a flag's
//! value shows in every process listing of the machine.

use crate::proto::v1::{
    audit_client::AuditClient, cases_client::CasesClient, ledger_client::LedgerClient,
    ops_client::OpsClient,
};
use anyhow::{bail, Context};
use std::path::{Path, PathBuf};
use tonic::metadata::{Ascii, MetadataValue};
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};
use tonic::{Request, Status};

/// The server a development install listens on.
pub const DEFAULT_SERVER: &str = "http://127.0.0.1:50051";

/// Where the server is and how to prove who we are (flattened into every
/// subcommand that calls a server).
#[derive(clap::Args, Debug, Clone, Default)]
pub struct ServerArgs {
    /// The server: http://HOST:PORT, or https://HOST:PORT for TLS
    /// [default: http://127.0.0.1:50051].
    #[arg(long, env = "COMPLAINT_LEDGER_SERVER")]
    pub server: Option<String>,
    /// A file holding the bearer JWT sent with every call (required by any
    /// server with authentication). COMPLAINT_LEDGER_TOKEN may hold the
    /// token itself instead.
    #[arg(long, env = "COMPLAINT_LEDGER_TOKEN_FILE")]
    pub token_file: Option<PathBuf>,
    /// CA certificate (PEM) the server's certificate must chain to; default:
    /// the system's roots. Needs an https:// server URL.
    #[arg(long, env = "COMPLAINT_LEDGER_CA_CERT")]
    pub ca_cert: Option<PathBuf>,
    /// Client certificate (PEM) for servers that require mTLS.
    #[arg(long, env = "COMPLAINT_LEDGER_CLIENT_CERT", requires = "client_key")]
    pub client_cert: Option<PathBuf>,
    /// The client certificate's private key (PEM).
    #[arg(long, env = "COMPLAINT_LEDGER_CLIENT_KEY", requires = "client_cert")]
    pub client_key: Option<PathBuf>,
    /// The name the server's certificate must carry, where it differs from
    /// the URL's host (e.g. connecting by IP address).
    #[arg(long, env = "COMPLAINT_LEDGER_TLS_SERVER_NAME")]
    pub tls_server_name: Option<String>,
}

/// Adds the bearer token to every call, and nothing without one.
#[derive(Clone)]
pub struct Bearer(Option<MetadataValue<Ascii>>);

impl tonic::service::Interceptor for Bearer {
    fn call(&mut self, mut req: Request<()>) -> Result<Request<()>, Status> {
        if let Some(v) = &self.0 {
            req.metadata_mut().insert("authorization", v.clone());
        }
        Ok(req)
    }
}

/// A channel that carries the caller's credentials.
pub type Authed = InterceptedService<Channel, Bearer>;

/// A connected server: one channel, a client of each service on it.
#[derive(Clone)]
pub struct Connection {
    channel: Channel,
    bearer: Bearer,
    url: String,
}

impl ServerArgs {
    /// For a given URL with no credentials (tests, and `--server` only).
    pub fn url(server: impl Into<String>) -> Self {
        Self {
            server: Some(server.into()),
            ..Self::default()
        }
    }

    /// The server's URL.
    pub fn server_url(&self) -> &str {
        self.server.as_deref().unwrap_or(DEFAULT_SERVER)
    }

    fn bearer(&self) -> anyhow::Result<Bearer> {
        let token = match &self.token_file {
            Some(f) => Some(read_token_file(f)?),
            None => std::env::var("COMPLAINT_LEDGER_TOKEN")
                .ok()
                .map(|t| t.trim().to_string())
                .filter(|t| !t.is_empty()),
        };
        let Some(token) = token else {
            return Ok(Bearer(None));
        };
        let value = format!("Bearer {token}")
            .parse()
            .context("the token is not printable ASCII (is it a JWT?)")?;
        Ok(Bearer(Some(value)))
    }

    fn tls(&self, url: &str) -> anyhow::Result<Option<ClientTlsConfig>> {
        let https = url.starts_with("https://");
        if !https && (self.ca_cert.is_some() || self.client_cert.is_some()) {
            bail!("--ca-cert and --client-cert need an https:// server URL, not {url}");
        }
        if !https {
            return Ok(None);
        }
        let mut tls = ClientTlsConfig::new();
        tls = match &self.ca_cert {
            Some(ca) => tls.ca_certificate(Certificate::from_pem(read(ca)?)),
            None => tls.with_native_roots(),
        };
        if let (Some(cert), Some(key)) = (&self.client_cert, &self.client_key) {
            tls = tls.identity(Identity::from_pem(read(cert)?, read(key)?));
        }
        if let Some(name) = &self.tls_server_name {
            tls = tls.domain_name(name.clone());
        }
        Ok(Some(tls))
    }

    /// Connects, with TLS where the URL says `https://`.
    pub async fn connect(&self) -> anyhow::Result<Connection> {
        let url = self.server_url().to_string();
        let bearer = self.bearer()?;
        let mut endpoint = Endpoint::from_shared(url.clone())
            .with_context(|| format!("{url:?} is not a server URL (http://HOST:PORT)"))?
            .connect_timeout(std::time::Duration::from_secs(10));
        if let Some(tls) = self.tls(&url)? {
            endpoint = endpoint
                .tls_config(tls)
                .context("configuring TLS for the server")?;
        }
        let channel = endpoint
            .connect()
            .await
            .map_err(|e| anyhow::anyhow!("connecting to {url}: {}", error_chain(&e)))?;
        Ok(Connection {
            channel,
            bearer,
            url,
        })
    }
}

impl Connection {
    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn ledger(&self) -> LedgerClient<Authed> {
        LedgerClient::with_interceptor(self.channel.clone(), self.bearer.clone())
            .max_decoding_message_size(64 * 1024 * 1024)
    }

    pub fn cases(&self) -> CasesClient<Authed> {
        CasesClient::with_interceptor(self.channel.clone(), self.bearer.clone())
            .max_decoding_message_size(64 * 1024 * 1024)
    }

    pub fn audit(&self) -> AuditClient<Authed> {
        AuditClient::with_interceptor(self.channel.clone(), self.bearer.clone())
            .max_decoding_message_size(256 * 1024 * 1024)
    }

    pub fn ops(&self) -> OpsClient<Authed> {
        OpsClient::with_interceptor(self.channel.clone(), self.bearer.clone())
    }

    /// The standard gRPC health service (public: no token needed).
    pub fn health(&self) -> tonic_health::pb::health_client::HealthClient<Channel> {
        tonic_health::pb::health_client::HealthClient::new(self.channel.clone())
    }
}

/// A refusal from the server, with what the operator can do about it when
/// it is a missing or rejected credential.
pub fn explain(status: Status) -> anyhow::Error {
    let hint = match status.code() {
        tonic::Code::Unauthenticated => {
            "\nhint: give a bearer token: --token-file FILE, COMPLAINT_LEDGER_TOKEN_FILE or COMPLAINT_LEDGER_TOKEN"
        }
        tonic::Code::PermissionDenied => "\nhint: the token's roles do not allow this call",
        _ => "",
    };
    anyhow::anyhow!(
        "the server answered {:?}: {}{hint}",
        status.code(),
        status.message()
    )
}

fn read_token_file(path: &Path) -> anyhow::Result<String> {
    let token = std::fs::read_to_string(path)
        .with_context(|| format!("reading the token file {}", path.display()))?;
    let token = token.trim();
    if token.is_empty() {
        bail!("the token file {} is empty", path.display());
    }
    Ok(token.to_string())
}

fn read(path: &Path) -> anyhow::Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("reading {}", path.display()))
}

/// tonic's transport errors say "transport error" and hide the cause (an
/// unknown issuer, a refused connection) in their sources.
fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut parts = vec![e.to_string()];
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !parts.contains(&text) {
            parts.push(text);
        }
        source = s.source();
    }
    parts.join(": ")
}
