//! An issuer trusted over HTTP: discovery, key set fetch and cache, and validation.
//!
//! The hot path ([`Authority::check`]) is one synchronous function: with fresh keys cached it
//! settles the token (`Ready`), otherwise it says what refresh is needed (`NeedsRefresh`).
//! The async and blocking APIs both call it. Refreshes run in their own tasks
//! ([`crate::flight::SingleFlight`]); callers wait on the shared outcome and may be dropped at any
//! `.await` without changing what others get.

mod issuers;
mod missing;
mod refresh;
mod snapshot;
mod striped;
mod token_cache;

pub(crate) use snapshot::later;

use std::fmt;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arc_swap::ArcSwapOption;
use identity_model_core::{
    DiscoveryDocument, DiscoveryPolicy, Error, ErrorKind, Fault, KeySet, MetadataKind, UnverifiedToken,
    ValidToken, Validation,
};
use tokio::time::Instant;

pub use issuers::Issuers;
pub use striped::StripedCounter;
pub use token_cache::{TokenCacheConfig, TokenCacheStats};

use crate::clock::{Clock, SystemClock};
use crate::config::{CacheConfig, CircuitConfig, HttpConfig, Settings};
use crate::flight::SingleFlight;
use crate::http::Fetcher;
use crate::http::transport::{HttpTransport, ReqwestTransport};
use crate::telemetry::{self, AuthorityMeters, tally};
use missing::MissingKids;
use refresh::RefreshState;
use snapshot::Snapshot;
use token_cache::{KeysNow, TokenCache};

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
    /// Requests sent (retries included).
    pub requests: AtomicU64,
    /// Requests sent again after a transient failure.
    pub retries: AtomicU64,
    /// Times a host's circuit opened.
    pub circuit_opens: AtomicU64,
    /// Unknown kids answered from the memory of kids proven missing (no fetch, no wait).
    pub negative_kid_hits: AtomicU64,
    /// Unknown kids refused at once because the kid-miss cooldown was running or the provider
    /// was failing (no fetch, no wait).
    pub kid_miss_refusals: AtomicU64,
}

/// The state of an authority's cached keys ([`Authority::key_status`]).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct KeyStatus {
    /// Keys are loaded and not past the allowed staleness: tokens can be validated.
    pub usable: bool,
    /// The keys are past their freshness (served because a refresh failed or is running).
    pub stale: bool,
    /// How long ago the keys in use were fetched (`None` before the first fetch).
    pub age: Option<Duration>,
    /// How many keys are usable.
    pub keys: usize,
    /// Why the last refresh failed, when it did.
    pub last_error: Option<String>,
}

pub(crate) struct Inner {
    issuer: String,
    metadata: MetadataKind,
    rules: Validation,
    policy: DiscoveryPolicy,
    max_staleness: Duration,
    cache: CacheConfig,
    fetcher: Arc<Fetcher>,
    clock: Arc<dyn Clock>,
    snapshot: ArcSwapOption<Snapshot>,
    /// The last good discovery document and its freshness (served past it when the provider
    /// is down); read without a lock.
    document: ArcSwapOption<(Arc<DiscoveryDocument>, Instant)>,
    state: Mutex<RefreshState>,
    keys_flight: Arc<SingleFlight<Arc<Snapshot>>>,
    document_flight: Arc<SingleFlight<Arc<DiscoveryDocument>>>,
    missing_kids: MissingKids,
    token_cache: Option<TokenCache>,
    stats: Stats,
    #[cfg_attr(not(feature = "metrics"), allow(dead_code))]
    meters: AuthorityMeters,
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
        f.debug_struct("Authority").field("issuer", &self.inner.issuer).finish_non_exhaustive()
    }
}

/// Builds an [`Authority`].
#[derive(Debug)]
pub struct AuthorityBuilder {
    issuer: String,
    metadata: MetadataKind,
    rules: Validation,
    rules_given: bool,
    policy: DiscoveryPolicy,
    config: HttpConfig,
    cache: CacheConfig,
    circuit: CircuitConfig,
    max_staleness: Duration,
    transport: Option<Arc<dyn HttpTransport>>,
    clock: Arc<dyn Clock>,
    token_cache: Option<TokenCacheConfig>,
}

impl Authority {
    /// Starts building an authority for `issuer` (`iss` must equal it exactly).
    pub fn builder(issuer: impl Into<String>) -> AuthorityBuilder {
        let issuer = issuer.into();
        AuthorityBuilder {
            metadata: MetadataKind::OpenId,
            rules: Validation::new(issuer.clone()),
            rules_given: false,
            issuer,
            policy: DiscoveryPolicy::default(),
            config: HttpConfig::default(),
            cache: CacheConfig::default(),
            circuit: CircuitConfig::default(),
            max_staleness: Duration::from_secs(24 * 3600),
            transport: None,
            clock: Arc::new(SystemClock),
            token_cache: None,
        }
    }
}

impl AuthorityBuilder {
    /// Validation rules for this issuer's tokens. They must pin exactly this authority's
    /// issuer (`Validation::new(issuer)`) and check an audience (or say
    /// `dangerous_any_audience()`): [`AuthorityBuilder::build`] refuses anything else with
    /// `invalid_config`. Without rules the authority serves metadata and keys (for token
    /// clients), and every `validate` fails with `invalid_config`.
    pub fn rules(mut self, rules: Validation) -> Self {
        self.rules = rules;
        self.rules_given = true;
        self
    }

    /// Which metadata document to read: OpenID Connect Discovery (default) or RFC 8414
    /// (`/.well-known/oauth-authorization-server`).
    pub fn metadata(mut self, kind: MetadataKind) -> Self {
        self.metadata = kind;
        self
    }

    /// The URL policy: it governs every URL this authority fetches (the issuer, discovery,
    /// `jwks_uri`) and every endpoint the token clients built on it call.
    pub fn policy(mut self, policy: DiscoveryPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// How requests are sent (timeouts, retries, TLS).
    pub fn config(mut self, config: HttpConfig) -> Self {
        self.config = config;
        self
    }

    /// What is cached, for how long, and the kid-miss cooldown.
    pub fn cache(mut self, cache: CacheConfig) -> Self {
        self.cache = cache;
        self
    }

    /// The per-host circuit breaker.
    pub fn circuit(mut self, circuit: CircuitConfig) -> Self {
        self.circuit = circuit;
        self
    }

    /// All three at once (for example [`Settings::from_env`]).
    pub fn settings(self, settings: Settings) -> Self {
        self.config(settings.http).cache(settings.cache).circuit(settings.circuit)
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

    /// Caches validated tokens: a token that validated before is answered by a hash lookup
    /// (see [`TokenCacheConfig`] for the bounds and when an entry stops being served). Off by
    /// default.
    pub fn token_cache(mut self, config: TokenCacheConfig) -> Self {
        self.token_cache = Some(config);
        self
    }

    /// The wall clock for `exp`/`nbf`/`iat` and HTTP dates.
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Checks the issuer URL against the policy ([`DiscoveryPolicy::check_issuer`]: no query
    /// or fragment either), the rules against the issuer and the
    /// audience requirement, and builds.
    pub fn build(self) -> Result<Authority, Error> {
        self.policy.check_issuer(&self.issuer)?;
        if self.rules_given {
            let pinned = self.rules.issuers().is_some_and(|issuers| issuers == [self.issuer.as_str()]);
            if !pinned {
                return Err(Error::new(
                    ErrorKind::InvalidConfig,
                    format!(
                        "the rules must accept exactly this authority's issuer {:?} (build them with \
                         Validation::new(issuer)); use Issuers for several issuers",
                        self.issuer.chars().take(120).collect::<String>()
                    ),
                ));
            }
            if let Some(problem) = self.rules.config_problem() {
                return Err(problem);
            }
        }
        let transport = match self.transport {
            Some(t) => t,
            None => Arc::new(
                ReqwestTransport::with_policy(&self.config, &self.policy)
                    .map_err(crate::http::transport::config_error)?,
            ),
        };
        let token_cache = self.token_cache.map(|config| TokenCache::new(config, &self.issuer));
        let meters = AuthorityMeters::new(&[("issuer", &self.issuer)]);
        Ok(Authority {
            inner: Arc::new(Inner {
                rules: self.rules,
                metadata: self.metadata,
                issuer: self.issuer,
                policy: self.policy,
                max_staleness: self.max_staleness,
                cache: self.cache,
                fetcher: Arc::new(Fetcher::new(
                    transport,
                    self.config,
                    self.circuit,
                    Arc::clone(&self.clock),
                )),
                clock: self.clock,
                snapshot: ArcSwapOption::empty(),
                document: ArcSwapOption::empty(),
                state: Mutex::new(RefreshState::default()),
                keys_flight: SingleFlight::new(ErrorKind::KeysUnavailable),
                document_flight: SingleFlight::new(ErrorKind::KeysUnavailable),
                missing_kids: MissingKids::default(),
                token_cache,
                stats: Stats::default(),
                meters,
                durations: telemetry::Durations::new(),
            }),
        })
    }
}

/// An error from obtaining keys or metadata, as callers of validation see it: the
/// provider's failures (a bad key set or document, a wrong media type, an HTTP status, no
/// answer, a URL in the document that breaks the policy) are `keys_unavailable` with the
/// original as their source and its kind in the message, so that one outage gets one answer
/// (503). The configuration's own errors pass as they are.
pub(crate) fn unobtainable(error: Error) -> Error {
    let provider = error.kind().fault() == Fault::Provider || error.kind() == ErrorKind::PolicyViolation;
    if error.kind() == ErrorKind::KeysUnavailable || !provider {
        return error;
    }
    let message = format!("keys cannot be obtained: {} ({})", error.message(), error.kind().as_str());
    Error::new(ErrorKind::KeysUnavailable, message).with_source(error)
}

pub(crate) fn unavailable(message: impl Into<String>) -> Error {
    Error::new(ErrorKind::KeysUnavailable, message.into())
}

/// How a validation stands after its synchronous start ([`Authority::begin`]).
pub(crate) enum Begun<'t> {
    /// Settled (from the cache or the hot path).
    Done(Result<ValidToken, Error>),
    /// Keys are needed first; `Option<u64>` is the key generation before, for the cache.
    Pending(Need<'t>, Option<u64>),
}

/// What the hot path decided.
#[derive(Debug)]
pub(crate) enum Step<'t> {
    /// The token is settled: valid, or invalid for a reason no refresh can change.
    Ready(Result<ValidToken, Error>),
    /// Keys must be fetched (or refetched) before the token can be judged.
    NeedsRefresh(Need<'t>),
}

/// A token waiting for keys, parsed once.
#[derive(Debug)]
pub(crate) struct Need<'t> {
    token: UnverifiedToken<'t>,
    why: Why,
    /// Key flights started before the hot path looked: a later one started after the token
    /// arrived, so its keys can prove a `kid` missing.
    arrived: u64,
}

#[derive(Debug)]
enum Why {
    /// No keys yet.
    Cold,
    /// The cached keys are older than the allowed staleness.
    TooStale(Arc<Snapshot>),
    /// The cached keys lack the token's `kid`, or its signature fails on them.
    UnknownKey { seen: Arc<Snapshot>, miss: Error },
}

impl Authority {
    /// The time on this authority's clock (the one `exp`, `nbf` and `iat` are judged by).
    pub fn now(&self) -> identity_model_core::UnixTime {
        self.inner.clock.now()
    }

    /// The issuer.
    pub fn issuer(&self) -> &str {
        &self.inner.issuer
    }

    /// Counters.
    pub fn stats(&self) -> &Stats {
        &self.inner.stats
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
        self.inner.state().reset();
        self.inner.snapshot.store(None);
        self.inner.document.store(None);
        self.inner.missing_kids.clear();
    }

    /// Whether `kid` is remembered as missing from the current keys (a refresh that started
    /// after a token with it arrived succeeded without it). For tests and diagnostics.
    pub fn is_known_missing(&self, kid: &str) -> bool {
        let generation = self.inner.snapshot.load().as_ref().map_or(0, |s| s.generation);
        let cooldown = self.inner.cache.kid_miss_refresh_cooldown;
        self.inner.missing_kids.contains(kid, generation, Instant::now(), cooldown)
    }

    /// The hot path: parses `token` once and, with fresh keys cached, settles it without a
    /// lock or an await. Starts a background refresh when the keys are due for one.
    #[inline]
    pub(crate) fn check<'t>(&self, token: &'t str) -> Step<'t> {
        match UnverifiedToken::parse(token, self.inner.rules.token_len_limit()) {
            Ok(token) => self.judge(token),
            Err(e) => Step::Ready(Err(e)),
        }
    }

    /// [`Authority::check`] for a token already parsed (by [`Issuers`], to read its `iss`).
    #[inline]
    pub(crate) fn check_parsed<'t>(&self, token: UnverifiedToken<'t>) -> Step<'t> {
        // Issuers parsed it under the largest limit of its authorities: apply this one's.
        let limit = self.inner.rules.token_len_limit();
        if token.len() > limit {
            let message = format!("token is {} bytes, over the {limit}-byte limit", token.len());
            return Step::Ready(Err(Error::new(ErrorKind::MalformedToken, message)));
        }
        self.judge(token)
    }

    /// The hot path after parsing (the length limit already applied).
    #[inline]
    fn judge<'t>(&self, token: UnverifiedToken<'t>) -> Step<'t> {
        let inner = &self.inner;
        let arrived = inner.keys_flight.started();
        let Some(snapshot) = inner.snapshot.load_full() else {
            tally!(inner, misses);
            return Step::NeedsRefresh(Need { token, why: Why::Cold, arrived });
        };
        let now = Instant::now();
        if now > snapshot.stale_after {
            return Step::NeedsRefresh(Need { token, why: Why::TooStale(snapshot), arrived });
        }
        if now >= snapshot.fresh_until {
            tally!(inner, stale_serves);
            self.refresh_in_background(now);
        } else {
            tally!(inner, hits);
            if now >= snapshot.refresh_at {
                self.refresh_in_background(now);
            }
        }
        match inner.rules.check_signature(&token, &snapshot.keys) {
            Ok(()) => Step::Ready(inner.rules.accept(token, inner.clock.now())),
            // An unknown kid, or a signature that fails on a cached key (the provider may have
            // re-keyed under the same kid): keys may need refetching.
            Err(e) if matches!(e.kind(), ErrorKind::KeyNotFound | ErrorKind::InvalidSignature) => {
                Step::NeedsRefresh(Need { token, why: Why::UnknownKey { seen: snapshot, miss: e }, arrived })
            }
            Err(e) => Step::Ready(Err(e)),
        }
    }

    /// Validates `token`. With keys cached and fresh this takes no lock and awaits nothing.
    /// Dropping the future at any point leaves every refresh it started running.
    pub async fn validate(&self, token: &str) -> Result<ValidToken, Error> {
        self.validate_with(token, |authority| authority.check(token)).await
    }

    /// Validation around the hot path `step`: the validated-token cache first, then `step`,
    /// the slow path when it needs keys, the cache fed, the outcome recorded. The blocking API
    /// runs the same [`Authority::begin`] and [`Authority::finish`] around its own wait.
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
        telemetry::validated(&self.inner.meters, &self.inner.durations, &self.inner.issuer, started, result);
    }

    /// Makes sure keys are loaded and fresh: fetches them (or joins the fetch in flight) when
    /// none are cached or the cached ones are past their freshness, and does nothing
    /// otherwise. A sidecar calls it at start and, while the provider is down, again with
    /// its own backoff; within the refresh failure backoff it answers the last failure
    /// without a request. Dropping the future leaves the fetch running.
    pub async fn ensure_fresh_keys(&self) -> Result<(), Error> {
        let current = self.inner.snapshot.load_full();
        let reason = match &current {
            None => refresh::Reason::Cold,
            Some(snapshot) if Instant::now() >= snapshot.fresh_until => refresh::Reason::Stale,
            Some(_) => return Ok(()),
        };
        self.refresh(reason, current.map(|s| s.generation)).await.map(|_| ())
    }

    /// What the cached keys are worth right now, without any request: for readiness checks
    /// (`idm serve`'s `/readyz`).
    pub fn key_status(&self) -> KeyStatus {
        let now = Instant::now();
        let last_error = self.inner.state().failure.as_ref().map(|(_, e)| e.message().to_owned());
        match self.inner.snapshot.load().as_ref() {
            None => KeyStatus { usable: false, stale: false, age: None, keys: 0, last_error },
            Some(snapshot) => KeyStatus {
                usable: now <= snapshot.stale_after,
                stale: now >= snapshot.fresh_until,
                age: Some(now.saturating_duration_since(snapshot.fetched_at)),
                keys: snapshot.keys.len(),
                last_error,
            },
        }
    }

    /// Counters of the validated-token cache, when it is on.
    pub fn token_cache_stats(&self) -> Option<&TokenCacheStats> {
        self.inner.token_cache.as_ref().map(|cache| &cache.stats)
    }

    fn generation(&self) -> Option<u64> {
        self.inner.snapshot.load().as_ref().map(|s| s.generation)
    }

    /// The key generation before a validation, for the validated-token cache (nothing is
    /// read when the cache is off: the hot path stays as it was).
    pub(crate) fn cache_generation(&self) -> Option<u64> {
        self.inner.token_cache.as_ref().and_then(|_| self.generation())
    }

    /// A validation answered by the validated-token cache: only within the staleness bound,
    /// the token's validity window, and while its key is published.
    pub(crate) fn cached(&self, token: &str) -> Option<ValidToken> {
        let inner = &self.inner;
        let cache = inner.token_cache.as_ref()?;
        let snapshot = inner.snapshot.load();
        let snapshot = snapshot.as_ref()?;
        let now = Instant::now();
        if now > snapshot.stale_after {
            return None;
        }
        let keys =
            KeysNow { generation: snapshot.generation, has_kid: &|kid| snapshot.keys.contains_kid(kid) };
        let valid = cache.get(token, inner.clock.now().as_secs() as f64, &keys)?;
        if now >= snapshot.refresh_at {
            self.refresh_in_background(now);
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
        let snapshot = self.inner.snapshot.load();
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

    /// The slow path: gets the keys the hot path lacked, then judges the token with them.
    pub(crate) async fn resolve(&self, need: Need<'_>) -> Result<ValidToken, Error> {
        let Need { token, why, arrived } = need;
        match why {
            Why::Cold => {
                let (snapshot, seq) = self.refresh(refresh::Reason::Cold, None).await?;
                self.settle(token, &snapshot, seq > arrived, None)
            }
            Why::TooStale(seen) => {
                // Too old to trust: like a cold start, refresh now or fail closed.
                let (snapshot, seq) = match self.refresh(refresh::Reason::Stale, Some(seen.generation)).await
                {
                    Ok(done) if done.0.generation != seen.generation => done,
                    Ok(_) => {
                        return Err(unavailable("the last good keys are older than the allowed staleness"));
                    }
                    Err(e) => {
                        return Err(unavailable(format!(
                            "the last good keys are older than the allowed staleness ({})",
                            e.message()
                        ))
                        .with_source(e));
                    }
                };
                self.settle(token, &snapshot, seq > arrived, None)
            }
            Why::UnknownKey { seen, miss } => self.after_key_miss(token, seen, miss, arrived).await,
        }
    }

    /// Judges `token` with `snapshot`'s keys; an unknown `kid` is remembered missing when
    /// `proof` (the keys were fetched after the token arrived).
    fn settle(
        &self,
        token: UnverifiedToken<'_>,
        snapshot: &Snapshot,
        proof: bool,
        cause: Option<Error>,
    ) -> Result<ValidToken, Error> {
        let inner = &self.inner;
        match inner.rules.check_signature(&token, &snapshot.keys) {
            Ok(()) => inner.rules.accept(token, inner.clock.now()),
            Err(e) => {
                if e.kind() == ErrorKind::KeyNotFound && proof {
                    if let Some(kid) = token.kid() {
                        inner.missing_kids.insert(kid, snapshot.generation, Instant::now());
                    }
                }
                Err(match cause {
                    Some(cause) if e.kind() == ErrorKind::KeyNotFound => because(e, cause),
                    _ => e,
                })
            }
        }
    }

    /// An unknown `kid` (or a failing signature) on the cached keys. In order: a refresh in
    /// flight (joined); keys newer than the hot path saw; the memory of kids proven missing; an
    /// outage or a running cooldown (refused at once); else one kid-miss refetch.
    async fn after_key_miss(
        &self,
        token: UnverifiedToken<'_>,
        seen: Arc<Snapshot>,
        miss: Error,
        arrived: u64,
    ) -> Result<ValidToken, Error> {
        let inner = &self.inner;
        tally!(inner, kid_misses);
        let mut seen = seen;
        let cooldown = inner.cache.kid_miss_refresh_cooldown;
        // At most a few passes: a flight that starts or ends while this caller looks is
        // looked at again rather than taken for a running cooldown.
        let mut may_fetch = false;
        for _ in 0..3 {
            // A refresh in flight may bring the key: join it. Its keys prove the kid missing
            // only if it started after the token arrived.
            if let Some(ticket) = inner.keys_flight.in_flight() {
                tally!(inner, coalesced);
                let seq = ticket.seq;
                match ticket.outcome().await {
                    Ok(snapshot) if seq > arrived => return self.settle(token, &snapshot, true, None),
                    Ok(snapshot) => {
                        if inner.rules.check_signature(&token, &snapshot.keys).is_ok() {
                            return inner.rules.accept(token, inner.clock.now());
                        }
                        seen = snapshot;
                    }
                    Err(e) => return Err(because(miss, e)),
                }
            }
            // Keys newer than the hot path saw (flights end after storing their keys, so with
            // none in flight any that ended are visible here).
            if let Some(current) = inner.snapshot.load_full() {
                if current.generation != seen.generation {
                    match inner.rules.check_signature(&token, &current.keys) {
                        Ok(()) => return inner.rules.accept(token, inner.clock.now()),
                        Err(e)
                            if !matches!(e.kind(), ErrorKind::KeyNotFound | ErrorKind::InvalidSignature) =>
                        {
                            return Err(e);
                        }
                        Err(_) => seen = current,
                    }
                }
            }
            if let Some(kid) = token.kid() {
                if inner.missing_kids.contains(kid, seen.generation, Instant::now(), cooldown) {
                    tally!(inner, negative_kid_hits);
                    return Err(miss);
                }
            }
            if let Some(failure) = self.outage() {
                tally!(inner, kid_miss_refusals);
                return Err(because(miss, failure));
            }
            if self.kid_miss_budget(Instant::now()) {
                may_fetch = true;
                break;
            }
            // The cooldown runs. If its refetch is (or was, a moment ago) in flight, look again.
            let moved = inner.keys_flight.in_flight().is_some()
                || inner.snapshot.load().as_ref().is_some_and(|s| s.generation != seen.generation);
            if !moved {
                break;
            }
        }
        if !may_fetch {
            tally!(inner, kid_miss_refusals);
            return Err(miss);
        }
        match self.refresh(refresh::Reason::KidMiss, Some(seen.generation)).await {
            Ok((snapshot, seq)) => self.settle(token, &snapshot, seq > arrived, None),
            Err(e) => {
                // The cached keys still judge the token; the refresh failure is the cause.
                self.settle(token, &seen, false, Some(e))
            }
        }
    }

    /// The current key set, fetched through discovery when none is cached.
    pub async fn keys(&self) -> Result<Arc<KeySet>, Error> {
        match self.inner.snapshot.load_full() {
            Some(snapshot) => Ok(Arc::clone(&snapshot.keys)),
            None => Ok(Arc::clone(&self.refresh(refresh::Reason::Cold, None).await?.0.keys)),
        }
    }

    /// The key set again from the provider, for a token signed with a key the cached set
    /// lacks (one request shared by concurrent callers, within the kid-miss cooldown).
    pub(crate) async fn refetch_keys(&self) -> Result<Arc<KeySet>, Error> {
        if let Some(ticket) = self.inner.keys_flight.in_flight() {
            return Ok(Arc::clone(&ticket.outcome().await.map_err(unobtainable)?.keys));
        }
        if let Some(failure) = self.outage() {
            return Err(unobtainable(failure));
        }
        if !self.kid_miss_budget(Instant::now()) {
            return self.keys().await;
        }
        let seen = self.inner.snapshot.load().as_ref().map(|s| s.generation);
        Ok(Arc::clone(&self.refresh(refresh::Reason::KidMiss, seen).await?.0.keys))
    }

    /// The transport this authority fetches with (shared with token clients built on it).
    pub fn transport(&self) -> Arc<dyn HttpTransport> {
        Arc::clone(self.inner.fetcher.transport())
    }

    pub(crate) fn fetcher(&self) -> &Arc<Fetcher> {
        &self.inner.fetcher
    }

    /// How requests are sent.
    pub fn config(&self) -> &HttpConfig {
        self.inner.fetcher.config()
    }

    /// What is cached and for how long.
    pub fn cache(&self) -> &CacheConfig {
        &self.inner.cache
    }

    /// The circuit breaker settings.
    pub fn circuit(&self) -> CircuitConfig {
        self.inner.fetcher.circuit()
    }

    /// The URL policy (HTTPS, loopback, private addresses) for every URL it fetches.
    pub fn policy(&self) -> &DiscoveryPolicy {
        &self.inner.policy
    }
}

/// `miss` (an unknown kid) that a refresh could not settle because the provider is failing:
/// the token may be signed by a key published since, so this is the provider's fault
/// (`keys_unavailable`, 503), never the token's; the refresh failure is the source.
fn because(miss: Error, cause: Error) -> Error {
    let message = format!("{} and the keys could not be refreshed: {}", miss.message(), cause.message());
    Error::new(ErrorKind::KeysUnavailable, message).with_source(cause)
}
