//! The store's own runtime. The `EventLog` and `SideTable` traits are
//! blocking (the writer is a thread; queries run on blocking threads), the
//! NATS client is async: each call hands its future to this runtime and
//! waits for the answer, which works from any thread, a runtime's worker
//! included, without nesting runtimes.

use super::StoreError;
use std::future::Future;

pub(crate) struct Bridge {
    rt: Option<tokio::runtime::Runtime>,
}

impl Bridge {
    pub fn new() -> Result<Self, StoreError> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("ledger-nats")
            .enable_all()
            .build()?;
        Ok(Self { rt: Some(rt) })
    }

    /// Runs `f` on the store's runtime and waits for it.
    pub fn run<F>(&self, f: F) -> Result<F::Output, StoreError>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        self.handle().spawn(async move {
            let _ = tx.send(f.await);
        });
        rx.recv()
            .map_err(|_| StoreError::Unavailable("the store's runtime stopped".into()))
    }

    pub fn handle(&self) -> &tokio::runtime::Handle {
        self.rt.as_ref().expect("runtime until dropped").handle()
    }
}

impl Drop for Bridge {
    fn drop(&mut self) {
        // Dropped from an async context too (the server's shutdown):
        // shutting down in the background never blocks there.
        if let Some(rt) = self.rt.take() {
            rt.shutdown_background();
        }
    }
}

/// Runs a read again while the cluster answers that it cannot (a leader
/// being elected after a server was lost answers "no responders" for a
/// moment), up to `patience`; the last failure is the answer after it.
/// Only for reads: a write that failed may have been stored.
pub(crate) async fn read_patiently<T, Fut>(
    patience: std::time::Duration,
    mut read: impl FnMut() -> Fut,
) -> Result<T, StoreError>
where
    Fut: Future<Output = Result<T, StoreError>>,
{
    let deadline = tokio::time::Instant::now() + patience;
    loop {
        match read().await {
            Err(StoreError::Unavailable(why)) if tokio::time::Instant::now() < deadline => {
                tracing::debug!(%why, "the cluster could not answer a read; asking again");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
            other => return other,
        }
    }
}
