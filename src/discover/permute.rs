//! A keyed pseudo-random permutation of `0..n`, computed one index at a time.
//!
//! Scanning in address order hammers one host (or one subnet's router) at a
//! time and makes a /8 a list nobody can hold in memory. Like masscan and zmap,
//! we walk indices `0..n` and map each through a bijection, so the order looks
//! random, costs O(1) memory, is reproducible from a seed, and any prefix of
//! the walk (a checkpoint) or any residue class (a shard) is well defined.
//!
//! Construction: a 4-round balanced Feistel network on the smallest even bit
//! width that holds `n`, with cycle-walking to stay inside `0..n`. Because the
//! width is at most 2 bits wider than `n` needs, a walk takes under 4 steps on
//! average.

/// A bijection on `0..n`.
#[derive(Clone, Debug)]
pub struct Permutation {
    n: u128,
    half_bits: u32,
    keys: [u64; 4],
}

impl Permutation {
    pub fn new(n: u128, seed: u64) -> Self {
        let bits = if n <= 1 { 0 } else { 128 - (n - 1).leading_zeros() };
        let half_bits = bits.div_ceil(2);
        let mut state = seed;
        let keys = [(); 4].map(|_| splitmix64(&mut state));
        Permutation { n, half_bits, keys }
    }

    pub fn len(&self) -> u128 {
        self.n
    }

    pub fn is_empty(&self) -> bool {
        self.n == 0
    }

    /// The image of `index` (which must be below `len()`).
    pub fn apply(&self, index: u128) -> u128 {
        debug_assert!(index < self.n);
        if self.half_bits == 0 {
            return index;
        }
        let mut x = index;
        loop {
            x = self.feistel(x);
            if x < self.n {
                return x;
            }
        }
    }

    fn feistel(&self, x: u128) -> u128 {
        let mask: u128 = if self.half_bits >= 64 {
            u64::MAX as u128
        } else {
            (1u128 << self.half_bits) - 1
        };
        let mut left = (x >> self.half_bits) & mask;
        let mut right = x & mask;
        for key in self.keys {
            let f = round(right, key) & mask;
            let next = left ^ f;
            left = right;
            right = next;
        }
        (left << self.half_bits) | right
    }
}

fn round(x: u128, key: u64) -> u128 {
    let lo = mix64((x as u64) ^ key);
    let hi = mix64(((x >> 64) as u64) ^ lo ^ key.rotate_left(32));
    ((hi as u128) << 64) | lo as u128
}

fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    mix64(*state)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn covers_exactly_once(n: u128, seed: u64) {
        let p = Permutation::new(n, seed);
        let mut seen = vec![false; n as usize];
        for i in 0..n {
            let j = p.apply(i) as usize;
            assert!(!seen[j], "n={n} seed={seed}: {j} produced twice");
            seen[j] = true;
        }
        assert!(seen.iter().all(|&s| s));
    }

    #[test]
    fn is_a_bijection_for_many_sizes() {
        for n in [
            0u128, 1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 100, 255, 256, 257, 1000, 4096, 65_535,
        ] {
            for seed in [0, 1, 0xdead_beef] {
                covers_exactly_once(n, seed);
            }
        }
    }

    #[test]
    fn is_deterministic_per_seed_and_differs_across_seeds() {
        let a: Vec<u128> = (0..1000).map(|i| Permutation::new(1000, 7).apply(i)).collect();
        let b: Vec<u128> = (0..1000).map(|i| Permutation::new(1000, 7).apply(i)).collect();
        let c: Vec<u128> = (0..1000).map(|i| Permutation::new(1000, 8).apply(i)).collect();
        assert_eq!(a, b);
        assert_ne!(a, c);
    }

    #[test]
    fn scatters_order() {
        let p = Permutation::new(65_536, 1);
        let sequential = (0..1000u128).filter(|&i| p.apply(i) == i).count();
        assert!(sequential < 10, "{sequential} fixed points in the first 1000");
    }

    #[test]
    fn huge_domains_map_inside_range() {
        let n = 1u128 << 104;
        let p = Permutation::new(n, 3);
        for i in [0, 1, n / 2, n - 1] {
            assert!(p.apply(i) < n);
        }
        let n = u128::MAX;
        let p = Permutation::new(n, 3);
        assert!(p.apply(12345) < n);
    }
}
