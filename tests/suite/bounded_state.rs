//! State the server keeps in memory is bounded by its configured caches:
//! what a cache dropped is folded again from the log, and decides exactly
//! as what it kept.

use crate::common::*;
use complaint_ledger::proto::v1::{self as pb, case_event::Kind};
use tonic::Code;

fn contact(case: &str, id: &str) -> pb::ProposedEvent {
    ev(
        &format!("{case}-{id}"),
        "2020-12-03T01:30:00+08:00",
        "8030",
        Kind::ContactLogged(pb::ContactLogged {
            contact_id: id.into(),
            channel: pb::Channel::Hotline as i32,
            direction: pb::Direction::Inbound as i32,
            started_at: Some(ts("2020-12-03T01:30:00+08:00")),
            ..Default::default()
        }),
    )
}

async fn stats(server: &TestServer) -> pb::Stats {
    stats_at(server.url()).await
}

#[tokio::test]
async fn a_case_state_the_cache_dropped_decides_as_one_it_kept() {
    let mut server = TestServer::start_with(|c| c.ledger.case_cache = 2).await;
    let mut c = server.ledger().await;
    let cases: Vec<String> = (0..6).map(|i| format!("cached-{i}")).collect();
    for case in &cases {
        open_case(&mut c, case, &format!("u-{case}")).await;
        c.append(append(case, vec![contact(case, "c1")]))
            .await
            .expect("contact");
    }
    let s = stats(&server).await;
    assert!(s.case_states_cached <= 2, "{s:?}");
    for round in 0..2u64 {
        for case in &cases {
            let mut version = 2 + 2 * round;
            // Its version: a stale writer is told the actual one.
            let mut stale = append(
                case,
                vec![ev(
                    &format!("{case}-stale{round}"),
                    "2020-12-03T02:00:00+08:00",
                    "8030",
                    note("stale"),
                )],
            );
            stale.expected_version = expect_exact(version - 1);
            let err = c.append(stale).await.unwrap_err();
            assert_eq!(err.code(), Code::Aborted, "{case}: {err:?}");
            let info = details(&err).error_info().cloned().unwrap();
            assert_eq!(info.metadata["actual_version"], version.to_string());
            // Its contacts: a new one is taken, the same one twice is not.
            let mut fresh = contact(case, &format!("c{round}-new"));
            fresh.event_id = format!("{case}-new{round}");
            c.append(append(case, vec![fresh]))
                .await
                .expect("a new contact is taken");
            version += 1;
            let mut again = contact(case, "c1");
            again.event_id = format!("{case}-dup{round}");
            let err = c.append(append(case, vec![again])).await.unwrap_err();
            assert_eq!(err.code(), Code::FailedPrecondition, "{case}: {err:?}");
            assert_eq!(
                details(&err).error_info().unwrap().reason,
                "CONTACT_ALREADY_LOGGED"
            );
            // And the hash chain it continues, at its version.
            let mut next = append(
                case,
                vec![ev(
                    &format!("{case}-r{round}"),
                    "2020-12-03T02:00:00+08:00",
                    "8030",
                    note("in order"),
                )],
            );
            next.expected_version = expect_exact(version);
            let ok = c.append(next).await.expect("appends at its version");
            assert_eq!(ok.into_inner().case_version, version + 1);
        }
    }
    let s = stats(&server).await;
    assert!(s.case_states_cached <= 2, "{s:?}");
    assert!(
        s.case_state_loads >= 6,
        "six cases through a cache of two fold from the log: {s:?}"
    );
    // A start that verifies every record checks each case's chain: the
    // records appended to reloaded cases chain to their predecessors.
    server
        .restart_with(|c| c.ledger.verify_all_at_start = true)
        .await;
    let mut c = server.ledger().await;
    for case in &cases {
        assert_eq!(read_case(&mut c, case).await.len(), 6, "{case}");
    }
}

/// Six cases, each with a promise and a contact, appended the same way to
/// a server.
async fn six_cases_with_promises(server: &TestServer) {
    let mut c = server.ledger().await;
    for i in 0..6 {
        let case = format!("board-{i}");
        open_case(&mut c, &case, &format!("u-{}", i % 3)).await;
        let promise = ev(
            &format!("{case}-p"),
            "2020-12-03T02:00:00+08:00",
            "8030",
            Kind::PromiseMade(pb::PromiseMade {
                promise_id: "p1".into(),
                description: "专员1-2个工作日回复".into(),
                due_at: Some(ts(&format!("2020-12-0{}T23:59:59+08:00", 4 + i % 3))),
                ..Default::default()
            }),
        );
        c.append(append(&case, vec![contact(&case, "c1"), promise]))
            .await
            .expect("contact and promise");
    }
}

/// What the policy board answers about them, judged at one moment.
async fn board_answers(server: &TestServer) -> Vec<String> {
    let mut p = server.policies().await;
    let at = Some(ts("2020-12-05T12:00:00+08:00"));
    let mut out = Vec::new();
    let promises = p
        .list_promises(pb::ListPromisesRequest {
            evaluate_at: at,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    out.push(format!("{:?}", promises.promises));
    for u in 0..3 {
        let h = p
            .get_customer_history(pb::GetCustomerHistoryRequest {
                customer_id: format!("u-{u}"),
                evaluate_at: at,
            })
            .await
            .unwrap()
            .into_inner();
        out.push(format!("{h:?}"));
    }
    out
}

#[tokio::test]
async fn the_board_answers_from_a_small_cache_as_from_a_large_one() {
    let large = TestServer::start().await;
    six_cases_with_promises(&large).await;
    let expected = board_answers(&large).await;
    assert!(expected[0].contains("board-5"), "{}", expected[0]);

    let mut small = TestServer::start_with(|c| {
        c.ledger.case_cache = 2;
        c.ledger.board_cache = 2;
    })
    .await;
    six_cases_with_promises(&small).await;
    assert_eq!(board_answers(&small).await, expected);
    let s = stats(&small).await;
    assert!(s.case_facts_cached <= 2, "{s:?}");
    assert!(
        s.case_fact_loads >= 4,
        "six cases' facts through a cache of two are folded from the log: {s:?}"
    );
    assert_eq!(s.board_position, s.head_position, "{s:?}");

    // A restart starts from the board on disk: the same answers.
    small.restart().await;
    assert_eq!(board_answers(&small).await, expected);
    let s = stats(&small).await;
    assert_eq!(s.board_position, s.head_position, "{s:?}");
}

#[tokio::test]
async fn closed_cases_leave_the_board_cache_and_answer_when_asked() {
    let server = TestServer::start().await;
    six_cases_with_promises(&server).await;
    let expected = board_answers(&server).await;
    let mut c = server.ledger().await;
    for i in 0..4 {
        let case = format!("board-{i}");
        let close = close_or_reopen(&case, "close", "2020-12-04T02:00:00+08:00");
        c.append(append(&case, vec![close])).await.expect("close");
    }
    let s = stats(&server).await;
    assert_eq!(s.board_position, s.head_position, "{s:?}");
    assert_eq!(
        s.case_facts_cached, 2,
        "the four closed cases' facts are not kept: {s:?}"
    );

    // Asked about, a closed case is folded from the log: its promises
    // are still listed, and the customers' histories name it closed.
    let after = board_answers(&server).await;
    assert_eq!(after[0], expected[0], "the promises, closed cases' too");
    for (a, e) in after[1..].iter().zip(&expected[1..]) {
        assert_ne!(a, e, "a customer's history shows the close");
        assert!(a.contains("board-"), "{a}");
    }
    let s = stats(&server).await;
    assert!(s.case_fact_loads >= 4, "{s:?}");
}
