//! The Authority against a counting in-process provider, with paused tokio time: request
//! counts under concurrency, rotation, kid floods, outages and slow providers.

#![allow(clippy::unwrap_used)] // tests fail loudly by design

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use identity_model::transport::{BoxFuture, HttpRequest, HttpResponse, HttpTransport, TransportError};
use identity_model::{Algorithm, Authority, DiscoveryPolicy, ErrorKind, HttpConfig, SigningKey, Validation};
use serde_json::{Value, json};
use tokio::task::JoinSet;

const ISS: &str = "https://issuer.example";

#[derive(Debug, Default)]
struct Provider {
    keys: Mutex<Vec<Value>>,
    delay: Mutex<Duration>,
    down: Mutex<bool>,
    /// The issuer it serves, when not `ISS`.
    issuer: Mutex<Option<String>>,
    /// Statuses (with Retry-After) to answer before behaving normally.
    script: Mutex<std::collections::VecDeque<(u16, Option<&'static str>)>>,
    discovery_hits: AtomicUsize,
    jwks_hits: AtomicUsize,
}

impl Provider {
    fn publish(&self, keys: &[&SigningKey]) {
        *self.keys.lock().unwrap() = keys.iter().map(|k| Value::Object(k.verification_jwk())).collect();
    }
}

impl HttpTransport for Provider {
    fn get(&self, request: HttpRequest) -> BoxFuture<'_, Result<HttpResponse, TransportError>> {
        Box::pin(async move {
            let delay = *self.delay.lock().unwrap();
            if request.url.ends_with("/.well-known/openid-configuration") {
                self.discovery_hits.fetch_add(1, Ordering::SeqCst);
            } else {
                self.jwks_hits.fetch_add(1, Ordering::SeqCst);
            }
            tokio::time::sleep(delay).await;
            let scripted = self.script.lock().unwrap().pop_front();
            if let Some((status, retry_after)) = scripted {
                return Ok(HttpResponse {
                    status,
                    retry_after: retry_after.map(str::to_owned),
                    ..HttpResponse::default()
                });
            }
            if *self.down.lock().unwrap() {
                return Err(TransportError {
                    message: "connection refused".into(),
                    timeout: false,
                    source: None,
                });
            }
            let body = if request.url.ends_with("/.well-known/openid-configuration") {
                let issuer = self.issuer.lock().unwrap().clone().unwrap_or_else(|| ISS.to_owned());
                json!({"issuer": issuer, "jwks_uri": format!("{issuer}/jwks")})
            } else {
                json!({"keys": *self.keys.lock().unwrap()})
            };
            Ok(HttpResponse {
                status: 200,
                content_type: Some("application/json".into()),
                body: body.to_string().into_bytes(),
                ..HttpResponse::default()
            })
        })
    }
}

fn authority(provider: &Arc<Provider>) -> Authority {
    Authority::builder(ISS)
        .rules(Validation::new(ISS).audience("api"))
        .policy(DiscoveryPolicy::default().resource_server_fields())
        .config(HttpConfig::default())
        .transport(Arc::clone(provider) as Arc<dyn HttpTransport>)
        .build()
        .unwrap()
}

fn token(key: &SigningKey) -> String {
    token_with_kid(key, key.kid().unwrap())
}

fn token_with_kid(key: &SigningKey, kid: &str) -> String {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let mut header = serde_json::Map::new();
    header.insert("kid".into(), kid.into());
    header.insert("typ".into(), "at+jwt".into());
    let claims = json!({"iss": ISS, "aud": "api", "sub": "s", "exp": now + 86_400 * 3});
    key.sign_compact(header, claims.to_string().as_bytes()).unwrap()
}

async fn validate_all(authority: &Authority, tokens: Vec<String>) -> Vec<Result<(), ErrorKind>> {
    let mut set = JoinSet::new();
    for token in tokens {
        let authority = authority.clone();
        set.spawn(async move { authority.validate(&token).await.map(|_| ()).map_err(|e| e.kind()) });
    }
    set.join_all().await
}

fn setup() -> (Arc<Provider>, SigningKey) {
    let key = SigningKey::generate(Algorithm::ES256).unwrap();
    let provider = Arc::new(Provider::default());
    provider.publish(&[&key]);
    *provider.delay.lock().unwrap() = Duration::from_millis(50);
    (provider, key)
}

#[tokio::test(start_paused = true)]
async fn cold_start_with_1000_concurrent_validations_fetches_once() {
    let (provider, key) = setup();
    let authority = authority(&provider);
    let results = validate_all(&authority, vec![token(&key); 1000]).await;
    assert!(results.iter().all(Result::is_ok), "{:?}", results.iter().find(|r| r.is_err()));
    assert_eq!(provider.discovery_hits.load(Ordering::SeqCst), 1);
    assert_eq!(provider.jwks_hits.load(Ordering::SeqCst), 1);
    assert!(authority.stats().coalesced.load(Ordering::Relaxed) >= 999);
}

#[tokio::test(start_paused = true)]
async fn rotation_burst_refetches_once_and_every_token_validates() {
    let (provider, old) = setup();
    let authority = authority(&provider);
    authority.validate(&token(&old)).await.unwrap();
    let new = SigningKey::generate(Algorithm::ES256).unwrap();
    provider.publish(&[&new, &old]);
    let results = validate_all(&authority, vec![token(&new); 1000]).await;
    assert!(results.iter().all(Result::is_ok));
    assert_eq!(provider.jwks_hits.load(Ordering::SeqCst), 2, "warm-up + one refetch");
    assert_eq!(provider.discovery_hits.load(Ordering::SeqCst), 1, "discovery still fresh");
}

#[tokio::test(start_paused = true)]
async fn random_kid_floods_fetch_at_most_once_per_cooldown() {
    let (provider, key) = setup();
    let authority = authority(&provider);
    authority.validate(&token(&key)).await.unwrap();
    let attacker = SigningKey::generate(Algorithm::ES256).unwrap();
    for window in 0..3 {
        let tokens: Vec<String> =
            (0..3_334).map(|i| token_with_kid(&attacker, &format!("random-{window}-{i}"))).collect();
        let results = validate_all(&authority, tokens).await;
        assert!(results.iter().all(|r| *r == Err(ErrorKind::KeyNotFound)), "window {window}");
        tokio::time::advance(Duration::from_secs(5)).await;
    }
    let fetches = provider.jwks_hits.load(Ordering::SeqCst) - 1;
    assert!(fetches <= 3, "{fetches} refetches for 3 cooldown windows");
    // The genuine key still works.
    assert!(authority.validate(&token(&key)).await.is_ok());
}

#[tokio::test(start_paused = true)]
async fn an_outage_keeps_the_cached_keys_until_max_staleness() {
    let (provider, key) = setup();
    let authority = authority(&provider);
    authority.validate(&token(&key)).await.unwrap();
    *provider.down.lock().unwrap() = true;
    // An unknown kid during the outage: not found, and the cached keys stay.
    let stranger = SigningKey::generate(Algorithm::ES256).unwrap();
    assert_eq!(authority.validate(&token(&stranger)).await.unwrap_err().kind(), ErrorKind::KeyNotFound);
    assert!(authority.validate(&token(&key)).await.is_ok());
    // An hour-long outage past the keys' freshness: served from last known good.
    for _ in 0..12 {
        tokio::time::advance(Duration::from_secs(300)).await;
        assert!(authority.validate(&token(&key)).await.is_ok());
        tokio::task::yield_now().await;
    }
    assert!(authority.stats().fetch_errors.load(Ordering::Relaxed) >= 1);
    // Past the maximum staleness (24 h): fail closed.
    tokio::time::advance(Duration::from_secs(24 * 3600)).await;
    assert_eq!(authority.validate(&token(&key)).await.unwrap_err().kind(), ErrorKind::KeysUnavailable);
    // The provider comes back: keys refresh and validation resumes.
    *provider.down.lock().unwrap() = false;
    // The failed probe reopened the circuit: no request for 30 s, then a probe that succeeds.
    tokio::time::advance(Duration::from_secs(2)).await;
    assert_eq!(authority.validate(&token(&key)).await.unwrap_err().kind(), ErrorKind::KeysUnavailable);
    tokio::time::advance(Duration::from_secs(30)).await;
    assert!(authority.validate(&token(&key)).await.is_ok());
}

#[tokio::test(start_paused = true)]
async fn cold_start_during_an_outage_probes_once_per_backoff() {
    let (provider, key) = setup();
    *provider.down.lock().unwrap() = true;
    let authority = authority(&provider);
    let results = validate_all(&authority, vec![token(&key); 100]).await;
    assert!(results.iter().all(|r| *r == Err(ErrorKind::KeysUnavailable)));
    // One probe (3 attempts with backoff) for 100 callers.
    assert_eq!(provider.discovery_hits.load(Ordering::SeqCst), 3, "one probe for 100 callers");
    tokio::time::advance(Duration::from_millis(1500)).await;
    let results = validate_all(&authority, vec![token(&key); 100]).await;
    assert!(results.iter().all(|r| *r == Err(ErrorKind::KeysUnavailable)));
    // The circuit opens after 5 consecutive failures: this probe's third attempt is not sent.
    assert_eq!(provider.discovery_hits.load(Ordering::SeqCst), 5, "one more probe after the backoff");
    tokio::time::advance(Duration::from_millis(1500)).await;
    let results = validate_all(&authority, vec![token(&key); 100]).await;
    assert!(results.iter().all(|r| *r == Err(ErrorKind::KeysUnavailable)));
    assert_eq!(provider.discovery_hits.load(Ordering::SeqCst), 5, "circuit open: nothing sent");
    // After the open period, one half-open probe; the provider is back, so it closes.
    *provider.down.lock().unwrap() = false;
    tokio::time::advance(Duration::from_secs(30)).await;
    let results = validate_all(&authority, vec![token(&key); 100]).await;
    assert!(results.iter().all(Result::is_ok), "{:?}", results.iter().find(|r| r.is_err()));
    assert_eq!(provider.discovery_hits.load(Ordering::SeqCst), 6, "exactly one probe");
}

#[tokio::test(start_paused = true)]
async fn a_slow_refetch_does_not_hold_up_cached_validations() {
    let (provider, key) = setup();
    let authority = authority(&provider);
    authority.validate(&token(&key)).await.unwrap();
    *provider.delay.lock().unwrap() = Duration::from_secs(2);
    let stranger = SigningKey::generate(Algorithm::ES256).unwrap();
    let slow = {
        let authority = authority.clone();
        let t = token(&stranger);
        tokio::spawn(async move { authority.validate(&t).await.map(|_| ()).map_err(|e| e.kind()) })
    };
    tokio::task::yield_now().await;
    let before = tokio::time::Instant::now();
    for _ in 0..100 {
        assert!(authority.validate(&token(&key)).await.is_ok());
    }
    assert_eq!(tokio::time::Instant::now(), before, "no cached validation waited for the fetch");
    assert_eq!(slow.await.unwrap(), Err(ErrorKind::KeyNotFound));
}

// The same scenarios through the blocking API, from plain threads (real time: the provider
// answers in 50 ms).

fn blocking_validate_all(
    authority: &identity_model::blocking::Authority,
    tokens: Vec<String>,
) -> Vec<Result<(), ErrorKind>> {
    std::thread::scope(|scope| {
        let handles: Vec<_> = tokens
            .into_iter()
            .map(|token| {
                let authority = authority.clone();
                scope.spawn(move || authority.validate(&token).map(|_| ()).map_err(|e| e.kind()))
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    })
}

#[test]
fn blocking_cold_start_and_rotation_fetch_once_each() {
    let (provider, old) = setup();
    let authority = identity_model::blocking::Authority::new(authority(&provider));
    let results = blocking_validate_all(&authority, vec![token(&old); 64]);
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    assert_eq!(
        (provider.discovery_hits.load(Ordering::SeqCst), provider.jwks_hits.load(Ordering::SeqCst)),
        (1, 1)
    );
    let new = SigningKey::generate(Algorithm::ES256).unwrap();
    provider.publish(&[&new, &old]);
    let results = blocking_validate_all(&authority, vec![token(&new); 64]);
    assert!(results.iter().all(Result::is_ok));
    assert_eq!(provider.jwks_hits.load(Ordering::SeqCst), 2);
    // Cached keys: the hot path, without the background runtime.
    let hits = authority.stats().hits.load(Ordering::Relaxed);
    assert!(authority.validate(&token(&old)).is_ok());
    assert_eq!(authority.stats().hits.load(Ordering::Relaxed), hits + 1);
}

#[test]
fn blocking_outage_keeps_cached_keys() {
    let (provider, key) = setup();
    let authority = identity_model::blocking::Authority::new(authority(&provider));
    authority.validate(&token(&key)).unwrap();
    *provider.down.lock().unwrap() = true;
    let stranger = SigningKey::generate(Algorithm::ES256).unwrap();
    assert_eq!(authority.validate(&token(&stranger)).unwrap_err().kind(), ErrorKind::KeyNotFound);
    assert!(authority.validate(&token(&key)).is_ok());
}

#[tokio::test]
async fn blocking_api_refuses_to_run_inside_an_async_runtime() {
    let (provider, key) = setup();
    let authority = identity_model::blocking::Authority::new(authority(&provider));
    assert_eq!(authority.validate(&token(&key)).unwrap_err().kind(), ErrorKind::InvalidUsage);
    assert_eq!(provider.discovery_hits.load(Ordering::SeqCst), 0);
}

#[tokio::test(start_paused = true)]
async fn transient_errors_are_retried_with_backoff_and_retry_after() {
    let (provider, key) = setup();
    provider.script.lock().unwrap().extend([(503, None), (429, Some("7"))]);
    let authority = authority(&provider);
    let start = tokio::time::Instant::now();
    assert!(authority.validate(&token(&key)).await.is_ok());
    assert_eq!(provider.discovery_hits.load(Ordering::SeqCst), 3, "503, 429, then 200");
    assert!(start.elapsed() >= Duration::from_secs(7), "Retry-After honoured: {:?}", start.elapsed());
}

#[tokio::test(start_paused = true)]
async fn retry_after_beyond_the_cap_and_client_errors_are_not_retried() {
    let (provider, key) = setup();
    provider.script.lock().unwrap().push_back((503, Some("3600")));
    let authority = authority(&provider);
    assert_eq!(authority.validate(&token(&key)).await.unwrap_err().kind(), ErrorKind::KeysUnavailable);
    assert_eq!(provider.discovery_hits.load(Ordering::SeqCst), 1, "an hour's Retry-After gives up at once");
    let (provider, key) = setup();
    provider.script.lock().unwrap().push_back((404, None));
    let second = self::authority(&provider);
    assert_eq!(second.validate(&token(&key)).await.unwrap_err().kind(), ErrorKind::KeysUnavailable);
    assert_eq!(provider.discovery_hits.load(Ordering::SeqCst), 1, "404 is not retried");
}

#[tokio::test(start_paused = true)]
async fn keys_are_refreshed_ahead_of_expiry_without_making_anyone_wait() {
    let (provider, key) = setup();
    let authority = authority(&provider);
    authority.validate(&token(&key)).await.unwrap();
    assert_eq!(provider.jwks_hits.load(Ordering::SeqCst), 1);
    // Default freshness is one hour; at 79 % nothing happens, past 90 % a refresh has started.
    tokio::time::advance(Duration::from_secs(2844)).await;
    authority.validate(&token(&key)).await.unwrap();
    tokio::time::advance(Duration::from_millis(200)).await;
    assert_eq!(provider.jwks_hits.load(Ordering::SeqCst), 1, "too early to refresh");
    tokio::time::advance(Duration::from_secs(400)).await;
    let before = tokio::time::Instant::now();
    authority.validate(&token(&key)).await.unwrap();
    assert_eq!(tokio::time::Instant::now(), before, "the caller did not wait for the refresh");
    tokio::time::advance(Duration::from_millis(200)).await;
    assert_eq!(provider.jwks_hits.load(Ordering::SeqCst), 2, "refreshed in the background before expiry");
    assert_eq!(authority.stats().stale_serves.load(Ordering::Relaxed), 0, "never served expired keys");
}

#[tokio::test(start_paused = true)]
async fn the_tokens_iss_selects_among_pinned_issuers_and_unknown_ones_are_never_fetched() {
    let (a, key_a) = setup();
    let (b, key_b) = setup();
    let other = "https://other.example";
    *b.issuer.lock().unwrap() = Some(other.to_owned());
    let authority_b = Authority::builder(other)
        .rules(Validation::new(other).audience("api"))
        .policy(DiscoveryPolicy::default().resource_server_fields())
        .transport(Arc::clone(&b) as Arc<dyn HttpTransport>)
        .build()
        .unwrap();
    let issuers = identity_model::Issuers::new().with(authority(&a)).with(authority_b);
    let sign = |key: &SigningKey, iss: &str| {
        key.sign_jwt(None, &json!({"iss": iss, "aud": "api", "exp": 4_000_000_000u64})).unwrap()
    };
    assert!(issuers.validate(&sign(&key_a, ISS)).await.is_ok());
    assert!(issuers.validate(&sign(&key_b, other)).await.is_ok());
    let hits = |p: &Provider| p.discovery_hits.load(Ordering::SeqCst) + p.jwks_hits.load(Ordering::SeqCst);
    let before = hits(&a) + hits(&b);
    let unknown = issuers.validate(&sign(&key_a, "https://attacker.example")).await.unwrap_err();
    assert_eq!(unknown.kind(), ErrorKind::InvalidIssuer);
    assert_eq!(hits(&a) + hits(&b), before, "an unknown issuer is never discovered");
    // Claiming A's issuer with B's key: A's keys decide, and they do not have it.
    assert_eq!(issuers.validate(&sign(&key_b, ISS)).await.unwrap_err().kind(), ErrorKind::KeyNotFound);
    assert_eq!(issuers.validate("garbage").await.unwrap_err().kind(), ErrorKind::MalformedToken);
}
