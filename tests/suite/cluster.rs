//! The clustered store through real servers: a three-node NATS JetStream
//! cluster on loopback (real `nats-server` processes, `sync_interval:
//! always`) and two ledger nodes on it, each with its own data directory.
//! An append on one node is read on the other at once; expected versions,
//! event-id idempotency, positions, Merkle roots and signed checkpoints
//! hold across nodes as on one; a customer's data key made on one node
//! opens the data on the other, and an erasure on one is one on both; with
//! a NATS node killed under concurrent writers, nothing acknowledged is
//! lost or doubled, and both nodes hold the same log.

use crate::common::nats::NatsCluster;
use crate::common::*;
use complaint_ledger::audit::checkpoint::{verify_checkpoint, KEY_FILE};
use complaint_ledger::proto::v1::{
    self as pb, audit_client::AuditClient, case_event::Kind, privacy_client::PrivacyClient,
};
use complaint_ledger::store::jetstream::JetStreamOptions;
use std::collections::{BTreeMap, HashSet};
use std::path::Path;

const PHONE: &str = "13800138000";

/// One cluster test at a time: each runs three NATS servers and two
/// ledger nodes, and a machine of two cores running several such beside
/// the rest of the suite times out requests that only measure the load.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// A ledger node on the cluster; with `keys_from`, it signs and unwraps
/// with the keys of the node started there (one ledger, one key).
async fn node(urls: &str, keys_from: Option<&Path>) -> TestServer {
    node_with(urls, keys_from, false).await
}

/// [`node`], with its early-warning process on or off.
async fn node_with(urls: &str, keys_from: Option<&Path>, early_warning: bool) -> TestServer {
    let urls: Vec<String> = urls.split(',').map(String::from).collect();
    let keys = keys_from.map(Path::to_path_buf);
    TestServer::start_with(move |c| {
        c.ledger.policy = config(&c.data_dir, early_warning).ledger.policy;
        c.ledger.cluster = Some(JetStreamOptions::new(urls));
        if let Some(d) = keys {
            c.ledger.signing_key_file = Some(d.join(KEY_FILE));
            c.ledger.master_key_file = Some(d.join("pii-master.key"));
        }
    })
    .await
}

/// Three NATS servers, started off the runtime's threads.
async fn three_nats() -> NatsCluster {
    tokio::task::spawn_blocking(|| NatsCluster::start(3))
        .await
        .unwrap()
}

async fn cluster_of_two() -> (NatsCluster, TestServer, TestServer) {
    let nats = three_nats().await;
    let a = node(&nats.urls(), None).await;
    let b = node(&nats.urls(), Some(a.dir.path())).await;
    (nats, a, b)
}

fn with_customer() -> Kind {
    Kind::CaseOpened(pb::CaseOpened {
        customer_id: "cust-77".into(),
        business_line: "qidian".into(),
        category: "功能设置/自动订阅".into(),
        customer: Some(pb::CustomerPersonalData {
            name: "张三".into(),
            phone: PHONE.into(),
            account: "Reader_01".into(),
        }),
        ..Default::default()
    })
}

async fn checkpoint(server: &TestServer) -> pb::Checkpoint {
    checkpoint_at(server.url()).await
}

async fn checkpoint_at(url: String) -> pb::Checkpoint {
    AuditClient::connect(url)
        .await
        .unwrap()
        .get_checkpoint(pb::GetCheckpointRequest {})
        .await
        .unwrap()
        .into_inner()
}

/// Early warning runs on every node of a clustered ledger, and each
/// warning is appended once, not once per node: case 124545's story told
/// alternately through both nodes, both nodes' processes raising its
/// warnings; the log holds each warning once, and both nodes list the same.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn early_warning_on_two_nodes_raises_each_warning_once() {
    use crate::policies::{wait_for_warnings, warnings, CASE, EXPECTED_WARNINGS};
    let _alone = ONE_AT_A_TIME.lock().await;
    let nats = three_nats().await;
    let a = node_with(&nats.urls(), None, true).await;
    let b = node_with(&nats.urls(), Some(a.dir.path()), true).await;
    let (mut la, mut lb) = (a.ledger().await, b.ledger().await);
    for (i, e) in crate::common::seed_000::story().into_iter().enumerate() {
        let on = if i % 2 == 0 { &mut la } else { &mut lb };
        on.append(append(CASE, vec![e]))
            .await
            .unwrap_or_else(|s| panic!("event {i} refused: {s:?}"));
    }
    wait_for_warnings(&a, EXPECTED_WARNINGS).await;
    wait_for_warnings(&b, EXPECTED_WARNINGS).await;
    // Both processes have had their ticks, each more than once.
    tokio::time::sleep(std::time::Duration::from_millis(2500)).await;

    let ids = |events: &[pb::RecordedEvent]| -> Vec<String> {
        events
            .iter()
            .filter(|e| e.event_type == "WarningRaised")
            .map(|e| e.event_id.clone())
            .collect()
    };
    let on_a = ids(&read_case(&mut la, CASE).await);
    let on_b = ids(&read_case(&mut lb, CASE).await);
    assert_eq!(on_a.len(), EXPECTED_WARNINGS, "{on_a:#?}");
    assert_eq!(
        on_a.iter().collect::<HashSet<_>>().len(),
        EXPECTED_WARNINGS,
        "a warning was appended twice: {on_a:#?}"
    );
    assert_eq!(on_a, on_b);
    let listed = |w: Vec<pb::WarningEntry>| -> Vec<String> {
        let mut ids: Vec<String> = w.into_iter().map(|w| w.event_id).collect();
        ids.sort();
        ids
    };
    let (listed_a, listed_b) = (
        listed(warnings(&a, false).await),
        listed(warnings(&b, false).await),
    );
    assert_eq!(listed_a.len(), EXPECTED_WARNINGS);
    assert_eq!(listed_a, listed_b);
    let all_a = read_all(&mut la, pb::ReadAllRequest::default()).await;
    let all_b = read_all(&mut lb, pb::ReadAllRequest::default()).await;
    assert_one_log(&all_a, &all_b, &HashSet::new());
}

/// A node that only follows adopts another node's commits by itself,
/// asked nothing; and a head it hears of that the stream does not have (a
/// false announcement on the heads subject) costs it nothing: it asks the
/// stream how far it is and goes on appending.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_follower_adopts_unasked_and_checks_a_head_it_only_heard_of() {
    let _alone = ONE_AT_A_TIME.lock().await;
    let (nats, a, b) = cluster_of_two().await;
    let mut la = a.ledger().await;
    for i in 0..20 {
        la.append(append(
            &format!("f{i}"),
            vec![ev(
                &format!("f{i}-open"),
                "2020-12-03T01:24:30+08:00",
                "8030",
                opened("cust-f"),
            )],
        ))
        .await
        .unwrap();
    }
    // No read on B (a read would make it catch up): its ledger's head
    // moves by itself.
    let mut head_b = b.server.as_ref().unwrap().ledger.head();
    let reached = tokio::time::timeout(
        std::time::Duration::from_secs(20),
        head_b.wait_for(|h| *h >= 20),
    )
    .await;
    assert!(
        reached.is_ok_and(|r| r.is_ok()),
        "B did not adopt A's 20 commits unasked: at {}",
        *head_b.borrow()
    );

    // Another "node" announces a head a million records past the stream.
    let first = nats.urls().split(',').next().unwrap().to_string();
    let client = async_nats::connect(first).await.unwrap();
    client
        .publish("COMPLAINT_LEDGER.heads", "someone 1000020".into())
        .await
        .unwrap();
    client.flush().await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    // B's appends go on where the stream is, each of them (a node that
    // believed the announcement would wait for records that never come
    // and refuse every batch UNAVAILABLE).
    let mut lb = b.ledger().await;
    for (i, want) in [(0, 21), (1, 22)] {
        let done = lb
            .append(append(
                &format!("g{i}"),
                vec![ev(
                    &format!("g{i}-open"),
                    "2020-12-03T01:24:30+08:00",
                    "8030",
                    opened("cust-g"),
                )],
            ))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(done.first_position, want);
    }
    // And A, which heard it too, goes on as well, after B's.
    let on_a = la
        .append(append(
            "f0",
            vec![ev(
                "f0-n1",
                "2020-12-03T02:00:00+08:00",
                "8030",
                note("still here"),
            )],
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(on_a.first_position, 23);
    assert_eq!(
        checkpoint(&a).await.root_hash,
        checkpoint(&b).await.root_hash
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_nodes_serve_one_ledger() {
    let _alone = ONE_AT_A_TIME.lock().await;
    let (_nats, a, b) = cluster_of_two().await;
    let (mut la, mut lb) = (a.ledger().await, b.ledger().await);

    // Appended on A, read on B at once, with the personal data A sealed
    // under a key B finds in the shared bucket.
    la.append(append(
        "c1",
        vec![ev(
            "c1-open",
            "2020-12-03T01:24:30+08:00",
            "8030",
            with_customer(),
        )],
    ))
    .await
    .unwrap();
    let on_b = read_case(&mut lb, "c1").await;
    assert_eq!(on_b.len(), 1);
    match on_b[0].event.as_ref().unwrap().kind.as_ref().unwrap() {
        Kind::CaseOpened(o) => assert_eq!(o.customer.as_ref().unwrap().phone, PHONE),
        other => panic!("{other:?}"),
    }

    // B continues the case; A, which last saw version 1, is a stale writer.
    let mut next = append(
        "c1",
        vec![ev(
            "c1-n1",
            "2020-12-03T02:00:00+08:00",
            "8030",
            note("on b"),
        )],
    );
    next.expected_version = expect_exact(1);
    let first = lb.append(next.clone()).await.unwrap().into_inner();
    assert_eq!((first.case_version, first.first_position), (2, 2));
    let mut stale = append(
        "c1",
        vec![ev(
            "c1-n1-a",
            "2020-12-03T02:00:00+08:00",
            "8030",
            note("on a"),
        )],
    );
    stale.expected_version = expect_exact(1);
    let refused = la.append(stale).await.unwrap_err();
    assert_eq!(refused.code(), tonic::Code::Aborted, "{refused:?}");
    assert!(refused.message().contains('2'), "{}", refused.message());

    // B's request retried on A is the same append, not a second one.
    let retried = la.append(next).await.unwrap().into_inner();
    assert_eq!(
        (retried.first_position, retried.case_version),
        (first.first_position, first.case_version)
    );

    // Both take appends in turn; every position is the same on both.
    for i in 0..10 {
        let (l, who) = if i % 2 == 0 {
            (&mut la, "a")
        } else {
            (&mut lb, "b")
        };
        l.append(append(
            "c2",
            vec![ev(
                &format!("c2-{i}"),
                "2020-12-03T02:00:00+08:00",
                "8030",
                if i == 0 { opened("cust-2") } else { note(who) },
            )],
        ))
        .await
        .unwrap();
    }
    let all_a = read_all(&mut la, pb::ReadAllRequest::default()).await;
    let all_b = read_all(&mut lb, pb::ReadAllRequest::default()).await;
    assert_eq!(all_a.len(), 12);
    assert_eq!(all_a, all_b);

    // One tree, one key: the same signed root on both.
    let (ca, cb) = (checkpoint(&a).await, checkpoint(&b).await);
    assert_eq!(
        (ca.tree_size, &ca.root_hash, &ca.public_key),
        (cb.tree_size, &cb.root_hash, &cb.public_key)
    );
    verify_checkpoint(&cb.signed_note, &ca.public_key).unwrap();
    // B adopted what A committed, and says so.
    let stats = stats_at(b.url()).await;
    assert!(stats.adopted_records >= 6, "{stats:?}");
    assert_eq!(stats.head_position, 12);

    // One PII-access log for the ledger: A's reveal and B's are entries
    // of one chain, listed alike on both nodes.
    read_case(&mut la, "c1").await;
    let access = pii_access_at;
    let (on_a, on_b) = (access(a.url()).await, access(b.url()).await);
    assert!(on_a.len() >= 2, "{on_a:?}");
    assert_eq!(on_a, on_b);
    complaint_ledger::privacy::access_log::AccessLog::verify_chain(&on_a).unwrap();
    assert_eq!(
        on_a.iter().map(|e| e.sequence).collect::<Vec<_>>(),
        (1..=on_a.len() as u64).collect::<Vec<_>>()
    );

    // B's blind index holds the customer A opened the case for.
    let find = |url: String| async move {
        PrivacyClient::connect(url)
            .await
            .unwrap()
            .find_customer_cases(pb::FindCustomerCasesRequest {
                by: Some(pb::find_customer_cases_request::By::Phone(PHONE.into())),
            })
            .await
            .unwrap()
            .into_inner()
    };
    assert_eq!(find(b.url()).await.customer_ids, ["cust-77"]);

    // Erased on A: B cannot open the data any more, nor find the customer.
    PrivacyClient::connect(a.url())
        .await
        .unwrap()
        .erase_customer_data(pb::EraseCustomerDataRequest {
            customer_id: "cust-77".into(),
            reason: "the customer asked".into(),
        })
        .await
        .unwrap();
    let after = read_case(&mut lb, "c1").await;
    match after[0].event.as_ref().unwrap().kind.as_ref().unwrap() {
        Kind::CaseOpened(o) => assert_ne!(o.customer.as_ref().unwrap().phone, PHONE),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        kinds_of(&after).last().copied(),
        Some("PersonalDataErased"),
        "{:?}",
        kinds_of(&after)
    );
    assert!(find(b.url()).await.customer_ids.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_killed_nats_node_loses_nothing_acknowledged() {
    let _alone = ONE_AT_A_TIME.lock().await;
    let (mut nats, a, b) = cluster_of_two().await;
    // Writers on both nodes, each on its own case with expected versions;
    // one NATS node is killed in the middle and started again.
    let (stop_tx, stop) = tokio::sync::watch::channel(false);
    let writers = write_until(vec![a.url(), b.url()], 16, stop).await;
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    tokio::task::block_in_place(|| nats.kill(1));
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    tokio::task::block_in_place(|| nats.restart(1));
    tokio::time::sleep(std::time::Duration::from_millis(1000)).await;
    stop_tx.send(true).unwrap();
    let acked = acknowledged(writers).await;

    let all_a = read_all_once_healed(a.url()).await;
    let all_b = read_all_once_healed(b.url()).await;
    assert_one_log(&all_a, &all_b, &acked);
    let (ca, cb) = (checkpoint(&a).await, checkpoint(&b).await);
    assert_eq!((ca.tree_size, ca.root_hash), (cb.tree_size, cb.root_hash));
}

/// The whole log as the node at `url` reads it, once the cluster answers
/// again. Right after a NATS node comes back, the stream may still be
/// electing its leader and a read is refused with `UNAVAILABLE`, which
/// clients retry as they retry appends; what these tests check is that
/// nothing acknowledged is lost, not how fast the cluster heals.
async fn read_all_once_healed(url: String) -> Vec<pb::RecordedEvent> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let mut c = pb::ledger_client::LedgerClient::connect(url)
        .await
        .expect("connect");
    loop {
        let tried = async {
            let mut s = c
                .read_all(pb::ReadAllRequest::default())
                .await?
                .into_inner();
            let mut out = Vec::new();
            while let Some(e) = s.message().await? {
                out.push(e);
            }
            Ok::<_, tonic::Status>(out)
        };
        match tried.await {
            Ok(all) => return all,
            Err(s)
                if s.code() == tonic::Code::Unavailable && std::time::Instant::now() < deadline =>
            {
                tokio::time::sleep(std::time::Duration::from_millis(250)).await;
            }
            Err(s) => panic!("read all: {s:?}"),
        }
    }
}

/// The stream `name`, asked again while the cluster cannot answer (a
/// request can time out on a loaded machine right after a write).
async fn stream_of(
    js: &async_nats::jetstream::Context,
    name: &str,
) -> async_nats::jetstream::stream::Stream {
    let mut tries = 0;
    loop {
        match js.get_stream(name).await {
            Ok(s) => return s,
            Err(e) if tries < 10 => {
                tries += 1;
                eprintln!("stream {name} not answered yet ({e}); asking again");
                tokio::time::sleep(std::time::Duration::from_millis(500)).await;
            }
            Err(e) => panic!("stream {name}: {e}"),
        }
    }
}

/// The event ids the writers had acknowledged; more than a handful, or
/// the fault stopped the ledger rather than tested it.
async fn acknowledged(writers: Vec<tokio::task::JoinHandle<Vec<String>>>) -> HashSet<String> {
    let mut acked = HashSet::new();
    for t in writers {
        acked.extend(t.await.unwrap());
    }
    assert!(
        acked.len() > 100,
        "only {} appends acknowledged",
        acked.len()
    );
    acked
}

/// Both nodes hold one log: the same records in the same order, gapless,
/// no event twice, and every acknowledged one in it.
fn assert_one_log(
    all_a: &[pb::RecordedEvent],
    all_b: &[pb::RecordedEvent],
    acked: &HashSet<String>,
) {
    assert_eq!(all_a.len(), all_b.len(), "both nodes caught up");
    assert_eq!(all_a, all_b, "both nodes hold the same log");
    let mut seen: BTreeMap<&str, u64> = BTreeMap::new();
    for (i, e) in all_a.iter().enumerate() {
        assert_eq!(e.position, i as u64 + 1, "gapless");
        *seen.entry(e.event_id.as_str()).or_default() += 1;
    }
    assert!(seen.values().all(|n| *n == 1), "no event twice");
    for id in acked {
        assert_eq!(
            seen.get(id.as_str()),
            Some(&1),
            "{id} acknowledged, then lost"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn with_two_nats_nodes_down_appends_fail_cleanly_and_resume() {
    let _alone = ONE_AT_A_TIME.lock().await;
    let (mut nats, a, b) = cluster_of_two().await;
    let (mut la, mut lb) = (a.ledger().await, b.ledger().await);
    open_case(&mut la, "q1", "cust-q").await;
    tokio::task::block_in_place(|| {
        nats.kill(1);
        nats.kill(2);
    });
    let request = append(
        "q1",
        vec![ev(
            "q1-n1",
            "2020-12-03T02:00:00+08:00",
            "8030",
            note("no quorum"),
        )],
    );
    let refused = la.append(request.clone()).await.unwrap_err();
    assert_eq!(refused.code(), tonic::Code::Unavailable, "{refused:?}");
    // B's append fails too; afterwards B is only asked to read, and must
    // still catch up with what A commits (nothing of B's may wait for an
    // append of its own to look at the stream again).
    let on_b = lb
        .append(append(
            "q2",
            vec![ev(
                "q2-open",
                "2020-12-03T02:00:00+08:00",
                "8030",
                opened("cust-q"),
            )],
        ))
        .await
        .unwrap_err();
    assert_eq!(on_b.code(), tonic::Code::Unavailable, "{on_b:?}");

    tokio::task::block_in_place(|| {
        nats.restart(1);
        nats.restart(2);
    });
    // The same request once a quorum is back: stored once, whether or not
    // the refused attempt reached the stream.
    let mut stored = None;
    for _ in 0..60 {
        match la.append(request.clone()).await {
            Ok(ok) => {
                stored = Some(ok.into_inner());
                break;
            }
            Err(s) if s.code() == tonic::Code::Unavailable => {
                tokio::time::sleep(std::time::Duration::from_millis(500)).await
            }
            Err(s) => panic!("{s:?}"),
        }
    }
    let stored = stored.expect("appends resume with a quorum");
    // Position 2 or 3: B's refused append may have reached the stream too
    // (UNAVAILABLE leaves the outcome open).
    assert_eq!(stored.case_version, 2);
    assert!((2..=3).contains(&stored.first_position), "{stored:?}");
    let on_b = read_case(&mut lb, "q1").await;
    assert_eq!(kinds_of(&on_b), ["CaseOpened", "NoteAdded"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_single_node_ledger_migrates_with_the_same_root() {
    let _alone = ONE_AT_A_TIME.lock().await;
    let single = TestServer::start().await;
    let mut l = single.ledger().await;
    l.append(append(
        "m1",
        vec![ev(
            "m1-open",
            "2020-12-03T01:24:30+08:00",
            "8030",
            with_customer(),
        )],
    ))
    .await
    .unwrap();
    add_notes(&mut l, &["m1"], 5).await;
    let before = checkpoint(&single).await;
    let dir = single.stop().await;
    let src = dir.path().to_str().unwrap().to_string();

    let nats = three_nats().await;
    let urls = nats.urls();
    let out = cli(&["migrate", "--data-dir", &src, "--nats-url", &urls]).await;
    assert!(out.status.success(), "{}", text(&out));
    let root = hex::encode(&before.root_hash);
    assert!(
        text(&out).contains(&format!("root {root} at size 6")),
        "{}",
        text(&out)
    );
    // Again: nothing twice.
    let again = cli(&["migrate", "--data-dir", &src, "--nats-url", &urls]).await;
    assert!(
        text(&again).contains("(6 were there already)"),
        "{}",
        text(&again)
    );

    // A node on the cluster holds the same log, signs the same root and
    // opens the personal data with the migrated key.
    let node = node(&urls, Some(dir.path())).await;
    let mut ln = node.ledger().await;
    let case = read_case(&mut ln, "m1").await;
    assert_eq!(case.len(), 6);
    match case[0].event.as_ref().unwrap().kind.as_ref().unwrap() {
        Kind::CaseOpened(o) => assert_eq!(o.customer.as_ref().unwrap().phone, PHONE),
        other => panic!("{other:?}"),
    }
    let after = checkpoint(&node).await;
    assert_eq!(
        (after.tree_size, &after.root_hash, &after.public_key),
        (before.tree_size, &before.root_hash, &before.public_key)
    );
    let node_dir = node.stop().await;
    let verified = cli(&[
        "verify",
        "--data-dir",
        node_dir.path().to_str().unwrap(),
        "--signing-key-file",
        dir.path().join(KEY_FILE).to_str().unwrap(),
        "--master-key-file",
        dir.path().join("pii-master.key").to_str().unwrap(),
        "--nats-url",
        &urls,
    ])
    .await;
    assert!(
        text(&verified).contains(&format!("OK: 6 records in 1 cases; every hash chain, index and Merkle tree hash verifies; root {root}")),
        "{}",
        text(&verified)
    );

    // Another ledger's directory is not mixed into this stream.
    let other = TestServer::start().await;
    open_case(&mut other.ledger().await, "x1", "cust-x").await;
    let other_dir = other.stop().await;
    let refused = cli(&[
        "migrate",
        "--data-dir",
        other_dir.path().to_str().unwrap(),
        "--nats-url",
        &urls,
    ])
    .await;
    assert!(!refused.status.success());
    assert!(
        text(&refused).contains("another ledger's"),
        "{}",
        text(&refused)
    );
}

/// Appends by `writers` concurrent clients spread over `urls`, each on its
/// own case with expected versions, until `stop`; the event ids
/// acknowledged. An UNAVAILABLE answer is retried with the same request
/// (its outcome was unknown); any other refusal fails the test.
async fn write_until(
    urls: Vec<String>,
    writers: usize,
    stop: tokio::sync::watch::Receiver<bool>,
) -> Vec<tokio::task::JoinHandle<Vec<String>>> {
    (0..writers)
        .map(|w| {
            let url = urls[w % urls.len()].clone();
            let stop = stop.clone();
            tokio::spawn(async move {
                let mut acked = Vec::new();
                let Ok(mut c) = pb::ledger_client::LedgerClient::connect(url).await else {
                    return acked;
                };
                let case = format!("k{w}");
                let mut version = 0u64;
                let mut i = 0;
                while !*stop.borrow() {
                    let id = format!("{case}-{i}");
                    let mut r = append(
                        &case,
                        vec![ev(
                            &id,
                            "2020-12-03T02:00:00+08:00",
                            "8030",
                            if version == 0 {
                                opened("cust-k")
                            } else {
                                note("n")
                            },
                        )],
                    );
                    r.expected_version = if version == 0 {
                        expect_no_case()
                    } else {
                        expect_exact(version)
                    };
                    loop {
                        match c.append(r.clone()).await {
                            Ok(ok) => {
                                version = ok.into_inner().case_version;
                                acked.push(id.clone());
                                break;
                            }
                            Err(s)
                                if s.code() == tonic::Code::Unavailable
                                    || s.code() == tonic::Code::Unknown =>
                            {
                                if *stop.borrow() {
                                    return acked;
                                }
                                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                                // Stored or not, the same ids answer once;
                                // the version may have moved with it.
                                r.expected_version = None;
                            }
                            Err(s) => panic!("{s:?}"),
                        }
                    }
                    i += 1;
                }
                acked
            })
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kill_9_of_a_nats_node_then_a_ledger_node_under_64_writers() {
    let _alone = ONE_AT_A_TIME.lock().await;
    let mut nats = three_nats().await;
    let urls = nats.urls();
    let first = tempfile::tempdir().unwrap();
    let second = tempfile::tempdir().unwrap();
    let (a, url_a) = spawn_server_with(first.path(), &["--nats-url", &urls]);
    let keys = |d: &Path| {
        [
            "--nats-url".to_string(),
            urls.clone(),
            "--signing-key-file".into(),
            d.join(KEY_FILE).to_str().unwrap().into(),
            "--master-key-file".into(),
            d.join("pii-master.key").to_str().unwrap().into(),
        ]
    };
    let b_args = keys(first.path());
    let b_args: Vec<&str> = b_args.iter().map(String::as_str).collect();
    let (b, url_b) = spawn_server_with(second.path(), &b_args);

    let (stop_tx, stop) = tokio::sync::watch::channel(false);
    let writers = write_until(vec![url_a.clone(), url_b.clone()], 64, stop).await;
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    tokio::task::block_in_place(|| nats.kill(2));
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    drop(b); // kill -9 of ledger node B (its writers now fail to connect)
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    tokio::task::block_in_place(|| nats.restart(2));
    // B comes back on its own directory and catches up.
    let (b, url_b) = spawn_server_with(second.path(), &b_args);
    tokio::time::sleep(std::time::Duration::from_millis(1000)).await;
    stop_tx.send(true).unwrap();
    let acked = acknowledged(writers).await;

    let all_a = read_all_once_healed(url_a.clone()).await;
    let all_b = read_all_once_healed(url_b.clone()).await;
    assert_one_log(&all_a, &all_b, &acked);
    let (ca, cb) = (checkpoint_at(url_a).await, checkpoint_at(url_b).await);
    assert_eq!((ca.tree_size, ca.root_hash), (cb.tree_size, cb.root_hash));
    drop((a, b));
}

/// A clustered node's local copy is written behind the stream, so a crash
/// can leave it shorter than what the node acknowledged (its integrity
/// witness). Made here exactly: the directory as it was after ten events,
/// with the witness of twenty. The node starts, fetches the ten back from
/// the stream before it verifies (`fetched_back_records`), and holds the
/// whole case with the acknowledged root; `verify --data-dir --nats-url`
/// of such a directory does the same.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_copy_shorter_than_its_witness_is_fetched_back_at_start() {
    let _alone = ONE_AT_A_TIME.lock().await;
    let nats = three_nats().await;
    let urls = nats.urls();
    let dir = tempfile::tempdir().unwrap();
    let (live, earlier) = (dir.path().join("live"), dir.path().join("earlier"));
    let args = ["--nats-url", urls.as_str()];
    let append_notes = |url: String, from: usize| async move {
        let mut l = pb::ledger_client::LedgerClient::connect(url).await.unwrap();
        if from == 0 {
            open_case(&mut l, "r1", "cust-r").await;
        }
        for i in from.max(1)..from + 10 {
            l.append(append(
                "r1",
                vec![ev(
                    &format!("r1-{i}"),
                    "2020-12-03T02:00:00+08:00",
                    "8030",
                    note("n"),
                )],
            ))
            .await
            .unwrap();
        }
    };
    // Ten events, the copy written out (every 500 ms) and the witness
    // brought up to date when idle; then kill -9 and keep the directory.
    let (node, url) = spawn_server_with(&live, &args);
    append_notes(url, 0).await;
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    drop(node);
    copy_dir(&live, &earlier);
    // Ten more; the witness now says twenty.
    let (node, url) = spawn_server_with(&live, &args);
    append_notes(url, 10).await;
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    drop(node);
    std::fs::copy(live.join("witness"), earlier.join("witness")).unwrap();

    // `verify` of such a directory fetches back as a start would, and says so.
    let checked = dir.path().join("checked");
    copy_dir(&earlier, &checked);
    let verified = text(
        &cli(&[
            "verify",
            "--data-dir",
            checked.to_str().unwrap(),
            "--nats-url",
            &urls,
        ])
        .await,
    );
    assert!(
        verified.contains("had lost 10 acknowledged records")
            && verified.contains("OK: 20 records in 1 cases"),
        "{verified}"
    );

    let (node, url) = spawn_server_with(&earlier, &args);
    let stats = stats_at(url.clone()).await;
    assert_eq!(stats.fetched_back_records, 10, "{stats:?}");
    assert_eq!(stats.head_position, 20);
    let mut l = pb::ledger_client::LedgerClient::connect(url.clone())
        .await
        .unwrap();
    let events = read_case(&mut l, "r1").await;
    assert_eq!(events.len(), 20);
    assert_eq!(checkpoint_at(url).await.tree_size, 20);
    drop(node);
}

/// A copy of a stopped node's data directory.
fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), target).unwrap();
        }
    }
}

/// Why a clustered log on `urls` (with `options` as `configure` leaves
/// them, a request timeout of 1 s) does not open; fails if it opens.
async fn open_refused(urls: &str, configure: impl FnOnce(&mut JetStreamOptions)) -> String {
    let mut opts = JetStreamOptions::new(urls.split(',').map(String::from).collect());
    opts.timeout = std::time::Duration::from_secs(1);
    configure(&mut opts);
    let other = tempfile::tempdir().unwrap();
    tokio::task::spawn_blocking(move || {
        complaint_ledger::store::jetstream::JetStreamLog::open(
            other.path(),
            &Default::default(),
            opts,
        )
        .err()
        .map(|e| e.to_string())
    })
    .await
    .unwrap()
    .expect("the log opened")
}

/// The cluster over mutual TLS: NATS servers that take only TLS clients
/// with a certificate from the ledger's CA. A node given `--nats-tls-ca`,
/// `--nats-tls-cert` and `--nats-tls-key` appends and reads (the servers
/// admit nothing else, so it spoke TLS and showed its certificate); one
/// without a client certificate is refused and does not open.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_node_reaches_the_cluster_over_mutual_tls() {
    let _alone = ONE_AT_A_TIME.lock().await;
    let certs = tempfile::tempdir().unwrap();
    let pki = crate::common::pki::Pki::new(certs.path());
    pki.issue("localhost", "nats");
    pki.issue("complaint-ledger", "client");
    let file = |f: &str| certs.path().join(f).to_str().unwrap().to_string();
    let tls = format!(
        "tls {{ cert_file: \"{}\", key_file: \"{}\", ca_file: \"{}\", verify: true }}",
        file("nats.pem"),
        file("nats.key"),
        file("ca.pem")
    );
    let nats = tokio::task::spawn_blocking(move || NatsCluster::start_with(3, &tls))
        .await
        .unwrap();
    let urls = nats.urls_as(Some("localhost"));

    let dir = tempfile::tempdir().unwrap();
    let (ca, cert, key) = (file("ca.pem"), file("client.pem"), file("client.key"));
    let args = [
        "--nats-url",
        &urls,
        "--nats-tls-ca",
        &ca,
        "--nats-tls-cert",
        &cert,
        "--nats-tls-key",
        &key,
    ];
    let (node, url) = spawn_server_with(dir.path(), &args);
    let mut l = pb::ledger_client::LedgerClient::connect(url.clone())
        .await
        .unwrap();
    open_case(&mut l, "t1", "cust-t").await;
    let events = read_case(&mut l, "t1").await;
    assert_eq!(events.len(), 1);
    assert_eq!(checkpoint_at(url).await.tree_size, 1);
    drop(node);

    // Trusting the servers is not enough: they want the client's certificate.
    let refused = open_refused(&urls, |o| o.tls_ca = Some(ca.into())).await;
    // The client keeps trying in the background; the refusal names what
    // its attempts met.
    assert!(
        refused.contains("unavailable") && refused.contains("the last error connecting to NATS"),
        "{refused}"
    );
}

/// The cluster with NATS's own authentication: servers in operator mode
/// that admit only users of the ledger's account. A node given
/// `--nats-credentials` (the user's JWT and NKey seed) appends and reads;
/// one without is refused, and the refusal names the server's answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_node_authenticates_to_the_cluster_with_credentials() {
    let _alone = ONE_AT_A_TIME.lock().await;
    let auth = crate::common::nats_auth::NatsAuth::new();
    let config = auth.server_config.clone();
    let nats = tokio::task::spawn_blocking(move || NatsCluster::start_with(3, &config))
        .await
        .unwrap();
    let urls = nats.urls();
    let dir = tempfile::tempdir().unwrap();
    let creds = dir.path().join("ledger.creds");
    std::fs::write(&creds, &auth.user_creds).unwrap();
    let data = dir.path().join("node");
    let args = [
        "--nats-url",
        urls.as_str(),
        "--nats-credentials",
        creds.to_str().unwrap(),
    ];
    let (node, url) = spawn_server_with(&data, &args);
    let mut l = pb::ledger_client::LedgerClient::connect(url.clone())
        .await
        .unwrap();
    open_case(&mut l, "u1", "cust-u").await;
    assert_eq!(read_case(&mut l, "u1").await.len(), 1);
    drop(node);

    let refused = open_refused(&urls, |_| {}).await;
    assert!(
        refused.to_lowercase().contains("authorization"),
        "{refused}"
    );
}

/// A ledger node in network namespace `netns`, listening on `ip`, with
/// bearer-token authentication (a node off loopback needs it).
fn node_in(
    netns: &str,
    ip: &str,
    dir: &Path,
    creds: &complaint_ledger_bench::credentials::Credentials,
    more: &[String],
) -> (Running, String) {
    let mut args = creds.server_args();
    args.extend_from_slice(more);
    spawn_server_in(Some(netns), &format!("{ip}:50051"), dir, &args)
}

type AuthedLedger = pb::ledger_client::LedgerClient<
    tonic::service::interceptor::InterceptedService<
        tonic::transport::Channel,
        complaint_ledger_bench::credentials::Bearer,
    >,
>;

async fn authed(url: &str, bearer: &complaint_ledger_bench::credentials::Bearer) -> AuthedLedger {
    let channel = tonic::transport::Channel::from_shared(url.to_string())
        .unwrap()
        .connect()
        .await
        .unwrap();
    pb::ledger_client::LedgerClient::with_interceptor(channel, bearer.clone())
}

/// A partition as Jepsen makes one: one NATS server and one ledger node
/// on a host cut off from the other two hosts under load. The majority
/// goes on; the cut-off node acknowledges nothing it cannot get onto a
/// quorum; after healing both nodes hold the same log, every acknowledged
/// event once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_partitioned_node_acknowledges_nothing_the_majority_lacks() {
    let _alone = ONE_AT_A_TIME.lock().await;
    let hosts = tokio::task::spawn_blocking(|| crate::common::netns::Hosts::new(3))
        .await
        .unwrap();
    let spec: Vec<_> = (0..3)
        .map(|i| {
            (
                Some(hosts.names[i].clone()),
                hosts.ips[i].clone(),
                4222,
                6222,
                8222,
            )
        })
        .collect();
    let nats = tokio::task::spawn_blocking(move || NatsCluster::start_on(spec))
        .await
        .unwrap();
    let urls = nats.urls();
    let work = tempfile::tempdir().unwrap();
    let creds = complaint_ledger_bench::credentials::Credentials::new(work.path()).unwrap();
    let (a_dir, b_dir) = (work.path().join("a"), work.path().join("b"));
    let (_a, url_a) = node_in(
        &hosts.names[0],
        &hosts.ips[0],
        &a_dir,
        &creds,
        &["--nats-url".into(), urls.clone()],
    );
    let (_b, url_b) = node_in(
        &hosts.names[2],
        &hosts.ips[2],
        &b_dir,
        &creds,
        &[
            "--nats-url".into(),
            urls.clone(),
            "--signing-key-file".into(),
            a_dir.join(KEY_FILE).to_str().unwrap().into(),
            "--master-key-file".into(),
            a_dir.join("pii-master.key").to_str().unwrap().into(),
        ],
    );

    // Writers on both nodes; each records what was acknowledged, and when.
    let (stop_tx, stop) = tokio::sync::watch::channel(false);
    let started = std::time::Instant::now();
    let mut writers = Vec::new();
    for w in 0..16usize {
        let url = if w % 2 == 0 {
            url_a.clone()
        } else {
            url_b.clone()
        };
        let (bearer, stop) = (creds.bearer.clone(), stop.clone());
        writers.push(tokio::spawn(async move {
            let mut c = authed(&url, &bearer).await;
            let mut acked: Vec<(String, std::time::Duration)> = Vec::new();
            let case = format!("p{w}");
            let mut i = 0;
            while !*stop.borrow() {
                let id = format!("{case}-{i}");
                let r = append(
                    &case,
                    vec![ev(
                        &id,
                        "2020-12-03T02:00:00+08:00",
                        "8030",
                        if i == 0 { opened("cust-p") } else { note("n") },
                    )],
                );
                loop {
                    let call = tokio::time::timeout(
                        std::time::Duration::from_secs(15),
                        c.append(r.clone()),
                    );
                    match call.await {
                        Ok(Ok(_)) => {
                            acked.push((id.clone(), started.elapsed()));
                            if std::env::var_os("TEST_SERVER_STDERR").is_some() && i % 20 == 0 {
                                eprintln!("writer {w} acked {id} at {:?}", started.elapsed());
                            }
                            break;
                        }
                        Ok(Err(s))
                            if !matches!(
                                s.code(),
                                tonic::Code::Unavailable
                                    | tonic::Code::Unknown
                                    | tonic::Code::Internal
                            ) =>
                        {
                            panic!("{s:?}")
                        }
                        // Not acknowledged (or no answer): the same request
                        // again, which the ledger answers once either way.
                        _ => {
                            if *stop.borrow() {
                                return acked;
                            }
                            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
                        }
                    }
                }
                i += 1;
            }
            acked
        }));
    }
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    let cut_at = started.elapsed();
    tokio::task::block_in_place(|| {
        hosts.cut(2, 0);
        hosts.cut(2, 1);
    });
    tokio::time::sleep(std::time::Duration::from_secs(14)).await;
    let healed_at = started.elapsed();
    tokio::task::block_in_place(|| {
        hosts.heal(2, 0);
        hosts.heal(2, 1);
    });
    tokio::time::sleep(std::time::Duration::from_secs(6)).await;
    stop_tx.send(true).unwrap();
    let mut acked = Vec::new();
    let mut on_a_while_cut = 0;
    for (w, t) in writers.into_iter().enumerate() {
        let got = t.await.unwrap();
        if std::env::var_os("TEST_SERVER_STDERR").is_some() {
            let mut per_second = BTreeMap::new();
            for (_, at) in &got {
                *per_second.entry(at.as_secs()).or_insert(0) += 1;
            }
            eprintln!("writer {w}: acks per second {per_second:?}");
        }
        if w % 2 == 0 {
            on_a_while_cut += got
                .iter()
                .filter(|(_, at)| {
                    *at > cut_at + std::time::Duration::from_secs(8) && *at < healed_at
                })
                .count();
        }
        acked.extend(got.into_iter().map(|(id, _)| id));
    }
    if std::env::var_os("TEST_SERVER_STDERR").is_some() {
        eprintln!(
            "cut at {cut_at:?}, healed at {healed_at:?}; acks on A while cut: {on_a_while_cut}"
        );
    }
    assert!(
        on_a_while_cut > 0,
        "the majority's node took no append during the partition"
    );

    let la = authed(&url_a, &creds.bearer).await;
    let lb = authed(&url_b, &creds.bearer).await;
    // A node still catching up after the heal answers UNAVAILABLE, which
    // a client retries; what is tested is that both end with one log.
    let read = |mut c: AuthedLedger| async move {
        let mut tries = 0;
        let mut s = loop {
            match c.read_all(pb::ReadAllRequest::default()).await {
                Ok(s) => break s.into_inner(),
                Err(e) if e.code() == tonic::Code::Unavailable && tries < 6 => {
                    tries += 1;
                    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                }
                Err(e) => panic!("{e:?}"),
            }
        };
        let mut out = Vec::new();
        while let Some(e) = s.message().await.unwrap() {
            out.push(e);
        }
        out
    };
    // A request whose client gave up while its node was cut off (no
    // answer in 15 s) may still be in that node's queue, and is committed
    // once the node reaches the quorum again: unacknowledged, so allowed
    // either way. Each read sees the stream as it was when the read came,
    // so the two are compared once no such commit came between them.
    let mut all_a = read(la.clone()).await;
    let mut all_b = read(lb.clone()).await;
    for _ in 0..10 {
        if all_a.len() == all_b.len() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
        all_a = read(la.clone()).await;
        all_b = read(lb.clone()).await;
    }
    let acked: HashSet<String> = acked.into_iter().collect();
    assert_one_log(&all_a, &all_b, &acked);
}

/// The stream's layout through a real node: a request's events are one
/// message of the stream holding the records exactly as the ledger stores
/// them, at their positions; a stream of another layout is refused at
/// start; and a message in the stream that is not a commit of the ledger
/// is found as damage, never adopted, and the node takes no more appends.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_stream_holds_commits_and_refuses_what_is_not_the_ledgers() {
    let _alone = ONE_AT_A_TIME.lock().await;
    let nats = three_nats().await;
    let first = nats.urls().split(',').next().unwrap().to_string();
    let js = async_nats::jetstream::new(async_nats::connect(first).await.unwrap());

    // A stream with per-case subjects and everything else the ledger needs.
    js.create_stream(async_nats::jetstream::stream::Config {
        name: "OTHER".into(),
        subjects: vec!["OTHER.case.>".into()],
        num_replicas: 3,
        deny_delete: true,
        deny_purge: true,
        allow_atomic_publish: true,
        allow_direct: true,
        ..Default::default()
    })
    .await
    .unwrap();
    let why = open_refused(&nats.urls(), |o| o.stream = "OTHER".into()).await;
    assert!(
        why.contains("stream OTHER exists without the subject <stream>.commits alone"),
        "{why}"
    );

    let a = node(&nats.urls(), None).await;
    let mut la = a.ledger().await;
    let events: Vec<_> = std::iter::once(ev(
        "s-open",
        "2020-12-03T01:24:30+08:00",
        "8030",
        opened("cust-s"),
    ))
    .chain((1..=5).map(|i| {
        ev(
            &format!("s-note-{i}"),
            "2020-12-03T01:30:00+08:00",
            "8030",
            note(&format!("note {i}")),
        )
    }))
    .collect();
    let done = la.append(append("s", events)).await.unwrap().into_inner();
    assert_eq!((done.first_position, done.last_position), (1, 6));

    let stream = stream_of(&js, "COMPLAINT_LEDGER").await;
    assert_eq!(
        stream.cached_info().state.messages,
        1,
        "one commit, one message"
    );
    let message = stream.direct_get(1).await.unwrap();
    assert_eq!(message.subject.as_str(), "COMPLAINT_LEDGER.commits");
    let (span, records) =
        complaint_ledger::store::jetstream::commit_message::decode(1, &message.payload).unwrap();
    assert_eq!((span.first, span.last), (1, 6));
    let stored = read_all(&mut la, pb::ReadAllRequest::default()).await;
    assert_eq!(stored.len(), 6);
    for ((position, bytes), event) in records.iter().zip(&stored) {
        assert_eq!(*position, event.position);
        let rec = <pb::StoredRecord as prost::Message>::decode(&bytes[..]).unwrap();
        assert_eq!(rec.event_id, event.event_id);
        assert_eq!(rec.position, event.position);
    }

    // Someone else writes into the log's subject.
    js.publish("COMPLAINT_LEDGER.commits", "{\"not\":\"a commit\"}".into())
        .await
        .unwrap()
        .await
        .unwrap();
    let next = |id: &str| {
        append(
            "s",
            vec![ev(id, "2020-12-03T02:00:00+08:00", "8030", note("after"))],
        )
    };
    let damaged = la.append(next("s-note-6")).await.unwrap_err();
    assert!(
        damaged
            .message()
            .contains("message 2 is not a commit of this ledger"),
        "{damaged:?}"
    );
    let after = la.append(next("s-note-7")).await.unwrap_err();
    assert!(after.message().contains("takes no appends"), "{after:?}");
    // The damage itself is INTERNAL; a node that stopped taking appends
    // answers UNAVAILABLE after it (another node may take them).
    assert_eq!(damaged.code(), tonic::Code::Internal, "{damaged:?}");
    assert_eq!(after.code(), tonic::Code::Unavailable, "{after:?}");
    // Reads cannot catch up past the damage, and say so (waiting will not
    // mend it); nothing of either append reached the stream.
    let read = la
        .read_all(pb::ReadAllRequest::default())
        .await
        .unwrap_err();
    assert_eq!(read.code(), tonic::Code::Internal, "{read:?}");
    assert!(
        read.message().contains("not a commit of this ledger"),
        "{read:?}"
    );
    let stream = stream_of(&js, "COMPLAINT_LEDGER").await;
    assert_eq!(stream.cached_info().state.messages, 2);
}
