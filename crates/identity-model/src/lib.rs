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
//! let rules = Validation::new("https://issuer.example").audience("https://api.example");
//! let validator = StaticKeyValidator::new(keys, rules)?;
//! let token = key.sign_jwt(None, &json!({
//!     "iss": "https://issuer.example", "aud": "https://api.example", "exp": 4_000_000_000u64,
//! }))?;
//! assert!(validator.validate(&token).is_ok());
//! # Ok::<(), identity_model::Error>(())
//! ```

mod authority;
pub mod blocking;
mod clock;
mod config;
mod flight;
mod http;
#[cfg(feature = "redis")]
mod redis;
mod replay;
mod runtime;
#[cfg(feature = "tower")]
mod service;
mod static_keys;
mod telemetry;
mod tokens;

#[cfg(feature = "redis")]
pub use self::redis::{
    Admission, DEFAULT_REDIS_DEADLINE, DEFAULT_REDIS_PREFIX, RedisClient, RedisClientBuilder,
    RedisRateLimiter, RedisReplayStore, RedisReplayStoreBuilder, StoreStatus,
};
pub use authority::{
    Authority, AuthorityBuilder, Issuers, KeySetDocument, KeyStatus, KeysFrom, Stats, StripedCounter,
    TokenCacheConfig, TokenCacheStats,
};
pub use clock::{Clock, FixedClock, SystemClock};
pub use config::{CacheConfig, CircuitConfig, ConfigError, ConfigProblem, HttpConfig, Settings};
pub use http::transport;
pub use http::{Backoff, RetryDecision, jitter_unit};
pub use identity_model_core::http::target::{
    PATH_READINGS, PathReading, RequestTarget, TargetError, canonical_path, single_reading,
};
pub use identity_model_core::{
    ASSERTION_LIFETIME_SECS, Algorithm, AlgorithmSet, AssertionAudience, AuthorizationRequest,
    BACKCHANNEL_LOGOUT_EVENT, Claims, Client, ClientAuth, Curve, DEFAULT_LEEWAY, DEFAULT_MAX_TOKEN_LEN,
    DEFAULT_PROOF_LEEWAY_SECS, DEFAULT_PROOF_MAX_AGE_SECS, DPOP_KEY_ALGORITHMS, DPOP_PROOF_TYP,
    DeviceAuthorization, DevicePoller, DiscoveryDocument, DiscoveryPolicy, DpopKey, DpopNonces, DpopRules,
    EndpointResponse, Endpoints, Error, ErrorKind, Fault, FormRequest, Grant, Header, IdTokenValidation,
    Introspection, JWT_BEARER_ASSERTION, KeyFamily, KeySet, KeySetLimits, KeyType,
    MAX_DEVICE_EXPIRES_IN_SECS, MAX_EXPIRES_IN_SECS, MAX_INTERVAL_SECS, MAX_RSA_BITS, MIN_RSA_BITS,
    MetadataKind, Method, NonceRule, NumericDate, OAuthError, Pkce, PollStep, ProofRequest,
    PushedAuthorization, RejectedKey, RetryClass, SLOW_DOWN_STEP, Secret, SigningKey, TokenExchange,
    TokenRequest, TokenResponse, UnixTime, UnverifiedToken, UserInfo, ValidToken, Validation, VerifiedJws,
    VerifiedProof, VerifyingKey, access_token_hash, base64url, bound_jkt, challenge_s256, check_binding,
    check_jkt_binding, default_algorithm, discovery_url, jws, left_half_hash, normalize_htu, random_id,
    revocation_result, sha256, thumbprint, token_type, validate_logout_token,
};
pub use replay::{
    MemoryReplayStore, ReplayFuture, ReplayStore, logout_replay_key, record_logout, record_proof,
};
pub use runtime::new_runtime;
#[cfg(feature = "axum")]
pub use service::{AuthRejection, Authenticated, MaybeAuthenticated};
#[cfg(feature = "tower")]
pub use service::{
    BearerLayer, BearerService, DpopRefusal, OpaqueTokens, ProtectedResourceMetadata, RESOURCE_METADATA_PATH,
    Rejection, RejectionKind,
};
pub use static_keys::StaticKeyValidator;
pub use tokens::client::{MAX_RESPONSE_BYTES, TokenClient, TokenClientBuilder, TokenClientStats};
pub use tokens::manager::{MAX_TOKEN_SLOTS, TokenManager, TokenManagerConfig, TokenManagerStats};
