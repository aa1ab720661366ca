//! The blocking API: the same [`crate::Authority`], for code without an async runtime.
//!
//! Calls forward to the async implementation on one background runtime shared by all blocking
//! authorities (the way reqwest's `blocking` module works), except the hot path: with fresh
//! keys cached, `validate` runs the same hot path as the async API on the caller's thread.
//! Calls that must wait are refused with `invalid_usage` inside an async runtime (they would
//! block a worker).

use identity_model_core::{DiscoveryDocument, Error, KeySet, ValidToken};

use crate::authority::Begun;
use crate::runtime::block_on;

/// A blocking handle on an [`crate::Authority`]. Cheap to clone; clones share keys and stats.
#[derive(Debug, Clone)]
pub struct Authority {
    inner: crate::Authority,
}

impl Authority {
    /// Wraps an async authority.
    pub fn new(authority: crate::Authority) -> Self {
        Authority { inner: authority }
    }

    /// The async authority underneath.
    pub fn as_async(&self) -> &crate::Authority {
        &self.inner
    }

    /// Validates `token`, fetching keys when needed (blocking the calling thread).
    pub fn validate(&self, token: &str) -> Result<ValidToken, Error> {
        // The same pipeline as the async API (cache, hot path, slow path, cache fed, metrics),
        // on the caller's thread: only the wait for keys differs. Refresh-ahead and the
        // staleness bound apply alike (background refreshes run on the background runtime).
        let started = crate::telemetry::Started::now();
        let result = match self.inner.begin(token, |authority| authority.check(token)) {
            Begun::Done(result) => result,
            Begun::Pending(need, before) => {
                self.inner.finish_pending(token, before, block_on(self.inner.resolve(need)))
            }
        };
        self.inner.record(started, &result);
        result
    }

    /// Fetches and checks the discovery document.
    pub fn discover(&self) -> Result<DiscoveryDocument, Error> {
        block_on(self.inner.discover())
    }

    /// The current key set, fetched when none is cached.
    pub fn keys(&self) -> Result<std::sync::Arc<KeySet>, Error> {
        block_on(self.inner.keys())
    }

    /// Counters.
    pub fn stats(&self) -> &crate::Stats {
        self.inner.stats()
    }
}

/// A blocking handle on a [`crate::TokenClient`]: the same requests, on the background runtime.
#[derive(Debug, Clone)]
pub struct TokenClient {
    inner: crate::TokenClient,
}

impl TokenClient {
    /// Wraps an async token client.
    pub fn new(client: crate::TokenClient) -> Self {
        TokenClient { inner: client }
    }

    /// The async client underneath.
    pub fn as_async(&self) -> &crate::TokenClient {
        &self.inner
    }

    fn block<T: Send>(
        &self,
        future: impl std::future::Future<Output = Result<T, Error>> + Send,
    ) -> Result<T, Error> {
        block_on(future)
    }

    /// Sends a token request (any grant).
    pub fn request_token(
        &self,
        request: &identity_model_core::TokenRequest,
    ) -> Result<identity_model_core::TokenResponse, Error> {
        self.block(self.inner.request_token(request))
    }

    /// Client credentials.
    pub fn client_credentials(
        &self,
        scopes: &[&str],
        resources: &[&str],
    ) -> Result<identity_model_core::TokenResponse, Error> {
        self.block(self.inner.client_credentials(scopes, resources))
    }

    /// Uses a refresh token (sent once).
    pub fn refresh(
        &self,
        refresh_token: impl Into<identity_model_core::Secret>,
    ) -> Result<identity_model_core::TokenResponse, Error> {
        let refresh_token: identity_model_core::Secret = refresh_token.into();
        self.block(self.inner.refresh(refresh_token))
    }

    /// Token exchange (sent once).
    pub fn exchange(
        &self,
        exchange: identity_model_core::TokenExchange,
    ) -> Result<identity_model_core::TokenResponse, Error> {
        self.block(self.inner.exchange(exchange))
    }

    /// The authorization URL for `request`.
    pub fn authorization_url(
        &self,
        request: &identity_model_core::AuthorizationRequest,
    ) -> Result<String, Error> {
        self.block(self.inner.authorization_url(request))
    }

    /// Pushes `request` (PAR) and returns the authorization URL with its `request_uri`.
    pub fn push_authorization(
        &self,
        request: &identity_model_core::AuthorizationRequest,
    ) -> Result<String, Error> {
        self.block(self.inner.push_authorization(request))
    }

    /// Checks the callback, redeems the code and validates the ID token.
    pub fn redeem(
        &self,
        request: &identity_model_core::AuthorizationRequest,
        callback: &str,
    ) -> Result<identity_model_core::TokenResponse, Error> {
        self.block(self.inner.redeem(request, callback))
    }

    /// Starts the device flow.
    pub fn device_authorization(
        &self,
        scopes: &[&str],
        resources: &[&str],
    ) -> Result<identity_model_core::DeviceAuthorization, Error> {
        self.block(self.inner.device_authorization(scopes, resources))
    }

    /// Polls until the user approves, denies, or the code expires (blocking the thread).
    pub fn poll_device(
        &self,
        authorization: &identity_model_core::DeviceAuthorization,
    ) -> Result<identity_model_core::TokenResponse, Error> {
        self.block(self.inner.poll_device(authorization))
    }

    /// Introspects a token.
    pub fn introspect(
        &self,
        token: &str,
        hint: Option<&str>,
    ) -> Result<identity_model_core::Introspection, Error> {
        self.block(self.inner.introspect(token, hint))
    }

    /// Revokes a token.
    pub fn revoke(&self, token: &str, hint: Option<&str>) -> Result<(), Error> {
        self.block(self.inner.revoke(token, hint))
    }

    /// Fetches userinfo.
    pub fn userinfo(
        &self,
        access_token: &str,
        expected_subject: Option<&str>,
    ) -> Result<identity_model_core::UserInfo, Error> {
        self.block(self.inner.userinfo(access_token, expected_subject))
    }
}

/// A blocking handle on a [`crate::TokenManager`]: cached tokens without an async runtime
/// (background refreshes run on the shared background runtime).
#[derive(Debug, Clone)]
pub struct TokenManager {
    inner: crate::TokenManager,
}

impl TokenManager {
    /// Wraps an async token manager.
    pub fn new(manager: crate::TokenManager) -> Self {
        TokenManager { inner: manager }
    }

    /// The async token manager underneath.
    pub fn as_async(&self) -> &crate::TokenManager {
        &self.inner
    }

    /// A valid token for the default scopes and resources.
    pub fn get(&self) -> Result<std::sync::Arc<identity_model_core::TokenResponse>, Error> {
        block_on(self.inner.get())
    }

    /// Forgets `access_token` when it is the cached one.
    pub fn invalidate(&self, access_token: &str) {
        self.inner.invalidate(access_token);
    }

    /// Counters.
    pub fn stats(&self) -> &crate::TokenManagerStats {
        self.inner.stats()
    }
}
