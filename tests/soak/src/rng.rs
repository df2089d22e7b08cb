//! The soak's only source of randomness: one seeded generator, so that
//! `--seed N` replays the same sequence of actions.

/// SplitMix64: tiny, fast, and good enough to pick actions.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    /// A generator that replays the sequence of `seed`.
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    /// A seed nobody chose: from the kernel's random pool, else the clock.
    pub fn fresh_seed() -> u64 {
        let mut buf = [0u8; 8];
        if std::fs::File::open("/dev/urandom")
            .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut buf))
            .is_ok()
        {
            // Small seeds are easier to type in a replay.
            return u64::from_le_bytes(buf) % 1_000_000_000;
        }
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        u64::from(now.subsec_nanos()) ^ now.as_secs()
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (0 when `n` is 0).
    pub fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            return 0;
        }
        (self.next_u64() % n as u64) as usize
    }

    /// A number in `lo..=hi`.
    pub fn range(&mut self, lo: usize, hi: usize) -> usize {
        lo + self.below(hi.saturating_sub(lo) + 1)
    }

    /// True with probability `percent`/100.
    pub fn percent(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }

    /// A number in `lo..=hi`, small ones as likely as large ones in ratio
    /// (bursts from 1,000 to 10,000 changes: as many near 1,000 as near
    /// 10,000 in proportion).
    pub fn log_range(&mut self, lo: usize, hi: usize) -> usize {
        let (l, h) = ((lo.max(1) as f64).ln(), (hi.max(1) as f64).ln());
        let x = l + (h - l) * (self.next_u64() as f64 / u64::MAX as f64);
        (x.exp().round() as usize).clamp(lo, hi)
    }

    /// One element of `items`, `None` when it is empty.
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> Option<&'a T> {
        if items.is_empty() {
            None
        } else {
            Some(&items[self.below(items.len())])
        }
    }

    /// One of `choices`, each as likely as its weight; `None` when all
    /// weights are 0.
    pub fn weighted<T: Copy>(&mut self, choices: &[(T, u32)]) -> Option<T> {
        let total: u64 = choices.iter().map(|(_, w)| u64::from(*w)).sum();
        if total == 0 {
            return None;
        }
        let mut x = self.next_u64() % total;
        for (c, w) in choices {
            let w = u64::from(*w);
            if x < w {
                return Some(*c);
            }
            x -= w;
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_seed_replays_its_sequence() {
        let a: Vec<u64> = (0..5)
            .scan(Rng::new(42), |r, _| Some(r.next_u64()))
            .collect();
        let b: Vec<u64> = (0..5)
            .scan(Rng::new(42), |r, _| Some(r.next_u64()))
            .collect();
        let c: Vec<u64> = (0..5)
            .scan(Rng::new(43), |r, _| Some(r.next_u64()))
            .collect();
        assert_eq!(a, b);
        assert_ne!(a, c);
    }

    #[test]
    fn ranges_stay_within_bounds() {
        let mut r = Rng::new(7);
        for _ in 0..1000 {
            assert!((3..=9).contains(&r.range(3, 9)));
            assert!((1000..=10_000).contains(&r.log_range(1000, 10_000)));
            assert!(r.below(4) < 4);
        }
        assert_eq!(r.below(0), 0);
    }

    #[test]
    fn weights_are_respected() {
        let mut r = Rng::new(1);
        let mut seen = [0usize; 3];
        for _ in 0..3000 {
            seen[r.weighted(&[(0, 1), (1, 0), (2, 2)]).unwrap()] += 1;
        }
        assert_eq!(seen[1], 0);
        assert!(seen[2] > seen[0], "{seen:?}");
        assert_eq!(r.weighted::<u8>(&[(0, 0)]), None);
    }
}
