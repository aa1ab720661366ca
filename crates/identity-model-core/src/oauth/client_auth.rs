//! Client authentication at the token, PAR, introspection and revocation endpoints:
//! client_secret_basic, client_secret_post, client_secret_jwt, private_key_jwt (RFC 7523),
//! tls_client_auth (RFC 8705) and public clients.

use std::fmt;
use std::sync::Arc;

use serde_json::{Map, json};

use crate::error::{Error, ErrorKind};
use crate::jose::algorithm::{Algorithm, KeyFamily};
use crate::jose::base64url;
use crate::jose::signing::SigningKey;
use crate::jwt::claims::UnixTime;
use crate::oauth::form_request::{FormRequest, form_encode};
use crate::oauth::secret::Secret;

/// `client_assertion_type` for JWT client authentication (RFC 7523 section 2.2).
pub const JWT_BEARER_ASSERTION: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// How long a client assertion lives: long enough to cross a slow network, short enough that
/// a captured one is useless soon.
pub const ASSERTION_LIFETIME_SECS: i64 = 60;

/// How the client proves who it is.
#[derive(Clone)]
pub enum ClientAuth {
    /// A public client: `client_id` in the body, nothing else.
    None,
    /// `client_secret_basic` (the default for a secret): id and secret form-encoded, then
    /// HTTP Basic (RFC 6749 section 2.3.1).
    SecretBasic(Secret),
    /// `client_secret_post`: id and secret as form parameters.
    SecretPost(Secret),
    /// `client_secret_jwt`: an assertion MACed with the secret (HS256 unless given).
    SecretJwt(Secret, Algorithm),
    /// `private_key_jwt`: an assertion signed with the client's key (RS256, PS256, ES256, EdDSA...).
    PrivateKeyJwt(Arc<SigningKey>),
    /// `tls_client_auth` / `self_signed_tls_client_auth` (RFC 8705): the certificate is
    /// presented by the TLS layer; `client_id` goes in the body.
    TlsClientAuth,
}

impl fmt::Debug for ClientAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.method())?;
        match self {
            ClientAuth::PrivateKeyJwt(key) => write!(f, "({}, kid {:?})", key.alg(), key.kid()),
            ClientAuth::SecretJwt(_, alg) => write!(f, "({alg}, [redacted])"),
            ClientAuth::SecretBasic(_) | ClientAuth::SecretPost(_) => f.write_str("([redacted])"),
            ClientAuth::None | ClientAuth::TlsClientAuth => Ok(()),
        }
    }
}

impl ClientAuth {
    /// The registered method name (`token_endpoint_auth_method`).
    pub fn method(&self) -> &'static str {
        match self {
            ClientAuth::None => "none",
            ClientAuth::SecretBasic(_) => "client_secret_basic",
            ClientAuth::SecretPost(_) => "client_secret_post",
            ClientAuth::SecretJwt(..) => "client_secret_jwt",
            ClientAuth::PrivateKeyJwt(_) => "private_key_jwt",
            ClientAuth::TlsClientAuth => "tls_client_auth",
        }
    }

    /// Whether the method needs a client certificate, so the mTLS endpoint aliases apply.
    pub fn uses_mtls(&self) -> bool {
        matches!(self, ClientAuth::TlsClientAuth)
    }
}

/// Which `aud` a client assertion carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AssertionAudience {
    /// The issuer identifier (draft-ietf-oauth-rfc7523bis; accepted by current providers and
    /// immune to the audience confusion of multi-endpoint values). Falls back to the endpoint
    /// when the issuer is not known.
    #[default]
    Issuer,
    /// The URL of the endpoint being called (RFC 7523 section 3, older providers).
    Endpoint,
}

/// A client: its id and how it authenticates.
#[derive(Clone, Debug)]
pub struct Client {
    /// `client_id`.
    pub client_id: String,
    /// The authentication method and its credential.
    pub auth: ClientAuth,
    /// `aud` of client assertions.
    pub assertion_audience: AssertionAudience,
}

impl Client {
    /// A client with `auth`.
    pub fn new(client_id: impl Into<String>, auth: ClientAuth) -> Self {
        Client { client_id: client_id.into(), auth, assertion_audience: AssertionAudience::default() }
    }

    /// A confidential client with a secret, sent with HTTP Basic (the default method).
    pub fn with_secret(client_id: impl Into<String>, secret: impl Into<Secret>) -> Self {
        Client::new(client_id, ClientAuth::SecretBasic(secret.into()))
    }

    /// A public client (no credential).
    pub fn public(client_id: impl Into<String>) -> Self {
        Client::new(client_id, ClientAuth::None)
    }

    /// A client authenticating with a private key (`private_key_jwt`).
    pub fn with_key(client_id: impl Into<String>, key: SigningKey) -> Result<Self, Error> {
        if key.alg().key_family() == KeyFamily::Symmetric {
            return Err(Error::new(
                ErrorKind::InvalidUsage,
                "private_key_jwt needs an asymmetric key; use ClientAuth::SecretJwt for a shared secret",
            ));
        }
        Ok(Client::new(client_id, ClientAuth::PrivateKeyJwt(Arc::new(key))))
    }

    /// Sets the `aud` of client assertions.
    pub fn assertion_audience(mut self, audience: AssertionAudience) -> Self {
        self.assertion_audience = audience;
        self
    }

    /// Adds this client's authentication to `request`: a Basic header, form parameters or a
    /// fresh assertion (`jti` random, `exp` a minute after `now`).
    pub fn authenticate(
        &self,
        request: &mut FormRequest,
        issuer: Option<&str>,
        now: UnixTime,
    ) -> Result<(), Error> {
        match &self.auth {
            ClientAuth::None | ClientAuth::TlsClientAuth => {
                request.param("client_id", self.client_id.as_str());
            }
            ClientAuth::SecretBasic(secret) => {
                let pair = format!("{}:{}", form_encode(&self.client_id), form_encode(secret.expose()));
                request.header("Authorization", format!("Basic {}", standard_base64(pair.as_bytes())));
            }
            ClientAuth::SecretPost(secret) => {
                request.param("client_id", self.client_id.as_str());
                request.param("client_secret", secret.expose());
            }
            ClientAuth::SecretJwt(secret, alg) => {
                if alg.key_family() != KeyFamily::Symmetric {
                    return Err(Error::new(
                        ErrorKind::InvalidUsage,
                        "client_secret_jwt needs an HS* algorithm",
                    ));
                }
                let mut jwk = Map::new();
                jwk.insert("kty".into(), "oct".into());
                jwk.insert("k".into(), base64url::encode(secret.expose().as_bytes()).into());
                let key = SigningKey::from_jwk(&jwk, Some(*alg))?;
                self.add_assertion(request, &key, issuer, now)?;
            }
            ClientAuth::PrivateKeyJwt(key) => self.add_assertion(request, key, issuer, now)?,
        }
        Ok(())
    }

    fn add_assertion(
        &self,
        request: &mut FormRequest,
        key: &SigningKey,
        issuer: Option<&str>,
        now: UnixTime,
    ) -> Result<(), Error> {
        let audience = match (self.assertion_audience, issuer) {
            (AssertionAudience::Issuer, Some(issuer)) => issuer.to_owned(),
            _ => request.url.clone(),
        };
        let claims = json!({
            "iss": self.client_id,
            "sub": self.client_id,
            "aud": audience,
            "jti": random_id()?,
            "iat": now.as_secs(),
            "exp": now.as_secs() + ASSERTION_LIFETIME_SECS,
        });
        let assertion = key.sign_jwt(Some("JWT"), &claims)?;
        request.param("client_id", self.client_id.as_str());
        request.param("client_assertion_type", JWT_BEARER_ASSERTION);
        request.param("client_assertion", assertion);
        Ok(())
    }
}

/// 16 random bytes, base64url: `jti`, `state`, `nonce`.
pub fn random_id() -> Result<String, Error> {
    let mut bytes = [0u8; 16];
    aws_lc_rs::rand::fill(&mut bytes)
        .map_err(|_| Error::new(ErrorKind::InvalidUsage, "the system random generator failed"))?;
    Ok(base64url::encode(bytes))
}

fn standard_base64(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jose::key_set::KeySet;
    use crate::jwt::validation::Validation;
    use crate::oauth::form_request::RetryClass;
    use serde_json::Value;

    fn request() -> FormRequest {
        FormRequest::post("https://op.example/token", RetryClass::Retryable)
    }

    #[test]
    fn basic_form_encodes_id_and_secret_first() {
        let client = Client::with_secret("my client:1", "p@ss word/+");
        let mut r = request();
        client.authenticate(&mut r, None, UnixTime::from_secs(0)).unwrap();
        let header = r.header_value("authorization").unwrap();
        let decoded = {
            use base64::Engine as _;
            base64::engine::general_purpose::STANDARD.decode(&header["Basic ".len()..]).unwrap()
        };
        assert_eq!(String::from_utf8(decoded).unwrap(), "my+client%3A1:p%40ss+word%2F%2B");
        assert!(r.params.is_empty(), "no credentials in the body");
        assert!(!format!("{client:?}").contains("p@ss"));
    }

    #[test]
    fn post_puts_credentials_in_the_body() {
        let client = Client::new("c", ClientAuth::SecretPost("s".into()));
        let mut r = request();
        client.authenticate(&mut r, None, UnixTime::from_secs(0)).unwrap();
        assert_eq!((r.get("client_id"), r.get("client_secret")), (Some("c"), Some("s")));
        assert!(r.header_value("authorization").is_none());
    }

    #[test]
    fn assertions_are_short_lived_and_unique() {
        for alg in [Algorithm::RS256, Algorithm::PS256, Algorithm::ES256, Algorithm::EdDSA] {
            let key = SigningKey::generate(alg).unwrap();
            let keys = KeySet::from_jwks([key.verification_jwk().into()]);
            let client = Client::with_key("svc", key).unwrap();
            let now = UnixTime::from_secs(1_700_000_000);
            let mut first = request();
            client.authenticate(&mut first, Some("https://op.example"), now).unwrap();
            let mut second = request();
            client.authenticate(&mut second, Some("https://op.example"), now).unwrap();
            assert_eq!(first.get("client_assertion_type"), Some(JWT_BEARER_ASSERTION));
            let rules = Validation::new("svc").audience("https://op.example").require("jti");
            let a = rules.validate(first.get("client_assertion").unwrap(), &keys, now).unwrap();
            let b = rules.validate(second.get("client_assertion").unwrap(), &keys, now).unwrap();
            assert_eq!(a.claims.sub(), Some("svc"));
            assert_ne!(a.claims.jti(), b.claims.jti(), "{alg}: jti must be unique");
            let lifetime = a.claims.exp().unwrap().as_secs_f64() - now.as_secs() as f64;
            assert!(lifetime > 0.0 && lifetime <= 60.0, "{alg}: {lifetime}");
        }
        assert!(Client::with_key("svc", SigningKey::generate(Algorithm::HS256).unwrap()).is_err());
    }

    #[test]
    fn assertion_audience_can_be_the_endpoint() {
        let client = Client::new(
            "svc",
            ClientAuth::SecretJwt("0123456789abcdef0123456789abcdef".into(), Algorithm::HS256),
        )
        .assertion_audience(AssertionAudience::Endpoint);
        let mut r = request();
        client.authenticate(&mut r, Some("https://op.example"), UnixTime::from_secs(10)).unwrap();
        let payload = r.get("client_assertion").unwrap().split('.').nth(1).unwrap();
        let claims: Value = serde_json::from_slice(&base64url::decode(payload.as_bytes()).unwrap()).unwrap();
        assert_eq!(claims["aud"], "https://op.example/token");
        let mut public = request();
        Client::public("app").authenticate(&mut public, None, UnixTime::from_secs(0)).unwrap();
        assert_eq!(public.params, vec![("client_id".to_owned(), "app".to_owned())]);
    }
}
