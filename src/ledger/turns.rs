//! Taking turns at a clustered log's head, when two nodes append at once.
//! Only a courtesy between the nodes: the stream's expected sequence
//! decides which batch lands, with or without it (see `follow`, whose
//! writer waits).

use std::time::{Duration, Instant};

/// How long after a refused batch this node takes turns.
const CONTENDED_FOR: Duration = Duration::from_secs(1);

/// A turn is waited for at most this many times this node's recent commit
/// duration, and never longer than [`TURN_AT_MOST`].
const TURN_COMMITS: u32 = 2;
const TURN_AT_MOST: Duration = Duration::from_millis(20);

/// Taking turns at the stream's head. Two nodes appending at once race
/// for it: the one whose batch lands second is refused, and its batch,
/// its staging and its look at the stream were for nothing — each such
/// refusal costs the servers a commit's work too. So a node that was
/// refused lately, and whose own commit is the last one it knows of,
/// waits a moment for the other node's next commit before it sends its
/// own. The other node, which has just adopted that commit, does not
/// wait, so the two alternate instead of colliding; the waiting node's
/// next batch takes what came meanwhile. The wait is only a courtesy: the
/// stream's expected sequence decides, as without it, and a node that
/// hears nothing goes on after the wait.
#[derive(Default)]
pub(crate) struct Turns {
    /// Until when this node counts as contended (after a refused batch).
    contended_until: Option<Instant>,
    /// The head this node's own last commit reached.
    own_head: u64,
    /// A moving average of this node's commit duration.
    commit: Duration,
}

impl Turns {
    pub(super) fn refused(&mut self) {
        self.contended_until = Some(Instant::now() + CONTENDED_FOR);
    }

    pub(super) fn committed(&mut self, head: u64, took: Duration) {
        self.own_head = head;
        self.commit = if self.commit.is_zero() {
            took
        } else {
            (self.commit * 7 + took) / 8
        };
    }

    /// How long at most a node at `head` waits for another node's commit
    /// before its next batch, at `now`; `None` when it need not.
    pub(super) fn wait(&self, head: u64, now: Instant) -> Option<Duration> {
        let contended = self.contended_until.is_some_and(|u| now < u);
        (contended && head == self.own_head).then(|| (self.commit * TURN_COMMITS).min(TURN_AT_MOST))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_contended_node_whose_commit_is_the_last_waits_and_not_for_long() {
        let now = Instant::now();
        let mut t = Turns::default();
        t.committed(10, Duration::from_millis(3));
        // Never refused: no other node is in the way.
        assert_eq!(t.wait(10, now), None);
        t.refused();
        assert_eq!(t.wait(10, now), Some(Duration::from_millis(6)));
        // It adopted another node's commit since its own: its turn.
        assert_eq!(t.wait(12, now), None);
        // A second after the last refusal it no longer waits.
        assert_eq!(
            t.wait(10, now + CONTENDED_FOR + Duration::from_millis(1)),
            None
        );
        // Slow commits wait no longer than the bound.
        for _ in 0..50 {
            t.committed(20, Duration::from_millis(100));
        }
        assert_eq!(t.wait(20, now), Some(TURN_AT_MOST));
    }
}
