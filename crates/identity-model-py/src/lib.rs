//! The `identity_model._native` extension module: identity-model's Rust core for Python.
//!
//! Two classes carry everything: `authority::Authority` (an issuer trusted through
//! discovery, with its key cache, rotation handling and single-flight refreshes) and
//! `keys::KeyValidator` (a fixed key set, py-identity-model's manual mode). Both release
//! the GIL while they verify signatures or wait for the network, and raise the exception
//! classes of `identity_model.exceptions`, chosen from the stable error kind
//! (`errors.rs`). The py-identity-model-compatible functions are written in Python on top
//! of them (`python/identity_model/`).

mod authority;
mod client;
mod dict;
mod dpop;
mod errors;
mod id_tokens;
mod keys;
mod runtime;
mod signing;
mod tokens;

use pyo3::prelude::*;

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<authority::Authority>()?;
    m.add_class::<keys::KeyValidator>()?;
    m.add_class::<tokens::TokenManager>()?;
    m.add_class::<client::OAuthClient>()?;
    m.add_class::<dpop::DpopKey>()?;
    m.add_function(wrap_pyfunction!(errors::error_kinds, m)?)?;
    m.add_function(wrap_pyfunction!(dpop::jwk_thumbprint, m)?)?;
    m.add_function(wrap_pyfunction!(signing::sign_jwt, m)?)?;
    m.add_function(wrap_pyfunction!(authority::discover, m)?)?;
    m.add_function(wrap_pyfunction!(authority::discover_future, m)?)?;
    m.add_function(wrap_pyfunction!(authority::fetch_jwks, m)?)?;
    m.add_function(wrap_pyfunction!(authority::fetch_jwks_future, m)?)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
