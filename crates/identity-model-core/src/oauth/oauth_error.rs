//! OAuth error responses: the JSON body of RFC 6749 section 5.2 and the `WWW-Authenticate`
//! challenge of RFC 6750 section 3, read into one typed error.

use std::fmt;

use serde_json::Value;

use crate::error::{Error, ErrorKind};

/// The longest `error_description` kept; longer ones are cut (a provider's page is not a message).
const MAX_DESCRIPTION: usize = 1024;

/// An error a provider or resource server answered with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuthError {
    /// HTTP status.
    pub status: u16,
    /// `error` (e.g. `invalid_grant`, `invalid_client`, `invalid_token`).
    pub error: String,
    /// `error_description`.
    pub error_description: Option<String>,
    /// `error_uri`.
    pub error_uri: Option<String>,
    /// The `WWW-Authenticate` header, as received.
    pub www_authenticate: Option<String>,
}

impl fmt::Display for OAuthError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (HTTP {})", self.error, self.status)?;
        if let Some(description) = &self.error_description {
            // The provider's text: escaped and cut, never written raw into a message or a log.
            write!(f, ": {}", crate::error::printable(description, 300))?;
        }
        Ok(())
    }
}

impl std::error::Error for OAuthError {}

impl OAuthError {
    /// Reads an error response: the JSON body's `error` when there is one, else the `error`
    /// parameter of the `WWW-Authenticate` challenge. Neither: an `http_status` error.
    pub fn from_response(
        status: u16,
        body: &[u8],
        www_authenticate: Option<&str>,
    ) -> Result<OAuthError, Error> {
        let challenge = www_authenticate.map(challenge_params).unwrap_or_default();
        let from_challenge = |name: &str| challenge.iter().find(|(n, _)| n == name).map(|(_, v)| v.clone());
        // The one strict reading path: a body with a duplicate member is not read at all.
        let json = crate::json_object::parse_members(body).ok();
        let text =
            |name: &str| json.as_ref().and_then(|j| j.get(name)).and_then(Value::as_str).map(str::to_owned);
        let error = text("error").or_else(|| from_challenge("error")).filter(|e| valid_code(e));
        let Some(error) = error else {
            return Err(Error::new(ErrorKind::HttpStatus, format!("HTTP {status} without an OAuth error")));
        };
        let mut error_description = text("error_description").or_else(|| from_challenge("error_description"));
        if let Some(description) = &mut error_description {
            if description.len() > MAX_DESCRIPTION {
                let mut end = MAX_DESCRIPTION;
                while !description.is_char_boundary(end) {
                    end -= 1;
                }
                description.truncate(end);
            }
        }
        Ok(OAuthError {
            status,
            error,
            error_description,
            error_uri: text("error_uri").or_else(|| from_challenge("error_uri")),
            www_authenticate: www_authenticate.map(str::to_owned),
        })
    }
}

/// RFC 6749 section 5.2: `error` is 1*( %x20-21 / %x23-5B / %x5D-7E ).
fn valid_code(code: &str) -> bool {
    !code.is_empty()
        && code.len() <= 128
        && code.bytes().all(|b| matches!(b, 0x20..=0x21 | 0x23..=0x5B | 0x5D..=0x7E))
}

/// The auth-params of the first challenge: `Bearer realm="x", error="invalid_token"`.
fn challenge_params(header: &str) -> Vec<(String, String)> {
    let rest = header.trim_start();
    let rest = rest.split_once(' ').map_or("", |(_, params)| params);
    let mut params = Vec::new();
    let mut chars = rest.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| *c == ',' || c.is_whitespace()) {
            chars.next();
        }
        let name: String =
            chars.by_ref().take_while(|c| *c != '=').collect::<String>().trim().to_ascii_lowercase();
        if name.is_empty() || name.contains(' ') {
            // A new scheme (second challenge) or garbage: stop at the first challenge.
            return params;
        }
        let mut value = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => value.extend(chars.next()),
                    '"' => break,
                    c => value.push(c),
                }
            }
        } else {
            while let Some(c) = chars.peek().copied().filter(|c| *c != ',') {
                value.push(c);
                chars.next();
            }
            value = value.trim().to_owned();
        }
        params.push((name, value));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_json_body() {
        let body =
            br#"{"error":"invalid_grant","error_description":"code used","error_uri":"https://e.example/x"}"#;
        let e = OAuthError::from_response(400, body, None).unwrap();
        assert_eq!(e.error, "invalid_grant");
        assert_eq!(e.error_description.as_deref(), Some("code used"));
        assert_eq!(e.error_uri.as_deref(), Some("https://e.example/x"));
        assert_eq!(e.to_string(), "invalid_grant (HTTP 400): code used");
    }

    #[test]
    fn falls_back_to_the_bearer_challenge() {
        let header =
            r#"Bearer realm="api", error="invalid_token", error_description="the \"token\" expired""#;
        let e = OAuthError::from_response(401, b"", Some(header)).unwrap();
        assert_eq!(e.error, "invalid_token");
        assert_eq!(e.error_description.as_deref(), Some("the \"token\" expired"));
        assert_eq!(e.www_authenticate.as_deref(), Some(header));
        let unquoted =
            OAuthError::from_response(403, b"<html>", Some("Bearer error=insufficient_scope, scope=\"a b\""));
        assert_eq!(unquoted.unwrap().error, "insufficient_scope");
    }

    #[test]
    fn no_error_code_is_an_http_status_error() {
        for (body, header) in [
            (&b"<html>oops</html>"[..], None),
            (br#"{"error": 5}"#, None),
            (br#"{"error": ""}"#, None),
            (br#"{"error": "bad\"quote"}"#, None),
            (b"", Some("Basic realm=\"x\"")),
            (b"", Some("")),
        ] {
            let e = OAuthError::from_response(500, body, header).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::HttpStatus);
        }
    }

    #[test]
    fn long_descriptions_are_cut_on_a_character_boundary() {
        let body =
            serde_json::json!({"error": "server_error", "error_description": "é".repeat(2000)}).to_string();
        let e = OAuthError::from_response(500, body.as_bytes(), None).unwrap();
        assert!(e.error_description.unwrap().len() <= MAX_DESCRIPTION);
    }
}
