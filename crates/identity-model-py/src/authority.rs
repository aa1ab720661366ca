//! `Authority`: an issuer trusted through discovery, for Python. `validate` runs the Rust
//! hot path on the calling thread with the GIL released (and, when keys must be fetched,
//! waits on the library's background runtime, still without the GIL); `validate_async`
//! returns an awaitable driven by the library's async core on a tokio runtime, usable from
//! any event loop.

use std::time::Duration;

use identity_model::{
    AlgorithmSet, DiscoveryPolicy, Error, ErrorKind, MetadataKind, Settings, Validation, blocking,
};
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::dict::JsonDict;
use crate::errors::{raise, to_py};
use crate::id_tokens::IdTokenChecks;
use crate::runtime::wait;

/// An issuer whose tokens are validated with keys found through its discovery document,
/// cached, refreshed before they expire and refetched once when a token names an unknown key.
#[pyclass(frozen, subclass, module = "identity_model._native")]
pub(crate) struct Authority {
    inner: blocking::Authority,
    /// The rules tokens are validated by (the base of ID token rules).
    rules: Validation,
}

/// `str` or a list of them.
#[derive(FromPyObject)]
pub(crate) enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    pub(crate) fn into_vec(self) -> Vec<String> {
        match self {
            OneOrMany::One(one) => vec![one],
            OneOrMany::Many(many) => many,
        }
    }
}

/// The algorithm names as a set; `None` keeps every asymmetric algorithm.
pub(crate) fn algorithm_set(names: Option<Vec<String>>) -> Result<Option<AlgorithmSet>, Error> {
    let Some(names) = names else { return Ok(None) };
    let mut set = AlgorithmSet::empty();
    for name in names {
        let alg = name.parse::<identity_model::Algorithm>().map_err(|_| {
            Error::new(ErrorKind::InvalidConfig, format!("unknown or refused algorithm {name:?}"))
        })?;
        set.insert(alg);
    }
    Ok(Some(set))
}

/// Validation rules for `issuers` from the keyword arguments shared by both classes.
pub(crate) fn rules(
    issuers: Vec<String>,
    audience: Option<OneOrMany>,
    algorithms: Option<Vec<String>>,
    leeway: Option<f64>,
    token_type: Option<&str>,
) -> Result<Validation, Error> {
    let mut rules = match issuers.as_slice() {
        [one] => Validation::new(one.clone()),
        _ => Validation::with_issuers(issuers),
    };
    for audience in audience.map(OneOrMany::into_vec).unwrap_or_default() {
        rules = rules.audience(audience);
    }
    if let Some(set) = algorithm_set(algorithms)? {
        rules = rules.algorithms(set);
    }
    if let Some(secs) = leeway {
        if !secs.is_finite() || !(0.0..=86_400.0).contains(&secs) {
            return Err(Error::new(ErrorKind::InvalidConfig, "leeway must be between 0 and 86400 seconds"));
        }
        rules = rules.leeway(Duration::from_secs_f64(secs));
    }
    if let Some(typ) = token_type {
        rules = rules.token_type(typ);
    }
    if let Some(problem) = rules.config_problem() {
        return Err(problem);
    }
    Ok(rules)
}

#[pymethods]
impl Authority {
    /// `Authority(issuer, audience, *, algorithms=None, leeway=None, token_type=None,
    /// allow_http_on_loopback=False, metadata="openid", max_staleness=None)`.
    ///
    /// `audience` is required (a `str` or a list; a token must name one of them).
    /// `algorithms` defaults to every asymmetric algorithm (HS* only when listed).
    /// `metadata` is `"openid"` (OpenID Connect Discovery) or `"oauth"` (RFC 8414).
    /// Settings come from the environment (`HTTP_TIMEOUT`, `JWKS_CACHE_TTL`, ...).
    #[new]
    #[pyo3(signature = (issuer, audience, *, algorithms=None, leeway=None, token_type=None,
                        allow_http_on_loopback=false, metadata="openid", max_staleness=None))]
    #[allow(clippy::too_many_arguments)] // Python keyword arguments
    fn new(
        py: Python<'_>,
        issuer: String,
        audience: Option<OneOrMany>,
        algorithms: Option<Vec<String>>,
        leeway: Option<f64>,
        token_type: Option<String>,
        allow_http_on_loopback: bool,
        metadata: &str,
        max_staleness: Option<f64>,
    ) -> PyResult<Self> {
        let built = (|| -> Result<(blocking::Authority, Validation), Error> {
            let rules = rules(vec![issuer.clone()], audience, algorithms, leeway, token_type.as_deref())?;
            let kept = rules.clone();
            let settings = Settings::from_env().map_err(|e| {
                let problems: Vec<String> =
                    e.problems.iter().map(|p| format!("{}: {}", p.variable, p.reason)).collect();
                Error::new(ErrorKind::InvalidConfig, problems.join("; "))
            })?;
            let metadata = match metadata {
                "openid" => MetadataKind::OpenId,
                "oauth" => MetadataKind::OAuth,
                other => {
                    return Err(Error::new(
                        ErrorKind::InvalidConfig,
                        format!("metadata {other:?} is neither \"openid\" nor \"oauth\""),
                    ));
                }
            };
            let mut policy = DiscoveryPolicy::default();
            if allow_http_on_loopback {
                policy = policy.allow_http_on_loopback();
            }
            let mut builder = identity_model::Authority::builder(issuer)
                .rules(rules)
                .metadata(metadata)
                .policy(policy)
                .settings(settings);
            if let Some(secs) = max_staleness {
                if !secs.is_finite() || secs < 0.0 {
                    return Err(Error::new(
                        ErrorKind::InvalidConfig,
                        "max_staleness must be 0 or more seconds",
                    ));
                }
                builder = builder.max_staleness(Duration::from_secs_f64(secs));
            }
            Ok((blocking::Authority::new(builder.build()?), kept))
        })();
        built.map(|(inner, rules)| Authority { inner, rules }).map_err(|e| to_py(py, &e))
    }

    /// The issuer.
    #[getter]
    fn issuer(&self) -> &str {
        self.inner.as_async().issuer()
    }

    /// Validates `token` and returns its claims (a `dict`); raises a
    /// `TokenValidationException` subclass (or `NetworkException` when keys cannot be had).
    fn validate<'py>(&self, py: Python<'py>, token: &str) -> PyResult<Bound<'py, PyAny>> {
        let result = py.detach(|| self.inner.validate(token).map(|valid| JsonDict::claims(&valid)));
        match result {
            Ok(claims) => claims.into_pyobject(py),
            Err(e) => Err(to_py(py, &e)),
        }
    }

    /// An asyncio future of the same, on the running event loop (`Authority.validate_async`
    /// in Python wraps it in a coroutine, so that it can be created outside a loop).
    fn validate_future<'py>(&self, py: Python<'py>, token: String) -> PyResult<Bound<'py, PyAny>> {
        let authority = self.inner.as_async().clone();
        pyo3_async_runtimes::tokio::future_into_py(py, async move {
            match authority.validate(&token).await {
                Ok(valid) => Ok(JsonDict::claims(&valid)),
                Err(e) => Err(raise(&e)),
            }
        })
    }

    /// Validates an ID token for `client_id` (signature with this issuer's keys, `iss`,
    /// `aud`, `azp`, `exp`, `iat`, `sub`; `nonce`, `at_hash` of `access_token`, `c_hash` of
    /// `code`, `auth_time` within `max_age` seconds when given) and returns its claims.
    #[pyo3(signature = (token, client_id, *, nonce=None, access_token=None, code=None, max_age=None))]
    #[allow(clippy::too_many_arguments)] // Python keyword arguments
    fn validate_id_token<'py>(
        &self,
        py: Python<'py>,
        token: &str,
        client_id: String,
        nonce: Option<String>,
        access_token: Option<String>,
        code: Option<String>,
        max_age: Option<f64>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let checks = IdTokenChecks::new(client_id, nonce, access_token, code, max_age);
        let authority = self.inner.as_async().clone();
        let checked = py.detach(|| {
            let rules = checks.rules(authority.issuer(), &self.rules)?;
            wait(async { authority.validate_id_token(token, &rules).await })?
        });
        checked.map(|valid| JsonDict::claims(&valid)).map_err(|e| to_py(py, &e))?.into_pyobject(py)
    }

    /// An asyncio future of `validate_id_token`.
    #[pyo3(signature = (token, client_id, *, nonce=None, access_token=None, code=None, max_age=None))]
    #[allow(clippy::too_many_arguments)] // Python keyword arguments
    fn validate_id_token_future<'py>(
        &self,
        py: Python<'py>,
        token: String,
        client_id: String,
        nonce: Option<String>,
        access_token: Option<String>,
        code: Option<String>,
        max_age: Option<f64>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let checks = IdTokenChecks::new(client_id, nonce, access_token, code, max_age);
        let authority = self.inner.as_async().clone();
        let rules = checks.rules(authority.issuer(), &self.rules).map_err(|e| to_py(py, &e))?;
        pyo3_async_runtimes::tokio::future_into_py(py, async move {
            match authority.validate_id_token(&token, &rules).await {
                Ok(valid) => Ok(JsonDict::claims(&valid)),
                Err(e) => Err(raise(&e)),
            }
        })
    }

    /// Validates a back-channel logout token for `client_id` and returns its claims (replay
    /// of its `jti` is the caller's to refuse).
    fn validate_logout_token<'py>(
        &self,
        py: Python<'py>,
        token: &str,
        client_id: &str,
    ) -> PyResult<Bound<'py, PyAny>> {
        let authority = self.inner.as_async().clone();
        let checked = py.detach(|| wait(async { authority.validate_logout_token(token, client_id).await })?);
        checked.map(|valid| JsonDict::claims(&valid)).map_err(|e| to_py(py, &e))?.into_pyobject(py)
    }

    /// An asyncio future of `validate_logout_token`.
    fn validate_logout_token_future<'py>(
        &self,
        py: Python<'py>,
        token: String,
        client_id: String,
    ) -> PyResult<Bound<'py, PyAny>> {
        let authority = self.inner.as_async().clone();
        pyo3_async_runtimes::tokio::future_into_py(py, async move {
            match authority.validate_logout_token(&token, &client_id).await {
                Ok(valid) => Ok(JsonDict::claims(&valid)),
                Err(e) => Err(raise(&e)),
            }
        })
    }

    /// Makes sure keys are loaded (a first fetch, or a refresh when they are past their
    /// freshness); raises `NetworkException` when they cannot be had.
    fn ensure_keys(&self, py: Python<'_>) -> PyResult<()> {
        let authority = self.inner.as_async().clone();
        py.detach(|| wait(async move { authority.ensure_fresh_keys().await }).and_then(|r| r))
            .map_err(|e| to_py(py, &e))
    }

    /// Forgets the cached document, keys and remembered kids.
    fn clear(&self, py: Python<'_>) -> PyResult<()> {
        let authority = self.inner.as_async().clone();
        py.detach(|| wait(async move { authority.clear().await })).map_err(|e| to_py(py, &e))
    }

    /// Counters: validations answered from cached keys (`hits`), fetches (`refreshes`,
    /// `discovery_fetches`), waits that joined another caller's fetch (`coalesced`), ...
    fn stats<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        use std::sync::atomic::Ordering::Relaxed;
        let stats = self.inner.stats();
        let out = PyDict::new(py);
        for (name, counter) in [
            ("hits", &stats.hits),
            ("misses", &stats.misses),
            ("refreshes", &stats.refreshes),
            ("coalesced", &stats.coalesced),
            ("kid_misses", &stats.kid_misses),
            ("stale_serves", &stats.stale_serves),
            ("fetch_errors", &stats.fetch_errors),
            ("discovery_fetches", &stats.discovery_fetches),
            ("requests", &stats.requests),
        ] {
            out.set_item(name, counter.load(Relaxed))?;
        }
        Ok(out)
    }

    fn __repr__(&self) -> String {
        format!("Authority({:?})", self.inner.as_async().issuer())
    }
}

/// An authority used only to fetch `issuer`'s metadata (no validation rules).
fn metadata_authority(
    issuer: String,
    metadata: &str,
    allow_http_on_loopback: bool,
) -> Result<identity_model::Authority, Error> {
    let metadata = match metadata {
        "oauth" => MetadataKind::OAuth,
        _ => MetadataKind::OpenId,
    };
    let mut policy = DiscoveryPolicy::default();
    if allow_http_on_loopback {
        policy = policy.allow_http_on_loopback();
    }
    identity_model::Authority::builder(issuer).metadata(metadata).policy(policy).build()
}

fn document_json(document: &identity_model::DiscoveryDocument) -> String {
    serde_json::Value::Object(document.members().clone()).to_string()
}

/// `discover(issuer, metadata="openid", allow_http_on_loopback=False)`: fetches and checks
/// the discovery document (issuer, required members, URL policy) and returns its JSON text.
#[pyfunction]
#[pyo3(signature = (issuer, metadata="openid", allow_http_on_loopback=false))]
pub(crate) fn discover(
    py: Python<'_>,
    issuer: String,
    metadata: &str,
    allow_http_on_loopback: bool,
) -> PyResult<String> {
    let fetched = py.detach(|| {
        let authority = metadata_authority(issuer, metadata, allow_http_on_loopback)?;
        wait(async move { authority.discover().await })?
    });
    fetched.map(|document| document_json(&document)).map_err(|e| to_py(py, &e))
}

/// `discover_future(...)`: the same as an asyncio future on the running loop.
#[pyfunction]
#[pyo3(signature = (issuer, metadata="openid", allow_http_on_loopback=false))]
pub(crate) fn discover_future<'py>(
    py: Python<'py>,
    issuer: String,
    metadata: &str,
    allow_http_on_loopback: bool,
) -> PyResult<Bound<'py, PyAny>> {
    let authority =
        metadata_authority(issuer, metadata, allow_http_on_loopback).map_err(|e| to_py(py, &e))?;
    pyo3_async_runtimes::tokio::future_into_py(py, async move {
        authority.discover().await.map(|document| document_json(&document)).map_err(|e| raise(&e))
    })
}

/// `scheme://authority` of `url` (the issuer an authority needs to fetch from it).
fn origin_of(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => format!("{scheme}://{}", rest.split(['/', '?', '#']).next().unwrap_or("")),
        None => url.to_owned(),
    }
}

/// `fetch_jwks(url, allow_http_on_loopback=False)`: the usable keys of the JWK Set at `url`
/// (JSON text of a list; keys the core sets aside are left out) and the response's
/// `Cache-Control`.
#[pyfunction]
#[pyo3(signature = (url, allow_http_on_loopback=false))]
pub(crate) fn fetch_jwks(
    py: Python<'_>,
    url: String,
    allow_http_on_loopback: bool,
) -> PyResult<(String, Option<String>)> {
    let fetched = py.detach(|| {
        let authority = metadata_authority(origin_of(&url), "openid", allow_http_on_loopback)?;
        wait(async move { authority.fetch_key_set_document(&url).await })?
    });
    fetched
        .map(|document| (serde_json::Value::Array(document.jwks).to_string(), document.cache_control))
        .map_err(|e| to_py(py, &e))
}

/// `fetch_jwks_future(...)`: the same as an asyncio future on the running loop.
#[pyfunction]
#[pyo3(signature = (url, allow_http_on_loopback=false))]
pub(crate) fn fetch_jwks_future(
    py: Python<'_>,
    url: String,
    allow_http_on_loopback: bool,
) -> PyResult<Bound<'_, PyAny>> {
    let authority =
        metadata_authority(origin_of(&url), "openid", allow_http_on_loopback).map_err(|e| to_py(py, &e))?;
    pyo3_async_runtimes::tokio::future_into_py(py, async move {
        match authority.fetch_key_set_document(&url).await {
            Ok(document) => Ok((serde_json::Value::Array(document.jwks).to_string(), document.cache_control)),
            Err(e) => Err(raise(&e)),
        }
    })
}
