//! The token endpoint: client credentials, authorization code with PKCE, refresh token, device
//! code and token exchange.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use identity_model_core::Pkce;
use serde_json::{Map, Value, json};

use super::{OAuthError, all, authorization, form, json_no_store, required, single};
use crate::client_auth::authenticate;
use crate::config::{ClientConfig, grant};
use crate::faults::lock;
use crate::grants::{DeviceStatus, RefreshGrant};
use crate::state::{Shared, TokenRequest, ttl};

const ACCESS_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";
const JWT_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:jwt";

pub(crate) async fn token(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> Response {
    match handle(&shared, &headers, &body) {
        Ok(value) => json_no_store(value),
        Err(error) => error.into_response(),
    }
}

fn handle(shared: &Shared, headers: &HeaderMap, body: &[u8]) -> Result<Value, OAuthError> {
    let params = form(body);
    let client = authenticate(shared, authorization(headers), &params)?;
    let grant_type = required(&params, "grant_type")?;
    if !client.allows_grant(grant_type) {
        let known = [
            grant::CLIENT_CREDENTIALS,
            grant::AUTHORIZATION_CODE,
            grant::REFRESH_TOKEN,
            grant::DEVICE_CODE,
            grant::TOKEN_EXCHANGE,
        ];
        let error =
            if known.contains(&grant_type) { "unauthorized_client" } else { "unsupported_grant_type" };
        return Err(OAuthError::new(
            StatusCode::BAD_REQUEST,
            error,
            format!("grant {grant_type} is not allowed"),
        ));
    }
    let jkt = dpop_proof(shared, headers)?;
    let jkt = jkt.as_deref();
    match grant_type {
        grant::CLIENT_CREDENTIALS => client_credentials(shared, jkt, &client, &params),
        grant::AUTHORIZATION_CODE => authorization_code(shared, jkt, &client, &params),
        grant::REFRESH_TOKEN => refresh_token(shared, jkt, &client, &params),
        grant::DEVICE_CODE => device_code(shared, jkt, &client, &params),
        grant::TOKEN_EXCHANGE => token_exchange(shared, jkt, &client, &params),
        other => Err(OAuthError::new(StatusCode::BAD_REQUEST, "unsupported_grant_type", other.to_owned())),
    }
}

/// The `DPoP` proof of a token request, when one came: its key's thumbprint (the `jkt` the
/// tokens are bound to). A bad proof is `invalid_dpop_proof`; with `require_dpop_nonce` a proof
/// without the current nonce is `use_dpop_nonce` with a `DPoP-Nonce` header.
fn dpop_proof(shared: &Shared, headers: &HeaderMap) -> Result<Option<String>, OAuthError> {
    let mut proofs = headers.get_all("dpop").iter();
    let Some(proof) = proofs.next() else { return Ok(None) };
    let bad = |message: String| OAuthError::new(StatusCode::BAD_REQUEST, "invalid_dpop_proof", message);
    if proofs.next().is_some() {
        return Err(bad("more than one DPoP header".into()));
    }
    let proof = proof.to_str().map_err(|_| bad("the DPoP header is not ASCII".into()))?;
    let now = identity_model_core::UnixTime::from_secs(shared.now());
    let mut rules = identity_model_core::DpopRules::new();
    let nonce = shared.dpop_nonce();
    if let Some(nonce) = &nonce {
        rules = rules.nonce(identity_model_core::NonceRule::Exact(nonce.clone()));
    }
    match rules.verify(proof, "POST", &shared.url("/token"), None, now) {
        Ok(verified) => Ok(Some(verified.jkt)),
        Err(e) if e.kind() == identity_model_core::ErrorKind::UseDpopNonce => {
            Err(OAuthError::new(StatusCode::BAD_REQUEST, "use_dpop_nonce", e.message().to_owned())
                .with_header("dpop-nonce", nonce.unwrap_or_default()))
        }
        Err(e) => Err(bad(e.message().to_owned())),
    }
}

/// The requested scope, each value allowed for the client; all of the client's scopes when
/// none is requested.
pub(crate) fn resolve_scope(client: &ClientConfig, requested: Option<&str>) -> Result<String, OAuthError> {
    let Some(requested) = requested else {
        return Ok(client.scopes.iter().filter(|s| *s != "openid").cloned().collect::<Vec<_>>().join(" "));
    };
    let allowed: Vec<&str> = client.scopes.iter().map(String::as_str).collect();
    narrow_scope(requested, &allowed)
}

/// `requested` (deduplicated), when every value is in `allowed`; else `invalid_scope`.
fn narrow_scope(requested: &str, allowed: &[&str]) -> Result<String, OAuthError> {
    let mut granted: Vec<&str> = Vec::new();
    for scope in requested.split(' ').filter(|s| !s.is_empty()) {
        if !allowed.contains(&scope) {
            let message = format!("scope {scope} is not allowed here");
            return Err(OAuthError::new(StatusCode::BAD_REQUEST, "invalid_scope", message));
        }
        if !granted.contains(&scope) {
            granted.push(scope);
        }
    }
    Ok(granted.join(" "))
}

/// The one resource (RFC 8707 `resource`, or token exchange `audience`) a token is for, else
/// the default resource.
pub(crate) fn resolve_resource(
    shared: &Shared,
    params: &[(String, String)],
) -> Result<Option<String>, OAuthError> {
    let requested: Vec<&str> = all(params, "resource").chain(all(params, "audience")).collect();
    match requested.as_slice() {
        [] => Ok(None),
        [one] if shared.config.find_resource(one).is_some() => Ok(Some((*one).to_owned())),
        [one] => {
            Err(OAuthError::new(StatusCode::BAD_REQUEST, "invalid_target", format!("unknown resource {one}")))
        }
        _ => Err(OAuthError::new(StatusCode::BAD_REQUEST, "invalid_target", "one resource per token")),
    }
}

fn server_error(message: String) -> OAuthError {
    OAuthError::new(StatusCode::INTERNAL_SERVER_ERROR, "server_error", message)
}

/// The `cnf` claim binding a token to a DPoP key (RFC 9449 section 6), when a proof came.
fn binding(jkt: Option<&str>) -> Map<String, Value> {
    let mut extra = Map::new();
    if let Some(jkt) = jkt {
        extra.insert("cnf".into(), json!({ "jkt": jkt }));
    }
    extra
}

fn bearer_response(shared: &Shared, jkt: Option<&str>, access_token: String, scope: &str) -> Value {
    let mut response = json!({
        "access_token": access_token,
        "token_type": if jkt.is_some() { "DPoP" } else { "Bearer" },
        "expires_in": shared.config.access_token_ttl,
    });
    if !scope.is_empty() {
        response["scope"] = scope.into();
    }
    response
}

fn client_credentials(
    shared: &Shared,
    jkt: Option<&str>,
    client: &ClientConfig,
    params: &[(String, String)],
) -> Result<Value, OAuthError> {
    let scope = resolve_scope(client, single(params, "scope")?)?;
    let resource = resolve_resource(shared, params)?;
    let resource = resource.as_deref().unwrap_or(shared.default_resource());
    let request =
        TokenRequest { client_id: &client.id, sub: None, scope: &scope, resource, extra: binding(jkt) };
    let token = shared.issue_access_token(&request).map_err(server_error)?;
    Ok(bearer_response(shared, jkt, token, &scope))
}

/// Access token, then ID token (`openid` scope) and refresh token (when the client may refresh).
fn user_tokens(
    shared: &Shared,
    jkt: Option<&str>,
    client: &ClientConfig,
    grant: &RefreshGrant,
    nonce: Option<&str>,
    refresh_token: Option<String>,
) -> Result<Value, OAuthError> {
    let resource = grant.resource.as_deref().unwrap_or(shared.default_resource());
    let mut extra = binding(jkt);
    extra.insert("auth_time".into(), grant.auth_time.into());
    let request =
        TokenRequest { client_id: &client.id, sub: Some(&grant.sub), scope: &grant.scope, resource, extra };
    let access_token = shared.issue_access_token(&request).map_err(server_error)?;
    let mut response = bearer_response(shared, jkt, access_token.clone(), &grant.scope);
    if grant.scope.split(' ').any(|s| s == "openid") {
        let id_token = shared
            .issue_id_token(&client.id, &grant.sub, grant.auth_time, nonce, Some(&access_token))
            .map_err(server_error)?;
        response["id_token"] = id_token.into();
    }
    if client.allows_grant(grant::REFRESH_TOKEN) {
        let token = refresh_token.unwrap_or_else(|| shared.issue_refresh_token(grant.clone()));
        response["refresh_token"] = token.into();
    }
    Ok(response)
}

fn authorization_code(
    shared: &Shared,
    jkt: Option<&str>,
    client: &ClientConfig,
    params: &[(String, String)],
) -> Result<Value, OAuthError> {
    let code = required(params, "code")?;
    let redirect_uri = single(params, "redirect_uri")?;
    let verifier = single(params, "code_verifier")?;
    // Single use: the code is gone whatever happens next.
    let grant = lock(&shared.grants).codes.remove(code);
    let grant = grant.ok_or_else(|| OAuthError::invalid_grant("unknown, used or expired code"))?;
    if grant.client_id != client.id {
        return Err(OAuthError::invalid_grant("the code was issued to another client"));
    }
    if grant.expires_at <= shared.now() {
        return Err(OAuthError::invalid_grant("the code expired"));
    }
    if redirect_uri != Some(grant.redirect_uri.as_str()) {
        return Err(OAuthError::invalid_grant("redirect_uri does not match the authorization request"));
    }
    match (&grant.code_challenge, verifier) {
        (Some(challenge), Some(verifier)) => {
            // The verifier's form (RFC 7636 section 4.1) and the S256 transform, as the core checks them.
            if Pkce::from_verifier(verifier).ok().is_none_or(|pkce| pkce.challenge() != challenge) {
                return Err(OAuthError::invalid_grant("PKCE verification failed"));
            }
        }
        (Some(_), None) => return Err(OAuthError::invalid_grant("code_verifier is required")),
        (None, Some(_)) => return Err(OAuthError::invalid_grant("no code_challenge was sent")),
        (None, None) => {}
    }
    let refresh = RefreshGrant {
        client_id: client.id.clone(),
        sub: grant.sub.clone(),
        scope: grant.scope.clone(),
        resource: grant.resource.clone(),
        auth_time: grant.auth_time,
        expires_at: shared.now() + ttl(shared.config.refresh_token_ttl),
        jkt: jkt.map(str::to_owned),
    };
    user_tokens(shared, jkt, client, &refresh, grant.nonce.as_deref(), None)
}

fn refresh_token(
    shared: &Shared,
    jkt: Option<&str>,
    client: &ClientConfig,
    params: &[(String, String)],
) -> Result<Value, OAuthError> {
    let token = required(params, "refresh_token")?;
    let grant = shared.active_refresh_token(token).ok_or_else(|| {
        let replayed = lock(&shared.grants).rotated.contains(token);
        OAuthError::invalid_grant(if replayed {
            "refresh token already used"
        } else {
            "unknown or expired refresh token"
        })
    })?;
    if grant.client_id != client.id {
        return Err(OAuthError::invalid_grant("the refresh token was issued to another client"));
    }
    if let Some(bound) = grant.jkt.as_deref() {
        if jkt != Some(bound) {
            return Err(OAuthError::invalid_grant(
                "the refresh token is bound to a DPoP key: the proof must be signed by that key",
            ));
        }
    }
    let mut narrowed = grant.clone();
    if let Some(requested) = single(params, "scope")? {
        narrowed.scope = narrow_scope(requested, &grant.scope.split(' ').collect::<Vec<_>>())?;
    }
    let next = if shared.config.rotate_refresh_tokens {
        let mut grants = lock(&shared.grants);
        grants.refresh.remove(token);
        grants.rotated.insert(token.to_owned());
        drop(grants);
        Some(shared.issue_refresh_token(grant.clone()))
    } else {
        Some(token.to_owned())
    };
    user_tokens(shared, jkt, client, &narrowed, None, next)
}

fn device_code(
    shared: &Shared,
    jkt: Option<&str>,
    client: &ClientConfig,
    params: &[(String, String)],
) -> Result<Value, OAuthError> {
    let device_code = required(params, "device_code")?;
    let now = shared.now();
    let mut grants = lock(&shared.grants);
    let device = grants
        .devices
        .get_mut(device_code)
        .ok_or_else(|| OAuthError::invalid_grant("unknown device code"))?;
    if device.client_id != client.id {
        return Err(OAuthError::invalid_grant("the device code was issued to another client"));
    }
    if device.expires_at <= now {
        grants.devices.remove(device_code);
        return Err(OAuthError::new(StatusCode::BAD_REQUEST, "expired_token", "the device code expired"));
    }
    let too_fast = device.last_poll.is_some_and(|last| now - last < device.interval);
    device.last_poll = Some(now);
    if too_fast {
        device.interval += 5;
        return Err(OAuthError::new(StatusCode::BAD_REQUEST, "slow_down", "polling too fast"));
    }
    match device.status.clone() {
        DeviceStatus::Pending => Err(OAuthError::new(
            StatusCode::BAD_REQUEST,
            "authorization_pending",
            "the user has not answered yet",
        )),
        DeviceStatus::Denied => {
            grants.devices.remove(device_code);
            Err(OAuthError::new(StatusCode::BAD_REQUEST, "access_denied", "the user denied the request"))
        }
        DeviceStatus::Approved(sub) => {
            let device =
                grants.devices.remove(device_code).ok_or_else(|| OAuthError::invalid_grant("gone"))?;
            drop(grants);
            let refresh = RefreshGrant {
                client_id: client.id.clone(),
                sub,
                scope: device.scope,
                resource: device.resource,
                auth_time: now,
                expires_at: now + ttl(shared.config.refresh_token_ttl),
                jkt: jkt.map(str::to_owned),
            };
            user_tokens(shared, jkt, client, &refresh, None, None)
        }
    }
}

fn token_exchange(
    shared: &Shared,
    jkt: Option<&str>,
    client: &ClientConfig,
    params: &[(String, String)],
) -> Result<Value, OAuthError> {
    let subject_token = required(params, "subject_token")?;
    let subject_type = required(params, "subject_token_type")?;
    if subject_type != ACCESS_TOKEN_TYPE && subject_type != JWT_TOKEN_TYPE {
        return Err(OAuthError::invalid_request(format!("unsupported subject_token_type {subject_type}")));
    }
    if let Some(requested) = single(params, "requested_token_type")?
        && requested != ACCESS_TOKEN_TYPE
    {
        return Err(OAuthError::invalid_request(format!("cannot issue {requested}")));
    }
    let subject = shared.active_access_token(subject_token).ok_or_else(|| {
        OAuthError::invalid_request("subject_token is not an active access token of this issuer")
    })?;
    let mut extra = binding(jkt);
    if let Some(actor_token) = single(params, "actor_token")? {
        if single(params, "actor_token_type")? != Some(ACCESS_TOKEN_TYPE) {
            return Err(OAuthError::invalid_request("actor_token_type must be an access token type"));
        }
        let actor = shared.active_access_token(actor_token).ok_or_else(|| {
            OAuthError::invalid_request("actor_token is not an active access token of this issuer")
        })?;
        let actor_sub = actor.get("sub").cloned().unwrap_or(Value::Null);
        extra.insert("act".into(), json!({ "sub": actor_sub }));
    } else if single(params, "actor_token_type")?.is_some() {
        return Err(OAuthError::invalid_request("actor_token_type without actor_token"));
    }
    let subject_scope = subject.get("scope").and_then(Value::as_str).unwrap_or_default();
    let scope = match single(params, "scope")? {
        None => subject_scope.to_owned(),
        Some(requested) => narrow_scope(requested, &subject_scope.split(' ').collect::<Vec<_>>())?,
    };
    let resource = resolve_resource(shared, params)?;
    let resource = resource.as_deref().unwrap_or(shared.default_resource());
    let sub = subject.get("sub").and_then(Value::as_str).unwrap_or(&client.id).to_owned();
    let request = TokenRequest { client_id: &client.id, sub: Some(&sub), scope: &scope, resource, extra };
    let token = shared.issue_access_token(&request).map_err(server_error)?;
    let mut response = bearer_response(shared, jkt, token, &scope);
    response["issued_token_type"] = ACCESS_TOKEN_TYPE.into();
    Ok(response)
}
