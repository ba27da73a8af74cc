//! Read-your-writes with appends answered at the durable commit: an
//! append's answer does not wait for the projection host, and a read that
//! comes after it waits (`Ledger::caught_up`) until the read models hold
//! it. The host is held back here by a gate on the policy board's table,
//! so the test sees both sides of the wait rather than a host that
//! happened to be fast.

use super::test_support::{append, open, opened};
use super::BOARD_TABLE;
use crate::proto::v1::{self as pb, case_event::Kind};
use crate::store::hooked::{Gate, HookedLog};
use crate::store::side_table::{Change, Entry};
use crate::store::{SideTable, SledLog, StoreError};
use std::sync::Arc;

struct GatedTable {
    inner: Box<dyn SideTable>,
    gate: Arc<Gate>,
}

impl SideTable for GatedTable {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        self.inner.get(key)
    }
    fn insert(&self, key: &[u8], value: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        self.inner.insert(key, value)
    }
    fn remove(&self, key: &[u8]) -> Result<(), StoreError> {
        self.inner.remove(key)
    }
    fn insert_new(&self, key: &[u8], value: &[u8]) -> Result<Result<(), Vec<u8>>, StoreError> {
        self.inner.insert_new(key, value)
    }
    fn scan(&self, from: &[u8], limit: usize) -> Result<Vec<Entry>, StoreError> {
        self.inner.scan(from, limit)
    }
    fn last_at_or_before(&self, key: &[u8]) -> Result<Option<Entry>, StoreError> {
        self.inner.last_at_or_before(key)
    }
    fn apply(&self, changes: &[Change]) -> Result<(), StoreError> {
        self.gate.pass();
        self.inner.apply(changes)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_append_is_answered_before_its_fold_and_a_read_after_it_waits() {
    let dir = tempfile::tempdir().unwrap();
    let gate = Arc::new(Gate::default());
    let shut = gate.clone();
    let log = HookedLog::new(SledLog::open(dir.path(), &Default::default()).unwrap()).wrap_table(
        move |name, inner| match name {
            BOARD_TABLE => Box::new(GatedTable {
                inner,
                gate: shut.clone(),
            }),
            _ => inner,
        },
    );
    let ledger = open(log, dir.path());
    let first = ledger
        .append(append("g", "g-open", opened("cust-g")), "agent".into())
        .await
        .unwrap();
    ledger.caught_up().await.unwrap();
    assert_eq!(*ledger.head().borrow(), first.last_position);

    // The host cannot write the board: the append (a promise, which the
    // board lists) is answered anyway.
    gate.set(true);
    let promise = Kind::PromiseMade(pb::PromiseMade {
        promise_id: "g-p".into(),
        description: "call back within two working days".into(),
        due_at: Some(crate::time::nanos_ts(
            crate::time::now_nanos() + 86_400_000_000_000,
        )),
        ..Default::default()
    });
    let second = ledger
        .append(append("g", "g-p", promise), "agent".into())
        .await
        .unwrap();
    assert_eq!(ledger.committed(), second.last_position);
    assert_eq!(*ledger.head().borrow(), first.last_position);
    // Published reads do not show it yet; the read that comes now waits.
    assert_eq!(ledger.durable_version("g").unwrap(), Some(1));
    let board_before = ledger.board().entries().unwrap();
    let waiting = {
        let ledger = ledger.clone();
        tokio::spawn(async move { ledger.caught_up().await })
    };
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    assert!(!waiting.is_finished(), "a read did not wait for the fold");

    gate.set(false);
    waiting.await.unwrap().unwrap();
    assert_eq!(*ledger.head().borrow(), second.last_position);
    assert_eq!(ledger.durable_version("g").unwrap(), Some(2));
    let read = ledger.read_case("g", 1, false, 10).unwrap();
    assert_eq!(read.len(), 2);
    // The promise's keys (by due time, the customer's) are on the board.
    let board_after = ledger.board().entries().unwrap();
    assert!(board_after.len() > board_before.len());
    ledger.shutdown().await;
}
