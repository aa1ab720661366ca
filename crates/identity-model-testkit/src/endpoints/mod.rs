//! The HTTP endpoints and the response shapes they share.

pub(crate) mod authorize;
pub(crate) mod device;
pub(crate) mod introspection;
pub(crate) mod metadata;
pub(crate) mod token;
pub(crate) mod userinfo;

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

/// An OAuth error response (RFC 6749 section 5.2).
#[derive(Debug, Clone)]
pub(crate) struct OAuthError {
    pub(crate) status: StatusCode,
    pub(crate) error: &'static str,
    pub(crate) description: String,
    pub(crate) challenge: Option<&'static str>,
    pub(crate) headers: Vec<(&'static str, String)>,
}

impl OAuthError {
    pub(crate) fn new(status: StatusCode, error: &'static str, description: impl Into<String>) -> Self {
        OAuthError { status, error, description: description.into(), challenge: None, headers: Vec::new() }
    }

    pub(crate) fn invalid_request(description: impl Into<String>) -> Self {
        OAuthError::new(StatusCode::BAD_REQUEST, "invalid_request", description)
    }

    pub(crate) fn invalid_client(description: impl Into<String>) -> Self {
        OAuthError::new(StatusCode::UNAUTHORIZED, "invalid_client", description)
    }

    pub(crate) fn invalid_grant(description: impl Into<String>) -> Self {
        OAuthError::new(StatusCode::BAD_REQUEST, "invalid_grant", description)
    }

    pub(crate) fn with_header(mut self, name: &'static str, value: String) -> Self {
        self.headers.push((name, value));
        self
    }

    pub(crate) fn with_basic_challenge(mut self) -> Self {
        if self.status == StatusCode::UNAUTHORIZED {
            self.challenge = Some("Basic realm=\"identity-model-testkit\"");
        }
        self
    }
}

impl IntoResponse for OAuthError {
    fn into_response(self) -> Response {
        let body = json!({"error": self.error, "error_description": self.description});
        let mut response = (self.status, no_store(), axum::Json(body)).into_response();
        if let Some(challenge) = self.challenge {
            response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static(challenge));
        }
        for (name, value) in self.headers {
            if let Ok(value) = HeaderValue::from_str(&value) {
                response.headers_mut().insert(name, value);
            }
        }
        response
    }
}

/// `Cache-Control: no-store`, for every response that carries tokens.
pub(crate) fn no_store() -> [(header::HeaderName, &'static str); 2] {
    [(header::CACHE_CONTROL, "no-store"), (header::PRAGMA, "no-cache")]
}

/// A JSON response that must not be cached.
pub(crate) fn json_no_store(value: Value) -> Response {
    (StatusCode::OK, no_store(), axum::Json(value)).into_response()
}

/// Form (or query) parameters. A repeated parameter appears repeatedly.
pub(crate) fn form(bytes: &[u8]) -> Vec<(String, String)> {
    form_urlencoded::parse(bytes).into_owned().collect()
}

/// The single value of `name`: `Ok(None)` when absent, an error when repeated (RFC 6749
/// section 3.2: parameters must not be included more than once).
pub(crate) fn single<'a>(params: &'a [(String, String)], name: &str) -> Result<Option<&'a str>, OAuthError> {
    let mut values = params.iter().filter(|(n, _)| n == name).map(|(_, v)| v.as_str());
    let first = values.next();
    if values.next().is_some() {
        return Err(OAuthError::invalid_request(format!("{name} is repeated")));
    }
    Ok(first.filter(|v| !v.is_empty()))
}

/// `Ok` value of a required parameter.
pub(crate) fn required<'a>(params: &'a [(String, String)], name: &str) -> Result<&'a str, OAuthError> {
    single(params, name)?.ok_or_else(|| OAuthError::invalid_request(format!("{name} is required")))
}

pub(crate) fn authorization(headers: &HeaderMap) -> Option<&str> {
    headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok())
}

/// Every value of a repeatable parameter.
pub(crate) fn all<'a>(params: &'a [(String, String)], name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
    params.iter().filter(move |(n, _)| n == name).map(|(_, v)| v.as_str())
}
