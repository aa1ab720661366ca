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

mod discovery;
mod dpop;
mod error;
pub mod http;
mod jose;
mod json_object;
mod jwt;
mod oauth;

// Every public item has one path: types at the root, the free functions and constants of a
// subject in a module named for it (the modules below hold nothing that the root also holds).

pub use jose::base64url;

/// Compact JWS verification (RFC 7515) without claims checks; [`Header`] and [`VerifiedJws`]
/// are at the crate root.
pub mod jws {
    pub use crate::jose::jws::{MAX_KIDLESS_CANDIDATES, compact_segments, verify};
}

/// Form-encoded requests to OAuth endpoints; [`FormRequest`], [`Method`] and [`RetryClass`] are
/// at the crate root.
pub mod form_request {
    pub use crate::oauth::form_request::form_encode;
}

/// Token, device-authorization, introspection, revocation and userinfo requests;
/// [`TokenRequest`], [`Grant`], [`TokenExchange`] and [`token_type`] are at the crate root.
pub mod token_request {
    pub use crate::oauth::token_request::{
        DEVICE_CODE_GRANT, TOKEN_EXCHANGE_GRANT, device_authorization_request, token_operation_request,
        userinfo_request,
    };
}

pub use discovery::{
    DiscoveryDocument, DiscoveryPolicy, MetadataKind, OPENID_REQUIRED, discovery_url, media_type,
};
pub use dpop::htu::{MAX_HTU_LEN, normalize_htu};
pub use dpop::key::{DPOP_KEY_ALGORITHMS, DPOP_PROOF_TYP, DpopKey, ProofRequest, access_token_hash};
pub use dpop::nonce::DpopNonces;
pub use dpop::verify::{
    DEFAULT_PROOF_LEEWAY_SECS, DEFAULT_PROOF_MAX_AGE_SECS, DpopRules, MAX_JTI_LEN, MAX_PROOF_LEN, NonceRule,
    VerifiedProof, bound_jkt, check_binding, check_jkt_binding,
};
pub use error::{Error, ErrorKind, Fault};
pub use jose::algorithm::{Algorithm, AlgorithmSet, Curve, KeyFamily};
pub use jose::jwk::{KeyType, MAX_RSA_BITS, MIN_RSA_BITS, VerifyingKey, default_algorithm, thumbprint};
pub use jose::jws::{Header, VerifiedJws};
pub use jose::key_set::{KeySet, KeySetLimits, RejectedKey};
pub use jose::signing::{SigningKey, sha256};
pub use jwt::claims::{Claims, NumericDate, UnixTime};
pub use jwt::id_token::{BACKCHANNEL_LOGOUT_EVENT, IdTokenValidation, left_half_hash, validate_logout_token};
pub use jwt::unverified::UnverifiedToken;
pub use jwt::validation::{DEFAULT_LEEWAY, DEFAULT_MAX_TOKEN_LEN, ValidToken, Validation};
pub use oauth::authorize::{AuthorizationRequest, pushed_authorization_request};
pub use oauth::client_auth::{
    ASSERTION_LIFETIME_SECS, AssertionAudience, Client, ClientAuth, JWT_BEARER_ASSERTION, random_id,
};
pub use oauth::device_flow::{DevicePoller, PollStep, SLOW_DOWN_STEP};
pub use oauth::endpoints::Endpoints;
pub use oauth::form_request::{FormRequest, Method, RetryClass};
pub use oauth::oauth_error::OAuthError;
pub use oauth::pkce::{Pkce, challenge_s256};
pub use oauth::secret::Secret;
pub use oauth::token_request::{Grant, TokenExchange, TokenRequest, token_type};
pub use oauth::token_response::{
    DeviceAuthorization, EndpointResponse, Introspection, MAX_DEVICE_EXPIRES_IN_SECS, MAX_EXPIRES_IN_SECS,
    MAX_INTERVAL_SECS, PushedAuthorization, TokenResponse, UserInfo, revocation_result,
};
