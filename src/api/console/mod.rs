//! The console: a web page for auditors and ops, served by the same binary
//! on the operator's HTTP listener under `/console`.
//!
//! Why in the binary: a dispute file is read where the ledger runs, and a
//! second deployable (a node build, a CDN) would be one more thing to keep
//! in step with the API. The page, its style and its script are embedded
//! (`assets/`); nothing is fetched from elsewhere, and the
//! Content-Security-Policy says so to the browser.
//!
//! Everything it shows comes through [`rpc`]: the API's own read methods,
//! authenticated and authorized as gRPC calls to them, masked and logged by
//! their own handlers. Two things are the console's own: the calendar days
//! that shade its time axis ([`calendar`]), and the dossier, a case as one
//! self-contained HTML file ([`dossier`]).
//!
//! Authentication: the bearer token a person enters once per browser
//! session, sent as `Authorization`; in development mode (no token
//! verification configured) the `x-actor` header, and then only from a
//! loopback peer, since the HTTP listener may be bound wider than the gRPC
//! one for scrapers.

pub mod assets;
pub mod calendar;
pub mod dossier;
pub mod rpc;

use crate::api::auth::AuthState;
use crate::ledger::Ledger;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use rpc::{Method, Refusal};
use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use tonic::Status;

/// The console's state, once the ledger is open.
pub struct Console {
    pub(crate) ledger: Arc<Ledger>,
    pub(crate) auth: Arc<AuthState>,
    pub(crate) services: rpc::Services,
    pub(crate) mapping: rpc::Mapping,
}

impl Console {
    pub fn new(
        ledger: Arc<Ledger>,
        auth: Arc<AuthState>,
        stopping: tokio::sync::watch::Receiver<bool>,
    ) -> anyhow::Result<Self> {
        use crate::api::*;
        Ok(Self {
            services: rpc::Services {
                cases: cases_service::CasesService::new(ledger.clone()),
                audit: audit_service::AuditService::new(ledger.clone()),
                policies: policies_service::PoliciesService::new(ledger.clone()),
                reads: ledger_service::LedgerService::new(ledger.clone(), stopping),
            },
            mapping: rpc::Mapping::new()?,
            ledger,
            auth,
        })
    }

    fn check_peer(&self, peer: SocketAddr) -> Result<(), Refusal> {
        check_peer(self.auth.development(), peer)
    }

    /// Calls one read for `caller`, as `rpc::call`, after the wait a gRPC
    /// read makes (`api::catch_up`): the console calls the services past
    /// the gRPC layers, so every console read goes through here.
    async fn read(
        &self,
        method: Method,
        caller: crate::security::roles::Caller,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<serde_json::Value, Refusal> {
        self.ledger
            .caught_up()
            .await
            .map_err(|e| Refusal(crate::api::status::to_status(e)))?;
        rpc::call(&self.services, &self.mapping, method, caller, headers, body).await
    }
}

/// Refuses a development-mode call from beyond loopback: without token
/// verification every caller has every role, which only the machine's
/// own users may have.
fn check_peer(development: bool, peer: SocketAddr) -> Result<(), Refusal> {
    if development && !peer.ip().is_loopback() {
        return Err(Refusal(Status::permission_denied(
            "development mode (no token verification configured): the console answers only on loopback",
        )));
    }
    Ok(())
}

/// Where the listener finds the console: set once the ledger is open.
pub type Slot = Arc<OnceLock<Console>>;

/// The console's routes, nested under `/console` by the HTTP listener.
pub fn routes() -> axum::Router<Slot> {
    axum::Router::new()
        .route("/", get(page))
        .route("/console.css", get(style))
        .route("/console.js", get(script))
        .route("/api/whoami", get(whoami))
        .route("/api/rpc/{service}/{method}", post(call))
        .route("/api/calendar", get(calendar_days))
        .route("/api/dossier/{case_id}", get(dossier_file))
}

/// What every console response says to the browser: nothing from
/// elsewhere, no framing, no sniffing, no referrer.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

fn secured(mut r: Response, cache: bool) -> Response {
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    if !cache {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    r
}

fn asset(kind: &'static str, body: &'static str) -> Response {
    secured(([(header::CONTENT_TYPE, kind)], body).into_response(), true)
}

async fn page() -> Response {
    asset("text/html; charset=utf-8", assets::PAGE)
}

async fn style() -> Response {
    asset("text/css; charset=utf-8", assets::STYLE)
}

async fn script() -> Response {
    asset("text/javascript; charset=utf-8", assets::SCRIPT)
}

fn refused(r: Refusal) -> Response {
    let status = r.http_status();
    secured((status, axum::Json(r.body())).into_response(), false)
}

fn json(v: serde_json::Value) -> Response {
    secured(axum::Json(v).into_response(), false)
}

/// The console of the slot for a caller at `peer`: 503 while the ledger
/// opens, 403 for a development-mode caller beyond loopback.
fn console(slot: &Slot, peer: SocketAddr) -> Result<&Console, Refusal> {
    let c = slot
        .get()
        .ok_or_else(|| Refusal(Status::unavailable("starting: the ledger is being opened")))?;
    c.check_peer(peer)?;
    Ok(c)
}

/// A JSON answer, or the refusal.
fn answer(result: Result<serde_json::Value, Refusal>) -> Response {
    match result {
        Ok(v) => json(v),
        Err(r) => refused(r),
    }
}

/// Who the console is talking for: the actor, roles, line scope and
/// whether personal data is shown, so the page can say so.
async fn whoami(
    State(slot): State<Slot>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> Response {
    let result = (|| {
        let c = console(&slot, peer)?;
        let caller = rpc::authorize(&c.auth, Method::ListCases, &headers)?;
        Ok::<_, Refusal>(serde_json::json!({
            "actor": caller.actor,
            "roles": caller.roles.iter().map(|r| r.name()).collect::<Vec<_>>(),
            "businessLine": caller.business_line,
            "seesPersonalData": caller.sees_personal_data(),
            "development": c.auth.development(),
            "origin": c.ledger.origin(),
            "publicKey": c.ledger.public_key(),
        }))
    })();
    answer(result)
}

async fn call(
    State(slot): State<Slot>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path((service, method)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let result = async {
        let c = console(&slot, peer)?;
        let method = Method::parse(&service, &method).ok_or_else(|| {
            Refusal(Status::unimplemented(format!(
                "{service}/{method} is not a read the console may call"
            )))
        })?;
        let caller = rpc::authorize(&c.auth, method, &headers)?;
        c.read(method, caller, &headers, &body).await
    }
    .await;
    answer(result)
}

async fn calendar_days(
    State(slot): State<Slot>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Query(q): Query<calendar::DaysQuery>,
    headers: HeaderMap,
) -> Response {
    let result = (|| {
        let c = console(&slot, peer)?;
        // Calendars are not personal: anyone who may read a case may see
        // the days its deadlines count.
        rpc::authorize(&c.auth, Method::GetCase, &headers)?;
        calendar::days(c.ledger.policy(), &q)
    })();
    answer(result)
}

async fn dossier_file(
    State(slot): State<Slot>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path(case_id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let result = async {
        let c = console(&slot, peer)?;
        dossier::build(c, &case_id, &headers).await
    }
    .await;
    match result {
        Ok(html) => {
            let name = format!(
                "attachment; filename=\"case-{}-dossier.html\"",
                case_id.replace(|ch: char| !ch.is_ascii_alphanumeric() && ch != '-', "_")
            );
            let mut r = (
                StatusCode::OK,
                [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
                html,
            )
                .into_response();
            if let Ok(v) = HeaderValue::from_str(&name) {
                r.headers_mut().insert(header::CONTENT_DISPOSITION, v);
            }
            secured(r, false)
        }
        Err(r) => refused(r),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn development_mode_answers_loopback_only() {
        let lo: SocketAddr = "127.0.0.1:5000".parse().unwrap();
        let lo6: SocketAddr = "[::1]:5000".parse().unwrap();
        let lan: SocketAddr = "10.1.2.3:5000".parse().unwrap();
        assert!(check_peer(true, lo).is_ok());
        assert!(check_peer(true, lo6).is_ok());
        let refused = check_peer(true, lan).unwrap_err();
        assert_eq!(refused.http_status(), StatusCode::FORBIDDEN);
        assert!(refused.0.message().contains("loopback"));
        // With tokens verified, the peer does not matter.
        assert!(check_peer(false, lan).is_ok());
    }
}
