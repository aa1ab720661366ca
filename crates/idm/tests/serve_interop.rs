//! `idm serve` introspecting panva's oidc-provider's opaque tokens (issue 22): the sidecar's
//! own client credentials, the answer's `aud` (RFC 8707 resource) checked, and a revocation
//! seen within the cache ceiling. Needs node and `npm ci` in tests/interop (skips loudly
//! outside CI, fails under it).

#![allow(clippy::unwrap_used)] // tests fail loudly by design

#[path = "../../../tests/interop/peer.rs"]
mod peer;
mod support;

use std::time::Duration;

use support::{ConfigFile, Sidecar, post_form, until};

const BASIC: &str = "Basic aW50ZXJvcDppbnRlcm9wLXNlY3JldA=="; // interop:interop-secret

#[test]
fn opaque_tokens_of_oidc_provider_are_introspected_and_a_revocation_is_seen() {
    if !peer::peer_available("oidc-provider", "idm serve introspection against oidc-provider") {
        return;
    }
    let dir = std::env::temp_dir().join(format!("idm-serve-interop-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let keys = dir.join("keys.json");
    peer::add_key(&keys);
    let provider = peer::start(support::free_port(), &keys);
    let issuer = provider.issuer.clone();
    let addr = issuer.trim_start_matches("http://").to_owned();
    let secret = ConfigFile(dir.join("secret"));
    std::fs::write(&secret.0, "interop-secret").unwrap();
    let config = ConfigFile(dir.join("serve.toml"));
    std::fs::write(
        &config.0,
        format!(
            "[[issuer]]\nissuer = \"{issuer}\"\naudience = \"urn:interop:opaque\"\nallow_http = true\n\
             [issuer.introspection]\nclient_id = \"interop\"\nclient_secret_file = \"{}\"\ncache_secs = 2\n",
            secret.arg()
        ),
    )
    .unwrap();
    let sidecar = Sidecar::start(&["--config", config.arg()]);
    let form = "grant_type=client_credentials&scope=read&resource=urn%3Ainterop%3Aopaque";
    let reply = post_form(&addr, "/token", &[("Authorization", BASIC)], form);
    assert_eq!(reply.status, 200, "{reply:?}");
    let token = reply.json()["access_token"].as_str().unwrap().to_owned();
    assert!(!token.contains('.'), "an opaque token: {token}");
    let check = || {
        let auth = format!("Bearer {token}");
        sidecar.get("/auth", &[("X-Original-URI", "/"), ("Authorization", &auth)])
    };
    let allowed = check();
    assert_eq!(allowed.status, 200, "{allowed:?}");
    assert_eq!(allowed.header("x-auth-request-client-id"), Some("interop"));
    assert_eq!(allowed.header("x-auth-request-scope"), Some("read"));

    let revoked =
        post_form(&addr, "/token/revocation", &[("Authorization", BASIC)], &format!("token={token}"));
    assert_eq!(revoked.status, 200, "{revoked:?}");
    until("the revocation is seen within the 2 s ceiling", Duration::from_secs(10), || check().status == 401);
    assert_eq!(check().json()["error"], "token_inactive");
    std::fs::remove_dir_all(&dir).unwrap();
}
