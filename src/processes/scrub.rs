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
use crate::store::EventLog;
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

    fn damage_found(&self) -> bool {
        !self.0.lock().expect("scrub state").failure.is_empty()
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
/// writes. They run on a task of their own, beside a full pass that may
/// take hours (the first one starts right after such a start); the mark
/// only ever moves forward ([`mark`]).
pub async fn run<L: EventLog + 'static>(
    ledger: Arc<Ledger<L>>,
    intervals: Intervals,
    state: Arc<ScrubState>,
    stopping: watch::Receiver<bool>,
    start_was_partial: bool,
) {
    let verified = crate::ledger::integrity::verified_through(ledger.log().as_ref());
    state.update(|s| {
        s.enabled = true;
        s.verified_through = verified;
    });
    let tails = intervals.tail.map(|every| {
        tokio::spawn(repeat(
            Pass::Tail,
            ledger.clone(),
            state.clone(),
            stopping.clone(),
            every,
            every,
        ))
    });
    let first = if start_was_partial {
        Duration::ZERO
    } else {
        intervals.full
    };
    repeat(Pass::Full, ledger, state, stopping, first, intervals.full).await;
    if let Some(t) = tails {
        t.abort();
    }
}

#[derive(Debug, Clone, Copy)]
enum Pass {
    Full,
    Tail,
}

/// Runs `pass` after `first`, then every `every`, until `stopping` turns
/// true or a pass of either kind finds damage.
async fn repeat<L: EventLog + 'static>(
    pass: Pass,
    ledger: Arc<Ledger<L>>,
    state: Arc<ScrubState>,
    mut stopping: watch::Receiver<bool>,
    first: Duration,
    every: Duration,
) {
    let mut wait = first;
    loop {
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = stopping.wait_for(|s| *s) => return,
        }
        wait = every;
        if state.damage_found() {
            return;
        }
        let result = match pass {
            Pass::Full => full_pass(&ledger, &state).await,
            Pass::Tail => tail_pass(&ledger, &state).await,
        };
        let Err(found) = result else {
            continue;
        };
        if state.damage_found() {
            return;
        }
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
async fn full_pass<L: EventLog + 'static>(
    ledger: &Arc<Ledger<L>>,
    state: &Arc<ScrubState>,
) -> Result<(), Found> {
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
async fn tail_pass<L: EventLog + 'static>(
    ledger: &Arc<Ledger<L>>,
    state: &Arc<ScrubState>,
) -> Result<(), Found> {
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

/// Moves the verified-through mark to `records` (root `root`), unless it
/// already stands there or beyond (a tail pass moved it while a full pass
/// ran) or damage was found meanwhile. Under the state's lock, so the two
/// passes' marks are written one at a time and never move it back.
fn mark<L: EventLog>(ledger: &Ledger<L>, state: &ScrubState, records: u64, root: [u8; 32]) {
    let mut s = state.0.lock().expect("scrub state");
    if records <= s.verified_through || !s.failure.is_empty() {
        return;
    }
    match crate::ledger::integrity::record_verified(ledger.log().as_ref(), records, root) {
        Ok(()) => s.verified_through = records,
        Err(e) => tracing::warn!(error = %e, "scrub: the verified-through mark could not be moved"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::test_support::{append, open, opened};
    use crate::proto::v1::case_event::Kind;
    use crate::store::hooked::{Gate, HookedLog};
    use crate::store::SledLog;
    use std::sync::atomic::{AtomicBool, Ordering};

    async fn until(state: &ScrubState, what: &str, done: impl Fn(&pb::ScrubStatus) -> bool) {
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while !done(&state.status()) {
            assert!(
                std::time::Instant::now() < deadline,
                "{what}: {:?}",
                state.status()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// A full pass that takes long (here: held at its first case-index
    /// read) does not hold up the tail passes: they move the mark to the
    /// head meanwhile, and the full pass, once done, does not move it
    /// back.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn tail_passes_go_on_while_a_full_pass_runs() {
        let dir = tempfile::tempdir().unwrap();
        let gate = Arc::new(Gate::default());
        let armed = Arc::new(AtomicBool::new(false));
        let held = Arc::new(AtomicBool::new(false));
        let log = {
            let (gate, armed, held) = (gate.clone(), armed.clone(), held.clone());
            HookedLog::new(SledLog::open(dir.path(), &Default::default()).unwrap())
                .before_case_read(move || {
                    // The first read after arming waits at the gate.
                    if armed.swap(false, Ordering::SeqCst) {
                        held.store(true, Ordering::SeqCst);
                        gate.pass();
                    }
                    Ok(())
                })
        };
        let ledger = open(log, dir.path());
        ledger
            .append(append("sc", "sc-open", opened("cust-sc")), "agent".into())
            .await
            .unwrap();
        for i in 0..4 {
            let note = Kind::NoteAdded(pb::NoteAdded {
                text: format!("note {i}"),
            });
            ledger
                .append(append("sc", &format!("sc-n{i}"), note), "agent".into())
                .await
                .unwrap();
        }
        ledger.caught_up().await.unwrap();

        gate.set(true);
        armed.store(true, Ordering::SeqCst);
        let state = Arc::new(ScrubState::default());
        let (stop, stopping) = watch::channel(false);
        // The full pass starts at once (as after a start that relied on
        // the mark); the first tail pass a second later.
        let scrub = tokio::spawn(run(
            ledger.clone(),
            Intervals {
                full: Duration::from_secs(3600),
                tail: Some(Duration::from_secs(1)),
            },
            state.clone(),
            stopping,
            true,
        ));
        until(&state, "the full pass is not held", |_| {
            held.load(Ordering::SeqCst)
        })
        .await;
        until(&state, "the tail pass did not move the mark", |s| {
            s.verified_through == 5
        })
        .await;
        let s = state.status();
        assert_eq!(s.passes, 0, "the full pass is still held: {s:?}");
        assert_eq!(s.checking_up_to, 5, "{s:?}");

        gate.set(false);
        until(&state, "the full pass did not finish", |s| s.passes == 1).await;
        let s = state.status();
        assert_eq!(s.verified_through, 5, "{s:?}");
        assert!(s.failure.is_empty(), "{s:?}");
        assert_eq!(
            crate::ledger::integrity::verified_through(ledger.log().as_ref()),
            5
        );
        stop.send_replace(true);
        scrub.await.unwrap();
    }
}
