//! Signing with a caller's private key: JAR request objects (RFC 9101) from Python.

use identity_model::{Error, ErrorKind, SigningKey};
use pyo3::prelude::*;

use crate::dpop::parse_algorithm;
use crate::errors::to_py;

/// `sign_jwt(private_key_der, algorithm, claims_json, typ=None, kid=None)`: a JWS of the
/// claims (a JSON object) by the PKCS #8 / PKCS #1 / SEC 1 DER key, with `typ` and `kid` in
/// the header. Asymmetric algorithms only; a key that does not fit the algorithm raises.
#[pyfunction]
#[pyo3(signature = (private_key_der, algorithm, claims_json, typ=None, kid=None))]
pub(crate) fn sign_jwt(
    py: Python<'_>,
    private_key_der: Vec<u8>,
    algorithm: &str,
    claims_json: &str,
    typ: Option<&str>,
    kid: Option<String>,
) -> PyResult<String> {
    let signed = (|| {
        let claims: serde_json::Value = serde_json::from_str(claims_json)
            .map_err(|e| Error::new(ErrorKind::InvalidUsage, format!("the claims are not JSON: {e}")))?;
        if !claims.is_object() {
            return Err(Error::new(ErrorKind::InvalidUsage, "the claims are not a JSON object"));
        }
        let mut key = SigningKey::from_der(&private_key_der, parse_algorithm(algorithm)?)?;
        if let Some(kid) = kid {
            key = key.with_kid(kid);
        }
        key.sign_jwt(typ, &claims)
    })();
    signed.map_err(|e| to_py(py, &e))
}
