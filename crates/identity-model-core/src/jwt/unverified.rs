//! A compact JWT split and its header checked, once per validation, before any key is chosen:
//! the unknown-`kid` path, the choice among several issuers and the final validation all use
//! the same parse.

use crate::error::{Error, malformed};
use crate::jose::base64url;
use crate::jose::jws::{Compact, Header};
use crate::jwt::claims::Claims;

/// A compact JWT, split and with its header parsed and checked, NOT verified. Its `kid` and
/// (once decoded) `iss` may be used to choose keys or an issuer, never to trust it.
#[derive(Debug, Clone)]
pub struct UnverifiedToken<'a> {
    pub(crate) compact: Compact<'a>,
    pub(crate) header: Header,
    /// Decoded only when asked for before verification (boxed: the usual path never fills it,
    /// and a small token moves cheaply).
    pub(crate) claims: Option<Box<Claims>>,
}

impl<'a> UnverifiedToken<'a> {
    /// Splits `token` (exactly three parts, at most `max_len` bytes) and parses its header.
    #[inline]
    pub fn parse(token: &'a str, max_len: usize) -> Result<UnverifiedToken<'a>, Error> {
        if token.len() > max_len {
            return Err(malformed(format!("token is {} bytes, over the {max_len}-byte limit", token.len())));
        }
        let compact = Compact::split(token)?;
        let header = compact.header()?;
        Ok(UnverifiedToken { compact, header, claims: None })
    }

    /// The token's length in bytes.
    pub fn len(&self) -> usize {
        self.compact.signing_input.len() + 1 + self.compact.signature.len()
    }

    /// Whether the token is empty (never: parsing refuses empty headers).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The checked header.
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// The header's `kid`, unverified.
    pub fn kid(&self) -> Option<&str> {
        self.header.kid()
    }

    /// The claims, decoded (once) but NOT verified: only for choosing an issuer.
    pub fn unverified_claims(&mut self) -> Result<&Claims, Error> {
        let claims = match self.claims.take() {
            Some(claims) => claims,
            None => Box::new(decode_claims(&self.compact)?),
        };
        Ok(self.claims.insert(claims))
    }
}

pub(crate) fn decode_claims(compact: &Compact<'_>) -> Result<Claims, Error> {
    let payload = base64url::decode(compact.payload.as_bytes())
        .map_err(|e| malformed("payload is not strict base64url").with_source(e))?;
    Claims::from_json(payload)
}
