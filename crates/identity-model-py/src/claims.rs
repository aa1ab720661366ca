//! A validated token's claims as a Python `dict`: its payload JSON read by Python's own
//! `json.loads` (the token's exact members and numbers, as py-identity-model returns them).

use identity_model::ValidToken;
use pyo3::prelude::*;

/// The payload JSON of a validated token, turned into a `dict` when it reaches Python.
pub(crate) struct ClaimsJson(pub(crate) String);

impl ClaimsJson {
    pub(crate) fn of(valid: &ValidToken) -> ClaimsJson {
        ClaimsJson(valid.claims.raw_json().to_owned())
    }
}

impl<'py> IntoPyObject<'py> for ClaimsJson {
    type Target = PyAny;
    type Output = Bound<'py, PyAny>;
    type Error = PyErr;

    fn into_pyobject(self, py: Python<'py>) -> Result<Self::Output, Self::Error> {
        py.import("json")?.getattr("loads")?.call1((self.0,))
    }
}
