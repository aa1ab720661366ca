//! One validation pipeline for the async and blocking APIs: the validated-token cache, the
//! hot path, the slow path when keys are needed, the cache fed, the outcome recorded. Only
//! the wait for keys differs between the two APIs.

use identity_model_core::{Error, ValidToken};
use tokio::time::Instant;

use super::Authority;
use super::check::{Need, Step};
use super::token_cache::KeysNow;
use crate::telemetry;

/// How a validation stands after its synchronous start ([`Authority::begin`]).
pub(crate) enum Begun<'t> {
    /// Settled (from the cache or the hot path).
    Done(Result<ValidToken, Error>),
    /// Keys are needed first; `Option<u64>` is the key generation before, for the cache.
    Pending(Need<'t>, Option<u64>),
}

impl Authority {
    /// Validates `token`. With keys cached and fresh this takes no lock and awaits nothing.
    /// Dropping the future at any point leaves every refresh it started running.
    pub async fn validate(&self, token: &str) -> Result<ValidToken, Error> {
        self.validate_with(token, |authority| authority.check(token)).await
    }

    /// Validation around the hot path `step`. The blocking API runs the same
    /// [`Authority::begin`], [`Authority::finish_pending`] and [`Authority::record`] around
    /// its own wait.
    #[inline]
    pub(crate) async fn validate_with<'t>(
        &self,
        token: &'t str,
        step: impl FnOnce(&Self) -> Step<'t>,
    ) -> Result<ValidToken, Error> {
        let started = telemetry::Started::now();
        let result = match self.begin(token, step) {
            Begun::Done(result) => result,
            Begun::Pending(need, before) => self.finish_pending(token, before, self.resolve(need).await),
        };
        self.record(started, &result);
        result
    }

    /// The synchronous start of every validation: the validated-token cache, then `step` (the
    /// hot path); a result it settles is fed to the cache here.
    #[inline(always)]
    pub(crate) fn begin<'t>(&self, token: &'t str, step: impl FnOnce(&Self) -> Step<'t>) -> Begun<'t> {
        if let Some(valid) = self.cached(token) {
            return Begun::Done(Ok(valid));
        }
        let before = self.cache_generation();
        match step(self) {
            Step::Ready(result) => {
                self.remember(token, before, &result);
                Begun::Done(result)
            }
            Step::NeedsRefresh(need) => Begun::Pending(need, before),
        }
    }

    /// The end of a validation that needed the slow path: the cache fed with its result.
    pub(crate) fn finish_pending(
        &self,
        token: &str,
        before: Option<u64>,
        result: Result<ValidToken, Error>,
    ) -> Result<ValidToken, Error> {
        self.remember(token, before, &result);
        result
    }

    /// Records a finished validation (metrics: outcome, kind, duration).
    #[inline(always)]
    pub(crate) fn record(&self, started: telemetry::Started, result: &Result<ValidToken, Error>) {
        let inner = &self.inner;
        telemetry::validated(&inner.source.meters, &inner.durations, inner.source.issuer(), started, result);
    }

    /// The key generation before a validation, for the validated-token cache (nothing is
    /// read when the cache is off: the hot path stays as it was).
    pub(crate) fn cache_generation(&self) -> Option<u64> {
        let inner = &self.inner;
        inner.token_cache.as_ref().and_then(|_| inner.source.peek().as_ref().map(|s| s.generation))
    }

    /// A validation answered by the validated-token cache: only within the staleness bound,
    /// the token's validity window, and while its key is published.
    pub(crate) fn cached(&self, token: &str) -> Option<ValidToken> {
        let inner = &self.inner;
        let cache = inner.token_cache.as_ref()?;
        let snapshot = inner.source.peek();
        let snapshot = snapshot.as_ref()?;
        let now = Instant::now();
        if now > snapshot.stale_after {
            return None;
        }
        let keys =
            KeysNow { generation: snapshot.generation, has_kid: &|kid| snapshot.keys.contains_kid(kid) };
        let valid = cache.get(token, inner.clock.now().as_secs() as f64, &keys)?;
        if now >= snapshot.refresh_at {
            inner.source.refresh_in_background(now);
        }
        Some(valid)
    }

    /// Caches a successful validation with the key generation that verified it: the one seen
    /// before (unchanged since), or, after a cold start, the first one when its keys hold the
    /// token's `kid` (a token without `kid` needs an unchanged generation).
    pub(crate) fn remember(&self, token: &str, before: Option<u64>, result: &Result<ValidToken, Error>) {
        let (Some(cache), Ok(valid)) = (&self.inner.token_cache, result) else {
            return;
        };
        let snapshot = self.inner.source.peek();
        let Some(snapshot) = snapshot.as_ref() else { return };
        let verified_here = match (before, valid.header.kid()) {
            (Some(generation), _) => generation == snapshot.generation,
            (None, Some(kid)) => snapshot.keys.contains_kid(kid),
            (None, None) => false,
        };
        if verified_here {
            let window = self.inner.rules.validity_window(&valid.claims);
            cache.insert(token, valid, window, snapshot.generation);
        }
    }
}
