//! RFC 8628: the device authorization endpoint and the user's verification page (`/device`,
//! where a POST with `user_code` and `confirm=yes` approves as the first configured user, and
//! anything else denies).

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use serde_json::json;

use super::{OAuthError, authorization, form, json_no_store, single};
use crate::client_auth::authenticate;
use crate::config::grant;
use crate::endpoints::token::{resolve_resource, resolve_scope};
use crate::faults::lock;
use crate::grants::{DeviceGrant, DeviceStatus};
use crate::state::{Shared, random_token, ttl};

pub(crate) async fn device_authorization(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let params = form(&body);
    let result = (|| -> Result<serde_json::Value, OAuthError> {
        let client = authenticate(&shared, authorization(&headers), &params)?;
        if !client.allows_grant(grant::DEVICE_CODE) {
            return Err(OAuthError::new(
                StatusCode::BAD_REQUEST,
                "unauthorized_client",
                "device flow not allowed",
            ));
        }
        let scope = resolve_scope(&client, single(&params, "scope")?)?;
        let resource = resolve_resource(&shared, &params)?;
        let device_code = random_token(32);
        let user_code = user_code();
        let now = shared.now();
        let interval = ttl(shared.config.device_poll_interval);
        lock(&shared.grants).devices.insert(
            device_code.clone(),
            DeviceGrant {
                client_id: client.id.clone(),
                user_code: user_code.clone(),
                scope,
                resource,
                status: DeviceStatus::Pending,
                expires_at: now + ttl(shared.config.device_code_ttl),
                interval,
                last_poll: None,
            },
        );
        let verification_uri = shared.url("/device");
        Ok(json!({
            "device_code": device_code,
            "user_code": user_code,
            "verification_uri": verification_uri,
            "verification_uri_complete": format!("{verification_uri}?user_code={user_code}"),
            "expires_in": shared.config.device_code_ttl,
            "interval": interval,
        }))
    })();
    match result {
        Ok(value) => json_no_store(value),
        Err(error) => error.into_response(),
    }
}

/// Eight letters from an alphabet without vowels or look-alikes, shown as `XXXX-XXXX`.
fn user_code() -> String {
    const ALPHABET: &[u8] = b"BCDFGHJKLMNPQRSTVWXZ";
    let mut bytes = [0u8; 8];
    let _ = aws_lc_rs::rand::fill(&mut bytes);
    let letters: String = bytes.iter().map(|b| ALPHABET[usize::from(*b) % ALPHABET.len()] as char).collect();
    format!("{}-{}", &letters[..4], &letters[4..])
}

pub(crate) async fn page(RawQuery(query): RawQuery) -> Response {
    let params = form(query.unwrap_or_default().as_bytes());
    let code = single(&params, "user_code").ok().flatten().unwrap_or_default();
    let code: String = code.chars().filter(|c| c.is_ascii_alphanumeric() || *c == '-').collect();
    Html(format!(
        "<!doctype html><title>Device sign-in</title><form method=post action=/device>\
         <label>Code <input name=user_code value=\"{code}\"></label>\
         <button name=confirm value=yes>Approve</button><button name=confirm value=no>Deny</button></form>"
    ))
    .into_response()
}

pub(crate) async fn confirm(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    let params = form(&body);
    let code = single(&params, "user_code").ok().flatten().unwrap_or_default();
    let approve = single(&params, "confirm").ok().flatten() == Some("yes");
    let sub = shared.config.users.first().map(|u| u.sub.clone()).unwrap_or_else(|| "user".into());
    let mut grants = lock(&shared.grants);
    match grants.device_by_user_code(code) {
        Some(device) if device.status == DeviceStatus::Pending => {
            device.status = if approve { DeviceStatus::Approved(sub) } else { DeviceStatus::Denied };
            let text = if approve { "Approved. You can return to your device." } else { "Denied." };
            ([(header::CACHE_CONTROL, "no-store")], Html(format!("<!doctype html><p>{text}</p>")))
                .into_response()
        }
        _ => (StatusCode::BAD_REQUEST, Html("<!doctype html><p>Unknown or used code.</p>")).into_response(),
    }
}
