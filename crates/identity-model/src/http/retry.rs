//! When to try again: exponential backoff with jitter, and a server's `Retry-After` honoured
//! up to a cap. Pure arithmetic; the caller supplies the randomness, so the schedule is
//! testable. The fetch loop (retries of one request) and the token manager (waits between
//! failed refreshes) both use [`Backoff`]: `base` means the same in both, the ceiling of the
//! first wait.

use std::time::Duration;

/// Backoff settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// Delay scale: wait `n` (from 0) is at most `base * 2^n`.
    pub base: Duration,
    /// No single wait is longer than this.
    pub cap: Duration,
    /// A server's `Retry-After` is honoured up to this; beyond it the request fails.
    pub max_retry_after: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            base: Duration::from_secs(1),
            cap: Duration::from_secs(30),
            max_retry_after: Duration::from_secs(60),
        }
    }
}

/// What to do after a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryDecision {
    /// Wait this long, then try again.
    After(Duration),
    /// Do not try again.
    GiveUp,
}

impl Backoff {
    /// Full jitter (AWS architecture blog, "Exponential Backoff and Jitter"): a uniform wait in
    /// `[0, min(cap, base * 2^attempt))`, with `unit` uniform in `[0, 1)`.
    pub fn jittered(&self, attempt: u32, unit: f64) -> Duration {
        self.ceiling(attempt).mul_f64(unit.clamp(0.0, 1.0))
    }

    /// Equal jitter: a uniform wait in `[c/2, c)` with `c = min(cap, base * 2^attempt)`, for
    /// waits that must not be near zero (a failing provider is not probed again at once).
    pub fn equal_jittered(&self, attempt: u32, unit: f64) -> Duration {
        self.ceiling(attempt).mul_f64(0.5 + 0.5 * unit.clamp(0.0, 1.0))
    }

    fn ceiling(&self, attempt: u32) -> Duration {
        self.base.saturating_mul(1u32.checked_shl(attempt.min(31)).unwrap_or(u32::MAX)).min(self.cap)
    }

    /// The decision after attempt `attempt` (from 0) of `max_attempts` failed, given the
    /// server's `Retry-After`, if any. A `Retry-After` longer than `max_retry_after` gives up
    /// rather than holding the caller; a shorter one is waited exactly (never less).
    pub fn decide(
        &self,
        attempt: u32,
        max_attempts: u32,
        retry_after: Option<Duration>,
        unit: f64,
    ) -> RetryDecision {
        if attempt.saturating_add(1) >= max_attempts {
            return RetryDecision::GiveUp;
        }
        match retry_after {
            Some(wait) if wait > self.max_retry_after => RetryDecision::GiveUp,
            Some(wait) => RetryDecision::After(wait.max(self.jittered(attempt, unit).min(wait))),
            None => RetryDecision::After(self.jittered(attempt, unit)),
        }
    }
}

/// A uniform number in `[0, 1)` for backoff and refresh jitter (std's per-instance random
/// SipHash keys; no cryptographic quality is needed here).
pub fn jitter_unit() -> f64 {
    use std::hash::{BuildHasher, Hasher};
    let bits = std::collections::hash_map::RandomState::new().build_hasher().finish();
    (bits >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_jitter_stays_under_the_growing_ceiling() {
        let b =
            Backoff { base: Duration::from_millis(100), cap: Duration::from_secs(2), ..Backoff::default() };
        assert_eq!(b.jittered(0, 0.0), Duration::ZERO);
        assert_eq!(b.jittered(0, 0.5), Duration::from_millis(50));
        assert_eq!(b.jittered(3, 0.5), Duration::from_millis(400));
        assert_eq!(b.jittered(10, 0.5), Duration::from_secs(1), "capped at 2 s");
        assert_eq!(b.jittered(u32::MAX, 1.0), Duration::from_secs(2), "no overflow");
        for attempt in 0..8u32 {
            let ceiling = Duration::from_millis(100 << attempt).min(Duration::from_secs(2));
            for unit in [0.0, 0.3, 0.999] {
                let wait = b.jittered(attempt, unit);
                assert!(wait < ceiling, "attempt {attempt}: {wait:?} >= {ceiling:?}");
                assert_eq!(wait, ceiling.mul_f64(unit));
            }
        }
    }

    #[test]
    fn retry_after_is_honoured_up_to_the_cap() {
        let b = Backoff::default();
        assert_eq!(b.decide(2, 3, None, 0.5), RetryDecision::GiveUp, "last attempt");
        assert_eq!(
            b.decide(0, 3, Some(Duration::from_secs(5)), 0.0),
            RetryDecision::After(Duration::from_secs(5))
        );
        assert_eq!(b.decide(0, 3, Some(Duration::from_secs(600)), 0.5), RetryDecision::GiveUp);
        assert_eq!(b.decide(1, 3, None, 0.5), RetryDecision::After(Duration::from_secs(1)));
    }

    #[test]
    fn equal_jitter_keeps_at_least_half() {
        let b = Backoff { base: Duration::from_secs(1), cap: Duration::from_secs(60), ..Backoff::default() };
        assert_eq!(b.equal_jittered(0, 0.0), Duration::from_millis(500));
        assert_eq!(b.equal_jittered(2, 0.5), Duration::from_secs(3));
        assert_eq!(b.equal_jittered(40, 1.0), Duration::from_secs(60));
    }
}
