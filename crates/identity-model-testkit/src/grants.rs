//! What the provider remembers between requests: codes, device codes, refresh tokens, opaque
//! access tokens, revocations and used assertion ids.

use std::collections::{HashMap, HashSet};

use serde_json::{Map, Value};

/// An authorization code waiting to be redeemed (once).
#[derive(Debug, Clone)]
pub(crate) struct CodeGrant {
    pub(crate) client_id: String,
    pub(crate) redirect_uri: String,
    pub(crate) code_challenge: Option<String>,
    pub(crate) scope: String,
    pub(crate) resource: Option<String>,
    pub(crate) nonce: Option<String>,
    pub(crate) sub: String,
    pub(crate) auth_time: i64,
    pub(crate) expires_at: i64,
}

/// Where a device authorization stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum DeviceStatus {
    Pending,
    Approved(String),
    Denied,
}

#[derive(Debug, Clone)]
pub(crate) struct DeviceGrant {
    pub(crate) client_id: String,
    pub(crate) user_code: String,
    pub(crate) scope: String,
    pub(crate) resource: Option<String>,
    pub(crate) status: DeviceStatus,
    pub(crate) expires_at: i64,
    pub(crate) interval: i64,
    pub(crate) last_poll: Option<i64>,
}

/// A refresh token's grant.
#[derive(Debug, Clone)]
pub(crate) struct RefreshGrant {
    pub(crate) client_id: String,
    pub(crate) sub: String,
    pub(crate) scope: String,
    pub(crate) resource: Option<String>,
    pub(crate) auth_time: i64,
    pub(crate) expires_at: i64,
    /// The DPoP key (thumbprint) the grant was issued to: a refresh must prove the same key
    /// (RFC 9449 section 5).
    pub(crate) jkt: Option<String>,
}

/// A pushed authorization request: (client, parameters, expiry).
pub(crate) type PushedRequest = (String, Vec<(String, String)>, i64);

#[derive(Debug, Default)]
pub(crate) struct Grants {
    pub(crate) codes: HashMap<String, CodeGrant>,
    pub(crate) devices: HashMap<String, DeviceGrant>,
    pub(crate) refresh: HashMap<String, RefreshGrant>,
    /// Refresh tokens retired by rotation: presenting one again is a replay.
    pub(crate) rotated: HashSet<String>,
    /// Opaque access tokens and their claims.
    pub(crate) opaque: HashMap<String, Map<String, Value>>,
    /// Revoked access tokens: opaque values and JWT `jti`s.
    pub(crate) revoked: HashSet<String>,
    /// Client assertion `jti`s already used.
    pub(crate) assertion_ids: HashSet<String>,
    /// Pushed authorization requests (RFC 9126): `request_uri` -> (client, parameters, expiry).
    pub(crate) pushed: HashMap<String, PushedRequest>,
}

impl Grants {
    /// The device grant with this user code.
    pub(crate) fn device_by_user_code(&mut self, user_code: &str) -> Option<&mut DeviceGrant> {
        let wanted = normalize_user_code(user_code);
        self.devices.values_mut().find(|d| normalize_user_code(&d.user_code) == wanted)
    }
}

/// User codes compare without case, spaces or dashes (RFC 8628 section 6.1).
pub(crate) fn normalize_user_code(code: &str) -> String {
    code.chars().filter(char::is_ascii_alphanumeric).map(|c| c.to_ascii_uppercase()).collect()
}
