//! Rebuilding the projections inside a running server: a fresh board
//! folded from the log, caught up with the live one under its lock,
//! compared with it, and swapped in (`Ops.RebuildProjections`).

use super::Ledger;
use crate::projections::board::Board;
use crate::projections::rebuild::fold_range;
use crate::proto::v1 as pb;
use crate::store::{EventLog, StoreError};
use std::collections::HashMap;

impl<L: EventLog> Ledger<L> {
    /// Folds a fresh board from the log while the server runs, catches up with
    /// the live board under its lock (so both stand at the same position),
    /// compares them, and swaps the fresh one in.
    pub fn rebuild_projections(
        &self,
        mut progress: impl FnMut(u64, u64),
    ) -> Result<pb::RebuildProgress, StoreError> {
        let ledger = self;
        let total = ledger.tree_size();
        let mut cases = HashMap::new();
        let mut board = Board::default();
        let log = ledger.log().as_ref();
        let mut last = 0;
        fold_range(log, 1, total, &mut cases, &mut board, |done| {
            if done - last >= 8192 || done == total {
                last = done;
                progress(done, total);
            }
        })?;
        let mut live = ledger.board().write().expect("board lock");
        // Everything the live board has folded is durable: catch up to it.
        fold_range(
            log,
            board.events + 1,
            live.events,
            &mut cases,
            &mut board,
            |_| {},
        )?;
        let (incremental, rebuilt) = (live.digest(), board.digest());
        let identical = *live == board;
        if !identical {
            tracing::error!(%incremental, %rebuilt, "rebuilt projections differ from the incremental ones; serving the rebuilt ones");
        }
        let cases = board.cases.len() as u64;
        let done = board.events;
        *live = board;
        Ok(pb::RebuildProgress {
            done,
            total: done,
            finished: true,
            incremental_digest: incremental,
            rebuilt_digest: rebuilt,
            identical,
            cases,
        })
    }
}
