//! The references measured beside the ledger, with the same load generator:
//!
//! - the gRPC ceiling: a unary RPC that does nothing, served by a separate
//!   process like the ledger, with the same payload size;
//! - the disk ceiling: a plain file appended with one `fdatasync` per batch,
//!   at the batch sizes the ledger's group commit actually reached;
//! - a PostgreSQL event table (`bigserial` position, unique (case, version),
//!   unique event id, `synchronous_commit = on`), when a server is given.

use super::load::{self, LoadResult, Op};
use crate::noop::{
    noop_service_client::NoopServiceClient, noop_service_server, PingRequest, PingResponse,
};
use std::io::Write;
use std::time::{Duration, Instant};
use tonic::{Request, Response, Status};

/// The no-op service.
#[derive(Default)]
pub struct Noop;

#[tonic::async_trait]
impl noop_service_server::NoopService for Noop {
    async fn ping(&self, _: Request<PingRequest>) -> Result<Response<PingResponse>, Status> {
        Ok(Response::new(PingResponse {}))
    }
}

/// Serves the no-op service until the process ends (the hidden
/// `noop-server` command).
pub async fn serve_noop() -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    println!("noop listening on {}", listener.local_addr()?);
    tonic::transport::Server::builder()
        .add_service(noop_service_server::NoopServiceServer::new(Noop))
        .serve_with_incoming(
            tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true)),
        )
        .await?;
    Ok(())
}

/// Drives the no-op RPC at `clients` concurrency.
pub async fn grpc_ceiling(
    url: &str,
    clients: usize,
    duration: Duration,
    payload: usize,
) -> anyhow::Result<LoadResult> {
    let mut conns = Vec::with_capacity(clients);
    for _ in 0..clients {
        conns.push(NoopServiceClient::connect(url.to_string()).await?);
    }
    let body = vec![b'x'; payload];
    Ok(load::run(clients, duration, |c| {
        let client = conns[c].clone();
        let body = body.clone();
        let op: Op = Box::new(move |_| {
            let mut client = client.clone();
            let body = body.clone();
            Box::pin(async move {
                client
                    .ping(PingRequest { payload: body })
                    .await
                    .map(|_| 1)
                    .map_err(|e| e.to_string())
            })
        });
        op
    })
    .await)
}

/// Appends `batch` records of `record_bytes` to a new file `path` with one
/// `fdatasync` per batch, for `duration`; returns records per second.
///
/// The file is left in place for the caller to remove once nothing is being
/// measured any more. Removed here, it would slow what is measured next: on a
/// filesystem mounted with online discard (ext4's `discard`, as on the
/// development VM), the blocks of a large deleted file are trimmed during the
/// journal commits that follow, and an `fdatasync` in those seconds can
/// wait 50-150 ms. At 256 clients this file grows past 1 GB; on the
/// development VM, deleting 1.2 GB put four syncs over 40 ms (up to 92 ms)
/// into the next 12 s, where deleting 400 MB put none — and the batched
/// appends are measured right after that level.
pub fn fdatasync_ceiling(
    path: &std::path::Path,
    batch: usize,
    record_bytes: usize,
    duration: Duration,
) -> anyhow::Result<f64> {
    let mut f = std::fs::OpenOptions::new()
        .create_new(true)
        .append(true)
        .open(path)?;
    let buf = vec![0x5a; batch.max(1) * record_bytes];
    let start = Instant::now();
    let mut records = 0u64;
    while start.elapsed() < duration {
        f.write_all(&buf)?;
        f.sync_data()?;
        records += batch.max(1) as u64;
    }
    Ok(records as f64 / start.elapsed().as_secs_f64())
}

/// The PostgreSQL event table a team would otherwise build.
pub const PG_SCHEMA: &str = "
DROP TABLE IF EXISTS bench_events;
CREATE TABLE bench_events (
    position    bigserial PRIMARY KEY,
    case_id     text        NOT NULL,
    version     bigint      NOT NULL,
    event_id    text        NOT NULL UNIQUE,
    event_type  text        NOT NULL,
    occurred_at timestamptz NOT NULL,
    recorded_at timestamptz NOT NULL DEFAULT now(),
    actor       text        NOT NULL,
    payload     bytea       NOT NULL,
    UNIQUE (case_id, version)
);";

const PG_APPEND: &str = "
INSERT INTO bench_events (case_id, version, event_id, event_type, occurred_at, actor, payload)
SELECT $1, COALESCE(MAX(version), 0) + 1, $2, 'NoteAdded', now(), 'bench', $3
FROM bench_events WHERE case_id = $1";

/// Single-event appends to the PostgreSQL table, each its own durable
/// transaction, at `clients` concurrency over `cases` cases. A version
/// conflict (two writers on one case) is retried, as a client would.
pub async fn postgres(
    url: &str,
    clients: usize,
    cases: u64,
    duration: Duration,
    payload: usize,
    tag: &str,
) -> anyhow::Result<LoadResult> {
    let mut conns = Vec::with_capacity(clients);
    for _ in 0..clients {
        let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls).await?;
        tokio::spawn(async move {
            let _ = connection.await;
        });
        client.batch_execute("SET synchronous_commit = on").await?;
        let stmt = client.prepare(PG_APPEND).await?;
        conns.push((std::sync::Arc::new(client), stmt));
    }
    let body = vec![b'x'; payload];
    let tag = tag.to_string();
    let result = load::run(clients, duration, |c| {
        let (client, stmt) = conns[c].clone();
        let (body, tag) = (body.clone(), tag.clone());
        let mut rng = super::Rng::new(c as u64 + 1);
        let op: Op = Box::new(move |i| {
            let (client, stmt, body) = (client.clone(), stmt.clone(), body.clone());
            let case = format!("case-{}", rng.below(cases));
            let id = format!("pg-{tag}-{c}-{i}");
            Box::pin(async move {
                loop {
                    match client.execute(&stmt, &[&case, &id, &body]).await {
                        Ok(_) => return Ok(1),
                        Err(e)
                            if e.code()
                                == Some(&tokio_postgres::error::SqlState::UNIQUE_VIOLATION)
                                && e.as_db_error().is_some_and(|d| {
                                    d.constraint() == Some("bench_events_case_id_version_key")
                                }) =>
                        {
                            continue
                        }
                        Err(e) => return Err(e.to_string()),
                    }
                }
            })
        });
        op
    })
    .await;
    // PostgreSQL does part of a run's work later, in the background — the
    // write-back of the pages it dirtied, autovacuum of the rows it added —
    // while the next level measures the ledger. Doing it now keeps it out of
    // the ledger's figures (and out of PostgreSQL's, as before).
    // (Two calls: VACUUM may not run in the transaction a multi-statement
    // call makes.)
    if let Some((client, _)) = conns.first() {
        for sql in ["VACUUM (ANALYZE) bench_events", "CHECKPOINT"] {
            if let Err(e) = client.batch_execute(sql).await {
                let why = e
                    .as_db_error()
                    .map_or(e.to_string(), |d| d.message().to_string());
                eprintln!("bench: PostgreSQL refused {sql} ({why}); its background work may overlap the next level");
            }
        }
    }
    Ok(result)
}

/// Creates the table (dropping an old one).
pub async fn postgres_setup(url: &str) -> anyhow::Result<()> {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls).await?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    client.batch_execute(PG_SCHEMA).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_disk_reference_leaves_its_whole_file_for_the_caller_and_never_reuses_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("fdatasync-reference-0.log");
        let rate = fdatasync_ceiling(&path, 3, 100, Duration::from_millis(50)).unwrap();
        assert!(rate > 0.0);
        // Every batch written is still there: nothing was deleted or cut.
        let len = std::fs::metadata(&path).unwrap().len();
        assert!(len > 0 && len % 300 == 0, "{len}");
        // A level never appends to another level's file.
        assert!(fdatasync_ceiling(&path, 3, 100, Duration::from_millis(10)).is_err());
        assert_eq!(std::fs::metadata(&path).unwrap().len(), len);
    }
}
