//! Which message of the stream holds a position.
//!
//! A message holds a commit's records ([`super::commit_message`]), so the
//! stream's sequences count commits, not records. A node mostly asks for
//! the position after the last one it read or wrote: the message after
//! the one it remembers. Everything else — a start, a copy fetched back,
//! a migration continued — is found by a binary search over the stream's
//! sequences, one direct get per step: the messages' first positions rise
//! with their sequences, because every commit expects the stream to end
//! where the one before it ended.
//!
//! What is remembered is what the stream said, and the stream never
//! changes a message, so the memory is never stale; it is only bounded.

use super::commit_message::Span;
use crate::store::StoreError;
use std::collections::BTreeMap;
use std::sync::Mutex;

/// Messages remembered at most (the newest are kept).
const KEPT: usize = 1024;

/// Messages of the stream this node has read or written, by last position.
#[derive(Default)]
pub struct Spans {
    by_last: Mutex<BTreeMap<u64, Span>>,
}

impl Spans {
    pub fn note(&self, s: Span) {
        let mut m = self.by_last.lock().unwrap_or_else(|p| p.into_inner());
        m.insert(s.last, s);
        while m.len() > KEPT {
            m.pop_first();
        }
    }

    /// The remembered message holding `position`.
    pub fn containing(&self, position: u64) -> Option<Span> {
        let m = self.by_last.lock().unwrap_or_else(|p| p.into_inner());
        m.range(position..)
            .next()
            .map(|(_, s)| *s)
            .filter(|s| s.first <= position)
    }

    /// Records per message in the newest message remembered (1 if none):
    /// how many messages a read of a number of records should ask for.
    pub fn records_per_message(&self) -> usize {
        let m = self.by_last.lock().unwrap_or_else(|p| p.into_inner());
        m.values()
            .next_back()
            .map_or(1, |s| usize::try_from(s.last - s.first + 1).unwrap_or(1))
    }

    /// The remembered message at stream sequence `seq`.
    pub fn at_seq(&self, seq: u64) -> Option<Span> {
        let m = self.by_last.lock().unwrap_or_else(|p| p.into_inner());
        m.values().rev().find(|s| s.seq == seq).copied()
    }
}

/// The sequence of the message holding `position`, or `None` if the
/// stream does not reach it. `stream_last` gives the stream's last
/// sequence and `probe` the span of the message at a sequence; both are
/// asked only when what is remembered does not tell.
pub fn locate(
    spans: &Spans,
    position: u64,
    stream_last: impl FnOnce() -> Result<u64, StoreError>,
    mut probe: impl FnMut(u64) -> Result<Span, StoreError>,
) -> Result<Option<u64>, StoreError> {
    if position == 0 {
        return Ok(None);
    }
    if let Some(s) = spans.containing(position) {
        return Ok(Some(s.seq));
    }
    // The message after a remembered one begins right after it; a stream
    // that does not hold it yet answers that sequence with nothing.
    if let Some(s) = spans
        .containing(position - 1)
        .filter(|s| s.last == position - 1)
    {
        return Ok(Some(s.seq + 1));
    }
    let last = stream_last()?;
    if last == 0 {
        return Ok(None);
    }
    // Each message holds one record at least, so position p is at a
    // sequence no higher than p. The message at `lo` begins at or before
    // the position (message 1 begins at 1).
    let (mut lo, mut hi) = (1, last.min(position));
    while lo < hi {
        let mid = lo + (hi - lo).div_ceil(2);
        let s = probe(mid)?;
        spans.note(s);
        if s.first <= position {
            lo = mid;
        } else {
            hi = mid - 1;
        }
    }
    let s = match spans.at_seq(lo) {
        Some(s) => s,
        None => {
            let s = probe(lo)?;
            spans.note(s);
            s
        }
    };
    Ok((s.first <= position && position <= s.last).then_some(s.seq))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A stream whose commits hold `sizes[i]` records each.
    fn stream(sizes: &[u64]) -> Vec<Span> {
        let mut first = 1;
        sizes
            .iter()
            .enumerate()
            .map(|(i, n)| {
                let s = Span {
                    seq: i as u64 + 1,
                    first,
                    last: first + n - 1,
                };
                first += n;
                s
            })
            .collect()
    }

    #[test]
    fn every_position_is_found_in_its_message_and_none_past_the_end() {
        let msgs = stream(&[1, 25, 3, 1, 1, 64, 7, 1, 300, 2]);
        let end = msgs.last().unwrap().last;
        for position in 1..=end + 3 {
            let spans = Spans::default();
            let mut probes = 0;
            let got = locate(
                &spans,
                position,
                || Ok(msgs.len() as u64),
                |seq| {
                    probes += 1;
                    Ok(msgs[seq as usize - 1])
                },
            )
            .unwrap();
            let want = msgs
                .iter()
                .find(|s| s.first <= position && position <= s.last)
                .map(|s| s.seq);
            assert_eq!(got, want, "position {position}");
            // A logarithm of the stream's messages, plus the last look.
            assert!(probes <= 6, "{probes} probes for {position}");
        }
    }

    #[test]
    fn the_next_message_is_found_without_asking_the_stream() {
        let msgs = stream(&[3, 4, 5]);
        let spans = Spans::default();
        assert_eq!(spans.records_per_message(), 1);
        spans.note(msgs[0]);
        assert_eq!(spans.records_per_message(), 3);
        let never = |_| -> Result<Span, StoreError> { panic!("the stream was asked") };
        let no_last = || -> Result<u64, StoreError> { panic!("the stream was asked") };
        assert_eq!(locate(&spans, 2, no_last, never).unwrap(), Some(1));
        assert_eq!(locate(&spans, 4, no_last, never).unwrap(), Some(2));
        // An empty stream holds nothing.
        assert_eq!(locate(&Spans::default(), 1, || Ok(0), never).unwrap(), None);
    }

    #[test]
    fn memory_is_bounded_and_keeps_the_newest() {
        let spans = Spans::default();
        for seq in 1..=(KEPT as u64 + 10) {
            spans.note(Span {
                seq,
                first: seq,
                last: seq,
            });
        }
        assert_eq!(spans.containing(5), None);
        assert_eq!(
            spans.containing(KEPT as u64 + 10).map(|s| s.seq),
            Some(KEPT as u64 + 10)
        );
    }
}
