//! Rebuilding the projections from the log alone, in memory: every case's
//! state, the case list and the policy board, folded from the stored
//! records in position order. `complaint-ledger rebuild --data-dir` runs it
//! with a progress bar and prints digests a server's tables compare with;
//! the tests fold it to check the tables. (A running server rebuilds its
//! board into a table of the store instead: `ledger::rebuild`.) It holds
//! every case in memory while it runs.

use super::board::Board;
use super::fact::Fact;
use super::summary::{summarize, CaseIndex};
use crate::audit::record_hash;
use crate::domain::CaseState;
use crate::proto::v1::{CaseEvent, StoredRecord};
use crate::store::{EventLog, StoreError};
use prost::Message;
use std::collections::HashMap;

/// Case states, the case index and the policy board, as folded from the log.
pub struct Rebuilt {
    pub cases: HashMap<String, CaseState>,
    pub index: CaseIndex,
    pub board: Board,
    pub records: u64,
}

/// Folds records `from..=to` of the log into `cases` and `board`, calling
/// `progress(done)` after each chunk. Returns the records folded.
pub fn fold_range(
    log: &dyn EventLog,
    from: u64,
    to: u64,
    cases: &mut HashMap<String, CaseState>,
    board: &mut Board,
    mut progress: impl FnMut(u64),
) -> Result<u64, StoreError> {
    let mut next = from;
    let mut records = 0;
    while next <= to {
        let want = (to - next + 1).min(8192) as usize;
        let chunk = log.read_range(next, want)?;
        let Some((last, _)) = chunk.last() else { break };
        next = last + 1;
        for (pos, bytes) in &chunk {
            let mut rec = StoredRecord::decode(bytes.clone())
                .map_err(|e| StoreError::Corrupt(format!("record {pos} does not decode: {e}")))?;
            let event = CaseEvent::decode(&rec.payload[..])
                .map_err(|e| StoreError::Corrupt(format!("payload {pos} does not decode: {e}")))?;
            board
                .apply(
                    &Fact::stored(&rec, &event),
                    &mut super::case_stream::history(log),
                )
                .map_err(|e| StoreError::Corrupt(format!("record {pos}: {e}")))?;
            cases
                .entry(std::mem::take(&mut rec.case_id))
                .or_default()
                .apply_record(&rec, &event, record_hash(bytes));
            records += 1;
        }
        progress(records);
    }
    Ok(records)
}

/// Folds the whole log; `progress(done, total)` is called as it goes.
pub fn rebuild(
    log: &dyn EventLog,
    mut progress: impl FnMut(u64, u64),
) -> Result<Rebuilt, StoreError> {
    let total = log.head()?;
    let mut cases = HashMap::new();
    let mut board = Board::default();
    let records = fold_range(log, 1, total, &mut cases, &mut board, |done| {
        progress(done, total)
    })?;
    let index = CaseIndex::default();
    let rows: Vec<_> = cases.iter().map(|(id, s)| summarize(id, s)).collect();
    index.write(&rows, records)?;
    Ok(Rebuilt {
        cases,
        index,
        board,
        records,
    })
}
