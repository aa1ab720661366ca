//! The refresh path: key set fetches, each in its own task (single flight), the failure
//! backoff, the kid-miss cooldown, and the freshness the provider's headers give.

use std::sync::Arc;
use std::time::Duration;

use identity_model_core::http::{FreshnessBounds, freshness};
use identity_model_core::{Error, ErrorKind, KeySet, KeySetLimits, RetryClass, media_type};
use tokio::time::Instant;

use super::origin::{FILE_RECHECK, FileRead, INLINE_FRESHNESS, KeysFrom};
use super::snapshot::Snapshot;
use super::{KeySource, unavailable, unobtainable};
use crate::flight::{Ticket, shared};
use crate::http::transport::{HttpRequest, HttpResponse};
use crate::http::{Outgoing, Tally, jitter_unit};
use crate::telemetry::tally;

/// What a refresh is for. Only kid-miss refetches start the kid-miss cooldown, and they are
/// sent once (the cached keys keep serving valid tokens; an unknown `kid` should not wait
/// through retries).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Reason {
    Cold,
    Stale,
    Ahead,
    KidMiss,
}

/// Bookkeeping of the refresh path, locked only between awaits.
#[derive(Debug, Default)]
pub(super) struct RefreshState {
    etag: Option<String>,
    /// The key file as last read (a file origin).
    file: Option<super::origin::FileStamp>,
    pub(super) failure: Option<(Instant, Arc<Error>)>,
    pub(super) kid_miss_started: Option<Instant>,
}

/// A key set fetched from an explicit URL, with what tools show of it
/// ([`crate::Authority::fetch_key_set_document`]).
#[derive(Debug)]
#[non_exhaustive]
pub struct KeySetDocument {
    /// The prepared keys.
    pub keys: KeySet,
    /// The usable keys' JWKs as the document gave them (set-aside keys left out), in order.
    pub jwks: Vec<serde_json::Value>,
    /// The response's `Cache-Control`, when it had one.
    pub cache_control: Option<String>,
}

impl RefreshState {
    pub(super) fn reset(&mut self) {
        *self = RefreshState::default();
    }
}

const JWK_SET_ACCEPT: &str = "application/jwk-set+json, application/json";

impl KeySource {
    pub(super) fn state(&self) -> std::sync::MutexGuard<'_, RefreshState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(super) fn tally(&self) -> Tally<'_> {
        Tally {
            requests: &self.stats.requests,
            retries: &self.stats.retries,
            circuit_opens: &self.stats.circuit_opens,
        }
    }

    /// The failure of the last refresh, while its backoff runs.
    pub(super) fn recent_failure(&self, now: Instant) -> Option<Arc<Error>> {
        let backoff = self.cache.refresh_failure_backoff;
        let state = self.state();
        let (at, error) = state.failure.as_ref()?;
        (now.saturating_duration_since(*at) < backoff).then(|| Arc::clone(error))
    }

    pub(super) fn wall_now(&self) -> std::time::SystemTime {
        self.clock.now().as_system_time()
    }
}

impl KeySource {
    /// Joins the key refresh in flight or starts one, and waits for it: the keys it produced
    /// and its flight number. Dropping this future leaves the refresh running.
    /// `seen` is the key generation the caller judged by (`None`: no keys): when newer keys
    /// landed meanwhile they are the answer, with flight number 0 (they prove nothing).
    pub(super) async fn refresh(
        self: &Arc<Self>,
        reason: Reason,
        seen: Option<u64>,
    ) -> Result<(Arc<Snapshot>, u64), Error> {
        let ticket = match self.keys_flight.in_flight() {
            Some(ticket) => {
                tally!(self, coalesced);
                ticket
            }
            None => {
                // A flight ends after storing its keys: with none in flight, newer keys are visible.
                if let Some(current) = self.snapshot.load_full() {
                    if Some(current.generation) != seen {
                        tally!(self, coalesced);
                        return Ok((current, 0));
                    }
                }
                self.start_refresh(reason).map_err(unobtainable)?
            }
        };
        let seq = ticket.seq;
        Ok((ticket.outcome().await.map_err(unobtainable)?, seq))
    }

    fn start_refresh(self: &Arc<Self>, reason: Reason) -> Result<Ticket<Arc<Snapshot>>, Error> {
        if let Some(ticket) = self.keys_flight.in_flight() {
            tally!(self, coalesced);
            return Ok(ticket);
        }
        let now = Instant::now();
        if let Some(failure) = self.recent_failure(now) {
            // The provider failed a moment ago: answer from that, do not probe again.
            return Err(unavailable(format!(
                "the provider failed recently ({}: {}); next attempt after the backoff",
                failure.kind().as_str(),
                failure.message()
            ))
            .with_source(shared(&failure)));
        }
        let this = Arc::clone(self);
        let (ticket, started) = self.keys_flight.join_or_start(move |_| {
            // Stamped once the flight is visible: whoever sees the cooldown running also sees
            // the flight (or, once it ended, its keys).
            if reason == Reason::KidMiss {
                this.state().kid_miss_started = Some(now);
            }
            async move { this.fetch_keys(reason).await }
        })?;
        if !started {
            tally!(self, coalesced);
        }
        Ok(ticket)
    }

    /// Starts a refresh nobody waits for (keys due for renewal, or served stale), unless one
    /// is running or the provider failed within the backoff.
    pub(crate) fn refresh_in_background(self: &Arc<Self>, now: Instant) {
        if self.keys_flight.in_flight().is_some() || self.recent_failure(now).is_some() {
            return;
        }
        // A failure is counted in fetch_errors and logged; the current keys stay.
        let _ = self.start_refresh(Reason::Ahead);
    }

    /// The body of a key refresh task.
    async fn fetch_keys(self: Arc<Self>, reason: Reason) -> Result<Arc<Snapshot>, Error> {
        tally!(self, refreshes);
        let result = self.fetch_keys_once(reason).await;
        match &result {
            Ok(snapshot) => {
                self.state().failure = None;
                tracing::info!(
                    issuer = %self.issuer,
                    generation = snapshot.generation,
                    keys = snapshot.keys.len(),
                    set_aside = snapshot.keys.rejected().len(),
                    "key set refreshed"
                );
            }
            Err(e) => {
                self.state().failure = Some((Instant::now(), Arc::new(e.replicate())));
                let serving_last_good = self.snapshot.load().is_some();
                tracing::warn!(issuer = %self.issuer, error = %e, serving_last_good, "key refresh failed");
                tally!(self, fetch_errors);
            }
        }
        result
    }

    async fn fetch_keys_once(self: &Arc<Self>, reason: Reason) -> Result<Arc<Snapshot>, Error> {
        let document;
        let jwks_uri = match &self.keys_from {
            KeysFrom::Discovery => {
                document = self.metadata().await?;
                document.jwks_uri().ok_or_else(|| unavailable("discovery has no jwks_uri"))?
            }
            KeysFrom::JwksUri(url) => url.as_str(),
            KeysFrom::File(path) => return self.load_key_file(path).await,
            KeysFrom::Inline(keys) => return Ok(self.keep(Arc::clone(keys), INLINE_FRESHNESS)),
        };
        let config = &self.cache;
        let previous = self.snapshot.load_full();
        let etag = previous.as_ref().and(self.state().etag.clone());
        let class = if reason == Reason::KidMiss { RetryClass::Never } else { RetryClass::Retryable };
        let response = self.get(jwks_uri, JWK_SET_ACCEPT, etag, config.max_jwks_size, class).await?;
        let bounds = FreshnessBounds {
            default: config.jwks_cache_ttl,
            floor: config.min_freshness,
            cap: config.max_jwks_freshness,
        };
        let ttl = self.freshness_of(&response, bounds);
        let keys = if response.status == 304 {
            // Not modified: the same prepared keys, fresh again.
            Arc::clone(&previous.ok_or_else(|| unavailable("304 without a cached key set"))?.keys)
        } else {
            let keys = Arc::new(self.key_set_from(&response)?);
            if keys.is_empty() {
                return Err(unavailable("the provider's key set has no usable key"));
            }
            self.state().etag = response.etag.clone();
            keys
        };
        Ok(self.keep(keys, ttl))
    }

    /// Stores `keys` as the current snapshot, fresh for `ttl`.
    fn keep(&self, keys: Arc<KeySet>, ttl: Duration) -> Arc<Snapshot> {
        let previous = self.snapshot.load();
        let generation = previous.as_ref().map_or(1, |p| p.generation.saturating_add(1));
        let snapshot =
            Arc::new(Snapshot::new(keys, generation, Instant::now(), ttl, self.max_staleness, jitter_unit()));
        self.snapshot.store(Some(Arc::clone(&snapshot)));
        snapshot
    }

    /// A key file's keys: the cached ones again when the file did not change, the new ones
    /// when it did and they parse (the refresh fails otherwise, and the last good keys stay).
    async fn load_key_file(self: &Arc<Self>, path: &std::path::Path) -> Result<Arc<Snapshot>, Error> {
        let previous = self.snapshot.load_full();
        let last = previous.as_ref().and(self.state().file);
        match self.read_key_file(path, last).await? {
            FileRead::Unchanged => {
                let keys = previous
                    .ok_or_else(|| unavailable("the key file is unchanged but no keys are cached"))?;
                Ok(self.keep(Arc::clone(&keys.keys), FILE_RECHECK))
            }
            FileRead::Changed(keys, stamp) => {
                self.state().file = Some(stamp);
                Ok(self.keep(Arc::new(keys), FILE_RECHECK))
            }
        }
    }

    fn key_set_from(&self, response: &HttpResponse) -> Result<KeySet, Error> {
        let config = &self.cache;
        media_type::check(response.content_type.as_deref(), media_type::JWK_SET)?;
        let limits = KeySetLimits { max_bytes: config.max_jwks_size, max_keys: config.max_jwks_keys };
        KeySet::from_json_with(&response.body, limits)
    }

    pub(super) fn freshness_of(&self, response: &HttpResponse, bounds: FreshnessBounds) -> Duration {
        let now = self.wall_now();
        freshness(response.cache_control.as_deref(), response.expires.as_deref(), now, bounds)
    }

    /// Fetches a key set from an explicit URL with this authority's policy and limits.
    pub(crate) async fn fetch_key_set(&self, url: &str) -> Result<KeySet, Error> {
        Ok(self.fetch_key_set_document(url).await?.keys)
    }

    /// [`KeySource::fetch_key_set`] with the document's usable keys as JSON and the
    /// response's `Cache-Control`.
    pub(crate) async fn fetch_key_set_document(&self, url: &str) -> Result<KeySetDocument, Error> {
        let max = self.cache.max_jwks_size;
        let response = self.get(url, JWK_SET_ACCEPT, None, max, RetryClass::Retryable).await?;
        let keys = self.key_set_from(&response)?;
        let mut document: serde_json::Value = serde_json::from_slice(&response.body)
            .map_err(|_| Error::new(ErrorKind::InvalidKeySet, "the key set is not JSON"))?;
        let rejected: Vec<usize> = keys.rejected().iter().map(|r| r.index).collect();
        let usable = match document.get_mut("keys").map(serde_json::Value::take) {
            Some(serde_json::Value::Array(all)) => all
                .into_iter()
                .enumerate()
                .filter(|(index, _)| !rejected.contains(index))
                .map(|(_, jwk)| jwk)
                .collect(),
            _ => Vec::new(),
        };
        Ok(KeySetDocument { keys, jwks: usable, cache_control: response.cache_control.clone() })
    }

    /// A GET through the fetch loop; an error status after the retries is `http_status`.
    pub(super) async fn get(
        &self,
        url: &str,
        accept: &'static str,
        etag: Option<String>,
        max_body: usize,
        class: RetryClass,
    ) -> Result<HttpResponse, Error> {
        let request = HttpRequest { url: url.to_owned(), accept, if_none_match: etag, max_body };
        let response = self
            .fetcher
            .fetch(Outgoing::Document(request), class, &self.policy, ErrorKind::KeysUnavailable, self.tally())
            .await?;
        if response.status == 304 || (200..300).contains(&response.status) {
            Ok(response)
        } else {
            Err(Error::new(ErrorKind::HttpStatus, format!("{url} answered HTTP {}", response.status)))
        }
    }
}
