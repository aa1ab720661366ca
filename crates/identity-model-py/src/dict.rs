//! JSON objects handed to Python as a `dict`, read by Python's own `json.loads`: a validated
//! token's claims (its payload exactly, members and numbers as py-identity-model returns
//! them) and a token response.

use identity_model::{TokenResponse, ValidToken};
use pyo3::prelude::*;

/// A JSON object's text, turned into a `dict` when it reaches Python.
pub(crate) struct JsonDict(pub(crate) String);

impl JsonDict {
    /// A validated token's claims.
    pub(crate) fn claims(valid: &ValidToken) -> JsonDict {
        JsonDict(valid.claims.raw_json().to_owned())
    }

    /// A token response's members (the access token among them).
    pub(crate) fn token_response(response: &TokenResponse) -> JsonDict {
        JsonDict(serde_json::Value::Object(response.json().clone()).to_string())
    }
}

impl<'py> IntoPyObject<'py> for JsonDict {
    type Target = PyAny;
    type Output = Bound<'py, PyAny>;
    type Error = PyErr;

    fn into_pyobject(self, py: Python<'py>) -> Result<Self::Output, Self::Error> {
        py.import("json")?.getattr("loads")?.call1((self.0,))
    }
}
