//! `idm serve`: a forward-auth sidecar. nginx (`auth_request`), Traefik (`forwardAuth`),
//! Caddy (`forward_auth`) and Envoy (`ext_authz`, HTTP service) ask it whether a request may
//! pass; it validates the bearer token with the library's [`BearerLayer`] (one per route
//! rule), answers 200 with the identity headers, or 400 / 401 / 403 / 429 / 503 with a
//! challenge and a JSON body. `/healthz`, `/readyz` and `/metrics` (Prometheus text) are
//! beside it.
//!
//! Folders by job: [`proxy`] reads each proxy's protocol, [`route`] picks the rule, [`check`]
//! judges one check and counts it, [`answer`] writes the answers and identity headers, [`health`] keeps keys and readiness, [`listener`]
//! is the server with its limits, [`config`] reads flags and file, [`limit`] is the rate limit.

mod answer;
mod check;
mod claim_rules;
mod config;
mod credential;
mod grpc;
mod health;
mod introspect;
mod limit;
mod listener;
#[cfg(test)]
mod properties;
mod proxy;
mod reload;
mod route;
mod shared;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::Response;
use clap::Args as ClapArgs;
use http::{HeaderValue, StatusCode, header};
use identity_model::{
    Authority, BearerLayer, Issuers, RedisClient, RedisReplayStore, TokenCacheConfig, Validation,
};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use serde_json::json;

use config::{LogFormat, Plan};
use proxy::{PROXIES, Proxy};
use route::Routes;

/// Serve forward-auth checks (see README "Protect a service").
#[derive(Debug, ClapArgs)]
pub(crate) struct Args {
    /// Trust tokens from this issuer (repeatable; each gets every --audience). More issuers,
    /// route rules and claim headers go in --config.
    #[arg(long = "issuer", value_name = "ISS")]
    issuers: Vec<String>,
    /// An accepted audience (repeatable): a token's `aud` must contain one. Required.
    #[arg(long = "audience", value_name = "AUD")]
    audiences: Vec<String>,
    /// Allow http:// issuers on loopback hosts (development and tests only).
    #[arg(long)]
    allow_http: bool,
    /// Address and port to listen on [default: 127.0.0.1:9401; port 0 picks a free one].
    #[arg(long, value_name = "ADDR")]
    listen: Option<String>,
    /// A scope every check requires (repeatable), unless a route rule of --config says
    /// otherwise.
    #[arg(long = "scope", value_name = "S")]
    scopes: Vec<String>,
    /// A TOML file: [[issuer]] (issuer, audience, allow_http, max_staleness_secs, jwks_uri,
    /// jwks_file, keys), [[route]] (prefix, host, methods, scopes, any_scopes, claim_rules,
    /// anonymous, token_from), [claims] (claim or dotted.path = "Header-Name"), [token_cache],
    /// [rate_limit], [redis], [resource_metadata], and the flags' keys; README's "idm serve
    /// reference" lists every key. Reloaded on SIGHUP and when it changes.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Log format on standard error: text or json [default: text]. Level from RUST_LOG
    /// (default info). Tokens are never logged.
    #[arg(long, value_name = "FORMAT")]
    log_format: Option<String>,
    /// The realm of WWW-Authenticate challenges [default: api].
    #[arg(long, value_name = "REALM")]
    realm: Option<String>,
    /// Per-client rate limit in checks per second (token bucket keyed by client_id, else azp,
    /// else sub); over it a check gets 429 with Retry-After. Off by default.
    #[arg(long, value_name = "PER_SECOND")]
    rate_limit: Option<u32>,
    /// The rate limit's burst [default: the per-second rate].
    #[arg(long, value_name = "N")]
    rate_burst: Option<u32>,
    /// Validate every check in full: turn the validated-token cache off.
    #[arg(long)]
    no_token_cache: bool,
    /// The protected service's origin as its clients see it (`https://api.example`): DPoP
    /// proofs' `htu` must name it and the original path. Without it, the origin Traefik
    /// reports (X-Forwarded-Proto and -Host) is used; nginx and Envoy checks of DPoP requests
    /// are then refused (invalid_dpop_proof), since their origin is unknown.
    #[arg(long, value_name = "URL")]
    public_origin: Option<String>,
    /// Require DPoP nonces: a file of at least 32 secret bytes keys the rotating nonces (5 min
    /// windows; instances sharing the file share the nonces). A proof without a current nonce
    /// gets 401 use_dpop_nonce with a DPoP-Nonce header.
    #[arg(long, value_name = "FILE")]
    dpop_nonce_secret_file: Option<String>,
    /// The oldest DPoP proof accepted, in seconds since its iat [default: 300].
    #[arg(long, value_name = "SECONDS")]
    dpop_max_age: Option<u32>,
    /// How far ahead of the sidecar's clock a DPoP proof's iat may be, in seconds [default:
    /// the tokens' leeway, 60].
    #[arg(long, value_name = "SECONDS")]
    dpop_leeway: Option<u32>,
    /// The proxy in front: nginx (checks on /auth with X-Original-URI and -Method), traefik or
    /// caddy (/auth with X-Forwarded-Uri, -Method, -Proto, -Host), or envoy (/ext-authz/PATH,
    /// the check's own method) [default: nginx]. Never guessed from headers: a check that
    /// carries another proxy's original-request headers gets 400 proxy_header_conflict.
    #[arg(long, value_name = "PROXY")]
    proxy: Option<String>,
    /// Seconds a client has to send a request's headers, counted from the connection's start
    /// or the end of the previous answer, so idle keep-alive connections close after it too
    /// [default: 10].
    #[arg(long, value_name = "SECONDS")]
    header_timeout: Option<u64>,
    /// Most connections open at once; past it new connections wait in the listen backlog and
    /// a warning is logged [default: 10000]. The soft open-files limit is raised to the hard
    /// one at start.
    #[arg(long, value_name = "N")]
    max_connections: Option<usize>,
    /// After SIGTERM: seconds the checks in flight get before every connection is closed and
    /// the process exits 0 [default: 10].
    #[arg(long, value_name = "SECONDS")]
    shutdown_timeout: Option<u64>,
    /// Record DPoP proofs in this Redis (redis://, rediss:// for TLS; several URLs separated
    /// by commas for the nodes of a Redis Cluster), shared by every
    /// instance that uses it: a proof accepted by one is refused by all. When Redis does not
    /// answer within the deadline, DPoP checks get 503 replay_store_unavailable (fail closed)
    /// and /readyz reports 503. The password comes from --redis-password-file or
    /// IDM_REDIS_PASSWORD, never from this URL.
    #[arg(long, value_name = "URL")]
    redis: Option<String>,
    /// The Redis key prefix [default: idm:replay]; instances that share records share it.
    #[arg(long, value_name = "PREFIX")]
    redis_prefix: Option<String>,
    /// The most a Redis command may take, in milliseconds [default: 50].
    #[arg(long, value_name = "MS")]
    redis_deadline_ms: Option<u64>,
    /// Let DPoP proofs through UNRECORDED while Redis cannot be asked (counted and logged on
    /// every use) instead of refusing them: replay is then possible during an outage.
    #[arg(long)]
    redis_fail_open: bool,
    /// Keep the rate limit in Redis (one limit for every instance; needs --redis). While
    /// Redis cannot be asked, each instance limits alone at [rate_limit]
    /// fallback_per_second (default: the whole rate), or refuses with 503 when
    /// on_store_failure = "refuse".
    #[arg(long)]
    rate_limit_shared: bool,
    /// A file holding the Redis password.
    #[arg(long, value_name = "FILE")]
    redis_password_file: Option<String>,
    /// The CA certificate (PEM) that signed a rediss:// server's certificate, when it is not
    /// one of the system's roots.
    #[arg(long, value_name = "FILE")]
    redis_ca_file: Option<String>,
    /// Where tokens are looked for (repeatable; default: authorization): "authorization",
    /// "cookie:NAME" or "header:NAME". A check with a token in two places (the Authorization
    /// header always counts) gets 400 multiple_credentials. A token found elsewhere than the
    /// Authorization header is judged as a bearer token. Per route: token_from in [[route]].
    #[arg(long = "token-from", value_name = "SOURCE")]
    token_from: Vec<String>,
    /// Also look for the token in this query parameter of the original URI. Dangerous: URLs
    /// end up in access logs, browser history and Referer headers.
    #[arg(long, value_name = "NAME")]
    dangerous_token_from_query: Option<String>,
    /// Judge CORS preflight requests like any other (by default an OPTIONS request with Origin
    /// and Access-Control-Request-Method, no credential and no method override passes without
    /// a token, counted as kind "cors_preflight").
    #[arg(long)]
    no_cors_preflight: bool,
    /// Serve RFC 9728 protected resource metadata for this resource URL (an https URL; the
    /// document's other members default to the issuers, the token sources and the DPoP
    /// algorithms; more in [resource_metadata]) at /.well-known/oauth-protected-resource
    /// (plus the resource's path), and name it in every challenge (resource_metadata="...").
    #[arg(long, value_name = "URL")]
    resource_metadata: Option<String>,
    /// Check this configuration file (with the other flags) in full, without serving: exit 0
    /// when it is good, 2 with every problem listed. A running sidecar reloads its --config
    /// on SIGHUP and when the file changes (a configuration with problems is refused and the
    /// old one keeps serving).
    #[arg(long, value_name = "FILE", conflicts_with = "config")]
    check_config: Option<PathBuf>,
    /// Also serve Envoy's ext_authz over gRPC (envoy.service.auth.v3.Authorization/Check)
    /// on this address, with the same decisions, and the gRPC health protocol for readiness
    /// [default: off; port 0 picks a free one].
    #[arg(long, value_name = "ADDR")]
    grpc_listen: Option<String>,
}

/// Histogram buckets for durations, in seconds (10 us to 1 s).
const DURATION_BUCKETS: [f64; 12] =
    [0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.1, 1.0];

/// One set of requirements: the layer that enforces it, where its tokens are, and the
/// rule's name.
#[derive(Debug, Clone)]
struct Guard {
    layer: BearerLayer,
    sources: Vec<credential::TokenSource>,
    /// Rules on claims, judged after the token is valid and its scopes suffice.
    claim_rules: Vec<claim_rules::ClaimRule>,
    rule: String,
}

#[derive(Debug)]
struct App {
    plan: Plan,
    authorities: Vec<Authority>,
    /// One keeper per authority, same order.
    keepers: Vec<Arc<health::Keeper>>,
    /// The introspector of each issuer that has one, same order (kept across reloads while
    /// the issuer and its introspection settings stay the same).
    introspectors: Vec<Option<Arc<introspect::Introspector>>>,
    default_guard: Guard,
    /// Route rules, most specific first, and their guards in the same order.
    routes: Routes,
    guards: Vec<Guard>,
    limiter: Option<limit::Limiter>,
    /// The Redis shared by the instances, when configured (else each guard has its own
    /// memory replay store and the limit is per instance).
    redis: Option<RedisClient>,
    metrics: Option<PrometheusHandle>,
    meters: Meters,
    /// Where the RFC 9728 document is served (empty when there is none).
    metadata_path: String,
}

/// The sidecar's metric handles for the hot outcomes, registered once (a lookup per check
/// would cost more than the check itself on a cache hit).
#[derive(Debug)]
struct Meters {
    /// Allowed checks per proxy protocol ([`PROXIES`] order).
    allowed: [metrics::Counter; 4],
    durations: [metrics::Histogram; 4],
    in_flight: metrics::Gauge,
}

impl Meters {
    fn new() -> Meters {
        Meters {
            allowed: PROXIES.map(|proxy| {
                metrics::counter!("idm_serve_checks_total", "mode" => proxy.as_str(), "status" => "200", "kind" => "none")
            }),
            durations: PROXIES
                .map(|proxy| metrics::histogram!("idm_serve_check_duration_seconds", "mode" => proxy.as_str())),
            in_flight: metrics::gauge!("idm_serve_checks_in_flight"),
        }
    }
}

pub(crate) fn run(args: Args) -> ExitCode {
    let flags = config::Flags {
        issuers: args.issuers,
        audiences: args.audiences,
        allow_http: args.allow_http,
        listen: args.listen,
        scopes: args.scopes,
        realm: args.realm,
        log_format: args.log_format,
        rate_limit: args.rate_limit,
        rate_burst: args.rate_burst,
        rate_limit_shared: args.rate_limit_shared,
        no_token_cache: args.no_token_cache,
        public_origin: args.public_origin,
        dpop_nonce_secret_file: args.dpop_nonce_secret_file,
        dpop_max_age_secs: args.dpop_max_age,
        dpop_leeway_secs: args.dpop_leeway,
        proxy: args.proxy,
        header_timeout_secs: args.header_timeout,
        max_connections: args.max_connections,
        shutdown_timeout_secs: args.shutdown_timeout,
        redis: shared::RedisFlags {
            url: args.redis,
            prefix: args.redis_prefix,
            deadline_ms: args.redis_deadline_ms,
            fail_open: args.redis_fail_open,
            password_file: args.redis_password_file,
            ca_file: args.redis_ca_file,
        },
        token_from: args.token_from,
        dangerous_token_from_query: args.dangerous_token_from_query,
        no_cors_preflight: args.no_cors_preflight,
        resource: args.resource_metadata,
        grpc_listen: args.grpc_listen,
    };
    let mut problems = Vec::new();
    let settings = identity_model::Settings::from_env().unwrap_or_else(|e| {
        problems.extend(e.problems.iter().map(|p| format!("{}: {}", p.variable, p.reason)));
        identity_model::Settings::default()
    });
    let checking = args.check_config.is_some();
    let config_path = args.check_config.or(args.config);
    let plan = match config::plan(config_path.as_deref(), flags.clone()) {
        Ok(plan) => Some(plan),
        Err(found) => {
            problems.extend(found);
            None
        }
    };
    // The recorder first: authorities register their counters with it when built.
    let metrics = PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Suffix("duration_seconds".into()), &DURATION_BUCKETS)
        .and_then(|builder| builder.install_recorder())
        .map_err(|e| format!("metrics are off: cannot install the recorder: {e}"));
    let authorities = plan.as_ref().map(|plan| build_authorities(plan, &settings, &mut problems));
    let (Some(plan), Some(authorities)) = (plan, authorities) else { return usage(&problems) };
    if !problems.is_empty() {
        return usage(&problems);
    }
    if checking {
        println!(
            "idm serve: the configuration is good ({} issuer(s), {} route rule(s))",
            plan.issuers.len(),
            plan.routes.len()
        );
        return ExitCode::SUCCESS;
    }
    init_logging(plan.log_format);
    let open_files = listener::raise_open_files_limit();
    if let Some((before, after)) = open_files.filter(|(before, after)| before != after) {
        tracing::info!(before, after, "open-files limit raised to the hard limit");
    }
    listener::check_connection_budget(plan.limits.max_connections, open_files.map(|(_, after)| after));
    let metrics = metrics.map_err(|e| tracing::warn!("{e}")).ok();
    let threads = std::thread::available_parallelism().map_or(2, usize::from);
    let runtime = match identity_model::new_runtime(threads) {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("idm: {}", e.message());
            return ExitCode::FAILURE;
        }
    };
    let redis = {
        let _inside = runtime.enter();
        match plan.redis.as_ref().map(shared::connect).transpose() {
            Ok(redis) => redis,
            Err(problem) => return usage(&[problem]),
        }
    };
    let pairs = authorities.into_iter().map(|a| (a, Arc::new(health::Keeper::new()))).collect();
    let app = match App::new(plan, pairs, Vec::new(), metrics.clone(), redis.clone()) {
        Ok(app) => app,
        Err(problem) => return usage(&[problem]),
    };
    let live = Arc::new(reload::Live::new(app, config_path, flags, settings, redis, metrics));
    let code = runtime.block_on(serve(live));
    // Connections past the shutdown deadline and the keepers are dropped, not awaited.
    runtime.shutdown_background();
    code
}

/// Prints every problem and gives the usage exit code.
fn usage(problems: &[String]) -> ExitCode {
    for problem in problems {
        eprintln!("idm serve: {problem}");
    }
    eprintln!("idm serve: {} configuration problem(s); see idm serve --help", problems.len());
    ExitCode::from(2)
}

/// Builds every issuer's authority; the problems of those that cannot be built are collected.
fn build_authorities(
    plan: &Plan,
    settings: &identity_model::Settings,
    problems: &mut Vec<String>,
) -> Vec<Authority> {
    let mut built = Vec::new();
    for issuer in &plan.issuers {
        match build_authority(issuer, plan, settings) {
            Ok(authority) => built.push(authority),
            Err(problem) => problems.push(problem),
        }
    }
    built
}

/// One issuer's authority (no request is sent).
fn build_authority(
    issuer: &config::IssuerPlan,
    plan: &Plan,
    settings: &identity_model::Settings,
) -> Result<Authority, String> {
    let mut rules = Validation::new(issuer.issuer.clone());
    for audience in &issuer.audiences {
        rules = rules.audience(audience.clone());
    }
    let mut settings = settings.clone();
    // An open circuit holds back the keeper's attempts too: it may not outlast the readiness
    // backoff cap, or a provider that is back would be seen late.
    settings.circuit.open_for = settings.circuit.open_for.min(health::READY_BACKOFF_CAP);
    let mut builder = Authority::builder(issuer.issuer.clone())
        .keys_from(issuer.keys_from.clone())
        .rules(rules)
        .policy(crate::remote::policy(issuer.allow_http).resource_server_fields())
        .settings(settings);
    if let Some(secs) = issuer.max_staleness_secs {
        builder = builder.max_staleness(Duration::from_secs(secs));
    }
    if let Some(max_entries) = plan.token_cache {
        builder = builder.token_cache(TokenCacheConfig { max_entries, ..TokenCacheConfig::default() });
    }
    builder.build().map_err(|e| format!("issuer {:?}: {}", issuer.issuer, e.message()))
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder =
        tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_ansi(ansi);
    let _ = match format {
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
        LogFormat::Text => builder.try_init(),
    };
}

impl App {
    /// The application of `plan`; `reuse` holds, by issuer position, introspectors to keep
    /// (those of a previous configuration whose issuer did not change; empty at start).
    fn new(
        plan: Plan,
        issuers: Vec<(Authority, Arc<health::Keeper>)>,
        reuse: Vec<Option<Arc<introspect::Introspector>>>,
        metrics: Option<PrometheusHandle>,
        redis: Option<(RedisClient, RedisReplayStore)>,
    ) -> Result<App, String> {
        let (authorities, keepers): (Vec<Authority>, Vec<Arc<health::Keeper>>) = issuers.into_iter().unzip();
        let mut base = match authorities.as_slice() {
            [one] => BearerLayer::new(one.clone()),
            many => BearerLayer::issuers(many.iter().cloned().fold(Issuers::new(), Issuers::with)),
        }
        .realm(plan.realm.clone())
        .dpop_rules(plan.dpop_rules.clone());
        if let Some(metadata) = &plan.resource_metadata {
            base = base.resource_metadata(metadata.url());
        }
        let mut introspectors = Vec::with_capacity(plan.issuers.len());
        for (i, (issuer, authority)) in plan.issuers.iter().zip(&authorities).enumerate() {
            let Some(introspection) = &issuer.introspection else {
                introspectors.push(None);
                continue;
            };
            let kept = reuse.get(i).cloned().flatten().filter(|kept| kept.has_plan(introspection));
            let introspector = match kept {
                Some(kept) => kept,
                None => Arc::new(introspect::Introspector::new(
                    &issuer.issuer,
                    &issuer.audiences,
                    introspection.clone(),
                    authority,
                )?),
            };
            base = base.opaque_tokens(Arc::clone(&introspector) as Arc<dyn identity_model::OpaqueTokens>);
            introspectors.push(Some(introspector));
        }
        if let Some((_, store)) = &redis {
            base = base.dpop_replay_store(Arc::new(store.clone()));
        }
        let default_guard = Guard {
            layer: base.clone().require_all_scopes(plan.default_scopes.clone()),
            sources: plan.token_sources.clone(),
            claim_rules: Vec::new(),
            rule: "default".into(),
        };
        let routes = Routes::new(plan.routes.clone());
        let guards = routes
            .rules()
            .iter()
            .map(|route| {
                let mut layer = base
                    .clone()
                    .require_all_scopes(route.scopes.clone())
                    .require_any_scope(route.any_scopes.clone());
                if route.anonymous {
                    layer = layer.optional();
                }
                let sources = route.token_sources.clone().unwrap_or_else(|| plan.token_sources.clone());
                let rule = match &route.host {
                    Some(host) => format!("{host}{}", route.prefix),
                    None => route.prefix.clone(),
                };
                Guard { layer, sources, claim_rules: route.claim_rules.clone(), rule }
            })
            .collect();
        let prefix = plan.redis.as_ref().map_or("", |r| r.prefix.as_str());
        let limiter = plan
            .rate_limit
            .map(|limit| limit::Limiter::new(limit, redis.as_ref().map(|(client, _)| (client, prefix))))
            .transpose()?;
        let plan_metadata_path =
            plan.resource_metadata.as_ref().map(|m| m.well_known_path()).unwrap_or_default();
        Ok(App {
            plan,
            authorities,
            keepers,
            introspectors,
            default_guard,
            routes,
            guards,
            limiter,
            redis: redis.map(|(client, _)| client),
            metrics,
            meters: Meters::new(),
            metadata_path: plan_metadata_path,
        })
    }

    /// Whether every issuer has usable keys and the shared store (when there is one) answers.
    fn ready(&self) -> bool {
        self.authorities.iter().all(|a| a.key_status().usable)
            && self.redis.as_ref().is_none_or(|client| shared::readiness(client).0)
    }

    fn guard(&self, choice: route::Choice) -> &Guard {
        choice.and_then(|i| self.guards.get(i)).unwrap_or(&self.default_guard)
    }
}

async fn serve(live: Arc<reload::Live>) -> ExitCode {
    let app = live.app();
    let listener = match tokio::net::TcpListener::bind(app.plan.listen).await {
        Ok(listener) => listener,
        Err(e) => {
            eprintln!("idm serve: cannot listen on {}: {e}", app.plan.listen);
            return ExitCode::FAILURE;
        }
    };
    let addr = listener.local_addr().map_or_else(|_| app.plan.listen.to_string(), |a| a.to_string());
    live.start_keepers();
    if let Some(client) = &app.redis {
        tokio::spawn(shared::keep(client.clone()));
    }
    let tidy = Arc::clone(&live);
    tokio::spawn(async move {
        let mut every = tokio::time::interval(Duration::from_secs(5));
        loop {
            every.tick().await;
            let app = tidy.app();
            if let Some(metrics) = &app.metrics {
                metrics.run_upkeep();
            }
            if let Some(limiter) = &app.limiter {
                limiter.tidy();
            }
        }
    });
    tokio::spawn(reload::watch(Arc::clone(&live)));
    // Signals are listened for before the address is printed: a stop sent right after it is
    // a clean stop.
    let stop = crate::provider::Stop::listen();
    let issuers: Vec<&str> = app.authorities.iter().map(Authority::issuer).collect();
    tracing::info!(listen = %addr, issuers = ?issuers, "idm serve started; loading keys");
    println!("idm serve: listening on http://{addr}");
    let _ = std::io::Write::flush(&mut std::io::stdout());
    let (stopping, stopped) = tokio::sync::watch::channel(false);
    if let Some(addr) = app.plan.grpc_listen {
        match tokio::net::TcpListener::bind(addr).await {
            Ok(grpc) => {
                let bound = grpc.local_addr().map_or_else(|_| addr.to_string(), |a| a.to_string());
                println!("idm serve: gRPC ext_authz on {bound}");
                let _ = std::io::Write::flush(&mut std::io::stdout());
                let mut stopped = stopped.clone();
                let stop = async move {
                    let _ = stopped.changed().await;
                };
                tokio::spawn(grpc::serve(Arc::clone(&live), grpc, stop));
            }
            Err(e) => {
                eprintln!("idm serve: cannot listen on {addr} (gRPC): {e}");
                return ExitCode::FAILURE;
            }
        }
    }
    let router = axum::Router::new().fallback(handle).with_state(Arc::clone(&live));
    listener::serve(listener, router, app.plan.limits, async move {
        stop.wait().await;
        tracing::info!("stop requested");
        let _ = stopping.send(true);
    })
    .await;
    tracing::info!("idm serve stopped");
    ExitCode::SUCCESS
}

/// A sidecar inside this process for `issuer` and `audience` (HTTP allowed on loopback), on a
/// free loopback port, without metrics: for `idm demo`. It serves until the task is aborted.
pub(crate) async fn start_in_process(
    issuer: &str,
    audience: &str,
) -> Result<(std::net::SocketAddr, tokio::task::JoinHandle<()>), String> {
    let flags = config::Flags {
        issuers: vec![issuer.to_owned()],
        audiences: vec![audience.to_owned()],
        allow_http: true,
        listen: Some("127.0.0.1:0".into()),
        ..config::Flags::default()
    };
    let plan = config::plan(None, flags).map_err(|problems| problems.join("; "))?;
    let mut problems = Vec::new();
    let authorities = build_authorities(&plan, &identity_model::Settings::default(), &mut problems);
    if !problems.is_empty() {
        return Err(problems.join("; "));
    }
    let pairs = authorities.into_iter().map(|a| (a, Arc::new(health::Keeper::new()))).collect();
    let app = App::new(plan, pairs, Vec::new(), None, None)?;
    let listener = tokio::net::TcpListener::bind(app.plan.listen).await.map_err(|e| e.to_string())?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let limits = app.plan.limits;
    let live = Arc::new(reload::Live::new(
        app,
        None,
        config::Flags::default(),
        identity_model::Settings::default(),
        None,
        None,
    ));
    let router = axum::Router::new().fallback(handle).with_state(live);
    let task = tokio::spawn(listener::serve(listener, router, limits, std::future::pending()));
    Ok((addr, task))
}

async fn handle(State(live): State<Arc<reload::Live>>, request: Request) -> Response {
    let app = live.app();
    let path = request.uri().path();
    match path {
        "/healthz" => return answer::json(StatusCode::OK, &json!({"status": "ok"})),
        "/readyz" => {
            return health::readyz(&app.authorities, &app.keepers, app.redis.as_ref(), live.report());
        }
        "/metrics" => return metrics(&app),
        _ => {}
    }
    if let Some(metadata) = &app.plan.resource_metadata {
        if path == app.metadata_path {
            return answer::resource_metadata(metadata);
        }
    }
    // One protocol per sidecar: Envoy's checks are under /ext-authz (its path_prefix), the
    // others on /auth. A path of the other kind is not a check.
    let proxy = app.plan.proxy;
    let envoy_target = match (proxy, path.strip_prefix("/ext-authz")) {
        (Proxy::Envoy, Some(rest)) if rest.is_empty() || rest.starts_with('/') => {
            Some(match request.uri().query() {
                Some(query) => format!("{rest}?{query}"),
                None => rest.to_owned(),
            })
        }
        (Proxy::Envoy, _) => return not_a_check("/ext-authz/...", proxy),
        (_, _) if path == "/auth" => None,
        (_, _) => return not_a_check("/auth", proxy),
    };
    let original = proxy::read(proxy, request.method(), request.headers(), envoy_target.as_deref());
    check::check(&app, proxy, original, request.headers()).await
}

/// 404 for a path that is neither a check of the configured protocol nor health or metrics.
fn not_a_check(checks: &str, proxy: Proxy) -> Response {
    answer::json(
        StatusCode::NOT_FOUND,
        &json!({
            "error": "not_found",
            "message": format!("checks are on {checks} (this sidecar speaks {}'s protocol: --proxy)", proxy.as_str()),
        }),
    )
}

fn metrics(app: &App) -> Response {
    match &app.metrics {
        Some(handle) => {
            let mut response = Response::new(Body::from(handle.render()));
            response
                .headers_mut()
                .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; version=0.0.4"));
            response
        }
        None => answer::json(
            StatusCode::SERVICE_UNAVAILABLE,
            &json!({"error": "metrics_unavailable", "message": "the metrics recorder could not be installed"}),
        ),
    }
}
