//! RFC 7662 introspection and RFC 7009 revocation; both require client authentication.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::{OAuthError, authorization, form, json_no_store, required};
use crate::client_auth::authenticate;
use crate::config::AuthMethod;
use crate::faults::lock;
use crate::state::Shared;

fn confidential(
    shared: &Shared,
    headers: &HeaderMap,
    params: &[(String, String)],
) -> Result<String, OAuthError> {
    let client = authenticate(shared, authorization(headers), params)?;
    if client.auth_methods == [AuthMethod::None] {
        return Err(OAuthError::invalid_client("public clients may not use this endpoint"));
    }
    Ok(client.id)
}

pub(crate) async fn introspect(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let params = form(&body);
    let result = (|| -> Result<Value, OAuthError> {
        confidential(&shared, &headers, &params)?;
        let token = required(&params, "token")?;
        if let Some(mut claims) = shared.active_access_token(token) {
            claims.insert("active".into(), true.into());
            claims.insert("token_type".into(), "Bearer".into());
            return Ok(Value::Object(claims));
        }
        if let Some(grant) = shared.active_refresh_token(token) {
            return Ok(json!({
                "active": true,
                "token_type": "refresh_token",
                "client_id": grant.client_id,
                "sub": grant.sub,
                "scope": grant.scope,
                "exp": grant.expires_at,
                "iss": shared.issuer,
            }));
        }
        Ok(json!({"active": false}))
    })();
    match result {
        Ok(value) => json_no_store(value),
        Err(error) => error.into_response(),
    }
}

pub(crate) async fn revoke(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> Response {
    let params = form(&body);
    let result = (|| -> Result<(), OAuthError> {
        let client_id = confidential(&shared, &headers, &params)?;
        let token = required(&params, "token")?;
        if let Some(grant) = shared.active_refresh_token(token) {
            if grant.client_id == client_id {
                lock(&shared.grants).refresh.remove(token);
            }
            return Ok(());
        }
        if let Some(claims) = shared.active_access_token(token)
            && claims.get("client_id").and_then(Value::as_str) == Some(client_id.as_str())
        {
            let mut grants = lock(&shared.grants);
            if grants.opaque.contains_key(token) {
                grants.revoked.insert(token.to_owned());
            } else if let Some(jti) = claims.get("jti").and_then(Value::as_str) {
                grants.revoked.insert(jti.to_owned());
            }
        }
        // RFC 7009 section 2.2: unknown or foreign tokens get the same 200.
        Ok(())
    })();
    match result {
        Ok(()) => StatusCode::OK.into_response(),
        Err(error) => error.into_response(),
    }
}
