//! The fuzz targets (`fuzz/`, run with `scripts/fuzz`) in the normal test
//! suite: every saved finding in `fuzz/regressions/<target>/` is replayed,
//! and each target gets random and mutated inputs. None may panic.

use complaint_ledger::proto::v1 as pb;
use proptest::prelude::*;
use prost::Message;
use std::path::Path;

fn replay(target: &str, run: impl Fn(&[u8])) -> usize {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/regressions")
        .join(target);
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_file() && path.file_name().is_some_and(|f| f != ".gitkeep") {
            run(&std::fs::read(&path).unwrap());
            n += 1;
        }
    }
    n
}

/// A well-formed append request to mutate: every personal field set.
fn seed_request() -> Vec<u8> {
    use pb::case_event::Kind;
    let ev = |id: &str, kind| pb::ProposedEvent {
        event_id: id.into(),
        occurred_at: complaint_ledger::time::parse_rfc3339("2020-12-03T01:24:30+08:00"),
        event: Some(pb::CaseEvent { kind: Some(kind) }),
        ..Default::default()
    };
    pb::AppendRequest {
        case_id: "124545".into(),
        expected_version: None,
        events: vec![
            ev(
                "e1",
                Kind::CaseOpened(pb::CaseOpened {
                    customer_id: "u".into(),
                    business_line: "qidian".into(),
                    category: "c".into(),
                    summary: "s".into(),
                    customer: Some(pb::CustomerPersonalData {
                        name: "n".into(),
                        phone: "1".into(),
                        account: "a".into(),
                    }),
                    ..Default::default()
                }),
            ),
            ev("e2", Kind::NoteAdded(pb::NoteAdded { text: "t".into() })),
            ev(
                "e3",
                Kind::ViolationAppealed(pb::ViolationAppealed {
                    judgement_id: "j".into(),
                    reason: "r".into(),
                }),
            ),
        ],
    }
    .encode_to_vec()
}

#[test]
fn saved_findings_do_not_panic() {
    let key = complaint_ledger::fuzz::fuzz_public_key();
    replay("append_request", complaint_ledger::fuzz::append_request);
    replay("stored_record", complaint_ledger::fuzz::stored_record);
    replay("case_bundle", |d| {
        complaint_ledger::fuzz::case_bundle(d, &key)
    });
    // The seed itself goes through every step.
    complaint_ledger::fuzz::append_request(&seed_request());
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn random_bytes_do_not_panic(data in prop::collection::vec(any::<u8>(), 0..512)) {
        complaint_ledger::fuzz::append_request(&data);
        complaint_ledger::fuzz::stored_record(&data);
        complaint_ledger::fuzz::case_bundle(&data, &complaint_ledger::fuzz::fuzz_public_key());
    }

    #[test]
    fn mutated_requests_do_not_panic(flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8)) {
        let mut data = seed_request();
        for (i, b) in flips {
            let at = i.index(data.len());
            data[at] ^= b;
        }
        complaint_ledger::fuzz::append_request(&data);
        complaint_ledger::fuzz::stored_record(&data);
    }
}
