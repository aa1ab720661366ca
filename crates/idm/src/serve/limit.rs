//! The per-client rate limit (off by default): a token bucket per `client_id` (or `sub`) with
//! `governor`, bounded in how many clients it remembers; or, shared by every instance, the
//! same algorithm in Redis ([`RedisRateLimiter`]), with this instance's share in process (or
//! a refusal) while Redis cannot be asked.

use std::num::NonZeroU32;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use identity_model::{Admission, RedisClient, RedisRateLimiter, ValidToken};

use super::config::{LimitKey, RateLimitPlan, SharedLimitPlan};

/// Most clients remembered. Past it, buckets that are full again are forgotten; if every one
/// is still draining, a new client is refused (fail closed) until some refill.
pub(crate) const MAX_CLIENTS: usize = 100_000;

#[derive(Debug)]
pub(crate) struct Limiter {
    /// In process: the limit itself, or, when shared, this instance's fallback share.
    buckets: DefaultKeyedRateLimiter<String>,
    key: LimitKey,
    clock: DefaultClock,
    shared: Option<Shared>,
}

#[derive(Debug)]
struct Shared {
    redis: RedisRateLimiter,
    refuse: bool,
    fallbacks: metrics::Counter,
}

/// Why a check is held back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Held {
    /// Seconds until the bucket has room (429).
    Wait(u64),
    /// The shared limit cannot be asked and the configuration says refuse (503).
    Unavailable(String),
}

impl Limiter {
    /// The limiter of `plan`; a shared one keeps its buckets through `redis` under `prefix`.
    pub(crate) fn new(plan: RateLimitPlan, redis: Option<(&RedisClient, &str)>) -> Result<Limiter, String> {
        let (rate, burst) = match plan.shared {
            // The fallback share keeps the burst in the same proportion.
            Some(SharedLimitPlan::Fallback(share)) => {
                let burst = u64::from(plan.burst) * u64::from(share) / u64::from(plan.per_second.max(1));
                (share, u32::try_from(burst).unwrap_or(u32::MAX).max(1))
            }
            _ => (plan.per_second, plan.burst),
        };
        let quota = Quota::per_second(NonZeroU32::new(rate).unwrap_or(NonZeroU32::MIN))
            .allow_burst(NonZeroU32::new(burst).unwrap_or(NonZeroU32::MIN));
        let shared = match (plan.shared, redis) {
            (None, _) => None,
            (Some(_), None) => return Err("a shared rate limit needs a Redis".into()),
            (Some(on_failure), Some((client, prefix))) => Some(Shared {
                redis: RedisRateLimiter::new(
                    client.clone(),
                    &format!("{prefix}:limit"),
                    plan.per_second,
                    plan.burst,
                )
                .map_err(|e| e.message().to_owned())?,
                refuse: on_failure == SharedLimitPlan::Refuse,
                fallbacks: metrics::counter!("idm_serve_rate_limit_fallbacks_total"),
            }),
        };
        Ok(Limiter {
            buckets: RateLimiter::keyed(quota),
            key: plan.key,
            clock: DefaultClock::default(),
            shared,
        })
    }

    /// Takes one check from the token's bucket (`client_id`, else `azp`, else `sub`, for the
    /// client key; `sub` for the subject key). A token with neither shares one bucket.
    pub(crate) async fn check(&self, valid: &ValidToken) -> Result<(), Held> {
        let claims = &valid.claims;
        let text = |name: &str| claims.get(name).and_then(|v| v.as_str());
        let who = match self.key {
            LimitKey::ClientId => text("client_id").or_else(|| text("azp")).or_else(|| claims.sub()),
            LimitKey::Subject => claims.sub(),
        };
        let who = who.unwrap_or("");
        if let Some(shared) = &self.shared {
            match shared.redis.check(who).await {
                Ok(Admission::Admitted) => return Ok(()),
                Ok(Admission::Limited(wait)) => {
                    return Err(Held::Wait(wait.as_secs() + u64::from(wait.subsec_nanos() > 0)));
                }
                Err(e) if shared.refuse => return Err(Held::Unavailable(e.message().to_owned())),
                Err(e) => {
                    shared.fallbacks.increment(1);
                    tracing::warn!(error = %e, "shared rate limit unavailable: this instance limits alone at its share");
                }
            }
        }
        let key = who.to_owned();
        if self.buckets.len() >= MAX_CLIENTS {
            self.buckets.retain_recent();
            if self.buckets.len() >= MAX_CLIENTS {
                return Err(Held::Wait(1));
            }
        }
        self.buckets.check_key(&key).map_err(|not_until| {
            let wait = not_until.wait_time_from(self.clock.now());
            Held::Wait(wait.as_secs() + u64::from(wait.subsec_nanos() > 0))
        })
    }

    /// Forgets buckets that are full again (called now and then).
    pub(crate) fn tidy(&self) {
        self.buckets.retain_recent();
        self.buckets.shrink_to_fit();
    }
}
