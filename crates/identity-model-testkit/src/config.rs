//! What the provider serves: its clients, resources, users, keys and lifetimes. Readable from a
//! JSON file (`idm provider --config FILE`); every field has a default.

use std::fmt;
use std::path::PathBuf;

use serde::Deserialize;
use serde_json::{Map, Value};

/// A client's way of authenticating at the token, introspection and revocation endpoints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthMethod {
    /// HTTP Basic with the form-urlencoded id and secret (RFC 6749 section 2.3.1).
    ClientSecretBasic,
    /// `client_id` and `client_secret` in the form body.
    ClientSecretPost,
    /// A JWT assertion signed with the client secret (HS256).
    ClientSecretJwt,
    /// A JWT assertion signed with a key from the client's JWK Set.
    PrivateKeyJwt,
    /// A public client: `client_id` only (PKCE required for codes).
    None,
}

impl AuthMethod {
    /// The registered name.
    pub fn as_str(self) -> &'static str {
        match self {
            AuthMethod::ClientSecretBasic => "client_secret_basic",
            AuthMethod::ClientSecretPost => "client_secret_post",
            AuthMethod::ClientSecretJwt => "client_secret_jwt",
            AuthMethod::PrivateKeyJwt => "private_key_jwt",
            AuthMethod::None => "none",
        }
    }
}

/// The grant types a client may use.
pub mod grant {
    /// `client_credentials`.
    pub const CLIENT_CREDENTIALS: &str = "client_credentials";
    /// `authorization_code`.
    pub const AUTHORIZATION_CODE: &str = "authorization_code";
    /// `refresh_token`.
    pub const REFRESH_TOKEN: &str = "refresh_token";
    /// RFC 8628 device authorization grant.
    pub const DEVICE_CODE: &str = "urn:ietf:params:oauth:grant-type:device_code";
    /// RFC 8693 token exchange.
    pub const TOKEN_EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
}

/// A registered client.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientConfig {
    /// `client_id`.
    pub id: String,
    /// The secret for the secret-based methods.
    #[serde(default)]
    pub secret: Option<String>,
    /// Accepted authentication methods (any of them).
    pub auth_methods: Vec<AuthMethod>,
    /// Public keys for `private_key_jwt` (a JWK Set).
    #[serde(default)]
    pub jwks: Option<Value>,
    /// Allowed grant types.
    pub grant_types: Vec<String>,
    /// Scopes the client may ask for (and gets when it asks for none).
    #[serde(default)]
    pub scopes: Vec<String>,
    /// Registered redirect URIs (authorization code flow).
    #[serde(default)]
    pub redirect_uris: Vec<String>,
}

impl fmt::Debug for ClientConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientConfig")
            .field("id", &self.id)
            .field("secret", &self.secret.as_ref().map(|_| "[redacted]"))
            .field("auth_methods", &self.auth_methods)
            .field("grant_types", &self.grant_types)
            .field("scopes", &self.scopes)
            .field("redirect_uris", &self.redirect_uris)
            .finish_non_exhaustive()
    }
}

impl ClientConfig {
    /// A confidential client with a secret, for client credentials and token exchange.
    pub fn service(id: impl Into<String>, secret: impl Into<String>) -> ClientConfig {
        ClientConfig {
            id: id.into(),
            secret: Some(secret.into()),
            auth_methods: vec![
                AuthMethod::ClientSecretBasic,
                AuthMethod::ClientSecretPost,
                AuthMethod::ClientSecretJwt,
            ],
            jwks: None,
            grant_types: vec![grant::CLIENT_CREDENTIALS.into(), grant::TOKEN_EXCHANGE.into()],
            scopes: vec!["api:read".into(), "api:write".into()],
            redirect_uris: Vec::new(),
        }
    }

    /// A confidential client that authenticates with `private_key_jwt`; `jwks` holds its public keys.
    pub fn private_key_jwt(id: impl Into<String>, jwks: Value) -> ClientConfig {
        ClientConfig {
            secret: None,
            auth_methods: vec![AuthMethod::PrivateKeyJwt],
            jwks: Some(jwks),
            ..ClientConfig::service(id, "")
        }
    }

    /// A public client (no secret) for the authorization code flow with PKCE, refresh tokens and
    /// the device flow.
    pub fn public_app(id: impl Into<String>, redirect_uri: impl Into<String>) -> ClientConfig {
        ClientConfig {
            id: id.into(),
            secret: None,
            auth_methods: vec![AuthMethod::None],
            jwks: None,
            grant_types: vec![
                grant::AUTHORIZATION_CODE.into(),
                grant::REFRESH_TOKEN.into(),
                grant::DEVICE_CODE.into(),
            ],
            scopes: ["openid", "profile", "email", "offline_access", "api:read"].map(String::from).to_vec(),
            redirect_uris: vec![redirect_uri.into()],
        }
    }

    /// Whether the client may use `grant_type`.
    pub fn allows_grant(&self, grant_type: &str) -> bool {
        self.grant_types.iter().any(|g| g == grant_type)
    }
}

/// What access tokens for a resource look like.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenFormat {
    /// RFC 9068 JWT access tokens (`typ: at+jwt`).
    Jwt,
    /// Random strings, answered by introspection.
    Opaque,
}

/// A protected resource (the `aud` of its access tokens).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResourceConfig {
    /// The resource identifier (`resource` parameter, token `aud`).
    pub id: String,
    /// Token format.
    pub format: TokenFormat,
    /// Signing algorithm for JWT access tokens (`RS256`, `ES256` or `EdDSA`); the provider's
    /// default when absent.
    #[serde(default)]
    pub alg: Option<String>,
}

/// An end user that the authorize and device endpoints sign in.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserConfig {
    /// `sub`.
    pub sub: String,
    /// Claims returned by userinfo and put in ID tokens (e.g. `name`, `email`).
    #[serde(default)]
    pub claims: Map<String, Value>,
}

/// The whole provider configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProviderConfig {
    /// Registered clients.
    pub clients: Vec<ClientConfig>,
    /// Protected resources; the first one is the default audience.
    pub resources: Vec<ResourceConfig>,
    /// Users; the first one is signed in by the automatic authorize endpoint.
    pub users: Vec<UserConfig>,
    /// Algorithms to generate signing keys for (`RS256`, `ES256`, `EdDSA`, also `PS256`,
    /// `ES384`, ...); the first signs ID tokens and JWT access tokens unless a resource says
    /// otherwise.
    pub algorithms: Vec<String>,
    /// A private JWK Set to sign with instead of generated keys.
    pub keys_file: Option<PathBuf>,
    /// Access token lifetime, seconds.
    pub access_token_ttl: u64,
    /// ID token lifetime, seconds.
    pub id_token_ttl: u64,
    /// Refresh token lifetime, seconds.
    pub refresh_token_ttl: u64,
    /// Whether each refresh returns a new refresh token and retires the old one.
    pub rotate_refresh_tokens: bool,
    /// `Cache-Control: max-age` of the key set, seconds.
    pub jwks_max_age: u64,
    /// Device codes: lifetime and polling interval, seconds.
    pub device_code_ttl: u64,
    /// Minimum seconds between device-code polls (`slow_down` when faster).
    pub device_poll_interval: u64,
}

impl Default for ProviderConfig {
    fn default() -> Self {
        ProviderConfig {
            clients: vec![
                ClientConfig::service("demo-service", "demo-secret"),
                ClientConfig::public_app("demo-app", "http://127.0.0.1:8400/callback"),
            ],
            resources: vec![
                ResourceConfig { id: "https://api.example".into(), format: TokenFormat::Jwt, alg: None },
                ResourceConfig {
                    id: "https://opaque.example".into(),
                    format: TokenFormat::Opaque,
                    alg: None,
                },
            ],
            users: vec![UserConfig {
                sub: "alice".into(),
                claims: serde_json::json!({
                    "name": "Alice Example",
                    "email": "alice@example.com",
                    "email_verified": true
                })
                .as_object()
                .cloned()
                .unwrap_or_default(),
            }],
            algorithms: vec!["RS256".into(), "ES256".into(), "EdDSA".into()],
            keys_file: None,
            access_token_ttl: 300,
            id_token_ttl: 300,
            refresh_token_ttl: 86_400,
            rotate_refresh_tokens: true,
            jwks_max_age: 300,
            device_code_ttl: 600,
            device_poll_interval: 5,
        }
    }
}

impl ProviderConfig {
    /// Reads a JSON configuration; absent fields keep their defaults.
    pub fn from_json(bytes: &[u8]) -> Result<ProviderConfig, String> {
        serde_json::from_slice(bytes).map_err(|e| format!("invalid provider configuration: {e}"))
    }

    /// Adds (or replaces) a client.
    pub fn client(mut self, client: ClientConfig) -> Self {
        self.clients.retain(|c| c.id != client.id);
        self.clients.push(client);
        self
    }

    /// Adds (or replaces) a resource.
    pub fn resource(mut self, id: impl Into<String>, format: TokenFormat) -> Self {
        let id = id.into();
        self.resources.retain(|r| r.id != id);
        self.resources.push(ResourceConfig { id, format, alg: None });
        self
    }

    pub(crate) fn find_client(&self, id: &str) -> Option<&ClientConfig> {
        self.clients.iter().find(|c| c.id == id)
    }

    pub(crate) fn find_resource(&self, id: &str) -> Option<&ResourceConfig> {
        self.resources.iter().find(|r| r.id == id)
    }

    pub(crate) fn find_user(&self, sub: &str) -> Option<&UserConfig> {
        self.users.iter().find(|u| u.sub == sub)
    }
}
