//! DPoP on the client side against the testkit provider: proofs on token requests, the
//! nonce retry and its memory, bound tokens that the resource-server side accepts with the
//! client's own proofs, and a Bearer answer to a DPoP request refused.

#![allow(clippy::unwrap_used)] // tests fail loudly by design

mod support;

use std::time::Duration;

use identity_model::{
    Authority, Client, DiscoveryPolicy, DpopKey, DpopRules, ErrorKind, ProofRequest, TokenClient, bound_jkt,
    check_binding,
};
use identity_model_testkit::{Endpoint, TestProvider};

fn authority(provider: &TestProvider) -> Authority {
    support::testkit::authority(provider, true)
}

fn dpop_client(authority: &Authority, key: DpopKey) -> TokenClient {
    TokenClient::builder(Client::with_secret("demo-service", "demo-secret"))
        .authority(authority)
        .dpop_key(key)
        .build()
        .unwrap()
}

#[tokio::test]
async fn client_credentials_get_a_bound_token_the_resource_side_accepts_with_the_clients_proof() {
    let provider = TestProvider::start().await.unwrap();
    let authority = authority(&provider);
    let client = dpop_client(&authority, DpopKey::generate_default().unwrap());
    let tokens = client.client_credentials(&[], &[]).await.unwrap();
    assert_eq!(tokens.token_type, "DPoP");
    let recorded = provider.recorded(Endpoint::Token);
    let proof = recorded[0].header("dpop").expect("a DPoP header on the token request");
    let now = authority.now();
    let token_url = provider.url(Endpoint::Token);
    DpopRules::new().verify(proof, "POST", &token_url, None, now).unwrap();

    let key = client.dpop_key().unwrap();
    let access = tokens.access_token.expose();
    let valid = authority.validate(access).await.unwrap();
    assert_eq!(bound_jkt(&valid.claims), Some(key.thumbprint()));
    let url = "https://api.example/orders";
    let resource_proof = key.proof(&ProofRequest::new("GET", url).with_access_token(access), now).unwrap();
    let verified = DpopRules::new().verify(&resource_proof, "GET", url, Some(access), now).unwrap();
    check_binding(&valid.claims, Some(&verified)).unwrap();
    assert_eq!(check_binding(&valid.claims, None).unwrap_err().kind(), ErrorKind::DpopProofRequired);
}

#[tokio::test]
async fn a_demanded_nonce_is_retried_once_then_remembered() {
    let provider = TestProvider::start().await.unwrap();
    provider.require_dpop_nonce(Some("nonce-1"));
    let authority = authority(&provider);
    let client = dpop_client(&authority, DpopKey::generate_default().unwrap());
    let tokens = client.client_credentials(&[], &[]).await.unwrap();
    assert_eq!(tokens.token_type, "DPoP");
    assert_eq!(provider.requests(Endpoint::Token), 2, "one refused for the nonce, one retried with it");
    provider.reset_counters();
    client.client_credentials(&[], &[]).await.unwrap();
    assert_eq!(provider.requests(Endpoint::Token), 1, "the nonce is remembered");
    // The server moves to a new nonce: one more retry, then it is remembered too.
    provider.require_dpop_nonce(Some("nonce-2"));
    provider.reset_counters();
    client.client_credentials(&[], &[]).await.unwrap();
    assert_eq!(provider.requests(Endpoint::Token), 2);
}

#[tokio::test]
async fn a_bearer_answer_to_a_dpop_request_is_refused() {
    use wiremock::matchers::{header_exists, method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/token"))
        .and(header_exists("dpop"))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({
            "access_token": "downgraded", "token_type": "Bearer", "expires_in": 60
        })))
        .mount(&server)
        .await;
    let endpoints =
        identity_model::Endpoints { token: Some(format!("{}/token", server.uri())), ..Default::default() };
    let client = TokenClient::builder(Client::with_secret("c", "s"))
        .endpoints(endpoints)
        .policy(DiscoveryPolicy::default().allow_http_on_loopback())
        .dpop_key(DpopKey::generate_default().unwrap())
        .build()
        .unwrap();
    let err = client.client_credentials(&[], &[]).await.unwrap_err();
    assert_eq!((err.kind(), err.claim()), (ErrorKind::InvalidResponse, Some("token_type")));
}

#[tokio::test]
async fn authorization_requests_carry_dpop_jkt() {
    let provider = TestProvider::start().await.unwrap();
    let authority = authority(&provider);
    let key = DpopKey::generate_default().unwrap();
    let jkt = key.thumbprint().to_owned();
    let client = dpop_client(&authority, key);
    let request = identity_model::AuthorizationRequest::new("demo-service", "http://127.0.0.1:1/cb").unwrap();
    let url = client.authorization_url(&request).await.unwrap();
    assert!(url.contains(&format!("dpop_jkt={jkt}")), "{url}");
    let named = request.clone().dpop_jkt("chosen");
    let url = client.authorization_url(&named).await.unwrap();
    assert_eq!(url.matches("dpop_jkt=").count(), 1, "{url}");
    assert!(url.contains("dpop_jkt=chosen"));
}

#[tokio::test]
async fn the_token_manager_caches_bound_tokens_with_their_key() {
    let provider = TestProvider::start().await.unwrap();
    let authority = authority(&provider);
    let key = DpopKey::generate_default().unwrap();
    let jkt = key.thumbprint().to_owned();
    let manager = identity_model::TokenManager::new(dpop_client(&authority, key), &[], &[]);
    let first = manager.get().await.unwrap();
    let second = manager.get().await.unwrap();
    assert_eq!(first.access_token.expose(), second.access_token.expose());
    assert_eq!(provider.requests(Endpoint::Token), 1, "cached");
    assert_eq!(first.token_type, "DPoP");
    assert_eq!(manager.dpop_key().map(DpopKey::thumbprint), Some(jkt.as_str()));
    let valid = authority.validate(first.access_token.expose()).await.unwrap();
    assert_eq!(bound_jkt(&valid.claims), Some(jkt.as_str()));
}

/// The testkit's DPoP-protected resource (its userinfo): a bound token needs the DPoP scheme,
/// a proof by its key, and the demanded nonce; the client meets all three.
#[tokio::test]
async fn the_testkit_userinfo_is_a_dpop_protected_resource() {
    let provider = TestProvider::start().await.unwrap();
    provider.require_dpop_nonce(Some("resource-nonce"));
    let authority = authority(&provider);
    let key = DpopKey::generate_default().unwrap();
    let bound = provider
        .token()
        .subject("alice")
        .claim("scope", "openid profile")
        .claim("cnf", serde_json::json!({"jkt": key.thumbprint()}))
        .sign();
    let client = dpop_client(&authority, key);
    let info = client.userinfo(&bound, Some("alice")).await.unwrap();
    assert_eq!(info.text("name"), Some("Alice Example"));
    // As Bearer (a client without the key): refused.
    let plain = TokenClient::builder(Client::with_secret("demo-service", "demo-secret"))
        .authority(&authority)
        .build()
        .unwrap();
    assert!(plain.userinfo(&bound, None).await.is_err());
    // Another key's proofs: refused.
    let thief = dpop_client(&authority, DpopKey::generate_default().unwrap());
    let e = thief.userinfo(&bound, None).await.unwrap_err();
    assert!(e.to_string().contains("dpop_key_mismatch"), "{e}");
}

#[tokio::test]
async fn an_injected_nonce_demand_is_met_once() {
    use identity_model_testkit::{Fault, Times};
    let provider = TestProvider::start().await.unwrap();
    provider.inject(Endpoint::Token, Fault::UseDpopNonce("fault-nonce".into()), Times::Next(1));
    let authority = authority(&provider);
    let client = dpop_client(&authority, DpopKey::generate_default().unwrap());
    assert_eq!(client.client_credentials(&[], &[]).await.unwrap().token_type, "DPoP");
    let recorded = provider.recorded(Endpoint::Token);
    assert_eq!(recorded.len(), 2);
    let nonce_of = |i: usize| {
        let proof = recorded[i].header("dpop").unwrap();
        let payload = identity_model::base64url::decode(proof.split('.').nth(1).unwrap().as_bytes()).unwrap();
        serde_json::from_slice::<serde_json::Value>(&payload).unwrap()["nonce"].as_str().map(str::to_owned)
    };
    assert_eq!((nonce_of(0), nonce_of(1).as_deref()), (None, Some("fault-nonce")));
}

/// Cancellation: a DPoP token request aborted while the provider is slow leaves nothing behind
/// (no half-remembered nonce); the next caller meets the nonce demand and gets its token.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_aborted_dpop_request_leaves_the_next_caller_unaffected() {
    use identity_model_testkit::{Fault, Times};
    let provider = TestProvider::start().await.unwrap();
    provider.require_dpop_nonce(Some("n-after-abort"));
    provider.inject(Endpoint::Token, Fault::Latency(Duration::from_secs(30)), Times::Next(1));
    let authority = authority(&provider);
    let client = dpop_client(&authority, DpopKey::generate_default().unwrap());
    let first = client.clone();
    let task = tokio::spawn(async move { first.client_credentials(&[], &[]).await });
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while provider.requests(Endpoint::Token) == 0 {
        assert!(tokio::time::Instant::now() < deadline, "the first request never reached the provider");
        tokio::task::yield_now().await;
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    task.abort();
    assert!(task.await.unwrap_err().is_cancelled());
    let tokens = client.client_credentials(&[], &[]).await.unwrap();
    assert_eq!(tokens.token_type, "DPoP");
    assert_eq!(provider.requests(Endpoint::Token), 3, "the aborted one, the nonce answer, the retry");
}

/// Issue 19, item 9: the testkit binds a refresh token to the DPoP key it was issued to: a
/// refresh must prove that key (RFC 9449 section 5); another key, or none, is `invalid_grant`.
#[tokio::test]
async fn the_testkit_refuses_a_bound_refresh_token_with_another_key_or_none() {
    let provider = TestProvider::start().await.unwrap();
    let authority = authority(&provider);
    let public = |key: Option<DpopKey>| {
        let builder = TokenClient::builder(Client::public("demo-app")).authority(&authority);
        match key {
            Some(key) => builder.dpop_key(key),
            None => builder,
        }
        .build()
        .unwrap()
    };
    let app = public(Some(DpopKey::generate_default().unwrap()));
    let device = app.device_authorization(&["openid", "offline_access"], &[]).await.unwrap();
    assert!(provider.approve_device(&device.user_code, "alice"));
    let tokens = app.poll_device(&device).await.unwrap();
    let refresh = tokens.refresh_token.unwrap();
    for (what, client) in
        [("another key", public(Some(DpopKey::generate_default().unwrap()))), ("no proof", public(None))]
    {
        let e = client.refresh(refresh.clone()).await.unwrap_err();
        assert_eq!(e.oauth().map(|o| o.error.as_str()), Some("invalid_grant"), "{what}: {e}");
    }
    let renewed = app.refresh(refresh).await.unwrap();
    assert_eq!(renewed.token_type, "DPoP");
}
