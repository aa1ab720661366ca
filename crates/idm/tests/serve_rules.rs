//! `idm serve` (issue 22): claim rules per route beside scopes (equal, one of, contains any or
//! all; dotted paths into nested claims), host rules, and claim headers by dotted path.

#![allow(clippy::unwrap_used)] // tests fail loudly by design

mod support;

use serde_json::json;
use support::{Sidecar, issuer_config, metric, provider_on};

#[test]
fn claim_rules_refuse_with_insufficient_claims_and_scopes_keep_their_challenge() {
    let p = provider_on(0);
    let file = issuer_config(
        &p.provider,
        r#"
[[route]]
prefix = "/admin"
scopes = ["api"]
claim_rules = [
  { claim = "realm_access.roles", contains_any = ["admin", "root"] },
  { claim = "tenant", one_of = ["acme", "globex"] },
]

[[route]]
prefix = "/ops"
claim_rules = [{ claim = "groups", contains_all = ["ops", "oncall"] }, { claim = "level", equals = 3 }]

[claims]
"realm_access.roles" = "X-Roles"
"org.name" = "X-Org"
"#,
    );
    let sidecar = Sidecar::start(&["--config", file.arg()]);
    let check = |uri: &str, token: &str| {
        let auth = format!("Bearer {token}");
        sidecar
            .get("/auth", &[("X-Original-URI", uri), ("X-Original-Method", "GET"), ("Authorization", &auth)])
    };
    let token = |claims: serde_json::Value| {
        let mut builder = p.provider.token();
        for (name, value) in claims.as_object().unwrap() {
            builder = builder.claim(name, value.clone());
        }
        builder.sign()
    };
    let admin = token(json!({
        "scope": "api", "tenant": "acme", "realm_access": {"roles": ["user", "admin"]}, "org": {"name": "Acme"},
    }));
    let allowed = check("/admin/x", &admin);
    assert_eq!(allowed.status, 200, "{allowed:?}");
    assert_eq!(allowed.header("x-roles"), Some("user,admin"));
    assert_eq!(allowed.header("x-org"), Some("Acme"));

    let user = token(json!({"scope": "api", "tenant": "acme", "realm_access": {"roles": ["user"]}}));
    let refused = check("/admin/x", &user);
    assert_eq!(refused.status, 403);
    assert_eq!(refused.json()["error"], "insufficient_claims");
    assert_eq!(refused.header("www-authenticate"), Some(r#"Bearer realm="api""#), "no insufficient_scope");
    assert!(refused.json()["message"].as_str().unwrap().contains("realm_access.roles"));
    let other_tenant =
        token(json!({"scope": "api", "tenant": "initech", "realm_access": {"roles": ["admin"]}}));
    assert_eq!(check("/admin/x", &other_tenant).json()["error"], "insufficient_claims");
    // Scopes are judged first, and keep their challenge.
    let no_scope = token(json!({"tenant": "acme", "realm_access": {"roles": ["admin"]}}));
    let scope = check("/admin/x", &no_scope);
    assert_eq!(scope.json()["error"], "insufficient_scope");
    assert!(scope.header("www-authenticate").unwrap().contains(r#"error="insufficient_scope""#));

    assert_eq!(check("/ops", &token(json!({"groups": ["ops", "oncall", "dev"], "level": 3}))).status, 200);
    assert_eq!(check("/ops", &token(json!({"groups": ["ops"], "level": 3}))).status, 403);
    assert_eq!(check("/ops", &token(json!({"groups": ["ops", "oncall"], "level": "3"}))).status, 403);
    assert_eq!(check("/ops", &token(json!({"groups": "ops oncall", "level": 3}))).status, 403);
    // The default rule has no claim rules.
    assert_eq!(check("/other", &user).status, 200);

    let metrics = sidecar.get("/metrics", &[]).body;
    let counted = r#"idm_serve_checks_total{mode="nginx",status="403",kind="insufficient_claims"}"#;
    assert_eq!(metric(&metrics, counted), Some(5.0));
}

#[test]
fn host_rules_apply_to_their_host_only() {
    let p = provider_on(0);
    let file = issuer_config(
        &p.provider,
        "[[route]]\nhost = \"admin.example\"\nprefix = \"/\"\nscopes = [\"admin\"]\n\n\
         [[route]]\nprefix = \"/public\"\nanonymous = true\n",
    );
    for proxy in ["nginx", "traefik"] {
        let sidecar = Sidecar::start(&["--config", file.arg(), "--proxy", proxy]);
        let check = |host: Option<&str>| {
            let (uri, method, host_header) = match proxy {
                "nginx" => ("X-Original-URI", "X-Original-Method", "X-Original-Host"),
                _ => ("X-Forwarded-Uri", "X-Forwarded-Method", "X-Forwarded-Host"),
            };
            let mut headers = vec![(uri, "/public/page"), (method, "GET")];
            if let Some(host) = host {
                headers.push((host_header, host));
            }
            sidecar.get("/auth", &headers)
        };
        assert_eq!(check(Some("www.example")).status, 200, "{proxy}");
        assert_eq!(check(Some("admin.example")).status, 401, "{proxy}: the host's rule, not /public");
        assert_eq!(check(Some("Admin.Example:443")).status, 401, "{proxy}");
        assert_eq!(check(None).status, 400, "{proxy}: no host, no guessing");
    }
    let envoy = Sidecar::start(&["--config", file.arg(), "--proxy", "envoy"]);
    let reply = support::request(&envoy.addr, "GET", "/ext-authz/public/page", &[("Host", "admin.example")]);
    assert_eq!(reply.status, 401);
}

#[test]
fn bad_rules_are_configuration_problems() {
    let p = provider_on(0);
    let file = issuer_config(
        &p.provider,
        "[[route]]\nprefix = \"/a\"\nhost = \"a/b\"\nclaim_rules = [{ claim = \"x\" }]\n\n\
         [[route]]\nprefix = \"/b\"\nanonymous = true\nclaim_rules = [{ claim = \"x\", equals = 1 }]\n",
    );
    let stderr = support::config_problems(&file);
    for expected in ["host \"a/b\"", "exactly one of equals", "anonymous and has claim rules"] {
        assert!(stderr.contains(expected), "{expected} in {stderr}");
    }
}

#[test]
fn protected_resource_metadata_is_served_and_named_in_every_challenge() {
    let p = provider_on(0);
    let file = issuer_config(
        &p.provider,
        "[resource_metadata]\nresource = \"https://api.example/mcp\"\nscopes_supported = [\"tools:read\"]\n\
         resource_name = \"Tools\"\n\n[[route]]\nprefix = \"/mcp\"\nscopes = [\"tools:read\"]\n\
         claim_rules = [{ claim = \"tenant\", equals = \"acme\" }]\n",
    );
    let sidecar = Sidecar::start(&["--config", file.arg()]);
    let document = sidecar.get("/.well-known/oauth-protected-resource/mcp", &[]);
    assert_eq!(document.status, 200);
    let body = document.json();
    assert_eq!(body["resource"], "https://api.example/mcp");
    assert_eq!(body["authorization_servers"], json!([p.provider.issuer()]));
    assert_eq!(body["scopes_supported"], json!(["tools:read"]));
    assert_eq!(body["bearer_methods_supported"], json!(["header"]));
    assert_eq!(body["resource_name"], "Tools");
    assert!(body["dpop_signing_alg_values_supported"].as_array().unwrap().contains(&json!("ES256")));
    assert_eq!(sidecar.get("/.well-known/oauth-protected-resource", &[]).status, 404);

    let expected = r#"resource_metadata="https://api.example/.well-known/oauth-protected-resource/mcp""#;
    let check = |uri: &str, auth: Option<&str>| {
        let mut headers = vec![("X-Original-URI", uri), ("X-Original-Method", "GET")];
        if let Some(auth) = auth {
            headers.push(("Authorization", auth));
        }
        sidecar.get("/auth", &headers)
    };
    let missing = check("/mcp", None);
    assert_eq!(missing.status, 401);
    assert!(missing.header("www-authenticate").unwrap().ends_with(expected), "{missing:?}");
    let unscoped = format!("Bearer {}", p.provider.token().sign());
    let scope = check("/mcp", Some(&unscoped));
    assert!(scope.header("www-authenticate").unwrap().contains(expected), "{scope:?}");
    let scoped = format!("Bearer {}", p.provider.token().claim("scope", "tools:read").sign());
    let claims = check("/mcp", Some(&scoped));
    assert_eq!(claims.json()["error"], "insufficient_claims");
    assert!(claims.header("www-authenticate").unwrap().ends_with(expected), "{claims:?}");
    // The document is public through the proxy too: a check for its path passes without a token.
    assert_eq!(check("/.well-known/oauth-protected-resource/mcp", None).status, 200);

    let flag_only = support::sidecar_for(&p.provider, &["--resource-metadata", "https://api.example"]);
    let root = flag_only.get("/.well-known/oauth-protected-resource", &[]).json();
    assert_eq!(root["resource"], "https://api.example");
    let refused = flag_only.get("/auth", &[("X-Original-URI", "/")]);
    assert!(
        refused
            .header("www-authenticate")
            .unwrap()
            .contains(r#"resource_metadata="https://api.example/.well-known/oauth-protected-resource""#)
    );

    let bad = issuer_config(&p.provider, "[resource_metadata]\nresource = \"http://api.example\"\n");
    assert!(support::config_problems(&bad).contains("resource_metadata"));
}
