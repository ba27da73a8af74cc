//! The outermost layer: every call gets a span (the parent of everything it
//! causes, the writer's commit included), counts in `/metrics`, and one
//! access-log line when its response ends.
//!
//! The span continues the caller's trace when the request carries a W3C
//! `traceparent` header, and is exported over OTLP when tracing is on
//! (`telemetry`). The access line is logged at info under the target
//! `complaint_ledger::access`: method, gRPC status, duration, actor, case
//! id, trace id, peer. The status is read where gRPC puts it: the
//! response's headers for a refusal, its trailers otherwise; a call whose
//! response the client abandons is logged as CANCELLED.
//!
//! The actor is noted by the auth layer, the case id by the handlers
//! ([`note_case`]), both through a [`CallNote`] in the request's extensions.

use super::metrics::{code_name, CallMetrics, MethodLabels};
use opentelemetry::trace::TraceContextExt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Instant;
use tonic::codegen::http;
use tracing::Instrument;
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// What the layers and handlers inside learn of a call for its access line.
#[derive(Clone, Default)]
pub struct CallNote(Arc<Mutex<Noted>>);

#[derive(Default)]
struct Noted {
    actor: Option<String>,
    case_id: Option<String>,
}

impl CallNote {
    pub fn actor(&self, actor: &str) {
        self.0.lock().expect("call note").actor = Some(actor.to_string());
    }

    pub fn case(&self, case_id: &str) {
        self.0.lock().expect("call note").case_id = Some(case_id.to_string());
    }
}

/// Notes the case a call is about, for its access-log line and span. An
/// id that is not a well-formed one is not noted: the line stays one line.
pub fn note_case<T>(request: &tonic::Request<T>, case_id: &str) {
    if crate::domain::ids::id_problem(case_id).is_some() {
        return;
    }
    if let Some(n) = request.extensions().get::<CallNote>() {
        n.case(case_id);
    }
    tracing::Span::current().record("case_id", case_id);
}

/// Reads a W3C `traceparent` (and `tracestate`) from request headers.
struct Headers<'a>(&'a http::HeaderMap);

impl opentelemetry::propagation::Extractor for Headers<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(|k| k.as_str()).collect()
    }
}

/// The trace id of a `traceparent` header (`00-<trace id>-<span id>-<flags>`).
fn header_trace_id(headers: &http::HeaderMap) -> Option<String> {
    let v = headers.get("traceparent")?.to_str().ok()?;
    let mut parts = v.split('-');
    let (_version, id) = (parts.next()?, parts.next()?);
    (id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit()) && id != "0".repeat(32))
        .then(|| id.to_ascii_lowercase())
}

#[derive(Clone)]
pub struct ObserveLayer(pub CallMetrics);

impl<S> tower::Layer<S> for ObserveLayer {
    type Service = Observe<S>;
    fn layer(&self, inner: S) -> Observe<S> {
        Observe {
            inner,
            metrics: self.0.clone(),
        }
    }
}

#[derive(Clone)]
pub struct Observe<S> {
    inner: S,
    metrics: CallMetrics,
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

impl<S, B> tower::Service<http::Request<B>> for Observe<S>
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
        let path = req.uri().path().to_string();
        let labels = self.metrics.labels(&path);
        let span = tracing::info_span!(
            target: crate::telemetry::TRACE_TARGET,
            "grpc",
            otel.name = %path.trim_start_matches('/'),
            otel.kind = "server",
            rpc.system = "grpc",
            rpc.service = labels.service,
            rpc.method = labels.method,
            rpc.grpc.status_code = tracing::field::Empty,
            case_id = tracing::field::Empty,
            actor = tracing::field::Empty,
        );
        let parent =
            opentelemetry::global::get_text_map_propagator(|p| p.extract(&Headers(req.headers())));
        // Without an exporter the span has no OpenTelemetry context: the
        // caller's trace id is still logged.
        let _ = span.set_parent(parent);
        let trace_id = {
            let id = span.context().span().span_context().trace_id();
            if id != opentelemetry::trace::TraceId::INVALID {
                Some(id.to_string())
            } else {
                header_trace_id(req.headers())
            }
        };
        let peer = req
            .extensions()
            .get::<tonic::transport::server::TcpConnectInfo>()
            .and_then(|i| i.remote_addr());
        let note = CallNote::default();
        req.extensions_mut().insert(note.clone());
        self.metrics.started(&labels);
        let call = Finish(Some(Call {
            path,
            labels,
            metrics: self.metrics.clone(),
            note,
            trace_id,
            peer,
            started: Instant::now(),
            span: span.clone(),
        }));
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        Box::pin(
            async move {
                let mut call = call;
                let response = inner.call(req).await?;
                let code = response
                    .headers()
                    .get("grpc-status")
                    .map(|v| tonic::Code::from_bytes(v.as_bytes()));
                Ok(match code {
                    // Trailers-only: the call ended with its headers.
                    Some(code) => {
                        call.end(code);
                        response
                    }
                    None => response
                        .map(|body| tonic::body::Body::new(ObservedBody { inner: body, call })),
                })
            }
            .instrument(span),
        )
    }
}

/// A call in progress: what its end records.
struct Call {
    path: String,
    labels: MethodLabels,
    metrics: CallMetrics,
    note: CallNote,
    trace_id: Option<String>,
    peer: Option<std::net::SocketAddr>,
    started: Instant,
    span: tracing::Span,
}

/// Ends a call exactly once: with its status, or as CANCELLED when dropped
/// before one was seen (the client went away, or the server stopped).
struct Finish(Option<Call>);

impl Finish {
    fn end(&mut self, code: tonic::Code) {
        let Some(c) = self.0.take() else {
            return;
        };
        let seconds = c.started.elapsed().as_secs_f64();
        c.metrics.finished(&c.labels, code, seconds);
        let noted = c.note.0.lock().expect("call note");
        let (actor, case_id) = (
            noted.actor.as_deref().unwrap_or("-"),
            noted.case_id.as_deref().unwrap_or("-"),
        );
        c.span.record("rpc.grpc.status_code", code as i32);
        if noted.actor.is_some() {
            c.span.record("actor", actor);
        }
        if noted.case_id.is_some() {
            c.span.record("case_id", case_id);
        }
        let peer = c.peer.map(|p| p.to_string());
        tracing::info!(
            target: "complaint_ledger::access",
            parent: None,
            method = %c.path,
            status = %code_name(code),
            duration_ms = (seconds * 1e6).round() / 1e3,
            actor = %actor,
            case_id = %case_id,
            trace_id = %c.trace_id.as_deref().unwrap_or("-"),
            peer = %peer.as_deref().unwrap_or("-"),
            "call"
        );
    }
}

impl Drop for Finish {
    fn drop(&mut self) {
        self.end(tonic::Code::Cancelled);
    }
}

/// A response body that ends its call at the trailers carrying its status.
struct ObservedBody {
    inner: tonic::body::Body,
    call: Finish,
}

impl http_body::Body for ObservedBody {
    type Data = bytes::Bytes;
    type Error = tonic::Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(code) = frame
                    .trailers_ref()
                    .and_then(|t| t.get("grpc-status"))
                    .map(|v| tonic::Code::from_bytes(v.as_bytes()))
                {
                    self.call.end(code);
                }
            }
            Poll::Ready(Some(Err(status))) => self.call.end(status.code()),
            // The body ended without trailers: not a well-formed gRPC
            // response, which the client reads as INTERNAL.
            Poll::Ready(None) => self.call.end(tonic::Code::Internal),
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}
