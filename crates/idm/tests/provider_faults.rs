//! Issue 19, item 2, through the process: a provider that cannot give keys is answered 503
//! with `Retry-After` by `idm serve` (never 401), from the first check, cold and after keys
//! were had; `idm validate` exits 3. The body and the message keep the provider's reason.

#![allow(clippy::unwrap_used)] // tests fail loudly by design

mod support;

use identity_model_testkit::{Endpoint, Fault, Rotation, Times};
use support::{provider_on, sidecar_for};

#[test]
fn the_sidecar_answers_503_for_every_provider_failure_cold_and_warm() {
    for (what, fault, cause) in [
        ("malformed JWK Set", Fault::MalformedJson, "invalid_key_set"),
        ("wrong Content-Type", Fault::WrongContentType, "unexpected_content_type"),
        ("HTTP 500", Fault::Status(500), "http_status"),
        ("connection reset", Fault::ConnectionReset, "transport_error"),
    ] {
        let p = provider_on(0);
        p.provider.inject(Endpoint::Jwks, fault.clone(), Times::UntilCleared);
        let sidecar = sidecar_for(&p.provider, &[]);
        let token = format!("Bearer {}", p.provider.token().sign());
        let check = |token: &str| sidecar.get("/auth", &[("Authorization", token), ("X-Original-URI", "/")]);
        let cold = check(&token);
        assert_eq!(cold.status, 503, "cold, {what}: {cold:?}");
        assert_eq!(cold.header("retry-after"), Some("5"), "cold, {what}");
        assert_eq!(cold.header("www-authenticate"), None, "cold, {what}: no token is blamed");
        assert_eq!(cold.json()["error"], "keys_unavailable", "cold, {what}");
        let message = cold.json()["message"].as_str().unwrap().to_owned();
        assert!(message.contains(cause), "cold, {what}: the provider's reason is kept: {message}");
        assert_eq!(check(&token).status, 503, "cold, {what}: and inside the backoff");

        // Warm: the keys were had, the provider rotates and fails.
        p.provider.clear_faults();
        let warm = sidecar_for(&p.provider, &["--no-token-cache"]);
        let check = |token: &str| warm.get("/auth", &[("Authorization", token), ("X-Original-URI", "/")]);
        assert_eq!(check(&token).status, 200, "warm-up, {what}");
        p.provider.rotate_keys(Rotation::Overlap);
        let rotated = format!("Bearer {}", p.provider.token().sign());
        p.provider.inject(Endpoint::Jwks, fault.clone(), Times::UntilCleared);
        let reply = check(&rotated);
        assert_eq!(
            (reply.status, reply.json()["error"].as_str()),
            (503, Some("keys_unavailable")),
            "warm, {what}"
        );
        assert_eq!(check(&token).status, 200, "warm, {what}: the cached key still judges");
    }
}

#[test]
fn idm_validate_exits_3_when_the_provider_fails() {
    let p = provider_on(0);
    p.provider.inject(Endpoint::Jwks, Fault::MalformedJson, Times::UntilCleared);
    let token = p.provider.token().sign();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_idm"))
        .args(["validate", &token, "--issuer", p.provider.issuer(), "--allow-http"])
        .args(["--audience", p.provider.default_audience()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3), "{}", String::from_utf8_lossy(&out.stderr));
    let body: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(body["error"], "keys_unavailable");
    assert!(body["message"].as_str().unwrap().contains("invalid_key_set"), "{body}");
}
