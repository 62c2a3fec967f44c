//! A small seeded pseudo-random generator (SplitMix64) for the sans-IO
//! layers: ephemeral ports, fault injection, simulation. Seeded by the
//! caller, so a run replays exactly; not for secrets (ISNs and fragment IDs
//! use keyed hashes seeded from the OS).

/// SplitMix64: 64 bits of state, every seed a full-period stream.
///
/// ```
/// use ustack::rand::Rng;
///
/// let (mut a, mut b) = (Rng::new(7), Rng::new(7));
/// let first: Vec<u64> = (0..4).map(|_| a.next_u64()).collect();
/// assert_eq!(first, (0..4).map(|_| b.next_u64()).collect::<Vec<_>>());
/// assert_ne!(Rng::new(8).next_u64(), first[0]);
/// assert!((0..1000).all(|_| a.below(6) < 6));
/// assert!(!a.chance(0.0) && a.chance(1.0));
/// ```
#[derive(Clone, Debug)]
pub struct Rng {
    state: u64,
}

impl Rng {
    /// A generator whose output is fixed by `seed`.
    pub const fn new(seed: u64) -> Rng {
        Rng { state: seed }
    }

    /// A generator seeded from the OS (std's per-process random hash keys).
    pub fn from_os() -> Rng {
        use std::hash::{BuildHasher, Hasher};
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u64(0x5553_5441_434b);
        Rng::new(h.finish())
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A value in `0..n` (`0` when `n` is 0), without modulo bias worth
    /// mentioning for the small `n` used here (Lemire's multiply-shift).
    pub fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }

    /// Uniform in [0, 1): 53 random bits.
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// True with probability `p`. Always draws, so one decision's
    /// probability never shifts the random stream of the others.
    pub fn chance(&mut self, p: f64) -> bool {
        self.next_f64() < p
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_stream_different_seed_different_stream() {
        let a: Vec<u64> = (0..8)
            .scan(Rng::new(7), |r, _| Some(r.next_u64()))
            .collect();
        let b: Vec<u64> = (0..8)
            .scan(Rng::new(7), |r, _| Some(r.next_u64()))
            .collect();
        let c: Vec<u64> = (0..8)
            .scan(Rng::new(8), |r, _| Some(r.next_u64()))
            .collect();
        assert_eq!(a, b);
        assert_ne!(a, c);
    }

    #[test]
    fn below_stays_in_range_and_covers_it() {
        let mut r = Rng::new(1);
        let mut seen = [false; 10];
        for _ in 0..1000 {
            let v = r.below(10) as usize;
            seen[v] = true;
        }
        assert!(seen.iter().all(|s| *s));
        assert_eq!(r.below(0), 0);
    }

    #[test]
    fn chance_matches_probability_roughly() {
        let mut r = Rng::new(3);
        let hits = (0..100_000).filter(|_| r.chance(0.25)).count();
        assert!((23_000..27_000).contains(&hits), "{hits}");
        assert!(!(0..1000).any(|_| r.chance(0.0)));
        assert!((0..1000).all(|_| r.chance(1.0)));
    }
}
