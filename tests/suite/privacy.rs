//! Personal data through real servers: sealed at rest, revealed only to
//! those allowed (and logged), masked for the others, found by phone through
//! the blind index, forgotten by erasure — with every verification still
//! passing — and readable after a master-key rotation.

use crate::common::auth::{self, token};
use crate::common::*;
use complaint_ledger::config::ServerConfig;
use complaint_ledger::privacy::access_log::AccessLog;
use complaint_ledger::proto::v1::{self as pb, case_event::Kind, privacy_client::PrivacyClient};
use complaint_ledger::store::{EventLog, SideTable, SledLog, SledOptions};
use tonic::Code;

const PHONE: &str = "13800138000";

fn with_jwt(dir: &std::path::Path) -> impl FnOnce(&mut ServerConfig) {
    let v = auth::verifier(dir);
    move |c: &mut ServerConfig| c.auth.tokens = Some(v)
}

fn req<T>(msg: T, t: &str, purpose: Option<&str>) -> tonic::Request<T> {
    let mut r = auth::bearer(msg, t);
    if let Some(p) = purpose {
        r.metadata_mut().insert("x-purpose", p.parse().unwrap());
    }
    r
}

fn opening() -> Kind {
    Kind::CaseOpened(pb::CaseOpened {
        customer_id: "cust-5c1e9a".into(),
        business_line: "qidian".into(),
        category: "功能设置/自动订阅".into(),
        summary: "用户张三称未开启自动订阅".into(),
        customer: Some(pb::CustomerPersonalData {
            name: "张三".into(),
            phone: PHONE.into(),
            account: "Reader_01".into(),
        }),
        ..Default::default()
    })
}

async fn get_case(server: &TestServer, t: &str, purpose: Option<&str>) -> pb::CaseView {
    server
        .cases()
        .await
        .get_case(req(
            pb::GetCaseRequest {
                case_id: "p1".into(),
                ..Default::default()
            },
            t,
            purpose,
        ))
        .await
        .unwrap()
        .into_inner()
}

/// `Privacy.FindCustomerCases` by phone, as `caller`.
async fn cases_by_phone(
    privacy: &mut PrivacyClient<tonic::transport::Channel>,
    phone: &str,
    caller: &str,
) -> pb::FindCustomerCasesResponse {
    privacy
        .find_customer_cases(req(
            pb::FindCustomerCasesRequest {
                by: Some(pb::find_customer_cases_request::By::Phone(phone.into())),
            },
            caller,
            None,
        ))
        .await
        .unwrap()
        .into_inner()
}

fn opened_of(v: &pb::CaseView) -> (String, String) {
    (
        v.customer_id.clone(),
        v.contacts[0].contact.as_ref().unwrap().summary.clone(),
    )
}

#[tokio::test]
async fn personal_data_is_sealed_shown_to_those_allowed_logged_and_erased_for_good() {
    let keys = tempfile::tempdir().unwrap();
    let mut server = TestServer::start_with(with_jwt(keys.path())).await;
    let agent = token("8030", &["agent"], Some("qidian"), &[]);
    let supervisor = token("lead-7", &["supervisor"], None, &[]);
    let auditor = token("audit-1", &["auditor"], None, &[]);
    let auditor_pii = token("audit-2", &["auditor"], None, &["pii:read"]);
    let mut c = server.ledger().await;
    c.append(req(
        append(
            "p1",
            vec![
                ev("p1-open", "2020-12-03T01:24:30+08:00", "8030", opening()),
                ev(
                    "p1-c1",
                    "2020-12-03T01:24:30+08:00",
                    "8030",
                    Kind::ContactLogged(pb::ContactLogged {
                        contact_id: "c1".into(),
                        channel: pb::Channel::Hotline as i32,
                        direction: pb::Direction::Inbound as i32,
                        started_at: Some(ts("2020-12-03T01:24:30+08:00")),
                        summary: format!("用户来电, 号码 {PHONE}"),
                        ..Default::default()
                    }),
                ),
            ],
        ),
        &agent,
        None,
    ))
    .await
    .unwrap();

    // The agent sees it; an auditor without pii:read sees masks; with it, the data.
    let v = get_case(&server, &agent, Some("callback")).await;
    assert_eq!(opened_of(&v).1, format!("用户来电, 号码 {PHONE}"));
    let v = get_case(&server, &auditor, None).await;
    assert_eq!(opened_of(&v).1, "[personal data masked]");
    let v = get_case(&server, &auditor_pii, Some("dispute review")).await;
    assert_eq!(opened_of(&v).1, format!("用户来电, 号码 {PHONE}"));
    let mut read = c
        .read_case(req(
            pb::ReadCaseRequest {
                case_id: "p1".into(),
                ..Default::default()
            },
            &auditor,
            None,
        ))
        .await
        .unwrap()
        .into_inner();
    let first = read.message().await.unwrap().unwrap();
    match first.event.unwrap().kind.unwrap() {
        Kind::CaseOpened(o) => {
            let p = o.customer.unwrap();
            assert_eq!(
                (p.name.as_str(), p.phone.as_str()),
                ("[personal data masked]", "[personal data masked]")
            );
            assert_eq!(o.customer_id, "cust-5c1e9a");
        }
        other => panic!("{other:?}"),
    }

    // Every revealing response is in the access log, hash-chained; masked ones are not.
    let mut privacy = PrivacyClient::connect(server.url()).await.unwrap();
    let log = privacy
        .list_pii_access(req(pb::ListPiiAccessRequest::default(), &auditor, None))
        .await
        .unwrap()
        .into_inner()
        .entries;
    assert_eq!(log.len(), 2, "{log:#?}");
    assert_eq!(
        (
            log[0].actor.as_str(),
            log[0].purpose.as_str(),
            log[0].rpc.as_str()
        ),
        ("8030", "callback", "Cases.GetCase")
    );
    assert!(
        log[0]
            .fields
            .contains(&"CaseOpened.customer.phone".to_string()),
        "{:?}",
        log[0].fields
    );
    assert!(log[0].fields.contains(&"ContactLogged.summary".to_string()));
    assert_eq!(
        (log[1].actor.as_str(), log[1].purpose.as_str()),
        ("audit-2", "dispute review")
    );
    AccessLog::verify_chain(&log).unwrap();
    let mut forged = log.clone();
    forged[0].actor = "someone-else".into();
    assert_eq!(AccessLog::verify_chain(&forged), Err(1));
    // A streamed read of the whole log: one entry for the case, not one per event.
    let mut all = c
        .read_all(req(
            pb::ReadAllRequest::default(),
            &auditor_pii,
            Some("annual audit"),
        ))
        .await
        .unwrap()
        .into_inner();
    let mut n = 0;
    while all.message().await.unwrap().is_some() {
        n += 1;
    }
    assert_eq!(n, 2);
    let log = privacy
        .list_pii_access(req(pb::ListPiiAccessRequest::default(), &auditor, None))
        .await
        .unwrap()
        .into_inner()
        .entries;
    assert_eq!(log.len(), 3);
    assert_eq!(
        (
            log[2].rpc.as_str(),
            log[2].case_id.as_str(),
            log[2].purpose.as_str()
        ),
        ("Ledger.ReadAll", "p1", "annual audit")
    );
    AccessLog::verify_chain(&log).unwrap();

    // Found by phone, however written, through the blind index.
    let found = cases_by_phone(&mut privacy, "+86 138-0013-8000", &agent).await;
    assert_eq!(found.case_ids, ["p1"]);

    // Erasure: only a supervisor; afterwards [erased] for everyone.
    let erase = || {
        req(
            pb::EraseCustomerDataRequest {
                customer_id: "cust-5c1e9a".into(),
                reason: "用户要求删除个人信息".into(),
            },
            &supervisor,
            None,
        )
    };
    let e = privacy
        .erase_customer_data(req(
            pb::EraseCustomerDataRequest {
                customer_id: "cust-5c1e9a".into(),
                reason: "x".into(),
            },
            &agent,
            None,
        ))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied);
    let r = privacy
        .erase_customer_data(erase())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (r.case_ids.as_slice(), r.key_destroyed),
        (&["p1".to_string()][..], true)
    );
    // Idempotent.
    let r = privacy
        .erase_customer_data(erase())
        .await
        .unwrap()
        .into_inner();
    assert!(!r.key_destroyed);
    let v = get_case(&server, &agent, None).await;
    assert_eq!(opened_of(&v).1, "[erased]");
    assert!(v.personal_data_erased);
    let events = read_case_as(&mut c, "p1", &supervisor).await;
    assert_eq!(
        events
            .iter()
            .filter(|e| e.event_type == "PersonalDataErased")
            .count(),
        1
    );
    let found = cases_by_phone(&mut privacy, PHONE, &agent).await;
    assert!(found.case_ids.is_empty());
    // No new personal data for an erased customer; other facts still go in.
    let e = c
        .append(req(
            append(
                "p1",
                vec![ev(
                    "p1-n",
                    "2020-12-04T10:00:00+08:00",
                    "8030",
                    note("新的备注"),
                )],
            ),
            &agent,
            None,
        ))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition);
    assert!(e.message().contains("customer_erased"), "{}", e.message());

    // After a restart: still erased, the blind index cannot recreate the phone.
    server.restart_with(with_jwt(keys.path())).await;
    let v = get_case(&server, &agent, None).await;
    assert_eq!(v.customer_id, "cust-5c1e9a");
    assert_eq!(opened_of(&v).1, "[erased]");
    let mut privacy = PrivacyClient::connect(server.url()).await.unwrap();
    let found = cases_by_phone(&mut privacy, PHONE, &agent).await;
    assert!(found.case_ids.is_empty());

    // The store never held the phone in the clear, and still verifies.
    let dir = server.stop().await;
    let log = SledLog::open(dir.path(), &SledOptions::default()).unwrap();
    for (_, bytes) in log.read_range(1, 100).unwrap() {
        assert!(
            !bytes.windows(PHONE.len()).any(|w| w == PHONE.as_bytes()),
            "a record holds the phone in the clear"
        );
        assert!(!bytes.windows("张三".len()).any(|w| w == "张三".as_bytes()));
    }
    complaint_ledger::audit::verify::verify_store(&log, |_, _| {})
        .expect("verification passes after erasure");
}

async fn read_case_as(
    c: &mut pb::ledger_client::LedgerClient<tonic::transport::Channel>,
    case: &str,
    t: &str,
) -> Vec<pb::RecordedEvent> {
    let mut s = c
        .read_case(req(
            pb::ReadCaseRequest {
                case_id: case.into(),
                ..Default::default()
            },
            t,
            None,
        ))
        .await
        .unwrap()
        .into_inner();
    let mut out = Vec::new();
    while let Some(e) = s.message().await.unwrap() {
        out.push(e);
    }
    out
}

#[tokio::test]
async fn a_master_key_rotation_rewraps_keys_without_touching_the_log() {
    let server = TestServer::start().await;
    let mut c = server.ledger().await;
    c.append(append(
        "r1",
        vec![ev(
            "r1-open",
            "2020-12-03T01:24:30+08:00",
            "8030",
            opening(),
        )],
    ))
    .await
    .unwrap();
    let before = read_case(&mut c, "r1").await;
    let dir = server.stop().await;
    let old = std::fs::read_to_string(dir.path().join("pii-master.key")).unwrap();
    let old_line = old.lines().find(|l| l.starts_with("k1 ")).unwrap();
    let new_line = "k2 AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyA=";
    let file = dir.path().join("rotation.key");
    std::fs::write(&file, format!("{new_line}\n{old_line}\n")).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_complaint-ledger"))
        .args(["rotate-master-key", "--data-dir"])
        .arg(dir.path())
        .arg("--master-key-file")
        .arg(&file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout)
        .contains("re-wrapped 1 customer keys under master key k2"));
    // Only the new key from now on: the data still reads, the log is unchanged.
    let only_new = dir.path().join("new.key");
    std::fs::write(&only_new, format!("{new_line}\n")).unwrap();
    let server =
        TestServer::start_in(dir, move |c| c.ledger.master_key_file = Some(only_new)).await;
    let after = read_case(&mut server.ledger().await, "r1").await;
    assert_eq!(after[0].record_hash, before[0].record_hash);
    match after[0].event.as_ref().unwrap().kind.as_ref().unwrap() {
        Kind::CaseOpened(o) => assert_eq!(o.customer.as_ref().unwrap().phone, PHONE),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn a_refused_request_stores_no_customer_key() {
    let server = TestServer::start().await;
    let mut c = server.ledger().await;
    let mut refused = append(
        "k1",
        vec![ev(
            "k1-open",
            "2020-12-03T01:24:30+08:00",
            "8030",
            opening(),
        )],
    );
    refused.expected_version = expect_exact(5);
    let e = c.append(refused).await.unwrap_err();
    assert_eq!(e.code(), Code::Aborted);
    let dir = server.stop().await;
    let log = SledLog::open(dir.path(), &SledOptions::default()).unwrap();
    assert_eq!(log.head().unwrap(), 0);
    assert!(
        log.side_table("customer-keys").unwrap().is_empty().unwrap(),
        "a refused request stored a key"
    );
}

#[tokio::test]
async fn personal_data_sealed_by_the_request_handler_is_stored_sealed_and_opens() {
    use complaint_ledger::ledger::{Ledger, LedgerOptions};
    use complaint_ledger::privacy::crypto::open;
    use prost::Message;
    use std::sync::atomic::Ordering;
    let dir = tempfile::tempdir().unwrap();
    let (ledger, _) = Ledger::open(dir.path(), &LedgerOptions::default()).unwrap();
    let at = "2020-12-03T01:00:00+08:00";
    let sealed_by_handlers = || ledger.writer_stats().presealed.load(Ordering::Relaxed);
    let mut first = opened("cust-h");
    if let Kind::CaseOpened(o) = &mut first {
        o.summary = "first words".into();
    }
    ledger
        .append(
            append("h1", vec![ev("h1-open", at, "8030", first)]),
            "t".into(),
        )
        .await
        .unwrap();
    // The customer's first personal data: the writer made the key.
    assert_eq!(sealed_by_handlers(), 0);
    // The handler finds the case's customer in the case list once the
    // read models hold the opening (until then the writer seals).
    ledger.caught_up().await.unwrap();
    ledger
        .append(
            append(
                "h1",
                vec![ev("h1-n", at, "8030", note("said on the phone"))],
            ),
            "t".into(),
        )
        .await
        .unwrap();
    assert_eq!(sealed_by_handlers(), 1);
    let bytes = ledger.log().read(2).unwrap().unwrap();
    assert!(!String::from_utf8_lossy(&bytes).contains("said on the phone"));
    let rec = pb::StoredRecord::decode(bytes.as_slice()).unwrap();
    let Some(Kind::NoteAdded(n)) = pb::CaseEvent::decode(&rec.payload[..]).unwrap().kind else {
        panic!("not a note")
    };
    let key = ledger.keys().get("cust-h").unwrap().unwrap();
    assert_eq!(
        open(&key, "cust-h", "text", &n.text).as_deref(),
        Some("said on the phone")
    );
    // Erased: no handler can seal for the customer, and the writer refuses.
    ledger.keys().erase("cust-h").unwrap();
    let err = ledger
        .append(
            append("h1", vec![ev("h1-m", at, "8030", note("more words"))]),
            "t".into(),
        )
        .await
        .unwrap_err();
    assert!(err.to_string().contains("erased"), "{err}");
    assert_eq!(sealed_by_handlers(), 1);
}

/// Nothing of another business line reaches an agent or a service through
/// any RPC that takes a phone, account, customer or case id: no customer or
/// case ids, no counts, not the other line's name, not where an event id is
/// stored. (RPCs their roles may not call at all — customer histories,
/// proofs, exports, erasure, the access log — are covered by
/// `security::every_rpc_times_every_role`.)
#[tokio::test]
async fn nothing_of_another_line_through_any_id() {
    let keys = tempfile::tempdir().unwrap();
    let server = TestServer::start_with(with_jwt(keys.path())).await;
    let qidian = token("8030", &["agent"], Some("qidian"), &[]);
    let mut c = server.ledger().await;
    c.append(req(
        append(
            "p1",
            vec![ev(
                "p1-open",
                "2020-12-03T01:24:30+08:00",
                "8030",
                opening(),
            )],
        ),
        &qidian,
        None,
    ))
    .await
    .unwrap();
    let mut privacy = PrivacyClient::connect(server.url()).await.unwrap();
    for other in [
        token("9001", &["agent"], Some("yuewen"), &[]),
        token("svc-9", &["service"], Some("yuewen"), &[]),
    ] {
        // The same phone and account: nothing found, not even the customer.
        let found = cases_by_phone(&mut privacy, PHONE, &other).await;
        assert!(
            found.customer_ids.is_empty() && found.case_ids.is_empty(),
            "{found:?}"
        );
        let found = privacy
            .find_customer_cases(req(
                pb::FindCustomerCasesRequest {
                    by: Some(pb::find_customer_cases_request::By::Account(
                        "Reader_01".into(),
                    )),
                },
                &other,
                None,
            ))
            .await
            .unwrap()
            .into_inner();
        assert!(
            found.customer_ids.is_empty() && found.case_ids.is_empty(),
            "{found:?}"
        );
        // The case list by customer: empty, no count.
        let list = server
            .cases()
            .await
            .list_cases(req(
                pb::ListCasesRequest {
                    customer_id: "cust-5c1e9a".into(),
                    ..Default::default()
                },
                &other,
                None,
            ))
            .await
            .unwrap()
            .into_inner();
        assert!(list.cases.is_empty(), "{list:?}");
        let denied = |s: tonic::Status| {
            assert_eq!(s.code(), Code::PermissionDenied, "{s:?}");
            assert!(
                !s.message().contains("qidian"),
                "names the other line: {s:?}"
            );
        };
        // The case by id: refused without naming its line.
        denied(
            server
                .cases()
                .await
                .get_case(req(
                    pb::GetCaseRequest {
                        case_id: "p1".into(),
                        ..Default::default()
                    },
                    &other,
                    None,
                ))
                .await
                .unwrap_err(),
        );
        denied(
            c.read_case(req(
                pb::ReadCaseRequest {
                    case_id: "p1".into(),
                    ..Default::default()
                },
                &other,
                None,
            ))
            .await
            .unwrap_err(),
        );
        denied(
            c.append(req(
                append(
                    "p1",
                    vec![ev("x-n", "2020-12-03T02:00:00+08:00", "9001", note("hi"))],
                ),
                &other,
                None,
            ))
            .await
            .unwrap_err(),
        );
        // A retry of the other line's event id: refused, not answered with
        // its positions.
        denied(
            c.append(req(
                append(
                    "p1",
                    vec![ev(
                        "p1-open",
                        "2020-12-03T01:24:30+08:00",
                        "8030",
                        opening(),
                    )],
                ),
                &other,
                None,
            ))
            .await
            .unwrap_err(),
        );
        // An event id stored on the other line's case, used on one's own:
        // a conflict that says neither the case nor the position.
        let mut own = opening();
        if let Kind::CaseOpened(o) = &mut own {
            o.business_line = "yuewen".into();
            o.customer_id = "cust-y".into();
        }
        let err = c
            .append(req(
                append(
                    "y1",
                    vec![ev("p1-open", "2020-12-03T01:24:30+08:00", "9001", own)],
                ),
                &other,
                None,
            ))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::AlreadyExists, "{err:?}");
        assert!(
            !err.message().contains("p1") || err.message().contains("p1-open"),
            "{err:?}"
        );
        assert!(!err.message().contains("position"), "{err:?}");
    }
}
