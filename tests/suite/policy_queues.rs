//! KF-006 survey and callback queues, agent scorecards under standard 003,
//! customer histories and outside complaints, through the real gRPC API.

use crate::common::kf006::{contact, dissatisfied, queue};
use crate::common::*;
use complaint_ledger::proto::v1::{self as pb, case_event::Kind, Channel, DissatisfactionFactor};
use tonic::Code;

#[tokio::test]
async fn kf006_surveys_monday_to_wednesday_callbacks_thursday_to_sunday_held_until_the_second_line_answers(
) {
    let server = TestServer::start().await;
    let mut c = server.ledger().await;
    // Week of Monday 2020-12-07: two dissatisfied contacts; case k1 has a
    // ticket still waiting for the second line.
    c.append(append(
        "k1",
        vec![
            ev("k1-open", "2020-12-08T09:00:00+08:00", "8030", opened("u1")),
            contact("k1-c1", "2020-12-08T09:00:00+08:00", Channel::Hotline),
            dissatisfied(
                "k1-c1",
                "2020-12-08T09:30:00+08:00",
                DissatisfactionFactor::RejectionDelay,
            ),
            ev(
                "k1-t1",
                "2020-12-08T09:40:00+08:00",
                "8030",
                Kind::TicketSubmitted(pb::TicketSubmitted {
                    ticket_id: "t1".into(),
                    content: "跳章订阅".into(),
                    ..Default::default()
                }),
            ),
        ],
    ))
    .await
    .unwrap();
    c.append(append(
        "k2",
        vec![
            ev("k2-open", "2020-12-10T20:00:00+08:00", "8030", opened("u2")),
            contact("k2-c1", "2020-12-10T20:00:00+08:00", Channel::Qq),
            dissatisfied(
                "k2-c1",
                "2020-12-10T20:30:00+08:00",
                DissatisfactionFactor::Attitude,
            ),
        ],
    ))
    .await
    .unwrap();
    // This week's (12-14) dissatisfied contact is not due before next week.
    c.append(append(
        "k3",
        vec![
            ev("k3-open", "2020-12-14T10:00:00+08:00", "8030", opened("u3")),
            contact("k3-c1", "2020-12-14T10:00:00+08:00", Channel::Hotline),
            dissatisfied(
                "k3-c1",
                "2020-12-14T10:30:00+08:00",
                DissatisfactionFactor::Other,
            ),
        ],
    ))
    .await
    .unwrap();

    // QQ uses its own eight factors: "system could not find it" is not one.
    let e = c
        .append(append(
            "k2",
            vec![ev(
                "k2-bad",
                "2020-12-10T20:31:00+08:00",
                "8030",
                Kind::DissatisfactionClassified(pb::DissatisfactionClassified {
                    contact_id: "k2-c1".into(),
                    needs_survey: true,
                    factor: DissatisfactionFactor::NotFound as i32,
                    ..Default::default()
                }),
            )],
        ))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition);
    assert!(
        e.message().contains("factor_not_used_on_qq"),
        "{}",
        e.message()
    );

    // Survey queue on Monday 12-14: last week's two.
    let q = queue(&server, pb::QueueKind::Survey, "2020-12-14")
        .await
        .unwrap();
    assert_eq!(q.week_of, "2020-12-07");
    let ids: Vec<_> = q.items.iter().map(|i| i.contact_id.as_str()).collect();
    assert_eq!(ids, ["k1-c1", "k2-c1"]);
    assert_eq!(
        q.items[0].factor,
        DissatisfactionFactor::RejectionDelay as i32
    );
    assert_eq!(q.items[0].case_version, 4);
    // Not on a Thursday.
    let e = queue(&server, pb::QueueKind::Survey, "2020-12-17")
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(e.message().contains("date"), "{}", e.message());
    let e = queue(&server, pb::QueueKind::Callback, "2020-13-01")
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);

    // Surveys done for both; k2 resolved and satisfied.
    for (case, contact, resolved) in [("k1", "k1-c1", false), ("k2", "k2-c1", true)] {
        c.append(append(
            case,
            vec![ev(
                &format!("{contact}-survey"),
                "2020-12-14T15:00:00+08:00",
                "8099",
                Kind::SurveyDone(pb::SurveyDone {
                    contact_id: contact.into(),
                    resolved,
                    event_appended: !resolved,
                    satisfied: resolved,
                    factor: 0,
                    notes: "调研".into(),
                }),
            )],
        ))
        .await
        .unwrap();
    }
    assert!(queue(&server, pb::QueueKind::Survey, "2020-12-15")
        .await
        .unwrap()
        .items
        .is_empty());

    // Callback queue on Thursday 12-17: k1 is held — chase the second line.
    let q = queue(&server, pb::QueueKind::Callback, "2020-12-17")
        .await
        .unwrap();
    let k1 = q.items.iter().find(|i| i.case_id == "k1").unwrap();
    assert!(k1.held);
    assert_eq!(k1.chase_tickets, ["t1"]);
    let k2 = q.items.iter().find(|i| i.case_id == "k2").unwrap();
    assert!(!k2.held);
    // The second line answers; k1 is no longer held; k2 is called back.
    c.append(append(
        "k1",
        vec![ev(
            "k1-result",
            "2020-12-17T10:00:00+08:00",
            "",
            Kind::TicketResultGiven(pb::TicketResultGiven {
                ticket_id: "t1".into(),
                result: "已处理".into(),
                finality: pb::ResultFinality::Final as i32,
                ..Default::default()
            }),
        )],
    ))
    .await
    .unwrap();
    c.append(append(
        "k2",
        vec![ev(
            "k2-callback",
            "2020-12-17T18:00:00+08:00",
            "8099",
            Kind::CallbackCompleted(pb::CallbackCompleted {
                callback_id: "cb1".into(),
                channel: Channel::OutboundCall as i32,
                reached: true,
                customer_response: pb::CustomerResponse::Accepted as i32,
                dissatisfied_contact_id: "k2-c1".into(),
                resolved: true,
                ..Default::default()
            }),
        )],
    ))
    .await
    .unwrap();
    let q = queue(&server, pb::QueueKind::Callback, "2020-12-18")
        .await
        .unwrap();
    assert_eq!(q.items.len(), 1);
    assert!(!q.items[0].held && q.items[0].case_id == "k1");
    // A week later k1 is still waiting, carried over.
    let q = queue(&server, pb::QueueKind::Callback, "2020-12-24")
        .await
        .unwrap();
    assert!(q.items[0].carried_over);

    // Weekly statistics by factor for the week of 12-07.
    let s = server
        .policies()
        .await
        .get_factor_statistics(pb::GetFactorStatisticsRequest {
            date: "2020-12-09".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!((s.week_of.as_str(), s.total), ("2020-12-07", 2));
    let f = |factor: DissatisfactionFactor| {
        *s.factors
            .iter()
            .find(|x| x.factor == factor as i32)
            .unwrap()
    };
    let attitude = f(DissatisfactionFactor::Attitude);
    assert_eq!(
        (
            attitude.surveyed,
            attitude.called_back,
            attitude.resolved,
            attitude.satisfied
        ),
        (1, 1, 1, 1)
    );
    let delay = f(DissatisfactionFactor::RejectionDelay);
    assert_eq!(
        (
            delay.surveyed,
            delay.called_back,
            delay.resolved,
            delay.event_appended
        ),
        (1, 0, 0, 1)
    );
}

fn judged(id: &str, item: u32, at: &str) -> pb::ProposedEvent {
    ev(
        &format!("j-{id}"),
        at,
        "qa",
        Kind::ViolationJudged(pb::ViolationJudged {
            judgement_id: id.into(),
            agent_id: "8030".into(),
            item,
            established: true,
            elements: Some(pb::ComplaintElements {
                complainant: "cust-5c1e9a".into(),
                agent_id: "8030".into(),
                what: "承诺1-2个工作日回复未兑现".into(),
                when: Some(ts(at)),
                evidence: "recording-124545-c03".into(),
            }),
            notified_at: Some(ts(at)),
            ..Default::default()
        }),
    )
}

async fn scorecard(server: &TestServer, month: &str) -> pb::Scorecard {
    server
        .policies()
        .await
        .get_scorecard(pb::GetScorecardRequest {
            agent_id: "8030".into(),
            month: month.into(),
            evaluate_at: Some(ts("2020-12-31T12:00:00+08:00")),
        })
        .await
        .unwrap()
        .into_inner()
}

#[tokio::test]
async fn agent_scorecards_appeal_window_and_five_elements() {
    let server = TestServer::start().await;
    let mut c = server.ledger().await;
    open_case(&mut c, "s1", "u1").await;
    // Friday 12-04 10:00 notice: appeal until Tuesday 12-08 18:00.
    c.append(append(
        "s1",
        vec![
            judged("j7", 7, "2020-12-04T10:00:00+08:00"),
            judged("j1a", 1, "2020-12-05T10:00:00+08:00"),
            judged("j1b", 1, "2020-12-06T10:00:00+08:00"),
            judged("j1c", 1, "2020-12-07T10:00:00+08:00"),
        ],
    ))
    .await
    .unwrap();
    let card = scorecard(&server, "2020-12").await;
    assert_eq!(
        (
            card.level1_records,
            card.level2_records,
            card.level3_records
        ),
        (3, 1, 1)
    );
    assert_eq!(
        (card.highest_level, card.pay_percent, card.freeze_months),
        (3, 70, 3)
    );
    assert!(card.month_failed);
    let j7 = card
        .judgements
        .iter()
        .find(|j| j.event_id == "j-j7")
        .unwrap();
    let x = j7.judgement.as_ref().unwrap();
    assert_eq!(
        complaint_ledger::time::format_local(x.appeal_deadline.as_ref().unwrap(), 480),
        "2020-12-08 18:00:00 +08:00"
    );
    assert_eq!(
        complaint_ledger::time::format_local(x.contact_deadline.as_ref().unwrap(), 480),
        "2020-12-06 10:00:00 +08:00"
    );
    // Nobody heard the agent within 48 hours: judged without them.
    assert!(j7.judged_without_agent);
    assert!(!j7.appeal_window_open);
    assert!(scorecard(&server, "2020-11").await.judgements.is_empty());

    // An appeal after the window is refused, naming the deadline.
    let appeal = |id: &str, at: &str| {
        append(
            "s1",
            vec![ev(
                &format!("appeal-{id}-{}", &at[..10]),
                at,
                "8030",
                Kind::ViolationAppealed(pb::ViolationAppealed {
                    judgement_id: id.into(),
                    reason: "客户未提及".into(),
                }),
            )],
        )
    };
    let e = c
        .append(appeal("j7", "2020-12-08T18:00:01+08:00"))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition);
    assert!(
        e.message().contains("appeal_window_closed") && e.message().contains("2020-12-08 18:00:00"),
        "{}",
        e.message()
    );
    // In time, and upheld for the agent: the judgement no longer counts.
    c.append(appeal("j7", "2020-12-08T17:00:00+08:00"))
        .await
        .unwrap();
    c.append(append(
        "s1",
        vec![ev(
            "decide-j7",
            "2020-12-09T10:00:00+08:00",
            "qa",
            Kind::AppealDecided(pb::AppealDecided {
                judgement_id: "j7".into(),
                upheld: false,
                reason: "录音证明已回复".into(),
            }),
        )],
    ))
    .await
    .unwrap();
    let card = scorecard(&server, "2020-12").await;
    assert_eq!(
        (card.level3_records, card.highest_level, card.freeze_months),
        (0, 2, 1)
    );
    assert_eq!(card.overturned.len(), 1);

    // A complaint lacking elements is refused with the missing ones named.
    let mut bad = judged("j-bad", 6, "2020-12-10T10:00:00+08:00");
    if let Some(Kind::ViolationJudged(j)) = bad.event.as_mut().and_then(|e| e.kind.as_mut()) {
        let el = j.elements.as_mut().unwrap();
        el.evidence.clear();
        el.complainant.clear();
    }
    let e = c.append(append("s1", vec![bad])).await.unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    let fields: Vec<String> = details(&e)
        .bad_request()
        .unwrap()
        .field_violations
        .iter()
        .map(|v| v.field.clone())
        .collect();
    assert!(
        fields.iter().any(|f| f.ends_with("elements.evidence")),
        "{fields:?}"
    );
    assert!(
        fields.iter().any(|f| f.ends_with("elements.complainant")),
        "{fields:?}"
    );
    let e = server
        .policies()
        .await
        .get_scorecard(pb::GetScorecardRequest {
            agent_id: "8030".into(),
            month: "2020-13".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
}

#[tokio::test]
async fn customer_history_and_outside_complaint_deadlines() {
    let server = TestServer::start().await;
    let mut c = server.ledger().await;
    for case in ["h1", "h2"] {
        c.append(append(
            case,
            vec![
                ev(
                    &format!("{case}-open"),
                    "2020-12-03T10:00:00+08:00",
                    "8030",
                    opened("repeat-customer"),
                ),
                contact(
                    &format!("{case}-c1"),
                    "2020-12-03T10:00:00+08:00",
                    Channel::Hotline,
                ),
            ],
        ))
        .await
        .unwrap();
    }
    // A regulator's letter on h2 (Thursday 12-03): answer within 7 working
    // days (Article 14 default), settle within 45.
    c.append(append(
        "h2",
        vec![ev(
            "h2-letter",
            "2020-12-03T11:00:00+08:00",
            "8001",
            Kind::ExternalComplaintReceived(pb::ExternalComplaintReceived {
                body: pb::OutsideBody::MarketRegulator as i32,
                reference_number: "12315-2020-0001".into(),
                summary: "用户投诉自动订阅".into(),
                ..Default::default()
            }),
        )],
    ))
    .await
    .unwrap();
    c.append(append(
        "h1",
        vec![ev(
            "h1-resolved",
            "2020-12-05T10:00:00+08:00",
            "8030",
            Kind::CaseResolved(pb::CaseResolved {
                resolution: "退还书币".into(),
                customer_accepted: true,
            }),
        )],
    ))
    .await
    .unwrap();
    // Answering an unknown reference is refused.
    let e = c
        .append(append(
            "h2",
            vec![ev(
                "h2-answer-x",
                "2020-12-10T10:00:00+08:00",
                "8001",
                Kind::ExternalComplaintAnswered(pb::ExternalComplaintAnswered {
                    reference_number: "nope".into(),
                    answer: "x".into(),
                    resolved: false,
                }),
            )],
        ))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition);
    c.append(append(
        "h2",
        vec![ev(
            "h2-answer",
            "2020-12-14T10:00:00+08:00",
            "8001",
            Kind::ExternalComplaintAnswered(pb::ExternalComplaintAnswered {
                reference_number: "12315-2020-0001".into(),
                answer: "已与用户协商".into(),
                resolved: false,
            }),
        )],
    ))
    .await
    .unwrap();

    let v = server
        .cases()
        .await
        .get_case(pb::GetCaseRequest {
            case_id: "h2".into(),
            evaluate_at: Some(ts("2020-12-20T10:00:00+08:00")),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let x = &v.external_complaint_deadlines[0];
    let letter = x.complaint.as_ref().unwrap();
    assert_eq!(
        complaint_ledger::time::format_local(letter.respond_by.as_ref().unwrap(), 480),
        "2020-12-14 18:00:00 +08:00"
    );
    assert_eq!(letter.deadline_calendar, "cn-mainland@2026.1");
    assert_eq!(x.respond_state, pb::DeadlineState::Met as i32);
    assert_eq!(x.resolve_state, pb::DeadlineState::Pending as i32);

    let h = server
        .policies()
        .await
        .get_customer_history(pb::GetCustomerHistoryRequest {
            customer_id: "repeat-customer".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(h.cases.len(), 2);
    assert_eq!((h.contacts, h.external_complaints), (2, 1));
    assert!(h.cases[0].resolved && h.cases[0].resolution_accepted);
    assert_eq!(h.cases[1].external_complaints, 1);
    let e = server
        .policies()
        .await
        .get_customer_history(pb::GetCustomerHistoryRequest {
            customer_id: "nobody".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound);
}
