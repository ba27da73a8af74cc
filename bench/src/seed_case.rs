//! Case 124545 of seed 000 (the auto-subscription complaint) as events, in
//! the order it happened. The tests replay it as the acceptance story; the
//! benchmark appends copies of it ([`copy_of`]) to measure what a real
//! complaint case costs in memory, which notes alone would understate.

use complaint_ledger::proto::v1::{self as pb, case_event::Kind, Channel};

/// An RFC 3339 time as a protobuf timestamp (panics on a malformed one:
/// the story's times are constants).
pub fn ts(s: &str) -> prost_types::Timestamp {
    complaint_ledger::time::parse_rfc3339(s).unwrap_or_else(|| panic!("bad time {s}"))
}

/// A proposed event at `at`, acting for agent `agent`.
pub fn ev(id: &str, at: &str, agent: &str, kind: Kind) -> pb::ProposedEvent {
    pb::ProposedEvent {
        event_id: id.to_string(),
        occurred_at: Some(ts(at)),
        acted_for_agent: agent.to_string(),
        correlation_id: String::new(),
        causation_id: String::new(),
        event: Some(pb::CaseEvent { kind: Some(kind) }),
        imported: false,
    }
}

pub const CASE: &str = "124545";

#[allow(clippy::too_many_arguments)]
pub fn contact(
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
            party: None,
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

pub fn sms_callback(id: &str, at: &str, promise: &str) -> pb::ProposedEvent {
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

pub fn demand(
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
            required_party: None,
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
pub fn promise(id: &str, at: &str, agent: &str, contact: &str, text: &str) -> pb::ProposedEvent {
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
pub fn story() -> Vec<pb::ProposedEvent> {
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
                kind: Some(Kind::ContactLogged(pb::ContactLogged { party: None,
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

/// The story as another case of another customer: event ids (and the one
/// a correction names) prefixed with `prefix`, the customer `cust-<prefix>`.
pub fn copy_of(prefix: &str) -> Vec<pb::ProposedEvent> {
    story()
        .into_iter()
        .map(|mut e| {
            e.event_id = format!("{prefix}-{}", e.event_id);
            match e.event.as_mut().and_then(|x| x.kind.as_mut()) {
                Some(Kind::EventCorrected(c)) => {
                    c.corrected_event_id = format!("{prefix}-{}", c.corrected_event_id)
                }
                Some(Kind::CaseOpened(o)) => o.customer_id = format!("cust-{prefix}"),
                _ => {}
            }
            e
        })
        .collect()
}
