//! TokenManager under load and failure, against a counting in-process token endpoint with
//! paused tokio time (the manager's clock), so every interleaving is deterministic.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use identity_model::transport::{BoxFuture, HttpRequest, HttpResponse, HttpTransport, TransportError};
use identity_model::{
    Client, Endpoints, ErrorKind, FormRequest, HttpConfig, TokenClient, TokenManager, TokenManagerConfig,
};

/// A token endpoint that counts requests, takes `DELAY` to answer, and can be made to fail.
#[derive(Debug, Default)]
struct CountingProvider {
    requests: AtomicU64,
    failing: AtomicBool,
    expires_in: AtomicU64,
}

const DELAY: Duration = Duration::from_millis(100);

impl HttpTransport for CountingProvider {
    fn get(&self, request: HttpRequest) -> BoxFuture<'_, Result<HttpResponse, TransportError>> {
        Box::pin(async move { panic!("unexpected GET {}", request.url) })
    }

    fn send(&self, request: FormRequest, _max: usize) -> BoxFuture<'_, Result<HttpResponse, TransportError>> {
        Box::pin(async move {
            assert_eq!(request.get("grant_type"), Some("client_credentials"));
            let n = self.requests.fetch_add(1, Ordering::SeqCst) + 1;
            tokio::time::sleep(DELAY).await;
            if self.failing.load(Ordering::SeqCst) {
                return Ok(HttpResponse {
                    status: 503,
                    content_type: Some("application/json".into()),
                    body: br#"{"error":"temporarily_unavailable"}"#.to_vec(),
                    ..HttpResponse::default()
                });
            }
            let body = serde_json::json!({
                "access_token": format!("t{n}"),
                "token_type": "Bearer",
                "expires_in": self.expires_in.load(Ordering::SeqCst),
                "scope": request.get("scope"),
            });
            Ok(HttpResponse {
                status: 200,
                content_type: Some("application/json".into()),
                body: body.to_string().into_bytes(),
                ..HttpResponse::default()
            })
        })
    }
}

fn setup(config: TokenManagerConfig) -> (Arc<CountingProvider>, TokenManager) {
    let provider = Arc::new(CountingProvider { expires_in: AtomicU64::new(100), ..Default::default() });
    let client = TokenClient::builder(Client::with_secret("svc", "secret"))
        .endpoints(Endpoints {
            issuer: Some("https://op.example".into()),
            token: Some("https://op.example/token".into()),
            ..Endpoints::default()
        })
        .transport(provider.clone())
        .config(HttpConfig { retry_max_attempts: 1, ..HttpConfig::default() })
        .build()
        .unwrap();
    (provider, TokenManager::with_config(client, &["api:read"], &[], config))
}

fn exact() -> TokenManagerConfig {
    TokenManagerConfig {
        jitter: 0.0,
        backoff_base: Duration::from_secs(2),
        backoff_cap: Duration::from_secs(8),
        ..TokenManagerConfig::default()
    }
}

/// `n` concurrent callers; returns their access tokens (or error kinds).
async fn burst(manager: &TokenManager, n: usize) -> Vec<Result<String, ErrorKind>> {
    let tasks: Vec<_> = (0..n)
        .map(|_| {
            let manager = manager.clone();
            tokio::spawn(async move {
                manager.get().await.map(|t| t.access_token.expose().to_owned()).map_err(|e| e.kind())
            })
        })
        .collect();
    let mut out = Vec::with_capacity(n);
    for task in tasks {
        out.push(task.await.unwrap());
    }
    out
}

fn all_equal(results: &[Result<String, ErrorKind>], expected: Result<&str, ErrorKind>) {
    let expected = expected.map(str::to_owned);
    let wrong = results.iter().filter(|r| **r != expected).count();
    assert_eq!(
        wrong,
        0,
        "{wrong} callers did not get {expected:?}, e.g. {:?}",
        results.iter().find(|r| **r != expected)
    );
}

#[tokio::test(start_paused = true)]
async fn ten_thousand_callers_on_no_token_make_one_request() {
    let (provider, manager) = setup(exact());
    let results = burst(&manager, 10_000).await;
    all_equal(&results, Ok("t1"));
    assert_eq!(provider.requests.load(Ordering::SeqCst), 1);
    assert!(manager.stats().coalesced.load(Ordering::Relaxed) > 0);
}

#[tokio::test(start_paused = true)]
async fn ten_thousand_callers_on_an_expired_token_make_one_request() {
    let (provider, manager) = setup(exact());
    assert_eq!(manager.get().await.unwrap().access_token.expose(), "t1");
    tokio::time::advance(Duration::from_secs(100)).await; // past expires_in
    all_equal(&burst(&manager, 10_000).await, Ok("t2"));
    assert_eq!(provider.requests.load(Ordering::SeqCst), 2);
}

#[tokio::test(start_paused = true)]
async fn refreshes_ahead_in_the_background_while_serving_the_current_token() {
    let (provider, manager) = setup(exact());
    manager.get().await.unwrap();
    // 75 % of 100 s: time to refresh, the token is still good: nobody waits.
    tokio::time::advance(Duration::from_secs(76)).await;
    all_equal(&burst(&manager, 10_000).await, Ok("t1"));
    tokio::time::sleep(DELAY * 2).await; // the background request completes in virtual time
    assert_eq!(provider.requests.load(Ordering::SeqCst), 2, "one background refresh");
    assert_eq!(manager.get().await.unwrap().access_token.expose(), "t2");
}

#[tokio::test(start_paused = true)]
async fn jitter_spreads_refreshes_before_the_fraction() {
    let config = TokenManagerConfig { jitter: 0.5, ..exact() };
    let (provider, manager) = setup(config);
    manager.get().await.unwrap();
    // Refresh happens somewhere in [25 s, 75 s]: by 75 s it must have started, before 25 s never.
    tokio::time::advance(Duration::from_secs(24)).await;
    manager.get().await.unwrap();
    tokio::time::sleep(DELAY * 2).await;
    assert_eq!(provider.requests.load(Ordering::SeqCst), 1, "nothing before 25 s");
    tokio::time::advance(Duration::from_secs(52)).await;
    manager.get().await.unwrap();
    tokio::time::sleep(DELAY * 2).await;
    assert_eq!(provider.requests.load(Ordering::SeqCst), 2, "refreshed by 76 s");
}

#[tokio::test(start_paused = true)]
async fn a_failing_provider_is_retried_with_backoff_while_the_token_lasts() {
    let (provider, manager) = setup(exact());
    manager.get().await.unwrap();
    provider.failing.store(true, Ordering::SeqCst);
    tokio::time::advance(Duration::from_secs(76)).await;
    all_equal(&burst(&manager, 1000).await, Ok("t1"));
    tokio::time::sleep(DELAY * 2).await;
    assert_eq!(provider.requests.load(Ordering::SeqCst), 2, "one failed background refresh");
    // Within the backoff (1-2 s after a first failure): callers get t1, nothing is sent.
    all_equal(&burst(&manager, 1000).await, Ok("t1"));
    tokio::time::sleep(DELAY * 2).await;
    assert_eq!(provider.requests.load(Ordering::SeqCst), 2, "no request within the backoff");
    // After the backoff: one more attempt.
    tokio::time::advance(Duration::from_secs(2)).await;
    all_equal(&burst(&manager, 1000).await, Ok("t1"));
    tokio::time::sleep(DELAY * 2).await;
    assert_eq!(provider.requests.load(Ordering::SeqCst), 3);
    // The token expires while the provider is down: callers get the provider's error, once per backoff.
    tokio::time::advance(Duration::from_secs(20)).await;
    let results = burst(&manager, 1000).await;
    all_equal(&results, Err(ErrorKind::OAuthError));
    assert_eq!(provider.requests.load(Ordering::SeqCst), 4, "1000 callers on an expired token: one request");
    all_equal(&burst(&manager, 1000).await, Err(ErrorKind::OAuthError));
    assert_eq!(provider.requests.load(Ordering::SeqCst), 4, "failures answered from the backoff");
    assert!(manager.stats().backoff_rejections.load(Ordering::Relaxed) >= 1000);
    // Recovery after the (longer, third-failure) backoff.
    provider.failing.store(false, Ordering::SeqCst);
    tokio::time::advance(Duration::from_secs(8)).await;
    all_equal(&burst(&manager, 1000).await, Ok("t5"));
    assert_eq!(provider.requests.load(Ordering::SeqCst), 5);
}

#[tokio::test(start_paused = true)]
async fn invalidate_forgets_only_the_refused_token() {
    let (provider, manager) = setup(exact());
    let first = manager.get().await.unwrap();
    manager.invalidate("not-the-cached-token");
    assert_eq!(manager.get().await.unwrap().access_token.expose(), "t1");
    manager.invalidate(first.access_token.expose());
    manager.invalidate(first.access_token.expose()); // a burst of 401s on the same token
    all_equal(&burst(&manager, 1000).await, Ok("t2"));
    assert_eq!(provider.requests.load(Ordering::SeqCst), 2);
}

#[tokio::test(start_paused = true)]
async fn tokens_are_cached_per_scope_and_resource_set() {
    let (provider, manager) = setup(exact());
    let a = manager.get_for(&["a", "b"], &[]).await.unwrap();
    let b = manager.get_for(&["b", "a", "a"], &[]).await.unwrap();
    assert_eq!(a.access_token, b.access_token, "order and repeats do not matter");
    assert_eq!(a.scope.as_deref(), Some("a b"));
    manager.get_for(&["a", "b"], &["https://api.example"]).await.unwrap();
    manager.get_for(&["c"], &[]).await.unwrap();
    assert_eq!(provider.requests.load(Ordering::SeqCst), 3);
}

#[tokio::test(start_paused = true)]
async fn expires_in_zero_is_never_served_from_the_cache() {
    let (provider, manager) = setup(exact());
    provider.expires_in.store(0, Ordering::SeqCst);
    manager.get().await.unwrap();
    // expires_in 0 means already expired: the next caller asks again (no zero-length cache loop).
    manager.get().await.unwrap();
    assert_eq!(provider.requests.load(Ordering::SeqCst), 2);
}

#[tokio::test(start_paused = true)]
async fn a_caller_dropped_mid_request_does_not_cancel_it_for_the_others() {
    let (provider, manager) = setup(exact());
    let leader = {
        let manager = manager.clone();
        tokio::spawn(async move { manager.get().await.map(|t| t.access_token.expose().to_owned()) })
    };
    for _ in 0..1000 {
        if provider.requests.load(Ordering::SeqCst) > 0 {
            break;
        }
        tokio::task::yield_now().await;
    }
    assert_eq!(provider.requests.load(Ordering::SeqCst), 1, "the leader's request is out");
    leader.abort();
    assert!(leader.await.unwrap_err().is_cancelled());
    // A caller that gives up on its own deadline changes nothing either.
    assert!(tokio::time::timeout(DELAY / 4, manager.get()).await.is_err());
    // The request the aborted leader started still lands: one request for everyone.
    let token = manager.get().await.unwrap();
    assert_eq!(token.access_token.expose(), "t1");
    assert_eq!(provider.requests.load(Ordering::SeqCst), 1);
    assert!(manager.stats().coalesced.load(Ordering::Relaxed) >= 2);
}

#[tokio::test(start_paused = true)]
async fn a_huge_expires_in_does_not_overflow() {
    let (provider, manager) = setup(exact());
    provider.expires_in.store(u64::MAX, Ordering::SeqCst);
    let token = manager.get().await.unwrap();
    assert_eq!(token.expires_in, Some(identity_model::MAX_EXPIRES_IN_SECS), "clamped when read");
    tokio::time::advance(Duration::from_secs(3600)).await;
    assert_eq!(manager.get().await.unwrap().access_token.expose(), "t1", "cached, lifetime clamped");
    assert_eq!(provider.requests.load(Ordering::SeqCst), 1);
}

/// Issue 11: one slot per distinct (scope set, resource set) forever; callers passing
/// arbitrary scopes grew it without bound. Bounded now; the least recently used goes first.
#[tokio::test(start_paused = true)]
async fn a_flood_of_scope_sets_keeps_a_bounded_number_of_slots() {
    let (provider, manager) = setup(exact());
    manager.get().await.unwrap();
    manager.get_for(&["kept"], &[]).await.unwrap();
    for i in 0..(identity_model::MAX_TOKEN_SLOTS * 4) {
        manager.get_for(&[&format!("scope-{i}")], &[]).await.unwrap();
        if i % 8 == 0 {
            manager.get_for(&["kept"], &[]).await.unwrap(); // recently used: survives
        }
    }
    assert!(manager.slots() <= identity_model::MAX_TOKEN_SLOTS + 1, "{} slots", manager.slots());
    let before = provider.requests.load(Ordering::SeqCst);
    manager.get().await.unwrap();
    manager.get_for(&["kept"], &[]).await.unwrap();
    assert_eq!(provider.requests.load(Ordering::SeqCst), before, "the default and a busy slot stay cached");
}
