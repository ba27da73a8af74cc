//! Entry points for fuzzing the parts that read untrusted bytes: an append
//! request as it arrives (decode, validate, decide, the personal-field walk),
//! a stored record, and an exported case bundle. Each must return, never
//! panic, whatever the input. `fuzz/` runs them under libFuzzer with
//! `cargo fuzz`; `tests/suite/fuzz_regressions.rs` runs them on every saved finding
//! and on random inputs in the normal test suite.

use crate::domain::validate::{validate_append, Limits};
use crate::domain::CaseState;
use crate::proto::v1::{self as pb, CaseBundle, StoredRecord};
use prost::Message;

/// An append request from the wire: decoded, validated, decided against an
/// empty and an opened case, its personal fields walked.
pub fn append_request(data: &[u8]) {
    let Ok(mut req) = pb::AppendRequest::decode(data) else {
        return;
    };
    let _ = validate_append(&req, &Limits::default(), crate::time::now_nanos());
    let mut opened = CaseState::default();
    opened.evolve(&pb::CaseEvent {
        kind: Some(pb::case_event::Kind::CaseOpened(pb::CaseOpened::default())),
    });
    opened.version = 1;
    for e in req.events.iter_mut() {
        let Some(event) = e.event.as_mut() else {
            continue;
        };
        let _ = crate::domain::rules::decide(&CaseState::default(), event);
        let _ = crate::domain::rules::decide(&opened, event);
        let at = e
            .occurred_at
            .as_ref()
            .map(crate::time::ts_nanos)
            .unwrap_or(0);
        let _ = crate::domain::rules::decide_at(&opened, event, at);
        for (_, v) in crate::privacy::fields::personal_fields_mut(event) {
            v.clear();
        }
        if let Some(k) = &event.kind {
            let _ = crate::domain::event_type_name(k);
        }
    }
}

/// A stored record's bytes, as a reader or the verifier decodes them.
pub fn stored_record(data: &[u8]) {
    if let Ok(r) = crate::ledger::recorded::to_recorded(&bytes::Bytes::copy_from_slice(data)) {
        let _ = r.encode_to_vec();
    }
    if let Ok(r) = StoredRecord::decode(data) {
        let _ = crate::audit::record_hash(&r.encode_to_vec());
    }
}

/// The public key bundles are checked against while fuzzing.
pub fn fuzz_public_key() -> String {
    let sk = ed25519_dalek::SigningKey::from_bytes(&[7u8; 32]);
    signed_note::new_ed25519_verifier_key(
        crate::audit::checkpoint::DEFAULT_ORIGIN,
        &sk.verifying_key(),
    )
}

/// An exported case bundle, verified offline.
pub fn case_bundle(data: &[u8], public_key: &str) {
    let Ok(bundle) = CaseBundle::decode(data) else {
        return;
    };
    let _ = crate::audit::bundle::verify_bundle(&bundle, public_key, None);
}
