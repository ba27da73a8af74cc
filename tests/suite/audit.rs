//! Audit-grade verification through the real API and the real auditor CLI:
//! checkpoints and proofs, server-side verification, export and offline
//! verification of bundles, growth since a kept checkpoint, a malicious
//! server, and the storage corruption suite.

use crate::common::*;
use complaint_ledger::audit::checkpoint::verify_checkpoint;
use complaint_ledger::audit::merkle::{
    leaf_hash, root, verify_consistency, verify_inclusion, MemoryTree,
};
use complaint_ledger::audit::verify::verify_store;
use complaint_ledger::config::ServerConfig;
use complaint_ledger::proto::v1::{self as pb, audit_client::AuditClient};
use complaint_ledger::store::{EventLog, SledLog, SledOptions};
use std::path::Path;
use tonic::transport::Channel;

async fn audit(server: &TestServer) -> AuditClient<Channel> {
    AuditClient::connect(server.url()).await.unwrap()
}

/// Opens each case and adds `notes` notes to each, interleaved.
async fn seed(server: &TestServer, cases: &[&str], notes: usize) {
    let mut c = server.ledger().await;
    for case in cases {
        open_case(&mut c, case, "cust-x").await;
    }
    add_notes(&mut c, cases, notes).await;
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[tokio::test]
async fn checkpoints_and_proofs_verify_for_every_position_and_size() {
    let server = TestServer::start().await;
    seed(&server, &["a1", "a2", "a3"], 4).await;
    let mut a = audit(&server).await;
    let cp = a
        .get_checkpoint(pb::GetCheckpointRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(cp.tree_size, 15);
    let v = verify_checkpoint(&cp.signed_note, &cp.public_key).unwrap();
    assert_eq!(
        (v.size, v.root.to_vec(), v.origin.as_str()),
        (15, cp.root_hash.clone(), cp.origin.as_str())
    );
    assert!(String::from_utf8(cp.signed_note.clone())
        .unwrap()
        .starts_with(&format!("{}\n15\n", cp.origin)));

    // Every record is in the tree; its root, recomputed here from the stored
    // bytes alone, is the signed one.
    let mut mine = MemoryTree::default();
    for pos in 1..=15 {
        let p = a
            .prove_inclusion(pb::ProveInclusionRequest {
                position: pos,
                tree_size: 0,
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(p.tree_size, 15);
        verify_inclusion(&p.hashes, 15, &v.root, pos - 1, &leaf_hash(&p.record).0).unwrap();
        mine.push(&p.record);
    }
    assert_eq!(root(&mine, 15).unwrap(), v.root);

    // Grow the log; the growth is proven from every older size.
    seed(&server, &["a4"], 3).await;
    let cp2 = a
        .get_checkpoint(pb::GetCheckpointRequest {})
        .await
        .unwrap()
        .into_inner();
    let v2 = verify_checkpoint(&cp2.signed_note, &cp.public_key).unwrap();
    assert_eq!(v2.size, 19);
    for pos in 16..=19 {
        let p = a
            .prove_inclusion(pb::ProveInclusionRequest {
                position: pos,
                tree_size: 0,
            })
            .await
            .unwrap()
            .into_inner();
        mine.push(&p.record);
    }
    for old in 1..=19 {
        let p = a
            .prove_consistency(pb::ProveConsistencyRequest {
                old_size: old,
                new_size: 0,
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(p.new_size, 19);
        verify_consistency(&p.hashes, old, &root(&mine, old).unwrap(), 19, &v2.root).unwrap();
    }
    // A proof for an old size stays valid against the old checkpoint.
    let p = a
        .prove_inclusion(pb::ProveInclusionRequest {
            position: 3,
            tree_size: 15,
        })
        .await
        .unwrap()
        .into_inner();
    verify_inclusion(&p.hashes, 15, &v.root, 2, &leaf_hash(&p.record).0).unwrap();
}

#[tokio::test]
async fn bad_proof_requests_are_invalid_argument_and_unknown_cases_not_found() {
    let server = TestServer::start().await;
    seed(&server, &["b1"], 2).await;
    let mut a = audit(&server).await;
    for (position, tree_size) in [(0, 0), (4, 0), (2, 1), (1, 9)] {
        let e = a
            .prove_inclusion(pb::ProveInclusionRequest {
                position,
                tree_size,
            })
            .await
            .unwrap_err();
        assert_eq!(
            e.code(),
            tonic::Code::InvalidArgument,
            "{position} in {tree_size}: {e:?}"
        );
    }
    let e = a
        .prove_consistency(pb::ProveConsistencyRequest {
            old_size: 4,
            new_size: 3,
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::InvalidArgument);
    let e = a
        .export_case(pb::ExportCaseRequest {
            case_id: "nope".into(),
            since_size: 0,
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::NotFound);
    let e = a
        .export_case(pb::ExportCaseRequest {
            case_id: "b1".into(),
            since_size: 99,
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::InvalidArgument);
}

#[tokio::test]
async fn verify_log_streams_progress_and_reports_ok() {
    let server = TestServer::start().await;
    seed(&server, &["v1", "v2"], 2500).await;
    let mut a = audit(&server).await;
    let mut stream = a
        .verify_log(pb::VerifyLogRequest {})
        .await
        .unwrap()
        .into_inner();
    let mut messages = Vec::new();
    while let Some(m) = stream.message().await.unwrap() {
        messages.push(m);
    }
    let last = messages.last().unwrap();
    assert!(last.done && last.ok, "{last:?}");
    assert_eq!(last.checked, 5002);
    assert!(messages.len() >= 3, "progress was streamed: {messages:?}");
    assert!(messages.windows(2).all(|w| w[0].checked <= w[1].checked));
}

#[tokio::test]
async fn the_auditor_keeps_a_checkpoint_exports_and_verifies_offline() {
    let server = TestServer::start().await;
    seed(&server, &["124545", "other"], 3).await;
    let tmp = tempfile::tempdir().unwrap();
    let kept = tmp.path().join("kept.checkpoint");
    let o = cli(&["checkpoint", "-o", s(&kept), "--server", &server.url()]).await;
    assert!(o.status.success(), "{}", text(&o));
    let pubkey = text(&o)
        .lines()
        .find_map(|l| l.strip_prefix("public key (pin it for later verification): "))
        .unwrap()
        .to_string();
    // The key the server wrote beside its data is the same.
    let on_disk =
        std::fs::read_to_string(server.dir.path().join("checkpoint-signing.pub")).unwrap();
    assert_eq!(on_disk.trim(), pubkey);

    seed(&server, &["later"], 2).await;
    let bundle = tmp.path().join("124545.bundle");
    let o = cli(&[
        "export",
        "--case",
        "124545",
        "-o",
        s(&bundle),
        "--since",
        s(&kept),
        "--server",
        &server.url(),
    ])
    .await;
    assert!(o.status.success(), "{}", text(&o));
    let o = cli(&[
        "verify",
        s(&bundle),
        "--pubkey",
        &pubkey,
        "--since",
        s(&kept),
    ])
    .await;
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        text(&o).starts_with("OK: case 124545: 4 records"),
        "{}",
        text(&o)
    );
    assert!(
        text(&o).contains("extends the kept checkpoint of 8 records"),
        "{}",
        text(&o)
    );
    let o = cli(&[
        "verify",
        "--since",
        s(&kept),
        "--server",
        &server.url(),
        "--pubkey",
        &pubkey,
    ])
    .await;
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        text(&o).contains("grew from 8 to 11 records"),
        "{}",
        text(&o)
    );

    // A flipped byte, a dropped record, another key: each fails, and says why.
    let original = std::fs::read(&bundle).unwrap();
    let mut b: pb::CaseBundle = prost::Message::decode(original.as_slice()).unwrap();
    let n = b.records[1].record.len();
    b.records[1].record[n - 40] ^= 1;
    let flipped = tmp.path().join("flipped.bundle");
    std::fs::write(&flipped, prost::Message::encode_to_vec(&b)).unwrap();
    let o = cli(&["verify", s(&flipped), "--pubkey", &pubkey]).await;
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o).contains("FAILED: record 1: "), "{}", text(&o));
    let mut b: pb::CaseBundle = prost::Message::decode(original.as_slice()).unwrap();
    b.records.remove(1);
    std::fs::write(&flipped, prost::Message::encode_to_vec(&b)).unwrap();
    let o = cli(&["verify", s(&flipped), "--pubkey", &pubkey]).await;
    assert!(
        text(&o).contains("is version 3, expected version 2"),
        "{}",
        text(&o)
    );
    let (_, other_key) =
        signed_note::generate_key(&mut rand_core::OsRng, "complaint-ledger.local/ledger");
    let o = cli(&["verify", s(&bundle), "--pubkey", &other_key]).await;
    assert_eq!(o.status.code(), Some(1));
    assert!(
        text(&o).contains("signature does not verify"),
        "{}",
        text(&o)
    );
}

#[tokio::test]
async fn replay_as_of_shows_the_case_as_it_stood() {
    let server = TestServer::start().await;
    let mut c = server.ledger().await;
    open_case(&mut c, "r", "cust-r").await;
    c.append(append(
        "r",
        vec![ev(
            "r-p",
            "2020-12-03T02:00:00+08:00",
            "8030",
            pb::case_event::Kind::PromiseMade(pb::PromiseMade {
                promise_id: "p1".into(),
                description: "1-2个工作日回复".into(),
                due_at: Some(ts("2020-12-07T23:59:59+08:00")),
                ..Default::default()
            }),
        )],
    ))
    .await
    .unwrap();
    c.append(append(
        "r",
        vec![ev(
            "r-n",
            "2020-12-09T02:00:00+08:00",
            "8030",
            note("later"),
        )],
    ))
    .await
    .unwrap();
    let o = cli(&[
        "replay",
        "--case",
        "r",
        "--as-of",
        "2",
        "--server",
        &server.url(),
    ])
    .await;
    assert!(o.status.success(), "{}", text(&o));
    let t = text(&o);
    assert!(t.starts_with("case r as of version 2: 2 events"), "{t}");
    assert!(!t.contains("NoteAdded"), "{t}");
    assert!(t.contains("promise p1: broken (never_done)"), "{t}");
    let o = cli(&[
        "replay",
        "--case",
        "r",
        "--as-of",
        "yesterday",
        "--server",
        &server.url(),
    ])
    .await;
    assert!(!o.status.success());
    // As of a recorded time: the time version 2 was recorded.
    let at = read_case(&mut c, "r").await[1]
        .recorded_at
        .unwrap()
        .to_string();
    let o = cli(&[
        "replay",
        "--case",
        "r",
        "--as-of",
        &at,
        "--server",
        &server.url(),
    ])
    .await;
    assert!(o.status.success(), "{}", text(&o));
    let t = text(&o);
    assert!(
        t.starts_with(&format!("case r as of recorded time {at}: 2 events")),
        "{t}"
    );
    assert!(
        !t.contains("NoteAdded") && t.contains("promise p1: broken (never_done)"),
        "{t}"
    );
}

#[tokio::test]
async fn a_server_with_another_history_cannot_pass_for_the_kept_one() {
    // The honest ledger; the auditor keeps its checkpoint.
    let honest = TestServer::start().await;
    seed(&honest, &["m1", "m2"], 3).await;
    let mut a = audit(&honest).await;
    let kept_cp = a
        .get_checkpoint(pb::GetCheckpointRequest {})
        .await
        .unwrap()
        .into_inner();
    let key = kept_cp.public_key.clone();
    let kept = verify_checkpoint(&kept_cp.signed_note, &key).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let kept_file = tmp.path().join("kept");
    std::fs::write(&kept_file, &kept_cp.signed_note).unwrap();

    // A server holding the same signing key serves a different, longer history.
    let key_file = honest.dir.path().join("checkpoint-signing.key");
    let forged = TestServer::start_with(|c: &mut ServerConfig| {
        c.ledger.signing_key_file = Some(key_file.clone())
    })
    .await;
    seed(&forged, &["m1", "m2"], 5).await;
    let mut f = audit(&forged).await;
    let forged_cp = f
        .get_checkpoint(pb::GetCheckpointRequest {})
        .await
        .unwrap()
        .into_inner();
    // Its checkpoint is validly signed: the signature alone proves nothing.
    let forged_v = verify_checkpoint(&forged_cp.signed_note, &key).unwrap();
    assert!(forged_v.size > kept.size);

    // 1. Its consistency proof does not connect it to the kept checkpoint.
    let p = f
        .prove_consistency(pb::ProveConsistencyRequest {
            old_size: kept.size,
            new_size: 0,
        })
        .await
        .unwrap()
        .into_inner();
    assert!(verify_consistency(
        &p.hashes,
        kept.size,
        &kept.root,
        forged_v.size,
        &forged_v.root
    )
    .is_err());
    let o = cli(&[
        "verify",
        "--since",
        s(&kept_file),
        "--server",
        &forged.url(),
        "--pubkey",
        &key,
    ])
    .await;
    assert_eq!(o.status.code(), Some(1));
    assert!(
        text(&o).contains("FAILED: the current log is not an extension of the kept checkpoint"),
        "{}",
        text(&o)
    );
    // The honest server passes the same check.
    let o = cli(&[
        "verify",
        "--since",
        s(&kept_file),
        "--server",
        &honest.url(),
        "--pubkey",
        &key,
    ])
    .await;
    assert!(o.status.success(), "{}", text(&o));

    // 2. Its inclusion proofs do not verify against the kept root.
    let p = f
        .prove_inclusion(pb::ProveInclusionRequest {
            position: 2,
            tree_size: kept.size,
        })
        .await
        .unwrap()
        .into_inner();
    assert!(
        verify_inclusion(&p.hashes, kept.size, &kept.root, 1, &leaf_hash(&p.record).0).is_err()
    );

    // 3. Its bundle verifies on its own terms, but not against the kept checkpoint.
    let bundle = tmp.path().join("m1.bundle");
    let o = cli(&[
        "export",
        "--case",
        "m1",
        "-o",
        s(&bundle),
        "--since",
        s(&kept_file),
        "--server",
        &forged.url(),
    ])
    .await;
    assert!(o.status.success(), "{}", text(&o));
    let o = cli(&["verify", s(&bundle), "--pubkey", &key]).await;
    assert!(
        o.status.success(),
        "without a kept checkpoint nothing ties it to history: {}",
        text(&o)
    );
    let o = cli(&[
        "verify",
        s(&bundle),
        "--pubkey",
        &key,
        "--since",
        s(&kept_file),
    ])
    .await;
    assert_eq!(o.status.code(), Some(1));
    assert!(
        text(&o).contains("not an extension of the kept checkpoint"),
        "{}",
        text(&o)
    );
    // And a bundle whose proof set was swapped for another server's checkpoint fails too.
    let mut b: pb::CaseBundle =
        prost::Message::decode(std::fs::read(&bundle).unwrap().as_slice()).unwrap();
    b.checkpoint = a
        .get_checkpoint(pb::GetCheckpointRequest {})
        .await
        .unwrap()
        .into_inner()
        .signed_note;
    b.consistency_proof.clear();
    b.consistency_from_size = 0;
    let swapped = complaint_ledger::audit::bundle::verify_bundle(&b, &key, None);
    assert!(swapped.is_err(), "{swapped:?}");
}

/// A stopped server's store with 3 cases × 10 notes (33 records).
async fn stopped_store() -> tempfile::TempDir {
    let server = TestServer::start().await;
    seed(&server, &["s1", "s2", "s3"], 10).await;
    server.stop().await
}

fn verify_dir(dir: &Path) -> Result<u64, (Option<u64>, String)> {
    let log = SledLog::open(dir, &SledOptions::default()).unwrap();
    verify_store(&log, |_, _| {})
        .map(|r| r.records)
        .map_err(|e| (e.position(), e.to_string()))
}

#[tokio::test]
async fn storage_corruption_is_detected_and_the_position_named() {
    // A small deterministic generator picks the records to damage.
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = |n: u64| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        1 + seed % n
    };
    for _ in 0..3 {
        // Flip one byte of a random record.
        let dir = stopped_store().await;
        let pos = next(33);
        {
            let log = SledLog::open(dir.path(), &SledOptions::default()).unwrap();
            let mut bytes = log.read(pos).unwrap().unwrap();
            let at = (next(bytes.len() as u64) - 1) as usize;
            bytes[at] ^= 0x20;
            log.tamper_record(pos, Some(bytes)).unwrap();
            log.close().unwrap();
        }
        let (named, why) = verify_dir(dir.path()).unwrap_err();
        assert_eq!(named, Some(pos), "flip at {pos}: {why}");

        // Delete a random record.
        let dir = stopped_store().await;
        let pos = next(32);
        SledLog::open(dir.path(), &SledOptions::default())
            .unwrap()
            .tamper_record(pos, None)
            .unwrap();
        let (named, why) = verify_dir(dir.path()).unwrap_err();
        assert_eq!(named, Some(pos), "delete {pos}: {why}");
        assert!(why.contains("record missing"), "{why}");

        // Swap two records.
        let dir = stopped_store().await;
        let (x, y) = (next(16), 16 + next(16));
        {
            let log = SledLog::open(dir.path(), &SledOptions::default()).unwrap();
            let (bx, by) = (log.read(x).unwrap().unwrap(), log.read(y).unwrap().unwrap());
            log.tamper_record(x, Some(by)).unwrap();
            log.tamper_record(y, Some(bx)).unwrap();
        }
        let (named, why) = verify_dir(dir.path()).unwrap_err();
        assert_eq!(named, Some(x), "swap {x} and {y}: {why}");
    }
    // Truncate the tail: the last 5 records are gone.
    let dir = stopped_store().await;
    {
        let log = SledLog::open(dir.path(), &SledOptions::default()).unwrap();
        for pos in 29..=33 {
            log.tamper_record(pos, None).unwrap();
        }
    }
    let (named, why) = verify_dir(dir.path()).unwrap_err();
    assert_eq!(named, Some(29), "{why}");
    assert!(
        why.contains("holds 33 records but the log ends at position 28"),
        "{why}"
    );
    // The CLI says the same, with exit code 1; the server refuses to start on it.
    let o = cli(&["verify", "--data-dir", s(dir.path())]).await;
    assert_eq!(o.status.code(), Some(1));
    assert!(
        text(&o).contains("FAILED: position 29: record missing"),
        "{}",
        text(&o)
    );
    assert!(
        complaint_ledger::api::server::start(ServerConfig::ephemeral(dir.path()))
            .await
            .is_err()
    );
    // An undamaged store verifies.
    let dir = stopped_store().await;
    let o = cli(&["verify", "--data-dir", s(dir.path())]).await;
    assert!(
        o.status.success() && text(&o).starts_with("OK: 33 records in 3 cases"),
        "{}",
        text(&o)
    );
}

#[tokio::test]
async fn verify_log_names_the_first_bad_position_of_a_damaged_store() {
    use complaint_ledger::api::audit_service::AuditService;
    use complaint_ledger::ledger::{Ledger, LedgerOptions};
    use complaint_ledger::proto::v1::audit_server::AuditServer;
    use std::sync::Arc;
    // The real Audit service on a real gRPC server, over a ledger whose
    // store is then damaged underneath it.
    let dir = tempfile::tempdir().unwrap();
    let (ledger, _) = Ledger::open(dir.path(), &LedgerOptions::default()).unwrap();
    let ledger = Arc::new(ledger);
    for case in ["d1", "d2"] {
        let open = ev(
            &format!("{case}-open"),
            "2020-12-03T01:00:00+08:00",
            "8030",
            opened("cust-d"),
        );
        ledger
            .append(append(case, vec![open]), "t".into())
            .await
            .unwrap();
        let n = ev(
            &format!("{case}-n"),
            "2020-12-03T02:00:00+08:00",
            "8030",
            note("text to damage"),
        );
        ledger
            .append(append(case, vec![n]), "t".into())
            .await
            .unwrap();
    }
    ledger.caught_up().await.unwrap();
    let log = ledger.log();
    // Position 2 is d1's note (its text is sealed: damage its event id).
    let mut bytes = log.read(2).unwrap().unwrap();
    let at = bytes.windows(4).position(|w| w == b"d1-n").unwrap();
    bytes[at + 3] ^= 0x20;
    log.tamper_record(2, Some(bytes)).unwrap();

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(AuditServer::new(AuditService::new(ledger.clone())))
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
    );
    let mut a = AuditClient::connect(url).await.unwrap();
    let mut stream = a
        .verify_log(pb::VerifyLogRequest {})
        .await
        .unwrap()
        .into_inner();
    let mut last = None;
    while let Some(m) = stream.message().await.unwrap() {
        last = Some(m);
    }
    let last = last.unwrap();
    assert!(last.done && !last.ok, "{last:?}");
    assert_eq!(last.first_bad_position, 2);
    assert!(last.problem.contains("record altered"), "{}", last.problem);
}
