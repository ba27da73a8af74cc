//! A real NATS JetStream cluster on loopback for the clustered-store
//! tests: three `nats-server` processes (from `NATS_SERVER_BIN`, which
//! `scripts/test` installs, or `.tools/nats-venv/`), each with its own
//! store and `sync_interval: always`, routed to each other; killed with
//! SIGKILL and started again on the same store by the tests.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct NatsNode {
    pub ip: String,
    pub port: u16,
    http_port: u16,
    conf: PathBuf,
    /// The network namespace it runs in (`ip netns exec`), if any.
    netns: Option<String>,
    child: Option<Child>,
}

pub struct NatsCluster {
    pub nodes: Vec<NatsNode>,
    _dir: tempfile::TempDir,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

pub fn nats_server_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("NATS_SERVER_BIN") {
        return PathBuf::from(p);
    }
    let local = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".tools/nats-venv/bin/nats-server");
    assert!(
        local.exists(),
        "no nats-server: run scripts/install-tool nats-server (scripts/test does) or set NATS_SERVER_BIN"
    );
    local
}

impl NatsCluster {
    /// Starts `n` routed servers on loopback and waits until JetStream
    /// answers on each.
    pub fn start(n: usize) -> Self {
        Self::start_with(n, "")
    }

    /// [`Self::start`] with more configuration for each server (its TLS).
    /// A port found free can be taken by another process (an outgoing
    /// connection of a test beside this one) before the server binds it;
    /// the server then exits, and the cluster is started again on other
    /// ports.
    pub fn start_with(n: usize, extra: &str) -> Self {
        let mut last = String::new();
        for _ in 0..3 {
            let hosts: Vec<(Option<String>, String, u16, u16, u16)> = (0..n)
                .map(|_| {
                    (
                        None,
                        "127.0.0.1".to_string(),
                        free_port(),
                        free_port(),
                        free_port(),
                    )
                })
                .collect();
            match Self::try_start(hosts, extra) {
                Ok(c) => return c,
                Err(e) => last = e,
            }
        }
        panic!("{last}")
    }

    /// Starts one server per host (network namespace, address, client,
    /// route and monitoring port).
    pub fn start_on(hosts: Vec<(Option<String>, String, u16, u16, u16)>) -> Self {
        Self::start_configured(hosts, "")
    }

    fn start_configured(hosts: Vec<(Option<String>, String, u16, u16, u16)>, extra: &str) -> Self {
        Self::try_start(hosts, extra).unwrap_or_else(|e| panic!("{e}"))
    }

    fn try_start(
        hosts: Vec<(Option<String>, String, u16, u16, u16)>,
        extra: &str,
    ) -> Result<Self, String> {
        let dir = tempfile::tempdir().expect("temp dir");
        let routes: Vec<String> = hosts
            .iter()
            .map(|(_, ip, _, c, _)| format!("nats-route://{ip}:{c}"))
            .collect();
        let mut nodes = Vec::new();
        for (i, (netns, ip, port, cluster, http)) in hosts.into_iter().enumerate() {
            let store = dir.path().join(format!("n{i}"));
            let conf = dir.path().join(format!("n{i}.conf"));
            std::fs::write(
                &conf,
                format!(
                    "server_name: n{i}\nlisten: {ip}:{port}\nhttp: {ip}:{http}\nping_interval: \"2s\"\nping_max: 2\n\
                     jetstream {{ store_dir: \"{}\", sync_interval: always }}\n\
                     cluster {{ name: ledger-test, listen: {ip}:{cluster}, routes: [{}] }}\n{extra}\n",
                    store.display(),
                    routes.join(", ")
                ),
            )
            .expect("write conf");
            let mut node = NatsNode {
                ip,
                port,
                http_port: http,
                conf,
                netns,
                child: None,
            };
            node.spawn();
            nodes.push(node);
        }
        let mut c = Self { nodes, _dir: dir };
        for i in 0..c.nodes.len() {
            c.healthy(i)?;
        }
        Ok(c)
    }

    /// The client URLs of every server, comma-separated.
    pub fn urls(&self) -> String {
        self.urls_as(None)
    }

    /// [`Self::urls`] naming each server by `host` (the name its TLS
    /// certificate carries) rather than its address.
    pub fn urls_as(&self, host: Option<&str>) -> String {
        self.nodes
            .iter()
            .map(|n| format!("nats://{}:{}", host.unwrap_or(&n.ip), n.port))
            .collect::<Vec<_>>()
            .join(",")
    }

    pub fn kill(&mut self, i: usize) {
        if let Some(mut c) = self.nodes[i].child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub fn restart(&mut self, i: usize) {
        self.nodes[i].spawn();
        self.healthy(i).unwrap_or_else(|e| panic!("{e}"));
    }

    /// Waits until server `i` answers healthy; an error if it exits first
    /// (it could not bind its ports) or takes a minute.
    fn healthy(&mut self, i: usize) -> Result<(), String> {
        let deadline = Instant::now() + Duration::from_secs(60);
        let addr = format!("{}:{}", self.nodes[i].ip, self.nodes[i].http_port);
        while Instant::now() < deadline {
            if healthz(&addr) {
                return Ok(());
            }
            if let Some(Ok(Some(status))) = self.nodes[i].child.as_mut().map(|c| c.try_wait()) {
                return Err(format!("nats-server n{i} exited at start ({status})"));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Err(format!("nats-server n{i} did not become healthy"))
    }
}

impl NatsNode {
    fn spawn(&mut self) {
        let mut cmd = match &self.netns {
            Some(ns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns]).arg(nats_server_bin());
                c
            }
            None => Command::new(nats_server_bin()),
        };
        let child = cmd
            .arg("-c")
            .arg(&self.conf)
            .stdout(Stdio::null())
            .stderr(match std::env::var_os("TEST_NATS_LOGS") {
                Some(d) => Stdio::from(
                    std::fs::OpenOptions::new()
                        .create(true)
                        .append(true)
                        .open(PathBuf::from(d).join(format!("{}.log", self.port)))
                        .expect("log file"),
                ),
                None => Stdio::null(),
            })
            .spawn()
            .expect("spawn nats-server");
        self.child = Some(child);
    }
}

impl Drop for NatsCluster {
    fn drop(&mut self) {
        for i in 0..self.nodes.len() {
            self.kill(i);
        }
    }
}

/// Whether the server's monitoring port answers `/healthz` with 200 (it
/// does once JetStream is up).
fn healthz(addr: &str) -> bool {
    use std::io::{Read, Write};
    let Ok(mut s) = std::net::TcpStream::connect(addr) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
    let req = format!("GET /healthz HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    if s.write_all(req.as_bytes()).is_err() {
        return false;
    }
    let mut raw = String::new();
    let _ = s.read_to_string(&mut raw);
    raw.starts_with("HTTP/1.1 200")
}
