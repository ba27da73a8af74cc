//! Reading one case's stored events back from the log, in version order,
//! for the parts of the service that keep nothing in memory for a closed
//! case: the writer folds its state when a request names it again, and the
//! early-warning rules and the policy board fold what they set aside when
//! it is reopened.
//!
//! Why one function: all must see the same gapless stream, and all must
//! refuse a store whose case index names a missing or misplaced record
//! rather than fold a case from what is left of it. It sits with the
//! projections, the lowest of its readers, and speaks the store's errors.
//! Beside it, [`for_each_chunk`] reads a stretch of the whole log back, for
//! the read models on disk catching up from the position they reached.

use super::fact::OwnedFact;
use crate::proto::v1 as pb;
use crate::store::{EventLog, StoreError};
use prost::Message;

/// Calls `each` with every stored event of `case_id` at a position below
/// `before`, in version order: the decoded record, its payload and the
/// stored bytes. Errors when a record is missing, does not decode, or is
/// not the next version of this case.
pub fn for_each_stored<L: EventLog + ?Sized>(
    log: &L,
    case_id: &str,
    before: u64,
    mut each: impl FnMut(&pb::StoredRecord, &pb::CaseEvent, &[u8]),
) -> Result<(), StoreError> {
    let positions = log.case_positions(case_id, 1, false, usize::MAX)?;
    for (expected, (version, pos)) in (1..).zip(positions) {
        if pos >= before {
            break;
        }
        let bytes = log.read(pos)?.ok_or_else(|| {
            StoreError::Corrupt(format!(
                "case {case_id} version {version}: position {pos} is missing"
            ))
        })?;
        let rec = pb::StoredRecord::decode(bytes.as_slice())
            .map_err(|e| StoreError::Corrupt(format!("record {pos} does not decode: {e}")))?;
        let event = pb::CaseEvent::decode(&rec.payload[..])
            .map_err(|e| StoreError::Corrupt(format!("payload at {pos} does not decode: {e}")))?;
        if rec.case_version != expected || rec.case_id != case_id {
            return Err(StoreError::Corrupt(format!(
                "case {case_id}: position {pos} holds version {} of case {}, expected version {expected}",
                rec.case_version, rec.case_id
            )));
        }
        each(&rec, &event, &bytes);
    }
    Ok(())
}

/// A projection's [`History`](crate::projections::fact::History) read from
/// `log`: [`facts_before`], its error as text.
pub fn history<L: EventLog + ?Sized>(
    log: &L,
) -> impl FnMut(&str, u64) -> Result<Vec<OwnedFact>, String> + '_ {
    move |case_id, before| facts_before(log, case_id, before).map_err(|e| e.to_string())
}

/// The events of `case_id` stored at positions below `before`, as facts.
pub fn facts_before<L: EventLog + ?Sized>(
    log: &L,
    case_id: &str,
    before: u64,
) -> Result<Vec<OwnedFact>, StoreError> {
    let mut out = Vec::new();
    for_each_stored(log, case_id, before, |rec, event, _| {
        out.push(OwnedFact::stored(rec, event))
    })?;
    Ok(out)
}

/// Facts read back at once by [`for_each_chunk`].
const CHUNK: usize = 4096;

/// Calls `each` with the facts stored at positions `from..=to`, in order, a
/// chunk of up to 4,096 at a time, and the last position of the chunk: how
/// each read model on disk catches up from the position it reached. Errors
/// when the log ends early or a record does not decode; `what` names the
/// reader in the error.
pub fn for_each_chunk<L: EventLog + ?Sized>(
    log: &L,
    from: u64,
    to: u64,
    what: &str,
    mut each: impl FnMut(&[OwnedFact], u64) -> Result<(), StoreError>,
) -> Result<u64, StoreError> {
    let mut next = from.max(1);
    let mut done = 0;
    while next <= to {
        let want = usize::try_from(to - next + 1)
            .unwrap_or(usize::MAX)
            .min(CHUNK);
        let chunk = log.read_range(next, want)?;
        let Some((last, _)) = chunk.last() else {
            return Err(StoreError::Corrupt(format!(
                "the log ends before position {next}, which {what} was to read"
            )));
        };
        let last = *last;
        let mut facts = Vec::with_capacity(chunk.len());
        for (pos, bytes) in &chunk {
            let rec = pb::StoredRecord::decode(bytes.clone())
                .map_err(|e| StoreError::Corrupt(format!("record {pos} does not decode: {e}")))?;
            let event = pb::CaseEvent::decode(&rec.payload[..])
                .map_err(|e| StoreError::Corrupt(format!("payload {pos} does not decode: {e}")))?;
            facts.push(OwnedFact::stored(&rec, &event));
        }
        each(&facts, last)?;
        done += facts.len() as u64;
        next = last + 1;
    }
    Ok(done)
}
