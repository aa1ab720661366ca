//! DPoP proofs (RFC 9449 §4.3): every mistake a proof can carry maps to its error kind.

#![allow(clippy::unwrap_used)] // tests fail loudly by design

use std::sync::Arc;

use identity_model_core::{
    Algorithm, DpopKey, DpopNonces, DpopRules, ErrorKind, NonceRule, ProofRequest, SigningKey, UnixTime,
    base64url,
};
use serde_json::{Map, Value, json};

const URL: &str = "https://api.example/orders";
const NOW: UnixTime = UnixTime::from_secs(1_800_000_000);

/// A proof signed by `signer` with `header` members and `claims`, `jwk` the signer's public key
/// unless the header names one.
fn forge(signer: &SigningKey, header: Value, claims: Value) -> String {
    let mut header: Map<String, Value> = header.as_object().unwrap().clone();
    if !header.contains_key("jwk") {
        let mut jwk = signer.verification_jwk();
        jwk.retain(|k, _| !matches!(k.as_str(), "kid" | "alg" | "use"));
        header.insert("jwk".into(), Value::Object(jwk));
    }
    signer.sign_without_kid(header, claims)
}

trait SignWithoutKid {
    fn sign_without_kid(&self, header: Map<String, Value>, claims: Value) -> String;
}

impl SignWithoutKid for SigningKey {
    fn sign_without_kid(&self, mut header: Map<String, Value>, claims: Value) -> String {
        header.insert("alg".into(), self.alg().as_str().into());
        let mut token = base64url::encode(serde_json::to_vec(&header).unwrap());
        token.push('.');
        token.push_str(&base64url::encode(claims.to_string()));
        let signature = self.sign(token.as_bytes()).unwrap();
        token.push('.');
        token.push_str(&base64url::encode(signature));
        token
    }
}

fn good_claims() -> Value {
    json!({"jti": "j-1", "htm": "GET", "htu": URL, "iat": NOW.as_secs(), "ath": identity_model_core::access_token_hash("tok")})
}

fn kind_of(proof: &str) -> (ErrorKind, Option<String>) {
    let err = DpopRules::new().verify(proof, "GET", URL, Some("tok"), NOW).unwrap_err();
    (err.kind(), err.claim().map(str::to_owned))
}

#[test]
fn every_algorithm_round_trips_and_the_request_uri_is_compared_normalized() {
    for alg in identity_model_core::DPOP_KEY_ALGORITHMS {
        let key = DpopKey::generate(alg).unwrap();
        let proof = key.proof(&ProofRequest::new("GET", URL).with_access_token("tok"), NOW).unwrap();
        for seen_as in [URL, "HTTPS://API.example:443/orders?page=2", "https://api.example/a/../orders#x"] {
            let verified = DpopRules::new().verify(&proof, "GET", seen_as, Some("tok"), NOW).unwrap();
            assert_eq!(verified.jkt, key.thumbprint(), "{alg}");
            assert_eq!(verified.alg, alg);
        }
    }
}

#[test]
fn each_mistake_in_a_proof_has_its_kind_and_names_its_member() {
    let signer = SigningKey::generate(Algorithm::ES256).unwrap();
    let ok = forge(&signer, json!({"typ": "dpop+jwt"}), good_claims());
    assert!(DpopRules::new().verify(&ok, "GET", URL, Some("tok"), NOW).is_ok());
    let with = |name: &str, value: Value| {
        let mut claims = good_claims();
        claims.as_object_mut().unwrap().insert(name.into(), value);
        forge(&signer, json!({"typ": "dpop+jwt"}), claims)
    };
    let without = |name: &str| {
        let mut claims = good_claims();
        claims.as_object_mut().unwrap().remove(name);
        forge(&signer, json!({"typ": "dpop+jwt"}), claims)
    };
    let other = SigningKey::generate(Algorithm::ES256).unwrap();
    let mut other_jwk = other.verification_jwk();
    other_jwk.retain(|k, _| !matches!(k.as_str(), "kid" | "alg" | "use"));
    let mut private_jwk = signer.private_jwk().unwrap();
    private_jwk.remove("kid");
    let cases: Vec<(&str, String, Option<&str>)> = vec![
        ("typ JWT", forge(&signer, json!({"typ": "JWT"}), good_claims()), Some("typ")),
        ("no typ", forge(&signer, json!({}), good_claims()), Some("typ")),
        (
            "jwk of another key",
            forge(&signer, json!({"typ": "dpop+jwt", "jwk": other_jwk}), good_claims()),
            None,
        ),
        (
            "private jwk",
            forge(&signer, json!({"typ": "dpop+jwt", "jwk": private_jwk}), good_claims()),
            Some("jwk"),
        ),
        (
            "jwk not an object",
            forge(&signer, json!({"typ": "dpop+jwt", "jwk": "x"}), good_claims()),
            Some("jwk"),
        ),
        ("htm", with("htm", json!("POST")), Some("htm")),
        ("htm lower case", with("htm", json!("get")), Some("htm")),
        ("htm missing", without("htm"), Some("htm")),
        ("htu other path", with("htu", json!("https://api.example/admin")), Some("htu")),
        ("htu other host", with("htu", json!("https://evil.example/orders")), Some("htu")),
        ("htu other port", with("htu", json!("https://api.example:8443/orders")), Some("htu")),
        ("htu http", with("htu", json!("http://api.example/orders")), Some("htu")),
        ("htu not a URI", with("htu", json!("orders")), Some("htu")),
        ("iat too old", with("iat", json!(NOW.as_secs() - 301)), Some("iat")),
        ("iat in the future", with("iat", json!(NOW.as_secs() + 61)), Some("iat")),
        ("iat missing", without("iat"), Some("iat")),
        ("iat a string", with("iat", json!("1800000000")), None),
        ("jti missing", without("jti"), Some("jti")),
        ("jti empty", with("jti", json!("")), Some("jti")),
        ("jti too long", with("jti", json!("x".repeat(257))), Some("jti")),
        (
            "ath of another token",
            with("ath", json!(identity_model_core::access_token_hash("other"))),
            Some("ath"),
        ),
        ("ath missing", without("ath"), Some("ath")),
        ("ath a number", with("ath", json!(1)), Some("ath")),
    ];
    for (name, proof, member) in cases {
        let (kind, claim) = kind_of(&proof);
        assert_eq!(kind, ErrorKind::InvalidDpopProof, "{name}");
        if let Some(member) = member {
            assert_eq!(claim.as_deref(), Some(member), "{name}");
        }
    }
    let mut tampered = ok.clone();
    tampered.replace_range(tampered.len() - 4.., "AAAA");
    assert_eq!(kind_of(&tampered).0, ErrorKind::InvalidDpopProof, "signature");
    for junk in ["", "a.b", "a.b.c.d", &"x".repeat(9000), &format!("{ok}x")] {
        assert_eq!(kind_of(junk).0, ErrorKind::InvalidDpopProof, "{junk:.20}");
    }
    let es_only = DpopRules::new().algorithms([Algorithm::EdDSA]);
    assert_eq!(es_only.verify(&ok, "GET", URL, Some("tok"), NOW).unwrap_err().claim(), Some("alg"));
}

#[test]
fn nonces_required_exactly_or_rotating() {
    let key = DpopKey::generate_default().unwrap();
    let request = ProofRequest::new("GET", URL);
    let plain = key.proof(&request, NOW).unwrap();
    let exact = DpopRules::new().nonce(NonceRule::Exact("n-1".into()));
    assert_eq!(exact.verify(&plain, "GET", URL, None, NOW).unwrap_err().kind(), ErrorKind::UseDpopNonce);
    let with_nonce = key.proof(&request.with_nonce("n-1"), NOW).unwrap();
    assert!(exact.verify(&with_nonce, "GET", URL, None, NOW).is_ok());
    let stale = key.proof(&request.with_nonce("n-0"), NOW).unwrap();
    assert_eq!(exact.verify(&stale, "GET", URL, None, NOW).unwrap_err().kind(), ErrorKind::UseDpopNonce);

    let nonces = Arc::new(DpopNonces::new(&[9; 32], 60).unwrap());
    let rotating = DpopRules::new().nonce(NonceRule::Rotating(Arc::clone(&nonces)));
    let current = nonces.current(NOW);
    let proof = key.proof(&request.with_nonce(&current), NOW).unwrap();
    assert!(rotating.verify(&proof, "GET", URL, None, NOW).is_ok());
    let later = UnixTime::from_secs(NOW.as_secs() + 150);
    let old_proof = key.proof(&request.with_nonce(&current), later).unwrap();
    assert_eq!(
        rotating.verify(&old_proof, "GET", URL, None, later).unwrap_err().kind(),
        ErrorKind::UseDpopNonce
    );
    assert!(
        DpopRules::new().verify(&with_nonce, "GET", URL, None, NOW).is_ok(),
        "a nonce not asked for is ignored"
    );
}

#[test]
fn the_replay_key_is_per_key_and_jti_and_lives_past_the_window() {
    let a = DpopKey::generate_default().unwrap();
    let b = DpopKey::generate_default().unwrap();
    let signer_a = forge_with_jti(&a, "same");
    let signer_b = forge_with_jti(&b, "same");
    let va = DpopRules::new().verify(&signer_a, "GET", URL, None, NOW).unwrap();
    let vb = DpopRules::new().verify(&signer_b, "GET", URL, None, NOW).unwrap();
    assert_eq!(va.jti, vb.jti);
    assert_ne!(va.replay_key, vb.replay_key, "one client's jti never burns another's");
    assert!(va.replay_until.as_secs() >= NOW.as_secs() + 300);
}

fn forge_with_jti(key: &DpopKey, jti: &str) -> String {
    let jwk = Value::Object(key.private_jwk().unwrap());
    let signer = SigningKey::from_jwk(jwk.as_object().unwrap(), Some(key.alg())).unwrap();
    let claims = json!({"jti": jti, "htm": "GET", "htu": URL, "iat": NOW.as_secs()});
    forge(&signer, json!({"typ": "dpop+jwt"}), claims)
}

#[test]
fn every_dpop_key_exports_a_private_jwk_that_reads_back_as_the_same_key() {
    for alg in identity_model_core::DPOP_KEY_ALGORITHMS {
        let key = DpopKey::generate(alg).unwrap();
        let private = key.private_jwk().unwrap_or_else(|| panic!("{alg} exports"));
        assert!(private.contains_key("d"), "{alg}");
        let again = DpopKey::from_jwk(&private, Some(alg)).unwrap();
        assert_eq!(again.thumbprint(), key.thumbprint(), "{alg}");
        let proof = again.proof(&ProofRequest::new("GET", URL), NOW).unwrap();
        assert_eq!(DpopRules::new().verify(&proof, "GET", URL, None, NOW).unwrap().jkt, key.thumbprint());
    }
}

#[test]
fn bound_jkt_reads_cnf_however_the_json_spells_it() {
    use identity_model_core::{Claims, bound_jkt};
    let claims = |json: &str| Claims::from_json(json.as_bytes().to_vec()).unwrap();
    assert_eq!(bound_jkt(&claims(r#"{"sub":"s","cnf":{"jkt":"abc"}}"#)), Some("abc"));
    assert_eq!(bound_jkt(&claims(r#"{"\u0063nf":{"jkt":"abc"}}"#)), Some("abc"), "an escaped key");
    assert_eq!(bound_jkt(&claims(r#"{"cnf":{"jkt":"a\u0062c"}}"#)), Some("abc"), "an escaped value");
    assert_eq!(bound_jkt(&claims(r#"{"cnf":{"x5t#S256":"t"}}"#)), None, "an mTLS binding is not a DPoP one");
    assert_eq!(bound_jkt(&claims(r#"{"cnf":"abc"}"#)), None);
    assert_eq!(bound_jkt(&claims(r#"{"cnf":{"jkt":1}}"#)), None);
    assert_eq!(bound_jkt(&claims(r#"{"sub":"s"}"#)), None);
}

#[test]
fn a_prepared_key_never_spares_the_signature_or_the_claims() {
    let key = DpopKey::generate_default().unwrap();
    let rules = DpopRules::new();
    let request = ProofRequest::new("GET", URL).with_access_token("tok");
    let first = key.proof(&request, NOW).unwrap();
    rules.verify(&first, "GET", URL, Some("tok"), NOW).unwrap();
    // Same header (the key is prepared now), other proofs: each judged in full.
    let second = key.proof(&request, NOW).unwrap();
    rules.verify(&second, "GET", URL, Some("tok"), NOW).unwrap();
    let mut tampered = second.clone();
    tampered.replace_range(tampered.len() - 4.., "AAAA");
    assert_eq!(
        rules.verify(&tampered, "GET", URL, Some("tok"), NOW).unwrap_err().kind(),
        ErrorKind::InvalidDpopProof
    );
    assert_eq!(rules.verify(&second, "POST", URL, Some("tok"), NOW).unwrap_err().claim(), Some("htm"));
    // A clone of the rules shares the prepared keys; other rules (another allow-list) do not
    // take a key that their list refuses.
    let ed_only = rules.clone().algorithms([Algorithm::EdDSA]);
    assert_eq!(ed_only.verify(&second, "GET", URL, Some("tok"), NOW).unwrap_err().claim(), Some("alg"));
}

/// Issue 19, item 5: a proof gets the tokens' clock leeway (60 s by default) unless its rules
/// set one: a client whose clock runs 30 s fast has its token and its proof accepted alike.
#[test]
fn the_proof_leeway_follows_the_token_leeway_unless_set() {
    let key = SigningKey::generate(Algorithm::ES256).unwrap();
    let ahead = |secs: i64| {
        let mut claims = good_claims();
        claims["iat"] = json!(NOW.as_secs() + secs);
        forge(&key, json!({"typ": "dpop+jwt"}), claims)
    };
    let verify =
        |rules: &DpopRules, proof: &str| rules.verify(proof, "GET", URL, Some("tok"), NOW).map(|_| ());
    assert_eq!(DpopRules::new().proof_leeway_secs(), identity_model_core::DEFAULT_LEEWAY.as_secs() as u32);
    assert!(verify(&DpopRules::new(), &ahead(30)).is_ok(), "30 s ahead, within the default");
    assert!(verify(&DpopRules::new(), &ahead(61)).is_err());
    let inherited = DpopRules::new().inherit_leeway_secs(10);
    assert_eq!(inherited.proof_leeway_secs(), 10);
    assert!(verify(&inherited, &ahead(30)).is_err(), "the token rules allow 10 s");
    let explicit = DpopRules::new().leeway_secs(40).inherit_leeway_secs(10);
    assert_eq!(explicit.proof_leeway_secs(), 40, "a leeway that was set is kept");
    assert!(verify(&explicit, &ahead(30)).is_ok());
}
