//! The per-client rate limit (off by default): a token bucket per `client_id` (or `sub`) with
//! `governor`, bounded in how many clients it remembers.

use std::num::NonZeroU32;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use identity_model::ValidToken;

use super::config::{LimitKey, RateLimitPlan};

/// Most clients remembered. Past it, buckets that are full again are forgotten; if every one
/// is still draining, a new client is refused (fail closed) until some refill.
pub(crate) const MAX_CLIENTS: usize = 100_000;

#[derive(Debug)]
pub(crate) struct Limiter {
    buckets: DefaultKeyedRateLimiter<String>,
    key: LimitKey,
    clock: DefaultClock,
}

/// Why a check is held back: seconds until the bucket has room.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Wait(pub(crate) u64);

impl Limiter {
    pub(crate) fn new(plan: RateLimitPlan) -> Limiter {
        let per_second = NonZeroU32::new(plan.per_second).unwrap_or(NonZeroU32::MIN);
        let burst = NonZeroU32::new(plan.burst).unwrap_or(NonZeroU32::MIN);
        let quota = Quota::per_second(per_second).allow_burst(burst);
        Limiter { buckets: RateLimiter::keyed(quota), key: plan.key, clock: DefaultClock::default() }
    }

    /// Takes one check from the token's bucket (`client_id`, else `azp`, else `sub`, for the
    /// client key; `sub` for the subject key). A token with neither shares one bucket.
    pub(crate) fn check(&self, valid: &ValidToken) -> Result<(), Wait> {
        let claims = &valid.claims;
        let text = |name: &str| claims.get(name).and_then(|v| v.as_str());
        let who = match self.key {
            LimitKey::ClientId => text("client_id").or_else(|| text("azp")).or_else(|| claims.sub()),
            LimitKey::Subject => claims.sub(),
        };
        let key = who.unwrap_or("").to_owned();
        if self.buckets.len() >= MAX_CLIENTS {
            self.buckets.retain_recent();
            if self.buckets.len() >= MAX_CLIENTS {
                return Err(Wait(1));
            }
        }
        self.buckets.check_key(&key).map_err(|not_until| {
            let wait = not_until.wait_time_from(self.clock.now());
            Wait(wait.as_secs() + u64::from(wait.subsec_nanos() > 0))
        })
    }

    /// Forgets buckets that are full again (called now and then).
    pub(crate) fn tidy(&self) {
        self.buckets.retain_recent();
        self.buckets.shrink_to_fit();
    }
}
