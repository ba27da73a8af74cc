//! Optimistic concurrency and idempotent retries.

use crate::common::*;
use complaint_ledger::proto::v1 as pb;
use tonic::Code;

#[tokio::test]
async fn two_writers_racing_on_one_version_exactly_one_wins() {
    let server = TestServer::start().await;
    let mut c = server.ledger().await;
    open_case(&mut c, "race", "cust-1").await;
    for round in 0..20u64 {
        let (mut a, mut b) = (server.ledger().await, server.ledger().await);
        let req = |who: &str| pb::AppendRequest {
            case_id: "race".into(),
            expected_version: expect_exact(round + 1),
            events: vec![ev(
                &format!("race-{round}-{who}"),
                "2020-12-03T02:00:00+08:00",
                who,
                note(who),
            )],
        };
        let (ra, rb) = tokio::join!(a.append(req("a")), b.append(req("b")));
        let (ok, err) = match (ra, rb) {
            (Ok(ok), Err(err)) | (Err(err), Ok(ok)) => (ok.into_inner(), err),
            (ra, rb) => panic!("round {round}: expected one winner, got {ra:?} and {rb:?}"),
        };
        assert_eq!(ok.case_version, round + 2);
        assert_eq!(err.code(), Code::Aborted);
        let info = details(&err).error_info().cloned().expect("error info");
        assert_eq!(info.reason, "WRONG_EXPECTED_VERSION");
        assert_eq!(info.metadata["actual_version"], (round + 2).to_string());
    }
    assert_eq!(read_case(&mut c, "race").await.len(), 21);
}

#[tokio::test]
async fn a_retried_append_returns_the_original_positions_and_writes_nothing() {
    let server = TestServer::start().await;
    let mut c = server.ledger().await;
    open_case(&mut c, "idem", "cust-1").await;
    let req = append(
        "idem",
        vec![
            ev("idem-n1", "2020-12-03T02:00:00+08:00", "8030", note("one")),
            ev("idem-n2", "2020-12-03T02:01:00+08:00", "8030", note("two")),
        ],
    );
    let first = c.append(req.clone()).await.unwrap().into_inner();
    assert!(!first.duplicate);
    // Something else lands in between.
    c.append(append(
        "idem",
        vec![ev(
            "idem-n3",
            "2020-12-03T02:02:00+08:00",
            "8030",
            note("three"),
        )],
    ))
    .await
    .unwrap();
    let retry = c.append(req.clone()).await.unwrap().into_inner();
    assert!(retry.duplicate);
    assert_eq!(
        (
            retry.first_position,
            retry.last_position,
            retry.case_version
        ),
        (
            first.first_position,
            first.last_position,
            first.case_version
        )
    );
    assert_eq!(read_case(&mut c, "idem").await.len(), 4);

    // The same id with other content is a conflict, and writes nothing.
    let mut other = req.clone();
    other.events[0].event = Some(pb::CaseEvent {
        kind: Some(note("changed")),
    });
    let err = c.append(other).await.unwrap_err();
    assert_eq!(err.code(), Code::AlreadyExists);
    assert!(err.message().contains("idem-n1"), "{}", err.message());
    // Part of an earlier request with a new event is a conflict too.
    let partial = append(
        "idem",
        vec![
            ev("idem-n1", "2020-12-03T02:00:00+08:00", "8030", note("one")),
            ev("idem-n9", "2020-12-03T02:09:00+08:00", "8030", note("nine")),
        ],
    );
    assert_eq!(
        c.append(partial).await.unwrap_err().code(),
        Code::AlreadyExists
    );
    // An event id used on another case is a conflict.
    open_case(&mut c, "idem2", "cust-2").await;
    let elsewhere = append(
        "idem2",
        vec![ev(
            "idem-n3",
            "2020-12-03T02:02:00+08:00",
            "8030",
            note("three"),
        )],
    );
    assert_eq!(
        c.append(elsewhere).await.unwrap_err().code(),
        Code::AlreadyExists
    );
    assert_eq!(read_case(&mut c, "idem").await.len(), 4);
    assert_eq!(read_case(&mut c, "idem2").await.len(), 1);
}

#[tokio::test]
async fn concurrent_appends_are_all_stored_gapless() {
    let server = TestServer::start().await;
    let mut tasks = Vec::new();
    for w in 0..16 {
        let url = server.url();
        tasks.push(tokio::spawn(async move {
            let mut c = pb::ledger_client::LedgerClient::connect(url).await.unwrap();
            let case = format!("conc-{}", w % 4);
            for i in 0..25 {
                let kind = if i == 0 && w < 4 {
                    opened("cust-c")
                } else {
                    note("n")
                };
                loop {
                    match c
                        .append(append(
                            &case,
                            vec![ev(
                                &format!("conc-{w}-{i}"),
                                "2020-12-03T02:00:00+08:00",
                                "8030",
                                kind.clone(),
                            )],
                        ))
                        .await
                    {
                        Ok(_) => break,
                        // A note may race ahead of the CaseOpened of its case.
                        Err(s) if s.code() == Code::FailedPrecondition => {
                            tokio::task::yield_now().await
                        }
                        Err(s) => panic!("{s:?}"),
                    }
                }
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let mut c = server.ledger().await;
    let all = read_all(&mut c, pb::ReadAllRequest::default()).await;
    assert_eq!(all.len(), 400);
    for (i, e) in all.iter().enumerate() {
        assert_eq!(e.position, i as u64 + 1);
    }
    for case in 0..4 {
        let events = read_case(&mut c, &format!("conc-{case}")).await;
        assert_eq!(events.len(), 100);
        assert!(events
            .windows(2)
            .all(|w| w[1].case_version == w[0].case_version + 1
                && w[1].prev_hash == w[0].record_hash));
    }
}

/// The writer keeps no closed case in memory: each request naming one
/// folds its state from the log. Notes racing on a closed case (several of
/// them in one group commit), a refusal, a reopen and a restart all leave
/// one gapless, hash-chained stream, as if the state had stayed in memory.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_case_is_folded_from_the_log_for_what_it_still_takes() {
    let mut server = TestServer::start().await;
    let mut c = server.ledger().await;
    open_case(&mut c, "shut", "cust-1").await;
    add_notes(&mut c, &["shut"], 3).await;
    let close = |id: &str| {
        ev(
            id,
            "2020-12-03T03:00:00+08:00",
            "8030",
            pb::case_event::Kind::CaseClosed(pb::CaseClosed {
                reason: "done".into(),
            }),
        )
    };
    c.append(append("shut", vec![close("shut-close")]))
        .await
        .unwrap();

    // Twenty notes at once on the closed case.
    let mut tasks = Vec::new();
    for i in 0..20 {
        let mut c = server.ledger().await;
        tasks.push(tokio::spawn(async move {
            c.append(append(
                "shut",
                vec![ev(
                    &format!("shut-late-{i}"),
                    "2020-12-04T09:00:00+08:00",
                    "8030",
                    note("after"),
                )],
            ))
            .await
        }));
    }
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    // Still closed: a promise is refused with the closed-case rule, and
    // closing it again too.
    let err = c
        .append(append(
            "shut",
            vec![ev(
                "shut-p1",
                "2020-12-04T09:10:00+08:00",
                "8030",
                pb::case_event::Kind::PromiseMade(pb::PromiseMade {
                    promise_id: "p1".into(),
                    description: "call back".into(),
                    due_at: Some(ts("2020-12-05T00:00:00+08:00")),
                    ..Default::default()
                }),
            )],
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition, "{err:?}");
    assert_eq!(
        details(&err).precondition_failure().unwrap().violations[0].r#type,
        "case_closed"
    );
    // The expected version is the stream's, folded from the log.
    let reopened = c
        .append(pb::AppendRequest {
            case_id: "shut".into(),
            expected_version: expect_exact(25),
            events: vec![ev(
                "shut-reopen",
                "2020-12-04T10:00:00+08:00",
                "8030",
                pb::case_event::Kind::CaseReopened(pb::CaseReopened {
                    reason: "customer called again".into(),
                }),
            )],
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(reopened.case_version, 26);
    c.append(append("shut", vec![close("shut-close-2")]))
        .await
        .unwrap();

    let check = |events: &[pb::RecordedEvent]| {
        assert_eq!(events.len(), 27);
        for (i, e) in events.iter().enumerate() {
            assert_eq!(e.case_version, i as u64 + 1);
            let prev = if i == 0 {
                vec![0; 32]
            } else {
                events[i - 1].record_hash.clone()
            };
            assert_eq!(e.prev_hash, prev, "version {}", e.case_version);
        }
    };
    check(&read_case(&mut c, "shut").await);
    // A start verifies every chain and folds the case again.
    server.restart().await;
    let mut c = server.ledger().await;
    check(&read_case(&mut c, "shut").await);
    c.append(append(
        "shut",
        vec![ev(
            "shut-last",
            "2020-12-05T09:00:00+08:00",
            "8030",
            note("after restart"),
        )],
    ))
    .await
    .unwrap();
    assert_eq!(read_case(&mut c, "shut").await.len(), 28);
}
