//! Durability: acknowledged appends survive a restart and a `kill -9` in the
//! middle of a stream of appends, and the chain verifies afterwards; a
//! tampered log is refused at start with its position named.

use crate::common::*;
use complaint_ledger::audit::verify::{verify_store, VerifyError, VerifyReport};
use complaint_ledger::proto::v1::{self as pb, ledger_client::LedgerClient};
use complaint_ledger::store::{EventLog, SledLog, SledOptions};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[tokio::test]
async fn state_survives_a_restart_and_appends_continue_the_chain() {
    let mut server = TestServer::start().await;
    let mut c = server.ledger().await;
    for case in ["r1", "r2"] {
        open_case(&mut c, case, "cust-r").await;
        c.append(append(
            case,
            vec![ev(
                &format!("{case}-p"),
                "2020-12-03T02:00:00+08:00",
                "8030",
                pb::case_event::Kind::PromiseMade(pb::PromiseMade {
                    promise_id: "p1".into(),
                    description: "专员1-2个工作日回复".into(),
                    due_at: Some(ts("2020-12-07T23:59:59+08:00")),
                    ..Default::default()
                }),
            )],
        ))
        .await
        .unwrap();
    }
    let before = read_all(&mut c, pb::ReadAllRequest::default()).await;
    server.restart().await;
    let mut c = server.ledger().await;
    let after = read_all(&mut c, pb::ReadAllRequest::default()).await;
    assert_eq!(before, after);
    // The case list was rebuilt from the log.
    let list = server
        .cases()
        .await
        .list_cases(pb::ListCasesRequest {
            only_with_open_promises: true,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        list.cases
            .iter()
            .map(|c| c.case_id.as_str())
            .collect::<Vec<_>>(),
        ["r1", "r2"]
    );
    // The writer continues the positions, versions and chain.
    let r = c
        .append(pb::AppendRequest {
            case_id: "r1".into(),
            expected_version: expect_exact(2),
            events: vec![ev(
                "r1-n",
                "2020-12-03T03:00:00+08:00",
                "8030",
                note("after restart"),
            )],
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!((r.first_position, r.case_version), (5, 3));
    let events = read_case(&mut c, "r1").await;
    assert_eq!(events[2].prev_hash, events[1].record_hash);
    let dir = server.stop().await;
    let log = SledLog::open(dir.path(), &SledOptions::default()).unwrap();
    assert_eq!(verify_log(&log).unwrap().records, 5);
}

fn verify_log(log: &SledLog) -> Result<VerifyReport, VerifyError> {
    verify_store(log, |_, _| {})
}

#[tokio::test]
async fn events_near_the_size_limit_survive_a_restart_and_verify() {
    // Leaves full of ~60 KiB records exceed sled's blob threshold: this goes
    // through the blob files the durable sync covers.
    let mut server = TestServer::start_with(|c| c.ledger.limits.max_text_bytes = 64 * 1024).await;
    let mut c = server.ledger().await;
    open_case(&mut c, "big", "cust-b").await;
    let text = "长".repeat(20_000);
    for i in 0..24 {
        c.append(append(
            "big",
            vec![ev(
                &format!("big-{i}"),
                "2020-12-03T02:00:00+08:00",
                "8030",
                note(&text),
            )],
        ))
        .await
        .unwrap();
    }
    server.restart().await;
    let mut c = server.ledger().await;
    let events = read_case(&mut c, "big").await;
    assert_eq!(events.len(), 25);
    assert!(events[1..].iter().all(|e| matches!(e.event.as_ref().and_then(|x| x.kind.as_ref()), Some(pb::case_event::Kind::NoteAdded(n)) if n.text == text)));
    let dir = server.stop().await;
    assert!(
        std::fs::read_dir(dir.path().join("blobs")).unwrap().count() > 0,
        "the test should reach sled's blob path"
    );
    verify_log(&SledLog::open(dir.path(), &SledOptions::default()).unwrap()).unwrap();
}

#[tokio::test]
async fn every_acknowledged_append_survives_kill_9() {
    acknowledged_appends_survive_kill_9(&[], 50).await;
}

/// The same while the event-id index merges its runs all the time: runs
/// of 4 events, full at 16, merged four at a time into runs of 64, 256
/// and 1,024 (`store/sled/event_index_tiers.rs`); the kill lands in or
/// between merges, and the restart deletes what an interrupted one left.
#[tokio::test]
async fn every_acknowledged_append_survives_kill_9_while_id_runs_merge() {
    // 256 events fill 16 runs: tiers 0 and 1 merged at least once.
    acknowledged_appends_survive_kill_9(&["--id-run-len", "4"], 256).await;
}

/// Eight writers append until the server is killed with `kill -9`; then
/// every acknowledged append must be in the store, which verifies, and in
/// the restarted server, where a retry is answered as a duplicate. At
/// least `min_acked` appends must have been answered before the kill.
async fn acknowledged_appends_survive_kill_9(server_args: &[&str], min_acked: usize) {
    let dir = tempfile::tempdir().unwrap();
    let (mut server, url) = spawn_server_with(dir.path(), server_args);
    let acked: Arc<Mutex<Vec<(String, u64)>>> = Arc::default();
    let mut writers = Vec::new();
    for w in 0..8 {
        let (url, acked) = (url.clone(), acked.clone());
        writers.push(tokio::spawn(async move {
            let mut c = LedgerClient::connect(url).await.unwrap();
            let case = format!("k{w}");
            open_case(&mut c, &case, "cust-k").await;
            acked.lock().unwrap().push((format!("{case}-open"), 0));
            for i in 0.. {
                let id = format!("{case}-{i}");
                match c
                    .append(append(
                        &case,
                        vec![ev(&id, "2020-12-03T02:00:00+08:00", "8030", note("stream"))],
                    ))
                    .await
                {
                    Ok(r) => acked
                        .lock()
                        .unwrap()
                        .push((id, r.into_inner().first_position)),
                    Err(_) => return, // the server died under us
                }
            }
        }));
    }
    // Let the stream run, then kill the server without warning.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    server.0.kill().expect("SIGKILL");
    server.0.wait().unwrap();
    for w in writers {
        let _ = w.await;
    }
    let acked = acked.lock().unwrap().clone();
    assert!(
        acked.len() >= min_acked,
        "only {} appends were acknowledged before the kill",
        acked.len()
    );

    // Offline: the chain verifies and every acknowledged event is there.
    {
        let log = SledLog::open(dir.path(), &SledOptions::default()).unwrap();
        let report = verify_log(&log).expect("chain verifies after kill -9");
        assert!(report.records as usize >= acked.len());
        for (id, pos) in &acked {
            let stored = log.event_position(id).unwrap();
            assert!(stored.is_some(), "acknowledged event {id} lost");
            if *pos != 0 {
                assert_eq!(stored, Some(*pos));
            }
        }
    }
    // And the restarted server serves them all.
    let (_server, url) = spawn_server_with(dir.path(), server_args);
    let mut c = LedgerClient::connect(url).await.unwrap();
    let all = read_all(&mut c, pb::ReadAllRequest::default()).await;
    let ids: std::collections::HashSet<_> = all.iter().map(|e| e.event_id.clone()).collect();
    assert!(acked.iter().all(|(id, _)| ids.contains(id)));
    // A retry of an acknowledged append, after the crash, still returns the
    // original position and writes nothing (the event-id index came back).
    let (id, pos) = acked.iter().rev().find(|(_, p)| *p != 0).unwrap().clone();
    let case = id.rsplit_once('-').unwrap().0.to_string();
    let retry = c
        .append(append(
            &case,
            vec![ev(&id, "2020-12-03T02:00:00+08:00", "8030", note("stream"))],
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(retry.duplicate, "{id}");
    assert_eq!(retry.first_position, pos);
    assert_eq!(
        read_all(&mut c, pb::ReadAllRequest::default()).await.len(),
        all.len()
    );
}

#[tokio::test]
async fn sigterm_finishes_in_flight_appends_and_exits_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let (mut server, url) = spawn_server(dir.path());
    let acked: Arc<Mutex<Vec<String>>> = Arc::default();
    let mut writers = Vec::new();
    for w in 0..8 {
        let (url, acked) = (url.clone(), acked.clone());
        writers.push(tokio::spawn(async move {
            let mut c = LedgerClient::connect(url).await.unwrap();
            let case = format!("g{w}");
            open_case(&mut c, &case, "cust-g").await;
            for i in 0.. {
                let id = format!("{case}-{i}");
                match c
                    .append(append(
                        &case,
                        vec![ev(&id, "2020-12-03T02:00:00+08:00", "8030", note("x"))],
                    ))
                    .await
                {
                    Ok(_) => acked.lock().unwrap().push(id),
                    Err(s) => {
                        // Refused during shutdown, never half-done. A request
                        // that raced the server's GOAWAY is refused by HTTP/2
                        // itself (tonic reports it as an h2 protocol error).
                        let refused_by_goaway = s.code() == tonic::Code::Internal
                            && s.message().contains("h2 protocol error");
                        assert!(
                            refused_by_goaway
                                || matches!(
                                    s.code(),
                                    tonic::Code::Unavailable
                                        | tonic::Code::Unknown
                                        | tonic::Code::Cancelled
                                ),
                            "{s:?}"
                        );
                        return;
                    }
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(700)).await;
    let pid = server.0.id().to_string();
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    let status = tokio::task::spawn_blocking(move || {
        let s = server.0.wait();
        (s, server)
    })
    .await
    .unwrap()
    .0
    .unwrap();
    assert!(status.success(), "exit status {status:?}");
    for w in writers {
        w.await.unwrap();
    }
    let log = SledLog::open(dir.path(), &SledOptions::default()).unwrap();
    verify_log(&log).unwrap();
    let acked = acked.lock().unwrap().clone();
    assert!(!acked.is_empty());
    for id in &acked {
        assert!(log.event_position(id).unwrap().is_some(), "{id} lost");
    }
}

#[tokio::test]
async fn sigterm_ends_live_subscriptions_instead_of_waiting_for_them() {
    let dir = tempfile::tempdir().unwrap();
    let (mut server, url) = spawn_server(dir.path());
    let mut c = LedgerClient::connect(url).await.unwrap();
    open_case(&mut c, "sub", "cust-s").await;
    let mut sub = c
        .subscribe(pb::SubscribeRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert!(matches!(
        sub.message().await.unwrap().unwrap().kind,
        Some(pb::subscribe_response::Kind::Event(_))
    ));
    assert!(matches!(
        sub.message().await.unwrap().unwrap().kind,
        Some(pb::subscribe_response::Kind::CaughtUp(_))
    ));
    let pid = server.0.id().to_string();
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    // The subscriber is told, and the server exits although the client keeps its stream.
    let end = tokio::time::timeout(Duration::from_secs(20), sub.message())
        .await
        .expect("subscription ended");
    assert_eq!(end.unwrap_err().code(), tonic::Code::Unavailable);
    let status = tokio::task::spawn_blocking(move || server.0.wait().map(|s| (s, server)))
        .await
        .unwrap()
        .unwrap()
        .0;
    assert!(status.success(), "{status:?}");
    drop(sub);
}

#[tokio::test]
async fn a_tampered_log_is_refused_at_start_naming_the_position() {
    let server = TestServer::start().await;
    let mut c = server.ledger().await;
    open_case(&mut c, "t1", "cust-t").await;
    for i in 0..4 {
        c.append(append(
            "t1",
            vec![ev(
                &format!("t1-{i}"),
                "2020-12-03T02:00:00+08:00",
                "8030",
                note("original text"),
            )],
        ))
        .await
        .unwrap();
    }
    let dir = server.stop().await;
    {
        let log = SledLog::open(dir.path(), &SledOptions::default()).unwrap();
        let mut bytes = log.read(3).unwrap().unwrap();
        // The note's text is sealed; damage the record's event id instead.
        let at = bytes.windows(4).position(|w| w == b"t1-1").unwrap();
        bytes[at] = b'T';
        log.tamper_record(3, Some(bytes)).unwrap();
        log.close().unwrap();
    }
    let err = match complaint_ledger::api::server::start(
        complaint_ledger::config::ServerConfig::ephemeral(dir.path()),
    )
    .await
    {
        Ok(_) => panic!("a tampered log must not be served"),
        Err(e) => format!("{e:#}"),
    };
    assert!(err.contains("position 3"), "{err}");
    assert!(err.contains("refusing to start"), "{err}");
    let log = SledLog::open(dir.path(), &SledOptions::default()).unwrap();
    assert_eq!(
        verify_log(&log).unwrap_err().to_string().split(':').next(),
        Some("position 3")
    );
}

#[tokio::test]
async fn altering_or_dropping_the_last_record_of_a_case_is_detected() {
    let server = TestServer::start().await;
    let mut c = server.ledger().await;
    open_case(&mut c, "a", "cust-t").await;
    open_case(&mut c, "b", "cust-t").await;
    c.append(append(
        "a",
        vec![ev(
            "a-1",
            "2020-12-03T02:00:00+08:00",
            "8030",
            note("last of a"),
        )],
    ))
    .await
    .unwrap();
    let dir = server.stop().await;
    let log = SledLog::open(dir.path(), &SledOptions::default()).unwrap();
    let original = log.read(3).unwrap().unwrap();
    let mut bytes = original.clone();
    let at = bytes.windows(3).position(|w| w == b"a-1").unwrap();
    bytes[at] = b'A';
    log.tamper_record(3, Some(bytes)).unwrap();
    let err = verify_log(&log).unwrap_err().to_string();
    assert!(
        err.starts_with("position 3:") && err.contains("record altered"),
        "{err}"
    );
    // Dropping it instead: the case head still names version 2.
    log.tamper_record(3, None).unwrap();
    let err = verify_log(&log).unwrap_err().to_string();
    assert!(err.contains("removed from the end"), "{err}");
}

/// A reveal is on record before it is sent: each `GetCase` that showed
/// personal data, answered and then followed at once by `kill -9`, is in the
/// PII-access log after the restart, hash-chained.
#[tokio::test]
async fn a_reveal_answered_before_kill_9_is_in_the_access_log() {
    use complaint_ledger::proto::v1::cases_client::CasesClient;
    let dir = tempfile::tempdir().unwrap();
    let mut revealed = Vec::new();
    for round in 0..3 {
        let (server, url) = spawn_server(dir.path());
        let mut c = LedgerClient::connect(url.clone()).await.unwrap();
        let case = format!("pii-{round}");
        open_case(&mut c, &case, "cust-pii").await;
        c.append(append(
            &case,
            vec![ev(
                &format!("{case}-n"),
                "2020-12-03T02:00:00+08:00",
                "8030",
                note("客户电话 13800138000"),
            )],
        ))
        .await
        .unwrap();
        let view = CasesClient::connect(url)
            .await
            .unwrap()
            .get_case(pb::GetCaseRequest {
                case_id: case.clone(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        // The response carried the note in clear: it revealed it.
        assert!(format!("{view:?}").contains("13800138000"));
        revealed.push(case);
        // kill -9 right after the answer.
        assert!(Command::new("kill")
            .args(["-KILL", &server.0.id().to_string()])
            .status()
            .unwrap()
            .success());
        drop(server);
    }
    let (_server, url) = spawn_server(dir.path());
    let log = pii_access_at(url).await;
    let logged: Vec<&str> = log
        .iter()
        .filter(|e| e.rpc == "Cases.GetCase")
        .map(|e| e.case_id.as_str())
        .collect();
    assert_eq!(logged, revealed);
    complaint_ledger::privacy::access_log::AccessLog::verify_chain(&log).unwrap();
}
