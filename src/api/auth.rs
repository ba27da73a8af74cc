//! The one layer every call passes: it authenticates the caller (a bearer
//! JWT, or in development mode the `x-actor` header), checks the caller's
//! roles against the RPC's row of the access matrix, applies the per-caller
//! rate limit, and hands the [`Caller`] to the services in the request's
//! extensions. Refusals never reach a service: `UNAUTHENTICATED`,
//! `PERMISSION_DENIED` or `RESOURCE_EXHAUSTED` (naming `rate_limit_per_second`).

use crate::security::roles::{allowed_roles, Caller};
use crate::security::tokens::TokenVerifier;
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use std::future::Future;
use std::num::NonZeroU32;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use tonic::codegen::http;
use tonic::{Code, Status};
use tonic_types::StatusExt;

/// Metadata header naming the caller in development mode.
pub const ACTOR_HEADER: &str = "x-actor";

/// How callers are authenticated and limited.
pub struct AuthState {
    /// `None`: development mode (loopback only; checked at start).
    verifier: Option<TokenVerifier>,
    limiter: Option<DefaultKeyedRateLimiter<String>>,
    per_second: u32,
}

impl AuthState {
    pub fn new(verifier: Option<TokenVerifier>, rate_limit_per_second: u32) -> Self {
        let limiter = NonZeroU32::new(rate_limit_per_second)
            .map(|n| RateLimiter::keyed(Quota::per_second(n).allow_burst(n)));
        Self {
            verifier,
            limiter,
            per_second: rate_limit_per_second,
        }
    }

    /// The caller of a request to `path`, or the status refusing it.
    /// `Ok(None)` for public methods (health, reflection).
    pub fn authorize(
        &self,
        path: &str,
        headers: &http::HeaderMap,
    ) -> Result<Option<Caller>, Status> {
        let Some(roles) = allowed_roles(path) else {
            return Ok(None);
        };
        let caller = match &self.verifier {
            None => Caller::development(dev_actor(headers)?),
            Some(v) => {
                let token = headers
                    .get(http::header::AUTHORIZATION)
                    .and_then(|h| h.to_str().ok())
                    .and_then(|h| h.strip_prefix("Bearer "))
                    .ok_or_else(|| {
                        Status::unauthenticated("no credential: send `authorization: Bearer <JWT>`")
                    })?;
                v.verify(token.trim()).map_err(Status::unauthenticated)?
            }
        };
        if !roles.iter().any(|r| caller.has(*r)) {
            let have: Vec<_> = caller.roles.iter().map(|r| r.name()).collect();
            let need: Vec<_> = roles.iter().map(|r| r.name()).collect();
            return Err(Status::permission_denied(format!(
                "role {} may not call {path}; it needs one of: {}",
                have.join(", "),
                need.join(", ")
            )));
        }
        if let Some(l) = &self.limiter {
            if l.check_key(&caller.actor).is_err() {
                let mut details = super::status::info(
                    crate::proto::v1::ErrorReason::RateLimitPerSecond,
                    std::collections::HashMap::new(),
                );
                details.set_quota_failure(vec![tonic_types::QuotaViolation::new(
                    "rate_limit_per_second",
                    format!(
                        "caller {} sent more than {} requests in a second",
                        caller.actor, self.per_second
                    ),
                )]);
                return Err(Status::with_error_details(
                    Code::ResourceExhausted,
                    format!(
                        "rate limit exceeded: at most {} requests per second per caller",
                        self.per_second
                    ),
                    details,
                ));
            }
        }
        Ok(Some(caller))
    }

    /// Development mode: no token verification (loopback only).
    pub fn development(&self) -> bool {
        self.verifier.is_none()
    }

    /// Drops idle callers' rate-limit state (called periodically).
    pub fn forget_idle(&self) {
        if let Some(l) = &self.limiter {
            l.retain_recent();
        }
    }
}

/// The development-mode actor: `dev:<x-actor>` or `anonymous`.
fn dev_actor(headers: &http::HeaderMap) -> Result<String, Status> {
    match headers.get(ACTOR_HEADER) {
        None => Ok("anonymous".to_string()),
        Some(v) => {
            let s = v
                .to_str()
                .map_err(|_| super::status::invalid_field(ACTOR_HEADER, "is not ASCII text"))?;
            if let Some(p) = crate::domain::ids::id_problem(s) {
                return Err(super::status::invalid_field(ACTOR_HEADER, p));
            }
            Ok(format!("dev:{s}"))
        }
    }
}

/// The tower layer installing [`Auth`] in front of every service.
#[derive(Clone)]
pub struct AuthLayer {
    state: Arc<AuthState>,
}

impl AuthLayer {
    pub fn new(state: Arc<AuthState>) -> Self {
        Self { state }
    }
}

impl<S> tower::Layer<S> for AuthLayer {
    type Service = Auth<S>;
    fn layer(&self, inner: S) -> Auth<S> {
        Auth {
            inner,
            state: self.state.clone(),
        }
    }
}

#[derive(Clone)]
pub struct Auth<S> {
    inner: S,
    state: Arc<AuthState>,
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

impl<S, B> tower::Service<http::Request<B>> for Auth<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<tonic::body::Body>>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    B: Send + 'static,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = S::Error;
    type Future = BoxFuture<Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: http::Request<B>) -> Self::Future {
        match self.state.authorize(req.uri().path(), req.headers()) {
            Ok(caller) => {
                if let Some(c) = caller {
                    if let Some(note) = req.extensions().get::<super::observe::CallNote>() {
                        note.actor(&c.actor);
                    }
                    req.extensions_mut().insert(c);
                }
                // The clone is the not-yet-ready one; call the ready one.
                let clone = self.inner.clone();
                let mut inner = std::mem::replace(&mut self.inner, clone);
                Box::pin(async move { inner.call(req).await })
            }
            Err(status) => Box::pin(async move { Ok(status.into_http()) }),
        }
    }
}
