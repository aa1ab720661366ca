//! # identity-model-core
//!
//! The sans-IO core of identity-model: JOSE keys (RFC 7517/7518/8037), compact JWS
//! verification and signing (RFC 7515), and JWT validation (RFC 7519, 8725, 9068). It takes
//! bytes and `now`, and never does IO, reads a clock or reads the environment.
//!
//! ```
//! use identity_model_core::{Algorithm, KeySet, SigningKey, UnixTime, Validation};
//! use serde_json::json;
//!
//! let key = SigningKey::generate(Algorithm::ES256)?;
//! let jwks = json!({ "keys": [key.verification_jwk()] });
//! let keys = KeySet::from_json(jwks.to_string().as_bytes())?;
//!
//! let token = key.sign_jwt(Some("at+jwt"), &json!({
//!     "iss": "https://issuer.example", "aud": "api", "sub": "alice", "exp": 2_000_000_000,
//! }))?;
//! let rules = Validation::new("https://issuer.example").audience("api").token_type("at+jwt");
//! let valid = rules.validate(&token, &keys, UnixTime::from_secs(1_700_000_000))?;
//! assert_eq!(valid.claims.sub(), Some("alice"));
//!
//! let err = rules.validate(&token, &keys, UnixTime::from_secs(2_100_000_000)).unwrap_err();
//! assert_eq!(err.kind().as_str(), "token_expired");
//! # Ok::<(), identity_model_core::Error>(())
//! ```
//!
//! Security defaults: `none` is never accepted; HS* only when listed and an `oct` key is
//! supplied; `jku`, `x5u`, `jwk` and `x5c` headers are never used; keys are validated once when
//! the set is parsed, and unusable ones are set aside with their reason.

mod algorithm;
mod authorize;
pub mod base64url;
mod claims;
mod client_auth;
mod device_flow;
pub mod discovery;
mod endpoints;
mod error;
pub mod form_request;
pub mod http;
mod id_token;
mod json_object;
mod jwk;
pub mod jws;
mod key_set;
pub mod media_type;
mod oauth_error;
mod pkce;
mod roca;
mod secret;
mod signing;
pub mod token_request;
mod token_response;
mod unverified;
mod validation;

pub use algorithm::{Algorithm, AlgorithmSet, Curve, KeyFamily};
pub use authorize::AuthorizationRequest;
pub use claims::{Claims, NumericDate, UnixTime};
pub use client_auth::{
    ASSERTION_LIFETIME_SECS, AssertionAudience, Client, ClientAuth, JWT_BEARER_ASSERTION, random_id,
};
pub use device_flow::{DevicePoller, PollStep, SLOW_DOWN_STEP};
pub use discovery::{DiscoveryDocument, DiscoveryPolicy, MetadataKind, discovery_url};
pub use endpoints::Endpoints;
pub use error::{Error, ErrorKind};
pub use form_request::{FormRequest, Method, RetryClass};
pub use id_token::{BACKCHANNEL_LOGOUT_EVENT, IdTokenValidation, left_half_hash, validate_logout_token};
pub use jwk::{KeyType, MAX_RSA_BITS, MIN_RSA_BITS, VerifyingKey, default_algorithm, thumbprint};
pub use jws::{Header, VerifiedJws};
pub use key_set::{KeySet, KeySetLimits, RejectedKey};
pub use oauth_error::OAuthError;
pub use pkce::{Pkce, challenge_s256};
pub use secret::Secret;
pub use signing::{SigningKey, sha256};
pub use token_request::{Grant, TokenExchange, TokenRequest, token_type};
pub use token_response::{
    DeviceAuthorization, EndpointResponse, Introspection, PushedAuthorization, TokenResponse, UserInfo,
    revocation_result,
};
pub use unverified::UnverifiedToken;
pub use validation::{DEFAULT_LEEWAY, DEFAULT_MAX_TOKEN_LEN, ValidToken, Validation};
