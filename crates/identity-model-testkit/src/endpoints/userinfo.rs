//! The userinfo endpoint: a bearer access token with the `openid` scope, issued for a user,
//! returns `sub` and the claims its scopes allow (`profile`: all but email; `email`: email).
//! It is also the testkit's DPoP-protected resource: a token bound to a key (`cnf.jkt`) must
//! come as `Authorization: DPoP` with a proof by that key (`htm` GET, `htu` this endpoint,
//! `ath`), and the nonce the provider demands (`TestProvider::require_dpop_nonce`).

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value};

use super::{authorization, json_no_store};
use crate::state::Shared;

fn bearer_error(status: StatusCode, error: &str, description: &str) -> Response {
    let challenge =
        format!("Bearer realm=\"userinfo\", error=\"{error}\", error_description=\"{description}\"");
    let mut response =
        (status, axum::Json(serde_json::json!({"error": error, "error_description": description})))
            .into_response();
    if let Ok(value) = HeaderValue::from_str(&challenge) {
        response.headers_mut().insert(header::WWW_AUTHENTICATE, value);
    }
    response
}

/// A DPoP refusal of the resource (RFC 9449 section 7.1), with the nonce to use when one is due.
fn dpop_error(error: &str, description: &str, nonce: Option<String>) -> Response {
    let challenge = format!(
        "DPoP algs=\"ES256 EdDSA PS256 RS256\", error=\"{error}\", error_description=\"{description}\""
    );
    let mut response = (
        StatusCode::UNAUTHORIZED,
        axum::Json(serde_json::json!({"error": error, "error_description": description})),
    )
        .into_response();
    if let Ok(value) = HeaderValue::from_str(&challenge) {
        response.headers_mut().insert(header::WWW_AUTHENTICATE, value);
    }
    if let Some(value) = nonce.and_then(|n| HeaderValue::from_str(&n).ok()) {
        response.headers_mut().insert("dpop-nonce", value);
    }
    response
}

/// The DPoP side of a resource request: `None` when the token is unbound and came as Bearer,
/// or bound and came as DPoP with a good proof by its key; otherwise the refusal.
fn dpop_refusal(
    shared: &Shared,
    headers: &HeaderMap,
    dpop_scheme: bool,
    token: &str,
    claims: &Map<String, Value>,
) -> Option<Response> {
    let jkt = claims.get("cnf").and_then(|c| c.get("jkt")).and_then(Value::as_str);
    match (jkt, dpop_scheme) {
        (None, false) => return None,
        (Some(_), false) => {
            return Some(dpop_error("invalid_token", "the token is DPoP-bound: use the DPoP scheme", None));
        }
        _ => {}
    }
    let mut proofs = headers.get_all("dpop").iter();
    let (Some(proof), None) = (proofs.next(), proofs.next()) else {
        return Some(dpop_error("invalid_dpop_proof", "exactly one DPoP header is required", None));
    };
    let proof = proof.to_str().unwrap_or_default();
    let now = identity_model_core::UnixTime::from_secs(shared.now());
    let mut rules = identity_model_core::DpopRules::new();
    let nonce = shared.dpop_nonce();
    if let Some(nonce) = &nonce {
        rules = rules.nonce(identity_model_core::NonceRule::Exact(nonce.clone()));
    }
    let verified = match rules.verify(proof, "GET", &shared.url("/userinfo"), Some(token), now) {
        Ok(verified) => verified,
        Err(e) => {
            let due = e.kind() == identity_model_core::ErrorKind::UseDpopNonce;
            return Some(dpop_error(e.kind().as_str(), e.message(), nonce.filter(|_| due)));
        }
    };
    identity_model_core::check_jkt_binding(jkt, Some(&verified))
        .err()
        .map(|e| dpop_error(e.kind().as_str(), e.message(), None))
}

pub(crate) async fn userinfo(State(shared): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    let dpop_scheme = authorization(&headers).is_some_and(|h| h.starts_with("DPoP "));
    let Some(token) =
        authorization(&headers).and_then(|h| h.strip_prefix("Bearer ").or_else(|| h.strip_prefix("DPoP ")))
    else {
        let mut response = StatusCode::UNAUTHORIZED.into_response();
        response
            .headers_mut()
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer realm=\"userinfo\""));
        return response;
    };
    let Some(claims) = shared.active_access_token(token.trim()) else {
        return bearer_error(StatusCode::UNAUTHORIZED, "invalid_token", "the access token is not active");
    };
    if let Some(refusal) = dpop_refusal(&shared, &headers, dpop_scheme, token.trim(), &claims) {
        return refusal;
    }
    let scope = claims.get("scope").and_then(Value::as_str).unwrap_or_default();
    if !scope.split(' ').any(|s| s == "openid") {
        return bearer_error(StatusCode::FORBIDDEN, "insufficient_scope", "the openid scope is required");
    }
    let sub = claims.get("sub").and_then(Value::as_str).unwrap_or_default();
    let Some(user) = shared.config.find_user(sub) else {
        return bearer_error(
            StatusCode::UNAUTHORIZED,
            "invalid_token",
            "the token was not issued for a user",
        );
    };
    let profile = scope.split(' ').any(|s| s == "profile");
    let email = scope.split(' ').any(|s| s == "email");
    let mut body = Map::new();
    body.insert("sub".into(), sub.into());
    for (name, value) in &user.claims {
        let is_email = name.starts_with("email");
        if (is_email && email) || (!is_email && profile) {
            body.insert(name.clone(), value.clone());
        }
    }
    json_no_store(Value::Object(body))
}
