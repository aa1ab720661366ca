//! `idm serve` as a process, driven with the headers nginx, Traefik and Envoy send, against
//! the testkit provider.

#![allow(clippy::unwrap_used)] // tests fail loudly by design

mod support;

use std::time::Duration;

use identity_model_testkit::{Endpoint, Fault, Rotation, Times};
use serde_json::json;
use support::{Sidecar, free_port, metric, provider_on, request, sidecar_for, until};

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

fn write_config(text: &str) -> std::path::PathBuf {
    let path =
        std::env::temp_dir().join(format!("idm-serve-test-{}-{}.toml", std::process::id(), free_port()));
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn nginx_headers_valid_token_gets_identity_headers() {
    let p = provider_on(0);
    let sidecar = sidecar_for(&p.provider, &[]);
    let token = p
        .provider
        .token()
        .subject("alice")
        .claim("email", "alice@example.com")
        .claim("preferred_username", "alice")
        .claim("groups", json!(["admins", "ops"]))
        .claim("scope", "orders:read orders:write")
        .sign();
    let reply = sidecar.get(
        "/auth",
        &[
            ("Authorization", &bearer(&token)),
            ("X-Original-Method", "GET"),
            ("X-Original-URI", "/orders?x=1"),
        ],
    );
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(reply.header("x-auth-request-user"), Some("alice"));
    assert_eq!(reply.header("x-auth-request-email"), Some("alice@example.com"));
    assert_eq!(reply.header("x-auth-request-preferred-username"), Some("alice"));
    assert_eq!(reply.header("x-auth-request-groups"), Some("admins,ops"));
    assert_eq!(reply.header("x-auth-request-client-id"), Some("test-client"));
    assert_eq!(reply.header("x-auth-request-scope"), Some("orders:read orders:write"));
    assert_eq!(reply.header("x-auth-request-issuer"), Some(p.provider.issuer()));
}

#[test]
fn refusals_carry_a_challenge_and_a_json_kind() {
    let p = provider_on(0);
    let sidecar = sidecar_for(&p.provider, &[]);
    let missing = sidecar.get("/auth", &[("X-Original-URI", "/")]);
    assert_eq!(missing.status, 401);
    assert_eq!(missing.header("www-authenticate"), Some(r#"Bearer realm="api""#));
    assert_eq!(missing.json()["error"], "missing_token");
    assert_eq!(missing.header("content-type"), Some("application/json"));

    let token = p.provider.token();
    for (token, kind) in [
        (token.clone().expired().sign(), "token_expired"),
        (token.clone().tampered_signature(), "invalid_signature"),
        (token.clone().audience("https://other.example").sign(), "invalid_audience"),
        (token.clone().unsigned(), "algorithm_not_allowed"),
    ] {
        let reply = sidecar.get("/auth", &[("Authorization", &bearer(&token)), ("X-Original-URI", "/")]);
        assert_eq!(reply.status, 401, "{kind}: {reply:?}");
        let challenge = reply.header("www-authenticate").unwrap();
        assert!(
            challenge.starts_with(r#"Bearer realm="api", error="invalid_token", error_description=""#),
            "{challenge}"
        );
        assert_eq!(reply.json()["error"], kind);
        assert!(reply.json()["message"].is_string());
        assert_eq!(reply.header("x-auth-error"), Some(kind));
    }
    let metrics = sidecar.get("/metrics", &[]).body;
    assert_eq!(
        metric(&metrics, r#"idm_serve_checks_total{mode="nginx",status="401",kind="token_expired"}"#),
        Some(1.0)
    );
}

#[test]
fn route_rules_scopes_anonymous_and_every_proxy_mode() {
    let p = provider_on(0);
    let config = support::rules_config(&p.provider, "", "[claims]\ntenant = \"X-Tenant\"");
    let sidecar = Sidecar::start(&["--config", config.arg()]);
    let reader = p.provider.token().claim("scope", "orders:read").claim("tenant", "acme").sign();
    let auth = bearer(&reader);

    // nginx
    let nginx = |uri: &str, method: &str, auth: Option<&str>| {
        let mut headers = vec![("X-Original-URI", uri), ("X-Original-Method", method)];
        if let Some(auth) = auth {
            headers.push(("Authorization", auth));
        }
        sidecar.get("/auth", &headers)
    };
    let admin = nginx("/admin/users", "GET", Some(&auth));
    assert_eq!(admin.status, 403);
    assert_eq!(
        admin.header("www-authenticate"),
        Some(r#"Bearer realm="api", error="insufficient_scope", scope="admin""#)
    );
    assert_eq!(admin.json()["error"], "insufficient_scope");
    assert_eq!(nginx("/orders/1", "GET", Some(&auth)).status, 200);
    assert_eq!(nginx("/orders/1", "POST", Some(&auth)).status, 403);
    assert_eq!(nginx("/public/page", "GET", None).status, 200);
    // An anonymous prefix cannot be used to climb into a protected one: the readings of an
    // encoded climb disagree, so it is refused.
    assert_eq!(nginx("/public/../admin", "GET", Some(&auth)).status, 403);
    let climb = nginx("/public/..%2fadmin", "GET", Some(&auth));
    assert_eq!((climb.status, climb.json()["error"].as_str()), (400, Some("ambiguous_target")), "{climb:?}");
    assert_eq!(nginx("/public/%2e%2e/admin", "GET", None).status, 400);
    assert_eq!(nginx("/publicity", "GET", None).status, 401);
    assert_eq!(nginx("/%zz", "GET", None).status, 400);
    let allowed = nginx("/orders", "GET", Some(&auth));
    assert_eq!(allowed.header("x-tenant"), Some("acme"));

    // Traefik and Caddy: /auth of a sidecar told which proxy is in front.
    for proxy in ["traefik", "caddy"] {
        let forwarded = Sidecar::start(&["--config", config.arg(), "--proxy", proxy]);
        let refused = forwarded.get(
            "/auth",
            &[
                ("Authorization", &auth),
                ("X-Forwarded-Method", "POST"),
                ("X-Forwarded-Proto", "https"),
                ("X-Forwarded-Host", "api.example"),
                ("X-Forwarded-Uri", "/orders/7"),
            ],
        );
        assert_eq!(refused.status, 403, "{proxy}");
        let public =
            forwarded.get("/auth", &[("X-Forwarded-Method", "GET"), ("X-Forwarded-Uri", "/public/x")]);
        assert_eq!(public.status, 200, "{proxy}");
        assert_eq!(request(&forwarded.addr, "GET", "/ext-authz/public", &[]).status, 404, "{proxy}");
    }

    // Envoy: the original path follows /ext-authz, the method is the check's own.
    let envoy_sidecar = Sidecar::start(&["--config", config.arg(), "--proxy", "envoy"]);
    let envoy_addr = envoy_sidecar.addr.as_str();
    assert_eq!(request(envoy_addr, "POST", "/ext-authz/orders/7", &[("Authorization", &auth)]).status, 403);
    let envoy = request(envoy_addr, "GET", "/ext-authz/orders/7?q=1", &[("Authorization", &auth)]);
    assert_eq!(envoy.status, 200);
    assert_eq!(envoy.header("x-auth-request-user"), Some("test-subject"));
    assert_eq!(request(envoy_addr, "GET", "/ext-authz/public", &[]).status, 200);
    assert_eq!(request(envoy_addr, "GET", "/ext-authzpublic", &[]).status, 404);
    assert_eq!(request(envoy_addr, "GET", "/auth", &[("X-Original-URI", "/public")]).status, 404);
    // The nginx sidecar has no Envoy endpoint.
    assert_eq!(request(&sidecar.addr, "GET", "/ext-authz/public", &[]).status, 404);
}

#[test]
fn started_while_the_provider_is_down_it_is_not_ready_then_recovers() {
    let down = support::Down::new();
    let issuer = format!("http://127.0.0.1:{}", down.port);
    let sidecar = Sidecar::start(&["--issuer", &issuer, "--audience", "https://api.example", "--allow-http"]);
    assert_eq!(sidecar.get("/healthz", &[]).status, 200);
    let ready = sidecar.get("/readyz", &[]);
    assert_eq!(ready.status, 503);
    assert_eq!(ready.json()["ready"], false);
    assert_eq!(ready.json()["issuers"][0]["ready"], false);
    let check = sidecar.get("/auth", &[("Authorization", "Bearer a.b.c"), ("X-Original-URI", "/")]);
    assert_eq!(check.status, 401, "a malformed token is refused whatever the keys: {check:?}");
    let dummy = "eyJhbGciOiJSUzI1NiIsImtpZCI6ImsifQ.eyJpc3MiOiJodHRwOi8vMTI3LjAuMC4xIn0.c2ln";
    let unavailable = sidecar.get("/auth", &[("Authorization", &bearer(dummy)), ("X-Original-URI", "/")]);
    assert_eq!(unavailable.status, 503, "{unavailable:?}");
    // The refused connection itself, or the memory of it within the refresh failure backoff.
    let kind = unavailable.json()["error"].as_str().unwrap().to_owned();
    assert!(["transport_error", "keys_unavailable"].contains(&kind.as_str()), "{kind}");
    assert!(unavailable.header("retry-after").is_some());

    let p = down.revive();
    until("the sidecar becomes ready", Duration::from_secs(60), || sidecar.get("/readyz", &[]).status == 200);
    let token = p.provider.token().sign();
    let ok = sidecar.get("/auth", &[("Authorization", &bearer(&token)), ("X-Original-URI", "/")]);
    assert_eq!(ok.status, 200);
    let report = sidecar.get("/readyz", &[]).json();
    assert_eq!(report["issuers"][0]["stale"], false);
    assert_eq!(report["issuers"][0]["keys"], p.provider.active_kids().len());
}

#[test]
fn keys_cached_outlive_the_provider_and_a_rotation_costs_one_key_set_request() {
    let p = provider_on(0);
    let sidecar = sidecar_for(&p.provider, &[]);
    until("ready", Duration::from_secs(30), || sidecar.get("/readyz", &[]).status == 200);
    let jwks_before = p.provider.requests(Endpoint::Jwks);
    p.provider.rotate_keys(Rotation::Replace);
    let rotated = p.provider.token().sign();
    for _ in 0..5 {
        let reply = sidecar.get("/auth", &[("Authorization", &bearer(&rotated)), ("X-Original-URI", "/")]);
        assert_eq!(reply.status, 200, "{reply:?}");
    }
    assert_eq!(p.provider.requests(Endpoint::Jwks) - jwks_before, 1);

    // The provider fails from now on: tokens signed by the cached keys still pass.
    p.provider.inject(Endpoint::Jwks, Fault::Status(503), Times::UntilCleared);
    p.provider.inject(Endpoint::Discovery, Fault::Status(503), Times::UntilCleared);
    let fresh = p.provider.token().subject("bob").sign();
    let reply = sidecar.get("/auth", &[("Authorization", &bearer(&fresh)), ("X-Original-URI", "/")]);
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("x-auth-request-user"), Some("bob"));
    assert_eq!(sidecar.get("/readyz", &[]).status, 200);
}

#[test]
fn sigterm_answers_the_check_in_flight_then_exits_0() {
    let p = provider_on(0);
    p.provider.inject(Endpoint::Jwks, Fault::Latency(Duration::from_secs(2)), Times::Next(1));
    let mut sidecar = sidecar_for(&p.provider, &[]);
    let token = p.provider.token().sign();
    let addr = sidecar.addr.clone();
    let check = std::thread::spawn(move || {
        request(&addr, "GET", "/auth", &[("Authorization", &bearer(&token)), ("X-Original-URI", "/")])
    });
    until("the check is in flight", Duration::from_secs(30), || {
        metric(&sidecar.get("/metrics", &[]).body, "idm_serve_checks_in_flight") == Some(1.0)
    });
    sidecar.terminate();
    let reply = check.join().unwrap();
    assert_eq!(reply.status, 200, "the check in flight is answered: {reply:?}");
    assert_eq!(sidecar.wait_exit(), Some(0));
}

#[test]
fn rate_limit_answers_429_with_retry_after() {
    let p = provider_on(0);
    let sidecar = sidecar_for(&p.provider, &["--rate-limit", "1", "--rate-burst", "2"]);
    let token = p.provider.token().claim("client_id", "noisy").sign();
    let statuses: Vec<u16> = (0..3)
        .map(|_| sidecar.get("/auth", &[("Authorization", &bearer(&token)), ("X-Original-URI", "/")]).status)
        .collect();
    assert_eq!(statuses, [200, 200, 429]);
    let limited = sidecar.get("/auth", &[("Authorization", &bearer(&token)), ("X-Original-URI", "/")]);
    assert_eq!(limited.json()["error"], "rate_limited");
    assert!(limited.header("retry-after").unwrap().parse::<u64>().unwrap() >= 1);
    let other = p.provider.token().claim("client_id", "quiet").sign();
    assert_eq!(
        sidecar.get("/auth", &[("Authorization", &bearer(&other)), ("X-Original-URI", "/")]).status,
        200
    );
}

#[test]
fn metrics_show_library_and_sidecar_counters() {
    let p = provider_on(0);
    let sidecar = sidecar_for(&p.provider, &[]);
    let token = p.provider.token().sign();
    for _ in 0..3 {
        assert_eq!(
            sidecar.get("/auth", &[("Authorization", &bearer(&token)), ("X-Original-URI", "/")]).status,
            200
        );
    }
    let text = sidecar.get("/metrics", &[]).body;
    let issuer = p.provider.issuer();
    assert_eq!(metric(&text, r#"idm_serve_checks_total{mode="nginx",status="200",kind="none"}"#), Some(3.0));
    assert_eq!(
        metric(&text, &format!(r#"identity_model_token_cache_total{{issuer="{issuer}",result="hit"}}"#)),
        Some(2.0)
    );
    assert_eq!(
        metric(
            &text,
            &format!(r#"identity_model_validations_total{{issuer="{issuer}",outcome="valid",kind="none"}}"#)
        ),
        Some(3.0)
    );
    assert!(text.contains("identity_model_provider_requests_total{host="), "{text}");
    assert!(text.contains("idm_serve_check_duration_seconds_bucket"), "{text}");
    assert!(text.contains("identity_model_validation_duration_seconds_bucket"), "{text}");
}

/// Defect 10: every problem from flags, file and issuers is listed at once (exit 2), and an
/// issuer that can never match a discovery document's `iss` is refused at start.
#[test]
fn configuration_problems_are_listed_at_once_exit_2() {
    let serve = |args: &[&str]| {
        let out =
            std::process::Command::new(env!("CARGO_BIN_EXE_idm")).arg("serve").args(args).output().unwrap();
        (out.status.code(), String::from_utf8_lossy(&out.stderr).into_owned())
    };
    let (code, err) =
        serve(&["--issuer", "not a url", "--audience", "a", "--listen", "nowhere", "--log-format", "xml"]);
    assert_eq!(code, Some(2));
    for expected in ["issuer \"not a url\"", "listen", "log format", "3 configuration problem(s)"] {
        assert!(err.contains(expected), "{expected:?} missing from:\n{err}");
    }
    let (code, err) = serve(&[
        "--issuer",
        "http://login.example",
        "--listen",
        "nowhere",
        "--proxy",
        "haproxy",
        "--header-timeout",
        "0",
        "--max-connections",
        "0",
    ]);
    assert_eq!(code, Some(2));
    for expected in
        ["no audience", "must use https", "listen", "proxy \"haproxy\"", "header timeout", "max connections"]
    {
        assert!(err.contains(expected), "{expected:?} missing from:\n{err}");
    }
    for issuer in ["http://127.0.0.1:9/?tenant=1", "http://127.0.0.1:9/#x", "http://127.0.0.1:9/realms/a?"] {
        let (code, err) = serve(&["--issuer", issuer, "--audience", "a", "--allow-http"]);
        assert_eq!(code, Some(2), "{issuer}: {err}");
        assert!(err.contains("must not have a"), "{issuer}: {err}");
    }
    let (code, err) = serve(&["--issuer", "http://127.0.0.1:9", "--audience", "a"]);
    assert_eq!(code, Some(2), "http without --allow-http: {err}");
}

#[test]
fn help_documents_every_flag() {
    let out =
        std::process::Command::new(env!("CARGO_BIN_EXE_idm")).args(["serve", "--help"]).output().unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    for flag in [
        "--issuer",
        "--audience",
        "--allow-http",
        "--listen",
        "--scope",
        "--config",
        "--log-format",
        "--realm",
        "--rate-limit",
        "--rate-burst",
        "--no-token-cache",
        "--public-origin",
        "--dpop-nonce-secret-file",
        "--dpop-max-age",
        "--proxy",
        "--header-timeout",
        "--max-connections",
        "--shutdown-timeout",
        "--dpop-leeway",
        "--redis",
        "--redis-prefix",
        "--redis-deadline-ms",
        "--redis-fail-open",
        "--redis-password-file",
        "--redis-ca-file",
        "--rate-limit-shared",
    ] {
        assert!(help.contains(flag), "{flag} missing from\n{help}");
    }
}

/// DPoP through the sidecar in each proxy mode: the proof is judged against the original
/// method and the public URL, once; every mistake of issue 13 has its kind.
#[test]
fn dpop_checks_in_every_mode_refuse_each_mistake_with_its_kind() {
    use identity_model::{Clock as _, DpopKey, ProofRequest, SystemClock};
    let p = provider_on(0);
    let sidecar = sidecar_for(&p.provider, &["--public-origin", "https://api.example"]);
    let key = DpopKey::generate_default().unwrap();
    let other = DpopKey::generate_default().unwrap();
    let bound = p.provider.token().subject("alice").claim("cnf", json!({"jkt": key.thumbprint()})).sign();
    let unbound = p.provider.token().subject("bob").sign();
    let now = SystemClock.now();
    let proof = |key: &DpopKey, method: &str, url: &str, token: &str, iat: i64| {
        let request = ProofRequest::new(method, url).with_access_token(token);
        key.proof(&request, identity_model::UnixTime::from_secs(now.as_secs() + iat)).unwrap()
    };
    let dpop = |token: &str| format!("DPoP {token}");
    let nginx = |authorization: &str, proofs: &[&str], method: &str| {
        let mut headers = vec![
            ("Authorization", authorization),
            ("X-Original-Method", method),
            ("X-Original-URI", "/orders?page=2"),
        ];
        headers.extend(proofs.iter().map(|p| ("DPoP", *p)));
        sidecar.get("/auth", &headers)
    };
    let url = "https://api.example/orders";
    let good = proof(&key, "GET", url, &bound, 0);
    let ok = nginx(&dpop(&bound), &[&good], "GET");
    assert_eq!(ok.status, 200, "{ok:?}");
    assert_eq!(ok.header("x-auth-request-user"), Some("alice"));
    let cases: Vec<(&str, String, Vec<String>, &str, &str)> = vec![
        ("replay", dpop(&bound), vec![good.clone()], "GET", "dpop_replay"),
        ("bound token as Bearer", bearer(&bound), vec![], "GET", "dpop_proof_required"),
        ("no proof", dpop(&bound), vec![], "GET", "dpop_proof_required"),
        (
            "two proofs",
            dpop(&bound),
            vec![proof(&key, "GET", url, &bound, 0), proof(&key, "GET", url, &bound, 0)],
            "GET",
            "invalid_dpop_proof",
        ),
        ("htm", dpop(&bound), vec![proof(&key, "POST", url, &bound, 0)], "GET", "invalid_dpop_proof"),
        (
            "htu",
            dpop(&bound),
            vec![proof(&key, "GET", "https://api.example/admin", &bound, 0)],
            "GET",
            "invalid_dpop_proof",
        ),
        (
            "htu of the sidecar itself",
            dpop(&bound),
            vec![proof(&key, "GET", &format!("http://{}/auth", sidecar.addr), &bound, 0)],
            "GET",
            "invalid_dpop_proof",
        ),
        (
            "iat too old",
            dpop(&bound),
            vec![proof(&key, "GET", url, &bound, -400)],
            "GET",
            "invalid_dpop_proof",
        ),
        (
            "iat in the future",
            dpop(&bound),
            vec![proof(&key, "GET", url, &bound, 120)],
            "GET",
            "invalid_dpop_proof",
        ),
        ("ath", dpop(&bound), vec![proof(&key, "GET", url, &unbound, 0)], "GET", "invalid_dpop_proof"),
        ("another key", dpop(&bound), vec![proof(&other, "GET", url, &bound, 0)], "GET", "dpop_key_mismatch"),
        (
            "unbound token with DPoP",
            dpop(&unbound),
            vec![proof(&key, "GET", url, &unbound, 0)],
            "GET",
            "dpop_key_mismatch",
        ),
    ];
    for (name, authorization, proofs, method, kind) in cases {
        let proofs: Vec<&str> = proofs.iter().map(String::as_str).collect();
        let reply = nginx(&authorization, &proofs, method);
        assert_eq!(reply.status, 401, "{name}: {reply:?}");
        assert_eq!(reply.json()["error"], kind, "{name}");
        let challenge = reply.header("www-authenticate").unwrap();
        assert!(
            challenge.starts_with(&format!(r#"DPoP realm="api", error="{kind}""#)),
            "{name}: {challenge}"
        );
        assert!(challenge.contains("algs=\""), "{name}: {challenge}");
    }
    // A client clock 30 s fast: its proof gets the tokens' leeway (60 s), unless
    // --dpop-leeway says otherwise.
    let ahead = proof(&key, "GET", url, &bound, 30);
    assert_eq!(nginx(&dpop(&bound), &[&ahead], "GET").status, 200);
    let strict = sidecar_for(&p.provider, &["--public-origin", "https://api.example", "--dpop-leeway", "5"]);
    let reply = strict.get(
        "/auth",
        &[
            ("Authorization", &dpop(&bound)),
            ("DPoP", &proof(&key, "GET", url, &bound, 30)),
            ("X-Original-Method", "GET"),
            ("X-Original-URI", "/orders"),
        ],
    );
    assert_eq!((reply.status, reply.json()["error"].as_str()), (401, Some("invalid_dpop_proof")));
    // Traefik: the same public URL, from the sidecar's --public-origin; Envoy likewise.
    let traefik_sidecar =
        sidecar_for(&p.provider, &["--public-origin", "https://api.example", "--proxy", "traefik"]);
    let traefik = traefik_sidecar.get(
        "/auth",
        &[
            ("Authorization", &dpop(&bound)),
            ("DPoP", &proof(&key, "DELETE", "https://api.example/orders/7", &bound, 0)),
            ("X-Forwarded-Method", "DELETE"),
            ("X-Forwarded-Proto", "https"),
            ("X-Forwarded-Host", "api.example"),
            ("X-Forwarded-Uri", "/orders/7"),
        ],
    );
    assert_eq!(traefik.status, 200, "{traefik:?}");
    let envoy_sidecar =
        sidecar_for(&p.provider, &["--public-origin", "https://api.example", "--proxy", "envoy"]);
    let envoy = support::request(
        &envoy_sidecar.addr,
        "PUT",
        "/ext-authz/orders/8?x=1",
        &[
            ("Authorization", &dpop(&bound)),
            ("DPoP", &proof(&key, "PUT", "https://api.example/orders/8", &bound, 0)),
        ],
    );
    assert_eq!(envoy.status, 200, "{envoy:?}");
}

/// Without --public-origin, Traefik's forwarded origin is the one proofs must name.
#[test]
fn dpop_behind_traefik_uses_the_forwarded_origin() {
    use identity_model::{Clock as _, DpopKey, ProofRequest, SystemClock};
    let p = provider_on(0);
    let sidecar = sidecar_for(&p.provider, &["--proxy", "traefik"]);
    let nginx_sidecar = sidecar_for(&p.provider, &[]);
    let key = DpopKey::generate_default().unwrap();
    let bound = p.provider.token().claim("cnf", json!({"jkt": key.thumbprint()})).sign();
    let check = |proof_url: &str| {
        let proof = key
            .proof(&ProofRequest::new("GET", proof_url).with_access_token(&bound), SystemClock.now())
            .unwrap();
        sidecar.get(
            "/auth",
            &[
                ("Authorization", &format!("DPoP {bound}")),
                ("DPoP", &proof),
                ("X-Forwarded-Method", "GET"),
                ("X-Forwarded-Proto", "https"),
                ("X-Forwarded-Host", "shop.example"),
                ("X-Forwarded-Uri", "/cart"),
            ],
        )
    };
    assert_eq!(check("https://shop.example/cart").status, 200);
    assert_eq!(check("https://other.example/cart").json()["error"], "invalid_dpop_proof");
    // nginx without a public origin: the URL is unknown, so a DPoP check cannot pass.
    let proof = key
        .proof(
            &ProofRequest::new("GET", "https://shop.example/cart").with_access_token(&bound),
            SystemClock.now(),
        )
        .unwrap();
    let nginx = nginx_sidecar.get(
        "/auth",
        &[("Authorization", &format!("DPoP {bound}")), ("DPoP", &proof), ("X-Original-URI", "/cart")],
    );
    assert_eq!(nginx.json()["error"], "invalid_dpop_proof");
}

/// With a nonce secret the sidecar demands nonces: 401 use_dpop_nonce with a DPoP-Nonce,
/// then the proof carrying it passes; a short secret is a configuration problem (exit 2).
#[test]
fn dpop_nonces_are_demanded_with_a_secret_file() {
    use identity_model::{Clock as _, DpopKey, ProofRequest, SystemClock};
    let p = provider_on(0);
    let secret = write_config(&"s".repeat(32));
    let secret_arg = secret.to_str().unwrap().to_owned();
    let sidecar = sidecar_for(
        &p.provider,
        &["--public-origin", "https://api.example", "--dpop-nonce-secret-file", &secret_arg],
    );
    let key = DpopKey::generate_default().unwrap();
    let bound = p.provider.token().claim("cnf", json!({"jkt": key.thumbprint()})).sign();
    let url = "https://api.example/orders";
    let check = |nonce: Option<&str>| {
        let mut request = ProofRequest::new("GET", url).with_access_token(&bound);
        if let Some(nonce) = nonce {
            request = request.with_nonce(nonce);
        }
        let proof = key.proof(&request, SystemClock.now()).unwrap();
        sidecar.get(
            "/auth",
            &[("Authorization", &format!("DPoP {bound}")), ("DPoP", &proof), ("X-Original-URI", "/orders")],
        )
    };
    let first = check(None);
    assert_eq!(first.status, 401);
    assert_eq!(first.json()["error"], "use_dpop_nonce");
    let nonce = first.header("dpop-nonce").expect("a DPoP-Nonce header").to_owned();
    assert_eq!(check(Some(&nonce)).status, 200);
    assert_eq!(check(Some("made-up")).json()["error"], "use_dpop_nonce");

    let short = write_config("too short");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_idm"))
        .args(["serve", "--issuer", p.provider.issuer(), "--audience", "a", "--allow-http"])
        .args(["--dpop-nonce-secret-file", short.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("dpop_nonce_secret_file"));
}
