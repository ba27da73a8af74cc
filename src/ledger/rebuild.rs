//! Rebuilding the projections inside a running server
//! (`Ops.RebuildProjections`): a fresh policy board folded from the log in
//! a scratch table of the store, caught up with the live one while no fold
//! of it runs (so both stand at the same position), compared with it by
//! digest, and taken in place of it when they differ.

use super::{Ledger, BOARD_TABLE};
use crate::projections::board_store::BoardStore;
use crate::proto::v1 as pb;
use crate::store::{EventLog, StoreError};

/// Cases' facts the fresh board keeps while it folds.
const REBUILD_CACHE: usize = 4096;

impl<L: EventLog> Ledger<L> {
    /// Folds a fresh board from the log while the server runs, compares it
    /// with the live one at the same position, and serves the fresh one's
    /// entries if they differ.
    pub fn rebuild_projections(
        &self,
        mut progress: impl FnMut(u64, u64),
    ) -> Result<pb::RebuildProgress, StoreError> {
        let live = self.board();
        let scratch = format!("{BOARD_TABLE}-rebuild");
        let table = self.log().side_table(&scratch)?;
        table.clear()?;
        let fresh = BoardStore::open(
            table,
            self.log().clone(),
            self.policy().escalate_within_nanos(),
            REBUILD_CACHE,
        )?;
        let total = live.position();
        let mut last = 0;
        fresh.catch_up(total, |done| {
            if done - last >= 8192 || done == total {
                last = done;
                progress(done, total);
            }
        })?;
        let compared = live.compare_with_fresh(&fresh);
        drop(fresh);
        self.log().side_table(&scratch)?.clear()?;
        let (incremental, rebuilt, done) = compared.map_err(StoreError::Corrupt)?;
        let identical = incremental == rebuilt;
        if !identical {
            tracing::error!(%incremental, %rebuilt, "rebuilt projections differ from the incremental ones; serving the rebuilt ones");
        }
        Ok(pb::RebuildProgress {
            done,
            total: done,
            finished: true,
            incremental_digest: incremental,
            rebuilt_digest: rebuilt,
            identical,
            cases: live.cases(),
        })
    }
}
