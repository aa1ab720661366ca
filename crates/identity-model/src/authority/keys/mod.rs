//! The key source: one issuer's keys and discovery document, as fetched, cached, refreshed
//! and served through outages. It owns everything the refresh path touches (the key
//! snapshot, the last good document, the flights, the refresh state, the missing-kid memory,
//! the fetcher, the URL policy and the cache settings); the [`crate::Authority`] reads the
//! snapshot on its hot path and asks the source for keys when it lacks them.
//!
//! Files: `refresh.rs` fetches key sets (single flight, failure backoff, freshness);
//! `discovery.rs` the discovery document; `unknown_kid.rs` decides what a token the cached
//! keys cannot judge leads to; `snapshot.rs` is what the hot path reads; `missing.rs` the
//! memory of kids proven missing. See docs/AUTHORITY.md for the states.

mod discovery;
mod missing;
mod origin;
mod refresh;
mod snapshot;
mod unknown_kid;

pub use origin::KeysFrom;
pub use refresh::KeySetDocument;
pub(crate) use snapshot::{Snapshot, later};
pub(crate) use unknown_kid::{Lack, is_miss};

use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arc_swap::ArcSwapOption;
use identity_model_core::{
    DiscoveryDocument, DiscoveryPolicy, Error, ErrorKind, Fault, KeySet, MetadataKind,
};
use tokio::time::Instant;

use crate::clock::Clock;
use crate::config::CacheConfig;
use crate::flight::SingleFlight;
use crate::http::Fetcher;
use crate::telemetry::AuthorityMeters;
use missing::MissingKids;
use refresh::RefreshState;

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

/// The state of an authority's cached keys ([`crate::Authority::key_status`]).
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

/// Where an issuer's keys come from and how they are kept.
pub(crate) struct KeySource {
    issuer: String,
    keys_from: KeysFrom,
    metadata: MetadataKind,
    policy: DiscoveryPolicy,
    max_staleness: Duration,
    cache: CacheConfig,
    fetcher: Arc<Fetcher>,
    /// The wall clock, for the provider's HTTP dates.
    clock: Arc<dyn Clock>,
    snapshot: ArcSwapOption<Snapshot>,
    /// The last good discovery document and its freshness (served past it when the provider
    /// is down); read without a lock.
    document: ArcSwapOption<(Arc<DiscoveryDocument>, Instant)>,
    state: Mutex<RefreshState>,
    keys_flight: Arc<SingleFlight<Arc<Snapshot>>>,
    document_flight: Arc<SingleFlight<Arc<DiscoveryDocument>>>,
    missing_kids: MissingKids,
    pub(crate) stats: Stats,
    #[cfg_attr(not(feature = "metrics"), allow(dead_code))]
    pub(crate) meters: AuthorityMeters,
}

/// What a [`KeySource`] is built from.
pub(crate) struct Settings {
    pub(crate) issuer: String,
    pub(crate) keys_from: KeysFrom,
    pub(crate) metadata: MetadataKind,
    pub(crate) policy: DiscoveryPolicy,
    pub(crate) max_staleness: Duration,
    pub(crate) cache: CacheConfig,
    pub(crate) fetcher: Arc<Fetcher>,
    pub(crate) clock: Arc<dyn Clock>,
}

impl KeySource {
    pub(crate) fn new(settings: Settings) -> Arc<KeySource> {
        let meters = AuthorityMeters::new(&[("issuer", &settings.issuer)]);
        Arc::new(KeySource {
            issuer: settings.issuer,
            keys_from: settings.keys_from,
            metadata: settings.metadata,
            policy: settings.policy,
            max_staleness: settings.max_staleness,
            cache: settings.cache,
            fetcher: settings.fetcher,
            clock: settings.clock,
            snapshot: ArcSwapOption::empty(),
            document: ArcSwapOption::empty(),
            state: Mutex::new(RefreshState::default()),
            keys_flight: SingleFlight::new(ErrorKind::KeysUnavailable),
            document_flight: SingleFlight::new(ErrorKind::KeysUnavailable),
            missing_kids: MissingKids::default(),
            stats: Stats::default(),
            meters,
        })
    }

    pub(crate) fn issuer(&self) -> &str {
        &self.issuer
    }

    pub(crate) fn keys_from(&self) -> &KeysFrom {
        &self.keys_from
    }

    pub(crate) fn policy(&self) -> &DiscoveryPolicy {
        &self.policy
    }

    pub(crate) fn cache(&self) -> &CacheConfig {
        &self.cache
    }

    pub(crate) fn fetcher(&self) -> &Arc<Fetcher> {
        &self.fetcher
    }

    /// The keys the hot path judges by (none before the first fetch).
    #[inline]
    pub(crate) fn snapshot(&self) -> Option<Arc<Snapshot>> {
        self.snapshot.load_full()
    }

    /// The same, borrowed for a moment (no reference count taken).
    #[inline]
    pub(crate) fn peek(&self) -> arc_swap::Guard<Option<Arc<Snapshot>>> {
        self.snapshot.load()
    }

    /// Key flights started so far: read when a token arrives, so that a later flight's keys
    /// can prove its `kid` missing.
    #[inline]
    pub(crate) fn flights_started(&self) -> u64 {
        self.keys_flight.started()
    }

    /// Forgets the document, the keys, the refresh state and the remembered kids. A refresh
    /// already running still lands its result.
    pub(crate) fn clear(&self) {
        self.state().reset();
        self.snapshot.store(None);
        self.document.store(None);
        self.missing_kids.clear();
    }

    /// Whether `kid` is remembered as missing from the current keys.
    pub(crate) fn is_known_missing(&self, kid: &str) -> bool {
        let generation = self.snapshot.load().as_ref().map_or(0, |s| s.generation);
        let cooldown = self.cache.kid_miss_refresh_cooldown;
        self.missing_kids.contains(kid, generation, Instant::now(), cooldown)
    }

    /// What the cached keys are worth right now, without any request.
    pub(crate) fn status(&self) -> KeyStatus {
        let now = Instant::now();
        let last_error = self.state().failure.as_ref().map(|(_, e)| e.message().to_owned());
        match self.snapshot.load().as_ref() {
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

    /// The current key set, fetched through discovery when none is cached.
    pub(crate) async fn keys(self: &Arc<Self>) -> Result<Arc<KeySet>, Error> {
        match self.snapshot.load_full() {
            Some(snapshot) => Ok(Arc::clone(&snapshot.keys)),
            None => Ok(Arc::clone(&self.refresh(refresh::Reason::Cold, None).await?.0.keys)),
        }
    }

    /// Makes sure keys are loaded and fresh (fetched, or the fetch in flight joined, when
    /// none are cached or they are past their freshness).
    pub(crate) async fn ensure_fresh(self: &Arc<Self>) -> Result<(), Error> {
        let current = self.snapshot.load_full();
        let reason = match &current {
            None => refresh::Reason::Cold,
            Some(snapshot) if Instant::now() >= snapshot.fresh_until => refresh::Reason::Stale,
            Some(_) => return Ok(()),
        };
        self.refresh(reason, current.map(|s| s.generation)).await.map(|_| ())
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
