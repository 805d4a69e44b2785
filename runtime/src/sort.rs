//! One sort for the whole binary.
//!
//! std's slice sorts (driftsort, ipnsort) are fast on large inputs and large in code: each
//! element type and comparison compiles to a copy of 3–7 KB, and the twenty-odd places
//! that sort short lists (keys, names, IDs, pids, log files) came to ~75 KB of the static
//! binary. Here one heapsort is compiled once; it reaches the elements through `dyn`, so
//! each caller adds only its comparison and a swap. O(n log n) whatever the input, in
//! place, **not stable**: equal elements may come out in any order (use a key that tells
//! them apart where the order of equals matters).

/// What the heapsort needs of the sequence it sorts: compare two positions, swap two.
trait Positions {
    fn less(&mut self, i: usize, j: usize) -> bool;
    fn swap(&mut self, i: usize, j: usize);
}

struct Slice<'a, T, F> {
    v: &'a mut [T],
    less: F,
}

impl<T, F: FnMut(&T, &T) -> bool> Positions for Slice<'_, T, F> {
    fn less(&mut self, i: usize, j: usize) -> bool {
        (self.less)(&self.v[i], &self.v[j])
    }

    fn swap(&mut self, i: usize, j: usize) {
        self.v.swap(i, j);
    }
}

/// Sort `v` so that no element is `less` than one before it.
pub fn sort_by<T>(v: &mut [T], less: impl FnMut(&T, &T) -> bool) {
    let n = v.len();
    heapsort(n, &mut Slice { v, less });
}

/// Sort `v` in ascending order.
pub fn sort<T: Ord>(v: &mut [T]) {
    sort_by(v, |a, b| a < b);
}

/// Sort `v` by ascending `key`.
pub fn sort_by_key<T, K: Ord>(v: &mut [T], mut key: impl FnMut(&T) -> K) {
    sort_by(v, |a, b| key(a) < key(b));
}

fn heapsort(n: usize, s: &mut dyn Positions) {
    // Build a max-heap, then move its top behind the shrinking heap, one at a time.
    for start in (0..n / 2).rev() {
        sift_down(s, start, n);
    }
    for end in (1..n).rev() {
        s.swap(0, end);
        sift_down(s, 0, end);
    }
}

fn sift_down(s: &mut dyn Positions, mut node: usize, end: usize) {
    loop {
        let mut child = 2 * node + 1;
        if child >= end {
            return;
        }
        if child + 1 < end && s.less(child, child + 1) {
            child += 1;
        }
        if !s.less(node, child) {
            return;
        }
        s.swap(node, child);
        node = child;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn sorts_the_short_and_the_empty() {
        let mut empty: Vec<u32> = vec![];
        sort(&mut empty);
        assert!(empty.is_empty());
        let mut one = vec![7];
        sort(&mut one);
        assert_eq!(one, [7]);
        let mut names = vec!["web", "db", "cache", "db"];
        sort(&mut names);
        assert_eq!(names, ["cache", "db", "db", "web"]);
        let mut by_len = vec!["ccc", "a", "bb"];
        sort_by_key(&mut by_len, |s| std::cmp::Reverse(s.len()));
        assert_eq!(by_len, ["ccc", "bb", "a"]);
    }

    proptest! {
        #[test]
        fn agrees_with_std(mut v in proptest::collection::vec(any::<i16>(), 0..300)) {
            let mut want = v.clone();
            want.sort_unstable();
            sort(&mut v);
            prop_assert_eq!(v, want);
        }
    }
}
