//! OAuth 2.0 Protected Resource Metadata (RFC 9728): the document a protected resource serves
//! at `/.well-known/oauth-protected-resource` (with the resource's path appended when it has
//! one), and the URL that `resource_metadata="..."` names in every challenge (section 5.1).
//! The MCP authorization specification requires both of protected MCP servers.

use http::{HeaderValue, Response, StatusCode, header};
use identity_model_core::{Error, ErrorKind};
use serde_json::{Map, Value};

/// The well-known path segment of RFC 9728 section 3.
pub const RESOURCE_METADATA_PATH: &str = "/.well-known/oauth-protected-resource";

/// A protected resource's metadata document.
///
/// ```
/// use identity_model::ProtectedResourceMetadata;
///
/// let metadata = ProtectedResourceMetadata::new("https://api.example/mcp")?
///     .authorization_servers(["https://login.example"])
///     .scopes_supported(["tools:read"]);
/// assert_eq!(metadata.well_known_path(), "/.well-known/oauth-protected-resource/mcp");
/// assert_eq!(metadata.url(), "https://api.example/.well-known/oauth-protected-resource/mcp");
/// let layer_challenge_parameter = metadata.url(); // BearerLayer::resource_metadata
/// # let _ = layer_challenge_parameter;
/// # Ok::<(), identity_model::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct ProtectedResourceMetadata {
    resource: String,
    origin_end: usize,
    members: Map<String, Value>,
}

impl ProtectedResourceMetadata {
    /// The metadata of `resource`: an `https` URL (`http` on a loopback host, for development)
    /// without query or fragment. Its origin serves the document.
    pub fn new(resource: impl Into<String>) -> Result<Self, Error> {
        let resource: String = resource.into();
        let invalid =
            |why: &str| Error::new(ErrorKind::InvalidConfig, format!("resource {resource:?}: {why}"));
        let (secure, rest) = match (resource.strip_prefix("https://"), resource.strip_prefix("http://")) {
            (Some(rest), _) => (true, rest),
            (None, Some(rest)) => (false, rest),
            (None, None) => return Err(invalid("must be an https URL")),
        };
        if resource.contains(['?', '#']) || resource.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(invalid("must have no query, fragment, space or control character"));
        }
        let authority = &rest[..rest.find('/').unwrap_or(rest.len())];
        let host = match authority.find(']') {
            Some(end) if authority.starts_with('[') => &authority[..=end],
            _ => authority.split(':').next().unwrap_or(""),
        };
        if host.is_empty() {
            return Err(invalid("has no host"));
        }
        let loopback = host == "localhost" || host == "[::1]" || host.starts_with("127.");
        if !(secure || loopback) {
            return Err(invalid("must be an https URL (http only on a loopback host)"));
        }
        let origin_end = resource.len() - rest.len() + authority.len();
        let mut members = Map::new();
        members.insert("resource".into(), Value::String(resource.clone()));
        Ok(ProtectedResourceMetadata { resource, origin_end, members })
    }

    fn list<I: IntoIterator<Item = S>, S: Into<String>>(mut self, name: &str, values: I) -> Self {
        let values: Vec<Value> = values.into_iter().map(|v| Value::String(v.into())).collect();
        if values.is_empty() {
            self.members.remove(name);
        } else {
            self.members.insert(name.into(), Value::Array(values));
        }
        self
    }

    /// `authorization_servers`: the issuers whose tokens the resource accepts.
    pub fn authorization_servers<I: IntoIterator<Item = S>, S: Into<String>>(self, issuers: I) -> Self {
        self.list("authorization_servers", issuers)
    }

    /// `scopes_supported`.
    pub fn scopes_supported<I: IntoIterator<Item = S>, S: Into<String>>(self, scopes: I) -> Self {
        self.list("scopes_supported", scopes)
    }

    /// `bearer_methods_supported`: `header`, `body`, `query`.
    pub fn bearer_methods_supported<I: IntoIterator<Item = S>, S: Into<String>>(self, methods: I) -> Self {
        self.list("bearer_methods_supported", methods)
    }

    /// `dpop_signing_alg_values_supported`.
    pub fn dpop_signing_alg_values_supported<I: IntoIterator<Item = S>, S: Into<String>>(
        self,
        algs: I,
    ) -> Self {
        self.list("dpop_signing_alg_values_supported", algs)
    }

    /// Any other member (`resource_name`, `resource_documentation`, ...); `resource` itself
    /// cannot be replaced.
    pub fn member(mut self, name: impl Into<String>, value: Value) -> Self {
        let name = name.into();
        if name != "resource" {
            self.members.insert(name, value);
        }
        self
    }

    /// The resource identifier.
    pub fn resource(&self) -> &str {
        &self.resource
    }

    /// Where the document is served on the resource's origin: the well-known path, then the
    /// resource's path when it has one (RFC 9728 section 3.1).
    pub fn well_known_path(&self) -> String {
        let path = self.resource[self.origin_end..].trim_end_matches('/');
        format!("{RESOURCE_METADATA_PATH}{path}")
    }

    /// The document's URL: the `resource_metadata` parameter of challenges.
    pub fn url(&self) -> String {
        format!("{}{}", &self.resource[..self.origin_end], self.well_known_path())
    }

    /// The document.
    pub fn to_json(&self) -> Value {
        Value::Object(self.members.clone())
    }

    /// The answer to a `GET` of [`ProtectedResourceMetadata::well_known_path`]: 200 with the
    /// JSON document, cacheable for an hour.
    pub fn response(&self) -> Response<String> {
        let mut response = Response::new(self.to_json().to_string());
        *response.status_mut() = StatusCode::OK;
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=3600"));
        response
    }

    /// An axum router serving the document at its well-known path: merge it into the
    /// application's router, outside the [`crate::BearerLayer`].
    #[cfg(feature = "axum")]
    pub fn router<S: Clone + Send + Sync + 'static>(&self) -> axum::Router<S> {
        let document = self.clone();
        axum::Router::new().route(
            &self.well_known_path(),
            axum::routing::get(move || {
                let response = document.response();
                async move { response }
            }),
        )
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn paths_and_urls_follow_section_3_1() {
        let root = ProtectedResourceMetadata::new("https://api.example").unwrap();
        assert_eq!(root.well_known_path(), RESOURCE_METADATA_PATH);
        assert_eq!(root.url(), "https://api.example/.well-known/oauth-protected-resource");
        let slash = ProtectedResourceMetadata::new("https://api.example/").unwrap();
        assert_eq!(slash.url(), root.url());
        let path = ProtectedResourceMetadata::new("https://api.example:8443/v1/mcp").unwrap();
        assert_eq!(path.url(), "https://api.example:8443/.well-known/oauth-protected-resource/v1/mcp");
        assert!(ProtectedResourceMetadata::new("http://127.0.0.1:8080/x").is_ok());
        for bad in [
            "http://api.example",
            "https://api.example/?q",
            "https://api.example/#f",
            "ftp://x",
            "https:///x",
            "",
        ] {
            assert_eq!(
                ProtectedResourceMetadata::new(bad).unwrap_err().kind(),
                ErrorKind::InvalidConfig,
                "{bad}"
            );
        }
    }

    #[test]
    fn the_document_has_what_was_given() {
        let metadata = ProtectedResourceMetadata::new("https://api.example")
            .unwrap()
            .authorization_servers(["https://login.example"])
            .scopes_supported(Vec::<String>::new())
            .bearer_methods_supported(["header"])
            .member("resource", json!("https://evil.example"))
            .member("resource_name", json!("Orders"));
        assert_eq!(
            metadata.to_json(),
            json!({
                "resource": "https://api.example",
                "authorization_servers": ["https://login.example"],
                "bearer_methods_supported": ["header"],
                "resource_name": "Orders",
            })
        );
        let response = metadata.response();
        assert_eq!(response.headers()["content-type"], "application/json");
    }
}
