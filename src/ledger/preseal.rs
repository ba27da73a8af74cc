//! Sealing personal data before a request reaches the writer.
//!
//! Why: the writer is one thread and, under batched appends, the bottleneck;
//! sealing every personal field (an HMAC for the nonce, XChaCha20-Poly1305,
//! base64) was a sixth of its time. The request handler seals a copy of the
//! request on whichever core runs it, and the writer takes that copy only if
//! it still holds: every customer whose key sealed an event is the customer
//! the writer itself would seal that event for, and that customer's key still
//! exists (not erased meanwhile). Otherwise — a customer's first personal
//! data (the writer creates the key with the commit), a case opened by a
//! request still in flight or by a commit the case list does not hold yet
//! (the projection host folds it just after the answer), an erasure in
//! between — the writer seals the
//! plaintext request itself, exactly as before. Sealing is deterministic
//! (the nonce is derived from event id, field and plaintext), so both ways
//! store the same bytes.

use crate::privacy::blind_index::BlindIndex;
use crate::privacy::crypto::seal;
use crate::privacy::fields::personal_fields_mut;
use crate::privacy::keystore::KeyStore;
use crate::proto::v1::{self as pb, case_event::Kind};

/// A customer and the blind-index tokens of its phone and account.
pub(crate) type BlindTokens = (String, Vec<[u8; 32]>);

/// A request sealed by its handler, with what the writer checks it against.
pub(crate) struct Presealed {
    /// The request with every personal field sealed.
    pub request: pb::AppendRequest,
    /// Per event: the customer whose key sealed it (None: no personal data).
    pub sealed_for: Vec<Option<String>>,
    /// Blind-index tokens of customers the request opens.
    pub blind: Vec<BlindTokens>,
}

/// The customer whose key seals each event: the case's customer (`start`),
/// or the one a `CaseOpened` at or before the event names.
pub(crate) fn customers_of(start: String, req: &pb::AppendRequest) -> Vec<String> {
    let mut customer = start;
    req.events
        .iter()
        .map(|e| {
            if let Some(Kind::CaseOpened(o)) = e.event.as_ref().and_then(|x| x.kind.as_ref()) {
                customer = o.customer_id.clone();
            }
            customer.clone()
        })
        .collect()
}

/// Seals a copy of `req` if every customer it holds personal data of has a
/// key already; None leaves sealing to the writer.
pub(crate) fn preseal(
    keys: &KeyStore,
    blind: &BlindIndex,
    case_customer: String,
    req: &pb::AppendRequest,
) -> Option<Presealed> {
    let customers = customers_of(case_customer, req);
    let mut request = req.clone();
    let mut sealed_for = Vec::with_capacity(request.events.len());
    let mut tokens = Vec::new();
    for (e, customer) in request.events.iter_mut().zip(customers) {
        let Some(event) = e.event.as_mut() else {
            sealed_for.push(None);
            continue;
        };
        if let Some(Kind::CaseOpened(o)) = event.kind.as_ref() {
            if let Some(c) = &o.customer {
                let t = blind.tokens_of(&c.phone, &c.account);
                if !t.is_empty() {
                    tokens.push((customer.clone(), t));
                }
            }
        }
        let fields = personal_fields_mut(event);
        if fields.iter().all(|(_, v)| v.is_empty()) {
            sealed_for.push(None);
            continue;
        }
        let key = keys.get(&customer).ok().flatten()?;
        for (path, value) in fields {
            *value = seal(&key, &customer, &e.event_id, &path, value);
        }
        sealed_for.push(Some(customer));
    }
    Some(Presealed {
        request,
        sealed_for,
        blind: tokens,
    })
}

/// Whether the writer may store `p` for `req`: `case_customer` is the case's
/// customer as the writer sees it (its state, with the batch staged so far).
pub(crate) fn still_holds(
    keys: &KeyStore,
    case_customer: String,
    req: &pb::AppendRequest,
    p: &Presealed,
) -> bool {
    let customers = customers_of(case_customer, req);
    // One key lookup per run of events of one customer.
    let mut checked: Option<&str> = None;
    p.sealed_for.len() == customers.len()
        && p.sealed_for
            .iter()
            .zip(&customers)
            .all(|(sealed, writer)| match sealed {
                None => true,
                Some(c) if c != writer => false,
                Some(c) if checked == Some(c.as_str()) => true,
                Some(c) => {
                    checked = Some(c);
                    matches!(keys.get(c), Ok(Some(_)))
                }
            })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::privacy::crypto::open;

    fn keys() -> KeyStore {
        KeyStore::in_memory()
    }

    fn event(id: &str, kind: Kind) -> pb::ProposedEvent {
        pb::ProposedEvent {
            event_id: id.into(),
            event: Some(pb::CaseEvent { kind: Some(kind) }),
            ..Default::default()
        }
    }

    fn note(id: &str, text: &str) -> pb::ProposedEvent {
        event(id, Kind::NoteAdded(pb::NoteAdded { text: text.into() }))
    }

    fn request(events: Vec<pb::ProposedEvent>) -> pb::AppendRequest {
        pb::AppendRequest {
            case_id: "c1".into(),
            expected_version: None,
            events,
        }
    }

    #[test]
    fn a_case_opened_in_the_request_names_the_customer_from_there_on() {
        let opened = event(
            "o",
            Kind::CaseOpened(pb::CaseOpened {
                customer_id: "u2".into(),
                ..Default::default()
            }),
        );
        let req = request(vec![note("a", "x"), opened, note("b", "y")]);
        assert_eq!(customers_of("u1".into(), &req), ["u1", "u2", "u2"]);
    }

    #[test]
    fn seals_as_the_writer_would_or_leaves_it_to_the_writer() {
        let (keys, blind) = (keys(), BlindIndex::in_memory([0; 32]));
        let req = request(vec![note("a", "the customer said"), note("b", "")]);
        // No key yet: the writer creates it with the commit.
        assert!(preseal(&keys, &blind, "u1".into(), &req).is_none());
        let key = keys.new_key("u1").unwrap();
        keys.store("u1", &key).unwrap();
        let p = preseal(&keys, &blind, "u1".into(), &req).unwrap();
        assert_eq!(p.sealed_for, [Some("u1".to_string()), None]);
        let Some(Kind::NoteAdded(n)) = p.request.events[0].event.as_ref().unwrap().kind.as_ref()
        else {
            panic!("not a note")
        };
        // The same bytes the writer's own sealing gives.
        assert_eq!(n.text, seal(&key, "u1", "a", "text", "the customer said"));
        assert_eq!(
            open(&key, "u1", "text", &n.text).as_deref(),
            Some("the customer said")
        );
        assert!(still_holds(&keys, "u1".into(), &req, &p));
        // The writer sees another customer for the case: not taken.
        assert!(!still_holds(&keys, "u9".into(), &req, &p));
        // Erased between handler and writer: not taken (the writer's own
        // sealing then refuses the personal data).
        keys.erase("u1").unwrap();
        assert!(!still_holds(&keys, "u1".into(), &req, &p));
        assert!(preseal(&keys, &blind, "u1".into(), &req).is_none());
    }
}
