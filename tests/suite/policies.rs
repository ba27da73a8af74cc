//! The complaint-handling policies through the real gRPC API: case 124545
//! raising its early warnings as it happens, promise clocks from the
//! working-day calendar, escalation checks, and restarts that never raise a
//! warning twice.

use crate::common::seed_000::*;
use crate::common::*;
use complaint_ledger::config::ServerConfig;
use complaint_ledger::policy::Policy;
use complaint_ledger::proto::v1::{
    self as pb, case_event::Kind, BreachReason, Channel, PromiseState,
};
use complaint_ledger::time::format_local;
use std::time::Duration;

pub(crate) const CASE: &str = "124545";

async fn replay_story_any(server: &TestServer) {
    let mut client = server.ledger().await;
    for (i, e) in story().into_iter().enumerate() {
        client
            .append(append(CASE, vec![e]))
            .await
            .unwrap_or_else(|s| panic!("event {i} refused: {s:?}"));
    }
}

pub(crate) async fn warnings(server: &TestServer, unanswered_only: bool) -> Vec<pb::WarningEntry> {
    server
        .policies()
        .await
        .list_warnings(pb::ListWarningsRequest {
            unanswered_only,
            page_size: 500,
            ..Default::default()
        })
        .await
        .expect("list warnings")
        .into_inner()
        .warnings
}

/// Waits until the early-warning process has raised at least `n` warnings.
pub(crate) async fn wait_for_warnings(server: &TestServer, n: usize) -> Vec<pb::WarningEntry> {
    for _ in 0..100 {
        let w = warnings(server, false).await;
        if w.len() >= n {
            return w;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!(
        "fewer than {n} warnings: {:#?}",
        warnings(server, false).await
    );
}

/// `WarningRaised` events in the story's case.
async fn raised(server: &TestServer) -> usize {
    read_case(&mut server.ledger().await, CASE)
        .await
        .iter()
        .filter(|e| e.event_type == "WarningRaised")
        .count()
}

fn by_rule<'a>(w: &'a [pb::WarningEntry], rule: &str) -> Vec<&'a pb::WarningEntry> {
    w.iter()
        .filter(|x| x.warning.as_ref().unwrap().rule == rule)
        .collect()
}

fn local(ts: &Option<prost_types::Timestamp>) -> String {
    format_local(ts.as_ref().expect("timestamp"), 480)
}

// Warnings case 124545 must raise: the third call of the night of 12-03;
// threats on c07, c08, c10 and c11; the result refused twice (SMS of 12-09);
// promises p01 (late, wrong channel) and p02 (never done).
pub(crate) const EXPECTED_WARNINGS: usize = 1 + 4 + 1 + 2;

#[tokio::test]
async fn case_124545_raises_its_warnings_as_it_happens_and_never_twice() {
    let mut server = TestServer::start_with_policy().await;
    replay_story_any(&server).await;
    let all = wait_for_warnings(&server, EXPECTED_WARNINGS).await;

    // The "three calls in one night" rule fired at the third call, 01:51:29.
    let night = by_rule(&all, "three_contacts_in_12h");
    assert_eq!(night.len(), 1, "{all:#?}");
    let w = night[0].warning.as_ref().unwrap();
    assert_eq!(w.triggering_event_id, format!("{CASE}-c03"));
    assert_eq!(w.required_level, pb::EscalationLevel::TeamLead as i32);
    assert_eq!(local(&night[0].raised_at), "2020-12-03 01:51:29 +08:00");
    // ...and was never escalated to the team lead in time.
    assert!(night[0].overdue);
    assert!(night[0].answered_by_event_id.is_empty());

    let threats = by_rule(&all, "threat_on_contact");
    let triggers: Vec<_> = threats
        .iter()
        .map(|w| w.warning.as_ref().unwrap().triggering_event_id.clone())
        .collect();
    assert_eq!(
        triggers,
        ["c07", "c08", "c10", "c11"].map(|c| format!("{CASE}-{c}"))
    );
    assert!(threats
        .iter()
        .all(|w| w.warning.as_ref().unwrap().required_level
            == pb::EscalationLevel::ClientCompany as i32));
    // The visit at HQ (c10, c11) was escalated to the client at 10:50 —
    // within the hour; the threat of 12-10 (c07) and 12-11 (c08) never was.
    let answered: Vec<bool> = threats
        .iter()
        .map(|w| !w.answered_by_event_id.is_empty())
        .collect();
    assert_eq!(answered, [false, false, true, true]);
    assert_eq!(threats[3].answered_by_event_id, format!("{CASE}-escalate"));

    let refused = by_rule(&all, "result_refused_twice");
    assert_eq!(refused.len(), 1);
    assert_eq!(
        refused[0].warning.as_ref().unwrap().triggering_event_id,
        format!("{CASE}-cb02")
    );
    let broken = by_rule(&all, "promise_broken");
    assert_eq!(broken.len(), 2, "{all:#?}");
    assert!(broken.iter().any(|w| w
        .warning
        .as_ref()
        .unwrap()
        .reason
        .starts_with("promise p01 broken")));
    assert!(by_rule(&all, "ticket_rejected_twice").is_empty());

    // In the log: WarningRaised caused by the triggering event, stamped with
    // the policy process as actor.
    let events = read_case(&mut server.ledger().await, CASE).await;
    let stored: Vec<&pb::RecordedEvent> = events
        .iter()
        .filter(|e| e.event_type == "WarningRaised")
        .collect();
    assert_eq!(stored.len(), EXPECTED_WARNINGS);
    let third_call = stored
        .iter()
        .find(|e| e.causation_id == format!("{CASE}-c03"))
        .expect("warning caused by c03");
    assert_eq!(third_call.actor, "policy:early-warning");
    assert_eq!(local(&third_call.occurred_at), "2020-12-03 01:51:29 +08:00");

    // p02 fell due on 12-14, when the case already stood at the client
    // company: no further escalation was needed.
    let p02 = broken
        .iter()
        .find(|w| {
            w.warning
                .as_ref()
                .unwrap()
                .reason
                .starts_with("promise p02 broken")
        })
        .unwrap();
    assert_eq!(local(&p02.raised_at), "2020-12-14 18:00:00 +08:00");
    assert_eq!(p02.answered_by_event_id, format!("{CASE}-escalate"));

    // Unanswered warnings: the night of 12-03, the threats of 12-10 and
    // 12-11, the refused results, the broken p01.
    let unanswered = warnings(&server, true).await;
    assert!(unanswered.iter().any(|w| w.event_id == night[0].event_id));
    assert!(unanswered
        .iter()
        .all(|w| w.overdue && w.answered_by_event_id.is_empty()));
    assert_eq!(unanswered.len(), EXPECTED_WARNINGS - 3);

    // Restart twice, let the process catch up and tick: nothing is raised again.
    for _ in 0..2 {
        server.restart().await;
        tokio::time::sleep(Duration::from_millis(2500)).await;
        assert_eq!(
            raised(&server).await,
            EXPECTED_WARNINGS,
            "a restart raised a warning twice"
        );
    }
}

/// The rules are folded in the ledger's opening pass over the log: a log
/// written while early warning was off gets its warnings when a server with
/// it on starts, once, and not again at the next start.
#[tokio::test]
async fn warnings_found_while_the_ledger_opens_are_raised_once() {
    let mut server = TestServer::start().await;
    replay_story_any(&server).await;
    assert!(warnings(&server, false).await.is_empty());
    let with_early_warning = |c: &mut complaint_ledger::config::ServerConfig| {
        c.ledger.policy = config(&c.data_dir, true).ledger.policy;
    };
    server.restart_with(with_early_warning).await;
    let all = wait_for_warnings(&server, EXPECTED_WARNINGS).await;
    let night = by_rule(&all, "three_contacts_in_12h");
    assert_eq!(night.len(), 1, "{all:#?}");
    assert_eq!(
        night[0].warning.as_ref().unwrap().triggering_event_id,
        format!("{CASE}-c03")
    );
    server.restart_with(with_early_warning).await;
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(
        raised(&server).await,
        EXPECTED_WARNINGS,
        "a restart raised a warning twice"
    );
}

/// A backlog of warnings (a policy turned on over a full log) is raised
/// many at a time, each case's in the order they happened. A stop in the
/// middle of it leaves the rest to the next start, which raises each
/// missing warning once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backlog_of_warnings_is_raised_in_order_and_a_stop_midway_loses_none() {
    const CASES: usize = 60;
    let mut server = TestServer::start().await;
    let mut client = server.ledger().await;
    for k in 0..CASES {
        client
            .append(append(&format!("k{k}"), copy_of(&format!("k{k}"))))
            .await
            .unwrap();
    }
    let with_early_warning = |c: &mut ServerConfig| {
        c.ledger.policy = config(&c.data_dir, true).ledger.policy;
    };
    // Stopped at once, wherever the backlog stands; then left to finish.
    server.restart_with(with_early_warning).await;
    server.restart_with(with_early_warning).await;
    let mut all = Vec::new();
    for _ in 0..300 {
        all = warnings(&server, false).await;
        if all.len() >= CASES * EXPECTED_WARNINGS {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(all.len(), CASES * EXPECTED_WARNINGS);
    let mut client = server.ledger().await;
    for k in 0..CASES {
        let events = read_case(&mut client, &format!("k{k}")).await;
        let raised: Vec<&pb::RecordedEvent> = events
            .iter()
            .filter(|e| e.event_type == "WarningRaised")
            .collect();
        assert_eq!(raised.len(), EXPECTED_WARNINGS, "case k{k}");
        let times: Vec<i128> = raised
            .iter()
            .map(|e| complaint_ledger::time::ts_nanos(e.occurred_at.as_ref().unwrap()))
            .collect();
        assert!(times.is_sorted(), "case k{k}: warnings out of order");
        let ids: std::collections::HashSet<&str> =
            raised.iter().map(|e| e.event_id.as_str()).collect();
        assert_eq!(ids.len(), EXPECTED_WARNINGS, "case k{k}: a warning twice");
    }
}

/// Case 124545's events up to its ticket's first rejection, as case `case`.
fn up_to_the_first_rejection(case: &str) -> Vec<pb::ProposedEvent> {
    let mut events = copy_of(case);
    let end = events
        .iter()
        .position(|e| e.event_id.ends_with("-t01-append"))
        .expect("the story appends to its ticket");
    events.truncate(end);
    events
}

/// The ticket appended to and rejected a second time, after the reopen.
fn second_rejection(case: &str) -> Vec<pb::ProposedEvent> {
    let appended = copy_of(case)
        .into_iter()
        .find(|e| e.event_id.ends_with("-t01-append"))
        .unwrap();
    let rejected = ev(
        &format!("{case}-t01-reject-2"),
        "2020-12-04T12:00:00+08:00",
        "",
        Kind::TicketRejected(pb::TicketRejected {
            ticket_id: "t01".into(),
            reason: "still incomplete".into(),
            missing_fields: vec![],
        }),
    );
    vec![appended, rejected]
}

async fn rules_raised_on(server: &TestServer, case: &str) -> Vec<String> {
    list_warnings_page(server, case, "", 0)
        .await
        .into_iter()
        .map(|w| w.warning.unwrap().rule)
        .collect()
}

/// The early-warning rules set a closed case aside and fold it again from
/// the log when it is reopened — live (case `live`, set aside by a start)
/// and in a start's own pass (case `at-start`, closed and reopened before
/// it). Either way the rejection counted before the close counts after the
/// reopen: the second one raises "ticket rejected twice" (a track folded
/// from nothing would count one).
#[tokio::test]
async fn a_reopened_case_keeps_its_warning_counts_from_before_its_close() {
    let mut server = TestServer::start_with_policy().await;
    let mut client = server.ledger().await;
    for case in ["live", "at-start"] {
        let mut events = up_to_the_first_rejection(case);
        events.push(close_or_reopen(case, "close", "2020-12-04T09:00:00+08:00"));
        client.append(append(case, events)).await.unwrap();
    }
    client
        .append(append(
            "at-start",
            vec![close_or_reopen(
                "at-start",
                "reopen",
                "2020-12-04T10:00:00+08:00",
            )],
        ))
        .await
        .unwrap();
    server.restart().await;
    let mut client = server.ledger().await;
    client
        .append(append(
            "live",
            vec![close_or_reopen(
                "live",
                "reopen",
                "2020-12-04T10:00:00+08:00",
            )],
        ))
        .await
        .unwrap();
    for case in ["live", "at-start"] {
        client
            .append(append(case, second_rejection(case)))
            .await
            .unwrap();
    }
    // Both: promise p01 fell due unanswered while the case was closed, and
    // is warned about once it is reopened. The third contact's warning is
    // not: the case was closed in the request that logged the contact, and
    // a close drops its case's warnings not raised yet (live and in a
    // start's pass alike, whether the start comes before the reopen or
    // after it).
    let expected = [
        ("live", vec!["promise_broken", "ticket_rejected_twice"]),
        ("at-start", vec!["promise_broken", "ticket_rejected_twice"]),
    ];
    for (case, expected) in expected {
        let mut rules = Vec::new();
        for _ in 0..100 {
            rules = rules_raised_on(&server, case).await;
            rules.sort();
            if rules == expected {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert_eq!(rules, expected, "case {case}");
    }
}

async fn list_warnings_page(
    server: &TestServer,
    case_id: &str,
    rule: &str,
    page_size: u32,
) -> Vec<pb::WarningEntry> {
    let mut policies = server.policies().await;
    let (mut out, mut token) = (Vec::new(), String::new());
    loop {
        let page = policies
            .list_warnings(pb::ListWarningsRequest {
                case_id: case_id.into(),
                rule: rule.into(),
                page_size,
                page_token: token,
                ..Default::default()
            })
            .await
            .expect("list warnings")
            .into_inner();
        out.extend(page.warnings);
        if page.next_page_token.is_empty() {
            return out;
        }
        token = page.next_page_token;
    }
}

#[tokio::test]
async fn listed_warnings_are_the_logged_ones_by_case_rule_and_page() {
    let server = TestServer::start_with_policy().await;
    let mut client = server.ledger().await;
    for case in ["a", "b"] {
        client.append(append(case, copy_of(case))).await.unwrap();
    }
    let all = wait_for_warnings(&server, 2 * EXPECTED_WARNINGS).await;
    assert_eq!(all.len(), 2 * EXPECTED_WARNINGS);
    assert_eq!(list_warnings_page(&server, "", "", 3).await, all);

    // Each case's listing is exactly its logged WarningRaised events, with
    // the stored event id and content, page after page.
    for case in ["a", "b"] {
        let logged: Vec<pb::WarningEntry> = read_case(&mut client, case)
            .await
            .into_iter()
            .filter_map(|e| match e.event.and_then(|x| x.kind) {
                Some(Kind::WarningRaised(w)) => Some(pb::WarningEntry {
                    case_id: e.case_id,
                    event_id: e.event_id,
                    position: e.position,
                    raised_at: e.occurred_at,
                    warning: Some(w),
                    ..Default::default()
                }),
                _ => None,
            })
            .collect();
        assert_eq!(logged.len(), EXPECTED_WARNINGS);
        for page_size in [0, 1, 3] {
            let listed = list_warnings_page(&server, case, "", page_size).await;
            let seen: Vec<pb::WarningEntry> = listed
                .into_iter()
                .map(|w| pb::WarningEntry {
                    answered_by_event_id: String::new(),
                    answered_at: None,
                    escalate_by: None,
                    overdue: false,
                    ..w
                })
                .collect();
            assert_eq!(seen, logged, "case {case}, pages of {page_size}");
        }
    }

    // A rule across cases, and a rule within a case.
    let threats = list_warnings_page(&server, "", "threat_on_contact", 2).await;
    assert_eq!(threats.len(), 8);
    assert!(threats
        .iter()
        .all(|w| w.warning.as_ref().unwrap().rule == "threat_on_contact"));
    assert!(threats.windows(2).all(|p| p[0].position < p[1].position));
    let in_b = list_warnings_page(&server, "b", "threat_on_contact", 2).await;
    let threats_of_b: Vec<_> = threats.into_iter().filter(|w| w.case_id == "b").collect();
    assert_eq!(in_b.len(), 4);
    assert_eq!(in_b, threats_of_b);
    assert!(list_warnings_page(&server, "no-such-case", "", 0)
        .await
        .is_empty());
    assert!(list_warnings_page(&server, "a", "no_such_rule", 0)
        .await
        .is_empty());
}

#[tokio::test]
async fn promises_get_due_times_from_the_calendar_and_are_judged_against_demands() {
    let server = TestServer::start().await;
    replay_story_any(&server).await;
    let v = server
        .cases()
        .await
        .get_case(pb::GetCaseRequest {
            case_id: CASE.into(),
            evaluate_at: Some(ts("2020-12-12T12:00:00+08:00")),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let p = |id: &str| {
        v.promises
            .iter()
            .find(|p| p.promise.as_ref().unwrap().promise_id == id)
            .unwrap()
            .clone()
    };
    // "1-2 working days (holidays postponed)" on Thursday 12-03 01:51: the
    // weekend is skipped, due at the close of Monday 12-07.
    let p01 = p("p01");
    let made = p01.promise.as_ref().unwrap();
    assert_eq!(local(&made.due_at), "2020-12-07 18:00:00 +08:00");
    assert_eq!(made.due_calendar, "cn-mainland@2026.1");
    assert_eq!(p01.state, PromiseState::Broken as i32);
    // Answered on Tuesday by SMS where a phone call was demanded, and the
    // customer refused the result it delivered.
    assert_eq!(
        p01.breach_reasons,
        [
            BreachReason::Late as i32,
            BreachReason::Refused as i32,
            BreachReason::WrongChannel as i32
        ]
    );
    // 12-10 (Thursday) 22:01 -> Monday 12-14, still open on 12-12.
    let p02 = p("p02");
    assert_eq!(
        local(&p02.promise.as_ref().unwrap().due_at),
        "2020-12-14 18:00:00 +08:00"
    );
    assert_eq!(p02.state, PromiseState::Open as i32);

    // The six timely duties as clocks: accept (opened 01:24:30 -> ticket
    // 02:10), track (ticket -> the second line's result on Tue 12-08 15:00:
    // Thu, Fri, Mon 9 working hours each and Tue 09:00-15:00 = 33 h).
    let clock = |d: pb::TimelyDuty| {
        v.timely_duties
            .iter()
            .find(|c| c.duty == d as i32)
            .unwrap_or_else(|| panic!("no {d:?} clock"))
            .clone()
    };
    let accept = clock(pb::TimelyDuty::Accept);
    assert_eq!(accept.elapsed.unwrap().seconds, 45 * 60 + 30);
    assert_eq!(accept.ended_by_event_id, format!("{CASE}-t01-submit"));
    let track = clock(pb::TimelyDuty::Track);
    assert_eq!(local(&track.ended_at), "2020-12-08 15:00:00 +08:00");
    assert_eq!(track.working_time.unwrap().seconds, 33 * 3600);
    // Call back: result 12-08 15:00 -> the SMS at 16:00.
    let call_back = clock(pb::TimelyDuty::CallBack);
    assert_eq!(call_back.elapsed.unwrap().seconds, 3600);
    // Not resolved: the clock runs to the evaluation time.
    let resolve = clock(pb::TimelyDuty::Resolve);
    assert!(resolve.ended_at.is_none());
    assert_eq!(v.calendar, "cn-mainland@2026.1");

    // Had the second line phoned on Friday 12-11 at 16:00 with the result
    // of p02, it would still have broken the customer's "after 17:00" demand.
    let mut client = server.ledger().await;
    client
        .append(append(
            CASE,
            vec![ev(
                "124545-what-if",
                "2020-12-11T16:00:00+08:00",
                "second-line",
                Kind::CallbackCompleted(pb::CallbackCompleted {
                    callback_id: "cb-what-if".into(),
                    channel: Channel::OutboundCall as i32,
                    reached: true,
                    promise_id: "p02".into(),
                    demand_ids: vec!["d04".into()],
                    ..Default::default()
                }),
            )],
        ))
        .await
        .unwrap();
    let v = server
        .cases()
        .await
        .get_case(pb::GetCaseRequest {
            case_id: CASE.into(),
            evaluate_at: Some(ts("2020-12-12T12:00:00+08:00")),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let p02 = v
        .promises
        .iter()
        .find(|p| p.promise.as_ref().unwrap().promise_id == "p02")
        .unwrap();
    assert_eq!(p02.breach_reasons, [BreachReason::OutsideWindow as i32]);
    let d04 = v
        .demands
        .iter()
        .find(|d| d.demand.as_ref().unwrap().demand_id == "d04")
        .unwrap();
    assert!(d04
        .breaches
        .iter()
        .any(|b| b.reason == BreachReason::OutsideWindow as i32 && b.event_id == "124545-what-if"));
}

#[tokio::test]
async fn promises_are_listed_across_cases_by_due_time() {
    let server = TestServer::start().await;
    replay_story_any(&server).await;
    let mut p = server.policies().await;
    let list = |state: PromiseState, at: &str, token: &str| pb::ListPromisesRequest {
        state: state as i32,
        evaluate_at: Some(ts(at)),
        page_size: 1,
        page_token: token.into(),
        ..Default::default()
    };
    // On 12-12, p01 is broken and p02 open; on 12-15 both are broken.
    let broken = p
        .list_promises(list(PromiseState::Broken, "2020-12-12T12:00:00+08:00", ""))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(broken.promises.len(), 1);
    assert_eq!(
        broken.promises[0].promise.as_ref().unwrap().event_id,
        "124545-p01"
    );
    assert!(broken.next_page_token.is_empty());
    let first = p
        .list_promises(list(PromiseState::Broken, "2020-12-15T12:00:00+08:00", ""))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        first.promises[0].promise.as_ref().unwrap().event_id,
        "124545-p01"
    );
    let second = p
        .list_promises(list(
            PromiseState::Broken,
            "2020-12-15T12:00:00+08:00",
            &first.next_page_token,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        second.promises[0].promise.as_ref().unwrap().event_id,
        "124545-p02"
    );
    assert_eq!(second.promises[0].customer_id, "cust-5c1e9a");
    let bad = p
        .list_promises(pb::ListPromisesRequest {
            page_token: "not-a-token".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(bad.code(), tonic::Code::InvalidArgument);
    assert!(bad.message().contains("page_token"), "{}", bad.message());
    // A token of another listing (ListWarnings' "449", hex-encoded) is
    // refused too, not read as a place in the due order.
    let other = p
        .list_promises(pb::ListPromisesRequest {
            page_token: "343439".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(other.code(), tonic::Code::InvalidArgument);
    assert!(
        other.message().contains("page_token"),
        "{}",
        other.message()
    );
}

#[tokio::test]
async fn a_promise_in_working_days_takes_no_client_due_time() {
    let server = TestServer::start().await;
    let mut client = server.ledger().await;
    open_case(&mut client, "c1", "u1").await;
    let promise = |at: &str, due: Option<&str>, calendar: &str| {
        append(
            "c1",
            vec![ev(
                &format!("p-{}", &at[..10]),
                at,
                "8030",
                Kind::PromiseMade(pb::PromiseMade {
                    promise_id: format!("p-{}", &at[..10]),
                    description: "1-2个工作日".into(),
                    working_days: 2,
                    due_at: due.map(ts),
                    due_calendar: calendar.into(),
                    ..Default::default()
                }),
            )],
        )
    };
    let e = client
        .append(promise(
            "2020-12-03T10:00:00+08:00",
            Some("2020-12-04T10:00:00+08:00"),
            "",
        ))
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::InvalidArgument);
    assert!(
        e.message().contains("promise_made.due_at"),
        "{}",
        e.message()
    );
    let e = client
        .append(promise("2020-12-03T10:00:00+08:00", None, "forged@1"))
        .await
        .unwrap_err();
    assert!(e.message().contains("due_calendar"), "{}", e.message());
    assert_eq!(read_case(&mut client, "c1").await.len(), 1);
}

/// The case's view as of `at`.
async fn case_at(server: &TestServer, case_id: &str, at: &str) -> pb::CaseView {
    server
        .cases()
        .await
        .get_case(pb::GetCaseRequest {
            case_id: case_id.into(),
            evaluate_at: Some(ts(at)),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
}

/// The event ids of the promises whose due time is pending, across cases.
async fn pending_promises(server: &TestServer) -> Vec<String> {
    server
        .policies()
        .await
        .list_promises(pb::ListPromisesRequest {
            due_pending: true,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .promises
        .into_iter()
        .map(|p| p.promise.unwrap().event_id)
        .collect()
}

/// Agent 8030's scorecard for `month`, as of `at`.
async fn scorecard_at(server: &TestServer, month: &str, at: &str) -> pb::Scorecard {
    server
        .policies()
        .await
        .get_scorecard(pb::GetScorecardRequest {
            agent_id: "8030".into(),
            month: month.into(),
            evaluate_at: Some(ts(at)),
        })
        .await
        .unwrap()
        .into_inner()
}

/// Restarts the server with `cn-mainland` covering 2027 officially.
async fn restart_with_a_calendar_through_2027(server: &mut TestServer) {
    restart_with_an_official_2027(server, at_the_year_end).await;
}

/// These tests record events at the turn of 2026/2027, which may lie ahead
/// of the clock of the machine they run on: the server allows that much.
fn at_the_year_end(c: &mut ServerConfig) {
    c.ledger.limits.max_clock_skew_seconds = 5 * 365 * 86_400;
}

/// As [`at_the_year_end`], with the shipped calendar minus its provisional
/// years (an operator's choice: no deadline past the notices, ever), so a
/// deadline in 2027 is left pending.
fn at_the_year_end_without_provisional_years(c: &mut ServerConfig) {
    at_the_year_end(c);
    let shipped = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/calendars/cn-mainland.toml"
    ))
    .unwrap();
    let text: String = shipped
        .lines()
        .filter(|l| !l.starts_with("provisional ="))
        .map(|l| format!("{l}\n"))
        .collect();
    // Outlives the server: a directory of the test's own, left behind.
    let dir = tempfile::tempdir().unwrap().keep();
    std::fs::write(dir.join("cn-mainland.toml"), text).unwrap();
    let mut p = c.ledger.policy.config.clone();
    p.calendars.directory = Some(dir);
    c.ledger.policy = std::sync::Arc::new(Policy::new(p).unwrap());
}

#[tokio::test]
async fn a_promise_past_the_calendar_is_recorded_pending_and_computed_when_the_calendar_covers_it()
{
    let mut server = TestServer::start_with(at_the_year_end_without_provisional_years).await;
    let mut client = server.ledger().await;
    open_case(&mut client, "c1", "u1").await;
    // Wednesday 2026-12-30, "1-2 working days": the second one is in 2027,
    // which the shipped calendar does not cover. Recorded all the same.
    let promise = Kind::PromiseMade(pb::PromiseMade {
        promise_id: "p-year-end".into(),
        description: "专员1-2个工作日回复(节假日顺延)".into(),
        working_days: 2,
        ..Default::default()
    });
    client
        .append(append(
            "c1",
            vec![ev(
                "p-year-end",
                "2026-12-30T10:00:00+08:00",
                "8030",
                promise.clone(),
            )],
        ))
        .await
        .unwrap();
    let events = read_case(&mut client, "c1").await;
    let Some(Kind::PromiseMade(stored)) = events[1].event.as_ref().unwrap().kind.clone() else {
        panic!("{:?}", events[1])
    };
    assert_eq!(stored.due_at, None);
    assert_eq!(stored.due_calendar, "cn-mainland@2026.1");
    assert!(
        stored.due_pending.contains("2027-01-01") && stored.due_pending.contains("2020-2026"),
        "{}",
        stored.due_pending
    );
    // Without a due time it is open, never judged late or undone, however
    // late it is asked.
    let v = case_at(&server, "c1", "2027-03-01T12:00:00+08:00").await;
    assert_eq!(v.promises[0].state, PromiseState::Open as i32);
    assert!(v.promises[0].breach_reasons.is_empty());
    // Listed for whoever corrects pending due times once the calendar can.
    assert_eq!(pending_promises(&server).await, ["p-year-end"]);
    // A client may not claim a deadline is pending.
    let e = client
        .append(append(
            "c1",
            vec![ev(
                "p-forged",
                "2026-12-30T11:00:00+08:00",
                "8030",
                Kind::PromiseMade(pb::PromiseMade {
                    promise_id: "p-forged".into(),
                    description: "x".into(),
                    working_days: 1,
                    due_pending: "later".into(),
                    ..Default::default()
                }),
            )],
        ))
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::InvalidArgument);
    assert!(e.message().contains("due_pending"), "{}", e.message());

    // The same promise on a case closed since: the board keeps its words
    // in the log only.
    open_case(&mut client, "c2", "u2").await;
    client
        .append(append(
            "c2",
            vec![
                ev(
                    "p-year-end-2",
                    "2026-12-30T10:00:00+08:00",
                    "8030",
                    promise.clone(),
                ),
                ev(
                    "c2-closed",
                    "2026-12-30T11:00:00+08:00",
                    "8030",
                    Kind::CaseClosed(pb::CaseClosed::default()),
                ),
            ],
        ))
        .await
        .unwrap();
    assert_eq!(
        pending_promises(&server).await,
        ["p-year-end", "p-year-end-2"]
    );

    // The calendar gains 2027: the server, starting, records for each a
    // correction repeating the promise, which gets its due time as of the
    // promise's own time: Thursday 12-31 is the first working day, New
    // Year's Day is off, Monday 2027-01-04 the second.
    restart_with_a_calendar_through_2027(&mut server).await;
    for _ in 0..100 {
        if pending_promises(&server).await.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(pending_promises(&server).await.is_empty());
    let mut client = server.ledger().await;
    for (case, target) in [("c1", "p-year-end"), ("c2", "p-year-end-2")] {
        let corrections: Vec<_> = read_case(&mut client, case)
            .await
            .into_iter()
            .filter(|e| e.actor == "policy:deadlines")
            .collect();
        assert_eq!(corrections.len(), 1, "case {case}");
        let Some(Kind::EventCorrected(c)) = corrections[0].event.as_ref().unwrap().kind.clone()
        else {
            panic!("{:?}", corrections[0])
        };
        assert_eq!(c.corrected_event_id, target);
        assert!(c.reason.contains("cn-mainland@2027.test"), "{}", c.reason);
        assert_eq!(corrections[0].causation_id, target);
    }
    let v = case_at(&server, "c1", "2027-01-05T12:00:00+08:00").await;
    let p = v.promises[0].promise.as_ref().unwrap();
    assert_eq!(local(&p.due_at), "2027-01-04 18:00:00 +08:00");
    assert_eq!(p.due_calendar, "cn-mainland@2027.test");
    assert_eq!(p.due_pending, "");
    assert_eq!(v.promises[0].state, PromiseState::Broken as i32);
    assert_eq!(
        v.promises[0].breach_reasons,
        [BreachReason::NeverDone as i32]
    );
    let listed = server
        .policies()
        .await
        .list_promises(pb::ListPromisesRequest {
            evaluate_at: Some(ts("2027-01-05T12:00:00+08:00")),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let closed = listed.promises.iter().find(|e| e.case_id == "c2").unwrap();
    let closed = closed.promise.as_ref().unwrap();
    assert_eq!(
        local(&closed.promise.as_ref().unwrap().due_at),
        "2027-01-04 18:00:00 +08:00"
    );
    assert_eq!(closed.state, PromiseState::Broken as i32);
    // The recorded promise itself is unchanged.
    assert_eq!(read_case(&mut client, "c1").await[1], events[1]);

    // Another start corrects nothing again: nothing is pending.
    let before = read_case(&mut client, "c1").await.len();
    restart_with_a_calendar_through_2027(&mut server).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut client = server.ledger().await;
    assert_eq!(read_case(&mut client, "c1").await.len(), before);
}

#[tokio::test]
async fn an_outside_complaint_near_the_year_end_is_recorded_with_the_deadline_it_can_have() {
    let server = TestServer::start_with(at_the_year_end_without_provisional_years).await;
    let mut client = server.ledger().await;
    open_case(&mut client, "c1", "u1").await;
    // Forwarded by 12315 on Monday 2026-11-23: the 7-working-day answer is
    // due in December, the 45-working-day settlement runs into 2027.
    client
        .append(append(
            "c1",
            vec![ev(
                "x1",
                "2026-11-23T10:00:00+08:00",
                "8030",
                Kind::ExternalComplaintReceived(pb::ExternalComplaintReceived {
                    body: pb::OutsideBody::MarketRegulator as i32,
                    reference_number: "12315-2026-0001".into(),
                    ..Default::default()
                }),
            )],
        ))
        .await
        .unwrap();
    let v = case_at(&server, "c1", "2026-12-01T12:00:00+08:00").await;
    let x = &v.external_complaint_deadlines[0];
    let c = x.complaint.as_ref().unwrap();
    assert_eq!(local(&c.respond_by), "2026-12-02 18:00:00 +08:00");
    assert_eq!(c.resolve_by, None);
    assert!(
        c.deadline_pending.starts_with("resolve_by: "),
        "{}",
        c.deadline_pending
    );
    assert_eq!(x.respond_state, pb::DeadlineState::Pending as i32);
    assert_eq!(x.resolve_state, pb::DeadlineState::Unspecified as i32);
}

/// Every page of `ListPromises` at `at`, two promises a page.
async fn promise_listing(server: &TestServer, at: &str) -> Vec<pb::ListPromisesResponse> {
    let mut p = server.policies().await;
    let mut pages = Vec::new();
    let mut token = String::new();
    loop {
        let page = p
            .list_promises(pb::ListPromisesRequest {
                evaluate_at: Some(ts(at)),
                page_size: 1,
                page_token: token.clone(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        token = page.next_page_token.clone();
        pages.push(page);
        if token.is_empty() {
            return pages;
        }
    }
}

/// A closed case's promises as `ListPromises` shows them on 12-12 and
/// 12-15 (p02 is open on one, broken on the other).
async fn listings(server: &TestServer) -> Vec<Vec<pb::ListPromisesResponse>> {
    let mut out = Vec::new();
    for at in ["2020-12-12T12:00:00+08:00", "2020-12-15T12:00:00+08:00"] {
        out.push(promise_listing(server, at).await);
    }
    out
}

/// The board keeps a closed case's promises settled and without their
/// words, and none of its contacts. Nothing of that shows: its promises are
/// listed as before the close, after a restart, with a correction made
/// while it is closed, and after a reopen; a contact from before the close
/// is classified after the reopen with its time, channel and agent; and the
/// rebuilt projections are the incremental ones.
#[tokio::test]
async fn a_closed_case_lists_its_promises_and_finds_its_contacts_as_before_its_close() {
    let mut server = TestServer::start().await;
    replay_story_any(&server).await;
    let open = listings(&server).await;
    let p02 = |l: &[Vec<pb::ListPromisesResponse>], day: usize| {
        l[day]
            .iter()
            .flat_map(|page| &page.promises)
            .map(|e| e.promise.clone().unwrap())
            .find(|v| v.event_id == "124545-p02")
            .unwrap()
    };
    assert_eq!(p02(&open, 0).state, PromiseState::Open as i32);
    assert_eq!(p02(&open, 1).state, PromiseState::Broken as i32);

    let mut client = server.ledger().await;
    client
        .append(append(
            CASE,
            vec![close_or_reopen(CASE, "close", "2020-12-12T13:00:00+08:00")],
        ))
        .await
        .unwrap();
    assert_eq!(listings(&server).await, open);
    server.restart().await;
    assert_eq!(listings(&server).await, open);

    // While closed, p02 is corrected to one working day: due Friday 12-11
    // at the close of business, so broken on 12-12 already.
    let mut client = server.ledger().await;
    let mut corrected = story()
        .into_iter()
        .find(|e| e.event_id == "124545-p02")
        .unwrap();
    let Some(Kind::PromiseMade(p)) = corrected.event.as_mut().and_then(|e| e.kind.as_mut()) else {
        panic!("p02 is a promise");
    };
    p.working_days = 1;
    p.description = "帮您反馈, 1个工作日回复".into();
    let correction = Kind::EventCorrected(Box::new(pb::EventCorrected {
        corrected_event_id: "124545-p02".into(),
        reason: "the agent promised one working day".into(),
        replacement: corrected.event.map(Box::new),
    }));
    client
        .append(append(
            CASE,
            vec![ev(
                "124545-p02-corrected",
                "2020-12-12T14:00:00+08:00",
                "qa",
                correction,
            )],
        ))
        .await
        .unwrap();
    let closed = listings(&server).await;
    for day in [0, 1] {
        let v = p02(&closed, day);
        let words = v.promise.as_ref().unwrap();
        assert_eq!(words.description, "帮您反馈, 1个工作日回复");
        assert_eq!(local(&words.due_at), "2020-12-11 18:00:00 +08:00");
        assert_eq!(v.state, PromiseState::Broken as i32);
        assert_eq!(v.breach_reasons, [BreachReason::NeverDone as i32]);
    }
    // p01 is unchanged, and still listed first.
    assert_eq!(closed[0][0], open[0][0]);

    client
        .append(append(
            CASE,
            vec![close_or_reopen(CASE, "reopen", "2020-12-13T10:00:00+08:00")],
        ))
        .await
        .unwrap();
    assert_eq!(listings(&server).await, closed);
    // c03 (Thursday 12-03) classified after the reopen: on Monday 12-07's
    // survey queue with what its ContactLogged recorded.
    client
        .append(append(
            CASE,
            vec![ev(
                "124545-c03-dissatisfied",
                "2020-12-13T10:05:00+08:00",
                "8030",
                Kind::DissatisfactionClassified(pb::DissatisfactionClassified {
                    contact_id: "c03".into(),
                    needs_survey: true,
                    needs_callback: true,
                    factor: pb::DissatisfactionFactor::Attitude as i32,
                }),
            )],
        ))
        .await
        .unwrap();
    let queue = server
        .policies()
        .await
        .get_queue(pb::GetQueueRequest {
            kind: pb::QueueKind::Survey as i32,
            date: "2020-12-07".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let c03 = queue
        .items
        .iter()
        .find(|i| i.contact_id == "c03")
        .expect("c03 is waiting for a survey");
    assert_eq!(c03.contact_event_id, "124545-c03");
    assert_eq!(local(&c03.contacted_at), "2020-12-03 01:51:29 +08:00");
    assert_eq!(c03.channel, Channel::Hotline as i32);
    assert_eq!(c03.agent_id, "8030");
    rebuild_online(&server).await;
}

/// Runs `complaint-ledger rebuild --server` against the running server;
/// asserts the rebuilt projections are the incremental ones and returns
/// their digest.
async fn rebuild_online(server: &TestServer) -> String {
    let url = server.url();
    let bin = env!("CARGO_BIN_EXE_complaint-ledger");
    let online = tokio::task::spawn_blocking(move || {
        std::process::Command::new(bin)
            .args(["rebuild", "--server", &url])
            .output()
            .expect("run rebuild")
    })
    .await
    .unwrap();
    let text = String::from_utf8_lossy(&online.stdout).to_string();
    assert!(
        online.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&online.stderr)
    );
    assert!(
        text.contains("OK: the rebuilt projections are identical"),
        "{text}"
    );
    let live = digest(&text, "incremental digest");
    assert_eq!(live, digest(&text, "rebuilt digest"));
    live
}

fn digest(text: &str, label: &str) -> String {
    text.lines()
        .find_map(|l| l.strip_prefix(label))
        .map(|d| d.trim().to_string())
        .unwrap_or_else(|| panic!("no {label:?} in {text}"))
}

#[tokio::test]
async fn rebuild_inside_the_server_and_offline_gives_the_incremental_projections() {
    let server = TestServer::start().await;
    replay_story_any(&server).await;
    let bin = env!("CARGO_BIN_EXE_complaint-ledger");
    let live = rebuild_online(&server).await;
    // The server keeps answering from the swapped-in projections.
    assert_eq!(warnings(&server, false).await.len(), 0);
    let promises = server
        .policies()
        .await
        .list_promises(pb::ListPromisesRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(promises.promises.len(), 2);

    // Offline, on the stopped server's store: the same board.
    let dir = server.stop().await;
    let path = dir.path().to_path_buf();
    let offline = tokio::task::spawn_blocking(move || {
        std::process::Command::new(bin)
            .args(["rebuild", "--data-dir"])
            .arg(&path)
            .output()
            .expect("run rebuild")
    })
    .await
    .unwrap();
    let text = String::from_utf8_lossy(&offline.stdout).to_string();
    assert!(
        offline.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&offline.stderr)
    );
    assert!(
        text.contains(&format!("rebuilt from {} events", story().len())),
        "{text}"
    );
    assert_eq!(digest(&text, "policy board digest"), live);
}

#[tokio::test]
async fn followers_get_each_commit_in_order_and_are_told_when_they_lag() {
    use complaint_ledger::ledger::{Ledger, LedgerOptions};
    use tokio::sync::broadcast::error::{RecvError, TryRecvError};
    // The early-warning process follows the writer's commits instead of
    // reading back what was just written; it relies on this contract.
    let dir = tempfile::tempdir().unwrap();
    let (ledger, _) = Ledger::open(dir.path(), &LedgerOptions::default()).unwrap();
    let mut follower = ledger.follow_commits();
    let at = "2020-12-03T01:00:00+08:00";
    ledger
        .append(
            append("f1", vec![ev("f1-open", at, "8030", opened("cust-f"))]),
            "t".into(),
        )
        .await
        .unwrap();
    let two = append(
        "f1",
        vec![
            ev("f1-a", at, "8030", note("a")),
            ev("f1-b", at, "8030", note("b")),
        ],
    );
    ledger.append(two.clone(), "t".into()).await.unwrap();
    // A commit as (position, event id) pairs.
    let ids = |commit: &[complaint_ledger::projections::fact::OwnedFact]| {
        commit
            .iter()
            .map(|f| (f.position, f.event_id.clone()))
            .collect::<Vec<_>>()
    };
    let first = follower.recv().await.unwrap();
    assert_eq!(ids(&first), [(1, "f1-open".to_string())]);
    let second = follower.recv().await.unwrap();
    assert_eq!(
        ids(&second),
        [(2, "f1-a".to_string()), (3, "f1-b".to_string())]
    );
    // A retry writes nothing and is no commit.
    assert!(ledger.append(two, "t".into()).await.unwrap().duplicate);
    assert!(matches!(follower.try_recv(), Err(TryRecvError::Empty)));
    // Falling behind by more commits than are kept: told, not silently skipped.
    for i in 0..100 {
        ledger
            .append(
                append("f1", vec![ev(&format!("f1-x{i}"), at, "8030", note("x"))]),
                "t".into(),
            )
            .await
            .unwrap();
    }
    // Appends are answered at the durable commit; the commits reach
    // followers once the read models hold them.
    ledger.caught_up().await.unwrap();
    assert!(matches!(follower.recv().await, Err(RecvError::Lagged(_))));
    // After the lag it receives the newest commits kept, still in order.
    let next = follower.recv().await.unwrap();
    assert!(next[0].position > 4 && next[0].position <= 103);
}

#[tokio::test]
async fn a_judgement_whose_appeal_deadline_is_pending_accepts_appeals_until_a_correction_computes_it(
) {
    let mut server = TestServer::start_with(at_the_year_end_without_provisional_years).await;
    let mut client = server.ledger().await;
    open_case(&mut client, "c1", "u1").await;
    // Notified on Thursday 2026-12-31: the appeal deadline (2 working days)
    // is in 2027; the 48-hour contact deadline needs no calendar.
    let judged = Kind::ViolationJudged(pb::ViolationJudged {
        judgement_id: "j1".into(),
        agent_id: "8030".into(),
        item: 7,
        established: true,
        elements: Some(pb::ComplaintElements {
            complainant: "u1".into(),
            agent_id: "8030".into(),
            what: "承诺1-2个工作日回复未兑现".into(),
            when: Some(ts("2026-12-30T10:00:00+08:00")),
            evidence: "recording-c1".into(),
        }),
        notified_at: Some(ts("2026-12-31T10:00:00+08:00")),
        ..Default::default()
    });
    client
        .append(append(
            "c1",
            vec![ev("j1", "2026-12-31T10:00:00+08:00", "qa", judged.clone())],
        ))
        .await
        .unwrap();
    let c = scorecard_at(&server, "2026-12", "2027-01-20T12:00:00+08:00").await;
    let j = &c.judgements[0];
    let x = j.judgement.as_ref().unwrap();
    assert_eq!(local(&x.contact_deadline), "2027-01-02 10:00:00 +08:00");
    assert_eq!(x.appeal_deadline, None);
    assert!(
        x.deadline_pending.starts_with("appeal_deadline: "),
        "{}",
        x.deadline_pending
    );
    assert!(j.appeal_window_open);
    // While it is pending, an appeal is accepted whenever it comes: the
    // ledger holds no one to a deadline it could not compute.
    let Kind::ViolationJudged(mut j2) = judged.clone() else {
        unreachable!()
    };
    j2.judgement_id = "j2".into();
    let appeal = |judgement: &str, at: &str| {
        append(
            "c1",
            vec![ev(
                &format!("appeal-{judgement}"),
                at,
                "8030",
                Kind::ViolationAppealed(pb::ViolationAppealed {
                    judgement_id: judgement.into(),
                    reason: "客户未提及".into(),
                }),
            )],
        )
    };
    client
        .append(append(
            "c1",
            vec![ev(
                "j2",
                "2026-12-31T10:00:00+08:00",
                "qa",
                Kind::ViolationJudged(j2),
            )],
        ))
        .await
        .unwrap();
    client
        .append(appeal("j2", "2027-01-08T10:00:00+08:00"))
        .await
        .unwrap();

    // The calendar gains 2027: starting, the server corrects both
    // judgements, and the deadline is computed from the notice, Monday
    // 01-04 and Tuesday 01-05 being the two working days after it; the
    // window has closed by 01-20.
    restart_with_a_calendar_through_2027(&mut server).await;
    let mut c = scorecard_at(&server, "2026-12", "2027-01-20T12:00:00+08:00").await;
    for _ in 0..100 {
        if c.judgements
            .iter()
            .all(|j| j.judgement.as_ref().unwrap().appeal_deadline.is_some())
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        c = scorecard_at(&server, "2026-12", "2027-01-20T12:00:00+08:00").await;
    }
    let mut client = server.ledger().await;
    let mut corrected: Vec<String> = read_case(&mut client, "c1")
        .await
        .into_iter()
        .filter(|e| e.actor == "policy:deadlines")
        .map(|e| e.causation_id)
        .collect();
    corrected.sort();
    assert_eq!(corrected, ["j1", "j2"]);
    let x = c.judgements[0].judgement.as_ref().unwrap();
    assert_eq!(x.judgement_id, "j1");
    assert_eq!(local(&x.contact_deadline), "2027-01-02 10:00:00 +08:00");
    assert_eq!(local(&x.appeal_deadline), "2027-01-05 18:00:00 +08:00");
    assert_eq!(x.deadline_calendar, "cn-mainland@2027.test");
    assert!(!c.judgements[0].appeal_window_open);
    let v = case_at(&server, "c1", "2027-01-20T12:00:00+08:00").await;
    assert_eq!(
        v.judgements[0].judgement.as_ref().unwrap().appeal_deadline,
        x.appeal_deadline
    );
    // And the ledger now enforces it.
    let e = client
        .append(appeal("j1", "2027-01-06T10:00:00+08:00"))
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::FailedPrecondition);
    assert!(
        e.message().contains("appeal_window_closed"),
        "{}",
        e.message()
    );
}

#[tokio::test]
async fn a_retry_after_the_calendar_changed_is_still_the_same_request() {
    let mut server = TestServer::start_with(at_the_year_end_without_provisional_years).await;
    let mut client = server.ledger().await;
    open_case(&mut client, "c1", "u1").await;
    let letter = |summary: &str| {
        append(
            "c1",
            vec![ev(
                "x1",
                "2026-11-23T10:00:00+08:00",
                "8030",
                Kind::ExternalComplaintReceived(pb::ExternalComplaintReceived {
                    body: pb::OutsideBody::MarketRegulator as i32,
                    reference_number: "12315-2026-0002".into(),
                    summary: summary.into(),
                    ..Default::default()
                }),
            )],
        )
    };
    let first = client
        .append(letter("用户投诉自动订阅"))
        .await
        .unwrap()
        .into_inner();
    // Stamped again now, the retry would get a settlement deadline and a
    // newer calendar's stamp; it is the same request all the same.
    restart_with_a_calendar_through_2027(&mut server).await;
    let mut client = server.ledger().await;
    let again = client
        .append(letter("用户投诉自动订阅"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (again.first_position, again.case_version, again.duplicate),
        (first.first_position, first.case_version, true)
    );
    // Other content under the same id is still a conflict.
    let e = client.append(letter("另一件事")).await.unwrap_err();
    assert_eq!(e.code(), tonic::Code::AlreadyExists);
    let ids: Vec<String> = read_case(&mut client, "c1")
        .await
        .into_iter()
        .map(|e| e.event_id)
        .collect();
    assert_eq!(ids.len(), 2, "{ids:?}");
}
