//! The background scrub: the whole log verified again while the server
//! runs — every record's chain, its Merkle leaf and the nodes it completes,
//! its case-index and event-id entries — one pass every interval, up to the
//! head when the pass starts.
//!
//! Why: the start verifies the store, but a server runs for months and a
//! disk can rot under it. Damage found is never absorbed: the first bad
//! record stops appends (they answer UNAVAILABLE naming it, as after a
//! failed durable write), the scrub stops, and `Ops.GetStats` says what it
//! found. A restart verifies the store again and refuses to start on it.
//! A pass reads at the store's pace on a blocking thread; appends go on
//! meanwhile.

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
/// damage. The first pass starts one interval after start (the start
/// itself verified the store).
pub async fn run(
    ledger: Arc<Ledger>,
    interval: Duration,
    state: Arc<ScrubState>,
    mut stopping: watch::Receiver<bool>,
) {
    state.update(|s| s.enabled = true);
    loop {
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = stopping.wait_for(|s| *s) => return,
        }
        let upto = *ledger.head().borrow();
        state.update(|s| {
            s.checked = 0;
            s.checking_up_to = upto;
        });
        let (l, st) = (ledger.clone(), state.clone());
        let pass = tokio::task::spawn_blocking(move || {
            verify_prefix(l.log().as_ref(), upto, |done, _| {
                st.update(|s| s.checked = done);
            })
        })
        .await;
        let found = match pass {
            Ok(Ok(report)) => {
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
            Ok(Err(e)) => match e.position() {
                Some(p) => format!("position {p}: {e}"),
                None => e.to_string(),
            },
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
