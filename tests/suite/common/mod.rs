//! Helpers shared by the black-box tests: a real server on 127.0.0.1:0 over
//! a temporary data directory, real gRPC clients, and event builders.
#![allow(dead_code)]

pub mod auth;
pub mod kf006;
pub mod nats;
pub mod nats_auth;
pub mod netns;
pub mod pki;
pub mod seed_000;

use complaint_ledger::api::server::{start, RunningServer};
use complaint_ledger::config::ServerConfig;
use complaint_ledger::policy::config::PolicyConfig;
use complaint_ledger::policy::Policy;
use complaint_ledger::proto::v1::policies_client::PoliciesClient;
use complaint_ledger::proto::v1::{
    self as pb, case_event::Kind, cases_client::CasesClient, ledger_client::LedgerClient,
};
use std::sync::Arc;
use tonic::transport::Channel;

/// A child process (a real server) killed when the test ends, however it
/// ends.
pub struct Running(pub std::process::Child);

impl Running {
    /// Stops with SIGTERM and returns whether it exited successfully.
    pub fn terminate(mut self) -> bool {
        let pid = self.0.id().to_string();
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while std::time::Instant::now() < deadline {
            if let Some(status) = self.0.try_wait().unwrap() {
                return status.success();
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        false
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A real server process over `dir`, with its gRPC URL: for tests that
/// `kill -9` it.
pub fn spawn_server(dir: &std::path::Path) -> (Running, String) {
    spawn_server_with(dir, &[])
}

/// [`spawn_server`] with more arguments to `serve`.
pub fn spawn_server_with(dir: &std::path::Path, more: &[&str]) -> (Running, String) {
    let more: Vec<String> = more.iter().map(|a| a.to_string()).collect();
    spawn_server_in(None, "127.0.0.1:0", dir, &more)
}

/// A real server process listening on `listen`, in network namespace
/// `netns` if one is named (`ip netns exec`), with more arguments to
/// `serve`. `TEST_SERVER_STDERR` shows its log, at `TEST_LEDGER_LOG`
/// (default `warn`).
pub fn spawn_server_in(
    netns: Option<&str>,
    listen: &str,
    dir: &std::path::Path,
    more: &[String],
) -> (Running, String) {
    use std::io::BufRead;
    let bin = env!("CARGO_BIN_EXE_complaint-ledger");
    let mut cmd = match netns {
        Some(ns) => {
            let mut c = std::process::Command::new("ip");
            c.args(["netns", "exec", ns, bin]);
            c
        }
        None => std::process::Command::new(bin),
    };
    let mut child = cmd
        .args(["serve", "--listen", listen, "--rate-limit-per-second", "0"])
        .args(more)
        .arg("--data-dir")
        .arg(dir)
        .env(
            "COMPLAINT_LEDGER_LOG",
            std::env::var("TEST_LEDGER_LOG").unwrap_or_else(|_| "warn".into()),
        )
        .env("COMPLAINT_LEDGER_HTTP_LISTEN", "127.0.0.1:0")
        .stdout(std::process::Stdio::piped())
        .stderr(if std::env::var_os("TEST_SERVER_STDERR").is_some() {
            std::process::Stdio::inherit()
        } else {
            std::process::Stdio::null()
        })
        .spawn()
        .expect("spawn server");
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .expect("read address");
    let addr = line.trim().rsplit(' ').next().expect("address").to_string();
    assert!(line.starts_with("complaint-ledger listening on"), "{line}");
    (Running(child), format!("http://{addr}"))
}

pub struct TestServer {
    pub server: Option<RunningServer>,
    pub dir: tempfile::TempDir,
    early_warning: bool,
}

/// The test configuration. Tests of the core ledger assert the exact
/// versions of the cases they write; the early-warning process would
/// interleave its WarningRaised events into those cases, so it runs only in
/// the tests that ask for it (`start_with_policy`), as it does in production.
pub fn config(dir: &std::path::Path, early_warning: bool) -> ServerConfig {
    let mut c = ServerConfig::ephemeral(dir);
    let mut p = PolicyConfig::default();
    p.early_warning.enabled = early_warning;
    p.early_warning.tick_seconds = 1;
    c.ledger.policy = Arc::new(Policy::new(p).expect("policy"));
    // Load tests hammer one caller; the rate-limit test sets its own limit.
    c.auth.rate_limit_per_second = 0;
    c
}

impl TestServer {
    pub async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    /// A server running the early-warning process (checking due promises
    /// every second).
    pub async fn start_with_policy() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let server = start(config(dir.path(), true))
            .await
            .expect("server starts");
        Self {
            server: Some(server),
            dir,
            early_warning: true,
        }
    }

    pub async fn start_with(f: impl FnOnce(&mut ServerConfig)) -> Self {
        Self::start_in(tempfile::tempdir().expect("temp dir"), f).await
    }

    pub async fn policies(&self) -> PoliciesClient<Channel> {
        PoliciesClient::connect(self.url()).await.expect("connect")
    }

    pub fn url(&self) -> String {
        self.server.as_ref().expect("running").url()
    }

    /// A connected channel, for clients of any service.
    pub async fn channel(&self) -> Channel {
        Channel::from_shared(self.url())
            .expect("url")
            .connect()
            .await
            .expect("connect")
    }

    pub async fn ledger(&self) -> LedgerClient<Channel> {
        LedgerClient::connect(self.url()).await.expect("connect")
    }

    pub async fn cases(&self) -> CasesClient<Channel> {
        CasesClient::connect(self.url()).await.expect("connect")
    }

    /// Stops gracefully and starts again on the same data directory.
    pub async fn restart(&mut self) {
        self.restart_with(|_| {}).await;
    }

    /// Stops gracefully and starts again on the same data directory with
    /// changed configuration.
    pub async fn restart_with(&mut self, f: impl FnOnce(&mut ServerConfig)) {
        self.server
            .take()
            .expect("running")
            .stop()
            .await
            .expect("clean stop");
        let mut c = config(self.dir.path(), self.early_warning);
        f(&mut c);
        self.server = Some(start(c).await.expect("restart"));
    }

    /// Starts on an existing data directory.
    pub async fn start_in(dir: tempfile::TempDir, f: impl FnOnce(&mut ServerConfig)) -> Self {
        let mut c = config(dir.path(), false);
        f(&mut c);
        let server = start(c).await.expect("server starts");
        Self {
            server: Some(server),
            dir,
            early_warning: false,
        }
    }

    pub async fn stop(mut self) -> tempfile::TempDir {
        self.server
            .take()
            .expect("running")
            .stop()
            .await
            .expect("clean stop");
        self.dir
    }
}

/// An RFC 3339 time as a timestamp, and a proposed event: the seed story's.
pub use complaint_ledger_bench::seed_case::{ev, ts};

/// The case closed, or reopened (`name` "reopen"), at `at`, by agent 8030.
pub fn close_or_reopen(case: &str, name: &str, at: &str) -> pb::ProposedEvent {
    let kind = if name == "close" {
        Kind::CaseClosed(pb::CaseClosed {
            reason: "done".into(),
        })
    } else {
        Kind::CaseReopened(pb::CaseReopened {
            reason: "the customer called again".into(),
        })
    };
    ev(&format!("{case}-{name}"), at, "8030", kind)
}

pub fn opened(customer: &str) -> Kind {
    Kind::CaseOpened(pb::CaseOpened {
        customer_id: customer.into(),
        business_line: "qidian".into(),
        category: "功能设置/自动订阅".into(),
        ..Default::default()
    })
}

pub fn note(text: &str) -> Kind {
    Kind::NoteAdded(pb::NoteAdded { text: text.into() })
}

pub fn append(case_id: &str, events: Vec<pb::ProposedEvent>) -> pb::AppendRequest {
    pb::AppendRequest {
        case_id: case_id.into(),
        expected_version: None,
        events,
    }
}

pub fn expect_exact(v: u64) -> Option<pb::ExpectedVersion> {
    Some(pb::ExpectedVersion {
        kind: Some(pb::expected_version::Kind::Exact(v)),
    })
}

pub fn expect_no_case() -> Option<pb::ExpectedVersion> {
    Some(pb::ExpectedVersion {
        kind: Some(pb::expected_version::Kind::NoCase(pb::Empty {})),
    })
}

/// Opens a case with one event and returns nothing but success.
pub async fn open_case(client: &mut LedgerClient<Channel>, case_id: &str, customer: &str) {
    client
        .append(append(
            case_id,
            vec![ev(
                &format!("{case_id}-open"),
                "2020-12-03T01:24:30+08:00",
                "8030",
                opened(customer),
            )],
        ))
        .await
        .expect("case opens");
}

/// Adds `notes` notes to each case, interleaved (`{case}-n{i}`, "note {i}").
pub async fn add_notes(client: &mut LedgerClient<Channel>, cases: &[&str], notes: usize) {
    for i in 0..notes {
        for case in cases {
            client
                .append(append(
                    case,
                    vec![ev(
                        &format!("{case}-n{i}"),
                        "2020-12-03T02:00:00+08:00",
                        "8030",
                        note(&format!("note {i}")),
                    )],
                ))
                .await
                .expect("note appends");
        }
    }
}

/// Reads a whole case.
pub async fn read_case(
    client: &mut LedgerClient<Channel>,
    case_id: &str,
) -> Vec<pb::RecordedEvent> {
    let mut s = client
        .read_case(pb::ReadCaseRequest {
            case_id: case_id.into(),
            ..Default::default()
        })
        .await
        .expect("read case")
        .into_inner();
    let mut out = Vec::new();
    while let Some(e) = s.message().await.expect("stream") {
        out.push(e);
    }
    out
}

/// The PII-access log as `Privacy.ListPiiAccess` lists it at `url`.
pub async fn pii_access_at(url: String) -> Vec<pb::PiiAccess> {
    complaint_ledger::proto::v1::privacy_client::PrivacyClient::connect(url)
        .await
        .expect("connect")
        .list_pii_access(pb::ListPiiAccessRequest::default())
        .await
        .expect("list PII access")
        .into_inner()
        .entries
}

/// `Ops.GetStats` of the server at `url`.
pub async fn stats_at(url: String) -> pb::Stats {
    pb::ops_client::OpsClient::connect(url)
        .await
        .expect("connect")
        .get_stats(pb::GetStatsRequest {})
        .await
        .expect("stats")
        .into_inner()
}

/// Drains a ReadAll stream.
pub async fn read_all(
    client: &mut LedgerClient<Channel>,
    req: pb::ReadAllRequest,
) -> Vec<pb::RecordedEvent> {
    let mut s = client.read_all(req).await.expect("read all").into_inner();
    let mut out = Vec::new();
    while let Some(e) = s.message().await.expect("stream") {
        out.push(e);
    }
    out
}

/// The google.rpc details of a status.
pub fn details(status: &tonic::Status) -> tonic_types::ErrorDetails {
    use tonic_types::StatusExt;
    status.get_error_details()
}

/// A party of the given kind and id.
pub fn party(kind: pb::PartyKind, id: &str) -> Option<pb::Party> {
    Some(pb::Party {
        kind: kind as i32,
        id: id.into(),
    })
}

/// A case as `GetCase` shows it, judged at `evaluate_at` (RFC 3339) or now.
pub async fn get_case(
    server: &TestServer,
    case_id: &str,
    evaluate_at: Option<&str>,
) -> pb::CaseView {
    server
        .cases()
        .await
        .get_case(pb::GetCaseRequest {
            case_id: case_id.into(),
            evaluate_at: evaluate_at.map(ts),
            ..Default::default()
        })
        .await
        .expect("get case")
        .into_inner()
}

/// Reads `case_id` until `done` holds of its events (up to 20 s), and
/// returns them then.
pub async fn wait_until(
    server: &TestServer,
    case_id: &str,
    done: impl Fn(&[pb::RecordedEvent]) -> bool,
) -> Vec<pb::RecordedEvent> {
    let mut client = server.ledger().await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let events = read_case(&mut client, case_id).await;
        if done(&events) {
            return events;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "case {case_id} not there after 20 s: {:?}",
            kinds_of(&events)
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

/// Waits (up to 20 s) until `case_id` holds an event that `pred` accepts,
/// and returns the case's events then.
pub async fn wait_for_event(
    server: &TestServer,
    case_id: &str,
    pred: impl Fn(&pb::RecordedEvent) -> bool,
) -> Vec<pb::RecordedEvent> {
    wait_until(server, case_id, |events| events.iter().any(&pred)).await
}

/// The event kinds of a case's events, by type name.
pub fn kinds_of(events: &[pb::RecordedEvent]) -> Vec<&str> {
    events.iter().map(|e| e.event_type.as_str()).collect()
}

/// Runs the real binary with `args` (off the test's runtime threads).
pub async fn cli(args: &[&str]) -> std::process::Output {
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_complaint-ledger"))
            .args(&args)
            .env("COMPLAINT_LEDGER_LOG", "warn")
            .output()
            .expect("run the cli")
    })
    .await
    .unwrap()
}

/// A command's standard output and error, as text.
pub fn text(o: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Restarts `server` (configured further by `f`) with a calendar directory
/// whose `cn-mainland` covers 2027 officially. Test data, not the holiday
/// notice: the shipped file with one more year holding only New Year's
/// Day, the one 2027 day off certain without the notice.
pub async fn restart_with_an_official_2027(
    server: &mut TestServer,
    f: impl FnOnce(&mut ServerConfig),
) {
    let shipped = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/calendars/cn-mainland.toml"
    ))
    .unwrap();
    let text = shipped
        .replace("version = \"2026.1\"", "version = \"2027.test\"")
        .replace("last_year = 2026", "last_year = 2027")
        + "\n[[year]]\nyear = 2027\nsources = [\"test data\"]\n\n[[year.holiday]]\nname = \"元旦\"\noff = [\"2027-01-01\"]\n";
    let dir = server.dir.path().join("calendars");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("cn-mainland.toml"), text).unwrap();
    server
        .restart_with(|c| {
            f(c);
            let mut p = c.ledger.policy.config.clone();
            p.calendars.directory = Some(dir);
            c.ledger.policy = Arc::new(Policy::new(p).unwrap());
        })
        .await;
}

/// `GET path` over HTTP/1.1: (status code, body).
pub fn http_get(addr: &str, path: &str) -> (u16, String) {
    let (status, _, body) = http_request(addr, "GET", path, &[], "");
    (status, body)
}

/// One HTTP/1.1 request: (status, the response's head in lower case,
/// body). Chunked bodies: the tests read only what they search for, so the
/// chunk-size lines in between do no harm.
pub fn http_request(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, String, String) {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(30)))
        .unwrap();
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    req.push_str(body);
    s.write_all(req.as_bytes()).unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let raw = String::from_utf8_lossy(&raw).to_string();
    let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((&raw, ""));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (status, head.to_ascii_lowercase(), body.to_string())
}
