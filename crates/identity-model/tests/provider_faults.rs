//! Issue 19, item 2: a provider that cannot give keys is the provider's fault, so the layer
//! answers 503 with `Retry-After` (never 401 `invalid_token`) from the first request, at a
//! cold start and after keys were once had, and the rejection keeps the provider's reason as
//! its source.

#![cfg(feature = "axum")]
#![allow(clippy::unwrap_used)]

mod support;

use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::routing::get;
use http::{HeaderMap, HeaderValue, Request, StatusCode, header};
use identity_model::{
    Authenticated, Authority, BearerLayer, DiscoveryPolicy, ErrorKind, HttpConfig, Rejection, Validation,
};
use identity_model_testkit::{Endpoint, Fault, Rotation, TestProvider, Times};
use serde_json::json;
use tower::ServiceExt;
use wiremock::matchers::path;
use wiremock::{Mock, MockServer, ResponseTemplate};

fn authority_at(issuer: &str) -> Authority {
    Authority::builder(issuer)
        .rules(Validation::new(issuer).audience("https://api.example"))
        .policy(DiscoveryPolicy::default().allow_http_on_loopback().resource_server_fields())
        .config(HttpConfig {
            retry_max_attempts: 1,
            timeout: Duration::from_millis(300),
            ..HttpConfig::default()
        })
        .build()
        .unwrap()
}

fn app(authority: Authority) -> Router {
    Router::new()
        .route(
            "/orders",
            get(|Authenticated(claims): Authenticated<serde_json::Value>| async move { claims.to_string() }),
        )
        .layer(BearerLayer::new(authority))
}

/// The layer's answer to `token`: status, `Retry-After`, `WWW-Authenticate`, and the
/// rejection itself (through `BearerLayer::authorize`, for its error's sources).
async fn ask(
    authority: &Authority,
    token: &str,
) -> (StatusCode, Option<String>, Option<String>, Option<Rejection>) {
    let request = Request::get("/orders").header(header::AUTHORIZATION, format!("Bearer {token}"));
    let response = app(authority.clone()).oneshot(request.body(Body::empty()).unwrap()).await.unwrap();
    let text = |name| response.headers().get(name).map(|v: &HeaderValue| v.to_str().unwrap().to_owned());
    let (retry, challenge) = (text(header::RETRY_AFTER), text(header::WWW_AUTHENTICATE));
    let mut headers = HeaderMap::new();
    headers.insert(header::AUTHORIZATION, format!("Bearer {token}").parse().unwrap());
    let rejection = BearerLayer::new(authority.clone()).authorize(&headers).await.err();
    (response.status(), retry, challenge, rejection)
}

/// The kinds of the rejection's error and of its sources.
fn kinds(rejection: &Rejection) -> Vec<ErrorKind> {
    match rejection {
        Rejection::Unavailable(error) => support::kinds(error),
        _ => Vec::new(),
    }
}

fn assert_unavailable(
    what: &str,
    answer: (StatusCode, Option<String>, Option<String>, Option<Rejection>),
    cause: ErrorKind,
) {
    let (status, retry, challenge, rejection) = answer;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{what}: {rejection:?}");
    assert_eq!(retry.as_deref(), Some("5"), "{what}: Retry-After");
    assert_eq!(challenge, None, "{what}: a 503 blames no token");
    let rejection = rejection.expect("refused");
    let kinds = kinds(&rejection);
    assert_eq!(kinds.first(), Some(&ErrorKind::KeysUnavailable), "{what}: {rejection:?}");
    assert!(kinds.contains(&cause), "{what}: {cause:?} not among the sources {kinds:?}");
}

const JWKS_FAULTS: [(&str, Fault, ErrorKind); 6] = [
    ("malformed JWK Set", Fault::MalformedJson, ErrorKind::InvalidKeySet),
    ("wrong Content-Type", Fault::WrongContentType, ErrorKind::UnexpectedContentType),
    ("HTTP 500", Fault::Status(500), ErrorKind::HttpStatus),
    ("HTTP 503", Fault::Status(503), ErrorKind::HttpStatus),
    ("connection reset", Fault::ConnectionReset, ErrorKind::TransportError),
    ("slow past the timeout", Fault::Latency(Duration::from_secs(2)), ErrorKind::TransportError),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_key_set_is_503_at_a_cold_start_and_after_keys_were_had() {
    for (what, fault, cause) in JWKS_FAULTS {
        // Cold: the first request already gets 503, and so does the next, inside the backoff.
        let provider = TestProvider::start().await.unwrap();
        let authority = authority_at(provider.issuer());
        let token = provider.token().audience("https://api.example").sign();
        provider.inject(Endpoint::Jwks, fault.clone(), Times::UntilCleared);
        assert_unavailable(&format!("cold, {what}"), ask(&authority, &token).await, cause);
        let again = ask(&authority, &token).await;
        let message = match &again.3 {
            Some(Rejection::Unavailable(e)) => e.message().to_owned(),
            other => panic!("cold, {what}, inside the backoff: {other:?}"),
        };
        assert!(message.contains(cause.as_str()), "cold, {what}, inside the backoff: {message}");
        assert_unavailable(&format!("cold, {what}, inside the backoff"), again, cause);

        // Warm: keys were had; the provider rotates and then fails. A token signed by the
        // new key cannot be judged: 503, while a token of the cached key still passes.
        provider.clear_faults();
        let authority = authority_at(provider.issuer());
        let old = provider.token().audience("https://api.example").sign();
        assert_eq!(ask(&authority, &old).await.0, StatusCode::OK, "{what}: warm-up");
        provider.rotate_keys(Rotation::Overlap);
        let new = provider.token().audience("https://api.example").sign();
        provider.inject(Endpoint::Jwks, fault.clone(), Times::UntilCleared);
        assert_unavailable(&format!("warm, {what}"), ask(&authority, &new).await, cause);
        assert_eq!(ask(&authority, &old).await.0, StatusCode::OK, "{what}: the cached key still judges");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_discovery_document_is_503() {
    // Malformed, and HTTP 5xx, from the test provider.
    for (what, fault, cause) in [
        ("malformed discovery document", Fault::MalformedJson, ErrorKind::InvalidDocument),
        ("discovery HTTP 502", Fault::Status(502), ErrorKind::HttpStatus),
        ("discovery with a wrong Content-Type", Fault::WrongContentType, ErrorKind::UnexpectedContentType),
    ] {
        let provider = TestProvider::start().await.unwrap();
        let authority = authority_at(provider.issuer());
        provider.inject(Endpoint::Discovery, fault, Times::UntilCleared);
        let token = provider.token().audience("https://api.example").sign();
        assert_unavailable(what, ask(&authority, &token).await, cause);
    }

    // A document for another issuer (mismatched), and one whose jwks_uri breaks the policy.
    let server = MockServer::start().await;
    let issuer = server.uri();
    Mock::given(path("/.well-known/openid-configuration"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "issuer": "https://somebody-else.example",
            "jwks_uri": format!("{issuer}/jwks"),
        })))
        .mount(&server)
        .await;
    let token = "eyJhbGciOiJSUzI1NiIsImtpZCI6ImsifQ.eyJpc3MiOiJ4In0.c2ln";
    assert_unavailable(
        "mismatched issuer",
        ask(&authority_at(&issuer), token).await,
        ErrorKind::IssuerMismatch,
    );
    let server = MockServer::start().await;
    let issuer = server.uri();
    Mock::given(path("/.well-known/openid-configuration"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "issuer": issuer,
            "jwks_uri": "http://keys.example/jwks",
        })))
        .mount(&server)
        .await;
    assert_unavailable(
        "a jwks_uri the policy refuses",
        ask(&authority_at(&issuer), token).await,
        ErrorKind::PolicyViolation,
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_answer_at_all_is_503_connection_refused_and_tls_failure() {
    let token = "eyJhbGciOiJSUzI1NiIsImtpZCI6ImsifQ.eyJpc3MiOiJ4In0.c2ln";
    // Connection refused: nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let refused = authority_at(&format!("http://127.0.0.1:{port}"));
    assert_unavailable("connection refused", ask(&refused, token).await, ErrorKind::TransportError);
    // TLS failure: https to a server that speaks plain HTTP.
    let server = MockServer::start().await;
    let https = server.uri().replace("http://", "https://");
    assert_unavailable("TLS failure", ask(&authority_at(&https), token).await, ErrorKind::TransportError);
}
