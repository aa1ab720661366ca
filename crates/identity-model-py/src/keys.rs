//! `KeyValidator`: tokens checked against a fixed key set (py-identity-model's manual mode,
//! `perform_disco=False` with a `key`), with the same rules and errors as `Authority`.

use identity_model::{Error, ErrorKind, KeySet, StaticKeyValidator};
use pyo3::prelude::*;

use crate::authority::{OneOrMany, rules};
use crate::dict::JsonDict;
use crate::errors::to_py;

/// A fixed key set and the rules tokens signed by it must meet.
#[pyclass(frozen, module = "identity_model._native")]
pub(crate) struct KeyValidator {
    inner: StaticKeyValidator,
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
        let built = (|| -> Result<StaticKeyValidator, Error> {
            let issuers = issuer.map(OneOrMany::into_vec).unwrap_or_default();
            if issuers.is_empty() {
                return Err(Error::new(ErrorKind::InvalidConfig, "an issuer is required"));
            }
            let rules = rules(issuers, audience, algorithms, leeway, token_type.as_deref())?;
            let document = match serde_json::from_str::<serde_json::Value>(keys_json) {
                Ok(serde_json::Value::Object(map)) if !map.contains_key("keys") => {
                    serde_json::json!({ "keys": [map] }).to_string()
                }
                _ => keys_json.to_owned(),
            };
            StaticKeyValidator::new(KeySet::from_json(document.as_bytes())?, rules)
        })();
        built.map(|inner| KeyValidator { inner }).map_err(|e| to_py(py, &e))
    }

    /// Validates `token` and returns its claims (a `dict`).
    fn validate<'py>(&self, py: Python<'py>, token: &str) -> PyResult<Bound<'py, PyAny>> {
        match py.detach(|| self.inner.validate(token).map(|valid| JsonDict::claims(&valid))) {
            Ok(claims) => claims.into_pyobject(py),
            Err(e) => Err(to_py(py, &e)),
        }
    }
}
