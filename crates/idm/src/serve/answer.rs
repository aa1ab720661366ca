//! What a check answers: on success the identity headers the proxy hands upstream, on refusal
//! the status, the challenge and a JSON body `{"error": KIND, "message": "..."}`.

use axum::body::Body;
use axum::response::Response;
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use identity_model::{Rejection, ValidToken};
use serde_json::Value;

/// The identity headers of a valid token: oauth2-proxy's names (so existing nginx configs
/// work), then the configured claim headers. A claim whose value cannot be a header value is
/// left out; an absent claim sends no header.
pub(crate) fn identity_headers(valid: &ValidToken, configured: &[(String, HeaderName)]) -> HeaderMap {
    let mut headers = HeaderMap::new();
    let claims = &valid.claims;
    let mut put = |name: HeaderName, value: Option<String>| {
        if let Some(value) = value.and_then(|v| HeaderValue::from_bytes(v.as_bytes()).ok()) {
            headers.insert(name, value);
        }
    };
    let text = |name: &str| claim(valid, name);
    put(HeaderName::from_static("x-auth-request-user"), text("sub"));
    put(HeaderName::from_static("x-auth-request-email"), text("email"));
    put(HeaderName::from_static("x-auth-request-preferred-username"), text("preferred_username"));
    put(HeaderName::from_static("x-auth-request-groups"), claims.get("groups").and_then(claim_list));
    put(HeaderName::from_static("x-auth-request-client-id"), text("client_id").or_else(|| text("azp")));
    let scopes = claims.scopes();
    put(HeaderName::from_static("x-auth-request-scope"), (!scopes.is_empty()).then(|| scopes.join(" ")));
    put(HeaderName::from_static("x-auth-request-issuer"), text("iss"));
    for (claim, name) in configured {
        put(name.clone(), text(claim));
    }
    headers
}

/// A claim by name (registered ones included) as header text: an array comma-separated.
fn claim(valid: &ValidToken, name: &str) -> Option<String> {
    let claims = &valid.claims;
    let date = |d: Option<identity_model::NumericDate>| d.map(|d| d.as_secs_f64().to_string());
    match name {
        "iss" => claims.iss().map(str::to_owned),
        "sub" => claims.sub().map(str::to_owned),
        "jti" => claims.jti().map(str::to_owned),
        "aud" => claims.aud().map(|aud| aud.collect::<Vec<_>>().join(",")),
        "exp" => date(claims.exp()),
        "nbf" => date(claims.nbf()),
        "iat" => date(claims.iat()),
        other => claims.get(other).and_then(|v| claim_text(v).or_else(|| claim_list(v))),
    }
}

/// A claim as header text: strings as they are, numbers and booleans printed.
fn claim_text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// An array claim as comma-separated text (oauth2-proxy's `X-Auth-Request-Groups`).
fn claim_list(value: &Value) -> Option<String> {
    let items = value.as_array()?;
    let texts: Vec<String> = items.iter().filter_map(claim_text).collect();
    (!texts.is_empty()).then(|| texts.join(","))
}

/// A JSON answer with `status`.
pub(crate) fn json(status: StatusCode, body: &Value) -> Response {
    let mut response = Response::new(Body::from(body.to_string()));
    *response.status_mut() = status;
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

/// The answer to a refused check: the layer's status and challenge, `X-Auth-Error`, a JSON
/// body; a 503 says when to try again.
pub(crate) fn refusal(rejection: &Rejection, realm: &str) -> Response {
    let (parts, ()) = rejection.response(realm).into_parts();
    let body = serde_json::json!({"error": rejection.kind(), "message": rejection.message()});
    let mut response = json(parts.status, &body);
    for (name, value) in &parts.headers {
        response.headers_mut().insert(name.clone(), value.clone());
    }
    if parts.status == StatusCode::SERVICE_UNAVAILABLE {
        response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
    }
    response
}

/// 429 for a client over its rate, with `Retry-After` in whole seconds (at least 1).
pub(crate) fn too_many(wait_secs: u64) -> Response {
    let body = serde_json::json!({
        "error": "rate_limited",
        "message": format!("too many requests for this client; retry after {wait_secs} s"),
    });
    let mut response = json(StatusCode::TOO_MANY_REQUESTS, &body);
    response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(wait_secs.max(1)));
    response.headers_mut().insert("x-auth-error", HeaderValue::from_static("rate_limited"));
    response
}
