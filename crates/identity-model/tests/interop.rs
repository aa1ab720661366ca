//! Interop with a real, independently written provider: panva's oidc-provider (npm), started
//! here on a free loopback port by `tests/interop/provider.mjs`. `scripts/test` installs it
//! (`npm ci`). Without node or the package the tests skip loudly, except under CI, where they
//! fail.

#![allow(clippy::unwrap_used)] // tests fail loudly by design

use std::path::Path;
use std::process::Command;

use identity_model::{
    Algorithm, Authority, AuthorizationRequest, Client, DiscoveryPolicy, ErrorKind, IdTokenValidation,
    SigningKey, SystemClock, TokenClient, Validation, base64url,
};
use serde_json::Value;

#[path = "../../../tests/interop/peer.rs"]
mod peer;

use peer::{add_key, interop_dir, start, start_with};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A client-credentials JWT for urn:interop:api, through the library's token client
/// (client_secret_basic, token endpoint from discovery).
async fn client_credentials(authority: &Authority) -> String {
    let client = TokenClient::builder(Client::with_secret("interop", "interop-secret"))
        .authority(authority)
        .build()
        .unwrap();
    let tokens = client.client_credentials(&["read"], &["urn:interop:api"]).await.unwrap();
    tokens.access_token.expose().to_owned()
}

fn kid_of(token: &str) -> String {
    let header = base64url::decode(token.split('.').next().unwrap().as_bytes()).unwrap();
    serde_json::from_slice::<Value>(&header).unwrap()["kid"].as_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn validates_oidc_provider_tokens_through_discovery_and_key_rotation() {
    if !peer::peer_available("oidc-provider", "oidc-provider interop tests") {
        return;
    }
    let dir = std::env::temp_dir().join(format!("idm-interop-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let keys = dir.join("keys.json");
    let first_kid = add_key(&keys);
    let port = free_port();
    let provider = start(port, &keys);
    let issuer = provider.issuer.clone();

    let rules = Validation::new(issuer.clone()).audience("urn:interop:api").token_type("at+jwt");
    let authority = Authority::builder(&issuer)
        .rules(rules)
        .policy(DiscoveryPolicy::default().allow_http_on_loopback())
        .build()
        .unwrap();

    let token = client_credentials(&authority).await;
    assert_eq!(kid_of(&token), first_kid);
    let valid = authority.validate(&token).await.unwrap();
    assert_eq!(valid.claims.get("client_id").and_then(Value::as_str), Some("interop"));
    assert_eq!(valid.header.typ(), Some("at+jwt"));

    // Rotation: a new provider instance with the new key first and the old one after.
    drop(provider);
    let second_kid = add_key(&keys);
    let provider = start(port, &keys);
    let rotated = client_credentials(&authority).await;
    assert_eq!(kid_of(&rotated), second_kid);
    assert!(authority.validate(&rotated).await.is_ok(), "token signed with the rotated key");
    assert!(authority.validate(&token).await.is_ok(), "token signed with the previous key");
    let stats = authority.stats();
    assert_eq!(stats.kid_misses.load(std::sync::atomic::Ordering::Relaxed), 1);
    drop(provider);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A user agent for oidc-provider's development pages: no redirects followed, cookies kept
/// (by name; paths ignored, which these pages allow).
struct Browser {
    http: reqwest::Client,
    origin: String,
    cookies: std::collections::BTreeMap<String, String>,
}

impl Browser {
    fn new(origin: &str) -> Browser {
        let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
        Browser { http, origin: origin.to_owned(), cookies: Default::default() }
    }

    /// One request; returns (status, Location, body).
    async fn go(&mut self, url: &str, form: Option<&[(&str, &str)]>) -> (u16, Option<String>, String) {
        let url = if url.starts_with('/') { format!("{}{url}", self.origin) } else { url.to_owned() };
        let cookie: Vec<String> = self.cookies.iter().map(|(n, v)| format!("{n}={v}")).collect();
        let request = match form {
            Some(form) => {
                let body: String =
                    form_urlencoded::Serializer::new(String::new()).extend_pairs(form).finish();
                self.http.post(&url).header("content-type", "application/x-www-form-urlencoded").body(body)
            }
            None => self.http.get(&url),
        };
        let response = request.header("cookie", cookie.join("; ")).send().await.unwrap();
        for set in response.headers().get_all("set-cookie") {
            let pair = set.to_str().unwrap().split(';').next().unwrap();
            let (name, value) = pair.split_once('=').unwrap();
            if value.is_empty() {
                self.cookies.remove(name);
            } else {
                self.cookies.insert(name.to_owned(), value.to_owned());
            }
        }
        let status = response.status().as_u16();
        let location = response.headers().get("location").map(|l| l.to_str().unwrap().to_owned());
        (status, location, response.text().await.unwrap())
    }
}

/// The value of a hidden input in a page.
fn hidden(page: &str, name: &str) -> Option<String> {
    let marker = format!("name=\"{name}\" value=\"");
    let start = page.find(&marker)? + marker.len();
    Some(page[start..].split('"').next()?.to_owned())
}

/// Approves a device code as `login` through oidc-provider's pages: the user-code form
/// (POST /device with confirm=yes), the login prompt, the consent prompt.
async fn approve_device(issuer: &str, user_code: &str, login: &str) {
    let mut browser = Browser::new(issuer);
    let (_, _, page) = browser.go("/device", None).await;
    let xsrf = hidden(&page, "xsrf").expect("xsrf in the device page");
    let form = [("xsrf", xsrf.as_str()), ("user_code", user_code), ("confirm", "yes")];
    let first = browser.go("/device", Some(&form)).await;
    let (status, _, page, prompts) = interact(&mut browser, first, login, None).await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("Sign-in Success"), "{page}");
    assert_eq!(prompts, ["login", "consent"]);
}

/// Follows redirects through the login and consent prompts (signing in as `login`), until a
/// page, or a redirect to `stop` (the client's redirect URI). Returns the last answer and the
/// prompts seen.
async fn interact(
    browser: &mut Browser,
    first: (u16, Option<String>, String),
    login: &str,
    stop: Option<&str>,
) -> (u16, Option<String>, String, Vec<String>) {
    let (mut status, mut location, mut page) = first;
    let mut prompts = Vec::new();
    for _ in 0..12 {
        match (status, location.clone()) {
            (300..=399, Some(next)) if stop.is_some_and(|s| next.starts_with(s)) => break,
            (300..=399, Some(next)) => {
                (status, location, page) = browser.go(&next, None).await;
                if next.contains("/interaction/") && status == 200 {
                    let prompt = hidden(&page, "prompt").expect("a prompt on the interaction page");
                    let form: Vec<(&str, &str)> = match prompt.as_str() {
                        "login" => vec![("prompt", "login"), ("login", login), ("password", "any")],
                        _ => vec![("prompt", "consent")],
                    };
                    prompts.push(prompt.clone());
                    (status, location, page) = browser.go(&next, Some(&form)).await;
                }
            }
            _ => break,
        }
    }
    (status, location, page, prompts)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn code_flow_with_pkce_plain_and_pushed_against_oidc_provider() {
    if !peer::peer_available("oidc-provider", "oidc-provider interop tests") {
        return;
    }
    let dir = std::env::temp_dir().join(format!("idm-interop-code-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let keys = dir.join("keys.json");
    add_key(&keys);
    let provider = start(free_port(), &keys);
    let issuer = provider.issuer.clone();
    let authority = Authority::builder(&issuer)
        .policy(DiscoveryPolicy::default().allow_http_on_loopback())
        .build()
        .unwrap();
    let app = TokenClient::builder(Client::public("interop-app")).authority(&authority).build().unwrap();
    let redirect = "http://127.0.0.1:8400/callback";
    for pushed in [false, true] {
        let request = AuthorizationRequest::new("interop-app", redirect).unwrap().scope(["profile"]);
        let url = if pushed {
            app.push_authorization(&request).await.unwrap()
        } else {
            app.authorization_url(&request).await.unwrap()
        };
        assert_eq!(url.contains("request_uri="), pushed, "{url}");
        let mut browser = Browser::new(&issuer);
        let first = browser.go(&url, None).await;
        let (status, location, page, prompts) = interact(&mut browser, first, "carol", Some(redirect)).await;
        assert!((300..400).contains(&status), "{status}: {page}");
        assert_eq!(prompts, ["login", "consent"]);
        let callback = location.unwrap();
        assert!(callback.contains("iss="), "RFC 9207 iss in {callback}");
        // A callback for another request is refused before the code is spent.
        let other = AuthorizationRequest::new("interop-app", redirect).unwrap();
        assert_eq!(app.redeem(&other, &callback).await.unwrap_err().kind(), ErrorKind::InvalidCallback);
        let tokens = app.redeem(&request, &callback).await.unwrap();
        let keys = authority.keys().await.unwrap();
        let id = IdTokenValidation::new(issuer.clone(), "interop-app")
            .nonce(request.nonce.clone())
            .access_token(tokens.access_token.expose())
            .validate(
                tokens.id_token.as_ref().unwrap().expose(),
                &keys,
                identity_model::Clock::now(&SystemClock),
            )
            .unwrap();
        let sub = id.claims.sub().unwrap().to_owned();
        assert_eq!(sub, "carol");
        let info = app.userinfo(tokens.access_token.expose(), Some(&sub)).await.unwrap();
        assert_eq!(info.text("name"), Some("User carol"));
        // The code is single use.
        let e = app.redeem(&request, &callback).await.unwrap_err();
        assert_eq!(e.oauth().map(|o| o.error.as_str()), Some("invalid_grant"));
    }
    drop(provider);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gets_tokens_from_oidc_provider_with_every_grant_it_supports() {
    if !peer::peer_available("oidc-provider", "oidc-provider interop tests") {
        return;
    }
    let dir = std::env::temp_dir().join(format!("idm-interop-grants-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let keys = dir.join("keys.json");
    add_key(&keys);
    let client_key = SigningKey::generate(Algorithm::ES256).unwrap();
    let client_jwks = dir.join("client-jwks.json");
    std::fs::write(
        &client_jwks,
        serde_json::json!({"keys": [Value::Object(client_key.verification_jwk())]}).to_string(),
    )
    .unwrap();
    let provider = start_with(free_port(), &keys, Some(&client_jwks));
    let issuer = provider.issuer.clone();
    let authority = Authority::builder(&issuer)
        .rules(Validation::new(issuer.clone()).audience("urn:interop:api").token_type("at+jwt"))
        .policy(DiscoveryPolicy::default().allow_http_on_loopback())
        .build()
        .unwrap();
    let with = |client: Client| TokenClient::builder(client).authority(&authority).build().unwrap();

    // Client credentials: client_secret_basic and private_key_jwt; both tokens validate.
    let basic = with(Client::with_secret("interop", "interop-secret"));
    let jwt = with(Client::with_key("interop-jwt", client_key).unwrap());
    for (name, client) in [("client_secret_basic", &basic), ("private_key_jwt", &jwt)] {
        let tokens = client.client_credentials(&["read"], &["urn:interop:api"]).await.unwrap();
        let valid =
            authority.validate(tokens.access_token.expose()).await.unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(
            valid.claims.get("client_id"),
            Some(&Value::from(client.client().client_id.clone())),
            "{name}"
        );
    }
    let wrong = with(Client::with_secret("interop", "wrong"));
    let e = wrong.client_credentials(&["read"], &[]).await.unwrap_err();
    assert_eq!(
        (e.kind(), e.oauth().map(|o| o.error.as_str())),
        (ErrorKind::OAuthError, Some("invalid_client"))
    );

    // Introspection and revocation of an opaque token.
    let opaque = basic.client_credentials(&["read"], &["urn:interop:opaque"]).await.unwrap();
    let token = opaque.access_token.expose();
    assert!(!token.contains('.'), "opaque");
    let active = basic.introspect(token, Some("access_token")).await.unwrap();
    assert!(active.active);
    assert_eq!(active.text("client_id"), Some("interop"));
    basic.revoke(token, Some("access_token")).await.unwrap();
    assert!(!basic.introspect(token, None).await.unwrap().active, "revoked");

    // The device flow, approved through the provider's own pages; then userinfo, the ID
    // token, and a refresh.
    let device_client = with(Client::public("interop-device"));
    let device =
        device_client.device_authorization(&["openid", "profile", "offline_access"], &[]).await.unwrap();
    approve_device(&issuer, &device.user_code, "alice").await;
    let tokens = device_client.poll_device(&device).await.unwrap();
    let access = tokens.access_token.expose();
    let info = device_client.userinfo(access, Some("alice")).await.unwrap();
    assert_eq!(info.text("name"), Some("User alice"));
    let e = device_client.userinfo(access, Some("bob")).await.unwrap_err();
    assert_eq!(e.claim(), Some("sub"));
    let keys = authority.keys().await.unwrap();
    let id = IdTokenValidation::new(issuer.clone(), "interop-device")
        .access_token(access)
        .validate(tokens.id_token.as_ref().unwrap().expose(), &keys, identity_model::Clock::now(&SystemClock))
        .unwrap();
    assert_eq!(id.claims.sub(), Some("alice"));
    let refresh = tokens.refresh_token.clone().expect("offline_access gives a refresh token");
    let refreshed = device_client.refresh(refresh.clone()).await.unwrap();
    assert!(device_client.userinfo(refreshed.access_token.expose(), Some("alice")).await.is_ok());
    assert_ne!(refreshed.refresh_token.as_ref(), Some(&refresh), "public clients' refresh tokens rotate");
    let e = device_client.refresh(refresh).await.unwrap_err();
    assert_eq!(e.oauth().map(|o| o.error.as_str()), Some("invalid_grant"));

    drop(provider);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A DPoP proof by panva's `jose` (tests/interop/dpop-proof.mjs) with `key`.
fn jose_proof(dir: &Path, key: &identity_model::DpopKey, method: &str, url: &str, token: &str) -> String {
    let file = dir.join(format!("dpop-{}.jwk", key.thumbprint()));
    std::fs::write(&file, Value::Object(key.private_jwk().unwrap()).to_string()).unwrap();
    let out = Command::new("node")
        .arg(interop_dir().join("dpop-proof.mjs"))
        .args([file.to_str().unwrap(), method, url, token])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

/// DPoP with oidc-provider (features.dPoP, nonces required): our proofs get DPoP-bound tokens
/// after the nonce retry; its bound token is verified by our resource-server side with proofs
/// made by `jose`; tampered and foreign proofs are refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dpop_with_oidc_provider_and_proofs_by_jose() {
    use identity_model::{DpopKey, DpopRules, check_binding};
    if !peer::peer_available("oidc-provider", "oidc-provider DPoP interop") {
        return;
    }
    let dir = std::env::temp_dir().join(format!("idm-interop-dpop-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let keys = dir.join("keys.json");
    add_key(&keys);
    let provider = start(free_port(), &keys);
    let issuer = provider.issuer.clone();
    let rules = Validation::new(issuer.clone()).audience("urn:interop:api").token_type("at+jwt");
    let authority = Authority::builder(&issuer)
        .rules(rules)
        .policy(DiscoveryPolicy::default().allow_http_on_loopback())
        .build()
        .unwrap();
    for alg in [Algorithm::ES256, Algorithm::PS256, Algorithm::EdDSA] {
        let key = DpopKey::generate(alg).unwrap();
        let client = TokenClient::builder(Client::with_secret("interop", "interop-secret"))
            .authority(&authority)
            .dpop_key(DpopKey::from_jwk(&key.private_jwk().unwrap(), Some(alg)).unwrap())
            .build()
            .unwrap();
        let tokens = client.client_credentials(&["read"], &["urn:interop:api"]).await.unwrap();
        assert_eq!(tokens.token_type, "DPoP", "{alg}");
        let token = tokens.access_token.expose();
        let valid = authority.validate(token).await.unwrap();
        assert_eq!(identity_model::bound_jkt(&valid.claims), Some(key.thumbprint()), "{alg}");
        assert_eq!(check_binding(&valid.claims, None).unwrap_err().kind(), ErrorKind::DpopProofRequired);

        let url = "https://api.example/orders";
        let now = identity_model::Clock::now(&SystemClock);
        let proof = jose_proof(&dir, &key, "GET", url, token);
        let verified = DpopRules::new().verify(&proof, "GET", url, Some(token), now).unwrap();
        check_binding(&valid.claims, Some(&verified)).unwrap();
        // Tampered: another URL, another method, a changed signature.
        let err = DpopRules::new()
            .verify(&proof, "GET", "https://api.example/admin", Some(token), now)
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidDpopProof);
        let err = DpopRules::new().verify(&proof, "POST", url, Some(token), now).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidDpopProof);
        let mut tampered = proof.clone();
        let last = tampered.pop().unwrap();
        tampered.push(if last == 'A' { 'B' } else { 'A' });
        let err = DpopRules::new().verify(&tampered, "GET", url, Some(token), now).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidDpopProof);
        // A proof by another key (jose's, valid in itself) is not the bound key's.
        let other = DpopKey::generate_default().unwrap();
        let foreign = jose_proof(&dir, &other, "GET", url, token);
        let verified = DpopRules::new().verify(&foreign, "GET", url, Some(token), now).unwrap();
        assert_eq!(
            check_binding(&valid.claims, Some(&verified)).unwrap_err().kind(),
            ErrorKind::DpopKeyMismatch
        );
    }
    drop(provider);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// DPoP on the device flow with oidc-provider: the tokens, userinfo with the DPoP scheme and a
/// proof, and refreshes (a public client's refresh token is bound to its key: another key's
/// proof is refused).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dpop_device_flow_userinfo_and_refresh_with_oidc_provider() {
    use identity_model::DpopKey;
    if !peer::peer_available("oidc-provider", "oidc-provider DPoP refresh interop") {
        return;
    }
    let dir = std::env::temp_dir().join(format!("idm-interop-dpop-refresh-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let keys = dir.join("keys.json");
    add_key(&keys);
    let provider = start(free_port(), &keys);
    let issuer = provider.issuer.clone();
    let authority = Authority::builder(&issuer)
        .rules(Validation::new(issuer.clone()).audience("urn:interop:api"))
        .policy(DiscoveryPolicy::default().allow_http_on_loopback())
        .build()
        .unwrap();
    let key = DpopKey::generate_default().unwrap();
    let private = key.private_jwk().unwrap();
    let device_client = TokenClient::builder(Client::public("interop-device"))
        .authority(&authority)
        .dpop_key(DpopKey::from_jwk(&private, None).unwrap())
        .build()
        .unwrap();
    let device =
        device_client.device_authorization(&["openid", "profile", "offline_access"], &[]).await.unwrap();
    approve_device(&issuer, &device.user_code, "carol").await;
    let tokens = device_client.poll_device(&device).await.unwrap();
    assert_eq!(tokens.token_type, "DPoP");
    let info = device_client.userinfo(tokens.access_token.expose(), Some("carol")).await.unwrap();
    assert_eq!(info.text("name"), Some("User carol"));
    let refresh = tokens.refresh_token.clone().expect("offline_access gives a refresh token");
    let refreshed = device_client.refresh(refresh).await.unwrap();
    assert_eq!(refreshed.token_type, "DPoP");
    assert!(device_client.userinfo(refreshed.access_token.expose(), Some("carol")).await.is_ok());
    // The rotated refresh token with another key's proofs: refused by the provider.
    let thief = TokenClient::builder(Client::public("interop-device"))
        .authority(&authority)
        .dpop_key(DpopKey::generate_default().unwrap())
        .build()
        .unwrap();
    let e = thief.refresh(refreshed.refresh_token.clone().unwrap()).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::OAuthError, "{e}");
    drop(provider);
    std::fs::remove_dir_all(&dir).unwrap();
}
