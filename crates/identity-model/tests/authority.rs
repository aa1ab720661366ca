//! The Authority against a counting in-process provider, with paused tokio time: request
//! counts under concurrency, rotation, kid floods, outages and slow providers.

#![allow(clippy::unwrap_used)] // tests fail loudly by design

mod support;

use std::error::Error as _;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use identity_model::transport::HttpTransport;
use identity_model::{Algorithm, Authority, DiscoveryPolicy, ErrorKind, SigningKey, Validation};
use serde_json::json;
use support::*;

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
    // An unknown kid during the outage: the provider's fault (it may have published the key
    // since), and the cached keys stay.
    let stranger = SigningKey::generate(Algorithm::ES256).unwrap();
    assert_eq!(authority.validate(&token(&stranger)).await.unwrap_err().kind(), ErrorKind::KeysUnavailable);
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
    let e = authority.validate(&token(&key)).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::KeysUnavailable);
    assert!(e.source().is_some(), "the refresh failure is kept as the cause");
    // The provider comes back: past the failure backoff, keys refresh and validation resumes.
    *provider.down.lock().unwrap() = false;
    tokio::time::advance(Duration::from_secs(2)).await;
    assert!(authority.validate(&token(&key)).await.is_ok());
}

#[tokio::test(start_paused = true)]
async fn cold_start_during_an_outage_probes_once_per_backoff() {
    let (provider, key) = setup();
    *provider.down.lock().unwrap() = true;
    let authority = authority(&provider);
    let results = validate_all(&authority, vec![token(&key); 100]).await;
    assert!(results.iter().all(unobtainable), "{results:?}");
    // One probe (3 attempts with backoff) for 100 callers.
    assert_eq!(provider.discovery_hits.load(Ordering::SeqCst), 3, "one probe for 100 callers");
    tokio::time::advance(Duration::from_millis(1500)).await;
    let results = validate_all(&authority, vec![token(&key); 100]).await;
    assert!(results.iter().all(unobtainable), "{results:?}");
    // The circuit opens after 5 consecutive failures: this probe's third attempt is not sent.
    assert_eq!(provider.discovery_hits.load(Ordering::SeqCst), 5, "one more probe after the backoff");
    tokio::time::advance(Duration::from_millis(1500)).await;
    let results = validate_all(&authority, vec![token(&key); 100]).await;
    assert!(results.iter().all(unobtainable), "{results:?}");
    assert_eq!(provider.discovery_hits.load(Ordering::SeqCst), 5, "circuit open: nothing sent");
    assert_eq!(authority.stats().circuit_opens.load(Ordering::Relaxed), 1);
    assert_eq!(authority.stats().retries.load(Ordering::Relaxed), 3, "2 in the first probe, 1 in the second");
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
// answers in 50 ms). No assertion here reads the wall clock: deadlines only bound the waits.

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
    assert_eq!(authority.validate(&token(&stranger)).unwrap_err().kind(), ErrorKind::KeysUnavailable);
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
    let e = authority.validate(&token(&key)).await.unwrap_err();
    assert!(unavailable_because(&e, ErrorKind::HttpStatus), "{:?}", kinds(&e));
    assert_eq!(provider.discovery_hits.load(Ordering::SeqCst), 1, "an hour's Retry-After gives up at once");
    let (provider, key) = setup();
    provider.script.lock().unwrap().push_back((404, None));
    let second = support::authority(&provider);
    let e = second.validate(&token(&key)).await.unwrap_err();
    assert!(unavailable_because(&e, ErrorKind::HttpStatus), "{:?}", kinds(&e));
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

#[tokio::test(start_paused = true)]
async fn a_signature_failure_on_a_cached_key_refetches_once_per_cooldown() {
    let (provider, old) = setup();
    let authority = authority(&provider);
    authority.validate(&token(&old)).await.unwrap();
    // The provider re-keys under the same kid.
    let rekeyed = SigningKey::generate(Algorithm::ES256).unwrap().with_kid(old.kid().unwrap());
    provider.publish(&[&rekeyed]);
    assert!(authority.validate(&token(&rekeyed)).await.is_ok());
    assert_eq!(provider.jwks_hits.load(Ordering::SeqCst), 2);
    // Forged signatures under a known kid cannot drive fetches beyond the cooldown.
    let forger = SigningKey::generate(Algorithm::ES256).unwrap().with_kid(old.kid().unwrap());
    let forged: Vec<String> = (0..500).map(|_| token(&forger)).collect();
    let results = validate_all(&authority, forged).await;
    assert!(results.iter().all(|r| *r == Err(ErrorKind::InvalidSignature)));
    assert_eq!(provider.jwks_hits.load(Ordering::SeqCst), 2, "within the cooldown: no fetch");
}

/// Seed review 000 #2: py-identity-model keyed its cache by the whole token, so every distinct
/// token missed. Here keys are cached per issuer: a thousand different tokens, one key set fetch.
#[tokio::test(start_paused = true)]
async fn review_000_2_distinct_tokens_share_the_cached_keys() {
    let (provider, key) = setup();
    let authority = authority(&provider);
    for i in 0..1000 {
        let token = key
            .sign_jwt(
                None,
                &json!({"iss": ISS, "aud": "api", "sub": format!("user-{i}"), "exp": 4_000_000_000u64}),
            )
            .unwrap();
        assert!(authority.validate(&token).await.is_ok());
    }
    assert_eq!(
        (provider.discovery_hits.load(Ordering::SeqCst), provider.jwks_hits.load(Ordering::SeqCst)),
        (1, 1)
    );
    assert_eq!(authority.stats().hits.load(Ordering::Relaxed), 999);
}

/// An authority with short durations, for the blocking scenarios that run in real time.
fn quick_blocking(provider: &Arc<Provider>) -> identity_model::blocking::Authority {
    blocking_with(provider, |_| {})
}

fn blocking_with(
    provider: &Arc<Provider>,
    change: impl FnOnce(&mut identity_model::Settings),
) -> identity_model::blocking::Authority {
    let mut config = identity_model::Settings::default();
    config.cache.kid_miss_refresh_cooldown = Duration::from_millis(300);
    config.http.retry_base_delay = Duration::from_millis(10);
    config.circuit.open_for = Duration::from_millis(500);
    change(&mut config);
    let authority = Authority::builder(ISS)
        .rules(Validation::new(ISS).audience("api"))
        .policy(DiscoveryPolicy::default().resource_server_fields())
        .settings(config)
        .transport(Arc::clone(provider) as Arc<dyn HttpTransport>)
        .build()
        .unwrap();
    identity_model::blocking::Authority::new(authority)
}

#[test]
fn blocking_random_kid_flood_fetches_at_most_once_per_cooldown() {
    let (provider, key) = setup();
    let authority =
        blocking_with(&provider, |c| c.cache.kid_miss_refresh_cooldown = Duration::from_secs(3600));
    authority.validate(&token(&key)).unwrap();
    let attacker = SigningKey::generate(Algorithm::ES256).unwrap();
    let tokens: Vec<String> = (0..2000).map(|i| token_with_kid(&attacker, &format!("random-{i}"))).collect();
    let results = blocking_validate_all(&authority, tokens);
    assert!(results.iter().all(|r| *r == Err(ErrorKind::KeyNotFound)));
    assert_eq!(provider.jwks_hits.load(Ordering::SeqCst) - 1, 1, "one refetch in one cooldown window");
    let refused = authority.stats().kid_miss_refusals.load(Ordering::Relaxed)
        + authority.stats().negative_kid_hits.load(Ordering::Relaxed)
        + authority.stats().coalesced.load(Ordering::Relaxed);
    assert!(refused >= 1999, "the rest answered without a fetch of their own: {refused}");
}

#[test]
fn blocking_retries_honour_retry_after_and_the_circuit_opens() {
    let (provider, key) = setup();
    provider.script.lock().unwrap().extend([(503, None), (429, Some("1"))]);
    let authority = quick_blocking(&provider);
    assert!(authority.validate(&token(&key)).is_ok());
    assert_eq!(authority.stats().retries.load(Ordering::Relaxed), 2, "503 and 429 (Retry-After: 1) retried");
    assert_eq!(provider.discovery_hits.load(Ordering::SeqCst), 3);

    let (provider, key) = setup();
    *provider.down.lock().unwrap() = true;
    let authority = quick_blocking(&provider);
    // Keep calling (each call fails fast or probes) until the circuit has opened.
    let start = std::time::Instant::now();
    while authority.stats().circuit_opens.load(Ordering::Relaxed) == 0
        && start.elapsed() < Duration::from_secs(10)
    {
        assert!(unobtainable(&authority.validate(&token(&key)).map(|_| ()).map_err(|e| e.kind())));
    }
    assert_eq!(authority.stats().circuit_opens.load(Ordering::Relaxed), 1);
    // Open: calls fail without requests.
    let sent = provider.discovery_hits.load(Ordering::SeqCst);
    assert_eq!(authority.validate(&token(&key)).unwrap_err().kind(), ErrorKind::KeysUnavailable);
    assert_eq!(provider.discovery_hits.load(Ordering::SeqCst), sent);
}

#[test]
fn blocking_slow_refetch_does_not_hold_up_cached_validations() {
    let (provider, key) = setup();
    let authority = quick_blocking(&provider);
    authority.validate(&token(&key)).unwrap();
    let open = hold(&provider); // the refetch below cannot finish until the gate opens
    let stranger = SigningKey::generate(Algorithm::ES256).unwrap();
    let slow = {
        let authority = authority.clone();
        let t = token(&stranger);
        std::thread::spawn(move || authority.validate(&t).map(|_| ()).map_err(|e| e.kind()))
    };
    // Wait until the held fetch is in flight (the provider has been asked).
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while provider.jwks_hits.load(Ordering::SeqCst) < 2 {
        assert!(std::time::Instant::now() < deadline, "the refetch was never sent");
        std::thread::yield_now();
    }
    let hits = authority.stats().hits.load(Ordering::Relaxed);
    for _ in 0..100 {
        assert!(authority.validate(&token(&key)).is_ok());
    }
    assert_eq!(authority.stats().hits.load(Ordering::Relaxed), hits + 100, "all on the cached path");
    assert!(!slow.is_finished(), "the held fetch cannot have finished");
    open.send(true).unwrap();
    assert_eq!(slow.join().unwrap(), Err(ErrorKind::KeyNotFound));
}

fn short_lived_blocking(
    provider: &Arc<Provider>,
    max_staleness: Duration,
) -> identity_model::blocking::Authority {
    let mut config = identity_model::Settings::default();
    config.cache.min_freshness = Duration::from_millis(100);
    config.cache.jwks_cache_ttl = Duration::from_millis(200);
    config.cache.disco_cache_ttl = Duration::from_millis(200);
    config.cache.kid_miss_refresh_cooldown = Duration::from_millis(50);
    config.http.retry_base_delay = Duration::from_millis(10);
    let authority = Authority::builder(ISS)
        .rules(Validation::new(ISS).audience("api"))
        .policy(DiscoveryPolicy::default().resource_server_fields())
        .settings(config)
        .max_staleness(max_staleness)
        .transport(Arc::clone(provider) as Arc<dyn HttpTransport>)
        .build()
        .unwrap();
    identity_model::blocking::Authority::new(authority)
}

#[test]
fn blocking_keys_are_refreshed_ahead_without_failing_anyone() {
    let (provider, key) = setup();
    *provider.delay.lock().unwrap() = Duration::ZERO;
    let authority = short_lived_blocking(&provider, Duration::from_secs(60));
    let start = std::time::Instant::now();
    while provider.jwks_hits.load(Ordering::SeqCst) < 3 && start.elapsed() < Duration::from_secs(10) {
        assert!(authority.validate(&token(&key)).is_ok());
    }
    assert!(provider.jwks_hits.load(Ordering::SeqCst) >= 3, "refreshed repeatedly in the background");
}

#[test]
fn blocking_outage_serves_last_good_until_max_staleness_then_fails_closed() {
    let (provider, key) = setup();
    let authority = short_lived_blocking(&provider, Duration::from_millis(600));
    authority.validate(&token(&key)).unwrap();
    *provider.down.lock().unwrap() = true;
    let start = std::time::Instant::now();
    let mut served = 0;
    let failure = loop {
        match authority.validate(&token(&key)) {
            Ok(_) => served += 1,
            Err(e) => break e,
        }
        assert!(start.elapsed() < Duration::from_secs(10), "never failed closed");
    };
    assert_eq!(failure.kind(), ErrorKind::KeysUnavailable);
    assert!(failure.message().contains("older than the allowed staleness"), "{failure}");
    assert!(served > 0 && authority.stats().stale_serves.load(Ordering::Relaxed) > 0);
}

#[tokio::test(start_paused = true)]
async fn rfc8414_metadata_when_asked() {
    #[derive(Debug)]
    struct Recorder(Arc<Provider>, std::sync::Mutex<Vec<String>>);
    impl HttpTransport for Recorder {
        fn get(
            &self,
            request: identity_model::transport::HttpRequest,
        ) -> identity_model::transport::BoxFuture<
            '_,
            Result<identity_model::transport::HttpResponse, identity_model::transport::TransportError>,
        > {
            self.1.lock().unwrap().push(request.url.clone());
            self.0.get(request)
        }
    }
    let (provider, key) = setup();
    let recorder = Arc::new(Recorder(provider, std::sync::Mutex::new(Vec::new())));
    let authority = Authority::builder(ISS)
        .metadata(identity_model::MetadataKind::OAuth)
        .rules(Validation::new(ISS).audience("api"))
        .policy(DiscoveryPolicy::default().resource_server_fields())
        .transport(Arc::clone(&recorder) as Arc<dyn HttpTransport>)
        .build()
        .unwrap();
    assert!(authority.validate(&token(&key)).await.is_ok());
    assert_eq!(
        recorder.1.lock().unwrap()[0],
        "https://issuer.example/.well-known/oauth-authorization-server"
    );
}

#[tokio::test(start_paused = true)]
async fn an_unknown_kid_is_refused_at_once_within_the_cooldown_and_looked_for_after_it() {
    let (provider, key) = setup();
    let authority = authority(&provider);
    authority.validate(&token(&key)).await.unwrap();
    let stranger = SigningKey::generate(Algorithm::ES256).unwrap();
    let unknown = token(&stranger);
    assert_eq!(authority.validate(&unknown).await.unwrap_err().kind(), ErrorKind::KeyNotFound);
    assert_eq!(provider.jwks_hits.load(Ordering::SeqCst), 2, "one refetch for the first sighting");
    assert!(authority.is_known_missing(stranger.kid().unwrap()), "proven: fetched after it arrived");
    // Within the cooldown: refused at once, no request, no waiting (no time passes).
    let before = tokio::time::Instant::now();
    let results = validate_all(&authority, vec![unknown.clone(); 100]).await;
    assert!(results.iter().all(|r| *r == Err(ErrorKind::KeyNotFound)));
    assert_eq!(tokio::time::Instant::now(), before);
    assert_eq!(provider.jwks_hits.load(Ordering::SeqCst), 2);
    assert_eq!(authority.stats().negative_kid_hits.load(Ordering::Relaxed), 100);
    // The provider publishes the key a second later: the first try after the cooldown fetches
    // once and validates (not a minute of refusals).
    tokio::time::advance(Duration::from_secs(1)).await;
    provider.publish(&[&stranger, &key]);
    assert_eq!(authority.validate(&unknown).await.unwrap_err().kind(), ErrorKind::KeyNotFound);
    tokio::time::advance(Duration::from_secs(4)).await;
    assert!(authority.validate(&unknown).await.is_ok(), "accepted one cooldown after publication");
    assert_eq!(provider.jwks_hits.load(Ordering::SeqCst), 3);
    assert!(!authority.is_known_missing(stranger.kid().unwrap()));
}

/// Seed review 004 §3.3: TTLs measured on the wall clock expire early or never when it jumps.
/// Cache freshness here runs on the monotonic clock; only token times use the (injected) wall clock.
#[tokio::test(start_paused = true)]
async fn review_004_wall_clock_jumps_do_not_touch_cache_freshness() {
    let (provider, key) = setup();
    let wall = identity_model::FixedClock::new(identity_model::UnixTime::from_secs(1_800_000_000));
    let authority = Authority::builder(ISS)
        .rules(Validation::new(ISS).audience("api"))
        .policy(DiscoveryPolicy::default().resource_server_fields())
        .transport(Arc::clone(&provider) as Arc<dyn HttpTransport>)
        .clock(Arc::new(wall.clone()))
        .build()
        .unwrap();
    let token = key.sign_jwt(None, &json!({"iss": ISS, "aud": "api", "exp": 1_900_000_000u64})).unwrap();
    authority.validate(&token).await.unwrap();
    wall.advance(30 * 86_400); // the wall clock leaps a month ahead, then back
    authority.validate(&token).await.unwrap();
    wall.advance(-60 * 86_400);
    authority.validate(&token).await.unwrap();
    assert_eq!(provider.jwks_hits.load(Ordering::SeqCst), 1, "no refetch from wall-clock jumps");
    wall.set(identity_model::UnixTime::from_secs(1_900_000_100));
    assert_eq!(
        authority.validate(&token).await.unwrap_err().kind(),
        ErrorKind::TokenExpired,
        "token times follow the wall clock"
    );
}

/// Races between a refresh ending and callers that found their `kid` missing just before:
/// on a real multi-thread runtime, every caller of a rotation burst validates, repeatedly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotation_bursts_on_a_multi_thread_runtime_never_refuse_the_new_key() {
    for round in 0..20 {
        let (provider, old) = setup();
        *provider.delay.lock().unwrap() = Duration::from_millis(1 + round % 3);
        let authority = authority(&provider);
        let results = validate_all(&authority, vec![token(&old); 200]).await;
        assert!(results.iter().all(Result::is_ok), "round {round} cold: {results:?}");
        let new = SigningKey::generate(Algorithm::ES256).unwrap();
        provider.publish(&[&new, &old]);
        let results = validate_all(&authority, vec![token(&new); 500]).await;
        let failed: Vec<_> = results.iter().filter(|r| r.is_err()).collect();
        assert!(failed.is_empty(), "round {round}: {} failed: {:?}", failed.len(), failed[0]);
        assert_eq!(hits(&provider), (1, 2), "round {round}");
    }
}

fn hits(provider: &Provider) -> (usize, usize) {
    (provider.discovery_hits.load(Ordering::SeqCst), provider.jwks_hits.load(Ordering::SeqCst))
}

/// Issue 11: rules without an audience accepted a token minted for another API; rules naming
/// another issuer accepted its tokens with this issuer's keys. Both are refused at build now.
#[tokio::test(start_paused = true)]
async fn rules_must_check_an_audience_and_pin_the_authoritys_issuer() {
    let (provider, key) = setup();
    let builder = || {
        Authority::builder(ISS)
            .policy(DiscoveryPolicy::default().resource_server_fields())
            .transport(Arc::clone(&provider) as Arc<dyn HttpTransport>)
    };
    let e = builder().rules(Validation::new(ISS)).build().unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidConfig);
    assert!(e.message().contains("dangerous_any_audience"), "the error names the fix: {e}");
    for rules in [
        Validation::new("https://other.example").audience("api"),
        Validation::with_issuers([ISS, "https://other.example"]).audience("api"),
        Validation::dangerous_any_issuer().audience("api"),
    ] {
        let e = builder().rules(rules.clone()).build().unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidConfig, "{rules:?}");
    }
    // Without rules the authority only fetches: validation fails closed.
    let fetch_only = builder().build().unwrap();
    assert_eq!(fetch_only.validate(&token(&key)).await.unwrap_err().kind(), ErrorKind::InvalidConfig);
    assert!(fetch_only.keys().await.is_ok());
    // The explicit escape accepts any audience; an audience names which.
    let any = builder().rules(Validation::new(ISS).dangerous_any_audience()).build().unwrap();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let claims = serde_json::json!({"iss": ISS, "aud": "another-api", "exp": now + 600}).to_string();
    let mut header = serde_json::Map::new();
    header.insert("kid".into(), key.kid().unwrap().into());
    let other_api = key.sign_compact(header, claims.as_bytes()).unwrap();
    assert!(any.validate(&other_api).await.is_ok());
    let api = builder().rules(Validation::new(ISS).audience("api")).build().unwrap();
    assert_eq!(api.validate(&other_api).await.unwrap_err().kind(), ErrorKind::InvalidAudience);
}

/// Issue 11: `blocking::Authority::validate` from `spawn_blocking` (the usual bridge out of
/// async code) failed with `invalid_usage`. It works there and from plain threads, cold (a
/// fetch) and warm; the root future of a runtime is still refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_blocking_api_works_from_spawn_blocking_and_plain_threads() {
    let (provider, key) = setup();
    *provider.delay.lock().unwrap() = Duration::from_millis(1);
    let authority = identity_model::blocking::Authority::new(authority(&provider));
    let cold = {
        let (authority, t) = (authority.clone(), token(&key));
        tokio::task::spawn_blocking(move || authority.validate(&t).map(|_| ()).map_err(|e| e.kind()))
    };
    assert_eq!(cold.await.unwrap(), Ok(()), "a cold start (discovery + keys) from spawn_blocking");
    let new = SigningKey::generate(Algorithm::ES256).unwrap();
    provider.publish(&[&new, &key]);
    let rotated = {
        let (authority, t) = (authority.clone(), token(&new));
        std::thread::spawn(move || authority.validate(&t).map(|_| ()).map_err(|e| e.kind()))
    };
    assert_eq!(rotated.join().unwrap(), Ok(()), "a kid-miss refetch from a plain thread");
    let fresh = identity_model::blocking::Authority::new(authority.as_async().clone());
    assert!(fresh.validate(&token(&key)).is_ok(), "the hot path needs no runtime at all");
    let cold_here = identity_model::blocking::Authority::new(support::authority(&provider));
    assert_eq!(cold_here.validate(&token(&key)).unwrap_err().kind(), ErrorKind::InvalidUsage);
}

/// Issue 11: only a call on an async task is refused: spawned tasks on a multi-thread
/// runtime's workers and on a current-thread runtime both get `invalid_usage`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_blocking_api_is_refused_on_async_tasks_only() {
    let (provider, key) = setup();
    let cold = identity_model::blocking::Authority::new(authority(&provider));
    let on_worker = {
        let (cold, t) = (cold.clone(), token(&key));
        tokio::spawn(async move { cold.validate(&t).map(|_| ()).map_err(|e| e.kind()) })
    };
    assert_eq!(on_worker.await.unwrap(), Err(ErrorKind::InvalidUsage), "a task on a worker");
    let current = std::thread::spawn({
        let (cold, t) = (cold.clone(), token(&key));
        move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            runtime.block_on(async move {
                let spawned =
                    tokio::spawn(async move { cold.validate(&t).map(|_| ()).map_err(|e| e.kind()) });
                spawned.await.unwrap()
            })
        }
    });
    assert_eq!(current.join().unwrap(), Err(ErrorKind::InvalidUsage), "a task on a current-thread runtime");
    assert_eq!(provider.discovery_hits.load(Ordering::SeqCst), 0, "nothing was sent");
    let bridged = {
        let (cold, t) = (cold.clone(), token(&key));
        tokio::task::spawn_blocking(move || cold.validate(&t).map(|_| ()).map_err(|e| e.kind()))
    };
    assert_eq!(bridged.await.unwrap(), Ok(()), "spawn_blocking is the bridge");
}

/// Issue 12 (groundwork): the validated-token cache answers a repeated token without
/// validating it again, never past its `exp`, never once its key left the key set, and never
/// for a failure.
#[tokio::test(start_paused = true)]
async fn the_validated_token_cache_serves_only_what_would_still_validate() {
    let (provider, key) = setup();
    let clock = identity_model::FixedClock::new(identity_model::UnixTime::from_secs(1_000));
    let authority = Authority::builder(ISS)
        .rules(Validation::new(ISS).audience("api").leeway(Duration::ZERO))
        .policy(DiscoveryPolicy::default().resource_server_fields())
        .transport(Arc::clone(&provider) as Arc<dyn HttpTransport>)
        .clock(Arc::new(clock.clone()))
        .token_cache(identity_model::TokenCacheConfig::default())
        .build()
        .unwrap();
    let sign = |key: &SigningKey, exp: u64| {
        let mut header = serde_json::Map::new();
        header.insert("kid".into(), key.kid().unwrap().into());
        let claims = serde_json::json!({"iss": ISS, "aud": "api", "sub": "s", "exp": exp}).to_string();
        key.sign_compact(header, claims.as_bytes()).unwrap()
    };
    let token = sign(&key, 2_000);
    authority.validate(&token).await.unwrap();
    let hot = authority.stats().hits.load(Ordering::Relaxed);
    for _ in 0..10 {
        assert_eq!(authority.validate(&token).await.unwrap().claims.sub(), Some("s"));
    }
    let cache = authority.token_cache_stats().unwrap();
    assert_eq!(cache.hits.load(Ordering::Relaxed), 10);
    assert_eq!(authority.stats().hits.load(Ordering::Relaxed), hot, "no validation ran for the hits");
    // A failure is never cached: a forged token is validated (and refused) every time.
    let forged = format!("{}AAAA", &token[..token.len() - 4]);
    for _ in 0..3 {
        assert!(authority.validate(&forged).await.is_err());
    }
    assert_eq!(cache.hits.load(Ordering::Relaxed), 10);
    // Past `exp` the entry is not served: the token is validated again, and refused.
    clock.set(identity_model::UnixTime::from_secs(2_000));
    assert_eq!(authority.validate(&token).await.unwrap_err().kind(), ErrorKind::TokenExpired);
    clock.set(identity_model::UnixTime::from_secs(1_000));
    // Its key leaves the key set: the entry dies with it.
    authority.validate(&token).await.unwrap();
    let new = SigningKey::generate(Algorithm::ES256).unwrap();
    provider.publish(&[&new]);
    tokio::time::advance(Duration::from_secs(6)).await; // past the cooldown the forged token started
    authority.validate(&sign(&new, 2_000)).await.unwrap(); // the refetch that drops the old key
    let e = authority.validate(&token).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::KeyNotFound, "{e}");
    assert!(cache.invalidations.load(Ordering::Relaxed) >= 2);
}

#[tokio::test(start_paused = true)]
async fn key_status_tracks_loading_staleness_and_the_bound() {
    let (provider, _key) = setup();
    let authority = authority(&provider);
    let status = authority.key_status();
    assert!(!status.usable && status.age.is_none() && status.keys == 0, "{status:?}");
    *provider.down.lock().unwrap() = true;
    assert!(authority.ensure_fresh_keys().await.is_err());
    let status = authority.key_status();
    assert!(!status.usable && status.last_error.is_some(), "{status:?}");
    *provider.down.lock().unwrap() = false;
    tokio::time::advance(Duration::from_secs(2)).await;
    authority.ensure_fresh_keys().await.unwrap();
    let status = authority.key_status();
    assert!(status.usable && !status.stale && status.keys == 1 && status.last_error.is_none(), "{status:?}");
    // Fresh keys: nothing is fetched.
    let fetched = provider.jwks_hits.load(Ordering::SeqCst);
    authority.ensure_fresh_keys().await.unwrap();
    assert_eq!(provider.jwks_hits.load(Ordering::SeqCst), fetched);
    // The provider goes down; past freshness the keys are stale but usable, with their age.
    *provider.down.lock().unwrap() = true;
    tokio::time::advance(Duration::from_secs(2 * 3600)).await;
    assert!(authority.ensure_fresh_keys().await.is_err());
    let status = authority.key_status();
    assert!(status.usable && status.stale, "{status:?}");
    assert!(status.age.unwrap() >= Duration::from_secs(2 * 3600));
    // Past the staleness bound (24 h): not usable.
    tokio::time::advance(Duration::from_secs(24 * 3600)).await;
    assert!(!authority.key_status().usable);
}

/// An issuer with a query or a fragment can never equal a discovery document's `iss` (RFC 8414
/// section 2): the builder refuses it before any request, like a non-HTTPS issuer.
#[test]
fn issuers_with_a_query_or_fragment_or_without_https_are_refused_by_the_builder() {
    for issuer in [
        "https://login.example/?tenant=1",
        "https://login.example/#x",
        "https://login.example/realms/a?",
        "http://login.example",
        "not a url",
        "/relative",
    ] {
        let built = Authority::builder(issuer)
            .rules(Validation::new(issuer).audience("api"))
            .policy(DiscoveryPolicy::default().allow_http_on_loopback())
            .build();
        let e = built.expect_err(issuer);
        assert_eq!(e.kind(), ErrorKind::PolicyViolation, "{issuer}: {e}");
    }
    let loopback = "http://127.0.0.1:9/?tenant=1";
    let e = Authority::builder(loopback)
        .rules(Validation::new(loopback).audience("api"))
        .policy(DiscoveryPolicy::default().allow_http_on_loopback())
        .build()
        .expect_err("a query on loopback too");
    assert!(e.message().contains("query"), "{e}");
}

/// Issue 19, item 9: `Issuers::now` is the clock of the issuer whose name sorts first, whatever
/// the order they were added in (it used to be the map's order).
#[test]
fn issuers_now_is_deterministic() {
    let clocked = |issuer: &str, secs: i64| {
        Authority::builder(issuer)
            .rules(Validation::new(issuer).audience("api"))
            .clock(Arc::new(identity_model::FixedClock::new(identity_model::UnixTime::from_secs(secs))))
            .build()
            .unwrap()
    };
    for order in [["https://a.example", "https://b.example"], ["https://b.example", "https://a.example"]] {
        let mut issuers = identity_model::Issuers::new();
        for issuer in order {
            let secs = if issuer.contains("//a.") { 1_000 } else { 2_000 };
            issuers = issuers.with(clocked(issuer, secs));
        }
        assert_eq!(issuers.now().as_secs(), 1_000, "{order:?}");
    }
}
