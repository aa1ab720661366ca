//! Known attacks on JWT validators, each with the error kind it must end in.

#![allow(clippy::unwrap_used)] // tests fail loudly by design

use std::time::Duration;

use identity_model_core::{
    Algorithm, AlgorithmSet, ErrorKind, KeySet, SigningKey, UnixTime, Validation, base64url,
};
use serde_json::{Value, json};

const ISS: &str = "https://issuer.example";
const NOW: i64 = 1_700_000_000;

fn b64(s: &str) -> String {
    base64url::encode(s.as_bytes())
}

fn claims() -> String {
    json!({"iss": ISS, "sub": "alice", "aud": "api", "exp": NOW + 600, "iat": NOW}).to_string()
}

/// A token with exactly this header and payload text, signed by `key`.
fn forge(key: &SigningKey, header: &str, payload: &str) -> String {
    let input = format!("{}.{}", b64(header), b64(payload));
    let signature = key.sign(input.as_bytes()).unwrap();
    format!("{input}.{}", base64url::encode(signature))
}

struct Setup {
    rsa: SigningKey,
    ec: SigningKey,
    ed: SigningKey,
    keys: KeySet,
}

fn setup() -> Setup {
    let rsa = SigningKey::generate(Algorithm::RS256).unwrap().with_kid("rsa");
    let ec = SigningKey::generate(Algorithm::ES256).unwrap().with_kid("ec");
    let ed = SigningKey::generate(Algorithm::EdDSA).unwrap().with_kid("ed");
    let keys = KeySet::from_jwks([&rsa, &ec, &ed].map(|k| Value::Object(k.verification_jwk())));
    Setup { rsa, ec, ed, keys }
}

fn rules() -> Validation {
    Validation::new(ISS).audience("api")
}

fn kind(rules: &Validation, token: &str, keys: &KeySet) -> ErrorKind {
    match rules.validate(token, keys, UnixTime::from_secs(NOW)) {
        Ok(_) => panic!("token was accepted: {token}"),
        Err(e) => e.kind(),
    }
}

#[test]
fn a_genuine_token_is_accepted() {
    let s = setup();
    for key in [&s.rsa, &s.ec, &s.ed] {
        let token =
            forge(key, &format!(r#"{{"alg":"{}","kid":"{}"}}"#, key.alg(), key.kid().unwrap()), &claims());
        assert!(rules().validate(&token, &s.keys, UnixTime::from_secs(NOW)).is_ok());
    }
}

#[test]
fn alg_none_in_every_spelling() {
    let s = setup();
    for alg in ["none", "None", "NONE", "nOnE"] {
        for signature in ["", "AAAA"] {
            let token = format!(
                "{}.{}.{signature}",
                b64(&format!(r#"{{"alg":"{alg}","kid":"rsa"}}"#)),
                b64(&claims())
            );
            let all = AlgorithmSet::asymmetric().iter().chain(AlgorithmSet::symmetric().iter()).collect();
            assert_eq!(
                kind(&rules().algorithms(all), &token, &s.keys),
                ErrorKind::AlgorithmNotAllowed,
                "{alg}"
            );
        }
    }
}

#[test]
fn hs256_signed_with_the_rsa_public_key() {
    let s = setup();
    let public = s.rsa.verification_jwk();
    let n = base64url::decode(public["n"].as_str().unwrap().as_bytes()).unwrap();
    for secret in
        [n.clone(), public["n"].as_str().unwrap().as_bytes().to_vec(), serde_json::to_vec(&public).unwrap()]
    {
        let jwk = json!({"kty": "oct", "k": base64url::encode(&secret)});
        let forger = SigningKey::from_jwk(jwk.as_object().unwrap(), Some(Algorithm::HS256)).unwrap();
        let token = forge(&forger, r#"{"alg":"HS256","kid":"rsa"}"#, &claims());
        // Default rules: HMAC is not allowed at all.
        assert_eq!(kind(&rules(), &token, &s.keys), ErrorKind::AlgorithmNotAllowed);
        // Even when HS256 is allowed, an RSA key never verifies it.
        let hmac = rules().algorithms([Algorithm::HS256, Algorithm::RS256].into_iter().collect());
        assert_eq!(kind(&hmac, &token, &s.keys), ErrorKind::InvalidKey);
    }
}

#[test]
fn embedded_jwk_jku_x5u_and_x5c_are_never_used() {
    let s = setup();
    let attacker = SigningKey::generate(Algorithm::ES256).unwrap();
    let jwk = Value::Object(attacker.verification_jwk()).to_string();
    for (extra, expected) in [
        (format!(r#","jwk":{jwk}"#), ErrorKind::InvalidSignature),
        (r#","jku":"https://attacker.example/jwks""#.to_string(), ErrorKind::InvalidSignature),
        (r#","x5u":"https://attacker.example/cert""#.to_string(), ErrorKind::InvalidSignature),
        (r#","x5c":["MIIB"]"#.to_string(), ErrorKind::InvalidSignature),
    ] {
        // Under our key's kid: the attacker's signature does not verify with our key.
        let token = forge(&attacker, &format!(r#"{{"alg":"ES256","kid":"ec"{extra}}}"#), &claims());
        assert_eq!(kind(&rules(), &token, &s.keys), expected, "{extra}");
        // Under the attacker's own kid: no such key here.
        let kid = attacker.kid().unwrap();
        let token = forge(&attacker, &format!(r#"{{"alg":"ES256","kid":"{kid}"{extra}}}"#), &claims());
        assert_eq!(kind(&rules(), &token, &s.keys), ErrorKind::KeyNotFound, "{extra}");
    }
}

#[test]
fn kid_traversal_and_injection_strings() {
    let s = setup();
    let long = "k".repeat(10_000);
    for kid in [
        "../../../../dev/null",
        "/etc/passwd",
        "' OR '1'='1",
        "ec\u{0000}",
        "ec ",
        "EC",
        "",
        "${jndi:x}",
        &long,
    ] {
        let header = json!({"alg": "ES256", "kid": kid}).to_string();
        let token = forge(&s.ec, &header, &claims());
        assert_eq!(kind(&rules(), &token, &s.keys), ErrorKind::KeyNotFound, "{kid:.40}");
    }
}

#[test]
fn psychic_ecdsa_signatures_cve_2022_21449() {
    let s = setup();
    let input = format!("{}.{}", b64(r#"{"alg":"ES256","kid":"ec"}"#), b64(&claims()));
    for signature in
        [vec![0u8; 64], [vec![0u8; 32], vec![1u8; 32]].concat(), [vec![1u8; 32], vec![0u8; 32]].concat()]
    {
        let token = format!("{input}.{}", base64url::encode(signature));
        assert_eq!(kind(&rules(), &token, &s.keys), ErrorKind::InvalidSignature);
    }
}

fn der_integer(bytes: &[u8]) -> Vec<u8> {
    let trimmed: Vec<u8> = bytes.iter().copied().skip_while(|b| *b == 0).collect();
    let body =
        if trimmed.first().is_some_and(|b| b & 0x80 != 0) { [vec![0], trimmed].concat() } else { trimmed };
    [vec![0x02, body.len() as u8], body].concat()
}

#[test]
fn der_encoded_ecdsa_signatures_are_rejected() {
    let s = setup();
    let token = forge(&s.ec, r#"{"alg":"ES256","kid":"ec"}"#, &claims());
    let (input, sig) = token.rsplit_once('.').unwrap();
    let raw = base64url::decode(sig.as_bytes()).unwrap();
    let body = [der_integer(&raw[..32]), der_integer(&raw[32..])].concat();
    let der = [vec![0x30, body.len() as u8], body].concat();
    let token = format!("{input}.{}", base64url::encode(der));
    assert_eq!(kind(&rules(), &token, &s.keys), ErrorKind::InvalidSignature);
}

#[test]
fn truncated_extended_and_empty_signatures() {
    let s = setup();
    for key in [&s.rsa, &s.ec, &s.ed] {
        let token =
            forge(key, &format!(r#"{{"alg":"{}","kid":"{}"}}"#, key.alg(), key.kid().unwrap()), &claims());
        let (input, sig) = token.rsplit_once('.').unwrap();
        let raw = base64url::decode(sig.as_bytes()).unwrap();
        let long = "A".repeat(2000);
        for variant in [
            base64url::encode(&raw[..raw.len() - 1]),
            base64url::encode([raw.as_slice(), &[0]].concat()),
            base64url::encode([&[0], raw.as_slice()].concat()),
            String::new(),
            long,
        ] {
            let token = format!("{input}.{variant}");
            assert_eq!(kind(&rules(), &token, &s.keys), ErrorKind::InvalidSignature, "{}", key.alg());
        }
    }
}

#[test]
fn invalid_base64url_in_each_part() {
    let s = setup();
    let token = forge(&s.ec, r#"{"alg":"ES256","kid":"ec"}"#, &claims());
    let parts: Vec<&str> = token.split('.').collect();
    for (i, expected) in
        [(0, ErrorKind::MalformedToken), (1, ErrorKind::InvalidSignature), (2, ErrorKind::InvalidSignature)]
    {
        for damage in ["=", "==", "+", "/", " ", "\n", "\t", "%"] {
            let mut broken: Vec<String> = parts.iter().map(|p| p.to_string()).collect();
            broken[i].push_str(damage);
            let token = broken.join(".");
            // The signature covers the encoded header and payload, so damage there breaks it
            // unless the header itself cannot be read.
            assert_eq!(kind(&rules(), &token, &s.keys), expected, "part {i} + {damage:?}");
        }
    }
    // A validly signed token whose payload is not strict base64url is still malformed.
    let input = format!("{}.{}=", b64(r#"{"alg":"ES256","kid":"ec"}"#), b64(&claims()));
    let signature = base64url::encode(s.ec.sign(input.as_bytes()).unwrap());
    assert_eq!(kind(&rules(), &format!("{input}.{signature}"), &s.keys), ErrorKind::MalformedToken);
}

#[test]
fn non_object_payloads_duplicate_members_and_wrong_types() {
    let s = setup();
    let header = r#"{"alg":"ES256","kid":"ec"}"#;
    for payload in [
        "[]",
        "\"claims\"",
        "123",
        "null",
        "",
        "{",
        r#"{"iss":"https://issuer.example","iss":"https://attacker.example","aud":"api","exp":1700000600}"#,
        r#"{"iss":"https://issuer.example","aud":"api","exp":"1700000600"}"#,
        r#"{"iss":["https://issuer.example"],"aud":"api","exp":1700000600}"#,
        r#"{"iss":"https://issuer.example","aud":[1],"exp":1700000600}"#,
    ] {
        let token = forge(&s.ec, header, payload);
        assert_eq!(kind(&rules(), &token, &s.keys), ErrorKind::MalformedToken, "{payload}");
    }
    for header in [
        r#"{"alg":"ES256","kid":"ec","kid":"rsa"}"#,
        r#"{"alg":"ES256","alg":"none","kid":"ec"}"#,
        "[]",
        r#"{"kid":"ec"}"#,
        r#"{"alg":7}"#,
        r#"{"alg":"ES256","kid":5}"#,
    ] {
        let token = forge(&s.ec, header, &claims());
        assert_eq!(kind(&rules(), &token, &s.keys), ErrorKind::MalformedToken, "{header}");
    }
}

#[test]
fn nested_tokens_jwe_and_wrong_part_counts() {
    let s = setup();
    let token = forge(&s.ec, r#"{"alg":"ES256","kid":"ec","cty":"JWT"}"#, &claims());
    assert_eq!(kind(&rules(), &token, &s.keys), ErrorKind::InvalidTokenType);
    for token in ["a.b.c.d.e", "a.b", "abc", "", "a.b.c.d", "....."] {
        assert_eq!(kind(&rules(), token, &s.keys), ErrorKind::MalformedToken, "{token}");
    }
    let huge = format!("{}.{}.x", "a".repeat(70_000), "b");
    assert_eq!(kind(&rules(), &huge, &s.keys), ErrorKind::MalformedToken);
}

#[test]
fn critical_headers() {
    let s = setup();
    for (header, expected) in [
        (r#"{"alg":"ES256","kid":"ec","crit":["exp"]}"#, ErrorKind::UnsupportedCriticalHeader),
        (r#"{"alg":"ES256","kid":"ec","crit":["b64"],"b64":false}"#, ErrorKind::UnsupportedCriticalHeader),
        (r#"{"alg":"ES256","kid":"ec","b64":false}"#, ErrorKind::UnsupportedCriticalHeader),
        (r#"{"alg":"ES256","kid":"ec","crit":[]}"#, ErrorKind::MalformedToken),
        (r#"{"alg":"ES256","kid":"ec","crit":"exp"}"#, ErrorKind::MalformedToken),
        (r#"{"alg":"ES256","kid":"ec","b64":"no"}"#, ErrorKind::MalformedToken),
    ] {
        assert_eq!(kind(&rules(), &forge(&s.ec, header, &claims()), &s.keys), expected, "{header}");
    }
    let ok = forge(&s.ec, r#"{"alg":"ES256","kid":"ec","b64":true}"#, &claims());
    assert!(rules().validate(&ok, &s.keys, UnixTime::from_secs(NOW)).is_ok());
}

fn wycheproof_key(comment: &str) -> (Value, String) {
    let path = format!("{}/tests/vectors/jose/wycheproof_json_web_key_test.json", env!("CARGO_MANIFEST_DIR"));
    let data: Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    let group = data["testGroups"].as_array().unwrap().iter().find(|g| g["comment"] == comment).unwrap();
    (group["private"].clone(), group["tests"][0]["jws"].as_str().unwrap().to_owned())
}

#[test]
fn weak_and_invalid_keys_are_set_aside_with_invalid_key() {
    // A 1024-bit RSA key and its genuine signature.
    let (set, token) = wycheproof_key("keysize_too_small");
    let keys = KeySet::from_json(set.to_string().as_bytes()).unwrap();
    assert!(keys.is_empty() && keys.rejected()[0].reason.contains("1024"));
    let err = identity_model_core::jws::verify(&token, &keys, AlgorithmSet::asymmetric()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidKey);

    let s = setup();
    let token = forge(&s.ec, r#"{"alg":"ES256","kid":"ec"}"#, &claims());
    // The same EC key moved off its curve.
    let mut off_curve = s.ec.verification_jwk();
    let mut y = base64url::decode(off_curve["y"].as_str().unwrap().as_bytes()).unwrap();
    y[31] ^= 1;
    off_curve.insert("y".into(), base64url::encode(&y).into());
    let keys = KeySet::from_jwks([Value::Object(off_curve)]);
    assert_eq!(kind(&rules(), &token, &keys), ErrorKind::InvalidKey);

    // Small-order Ed25519 points: the identity, and a point of order 8.
    for x in ["AQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "JuiVj8KyJ7BFw_SJ8u-Y8NXfrAXTxjM5sTgCiG1T_AU"] {
        let keys = KeySet::from_jwks([json!({"kty": "OKP", "crv": "Ed25519", "kid": "ed", "x": x})]);
        assert!(keys.rejected()[0].reason.contains("small-order"), "{:?}", keys.rejected());
        let token = forge(&s.ed, r#"{"alg":"EdDSA","kid":"ed"}"#, &claims());
        assert_eq!(kind(&rules(), &token, &keys), ErrorKind::InvalidKey);
    }
}

#[test]
fn key_and_algorithm_must_fit() {
    let s = setup();
    // RSA key (declared RS256) asked to verify PS256 and ES256.
    let ps = SigningKey::generate(Algorithm::PS256).unwrap().with_kid("rsa");
    assert_eq!(
        kind(&rules(), &forge(&ps, r#"{"alg":"PS256","kid":"rsa"}"#, &claims()), &s.keys),
        ErrorKind::InvalidKey
    );
    assert_eq!(
        kind(&rules(), &forge(&s.ec, r#"{"alg":"ES256","kid":"rsa"}"#, &claims()), &s.keys),
        ErrorKind::InvalidKey
    );
    // An ES384 token against a P-256 key.
    let es384 = SigningKey::generate(Algorithm::ES384).unwrap();
    assert_eq!(
        kind(&rules(), &forge(&es384, r#"{"alg":"ES384","kid":"ec"}"#, &claims()), &s.keys),
        ErrorKind::InvalidKey
    );
    // No kid: only keys that fit are tried; none fits ES384.
    assert_eq!(
        kind(&rules(), &forge(&es384, r#"{"alg":"ES384"}"#, &claims()), &s.keys),
        ErrorKind::KeyNotFound
    );
    // No kid and a fitting key: verified.
    let token = forge(&s.ec, r#"{"alg":"ES256"}"#, &claims());
    assert!(rules().validate(&token, &s.keys, UnixTime::from_secs(NOW)).is_ok());
    // An algorithm outside the allow-list.
    let only_rs = rules().algorithms([Algorithm::RS256].into_iter().collect());
    assert_eq!(kind(&only_rs, &token, &s.keys), ErrorKind::AlgorithmNotAllowed);
    // Unknown algorithms.
    assert_eq!(
        kind(&rules(), &forge(&s.ec, r#"{"alg":"ES256K","kid":"ec"}"#, &claims()), &s.keys),
        ErrorKind::UnsupportedAlgorithm
    );
}

#[test]
fn hmac_only_when_asked_for_and_with_a_secret() {
    let secret = SigningKey::generate(Algorithm::HS256).unwrap();
    let keys = KeySet::from_jwks([Value::Object(secret.verification_jwk())]);
    let token = secret.sign_jwt(None, &serde_json::from_str(&claims()).unwrap()).unwrap();
    assert_eq!(kind(&rules(), &token, &keys), ErrorKind::AlgorithmNotAllowed);
    let hs = rules().algorithms(AlgorithmSet::symmetric());
    assert!(hs.validate(&token, &keys, UnixTime::from_secs(NOW)).is_ok());
}

#[test]
fn token_types() {
    let s = setup();
    let at = rules().token_type("at+jwt");
    for typ in ["at+jwt", "application/at+jwt", "AT+JWT", "Application/At+Jwt"] {
        let token = forge(&s.ec, &json!({"alg": "ES256", "kid": "ec", "typ": typ}).to_string(), &claims());
        assert!(at.validate(&token, &s.keys, UnixTime::from_secs(NOW)).is_ok(), "{typ}");
    }
    for typ in [
        Some("JWT"),
        Some("jwt"),
        Some("application/jwt"),
        Some("dpop+jwt"),
        Some("at+jwt2"),
        Some("application/x/at+jwt"),
        None,
    ] {
        let mut header = json!({"alg": "ES256", "kid": "ec"});
        if let Some(typ) = typ {
            header["typ"] = typ.into();
        }
        let token = forge(&s.ec, &header.to_string(), &claims());
        assert_eq!(kind(&at, &token, &s.keys), ErrorKind::InvalidTokenType, "{typ:?}");
    }
}

fn with_times(s: &Setup, times: Value) -> String {
    let mut claims = json!({"iss": ISS, "aud": "api"});
    for (k, v) in times.as_object().unwrap() {
        claims[k] = v.clone();
    }
    forge(&s.ec, r#"{"alg":"ES256","kid":"ec"}"#, &claims.to_string())
}

#[test]
fn time_boundaries_with_leeway() {
    let s = setup();
    let r = rules().leeway(Duration::from_secs(60));
    let at = |token: &str, now: i64| {
        r.validate(token, &s.keys, UnixTime::from_secs(now)).map(|_| ()).map_err(|e| e.kind())
    };
    let exp = with_times(&s, json!({"exp": NOW}));
    assert_eq!(at(&exp, NOW + 59), Ok(()));
    assert_eq!(at(&exp, NOW + 60), Err(ErrorKind::TokenExpired), "expired when now >= exp + leeway");
    let nbf = with_times(&s, json!({"exp": NOW + 1000, "nbf": NOW}));
    assert_eq!(at(&nbf, NOW - 60), Ok(()));
    assert_eq!(at(&nbf, NOW - 61), Err(ErrorKind::TokenNotYetValid), "not yet valid when now < nbf - leeway");
    let iat = with_times(&s, json!({"exp": NOW + 1000, "iat": NOW}));
    assert_eq!(at(&iat, NOW - 60), Ok(()));
    assert_eq!(
        at(&iat, NOW - 61),
        Err(ErrorKind::IssuedInFuture),
        "issued in future when iat > now + leeway"
    );
    // NumericDates: fractions, and magnitudes that do not fit any integer type.
    let fraction = with_times(&s, json!({"exp": NOW as f64 - 59.5}));
    assert_eq!(at(&fraction, NOW), Ok(()));
    assert_eq!(at(&fraction, NOW + 1), Err(ErrorKind::TokenExpired));
    let forever = forge(
        &s.ec,
        r#"{"alg":"ES256","kid":"ec"}"#,
        r#"{"iss":"https://issuer.example","aud":"api","exp":1e400}"#,
    );
    assert_eq!(at(&forever, i64::MAX), Ok(()));
    let huge = forge(
        &s.ec,
        r#"{"alg":"ES256","kid":"ec"}"#,
        r#"{"iss":"https://issuer.example","aud":"api","exp":18446744073709551616000}"#,
    );
    assert_eq!(at(&huge, NOW), Ok(()), "no overflow into the past");
    let past = forge(
        &s.ec,
        r#"{"alg":"ES256","kid":"ec"}"#,
        r#"{"iss":"https://issuer.example","aud":"api","exp":-1e400}"#,
    );
    assert_eq!(at(&past, i64::MIN), Err(ErrorKind::TokenExpired));
    let missing = with_times(&s, json!({}));
    assert_eq!(at(&missing, NOW), Err(ErrorKind::MissingClaim));
    assert_eq!(
        rules()
            .allow_missing_exp()
            .validate(&missing, &s.keys, UnixTime::from_secs(NOW))
            .map(|_| ())
            .map_err(|e| e.kind()),
        Ok(())
    );
}

#[test]
fn issuer_audience_and_required_claims() {
    let s = setup();
    let make = |claims: Value| forge(&s.ec, r#"{"alg":"ES256","kid":"ec"}"#, &claims.to_string());
    let exp = NOW + 100;
    let ok = |r: &Validation, t: &str| {
        r.validate(t, &s.keys, UnixTime::from_secs(NOW))
            .map(|_| ())
            .map_err(|e| (e.kind(), e.claim().map(str::to_owned)))
    };
    let several = Validation::with_issuers(["https://a.example", ISS]).audience("api");
    assert_eq!(ok(&several, &make(json!({"iss": ISS, "aud": "api", "exp": exp}))), Ok(()));
    assert_eq!(
        ok(&rules(), &make(json!({"iss": "https://issuer.example/", "aud": "api", "exp": exp})))
            .unwrap_err()
            .0,
        ErrorKind::InvalidIssuer
    );
    assert_eq!(
        ok(&rules(), &make(json!({"aud": "api", "exp": exp}))).unwrap_err(),
        (ErrorKind::MissingClaim, Some("iss".into()))
    );
    assert_eq!(ok(&rules(), &make(json!({"iss": ISS, "aud": ["x", "api"], "exp": exp}))), Ok(()));
    assert_eq!(
        ok(&rules(), &make(json!({"iss": ISS, "aud": ["x", "y"], "exp": exp}))).unwrap_err().0,
        ErrorKind::InvalidAudience
    );
    assert_eq!(
        ok(&rules(), &make(json!({"iss": ISS, "aud": [], "exp": exp}))).unwrap_err().0,
        ErrorKind::InvalidAudience
    );
    assert_eq!(
        ok(&rules(), &make(json!({"iss": ISS, "exp": exp}))).unwrap_err(),
        (ErrorKind::MissingClaim, Some("aud".into()))
    );
    let required = rules().require("scope").require("sub");
    assert_eq!(
        ok(&required, &make(json!({"iss": ISS, "aud": "api", "exp": exp, "sub": "a"}))).unwrap_err(),
        (ErrorKind::MissingClaim, Some("scope".into()))
    );
    let custom = rules().custom(|_, claims| {
        if claims.get("scope").and_then(Value::as_str) == Some("admin") {
            Ok(())
        } else {
            Err(identity_model_core::Error::new(ErrorKind::InvalidClaim, "needs admin").with_claim("scope"))
        }
    });
    assert_eq!(ok(&custom, &make(json!({"iss": ISS, "aud": "api", "exp": exp, "scope": "admin"}))), Ok(()));
    assert_eq!(
        ok(&custom, &make(json!({"iss": ISS, "aud": "api", "exp": exp, "scope": "read"}))).unwrap_err().0,
        ErrorKind::InvalidClaim
    );
}

#[test]
fn oversized_key_sets_are_refused() {
    let keys: Vec<Value> = (0..101).map(|i| json!({"kty": "oct", "kid": i.to_string(), "k": "AA"})).collect();
    let doc = json!({"keys": keys}).to_string();
    assert_eq!(KeySet::from_json(doc.as_bytes()).unwrap_err().kind(), ErrorKind::InvalidKeySet);
    let padded = format!(r#"{{"keys":[],"pad":"{}"}}"#, "x".repeat(600 * 1024));
    assert_eq!(KeySet::from_json(padded.as_bytes()).unwrap_err().kind(), ErrorKind::InvalidKeySet);
}

/// Seed review 000 #1: py-identity-model wrote the first token's key and algorithm into the
/// caller's config, so later tokens were checked against them. One `Validation` here serves
/// tokens of every algorithm and key, in any order, and reports the same allowed set after.
#[test]
fn review_000_1_rules_are_not_changed_by_a_call() {
    let s = setup();
    let rules = rules();
    let before = format!("{rules:?}");
    let tokens: Vec<String> = [&s.rsa, &s.ec, &s.ed]
        .iter()
        .map(|k| forge(k, &format!(r#"{{"alg":"{}","kid":"{}"}}"#, k.alg(), k.kid().unwrap()), &claims()))
        .collect();
    for round in 0..2 {
        for token in tokens.iter().chain(tokens.iter().rev()) {
            assert!(rules.validate(token, &s.keys, UnixTime::from_secs(NOW)).is_ok(), "round {round}");
            // A failure in between changes nothing either.
            assert!(rules.validate("x.y.z", &s.keys, UnixTime::from_secs(NOW)).is_err());
        }
    }
    assert_eq!(format!("{rules:?}"), before);
    assert_eq!(rules.allowed_algorithms(), AlgorithmSet::asymmetric());
}

/// Issue 11: `{"cnf": {"jkt": "aaa", "jkt": "bbb"}}` validated and `cnf` read as `bbb`, so two
/// parsers could disagree about a DPoP binding. Duplicates are refused at every depth, in the
/// header, the claims, and every document and response the library reads.
#[test]
fn duplicate_members_at_any_depth_are_refused_everywhere() {
    let s = setup();
    let nested = [
        r#""cnf":{"jkt":"aaa","jkt":"bbb"}"#,
        r#""x":[{"a":1},{"b":{"c":1,"c":2}}]"#,
        r#""x":{"y":{"z":{"k":"1","k":"2"}}}"#,
        r#""x":{"\u006b":1,"k":2}"#,
    ];
    for extra in nested {
        let payload = format!(r#"{{"iss":"{ISS}","aud":"api","exp":{},{extra}}}"#, NOW + 600);
        let token = forge(&s.ec, r#"{"alg":"ES256","kid":"ec"}"#, &payload);
        let e = rules().validate(&token, &s.keys, UnixTime::from_secs(NOW)).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::MalformedToken, "{payload}");
        let header = format!(r#"{{"alg":"ES256","kid":"ec",{extra}}}"#);
        assert_eq!(
            kind(&rules(), &forge(&s.ec, &header, &claims()), &s.keys),
            ErrorKind::MalformedToken,
            "{header}"
        );
    }
    let crit = r#"{"alg":"ES256","kid":"ec","crit":["a"],"a":{"b":1,"b":2}}"#;
    assert_eq!(kind(&rules(), &forge(&s.ec, crit, &claims()), &s.keys), ErrorKind::MalformedToken);

    // A JWK Set with a duplicate inside a key.
    let jwk = serde_json::to_string(&s.ec.verification_jwk()).unwrap();
    let doubled = jwk.replacen('{', r#"{"use":"sig","use":"enc","#, 1);
    let set = format!(r#"{{"keys":[{doubled}]}}"#);
    assert_eq!(KeySet::from_json(set.as_bytes()).unwrap_err().kind(), ErrorKind::InvalidKeySet);
    let set = format!(r#"{{"keys":[{jwk}],"x":{{"a":1,"a":2}}}}"#);
    assert_eq!(KeySet::from_json(set.as_bytes()).unwrap_err().kind(), ErrorKind::InvalidKeySet);

    // Discovery, with a duplicate in a nested member.
    let doc = format!(
        r#"{{"issuer":"{ISS}","jwks_uri":"{ISS}/jwks","mtls_endpoint_aliases":{{"token_endpoint":"{ISS}/a","token_endpoint":"{ISS}/b"}}}}"#
    );
    let policy = identity_model_core::DiscoveryPolicy::default().resource_server_fields();
    let e = identity_model_core::DiscoveryDocument::from_json(doc.as_bytes(), ISS, &policy).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidDocument, "{e}");

    // Token, introspection and error responses.
    let response = |body: &'static str, status: u16| identity_model_core::EndpointResponse {
        status,
        content_type: Some("application/json"),
        www_authenticate: None,
        body: body.as_bytes(),
    };
    let token = r#"{"access_token":"a","token_type":"Bearer","authorization_details":[{"t":1,"t":2}]}"#;
    let e = identity_model_core::TokenResponse::from_response(response(token, 200)).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidResponse, "{e}");
    let introspection = r#"{"active":true,"cnf":{"jkt":"aaa","jkt":"bbb"}}"#;
    let e = identity_model_core::Introspection::from_response(response(introspection, 200)).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidResponse, "{e}");
    // An error body with two `error` members is not read as an OAuth error at all.
    let error = r#"{"error":"invalid_grant","error":"access_denied"}"#;
    let e = identity_model_core::TokenResponse::from_response(response(error, 400)).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::HttpStatus, "{e}");
}

/// Issue 11: attacker-chosen member names are escaped and cut in messages.
#[test]
fn attacker_text_in_duplicate_messages_is_escaped_and_cut() {
    let s = setup();
    let name = format!("evil\\n{}", "x".repeat(500));
    let payload = format!(r#"{{"iss":"{ISS}","aud":"api","exp":{},"{name}":1,"{name}":2}}"#, NOW + 600);
    let token = forge(&s.ec, r#"{"alg":"ES256","kid":"ec"}"#, &payload);
    let e = rules().validate(&token, &s.keys, UnixTime::from_secs(NOW)).unwrap_err();
    let chain = format!("{e} {}", std::error::Error::source(&e).map(|c| c.to_string()).unwrap_or_default());
    assert!(!chain.contains('\n'), "{chain}");
    assert!(chain.len() < 400, "{} characters", chain.len());
}

/// Issue 11: a token without `kid` was tried against every fitting key (up to 100 signature
/// checks for one forged token). At most `jws::MAX_KIDLESS_CANDIDATES` are tried.
#[test]
fn a_token_without_kid_tries_a_bounded_number_of_keys() {
    let limit = identity_model_core::jws::MAX_KIDLESS_CANDIDATES;
    let keys: Vec<SigningKey> =
        (0..=limit).map(|_| SigningKey::generate(Algorithm::ES256).unwrap()).collect();
    let set = |n: usize| KeySet::from_jwks(keys[..n].iter().map(|k| Value::Object(k.verification_jwk())));
    let token = forge(&keys[limit - 1], r#"{"alg":"ES256"}"#, &claims());
    let within = rules().validate(&token, &set(limit), UnixTime::from_secs(NOW));
    assert!(within.is_ok(), "the last of {limit} candidates is found: {within:?}");
    let e = rules().validate(&token, &set(limit + 1), UnixTime::from_secs(NOW)).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidKey, "{e}");
    assert!(e.message().contains("no kid"), "{e}");
}

/// Issue 11: `crit` names and a provider's `error_description` reached messages raw (a
/// newline could forge a log line). Escaped and cut now.
#[test]
fn crit_names_and_error_descriptions_are_escaped_in_messages() {
    let s = setup();
    let header = format!(
        r#"{{"alg":"ES256","kid":"ec","crit":["x\n2026-12-02 ERROR forged","{}"]}}"#,
        "y".repeat(300)
    );
    let e =
        rules().validate(&forge(&s.ec, &header, &claims()), &s.keys, UnixTime::from_secs(NOW)).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::UnsupportedCriticalHeader);
    assert!(!e.to_string().contains('\n') && e.to_string().len() < 200, "{e}");
    let body = format!(
        r#"{{"error":"invalid_grant","error_description":"bad\r\nINFO forged {}"}}"#,
        "z".repeat(5000)
    );
    let response = identity_model_core::EndpointResponse {
        status: 400,
        content_type: Some("application/json"),
        www_authenticate: None,
        body: body.as_bytes(),
    };
    let e = identity_model_core::TokenResponse::from_response(response).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::OAuthError);
    let shown = e.to_string();
    assert!(!shown.contains('\n') && !shown.contains('\r') && shown.len() < 400, "{shown}");
    assert!(
        e.oauth().unwrap().error_description.as_deref().unwrap().starts_with("bad\r\n"),
        "kept as received"
    );
}
