//! `complaint-ledger-bench`: measures the ledger and its references; prints
//! a table, optionally JSON (see the library's docs and BENCHMARKS.md).

use clap::{Parser, Subcommand};
use complaint_ledger_bench::BenchOptions;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "complaint-ledger-bench",
    version,
    about = "Measure complaint-ledger and its references in one run; print a table, optionally JSON"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// A seconds-long smoke run instead of the full one.
    #[arg(long)]
    quick: bool,
    /// Seconds per load level (default 5, or 0.5 with --quick).
    #[arg(long)]
    seconds: Option<f64>,
    /// Events in the large log (default 1,000,000, or 20,000 with --quick).
    #[arg(long)]
    events: Option<u64>,
    /// Cases the appends and the large log spread over (default 10,000, or
    /// 500 with --quick).
    #[arg(long)]
    cases: Option<u64>,
    /// PostgreSQL connection string for the event-table reference.
    #[arg(long, env = "COMPLAINT_LEDGER_BENCH_POSTGRES")]
    postgres: Option<String>,
    /// Write the figures as JSON here.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Concurrency levels of the single appends (default 1,16,64,256, or
    /// 1,16,64 with --quick).
    #[arg(long, value_delimiter = ',')]
    clients: Option<Vec<usize>>,
    /// Measure only the figures of bounded state (start time as the log
    /// grows, resident memory as closed cases accumulate); takes most of an
    /// hour and several GB of disk, which it prints.
    #[arg(long)]
    scale: bool,
    /// Log sizes at which --scale times a start (default 1000000,5000000).
    #[arg(long, value_delimiter = ',')]
    scale_events: Option<Vec<u64>>,
    /// Closed seed copies at which --scale takes resident memory (default
    /// 100000,300000).
    #[arg(long, value_delimiter = ',')]
    scale_cases: Option<Vec<u64>>,
    /// Measure only the clustered store: appends through one and two
    /// ledger nodes on a three-server NATS cluster started here
    /// (NATS_SERVER_BIN, or nats-server on PATH), beside the single-node
    /// ledger, raw JetStream publishes and PostgreSQL (--postgres).
    #[arg(long, conflicts_with = "scale")]
    cluster: bool,
    /// Run the ledger on this data directory and keep it (the fill is
    /// skipped when it already holds --events events); default a temporary
    /// one, removed afterwards.
    #[arg(long)]
    data_dir: Option<PathBuf>,
}

#[derive(Subcommand)]
enum Command {
    /// (internal) The no-op gRPC reference server.
    #[command(hide = true)]
    NoopServer,
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Some(Command::NoopServer) => complaint_ledger_bench::reference::serve_noop().await,
        None if cli.cluster => {
            let o = complaint_ledger_bench::cluster::ClusterOptions {
                seconds: cli.seconds.unwrap_or(if cli.quick { 0.5 } else { 5.0 }),
                clients: cli.clients.clone().unwrap_or_else(|| vec![1, 16, 64]),
                cases: cli.cases.unwrap_or(if cli.quick { 500 } else { 10_000 }),
                postgres: cli.postgres.clone(),
                work_dir: std::env::temp_dir(),
            };
            complaint_ledger_bench::cluster::run(o).await.map(|_| ())
        }
        None if cli.scale => {
            let mut o = complaint_ledger_bench::scale::ScaleOptions::default();
            if let Some(e) = cli.scale_events {
                o.events = e;
            }
            if let Some(c) = cli.scale_cases {
                o.cases = c;
            }
            complaint_ledger_bench::scale::run(o).await.map(|_| ())
        }
        None => {
            let mut o = if cli.quick {
                BenchOptions::quick()
            } else {
                BenchOptions::full()
            };
            o.seconds = cli.seconds.unwrap_or(o.seconds);
            o.events = cli.events.unwrap_or(o.events);
            o.cases = cli.cases.unwrap_or(o.cases);
            o.postgres = cli.postgres;
            o.json = cli.json;
            if let Some(c) = cli.clients {
                o.clients = c;
            }
            o.data_dir = cli.data_dir;
            complaint_ledger_bench::run(o).await.map(|_| ())
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
