//! The clustered store's figures (`--cluster`): single appends at each
//! client level through one and through two ledger nodes on a
//! three-server NATS JetStream cluster on this machine (a replicated
//! stream, every write synced), beside — in the same run — the
//! single-node ledger, the raw JetStream publish rate (one message per
//! request to a replicated stream, each acknowledged) and PostgreSQL when
//! given. Everything shares this machine's cores: the figures show what
//! the round trips and the replication cost, not what a cluster of
//! machines can take.

use super::credentials::Credentials;
use super::load::{self, LoadResult, Op};
use super::report::WriterSplit;
use super::{
    connect_all, cpu_seconds, cpu_us_per_event, ledger_appends, open_cases, reference,
    spawn_ledger, spawn_ledger_with, stats, stop,
};
use anyhow::Context;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

#[derive(Debug, Clone)]
pub struct ClusterOptions {
    pub seconds: f64,
    pub clients: Vec<usize>,
    pub cases: u64,
    pub postgres: Option<String>,
    pub work_dir: PathBuf,
}

/// One client level.
#[derive(Debug, Clone)]
pub struct ClusterRow {
    pub clients: usize,
    pub single: LoadResult,
    pub one_node: LoadResult,
    pub two_nodes: LoadResult,
    /// Where node A's writer thread spent the one-node level.
    pub one_node_writer: Option<WriterSplit>,
    /// CPU per event of the one-node level, microseconds: the single
    /// node's server, node A's, and the three NATS servers' together.
    pub single_cpu_us: Option<f64>,
    pub one_node_cpu_us: Option<f64>,
    /// Node B's meanwhile: it follows the stream (adopts A's commits).
    pub follower_cpu_us: Option<f64>,
    pub nats_cpu_us: Option<f64>,
    pub raw_jetstream: LoadResult,
    pub postgres: Option<LoadResult>,
}

fn pct(x: f64) -> String {
    format!("{:.0} %", x * 100.0)
}

/// The table of the rows.
pub fn table(rows: &[ClusterRow]) -> String {
    let mut t = String::from(
        "clustered store (3 NATS servers, stream R3, every write synced; ledger nodes and load on this machine)\n\
         clients | single node ev/s | cluster, 1 node ev/s  ×single  p50 ms | cluster, 2 nodes ev/s  ×single  p50 ms | raw JetStream ev/s | PostgreSQL ev/s\n",
    );
    for r in rows {
        let s = r.single.events_per_second().max(1e-9);
        t.push_str(&format!(
            "{:>7} | {:>16.0} | {:>20.0} {:>7.2} {:>7.2} | {:>21.0} {:>7.2} {:>7.2} | {:>18.0} | {:>15}\n",
            r.clients,
            r.single.events_per_second(),
            r.one_node.events_per_second(),
            r.one_node.events_per_second() / s,
            r.one_node.p_ms(0.5),
            r.two_nodes.events_per_second(),
            r.two_nodes.events_per_second() / s,
            r.two_nodes.p_ms(0.5),
            r.raw_jetstream.events_per_second(),
            r.postgres
                .as_ref()
                .map_or("-".to_string(), |p| format!("{:.0}", p.events_per_second())),
        ));
        let us = |x: Option<f64>| x.map_or("-".into(), |v| format!("{v:.0} µs"));
        t.push_str(&format!(
            "        CPU per event: single node {}; cluster, 1 node: the node {}, the NATS servers {}, node B following {}\n",
            us(r.single_cpu_us),
            us(r.one_node_cpu_us),
            us(r.nats_cpu_us),
            us(r.follower_cpu_us),
        ));
        if let Some(w) = &r.one_node_writer {
            t.push_str(&format!(
                "        node A's writer, 1 node: {:>6} idle {:>6} staging {:>6} storing (the stream's acknowledgement included) {:>6} syncing {:>6} publishing\n",
                pct(w.idle),
                pct(w.staging),
                pct(w.storing),
                pct(w.syncing),
                pct(w.publishing),
            ));
        }
        for (what, l) in [
            ("single", &r.single),
            ("1 node", &r.one_node),
            ("2 nodes", &r.two_nodes),
            ("raw", &r.raw_jetstream),
        ] {
            if let Some(e) = &l.first_error {
                t.push_str(&format!(
                    "        {what}: {} errors, the first: {e}\n",
                    l.errors
                ));
            }
        }
    }
    t
}

/// Runs the cluster figures and prints them.
pub async fn run(opts: ClusterOptions) -> anyhow::Result<Vec<ClusterRow>> {
    let dir = opts
        .work_dir
        .join(format!("complaint-ledger-cluster-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    let result = run_in(&opts, &dir).await;
    let _ = std::fs::remove_dir_all(&dir);
    let rows = result?;
    println!("{}", table(&rows));
    Ok(rows)
}

async fn run_in(opts: &ClusterOptions, dir: &Path) -> anyhow::Result<Vec<ClusterRow>> {
    let duration = Duration::from_secs_f64(opts.seconds);
    let most = opts.clients.iter().copied().max().unwrap_or(1).max(64);
    let creds = Credentials::new(dir)?;
    let run = format!(
        "{:x}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis())
    );

    eprintln!("bench: the single-node ledger");
    let single = spawn_ledger(&dir.join("single"), &creds)?;
    let conns = connect_all(&single.url, most, &creds.bearer).await?;
    open_cases(&conns, opts.cases).await?;
    let mut singles = Vec::new();
    for &c in &opts.clients {
        let cpu = cpu_seconds(single.child.id());
        let load = ledger_appends(&conns, c, opts.cases, 1, duration, &format!("{run}-s{c}")).await;
        let cpu_us = cpu_us_per_event(cpu, cpu_seconds(single.child.id()), load.events);
        singles.push((load, cpu_us));
    }
    drop(conns);
    stop(single).await?;

    eprintln!("bench: a three-server NATS cluster and two ledger nodes");
    let nats = Nats::start(&dir.join("nats"))?;
    let urls = nats.urls();
    let a_dir = dir.join("node-a");
    let a = spawn_ledger_with(&a_dir, &creds, &["--nats-url".into(), urls.clone()])?;
    let b = spawn_ledger_with(
        &dir.join("node-b"),
        &creds,
        &[
            "--nats-url".into(),
            urls.clone(),
            "--signing-key-file".into(),
            a_dir
                .join("checkpoint-signing.key")
                .to_string_lossy()
                .into(),
            "--master-key-file".into(),
            a_dir.join("pii-master.key").to_string_lossy().into(),
        ],
    )?;
    let on_a = connect_all(&a.url, most, &creds.bearer).await?;
    let on_b = connect_all(&b.url, most, &creds.bearer).await?;
    open_cases(&on_a, opts.cases).await?;
    // Client k on node A when k is even, on node B when it is odd.
    let both: Vec<_> = on_a
        .iter()
        .zip(&on_b)
        .flat_map(|(x, y)| [x.clone(), y.clone()])
        .collect();
    let js = RawStream::create(&urls).await?;
    if let Some(url) = &opts.postgres {
        reference::postgres_setup(url)
            .await
            .context("preparing the PostgreSQL table")?;
    }
    let mut rows = Vec::new();
    for (&c, (single, single_cpu_us)) in opts.clients.iter().zip(singles) {
        eprintln!("bench: cluster appends, {c} clients");
        let before = stats(&a.url, &creds.bearer).await?;
        let (a_cpu, b_cpu, nats_cpu) = (
            cpu_seconds(a.child.id()),
            cpu_seconds(b.child.id()),
            nats.cpu_seconds(),
        );
        let one_node =
            ledger_appends(&on_a, c, opts.cases, 1, duration, &format!("{run}-a{c}")).await;
        let one_node_cpu_us = cpu_us_per_event(a_cpu, cpu_seconds(a.child.id()), one_node.events);
        let nats_cpu_us = cpu_us_per_event(nats_cpu, nats.cpu_seconds(), one_node.events);
        let follower_cpu_us = cpu_us_per_event(b_cpu, cpu_seconds(b.child.id()), one_node.events);
        let after = stats(&a.url, &creds.bearer).await?;
        let one_node_writer = WriterSplit::between(&before, &after);
        let two_nodes =
            ledger_appends(&both, c, opts.cases, 1, duration, &format!("{run}-ab{c}")).await;
        let raw_jetstream = js.publish_load(c, duration).await;
        let postgres = match &opts.postgres {
            Some(url) => Some(
                reference::postgres(
                    url,
                    c,
                    opts.cases,
                    duration,
                    super::PAYLOAD_BYTES,
                    &format!("{run}-c{c}"),
                )
                .await?,
            ),
            None => None,
        };
        rows.push(ClusterRow {
            clients: c,
            single,
            one_node,
            two_nodes,
            one_node_writer,
            single_cpu_us,
            one_node_cpu_us,
            follower_cpu_us,
            nats_cpu_us,
            raw_jetstream,
            postgres,
        });
    }
    drop((on_a, on_b, both));
    stop(b).await?;
    stop(a).await?;
    drop(nats);
    Ok(rows)
}

/// The reference: a replicated stream of its own on the same cluster, one
/// message per request, each acknowledged (stored on a quorum, synced).
struct RawStream {
    js: async_nats::jetstream::Context,
}

impl RawStream {
    async fn create(urls: &str) -> anyhow::Result<Self> {
        let addrs: Vec<async_nats::ServerAddr> = urls
            .split(',')
            .map(|u| u.parse())
            .collect::<Result<_, _>>()?;
        let client = async_nats::connect(addrs).await?;
        let js = async_nats::jetstream::new(client);
        js.get_or_create_stream(async_nats::jetstream::stream::Config {
            name: "BENCH_RAW".into(),
            subjects: vec!["bench.raw.>".into()],
            num_replicas: 3,
            ..Default::default()
        })
        .await
        .map_err(|e| anyhow::anyhow!("creating the reference stream: {e}"))?;
        Ok(Self { js })
    }

    async fn publish_load(&self, clients: usize, duration: Duration) -> LoadResult {
        let payload = bytes::Bytes::from(vec![b'x'; super::PAYLOAD_BYTES]);
        load::run(clients, duration, |c| {
            let (js, payload) = (self.js.clone(), payload.clone());
            let op: Op = Box::new(move |_| {
                let (js, payload) = (js.clone(), payload.clone());
                Box::pin(async move {
                    js.publish(format!("bench.raw.{c}"), payload)
                        .await
                        .map_err(|e| e.to_string())?
                        .await
                        .map(|_| 1)
                        .map_err(|e| e.to_string())
                })
            });
            op
        })
        .await
    }
}

/// Three `nats-server` processes routed to each other, each syncing every
/// write, from `NATS_SERVER_BIN` (`scripts/bench` sets it) or `PATH`.
struct Nats {
    children: Vec<Child>,
    ports: Vec<u16>,
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

impl Nats {
    fn start(dir: &Path) -> anyhow::Result<Self> {
        std::fs::create_dir_all(dir)?;
        let bin = std::env::var_os("NATS_SERVER_BIN").unwrap_or_else(|| "nats-server".into());
        let ports: Vec<(u16, u16, u16)> = (0..3)
            .map(|_| Ok((free_port()?, free_port()?, free_port()?)))
            .collect::<anyhow::Result<_>>()?;
        let routes: Vec<String> = ports
            .iter()
            .map(|(_, c, _)| format!("nats-route://127.0.0.1:{c}"))
            .collect();
        // Three servers share this machine's cores with the ledger nodes
        // and the load: each Go runtime is given its share of them (one
        // core's worth at least) unless GOMAXPROCS says otherwise. With
        // every runtime sized to all the cores, their schedulers spin
        // against each other (BENCHMARKS.md, change 50).
        let procs = std::env::var("GOMAXPROCS").unwrap_or_else(|_| {
            let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
            (cores / 3).max(1).to_string()
        });
        let mut children = Vec::new();
        for (i, (port, cluster, http)) in ports.iter().enumerate() {
            let conf = dir.join(format!("n{i}.conf"));
            std::fs::write(
                &conf,
                format!(
                    "server_name: n{i}\nlisten: 127.0.0.1:{port}\nhttp: 127.0.0.1:{http}\nping_interval: \"2s\"\nping_max: 2\n\
                     jetstream {{ store_dir: \"{}\", sync_interval: always }}\n\
                     cluster {{ name: bench, listen: 127.0.0.1:{cluster}, routes: [{}] }}\n",
                    dir.join(format!("n{i}")).display(),
                    routes.join(", ")
                ),
            )?;
            children.push(
                Command::new(&bin)
                    .arg("-c")
                    .arg(&conf)
                    .env("GOMAXPROCS", &procs)
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .spawn()
                    .with_context(|| {
                        format!(
                            "starting {} (scripts/install-tool nats-server installs it; set NATS_SERVER_BIN)",
                            bin.to_string_lossy()
                        )
                    })?,
            );
        }
        let nats = Self {
            children,
            ports: ports.iter().map(|p| p.0).collect(),
        };
        // Ready when each monitoring port says JetStream is healthy.
        let deadline = Instant::now() + Duration::from_secs(60);
        for (_, _, http) in &ports {
            while !healthz(*http) {
                anyhow::ensure!(
                    Instant::now() < deadline,
                    "the NATS servers did not become healthy"
                );
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        Ok(nats)
    }

    /// CPU seconds the three servers have used so far.
    fn cpu_seconds(&self) -> Option<f64> {
        self.children.iter().map(|c| cpu_seconds(c.id())).sum()
    }

    fn urls(&self) -> String {
        self.ports
            .iter()
            .map(|p| format!("nats://127.0.0.1:{p}"))
            .collect::<Vec<_>>()
            .join(",")
    }
}

fn healthz(port: u16) -> bool {
    use std::io::{Read, Write};
    let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
    if s.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let mut raw = String::new();
    let _ = s.read_to_string(&mut raw);
    raw.starts_with("HTTP/1.1 200")
}

impl Drop for Nats {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}
