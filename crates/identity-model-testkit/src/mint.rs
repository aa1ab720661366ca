//! Minting tokens by hand: valid ones with any claims, and every kind of broken one.

use std::sync::Arc;

use identity_model_core::{Algorithm, SigningKey, base64url};
use serde_json::{Map, Value};

use crate::state::{Shared, random_token};

/// Builds a token signed (by default) with the provider's active key: an RFC 9068 access token
/// for the default resource, issued now, valid for the configured lifetime. Change anything.
#[derive(Debug, Clone)]
pub struct TokenBuilder {
    header: Map<String, Value>,
    claims: Map<String, Value>,
    key: Arc<SigningKey>,
}

impl TokenBuilder {
    pub(crate) fn new(shared: &Shared) -> TokenBuilder {
        let now = shared.now();
        let mut claims = Map::new();
        claims.insert("iss".into(), shared.issuer.clone().into());
        claims.insert("sub".into(), "test-subject".into());
        claims.insert("aud".into(), shared.default_resource().into());
        claims.insert("client_id".into(), "test-client".into());
        claims.insert("iat".into(), now.into());
        claims.insert("exp".into(), (now + crate::state::ttl(shared.config.access_token_ttl)).into());
        claims.insert("jti".into(), random_token(16).into());
        let mut header = Map::new();
        header.insert("typ".into(), "at+jwt".into());
        let key = crate::faults::lock(&shared.keys).signer(None);
        TokenBuilder { header, claims, key }
    }

    /// Sets a claim (any JSON value).
    pub fn claim(mut self, name: &str, value: impl Into<Value>) -> Self {
        self.claims.insert(name.into(), value.into());
        self
    }

    /// Removes a claim.
    pub fn without_claim(mut self, name: &str) -> Self {
        self.claims.remove(name);
        self
    }

    /// Sets a header member (`alg` is always the signing key's unless [`TokenBuilder::unsigned`]).
    pub fn header(mut self, name: &str, value: impl Into<Value>) -> Self {
        self.header.insert(name.into(), value.into());
        self
    }

    /// Removes a header member.
    pub fn without_header(mut self, name: &str) -> Self {
        self.header.remove(name);
        self
    }

    /// `aud`.
    pub fn audience(self, aud: impl Into<Value>) -> Self {
        self.claim("aud", aud)
    }

    /// `sub`.
    pub fn subject(self, sub: &str) -> Self {
        self.claim("sub", sub)
    }

    /// `exp` = `iat` + `seconds` (negative: already expired).
    pub fn expires_in(self, seconds: i64) -> Self {
        let iat = self.claims.get("iat").and_then(Value::as_i64).unwrap_or_default();
        self.claim("exp", iat + seconds)
    }

    /// Expired an hour ago (issued two hours ago).
    pub fn expired(self) -> Self {
        let iat = self.claims.get("iat").and_then(Value::as_i64).unwrap_or_default() - 7200;
        self.claim("iat", iat).claim("exp", iat + 3600)
    }

    /// A header `kid` other than the key's.
    pub fn kid(self, kid: &str) -> Self {
        self.header("kid", kid)
    }

    /// Signs with `key` (any algorithm, published or not).
    pub fn key(mut self, key: Arc<SigningKey>) -> Self {
        self.key = key;
        self
    }

    /// Signs with a freshly generated, unpublished key for `alg`: a well-formed token nobody can
    /// verify.
    pub fn unknown_key(self, alg: Algorithm) -> Self {
        match SigningKey::generate(alg) {
            Ok(key) => self.key(Arc::new(key)),
            Err(_) => self,
        }
    }

    /// The claims so far.
    pub fn claims(&self) -> &Map<String, Value> {
        &self.claims
    }

    /// The signed compact JWS.
    pub fn sign(&self) -> String {
        let payload = serde_json::to_vec(&self.claims).unwrap_or_default();
        // Signing with a generated or loaded key does not fail; an empty string would show it.
        self.key.sign_compact(self.header.clone(), &payload).unwrap_or_default()
    }

    /// `alg: none` and an empty signature.
    pub fn unsigned(&self) -> String {
        let mut header = self.header.clone();
        header.insert("alg".into(), "none".into());
        header.remove("kid");
        let header = serde_json::to_vec(&header).unwrap_or_default();
        let payload = serde_json::to_vec(&self.claims).unwrap_or_default();
        format!("{}.{}.", base64url::encode(header), base64url::encode(payload))
    }

    /// Signed, then one bit of the signature flipped.
    pub fn tampered_signature(&self) -> String {
        let token = self.sign();
        let (signed, signature) = token.rsplit_once('.').unwrap_or((&token, ""));
        let mut bytes = base64url::decode(signature.as_bytes()).unwrap_or_default();
        if let Some(first) = bytes.first_mut() {
            *first ^= 0x01;
        }
        format!("{signed}.{}", base64url::encode(bytes))
    }

    /// Signed, then the payload replaced by `claims` (the signature no longer matches).
    pub fn tampered_payload(&self, claims: &Map<String, Value>) -> String {
        let token = self.sign();
        let mut parts = token.split('.');
        let header = parts.next().unwrap_or_default();
        let _payload = parts.next();
        let signature = parts.next().unwrap_or_default();
        let payload = serde_json::to_vec(claims).unwrap_or_default();
        format!("{header}.{}.{signature}", base64url::encode(payload))
    }

    /// Raw parts, for tokens that are not even JSON: `header` and `payload` are encoded as given
    /// and the signature is made over them with the builder's key.
    pub fn raw(&self, header: &[u8], payload: &[u8]) -> String {
        let input = format!("{}.{}", base64url::encode(header), base64url::encode(payload));
        let signature = self.key.sign(input.as_bytes()).unwrap_or_default();
        format!("{input}.{}", base64url::encode(signature))
    }
}
