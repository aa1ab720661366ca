//! Error kinds: one stable, machine-readable name for every way a token, key or key set can fail.

use std::borrow::Cow;
use std::error::Error as StdError;
use std::fmt;

use crate::oauth::oauth_error::OAuthError;

/// What went wrong, as a stable machine-readable kind.
///
/// The names returned by [`ErrorKind::as_str`] are a contract: the CLI prints them, metrics are
/// labelled with them, and scripts match on them. They never change meaning.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The token is not a well-formed compact JWS/JWT (parts, base64url, JSON, claim types).
    MalformedToken,
    /// The header names an algorithm this library does not implement.
    UnsupportedAlgorithm,
    /// The algorithm is known but not allowed (`none`, HS* unless asked for, or not in the allow-list).
    AlgorithmNotAllowed,
    /// No key in the key set matches the token's `kid` (or, without `kid`, its algorithm).
    KeyNotFound,
    /// A key was found but cannot be used for this token (set aside when parsed, or wrong type for the algorithm).
    InvalidKey,
    /// The signature does not verify.
    InvalidSignature,
    /// `exp` has passed (now >= exp + leeway).
    TokenExpired,
    /// `nbf` has not been reached (now < nbf - leeway).
    TokenNotYetValid,
    /// `iat` lies in the future beyond the leeway.
    IssuedInFuture,
    /// `iss` is missing or not one of the expected issuers.
    InvalidIssuer,
    /// `aud` is missing or contains none of the expected audiences.
    InvalidAudience,
    /// The header `typ` is not the expected type, or the token is a nested JWT.
    InvalidTokenType,
    /// A required claim is absent.
    MissingClaim,
    /// The header lists a critical extension (`crit`, `b64: false`) that is not understood.
    UnsupportedCriticalHeader,
    /// A claim has a value the caller's rules (or a custom validator) reject.
    InvalidClaim,
    /// A JWK Set document is not valid (not JSON, no `keys` array, over the size or key limits).
    InvalidKeySet,
    /// A metadata document (discovery) is not a JSON object, or a member has the wrong type.
    InvalidDocument,
    /// A metadata document lacks required members (the message names them all).
    MissingFields,
    /// The discovery document's `issuer` is not the issuer that was asked for.
    IssuerMismatch,
    /// A URL or endpoint breaks the discovery policy (HTTPS, authority, private address).
    PolicyViolation,
    /// A `Content-Type` is not one of the accepted media types.
    UnexpectedContentType,
    /// Keys could not be obtained: the provider is unreachable, answered with an error, or the
    /// last good key set is older than the allowed staleness.
    KeysUnavailable,
    /// An API was used where it cannot work (a blocking call inside an async runtime).
    InvalidUsage,
    /// An opaque token that introspection (RFC 7662) says is not active: unknown, expired,
    /// revoked, or not meant for this resource.
    TokenInactive,
    /// A request got no response: connection refused, timeout, TLS failure, body over the limit.
    TransportError,
    /// A response had an error status (the message names it).
    HttpStatus,
    /// The provider answered with an OAuth error (`invalid_grant`, `invalid_client`,
    /// `access_denied`...): [`Error::oauth`] holds it.
    OAuthError,
    /// A success response does not have the shape its protocol requires (a token response
    /// without `access_token`, an introspection response without a boolean `active`...).
    InvalidResponse,
    /// An authorization response (the redirect back) fails its checks: `state` or RFC 9207
    /// `iss` do not match, or it has no `code`.
    InvalidCallback,
    /// A configuration is refused: a builder's settings contradict each other or break a
    /// safety rule, or an environment variable or config file has an unusable value.
    InvalidConfig,
    /// A DPoP proof (RFC 9449) is wrong in itself: not one compact JWS, wrong `typ`, an
    /// algorithm off the list, a `jwk` that is missing or holds private members, a bad
    /// signature, or `htm`, `htu`, `iat`, `jti`, `ath` that do not fit the request.
    InvalidDpopProof,
    /// The DPoP proof's `jti` was seen before for this key (a replay), or the replay store
    /// could not record it (full or unreachable: refused, failing closed).
    DpopReplay,
    /// The DPoP proof is signed by another key than the one the token is bound to
    /// (`cnf.jkt`), or the token is not bound to a key at all.
    DpopKeyMismatch,
    /// The server requires a DPoP nonce, and the proof has none or a stale one: retry with
    /// the `DPoP-Nonce` the answer carries.
    UseDpopNonce,
    /// A DPoP-bound token (`cnf.jkt`) came without a proof, or as a plain Bearer token.
    DpopProofRequired,
    /// The shared replay store (Redis) did not answer within its deadline, could not be
    /// reached, or answered an error: the one-time use cannot be recorded, so the request is
    /// refused (503 with `Retry-After`, exit 3), never let through.
    ReplayStoreUnavailable,
}

impl ErrorKind {
    /// Every kind, in declaration order.
    pub const ALL: [ErrorKind; 36] = [
        ErrorKind::MalformedToken,
        ErrorKind::UnsupportedAlgorithm,
        ErrorKind::AlgorithmNotAllowed,
        ErrorKind::KeyNotFound,
        ErrorKind::InvalidKey,
        ErrorKind::InvalidSignature,
        ErrorKind::TokenExpired,
        ErrorKind::TokenNotYetValid,
        ErrorKind::IssuedInFuture,
        ErrorKind::InvalidIssuer,
        ErrorKind::InvalidAudience,
        ErrorKind::InvalidTokenType,
        ErrorKind::MissingClaim,
        ErrorKind::UnsupportedCriticalHeader,
        ErrorKind::InvalidClaim,
        ErrorKind::InvalidKeySet,
        ErrorKind::InvalidDocument,
        ErrorKind::MissingFields,
        ErrorKind::IssuerMismatch,
        ErrorKind::PolicyViolation,
        ErrorKind::UnexpectedContentType,
        ErrorKind::KeysUnavailable,
        ErrorKind::TokenInactive,
        ErrorKind::InvalidUsage,
        ErrorKind::TransportError,
        ErrorKind::HttpStatus,
        ErrorKind::OAuthError,
        ErrorKind::InvalidResponse,
        ErrorKind::InvalidCallback,
        ErrorKind::InvalidConfig,
        ErrorKind::InvalidDpopProof,
        ErrorKind::DpopReplay,
        ErrorKind::DpopKeyMismatch,
        ErrorKind::UseDpopNonce,
        ErrorKind::DpopProofRequired,
        ErrorKind::ReplayStoreUnavailable,
    ];

    /// The stable snake_case name of this kind (for example `token_expired`).
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::MalformedToken => "malformed_token",
            ErrorKind::UnsupportedAlgorithm => "unsupported_algorithm",
            ErrorKind::AlgorithmNotAllowed => "algorithm_not_allowed",
            ErrorKind::KeyNotFound => "key_not_found",
            ErrorKind::InvalidKey => "invalid_key",
            ErrorKind::InvalidSignature => "invalid_signature",
            ErrorKind::TokenExpired => "token_expired",
            ErrorKind::TokenNotYetValid => "token_not_yet_valid",
            ErrorKind::IssuedInFuture => "issued_in_future",
            ErrorKind::InvalidIssuer => "invalid_issuer",
            ErrorKind::InvalidAudience => "invalid_audience",
            ErrorKind::InvalidTokenType => "invalid_token_type",
            ErrorKind::MissingClaim => "missing_claim",
            ErrorKind::UnsupportedCriticalHeader => "unsupported_critical_header",
            ErrorKind::InvalidClaim => "invalid_claim",
            ErrorKind::InvalidKeySet => "invalid_key_set",
            ErrorKind::InvalidDocument => "invalid_document",
            ErrorKind::MissingFields => "missing_fields",
            ErrorKind::IssuerMismatch => "issuer_mismatch",
            ErrorKind::PolicyViolation => "policy_violation",
            ErrorKind::UnexpectedContentType => "unexpected_content_type",
            ErrorKind::KeysUnavailable => "keys_unavailable",
            ErrorKind::TokenInactive => "token_inactive",
            ErrorKind::InvalidUsage => "invalid_usage",
            ErrorKind::TransportError => "transport_error",
            ErrorKind::HttpStatus => "http_status",
            ErrorKind::OAuthError => "oauth_error",
            ErrorKind::InvalidResponse => "invalid_response",
            ErrorKind::InvalidCallback => "invalid_callback",
            ErrorKind::InvalidConfig => "invalid_config",
            ErrorKind::InvalidDpopProof => "invalid_dpop_proof",
            ErrorKind::DpopReplay => "dpop_replay",
            ErrorKind::DpopKeyMismatch => "dpop_key_mismatch",
            ErrorKind::UseDpopNonce => "use_dpop_nonce",
            ErrorKind::DpopProofRequired => "dpop_proof_required",
            ErrorKind::ReplayStoreUnavailable => "replay_store_unavailable",
        }
    }
}

/// Whose fault an error is. It decides the answer everywhere: the tower layer's and the
/// sidecar's status (401 / 503 / 500), the CLI's exit code (1 / 3 / 2) and the `outcome` of
/// metrics, so that one outage never gets two answers and a client is never told its token is
/// bad when the provider is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Fault {
    /// The token, proof or response that was presented: refuse it (401, exit 1).
    Token,
    /// The provider or the network: the keys or documents could not be obtained or used; try
    /// again later (503 with `Retry-After`, exit 3).
    Provider,
    /// The configuration or the use of the API (500, exit 2).
    Configuration,
    /// A shared store (replay records, rate limits) that did not answer (503, exit 3).
    Store,
}

impl Fault {
    /// Every fault, in declaration order.
    pub const ALL: [Fault; 4] = [Fault::Token, Fault::Provider, Fault::Configuration, Fault::Store];

    /// The stable snake_case name (a metrics label value).
    pub fn as_str(self) -> &'static str {
        match self {
            Fault::Token => "token",
            Fault::Provider => "provider",
            Fault::Configuration => "configuration",
            Fault::Store => "store",
        }
    }
}

impl ErrorKind {
    /// Whose fault an error of this kind is (one `match`: a new kind must be placed here).
    ///
    /// ```
    /// use identity_model_core::{ErrorKind, Fault};
    /// assert_eq!(ErrorKind::TokenExpired.fault(), Fault::Token);
    /// assert_eq!(ErrorKind::InvalidKeySet.fault(), Fault::Provider);
    /// assert_eq!(ErrorKind::InvalidConfig.fault(), Fault::Configuration);
    /// ```
    pub fn fault(self) -> Fault {
        match self {
            ErrorKind::MalformedToken
            | ErrorKind::UnsupportedAlgorithm
            | ErrorKind::AlgorithmNotAllowed
            | ErrorKind::KeyNotFound
            | ErrorKind::InvalidKey
            | ErrorKind::InvalidSignature
            | ErrorKind::TokenExpired
            | ErrorKind::TokenNotYetValid
            | ErrorKind::IssuedInFuture
            | ErrorKind::InvalidIssuer
            | ErrorKind::InvalidAudience
            | ErrorKind::InvalidTokenType
            | ErrorKind::MissingClaim
            | ErrorKind::UnsupportedCriticalHeader
            | ErrorKind::InvalidClaim
            | ErrorKind::InvalidCallback
            | ErrorKind::InvalidDpopProof
            | ErrorKind::DpopReplay
            | ErrorKind::DpopKeyMismatch
            | ErrorKind::UseDpopNonce
            | ErrorKind::DpopProofRequired
            | ErrorKind::TokenInactive => Fault::Token,
            ErrorKind::InvalidKeySet
            | ErrorKind::InvalidDocument
            | ErrorKind::MissingFields
            | ErrorKind::IssuerMismatch
            | ErrorKind::UnexpectedContentType
            | ErrorKind::KeysUnavailable
            | ErrorKind::TransportError
            | ErrorKind::HttpStatus
            | ErrorKind::OAuthError
            | ErrorKind::InvalidResponse => Fault::Provider,
            ErrorKind::PolicyViolation | ErrorKind::InvalidUsage | ErrorKind::InvalidConfig => {
                Fault::Configuration
            }
            ErrorKind::ReplayStoreUnavailable => Fault::Store,
        }
    }

    /// Whether this kind is a DPoP refusal (answered with a `DPoP` challenge).
    pub fn is_dpop(self) -> bool {
        matches!(
            self,
            ErrorKind::InvalidDpopProof
                | ErrorKind::DpopReplay
                | ErrorKind::DpopKeyMismatch
                | ErrorKind::UseDpopNonce
                | ErrorKind::DpopProofRequired
        )
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A failure with a stable [`ErrorKind`], a human message, the claim it concerns (if any) and
/// the underlying cause in [`std::error::Error::source`].
#[derive(Debug)]
pub struct Error {
    kind: ErrorKind,
    message: Cow<'static, str>,
    claim: Option<Cow<'static, str>>,
    oauth: Option<Box<OAuthError>>,
    timeout: bool,
    source: Option<Box<dyn StdError + Send + Sync + 'static>>,
}

impl Error {
    /// A new error of `kind` with a human-readable message.
    pub fn new(kind: ErrorKind, message: impl Into<Cow<'static, str>>) -> Self {
        Error { kind, message: message.into(), claim: None, oauth: None, timeout: false, source: None }
    }

    /// Names the claim (or header member) this error is about.
    pub fn with_claim(mut self, claim: impl Into<Cow<'static, str>>) -> Self {
        self.claim = Some(claim.into());
        self
    }

    /// Keeps `source` as the cause of this error.
    pub fn with_source(mut self, source: impl StdError + Send + Sync + 'static) -> Self {
        self.source = Some(Box::new(source));
        self
    }

    /// An `oauth_error`: the provider's own error, kept whole.
    pub fn from_oauth(error: OAuthError) -> Self {
        Error {
            kind: ErrorKind::OAuthError,
            message: error.to_string().into(),
            claim: None,
            oauth: Some(Box::new(error)),
            timeout: false,
            source: None,
        }
    }

    /// The provider's OAuth error (`error`, `error_description`, `error_uri`, status,
    /// `WWW-Authenticate`), for an `oauth_error`.
    pub fn oauth(&self) -> Option<&OAuthError> {
        self.oauth.as_deref()
    }

    /// A copy for another caller (one failed refresh answering many waiters): kind, message,
    /// claim and OAuth error; the source chain stays with the original.
    pub fn replicate(&self) -> Error {
        Error {
            kind: self.kind,
            message: self.message.clone(),
            claim: self.claim.clone(),
            oauth: self.oauth.clone(),
            timeout: self.timeout,
            source: None,
        }
    }

    /// Marks this error as caused by a timeout.
    pub fn timed_out(mut self) -> Self {
        self.timeout = true;
        self
    }

    /// Whether a timeout caused this error (a request, or a caller's own deadline).
    pub fn is_timeout(&self) -> bool {
        self.timeout
    }

    /// The stable kind.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The human-readable message (without the kind).
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The claim or header member concerned, when there is one.
    pub fn claim(&self) -> Option<&str> {
        self.claim.as_deref()
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind, self.message)
    }
}

impl StdError for Error {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.source.as_deref().map(|s| s as &(dyn StdError + 'static))
    }
}

/// Text from outside (a provider's description, a header member's name) as it may appear in a
/// message or a log line: at most `max_chars` characters (`...` marks a cut), control
/// characters escaped (`\n`, `\u{1b}`), so nobody can forge log lines or flood them.
pub(crate) fn printable(text: &str, max_chars: usize) -> String {
    let mut out = String::with_capacity(text.len().min(max_chars * 2));
    for (i, c) in text.chars().enumerate() {
        if i == max_chars {
            out.push_str("...");
            break;
        }
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

pub(crate) fn malformed(message: impl Into<Cow<'static, str>>) -> Error {
    Error::new(ErrorKind::MalformedToken, message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_snake_case() {
        let mut names: Vec<_> = ErrorKind::ALL.iter().map(|k| k.as_str()).collect();
        assert!(names.iter().all(|n| n.chars().all(|c| c.is_ascii_lowercase() || c == '_')));
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), ErrorKind::ALL.len());
    }

    #[test]
    fn outside_text_is_escaped_and_cut() {
        assert_eq!(printable("a\nb\u{1b}[31m", 100), "a\\nb\\u{1b}[31m");
        assert_eq!(printable(&"x".repeat(10), 4), "xxxx...");
        assert_eq!(printable("é✓", 2), "é✓");
    }

    #[test]
    fn source_chain_is_kept() {
        let cause = serde_json::from_str::<serde_json::Value>("{").unwrap_err();
        let err = malformed("header is not JSON").with_source(cause);
        assert!(StdError::source(&err).is_some());
        assert_eq!(err.to_string(), "malformed_token: header is not JSON");
    }
}
