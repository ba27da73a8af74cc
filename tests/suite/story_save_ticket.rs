//! An insurance claim complaint, told through the API: the agent saves the
//! complaint's ticket at once; days later a second ticket (a request to the
//! claims archive) is rejected for a missing policy number. Saving the
//! ticket (及时保存工单) is about the first ticket: it was saved at once,
//! and the later ticket's rejection neither moves nor restarts that clock.
//! A first ticket that is rejected keeps the clock running until it is
//! appended to.

use crate::common::*;
use complaint_ledger::proto::v1::{self as pb, case_event::Kind, TimelyDuty};

fn submitted(event_id: &str, at: &str, ticket: &str) -> pb::ProposedEvent {
    ev(
        event_id,
        at,
        "5301",
        Kind::TicketSubmitted(pb::TicketSubmitted {
            ticket_id: ticket.into(),
            content: "claim 88-1205 disputed: repair invoice not reimbursed".into(),
            ..Default::default()
        }),
    )
}

fn rejected(event_id: &str, at: &str, ticket: &str) -> pb::ProposedEvent {
    ev(
        event_id,
        at,
        "",
        Kind::TicketRejected(pb::TicketRejected {
            ticket_id: ticket.into(),
            reason: "policy number missing".into(),
            ..Default::default()
        }),
    )
}

async fn save_clock(server: &TestServer, case_id: &str) -> pb::DutyClock {
    server
        .cases()
        .await
        .get_case(pb::GetCaseRequest {
            case_id: case_id.into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .timely_duties
        .into_iter()
        .find(|d| d.duty() == TimelyDuty::SaveTicket)
        .expect("a save-ticket clock once a ticket exists")
}

#[tokio::test]
async fn saving_the_ticket_is_about_the_first_ticket() {
    let server = TestServer::start().await;
    let mut c = server.ledger().await;
    open_case(&mut c, "ins-1", "cust-ins").await;
    c.append(append(
        "ins-1",
        vec![submitted(
            "ins-1-t1",
            "2026-04-07T10:00:00+08:00",
            "claim-t1",
        )],
    ))
    .await
    .unwrap();
    let first = save_clock(&server, "ins-1").await;
    assert_eq!(first.ended_by_event_id, "ins-1-t1", "saved at once");
    assert_eq!(first.working_time.unwrap_or_default().seconds, 0);

    // Days later, a second ticket, rejected: other work.
    c.append(append(
        "ins-1",
        vec![
            submitted("ins-1-t2", "2026-04-10T15:00:00+08:00", "archive-t2"),
            rejected("ins-1-t2-rej", "2026-04-13T09:30:00+08:00", "archive-t2"),
        ],
    ))
    .await
    .unwrap();
    let after = save_clock(&server, "ins-1").await;
    assert_eq!(after.ended_by_event_id, "ins-1-t1", "{after:?}");
    assert_eq!(after.ended_at, first.ended_at);
    assert_eq!(after.working_time.unwrap_or_default().seconds, 0);

    // Another case: its first ticket is rejected, so the clock runs until the
    // ticket is appended to.
    open_case(&mut c, "ins-2", "cust-ins2").await;
    c.append(append(
        "ins-2",
        vec![
            submitted("ins-2-t1", "2026-04-07T10:00:00+08:00", "claim-t1"),
            rejected("ins-2-t1-rej", "2026-04-07T11:00:00+08:00", "claim-t1"),
        ],
    ))
    .await
    .unwrap();
    let running = save_clock(&server, "ins-2").await;
    assert!(running.ended_at.is_none(), "{running:?}");
    c.append(append(
        "ins-2",
        vec![ev(
            "ins-2-t1-add",
            "2026-04-07T14:00:00+08:00",
            "5301",
            Kind::TicketAppended(pb::TicketAppended {
                ticket_id: "claim-t1".into(),
                addition: "policy number PN-20331".into(),
                ..Default::default()
            }),
        )],
    ))
    .await
    .unwrap();
    let saved = save_clock(&server, "ins-2").await;
    assert_eq!(saved.ended_by_event_id, "ins-2-t1-add");
    // 10:00 to 14:00 on a working Tuesday, lunch excluded by the calendar
    // or not: more than zero, at most four hours.
    let worked = saved.working_time.unwrap().seconds;
    assert!(worked > 0 && worked <= 4 * 3600, "{worked}");
}
