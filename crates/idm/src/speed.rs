//! Measuring validation against the raw signature primitive: the cases `idm bench` and the
//! criterion benchmarks share. The raw baseline uses aws-lc-rs directly on a key prepared once,
//! independently of this library's own key handling.

use std::hint::black_box;
use std::time::{Duration, Instant};

use aws_lc_rs::hmac;
use aws_lc_rs::signature::{self, ParsedPublicKey, VerificationAlgorithm};
use identity_model::{Algorithm, AlgorithmSet, KeySet, SigningKey, UnixTime, Validation, base64url};
use serde_json::{Map, Value, json};

/// The issuer of the benchmark tokens.
pub const ISSUER: &str = "https://issuer.example";
/// The time the benchmark tokens are validated at.
pub const NOW: i64 = 1_700_000_000;

/// The raw baseline: the signature primitive on a key prepared once.
#[derive(Debug)]
#[allow(clippy::large_enum_variant)] // unboxed on purpose: the baseline takes no extra indirection
pub enum RawKey {
    /// An asymmetric key parsed once by aws-lc-rs.
    Public(ParsedPublicKey),
    /// An HMAC key.
    Hmac(hmac::Key),
}

impl RawKey {
    fn from_jwk(alg: Algorithm, jwk: &Map<String, Value>) -> RawKey {
        let member = |name: &str| {
            base64url::decode(jwk[name].as_str().expect("generated JWK member").as_bytes())
                .expect("generated JWK is base64url")
        };
        let ec_point = || [vec![4u8], member("x"), member("y")].concat();
        let parsed = |verification: &'static dyn VerificationAlgorithm, bytes: &[u8]| {
            RawKey::Public(ParsedPublicKey::new(verification, bytes).expect("generated key parses"))
        };
        let rsa = |params: &'static signature::RsaParameters| {
            let components = signature::RsaPublicKeyComponents { n: member("n"), e: member("e") };
            RawKey::Public(components.to_parsed_public_key(params).expect("generated key parses"))
        };
        match alg {
            Algorithm::RS256 => rsa(&signature::RSA_PKCS1_2048_8192_SHA256),
            Algorithm::RS384 => rsa(&signature::RSA_PKCS1_2048_8192_SHA384),
            Algorithm::RS512 => rsa(&signature::RSA_PKCS1_2048_8192_SHA512),
            Algorithm::PS256 => rsa(&signature::RSA_PSS_2048_8192_SHA256),
            Algorithm::PS384 => rsa(&signature::RSA_PSS_2048_8192_SHA384),
            Algorithm::PS512 => rsa(&signature::RSA_PSS_2048_8192_SHA512),
            Algorithm::ES256 => parsed(&signature::ECDSA_P256_SHA256_FIXED, &ec_point()),
            Algorithm::ES384 => parsed(&signature::ECDSA_P384_SHA384_FIXED, &ec_point()),
            Algorithm::ES512 => parsed(&signature::ECDSA_P521_SHA512_FIXED, &ec_point()),
            Algorithm::HS256 => RawKey::Hmac(hmac::Key::new(hmac::HMAC_SHA256, &member("k"))),
            Algorithm::HS384 => RawKey::Hmac(hmac::Key::new(hmac::HMAC_SHA384, &member("k"))),
            Algorithm::HS512 => RawKey::Hmac(hmac::Key::new(hmac::HMAC_SHA512, &member("k"))),
            _ => parsed(&signature::ED25519, &member("x")),
        }
    }

    /// Verifies with the raw primitive.
    pub fn verify(&self, message: &[u8], signature: &[u8]) -> bool {
        match self {
            RawKey::Public(key) => key.verify_sig(message, signature).is_ok(),
            RawKey::Hmac(key) => hmac::verify(key, message, signature).is_ok(),
        }
    }
}

/// One algorithm's benchmark: a realistic access token, its key set and rules, and the raw
/// baseline on the same signature.
#[derive(Debug)]
pub struct Case {
    /// The token.
    pub token: String,
    /// Its key set (one key).
    pub keys: KeySet,
    /// The validation rules (issuer, audience, `typ: at+jwt`).
    pub rules: Validation,
    /// The raw baseline key.
    pub raw: RawKey,
    /// `header.payload`.
    pub signing_input: Vec<u8>,
    /// The decoded signature.
    pub signature: Vec<u8>,
}

impl Case {
    /// A full validation at the benchmark's fixed time.
    pub fn validate(&self) -> bool {
        self.rules.validate(black_box(&self.token), &self.keys, UnixTime::from_secs(NOW)).is_ok()
    }

    /// The raw signature verification.
    pub fn verify(&self) -> bool {
        self.raw.verify(black_box(&self.signing_input), black_box(&self.signature))
    }
}

/// Generates a key for `alg`, signs a token and checks both paths accept it.
pub fn case(alg: Algorithm) -> Result<Case, String> {
    let key = SigningKey::generate(alg).map_err(|e| e.to_string())?;
    let claims = json!({
        "iss": ISSUER, "sub": "user-4f1c2a", "aud": "https://api.example", "client_id": "bench-client",
        "scope": "read write", "jti": "9b2f5c1e-5e4d-4d0c-b0b4-1f3d2c7a8e61",
        "iat": NOW - 10, "nbf": NOW - 10, "exp": NOW + 3600,
    });
    let token = key.sign_jwt(Some("at+jwt"), &claims).map_err(|e| e.to_string())?;
    let jwk = key.verification_jwk();
    let keys = KeySet::from_jwks([Value::Object(jwk.clone())]);
    let mut rules = Validation::new(ISSUER).audience("https://api.example").token_type("at+jwt");
    if alg.is_symmetric() {
        rules = rules.algorithms([alg].into_iter().collect::<AlgorithmSet>());
    }
    let (signing_input, signature) = token.rsplit_once('.').ok_or("token has no signature")?;
    let case = Case {
        raw: RawKey::from_jwk(alg, &jwk),
        signing_input: signing_input.as_bytes().to_vec(),
        signature: base64url::decode(signature.as_bytes()).map_err(|e| e.to_string())?,
        token,
        keys,
        rules,
    };
    case.rules.validate(&case.token, &case.keys, UnixTime::from_secs(NOW)).map_err(|e| e.to_string())?;
    if !case.raw.verify(&case.signing_input, &case.signature) {
        return Err("raw verification failed".into());
    }
    Ok(case)
}

/// Nanoseconds per call of `f`, over `iterations` calls.
fn time_batch(iterations: u64, mut f: impl FnMut() -> bool) -> f64 {
    let start = Instant::now();
    for _ in 0..iterations {
        assert!(black_box(f()));
    }
    start.elapsed().as_nanos() as f64 / iterations as f64
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// (validate_ns, verify_ns): batches of each, interleaved, median of the rounds.
pub fn measure(case: &Case, rounds: usize, batch: Duration) -> (f64, f64) {
    measure_pair(|| case.validate(), || case.verify(), rounds, batch)
}

/// A DPoP-bound access token with its proof: the full check (token validation, proof
/// verification against the request, binding) against the raw verification of both
/// signatures.
#[derive(Debug)]
pub struct DpopCase {
    /// The token case (its token carries `cnf.jkt`).
    pub token: Case,
    /// The proof, for `GET` on [`DPOP_URL`].
    pub proof: String,
    /// The proof rules.
    pub rules: identity_model::DpopRules,
    /// The raw baseline for the proof's signature.
    pub proof_raw: RawKey,
    /// The proof's `header.payload`.
    pub proof_signing_input: Vec<u8>,
    /// The proof's decoded signature.
    pub proof_signature: Vec<u8>,
}

/// The URL the benchmark proof is for.
pub const DPOP_URL: &str = "https://api.example/orders";

impl DpopCase {
    /// Token validation, proof verification and the binding check.
    pub fn validate(&self) -> bool {
        let now = UnixTime::from_secs(NOW);
        let Ok(valid) = self.token.rules.validate(black_box(&self.token.token), &self.token.keys, now) else {
            return false;
        };
        let Ok(proof) =
            self.rules.verify(black_box(&self.proof), "GET", DPOP_URL, Some(&self.token.token), now)
        else {
            return false;
        };
        identity_model::check_binding(&valid.claims, Some(&proof)).is_ok()
    }

    /// The raw verification of both signatures.
    pub fn verify(&self) -> bool {
        self.token.verify()
            && self.proof_raw.verify(black_box(&self.proof_signing_input), black_box(&self.proof_signature))
    }
}

/// A DPoP case: a `token_alg` access token bound to a `proof_alg` DPoP key.
pub fn dpop_case(token_alg: Algorithm, proof_alg: Algorithm) -> Result<DpopCase, String> {
    let dpop_key = identity_model::DpopKey::generate(proof_alg).map_err(|e| e.to_string())?;
    let key = SigningKey::generate(token_alg).map_err(|e| e.to_string())?;
    let claims = json!({
        "iss": ISSUER, "sub": "user-4f1c2a", "aud": "https://api.example", "client_id": "bench-client",
        "scope": "read write", "jti": "9b2f5c1e-5e4d-4d0c-b0b4-1f3d2c7a8e61",
        "iat": NOW - 10, "nbf": NOW - 10, "exp": NOW + 3600, "cnf": {"jkt": dpop_key.thumbprint()},
    });
    let mut token = case(token_alg)?;
    token.token = key.sign_jwt(Some("at+jwt"), &claims).map_err(|e| e.to_string())?;
    let jwk = key.verification_jwk();
    token.keys = KeySet::from_jwks([Value::Object(jwk.clone())]);
    token.raw = RawKey::from_jwk(token_alg, &jwk);
    let (signing_input, signature) = token.token.rsplit_once('.').ok_or("token has no signature")?;
    token.signing_input = signing_input.as_bytes().to_vec();
    token.signature = base64url::decode(signature.as_bytes()).map_err(|e| e.to_string())?;
    let request = identity_model::ProofRequest::new("GET", DPOP_URL).with_access_token(&token.token);
    let proof = dpop_key.proof(&request, UnixTime::from_secs(NOW)).map_err(|e| e.to_string())?;
    let (proof_input, proof_signature) = proof.rsplit_once('.').ok_or("proof has no signature")?;
    let case = DpopCase {
        proof_raw: RawKey::from_jwk(proof_alg, dpop_key.public_jwk()),
        proof_signing_input: proof_input.as_bytes().to_vec(),
        proof_signature: base64url::decode(proof_signature.as_bytes()).map_err(|e| e.to_string())?,
        proof,
        rules: identity_model::DpopRules::new(),
        token,
    };
    if !case.validate() || !case.verify() {
        return Err("the DPoP case does not verify".into());
    }
    Ok(case)
}

/// (validate_ns, verify_ns) of a DPoP case.
pub fn measure_dpop(case: &DpopCase, rounds: usize, batch: Duration) -> (f64, f64) {
    measure_pair(|| case.validate(), || case.verify(), rounds, batch)
}

fn measure_pair(
    validate: impl Fn() -> bool + Copy,
    verify: impl Fn() -> bool + Copy,
    rounds: usize,
    batch: Duration,
) -> (f64, f64) {
    // Calibrate on the raw verification, warming both paths up.
    let mut iterations = 16u64;
    loop {
        let per_op = time_batch(iterations, verify);
        time_batch(iterations, validate);
        if per_op * iterations as f64 >= batch.as_nanos() as f64 / 4.0 || iterations > 1 << 26 {
            iterations = ((batch.as_nanos() as f64 / per_op) as u64).max(16);
            break;
        }
        iterations *= 4;
    }
    let mut validate_ns = Vec::with_capacity(rounds);
    let mut verify_ns = Vec::with_capacity(rounds);
    for _ in 0..rounds.max(1) {
        validate_ns.push(time_batch(iterations, validate));
        verify_ns.push(time_batch(iterations, verify));
    }
    (median(validate_ns), median(verify_ns))
}

/// Serves one case's discovery document and key set from memory.
#[derive(Debug)]
struct InMemoryProvider {
    discovery: Vec<u8>,
    jwks: std::sync::Mutex<Vec<u8>>,
    delay: Duration,
}

impl identity_model::transport::HttpTransport for InMemoryProvider {
    fn get(
        &self,
        request: identity_model::transport::HttpRequest,
    ) -> identity_model::transport::BoxFuture<
        '_,
        Result<identity_model::transport::HttpResponse, identity_model::transport::TransportError>,
    > {
        let body = if request.url.ends_with("/jwks") {
            self.jwks.lock().map(|j| j.clone()).unwrap_or_default()
        } else {
            self.discovery.clone()
        };
        let delay = self.delay;
        Box::pin(async move {
            tokio::time::sleep(delay).await;
            Ok(identity_model::transport::HttpResponse {
                status: 200,
                content_type: Some("application/json".into()),
                body,
                ..Default::default()
            })
        })
    }
}

fn jwks_of(keys: &KeySet) -> Vec<u8> {
    json!({"keys": keys.keys().iter().map(|k| Value::Object(k.members().clone())).collect::<Vec<_>>()})
        .to_string()
        .into_bytes()
}

/// An async `Authority` (cold) for the case, whose provider answers after `delay`; the
/// provider's key set can be replaced with [`Rotation::rotate`].
pub fn authority(case: &Case, delay: Duration) -> Result<(identity_model::Authority, Rotation), String> {
    authority_with(case, delay, identity_model::CacheConfig::default())
}

/// [`authority`] with explicit cache settings.
pub fn authority_with(
    case: &Case,
    delay: Duration,
    cache: identity_model::CacheConfig,
) -> Result<(identity_model::Authority, Rotation), String> {
    let provider = std::sync::Arc::new(InMemoryProvider {
        discovery: json!({"issuer": ISSUER, "jwks_uri": format!("{ISSUER}/jwks")}).to_string().into_bytes(),
        jwks: std::sync::Mutex::new(jwks_of(&case.keys)),
        delay,
    });
    let authority = identity_model::Authority::builder(ISSUER)
        .rules(case.rules.clone())
        .policy(identity_model::DiscoveryPolicy::default().resource_server_fields())
        .transport(provider.clone())
        .cache(cache)
        .clock(std::sync::Arc::new(identity_model::FixedClock::new(UnixTime::from_secs(NOW))))
        .build()
        .map_err(|e| e.to_string())?;
    Ok((authority, Rotation { provider }))
}

/// Replaces what a benchmark provider publishes.
#[derive(Debug)]
pub struct Rotation {
    provider: std::sync::Arc<InMemoryProvider>,
}

impl Rotation {
    /// Publishes `keys` from now on.
    pub fn rotate(&self, keys: &KeySet) {
        if let Ok(mut jwks) = self.provider.jwks.lock() {
            *jwks = jwks_of(keys);
        }
    }
}

/// [`facade`] with the validated-token cache on (warmed: each call is a cache hit).
pub fn cached_facade(case: &Case) -> Result<identity_model::blocking::Authority, String> {
    let provider = std::sync::Arc::new(InMemoryProvider {
        discovery: json!({"issuer": ISSUER, "jwks_uri": format!("{ISSUER}/jwks")}).to_string().into_bytes(),
        jwks: std::sync::Mutex::new(jwks_of(&case.keys)),
        delay: Duration::ZERO,
    });
    let authority = identity_model::Authority::builder(ISSUER)
        .rules(case.rules.clone())
        .policy(identity_model::DiscoveryPolicy::default().resource_server_fields())
        .transport(provider)
        .clock(std::sync::Arc::new(identity_model::FixedClock::new(UnixTime::from_secs(NOW))))
        .token_cache(identity_model::TokenCacheConfig::default())
        .build()
        .map_err(|e| e.to_string())?;
    let authority = identity_model::blocking::Authority::new(authority);
    authority.validate(&case.token).map_err(|e| e.to_string())?;
    authority.validate(&case.token).map_err(|e| e.to_string())?;
    Ok(authority)
}

/// The case's token validated through the façade: a blocking `Authority` whose keys came from
/// an in-memory provider, warmed, so each call takes the cached hot path.
pub fn facade(case: &Case) -> Result<identity_model::blocking::Authority, String> {
    let (authority, _) = self::authority(case, Duration::ZERO)?;
    let authority = identity_model::blocking::Authority::new(authority);
    authority.validate(&case.token).map_err(|e| e.to_string())?;
    Ok(authority)
}
