//! `DpopKey`: a DPoP key pair (RFC 9449) held in Rust, for proofs made in Python
//! (`create_dpop_proof`) and for the token client's DPoP-bound requests.

use std::sync::Arc;

use identity_model::{Algorithm, Clock, Error, ErrorKind, ProofRequest, SystemClock};
use pyo3::prelude::*;

use crate::dict::JsonDict;
use crate::errors::to_py;

/// A DPoP key pair; the private key never leaves Rust unless `private_jwk` is asked for.
#[pyclass(frozen, module = "identity_model._native")]
pub(crate) struct DpopKey {
    pub(crate) inner: Arc<identity_model::DpopKey>,
}

pub(crate) fn parse_algorithm(name: &str) -> Result<Algorithm, Error> {
    name.parse::<Algorithm>()
        .map_err(|_| Error::new(ErrorKind::InvalidConfig, format!("unknown algorithm {name:?}")))
}

#[pymethods]
impl DpopKey {
    /// `DpopKey(algorithm="ES256")`: a fresh key pair (ES256/384/512, EdDSA, PS256/384/512,
    /// RS256/384; RSA keys are 2048 bits).
    #[new]
    #[pyo3(signature = (algorithm="ES256"))]
    fn new(py: Python<'_>, algorithm: &str) -> PyResult<Self> {
        let generated = py.detach(|| identity_model::DpopKey::generate(parse_algorithm(algorithm)?));
        generated.map(|key| DpopKey { inner: Arc::new(key) }).map_err(|e| to_py(py, &e))
    }

    /// A key from a private JWK (JSON text); its `alg`, else `algorithm`, else the key
    /// type's default.
    #[staticmethod]
    #[pyo3(signature = (jwk, algorithm=None))]
    fn from_jwk(py: Python<'_>, jwk: &str, algorithm: Option<&str>) -> PyResult<Self> {
        let read = (|| {
            let value: serde_json::Value = serde_json::from_str(jwk)
                .map_err(|e| Error::new(ErrorKind::InvalidKey, format!("the JWK is not JSON: {e}")))?;
            let map = value
                .as_object()
                .ok_or_else(|| Error::new(ErrorKind::InvalidKey, "the JWK is not a JSON object"))?;
            identity_model::DpopKey::from_jwk(map, algorithm.map(parse_algorithm).transpose()?)
        })();
        read.map(|key| DpopKey { inner: Arc::new(key) }).map_err(|e| to_py(py, &e))
    }

    /// The signing algorithm.
    #[getter]
    fn algorithm(&self) -> String {
        self.inner.alg().to_string()
    }

    /// The public JWK (a `dict`): the `jwk` header of every proof.
    #[getter]
    fn public_jwk(&self) -> JsonDict {
        JsonDict(serde_json::Value::Object(self.inner.public_jwk().clone()).to_string())
    }

    /// The private JWK (a `dict`), for storing the key; `None` when it cannot be exported.
    fn private_jwk(&self) -> Option<JsonDict> {
        self.inner.private_jwk().map(|jwk| JsonDict(serde_json::Value::Object(jwk).to_string()))
    }

    /// The RFC 7638 thumbprint (`dpop_jkt`, a bound token's `cnf.jkt`).
    #[getter]
    fn jwk_thumbprint(&self) -> &str {
        self.inner.thumbprint()
    }

    /// A proof for `method` and `uri` (query and fragment left out of `htu`), with `ath`
    /// when `access_token` is given and the server's `nonce` when given.
    #[pyo3(signature = (method, uri, access_token=None, nonce=None))]
    fn proof(
        &self,
        py: Python<'_>,
        method: &str,
        uri: &str,
        access_token: Option<&str>,
        nonce: Option<&str>,
    ) -> PyResult<String> {
        let mut request = ProofRequest::new(method, uri);
        if let Some(token) = access_token {
            request = request.with_access_token(token);
        }
        if let Some(nonce) = nonce {
            request = request.with_nonce(nonce);
        }
        self.inner.proof(&request, SystemClock.now()).map_err(|e| to_py(py, &e))
    }

    fn __repr__(&self) -> String {
        format!("DPoPKey({}, jkt={})", self.inner.alg(), self.inner.thumbprint())
    }
}

/// `jwk_thumbprint(jwk)`: the RFC 7638 thumbprint of a public (or private) JWK given as JSON
/// text, for comparing with a bound token's `cnf.jkt`. An unusable key raises.
#[pyfunction]
pub(crate) fn jwk_thumbprint(py: Python<'_>, jwk: &str) -> PyResult<String> {
    let read = (|| {
        let value: serde_json::Value = serde_json::from_str(jwk)
            .map_err(|e| Error::new(ErrorKind::InvalidKey, format!("the JWK is not JSON: {e}")))?;
        let serde_json::Value::Object(members) = value else {
            return Err(Error::new(ErrorKind::InvalidKey, "the JWK is not a JSON object"));
        };
        identity_model::VerifyingKey::from_jwk(members)
            .map(|key| key.thumbprint().to_owned())
            .map_err(|e| Error::new(ErrorKind::InvalidKey, e))
    })();
    read.map_err(|e| to_py(py, &e))
}
