//! Exponential backoff with "full jitter" (AWS Architecture Blog, 2015): the
//! n-th retry waits a uniformly random time in `[0, min(cap, base · 2ⁿ))`,
//! which spreads retries of many callers instead of synchronising them.

use std::time::Duration;

/// Backoff parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// Ceiling of the first retry's wait; doubles per retry.
    pub base: Duration,
    /// No wait is longer, however many retries came before.
    pub cap: Duration,
}

impl Backoff {
    /// The ceiling of the wait before retry number `retry` (0 for the first retry).
    pub fn ceiling(&self, retry: u32) -> Duration {
        let factor = 1u32.checked_shl(retry.min(31)).unwrap_or(u32::MAX);
        self.base.saturating_mul(factor).min(self.cap)
    }

    /// A random wait before retry number `retry`, given a uniform sample in `[0, 1)`.
    pub fn delay(&self, retry: u32, sample: f64) -> Duration {
        self.ceiling(retry).mul_f64(sample.clamp(0.0, 1.0))
    }

    /// A random wait before retry number `retry`.
    pub fn jittered(&self, retry: u32) -> Duration {
        self.delay(retry, fastrand::f64())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const B: Backoff = Backoff {
        base: Duration::from_millis(50),
        cap: Duration::from_secs(1),
    };

    #[test]
    fn ceiling_doubles_up_to_the_cap() {
        let ms = |r| B.ceiling(r).as_millis();
        assert_eq!(
            [ms(0), ms(1), ms(2), ms(3), ms(4), ms(5)],
            [50, 100, 200, 400, 800, 1000]
        );
        assert_eq!(B.ceiling(u32::MAX), Duration::from_secs(1));
    }

    #[test]
    fn delay_is_full_jitter_within_the_ceiling() {
        assert_eq!(B.delay(2, 0.0), Duration::ZERO);
        assert_eq!(B.delay(2, 0.5), Duration::from_millis(100));
        assert!(B.delay(2, 0.999_999) < Duration::from_millis(200));
        for _ in 0..1000 {
            assert!(B.jittered(1) < Duration::from_millis(100));
        }
    }
}
