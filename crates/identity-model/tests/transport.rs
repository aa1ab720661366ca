//! The default reqwest transport and the Authority over real HTTP on loopback (wiremock).

#![allow(clippy::unwrap_used)] // tests fail loudly by design

mod support;

use identity_model::transport::{HttpRequest, HttpTransport, ReqwestTransport};
use identity_model::{Algorithm, Authority, DiscoveryPolicy, ErrorKind, HttpConfig, SigningKey, Validation};
use serde_json::json;
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

fn transport() -> ReqwestTransport {
    ReqwestTransport::new(&HttpConfig::default()).unwrap()
}

fn request(url: String) -> HttpRequest {
    HttpRequest { url, accept: "application/json", if_none_match: None, max_body: 1024 }
}

#[tokio::test]
async fn redirects_are_not_followed_and_bodies_are_capped() {
    let server = MockServer::start().await;
    Mock::given(path("/moved"))
        .respond_with(ResponseTemplate::new(302).insert_header("location", "https://elsewhere.example/"))
        .mount(&server)
        .await;
    Mock::given(path("/big"))
        .respond_with(ResponseTemplate::new(200).set_body_string("x".repeat(4096)))
        .mount(&server)
        .await;
    Mock::given(path("/ok"))
        .and(header("accept", "application/json"))
        .respond_with(
            ResponseTemplate::new(200).set_body_raw("{}", "application/json").insert_header("etag", "\"v1\""),
        )
        .mount(&server)
        .await;
    let t = transport();
    assert_eq!(t.get(request(format!("{}/moved", server.uri()))).await.unwrap().status, 302);
    let err = t.get(request(format!("{}/big", server.uri()))).await.unwrap_err();
    assert!(err.message.contains("limit"), "{err}");
    let ok = t.get(request(format!("{}/ok", server.uri()))).await.unwrap();
    assert_eq!(
        (ok.status, ok.content_type.as_deref(), ok.etag.as_deref()),
        (200, Some("application/json"), Some("\"v1\""))
    );
    let refused = t.get(request("http://127.0.0.1:9/".into())).await.unwrap_err();
    assert!(!refused.message.is_empty());
}

async fn provider(key: &SigningKey, jwks_content_type: &str) -> MockServer {
    let server = MockServer::start().await;
    let issuer = server.uri();
    Mock::given(method("GET"))
        .and(path("/.well-known/openid-configuration"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(
            json!({"issuer": issuer, "jwks_uri": format!("{issuer}/jwks")}).to_string(),
            "application/json",
        ))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/jwks"))
        .and(header("if-none-match", "\"k1\""))
        .respond_with(
            ResponseTemplate::new(304)
                .insert_header("etag", "\"k1\"")
                .insert_header("cache-control", "max-age=120"),
        )
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/jwks"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_raw(json!({"keys": [key.verification_jwk()]}).to_string(), jwks_content_type)
                .insert_header("etag", "\"k1\"")
                .insert_header("cache-control", "max-age=120"),
        )
        .mount(&server)
        .await;
    server
}

fn authority(issuer: &str) -> Authority {
    Authority::builder(issuer)
        .rules(Validation::new(issuer).audience("api"))
        .policy(DiscoveryPolicy::default().allow_http_on_loopback().resource_server_fields())
        .build()
        .unwrap()
}

fn token(key: &SigningKey, issuer: &str) -> String {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    key.sign_jwt(None, &json!({"iss": issuer, "aud": "api", "exp": now + 3600})).unwrap()
}

#[tokio::test]
async fn validates_through_discovery_over_http_and_revalidates_with_etag() {
    let key = SigningKey::generate(Algorithm::EdDSA).unwrap();
    let server = provider(&key, "application/jwk-set+json").await;
    let authority = authority(&server.uri());
    assert!(authority.validate(&token(&key, &server.uri())).await.is_ok());
    // An unknown kid refetches; the provider answers 304 to the ETag and the keys stay.
    let stranger = SigningKey::generate(Algorithm::EdDSA).unwrap();
    let err = authority.validate(&token(&stranger, &server.uri())).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::KeyNotFound);
    assert!(authority.validate(&token(&key, &server.uri())).await.is_ok());
    let requests = server.received_requests().await.unwrap();
    let jwks: Vec<_> = requests.iter().filter(|r| r.url.path() == "/jwks").collect();
    assert_eq!(jwks.len(), 2);
    assert!(jwks[1].headers.get("if-none-match").is_some());
}

#[tokio::test]
async fn wrong_content_type_and_plain_http_are_refused() {
    let key = SigningKey::generate(Algorithm::ES256).unwrap();
    let server = provider(&key, "text/html").await;
    let err = authority(&server.uri()).validate(&token(&key, &server.uri())).await.unwrap_err();
    assert!(support::unavailable_because(&err, ErrorKind::UnexpectedContentType), "{err}");
    // Without the loopback allowance, http is a policy violation before any request.
    let strict = Authority::builder(server.uri()).build().unwrap_err();
    assert_eq!(strict.kind(), ErrorKind::PolicyViolation);
}

#[tokio::test]
async fn malformed_key_sets_and_documents_are_typed_errors() {
    let key = SigningKey::generate(Algorithm::ES256).unwrap();
    for (discovery_body, jwks_body, expected) in [
        (None, "{not json", ErrorKind::InvalidKeySet),
        (None, r#"{"keys": 7}"#, ErrorKind::InvalidKeySet),
        (Some("<html>hello</html>"), "{}", ErrorKind::InvalidDocument),
        (Some(r#"{"issuer": 5}"#), "{}", ErrorKind::InvalidDocument),
    ] {
        let server = MockServer::start().await;
        let issuer = server.uri();
        let discovery = discovery_body
            .map(str::to_owned)
            .unwrap_or_else(|| json!({"issuer": issuer, "jwks_uri": format!("{issuer}/jwks")}).to_string());
        Mock::given(path("/.well-known/openid-configuration"))
            .respond_with(ResponseTemplate::new(200).set_body_raw(discovery, "application/json"))
            .mount(&server)
            .await;
        Mock::given(path("/jwks"))
            .respond_with(ResponseTemplate::new(200).set_body_raw(jwks_body, "application/json"))
            .mount(&server)
            .await;
        let err = authority(&issuer).validate(&token(&key, &issuer)).await.unwrap_err();
        assert!(support::unavailable_because(&err, expected), "{discovery_body:?} / {jwks_body}: {err}");
    }
}

/// The blocking API over real HTTP: discovery, ETag revalidation after a kid miss, malformed keys.
#[test]
fn blocking_validates_over_http_with_etag_revalidation() {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let key = SigningKey::generate(Algorithm::EdDSA).unwrap();
    let server = runtime.block_on(provider(&key, "application/json"));
    let issuer = server.uri();
    let authority = identity_model::blocking::Authority::new(authority(&issuer));
    assert!(authority.validate(&token(&key, &issuer)).is_ok());
    let stranger = SigningKey::generate(Algorithm::EdDSA).unwrap();
    assert_eq!(authority.validate(&token(&stranger, &issuer)).unwrap_err().kind(), ErrorKind::KeyNotFound);
    assert!(authority.validate(&token(&key, &issuer)).is_ok());
    let requests = runtime.block_on(server.received_requests()).unwrap();
    let jwks: Vec<_> = requests.iter().filter(|r| r.url.path() == "/jwks").collect();
    assert_eq!(jwks.len(), 2);
    assert!(jwks[1].headers.get("if-none-match").is_some(), "revalidated with the ETag");
}

/// Issue 11: the URL policy checked IP literals only; a name resolving to a private or local
/// address was fetched. Resolved addresses are checked now, before any connection.
#[tokio::test]
async fn names_resolving_to_refused_addresses_are_not_fetched() {
    let key = SigningKey::generate(Algorithm::EdDSA).unwrap();
    let server = provider(&key, "application/jwk-set+json").await;
    let port = server.address().port();
    // `localhost` resolves to loopback: refused under the strict policy, before connecting.
    let strict = Authority::builder(format!("https://localhost:{port}"))
        .rules(Validation::new(format!("https://localhost:{port}")).audience("api"))
        .build()
        .unwrap();
    let e = strict.discover().await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::PolicyViolation, "{e}");
    assert!(e.message().contains("resolves only to addresses the URL policy refuses"), "{e}");
    // Loopback is allowed with HTTP on loopback: the same name is then resolved and fetched.
    let dev = Authority::builder(server.uri().replace("127.0.0.1", "localhost"))
        .policy(DiscoveryPolicy::default().allow_http_on_loopback().resource_server_fields())
        .build()
        .unwrap();
    let reached = dev.discover().await;
    assert!(
        !matches!(&reached, Err(e) if e.kind() == ErrorKind::PolicyViolation),
        "loopback names are allowed with allow_http_on_loopback: {reached:?}"
    );
    // Non-canonical IPv4 literals never reach a resolver.
    for host in ["127.1", "0x7f.0.0.1", "2130706433"] {
        let e = Authority::builder(format!("https://{host}")).build().unwrap_err();
        assert_eq!(e.kind(), ErrorKind::PolicyViolation, "{host}");
    }
}
