//! Where "now" comes from. Validation never reads the system clock directly, so tests and
//! simulations can inject time.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use identity_model_core::UnixTime;

/// A source of wall-clock time for validating `exp`, `nbf` and `iat`.
pub trait Clock: Send + Sync + fmt::Debug {
    /// The current time.
    fn now(&self) -> UnixTime;
}

/// The system's wall clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> UnixTime {
        let secs = match SystemTime::now().duration_since(UNIX_EPOCH) {
            Ok(since) => i64::try_from(since.as_secs()).unwrap_or(i64::MAX),
            Err(before) => -i64::try_from(before.duration().as_secs()).unwrap_or(i64::MAX),
        };
        UnixTime::from_secs(secs)
    }
}

/// A clock that stands still until moved; clones share the same time.
#[derive(Debug, Clone, Default)]
pub struct FixedClock(Arc<AtomicI64>);

impl FixedClock {
    /// A clock showing `now`.
    pub fn new(now: UnixTime) -> Self {
        FixedClock(Arc::new(AtomicI64::new(now.as_secs())))
    }

    /// Sets the time.
    pub fn set(&self, now: UnixTime) {
        self.0.store(now.as_secs(), Ordering::Relaxed);
    }

    /// Moves the time forward by `secs`.
    pub fn advance(&self, secs: i64) {
        self.0.fetch_add(secs, Ordering::Relaxed);
    }
}

impl Clock for FixedClock {
    fn now(&self) -> UnixTime {
        UnixTime::from_secs(self.0.load(Ordering::Relaxed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_clock_clones_share_time() {
        let clock = FixedClock::new(UnixTime::from_secs(100));
        let other = clock.clone();
        clock.advance(5);
        assert_eq!(other.now(), UnixTime::from_secs(105));
        assert!(SystemClock.now().as_secs() > 1_700_000_000);
    }
}
