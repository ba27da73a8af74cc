//! What the early-warning rules know across cases, as keys in a table of
//! the store (`early-warning`): customers' inbound contacts (the repeated-
//! contacts rule counts them across a customer's cases), when that rule
//! last fired for a customer, the open promises by due time, and the
//! position the process has folded and raised everything up to.
//!
//! Why on disk: in memory this grew with every customer and promise ever
//! seen, and a start folded the whole log to rebuild it. On disk, a start
//! folds only what came after the stored position; each case's own track
//! comes from a bounded cache, folded from the case's stream on a miss.
//!
//! Why no batch: every key a fold writes is derived from the fact that
//! wrote it and names that fact's position, and every read of a contact or
//! a firing takes only those written before the fact being folded. So a
//! fact folded again after a crash (the table's position is written only
//! once the warnings of everything before it are in the log) reads and
//! writes exactly what it did the first time: the table need not move in
//! step with its position. The due queue is not positional: a key a
//! re-fold puts back only makes the promise be judged once more, and a
//! warning already in the log is never appended again.

use crate::projections::board_keys::{key, num, parts, un_num};
use crate::store::side_table::Change;
use crate::store::{EventLog, PackedTable, SideTable, StoreError};

/// The name of the table in the store.
pub const TABLE: &str = "early-warning";

/// The layout of the table; a table of another layout is folded again.
/// 3: every entry but the table's own packed a few dozen to a stored key
/// ([`PackedTable`]; 2 stored a key per entry, 1 a key per contact). Why:
/// a customer's contacts and firings were keys of their own, and sled
/// keeps memory for every page it ever wrote; packed, a closed case's
/// share of them is a few percent of a key.
const LAYOUT: u64 = 3;

/// The table's own entries: layout, rules, position.
const META: u8 = b'm';
/// A customer's inbound contacts, up to [`CONTACTS_PER_ENTRY`] per entry:
/// customer, then the start time and log position of the entry's first
/// contact; valued with its contacts (start time, log position; 24 bytes
/// each) in that order. Why not a key each: sled keeps memory for every
/// page it ever wrote, and a key per contact made this table the
/// store's largest by keys (eleven per case like the seed's).
const CONTACTS: u8 = b'c';

/// Most contacts one entry holds; a fuller one is split in two.
const CONTACTS_PER_ENTRY: usize = 32;

/// One contact in an entry: start time ([`num`]) and log position.
type Contact = [u8; 24];
/// When the repeated-contacts rule fired for a customer: rule, customer,
/// then the position inverted (the latest first); valued with the start
/// time of the contact it fired on.
const FIRED: u8 = b'f';
/// Open promises by due time: due, case, promise event id.
const DUE: u8 = b'd';

/// Keys scanned per read.
const PAGE: usize = 1024;

/// An open promise's place in the due queue: due time, case, the event id
/// that recorded the promise.
pub type DueKey = (i128, String, String);

fn meta(name: &str) -> Vec<u8> {
    key(META, &[], &[name])
}

/// A customer's prefix in a tag's keys: the customer and its separator.
fn customer_prefix(tag: u8, head: &[u8], customer: &str) -> Vec<u8> {
    let mut k = key(tag, head, &[customer]);
    k.push(0);
    k
}

fn contact(started: i128, position: u64) -> Contact {
    let mut c = [0; 24];
    c[..16].copy_from_slice(&num(started));
    c[16..].copy_from_slice(&position.to_be_bytes());
    c
}

/// An entry's contacts, checked: whole contacts, at least one, in order.
fn contacts_of(k: &[u8], v: &[u8]) -> Result<Vec<Contact>, StoreError> {
    if v.is_empty() || v.len() % 24 != 0 {
        return Err(damaged("contacts", k));
    }
    let list: Vec<Contact> = v
        .chunks_exact(24)
        .map(|c| c.try_into().expect("24 bytes"))
        .collect();
    if list.windows(2).any(|w| w[0] >= w[1]) || !k.ends_with(&list[0]) {
        return Err(damaged("contacts", k));
    }
    Ok(list)
}

fn fired_prefix(rule: &str, customer: &str) -> Vec<u8> {
    let mut k = key(FIRED, &[], &[rule, customer]);
    k.push(0);
    k
}

fn due_key(due: i128, case_id: &str, promise_event: &str) -> Vec<u8> {
    key(DUE, &num(due), &[case_id, promise_event])
}

fn damaged(what: &str, k: &[u8]) -> StoreError {
    StoreError::Corrupt(format!(
        "the early-warning table holds a damaged {what} key: {}",
        String::from_utf8_lossy(k)
    ))
}

/// The table early warning's position is kept in, apart from its
/// entries. Why: it is written after every round, and sled copies a
/// leaf whole on each change of it; beside the packed groups each write
/// copied kilobytes, 15 % of the server's CPU per append at 16 clients
/// (BENCHMARKS.md, change 58).
pub const POSITION_TABLE: &str = "early-warning-position";

/// The position stored for early warning in `log`, without opening the
/// tables for the rules (what `Ops.GetStats` shows); 0 when there is none.
pub fn stored_position(log: &dyn EventLog) -> Result<u64, StoreError> {
    position_in(
        log.side_table(POSITION_TABLE)?.as_ref(),
        log.side_table(TABLE)?.as_ref(),
    )
}

/// The position in its own table, else where a table written before it
/// had one kept it: among the entries.
fn position_in(position: &dyn SideTable, table: &dyn SideTable) -> Result<u64, StoreError> {
    match position.get_u64(&meta("position"))? {
        Some(p) => Ok(p),
        None => Ok(table.get_u64(&meta("position"))?.unwrap_or(0)),
    }
}

pub struct WarningTable {
    table: PackedTable<Box<dyn SideTable>>,
    position: Box<dyn SideTable>,
}

/// The table's own entries stay plain, so every layout reads them alike.
fn is_meta(k: &[u8]) -> bool {
    k.first() == Some(&META)
}

impl WarningTable {
    /// The table kept in `table` for the rules `rules` (any text that
    /// changes when they do). A table of another layout or other rules is
    /// emptied, to be folded again from the start of the log: a rule
    /// changed or added applies to the whole history, as it would have had
    /// it been there all along. Why is logged.
    /// Its position is kept in `position` ([`POSITION_TABLE`]), emptied
    /// with it.
    pub fn open(
        table: Box<dyn SideTable>,
        position: Box<dyn SideTable>,
        rules: &str,
    ) -> Result<Self, StoreError> {
        // Checked and emptied as stored: a table of another layout does
        // not read as packed entries.
        let layout = table.get_u64(&meta("layout"))?;
        let stored_rules = table.get(&meta("rules"))?;
        let why = match (layout, stored_rules) {
            (None, None) if table.is_empty()? => None,
            (Some(LAYOUT), Some(r)) if r == rules.as_bytes() => None,
            (Some(LAYOUT), _) => Some("the early-warning rules changed"),
            _ => Some("the early-warning table has another layout"),
        };
        if let Some(why) = why {
            tracing::info!("{why}: early warning folds the log again from its start");
            table.clear()?;
        }
        if why.is_some() || layout.is_none() {
            // A new (or lost) table starts from the log's start, whatever
            // position was kept beside it.
            position.clear()?;
        }
        let t = Self {
            table: PackedTable::new(table, is_meta),
            position,
        };
        t.table.apply(&[
            (meta("layout"), Some(LAYOUT.to_be_bytes().to_vec())),
            (meta("rules"), Some(rules.as_bytes().to_vec())),
        ])?;
        Ok(t)
    }

    /// Opens early warning's tables of `log` ([`TABLE`] and
    /// [`POSITION_TABLE`]) for `rules`, as [`Self::open`] does.
    pub fn open_in(log: &dyn EventLog, rules: &str) -> Result<Self, StoreError> {
        Self::open(
            log.side_table(TABLE)?,
            log.side_table(POSITION_TABLE)?,
            rules,
        )
    }

    /// The position up to which every fact was folded and what it raised
    /// is in the log; 0 for a new table.
    pub fn position(&self) -> Result<u64, StoreError> {
        position_in(self.position.as_ref(), self.table.inner().as_ref())
    }

    pub fn set_position(&self, position: u64) -> Result<(), StoreError> {
        self.position
            .insert(&meta("position"), &position.to_be_bytes())
            .map(|_| ())
    }

    /// Records an inbound contact of `customer` started at `started`,
    /// folded at `position`.
    /// A contact folded again (after a crash) is found and not added
    /// twice.
    pub fn add_contact(
        &self,
        customer: &str,
        started: i128,
        position: u64,
    ) -> Result<(), StoreError> {
        let prefix = customer_prefix(CONTACTS, &[], customer);
        let new = contact(started, position);
        let key_of = |c: &Contact| [prefix.as_slice(), c].concat();
        // The entry holding the contacts just before it, else the
        // customer's first entry (the new contact goes first).
        let held = match self.table.last_at_or_before(&key_of(&new))? {
            Some((k, v)) if k.starts_with(&prefix) => Some((k, v)),
            _ => self
                .table
                .scan(&prefix, 1)?
                .into_iter()
                .find(|(k, _)| k.starts_with(&prefix)),
        };
        let Some((key, value)) = held else {
            return self.table.insert(&key_of(&new), &new).map(|_| ());
        };
        let mut list = contacts_of(&key, &value)?;
        let Err(at) = list.binary_search(&new) else {
            return Ok(());
        };
        list.insert(at, new);
        // Written whole in one batch: the old entry's key goes if the
        // entry now starts elsewhere, and a full entry splits in two.
        let halves: Vec<&[Contact]> = if list.len() > CONTACTS_PER_ENTRY {
            let (a, b) = list.split_at(list.len() / 2);
            vec![a, b]
        } else {
            vec![&list]
        };
        let mut changes: Vec<Change> = Vec::new();
        if key != key_of(&list[0]) {
            changes.push((key, None));
        }
        for half in halves {
            changes.push((key_of(&half[0]), Some(half.concat())));
        }
        self.table.apply(&changes)
    }

    /// The inbound contacts of `customer` started from `from` to `to`
    /// (both inclusive) and folded at or before `through`.
    pub fn contacts_within(
        &self,
        customer: &str,
        from: i128,
        to: i128,
        through: u64,
    ) -> Result<usize, StoreError> {
        let prefix = customer_prefix(CONTACTS, &[], customer);
        // From the entry holding the contacts just before `from`.
        let first = [prefix.as_slice(), &contact(from, 0)].concat();
        let mut at = match self.table.last_at_or_before(&first)? {
            Some((k, _)) if k.starts_with(&prefix) => k,
            _ => prefix.clone(),
        };
        let mut n = 0;
        // Entries are a few hundred bytes and a window of the rule spans
        // one or two: read a few at a time, more as the walk goes on,
        // not a page of other customers' entries after them.
        let mut want = 2;
        loop {
            let page = self.table.scan(&at, want)?;
            let full = page.len() == want;
            want = (want * 4).min(PAGE);
            for (k, v) in &page {
                if !k.starts_with(&prefix) {
                    return Ok(n);
                }
                for c in contacts_of(k, v)? {
                    let started = un_num(&c[..16]).ok_or_else(|| damaged("contacts", k))?;
                    if started > to {
                        return Ok(n);
                    }
                    let position = u64::from_be_bytes(c[16..].try_into().expect("8 bytes"));
                    if started >= from && position <= through {
                        n += 1;
                    }
                }
            }
            match page.last() {
                Some((k, _)) if full => {
                    at = k.clone();
                    at.push(0);
                }
                _ => return Ok(n),
            }
        }
    }

    /// The start time of the contact `rule` last fired on for `customer`,
    /// among the firings folded before `before`.
    pub fn last_fired(
        &self,
        rule: &str,
        customer: &str,
        before: u64,
    ) -> Result<Option<i128>, StoreError> {
        let prefix = fired_prefix(rule, customer);
        let mut from = prefix.clone();
        // Inverted, so the latest position before `before` comes first.
        from.extend_from_slice(&(u64::MAX - before.saturating_sub(1)).to_be_bytes());
        let Some((k, v)) = self.table.scan(&from, 1)?.into_iter().next() else {
            return Ok(None);
        };
        if !k.starts_with(&prefix) {
            return Ok(None);
        }
        un_num(&v).map(Some).ok_or_else(|| damaged("firing", &k))
    }

    /// Records that `rule` fired for `customer` on the contact started at
    /// `started`, folded at `position`.
    pub fn fire(
        &self,
        rule: &str,
        customer: &str,
        position: u64,
        started: i128,
    ) -> Result<(), StoreError> {
        let mut k = fired_prefix(rule, customer);
        k.extend_from_slice(&(u64::MAX - position).to_be_bytes());
        self.table.insert(&k, &num(started)).map(|_| ())
    }

    /// Puts an open promise in the due queue, or takes it out.
    pub fn set_due(&self, due: &DueKey, open: bool) -> Result<(), StoreError> {
        let k = due_key(due.0, &due.1, &due.2);
        if open {
            self.table.insert(&k, &[]).map(|_| ())
        } else {
            self.table.remove(&k)
        }
    }

    /// Up to `limit` promises of the due queue falling due before `now`,
    /// the earliest first.
    pub fn due_before(&self, now: i128, limit: usize) -> Result<Vec<DueKey>, StoreError> {
        let mut out = Vec::new();
        for (k, _) in self.table.scan(&[DUE], limit)? {
            if k.first() != Some(&DUE) {
                break;
            }
            let (head, p) = parts(&k, 16).ok_or_else(|| damaged("due", &k))?;
            let due = un_num(head).ok_or_else(|| damaged("due", &k))?;
            if due >= now {
                break;
            }
            let [case_id, promise_event] = p[..] else {
                return Err(damaged("due", &k));
            };
            out.push((due, case_id.to_string(), promise_event.to_string()));
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::MemoryTable;
    use std::sync::Arc;

    fn table() -> WarningTable {
        open(Arc::new(MemoryTable::default()), &Arc::default(), "rules")
    }

    fn open(store: Arc<MemoryTable>, position: &Arc<MemoryTable>, rules: &str) -> WarningTable {
        WarningTable::open(Box::new(store), Box::new(position.clone()), rules).unwrap()
    }

    #[test]
    fn contacts_count_by_time_and_by_position() {
        let t = table();
        t.add_contact("u", 10, 1).unwrap();
        t.add_contact("u", 20, 3).unwrap();
        t.add_contact("u", 20, 2).unwrap();
        t.add_contact("u", -5, 4).unwrap();
        t.add_contact("u2", 15, 5).unwrap();
        // "u" is a prefix of "u2": the separator keeps them apart.
        assert_eq!(t.contacts_within("u", i128::MIN, i128::MAX, 9).unwrap(), 4);
        assert_eq!(t.contacts_within("u", 10, 20, 9).unwrap(), 3);
        assert_eq!(t.contacts_within("u", 10, 20, 2).unwrap(), 2);
        assert_eq!(t.contacts_within("u", 11, 19, 9).unwrap(), 0);
        assert_eq!(t.contacts_within("u2", 0, 100, 9).unwrap(), 1);
    }

    #[test]
    fn many_contacts_in_any_order_count_as_one_key_each_would() {
        let t = table();
        // 200 contacts of one customer in a scrambled order, each added
        // twice (a fold again after a crash), around another customer's.
        let contacts: Vec<(i128, u64)> = (0..200u64)
            .map(|i| (((i * 7919) % 200) as i128 * 10 - 500, i + 1))
            .collect();
        for &(started, position) in contacts.iter().chain(contacts.iter().rev()) {
            t.add_contact("u", started, position).unwrap();
            t.add_contact("u1", started, position).unwrap();
        }
        let entries = t.table.scan(&[CONTACTS], 1000).unwrap();
        assert!(
            entries.len() <= 2 * 200 * 2 / CONTACTS_PER_ENTRY + 2,
            "{}",
            entries.len()
        );
        let brute = |from: i128, to: i128, through: u64| {
            contacts
                .iter()
                .filter(|(s, p)| *s >= from && *s <= to && *p <= through)
                .count()
        };
        for (from, to, through) in [
            (i128::MIN, i128::MAX, u64::MAX),
            (-500, -500, 200),
            (-495, 1490, 200),
            (0, 300, 100),
            (1490, 1490, 200),
            (1491, i128::MAX, 200),
            (-1000, -501, 200),
            (100, 99, 200),
        ] {
            assert_eq!(
                t.contacts_within("u", from, to, through).unwrap(),
                brute(from, to, through),
                "{from}..={to} through {through}"
            );
        }
        assert_eq!(
            t.contacts_within("u2", i128::MIN, i128::MAX, u64::MAX)
                .unwrap(),
            0
        );
    }

    #[test]
    fn the_last_firing_is_the_latest_before_the_position_asked() {
        let t = table();
        assert_eq!(t.last_fired("r", "u", 10).unwrap(), None);
        t.fire("r", "u", 3, 30).unwrap();
        t.fire("r", "u", 7, 70).unwrap();
        t.fire("r", "u2", 5, 50).unwrap();
        assert_eq!(t.last_fired("r", "u", 3).unwrap(), None);
        assert_eq!(t.last_fired("r", "u", 4).unwrap(), Some(30));
        assert_eq!(t.last_fired("r", "u", 7).unwrap(), Some(30));
        assert_eq!(t.last_fired("r", "u", 8).unwrap(), Some(70));
        assert_eq!(t.last_fired("other", "u", 8).unwrap(), None);
    }

    #[test]
    fn the_due_queue_comes_out_in_time_order_up_to_now() {
        let t = table();
        let a = (20, "a".to_string(), "e2".to_string());
        let b = (-10, "b".to_string(), "e1".to_string());
        t.set_due(&a, true).unwrap();
        t.set_due(&b, true).unwrap();
        assert_eq!(t.due_before(20, 10).unwrap(), vec![b.clone()]);
        assert_eq!(t.due_before(21, 10).unwrap(), vec![b.clone(), a.clone()]);
        t.set_due(&b, false).unwrap();
        assert_eq!(t.due_before(i128::MAX, 10).unwrap(), vec![a]);
    }

    #[test]
    fn other_rules_or_layout_empty_the_table() {
        let (store, position) = (Arc::new(MemoryTable::default()), Arc::default());
        let t = open(store.clone(), &position, "v1");
        t.add_contact("u", 1, 1).unwrap();
        t.set_position(9).unwrap();
        let t = open(store.clone(), &position, "v1");
        assert_eq!(t.position().unwrap(), 9);
        assert_eq!(t.contacts_within("u", 0, 9, 9).unwrap(), 1);
        let t = open(store, &position, "v2");
        assert_eq!(t.position().unwrap(), 0);
        assert_eq!(t.contacts_within("u", 0, 9, 9).unwrap(), 0);
        // The entries lost, the position kept beside them goes too.
        t.set_position(9).unwrap();
        let t = open(Arc::default(), &position, "v2");
        assert_eq!(t.position().unwrap(), 0);
    }

    /// The position lives in its own table; one kept among the entries
    /// (a table written before) is read until the first is written.
    #[test]
    fn the_position_is_kept_apart_and_read_where_it_was_before() {
        let (store, position) = (Arc::new(MemoryTable::default()), Arc::default());
        open(store.clone(), &position, "v1");
        store
            .insert(&meta("position"), &7u64.to_be_bytes())
            .unwrap();
        let t = open(store.clone(), &position, "v1");
        assert_eq!(t.position().unwrap(), 7);
        t.set_position(12).unwrap();
        assert_eq!(t.position().unwrap(), 12);
        assert_eq!(store.get_u64(&meta("position")).unwrap(), Some(7));
        assert_eq!(position.get_u64(&meta("position")).unwrap(), Some(12));
    }

    /// A table of layout 2 (a key per customer's contacts, per firing) is
    /// emptied at open, to be folded again; the packed layout keeps the
    /// entries of many customers in a few stored keys.
    #[test]
    fn a_key_per_entry_table_is_emptied_and_entries_are_packed() {
        let store = std::sync::Arc::new(MemoryTable::default());
        let c = contact(1, 1);
        let raw = [customer_prefix(CONTACTS, &[], "u").as_slice(), &c].concat();
        store
            .apply(&[
                (meta("layout"), Some(2u64.to_be_bytes().to_vec())),
                (meta("rules"), Some(b"v1".to_vec())),
                (meta("position"), Some(9u64.to_be_bytes().to_vec())),
                (raw, Some(c.to_vec())),
            ])
            .unwrap();
        let t = open(store.clone(), &Arc::default(), "v1");
        assert_eq!(t.position().unwrap(), 0);
        assert_eq!(t.contacts_within("u", 0, 9, 9).unwrap(), 0);

        for i in 0..1000u64 {
            let customer = format!("cust-{i}");
            t.add_contact(&customer, 5, i + 1).unwrap();
            t.fire("r", &customer, i + 1, 5).unwrap();
        }
        assert_eq!(t.contacts_within("cust-7", 0, 9, 9).unwrap(), 1);
        assert_eq!(t.last_fired("r", "cust-7", 9).unwrap(), Some(5));
        let stored = store.scan(&[], usize::MAX).unwrap().len();
        assert!(stored < 2000 / 16, "{stored} stored keys for 2,000 entries");
        // The table's own entries stay plain: read alike in every layout.
        assert_eq!(store.get_u64(&meta("layout")).unwrap(), Some(LAYOUT));
    }
}
