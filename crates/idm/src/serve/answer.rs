//! What a check answers: on success the identity headers the proxy hands upstream, on refusal
//! the status, the challenge and a JSON body `{"error": KIND, "message": "..."}`.

use axum::body::Body;
use axum::response::Response;
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use identity_model::{Rejection, ValidToken};
use serde_json::Value;

/// The identity headers the sidecar owns: oauth2-proxy's names (so existing proxy configs
/// work). Every 200 answer carries each of them and each configured claim header, empty when
/// there is nothing to say, so that a proxy that copies only the headers an answer carries
/// (Envoy's `allowed_upstream_headers`) still replaces a client-sent copy.
pub(crate) const OWNED: [HeaderName; 7] = [
    HeaderName::from_static("x-auth-request-user"),
    HeaderName::from_static("x-auth-request-email"),
    HeaderName::from_static("x-auth-request-preferred-username"),
    HeaderName::from_static("x-auth-request-groups"),
    HeaderName::from_static("x-auth-request-client-id"),
    HeaderName::from_static("x-auth-request-scope"),
    HeaderName::from_static("x-auth-request-issuer"),
];

/// A client-sent header that CGI, WSGI and PHP upstreams (where `-` and `_` both become `_`)
/// would read as the same variable as an identity header the sidecar owns or is configured to
/// send: its name and the owned name. Proxies replace only the exact name, so such a twin
/// would reach the upstream beside the sidecar's header.
pub(crate) fn underscore_twin<'h>(
    headers: &'h HeaderMap,
    configured: &[(String, HeaderName)],
) -> Option<(&'h str, String)> {
    headers.keys().map(HeaderName::as_str).filter(|name| name.contains('_')).find_map(|name| {
        let folded = name.replace('_', "-");
        let twin =
            OWNED.iter().chain(configured.iter().map(|(_, header)| header)).any(|h| h.as_str() == folded);
        twin.then_some((name, folded))
    })
}

/// A claim that cannot be sent as a header value as it is: the check is refused rather than
/// the header dropped or altered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Unrepresentable {
    pub(crate) claim: String,
    pub(crate) why: &'static str,
}

/// The identity headers for `valid` (every owned and configured header, empty when the
/// claim is absent or null), or the first claim that cannot be a header value.
pub(crate) fn identity_headers(
    valid: &ValidToken,
    configured: &[(String, HeaderName)],
) -> Result<HeaderMap, Unrepresentable> {
    let scopes = valid.claims.scopes();
    let scope = (!scopes.is_empty()).then(|| scopes.join(" "));
    let client_id = if valid.claims.get("client_id").is_some() { "client_id" } else { "azp" };
    // The claim behind each owned header, in OWNED's order; the scope header is the
    // parsed scopes, space-separated.
    let sources = ["sub", "email", "preferred_username", "groups", client_id, "scope", "iss"];
    let mut headers = HeaderMap::with_capacity(OWNED.len() + configured.len());
    for (name, claim_name) in OWNED.iter().zip(sources) {
        let text = if claim_name == "scope" { scope.clone() } else { claim(valid, claim_name)? };
        headers.insert(name.clone(), header_value(claim_name, text.as_deref())?);
    }
    for (claim_name, name) in configured {
        let text = claim(valid, claim_name)?;
        headers.insert(name.clone(), header_value(claim_name, text.as_deref())?);
    }
    Ok(headers)
}

/// `text` as a header value: refused when a proxy would cut, fold or trim it (control
/// characters, leading or trailing whitespace); UTF-8 is sent as its bytes.
fn header_value(claim: &str, text: Option<&str>) -> Result<HeaderValue, Unrepresentable> {
    let text = text.unwrap_or("");
    if text.is_empty() {
        return Ok(HeaderValue::from_static(""));
    }
    let refuse = |why| Unrepresentable { claim: claim.to_owned(), why };
    // `from_bytes` refuses every control character but tab.
    let value =
        HeaderValue::from_bytes(text.as_bytes()).map_err(|_| refuse("it holds a control character"))?;
    if text.contains('\t') {
        return Err(refuse("it holds a control character"));
    }
    if text.starts_with(' ') || text.ends_with(' ') {
        return Err(refuse("it starts or ends with a space, which proxies trim"));
    }
    Ok(value)
}

/// A claim by name or dotted path (registered ones included) as header text: strings as they
/// are, numbers and booleans printed, an array of those comma-separated; absent or null is
/// `None`. An object, a nested array, or an array item holding a comma cannot be written
/// unambiguously.
fn claim(valid: &ValidToken, name: &str) -> Result<Option<String>, Unrepresentable> {
    let claims = &valid.claims;
    let date = |d: Option<identity_model::NumericDate>| d.map(|d| d.as_secs_f64().to_string());
    Ok(match name {
        "iss" => claims.iss().map(str::to_owned),
        "sub" => claims.sub().map(str::to_owned),
        "jti" => claims.jti().map(str::to_owned),
        "exp" => date(claims.exp()),
        "nbf" => date(claims.nbf()),
        "iat" => date(claims.iat()),
        other => match super::claim_rules::lookup(valid, other).as_deref() {
            None | Some(Value::Null) => None,
            Some(Value::Array(items)) => {
                let mut texts = Vec::with_capacity(items.len());
                for item in items {
                    let text = claim_text(item).ok_or_else(|| Unrepresentable {
                        claim: other.to_owned(),
                        why: "an item of the array is not a string, number or boolean",
                    })?;
                    if text.contains(',') {
                        return Err(Unrepresentable {
                            claim: other.to_owned(),
                            why: "an item of the array holds a comma, the separator",
                        });
                    }
                    texts.push(text);
                }
                Some(texts.join(","))
            }
            Some(value) => Some(
                claim_text(value)
                    .ok_or_else(|| Unrepresentable { claim: other.to_owned(), why: "it is an object" })?,
            ),
        },
    })
}

/// A scalar claim as header text: strings as they are, numbers and booleans printed.
fn claim_text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// The identity headers of an anonymous pass: every owned and configured one, empty.
pub(crate) fn anonymous_headers(configured: &[(String, HeaderName)]) -> HeaderMap {
    let mut headers = HeaderMap::with_capacity(OWNED.len() + configured.len());
    for name in &OWNED {
        headers.insert(name.clone(), HeaderValue::from_static(""));
    }
    for (_, name) in configured {
        headers.insert(name.clone(), HeaderValue::from_static(""));
    }
    headers
}

/// 400 for a check that cannot be judged: `{"error": kind, "message": ...}` and
/// `X-Auth-Error`.
pub(crate) fn bad_check(kind: &'static str, message: &str) -> Response {
    let mut response = json(StatusCode::BAD_REQUEST, &serde_json::json!({"error": kind, "message": message}));
    response.headers_mut().insert("x-auth-error", HeaderValue::from_static(kind));
    response
}

/// A JSON answer with `status`.
pub(crate) fn json(status: StatusCode, body: &Value) -> Response {
    let mut response = Response::new(Body::from(body.to_string()));
    *response.status_mut() = status;
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

/// The answer to a refused check: the layer's status, challenge, `X-Auth-Error` and (on a
/// 503) `Retry-After`, with a JSON body.
pub(crate) fn refusal(rejection: &Rejection, realm: &str, resource_metadata: Option<&str>) -> Response {
    let (parts, ()) = rejection.response_with(realm, resource_metadata).into_parts();
    let body = serde_json::json!({"error": rejection.kind().as_str(), "message": rejection.message()});
    let mut response = json(parts.status, &body);
    for (name, value) in &parts.headers {
        response.headers_mut().insert(name.clone(), value.clone());
    }
    response
}

/// 403 for a token that fails a route's claim rule: `insufficient_claims` (the challenge
/// carries no `error`: `insufficient_scope` is for scope rules only).
pub(crate) fn insufficient_claims(message: &str, realm: &str, resource_metadata: Option<&str>) -> Response {
    let body = serde_json::json!({"error": "insufficient_claims", "message": message});
    let mut response = json(StatusCode::FORBIDDEN, &body);
    let mut challenge = format!("Bearer realm=\"{}\"", realm.replace(['"', '\\'], ""));
    if let Some(url) = resource_metadata {
        challenge.push_str(&format!(", resource_metadata=\"{}\"", url.replace(['"', '\\'], "")));
    }
    if let Ok(value) = HeaderValue::from_str(&challenge) {
        response.headers_mut().insert(header::WWW_AUTHENTICATE, value);
    }
    response.headers_mut().insert("x-auth-error", HeaderValue::from_static("insufficient_claims"));
    response
}

/// The RFC 9728 document.
pub(crate) fn resource_metadata(metadata: &identity_model::ProtectedResourceMetadata) -> Response {
    let (parts, body) = metadata.response().into_parts();
    Response::from_parts(parts, Body::from(body))
}

/// 429 for a client over its rate, with `Retry-After` in whole seconds (at least 1).
/// 503 for a shared rate limit that cannot be asked (configured to refuse then).
pub(crate) fn limit_unavailable(why: &str) -> Response {
    let body = serde_json::json!({
        "error": "rate_limit_unavailable",
        "message": format!("the shared rate limit cannot be asked, so the request is refused: {why}"),
    });
    let mut response = json(StatusCode::SERVICE_UNAVAILABLE, &body);
    response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(1));
    response.headers_mut().insert("x-auth-error", HeaderValue::from_static("rate_limit_unavailable"));
    response
}

pub(crate) fn too_many(wait_secs: u64) -> Response {
    let body = serde_json::json!({
        "error": "rate_limited",
        "message": format!("too many requests for this client; retry after {wait_secs} s"),
    });
    let mut response = json(StatusCode::TOO_MANY_REQUESTS, &body);
    response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(wait_secs.max(1)));
    response.headers_mut().insert("x-auth-error", HeaderValue::from_static("rate_limited"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn underscore_twins_of_owned_and_configured_headers_are_found() {
        let configured = vec![("tenant".to_owned(), HeaderName::from_static("x-tenant-id"))];
        let twin = |name: &'static str| {
            let mut headers = HeaderMap::new();
            headers.insert(HeaderName::from_static(name), HeaderValue::from_static("x"));
            underscore_twin(&headers, &configured).map(|(_, owned)| owned)
        };
        assert_eq!(twin("x-auth-request_user").as_deref(), Some("x-auth-request-user"));
        assert_eq!(twin("x_tenant_id").as_deref(), Some("x-tenant-id"));
        assert_eq!(twin("x-tenant-id"), None, "the exact name is the proxy's to replace");
        assert_eq!(twin("x_trace_id"), None);
        assert_eq!(twin("x-auth-request-user"), None);
    }
}
