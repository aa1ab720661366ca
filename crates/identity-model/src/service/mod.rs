//! Protect a service (feature `tower`): a [`BearerLayer`] over an [`Authority`] or
//! [`Issuers`] reads `Authorization: Bearer`, validates the token, puts the [`ValidToken`] into
//! the request's extensions, and answers refusals itself: 401 with an RFC 6750
//! `WWW-Authenticate` challenge (no `error` when no token was sent), 400 for a malformed
//! header, 403 `insufficient_scope` for a missing scope, 503 when keys cannot be obtained.
//! With feature `axum`, [`Authenticated`] and [`MaybeAuthenticated`] hand handlers the claims
//! in their own type.
//!
//! ```
//! use identity_model::{Authority, BearerLayer, Validation};
//!
//! let authority = Authority::builder("https://login.example.com")
//!     .rules(Validation::new("https://login.example.com").audience("https://api.example"))
//!     .build()?;
//! let layer = BearerLayer::new(authority).realm("orders").require_all_scopes(["orders:read"]);
//! // router.layer(layer)  (axum), or ServiceBuilder::new().layer(layer).service(svc)  (tower)
//! # let _ = layer;
//! # Ok::<(), identity_model::Error>(())
//! ```

mod challenge;
mod dpop;
#[cfg(feature = "axum")]
mod extract;
mod resource_metadata;

use std::fmt;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::{HeaderMap, HeaderValue, Request, Response, StatusCode, header};
use identity_model_core::{DpopRules, Error, ErrorKind, Fault, UnixTime, ValidToken, check_binding};

#[cfg(feature = "axum")]
pub use extract::{AuthRejection, Authenticated, MaybeAuthenticated};
pub use resource_metadata::{ProtectedResourceMetadata, RESOURCE_METADATA_PATH};

use crate::authority::{Authority, Issuers};
use crate::http::transport::BoxFuture;
use crate::replay::ReplayStore;

#[derive(Debug, Clone)]
enum Validator {
    One(Authority),
    Many(Issuers),
}

impl Validator {
    async fn validate(&self, token: &str) -> Result<ValidToken, Error> {
        match self {
            Validator::One(authority) => authority.validate(token).await,
            Validator::Many(issuers) => issuers.validate(token).await,
        }
    }

    /// The clock of the authority that validated `valid` (for a proof's `iat`).
    fn now_for(&self, valid: &ValidToken) -> UnixTime {
        match self {
            Validator::One(authority) => authority.now(),
            Validator::Many(issuers) => valid
                .claims
                .iss()
                .and_then(|iss| issuers.get(iss))
                .map_or_else(|| issuers.now(), Authority::now),
        }
    }

    /// The token rules' clock leeway, whole seconds (the largest when there are several):
    /// DPoP proofs get the same unless told otherwise.
    fn leeway_secs(&self) -> u32 {
        let leeway = match self {
            Validator::One(authority) => authority.rules().clock_leeway(),
            Validator::Many(issuers) => issuers.clock_leeway(),
        };
        u32::try_from(leeway.as_secs()).unwrap_or(u32::MAX)
    }
}

type Predicate = Arc<dyn Fn(&ValidToken) -> bool + Send + Sync>;

/// Why a request was refused; [`Rejection::response`] is the default answer.
#[derive(Debug)]
#[non_exhaustive]
pub enum Rejection {
    /// No bearer token was sent (401, a challenge without `error`).
    Missing,
    /// The `Authorization` header is not a well-formed bearer credential (400, `invalid_request`).
    BadRequest(String),
    /// The token is not valid (401, `invalid_token`).
    Invalid(Error),
    /// The token lacks a required scope, or the route's own check refused it (403,
    /// `insufficient_scope` with the scopes required).
    InsufficientScope(String),
    /// Keys could not be obtained: the provider is down and nothing usable is cached (503).
    Unavailable(Error),
    /// The validator is misconfigured (500).
    Misconfigured(Error),
    /// A DPoP failure (401 with a `DPoP` challenge naming the kind and the accepted `algs`):
    /// `invalid_dpop_proof`, `dpop_replay`, `dpop_key_mismatch`, `dpop_proof_required`, or
    /// `use_dpop_nonce` with the nonce to retry with (sent as `DPoP-Nonce`).
    Dpop(Box<DpopRefusal>),
}

/// A DPoP refusal's content (see [`Rejection::Dpop`]).
#[derive(Debug)]
pub struct DpopRefusal {
    /// What was wrong.
    pub error: Error,
    /// The accepted proof algorithms, space-separated (the challenge's `algs`).
    pub algs: String,
    /// A fresh nonce, for `use_dpop_nonce` (sent as `DPoP-Nonce`).
    pub nonce: Option<String>,
}

/// `Retry-After` of a 503 answer, in seconds.
const RETRY_AFTER_SECS: &str = "5";

/// What a [`Rejection`] refused, typed ([`Rejection::kind`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RejectionKind {
    /// No bearer token was sent.
    MissingToken,
    /// The `Authorization` header is not a well-formed credential.
    InvalidRequest,
    /// A required scope (or the route's own check) is missing.
    InsufficientScope,
    /// A validation or DPoP error of this kind.
    Error(ErrorKind),
}

impl RejectionKind {
    /// The stable name: the error kind's, or `missing_token`, `invalid_request`,
    /// `insufficient_scope`.
    pub fn as_str(self) -> &'static str {
        match self {
            RejectionKind::MissingToken => "missing_token",
            RejectionKind::InvalidRequest => "invalid_request",
            RejectionKind::InsufficientScope => "insufficient_scope",
            RejectionKind::Error(kind) => kind.as_str(),
        }
    }

    /// Whose fault it is: the request's own refusals are the token's (the caller's).
    pub fn fault(self) -> Fault {
        match self {
            RejectionKind::Error(kind) => kind.fault(),
            _ => Fault::Token,
        }
    }
}

impl std::fmt::Display for RejectionKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Rejection {
    /// The HTTP status of the default answer.
    pub fn status(&self) -> StatusCode {
        match self {
            Rejection::Missing | Rejection::Invalid(_) | Rejection::Dpop(_) => StatusCode::UNAUTHORIZED,
            Rejection::BadRequest(_) => StatusCode::BAD_REQUEST,
            Rejection::InsufficientScope(_) => StatusCode::FORBIDDEN,
            Rejection::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Rejection::Misconfigured(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// What was refused, typed: the error kind, or one of the layer's own refusals.
    /// [`RejectionKind::as_str`] is the stable name for logs, metrics and JSON bodies.
    pub fn kind(&self) -> RejectionKind {
        match self {
            Rejection::Missing => RejectionKind::MissingToken,
            Rejection::BadRequest(_) => RejectionKind::InvalidRequest,
            Rejection::InsufficientScope(_) => RejectionKind::InsufficientScope,
            Rejection::Invalid(e) | Rejection::Unavailable(e) | Rejection::Misconfigured(e) => {
                RejectionKind::Error(e.kind())
            }
            Rejection::Dpop(refusal) => RejectionKind::Error(refusal.error.kind()),
        }
    }

    /// The rejection for a validation error, by whose fault it is ([`ErrorKind::fault`]): the
    /// token's is 401, the provider's or a shared store's is 503, the configuration's is 500.
    /// DPoP kinds become [`Rejection::Invalid`] here; the layer answers them with a `DPoP`
    /// challenge.
    pub fn from_error(error: Error) -> Rejection {
        match error.kind().fault() {
            Fault::Token => Rejection::Invalid(error),
            Fault::Provider | Fault::Store => Rejection::Unavailable(error),
            Fault::Configuration => Rejection::Misconfigured(error),
            _ => Rejection::Misconfigured(error),
        }
    }

    /// A human message (no token in it).
    pub fn message(&self) -> String {
        match self {
            Rejection::Missing => "no bearer token".into(),
            Rejection::BadRequest(why) => why.clone(),
            Rejection::InsufficientScope(scopes) => format!("the token lacks a required scope ({scopes})"),
            Rejection::Invalid(e) | Rejection::Unavailable(e) | Rejection::Misconfigured(e) => {
                e.message().into()
            }
            Rejection::Dpop(refusal) => refusal.error.message().into(),
        }
    }

    /// The `WWW-Authenticate` challenge for `realm`, when the answer carries one.
    pub fn challenge(&self, realm: &str) -> Option<String> {
        self.challenge_with(realm, None)
    }

    /// The challenge for `realm` with `resource_metadata` (RFC 9728 section 5.1: the URL of
    /// the resource's metadata, [`ProtectedResourceMetadata::url`]).
    pub fn challenge_with(&self, realm: &str, resource_metadata: Option<&str>) -> Option<String> {
        let bearer = |error, description, scope| {
            Some(challenge::bearer(realm, error, description, scope, resource_metadata))
        };
        match self {
            Rejection::Missing => bearer(None, None, None),
            Rejection::BadRequest(why) => bearer(Some("invalid_request"), Some(why), None),
            Rejection::Invalid(e) => bearer(Some("invalid_token"), Some(e.message()), None),
            Rejection::InsufficientScope(scopes) => {
                let scope = (!scopes.is_empty()).then_some(scopes.as_str());
                bearer(Some("insufficient_scope"), None, scope)
            }
            Rejection::Dpop(refusal) => {
                let DpopRefusal { error, algs, .. } = refusal.as_ref();
                Some(challenge::dpop(realm, error.kind().as_str(), error.message(), algs, resource_metadata))
            }
            Rejection::Unavailable(_) | Rejection::Misconfigured(_) => None,
        }
    }

    /// The default answer: the status, the challenge, an `X-Auth-Error` header with the kind,
    /// `Retry-After` on a 503.
    pub fn response(&self, realm: &str) -> Response<()> {
        self.response_with(realm, None)
    }

    /// [`Rejection::response`] with `resource_metadata` in the challenge (RFC 9728).
    pub fn response_with(&self, realm: &str, resource_metadata: Option<&str>) -> Response<()> {
        let mut response = Response::new(());
        *response.status_mut() = self.status();
        if let Some(value) =
            self.challenge_with(realm, resource_metadata).and_then(|c| HeaderValue::from_str(&c).ok())
        {
            response.headers_mut().insert(header::WWW_AUTHENTICATE, value);
        }
        response.headers_mut().insert("x-auth-error", HeaderValue::from_static(self.kind().as_str()));
        if let Rejection::Unavailable(_) = self {
            // The provider's (or a shared store's) fault: the same request may pass later.
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static(RETRY_AFTER_SECS));
        }
        if let Rejection::Dpop(refusal) = self {
            if let Some(value) = refusal.nonce.as_deref().and_then(|n| HeaderValue::from_str(n).ok()) {
                response.headers_mut().insert("dpop-nonce", value);
            }
        }
        response
    }
}

type Respond = Arc<dyn Fn(&Rejection, &str) -> Response<()> + Send + Sync>;

/// Tokens the layer does not validate as JWTs itself: opaque tokens judged by RFC 7662
/// introspection, say ([`BearerLayer::opaque_tokens`]). What it answers goes through the rest
/// of the layer as any validated token does: the DPoP binding (`cnf.jkt`, with the proof's
/// `ath` over the token as presented), scopes, the predicate.
pub trait OpaqueTokens: Send + Sync + fmt::Debug {
    /// Whether `token` is judged here rather than as a JWT.
    fn takes(&self, token: &str) -> bool;

    /// The token's claims as a validated token, or why it is refused (`token_inactive` for an
    /// inactive one; a provider-fault kind when it cannot be asked).
    fn validate<'a>(&'a self, token: &'a str) -> BoxFuture<'a, Result<ValidToken, Error>>;
}

/// The default answer: [`Rejection::response_with`] and the layer's resource metadata URL.
fn default_response(rejection: &Rejection, realm: &str, resource_metadata: Option<&str>) -> Response<()> {
    rejection.response_with(realm, resource_metadata)
}

/// A tower layer that admits only requests with a valid bearer token (see the module docs).
#[derive(Clone)]
pub struct BearerLayer {
    validator: Validator,
    realm: Arc<str>,
    all_scopes: Arc<[String]>,
    any_scopes: Arc<[String]>,
    predicate: Option<Predicate>,
    optional: bool,
    /// A replacement for the default answer, when given.
    respond: Option<Respond>,
    resource_metadata: Option<Arc<str>>,
    opaque: Option<Arc<dyn OpaqueTokens>>,
    dpop: dpop::DpopSettings,
}

impl fmt::Debug for BearerLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BearerLayer")
            .field("validator", &self.validator)
            .field("realm", &self.realm)
            .field("all_scopes", &self.all_scopes)
            .field("any_scopes", &self.any_scopes)
            .field("optional", &self.optional)
            .finish_non_exhaustive()
    }
}

impl BearerLayer {
    /// Protects with one pinned issuer.
    pub fn new(authority: Authority) -> Self {
        BearerLayer::with(Validator::One(authority))
    }

    /// Protects with several pinned issuers (the token's `iss` chooses).
    pub fn issuers(issuers: Issuers) -> Self {
        BearerLayer::with(Validator::Many(issuers))
    }

    fn with(validator: Validator) -> Self {
        let dpop = dpop::DpopSettings {
            rules: Arc::new(DpopRules::new().inherit_leeway_secs(validator.leeway_secs())),
            ..dpop::DpopSettings::default()
        };
        BearerLayer {
            validator,
            realm: Arc::from("api"),
            all_scopes: Arc::from(Vec::new()),
            any_scopes: Arc::from(Vec::new()),
            predicate: None,
            optional: false,
            respond: None,
            resource_metadata: None,
            opaque: None,
            dpop,
        }
    }

    /// How DPoP proofs are judged (default [`DpopRules::new`]: asymmetric algorithms, 300 s).
    /// Unless the rules set their own leeway, proofs get the token rules' clock leeway.
    pub fn dpop_rules(mut self, rules: DpopRules) -> Self {
        self.dpop.rules = Arc::new(rules.inherit_leeway_secs(self.validator.leeway_secs()));
        self
    }

    /// Where proofs' `jti`s are remembered (default: a [`crate::MemoryReplayStore`] of a
    /// million entries shared by this layer's clones). Several instances share one store.
    pub fn dpop_replay_store(mut self, store: Arc<dyn ReplayStore>) -> Self {
        self.dpop.replay = store;
        self
    }

    /// The public origin (`https://api.example`) that proofs' `htu` name: the request's path
    /// is appended to it. Without it the origin is `https://` and the `Host` header; behind a
    /// proxy that rewrites either, set it.
    pub fn dpop_public_origin(mut self, origin: impl Into<String>) -> Self {
        self.dpop.origin = Some(Arc::from(origin.into().trim_end_matches('/')));
        self
    }

    /// The public origin set with [`BearerLayer::dpop_public_origin`].
    pub fn public_origin(&self) -> Option<&str> {
        self.dpop.origin.as_deref()
    }

    /// The `realm` of the challenges (default `api`).
    pub fn realm(mut self, realm: impl Into<String>) -> Self {
        self.realm = Arc::from(realm.into());
        self
    }

    /// Every one of these scopes is required (`scope` claim, space-separated, or `scp` array).
    pub fn require_all_scopes<I: IntoIterator<Item = S>, S: Into<String>>(mut self, scopes: I) -> Self {
        self.all_scopes = scopes.into_iter().map(Into::into).collect();
        self
    }

    /// At least one of these scopes is required.
    pub fn require_any_scope<I: IntoIterator<Item = S>, S: Into<String>>(mut self, scopes: I) -> Self {
        self.any_scopes = scopes.into_iter().map(Into::into).collect();
        self
    }

    /// A check of the route's own on a valid token; `false` answers 403.
    pub fn require(mut self, predicate: impl Fn(&ValidToken) -> bool + Send + Sync + 'static) -> Self {
        self.predicate = Some(Arc::new(predicate));
        self
    }

    /// Lets requests without any bearer token through (without a [`ValidToken`] extension);
    /// a token that is sent must still be valid.
    pub fn optional(mut self) -> Self {
        self.optional = true;
        self
    }

    /// Replaces the answer to a refusal (status and headers; the body is empty).
    pub fn respond_with(
        mut self,
        respond: impl Fn(&Rejection, &str) -> Response<()> + Send + Sync + 'static,
    ) -> Self {
        self.respond = Some(Arc::new(respond));
        self
    }

    /// Names the resource's metadata document (RFC 9728) in every challenge:
    /// `resource_metadata="URL"` ([`ProtectedResourceMetadata::url`]; serve the document with
    /// [`ProtectedResourceMetadata::response`] outside this layer). A replacement answer
    /// ([`BearerLayer::respond_with`]) adds it itself ([`Rejection::response_with`]).
    pub fn resource_metadata(mut self, url: impl Into<String>) -> Self {
        self.resource_metadata = Some(Arc::from(url.into()));
        self
    }

    /// Judges the tokens `opaque` takes (opaque tokens, through introspection) with it instead
    /// of as JWTs; everything after validation is the same.
    pub fn opaque_tokens(mut self, opaque: Arc<dyn OpaqueTokens>) -> Self {
        self.opaque = Some(opaque);
        self
    }

    /// The URL the challenges name, when set.
    pub fn resource_metadata_url(&self) -> Option<&str> {
        self.resource_metadata.as_deref()
    }

    /// Decides a request from its headers alone: the valid token (or `None` in optional mode
    /// without one), or why it is refused. DPoP requests need the method and URI: use
    /// [`BearerLayer::authorize_request`]; here they are refused (`invalid_dpop_proof`).
    pub async fn authorize(&self, headers: &HeaderMap) -> Result<Option<ValidToken>, Rejection> {
        self.authorize_request(None, headers).await
    }

    /// Decides a request: `target` is its method and full URL (`https://host/path?query`) for
    /// DPoP's `htm` and `htu`. `Authorization: DPoP` needs exactly one `DPoP` proof header;
    /// a token bound to a key (`cnf.jkt`) sent as `Bearer` is refused.
    pub async fn authorize_request(
        &self,
        target: Option<(&http::Method, &str)>,
        headers: &HeaderMap,
    ) -> Result<Option<ValidToken>, Rejection> {
        let Some((scheme, token)) = credential(headers)? else {
            return if self.optional { Ok(None) } else { Err(Rejection::Missing) };
        };
        let valid = match &self.opaque {
            Some(opaque) if opaque.takes(token) => opaque.validate(token).await,
            _ => self.validator.validate(token).await,
        }
        .map_err(Rejection::from_error)?;
        let now = self.validator.now_for(&valid);
        match scheme {
            Scheme::Bearer => check_binding(&valid.claims, None).map_err(|e| self.dpop.reject(e, now))?,
            Scheme::Dpop => self.dpop.check(target, headers, token, &valid, now).await?,
        }
        let granted = valid.claims.scopes();
        let has = |scope: &String| granted.iter().any(|g| g == scope);
        if !self.all_scopes.iter().all(has) {
            return Err(Rejection::InsufficientScope(self.all_scopes.join(" ")));
        }
        if !self.any_scopes.is_empty() && !self.any_scopes.iter().any(has) {
            return Err(Rejection::InsufficientScope(self.any_scopes.join(" ")));
        }
        if self.predicate.as_ref().is_some_and(|check| !check(&valid)) {
            return Err(Rejection::InsufficientScope(String::new()));
        }
        Ok(Some(valid))
    }
}

/// The scheme a token came with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scheme {
    Bearer,
    Dpop,
}

/// The token of `Authorization` (RFC 6750 section 2.1, RFC 9449 section 7.1) and its scheme:
/// `None` without the header or with another scheme; more than one header, or a malformed
/// credential, is a bad request.
fn credential(headers: &HeaderMap) -> Result<Option<(Scheme, &str)>, Rejection> {
    let mut values = headers.get_all(header::AUTHORIZATION).iter();
    let Some(value) = values.next() else { return Ok(None) };
    if values.next().is_some() {
        return Err(Rejection::BadRequest("more than one Authorization header".into()));
    }
    let value =
        value.to_str().map_err(|_| Rejection::BadRequest("the Authorization header is not ASCII".into()))?;
    let scheme_of = |name: &str| {
        if name.eq_ignore_ascii_case("bearer") {
            Some(Scheme::Bearer)
        } else if name.eq_ignore_ascii_case("dpop") {
            Some(Scheme::Dpop)
        } else {
            None
        }
    };
    let Some((scheme, credential)) = value.split_once(' ') else {
        return if scheme_of(value).is_some() {
            Err(Rejection::BadRequest("the credential is empty".into()))
        } else {
            Ok(None)
        };
    };
    let Some(scheme) = scheme_of(scheme) else { return Ok(None) };
    let b64token = |c: u8| c.is_ascii_alphanumeric() || b"-._~+/".contains(&c);
    let trimmed = credential.trim_end_matches('=');
    if trimmed.is_empty() || !trimmed.bytes().all(b64token) {
        return Err(Rejection::BadRequest("the credential is not a b64token".into()));
    }
    Ok(Some((scheme, credential)))
}

impl<S> tower::Layer<S> for BearerLayer {
    type Service = BearerService<S>;

    fn layer(&self, inner: S) -> BearerService<S> {
        BearerService { inner, layer: self.clone() }
    }
}

/// The service [`BearerLayer`] makes.
#[derive(Debug, Clone)]
pub struct BearerService<S> {
    inner: S,
    layer: BearerLayer,
}

impl<S, ReqBody, ResBody> tower::Service<Request<ReqBody>> for BearerService<S>
where
    S: tower::Service<Request<ReqBody>, Response = Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    ReqBody: Send + 'static,
    ResBody: Default + Send + 'static,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<Response<ResBody>, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<ReqBody>) -> Self::Future {
        // The clone that was made ready is the one that serves this request.
        let ready = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, ready);
        let layer = self.layer.clone();
        Box::pin(async move {
            // The URL is only needed to judge a proof: no allocation for plain bearer requests.
            let url = request
                .headers()
                .contains_key("dpop")
                .then(|| layer.dpop.url_of(request.uri(), request.headers()))
                .flatten();
            let target = url.as_deref().map(|url| (request.method(), url));
            match layer.authorize_request(target, request.headers()).await {
                Ok(Some(valid)) => {
                    request.extensions_mut().insert(valid);
                }
                Ok(None) => {}
                Err(rejection) => {
                    tracing::info!(
                        kind = rejection.kind().as_str(),
                        status = rejection.status().as_u16(),
                        "request refused"
                    );
                    let answer = match &layer.respond {
                        Some(respond) => respond(&rejection, &layer.realm),
                        None => {
                            default_response(&rejection, &layer.realm, layer.resource_metadata.as_deref())
                        }
                    };
                    let (parts, ()) = answer.into_parts();
                    return Ok(Response::from_parts(parts, ResBody::default()));
                }
            }
            inner.call(request).await
        })
    }
}
