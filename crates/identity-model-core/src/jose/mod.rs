//! JOSE: algorithms, JWKs and JWK Sets (RFC 7517/7518/8037), compact JWS verification and
//! signing (RFC 7515), base64url.

pub(crate) mod algorithm;
pub mod base64url;
pub(crate) mod jwk;
pub(crate) mod jws;
pub(crate) mod key_set;
mod roca;
mod rsa_der;
pub(crate) mod signing;
