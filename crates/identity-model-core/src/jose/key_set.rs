//! A JWK Set (RFC 7517 section 5): usable keys prepared once, unusable keys set aside with their
//! reason, bounded in size and count.
//!
//! **Duplicate `kid`s.** RFC 7517 section 4.5 lets keys of different types share a `kid`
//! ("equivalent alternatives"). A set with duplicate `kid`s is accepted; a token naming such a
//! `kid` is tried against each key under that `kid` that fits its algorithm, in document order,
//! **Duplicate `kid`s.** RFC 7517 section 4.5 lets keys of different types share a `kid`
//! ("equivalent alternatives"). A set with duplicate `kid`s is accepted. A token naming such a
//! `kid` is verified with the one key under that `kid` that fits its algorithm; when several
//! keys under the `kid` fit the algorithm, the `kid` is ambiguous and the token is rejected
//! (`invalid_key`) rather than tried against each; so is a token whose `kid` is shared with a
//! key of the same `kty` that was set aside. A token without `kid` is tried against every key
//! that fits its algorithm.
//!
//! **Secret keys among public ones.** A set holding both `oct` (secret) keys and public keys
//! sets the `oct` keys aside: a JWK Set is either a published set of public keys or a caller's
//! own secret, never both, and mixing them is how HMAC key confusion starts.

use std::collections::HashMap;

use serde_json::{Map, Value};

use crate::error::{Error, ErrorKind};
use crate::jose::algorithm::Algorithm;
use crate::jose::jwk::{KeyType, VerifyingKey};

/// Bounds on a JWK Set document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeySetLimits {
    /// Largest document accepted, in bytes (default 512 KiB).
    pub max_bytes: usize,
    /// Most keys accepted, usable or not (default 100).
    pub max_keys: usize,
}

impl Default for KeySetLimits {
    fn default() -> Self {
        KeySetLimits { max_bytes: 512 * 1024, max_keys: 100 }
    }
}

/// A key that was set aside when the set was parsed, and why.
#[derive(Debug, Clone, PartialEq)]
pub struct RejectedKey {
    /// Position of the key in the document's `keys` array.
    pub index: usize,
    /// Its `kid`, when it had a string one.
    pub kid: Option<String>,
    /// Its `kty`, when it had a string one.
    pub kty: Option<String>,
    /// Why it cannot be used.
    pub reason: String,
}

/// A parsed, prepared JWK Set.
#[derive(Debug, Default)]
pub struct KeySet {
    keys: Vec<VerifyingKey>,
    rejected: Vec<RejectedKey>,
    by_kid: HashMap<String, Vec<usize>>,
    members: Map<String, Value>,
}

impl KeySet {
    /// Parses a JWK Set document with the default limits.
    pub fn from_json(document: &[u8]) -> Result<KeySet, Error> {
        KeySet::from_json_with(document, KeySetLimits::default())
    }

    /// Parses a JWK Set document within `limits`. Fails (`invalid_key_set`) only when the document
    /// as a whole is unusable; single bad keys are set aside (see [`KeySet::rejected`]).
    pub fn from_json_with(document: &[u8], limits: KeySetLimits) -> Result<KeySet, Error> {
        if document.len() > limits.max_bytes {
            return Err(Error::new(
                ErrorKind::InvalidKeySet,
                format!("JWK Set is {} bytes, over the {}-byte limit", document.len(), limits.max_bytes),
            ));
        }
        let object = crate::json_object::parse(document, false).map_err(|e| {
            Error::new(ErrorKind::InvalidKeySet, "JWK Set is not a JSON object without duplicate members")
                .with_source(e)
        })?;
        let mut members = object.members;
        let keys = match members.remove("keys") {
            Some(Value::Array(keys)) => keys,
            Some(_) => return Err(Error::new(ErrorKind::InvalidKeySet, "\"keys\" is not an array")),
            None => return Err(Error::new(ErrorKind::InvalidKeySet, "JWK Set has no \"keys\" member")),
        };
        if keys.len() > limits.max_keys {
            return Err(Error::new(
                ErrorKind::InvalidKeySet,
                format!("JWK Set has {} keys, over the limit of {}", keys.len(), limits.max_keys),
            ));
        }
        let mut set = KeySet { members, ..KeySet::default() };
        for (index, key) in keys.into_iter().enumerate() {
            set.push(index, key);
        }
        set.separate_secrets();
        Ok(set)
    }

    /// A set holding the given JWKs (each a JSON object), for keys that do not come from a JWK
    /// Set document, such as an HMAC secret.
    pub fn from_jwks(jwks: impl IntoIterator<Item = Value>) -> KeySet {
        let mut set = KeySet::default();
        for (index, key) in jwks.into_iter().enumerate() {
            set.push(index, key);
        }
        set.separate_secrets();
        set
    }

    /// Sets `oct` keys aside when public keys are present too (see the module docs).
    fn separate_secrets(&mut self) {
        let is_secret = |k: &VerifyingKey| k.kty() == KeyType::Oct;
        if !self.keys.iter().any(is_secret) || self.keys.iter().all(is_secret) {
            return;
        }
        let (secrets, public): (Vec<_>, Vec<_>) =
            std::mem::take(&mut self.keys).into_iter().partition(is_secret);
        for key in secrets {
            self.rejected.push(RejectedKey {
                index: key.index,
                kid: key.kid().map(str::to_owned),
                kty: Some("oct".into()),
                reason: "a secret (oct) key in a set with public keys".into(),
            });
        }
        self.rejected.sort_by_key(|r| r.index);
        self.keys = public;
        self.by_kid.clear();
        for (i, key) in self.keys.iter().enumerate() {
            if let Some(kid) = key.kid() {
                self.by_kid.entry(kid.to_owned()).or_default().push(i);
            }
        }
    }

    fn push(&mut self, index: usize, key: Value) {
        let Value::Object(members) = key else {
            self.rejected.push(RejectedKey {
                index,
                kid: None,
                kty: None,
                reason: "key is not a JSON object".into(),
            });
            return;
        };
        let kid = members.get("kid").and_then(Value::as_str).map(str::to_owned);
        let kty = members.get("kty").and_then(Value::as_str).map(str::to_owned);
        match VerifyingKey::from_jwk(members) {
            Ok(mut key) => {
                key.index = index;
                if let Some(kid) = key.kid() {
                    self.by_kid.entry(kid.to_owned()).or_default().push(self.keys.len());
                }
                self.keys.push(key);
            }
            Err(reason) => self.rejected.push(RejectedKey { index, kid, kty, reason }),
        }
    }

    /// The usable keys, in document order.
    pub fn keys(&self) -> &[VerifyingKey] {
        &self.keys
    }

    /// The keys set aside, with their reasons.
    pub fn rejected(&self) -> &[RejectedKey] {
        &self.rejected
    }

    /// Members of the JWK Set document other than `keys`.
    pub fn members(&self) -> &Map<String, Value> {
        &self.members
    }

    /// Number of usable keys.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether there is no usable key.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The usable keys with this `kid` (several when the `kid` is shared).
    pub fn find<'a>(&'a self, kid: &str) -> impl Iterator<Item = &'a VerifyingKey> + 'a {
        self.matching(Some(kid))
    }

    /// Whether the set holds a usable key with this `kid`.
    pub fn contains_kid(&self, kid: &str) -> bool {
        self.by_kid.contains_key(kid)
    }

    /// The keys a token with this `kid` may name: those under the `kid`, or every key when
    /// the token has none. Allocates nothing.
    pub(crate) fn matching<'a>(&'a self, kid: Option<&str>) -> impl Iterator<Item = &'a VerifyingKey> + 'a {
        let (all, indexes): (&[VerifyingKey], &[usize]) = match kid {
            None => (&self.keys, &[]),
            Some(kid) => (&[], self.by_kid.get(kid).map_or(&[][..], Vec::as_slice)),
        };
        all.iter().chain(indexes.iter().map(move |i| &self.keys[*i]))
    }

    /// Whether a key set aside at parse time has this `kid` and the same `kty` as `key`: the
    /// `kid` then names two keys of one type, and is ambiguous however the other one failed.
    pub(crate) fn shares_kid_with_set_aside(&self, kid: &str, key: &VerifyingKey) -> bool {
        self.rejected
            .iter()
            .any(|r| r.kid.as_deref() == Some(kid) && r.kty.as_deref() == Some(key.kty().as_str()))
    }

    /// Why no key fits a token with `alg` and `kid`: `invalid_key` when keys under the `kid`
    /// exist but cannot verify `alg` (or the `kid` names a set-aside key), else `key_not_found`.
    pub(crate) fn explain_miss(&self, alg: Algorithm, kid: Option<&str>) -> Error {
        let Some(kid) = kid else {
            return Error::new(ErrorKind::KeyNotFound, format!("token has no kid and no key fits {alg}"));
        };
        let shown: String = kid.chars().take(64).collect();
        let kinds: Vec<_> = self
            .matching(Some(kid))
            .map(|k| k.declared_alg().map_or(k.kty().as_str(), Algorithm::as_str))
            .collect();
        if !kinds.is_empty() {
            return Error::new(
                ErrorKind::InvalidKey,
                format!("key {shown:?} ({}) cannot verify {alg}", kinds.join(", ")),
            );
        }
        match self.rejected.iter().find(|r| r.kid.as_deref() == Some(kid)) {
            Some(r) => {
                Error::new(ErrorKind::InvalidKey, format!("key {shown:?} was set aside: {}", r.reason))
            }
            None => Error::new(ErrorKind::KeyNotFound, format!("no key with kid {shown:?}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EC: &str = r#"{"kty":"EC","kid":"ec","crv":"P-256","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}"#;

    #[test]
    fn bad_keys_are_set_aside_not_fatal() {
        let doc = format!(
            r#"{{"keys":[{EC},{{"kty":"RSA","kid":"small","n":"AQAB","e":"AQAB"}},7],"x-extra":true}}"#
        );
        let set = KeySet::from_json(doc.as_bytes()).unwrap();
        assert_eq!(set.len(), 1);
        assert_eq!(set.rejected().len(), 2);
        assert_eq!(set.rejected()[0].kid.as_deref(), Some("small"));
        assert_eq!(set.members()["x-extra"], true);
        assert_eq!(set.explain_miss(Algorithm::RS256, Some("small")).kind(), ErrorKind::InvalidKey);
        assert_eq!(set.explain_miss(Algorithm::RS256, Some("ec")).kind(), ErrorKind::InvalidKey);
        assert_eq!(set.explain_miss(Algorithm::ES256, Some("nope")).kind(), ErrorKind::KeyNotFound);
        assert_eq!(set.explain_miss(Algorithm::ES384, None).kind(), ErrorKind::KeyNotFound);
        assert_eq!(set.matching(Some("ec")).count(), 1);
        assert_eq!(set.matching(Some("small")).count(), 0);
        assert_eq!(set.matching(None).count(), 1);
    }

    #[test]
    fn document_level_failures() {
        let limits = KeySetLimits { max_bytes: 64, max_keys: 1 };
        for (doc, limits) in [
            ("not json".to_string(), KeySetLimits::default()),
            ("[]".to_string(), KeySetLimits::default()),
            (r#"{"keys":{}}"#.to_string(), KeySetLimits::default()),
            (r#"{"nokeys":[]}"#.to_string(), KeySetLimits::default()),
            (r#"{"keys":[],"keys":[]}"#.to_string(), KeySetLimits::default()),
            (format!(r#"{{"keys":[{EC}]}}"#), limits),
            (r#"{"keys":[{},{}]}"#.to_string(), limits),
        ] {
            let err = KeySet::from_json_with(doc.as_bytes(), limits).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidKeySet, "{doc}");
        }
        assert!(KeySet::from_json(br#"{"keys":[]}"#).unwrap().is_empty());
    }

    #[test]
    fn secret_keys_are_not_mixed_with_public_ones() {
        let oct = r#"{"kty":"oct","kid":"s","k":"c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3JldA"}"#;
        let mixed = KeySet::from_json(format!(r#"{{"keys":[{oct},{EC}]}}"#).as_bytes()).unwrap();
        assert_eq!(mixed.len(), 1);
        assert_eq!(mixed.rejected()[0].index, 0);
        assert!(mixed.rejected()[0].reason.contains("secret"));
        assert!(mixed.contains_kid("ec") && !mixed.contains_kid("s"));
        let secrets = KeySet::from_json(format!(r#"{{"keys":[{oct}]}}"#).as_bytes()).unwrap();
        assert_eq!(secrets.len(), 1);
    }

    #[test]
    fn duplicate_kids_are_all_candidates() {
        let rsa_like_ec = EC.replace("\"kid\":\"ec\"", "\"kid\":\"dup\"");
        let doc = format!(r#"{{"keys":[{rsa_like_ec},{rsa_like_ec}]}}"#);
        let set = KeySet::from_json(doc.as_bytes()).unwrap();
        assert_eq!(set.find("dup").filter(|k| k.fits(Algorithm::ES256)).count(), 2);
    }
}
