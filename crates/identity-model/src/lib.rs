//! # identity-model
//!
//! OpenID Connect and OAuth 2.0 for Rust services: the validation core
//! ([`identity_model_core`], re-exported here); [`Authority`], which trusts an issuer through
//! its discovery document and cached, rotating keys; [`TokenClient`], which gets tokens with
//! every grant and client authentication; and [`TokenManager`], which caches them. The
//! [`blocking`] module has the same for code without an async runtime.
//!
//! ```
//! use identity_model::{Algorithm, KeySet, SigningKey, StaticKeyValidator, Validation};
//! use serde_json::json;
//!
//! let key = SigningKey::generate(Algorithm::EdDSA)?;
//! let keys = KeySet::from_jwks([key.verification_jwk().into()]);
//! let validator = StaticKeyValidator::new(keys, Validation::new("https://issuer.example"));
//! let token = key.sign_jwt(None, &json!({"iss": "https://issuer.example", "exp": 4_000_000_000u64}))?;
//! assert!(validator.validate(&token).is_ok());
//! # Ok::<(), identity_model::Error>(())
//! ```

mod authority;
pub mod blocking;
mod circuit;
mod clock;
mod config;
mod issuers;
pub mod retry;
mod static_keys;
mod token_client;
mod token_manager;
pub mod transport;

pub use authority::{Authority, AuthorityBuilder, Stats};
pub use clock::{Clock, FixedClock, SystemClock};
pub use config::{ConfigError, ConfigProblem, HttpConfig};
pub use identity_model_core::*;
pub use issuers::Issuers;
pub use static_keys::StaticKeyValidator;
pub use token_client::{Endpoints, MAX_RESPONSE_BYTES, TokenClient, TokenClientBuilder, TokenClientStats};
pub use token_manager::{TokenManager, TokenManagerConfig, TokenManagerStats};
