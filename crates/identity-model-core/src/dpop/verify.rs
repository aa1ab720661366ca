//! The resource-server side, sans-IO: a DPoP proof checked against the request it came with
//! (RFC 9449 §4.3), and a token's binding to the proof's key (§6-7).

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use serde_json::Value;

use crate::dpop::htu::normalize_htu;
use crate::dpop::key::{DPOP_PROOF_TYP, access_token_hash};
use crate::dpop::nonce::DpopNonces;
use crate::error::{Error, ErrorKind, printable};
use crate::jose::algorithm::{Algorithm, AlgorithmSet};
use crate::jose::jwk::VerifyingKey;
use crate::jose::signing::sha256;
use crate::jose::{base64url, jws::Compact};
use crate::jwt::claims::{Claims, UnixTime};
use crate::jwt::unverified::decode_claims;

/// Longest proof accepted, in bytes (an RSA-8192 `jwk` and signature fit).
pub const MAX_PROOF_LEN: usize = 8192;
/// Longest `jti` accepted, in characters.
pub const MAX_JTI_LEN: usize = 256;
/// Default oldest `iat` accepted: 300 s.
pub const DEFAULT_PROOF_MAX_AGE_SECS: u32 = 300;
/// Default allowance for a client clock ahead of ours: the token leeway's default (60 s), so
/// that a client whose clock runs fast does not get its token accepted and its proof refused.
/// The tower layer and `idm serve` give proofs the leeway of the tokens they validate unless
/// one is set ([`DpopRules::leeway_secs`]).
pub const DEFAULT_PROOF_LEEWAY_SECS: u32 = 60;

/// What nonce a proof must carry.
#[derive(Debug, Clone, Default)]
pub enum NonceRule {
    /// None required (a nonce sent anyway is ignored).
    #[default]
    NotRequired,
    /// Exactly this one.
    Exact(String),
    /// One of the rotating nonces (current or previous window).
    Rotating(Arc<DpopNonces>),
}

/// Most proof headers whose key is kept prepared.
const KEY_CACHE_MAX: usize = 1024;

/// Prepared proof keys by the proof's header JSON, exactly as signed: a client sends the same
/// header (`typ`, `alg`, `jwk`) with every proof, so its key is checked and prepared once, not
/// once per request. Only headers that passed are kept; bounded (emptied when full).
#[derive(Default)]
struct KeyCache(RwLock<HashMap<Box<str>, Arc<VerifyingKey>>>);

impl std::fmt::Debug for KeyCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KeyCache")
    }
}

impl KeyCache {
    fn prepared(
        &self,
        header_json: &str,
        prepare: impl FnOnce() -> Result<VerifyingKey, Error>,
    ) -> Result<Arc<VerifyingKey>, Error> {
        if let Some(key) = self.0.read().unwrap_or_else(|p| p.into_inner()).get(header_json) {
            return Ok(Arc::clone(key));
        }
        let key = Arc::new(prepare()?);
        let mut keys = self.0.write().unwrap_or_else(|p| p.into_inner());
        if keys.len() >= KEY_CACHE_MAX {
            keys.clear();
        }
        keys.insert(header_json.into(), Arc::clone(&key));
        Ok(key)
    }
}

/// How DPoP proofs are judged.
///
/// ```
/// use identity_model_core::{DpopKey, DpopRules, ProofRequest, UnixTime};
/// let key = DpopKey::generate_default().unwrap();
/// let now = UnixTime::from_secs(1_700_000_000);
/// let request = ProofRequest::new("GET", "https://api.example/orders").with_access_token("tok");
/// let proof = key.proof(&request, now).unwrap();
/// let verified = DpopRules::new().verify(&proof, "GET", "https://API.example:443/orders?x=1", Some("tok"), now).unwrap();
/// assert_eq!(verified.jkt, key.thumbprint());
/// ```
#[derive(Debug, Clone)]
pub struct DpopRules {
    algorithms: AlgorithmSet,
    max_age_secs: i64,
    leeway_secs: i64,
    /// Whether `leeway_secs` was set, rather than inherited from the token rules.
    leeway_set: bool,
    nonce: NonceRule,
    keys: Arc<KeyCache>,
}

impl Default for DpopRules {
    fn default() -> Self {
        DpopRules::new()
    }
}

/// A proof that passed: the key's thumbprint, and what the replay store must remember.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedProof {
    /// The RFC 7638 thumbprint of the proof's key (compared with the token's `cnf.jkt`).
    pub jkt: String,
    /// The proof's `jti`.
    pub jti: String,
    /// The proof's `iat`.
    pub iat: UnixTime,
    /// The signing algorithm.
    pub alg: Algorithm,
    /// The replay key: SHA-256 over the thumbprint and the `jti`, so one client's `jti`
    /// never collides with another's.
    pub replay_key: [u8; 32],
    /// Until when the `jti` must be remembered: past it the proof is too old anyway.
    pub replay_until: UnixTime,
}

fn invalid(message: impl Into<std::borrow::Cow<'static, str>>) -> Error {
    Error::new(ErrorKind::InvalidDpopProof, message)
}

impl DpopRules {
    /// Asymmetric algorithms, `iat` at most 300 s old and 60 s ahead (the token leeway's
    /// default), no nonce.
    pub fn new() -> Self {
        DpopRules {
            algorithms: AlgorithmSet::asymmetric(),
            max_age_secs: i64::from(DEFAULT_PROOF_MAX_AGE_SECS),
            leeway_secs: i64::from(DEFAULT_PROOF_LEEWAY_SECS),
            leeway_set: false,
            nonce: NonceRule::NotRequired,
            keys: Arc::default(),
        }
    }

    /// Only these algorithms (symmetric ones are dropped: a proof must be asymmetric).
    pub fn algorithms(mut self, algorithms: impl IntoIterator<Item = Algorithm>) -> Self {
        let mut set = AlgorithmSet::empty();
        for alg in algorithms.into_iter().filter(|alg| !alg.is_symmetric()) {
            set.insert(alg);
        }
        self.algorithms = set;
        self
    }

    /// The accepted algorithms (for `algs="..."` in challenges).
    pub fn allowed_algorithms(&self) -> AlgorithmSet {
        self.algorithms
    }

    /// The oldest `iat` accepted, in seconds.
    pub fn max_age_secs(mut self, secs: u32) -> Self {
        self.max_age_secs = i64::from(secs);
        self
    }

    /// How far ahead of `now` an `iat` may be, in seconds. Without it a proof gets the
    /// leeway of the tokens it comes with ([`DpopRules::inherit_leeway_secs`]).
    pub fn leeway_secs(mut self, secs: u32) -> Self {
        self.leeway_secs = i64::from(secs);
        self.leeway_set = true;
        self
    }

    /// The token rules' leeway, taken unless [`DpopRules::leeway_secs`] was set: a proof
    /// and its token agree on how far a client's clock may run ahead.
    pub fn inherit_leeway_secs(mut self, secs: u32) -> Self {
        if !self.leeway_set {
            self.leeway_secs = i64::from(secs);
        }
        self
    }

    /// How far ahead of `now` an `iat` may be, in seconds, as in force.
    pub fn proof_leeway_secs(&self) -> u32 {
        u32::try_from(self.leeway_secs).unwrap_or(u32::MAX)
    }

    /// The nonce rule.
    pub fn nonce(mut self, rule: NonceRule) -> Self {
        self.nonce = rule;
        self
    }

    /// The nonce rule in force.
    pub fn nonce_rule(&self) -> &NonceRule {
        &self.nonce
    }

    /// Checks `proof` against the request (`method` as sent, the full request `uri`) at `now`;
    /// with `access_token`, `ath` must be its hash. Replay is the caller's next step (the
    /// returned `replay_key` until `replay_until`), then [`check_binding`].
    pub fn verify(
        &self,
        proof: &str,
        method: &str,
        uri: &str,
        access_token: Option<&str>,
        now: UnixTime,
    ) -> Result<VerifiedProof, Error> {
        if proof.len() > MAX_PROOF_LEN {
            return Err(invalid(format!("the proof is over {MAX_PROOF_LEN} bytes")));
        }
        let compact =
            Compact::split(proof).map_err(|e| invalid(format!("not a compact JWS: {}", e.message())))?;
        let header = compact.header().map_err(|e| invalid(format!("bad header: {}", e.message())))?;
        if !header.typ().is_some_and(|typ| typ.eq_ignore_ascii_case(DPOP_PROOF_TYP)) {
            return Err(invalid(format!("typ must be {DPOP_PROOF_TYP}")).with_claim("typ"));
        }
        let alg = header.alg();
        if !self.algorithms.contains(alg) {
            return Err(invalid(format!("alg {alg} is not allowed for DPoP proofs")).with_claim("alg"));
        }
        let key = self.keys.prepared(header.raw_json(), || {
            let members = header.members();
            let Some(Value::Object(jwk)) = members.get("jwk") else {
                return Err(invalid("the header has no jwk object").with_claim("jwk"));
            };
            if let Some(private) =
                ["d", "p", "q", "dp", "dq", "qi", "oth", "k"].iter().find(|m| jwk.contains_key(**m))
            {
                return Err(
                    invalid(format!("the jwk holds the private member \"{private}\"")).with_claim("jwk")
                );
            }
            let key = VerifyingKey::from_jwk(jwk.clone()).map_err(|why| {
                invalid(format!("the jwk is not a usable key: {}", printable(&why, 120))).with_claim("jwk")
            })?;
            if !key.fits(alg) {
                return Err(invalid(format!("the jwk cannot verify {alg}")).with_claim("jwk"));
            }
            Ok(key)
        })?;
        let mut buffer = [0u8; 1032];
        let len = base64url::decode_slice(compact.signature.as_bytes(), &mut buffer)
            .map_err(|_| invalid("the signature is not strict base64url"))?;
        if !key.verify(alg, compact.signing_input.as_bytes(), &buffer[..len]) {
            return Err(invalid(format!("the {alg} signature does not verify")));
        }
        let claims = decode_claims(&compact).map_err(|e| invalid(format!("bad claims: {}", e.message())))?;
        let jti = self.check_claims(&claims, method, uri, access_token, now)?;
        let iat = claims.iat().map_or(0, |d| d.as_secs_f64() as i64);
        let jkt = key.thumbprint().to_owned();
        let mut keyed = Vec::with_capacity(jkt.len() + 1 + jti.len());
        keyed.extend_from_slice(jkt.as_bytes());
        keyed.push(0);
        keyed.extend_from_slice(jti.as_bytes());
        Ok(VerifiedProof {
            replay_key: sha256(&keyed),
            replay_until: UnixTime::from_secs(
                iat.saturating_add(self.max_age_secs).max(now.as_secs()).saturating_add(self.leeway_secs),
            ),
            jkt,
            jti,
            iat: UnixTime::from_secs(iat),
            alg,
        })
    }

    fn check_claims(
        &self,
        claims: &Claims,
        method: &str,
        uri: &str,
        access_token: Option<&str>,
        now: UnixTime,
    ) -> Result<String, Error> {
        let text = |name: &'static str| -> Result<&str, Error> {
            claims
                .get(name)
                .and_then(Value::as_str)
                .ok_or_else(|| invalid(format!("\"{name}\" is missing or not a string")).with_claim(name))
        };
        let jti = claims.jti().ok_or_else(|| invalid("\"jti\" is missing").with_claim("jti"))?;
        if jti.is_empty() || jti.chars().count() > MAX_JTI_LEN {
            return Err(invalid(format!("\"jti\" must have 1 to {MAX_JTI_LEN} characters")).with_claim("jti"));
        }
        if text("htm")? != method {
            return Err(invalid(format!("htm does not match the request method {}", printable(method, 16)))
                .with_claim("htm"));
        }
        let expected = normalize_htu(uri).ok_or_else(|| {
            Error::new(
                ErrorKind::InvalidConfig,
                "the request URI cannot be compared: it is not an absolute http(s) URI",
            )
        })?;
        if normalize_htu(text("htu")?).as_deref() != Some(expected.as_str()) {
            return Err(invalid("htu does not match the request URI").with_claim("htu"));
        }
        let iat = claims.iat().ok_or_else(|| invalid("\"iat\" is missing").with_claim("iat"))?.as_secs_f64();
        let now_secs = now.as_secs() as f64;
        if iat > now_secs + self.leeway_secs as f64 {
            return Err(invalid("iat is in the future").with_claim("iat"));
        }
        if iat < now_secs - self.max_age_secs as f64 {
            return Err(invalid(format!("the proof is older than {} s", self.max_age_secs)).with_claim("iat"));
        }
        match (access_token, claims.get("ath")) {
            (Some(token), Some(Value::String(ath))) if *ath == access_token_hash(token) => {}
            (Some(_), Some(_)) => {
                return Err(invalid("ath is not the hash of the access token").with_claim("ath"));
            }
            (Some(_), None) => return Err(invalid("\"ath\" is missing").with_claim("ath")),
            (None, _) => {}
        }
        let nonce = claims.get("nonce").and_then(Value::as_str);
        let nonce_ok = match &self.nonce {
            NonceRule::NotRequired => true,
            NonceRule::Exact(expected) => nonce == Some(expected.as_str()),
            NonceRule::Rotating(nonces) => nonce.is_some_and(|n| nonces.accepts(n, now)),
        };
        if !nonce_ok {
            let why =
                if nonce.is_some() { "the proof's nonce is stale or unknown" } else { "a nonce is required" };
            return Err(Error::new(ErrorKind::UseDpopNonce, why).with_claim("nonce"));
        }
        Ok(jti.to_owned())
    }
}

/// The token's `cnf.jkt`, when it is bound to a DPoP key.
///
/// Read straight from the claims' JSON (the other members skipped, not built into a map):
/// this runs on every request of a DPoP-aware service. The JSON was checked strictly when
/// the token was parsed; a `jkt` with escapes falls back to the parsed members.
pub fn bound_jkt(claims: &Claims) -> Option<&str> {
    #[derive(serde::Deserialize)]
    struct Outer<'a> {
        #[serde(borrow)]
        cnf: Option<Inner<'a>>,
    }
    #[derive(serde::Deserialize)]
    struct Inner<'a> {
        #[serde(borrow)]
        jkt: Option<&'a str>,
    }
    match serde_json::from_str::<Outer<'_>>(claims.raw_json()) {
        Ok(outer) => outer.cnf.and_then(|cnf| cnf.jkt),
        Err(_) => claims.get("cnf")?.get("jkt")?.as_str(),
    }
}

/// Checks a token's binding against the proof that came with it: a bound token needs a proof
/// by its key (`dpop_proof_required`, `dpop_key_mismatch`); a proof with a token that is not
/// bound is refused too (`dpop_key_mismatch`). Without a proof, an unbound token passes (a
/// Bearer token).
pub fn check_binding(claims: &Claims, proof: Option<&VerifiedProof>) -> Result<(), Error> {
    check_jkt_binding(bound_jkt(claims), proof)
}

/// [`check_binding`] for a `jkt` read elsewhere: an introspection response's `cnf.jkt`
/// (RFC 9449 section 6.2) for an opaque token.
pub fn check_jkt_binding(jkt: Option<&str>, proof: Option<&VerifiedProof>) -> Result<(), Error> {
    match (jkt, proof) {
        (None, None) => Ok(()),
        (Some(_), None) => Err(Error::new(
            ErrorKind::DpopProofRequired,
            "the token is bound to a DPoP key (cnf.jkt): send it with the DPoP scheme and a proof",
        )),
        (Some(jkt), Some(proof)) if jkt == proof.jkt => Ok(()),
        (Some(_), Some(_)) => Err(Error::new(
            ErrorKind::DpopKeyMismatch,
            "the proof is signed by another key than the one the token is bound to",
        )
        .with_claim("cnf")),
        (None, Some(_)) => {
            Err(Error::new(ErrorKind::DpopKeyMismatch, "the token is not bound to a DPoP key (no cnf.jkt)")
                .with_claim("cnf"))
        }
    }
}
