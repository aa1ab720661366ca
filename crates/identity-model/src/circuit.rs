//! A per-host circuit breaker: after `threshold` consecutive failures a host is not called for
//! `open_for`; then one probe is let through (half-open), and its result closes or reopens the
//! circuit. A dead provider then costs nothing per request. Times are tokio `Instant`s
//! (monotonic, and pausable in tests).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Closed { failures: u32 },
    Open { until: Instant },
    HalfOpen { probing: bool },
}

/// Circuit breakers keyed by host (`host:port`), bounded in number.
#[derive(Debug)]
pub(crate) struct Breakers {
    threshold: u32,
    open_for: Duration,
    states: Mutex<HashMap<String, State>>,
}

/// Hosts remembered at most; past it the oldest knowledge is dropped (all closed again).
const MAX_HOSTS: usize = 64;

impl Breakers {
    pub(crate) fn new(threshold: u32, open_for: Duration) -> Self {
        Breakers { threshold: threshold.max(1), open_for, states: Mutex::new(HashMap::new()) }
    }

    /// Whether a request to `host` may go out now. `Err` carries how long the circuit stays open.
    pub(crate) fn allow(&self, host: &str, now: Instant) -> Result<(), Duration> {
        let mut states = self.states.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let state = states.entry(host.to_owned()).or_insert(State::Closed { failures: 0 });
        match *state {
            State::Closed { .. } => Ok(()),
            State::Open { until } if now < until => Err(until - now),
            State::Open { .. } | State::HalfOpen { probing: false } => {
                *state = State::HalfOpen { probing: true };
                Ok(())
            }
            State::HalfOpen { probing: true } => Err(Duration::ZERO),
        }
    }

    /// Records the outcome of a request to `host`; `true` when this failure opened the circuit.
    pub(crate) fn record(&self, host: &str, success: bool, now: Instant) -> bool {
        let mut states = self.states.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if states.len() >= MAX_HOSTS && !states.contains_key(host) {
            states.clear();
        }
        let state = states.entry(host.to_owned()).or_insert(State::Closed { failures: 0 });
        let was_open = matches!(*state, State::Open { .. });
        *state = match (*state, success) {
            (_, true) => State::Closed { failures: 0 },
            (State::Closed { failures }, false) if failures + 1 < self.threshold => {
                State::Closed { failures: failures + 1 }
            }
            (_, false) => {
                tracing::warn!(
                    host,
                    open_for_secs = self.open_for.as_secs(),
                    "circuit opened: no requests until it half-opens"
                );
                State::Open { until: now + self.open_for }
            }
        };
        !was_open && matches!(*state, State::Open { .. })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn closed_open_half_open_closed() {
        let b = Breakers::new(3, Duration::from_secs(30));
        let t0 = Instant::now();
        for _ in 0..2 {
            assert!(b.allow("h", t0).is_ok());
            b.record("h", false, t0);
        }
        assert!(b.allow("h", t0).is_ok(), "two failures: still closed");
        b.record("h", false, t0);
        assert_eq!(b.allow("h", t0 + Duration::from_secs(10)), Err(Duration::from_secs(20)), "open");
        assert!(b.allow("other", t0).is_ok(), "per host");
        let later = t0 + Duration::from_secs(30);
        assert!(b.allow("h", later).is_ok(), "half-open: one probe");
        assert!(b.allow("h", later).is_err(), "only one probe at a time");
        b.record("h", false, later);
        assert!(b.allow("h", later + Duration::from_secs(1)).is_err(), "failed probe reopens");
        let much_later = later + Duration::from_secs(31);
        assert!(b.allow("h", much_later).is_ok());
        b.record("h", true, much_later);
        assert!(b.allow("h", much_later).is_ok() && b.allow("h", much_later).is_ok(), "closed again");
    }
}
