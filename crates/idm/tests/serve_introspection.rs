//! `idm serve` (issue 22): opaque tokens through RFC 7662 introspection with the sidecar's own
//! client credentials, against the testkit: one request for concurrent checks of one token,
//! answers cached (active until the earlier of `exp` and the ceiling, inactive briefly), a
//! revocation seen within the ceiling, JWTs still validated locally, scopes and identity
//! headers from the introspected claims.

#![allow(clippy::unwrap_used)] // tests fail loudly by design

mod support;

use std::time::Duration;

use identity_model_testkit::Endpoint;
use support::{ConfigFile, Sidecar, post_form, provider_on, until};

const OPAQUE: &str = "https://opaque.example";

fn basic() -> String {
    // demo-service:demo-secret
    format!("Basic {}", "ZGVtby1zZXJ2aWNlOmRlbW8tc2VjcmV0")
}

/// An opaque access token of the testkit (client credentials for the opaque resource).
fn opaque_token(issuer: &str) -> String {
    let addr = issuer.trim_start_matches("http://");
    let form =
        format!("grant_type=client_credentials&scope=api%3Aread&resource={}", "https%3A%2F%2Fopaque.example");
    let reply = post_form(addr, "/token", &[("Authorization", &basic())], &form);
    assert_eq!(reply.status, 200, "{reply:?}");
    let token = reply.json()["access_token"].as_str().unwrap().to_owned();
    assert_eq!(token.matches('.').count(), 0, "an opaque token: {token}");
    token
}

fn revoke(issuer: &str, token: &str) {
    let addr = issuer.trim_start_matches("http://");
    let reply = post_form(addr, "/revoke", &[("Authorization", &basic())], &format!("token={token}"));
    assert_eq!(reply.status, 200, "{reply:?}");
}

fn config(issuer: &str, extra: &str) -> (ConfigFile, ConfigFile) {
    let dir = std::env::temp_dir();
    let n = std::process::id();
    let secret = ConfigFile(dir.join(format!("idm-introspect-secret-{n}-{}", support::free_port())));
    std::fs::write(&secret.0, "demo-secret\n").unwrap();
    let file = ConfigFile(dir.join(format!("idm-introspect-{n}-{}.toml", support::free_port())));
    let text = format!(
        "[[issuer]]\nissuer = \"{issuer}\"\naudience = [\"{OPAQUE}\", \"https://api.example\"]\nallow_http = true\n\
         [issuer.introspection]\nclient_id = \"demo-service\"\nclient_secret_file = \"{}\"\n{extra}\n\n\
         [[route]]\nprefix = \"/write\"\nscopes = [\"api:write\"]\n",
        secret.arg()
    );
    std::fs::write(&file.0, text).unwrap();
    (file, secret)
}

#[test]
fn opaque_tokens_are_introspected_cached_and_revocations_seen_within_the_ceiling() {
    let p = provider_on(0);
    let issuer = p.provider.issuer().to_owned();
    let (file, _secret) = config(&issuer, "cache_secs = 2\ninactive_cache_secs = 2");
    let sidecar = Sidecar::start(&["--config", file.arg()]);
    let token = opaque_token(&issuer);
    let check = |uri: &str, token: &str| {
        let auth = format!("Bearer {token}");
        sidecar.get("/auth", &[("X-Original-URI", uri), ("Authorization", &auth)])
    };

    // Concurrent checks of a new token: one introspection request.
    let before = p.provider.requests(Endpoint::Introspection);
    let replies: Vec<_> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..16).map(|_| scope.spawn(|| check("/read", &token))).collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for reply in &replies {
        assert_eq!(reply.status, 200, "{reply:?}");
        assert_eq!(reply.header("x-auth-request-client-id"), Some("demo-service"));
        assert_eq!(reply.header("x-auth-request-scope"), Some("api:read"));
        assert_eq!(reply.header("x-auth-request-issuer"), Some(issuer.as_str()));
    }
    assert_eq!(p.provider.requests(Endpoint::Introspection), before + 1, "one request for 16 checks");
    // Cached: no request; scope rules apply to the introspected scopes.
    assert_eq!(check("/write", &token).json()["error"], "insufficient_scope");
    assert_eq!(p.provider.requests(Endpoint::Introspection), before + 1);

    // Revoked at the provider: refused once the 2 s ceiling has passed.
    revoke(&issuer, &token);
    until("the revocation is seen", Duration::from_secs(10), || check("/read", &token).status == 401);
    let refused = check("/read", &token);
    assert_eq!(refused.json()["error"], "token_inactive");
    assert!(refused.header("www-authenticate").unwrap().contains(r#"error="invalid_token""#));

    // An unknown opaque token: inactive, and the answer is cached for a while.
    let asked = p.provider.requests(Endpoint::Introspection);
    assert_eq!(check("/read", "2YotnFZFEjr1zCsicMWpAA").json()["error"], "token_inactive");
    assert_eq!(check("/read", "2YotnFZFEjr1zCsicMWpAA").json()["error"], "token_inactive");
    assert_eq!(p.provider.requests(Endpoint::Introspection), asked + 1);

    // JWTs are still validated locally (no introspection).
    let jwt = p.provider.token().sign();
    let asked = p.provider.requests(Endpoint::Introspection);
    assert_eq!(check("/read", &jwt).status, 200);
    assert_eq!(p.provider.requests(Endpoint::Introspection), asked);
}

#[test]
fn an_issuer_without_discovery_introspects_at_its_configured_endpoint() {
    use identity_model_testkit::{Fault, Times};
    let p = provider_on(0);
    let issuer = p.provider.issuer().to_owned();
    p.provider.inject(Endpoint::Discovery, Fault::Status(404), Times::UntilCleared);
    let endpoint = p.provider.url(Endpoint::Introspection);
    let jwks = p.provider.url(Endpoint::Jwks);
    let (file, _secret) = config(&issuer, &format!("endpoint = \"{endpoint}\""));
    // Keys from the jwks_uri alone (inserted before the introspection table).
    let text = std::fs::read_to_string(&file.0)
        .unwrap()
        .replace("allow_http = true\n", &format!("allow_http = true\njwks_uri = \"{jwks}\"\n"));
    std::fs::write(&file.0, text).unwrap();
    let sidecar = Sidecar::start(&["--config", file.arg()]);
    let auth = format!("Bearer {}", opaque_token(&issuer));
    let reply = sidecar.get("/auth", &[("X-Original-URI", "/read"), ("Authorization", &auth)]);
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(reply.header("x-auth-request-scope"), Some("api:read"));
    let jwt = format!("Bearer {}", p.provider.token().sign());
    assert_eq!(sidecar.get("/auth", &[("X-Original-URI", "/read"), ("Authorization", &jwt)]).status, 200);
    assert_eq!(p.provider.requests(Endpoint::Discovery), 0, "no discovery for this issuer");
}

#[test]
fn a_reload_keeps_the_answers_of_an_unchanged_introspection_and_a_new_secret_takes_effect() {
    let p = provider_on(0);
    let issuer = p.provider.issuer().to_owned();
    let (file, secret) = config(&issuer, "");
    let sidecar = Sidecar::start(&["--config", file.arg()]);
    let auth = format!("Bearer {}", opaque_token(&issuer));
    let check = || sidecar.get("/auth", &[("X-Original-URI", "/read"), ("Authorization", &auth)]);
    assert_eq!(check().status, 200);
    let asked = p.provider.requests(Endpoint::Introspection);

    // Another route: the issuer and its introspection are unchanged, the cached answer kept.
    let text =
        std::fs::read_to_string(&file.0).unwrap() + "\n[[route]]\nprefix = \"/other\"\nscopes = [\"x\"]\n";
    std::fs::write(&file.0, text).unwrap();
    until("the reload", Duration::from_secs(10), || support::reloads(&sidecar, "success") == 1.0);
    assert_eq!(check().status, 200);
    assert_eq!(p.provider.requests(Endpoint::Introspection), asked, "no new introspection");

    // A new client secret (read on SIGHUP): the next check asks again, with it.
    std::fs::write(&secret.0, "not-the-secret\n").unwrap();
    let hup = std::process::Command::new("kill").args(["-HUP", &sidecar.child.id().to_string()]).status();
    assert!(hup.unwrap().success());
    until("the SIGHUP reload", Duration::from_secs(10), || support::reloads(&sidecar, "success") == 2.0);
    let refused = check();
    assert_eq!(refused.status, 503, "the provider refuses the wrong secret: {refused:?}");
    assert_eq!(p.provider.requests(Endpoint::Introspection), asked + 1);
}

#[test]
fn a_token_for_another_resource_or_a_bad_setup_is_refused() {
    let p = provider_on(0);
    let issuer = p.provider.issuer().to_owned();
    // The sidecar serves only https://api.example: an opaque token for the opaque resource is
    // not meant for it.
    let dir = std::env::temp_dir();
    let secret = ConfigFile(dir.join(format!("idm-introspect-secret-b-{}", std::process::id())));
    std::fs::write(&secret.0, "demo-secret").unwrap();
    let file = ConfigFile(dir.join(format!("idm-introspect-b-{}.toml", std::process::id())));
    std::fs::write(
        &file.0,
        format!(
            "[[issuer]]\nissuer = \"{issuer}\"\naudience = \"https://api.example\"\nallow_http = true\n\
             [issuer.introspection]\nclient_id = \"demo-service\"\nclient_secret_file = \"{}\"\n",
            secret.arg()
        ),
    )
    .unwrap();
    let sidecar = Sidecar::start(&["--config", file.arg()]);
    let auth = format!("Bearer {}", opaque_token(&issuer));
    let reply = sidecar.get("/auth", &[("X-Original-URI", "/"), ("Authorization", &auth)]);
    assert_eq!(reply.json()["error"], "invalid_audience", "{reply:?}");

    let bad = support::issuer_config(&p.provider, "");
    let text = std::fs::read_to_string(&bad.0).unwrap()
        + "[issuer.introspection]\nclient_id = \"x\"\nclient_secret_file = \"/nonexistent\"\ntokens = \"some\"\n";
    std::fs::write(&bad.0, text).unwrap();
    let stderr = support::config_problems(&bad);
    assert!(stderr.contains("client_secret_file") && stderr.contains("tokens \"some\""), "{stderr}");
}

#[test]
fn an_introspected_cnf_jkt_binds_dpop_proofs_as_a_jwts_does() {
    use identity_model::{Clock, DpopKey, ProofRequest, SystemClock};
    let p = provider_on(0);
    let issuer = p.provider.issuer().to_owned();
    let (file, _secret) = config(&issuer, "");
    let text =
        format!("public_origin = \"https://api.example\"\n{}", std::fs::read_to_string(&file.0).unwrap());
    std::fs::write(&file.0, text).unwrap();
    let sidecar = Sidecar::start(&["--config", file.arg()]);
    let key = DpopKey::generate_default().unwrap();
    let now = || SystemClock.now();
    let token_url = format!("{issuer}/token");
    let proof = key.proof(&ProofRequest::new("POST", &token_url), now()).unwrap();
    let form = "grant_type=client_credentials&scope=api%3Aread&resource=https%3A%2F%2Fopaque.example";
    let addr = issuer.trim_start_matches("http://");
    let reply = post_form(addr, "/token", &[("Authorization", &basic()), ("DPoP", &proof)], form);
    assert_eq!((reply.status, reply.json()["token_type"].as_str()), (200, Some("DPoP")), "{reply:?}");
    let token = reply.json()["access_token"].as_str().unwrap().to_owned();

    let check = |scheme: &str, proof: Option<&str>| {
        let auth = format!("{scheme} {token}");
        let mut headers =
            vec![("X-Original-URI", "/read"), ("X-Original-Method", "GET"), ("Authorization", auth.as_str())];
        if let Some(proof) = proof {
            headers.push(("DPoP", proof));
        }
        sidecar.get("/auth", &headers)
    };
    let resource_proof = key
        .proof(&ProofRequest::new("GET", "https://api.example/read").with_access_token(&token), now())
        .unwrap();
    let bound = check("DPoP", Some(&resource_proof));
    assert_eq!(bound.status, 200, "{bound:?}");
    assert_eq!(check("Bearer", None).json()["error"], "dpop_proof_required");
    let other = DpopKey::generate_default().unwrap();
    let stolen = other
        .proof(&ProofRequest::new("GET", "https://api.example/read").with_access_token(&token), now())
        .unwrap();
    assert_eq!(check("DPoP", Some(&stolen)).json()["error"], "dpop_key_mismatch");
}
