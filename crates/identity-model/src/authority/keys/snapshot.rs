//! What the hot path reads: the prepared keys of one fetch and their freshness, swapped in
//! whole by a refresh (readers never lock).

use std::sync::Arc;
use std::time::Duration;

use identity_model_core::KeySet;
use tokio::time::Instant;

/// One generation of keys.
#[derive(Debug)]
pub(crate) struct Snapshot {
    pub(crate) keys: Arc<KeySet>,
    pub(crate) generation: u64,
    pub(crate) fetched_at: Instant,
    pub(crate) fresh_until: Instant,
    /// Past this (fetched + the allowed staleness) the keys are not trusted at all.
    pub(crate) stale_after: Instant,
    /// When a background refresh starts: a random point in the last 10-20 % of the freshness,
    /// so keys are renewed before they expire and instances do not refresh in lockstep.
    pub(crate) refresh_at: Instant,
}

impl Snapshot {
    /// Keys fetched at `now`, fresh for `ttl`, trusted for `max_staleness`; `unit` in `[0, 1)`
    /// places the refresh.
    pub(crate) fn new(
        keys: Arc<KeySet>,
        generation: u64,
        now: Instant,
        ttl: Duration,
        max_staleness: Duration,
        unit: f64,
    ) -> Snapshot {
        let ahead = ttl.mul_f64(0.1 + 0.1 * unit.clamp(0.0, 1.0));
        Snapshot {
            keys,
            generation,
            fetched_at: now,
            fresh_until: later(now, ttl),
            stale_after: later(now, max_staleness),
            refresh_at: later(now, ttl - ahead),
        }
    }
}

/// `at + by`, or a time far enough away when that does not fit.
pub(crate) fn later(at: Instant, by: Duration) -> Instant {
    at.checked_add(by).unwrap_or_else(|| at + Duration::from_secs(100 * 365 * 86_400))
}
