//! An issuer trusted over HTTP: its rules, clock, hot path and validated-token cache around a
//! [`keys::KeySource`] that fetches, caches and rotates its keys.
//!
//! The hot path ([`Authority::check`], `check.rs`) is one synchronous function: with fresh
//! keys cached it settles the token (`Ready`), otherwise it says what the key source must
//! obtain (`NeedsRefresh`). The async and blocking APIs both run it inside one pipeline
//! (`validate.rs`). Refreshes run in their own tasks ([`crate::flight::SingleFlight`]);
//! callers wait on the shared outcome and may be dropped at any `.await` without changing
//! what others get. docs/AUTHORITY.md maps the files and the key source's states.

mod builder;
mod check;
mod issuers;
mod keys;
mod striped;
mod token_cache;
mod validate;

pub(crate) use keys::later;
pub(crate) use validate::Begun;

use std::fmt;
use std::sync::Arc;

use identity_model_core::{
    DEFAULT_MAX_TOKEN_LEN, DiscoveryDocument, DiscoveryPolicy, Error, IdTokenValidation, KeySet,
    UnverifiedToken, ValidToken, Validation,
};

pub use builder::AuthorityBuilder;
pub use issuers::Issuers;
pub use keys::{KeySetDocument, KeyStatus, KeysFrom, Stats};
pub use striped::StripedCounter;
pub use token_cache::{TokenCacheConfig, TokenCacheStats};

use crate::clock::Clock;
use crate::config::{CacheConfig, CircuitConfig, HttpConfig};
use crate::http::Fetcher;
use crate::http::transport::HttpTransport;
use crate::telemetry;
use keys::KeySource;
use token_cache::TokenCache;

pub(crate) struct Inner {
    rules: Validation,
    clock: Arc<dyn Clock>,
    source: Arc<KeySource>,
    token_cache: Option<TokenCache>,
    #[cfg_attr(not(feature = "metrics"), allow(dead_code))]
    durations: telemetry::Durations,
}

/// A pinned issuer: validates its tokens with keys fetched through discovery.
#[derive(Clone)]
pub struct Authority {
    inner: Arc<Inner>,
}

impl fmt::Debug for Authority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Authority").field("issuer", &self.issuer()).finish_non_exhaustive()
    }
}

impl Authority {
    /// The time on this authority's clock (the one `exp`, `nbf` and `iat` are judged by).
    pub fn now(&self) -> identity_model_core::UnixTime {
        self.inner.clock.now()
    }

    /// The issuer.
    pub fn issuer(&self) -> &str {
        self.inner.source.issuer()
    }

    /// Counters.
    pub fn stats(&self) -> &Stats {
        &self.inner.source.stats
    }

    /// The validation rules.
    pub fn rules(&self) -> &Validation {
        &self.inner.rules
    }

    /// Forgets cached metadata, keys and remembered kids. A refresh already running still
    /// lands its result.
    pub async fn clear(&self) {
        if let Some(cache) = &self.inner.token_cache {
            cache.clear();
        }
        self.inner.source.clear();
    }

    /// Whether `kid` is remembered as missing from the current keys (a refresh that started
    /// after a token with it arrived succeeded without it). For tests and diagnostics.
    pub fn is_known_missing(&self, kid: &str) -> bool {
        self.inner.source.is_known_missing(kid)
    }

    /// Makes sure keys are loaded and fresh: fetches them (or joins the fetch in flight) when
    /// none are cached or the cached ones are past their freshness, and does nothing
    /// otherwise. A sidecar calls it at start and, while the provider is down, again with
    /// its own backoff; within the refresh failure backoff it answers the last failure
    /// without a request. Dropping the future leaves the fetch running.
    pub async fn ensure_fresh_keys(&self) -> Result<(), Error> {
        self.inner.source.ensure_fresh().await
    }

    /// What the cached keys are worth right now, without any request: for readiness checks
    /// (`idm serve`'s `/readyz`).
    pub fn key_status(&self) -> KeyStatus {
        self.inner.source.status()
    }

    /// Counters of the validated-token cache, when it is on.
    pub fn token_cache_stats(&self) -> Option<&TokenCacheStats> {
        self.inner.token_cache.as_ref().map(|cache| &cache.stats)
    }

    /// The current key set, fetched through discovery when none is cached.
    pub async fn keys(&self) -> Result<Arc<KeySet>, Error> {
        self.inner.source.keys().await
    }

    /// Judges a token with this issuer's keys by `verify` (an error of kind `key_not_found`
    /// or `invalid_signature` means "not these keys"), fetching them as validation would,
    /// with the same kid-miss decision (for the token client's ID-token checks).
    pub(crate) async fn with_keys<T>(
        &self,
        kid: Option<&str>,
        verify: impl Fn(&KeySet) -> Result<T, Error>,
    ) -> Result<T, Error> {
        self.inner.source.verify(kid, verify).await
    }

    /// Validates an ID token (OpenID Connect Core section 3.1.3.7) by `rules` (client id,
    /// `nonce`, `max_age`, `at_hash`, `c_hash`) with this issuer's keys, fetched and refetched
    /// exactly as for access tokens (the same unknown-kid decision). The issuer in `rules`
    /// is the one checked; build them with [`Authority::issuer`].
    pub async fn validate_id_token(
        &self,
        token: &str,
        rules: &IdTokenValidation,
    ) -> Result<ValidToken, Error> {
        let kid = UnverifiedToken::parse(token, DEFAULT_MAX_TOKEN_LEN)?.kid().map(str::to_owned);
        let now = self.now();
        self.with_keys(kid.as_deref(), |keys| rules.validate(token, keys, now)).await
    }

    /// Validates a back-channel logout token (OpenID Connect Back-Channel Logout 1.0 section
    /// 2.6) for `client_id` with this issuer's keys. Replay is the caller's to refuse:
    /// [`crate::record_logout`] with a shared [`crate::ReplayStore`].
    pub async fn validate_logout_token(&self, token: &str, client_id: &str) -> Result<ValidToken, Error> {
        let kid = UnverifiedToken::parse(token, DEFAULT_MAX_TOKEN_LEN)?.kid().map(str::to_owned);
        let now = self.now();
        let issuer = self.issuer();
        let verify =
            |keys: &KeySet| identity_model_core::validate_logout_token(token, keys, issuer, client_id, now);
        self.with_keys(kid.as_deref(), verify).await
    }

    /// Fetches and checks the discovery document (not cached; for tools and diagnostics).
    pub async fn discover(&self) -> Result<DiscoveryDocument, Error> {
        self.inner.source.discover().await
    }

    /// The discovery document, cached for its freshness (the same fetch the keys use). When
    /// the provider cannot be reached, the last good document is served (so a reachable
    /// `jwks_uri` still serves keys while discovery is down).
    pub async fn metadata(&self) -> Result<Arc<DiscoveryDocument>, Error> {
        self.inner.source.metadata().await
    }

    /// Fetches a key set from an explicit URL with this authority's policy and limits.
    pub async fn fetch_key_set(&self, url: &str) -> Result<KeySet, Error> {
        self.inner.source.fetch_key_set(url).await
    }

    /// [`Authority::fetch_key_set`] with the usable keys' JWKs as the document gave them and
    /// the response's `Cache-Control` (for tools and bindings that show the document).
    pub async fn fetch_key_set_document(&self, url: &str) -> Result<KeySetDocument, Error> {
        self.inner.source.fetch_key_set_document(url).await
    }

    /// Where this authority's keys come from.
    pub fn keys_from(&self) -> &KeysFrom {
        self.inner.source.keys_from()
    }

    /// The transport this authority fetches with (shared with token clients built on it).
    pub fn transport(&self) -> Arc<dyn HttpTransport> {
        Arc::clone(self.fetcher().transport())
    }

    pub(crate) fn fetcher(&self) -> &Arc<Fetcher> {
        self.inner.source.fetcher()
    }

    /// How requests are sent.
    pub fn config(&self) -> &HttpConfig {
        self.fetcher().config()
    }

    /// What is cached and for how long.
    pub fn cache(&self) -> &CacheConfig {
        self.inner.source.cache()
    }

    /// The circuit breaker settings.
    pub fn circuit(&self) -> CircuitConfig {
        self.fetcher().circuit()
    }

    /// The URL policy (HTTPS, loopback, private addresses) for every URL it fetches.
    pub fn policy(&self) -> &DiscoveryPolicy {
        self.inner.source.policy()
    }
}
