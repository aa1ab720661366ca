//! `TokenManager`: client-credentials tokens for a service, cached and refreshed before they
//! expire, one request for any number of concurrent callers (the Rust `TokenManager`).

use identity_model::{Client, DiscoveryPolicy, Error, blocking};
use pyo3::prelude::*;

use crate::dict::JsonDict;
use crate::errors::{raise, to_py};

/// Tokens for `client_id` from `issuer`'s token endpoint (found through discovery).
#[pyclass(frozen, subclass, module = "identity_model._native")]
pub(crate) struct TokenManager {
    inner: blocking::TokenManager,
}

#[pymethods]
impl TokenManager {
    /// `TokenManager(issuer, client_id, client_secret, scopes=(), resources=(), *,
    /// allow_http_on_loopback=False)`: the secret is sent with HTTP Basic authentication.
    #[new]
    #[pyo3(signature = (issuer, client_id, client_secret, scopes=Vec::new(), resources=Vec::new(), *,
                        allow_http_on_loopback=false))]
    fn new(
        py: Python<'_>,
        issuer: String,
        client_id: String,
        client_secret: String,
        scopes: Vec<String>,
        resources: Vec<String>,
        allow_http_on_loopback: bool,
    ) -> PyResult<Self> {
        let built = (|| -> Result<blocking::TokenManager, Error> {
            let mut policy = DiscoveryPolicy::default();
            if allow_http_on_loopback {
                policy = policy.allow_http_on_loopback();
            }
            let authority = identity_model::Authority::builder(issuer).policy(policy).build()?;
            let client = identity_model::TokenClient::builder(Client::with_secret(client_id, client_secret))
                .authority(&authority)
                .build()?;
            let scopes: Vec<&str> = scopes.iter().map(String::as_str).collect();
            let resources: Vec<&str> = resources.iter().map(String::as_str).collect();
            Ok(blocking::TokenManager::new(identity_model::TokenManager::new(client, &scopes, &resources)))
        })();
        built.map(|inner| TokenManager { inner }).map_err(|e| to_py(py, &e))
    }

    /// A valid token response (`access_token`, `token_type`, `expires_in`, ...) as a `dict`:
    /// the cached one, or a new one (one request however many threads ask at once).
    fn get<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        match py.detach(|| self.inner.get().map(|response| JsonDict::token_response(&response))) {
            Ok(response) => response.into_pyobject(py),
            Err(e) => Err(to_py(py, &e)),
        }
    }

    /// An asyncio future of the same, on the running loop (`TokenManager.get_async` in
    /// Python wraps it in a coroutine).
    fn get_future<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let manager = self.inner.as_async().clone();
        pyo3_async_runtimes::tokio::future_into_py(py, async move {
            match manager.get().await {
                Ok(response) => Ok(JsonDict::token_response(&response)),
                Err(e) => Err(raise(&e)),
            }
        })
    }

    /// Forgets `access_token` when it is the cached one (after a 401 with it).
    fn invalidate(&self, access_token: &str) {
        self.inner.invalidate(access_token);
    }
}
