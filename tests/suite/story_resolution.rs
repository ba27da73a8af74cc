//! A broadband customer's slow-line complaint, told through the API as a
//! client service would: the first resolution (a bill credit) is refused by
//! the customer, the case is closed anyway; a second customer accepts a
//! technician visit. The case view says how each was resolved and whether
//! the customer accepted, the timeline says it too, and "closed without the
//! customer accepting" is a list the supervisor can ask for. A reopen sets
//! the resolution aside; a correction of a resolution changes what counts.

use crate::common::*;
use complaint_ledger::proto::v1::{self as pb, case_event::Kind};

fn resolved(text: &str, accepted: bool) -> Kind {
    Kind::CaseResolved(pb::CaseResolved {
        resolution: text.into(),
        customer_accepted: accepted,
    })
}

fn closed(reason: &str) -> Kind {
    Kind::CaseClosed(pb::CaseClosed {
        reason: reason.into(),
    })
}

async fn list_without_acceptance(server: &TestServer) -> Vec<String> {
    server
        .cases()
        .await
        .list_cases(pb::ListCasesRequest {
            only_closed_without_acceptance: true,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .cases
        .into_iter()
        .map(|c| c.case_id)
        .collect()
}

async fn view(server: &TestServer, case_id: &str) -> pb::CaseView {
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
}

// Two workers: the replay command at the end blocks one while the server
// answers on the other.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn how_a_case_was_resolved_and_whether_the_customer_accepted_it() {
    let server = TestServer::start().await;
    let mut c = server.ledger().await;

    // Slow line: a credit offered, refused by the customer; closed anyway.
    open_case(&mut c, "bb-1", "cust-bb1").await;
    c.append(append(
        "bb-1",
        vec![
            ev(
                "bb-1-r1",
                "2026-03-02T10:00:00+08:00",
                "7001",
                resolved("one month's fee credited", false),
            ),
            ev(
                "bb-1-close",
                "2026-03-02T10:05:00+08:00",
                "7001",
                closed("customer unreachable after the offer"),
            ),
        ],
    ))
    .await
    .unwrap();
    // Same complaint, another customer: a technician visit, accepted.
    open_case(&mut c, "bb-2", "cust-bb2").await;
    c.append(append(
        "bb-2",
        vec![
            ev(
                "bb-2-r1",
                "2026-03-03T15:00:00+08:00",
                "7002",
                resolved("technician replaced the modem", true),
            ),
            ev(
                "bb-2-close",
                "2026-03-03T15:10:00+08:00",
                "7002",
                closed("fixed"),
            ),
        ],
    ))
    .await
    .unwrap();
    // A third is closed with no resolution at all.
    open_case(&mut c, "bb-3", "cust-bb3").await;
    c.append(append(
        "bb-3",
        vec![ev(
            "bb-3-close",
            "2026-03-04T09:00:00+08:00",
            "7003",
            closed("duplicate of bb-1"),
        )],
    ))
    .await
    .unwrap();

    // GetCase says how it was resolved and that the customer did not accept.
    let v = view(&server, "bb-1").await;
    assert_eq!(v.resolutions.len(), 1);
    let r = &v.resolutions[0];
    assert_eq!(r.event_id, "bb-1-r1");
    assert_eq!(r.resolution, "one month's fee credited");
    assert!(!r.customer_accepted && r.accepted_at.is_none() && !r.superseded);
    assert_eq!(r.acted_for_agent, "7001");
    let v2 = view(&server, "bb-2").await;
    assert!(v2.resolutions[0].customer_accepted);
    assert_eq!(v2.resolutions[0].accepted_at, v2.resolutions[0].resolved_at);

    // The summaries carry the acceptance; the list of closed cases the
    // customer did not accept has bb-1 and bb-3, not bb-2.
    let summaries = server
        .cases()
        .await
        .list_cases(pb::ListCasesRequest::default())
        .await
        .unwrap()
        .into_inner()
        .cases;
    let acceptance = |id: &str| {
        summaries
            .iter()
            .find(|s| s.case_id == id)
            .unwrap()
            .acceptance()
    };
    assert_eq!(acceptance("bb-1"), pb::Acceptance::NotAccepted);
    assert_eq!(acceptance("bb-2"), pb::Acceptance::Accepted);
    assert_eq!(acceptance("bb-3"), pb::Acceptance::Unspecified);
    assert_eq!(list_without_acceptance(&server).await, ["bb-1", "bb-3"]);

    // The customer calls again: reopened, the resolution is set aside and
    // the case is no longer in the list (it is not closed).
    c.append(append(
        "bb-1",
        vec![ev(
            "bb-1-reopen",
            "2026-03-05T09:00:00+08:00",
            "7001",
            Kind::CaseReopened(pb::CaseReopened {
                reason: "customer called again".into(),
            }),
        )],
    ))
    .await
    .unwrap();
    let v = view(&server, "bb-1").await;
    assert!(v.resolutions[0].superseded);
    assert_eq!(list_without_acceptance(&server).await, ["bb-3"]);

    // Resolved again, accepted this time, and closed.
    c.append(append(
        "bb-1",
        vec![
            ev(
                "bb-1-r2",
                "2026-03-06T11:00:00+08:00",
                "7001",
                resolved("line re-provisioned at the exchange", true),
            ),
            ev(
                "bb-1-close2",
                "2026-03-06T11:05:00+08:00",
                "7001",
                closed("fixed"),
            ),
        ],
    ))
    .await
    .unwrap();
    let v = view(&server, "bb-1").await;
    assert_eq!(v.resolutions.len(), 2);
    assert!(v.resolutions[0].superseded && !v.resolutions[1].superseded);
    assert!(v.resolutions[1].customer_accepted);
    assert_eq!(list_without_acceptance(&server).await, ["bb-3"]);

    // It turns out the customer had not accepted: corrected, never edited.
    c.append(append(
        "bb-1",
        vec![ev(
            "bb-1-fix",
            "2026-03-06T12:00:00+08:00",
            "7001",
            Kind::EventCorrected(Box::new(pb::EventCorrected {
                corrected_event_id: "bb-1-r2".into(),
                reason: "acceptance was recorded by mistake".into(),
                replacement: Some(Box::new(pb::CaseEvent {
                    kind: Some(resolved("line re-provisioned at the exchange", false)),
                })),
            })),
        )],
    ))
    .await
    .unwrap();
    let v = view(&server, "bb-1").await;
    let r2 = &v.resolutions[1];
    assert!(!r2.customer_accepted, "the correction's replacement counts");
    assert_eq!(r2.corrections.len(), 1, "the correction is shown beside it");
    assert!(v.other_corrections.is_empty());
    assert_eq!(list_without_acceptance(&server).await, ["bb-1", "bb-3"]);

    // As the case stood before the reopen: one resolution, not accepted.
    let then = server
        .cases()
        .await
        .get_case(pb::GetCaseRequest {
            case_id: "bb-1".into(),
            as_of: Some(pb::get_case_request::AsOf::Version(3)),
            evaluate_at: None,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(then.resolutions.len(), 1);
    assert!(!then.resolutions[0].superseded);

    // The timeline says whether the customer accepted.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_complaint-ledger"))
        .args(["replay", "--case", "bb-2", "--server", &server.url()])
        .output()
        .unwrap();
    let timeline = String::from_utf8_lossy(&out.stdout);
    assert!(
        timeline.contains("resolved (customer accepted): technician replaced the modem"),
        "{timeline}"
    );
}
