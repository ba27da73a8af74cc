//! A broadband complaint, told through the API: the field technician was
//! rude, and the customer demands that the manager call back — not the
//! technician. The agent promises "the manager (m-77) will call you by
//! Wednesday 18:00". On Tuesday the technician calls anyway; the customer
//! refuses to talk. On Wednesday morning the manager calls and the customer
//! accepts.
//!
//! The technician's call reached the customer, named the promise and the
//! demand, and was made on the right channel — before parties existed it
//! kept the promise and fulfilled the demand. It did neither: it was the
//! wrong party, and refused. The manager's call kept both.

use crate::common::*;
use complaint_ledger::proto::v1::{
    self as pb, case_event::Kind, BreachReason, Channel, CustomerResponse, DemandState, PartyKind,
    PromiseState,
};

const CASE: &str = "bb-1";

fn callback(
    id: &str,
    at: &str,
    by: Option<pb::Party>,
    response: CustomerResponse,
) -> pb::ProposedEvent {
    ev(
        id,
        at,
        "5301",
        Kind::CallbackCompleted(pb::CallbackCompleted {
            callback_id: id.into(),
            channel: Channel::OutboundCall as i32,
            reached: true,
            customer_response: response as i32,
            promise_id: "p1".into(),
            demand_ids: vec!["d1".into()],
            party: by,
            ..Default::default()
        }),
    )
}

#[tokio::test]
async fn only_the_party_required_keeps_a_promise() {
    let server = TestServer::start_with_policy().await;
    let mut c = server.ledger().await;
    c.append(append(
        CASE,
        vec![
            ev(
                "bb-open",
                "2025-03-03T09:55:00+08:00",
                "5301",
                Kind::CaseOpened(pb::CaseOpened {
                    customer_id: "cust-bb".into(),
                    business_line: "broadband".into(),
                    category: "装维/服务态度".into(),
                    ..Default::default()
                }),
            ),
            ev(
                "bb-c1",
                "2025-03-03T10:00:00+08:00",
                "5301",
                Kind::ContactLogged(pb::ContactLogged {
                    contact_id: "c1".into(),
                    channel: Channel::Hotline as i32,
                    direction: pb::Direction::Inbound as i32,
                    agent_id: "5301".into(),
                    started_at: Some(ts("2025-03-03T10:00:00+08:00")),
                    duration_seconds: 420,
                    summary: "technician rude during the installation".into(),
                    ..Default::default()
                }),
            ),
            ev(
                "bb-d1",
                "2025-03-03T10:05:00+08:00",
                "5301",
                Kind::DemandRecorded(pb::DemandRecorded {
                    demand_id: "d1".into(),
                    contact_id: "c1".into(),
                    description: "the manager calls me back, not the technician".into(),
                    required_channel: Channel::OutboundCall as i32,
                    required_party: party(PartyKind::Manager, ""),
                    ..Default::default()
                }),
            ),
            ev(
                "bb-p1",
                "2025-03-03T10:06:00+08:00",
                "5301",
                Kind::PromiseMade(pb::PromiseMade {
                    promise_id: "p1".into(),
                    contact_id: "c1".into(),
                    agent_id: "5301".into(),
                    description: "经理(m-77)周三18:00前回电".into(),
                    due_at: Some(ts("2025-03-05T18:00:00+08:00")),
                    channel: Channel::OutboundCall as i32,
                    required_party: party(PartyKind::Manager, "m-77"),
                    ..Default::default()
                }),
            ),
            // Tuesday: the technician calls, the customer refuses to talk.
            // (Recorded with the rest: the story is told after the fact,
            // and the promise's due time has long passed on the clock of
            // whoever runs this test.)
            callback(
                "bb-cb1",
                "2025-03-04T15:00:00+08:00",
                party(PartyKind::FieldStaff, "t-9"),
                CustomerResponse::Refused,
            ),
        ],
    ))
    .await
    .unwrap();
    let v = get_case(&server, CASE, Some("2025-03-04T16:00:00+08:00")).await;
    let p = &v.promises[0];
    assert_eq!(p.state, PromiseState::Broken as i32);
    assert_eq!(
        p.breach_reasons,
        [
            BreachReason::WrongParty as i32,
            BreachReason::Refused as i32
        ]
    );
    let d = &v.demands[0];
    assert_eq!(d.state, DemandState::Open as i32);
    let reasons: Vec<i32> = d.breaches.iter().map(|b| b.reason).collect();
    assert_eq!(
        reasons,
        [
            BreachReason::WrongParty as i32,
            BreachReason::Refused as i32
        ]
    );
    assert_eq!(v.callbacks[0].party, party(PartyKind::FieldStaff, "t-9"));
    // The technician is not an agent: no agent figure counts the call.
    assert_eq!(
        v.contacts_by_agent,
        [pb::CountByKey {
            key: "5301".into(),
            count: 1
        }]
    );
    // The early-warning process says so, with the reasons.
    let events = wait_for_event(&server, CASE, |e| e.event_type == "WarningRaised").await;
    let warning = events
        .iter()
        .find_map(|e| match e.event.as_ref()?.kind.as_ref()? {
            Kind::WarningRaised(w) => Some(w.clone()),
            _ => None,
        })
        .unwrap();
    assert_eq!(warning.rule, "promise_broken");
    assert_eq!(warning.reason, "promise p1 broken: wrong_party, refused");

    // Wednesday morning: the manager calls; the customer accepts.
    c.append(append(
        CASE,
        vec![callback(
            "bb-cb2",
            "2025-03-05T11:00:00+08:00",
            party(PartyKind::Manager, "m-77"),
            CustomerResponse::Accepted,
        )],
    ))
    .await
    .unwrap();
    let v = get_case(&server, CASE, Some("2025-03-06T09:00:00+08:00")).await;
    let p = &v.promises[0];
    assert_eq!(p.state, PromiseState::Kept as i32, "{p:?}");
    assert_eq!(p.answered_by_event_id, "bb-cb2");
    let d = &v.demands[0];
    assert_eq!(d.state, DemandState::Fulfilled as i32);
    assert_eq!(d.fulfilled_by_event_id, "bb-cb2");
    // The technician's call stays on the demand's record.
    assert_eq!(d.breaches.len(), 2);
    assert!(d.breaches.iter().all(|b| b.event_id == "bb-cb1"));
    // The warning was true when raised (the promise stood broken from
    // Tuesday to Wednesday): it stays, not withdrawn.
    let w = &v.warnings[0];
    assert!(w.withdrawn_by_event_id.is_empty(), "{w:?}");
}

/// Any manager answers a demand for "the manager"; only m-77 keeps a
/// promise that m-77 will call.
#[tokio::test]
async fn another_manager_answers_the_demand_but_not_the_promise() {
    let server = TestServer::start().await;
    let mut c = server.ledger().await;
    open_case(&mut c, CASE, "cust-bb").await;
    c.append(append(
        CASE,
        vec![
            ev(
                "bb-d1",
                "2020-12-03T02:00:00+08:00",
                "5301",
                Kind::DemandRecorded(pb::DemandRecorded {
                    demand_id: "d1".into(),
                    description: "the manager calls me back".into(),
                    required_party: party(PartyKind::Manager, ""),
                    ..Default::default()
                }),
            ),
            ev(
                "bb-p1",
                "2020-12-03T02:01:00+08:00",
                "5301",
                Kind::PromiseMade(pb::PromiseMade {
                    promise_id: "p1".into(),
                    description: "经理(m-77)明天回电".into(),
                    due_at: Some(ts("2020-12-04T18:00:00+08:00")),
                    required_party: party(PartyKind::Manager, "m-77"),
                    ..Default::default()
                }),
            ),
            callback(
                "bb-cb1",
                "2020-12-04T10:00:00+08:00",
                party(PartyKind::Manager, "m-80"),
                CustomerResponse::Accepted,
            ),
        ],
    ))
    .await
    .unwrap();
    let v = get_case(&server, CASE, Some("2020-12-05T09:00:00+08:00")).await;
    assert_eq!(v.promises[0].state, PromiseState::Broken as i32);
    assert_eq!(
        v.promises[0].breach_reasons,
        [BreachReason::WrongParty as i32]
    );
    assert_eq!(v.demands[0].state, DemandState::Fulfilled as i32);
    assert!(v.demands[0].breaches.is_empty());
}

#[tokio::test]
async fn a_party_is_named_consistently_or_refused() {
    let server = TestServer::start().await;
    let mut c = server.ledger().await;
    open_case(&mut c, "bb-2", "cust-bb2").await;
    let contact = |agent_id: &str, by: Option<pb::Party>| {
        Kind::ContactLogged(pb::ContactLogged {
            contact_id: "c1".into(),
            channel: Channel::OutboundCall as i32,
            direction: pb::Direction::Outbound as i32,
            agent_id: agent_id.into(),
            started_at: Some(ts("2020-12-03T02:00:00+08:00")),
            party: by,
            ..Default::default()
        })
    };
    for (agent_id, by, field, says) in [
        (
            "8030",
            party(PartyKind::Volunteer, "mod-7"),
            "events[0].event.contact_logged.agent_id",
            "not one",
        ),
        (
            "8030",
            party(PartyKind::Agent, "8031"),
            "events[0].event.contact_logged.agent_id",
            "8031",
        ),
        (
            "",
            party(PartyKind::Unspecified, "mod-7"),
            "events[0].event.contact_logged.party.kind",
            "required",
        ),
        (
            "",
            party(PartyKind::Volunteer, ""),
            "events[0].event.contact_logged.party.id",
            "",
        ),
    ] {
        let e = c
            .append(append(
                "bb-2",
                vec![ev(
                    "bb2-c1",
                    "2020-12-03T02:00:00+08:00",
                    "",
                    contact(agent_id, by),
                )],
            ))
            .await
            .unwrap_err();
        assert_eq!(e.code(), tonic::Code::InvalidArgument, "{e:?}");
        let v = details(&e).bad_request().unwrap().field_violations.clone();
        assert!(
            v.iter()
                .any(|v| v.field == field && v.description.contains(says)),
            "{v:?}"
        );
    }
    // A demand's required party names a kind, an id or both, never neither.
    let e = c
        .append(append(
            "bb-2",
            vec![ev(
                "bb2-d1",
                "2020-12-03T02:00:00+08:00",
                "",
                Kind::DemandRecorded(pb::DemandRecorded {
                    demand_id: "d1".into(),
                    description: "x".into(),
                    required_party: Some(pb::Party::default()),
                    ..Default::default()
                }),
            )],
        ))
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::InvalidArgument);
    assert_eq!(
        details(&e).bad_request().unwrap().field_violations[0].field,
        "events[0].event.demand_recorded.required_party"
    );
    // Nothing refused was written.
    assert_eq!(read_case(&mut c, "bb-2").await.len(), 1);
}
