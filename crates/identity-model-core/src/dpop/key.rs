//! The client side: a DPoP key and the proofs it signs (RFC 9449 §4.2).

use serde_json::{Map, Value, json};

use crate::error::{Error, ErrorKind};
use crate::jose::algorithm::Algorithm;
use crate::jose::base64url;
use crate::jose::signing::{SigningKey, sha256};
use crate::jwt::claims::UnixTime;
use crate::oauth::client_auth::random_id;

/// The `typ` of a DPoP proof.
pub const DPOP_PROOF_TYP: &str = "dpop+jwt";

/// The algorithms a DPoP key may use: asymmetric ones only.
pub const DPOP_KEY_ALGORITHMS: [Algorithm; 9] = [
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::ES512,
    Algorithm::EdDSA,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
    Algorithm::RS256,
    Algorithm::RS384,
];

/// A client's DPoP key: an asymmetric private key (ES256 by default) whose public half goes
/// into every proof's `jwk` header.
///
/// ```
/// use identity_model_core::{DpopKey, ProofRequest, UnixTime};
/// let key = DpopKey::generate_default().unwrap();
/// let proof = key
///     .proof(&ProofRequest::new("POST", "https://server.example.com/token"), UnixTime::from_secs(1_700_000_000))
///     .unwrap();
/// assert_eq!(proof.split('.').count(), 3);
/// ```
#[derive(Debug)]
pub struct DpopKey {
    key: SigningKey,
    public: Map<String, Value>,
    thumbprint: String,
}

/// What a proof is for: the request's method and URI, and optionally the access token it
/// goes with (`ath`) and the server's nonce.
#[derive(Debug, Clone, Copy)]
pub struct ProofRequest<'a> {
    /// The HTTP method (`htm`), as sent.
    pub method: &'a str,
    /// The request URI (`htu`); query and fragment are left out of the proof.
    pub uri: &'a str,
    /// The access token sent with a resource request (`ath`).
    pub access_token: Option<&'a str>,
    /// The nonce the server gave in `DPoP-Nonce`.
    pub nonce: Option<&'a str>,
}

impl<'a> ProofRequest<'a> {
    /// A proof for `method` on `uri`, without token or nonce (a token request).
    pub fn new(method: &'a str, uri: &'a str) -> Self {
        ProofRequest { method, uri, access_token: None, nonce: None }
    }

    /// For a resource request carrying `token` (adds `ath`).
    pub fn with_access_token(mut self, token: &'a str) -> Self {
        self.access_token = Some(token);
        self
    }

    /// With the server's nonce.
    pub fn with_nonce(mut self, nonce: &'a str) -> Self {
        self.nonce = Some(nonce);
        self
    }
}

/// `ath`: base64url(SHA-256(access token)).
pub fn access_token_hash(token: &str) -> String {
    base64url::encode(sha256(token.as_bytes()))
}

fn not_for_dpop(alg: Algorithm) -> Error {
    Error::new(
        ErrorKind::InvalidKey,
        format!("{alg} cannot sign DPoP proofs: an asymmetric algorithm is required"),
    )
}

impl DpopKey {
    /// A new ES256 key.
    pub fn generate_default() -> Result<DpopKey, Error> {
        DpopKey::generate(Algorithm::ES256)
    }

    /// A new key for `alg` (ES256, ES384, ES512, EdDSA, PS256, PS384, PS512, RS256, RS384;
    /// RSA keys are 2048 bits).
    pub fn generate(alg: Algorithm) -> Result<DpopKey, Error> {
        if !DPOP_KEY_ALGORITHMS.contains(&alg) {
            return Err(not_for_dpop(alg));
        }
        DpopKey::from_signing_key(SigningKey::generate(alg)?)
    }

    /// A key from a private JWK; its `alg`, else `alg`, else the key type's default.
    pub fn from_jwk(jwk: &Map<String, Value>, alg: Option<Algorithm>) -> Result<DpopKey, Error> {
        let alg = alg.or_else(|| crate::jose::jwk::default_algorithm(jwk));
        DpopKey::from_signing_key(SigningKey::from_jwk(jwk, alg)?)
    }

    fn from_signing_key(key: SigningKey) -> Result<DpopKey, Error> {
        if !DPOP_KEY_ALGORITHMS.contains(&key.alg()) {
            return Err(not_for_dpop(key.alg()));
        }
        let mut public = key.verification_jwk();
        // Only the members that define the key: no kid, alg or use to leak or contradict.
        public.retain(|name, _| matches!(name.as_str(), "kty" | "crv" | "x" | "y" | "n" | "e"));
        let thumbprint = key.thumbprint();
        Ok(DpopKey { key, public, thumbprint })
    }

    /// The signing algorithm.
    pub fn alg(&self) -> Algorithm {
        self.key.alg()
    }

    /// The public JWK (the `jwk` header of every proof).
    pub fn public_jwk(&self) -> &Map<String, Value> {
        &self.public
    }

    /// The private JWK, for storing the key (`None` when the key type cannot be exported).
    pub fn private_jwk(&self) -> Option<Map<String, Value>> {
        let mut jwk = self.key.private_jwk()?;
        jwk.remove("kid");
        jwk.remove("use");
        Some(jwk)
    }

    /// The RFC 7638 thumbprint: the `jkt` a bound token carries in `cnf` and `dpop_jkt`
    /// asks for.
    pub fn thumbprint(&self) -> &str {
        &self.thumbprint
    }

    /// A proof for `request` issued at `now`, with a fresh 128-bit random `jti`.
    pub fn proof(&self, request: &ProofRequest<'_>, now: UnixTime) -> Result<String, Error> {
        let htu = request.uri.split(['#', '?']).next().unwrap_or_default();
        let mut claims = json!({
            "jti": random_id()?,
            "htm": request.method,
            "htu": htu,
            "iat": now.as_secs(),
        });
        let map = claims.as_object_mut().expect("json! object literal");
        if let Some(token) = request.access_token {
            map.insert("ath".into(), access_token_hash(token).into());
        }
        if let Some(nonce) = request.nonce {
            map.insert("nonce".into(), nonce.into());
        }
        let mut header = Map::new();
        header.insert("typ".into(), DPOP_PROOF_TYP.into());
        header.insert("jwk".into(), Value::Object(self.public.clone()));
        let payload = serde_json::to_vec(&claims).expect("a JSON value serializes");
        self.sign_without_kid(header, &payload)
    }

    /// Signs with no `kid` (the key travels in the header; `SigningKey::sign_compact` would
    /// add its thumbprint as `kid`).
    fn sign_without_kid(&self, mut header: Map<String, Value>, payload: &[u8]) -> Result<String, Error> {
        header.insert("alg".into(), self.key.alg().as_str().into());
        let header_json = serde_json::to_vec(&header).expect("a JSON map serializes");
        let mut token = base64url::encode(header_json);
        token.push('.');
        token.push_str(&base64url::encode(payload));
        let signature = self.key.sign(token.as_bytes())?;
        token.push('.');
        token.push_str(&base64url::encode(signature));
        Ok(token)
    }
}
