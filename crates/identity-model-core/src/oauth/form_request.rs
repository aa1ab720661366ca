//! An HTTP request to an OAuth endpoint, built without IO: URL, headers, form parameters and
//! whether it may be retried. The IO layer sends it as it is.

use std::fmt;

/// Form parameters whose values are credentials or grants and never print.
const SECRET_PARAMS: &[&str] = &[
    "client_secret",
    "client_assertion",
    "code",
    "code_verifier",
    "refresh_token",
    "device_code",
    "subject_token",
    "actor_token",
    "token",
    "assertion",
    "password",
];

/// HTTP method of a [`FormRequest`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// GET (userinfo).
    Get,
    /// POST with an `application/x-www-form-urlencoded` body.
    Post,
}

/// Whether sending a request twice is harmless.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryClass {
    /// Safe to repeat after a connection error, 429 or 5xx (client credentials,
    /// introspection, revocation, userinfo): the worst outcome is a second token.
    Retryable,
    /// Never repeated blindly: the grant is single use (authorization code, rotating refresh
    /// token), the provider counts it (device polling) or it has effects (token exchange).
    Never,
}

/// A request to an OAuth endpoint. `Debug` redacts secret parameters and the
/// `Authorization` header.
#[derive(Clone)]
pub struct FormRequest {
    /// GET or POST.
    pub method: Method,
    /// The endpoint.
    pub url: String,
    /// Headers besides `Content-Type` and `Accept` (`Authorization`, `DPoP`).
    pub headers: Vec<(String, String)>,
    /// Form parameters, in order.
    pub params: Vec<(String, String)>,
    /// Whether the IO layer may retry it.
    pub retry: RetryClass,
}

impl FormRequest {
    /// A POST of `params` to `url`.
    pub fn post(url: impl Into<String>, retry: RetryClass) -> Self {
        FormRequest { method: Method::Post, url: url.into(), headers: Vec::new(), params: Vec::new(), retry }
    }

    /// Adds a form parameter.
    pub fn param(&mut self, name: impl Into<String>, value: impl Into<String>) -> &mut Self {
        self.params.push((name.into(), value.into()));
        self
    }

    /// Sets a header (replacing one of the same name).
    pub fn header(&mut self, name: &str, value: impl Into<String>) -> &mut Self {
        self.headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
        self.headers.push((name.to_owned(), value.into()));
        self
    }

    /// The first value of a form parameter.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.params.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    /// A header's value.
    pub fn header_value(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// The `application/x-www-form-urlencoded` body.
    pub fn body(&self) -> String {
        let mut body = form_urlencoded::Serializer::new(String::new());
        for (name, value) in &self.params {
            body.append_pair(name, value);
        }
        body.finish()
    }
}

impl fmt::Debug for FormRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let params: Vec<(&str, &str)> = self
            .params
            .iter()
            .map(|(n, v)| (n.as_str(), if SECRET_PARAMS.contains(&n.as_str()) { "[redacted]" } else { v }))
            .collect();
        let headers: Vec<(&str, &str)> = self
            .headers
            .iter()
            .map(|(n, v)| {
                let secret = n.eq_ignore_ascii_case("authorization") || n.eq_ignore_ascii_case("dpop");
                (n.as_str(), if secret { "[redacted]" } else { v.as_str() })
            })
            .collect();
        f.debug_struct("FormRequest")
            .field("method", &self.method)
            .field("url", &self.url)
            .field("headers", &headers)
            .field("params", &params)
            .field("retry", &self.retry)
            .finish()
    }
}

/// `application/x-www-form-urlencoded` encoding of one value (RFC 6749 section 2.3.1 asks
/// for it on the Basic credentials, and appendix B defines it).
pub fn form_encode(value: &str) -> String {
    form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_is_form_encoded_and_debug_redacts() {
        let mut request = FormRequest::post("https://op.example/token", RetryClass::Retryable);
        request.param("grant_type", "client_credentials").param("scope", "a b").param("client_secret", "s&=");
        request.header("Authorization", "Basic abc");
        assert_eq!(request.body(), "grant_type=client_credentials&scope=a+b&client_secret=s%26%3D");
        let debug = format!("{request:?}");
        assert!(!debug.contains("s&=") && !debug.contains("abc"), "{debug}");
        assert!(debug.contains("a b"));
        assert_eq!(form_encode("a b+c:d%"), "a+b%2Bc%3Ad%25");
    }
}
