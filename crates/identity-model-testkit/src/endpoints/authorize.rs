//! The authorization endpoint (response type `code`): approves automatically (as the first
//! configured user) or by the test's decision, and redirects back with `code`, `state` and the
//! RFC 9207 `iss`.

use std::sync::Arc;

use axum::extract::{RawQuery, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

use axum::body::Bytes;
use axum::http::HeaderMap;
use serde_json::{Value, json};

use super::{OAuthError, authorization, form, single};
use crate::client_auth::authenticate;
use crate::endpoints::token::{resolve_resource, resolve_scope};
use crate::faults::lock;
use crate::grants::CodeGrant;
use crate::state::{AuthorizeRequest, Shared, random_token};

const CODE_TTL: i64 = 60;

const PUSHED_TTL: i64 = 60;

/// RFC 9126: a client-authenticated POST of the authorization parameters, answered with a
/// one-time `request_uri`.
pub(crate) async fn push(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> Response {
    let params = form(&body);
    let result = (|| -> Result<Value, OAuthError> {
        let client = authenticate(&shared, authorization(&headers), &params)?;
        if single(&params, "request_uri")?.is_some() {
            return Err(OAuthError::invalid_request("request_uri may not be pushed"));
        }
        let mut stored: Vec<(String, String)> = params
            .iter()
            .filter(|(n, _)| {
                !matches!(n.as_str(), "client_secret" | "client_assertion" | "client_assertion_type")
            })
            .filter(|(n, _)| n != "client_id")
            .cloned()
            .collect();
        stored.push(("client_id".into(), client.id.clone()));
        check_client(&shared, &stored)?;
        let request_uri = format!("urn:ietf:params:oauth:request_uri:{}", random_token(16));
        let expires = shared.now() + PUSHED_TTL;
        lock(&shared.grants).pushed.insert(request_uri.clone(), (client.id, stored, expires));
        Ok(json!({"request_uri": request_uri, "expires_in": PUSHED_TTL}))
    })();
    match result {
        Ok(value) => {
            (StatusCode::CREATED, [(header::CACHE_CONTROL, "no-store")], axum::Json(value)).into_response()
        }
        Err(error) => error.into_response(),
    }
}

pub(crate) async fn authorize(State(shared): State<Arc<Shared>>, RawQuery(query): RawQuery) -> Response {
    let mut params = form(query.unwrap_or_default().as_bytes());
    if let Some(request_uri) = params.iter().find(|(n, _)| n == "request_uri").map(|(_, v)| v.clone()) {
        // A pushed request: its stored parameters replace the query (single use, unexpired,
        // same client).
        let pushed = lock(&shared.grants).pushed.remove(&request_uri);
        let client_id = params.iter().find(|(n, _)| n == "client_id").map(|(_, v)| v.clone());
        match pushed {
            Some((owner, stored, expires))
                if Some(&owner) == client_id.as_ref() && shared.now() < expires =>
            {
                params = stored;
            }
            _ => {
                return OAuthError::invalid_request("request_uri is unknown, used or expired")
                    .into_response();
            }
        }
    }
    // Errors about the client or redirect URI are shown, never redirected (RFC 6749 4.1.2.1).
    let (client, redirect_uri) = match check_client(&shared, &params) {
        Ok(found) => found,
        Err(error) => return error.into_response(),
    };
    let state = single(&params, "state").ok().flatten().map(str::to_owned);
    let redirect = |pairs: Vec<(&str, String)>| -> Response {
        let mut url = redirect_uri.clone();
        url.push(if url.contains('?') { '&' } else { '?' });
        let mut query = form_urlencoded::Serializer::new(String::new());
        for (name, value) in pairs {
            query.append_pair(name, &value);
        }
        if let Some(state) = &state {
            query.append_pair("state", state);
        }
        query.append_pair("iss", &shared.issuer);
        url.push_str(&query.finish());
        (StatusCode::FOUND, [(header::LOCATION, url), (header::CACHE_CONTROL, "no-store".to_owned())])
            .into_response()
    };
    let error =
        |e: OAuthError| redirect(vec![("error", e.error.to_owned()), ("error_description", e.description)]);
    let granted = (|| -> Result<CodeGrant, OAuthError> {
        if single(&params, "response_type")? != Some("code") {
            return Err(OAuthError::new(StatusCode::BAD_REQUEST, "unsupported_response_type", "only code"));
        }
        let scope = resolve_scope(&client, single(&params, "scope")?)?;
        let resource = resolve_resource(&shared, &params)?;
        let challenge = single(&params, "code_challenge")?;
        let method = single(&params, "code_challenge_method")?;
        match (challenge, method) {
            (Some(_), Some("S256")) => {}
            (Some(_), _) => return Err(OAuthError::invalid_request("code_challenge_method must be S256")),
            (None, _) if client.auth_methods.contains(&crate::config::AuthMethod::None) => {
                return Err(OAuthError::invalid_request("public clients must use PKCE"));
            }
            (None, _) => {}
        }
        let request = AuthorizeRequest {
            client_id: client.id.clone(),
            scope: scope.clone(),
            redirect_uri: redirect_uri.clone(),
            params: params.clone(),
        };
        let decide = lock(&shared.authorize).clone();
        let sub = match decide {
            Some(decide) => decide(&request).map_err(|error| {
                let error: &'static str = match error.as_str() {
                    "login_required" => "login_required",
                    "consent_required" => "consent_required",
                    "interaction_required" => "interaction_required",
                    "server_error" => "server_error",
                    _ => "access_denied",
                };
                OAuthError::new(StatusCode::BAD_REQUEST, error, "the user did not approve")
            })?,
            None => shared.config.users.first().map(|u| u.sub.clone()).unwrap_or_else(|| "user".into()),
        };
        let now = shared.now();
        Ok(CodeGrant {
            client_id: client.id.clone(),
            redirect_uri: redirect_uri.clone(),
            code_challenge: challenge.map(str::to_owned),
            scope,
            resource,
            nonce: single(&params, "nonce")?.map(str::to_owned),
            sub,
            auth_time: now,
            expires_at: now + CODE_TTL,
        })
    })();
    match granted {
        Ok(grant) => {
            let code = random_token(32);
            lock(&shared.grants).codes.insert(code.clone(), grant);
            redirect(vec![("code", code)])
        }
        Err(e) => error(e),
    }
}

fn check_client(
    shared: &Shared,
    params: &[(String, String)],
) -> Result<(crate::config::ClientConfig, String), OAuthError> {
    let id =
        single(params, "client_id")?.ok_or_else(|| OAuthError::invalid_request("client_id is required"))?;
    let client = shared
        .config
        .find_client(id)
        .cloned()
        .ok_or_else(|| OAuthError::invalid_request("unknown client"))?;
    if !client.allows_grant(crate::config::grant::AUTHORIZATION_CODE) {
        return Err(OAuthError::invalid_request("this client may not use the authorization code flow"));
    }
    let redirect_uri = match single(params, "redirect_uri")? {
        Some(uri) if client.redirect_uris.iter().any(|r| r == uri) => uri.to_owned(),
        Some(_) => return Err(OAuthError::invalid_request("redirect_uri is not registered")),
        None => return Err(OAuthError::invalid_request("redirect_uri is required")),
    };
    Ok((client, redirect_uri))
}
