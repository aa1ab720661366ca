//! The original request a forward-auth check is about, as each proxy reports it, and the path
//! normalization that route rules are matched on.

use http::{HeaderMap, Method};

/// Which proxy protocol a check came in by (a metrics and log label).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// nginx `auth_request`: `X-Original-Method`, `X-Original-URI`.
    Nginx,
    /// Traefik `forwardAuth`: `X-Forwarded-Method`, `-Proto`, `-Host`, `-Uri`.
    Traefik,
    /// `/auth` without either set of headers: the method of the check, path unknown.
    Bare,
    /// Envoy `ext_authz` HTTP service: the check's own method and the path under `/ext-authz`.
    Envoy,
}

impl Mode {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Mode::Nginx => "nginx",
            Mode::Traefik => "traefik",
            Mode::Bare => "bare",
            Mode::Envoy => "envoy",
        }
    }
}

/// The original request: its method and normalized path (`None` when the proxy did not say,
/// and then only the default rule applies: no anonymous route can be reached by omission).
#[derive(Debug, Clone)]
pub(crate) struct Original {
    pub(crate) mode: Mode,
    pub(crate) method: Method,
    pub(crate) path: Option<String>,
    /// `scheme://host` as the proxy reported it (Traefik), for logs and DPoP `htu`.
    pub(crate) origin: Option<String>,
    /// The original request target as the proxy reported it (path and query, not
    /// normalized): DPoP's `htu` is compared with it.
    pub(crate) target: Option<String>,
}

/// The path-and-query of a request target (an absolute-form target keeps only those).
fn target_of(target: &str) -> String {
    match target.split_once("://") {
        Some((_, rest)) => rest.find('/').map_or("/".to_owned(), |i| rest[i..].to_owned()),
        None => target.to_owned(),
    }
}

fn header<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers.get(name).and_then(|v| v.to_str().ok()).map(str::trim).filter(|v| !v.is_empty())
}

fn method(text: &str) -> Result<Method, String> {
    Method::from_bytes(text.as_bytes()).map_err(|_| "the original method is not an HTTP method".to_owned())
}

/// The original request of a check on `/auth` (nginx or Traefik headers).
pub(crate) fn from_auth(method_of_check: &Method, headers: &HeaderMap) -> Result<Original, String> {
    if let Some(uri) = header(headers, "x-original-uri") {
        let method = header(headers, "x-original-method").map_or(Ok(method_of_check.clone()), method)?;
        let target = Some(target_of(uri));
        return Ok(Original { mode: Mode::Nginx, method, path: Some(path_of(uri)?), origin: None, target });
    }
    if let Some(uri) = header(headers, "x-forwarded-uri") {
        let method = header(headers, "x-forwarded-method").map_or(Ok(method_of_check.clone()), method)?;
        let origin = match (header(headers, "x-forwarded-proto"), header(headers, "x-forwarded-host")) {
            (Some(proto), Some(host)) => {
                Some(format!("{}://{}", proto.to_ascii_lowercase(), host.to_ascii_lowercase()))
            }
            _ => None,
        };
        let target = Some(target_of(uri));
        return Ok(Original { mode: Mode::Traefik, method, path: Some(path_of(uri)?), origin, target });
    }
    let method = match header(headers, "x-original-method").or(header(headers, "x-forwarded-method")) {
        Some(text) => method(text)?,
        None => method_of_check.clone(),
    };
    Ok(Original { mode: Mode::Bare, method, path: None, origin: None, target: None })
}

/// The original request of an Envoy check: `rest` is what follows `/ext-authz` (with query).
pub(crate) fn from_envoy(method_of_check: &Method, rest: &str) -> Result<Original, String> {
    let rest = if rest.is_empty() { "/" } else { rest };
    Ok(Original {
        mode: Mode::Envoy,
        method: method_of_check.clone(),
        path: Some(path_of(rest)?),
        origin: None,
        target: Some(rest.to_owned()),
    })
}

/// The normalized path of a request target: query and fragment dropped, then
/// [`normalize_path`].
fn path_of(target: &str) -> Result<String, String> {
    let end = target.find(['?', '#']).unwrap_or(target.len());
    let path = &target[..end];
    // An absolute-form target (http://host/path) keeps only its path.
    let path = match path.split_once("://") {
        Some((_, rest)) => rest.find('/').map_or("/", |i| &rest[i..]),
        None => path,
    };
    if !path.starts_with('/') {
        return Err("the original URI is not a path".into());
    }
    normalize_path(path)
}

/// Percent-decodes `path` (an encoded `/` or `.` counts as one, so `%2e%2e` cannot climb past
/// a rule), merges repeated slashes, and removes dot segments (RFC 3986 section 5.2.4). Bad
/// escapes, NUL, backslashes and non-UTF-8 are refused: the upstream might read them
/// differently from us.
pub(crate) fn normalize_path(path: &str) -> Result<String, String> {
    let bytes = path.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3).and_then(|h| std::str::from_utf8(h).ok());
            let value = hex.and_then(|h| u8::from_str_radix(h, 16).ok()).ok_or("a bad percent escape")?;
            decoded.push(value);
            i += 3;
        } else {
            decoded.push(bytes[i]);
            i += 1;
        }
    }
    if decoded.iter().any(|&b| b == 0 || b == b'\\') {
        return Err("NUL or backslash in the path".into());
    }
    let decoded = String::from_utf8(decoded).map_err(|_| "the path is not UTF-8")?;
    let mut segments: Vec<&str> = Vec::new();
    for segment in decoded.split('/').skip(1) {
        match segment {
            "" | "." => {}
            ".." => {
                segments.pop();
            }
            other => segments.push(other),
        }
    }
    let trailing = decoded.ends_with('/') || decoded.ends_with("/.") || decoded.ends_with("/..");
    let mut out = String::with_capacity(decoded.len());
    for segment in &segments {
        out.push('/');
        out.push_str(segment);
    }
    if out.is_empty() || (trailing && !segments.is_empty()) {
        out.push('/');
    }
    Ok(out)
}

/// Whether `path` lies under `prefix` on a segment boundary (`/api` holds `/api` and `/api/x`,
/// not `/apix`); both normalized.
pub(crate) fn under(path: &str, prefix: &str) -> bool {
    let prefix = prefix.trim_end_matches('/');
    prefix.is_empty()
        || path == prefix
        || (path.starts_with(prefix) && path.as_bytes().get(prefix.len()) == Some(&b'/'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalization() {
        for (raw, want) in [
            ("/", "/"),
            ("", "/"),
            ("/a/b/../c", "/a/c"),
            ("/a/./b/", "/a/b/"),
            ("//admin", "/admin"),
            ("/public/..%2fadmin", "/admin"),
            ("/public/%2e%2e/admin", "/admin"),
            ("/../../etc", "/etc"),
            ("/a/..", "/"),
            ("/%41pi", "/Api"),
        ] {
            assert_eq!(normalize_path(raw).as_deref(), Ok(want), "{raw}");
        }
        for bad in ["/%zz", "/%4", "/a%00b", "/a\\b", "/%c3%28"] {
            assert!(normalize_path(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn segment_boundaries() {
        assert!(under("/api", "/api"));
        assert!(under("/api/x", "/api"));
        assert!(under("/api/x", "/api/"));
        assert!(!under("/apix", "/api"));
        assert!(under("/anything", "/"));
    }

    #[test]
    fn proxies_headers() {
        let mut h = HeaderMap::new();
        h.insert("x-original-uri", "/orders/1?x=1".parse().unwrap());
        h.insert("x-original-method", "DELETE".parse().unwrap());
        let o = from_auth(&Method::GET, &h).unwrap();
        assert_eq!((o.mode, o.method, o.path.as_deref()), (Mode::Nginx, Method::DELETE, Some("/orders/1")));

        let mut h = HeaderMap::new();
        h.insert("x-forwarded-uri", "/a/../b".parse().unwrap());
        h.insert("x-forwarded-method", "POST".parse().unwrap());
        h.insert("x-forwarded-proto", "HTTPS".parse().unwrap());
        h.insert("x-forwarded-host", "Api.Example".parse().unwrap());
        let o = from_auth(&Method::GET, &h).unwrap();
        assert_eq!((o.mode, o.method.as_str(), o.path.as_deref()), (Mode::Traefik, "POST", Some("/b")));
        assert_eq!(o.origin.as_deref(), Some("https://api.example"));

        let o = from_auth(&Method::GET, &HeaderMap::new()).unwrap();
        assert_eq!((o.mode, o.path), (Mode::Bare, None));

        let o = from_envoy(&Method::PUT, "/v1/x?y#z").unwrap();
        assert_eq!((o.mode, o.method, o.path.as_deref()), (Mode::Envoy, Method::PUT, Some("/v1/x")));
    }
}
