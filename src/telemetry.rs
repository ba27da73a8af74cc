//! The process's logs and traces: one `tracing` subscriber that writes log
//! lines to stderr (text, or one JSON object per line), and — when an OTLP
//! endpoint is configured — exports spans to it.
//!
//! Tracing follows OpenTelemetry's own environment variables, so the
//! ledger fits whatever collector the platform runs: it is on when
//! `OTEL_EXPORTER_OTLP_ENDPOINT` (or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`)
//! is set, off when neither is or `OTEL_SDK_DISABLED=true`; the exporter
//! speaks OTLP over gRPC and reads the usual `OTEL_EXPORTER_OTLP_*`
//! settings (headers, timeout) and `OTEL_SERVICE_NAME` (default
//! `complaint-ledger`). Spans are batched and sent in the background; the
//! batch is flushed when the process stops. Incoming W3C `traceparent`
//! headers are honoured (`api::observe`).

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

/// The target of the spans that exist for traces (a call's, the writer's
/// decision and group commit). The log leaves them out unless its filter
/// names this target: formatting their fields into every log line cost
/// about a third of the appends at 64 clients (BENCHMARKS.md, change 40),
/// and with no exporter they then cost nearly nothing.
pub const TRACE_TARGET: &str = "complaint_ledger::trace";

/// How logs are written: `COMPLAINT_LEDGER_LOG_FORMAT`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, Default)]
pub enum LogFormat {
    /// One human-readable line per event.
    #[default]
    Text,
    /// One JSON object per line, for log collectors.
    Json,
}

/// What has to be flushed when the process stops.
pub struct Telemetry {
    traces: Option<SdkTracerProvider>,
}

/// Whether the environment asks for OTLP trace export.
fn otlp_configured() -> bool {
    let set = |k: &str| std::env::var(k).is_ok_and(|v| !v.trim().is_empty());
    let disabled = std::env::var("OTEL_SDK_DISABLED").is_ok_and(|v| v.eq_ignore_ascii_case("true"));
    !disabled && (set("OTEL_EXPORTER_OTLP_ENDPOINT") || set("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"))
}

/// Installs the process's subscriber: logs filtered by `filter` (an
/// EnvFilter directive, `COMPLAINT_LEDGER_LOG`), and OTLP trace export if
/// configured. Call once, inside the Tokio runtime (the exporter's gRPC
/// client runs on it).
pub fn init(filter: &str, format: LogFormat) -> anyhow::Result<Telemetry> {
    let mut directives = EnvFilter::try_new(filter)
        .map_err(|e| anyhow::anyhow!("COMPLAINT_LEDGER_LOG {filter:?} is not a log filter: {e}"))?;
    if !filter.contains(TRACE_TARGET) {
        directives = directives.add_directive(
            format!("{TRACE_TARGET}=off")
                .parse()
                .expect("a static directive"),
        );
    }
    let filter = directives;
    let logs = match format {
        LogFormat::Text => tracing_subscriber::fmt::layer()
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .with_writer(std::io::stderr)
            .boxed(),
        LogFormat::Json => tracing_subscriber::fmt::layer()
            .json()
            .with_writer(std::io::stderr)
            .boxed(),
    }
    .with_filter(filter);
    let traces = if otlp_configured() {
        opentelemetry::global::set_text_map_propagator(
            opentelemetry_sdk::propagation::TraceContextPropagator::new(),
        );
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_tonic()
            .build()
            .map_err(|e| anyhow::anyhow!("configuring the OTLP span exporter: {e}"))?;
        let service = std::env::var("OTEL_SERVICE_NAME")
            .ok()
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| "complaint-ledger".to_string());
        let provider = SdkTracerProvider::builder()
            .with_batch_exporter(exporter)
            .with_resource(
                opentelemetry_sdk::Resource::builder()
                    .with_service_name(service)
                    .with_attribute(opentelemetry::KeyValue::new(
                        "service.version",
                        env!("CARGO_PKG_VERSION"),
                    ))
                    .build(),
            )
            .build();
        Some(provider)
    } else {
        None
    };
    // Spans at info and above are exported, whatever the log filter says:
    // a quiet log must not cut traces short.
    let otel = traces.as_ref().map(|p| {
        tracing_opentelemetry::layer()
            .with_tracer(p.tracer("complaint-ledger"))
            .with_filter(tracing_subscriber::filter::LevelFilter::INFO)
    });
    tracing_subscriber::registry()
        .with(logs)
        .with(otel)
        .try_init()
        .map_err(|e| anyhow::anyhow!("installing the log subscriber: {e}"))?;
    if traces.is_some() {
        tracing::info!("exporting traces over OTLP");
    }
    Ok(Telemetry { traces })
}

impl Telemetry {
    /// Sends the spans still batched (at exit).
    pub fn shutdown(self) {
        if let Some(p) = self.traces {
            if let Err(e) = p.shutdown() {
                eprintln!("warning: flushing traces at exit failed: {e}");
            }
        }
    }
}
