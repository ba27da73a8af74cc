//! The projection host: a thread of its own that writes each durable
//! commit into the read models on disk — the case list's rows and the
//! blind index's new customers (from the writer's states), the policy
//! board (folded from the commit's facts), each in one batch with the
//! position it reached — then publishes it: the new head, and the
//! commit's facts for followers.
//!
//! Why a thread beside the writer: the writer only decides and commits.
//! It answers an append as soon as its commit is durable; while the host
//! folds that commit, the writer stages and syncs the next, and no reader
//! of the board waits on the thread that writes. Read-your-writes holds
//! on the read side instead: a read first waits until the published head
//! reaches the position the writer had committed when the read came
//! (`Ledger::caught_up`), which costs nothing once the host has caught
//! up. Commits are folded and published in commit order.
//!
//! A write that fails (the board cannot read a case's stream back, a
//! table cannot be written) stops appends, as a failed durable write does:
//! the commit is durable and is answered, later ones are no longer
//! written, and the writer refuses every further append until a restart
//! catches the read models up from the positions their tables reached.

use super::preseal::BlindTokens;
use crate::privacy::blind_index::BlindIndex;
use crate::projections::board_store::BoardStore;
use crate::projections::fact::OwnedFact;
use crate::projections::summary::{CaseIndex, SummaryEntry};
use std::sync::{Arc, OnceLock};
use tokio::sync::{broadcast, watch};

/// Commits the host may be behind the writer before the writer waits.
const PIPELINE: usize = 64;

/// Why appends are refused, once something made them unsafe; the first
/// reason stands. Shared by the writer (which refuses) and the host (which
/// may find the reason).
pub(crate) type Stopped = Arc<OnceLock<String>>;

/// One durable commit, for the host: its accepted events, the case list's
/// rows of its cases, its newly opened customers' blind tokens and the
/// head after it.
pub(crate) struct Committed {
    pub facts: Vec<OwnedFact>,
    pub rows: Vec<SummaryEntry>,
    pub customers: Vec<BlindTokens>,
    /// Customers whose erasure another node committed (adopted on a
    /// clustered log): the blind index forgets them after the commit's
    /// own customers are added.
    pub erased: Vec<String>,
    pub head: u64,
}

/// Where the host publishes.
pub(crate) struct Outlets {
    pub board: Arc<BoardStore>,
    pub index: Arc<CaseIndex>,
    pub blind: Arc<BlindIndex>,
    pub head_tx: watch::Sender<u64>,
    pub commits_tx: broadcast::Sender<Arc<Vec<OwnedFact>>>,
}

/// The running host: hand it commits in order, then [`Self::finish`].
pub(crate) struct ProjectionHost {
    tx: std::sync::mpsc::SyncSender<Committed>,
    thread: Option<std::thread::JoinHandle<()>>,
    stopped: Stopped,
}

impl ProjectionHost {
    pub fn start(outlets: Outlets, stopped: Stopped) -> std::io::Result<Self> {
        let (tx, rx) = std::sync::mpsc::sync_channel::<Committed>(PIPELINE);
        let on_thread = stopped.clone();
        let thread = std::thread::Builder::new()
            .name("ledger-projections".into())
            .spawn(move || {
                for c in rx {
                    publish(&outlets, &on_thread, c);
                }
            })?;
        Ok(Self {
            tx,
            thread: Some(thread),
            stopped,
        })
    }

    /// A host that runs nothing (its thread could not start; appends are
    /// refused before they reach a commit).
    pub fn idle(stopped: Stopped) -> Self {
        let (tx, _) = std::sync::mpsc::sync_channel(0);
        Self {
            tx,
            thread: None,
            stopped,
        }
    }

    /// Hands over a durable commit; waits while the host is
    /// [`PIPELINE`] commits behind.
    pub fn hand_over(&self, c: Committed) {
        if self.tx.send(c).is_err() {
            // The host is gone (it panicked): nothing will fold this
            // commit, so the read models would never show what the next
            // ones store. Reads waiting for it are refused UNAVAILABLE
            // when their wait runs out (`Ledger::caught_up`).
            let _ = self.stopped.set(
                "the ledger's projection host stopped; the ledger takes no appends until it is restarted"
                    .into(),
            );
        }
    }

    /// Waits until every commit handed over is folded and published.
    pub fn finish(self) {
        drop(self.tx);
        if let Some(t) = self.thread {
            let _ = t.join();
        }
    }
}

fn publish(out: &Outlets, stopped: &Stopped, c: Committed) {
    if stopped.get().is_none() {
        let written = out
            .index
            .write(&c.rows, c.head)
            .map_err(|e| format!("the case list: {e}"))
            .and_then(|_| {
                out.blind
                    .add(&c.customers, c.head)
                    .and_then(|_| c.erased.iter().try_for_each(|x| out.blind.forget(x)))
                    .map_err(|e| format!("the blind index: {e}"))
            })
            .and_then(|_| out.board.fold(&c.facts, c.head));
        if let Err(e) = written {
            let why = format!(
                "the read models could not take the commit through position {} ({e}); the ledger takes no appends until it is restarted",
                c.head
            );
            tracing::error!(head = c.head, error = %e, "writing the read models failed; refusing further appends");
            let _ = stopped.set(why);
        }
    }
    // Published even when the read models could not take it: the records
    // are durable, and readers waiting for them must not wait forever.
    out.head_tx.send_replace(c.head);
    // No follower: nothing is kept. A slow one is told it lagged and
    // reads the log instead.
    let _ = out.commits_tx.send(Arc::new(c.facts));
}
