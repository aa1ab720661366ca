//! Errors into Python exceptions: the class is chosen in Python
//! (`identity_model.exceptions.from_native`) from the stable error kind, so the hierarchy and
//! its mapping live in one place; the kind, the fault and the claim ride along as attributes.

use identity_model::{Error, ErrorKind};
use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;

/// The Python exception for `error`.
pub(crate) fn to_py(py: Python<'_>, error: &Error) -> PyErr {
    let raised = (|| -> PyResult<PyErr> {
        let module = py.import("identity_model.exceptions")?;
        let exception = module.getattr("from_native")?.call1((
            error.kind().as_str(),
            error.kind().fault().as_str(),
            error.message(),
            error.claim(),
        ))?;
        // A provider's own error (RFC 6749 section 5.2) rides along whole: the Python
        // response objects report its code (`authorization_pending`, `slow_down`, ...).
        if let Some(oauth) = error.oauth() {
            exception.setattr("oauth_error", oauth.error.as_str())?;
            exception.setattr("error_description", oauth.error_description.as_deref())?;
            exception.setattr("error_uri", oauth.error_uri.as_deref())?;
            exception.setattr("status_code", oauth.status)?;
        }
        Ok(PyErr::from_value(exception))
    })();
    raised.unwrap_or_else(|e| PyRuntimeError::new_err(format!("{} ({e})", error.message())))
}

/// A Rust error as a `PyErr`, attaching to the interpreter for it.
pub(crate) fn raise(error: &Error) -> PyErr {
    Python::attach(|py| to_py(py, error))
}

/// Every stable error kind with its fault: `[(kind, fault), ...]` (for the mapping's tests).
#[pyfunction]
pub(crate) fn error_kinds() -> Vec<(&'static str, &'static str)> {
    ErrorKind::ALL.iter().map(|kind| (kind.as_str(), kind.fault().as_str())).collect()
}
