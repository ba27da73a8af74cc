//! The background scrub: the whole log verified again while the server
//! runs — every record's chain, its Merkle leaf and the nodes it completes,
//! its case-index and event-id entries, and the PII-access log's hash chain
//! — one pass every interval, up to the head when the pass starts.
//!
//! Why: a start verifies fully only what was written since the last full
//! verification (the rest it does not read: `ledger::integrity::verified_through`),
//! and a server runs for months while a disk can rot under it. So the
//! first pass runs right after a start that relied on the mark, and then
//! one every interval; each pass that verifies moves the mark. Damage found
//! is never absorbed: the first bad record stops appends (they answer
//! UNAVAILABLE naming it, as after a failed durable write), the scrub
//! stops, and `Ops.GetStats` says what it found. `verify --data-dir` on the
//! stopped server names it too. A pass reads at the store's pace on a
//! blocking thread; appends and reads go on meanwhile.

use crate::audit::verify::verify_prefix;
use crate::ledger::Ledger;
use crate::proto::v1 as pb;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;

/// What the scrub has done, for `Ops.GetStats`.
#[derive(Debug, Default)]
pub struct ScrubState(Mutex<pb::ScrubStatus>);

impl ScrubState {
    pub fn status(&self) -> pb::ScrubStatus {
        self.0.lock().expect("scrub state").clone()
    }

    fn update(&self, f: impl FnOnce(&mut pb::ScrubStatus)) {
        f(&mut self.0.lock().expect("scrub state"));
    }
}

/// Runs a pass every `interval` until `stopping` turns true or a pass finds
/// damage. The first pass starts at once when `start_was_partial` (the
/// start did not read the records under its mark), else one interval after
/// start (the start verified the whole store).
pub async fn run(
    ledger: Arc<Ledger>,
    interval: Duration,
    state: Arc<ScrubState>,
    mut stopping: watch::Receiver<bool>,
    start_was_partial: bool,
) {
    state.update(|s| s.enabled = true);
    let mut wait = if start_was_partial {
        Duration::ZERO
    } else {
        interval
    };
    loop {
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = stopping.wait_for(|s| *s) => return,
        }
        wait = interval;
        let upto = *ledger.head().borrow();
        state.update(|s| {
            s.checked = 0;
            s.checking_up_to = upto;
        });
        let (l, st) = (ledger.clone(), state.clone());
        let pass = tokio::task::spawn_blocking(move || {
            let report = verify_prefix(l.log().as_ref(), upto, |done, _| {
                st.update(|s| s.checked = done);
            })
            .map_err(|e| e.to_string())?;
            // The PII-access log's chain too: a start checks only its head.
            l.access_log().verify_all()?;
            Ok::<_, String>(report)
        })
        .await;
        let found = match pass {
            Ok(Ok(report)) => {
                if let Err(e) = crate::ledger::integrity::record_verified(
                    ledger.log().as_ref(),
                    report.records,
                    report.root,
                ) {
                    tracing::warn!(error = %e, "scrub: the verified-through mark could not be moved");
                }
                state.update(|s| {
                    s.passes += 1;
                    s.checked = 0;
                    s.checking_up_to = 0;
                    s.last_pass_at = Some(crate::time::now_ts());
                    s.last_pass_records = report.records;
                });
                tracing::info!(records = report.records, "scrub: the log verified");
                continue;
            }
            // As `verify --data-dir` words it ("position N: …").
            Ok(Err(e)) => e.to_string(),
            Err(e) => format!("the scrub pass failed: {e}"),
        };
        tracing::error!(found = %found, "scrub: the store is damaged; refusing appends");
        state.update(|s| s.failure = found.clone());
        ledger
            .refuse_appends(format!(
                "the background scrub found the store damaged ({found}); the ledger takes no appends. Stop it and run `complaint-ledger verify --data-dir`"
            ))
            .await;
        return;
    }
}
