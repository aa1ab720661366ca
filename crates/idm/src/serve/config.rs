//! `idm serve`'s configuration: the TOML file (`--config`) merged with the flags, checked as a
//! whole so that every problem is listed at once.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use http::{HeaderName, Method};
use serde::Deserialize;

use super::claim_rules::{ClaimRule, ClaimRuleFile};
use super::credential::TokenSource;
use super::proxy::Proxy;

/// The file, as written (unknown keys are errors: a typo must not silently loosen a rule).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct File {
    listen: Option<String>,
    realm: Option<String>,
    allow_http: Option<bool>,
    log_format: Option<String>,
    /// Scopes every route without its own rule requires.
    #[serde(default)]
    scopes: Vec<String>,
    #[serde(default, rename = "issuer")]
    issuers: Vec<IssuerFile>,
    #[serde(default, rename = "route")]
    routes: Vec<RouteFile>,
    /// Claim name → upstream header name.
    #[serde(default)]
    claims: BTreeMap<String, String>,
    token_cache: Option<TokenCacheFile>,
    rate_limit: Option<RateLimitFile>,
    /// The origin DPoP proofs' `htu` name (`https://api.example`).
    public_origin: Option<String>,
    /// A file whose bytes (at least 32) key the rotating DPoP nonces; nonces are then required.
    dpop_nonce_secret_file: Option<String>,
    /// The oldest DPoP proof accepted, in seconds (default 300).
    dpop_max_age_secs: Option<u32>,
    /// How far ahead a DPoP proof's `iat` may be, in seconds (default: the token leeway).
    dpop_leeway_secs: Option<u32>,
    /// Which proxy `/auth` speaks for: nginx, traefik, caddy or envoy.
    proxy: Option<String>,
    /// Seconds a client has to send a request's headers (idle keep-alive time included).
    header_timeout_secs: Option<u64>,
    /// Most connections open at once.
    max_connections: Option<usize>,
    /// Seconds SIGTERM waits for checks in flight before closing what is left.
    shutdown_timeout_secs: Option<u64>,
    /// The shared replay store.
    redis: Option<super::shared::RedisFile>,
    /// Where tokens are looked for by default: "authorization", "cookie:NAME", "header:NAME".
    token_from: Option<Vec<String>>,
    /// A query parameter of the original URI that may carry the token (tokens in URLs leak
    /// into logs and Referer headers: hence the name).
    dangerous_token_from_query: Option<String>,
    /// Let CORS preflight requests (OPTIONS with Origin and Access-Control-Request-Method,
    /// no credentials) through without a token (default true).
    cors_preflight: Option<bool>,
    /// RFC 9728 protected resource metadata.
    resource_metadata: Option<ResourceMetadataFile>,
    /// Where Envoy's ext_authz gRPC service listens (off unless given).
    grpc_listen: Option<String>,
}

/// `[resource_metadata]`: the RFC 9728 document served at the resource's well-known path.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ResourceMetadataFile {
    resource: Option<String>,
    authorization_servers: Option<Vec<String>>,
    scopes_supported: Option<Vec<String>>,
    bearer_methods_supported: Option<Vec<String>>,
    dpop_signing_alg_values_supported: Option<Vec<String>>,
    resource_name: Option<String>,
    resource_documentation: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct IssuerFile {
    issuer: String,
    #[serde(default)]
    audience: OneOrMany,
    allow_http: Option<bool>,
    max_staleness_secs: Option<u64>,
    /// Keys from this JWK Set URL, without discovery.
    jwks_uri: Option<String>,
    /// Keys from this JWK Set file (re-read when it changes).
    jwks_file: Option<String>,
    /// These keys (JWKs).
    keys: Option<Vec<toml::Value>>,
    /// Opaque tokens through RFC 7662 introspection.
    introspection: Option<IntrospectionFile>,
}

/// `[issuer.introspection]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct IntrospectionFile {
    client_id: String,
    client_secret_file: String,
    /// `client_secret_basic` (default) or `client_secret_post`.
    auth_method: Option<String>,
    /// Default: discovery's `introspection_endpoint`.
    endpoint: Option<String>,
    /// `opaque` (default: tokens that are not JWTs) or `all`.
    tokens: Option<String>,
    cache_secs: Option<u64>,
    inactive_cache_secs: Option<u64>,
    max_entries: Option<usize>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    #[default]
    None,
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    fn into_vec(self) -> Vec<String> {
        match self {
            OneOrMany::None => Vec::new(),
            OneOrMany::One(one) => vec![one],
            OneOrMany::Many(many) => many,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RouteFile {
    prefix: String,
    #[serde(default)]
    methods: Vec<String>,
    #[serde(default)]
    scopes: Vec<String>,
    #[serde(default)]
    any_scopes: Vec<String>,
    #[serde(default)]
    anonymous: bool,
    /// This route's token sources (instead of the default ones).
    token_from: Option<Vec<String>>,
    dangerous_token_from_query: Option<String>,
    /// Only checks for this host (the original request's).
    host: Option<String>,
    /// Rules on the token's claims, beside the scopes.
    #[serde(default)]
    claim_rules: Vec<ClaimRuleFile>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TokenCacheFile {
    enabled: Option<bool>,
    max_entries: Option<usize>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RateLimitFile {
    per_second: u32,
    burst: Option<u32>,
    key: Option<String>,
    /// One limit for every instance, kept in `[redis]`.
    shared: Option<bool>,
    /// While Redis cannot be asked: this instance's share, per second, in process.
    fallback_per_second: Option<u32>,
    /// While Redis cannot be asked: "fallback" (default) or "refuse" (503).
    on_store_failure: Option<String>,
}

/// What the flags add to (or set over) the file.
#[derive(Debug, Default, Clone)]
pub(crate) struct Flags {
    pub(crate) issuers: Vec<String>,
    pub(crate) audiences: Vec<String>,
    pub(crate) allow_http: bool,
    pub(crate) listen: Option<String>,
    pub(crate) scopes: Vec<String>,
    pub(crate) realm: Option<String>,
    pub(crate) log_format: Option<String>,
    pub(crate) rate_limit: Option<u32>,
    pub(crate) rate_burst: Option<u32>,
    pub(crate) rate_limit_shared: bool,
    pub(crate) no_token_cache: bool,
    pub(crate) public_origin: Option<String>,
    pub(crate) dpop_nonce_secret_file: Option<String>,
    pub(crate) dpop_max_age_secs: Option<u32>,
    pub(crate) dpop_leeway_secs: Option<u32>,
    pub(crate) proxy: Option<String>,
    pub(crate) header_timeout_secs: Option<u64>,
    pub(crate) max_connections: Option<usize>,
    pub(crate) shutdown_timeout_secs: Option<u64>,
    pub(crate) redis: super::shared::RedisFlags,
    pub(crate) token_from: Vec<String>,
    pub(crate) dangerous_token_from_query: Option<String>,
    pub(crate) no_cors_preflight: bool,
    pub(crate) resource: Option<String>,
    pub(crate) grpc_listen: Option<String>,
}

/// A real server's limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Limits {
    /// How long a client may take to send a request's headers, counted from the connection's
    /// start or the end of the previous answer (so it is also the keep-alive idle timeout).
    pub(crate) header_timeout: Duration,
    /// Most connections open at once; past it, new ones wait in the listen backlog.
    pub(crate) max_connections: usize,
    /// After SIGTERM: how long checks in flight get before every connection is closed.
    pub(crate) shutdown_timeout: Duration,
}

/// Defaults of [`Limits`].
pub(crate) const DEFAULT_HEADER_TIMEOUT_SECS: u64 = 10;
pub(crate) const DEFAULT_MAX_CONNECTIONS: usize = 10_000;
pub(crate) const DEFAULT_SHUTDOWN_TIMEOUT_SECS: u64 = 10;

/// One trusted issuer.
#[derive(Debug, Clone)]
pub(crate) struct IssuerPlan {
    pub(crate) issuer: String,
    pub(crate) audiences: Vec<String>,
    pub(crate) allow_http: bool,
    pub(crate) max_staleness_secs: Option<u64>,
    /// Where its keys come from.
    pub(crate) keys_from: identity_model::KeysFrom,
    /// How its opaque tokens are introspected, when they are.
    pub(crate) introspection: Option<super::introspect::IntrospectionPlan>,
}

/// A route rule: requests whose path starts with `prefix` (on a segment boundary) and whose
/// method is listed (any when none is).
#[derive(Debug, Clone)]
pub(crate) struct RoutePlan {
    pub(crate) prefix: String,
    pub(crate) methods: Vec<Method>,
    pub(crate) scopes: Vec<String>,
    pub(crate) any_scopes: Vec<String>,
    pub(crate) anonymous: bool,
    /// Where this route's tokens are (the default sources when `None`).
    pub(crate) token_sources: Option<Vec<TokenSource>>,
    /// The original request's host this rule is for (any when `None`), normalized.
    pub(crate) host: Option<String>,
    /// Rules on the token's claims.
    pub(crate) claim_rules: Vec<ClaimRule>,
}

/// Whose bucket a request drains.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LimitKey {
    ClientId,
    Subject,
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct RateLimitPlan {
    pub(crate) per_second: u32,
    pub(crate) burst: u32,
    pub(crate) key: LimitKey,
    /// Kept in Redis for every instance, when set.
    pub(crate) shared: Option<SharedLimitPlan>,
}

/// What a shared limit does while Redis cannot be asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SharedLimitPlan {
    /// This instance limits alone at its share (per second).
    Fallback(u32),
    /// 503 until Redis answers.
    Refuse,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LogFormat {
    Text,
    Json,
}

/// The checked configuration.
#[derive(Debug, Clone)]
pub(crate) struct Plan {
    pub(crate) listen: SocketAddr,
    pub(crate) realm: String,
    pub(crate) log_format: LogFormat,
    pub(crate) issuers: Vec<IssuerPlan>,
    pub(crate) default_scopes: Vec<String>,
    pub(crate) routes: Vec<RoutePlan>,
    pub(crate) claim_headers: Vec<(String, HeaderName)>,
    pub(crate) token_cache: Option<usize>,
    pub(crate) rate_limit: Option<RateLimitPlan>,
    /// `scheme://host[:port]` of the protected service as its clients see it, for DPoP `htu`.
    pub(crate) public_origin: Option<String>,
    /// How DPoP proofs are judged (nonces, age).
    pub(crate) dpop_rules: identity_model::DpopRules,
    /// The protocol of checks on `/auth`.
    pub(crate) proxy: Proxy,
    pub(crate) limits: Limits,
    /// The shared replay store, when several instances must see each other's records.
    pub(crate) redis: Option<super::shared::RedisPlan>,
    /// Where tokens are looked for, unless a route says otherwise.
    pub(crate) token_sources: Vec<TokenSource>,
    /// CORS preflight requests pass without a token.
    pub(crate) cors_preflight: bool,
    /// The RFC 9728 document, when configured.
    pub(crate) resource_metadata: Option<identity_model::ProtectedResourceMetadata>,
    /// Where the ext_authz gRPC service listens, when it does.
    pub(crate) grpc_listen: Option<SocketAddr>,
}

/// Where `idm serve` listens unless told.
pub(crate) const DEFAULT_LISTEN: &str = "127.0.0.1:9401";

/// Reads the file (when given) and merges the flags: the plan, or every problem found.
pub(crate) fn plan(file: Option<&Path>, flags: Flags) -> Result<Plan, Vec<String>> {
    let mut problems = Vec::new();
    let file = match file {
        None => File::default(),
        Some(path) => match std::fs::read_to_string(path) {
            Ok(text) => toml::from_str(&text).unwrap_or_else(|e: toml::de::Error| {
                problems.push(format!("{}: {}", path.display(), e.to_string().trim_end()));
                File::default()
            }),
            Err(e) => {
                problems.push(format!("cannot read {}: {e}", path.display()));
                File::default()
            }
        },
    };
    let allow_http = flags.allow_http || file.allow_http.unwrap_or(false);
    let listen_text = flags.listen.or(file.listen).unwrap_or_else(|| DEFAULT_LISTEN.to_owned());
    let listen = listen_text.parse::<SocketAddr>().map_err(|_| {
        problems.push(format!("listen {listen_text:?} is not an address and port (like 127.0.0.1:9401)"))
    });
    let log_format = match flags.log_format.or(file.log_format).as_deref() {
        None | Some("text") => LogFormat::Text,
        Some("json") => LogFormat::Json,
        Some(other) => {
            problems.push(format!("log format {other:?} is neither \"text\" nor \"json\""));
            LogFormat::Text
        }
    };

    let mut issuers: Vec<IssuerPlan> = Vec::new();
    for i in file.issuers {
        let keys_from = keys_from(&i.issuer, i.jwks_uri, i.jwks_file, i.keys, &mut problems);
        let introspection = i.introspection.and_then(|file| introspection(&i.issuer, file, &mut problems));
        issuers.push(IssuerPlan {
            issuer: i.issuer,
            audiences: i.audience.into_vec(),
            allow_http: i.allow_http.unwrap_or(allow_http),
            max_staleness_secs: i.max_staleness_secs,
            keys_from,
            introspection,
        });
    }
    for issuer in flags.issuers {
        issuers.push(IssuerPlan {
            issuer,
            audiences: flags.audiences.clone(),
            allow_http,
            max_staleness_secs: None,
            keys_from: identity_model::KeysFrom::Discovery,
            introspection: None,
        });
    }
    if issuers.is_empty() {
        problems.push("no issuer: give --issuer ISS --audience AUD, or [[issuer]] in --config".into());
    }
    if !flags.audiences.is_empty() && issuers.iter().all(|i| i.audiences != flags.audiences) {
        problems.push("--audience goes with --issuer (file issuers take `audience`)".into());
    }
    let introspecting: Vec<&IssuerPlan> = issuers.iter().filter(|i| i.introspection.is_some()).collect();
    if introspecting.len() > 1 {
        problems.push("only one issuer may introspect: an opaque token does not say whose it is".into());
    }
    if introspecting.iter().any(|i| i.introspection.as_ref().is_some_and(|p| p.all)) && issuers.len() > 1 {
        problems.push("introspection tokens = \"all\" needs a single issuer".into());
    }
    let mut seen = std::collections::HashSet::new();
    for issuer in &issuers {
        if !seen.insert(issuer.issuer.clone()) {
            problems.push(format!("issuer {:?} is listed twice", issuer.issuer));
        }
        if issuer.audiences.is_empty() || issuer.audiences.iter().any(|a| a.is_empty()) {
            problems.push(format!(
                "issuer {:?} has no audience: an API must say which tokens are meant for it (--audience)",
                issuer.issuer
            ));
        }
        if let Err(e) = crate::remote::policy(issuer.allow_http).check_issuer(&issuer.issuer) {
            problems.push(format!("issuer {:?}: {}", issuer.issuer, e.message()));
        }
        if let Some(0) = issuer.max_staleness_secs {
            problems.push(format!("issuer {:?}: max_staleness_secs must be above 0", issuer.issuer));
        }
    }

    let mut routes = Vec::new();
    for route in file.routes {
        if !route.prefix.starts_with('/') {
            problems.push(format!("route prefix {:?} must start with '/'", route.prefix));
            continue;
        }
        if route.prefix.contains([';', '%', '?', '#']) {
            problems.push(format!(
                "route prefix {:?}: write it plain, without ';', '%', '?' or '#'",
                route.prefix
            ));
            continue;
        }
        let normalized =
            match identity_model::canonical_path(&route.prefix, identity_model::PathReading::Decoded) {
                Ok(path) => path,
                Err(why) => {
                    problems.push(format!("route prefix {:?}: {why}", route.prefix));
                    continue;
                }
            };
        let mut methods = Vec::new();
        for method in &route.methods {
            match Method::from_bytes(method.to_ascii_uppercase().as_bytes()) {
                Ok(m) => methods.push(m),
                Err(_) => {
                    problems.push(format!("route {:?}: {method:?} is not an HTTP method", route.prefix))
                }
            }
        }
        if route.anonymous && (!route.scopes.is_empty() || !route.any_scopes.is_empty()) {
            problems.push(format!("route {:?} is anonymous and requires scopes: choose one", route.prefix));
        }
        let token_sources =
            (route.token_from.is_some() || route.dangerous_token_from_query.is_some()).then(|| {
                let what = format!("route {:?}", route.prefix);
                token_sources(&what, route.token_from, route.dangerous_token_from_query, &mut problems)
            });
        let host = route.host.as_deref().map(|text| {
            super::route::normalize_host(text).unwrap_or_else(|| {
                problems.push(format!("route {:?}: host {text:?} is not a host name", route.prefix));
                String::new()
            })
        });
        let mut claim_rules = Vec::new();
        for rule in route.claim_rules {
            match rule.check() {
                Ok(rule) => claim_rules.push(rule),
                Err(why) => problems.push(format!("route {:?}: {why}", route.prefix)),
            }
        }
        if route.anonymous && !claim_rules.is_empty() {
            problems.push(format!("route {:?} is anonymous and has claim rules: choose one", route.prefix));
        }
        routes.push(RoutePlan {
            prefix: normalized.into_owned(),
            methods,
            scopes: route.scopes,
            any_scopes: route.any_scopes,
            anonymous: route.anonymous,
            token_sources,
            host,
            claim_rules,
        });
    }

    let mut claim_headers = Vec::new();
    for (claim, header) in file.claims {
        match HeaderName::from_bytes(header.as_bytes()) {
            Ok(name) => claim_headers.push((claim, name)),
            Err(_) => problems.push(format!("claims: {header:?} (for claim {claim:?}) is not a header name")),
        }
    }

    let cache = file.token_cache.unwrap_or(TokenCacheFile { enabled: None, max_entries: None });
    let token_cache = match (flags.no_token_cache, cache.enabled.unwrap_or(true), cache.max_entries) {
        (true, _, _) | (false, false, _) => None,
        (false, true, Some(0)) => {
            problems.push("token_cache.max_entries must be above 0 (or enabled = false)".into());
            None
        }
        (false, true, entries) => Some(entries.unwrap_or(100_000)),
    };

    let file_limit = file.rate_limit;
    let per_second = flags.rate_limit.or(file_limit.as_ref().map(|l| l.per_second));
    let rate_limit = match per_second {
        None => None,
        Some(0) => {
            problems.push("rate limit must be above 0 per second (leave it out to turn it off)".into());
            None
        }
        Some(per_second) => {
            let burst = flags.rate_burst.or(file_limit.as_ref().and_then(|l| l.burst)).unwrap_or(per_second);
            let key = match file_limit.as_ref().and_then(|l| l.key.as_deref()) {
                None | Some("client_id") => LimitKey::ClientId,
                Some("sub") => LimitKey::Subject,
                Some(other) => {
                    problems.push(format!("rate_limit.key {other:?} is neither \"client_id\" nor \"sub\""));
                    LimitKey::ClientId
                }
            };
            if burst == 0 {
                problems.push("rate limit burst must be above 0".into());
            }
            let wants_shared =
                flags.rate_limit_shared || file_limit.as_ref().and_then(|l| l.shared).unwrap_or(false);
            let shared = wants_shared.then(|| {
                let fallback = file_limit.as_ref().and_then(|l| l.fallback_per_second).unwrap_or(per_second);
                match file_limit.as_ref().and_then(|l| l.on_store_failure.as_deref()) {
                    None | Some("fallback") if fallback > 0 => SharedLimitPlan::Fallback(fallback),
                    None | Some("fallback") => {
                        problems.push("rate_limit.fallback_per_second must be above 0".into());
                        SharedLimitPlan::Refuse
                    }
                    Some("refuse") => SharedLimitPlan::Refuse,
                    Some(other) => {
                        problems.push(format!(
                            "rate_limit.on_store_failure {other:?} is neither \"fallback\" nor \"refuse\""
                        ));
                        SharedLimitPlan::Refuse
                    }
                }
            });
            Some(RateLimitPlan { per_second, burst: burst.max(1), key, shared })
        }
    };

    let default_from = if flags.token_from.is_empty() { file.token_from } else { Some(flags.token_from) };
    let default_query = flags.dangerous_token_from_query.or(file.dangerous_token_from_query);
    let token_sources = token_sources("the default", default_from, default_query, &mut problems);
    let cors_preflight = !flags.no_cors_preflight && file.cors_preflight.unwrap_or(true);

    let mut default_scopes = file.scopes;
    default_scopes.extend(flags.scopes);
    let mut dpop_rules = identity_model::DpopRules::new();
    if let Some(secs) = flags.dpop_max_age_secs.or(file.dpop_max_age_secs) {
        dpop_rules = dpop_rules.max_age_secs(secs);
    }
    if let Some(secs) = flags.dpop_leeway_secs.or(file.dpop_leeway_secs) {
        dpop_rules = dpop_rules.leeway_secs(secs);
    }
    if let Some(path) = flags.dpop_nonce_secret_file.or(file.dpop_nonce_secret_file) {
        match std::fs::read(&path) {
            Err(e) => problems.push(format!("dpop_nonce_secret_file {path:?}: {e}")),
            Ok(secret) => match identity_model::DpopNonces::new(&secret, 300) {
                Ok(nonces) => {
                    let nonces = std::sync::Arc::new(nonces);
                    dpop_rules = dpop_rules.nonce(identity_model::NonceRule::Rotating(nonces));
                }
                Err(e) => problems.push(format!("dpop_nonce_secret_file {path:?}: {}", e.message())),
            },
        }
    }
    let public_origin =
        flags.public_origin.or(file.public_origin).map(|o| o.trim_end_matches('/').to_owned());
    if let Some(origin) = &public_origin {
        let bare = identity_model::normalize_htu(origin)
            .is_some_and(|n| n.ends_with('/') && n.matches('/').count() == 3);
        if !bare || origin.contains(['?', '#']) {
            problems.push(format!("public_origin {origin:?} must be scheme://host[:port], without a path"));
        }
    }
    let proxy = match flags.proxy.or(file.proxy).as_deref() {
        None => Proxy::Nginx,
        Some(name) => Proxy::parse(name).unwrap_or_else(|| {
            problems.push(format!("proxy {name:?} is none of nginx, traefik, caddy, envoy"));
            Proxy::Nginx
        }),
    };
    let mut seconds = |what: &str, value: Option<u64>, default: u64| match value {
        Some(0) => {
            problems.push(format!("{what} must be above 0 seconds"));
            Duration::from_secs(default)
        }
        Some(secs) if secs > 3600 => {
            problems.push(format!("{what} must be at most 3600 seconds"));
            Duration::from_secs(default)
        }
        other => Duration::from_secs(other.unwrap_or(default)),
    };
    let header_timeout = seconds(
        "header timeout",
        flags.header_timeout_secs.or(file.header_timeout_secs),
        DEFAULT_HEADER_TIMEOUT_SECS,
    );
    let shutdown_timeout = seconds(
        "shutdown timeout",
        flags.shutdown_timeout_secs.or(file.shutdown_timeout_secs),
        DEFAULT_SHUTDOWN_TIMEOUT_SECS,
    );
    let max_connections = match flags.max_connections.or(file.max_connections) {
        Some(0) => {
            problems.push("max connections must be above 0".into());
            DEFAULT_MAX_CONNECTIONS
        }
        other => other.unwrap_or(DEFAULT_MAX_CONNECTIONS),
    };
    let limits = Limits { header_timeout, max_connections, shutdown_timeout };
    let redis = super::shared::plan(flags.redis, file.redis, &mut problems);
    if rate_limit.is_some_and(|limit| limit.shared.is_some()) && redis.is_none() {
        problems.push("a shared rate limit needs a Redis (--redis or [redis])".into());
    }
    let grpc_listen = flags.grpc_listen.or(file.grpc_listen).and_then(|text| {
        text.parse::<SocketAddr>()
            .map_err(|_| {
                problems
                    .push(format!("grpc_listen {text:?} is not an address and port (like 127.0.0.1:9402)"))
            })
            .ok()
    });
    let resource_metadata = resource_metadata(
        flags.resource,
        file.resource_metadata,
        &issuers,
        &routes,
        &token_sources,
        &dpop_rules,
        &mut problems,
    );
    match listen {
        Ok(listen) if problems.is_empty() => Ok(Plan {
            listen,
            realm: flags.realm.or(file.realm).unwrap_or_else(|| "api".into()),
            log_format,
            issuers,
            default_scopes,
            routes,
            claim_headers,
            token_cache,
            rate_limit,
            public_origin,
            dpop_rules,
            proxy,
            limits,
            redis,
            token_sources,
            cors_preflight,
            resource_metadata,
            grpc_listen,
        }),
        _ => Err(problems),
    }
}

/// `[issuer.introspection]`, checked.
fn introspection(
    issuer: &str,
    file: IntrospectionFile,
    problems: &mut Vec<String>,
) -> Option<super::introspect::IntrospectionPlan> {
    let what = format!("issuer {issuer:?}: introspection");
    // Every field is checked, whatever the first problem (all are listed at once).
    let secret = match std::fs::read_to_string(&file.client_secret_file) {
        Ok(text) if !text.trim().is_empty() => {
            Some(identity_model::Secret::new(text.trim_end_matches(['\r', '\n'])))
        }
        Ok(_) => {
            problems.push(format!("{what}: client_secret_file {:?} is empty", file.client_secret_file));
            None
        }
        Err(e) => {
            problems.push(format!("{what}: client_secret_file {:?}: {e}", file.client_secret_file));
            None
        }
    };
    let post = match file.auth_method.as_deref() {
        None | Some("client_secret_basic") => false,
        Some("client_secret_post") => true,
        Some(other) => {
            problems.push(format!(
                "{what}: auth_method {other:?} is neither client_secret_basic nor client_secret_post"
            ));
            false
        }
    };
    let all = match file.tokens.as_deref() {
        None | Some("opaque") => false,
        Some("all") => true,
        Some(other) => {
            problems.push(format!("{what}: tokens {other:?} is neither \"opaque\" nor \"all\""));
            false
        }
    };
    let ceiling = file.cache_secs.unwrap_or(60);
    let inactive = file.inactive_cache_secs.unwrap_or(5);
    if ceiling > 3600 || inactive > 3600 {
        problems.push(format!("{what}: cache_secs and inactive_cache_secs are at most 3600"));
    }
    let max_entries = file.max_entries.unwrap_or(10_000);
    if max_entries == 0 {
        problems.push(format!("{what}: max_entries must be above 0"));
    }
    Some(super::introspect::IntrospectionPlan {
        client_id: file.client_id,
        secret: secret?,
        post,
        endpoint: file.endpoint,
        all,
        ceiling: Duration::from_secs(ceiling),
        inactive_for: Duration::from_secs(inactive),
        max_entries,
    })
}

/// Where `issuer`'s keys come from: at most one of `jwks_uri`, `jwks_file`, `keys`
/// (discovery without any).
fn keys_from(
    issuer: &str,
    jwks_uri: Option<String>,
    jwks_file: Option<String>,
    keys: Option<Vec<toml::Value>>,
    problems: &mut Vec<String>,
) -> identity_model::KeysFrom {
    use identity_model::KeysFrom;
    let given = [jwks_uri.is_some(), jwks_file.is_some(), keys.is_some()];
    if given.iter().filter(|g| **g).count() > 1 {
        problems.push(format!("issuer {issuer:?}: give at most one of jwks_uri, jwks_file, keys"));
        return KeysFrom::Discovery;
    }
    if let Some(url) = jwks_uri {
        return KeysFrom::JwksUri(url);
    }
    if let Some(path) = jwks_file {
        return KeysFrom::File(path.into());
    }
    let Some(keys) = keys else { return KeysFrom::Discovery };
    let document = match serde_json::to_value(&keys) {
        Ok(value) => serde_json::json!({ "keys": value }).to_string(),
        Err(e) => {
            problems.push(format!("issuer {issuer:?}: keys: {e}"));
            return KeysFrom::Discovery;
        }
    };
    match identity_model::KeySet::from_json(document.as_bytes()) {
        Ok(set) if set.len() == keys.len() => KeysFrom::Inline(std::sync::Arc::new(set)),
        Ok(set) => {
            let refused: Vec<String> = set
                .rejected()
                .iter()
                .map(|r| format!("key {} ({:?}): {}", r.index, r.kid, r.reason))
                .collect();
            problems.push(format!("issuer {issuer:?}: keys: some are not usable: {}", refused.join("; ")));
            KeysFrom::Discovery
        }
        Err(e) => {
            problems.push(format!("issuer {issuer:?}: keys: {}", e.message()));
            KeysFrom::Discovery
        }
    }
}

/// The RFC 9728 document of `[resource_metadata]` (or `--resource-metadata RESOURCE`), with
/// what the rest of the configuration implies where the file is silent: the issuers as
/// `authorization_servers`, `header` (and `query` when a query source is configured) as
/// `bearer_methods_supported`, the DPoP rules' algorithms.
fn resource_metadata(
    flag: Option<String>,
    file: Option<ResourceMetadataFile>,
    issuers: &[IssuerPlan],
    routes: &[RoutePlan],
    default_sources: &[TokenSource],
    dpop_rules: &identity_model::DpopRules,
    problems: &mut Vec<String>,
) -> Option<identity_model::ProtectedResourceMetadata> {
    if flag.is_none() && file.is_none() {
        return None;
    }
    let file = file.unwrap_or_default();
    let Some(resource) = flag.or(file.resource) else {
        problems.push("resource_metadata.resource is required (the protected resource's URL)".into());
        return None;
    };
    let mut metadata = match identity_model::ProtectedResourceMetadata::new(resource) {
        Ok(metadata) => metadata,
        Err(e) => {
            problems.push(format!("resource_metadata: {}", e.message()));
            return None;
        }
    };
    let servers =
        file.authorization_servers.unwrap_or_else(|| issuers.iter().map(|i| i.issuer.clone()).collect());
    let query = default_sources
        .iter()
        .chain(routes.iter().flat_map(|r| r.token_sources.iter().flatten()))
        .any(|s| matches!(s, TokenSource::Query(_)));
    let methods = file.bearer_methods_supported.unwrap_or_else(|| {
        let mut methods = vec!["header".to_owned()];
        if query {
            methods.push("query".into());
        }
        methods
    });
    for method in &methods {
        if !matches!(method.as_str(), "header" | "body" | "query") {
            problems.push(format!(
                "resource_metadata.bearer_methods_supported: {method:?} is none of header, body, query"
            ));
        }
    }
    let algs = file
        .dpop_signing_alg_values_supported
        .unwrap_or_else(|| dpop_rules.allowed_algorithms().iter().map(|a| a.as_str().to_owned()).collect());
    metadata = metadata
        .authorization_servers(servers)
        .scopes_supported(file.scopes_supported.unwrap_or_default())
        .bearer_methods_supported(methods)
        .dpop_signing_alg_values_supported(algs);
    if let Some(name) = file.resource_name {
        metadata = metadata.member("resource_name", serde_json::Value::String(name));
    }
    if let Some(url) = file.resource_documentation {
        metadata = metadata.member("resource_documentation", serde_json::Value::String(url));
    }
    Some(metadata)
}

/// The token sources of `what` (the default, or a route): `token_from` (default: the
/// Authorization header) and the dangerous query parameter; each listed once.
fn token_sources(
    what: &str,
    token_from: Option<Vec<String>>,
    query: Option<String>,
    problems: &mut Vec<String>,
) -> Vec<TokenSource> {
    let mut sources = Vec::new();
    for text in token_from.unwrap_or_else(|| vec!["authorization".into()]) {
        match TokenSource::parse(&text) {
            Ok(source) if sources.contains(&source) => {
                problems.push(format!("{what}: token source {text:?} is listed twice"))
            }
            Ok(source) => sources.push(source),
            Err(why) => problems.push(format!("{what}: {why}")),
        }
    }
    if let Some(name) = query {
        match TokenSource::query(&name) {
            Ok(source) => sources.push(source),
            Err(why) => problems.push(format!("{what}: {why}")),
        }
    }
    if sources.is_empty() {
        problems.push(format!("{what}: token_from is empty: no token could ever be found"));
    }
    sources
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(text: &str) -> tempfile_path::TempPath {
        tempfile_path::TempPath::with(text)
    }

    /// A file under the target directory, removed when dropped (no extra crate for it).
    mod tempfile_path {
        pub(crate) struct TempPath(pub(crate) std::path::PathBuf);
        impl TempPath {
            pub(crate) fn with(text: &str) -> TempPath {
                use std::sync::atomic::{AtomicU32, Ordering};
                static N: AtomicU32 = AtomicU32::new(0);
                let path = std::env::temp_dir().join(format!(
                    "idm-serve-config-{}-{}.toml",
                    std::process::id(),
                    N.fetch_add(1, Ordering::Relaxed)
                ));
                std::fs::write(&path, text).expect("write the config");
                TempPath(path)
            }
        }
        impl Drop for TempPath {
            fn drop(&mut self) {
                let _ = std::fs::remove_file(&self.0);
            }
        }
    }

    #[test]
    fn every_problem_is_listed_at_once() {
        let file = write(
            r#"
            listen = "nowhere"
            log_format = "xml"
            [[issuer]]
            issuer = "https://a.example"
            [[route]]
            prefix = "admin"
            [[route]]
            prefix = "/x"
            methods = ["GE T"]
            anonymous = true
            scopes = ["s"]
            [claims]
            tenant = "bad header"
            [rate_limit]
            per_second = 0
            "#,
        );
        let problems = plan(Some(&file.0), Flags::default()).expect_err("problems");
        let all = problems.join("\n");
        for expected in [
            "listen",
            "log format",
            "no audience",
            "must start with '/'",
            "not an HTTP method",
            "anonymous and requires",
            "not a header name",
            "rate limit",
        ] {
            assert!(all.contains(expected), "{expected:?} missing from:\n{all}");
        }
        assert_eq!(problems.len(), 8, "{all}");
    }

    #[test]
    fn unknown_keys_are_refused() {
        let file = write("[[issuer]]\nissuer = \"https://a.example\"\naudiance = \"x\"\n");
        let problems = plan(Some(&file.0), Flags::default()).expect_err("a typo");
        assert!(problems[0].contains("audiance"), "{problems:?}");
    }

    #[test]
    fn flags_alone_make_a_plan() {
        let flags = Flags {
            issuers: vec!["https://login.example".into()],
            audiences: vec!["api".into()],
            scopes: vec!["read".into()],
            ..Flags::default()
        };
        let plan = plan(None, flags).expect("a plan");
        assert_eq!(plan.listen.to_string(), DEFAULT_LISTEN);
        assert_eq!(plan.issuers[0].audiences, ["api"]);
        assert_eq!(plan.default_scopes, ["read"]);
        assert_eq!(plan.token_cache, Some(100_000));
        assert!(plan.rate_limit.is_none());
    }
}
