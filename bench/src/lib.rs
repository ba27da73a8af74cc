//! `complaint-ledger-bench`: the ledger measured end to end through gRPC,
//! beside references measured in the same run with the same load generator
//! (see [`mod@reference`]). Prints a table and writes the same figures as JSON.
//!
//! The ledger runs as a separate `complaint-ledger serve` process on a
//! temporary data directory, like the no-op reference server, so client and
//! servers share the machine the same way in every measurement; it checks
//! bearer tokens as in production (see [`credentials`]).

pub mod case_memory;
pub mod cluster;
pub mod scale;
/// The no-op reference service (`proto/noop.proto`), compiled by build.rs.
#[allow(clippy::all, missing_docs)]
pub mod noop {
    tonic::include_proto!("complaint_ledger.bench.v1");
}
pub mod credentials;
pub mod load;
pub mod reference;
pub mod report;
pub mod seed_case;

use anyhow::Context;
use complaint_ledger::proto::v1::{self as pb, ledger_client::LedgerClient, ops_client::OpsClient};
use credentials::{Bearer, Credentials};
use load::{LoadResult, Op};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

/// A ledger client sending the benchmark's bearer token.
type Client = LedgerClient<InterceptedService<Channel, Bearer>>;

/// Most concurrent clients of one level: each holds a connection to the
/// ledger, one to the no-op server and one to PostgreSQL, all open at once.
pub const MAX_CLIENTS: usize = 1024;

/// What to run.
#[derive(Debug, Clone)]
pub struct BenchOptions {
    /// Seconds per measured load level.
    pub seconds: f64,
    /// Events in the large log (rebuild, verification, memory, disk).
    pub events: u64,
    /// Cases the single appends spread over.
    pub cases: u64,
    /// Copies of the seed case appended to measure memory per case.
    pub story_cases: u64,
    /// Concurrency levels of the single-append runs.
    pub clients: Vec<usize>,
    /// PostgreSQL connection string for the event-table reference.
    pub postgres: Option<String>,
    /// Where to write the JSON figures.
    pub json: Option<PathBuf>,
    /// Parent of the temporary directory (data directory, scratch files).
    pub work_dir: PathBuf,
    /// The ledger's data directory, kept after the run; when it already
    /// holds the large log's events the fill is skipped. None: a temporary
    /// one, removed afterwards.
    pub data_dir: Option<PathBuf>,
}

impl BenchOptions {
    /// The full run of the issue: 1, 16, 64, 256 clients over 10,000 cases,
    /// 1,000,000 events.
    pub fn full() -> Self {
        Self {
            seconds: 5.0,
            events: 1_000_000,
            cases: 10_000,
            story_cases: 10_000,
            clients: vec![1, 16, 64, 256],
            postgres: None,
            json: None,
            work_dir: std::env::temp_dir(),
            data_dir: None,
        }
    }

    /// A seconds-long smoke run (CI).
    pub fn quick() -> Self {
        Self {
            seconds: 0.5,
            events: 20_000,
            cases: 500,
            story_cases: 200,
            clients: vec![1, 16, 64],
            ..Self::full()
        }
    }

    /// Refuses options that would measure nothing or could not run, naming
    /// the flag.
    pub fn check(&self) -> anyhow::Result<()> {
        anyhow::ensure!(
            self.seconds.is_finite() && (0.05..=3600.0).contains(&self.seconds),
            "--seconds: from 0.05 to 3600 seconds per level (got {})",
            self.seconds
        );
        anyhow::ensure!(
            !self.clients.is_empty() && self.clients.iter().all(|c| (1..=MAX_CLIENTS).contains(c)),
            "--clients: concurrency levels from 1 to {MAX_CLIENTS} (got {:?})",
            self.clients
        );
        anyhow::ensure!(self.cases >= 1, "--cases: at least one");
        anyhow::ensure!(self.story_cases >= 1, "story cases: at least one");
        Ok(())
    }
}

/// Payload bytes of each benchmark event, as the issue sets it.
pub const PAYLOAD_BYTES: usize = 300;

/// A tiny xorshift generator for picking cases; no cryptographic use.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n.max(1)
    }
}

struct Server {
    child: Child,
    url: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// CPU seconds (user + system, all threads) a process has used so far, from
/// `/proc/<pid>/stat` (Linux; clock ticks of 1/100 s, the kernel's fixed
/// USER_HZ). None elsewhere.
fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may hold spaces) in parentheses.
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split(' ').collect();
    let ticks = f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?;
    Some(ticks as f64 / 100.0)
}

/// Microseconds of server CPU per event between two readings.
fn cpu_us_per_event(before: Option<f64>, after: Option<f64>, events: u64) -> Option<f64> {
    Some((after? - before?) * 1e6 / events.max(1) as f64)
}

/// Starts the ledger server on `data`, checking bearer tokens as in
/// production, with the per-caller rate limit off (the benchmark measures
/// the ledger), and without the scrub's tail passes unless
/// `COMPLAINT_LEDGER_VERIFY_TAIL_SECONDS` asks for them: a pass would verify
/// the fill's records on one core in the middle of whichever level runs
/// ten minutes in, and "the first start after the fill" would measure how
/// far the last pass got. Their effect is measured by setting it.
fn spawn_ledger(data: &Path, creds: &Credentials) -> anyhow::Result<Server> {
    spawn_ledger_with(data, creds, &[])
}

/// [`spawn_ledger`] with more arguments to `serve` (a clustered node's).
fn spawn_ledger_with(data: &Path, creds: &Credentials, more: &[String]) -> anyhow::Result<Server> {
    let mut args = [
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--rate-limit-per-second",
        "0",
    ]
    .map(String::from)
    .to_vec();
    if std::env::var_os("COMPLAINT_LEDGER_VERIFY_TAIL_SECONDS").is_none() {
        args.extend(["--verify-tail-seconds".into(), "0".into()]);
    }
    args.extend(creds.server_args());
    args.extend(more.iter().cloned());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    spawn(&ledger_binary()?, &args, Some(data))
}

/// The `complaint-ledger` binary the benchmark measures:
/// `COMPLAINT_LEDGER_BIN`, or the one built beside this benchmark (the
/// same target directory and profile).
pub fn ledger_binary() -> anyhow::Result<PathBuf> {
    if let Some(bin) = std::env::var_os("COMPLAINT_LEDGER_BIN") {
        return Ok(PathBuf::from(bin));
    }
    let here = std::env::current_exe().context("locating this binary")?;
    let beside = here.with_file_name(format!("complaint-ledger{}", std::env::consts::EXE_SUFFIX));
    anyhow::ensure!(
        beside.exists(),
        "no complaint-ledger binary beside {}: build it (cargo build --release --bin complaint-ledger) or set COMPLAINT_LEDGER_BIN",
        here.display()
    );
    Ok(beside)
}

/// Starts `program <args>` and reads the address from its first line.
fn spawn(program: &Path, args: &[&str], dir: Option<&Path>) -> anyhow::Result<Server> {
    let mut cmd = Command::new(program);
    cmd.args(args);
    if let Some(d) = dir {
        cmd.arg("--data-dir").arg(d);
    }
    let mut child = cmd
        .env(
            "COMPLAINT_LEDGER_LOG",
            std::env::var("COMPLAINT_LEDGER_BENCH_SERVER_LOG").unwrap_or_else(|_| "warn".into()),
        )
        .env("COMPLAINT_LEDGER_HTTP_LISTEN", "127.0.0.1:0")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .context("starting a server")?;
    let mut line = String::new();
    BufReader::new(child.stdout.take().context("server stdout")?).read_line(&mut line)?;
    let addr = line
        .trim()
        .rsplit(' ')
        .next()
        .unwrap_or_default()
        .to_string();
    anyhow::ensure!(
        line.contains("listening on"),
        "server did not start: {line:?}"
    );
    Ok(Server {
        child,
        url: format!("http://{addr}"),
    })
}

fn note_event(id: String, text: &str) -> pb::ProposedEvent {
    pb::ProposedEvent {
        event_id: id,
        occurred_at: Some(complaint_ledger::time::now_ts()),
        acted_for_agent: "8030".into(),
        correlation_id: String::new(),
        causation_id: String::new(),
        imported: false,
        event: Some(pb::CaseEvent {
            kind: Some(pb::case_event::Kind::NoteAdded(pb::NoteAdded {
                text: text.to_string(),
            })),
        }),
    }
}

/// An event with the same bytes in every run (a fixed `occurred_at`): the
/// cases' openings and the 1,000-event case, which a run on a kept data
/// directory then finds written already (each retry an idempotent
/// duplicate).
fn fixed(mut e: pb::ProposedEvent) -> pb::ProposedEvent {
    e.occurred_at = Some(prost_types::Timestamp {
        seconds: 1_767_225_600, // 2026-01-01T00:00:00Z
        nanos: 0,
    });
    e
}

fn open_event(id: String) -> pb::ProposedEvent {
    fixed(pb::ProposedEvent {
        event: Some(pb::CaseEvent {
            kind: Some(pb::case_event::Kind::CaseOpened(pb::CaseOpened {
                customer_id: "cust-bench".into(),
                business_line: "qidian".into(),
                category: "benchmark".into(),
                ..Default::default()
            })),
        }),
        ..note_event(id, "")
    })
}

/// `n` clients, each on a connection of its own.
async fn connect_all(url: &str, n: usize, bearer: &Bearer) -> anyhow::Result<Vec<Client>> {
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let channel = Channel::from_shared(url.to_string())?.connect().await?;
        out.push(LedgerClient::with_interceptor(channel, bearer.clone()));
    }
    Ok(out)
}

/// Appends of `per_request` notes each to random cases, at `clients`
/// concurrency, for `duration`.
async fn ledger_appends(
    conns: &[Client],
    clients: usize,
    cases: u64,
    per_request: usize,
    duration: Duration,
    tag: &str,
) -> LoadResult {
    let text = "x".repeat(PAYLOAD_BYTES);
    load::run(clients, duration, |c| {
        let client = conns[c % conns.len()].clone();
        let (text, tag) = (text.clone(), tag.to_string());
        let mut rng = Rng::new(c as u64 + 7);
        let op: Op = Box::new(move |i| {
            let mut client = client.clone();
            let case = format!("case-{}", rng.below(cases));
            let events = (0..per_request)
                .map(|k| note_event(format!("{tag}-{c}-{i}-{k}"), &text))
                .collect();
            Box::pin(async move {
                client
                    .append(pb::AppendRequest {
                        case_id: case,
                        expected_version: None,
                        events,
                    })
                    .await
                    .map(|_| per_request as u64)
                    .map_err(|e| e.to_string())
            })
        });
        op
    })
    .await
}

/// Opens cases `case-0..n` with 64 concurrent writers.
async fn open_cases(conns: &[Client], n: u64) -> anyhow::Result<()> {
    let mut tasks = Vec::new();
    for (w, client) in conns.iter().take(64).enumerate() {
        let mut client = client.clone();
        let stride = conns.len().min(64) as u64;
        tasks.push(tokio::spawn(async move {
            let mut case = w as u64;
            while case < n {
                client
                    .append(pb::AppendRequest {
                        case_id: format!("case-{case}"),
                        expected_version: None,
                        events: vec![open_event(format!("open-{case}"))],
                    })
                    .await?;
                case += stride;
            }
            Ok::<_, tonic::Status>(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    Ok(())
}

/// Fills the log of the server at `url` up to `events` events with
/// batched appends of notes (100 per request, 16 writers) over `cases`
/// cases, opened already.
async fn fill_notes(
    conns: &[Client],
    url: &str,
    bearer: &Bearer,
    events: u64,
    cases: u64,
    run: &str,
) -> anyhow::Result<()> {
    let head = stats(url, bearer).await?.head_position;
    if head >= events {
        return Ok(());
    }
    eprintln!("bench: filling the log to {events} events");
    let text = "x".repeat(PAYLOAD_BYTES);
    let need = events - head;
    let per_writer = need.div_ceil(16 * 100);
    let mut tasks = Vec::new();
    for (w, client) in conns.iter().take(16).enumerate() {
        let mut client = client.clone();
        let (text, run) = (text.clone(), run.to_string());
        tasks.push(tokio::spawn(async move {
            let mut rng = Rng::new(w as u64 + 99);
            for i in 0..per_writer {
                let events = (0..100)
                    .map(|k| note_event(format!("{run}-fill-{w}-{i}-{k}"), &text))
                    .collect();
                client
                    .append(pb::AppendRequest {
                        case_id: format!("case-{}", rng.below(cases)),
                        expected_version: None,
                        events,
                    })
                    .await?;
            }
            Ok::<_, tonic::Status>(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    Ok(())
}

/// Stops a server with SIGTERM (a clean close) and waits for it to exit.
async fn stop(server: Server) -> anyhow::Result<()> {
    let pid = server.child.id().to_string();
    Command::new("kill").args(["-TERM", &pid]).status()?;
    let mut server = server;
    let server = tokio::task::spawn_blocking(move || server.child.wait().map(|_| server)).await??;
    drop(server);
    Ok(())
}

async fn stats(url: &str, bearer: &Bearer) -> anyhow::Result<pb::Stats> {
    let channel = Channel::from_shared(url.to_string())?.connect().await?;
    Ok(OpsClient::with_interceptor(channel, bearer.clone())
        .get_stats(pb::GetStatsRequest {})
        .await?
        .into_inner())
}

/// A server's resident memory once it has settled: sampled every 500 ms
/// until two seconds of samples stay within 2 % of each other (at most 60
/// s). A restarted server may still be busy after it listens (background
/// processes catching up, the allocator returning start-up memory), so its
/// first sample says little.
async fn settled_resident_bytes(url: &str, bearer: &Bearer) -> anyhow::Result<u64> {
    let started = Instant::now();
    let mut samples: Vec<u64> = Vec::new();
    loop {
        samples.push(stats(url, bearer).await?.resident_bytes);
        let recent = &samples[samples.len().saturating_sub(5)..];
        let (lo, hi) = (
            recent.iter().copied().min().unwrap_or(0),
            recent.iter().copied().max().unwrap_or(0),
        );
        if (recent.len() == 5 && hi - lo <= hi / 50) || started.elapsed().as_secs() >= 60 {
            return Ok(*samples.last().unwrap_or(&0));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Runs the whole benchmark and returns the report.
pub async fn run(opts: BenchOptions) -> anyhow::Result<report::Report> {
    opts.check()?;
    let dir = opts
        .work_dir
        .join(format!("complaint-ledger-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    let data = opts.data_dir.clone().unwrap_or_else(|| dir.join("data"));
    let result = run_in(&opts, &dir, &data).await;
    let _ = std::fs::remove_dir_all(&dir);
    let report = result?;
    println!("{}", report.table());
    if let Some(path) = &opts.json {
        std::fs::write(path, serde_json::to_string_pretty(&report.json())?)?;
        println!("figures written to {}", path.display());
    }
    Ok(report)
}

async fn run_in(opts: &BenchOptions, dir: &Path, data: &Path) -> anyhow::Result<report::Report> {
    // Event ids unique to this run: a run on a kept data directory appends
    // new events instead of retrying the last run's (which would measure
    // duplicate detection).
    let run = format!(
        "{:x}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis())
    );
    let duration = Duration::from_secs_f64(opts.seconds);
    let max_clients = opts.clients.iter().copied().max().unwrap_or(1).max(64);
    let mut rep = report::Report::new(opts);

    let creds = Credentials::new(dir)?;
    let server = spawn_ledger(data, &creds)?;
    let this = std::env::current_exe().context("locating this binary")?;
    let noop = spawn(&this, &["noop-server"], None)?;
    eprintln!(
        "bench: ledger at {}, no-op reference at {}",
        server.url, noop.url
    );
    let conns = connect_all(&server.url, max_clients, &creds.bearer).await?;
    eprintln!("bench: opening {} cases", opts.cases);
    open_cases(&conns, opts.cases).await?;
    if let Some(url) = &opts.postgres {
        reference::postgres_setup(url)
            .await
            .context("preparing the PostgreSQL table")?;
    }

    // 1. Durable single-event appends, with the references at each level.
    let record_bytes = {
        let s = stats(&server.url, &creds.bearer).await?;
        (s.disk_bytes / s.head_position.max(1)).clamp(256, 4096) as usize
    };
    for (level, &c) in opts.clients.iter().enumerate() {
        eprintln!("bench: single appends, {c} clients");
        let before = stats(&server.url, &creds.bearer).await?;
        let cpu_before = cpu_seconds(server.child.id());
        let ledger =
            ledger_appends(&conns, c, opts.cases, 1, duration, &format!("{run}-s{c}")).await;
        let server_cpu_us =
            cpu_us_per_event(cpu_before, cpu_seconds(server.child.id()), ledger.events);
        let after = stats(&server.url, &creds.bearer).await?;
        let commits = after.commits.saturating_sub(before.commits).max(1);
        let batch = after
            .committed_records
            .saturating_sub(before.committed_records) as f64
            / commits as f64;
        let noop_cpu_before = cpu_seconds(noop.child.id());
        let grpc = reference::grpc_ceiling(&noop.url, c, duration, PAYLOAD_BYTES).await?;
        let grpc_cpu_us =
            cpu_us_per_event(noop_cpu_before, cpu_seconds(noop.child.id()), grpc.events);
        // Kept until the run's directory is removed at the end (see
        // `fdatasync_ceiling`): deleting it here would stall the next level.
        let disk = reference::fdatasync_ceiling(
            &dir.join(format!("fdatasync-reference-{level}.log")),
            batch.round().max(1.0) as usize,
            record_bytes,
            duration,
        )?;
        let pg = match &opts.postgres {
            Some(url) => Some(
                reference::postgres(
                    url,
                    c,
                    opts.cases,
                    duration,
                    PAYLOAD_BYTES,
                    &format!("{run}-s{c}"),
                )
                .await?,
            ),
            None => None,
        };
        rep.single.push(report::SingleRow {
            clients: c,
            ledger,
            batch,
            grpc,
            disk_events_per_second: disk,
            postgres: pg,
            server_cpu_us,
            grpc_cpu_us,
            writer: report::WriterSplit::between(&before, &after),
        });
    }

    // 2. Batched appends: 100 events per request.
    eprintln!("bench: batched appends");
    let before = stats(&server.url, &creds.bearer).await?;
    let cpu_before = cpu_seconds(server.child.id());
    let batched = ledger_appends(&conns, 16, opts.cases, 100, duration, &format!("{run}-b")).await;
    rep.batched_cpu_us =
        cpu_us_per_event(cpu_before, cpu_seconds(server.child.id()), batched.events);
    let after = stats(&server.url, &creds.bearer).await?;
    rep.batched_writer = report::WriterSplit::between(&before, &after);
    rep.batched = Some(batched);

    // 3. Reads: a 1,000-event case, the whole log, a subscription's catch-up.
    eprintln!("bench: reads");
    let mut c = conns[0].clone();
    c.append(pb::AppendRequest {
        case_id: "read-1000".into(),
        expected_version: None,
        events: vec![open_event("read-1000-open".into())],
    })
    .await?;
    eprintln!("bench: writing a 1,000-event case");
    let text = "x".repeat(PAYLOAD_BYTES);
    for b in 0..10 {
        let events = (0..if b == 9 { 99 } else { 100 })
            .map(|k| fixed(note_event(format!("read-1000-{b}-{k}"), &text)))
            .collect();
        c.append(pb::AppendRequest {
            case_id: "read-1000".into(),
            expected_version: None,
            events,
        })
        .await?;
    }
    eprintln!("bench: reading it");
    rep.read_case = Some(
        load::run(1, duration, |_| {
            let client = conns[0].clone();
            let op: Op = Box::new(move |_| {
                let mut client = client.clone();
                Box::pin(async move {
                    let mut s = client
                        .read_case(pb::ReadCaseRequest {
                            case_id: "read-1000".into(),
                            ..Default::default()
                        })
                        .await
                        .map_err(|e| e.to_string())?
                        .into_inner();
                    let mut n = 0;
                    while s.message().await.map_err(|e| e.to_string())?.is_some() {
                        n += 1;
                    }
                    Ok(n)
                })
            });
            op
        })
        .await,
    );

    // 4. Fill the log to the large size with batched appends.
    fill_notes(
        &conns,
        &server.url,
        &creds.bearer,
        opts.events,
        opts.cases,
        &run,
    )
    .await?;
    let big = stats(&server.url, &creds.bearer).await?;
    rep.large = Some(report::Large {
        events: big.head_position,
        resident_bytes: big.resident_bytes,
        disk_bytes: big.disk_bytes,
        ..Default::default()
    });

    // ReadAll and Subscribe over the large log.
    eprintln!("bench: ReadAll");
    let t = Instant::now();
    let mut s = c
        .read_all(pb::ReadAllRequest::default())
        .await?
        .into_inner();
    let mut n = 0u64;
    while s.message().await?.is_some() {
        n += 1;
    }
    rep.read_all = Some((n, t.elapsed().as_secs_f64()));
    eprintln!("bench: Subscribe");
    let t = Instant::now();
    let mut s = c
        .subscribe(pb::SubscribeRequest::default())
        .await?
        .into_inner();
    let mut n = 0u64;
    while let Some(m) = s.message().await? {
        match m.kind {
            Some(pb::subscribe_response::Kind::Event(_)) => n += 1,
            _ => break,
        }
    }
    rep.subscribe = Some((n, t.elapsed().as_secs_f64()));
    drop(s);
    eprintln!("bench: bearer-token checks");
    rep.token_check = Some(credentials::measure(dir)?);

    // Stop the server (SIGTERM: a clean close), then rebuild, verify and
    // restart on its data directory.
    drop(conns);
    drop(c);
    stop(server).await?;
    drop(noop);

    let log = complaint_ledger::store::SledLog::open(
        data,
        &complaint_ledger::store::SledOptions::default(),
    )?;
    eprintln!("bench: rebuilding projections");
    let t = Instant::now();
    let rebuilt = complaint_ledger::projections::rebuild::rebuild(&log, |_, _| {})?;
    let rebuild_s = t.elapsed().as_secs_f64();
    eprintln!("bench: verifying the store");
    let t = Instant::now();
    let verified = complaint_ledger::audit::verify::verify_store(&log, |_, _| {})?;
    let verify_s = t.elapsed().as_secs_f64();
    drop(log);
    anyhow::ensure!(
        rebuilt.records == verified.records,
        "rebuild and verification saw different logs"
    );
    // The first start after the fill verifies every record: nothing has
    // verified them fully before (the scrub's first pass is a day away).
    // It marks them verified; the second start checks only what was
    // written since (nothing), as a restart after a scrub pass does.
    let t = Instant::now();
    let restarted = spawn_ledger(data, &creds)?;
    let startup_full_s = t.elapsed().as_secs_f64();
    stop(restarted).await?;
    let t = Instant::now();
    let restarted = spawn_ledger(data, &creds)?;
    let startup_s = t.elapsed().as_secs_f64();
    eprintln!("bench: resident memory after the restart");
    let resident_after_restart = settled_resident_bytes(&restarted.url, &creds.bearer).await?;
    drop(restarted);
    if let Some(l) = rep.large.as_mut() {
        l.rebuild_seconds = rebuild_s;
        l.verify_seconds = verify_s;
        l.startup_seconds = startup_s;
        l.startup_full_seconds = startup_full_s;
        l.resident_after_restart_bytes = resident_after_restart;
    }

    for (closed, name) in [(true, "closed"), (false, "open")] {
        eprintln!(
            "bench: memory per case, {} copies of seed case 124545, {name}",
            opts.story_cases
        );
        let data = dir.join(format!("story-cases-{name}"));
        let m = case_memory::measure(&data, &creds, opts.story_cases, closed).await?;
        rep.case_memory.push(m);
    }
    Ok(rep)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_that_would_measure_nothing_are_refused_naming_the_flag() {
        assert!(BenchOptions::full().check().is_ok());
        assert!(BenchOptions::quick().check().is_ok());
        for seconds in [0.0, -1.0, f64::NAN, f64::INFINITY, 7200.0] {
            let o = BenchOptions {
                seconds,
                ..BenchOptions::quick()
            };
            let e = o.check().unwrap_err().to_string();
            assert!(e.starts_with("--seconds:"), "{e}");
        }
        for clients in [vec![], vec![1, 0], vec![MAX_CLIENTS + 1]] {
            let o = BenchOptions {
                clients,
                ..BenchOptions::quick()
            };
            let e = o.check().unwrap_err().to_string();
            assert!(e.starts_with("--clients:"), "{e}");
        }
    }
}
