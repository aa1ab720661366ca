//! JWTs: claims, validation rules (RFC 7519, 8725, 9068), the unverified split token, ID and
//! logout tokens (OpenID Connect Core, Back-Channel Logout).

pub(crate) mod claims;
pub(crate) mod id_token;
pub(crate) mod unverified;
pub(crate) mod validation;
