//! Requests to the token endpoint (every grant) and to the endpoints around it: device
//! authorization (RFC 8628), PAR (RFC 9126), introspection (RFC 7662), revocation (RFC 7009).
//! Each becomes a [`FormRequest`] with its retry class; the IO layer only sends it.

use crate::error::Error;
use crate::jwt::claims::UnixTime;
use crate::oauth::client_auth::Client;
use crate::oauth::form_request::{FormRequest, RetryClass};
use crate::oauth::secret::Secret;

/// RFC 8693 section 3 token type identifiers.
pub mod token_type {
    /// An OAuth access token.
    pub const ACCESS_TOKEN: &str = "urn:ietf:params:oauth:token-type:access_token";
    /// An OAuth refresh token.
    pub const REFRESH_TOKEN: &str = "urn:ietf:params:oauth:token-type:refresh_token";
    /// An OpenID Connect ID token.
    pub const ID_TOKEN: &str = "urn:ietf:params:oauth:token-type:id_token";
    /// A SAML 1.1 assertion.
    pub const SAML1: &str = "urn:ietf:params:oauth:token-type:saml1";
    /// A SAML 2.0 assertion.
    pub const SAML2: &str = "urn:ietf:params:oauth:token-type:saml2";
    /// A JWT.
    pub const JWT: &str = "urn:ietf:params:oauth:token-type:jwt";
}

/// `grant_type` of token exchange.
pub const TOKEN_EXCHANGE_GRANT: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
/// `grant_type` of the device flow.
pub const DEVICE_CODE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";

/// A token exchange (RFC 8693): the subject, optionally an actor (delegation), and what to get.
#[derive(Debug, Clone)]
pub struct TokenExchange {
    /// `subject_token`.
    pub subject_token: Secret,
    /// `subject_token_type` (a [`token_type`] URI).
    pub subject_token_type: String,
    /// `actor_token` and `actor_token_type`, for delegation.
    pub actor: Option<(Secret, String)>,
    /// `requested_token_type`.
    pub requested_token_type: Option<String>,
    /// `audience` values.
    pub audiences: Vec<String>,
}

impl TokenExchange {
    /// Impersonation: exchange `subject_token` of type `subject_token_type`.
    pub fn new(subject_token: impl Into<Secret>, subject_token_type: impl Into<String>) -> Self {
        TokenExchange {
            subject_token: subject_token.into(),
            subject_token_type: subject_token_type.into(),
            actor: None,
            requested_token_type: None,
            audiences: Vec::new(),
        }
    }

    /// Delegation: the actor acting for the subject.
    pub fn actor(mut self, token: impl Into<Secret>, token_type: impl Into<String>) -> Self {
        self.actor = Some((token.into(), token_type.into()));
        self
    }

    /// `requested_token_type`.
    pub fn requested_token_type(mut self, token_type: impl Into<String>) -> Self {
        self.requested_token_type = Some(token_type.into());
        self
    }

    /// Adds an `audience`.
    pub fn audience(mut self, audience: impl Into<String>) -> Self {
        self.audiences.push(audience.into());
        self
    }
}

/// The grant of a token request.
#[derive(Debug, Clone)]
pub enum Grant {
    /// `client_credentials`.
    ClientCredentials,
    /// `refresh_token`.
    RefreshToken(Secret),
    /// `authorization_code`, with its `redirect_uri` and PKCE verifier.
    AuthorizationCode {
        /// The code from the callback.
        code: Secret,
        /// The `redirect_uri` of the authorization request.
        redirect_uri: String,
        /// The PKCE `code_verifier`.
        code_verifier: Option<Secret>,
    },
    /// The device flow's `device_code`.
    DeviceCode(Secret),
    /// Token exchange.
    TokenExchange(TokenExchange),
}

/// A token request: a grant, scopes, resources (RFC 8707) and extra parameters.
#[derive(Debug, Clone)]
pub struct TokenRequest {
    /// The grant.
    pub grant: Grant,
    /// Scopes, sent space-delimited.
    pub scopes: Vec<String>,
    /// `resource` indicators (RFC 8707), one parameter each.
    pub resources: Vec<String>,
    /// Extra form parameters.
    pub extra: Vec<(String, String)>,
    /// Overrides the grant's retry class (a refresh token known not to rotate may be retried).
    pub retry: Option<RetryClass>,
}

impl TokenRequest {
    /// A request for `grant`.
    pub fn new(grant: Grant) -> Self {
        TokenRequest { grant, scopes: Vec::new(), resources: Vec::new(), extra: Vec::new(), retry: None }
    }

    /// `client_credentials`.
    pub fn client_credentials() -> Self {
        TokenRequest::new(Grant::ClientCredentials)
    }

    /// `refresh_token`.
    pub fn refresh(refresh_token: impl Into<Secret>) -> Self {
        TokenRequest::new(Grant::RefreshToken(refresh_token.into()))
    }

    /// `authorization_code` with PKCE.
    pub fn authorization_code(
        code: impl Into<Secret>,
        redirect_uri: impl Into<String>,
        code_verifier: Option<Secret>,
    ) -> Self {
        TokenRequest::new(Grant::AuthorizationCode {
            code: code.into(),
            redirect_uri: redirect_uri.into(),
            code_verifier,
        })
    }

    /// The device flow's token request.
    pub fn device_code(device_code: impl Into<Secret>) -> Self {
        TokenRequest::new(Grant::DeviceCode(device_code.into()))
    }

    /// Token exchange.
    pub fn exchange(exchange: TokenExchange) -> Self {
        TokenRequest::new(Grant::TokenExchange(exchange))
    }

    /// Adds scopes.
    pub fn scope<I, S>(mut self, scopes: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.scopes.extend(scopes.into_iter().map(Into::into));
        self
    }

    /// Adds a `resource` indicator.
    pub fn resource(mut self, resource: impl Into<String>) -> Self {
        self.resources.push(resource.into());
        self
    }

    /// Adds an extra form parameter.
    pub fn param(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.extra.push((name.into(), value.into()));
        self
    }

    /// Marks the request safe (or unsafe) to retry, overriding the grant's default.
    pub fn retry_class(mut self, retry: RetryClass) -> Self {
        self.retry = Some(retry);
        self
    }

    /// `grant_type`.
    pub fn grant_type(&self) -> &'static str {
        match &self.grant {
            Grant::ClientCredentials => "client_credentials",
            Grant::RefreshToken(_) => "refresh_token",
            Grant::AuthorizationCode { .. } => "authorization_code",
            Grant::DeviceCode(_) => DEVICE_CODE_GRANT,
            Grant::TokenExchange(_) => TOKEN_EXCHANGE_GRANT,
        }
    }

    /// The retry class: only client credentials are retried by default.
    pub fn retry(&self) -> RetryClass {
        self.retry.unwrap_or(match self.grant {
            Grant::ClientCredentials => RetryClass::Retryable,
            _ => RetryClass::Never,
        })
    }

    /// The request to `token_endpoint`, authenticated as `client`.
    pub fn build(
        &self,
        token_endpoint: &str,
        client: &Client,
        issuer: Option<&str>,
        now: UnixTime,
    ) -> Result<FormRequest, Error> {
        let mut request = FormRequest::post(token_endpoint, self.retry());
        request.param("grant_type", self.grant_type());
        match &self.grant {
            Grant::ClientCredentials => {}
            Grant::RefreshToken(token) => {
                request.param("refresh_token", token.expose());
            }
            Grant::AuthorizationCode { code, redirect_uri, code_verifier } => {
                request.param("code", code.expose()).param("redirect_uri", redirect_uri.as_str());
                if let Some(verifier) = code_verifier {
                    request.param("code_verifier", verifier.expose());
                }
            }
            Grant::DeviceCode(code) => {
                request.param("device_code", code.expose());
            }
            Grant::TokenExchange(exchange) => {
                request
                    .param("subject_token", exchange.subject_token.expose())
                    .param("subject_token_type", exchange.subject_token_type.as_str());
                if let Some((token, token_type)) = &exchange.actor {
                    request
                        .param("actor_token", token.expose())
                        .param("actor_token_type", token_type.as_str());
                }
                if let Some(requested) = &exchange.requested_token_type {
                    request.param("requested_token_type", requested.as_str());
                }
                for audience in &exchange.audiences {
                    request.param("audience", audience.as_str());
                }
            }
        }
        add_common(&mut request, &self.scopes, &self.resources, &self.extra);
        client.authenticate(&mut request, issuer, now)?;
        Ok(request)
    }
}

fn add_common(
    request: &mut FormRequest,
    scopes: &[String],
    resources: &[String],
    extra: &[(String, String)],
) {
    if !scopes.is_empty() {
        request.param("scope", scopes.join(" "));
    }
    for resource in resources {
        request.param("resource", resource.as_str());
    }
    for (name, value) in extra {
        request.param(name.as_str(), value.as_str());
    }
}

/// A device authorization request (RFC 8628 section 3.1). Retryable: it only creates a
/// pending authorization nobody has seen.
pub fn device_authorization_request(
    endpoint: &str,
    client: &Client,
    scopes: &[String],
    resources: &[String],
    issuer: Option<&str>,
    now: UnixTime,
) -> Result<FormRequest, Error> {
    let mut request = FormRequest::post(endpoint, RetryClass::Retryable);
    add_common(&mut request, scopes, resources, &[]);
    client.authenticate(&mut request, issuer, now)?;
    Ok(request)
}

/// A request about a token: introspection (RFC 7662 section 2.1) or revocation (RFC 7009
/// section 2.1), the same form either way. Retryable: reading twice is reading, revoking
/// twice is revoking.
pub fn token_operation_request(
    endpoint: &str,
    client: &Client,
    token: &str,
    token_type_hint: Option<&str>,
    issuer: Option<&str>,
    now: UnixTime,
) -> Result<FormRequest, Error> {
    let mut request = FormRequest::post(endpoint, RetryClass::Retryable);
    request.param("token", token);
    if let Some(hint) = token_type_hint {
        request.param("token_type_hint", hint);
    }
    client.authenticate(&mut request, issuer, now)?;
    Ok(request)
}

/// A userinfo request (OpenID Connect Core section 5.3): GET with the access token as Bearer.
pub fn userinfo_request(endpoint: &str, access_token: &str) -> FormRequest {
    let mut request = FormRequest::post(endpoint, RetryClass::Retryable);
    request.method = crate::oauth::form_request::Method::Get;
    request.header("Authorization", format!("Bearer {access_token}"));
    request
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> UnixTime {
        UnixTime::from_secs(1_700_000_000)
    }

    #[test]
    fn grants_carry_their_parameters_and_retry_classes() {
        let client = Client::public("app");
        let cc = TokenRequest::client_credentials()
            .scope(["a", "b"])
            .resource("https://r1")
            .resource("https://r2");
        let r = cc.build("https://op/token", &client, None, now()).unwrap();
        assert_eq!(
            r.body(),
            "grant_type=client_credentials&scope=a+b&resource=https%3A%2F%2Fr1&resource=https%3A%2F%2Fr2&client_id=app"
        );
        assert_eq!(r.retry, RetryClass::Retryable);

        let code = TokenRequest::authorization_code("c1", "https://app/cb", Some("v".into()));
        let r = code.build("https://op/token", &client, None, now()).unwrap();
        assert_eq!(
            (r.get("code"), r.get("redirect_uri"), r.get("code_verifier")),
            (Some("c1"), Some("https://app/cb"), Some("v"))
        );
        assert_eq!(r.retry, RetryClass::Never);
        for never in [
            TokenRequest::refresh("rt"),
            TokenRequest::device_code("dc"),
            TokenRequest::exchange(TokenExchange::new("s", token_type::JWT)),
        ] {
            assert_eq!(never.retry(), RetryClass::Never, "{}", never.grant_type());
        }
        assert_eq!(
            TokenRequest::refresh("rt").retry_class(RetryClass::Retryable).retry(),
            RetryClass::Retryable
        );
    }

    #[test]
    fn exchange_sends_subject_actor_and_audiences() {
        let exchange = TokenExchange::new("subj", token_type::ACCESS_TOKEN)
            .actor("act", token_type::JWT)
            .requested_token_type(token_type::ACCESS_TOKEN)
            .audience("https://api.example.com");
        let r = TokenRequest::exchange(exchange)
            .build("https://op/token", &Client::public("c"), None, now())
            .unwrap();
        assert_eq!(r.get("grant_type"), Some(TOKEN_EXCHANGE_GRANT));
        assert_eq!(r.get("actor_token_type"), Some(token_type::JWT));
        assert_eq!(r.get("audience"), Some("https://api.example.com"));
        assert_eq!(r.get("requested_token_type"), Some(token_type::ACCESS_TOKEN));
    }

    #[test]
    fn userinfo_is_a_bearer_get() {
        let r = userinfo_request("https://op/userinfo", "at");
        assert_eq!(r.method, crate::oauth::form_request::Method::Get);
        assert_eq!(r.header_value("authorization"), Some("Bearer at"));
    }
}
