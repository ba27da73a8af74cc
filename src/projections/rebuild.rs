//! Rebuilding the projections from the log alone: every case's state and the
//! case index, folded from the stored records in position order. The server
//! does this (with full verification) at every start; `rebuild` exposes it
//! on its own so its speed can be measured and its result compared.

use super::summary::{summarize, CaseIndex};
use crate::audit::record_hash;
use crate::domain::CaseState;
use crate::proto::v1::{CaseEvent, StoredRecord};
use crate::store::{EventLog, StoreError};
use prost::Message;
use std::collections::HashMap;

/// Case states and the case index, as folded from the log.
pub struct Rebuilt {
    pub cases: HashMap<String, CaseState>,
    pub index: CaseIndex,
    pub records: u64,
}

/// Folds the whole log; `progress(done, total)` is called as it goes.
pub fn rebuild(
    log: &dyn EventLog,
    mut progress: impl FnMut(u64, u64),
) -> Result<Rebuilt, StoreError> {
    let total = log.head()?;
    let mut cases: HashMap<String, CaseState> = HashMap::new();
    let mut from = 1;
    let mut records = 0;
    loop {
        let chunk = log.read_range(from, 8192)?;
        let Some((last, _)) = chunk.last() else { break };
        from = last + 1;
        for (pos, bytes) in &chunk {
            let rec = StoredRecord::decode(bytes.as_slice())
                .map_err(|e| StoreError::Corrupt(format!("record {pos} does not decode: {e}")))?;
            let event = CaseEvent::decode(rec.payload.as_slice())
                .map_err(|e| StoreError::Corrupt(format!("payload {pos} does not decode: {e}")))?;
            let recorded = rec
                .recorded_at
                .as_ref()
                .map(crate::time::ts_nanos)
                .unwrap_or(0);
            cases.entry(rec.case_id).or_default().apply_stored(
                &event,
                rec.case_version,
                record_hash(bytes),
                *pos,
                recorded,
            );
            records += 1;
        }
        progress(records, total);
    }
    let index = CaseIndex::default();
    for (id, s) in &cases {
        index.upsert(summarize(id, s));
    }
    Ok(Rebuilt {
        cases,
        index,
        records,
    })
}
