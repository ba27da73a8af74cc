//! Hosts of the test's own, for partitions: network namespaces joined by
//! veth pairs to a bridge in the test's namespace (`ip netns`, `ip link`,
//! from iproute2; root needed). Host `i` has the address 10.78.N.(10+i),
//! the test reaches every host over the bridge, and a cut is a pair of
//! blackhole routes between two hosts — packets between them vanish, as
//! on a broken link, while each still answers the test. Everything is
//! removed when the value is dropped.

use std::process::Command;

pub struct Hosts {
    /// The namespaces' names, in order.
    pub names: Vec<String>,
    pub ips: Vec<String>,
    bridge: String,
}

fn ip(args: &[&str]) {
    let out = Command::new("ip")
        .args(args)
        .output()
        .expect("run ip (iproute2)");
    assert!(
        out.status.success(),
        "ip {}: {} (the partition test needs root and iproute2)",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// What an aborted run with the same id may have left: processes in the
/// namespace (which keep it, and its end of the veth pair, alive), the
/// namespace, the veth.
fn clear_stale(name: &str, veth: &str) {
    if let Ok(out) = Command::new("ip").args(["netns", "pids", name]).output() {
        for pid in String::from_utf8_lossy(&out.stdout).split_whitespace() {
            let _ = Command::new("kill").args(["-9", pid]).output();
        }
    }
    let _ = Command::new("ip").args(["netns", "del", name]).output();
    let _ = Command::new("ip").args(["link", "del", veth]).output();
}

impl Hosts {
    pub fn new(n: usize) -> Self {
        // Names and a subnet of this process's own, so that runs side by
        // side never share one.
        let id = std::process::id() % 200 + 20;
        let bridge = format!("clbr{id}");
        let _ = Command::new("ip").args(["link", "del", &bridge]).output();
        ip(&["link", "add", &bridge, "type", "bridge"]);
        ip(&["addr", "add", &format!("10.78.{id}.1/24"), "dev", &bridge]);
        ip(&["link", "set", &bridge, "up"]);
        let mut hosts = Self {
            names: Vec::new(),
            ips: Vec::new(),
            bridge,
        };
        for i in 0..n {
            let name = format!("cl{id}h{i}");
            let veth = format!("cl{id}v{i}");
            let addr = format!("10.78.{id}.{}", 10 + i);
            clear_stale(&name, &veth);
            ip(&["netns", "add", &name]);
            hosts.names.push(name.clone());
            ip(&[
                "link", "add", &veth, "type", "veth", "peer", "name", "eth0", "netns", &name,
            ]);
            ip(&["link", "set", &veth, "master", &hosts.bridge, "up"]);
            ip(&[
                "-n",
                &name,
                "addr",
                "add",
                &format!("{addr}/24"),
                "dev",
                "eth0",
            ]);
            ip(&["-n", &name, "link", "set", "eth0", "up"]);
            ip(&["-n", &name, "link", "set", "lo", "up"]);
            hosts.ips.push(addr);
        }
        hosts
    }

    /// Cuts host `a` off from host `b`, both ways.
    pub fn cut(&self, a: usize, b: usize) {
        self.blackholes("add", a, b);
    }

    /// Joins hosts `a` and `b` again.
    pub fn heal(&self, a: usize, b: usize) {
        self.blackholes("del", a, b);
    }

    /// Adds or deletes the blackhole routes between `a` and `b`, both ways.
    fn blackholes(&self, action: &str, a: usize, b: usize) {
        for (from, to) in [(a, b), (b, a)] {
            ip(&[
                "-n",
                &self.names[from],
                "route",
                action,
                "blackhole",
                &format!("{}/32", self.ips[to]),
            ]);
        }
    }
}

impl Drop for Hosts {
    fn drop(&mut self) {
        for n in &self.names {
            let _ = Command::new("ip").args(["netns", "del", n]).output();
        }
        let _ = Command::new("ip")
            .args(["link", "del", &self.bridge])
            .output();
    }
}
