//! Property: for any sequence of appends (accepted or refused), the
//! projections the ledger maintains incrementally are identical to those
//! rebuilt from the log alone, and to those a restarted ledger replays.

use complaint_ledger::ledger::{Ledger, LedgerOptions};
use complaint_ledger::projections::rebuild::rebuild;
use complaint_ledger::projections::{board_keys, board_store};
use complaint_ledger::proto::v1::{self as pb, case_event::Kind, Channel};
use proptest::prelude::*;

/// One random append: which case, which kind of event, and small numbers
/// that pick its ids, times and values.
#[derive(Debug, Clone)]
pub(crate) struct Op {
    pub case: u8,
    pub kind: u8,
    pub a: u8,
    pub b: u8,
    pub minutes: u32,
}

fn op() -> impl Strategy<Value = Op> {
    (0u8..3, 1u8..22, any::<u8>(), any::<u8>(), 0u32..20_000).prop_map(
        |(case, kind, a, b, minutes)| Op {
            case,
            kind,
            a,
            b,
            minutes,
        },
    )
}

pub(crate) fn event(op: &Op, n: usize) -> pb::ProposedEvent {
    let base = complaint_ledger::time::parse_rfc3339("2020-12-01T08:00:00+08:00").unwrap();
    let at = prost_types::Timestamp {
        seconds: base.seconds + i64::from(op.minutes) * 60,
        nanos: 0,
    };
    let channels = [
        Channel::Hotline,
        Channel::Qq,
        Channel::Sms,
        Channel::OutboundCall,
    ];
    let channel = channels[op.b as usize % 4] as i32;
    let contact = format!("c{}", op.a % 4);
    let promise = format!("p{}", op.a % 3);
    let ticket = format!("t{}", op.a % 2);
    let judgement = format!("j{}", op.a % 3);
    let kind = match op.kind {
        0 => Kind::CaseOpened(pb::CaseOpened {
            customer_id: format!("u{}", op.a % 2),
            business_line: "qidian".into(),
            category: "功能设置".into(),
            ..Default::default()
        }),
        1 => Kind::ContactLogged(pb::ContactLogged {
            contact_id: contact,
            channel,
            direction: if op.b % 5 == 0 { 2 } else { 1 },
            agent_id: format!("80{}", op.b % 3),
            started_at: Some(at),
            threats: if op.b % 7 == 0 {
                vec![pb::Threat::Police as i32]
            } else {
                vec![]
            },
            ..Default::default()
        }),
        2 => Kind::DemandRecorded(pb::DemandRecorded {
            demand_id: format!("d{}", op.a % 3),
            description: "电话回复".into(),
            required_channel: Channel::OutboundCall as i32,
            refused_channels: vec![Channel::Sms as i32],
            window: (op.b % 2 == 0).then_some(pb::LocalTimeWindow {
                from_minute: 1020,
                to_minute: 1440,
            }),
            ..Default::default()
        }),
        3 => Kind::PromiseMade(pb::PromiseMade {
            promise_id: promise,
            description: "1-2个工作日".into(),
            working_days: u32::from(op.b % 3),
            due_at: (op.b % 3 == 0).then_some(prost_types::Timestamp {
                seconds: at.seconds + 86_400,
                nanos: 0,
            }),
            channel: if op.b % 2 == 0 {
                Channel::OutboundCall as i32
            } else {
                0
            },
            ..Default::default()
        }),
        4 => Kind::TicketSubmitted(pb::TicketSubmitted {
            ticket_id: ticket,
            content: "x".into(),
            ..Default::default()
        }),
        5 => Kind::TicketRejected(pb::TicketRejected {
            ticket_id: ticket,
            reason: "不详细".into(),
            ..Default::default()
        }),
        6 => Kind::TicketAppended(pb::TicketAppended {
            ticket_id: ticket,
            addition: "y".into(),
            ..Default::default()
        }),
        7 => Kind::TicketResultGiven(pb::TicketResultGiven {
            ticket_id: ticket,
            result: "r".into(),
            finality: pb::ResultFinality::Final as i32,
            ..Default::default()
        }),
        8 => Kind::CallbackCompleted(pb::CallbackCompleted {
            callback_id: format!("cb{n}"),
            channel,
            reached: op.b % 4 != 0,
            customer_response: i32::from(op.b % 4),
            promise_id: if op.b % 3 == 0 {
                String::new()
            } else {
                promise
            },
            ticket_id: if op.b % 3 == 0 { ticket } else { String::new() },
            dissatisfied_contact_id: if op.b % 2 == 0 {
                contact
            } else {
                String::new()
            },
            resolved: op.b % 2 == 0,
            ..Default::default()
        }),
        9 => Kind::DissatisfactionClassified(pb::DissatisfactionClassified {
            contact_id: contact,
            needs_survey: op.b % 2 == 0,
            needs_callback: op.b % 3 != 0,
            factor: i32::from(op.b % 13) + 1,
        }),
        10 => Kind::SurveyDone(pb::SurveyDone {
            contact_id: contact,
            resolved: op.b % 2 == 0,
            satisfied: op.b % 3 == 0,
            ..Default::default()
        }),
        11 => Kind::Escalated(pb::Escalated {
            from_level: i32::from(op.b % 4) + 1,
            to_level: i32::from(op.b % 4) + 2,
            reason: "上报".into(),
            ..Default::default()
        }),
        12 => Kind::WarningRaised(pb::WarningRaised {
            warning_id: format!("w{n}"),
            rule: "manual".into(),
            reason: "r".into(),
            required_level: 2,
            ..Default::default()
        }),
        13 => Kind::ViolationJudged(pb::ViolationJudged {
            judgement_id: judgement,
            agent_id: "8030".into(),
            item: u32::from(op.b % 15) + 1,
            established: op.b % 4 != 0,
            elements: Some(pb::ComplaintElements {
                complainant: "u".into(),
                agent_id: "8030".into(),
                what: "w".into(),
                when: Some(at),
                evidence: "e".into(),
            }),
            notified_at: Some(at),
            ..Default::default()
        }),
        14 => Kind::ViolationAppealed(pb::ViolationAppealed {
            judgement_id: judgement,
            reason: "r".into(),
        }),
        15 => Kind::AppealDecided(pb::AppealDecided {
            judgement_id: judgement,
            upheld: op.b % 2 == 0,
            reason: "r".into(),
        }),
        16 => Kind::EventCorrected(Box::new(pb::EventCorrected {
            corrected_event_id: format!("e{}-{}", op.case, op.a as usize % (n + 1)),
            reason: "更正".into(),
            replacement: Some(Box::new(pb::CaseEvent {
                kind: Some(Kind::PromiseMade(pb::PromiseMade {
                    promise_id: promise,
                    description: "更正".into(),
                    working_days: 1,
                    ..Default::default()
                })),
            })),
        })),
        17 => Kind::CaseResolved(pb::CaseResolved {
            resolution: "ok".into(),
            customer_accepted: op.b % 2 == 0,
        }),
        18 if op.b % 3 == 0 => Kind::CaseClosed(pb::CaseClosed::default()),
        18 => Kind::NoteAdded(pb::NoteAdded { text: "n".into() }),
        19 => Kind::CaseReopened(pb::CaseReopened { reason: "r".into() }),
        20 => Kind::ExternalComplaintReceived(pb::ExternalComplaintReceived {
            body: pb::OutsideBody::MarketRegulator as i32,
            reference_number: format!("ref{}", op.a % 2),
            ..Default::default()
        }),
        _ => Kind::ExternalComplaintAnswered(pb::ExternalComplaintAnswered {
            reference_number: format!("ref{}", op.a % 2),
            answer: "a".into(),
            resolved: op.b % 2 == 0,
        }),
    };
    pb::ProposedEvent {
        event_id: format!("e{}-{n}", op.case),
        occurred_at: Some(at),
        event: Some(pb::CaseEvent { kind: Some(kind) }),
        ..Default::default()
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn incremental_projections_equal_rebuilt_ones(ops in prop::collection::vec(op(), 1..60)) {
        let dir = tempfile::tempdir().unwrap();
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let opts = LedgerOptions::default();
        let (ledger, _) = Ledger::open(dir.path(), &opts).unwrap();
        let mut accepted = 0;
        rt.block_on(async {
            // Every case opens first, so most later events have a case to land in.
            for case in 0..3u8 {
                let open = Op { case, kind: 0, a: case, b: 0, minutes: 0 };
                ledger.append(pb::AppendRequest {
                    case_id: format!("k{case}"),
                    expected_version: None,
                    events: vec![event(&open, 10_000 + case as usize)],
                }, "test".into()).await.unwrap();
            }
            for (n, op) in ops.iter().enumerate() {
                let r = ledger.append(pb::AppendRequest {
                    case_id: format!("k{}", op.case),
                    expected_version: None,
                    events: vec![event(op, n)],
                }, "test".into()).await;
                accepted += usize::from(r.is_ok());
            }
            // Appends are answered at the durable commit: the read models
            // hold them once caught up.
            ledger.caught_up().await.unwrap();
        });
        let within = opts.policy.escalate_within_nanos();
        let incremental = ledger.board().entries().unwrap();
        let index_digest = ledger.index().digest().unwrap();
        let rebuilt = rebuild(ledger.log().as_ref(), |_, _| {}).unwrap();
        prop_assert_eq!(rebuilt.records, 3 + accepted as u64);
        // The board on disk holds exactly the entries of a board folded in
        // memory from the whole log.
        let folded = board_keys::entries(&rebuilt.board, within);
        prop_assert_eq!(&incremental, &folded);
        prop_assert_eq!(ledger.board().digest().unwrap(), board_store::digest(&folded));
        prop_assert_eq!(&index_digest, &rebuilt.index.digest().unwrap());
        rt.block_on(ledger.shutdown());
        drop(ledger);
        // A restart replays the log into the same projections.
        let (reopened, _) = Ledger::open(dir.path(), &opts).unwrap();
        prop_assert_eq!(&reopened.board().entries().unwrap(), &incremental);
        prop_assert_eq!(reopened.index().digest().unwrap(), index_digest);
        rt.block_on(reopened.shutdown());
    }
}
