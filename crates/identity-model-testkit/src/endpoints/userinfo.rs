//! The userinfo endpoint: a bearer access token with the `openid` scope, issued for a user,
//! returns `sub` and the claims its scopes allow (`profile`: all but email; `email`: email).

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

pub(crate) async fn userinfo(State(shared): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    let Some(token) = authorization(&headers).and_then(|h| h.strip_prefix("Bearer ")) else {
        let mut response = StatusCode::UNAUTHORIZED.into_response();
        response
            .headers_mut()
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer realm=\"userinfo\""));
        return response;
    };
    let Some(claims) = shared.active_access_token(token.trim()) else {
        return bearer_error(StatusCode::UNAUTHORIZED, "invalid_token", "the access token is not active");
    };
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
