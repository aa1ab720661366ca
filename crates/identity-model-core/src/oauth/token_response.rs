//! Responses from the token endpoint and its neighbours, read into typed values: token
//! responses (RFC 6749 section 5.1, RFC 8693 section 2.2), device authorization (RFC 8628),
//! PAR (RFC 9126), introspection (RFC 7662), revocation (RFC 7009) and userinfo (OpenID
//! Connect Core section 5.3). Errors: `oauth_error` (the provider's error), `http_status`
//! (an error status without one), `unexpected_content_type`, `invalid_response`.

use std::fmt;

use serde_json::{Map, Value};

use crate::discovery::media_type;
use crate::error::{Error, ErrorKind};
use crate::oauth::oauth_error::OAuthError;
use crate::oauth::secret::Secret;

/// What the IO layer received.
#[derive(Debug, Clone, Copy)]
pub struct EndpointResponse<'a> {
    /// HTTP status.
    pub status: u16,
    /// `Content-Type`.
    pub content_type: Option<&'a str>,
    /// `WWW-Authenticate`.
    pub www_authenticate: Option<&'a str>,
    /// The body.
    pub body: &'a [u8],
}

impl EndpointResponse<'_> {
    /// The error of a non-2xx response: the provider's OAuth error, else `http_status`.
    pub fn error(&self) -> Error {
        match OAuthError::from_response(self.status, self.body, self.www_authenticate) {
            Ok(oauth) => Error::from_oauth(oauth),
            Err(_) => {
                Error::new(ErrorKind::HttpStatus, format!("the endpoint answered HTTP {}", self.status))
            }
        }
    }

    /// The JSON object of a 2xx response.
    pub fn json_object(&self) -> Result<Map<String, Value>, Error> {
        if !(200..300).contains(&self.status) {
            return Err(self.error());
        }
        media_type::check(self.content_type, media_type::JSON)?;
        crate::json_object::parse_members(self.body).map_err(|e| {
            invalid("the response body is not a JSON object without duplicate members").with_source(e)
        })
    }
}

fn invalid(message: impl Into<String>) -> Error {
    Error::new(ErrorKind::InvalidResponse, message.into())
}

fn text(members: &Map<String, Value>, name: &'static str) -> Result<Option<String>, Error> {
    match members.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(invalid(format!("\"{name}\" is not a string")).with_claim(name)),
    }
}

fn required_text(members: &Map<String, Value>, name: &'static str) -> Result<String, Error> {
    text(members, name)?
        .filter(|s| !s.is_empty())
        .ok_or_else(|| invalid(format!("the response has no \"{name}\"")).with_claim(name))
}

/// A non-negative integer, also accepted as a string of digits (some providers quote it).
/// Longest `expires_in` believed for a token or a pushed request: one year.
pub const MAX_EXPIRES_IN_SECS: u64 = 365 * 86_400;
/// Longest device code lifetime believed: one day.
pub const MAX_DEVICE_EXPIRES_IN_SECS: u64 = 86_400;
/// Longest device flow polling interval: five minutes.
pub const MAX_INTERVAL_SECS: u64 = 300;

/// A number of seconds from a provider: any JSON number or string of digits is read
/// (negatives as 0, fractions rounded down, beyond `u64` saturated) and clamped to `max`, so
/// no provider number can overflow time arithmetic. Anything else is `invalid_response`.
fn seconds(members: &Map<String, Value>, name: &'static str, max: u64) -> Result<Option<u64>, Error> {
    let value = match members.get(name) {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Number(n)) => match (n.as_u64(), n.as_f64()) {
            (Some(whole), _) => whole,
            (None, Some(f)) if f > 0.0 => f as u64, // saturating; NaN is not a JSON number
            _ => 0,
        },
        Some(Value::String(s)) if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) => {
            s.parse::<u64>().unwrap_or(u64::MAX)
        }
        Some(_) => return Err(invalid(format!("\"{name}\" is not a number of seconds")).with_claim(name)),
    };
    Ok(Some(value.min(max)))
}

/// A successful token response. `Debug` redacts the tokens; [`TokenResponse::json`] is the
/// provider's object as received.
#[derive(Clone)]
pub struct TokenResponse {
    /// `access_token`.
    pub access_token: Secret,
    /// `token_type` (`Bearer`, `DPoP`, `N_A`...).
    pub token_type: String,
    /// `expires_in`, seconds, at most [`MAX_EXPIRES_IN_SECS`].
    pub expires_in: Option<u64>,
    /// `refresh_token`.
    pub refresh_token: Option<Secret>,
    /// `scope` granted.
    pub scope: Option<String>,
    /// `id_token`.
    pub id_token: Option<Secret>,
    /// `issued_token_type` (token exchange).
    pub issued_token_type: Option<String>,
    json: Map<String, Value>,
}

impl fmt::Debug for TokenResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenResponse")
            .field("access_token", &self.access_token)
            .field("token_type", &self.token_type)
            .field("expires_in", &self.expires_in)
            .field("refresh_token", &self.refresh_token.as_ref().map(|_| "[redacted]"))
            .field("scope", &self.scope)
            .field("id_token", &self.id_token.as_ref().map(|_| "[redacted]"))
            .field("issued_token_type", &self.issued_token_type)
            .finish_non_exhaustive()
    }
}

impl TokenResponse {
    /// Reads a token endpoint response (any grant).
    pub fn from_response(response: EndpointResponse<'_>) -> Result<TokenResponse, Error> {
        let json = response.json_object()?;
        let token_type = required_text(&json, "token_type")?;
        Ok(TokenResponse {
            access_token: required_text(&json, "access_token")?.into(),
            token_type,
            expires_in: seconds(&json, "expires_in", MAX_EXPIRES_IN_SECS)?,
            refresh_token: text(&json, "refresh_token")?.map(Secret::from),
            scope: text(&json, "scope")?,
            id_token: text(&json, "id_token")?.map(Secret::from),
            issued_token_type: text(&json, "issued_token_type")?,
            json,
        })
    }

    /// The response object as the provider sent it (tokens included: handle with care).
    pub fn json(&self) -> &Map<String, Value> {
        &self.json
    }

    /// A member of the response (extensions such as `refresh_expires_in`).
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.json.get(name)
    }
}

/// A device authorization response (RFC 8628 section 3.2).
#[derive(Debug, Clone)]
pub struct DeviceAuthorization {
    /// `device_code` (secret).
    pub device_code: Secret,
    /// `user_code`, for the user to type.
    pub user_code: String,
    /// `verification_uri`.
    pub verification_uri: String,
    /// `verification_uri_complete`.
    pub verification_uri_complete: Option<String>,
    /// `expires_in`, seconds.
    pub expires_in: u64,
    /// `interval`, seconds (5 when absent), at most [`MAX_INTERVAL_SECS`].
    pub interval: u64,
}

impl DeviceAuthorization {
    /// Reads a device authorization response.
    pub fn from_response(response: EndpointResponse<'_>) -> Result<DeviceAuthorization, Error> {
        let json = response.json_object()?;
        let verification_uri = match text(&json, "verification_uri")? {
            Some(uri) => uri,
            // Google's pre-RFC spelling.
            None => required_text(&json, "verification_url")?,
        };
        Ok(DeviceAuthorization {
            device_code: required_text(&json, "device_code")?.into(),
            user_code: required_text(&json, "user_code")?,
            verification_uri,
            verification_uri_complete: text(&json, "verification_uri_complete")?,
            expires_in: seconds(&json, "expires_in", MAX_DEVICE_EXPIRES_IN_SECS)?
                .ok_or_else(|| invalid("the response has no \"expires_in\"").with_claim("expires_in"))?,
            interval: seconds(&json, "interval", MAX_INTERVAL_SECS)?.unwrap_or(5),
        })
    }
}

/// A pushed authorization response (RFC 9126 section 2.2).
#[derive(Debug, Clone)]
pub struct PushedAuthorization {
    /// `request_uri`, for the authorization URL.
    pub request_uri: String,
    /// `expires_in`, seconds.
    pub expires_in: u64,
}

impl PushedAuthorization {
    /// Reads a PAR response (201 Created; any 2xx accepted).
    pub fn from_response(response: EndpointResponse<'_>) -> Result<PushedAuthorization, Error> {
        let json = response.json_object()?;
        Ok(PushedAuthorization {
            request_uri: required_text(&json, "request_uri")?,
            expires_in: seconds(&json, "expires_in", MAX_EXPIRES_IN_SECS)?
                .ok_or_else(|| invalid("the response has no \"expires_in\"").with_claim("expires_in"))?,
        })
    }
}

/// An introspection response (RFC 7662 section 2.2). Only `active` is required; the rest is
/// read on demand, unknown members included.
#[derive(Debug, Clone)]
pub struct Introspection {
    /// `active`.
    pub active: bool,
    json: Map<String, Value>,
}

impl Introspection {
    /// Reads an introspection response.
    pub fn from_response(response: EndpointResponse<'_>) -> Result<Introspection, Error> {
        let json = response.json_object()?;
        let active = json
            .get("active")
            .and_then(Value::as_bool)
            .ok_or_else(|| invalid("the response has no boolean \"active\"").with_claim("active"))?;
        Ok(Introspection { active, json })
    }

    /// A string member (`scope`, `client_id`, `username`, `token_type`, `sub`, `iss`, `jti`).
    pub fn text(&self, name: &str) -> Option<&str> {
        self.json.get(name).and_then(Value::as_str)
    }

    /// A time member (`exp`, `iat`, `nbf`), seconds since the epoch.
    pub fn time(&self, name: &str) -> Option<i64> {
        self.json.get(name).and_then(Value::as_i64)
    }

    /// `aud`, one string or an array.
    pub fn audiences(&self) -> Vec<&str> {
        match self.json.get("aud") {
            Some(Value::String(one)) => vec![one.as_str()],
            Some(Value::Array(many)) => many.iter().filter_map(Value::as_str).collect(),
            _ => Vec::new(),
        }
    }

    /// Scopes (`scope` split on spaces).
    pub fn scopes(&self) -> Vec<&str> {
        self.text("scope").map_or_else(Vec::new, |s| s.split(' ').filter(|s| !s.is_empty()).collect())
    }

    /// Every member as received.
    pub fn json(&self) -> &Map<String, Value> {
        &self.json
    }
}

/// Reads a revocation response: any 2xx is success, whatever the body (RFC 7009 section 2.2).
pub fn revocation_result(response: EndpointResponse<'_>) -> Result<(), Error> {
    if (200..300).contains(&response.status) { Ok(()) } else { Err(response.error()) }
}

/// A userinfo response (OpenID Connect Core section 5.3.2): claims with a `sub`.
#[derive(Debug, Clone)]
pub struct UserInfo {
    json: Map<String, Value>,
}

impl UserInfo {
    /// Reads a userinfo response. With `expected_subject` (the ID token's `sub`), a different
    /// `sub` is `invalid_claim` (section 5.3.2: the response must not be used then). A signed
    /// (`application/jwt`) response is `unexpected_content_type`.
    pub fn from_response(
        response: EndpointResponse<'_>,
        expected_subject: Option<&str>,
    ) -> Result<UserInfo, Error> {
        let json = response.json_object()?;
        let sub = required_text(&json, "sub")?;
        if let Some(expected) = expected_subject {
            if sub != expected {
                return Err(Error::new(
                    ErrorKind::InvalidClaim,
                    "the userinfo sub is not the ID token's sub (OpenID Connect Core 5.3.2)",
                )
                .with_claim("sub"));
            }
        }
        Ok(UserInfo { json })
    }

    /// `sub`.
    pub fn sub(&self) -> &str {
        self.json.get("sub").and_then(Value::as_str).unwrap_or_default()
    }

    /// A string claim (`name`, `email`...).
    pub fn text(&self, name: &str) -> Option<&str> {
        self.json.get(name).and_then(Value::as_str)
    }

    /// Any claim, custom ones included.
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.json.get(name)
    }

    /// Every claim.
    pub fn json(&self) -> &Map<String, Value> {
        &self.json
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(body: &str) -> EndpointResponse<'_> {
        EndpointResponse {
            status: 200,
            content_type: Some("application/json; charset=utf-8"),
            www_authenticate: None,
            body: body.as_bytes(),
        }
    }

    #[test]
    fn token_responses_are_typed_and_redacted() {
        let r = TokenResponse::from_response(ok(
            r#"{"access_token":"AT","token_type":"Bearer","expires_in":"3600","refresh_token":"RT","x":1}"#,
        ))
        .unwrap();
        assert_eq!(
            (r.access_token.expose(), r.expires_in, r.get("x")),
            ("AT", Some(3600), Some(&Value::from(1)))
        );
        let debug = format!("{r:?}");
        assert!(!debug.contains("AT") && !debug.contains("RT"), "{debug}");
        for (body, claim) in [
            (r#"{"token_type":"Bearer"}"#, "access_token"),
            (r#"{"access_token":"a"}"#, "token_type"),
            (r#"{"access_token":5,"token_type":"Bearer"}"#, "access_token"),
            (r#"{"access_token":"a","token_type":"Bearer","expires_in":"soon"}"#, "expires_in"),
        ] {
            let e = TokenResponse::from_response(ok(body)).unwrap_err();
            assert_eq!((e.kind(), e.claim()), (ErrorKind::InvalidResponse, Some(claim)), "{body}");
        }
        let negative = ok(r#"{"access_token":"a","token_type":"Bearer","expires_in":-1}"#);
        assert_eq!(TokenResponse::from_response(negative).unwrap().expires_in, Some(0), "already expired");
        assert_eq!(TokenResponse::from_response(ok("[]")).unwrap_err().kind(), ErrorKind::InvalidResponse);
        let html = EndpointResponse { content_type: Some("text/html"), ..ok("{}") };
        assert_eq!(TokenResponse::from_response(html).unwrap_err().kind(), ErrorKind::UnexpectedContentType);
    }

    #[test]
    fn errors_keep_the_provider_error() {
        let body = r#"{"error":"invalid_client","error_description":"nope"}"#;
        let e = TokenResponse::from_response(EndpointResponse { status: 401, ..ok(body) }).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::OAuthError);
        let oauth = e.oauth().unwrap();
        assert_eq!((oauth.error.as_str(), oauth.status), ("invalid_client", 401));
        let e = TokenResponse::from_response(EndpointResponse { status: 502, ..ok("<html>") }).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::HttpStatus);
    }

    #[test]
    fn introspection_needs_a_boolean_active() {
        let i = Introspection::from_response(ok(r#"{"active":true,"aud":["a","b"],"scope":"x y","exp":5}"#))
            .unwrap();
        assert!(i.active);
        assert_eq!((i.audiences(), i.scopes(), i.time("exp")), (vec!["a", "b"], vec!["x", "y"], Some(5)));
        for body in [r#"{}"#, r#"{"active":"true"}"#] {
            assert_eq!(
                Introspection::from_response(ok(body)).unwrap_err().kind(),
                ErrorKind::InvalidResponse
            );
        }
    }

    #[test]
    fn device_and_par_responses() {
        let d = DeviceAuthorization::from_response(ok(
            r#"{"device_code":"d","user_code":"U","verification_uri":"https://op/device","expires_in":600}"#,
        ))
        .unwrap();
        assert_eq!((d.interval, d.expires_in), (5, 600));
        assert!(
            DeviceAuthorization::from_response(ok(r#"{"device_code":"d","user_code":"U","expires_in":6}"#))
                .is_err()
        );
        let p = PushedAuthorization::from_response(EndpointResponse {
            status: 201,
            ..ok(r#"{"request_uri":"urn:x","expires_in":60}"#)
        })
        .unwrap();
        assert_eq!(p.request_uri, "urn:x");
    }

    #[test]
    fn userinfo_checks_sub_and_revocation_ignores_the_body() {
        let u = UserInfo::from_response(ok(r#"{"sub":"alice","custom":{"a":1}}"#), Some("alice")).unwrap();
        assert_eq!((u.sub(), u.get("custom").is_some()), ("alice", true));
        let e = UserInfo::from_response(ok(r#"{"sub":"mallory"}"#), Some("alice")).unwrap_err();
        assert_eq!((e.kind(), e.claim()), (ErrorKind::InvalidClaim, Some("sub")));
        assert!(
            revocation_result(EndpointResponse {
                status: 200,
                content_type: None,
                www_authenticate: None,
                body: b""
            })
            .is_ok()
        );
        let e = revocation_result(EndpointResponse {
            status: 400,
            ..ok(r#"{"error":"unsupported_token_type"}"#)
        })
        .unwrap_err();
        assert_eq!(e.oauth().unwrap().error, "unsupported_token_type");
    }
}
