//! An issuer trusted over HTTP: discovery, key set fetch and cache, and validation.
//!
//! Reads take a lock-free snapshot (`ArcSwap`); only fetches take the refresh lock, and a
//! caller that waited on it uses the snapshot the holder produced instead of fetching again
//! (single flight). Unknown `kid`s refetch at most once per cooldown. A failed refresh keeps
//! the previous keys (last known good) up to `max_staleness`.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use arc_swap::ArcSwapOption;
use identity_model_core::{
    DiscoveryDocument, DiscoveryPolicy, Error, ErrorKind, KeySet, KeySetLimits, MetadataKind, ValidToken,
    Validation, discovery_url, media_type,
};
use tokio::sync::Mutex;
use tokio::time::Instant;

use crate::circuit::Breakers;
use crate::clock::{Clock, SystemClock};
use crate::config::HttpConfig;
use crate::retry::{Backoff, RetryDecision, jitter_unit, parse_retry_after};
use crate::transport::{HttpRequest, HttpResponse, HttpTransport, ReqwestTransport};

/// Counters per issuer.
#[derive(Debug, Default)]
pub struct Stats {
    /// Validations answered from the cached keys.
    pub hits: AtomicU64,
    /// Validations that found no keys and had to fetch.
    pub misses: AtomicU64,
    /// Key set fetches started.
    pub refreshes: AtomicU64,
    /// Callers that waited for another caller's fetch instead of fetching.
    pub coalesced: AtomicU64,
    /// Tokens whose `kid` was not in the cached keys.
    pub kid_misses: AtomicU64,
    /// Validations served from keys past their freshness because a refresh failed.
    pub stale_serves: AtomicU64,
    /// Failed fetches.
    pub fetch_errors: AtomicU64,
    /// Discovery documents fetched.
    pub discovery_fetches: AtomicU64,
    /// Requests sent again after a transient failure.
    pub retries: AtomicU64,
    /// Times a host's circuit opened.
    pub circuit_opens: AtomicU64,
    /// Unknown kids answered from the negative cache (no lock, no fetch).
    pub negative_kid_hits: AtomicU64,
}

/// Kids no key had after a refetch, for one key generation: bounded, and each entry short-lived.
#[derive(Debug, Default)]
struct MissingKids {
    generation: u64,
    kids: std::collections::HashMap<String, Instant>,
}

const MAX_MISSING_KIDS: usize = 1024;
const MISSING_KID_TTL: Duration = Duration::from_secs(60);

struct Snapshot {
    keys: Arc<KeySet>,
    generation: u64,
    fetched_at: Instant,
    fresh_until: Instant,
    /// When a background refresh starts: a random point in the last 10-20 % of the freshness,
    /// so keys are renewed before they expire and instances do not refresh in lockstep.
    refresh_at: Instant,
}

impl Snapshot {
    fn new(keys: Arc<KeySet>, generation: u64, now: Instant, ttl: Duration) -> Snapshot {
        let ahead = ttl.mul_f64(0.1 + 0.1 * jitter_unit());
        Snapshot { keys, generation, fetched_at: now, fresh_until: now + ttl, refresh_at: now + ttl - ahead }
    }
}

#[derive(Default)]
struct RefreshState {
    jwks_uri: Option<(String, Instant)>,
    etag: Option<String>,
    last_attempt: Option<Instant>,
    last_failure: Option<Instant>,
}

struct Inner {
    issuer: String,
    metadata: MetadataKind,
    rules: Validation,
    policy: DiscoveryPolicy,
    config: HttpConfig,
    max_staleness: Duration,
    transport: Arc<dyn HttpTransport>,
    clock: Arc<dyn Clock>,
    snapshot: ArcSwapOption<Snapshot>,
    /// The last good discovery document and its freshness (served past it when the provider
    /// is down); read without a lock.
    document: ArcSwapOption<(Arc<DiscoveryDocument>, Instant)>,
    refresh: Mutex<RefreshState>,
    last_kid_miss_fetch: AtomicU64,
    started: Instant,
    breakers: Breakers,
    missing_kids: std::sync::Mutex<MissingKids>,
    stats: Stats,
}

/// A pinned issuer: validates its tokens with keys fetched through discovery.
#[derive(Clone)]
pub struct Authority {
    inner: Arc<Inner>,
}

impl fmt::Debug for Authority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Authority").field("issuer", &self.inner.issuer).finish_non_exhaustive()
    }
}

/// Builds an [`Authority`].
#[derive(Debug)]
pub struct AuthorityBuilder {
    issuer: String,
    metadata: MetadataKind,
    rules: Validation,
    policy: DiscoveryPolicy,
    config: HttpConfig,
    max_staleness: Duration,
    transport: Option<Arc<dyn HttpTransport>>,
    clock: Arc<dyn Clock>,
}

impl Authority {
    /// Starts building an authority for `issuer` (`iss` must equal it exactly).
    pub fn builder(issuer: impl Into<String>) -> AuthorityBuilder {
        let issuer = issuer.into();
        AuthorityBuilder {
            metadata: MetadataKind::OpenId,
            rules: Validation::new(issuer.clone()),
            issuer,
            policy: DiscoveryPolicy::default(),
            config: HttpConfig::default(),
            max_staleness: Duration::from_secs(24 * 3600),
            transport: None,
            clock: Arc::new(SystemClock),
        }
    }
}

impl AuthorityBuilder {
    /// Validation rules (the issuer is pinned to the authority's whatever these say).
    pub fn rules(mut self, rules: Validation) -> Self {
        self.rules = rules;
        self
    }

    /// Which metadata document to read: OpenID Connect Discovery (default) or RFC 8414
    /// (`/.well-known/oauth-authorization-server`).
    pub fn metadata(mut self, kind: MetadataKind) -> Self {
        self.metadata = kind;
        self
    }

    /// The discovery policy.
    pub fn policy(mut self, policy: DiscoveryPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// HTTP and cache settings.
    pub fn config(mut self, config: HttpConfig) -> Self {
        self.config = config;
        self
    }

    /// How long the last good keys are served while the provider cannot be reached.
    pub fn max_staleness(mut self, max: Duration) -> Self {
        self.max_staleness = max;
        self
    }

    /// A transport other than the default reqwest one.
    pub fn transport(mut self, transport: Arc<dyn HttpTransport>) -> Self {
        self.transport = Some(transport);
        self
    }

    /// The wall clock for `exp`/`nbf`/`iat`.
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Checks the issuer URL against the policy and builds.
    pub fn build(self) -> Result<Authority, Error> {
        self.policy.check_url(&self.issuer, "issuer")?;
        let transport = match self.transport {
            Some(t) => t,
            None => Arc::new(
                ReqwestTransport::new(&self.config)
                    .map_err(|e| Error::new(ErrorKind::KeysUnavailable, e.message.clone()).with_source(e))?,
            ),
        };
        let rules = self.rules;
        Ok(Authority {
            inner: Arc::new(Inner {
                rules,
                metadata: self.metadata,
                issuer: self.issuer,
                policy: self.policy,
                config: self.config.clone(),
                max_staleness: self.max_staleness,
                transport,
                clock: self.clock,
                snapshot: ArcSwapOption::empty(),
                document: ArcSwapOption::empty(),
                refresh: Mutex::new(RefreshState::default()),
                last_kid_miss_fetch: AtomicU64::new(u64::MAX),
                started: Instant::now(),
                missing_kids: std::sync::Mutex::new(MissingKids::default()),
                breakers: Breakers::new(self.config.circuit_failure_threshold, self.config.circuit_open_for),
                stats: Stats::default(),
            }),
        })
    }
}

fn unavailable(message: impl Into<String>) -> Error {
    Error::new(ErrorKind::KeysUnavailable, message.into())
}

/// `max-age` from a Cache-Control value (`None` without one, or with `no-store`/`no-cache`).
fn max_age(cache_control: Option<&str>) -> Option<Option<Duration>> {
    let value = cache_control?;
    let mut age = None;
    for directive in value.split(',').map(str::trim) {
        let lower = directive.to_ascii_lowercase();
        if lower == "no-store" || lower == "no-cache" {
            return Some(None);
        }
        if let Some(secs) = lower.strip_prefix("max-age=") {
            age = secs.trim_matches('"').parse::<u64>().ok().map(Duration::from_secs);
        }
    }
    age.map(Some)
}

/// Freshness of a response: its `max-age` (else its `Expires`), clamped to `[floor, cap]`; the
/// configured `default` when it says nothing; the floor for `no-store`/`no-cache`.
fn freshness(response: &HttpResponse, default: Duration, floor: Duration, cap: Duration) -> Duration {
    let declared = match max_age(response.cache_control.as_deref()) {
        Some(Some(age)) => Some(age),
        Some(None) => Some(Duration::ZERO),
        None => response.expires.as_deref().map(|expires| {
            httpdate::parse_http_date(expires)
                .ok()
                .and_then(|at| at.duration_since(std::time::SystemTime::now()).ok())
                .unwrap_or(Duration::ZERO)
        }),
    };
    declared.unwrap_or(default).clamp(floor, cap.max(floor))
}

impl Authority {
    /// The issuer.
    pub fn issuer(&self) -> &str {
        &self.inner.issuer
    }

    /// Counters.
    pub fn stats(&self) -> &Stats {
        &self.inner.stats
    }

    /// Forgets cached metadata and keys.
    pub async fn clear(&self) {
        let mut state = self.inner.refresh.lock().await;
        *state = RefreshState::default();
        self.inner.snapshot.store(None);
        self.inner.document.store(None);
    }

    /// Fetches and checks the discovery document (not cached; for tools and diagnostics).
    pub async fn discover(&self) -> Result<DiscoveryDocument, Error> {
        self.discovery_response().await.map(|(document, _)| document)
    }

    async fn discovery_response(&self) -> Result<(DiscoveryDocument, HttpResponse), Error> {
        let inner = &self.inner;
        let url = discovery_url(&inner.issuer, inner.metadata)?;
        let response = self.get(&url, "application/json", None, 1024 * 1024).await?;
        inner.stats.discovery_fetches.fetch_add(1, Ordering::Relaxed);
        media_type::check(response.content_type.as_deref(), media_type::JSON)?;
        let document = DiscoveryDocument::from_json(&response.body, &inner.issuer, &inner.policy)?;
        Ok((document, response))
    }

    /// The current key set, fetched through discovery when none is cached.
    pub async fn keys(&self) -> Result<Arc<KeySet>, Error> {
        match self.inner.snapshot.load_full() {
            Some(snapshot) => Ok(Arc::clone(&snapshot.keys)),
            None => Ok(Arc::clone(&self.refresh(None).await?.keys)),
        }
    }

    /// The key set again from the provider (one request shared by concurrent callers, within
    /// the failure backoff), for a token signed with a key the cached set lacks.
    pub(crate) async fn refetch_keys(&self) -> Result<Arc<KeySet>, Error> {
        let seen = self.inner.snapshot.load().as_ref().map(|s| s.generation);
        Ok(Arc::clone(&self.refresh(seen).await?.keys))
    }

    /// Fetches a key set from an explicit URL with this authority's policy and limits.
    pub async fn fetch_key_set(&self, url: &str) -> Result<KeySet, Error> {
        let inner = &self.inner;
        let response = self
            .get(url, "application/jwk-set+json, application/json", None, inner.config.max_jwks_size)
            .await?;
        media_type::check(response.content_type.as_deref(), media_type::JWK_SET)?;
        let limits =
            KeySetLimits { max_bytes: inner.config.max_jwks_size, max_keys: inner.config.max_jwks_keys };
        KeySet::from_json_with(&response.body, limits)
    }

    /// The hot path alone: `Some` when fresh keys are cached and they settle the token (any
    /// result but an unknown `kid`), `None` when a fetch may be needed. Never blocks.
    pub(crate) fn validate_cached(&self, token: &str) -> Option<Result<ValidToken, Error>> {
        let inner = &self.inner;
        let snapshot = inner.snapshot.load_full()?;
        if Instant::now() >= snapshot.fresh_until {
            return None;
        }
        match inner.rules.validate(token, &snapshot.keys, inner.clock.now()) {
            Err(e) if matches!(e.kind(), ErrorKind::KeyNotFound | ErrorKind::InvalidSignature) => None,
            result => {
                inner.stats.hits.fetch_add(1, Ordering::Relaxed);
                Some(result)
            }
        }
    }

    /// Validates `token`. With keys cached and fresh this takes no lock and awaits nothing.
    pub async fn validate(&self, token: &str) -> Result<ValidToken, Error> {
        let inner = &self.inner;
        let now = Instant::now();
        let (mut snapshot, cached) = match inner.snapshot.load_full() {
            Some(s) => (s, true),
            None => {
                inner.stats.misses.fetch_add(1, Ordering::Relaxed);
                (self.refresh(None).await?, false)
            }
        };
        if now.duration_since(snapshot.fetched_at) > inner.max_staleness {
            // Too old to trust: like a cold start, refresh now or fail closed.
            snapshot = self.refresh(Some(snapshot.generation)).await.map_err(|e| {
                unavailable(format!(
                    "the last good keys are older than the allowed staleness ({})",
                    e.message()
                ))
            })?;
        } else if now >= snapshot.fresh_until {
            inner.stats.stale_serves.fetch_add(1, Ordering::Relaxed);
            self.refresh_ahead(&snapshot);
        } else {
            if cached {
                inner.stats.hits.fetch_add(1, Ordering::Relaxed);
            }
            if now >= snapshot.refresh_at {
                self.refresh_ahead(&snapshot);
            }
        }
        match inner.rules.validate(token, &snapshot.keys, inner.clock.now()) {
            // An unknown kid, or a signature that fails on a cached key (the provider may have
            // re-keyed under the same kid): one refetch, under the same cooldown budget.
            Err(e) if matches!(e.kind(), ErrorKind::KeyNotFound | ErrorKind::InvalidSignature) => {
                self.after_kid_miss(token, &snapshot, e).await
            }
            other => other,
        }
    }

    async fn after_kid_miss(
        &self,
        token: &str,
        seen: &Arc<Snapshot>,
        miss: Error,
    ) -> Result<ValidToken, Error> {
        let inner = &self.inner;
        inner.stats.kid_misses.fetch_add(1, Ordering::Relaxed);
        let kid = identity_model_core::jws::unverified_kid(token);
        if let Some(kid) = &kid {
            if self.known_missing(kid, seen.generation) {
                inner.stats.negative_kid_hits.fetch_add(1, Ordering::Relaxed);
                return Err(miss);
            }
        }
        let (result, fetched) = self.kid_miss_refetch(token, seen, miss).await;
        // Only a key set actually fetched proves a kid absent: after a failed fetch (provider
        // down during a rotation) the kid must be tried again once the provider is back.
        if let (Some(kid), Err(e), true) = (&kid, &result, fetched) {
            if e.kind() == ErrorKind::KeyNotFound {
                self.remember_missing(kid);
            }
        }
        result
    }

    fn known_missing(&self, kid: &str, generation: u64) -> bool {
        let missing = self.inner.missing_kids.lock().unwrap_or_else(|p| p.into_inner());
        missing.generation == generation
            && missing.kids.get(kid).is_some_and(|at| at.elapsed() < MISSING_KID_TTL)
    }

    fn remember_missing(&self, kid: &str) {
        let generation = self.inner.snapshot.load().as_ref().map_or(0, |s| s.generation);
        let mut missing = self.inner.missing_kids.lock().unwrap_or_else(|p| p.into_inner());
        if missing.generation != generation || missing.kids.len() >= MAX_MISSING_KIDS {
            missing.kids.clear();
            missing.generation = generation;
        }
        missing.kids.insert(kid.chars().take(256).collect(), Instant::now());
    }

    async fn kid_miss_refetch(
        &self,
        token: &str,
        seen: &Arc<Snapshot>,
        miss: Error,
    ) -> (Result<ValidToken, Error>, bool) {
        let inner = &self.inner;
        let since_start = |at: Instant| at.duration_since(inner.started).as_millis() as u64;
        let last = inner.last_kid_miss_fetch.load(Ordering::Relaxed);
        let cooldown = inner.config.kid_miss_refresh_cooldown.as_millis() as u64;
        if last != u64::MAX && since_start(Instant::now()) < last.saturating_add(cooldown) {
            // Another miss refetched recently (or is refetching: wait for it, it may bring this
            // kid); a fetch of our own could not know more.
            // The current keys prove the kid absent only if the latest fetch succeeded.
            let last_fetch_ok = inner.refresh.lock().await.last_failure.is_none();
            let current = inner.snapshot.load_full();
            return match current {
                Some(s) if s.generation != seen.generation => {
                    (inner.rules.validate(token, &s.keys, inner.clock.now()), true)
                }
                _ => (Err(miss), last_fetch_ok),
            };
        }
        match self.refresh(Some(seen.generation)).await {
            Ok(fresh) => (inner.rules.validate(token, &fresh.keys, inner.clock.now()), true),
            Err(_) => (inner.rules.validate(token, &seen.keys, inner.clock.now()), false),
        }
    }

    /// Starts a background refresh unless one is running.
    fn refresh_ahead(&self, snapshot: &Arc<Snapshot>) {
        let this = self.clone();
        let generation = snapshot.generation;
        if self.inner.refresh.try_lock().is_ok() {
            tokio::spawn(async move {
                // A failure is counted in fetch_errors; the current keys stay.
                let _ = this.refresh(Some(generation)).await;
            });
        }
    }

    /// Fetches keys unless the snapshot changed since `seen` (then another caller did it).
    async fn refresh(&self, seen: Option<u64>) -> Result<Arc<Snapshot>, Error> {
        let inner = &self.inner;
        let mut state = inner.refresh.lock().await;
        if let Some(current) = inner.snapshot.load_full() {
            if Some(current.generation) != seen {
                inner.stats.coalesced.fetch_add(1, Ordering::Relaxed);
                return Ok(current);
            }
        }
        let now = Instant::now();
        // After a failed fetch, callers get that failure until one base delay has passed.
        let backoff = inner.config.retry_base_delay.max(Duration::from_millis(1));
        if state.last_failure.is_some_and(|at| now.duration_since(at) < backoff) {
            // The provider failed a moment ago: answer from that, do not probe again.
            return Err(unavailable("the provider failed recently; next attempt after the backoff"));
        }
        inner.stats.refreshes.fetch_add(1, Ordering::Relaxed);
        state.last_attempt = Some(now);
        if seen.is_some() {
            inner
                .last_kid_miss_fetch
                .store(now.duration_since(inner.started).as_millis() as u64, Ordering::Relaxed);
        }
        match self.fetch(&mut state).await {
            Ok(snapshot) => {
                state.last_failure = None;
                tracing::info!(
                    issuer = %inner.issuer,
                    generation = snapshot.generation,
                    keys = snapshot.keys.len(),
                    set_aside = snapshot.keys.rejected().len(),
                    "key set refreshed"
                );
                let snapshot = Arc::new(snapshot);
                inner.snapshot.store(Some(Arc::clone(&snapshot)));
                Ok(snapshot)
            }
            Err(e) => {
                state.last_failure = Some(Instant::now());
                let serving_last_good = inner.snapshot.load().is_some();
                tracing::warn!(issuer = %inner.issuer, error = %e, serving_last_good, "key refresh failed");
                inner.stats.fetch_errors.fetch_add(1, Ordering::Relaxed);
                Err(e)
            }
        }
    }

    /// Fetches discovery, and remembers the document and its `jwks_uri` for its freshness.
    async fn discover_into(&self, state: &mut RefreshState) -> Result<Arc<DiscoveryDocument>, Error> {
        let inner = &self.inner;
        let now = Instant::now();
        let (document, response) = self.discovery_response().await?;
        let document = Arc::new(document);
        let ttl = freshness(
            &response,
            inner.config.disco_cache_ttl,
            inner.config.min_freshness,
            inner.config.max_disco_freshness,
        );
        if let Some(uri) = document.jwks_uri() {
            state.jwks_uri = Some((uri.to_owned(), now + ttl));
        }
        inner.document.store(Some(Arc::new((Arc::clone(&document), now + ttl))));
        Ok(document)
    }

    /// The discovery document, cached for its freshness (the same fetch the keys use). When
    /// the provider cannot be reached, the last good document is served.
    pub async fn metadata(&self) -> Result<Arc<DiscoveryDocument>, Error> {
        let fresh = || {
            let cached = self.inner.document.load_full()?;
            (Instant::now() < cached.1).then(|| Arc::clone(&cached.0))
        };
        if let Some(document) = fresh() {
            return Ok(document);
        }
        let mut state = self.inner.refresh.lock().await;
        if let Some(document) = fresh() {
            return Ok(document); // another caller fetched it while this one waited
        }
        match self.discover_into(&mut state).await {
            Ok(document) => Ok(document),
            Err(e) => match self.inner.document.load_full() {
                Some(last) => {
                    tracing::warn!(issuer = %self.inner.issuer, error = %e, "discovery failed; serving the last good document");
                    Ok(Arc::clone(&last.0))
                }
                None => Err(e),
            },
        }
    }

    /// The transport this authority fetches with (shared with token clients built on it).
    pub fn transport(&self) -> Arc<dyn HttpTransport> {
        Arc::clone(&self.inner.transport)
    }

    /// The HTTP settings.
    pub fn config(&self) -> &HttpConfig {
        &self.inner.config
    }

    /// The discovery policy (HTTPS, loopback, private addresses).
    pub fn policy(&self) -> &DiscoveryPolicy {
        &self.inner.policy
    }

    async fn fetch(&self, state: &mut RefreshState) -> Result<Snapshot, Error> {
        let inner = &self.inner;
        let now = Instant::now();
        let jwks_uri = match &state.jwks_uri {
            Some((uri, until)) if now < *until => uri.clone(),
            _ => {
                let document = self.discover_into(state).await?;
                document.jwks_uri().ok_or_else(|| unavailable("discovery has no jwks_uri"))?.to_owned()
            }
        };
        let previous = inner.snapshot.load_full();
        let etag = previous.as_ref().and(state.etag.clone());
        let response = self
            .get(&jwks_uri, "application/jwk-set+json, application/json", etag, inner.config.max_jwks_size)
            .await?;
        let ttl = freshness(
            &response,
            inner.config.jwks_cache_ttl,
            inner.config.min_freshness,
            inner.config.max_jwks_freshness,
        );
        let generation = previous.as_ref().map_or(1, |p| p.generation + 1);
        if response.status == 304 {
            // Not modified: the same prepared keys, fresh again.
            let previous = previous.ok_or_else(|| unavailable("304 without a cached key set"))?;
            return Ok(Snapshot::new(Arc::clone(&previous.keys), generation, Instant::now(), ttl));
        }
        media_type::check(response.content_type.as_deref(), media_type::JWK_SET)?;
        let limits =
            KeySetLimits { max_bytes: inner.config.max_jwks_size, max_keys: inner.config.max_jwks_keys };
        let keys = KeySet::from_json_with(&response.body, limits)?;
        if keys.is_empty() {
            return Err(unavailable("the provider's key set has no usable key"));
        }
        state.etag = response.etag.clone();
        Ok(Snapshot::new(Arc::new(keys), generation, Instant::now(), ttl))
    }

    /// A GET with retries: these are idempotent reads, retried on connection errors, 429 and
    /// 5xx with full-jitter backoff, honouring `Retry-After` up to a cap.
    async fn get(
        &self,
        url: &str,
        accept: &'static str,
        etag: Option<String>,
        max_body: usize,
    ) -> Result<HttpResponse, Error> {
        let uri = self.inner.policy.check_url(url, "URL")?;
        let host = uri.authority().map_or_else(String::new, |a| a.as_str().to_ascii_lowercase());
        let config = &self.inner.config;
        let backoff = Backoff { base: config.retry_base_delay, ..Backoff::default() };
        let mut attempt = 0;
        loop {
            if let Err(open_for) = self.inner.breakers.allow(&host, Instant::now()) {
                return Err(unavailable(format!(
                    "{host} is failing: circuit open for {} s more, no request sent",
                    open_for.as_secs()
                )));
            }
            if attempt > 0 {
                self.inner.stats.retries.fetch_add(1, Ordering::Relaxed);
            }
            let request = HttpRequest { url: url.to_owned(), accept, if_none_match: etag.clone(), max_body };
            let outcome = self.inner.transport.get(request).await;
            let failed = outcome.as_ref().map_or(true, |r| r.status == 429 || r.status >= 500);
            if self.inner.breakers.record(&host, !failed, Instant::now()) {
                self.inner.stats.circuit_opens.fetch_add(1, Ordering::Relaxed);
            }
            let (error, retry_after) = match outcome {
                Ok(response) if response.status == 304 || (200..300).contains(&response.status) => {
                    return Ok(response);
                }
                Ok(response) => {
                    let error =
                        Error::new(ErrorKind::HttpStatus, format!("{url} answered HTTP {}", response.status));
                    if response.status != 429 && response.status < 500 {
                        return Err(error);
                    }
                    let retry_after = response
                        .retry_after
                        .as_deref()
                        .and_then(|v| parse_retry_after(v, std::time::SystemTime::now()));
                    (error, retry_after)
                }
                Err(e) => (
                    Error::new(ErrorKind::TransportError, format!("{url}: {}", e.message)).with_source(e),
                    None,
                ),
            };
            match backoff.decide(attempt, config.retry_max_attempts, retry_after, jitter_unit()) {
                RetryDecision::After(wait) => tokio::time::sleep(wait).await,
                RetryDecision::GiveUp => return Err(error),
            }
            attempt += 1;
        }
    }
}

#[cfg(test)]
mod freshness_tests {
    use super::*;

    fn response(cache_control: Option<&str>, expires: Option<String>) -> HttpResponse {
        HttpResponse { cache_control: cache_control.map(str::to_owned), expires, ..HttpResponse::default() }
    }

    #[test]
    fn cache_control_then_expires_then_default_within_bounds() {
        let day = Duration::from_secs(86_400);
        let hour = Duration::from_secs(3600);
        let f = |r: HttpResponse| freshness(&r, hour, Duration::from_secs(60), day);
        assert_eq!(f(response(Some("public, max-age=600"), None)), Duration::from_secs(600));
        assert_eq!(f(response(Some("max-age=5"), None)), Duration::from_secs(60), "floor");
        assert_eq!(f(response(Some("max-age=9999999"), None)), day, "cap");
        assert_eq!(f(response(Some("no-store"), None)), Duration::from_secs(60));
        assert_eq!(f(response(Some("max-age=600, no-cache"), None)), Duration::from_secs(60));
        assert_eq!(f(response(None, None)), hour, "default");
        let in_two_hours = httpdate::fmt_http_date(std::time::SystemTime::now() + 2 * hour);
        let got = f(response(None, Some(in_two_hours)));
        assert!(got > hour && got <= 2 * hour, "{got:?}");
        assert_eq!(
            f(response(None, Some("Thu, 01 Jan 1970 00:00:00 GMT".into()))),
            Duration::from_secs(60),
            "past"
        );
        assert_eq!(f(response(None, Some("0".into()))), Duration::from_secs(60), "invalid = expired");
        let both =
            response(Some("max-age=600"), Some(httpdate::fmt_http_date(std::time::SystemTime::now() + day)));
        assert_eq!(f(both), Duration::from_secs(600), "max-age wins over Expires");
    }
}
