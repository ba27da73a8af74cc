//! One test per class of bad input. Each gets the right status, names the
//! field or rule, and leaves nothing written.

use crate::common::*;
use complaint_ledger::proto::v1::{self as pb, case_event::Kind};
use tonic::Code;

async fn log_len(server: &TestServer) -> usize {
    read_all(&mut server.ledger().await, pb::ReadAllRequest::default())
        .await
        .len()
}

#[tokio::test]
async fn a_missing_field_is_invalid_argument_naming_every_field() {
    let server = TestServer::start().await;
    let mut c = server.ledger().await;
    let mut e = ev(
        "m1",
        "2020-12-03T01:24:30+08:00",
        "8030",
        Kind::CaseOpened(pb::CaseOpened::default()),
    );
    e.occurred_at = None;
    let err = c.append(append("124545", vec![e])).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    let fields: Vec<String> = details(&err)
        .bad_request()
        .unwrap()
        .field_violations
        .iter()
        .map(|v| v.field.clone())
        .collect();
    for f in [
        "events[0].occurred_at",
        "events[0].event.case_opened.customer_id",
        "events[0].event.case_opened.business_line",
        "events[0].event.case_opened.category",
    ] {
        assert!(fields.contains(&f.to_string()), "{f} not in {fields:?}");
    }
    let err = c.append(append("", vec![])).await.unwrap_err();
    let fields: Vec<String> = details(&err)
        .bad_request()
        .unwrap()
        .field_violations
        .iter()
        .map(|v| v.field.clone())
        .collect();
    assert_eq!(fields, ["case_id", "events"]);
    assert_eq!(log_len(&server).await, 0);
}

#[tokio::test]
async fn an_event_dated_ahead_of_the_server_clock_is_invalid_argument() {
    let server = TestServer::start().await;
    let mut c = server.ledger().await;
    // An event dated `ahead` seconds after now.
    let dated = |id: &str, ahead: i64| {
        let mut e = ev(id, "2020-12-03T01:24:30+08:00", "8030", opened("u1"));
        let now = complaint_ledger::time::now_ts();
        e.occurred_at = Some(prost_types::Timestamp {
            seconds: now.seconds + ahead,
            nanos: 0,
        });
        e
    };
    // A day ahead: refused, naming the field, the time and the allowance.
    let err = c
        .append(append("ahead", vec![dated("a1", 86_400)]))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    let v = details(&err).bad_request().unwrap().field_violations[0].clone();
    assert_eq!(v.field, "events[0].occurred_at");
    assert!(
        v.description.contains("after the server's clock") && v.description.contains("300 s"),
        "{}",
        v.description
    );
    assert_eq!(log_len(&server).await, 0);
    // A minute ahead is a drifting clock, not a claim about the future.
    c.append(append("ahead", vec![dated("a2", 60)]))
        .await
        .unwrap();
    assert_eq!(log_len(&server).await, 1);
}

#[tokio::test]
async fn a_wrong_enum_value_is_invalid_argument() {
    let server = TestServer::start().await;
    let mut c = server.ledger().await;
    open_case(&mut c, "enum", "cust-1").await;
    let contact = |channel: i32| {
        ev(
            "enum-c1",
            "2020-12-03T01:24:30+08:00",
            "8030",
            Kind::ContactLogged(pb::ContactLogged {
                contact_id: "c1".into(),
                channel,
                direction: pb::Direction::Inbound as i32,
                started_at: Some(ts("2020-12-03T01:24:30+08:00")),
                ..Default::default()
            }),
        )
    };
    for (channel, why) in [(99, "99 is not a known value"), (0, "is required")] {
        let err = c
            .append(append("enum", vec![contact(channel)]))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument);
        let v = details(&err).bad_request().unwrap().field_violations[0].clone();
        assert_eq!(v.field, "events[0].event.contact_logged.channel");
        assert!(v.description.contains(why), "{}", v.description);
    }
    // An event with no kind, a bad id, a duplicate id and a bad time.
    let mut e1 = ev("dup", "2020-12-03T01:24:30+08:00", "8030", note("x"));
    e1.event = Some(pb::CaseEvent { kind: None });
    let e2 = ev("dup", "2020-12-03T01:24:30+08:00", "agent 8030", note("x"));
    let mut e3 = ev("bad id!", "2020-12-03T01:24:30+08:00", "8030", note("x"));
    e3.occurred_at = Some(prost_types::Timestamp {
        seconds: 0,
        nanos: -5,
    });
    let err = c
        .append(append("enum", vec![e1, e2, e3]))
        .await
        .unwrap_err();
    let fields: Vec<String> = details(&err)
        .bad_request()
        .unwrap()
        .field_violations
        .iter()
        .map(|v| v.field.clone())
        .collect();
    assert_eq!(
        fields,
        [
            "events[0].event",
            "events[1].event_id",
            "events[1].acted_for_agent",
            "events[2].event_id",
            "events[2].occurred_at"
        ]
    );
    assert_eq!(log_len(&server).await, 1);
}

#[tokio::test]
async fn oversize_requests_are_resource_exhausted_naming_the_limit() {
    let server = TestServer::start_with(|c| {
        c.ledger.limits.max_events_per_append = 10;
        c.ledger.limits.max_event_bytes = 2048;
        c.ledger.limits.max_text_bytes = 1024;
        c.ledger.limits.max_request_bytes = 8 * 1024;
    })
    .await;
    let mut c = server.ledger().await;
    open_case(&mut c, "big", "cust-1").await;
    let notes = |n: usize, len: usize| -> Vec<pb::ProposedEvent> {
        (0..n)
            .map(|i| {
                ev(
                    &format!("big-{n}-{len}-{i}"),
                    "2020-12-03T01:24:30+08:00",
                    "8030",
                    note(&"字".repeat(len)),
                )
            })
            .collect()
    };
    for (events, limit) in [
        (notes(11, 1), "max_events_per_append"),
        (notes(1, 500), "max_text_bytes"),
        (notes(10, 330), "max_request_bytes"),
    ] {
        let err = c.append(append("big", events)).await.unwrap_err();
        assert_eq!(err.code(), Code::ResourceExhausted, "{limit}: {err:?}");
        let q = details(&err)
            .quota_failure()
            .cloned()
            .expect("quota failure detail");
        assert_eq!(q.violations[0].subject, limit, "{}", err.message());
    }
    let mut huge = ev("big-huge", "2020-12-03T01:24:30+08:00", "8030", note("x"));
    huge.event = Some(pb::CaseEvent {
        kind: Some(Kind::ContactLogged(pb::ContactLogged {
            contact_id: "c1".into(),
            channel: pb::Channel::Hotline as i32,
            direction: pb::Direction::Inbound as i32,
            started_at: Some(ts("2020-12-03T01:24:30+08:00")),
            silences: (0..400)
                .map(|i| pb::Silence {
                    offset_seconds: i,
                    duration_seconds: 1,
                    silent_party: "agent".into(),
                })
                .collect(),
            ..Default::default()
        })),
    });
    let err = c.append(append("big", vec![huge])).await.unwrap_err();
    assert_eq!(
        details(&err).quota_failure().unwrap().violations[0].subject,
        "max_event_bytes"
    );
    assert_eq!(log_len(&server).await, 1);
}

#[tokio::test]
async fn an_unknown_case_is_not_found_for_reads_and_a_rule_for_appends() {
    let server = TestServer::start().await;
    let mut c = server.ledger().await;
    let err = c
        .read_case(pb::ReadCaseRequest {
            case_id: "nope".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    let err = server
        .cases()
        .await
        .get_case(pb::GetCaseRequest {
            case_id: "nope".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    let err = c
        .append(append(
            "nope",
            vec![ev("n1", "2020-12-03T01:24:30+08:00", "8030", note("x"))],
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert_eq!(
        details(&err).precondition_failure().unwrap().violations[0].r#type,
        "case_not_opened"
    );
    assert_eq!(log_len(&server).await, 0);
}

#[tokio::test]
async fn a_broken_rule_is_failed_precondition_and_the_whole_request_writes_nothing() {
    let server = TestServer::start().await;
    let mut c = server.ledger().await;
    open_case(&mut c, "rules", "cust-1").await;
    let reject = Kind::TicketRejected(pb::TicketRejected {
        ticket_id: "t9".into(),
        reason: "incomplete".into(),
        missing_fields: vec![],
    });
    // A valid note first, then a rejection of a ticket never submitted: nothing is stored.
    let err = c
        .append(append(
            "rules",
            vec![
                ev(
                    "rules-n1",
                    "2020-12-03T01:30:00+08:00",
                    "8030",
                    note("fine"),
                ),
                ev(
                    "rules-r1",
                    "2020-12-03T01:31:00+08:00",
                    "8030",
                    reject.clone(),
                ),
            ],
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
    let v = details(&err).precondition_failure().unwrap().violations[0].clone();
    assert_eq!(
        (v.r#type.as_str(), v.subject.as_str()),
        ("ticket_unknown", "events[1]")
    );
    assert_eq!(read_case(&mut c, "rules").await.len(), 1);

    // A correction must name an event of this case, of the same kind.
    let corr = |target: &str, replacement: Kind| {
        Kind::EventCorrected(Box::new(pb::EventCorrected {
            corrected_event_id: target.into(),
            reason: "fix".into(),
            replacement: Some(Box::new(pb::CaseEvent {
                kind: Some(replacement),
            })),
        }))
    };
    let err = c
        .append(append(
            "rules",
            vec![ev(
                "rules-x1",
                "2020-12-03T01:32:00+08:00",
                "8030",
                corr("rules-open", note("x")),
            )],
        ))
        .await
        .unwrap_err();
    assert_eq!(
        details(&err).precondition_failure().unwrap().violations[0].r#type,
        "correction_kind_mismatch"
    );
    let err = c
        .append(append(
            "rules",
            vec![ev(
                "rules-x2",
                "2020-12-03T01:32:00+08:00",
                "8030",
                corr("missing", note("x")),
            )],
        ))
        .await
        .unwrap_err();
    assert_eq!(
        details(&err).precondition_failure().unwrap().violations[0].r#type,
        "correction_target_unknown"
    );

    // Opening twice, and expecting a new case that exists.
    let mut again = append(
        "rules",
        vec![ev(
            "rules-open2",
            "2020-12-03T01:42:00+08:00",
            "8030",
            opened("cust-1"),
        )],
    );
    assert_eq!(
        details(&c.append(again.clone()).await.unwrap_err())
            .precondition_failure()
            .unwrap()
            .violations[0]
            .r#type,
        "case_already_opened"
    );
    again.expected_version = expect_no_case();
    assert_eq!(c.append(again).await.unwrap_err().code(), Code::Aborted);
    // A closed case takes only a reopen, a note or a correction.
    c.append(append(
        "rules",
        vec![ev(
            "rules-close",
            "2020-12-03T01:40:00+08:00",
            "8030",
            Kind::CaseClosed(pb::CaseClosed {
                reason: "done".into(),
            }),
        )],
    ))
    .await
    .unwrap();
    let err = c
        .append(append(
            "rules",
            vec![ev(
                "rules-p1",
                "2020-12-03T01:41:00+08:00",
                "8030",
                Kind::PromiseMade(pb::PromiseMade {
                    promise_id: "p1".into(),
                    description: "call back".into(),
                    due_at: Some(ts("2020-12-04T00:00:00+08:00")),
                    ..Default::default()
                }),
            )],
        ))
        .await
        .unwrap_err();
    assert_eq!(
        details(&err).precondition_failure().unwrap().violations[0].r#type,
        "case_closed"
    );
    assert_eq!(read_case(&mut c, "rules").await.len(), 2);
}

#[tokio::test]
async fn bad_read_arguments_are_invalid_argument() {
    let server = TestServer::start().await;
    let mut c = server.ledger().await;
    let err = c
        .read_all(pb::ReadAllRequest {
            filter: Some(pb::EventFilter {
                event_types: vec!["CaseUpdated".into()],
                case_ids: vec![],
            }),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert_eq!(
        details(&err).bad_request().unwrap().field_violations[0].field,
        "filter.event_types[0]"
    );
    let err = server
        .cases()
        .await
        .list_cases(pb::ListCasesRequest {
            status: 42,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    let err = server
        .cases()
        .await
        .get_case(pb::GetCaseRequest {
            case_id: "x".into(),
            as_of: Some(pb::get_case_request::AsOf::Version(0)),
            evaluate_at: None,
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    let mut req = tonic::Request::new(append("x", vec![]));
    req.metadata_mut()
        .insert("x-actor", "not valid!".parse().unwrap());
    let err = c.append(req).await.unwrap_err();
    assert_eq!(
        details(&err).bad_request().unwrap().field_violations[0].field,
        "x-actor"
    );
}
