//! Connections: how many, for how long, and what an idle one costs.
//!
//! Without limits, ~1,100 idle TCP connections under the common limit of
//! 1,024 open files locked every client out while the accept loop spun on
//! `EMFILE`. Here the server accepts through its own loop:
//!
//! - at most `max_connections` at once. At the limit, the oldest connection
//!   that has not yet sent a request (a handshake that never finished, or an
//!   idle socket) is closed to admit the new one; only when every
//!   connection has proven itself is the new one refused (closed at once).
//!   Idle sockets therefore cannot lock real clients out.
//! - a connection must send its first request within `handshake_timeout`
//!   (TLS and HTTP/2 set-up included), and is closed after `idle_timeout`
//!   without a request in flight. A response still streaming (a live
//!   `Subscribe` on a quiet night) counts as in flight.
//! - an accept error (`EMFILE`, `ENFILE`) backs off instead of spinning.
//!
//! HTTP/2 keepalive pings (which find dead peers) and the per-connection
//! stream limit are set on the tonic server (see `api::server`).

pub use crate::config::ConnectionLimits;
use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tonic::codegen::http;
use tonic::transport::server::{Connected, TcpConnectInfo};

/// What the server knows of one connection.
struct Activity {
    accepted: Instant,
    /// Milliseconds after `accepted` of the last request's start or end.
    last_ms: AtomicU64,
    in_flight: AtomicUsize,
    /// A request arrived: the handshake is done.
    proven: AtomicBool,
    /// Closed to make room (see the module doc).
    evicted: AtomicBool,
    waker: Mutex<Option<Waker>>,
}

impl Activity {
    fn touch(&self) {
        let ms = u64::try_from(self.accepted.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_ms.store(ms, Ordering::Relaxed);
    }

    fn wake(&self) {
        if let Some(w) = self.waker.lock().expect("waker lock").take() {
            w.wake();
        }
    }
}

/// The open connections, by peer address.
pub struct Registry {
    limits: ConnectionLimits,
    open: Mutex<HashMap<SocketAddr, Arc<Activity>>>,
    /// Connections refused at the limit, and closed to make room.
    pub refused: AtomicU64,
    pub evicted: AtomicU64,
}

impl Registry {
    pub fn new(limits: ConnectionLimits) -> Arc<Self> {
        Arc::new(Self {
            limits,
            open: Mutex::new(HashMap::new()),
            refused: AtomicU64::new(0),
            evicted: AtomicU64::new(0),
        })
    }

    pub fn limits(&self) -> &ConnectionLimits {
        &self.limits
    }

    /// Connections open now.
    pub fn open(&self) -> usize {
        self.open.lock().expect("connections lock").len()
    }

    fn admit(&self, peer: SocketAddr) -> Option<Arc<Activity>> {
        let mut open = self.open.lock().expect("connections lock");
        if open.len() >= self.limits.max_connections {
            let oldest_unproven = open
                .iter()
                .filter(|(_, a)| !a.proven.load(Ordering::Relaxed))
                .min_by_key(|(_, a)| a.accepted)
                .map(|(p, _)| *p);
            let victim = oldest_unproven.and_then(|p| open.remove(&p))?;
            victim.evicted.store(true, Ordering::Relaxed);
            victim.wake();
            self.evicted.fetch_add(1, Ordering::Relaxed);
        }
        let activity = Arc::new(Activity {
            accepted: Instant::now(),
            last_ms: AtomicU64::new(0),
            in_flight: AtomicUsize::new(0),
            proven: AtomicBool::new(false),
            evicted: AtomicBool::new(false),
            waker: Mutex::new(None),
        });
        open.insert(peer, activity.clone());
        Some(activity)
    }

    fn leave(&self, peer: &SocketAddr, activity: &Arc<Activity>) {
        let mut open = self.open.lock().expect("connections lock");
        if open.get(peer).is_some_and(|a| Arc::ptr_eq(a, activity)) {
            open.remove(peer);
        }
    }

    /// A request from `peer` starts; the guard ends it (kept by the
    /// response body, so a stream is in flight until it ends).
    pub fn request_started(&self, peer: SocketAddr) -> Option<RequestGuard> {
        let activity = self
            .open
            .lock()
            .expect("connections lock")
            .get(&peer)?
            .clone();
        activity.proven.store(true, Ordering::Relaxed);
        activity.in_flight.fetch_add(1, Ordering::Relaxed);
        activity.touch();
        Some(RequestGuard(activity))
    }
}

/// A request in flight on a connection.
pub struct RequestGuard(Arc<Activity>);

impl Drop for RequestGuard {
    fn drop(&mut self) {
        self.0.touch();
        if self.0.in_flight.fetch_sub(1, Ordering::Relaxed) == 1 {
            // The idle clock starts now: let the connection re-arm its timer.
            self.0.wake();
        }
    }
}

/// An accepted connection that closes itself when evicted, when its
/// handshake takes too long, or when idle too long.
pub struct Conn {
    io: TcpStream,
    peer: SocketAddr,
    local: Option<SocketAddr>,
    activity: Arc<Activity>,
    registry: Arc<Registry>,
    timer: Pin<Box<tokio::time::Sleep>>,
}

impl Drop for Conn {
    fn drop(&mut self) {
        self.registry.leave(&self.peer, &self.activity);
    }
}

impl Connected for Conn {
    type ConnectInfo = TcpConnectInfo;

    fn connect_info(&self) -> TcpConnectInfo {
        TcpConnectInfo {
            local_addr: self.local,
            remote_addr: Some(self.peer),
        }
    }
}

impl Conn {
    /// Why the connection must close now, if it must; otherwise arms the
    /// timer for the next deadline.
    fn expired(&mut self, cx: &mut Context<'_>) -> Option<&'static str> {
        *self.activity.waker.lock().expect("waker lock") = Some(cx.waker().clone());
        loop {
            let a = &self.activity;
            if a.evicted.load(Ordering::Relaxed) {
                return Some("closed to admit a new connection: this one sent no request");
            }
            let limits = self.registry.limits;
            let deadline = if !a.proven.load(Ordering::Relaxed) {
                a.accepted + limits.handshake_timeout
            } else if a.in_flight.load(Ordering::Relaxed) == 0 {
                a.accepted
                    + Duration::from_millis(a.last_ms.load(Ordering::Relaxed))
                    + limits.idle_timeout
            } else {
                // Busy: look again after a while (a guard's end wakes us).
                Instant::now() + limits.idle_timeout
            };
            if Instant::now() >= deadline {
                return Some(if a.proven.load(Ordering::Relaxed) {
                    "idle timeout"
                } else {
                    "handshake timeout: no request"
                });
            }
            self.timer.as_mut().reset(deadline.into());
            if self.timer.as_mut().poll(cx).is_pending() {
                return None;
            }
        }
    }
}

fn closed(why: &'static str) -> io::Error {
    io::Error::new(io::ErrorKind::TimedOut, why)
}

impl AsyncRead for Conn {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if let Some(why) = self.expired(cx) {
            return Poll::Ready(Err(closed(why)));
        }
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl AsyncWrite for Conn {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if self.activity.evicted.load(Ordering::Relaxed) {
            return Poll::Ready(Err(closed("closed to admit a new connection")));
        }
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }
}

/// Accepts connections on `listener` within the registry's limits, as a
/// stream for `serve_with_incoming`. The accept task ends with the stream.
pub fn incoming(
    listener: TcpListener,
    registry: Arc<Registry>,
) -> tokio_stream::wrappers::ReceiverStream<io::Result<Conn>> {
    let (tx, rx) = tokio::sync::mpsc::channel(64);
    tokio::spawn(async move {
        let mut last_warning: Option<Instant> = None;
        let mut warn = |what: String| {
            if last_warning.is_none_or(|t| t.elapsed() > Duration::from_secs(10)) {
                tracing::warn!("{what}");
                last_warning = Some(Instant::now());
            }
        };
        loop {
            let accepted = tokio::select! {
                a = listener.accept() => a,
                _ = tx.closed() => return,
            };
            match accepted {
                Ok((io, peer)) => {
                    let _ = io.set_nodelay(true);
                    let Some(activity) = registry.admit(peer) else {
                        registry.refused.fetch_add(1, Ordering::Relaxed);
                        warn(format!(
                            "connection from {peer} refused: {} connections are open, each with a request (--max-connections)",
                            registry.limits.max_connections
                        ));
                        continue;
                    };
                    let conn = Conn {
                        local: io.local_addr().ok(),
                        io,
                        peer,
                        activity,
                        registry: registry.clone(),
                        timer: Box::pin(tokio::time::sleep(Duration::ZERO)),
                    };
                    if tx.send(Ok(conn)).await.is_err() {
                        return;
                    }
                }
                Err(e) => {
                    // EMFILE and the like: new connections wait in the
                    // backlog instead of the loop spinning on the error.
                    warn(format!("accepting a connection failed ({e}); backing off for 100 ms. Raise the open-files limit (LimitNOFILE) or lower --max-connections"));
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    });
    tokio_stream::wrappers::ReceiverStream::new(rx)
}

/// A response body that keeps its request counted as in flight until the
/// body ends (or is dropped).
pub struct GuardedBody {
    inner: tonic::body::Body,
    _guard: Option<RequestGuard>,
}

impl GuardedBody {
    pub fn wrap(inner: tonic::body::Body, guard: Option<RequestGuard>) -> tonic::body::Body {
        match guard {
            None => inner,
            Some(g) => tonic::body::Body::new(GuardedBody {
                inner,
                _guard: Some(g),
            }),
        }
    }
}

impl http_body::Body for GuardedBody {
    type Data = bytes::Bytes;
    type Error = tonic::Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

/// The tower layer that counts each request as in flight on its connection.
#[derive(Clone)]
pub struct ActivityLayer(pub Arc<Registry>);

impl<S> tower::Layer<S> for ActivityLayer {
    type Service = Activities<S>;
    fn layer(&self, inner: S) -> Activities<S> {
        Activities {
            inner,
            registry: self.0.clone(),
        }
    }
}

#[derive(Clone)]
pub struct Activities<S> {
    inner: S,
    registry: Arc<Registry>,
}

type BoxFuture<T> = Pin<Box<dyn std::future::Future<Output = T> + Send>>;

impl<S, B> tower::Service<http::Request<B>> for Activities<S>
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
        use tonic::transport::server::TlsConnectInfo;
        let ext = req.extensions();
        let peer = ext
            .get::<TcpConnectInfo>()
            .and_then(|i| i.remote_addr())
            .or_else(|| {
                ext.get::<TlsConnectInfo<TcpConnectInfo>>()
                    .and_then(|i| i.get_ref().remote_addr())
            });
        let guard = peer.and_then(|p| self.registry.request_started(p));
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        Box::pin(async move {
            let response = inner.call(req).await?;
            Ok(response.map(|body| GuardedBody::wrap(body, guard)))
        })
    }
}
