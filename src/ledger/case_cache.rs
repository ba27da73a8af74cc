//! The writer's case states: a cache of at most `--case-cache` states, the
//! least recently committed dropped first.
//!
//! Why: the writer decides every append against its case's state (what
//! the rules need: contacts, demands, promises, tickets, judgements), about
//! 3.4 KB for a case like the seed's. Kept for every open case, that grew
//! with the number of open cases for as long as the server ran. A state is
//! rebuilt exactly from the case's stream (its records in version order,
//! with their stored hashes), so dropping one loses nothing: the next
//! append to that case folds it again ([`super::writer`]'s miss path), a
//! few dozen record reads on the writer thread. Size the cache to the cases
//! that take appends in a day or so and misses stay rare
//! (`case_state_loads` in `/metrics` and `Ops.GetStats`).
//!
//! Recency is by commit, not by lookup: a state is touched when a commit
//! leaves it, so a refused request does not keep a case in memory. States
//! are dropped only between batches ([`CaseCache::trim`]), never while a
//! batch still decides against them.

use crate::domain::CaseState;
use std::collections::{BTreeMap, HashMap};

/// Default number of case states kept: ~70 MB at most for cases like the
/// seed's.
pub const DEFAULT_CASE_CACHE: usize = 20_000;

pub(crate) struct CaseCache {
    capacity: usize,
    states: HashMap<String, (CaseState, u64)>,
    /// Case ids by the tick of their last commit: the oldest first.
    order: BTreeMap<u64, String>,
    tick: u64,
}

impl CaseCache {
    /// A cache of at most `capacity` states (at least one).
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity: capacity.max(1),
            states: HashMap::new(),
            order: BTreeMap::new(),
            tick: 0,
        }
    }

    pub fn get(&self, case_id: &str) -> Option<&CaseState> {
        self.states.get(case_id).map(|(s, _)| s)
    }

    pub fn contains_key(&self, case_id: &str) -> bool {
        self.states.contains_key(case_id)
    }

    /// Keeps `state` as the most recent.
    pub fn insert(&mut self, case_id: String, state: CaseState) {
        self.tick += 1;
        // A case already held keeps its entry, and its id moves in the
        // order: no copy of the id for the cases every commit touches.
        if let Some(held) = self.states.get_mut(&case_id) {
            let id = self.order.remove(&held.1).unwrap_or(case_id);
            *held = (state, self.tick);
            self.order.insert(self.tick, id);
            return;
        }
        self.order.insert(self.tick, case_id.clone());
        self.states.insert(case_id, (state, self.tick));
    }

    pub fn remove(&mut self, case_id: &str) {
        if let Some((_, tick)) = self.states.remove(case_id) {
            self.order.remove(&tick);
        }
    }

    /// Drops the least recently committed states beyond the capacity.
    pub fn trim(&mut self) {
        while self.states.len() > self.capacity {
            let Some((_, case_id)) = self.order.pop_first() else {
                return;
            };
            self.states.remove(&case_id);
        }
        if self.states.capacity() > 2 * self.capacity.max(self.states.len()) {
            self.states.shrink_to_fit();
        }
    }

    pub fn len(&self) -> usize {
        self.states.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(version: u64) -> CaseState {
        CaseState {
            version,
            ..Default::default()
        }
    }

    #[test]
    fn the_least_recently_committed_go_first_and_only_when_trimmed() {
        let mut c = CaseCache::new(2);
        c.insert("a".into(), state(1));
        c.insert("b".into(), state(1));
        c.insert("c".into(), state(1));
        assert_eq!(c.len(), 3, "nothing is dropped within a batch");
        c.insert("a".into(), state(2));
        c.trim();
        assert_eq!(c.len(), 2);
        assert!(!c.contains_key("b"), "b was committed least recently");
        assert_eq!(c.get("a").map(|s| s.version), Some(2));
        c.remove("a");
        c.trim();
        assert!(c.contains_key("c") && c.len() == 1);
    }
}
