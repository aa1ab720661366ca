//! One JSON Web Key (RFC 7517, 7518 section 6, RFC 8037), validated once and turned into
//! prepared verifying keys: nothing is parsed again when a token is verified.

use std::fmt;

use aws_lc_rs::signature::{self, ParsedPublicKey, RsaParameters, VerificationAlgorithm};
use aws_lc_rs::{digest, hmac};
use serde_json::{Map, Value};

use crate::jose::algorithm::{Algorithm, Curve};
use crate::jose::base64url;

/// Smallest RSA modulus accepted, in bits (RFC 8725 section 3.5, NIST SP 800-131A).
pub const MIN_RSA_BITS: usize = 2048;
/// Largest RSA modulus accepted, in bits (bounds the verification cost an attacker can cause).
pub const MAX_RSA_BITS: usize = 8192;

/// The `kty` of a usable key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyType {
    /// `RSA`.
    Rsa,
    /// `EC`.
    Ec,
    /// `OKP`.
    Okp,
    /// `oct`.
    Oct,
}

impl KeyType {
    /// The `kty` name.
    pub fn as_str(self) -> &'static str {
        match self {
            KeyType::Rsa => "RSA",
            KeyType::Ec => "EC",
            KeyType::Okp => "OKP",
            KeyType::Oct => "oct",
        }
    }
}

enum Verifier {
    PublicKey(ParsedPublicKey),
    Hmac(Box<hmac::Key>),
}

/// A usable verification key: its JWK members as received (unknown ones included), its RFC 7638
/// thumbprint, and one prepared verifier per algorithm it may be used with.
pub struct VerifyingKey {
    pub(crate) index: usize,
    kid: Option<String>,
    kty: KeyType,
    curve: Option<Curve>,
    declared_alg: Option<Algorithm>,
    thumbprint: String,
    members: Map<String, Value>,
    verifiers: Vec<(Algorithm, Verifier)>,
}

impl fmt::Debug for VerifyingKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Members are left out: an `oct` key's `k` is a secret.
        f.debug_struct("VerifyingKey")
            .field("kid", &self.kid)
            .field("kty", &self.kty)
            .field("alg", &self.declared_alg)
            .field("algorithms", &self.algorithms().collect::<Vec<_>>())
            .field("thumbprint", &self.thumbprint)
            .finish()
    }
}

impl VerifyingKey {
    /// Validates one JWK and prepares it. `Err` carries the human reason the key is set aside.
    pub fn from_jwk(members: Map<String, Value>) -> Result<VerifyingKey, String> {
        let kty = string_member(&members, "kty")?.ok_or("missing \"kty\"")?;
        let kid = string_member(&members, "kid")?.map(str::to_owned);
        if let Some(use_) = string_member(&members, "use")? {
            if use_ != "sig" {
                return Err(format!("\"use\" is {use_:?}, not \"sig\""));
            }
        }
        if let Some(ops) = members.get("key_ops") {
            let ops = ops.as_array().ok_or("\"key_ops\" is not an array")?;
            if !ops.iter().all(Value::is_string) {
                return Err("\"key_ops\" holds a non-string".into());
            }
            if !ops.iter().any(|op| op == "verify") {
                return Err("\"key_ops\" does not include \"verify\"".into());
            }
        }
        let declared_alg = match string_member(&members, "alg")? {
            None => None,
            Some(name) => Some(
                name.parse::<Algorithm>()
                    .map_err(|_| format!("\"alg\" {name:?} is not a supported signature algorithm"))?,
            ),
        };
        let (kty, curve, verifiers) = match kty {
            "RSA" => (KeyType::Rsa, None, rsa_verifiers(&members, declared_alg)?),
            "EC" => {
                let (curve, v) = ec_verifier(&members, declared_alg)?;
                (KeyType::Ec, Some(curve), v)
            }
            "OKP" => (KeyType::Okp, None, okp_verifier(&members, declared_alg)?),
            "oct" => (KeyType::Oct, None, hmac_verifiers(&members, declared_alg)?),
            other => return Err(format!("unsupported \"kty\" {other:?}")),
        };
        let thumbprint = thumbprint(kty, &members)?;
        Ok(VerifyingKey { index: 0, kid, kty, curve, declared_alg, thumbprint, members, verifiers })
    }

    /// The `kid`, when the key has one.
    pub fn kid(&self) -> Option<&str> {
        self.kid.as_deref()
    }

    /// The key type.
    pub fn kty(&self) -> KeyType {
        self.kty
    }

    /// The curve of an EC key.
    pub fn curve(&self) -> Option<Curve> {
        self.curve
    }

    /// The key's own `alg` member, when present (then it is the only algorithm it verifies).
    pub fn declared_alg(&self) -> Option<Algorithm> {
        self.declared_alg
    }

    /// The `use` member, when present (always `sig` for a usable key).
    pub fn key_use(&self) -> Option<&str> {
        self.members.get("use").and_then(Value::as_str)
    }

    /// The RFC 7638 SHA-256 thumbprint, base64url.
    pub fn thumbprint(&self) -> &str {
        &self.thumbprint
    }

    /// Every member of the JWK as received, unknown ones included.
    pub fn members(&self) -> &Map<String, Value> {
        &self.members
    }

    /// The algorithms this key can verify.
    pub fn algorithms(&self) -> impl Iterator<Item = Algorithm> + '_ {
        self.verifiers.iter().map(|(alg, _)| *alg)
    }

    /// Whether the key may verify `alg`: its family fits and its `alg` member, if any, equals it.
    pub fn fits(&self, alg: Algorithm) -> bool {
        self.verifiers.iter().any(|(a, _)| *a == alg)
    }

    /// Verifies `signature` over `message` with `alg` on the prepared key. `false` when the key
    /// does not fit `alg` or the signature does not verify.
    #[inline]
    pub fn verify(&self, alg: Algorithm, message: &[u8], signature: &[u8]) -> bool {
        match self.verifiers.iter().find(|(a, _)| *a == alg) {
            Some((_, Verifier::PublicKey(key))) => key.verify_sig(message, signature).is_ok(),
            Some((_, Verifier::Hmac(key))) => hmac::verify(key, message, signature).is_ok(),
            None => false,
        }
    }
}

fn string_member<'a>(members: &'a Map<String, Value>, name: &str) -> Result<Option<&'a str>, String> {
    match members.get(name) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(format!("\"{name}\" is not a string")),
    }
}

fn bytes_member(members: &Map<String, Value>, name: &str) -> Result<Vec<u8>, String> {
    let text = string_member(members, name)?.ok_or_else(|| format!("missing \"{name}\""))?;
    base64url::decode(text.as_bytes()).map_err(|e| format!("\"{name}\" is not base64url: {e}"))
}

/// Which of `candidates` the key may verify: all of them, or only its declared `alg`, which must
/// be one of them.
/// The algorithm a JWK implies when it has no `alg`: its declared `alg` if any, else RS256 for
/// RSA, ES256/ES384/ES512 for EC P-256/P-384/P-521, EdDSA for OKP Ed25519; `None` for keys
/// that imply nothing (`oct`, unknown types or curves). The one place this is decided (the
/// testkit's key files and `idm token --key` use it).
pub fn default_algorithm(jwk: &Map<String, Value>) -> Option<Algorithm> {
    let text = |name: &str| jwk.get(name).and_then(Value::as_str);
    if let Some(alg) = text("alg") {
        return alg.parse().ok();
    }
    match (text("kty")?, text("crv")) {
        ("RSA", _) => Some(Algorithm::RS256),
        ("EC", Some("P-256")) => Some(Algorithm::ES256),
        ("EC", Some("P-384")) => Some(Algorithm::ES384),
        ("EC", Some("P-521")) => Some(Algorithm::ES512),
        ("OKP", Some("Ed25519")) => Some(Algorithm::EdDSA),
        _ => None,
    }
}

fn algorithms_for(
    candidates: &[Algorithm],
    declared: Option<Algorithm>,
    kty: &str,
) -> Result<Vec<Algorithm>, String> {
    match declared {
        None => Ok(candidates.to_vec()),
        Some(alg) if candidates.contains(&alg) => Ok(vec![alg]),
        Some(alg) => Err(format!("\"alg\" {alg} does not fit a {kty} key")),
    }
}

fn rsa_verifiers(
    members: &Map<String, Value>,
    declared: Option<Algorithm>,
) -> Result<Vec<(Algorithm, Verifier)>, String> {
    let n = bytes_member(members, "n")?;
    let e = bytes_member(members, "e")?;
    let n = strip_leading_zeros(&n);
    let e = strip_leading_zeros(&e);
    let bits = bit_len(n);
    if bits < MIN_RSA_BITS {
        return Err(format!("RSA modulus is {bits} bits, under the {MIN_RSA_BITS}-bit minimum"));
    }
    if bits > MAX_RSA_BITS {
        return Err(format!("RSA modulus is {bits} bits, over the {MAX_RSA_BITS}-bit maximum"));
    }
    if crate::jose::roca::is_vulnerable(n) {
        return Err("RSA modulus has the ROCA fingerprint (CVE-2017-15361)".into());
    }
    if e.is_empty() || e.len() > 4 || e[e.len() - 1] & 1 == 0 || e == [1] {
        return Err("RSA public exponent is not an odd number between 3 and 2^32".into());
    }
    let components = signature::RsaPublicKeyComponents { n, e };
    let all = [
        Algorithm::RS256,
        Algorithm::RS384,
        Algorithm::RS512,
        Algorithm::PS256,
        Algorithm::PS384,
        Algorithm::PS512,
    ];
    algorithms_for(&all, declared, "RSA")?
        .into_iter()
        .map(|alg| {
            let params: &'static RsaParameters = match alg {
                Algorithm::RS256 => &signature::RSA_PKCS1_2048_8192_SHA256,
                Algorithm::RS384 => &signature::RSA_PKCS1_2048_8192_SHA384,
                Algorithm::RS512 => &signature::RSA_PKCS1_2048_8192_SHA512,
                Algorithm::PS256 => &signature::RSA_PSS_2048_8192_SHA256,
                Algorithm::PS384 => &signature::RSA_PSS_2048_8192_SHA384,
                _ => &signature::RSA_PSS_2048_8192_SHA512,
            };
            components
                .to_parsed_public_key(params)
                .map(|key| (alg, Verifier::PublicKey(key)))
                .map_err(|e| format!("RSA key rejected: {e}"))
        })
        .collect()
}

fn ec_verifier(
    members: &Map<String, Value>,
    declared: Option<Algorithm>,
) -> Result<(Curve, Vec<(Algorithm, Verifier)>), String> {
    let crv = string_member(members, "crv")?.ok_or("missing \"crv\"")?;
    let (curve, alg, verification): (Curve, Algorithm, &'static dyn VerificationAlgorithm) = match crv {
        "P-256" => (Curve::P256, Algorithm::ES256, &signature::ECDSA_P256_SHA256_FIXED),
        "P-384" => (Curve::P384, Algorithm::ES384, &signature::ECDSA_P384_SHA384_FIXED),
        "P-521" => (Curve::P521, Algorithm::ES512, &signature::ECDSA_P521_SHA512_FIXED),
        other => return Err(format!("unsupported EC \"crv\" {other:?}")),
    };
    let algs = algorithms_for(&[alg], declared, crv)?;
    let x = bytes_member(members, "x")?;
    let y = bytes_member(members, "y")?;
    let len = curve.coordinate_len();
    if x.len() != len || y.len() != len {
        return Err(format!("{crv} coordinates must be {len} bytes each"));
    }
    let mut point = Vec::with_capacity(1 + 2 * len);
    point.push(0x04);
    point.extend_from_slice(&x);
    point.extend_from_slice(&y);
    let key =
        ParsedPublicKey::new(verification, &point).map_err(|_| format!("the point is not on curve {crv}"))?;
    debug_assert_eq!(algs, [alg]);
    Ok((curve, vec![(alg, Verifier::PublicKey(key))]))
}

fn okp_verifier(
    members: &Map<String, Value>,
    declared: Option<Algorithm>,
) -> Result<Vec<(Algorithm, Verifier)>, String> {
    let crv = string_member(members, "crv")?.ok_or("missing \"crv\"")?;
    if crv != "Ed25519" {
        return Err(format!("unsupported OKP \"crv\" {crv:?}"));
    }
    let algs = algorithms_for(&[Algorithm::EdDSA, Algorithm::Ed25519], declared, "Ed25519")?;
    let x = bytes_member(members, "x")?;
    let bytes: [u8; 32] = x.as_slice().try_into().map_err(|_| "Ed25519 \"x\" must be 32 bytes")?;
    let point = curve25519_dalek::edwards::CompressedEdwardsY(bytes)
        .decompress()
        .ok_or("\"x\" is not a valid Ed25519 point")?;
    if point.is_small_order() {
        return Err("\"x\" is a small-order Ed25519 point".into());
    }
    algs.into_iter()
        .map(|alg| {
            ParsedPublicKey::new(&signature::ED25519, bytes)
                .map(|key| (alg, Verifier::PublicKey(key)))
                .map_err(|e| format!("Ed25519 key rejected: {e}"))
        })
        .collect()
}

fn hmac_verifiers(
    members: &Map<String, Value>,
    declared: Option<Algorithm>,
) -> Result<Vec<(Algorithm, Verifier)>, String> {
    let k = bytes_member(members, "k")?;
    let algs = algorithms_for(&[Algorithm::HS256, Algorithm::HS384, Algorithm::HS512], declared, "oct")?;
    let usable: Vec<_> = algs.into_iter().filter(|a| k.len() >= a.min_hmac_key_len()).collect();
    if usable.is_empty() {
        return Err(format!("\"k\" is {} bytes, too short for its HMAC algorithm", k.len()));
    }
    Ok(usable
        .into_iter()
        .map(|alg| {
            let hash = match alg {
                Algorithm::HS384 => hmac::HMAC_SHA384,
                Algorithm::HS512 => hmac::HMAC_SHA512,
                _ => hmac::HMAC_SHA256,
            };
            (alg, Verifier::Hmac(Box::new(hmac::Key::new(hash, &k))))
        })
        .collect())
}

fn strip_leading_zeros(bytes: &[u8]) -> &[u8] {
    let start = bytes.iter().position(|b| *b != 0).unwrap_or(bytes.len());
    &bytes[start..]
}

fn bit_len(big_endian: &[u8]) -> usize {
    match big_endian.first() {
        None => 0,
        Some(first) => big_endian.len() * 8 - first.leading_zeros() as usize,
    }
}

/// The RFC 7638 JWK thumbprint (SHA-256, base64url) of a key's required members.
pub fn thumbprint(kty: KeyType, members: &Map<String, Value>) -> Result<String, String> {
    let names: &[&str] = match kty {
        KeyType::Rsa => &["e", "kty", "n"],
        KeyType::Ec => &["crv", "kty", "x", "y"],
        KeyType::Okp => &["crv", "kty", "x"],
        KeyType::Oct => &["k", "kty"],
    };
    let mut canonical = String::from("{");
    for (i, name) in names.iter().enumerate() {
        let value = string_member(members, name)?.ok_or_else(|| format!("missing \"{name}\""))?;
        if i > 0 {
            canonical.push(',');
        }
        canonical.push_str(&Value::from(*name).to_string());
        canonical.push(':');
        canonical.push_str(&Value::from(value).to_string());
    }
    canonical.push('}');
    Ok(base64url::encode(digest::digest(&digest::SHA256, canonical.as_bytes())))
}

#[cfg(test)]
mod tests {
    #[test]
    fn default_algorithm_of_each_key_type() {
        let jwk = |v: serde_json::Value| v.as_object().unwrap().clone();
        let cases = [
            (serde_json::json!({"kty": "RSA"}), Some(Algorithm::RS256)),
            (serde_json::json!({"kty": "RSA", "alg": "PS384"}), Some(Algorithm::PS384)),
            (serde_json::json!({"kty": "EC", "crv": "P-384"}), Some(Algorithm::ES384)),
            (serde_json::json!({"kty": "EC", "crv": "P-521"}), Some(Algorithm::ES512)),
            (serde_json::json!({"kty": "OKP", "crv": "Ed25519"}), Some(Algorithm::EdDSA)),
            (serde_json::json!({"kty": "OKP", "crv": "X25519"}), None),
            (serde_json::json!({"kty": "oct"}), None),
            (serde_json::json!({"crv": "P-256"}), None),
        ];
        for (key, expected) in cases {
            assert_eq!(default_algorithm(&jwk(key.clone())), expected, "{key}");
        }
    }

    use super::*;

    fn jwk(json: &str) -> Map<String, Value> {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn rfc7638_thumbprint_example() {
        // RFC 7638 section 3.1.
        let key = jwk(
            r#"{"kty":"RSA","n":"0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw","e":"AQAB","alg":"RS256","kid":"2011-04-29"}"#,
        );
        let key = VerifyingKey::from_jwk(key).unwrap();
        assert_eq!(key.thumbprint(), "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs");
        assert_eq!(key.algorithms().collect::<Vec<_>>(), [Algorithm::RS256]);
    }

    #[test]
    fn set_aside_reasons() {
        let cases = [
            (r#"{"kty":"RSA","n":"AQAB","e":"AQAB"}"#, "under the 2048-bit"),
            (r#"{"kty":"EC","crv":"P-256","x":"AA","y":"AA"}"#, "must be 32 bytes"),
            (r#"{"kty":"EC","crv":"secp256k1","x":"AA","y":"AA"}"#, "unsupported EC"),
            (r#"{"kty":"OKP","crv":"Ed448","x":"AA"}"#, "unsupported OKP"),
            (
                r#"{"kty":"OKP","crv":"Ed25519","x":"AQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}"#,
                "small-order",
            ),
            (r#"{"kty":"foo"}"#, "unsupported \"kty\""),
            (r#"{"n":"AQAB"}"#, "missing \"kty\""),
            (r#"{"kty":"oct","k":"AAAA"}"#, "too short"),
            (r#"{"kty":"oct","k":"AAAA","use":"enc"}"#, "\"use\" is \"enc\""),
            (r#"{"kty":"oct","k":"AAAA","key_ops":["encrypt"]}"#, "does not include \"verify\""),
            (r#"{"kty":"oct","k":"AAAA","alg":"RSA-OAEP"}"#, "not a supported signature"),
            (r#"{"kty":"oct","k":"AAAA","kid":7}"#, "\"kid\" is not a string"),
        ];
        for (json, reason) in cases {
            let err = VerifyingKey::from_jwk(jwk(json)).unwrap_err();
            assert!(err.contains(reason), "{json}: {err}");
        }
    }

    #[test]
    fn declared_alg_must_fit_family() {
        let p256 = r#"{"kty":"EC","crv":"P-256","alg":"ES384","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}"#;
        assert!(VerifyingKey::from_jwk(jwk(p256)).unwrap_err().contains("does not fit"));
        let ok = p256.replace("ES384", "ES256");
        let key = VerifyingKey::from_jwk(jwk(&ok)).unwrap();
        assert!(key.fits(Algorithm::ES256) && !key.fits(Algorithm::RS256));
        let off_curve = ok.replace("x_FEz", "y_FEz");
        assert!(VerifyingKey::from_jwk(jwk(&off_curve)).unwrap_err().contains("not on curve"));
    }

    #[test]
    fn debug_never_prints_secrets() {
        let key = VerifyingKey::from_jwk(jwk(
            r#"{"kty":"oct","k":"c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3JldA"}"#,
        ))
        .unwrap();
        assert!(!format!("{key:?}").contains("c2VjcmV0"));
    }
}
