//! Turning stored bytes back into what readers see: the envelope, the decoded
//! event, and the record's hash.

use crate::audit::record_hash;
use crate::proto::v1::{CaseEvent, RecordedEvent, StoredRecord};
use crate::store::StoreError;
use bytes::Bytes;
use prost::Message;

/// Decodes a stored record into a `RecordedEvent`. Decoded from the shared
/// buffer, the record's payload is a view of it, not a copy.
pub fn to_recorded(bytes: &Bytes) -> Result<RecordedEvent, StoreError> {
    let rec = StoredRecord::decode(bytes.clone())
        .map_err(|e| StoreError::Corrupt(format!("record does not decode: {e}")))?;
    let hash = record_hash(bytes);
    recorded_from(rec, hash)
}

/// Builds a `RecordedEvent` from a decoded record and its hash.
pub fn recorded_from(rec: StoredRecord, hash: [u8; 32]) -> Result<RecordedEvent, StoreError> {
    let event = CaseEvent::decode(&rec.payload[..]).map_err(|e| {
        StoreError::Corrupt(format!("payload at {} does not decode: {e}", rec.position))
    })?;
    Ok(RecordedEvent {
        position: rec.position,
        case_id: rec.case_id,
        case_version: rec.case_version,
        event_id: rec.event_id,
        event_type: rec.event_type,
        schema_version: rec.schema_version,
        occurred_at: rec.occurred_at,
        recorded_at: rec.recorded_at,
        actor: rec.actor,
        acted_for_agent: rec.acted_for_agent,
        correlation_id: rec.correlation_id,
        causation_id: rec.causation_id,
        event: Some(event),
        prev_hash: rec.prev_hash,
        record_hash: hash.to_vec(),
        imported: rec.imported,
    })
}
