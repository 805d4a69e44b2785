//! Every deadline of the supervisor behind one timerfd: a queue of (deadline, key), the
//! timerfd armed for the earliest. Setting a key again moves its deadline; cancelling
//! removes it. Pure: deadlines are plain milliseconds of a clock the caller reads.

use std::collections::{BTreeSet, HashMap};
use std::hash::Hash;

/// Deadlines in milliseconds of a monotonic clock, by key.
#[derive(Debug)]
pub struct Timers<K> {
    queue: BTreeSet<(u64, u64, K)>,
    by_key: HashMap<K, (u64, u64)>,
    seq: u64,
}

impl<K: Ord + Hash + Clone> Default for Timers<K> {
    fn default() -> Self {
        Timers {
            queue: BTreeSet::new(),
            by_key: HashMap::new(),
            seq: 0,
        }
    }
}

impl<K: Ord + Hash + Clone> Timers<K> {
    pub fn new() -> Self {
        Self::default()
    }

    /// `key` fires at `at` (replacing an earlier deadline of the same key). Keys due at the
    /// same time fire in the order they were set.
    pub fn set(&mut self, key: K, at: u64) {
        self.cancel(&key);
        self.seq += 1;
        self.queue.insert((at, self.seq, key.clone()));
        self.by_key.insert(key, (at, self.seq));
    }

    pub fn cancel(&mut self, key: &K) {
        if let Some((at, seq)) = self.by_key.remove(key) {
            self.queue.remove(&(at, seq, key.clone()));
        }
    }

    /// The deadline of `key`, if set.
    pub fn deadline(&self, key: &K) -> Option<u64> {
        self.by_key.get(key).map(|&(at, _)| at)
    }

    /// The earliest deadline.
    pub fn next(&self) -> Option<u64> {
        self.queue.first().map(|&(at, _, _)| at)
    }

    /// Removes and returns the keys due at `now`, earliest first.
    pub fn take_due(&mut self, now: u64) -> Vec<K> {
        let mut due = Vec::new();
        while let Some((at, _, _)) = self.queue.first() {
            if *at > now {
                break;
            }
            if let Some((_, _, key)) = self.queue.pop_first() {
                self.by_key.remove(&key);
                due.push(key);
            }
        }
        due
    }

    pub fn len(&self) -> usize {
        self.by_key.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_key.is_empty()
    }

    /// Cancels every key `pred` picks.
    pub fn cancel_where(&mut self, pred: impl Fn(&K) -> bool) {
        let doomed: Vec<K> = self.by_key.keys().filter(|k| pred(k)).cloned().collect();
        for k in doomed {
            self.cancel(&k);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fires_in_deadline_order_and_moves_reset_keys() {
        let mut t = Timers::new();
        assert_eq!(t.next(), None);
        t.set("b", 200);
        t.set("a", 100);
        t.set("c", 100);
        assert_eq!(t.next(), Some(100));
        assert_eq!(t.take_due(99), Vec::<&str>::new());
        assert_eq!(t.take_due(100), ["a", "c"]);
        t.set("b", 50); // moved earlier
        t.set("d", 300);
        assert_eq!(t.deadline(&"b"), Some(50));
        assert_eq!(t.len(), 2);
        t.cancel(&"b");
        t.cancel(&"zzz");
        assert_eq!(t.next(), Some(300));
        assert_eq!(t.take_due(1_000), ["d"]);
        assert!(t.is_empty());
    }

    #[test]
    fn cancel_where_removes_a_group() {
        let mut t = Timers::new();
        for (k, at) in [(("x", 1), 5), (("x", 2), 6), (("y", 1), 7)] {
            t.set(k, at);
        }
        t.cancel_where(|k| k.0 == "x");
        assert_eq!(t.take_due(100), [("y", 1)]);
    }
}
