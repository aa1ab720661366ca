//! The front channel of the authorization code flow: the authorization URL (with PKCE,
//! `state` and `nonce`, or a PAR `request_uri`) and the callback, checked for `state` and the
//! RFC 9207 `iss` parameter.

use crate::error::{Error, ErrorKind};
use crate::jwt::claims::UnixTime;
use crate::oauth::client_auth::{Client, random_id};
use crate::oauth::form_request::{FormRequest, RetryClass, form_encode};
use crate::oauth::oauth_error::OAuthError;
use crate::oauth::pkce::Pkce;
use crate::oauth::secret::Secret;

/// An authorization request in progress. Keep it (in the session) until the callback: it holds
/// the `state`, `nonce` and PKCE verifier the callback and the code redemption need.
#[derive(Debug, Clone)]
pub struct AuthorizationRequest {
    /// `client_id`.
    pub client_id: String,
    /// `redirect_uri`.
    pub redirect_uri: String,
    /// Scopes (`openid` is added by [`AuthorizationRequest::new`]).
    pub scopes: Vec<String>,
    /// `state` (random).
    pub state: String,
    /// `nonce` (random), to be found in the ID token.
    pub nonce: String,
    /// PKCE (S256).
    pub pkce: Pkce,
    /// `resource` indicators.
    pub resources: Vec<String>,
    /// Extra parameters (`prompt`, `max_age`, `login_hint`...).
    pub extra: Vec<(String, String)>,
}

impl AuthorizationRequest {
    /// A code flow request with fresh `state`, `nonce` and PKCE verifier, and scope `openid`.
    pub fn new(client_id: impl Into<String>, redirect_uri: impl Into<String>) -> Result<Self, Error> {
        Ok(AuthorizationRequest {
            client_id: client_id.into(),
            redirect_uri: redirect_uri.into(),
            scopes: vec!["openid".into()],
            state: random_id()?,
            nonce: random_id()?,
            pkce: Pkce::generate()?,
            resources: Vec::new(),
            extra: Vec::new(),
        })
    }

    /// Adds scopes.
    pub fn scope<I, S>(mut self, scopes: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        for scope in scopes {
            let scope = scope.into();
            if !self.scopes.contains(&scope) {
                self.scopes.push(scope);
            }
        }
        self
    }

    /// Adds a `resource` indicator.
    pub fn resource(mut self, resource: impl Into<String>) -> Self {
        self.resources.push(resource.into());
        self
    }

    /// Binds the authorization code to a DPoP key (RFC 9449 section 10): `dpop_jkt` is the
    /// key's thumbprint ([`crate::DpopKey::thumbprint`]).
    pub fn dpop_jkt(self, jkt: impl Into<String>) -> Self {
        self.param("dpop_jkt", jkt)
    }

    /// Adds an extra parameter.
    pub fn param(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.extra.push((name.into(), value.into()));
        self
    }

    fn params(&self) -> Vec<(String, String)> {
        let mut params = vec![
            ("response_type".to_owned(), "code".to_owned()),
            ("client_id".to_owned(), self.client_id.clone()),
            ("redirect_uri".to_owned(), self.redirect_uri.clone()),
            ("scope".to_owned(), self.scopes.join(" ")),
            ("state".to_owned(), self.state.clone()),
            ("nonce".to_owned(), self.nonce.clone()),
            ("code_challenge".to_owned(), self.pkce.challenge().to_owned()),
            ("code_challenge_method".to_owned(), self.pkce.method().to_owned()),
        ];
        params.extend(self.resources.iter().map(|r| ("resource".to_owned(), r.clone())));
        params.extend(self.extra.iter().cloned());
        params
    }

    /// The URL to send the browser to.
    pub fn url(&self, authorization_endpoint: &str) -> String {
        with_query(authorization_endpoint, &self.params())
    }

    /// The pushed authorization request (RFC 9126 section 2.1): the same parameters, POSTed
    /// with client authentication. Retryable: an unused `request_uri` expires on its own.
    pub fn pushed(
        &self,
        par_endpoint: &str,
        client: &Client,
        issuer: Option<&str>,
        now: UnixTime,
    ) -> Result<FormRequest, Error> {
        pushed_authorization_request(par_endpoint, client, &self.params(), issuer, now)
    }

    /// The URL after a PAR: only `client_id` and the `request_uri` (RFC 9126 section 4).
    pub fn pushed_url(&self, authorization_endpoint: &str, request_uri: &str) -> String {
        with_query(
            authorization_endpoint,
            &[
                ("client_id".to_owned(), self.client_id.clone()),
                ("request_uri".to_owned(), request_uri.to_owned()),
            ],
        )
    }

    /// Checks the callback (a full redirect URL or its query) and returns the `code`.
    ///
    /// `expected_issuer`: the issuer, checked against RFC 9207 `iss` when present; with
    /// `iss_required` (the provider advertises `authorization_response_iss_parameter_supported`)
    /// it must be present. Mismatches are `invalid_callback`; an `error` in the callback is
    /// `oauth_error`.
    pub fn callback(
        &self,
        callback: &str,
        expected_issuer: &str,
        iss_required: bool,
    ) -> Result<Secret, Error> {
        let query = match callback.split_once('?') {
            Some((_, query)) => query.split('#').next().unwrap_or_default(),
            None if callback.contains('=') && !callback.contains("://") => callback,
            None => callback.split_once('#').map_or("", |(_, fragment)| fragment),
        };
        let mut code = None;
        let (mut state, mut iss, mut error, mut description, mut uri) = (None, None, None, None, None);
        for (name, value) in form_urlencoded::parse(query.as_bytes()) {
            let slot = match name.as_ref() {
                "code" => &mut code,
                "state" => &mut state,
                "iss" => &mut iss,
                "error" => &mut error,
                "error_description" => &mut description,
                "error_uri" => &mut uri,
                _ => continue,
            };
            if slot.is_some() {
                return Err(bad_callback(format!("the callback repeats \"{name}\"")));
            }
            *slot = Some(value.into_owned());
        }
        // RFC 9207: check iss first: an error response from a mixed-up provider is not ours.
        match iss.as_deref() {
            Some(found) if found != expected_issuer => {
                return Err(bad_callback("the callback's iss is not the expected issuer (RFC 9207)")
                    .with_claim("iss"));
            }
            None if iss_required => {
                return Err(bad_callback("the callback has no iss and the provider promises one (RFC 9207)")
                    .with_claim("iss"));
            }
            _ => {}
        }
        if state.as_deref() != Some(self.state.as_str()) {
            return Err(bad_callback("the callback's state is not this request's state").with_claim("state"));
        }
        if let Some(error) = error {
            let mut body = serde_json::Map::new();
            body.insert("error".into(), error.into());
            if let Some(d) = description {
                body.insert("error_description".into(), d.into());
            }
            if let Some(u) = uri {
                body.insert("error_uri".into(), u.into());
            }
            let json = serde_json::Value::Object(body).to_string();
            return Err(match OAuthError::from_response(302, json.as_bytes(), None) {
                Ok(oauth) => Error::from_oauth(oauth),
                Err(_) => bad_callback("the callback has an invalid error code"),
            });
        }
        code.filter(|c| !c.is_empty())
            .map(Secret::from)
            .ok_or_else(|| bad_callback("the callback has no code").with_claim("code"))
    }
}

fn bad_callback(message: impl Into<String>) -> Error {
    Error::new(ErrorKind::InvalidCallback, message.into())
}

fn with_query(endpoint: &str, params: &[(String, String)]) -> String {
    let mut url = endpoint.to_owned();
    let mut separator = if endpoint.contains('?') { '&' } else { '?' };
    for (name, value) in params {
        url.push(separator);
        url.push_str(&form_encode(name));
        url.push('=');
        url.push_str(&form_encode(value));
        separator = '&';
    }
    url
}

/// A pushed authorization request (RFC 9126 section 2.1) of any `params` (an authorization
/// request's parameters, made by the caller), POSTed to `par_endpoint` with `client`'s
/// authentication. `client_id` is placed where the authentication method wants it, and in
/// the body in any case (as in RFC 9126's own example). Retryable: an unused `request_uri`
/// expires on its own.
pub fn pushed_authorization_request(
    par_endpoint: &str,
    client: &Client,
    params: &[(String, String)],
    issuer: Option<&str>,
    now: UnixTime,
) -> Result<FormRequest, Error> {
    let mut request = FormRequest::post(par_endpoint, RetryClass::Retryable);
    for (name, value) in params {
        if name != "client_id" {
            request.param(name.as_str(), value.as_str());
        }
    }
    client.authenticate(&mut request, issuer, now)?;
    if request.get("client_id").is_none() {
        request.param("client_id", client.client_id.as_str());
    }
    Ok(request)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request() -> AuthorizationRequest {
        AuthorizationRequest::new("app", "http://127.0.0.1:8400/callback")
            .unwrap()
            .scope(["openid", "profile"])
    }

    #[test]
    fn url_carries_pkce_state_and_nonce() {
        let r = request();
        let url = r.url("https://op.example/authorize");
        assert!(url.starts_with("https://op.example/authorize?response_type=code&client_id=app&"));
        assert!(url.contains("scope=openid+profile"));
        assert!(url.contains(&format!("state={}", r.state)) && url.contains(&format!("nonce={}", r.nonce)));
        assert!(url.contains(&format!("code_challenge={}&code_challenge_method=S256", r.pkce.challenge())));
        assert_ne!(r.state, request().state, "fresh state per request");
        assert_eq!(
            r.pushed_url("https://op.example/authorize", "urn:ietf:params:oauth:request_uri:x"),
            "https://op.example/authorize?client_id=app&request_uri=urn%3Aietf%3Aparams%3Aoauth%3Arequest_uri%3Ax"
        );
    }

    #[test]
    fn callback_checks_state_and_iss() {
        let r = request();
        let iss = "https://op.example";
        let good =
            format!("http://127.0.0.1:8400/callback?code=C1&state={}&iss=https%3A%2F%2Fop.example", r.state);
        assert_eq!(r.callback(&good, iss, true).unwrap().expose(), "C1");
        let kind = |url: &str, required| r.callback(url, iss, required).unwrap_err().kind();
        assert_eq!(
            kind(&format!("?code=C1&state={}", r.state), true),
            ErrorKind::InvalidCallback,
            "iss missing"
        );
        assert!(
            r.callback(&format!("code=C1&state={}", r.state), iss, false).is_ok(),
            "bare query, iss optional"
        );
        assert_eq!(
            kind(&format!("?code=C1&state={}&iss=https://evil.example", r.state), false),
            ErrorKind::InvalidCallback
        );
        assert_eq!(kind("?code=C1&state=other", false), ErrorKind::InvalidCallback);
        assert_eq!(kind(&format!("?state={}", r.state), false), ErrorKind::InvalidCallback);
        assert_eq!(kind(&format!("?code=a&code=b&state={}", r.state), false), ErrorKind::InvalidCallback);
        let denied = format!("?error=access_denied&error_description=no&state={}", r.state);
        let e = r.callback(&denied, iss, false).unwrap_err();
        assert_eq!(e.oauth().map(|o| o.error.as_str()), Some("access_denied"));
    }

    #[test]
    fn pushed_request_is_authenticated_once() {
        let r = request();
        let client = Client::with_secret("app", "s");
        let pushed = r.pushed("https://op.example/par", &client, None, UnixTime::from_secs(0)).unwrap();
        assert!(pushed.header_value("authorization").is_some());
        assert_eq!(pushed.params.iter().filter(|(n, _)| n == "client_id").count(), 1);
        assert_eq!(pushed.get("code_challenge"), Some(r.pkce.challenge()));
        let public =
            r.pushed("https://op.example/par", &Client::public("app"), None, UnixTime::from_secs(0)).unwrap();
        assert_eq!(public.params.iter().filter(|(n, _)| n == "client_id").count(), 1);
    }
}
