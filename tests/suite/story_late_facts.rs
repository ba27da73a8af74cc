//! Facts recorded late, told through the API. An agent promises a callback
//! by a time; she calls at 17:30 but logs the call at 18:30, after the
//! promise fell due at 18:00 — and the early-warning process, judging on the
//! clock between the two appends, has warned "promise broken: never done".
//! The promise was kept in time. The warning is withdrawn by an appended
//! `WarningWithdrawn` naming the late fact; the warning itself stays in the
//! log. A call logged late that really came after the due time leaves its
//! warning standing.
//!
//! Then a whole history is entered after the fact with `import`: it goes
//! through the same validation and rules, and raises only the warnings that
//! were true at their time, marked found on import.

use crate::common::*;
use complaint_ledger::proto::v1::{self as pb, case_event::Kind, Channel, PromiseState};
use complaint_ledger::time::{nanos_ts, now_nanos};

const SECOND: i128 = 1_000_000_000;

fn at(id: &str, when: i128, kind: Kind) -> pb::ProposedEvent {
    let mut e = ev(id, "2020-01-01T00:00:00Z", "8030", kind);
    e.occurred_at = Some(nanos_ts(when));
    e
}

fn promise(id: &str, due: i128) -> Kind {
    Kind::PromiseMade(pb::PromiseMade {
        promise_id: id.into(),
        description: format!("call back by {id}'s time"),
        due_at: Some(nanos_ts(due)),
        ..Default::default()
    })
}

fn callback(id: &str, promise_id: &str) -> Kind {
    Kind::CallbackCompleted(pb::CallbackCompleted {
        callback_id: id.into(),
        channel: Channel::OutboundCall as i32,
        agent_id: "8030".into(),
        reached: true,
        customer_response: pb::CustomerResponse::Accepted as i32,
        promise_id: promise_id.into(),
        ..Default::default()
    })
}

fn warnings(events: &[pb::RecordedEvent]) -> Vec<(String, pb::WarningRaised)> {
    events
        .iter()
        .filter_map(|e| match e.event.as_ref()?.kind.as_ref()? {
            Kind::WarningRaised(w) => Some((e.event_id.clone(), w.clone())),
            _ => None,
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_logged_late_withdraws_the_warning_it_contradicts() {
    let server = TestServer::start_with_policy().await;
    let mut c = server.ledger().await;
    let t0 = now_nanos();
    let due = t0 + 2 * SECOND;
    c.append(append(
        "late-1",
        vec![
            at("late-open", t0 - 600 * SECOND, opened("cust-late")),
            at("late-p1", t0 - 590 * SECOND, promise("p1", due)),
            at("late-p2", t0 - 580 * SECOND, promise("p2", due)),
        ],
    ))
    .await
    .unwrap();
    // Both promises fall due unanswered: two never_done warnings.
    let events = wait_until(&server, "late-1", |events| warnings(events).len() == 2).await;
    for (_, w) in warnings(&events) {
        assert!(w.reason.ends_with("never_done"), "{}", w.reason);
    }
    // p1's call happened a second before it fell due, logged only now;
    // p2's call came after its due time, logged now as well.
    c.append(append(
        "late-1",
        vec![
            at("late-cb1", due - SECOND, callback("cb1", "p1")),
            at("late-cb2", due + SECOND, callback("cb2", "p2")),
        ],
    ))
    .await
    .unwrap();
    let events = wait_until(&server, "late-1", |events| {
        kinds_of(events).contains(&"WarningWithdrawn")
    })
    .await;
    let withdrawn: Vec<pb::WarningWithdrawn> = events
        .iter()
        .filter_map(|e| match e.event.as_ref()?.kind.as_ref()? {
            Kind::WarningWithdrawn(w) => Some(w.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(withdrawn.len(), 1, "{withdrawn:?}");
    let w = &withdrawn[0];
    assert_eq!(w.withdrawn_by_event_id, "late-cb1");
    let withdrawal_id = events
        .iter()
        .find(|e| e.event_type == "WarningWithdrawn")
        .unwrap()
        .event_id
        .clone();
    assert!(w.reason.contains("promise p1 was kept"), "{}", w.reason);
    // The warnings stay in the log, both of them.
    assert_eq!(warnings(&events).len(), 2);
    let v = get_case(&server, "late-1", None).await;
    let p = |id: &str| {
        v.promises
            .iter()
            .find(|p| p.promise.as_ref().unwrap().promise_id == id)
            .unwrap()
            .clone()
    };
    assert_eq!(p("p1").state, PromiseState::Kept as i32);
    assert_eq!(p("p2").state, PromiseState::Broken as i32);
    let shown: Vec<(String, String)> = v
        .warnings
        .iter()
        .map(|w| {
            (
                w.warning.as_ref().unwrap().reason.clone(),
                w.withdrawn_by_event_id.clone(),
            )
        })
        .collect();
    assert_eq!(
        shown,
        [
            (
                "promise p1 broken: never_done".into(),
                withdrawal_id.clone()
            ),
            ("promise p2 broken: never_done".into(), String::new()),
        ]
    );
    // ListWarnings says it too.
    let listed = server
        .policies()
        .await
        .list_warnings(pb::ListWarningsRequest {
            case_id: "late-1".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .warnings;
    let marks: Vec<bool> = listed
        .iter()
        .map(|w| !w.withdrawn_by_event_id.is_empty())
        .collect();
    assert_eq!(marks, [true, false]);
    // A warning is withdrawn once; and only by a supervisor or the process.
    let e = c
        .append(append(
            "late-1",
            vec![at(
                "late-w-again",
                now_nanos(),
                Kind::WarningWithdrawn(pb::WarningWithdrawn {
                    warning_id: w.warning_id.clone(),
                    reason: "again".into(),
                    withdrawn_by_event_id: String::new(),
                }),
            )],
        ))
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::FailedPrecondition);
    assert_eq!(
        details(&e).precondition_failure().unwrap().violations[0].r#type,
        "warning_already_withdrawn"
    );
    // The timeline shows it.
    let o = cli(&["replay", "--case", "late-1", "--server", &server.url()]).await;
    let t = text(&o);
    assert!(t.contains("WITHDRAWN: promise p1 was kept"), "{t}");
}

/// One line of an import file: a `RecordedEvent` in the API's JSON, with
/// a source envelope the import ignores.
fn line(case: &str, id: &str, at: &str, event: serde_json::Value) -> String {
    serde_json::json!({
        "position": "7",
        "caseId": case,
        "caseVersion": "3",
        "eventId": id,
        "eventType": "ignored",
        "occurredAt": at,
        "recordedAt": "2026-01-01T00:00:00Z",
        "actor": "old-system",
        "actedForAgent": "8030",
        "event": event,
    })
    .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_imported_history_raises_only_what_was_true_at_its_time() {
    let server = TestServer::start_with_policy().await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("history.jsonl");
    let open = |customer: &str| {
        serde_json::json!({"caseOpened": {
            "customerId": customer, "businessLine": "qidian", "category": "功能设置/自动订阅"
        }})
    };
    let promise = |id: &str, due: &str| {
        serde_json::json!({"promiseMade": {
            "promiseId": id, "description": "回电", "dueAt": due, "channel": "CHANNEL_OUTBOUND_CALL"
        }})
    };
    let history = [
        line(
            "imp-1",
            "imp-1-open",
            "2024-05-08T09:00:00+08:00",
            open("cust-imp"),
        ),
        line(
            "imp-1",
            "imp-1-c1",
            "2024-05-08T09:00:00+08:00",
            serde_json::json!({"contactLogged": {
                "contactId": "c1", "channel": "CHANNEL_HOTLINE", "direction": "DIRECTION_INBOUND",
                "agentId": "8030", "startedAt": "2024-05-08T09:00:00+08:00",
                "threats": ["THREAT_REGULATOR"]
            }}),
        ),
        line(
            "imp-1",
            "imp-1-p1",
            "2024-05-08T09:10:00+08:00",
            promise("p1", "2024-05-10T18:00:00+08:00"),
        ),
        line(
            "imp-1",
            "imp-1-p2",
            "2024-05-08T09:11:00+08:00",
            promise("p2", "2024-05-12T18:00:00+08:00"),
        ),
        // Kept in time: 17:30 before 18:00.
        line(
            "imp-1",
            "imp-1-cb1",
            "2024-05-10T17:30:00+08:00",
            serde_json::json!({"callbackCompleted": {
                "callbackId": "cb1", "channel": "CHANNEL_OUTBOUND_CALL", "agentId": "8030",
                "reached": true, "customerResponse": "CUSTOMER_RESPONSE_ACCEPTED", "promiseId": "p1"
            }}),
        ),
        // A note entered after the fact about the first morning: recorded
        // after what happened later.
        line(
            "imp-1",
            "imp-1-n1",
            "2024-05-08T09:05:00+08:00",
            serde_json::json!({"noteAdded": {"text": "customer read out the order number"}}),
        ),
        // The first call back, that same morning, also entered late.
        line(
            "imp-1",
            "imp-1-c2",
            "2024-05-08T09:20:00+08:00",
            serde_json::json!({"contactLogged": {
                "contactId": "c2", "channel": "CHANNEL_OUTBOUND_CALL",
                "direction": "DIRECTION_OUTBOUND", "agentId": "8030",
                "startedAt": "2024-05-08T09:20:00+08:00"
            }}),
        ),
        String::new(),
        line(
            "imp-2",
            "imp-2-open",
            "2024-06-01T10:00:00+08:00",
            open("cust-imp"),
        ),
        line(
            "imp-2",
            "imp-2-n1",
            "2024-06-01T10:01:00+08:00",
            serde_json::json!({"noteAdded": {"text": "duplicate of imp-1"}}),
        ),
    ];
    std::fs::write(&file, history.join("\n")).unwrap();
    let path = file.to_str().unwrap();
    let o = cli(&["import", path, "--server", &server.url()]).await;
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        text(&o).contains("imported 9 events of 2 cases (0 were already there)"),
        "{}",
        text(&o)
    );
    // p2 fell due unanswered (at its time, 2024-05-12 18:00) and the
    // customer threatened to go to a regulator: two warnings, found on
    // import. p1 was kept: no warning about it, not even for a moment.
    let events = wait_until(&server, "imp-1", |events| warnings(events).len() == 2).await;
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    let events_later = read_case(&mut server.ledger().await, "imp-1").await;
    assert_eq!(
        events_later.len(),
        events.len(),
        "{:?}",
        kinds_of(&events_later)
    );
    let mut found: Vec<(String, bool)> = warnings(&events)
        .into_iter()
        .map(|(_, w)| (w.reason, w.found_on_import))
        .collect();
    found.sort();
    assert_eq!(
        found,
        [
            ("promise p2 broken: never_done".to_string(), true),
            (
                "the customer threatened: regulator (contact c1)".to_string(),
                true
            ),
        ]
    );
    assert!(!kinds_of(&events).contains(&"WarningWithdrawn"));
    // The imported records say so; the ledger stamped its own envelope.
    let imported: Vec<&pb::RecordedEvent> = events.iter().filter(|e| e.imported).collect();
    assert_eq!(imported.len(), 7);
    assert!(imported.iter().all(|e| e.actor != "old-system"));
    assert_eq!(events[0].case_version, 1);
    let v = get_case(&server, "imp-1", None).await;
    assert_eq!(v.promises[0].state, PromiseState::Kept as i32);
    assert_eq!(v.promises[1].state, PromiseState::Broken as i32);
    // Responding (及时响应) ended with the morning's call back, recorded
    // after the afternoon's callback of two days later.
    let respond = v
        .timely_duties
        .iter()
        .find(|d| d.duty() == pb::TimelyDuty::Respond)
        .unwrap();
    assert_eq!(respond.ended_by_event_id, "imp-1-c2");
    assert_eq!(respond.elapsed.unwrap().seconds, 20 * 60);
    let o = cli(&["replay", "--case", "imp-1", "--server", &server.url()]).await;
    let t = text(&o);
    assert!(t.contains("[imported]"), "{t}");
    assert!(t.contains("(found on import)"), "{t}");

    // Again: nothing is appended twice.
    let o = cli(&["import", path, "--server", &server.url()]).await;
    assert!(
        text(&o).contains("imported 0 events of 2 cases (9 were already there)"),
        "{}",
        text(&o)
    );
    // The file grew (the old system recorded one more fact of imp-1): the
    // run is stored in part, so it goes again event by event, and only
    // the new line is appended.
    let mut grown = history.to_vec();
    grown.insert(
        7,
        line(
            "imp-1",
            "imp-1-n2",
            "2024-05-13T09:00:00+08:00",
            serde_json::json!({"noteAdded": {"text": "customer asked about p2 again"}}),
        ),
    );
    std::fs::write(&file, grown.join("\n")).unwrap();
    let o = cli(&["import", path, "--server", &server.url()]).await;
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        text(&o).contains("imported 1 events of 2 cases (9 were already there)"),
        "{}",
        text(&o)
    );
    let last = read_case(&mut server.ledger().await, "imp-1").await;
    assert_eq!(last.last().unwrap().event_id, "imp-1-n2");

    // A line the API would not take stops the import there, named.
    let bad = dir.path().join("bad.jsonl");
    std::fs::write(
        &bad,
        [
            line(
                "imp-3",
                "imp-3-open",
                "2024-06-01T10:00:00+08:00",
                open("c3"),
            ),
            line(
                "imp-3",
                "imp-3-n1",
                "2024-06-01T10:01:00+08:00",
                serde_json::json!({"noteAdded": {"text": ""}}),
            ),
        ]
        .join("\n"),
    )
    .unwrap();
    let o = cli(&["import", bad.to_str().unwrap(), "--server", &server.url()]).await;
    assert!(!o.status.success());
    let t = text(&o);
    assert!(t.contains("lines 1-2 (case imp-3) were refused"), "{t}");
    assert!(t.contains("InvalidArgument"), "{t}");
    std::fs::write(
        &bad,
        r#"{"caseId": "imp-4", "eventId": "x", "colour": "red"}"#,
    )
    .unwrap();
    let o = cli(&["import", bad.to_str().unwrap(), "--server", &server.url()]).await;
    assert!(!o.status.success());
    assert!(text(&o).contains("line 1"), "{}", text(&o));
    // The refused case was not half written.
    let e = server
        .ledger()
        .await
        .read_case(pb::ReadCaseRequest {
            case_id: "imp-3".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::NotFound);
}
