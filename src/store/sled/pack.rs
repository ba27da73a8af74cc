//! Record packs: the consecutive records of one group commit stored a few per
//! sled value instead of one value each.
//!
//! Why: every sled insert walks the tree, copies a node and logs a delta;
//! under load the writer spent more of its time in those inserts than in
//! anything of its own. A pack of up to [`MAX_RECORDS`] records costs one
//! insert, and a range read decodes one value per pack instead of iterating
//! a key per record. Packs stay small ([`MAX_BYTES`]) so that a sled leaf of
//! them stays below sled's blob threshold (a quarter of a 512 KiB segment):
//! a blob would be a file of its own to sync.
//!
//! A pack is stored under the position of its first record (see
//! [`super::keys`]) as `0x00` followed by each record as a varint length and
//! its bytes. The records themselves are unchanged: the bytes hashed into the
//! chain and the Merkle tree are the bytes in the pack. A value that does not
//! start with `0x00` is a single record as stores written before packs held
//! them (an encoded `StoredRecord` never starts with `0x00`: field number 0
//! does not exist), so such stores read as before.

use prost::encoding::{decode_varint, encode_varint, encoded_len_varint};

/// First byte of a pack.
pub const MARK: u8 = 0x00;

/// Most records in one pack.
pub const MAX_RECORDS: usize = 32;

/// A pack is closed before it would exceed this many bytes (a single larger
/// record is a pack of its own).
pub const MAX_BYTES: usize = 6 * 1024;

/// Splits a run of records into packs: (index of the first record, value).
pub fn pack<'a>(records: impl IntoIterator<Item = &'a [u8]>) -> Vec<(usize, Vec<u8>)> {
    let mut out: Vec<(usize, Vec<u8>)> = Vec::new();
    let mut count = 0;
    for (i, r) in records.into_iter().enumerate() {
        let need = encoded_len_varint(r.len() as u64) + r.len();
        let full = match out.last() {
            Some((_, v)) => count == MAX_RECORDS || v.len() + need > MAX_BYTES,
            None => true,
        };
        if full {
            let mut v = Vec::with_capacity(MAX_BYTES.max(1 + need));
            v.push(MARK);
            out.push((i, v));
            count = 0;
        }
        let (_, v) = out.last_mut().expect("a pack was just opened");
        encode_varint(r.len() as u64, v);
        v.extend_from_slice(r);
        count += 1;
    }
    out
}

/// The records of a stored value, each with its position, the first at
/// `first`. A value not starting with [`MARK`] is one record.
pub fn unpack(first: u64, value: &[u8]) -> Result<Vec<(u64, &[u8])>, String> {
    let Some(rest) = value.strip_prefix(&[MARK]) else {
        return Ok(vec![(first, value)]);
    };
    let mut out = Vec::new();
    let mut buf = rest;
    while !buf.is_empty() {
        let len = decode_varint(&mut buf)
            .map_err(|e| format!("pack at position {first}: bad record length: {e}"))?;
        let len = usize::try_from(len)
            .ok()
            .filter(|l| *l <= buf.len())
            .ok_or_else(|| {
                format!(
                    "pack at position {first}: record {} runs past the pack",
                    first + out.len() as u64
                )
            })?;
        out.push((first + out.len() as u64, &buf[..len]));
        buf = &buf[len..];
    }
    if out.is_empty() {
        return Err(format!("pack at position {first} is empty"));
    }
    Ok(out)
}

/// The number of records in a stored value.
pub fn count(first: u64, value: &[u8]) -> Result<u64, String> {
    unpack(first, value).map(|r| r.len() as u64)
}

/// Encodes records as one pack (no size limit; for rewriting a pack).
pub fn encode<'a>(records: impl IntoIterator<Item = &'a [u8]>) -> Vec<u8> {
    let mut v = vec![MARK];
    for r in records {
        encode_varint(r.len() as u64, &mut v);
        v.extend_from_slice(r);
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packs_round_trip_and_respect_their_limits() {
        let records: Vec<Vec<u8>> = (0..100u8).map(|i| vec![i + 1; 300]).collect();
        let packs = pack(records.iter().map(|r| r.as_slice()));
        assert!(packs.len() > 1);
        let mut seen = 0;
        for (i, (start, value)) in packs.iter().enumerate() {
            assert_eq!(*start, seen);
            assert!(value.len() <= MAX_BYTES);
            let got = unpack(100 + *start as u64, value).unwrap();
            assert!(got.len() <= MAX_RECORDS);
            for (k, (pos, bytes)) in got.iter().enumerate() {
                assert_eq!(*pos, 100 + (seen + k) as u64);
                assert_eq!(*bytes, records[seen + k].as_slice());
            }
            seen += got.len();
            if i + 1 < packs.len() {
                // A pack closes only when the next record would not fit.
                assert!(got.len() == MAX_RECORDS || value.len() + 302 > MAX_BYTES);
            }
        }
        assert_eq!(seen, records.len());
    }

    #[test]
    fn small_records_fill_a_pack_up_to_the_record_limit() {
        let records = vec![vec![7u8; 10]; MAX_RECORDS + 1];
        let packs = pack(records.iter().map(|r| r.as_slice()));
        assert_eq!(packs.len(), 2);
        assert_eq!(count(1, &packs[0].1).unwrap(), MAX_RECORDS as u64);
        assert_eq!(count(1, &packs[1].1).unwrap(), 1);
    }

    #[test]
    fn a_record_larger_than_a_pack_is_a_pack_of_its_own() {
        let big = vec![9u8; MAX_BYTES * 3];
        let small = vec![1u8; 5];
        let packs = pack([small.as_slice(), big.as_slice(), small.as_slice()]);
        assert_eq!(packs.iter().map(|(i, _)| *i).collect::<Vec<_>>(), [0, 1, 2]);
        assert_eq!(unpack(2, &packs[1].1).unwrap(), vec![(2, big.as_slice())]);
    }

    #[test]
    fn a_value_without_the_mark_is_one_record_of_an_older_store() {
        let record = [0x08, 0x01, 0x12, 0x00];
        assert_eq!(unpack(5, &record).unwrap(), vec![(5, &record[..])]);
        assert_eq!(count(5, &record).unwrap(), 1);
    }

    #[test]
    fn damaged_packs_are_errors_not_panics() {
        assert!(unpack(1, &[MARK]).is_err());
        assert!(unpack(1, &[MARK, 5, 1, 2]).is_err());
        assert!(unpack(1, &[MARK, 0xff]).is_err());
        let e = unpack(9, &[MARK, 1, 7, 3, 1]).unwrap_err();
        assert!(e.contains("record 10"), "{e}");
    }
}
