//! What an operator meets: the container's entrypoint run with the image's
//! environment, the command-line tools against a server with JWT and mTLS,
//! health and readiness, `/metrics`, the access log, and OTLP traces
//! received by a real OTLP collector endpoint.

use crate::common::auth::{self, token};
use crate::common::pki::Pki;
use crate::common::Running;
use crate::common::*;
use complaint_ledger::config::TlsFiles;
use complaint_ledger::proto::v1 as pb;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_complaint-ledger");

/// Starts `serve` and reads its address lines: (process, gRPC address,
/// HTTP address if any, the stderr reader).
fn spawn_serve(
    args: &[&str],
    env: &[(&str, String)],
) -> (Running, String, Option<String>, std::process::ChildStderr) {
    let mut cmd = Command::new(BIN);
    cmd.arg("serve")
        .args(args)
        .env_remove("COMPLAINT_LEDGER_LOG")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let stderr = child.stderr.take().unwrap();
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    assert!(
        line.starts_with("complaint-ledger listening on"),
        "server did not start: {line:?}"
    );
    let addr = line.trim().rsplit(' ').next().unwrap().to_string();
    // The second line, only when the HTTP listener is on.
    let http = args
        .windows(2)
        .any(|w| w[0] == "--http-listen" && !w[1].is_empty())
        .then(|| {
            let mut http = String::new();
            out.read_line(&mut http).unwrap();
            http.trim()
                .strip_prefix("complaint-ledger metrics and probes on http://")
                .map(str::to_string)
        })
        .flatten();
    // Keep stdout open (and drained) for the server's life.
    std::thread::spawn(move || std::io::copy(&mut out, &mut std::io::sink()));
    (Running(child), addr, http, stderr)
}

/// Lines of a child's stderr, collected in the background.
fn collect_lines(
    stderr: std::process::ChildStderr,
) -> std::sync::Arc<std::sync::Mutex<Vec<String>>> {
    let lines = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let sink = lines.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            match line {
                Ok(l) => sink.lock().unwrap().push(l),
                Err(_) => break,
            }
        }
    });
    lines
}

// --- The container -------------------------------------------------------

/// The final stage of deploy/Containerfile: its ENV, ENTRYPOINT and
/// HEALTHCHECK command.
struct Image {
    env: Vec<(String, String)>,
    entrypoint: Vec<String>,
    healthcheck: Vec<String>,
}

fn json_array(s: &str) -> Vec<String> {
    serde_json::from_str(s.trim()).expect("a JSON array (exec form)")
}

fn read_image() -> Image {
    let text =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/Containerfile"))
            .unwrap();
    // Continuation lines joined; only the last stage counts.
    let joined = text.replace("\\\n", " ");
    let last_stage = joined.rsplit("\nFROM ").next().unwrap();
    let mut image = Image {
        env: Vec::new(),
        entrypoint: Vec::new(),
        healthcheck: Vec::new(),
    };
    for line in last_stage.lines().map(str::trim) {
        if let Some(rest) = line.strip_prefix("ENV ") {
            for pair in rest.split_whitespace() {
                let (k, v) = pair.split_once('=').expect("ENV key=value");
                image.env.push((k.to_string(), v.to_string()));
            }
        } else if let Some(rest) = line.strip_prefix("ENTRYPOINT ") {
            image.entrypoint = json_array(rest);
        } else if let Some(rest) = line.strip_prefix("HEALTHCHECK ") {
            let cmd = rest.split_once("CMD ").expect("HEALTHCHECK … CMD").1;
            image.healthcheck = json_array(cmd);
        }
    }
    assert!(!image.entrypoint.is_empty() && !image.healthcheck.is_empty());
    image
}

/// The image's paths mapped into a temporary directory, its binary to the
/// one under test, its ports to free ones.
struct Mapped {
    root: PathBuf,
}

impl Mapped {
    fn path(&self, s: &str) -> String {
        if s == "/usr/local/bin/complaint-ledger" {
            return BIN.to_string();
        }
        for prefix in ["/var/lib/complaint-ledger", "/run/secrets/complaint-ledger"] {
            if let Some(rest) = s.strip_prefix(prefix) {
                let dir = self.root.join(prefix.trim_start_matches('/'));
                std::fs::create_dir_all(&dir).unwrap();
                return format!("{}{rest}", dir.display());
            }
        }
        s.to_string()
    }
}

/// Runs the image's entrypoint with the image's environment plus `extra`;
/// the listeners on free ports.
fn run_entrypoint(image: &Image, m: &Mapped, extra: &[(&str, String)]) -> Command {
    let entry: Vec<String> = image.entrypoint.iter().map(|a| m.path(a)).collect();
    let mut cmd = Command::new(&entry[0]);
    cmd.args(&entry[1..]).env_clear();
    cmd.env("PATH", std::env::var("PATH").unwrap_or_default());
    for (k, v) in &image.env {
        let v = match k.as_str() {
            // The ports are the image's; a test takes free ones.
            "COMPLAINT_LEDGER_LISTEN" | "COMPLAINT_LEDGER_HTTP_LISTEN" => {
                v.rsplit_once(':').unwrap().0.to_string() + ":0"
            }
            _ => m.path(v),
        };
        cmd.env(k, v);
    }
    for (k, v) in extra {
        cmd.env(k, v);
    }
    cmd
}

/// Starts the entrypoint and waits until it listens: (process, gRPC port).
fn start_entrypoint(image: &Image, m: &Mapped, extra: &[(&str, String)]) -> (Running, String) {
    let mut child = Running(
        run_entrypoint(image, m, extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let mut out = BufReader::new(child.0.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    assert!(line.starts_with("complaint-ledger listening on"), "{line}");
    std::thread::spawn(move || std::io::copy(&mut out, &mut std::io::sink()));
    (child, line.trim().rsplit(':').next().unwrap().to_string())
}

#[test]
fn the_container_entrypoint_starts_with_a_mounted_key_and_refuses_without_one() {
    let image = read_image();
    let env = |k: &str| {
        image
            .env
            .iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.clone())
    };
    // The image listens on every interface, so it must authenticate.
    assert!(env("COMPLAINT_LEDGER_LISTEN")
        .unwrap()
        .starts_with("0.0.0.0:"));
    let root = tempfile::tempdir().unwrap();
    let m = Mapped {
        root: root.path().to_path_buf(),
    };

    // 1. As built, with nothing mounted or set: a clear refusal.
    let out = run_entrypoint(&image, &m, &[]).output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("COMPLAINT_LEDGER_JWT_ISSUER")
            && err.contains("COMPLAINT_LEDGER_JWT_AUDIENCE"),
        "{err}"
    );
    // JSON log format in the image: the fatal error is a JSON line too.
    let last: serde_json::Value = serde_json::from_str(err.lines().last().unwrap()).unwrap();
    assert_eq!(last["level"], "ERROR", "{err}");

    // 2. Issuer and audience given, the key not mounted: says where.
    let who = [
        ("COMPLAINT_LEDGER_JWT_ISSUER", auth::ISSUER.to_string()),
        ("COMPLAINT_LEDGER_JWT_AUDIENCE", auth::AUDIENCE.to_string()),
        ("COMPLAINT_LEDGER_JWT_ALGORITHM", "HS256".to_string()),
    ];
    let out = run_entrypoint(&image, &m, &who).output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    let key_path = m.path(&env("COMPLAINT_LEDGER_JWT_KEY_FILE").unwrap());
    assert!(err.contains(&key_path) && err.contains("mount"), "{err}");

    // 3. The key mounted as a secret: it starts, its HEALTHCHECK passes,
    // calls need a token.
    std::fs::write(&key_path, auth::SECRET).unwrap();
    let (child, port) = start_entrypoint(&image, &m, &who);
    let health: Vec<String> = image.healthcheck.iter().map(|a| m.path(a)).collect();
    let server_url = env("COMPLAINT_LEDGER_SERVER").unwrap();
    let server_url = format!("{}:{port}", server_url.rsplit_once(':').unwrap().0);
    let status = Command::new(&health[0])
        .args(&health[1..])
        .stdout(Stdio::null())
        .env_clear()
        .env("COMPLAINT_LEDGER_SERVER", &server_url)
        .status()
        .unwrap();
    assert!(status.success(), "the HEALTHCHECK command failed");
    let data_dir = m.path("/var/lib/complaint-ledger");
    assert!(
        Path::new(&data_dir).join("db").exists(),
        "data not in the volume"
    );
    let no_token = Command::new(BIN)
        .args(["replay", "--case", "x", "--server", &server_url])
        .env_remove("COMPLAINT_LEDGER_TOKEN")
        .env_remove("COMPLAINT_LEDGER_TOKEN_FILE")
        .output()
        .unwrap();
    assert!(!no_token.status.success());
    assert!(String::from_utf8_lossy(&no_token.stderr).contains("--token-file"));
    assert!(
        child.terminate(),
        "SIGTERM did not stop the container cleanly"
    );

    // 4. The key in the environment instead of a file.
    std::fs::remove_file(&key_path).unwrap();
    let mut inline = who.to_vec();
    inline.push(("COMPLAINT_LEDGER_JWT_KEY", auth::SECRET.to_string()));
    let (child, _) = start_entrypoint(&image, &m, &inline);
    assert!(child.terminate());
}

#[test]
fn the_build_context_leaves_data_keys_and_build_output_out() {
    let ignore =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/.dockerignore")).unwrap();
    let rules: Vec<&str> = ignore
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    for needed in ["target/", "data/", "**/*.key", ".git/"] {
        assert!(
            rules.contains(&needed),
            "{needed} is not ignored: {rules:?}"
        );
    }
}

// --- The tools against a secured server ----------------------------------

fn run_tool(args: &[&str], env: &[(&str, &str)]) -> (bool, String, String) {
    let mut cmd = Command::new(BIN);
    cmd.args(args)
        .env_remove("COMPLAINT_LEDGER_SERVER")
        .env_remove("COMPLAINT_LEDGER_TOKEN")
        .env_remove("COMPLAINT_LEDGER_TOKEN_FILE");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_tool_authenticates_to_a_server_with_jwt_and_mtls() {
    let pki_dir = tempfile::tempdir().unwrap();
    let p = pki_dir.path();
    let pki = Pki::new(p);
    pki.issue("localhost", "server");
    pki.issue("auditor-workstation", "client");
    let files = TlsFiles {
        cert: p.join("server.pem"),
        key: p.join("server.key"),
        client_ca: Some(pki.ca_file()),
    };
    let secrets = tempfile::tempdir().unwrap();
    let server = TestServer::start_with(|c| {
        c.auth.tokens = Some(auth::verifier(secrets.path()));
        c.auth.tls = Some(files);
    })
    .await;
    let port = server.server.as_ref().unwrap().addr.port();
    let url = format!("https://localhost:{port}");

    // A case, appended over mTLS with an agent's token.
    {
        let tls = tonic::transport::ClientTlsConfig::new()
            .ca_certificate(tonic::transport::Certificate::from_pem(pki.ca_pem()))
            .identity(tonic::transport::Identity::from_pem(
                std::fs::read(p.join("client.pem")).unwrap(),
                std::fs::read(p.join("client.key")).unwrap(),
            ))
            .domain_name("localhost");
        let channel = tonic::transport::Channel::from_shared(url.clone())
            .unwrap()
            .tls_config(tls)
            .unwrap()
            .connect()
            .await
            .unwrap();
        let mut c = pb::ledger_client::LedgerClient::new(channel);
        let agent = token("8030", &["agent"], Some("qidian"), &[]);
        let mut r = append(
            "124545",
            vec![ev(
                "124545-open",
                "2020-12-03T01:24:30+08:00",
                "8030",
                opened("cust-1"),
            )],
        );
        r.expected_version = expect_no_case();
        c.append(auth::bearer(r, &agent)).await.unwrap();
    }

    let token_file = p.join("auditor.jwt");
    std::fs::write(
        &token_file,
        token("audit-1", &["auditor", "ops"], None, &[]),
    )
    .unwrap();
    let ca = pki.ca_file();
    let (cert, key) = (p.join("client.pem"), p.join("client.key"));
    let conn = |extra: &[&str]| -> Vec<String> {
        let mut v: Vec<String> = vec![
            "--server".into(),
            url.clone(),
            "--ca-cert".into(),
            ca.display().to_string(),
            "--client-cert".into(),
            cert.display().to_string(),
            "--client-key".into(),
            key.display().to_string(),
        ];
        v.extend(extra.iter().map(|s| s.to_string()));
        v
    };
    let tf = token_file.display().to_string();
    let kept = p.join("kept.checkpoint").display().to_string();
    let bundle = p.join("case.bundle").display().to_string();
    let tool = |head: &[&str], extra: &[&str]| -> String {
        let args: Vec<String> = head
            .iter()
            .map(|s| s.to_string())
            .chain(conn(extra))
            .collect();
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        let (ok, out, err) = run_tool(&refs, &[]);
        assert!(ok, "{} failed: {out}{err}", head[0]);
        out
    };
    assert!(tool(&["health"], &[]).contains("SERVING"));
    assert!(
        tool(&["replay", "--case", "124545"], &["--token-file", &tf])
            .contains("case 124545: 1 events")
    );
    let kept_out = tool(&["checkpoint", "-o", &kept], &["--token-file", &tf]);
    let pubkey = kept_out
        .lines()
        .find_map(|l| l.strip_prefix("public key (pin it for later verification): "))
        .expect("the checkpoint tool prints the public key")
        .trim()
        .to_string();
    tool(
        &["export", "--case", "124545", "-o", &bundle],
        &["--token-file", &tf],
    );
    assert!(Path::new(&bundle).exists());
    assert!(tool(
        &["verify", "--since", &kept, "--pubkey", &pubkey],
        &["--token-file", &tf]
    )
    .contains("OK"));
    assert!(tool(&["rebuild"], &["--token-file", &tf]).contains("OK"));
    // The token from the environment works as the file does.
    let token_text = std::fs::read_to_string(&token_file).unwrap();
    let replay = [
        vec!["replay".into(), "--case".into(), "124545".into()],
        conn(&[]),
    ]
    .concat();
    let refs: Vec<&str> = replay.iter().map(String::as_str).collect();
    let (ok, out, err) = run_tool(&refs, &[("COMPLAINT_LEDGER_TOKEN", token_text.trim())]);
    assert!(ok && out.contains("case 124545: 1 events"), "{out}{err}");
    // No token: refused, and the tool says what to give.
    let (ok, _, err) = run_tool(&refs, &[]);
    assert!(
        !ok && err.contains("Unauthenticated") && err.contains("--token-file"),
        "{err}"
    );
    // No CA: the server's certificate is not trusted, and the cause is named.
    let no_ca: Vec<&str> = [
        "replay",
        "--case",
        "124545",
        "--server",
        &url,
        "--token-file",
        &tf,
    ]
    .to_vec();
    let (ok, _, err) = run_tool(&no_ca, &[]);
    assert!(!ok && err.to_lowercase().contains("certificate"), "{err}");
    // No client certificate: the mTLS server does not serve it.
    let no_cert: Vec<&str> = [
        "replay",
        "--case",
        "124545",
        "--server",
        &url,
        "--token-file",
        &tf,
        "--ca-cert",
    ]
    .into_iter()
    .chain([ca.to_str().unwrap()])
    .collect();
    let (ok, _, _) = run_tool(&no_cert, &[]);
    assert!(!ok, "served without a client certificate");
    server.stop().await;
}

// --- Metrics, probes, access log -----------------------------------------

/// The value of the first sample of `name` whose labels contain every one of
/// `labels` (`key="value"`).
fn sample(metrics: &str, name: &str, labels: &[&str]) -> Option<f64> {
    metrics.lines().find_map(|l| {
        let rest = l.strip_prefix(name)?;
        let (lbl, value) = match rest.strip_prefix('{') {
            Some(r) => r.split_once("} ")?,
            None => ("", rest.strip_prefix(' ')?),
        };
        labels
            .iter()
            .all(|want| lbl.split(',').any(|have| have == *want))
            .then(|| value.trim().parse().ok())
            .flatten()
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_calls_and_commits_and_each_call_has_an_access_line() {
    let dir = tempfile::tempdir().unwrap();
    let (server, addr, http, stderr) = spawn_serve(
        &[
            "--listen",
            "localhost:0",
            "--http-listen",
            "127.0.0.1:0",
            "--data-dir",
            dir.path().to_str().unwrap(),
        ],
        &[("COMPLAINT_LEDGER_LOG_FORMAT", "json".to_string())],
    );
    let lines = collect_lines(stderr);
    let http = http.expect("the HTTP listener's address line");
    assert_eq!(http_get(&http, "/livez").0, 200);
    // Ready once every service is registered, a moment after it listens.
    let deadline = Instant::now() + Duration::from_secs(10);
    while http_get(&http, "/readyz").0 != 200 {
        assert!(Instant::now() < deadline, "never ready");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(http_get(&http, "/readyz").1.trim(), "ready");

    let mut c = pb::ledger_client::LedgerClient::connect(format!("http://{addr}"))
        .await
        .unwrap();
    let trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    let mut r = tonic::Request::new(append(
        "m-1",
        vec![
            ev(
                "m-1-open",
                "2020-12-03T01:24:30+08:00",
                "8030",
                opened("cust-m"),
            ),
            ev("m-1-n1", "2020-12-03T01:25:30+08:00", "8030", note("first")),
        ],
    ));
    r.metadata_mut().insert(
        "traceparent",
        format!("00-{trace}-00f067aa0ba902b7-01").parse().unwrap(),
    );
    r.metadata_mut().insert("x-actor", "8030".parse().unwrap());
    c.append(r).await.unwrap();
    let missing = pb::cases_client::CasesClient::connect(format!("http://{addr}"))
        .await
        .unwrap()
        .get_case(pb::GetCaseRequest {
            case_id: "no-such-case".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(missing.code(), tonic::Code::NotFound);

    let (code, metrics) = http_get(&http, "/metrics");
    assert_eq!(code, 200);
    let get = |name: &str, labels: &[&str]| {
        sample(&metrics, name, labels)
            .unwrap_or_else(|| panic!("no {name} {labels:?} in:\n{metrics}"))
    };
    let append_ok = [
        "service=\"complaint_ledger.v1.Ledger\"",
        "method=\"Append\"",
        "code=\"OK\"",
    ];
    assert_eq!(get("complaint_ledger_grpc_calls_total", &append_ok), 1.0);
    assert_eq!(
        get(
            "complaint_ledger_grpc_calls_total",
            &["method=\"GetCase\"", "code=\"NOT_FOUND\""]
        ),
        1.0
    );
    assert_eq!(
        get(
            "complaint_ledger_grpc_call_duration_seconds_count",
            &["method=\"Append\""]
        ),
        1.0
    );
    assert_eq!(get("complaint_ledger_events_committed_total", &[]), 2.0);
    assert_eq!(get("complaint_ledger_appends_committed_total", &[]), 1.0);
    // The GetCase after the append waited for the read models to hold it.
    assert_eq!(get("complaint_ledger_committed_position", &[]), 2.0);
    assert_eq!(get("complaint_ledger_head_position", &[]), 2.0);
    assert_eq!(get("complaint_ledger_cases", &[]), 1.0);
    assert_eq!(
        get(
            "complaint_ledger_group_commit_sync_duration_seconds_count",
            &[]
        ),
        1.0
    );
    assert_eq!(get("complaint_ledger_group_commit_events_sum", &[]), 2.0);
    assert!(
        get(
            "complaint_ledger_calendar_coverage_end_timestamp_seconds",
            &[]
        ) > 1.7e9
    );
    assert!(metrics.contains("complaint_ledger_build_info{"));
    // What live allocations hold, by the binary's allocator, below what is
    // resident (which adds its partly used pages, stacks and code); the
    // same figure in Ops.GetStats.
    let allocated = get("complaint_ledger_allocated_memory_bytes", &[]);
    let resident = get("complaint_ledger_resident_memory_bytes", &[]);
    assert!(
        allocated > 1e6 && allocated < resident,
        "allocated {allocated}, resident {resident}"
    );
    let s = pb::ops_client::OpsClient::connect(format!("http://{addr}"))
        .await
        .unwrap()
        .get_stats(pb::GetStatsRequest {})
        .await
        .unwrap()
        .into_inner();
    assert!(
        s.allocated_bytes > 1_000_000 && s.allocated_bytes < s.resident_bytes,
        "{s:?}"
    );
    // Only the methods served are named: a made-up path is "unknown", so no
    // client can grow the label set.
    let channel = tonic::transport::Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready().await.unwrap();
    let made_up = grpc
        .unary(
            tonic::Request::new(()),
            tonic::codegen::http::uri::PathAndQuery::from_static(
                "/complaint_ledger.v1.Ledger/Invented",
            ),
            tonic_prost::ProstCodec::<(), ()>::default(),
        )
        .await
        .unwrap_err();
    assert_eq!(made_up.code(), tonic::Code::Unimplemented);
    let (_, metrics) = http_get(&http, "/metrics");
    assert_eq!(
        sample(
            &metrics,
            "complaint_ledger_grpc_calls_total",
            &[
                "service=\"unknown\"",
                "method=\"unknown\"",
                "code=\"UNIMPLEMENTED\""
            ]
        ),
        Some(1.0),
        "{metrics}"
    );
    assert!(!metrics.contains("Invented"));

    // One access line per call, with what an operator searches by.
    let deadline = Instant::now() + Duration::from_secs(10);
    let access = loop {
        let found: Vec<serde_json::Value> = lines
            .lock()
            .unwrap()
            .iter()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|v| v["target"] == "complaint_ledger::access")
            .collect();
        if found.len() >= 3 || Instant::now() > deadline {
            break found;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let appended = access
        .iter()
        .find(|v| v["fields"]["method"] == "/complaint_ledger.v1.Ledger/Append")
        .expect("an access line for the append");
    let f = &appended["fields"];
    assert_eq!(f["status"], "OK");
    assert_eq!(f["actor"], "dev:8030");
    assert_eq!(f["case_id"], "m-1");
    assert_eq!(f["trace_id"], trace);
    assert!(f["duration_ms"].as_f64().unwrap() > 0.0);
    let refused = access
        .iter()
        .find(|v| v["fields"]["method"] == "/complaint_ledger.v1.Cases/GetCase")
        .expect("an access line for the refused call");
    assert_eq!(refused["fields"]["status"], "NOT_FOUND");
    assert!(server.terminate());
}

#[tokio::test]
async fn readiness_is_distinct_from_liveness() {
    use complaint_ledger::api::http::{start, Phase, Probe};
    let probe = Probe::default();
    let (addr, task) = start("127.0.0.1:0".parse().unwrap(), probe.clone())
        .await
        .unwrap();
    let addr = addr.to_string();
    let get = |path: &'static str| {
        let addr = addr.clone();
        tokio::task::spawn_blocking(move || http_get(&addr, path))
    };
    // Starting: alive, not ready, no metrics yet.
    assert_eq!(get("/livez").await.unwrap().0, 200);
    let (code, body) = get("/readyz").await.unwrap();
    assert_eq!(code, 503);
    assert!(body.contains("starting"), "{body}");
    assert_eq!(get("/metrics").await.unwrap().0, 503);
    probe.set(Phase::Serving);
    assert_eq!(get("/readyz").await.unwrap().0, 200);
    probe.set(Phase::Stopping);
    let (code, body) = get("/readyz").await.unwrap();
    assert_eq!(code, 503);
    assert!(body.contains("stopping"), "{body}");
    assert_eq!(get("/livez").await.unwrap().0, 200);
    task.abort();
}

#[tokio::test]
async fn every_service_reports_serving_then_not_serving_at_shutdown() {
    use tonic_health::pb::{health_client::HealthClient, HealthCheckRequest};
    let server = TestServer::start().await;
    let channel = server.channel().await;
    let mut health = HealthClient::new(channel);
    let names = [
        "",
        "complaint_ledger.v1.Ledger",
        "complaint_ledger.v1.Cases",
        "complaint_ledger.v1.Policies",
        "complaint_ledger.v1.Privacy",
        "complaint_ledger.v1.Audit",
        "complaint_ledger.v1.Ops",
    ];
    let mut watches = Vec::new();
    for name in names {
        let mut w = health
            .watch(HealthCheckRequest {
                service: name.to_string(),
            })
            .await
            .unwrap()
            .into_inner();
        let first = w.message().await.unwrap().unwrap();
        assert_eq!(
            first.status(),
            tonic_health::ServingStatus::Serving.into(),
            "{name:?}"
        );
        watches.push((name, w));
    }
    let stopping = tokio::spawn(server.stop());
    for (name, mut w) in watches {
        let next = tokio::time::timeout(Duration::from_secs(10), w.message())
            .await
            .expect("a status change at shutdown");
        let status = next.ok().flatten().map(|m| m.status());
        assert_eq!(
            status,
            Some(tonic_health::pb::health_check_response::ServingStatus::NotServing),
            "{name:?} was not reported NOT_SERVING at shutdown"
        );
    }
    stopping.await.unwrap();
}

// --- Traces ---------------------------------------------------------------

mod otlp {
    //! A real OTLP/gRPC trace receiver (the collector's TraceService), kept
    //! in memory for the test to read.
    use opentelemetry_proto::tonic::collector::trace::v1::{
        trace_service_server::{TraceService, TraceServiceServer},
        ExportTraceServiceRequest, ExportTraceServiceResponse,
    };
    use opentelemetry_proto::tonic::trace::v1::Span;
    use std::sync::{Arc, Mutex};

    #[derive(Clone, Default)]
    pub struct Receiver(pub Arc<Mutex<Vec<Span>>>);

    #[tonic::async_trait]
    impl TraceService for Receiver {
        async fn export(
            &self,
            request: tonic::Request<ExportTraceServiceRequest>,
        ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
            let mut spans = self.0.lock().unwrap();
            for rs in request.into_inner().resource_spans {
                for ss in rs.scope_spans {
                    spans.extend(ss.spans);
                }
            }
            Ok(tonic::Response::new(ExportTraceServiceResponse {
                partial_success: None,
            }))
        }
    }

    /// Serves the receiver on a free loopback port; returns its address.
    pub async fn start(r: Receiver) -> std::net::SocketAddr {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(
            tonic::transport::Server::builder()
                .add_service(TraceServiceServer::new(r))
                .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
        );
        addr
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn traces_continue_the_callers_trace_into_the_writer_and_reach_an_otlp_receiver() {
    let receiver = otlp::Receiver::default();
    let collector = otlp::start(receiver.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    let (server, addr, _, stderr) = spawn_serve(
        &[
            "--listen",
            "127.0.0.1:0",
            "--http-listen",
            "",
            "--data-dir",
            dir.path().to_str().unwrap(),
        ],
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", format!("http://{collector}")),
            ("OTEL_BSP_SCHEDULE_DELAY", "100".to_string()),
            ("OTEL_SERVICE_NAME", "ledger-under-test".to_string()),
            ("COMPLAINT_LEDGER_LOG", "warn".to_string()),
        ],
    );
    let _lines = collect_lines(stderr);
    let trace = "0af7651916cd43dd8448eb211c80319c";
    let caller_span = "b7ad6b7169203331";
    let mut c = pb::ledger_client::LedgerClient::connect(format!("http://{addr}"))
        .await
        .unwrap();
    let mut r = tonic::Request::new(append(
        "t-1",
        vec![ev(
            "t-1-open",
            "2020-12-03T01:24:30+08:00",
            "8030",
            opened("cust-t"),
        )],
    ));
    r.metadata_mut().insert(
        "traceparent",
        format!("00-{trace}-{caller_span}-01").parse().unwrap(),
    );
    c.append(r).await.unwrap();

    let trace_bytes = hex::decode(trace).unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let spans = loop {
        let spans: Vec<_> = receiver
            .0
            .lock()
            .unwrap()
            .iter()
            .filter(|s| s.trace_id == trace_bytes)
            .cloned()
            .collect();
        // Spans reach the receiver in the order they end, in batches: the
        // writer's span can arrive a batch before the RPC span that encloses
        // it, so wait for both.
        let has = |name: &str| spans.iter().any(|s| s.name == name);
        if (has("ledger.decide") && has("complaint_ledger.v1.Ledger/Append"))
            || Instant::now() > deadline
        {
            break spans;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let names: Vec<&str> = spans.iter().map(|s| s.name.as_str()).collect();
    let rpc = spans
        .iter()
        .find(|s| s.name == "complaint_ledger.v1.Ledger/Append")
        .unwrap_or_else(|| panic!("no RPC span in the caller's trace: {names:?}"));
    assert_eq!(
        hex::encode(&rpc.parent_span_id),
        caller_span,
        "the RPC span is not the caller's span's child"
    );
    // The writer's work for the request is in the same trace, below the RPC.
    let decide = spans
        .iter()
        .find(|s| s.name == "ledger.decide")
        .unwrap_or_else(|| panic!("no writer span in the trace: {names:?}"));
    let by_id: std::collections::HashMap<&[u8], &opentelemetry_proto::tonic::trace::v1::Span> =
        spans.iter().map(|s| (s.span_id.as_slice(), s)).collect();
    let mut up = decide;
    let mut reached_rpc = false;
    while let Some(parent) = by_id.get(up.parent_span_id.as_slice()) {
        if parent.span_id == rpc.span_id {
            reached_rpc = true;
            break;
        }
        up = parent;
    }
    assert!(
        reached_rpc,
        "the writer's span does not descend from the RPC's: {names:?}"
    );
    let case = decide
        .attributes
        .iter()
        .find(|a| a.key == "case_id")
        .and_then(|a| a.value.as_ref())
        .map(|v| format!("{v:?}"));
    assert!(case.is_some_and(|v| v.contains("t-1")), "{decide:?}");
    assert!(server.terminate());
}
