//! Route rules: which rule a check falls under. A rule holds a path prefix (on segment
//! boundaries) and the methods it covers. The original path is read the ways the servers
//! behind a proxy read paths ([`PathReading`]) and the original method with every spelling
//! and override it may have; when these readings fall under different rules the check is
//! refused (400 `ambiguous_target`): an upstream could route it under a weaker rule than the
//! one the sidecar picked.

use http::Method;
use identity_model::{PATH_READINGS, PathReading, canonical_path, single_reading};

use super::config::RoutePlan;
use super::proxy::{BadCheck, BadCheckKind, Original};

/// The route rules, most specific first.
#[derive(Debug, Clone)]
pub(crate) struct Routes {
    rules: Vec<RoutePlan>,
}

/// Which rule a check falls under: a route's index, or the default rule.
pub(crate) type Choice = Option<usize>;

impl Routes {
    /// Orders `rules` most specific first: the longest prefix, then a rule naming methods
    /// before one that takes any; equal rules keep the file's order. A rule naming `GET`
    /// covers `HEAD` too (frameworks answer HEAD with the GET handler).
    pub(crate) fn new(mut rules: Vec<RoutePlan>) -> Routes {
        for rule in &mut rules {
            if rule.methods.contains(&Method::GET) && !rule.methods.contains(&Method::HEAD) {
                rule.methods.push(Method::HEAD);
            }
        }
        // A rule for a host before one for any host (as a server block before a location),
        // then the longest prefix, then one naming methods.
        rules.sort_by_key(|rule| {
            (rule.host.is_none(), std::cmp::Reverse(rule.prefix.len()), rule.methods.is_empty())
        });
        Routes { rules }
    }

    pub(crate) fn rules(&self) -> &[RoutePlan] {
        &self.rules
    }

    /// The rule for one canonical path and method on `host`.
    fn pick(&self, path: &str, method: &Method, host: Option<&str>) -> Choice {
        self.rules.iter().position(|rule| {
            under(path, &rule.prefix)
                && (rule.methods.is_empty() || rule.methods.contains(method))
                && rule.host.as_deref().is_none_or(|wanted| host == Some(wanted))
        })
    }

    /// The rule for `original`, the same under every reading of its path and method, or why
    /// not. Without rules every check gets the default one (its path is still checked).
    pub(crate) fn select(&self, original: &Original<'_>) -> Result<Choice, BadCheck> {
        let Some(path) = original.path else {
            if self.rules.is_empty() {
                return Ok(None);
            }
            return Err(BadCheck::invalid(format!(
                "the {} check does not say which URI it is about, so route rules cannot be applied",
                original.proxy.as_str()
            )));
        };
        let unusable = |e: identity_model::TargetError| BadCheck::invalid(format!("the original URI: {e}"));
        let canonical = canonical_path(path, PathReading::Decoded).map_err(unusable)?;
        if self.rules.is_empty() {
            return Ok(None);
        }
        let host = original.host.as_deref();
        if host.is_none() && self.rules.iter().any(|rule| rule.host.is_some()) {
            return Err(BadCheck::invalid(format!(
                "the {} check does not say which host it is about, so host rules cannot be applied",
                original.proxy.as_str()
            )));
        }
        let first = self.pick(&canonical, &original.method, host);
        let mut readings = vec![(PathReading::Decoded, canonical)];
        if !single_reading(path) {
            for reading in &PATH_READINGS[1..] {
                readings.push((*reading, canonical_path(path, *reading).map_err(unusable)?));
            }
        }
        for (reading, text) in &readings {
            for method in original.methods() {
                let choice = self.pick(text, method, host);
                if choice != first {
                    return Err(BadCheck {
                        kind: BadCheckKind::AmbiguousTarget,
                        message: format!(
                            "{} {} falls under {} while {method} {text} ({reading:?} reading) falls under {}: \
                             servers may route it either way, so it is refused",
                            original.method,
                            readings[0].1,
                            self.describe(first),
                            self.describe(choice),
                        ),
                    });
                }
            }
        }
        Ok(first)
    }

    /// A rule's name in messages and logs: its prefix, or `default`.
    pub(crate) fn describe(&self, choice: Choice) -> String {
        match choice {
            Some(i) => match &self.rules[i].host {
                Some(host) => format!("route {host}{}", self.rules[i].prefix),
                None => format!("route {}", self.rules[i].prefix),
            },
            None => "the default rule".to_owned(),
        }
    }
}

/// A host as rules compare it: lower-case, without a port or a trailing dot (`None` when
/// `text` is not a host name: empty, or holding a scheme, path, space or wildcard).
pub(crate) fn normalize_host(text: &str) -> Option<String> {
    let text = text.trim();
    let host = match text.strip_prefix('[') {
        Some(rest) => &text[..rest.find(']')? + 2], // [v6] (a port after it is dropped)
        None => text.split(':').next()?,
    };
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    let usable = !host.is_empty()
        && host.bytes().all(|b| b.is_ascii_alphanumeric() || b"-.[]:".contains(&b))
        && (text.starts_with('[') || text.matches(':').count() <= 1);
    usable.then_some(host)
}

/// Whether `path` lies under `prefix` on a segment boundary (`/api` holds `/api` and `/api/x`,
/// not `/apix`); both canonical.
pub(crate) fn under(path: &str, prefix: &str) -> bool {
    let prefix = prefix.trim_end_matches('/');
    prefix.is_empty()
        || path == prefix
        || (path.starts_with(prefix) && path.as_bytes().get(prefix.len()) == Some(&b'/'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::serve::proxy::{Proxy, read};
    use http::HeaderMap;

    fn rule(prefix: &str, methods: &[Method], anonymous: bool) -> RoutePlan {
        RoutePlan {
            prefix: prefix.to_owned(),
            methods: methods.to_vec(),
            scopes: if anonymous { vec![] } else { vec![format!("{prefix}:scope")] },
            any_scopes: vec![],
            anonymous,
            token_sources: None,
            host: None,
            claim_rules: vec![],
        }
    }

    /// The rules: `/admin` -> admin, `/public` anonymous, `/orders` POST and DELETE.
    fn routes() -> Routes {
        Routes::new(vec![
            rule("/admin", &[], false),
            rule("/public", &[], true),
            rule("/orders", &[Method::POST, Method::DELETE], false),
        ])
    }

    fn choose(
        proxy: Proxy,
        method: &str,
        target: &str,
        extra: &[(&'static str, &str)],
    ) -> Result<String, String> {
        let routes = routes();
        let mut headers = HeaderMap::new();
        let check_method = match proxy {
            Proxy::Envoy => Method::from_bytes(method.as_bytes()).unwrap(),
            Proxy::Nginx => {
                headers.insert("x-original-uri", target.parse().unwrap());
                headers.insert("x-original-method", method.parse().unwrap());
                Method::GET
            }
            Proxy::Traefik | Proxy::Caddy => {
                headers.insert("x-forwarded-uri", target.parse().unwrap());
                headers.insert("x-forwarded-method", method.parse().unwrap());
                Method::GET
            }
        };
        for (name, value) in extra {
            headers.append(*name, value.parse().unwrap());
        }
        let envoy = (proxy == Proxy::Envoy).then_some(target);
        let original = read(proxy, &check_method, &headers, envoy).map_err(|e| e.kind.as_str().to_owned())?;
        routes.select(&original).map(|choice| routes.describe(choice)).map_err(|e| e.kind.as_str().to_owned())
    }

    #[test]
    fn host_rules_come_first_and_need_a_host() {
        let mut admin = rule("/", &[], false);
        admin.host = normalize_host("Admin.Example.");
        let routes = Routes::new(vec![rule("/public", &[], true), admin]);
        let pick = |proxy: Proxy, pairs: &[(&'static str, &str)], envoy: Option<&str>| {
            let mut headers = HeaderMap::new();
            for (name, value) in pairs {
                headers.append(*name, value.parse().unwrap());
            }
            let original =
                read(proxy, &Method::GET, &headers, envoy).map_err(|e| e.kind.as_str().to_owned())?;
            routes.select(&original).map(|c| routes.describe(c)).map_err(|e| e.kind.as_str().to_owned())
        };
        let nginx = |host: &str| {
            pick(Proxy::Nginx, &[("x-original-uri", "/public/x"), ("x-original-host", host)], None)
        };
        // On the admin host even /public falls under the host's rule; elsewhere it is public.
        assert_eq!(nginx("admin.example:8443").unwrap(), "route admin.example/");
        assert_eq!(nginx("ADMIN.example").unwrap(), "route admin.example/");
        assert_eq!(nginx("www.example").unwrap(), "route /public");
        assert_eq!(nginx("a b").unwrap_err(), "invalid_request");
        // Without a host, host rules cannot be applied: refused, not the weaker rule.
        assert_eq!(
            pick(Proxy::Nginx, &[("x-original-uri", "/public/x")], None).unwrap_err(),
            "invalid_request"
        );
        let forwarded = [("x-forwarded-uri", "/public/x"), ("x-forwarded-host", "admin.example")];
        assert_eq!(pick(Proxy::Traefik, &forwarded, None).unwrap(), "route admin.example/");
        // Envoy's check carries the original Host; nginx's own Host is the sidecar's.
        assert_eq!(
            pick(Proxy::Envoy, &[("host", "admin.example")], Some("/public/x")).unwrap(),
            "route admin.example/"
        );
        let nginx_host = [("x-original-uri", "/public/x"), ("host", "admin.example")];
        assert_eq!(pick(Proxy::Nginx, &nginx_host, None).unwrap_err(), "invalid_request");
        // An absolute-form original URI names a host too: one that is not the original host
        // (a proxy that routes by the request line but reports the Host header) is refused.
        let absolute = |uri: &str, host: &str| {
            pick(Proxy::Nginx, &[("x-original-uri", uri), ("x-original-host", host)], None)
        };
        assert_eq!(absolute("http://admin.example/public/x", "www.example").unwrap_err(), "ambiguous_target");
        assert_eq!(
            absolute("https://www.example/public/x", "admin.example").unwrap_err(),
            "ambiguous_target"
        );
        assert_eq!(
            absolute("https://u@admin.example/public/x", "admin.example").unwrap_err(),
            "invalid_request"
        );
        assert_eq!(
            absolute("https://ADMIN.example:443/public/x", "admin.example").unwrap(),
            "route admin.example/"
        );
        assert_eq!(absolute("http://www.example/public/x", "www.example:80").unwrap(), "route /public");
        for (text, normalized) in
            [("[::1]:80", Some("[::1]")), ("h:1", Some("h")), ("", None), ("*.x", None), ("a/b", None)]
        {
            assert_eq!(normalize_host(text).as_deref(), normalized, "{text}");
        }
    }

    #[test]
    fn tricky_targets_never_reach_a_weaker_rule() {
        let admin = Ok("route /admin".to_owned());
        let public = Ok("route /public".to_owned());
        let orders = Ok("route /orders".to_owned());
        let default = Ok("the default rule".to_owned());
        let ambiguous = Err("ambiguous_target".to_owned());
        let invalid = Err("invalid_request".to_owned());
        let table: Vec<(&str, &str, Result<String, String>)> = vec![
            // Plain.
            ("GET", "/admin/users", admin.clone()),
            ("GET", "/public/x", public.clone()),
            ("GET", "/publicity", default.clone()),
            ("GET", "/orders/1", default.clone()),
            ("DELETE", "/orders/1", orders.clone()),
            // Defect 2: `://` is special only in an absolute-form target.
            ("GET", "/admin/x://y/public", admin.clone()),
            ("GET", "/admin/proxy/https://example.org/", admin.clone()),
            ("GET", "http://api.example/admin/users", admin.clone()),
            ("GET", "HTTPS://api.example/public/x", public.clone()),
            ("GET", "http://api.example", default.clone()),
            ("GET", "ftp://x/public", invalid.clone()),
            ("GET", "public", invalid.clone()),
            // Defect 3: path parameters.
            ("GET", "/admin;x", ambiguous.clone()),
            ("GET", "/admin;jsessionid=0/users", ambiguous.clone()),
            ("GET", "/public/..;/admin", ambiguous.clone()),
            ("GET", "/admin/..;/public", ambiguous.clone()),
            ("GET", "/public/x;v=1", public.clone()),
            ("GET", "/admin/x;v=1", admin.clone()),
            ("GET", "/admin%3bx", ambiguous.clone()),
            // Defect 4: every spelling of a method.
            ("delete", "/orders/1", orders.clone()),
            ("Delete", "/orders/1", orders.clone()),
            ("post", "/orders", orders.clone()),
            // Kept: dot segments, encoded slashes and dots, double slashes, NUL, backslash.
            ("GET", "/public/../admin", admin.clone()),
            ("GET", "/public/..%2fadmin", ambiguous.clone()),
            ("GET", "/public/%2e%2e/admin", ambiguous.clone()),
            ("GET", "/admin/..%2fpublic", ambiguous.clone()),
            ("GET", "/admin/%2e%2e/public", ambiguous.clone()),
            ("GET", "//admin", admin.clone()),
            ("GET", "/public//..//admin", ambiguous.clone()),
            ("GET", "/admin//..//public", ambiguous.clone()),
            ("GET", "/%61dmin", admin.clone()),
            ("GET", "/a%00b", invalid.clone()),
            ("GET", "/a\\b", invalid.clone()),
            ("GET", "/a%5Cb", invalid.clone()),
            ("GET", "/%zz", invalid.clone()),
            ("GET", "/public/x#/../../admin", invalid.clone()),
        ];
        for proxy in [Proxy::Nginx, Proxy::Traefik, Proxy::Caddy, Proxy::Envoy] {
            for (method, target, want) in &table {
                // Envoy's path always starts after /ext-authz: an absolute form cannot reach it.
                if proxy == Proxy::Envoy && !target.starts_with('/') {
                    continue;
                }
                let got = choose(proxy, method, target, &[]);
                assert_eq!(&got, want, "{} {method} {target}", proxy.as_str());
            }
        }
    }

    #[test]
    fn head_and_method_overrides_are_judged_as_the_methods_they_run() {
        let routes = Routes::new(vec![
            rule("/reports", &[Method::GET], false),
            rule("/orders", &[Method::DELETE], false),
        ]);
        let mut headers = HeaderMap::new();
        headers.insert("x-original-uri", "/reports/1".parse().unwrap());
        headers.insert("x-original-method", "HEAD".parse().unwrap());
        let original = read(Proxy::Nginx, &Method::GET, &headers, None).unwrap();
        assert_eq!(routes.select(&original), Ok(Some(0)), "HEAD is under the GET rule");

        // POST with an override to DELETE: the DELETE rule would be skipped.
        assert_eq!(
            choose(Proxy::Nginx, "POST", "/orders/1", &[("x-http-method-override", "DELETE")]),
            Ok("route /orders".to_owned()),
            "the /orders rule of the issue covers both"
        );
        let mut headers = HeaderMap::new();
        headers.insert("x-original-uri", "/orders/1".parse().unwrap());
        headers.insert("x-original-method", "POST".parse().unwrap());
        headers.insert("x-http-method-override", "delete".parse().unwrap());
        let original = read(Proxy::Nginx, &Method::GET, &headers, None).unwrap();
        assert_eq!(routes.select(&original).unwrap_err().kind, BadCheckKind::AmbiguousTarget);

        // `_method` in the query string (Rails, Laravel, Symfony form method spoofing,
        // Express's method-override with a query getter): judged the same way.
        let spoofed = |target: &str| {
            let mut headers = HeaderMap::new();
            headers.insert("x-original-uri", target.parse().unwrap());
            headers.insert("x-original-method", "POST".parse().unwrap());
            read(Proxy::Nginx, &Method::GET, &headers, None).and_then(|original| routes.select(&original))
        };
        assert_eq!(spoofed("/orders/1?_method=delete").unwrap_err().kind, BadCheckKind::AmbiguousTarget);
        assert_eq!(spoofed("/orders/1?a=1&_method=DELETE").unwrap_err().kind, BadCheckKind::AmbiguousTarget);
        assert_eq!(spoofed("/orders/1?_method=D%20E").unwrap_err().kind, BadCheckKind::InvalidRequest);
        assert_eq!(spoofed("/orders/1?_method=POST"), Ok(None), "the same method: no other rule");
        assert_eq!(spoofed("/orders/1?x_method=DELETE"), Ok(None));
        let empty = HeaderMap::new();
        let envoy = read(Proxy::Envoy, &Method::POST, &empty, Some("/orders/1?_method=delete")).unwrap();
        assert_eq!(routes.select(&envoy).unwrap_err().kind, BadCheckKind::AmbiguousTarget);
    }

    #[test]
    fn without_a_reported_uri_only_rule_free_configurations_pass() {
        let empty = HeaderMap::new();
        let original = read(Proxy::Nginx, &Method::GET, &empty, None).unwrap();
        assert_eq!(Routes::new(vec![]).select(&original), Ok(None));
        assert_eq!(routes().select(&original).unwrap_err().kind, BadCheckKind::InvalidRequest);
    }

    #[test]
    fn segment_boundaries() {
        assert!(under("/api", "/api"));
        assert!(under("/api/x", "/api"));
        assert!(under("/api/x", "/api/"));
        assert!(!under("/apix", "/api"));
        assert!(under("/anything", "/"));
    }
}
