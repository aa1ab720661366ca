//! The original request a forward-auth check is about, read by the one protocol of the proxy
//! the check came from. The protocol is chosen by configuration (`--proxy`) or by the check's
//! endpoint, never guessed from headers a client can send: a check that carries the other
//! family's original-request headers is refused, since only a client can have put them there.

use std::borrow::Cow;

use http::{HeaderMap, HeaderValue, Method};
use identity_model::RequestTarget;

/// The proxy protocols.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Proxy {
    /// nginx `auth_request`: `X-Original-Method`, `X-Original-URI`.
    Nginx,
    /// Traefik `forwardAuth`: `X-Forwarded-Method`, `-Proto`, `-Host`, `-Uri`.
    Traefik,
    /// Caddy `forward_auth`: the same `X-Forwarded-*` family as Traefik.
    Caddy,
    /// Envoy `ext_authz` HTTP service: the check's own method and the path under `/ext-authz`.
    Envoy,
}

/// Every protocol, in metric-slot order.
pub(crate) const PROXIES: [Proxy; 4] = [Proxy::Nginx, Proxy::Traefik, Proxy::Caddy, Proxy::Envoy];

/// nginx's original-request headers.
const NGINX_FAMILY: [&str; 2] = ["x-original-uri", "x-original-method"];
/// Traefik's and Caddy's original-request headers.
const FORWARDED_FAMILY: [&str; 2] = ["x-forwarded-uri", "x-forwarded-method"];
/// Headers with which frameworks (Laravel, Symfony, Express's method-override, ASP.NET, ...)
/// let a request name another method: a rule must hold for that method too.
const METHOD_OVERRIDES: [&str; 3] = ["x-http-method-override", "x-http-method", "x-method-override"];
/// The query parameter with which Rails, Laravel, Symfony and Express's method-override (query
/// getter) let a form name another method. (A form body's `_method` is not seen by a
/// forward-auth check: see docs/SERVE.md.)
const METHOD_PARAMETER: &str = "_method";

impl Proxy {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Proxy::Nginx => "nginx",
            Proxy::Traefik => "traefik",
            Proxy::Caddy => "caddy",
            Proxy::Envoy => "envoy",
        }
    }

    pub(crate) fn parse(name: &str) -> Option<Proxy> {
        PROXIES.into_iter().find(|p| p.as_str() == name)
    }

    /// The slot of this protocol in per-protocol metric arrays.
    pub(crate) fn slot(self) -> usize {
        self as usize
    }

    /// The headers that name the original URI and method for this protocol.
    fn own_family(self) -> Option<[&'static str; 2]> {
        match self {
            Proxy::Nginx => Some(NGINX_FAMILY),
            Proxy::Traefik | Proxy::Caddy => Some(FORWARDED_FAMILY),
            Proxy::Envoy => None,
        }
    }
}

/// Why a check cannot be judged (400).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BadCheckKind {
    /// The proxy's report of the request is unusable (bad target, method, a header twice).
    InvalidRequest,
    /// The check carries another proxy family's original-request headers.
    ProxyHeaderConflict,
    /// The path or method reads differently to different servers, under different rules.
    AmbiguousTarget,
    /// A token in more than one place (header, cookie, query).
    MultipleCredentials,
}

impl BadCheckKind {
    /// The JSON body's `error` and the metrics' `kind` label.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            BadCheckKind::InvalidRequest => "invalid_request",
            BadCheckKind::ProxyHeaderConflict => "proxy_header_conflict",
            BadCheckKind::AmbiguousTarget => "ambiguous_target",
            BadCheckKind::MultipleCredentials => "multiple_credentials",
        }
    }
}

/// A check refused before any token is looked at (400).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BadCheck {
    pub(crate) kind: BadCheckKind,
    pub(crate) message: String,
}

impl BadCheck {
    pub(crate) fn invalid(message: impl Into<String>) -> BadCheck {
        BadCheck { kind: BadCheckKind::InvalidRequest, message: message.into() }
    }
}

/// The original request, borrowed from the check's headers and target where it can be.
#[derive(Debug, Clone)]
pub(crate) struct Original<'a> {
    pub(crate) proxy: Proxy,
    /// The method as the proxy reported it, upper-cased (`delete` and `DELETE` reach the same
    /// handler in Django, Flask, Symfony, ...).
    pub(crate) method: Method,
    /// More methods a rule must be judged for: `GET` for `HEAD` (frameworks run the GET
    /// handler), and any method-override header's method.
    pub(crate) other_methods: Vec<Method>,
    /// The original path, raw (`None` when the proxy did not report one).
    pub(crate) path: Option<&'a str>,
    /// The original path and query, raw: DPoP's `htu` is compared with it.
    pub(crate) target: Option<Cow<'a, str>>,
    /// `scheme://host` as the proxy reported it (Traefik, Caddy), for logs and DPoP `htu`.
    pub(crate) origin: Option<String>,
    /// The original request's host, normalized (`X-Original-Host` from nginx,
    /// `X-Forwarded-Host` from Traefik and Caddy, the check's `Host` from Envoy).
    pub(crate) host: Option<String>,
}

impl Original<'_> {
    /// Every method a rule must be judged for.
    pub(crate) fn methods(&self) -> impl Iterator<Item = &Method> {
        std::iter::once(&self.method).chain(&self.other_methods)
    }
}

/// A header the protocol reads once: its text (`None` when empty), or an error when sent twice
/// or not text.
fn once<'h>(slot: &mut Option<Option<&'h str>>, name: &str, value: &'h HeaderValue) -> Result<(), BadCheck> {
    if slot.is_some() {
        return Err(BadCheck::invalid(format!("{name} appears more than once")));
    }
    let text = value.to_str().map_err(|_| BadCheck::invalid(format!("{name} is not text")))?.trim();
    *slot = Some((!text.is_empty()).then_some(text));
    Ok(())
}

fn parse_method(text: &str, what: &str) -> Result<Method, BadCheck> {
    Method::from_bytes(text.to_ascii_uppercase().as_bytes())
        .map_err(|_| BadCheck::invalid(format!("{what} is not an HTTP method")))
}

/// Reads a check by `proxy`'s protocol, in one pass over its headers. `method_of_check` and
/// `envoy_target` (the path and query after `/ext-authz`) are the check's own request line.
pub(crate) fn read<'a>(
    proxy: Proxy,
    method_of_check: &Method,
    headers: &'a HeaderMap,
    envoy_target: Option<&'a str>,
) -> Result<Original<'a>, BadCheck> {
    let forwarded = matches!(proxy, Proxy::Traefik | Proxy::Caddy);
    let (mut uri, mut method_text, mut proto, mut host) = (None, None, None, None);
    let mut original_host = None;
    let mut overrides: Vec<&HeaderValue> = Vec::new();
    for (name, value) in headers {
        let name = name.as_str();
        let own = |family: [&str; 2]| proxy.own_family() == Some(family);
        match name {
            "x-original-uri" | "x-original-method" | "x-forwarded-uri" | "x-forwarded-method" => {
                let family = if name.starts_with("x-original") { NGINX_FAMILY } else { FORWARDED_FAMILY };
                if !own(family) {
                    return Err(BadCheck {
                        kind: BadCheckKind::ProxyHeaderConflict,
                        message: format!(
                            "the check carries {name}, which is not part of {}'s protocol (--proxy): a \
                             client sent it",
                            proxy.as_str()
                        ),
                    });
                }
                let slot = if name.ends_with("uri") { &mut uri } else { &mut method_text };
                once(slot, name, value)?;
            }
            "x-forwarded-proto" if forwarded => once(&mut proto, name, value)?,
            "x-forwarded-host" if forwarded => once(&mut host, name, value)?,
            "x-original-host" if proxy == Proxy::Nginx => once(&mut original_host, name, value)?,
            "host" if proxy == Proxy::Envoy => once(&mut original_host, name, value)?,
            _ if METHOD_OVERRIDES.contains(&name) => overrides.push(value),
            _ => {}
        }
    }
    let host_text = if forwarded { host.flatten() } else { original_host.flatten() };
    let host_name = match host_text {
        Some(text) => Some(
            super::route::normalize_host(text)
                .ok_or_else(|| BadCheck::invalid("the original host is not a host name"))?,
        ),
        None => None,
    };
    let origin = match (proto.flatten(), host.flatten()) {
        (Some(proto), Some(host)) => {
            Some(format!("{}://{}", proto.to_ascii_lowercase(), host.to_ascii_lowercase()))
        }
        _ => None,
    };
    let uri = match proxy {
        Proxy::Envoy => Some(envoy_target.filter(|t| !t.is_empty()).unwrap_or("/")),
        _ => uri.flatten(),
    };
    let method = match method_text.flatten() {
        Some(text) => parse_method(text, "the original method")?,
        None => parse_method(method_of_check.as_str(), "the check's method")?,
    };
    let mut other_methods = Vec::new();
    if method == Method::HEAD {
        other_methods.push(Method::GET);
    }
    let mut add = |overridden: Method| {
        if overridden != method && !other_methods.contains(&overridden) {
            other_methods.push(overridden);
        }
    };
    for value in overrides {
        let text = value.to_str().map_err(|_| BadCheck::invalid("a method-override header is not text"))?;
        add(parse_method(text.trim(), "a method-override header")?);
    }
    let (path, target) = match uri {
        None => (None, None),
        Some(uri) => {
            let parsed =
                RequestTarget::parse(uri).map_err(|e| BadCheck::invalid(format!("the original URI: {e}")))?;
            for (name, value) in form_urlencoded::parse(parsed.query.unwrap_or_default().as_bytes()) {
                if name == METHOD_PARAMETER {
                    add(parse_method(value.trim(), "the _method query parameter")?);
                }
            }
            // Origin-form is its own path and query; absolute-form gives them up.
            let target = match parsed.origin {
                None => Cow::Borrowed(uri),
                Some(origin) => {
                    agrees_with_host(origin, host_name.as_deref())?;
                    Cow::Owned(parsed.path_and_query())
                }
            };
            (Some(parsed.path), Some(target))
        }
    };
    Ok(Original { proxy, method, other_methods, path, target, origin, host: host_name })
}

/// An absolute-form original URI (`scheme://authority/path`) names its host; when the check
/// also reports the original host, the two must be the same host, or a proxy that routes by
/// one while reporting the other could put the request under another host's rule.
fn agrees_with_host(origin: &str, host: Option<&str>) -> Result<(), BadCheck> {
    let Some(host) = host else { return Ok(()) };
    let authority = origin.split_once("://").map_or(origin, |(_, authority)| authority);
    let named = super::route::normalize_host(authority)
        .ok_or_else(|| BadCheck::invalid("the original URI's authority is not a host name"))?;
    if named != host {
        return Err(BadCheck {
            kind: BadCheckKind::AmbiguousTarget,
            message: format!(
                "the original URI names the host {named} while the original host is {host}: servers \
                 may route it either way, so it is refused"
            ),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, value.parse().unwrap());
        }
        map
    }

    #[test]
    fn each_protocol_reads_its_own_headers() {
        let h = headers(&[("x-original-uri", "/orders/1?x=1"), ("x-original-method", "delete")]);
        let o = read(Proxy::Nginx, &Method::GET, &h, None).unwrap();
        assert_eq!((o.method.as_str(), o.path), ("DELETE", Some("/orders/1")));
        assert_eq!(o.target.as_deref(), Some("/orders/1?x=1"));

        let h = headers(&[
            ("x-forwarded-uri", "/a/../b"),
            ("x-forwarded-method", "Post"),
            ("x-forwarded-proto", "HTTPS"),
            ("x-forwarded-host", "Api.Example"),
        ]);
        for proxy in [Proxy::Traefik, Proxy::Caddy] {
            let o = read(proxy, &Method::GET, &h, None).unwrap();
            assert_eq!((o.method.as_str(), o.path), ("POST", Some("/a/../b")));
            assert_eq!(o.origin.as_deref(), Some("https://api.example"));
        }

        let empty = HeaderMap::new();
        let o = read(Proxy::Envoy, &"delete".parse().unwrap(), &empty, Some("/v1/x?y")).unwrap();
        assert_eq!((o.method.as_str(), o.path), ("DELETE", Some("/v1/x")));
        let o = read(Proxy::Nginx, &Method::GET, &empty, None).unwrap();
        assert_eq!((o.path, o.method), (None, Method::GET));
    }

    #[test]
    fn the_other_familys_headers_are_refused() {
        let traefik = headers(&[("x-forwarded-uri", "/admin/users"), ("x-original-uri", "/public/x")]);
        let refused = read(Proxy::Traefik, &Method::GET, &traefik, None).unwrap_err();
        assert_eq!(refused.kind, BadCheckKind::ProxyHeaderConflict);
        assert!(refused.message.contains("x-original-uri"), "{refused:?}");
        let nginx = headers(&[("x-original-uri", "/admin"), ("x-forwarded-method", "GET")]);
        assert_eq!(
            read(Proxy::Nginx, &Method::GET, &nginx, None).unwrap_err().kind,
            BadCheckKind::ProxyHeaderConflict
        );
        let envoy = headers(&[("x-original-uri", "/public")]);
        assert_eq!(
            read(Proxy::Envoy, &Method::GET, &envoy, Some("/admin")).unwrap_err().kind,
            BadCheckKind::ProxyHeaderConflict
        );
    }

    #[test]
    fn methods_include_head_as_get_and_overrides() {
        let h = headers(&[("x-original-uri", "/x"), ("x-original-method", "head")]);
        let methods = |o: Original<'_>| o.methods().cloned().collect::<Vec<_>>();
        assert_eq!(methods(read(Proxy::Nginx, &Method::GET, &h, None).unwrap()), [Method::HEAD, Method::GET]);
        let h = headers(&[
            ("x-original-uri", "/x"),
            ("x-original-method", "POST"),
            ("x-http-method-override", "delete"),
        ]);
        assert_eq!(
            methods(read(Proxy::Nginx, &Method::GET, &h, None).unwrap()),
            [Method::POST, Method::DELETE]
        );
    }

    #[test]
    fn unusable_reports_are_refused() {
        for pairs in [
            vec![("x-original-uri", "/a"), ("x-original-uri", "/b")],
            vec![("x-original-uri", "admin")],
            vec![("x-original-uri", "/a#b")],
            vec![("x-original-uri", "/a"), ("x-original-method", "GE T")],
            vec![("x-original-uri", "/a"), ("x-http-method-override", "D E")],
        ] {
            let refused = read(Proxy::Nginx, &Method::GET, &headers(&pairs), None).unwrap_err();
            assert_eq!(refused.kind, BadCheckKind::InvalidRequest, "{pairs:?}");
        }
    }
}
