//! Property tests: sign/validate round trips for every algorithm, a differential test against
//! jsonwebtoken on valid tokens (both directions), and the fuzz targets' bodies as a bounded
//! smoke test (the same code `fuzz/` runs under libFuzzer).

#![allow(clippy::unwrap_used)] // tests fail loudly by design

mod fuzz_bodies;

use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};

use identity_model_core::{Algorithm, AlgorithmSet, KeySet, SigningKey, UnixTime, Validation};
use proptest::prelude::*;
use serde_json::{Map, Value, json};

const ISS: &str = "https://issuer.example";

fn keys() -> &'static [(SigningKey, KeySet)] {
    static KEYS: OnceLock<Vec<(SigningKey, KeySet)>> = OnceLock::new();
    KEYS.get_or_init(|| {
        Algorithm::ALL
            .into_iter()
            .map(|alg| {
                let key = SigningKey::generate(alg).unwrap();
                let set = KeySet::from_jwks([Value::Object(key.verification_jwk())]);
                (key, set)
            })
            .collect()
    })
}

fn all_algorithms() -> AlgorithmSet {
    Algorithm::ALL.into_iter().collect()
}

fn now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() as i64
}

prop_compose! {
    fn claims()(
        sub in "[a-zA-Z0-9@._-]{1,40}",
        aud in prop::collection::vec("[a-z]{1,12}", 1..4),
        lifetime in 61i64..100_000,
        extra in prop::collection::btree_map("[a-z_]{1,10}", prop_oneof![
            any::<i64>().prop_map(Value::from),
            any::<bool>().prop_map(Value::from),
            "\\PC{0,30}".prop_map(Value::from),
            prop::collection::vec("[a-z]{0,5}", 0..4).prop_map(|v| json!(v)),
        ], 0..6),
    ) -> (Value, String) {
        let now = now();
        let mut claims: Map<String, Value> = extra.into_iter().collect();
        for registered in ["iss", "sub", "aud", "exp", "nbf", "iat", "jti"] {
            claims.remove(registered);
        }
        claims.insert("iss".into(), ISS.into());
        claims.insert("sub".into(), sub.into());
        claims.insert("aud".into(), json!(aud));
        claims.insert("iat".into(), (now - 5).into());
        claims.insert("nbf".into(), (now - 5).into());
        claims.insert("exp".into(), (now + lifetime).into());
        (Value::Object(claims), aud[0].clone())
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn sign_then_validate_round_trips((claims, aud) in claims(), which in 0usize..Algorithm::ALL.len()) {
        let (key, set) = &keys()[which];
        let token = key.sign_jwt(Some("at+jwt"), &claims).unwrap();
        let rules = Validation::new(ISS).audience(aud).token_type("at+jwt").algorithms(all_algorithms());
        let valid = rules.validate(&token, set, UnixTime::from_secs(now())).unwrap();
        let payload: Value = serde_json::from_str(valid.claims.raw_json()).unwrap();
        prop_assert_eq!(&payload, &claims);
        prop_assert_eq!(valid.claims.sub(), claims["sub"].as_str());
        for (name, value) in valid.claims.other() {
            prop_assert_eq!(value, &claims[name]);
        }
        prop_assert_eq!(valid.header.alg(), key.alg());
        // Any single changed character is rejected.
        let mut bytes = token.clone().into_bytes();
        let i = (claims.to_string().len() * 7919) % bytes.len();
        if bytes[i] != b'.' {
            bytes[i] = if bytes[i] == b'A' { b'B' } else { b'A' };
            let tampered = String::from_utf8(bytes).unwrap();
            prop_assert!(rules.validate(&tampered, set, UnixTime::from_secs(now())).is_err());
        }
    }

    #[test]
    fn jsonwebtoken_accepts_what_we_sign((claims, aud) in claims(), which in 0usize..6) {
        let algs = [Algorithm::RS256, Algorithm::PS256, Algorithm::ES256, Algorithm::ES384, Algorithm::EdDSA, Algorithm::HS256];
        let alg = algs[which];
        let (key, _) = keys().iter().find(|(k, _)| k.alg() == alg).unwrap();
        let token = key.sign_jwt(None, &claims).unwrap();
        let jwk: jsonwebtoken::jwk::Jwk = serde_json::from_value(Value::Object(key.verification_jwk())).unwrap();
        let decoding = jsonwebtoken::DecodingKey::from_jwk(&jwk).unwrap();
        let their_alg: jsonwebtoken::Algorithm = alg.as_str().parse().unwrap();
        let mut rules = jsonwebtoken::Validation::new(their_alg);
        rules.set_issuer(&[ISS]);
        rules.set_audience(&[aud]);
        let decoded = jsonwebtoken::decode::<Value>(&token, &decoding, &rules).unwrap();
        prop_assert_eq!(decoded.claims, claims);
    }

    #[test]
    fn we_accept_what_jsonwebtoken_signs((claims, aud) in claims(), which in 0usize..3) {
        use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair};
        use aws_lc_rs::signature::KeyPair as _;
        let rng = aws_lc_rs::rand::SystemRandom::new();
        let (their_alg, encoding, jwk) = match which {
            0 => {
                let secret = b"a shared secret of thirty-two bytes!";
                let jwk = json!({"kty": "oct", "k": identity_model_core::base64url::encode(secret)});
                (jsonwebtoken::Algorithm::HS256, jsonwebtoken::EncodingKey::from_secret(secret), jwk)
            }
            1 => {
                let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
                let encoding = jsonwebtoken::EncodingKey::from_ec_der(pkcs8.as_ref());
                let jwk = jsonwebtoken::jwk::Jwk::from_encoding_key(&encoding, jsonwebtoken::Algorithm::ES256).unwrap();
                (jsonwebtoken::Algorithm::ES256, encoding, serde_json::to_value(&jwk).unwrap())
            }
            _ => {
                // jsonwebtoken cannot export Ed25519 JWKs (unimplemented!), so build it here.
                let pkcs8 = Ed25519KeyPair::generate_pkcs8(&rng).unwrap();
                let public = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap().public_key().as_ref().to_vec();
                let jwk = json!({"kty": "OKP", "crv": "Ed25519", "x": identity_model_core::base64url::encode(public)});
                (jsonwebtoken::Algorithm::EdDSA, jsonwebtoken::EncodingKey::from_ed_der(pkcs8.as_ref()), jwk)
            }
        };
        let token = jsonwebtoken::encode(&jsonwebtoken::Header::new(their_alg), &claims, &encoding).unwrap();
        let keys = KeySet::from_jwks([jwk]);
        prop_assert_eq!(keys.rejected().len(), 0, "{:?}", keys.rejected());
        let rules = Validation::new(ISS).audience(aud).algorithms(all_algorithms());
        let valid = rules.validate(&token, &keys, UnixTime::from_secs(now())).unwrap();
        let payload: Value = serde_json::from_str(valid.claims.raw_json()).unwrap();
        prop_assert_eq!(payload, claims);
    }
}

/// Byte-level mutations of a seed: flips, truncations, insertions, deletions.
fn mutate(seed: &[u8], ops: &[(u8, usize, u8)]) -> Vec<u8> {
    let mut data = seed.to_vec();
    for &(op, at, byte) in ops {
        let at = if data.is_empty() { 0 } else { at % data.len() };
        match op % 4 {
            0 if !data.is_empty() => data[at] ^= byte | 1,
            1 => data.truncate(at),
            2 => data.insert(at, byte),
            _ if !data.is_empty() => {
                data.remove(at);
            }
            _ => data.push(byte),
        }
    }
    data
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1500, ..ProptestConfig::default() })]

    #[test]
    fn fuzz_smoke_token_arbitrary_bytes(data in prop::collection::vec(any::<u8>(), 0..512)) {
        fuzz_bodies::token(&data);
    }

    #[test]
    fn fuzz_smoke_token_mutated_seeds(which in any::<prop::sample::Index>(), ops in prop::collection::vec((any::<u8>(), any::<usize>(), any::<u8>()), 1..6)) {
        let seeds = fuzz_bodies::seed_tokens();
        let seed = which.get(&seeds);
        fuzz_bodies::token(&mutate(seed.as_bytes(), &ops));
    }

    #[test]
    fn fuzz_smoke_key_set_mutated_seeds(which in any::<prop::sample::Index>(), ops in prop::collection::vec((any::<u8>(), any::<usize>(), any::<u8>()), 1..6)) {
        let seeds = fuzz_bodies::seed_key_sets();
        let seed = which.get(&seeds);
        fuzz_bodies::key_set(&mutate(seed.as_bytes(), &ops));
    }

    #[test]
    fn fuzz_smoke_discovery_mutated_seeds(which in any::<prop::sample::Index>(), ops in prop::collection::vec((any::<u8>(), any::<usize>(), any::<u8>()), 1..6)) {
        let seeds = fuzz_bodies::seed_discovery();
        fuzz_bodies::discovery(&mutate(which.get(&seeds).as_bytes(), &ops));
    }

    #[test]
    fn fuzz_smoke_responses_mutated_seeds(which in any::<prop::sample::Index>(), ops in prop::collection::vec((any::<u8>(), any::<usize>(), any::<u8>()), 1..6)) {
        let seeds = fuzz_bodies::seed_responses();
        fuzz_bodies::responses(&mutate(which.get(&seeds).as_bytes(), &ops));
    }

    #[test]
    fn fuzz_smoke_targets_mutated_seeds(which in any::<prop::sample::Index>(), ops in prop::collection::vec((any::<u8>(), any::<usize>(), any::<u8>()), 1..6)) {
        let seeds = fuzz_bodies::seed_targets();
        fuzz_bodies::target(&mutate(which.get(&seeds).as_bytes(), &ops));
    }

    #[test]
    fn fuzz_smoke_targets_arbitrary_text(text in "[/a-z%.;:?#\\\\0-9A-F]{0,40}") {
        fuzz_bodies::target(text.as_bytes());
    }

    #[test]
    fn fuzz_smoke_responses_arbitrary_bytes(data in prop::collection::vec(any::<u8>(), 0..512)) {
        fuzz_bodies::responses(&data);
    }

    #[test]
    fn fuzz_smoke_key_set_arbitrary_bytes(data in prop::collection::vec(any::<u8>(), 0..512)) {
        fuzz_bodies::key_set(&data);
    }
}

#[test]
fn seeds_are_accepted_before_mutation() {
    // The smoke test only means something if unmutated seeds reach the deep paths.
    let tokens = fuzz_bodies::seed_tokens();
    assert!(tokens.len() >= 6);
    let seeds = fuzz_bodies::seed_key_sets();
    let all = KeySet::from_json(seeds[0].as_bytes()).unwrap();
    assert!(all.len() >= 4 && all.rejected().is_empty(), "{:?}", all.rejected());
    let valid = &fuzz_bodies::seed_discovery()[0];
    let doc = identity_model_core::DiscoveryDocument::from_json(
        valid.as_bytes(),
        "https://provider.example.com",
        &identity_model_core::DiscoveryPolicy::default(),
    );
    assert!(doc.is_ok());
}

/// Issue 11: provider numbers never overflow. Any JSON number or digit string is read and
/// clamped (`expires_in` to a year, a device code to a day, `interval` to five minutes), and
/// time arithmetic on the results cannot panic.
mod provider_numbers {
    use identity_model_core::{
        DeviceAuthorization, DevicePoller, EndpointResponse, MAX_DEVICE_EXPIRES_IN_SECS, MAX_EXPIRES_IN_SECS,
        MAX_INTERVAL_SECS, PollStep, TokenResponse,
    };
    use proptest::prelude::*;

    fn number() -> impl Strategy<Value = String> {
        prop_oneof![
            Just(u64::MAX.to_string()),
            Just("18446744073709551616".to_string()),
            Just("1e300".to_string()),
            Just("-1e300".to_string()),
            Just("-5".to_string()),
            Just("0.5".to_string()),
            Just("3599.999".to_string()),
            Just(format!("\"{}\"", "9".repeat(500))),
            Just("\"42\"".to_string()),
            any::<i64>().prop_map(|n| n.to_string()),
            any::<f64>()
                .prop_filter("JSON numbers are finite", |f| f.is_finite())
                .prop_map(|f| format!("{f:e}")),
        ]
    }

    fn response(body: &str) -> EndpointResponse<'_> {
        EndpointResponse {
            status: 200,
            content_type: Some("application/json"),
            www_authenticate: None,
            body: body.as_bytes(),
        }
    }

    proptest! {
        #[test]
        fn every_number_parses_within_its_bound(expires in number(), interval in number()) {
            let body = format!(r#"{{"access_token":"a","token_type":"Bearer","expires_in":{expires}}}"#);
            let tokens = TokenResponse::from_response(response(&body)).unwrap();
            prop_assert!(tokens.expires_in.unwrap() <= MAX_EXPIRES_IN_SECS);
            let body = format!(
                r#"{{"device_code":"d","user_code":"u","verification_uri":"https://op/device","expires_in":{expires},"interval":{interval}}}"#
            );
            let device = DeviceAuthorization::from_response(response(&body)).unwrap();
            prop_assert!(device.expires_in <= MAX_DEVICE_EXPIRES_IN_SECS && device.interval <= MAX_INTERVAL_SECS);
            // Polling arithmetic with these numbers: slow_down forever never overflows.
            let mut poller = DevicePoller::new(&device);
            for _ in 0..100 {
                let slow = identity_model_core::Error::from_oauth(identity_model_core::OAuthError {
                    status: 400, error: "slow_down".into(), error_description: None, error_uri: None, www_authenticate: None,
                });
                match poller.next(Err(slow), std::time::Duration::from_secs(u64::MAX / 2)) {
                    PollStep::Wait(wait) => prop_assert!(wait.as_secs() <= MAX_INTERVAL_SECS),
                    _ => break,
                }
            }
        }
    }
}
