//! Deadlines past the official calendar, told through the API. On Friday
//! 2026-11-20 a regulator forwards a complaint: the matter must be settled
//! within 45 working days, which reach into 2027. On 2026-12-04 an agent
//! promises an answer "within 25 working days". No official holiday notice
//! for 2027 exists yet.
//!
//! Before provisional years, both got no deadline at all, for weeks. Now
//! both are computed from the statutory holidays (New Year's Day, Spring
//! Festival, ... from the Chinese calendar) and say they are provisional
//! wherever they show. When the official 2027 notice is loaded, the server
//! corrects the promise at its next start, and a person corrects the
//! complaint (its summary is sealed personal data, which only a person's
//! correction may carry again).

use crate::common::*;
use complaint_ledger::proto::v1::{self as pb, case_event::Kind};
use complaint_ledger::time::format_local;

fn local(t: &Option<prost_types::Timestamp>) -> String {
    format_local(t.as_ref().expect("a time"), 480)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deadlines_past_the_notices_are_provisional_until_the_notice_comes() {
    let mut server = TestServer::start().await;
    let mut c = server.ledger().await;
    open_case(&mut c, "pv-1", "cust-pv").await;
    c.append(append(
        "pv-1",
        vec![
            ev(
                "pv-x1",
                "2026-11-20T10:00:00+08:00",
                "8030",
                Kind::ExternalComplaintReceived(pb::ExternalComplaintReceived {
                    body: pb::OutsideBody::MarketRegulator as i32,
                    reference_number: "12315-2026-7788".into(),
                    summary: "forwarded by 12315".into(),
                    ..Default::default()
                }),
            ),
            ev(
                "pv-p1",
                "2026-12-04T10:00:00+08:00",
                "8030",
                Kind::PromiseMade(pb::PromiseMade {
                    promise_id: "p1".into(),
                    description: "25个工作日内答复".into(),
                    working_days: 25,
                    ..Default::default()
                }),
            ),
        ],
    ))
    .await
    .unwrap();

    let v = get_case(&server, "pv-1", Some("2026-12-05T12:00:00+08:00")).await;
    let x = v.external_complaint_deadlines[0].complaint.clone().unwrap();
    assert_eq!(local(&x.respond_by), "2026-12-01 18:00:00 +08:00");
    assert_eq!(local(&x.resolve_by), "2027-01-25 18:00:00 +08:00");
    assert!(x.deadline_provisional);
    assert_eq!(x.deadline_pending, "");
    let p = v.promises[0].promise.clone().unwrap();
    // Dec 7-31 are 19 working days; New Year's Day is off by the statute;
    // the 25th is Monday 01-11.
    assert_eq!(local(&p.due_at), "2027-01-11 18:00:00 +08:00");
    assert!(p.due_provisional);
    assert_eq!(p.due_calendar, "cn-mainland@2026.1");
    // Listed by due time like any promise, saying it is provisional.
    let listed = server
        .policies()
        .await
        .list_promises(pb::ListPromisesRequest {
            evaluate_at: Some(ts("2026-12-05T12:00:00+08:00")),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .promises;
    assert!(
        listed[0]
            .promise
            .as_ref()
            .unwrap()
            .promise
            .as_ref()
            .unwrap()
            .due_provisional
    );
    let o = cli(&["replay", "--case", "pv-1", "--server", &server.url()]).await;
    assert!(
        text(&o).contains("promise p1: 25个工作日内答复 (due by a provisional calendar)"),
        "{}",
        text(&o)
    );

    // The official notice arrives; the server starts with it and corrects
    // the promise: official now, same day (the notice added no day off).
    restart_with_an_official_2027(&mut server, |_| {}).await;
    let mut c = server.ledger().await;
    let events = wait_for_event(&server, "pv-1", |e| e.actor == "policy:deadlines").await;
    let correction = events
        .iter()
        .find(|e| e.actor == "policy:deadlines")
        .unwrap();
    assert_eq!(correction.causation_id, "pv-p1");
    let v = get_case(&server, "pv-1", Some("2026-12-05T12:00:00+08:00")).await;
    let p = v.promises[0].promise.clone().unwrap();
    assert_eq!(local(&p.due_at), "2027-01-11 18:00:00 +08:00");
    assert!(!p.due_provisional);
    assert_eq!(p.due_calendar, "cn-mainland@2027.test");
    // A person corrects the complaint, leaving the deadline to the server.
    let mut again = x.clone();
    again.resolve_by = None;
    again.deadline_calendar.clear();
    again.deadline_provisional = false;
    c.append(append(
        "pv-1",
        vec![ev(
            "pv-x1-fix",
            "2026-12-05T09:00:00+08:00",
            "8030",
            Kind::EventCorrected(Box::new(pb::EventCorrected {
                corrected_event_id: "pv-x1".into(),
                reason: "the 2027 notice is out".into(),
                replacement: Some(Box::new(pb::CaseEvent {
                    kind: Some(Kind::ExternalComplaintReceived(again)),
                })),
            })),
        )],
    ))
    .await
    .unwrap();
    let v = get_case(&server, "pv-1", Some("2026-12-05T12:00:00+08:00")).await;
    let x = v.external_complaint_deadlines[0].complaint.clone().unwrap();
    assert_eq!(local(&x.resolve_by), "2027-01-25 18:00:00 +08:00");
    assert!(!x.deadline_provisional);
    assert_eq!(x.deadline_calendar, "cn-mainland@2027.test");
    // Another start corrects nothing again.
    let before = read_case(&mut c, "pv-1").await.len();
    restart_with_an_official_2027(&mut server, |_| {}).await;
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let mut c = server.ledger().await;
    assert_eq!(read_case(&mut c, "pv-1").await.len(), before);
}
