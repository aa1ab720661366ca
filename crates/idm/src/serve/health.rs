//! Readiness: keys are loaded at start and kept fresh by one keeper task per issuer, which
//! keeps trying with backoff while the provider is down; `/readyz` reports what each issuer's
//! keys are worth.

use std::time::Duration;

use axum::response::Response;
use http::StatusCode;
use identity_model::{Authority, Backoff};
use serde_json::{Value, json};

/// How often a keeper looks at keys that are fine.
const LOOK_EVERY: Duration = Duration::from_secs(5);

/// Loads `authority`'s keys, then keeps them fresh: on failure it tries again after a
/// jittered backoff (0.5 s doubling to 30 s), forever. Runs until the process stops.
pub(crate) async fn keep(authority: Authority) {
    let backoff =
        Backoff { base: Duration::from_millis(500), cap: Duration::from_secs(30), ..Backoff::default() };
    let mut failures: u32 = 0;
    loop {
        match authority.ensure_fresh_keys().await {
            Ok(()) => {
                if failures > 0 {
                    tracing::info!(issuer = authority.issuer(), "keys loaded: ready");
                }
                failures = 0;
                tokio::time::sleep(LOOK_EVERY).await;
            }
            Err(e) => {
                if failures == 0 {
                    tracing::warn!(issuer = authority.issuer(), error = %e, kind = e.kind().as_str(),
                        "keys cannot be obtained: not ready, trying again with backoff");
                }
                let wait = backoff.equal_jittered(failures.min(16), jitter());
                failures = failures.saturating_add(1);
                tokio::time::sleep(wait).await;
            }
        }
    }
}

/// A uniform number in `[0, 1)` for the backoff's jitter (from the OS's randomness).
fn jitter() -> f64 {
    let mut bytes = [0u8; 8];
    if aws_lc_rs::rand::fill(&mut bytes).is_err() {
        return 0.5;
    }
    (u64::from_le_bytes(bytes) >> 11) as f64 / (1u64 << 53) as f64
}

/// `/readyz`: 200 when every issuer has usable keys, 503 otherwise, with a report per issuer
/// (keys, age, stale, last error).
pub(crate) fn readyz(authorities: &[Authority]) -> Response {
    let mut ready = true;
    let issuers: Vec<Value> = authorities
        .iter()
        .map(|authority| {
            let status = authority.key_status();
            ready &= status.usable;
            json!({
                "issuer": authority.issuer(),
                "ready": status.usable,
                "keys": status.keys,
                "age_secs": status.age.map(|age| age.as_secs()),
                "stale": status.stale,
                "last_error": status.last_error,
            })
        })
        .collect();
    let code = if ready { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    super::answer::json(code, &json!({"ready": ready, "issuers": issuers}))
}
