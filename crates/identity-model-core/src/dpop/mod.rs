//! DPoP (RFC 9449): client keys and proofs, proof verification and token binding on the
//! resource-server side, server nonces. Sans-IO: the replay store and the HTTP wiring live in
//! `identity-model`.

pub(crate) mod htu;
pub(crate) mod key;
pub(crate) mod nonce;
pub(crate) mod verify;
