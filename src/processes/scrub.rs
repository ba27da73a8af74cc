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
//!
//! Between full passes, tail passes (every `--verify-tail-seconds`) verify
//! only what was written since the mark and move it, so what a restart
//! verifies is bounded by that interval's writes, not by the time since
//! the last full pass ([`run`] says why).

use crate::audit::verify::{verify_prefix, verify_range};
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

/// How often the scrub runs each kind of pass.
#[derive(Debug, Clone, Copy)]
pub struct Intervals {
    /// Between full passes: the whole log verified again.
    pub full: Duration,
    /// Between tail passes: the records written since the verified-through
    /// mark verified, and the mark moved to the head they reached. `None`:
    /// only full passes move the mark.
    pub tail: Option<Duration>,
}

/// What a pass found wrong, as `verify --data-dir` words it.
type Found = String;

/// Runs a full pass every `intervals.full` and a tail pass every
/// `intervals.tail` until `stopping` turns true or a pass finds damage.
/// The first full pass starts at once when `start_was_partial` (the start
/// did not read the records under its mark), else one interval after
/// start (the start verified the whole store).
///
/// Why tail passes: a start verifies fully what was written since the
/// mark, and only full passes — a day apart by default, and hours long on
/// a large store — used to move it, so a restart's time grew with the
/// writes since the last one. A tail pass verifies each record once more
/// than before, in the background, and bounds that to an interval's
/// writes. Both kinds run on this one task, one after the other, so the
/// mark only ever moves forward.
pub async fn run(
    ledger: Arc<Ledger>,
    intervals: Intervals,
    state: Arc<ScrubState>,
    mut stopping: watch::Receiver<bool>,
    start_was_partial: bool,
) {
    let verified = crate::ledger::integrity::verified_through(ledger.log().as_ref());
    state.update(|s| {
        s.enabled = true;
        s.verified_through = verified;
    });
    let now = tokio::time::Instant::now();
    let mut next_full = now
        + if start_was_partial {
            Duration::ZERO
        } else {
            intervals.full
        };
    let mut next_tail = intervals.tail.map(|t| now + t);
    loop {
        let due = next_tail.map_or(next_full, |t| t.min(next_full));
        tokio::select! {
            _ = tokio::time::sleep_until(due) => {}
            _ = stopping.wait_for(|s| *s) => return,
        }
        let full = due == next_full;
        let found = if full {
            next_full = tokio::time::Instant::now() + intervals.full;
            full_pass(&ledger, &state).await
        } else {
            next_tail = intervals.tail.map(|t| tokio::time::Instant::now() + t);
            tail_pass(&ledger, &state).await
        };
        let Err(found) = found else {
            continue;
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

/// Verifies records 1..=head (and the PII-access log's chain) and moves the
/// mark to the head.
async fn full_pass(ledger: &Arc<Ledger>, state: &Arc<ScrubState>) -> Result<(), Found> {
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
    let report = match pass {
        Ok(Ok(report)) => report,
        Ok(Err(e)) => return Err(e),
        Err(e) => return Err(format!("the scrub pass failed: {e}")),
    };
    mark(ledger, state, report.records, report.root);
    state.update(|s| {
        s.passes += 1;
        s.checked = 0;
        s.checking_up_to = 0;
        s.last_pass_at = Some(crate::time::now_ts());
        s.last_pass_records = report.records;
    });
    tracing::info!(records = report.records, "scrub: the log verified");
    Ok(())
}

/// Records a tail pass verifies before it moves the mark: a pass under way
/// when the server stops loses at most this much of its work.
const TAIL_CHUNK: u64 = 65_536;

/// Verifies the records after the verified-through mark up to the head and
/// moves the mark there, a chunk at a time. The mark is read from the store
/// (and believed only while the tree still has its root), not from what
/// this task last wrote: a mark that no longer matches makes the pass a
/// full one.
async fn tail_pass(ledger: &Arc<Ledger>, state: &Arc<ScrubState>) -> Result<(), Found> {
    let upto = *ledger.head().borrow();
    let (l, st) = (ledger.clone(), state.clone());
    let pass = tokio::task::spawn_blocking(move || {
        let log = l.log();
        let first = crate::ledger::integrity::verified_through(log.as_ref()) + 1;
        let mut from = first;
        while from <= upto {
            let to = upto.min(from + TAIL_CHUNK - 1);
            let report =
                verify_range(log.as_ref(), from, to, |_, _| {}).map_err(|e| e.to_string())?;
            mark(&l, &st, report.records, report.root);
            from = to + 1;
        }
        Ok::<_, String>((first <= upto).then_some(first))
    })
    .await;
    match pass {
        Ok(Ok(Some(from))) => {
            state.update(|s| s.tail_passes += 1);
            tracing::debug!(
                from,
                to = upto,
                "scrub: the records since the mark verified"
            );
            Ok(())
        }
        Ok(Ok(None)) => Ok(()),
        Ok(Err(e)) => Err(e),
        Err(e) => Err(format!("the scrub's tail pass failed: {e}")),
    }
}

/// Moves the verified-through mark to `records` (root `root`).
fn mark(ledger: &Ledger, state: &ScrubState, records: u64, root: [u8; 32]) {
    match crate::ledger::integrity::record_verified(ledger.log().as_ref(), records, root) {
        Ok(()) => state.update(|s| s.verified_through = records),
        Err(e) => tracing::warn!(error = %e, "scrub: the verified-through mark could not be moved"),
    }
}
