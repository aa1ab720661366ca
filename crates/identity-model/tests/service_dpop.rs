//! DPoP through the tower layer (RFC 9449 section 7): a bound token with its proof passes
//! once; every mistake is a 401 with a `DPoP` challenge naming its kind.

#![cfg(feature = "axum")]
#![allow(clippy::unwrap_used)]

mod support;

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::routing::get;
use http::{Request, StatusCode, header};
use identity_model::{Authority, BearerLayer, DpopKey, DpopNonces, DpopRules, NonceRule, ProofRequest};
use identity_model_testkit::TestProvider;
use serde_json::json;
use tower::ServiceExt;

const ORIGIN: &str = "https://api.example";

fn authority(provider: &TestProvider) -> Authority {
    support::testkit::authority(provider, false)
}

fn app(layer: BearerLayer) -> Router {
    Router::new().route("/orders", get(|| async { "ok" }).post(|| async { "posted" })).layer(layer)
}

struct Answer {
    status: StatusCode,
    kind: Option<String>,
    challenge: Option<String>,
    nonce: Option<String>,
}

async fn call(app: &Router, method: &str, authorization: &str, proofs: &[&str]) -> Answer {
    let mut request =
        Request::builder().method(method).uri("/orders").header(header::AUTHORIZATION, authorization);
    for proof in proofs {
        request = request.header("dpop", *proof);
    }
    let response = app.clone().oneshot(request.body(Body::empty()).unwrap()).await.unwrap();
    let text = |name: &str| response.headers().get(name).map(|v| v.to_str().unwrap().to_owned());
    Answer {
        status: response.status(),
        kind: text("x-auth-error"),
        challenge: text("www-authenticate"),
        nonce: text("dpop-nonce"),
    }
}

fn proof(
    key: &DpopKey,
    method: &str,
    url: &str,
    token: &str,
    nonce: Option<&str>,
    now: identity_model::UnixTime,
) -> String {
    let mut request = ProofRequest::new(method, url).with_access_token(token);
    if let Some(nonce) = nonce {
        request = request.with_nonce(nonce);
    }
    key.proof(&request, now).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bound_token_passes_once_with_its_proof_and_every_mistake_has_its_kind() {
    let provider = TestProvider::start().await.unwrap();
    let authority = authority(&provider);
    let now = authority.now();
    let app = app(BearerLayer::new(authority).dpop_public_origin(ORIGIN));
    let key = DpopKey::generate_default().unwrap();
    let other = DpopKey::generate_default().unwrap();
    let bound = provider.token().subject("alice").claim("cnf", json!({"jkt": key.thumbprint()})).sign();
    let unbound = provider.token().subject("bob").sign();
    let url = format!("{ORIGIN}/orders");
    let scheme = format!("DPoP {bound}");

    let good = proof(&key, "GET", &url, &bound, None, now);
    let ok = call(&app, "GET", &scheme, &[&good]).await;
    assert_eq!(ok.status, StatusCode::OK, "{:?}", ok.kind);
    let post = proof(&key, "POST", &url, &bound, None, now);
    assert_eq!(call(&app, "POST", &scheme, &[&post]).await.status, StatusCode::OK);

    let cases: Vec<(&str, String, Vec<String>, &str, &str)> = vec![
        ("replayed proof", scheme.clone(), vec![good.clone()], "GET", "dpop_replay"),
        ("bound token as Bearer", format!("Bearer {bound}"), vec![], "GET", "dpop_proof_required"),
        (
            "bound token as Bearer with a proof",
            format!("Bearer {bound}"),
            vec![proof(&key, "GET", &url, &bound, None, now)],
            "GET",
            "dpop_proof_required",
        ),
        ("DPoP scheme without proof", scheme.clone(), vec![], "GET", "dpop_proof_required"),
        (
            "two proofs",
            scheme.clone(),
            vec![proof(&key, "GET", &url, &bound, None, now), proof(&key, "GET", &url, &bound, None, now)],
            "GET",
            "invalid_dpop_proof",
        ),
        (
            "htm",
            scheme.clone(),
            vec![proof(&key, "POST", &url, &bound, None, now)],
            "GET",
            "invalid_dpop_proof",
        ),
        (
            "htu",
            scheme.clone(),
            vec![proof(&key, "GET", &format!("{ORIGIN}/admin"), &bound, None, now)],
            "GET",
            "invalid_dpop_proof",
        ),
        (
            "htu other origin",
            scheme.clone(),
            vec![proof(&key, "GET", "https://evil.example/orders", &bound, None, now)],
            "GET",
            "invalid_dpop_proof",
        ),
        (
            "iat too old",
            scheme.clone(),
            vec![proof(
                &key,
                "GET",
                &url,
                &bound,
                None,
                identity_model::UnixTime::from_secs(now.as_secs() - 400),
            )],
            "GET",
            "invalid_dpop_proof",
        ),
        (
            "ath of another token",
            scheme.clone(),
            vec![proof(&key, "GET", &url, &unbound, None, now)],
            "GET",
            "invalid_dpop_proof",
        ),
        (
            "another key",
            scheme.clone(),
            vec![proof(&other, "GET", &url, &bound, None, now)],
            "GET",
            "dpop_key_mismatch",
        ),
        (
            "unbound token with DPoP",
            format!("DPoP {unbound}"),
            vec![proof(&key, "GET", &url, &unbound, None, now)],
            "GET",
            "dpop_key_mismatch",
        ),
        ("not a JWS", scheme.clone(), vec!["junk".into()], "GET", "invalid_dpop_proof"),
    ];
    for (name, authorization, proofs, method, expected) in cases {
        let proofs: Vec<&str> = proofs.iter().map(String::as_str).collect();
        let answer = call(&app, method, &authorization, &proofs).await;
        assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "{name}");
        assert_eq!(answer.kind.as_deref(), Some(expected), "{name}");
        let challenge = answer.challenge.unwrap();
        assert!(challenge.starts_with("DPoP realm=\"api\", "), "{name}: {challenge}");
        assert!(challenge.contains(&format!("error=\"{expected}\"")), "{name}: {challenge}");
        assert!(challenge.contains("algs=\"") && challenge.contains("ES256"), "{name}: {challenge}");
    }
    // An unbound token as Bearer is still fine.
    assert_eq!(call(&app, "GET", &format!("Bearer {unbound}"), &[]).await.status, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_nonce_is_asked_for_then_accepted() {
    let provider = TestProvider::start().await.unwrap();
    let authority = authority(&provider);
    let now = authority.now();
    let nonces = Arc::new(DpopNonces::new(&[3; 32], 300).unwrap());
    let rules = DpopRules::new().nonce(NonceRule::Rotating(nonces));
    let app = app(BearerLayer::new(authority).dpop_public_origin(ORIGIN).dpop_rules(rules));
    let key = DpopKey::generate_default().unwrap();
    let bound = provider.token().claim("cnf", json!({"jkt": key.thumbprint()})).sign();
    let url = format!("{ORIGIN}/orders");
    let scheme = format!("DPoP {bound}");
    let first = call(&app, "GET", &scheme, &[&proof(&key, "GET", &url, &bound, None, now)]).await;
    assert_eq!(first.kind.as_deref(), Some("use_dpop_nonce"));
    let nonce = first.nonce.expect("a DPoP-Nonce header");
    let stale = call(&app, "GET", &scheme, &[&proof(&key, "GET", &url, &bound, Some("stale"), now)]).await;
    assert_eq!(stale.kind.as_deref(), Some("use_dpop_nonce"));
    let retried = call(&app, "GET", &scheme, &[&proof(&key, "GET", &url, &bound, Some(&nonce), now)]).await;
    assert_eq!(retried.status, StatusCode::OK, "{:?}", retried.kind);
}

/// The client side against this layer over real HTTP: `TokenClient::get_resource` sends
/// `Authorization: DPoP` with a proof, meets the server's nonce demand once, then reuses it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_resource_meets_a_resource_servers_nonce_then_reuses_it() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let provider = TestProvider::start().await.unwrap();
    let authority = authority(&provider);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let nonces = Arc::new(DpopNonces::new(&[5; 32], 300).unwrap());
    let layer = BearerLayer::new(authority.clone())
        .dpop_public_origin(format!("http://{addr}"))
        .dpop_rules(DpopRules::new().nonce(NonceRule::Rotating(nonces)));
    let seen = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&seen);
    let app = app(layer).layer(axum::middleware::from_fn(
        move |request: axum::extract::Request, next: axum::middleware::Next| {
            counter.fetch_add(1, Ordering::SeqCst);
            async move { next.run(request).await }
        },
    ));
    let server = tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let client = identity_model::TokenClient::builder(identity_model::Client::with_secret(
        "demo-service",
        "demo-secret",
    ))
    .authority(&authority)
    .dpop_key(DpopKey::generate_default().unwrap())
    .build()
    .unwrap();
    let tokens = client.client_credentials(&[], &[]).await.unwrap();
    let url = format!("http://{addr}/orders");
    let answer = client.get_resource(&url, tokens.access_token.expose()).await.unwrap();
    assert_eq!(answer.status, 200, "{}", String::from_utf8_lossy(&answer.body));
    assert_eq!(answer.body, b"ok");
    assert_eq!(seen.load(Ordering::SeqCst), 2, "one use_dpop_nonce answer, one retry");
    let again = client.get_resource(&url, tokens.access_token.expose()).await.unwrap();
    assert_eq!(again.status, 200);
    assert_eq!(seen.load(Ordering::SeqCst), 3, "the nonce was remembered");
    server.abort();
}
