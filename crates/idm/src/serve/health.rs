//! Readiness: keys are loaded at start and kept fresh by one keeper task per issuer, which
//! keeps trying with backoff while the provider is down; `/readyz` reports what each issuer's
//! keys are worth.
//!
//! The schedule while keys cannot be obtained: 0.5 s, 1 s, 2 s, 4 s, then every 5 s (each
//! with equal jitter), counting only attempts that reached the provider; an attempt held back
//! by an open circuit (which opens for at most 5 s here) waits 0.25 s without lengthening it.
//! A provider that comes back is seen within 5 s plus one fetch.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use axum::response::Response;
use http::StatusCode;
use identity_model::{Authority, Backoff};
use serde_json::{Value, json};

/// How often a keeper looks at keys that are fine.
const LOOK_EVERY: Duration = Duration::from_secs(5);

/// The longest wait between two attempts while keys cannot be obtained: a provider that is
/// back is seen within it plus one fetch. The sidecar's circuit breaker opens for at most
/// this long too.
pub(crate) const READY_BACKOFF_CAP: Duration = Duration::from_secs(5);

/// The wait after an attempt that sent no request (an open circuit, or the memory of a
/// failure a moment ago): short, and it does not lengthen the backoff.
const HELD_BACK_WAIT: Duration = Duration::from_millis(250);

/// What the keeper waits after its next attempt: a backoff that only grows with attempts that
/// reached the provider and failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Schedule {
    failures: u32,
}

impl Schedule {
    pub(crate) fn new() -> Schedule {
        Schedule { failures: 0 }
    }

    /// The wait after an attempt. `sent` says whether it made a request; `jitter` gives a
    /// number in `[0, 1)` (asked only for a backoff). Success waits [`LOOK_EVERY`]; a failure that sent a request backs off with
    /// equal jitter from 0.5 s doubling to [`READY_BACKOFF_CAP`]; one that sent nothing waits
    /// [`HELD_BACK_WAIT`] and leaves the backoff as it was.
    pub(crate) fn after(&mut self, ok: bool, sent: bool, jitter: impl FnOnce() -> f64) -> Duration {
        if ok {
            self.failures = 0;
            return LOOK_EVERY;
        }
        if !sent {
            return HELD_BACK_WAIT;
        }
        let backoff =
            Backoff { base: Duration::from_millis(500), cap: READY_BACKOFF_CAP, ..Backoff::default() };
        let wait = backoff.equal_jittered(self.failures.min(16), jitter());
        self.failures = self.failures.saturating_add(1);
        wait.min(READY_BACKOFF_CAP)
    }
}

/// What a keeper is doing, for `/readyz`: when its next attempt is due.
#[derive(Debug)]
pub(crate) struct Keeper {
    /// Milliseconds since [`epoch`] of the next attempt (`u64::MAX`: none scheduled yet).
    next_attempt_ms: AtomicU64,
}

/// The process's reference instant for [`Keeper`] times.
fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

impl Keeper {
    pub(crate) fn new() -> Keeper {
        Keeper { next_attempt_ms: AtomicU64::new(u64::MAX) }
    }

    fn schedule(&self, wait: Duration) {
        let at = (Instant::now() + wait).saturating_duration_since(epoch());
        self.next_attempt_ms.store(u64::try_from(at.as_millis()).unwrap_or(u64::MAX - 1), Ordering::Relaxed);
    }

    /// Milliseconds until the next attempt, when one is scheduled.
    fn next_attempt_in_ms(&self) -> Option<u64> {
        let at = self.next_attempt_ms.load(Ordering::Relaxed);
        let now =
            u64::try_from(Instant::now().saturating_duration_since(epoch()).as_millis()).unwrap_or(u64::MAX);
        (at != u64::MAX).then(|| at.saturating_sub(now))
    }
}

/// Loads `authority`'s keys, then keeps them fresh: on failure it tries again on the
/// [`Schedule`], forever, telling `keeper` when its next attempt is due. Runs until the
/// process stops.
pub(crate) async fn keep(authority: Authority, keeper: Arc<Keeper>) {
    let mut schedule = Schedule::new();
    let mut reported = false;
    loop {
        let before = authority.stats().requests.load(Ordering::Relaxed);
        let outcome = authority.ensure_fresh_keys().await;
        let sent = authority.stats().requests.load(Ordering::Relaxed) != before;
        match &outcome {
            Ok(()) if reported => {
                tracing::info!(issuer = authority.issuer(), "keys loaded: ready");
                reported = false;
            }
            Err(e) if !reported => {
                tracing::warn!(issuer = authority.issuer(), error = %e, kind = e.kind().as_str(),
                    "keys cannot be obtained: not ready, trying again with backoff (at most 5 s apart)");
                reported = true;
            }
            _ => {}
        }
        let wait = schedule.after(outcome.is_ok(), sent, identity_model::jitter_unit);
        keeper.schedule(wait);
        tokio::time::sleep(wait).await;
    }
}

/// `/readyz`: 200 when every issuer has usable keys, 503 otherwise, with a report per issuer
/// (keys, age, stale, last error, and when keys are tried again: the keeper's next attempt and
/// how long an open circuit holds requests back; a provider that is back is seen within the
/// larger of the two plus one fetch).
/// A configured replay store must answer too (`replay_store`).
pub(crate) fn readyz(
    authorities: &[Authority],
    keepers: &[Arc<Keeper>],
    redis: Option<&identity_model::RedisClient>,
    last_reload: Value,
) -> Response {
    let mut ready = true;
    let issuers: Vec<Value> = authorities
        .iter()
        .zip(keepers)
        .map(|(authority, keeper)| {
            let status = authority.key_status();
            ready &= status.usable;
            json!({
                "issuer": authority.issuer(),
                "keys_from": authority.keys_from().as_str(),
                "ready": status.usable,
                "keys": status.keys,
                "age_secs": status.age.map(|age| age.as_secs()),
                "stale": status.stale,
                "last_error": status.last_error,
                "next_attempt_in_ms": keeper.next_attempt_in_ms(),
                "circuit_open_for_ms": u64::try_from(authority.circuit().open_for.as_millis()).unwrap_or(u64::MAX),
            })
        })
        .collect();
    let mut report = json!({"ready": ready, "issuers": issuers, "last_reload": last_reload});
    if let Some(client) = redis {
        let (store_ready, store_report) = super::shared::readiness(client);
        ready &= store_ready;
        report["ready"] = json!(ready);
        report["replay_store"] = store_report;
    }
    let code = if ready { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    super::answer::json(code, &report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attempts_held_back_do_not_lengthen_the_backoff() {
        let mut schedule = Schedule::new();
        // Jitter 0.999: the longest waits.
        let waits: Vec<u128> = (0..8).map(|_| schedule.after(false, true, || 0.999).as_millis()).collect();
        assert!(waits.windows(2).all(|w| w[0] <= w[1]), "{waits:?}");
        assert!(waits.iter().all(|w| *w <= READY_BACKOFF_CAP.as_millis()), "{waits:?}");
        assert!(waits[0] <= 500 && waits[7] >= 4_900, "{waits:?}");

        let mut schedule = Schedule::new();
        let first = schedule.after(false, true, || 0.999);
        for _ in 0..100 {
            assert_eq!(schedule.after(false, false, || 0.999), HELD_BACK_WAIT);
        }
        let second = schedule.after(false, true, || 0.999);
        assert!(second <= first * 2 + Duration::from_millis(1), "{first:?} then {second:?}");
        assert_eq!(schedule.after(true, true, || 0.5), LOOK_EVERY);
        assert!(
            schedule.after(false, true, || 0.999) <= Duration::from_millis(500),
            "success resets the backoff"
        );
    }
}
