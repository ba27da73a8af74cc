//! The corruption suite: seeded single faults in every file of a stopped
//! server's data directory — a flipped byte anywhere, a truncation at a
//! random length, a deleted file — each checked with the real binary's
//! `verify --data-dir` and, for a sample, its `serve`. Every trial must
//! either change nothing that is read (verify says OK with the very same
//! records, root, access log and keys) or be reported (`FAILED: …`, and the
//! server refuses to start with the same message, or — damage under the
//! verified-through mark, which a start checks light — starts and its
//! scrub's first pass finds the same). A trial that verifies with other
//! figures (silent loss), panics or hangs fails the test.
//!
//! `COMPLAINT_LEDGER_CORRUPTION_SEED` and `COMPLAINT_LEDGER_CORRUPTION_TRIALS`
//! replay or widen a run; the seed is printed with the table.

use crate::common::*;
use complaint_ledger::proto::v1::{self as pb, privacy_client::PrivacyClient};
use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_complaint-ledger");

/// xorshift64*: a small seeded generator, enough to pick faults.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// Writes a store of a few thousand records: cases with notes (sealed
/// personal data), a few large events (sled writes blob files for them),
/// responses that revealed personal data (PII-access entries), an erased
/// customer (a tombstone). Stopped cleanly.
async fn pristine_store() -> tempfile::TempDir {
    let server = TestServer::start().await;
    let mut c = server.ledger().await;
    let cases: Vec<String> = (0..40).map(|i| format!("k{i}")).collect();
    for (i, case) in cases.iter().enumerate() {
        open_case(&mut c, case, &format!("cust-{}", i % 7)).await;
    }
    for round in 0..18 {
        for case in &cases {
            let events = (0..4)
                .map(|j| {
                    ev(
                        &format!("{case}-n{round}-{j}"),
                        "2020-12-03T02:00:00+08:00",
                        "8030",
                        note(&format!(
                            "客户来电 round {round} note {j}, 电话 138001380{j:02}"
                        )),
                    )
                })
                .collect();
            c.append(append(case, events)).await.expect("notes append");
        }
    }
    // Large events: sled keeps a page over 128 KiB as a blob file.
    for i in 0..24 {
        let case = &cases[i % cases.len()];
        c.append(append(
            case,
            vec![ev(
                &format!("{case}-big{i}"),
                "2020-12-03T03:00:00+08:00",
                "8030",
                note(&"长".repeat(9_000)),
            )],
        ))
        .await
        .expect("large note appends");
    }
    for case in cases.iter().take(5) {
        read_case(&mut c, case).await;
    }
    PrivacyClient::connect(server.url())
        .await
        .unwrap()
        .erase_customer_data(pb::EraseCustomerDataRequest {
            customer_id: "cust-3".into(),
            reason: "the customer asked".into(),
        })
        .await
        .expect("erasure");
    // A restart verifies all of it and marks it verified; what follows is
    // written after the mark. So a start of a damaged copy checks most
    // records light and leaves them to the scrub, and the rest fully.
    let mut server = server;
    server.restart().await;
    let mut c = server.ledger().await;
    // Cases of customers not erased (k3 and k10 are cust-3's).
    for case in cases
        .iter()
        .take(10)
        .filter(|c| !["k3", "k10"].contains(&c.as_str()))
    {
        let e = ev(
            &format!("{case}-after-mark"),
            "2020-12-03T04:00:00+08:00",
            "8030",
            note("客户再次来电"),
        );
        c.append(append(case, vec![e])).await.expect("note appends");
    }
    server.stop().await
}

fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                todo.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

fn copy_dir(from: &Path, to: &Path) {
    for f in files_under(from) {
        let rel = f.strip_prefix(from).unwrap();
        let target = to.join(rel);
        std::fs::create_dir_all(target.parent().unwrap()).unwrap();
        std::fs::copy(&f, &target).unwrap();
    }
}

/// A program's output, or None if it ran past the limit (then killed).
struct Ran {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

fn run_limited(mut cmd: Command, limit: Duration) -> Option<Ran> {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .env("COMPLAINT_LEDGER_LOG", "warn")
        .env("COMPLAINT_LEDGER_HTTP_LISTEN", "127.0.0.1:0")
        .spawn()
        .expect("spawn");
    let (mut out, mut err) = (child.stdout.take().unwrap(), child.stderr.take().unwrap());
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        s
    });
    let err_reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return Some(Ran {
                code: status.code(),
                stdout: reader.join().unwrap(),
                stderr: err_reader.join().unwrap(),
            });
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn verify(dir: &Path) -> Option<Ran> {
    let mut cmd = Command::new(BIN);
    cmd.args(["verify", "--data-dir"]).arg(dir);
    run_limited(cmd, Duration::from_secs(60))
}

/// What `serve` did on a damaged directory.
enum Served {
    /// It refused to start, saying this on stderr.
    Refused(String),
    /// It listened. `scrub`: what the scrub's first pass found, when the
    /// start relied on the verified-through mark (that pass runs at once);
    /// None when it found nothing or the start verified everything.
    Listened {
        scrub: Option<String>,
        partial: bool,
    },
}

/// Starts `serve` on a damaged directory, with the scrub on.
fn serve(dir: &Path) -> Served {
    use std::io::BufRead;
    let mut child = Command::new(BIN)
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir)
        .args(["--scrub-interval-seconds", "3600"])
        .env("COMPLAINT_LEDGER_LOG", "info")
        .env("COMPLAINT_LEDGER_HTTP_LISTEN", "127.0.0.1:0")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn server");
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    let reader = std::thread::spawn(move || {
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut line = String::new();
    let _ = std::io::BufReader::new(child.stdout.take().unwrap()).read_line(&mut line);
    if line.starts_with("complaint-ledger listening on") {
        // The start says whether it relied on the mark; then, if so, the
        // scrub's first pass says what it found.
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut partial = false;
        let mut scrub = None;
        while let Ok(l) = rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            if l.contains("ledger opened; every hash chain") {
                break;
            }
            if l.contains("ledger opened; records from verified_from on") {
                partial = true;
            }
            if partial && l.contains("scrub: the log verified") {
                break;
            }
            if let Some((_, found)) =
                l.split_once("scrub: the store is damaged; refusing appends found=")
            {
                scrub = Some(found.trim().to_string());
                break;
            }
        }
        let _ = child.kill();
        let _ = child.wait();
        drop(rx);
        let _ = reader.join();
        return Served::Listened { scrub, partial };
    }
    let status = child.wait().unwrap();
    let err: Vec<String> = rx.iter().collect();
    let _ = reader.join();
    let err = err.join("\n");
    assert!(
        status.code().is_some_and(|c| c != 0 && c != 101),
        "serve neither listened nor refused cleanly ({status}): {err}"
    );
    Served::Refused(err)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Outcome {
    /// Verify says OK with the same figures as before the fault.
    Unchanged,
    /// Verify says FAILED.
    Reported,
    /// Verify says OK with other figures: acknowledged data lost silently.
    Silent,
    /// A panic (exit 101) or another unclean exit without FAILED.
    Crashed,
    /// Neither answer within the limit.
    Hung,
}

/// The lines of a verification that must not change unless it failed: the
/// records, cases and root; the access log and keys.
fn figures(stdout: &str) -> Vec<&str> {
    let lines: Vec<&str> = stdout.lines().collect();
    vec![
        lines.first().copied().unwrap_or(""),
        lines.get(2).copied().unwrap_or(""),
    ]
}

#[test]
fn any_single_fault_in_the_data_directory_is_harmless_or_reported() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let pristine = rt.block_on(pristine_store());
    let baseline = verify(pristine.path()).expect("baseline verifies in time");
    assert_eq!(
        baseline.code,
        Some(0),
        "{}{}",
        baseline.stdout,
        baseline.stderr
    );
    assert!(
        baseline.stdout.contains("integrity witness acknowledged"),
        "{}",
        baseline.stdout
    );
    let expected = figures(&baseline.stdout);
    let files = files_under(pristine.path());
    let names: Vec<String> = files
        .iter()
        .map(|f| {
            f.strip_prefix(pristine.path())
                .unwrap()
                .display()
                .to_string()
        })
        .collect();
    assert!(
        names.iter().any(|n| n.starts_with("blobs/")),
        "no blob file: {names:?}"
    );
    assert!(names.iter().any(|n| n == "witness"), "{names:?}");

    let seed: u64 = std::env::var("COMPLAINT_LEDGER_CORRUPTION_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5eed_1ed6_e11a_0001);
    let trials: usize = std::env::var("COMPLAINT_LEDGER_CORRUPTION_TRIALS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(210);
    let mut rng = Rng(seed | 1);
    let work = tempfile::tempdir().unwrap();
    // (file kind, fault) -> outcome -> count
    let mut table: BTreeMap<(String, &str), BTreeMap<Outcome, usize>> = BTreeMap::new();
    let mut bad = Vec::new();
    let mut served = 0;
    let mut found_by_scrub = 0;
    let mut partial_starts = 0;
    for trial in 0..trials {
        let i = rng.below(files.len() as u64) as usize;
        let name = &names[i];
        let dir = work.path().join(format!("t{trial}"));
        copy_dir(pristine.path(), &dir);
        let target = dir.join(name);
        let len = std::fs::metadata(&target).unwrap().len();
        let (fault, what) = match rng.below(10) {
            0..=4 if len > 0 => {
                let at = rng.below(len);
                let bit = 1u8 << rng.below(8);
                let mut bytes = std::fs::read(&target).unwrap();
                bytes[at as usize] ^= bit;
                std::fs::write(&target, bytes).unwrap();
                (
                    "flip",
                    format!("{name}: bit {bit:#04x} at byte {at} of {len}"),
                )
            }
            0..=7 => {
                let to = rng.below(len.max(1));
                std::fs::OpenOptions::new()
                    .write(true)
                    .open(&target)
                    .unwrap()
                    .set_len(to)
                    .unwrap();
                ("truncate", format!("{name}: cut from {len} to {to} bytes"))
            }
            _ => {
                std::fs::remove_file(&target).unwrap();
                ("delete", format!("{name} deleted"))
            }
        };
        let kind = if name.starts_with("blobs/") {
            "blobs/*".to_string()
        } else if name.starts_with("snap.") {
            "snap.*".to_string()
        } else {
            name.clone()
        };
        let outcome = match verify(&dir) {
            None => Outcome::Hung,
            Some(r) if r.stdout.contains("FAILED: ") && r.code == Some(1) => Outcome::Reported,
            Some(r) if r.code == Some(0) && figures(&r.stdout) == expected => Outcome::Unchanged,
            Some(r) if r.code == Some(0) => {
                bad.push(format!("SILENT  {what}: {}", r.stdout.trim()));
                Outcome::Silent
            }
            Some(r) => {
                bad.push(format!(
                    "CRASHED {what}: exit {:?}: {}{}",
                    r.code,
                    r.stdout.trim(),
                    r.stderr.trim()
                ));
                Outcome::Crashed
            }
        };
        if outcome == Outcome::Hung {
            bad.push(format!("HUNG    {what}"));
        }
        // The server refuses a reported store with the same message, and
        // starts on an unchanged one (a sample: starting costs a second).
        if matches!(outcome, Outcome::Reported | Outcome::Unchanged) && trial % 7 == 0 {
            served += 1;
            let verdict = verify(&dir).unwrap();
            let served_as = serve(&dir);
            if let Served::Listened { partial: true, .. } = served_as {
                partial_starts += 1;
            }
            match (outcome, served_as) {
                (Outcome::Reported, refusal) => {
                    let message = verdict
                        .stdout
                        .lines()
                        .find_map(|l| l.strip_prefix("FAILED: "))
                        .unwrap()
                        .to_string();
                    match refusal {
                        Served::Refused(stderr) if !stderr.contains(&message) => bad.push(format!(
                            "SERVE   {what}: refused with another message than verify's {message:?}: {stderr}"
                        )),
                        Served::Refused(_) => {}
                        // Damage under the verified-through mark: the
                        // start served, and its scrub's first pass found
                        // what verify finds.
                        Served::Listened {
                            scrub: Some(found), ..
                        } if found == message => found_by_scrub += 1,
                        Served::Listened {
                            scrub: Some(found), ..
                        } => bad.push(format!(
                            "SERVE   {what}: the scrub found {found:?}, verify {message:?}"
                        )),
                        Served::Listened { scrub: None, .. } => bad.push(format!(
                            "SERVE   {what}: verify failed but the server started and its scrub found nothing"
                        )),
                    }
                }
                (Outcome::Unchanged, Served::Refused(stderr)) => bad.push(format!(
                    "SERVE   {what}: verify passed but the server refused: {stderr}"
                )),
                (
                    Outcome::Unchanged,
                    Served::Listened {
                        scrub: Some(found), ..
                    },
                ) => bad.push(format!(
                    "SERVE   {what}: verify passed but the scrub found {found:?}"
                )),
                _ => {}
            }
        }
        *table
            .entry((kind, fault))
            .or_default()
            .entry(outcome)
            .or_default() += 1;
        let _ = std::fs::remove_dir_all(&dir);
    }
    println!(
        "corruption suite: seed {seed}, {trials} trials, {served} also served ({partial_starts} of them started relying on the verified-through mark; in {found_by_scrub} of those the scrub's first pass found the damage)"
    );
    println!(
        "{:<26} {:<9} {:>9} {:>9} {:>7} {:>8} {:>5}",
        "file", "fault", "unchanged", "reported", "silent", "crashed", "hung"
    );
    let mut totals = BTreeMap::new();
    for ((kind, fault), outcomes) in &table {
        let n = |o| outcomes.get(&o).copied().unwrap_or(0);
        println!(
            "{:<26} {:<9} {:>9} {:>9} {:>7} {:>8} {:>5}",
            kind,
            fault,
            n(Outcome::Unchanged),
            n(Outcome::Reported),
            n(Outcome::Silent),
            n(Outcome::Crashed),
            n(Outcome::Hung)
        );
        for (o, c) in outcomes {
            *totals.entry(*o).or_insert(0) += c;
        }
    }
    println!("totals: {totals:?}");
    assert!(
        bad.is_empty(),
        "{} bad trials:\n{}",
        bad.len(),
        bad.join("\n")
    );
}
