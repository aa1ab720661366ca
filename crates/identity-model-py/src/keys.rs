//! `KeyValidator`: tokens checked against a fixed key set (py-identity-model's manual mode,
//! `perform_disco=False` with a `key`), with the same rules and errors as `Authority`.

use identity_model::{
    Clock, Error, ErrorKind, KeySet, StaticKeyValidator, SystemClock, Validation, validate_logout_token,
};
use pyo3::prelude::*;

use crate::authority::{OneOrMany, rules};
use crate::dict::JsonDict;
use crate::errors::to_py;
use crate::id_tokens::IdTokenChecks;

/// A fixed key set and the rules tokens signed by it must meet.
#[pyclass(frozen, module = "identity_model._native")]
pub(crate) struct KeyValidator {
    inner: StaticKeyValidator,
    /// The rules (the base of ID token rules) and the first issuer.
    rules: Validation,
    issuer: String,
}

#[pymethods]
impl KeyValidator {
    /// `KeyValidator(keys_json, issuer, audience, *, algorithms=None, leeway=None,
    /// token_type=None)`: `keys_json` is a JWK Set or one JWK, as JSON text.
    #[new]
    #[pyo3(signature = (keys_json, issuer, audience, *, algorithms=None, leeway=None, token_type=None))]
    fn new(
        py: Python<'_>,
        keys_json: &str,
        issuer: Option<OneOrMany>,
        audience: Option<OneOrMany>,
        algorithms: Option<Vec<String>>,
        leeway: Option<f64>,
        token_type: Option<String>,
    ) -> PyResult<Self> {
        let built = (|| -> Result<KeyValidator, Error> {
            let issuers = issuer.map(OneOrMany::into_vec).unwrap_or_default();
            if issuers.is_empty() {
                return Err(Error::new(ErrorKind::InvalidConfig, "an issuer is required"));
            }
            let issuer = issuers[0].clone();
            let rules = rules(issuers, audience, algorithms, leeway, token_type.as_deref())?;
            let document = match serde_json::from_str::<serde_json::Value>(keys_json) {
                Ok(serde_json::Value::Object(map)) if !map.contains_key("keys") => {
                    serde_json::json!({ "keys": [map] }).to_string()
                }
                _ => keys_json.to_owned(),
            };
            let inner = StaticKeyValidator::new(KeySet::from_json(document.as_bytes())?, rules.clone())?;
            Ok(KeyValidator { inner, rules, issuer })
        })();
        built.map_err(|e| to_py(py, &e))
    }

    /// Validates `token` and returns its claims (a `dict`).
    fn validate<'py>(&self, py: Python<'py>, token: &str) -> PyResult<Bound<'py, PyAny>> {
        match py.detach(|| self.inner.validate(token).map(|valid| JsonDict::claims(&valid))) {
            Ok(claims) => claims.into_pyobject(py),
            Err(e) => Err(to_py(py, &e)),
        }
    }

    /// Validates an ID token for `client_id` with these keys (see `Authority.validate_id_token`).
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
        let checked = py.detach(|| {
            let rules = checks.rules(&self.issuer, &self.rules)?;
            rules.validate(token, self.inner.keys(), SystemClock.now())
        });
        checked.map(|valid| JsonDict::claims(&valid)).map_err(|e| to_py(py, &e))?.into_pyobject(py)
    }

    /// Validates a back-channel logout token for `client_id` with these keys.
    fn validate_logout_token<'py>(
        &self,
        py: Python<'py>,
        token: &str,
        client_id: &str,
    ) -> PyResult<Bound<'py, PyAny>> {
        let checked = py.detach(|| {
            validate_logout_token(token, self.inner.keys(), &self.issuer, client_id, SystemClock.now())
        });
        checked.map(|valid| JsonDict::claims(&valid)).map_err(|e| to_py(py, &e))?.into_pyobject(py)
    }
}
