//! End to end: Debian's nginx (`nginx-light`) with `auth_request` in front of a tiny upstream,
//! `idm serve` answering its checks, the testkit provider issuing the tokens. The nginx block
//! is README.md's, verbatim (only the three addresses are replaced). Under `CI=true` a missing
//! nginx fails the test; elsewhere the test says loudly that it is skipped.

#![allow(clippy::unwrap_used)] // tests fail loudly by design

mod support;

use std::path::Path;
use std::time::Duration;

use identity_model_testkit::{Endpoint, Rotation, TestProvider};
use support::nginx::nginx_binary;
use support::peer::{Peer, readme_snippet, required, upstream};
use support::{Sidecar, request, until};

/// nginx (master and workers, in their own process group) running README's block.
fn start_nginx(binary: &Path, sidecar: &str, upstream: &str) -> Peer {
    let server =
        readme_snippet("nginx").replace("127.0.0.1:9401", sidecar).replace("127.0.0.1:3000", upstream);
    support::nginx::start(binary, &server, 256)
}

#[test]
fn nginx_auth_request_in_front_of_idm_serve() {
    let Some(nginx) = required("nginx", nginx_binary(), "nginx-light") else { return };
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let provider = runtime.block_on(TestProvider::start()).unwrap();
    let config = support::rules_config(&provider, "", "");
    let sidecar = Sidecar::start(&["--config", config.arg()]);
    until("the sidecar is ready", Duration::from_secs(30), || sidecar.get("/readyz", &[]).status == 200);
    let upstream = upstream();
    let mut nginx = start_nginx(&nginx, &sidecar.addr, &upstream);
    assert!(nginx.survivors().len() >= 2, "a master and a worker: {:?}", nginx.survivors());
    let get = |path: &str, token: Option<&str>| {
        let auth = token.map(|t| format!("Bearer {t}"));
        let headers: Vec<(&str, &str)> = auth.iter().map(|a| ("Authorization", a.as_str())).collect();
        request(&nginx.addr, "GET", path, &headers)
    };

    // A valid token reaches the upstream with the user.
    let valid = provider.token().subject("alice").sign();
    let reply = get("/orders", Some(&valid));
    assert_eq!((reply.status, reply.body.as_str()), (200, "upstream saw alice"), "{reply:?}");

    // A client-sent identity header never reaches the upstream: replaced by the sidecar's,
    // or dropped on an anonymous route.
    let forged = |path: &str, token: Option<&str>| {
        let auth = token.map(|t| format!("Bearer {t}"));
        let mut headers: Vec<(&str, &str)> = auth.iter().map(|a| ("Authorization", a.as_str())).collect();
        headers.push(("X-Auth-Request-User", "root"));
        request(&nginx.addr, "GET", path, &headers)
    };
    assert_eq!(forged("/orders", Some(&valid)).body, "upstream saw alice");
    assert_eq!(forged("/public/x", None).body, "upstream saw -");
    // A client's X-Forwarded-Uri is refused (nginx passes client headers to the check), and
    // so is a target whose readings disagree: 400 through nginx.
    let conflict = request(&nginx.addr, "GET", "/admin/users", &[("X-Forwarded-Uri", "/public/x")]);
    assert_eq!(conflict.status, 400, "{conflict:?}");
    assert_eq!(get("/public/..;/admin", None).status, 400);
    assert_eq!(get("/admin;x", Some(&valid)).status, 400);

    // A key rotation is followed with one key set request (before the forged token below:
    // its failed signature starts the kid-miss cooldown, inside which unknown kids wait).
    let before = provider.requests(Endpoint::Jwks);
    provider.rotate_keys(Rotation::Replace);
    let rotated = provider.token().subject("carol").sign();
    for _ in 0..3 {
        assert_eq!(get("/orders", Some(&rotated)).body, "upstream saw carol");
    }
    assert_eq!(provider.requests(Endpoint::Jwks) - before, 1);

    // Missing, expired, forged, wrong-audience tokens: 401 with the challenge, no upstream.
    let missing = get("/orders", None);
    assert_eq!(missing.status, 401);
    assert_eq!(missing.header("www-authenticate"), Some(r#"Bearer realm="api""#));
    let token = provider.token();
    for (bad, what) in [
        (token.clone().expired().sign(), "expired"),
        (token.clone().tampered_signature(), "forged"),
        (token.clone().audience("https://other.example").sign(), "wrong audience"),
    ] {
        let reply = get("/orders", Some(&bad));
        assert_eq!(reply.status, 401, "{what}: {reply:?}");
        let challenge = reply.header("www-authenticate").unwrap_or_default();
        assert!(challenge.contains(r#"error="invalid_token""#), "{what}: {challenge}");
        assert!(!reply.body.contains("upstream saw"), "{what} reached the upstream");
    }

    // A route that needs a scope the token lacks: 403.
    let forbidden = get("/admin/users", Some(&rotated));
    assert_eq!(forbidden.status, 403, "{forbidden:?}");
    let admin = provider.token().subject("root").claim("scope", "admin").sign();
    assert_eq!(get("/admin/users", Some(&admin)).body, "upstream saw root");

    // The provider stopped, keys cached: valid tokens still pass (a new one: no cache hit).
    provider.shutdown();
    until("the provider is down", Duration::from_secs(30), || {
        std::net::TcpStream::connect(provider.addr()).is_err()
    });
    let after = provider.token().subject("dave").sign();
    assert_eq!(get("/orders", Some(&after)).body, "upstream saw dave");

    // A sidecar started while the provider is down: not ready, and nginx answers 503.
    let down = Sidecar::start(&[
        "--issuer",
        provider.issuer(),
        "--audience",
        provider.default_audience(),
        "--allow-http",
    ]);
    assert_eq!(down.get("/readyz", &[]).status, 503);
    let mut nginx_down = start_nginx(&nginx_binary().unwrap(), &down.addr, &upstream);
    let reply = request(&nginx_down.addr, "GET", "/orders", &[("Authorization", &format!("Bearer {after}"))]);
    assert_eq!(reply.status, 503, "{reply:?}");

    // No process of either nginx survives (the workers used to, listening on their ports).
    for peer in [&mut nginx, &mut nginx_down] {
        let addr = peer.addr.clone();
        peer.stop();
        assert!(peer.survivors().is_empty());
        assert!(std::net::TcpStream::connect(&addr).is_err(), "something still listens on {addr}");
    }
}

/// Traefik and Envoy are not in Debian: their snippets are read and the sidecar is asked the
/// way each forwards a check, as that snippet configures it.
#[test]
fn traefik_and_envoy_snippets_match_what_the_sidecar_does() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let provider = runtime.block_on(TestProvider::start()).unwrap();
    let args = ["--issuer", provider.issuer(), "--audience", provider.default_audience(), "--allow-http"];
    let token =
        format!("Bearer {}", provider.token().subject("erin").claim("email", "erin@example.com").sign());
    let identity = [
        "X-Auth-Request-User",
        "X-Auth-Request-Email",
        "X-Auth-Request-Preferred-Username",
        "X-Auth-Request-Groups",
        "X-Auth-Request-Client-Id",
        "X-Auth-Request-Scope",
        "X-Auth-Request-Issuer",
    ];

    // Traefik: the address's path is the check endpoint; only `authRequestHeaders` and its
    // own X-Forwarded-* reach the sidecar; the regex covers every header the sidecar sets.
    let traefik = readme_snippet("traefik");
    let sidecar = Sidecar::start(&[&args[..], &["--proxy", "traefik"]].concat());
    let address = traefik.lines().find_map(|l| l.trim().strip_prefix("address: ")).unwrap().trim_matches('"');
    let path = address.strip_prefix("http://127.0.0.1:9401").unwrap();
    let forwarded: Vec<&str> = traefik.lines().filter_map(|l| l.trim().strip_prefix("- ")).collect();
    // The credential headers, the preflight's headers, every method override.
    for needed in [
        "Authorization",
        "DPoP",
        "Cookie",
        "Origin",
        "Access-Control-Request-Method",
        "X-HTTP-Method-Override",
        "X-HTTP-Method",
        "X-Method-Override",
    ] {
        assert!(forwarded.contains(&needed), "{needed} not in authRequestHeaders");
    }
    assert!(!forwarded.iter().any(|h| h.eq_ignore_ascii_case("X-Original-URI")));
    let regex = traefik.lines().find_map(|l| l.trim().strip_prefix("authResponseHeadersRegex: ")).unwrap();
    let prefix = regex.trim_matches('"').strip_prefix('^').unwrap();
    let reply = sidecar.get(
        path,
        &[
            ("Authorization", &token),
            ("X-Forwarded-Method", "GET"),
            ("X-Forwarded-Uri", "/x"),
            ("X-Forwarded-Proto", "https"),
            ("X-Forwarded-Host", "api.example"),
        ],
    );
    assert_eq!(reply.status, 200);
    for header in identity {
        assert!(header.starts_with(prefix), "{header} not matched by {regex}");
        assert!(reply.header(header).is_some(), "{header} not set by the sidecar");
    }

    // Envoy: path_prefix + the original path; every identity header is in the answer (empty
    // when the claim is absent), so allowed_upstream_headers replaces a client's copy.
    let envoy = readme_snippet("envoy");
    let sidecar = Sidecar::start(&[&args[..], &["--proxy", "envoy"]].concat());
    let prefix = envoy.lines().find_map(|l| l.trim().strip_prefix("path_prefix: ")).unwrap();
    let pattern = envoy.lines().find_map(|l| l.trim().strip_prefix("- prefix: ")).unwrap();
    for needed in ["dpop", "cookie", "origin", "access-control-request-method", "x-http-method-override"] {
        assert!(envoy.contains(&format!("- exact: {needed}")), "Envoy must forward {needed}");
    }
    let reply = request(&sidecar.addr, "GET", &format!("{prefix}/orders/1"), &[("Authorization", &token)]);
    assert_eq!(reply.status, 200);
    for header in identity {
        let lower = header.to_ascii_lowercase();
        assert!(lower.starts_with(pattern), "{header} not allowed upstream by the snippet");
        assert!(reply.header(header).is_some(), "{header} missing from {reply:?}");
    }
    assert_eq!(reply.header("x-auth-request-user"), Some("erin"));
    assert_eq!(reply.header("x-auth-request-groups"), Some(""));
    let refused = request(&sidecar.addr, "GET", &format!("{prefix}/orders/1"), &[]);
    assert_eq!(refused.status, 401);
}
