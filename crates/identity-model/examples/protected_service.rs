//! An axum service protected by `BearerLayer`, run against `idm provider`:
//!
//! ```sh
//! cargo run -p idm -- provider                                                   # http://127.0.0.1:9400
//! cargo run -p identity-model --features axum --example protected_service      # http://127.0.0.1:8300
//! ```
//!
//! It prints curl lines that work against that provider. `GET /orders` needs any token for
//! `https://api.example` with scope `api:read`; `POST /orders` needs `api:write`; `/health` is
//! open. `ISSUER` and `LISTEN` (environment) change the defaults.

use axum::Router;
use axum::routing::{get, post};
use identity_model::{Authenticated, Authority, BearerLayer, DiscoveryPolicy, Validation};

/// What the handlers read from a validated token.
#[derive(Debug, serde::Deserialize)]
pub struct Caller {
    /// The subject (the client, for client-credentials tokens).
    pub sub: String,
    /// The scopes, space-separated.
    #[serde(default)]
    pub scope: String,
}

/// The audience the service accepts (the test provider's default resource).
pub const AUDIENCE: &str = "https://api.example";

/// The service for tokens of `issuer` (HTTP allowed on loopback, for `idm provider`).
pub fn app(issuer: &str) -> Result<Router, identity_model::Error> {
    let authority = Authority::builder(issuer)
        .rules(Validation::new(issuer).audience(AUDIENCE).token_type("at+jwt"))
        .policy(DiscoveryPolicy::default().allow_http_on_loopback())
        .token_cache(Default::default())
        .build()?;
    let reads = Router::new()
        .route(
            "/orders",
            get(|Authenticated(caller): Authenticated<Caller>| async move {
                format!("orders of {} (scopes: {})\n", caller.sub, caller.scope)
            }),
        )
        .layer(BearerLayer::new(authority.clone()).realm("orders").require_all_scopes(["api:read"]));
    let writes = Router::new()
        .route(
            "/orders/new",
            post(|Authenticated(caller): Authenticated<Caller>| async move {
                format!("order created by {}\n", caller.sub)
            }),
        )
        .layer(BearerLayer::new(authority).realm("orders").require_all_scopes(["api:write"]));
    Ok(Router::new().route("/health", get(|| async { "ok\n" })).merge(reads).merge(writes))
}

/// The curl lines printed at start, for a service on `addr` and tokens of `issuer`.
pub fn usage(addr: &str, issuer: &str) -> String {
    format!(
        "protected service on http://{addr} (tokens of {issuer}, audience {AUDIENCE})\n\
         TOKEN=$(cargo run -q -p idm -- token client-credentials --issuer {issuer} --allow-http \\\n  \
         --client-id demo-service --client-secret demo-secret --resource {AUDIENCE} --scope api:read --json \\\n  \
         | python3 -c 'import json,sys; print(json.load(sys.stdin)[\"access_token\"])')\n\
         curl -i -H \"Authorization: Bearer $TOKEN\" http://{addr}/orders          # 200\n\
         curl -i http://{addr}/orders                                               # 401\n\
         curl -i -X POST -H \"Authorization: Bearer $TOKEN\" http://{addr}/orders/new  # 403: api:write\n"
    )
}

#[allow(dead_code)] // the test includes this file for `app` and `usage`
#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let issuer = std::env::var("ISSUER").unwrap_or_else(|_| "http://127.0.0.1:9400".into());
    let listen = std::env::var("LISTEN").unwrap_or_else(|_| "127.0.0.1:8300".into());
    let listener = tokio::net::TcpListener::bind(&listen).await?;
    let addr = listener.local_addr()?.to_string();
    print!("{}", usage(&addr, &issuer));
    axum::serve(listener, app(&issuer)?).await?;
    Ok(())
}
