//! axum extractors (feature `axum`) for the token a [`super::BearerLayer`] validated: the
//! claims deserialized into the handler's own type.

use axum::extract::FromRequestParts;
use axum::response::{IntoResponse, Response};
use http::request::Parts;
use http::{HeaderValue, StatusCode, header};
use identity_model_core::ValidToken;
use serde::de::DeserializeOwned;

/// The claims of the request's validated token, as `C`. Refused with 401 when the request
/// carries no validated token (no layer in front, or the layer's optional mode without one),
/// or when the claims do not fit `C`.
#[derive(Debug, Clone)]
pub struct Authenticated<C>(pub C);

/// Like [`Authenticated`], but `None` when no token was validated (the layer's optional mode).
#[derive(Debug, Clone)]
pub struct MaybeAuthenticated<C>(pub Option<C>);

/// Why an extractor refused: 401 with a `Bearer` challenge and a JSON body
/// `{"error": KIND, "message": ...}`.
#[derive(Debug)]
pub struct AuthRejection {
    kind: &'static str,
    message: String,
}

impl IntoResponse for AuthRejection {
    fn into_response(self) -> Response {
        let body = serde_json::json!({"error": self.kind, "message": self.message}).to_string();
        let mut response = (StatusCode::UNAUTHORIZED, body).into_response();
        let challenge = if self.kind == "missing_token" {
            "Bearer".to_owned()
        } else {
            "Bearer error=\"invalid_token\"".to_owned()
        };
        if let Ok(value) = HeaderValue::from_str(&challenge) {
            response.headers_mut().insert(header::WWW_AUTHENTICATE, value);
        }
        response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        response
    }
}

/// The claims of the token the layer validated, as `C`; `None` when there is none.
fn claims_of<C: DeserializeOwned>(parts: &Parts) -> Result<Option<C>, AuthRejection> {
    let Some(valid) = parts.extensions.get::<ValidToken>() else { return Ok(None) };
    serde_json::from_str(valid.claims.raw_json()).map(Some).map_err(|e| AuthRejection {
        kind: "invalid_claim",
        message: format!("the token's claims do not have the shape this route needs: {e}"),
    })
}

impl<S, C> FromRequestParts<S> for Authenticated<C>
where
    S: Send + Sync,
    C: DeserializeOwned + Send,
{
    type Rejection = AuthRejection;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, AuthRejection> {
        claims_of(parts)?.map(Authenticated).ok_or_else(|| AuthRejection {
            kind: "missing_token",
            message: "no validated bearer token".into(),
        })
    }
}

impl<S, C> FromRequestParts<S> for MaybeAuthenticated<C>
where
    S: Send + Sync,
    C: DeserializeOwned + Send,
{
    type Rejection = AuthRejection;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, AuthRejection> {
        claims_of(parts).map(MaybeAuthenticated)
    }
}
