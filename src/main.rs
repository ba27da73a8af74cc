//! The `complaint-ledger` command: `serve` runs the gRPC service; `replay`
//! prints a case's timeline from a running server; `verify` checks a stopped
//! server's data directory.

use clap::{Parser, Subcommand};
use complaint_ledger::config::ServerConfig;
use complaint_ledger::domain::validate::Limits;
use complaint_ledger::store::SledOptions;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "complaint-ledger",
    version,
    about = "Event-sourced, tamper-evident ledger of disputed customer complaints"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the gRPC service.
    Serve(ServeArgs),
    /// Print a case's timeline from a running server.
    Replay {
        /// Case id, e.g. 124545.
        #[arg(long = "case")]
        case_id: String,
        /// Server address.
        #[arg(
            long,
            env = "COMPLAINT_LEDGER_SERVER",
            default_value = "http://127.0.0.1:50051"
        )]
        server: String,
    },
    /// Verify every hash chain and index of a stopped server's data directory.
    Verify {
        #[arg(long, env = "COMPLAINT_LEDGER_DATA_DIR", default_value = "./data")]
        data_dir: PathBuf,
    },
}

#[derive(clap::Args)]
struct ServeArgs {
    /// Address to listen on.
    #[arg(
        long,
        env = "COMPLAINT_LEDGER_LISTEN",
        default_value = "127.0.0.1:50051"
    )]
    listen: SocketAddr,
    /// Directory of the sled store (created if missing).
    #[arg(long, env = "COMPLAINT_LEDGER_DATA_DIR", default_value = "./data")]
    data_dir: PathBuf,
    /// Largest encoded AppendRequest, bytes.
    #[arg(long, env = "COMPLAINT_LEDGER_MAX_REQUEST_BYTES", default_value_t = Limits::default().max_request_bytes)]
    max_request_bytes: usize,
    /// Most events in one AppendRequest.
    #[arg(long, env = "COMPLAINT_LEDGER_MAX_EVENTS_PER_APPEND", default_value_t = Limits::default().max_events_per_append)]
    max_events_per_append: usize,
    /// Largest encoded event payload, bytes (at most 96 KiB).
    #[arg(long, env = "COMPLAINT_LEDGER_MAX_EVENT_BYTES", default_value_t = Limits::default().max_event_bytes as u64,
          value_parser = clap::value_parser!(u64).range(1..=98_304))]
    max_event_bytes: u64,
    /// Largest single text field, bytes.
    #[arg(long, env = "COMPLAINT_LEDGER_MAX_TEXT_BYTES", default_value_t = Limits::default().max_text_bytes)]
    max_text_bytes: usize,
    /// sled page cache, bytes.
    #[arg(long, env = "COMPLAINT_LEDGER_CACHE_BYTES", default_value_t = SledOptions::default().cache_capacity)]
    cache_bytes: u64,
}

fn init_tracing() {
    use tracing_subscriber::EnvFilter;
    let filter =
        EnvFilter::try_from_env("COMPLAINT_LEDGER_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let json = std::env::var("COMPLAINT_LEDGER_LOG_FORMAT").is_ok_and(|v| v == "json");
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => tracing::info!("SIGINT received"),
        _ = term => tracing::info!("SIGTERM received"),
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing();
    let result = match cli.command {
        Command::Serve(a) => {
            let config = ServerConfig {
                listen: a.listen,
                data_dir: a.data_dir,
                limits: Limits {
                    max_request_bytes: a.max_request_bytes,
                    max_events_per_append: a.max_events_per_append,
                    max_event_bytes: a.max_event_bytes as usize,
                    max_text_bytes: a.max_text_bytes,
                },
                sled: SledOptions {
                    cache_capacity: a.cache_bytes,
                },
            };
            complaint_ledger::api::server::run(config, shutdown_signal()).await
        }
        Command::Replay { case_id, server } => {
            complaint_ledger::cli::replay::run(&server, &case_id).await
        }
        Command::Verify { data_dir } => verify(&data_dir),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn verify(dir: &std::path::Path) -> anyhow::Result<()> {
    if !dir.join("db").exists() {
        anyhow::bail!("{} holds no ledger", dir.display());
    }
    let log = complaint_ledger::store::SledLog::open(dir, &SledOptions::default())?;
    match complaint_ledger::audit::chain::verify_log(&log) {
        Ok(r) => {
            println!(
                "OK: {} records in {} cases; every hash chain and index verifies",
                r.records, r.cases
            );
            Ok(())
        }
        Err(e) => {
            println!("FAILED: {e}");
            anyhow::bail!("verification failed")
        }
    }
}
