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
#[cfg(feature = "axum")]
mod extract;

use std::fmt;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::{HeaderMap, HeaderValue, Request, Response, StatusCode, header};
use identity_model_core::{Error, ErrorKind, ValidToken};

#[cfg(feature = "axum")]
pub use extract::{AuthRejection, Authenticated, MaybeAuthenticated};

use crate::authority::{Authority, Issuers};
use crate::http::transport::BoxFuture;

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
}

impl Rejection {
    /// The HTTP status of the default answer.
    pub fn status(&self) -> StatusCode {
        match self {
            Rejection::Missing | Rejection::Invalid(_) => StatusCode::UNAUTHORIZED,
            Rejection::BadRequest(_) => StatusCode::BAD_REQUEST,
            Rejection::InsufficientScope(_) => StatusCode::FORBIDDEN,
            Rejection::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Rejection::Misconfigured(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// A stable name for logs and metrics: the error kind, or `missing_token`,
    /// `invalid_request`, `insufficient_scope`.
    pub fn kind(&self) -> &'static str {
        match self {
            Rejection::Missing => "missing_token",
            Rejection::BadRequest(_) => "invalid_request",
            Rejection::InsufficientScope(_) => "insufficient_scope",
            Rejection::Invalid(e) | Rejection::Unavailable(e) | Rejection::Misconfigured(e) => {
                e.kind().as_str()
            }
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
        }
    }

    /// The `WWW-Authenticate` challenge for `realm`, when the answer carries one.
    pub fn challenge(&self, realm: &str) -> Option<String> {
        match self {
            Rejection::Missing => Some(challenge::bearer(realm, None, None, None)),
            Rejection::BadRequest(why) => {
                Some(challenge::bearer(realm, Some("invalid_request"), Some(why), None))
            }
            Rejection::Invalid(e) => {
                Some(challenge::bearer(realm, Some("invalid_token"), Some(e.message()), None))
            }
            Rejection::InsufficientScope(scopes) => {
                let scope = (!scopes.is_empty()).then_some(scopes.as_str());
                Some(challenge::bearer(realm, Some("insufficient_scope"), None, scope))
            }
            Rejection::Unavailable(_) | Rejection::Misconfigured(_) => None,
        }
    }

    /// The default answer: the status, the challenge, an `X-Auth-Error` header with the kind.
    pub fn response(&self, realm: &str) -> Response<()> {
        let mut response = Response::new(());
        *response.status_mut() = self.status();
        if let Some(value) = self.challenge(realm).and_then(|c| HeaderValue::from_str(&c).ok()) {
            response.headers_mut().insert(header::WWW_AUTHENTICATE, value);
        }
        response.headers_mut().insert("x-auth-error", HeaderValue::from_static(self.kind()));
        response
    }
}

type Respond = Arc<dyn Fn(&Rejection, &str) -> Response<()> + Send + Sync>;

/// A tower layer that admits only requests with a valid bearer token (see the module docs).
#[derive(Clone)]
pub struct BearerLayer {
    validator: Validator,
    realm: Arc<str>,
    all_scopes: Arc<[String]>,
    any_scopes: Arc<[String]>,
    predicate: Option<Predicate>,
    optional: bool,
    respond: Respond,
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
        BearerLayer {
            validator,
            realm: Arc::from("api"),
            all_scopes: Arc::from(Vec::new()),
            any_scopes: Arc::from(Vec::new()),
            predicate: None,
            optional: false,
            respond: Arc::new(|rejection, realm| rejection.response(realm)),
        }
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
        self.respond = Arc::new(respond);
        self
    }

    /// Decides a request from its headers: the valid token (or `None` in optional mode
    /// without one), or why it is refused.
    pub async fn authorize(&self, headers: &HeaderMap) -> Result<Option<ValidToken>, Rejection> {
        let Some(token) = bearer_token(headers)? else {
            return if self.optional { Ok(None) } else { Err(Rejection::Missing) };
        };
        let valid = self.validator.validate(token).await.map_err(|e| match e.kind() {
            ErrorKind::KeysUnavailable | ErrorKind::TransportError | ErrorKind::HttpStatus => {
                Rejection::Unavailable(e)
            }
            ErrorKind::InvalidConfig | ErrorKind::InvalidUsage | ErrorKind::PolicyViolation => {
                Rejection::Misconfigured(e)
            }
            _ => Rejection::Invalid(e),
        })?;
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

/// The bearer token of `Authorization` (RFC 6750 section 2.1): `None` without the header or
/// with another scheme; more than one header, or a malformed credential, is a bad request.
fn bearer_token(headers: &HeaderMap) -> Result<Option<&str>, Rejection> {
    let mut values = headers.get_all(header::AUTHORIZATION).iter();
    let Some(value) = values.next() else { return Ok(None) };
    if values.next().is_some() {
        return Err(Rejection::BadRequest("more than one Authorization header".into()));
    }
    let value =
        value.to_str().map_err(|_| Rejection::BadRequest("the Authorization header is not ASCII".into()))?;
    let Some((scheme, credential)) = value.split_once(' ') else {
        return if value.eq_ignore_ascii_case("bearer") {
            Err(Rejection::BadRequest("the bearer credential is empty".into()))
        } else {
            Ok(None)
        };
    };
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Ok(None);
    }
    let b64token = |c: u8| c.is_ascii_alphanumeric() || b"-._~+/".contains(&c);
    let trimmed = credential.trim_end_matches('=');
    if trimmed.is_empty() || !trimmed.bytes().all(b64token) {
        return Err(Rejection::BadRequest("the bearer credential is not a b64token".into()));
    }
    Ok(Some(credential))
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
            match layer.authorize(request.headers()).await {
                Ok(Some(valid)) => {
                    request.extensions_mut().insert(valid);
                }
                Ok(None) => {}
                Err(rejection) => {
                    tracing::info!(
                        kind = rejection.kind(),
                        status = rejection.status().as_u16(),
                        "request refused"
                    );
                    let (parts, ()) = (layer.respond)(&rejection, &layer.realm).into_parts();
                    return Ok(Response::from_parts(parts, ResBody::default()));
                }
            }
            inner.call(request).await
        })
    }
}
