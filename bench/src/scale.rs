//! The figures of bounded state: resident memory as closed copies of the
//! seed case accumulate (by default at 100,000 and 300,000 of them), and
//! what a start costs as the log grows (by default at 1,000,000 and
//! 5,000,000 events), with the memory after it. The point of both is how
//! little they change with history, so each is taken at two sizes on one
//! growing ledger, not extrapolated from one.
//!
//! It runs apart from the main benchmark (`--scale`): filling millions of
//! events and hundreds of thousands of cases takes most of an hour on two
//! cores. Each ledger is removed before the next is filled; the run prints
//! the disk each took, and what the run needed at most.

use super::credentials::Credentials;
use super::{
    case_memory, connect_all, fill_notes, open_cases, settled_resident_bytes, spawn_ledger, stats,
    stop,
};
use std::path::PathBuf;
use std::time::Instant;

#[derive(Debug, Clone)]
pub struct ScaleOptions {
    /// Closed seed copies at which resident memory is taken, ascending.
    pub cases: Vec<u64>,
    /// Log sizes at which a start is timed, ascending.
    pub events: Vec<u64>,
    /// Parent of the run's temporary directory.
    pub work_dir: PathBuf,
}

impl Default for ScaleOptions {
    fn default() -> Self {
        Self {
            cases: vec![100_000, 300_000],
            events: vec![1_000_000, 5_000_000],
            work_dir: std::env::temp_dir(),
        }
    }
}

/// A start of a ledger holding `events` events.
#[derive(Debug, Clone, Default)]
pub struct StartAt {
    pub events: u64,
    /// The first start after the fill: it verifies every record no
    /// verification covered yet — all of them, as the benchmark's servers
    /// run without tail passes unless `COMPLAINT_LEDGER_VERIFY_TAIL_SECONDS`
    /// is set (then those written since the last one) — and sets the
    /// verified-through mark.
    pub first_seconds: f64,
    /// The next start: what a restart costs.
    pub seconds: f64,
    pub resident_bytes: u64,
    pub disk_bytes: u64,
}

#[derive(Debug, Clone, Default)]
pub struct ScaleReport {
    pub starts: Vec<StartAt>,
    pub cases: case_memory::Curve,
}

impl ScaleReport {
    /// The most disk one of the run's ledgers took (they never coexist).
    pub fn disk_needed(&self) -> u64 {
        let starts = self.starts.iter().map(|s| s.disk_bytes).max().unwrap_or(0);
        starts.max(self.cases.disk_bytes)
    }

    pub fn table(&self) -> String {
        let mb = |b: u64| b as f64 / (1 << 20) as f64;
        let mut t = String::from("bounded state\n");
        for s in &self.starts {
            t.push_str(&format!(
                "  start at {:>10} events: {:>6.2} s (first after the fill: {:>6.2} s); resident after it {:>7.1} MB; disk {:>8.1} MB\n",
                s.events, s.seconds, s.first_seconds, mb(s.resident_bytes), mb(s.disk_bytes)
            ));
        }
        if let [a, b, ..] = &self.starts[..] {
            t.push_str(&format!(
                "  start time ratio {}/{} events: {:.2}; resident ratio {:.2}\n",
                b.events,
                a.events,
                b.seconds / a.seconds.max(1e-9),
                b.resident_bytes as f64 / a.resident_bytes.max(1) as f64
            ));
        }
        let c = &self.cases;
        t.push_str(&format!(
            "  resident, empty ledger: {:.1} MB\n",
            mb(c.empty_bytes)
        ));
        for (i, (cases, bytes)) in c.at.iter().enumerate() {
            t.push_str(&format!(
                "  resident with {cases:>7} {} seed copies: {:>7.1} MB (live allocations {:.1} MB)\n",
                if c.closed { "closed" } else { "open" },
                mb(*bytes),
                mb(c.allocated_at.get(i).copied().unwrap_or(0))
            ));
        }
        if let [(ca, a), (cb, b), ..] = &c.at[..] {
            t.push_str(&format!(
                "  resident ratio {cb}/{ca} copies: {:.2}\n",
                *b as f64 / (*a).max(1) as f64
            ));
        }
        t.push_str(&format!(
            "  after a restart with all {} events: {:.1} MB; disk {:.1} MB\n",
            c.events,
            mb(c.restarted_bytes),
            mb(c.disk_bytes)
        ));
        t.push_str(&format!(
            "  disk needed by this run: {:.1} GB at most\n",
            self.disk_needed() as f64 / (1u64 << 30) as f64
        ));
        t
    }
}

/// Runs the scale figures and prints them.
pub async fn run(opts: ScaleOptions) -> anyhow::Result<ScaleReport> {
    anyhow::ensure!(
        opts.cases.windows(2).all(|w| w[0] < w[1]) && opts.events.windows(2).all(|w| w[0] < w[1]),
        "--scale-cases and --scale-events: sizes in ascending order"
    );
    let dir = opts
        .work_dir
        .join(format!("complaint-ledger-scale-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    let result = run_in(&opts, &dir).await;
    let _ = std::fs::remove_dir_all(&dir);
    let report = result?;
    println!("{}", report.table());
    Ok(report)
}

async fn run_in(opts: &ScaleOptions, dir: &std::path::Path) -> anyhow::Result<ScaleReport> {
    let creds = Credentials::new(dir)?;
    let mut report = ScaleReport::default();
    let data = dir.join("events");
    const CASES: u64 = 10_000;
    let mut opened = false;
    for &events in &opts.events {
        let server = spawn_ledger(&data, &creds)?;
        let conns = connect_all(&server.url, 16, &creds.bearer).await?;
        if !opened {
            open_cases(&conns, CASES).await?;
            opened = true;
        }
        let run = format!("scale-{events}");
        fill_notes(&conns, &server.url, &creds.bearer, events, CASES, &run).await?;
        let disk_bytes = stats(&server.url, &creds.bearer).await?.disk_bytes;
        drop(conns);
        stop(server).await?;
        let t = Instant::now();
        let first = spawn_ledger(&data, &creds)?;
        let first_seconds = t.elapsed().as_secs_f64();
        stop(first).await?;
        let t = Instant::now();
        let again = spawn_ledger(&data, &creds)?;
        let seconds = t.elapsed().as_secs_f64();
        let resident_bytes = settled_resident_bytes(&again.url, &creds.bearer).await?;
        stop(again).await?;
        eprintln!("bench: start at {events} events: {seconds:.2} s");
        report.starts.push(StartAt {
            events,
            first_seconds,
            seconds,
            resident_bytes,
            disk_bytes,
        });
    }
    if data.exists() {
        std::fs::remove_dir_all(&data)?;
    }
    report.cases = case_memory::curve(&dir.join("cases"), &creds, &opts.cases, true).await?;
    Ok(report)
}
