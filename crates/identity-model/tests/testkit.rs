//! The Authority against the test provider over real HTTP: rotation, retries, Retry-After,
//! every kind of broken response, and an outage with last-known-good keys. Counts come from
//! the provider's per-endpoint request counters.

#![allow(clippy::unwrap_used)]

mod support;

use std::sync::Arc;
use std::time::Duration;

use identity_model::{
    Authority, CacheConfig, CircuitConfig, DiscoveryPolicy, ErrorKind, HttpConfig, Settings, Validation,
};
use identity_model_testkit::{Endpoint, Fault, Rotation, TestProvider, Times};
use tokio::task::JoinSet;

fn config() -> Settings {
    let http = HttpConfig {
        retry_base_delay: Duration::from_millis(5),
        timeout: Duration::from_secs(5),
        ..HttpConfig::default()
    };
    Settings { http, ..Settings::default() }
}

fn authority_for(provider: &TestProvider, config: Settings) -> Authority {
    Authority::builder(provider.issuer())
        .rules(Validation::new(provider.issuer()).audience(provider.default_audience()).token_type("at+jwt"))
        .policy(DiscoveryPolicy::default().allow_http_on_loopback())
        .settings(config)
        .build()
        .unwrap()
}

async fn validate_concurrently(authority: &Authority, token: &str, callers: usize) {
    let token: Arc<str> = token.into();
    let mut set = JoinSet::new();
    for _ in 0..callers {
        let (authority, token) = (authority.clone(), Arc::clone(&token));
        set.spawn(async move { authority.validate(&token).await.map(|_| ()) });
    }
    while let Some(result) = set.join_next().await {
        result.unwrap().unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cold_start_and_rotation_each_cost_one_key_set_request() {
    let provider = TestProvider::start().await.unwrap();
    let authority = authority_for(&provider, config());
    let old = provider.token().sign();
    validate_concurrently(&authority, &old, 200).await;
    assert_eq!((provider.requests(Endpoint::Discovery), provider.requests(Endpoint::Jwks)), (1, 1));
    provider.rotate_keys(Rotation::Replace);
    let new = provider.token().sign();
    validate_concurrently(&authority, &new, 200).await;
    assert_eq!(provider.requests(Endpoint::Jwks), 2, "one refetch for 200 callers");
    // The old key is gone; its kid is unknown and the cooldown keeps it from refetching.
    assert_eq!(authority.validate(&old).await.unwrap_err().kind(), ErrorKind::KeyNotFound);
    assert_eq!(provider.requests(Endpoint::Jwks), 2);
    assert_eq!(provider.requests(Endpoint::Discovery), 1, "discovery stays cached");
}

#[tokio::test]
async fn transient_failures_and_429_are_retried() {
    let provider = TestProvider::start().await.unwrap();
    let authority = authority_for(&provider, config());
    provider.inject(Endpoint::Jwks, Fault::Status(503), Times::Next(2));
    provider.inject(Endpoint::Discovery, Fault::ConnectionReset, Times::Next(1));
    authority.validate(&provider.token().sign()).await.unwrap();
    assert_eq!(provider.requests(Endpoint::Jwks), 3);
    assert_eq!(provider.requests(Endpoint::Discovery), 2);
    assert_eq!(authority.stats().retries.load(std::sync::atomic::Ordering::Relaxed), 3);

    let provider = TestProvider::start().await.unwrap();
    let authority = authority_for(&provider, config());
    // How long the client waits is asserted under paused time in tests/authority.rs; here: the
    // 429 is retried over real HTTP rather than surfaced.
    provider.inject(Endpoint::Jwks, Fault::TooManyRequests { retry_after: 1 }, Times::Next(1));
    authority.validate(&provider.token().sign()).await.unwrap();
    assert_eq!(provider.requests(Endpoint::Jwks), 2);
}

#[tokio::test]
async fn broken_responses_become_typed_errors() {
    let cases = [
        (Fault::MalformedJson, ErrorKind::InvalidKeySet),
        (Fault::WrongContentType, ErrorKind::UnexpectedContentType),
        (Fault::TruncatedBody, ErrorKind::TransportError),
        (Fault::ConnectionReset, ErrorKind::TransportError),
        (Fault::Status(404), ErrorKind::HttpStatus),
        (Fault::Status(500), ErrorKind::HttpStatus),
    ];
    for (fault, expected) in cases {
        let provider = TestProvider::start().await.unwrap();
        let authority = authority_for(&provider, config());
        provider.inject(Endpoint::Jwks, fault.clone(), Times::UntilCleared);
        let error = authority.validate(&provider.token().sign()).await.unwrap_err();
        assert!(support::unavailable_because(&error, expected), "{fault:?}: {error}");
        provider.clear_faults();
    }
    // A broken discovery document too.
    let provider = TestProvider::start().await.unwrap();
    let authority = authority_for(&provider, config());
    provider.inject(Endpoint::Discovery, Fault::MalformedJson, Times::UntilCleared);
    let error = authority.validate(&provider.token().sign()).await.unwrap_err();
    assert!(support::unavailable_because(&error, ErrorKind::InvalidDocument), "{error}");
}

#[tokio::test]
async fn an_outage_keeps_the_last_good_keys_and_recovery_needs_no_restart() {
    let provider = TestProvider::start().await.unwrap();
    // No kid-miss cooldown and a 1 ms failure backoff: recovery depends only on the provider.
    let mut short = config();
    short.http.retry_base_delay = Duration::from_millis(1);
    short.cache = CacheConfig {
        kid_miss_refresh_cooldown: Duration::ZERO,
        refresh_failure_backoff: Duration::from_millis(1),
        ..CacheConfig::default()
    };
    let authority = authority_for(&provider, short);
    let old = provider.token().sign();
    authority.validate(&old).await.unwrap();
    provider.inject(Endpoint::Jwks, Fault::Status(503), Times::UntilCleared);
    provider.rotate_keys(Rotation::Overlap);
    let new = provider.token().sign();
    assert!(authority.validate(&new).await.is_err(), "the new key cannot be fetched");
    authority.validate(&old).await.unwrap();
    let failed_requests = provider.requests(Endpoint::Jwks);
    provider.clear_faults();
    // Attempts inside the 1 ms backoff answer without a request; the first one after it fetches.
    // (Before the fix, the kid sat in the negative cache for 60 s and every attempt failed.)
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while let Err(e) = authority.validate(&new).await {
        assert!(std::time::Instant::now() < deadline, "never recovered: {e}");
        tokio::task::yield_now().await;
    }
    assert_eq!(provider.requests(Endpoint::Jwks), failed_requests + 1, "one fetch brought the new key");
    authority.validate(&old).await.unwrap();
}

/// Longer than any wait these tests expect, shorter than the minute a regression would cost.
const HANG_GUARD: Duration = Duration::from_secs(30);

/// Polls `authority` with `token` until it validates. `deadline` only guards against a hang (a
/// broken build would refuse for a minute or forever); how soon it recovers is shown under
/// paused time in tests/cancellation.rs and tests/authority.rs, and here by request counts.
async fn accepted_before(authority: &Authority, token: &str, deadline: tokio::time::Instant) {
    loop {
        match authority.validate(token).await {
            Ok(_) => return,
            Err(e) => assert!(tokio::time::Instant::now() < deadline, "still refused at the deadline: {e}"),
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Regression (issue 10): a validation dropped while it was the half-open circuit probe left
/// the host "probing" forever (`circuit open for 0 s more`). Over real HTTP: the probe's
/// callers give up on their own deadlines; the probe still lands and the circuit closes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_circuit_probe_recovers_within_one_open_period() {
    let provider = TestProvider::start().await.unwrap();
    let open_for = Duration::from_millis(300);
    let mut config = config();
    config.http.retry_max_attempts = 1;
    config.circuit = CircuitConfig { failure_threshold: 1, open_for };
    config.cache.refresh_failure_backoff = Duration::ZERO;
    let authority = authority_for(&provider, config);
    let token = provider.token().sign();
    provider.inject(Endpoint::Discovery, Fault::Status(503), Times::Next(1));
    assert!(support::unavailable_because(
        &authority.validate(&token).await.unwrap_err(),
        ErrorKind::HttpStatus
    ));
    assert_eq!(authority.stats().circuit_opens.load(std::sync::atomic::Ordering::Relaxed), 1);
    // The provider is slow to answer the probe; every caller gives up after 20 ms.
    let latency = Duration::from_millis(400);
    provider.inject(Endpoint::Discovery, Fault::Latency(latency), Times::Next(1));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while provider.requests(Endpoint::Discovery) < 2 {
        assert!(tokio::time::Instant::now() < deadline, "no probe was ever sent");
        let _ = tokio::time::timeout(Duration::from_millis(20), authority.validate(&token)).await;
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // The provider answers the probe after `latency`: validation works again, whoever asks
    // (before, the dropped probe left the host "probing" forever).
    accepted_before(&authority, &token, tokio::time::Instant::now() + HANG_GUARD).await;
    assert_eq!(provider.requests(Endpoint::Discovery), 2, "the dropped probe was not sent twice");
}

/// Regression (issue 10): a token with an unknown `kid`, then the provider publishes a new key:
/// tokens with the new key were refused for a minute (a miss inside the cooldown was taken as
/// proof). Now: refused at once inside the cooldown, never remembered, accepted after it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_key_after_an_unknown_kid_is_accepted_within_one_cooldown() {
    let provider = TestProvider::start().await.unwrap();
    let cooldown = Duration::from_millis(400);
    let mut config = config();
    config.cache.kid_miss_refresh_cooldown = cooldown;
    let authority = authority_for(&provider, config);
    authority.validate(&provider.token().sign()).await.unwrap();
    let stranger = provider.token().unknown_key(identity_model::Algorithm::ES256).sign();
    assert_eq!(authority.validate(&stranger).await.unwrap_err().kind(), ErrorKind::KeyNotFound);
    assert_eq!(provider.requests(Endpoint::Jwks), 2, "one refetch for the unknown kid");
    provider.rotate_keys(Rotation::Overlap);
    let new = provider.token().sign();
    let kid = identity_model::UnverifiedToken::parse(&new, 1 << 16).unwrap().kid().unwrap().to_owned();
    // Inside the cooldown this is refused at once (tests/authority.rs shows that under paused
    // time); on a loaded machine the cooldown may already be over, and then it is accepted.
    if let Err(inside) = authority.validate(&new).await {
        assert_eq!(inside.kind(), ErrorKind::KeyNotFound, "{inside}");
    }
    assert!(!authority.is_known_missing(&kid), "a cooldown proves nothing");
    // Before, the new kid was remembered missing and refused for a minute: past the guard.
    accepted_before(&authority, &new, tokio::time::Instant::now() + HANG_GUARD).await;
    assert_eq!(provider.requests(Endpoint::Jwks), 3, "exactly one more key set request");
}
