//! What unit tests that drive a ledger over a hooked store share: the
//! requests they append and the case they open.

use super::{Ledger, LedgerOptions};
use crate::proto::v1::{self as pb, case_event::Kind};
use crate::store::hooked::HookedLog;
use std::path::Path;
use std::sync::Arc;

/// A request appending one event of `kind`, id `id`, to `case_id`.
pub(crate) fn append(case_id: &str, id: &str, kind: Kind) -> pb::AppendRequest {
    pb::AppendRequest {
        case_id: case_id.into(),
        expected_version: None,
        events: vec![pb::ProposedEvent {
            event_id: id.into(),
            occurred_at: Some(crate::time::now_ts()),
            event: Some(pb::CaseEvent { kind: Some(kind) }),
            ..Default::default()
        }],
    }
}

/// A case opened for `customer_id` on the seed's business line.
pub(crate) fn opened(customer_id: &str) -> Kind {
    Kind::CaseOpened(pb::CaseOpened {
        customer_id: customer_id.into(),
        business_line: "qidian".into(),
        category: "auto-subscription".into(),
        summary: "wants a callback".into(),
        ..Default::default()
    })
}

/// The ledger opened on `log`, with its files in `dir`.
pub(crate) fn open(log: HookedLog, dir: &Path) -> Arc<Ledger<HookedLog>> {
    let (ledger, _) = Ledger::open_on(log, dir, &LedgerOptions::default()).unwrap();
    Arc::new(ledger)
}
