//! Published JOSE vectors: Project Wycheproof's JWS and JWK tests (every case) and the examples
//! of RFC 7515 Appendix A and RFC 8037 Appendix A.4. Data under `tests/vectors/jose/`.

#![allow(clippy::unwrap_used)] // tests fail loudly by design

use identity_model_core::{AlgorithmSet, ErrorKind, KeySet, UnixTime, Validation, jws};
use serde_json::Value;

fn load(name: &str) -> Value {
    let path = format!("{}/tests/vectors/jose/{name}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_slice(&std::fs::read(&path).expect("vector file")).expect("vector JSON")
}

fn all_algorithms() -> AlgorithmSet {
    AlgorithmSet::asymmetric().iter().chain(AlgorithmSet::symmetric().iter()).collect()
}

/// Cases where this library's documented policy differs from Wycheproof's expectation. Each is
/// still executed, and must end exactly as stated here.
const DEVIATIONS: &[(&str, u64, Option<ErrorKind>, &str)] = &[
    (
        "signature",
        346,
        Some(ErrorKind::InvalidKey),
        "the JWK says alg PS256, the token PS384: a key's alg must equal the header's",
    ),
    ("signature", 350, Some(ErrorKind::InvalidKey), "same as 346 with key_ops"),
    (
        "signature",
        347,
        Some(ErrorKind::InvalidKey),
        "the JWK's alg \"ES521\" is not a registered algorithm, so the key is set aside",
    ),
    ("signature", 351, Some(ErrorKind::InvalidKey), "same as 347 with key_ops"),
    (
        "signature",
        367,
        None,
        "byte-identical to tcId 357, which the same file marks valid: a correct MAC is accepted",
    ),
    (
        "signature",
        370,
        None,
        "byte-identical to tcId 357, which the same file marks valid: a correct MAC is accepted",
    ),
    (
        "signature",
        372,
        Some(ErrorKind::MalformedToken),
        "a '?' inside the header is not base64url; we never skip characters",
    ),
    (
        "signature",
        373,
        Some(ErrorKind::InvalidSignature),
        "a '?' inside the payload changes the signing input; we never skip characters",
    ),
];

/// A key set from a Wycheproof key field: a JWK Set or a single JWK.
fn key_set(keys: &Value) -> KeySet {
    if keys.get("keys").is_some() {
        KeySet::from_json(keys.to_string().as_bytes()).expect("vector key set parses")
    } else {
        KeySet::from_jwks([keys.clone()])
    }
}

/// Runs every test of a Wycheproof file; returns (executed, mismatches).
fn run_wycheproof(file: &str, kind: &str) -> (usize, Vec<String>) {
    let data = load(file);
    let mut executed = 0;
    let mut mismatches = Vec::new();
    for group in data["testGroups"].as_array().expect("groups") {
        let keys = key_set(group.get("public").unwrap_or(&group["private"]));
        for test in group["tests"].as_array().expect("tests") {
            executed += 1;
            let expected_valid = match test["result"].as_str() {
                Some("valid") => true,
                Some("invalid") => false,
                other => panic!("tcId {}: unexpected result {other:?}", test["tcId"]),
            };
            let outcome = jws::verify(test["jws"].as_str().expect("jws"), &keys, all_algorithms());
            let id = test["tcId"].as_u64().expect("tcId");
            if let Some((_, _, expected_kind, why)) = DEVIATIONS.iter().find(|d| d.0 == kind && d.1 == id) {
                let got = outcome.as_ref().err().map(|e| e.kind());
                if got != *expected_kind {
                    mismatches.push(format!("{file} tcId {id}: documented deviation ({why}) expected {expected_kind:?}, got {got:?}"));
                }
                continue;
            }
            if outcome.is_ok() != expected_valid {
                mismatches.push(format!(
                    "{file} tcId {} ({}: {}): expected {}, got {:?}",
                    test["tcId"],
                    group["comment"],
                    test["comment"],
                    test["result"],
                    outcome.map(|_| "valid").map_err(|e| e.to_string())
                ));
            }
        }
    }
    (executed, mismatches)
}

#[test]
fn wycheproof_json_web_signature() {
    let (executed, mismatches) = run_wycheproof("wycheproof_json_web_signature_test.json", "signature");
    assert_eq!(executed, load("wycheproof_json_web_signature_test.json")["numberOfTests"]);
    assert!(mismatches.is_empty(), "{} mismatches:\n{}", mismatches.len(), mismatches.join("\n"));
}

#[test]
fn wycheproof_json_web_key() {
    let (executed, mismatches) = run_wycheproof("wycheproof_json_web_key_test.json", "key");
    assert_eq!(executed, load("wycheproof_json_web_key_test.json")["numberOfTests"]);
    assert!(mismatches.is_empty(), "{} mismatches:\n{}", mismatches.len(), mismatches.join("\n"));
}

fn rfc(name: &str) -> (String, KeySet) {
    let vectors = load("rfc_vectors.json");
    let vector = &vectors[name];
    let keys = vector.get("jwk").map_or_else(KeySet::default, |jwk| KeySet::from_jwks([jwk.clone()]));
    (vector["token"].as_str().expect("token").to_owned(), keys)
}

#[test]
fn rfc7515_appendix_a_examples_verify() {
    for (name, payload_starts) in [
        ("rfc7515_A1", "{\"iss\":\"joe\""),
        ("rfc7515_A2", "{\"iss\":\"joe\""),
        ("rfc7515_A3", "{\"iss\":\"joe\""),
        ("rfc7515_A4", "Payload"),
        ("rfc8037_A4", "Example of Ed25519 signing"),
    ] {
        let (token, keys) = rfc(name);
        let verified = jws::verify(&token, &keys, all_algorithms()).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(String::from_utf8_lossy(&verified.payload).starts_with(payload_starts), "{name}");
        // One flipped signature bit must fail.
        let mut tampered = token.clone().into_bytes();
        let last = tampered.len() - 2;
        tampered[last] = if tampered[last] == b'A' { b'B' } else { b'A' };
        let tampered = String::from_utf8(tampered).unwrap();
        let err = jws::verify(&tampered, &keys, all_algorithms()).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidSignature, "{name}");
    }
}

#[test]
fn rfc7515_a1_to_a3_are_valid_jwts_before_their_expiry() {
    for name in ["rfc7515_A1", "rfc7515_A2", "rfc7515_A3"] {
        let (token, keys) = rfc(name);
        let rules = Validation::new("joe")
            .dangerous_any_audience()
            .algorithms(all_algorithms())
            .leeway(std::time::Duration::ZERO);
        let valid = rules.validate(&token, &keys, UnixTime::from_secs(1_300_819_379)).unwrap();
        assert_eq!(valid.claims.get("http://example.com/is_root"), Some(&Value::Bool(true)));
        let expired = rules.validate(&token, &keys, UnixTime::from_secs(1_300_819_380)).unwrap_err();
        assert_eq!(expired.kind(), ErrorKind::TokenExpired, "{name}");
    }
}

#[test]
fn rfc7515_a1_hmac_needs_opt_in() {
    let (token, keys) = rfc("rfc7515_A1");
    let err = jws::verify(&token, &keys, AlgorithmSet::asymmetric()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::AlgorithmNotAllowed);
}

#[test]
fn rfc7515_a5_unsecured_is_never_accepted() {
    let (token, keys) = rfc("rfc7515_A5");
    let err = jws::verify(&token, &keys, all_algorithms()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::AlgorithmNotAllowed);
}

#[test]
fn encrypted_jwt_example_is_refused_as_jwe() {
    let (token, keys) = rfc("jwt_draft11_A1");
    let err = jws::verify(&token, &keys, all_algorithms()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::MalformedToken);
    assert!(err.message().contains("JWE"), "{err}");
}
