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
    let e = c
        .append(append(
            "s1",
            vec![ev(
                "s1-after",
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
    // And the scrub has stopped: no further pass counts.
    let passes = s.passes;
    tokio::time::sleep(Duration::from_millis(900)).await;
    assert_eq!(scrub_status(&server).await.passes, passes);
}

#[tokio::test]
async fn the_scrub_is_off_unless_configured() {
    let server = TestServer::start().await;
    let s = scrub_status(&server).await;
    assert!(!s.enabled && s.passes == 0, "{s:?}");
}
