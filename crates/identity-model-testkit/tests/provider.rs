//! The test provider over real HTTP: every endpoint, grant, client authentication and fault.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use base64::Engine as _;
use identity_model_core::{Algorithm, KeySet, SigningKey, UnixTime, Validation, base64url, sha256};
use identity_model_testkit::{ClientConfig, Endpoint, Fault, ProviderConfig, Rotation, TestProvider, Times};
use serde_json::{Value, json};

fn http() -> reqwest::Client {
    reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap()
}

fn now() -> i64 {
    i64::try_from(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs())
        .unwrap()
}

async fn post(
    provider: &TestProvider,
    endpoint: Endpoint,
    form: &[(&str, &str)],
    basic: Option<(&str, &str)>,
) -> (u16, Value) {
    let mut request = http().post(provider.url(endpoint)).form(form);
    if let Some((id, secret)) = basic {
        request = request.basic_auth(id, Some(secret));
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let body = response.bytes().await.unwrap();
    (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
}

async fn keys(provider: &TestProvider) -> KeySet {
    let body = http().get(provider.url(Endpoint::Jwks)).send().await.unwrap().bytes().await.unwrap();
    KeySet::from_json(&body).unwrap()
}

fn validate(provider: &TestProvider, keys: &KeySet, token: &str, audience: &str) -> Result<Value, String> {
    let rules = Validation::new(provider.issuer()).audience(audience).token_type("at+jwt");
    let valid =
        rules.validate(token, keys, UnixTime::from_secs(now())).map_err(|e| e.kind().as_str().to_owned())?;
    Ok(serde_json::from_str(valid.claims.raw_json()).unwrap())
}

#[tokio::test]
async fn discovery_documents_point_at_working_endpoints() {
    let provider = TestProvider::start().await.unwrap();
    for path in ["/.well-known/openid-configuration", "/.well-known/oauth-authorization-server"] {
        let doc: Value =
            http().get(format!("{}{path}", provider.issuer())).send().await.unwrap().json().await.unwrap();
        assert_eq!(doc["issuer"], provider.issuer());
        assert_eq!(doc["token_endpoint"], provider.url(Endpoint::Token));
        assert_eq!(doc["code_challenge_methods_supported"], json!(["S256"]));
        assert!(doc["grant_types_supported"].as_array().unwrap().contains(&json!("client_credentials")));
    }
    assert_eq!(provider.requests(Endpoint::Discovery), 1);
    assert_eq!(provider.requests(Endpoint::OAuthMetadata), 1);
}

#[tokio::test]
async fn jwks_has_cache_headers_and_answers_304_to_its_etag() {
    let provider = TestProvider::start().await.unwrap();
    let response = http().get(provider.url(Endpoint::Jwks)).send().await.unwrap();
    assert_eq!(response.headers()["cache-control"], "public, max-age=300");
    assert_eq!(response.headers()["content-type"], "application/jwk-set+json");
    let etag = response.headers()["etag"].to_str().unwrap().to_owned();
    let set = KeySet::from_json(&response.bytes().await.unwrap()).unwrap();
    let algs: Vec<_> = set.keys().iter().map(|k| k.algorithms().next().unwrap().as_str()).collect();
    assert_eq!(algs, ["RS256", "ES256", "EdDSA"]);
    let again = http().get(provider.url(Endpoint::Jwks)).header("if-none-match", &etag).send().await.unwrap();
    assert_eq!(again.status(), 304);
    provider.rotate_keys(Rotation::Replace);
    let changed =
        http().get(provider.url(Endpoint::Jwks)).header("if-none-match", &etag).send().await.unwrap();
    assert_eq!(changed.status(), 200);
    assert_ne!(changed.headers()["etag"].to_str().unwrap(), etag);
}

#[tokio::test]
async fn client_credentials_with_basic_and_post_issue_rfc9068_tokens() {
    let provider = TestProvider::start().await.unwrap();
    let (status, body) = post(
        &provider,
        Endpoint::Token,
        &[("grant_type", "client_credentials"), ("scope", "api:read")],
        Some(("demo-service", "demo-secret")),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 300);
    assert_eq!(body["scope"], "api:read");
    let keys = keys(&provider).await;
    let claims =
        validate(&provider, &keys, body["access_token"].as_str().unwrap(), "https://api.example").unwrap();
    assert_eq!(claims["sub"], "demo-service");
    assert_eq!(claims["client_id"], "demo-service");
    assert!(claims["jti"].is_string());
    let (status, body) = post(
        &provider,
        Endpoint::Token,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", "demo-service"),
            ("client_secret", "demo-secret"),
        ],
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["scope"], "api:read api:write");
}

#[tokio::test]
async fn wrong_secrets_unknown_scopes_and_resources_get_oauth_errors() {
    let provider = TestProvider::start().await.unwrap();
    let response = http()
        .post(provider.url(Endpoint::Token))
        .basic_auth("demo-service", Some("wrong"))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    assert!(response.headers()["www-authenticate"].to_str().unwrap().starts_with("Basic"));
    assert_eq!(response.json::<Value>().await.unwrap()["error"], "invalid_client");
    let secret = Some(("demo-service", "demo-secret"));
    let (status, body) =
        post(&provider, Endpoint::Token, &[("grant_type", "client_credentials"), ("scope", "admin")], secret)
            .await;
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_scope")));
    let (_, body) = post(
        &provider,
        Endpoint::Token,
        &[("grant_type", "client_credentials"), ("resource", "https://nope")],
        secret,
    )
    .await;
    assert_eq!(body["error"], "invalid_target");
    let (_, body) = post(&provider, Endpoint::Token, &[("grant_type", "password")], secret).await;
    assert_eq!(body["error"], "unsupported_grant_type");
    let (_, body) =
        post(&provider, Endpoint::Token, &[("grant_type", "authorization_code"), ("code", "x")], secret)
            .await;
    assert_eq!(body["error"], "unauthorized_client");
}

#[tokio::test]
async fn basic_credentials_are_form_urlencoded_before_base64() {
    let config = ProviderConfig::default().client(ClientConfig::service("svc:1", "p@ss word+/"));
    let provider = TestProvider::builder().config(config).start().await.unwrap();
    let encode = |s: &str| form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    let credentials = base64::engine::general_purpose::STANDARD.encode(format!(
        "{}:{}",
        encode("svc:1"),
        encode("p@ss word+/")
    ));
    let response = http()
        .post(provider.url(Endpoint::Token))
        .header("authorization", format!("Basic {credentials}"))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let recorded = provider.recorded(Endpoint::Token);
    assert_eq!(recorded.len(), 1);
    assert!(recorded[0].header("authorization").unwrap().starts_with("Basic "));
}

fn assertion(key: &SigningKey, client_id: &str, audience: &str, jti: &str) -> String {
    let claims = json!({"iss": client_id, "sub": client_id, "aud": audience, "jti": jti, "iat": now(), "exp": now() + 60});
    key.sign_jwt(None, &claims).unwrap()
}

#[tokio::test]
async fn private_key_jwt_for_every_algorithm_and_replays_refused() {
    for alg in [Algorithm::RS256, Algorithm::PS256, Algorithm::ES256, Algorithm::EdDSA] {
        let key = SigningKey::generate(alg).unwrap();
        let jwks = json!({"keys": [key.verification_jwk()]});
        let config = ProviderConfig::default().client(ClientConfig::private_key_jwt("jwt-client", jwks));
        let provider = TestProvider::builder().config(config).start().await.unwrap();
        let token_endpoint = provider.url(Endpoint::Token);
        for (audience, jti) in [(provider.issuer().to_owned(), "a"), (token_endpoint.clone(), "b")] {
            let jwt = assertion(&key, "jwt-client", &audience, jti);
            let form = [
                ("grant_type", "client_credentials"),
                ("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"),
                ("client_assertion", &jwt),
            ];
            let (status, body) = post(&provider, Endpoint::Token, &form, None).await;
            assert_eq!(status, 200, "{alg}: {body}");
            let (status, body) = post(&provider, Endpoint::Token, &form, None).await;
            assert_eq!((status, body["error"].as_str()), (401, Some("invalid_client")), "{alg} replay");
        }
        let other = SigningKey::generate(alg).unwrap();
        let jwt = assertion(&other, "jwt-client", provider.issuer(), "c");
        let form = [
            ("grant_type", "client_credentials"),
            ("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"),
            ("client_assertion", jwt.as_str()),
        ];
        assert_eq!(post(&provider, Endpoint::Token, &form, None).await.0, 401, "{alg} foreign key");
        let jwt = assertion(&key, "jwt-client", "https://elsewhere", "d");
        let form = [
            ("grant_type", "client_credentials"),
            ("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"),
            ("client_assertion", jwt.as_str()),
        ];
        assert_eq!(post(&provider, Endpoint::Token, &form, None).await.0, 401, "{alg} wrong aud");
    }
}

#[tokio::test]
async fn client_secret_jwt_is_checked_with_the_secret() {
    let provider = TestProvider::start().await.unwrap();
    let header = base64url::encode(br#"{"alg":"HS256","typ":"JWT"}"#);
    let claims = json!({"iss": "demo-service", "sub": "demo-service", "aud": provider.issuer(), "jti": "x1", "exp": now() + 60});
    let input = format!("{header}.{}", base64url::encode(claims.to_string()));
    let sign = |secret: &[u8]| {
        let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, secret);
        format!("{input}.{}", base64url::encode(aws_lc_rs::hmac::sign(&key, input.as_bytes())))
    };
    for (secret, expected) in [(&b"wrong-secret"[..], 401), (b"demo-secret", 200)] {
        let jwt = sign(secret);
        let form = [
            ("grant_type", "client_credentials"),
            ("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"),
            ("client_assertion", jwt.as_str()),
        ];
        assert_eq!(post(&provider, Endpoint::Token, &form, None).await.0, expected);
    }
}

fn query(location: &str) -> Vec<(String, String)> {
    let query = location.split_once('?').unwrap().1;
    form_urlencoded::parse(query.as_bytes()).into_owned().collect()
}

fn param<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
}

async fn authorize(
    provider: &TestProvider,
    challenge: &str,
    extra: &[(&str, &str)],
) -> Vec<(String, String)> {
    let mut params = vec![
        ("response_type", "code"),
        ("client_id", "demo-app"),
        ("redirect_uri", "http://127.0.0.1:8400/callback"),
        ("scope", "openid profile email offline_access"),
        ("state", "st4te"),
        ("nonce", "n0nce"),
        ("code_challenge", challenge),
        ("code_challenge_method", "S256"),
    ];
    params.extend_from_slice(extra);
    let response = http().get(provider.url(Endpoint::Authorize)).query(&params).send().await.unwrap();
    assert_eq!(response.status(), 302);
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    assert!(location.starts_with("http://127.0.0.1:8400/callback?"), "{location}");
    query(&location)
}

#[tokio::test]
async fn authorization_code_with_pkce_then_refresh_rotation_and_userinfo() {
    let provider = TestProvider::start().await.unwrap();
    // RFC 7636 Appendix B.
    let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
    let challenge = base64url::encode(sha256(verifier.as_bytes()));
    assert_eq!(challenge, "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM");
    let callback = authorize(&provider, &challenge, &[]).await;
    assert_eq!(param(&callback, "state"), Some("st4te"));
    assert_eq!(param(&callback, "iss"), Some(provider.issuer()));
    let code = param(&callback, "code").unwrap().to_owned();
    let redeem = |verifier: &'static str, code: String| {
        let provider = &provider;
        async move {
            post(
                provider,
                Endpoint::Token,
                &[
                    ("grant_type", "authorization_code"),
                    ("code", &code),
                    ("redirect_uri", "http://127.0.0.1:8400/callback"),
                    ("client_id", "demo-app"),
                    ("code_verifier", verifier),
                ],
                None,
            )
            .await
        }
    };
    let (status, body) = redeem("x".repeat(43).leak(), code.clone()).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_grant")), "wrong verifier");
    // The failed attempt consumed the code.
    let (_, body) = redeem(verifier, code).await;
    assert_eq!(body["error"], "invalid_grant");
    let callback = authorize(&provider, &challenge, &[]).await;
    let code = param(&callback, "code").unwrap().to_owned();
    let (status, body) = redeem(verifier, code.clone()).await;
    assert_eq!(status, 200, "{body}");
    let (_, again) = redeem(verifier, code).await;
    assert_eq!(again["error"], "invalid_grant", "codes are single-use");
    let keys = keys(&provider).await;
    let access_token = body["access_token"].as_str().unwrap();
    let claims = validate(&provider, &keys, access_token, "https://api.example").unwrap();
    assert_eq!(claims["sub"], "alice");
    let id_rules = Validation::new(provider.issuer()).audience("demo-app");
    let id =
        id_rules.validate(body["id_token"].as_str().unwrap(), &keys, UnixTime::from_secs(now())).unwrap();
    let id: Value = serde_json::from_str(id.claims.raw_json()).unwrap();
    assert_eq!(id["nonce"], "n0nce");
    assert_eq!(id["azp"], "demo-app");
    let digest = sha256(access_token.as_bytes());
    assert_eq!(id["at_hash"], base64url::encode(&digest[..16]));

    let userinfo: Value = http()
        .get(provider.url(Endpoint::Userinfo))
        .bearer_auth(access_token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        userinfo,
        json!({"sub": "alice", "name": "Alice Example", "email": "alice@example.com", "email_verified": true})
    );

    let refresh = body["refresh_token"].as_str().unwrap().to_owned();
    let form =
        [("grant_type", "refresh_token"), ("refresh_token", refresh.as_str()), ("client_id", "demo-app")];
    let (status, renewed) = post(&provider, Endpoint::Token, &form, None).await;
    assert_eq!(status, 200, "{renewed}");
    assert_ne!(renewed["refresh_token"], body["refresh_token"], "rotated");
    let (_, replay) = post(&provider, Endpoint::Token, &form, None).await;
    assert_eq!(replay["error"], "invalid_grant");
    assert_eq!(replay["error_description"], "refresh token already used");
}

#[tokio::test]
async fn authorize_refuses_plain_pkce_unknown_redirects_and_can_be_denied() {
    let provider = TestProvider::start().await.unwrap();
    let response = http()
        .get(provider.url(Endpoint::Authorize))
        .query(&[
            ("response_type", "code"),
            ("client_id", "demo-app"),
            ("redirect_uri", "https://evil.example/cb"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400, "never redirected to an unregistered URI");
    let plain = authorize(&provider, "abc", &[("code_challenge_method", "plain")]).await;
    assert_eq!(param(&plain, "error"), Some("invalid_request"));
    provider.on_authorize(|request| {
        if request.scope.contains("email") { Err("access_denied".into()) } else { Ok("bob".into()) }
    });
    let denied = authorize(&provider, "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM", &[]).await;
    assert_eq!(param(&denied, "error"), Some("access_denied"));
    assert_eq!(param(&denied, "state"), Some("st4te"));
}

#[tokio::test]
async fn device_flow_pending_slow_down_approval_and_denial() {
    let provider = TestProvider::start().await.unwrap();
    let (status, device) = post(
        &provider,
        Endpoint::DeviceAuthorization,
        &[("client_id", "demo-app"), ("scope", "openid api:read")],
        None,
    )
    .await;
    assert_eq!(status, 200, "{device}");
    assert_eq!(device["interval"], 5);
    assert_eq!(device["verification_uri"], provider.url(Endpoint::DeviceVerification));
    let device_code = device["device_code"].as_str().unwrap().to_owned();
    let poll = [
        ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"),
        ("device_code", device_code.as_str()),
        ("client_id", "demo-app"),
    ];
    let (_, body) = post(&provider, Endpoint::Token, &poll, None).await;
    assert_eq!(body["error"], "authorization_pending");
    let (_, body) = post(&provider, Endpoint::Token, &poll, None).await;
    assert_eq!(body["error"], "slow_down");
    // The page approves with a plain form POST, like a browser would.
    let page = http()
        .post(provider.url(Endpoint::DeviceVerification))
        .form(&[("user_code", device["user_code"].as_str().unwrap()), ("confirm", "yes")])
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    provider.advance_clock(Duration::from_secs(10));
    let (status, body) = post(&provider, Endpoint::Token, &poll, None).await;
    assert_eq!(status, 200, "{body}");
    assert!(body["id_token"].is_string());
    let (_, body) = post(&provider, Endpoint::Token, &poll, None).await;
    assert_eq!(body["error"], "invalid_grant", "device codes are single-use");

    let (_, device) =
        post(&provider, Endpoint::DeviceAuthorization, &[("client_id", "demo-app")], None).await;
    assert!(provider.deny_device(&device["user_code"].as_str().unwrap().to_lowercase()));
    let poll = [
        ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"),
        ("device_code", device["device_code"].as_str().unwrap()),
        ("client_id", "demo-app"),
    ];
    let (_, body) = post(&provider, Endpoint::Token, &poll, None).await;
    assert_eq!(body["error"], "access_denied");

    let (_, device) =
        post(&provider, Endpoint::DeviceAuthorization, &[("client_id", "demo-app")], None).await;
    provider.advance_clock(Duration::from_secs(601));
    let poll = [
        ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"),
        ("device_code", device["device_code"].as_str().unwrap()),
        ("client_id", "demo-app"),
    ];
    let (_, body) = post(&provider, Endpoint::Token, &poll, None).await;
    assert_eq!(body["error"], "expired_token");
}

#[tokio::test]
async fn token_exchange_introspection_and_revocation() {
    let provider = TestProvider::start().await.unwrap();
    let secret = Some(("demo-service", "demo-secret"));
    let (_, subject) = post(
        &provider,
        Endpoint::Token,
        &[("grant_type", "client_credentials"), ("resource", "https://opaque.example")],
        secret,
    )
    .await;
    let subject = subject["access_token"].as_str().unwrap().to_owned();
    assert_eq!(subject.split('.').count(), 1, "opaque for this resource");
    let (_, actor) = post(&provider, Endpoint::Token, &[("grant_type", "client_credentials")], secret).await;
    let actor = actor["access_token"].as_str().unwrap().to_owned();
    let access_type = "urn:ietf:params:oauth:token-type:access_token";
    let (status, exchanged) = post(
        &provider,
        Endpoint::Token,
        &[
            ("grant_type", "urn:ietf:params:oauth:grant-type:token-exchange"),
            ("subject_token", &subject),
            ("subject_token_type", access_type),
            ("actor_token", &actor),
            ("actor_token_type", access_type),
            ("audience", "https://api.example"),
            ("scope", "api:read"),
        ],
        secret,
    )
    .await;
    assert_eq!(status, 200, "{exchanged}");
    assert_eq!(exchanged["issued_token_type"], access_type);
    let keys = keys(&provider).await;
    let claims =
        validate(&provider, &keys, exchanged["access_token"].as_str().unwrap(), "https://api.example")
            .unwrap();
    assert_eq!(claims["act"], json!({"sub": "demo-service"}));
    assert_eq!(claims["scope"], "api:read");

    let (status, active) = post(&provider, Endpoint::Introspection, &[("token", &subject)], secret).await;
    assert_eq!(status, 200);
    assert_eq!(active["active"], true);
    assert_eq!(active["aud"], "https://opaque.example");
    assert_eq!(active["client_id"], "demo-service");
    let (status, body) =
        post(&provider, Endpoint::Introspection, &[("token", &subject), ("client_id", "demo-app")], None)
            .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("invalid_client")),
        "public clients may not introspect"
    );
    let response = http()
        .post(provider.url(Endpoint::Revocation))
        .basic_auth("demo-service", Some("demo-secret"))
        .form(&[("token", subject.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let (_, inactive) = post(&provider, Endpoint::Introspection, &[("token", &subject)], secret).await;
    assert_eq!(inactive, json!({"active": false}));
    let (_, again) = post(
        &provider,
        Endpoint::Token,
        &[
            ("grant_type", "urn:ietf:params:oauth:grant-type:token-exchange"),
            ("subject_token", &subject),
            ("subject_token_type", access_type),
        ],
        secret,
    )
    .await;
    assert_eq!(again["error"], "invalid_request", "revoked subject tokens cannot be exchanged");
    // JWT access tokens are revoked by jti.
    let response = http()
        .post(provider.url(Endpoint::Revocation))
        .basic_auth("demo-service", Some("demo-secret"))
        .form(&[("token", actor.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(!provider.is_active(&actor));
}

#[tokio::test]
async fn userinfo_needs_an_active_user_token_with_openid() {
    let provider = TestProvider::start().await.unwrap();
    let response = http().get(provider.url(Endpoint::Userinfo)).send().await.unwrap();
    assert_eq!(response.status(), 401);
    let expired = provider.token().subject("alice").claim("scope", "openid").expired().sign();
    let response = http().get(provider.url(Endpoint::Userinfo)).bearer_auth(expired).send().await.unwrap();
    assert_eq!(response.status(), 401);
    assert!(response.headers()["www-authenticate"].to_str().unwrap().contains("invalid_token"));
    let no_openid = provider.token().subject("alice").claim("scope", "api:read").sign();
    let response = http().get(provider.url(Endpoint::Userinfo)).bearer_auth(no_openid).send().await.unwrap();
    assert_eq!(response.status(), 403);
    let minted = provider.token().subject("alice").claim("scope", "openid").sign();
    let body: Value = http()
        .get(provider.url(Endpoint::Userinfo))
        .bearer_auth(minted)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(body, json!({"sub": "alice"}));
}

#[tokio::test]
async fn minted_tokens_validate_or_fail_as_built() {
    let provider = TestProvider::start().await.unwrap();
    let keys = keys(&provider).await;
    let aud = provider.default_audience().to_owned();
    assert!(validate(&provider, &keys, &provider.token().sign(), &aud).is_ok());
    for alg in [Algorithm::RS256, Algorithm::ES256, Algorithm::EdDSA] {
        let token = provider.token().key(provider.signing_key(Some(alg))).sign();
        assert!(validate(&provider, &keys, &token, &aud).is_ok(), "{alg}");
    }
    let cases = [
        (provider.token().expired().sign(), "token_expired"),
        (provider.token().audience("https://other").sign(), "invalid_audience"),
        (provider.token().tampered_signature(), "invalid_signature"),
        (provider.token().unsigned(), "algorithm_not_allowed"),
        (provider.token().unknown_key(Algorithm::ES256).sign(), "key_not_found"),
        (provider.token().kid("nope").sign(), "key_not_found"),
        (provider.token().without_header("typ").sign(), "invalid_token_type"),
        (provider.token().claim("iss", "https://evil").sign(), "invalid_issuer"),
        (provider.token().raw(b"{\"alg\":\"RS256\"", b"{}"), "malformed_token"),
    ];
    for (token, kind) in cases {
        assert_eq!(validate(&provider, &keys, &token, &aud).unwrap_err(), kind);
    }
}

#[tokio::test]
async fn rotation_with_and_without_overlap() {
    let provider = TestProvider::start().await.unwrap();
    let old = provider.token().sign();
    let old_kids = provider.active_kids();
    let new_kids = provider.rotate_keys(Rotation::Overlap);
    assert_eq!(new_kids.len(), 3);
    assert!(new_kids.iter().all(|k| !old_kids.contains(k)));
    let keys_now = keys(&provider).await;
    assert_eq!(keys_now.len(), 6);
    assert!(validate(&provider, &keys_now, &old, provider.default_audience()).is_ok());
    let new = provider.token().sign();
    assert!(validate(&provider, &keys_now, &new, provider.default_audience()).is_ok());
    provider.retire_old_keys();
    let keys_now = keys(&provider).await;
    assert_eq!(keys_now.len(), 3);
    assert_eq!(
        validate(&provider, &keys_now, &old, provider.default_audience()).unwrap_err(),
        "key_not_found"
    );
    provider.rotate_keys(Rotation::Replace);
    assert_eq!(keys(&provider).await.len(), 3);
}

#[tokio::test]
async fn faults_apply_for_n_requests_or_until_cleared() {
    let provider = TestProvider::start().await.unwrap();
    let url = provider.url(Endpoint::Jwks);
    provider.inject(Endpoint::Jwks, Fault::Status(503), Times::Next(2));
    assert_eq!(http().get(&url).send().await.unwrap().status(), 503);
    assert_eq!(http().get(&url).send().await.unwrap().status(), 503);
    assert_eq!(http().get(&url).send().await.unwrap().status(), 200);
    provider.inject(Endpoint::Jwks, Fault::TooManyRequests { retry_after: 7 }, Times::Next(1));
    let response = http().get(&url).send().await.unwrap();
    assert_eq!(response.status(), 429);
    assert_eq!(response.headers()["retry-after"], "7");
    provider.inject(Endpoint::Jwks, Fault::MalformedJson, Times::Next(1));
    let body = http().get(&url).send().await.unwrap().bytes().await.unwrap();
    assert!(serde_json::from_slice::<Value>(&body).is_err());
    provider.inject(Endpoint::Jwks, Fault::WrongContentType, Times::Next(1));
    let response = http().get(&url).send().await.unwrap();
    assert!(response.headers()["content-type"].to_str().unwrap().starts_with("text/html"));
    assert!(KeySet::from_json(&response.bytes().await.unwrap()).is_ok(), "body intact");
    provider.inject(Endpoint::Jwks, Fault::TruncatedBody, Times::Next(1));
    let truncated = http().get(&url).send().await.unwrap().bytes().await;
    assert!(truncated.is_err(), "the body cannot be read in full");
    provider.inject(Endpoint::Jwks, Fault::ConnectionReset, Times::Next(1));
    let reset = http().get(&url).send().await;
    assert!(reset.is_err(), "no response");
    provider.inject(Endpoint::Token, Fault::Status(500), Times::UntilCleared);
    for _ in 0..3 {
        let (status, _) = post(
            &provider,
            Endpoint::Token,
            &[("grant_type", "client_credentials")],
            Some(("demo-service", "demo-secret")),
        )
        .await;
        assert_eq!(status, 500);
    }
    assert_eq!(http().get(&url).send().await.unwrap().status(), 200, "other endpoints unaffected");
    provider.clear_faults();
    let (status, _) = post(
        &provider,
        Endpoint::Token,
        &[("grant_type", "client_credentials")],
        Some(("demo-service", "demo-secret")),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(provider.requests(Endpoint::Jwks), 9);
    assert_eq!(provider.requests(Endpoint::Token), 4);
}

#[tokio::test(start_paused = true)]
async fn latency_faults_delay_the_answer() {
    let provider = TestProvider::start().await.unwrap();
    provider.inject(Endpoint::Discovery, Fault::Latency(Duration::from_secs(30)), Times::Next(1));
    let url = provider.url(Endpoint::Discovery);
    let started = tokio::time::Instant::now();
    let handle = tokio::spawn(async move {
        // Raw HTTP/1.1 over a socket: reqwest's own timers do not run under paused time.
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
        let addr = url.trim_start_matches("http://").split('/').next().unwrap().to_owned();
        let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        stream
            .write_all(
                b"GET /.well-known/openid-configuration HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n",
            )
            .await
            .unwrap();
        let mut out = Vec::new();
        stream.read_to_end(&mut out).await.unwrap();
        String::from_utf8(out).unwrap()
    });
    let response = handle.await.unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(started.elapsed() >= Duration::from_secs(30));
}

#[tokio::test]
async fn configuration_from_json_with_opaque_resources_and_loaded_keys() {
    let dir = std::env::temp_dir().join(format!("testkit-keys-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let private = Value::Object(SigningKey::generate(Algorithm::ES256).unwrap().private_jwk().unwrap());
    let path = dir.join("keys.json");
    std::fs::write(&path, json!({"keys": [private]}).to_string()).unwrap();
    let config = ProviderConfig::from_json(json!({"keys_file": path}).to_string().as_bytes()).unwrap();
    let provider = TestProvider::builder().config(config).start().await.unwrap();
    let published = provider.jwks();
    assert_eq!(published["keys"][0]["x"], private["x"]);
    assert!(published["keys"][0].get("d").is_none(), "private members never published");
    let keys = keys(&provider).await;
    assert!(validate(&provider, &keys, &provider.token().sign(), provider.default_audience()).is_ok());

    let mut public = private.clone();
    public.as_object_mut().unwrap().remove("d");
    std::fs::write(&path, json!({"keys": [public]}).to_string()).unwrap();
    let config = ProviderConfig::from_json(json!({"keys_file": path}).to_string().as_bytes()).unwrap();
    let error = TestProvider::builder().config(config).start().await.unwrap_err();
    assert!(error.to_string().contains("keys file"), "{error}");
    assert!(ProviderConfig::from_json(br#"{"clientz": []}"#).unwrap_err().contains("unknown field"));

    let config = ProviderConfig::from_json(
        br#"{"algorithms": ["ES256"], "resources": [{"id": "urn:only", "format": "opaque"}]}"#,
    )
    .unwrap();
    let provider = TestProvider::builder().config(config).start().await.unwrap();
    let secret = Some(("demo-service", "demo-secret"));
    let (_, body) = post(&provider, Endpoint::Token, &[("grant_type", "client_credentials")], secret).await;
    assert_eq!(body["access_token"].as_str().unwrap().split('.').count(), 1);
    assert_eq!(provider.jwks()["keys"].as_array().unwrap().len(), 1);
    let _ = std::fs::remove_dir_all(dir);
}
