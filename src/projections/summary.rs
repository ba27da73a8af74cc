//! The case list: one summary per case, filterable by status, customer,
//! agent and open promises, kept in a table of the store
//! (`case-summaries`). The projection host writes the rows of each
//! commit's cases, from the same states the rules decided on, after the
//! commit is durable and before it is answered (read-your-writes for
//! `ListCases`), together with the log position they reached; a row is
//! written only when it changed (the case's version and last recorded
//! time, which change with every event, come from the log instead). A
//! start catches the rows up from that position: a crash can leave them
//! behind the log, never ahead, and the cases of the records since are
//! folded from their streams again.
//!
//! Why on disk: kept in memory, the list grew with every case that ever
//! existed, and every start folded the whole log to rebuild it. Why
//! packed ([`PackedTable`], a few dozen rows to a stored key): sled keeps
//! memory for every page it ever wrote, so a key per case made the
//! server's memory grow with every closed case for as long as it ran.

use crate::domain::{CaseState, CaseStatus};
use crate::proto::v1 as pb;
use crate::store::side_table::Change;
use crate::store::{EventLog, MemoryTable, PackedTable, SideTable, StoreError, TablePosition};
use prost::Message;
use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};

/// One case in the list.
#[derive(Debug, Clone, PartialEq)]
pub struct SummaryEntry {
    pub summary: pb::CaseSummary,
    pub agents: HashSet<String>,
}

/// A row as stored: the summary and the agents, sorted.
#[derive(Clone, PartialEq, prost::Message)]
struct Row {
    #[prost(message, optional, tag = "1")]
    summary: Option<pb::CaseSummary>,
    #[prost(string, repeated, tag = "2")]
    agents: Vec<String>,
}

impl Row {
    /// The row stored of an entry: without the case's version and the time
    /// its last event was recorded, which change with every event (the log
    /// gives them, see `Ledger::list_cases`); so a commit that changes
    /// nothing else of a case writes nothing here.
    fn of(e: &SummaryEntry) -> Self {
        let mut agents: Vec<String> = e.agents.iter().cloned().collect();
        agents.sort();
        Row {
            summary: Some(pb::CaseSummary {
                version: 0,
                last_recorded_at: None,
                ..e.summary.clone()
            }),
            agents,
        }
    }

    fn entry(self) -> SummaryEntry {
        SummaryEntry {
            summary: self.summary.unwrap_or_default(),
            agents: self.agents.into_iter().collect(),
        }
    }
}

const ROW: u8 = b'c';
const META: u8 = b'm';

/// The layout of the table; a table of another layout is emptied and
/// folded again from the log. 2: rows packed; 1 (no layout entry): a key
/// per row.
const LAYOUT: u64 = 2;

/// The table's own entries (layout, counts, position) stay plain, so
/// every layout reads them alike.
fn is_meta(k: &[u8]) -> bool {
    k.first() == Some(&META)
}

fn row_key(case_id: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(1 + case_id.len());
    k.push(ROW);
    k.extend_from_slice(case_id.as_bytes());
    k
}

fn meta(name: &str) -> Vec<u8> {
    let mut k = vec![META];
    k.extend_from_slice(name.as_bytes());
    k
}

/// Rows a `ListCases` page examines at most: one whose filter matches few
/// cases ends early with a token, as the policy listings' pages do.
pub const LIST_BUDGET: usize = 4096;

/// Every case summary, in case-id order, in a table of the store.
pub struct CaseIndex {
    table: PackedTable<Box<dyn SideTable>>,
    cases: AtomicU64,
    /// How many rows are of closed cases (`Ops.GetStats`).
    closed: AtomicU64,
    position: TablePosition,
}

impl Default for CaseIndex {
    /// An index in memory (offline rebuilds, tests).
    fn default() -> Self {
        Self::open(Box::new(MemoryTable::default())).expect("a table in memory reads")
    }
}

fn corrupt(case_id: &str, e: prost::DecodeError) -> StoreError {
    StoreError::Corrupt(format!(
        "the summary of case {case_id} does not decode: {e}"
    ))
}

/// Filter of `ListCases`.
#[derive(Debug, Clone, Default)]
pub struct CaseFilter {
    pub status: Option<pb::CaseStatus>,
    pub customer_id: Option<String>,
    pub agent_id: Option<String>,
    pub only_with_open_promises: bool,
    /// Only closed cases whose standing resolution the customer did not
    /// accept, or that have none.
    pub only_closed_without_acceptance: bool,
    /// Only cases of this business line (a scoped caller's own).
    pub business_line: Option<String>,
}

pub fn status_of(s: CaseStatus) -> pb::CaseStatus {
    match s {
        CaseStatus::Open => pb::CaseStatus::Open,
        CaseStatus::Resolved => pb::CaseStatus::Resolved,
        CaseStatus::Closed => pb::CaseStatus::Closed,
    }
}

/// The summary row of a case state.
pub fn summarize(case_id: &str, s: &CaseState) -> SummaryEntry {
    SummaryEntry {
        summary: pb::CaseSummary {
            case_id: case_id.to_string(),
            version: s.version,
            status: status_of(s.status) as i32,
            customer_id: s.customer_id.clone(),
            business_line: s.business_line.clone(),
            contacts: s.contacts.len() as u32,
            open_promises: s.open_promises() as u32,
            escalation_level: s.escalation_level as i32,
            last_recorded_at: Some(crate::time::nanos_ts(s.last_recorded_at)),
            acceptance: match s.resolution_accepted {
                None => pb::Acceptance::Unspecified,
                Some(true) => pb::Acceptance::Accepted,
                Some(false) => pb::Acceptance::NotAccepted,
            } as i32,
        },
        agents: s.agents.keys().cloned().collect(),
    }
}

impl CaseIndex {
    /// The index kept in `table`. A table of another layout is emptied
    /// (why is logged): its position is then 0, and [`Self::catch_up`]
    /// folds every case again.
    pub fn open(table: Box<dyn SideTable>) -> Result<Self, StoreError> {
        let layout = table.get_u64(&meta("layout"))?;
        if layout != Some(LAYOUT) {
            if !table.is_empty()? {
                tracing::warn!(
                    layout = layout.unwrap_or(1),
                    "the case list on disk has another layout: it is folded again from the log"
                );
                table.clear()?;
            }
            table.insert(&meta("layout"), &LAYOUT.to_be_bytes())?;
        }
        let count = |name| Ok::<_, StoreError>(table.get_u64(&meta(name))?.unwrap_or(0));
        let index = Self {
            cases: AtomicU64::new(count("cases")?),
            closed: AtomicU64::new(count("closed")?),
            position: TablePosition::new(count("position")?),
            table: PackedTable::new(table, is_meta),
        };
        Ok(index)
    }

    /// The log position the rows reached.
    pub fn position(&self) -> u64 {
        self.position.reached()
    }

    /// Writes the rows of a commit stored through `position` that changed,
    /// in one batch with the position and the counts; a commit that changes
    /// no row writes only every
    /// [`POSITION_SLACK`](crate::store::side_table::POSITION_SLACK)
    /// positions.
    pub fn write(&self, rows: &[SummaryEntry], position: u64) -> Result<(), StoreError> {
        let closed_row = |s: &pb::CaseSummary| s.status == pb::CaseStatus::Closed as i32;
        // A case twice in one batch: its last row stands.
        let mut seen = HashSet::new();
        let latest: Vec<&SummaryEntry> = rows
            .iter()
            .rev()
            .filter(|e| seen.insert(e.summary.case_id.as_str()))
            .collect();
        let keys: Vec<Vec<u8>> = latest.iter().map(|e| row_key(&e.summary.case_id)).collect();
        let (mut cases, mut closed) = (self.len() as i64, self.closed() as i64);
        let mut wrote = false;
        // Each row's group is read once: for the row it holds and to write.
        self.table.update(&keys, |olds| {
            let mut changes: Vec<Change> = Vec::with_capacity(latest.len() + 3);
            for ((e, key), old) in latest.iter().zip(&keys).zip(olds) {
                let row = Row::of(e).encode_to_vec();
                if old.as_deref() == Some(&row[..]) {
                    continue;
                }
                match old {
                    None => cases += 1,
                    Some(old) => {
                        let old = Row::decode(old.as_slice())
                            .map_err(|err| corrupt(&e.summary.case_id, err))?;
                        closed -= i64::from(closed_row(&old.summary.unwrap_or_default()));
                    }
                }
                closed += i64::from(closed_row(&e.summary));
                changes.push((key.clone(), Some(row)));
            }
            if changes.is_empty() && self.position.skip_to(position) {
                return Ok(changes);
            }
            let (cases, closed) = (cases.max(0) as u64, closed.max(0) as u64);
            for (name, v) in [("cases", cases), ("closed", closed), ("position", position)] {
                changes.push((meta(name), Some(v.to_be_bytes().to_vec())));
            }
            wrote = true;
            Ok(changes)
        })?;
        if wrote {
            self.cases.store(cases.max(0) as u64, Ordering::Relaxed);
            self.closed.store(closed.max(0) as u64, Ordering::Relaxed);
            self.position.written(position);
        }
        Ok(())
    }

    /// Folds the rows of every case with a record after the position
    /// reached, through `head`, from the cases' streams.
    pub fn catch_up(&self, log: &dyn EventLog, head: u64) -> Result<u64, StoreError> {
        let from = self.position() + 1;
        if from > head {
            return Ok(0);
        }
        let mut touched = std::collections::BTreeSet::new();
        super::case_stream::for_each_chunk(log, from, head, "the case list", |facts, _| {
            touched.extend(facts.iter().map(|f| f.case_id.clone()));
            Ok(())
        })?;
        let mut rows = Vec::with_capacity(touched.len());
        for case_id in &touched {
            let mut state = CaseState::default();
            super::case_stream::for_each_stored(log, case_id, head + 1, |rec, event, bytes| {
                state.apply_record(rec, event, crate::audit::record_hash(bytes))
            })?;
            rows.push(summarize(case_id, &state));
        }
        self.write(&rows, head)?;
        Ok(touched.len() as u64)
    }

    /// A case's row.
    pub fn get(&self, case_id: &str) -> Result<Option<SummaryEntry>, StoreError> {
        match self.table.get(&row_key(case_id))? {
            None => Ok(None),
            Some(v) => Row::decode(v.as_slice())
                .map(|r| Some(r.entry()))
                .map_err(|e| corrupt(case_id, e)),
        }
    }

    /// SHA-256 of every row in case-id order (agents sorted): equal
    /// indexes, equal digests.
    pub fn digest(&self) -> Result<String, StoreError> {
        use sha2::{Digest, Sha256};
        let mut h = Sha256::new();
        self.table.for_each(&mut |k, v| {
            if k.first() == Some(&ROW) {
                let id = String::from_utf8_lossy(&k[1..]).to_string();
                let row = Row::decode(v).map_err(|e| corrupt(&id, e))?;
                h.update(
                    format!(
                        "{id}\n{:?}\n{:?}\n",
                        row.summary.unwrap_or_default(),
                        row.agents
                    )
                    .as_bytes(),
                );
            }
            Ok(())
        })?;
        Ok(hex::encode(h.finalize()))
    }

    /// How many cases are closed.
    pub fn closed(&self) -> u64 {
        self.closed.load(Ordering::Relaxed)
    }

    /// A case's customer.
    pub fn customer_id(&self, case_id: &str) -> Result<Option<String>, StoreError> {
        Ok(self.get(case_id)?.map(|e| e.summary.customer_id))
    }

    /// A case's business line.
    pub fn business_line(&self, case_id: &str) -> Result<Option<String>, StoreError> {
        Ok(self.get(case_id)?.map(|e| e.summary.business_line))
    }

    pub fn contains(&self, case_id: &str) -> Result<bool, StoreError> {
        Ok(self.table.get(&row_key(case_id))?.is_some())
    }

    pub fn len(&self) -> usize {
        self.cases.load(Ordering::Relaxed) as usize
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Up to `limit` matching summaries with case id after `after` (their
    /// version and last recorded time not filled in: the rows do not keep
    /// them), and
    /// the case id the next page goes on after, if any: the last one
    /// listed when more match, or the last one examined when the page ran
    /// out of its [`LIST_BUDGET`] first (a short page with a token means
    /// "ask again", not "that is all").
    pub fn list(
        &self,
        filter: &CaseFilter,
        after: &str,
        limit: usize,
    ) -> Result<(Vec<pb::CaseSummary>, Option<String>), StoreError> {
        let mut from = if after.is_empty() {
            vec![ROW]
        } else {
            let mut k = row_key(after);
            k.push(0);
            k
        };
        let mut out = Vec::new();
        let mut examined = 0;
        let mut last_seen: Option<String> = None;
        loop {
            let page = self.table.scan(&from, 256)?;
            let full = page.len() == 256;
            for (k, v) in page {
                if k.first() != Some(&ROW) {
                    return Ok((out, None));
                }
                let id = String::from_utf8_lossy(&k[1..]).to_string();
                if examined == LIST_BUDGET {
                    return Ok((out, last_seen));
                }
                examined += 1;
                let e = Row::decode(v.as_slice())
                    .map_err(|e| corrupt(&id, e))?
                    .entry();
                if filter.keeps(&e) {
                    if out.len() == limit {
                        return Ok((out, last_seen));
                    }
                    out.push(e.summary);
                }
                last_seen = Some(id);
                from = k;
            }
            if !full {
                return Ok((out, None));
            }
            from.push(0);
        }
    }
}

impl CaseFilter {
    /// Whether a row matches.
    fn keeps(&self, e: &SummaryEntry) -> bool {
        let s = &e.summary;
        self.status.is_none_or(|st| s.status == st as i32)
            && self
                .customer_id
                .as_ref()
                .is_none_or(|c| &s.customer_id == c)
            && self.agent_id.as_ref().is_none_or(|a| e.agents.contains(a))
            && (!self.only_with_open_promises || s.open_promises > 0)
            && (!self.only_closed_without_acceptance
                || (s.status == pb::CaseStatus::Closed as i32
                    && s.acceptance != pb::Acceptance::Accepted as i32))
            && self
                .business_line
                .as_ref()
                .is_none_or(|b| &s.business_line == b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(id: &str, customer: &str, closed: bool) -> SummaryEntry {
        SummaryEntry {
            summary: pb::CaseSummary {
                case_id: id.into(),
                customer_id: customer.into(),
                version: 1,
                status: if closed {
                    pb::CaseStatus::Closed
                } else {
                    pb::CaseStatus::Open
                } as i32,
                ..Default::default()
            },
            agents: HashSet::new(),
        }
    }

    /// Rows are counted as they are written and rewritten; a filter that
    /// matches only the last of many rows ends a page at the budget with a
    /// token, and the next page finds it.
    #[test]
    fn rows_are_counted_and_a_page_ends_at_the_budget_with_a_token() {
        let store = std::sync::Arc::new(MemoryTable::default());
        let index = CaseIndex::open(Box::new(store.clone())).unwrap();
        let n = LIST_BUDGET + 10;
        let rows: Vec<_> = (0..n)
            .map(|i| {
                row(
                    &format!("c{i:05}"),
                    if i == n - 1 { "rare" } else { "u" },
                    false,
                )
            })
            .collect();
        index.write(&rows, 7).unwrap();
        index.write(&[row("c00000", "u", true)], 8).unwrap();
        assert_eq!((index.len(), index.closed(), index.position()), (n, 1, 8));

        let filter = CaseFilter {
            customer_id: Some("rare".into()),
            ..Default::default()
        };
        let (first, next) = index.list(&filter, "", 10).unwrap();
        assert!(first.is_empty());
        let next = next.expect("a token: the budget ran out");
        let (second, last) = index.list(&filter, &next, 10).unwrap();
        assert_eq!(second.len(), 1);
        assert_eq!(second[0].case_id, format!("c{:05}", n - 1));
        assert_eq!(last, None);

        // A full page with more matching goes on after its last row.
        let (page, next) = index.list(&CaseFilter::default(), "", 3).unwrap();
        assert_eq!(page.len(), 3);
        assert_eq!(next.as_deref(), Some("c00002"));
        let reopened = CaseIndex::open(Box::new(store.clone())).unwrap();
        assert_eq!(
            (reopened.len(), reopened.closed(), reopened.position()),
            (n, 1, 8)
        );
        assert_eq!(reopened.digest().unwrap(), index.digest().unwrap());
        // Packed: a few dozen rows to a stored key.
        let stored = store.scan(&[], usize::MAX).unwrap().len();
        assert!(stored < n / 16, "{stored} stored keys for {n} rows");
    }

    /// A table of the layout before packing (a key per row, no layout
    /// entry) is emptied at open; its position is then 0, so the case
    /// list is folded again from the log, and a new row reads back.
    #[test]
    fn a_key_per_row_table_is_emptied_to_be_folded_again() {
        let store = std::sync::Arc::new(MemoryTable::default());
        let old = Row::of(&row("c1", "u", true)).encode_to_vec();
        store
            .apply(&[
                (row_key("c1"), Some(old)),
                (meta("cases"), Some(1u64.to_be_bytes().to_vec())),
                (meta("closed"), Some(1u64.to_be_bytes().to_vec())),
                (meta("position"), Some(5u64.to_be_bytes().to_vec())),
            ])
            .unwrap();
        let index = CaseIndex::open(Box::new(store.clone())).unwrap();
        assert_eq!((index.len(), index.closed(), index.position()), (0, 0, 0));
        assert!(index.get("c1").unwrap().is_none());
        assert!(store.get(&row_key("c1")).unwrap().is_none());
        index.write(&[row("c1", "u", true)], 5).unwrap();
        assert_eq!(
            index.get("c1").unwrap(),
            Some(row("c1", "u", true)).map(|mut e| {
                e.summary.version = 0;
                e
            })
        );
        assert_eq!((index.len(), index.closed(), index.position()), (1, 1, 5));
    }
}
