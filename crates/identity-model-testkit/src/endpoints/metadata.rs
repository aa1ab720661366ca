//! Discovery (OpenID Connect Discovery 1.0 and RFC 8414) and the JWK Set.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::config::AuthMethod;
use crate::faults::lock;
use crate::state::Shared;

pub(crate) fn document(shared: &Shared) -> Value {
    let mut auth_methods: Vec<&str> = Vec::new();
    for client in &shared.config.clients {
        for method in &client.auth_methods {
            if *method != AuthMethod::None && !auth_methods.contains(&method.as_str()) {
                auth_methods.push(method.as_str());
            }
        }
    }
    let mut grant_types: Vec<&str> = Vec::new();
    for client in &shared.config.clients {
        for grant in &client.grant_types {
            if !grant_types.contains(&grant.as_str()) {
                grant_types.push(grant);
            }
        }
    }
    let mut scopes: Vec<&str> = vec!["openid"];
    for client in &shared.config.clients {
        for scope in &client.scopes {
            if !scopes.contains(&scope.as_str()) {
                scopes.push(scope);
            }
        }
    }
    let algs: Vec<&str> = lock(&shared.keys).active().iter().map(|k| k.alg().as_str()).collect();
    json!({
        "issuer": shared.issuer,
        "authorization_endpoint": shared.url("/authorize"),
        "token_endpoint": shared.url("/token"),
        "jwks_uri": shared.url("/jwks"),
        "userinfo_endpoint": shared.url("/userinfo"),
        "introspection_endpoint": shared.url("/introspect"),
        "pushed_authorization_request_endpoint": shared.url("/par"),
        "revocation_endpoint": shared.url("/revoke"),
        "device_authorization_endpoint": shared.url("/device_authorization"),
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": grant_types,
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": algs,
        "token_endpoint_auth_methods_supported": auth_methods,
        "token_endpoint_auth_signing_alg_values_supported": ["RS256", "PS256", "ES256", "EdDSA", "HS256"],
        "introspection_endpoint_auth_methods_supported": auth_methods,
        "revocation_endpoint_auth_methods_supported": auth_methods,
        "code_challenge_methods_supported": ["S256"],
        "scopes_supported": scopes,
        "claims_supported": ["sub", "iss", "aud", "exp", "iat", "auth_time", "nonce", "name", "email", "email_verified"],
        "authorization_response_iss_parameter_supported": true,
    })
}

pub(crate) async fn discovery(State(shared): State<Arc<Shared>>) -> Response {
    axum::Json(document(&shared)).into_response()
}

pub(crate) async fn jwks(State(shared): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    let published = lock(&shared.keys).published();
    let cache_control = format!("public, max-age={}", shared.config.jwks_max_age);
    let matches = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|tags| tags.split(',').any(|t| t.trim() == published.etag || t.trim() == "*"));
    if matches {
        return (
            StatusCode::NOT_MODIFIED,
            [(header::ETAG, published.etag.clone()), (header::CACHE_CONTROL, cache_control)],
        )
            .into_response();
    }
    (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, "application/jwk-set+json".to_owned()),
            (header::ETAG, published.etag.clone()),
            (header::CACHE_CONTROL, cache_control),
        ],
        published.body.clone(),
    )
        .into_response()
}

pub(crate) async fn not_found() -> Response {
    (StatusCode::NOT_FOUND, axum::Json(json!({"error": "not_found"}))).into_response()
}
