//! A map of at most a given number of values, the least recently touched
//! dropped first: what every bounded cache of per-case data in the service
//! is (the writer's case states, the read models' case facts).
//!
//! Why one type: the service's memory is its configured caches plus a
//! constant, so each cache has to be bounded the same way, and dropped
//! values are always rebuilt from the log by their owner, never lost.
//! Values are dropped only by [`Recent::trim`], so an owner that holds a
//! value across several steps (the writer within a batch) trims between
//! them.

use std::collections::{BTreeMap, HashMap};

pub struct Recent<T> {
    capacity: usize,
    values: HashMap<String, (T, u64)>,
    /// Keys by the tick they were last touched: the oldest first.
    order: BTreeMap<u64, String>,
    tick: u64,
}

impl<T> Recent<T> {
    /// A cache of at most `capacity` values (at least one).
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity: capacity.max(1),
            values: HashMap::new(),
            order: BTreeMap::new(),
            tick: 0,
        }
    }

    pub fn get(&self, key: &str) -> Option<&T> {
        self.values.get(key).map(|(v, _)| v)
    }

    pub fn contains_key(&self, key: &str) -> bool {
        self.values.contains_key(key)
    }

    /// Keeps `value` as the most recent.
    pub fn insert(&mut self, key: String, value: T) {
        self.tick += 1;
        // A key already held keeps its entry and moves in the order: no
        // copy of the key for the ones touched on every step.
        if let Some(held) = self.values.get_mut(&key) {
            let k = self.order.remove(&held.1).unwrap_or(key);
            *held = (value, self.tick);
            self.order.insert(self.tick, k);
            return;
        }
        self.order.insert(self.tick, key.clone());
        self.values.insert(key, (value, self.tick));
    }

    pub fn remove(&mut self, key: &str) {
        self.take(key);
    }

    /// Removes a value and gives it back.
    pub fn take(&mut self, key: &str) -> Option<T> {
        let (value, tick) = self.values.remove(key)?;
        self.order.remove(&tick);
        Some(value)
    }

    /// Drops everything.
    pub fn clear(&mut self) {
        self.values = HashMap::new();
        self.order.clear();
    }

    /// Drops the least recently touched values beyond the capacity.
    pub fn trim(&mut self) {
        while self.values.len() > self.capacity {
            let Some((_, key)) = self.order.pop_first() else {
                return;
            };
            self.values.remove(&key);
        }
        // Values are stored in the table itself, so a table sized for a
        // burst (thousands of open cases that then closed) would keep the
        // burst's memory while holding few: it gives it back once it is
        // three quarters empty, keeping room to double.
        if self.values.capacity() > 64 && self.values.capacity() > 4 * self.values.len() {
            self.values.shrink_to(2 * self.values.len());
        }
    }

    pub fn len(&self) -> usize {
        self.values.len()
    }

    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_least_recently_touched_go_first_and_only_when_trimmed() {
        let mut c = Recent::new(2);
        c.insert("a".into(), 1);
        c.insert("b".into(), 1);
        c.insert("c".into(), 1);
        assert_eq!(c.len(), 3, "nothing is dropped before a trim");
        c.insert("a".into(), 2);
        c.trim();
        assert_eq!(c.len(), 2);
        assert!(!c.contains_key("b"), "b was touched least recently");
        assert_eq!(c.get("a"), Some(&2));
        c.remove("a");
        c.trim();
        assert!(c.contains_key("c") && c.len() == 1);
        c.clear();
        assert!(c.is_empty());
    }

    #[test]
    fn a_table_emptied_after_a_burst_gives_its_room_back() {
        let mut c = Recent::new(20_000);
        for i in 0..10_000 {
            c.insert(format!("case-{i}"), [0u8; 512]);
        }
        c.trim();
        let burst = c.values.capacity();
        assert!(burst >= 10_000);
        for i in 0..9_990 {
            c.remove(&format!("case-{i}"));
        }
        c.trim();
        assert_eq!(c.len(), 10);
        assert!(c.values.capacity() < 100, "{}", c.values.capacity());
        assert_eq!(c.get("case-9999"), Some(&[0u8; 512]));
    }
}
