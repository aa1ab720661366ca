//! The provider's signing keys: one active key per algorithm, the published JWK Set (with the
//! previous generation kept during an overlapping rotation), and its ETag.

use std::sync::Arc;

use identity_model_core::{Algorithm, KeySet, SigningKey, base64url, sha256};
use serde_json::{Value, json};

/// How a rotation treats the keys it replaces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rotation {
    /// The old keys stay published next to the new ones (tokens they signed keep validating).
    Overlap,
    /// The old keys disappear at once.
    Replace,
}

#[derive(Debug)]
pub(crate) struct KeyRing {
    active: Vec<Arc<SigningKey>>,
    retiring: Vec<Arc<SigningKey>>,
    generation: u64,
    published: Arc<Published>,
}

/// The served key set, rendered once per change.
#[derive(Debug)]
pub(crate) struct Published {
    pub(crate) body: Vec<u8>,
    pub(crate) etag: String,
    pub(crate) keys: KeySet,
}

pub(crate) fn parse_algorithm(name: &str) -> Result<Algorithm, String> {
    let alg: Algorithm = name.parse().map_err(|_| format!("unknown algorithm {name:?}"))?;
    if alg.is_symmetric() {
        return Err(format!("{name} is symmetric: the provider signs with published public keys only"));
    }
    Ok(alg)
}

impl KeyRing {
    pub(crate) fn generate(algorithms: &[Algorithm]) -> Result<KeyRing, String> {
        let keys = algorithms
            .iter()
            .map(|&alg| SigningKey::generate(alg).map(Arc::new).map_err(|e| e.to_string()))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(KeyRing::from_keys(keys))
    }

    /// Reads a private JWK Set; every key needs an `alg` (or a kty that implies one).
    pub(crate) fn from_private_jwks(document: &[u8]) -> Result<KeyRing, String> {
        let value: Value = serde_json::from_slice(document).map_err(|e| format!("keys file: {e}"))?;
        let keys = value
            .get("keys")
            .and_then(Value::as_array)
            .ok_or("keys file: no \"keys\" array")?
            .iter()
            .map(|jwk| {
                let map = jwk.as_object().ok_or("keys file: a key is not an object")?;
                let implied = identity_model_core::default_algorithm(map);
                let key = SigningKey::from_jwk(map, implied).map_err(|e| format!("keys file: {e}"))?;
                let key = match key.kid() {
                    Some(_) => key,
                    None => {
                        let kid = key.thumbprint();
                        key.with_kid(kid)
                    }
                };
                Ok(Arc::new(key))
            })
            .collect::<Result<Vec<_>, String>>()?;
        if keys.is_empty() {
            return Err("keys file: no keys".into());
        }
        Ok(KeyRing::from_keys(keys))
    }

    fn from_keys(active: Vec<Arc<SigningKey>>) -> KeyRing {
        let mut ring = KeyRing { active, retiring: Vec::new(), generation: 0, published: Arc::new(empty()) };
        ring.publish();
        ring
    }

    fn publish(&mut self) {
        let keys: Vec<Value> =
            self.active.iter().chain(&self.retiring).map(|k| Value::Object(k.verification_jwk())).collect();
        let body = serde_json::to_vec(&json!({ "keys": keys })).unwrap_or_default();
        let etag = format!("\"{}-{}\"", self.generation, &base64url::encode(sha256(&body))[..16]);
        let keys = KeySet::from_json(&body).unwrap_or_else(|_| KeySet::from_jwks(Vec::new()));
        self.published = Arc::new(Published { body, etag, keys });
    }

    pub(crate) fn published(&self) -> Arc<Published> {
        Arc::clone(&self.published)
    }

    /// The active key for `alg`, else the first active key.
    pub(crate) fn signer(&self, alg: Option<Algorithm>) -> Arc<SigningKey> {
        let found = alg.and_then(|alg| self.active.iter().find(|k| k.alg() == alg));
        Arc::clone(found.unwrap_or(&self.active[0]))
    }

    pub(crate) fn has_alg(&self, alg: Algorithm) -> bool {
        self.active.iter().any(|k| k.alg() == alg)
    }

    pub(crate) fn active(&self) -> &[Arc<SigningKey>] {
        &self.active
    }

    /// New keys for every active algorithm; returns their kids.
    pub(crate) fn rotate(&mut self, rotation: Rotation) -> Result<Vec<String>, String> {
        let fresh = self
            .active
            .iter()
            .map(|k| SigningKey::generate(k.alg()).map(Arc::new).map_err(|e| e.to_string()))
            .collect::<Result<Vec<_>, _>>()?;
        let old = std::mem::replace(&mut self.active, fresh);
        self.retiring = match rotation {
            Rotation::Overlap => old,
            Rotation::Replace => Vec::new(),
        };
        self.generation += 1;
        self.publish();
        Ok(self.active.iter().filter_map(|k| k.kid().map(str::to_owned)).collect())
    }

    /// Stops publishing the keys an overlapping rotation kept.
    pub(crate) fn retire(&mut self) {
        self.retiring.clear();
        self.generation += 1;
        self.publish();
    }
}

fn empty() -> Published {
    Published { body: Vec::new(), etag: String::new(), keys: KeySet::from_jwks(Vec::new()) }
}
