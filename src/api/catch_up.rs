//! Read-your-writes: before a call is handled, the read models hold every
//! commit the ledger had made durable when the call came
//! (`Ledger::caught_up`). Appends are answered at the durable commit,
//! while the projection host folds it; a read right after one waits for
//! that fold, and pays nothing once the host has caught up. On a
//! clustered ledger the node also holds every record the stream held when
//! the call came, so a read on one node right after an append
//! acknowledged by another sees it. Appends need no wait here: the writer
//! decides on its own states, and adopts what other nodes committed
//! before it decides. Health and reflection never wait.

use crate::ledger::Ledger;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use tonic::codegen::http;

/// Calls that do not wait for the node to catch up.
const NO_WAIT: &[&str] = &[
    "/grpc.health.v1.Health/",
    "/grpc.reflection.",
    "/complaint_ledger.v1.Ledger/Append",
];

#[derive(Clone)]
pub struct CatchUpLayer(pub Arc<Ledger>);

impl CatchUpLayer {
    pub fn new(ledger: &Arc<Ledger>) -> Self {
        Self(ledger.clone())
    }
}

impl<S> tower::Layer<S> for CatchUpLayer {
    type Service = CatchUp<S>;
    fn layer(&self, inner: S) -> CatchUp<S> {
        CatchUp {
            inner,
            ledger: self.0.clone(),
        }
    }
}

#[derive(Clone)]
pub struct CatchUp<S> {
    inner: S,
    ledger: Arc<Ledger>,
}

type BoxFuture<T> = Pin<Box<dyn std::future::Future<Output = T> + Send>>;

impl<S, B> tower::Service<http::Request<B>> for CatchUp<S>
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

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let path = req.uri().path();
        let ledger = (!NO_WAIT.iter().any(|p| path.starts_with(p))).then(|| self.ledger.clone());
        Box::pin(async move {
            if let Some(ledger) = ledger {
                // UNAVAILABLE while the read models or the cluster cannot
                // answer; INTERNAL for a stream found damaged, which
                // waiting does not mend.
                if let Err(e) = ledger.caught_up().await {
                    return Ok(super::status::to_status(e).into_http());
                }
            }
            inner.call(req).await
        })
    }
}
