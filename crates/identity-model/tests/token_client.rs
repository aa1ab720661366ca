//! Every grant and endpoint of the TokenClient against the test provider over real HTTP,
//! endpoints from the Authority's discovery: client credentials with each client
//! authentication, code + PKCE (plain and pushed), refresh with rotation, device flow, token
//! exchange, introspection, revocation, userinfo, ID tokens; and which requests are retried.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use identity_model::{
    Authority, AuthorizationRequest, CacheConfig, Client, ClientAuth, DiscoveryPolicy, Endpoints, ErrorKind,
    HttpConfig, IdTokenValidation, SigningKey, TokenClient, TokenExchange, TokenManager, Validation,
    token_type,
};
use identity_model_core::Algorithm;
use identity_model_testkit::{ClientConfig, Endpoint, Fault, ProviderConfig, TestProvider, Times};
use serde_json::{Value, json};

fn config() -> HttpConfig {
    HttpConfig {
        retry_base_delay: Duration::from_millis(5),
        timeout: Duration::from_secs(5),
        ..HttpConfig::default()
    }
}

fn authority(provider: &TestProvider) -> Authority {
    Authority::builder(provider.issuer())
        .rules(Validation::new(provider.issuer()).audience(provider.default_audience()).token_type("at+jwt"))
        .policy(DiscoveryPolicy::default().allow_http_on_loopback())
        .config(config())
        .build()
        .unwrap()
}

fn client(authority: &Authority, client: Client) -> TokenClient {
    TokenClient::builder(client).authority(authority).build().unwrap()
}

async fn provider_with(extra: Vec<ClientConfig>) -> TestProvider {
    let mut config = ProviderConfig { device_poll_interval: 1, ..ProviderConfig::default() };
    config.clients.extend(extra);
    TestProvider::builder().config(config).start().await.unwrap()
}

/// Follows the authorization URL to the redirect and returns the callback URL.
async fn browse(url: &str) -> String {
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let response = http.get(url).send().await.unwrap();
    assert_eq!(response.status(), 302, "{url}");
    response.headers()["location"].to_str().unwrap().to_owned()
}

#[tokio::test]
async fn client_credentials_with_every_client_authentication() {
    let key = SigningKey::generate(Algorithm::ES256).unwrap();
    let jwks = json!({"keys": [Value::Object(key.verification_jwk())]});
    // client_secret_jwt needs a secret as long as the hash (RFC 7518 3.2): a 32-byte one.
    let long_secret = "0123456789abcdef0123456789abcdef";
    let provider = provider_with(vec![
        ClientConfig::private_key_jwt("key-service", jwks),
        ClientConfig::service("jwt-service", long_secret),
    ])
    .await;
    let authority = authority(&provider);
    let clients = [
        Client::with_secret("demo-service", "demo-secret"),
        Client::new("demo-service", ClientAuth::SecretPost("demo-secret".into())),
        Client::new("jwt-service", ClientAuth::SecretJwt(long_secret.into(), Algorithm::HS256)),
        Client::with_key("key-service", key).unwrap(),
    ];
    for c in clients {
        let method = c.auth.method();
        let tokens = client(&authority, c).client_credentials(&["api:read"], &[]).await.unwrap();
        assert_eq!(tokens.token_type, "Bearer", "{method}");
        let valid = authority.validate(tokens.access_token.expose()).await.unwrap();
        assert_eq!(valid.claims.get("scope"), Some(&Value::from("api:read")), "{method}");
    }
    let recorded = provider.recorded(Endpoint::Token);
    assert!(recorded[0].header("authorization").unwrap().starts_with("Basic "), "basic is the default");
    assert!(!recorded[0].form().iter().any(|(n, _)| n == "client_secret"));
    assert!(recorded[1].form().iter().any(|(n, _)| n == "client_secret"));
    assert!(
        recorded[3].form().iter().any(|(n, v)| n == "client_assertion_type" && v.ends_with("jwt-bearer"))
    );

    let short = Client::new("demo-service", ClientAuth::SecretJwt("demo-secret".into(), Algorithm::HS256));
    let e = client(&authority, short).client_credentials(&[], &[]).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidKey, "a short secret is refused before sending");
    let wrong = client(&authority, Client::with_secret("demo-service", "wrong"));
    let e = wrong.client_credentials(&[], &[]).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::OAuthError);
    assert_eq!((e.oauth().unwrap().error.as_str(), e.oauth().unwrap().status), ("invalid_client", 401));
}

#[tokio::test]
async fn code_flow_with_pkce_id_token_userinfo_and_refresh_rotation() {
    let provider = provider_with(vec![]).await;
    let authority = authority(&provider);
    let app = client(&authority, Client::public("demo-app"));
    let request = AuthorizationRequest::new("demo-app", "http://127.0.0.1:8400/callback")
        .unwrap()
        .scope(["profile", "offline_access"]);
    let callback = browse(&app.authorization_url(&request).await.unwrap()).await;
    let tokens = app.redeem(&request, &callback).await.unwrap();
    let sent = provider.recorded(Endpoint::Token).pop().unwrap().form();
    assert!(sent.iter().any(|(n, v)| n == "code_verifier" && v == request.pkce.verifier().expose()));

    let id_token = tokens.id_token.clone().unwrap();
    let keys = authority.keys().await.unwrap();
    let now = identity_model::Clock::now(&identity_model::SystemClock);
    let id = IdTokenValidation::new(provider.issuer(), "demo-app")
        .nonce(request.nonce.clone())
        .access_token(tokens.access_token.expose())
        .validate(id_token.expose(), &keys, now)
        .unwrap();
    let sub = id.claims.sub().unwrap().to_owned();
    let info = app.userinfo(tokens.access_token.expose(), Some(&sub)).await.unwrap();
    assert_eq!(info.text("name"), Some("Alice Example"));
    let e = app.userinfo(tokens.access_token.expose(), Some("mallory")).await.unwrap_err();
    assert_eq!((e.kind(), e.claim()), (ErrorKind::InvalidClaim, Some("sub")));
    let e = app.userinfo("not-a-token", None).await.unwrap_err();
    assert_eq!(e.oauth().map(|o| o.status), Some(401));
    assert!(e.oauth().unwrap().www_authenticate.is_some());

    // The code is single use; redeeming it again fails.
    let e = app.redeem(&request, &callback).await.unwrap_err();
    assert_eq!(e.oauth().unwrap().error, "invalid_grant");
    // A callback for another request (state mismatch) is refused before any request.
    let other = AuthorizationRequest::new("demo-app", "http://127.0.0.1:8400/callback").unwrap();
    assert_eq!(app.redeem(&other, &callback).await.unwrap_err().kind(), ErrorKind::InvalidCallback);

    let refresh = tokens.refresh_token.clone().unwrap();
    let rotated = app.refresh(refresh.clone()).await.unwrap();
    assert_ne!(rotated.refresh_token.as_ref().unwrap(), &refresh, "rotation");
    let e = app.refresh(refresh).await.unwrap_err();
    assert_eq!(e.oauth().unwrap().error, "invalid_grant", "a rotated refresh token is spent");
}

#[tokio::test]
async fn pushed_authorization_requests() {
    let provider = provider_with(vec![]).await;
    let authority = authority(&provider);
    let app = client(&authority, Client::public("demo-app"));
    let request = AuthorizationRequest::new("demo-app", "http://127.0.0.1:8400/callback").unwrap();
    let url = app.push_authorization(&request).await.unwrap();
    assert!(url.contains("request_uri=urn%3Aietf%3Aparams%3Aoauth%3Arequest_uri%3A"), "{url}");
    assert!(!url.contains("code_challenge"), "parameters travel in the push, not the URL");
    let callback = browse(&url).await;
    assert!(app.redeem(&request, &callback).await.is_ok());
    assert_eq!(provider.requests(Endpoint::PushedAuthorization), 1);

    // Parameters the caller made (py-identity-model's shape): client_id placed by the client.
    let params: Vec<(String, String)> = [
        ("response_type", "code"),
        ("redirect_uri", "http://127.0.0.1:8400/callback"),
        ("scope", "openid"),
        ("state", "caller-state"),
        ("code_challenge", request.pkce.challenge()),
        ("code_challenge_method", "S256"),
    ]
    .into_iter()
    .map(|(n, v)| (n.to_owned(), v.to_owned()))
    .collect();
    let pushed = app.push_parameters(&params).await.unwrap();
    assert!(pushed.request_uri.starts_with("urn:ietf:params:oauth:request_uri:"));
    assert!(pushed.expires_in > 0);
    let sent = provider.recorded(Endpoint::PushedAuthorization).pop().unwrap().form();
    assert_eq!(sent.iter().filter(|(n, _)| n == "client_id").count(), 1);
    assert!(sent.iter().any(|(n, v)| n == "state" && v == "caller-state"));
    // Refused by the provider (no redirect_uri): the provider's error, whole.
    let e = app.push_parameters(&params[2..]).await.unwrap_err();
    assert!(e.oauth().is_some(), "{e}");
}

#[tokio::test]
async fn the_authority_validates_id_tokens_and_logout_tokens_with_its_keys() {
    let provider = provider_with(vec![]).await;
    let authority = authority(&provider);
    let app = client(&authority, Client::public("demo-app"));
    let request = AuthorizationRequest::new("demo-app", "http://127.0.0.1:8400/callback").unwrap();
    let callback = browse(&app.authorization_url(&request).await.unwrap()).await;
    let tokens = app.redeem_unverified(&request, &callback).await.unwrap();
    let id_token = tokens.id_token.unwrap();
    let rules = |nonce: &str| {
        IdTokenValidation::new(authority.issuer(), "demo-app")
            .nonce(nonce)
            .access_token(tokens.access_token.expose())
    };
    let valid = authority.validate_id_token(id_token.expose(), &rules(&request.nonce)).await.unwrap();
    assert_eq!(valid.claims.sub(), Some("alice"));
    let e = authority.validate_id_token(id_token.expose(), &rules("another")).await.unwrap_err();
    assert_eq!((e.kind(), e.claim()), (ErrorKind::InvalidClaim, Some("nonce")));
    let other_client = IdTokenValidation::new(authority.issuer(), "someone-else");
    let e = authority.validate_id_token(id_token.expose(), &other_client).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidAudience);

    let now = identity_model::Clock::now(&identity_model::SystemClock).as_secs();
    let key = provider.signing_key(None);
    let logout = |claims: Value| key.sign_jwt(Some("logout+jwt"), &claims).unwrap();
    let good = logout(json!({
        "iss": provider.issuer(), "aud": "demo-app", "iat": now, "exp": now + 120, "jti": "logout-1",
        "sub": "alice", "events": {"http://schemas.openid.net/event/backchannel-logout": {}},
    }));
    let claims = authority.validate_logout_token(&good, "demo-app").await.unwrap().claims;
    assert_eq!(claims.jti(), Some("logout-1"));
    assert_eq!(
        authority.validate_logout_token(&good, "someone-else").await.unwrap_err().kind(),
        ErrorKind::InvalidAudience
    );
    let with_nonce = logout(json!({
        "iss": provider.issuer(), "aud": "demo-app", "iat": now, "exp": now + 120, "jti": "logout-2", "sub": "alice", "nonce": "n",
        "events": {"http://schemas.openid.net/event/backchannel-logout": {}},
    }));
    let e = authority.validate_logout_token(&with_nonce, "demo-app").await.unwrap_err();
    assert_eq!((e.kind(), e.claim()), (ErrorKind::InvalidClaim, Some("nonce")));
}

#[tokio::test]
async fn device_flow_polls_until_approved_or_denied() {
    let provider = provider_with(vec![]).await;
    let authority = authority(&provider);
    let app = client(&authority, Client::public("demo-app"));
    let device = app.device_authorization(&["openid"], &[]).await.unwrap();
    assert!(device.verification_uri.ends_with("/device"));
    assert!(provider.approve_device(&device.user_code, "alice"));
    let tokens = app.poll_device(&device).await.unwrap();
    assert!(authority.validate(tokens.access_token.expose()).await.is_ok());

    let denied = app.device_authorization(&["openid"], &[]).await.unwrap();
    assert!(provider.deny_device(&denied.user_code));
    let e = app.poll_device(&denied).await.unwrap_err();
    assert_eq!(e.oauth().unwrap().error, "access_denied");
}

#[tokio::test]
async fn exchange_introspect_revoke() {
    let provider = provider_with(vec![]).await;
    let authority = authority(&provider);
    let service = client(&authority, Client::with_secret("demo-service", "demo-secret"));
    let subject = service.client_credentials(&["api:read"], &[]).await.unwrap();
    let exchanged = service
        .exchange(
            TokenExchange::new(subject.access_token.expose(), token_type::ACCESS_TOKEN)
                .audience("https://api.example"),
        )
        .await
        .unwrap();
    assert_eq!(exchanged.issued_token_type.as_deref(), Some(token_type::ACCESS_TOKEN));

    let opaque = service.client_credentials(&["api:read"], &["https://opaque.example"]).await.unwrap();
    let token = opaque.access_token.expose();
    assert_eq!(token.matches('.').count(), 0, "opaque resource, opaque token");
    let active = service.introspect(token, Some("access_token")).await.unwrap();
    assert!(active.active);
    assert_eq!(active.text("client_id"), Some("demo-service"));
    assert_eq!(active.scopes(), vec!["api:read"]);
    service.revoke(token, Some("access_token")).await.unwrap();
    assert!(!service.introspect(token, None).await.unwrap().active);
    service.revoke("never-issued", None).await.unwrap();
    let sent = provider.recorded(Endpoint::Introspection).remove(0).form();
    assert!(sent.iter().any(|(n, v)| n == "token_type_hint" && v == "access_token"));
}

#[tokio::test]
async fn only_retryable_requests_are_retried() {
    let provider = provider_with(vec![]).await;
    let authority = authority(&provider);
    let service = client(&authority, Client::with_secret("demo-service", "demo-secret"));
    authority.metadata().await.unwrap();

    provider.inject(Endpoint::Token, Fault::Status(503), Times::Next(1));
    provider.reset_counters();
    assert!(service.client_credentials(&[], &[]).await.is_ok());
    assert_eq!(provider.requests(Endpoint::Token), 2, "client credentials: retried");

    let app = client(&authority, Client::public("demo-app"));
    let request = AuthorizationRequest::new("demo-app", "http://127.0.0.1:8400/callback").unwrap();
    let callback = browse(&app.authorization_url(&request).await.unwrap()).await;
    provider.inject(Endpoint::Token, Fault::ConnectionReset, Times::Next(1));
    provider.reset_counters();
    let e = app.redeem(&request, &callback).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::TransportError);
    assert_eq!(provider.requests(Endpoint::Token), 1, "code redemption: never retried");

    provider.inject(Endpoint::Token, Fault::Status(503), Times::Next(1));
    provider.reset_counters();
    let subject = service.client_credentials(&[], &[]).await.unwrap();
    assert_eq!(provider.requests(Endpoint::Token), 2);
    provider.inject(Endpoint::Token, Fault::Status(503), Times::Next(1));
    provider.reset_counters();
    let e =
        service.exchange(TokenExchange::new(subject.access_token.expose(), token_type::ACCESS_TOKEN)).await;
    assert_eq!(e.unwrap_err().oauth().map(|o| o.status), Some(503));
    assert_eq!(provider.requests(Endpoint::Token), 1, "token exchange: never retried");

    provider.inject(Endpoint::Introspection, Fault::ConnectionReset, Times::Next(1));
    provider.inject(Endpoint::Revocation, Fault::TooManyRequests { retry_after: 0 }, Times::Next(1));
    provider.reset_counters();
    service.introspect(subject.access_token.expose(), None).await.unwrap();
    service.revoke(subject.access_token.expose(), None).await.unwrap();
    assert_eq!((provider.requests(Endpoint::Introspection), provider.requests(Endpoint::Revocation)), (2, 2));
}

#[tokio::test]
async fn explicit_endpoints_and_a_token_manager_over_http() {
    let provider = provider_with(vec![]).await;
    let endpoints = Endpoints {
        issuer: Some(provider.issuer().to_owned()),
        token: Some(provider.url(Endpoint::Token)),
        ..Endpoints::default()
    };
    let https_only = TokenClient::builder(Client::with_secret("demo-service", "demo-secret"))
        .endpoints(endpoints.clone())
        .build()
        .unwrap();
    assert_eq!(https_only.client_credentials(&[], &[]).await.unwrap_err().kind(), ErrorKind::PolicyViolation);
    let service = TokenClient::builder(Client::with_secret("demo-service", "demo-secret"))
        .endpoints(endpoints)
        .policy(DiscoveryPolicy::default().allow_http_on_loopback())
        .build()
        .unwrap();
    let manager = TokenManager::new(service, &["api:read"], &[]);
    let first = manager.get().await.unwrap();
    let again = manager.get().await.unwrap();
    assert_eq!(first.access_token, again.access_token);
    assert_eq!(provider.requests(Endpoint::Token), 1);
    assert_eq!(provider.requests(Endpoint::Discovery), 0, "explicit endpoints: no discovery");
}

#[tokio::test]
async fn an_explicit_endpoint_beside_an_authority_needs_no_discovery() {
    // An issuer without discovery (keys from a jwks_uri, a file or inline): an explicitly
    // configured endpoint is used as it is, with the authority's issuer, policy and transport.
    let provider = provider_with(vec![]).await;
    provider.inject(Endpoint::Discovery, Fault::Status(404), Times::UntilCleared);
    let authority = authority(&provider);
    let endpoints =
        Endpoints { introspection: Some(provider.url(Endpoint::Introspection)), ..Endpoints::default() };
    let service = TokenClient::builder(Client::with_secret("demo-service", "demo-secret"))
        .authority(&authority)
        .endpoints(endpoints)
        .build()
        .unwrap();
    assert!(!service.introspect("never-issued", None).await.unwrap().active);
    assert_eq!(provider.requests(Endpoint::Discovery), 0, "explicit endpoint: no discovery");
    // An endpoint that is not configured still comes from discovery (which fails here).
    let e = service.client_credentials(&[], &[]).await.unwrap_err();
    assert!(provider.requests(Endpoint::Discovery) > 0, "{e}");
}

/// The blocking twins, from plain threads, against the provider running on its own runtime.
#[test]
fn blocking_token_client_and_manager() {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let provider = runtime.block_on(provider_with(vec![]));
    let authority = authority(&provider);
    let service = identity_model::blocking::TokenClient::new(client(
        &authority,
        Client::with_secret("demo-service", "demo-secret"),
    ));
    let tokens = service.client_credentials(&["api:read"], &["https://opaque.example"]).unwrap();
    assert!(service.introspect(tokens.access_token.expose(), None).unwrap().active);
    service.revoke(tokens.access_token.expose(), None).unwrap();
    assert!(!service.introspect(tokens.access_token.expose(), None).unwrap().active);

    let manager = identity_model::blocking::TokenManager::new(TokenManager::new(
        service.as_async().clone(),
        &["api:read"],
        &[],
    ));
    let before = provider.requests(Endpoint::Token);
    let threads: Vec<_> = (0..16)
        .map(|_| {
            let manager = manager.clone();
            std::thread::spawn(move || manager.get().unwrap().access_token.expose().to_owned())
        })
        .collect();
    let tokens: std::collections::BTreeSet<String> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    assert_eq!(tokens.len(), 1, "16 threads, one token");
    assert_eq!(provider.requests(Endpoint::Token) - before, 1, "one request");
    let app = identity_model::blocking::TokenClient::new(client(&authority, Client::public("demo-app")));
    let device = app.device_authorization(&["openid", "offline_access"], &[]).unwrap();
    assert!(provider.approve_device(&device.user_code, "alice"));
    let tokens = app.poll_device(&device).unwrap();
    assert!(app.refresh(tokens.refresh_token.unwrap()).is_ok());
    let e = runtime.block_on(async { manager.get() }).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidUsage, "refused inside a runtime");
    drop(provider);
}

#[tokio::test]
async fn redeem_validates_the_id_token() {
    let provider = provider_with(vec![]).await;
    let authority = authority(&provider);
    let app = client(&authority, Client::public("demo-app"));
    let request = AuthorizationRequest::new("demo-app", "http://127.0.0.1:8400/callback").unwrap();
    let callback = browse(&app.authorization_url(&request).await.unwrap()).await;
    // Same state, another nonce: the ID token's nonce no longer matches.
    let mut tampered = request.clone();
    tampered.nonce = "not-the-nonce-sent".into();
    let e = app.redeem(&tampered, &callback).await.unwrap_err();
    assert_eq!((e.kind(), e.claim()), (ErrorKind::InvalidClaim, Some("nonce")));

    // Keys replaced after the authority cached them: one refetch, then the ID token validates.
    authority.keys().await.unwrap();
    provider.rotate_keys(identity_model_testkit::Rotation::Replace);
    let jwks_before = provider.requests(Endpoint::Jwks);
    let request = AuthorizationRequest::new("demo-app", "http://127.0.0.1:8400/callback").unwrap();
    let callback = browse(&app.authorization_url(&request).await.unwrap()).await;
    let tokens = app.redeem(&request, &callback).await.unwrap();
    assert!(tokens.id_token.is_some());
    assert_eq!(provider.requests(Endpoint::Jwks) - jwks_before, 1);
}

/// The ID-token check goes through the key source's one unknown-kid decision, as validation
/// does: keys past the allowed staleness are not trusted for it either (before, it judged the
/// ID token by any cached keys, however old), an unknown kid is counted as a kid miss and
/// refetched once, and a provider failing meanwhile is `keys_unavailable`, never the token's
/// fault.
#[tokio::test]
async fn the_id_token_check_makes_the_same_key_decisions_as_validation() {
    let provider = provider_with(vec![]).await;
    let strict = Authority::builder(provider.issuer())
        .policy(DiscoveryPolicy::default().allow_http_on_loopback())
        .config(config())
        .max_staleness(Duration::ZERO)
        .build()
        .unwrap();
    let app = client(&strict, Client::public("demo-app"));
    strict.keys().await.unwrap();
    provider.inject(Endpoint::Jwks, Fault::Status(503), Times::UntilCleared);
    let request = AuthorizationRequest::new("demo-app", "http://127.0.0.1:8400/callback").unwrap();
    let callback = browse(&app.authorization_url(&request).await.unwrap()).await;
    let e = app.redeem(&request, &callback).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::KeysUnavailable, "keys past the allowed staleness: {e}");
    provider.clear_faults();

    // An unknown kid: counted, refetched once; then (no cooldown here), with the provider
    // failing, a kid the cached keys lack is the provider's fault.
    let authority = Authority::builder(provider.issuer())
        .policy(DiscoveryPolicy::default().allow_http_on_loopback())
        .config(config())
        .cache(CacheConfig { kid_miss_refresh_cooldown: Duration::ZERO, ..CacheConfig::default() })
        .build()
        .unwrap();
    let app = client(&authority, Client::public("demo-app"));
    authority.keys().await.unwrap();
    provider.rotate_keys(identity_model_testkit::Rotation::Replace);
    let jwks_before = provider.requests(Endpoint::Jwks);
    let request = AuthorizationRequest::new("demo-app", "http://127.0.0.1:8400/callback").unwrap();
    let callback = browse(&app.authorization_url(&request).await.unwrap()).await;
    app.redeem(&request, &callback).await.unwrap();
    assert_eq!(provider.requests(Endpoint::Jwks) - jwks_before, 1);
    assert_eq!(authority.stats().kid_misses.load(std::sync::atomic::Ordering::Relaxed), 1);

    provider.rotate_keys(identity_model_testkit::Rotation::Replace);
    provider.inject(Endpoint::Jwks, Fault::Status(503), Times::UntilCleared);
    let request = AuthorizationRequest::new("demo-app", "http://127.0.0.1:8400/callback").unwrap();
    let callback = browse(&app.authorization_url(&request).await.unwrap()).await;
    let e = app.redeem(&request, &callback).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::KeysUnavailable, "{e}");
}

#[test]
fn mtls_uses_the_aliases_and_needs_a_certificate() {
    let document = identity_model::DiscoveryDocument::from_json(
        json!({
            "issuer": "https://op.example",
            "jwks_uri": "https://op.example/jwks",
            "token_endpoint": "https://op.example/token",
            "introspection_endpoint": "https://op.example/introspect",
            "mtls_endpoint_aliases": {"token_endpoint": "https://mtls.op.example/token"},
        })
        .to_string()
        .as_bytes(),
        "https://op.example",
        &DiscoveryPolicy::default().resource_server_fields(),
    )
    .unwrap();
    let mtls = Endpoints::from_discovery(&document, true);
    assert_eq!(mtls.token.as_deref(), Some("https://mtls.op.example/token"));
    assert_eq!(
        mtls.introspection.as_deref(),
        Some("https://op.example/introspect"),
        "no alias: the plain one"
    );
    let plain = Endpoints::from_discovery(&document, false);
    assert_eq!(plain.token.as_deref(), Some("https://op.example/token"));

    let tls = Client::new("svc", ClientAuth::TlsClientAuth);
    let e = TokenClient::builder(tls.clone()).endpoints(plain.clone()).build().unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidConfig, "no certificate configured");
    let dir = std::env::temp_dir().join(format!("idm-mtls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let pem = dir.join("client.pem");
    std::fs::write(&pem, "not a certificate").unwrap();
    let config = HttpConfig { client_identity: Some(pem), ..HttpConfig::default() };
    let e = TokenClient::builder(tls).endpoints(plain).config(config).build().unwrap_err();
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(e.kind(), ErrorKind::InvalidConfig, "{e}");
}

#[tokio::test]
async fn discovery_is_cached_and_the_last_good_document_outlives_an_outage() {
    let provider = provider_with(vec![]).await;
    let service = client(&authority(&provider), Client::with_secret("demo-service", "demo-secret"));
    for _ in 0..5 {
        service.client_credentials(&[], &[]).await.unwrap();
    }
    assert_eq!(provider.requests(Endpoint::Discovery), 1, "one discovery for five token requests");

    // A document that is never fresh: every call rediscovers, and an outage serves the last one.
    let never_fresh = CacheConfig {
        min_freshness: Duration::ZERO,
        max_disco_freshness: Duration::ZERO,
        ..CacheConfig::default()
    };
    let authority = Authority::builder(provider.issuer())
        .policy(DiscoveryPolicy::default().allow_http_on_loopback())
        .config(HttpConfig { retry_max_attempts: 1, ..config() })
        .cache(never_fresh)
        .build()
        .unwrap();
    let service = client(&authority, Client::with_secret("demo-service", "demo-secret"));
    service.client_credentials(&[], &[]).await.unwrap();
    provider.inject(Endpoint::Discovery, Fault::Status(503), Times::UntilCleared);
    provider.reset_counters();
    service.client_credentials(&[], &[]).await.unwrap();
    assert_eq!(provider.requests(Endpoint::Discovery), 1, "tried, failed, served the last good document");
    assert_eq!(provider.requests(Endpoint::Token), 1);
    authority.clear().await;
    let e = service.client_credentials(&[], &[]).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::HttpStatus, "nothing to fall back on after clear(): {e}");
}
