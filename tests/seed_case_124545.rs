//! The acceptance story: the auto-subscription complaint of case 124545
//! (seed 000), replayed end to end through the real gRPC API, and the
//! projection showing what the incident report found by hand.

mod common;

use common::*;
use complaint_ledger::proto::v1::{
    self as pb, case_event::Kind, BreachReason, Channel, PromiseState,
};

const CASE: &str = "124545";

#[allow(clippy::too_many_arguments)]
fn contact(
    id: &str,
    at: &str,
    agent: &str,
    channel: Channel,
    secs: u32,
    emotion: pb::Emotion,
    threats: &[pb::Threat],
    summary: &str,
) -> pb::ProposedEvent {
    ev(
        &format!("{CASE}-{id}"),
        at,
        agent,
        Kind::ContactLogged(pb::ContactLogged {
            contact_id: id.into(),
            channel: channel as i32,
            direction: pb::Direction::Inbound as i32,
            agent_id: agent.into(),
            started_at: Some(ts(at)),
            duration_seconds: secs,
            silences: vec![],
            ended_by: pb::EndedBy::Customer as i32,
            summary: summary.into(),
            customer_emotion: emotion as i32,
            threats: threats.iter().map(|t| *t as i32).collect(),
        }),
    )
}

fn sms_callback(id: &str, at: &str, promise: &str) -> pb::ProposedEvent {
    ev(
        &format!("{CASE}-{id}"),
        at,
        "second-line",
        Kind::CallbackCompleted(pb::CallbackCompleted {
            callback_id: id.into(),
            channel: Channel::Sms as i32,
            agent_id: String::new(),
            reached: true,
            outcome: "短信: 请您提供下不是您操作订阅的订阅记录截图".into(),
            customer_response: pb::CustomerResponse::Refused as i32,
            promise_id: promise.into(),
            ticket_id: "t01".into(),
            demand_ids: vec![],
            ..Default::default()
        }),
    )
}

fn demand(
    id: &str,
    at: &str,
    agent: &str,
    contact: &str,
    text: &str,
    due: Option<&str>,
    window: Option<(u32, u32)>,
) -> pb::ProposedEvent {
    ev(
        &format!("{CASE}-{id}"),
        at,
        agent,
        Kind::DemandRecorded(pb::DemandRecorded {
            demand_id: id.into(),
            contact_id: contact.into(),
            description: text.into(),
            required_channel: Channel::OutboundCall as i32,
            refused_channels: vec![Channel::Sms as i32],
            due_by: due.map(ts),
            window: window.map(|(from_minute, to_minute)| pb::LocalTimeWindow {
                from_minute,
                to_minute,
            }),
        }),
    )
}

/// A "1-2 working days" promise: the server computes its due time.
fn promise(id: &str, at: &str, agent: &str, contact: &str, text: &str) -> pb::ProposedEvent {
    ev(
        &format!("{CASE}-{id}"),
        at,
        agent,
        Kind::PromiseMade(pb::PromiseMade {
            promise_id: id.into(),
            contact_id: contact.into(),
            agent_id: agent.into(),
            description: text.into(),
            channel: Channel::Unspecified as i32,
            working_days: 2,
            ..Default::default()
        }),
    )
}

/// The case as the incident report tells it, in the order it happened.
fn story() -> Vec<pb::ProposedEvent> {
    use pb::Emotion::*;
    use pb::Threat;
    vec![
        ev(&format!("{CASE}-open"), "2020-12-03T01:24:30+08:00", "8030", Kind::CaseOpened(pb::CaseOpened {
            customer_id: "cust-5c1e9a".into(),
            business_line: "qidian".into(),
            category: "功能设置/自动订阅".into(),
            disputed_items: vec![
                pb::DisputedItem { title: "《我是神豪我怕谁》".into(), detail: "151-225章 233-237章 242-243章 254章 271章 293章 426章 455-502章 跳章自动订阅".into() },
                pb::DisputedItem { title: "《超级电信帝国》".into(), detail: "未订阅VIP章节却出现在自动订阅列表".into() },
            ],
            summary: "用户称未开启自动订阅却被自动订阅, 订阅的书籍无法删除".into(),
            customer: None,
            utc_offset_minutes: 480,
        })),
        {
            let mut c = contact("c01", "2020-12-03T01:24:30+08:00", "8030", Channel::Hotline, 900, Dissatisfied, &[], "询问自动订阅为何不能删除; 客服没声音, 用户呼叫, 直到挂断电话");
            if let Some(Kind::ContactLogged(x)) = c.event.as_mut().and_then(|e| e.kind.as_mut()) {
                x.ended_by = pb::EndedBy::LineDropped as i32;
                x.silences.push(pb::Silence { offset_seconds: 870, duration_seconds: 30, silent_party: "agent".into() });
            }
            c
        },
        {
            let mut c = contact("c02", "2020-12-03T01:49:53+08:00", "8030", Channel::Hotline, 60, Angry, &[], "第二通电话, 用户一直询问有人没, 客服没声音");
            if let Some(Kind::ContactLogged(x)) = c.event.as_mut().and_then(|e| e.kind.as_mut()) {
                x.silences.push(pb::Silence { offset_seconds: 0, duration_seconds: 53, silent_party: "agent".into() });
            }
            c
        },
        contact("c03", "2020-12-03T01:51:29+08:00", "8030", Channel::Hotline, 1200, Angry, &[], "自动订阅的书籍为什么不能删除; 询问何时回复, 电话还是短信; 要求电话回复"),
        demand("d01", "2020-12-03T01:51:29+08:00", "8030", "c03", "需要电话回复, 短信讲不清楚", None, None),
        promise("p01", "2020-12-03T01:51:29+08:00", "8030", "c03", "1-2个工作日(节假日顺延)会有专员回复"),
        ev(&format!("{CASE}-t01-submit"), "2020-12-03T02:10:00+08:00", "8030", Kind::TicketSubmitted(pb::TicketSubmitted {
            ticket_id: "t01".into(),
            contact_id: "c03".into(),
            team: "qidian-second-line".into(),
            content: "用户反馈自动订阅问题".into(),
            ..Default::default()
        })),
        ev(&format!("{CASE}-t01-reject"), "2020-12-03T10:00:00+08:00", "", Kind::TicketRejected(pb::TicketRejected {
            ticket_id: "t01".into(),
            reason: "递交记录内容不详细".into(),
            missing_fields: vec!["demands".into(), "disputed_items".into(), "customer_emotion".into()],
        })),
        contact("c04", "2020-12-03T21:10:02+08:00", "8016", Channel::Hotline, 1500, Angry, &[], "不点击也能自动订阅; 提供《超级电信帝国》; 反复询问回访时间"),
        ev(&format!("{CASE}-t01-append"), "2020-12-03T21:40:00+08:00", "8016", Kind::TicketAppended(pb::TicketAppended {
            ticket_id: "t01".into(),
            addition: "用户提供书名《超级电信帝国》, 未订阅VIP章节却在自动订阅列表".into(),
            demand_ids: vec![],
            added_fields: vec!["disputed_items".into()],
        })),
        ev(&format!("{CASE}-t01-result"), "2020-12-08T15:00:00+08:00", "", Kind::TicketResultGiven(pb::TicketResultGiven {
            ticket_id: "t01".into(),
            result: "请您提供下不是您操作订阅的订阅记录截图".into(),
            finality: pb::ResultFinality::Changeable as i32,
            given_by: "qidian".into(),
        })),
        sms_callback("cb01", "2020-12-08T16:00:00+08:00", "p01"),
        contact("c05", "2020-12-08T21:29:00+08:00", "8021", Channel::Hotline, 600, Angry, &[], "收到短信回复, 用户不满意"),
        demand("d02", "2020-12-08T21:29:00+08:00", "8021", "c05", "最晚星期五电话回访得到满意的答复, 否则上公司找领导", Some("2020-12-11T23:59:59+08:00"), None),
        ev(&format!("{CASE}-c05-dissatisfied"), "2020-12-08T21:40:00+08:00", "8021", Kind::DissatisfactionClassified(pb::DissatisfactionClassified {
            contact_id: "c05".into(),
            needs_survey: true,
            needs_callback: true,
            factor: pb::DissatisfactionFactor::CallbackResult as i32,
        })),
        sms_callback("cb02", "2020-12-09T12:00:00+08:00", ""),
        contact("c06", "2020-12-09T19:51:17+08:00", "8012", Channel::Hotline, 700, Dissatisfied, &[], "解释回访结果(提供截图)的含义; 用户称90多张截图强人所难"),
        demand("d03", "2020-12-09T19:51:17+08:00", "8012", "c06", "最晚星期五5点打电话给个满意的说法; 不想再收到此类短信", Some("2020-12-11T17:00:00+08:00"), None),
        ev(&format!("{CASE}-c05-backfill"), "2020-12-09T20:05:00+08:00", "8012", Kind::EventCorrected(Box::new(pb::EventCorrected {
            corrected_event_id: format!("{CASE}-c05"),
            reason: "12-08的记录不详细, 8012补全".into(),
            replacement: Some(Box::new(pb::CaseEvent {
                kind: Some(Kind::ContactLogged(pb::ContactLogged {
                    contact_id: "c05".into(),
                    channel: Channel::Hotline as i32,
                    direction: pb::Direction::Inbound as i32,
                    agent_id: "8021".into(),
                    started_at: Some(ts("2020-12-08T21:29:00+08:00")),
                    duration_seconds: 600,
                    ended_by: pb::EndedBy::Customer as i32,
                    summary: "收到短信回复, 绝对不满意; 《我是神豪我怕谁》151-225 233-237 242-243 254 271 293 426 455-502 跳章订阅怎么解释; 最晚星期五电话回访, 否则下周上公司找领导".into(),
                    customer_emotion: Angry as i32,
                    threats: vec![Threat::Visit as i32],
                    silences: vec![],
                })),
            })),
        }))),
        sms_callback("cb03", "2020-12-10T12:00:00+08:00", ""),
        contact("c07", "2020-12-10T22:01:51+08:00", "8030", Channel::Hotline, 1100, Angry, &[Threat::Visit], "对9号10号的短信不满意; 要求晚上5点以后打电话告知结果, 不要短信"),
        demand("d04", "2020-12-10T22:01:51+08:00", "8030", "c07", "晚上5点以后打电话告知结果, 不要短信", Some("2020-12-11T23:59:59+08:00"), Some((17 * 60, 24 * 60))),
        promise("p02", "2020-12-10T22:01:51+08:00", "8030", "c07", "帮您反馈, 1-2个工作日回复"),
        contact("c08", "2020-12-11T18:41:26+08:00", "8022", Channel::Hotline, 800, Angry, &[Threat::Visit], "星期二打电话, 星期五还没收到电话回复; 询问领导上班时间, 要上门"),
        contact("c09", "2020-12-11T21:25:25+08:00", "8028", Channel::Hotline, 200, Dissatisfied, &[], "询问双休日客服经理是否上班"),
        contact("c10", "2020-12-12T10:33:57+08:00", "8020", Channel::Hotline, 120, Angry, &[Threat::Visit], "用户在公司门口, 要求出来一人接待"),
        contact("c11", "2020-12-12T10:45:00+08:00", "8020", Channel::Visit, 180, Angry, &[Threat::Police, Threat::Visit], "用户已到起点总部4幢4层, 要求出来一人接待, 不然报警"),
        ev(&format!("{CASE}-escalate"), "2020-12-12T10:50:00+08:00", "8020", Kind::Escalated(pb::Escalated {
            from_level: pb::EscalationLevel::Agent as i32,
            to_level: pb::EscalationLevel::ClientCompany as i32,
            reason: "用户在总部威胁报警, 立即上报起点, 由起点代为接待".into(),
            to_whom: "起点".into(),
            warning_id: String::new(),
        })),
    ]
}

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
