//! One message of the stream: the stored records of one group commit (or
//! of a part of one, when the commit is larger than a message may be), at
//! consecutive positions.
//!
//! Why records are packed and not one message each: every message costs
//! each of the three servers that store it — its staging in the atomic
//! batch, its Raft entry, its index — and a commit costs about as much
//! again whatever it holds. Measured on the benchmark's three servers, one
//! commit at a time: 25 records of 600 bytes as 25 messages took 2.2–2.4 ms
//! of the servers' CPU and 2.2–2.3 ms to acknowledge; the same bytes as one
//! message 1.3–1.4 ms of CPU and 1.3–1.4 ms. The positions stay the log's:
//! a message says where its records begin, each record says its own
//! position inside its stored bytes, and the stream's expected last
//! sequence still makes a commit land right after the one it was decided
//! on (see [`super::positions`] for finding a position's message).
//!
//! The format: one byte of version (1), the first record's position
//! (8 bytes, big-endian), then each record as its length (4 bytes,
//! big-endian) and its stored bytes — exactly as the single node stores
//! them, so their hashes are the same.

use crate::store::{NewRecord, StoreError};
use bytes::{BufMut, Bytes};

/// The format's version byte.
const VERSION: u8 = 1;

/// Bytes before the first record.
const HEADER: usize = 9;

/// A message's payload is cut at about this size: a NATS server takes
/// messages up to its `max_payload` (1 MiB by default). A record larger
/// than this (the ledger's limits keep events far below it) goes alone.
pub const MESSAGE_BYTES: usize = 256 * 1024;

/// Where a message of the stream is and which positions it holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    /// The message's stream sequence.
    pub seq: u64,
    /// The position of its first and last record.
    pub first: u64,
    pub last: u64,
}

/// The payloads of a commit's records, in order, each at most
/// [`MESSAGE_BYTES`] unless one record alone is larger. The records must
/// be at consecutive positions.
pub fn encode(records: &[NewRecord]) -> Vec<Bytes> {
    let mut out = Vec::new();
    let mut at = 0;
    while at < records.len() {
        let mut size = HEADER;
        let mut end = at;
        while end < records.len()
            && (end == at || size + 4 + records[end].bytes.len() <= MESSAGE_BYTES)
        {
            size += 4 + records[end].bytes.len();
            end += 1;
        }
        let mut buf = Vec::with_capacity(size);
        buf.put_u8(VERSION);
        buf.put_u64(records[at].position);
        for r in &records[at..end] {
            buf.put_u32(r.bytes.len() as u32);
            buf.put_slice(&r.bytes);
        }
        out.push(Bytes::from(buf));
        at = end;
    }
    out
}

/// The first position a payload says it holds, and how many records,
/// without copying them.
pub fn span(seq: u64, payload: &[u8]) -> Result<Span, StoreError> {
    let mut count = 0u64;
    let first = walk(seq, payload, |_| count += 1)?;
    Ok(Span {
        seq,
        first,
        last: first + count - 1,
    })
}

/// The records of the message at `seq`, with their positions; the bytes
/// share the payload's buffer.
pub fn decode(seq: u64, payload: &Bytes) -> Result<(Span, Vec<(u64, Bytes)>), StoreError> {
    let mut records = Vec::new();
    let first = walk(seq, payload, |range| records.push(payload.slice(range)))?;
    let last = first + records.len() as u64 - 1;
    let records = (first..).zip(records).collect();
    Ok((Span { seq, first, last }, records))
}

/// Checks the payload's framing and calls `each` with every record's
/// byte range; returns the first position.
fn walk(
    seq: u64,
    p: &[u8],
    mut each: impl FnMut(std::ops::Range<usize>),
) -> Result<u64, StoreError> {
    let bad = |why: &str| {
        StoreError::Corrupt(format!(
            "the stream's message {seq} is not a commit of this ledger: {why}"
        ))
    };
    if p.len() < HEADER {
        return Err(bad("it is shorter than the header"));
    }
    if p[0] != VERSION {
        return Err(bad(&format!("its format version is {}", p[0])));
    }
    let first = u64::from_be_bytes(p[1..HEADER].try_into().expect("8 bytes"));
    if first == 0 {
        return Err(bad("it begins at position 0"));
    }
    let mut at = HEADER;
    let mut count = 0;
    while at < p.len() {
        let Some(len) = p.get(at..at + 4) else {
            return Err(bad("a record's length is cut off"));
        };
        let len = u32::from_be_bytes(len.try_into().expect("4 bytes")) as usize;
        let end = at + 4 + len;
        if end > p.len() {
            return Err(bad("a record is cut off"));
        }
        each(at + 4..end);
        at = end;
        count += 1;
    }
    if count == 0 {
        return Err(bad("it holds no record"));
    }
    Ok(first)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(position: u64, len: usize) -> NewRecord {
        NewRecord {
            position,
            case_id: format!("c{position}"),
            case_version: 1,
            event_id: format!("e{position}"),
            bytes: vec![position as u8; len],
        }
    }

    #[test]
    fn a_commit_decodes_to_its_records_at_their_positions() {
        let records: Vec<_> = (41..=45).map(|p| record(p, 100 + p as usize)).collect();
        let messages = encode(&records);
        assert_eq!(messages.len(), 1);
        let (span, got) = decode(7, &messages[0]).unwrap();
        assert_eq!(
            span,
            Span {
                seq: 7,
                first: 41,
                last: 45
            }
        );
        assert_eq!(super::span(7, &messages[0]).unwrap(), span);
        for ((position, bytes), r) in got.iter().zip(&records) {
            assert_eq!(*position, r.position);
            assert_eq!(&bytes[..], &r.bytes[..]);
        }
    }

    #[test]
    fn a_large_commit_is_cut_into_messages_that_continue_each_other() {
        let records: Vec<_> = (1..=40).map(|p| record(p, 20_000)).collect();
        let messages = encode(&records);
        assert!(messages.len() > 1);
        let mut next = 1;
        for (i, m) in messages.iter().enumerate() {
            assert!(m.len() <= MESSAGE_BYTES);
            let (span, got) = decode(i as u64 + 1, m).unwrap();
            assert_eq!(span.first, next);
            assert_eq!(got.len() as u64, span.last - span.first + 1);
            next = span.last + 1;
        }
        assert_eq!(next, 41);
        // A record larger than a message goes alone.
        let big = encode(&[record(1, 10), record(2, MESSAGE_BYTES + 1), record(3, 10)]);
        assert_eq!(big.len(), 3);
    }

    #[test]
    fn a_damaged_or_foreign_message_is_refused_and_named() {
        let m = encode(&[record(3, 50), record(4, 50)]).remove(0);
        for bad in [
            Bytes::new(),
            Bytes::from_static(b"{\"not\":\"ours\"}"),
            m.slice(..m.len() - 1),
            m.slice(..HEADER),
            {
                let mut v = m.to_vec();
                v[0] = 2;
                Bytes::from(v)
            },
            {
                let mut v = m.to_vec();
                v[1..HEADER].copy_from_slice(&0u64.to_be_bytes());
                Bytes::from(v)
            },
        ] {
            let e = decode(12, &bad).unwrap_err();
            assert!(
                matches!(&e, StoreError::Corrupt(m) if m.contains("message 12")),
                "{e}"
            );
        }
    }
}
