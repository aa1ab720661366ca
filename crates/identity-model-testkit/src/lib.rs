//! An OpenID provider that a test starts in-process: real discovery, keys and tokens over real
//! HTTP on `127.0.0.1`, with handles to rotate keys, inject faults, count requests and mint any
//! token.
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! use identity_model_testkit::{Endpoint, Fault, TestProvider, Times};
//!
//! let provider = TestProvider::start().await?;
//! let issuer = provider.issuer(); // http://127.0.0.1:PORT
//! let token = provider.token().subject("alice").sign();
//! provider.inject(Endpoint::Jwks, Fault::Status(503), Times::Next(1));
//! assert_eq!(provider.requests(Endpoint::Jwks), 0);
//! # let _ = (issuer, token); Ok(()) }
//! ```
//!
//! Endpoints: discovery (OpenID and RFC 8414), `/jwks` (Cache-Control, ETag), `/token`
//! (client_credentials, authorization_code + PKCE, refresh_token, device_code, token exchange;
//! client_secret_basic, client_secret_post, client_secret_jwt, private_key_jwt, public clients),
//! `/authorize`, `/device_authorization` and `/device`, `/introspect`, `/revoke`, `/userinfo`.

mod client_auth;
mod config;
mod endpoints;
mod faults;
mod grants;
mod keys;
mod mint;
mod server;
mod state;

use std::fmt;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use identity_model_core::{Algorithm, SigningKey};
use tokio::sync::watch;

pub use config::{AuthMethod, ClientConfig, ProviderConfig, ResourceConfig, TokenFormat, UserConfig, grant};
pub use faults::{Endpoint, Fault, RecordedRequest, Times};
pub use keys::Rotation;
pub use mint::TokenBuilder;
pub use state::{AuthorizeDecision, AuthorizeRequest};

use crate::faults::lock;
use crate::grants::DeviceStatus;
use crate::keys::{KeyRing, parse_algorithm};
use crate::state::Shared;

/// A running provider. Dropping it stops the server.
pub struct TestProvider {
    shared: Arc<Shared>,
    addr: SocketAddr,
    shutdown: watch::Sender<bool>,
}

impl fmt::Debug for TestProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TestProvider").field("issuer", &self.shared.issuer).finish_non_exhaustive()
    }
}

/// Starts a [`TestProvider`] with a chosen configuration and address.
#[derive(Debug, Clone)]
pub struct TestProviderBuilder {
    config: ProviderConfig,
    addr: SocketAddr,
    issuer: Option<String>,
}

impl TestProviderBuilder {
    /// The configuration (clients, resources, users, keys, lifetimes).
    pub fn config(mut self, config: ProviderConfig) -> Self {
        self.config = config;
        self
    }

    /// The port on 127.0.0.1 (0, the default, picks a free one).
    pub fn port(mut self, port: u16) -> Self {
        self.addr.set_port(port);
        self
    }

    /// The address to listen on.
    pub fn addr(mut self, addr: SocketAddr) -> Self {
        self.addr = addr;
        self
    }

    /// The issuer to announce instead of `http://ADDRESS:PORT` (e.g. behind a proxy).
    pub fn issuer(mut self, issuer: impl Into<String>) -> Self {
        self.issuer = Some(issuer.into());
        self
    }

    /// Generates or loads the keys, binds, and serves in a background task of the current runtime.
    pub async fn start(self) -> std::io::Result<TestProvider> {
        let invalid = |message: String| std::io::Error::new(std::io::ErrorKind::InvalidInput, message);
        let keys = match &self.config.keys_file {
            Some(path) => KeyRing::from_private_jwks(&std::fs::read(path)?).map_err(invalid)?,
            None => {
                let algorithms = self
                    .config
                    .algorithms
                    .iter()
                    .map(|name| parse_algorithm(name))
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(invalid)?;
                if algorithms.is_empty() {
                    return Err(invalid("no signing algorithms configured".into()));
                }
                KeyRing::generate(&algorithms).map_err(invalid)?
            }
        };
        for resource in &self.config.resources {
            if let Some(alg) = &resource.alg {
                let alg = parse_algorithm(alg).map_err(invalid)?;
                if !keys.has_alg(alg) {
                    return Err(invalid(format!("resource {} wants {alg}, which has no key", resource.id)));
                }
            }
        }
        let listener = server::bind(self.addr).await?;
        let addr = listener.local_addr()?;
        let issuer = self.issuer.unwrap_or_else(|| format!("http://{addr}"));
        let shared = Arc::new(Shared::new(issuer, self.config, keys));
        let (shutdown, receiver) = watch::channel(false);
        tokio::spawn(server::serve(listener, server::router(Arc::clone(&shared)), receiver));
        Ok(TestProvider { shared, addr, shutdown })
    }
}

impl TestProvider {
    /// A provider with the default configuration on a free port of 127.0.0.1.
    pub async fn start() -> std::io::Result<TestProvider> {
        TestProvider::builder().start().await
    }

    /// A builder, for a configuration or a fixed port.
    pub fn builder() -> TestProviderBuilder {
        TestProviderBuilder {
            config: ProviderConfig::default(),
            addr: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            issuer: None,
        }
    }

    /// The issuer URL (`http://127.0.0.1:PORT`).
    pub fn issuer(&self) -> &str {
        &self.shared.issuer
    }

    /// The listening address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The full URL of an endpoint.
    pub fn url(&self, endpoint: Endpoint) -> String {
        self.shared.url(endpoint.path())
    }

    /// The configuration it serves.
    pub fn config(&self) -> &ProviderConfig {
        &self.shared.config
    }

    /// The default resource (audience of tokens that name none).
    pub fn default_audience(&self) -> &str {
        self.shared.default_resource()
    }

    /// The discovery document it serves.
    pub fn discovery_document(&self) -> serde_json::Value {
        endpoints::metadata::document(&self.shared)
    }

    /// The public JWK Set it serves.
    pub fn jwks(&self) -> serde_json::Value {
        let published = lock(&self.shared.keys).published();
        serde_json::from_slice(&published.body).unwrap_or_default()
    }

    /// The active signing key for `alg` (the first key when it has none for `alg`).
    pub fn signing_key(&self, alg: Option<Algorithm>) -> Arc<SigningKey> {
        lock(&self.shared.keys).signer(alg)
    }

    /// The kids of the active keys.
    pub fn active_kids(&self) -> Vec<String> {
        lock(&self.shared.keys).active().iter().filter_map(|k| k.kid().map(str::to_owned)).collect()
    }

    /// New keys for every algorithm; returns the new kids.
    pub fn rotate_keys(&self, rotation: Rotation) -> Vec<String> {
        lock(&self.shared.keys).rotate(rotation).unwrap_or_default()
    }

    /// Stops publishing the keys an overlapping rotation kept.
    pub fn retire_old_keys(&self) {
        lock(&self.shared.keys).retire();
    }

    /// Starts a token for hand-made claims and headers; see [`TokenBuilder`].
    pub fn token(&self) -> TokenBuilder {
        TokenBuilder::new(&self.shared)
    }

    /// Makes `endpoint` misbehave.
    pub fn inject(&self, endpoint: Endpoint, fault: Fault, times: Times) {
        self.shared.faults.inject(endpoint, fault, times);
    }

    /// Removes every injected fault.
    pub fn clear_faults(&self) {
        self.shared.faults.clear();
    }

    /// Requests received by `endpoint` (faulted ones included).
    pub fn requests(&self, endpoint: Endpoint) -> usize {
        self.shared.faults.count(endpoint)
    }

    /// Zeroes the counters and forgets recorded requests.
    pub fn reset_counters(&self) {
        self.shared.faults.reset_counts();
    }

    /// The most recent requests to `endpoint` (up to 256 over all endpoints), oldest first.
    pub fn recorded(&self, endpoint: Endpoint) -> Vec<RecordedRequest> {
        self.shared.faults.recorded(endpoint)
    }

    /// Decides authorization requests (default: approve as the first configured user).
    pub fn on_authorize(
        &self,
        decide: impl Fn(&AuthorizeRequest) -> Result<String, String> + Send + Sync + 'static,
    ) {
        *lock(&self.shared.authorize) = Some(Arc::new(decide));
    }

    /// Approves a pending device authorization as `sub`. False when no pending code matches.
    pub fn approve_device(&self, user_code: &str, sub: &str) -> bool {
        self.answer_device(user_code, DeviceStatus::Approved(sub.to_owned()))
    }

    /// Denies a pending device authorization. False when no pending code matches.
    pub fn deny_device(&self, user_code: &str) -> bool {
        self.answer_device(user_code, DeviceStatus::Denied)
    }

    fn answer_device(&self, user_code: &str, status: DeviceStatus) -> bool {
        let mut grants = lock(&self.shared.grants);
        match grants.device_by_user_code(user_code) {
            Some(device) if device.status == DeviceStatus::Pending => {
                device.status = status;
                true
            }
            _ => false,
        }
    }

    /// Moves the provider's clock forward (token lifetimes, code expiry, polling intervals).
    pub fn advance_clock(&self, by: Duration) {
        let secs = i64::try_from(by.as_secs()).unwrap_or(i64::MAX / 2);
        self.shared.clock_offset.fetch_add(secs, std::sync::atomic::Ordering::SeqCst);
    }

    /// Demands `nonce` in the DPoP proofs of token requests (RFC 9449 section 8): a proof
    /// without it is answered 400 `use_dpop_nonce` with a `DPoP-Nonce: nonce` header. `None`
    /// stops demanding. Token requests with a proof get tokens bound to its key (`cnf.jkt`,
    /// `token_type: DPoP`).
    pub fn require_dpop_nonce(&self, nonce: Option<&str>) {
        *crate::faults::lock(&self.shared.dpop_nonce) = nonce.map(str::to_owned);
    }

    /// Whether this provider would accept `token` as an active access token (introspection's view).
    pub fn is_active(&self, token: &str) -> bool {
        self.shared.active_access_token(token).is_some()
    }

    /// Stops serving (also done on drop).
    pub fn shutdown(&self) {
        let _ = self.shutdown.send(true);
    }
}

impl Drop for TestProvider {
    fn drop(&mut self) {
        self.shutdown();
    }
}
