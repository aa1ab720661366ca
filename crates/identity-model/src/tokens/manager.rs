//! A cache of client-credentials tokens per (scope set, resource set) that refreshes ahead of
//! expiry, lets one request through when many callers need a token, keeps serving a valid
//! token while the provider fails (with backoff), and forgets a token the API refused.
//!
//! Times are `tokio::time::Instant`, so tests drive it with paused time.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use arc_swap::ArcSwapOption;
use identity_model_core::{Error, ErrorKind, TokenResponse};
use tokio::time::Instant;

use crate::telemetry::{TokenManagerMeters, tally};

use crate::flight::SingleFlight;
use crate::http::{Backoff, jitter_unit};
use crate::tokens::client::TokenClient;

/// When to refresh and how to back off.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TokenManagerConfig {
    /// Refresh after this fraction of the lifetime (default 0.75).
    pub refresh_fraction: f64,
    /// Minus up to this fraction of the lifetime, at random, so instances spread out (default 0.1).
    pub jitter: f64,
    /// A token counts as expired this long before its `expires_in` ends (default 10 s, at
    /// most a tenth of the lifetime), so it is not sent as it dies.
    pub expiry_margin: Duration,
    /// Lifetime assumed when the response has no `expires_in` (default 5 min).
    pub default_lifetime: Duration,
    /// First wait after a failed request; doubles per failure, with jitter (default 1 s).
    pub backoff_base: Duration,
    /// Longest wait between failed requests (default 60 s).
    pub backoff_cap: Duration,
}

impl Default for TokenManagerConfig {
    fn default() -> Self {
        TokenManagerConfig {
            refresh_fraction: 0.75,
            jitter: 0.1,
            expiry_margin: Duration::from_secs(10),
            default_lifetime: Duration::from_secs(300),
            backoff_base: Duration::from_secs(1),
            backoff_cap: Duration::from_secs(60),
        }
    }
}

/// Counters.
#[derive(Debug, Default)]
pub struct TokenManagerStats {
    /// Token requests sent to the provider.
    pub requests: AtomicU64,
    /// Calls answered from the cache without waiting.
    pub hits: AtomicU64,
    /// Calls that waited for another caller's request and took its result.
    pub coalesced: AtomicU64,
    /// Failed token requests.
    pub failures: AtomicU64,
    /// Calls answered with a failure remembered during the backoff (no request sent).
    pub backoff_rejections: AtomicU64,
}

type Key = (Vec<String>, Vec<String>);

/// Longest token lifetime believed, whatever `expires_in` says (one year).
const MAX_LIFETIME_SECS: u64 = 365 * 86_400;

struct Cached {
    token: Arc<TokenResponse>,
    refresh_at: Instant,
    expires_at: Instant,
}

/// Failures of a slot's requests, locked only between awaits.
#[derive(Default)]
struct SlotState {
    failures: u32,
    retry_at: Option<Instant>,
    last_error: Option<Error>,
}

struct Slot {
    key: Key,
    current: ArcSwapOption<Cached>,
    state: std::sync::Mutex<SlotState>,
    /// The token request in flight, in its own task: callers wait on its outcome and may be
    /// dropped without cancelling it.
    flight: Arc<SingleFlight<Arc<TokenResponse>>>,
    /// When `get_for` last asked for it (a tick of the manager's counter), for eviction.
    last_used: AtomicU64,
}

impl Slot {
    fn new(key: Key) -> Arc<Slot> {
        Arc::new(Slot {
            key,
            current: ArcSwapOption::empty(),
            state: std::sync::Mutex::new(SlotState::default()),
            flight: SingleFlight::new(ErrorKind::TransportError),
            last_used: AtomicU64::new(0),
        })
    }

    fn state(&self) -> std::sync::MutexGuard<'_, SlotState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The remembered failure, while its backoff runs.
    fn backing_off(&self, now: Instant) -> Option<Error> {
        let state = self.state();
        let error = state.last_error.as_ref()?;
        state.retry_at.is_some_and(|at| now < at).then(|| error.replicate())
    }
}

struct Inner {
    client: TokenClient,
    config: TokenManagerConfig,
    /// The slot of the default scopes and resources: `get()` goes straight to it.
    default: Arc<Slot>,
    slots: std::sync::Mutex<HashMap<Key, Arc<Slot>>>,
    ticks: AtomicU64,
    stats: TokenManagerStats,
    #[cfg_attr(not(feature = "metrics"), allow(dead_code))]
    meters: TokenManagerMeters,
}

/// Most (scope set, resource set) slots a manager keeps besides its default one; past it the
/// least recently used is dropped, so callers passing arbitrary scopes cannot grow it.
pub const MAX_TOKEN_SLOTS: usize = 64;

/// Client-credentials tokens for one client, cached and refreshed. Cheap to clone.
#[derive(Clone)]
pub struct TokenManager {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for TokenManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenManager")
            .field("client", &self.inner.client)
            .field("config", &self.inner.config)
            .field("scopes", &self.inner.default.key.0)
            .field("resources", &self.inner.default.key.1)
            .finish_non_exhaustive()
    }
}

fn key(scopes: &[&str], resources: &[&str]) -> Key {
    let sorted = |items: &[&str]| {
        let mut v: Vec<String> = items.iter().map(|s| (*s).to_owned()).collect();
        v.sort_unstable();
        v.dedup();
        v
    };
    (sorted(scopes), sorted(resources))
}

impl TokenManager {
    /// A manager for `client`, whose [`TokenManager::get`] asks for `scopes` and `resources`.
    pub fn new(client: TokenClient, scopes: &[&str], resources: &[&str]) -> Self {
        TokenManager::with_config(client, scopes, resources, TokenManagerConfig::default())
    }

    /// The same, with explicit timing settings.
    pub fn with_config(
        client: TokenClient,
        scopes: &[&str],
        resources: &[&str],
        config: TokenManagerConfig,
    ) -> Self {
        let default = Slot::new(key(scopes, resources));
        let slots = HashMap::from([(default.key.clone(), Arc::clone(&default))]);
        let meters = TokenManagerMeters::new(&[("client_id", &client.client().client_id)]);
        TokenManager {
            inner: Arc::new(Inner {
                client,
                config,
                default,
                slots: std::sync::Mutex::new(slots),
                ticks: AtomicU64::new(0),
                stats: TokenManagerStats::default(),
                meters,
            }),
        }
    }

    /// The key the cached tokens are bound to, when the client gets DPoP-bound tokens: make
    /// each resource request's proof with it.
    pub fn dpop_key(&self) -> Option<&identity_model_core::DpopKey> {
        self.inner.client.dpop_key()
    }

    /// Counters.
    pub fn stats(&self) -> &TokenManagerStats {
        &self.inner.stats
    }

    /// A valid token for the default scopes and resources.
    pub async fn get(&self) -> Result<Arc<TokenResponse>, Error> {
        self.get_from(&self.inner.default).await
    }

    /// A valid token for `scopes` and `resources` (cached per set, order ignored).
    pub async fn get_for(&self, scopes: &[&str], resources: &[&str]) -> Result<Arc<TokenResponse>, Error> {
        self.get_from(&self.slot(key(scopes, resources))).await
    }

    async fn get_from(&self, slot: &Arc<Slot>) -> Result<Arc<TokenResponse>, Error> {
        let inner = &self.inner;
        let now = Instant::now();
        if let Some(cached) = slot.current.load_full() {
            if now < cached.expires_at {
                tally!(inner, hits);
                if now >= cached.refresh_at {
                    self.refresh_ahead(slot, now);
                }
                return Ok(Arc::clone(&cached.token));
            }
        }
        if let Some(error) = slot.backing_off(now) {
            tally!(inner, backoff_rejections);
            return Err(error);
        }
        let (ticket, started) = self.start(slot)?;
        if !started {
            tally!(inner, coalesced);
        }
        ticket.outcome().await
    }

    /// Joins the slot's request in flight or starts one in its own task.
    fn start(&self, slot: &Arc<Slot>) -> Result<(crate::flight::Ticket<Arc<TokenResponse>>, bool), Error> {
        let this = self.clone();
        let target = Arc::clone(slot);
        slot.flight.join_or_start(move |_| async move { this.fetch(&target).await })
    }

    /// Forgets `access_token` when it is the cached one (call after a 401 with it). Other
    /// callers' newer tokens are kept, so a burst of 401s on one token costs one request.
    pub fn invalidate(&self, access_token: &str) {
        let slots = self.inner.slots.lock().unwrap_or_else(|p| p.into_inner());
        for slot in slots.values() {
            let matches =
                slot.current.load().as_ref().is_some_and(|c| c.token.access_token.expose() == access_token);
            if matches {
                slot.current.store(None);
            }
        }
    }

    /// Forgets every cached token.
    pub fn clear(&self) {
        let slots = self.inner.slots.lock().unwrap_or_else(|p| p.into_inner());
        for slot in slots.values() {
            slot.current.store(None);
        }
    }

    fn slot(&self, key: Key) -> Arc<Slot> {
        let inner = &self.inner;
        let tick = inner.ticks.fetch_add(1, Ordering::Relaxed);
        let mut slots = inner.slots.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(slot) = slots.get(&key) {
            slot.last_used.store(tick, Ordering::Relaxed);
            return Arc::clone(slot);
        }
        if slots.len() > MAX_TOKEN_SLOTS {
            let default = &inner.default.key;
            let oldest = slots
                .iter()
                .filter(|(k, _)| *k != default)
                .min_by_key(|(_, slot)| slot.last_used.load(Ordering::Relaxed))
                .map(|(k, _)| k.clone());
            if let Some(oldest) = oldest {
                slots.remove(&oldest);
            }
        }
        let slot = Slot::new(key);
        slot.last_used.store(tick, Ordering::Relaxed);
        slots.insert(slot.key.clone(), Arc::clone(&slot));
        slot
    }

    /// How many slots are kept (the default one included).
    pub fn slots(&self) -> usize {
        self.inner.slots.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    /// One background refresh while the current token is still good, unless one is running
    /// or the backoff after a failure has not passed.
    fn refresh_ahead(&self, slot: &Arc<Slot>, now: Instant) {
        if slot.flight.in_flight().is_some() || slot.backing_off(now).is_some() {
            return;
        }
        // Failures are counted and logged; the current token keeps being served.
        let _ = self.start(slot);
    }

    /// The body of a slot's request task.
    async fn fetch(&self, slot: &Slot) -> Result<Arc<TokenResponse>, Error> {
        let inner = &self.inner;
        let config = &inner.config;
        // A caller that found no token can start this flight just after another flight stored
        // one and ended (its look and its start are not one step): that token is the answer.
        if let Some(cached) = slot.current.load_full() {
            if Instant::now() < cached.refresh_at {
                tally!(inner, coalesced);
                return Ok(Arc::clone(&cached.token));
            }
        }
        tally!(inner, requests);
        let scopes: Vec<&str> = slot.key.0.iter().map(String::as_str).collect();
        let resources: Vec<&str> = slot.key.1.iter().map(String::as_str).collect();
        let started = Instant::now();
        match inner.client.client_credentials(&scopes, &resources).await {
            Ok(response) => {
                // A provider's lifetime is believed up to a year (a huge `expires_in` must not
                // overflow the arithmetic below).
                let lifetime = response
                    .expires_in
                    .map_or(config.default_lifetime, |secs| Duration::from_secs(secs.min(MAX_LIFETIME_SECS)));
                let margin = config.expiry_margin.min(lifetime / 10);
                let ahead = (config.refresh_fraction - config.jitter * jitter_unit()).clamp(0.0, 1.0);
                let token = Arc::new(response);
                slot.current.store(Some(Arc::new(Cached {
                    token: Arc::clone(&token),
                    refresh_at: crate::authority::later(started, lifetime.mul_f64(ahead)),
                    expires_at: crate::authority::later(started, lifetime - margin),
                })));
                *slot.state() = SlotState::default();
                Ok(token)
            }
            Err(e) => {
                tally!(inner, failures);
                let mut state = slot.state();
                state.failures = state.failures.saturating_add(1);
                let backoff =
                    Backoff { base: config.backoff_base, cap: config.backoff_cap, ..Backoff::default() };
                // Equal jitter: at least half the ceiling, so a failing provider is not probed at once.
                let wait = backoff.equal_jittered(state.failures - 1, jitter_unit());
                state.retry_at = Some(Instant::now() + wait);
                state.last_error = Some(e.replicate());
                let serving = slot.current.load().as_ref().is_some_and(|c| Instant::now() < c.expires_at);
                tracing::warn!(error = %e, failures = state.failures, retry_in_ms = wait.as_millis() as u64, serving_current = serving, "token request failed");
                Err(e)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU64, Ordering};

    use identity_model_core::{Client, Endpoints, FormRequest};

    use super::*;
    use crate::http::transport::{BoxFuture, HttpRequest, HttpResponse, HttpTransport, TransportError};

    #[derive(Debug, Default)]
    struct Counting(AtomicU64);

    impl HttpTransport for Counting {
        fn get(&self, _: HttpRequest) -> BoxFuture<'_, Result<HttpResponse, TransportError>> {
            Box::pin(async { unreachable!("no GET") })
        }

        fn send(&self, _: FormRequest, _: usize) -> BoxFuture<'_, Result<HttpResponse, TransportError>> {
            let n = self.0.fetch_add(1, Ordering::SeqCst) + 1;
            let body = format!(r#"{{"access_token":"t{n}","token_type":"Bearer","expires_in":300}}"#);
            Box::pin(async move {
                Ok(HttpResponse {
                    status: 200,
                    content_type: Some("application/json".into()),
                    body: body.into_bytes(),
                    ..HttpResponse::default()
                })
            })
        }
    }

    /// The window of the 16-thread test's rare failure, made deterministic: a caller saw no
    /// token, then another flight stored one and ended, then the caller starts a flight. It
    /// must get the stored token, not send a second request.
    #[tokio::test]
    async fn a_flight_started_after_a_token_landed_returns_it() {
        let transport = Arc::new(Counting::default());
        let client = crate::TokenClient::builder(Client::with_secret("svc", "secret"))
            .endpoints(Endpoints {
                issuer: Some("https://op.example".into()),
                token: Some("https://op.example/token".into()),
                ..Endpoints::default()
            })
            .transport(transport.clone())
            .build()
            .expect("a client");
        let manager = TokenManager::new(client, &["api:read"], &[]);
        let first = manager.get().await.expect("a token");
        let slot = Arc::clone(&manager.inner.default);
        let (ticket, started) = manager.start(&slot).expect("a flight");
        assert!(started, "no flight was running: this one is new");
        let second = ticket.outcome().await.expect("a token");
        assert_eq!(second.access_token.expose(), first.access_token.expose());
        assert_eq!(transport.0.load(Ordering::SeqCst), 1, "one request");
    }
}
