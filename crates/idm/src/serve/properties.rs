//! Property tests over what a client controls in a check: any headers (the proxy families,
//! hosts, overrides, cookies, underscore twins) and any original URI. Reading the check,
//! picking its rule, finding its credential and looking for underscore twins end in a value
//! or a typed refusal, never a panic; a rule for a host is only ever picked for that host.

use http::{HeaderMap, HeaderName, HeaderValue, Method};
use proptest::prelude::*;

use super::answer::underscore_twin;
use super::config::RoutePlan;
use super::credential::{TokenSource, find};
use super::proxy::{PROXIES, read};
use super::route::{Routes, normalize_host};

const NAMES: [&str; 16] = [
    "x-original-uri",
    "x-original-method",
    "x-original-host",
    "x-forwarded-uri",
    "x-forwarded-method",
    "x-forwarded-proto",
    "x-forwarded-host",
    "host",
    "x-http-method-override",
    "x-method-override",
    "cookie",
    "authorization",
    "x-token",
    "x-auth-request_user",
    "origin",
    "access-control-request-method",
];

/// Header values: structured pieces a client would try, and arbitrary text.
fn value() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "/admin",
            "/public/..;/admin",
            "/admin/..%2fpublic",
            "/orders?_method=DELETE",
            "/a?_method=%00",
            "https://admin.example/public/x",
            "http://u@admin.example/",
            "admin.example",
            "ADMIN.example.:443",
            "[::1]:80",
            "[",
            "]",
            "POST",
            "delete",
            "D E",
            "session=a; session=b",
            "session=\"t\"",
            "Bearer abc",
            "Bearer",
            "https",
            "*",
        ])
        .prop_map(str::to_owned),
        "[ -~]{0,40}",
        "\\PC{0,20}",
    ]
}

fn rule(prefix: &str, methods: Vec<Method>, host: Option<&str>, anonymous: bool) -> RoutePlan {
    RoutePlan {
        prefix: prefix.to_owned(),
        methods,
        scopes: if anonymous { vec![] } else { vec!["s".to_owned()] },
        any_scopes: vec![],
        anonymous,
        token_sources: None,
        host: host.and_then(normalize_host),
        claim_rules: vec![],
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn no_check_a_client_can_send_panics_or_escapes_a_host_rule(
        pairs in prop::collection::vec((prop::sample::select(NAMES.to_vec()), value()), 0..8),
        envoy_target in prop::option::of(value()),
        method in prop::sample::select(vec!["GET", "POST", "OPTIONS", "HEAD", "DELETE"]),
    ) {
        let mut headers = HeaderMap::new();
        for (name, text) in &pairs {
            if let Ok(value) = HeaderValue::from_str(text) {
                headers.append(HeaderName::from_static(name), value);
            }
        }
        let routes = Routes::new(vec![
            rule("/", vec![], Some("admin.example"), false),
            rule("/admin", vec![], None, false),
            rule("/public", vec![], None, true),
            rule("/orders", vec![Method::POST, Method::DELETE], None, false),
        ]);
        let sources = [
            TokenSource::Authorization,
            TokenSource::Cookie("session".to_owned()),
            TokenSource::Header(HeaderName::from_static("x-token")),
            TokenSource::Query("access_token".to_owned()),
        ];
        let check_method = Method::from_bytes(method.as_bytes()).unwrap_or(Method::GET);
        for proxy in PROXIES {
            let Ok(original) = read(proxy, &check_method, &headers, envoy_target.as_deref()) else { continue };
            let _ = original.methods().count();
            if let Ok(Some(i)) = routes.select(&original) {
                let picked = &routes.rules()[i];
                if let Some(host) = &picked.host {
                    prop_assert_eq!(original.host.as_deref(), Some(host.as_str()));
                }
            }
            let _ = find(&sources, &headers, original.target.as_deref());
            let _ = find(&sources[1..2], &headers, original.target.as_deref());
        }
        let _ = underscore_twin(&headers, &[]);
    }
}
