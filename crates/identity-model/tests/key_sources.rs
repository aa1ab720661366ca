//! Keys without discovery (issue 22): a `jwks_uri` alone, a JWK Set file (re-read when it
//! changes; a broken version leaves the last good keys in use), inline keys. Each keeps the
//! cache's guarantees: one fetch for many callers, unknown kids refetched, readiness.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use identity_model::{
    Algorithm, Authority, CacheConfig, DiscoveryPolicy, ErrorKind, KeySet, KeysFrom, SigningKey, Validation,
};
use identity_model_testkit::{Endpoint, TestProvider};
use serde_json::{Value, json};

fn builder(provider: &TestProvider, keys_from: KeysFrom) -> Authority {
    Authority::builder(provider.issuer())
        .rules(Validation::new(provider.issuer()).audience(provider.default_audience()))
        .policy(DiscoveryPolicy::default().allow_http_on_loopback())
        // Unknown kids are looked for again at once, also right after a failed read (the file
        // test changes the keys between tokens; in service both waits are seconds).
        .cache(CacheConfig {
            kid_miss_refresh_cooldown: Duration::ZERO,
            refresh_failure_backoff: Duration::ZERO,
            ..CacheConfig::default()
        })
        .keys_from(keys_from)
        .build()
        .unwrap()
}

#[tokio::test]
async fn a_jwks_uri_alone_needs_no_discovery() {
    let provider = TestProvider::start().await.unwrap();
    let authority = builder(&provider, KeysFrom::JwksUri(format!("{}/jwks", provider.issuer())));
    assert_eq!(authority.keys_from().as_str(), "jwks_uri");
    let token = provider.token().subject("svc").sign();
    let calls: Vec<_> = (0..20)
        .map(|_| {
            let (authority, token) = (authority.clone(), token.clone());
            tokio::spawn(async move {
                authority.validate(&token).await.map(|v| v.claims.sub().map(str::to_owned))
            })
        })
        .collect();
    for call in calls {
        assert_eq!(call.await.unwrap().unwrap().as_deref(), Some("svc"));
    }
    assert_eq!(provider.requests(Endpoint::Discovery), 0);
    assert_eq!(provider.requests(Endpoint::Jwks), 1, "one fetch for twenty callers");
    // The issuer string is still checked against iss.
    let other = provider.token().claim("iss", "https://other.example").sign();
    assert_eq!(authority.validate(&other).await.unwrap_err().kind(), ErrorKind::InvalidIssuer);
    // A jwks_uri must pass the URL policy.
    let refused = Authority::builder(provider.issuer())
        .policy(DiscoveryPolicy::default().allow_http_on_loopback())
        .keys_from(KeysFrom::JwksUri("http://keys.example/jwks".into()))
        .build()
        .unwrap_err();
    assert_eq!(refused.kind(), ErrorKind::PolicyViolation);
}

fn jwks_of(keys: &[&SigningKey]) -> String {
    json!({"keys": keys.iter().map(|k| Value::Object(k.verification_jwk())).collect::<Vec<_>>()}).to_string()
}

fn sign(key: &SigningKey, provider: &TestProvider) -> String {
    let now = identity_model::Clock::now(&identity_model::SystemClock).as_secs();
    let claims = json!({
        "iss": provider.issuer(), "aud": provider.default_audience(), "sub": "file-user",
        "iat": now, "exp": now + 300,
    });
    key.sign_jwt(Some("JWT"), &claims).unwrap()
}

#[tokio::test]
async fn a_key_file_is_reread_when_it_changes_and_a_broken_version_keeps_the_last_good_keys() {
    let provider = TestProvider::start().await.unwrap();
    let dir = std::env::temp_dir().join(format!("idm-key-file-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("jwks.json");
    let first = SigningKey::generate(Algorithm::ES256).unwrap().with_kid("first");
    let second = SigningKey::generate(Algorithm::ES256).unwrap().with_kid("second");
    std::fs::write(&path, jwks_of(&[&first])).unwrap();
    let authority = builder(&provider, KeysFrom::File(path.clone()));
    assert_eq!(authority.validate(&sign(&first, &provider)).await.unwrap().claims.sub(), Some("file-user"));

    // A broken version: refused, the last good keys stay in use, readiness shows why.
    std::fs::write(&path, "{\"keys\": [ broken").unwrap();
    let unknown = authority.validate(&sign(&second, &provider)).await.unwrap_err();
    assert_eq!(unknown.kind(), ErrorKind::KeysUnavailable, "{unknown}");
    assert!(authority.validate(&sign(&first, &provider)).await.is_ok());
    let status = authority.key_status();
    assert!(status.usable && status.last_error.unwrap().contains("key file"));

    // The new version (both keys): the unknown kid makes the source look again, and finds it.
    std::fs::write(&path, jwks_of(&[&first, &second])).unwrap();
    assert!(authority.validate(&sign(&second, &provider)).await.is_ok());
    assert_eq!(authority.key_status().keys, 2);
    assert_eq!(provider.requests(Endpoint::Discovery) + provider.requests(Endpoint::Jwks), 0);

    // A missing file at start: not ready, a typed refusal.
    let missing = builder(&provider, KeysFrom::File(dir.join("absent.json")));
    assert_eq!(
        missing.validate(&sign(&first, &provider)).await.unwrap_err().kind(),
        ErrorKind::KeysUnavailable
    );
    assert!(!missing.key_status().usable);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn inline_keys_need_no_network() {
    let provider = TestProvider::start().await.unwrap();
    let keys = KeySet::from_json(provider.jwks().to_string().as_bytes()).unwrap();
    let authority = builder(&provider, KeysFrom::Inline(std::sync::Arc::new(keys)));
    assert!(authority.validate(&provider.token().sign()).await.is_ok());
    let stranger = SigningKey::generate(Algorithm::ES256).unwrap().with_kid("stranger");
    let refused = authority.validate(&sign(&stranger, &provider)).await.unwrap_err();
    assert_eq!(refused.kind(), ErrorKind::KeyNotFound, "{refused}");
    assert!(authority.key_status().usable);
    assert_eq!(provider.requests(Endpoint::Discovery) + provider.requests(Endpoint::Jwks), 0);
}
