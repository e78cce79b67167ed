//! Pure: which addresses of a plan answered host discovery, by their index
//! in the plan's [`TargetSet`](crate::discover::targets::TargetSet), so the
//! plan's walk can skip the dead ones in O(1) per position.
//!
//! A bitmap up to [`BITMAP_MAX`] addresses (16 MiB for 2^27), else a hash
//! set of the live indices (a wider range is mostly dark, so the set stays
//! small). [`LiveMarks`] is written by the engines' threads while discovery
//! runs; [`LiveSet`] is what the plan reads afterwards.

use std::collections::HashSet;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

/// The widest plan that gets a bitmap (bits).
pub const BITMAP_MAX: u128 = 1 << 27;

/// Live addresses being found, written from several threads.
#[derive(Debug)]
pub struct LiveMarks {
    len: u128,
    repr: Marks,
}

#[derive(Debug)]
enum Marks {
    Bits(Vec<AtomicU64>),
    Sparse(Mutex<HashSet<u128>>),
}

impl LiveMarks {
    /// Marks for a plan of `len` addresses, none live yet.
    pub fn new(len: u128) -> LiveMarks {
        let repr = if len <= BITMAP_MAX {
            let words = len.div_ceil(64) as usize;
            Marks::Bits((0..words).map(|_| AtomicU64::new(0)).collect())
        } else {
            Marks::Sparse(Mutex::new(HashSet::new()))
        };
        LiveMarks { len, repr }
    }

    /// Address `index` answered; true the first time.
    pub fn mark(&self, index: u128) -> bool {
        if index >= self.len {
            return false;
        }
        match &self.repr {
            Marks::Bits(words) => {
                let bit = 1u64 << (index % 64);
                words[(index / 64) as usize].fetch_or(bit, Ordering::Relaxed) & bit == 0
            }
            Marks::Sparse(set) => set.lock().unwrap_or_else(|p| p.into_inner()).insert(index),
        }
    }

    pub fn freeze(self) -> LiveSet {
        let repr = match self.repr {
            Marks::Bits(words) => Repr::Bits(words.into_iter().map(AtomicU64::into_inner).collect()),
            Marks::Sparse(set) => Repr::Sparse(set.into_inner().unwrap_or_else(|p| p.into_inner())),
        };
        LiveSet { len: self.len, repr }
    }
}

/// The addresses found live, by index in the plan's target set.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LiveSet {
    len: u128,
    repr: Repr,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Repr {
    Bits(Vec<u64>),
    Sparse(HashSet<u128>),
}

impl LiveSet {
    /// Whether address `index` answered.
    pub fn contains(&self, index: u128) -> bool {
        match &self.repr {
            Repr::Bits(words) => {
                index < self.len
                    && words
                        .get((index / 64) as usize)
                        .is_some_and(|w| w >> (index % 64) & 1 == 1)
            }
            Repr::Sparse(set) => set.contains(&index),
        }
    }

    /// How many addresses answered.
    pub fn count(&self) -> u64 {
        match &self.repr {
            Repr::Bits(words) => words.iter().map(|w| u64::from(w.count_ones())).sum(),
            Repr::Sparse(set) => set.len() as u64,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marks_become_a_set_that_answers_per_index() {
        for len in [1u128, 63, 64, 65, 1000, BITMAP_MAX + 1] {
            let m = LiveMarks::new(len);
            assert!(m.mark(0));
            assert!(!m.mark(0), "the second mark is not new");
            assert!(m.mark(len - 1) || len == 1);
            assert!(!m.mark(len), "outside the plan");
            let s = m.freeze();
            assert!(s.contains(0) && s.contains(len - 1));
            assert!(!s.contains(len));
            if len > 2 {
                assert!(!s.contains(1));
                assert_eq!(s.count(), 2);
            }
        }
    }

    #[test]
    fn marks_from_threads_all_land() {
        let m = LiveMarks::new(4096);
        std::thread::scope(|s| {
            for k in 0..4u128 {
                let m = &m;
                s.spawn(move || {
                    (0..4096).filter(|i| i % 4 == k && i % 3 == 0).for_each(|i| {
                        m.mark(i);
                    })
                });
            }
        });
        let s = m.freeze();
        assert_eq!(s.count(), (0..4096).filter(|i| i % 3 == 0).count() as u64);
        assert!(s.contains(3) && !s.contains(4));
    }
}
