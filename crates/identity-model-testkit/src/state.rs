//! The provider's shared state and the tokens it issues: RFC 9068 access tokens (JWT or opaque),
//! ID tokens and refresh tokens, and the lookups that introspection, userinfo and token exchange
//! share.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use identity_model_core::{SigningKey, UnixTime, Validation, base64url};
use serde_json::{Map, Value, json};

use crate::config::{ProviderConfig, TokenFormat};
use crate::faults::{Faults, lock};
use crate::grants::{Grants, RefreshGrant};
use crate::keys::{KeyRing, parse_algorithm};

/// Decides an authorization request: `Ok(sub)` signs that user in, `Err(error)` redirects back
/// with that OAuth error (e.g. `access_denied`).
pub type AuthorizeDecision = Arc<dyn Fn(&AuthorizeRequest) -> Result<String, String> + Send + Sync>;

/// An authorization request as the provider received it.
#[derive(Debug, Clone)]
pub struct AuthorizeRequest {
    /// `client_id`.
    pub client_id: String,
    /// `scope`.
    pub scope: String,
    /// `redirect_uri`.
    pub redirect_uri: String,
    /// Every query parameter.
    pub params: Vec<(String, String)>,
}

pub(crate) struct Shared {
    pub(crate) issuer: String,
    pub(crate) config: ProviderConfig,
    pub(crate) keys: Mutex<KeyRing>,
    pub(crate) faults: Faults,
    pub(crate) grants: Mutex<Grants>,
    pub(crate) authorize: Mutex<Option<AuthorizeDecision>>,
    pub(crate) clock_offset: AtomicI64,
    /// The nonce DPoP proofs at the token endpoint must carry, when one is demanded.
    pub(crate) dpop_nonce: Mutex<Option<String>>,
}

/// What an access token carries, wherever it lives.
#[derive(Debug, Clone)]
pub(crate) struct TokenRequest<'a> {
    pub(crate) client_id: &'a str,
    /// The user, or `None` for a client acting for itself.
    pub(crate) sub: Option<&'a str>,
    pub(crate) scope: &'a str,
    pub(crate) resource: &'a str,
    pub(crate) extra: Map<String, Value>,
}

pub(crate) fn random_token(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    // A failing system RNG leaves zeros; the provider is a test tool, and the tokens stay unique
    // through the counter mixed in below.
    let _ = aws_lc_rs::rand::fill(&mut buf);
    static COUNTER: AtomicI64 = AtomicI64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    buf.extend_from_slice(&n.to_be_bytes());
    base64url::encode(&buf)
}

impl Shared {
    pub(crate) fn new(issuer: String, config: ProviderConfig, keys: KeyRing) -> Shared {
        Shared {
            issuer,
            config,
            keys: Mutex::new(keys),
            faults: Faults::default(),
            grants: Mutex::new(Grants::default()),
            authorize: Mutex::new(None),
            clock_offset: AtomicI64::new(0),
            dpop_nonce: Mutex::new(None),
        }
    }

    /// Seconds since the epoch, plus whatever the tests advanced the clock by.
    pub(crate) fn now(&self) -> i64 {
        let system = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
        i64::try_from(system).unwrap_or(i64::MAX) + self.clock_offset.load(Ordering::SeqCst)
    }

    /// The demanded DPoP nonce, if any.
    pub(crate) fn dpop_nonce(&self) -> Option<String> {
        crate::faults::lock(&self.dpop_nonce).clone()
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}{path}", self.issuer)
    }

    pub(crate) fn default_resource(&self) -> &str {
        self.config.resources.first().map_or("", |r| r.id.as_str())
    }

    fn signer_for(&self, alg: Option<&str>) -> Arc<SigningKey> {
        let alg = alg.and_then(|a| parse_algorithm(a).ok());
        lock(&self.keys).signer(alg)
    }

    /// Issues an access token for `request.resource`, in that resource's format.
    pub(crate) fn issue_access_token(&self, request: &TokenRequest<'_>) -> Result<String, String> {
        let resource = self
            .config
            .find_resource(request.resource)
            .ok_or_else(|| format!("unknown resource {}", request.resource))?;
        let now = self.now();
        let mut claims = Map::new();
        claims.insert("iss".into(), self.issuer.clone().into());
        claims.insert("sub".into(), request.sub.unwrap_or(request.client_id).into());
        claims.insert("aud".into(), request.resource.into());
        claims.insert("client_id".into(), request.client_id.into());
        claims.insert("iat".into(), now.into());
        claims.insert("exp".into(), (now + ttl(self.config.access_token_ttl)).into());
        claims.insert("jti".into(), random_token(16).into());
        if !request.scope.is_empty() {
            claims.insert("scope".into(), request.scope.into());
        }
        claims.extend(request.extra.clone());
        match resource.format {
            TokenFormat::Jwt => {
                let key = self.signer_for(resource.alg.as_deref());
                key.sign_jwt(Some("at+jwt"), &Value::Object(claims)).map_err(|e| e.to_string())
            }
            TokenFormat::Opaque => {
                let token = random_token(32);
                lock(&self.grants).opaque.insert(token.clone(), claims);
                Ok(token)
            }
        }
    }

    /// An ID token for `client_id`, with `at_hash` when an access token comes with it.
    pub(crate) fn issue_id_token(
        &self,
        client_id: &str,
        sub: &str,
        auth_time: i64,
        nonce: Option<&str>,
        access_token: Option<&str>,
    ) -> Result<String, String> {
        let key = self.signer_for(None);
        let now = self.now();
        let mut claims = json!({
            "iss": self.issuer,
            "sub": sub,
            "aud": client_id,
            "azp": client_id,
            "iat": now,
            "exp": now + ttl(self.config.id_token_ttl),
            "auth_time": auth_time,
        });
        if let Some(nonce) = nonce {
            claims["nonce"] = nonce.into();
        }
        if let Some(token) = access_token {
            claims["at_hash"] = identity_model_core::left_half_hash(key.alg(), token).into();
        }
        key.sign_jwt(Some("JWT"), &claims).map_err(|e| e.to_string())
    }

    pub(crate) fn issue_refresh_token(&self, grant: RefreshGrant) -> String {
        let token = random_token(32);
        lock(&self.grants).refresh.insert(token.clone(), grant);
        token
    }

    /// The claims of an access token this provider issued and that is still active: an opaque
    /// token it remembers, or a JWT its keys verify (any of its resources).
    pub(crate) fn active_access_token(&self, token: &str) -> Option<Map<String, Value>> {
        let now = self.now();
        let claims = lock(&self.grants).opaque.get(token).cloned();
        let claims = match claims {
            Some(claims) => {
                let revoked = lock(&self.grants).revoked.contains(token);
                let expired = claims.get("exp").and_then(Value::as_i64).is_none_or(|exp| exp <= now);
                if revoked || expired {
                    return None;
                }
                claims
            }
            None => {
                let published = lock(&self.keys).published();
                // The provider's own tokens, for every resource it serves: any audience.
                let rules = Validation::new(self.issuer.clone())
                    .dangerous_any_audience()
                    .token_type("at+jwt")
                    .leeway(std::time::Duration::ZERO);
                let valid = rules.validate(token, &published.keys, UnixTime::from_secs(now)).ok()?;
                let claims: Map<String, Value> = serde_json::from_str(valid.claims.raw_json()).ok()?;
                let jti = claims.get("jti").and_then(Value::as_str).unwrap_or_default();
                if lock(&self.grants).revoked.contains(jti) {
                    return None;
                }
                claims
            }
        };
        Some(claims)
    }

    /// The active refresh grant behind `token`.
    pub(crate) fn active_refresh_token(&self, token: &str) -> Option<RefreshGrant> {
        let now = self.now();
        lock(&self.grants).refresh.get(token).filter(|g| g.expires_at > now).cloned()
    }
}

pub(crate) fn ttl(seconds: u64) -> i64 {
    i64::try_from(seconds).unwrap_or(i64::MAX / 2)
}
