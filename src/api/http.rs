//! The operator's HTTP listener (`--http-listen`, default 127.0.0.1:9464):
//! `/metrics` for Prometheus, `/livez` and `/readyz` for probes, and the
//! console for people (`/console`, [`super::console`]).
//!
//! It comes up before the ledger opens, so a probe can tell "alive but not
//! ready" while a large store is checked: `/livez` answers 200 as long as
//! the process serves HTTP; `/readyz` answers 200 only while the gRPC
//! services accept calls — 503 with the phase ("starting", "stopping")
//! otherwise. The metrics and probes need no authentication and show counts
//! and timings, never a case's content; the console authenticates every
//! call as the gRPC API does.

use super::metrics::Metrics;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, OnceLock};

/// Where the server is in its life, for `/readyz`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Phase {
    Starting = 0,
    Serving = 1,
    Stopping = 2,
}

/// The shared state of the listener: the phase, and the metrics once the
/// ledger is open.
#[derive(Clone, Default)]
pub struct Probe {
    phase: Arc<AtomicU8>,
    metrics: Arc<OnceLock<Metrics>>,
    console: super::console::Slot,
}

impl Probe {
    pub fn set(&self, phase: Phase) {
        self.phase.store(phase as u8, Ordering::SeqCst);
    }

    pub fn phase(&self) -> Phase {
        match self.phase.load(Ordering::SeqCst) {
            0 => Phase::Starting,
            1 => Phase::Serving,
            _ => Phase::Stopping,
        }
    }

    /// Publishes the metrics (once the ledger they read is open).
    pub fn metrics_ready(&self, m: Metrics) {
        let _ = self.metrics.set(m);
    }

    pub fn metrics(&self) -> Option<&Metrics> {
        self.metrics.get()
    }

    /// Publishes the console (once the ledger it reads is open).
    pub fn console_ready(&self, c: super::console::Console) {
        let _ = self.console.set(c);
    }
}

/// Binds the listener and serves it in the background until the process
/// stops (it outlives the gRPC shutdown so `/readyz` says "stopping").
pub async fn start(
    addr: std::net::SocketAddr,
    probe: Probe,
) -> anyhow::Result<(std::net::SocketAddr, tokio::task::JoinHandle<()>)> {
    use anyhow::Context;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding the HTTP listener {addr} (--http-listen)"))?;
    let bound = listener.local_addr()?;
    let app = axum::Router::new()
        .route("/metrics", get(metrics))
        .route("/livez", get(|| async { "alive\n" }))
        .route("/readyz", get(ready))
        .route(
            "/console/",
            get(|| async { axum::response::Redirect::permanent("/console") }),
        )
        .nest(
            "/console",
            super::console::routes().with_state(probe.console.clone()),
        )
        .with_state(probe);
    let task = tokio::spawn(async move {
        let app = app.into_make_service_with_connect_info::<std::net::SocketAddr>();
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!(error = %e, "the HTTP listener failed");
        }
    });
    Ok((bound, task))
}

async fn metrics(axum::extract::State(probe): axum::extract::State<Probe>) -> impl IntoResponse {
    // A scrape reads the board's table in the store to count unanswered
    // warnings: off the async workers.
    let text = tokio::task::spawn_blocking(move || probe.metrics().map(Metrics::render))
        .await
        .ok()
        .flatten();
    match text {
        None => (
            StatusCode::SERVICE_UNAVAILABLE,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            "starting: the ledger is being opened\n".to_string(),
        ),
        Some(text) => (
            StatusCode::OK,
            [(
                header::CONTENT_TYPE,
                "text/plain; version=0.0.4; charset=utf-8",
            )],
            text,
        ),
    }
}

async fn ready(axum::extract::State(probe): axum::extract::State<Probe>) -> impl IntoResponse {
    match probe.phase() {
        Phase::Serving => (StatusCode::OK, "ready\n"),
        Phase::Starting => (
            StatusCode::SERVICE_UNAVAILABLE,
            "starting: opening and checking the ledger\n",
        ),
        Phase::Stopping => (
            StatusCode::SERVICE_UNAVAILABLE,
            "stopping: finishing in-flight calls\n",
        ),
    }
}
