//! The policy board on disk: its indexes as keys in a table of the store
//! ([`super::board_keys`]), packed a few dozen to a stored entry
//! ([`PackedTable`]: a key per entry made sled's memory grow with every
//! case), written one batch per commit together with the log position
//! they reached; each case's facts folded from the case's stream when
//! asked for, the most recently used kept in a bounded cache.
//!
//! Why: kept in memory, the board grew by several KB per case for as long
//! as the server ran, and every start folded the whole log to rebuild it.
//! On disk, memory is the cache plus a constant, and a start only folds
//! what was committed after the position the table reached — a crash
//! leaves the table at the end of some batch (a batch is atomic), never
//! between, so catching up from its position gives exactly what folding
//! the whole log gives (tested by `tests/suite/read_models.rs`).
//!
//! One fold runs at a time (the projection host's commits, a catch-up, a
//! rebuild's swap); queries read concurrently. A case's facts are cached
//! only as of a position the table has reached, so a query never caches
//! facts the indexes do not show yet, nor older ones than the host has.

use super::board::{Board, ContactKey, PromiseKey};
use super::board_keys::{self as keys, entries, Entries};
use super::board_source::{BoardSource, JudgementKey};
use super::fact::OwnedFact;
use crate::proto::v1::QueueKind;
use crate::recent::Recent;
use crate::store::side_table::{Change, Entry};
use crate::store::{EventLog, PackedTable, SideTable, StoreError, TablePosition};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use time::Date;

/// The layout of the table; a table of another layout is refolded.
/// Layout 2 packs the index entries ([`PackedTable`]); layout 1 stored a
/// key per entry.
const LAYOUT: u64 = 2;

/// The store's own entries stay plain, so every layout reads them alike.
fn is_meta(k: &[u8]) -> bool {
    k.first() == Some(&keys::META)
}

fn meta(name: &str) -> Vec<u8> {
    keys::key(keys::META, &[], &[name])
}

struct Cached {
    facts: Recent<Arc<Board>>,
    /// The position the table reached when `facts` last changed.
    through: u64,
}

pub struct BoardStore {
    table: PackedTable<Box<dyn SideTable>>,
    log: Arc<dyn EventLog>,
    escalate_within: i128,
    cached: Mutex<Cached>,
    /// One fold at a time.
    folding: Mutex<()>,
    position: TablePosition,
    cases: AtomicU64,
    warnings: AtomicU64,
    /// Cases' facts folded from their streams (cache misses).
    loads: AtomicU64,
}

/// What a fold of one commit changes in the counts.
#[derive(Default)]
struct Counts {
    cases: i64,
    warnings: i64,
}

impl BoardStore {
    /// The board kept in `table`, over `log`, judging warnings with
    /// `escalate_within` (nanoseconds), keeping at most `cache` cases'
    /// facts. A table of another layout or another `escalate_within`, or
    /// one past the log's head, is emptied to be folded again (see
    /// [`Self::catch_up`]); why is logged.
    pub fn open(
        table: Box<dyn SideTable>,
        log: Arc<dyn EventLog>,
        escalate_within: i128,
        cache: usize,
    ) -> Result<Self, StoreError> {
        let layout = table.get_u64(&meta("layout"))?.unwrap_or(0);
        let within = table.get(&meta("escalate-within"))?;
        let position = table.get_u64(&meta("position"))?.unwrap_or(0);
        let head = log.head()?;
        let refold = if table.is_empty()? {
            None
        } else if layout != LAYOUT {
            Some(format!("its layout is {layout}, this server's {LAYOUT}"))
        } else if within.as_deref() != Some(&keys::num(escalate_within)[..]) {
            Some("the time to escalate a warning changed".to_string())
        } else if position > head {
            Some(format!(
                "it reached position {position}, past the log's head {head}"
            ))
        } else {
            None
        };
        if let Some(why) = &refold {
            tracing::warn!(reason = %why, "the policy board on disk is folded again from the log");
            table.clear()?;
        }
        let store = Self {
            table: PackedTable::new(table, is_meta),
            escalate_within,
            cached: Mutex::new(Cached {
                facts: Recent::new(cache),
                through: 0,
            }),
            folding: Mutex::new(()),
            position: TablePosition::default(),
            cases: AtomicU64::new(0),
            warnings: AtomicU64::new(0),
            loads: AtomicU64::new(0),
            log,
        };
        if refold.is_none() {
            store.position.written(position);
            store.cached.lock().expect("board cache").through = position;
            let count = |name| Ok::<_, StoreError>(store.table.get_u64(&meta(name))?.unwrap_or(0));
            store.cases.store(count("cases")?, Ordering::Relaxed);
            store.warnings.store(count("warnings")?, Ordering::Relaxed);
        }
        Ok(store)
    }

    /// The last log position folded.
    pub fn position(&self) -> u64 {
        self.position.reached()
    }

    /// Cases the board knows.
    pub fn cases(&self) -> u64 {
        self.cases.load(Ordering::Relaxed)
    }

    /// Cases' facts held in memory, and folded from the log so far.
    pub fn cache_stats(&self) -> (u64, u64) {
        let held = self.cached.lock().expect("board cache").facts.len() as u64;
        (held, self.loads.load(Ordering::Relaxed))
    }

    /// Folds the log from the position reached through `to`, calling
    /// `progress(done)` after each chunk.
    pub fn catch_up(&self, to: u64, mut progress: impl FnMut(u64)) -> Result<u64, StoreError> {
        let mut done = 0;
        let log = self.log.as_ref();
        super::case_stream::for_each_chunk(
            log,
            self.position() + 1,
            to,
            "the board",
            |facts, last| {
                self.fold(facts, last).map_err(StoreError::Corrupt)?;
                done += facts.len() as u64;
                progress(done);
                Ok(())
            },
        )
    }

    /// Folds one durable commit's facts, stored through `head`: the
    /// entries of the cases they touch change in one batch with the
    /// position. An error (a case's stream cannot be read back, the table
    /// cannot be written) leaves the table as it was.
    pub fn fold(&self, facts: &[OwnedFact], head: u64) -> Result<(), String> {
        let _one = self.folding.lock().expect("board fold");
        let mut touched: Vec<(String, Arc<Board>, Entries)> = Vec::new();
        let mut at: HashMap<&str, usize> = HashMap::new();
        for f in facts {
            // What the board does not fold needs no case read.
            if !f.event.kind.as_ref().is_some_and(Board::folds) {
                continue;
            }
            let i = match at.get(f.case_id.as_str()) {
                Some(i) => *i,
                None => {
                    let board = self.facts_before(&f.case_id, f.position)?;
                    let before = entries(&board, self.escalate_within);
                    touched.push((f.case_id.clone(), board, before));
                    at.insert(&f.case_id, touched.len() - 1);
                    touched.len() - 1
                }
            };
            let board = Arc::make_mut(&mut touched[i].1);
            let mut history = super::case_stream::history(self.log.as_ref());
            board
                .apply(&f.fact(), &mut history)
                .map_err(|e| format!("case {}: {e}", f.case_id))?;
        }
        let mut changes: Vec<Change> = Vec::new();
        let mut counts = Counts::default();
        for (_, board, before) in &touched {
            diff(
                before,
                &entries(board, self.escalate_within),
                &mut changes,
                &mut counts,
            );
        }
        // The commit changed no entry: its position alone waits.
        if changes.is_empty() && self.position.skip_to(head) {
            self.reached(touched, head);
            return Ok(());
        }
        let cases = self.cases().saturating_add_signed(counts.cases);
        let warnings = self
            .warnings
            .load(Ordering::Relaxed)
            .saturating_add_signed(counts.warnings);
        for (name, value) in [
            ("layout", LAYOUT.to_be_bytes().to_vec()),
            ("escalate-within", keys::num(self.escalate_within).to_vec()),
            ("position", head.to_be_bytes().to_vec()),
            ("cases", cases.to_be_bytes().to_vec()),
            ("warnings", warnings.to_be_bytes().to_vec()),
        ] {
            changes.push((meta(name), Some(value)));
        }
        self.table
            .apply(&changes)
            .map_err(|e| format!("the board's table cannot be written: {e}"))?;
        self.position.written(head);
        self.cases.store(cases, Ordering::Relaxed);
        self.warnings.store(warnings, Ordering::Relaxed);
        self.reached(touched, head);
        Ok(())
    }

    /// Keeps the folded cases' facts, as of `head`, but closed cases':
    /// most cases end closed and few take anything after, so keeping the
    /// last few thousand closed would fill the cache with cases nobody
    /// asks for. A query or commit naming a closed case folds it again
    /// (a query then keeps it, see [`BoardSource::case`]).
    fn reached(&self, touched: Vec<(String, Arc<Board>, Entries)>, head: u64) {
        let mut cached = self.cached.lock().expect("board cache");
        for (case_id, board, _) in touched {
            if !board
                .cases
                .get(case_id.as_str())
                .is_some_and(|c| c.is_closed())
            {
                cached.facts.insert(case_id, board);
            }
        }
        cached.through = head;
        cached.facts.trim();
    }

    /// The facts of `case_id` folded from its events stored before
    /// `before`: taken out of the cache when it holds them (the host folds
    /// in order, so what it cached is exactly that; taken, so the fold
    /// changes them in place instead of copying them), else from the
    /// stream. A query that misses meanwhile folds the same facts, and the
    /// fold puts its own back over them.
    fn facts_before(&self, case_id: &str, before: u64) -> Result<Arc<Board>, String> {
        if let Some(b) = self.cached.lock().expect("board cache").facts.take(case_id) {
            return Ok(b);
        }
        self.fold_stream(case_id, before).map(Arc::new)
    }

    fn fold_stream(&self, case_id: &str, before: u64) -> Result<Board, String> {
        self.loads.fetch_add(1, Ordering::Relaxed);
        let earlier = super::case_stream::facts_before(self.log.as_ref(), case_id, before)
            .map_err(|e| format!("case {case_id} cannot be read back: {e}"))?;
        let mut board = Board::default();
        for (i, f) in earlier.iter().enumerate() {
            let folded = &earlier[..i];
            board.apply(&f.fact(), &mut |_, _| Ok(folded.to_vec()))?;
        }
        Ok(board)
    }

    /// Entries of one table from `from` on, while their key starts with
    /// `tag`, at most `n`.
    fn scan(&self, tag: u8, from: &[u8], n: usize) -> Result<Vec<Entry>, String> {
        let mut out = Vec::new();
        let mut from = from.to_vec();
        while out.len() < n {
            let page = self
                .table
                .scan(&from, (n - out.len()).min(1024))
                .map_err(|e| format!("the board's table cannot be read: {e}"))?;
            let full = page.len() == (n - out.len()).min(1024);
            for (k, v) in page {
                if k.first() != Some(&tag) {
                    return Ok(out);
                }
                from.clone_from(&k);
                out.push((k, v));
            }
            if !full {
                break;
            }
            from.push(0);
        }
        Ok(out)
    }

    /// Keys after `after` (or from the table's start) in table `tag`.
    fn keys_after(&self, tag: u8, after: Option<Vec<u8>>, n: usize) -> Result<Vec<Entry>, String> {
        let from = match after {
            Some(mut k) => {
                k.push(0);
                k
            }
            None => vec![tag],
        };
        self.scan(tag, &from, n)
    }

    /// Every entry of the board, position and counts aside, in memory:
    /// for tests and small stores (a rebuild compares [`Self::digest`]s).
    pub fn entries(&self) -> Result<Entries, String> {
        let mut out = Entries::new();
        self.table
            .for_each(&mut |k, v| {
                if k.first() != Some(&keys::META) {
                    out.insert(k.to_vec(), v.to_vec());
                }
                Ok(())
            })
            .map_err(|e| format!("the board's table cannot be read: {e}"))?;
        Ok(out)
    }

    /// SHA-256 of every entry, position and counts aside, read a page at
    /// a time: equal boards, equal digests ([`digest`] of
    /// [`board_keys::entries`](keys::entries) of a board folded in memory).
    pub fn digest(&self) -> Result<String, String> {
        let mut h = Digester::default();
        self.table
            .for_each(&mut |k, v| {
                if k.first() != Some(&keys::META) {
                    h.add(k, v);
                }
                Ok(())
            })
            .map_err(|e| format!("the board's table cannot be read: {e}"))?;
        Ok(h.finish())
    }

    /// Compares this board with `fresh`, a board folded afresh from the
    /// log in another table, once `fresh` has caught up with it (no fold
    /// of this one runs meanwhile); takes `fresh`'s entries when they
    /// differ. Returns (this board's digest, the fresh one's, the
    /// position both reached).
    pub fn compare_with_fresh(&self, fresh: &BoardStore) -> Result<(String, String, u64), String> {
        let _one = self.folding.lock().expect("board fold");
        let at = self.position();
        fresh.catch_up(at, |_| {}).map_err(|e| e.to_string())?;
        let (mine, theirs) = (self.digest()?, fresh.digest()?);
        if mine != theirs {
            self.take_entries_of(fresh)
                .map_err(|e| format!("the board's table cannot be replaced: {e}"))?;
        }
        Ok((mine, theirs, at))
    }

    /// Replaces every entry with `other`'s. The position and counts go
    /// last: a crash before them leaves a table without them, which the
    /// next start empties and folds again.
    fn take_entries_of(&self, other: &BoardStore) -> Result<(), StoreError> {
        self.table.inner().clear()?;
        let mut metas = Vec::new();
        let mut page: Vec<Change> = Vec::new();
        let mut copy = |k: &[u8], v: &[u8]| -> Result<(), StoreError> {
            if k.first() == Some(&keys::META) {
                metas.push((k.to_vec(), Some(v.to_vec())));
                return Ok(());
            }
            page.push((k.to_vec(), Some(v.to_vec())));
            if page.len() == 4096 {
                self.table.apply(&std::mem::take(&mut page))?;
            }
            Ok(())
        };
        other.table.for_each(&mut |k, v| copy(k, v))?;
        self.table.apply(&page)?;
        self.table.apply(&metas)?;
        self.cases.store(other.cases(), Ordering::Relaxed);
        self.warnings
            .store(other.warnings.load(Ordering::Relaxed), Ordering::Relaxed);
        let position = other.position();
        let mut cached = self.cached.lock().expect("board cache");
        cached.facts.clear();
        cached.through = position;
        self.position.set(position, other.position.stored());
        Ok(())
    }
}

#[derive(Default)]
struct Digester(sha2::Sha256);

impl Digester {
    fn add(&mut self, k: &[u8], v: &[u8]) {
        use sha2::Digest;
        self.0.update((k.len() as u64).to_be_bytes());
        self.0.update(k);
        self.0.update((v.len() as u64).to_be_bytes());
        self.0.update(v);
    }

    fn finish(self) -> String {
        use sha2::Digest;
        hex::encode(self.0.finalize())
    }
}

/// SHA-256 of entries in key order, as [`BoardStore::digest`] gives it.
pub fn digest(entries: &Entries) -> String {
    let mut h = Digester::default();
    for (k, v) in entries {
        h.add(k, v);
    }
    h.finish()
}

/// The changes from `had` to `wanted`, counting cases and warnings.
fn diff(had: &Entries, wanted: &Entries, changes: &mut Vec<Change>, counts: &mut Counts) {
    let mut count = |k: &[u8], by: i64| match k.first() {
        Some(&keys::CASE) => counts.cases += by,
        Some(&keys::WARNING) => counts.warnings += by,
        _ => {}
    };
    for k in had.keys() {
        if !wanted.contains_key(k) {
            changes.push((k.clone(), None));
            count(k, -1);
        }
    }
    for (k, v) in wanted {
        match had.get(k) {
            Some(old) if old == v => {}
            Some(_) => changes.push((k.clone(), Some(v.clone()))),
            None => {
                changes.push((k.clone(), Some(v.clone())));
                count(k, 1);
            }
        }
    }
}

fn corrupt(what: &str, k: &[u8]) -> String {
    format!(
        "the board's table holds a malformed {what} key {}",
        hex::encode(k)
    )
}

impl BoardSource for BoardStore {
    type Case<'a> = Arc<Board>;

    fn case(&self, case_id: &str) -> Result<Option<Arc<Board>>, String> {
        let through = {
            let cached = self.cached.lock().expect("board cache");
            if let Some(b) = cached.facts.get(case_id) {
                return Ok(b.cases.contains_key(case_id).then(|| Arc::clone(b)));
            }
            cached.through
        };
        let board = Arc::new(self.fold_stream(case_id, through + 1)?);
        if !board.cases.contains_key(case_id) {
            return Ok(None);
        }
        let mut cached = self.cached.lock().expect("board cache");
        // Cached only if no fold moved the board meanwhile: the host's
        // next fold of this case starts from what is cached.
        if cached.through == through && !cached.facts.contains_key(case_id) {
            cached.facts.insert(case_id.to_string(), Arc::clone(&board));
            cached.facts.trim();
        }
        Ok(Some(board))
    }

    fn promise_keys(
        &self,
        after: Option<&PromiseKey>,
        n: usize,
    ) -> Result<Vec<PromiseKey>, String> {
        self.keys_after(keys::PROMISE_DUE, after.map(keys::promise_key), n)?
            .into_iter()
            .map(|(k, _)| keys::un_promise_key(&k).ok_or_else(|| corrupt("promise", &k)))
            .collect()
    }

    fn provisional_keys(&self) -> Result<Vec<(Arc<str>, String)>, String> {
        self.keys_after(keys::PROVISIONAL, None, usize::MAX)?
            .into_iter()
            .map(|(k, _)| {
                keys::un_pair(&k)
                    .map(|(c, e)| (Arc::from(c), e))
                    .ok_or_else(|| corrupt("provisional promise", &k))
            })
            .collect()
    }

    fn waiting_keys(
        &self,
        kind: QueueKind,
        after: Option<&ContactKey>,
        n: usize,
    ) -> Result<Vec<ContactKey>, String> {
        let tag = match kind {
            QueueKind::Survey => keys::AWAITING_SURVEY,
            QueueKind::Callback => keys::AWAITING_CALLBACK,
            QueueKind::Unspecified => return Ok(Vec::new()),
        };
        self.keys_after(tag, after.map(|a| keys::contact_key(tag, a)), n)?
            .into_iter()
            .map(|(k, _)| keys::un_contact_key(&k).ok_or_else(|| corrupt("queue", &k)))
            .collect()
    }

    fn week_contacts(&self, monday: Date) -> Result<Vec<(Arc<str>, String)>, String> {
        let mut out = Vec::new();
        for (k, _) in self.scan(keys::WEEK, &keys::week_start(monday), usize::MAX)? {
            let (week, case, contact) = keys::un_week_key(&k).ok_or_else(|| corrupt("week", &k))?;
            if week != monday {
                break;
            }
            out.push((Arc::from(case), contact));
        }
        Ok(out)
    }

    fn warning_keys(&self, from: u64, n: usize) -> Result<Vec<(u64, Arc<str>)>, String> {
        self.scan(keys::WARNING, &keys::warning_key(from), n)?
            .into_iter()
            .map(|(k, v)| {
                let p = keys::un_warning_key(&k).ok_or_else(|| corrupt("warning", &k))?;
                let case = std::str::from_utf8(&v).map_err(|_| corrupt("warning", &k))?;
                Ok((p, Arc::from(case)))
            })
            .collect()
    }

    fn customer_cases(&self, customer_id: &str) -> Result<Vec<Arc<str>>, String> {
        let from = keys::key(keys::CUSTOMER, &[], &[customer_id, ""]);
        let mut out = Vec::new();
        for (k, _) in self.scan(keys::CUSTOMER, &from, usize::MAX)? {
            let (customer, case) = keys::un_pair(&k).ok_or_else(|| corrupt("customer", &k))?;
            if customer != customer_id {
                break;
            }
            out.push(Arc::from(case));
        }
        Ok(out)
    }

    fn judgement_keys(&self, agent_id: &str) -> Result<Vec<JudgementKey>, String> {
        let from = keys::key(keys::JUDGEMENT, &[], &[agent_id, ""]);
        let mut out = Vec::new();
        for (k, _) in self.scan(keys::JUDGEMENT, &from, usize::MAX)? {
            let j = keys::un_judgement_key(&k).ok_or_else(|| corrupt("judgement", &k))?;
            if j.0 != agent_id {
                break;
            }
            out.push(j);
        }
        Ok(out)
    }

    fn pending_judgement_keys(&self) -> Result<Vec<JudgementKey>, String> {
        self.keys_after(keys::JUDGEMENT_PENDING, None, usize::MAX)?
            .into_iter()
            .map(|(k, _)| keys::un_judgement_key(&k).ok_or_else(|| corrupt("judgement", &k)))
            .collect()
    }

    fn warnings_raised(&self) -> Result<u64, String> {
        Ok(self.warnings.load(Ordering::Relaxed))
    }

    /// A range of the unanswered warnings' index, up to `now`: one key
    /// per warning overdue.
    fn warnings_overdue(&self, now: i128, escalate_within: i128) -> Result<u64, String> {
        if escalate_within != self.escalate_within {
            return Err(format!(
                "the board judges warnings with {} ns to escalate, not {escalate_within}",
                self.escalate_within
            ));
        }
        let mut count = 0u64;
        let mut from = vec![keys::WARNING_UNANSWERED];
        let end = keys::key(keys::WARNING_UNANSWERED, &keys::num(now), &[]);
        loop {
            let page = self.scan(keys::WARNING_UNANSWERED, &from, 4096)?;
            let n = page.len();
            for (k, _) in &page {
                if *k >= end {
                    return Ok(count);
                }
                count += 1;
            }
            match page.last() {
                Some((k, _)) if n == 4096 => {
                    from.clone_from(k);
                    from.push(0);
                }
                _ => return Ok(count),
            }
        }
    }
}
