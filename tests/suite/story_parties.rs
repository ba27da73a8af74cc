//! A complaint about a mobile game's banned account, told through the API.
//! Agent 8030 takes the call and owns the case. Before she calls back, a
//! volunteer moderator of the game's forum messages the customer, and a
//! back-office clerk calls the number printed on the regulator's letter
//! the customer had written to — neither coordinating with her. Then the
//! case is handed to the back office, whose clerk calls again.
//!
//! Contacts by people who are not agents were recorded under `agent_id`
//! before: they counted as agents in per-agent figures, and nothing showed
//! that the customer heard from three people who did not know of each
//! other — a known cause of complaints about complaints.

use crate::common::*;
use complaint_ledger::proto::v1::{self as pb, case_event::Kind, Channel, PartyKind};

const CASE: &str = "gm-1";

fn contact(
    id: &str,
    at: &str,
    direction: pb::Direction,
    channel: Channel,
    agent_id: &str,
    by: Option<pb::Party>,
) -> pb::ProposedEvent {
    ev(
        &format!("gm-{id}"),
        at,
        agent_id,
        Kind::ContactLogged(pb::ContactLogged {
            contact_id: id.into(),
            channel: channel as i32,
            direction: direction as i32,
            agent_id: agent_id.into(),
            started_at: Some(ts(at)),
            duration_seconds: 300,
            party: by,
            ..Default::default()
        }),
    )
}

fn owner(id: &str, at: &str, who: Option<pb::Party>) -> pb::ProposedEvent {
    ev(
        id,
        at,
        "",
        Kind::OwnerAssigned(pb::OwnerAssigned {
            owner: who,
            reason: "case owner".into(),
        }),
    )
}

#[tokio::test]
async fn contacts_by_others_than_the_owner_are_uncoordinated() {
    let server = TestServer::start_with_policy().await;
    let mut c = server.ledger().await;
    use pb::Direction::{Inbound, Outbound};
    c.append(append(
        CASE,
        vec![
            ev(
                "gm-open",
                "2025-09-01T10:00:00+08:00",
                "8030",
                Kind::CaseOpened(pb::CaseOpened {
                    customer_id: "cust-gm".into(),
                    business_line: "games".into(),
                    category: "账号/封禁".into(),
                    ..Default::default()
                }),
            ),
            contact(
                "c1",
                "2025-09-01T10:00:00+08:00",
                Inbound,
                Channel::Hotline,
                "8030",
                None,
            ),
            owner(
                "gm-own-1",
                "2025-09-01T10:05:00+08:00",
                party(PartyKind::Agent, "8030"),
            ),
            // The forum's volunteer moderator messages the customer.
            contact(
                "c2",
                "2025-09-01T13:00:00+08:00",
                Outbound,
                Channel::OnlineChat,
                "",
                party(PartyKind::Volunteer, "mod-7"),
            ),
            // A clerk calls the number on the regulator's letter.
            contact(
                "c3",
                "2025-09-02T09:30:00+08:00",
                Outbound,
                Channel::OutboundCall,
                "",
                party(PartyKind::BackOffice, "bo-12"),
            ),
            // The owner calls back: coordinated.
            contact(
                "c4",
                "2025-09-02T15:00:00+08:00",
                Outbound,
                Channel::OutboundCall,
                "8030",
                None,
            ),
            // Handed to the back office; its clerk calls again.
            owner(
                "gm-own-2",
                "2025-09-03T09:00:00+08:00",
                party(PartyKind::BackOffice, "bo-12"),
            ),
            contact(
                "c5",
                "2025-09-03T10:00:00+08:00",
                Outbound,
                Channel::OutboundCall,
                "",
                party(PartyKind::BackOffice, "bo-12"),
            ),
        ],
    ))
    .await
    .unwrap();

    let v = get_case(&server, CASE, None).await;
    let uncoordinated: Vec<(&str, bool)> = v
        .contacts
        .iter()
        .map(|x| {
            (
                x.contact.as_ref().unwrap().contact_id.as_str(),
                x.uncoordinated,
            )
        })
        .collect();
    assert_eq!(
        uncoordinated,
        [
            ("c1", false),
            ("c2", true),
            ("c3", true),
            ("c4", false),
            ("c5", false)
        ]
    );
    assert_eq!(v.contacts[1].party, party(PartyKind::Volunteer, "mod-7"));
    assert_eq!(v.contacts[3].party, party(PartyKind::Agent, "8030"));
    assert_eq!(v.owner, party(PartyKind::BackOffice, "bo-12"));
    // Only the agent counts as an agent.
    assert_eq!(
        v.contacts_by_agent,
        [pb::CountByKey {
            key: "8030".into(),
            count: 2
        }]
    );
    let mut cases = server.cases().await;
    for (agent, found) in [("8030", 1), ("mod-7", 0), ("bo-12", 0)] {
        let page = cases
            .list_cases(pb::ListCasesRequest {
                agent_id: agent.into(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(page.cases.len(), found, "cases of agent {agent}");
    }

    // The policy's uncoordinated_contact rule warns of each.
    let events = wait_for_event(&server, CASE, |e| {
        e.event_type == "WarningRaised" && e.causation_id == "gm-c3"
    })
    .await;
    let warnings: Vec<(String, String)> = events
        .iter()
        .filter_map(|e| match e.event.as_ref()?.kind.as_ref()? {
            Kind::WarningRaised(w) => Some((w.rule.clone(), w.reason.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(
        warnings,
        [
            (
                "uncoordinated_contact".to_string(),
                "c2 by volunteer mod-7, while agent 8030 owns the case: not coordinated with the owner"
                    .to_string()
            ),
            (
                "uncoordinated_contact".to_string(),
                "c3 by back_office bo-12, while agent 8030 owns the case: not coordinated with the owner"
                    .to_string()
            ),
        ]
    );

    // The moderator's chat left the customer dissatisfied: KF-006 surveys
    // it the next week, naming the moderator, not an agent.
    c.append(append(
        CASE,
        vec![kf006::dissatisfied(
            "c2",
            "2025-09-01T14:00:00+08:00",
            pb::DissatisfactionFactor::Attitude,
        )],
    ))
    .await
    .unwrap();
    let q = kf006::queue(&server, pb::QueueKind::Survey, "2025-09-08")
        .await
        .unwrap();
    assert_eq!(q.items.len(), 1, "{q:?}");
    assert_eq!(q.items[0].contact_id, "c2");
    assert_eq!(q.items[0].agent_id, "");
    assert_eq!(q.items[0].party, party(PartyKind::Volunteer, "mod-7"));
}
