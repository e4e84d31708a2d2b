//! Exponential backoff with seeded "equal jitter": the n-th delay is uniform in
//! `[cap/2, cap]` with `cap = min(max, base * 2^n)`. Seeded so tests and simulations are
//! reproducible; agents seed from their droplet name so a fleet does not retry in lockstep.

use std::time::Duration;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// A backoff sequence.
#[derive(Clone, Debug)]
pub struct Backoff {
    base: Duration,
    max: Duration,
    attempt: u32,
    rng: ChaCha8Rng,
}

impl Backoff {
    /// Delays start near `base` and double up to `max`.
    pub fn new(base: Duration, max: Duration, seed: u64) -> Self {
        Self {
            base,
            max: max.max(base),
            attempt: 0,
            rng: ChaCha8Rng::seed_from_u64(seed),
        }
    }

    /// The next delay.
    pub fn next_delay(&mut self) -> Duration {
        let factor = 1u32.checked_shl(self.attempt.min(20)).unwrap_or(u32::MAX);
        let cap = self.base.saturating_mul(factor).min(self.max);
        self.attempt = self.attempt.saturating_add(1);
        let half = cap / 2;
        let nanos = u64::try_from(half.as_nanos()).unwrap_or(u64::MAX);
        half + Duration::from_nanos(self.rng.random_range(0..=nanos))
    }

    /// After a success: the next failure starts from `base` again.
    pub fn reset(&mut self) {
        self.attempt = 0;
    }

    /// Failures since the last reset.
    pub fn attempts(&self) -> u32 {
        self.attempt
    }
}

/// A stable seed from a name (FNV-1a), so one droplet's jitter is reproducible.
pub fn seed_from(name: &str) -> u64 {
    name.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_with_jitter_within_bounds_and_resets() {
        let base = Duration::from_millis(100);
        let max = Duration::from_secs(2);
        let mut b = Backoff::new(base, max, 7);
        let caps = [100u64, 200, 400, 800, 1600, 2000, 2000];
        for cap in caps {
            let d = b.next_delay();
            let cap = Duration::from_millis(cap);
            assert!(
                d >= cap / 2 && d <= cap,
                "{d:?} not in [{:?}, {cap:?}]",
                cap / 2
            );
        }
        b.reset();
        assert!(b.next_delay() <= base);
        assert_eq!(b.attempts(), 1);
    }

    #[test]
    fn seeded_sequences_repeat_and_differ_by_seed() {
        let seq = |seed| {
            let mut b = Backoff::new(Duration::from_millis(10), Duration::from_secs(1), seed);
            (0..8).map(|_| b.next_delay()).collect::<Vec<_>>()
        };
        assert_eq!(seq(1), seq(1));
        assert_ne!(seq(1), seq(2));
        assert_ne!(seed_from("d1"), seed_from("d2"));
    }

    #[test]
    fn huge_attempt_counts_saturate() {
        let mut b = Backoff::new(Duration::from_secs(1), Duration::from_secs(30), 0);
        for _ in 0..100 {
            assert!(b.next_delay() <= Duration::from_secs(30));
        }
    }
}
