//! The test provider checked by independent clients: panva's `openid-client` and `jose` (npm,
//! installed by `scripts/test` with `npm ci` in tests/interop) run `tests/interop/check-testkit.mjs`
//! against it: discovery, client credentials (basic, post, private_key_jwt), tokens of every
//! algorithm verified by jose, introspection, revocation, token exchange, authorization code with
//! PKCE + userinfo + refresh, and the device flow. Without node the test skips loudly, except
//! under CI, where it fails.

#![allow(clippy::unwrap_used)]

use std::process::Command;

use identity_model_core::{Algorithm, SigningKey};
use identity_model_testkit::{ClientConfig, ProviderConfig, TestProvider};
use serde_json::{Value, json};

#[path = "../../../tests/interop/peer.rs"]
mod peer;

use peer::interop_dir;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openid_client_and_jose_accept_what_the_provider_issues() {
    if !peer::peer_available("openid-client", "openid-client interop test") {
        return;
    }
    let client_key = SigningKey::generate(Algorithm::ES256).unwrap();
    let mut config = ProviderConfig::default().client(ClientConfig::private_key_jwt(
        "pkjwt-client",
        json!({"keys": [client_key.verification_jwk()]}),
    ));
    config.device_poll_interval = 1;
    let provider = TestProvider::builder().config(config).start().await.unwrap();

    let dir = std::env::temp_dir().join(format!("testkit-openid-client-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let key_file = dir.join("client-key.json");
    std::fs::write(&key_file, Value::Object(client_key.private_jwk().unwrap()).to_string()).unwrap();
    let minted: serde_json::Map<String, Value> = [Algorithm::RS256, Algorithm::ES256, Algorithm::EdDSA]
        .into_iter()
        .map(|alg| {
            (alg.as_str().to_owned(), provider.token().key(provider.signing_key(Some(alg))).sign().into())
        })
        .collect();
    let token_file = dir.join("tokens.json");
    std::fs::write(&token_file, Value::Object(minted).to_string()).unwrap();

    let script = interop_dir().join("check-testkit.mjs");
    let issuer = provider.issuer().to_owned();
    let (k, t) = (key_file.clone(), token_file.clone());
    let out = tokio::task::spawn_blocking(move || {
        Command::new("node").arg(script).arg(issuer).arg(k).arg(t).output()
    })
    .await
    .unwrap()
    .unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let report: Value = serde_json::from_str(stdout.trim())
        .unwrap_or_else(|e| panic!("no report ({e}): {stdout}\n{}", String::from_utf8_lossy(&out.stderr)));
    let checks = report["checks"].as_object().unwrap();
    let expected = [
        "discovery",
        "client_credentials_basic",
        "client_credentials_post",
        "client_credentials_private_key_jwt",
        "minted_tokens_every_algorithm",
        "introspection_and_revocation",
        "token_exchange",
        "authorization_code_pkce_userinfo_refresh",
        "device_flow",
    ];
    let names: Vec<&str> = checks.keys().map(String::as_str).collect();
    assert_eq!(names.len(), expected.len(), "{report}");
    for name in expected {
        assert_eq!(checks[name], "ok", "{name}: {report}");
    }
    assert!(out.status.success());
}
