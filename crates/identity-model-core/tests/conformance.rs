//! py-identity-model's cross-language conformance suite (vendored under
//! `tests/vectors/identity-model-spec/`, Apache-2.0, see its NOTICE.md).
//!
//! Every case id in every file is either executed here or listed in [`DEFERRED`] with the
//! capability (and issue) that will execute it; the runner fails on any other id, and on a
//! deferred id that is also executed.

#![allow(clippy::unwrap_used)] // tests fail loudly by design

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::Duration;

use identity_model_core::{
    Algorithm, DiscoveryDocument, DiscoveryPolicy, Error, ErrorKind, KeySet, SigningKey, UnixTime, Validation,
};
use serde_json::{Map, Value, json};

/// Case ids that belong to capabilities built later.
const DEFERRED: &[(&str, &str)] = &[
    (
        "JWT-010",
        "Authority: forced JWKS refresh on an unknown kid (executed by crates/identity-model/tests/conformance_authority.rs)",
    ),
    (
        "JWKS-004",
        "Authority: forced refresh then retry on a kid miss (executed by crates/identity-model/tests/conformance_authority.rs)",
    ),
    (
        "JWKS-005",
        "Authority: cache hit within TTL (executed by crates/identity-model/tests/conformance_authority.rs)",
    ),
    (
        "JWKS-006",
        "Authority: force refresh on signature failure (executed by crates/identity-model/tests/conformance_authority.rs)",
    ),
    (
        "DISC-004",
        "Authority: discovery cache hit within TTL (executed by crates/identity-model/tests/conformance_authority.rs)",
    ),
    (
        "DISC-005",
        "Authority: discovery cache miss after TTL (executed by crates/identity-model/tests/conformance_authority.rs)",
    ),
    (
        "DISC-006",
        "Authority: HTTP error status from the provider (executed by crates/identity-model/tests/conformance_authority.rs)",
    ),
    (
        "DPOP-004",
        "DPoP client: TokenClient's retry on the fixture's use_dpop_nonce answer and the per-server nonce cache (executed by crates/identity-model/tests/conformance_tokens.rs)",
    ),
    (
        "DPOP-008",
        "DPoP client: TokenClient::get_resource sends Authorization: DPoP with a proof carrying ath (executed by crates/identity-model/tests/conformance_tokens.rs)",
    ),
];

/// Whole files whose capability is built later.
const DEFERRED_FILES: &[(&str, &str)] = &[
    (
        "client-credentials.json",
        "token requests: executed by crates/identity-model/tests/conformance_tokens.rs",
    ),
    (
        "authorization-code.json",
        "token requests: executed by crates/identity-model/tests/conformance_tokens.rs",
    ),
    ("introspection.json", "token requests: executed by crates/identity-model/tests/conformance_tokens.rs"),
    ("revocation.json", "token requests: executed by crates/identity-model/tests/conformance_tokens.rs"),
    ("token-exchange.json", "token requests: executed by crates/identity-model/tests/conformance_tokens.rs"),
    ("userinfo.json", "token requests: executed by crates/identity-model/tests/conformance_tokens.rs"),
];

fn spec_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/vectors/identity-model-spec")
}

fn load(relative: &str) -> Value {
    let path = spec_dir().join(relative);
    serde_json::from_slice(&std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display())))
        .expect("conformance JSON")
}

/// "1h", "-1m", "30s", "-2h" as seconds.
fn duration_secs(text: &str) -> i64 {
    let (number, unit) = text.split_at(text.len() - 1);
    let n: i64 = number.parse().unwrap_or_else(|_| panic!("duration {text:?}"));
    n * match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => panic!("duration unit in {text:?}"),
    }
}

/// "YYYY-MM-DDTHH:MM:SSZ" as Unix seconds (civil-from-days, proleptic Gregorian).
fn rfc3339_secs(text: &str) -> i64 {
    let field = |range: std::ops::Range<usize>| -> i64 { text[range].parse().expect("date field") };
    let (y, m, d) = (field(0..4), field(5..7), field(8..10));
    let (hh, mm, ss) = (field(11..13), field(14..16), field(17..19));
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    (era * 146_097 + doe - 719_468) * 86_400 + hh * 3600 + mm * 60 + ss
}

fn mint(spec: &Value, now: i64) -> String {
    if let Some(path) = spec.get("static").and_then(Value::as_str) {
        let text =
            std::fs::read_to_string(spec_dir().join("test-fixtures").join(path)).expect("static token");
        return text.trim().to_owned();
    }
    let alg: Algorithm = spec["alg"].as_str().expect("alg").parse().expect("known alg");
    let key = match spec["signing_key"].as_str() {
        Some("fixture") => {
            let jwk = load("test-fixtures/validation/signing-key.jwk.json");
            SigningKey::from_jwk(jwk.as_object().expect("jwk object"), Some(alg)).expect("fixture key")
        }
        Some("ephemeral") => SigningKey::generate(alg).expect("ephemeral key"),
        other => panic!("signing_key {other:?}"),
    };
    let key = match spec.get("header_kid").and_then(Value::as_str) {
        Some(kid) => key.with_kid(kid),
        None => key,
    };
    let mut claims: Map<String, Value> = spec["claims"].as_object().expect("claims").clone();
    for name in ["exp", "nbf", "iat"] {
        if let Some(Value::String(offset)) = claims.get(name) {
            let at = now + duration_secs(offset);
            claims.insert(name.into(), json!(at));
        }
    }
    key.sign_jwt(Some("JWT"), &Value::Object(claims)).expect("signing")
}

/// py-identity-model's validation defaults, as options: `iat` required, issuer and audience
/// checked only when given, nonce compared when given.
fn rules(options: &Value) -> Validation {
    let mut rules = match options.get("expected_issuer").and_then(Value::as_str) {
        Some(issuer) => Validation::new(issuer),
        None => Validation::dangerous_any_issuer(),
    }
    .require("iat");
    // py-identity-model checks the audience only when given: here that is the explicit escape.
    rules = match options.get("expected_audience").and_then(Value::as_str) {
        Some(aud) => rules.audience(aud),
        None => rules.dangerous_any_audience(),
    };
    if let Some(skew) = options.get("clock_skew").and_then(Value::as_str) {
        rules = rules.leeway(Duration::from_secs(duration_secs(skew).unsigned_abs()));
    }
    for claim in options.get("required_claims").and_then(Value::as_array).into_iter().flatten() {
        rules = rules.require(claim.as_str().expect("claim name"));
    }
    if let Some(nonce) = options.get("expected_nonce").and_then(Value::as_str) {
        let nonce = nonce.to_owned();
        rules = rules.custom(move |_, claims| match claims.get("nonce").and_then(Value::as_str) {
            Some(found) if found == nonce => Ok(()),
            _ => Err(Error::new(ErrorKind::InvalidClaim, "nonce does not match").with_claim("nonce")),
        });
    }
    rules
}

/// The suite's canonical error codes in this library's kinds.
fn expected_kind(error: &str, claim: Option<&str>) -> ErrorKind {
    match (error, claim) {
        ("alg_none", _) => ErrorKind::AlgorithmNotAllowed,
        ("signature", _) => ErrorKind::InvalidSignature,
        ("malformed", _) => ErrorKind::MalformedToken,
        ("unsupported_alg", _) => ErrorKind::UnsupportedAlgorithm,
        ("key_conversion", _) => ErrorKind::InvalidKey,
        ("claim_validation", Some("exp")) => ErrorKind::TokenExpired,
        ("claim_validation", Some("nbf")) => ErrorKind::TokenNotYetValid,
        ("claim_validation", Some("iss")) => ErrorKind::InvalidIssuer,
        ("claim_validation", Some("aud")) => ErrorKind::InvalidAudience,
        ("claim_validation", Some("nonce")) => ErrorKind::InvalidClaim,
        ("claim_validation", Some(_)) => ErrorKind::MissingClaim,
        other => panic!("unknown expected error {other:?}"),
    }
}

fn run_validation(executed: &mut BTreeSet<String>) {
    let keys =
        KeySet::from_json(&std::fs::read(spec_dir().join("test-fixtures/validation/jwks.json")).unwrap())
            .expect("fixture JWKS");
    for case in load("conformance/validation.json")["tests"].as_array().expect("tests") {
        let id = case["id"].as_str().expect("id");
        let Some(vectors) = case.get("vectors").and_then(Value::as_array) else { continue };
        for vector in vectors {
            let options = &vector["options"];
            let now = rfc3339_secs(options["now"].as_str().expect("now"));
            let token = mint(&vector["token"], now);
            let outcome = rules(options).validate(&token, &keys, UnixTime::from_secs(now));
            let expect = &vector["expect"];
            match expect["outcome"].as_str() {
                Some("accept") => {
                    let valid = outcome.unwrap_or_else(|e| panic!("{id}: expected accept, got {e}"));
                    let payload: Value = serde_json::from_str(valid.claims.raw_json()).unwrap();
                    for (name, value) in expect["claims"].as_object().expect("claims") {
                        assert_eq!(&payload[name], value, "{id}: claim {name}");
                    }
                }
                Some("reject") => {
                    let err = outcome.err().unwrap_or_else(|| panic!("{id}: expected reject"));
                    let claim = expect.get("claim").and_then(Value::as_str);
                    let kind = expected_kind(expect["error"].as_str().expect("error"), claim);
                    assert_eq!(err.kind(), kind, "{id}: {err}");
                    if let Some(claim) = claim {
                        assert_eq!(err.claim(), Some(claim), "{id}: {err}");
                    }
                }
                other => panic!("{id}: outcome {other:?}"),
            }
        }
        executed.insert(id.to_owned());
    }
}

fn run_jwks(executed: &mut BTreeSet<String>) {
    let valid = std::fs::read(spec_dir().join("test-fixtures/jwks/valid.json")).unwrap();
    let set = KeySet::from_json(&valid).expect("valid.json parses");
    // JWKS-001: a typed key set with all keys.
    assert_eq!((set.len(), set.rejected().len()), (2, 0));
    executed.insert("JWKS-001".into());
    // JWKS-002: each key exposes kty/kid/use/alg; RSA n/e; EC crv/x/y.
    for key in set.keys() {
        let m = key.members();
        assert!(["kty", "kid", "use", "alg"].iter().all(|n| m[*n].is_string()), "{m:?}");
        let specific: &[&str] = if key.kty().as_str() == "RSA" { &["n", "e"] } else { &["crv", "x", "y"] };
        assert!(specific.iter().all(|n| m[*n].is_string()), "{m:?}");
        assert_eq!(key.key_use(), Some("sig"));
    }
    executed.insert("JWKS-002".into());
    // JWKS-003: resolve by kid.
    assert_eq!(set.find("ec-sig-key").next().map(|k| k.kty().as_str()), Some("EC"));
    assert_eq!(set.find("rsa-sig-key").next().and_then(|k| k.declared_alg()), Some(Algorithm::RS256));
    assert!(set.find("absent").next().is_none());
    executed.insert("JWKS-003".into());
    // JWKS-007: invalid JSON is a descriptive invalid_key_set error; an empty set has no keys
    // (the Authority turns a fetched empty set into an error: issue 3).
    let err = KeySet::from_json(b"{not json").unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidKeySet);
    assert!(std::error::Error::source(&err).is_some());
    let empty = std::fs::read(spec_dir().join("test-fixtures/jwks/empty.json")).unwrap();
    assert!(KeySet::from_json(&empty).unwrap().is_empty());
    executed.insert("JWKS-007".into());
}

fn run_discovery(executed: &mut BTreeSet<String>) {
    let fixture = |name: &str| std::fs::read(spec_dir().join("test-fixtures/discovery").join(name)).unwrap();
    let issuer = "https://provider.example.com";
    let policy = DiscoveryPolicy::default();
    let valid = DiscoveryDocument::from_json(&fixture("valid.json"), issuer, &policy).expect("valid.json");
    // DISC-001: required members with the right types.
    assert_eq!(valid.issuer(), Some(issuer));
    assert_eq!(valid.jwks_uri(), Some("https://provider.example.com/jwks"));
    assert_eq!(valid.list("response_types_supported"), ["code", "id_token", "code id_token"]);
    executed.insert("DISC-001".into());
    // DISC-002: all seven required members accessible.
    for name in identity_model_core::OPENID_REQUIRED {
        assert!(valid.members().contains_key(name), "{name}");
    }
    executed.insert("DISC-002".into());
    // DISC-003: issuer mismatch.
    let err = DiscoveryDocument::from_json(&fixture("issuer-mismatch.json"), issuer, &policy).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::IssuerMismatch);
    executed.insert("DISC-003".into());
    // DISC-007: invalid JSON.
    let err = DiscoveryDocument::from_json(b"{\"issuer\": ", issuer, &policy).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidDocument);
    assert!(std::error::Error::source(&err).is_some());
    executed.insert("DISC-007".into());
    // DISC-008: missing members, all named.
    let err = DiscoveryDocument::from_json(&fixture("missing-jwks-uri.json"), issuer, &policy).unwrap_err();
    assert_eq!((err.kind(), err.claim()), (ErrorKind::MissingFields, Some("jwks_uri")));
    let err =
        DiscoveryDocument::from_json(&fixture("missing-multiple-fields.json"), issuer, &policy).unwrap_err();
    assert!(
        err.message().contains("token_endpoint") && err.message().contains("subject_types_supported"),
        "{err}"
    );
    executed.insert("DISC-008".into());
    // DISC-009: unknown members kept, not rejected.
    assert_eq!(valid.text("x_custom_extension_field"), Some("should-be-ignored-not-rejected"));
    executed.insert("DISC-009".into());
    // DISC-010: HTTPS required; HTTP only on loopback, and only when allowed.
    let http = String::from_utf8(fixture("valid.json"))
        .unwrap()
        .replace("https://provider.example.com", "http://provider.example.com");
    let err =
        DiscoveryDocument::from_json(http.as_bytes(), "http://provider.example.com", &policy).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::PolicyViolation);
    let local = String::from_utf8(fixture("valid.json"))
        .unwrap()
        .replace("https://provider.example.com", "http://127.0.0.1:8080");
    assert_eq!(
        DiscoveryDocument::from_json(local.as_bytes(), "http://127.0.0.1:8080", &policy).unwrap_err().kind(),
        ErrorKind::PolicyViolation
    );
    let dev = DiscoveryPolicy::default().allow_http_on_loopback();
    assert!(DiscoveryDocument::from_json(local.as_bytes(), "http://127.0.0.1:8080", &dev).is_ok());
    executed.insert("DISC-010".into());
}

/// A compact JWS's header and payload, decoded (not verified).
fn decode_parts(token: &str) -> (Map<String, Value>, Map<String, Value>) {
    let part = |i: usize| -> Map<String, Value> {
        let segment = token.split('.').nth(i).unwrap();
        serde_json::from_slice(&identity_model_core::base64url::decode(segment.as_bytes()).unwrap()).unwrap()
    };
    (part(0), part(1))
}

fn run_dpop(executed: &mut BTreeSet<String>) {
    use identity_model_core::{
        DpopKey, DpopRules, KeyType, ProofRequest, access_token_hash, check_binding, thumbprint,
    };
    let fixture_key = |name: &str| {
        let pair = load(&format!("test-fixtures/dpop/{name}"));
        let key = DpopKey::from_jwk(pair["private"].as_object().unwrap(), None).unwrap();
        assert_eq!(key.thumbprint(), pair["thumbprint"].as_str().unwrap(), "{name}");
        key
    };
    let keys = [fixture_key("dpop-keypair-es256.json"), fixture_key("dpop-keypair-rs256.json")];
    let now = UnixTime::from_secs(1_732_200_000);
    let url = "https://server.example.com/token";

    // DPOP-001, DPOP-002: the token-request proof's shape, for an EC and an RSA key.
    for key in &keys {
        let proof = key.proof(&ProofRequest::new("POST", url), now).unwrap();
        let (header, payload) = decode_parts(&proof);
        assert_eq!(header["typ"], "dpop+jwt");
        assert_eq!(header["alg"], key.alg().as_str());
        let jwk = header["jwk"].as_object().unwrap();
        let members: BTreeSet<&str> = jwk.keys().map(String::as_str).collect();
        let public: BTreeSet<&str> = ["kty", "crv", "x", "y", "n", "e"].into();
        assert!(members.is_subset(&public), "only public members: {members:?}");
        assert!(!header.contains_key("kid"));
        assert!(payload["jti"].as_str().is_some_and(|j| j.len() >= 22), "128-bit jti");
        assert_eq!(payload["htm"], "POST");
        assert_eq!(payload["htu"], url);
        assert_eq!(payload["iat"], now.as_secs());
        assert!(!payload.contains_key("ath"), "a token-request proof has no ath");
        let again = key.proof(&ProofRequest::new("POST", url), now).unwrap();
        assert_ne!(decode_parts(&again).1["jti"], payload["jti"], "a fresh jti per proof");
        let verified = DpopRules::new().verify(&proof, "POST", url, None, now).unwrap();
        assert_eq!(verified.jkt, key.thumbprint());
    }
    executed.insert("DPOP-001".into());
    executed.insert("DPOP-002".into());

    // DPOP-003: ath.
    for pair in load("test-fixtures/dpop/dpop-ath-pairs.json")["pairs"].as_array().unwrap() {
        let token = pair["access_token"].as_str().unwrap();
        assert_eq!(access_token_hash(token), pair["ath"].as_str().unwrap());
        let request = ProofRequest::new("GET", "https://resource.example.com/protectedresource")
            .with_access_token(token);
        let proof = keys[0].proof(&request, now).unwrap();
        assert_eq!(decode_parts(&proof).1["ath"], pair["ath"]);
    }
    executed.insert("DPOP-003".into());

    // DPOP-005: thumbprints, and cnf.jkt binding.
    for pair in load("test-fixtures/dpop/dpop-thumbprint-pairs.json")["pairs"].as_array().unwrap() {
        let jwk = pair["jwk"].as_object().unwrap();
        let kty = match jwk["kty"].as_str().unwrap() {
            "RSA" => KeyType::Rsa,
            "EC" => KeyType::Ec,
            "OKP" => KeyType::Okp,
            other => panic!("kty {other}"),
        };
        assert_eq!(
            thumbprint(kty, jwk).unwrap(),
            pair["thumbprint"].as_str().unwrap(),
            "{}",
            pair["description"]
        );
    }
    let bound = load("test-fixtures/dpop/dpop-bound-token.json");
    assert_eq!(bound["payload"]["cnf"]["jkt"].as_str().unwrap(), keys[0].thumbprint());
    let claims = identity_model_core::Claims::from_json(bound["payload"].to_string().into_bytes()).unwrap();
    let resource = "https://resource.example.com/protectedresource";
    let at = "example-dpop-bound-access-token-value";
    let request = ProofRequest::new("GET", resource).with_access_token(at);
    let by_bound_key = DpopRules::new()
        .verify(&keys[0].proof(&request, now).unwrap(), "GET", resource, Some(at), now)
        .unwrap();
    check_binding(&claims, Some(&by_bound_key)).unwrap();
    let by_other_key = DpopRules::new()
        .verify(&keys[1].proof(&request, now).unwrap(), "GET", resource, Some(at), now)
        .unwrap();
    assert_eq!(check_binding(&claims, Some(&by_other_key)).unwrap_err().kind(), ErrorKind::DpopKeyMismatch);
    assert_eq!(check_binding(&claims, None).unwrap_err().kind(), ErrorKind::DpopProofRequired);
    executed.insert("DPOP-005".into());

    // DPOP-006: wrong htm or htu, symmetric or none algorithm, no jwk.
    let proof = keys[0].proof(&ProofRequest::new("POST", url), now).unwrap();
    let wrong_htm = DpopRules::new().verify(&proof, "GET", url, None, now).unwrap_err();
    assert_eq!((wrong_htm.kind(), wrong_htm.claim()), (ErrorKind::InvalidDpopProof, Some("htm")));
    let wrong_htu =
        DpopRules::new().verify(&proof, "POST", "https://server.example.com/other", None, now).unwrap_err();
    assert_eq!((wrong_htu.kind(), wrong_htu.claim()), (ErrorKind::InvalidDpopProof, Some("htu")));
    let claims = json!({"jti": "j", "htm": "POST", "htu": url, "iat": now.as_secs()});
    let hmac = SigningKey::generate(Algorithm::HS256).unwrap();
    let mut header = Map::new();
    header.insert("typ".into(), "dpop+jwt".into());
    header.insert("jwk".into(), Value::Object(hmac.verification_jwk()));
    let symmetric = hmac.sign_compact(header, claims.to_string().as_bytes()).unwrap();
    let b64 = |v: &Value| identity_model_core::base64url::encode(v.to_string());
    let none = format!(
        "{}.{}.",
        b64(&json!({"typ": "dpop+jwt", "alg": "none", "jwk": keys[0].public_jwk()})),
        b64(&claims)
    );
    let signer = SigningKey::generate(Algorithm::ES256).unwrap();
    let mut header = Map::new();
    header.insert("typ".into(), "dpop+jwt".into());
    let no_jwk = signer.sign_compact(header, claims.to_string().as_bytes()).unwrap();
    for (name, bad) in [("HS256", symmetric), ("none", none), ("no jwk", no_jwk)] {
        let err = DpopRules::new().verify(&bad, "POST", url, None, now).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidDpopProof, "{name}: {err}");
    }
    executed.insert("DPOP-006".into());

    // DPOP-007: key generation.
    let es = DpopKey::generate(Algorithm::ES256).unwrap();
    assert_eq!(es.public_jwk()["crv"], "P-256");
    assert!(es.private_jwk().unwrap().contains_key("d"));
    let rs = DpopKey::generate(Algorithm::RS256).unwrap();
    let n =
        identity_model_core::base64url::decode(rs.public_jwk()["n"].as_str().unwrap().as_bytes()).unwrap();
    assert!(n.len() * 8 >= 2048, "{} bits", n.len() * 8);
    assert_eq!(DpopKey::generate(Algorithm::HS256).unwrap_err().kind(), ErrorKind::InvalidKey);
    executed.insert("DPOP-007".into());
}

#[test]
fn every_conformance_case_is_executed_or_deferred() {
    let mut executed = BTreeSet::new();
    run_validation(&mut executed);
    run_jwks(&mut executed);
    run_discovery(&mut executed);
    run_dpop(&mut executed);

    let mut untraced = Vec::new();
    for entry in std::fs::read_dir(spec_dir().join("conformance")).unwrap() {
        let path = entry.unwrap().path();
        let file = path.file_name().unwrap().to_string_lossy().into_owned();
        let file_deferred = DEFERRED_FILES.iter().any(|(f, _)| *f == file);
        for case in load(&format!("conformance/{file}"))["tests"].as_array().expect("tests") {
            let id = case["id"].as_str().expect("id");
            let deferred = file_deferred || DEFERRED.iter().any(|(d, _)| *d == id);
            match (executed.contains(id), deferred) {
                (true, true) => {
                    untraced.push(format!("{id} ({file}) is executed but still listed as deferred"))
                }
                (false, false) => untraced.push(format!("{id} ({file}) is neither executed nor deferred")),
                _ => {}
            }
        }
    }
    assert!(untraced.is_empty(), "{}", untraced.join("\n"));
    // Every validation case with vectors ran.
    assert_eq!(executed.iter().filter(|id| id.starts_with("JWT-")).count(), 12);
}

#[test]
fn date_helpers() {
    assert_eq!(rfc3339_secs("2023-11-14T22:13:20Z"), 1_700_000_000);
    assert_eq!(rfc3339_secs("1970-01-01T00:00:00Z"), 0);
    assert_eq!(duration_secs("-2h"), -7200);
}
