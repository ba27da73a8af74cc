//! An online shop's refund complaint, told through the API: the customer
//! is classified dissatisfied, a ticket goes to the payments team, and on
//! Thursday an agent tries the KF-006 follow-up callback naming only the
//! dissatisfied contact. The procedure says never call back before the
//! second line's result: the callback is refused whatever it names, and
//! the item stays in the callback queue, held, with the ticket to chase.
//! Once the result is given, the same callback goes through and leaves the
//! queue.

use crate::common::kf006::{contact, dissatisfied, queue};
use crate::common::*;
use complaint_ledger::proto::v1::{self as pb, case_event::Kind, Channel, DissatisfactionFactor};
use tonic::Code;

fn follow_up(event_id: &str, at: &str, ticket: &str) -> pb::ProposedEvent {
    ev(
        event_id,
        at,
        "6120",
        Kind::CallbackCompleted(pb::CallbackCompleted {
            callback_id: "fu-1".into(),
            channel: Channel::OutboundCall as i32,
            reached: true,
            customer_response: pb::CustomerResponse::Accepted as i32,
            dissatisfied_contact_id: "shop-c1".into(),
            ticket_id: ticket.into(),
            resolved: true,
            ..Default::default()
        }),
    )
}

#[tokio::test]
async fn a_follow_up_callback_waits_for_the_second_lines_result_whatever_it_names() {
    let server = TestServer::start().await;
    let mut c = server.ledger().await;
    c.append(append(
        "shop-1",
        vec![
            ev(
                "shop-1-open",
                "2026-06-02T14:00:00+08:00",
                "6120",
                opened("cust-shop"),
            ),
            contact("shop-c1", "2026-06-02T14:00:00+08:00", Channel::Hotline),
            dissatisfied(
                "shop-c1",
                "2026-06-02T14:20:00+08:00",
                DissatisfactionFactor::RejectionDelay,
            ),
            ev(
                "shop-1-t1",
                "2026-06-02T14:25:00+08:00",
                "6120",
                Kind::TicketSubmitted(pb::TicketSubmitted {
                    ticket_id: "refund-77".into(),
                    content: "refund not received after return".into(),
                    ..Default::default()
                }),
            ),
        ],
    ))
    .await
    .unwrap();

    // Thursday of the next week: the follow-up is in the callback queue,
    // held, with the ticket to chase.
    let q = queue(&server, pb::QueueKind::Callback, "2026-06-11")
        .await
        .unwrap();
    let item = q.items.iter().find(|i| i.case_id == "shop-1").unwrap();
    assert!(item.held);
    assert_eq!(item.chase_tickets, ["refund-77"]);

    // Naming only the dissatisfied contact does not get around the hold,
    // nor does naming the ticket.
    for (id, ticket) in [("shop-1-fu-a", ""), ("shop-1-fu-b", "refund-77")] {
        let e = c
            .append(append(
                "shop-1",
                vec![follow_up(id, "2026-06-11T10:00:00+08:00", ticket)],
            ))
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::FailedPrecondition);
        let d = details(&e);
        assert_eq!(d.error_info().unwrap().reason, "TICKET_HAS_NO_RESULT");
        assert!(e.message().contains("refund-77"), "{}", e.message());
    }
    // Refused, so nothing changed: the item is still there, still held.
    let q = queue(&server, pb::QueueKind::Callback, "2026-06-11")
        .await
        .unwrap();
    assert!(q.items.iter().any(|i| i.case_id == "shop-1" && i.held));

    // The payments team answers; the follow-up goes through and leaves the queue.
    c.append(append(
        "shop-1",
        vec![ev(
            "shop-1-result",
            "2026-06-11T11:00:00+08:00",
            "",
            Kind::TicketResultGiven(pb::TicketResultGiven {
                ticket_id: "refund-77".into(),
                result: "refund re-sent to the original card".into(),
                finality: pb::ResultFinality::Final as i32,
                ..Default::default()
            }),
        )],
    ))
    .await
    .unwrap();
    c.append(append(
        "shop-1",
        vec![follow_up("shop-1-fu", "2026-06-11T16:00:00+08:00", "")],
    ))
    .await
    .unwrap();
    let q = queue(&server, pb::QueueKind::Callback, "2026-06-12")
        .await
        .unwrap();
    assert!(
        q.items.iter().all(|i| i.case_id != "shop-1"),
        "{:?}",
        q.items
    );
}
