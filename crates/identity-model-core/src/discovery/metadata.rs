//! OpenID Connect Discovery 1.0 and RFC 8414 metadata: where the document lives, what it must
//! contain, and the policy every URL in it must meet. Sans-IO: the caller fetches the bytes.

use std::net::IpAddr;

use http::Uri;
use serde_json::{Map, Value};

use crate::error::{Error, ErrorKind};

/// Which well-known document to fetch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetadataKind {
    /// `{issuer}/.well-known/openid-configuration` (OpenID Connect Discovery 1.0).
    OpenId,
    /// `https://host/.well-known/oauth-authorization-server{/path}` (RFC 8414).
    OAuth,
}

/// The members OpenID Connect Discovery 1.0 section 3 requires (`jwks_uri` among them).
pub const OPENID_REQUIRED: [&str; 7] = [
    "issuer",
    "authorization_endpoint",
    "token_endpoint",
    "jwks_uri",
    "response_types_supported",
    "subject_types_supported",
    "id_token_signing_alg_values_supported",
];

/// The URL of an issuer's metadata document.
pub fn discovery_url(issuer: &str, kind: MetadataKind) -> Result<String, Error> {
    let uri = parse_absolute(issuer, "issuer")?;
    if uri.query().is_some() {
        return Err(violation("the issuer URL must not have a query"));
    }
    let base = issuer.trim_end_matches('/');
    Ok(match kind {
        MetadataKind::OpenId => format!("{base}/.well-known/openid-configuration"),
        MetadataKind::OAuth => {
            let scheme = uri.scheme_str().unwrap_or("https");
            let authority = uri.authority().map_or("", |a| a.as_str());
            let path = uri.path().trim_end_matches('/');
            format!("{scheme}://{authority}/.well-known/oauth-authorization-server{path}")
        }
    })
}

fn violation(message: impl Into<String>) -> Error {
    Error::new(ErrorKind::PolicyViolation, message.into())
}

fn parse_absolute(url: &str, what: &str) -> Result<Uri, Error> {
    let uri: Uri = url
        .parse()
        .map_err(|e| violation(format!("{what} {:?} is not an absolute URL", shorten(url))).with_source(e))?;
    if uri.scheme().is_none() || uri.host().is_none_or(str::is_empty) {
        return Err(violation(format!("{what} {:?} is not an absolute URL", shorten(url))));
    }
    if uri.authority().is_some_and(|a| a.as_str().contains('@')) {
        return Err(violation(format!("{what} {:?} carries credentials", shorten(url))));
    }
    Ok(uri)
}

fn shorten(s: &str) -> String {
    s.chars().take(120).collect()
}

/// The URL policy: rules every URL the library fetches or calls must meet, not only those of
/// a discovery document. The issuer, the discovery URL, `jwks_uri`, every endpoint a token
/// client calls (discovered or configured) and every request of the fetch loop are checked
/// against it. The defaults are the strict ones: HTTPS only, the document's issuer equal to
/// the requested one, every endpoint on the issuer's authority, no private or link-local IP
/// addresses, OpenID's required members. (The name is kept from where it started: discovery.)
#[derive(Debug, Clone)]
pub struct DiscoveryPolicy {
    allow_http_loopback: bool,
    validate_issuer: bool,
    validate_endpoints: bool,
    allowed_authorities: Vec<String>,
    excluded_endpoints: Vec<String>,
    allow_private_targets: bool,
    required: Vec<String>,
}

impl Default for DiscoveryPolicy {
    fn default() -> Self {
        DiscoveryPolicy {
            allow_http_loopback: false,
            validate_issuer: true,
            validate_endpoints: true,
            allowed_authorities: Vec::new(),
            excluded_endpoints: Vec::new(),
            allow_private_targets: false,
            required: OPENID_REQUIRED.iter().map(|s| (*s).to_owned()).collect(),
        }
    }
}

impl DiscoveryPolicy {
    /// Allows `http://` URLs on loopback hosts (`localhost`, 127.0.0.0/8, `[::1]`), for
    /// development and tests. Off by default.
    pub fn allow_http_on_loopback(mut self) -> Self {
        self.allow_http_loopback = true;
        self
    }

    /// Accepts endpoints on this authority (`https://host[:port]`) besides the issuer's.
    pub fn allow_endpoint_authority(mut self, base: impl Into<String>) -> Self {
        self.allowed_authorities.push(base.into());
        self
    }

    /// Leaves this member (e.g. `end_session_endpoint`) out of the authority check.
    pub fn exclude_endpoint(mut self, member: impl Into<String>) -> Self {
        self.excluded_endpoints.push(member.into());
        self
    }

    /// Accepts IP-literal hosts in private, link-local, unique-local and unspecified ranges.
    pub fn allow_private_targets(mut self) -> Self {
        self.allow_private_targets = true;
        self
    }

    /// Requires only `issuer` and `jwks_uri` (RFC 8414 servers that are not OpenID providers).
    pub fn resource_server_fields(mut self) -> Self {
        self.required = vec!["issuer".into(), "jwks_uri".into()];
        self
    }

    /// Dangerous: accepts a document whose `issuer` differs from the requested one.
    pub fn dangerous_skip_issuer_check(mut self) -> Self {
        self.validate_issuer = false;
        self
    }

    /// Dangerous: accepts endpoints on any authority.
    pub fn dangerous_skip_endpoint_check(mut self) -> Self {
        self.validate_endpoints = false;
        self
    }

    /// Whether plain HTTP is allowed on loopback.
    pub fn allows_http_on_loopback(&self) -> bool {
        self.allow_http_loopback
    }

    /// Checks an issuer identifier: [`DiscoveryPolicy::check_url`], and no query or fragment
    /// (RFC 8414 section 2, OpenID Connect Discovery 1.0 section 2): such an issuer can never
    /// match the `iss` of a discovery document, so it is refused before any request.
    pub fn check_issuer(&self, issuer: &str) -> Result<Uri, Error> {
        if issuer.contains('#') {
            return Err(violation(format!("issuer {:?} must not have a fragment", shorten(issuer))));
        }
        if issuer.contains('?') {
            return Err(violation(format!("issuer {:?} must not have a query", shorten(issuer))));
        }
        self.check_url(issuer, "issuer")
    }

    /// Checks one URL: absolute, no credentials, HTTPS (or HTTP on loopback when allowed), and
    /// no private IP target unless allowed. `what` names it in the error.
    pub fn check_url(&self, url: &str, what: &str) -> Result<Uri, Error> {
        let uri = parse_absolute(url, what)?;
        let host = uri.host().unwrap_or_default();
        let ip = host.trim_start_matches('[').trim_end_matches(']').parse::<IpAddr>().ok();
        let loopback = host.eq_ignore_ascii_case("localhost") || ip.is_some_and(|ip| ip.is_loopback());
        match uri.scheme_str() {
            Some("https") => {}
            Some("http") if loopback && self.allow_http_loopback => {}
            Some("http") if loopback => {
                return Err(violation(format!(
                    "{what} uses http: allow HTTP on loopback to use {}",
                    shorten(url)
                )));
            }
            _ => return Err(violation(format!("{what} {:?} must use https", shorten(url)))),
        }
        if let Some(ip) = ip {
            if !self.permits_address(ip) {
                return Err(violation(format!(
                    "{what} {:?} targets a private or local address",
                    shorten(url)
                )));
            }
        } else if non_canonical_ipv4(host) {
            return Err(violation(format!(
                "{what} {:?} writes an IPv4 address in a non-canonical form",
                shorten(url)
            )));
        }
        Ok(uri)
    }

    /// Whether a request may reach `ip` (a literal in a URL, or what a name resolved to):
    /// private, local and reserved ranges are refused unless private targets are allowed;
    /// loopback is allowed when HTTP on loopback is.
    pub fn permits_address(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
            v4 => v4,
        };
        self.allow_private_targets || (ip.is_loopback() && self.allow_http_loopback) || !is_private(ip)
    }
}

/// Addresses a request must not reach unless private targets are allowed: private, loopback,
/// link-local, unique local, CGNAT (`100.64.0.0/10`), `0.0.0.0/8`, benchmarking
/// (`198.18.0.0/15`), reserved (`240.0.0.0/4`), broadcast, multicast, and IPv6 forms that
/// carry an IPv4 address (`::ffff:0:0/96` mapped, `64:ff9b::/96` NAT64-translated, `2002::/16`
/// 6to4, `::/96` compatible), judged by the address they carry.
fn is_private(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            v4.is_private()
                || v4.is_loopback()
                || v4.is_link_local()
                || v4.is_broadcast()
                || v4.is_multicast()
                || a == 0 // 0.0.0.0/8
                || (a == 100 && (b & 0xC0) == 64) // 100.64.0.0/10 (CGNAT)
                || (a == 198 && (b & 0xFE) == 18) // 198.18.0.0/15 (benchmarking)
                || a >= 240 // 240.0.0.0/4 (reserved)
        }
        IpAddr::V6(v6) => {
            let segments = v6.segments();
            let embedded = |high: usize| {
                let [hi, lo] = [segments[high], segments[high + 1]];
                std::net::Ipv4Addr::new((hi >> 8) as u8, hi as u8, (lo >> 8) as u8, lo as u8)
            };
            v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (segments[0] & 0xFE00) == 0xFC00 // fc00::/7 unique local
                || (segments[0] & 0xFFC0) == 0xFE80 // fe80::/10 link local
                || v6.to_ipv4_mapped().is_some_and(|v4| is_private(IpAddr::V4(v4))) // ::ffff:0:0/96
                || (segments[..6] == [0x64, 0xff9b, 0, 0, 0, 0] && is_private(IpAddr::V4(embedded(6)))) // NAT64
                || (segments[0] == 0x2002 && is_private(IpAddr::V4(embedded(1)))) // 6to4
                || (segments[..6] == [0; 6] && is_private(IpAddr::V4(embedded(6)))) // ::a.b.c.d
        }
    }
}

/// Whether `host` (no brackets) is written like a number but is not a canonical dotted-quad
/// IPv4 literal: `127.1`, `0x7f.0.0.1`, `2130706433`, `0177.0.0.1`. Resolvers read such names
/// as addresses, so they would slip past the address rules: refused.
fn non_canonical_ipv4(host: &str) -> bool {
    if host.parse::<std::net::Ipv4Addr>().is_ok() {
        return false;
    }
    let last = host.trim_end_matches('.').rsplit('.').next().unwrap_or_default();
    let numeric = |label: &str| {
        !label.is_empty()
            && (label.bytes().all(|b| b.is_ascii_digit())
                || (label.len() > 2
                    && label[..2].eq_ignore_ascii_case("0x")
                    && label[2..].bytes().all(|b| b.is_ascii_hexdigit())))
    };
    numeric(last)
}

/// The scheme, lower-cased host and effective port of a URL: what "same authority" compares.
fn origin(uri: &Uri) -> (String, String, u16) {
    let scheme = uri.scheme_str().unwrap_or_default().to_ascii_lowercase();
    let port = uri.port_u16().unwrap_or(if scheme == "http" { 80 } else { 443 });
    (scheme, uri.host().unwrap_or_default().to_ascii_lowercase(), port)
}

/// A validated discovery document: required members present, types right, every URL within
/// the policy. Unknown members are kept.
#[derive(Debug, Clone)]
pub struct DiscoveryDocument {
    members: Map<String, Value>,
}

impl DiscoveryDocument {
    /// Parses and checks a discovery document fetched for `requested_issuer`.
    ///
    /// Failures, in this order: `invalid_document` (not a JSON object without duplicate members,
    /// or a member of the wrong type), `missing_fields` (naming every missing member),
    /// `issuer_mismatch`, `policy_violation` (a URL that breaks the policy).
    pub fn from_json(bytes: &[u8], requested_issuer: &str, policy: &DiscoveryPolicy) -> Result<Self, Error> {
        let members = crate::json_object::parse(bytes, false)
            .map_err(|e| {
                Error::new(
                    ErrorKind::InvalidDocument,
                    "discovery document is not a JSON object without duplicate members",
                )
                .with_source(e)
            })?
            .members;
        for (name, value) in &members {
            let ok = if is_url_member(name) || name == "issuer" {
                value.is_string()
            } else if name.ends_with("_supported") {
                // Registered `*_supported` members are string arrays, or booleans such as
                // `claims_parameter_supported` and RFC 9207's `authorization_response_iss_parameter_supported`.
                value.is_boolean() || value.as_array().is_some_and(|items| items.iter().all(Value::is_string))
            } else if name == "mtls_endpoint_aliases" {
                value.as_object().is_some_and(|aliases| aliases.values().all(Value::is_string))
            } else {
                true
            };
            if !ok {
                return Err(Error::new(
                    ErrorKind::InvalidDocument,
                    format!("member \"{}\" has the wrong type", shorten(name)),
                )
                .with_claim(name.clone()));
            }
        }
        let missing: Vec<&str> = policy
            .required
            .iter()
            .filter(|f| !members.contains_key(f.as_str()))
            .map(String::as_str)
            .collect();
        if !missing.is_empty() {
            return Err(Error::new(
                ErrorKind::MissingFields,
                format!("discovery document lacks required members: {}", missing.join(", ")),
            )
            .with_claim(missing[0].to_owned()));
        }
        let document = DiscoveryDocument { members };
        let issuer = document.issuer().unwrap_or_default();
        if policy.validate_issuer && issuer != requested_issuer {
            return Err(Error::new(
                ErrorKind::IssuerMismatch,
                format!(
                    "document issuer {:?} is not the requested {:?}",
                    shorten(issuer),
                    shorten(requested_issuer)
                ),
            )
            .with_claim("issuer"));
        }
        let issuer_uri = policy.check_url(issuer, "issuer")?;
        let mut allowed = vec![origin(&issuer_uri)];
        for base in &policy.allowed_authorities {
            allowed.push(origin(&parse_absolute(base, "allowed authority")?));
        }
        for (name, value) in &document.members {
            let Some(url) = value.as_str().filter(|_| is_url_member(name)) else { continue };
            let uri = policy.check_url(url, name)?;
            let excluded = policy.excluded_endpoints.iter().any(|e| e == name);
            if policy.validate_endpoints && !excluded && !allowed.contains(&origin(&uri)) {
                return Err(violation(format!("{name} {:?} is not on the issuer's authority", shorten(url))));
            }
        }
        if let Some(aliases) = document.members.get("mtls_endpoint_aliases").and_then(Value::as_object) {
            // mTLS aliases live on their own hosts by design: HTTPS and address rules only.
            for (name, url) in aliases {
                policy.check_url(url.as_str().unwrap_or_default(), name)?;
            }
        }
        Ok(document)
    }

    /// A string member.
    pub fn text(&self, name: &str) -> Option<&str> {
        self.members.get(name).and_then(Value::as_str)
    }

    /// A `*_supported` list (empty when absent).
    pub fn list(&self, name: &str) -> Vec<&str> {
        self.members
            .get(name)
            .and_then(Value::as_array)
            .map_or_else(Vec::new, |a| a.iter().filter_map(Value::as_str).collect())
    }

    /// `issuer`.
    pub fn issuer(&self) -> Option<&str> {
        self.text("issuer")
    }

    /// `jwks_uri`.
    pub fn jwks_uri(&self) -> Option<&str> {
        self.text("jwks_uri")
    }

    /// `token_endpoint`.
    pub fn token_endpoint(&self) -> Option<&str> {
        self.text("token_endpoint")
    }

    /// `authorization_endpoint`.
    pub fn authorization_endpoint(&self) -> Option<&str> {
        self.text("authorization_endpoint")
    }

    /// An mTLS alias of an endpoint (RFC 8705 section 5), when the document has one.
    pub fn mtls_alias(&self, endpoint: &str) -> Option<&str> {
        self.members.get("mtls_endpoint_aliases")?.get(endpoint)?.as_str()
    }

    /// Every member as received, unknown ones included.
    pub fn members(&self) -> &Map<String, Value> {
        &self.members
    }
}

/// Members holding URLs the client will call.
fn is_url_member(name: &str) -> bool {
    name.ends_with("_endpoint") || name == "jwks_uri"
}

#[cfg(test)]
mod tests {
    #[test]
    fn address_rules_cover_every_private_and_translated_range() {
        let strict = DiscoveryPolicy::default();
        let refused = [
            "10.0.0.1",
            "172.16.0.1",
            "192.168.1.1",
            "127.0.0.1",
            "169.254.169.254",
            "0.0.0.0",
            "0.1.2.3",
            "100.64.0.1",
            "100.127.255.255",
            "198.18.0.1",
            "198.19.255.255",
            "240.0.0.1",
            "255.255.255.255",
            "224.0.0.1",
            "::1",
            "::",
            "fc00::1",
            "fd12::1",
            "fe80::1",
            "::ffff:10.0.0.1",
            "::ffff:127.0.0.1",
            "64:ff9b::a9fe:a9fe",
            "64:ff9b::7f00:1",
            "2002:0a00:0001::1",
            "2002:7f00:1::",
            "::10.0.0.1",
            "ff02::1",
        ];
        for ip in refused {
            assert!(!strict.permits_address(ip.parse().unwrap()), "{ip} must be refused");
        }
        for ip in [
            "93.184.216.34",
            "100.128.0.1",
            "198.20.0.1",
            "2606:4700::1",
            "64:ff9b::5db8:d822",
            "2002:5db8:d822::1",
            "::ffff:93.184.216.34",
        ] {
            assert!(strict.permits_address(ip.parse().unwrap()), "{ip} must be allowed");
        }
        let loopback = DiscoveryPolicy::default().allow_http_on_loopback();
        assert!(
            loopback.permits_address("127.0.0.1".parse().unwrap())
                && loopback.permits_address("::1".parse().unwrap())
        );
        assert!(!loopback.permits_address("10.0.0.1".parse().unwrap()));
        assert!(
            DiscoveryPolicy::default().allow_private_targets().permits_address("10.0.0.1".parse().unwrap())
        );
    }

    #[test]
    fn only_canonical_dotted_quads_are_ipv4_literals() {
        let strict = DiscoveryPolicy::default().allow_private_targets();
        for host in ["127.1", "0x7f.0.0.1", "2130706433", "0177.0.0.1", "1.2.3", "10.0.0.1.", "0x7f000001"] {
            let e = strict.check_url(&format!("https://{host}/x"), "URL").unwrap_err();
            assert_eq!(e.kind(), ErrorKind::PolicyViolation, "{host}");
        }
        for host in ["93.184.216.34", "example.com", "1a.example", "a.0x"] {
            assert!(strict.check_url(&format!("https://{host}/x"), "URL").is_ok(), "{host}");
        }
    }

    use super::*;
    use serde_json::json;

    const ISS: &str = "https://provider.example.com";

    fn doc(extra: Value) -> Vec<u8> {
        let mut d = json!({
            "issuer": ISS,
            "authorization_endpoint": "https://provider.example.com/auth",
            "token_endpoint": "https://provider.example.com/token",
            "jwks_uri": "https://provider.example.com/jwks",
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
        });
        for (k, v) in extra.as_object().unwrap() {
            if v.is_null() {
                d.as_object_mut().unwrap().remove(k);
            } else {
                d[k] = v.clone();
            }
        }
        d.to_string().into_bytes()
    }

    fn kind(bytes: &[u8], issuer: &str, policy: &DiscoveryPolicy) -> ErrorKind {
        DiscoveryDocument::from_json(bytes, issuer, policy).unwrap_err().kind()
    }

    #[test]
    fn well_known_urls() {
        assert_eq!(
            discovery_url("https://a.example/", MetadataKind::OpenId).unwrap(),
            "https://a.example/.well-known/openid-configuration"
        );
        assert_eq!(
            discovery_url("https://a.example/tenant", MetadataKind::OpenId).unwrap(),
            "https://a.example/tenant/.well-known/openid-configuration"
        );
        assert_eq!(
            discovery_url("https://a.example/tenant", MetadataKind::OAuth).unwrap(),
            "https://a.example/.well-known/oauth-authorization-server/tenant"
        );
        assert_eq!(
            discovery_url("https://a.example", MetadataKind::OAuth).unwrap(),
            "https://a.example/.well-known/oauth-authorization-server"
        );
        assert!(discovery_url("not a url", MetadataKind::OpenId).is_err());
        assert!(discovery_url("https://a.example/?x=1", MetadataKind::OpenId).is_err());
    }

    #[test]
    fn policy_rules() {
        let strict = DiscoveryPolicy::default();
        let dev = DiscoveryPolicy::default().allow_http_on_loopback();
        for (url, strict_ok, dev_ok) in [
            ("https://provider.example.com/x", true, true),
            ("http://provider.example.com/x", false, false),
            ("http://127.0.0.1:8080/x", false, true),
            ("http://localhost/x", false, true),
            ("http://[::1]:9000/x", false, true),
            ("https://10.0.0.5/x", false, false),
            ("https://169.254.169.254/latest", false, false),
            ("https://192.168.1.1/x", false, false),
            ("https://[fe80::1]/x", false, false),
            ("https://[fd00::1]/x", false, false),
            ("https://[::ffff:10.0.0.1]/x", false, false),
            ("https://100.64.0.1/x", false, false),
            ("https://0.0.0.0/x", false, false),
            ("https://user:pass@provider.example.com/x", false, false),
            ("ftp://provider.example.com/x", false, false),
            ("/relative", false, false),
        ] {
            assert_eq!(strict.check_url(url, "u").is_ok(), strict_ok, "strict {url}");
            assert_eq!(dev.check_url(url, "u").is_ok(), dev_ok, "dev {url}");
        }
        assert!(
            DiscoveryPolicy::default().allow_private_targets().check_url("https://10.0.0.5/x", "u").is_ok()
        );
    }

    #[test]
    fn document_checks_in_order() {
        let policy = DiscoveryPolicy::default();
        let ok = DiscoveryDocument::from_json(&doc(json!({"x_custom": {"a": 1}})), ISS, &policy).unwrap();
        assert_eq!(ok.jwks_uri(), Some("https://provider.example.com/jwks"));
        assert_eq!(ok.members()["x_custom"]["a"], 1);
        assert_eq!(kind(b"<html>", ISS, &policy), ErrorKind::InvalidDocument);
        assert_eq!(kind(br#"{"issuer":"a","issuer":"b"}"#, ISS, &policy), ErrorKind::InvalidDocument);
        assert_eq!(kind(&doc(json!({"jwks_uri": 7})), ISS, &policy), ErrorKind::InvalidDocument);
        assert_eq!(
            kind(&doc(json!({"scopes_supported": "openid"})), ISS, &policy),
            ErrorKind::InvalidDocument
        );
        let err = DiscoveryDocument::from_json(
            &doc(json!({"jwks_uri": null, "token_endpoint": null})),
            ISS,
            &policy,
        )
        .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::MissingFields);
        assert!(err.message().contains("token_endpoint") && err.message().contains("jwks_uri"), "{err}");
        assert_eq!(
            kind(&doc(json!({})), "https://provider.example.com/", &policy),
            ErrorKind::IssuerMismatch
        );
        assert_eq!(
            kind(&doc(json!({"jwks_uri": "https://evil.example/jwks"})), ISS, &policy),
            ErrorKind::PolicyViolation
        );
        assert_eq!(
            kind(&doc(json!({"token_endpoint": "https://provider.example.com:8443/t"})), ISS, &policy),
            ErrorKind::PolicyViolation
        );
        assert_eq!(
            kind(&doc(json!({"userinfo_endpoint": "http://provider.example.com/u"})), ISS, &policy),
            ErrorKind::PolicyViolation
        );
        let cdn = DiscoveryPolicy::default().allow_endpoint_authority("https://keys.example.net");
        assert!(
            DiscoveryDocument::from_json(
                &doc(json!({"jwks_uri": "https://keys.example.net/jwks"})),
                ISS,
                &cdn
            )
            .is_ok()
        );
        let excluded = DiscoveryPolicy::default().exclude_endpoint("end_session_endpoint");
        assert!(
            DiscoveryDocument::from_json(
                &doc(json!({"end_session_endpoint": "https://logout.example.org/"})),
                ISS,
                &excluded
            )
            .is_ok()
        );
        let mtls = doc(
            json!({"mtls_endpoint_aliases": {"token_endpoint": "https://mtls.provider.example.com/token"}}),
        );
        let with_mtls = DiscoveryDocument::from_json(&mtls, ISS, &policy).unwrap();
        assert_eq!(with_mtls.mtls_alias("token_endpoint"), Some("https://mtls.provider.example.com/token"));
        let bad_mtls = doc(
            json!({"mtls_endpoint_aliases": {"token_endpoint": "http://mtls.provider.example.com/token"}}),
        );
        assert_eq!(kind(&bad_mtls, ISS, &policy), ErrorKind::PolicyViolation);
        let minimal = json!({"issuer": ISS, "jwks_uri": "https://provider.example.com/jwks"}).to_string();
        assert_eq!(kind(minimal.as_bytes(), ISS, &policy), ErrorKind::MissingFields);
        assert!(
            DiscoveryDocument::from_json(
                minimal.as_bytes(),
                ISS,
                &DiscoveryPolicy::default().resource_server_fields()
            )
            .is_ok()
        );
    }

    #[test]
    fn loopback_issuers_for_development() {
        let iss = "http://127.0.0.1:3000";
        let d = json!({"issuer": iss, "jwks_uri": "http://127.0.0.1:3000/jwks"}).to_string();
        let strict = DiscoveryPolicy::default().resource_server_fields();
        assert_eq!(kind(d.as_bytes(), iss, &strict), ErrorKind::PolicyViolation);
        assert!(DiscoveryDocument::from_json(d.as_bytes(), iss, &strict.allow_http_on_loopback()).is_ok());
    }
}
