//! `idm demo`: the whole resource-server job against an embedded provider, on a fresh machine
//! with no network. Every step checks what it shows; any surprise exits 1.

use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use clap::Args as ClapArgs;
use identity_model::{Authority, Client, DiscoveryPolicy, TokenClient, Validation};
use identity_model_testkit::{Endpoint, Rotation, TestProvider};
use serde_json::{Value, json};

const CLIENT_ID: &str = "demo-service";
const CLIENT_SECRET: &str = "demo-secret";
const HOT_VALIDATIONS: u32 = 10_000;
const ROTATION_CALLERS: usize = 100;

#[derive(Debug, ClapArgs)]
pub(crate) struct Args {
    /// Print one JSON object instead of the narrated steps.
    #[arg(long)]
    json: bool,
}

struct Demo {
    json: bool,
    steps: Vec<Value>,
}

impl Demo {
    fn step(&mut self, name: &str, took: Duration, lines: &[String], detail: Value) {
        let ms = took.as_secs_f64() * 1000.0;
        if !self.json {
            let number = self.steps.len() + 1;
            println!("{number}. {name} ({ms:.1} ms)");
            for line in lines {
                println!("   {line}");
            }
        }
        let mut entry = json!({"step": name, "ms": (ms * 1000.0).round() / 1000.0});
        if let (Some(entry), Value::Object(detail)) = (entry.as_object_mut(), detail) {
            entry.extend(detail);
        }
        self.steps.push(entry);
    }
}

pub(crate) fn run(args: Args) -> ExitCode {
    let runtime = match identity_model::new_runtime(2) {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("idm: {}", e.message());
            return ExitCode::FAILURE;
        }
    };
    let mut demo = Demo { json: args.json, steps: Vec::new() };
    if !args.json {
        println!("identity-model demo: an embedded OpenID provider on 127.0.0.1, no network needed\n");
    }
    let started = Instant::now();
    let outcome = runtime.block_on(walk(&mut demo));
    let total_ms = started.elapsed().as_secs_f64() * 1000.0;
    match outcome {
        Ok(()) => {
            if args.json {
                println!("{}", json!({"ok": true, "total_ms": total_ms.round(), "steps": demo.steps}));
            } else {
                println!("\nall steps behaved as expected in {total_ms:.0} ms");
            }
            ExitCode::SUCCESS
        }
        Err(problem) => {
            if args.json {
                println!("{}", json!({"ok": false, "error": problem, "steps": demo.steps}));
            } else {
                println!("\nFAILED: {problem}");
            }
            ExitCode::FAILURE
        }
    }
}

fn header_of(token: &str) -> Value {
    identity_model::UnverifiedToken::parse(token, usize::MAX)
        .ok()
        .and_then(|t| serde_json::from_str(t.header().raw_json()).ok())
        .unwrap_or(Value::Null)
}

/// A client-credentials token through the library's token client (endpoint from discovery,
/// client_secret_basic): the access token and its `expires_in`.
async fn client_credentials(service: &TokenClient) -> Result<(String, Option<u64>), String> {
    let tokens = service
        .client_credentials(&["api:read"], &[])
        .await
        .map_err(|e| format!("token request failed: {e}"))?;
    Ok((tokens.access_token.expose().to_owned(), tokens.expires_in))
}

async fn walk(demo: &mut Demo) -> Result<(), String> {
    // 1. The provider.
    let clock = Instant::now();
    let provider = TestProvider::start().await.map_err(|e| format!("cannot start the provider: {e}"))?;
    let issuer = provider.issuer().to_owned();
    let algs: Vec<String> = provider.jwks()["keys"]
        .as_array()
        .map(|keys| keys.iter().filter_map(|k| k["alg"].as_str().map(str::to_owned)).collect())
        .unwrap_or_default();
    demo.step(
        "provider",
        clock.elapsed(),
        &[format!("issuer {issuer}, signing keys {}", algs.join(", "))],
        json!({"issuer": issuer, "algorithms": algs}),
    );

    // 2. Discovery.
    let audience = provider.default_audience().to_owned();
    let rules = Validation::new(issuer.clone()).audience(audience.clone()).token_type("at+jwt");
    let authority = Authority::builder(issuer.clone())
        .rules(rules)
        .policy(DiscoveryPolicy::default().allow_http_on_loopback())
        .build()
        .map_err(|e| e.to_string())?;
    let clock = Instant::now();
    let document = authority.discover().await.map_err(|e| format!("discovery failed: {e}"))?;
    let token_endpoint = document.token_endpoint().ok_or("no token_endpoint")?.to_owned();
    let jwks_uri = document.jwks_uri().ok_or("no jwks_uri")?.to_owned();
    demo.step(
        "discovery",
        clock.elapsed(),
        &[format!("token_endpoint {token_endpoint}"), format!("jwks_uri {jwks_uri}")],
        json!({"token_endpoint": token_endpoint, "jwks_uri": jwks_uri}),
    );

    // 3. A client-credentials token.
    let service = TokenClient::builder(Client::with_secret(CLIENT_ID, CLIENT_SECRET))
        .authority(&authority)
        .build()
        .map_err(|e| e.to_string())?;
    let clock = Instant::now();
    let (token, expires_in) = client_credentials(&service).await?;
    let header = header_of(&token);
    demo.step(
        "client_credentials",
        clock.elapsed(),
        &[format!(
            "{CLIENT_ID} got an access token: typ {}, alg {}, kid {}, expires_in {}",
            header["typ"].as_str().unwrap_or("?"),
            header["alg"].as_str().unwrap_or("?"),
            header["kid"].as_str().unwrap_or("?"),
            expires_in.map_or_else(|| "?".to_owned(), |e| e.to_string())
        )],
        json!({"client_id": CLIENT_ID, "header": header, "expires_in": expires_in}),
    );

    // 4. Validation through the Authority: cold (fetches keys), then hot.
    let clock = Instant::now();
    let valid =
        authority.validate(&token).await.map_err(|e| format!("the issued token was rejected: {e}"))?;
    let cold = clock.elapsed();
    let clock = Instant::now();
    for _ in 0..HOT_VALIDATIONS {
        authority.validate(&token).await.map_err(|e| format!("hot validation failed: {e}"))?;
    }
    let hot_us = clock.elapsed().as_secs_f64() * 1e6 / f64::from(HOT_VALIDATIONS);
    let claims: Value = serde_json::from_str(valid.claims.raw_json()).unwrap_or(Value::Null);
    demo.step(
        "validate",
        cold,
        &[
            format!("valid: sub {}, aud {}, scope {}", claims["sub"], claims["aud"], claims["scope"]),
            format!("first validation fetched discovery and keys; then {HOT_VALIDATIONS} more at {hot_us:.1} µs each"),
        ],
        json!({"claims": claims, "hot_validations": HOT_VALIDATIONS, "hot_us_per_validation": (hot_us * 10.0).round() / 10.0}),
    );

    // 5. The key cache.
    let cache = cache_state(&authority, &provider).await?;
    if cache["provider_jwks_requests"] != 1 {
        return Err(format!("expected one key set request so far, saw {}", cache["provider_jwks_requests"]));
    }
    demo.step(
        "key_cache",
        Duration::ZERO,
        &[
            format!("cached kids {}", cache["kids"]),
            format!(
                "authority: {} hits, {} misses, {} key fetches; provider saw {} key set request(s)",
                cache["hits"], cache["misses"], cache["refreshes"], cache["provider_jwks_requests"]
            ),
        ],
        cache,
    );

    // 6. Rotation: new keys, a token signed with them, many callers, one refetch.
    let new_kids = provider.rotate_keys(Rotation::Overlap);
    let before = provider.requests(Endpoint::Jwks);
    let clock = Instant::now();
    let rotated = Arc::new(client_credentials(&service).await?.0);
    let kid = header_of(&rotated)["kid"].as_str().unwrap_or_default().to_owned();
    if !new_kids.contains(&kid) {
        return Err(format!("the new token's kid {kid} is not one of the rotated keys"));
    }
    let mut callers = tokio::task::JoinSet::new();
    for _ in 0..ROTATION_CALLERS {
        let authority = authority.clone();
        let token = Arc::clone(&rotated);
        callers.spawn(async move { authority.validate(&token).await.map(|_| ()).map_err(|e| e.to_string()) });
    }
    while let Some(result) = callers.join_next().await {
        result
            .map_err(|e| e.to_string())?
            .map_err(|e| format!("a token signed with the new key failed: {e}"))?;
    }
    let refetches = provider.requests(Endpoint::Jwks) - before;
    if refetches != 1 {
        return Err(format!("expected one refetch for the new kid, saw {refetches}"));
    }
    authority
        .validate(&token)
        .await
        .map_err(|e| format!("the old token stopped validating during overlap: {e}"))?;
    demo.step(
        "rotation",
        clock.elapsed(),
        &[
            format!("provider rotated keys (old ones still published); new token kid {kid}"),
            format!("{ROTATION_CALLERS} concurrent validations of it caused {refetches} key set request"),
            "the token signed with the old key still validates".to_owned(),
        ],
        json!({"new_kid": kid, "concurrent_callers": ROTATION_CALLERS, "jwks_requests": refetches}),
    );

    // 7. Rejections.
    let before = provider.requests(Endpoint::Jwks);
    let clock = Instant::now();
    let cases = [
        ("expired", provider.token().expired().sign(), "token_expired"),
        ("wrong audience", provider.token().audience("https://other.example").sign(), "invalid_audience"),
        ("tampered signature", provider.token().tampered_signature(), "invalid_signature"),
        ("alg none", provider.token().unsigned(), "algorithm_not_allowed"),
    ];
    let mut lines = Vec::new();
    let mut rejected = Vec::new();
    for (what, token, expected) in cases {
        match authority.validate(&token).await {
            Ok(_) => return Err(format!("the {what} token was accepted")),
            Err(e) if e.kind().as_str() == expected => {
                lines.push(format!("{what:<19} rejected: {expected}"));
                rejected.push(json!({"case": what, "error": expected, "message": e.message()}));
            }
            Err(e) => {
                return Err(format!(
                    "the {what} token failed with {} instead of {expected}",
                    e.kind().as_str()
                ));
            }
        }
    }
    let extra = provider.requests(Endpoint::Jwks) - before;
    lines.push(format!("key set requests caused by the rejected tokens: {extra}"));
    demo.step("rejections", clock.elapsed(), &lines, json!({"rejected": rejected, "jwks_requests": extra}));

    // 8. The forward-auth sidecar, in this process, asked as nginx asks it.
    let clock = Instant::now();
    let (addr, sidecar) = crate::serve::start_in_process(&issuer, provider.default_audience()).await?;
    let token = provider.token().subject("demo-user").sign();
    let allowed = forward_check(addr, Some(&token)).await?;
    let refused = forward_check(addr, None).await?;
    sidecar.abort();
    let user = allowed.header("x-auth-request-user");
    if allowed.status != 200 || user != Some("demo-user") {
        return Err(format!("the sidecar did not allow the valid token: {} {user:?}", allowed.status));
    }
    let challenge = refused.header("www-authenticate").unwrap_or_default().to_owned();
    if refused.status != 401 || !challenge.starts_with("Bearer realm=") {
        return Err(format!("the sidecar did not refuse the request without a token: {}", refused.status));
    }
    demo.step(
        "sidecar",
        clock.elapsed(),
        &[
            format!("idm serve started in-process on http://{addr}"),
            "GET /auth (X-Original-URI /orders) with the token: 200, X-Auth-Request-User: demo-user"
                .to_owned(),
            format!("GET /auth without a token: 401, WWW-Authenticate: {challenge}"),
        ],
        json!({
            "addr": addr.to_string(),
            "allowed": {"status": allowed.status, "user": user},
            "refused": {"status": refused.status, "www_authenticate": challenge, "body": refused.body},
        }),
    );
    Ok(())
}

/// An answer of the in-process sidecar.
struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: Value,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

/// One check as nginx's `auth_request` sends it.
async fn forward_check(addr: std::net::SocketAddr, token: Option<&str>) -> Result<Answer, String> {
    let client = reqwest::Client::builder().no_proxy().build().map_err(|e| format!("sidecar: {e}"))?;
    let mut request = client
        .get(format!("http://{addr}/auth"))
        .header("X-Original-Method", "GET")
        .header("X-Original-URI", "/orders");
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.map_err(|e| format!("sidecar: {e}"))?;
    let status = response.status().as_u16();
    let headers = response
        .headers()
        .iter()
        .map(|(n, v)| (n.as_str().to_owned(), String::from_utf8_lossy(v.as_bytes()).into_owned()))
        .collect();
    let body = response.bytes().await.map_err(|e| format!("sidecar: {e}"))?;
    Ok(Answer { status, headers, body: serde_json::from_slice(&body).unwrap_or(Value::Null) })
}

async fn cache_state(authority: &Authority, provider: &TestProvider) -> Result<Value, String> {
    let keys = authority.keys().await.map_err(|e| e.to_string())?;
    let kids: Vec<&str> = keys.keys().iter().filter_map(|k| k.kid()).collect();
    let stats = authority.stats();
    Ok(json!({
        "kids": kids,
        "hits": stats.hits.load(Ordering::Relaxed),
        "misses": stats.misses.load(Ordering::Relaxed),
        "refreshes": stats.refreshes.load(Ordering::Relaxed),
        "discovery_fetches": stats.discovery_fetches.load(Ordering::Relaxed),
        "provider_discovery_requests": provider.requests(Endpoint::Discovery),
        "provider_jwks_requests": provider.requests(Endpoint::Jwks),
    }))
}
