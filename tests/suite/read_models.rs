//! Read models after a crash: the policy board on disk is written one
//! batch per commit with the log position it reached, so a `kill -9` at any
//! moment leaves it at the end of some commit; the restarted server catches
//! it up from there. Property: whatever the events and wherever the crash,
//! the caught-up board equals one folded afresh from the log
//! (`Ops.RebuildProjections`, which says whether they were identical), and
//! so does the caught-up case list (its table against a fold of the log,
//! once the server is stopped).
//!
//! Early warning keeps its state across cases in a table of its own, with
//! the position up to which what it raised is in the log: after a crash,
//! caught up from there, it must leave the warnings a fold from scratch
//! leaves.
//!
//! Each trial runs a real server, appends random events (accepted or
//! refused) from several writers, kills it at a random moment, restarts it
//! and asks for the rebuild. `COMPLAINT_LEDGER_CRASH_TRIALS` sets the
//! number of trials (default 3), `COMPLAINT_LEDGER_CRASH_SEED` the seed.

use crate::common::*;
use crate::projection_properties::{event, Op};
use complaint_ledger::ledger::SUMMARY_TABLE;
use complaint_ledger::projections::rebuild::rebuild;
use complaint_ledger::projections::summary::CaseIndex;
use complaint_ledger::proto::v1::{
    self as pb, case_event::Kind, ledger_client::LedgerClient, ops_client::OpsClient,
};
use complaint_ledger::store::{EventLog, SledLog, SledOptions};
use std::time::Duration;

/// xorshift64*: a reproducible stream of numbers from the seed.
struct Random(u64);

impl Random {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Appends random events to case `k{writer}` until the server dies.
async fn write_until_killed(url: String, writer: u8, seed: u64) -> usize {
    let mut rng = Random(seed | 1);
    let Ok(mut c) = LedgerClient::connect(url).await else {
        return 0;
    };
    let case_id = format!("k{writer}");
    let open = Op {
        case: writer,
        kind: 0,
        a: writer,
        b: 0,
        minutes: 0,
    };
    let request = |events| pb::AppendRequest {
        case_id: case_id.clone(),
        expected_version: None,
        events,
    };
    if c.append(request(vec![event(&open, 100_000)]))
        .await
        .is_err()
    {
        return 0;
    }
    let mut accepted = 1;
    for n in 0.. {
        let op = Op {
            case: writer,
            kind: 1 + rng.below(21) as u8,
            a: rng.below(256) as u8,
            b: rng.below(256) as u8,
            minutes: rng.below(20_000) as u32,
        };
        match c.append(request(vec![event(&op, n)])).await {
            Ok(_) => accepted += 1,
            Err(s) if s.code() == tonic::Code::Unavailable || s.code() == tonic::Code::Unknown => {
                return accepted
            }
            Err(s) if s.message().contains("transport") || s.message().contains("connection") => {
                return accepted
            }
            Err(_) => {} // refused by a rule: writes nothing
        }
    }
    accepted
}

/// The log's head once it stayed the same for a second (at most 20 s).
async fn settled_head(c: &mut LedgerClient<tonic::transport::Channel>) -> u64 {
    let mut head = read_all(c, pb::ReadAllRequest::default()).await.len() as u64;
    for _ in 0..20 {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let now = read_all(c, pb::ReadAllRequest::default()).await.len() as u64;
        if now == head {
            break;
        }
        head = now;
    }
    head
}

/// A real server over `dir` under six random writers, killed with SIGKILL
/// after `least` ms plus up to `spread` ms more; returns when it waited
/// and the appends accepted before the kill.
async fn crash_under_writers(
    dir: &std::path::Path,
    rng: &mut Random,
    least: u64,
    spread: u64,
) -> (Duration, usize) {
    let (mut server, url) = spawn_server(dir);
    let writers: Vec<_> = (0..6u8)
        .map(|w| tokio::spawn(write_until_killed(url.clone(), w, rng.next())))
        .collect();
    let crash_after = Duration::from_millis(least + rng.below(spread));
    tokio::time::sleep(crash_after).await;
    server.0.kill().expect("SIGKILL");
    server.0.wait().unwrap();
    let mut accepted = 0;
    for w in writers {
        accepted += w.await.unwrap_or(0);
    }
    (crash_after, accepted)
}

#[tokio::test]
async fn the_board_caught_up_after_kill_9_equals_a_rebuild_from_the_log() {
    let trials = env_number("COMPLAINT_LEDGER_CRASH_TRIALS", 3);
    let seed = env_number("COMPLAINT_LEDGER_CRASH_SEED", 0x9e37_79b9_7f4a_7c15);
    let mut rng = Random(seed);
    for trial in 0..trials {
        let dir = tempfile::tempdir().unwrap();
        let (crash_after, accepted) = crash_under_writers(dir.path(), &mut rng, 200, 1200).await;
        assert!(
            accepted > 6,
            "trial {trial} (seed {seed:#x}): only {accepted} appends before the kill"
        );

        {
            // Where the crash left the board, for the record: behind the
            // log is what the catch-up is for.
            use complaint_ledger::store::SideTable;
            let log = SledLog::open(dir.path(), &SledOptions::default()).unwrap();
            let table = EventLog::side_table(&log, complaint_ledger::ledger::BOARD_TABLE).unwrap();
            let key = complaint_ledger::projections::board_keys::key(b'm', &[], &["position"]);
            let reached = table
                .get(&key)
                .unwrap()
                .map(|v| u64::from_be_bytes(v.try_into().unwrap()))
                .unwrap_or(0);
            eprintln!(
                "trial {trial}: crash after {crash_after:?}; log head {}, board at {reached}",
                log.head().unwrap()
            );
        }
        let (server, url) = spawn_server(dir.path());
        let mut c = LedgerClient::connect(url.clone()).await.unwrap();
        // Early warning raises what fell due while the server was down as
        // soon as it starts; the rebuild is asked for once that settled.
        let settled = settled_head(&mut c).await;
        let mut ops = OpsClient::connect(url.clone()).await.unwrap();
        let mut progress = ops
            .rebuild_projections(pb::RebuildProjectionsRequest {})
            .await
            .unwrap()
            .into_inner();
        let mut last = None;
        while let Some(p) = progress.message().await.unwrap() {
            last = Some(p);
        }
        let last = last.expect("a final progress message");
        assert!(last.finished);
        assert!(
            last.identical,
            "trial {trial} (seed {seed:#x}, crash after {crash_after:?}): the caught-up board differs from a rebuild: {last:?}"
        );
        let head = read_all(&mut c, pb::ReadAllRequest::default()).await.len() as u64;
        assert!(
            settled <= last.done && last.done <= head,
            "trial {trial}: the board reached the head ({settled}..={head}): {last:?}"
        );
        assert!(last.cases >= 1 && last.cases <= 6, "{last:?}");
        // The case list caught up too: each row is its case's last version.
        let listed = pb::cases_client::CasesClient::connect(url)
            .await
            .unwrap()
            .list_cases(pb::ListCasesRequest::default())
            .await
            .unwrap()
            .into_inner()
            .cases;
        assert_eq!(listed.len() as u64, last.cases, "trial {trial}");
        for row in listed {
            let events = read_case(&mut c, &row.case_id).await;
            assert_eq!(
                row.version,
                events.last().unwrap().case_version,
                "trial {trial}: case {}",
                row.case_id
            );
        }
        // And, the server stopped, the case list's table holds exactly the
        // rows a fold of the whole log gives. (A graceful stop waits for
        // open connections: ours close as this runtime goes on running.)
        drop((c, ops, progress));
        let stopped = tokio::task::spawn_blocking(move || server.terminate());
        assert!(stopped.await.unwrap(), "trial {trial}: a clean stop");
        let log = SledLog::open(dir.path(), &SledOptions::default()).unwrap();
        let table = EventLog::side_table(&log, SUMMARY_TABLE).unwrap();
        let caught_up = CaseIndex::open(table).unwrap().digest().unwrap();
        let rebuilt = rebuild(&log, |_, _| {}).unwrap();
        assert_eq!(
            caught_up,
            rebuilt.index.digest().unwrap(),
            "trial {trial} (seed {seed:#x}): the caught-up case list differs from a rebuild"
        );
    }
}

/// A store without the read models' tables (one an older version wrote,
/// or whose tables were lost) gets them folded from the whole log at the
/// next start: the case list, the policy board and the blind index answer
/// as before.
#[tokio::test]
async fn read_model_tables_that_are_missing_are_folded_again_at_start() {
    let server = TestServer::start().await;
    let mut c = server.ledger().await;
    for i in 0..3 {
        let case = format!("m{i}");
        let mut opening = ev(
            &format!("{case}-open"),
            "2020-12-03T01:00:00+08:00",
            "8030",
            Kind::CaseOpened(pb::CaseOpened {
                customer_id: format!("cust-m{i}"),
                business_line: "qidian".into(),
                category: "功能设置/自动订阅".into(),
                customer: Some(pb::CustomerPersonalData {
                    phone: format!("1380013800{i}"),
                    ..Default::default()
                }),
                ..Default::default()
            }),
        );
        opening.event_id = format!("{case}-open");
        let promise = ev(
            &format!("{case}-p"),
            "2020-12-03T02:00:00+08:00",
            "8030",
            Kind::PromiseMade(pb::PromiseMade {
                promise_id: "p1".into(),
                description: "专员1-2个工作日回复".into(),
                due_at: Some(ts("2020-12-07T23:59:59+08:00")),
                ..Default::default()
            }),
        );
        c.append(append(&case, vec![opening, promise]))
            .await
            .expect("opened with a promise");
    }
    let answers = |server: &TestServer| {
        let url = server.url();
        async move {
            let channel = tonic::transport::Endpoint::from_shared(url)
                .unwrap()
                .connect()
                .await
                .unwrap();
            let cases = pb::cases_client::CasesClient::new(channel.clone())
                .list_cases(pb::ListCasesRequest::default())
                .await
                .unwrap()
                .into_inner()
                .cases;
            let promises = pb::policies_client::PoliciesClient::new(channel.clone())
                .list_promises(pb::ListPromisesRequest {
                    evaluate_at: Some(ts("2020-12-05T12:00:00+08:00")),
                    ..Default::default()
                })
                .await
                .unwrap()
                .into_inner()
                .promises;
            let found = pb::privacy_client::PrivacyClient::new(channel)
                .find_customer_cases(pb::FindCustomerCasesRequest {
                    by: Some(pb::find_customer_cases_request::By::Phone(
                        "+86 138 0013 8001".into(),
                    )),
                })
                .await
                .unwrap()
                .into_inner();
            (
                format!("{cases:?}"),
                format!("{promises:?}"),
                found.case_ids,
            )
        }
    };
    let before = answers(&server).await;
    assert_eq!(before.2, ["m1"]);
    assert!(before.1.contains("m2"), "{}", before.1);

    let dir = server.stop().await;
    {
        use complaint_ledger::ledger::{BLIND_TABLE, BOARD_TABLE, SUMMARY_TABLE};
        let log = complaint_ledger::store::SledLog::open(dir.path(), &Default::default()).unwrap();
        for table in [BLIND_TABLE, BOARD_TABLE, SUMMARY_TABLE] {
            assert!(log.raw().drop_tree(table).unwrap(), "{table} was there");
        }
        log.close().unwrap();
    }
    let server = TestServer::start_in(dir, |_| {}).await;
    assert_eq!(answers(&server).await, before);

    // A case list without its layout entry reads as one of an earlier
    // layout: emptied at start and folded again, to the same answers.
    let dir = server.stop().await;
    {
        use complaint_ledger::ledger::SUMMARY_TABLE;
        let log = complaint_ledger::store::SledLog::open(dir.path(), &Default::default()).unwrap();
        let table = log.raw().open_tree(SUMMARY_TABLE).unwrap();
        assert!(
            table.remove(b"mlayout").unwrap().is_some(),
            "a layout entry"
        );
        log.close().unwrap();
    }
    let server = TestServer::start_in(dir, |_| {}).await;
    assert_eq!(answers(&server).await, before);
}

/// Early warning keeps what it knows across cases in a table of its own
/// and catches up from its position: two calls of a night before a restart
/// and one after make three, warned once (the customer's contacts came
/// through the restart, on disk); a table lost is folded again from the
/// whole log without raising anything twice, and the episode stays quiet.
#[tokio::test]
async fn early_warning_counts_contacts_across_a_restart_and_a_lost_table() {
    use complaint_ledger::processes::warning_table::TABLE;
    use complaint_ledger_bench::seed_case::contact;
    let call = |id: &str, at: &str, threats: &[pb::Threat]| {
        contact(
            id,
            at,
            "8030",
            pb::Channel::Hotline,
            60,
            pb::Emotion::Angry,
            threats,
            "来电催促",
        )
    };
    let rule_count = |events: &[pb::RecordedEvent], rule: &str| {
        events
            .iter()
            .filter(|e| match e.event.as_ref().and_then(|c| c.kind.as_ref()) {
                Some(Kind::WarningRaised(w)) => w.rule == rule,
                _ => false,
            })
            .count()
    };
    let mut server = TestServer::start_with_policy().await;
    let mut c = server.ledger().await;
    let open = ev(
        "w1-open",
        "2020-12-03T00:30:00+08:00",
        "8030",
        opened("cust-w"),
    );
    let first = call("w1-c1", "2020-12-03T01:00:00+08:00", &[]);
    let second = call("w1-c2", "2020-12-03T01:20:00+08:00", &[]);
    c.append(append("w1", vec![open, first, second]))
        .await
        .expect("opened with two calls");
    server.restart().await;

    let mut c = server.ledger().await;
    let third = call("w1-c3", "2020-12-03T01:40:00+08:00", &[]);
    c.append(append("w1", vec![third]))
        .await
        .expect("third call");
    let events = wait_for_event(&server, "w1", |e| e.event_type == "WarningRaised").await;
    assert_eq!(rule_count(&events, "three_contacts_in_12h"), 1);

    // The table lost: folded again from the log at the next start.
    let dir = server.stop().await;
    {
        let log = SledLog::open(dir.path(), &SledOptions::default()).unwrap();
        assert!(log.raw().drop_tree(TABLE).unwrap(), "{TABLE} was there");
        log.close().unwrap();
    }
    let policy = config(dir.path(), true).ledger.policy;
    let server = TestServer::start_in(dir, |c| c.ledger.policy = policy).await;
    let mut c = server.ledger().await;
    // A fourth call of the same night, then a threat: once the threat is
    // warned about, the fourth call was folded before it.
    let fourth = call("w1-c4", "2020-12-03T02:00:00+08:00", &[]);
    let threat = call("w1-c5", "2020-12-03T02:10:00+08:00", &[pb::Threat::Police]);
    c.append(append("w1", vec![fourth, threat]))
        .await
        .expect("two more calls");
    let events = wait_until(&server, "w1", |events| {
        rule_count(events, "threat_on_contact") == 1
    })
    .await;
    assert_eq!(
        rule_count(&events, "three_contacts_in_12h"),
        1,
        "{:?}",
        kinds_of(&events)
    );
    let ids: std::collections::HashSet<_> = events.iter().map(|e| &e.event_id).collect();
    assert_eq!(ids.len(), events.len(), "no event twice");
    // Its position reaches the head once the warnings' own commits are
    // folded (they raise nothing).
    let mut ops = OpsClient::new(server.channel().await);
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let s = ops
            .get_stats(pb::GetStatsRequest {})
            .await
            .unwrap()
            .into_inner();
        if s.warning_position == s.head_position {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "early warning at {} of {}",
            s.warning_position,
            s.head_position
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The warnings in the log, by event id, once early warning has reached
/// the head and stayed there: its position equal to the head in polls a
/// second apart, twice in a row.
async fn settled_warnings(url: &str) -> Vec<String> {
    let mut ops = OpsClient::connect(url.to_string()).await.unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let mut steady = 0;
    let mut last_head = u64::MAX;
    while steady < 2 {
        let s = ops
            .get_stats(pb::GetStatsRequest {})
            .await
            .unwrap()
            .into_inner();
        if s.warning_position == s.head_position && s.head_position == last_head {
            steady += 1;
        } else {
            steady = 0;
        }
        last_head = s.head_position;
        assert!(
            std::time::Instant::now() < deadline,
            "early warning at {} of {}",
            s.warning_position,
            s.head_position
        );
        tokio::time::sleep(Duration::from_millis(1000)).await;
    }
    let mut c = LedgerClient::connect(url.to_string()).await.unwrap();
    let mut ids: Vec<String> = read_all(&mut c, pb::ReadAllRequest::default())
        .await
        .into_iter()
        .filter(|e| e.event_type == "WarningRaised" || e.event_type == "WarningWithdrawn")
        .map(|e| e.event_id)
        .collect();
    ids.sort();
    ids
}

/// Property: early warning caught up from its table after a `kill -9` at
/// a random moment raises exactly what a fold of the whole log from
/// scratch raises — nothing lost in the crash (a warning the crash kept
/// from the log is raised after it), nothing twice. The fresh fold runs
/// on the same log with the early-warning table dropped; it must find
/// every warning already there and append none.
#[tokio::test]
async fn early_warning_caught_up_after_kill_9_equals_a_fold_from_scratch() {
    use complaint_ledger::processes::warning_table::TABLE;
    let trials = env_number("COMPLAINT_LEDGER_CRASH_TRIALS", 3).min(2);
    let seed = env_number("COMPLAINT_LEDGER_CRASH_SEED", 0x2545_f491_4f6c_dd1d);
    let mut rng = Random(seed);
    for trial in 0..trials {
        let dir = tempfile::tempdir().unwrap();
        let (crash_after, _) = crash_under_writers(dir.path(), &mut rng, 300, 1200).await;

        let (server, url) = spawn_server(dir.path());
        let caught_up = settled_warnings(&url).await;
        let stopped = tokio::task::spawn_blocking(move || server.terminate());
        assert!(stopped.await.unwrap(), "trial {trial}: a clean stop");
        {
            let log = SledLog::open(dir.path(), &SledOptions::default()).unwrap();
            assert!(log.raw().drop_tree(TABLE).unwrap(), "{TABLE} was there");
            log.close().unwrap();
        }
        let (server, url) = spawn_server(dir.path());
        let fresh = settled_warnings(&url).await;
        assert!(
            !caught_up.is_empty(),
            "trial {trial} (seed {seed:#x}): the writes raised no warning"
        );
        assert_eq!(
            caught_up, fresh,
            "trial {trial} (seed {seed:#x}, crash after {crash_after:?}): a fold from scratch raised what the caught-up process had not"
        );
        let stopped = tokio::task::spawn_blocking(move || server.terminate());
        assert!(stopped.await.unwrap(), "trial {trial}: a clean stop");
    }
}
