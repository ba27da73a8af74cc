//! Command-line tools: clients of a running server, and offline tools that
//! open a stopped server's store.

pub mod audit;
pub mod client;
pub mod health;
pub mod import;
pub mod keys;
pub mod migrate;
pub mod rebuild;
pub mod replay;

/// A progress bar on stderr for a pass over `total` events (`rebuild`,
/// `verify --data-dir`): drawn only on a terminal; the rate as a whole
/// number of events per second.
pub fn progress_bar(total: u64, what: &str) -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::new(total);
    bar.set_style(
        indicatif::ProgressStyle::with_template(&format!(
            "{{spinner}} {what} [{{bar:40}}] {{pos}}/{{len}} events ({{rate}}, {{eta}} left)"
        ))
        .expect("static template")
        .with_key(
            "rate",
            |s: &indicatif::ProgressState, w: &mut dyn std::fmt::Write| {
                let _ = write!(w, "{:.0} events/s", s.per_sec());
            },
        )
        .progress_chars("=> "),
    );
    bar
}
