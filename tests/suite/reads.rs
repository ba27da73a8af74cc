//! Reading back: one case in either direction, the global log with filters,
//! subscriptions (catch-up, caught-up marker, live, resume), case lists, the
//! case as of a recorded time, and the health and reflection services.

use crate::common::*;
use complaint_ledger::proto::v1::{self as pb, case_event::Kind, subscribe_response};
use std::time::Duration;
use tokio_stream::StreamExt;

async fn seed(server: &TestServer) {
    let mut c = server.ledger().await;
    for (case, customer) in [("c1", "cust-a"), ("c2", "cust-b"), ("c3", "cust-a")] {
        open_case(&mut c, case, customer).await;
    }
    add_notes(&mut c, &["c1", "c2"], 5).await;
}

#[tokio::test]
async fn read_case_forwards_backwards_and_limited() {
    let server = TestServer::start().await;
    seed(&server).await;
    let mut c = server.ledger().await;
    let read = |from_version, direction: pb::ReadDirection, limit| pb::ReadCaseRequest {
        case_id: "c1".into(),
        from_version,
        direction: direction as i32,
        limit,
    };
    let versions =
        |events: Vec<pb::RecordedEvent>| events.iter().map(|e| e.case_version).collect::<Vec<_>>();
    let collect = |s: tonic::Streaming<pb::RecordedEvent>| async move {
        s.map(|e| e.unwrap()).collect::<Vec<_>>().await
    };
    let all = collect(
        c.read_case(read(0, pb::ReadDirection::Forwards, 0))
            .await
            .unwrap()
            .into_inner(),
    )
    .await;
    assert_eq!(versions(all), [1, 2, 3, 4, 5, 6]);
    let some = collect(
        c.read_case(read(3, pb::ReadDirection::Forwards, 2))
            .await
            .unwrap()
            .into_inner(),
    )
    .await;
    assert_eq!(versions(some), [3, 4]);
    let back = collect(
        c.read_case(read(0, pb::ReadDirection::Backwards, 0))
            .await
            .unwrap()
            .into_inner(),
    )
    .await;
    assert_eq!(versions(back), [6, 5, 4, 3, 2, 1]);
    let back = collect(
        c.read_case(read(4, pb::ReadDirection::Backwards, 2))
            .await
            .unwrap()
            .into_inner(),
    )
    .await;
    assert_eq!(versions(back), [4, 3]);
    let none = collect(
        c.read_case(read(7, pb::ReadDirection::Forwards, 0))
            .await
            .unwrap()
            .into_inner(),
    )
    .await;
    assert!(none.is_empty());
}

#[tokio::test]
async fn read_all_from_a_position_filtered_by_type_and_case() {
    let server = TestServer::start().await;
    seed(&server).await;
    let mut c = server.ledger().await;
    let all = read_all(&mut c, pb::ReadAllRequest::default()).await;
    assert_eq!(all.len(), 13);
    assert_eq!(
        all.iter().map(|e| e.position).collect::<Vec<_>>(),
        (1..=13).collect::<Vec<_>>()
    );
    assert!(all
        .iter()
        .all(|e| e.actor == "anonymous" && e.schema_version == 1 && e.recorded_at.is_some()));
    let from = read_all(
        &mut c,
        pb::ReadAllRequest {
            from_position: 10,
            ..Default::default()
        },
    )
    .await;
    assert_eq!(from.first().map(|e| e.position), Some(10));
    let opened = read_all(
        &mut c,
        pb::ReadAllRequest {
            filter: Some(pb::EventFilter {
                event_types: vec!["CaseOpened".into()],
                case_ids: vec![],
            }),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(
        opened
            .iter()
            .map(|e| e.case_id.as_str())
            .collect::<Vec<_>>(),
        ["c1", "c2", "c3"]
    );
    let c2 = read_all(
        &mut c,
        pb::ReadAllRequest {
            filter: Some(pb::EventFilter {
                event_types: vec!["NoteAdded".into()],
                case_ids: vec!["c2".into()],
            }),
            limit: 3,
            ..Default::default()
        },
    )
    .await;
    assert_eq!(
        c2.iter().map(|e| e.event_id.as_str()).collect::<Vec<_>>(),
        ["c2-n0", "c2-n1", "c2-n2"]
    );
}

#[tokio::test]
async fn subscribe_catches_up_marks_it_goes_live_and_resumes() {
    let server = TestServer::start().await;
    seed(&server).await;
    let mut c = server.ledger().await;
    let mut sub = c
        .subscribe(pb::SubscribeRequest {
            from_position: 5,
            filter: None,
        })
        .await
        .unwrap()
        .into_inner();
    let mut positions = Vec::new();
    loop {
        match sub.message().await.unwrap().unwrap().kind.unwrap() {
            subscribe_response::Kind::Event(e) => positions.push(e.position),
            subscribe_response::Kind::CaughtUp(m) => {
                assert_eq!(m.position, 13);
                break;
            }
        }
    }
    assert_eq!(positions, (5..=13).collect::<Vec<_>>());
    // Live: new events arrive as they are committed.
    let mut w = server.ledger().await;
    w.append(append(
        "c3",
        vec![ev(
            "c3-live",
            "2020-12-03T03:00:00+08:00",
            "8030",
            note("live"),
        )],
    ))
    .await
    .unwrap();
    let live = tokio::time::timeout(Duration::from_secs(10), sub.message())
        .await
        .expect("live event")
        .unwrap()
        .unwrap();
    match live.kind.unwrap() {
        subscribe_response::Kind::Event(e) => {
            assert_eq!((e.position, e.event_id.as_str()), (14, "c3-live"))
        }
        other => panic!("{other:?}"),
    }
    drop(sub);
    // Resume after a disconnect from the last position seen + 1, filtered.
    w.append(append(
        "c1",
        vec![ev(
            "c1-later",
            "2020-12-03T03:00:00+08:00",
            "8030",
            note("later"),
        )],
    ))
    .await
    .unwrap();
    let mut sub = c
        .subscribe(pb::SubscribeRequest {
            from_position: 15,
            filter: Some(pb::EventFilter {
                event_types: vec![],
                case_ids: vec!["c1".into()],
            }),
        })
        .await
        .unwrap()
        .into_inner();
    match sub.message().await.unwrap().unwrap().kind.unwrap() {
        subscribe_response::Kind::Event(e) => assert_eq!(e.event_id, "c1-later"),
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        sub.message().await.unwrap().unwrap().kind.unwrap(),
        subscribe_response::Kind::CaughtUp(_)
    ));
}

#[tokio::test]
async fn list_cases_filters_and_pages() {
    let server = TestServer::start().await;
    seed(&server).await;
    let mut w = server.ledger().await;
    w.append(append(
        "c2",
        vec![ev(
            "c2-close",
            "2020-12-04T00:00:00+08:00",
            "8030",
            Kind::CaseClosed(pb::CaseClosed {
                reason: "done".into(),
            }),
        )],
    ))
    .await
    .unwrap();
    w.append(append(
        "c3",
        vec![ev(
            "c3-contact",
            "2020-12-04T00:00:00+08:00",
            "8016",
            Kind::ContactLogged(pb::ContactLogged {
                contact_id: "x".into(),
                channel: pb::Channel::Qq as i32,
                direction: pb::Direction::Inbound as i32,
                agent_id: "8016".into(),
                started_at: Some(ts("2020-12-04T00:00:00+08:00")),
                ..Default::default()
            }),
        )],
    ))
    .await
    .unwrap();
    let mut cases = server.cases().await;
    let ids = |r: pb::ListCasesResponse| r.cases.into_iter().map(|c| c.case_id).collect::<Vec<_>>();
    let list = |req: pb::ListCasesRequest| {
        let mut cases = cases.clone();
        async move { cases.list_cases(req).await.unwrap().into_inner() }
    };
    assert_eq!(
        ids(list(pb::ListCasesRequest::default()).await),
        ["c1", "c2", "c3"]
    );
    assert_eq!(
        ids(list(pb::ListCasesRequest {
            status: pb::CaseStatus::Open as i32,
            ..Default::default()
        })
        .await),
        ["c1", "c3"]
    );
    assert_eq!(
        ids(list(pb::ListCasesRequest {
            customer_id: "cust-a".into(),
            ..Default::default()
        })
        .await),
        ["c1", "c3"]
    );
    assert_eq!(
        ids(list(pb::ListCasesRequest {
            agent_id: "8016".into(),
            ..Default::default()
        })
        .await),
        ["c3"]
    );
    let page1 = list(pb::ListCasesRequest {
        page_size: 2,
        ..Default::default()
    })
    .await;
    assert_eq!(page1.next_page_token, "c2");
    let page2 = list(pb::ListCasesRequest {
        page_size: 2,
        page_token: page1.next_page_token.clone(),
        ..Default::default()
    })
    .await;
    assert_eq!(
        (ids(page1), page2.next_page_token.clone(), ids(page2)),
        (
            vec!["c1".to_string(), "c2".to_string()],
            String::new(),
            vec!["c3".to_string()]
        )
    );
    let c2 = cases
        .list_cases(pb::ListCasesRequest {
            customer_id: "cust-b".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (c2.cases[0].status, c2.cases[0].version),
        (pb::CaseStatus::Closed as i32, 7)
    );
}

#[tokio::test]
async fn get_case_as_of_a_recorded_time() {
    let server = TestServer::start().await;
    let mut c = server.ledger().await;
    open_case(&mut c, "t", "cust-a").await;
    let first = read_case(&mut c, "t").await[0].recorded_at.unwrap();
    tokio::time::sleep(Duration::from_millis(20)).await;
    c.append(append(
        "t",
        vec![ev(
            "t-n",
            "2020-12-03T02:00:00+08:00",
            "8030",
            note("later"),
        )],
    ))
    .await
    .unwrap();
    let mut cases = server.cases().await;
    let at = |ts: prost_types::Timestamp| pb::GetCaseRequest {
        case_id: "t".into(),
        as_of: Some(pb::get_case_request::AsOf::RecordedAt(ts)),
        evaluate_at: None,
    };
    let v = cases.get_case(at(first)).await.unwrap().into_inner();
    assert_eq!((v.version, v.notes.len()), (1, 0));
    assert_eq!(v.evaluated_at, Some(first));
    let v = cases
        .get_case(pb::GetCaseRequest {
            case_id: "t".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!((v.version, v.notes.len()), (2, 1));
    let before = prost_types::Timestamp {
        seconds: first.seconds - 60,
        nanos: 0,
    };
    assert_eq!(
        cases.get_case(at(before)).await.unwrap_err().code(),
        tonic::Code::NotFound
    );
    let future = cases
        .get_case(pb::GetCaseRequest {
            case_id: "t".into(),
            as_of: Some(pb::get_case_request::AsOf::Version(9)),
            evaluate_at: None,
        })
        .await
        .unwrap_err();
    assert_eq!(future.code(), tonic::Code::OutOfRange);
}

#[tokio::test]
async fn health_and_reflection_v1_and_v1alpha_answer() {
    let server = TestServer::start().await;
    let channel = tonic::transport::Endpoint::from_shared(server.url())
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut health = tonic_health::pb::health_client::HealthClient::new(channel.clone());
    for service in ["complaint_ledger.v1.Ledger", "complaint_ledger.v1.Cases"] {
        let r = health
            .check(tonic_health::pb::HealthCheckRequest {
                service: service.into(),
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(
            r.status,
            tonic_health::pb::health_check_response::ServingStatus::Serving as i32,
            "{service}"
        );
    }
    {
        use tonic_reflection::pb::v1::{
            server_reflection_client::ServerReflectionClient,
            server_reflection_request::MessageRequest, server_reflection_response::MessageResponse,
            ServerReflectionRequest,
        };
        let mut client = ServerReflectionClient::new(channel.clone());
        let req = ServerReflectionRequest {
            host: String::new(),
            message_request: Some(MessageRequest::ListServices(String::new())),
        };
        let mut resp = client
            .server_reflection_info(tokio_stream::iter(vec![req]))
            .await
            .unwrap()
            .into_inner();
        let Some(MessageResponse::ListServicesResponse(list)) =
            resp.message().await.unwrap().unwrap().message_response
        else {
            panic!("no list")
        };
        let names: Vec<_> = list.service.iter().map(|s| s.name.as_str()).collect();
        for s in [
            "complaint_ledger.v1.Ledger",
            "complaint_ledger.v1.Cases",
            "complaint_ledger.v1.Policies",
            "complaint_ledger.v1.Privacy",
            "complaint_ledger.v1.Audit",
            "complaint_ledger.v1.Ops",
            "grpc.health.v1.Health",
        ] {
            assert!(names.contains(&s), "{s} not in {names:?}");
        }
        // The benchmark's reference service is not served, so not listed.
        assert!(!names.iter().any(|n| n.contains("Noop")), "{names:?}");
    }
    {
        use tonic_reflection::pb::v1alpha::{
            server_reflection_client::ServerReflectionClient,
            server_reflection_request::MessageRequest, server_reflection_response::MessageResponse,
            ServerReflectionRequest,
        };
        let mut client = ServerReflectionClient::new(channel);
        // grpcurl resolves a service's file and then its imports, by name.
        let reqs = vec![
            ServerReflectionRequest {
                host: String::new(),
                message_request: Some(MessageRequest::FileContainingSymbol(
                    "complaint_ledger.v1.Ledger".into(),
                )),
            },
            ServerReflectionRequest {
                host: String::new(),
                message_request: Some(MessageRequest::FileByFilename(
                    "google/protobuf/timestamp.proto".into(),
                )),
            },
        ];
        let mut resp = client
            .server_reflection_info(tokio_stream::iter(reqs))
            .await
            .unwrap()
            .into_inner();
        for _ in 0..2 {
            match resp.message().await.unwrap().unwrap().message_response {
                Some(MessageResponse::FileDescriptorResponse(f)) => {
                    assert!(!f.file_descriptor_proto.is_empty())
                }
                other => panic!("{other:?}"),
            }
        }
    }
}

#[tokio::test]
async fn a_case_larger_than_one_read_chunk_streams_completely_both_ways() {
    let server = TestServer::start().await;
    let mut c = server.ledger().await;
    open_case(&mut c, "big", "cust-a").await;
    for b in 0..12 {
        let events = (0..100)
            .map(|k| {
                ev(
                    &format!("big-{b}-{k}"),
                    "2020-12-03T02:00:00+08:00",
                    "8030",
                    note("n"),
                )
            })
            .collect();
        c.append(append("big", events)).await.unwrap();
    }
    let all = tokio::time::timeout(Duration::from_secs(20), read_case(&mut c, "big"))
        .await
        .expect("read completes");
    assert_eq!(all.len(), 1201);
    assert!(all
        .windows(2)
        .all(|w| w[1].case_version == w[0].case_version + 1));
    let mut s = c
        .read_case(pb::ReadCaseRequest {
            case_id: "big".into(),
            from_version: 0,
            direction: pb::ReadDirection::Backwards as i32,
            limit: 0,
        })
        .await
        .unwrap()
        .into_inner();
    let mut n = 0;
    while tokio::time::timeout(Duration::from_secs(20), s.message())
        .await
        .expect("no stall")
        .unwrap()
        .is_some()
    {
        n += 1;
    }
    assert_eq!(n, 1201);
    let all = tokio::time::timeout(
        Duration::from_secs(20),
        read_all(&mut c, pb::ReadAllRequest::default()),
    )
    .await
    .expect("read all completes");
    assert_eq!(all.len(), 1201);
}

#[tokio::test]
async fn ops_stats_report_the_log_and_its_group_commits() {
    let server = TestServer::start().await;
    seed(&server).await;
    let mut ops = pb::ops_client::OpsClient::connect(server.url())
        .await
        .unwrap();
    let s = ops
        .get_stats(pb::GetStatsRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!((s.head_position, s.cases, s.closed_cases), (13, 3, 0));
    assert_eq!(s.committed_records, 13);
    assert_eq!(s.committed_requests, 13);
    assert!(s.commits >= 1 && s.commits <= 13 && s.max_batch_requests >= 1);
    assert!(s.disk_bytes > 0);
    assert!(s.resident_bytes > 0, "read from /proc on Linux");
    // What the server's calendars say of their end, as the policy computes
    // it (tested on fixed dates in `policy`), around the call.
    let warnings = || {
        complaint_ledger::policy::Policy::default()
            .coverage_warnings(complaint_ledger::time::now_nanos())
    };
    let before = warnings();
    let s = ops
        .get_stats(pb::GetStatsRequest {})
        .await
        .unwrap()
        .into_inner();
    assert!(
        s.calendar_warnings == before || s.calendar_warnings == warnings(),
        "{:?}",
        s.calendar_warnings
    );

    // Closed cases are counted as they close and reopen, and after a
    // restart as before it.
    let mut c = server.ledger().await;
    let step = |case: &str, id: &str, kind: pb::case_event::Kind| {
        append(
            case,
            vec![ev(id, "2020-12-04T10:00:00+08:00", "8030", kind)],
        )
    };
    let close = || pb::case_event::Kind::CaseClosed(pb::CaseClosed::default());
    c.append(step("c1", "c1-close", close())).await.unwrap();
    c.append(step("c2", "c2-close", close())).await.unwrap();
    let reopen = pb::case_event::Kind::CaseReopened(pb::CaseReopened {
        reason: "the customer called again".into(),
    });
    c.append(step("c2", "c2-reopen", reopen)).await.unwrap();
    let closed = |s: pb::Stats| (s.cases, s.closed_cases);
    let s = ops.get_stats(pb::GetStatsRequest {}).await.unwrap();
    assert_eq!(closed(s.into_inner()), (3, 1));
    let mut server = server;
    server.restart().await;
    let mut ops = pb::ops_client::OpsClient::connect(server.url())
        .await
        .unwrap();
    let s = ops.get_stats(pb::GetStatsRequest {}).await.unwrap();
    assert_eq!(closed(s.into_inner()), (3, 1));
}

#[tokio::test]
async fn ops_stats_account_for_the_writers_time_by_phase() {
    let started = std::time::Instant::now();
    let server = TestServer::start().await;
    seed(&server).await;
    let mut ops = pb::ops_client::OpsClient::connect(server.url())
        .await
        .unwrap();
    let time = |s: pb::Stats| s.writer_time.expect("writer_time is always reported");
    let stats = ops
        .get_stats(pb::GetStatsRequest {})
        .await
        .unwrap()
        .into_inner();
    // The longest sync is one of those the syncing phase sums; slow ones
    // are some of the commits.
    let syncing_us = stats.writer_time.as_ref().map_or(0, |t| t.syncing_us);
    assert!(
        stats.longest_sync_us > 0 && stats.longest_sync_us <= syncing_us,
        "{stats:?}"
    );
    assert!(stats.slow_syncs <= stats.commits, "{stats:?}");
    let first = time(stats);
    let phases = |t: &pb::WriterTime| {
        [
            t.idle_us,
            t.staging_us,
            t.storing_us,
            t.syncing_us,
            t.publishing_us,
        ]
    };
    // Thirteen commits at least: every phase has taken some time, and
    // together they are the writer's life so far, never more.
    assert!(phases(&first).iter().all(|&us| us > 0), "{first:?}");
    let lived_us = started.elapsed().as_micros() as u64;
    assert!(
        phases(&first).iter().sum::<u64>() <= lived_us,
        "{first:?} in {lived_us} µs"
    );

    let mut c = server.ledger().await;
    for i in 0..5 {
        let note = pb::case_event::Kind::NoteAdded(pb::NoteAdded {
            text: format!("note {i}"),
        });
        let id = format!("c1-note-{i}");
        c.append(append(
            "c1",
            vec![ev(&id, "2020-12-04T10:00:00+08:00", "8030", note)],
        ))
        .await
        .unwrap();
    }
    let then = time(
        ops.get_stats(pb::GetStatsRequest {})
            .await
            .unwrap()
            .into_inner(),
    );
    let (a, b) = (phases(&first), phases(&then));
    assert!(
        a.iter().zip(&b).all(|(a, b)| a <= b),
        "{first:?} then {then:?}"
    );
    // Each append was staged, stored and synced on its own.
    assert!(
        b[1] > a[1] && b[2] > a[2] && b[3] > a[3],
        "{first:?} then {then:?}"
    );

    // A quiet spell is idle time as it passes, not once the next append
    // ends it: a reading across a quiet load level must not be credited
    // with the wait before it.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let quiet = time(
        ops.get_stats(pb::GetStatsRequest {})
            .await
            .unwrap()
            .into_inner(),
    );
    assert!(
        quiet.idle_us >= then.idle_us + 250_000,
        "{then:?} then {quiet:?}"
    );
}

/// Read-your-writes through the real server. Appends are answered at the
/// durable commit, and the projection host writes the read models just
/// after; every read that comes after an OK must see the append anyway —
/// the case, the case list, the policy board, the customer's history, the
/// blind index, the global log and the head in the stats — whichever of
/// several concurrent writers made it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_read_after_an_ok_sees_the_append() {
    use complaint_ledger::proto::v1::{
        cases_client::CasesClient, ledger_client::LedgerClient, ops_client::OpsClient,
        policies_client::PoliciesClient, privacy_client::PrivacyClient,
    };
    let server = TestServer::start().await;
    let mut writers = tokio::task::JoinSet::new();
    for w in 0..4 {
        let channel = server.channel().await;
        writers.spawn(async move {
            let mut ledger = LedgerClient::new(channel.clone());
            let mut cases = CasesClient::new(channel.clone());
            let mut policies = PoliciesClient::new(channel.clone());
            let mut privacy = PrivacyClient::new(channel.clone());
            let mut ops = OpsClient::new(channel);
            let customer = format!("cust-ryw{w}");
            let phone = format!("1380013{w:04}");
            for round in 0..8 {
                let case_id = format!("ryw{w}-{round}");
                let mut open = opened(&customer);
                if let Kind::CaseOpened(o) = &mut open {
                    o.customer = Some(pb::CustomerPersonalData {
                        phone: phone.clone(),
                        ..Default::default()
                    });
                }
                let at = "2020-12-03T01:24:30+08:00";
                let opening = ledger
                    .append(append(
                        &case_id,
                        vec![ev(&format!("{case_id}-open"), at, "8030", open)],
                    ))
                    .await
                    .unwrap()
                    .into_inner();
                let listed = cases
                    .list_cases(pb::ListCasesRequest {
                        customer_id: customer.clone(),
                        page_size: 500,
                        ..Default::default()
                    })
                    .await
                    .unwrap()
                    .into_inner();
                assert!(
                    listed.cases.iter().any(|c| c.case_id == case_id),
                    "{case_id} not listed right after its OK"
                );
                let found = privacy
                    .find_customer_cases(pb::FindCustomerCasesRequest {
                        by: Some(pb::find_customer_cases_request::By::Phone(phone.clone())),
                    })
                    .await
                    .unwrap()
                    .into_inner();
                assert!(
                    found.case_ids.contains(&case_id),
                    "{case_id} not found by phone right after its OK: {found:?}"
                );

                let promise_id = format!("{case_id}-p");
                let promise = Kind::PromiseMade(pb::PromiseMade {
                    promise_id: promise_id.clone(),
                    description: "专员1-2个工作日回复".into(),
                    due_at: Some(ts("2099-01-01T10:00:00+08:00")),
                    ..Default::default()
                });
                let promised = ledger
                    .append(append(
                        &case_id,
                        vec![ev(
                            &promise_id,
                            "2020-12-03T02:00:00+08:00",
                            "8030",
                            promise,
                        )],
                    ))
                    .await
                    .unwrap()
                    .into_inner();
                let view = cases
                    .get_case(pb::GetCaseRequest {
                        case_id: case_id.clone(),
                        ..Default::default()
                    })
                    .await
                    .unwrap()
                    .into_inner();
                assert_eq!(view.version, promised.case_version, "{case_id}");
                let listed = policies
                    .list_promises(pb::ListPromisesRequest {
                        page_size: 500,
                        ..Default::default()
                    })
                    .await
                    .unwrap()
                    .into_inner();
                assert!(
                    listed
                        .promises
                        .iter()
                        .any(|p| p.promise.as_ref().unwrap().event_id == promise_id),
                    "{promise_id} not on the board right after its OK"
                );
                let history = policies
                    .get_customer_history(pb::GetCustomerHistoryRequest {
                        customer_id: customer.clone(),
                        ..Default::default()
                    })
                    .await
                    .unwrap()
                    .into_inner();
                let this = history.cases.iter().find(|c| c.case_id == case_id);
                assert_eq!(this.map(|c| c.promises_open), Some(1), "{history:?}");
                let read = read_all(
                    &mut ledger,
                    pb::ReadAllRequest {
                        from_position: opening.first_position,
                        limit: 1,
                        ..Default::default()
                    },
                )
                .await;
                assert_eq!(read[0].event_id, format!("{case_id}-open"));
                let stats = ops
                    .get_stats(pb::GetStatsRequest {})
                    .await
                    .unwrap()
                    .into_inner();
                assert!(stats.head_position >= promised.last_position, "{stats:?}");
            }
        });
    }
    while let Some(done) = writers.join_next().await {
        done.unwrap();
    }
}
