//! `idm serve` (issue 22): tokens from a cookie, a header or (dangerously) the query, exactly
//! one credential per check; CORS preflights let through without a token, and only those.

#![allow(clippy::unwrap_used)] // tests fail loudly by design

mod support;

use support::{Sidecar, issuer_config as config, metric, provider_on};

#[test]
fn tokens_from_a_cookie_a_header_or_the_query_and_never_two() {
    let p = provider_on(0);
    let file = config(
        &p.provider,
        r#"
[[route]]
prefix = "/app"
token_from = ["cookie:session"]

[[route]]
prefix = "/api"
token_from = ["authorization", "header:X-Api-Token"]

[[route]]
prefix = "/download"
token_from = []
dangerous_token_from_query = "access_token"
"#,
    );
    let sidecar = Sidecar::start(&["--config", file.arg()]);
    let token = p.provider.token().subject("alice").sign();
    let bearer = format!("Bearer {token}");
    let check = |uri: &str, headers: &[(&str, &str)]| {
        let mut all = vec![("X-Original-URI", uri), ("X-Original-Method", "GET")];
        all.extend_from_slice(headers);
        sidecar.get("/auth", &all)
    };
    let session = format!("theme=dark; session={token}");
    let cookie = check("/app/home", &[("Cookie", &session)]);
    assert_eq!((cookie.status, cookie.header("x-auth-request-user")), (200, Some("alice")), "{cookie:?}");
    // The rule looks in the cookie only: a lone Authorization header is no token there.
    assert_eq!(check("/app/home", &[("Authorization", &bearer)]).json()["error"], "missing_token");
    let two = check("/app/home", &[("Cookie", &session), ("Authorization", &bearer)]);
    assert_eq!((two.status, two.json()["error"].as_str()), (400, Some("multiple_credentials")), "{two:?}");
    let tossed = format!("session={token}; session=other");
    assert_eq!(check("/app/home", &[("Cookie", &tossed)]).status, 400);
    let expired = format!("session={}", p.provider.token().expired().sign());
    assert_eq!(check("/app/home", &[("Cookie", &expired)]).json()["error"], "token_expired");

    assert_eq!(check("/api/x", &[("X-Api-Token", &token)]).status, 200);
    assert_eq!(check("/api/x", &[("Authorization", &bearer)]).status, 200);
    let both = check("/api/x", &[("X-Api-Token", &token), ("Authorization", &bearer)]);
    assert_eq!(both.json()["error"], "multiple_credentials");

    assert_eq!(check(&format!("/download/f?access_token={token}"), &[]).status, 200);
    assert_eq!(check("/download/f", &[]).status, 401);
    let twice = format!("/download/f?access_token={token}&access_token={token}");
    assert_eq!(check(&twice, &[]).status, 400);
    // The default rule keeps the Authorization header only: a query token is not looked at.
    assert_eq!(check(&format!("/other?access_token={token}"), &[]).json()["error"], "missing_token");
    assert_eq!(check("/other", &[("Authorization", &bearer)]).status, 200);

    let metrics = sidecar.get("/metrics", &[]).body;
    let refused = r#"idm_serve_checks_total{mode="nginx",status="400",kind="multiple_credentials"}"#;
    assert_eq!(metric(&metrics, refused), Some(2.0));
}

#[test]
fn cors_preflights_pass_without_a_token_and_nothing_else_does() {
    let p = provider_on(0);
    let file = config(&p.provider, "[[route]]\nprefix = \"/admin\"\nscopes = [\"admin\"]\n");
    let sidecar = Sidecar::start(&["--config", file.arg()]);
    let check = |method: &str, extra: &[(&str, &str)]| {
        let mut headers = vec![("X-Original-URI", "/admin/users"), ("X-Original-Method", method)];
        headers.extend_from_slice(extra);
        sidecar.get("/auth", &headers)
    };
    let preflight = [("Origin", "https://app.example"), ("Access-Control-Request-Method", "DELETE")];
    let passed = check("OPTIONS", &preflight);
    assert_eq!(passed.status, 200, "{passed:?}");
    assert_eq!(passed.header("x-auth-request-user"), Some(""), "no identity rides along");
    // Not a preflight: a method override, a credential, a missing header, another method.
    let overridden = [preflight[0], preflight[1], ("X-HTTP-Method-Override", "DELETE")];
    assert_eq!(check("OPTIONS", &overridden).status, 401);
    let token = format!("Bearer {}", p.provider.token().sign());
    assert_eq!(check("OPTIONS", &[preflight[0], preflight[1], ("Authorization", &token)]).status, 403);
    assert_eq!(check("OPTIONS", &[preflight[0], preflight[1], ("Cookie", "a=b")]).status, 401);
    assert_eq!(check("OPTIONS", &preflight[..1]).status, 401);
    assert_eq!(check("DELETE", &preflight).status, 401);
    let metrics = sidecar.get("/metrics", &[]).body;
    assert_eq!(
        metric(&metrics, r#"idm_serve_checks_total{mode="nginx",status="200",kind="cors_preflight"}"#),
        Some(1.0)
    );

    let strict = Sidecar::start(&["--config", file.arg(), "--no-cors-preflight"]);
    let headers =
        [("X-Original-URI", "/admin/users"), ("X-Original-Method", "OPTIONS"), preflight[0], preflight[1]];
    assert_eq!(strict.get("/auth", &headers).status, 401);
}

#[test]
fn bad_token_sources_are_configuration_problems() {
    let p = provider_on(0);
    let file = config(
        &p.provider,
        "token_from = [\"cookie\", \"header:bad header\"]\n\n[[route]]\nprefix = \"/x\"\ntoken_from = []\n",
    );
    let stderr = support::config_problems(&file);
    for expected in
        ["token source \"cookie\"", "token source \"header:bad header\"", "route \"/x\": token_from is empty"]
    {
        assert!(stderr.contains(expected), "{expected} in {stderr}");
    }
}
