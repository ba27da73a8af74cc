//! `complaint-ledger rebuild`: recompute every projection from the log with
//! a progress bar — offline from a stopped server's store, or inside a running
//! server, where the result is compared with the projections the server
//! maintained incrementally and swapped in.

use super::client::{explain, ServerArgs};
use crate::proto::v1 as pb;
use crate::store::EventLog;
use anyhow::{bail, Context};
use indicatif::ProgressBar;
use std::path::Path;

fn bar(total: u64) -> ProgressBar {
    super::progress_bar(total, "rebuilding")
}

/// `rebuild --data-dir DIR`: folds the store's log into fresh projections;
/// the board's digest is the server's (warnings judged with
/// `escalate_within`, nanoseconds).
pub fn offline(dir: &Path, escalate_within: i128) -> anyhow::Result<()> {
    if !dir.join("db").exists() {
        bail!("{} holds no ledger", dir.display());
    }
    let log = crate::store::open_data_dir(dir)
        .context("opening the store (is a server still running on it?)")?;
    let total = log.head()?;
    let progress = bar(total);
    let started = std::time::Instant::now();
    // sled can panic reading a damaged store: an error, never a crash.
    let rebuilt = crate::store::contain_panics(dir, || {
        Ok(crate::projections::rebuild::rebuild(&log, |done, _| {
            progress.set_position(done)
        }))
    })??;
    progress.finish_and_clear();
    let secs = started.elapsed().as_secs_f64();
    println!(
        "rebuilt from {} events in {:.2} s ({:.0} events/s): {} cases",
        rebuilt.records,
        secs,
        rebuilt.records as f64 / secs.max(1e-9),
        rebuilt.cases.len()
    );
    println!("case index digest   {}", rebuilt.index.digest()?);
    let board = crate::projections::board_keys::entries(&rebuilt.board, escalate_within);
    println!(
        "policy board digest {}",
        crate::projections::board_store::digest(&board)
    );
    Ok(())
}

/// `rebuild --server URL`: asks a running server to rebuild and compare.
pub async fn online(server: &ServerArgs) -> anyhow::Result<()> {
    let mut c = server.connect().await?.ops();
    let mut stream = c
        .rebuild_projections(pb::RebuildProjectionsRequest {})
        .await
        .map_err(explain)?
        .into_inner();
    let mut progress: Option<ProgressBar> = None;
    while let Some(p) = stream.message().await.map_err(explain)? {
        if p.finished {
            if let Some(b) = &progress {
                b.finish_and_clear();
            }
            println!("rebuilt from {} events: {} cases", p.done, p.cases);
            println!("incremental digest {}", p.incremental_digest);
            println!("rebuilt digest     {}", p.rebuilt_digest);
            if p.identical {
                println!("OK: the rebuilt projections are identical to the incremental ones");
                return Ok(());
            }
            bail!("the rebuilt projections differ from the incremental ones (the server now serves the rebuilt ones)");
        }
        progress
            .get_or_insert_with(|| bar(p.total))
            .set_position(p.done);
    }
    bail!("the server ended the rebuild without a result")
}
