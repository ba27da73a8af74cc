//! The background scrub: a store damaged while the server runs is found
//! by the next pass, shown in `Ops.GetStats`, and stops appends — never
//! absorbed.

use crate::common::*;
use complaint_ledger::proto::v1::{self as pb, ops_client::OpsClient};
use complaint_ledger::store::EventLog;
use prost::Message;
use std::time::{Duration, Instant};

async fn scrub_status(server: &TestServer) -> pb::ScrubStatus {
    OpsClient::new(server.channel().await)
        .get_stats(pb::GetStatsRequest {})
        .await
        .unwrap()
        .into_inner()
        .scrub
        .unwrap_or_default()
}

/// Asks `GetStats` until `done` holds of the scrub's status (up to 20 s).
async fn scrub_until(
    server: &TestServer,
    done: impl Fn(&pb::ScrubStatus) -> bool,
) -> pb::ScrubStatus {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let s = scrub_status(server).await;
        if done(&s) {
            return s;
        }
        assert!(Instant::now() < deadline, "scrub status after 20 s: {s:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn damage_found_while_running_stops_appends_and_is_reported() {
    let server = TestServer::start_with(|c| {
        c.scrub_interval = Some(Duration::from_millis(300));
        c.http_listen = Some("127.0.0.1:0".parse().unwrap());
    })
    .await;
    let http = server
        .server
        .as_ref()
        .unwrap()
        .http_addr
        .unwrap()
        .to_string();
    let metric = |name: &str| {
        let (_, body) = http_get(&http, "/metrics");
        body.lines()
            .find_map(|l| l.strip_prefix(&format!("{name} ")).map(str::to_string))
            .unwrap_or_else(|| panic!("{name} not in {body}"))
    };
    let mut c = server.ledger().await;
    open_case(&mut c, "s1", "cust-s").await;
    add_notes(&mut c, &["s1"], 4).await;

    // Passes go on while nothing is wrong.
    let s = scrub_until(&server, |s| s.passes >= 2).await;
    assert!(s.enabled);
    assert_eq!(s.last_pass_records, 5);
    assert!(s.last_pass_at.is_some());
    assert!(s.failure.is_empty(), "{s:?}");
    assert_eq!(metric("complaint_ledger_scrub_damage_found"), "0");
    assert!(
        metric("complaint_ledger_scrub_passes_total")
            .parse::<u64>()
            .unwrap()
            >= 2
    );

    // Position 3 is altered on disk under the running server.
    let log = server.server.as_ref().unwrap().ledger.log().clone();
    let mut rec = pb::StoredRecord::decode(log.read(3).unwrap().unwrap().as_slice()).unwrap();
    rec.actor = "someone else".into();
    log.tamper_record(3, Some(rec.encode_to_vec())).unwrap();

    let s = scrub_until(&server, |s| !s.failure.is_empty()).await;
    assert!(
        s.failure.contains("position 3") && s.failure.contains("altered"),
        "{}",
        s.failure
    );
    assert_eq!(metric("complaint_ledger_scrub_damage_found"), "1");
    // From then on, appends are refused, saying why.
    assert_appends_refused(&server, "s1").await;
    // And the scrub has stopped: no further pass counts.
    let passes = s.passes;
    tokio::time::sleep(Duration::from_millis(900)).await;
    assert_eq!(scrub_status(&server).await.passes, passes);
}

/// The scrub finds record `position` altered, and appends to `case` are
/// refused from then on.
async fn found_altered_and_refusing(server: &TestServer, position: u64, case: &str) {
    let s = scrub_until(server, |s| !s.failure.is_empty()).await;
    assert!(
        s.failure
            .starts_with(&format!("position {position}: record altered")),
        "{}",
        s.failure
    );
    assert_appends_refused(server, case).await;
}

/// An append to `case` after the scrub found damage: refused, saying why.
async fn assert_appends_refused(server: &TestServer, case: &str) {
    let mut c = server.ledger().await;
    let e = c
        .append(append(
            case,
            vec![ev(
                &format!("{case}-after"),
                "2020-12-03T03:00:00+08:00",
                "8030",
                note("x"),
            )],
        ))
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::Unavailable, "{e:?}");
    assert!(
        e.message().contains("scrub found the store damaged"),
        "{}",
        e.message()
    );
}

#[tokio::test]
async fn the_scrub_is_off_unless_configured() {
    let server = TestServer::start().await;
    let s = scrub_status(&server).await;
    assert!(!s.enabled && s.passes == 0, "{s:?}");
}

/// Alters record `position` of a stopped server's store (its actor), the
/// Merkle tree left as it was: damage only a full check of that record
/// finds.
fn alter_offline(dir: &std::path::Path, position: u64) {
    use complaint_ledger::store::{SledLog, SledOptions};
    let log = SledLog::open(dir, &SledOptions::default()).unwrap();
    let mut rec =
        pb::StoredRecord::decode(log.read(position).unwrap().unwrap().as_slice()).unwrap();
    rec.actor = "someone else".into();
    log.tamper_record(position, Some(rec.encode_to_vec()))
        .unwrap();
    log.close().unwrap();
}

/// A server's configuration with the scrub on (its first pass due only
/// after an hour, unless the start relied on the verified-through mark).
fn scrubbing(dir: &std::path::Path) -> complaint_ledger::config::ServerConfig {
    let mut c = config(dir, false);
    c.scrub_interval = Some(Duration::from_secs(3600));
    c
}

/// Starts a server on `dir`, appends `notes` notes to case `id` (opening
/// it first when `open`), and stops it.
async fn write_and_stop(dir: &std::path::Path, id: &str, notes: usize, open: bool) {
    let server = complaint_ledger::api::server::start(scrubbing(dir))
        .await
        .unwrap();
    let mut c = complaint_ledger::proto::v1::ledger_client::LedgerClient::connect(server.url())
        .await
        .unwrap();
    if open {
        open_case(&mut c, id, "cust-v").await;
    }
    let head = server.ledger.committed();
    for i in 0..notes {
        let e = ev(
            &format!("{id}-{head}-{i}"),
            "2020-12-03T02:00:00+08:00",
            "8030",
            note("a note"),
        );
        c.append(append(id, vec![e])).await.unwrap();
    }
    server.stop().await.unwrap();
}

/// The start verifies fully what was written since the last full
/// verification, and checks the rest light; the scrub's first pass, right
/// after such a start, verifies everything again. Damage under the mark is
/// found by that pass (appends stop), damage above it by the start itself,
/// and `--verify-all-at-start` (or a server without the scrub) finds both
/// at start.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_start_verifies_what_is_new_and_the_scrub_all_of_it() {
    let dir = tempfile::tempdir().unwrap();
    // Positions 1..=5; the next start verifies them all and marks 5.
    write_and_stop(dir.path(), "v1", 4, true).await;
    write_and_stop(dir.path(), "v1", 3, false).await; // 6..=8

    // Damage under the mark (position 3): the start checks it light and
    // serves; the scrub's first pass finds it at once and stops appends.
    alter_offline(dir.path(), 3);
    let strict = {
        let mut c = scrubbing(dir.path());
        c.ledger.verify_all_at_start = true;
        c
    };
    let refused = complaint_ledger::api::server::start(strict)
        .await
        .err()
        .expect("a full start refuses the damaged store");
    assert!(format!("{refused:#}").contains("position 3"), "{refused:#}");
    let no_scrub = {
        let mut c = scrubbing(dir.path());
        c.scrub_interval = None;
        c
    };
    let refused = complaint_ledger::api::server::start(no_scrub)
        .await
        .err()
        .expect("without the scrub the start verifies everything");
    assert!(format!("{refused:#}").contains("position 3"), "{refused:#}");

    let server = TestServer::start_in(dir, |c| {
        c.scrub_interval = Some(Duration::from_secs(3600));
    })
    .await;
    found_altered_and_refusing(&server, 3, "v1").await;
    server.stop().await;

    // Damage above the mark: the start itself refuses, as before.
    let dir = tempfile::tempdir().unwrap();
    write_and_stop(dir.path(), "v2", 4, true).await;
    write_and_stop(dir.path(), "v2", 3, false).await; // marks 5, writes 6..=8
    alter_offline(dir.path(), 7);
    let refused = complaint_ledger::api::server::start(scrubbing(dir.path()))
        .await
        .err()
        .expect("damage written after the mark is found at start");
    assert!(
        format!("{refused:#}").contains("position 7: record altered"),
        "{refused:#}"
    );
}

/// A start that relied on the mark still hands the writer each open
/// case's last hash: the next append chains to it, and a later full
/// verification passes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn appends_after_a_light_start_chain_correctly() {
    let dir = tempfile::tempdir().unwrap();
    write_and_stop(dir.path(), "w1", 4, true).await;
    write_and_stop(dir.path(), "w1", 2, false).await;
    write_and_stop(dir.path(), "w1", 2, false).await;
    let server = TestServer::start_in(dir, |c| {
        c.scrub_interval = Some(Duration::from_secs(3600));
    })
    .await;
    let s = scrub_until(&server, |s| s.passes >= 1).await;
    assert!(s.failure.is_empty(), "{s:?}");
    assert_eq!(s.last_pass_records, 9);
    let dir = server.stop().await;
    let log = complaint_ledger::store::SledLog::open(
        dir.path(),
        &complaint_ledger::store::SledOptions::default(),
    )
    .unwrap();
    let report = complaint_ledger::audit::verify::verify_store(&log, |_, _| {}).unwrap();
    assert_eq!(report.records, 9);
}

/// The PII-access log's chain is the scrub's too: a start checks only its
/// head against the integrity witness, so an entry altered in the middle
/// is found by the next pass, which stops appends and names the entry.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_access_log_entry_altered_while_running_is_found_by_the_scrub() {
    let server = TestServer::start_with(|c| {
        c.scrub_interval = Some(Duration::from_millis(300));
    })
    .await;
    let mut c = server.ledger().await;
    open_case(&mut c, "s9", "cust-s").await;
    let ledger = server.server.as_ref().unwrap().ledger.clone();
    for actor in ["agent-1", "agent-2", "agent-3"] {
        ledger
            .access_log()
            .record(pb::PiiAccess {
                actor: actor.into(),
                case_id: "s9".into(),
                ..Default::default()
            })
            .unwrap();
    }
    scrub_until(&server, |s| s.passes >= 1).await;

    let table = ledger.log().side_table("pii-access").unwrap();
    let key = 2u64.to_be_bytes();
    let mut e = pb::PiiAccess::decode(table.get(&key).unwrap().unwrap().as_slice()).unwrap();
    e.actor = "someone else".into();
    table.insert(&key, &e.encode_to_vec()).unwrap();

    let s = scrub_until(&server, |s| !s.failure.is_empty()).await;
    assert!(
        s.failure.contains("PII-access log entry 2 was altered"),
        "{s:?}"
    );
    assert_appends_refused(&server, "s9").await;
}

/// Tail passes move the verified-through mark to the head between full
/// passes: a restart then verifies only what was written since the last
/// one. Shown by damage: a record written after the last full
/// verification, which a start would have verified (see above: "damage
/// above the mark"), is under the mark once a tail pass has run — the
/// start does not read it, and the scrub's full pass right after finds it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tail_passes_keep_the_mark_near_the_head() {
    let server = TestServer::start_with(|c| {
        c.scrub_interval = Some(Duration::from_secs(3600));
        c.verify_tail_interval = Some(Duration::from_millis(200));
        c.http_listen = Some("127.0.0.1:0".parse().unwrap());
    })
    .await;
    let http = server.server.as_ref().unwrap().http_addr.unwrap();
    let mut c = server.ledger().await;
    open_case(&mut c, "t1", "cust-t").await;
    add_notes(&mut c, &["t1"], 4).await;
    let s = scrub_until(&server, |s| s.verified_through == 5).await;
    assert!(s.tail_passes >= 1, "{s:?}");
    assert_eq!(s.passes, 0, "no full pass ran: {s:?}");
    for i in 0..3 {
        let e = ev(
            &format!("t1-later-{i}"),
            "2020-12-03T03:00:00+08:00",
            "8030",
            note("a later note"),
        );
        c.append(append("t1", vec![e])).await.unwrap();
    }
    let s = scrub_until(&server, |s| s.verified_through == 8).await;
    assert!(s.failure.is_empty(), "{s:?}");
    let (_, body) = http_get(&http.to_string(), "/metrics");
    assert!(
        body.lines()
            .any(|l| l == "complaint_ledger_verified_through_position 8"),
        "{body}"
    );
    let dir = server.stop().await;

    // Position 7 was written after the start's verification; the tail
    // pass verified it and moved the mark past it.
    alter_offline(dir.path(), 7);
    let server = TestServer::start_in(dir, |c| {
        c.scrub_interval = Some(Duration::from_secs(3600));
        c.verify_tail_interval = Some(Duration::from_millis(200));
    })
    .await;
    found_altered_and_refusing(&server, 7, "t1").await;
}
