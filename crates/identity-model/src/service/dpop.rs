//! DPoP in the layer: the proof header, the request's URL for `htu`, the proof checked against
//! the validated token, its `jti` recorded once, and DPoP refusals with their challenge.

use std::sync::Arc;

use http::{HeaderMap, Method, Uri, header};
use identity_model_core::{DpopRules, Error, ErrorKind, NonceRule, UnixTime, ValidToken, check_binding};

use super::{DpopRefusal, Rejection};
use crate::replay::{MemoryReplayStore, ReplayStore, record_proof};

#[derive(Clone)]
pub(super) struct DpopSettings {
    pub(super) rules: Arc<DpopRules>,
    pub(super) replay: Arc<dyn ReplayStore>,
    pub(super) origin: Option<Arc<str>>,
}

impl Default for DpopSettings {
    fn default() -> Self {
        DpopSettings {
            rules: Arc::new(DpopRules::new()),
            replay: Arc::new(MemoryReplayStore::default()),
            origin: None,
        }
    }
}

impl DpopSettings {
    /// A DPoP refusal (with a fresh nonce for `use_dpop_nonce` when nonces rotate), or the
    /// error as it is when it is not about DPoP.
    pub(super) fn reject(&self, error: Error, now: UnixTime) -> Rejection {
        if !error.kind().is_dpop() {
            return Rejection::from_error(error);
        }
        let nonce = match (error.kind(), self.rules.nonce_rule()) {
            (ErrorKind::UseDpopNonce, NonceRule::Rotating(nonces)) => Some(nonces.current(now)),
            (ErrorKind::UseDpopNonce, NonceRule::Exact(nonce)) => Some(nonce.clone()),
            _ => None,
        };
        let algs: Vec<&str> = self.rules.allowed_algorithms().iter().map(|a| a.as_str()).collect();
        Rejection::Dpop(Box::new(DpopRefusal { error, algs: algs.join(" "), nonce }))
    }

    /// The URL a proof's `htu` must name: the public origin (or `https://` and `Host`) and the
    /// request's path and query; an absolute request URI (HTTP/2) as it is.
    pub(super) fn url_of(&self, uri: &Uri, headers: &HeaderMap) -> Option<String> {
        let path = uri.path_and_query().map_or("/", |p| p.as_str());
        if let Some(origin) = &self.origin {
            return Some(format!("{origin}{path}"));
        }
        if let (Some(scheme), Some(authority)) = (uri.scheme_str(), uri.authority()) {
            return Some(format!("{scheme}://{authority}{path}"));
        }
        let host = headers.get(header::HOST)?.to_str().ok()?;
        Some(format!("https://{host}{path}"))
    }

    /// The proof of a `DPoP`-scheme request against `target` and the validated token.
    pub(super) async fn check(
        &self,
        target: Option<(&Method, &str)>,
        headers: &HeaderMap,
        token: &str,
        valid: &ValidToken,
        now: UnixTime,
    ) -> Result<(), Rejection> {
        let refuse = |kind: ErrorKind, message: &'static str| self.reject(Error::new(kind, message), now);
        let mut proofs = headers.get_all("dpop").iter();
        let Some(proof) = proofs.next() else {
            return Err(refuse(ErrorKind::DpopProofRequired, "the DPoP scheme needs a DPoP proof header"));
        };
        if proofs.next().is_some() {
            return Err(refuse(ErrorKind::InvalidDpopProof, "more than one DPoP header"));
        }
        let proof = proof
            .to_str()
            .map_err(|_| refuse(ErrorKind::InvalidDpopProof, "the DPoP header is not ASCII"))?;
        let Some((method, url)) = target else {
            return Err(refuse(ErrorKind::InvalidDpopProof, "the request's method and URL are unknown here"));
        };
        let verified = self.rules.verify(proof, method.as_str(), url, Some(token), now).map_err(|e| {
            if e.kind() == ErrorKind::InvalidConfig {
                // Our own view of the request's URL cannot be compared: the proof cannot pass.
                self.reject(
                    Error::new(ErrorKind::InvalidDpopProof, "htu cannot be compared with this request's URL"),
                    now,
                )
            } else {
                self.reject(e, now)
            }
        })?;
        check_binding(&valid.claims, Some(&verified)).map_err(|e| self.reject(e, now))?;
        record_proof(self.replay.as_ref(), &verified).await.map_err(|e| self.reject(e, now))
    }
}
