//! Signing keys and compact JWS signing, for every supported algorithm: DPoP proofs,
//! private_key_jwt assertions, the test provider and benchmarks need them.

use std::fmt;

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::{KeyPairComponents, KeySize, PublicKeyComponents};
use aws_lc_rs::signature::{self, EcdsaKeyPair, Ed25519KeyPair, KeyPair as _, RsaKeyPair};
use aws_lc_rs::{digest, hmac};
use serde_json::{Map, Value, json};

use crate::error::{Error, ErrorKind};
use crate::jose::algorithm::{Algorithm, Curve, KeyFamily};
use crate::jose::base64url;
use crate::jose::jwk::{self, KeyType};

enum Inner {
    Rsa(RsaKeyPair),
    Ec(EcdsaKeyPair, Curve),
    Ed(Ed25519KeyPair),
    Hmac(Box<hmac::Key>, Vec<u8>),
}

/// A private key bound to one algorithm, with an optional `kid`.
pub struct SigningKey {
    alg: Algorithm,
    kid: Option<String>,
    inner: Inner,
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("alg", &self.alg)
            .field("kid", &self.kid)
            .field("key", &"[redacted]")
            .finish()
    }
}

fn key_error(message: impl Into<String>) -> Error {
    Error::new(ErrorKind::InvalidKey, message.into())
}

fn ec_signing(curve: Curve) -> &'static signature::EcdsaSigningAlgorithm {
    match curve {
        Curve::P256 => &signature::ECDSA_P256_SHA256_FIXED_SIGNING,
        Curve::P384 => &signature::ECDSA_P384_SHA384_FIXED_SIGNING,
        Curve::P521 => &signature::ECDSA_P521_SHA512_FIXED_SIGNING,
    }
}

fn hmac_algorithm(alg: Algorithm) -> hmac::Algorithm {
    match alg {
        Algorithm::HS384 => hmac::HMAC_SHA384,
        Algorithm::HS512 => hmac::HMAC_SHA512,
        _ => hmac::HMAC_SHA256,
    }
}

impl SigningKey {
    /// Generates a fresh key for `alg` (RSA keys are 2048 bits; HMAC secrets are as long as
    /// the hash). The `kid` is the key's RFC 7638 thumbprint.
    pub fn generate(alg: Algorithm) -> Result<SigningKey, Error> {
        let failed = |_| key_error(format!("could not generate a {alg} key"));
        let inner = match alg.key_family() {
            KeyFamily::Rsa => Inner::Rsa(RsaKeyPair::generate(KeySize::Rsa2048).map_err(failed)?),
            KeyFamily::Ec(curve) => {
                Inner::Ec(EcdsaKeyPair::generate(ec_signing(curve)).map_err(failed)?, curve)
            }
            KeyFamily::Ed25519 => Inner::Ed(Ed25519KeyPair::generate().map_err(failed)?),
            KeyFamily::Symmetric => {
                let mut secret = vec![0u8; alg.min_hmac_key_len()];
                aws_lc_rs::rand::fill(&mut secret).map_err(failed)?;
                Inner::Hmac(Box::new(hmac::Key::new(hmac_algorithm(alg), &secret)), secret)
            }
        };
        let mut key = SigningKey { alg, kid: None, inner };
        key.kid = Some(key.thumbprint());
        Ok(key)
    }

    /// Reads a private key in DER for `alg`: PKCS #8 (RSA, EC, Ed25519), PKCS #1 (RSA) or
    /// SEC 1 (EC). Encrypted keys are not read (decrypt them first). No `kid` is set.
    pub fn from_der(der: &[u8], alg: Algorithm) -> Result<SigningKey, Error> {
        let rejected = |e: aws_lc_rs::error::KeyRejected| key_error(format!("{alg} key rejected: {e}"));
        let inner = match alg.key_family() {
            KeyFamily::Rsa => Inner::Rsa(
                RsaKeyPair::from_pkcs8(der).or_else(|_| RsaKeyPair::from_der(der)).map_err(rejected)?,
            ),
            KeyFamily::Ec(curve) => Inner::Ec(
                EcdsaKeyPair::from_pkcs8(ec_signing(curve), der)
                    .or_else(|_| EcdsaKeyPair::from_private_key_der(ec_signing(curve), der))
                    .map_err(rejected)?,
                curve,
            ),
            KeyFamily::Ed25519 => Inner::Ed(Ed25519KeyPair::from_pkcs8(der).map_err(rejected)?),
            KeyFamily::Symmetric => {
                return Err(key_error(format!("{alg} takes a secret, not a DER private key")));
            }
        };
        Ok(SigningKey { alg, kid: None, inner })
    }

    /// Reads a private JWK (RSA with CRT members, EC, OKP Ed25519, or oct). The algorithm is the
    /// JWK's `alg`, else `alg`; it must fit the key.
    pub fn from_jwk(jwk: &Map<String, Value>, alg: Option<Algorithm>) -> Result<SigningKey, Error> {
        let text = |name: &str| jwk.get(name).and_then(Value::as_str);
        let bytes = |name: &str| -> Result<Vec<u8>, Error> {
            let value = text(name).ok_or_else(|| key_error(format!("private JWK has no \"{name}\"")))?;
            base64url::decode(value.as_bytes()).map_err(|_| key_error(format!("\"{name}\" is not base64url")))
        };
        let declared = text("alg").map(str::parse::<Algorithm>).transpose()?;
        let alg = declared
            .or(alg)
            .ok_or_else(|| key_error("no algorithm: the JWK has no \"alg\" and none was given"))?;
        let kid = text("kid").map(str::to_owned);
        let inner = match (text("kty"), alg.key_family()) {
            (Some("RSA"), KeyFamily::Rsa) => {
                let components = KeyPairComponents {
                    public_key: PublicKeyComponents { n: bytes("n")?, e: bytes("e")? },
                    d: bytes("d")?,
                    p: bytes("p")?,
                    q: bytes("q")?,
                    dP: bytes("dp")?,
                    dQ: bytes("dq")?,
                    qInv: bytes("qi")?,
                };
                Inner::Rsa(
                    RsaKeyPair::from_components(&components)
                        .map_err(|e| key_error(format!("RSA key rejected: {e}")))?,
                )
            }
            (Some("EC"), KeyFamily::Ec(curve)) if text("crv") == Some(curve.as_str()) => {
                let mut point = vec![0x04];
                point.extend(bytes("x")?);
                point.extend(bytes("y")?);
                let pair =
                    EcdsaKeyPair::from_private_key_and_public_key(ec_signing(curve), &bytes("d")?, &point)
                        .map_err(|e| key_error(format!("EC key rejected: {e}")))?;
                Inner::Ec(pair, curve)
            }
            (Some("OKP"), KeyFamily::Ed25519) if text("crv") == Some("Ed25519") => Inner::Ed(
                Ed25519KeyPair::from_seed_and_public_key(&bytes("d")?, &bytes("x")?)
                    .map_err(|e| key_error(format!("Ed25519 key rejected: {e}")))?,
            ),
            (Some("oct"), KeyFamily::Symmetric) => {
                let secret = bytes("k")?;
                if secret.len() < alg.min_hmac_key_len() {
                    return Err(key_error(format!(
                        "{alg} needs a key of at least {} bytes",
                        alg.min_hmac_key_len()
                    )));
                }
                Inner::Hmac(Box::new(hmac::Key::new(hmac_algorithm(alg), &secret)), secret)
            }
            (kty, _) => {
                return Err(key_error(format!("a {} key cannot sign {alg}", kty.unwrap_or("kty-less"))));
            }
        };
        Ok(SigningKey { alg, kid, inner })
    }

    /// Replaces the `kid`.
    pub fn with_kid(mut self, kid: impl Into<String>) -> Self {
        self.kid = Some(kid.into());
        self
    }

    /// The algorithm this key signs with.
    pub fn alg(&self) -> Algorithm {
        self.alg
    }

    /// The key id, if any.
    pub fn kid(&self) -> Option<&str> {
        self.kid.as_deref()
    }

    /// The JWK that verifies this key's signatures, with `kid`, `alg` and `use: sig`. For HMAC
    /// keys this is the secret itself: never publish it.
    pub fn verification_jwk(&self) -> Map<String, Value> {
        let mut jwk = match &self.inner {
            Inner::Rsa(pair) => {
                let public = pair.public_key();
                json!({
                    "kty": "RSA",
                    "n": base64url::encode(public.modulus().big_endian_without_leading_zero()),
                    "e": base64url::encode(public.exponent().big_endian_without_leading_zero()),
                })
            }
            Inner::Ec(pair, curve) => {
                let point = pair.public_key().as_ref();
                let len = curve.coordinate_len();
                json!({
                    "kty": "EC",
                    "crv": curve.as_str(),
                    "x": base64url::encode(&point[1..1 + len]),
                    "y": base64url::encode(&point[1 + len..]),
                })
            }
            Inner::Ed(pair) => {
                json!({"kty": "OKP", "crv": "Ed25519", "x": base64url::encode(pair.public_key().as_ref())})
            }
            Inner::Hmac(_, secret) => json!({"kty": "oct", "k": base64url::encode(secret)}),
        };
        let map = jwk.as_object_mut().expect("json! object literal");
        if let Some(kid) = &self.kid {
            map.insert("kid".into(), kid.clone().into());
        }
        map.insert("alg".into(), self.alg.as_str().into());
        map.insert("use".into(), "sig".into());
        std::mem::take(map)
    }

    /// The private JWK (public members plus `d`, the RSA primes and CRT values, or `k`), for
    /// writing a key file. `None` only if the key cannot be exported.
    pub fn private_jwk(&self) -> Option<Map<String, Value>> {
        use aws_lc_rs::encoding::AsBigEndian as _;
        let d = match &self.inner {
            Inner::Rsa(pair) => {
                use aws_lc_rs::encoding::{AsDer as _, Pkcs8V1Der};
                let der: Pkcs8V1Der<'_> = pair.as_der().ok()?;
                let members = super::rsa_der::rsa_private_members(der.as_ref())?;
                let mut jwk = self.verification_jwk();
                for (name, value) in ["n", "e", "d", "p", "q", "dp", "dq", "qi"].iter().zip(members).skip(2) {
                    jwk.insert((*name).into(), base64url::encode(value).into());
                }
                return Some(jwk);
            }
            Inner::Ec(pair, _) => {
                let private: aws_lc_rs::encoding::EcPrivateKeyBin<'_> =
                    pair.private_key().as_be_bytes().ok()?;
                base64url::encode(private.as_ref())
            }
            Inner::Ed(pair) => {
                let seed: aws_lc_rs::encoding::Curve25519SeedBin<'_> =
                    pair.seed().ok()?.as_be_bytes().ok()?;
                base64url::encode(seed.as_ref())
            }
            Inner::Hmac(..) => return Some(self.verification_jwk()),
        };
        let mut jwk = self.verification_jwk();
        jwk.insert("d".into(), d.into());
        Some(jwk)
    }

    /// The RFC 7638 thumbprint of the verification key.
    pub fn thumbprint(&self) -> String {
        let jwk = self.verification_jwk();
        let kty = match &self.inner {
            Inner::Rsa(_) => KeyType::Rsa,
            Inner::Ec(..) => KeyType::Ec,
            Inner::Ed(_) => KeyType::Okp,
            Inner::Hmac(..) => KeyType::Oct,
        };
        jwk::thumbprint(kty, &jwk).expect("verification JWK has its required members")
    }

    /// Signs `message` (the JWS signing input) with this key's algorithm.
    pub fn sign(&self, message: &[u8]) -> Result<Vec<u8>, Error> {
        let failed = |_| key_error(format!("{} signing failed", self.alg));
        match &self.inner {
            Inner::Rsa(pair) => {
                let padding: &'static dyn signature::RsaEncoding = match self.alg {
                    Algorithm::RS256 => &signature::RSA_PKCS1_SHA256,
                    Algorithm::RS384 => &signature::RSA_PKCS1_SHA384,
                    Algorithm::RS512 => &signature::RSA_PKCS1_SHA512,
                    Algorithm::PS256 => &signature::RSA_PSS_SHA256,
                    Algorithm::PS384 => &signature::RSA_PSS_SHA384,
                    _ => &signature::RSA_PSS_SHA512,
                };
                let mut out = vec![0u8; pair.public_modulus_len()];
                pair.sign(padding, &SystemRandom::new(), message, &mut out).map_err(failed)?;
                Ok(out)
            }
            Inner::Ec(pair, _) => {
                Ok(pair.sign(&SystemRandom::new(), message).map_err(failed)?.as_ref().to_vec())
            }
            Inner::Ed(pair) => Ok(pair.sign(message).as_ref().to_vec()),
            Inner::Hmac(key, _) => Ok(hmac::sign(key, message).as_ref().to_vec()),
        }
    }

    /// Signs a compact JWS. `header` may carry any members; `alg` is set to this key's
    /// algorithm and `kid` to its key id unless the header names one already.
    pub fn sign_compact(&self, mut header: Map<String, Value>, payload: &[u8]) -> Result<String, Error> {
        header.insert("alg".into(), self.alg.as_str().into());
        if let (Some(kid), false) = (&self.kid, header.contains_key("kid")) {
            header.insert("kid".into(), kid.clone().into());
        }
        let header_json = serde_json::to_vec(&header).expect("a JSON map serializes");
        let mut token = base64url::encode(header_json);
        token.push('.');
        token.push_str(&base64url::encode(payload));
        let signature = self.sign(token.as_bytes())?;
        token.push('.');
        token.push_str(&base64url::encode(signature));
        Ok(token)
    }

    /// Signs a JWT: `claims` as the payload, `typ` in the header when given.
    pub fn sign_jwt(&self, typ: Option<&str>, claims: &Value) -> Result<String, Error> {
        let mut header = Map::new();
        if let Some(typ) = typ {
            header.insert("typ".into(), typ.into());
        }
        let payload = serde_json::to_vec(claims).expect("a JSON value serializes");
        self.sign_compact(header, &payload)
    }
}

/// SHA-256 of `data`, for callers that need the digest primitives this crate already links.
pub fn sha256(data: &[u8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    out.copy_from_slice(digest::digest(&digest::SHA256, data).as_ref());
    out
}

#[cfg(test)]
mod tests {
    use aws_lc_rs::rand::SystemRandom;
    use aws_lc_rs::signature::{self, EcdsaKeyPair, Ed25519KeyPair};

    use super::SigningKey;
    use crate::jose::algorithm::Algorithm;
    use crate::jose::jwk::VerifyingKey;

    fn signs_verifiably(key: &SigningKey) -> bool {
        let public = VerifyingKey::from_jwk(key.verification_jwk()).expect("public JWK");
        let signature = key.sign(b"message").expect("signature");
        public.verify(key.alg(), b"message", &signature) && !public.verify(key.alg(), b"massage", &signature)
    }

    #[test]
    fn der_keys_are_read_for_their_algorithm_only() {
        let rng = SystemRandom::new();
        let ec = EcdsaKeyPair::generate_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
        let ed = Ed25519KeyPair::generate_pkcs8(&rng).unwrap();
        let es256 = SigningKey::from_der(ec.as_ref(), Algorithm::ES256).expect("PKCS #8 P-256");
        assert!(signs_verifiably(&es256));
        let eddsa = SigningKey::from_der(ed.as_ref(), Algorithm::EdDSA).expect("PKCS #8 Ed25519");
        assert!(signs_verifiably(&eddsa));
        // A key for another curve, family, or no key at all is refused with a typed error.
        for (der, alg) in [
            (ec.as_ref(), Algorithm::ES384),
            (ec.as_ref(), Algorithm::RS256),
            (ed.as_ref(), Algorithm::ES256),
            (&b"not DER"[..], Algorithm::PS256),
            (ec.as_ref(), Algorithm::HS256),
        ] {
            let error = SigningKey::from_der(der, alg).expect_err("refused");
            assert_eq!(error.kind(), crate::ErrorKind::InvalidKey, "{alg}: {error}");
        }
    }
}
