//! Watching how long each group commit's sync takes.
//!
//! Why: every append waits for its group commit's sync (sled's flush and
//! the `fdatasync`), so a sync that stalls stalls every append committing
//! with it. The writer's time by phase (`Ops.GetStats` `writer_time`) sums
//! the syncs and hides a rare long one. On the development VM, deleting a
//! large file on the same ext4 volume (mounted with online `discard`) made
//! a few syncs take 60-140 ms instead of about 1 ms; an operator looking at
//! a latency spike should be able to see that it was the disk. So the
//! longest sync and the number of slow ones are kept for `Ops.GetStats`,
//! and slow syncs are logged, at most one warning per
//! [`WARNING_INTERVAL`] so that a disk slow for minutes does not flood the
//! log.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// A sync at least this long is a slow one: about a hundred times what a
/// commit's sync takes on the development VM, and longer than a call
/// center's client would wait without noticing.
pub const SLOW_SYNC: Duration = Duration::from_millis(100);

/// At most one slow-sync warning per this interval; the next one counts
/// the slow syncs it covers.
pub const WARNING_INTERVAL: Duration = Duration::from_secs(10);

/// The syncs' record, written by the writer thread, read by `GetStats`.
#[derive(Default)]
pub struct SyncWatch {
    longest_nanos: AtomicU64,
    slow: AtomicU64,
    /// When the last warning was logged, and the slow syncs since then.
    warning: Mutex<(Option<Instant>, u64)>,
}

impl SyncWatch {
    /// The longest sync since start.
    pub fn longest(&self) -> Duration {
        Duration::from_nanos(self.longest_nanos.load(Ordering::Relaxed))
    }

    /// Syncs of at least [`SLOW_SYNC`] since start.
    pub fn slow(&self) -> u64 {
        self.slow.load(Ordering::Relaxed)
    }

    /// Records one group commit's sync of `records` records.
    pub fn record(&self, took: Duration, records: usize) {
        self.record_at(took, records, Instant::now());
    }

    /// [`Self::record`] at a given time; returns the number of slow syncs a
    /// warning was logged for, if one was.
    fn record_at(&self, took: Duration, records: usize, now: Instant) -> Option<u64> {
        self.longest_nanos
            .fetch_max(crate::time::duration_nanos(took), Ordering::Relaxed);
        if took < SLOW_SYNC {
            return None;
        }
        self.slow.fetch_add(1, Ordering::Relaxed);
        let mut warning = self.warning.lock().expect("sync watch lock");
        warning.1 += 1;
        if warning
            .0
            .is_some_and(|last| now.saturating_duration_since(last) < WARNING_INTERVAL)
        {
            return None;
        }
        let covered = std::mem::take(&mut warning.1);
        warning.0 = Some(now);
        tracing::warn!(
            ms = took.as_millis() as u64,
            records,
            slow_syncs_since_last_warning = covered,
            "a group commit's sync was slow, and every append in it waited as long: \
             the disk, or trimming after a large deletion on its filesystem?"
        );
        Some(covered)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_longest_sync_is_kept_and_slow_ones_are_counted_and_warned_of_sparingly() {
        let watch = SyncWatch::default();
        let start = Instant::now();
        let ms = Duration::from_millis;
        assert_eq!(watch.record_at(ms(2), 10, start), None);
        assert_eq!((watch.longest(), watch.slow()), (ms(2), 0));

        // The first slow sync is warned of at once.
        assert_eq!(watch.record_at(ms(150), 10, start + ms(1)), Some(1));
        // Two more within the interval are counted, not logged.
        assert_eq!(watch.record_at(SLOW_SYNC, 10, start + ms(2)), None);
        assert_eq!(watch.record_at(ms(120), 10, start + ms(3)), None);
        assert_eq!(watch.record_at(ms(1), 10, start + ms(4)), None);
        assert_eq!((watch.longest(), watch.slow()), (ms(150), 3));

        // The next warning, an interval later, covers them and itself.
        let later = start + ms(1) + WARNING_INTERVAL;
        assert_eq!(watch.record_at(ms(400), 10, later), Some(3));
        assert_eq!((watch.longest(), watch.slow()), (ms(400), 4));
        assert_eq!(watch.record_at(ms(100), 10, later + ms(1)), None);
    }
}
