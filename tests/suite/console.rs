//! The console through a real server: its JSON bridge (authentication,
//! roles, the read-only list of methods, refusals with their reasons),
//! its security headers, the calendar days, the dossier, and — in a real
//! browser — the seed 000 story's page, the as-of control, verification of
//! a good and a tampered bundle, and masking for an auditor without
//! `pii:read` with nothing logged as revealed (`tests/console/console.mjs`,
//! Playwright driving Debian's chromium, installed by
//! `scripts/install-tool`).

use crate::common::auth::{self, verifier};
use crate::common::seed_000::{story, CASE};
use crate::common::*;
use complaint_ledger::api::console;
use complaint_ledger::config::ServerConfig;
use complaint_ledger::policy::config::PolicyConfig;
use complaint_ledger::policy::Policy;
use complaint_ledger::proto::v1 as pb;
use std::sync::Arc;

/// A secured server with the HTTP listener and early warning on, ready
/// (`/readyz`: the console answers 503 "starting" until then).
async fn console_server() -> TestServer {
    let keys = tempfile::tempdir().unwrap();
    let v = verifier(keys.path());
    let server = TestServer::start_with(move |c: &mut ServerConfig| {
        c.auth.tokens = Some(v);
        c.http_listen = Some("127.0.0.1:0".parse().unwrap());
        let mut p = PolicyConfig::default();
        p.early_warning.enabled = true;
        p.early_warning.tick_seconds = 1;
        c.ledger.policy = Arc::new(Policy::new(p).unwrap());
    })
    .await;
    let addr = http_addr(&server);
    for _ in 0..100 {
        if http_get(&addr, "/readyz").0 == 200 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    server
}

fn http_addr(server: &TestServer) -> String {
    server
        .server
        .as_ref()
        .unwrap()
        .http_addr
        .expect("http listener")
        .to_string()
}

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

/// GETs `path` as `token`: (status, headers, body).
fn get_as(addr: &str, token: &str, path: &str) -> (u16, String, String) {
    http_request(addr, "GET", path, &[("authorization", &bearer(token))], "")
}

/// POSTs a bridged call as `token`: (status, JSON body).
fn rpc(addr: &str, token: &str, method: &str, body: &str) -> (u16, serde_json::Value) {
    let b = bearer(token);
    let (status, _, text) = http_request(
        addr,
        "POST",
        &format!("/console/api/rpc/{method}"),
        &[("authorization", &b), ("content-type", "application/json")],
        body,
    );
    let json = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"));
    (status, json)
}

/// Appends the seed 000 story as a supervisor.
async fn load_story(server: &TestServer) {
    let token = auth::token("supervisor-1", &["supervisor"], None, &[]);
    let mut client = server.ledger().await;
    let mut version = 0;
    for e in story() {
        let expected = if version == 0 { expect_no_case() } else { None };
        let r = client
            .append(auth::bearer(
                pb::AppendRequest {
                    case_id: CASE.into(),
                    expected_version: expected,
                    events: vec![e],
                },
                &token,
            ))
            .await
            .expect("append")
            .into_inner();
        version = r.case_version;
    }
}

fn access_entries(server: &TestServer) -> Vec<pb::PiiAccess> {
    let ledger = server.server.as_ref().unwrap().ledger.clone();
    ledger
        .access_log()
        .list(0, 100_000, "")
        .expect("access log")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bridge_authenticates_authorizes_and_reads_only() {
    let server = console_server().await;
    load_story(&server).await;
    let addr = http_addr(&server);
    let auditor = auth::token("aud-1", &["auditor"], None, &[]);
    let agent = auth::token("agent-1", &["agent"], Some("qidian"), &[]);

    // No credential: 401 with the gRPC code and message.
    let (status, _, body) =
        http_request(&addr, "POST", "/console/api/rpc/Cases/GetCase", &[], "{}");
    assert_eq!(status, 401, "{body}");
    assert!(body.contains("Unauthenticated"), "{body}");

    // A role the access matrix refuses: 403, as over gRPC.
    let (status, body) = rpc(&addr, &agent, "Audit/ExportCase", r#"{"caseId":"124545"}"#);
    assert_eq!(status, 403, "{body}");
    assert!(body["message"].as_str().unwrap().contains("auditor"));

    // Writes are not bridged at all.
    let (status, body) = rpc(&addr, &auditor, "Ledger/Append", r#"{"caseId":"x"}"#);
    assert_eq!(status, 501, "{body}");
    assert!(body["message"].as_str().unwrap().contains("not a read"));

    // Bad input: 400 naming the field and the documented reason.
    let (status, body) = rpc(&addr, &auditor, "Cases/GetCase", r#"{"caseId":""}"#);
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["reason"], "INVALID_FIELD");
    assert_eq!(body["fieldViolations"][0]["field"], "case_id");
    let (status, body) = rpc(&addr, &auditor, "Cases/GetCase", r#"{"caseId": 7}"#);
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["fieldViolations"][0]["field"], "body");
    let (status, body) = rpc(&addr, &auditor, "Cases/GetCase", r#"{"caseId":"nope"}"#);
    assert_eq!(status, 404, "{body}");

    // A read: the API's JSON mapping. The story, and the warnings early
    // warning appends to it meanwhile: the two reads agree once it is done.
    let mut tries = 0;
    let (view, events) = loop {
        let (status, view) = rpc(&addr, &auditor, "Cases/GetCase", r#"{"caseId":"124545"}"#);
        assert_eq!(status, 200, "{view}");
        let (status, events) = rpc(&addr, &auditor, "Ledger/ReadCase", r#"{"caseId":"124545"}"#);
        assert_eq!(status, 200);
        let version = view["version"].as_str().unwrap().parse::<u64>().unwrap();
        if events.as_array().unwrap().len() as u64 == version || tries == 50 {
            assert_eq!(events.as_array().unwrap().len() as u64, version);
            break (view, events);
        }
        tries += 1;
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    assert_eq!(view["caseId"], "124545");
    assert_eq!(
        view["demands"][0]["demand"]["requiredChannel"],
        "CHANNEL_OUTBOUND_CALL"
    );
    assert!(events.as_array().unwrap().len() >= story().len());

    // The auditor without pii:read sees masks, and nothing was logged.
    let text = events.to_string();
    assert!(text.contains("[personal data masked]"), "{text}");
    assert!(!text.contains("需要电话回复"));
    assert!(
        access_entries(&server).iter().all(|e| e.actor != "aud-1"),
        "a masked read logged a reveal"
    );

    // With pii:read: revealed, and logged as a read through the API is.
    let reader = auth::token("aud-2", &["auditor"], None, &["pii:read"]);
    let b = bearer(&reader);
    let (status, _, text) = http_request(
        &addr,
        "POST",
        "/console/api/rpc/Ledger/ReadCase",
        &[("authorization", &b), ("x-purpose", "dispute file 2020-17")],
        r#"{"caseId":"124545"}"#,
    );
    assert_eq!(status, 200);
    assert!(text.contains("需要电话回复"));
    let logged: Vec<_> = access_entries(&server)
        .into_iter()
        .filter(|e| e.actor == "aud-2")
        .collect();
    assert_eq!(logged.len(), 1, "{logged:?}");
    assert_eq!(logged[0].case_id, "124545");
    assert_eq!(logged[0].purpose, "dispute file 2020-17");
    assert!(logged[0].rpc.contains("ReadCase"), "{:?}", logged[0].rpc);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_is_embedded_and_locked_down() {
    let server = console_server().await;
    let addr = http_addr(&server);
    let (status, head, body) = http_request(&addr, "GET", "/console", &[], "");
    assert_eq!(status, 200);
    assert!(body.contains("/console/console.js"));
    assert!(
        head.contains("content-security-policy: default-src 'none'; script-src 'self'"),
        "{head}"
    );
    assert!(head.contains("x-frame-options: deny"));
    for (path, kind) in [
        ("/console/console.js", "text/javascript"),
        ("/console/console.css", "text/css"),
    ] {
        let (status, head, body) = http_request(&addr, "GET", path, &[], "");
        assert_eq!(status, 200, "{path}");
        assert!(head.contains(kind), "{head}");
        // Nothing from elsewhere (the one URL is SVG's namespace name).
        let other = body
            .replace("\"http://www.w3.org/2000/svg\"", "")
            .contains("://");
        assert!(!other, "{path} names another origin");
    }
    // The calendar days of the axis: 2020's National Day week and its 调休.
    let national_day = "/console/api/calendar?line=qidian&from=2020-09-26&to=2020-10-11";
    let ops = auth::token("ops-1", &["ops"], None, &[]);
    let (status, _, body) = get_as(&addr, &ops, national_day);
    // Ops may not read cases, so not their calendar days either.
    assert_eq!(status, 403, "{body}");
    let auditor = auth::token("aud-1", &["auditor"], None, &[]);
    let (status, _, body) = get_as(&addr, &auditor, national_day);
    assert_eq!(status, 200, "{body}");
    let cal: serde_json::Value = serde_json::from_str(&body).unwrap();
    let day = |d: &str| {
        cal["days"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["date"] == d)
            .unwrap()
            .clone()
    };
    assert_eq!(cal["utcOffsetMinutes"], 480);
    assert_eq!(day("2020-09-27")["makeup"], true, "Sunday worked");
    assert_eq!(day("2020-10-01")["working"], false);
    assert!(day("2020-10-01")["holiday"].as_str().is_some());
    assert_eq!(day("2020-10-10")["makeup"], true, "Saturday worked");
    assert_eq!(day("2020-10-11")["weekend"], true);
    assert_eq!(day("2020-10-09")["working"], true);
    let (status, _, body) = get_as(
        &addr,
        &auditor,
        "/console/api/calendar?from=2020-01-01&to=2022-01-01",
    );
    assert_eq!(status, 400);
    assert!(body.contains("\"field\":\"to\""), "{body}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dossier_is_one_self_contained_file() {
    let server = console_server().await;
    load_story(&server).await;
    let addr = http_addr(&server);
    let auditor = auth::token("aud-1", &["auditor"], None, &[]);
    let (status, head, html) = get_as(&addr, &auditor, "/console/api/dossier/124545");
    assert_eq!(status, 200, "{html}");
    assert!(head.contains("content-disposition: attachment; filename=\"case-124545-dossier.html\""));
    // No reference to anything outside the file.
    assert!(
        !html.contains("src=\"") && !html.contains("href=\"/"),
        "the dossier loads something"
    );
    assert!(html.contains("id=\"dossier-data\""));
    assert!(html.contains("\"records\""), "the bundle is inside");
    // Its CSP allows exactly its inline script and style, by hash.
    let script = console::assets::SCRIPT;
    let hash = {
        use base64::Engine;
        use sha2::Digest;
        base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(script.as_bytes()))
    };
    assert!(html.contains(&format!("script-src 'sha256-{hash}'")));
    // Masked for this auditor, and nothing logged as revealed.
    assert!(html.contains("[personal data masked]"));
    assert!(!html.contains("需要电话回复"));
    assert!(access_entries(&server).iter().all(|e| e.actor != "aud-1"));
    // An agent may not export: the dossier is refused whole.
    let agent = auth::token("agent-1", &["agent"], Some("qidian"), &[]);
    let b = bearer(&agent);
    let (status, _, body) = http_request(
        &addr,
        "GET",
        "/console/api/dossier/124545",
        &[("authorization", &b)],
        "",
    );
    assert_eq!(status, 403, "{body}");
    server.stop().await;
}

/// The console in a real browser (see `tests/console/console.mjs`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_in_a_real_browser() {
    let server = console_server().await;
    load_story(&server).await;
    // Let early warning look at the story once.
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    let addr = http_addr(&server);
    let root = env!("CARGO_MANIFEST_DIR");
    let artifacts = std::path::Path::new(root).join("target/console-artifacts");
    std::fs::create_dir_all(&artifacts).unwrap();
    let public_key = server
        .server
        .as_ref()
        .unwrap()
        .ledger
        .public_key()
        .to_string();
    let reader = auth::token("aud-reader", &["auditor"], None, &["pii:read"]);
    let masked = auth::token("aud-masked", &["auditor"], None, &[]);
    let ops = auth::token("ops-1", &["ops", "supervisor"], None, &[]);
    let browser = tokio::task::spawn_blocking(move || {
        std::process::Command::new(format!("{root}/scripts/console-browser"))
            .env("CONSOLE_URL", format!("http://{addr}"))
            .env("CONSOLE_CASE", CASE)
            .env("TOKEN_READER", reader)
            .env("TOKEN_MASKED", masked)
            .env("TOKEN_OPS", ops)
            .env("PUBLIC_KEY", public_key)
            .env("ARTIFACTS", &artifacts)
            .output()
            .expect("scripts/console-browser runs")
    })
    .await
    .unwrap();
    let out = text(&browser);
    assert!(browser.status.success(), "the browser test failed:\n{out}");
    assert!(out.contains("console: all checks passed"), "{out}");
    // The reader's reveals were logged with their purpose; the masked
    // auditor's pages revealed nothing and logged nothing.
    let entries = access_entries(&server);
    assert!(
        entries
            .iter()
            .any(|e| e.actor == "aud-reader" && e.purpose == "dispute file 2020-17"),
        "{entries:?}"
    );
    assert!(
        entries.iter().all(|e| e.actor != "aud-masked"),
        "{entries:?}"
    );
    server.stop().await;
}

/// Development mode (no token verification): the console takes the actor
/// from `x-actor`, from a loopback caller (the refusal beyond loopback is
/// `console::tests::development_mode_answers_loopback_only`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn development_mode_names_the_caller_by_x_actor_on_loopback() {
    let server = TestServer::start_with(|c| {
        c.http_listen = Some("127.0.0.1:0".parse().unwrap());
    })
    .await;
    let addr = http_addr(&server);
    for _ in 0..100 {
        if http_get(&addr, "/readyz").0 == 200 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let (status, _, body) = http_request(
        &addr,
        "GET",
        "/console/api/whoami",
        &[("x-actor", "alice")],
        "",
    );
    assert_eq!(status, 200, "{body}");
    let me: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(me["actor"], "dev:alice");
    assert_eq!(me["development"], true);
    let (status, _, body) = http_request(
        &addr,
        "POST",
        "/console/api/rpc/Cases/ListCases",
        &[("x-actor", "alice")],
        "{}",
    );
    assert_eq!(status, 200, "{body}");
    server.stop().await;
}
