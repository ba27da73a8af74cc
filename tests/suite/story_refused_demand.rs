//! A parcel-delivery complaint, told through the API: the courier left a
//! parcel in the rain. The customer demands (1) that the courier be
//! dismissed, by Friday, and (2) that no reply comes by SMS, and (3) a
//! refund of the delivery fee. The courier works for a franchisee, not for
//! the company: the team lead declines (1) with that reason. The customer
//! later withdraws (2) ("SMS is fine after all") and (3) (the franchisee
//! refunded it directly). The promise to confirm the outcome is then kept by
//! SMS.
//!
//! Before demand outcomes existed, (1) stayed open forever and fell overdue
//! on Friday, and the SMS answer broke the promise on (2)'s terms, raising
//! a warning about a demand the customer had dropped.

use crate::common::*;
use complaint_ledger::proto::v1::{
    self as pb, case_event::Kind, BreachReason, Channel, DemandState, PartyKind, PromiseState,
};

const CASE: &str = "pd-1";

fn demand(
    id: &str,
    description: &str,
    f: impl FnOnce(&mut pb::DemandRecorded),
) -> pb::ProposedEvent {
    let mut d = pb::DemandRecorded {
        demand_id: id.into(),
        contact_id: "c1".into(),
        description: description.into(),
        ..Default::default()
    };
    f(&mut d);
    ev(
        &format!("pd-{id}"),
        "2025-06-02T10:10:00+08:00",
        "7002",
        Kind::DemandRecorded(d),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn declined_and_withdrawn_demands_end() {
    let server = TestServer::start_with_policy().await;
    let mut c = server.ledger().await;
    c.append(append(
        CASE,
        vec![
            ev(
                "pd-open",
                "2025-06-02T10:00:00+08:00",
                "7002",
                Kind::CaseOpened(pb::CaseOpened {
                    customer_id: "cust-pd".into(),
                    business_line: "parcels".into(),
                    category: "派送/包裹受损".into(),
                    ..Default::default()
                }),
            ),
            ev(
                "pd-c1",
                "2025-06-02T10:00:00+08:00",
                "7002",
                Kind::ContactLogged(pb::ContactLogged {
                    contact_id: "c1".into(),
                    channel: Channel::Hotline as i32,
                    direction: pb::Direction::Inbound as i32,
                    agent_id: "7002".into(),
                    started_at: Some(ts("2025-06-02T10:00:00+08:00")),
                    ..Default::default()
                }),
            ),
            demand("d1", "dismiss that courier", |d| {
                d.due_by = Some(ts("2025-06-06T18:00:00+08:00"));
            }),
            demand("d2", "no SMS replies", |d| {
                d.refused_channels = vec![Channel::Sms as i32];
            }),
            demand("d3", "refund the delivery fee", |_| {}),
            ev(
                "pd-p1",
                "2025-06-02T10:12:00+08:00",
                "7002",
                Kind::PromiseMade(pb::PromiseMade {
                    promise_id: "p1".into(),
                    contact_id: "c1".into(),
                    agent_id: "7002".into(),
                    description: "confirm the outcome by the 10th".into(),
                    due_at: Some(ts("2025-06-10T18:00:00+08:00")),
                    ..Default::default()
                }),
            ),
            // Tuesday: the team lead declines the dismissal.
            ev(
                "pd-d1-no",
                "2025-06-03T09:30:00+08:00",
                "",
                Kind::DemandDeclined(pb::DemandDeclined {
                    demand_id: "d1".into(),
                    reason: "the courier works for a franchisee, not for us; reported to them"
                        .into(),
                    decided_by: party(PartyKind::TeamLead, "9001"),
                }),
            ),
            // Thursday: the customer calls back and withdraws two demands.
            ev(
                "pd-d2-off",
                "2025-06-05T16:00:00+08:00",
                "7002",
                Kind::DemandWithdrawn(pb::DemandWithdrawn {
                    demand_id: "d2".into(),
                    reason: "SMS is fine after all".into(),
                    contact_id: "c1".into(),
                }),
            ),
            ev(
                "pd-d3-off",
                "2025-06-05T16:01:00+08:00",
                "7002",
                Kind::DemandWithdrawn(pb::DemandWithdrawn {
                    demand_id: "d3".into(),
                    reason: "the franchisee refunded it".into(),
                    contact_id: String::new(),
                }),
            ),
            // Monday the 9th: the outcome, by SMS.
            ev(
                "pd-cb1",
                "2025-06-09T11:00:00+08:00",
                "7002",
                Kind::CallbackCompleted(pb::CallbackCompleted {
                    callback_id: "cb1".into(),
                    channel: Channel::Sms as i32,
                    agent_id: "7002".into(),
                    reached: true,
                    customer_response: pb::CustomerResponse::Accepted as i32,
                    promise_id: "p1".into(),
                    ..Default::default()
                }),
            ),
        ],
    ))
    .await
    .unwrap();

    // Judged long after Friday: the declined demand is not overdue, the
    // withdrawn ones are withdrawn, the SMS keeps the promise.
    let v = get_case(&server, CASE, Some("2025-06-20T12:00:00+08:00")).await;
    let d = |id: &str| {
        v.demands
            .iter()
            .find(|d| d.demand.as_ref().unwrap().demand_id == id)
            .unwrap()
            .clone()
    };
    let d1 = d("d1");
    assert_eq!(d1.state, DemandState::Declined as i32);
    assert_eq!(d1.ended_by_event_id, "pd-d1-no");
    assert_eq!(d1.ended_at, Some(ts("2025-06-03T09:30:00+08:00")));
    assert!(d1.end_reason.contains("franchisee"), "{}", d1.end_reason);
    assert_eq!(d1.declined_by, party(PartyKind::TeamLead, "9001"));
    assert!(
        d1.breaches
            .iter()
            .all(|b| b.reason != BreachReason::NeverDone as i32),
        "{d1:?}"
    );
    let d2 = d("d2");
    assert_eq!(d2.state, DemandState::Withdrawn as i32);
    assert!(d2.breaches.is_empty(), "{d2:?}");
    assert!(d2.declined_by.is_none());
    assert_eq!(d("d3").state, DemandState::Withdrawn as i32);
    assert_eq!(v.promises[0].state, PromiseState::Kept as i32);
    // As the case stood on Wednesday the 4th, d2 still bound: an SMS then
    // would have broken it. Demands are judged as of a time too.
    let earlier = get_case(&server, CASE, Some("2025-06-04T12:00:00+08:00")).await;
    let d2_then = earlier
        .demands
        .iter()
        .find(|d| d.demand.as_ref().unwrap().demand_id == "d2")
        .unwrap();
    assert_eq!(d2_then.state, DemandState::Open as i32);
    assert!(d2_then.ended_by_event_id.is_empty());

    // The customer history counts them by outcome.
    let h = server
        .policies()
        .await
        .get_customer_history(pb::GetCustomerHistoryRequest {
            customer_id: "cust-pd".into(),
            evaluate_at: Some(ts("2025-06-20T12:00:00+08:00")),
        })
        .await
        .unwrap()
        .into_inner();
    let row = &h.cases[0];
    assert_eq!(
        (
            row.demands_open,
            row.demands_fulfilled,
            row.demands_declined,
            row.demands_withdrawn
        ),
        (0, 0, 1, 2)
    );

    // An ended demand is not ended twice; an unknown one not at all.
    for (id, rule) in [("d1", "demand_ended"), ("d9", "demand_unknown")] {
        let e = c
            .append(append(
                CASE,
                vec![ev(
                    &format!("pd-{id}-again"),
                    "2025-06-11T10:00:00+08:00",
                    "",
                    Kind::DemandDeclined(pb::DemandDeclined {
                        demand_id: id.into(),
                        reason: "no".into(),
                        decided_by: party(PartyKind::Manager, "m-1"),
                    }),
                )],
            ))
            .await
            .unwrap_err();
        assert_eq!(e.code(), tonic::Code::FailedPrecondition, "{e:?}");
        let p = details(&e).precondition_failure().unwrap().violations[0].clone();
        assert_eq!(p.r#type, rule);
    }
    // A decline names who decided.
    let e = c
        .append(append(
            CASE,
            vec![ev(
                "pd-d3-x",
                "2025-06-11T10:00:00+08:00",
                "",
                Kind::DemandDeclined(pb::DemandDeclined {
                    demand_id: "d3".into(),
                    reason: "no".into(),
                    decided_by: None,
                }),
            )],
        ))
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::InvalidArgument);
    assert_eq!(
        details(&e).bad_request().unwrap().field_violations[0].field,
        "events[0].event.demand_declined.decided_by"
    );

    // No warning was raised: nothing the customer still asked for was
    // broken. (Give the early-warning process its tick first.)
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    let events = read_case(&mut c, CASE).await;
    assert!(
        !kinds_of(&events).contains(&"WarningRaised"),
        "{:?}",
        kinds_of(&events)
    );

    // The timeline tells it.
    let o = cli(&["replay", "--case", CASE, "--server", &server.url()]).await;
    assert!(o.status.success(), "{}", text(&o));
    let t = text(&o);
    assert!(
        t.contains("demand d1 DECLINED by team_lead 9001: the courier works for a franchisee"),
        "{t}"
    );
    assert!(
        t.contains("demand d2 WITHDRAWN by the customer: SMS is fine after all"),
        "{t}"
    );
    let o = cli(&[
        "replay",
        "--case",
        CASE,
        "--as-of",
        &events.len().to_string(),
        "--server",
        &server.url(),
    ])
    .await;
    let t = text(&o);
    assert!(t.contains("demand d1: declined"), "{t}");
    assert!(t.contains("demand d2: withdrawn"), "{t}");
}
