//! A per-host circuit breaker: after `threshold` consecutive failures a host is not called for
//! `open_for`; then one probe is let through (half-open), and its result closes or reopens the
//! circuit. A dead provider then costs nothing per request. Times are tokio `Instant`s
//! (monotonic, and pausable in tests).
//!
//! Permission to send is a [`Permit`]: recording an outcome consumes it, and dropping it
//! unrecorded (the caller's future was dropped mid-request, or it panicked) releases a
//! half-open probe, so the next caller probes instead of finding the host "probing" forever.

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

/// Leave to send one request to a host. Record its outcome with [`Permit::record`]; dropped
/// without it, a probe is released (the circuit stays half-open for the next caller).
#[derive(Debug)]
pub(crate) struct Permit<'a> {
    breakers: &'a Breakers,
    host: String,
    probe: bool,
}

impl Breakers {
    pub(crate) fn new(threshold: u32, open_for: Duration) -> Self {
        Breakers { threshold: threshold.max(1), open_for, states: Mutex::new(HashMap::new()) }
    }

    fn states(&self) -> std::sync::MutexGuard<'_, HashMap<String, State>> {
        self.states.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Whether a request to `host` may go out now. `Err` carries how long the circuit stays open
    /// (zero while another caller's probe is out).
    pub(crate) fn allow(&self, host: &str, now: Instant) -> Result<Permit<'_>, Duration> {
        let mut states = self.states();
        let state = states.get(host).copied().unwrap_or(State::Closed { failures: 0 });
        let probe = match state {
            State::Closed { .. } => false,
            State::Open { until } if now < until => return Err(until - now),
            State::Open { .. } | State::HalfOpen { probing: false } => {
                states.insert(host.to_owned(), State::HalfOpen { probing: true });
                true
            }
            State::HalfOpen { probing: true } => return Err(Duration::ZERO),
        };
        Ok(Permit { breakers: self, host: host.to_owned(), probe })
    }

    /// Whether `host`'s circuit is open (or its probe is out) at `now`: requests would not be sent.
    pub(crate) fn is_open(&self, host: &str, now: Instant) -> bool {
        match self.states().get(host) {
            Some(State::Open { until }) => now < *until,
            Some(State::HalfOpen { probing }) => *probing,
            _ => false,
        }
    }

    fn record(&self, host: &str, success: bool, now: Instant) -> bool {
        let mut states = self.states();
        if states.len() >= MAX_HOSTS && !states.contains_key(host) {
            states.clear();
        }
        let state = states.entry(host.to_owned()).or_insert(State::Closed { failures: 0 });
        let was_open = matches!(*state, State::Open { .. });
        *state = match (*state, success) {
            (_, true) => State::Closed { failures: 0 },
            (State::Closed { failures }, false) if failures.saturating_add(1) < self.threshold => {
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

impl Permit<'_> {
    /// Records the request's outcome; `true` when this failure opened the circuit.
    pub(crate) fn record(mut self, success: bool, now: Instant) -> bool {
        self.probe = false;
        self.breakers.record(&self.host, success, now)
    }
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        if self.probe {
            let mut states = self.breakers.states();
            if let Some(state @ State::HalfOpen { probing: true }) = states.get_mut(&self.host) {
                *state = State::HalfOpen { probing: false };
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fail(b: &Breakers, at: Instant) {
        b.allow("h", at).unwrap().record(false, at);
    }

    #[test]
    fn closed_open_half_open_closed() {
        let b = Breakers::new(3, Duration::from_secs(30));
        let t0 = Instant::now();
        fail(&b, t0);
        fail(&b, t0);
        assert!(b.allow("h", t0).is_ok(), "two failures: still closed");
        fail(&b, t0);
        assert_eq!(b.allow("h", t0 + Duration::from_secs(10)).unwrap_err(), Duration::from_secs(20), "open");
        assert!(b.is_open("h", t0));
        assert!(b.allow("other", t0).is_ok(), "per host");
        let later = t0 + Duration::from_secs(30);
        let probe = b.allow("h", later).unwrap();
        assert!(b.allow("h", later).is_err(), "only one probe at a time");
        probe.record(false, later);
        assert!(b.allow("h", later + Duration::from_secs(1)).is_err(), "failed probe reopens");
        let much_later = later + Duration::from_secs(31);
        b.allow("h", much_later).unwrap().record(true, much_later);
        assert!(b.allow("h", much_later).is_ok() && b.allow("h", much_later).is_ok(), "closed again");
        assert!(!b.is_open("h", much_later));
    }

    #[test]
    fn a_dropped_or_panicking_probe_releases_the_half_open_circuit() {
        let b = Breakers::new(1, Duration::from_secs(30));
        let t0 = Instant::now();
        fail(&b, t0);
        let later = t0 + Duration::from_secs(30);
        drop(b.allow("h", later).unwrap());
        let probe = b.allow("h", later).expect("released by drop: the next caller probes");
        assert!(b.allow("h", later).is_err());
        let unwound = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || {
            let _held = probe;
            panic!("caller panicked mid-request");
        }));
        assert!(unwound.is_err());
        b.allow("h", later).expect("released by unwinding").record(true, later);
        assert!(!b.is_open("h", later));
    }

    #[test]
    fn a_flood_of_hosts_stays_bounded() {
        let b = Breakers::new(1, Duration::from_secs(30));
        let t0 = Instant::now();
        for i in 0..10_000 {
            let host = format!("h{i}.example:443");
            b.allow(&host, t0).unwrap().record(false, t0);
        }
        assert!(b.states().len() <= MAX_HOSTS, "{} hosts remembered", b.states().len());
    }
}
