//! The acceptance story: the auto-subscription complaint of case 124545
//! (seed 000), replayed end to end through the real gRPC API, and the
//! projection showing what the incident report found by hand.

use crate::common::seed_000::*;
use crate::common::*;
use complaint_ledger::proto::v1::{
    self as pb, case_event::Kind, BreachReason, Channel, PromiseState,
};

async fn replay_story(server: &TestServer) -> u64 {
    let mut client = server.ledger().await;
    let mut version = 0;
    for (i, e) in story().into_iter().enumerate() {
        let expected = if i == 0 {
            expect_no_case()
        } else {
            expect_exact(version)
        };
        let r = client
            .append(pb::AppendRequest {
                case_id: CASE.into(),
                expected_version: expected,
                events: vec![e],
            })
            .await
            .unwrap_or_else(|s| panic!("event {i} refused: {s:?}"))
            .into_inner();
        assert_eq!(r.case_version, version + 1);
        version = r.case_version;
    }
    version
}

async fn view(
    server: &TestServer,
    evaluate_at: Option<&str>,
    version: Option<u64>,
) -> pb::CaseView {
    server
        .cases()
        .await
        .get_case(pb::GetCaseRequest {
            case_id: CASE.into(),
            as_of: version.map(pb::get_case_request::AsOf::Version),
            evaluate_at: evaluate_at.map(ts),
        })
        .await
        .expect("get case")
        .into_inner()
}

#[tokio::test]
async fn the_auto_subscription_case_shows_what_the_incident_report_found() {
    let server = TestServer::start().await;
    let version = replay_story(&server).await;
    assert_eq!(version, story().len() as u64);

    // Read back: every event, gapless, hash-chained.
    let events = read_case(&mut server.ledger().await, CASE).await;
    assert_eq!(events.len() as u64, version);
    for (i, e) in events.iter().enumerate() {
        assert_eq!(e.case_version, i as u64 + 1);
        let prev = if i == 0 {
            vec![0u8; 32]
        } else {
            events[i - 1].record_hash.clone()
        };
        assert_eq!(e.prev_hash, prev, "chain at version {}", e.case_version);
    }

    let v = view(&server, None, None).await;
    assert_eq!(v.status, pb::CaseStatus::Open as i32);
    assert_eq!(v.customer_id, "cust-5c1e9a");
    assert_eq!(v.disputed_items.len(), 2);

    // Eleven contacts with their real times and agents.
    let contacts: Vec<(String, String)> = v
        .contacts
        .iter()
        .map(|c| {
            let c = c.contact.as_ref().unwrap();
            (
                complaint_ledger::time::format_local(c.started_at.as_ref().unwrap(), 480),
                c.agent_id.clone(),
            )
        })
        .collect();
    let expected = [
        ("2020-12-03 01:24:30 +08:00", "8030"),
        ("2020-12-03 01:49:53 +08:00", "8030"),
        ("2020-12-03 01:51:29 +08:00", "8030"),
        ("2020-12-03 21:10:02 +08:00", "8016"),
        ("2020-12-08 21:29:00 +08:00", "8021"),
        ("2020-12-09 19:51:17 +08:00", "8012"),
        ("2020-12-10 22:01:51 +08:00", "8030"),
        ("2020-12-11 18:41:26 +08:00", "8022"),
        ("2020-12-11 21:25:25 +08:00", "8028"),
        ("2020-12-12 10:33:57 +08:00", "8020"),
        ("2020-12-12 10:45:00 +08:00", "8020"),
    ];
    assert_eq!(
        contacts,
        expected
            .iter()
            .map(|(t, a)| (t.to_string(), a.to_string()))
            .collect::<Vec<_>>()
    );
    let by_agent = |a: &str| {
        v.contacts_by_agent
            .iter()
            .find(|c| c.key == a)
            .map(|c| c.count)
    };
    assert_eq!(by_agent("8030"), Some(4));
    assert_eq!(by_agent("8020"), Some(2));
    let by_channel = |c: &str| {
        v.contacts_by_channel
            .iter()
            .find(|x| x.key == c)
            .map(|x| x.count)
    };
    assert_eq!(by_channel("CHANNEL_HOTLINE"), Some(10));
    assert_eq!(
        by_channel("CHANNEL_VISIT"),
        Some(1),
        "the visit to headquarters"
    );
    assert_eq!(
        v.contacts[1].contact.as_ref().unwrap().silences[0].duration_seconds,
        53
    );
    let last = v.contacts[10].contact.as_ref().unwrap();
    assert!(last.threats.contains(&(pb::Threat::Police as i32)));

    // The ticket was rejected once, for an incomplete record.
    assert_eq!(v.tickets.len(), 1);
    let t = &v.tickets[0];
    assert_eq!(t.rejections, 1);
    assert_eq!(t.state, pb::TicketState::ResultGiven as i32);
    let steps: Vec<&str> = t.history.iter().map(|s| s.event_type.as_str()).collect();
    assert_eq!(
        steps,
        [
            "TicketSubmitted",
            "TicketRejected",
            "TicketAppended",
            "TicketResultGiven"
        ]
    );
    assert_eq!(t.history[1].detail, "递交记录内容不详细");
    assert!(t.history[1].fields.contains(&"demands".to_string()));
    assert!(!t.result_final);

    // The phone-callback demand exists and was answered by SMS again and again.
    let d01 = v
        .demands
        .iter()
        .find(|d| d.demand.as_ref().unwrap().demand_id == "d01")
        .expect("phone demand recorded");
    assert_eq!(
        d01.demand.as_ref().unwrap().required_channel,
        Channel::OutboundCall as i32
    );
    assert_eq!(
        d01.state,
        pb::DemandState::Open as i32,
        "never answered by phone"
    );
    let sms_days: Vec<String> = d01
        .breaches
        .iter()
        .filter(|b| {
            b.reason == BreachReason::WrongChannel as i32 && b.channel == Channel::Sms as i32
        })
        .map(|b| {
            complaint_ledger::time::format_local(b.at.as_ref().unwrap(), 480)[..10].to_string()
        })
        .collect();
    assert_eq!(sms_days, ["2020-12-08", "2020-12-09", "2020-12-10"]);
    // "By Friday, by phone": answered by SMS after it was made, never by phone in time.
    let d02 = v
        .demands
        .iter()
        .find(|d| d.demand.as_ref().unwrap().demand_id == "d02")
        .unwrap();
    assert_eq!(
        d02.breaches
            .iter()
            .filter(|b| b.reason == BreachReason::WrongChannel as i32)
            .count(),
        2
    );
    assert!(d02
        .breaches
        .iter()
        .any(|b| b.reason == BreachReason::NeverDone as i32));
    // "After 17:00, not SMS" is on record with its window.
    let d04 = v
        .demands
        .iter()
        .find(|d| d.demand.as_ref().unwrap().demand_id == "d04")
        .unwrap();
    assert_eq!(
        d04.demand.as_ref().unwrap().window,
        Some(pb::LocalTimeWindow {
            from_minute: 1020,
            to_minute: 1440
        })
    );

    // The promise made on 12-03 was broken: late, and by SMS where a phone call was demanded.
    let p01 = v
        .promises
        .iter()
        .find(|p| p.promise.as_ref().unwrap().promise_id == "p01")
        .unwrap();
    assert_eq!(p01.state, PromiseState::Broken as i32);
    assert!(p01.breach_reasons.contains(&(BreachReason::Late as i32)));
    assert!(p01
        .breach_reasons
        .contains(&(BreachReason::WrongChannel as i32)));
    assert_eq!(p01.answered_on, Channel::Sms as i32);
    assert_eq!(p01.answered_by_event_id, format!("{CASE}-cb01"));
    // The 12-10 promise was never kept either.
    let p02 = v
        .promises
        .iter()
        .find(|p| p.promise.as_ref().unwrap().promise_id == "p02")
        .unwrap();
    assert_eq!(p02.state, PromiseState::Broken as i32);
    assert_eq!(p02.breach_reasons, [BreachReason::NeverDone as i32]);

    // The 12-09 backfill is a correction beside the 12-08 record, which stays.
    let c05 = &v.contacts[4];
    assert_eq!(
        c05.contact.as_ref().unwrap().summary,
        "收到短信回复, 用户不满意"
    );
    assert_eq!(c05.corrections.len(), 1);
    assert_eq!(c05.corrections[0].acted_for_agent, "8012");
    match c05.corrections[0]
        .replacement
        .as_ref()
        .and_then(|r| r.kind.as_ref())
    {
        Some(Kind::ContactLogged(c)) => assert!(c.summary.contains("455-502")),
        other => panic!("replacement is not a contact: {other:?}"),
    }
    assert!(v.other_corrections.is_empty());

    assert_eq!(
        v.escalation_level,
        pb::EscalationLevel::ClientCompany as i32
    );
    assert_eq!(v.dissatisfactions.len(), 1);
    assert_eq!(v.callbacks.len(), 3);
}

#[tokio::test]
async fn what_we_knew_and_promised_at_a_point_in_the_story() {
    let server = TestServer::start().await;
    replay_story(&server).await;
    // As of version 6 (the promise of 12-03), judged on 12-03 at 02:00:
    // three contacts, one open demand, one promise still open.
    let v = view(&server, Some("2020-12-03T02:00:00+08:00"), Some(6)).await;
    assert_eq!(v.version, 6);
    assert_eq!(v.contacts.len(), 3);
    assert_eq!(v.promises.len(), 1);
    assert_eq!(v.promises[0].state, PromiseState::Open as i32);
    assert!(v.tickets.is_empty());
    // Same version, judged on Tuesday 12-08 morning: the promise was due on Monday.
    let v = view(&server, Some("2020-12-08T09:00:00+08:00"), Some(6)).await;
    assert_eq!(v.promises[0].state, PromiseState::Broken as i32);
    assert_eq!(
        v.promises[0].breach_reasons,
        [BreachReason::NeverDone as i32]
    );
    // The whole case judged on 12-12: the 12-10 promise (due Monday 12-14) is still open.
    let v = view(&server, Some("2020-12-12T12:00:00+08:00"), None).await;
    let p02 = v
        .promises
        .iter()
        .find(|p| p.promise.as_ref().unwrap().promise_id == "p02")
        .unwrap();
    assert_eq!(p02.state, PromiseState::Open as i32);
}

#[tokio::test]
async fn the_replay_command_prints_the_timeline_with_corrections_marked() {
    let server = TestServer::start().await;
    replay_story(&server).await;
    let url = server.url();
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_complaint-ledger"))
            .args(["replay", "--case", CASE, "--server", &url])
            .output()
            .expect("run replay")
    })
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    println!("{text}");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], format!("case {CASE}: {} events", story().len()));
    assert_eq!(lines.len(), story().len() + 1);
    assert!(lines[1].contains("2020-12-03 01:24:30 +08:00") && lines[1].contains("CaseOpened"));
    let c05 = lines
        .iter()
        .find(|l| l.contains("2020-12-08 21:29:00") && l.contains("ContactLogged"))
        .unwrap();
    assert!(c05.contains("[corrected by 124545-c05-backfill]"), "{c05}");
    assert!(text.contains("ticket t01 REJECTED: 递交记录内容不详细"));
    assert!(text.contains("8012 (dev:anonymous)") || text.contains("8012 (anonymous)"));
}
