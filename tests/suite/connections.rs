//! Connections through the real binary: more idle sockets than the
//! connection limit and than the process's open-files limit leave the
//! server answering real clients, with its CPU low meanwhile.

use crate::common::*;
use complaint_ledger::proto::v1::ledger_client::LedgerClient;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

/// utime + stime of a process, in clock ticks.
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // Fields after the command name (which may hold spaces) in parentheses.
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    let f: Vec<&str> = rest.split(' ').collect();
    f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connections_beyond_every_limit_do_not_lock_clients_out() {
    let dir = tempfile::tempdir().unwrap();
    let bin = env!("CARGO_BIN_EXE_complaint-ledger");
    // 256 open files for the server, a limit of 100 connections, and 400
    // idle sockets: beyond both.
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "ulimit -n 256 && exec '{bin}' serve --listen 127.0.0.1:0 --rate-limit-per-second 0 \
             --max-connections 100 --handshake-timeout-seconds 30 --data-dir '{}'",
            dir.path().display()
        ))
        .env("COMPLAINT_LEDGER_LOG", "warn")
        .env("COMPLAINT_LEDGER_HTTP_LISTEN", "127.0.0.1:0")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert!(line.starts_with("complaint-ledger listening on"), "{line}");
    let addr = line.trim().rsplit(' ').next().unwrap().to_string();
    let pid = child.id();

    let mut idle = Vec::new();
    for _ in 0..400 {
        if let Ok(s) = tokio::net::TcpStream::connect(&addr).await {
            idle.push(s);
        }
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = cpu_ticks(pid);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let spent = cpu_ticks(pid) - before;
    // Two seconds are 200 ticks of one core: an accept loop spinning on
    // EMFILE burned ~150 of them.
    assert!(
        spent < 40,
        "the server used {spent} ticks in 2 s holding idle sockets"
    );

    // A real client still gets in and appends.
    let mut c = LedgerClient::connect(format!("http://{addr}"))
        .await
        .unwrap();
    open_case(&mut c, "conn-1", "cust-c").await;
    let r = c
        .append(append(
            "conn-1",
            vec![ev(
                "conn-1-n",
                "2020-12-03T02:00:00+08:00",
                "8030",
                note("still here"),
            )],
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r.case_version, 2);

    // The server closed idle sockets to stay within its limits: at most
    // 100 of the 400 are still open.
    let mut open = 0;
    for s in &idle {
        let mut buf = [0u8; 1];
        match s.try_read(&mut buf) {
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => open += 1,
            _ => {}
        }
    }
    assert!(open <= 100, "{open} idle sockets still open");
    let _ = child.kill();
    let _ = child.wait();
}
