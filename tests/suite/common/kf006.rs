//! KF-006 helpers shared by the queue tests and the stories: a logged
//! contact, its classification as dissatisfied, and a queue read.

use super::*;
use complaint_ledger::proto::v1::{self as pb, case_event::Kind, Channel, DissatisfactionFactor};

pub fn contact(id: &str, at: &str, channel: Channel) -> pb::ProposedEvent {
    ev(
        &format!("{id}-logged"),
        at,
        "8030",
        Kind::ContactLogged(pb::ContactLogged {
            contact_id: id.into(),
            channel: channel as i32,
            direction: pb::Direction::Inbound as i32,
            agent_id: "8030".into(),
            started_at: Some(ts(at)),
            summary: "来电".into(),
            ..Default::default()
        }),
    )
}

pub fn dissatisfied(contact: &str, at: &str, factor: DissatisfactionFactor) -> pb::ProposedEvent {
    ev(
        &format!("{contact}-dissatisfied"),
        at,
        "8030",
        Kind::DissatisfactionClassified(pb::DissatisfactionClassified {
            contact_id: contact.into(),
            needs_survey: true,
            needs_callback: true,
            factor: factor as i32,
        }),
    )
}

pub async fn queue(
    server: &TestServer,
    kind: pb::QueueKind,
    date: &str,
) -> Result<pb::GetQueueResponse, tonic::Status> {
    server
        .policies()
        .await
        .get_queue(pb::GetQueueRequest {
            kind: kind as i32,
            date: date.into(),
            ..Default::default()
        })
        .await
        .map(|r| r.into_inner())
}
