//! The tower layer and axum extractors against the test provider over real HTTP: every
//! answer a protected service gives (200, 400, 401 with and without `error`, 403, 503).

#![cfg(feature = "axum")]
#![allow(clippy::unwrap_used)]

mod support;

use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::routing::get;
use http::{Request, StatusCode, header};
use identity_model::{Authenticated, Authority, BearerLayer, MaybeAuthenticated};
use identity_model_testkit::{Endpoint, Fault, TestProvider, Times};
use tower::ServiceExt;

#[derive(Debug, serde::Deserialize)]
struct Caller {
    sub: String,
    scope: Option<String>,
}

fn authority(provider: &TestProvider) -> Authority {
    support::testkit::authority(provider, true)
}

fn app(layer: BearerLayer) -> Router {
    Router::new()
        .route(
            "/orders",
            get(|Authenticated(caller): Authenticated<Caller>| async move {
                format!("hello {} ({})", caller.sub, caller.scope.unwrap_or_default())
            }),
        )
        .route(
            "/public",
            get(|MaybeAuthenticated(caller): MaybeAuthenticated<Caller>| async move {
                caller.map_or("anonymous".to_owned(), |c| c.sub)
            }),
        )
        .layer(layer)
}

async fn call(app: &Router, path: &str, authorization: Option<&str>) -> (StatusCode, Option<String>, String) {
    let mut request = Request::get(path);
    if let Some(value) = authorization {
        request = request.header(header::AUTHORIZATION, value);
    }
    let response = app.clone().oneshot(request.body(Body::empty()).unwrap()).await.unwrap();
    let status = response.status();
    let challenge = response.headers().get(header::WWW_AUTHENTICATE).map(|v| v.to_str().unwrap().to_owned());
    let body = axum::body::to_bytes(response.into_body(), 1 << 16).await.unwrap();
    (status, challenge, String::from_utf8(body.to_vec()).unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_answer_of_a_protected_service() {
    let provider = TestProvider::start().await.unwrap();
    let layer = BearerLayer::new(authority(&provider)).realm("orders").require_all_scopes(["orders:read"]);
    let app = app(layer);
    let good = provider.token().subject("alice").claim("scope", "orders:read orders:write").sign();
    let (status, _, body) = call(&app, "/orders", Some(&format!("Bearer {good}"))).await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, "hello alice (orders:read orders:write)"));
    // The scheme is case-insensitive.
    assert_eq!(call(&app, "/orders", Some(&format!("bearer {good}"))).await.0, StatusCode::OK);

    // No token, or another scheme: 401 with a challenge and no error (RFC 6750 3.1).
    for authorization in [None, Some("Basic YWxpY2U6c2VjcmV0")] {
        let (status, challenge, _) = call(&app, "/orders", authorization).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert_eq!(challenge.as_deref(), Some(r#"Bearer realm="orders""#));
    }
    // A malformed credential: 400 invalid_request.
    let (status, challenge, _) = call(&app, "/orders", Some("Bearer not a token")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        challenge
            .unwrap()
            .starts_with(r#"Bearer realm="orders", error="invalid_request", error_description=""#)
    );
    // Expired, forged, unsigned, wrong audience: 401 invalid_token, comma-separated parameters.
    for bad in [
        provider.token().expired().sign(),
        provider.token().tampered_signature(),
        provider.token().unsigned(),
        provider.token().audience("https://other.example").sign(),
    ] {
        let (status, challenge, _) = call(&app, "/orders", Some(&format!("Bearer {bad}"))).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        let challenge = challenge.unwrap();
        assert!(
            challenge.starts_with(r#"Bearer realm="orders", error="invalid_token", error_description=""#),
            "{challenge}"
        );
    }
    // A valid token without the scope: 403 insufficient_scope naming it.
    let reader = provider.token().claim("scope", "orders:list").sign();
    let (status, challenge, _) = call(&app, "/orders", Some(&format!("Bearer {reader}"))).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(
        challenge.as_deref(),
        Some(r#"Bearer realm="orders", error="insufficient_scope", scope="orders:read""#)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn optional_mode_and_an_unreachable_provider() {
    let provider = TestProvider::start().await.unwrap();
    let optional = app(BearerLayer::new(authority(&provider)).optional());
    assert_eq!(call(&optional, "/public", None).await, (StatusCode::OK, None, "anonymous".to_owned()));
    let token = provider.token().subject("bob").sign();
    assert_eq!(call(&optional, "/public", Some(&format!("Bearer {token}"))).await.2, "bob");
    let forged = provider.token().tampered_signature();
    assert_eq!(
        call(&optional, "/public", Some(&format!("Bearer {forged}"))).await.0,
        StatusCode::UNAUTHORIZED
    );
    // A route behind an optional layer that needs a caller: the extractor refuses (401, JSON).
    let (status, _, body) = call(&optional, "/orders", None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(serde_json::from_str::<serde_json::Value>(&body).unwrap()["error"], "missing_token");

    // No keys can be obtained (a cold authority, the provider failing): 503, no challenge.
    provider.inject(Endpoint::Discovery, Fault::Status(503), Times::UntilCleared);
    let cold = app(BearerLayer::new(authority(&provider)));
    let (status, challenge, _) = call(&cold, "/orders", Some(&format!("Bearer {token}"))).await;
    assert_eq!((status, challenge), (StatusCode::SERVICE_UNAVAILABLE, None));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plain_tower_service_gets_the_validated_token() {
    let provider = TestProvider::start().await.unwrap();
    let service = tower::ServiceBuilder::new().layer(BearerLayer::new(authority(&provider))).service_fn(
        |request: Request<String>| async move {
            let sub = request
                .extensions()
                .get::<identity_model::ValidToken>()
                .and_then(|v| v.claims.sub().map(str::to_owned));
            Ok::<_, std::convert::Infallible>(http::Response::new(sub.unwrap_or_default()))
        },
    );
    let token = provider.token().subject("carol").sign();
    let request = Request::get("/")
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .body(String::new())
        .unwrap();
    let response = service.clone().oneshot(request).await.unwrap();
    assert_eq!(response.body(), "carol");
    let refused = service.oneshot(Request::get("/").body(String::new()).unwrap()).await.unwrap();
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(refused.headers()["x-auth-error"], "missing_token");
    assert_eq!(refused.body(), "", "the default answer has an empty body");
}

/// A request dropped while the layer waits for keys (a client disconnect, a proxy timeout)
/// cancels nothing: the fetch it started lands, and the next request uses it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_dropped_mid_fetch_leaves_the_next_one_unaffected() {
    let provider = TestProvider::start().await.unwrap();
    provider.inject(Endpoint::Jwks, Fault::Latency(Duration::from_millis(300)), Times::Next(1));
    let app = app(BearerLayer::new(authority(&provider)));
    let token = provider.token().subject("dave").sign();
    let authorization = format!("Bearer {token}");
    let dropped =
        tokio::time::timeout(Duration::from_millis(50), call(&app, "/orders", Some(&authorization))).await;
    assert!(dropped.is_err(), "the first request gave up while the key set was being fetched");
    let (status, _, body) = call(&app, "/orders", Some(&authorization)).await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, "hello dave ()"));
    assert_eq!(provider.requests(Endpoint::Jwks), 1, "the dropped request's fetch served the next one");
}

/// RFC 9728: the document at its well-known path (outside the layer), and
/// `resource_metadata` in every challenge, Bearer and insufficient_scope alike.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn protected_resource_metadata_and_its_challenge_parameter() {
    let provider = TestProvider::start().await.unwrap();
    let metadata = identity_model::ProtectedResourceMetadata::new("https://api.example/mcp")
        .unwrap()
        .authorization_servers([provider.issuer()])
        .scopes_supported(["orders:read"])
        .bearer_methods_supported(["header"]);
    let url = metadata.url();
    let layer = BearerLayer::new(authority(&provider))
        .resource_metadata(url.clone())
        .require_all_scopes(["orders:read"]);
    let app = app(layer).merge(metadata.router());
    let (status, challenge, body) = call(&app, "/.well-known/oauth-protected-resource/mcp", None).await;
    assert_eq!(status, StatusCode::OK, "served outside the layer");
    let document: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(document["resource"], "https://api.example/mcp");
    assert_eq!(document["authorization_servers"][0], provider.issuer());
    assert!(challenge.is_none());

    let expected = format!(r#"resource_metadata="{url}""#);
    let (status, challenge, _) = call(&app, "/orders", None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(challenge.as_deref().unwrap().ends_with(&expected), "{challenge:?}");
    let unscoped = format!("Bearer {}", provider.token().sign());
    let (status, challenge, _) = call(&app, "/orders", Some(&unscoped)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let challenge = challenge.unwrap();
    assert!(
        challenge.contains(r#"error="insufficient_scope""#) && challenge.ends_with(&expected),
        "{challenge}"
    );
}
