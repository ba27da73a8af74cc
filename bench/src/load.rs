//! The load generator: N concurrent clients, each running one operation after
//! another until a deadline, each latency recorded in an HDR histogram. Every
//! system under test — the ledger and each reference — is driven by this same
//! loop, so their figures compare.

use hdrhistogram::Histogram;
use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, Instant};

/// A boxed, sendable future.
pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// One client's operation: given its sequence number, do one request and
/// return how many events it carried.
pub type Op = Box<dyn FnMut(u64) -> BoxFuture<Result<u64, String>> + Send>;

/// What a load run measured.
#[derive(Debug, Clone)]
pub struct LoadResult {
    pub clients: usize,
    pub requests: u64,
    pub events: u64,
    pub errors: u64,
    pub first_error: Option<String>,
    pub seconds: f64,
    /// Request latencies in microseconds.
    pub latency_us: Histogram<u64>,
}

impl LoadResult {
    pub fn events_per_second(&self) -> f64 {
        self.events as f64 / self.seconds
    }
    pub fn requests_per_second(&self) -> f64 {
        self.requests as f64 / self.seconds
    }
    /// A latency percentile in milliseconds.
    pub fn p_ms(&self, q: f64) -> f64 {
        self.latency_us.value_at_quantile(q) as f64 / 1000.0
    }
}

/// Runs `clients` copies of an operation (made by `make(client)`) for
/// `duration`.
pub async fn run(
    clients: usize,
    duration: Duration,
    mut make: impl FnMut(usize) -> Op,
) -> LoadResult {
    let start = Instant::now();
    let deadline = start + duration;
    let mut tasks = Vec::with_capacity(clients);
    for c in 0..clients {
        let mut op = make(c);
        tasks.push(tokio::spawn(async move {
            let mut hist =
                Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).expect("histogram bounds");
            let (mut requests, mut events, mut errors, mut first_error) = (0u64, 0u64, 0u64, None);
            let mut i = 0;
            while Instant::now() < deadline {
                let t = Instant::now();
                match op(i).await {
                    Ok(n) => {
                        requests += 1;
                        events += n;
                        let _ = hist.record(t.elapsed().as_micros().max(1) as u64);
                    }
                    Err(e) => {
                        errors += 1;
                        first_error.get_or_insert(e);
                    }
                }
                i += 1;
            }
            (hist, requests, events, errors, first_error)
        }));
    }
    let mut total = LoadResult {
        clients,
        requests: 0,
        events: 0,
        errors: 0,
        first_error: None,
        seconds: 0.0,
        latency_us: Histogram::new_with_bounds(1, 60_000_000, 3).expect("histogram bounds"),
    };
    for t in tasks {
        let (hist, requests, events, errors, first_error) = t.await.expect("load task");
        total.latency_us.add(&hist).expect("same bounds");
        total.requests += requests;
        total.events += events;
        total.errors += errors;
        if total.first_error.is_none() {
            total.first_error = first_error;
        }
    }
    total.seconds = start.elapsed().as_secs_f64();
    total
}
