//! JWS compact serialization (RFC 7515 section 7.1): parsing, header rules and verification on
//! prepared keys. Only the compact form: exactly three base64url parts.
//!
//! The `jku`, `x5u`, `jwk`, `x5c` and `x5t` header members are never used to find or fetch a
//! key: keys come only from the caller's [`KeySet`].

use std::fmt;
use std::sync::OnceLock;

use serde::de::{self, MapAccess, Visitor};
use serde_json::{Map, Value};

use crate::error::{Error, ErrorKind, malformed};
use crate::jose::algorithm::{Algorithm, AlgorithmSet};
use crate::jose::base64url;
use crate::jose::key_set::KeySet;
use crate::json_object::{self, Key, Scalar, SeenKeys, Text};

/// Most keys a token without `kid` is tried against (keys that fit its `alg`).
pub const MAX_KIDLESS_CANDIDATES: usize = 4;

/// Longest signature accepted, in base64url characters (an 8192-bit RSA signature is 1366).
const MAX_SIGNATURE_B64: usize = 1368;

/// A JOSE header, checked: `alg` is a supported algorithm, no critical extension is present.
#[derive(Debug, Clone)]
pub struct Header {
    alg: Algorithm,
    kid: Option<Text>,
    typ: Option<Text>,
    cty: Option<Text>,
    raw: String,
    members: OnceLock<Map<String, Value>>,
}

impl Header {
    /// The signature algorithm.
    pub fn alg(&self) -> Algorithm {
        self.alg
    }

    /// The key id, when present.
    pub fn kid(&self) -> Option<&str> {
        self.kid.as_ref().map(|t| t.get(&self.raw))
    }

    /// The `typ` member, when present.
    pub fn typ(&self) -> Option<&str> {
        self.typ.as_ref().map(|t| t.get(&self.raw))
    }

    /// The `cty` member, when present.
    pub fn cty(&self) -> Option<&str> {
        self.cty.as_ref().map(|t| t.get(&self.raw))
    }

    /// The header JSON exactly as signed.
    pub fn raw_json(&self) -> &str {
        &self.raw
    }

    /// Every header member as received (parsed on first use).
    pub fn members(&self) -> &Map<String, Value> {
        self.members.get_or_init(|| {
            crate::json_object::parse(self.raw.as_bytes(), false).map(|o| o.members).unwrap_or_default()
        })
    }

    /// Parses and checks a decoded header.
    pub(crate) fn parse(json: Vec<u8>) -> Result<Header, Error> {
        let raw = String::from_utf8(json).map_err(|e| malformed("header is not UTF-8").with_source(e))?;
        let fields = crate::json_object::parse_with(&raw, HeaderVisitor)
            .map_err(|e| malformed("header is not a JSON object without duplicate members").with_source(e))?;
        let alg = match fields.alg {
            Some(Scalar::Str(name)) => name.parse::<Algorithm>()?,
            Some(_) => return Err(malformed("header \"alg\" is not a string").with_claim("alg")),
            None => return Err(malformed("header has no \"alg\"").with_claim("alg")),
        };
        if let Some(crit) = fields.crit {
            let names = crit
                .as_array()
                .filter(|a| !a.is_empty() && a.iter().all(|n| n.as_str().is_some_and(|s| !s.is_empty())))
                .ok_or_else(|| {
                    malformed("header \"crit\" is not a non-empty array of names").with_claim("crit")
                })?;
            let shown: Vec<_> = names
                .iter()
                .filter_map(Value::as_str)
                .take(5)
                .map(|n| crate::error::printable(n, 40))
                .collect();
            return Err(Error::new(
                ErrorKind::UnsupportedCriticalHeader,
                format!("critical header extensions are not understood: {}", shown.join(", ")),
            )
            .with_claim("crit"));
        }
        match fields.b64 {
            None | Some(Scalar::Bool(true)) => {}
            Some(Scalar::Bool(false)) => {
                return Err(Error::new(
                    ErrorKind::UnsupportedCriticalHeader,
                    "unencoded payloads (\"b64\": false, RFC 7797) are not supported",
                )
                .with_claim("b64"));
            }
            Some(_) => return Err(malformed("header \"b64\" is not a boolean").with_claim("b64")),
        }
        let kid = json_object::optional_text(fields.kid, &raw, "header", "kid")?;
        let typ = json_object::optional_text(fields.typ, &raw, "header", "typ")?;
        let cty = json_object::optional_text(fields.cty, &raw, "header", "cty")?;
        Ok(Header { alg, kid, typ, cty, raw, members: OnceLock::new() })
    }
}

/// The registered header members, read in one pass; other members are skipped (but a
/// duplicate of any member is an error).
struct HeaderFields<'de> {
    alg: Option<Scalar<'de>>,
    kid: Option<Scalar<'de>>,
    typ: Option<Scalar<'de>>,
    cty: Option<Scalar<'de>>,
    b64: Option<Scalar<'de>>,
    crit: Option<Value>,
}

struct HeaderVisitor;

impl<'de> Visitor<'de> for HeaderVisitor {
    type Value = HeaderFields<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JOSE header object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut fields = HeaderFields { alg: None, kid: None, typ: None, cty: None, b64: None, crit: None };
        let mut seen = SeenKeys::new();
        while let Some(Key(name)) = map.next_key::<Key<'de>>()? {
            if !seen.insert(&name) {
                return Err(de::Error::custom(format_args!(
                    "duplicate member {}",
                    json_object::shown(&name)
                )));
            }
            match name.as_ref() {
                "alg" => fields.alg = Some(map.next_value()?),
                "kid" => fields.kid = Some(map.next_value()?),
                "typ" => fields.typ = Some(map.next_value()?),
                "cty" => fields.cty = Some(map.next_value()?),
                "b64" => fields.b64 = Some(map.next_value()?),
                "crit" => fields.crit = Some(map.next_value::<json_object::StrictValue>()?.0),
                _ => {
                    map.next_value::<json_object::CheckedValue>()?;
                }
            }
        }
        Ok(fields)
    }
}

/// The three parts of a compact JWS, still encoded.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Compact<'a> {
    pub(crate) header: &'a str,
    pub(crate) payload: &'a str,
    pub(crate) signature: &'a str,
    /// `header.payload`: the bytes the signature covers.
    pub(crate) signing_input: &'a str,
}

impl<'a> Compact<'a> {
    pub(crate) fn split(token: &'a str) -> Result<Compact<'a>, Error> {
        let mut parts = token.splitn(4, '.');
        let (Some(header), Some(payload), Some(signature), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            let dots = token.bytes().filter(|b| *b == b'.').count();
            return Err(malformed(if dots == 4 {
                "token has 5 parts: encrypted tokens (JWE) are not supported".to_string()
            } else {
                format!("token has {} parts, a compact JWS has 3", dots + 1)
            }));
        };
        if header.is_empty() {
            return Err(malformed("token has an empty header"));
        }
        let signing_input = &token[..header.len() + 1 + payload.len()];
        Ok(Compact { header, payload, signature, signing_input })
    }

    pub(crate) fn header(&self) -> Result<Header, Error> {
        let json = base64url::decode(self.header.as_bytes())
            .map_err(|e| malformed("header is not strict base64url").with_source(e))?;
        Header::parse(json)
    }
}

/// A compact JWS whose signature verified: its header and decoded payload.
#[derive(Debug, Clone)]
pub struct VerifiedJws {
    /// The checked header.
    pub header: Header,
    /// The payload bytes.
    pub payload: Vec<u8>,
}

/// Verifies a compact JWS against `keys`, accepting only `allowed` algorithms. Does not look at
/// the payload beyond decoding it: use [`crate::Validation`] for JWTs.
pub fn verify(token: &str, keys: &KeySet, allowed: AlgorithmSet) -> Result<VerifiedJws, Error> {
    let compact = Compact::split(token)?;
    let header = compact.header()?;
    verify_signature(&compact, &header, keys, allowed)?;
    let payload = base64url::decode(compact.payload.as_bytes())
        .map_err(|e| malformed("payload is not strict base64url").with_source(e))?;
    Ok(VerifiedJws { header, payload })
}

/// Checks `alg` against `allowed`, finds the key(s) and verifies the signature.
pub(crate) fn verify_signature(
    compact: &Compact<'_>,
    header: &Header,
    keys: &KeySet,
    allowed: AlgorithmSet,
) -> Result<(), Error> {
    let alg = header.alg;
    if !allowed.contains(alg) {
        let why = if alg.is_symmetric() && !allowed.has_symmetric() {
            "HMAC algorithms are accepted only when the caller asks for them"
        } else {
            "it is not in the allowed algorithms"
        };
        return Err(Error::new(ErrorKind::AlgorithmNotAllowed, format!("alg {alg} is not allowed: {why}"))
            .with_claim("alg"));
    }
    let mut fitting = keys.matching(header.kid()).filter(|key| key.fits(alg));
    let Some(first) = fitting.next() else {
        return Err(keys.explain_miss(alg, header.kid()));
    };
    let second = fitting.next();
    if header.kid().is_none() && second.is_some() {
        // Without a kid every fitting key may be tried: bounded, so a forged kid-less token
        // cannot cost a hundred signature checks.
        let fit = keys.matching(None).filter(|key| key.fits(alg)).take(MAX_KIDLESS_CANDIDATES + 1).count();
        if fit > MAX_KIDLESS_CANDIDATES {
            return Err(Error::new(
                ErrorKind::InvalidKey,
                format!(
                    "the token has no kid and more than {MAX_KIDLESS_CANDIDATES} keys fit {alg}: tokens \
                     must name their key when the set holds that many"
                ),
            ));
        }
    }
    if let Some(kid) =
        header.kid().filter(|kid| second.is_some() || keys.shares_kid_with_set_aside(kid, first))
    {
        let shown: String = kid.chars().take(64).collect();
        return Err(Error::new(
            ErrorKind::InvalidKey,
            format!("kid {shown:?} is ambiguous: several keys under it fit {alg}"),
        ));
    }
    if compact.signature.len() > MAX_SIGNATURE_B64 {
        return Err(Error::new(ErrorKind::InvalidSignature, "signature is longer than any supported key's"));
    }
    let mut buffer = [0u8; 1032];
    let len = base64url::decode_slice(compact.signature.as_bytes(), &mut buffer).map_err(|e| {
        Error::new(ErrorKind::InvalidSignature, "signature is not strict base64url").with_source(e)
    })?;
    let signature = &buffer[..len];
    let message = compact.signing_input.as_bytes();
    let verified = first.verify(alg, message, signature)
        || second.into_iter().chain(fitting).any(|key| key.verify(alg, message, signature));
    if verified {
        Ok(())
    } else {
        Err(Error::new(ErrorKind::InvalidSignature, format!("{alg} signature does not verify")))
    }
}

/// The base64url segments of a compact serialization, NOT verified or decoded: three for a
/// JWS (header, payload, signature, checked as [`crate::UnverifiedToken`] splits them), five
/// for a JWE (only counted: this library does not decrypt). For tools that show tokens.
pub fn compact_segments(token: &str) -> Result<Vec<&str>, Error> {
    match Compact::split(token) {
        Ok(compact) => Ok(vec![compact.header, compact.payload, compact.signature]),
        Err(_) if token.bytes().filter(|b| *b == b'.').count() == 4 => Ok(token.split('.').collect()),
        Err(e) => Err(e),
    }
}
