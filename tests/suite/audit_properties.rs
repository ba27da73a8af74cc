//! Property tests: for random logs, every inclusion and consistency proof
//! verifies, and a case bundle exported at any point verifies offline — also
//! against any checkpoint kept earlier.

use crate::common::*;
use complaint_ledger::audit::bundle::verify_bundle;
use complaint_ledger::audit::checkpoint::verify_checkpoint;
use complaint_ledger::audit::merkle::{
    leaf_hash, prove_consistency, prove_inclusion, root, verify_consistency, verify_inclusion,
    MemoryTree,
};
use complaint_ledger::ledger::{Ledger, LedgerOptions};
use proptest::prelude::*;

fn bytes(v: &[[u8; 32]]) -> Vec<Vec<u8>> {
    v.iter().map(|h| h.to_vec()).collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn every_inclusion_and_consistency_proof_verifies(
        leaves in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..40), 1..90),
        picks in prop::collection::vec((any::<u64>(), any::<u64>()), 1..20),
    ) {
        let mut t = MemoryTree::default();
        for l in &leaves {
            t.push(l);
        }
        let n = leaves.len() as u64;
        for (a, b) in picks {
            let size = 1 + a % n;
            let index = b % size;
            let tree_root = root(&t, size).unwrap();
            let proof = prove_inclusion(&t, size, index).unwrap();
            let leaf = leaf_hash(&leaves[index as usize]).0;
            prop_assert!(verify_inclusion(&bytes(&proof), size, &tree_root, index, &leaf).is_ok());
            let old = 1 + b % size;
            let proof = if old == size { vec![] } else { prove_consistency(&t, size, old).unwrap() };
            let old_root = root(&t, old).unwrap();
            prop_assert!(verify_consistency(&bytes(&proof), old, &old_root, size, &tree_root).is_ok());
            // A wrong old root never passes.
            let mut wrong = old_root;
            wrong[0] ^= 1;
            prop_assert!(verify_consistency(&bytes(&proof), old, &wrong, size, &tree_root).is_err());
        }
    }
}

proptest! {
    // Each case opens a ledger and makes up to 25 durable appends.
    #![proptest_config(ProptestConfig { cases: 16, ..ProptestConfig::default() })]

    #[test]
    fn a_bundle_exported_at_any_point_verifies_offline(
        steps in prop::collection::vec((0usize..3, 1usize..4), 1..25),
        keep_at in 0usize..25,
    ) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async {
            let dir = tempfile::tempdir().unwrap();
            let (ledger, _) = Ledger::open(dir.path(), &LedgerOptions::default()).unwrap();
            let key = ledger.public_key().to_string();
            let cases = ["p0", "p1", "p2"];
            let mut opened = [false; 3];
            let mut kept = None;
            for (i, (case, n)) in steps.iter().enumerate() {
                let id = cases[*case];
                let mut events = Vec::new();
                if !opened[*case] {
                    events.push(ev(&format!("{id}-open"), "2020-12-03T01:00:00+08:00", "8030", opened_kind()));
                    opened[*case] = true;
                }
                for k in 0..*n {
                    events.push(ev(&format!("{id}-{i}-{k}"), "2020-12-03T02:00:00+08:00", "8030", note("n")));
                }
                ledger.append(append(id, events), "prop".into()).await.unwrap();
                // Answered at the durable commit; a read first waits for the
                // read models (as every read RPC does).
                ledger.caught_up().await.unwrap();
                if i == keep_at {
                    kept = Some(verify_checkpoint(&ledger.checkpoint().unwrap().note, &key).unwrap());
                }
                // Export every opened case now, and verify it offline.
                for (c, _) in cases.iter().enumerate().filter(|(c, _)| opened[*c]) {
                    let since = kept.as_ref().map(|k| k.size).unwrap_or(0);
                    let bundle = ledger.export_case(cases[c], since).unwrap();
                    let report = verify_bundle(&bundle, &key, kept.as_ref()).unwrap();
                    assert_eq!(report.checkpoint.size, ledger.tree_size());
                }
            }
            ledger.shutdown().await;
        });
    }
}

fn opened_kind() -> complaint_ledger::proto::v1::case_event::Kind {
    opened("cust-p")
}
