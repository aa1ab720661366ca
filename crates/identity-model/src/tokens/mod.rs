//! Getting tokens: the token client (every grant and client authentication) and the token
//! manager (cached client-credentials tokens).

pub(crate) mod client;
pub(crate) mod manager;
