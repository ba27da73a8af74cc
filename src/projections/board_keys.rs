//! The policy board's indexes as ordered keys: what the board keeps on disk
//! (see [`super::board_store`]). Every entry is derived from one case's
//! facts, so a commit rewrites only the entries of the cases it touched,
//! and the entries of a board folded from the whole log are exactly the
//! union of its cases' entries (what a rebuild compares).
//!
//! Why keys and not values: a query walks an index in its order and needs
//! only where to look next; what it shows of each entry comes from the
//! case's facts, folded from its stream on demand. No per-case value is
//! serialized, so the layout has nothing to migrate when a fact is added.
//!
//! Ids come from a closed alphabet without `\0` (see `domain::ids`), so
//! `\0` separates the parts of a key unambiguously; numbers are fixed-width
//! big-endian with the sign bit flipped, so they sort as numbers.

use super::board::{Board, ContactKey, PromiseKey};
use std::collections::BTreeMap;
use std::sync::Arc;
use time::Date;

/// Every case: its id.
pub const CASE: u8 = b'c';
/// A customer's cases: customer, case.
pub const CUSTOMER: u8 = b'u';
/// Promises by due time: due, case, promise event id.
pub const PROMISE_DUE: u8 = b'p';
/// Promises whose due time is provisional: case, promise event id.
pub const PROVISIONAL: u8 = b'v';
/// Dissatisfied contacts awaiting a survey: contact time, case, contact.
pub const AWAITING_SURVEY: u8 = b's';
/// Dissatisfied contacts awaiting a callback: contact time, case, contact.
pub const AWAITING_CALLBACK: u8 = b'k';
/// Dissatisfied contacts by local week: Monday, case, contact.
pub const WEEK: u8 = b'w';
/// Judgements by agent: agent, case, judgement id.
pub const JUDGEMENT: u8 = b'j';
/// Judgements whose appeal deadline is pending or provisional: agent,
/// case, judgement id.
pub const JUDGEMENT_PENDING: u8 = b'd';
/// Warnings by log position, valued with their case.
pub const WARNING: u8 = b'r';
/// Warnings no escalation answered in time: time to escalate by, log
/// position; valued with their case. Overdue once that time is past.
pub const WARNING_UNANSWERED: u8 = b'o';
/// The store's own entries (position reached, counts, settings).
pub const META: u8 = b'm';

const SEP: u8 = 0;

/// Index entries: key and value bytes, in key order.
pub type Entries = BTreeMap<Vec<u8>, Vec<u8>>;

/// An i128 as 16 bytes that sort as the number.
pub fn num(n: i128) -> [u8; 16] {
    ((n as u128) ^ (1 << 127)).to_be_bytes()
}

/// The i128 [`num`] wrote.
pub fn un_num(b: &[u8]) -> Option<i128> {
    Some((u128::from_be_bytes(b.try_into().ok()?) ^ (1 << 127)) as i128)
}

fn day(d: Date) -> [u8; 4] {
    ((d.to_julian_day() as u32) ^ (1 << 31)).to_be_bytes()
}

fn un_day(b: &[u8]) -> Option<Date> {
    let j = (u32::from_be_bytes(b.try_into().ok()?) ^ (1 << 31)) as i32;
    Date::from_julian_day(j).ok()
}

/// A key: its table's tag, then its fixed-width head, then its id parts
/// separated by `\0`.
pub fn key(tag: u8, head: &[u8], parts: &[&str]) -> Vec<u8> {
    let mut k =
        Vec::with_capacity(1 + head.len() + parts.iter().map(|p| p.len() + 1).sum::<usize>());
    k.push(tag);
    k.extend_from_slice(head);
    for (i, p) in parts.iter().enumerate() {
        if i > 0 {
            k.push(SEP);
        }
        k.extend_from_slice(p.as_bytes());
    }
    k
}

/// The id parts of a key after its tag and a head of `head` bytes.
pub fn parts(k: &[u8], head: usize) -> Option<(&[u8], Vec<&str>)> {
    let rest = k.get(1 + head..)?;
    let parts = rest
        .split(|b| *b == SEP)
        .map(std::str::from_utf8)
        .collect::<Result<Vec<_>, _>>()
        .ok()?;
    Some((&k[1..1 + head], parts))
}

pub fn promise_key(k: &PromiseKey) -> Vec<u8> {
    key(PROMISE_DUE, &num(k.0), &[&k.1, &k.2])
}

pub fn un_promise_key(k: &[u8]) -> Option<PromiseKey> {
    let (head, p) = parts(k, 16)?;
    let [case, event] = p[..] else { return None };
    Some((un_num(head)?, Arc::from(case), event.to_string()))
}

pub fn contact_key(tag: u8, k: &ContactKey) -> Vec<u8> {
    key(tag, &num(k.0), &[&k.1, &k.2])
}

pub fn un_contact_key(k: &[u8]) -> Option<ContactKey> {
    un_promise_key(k)
}

pub fn week_key(monday: Date, case: &str, contact: &str) -> Vec<u8> {
    key(WEEK, &day(monday), &[case, contact])
}

/// (week, case, contact) of a week key.
pub fn un_week_key(k: &[u8]) -> Option<(Date, String, String)> {
    let (head, p) = parts(k, 4)?;
    let [case, contact] = p[..] else { return None };
    Some((un_day(head)?, case.to_string(), contact.to_string()))
}

/// The first key of a week's contacts.
pub fn week_start(monday: Date) -> Vec<u8> {
    key(WEEK, &day(monday), &[])
}

pub fn warning_key(position: u64) -> Vec<u8> {
    key(WARNING, &position.to_be_bytes(), &[])
}

pub fn un_warning_key(k: &[u8]) -> Option<u64> {
    Some(u64::from_be_bytes(k.get(1..9)?.try_into().ok()?))
}

pub fn unanswered_key(by: i128, position: u64) -> Vec<u8> {
    let mut k = key(WARNING_UNANSWERED, &num(by), &[]);
    k.extend_from_slice(&position.to_be_bytes());
    k
}

/// (agent, case, judgement id) of a judgement key.
pub fn un_judgement_key(k: &[u8]) -> Option<(String, String, String)> {
    let (_, p) = parts(k, 0)?;
    let [agent, case, id] = p[..] else {
        return None;
    };
    Some((agent.to_string(), case.to_string(), id.to_string()))
}

/// (customer or case, case or event) of a two-part key without a head.
pub fn un_pair(k: &[u8]) -> Option<(String, String)> {
    let (_, p) = parts(k, 0)?;
    let [a, b] = p[..] else { return None };
    Some((a.to_string(), b.to_string()))
}

/// Every index entry `board` implies, warnings judged with `escalate_within`
/// (nanoseconds). A board of one case gives that case's entries; a board of
/// the whole log gives all of them.
pub fn entries(board: &Board, escalate_within: i128) -> Entries {
    let mut out = BTreeMap::new();
    let mut put = |k: Vec<u8>, v: &[u8]| {
        out.insert(k, v.to_vec());
    };
    for case in board.cases.keys() {
        put(key(CASE, &[], &[case]), b"");
    }
    for (customer, cases) in &board.customers {
        for case in cases {
            put(key(CUSTOMER, &[], &[customer, case]), b"");
        }
    }
    for k in &board.promises_by_due {
        put(promise_key(k), b"");
    }
    for (case, event) in &board.provisional_promises {
        put(key(PROVISIONAL, &[], &[case, event]), b"");
    }
    for k in &board.awaiting_survey {
        put(contact_key(AWAITING_SURVEY, k), b"");
    }
    for k in &board.awaiting_callback {
        put(contact_key(AWAITING_CALLBACK, k), b"");
    }
    for (monday, case, contact) in &board.dissatisfied_by_week {
        put(week_key(*monday, case, contact), b"");
    }
    for ((agent, case, id), j) in &board.judgements {
        put(key(JUDGEMENT, &[], &[agent, case, id]), b"");
        if !j.judgement.deadline_pending.is_empty() || j.judgement.deadline_provisional {
            put(key(JUDGEMENT_PENDING, &[], &[agent, case, id]), b"");
        }
    }
    for (position, w) in &board.warnings {
        put(warning_key(*position), w.case_id.as_bytes());
        // Judged as of forever: whether an escalation answered it in time.
        let judged = board.judge_warning(w, i128::MAX, escalate_within);
        if !judged.answered {
            put(unanswered_key(judged.by, *position), w.case_id.as_bytes());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_and_days_sort_as_themselves_and_keys_read_back() {
        let ns = [i128::MIN, -5, 0, 7, i128::MAX / 2, i128::MAX];
        for w in ns.windows(2) {
            assert!(num(w[0]) < num(w[1]));
        }
        for n in ns {
            assert_eq!(un_num(&num(n)), Some(n));
        }
        let d = time::macros::date!(2020 - 12 - 07);
        assert!(day(d) < day(d.next_day().unwrap()));
        assert_eq!(un_day(&day(d)), Some(d));
        let p: PromiseKey = (-3, Arc::from("case-1"), "e.9".into());
        assert_eq!(un_promise_key(&promise_key(&p)), Some(p));
        assert_eq!(
            un_week_key(&week_key(d, "c", "k1")),
            Some((d, "c".into(), "k1".into()))
        );
        assert_eq!(un_warning_key(&warning_key(42)), Some(42));
        assert!(warning_key(255) < warning_key(256));
        assert_eq!(
            un_judgement_key(&key(JUDGEMENT, &[], &["8030", "c", "j1"])),
            Some(("8030".into(), "c".into(), "j1".into()))
        );
    }
}
