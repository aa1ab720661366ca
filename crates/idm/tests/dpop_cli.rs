//! `idm dpop key`, `idm dpop proof` and `idm validate --dpop`: the kinds of issue 13 at the
//! command line, with the exit codes and JSON of `idm validate`.

#![allow(clippy::unwrap_used)] // tests fail loudly by design

use std::path::PathBuf;
use std::process::{Command, Output};

use identity_model::{Algorithm, DpopKey, ProofRequest, SigningKey, UnixTime};
use serde_json::{Value, json};

const ISS: &str = "https://issuer.example";
const AUD: &str = "https://api.example";
const URL: &str = "https://api.example/orders";
const NOW: i64 = 1_800_000_000;

fn idm(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_idm")).args(args).output().unwrap()
}

fn stdout_json(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {}", String::from_utf8_lossy(&out.stdout)))
}

struct Setup {
    dir: PathBuf,
    issuer: SigningKey,
}

impl Drop for Setup {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Setup {
    fn new() -> Setup {
        static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("idm-dpop-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let issuer = SigningKey::generate(Algorithm::ES256).unwrap();
        let jwks = json!({"keys": [issuer.verification_jwk()]});
        std::fs::write(dir.join("jwks.json"), jwks.to_string()).unwrap();
        Setup { dir, issuer }
    }

    fn jwks(&self) -> String {
        self.dir.join("jwks.json").to_string_lossy().into_owned()
    }

    fn token(&self, jkt: Option<&str>) -> String {
        let mut claims = json!({"iss": ISS, "aud": AUD, "sub": "s", "exp": NOW + 600, "iat": NOW});
        if let Some(jkt) = jkt {
            claims["cnf"] = json!({"jkt": jkt});
        }
        self.issuer.sign_jwt(Some("at+jwt"), &claims).unwrap()
    }

    /// `idm validate` of `token` with `extra` flags, as of NOW.
    fn validate(&self, token: &str, extra: &[&str]) -> Output {
        let now = NOW.to_string();
        let jwks = self.jwks();
        let mut args =
            vec!["validate", token, "--issuer", ISS, "--audience", AUD, "--jwks", &jwks, "--now", &now];
        args.extend_from_slice(extra);
        idm(&args)
    }
}

fn kind(out: &Output) -> String {
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stderr));
    let json = stdout_json(out);
    assert_eq!(json["valid"], false);
    json["error"].as_str().unwrap().to_owned()
}

#[test]
fn a_key_from_idm_dpop_key_signs_proofs_that_idm_validate_accepts() {
    let setup = Setup::new();
    for alg in ["ES256", "EdDSA", "PS256", "RS256"] {
        let out = idm(&["dpop", "key", "--alg", alg]);
        assert!(out.status.success(), "{alg}: {}", String::from_utf8_lossy(&out.stderr));
        let jwk = stdout_json(&out);
        assert!(jwk["d"].is_string(), "{alg}: a private JWK");
        let path = setup.dir.join(format!("{alg}.jwk"));
        std::fs::write(&path, jwk.to_string()).unwrap();
        let key = DpopKey::from_jwk(jwk.as_object().unwrap(), None).unwrap();
        let token = setup.token(Some(key.thumbprint()));
        let now = NOW.to_string();
        let path = path.to_string_lossy().into_owned();
        let out = idm(&[
            "dpop", "proof", "--key", &path, "--method", "GET", "--url", URL, "--token", &token, "--now",
            &now,
        ]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let proof = String::from_utf8(out.stdout).unwrap();
        let out = setup.validate(&token, &["--dpop", proof.trim(), "--method", "GET", "--url", URL]);
        assert!(out.status.success(), "{alg}: {}", String::from_utf8_lossy(&out.stdout));
        assert_eq!(stdout_json(&out)["cnf"]["jkt"], key.thumbprint());
    }
    assert_eq!(idm(&["dpop", "key", "--alg", "HS256"]).status.code(), Some(2));
}

#[test]
fn every_mistake_gets_its_kind() {
    let setup = Setup::new();
    let key = DpopKey::generate_default().unwrap();
    let other = DpopKey::generate_default().unwrap();
    let bound = setup.token(Some(key.thumbprint()));
    let unbound = setup.token(None);
    let at = |secs: i64| UnixTime::from_secs(secs);
    let proof =
        |key: &DpopKey, method: &str, url: &str, token: Option<&str>, nonce: Option<&str>, iat: i64| {
            let mut request = ProofRequest::new(method, url);
            if let Some(token) = token {
                request = request.with_access_token(token);
            }
            if let Some(nonce) = nonce {
                request = request.with_nonce(nonce);
            }
            key.proof(&request, at(iat)).unwrap()
        };
    let good = proof(&key, "GET", URL, Some(&bound), None, NOW);
    let cases: Vec<(&str, &str, Vec<String>, &str)> = vec![
        ("bound token as plain bearer", &bound, vec![], "dpop_proof_required"),
        (
            "htm",
            &bound,
            vec!["--dpop".into(), good.clone(), "--method".into(), "POST".into(), "--url".into(), URL.into()],
            "invalid_dpop_proof",
        ),
        (
            "htu",
            &bound,
            vec![
                "--dpop".into(),
                good.clone(),
                "--method".into(),
                "GET".into(),
                "--url".into(),
                "https://api.example/admin".into(),
            ],
            "invalid_dpop_proof",
        ),
        (
            "iat too old",
            &bound,
            vec![
                "--dpop".into(),
                proof(&key, "GET", URL, Some(&bound), None, NOW - 301),
                "--method".into(),
                "GET".into(),
                "--url".into(),
                URL.into(),
            ],
            "invalid_dpop_proof",
        ),
        (
            "iat in the future",
            &bound,
            vec![
                "--dpop".into(),
                proof(&key, "GET", URL, Some(&bound), None, NOW + 61),
                "--method".into(),
                "GET".into(),
                "--url".into(),
                URL.into(),
            ],
            "invalid_dpop_proof",
        ),
        (
            "ath of another token",
            &bound,
            vec![
                "--dpop".into(),
                proof(&key, "GET", URL, Some(&unbound), None, NOW),
                "--method".into(),
                "GET".into(),
                "--url".into(),
                URL.into(),
            ],
            "invalid_dpop_proof",
        ),
        (
            "ath missing",
            &bound,
            vec![
                "--dpop".into(),
                proof(&key, "GET", URL, None, None, NOW),
                "--method".into(),
                "GET".into(),
                "--url".into(),
                URL.into(),
            ],
            "invalid_dpop_proof",
        ),
        (
            "another key",
            &bound,
            vec![
                "--dpop".into(),
                proof(&other, "GET", URL, Some(&bound), None, NOW),
                "--method".into(),
                "GET".into(),
                "--url".into(),
                URL.into(),
            ],
            "dpop_key_mismatch",
        ),
        (
            "unbound token with a proof",
            &unbound,
            vec![
                "--dpop".into(),
                proof(&key, "GET", URL, Some(&unbound), None, NOW),
                "--method".into(),
                "GET".into(),
                "--url".into(),
                URL.into(),
            ],
            "dpop_key_mismatch",
        ),
        (
            "nonce required, none sent",
            &bound,
            vec![
                "--dpop".into(),
                good.clone(),
                "--method".into(),
                "GET".into(),
                "--url".into(),
                URL.into(),
                "--dpop-nonce".into(),
                "n-1".into(),
            ],
            "use_dpop_nonce",
        ),
        (
            "not a JWS",
            &bound,
            vec![
                "--dpop".into(),
                "not-a-proof".into(),
                "--method".into(),
                "GET".into(),
                "--url".into(),
                URL.into(),
            ],
            "invalid_dpop_proof",
        ),
    ];
    for (name, token, extra, expected) in cases {
        let extra: Vec<&str> = extra.iter().map(String::as_str).collect();
        assert_eq!(kind(&setup.validate(token, &extra)), expected, "{name}");
    }
    // The nonce, the max age and normalized URLs, accepted.
    let with_nonce = proof(&key, "GET", URL, Some(&bound), Some("n-1"), NOW - 500);
    let out = setup.validate(
        &bound,
        &[
            "--dpop",
            &with_nonce,
            "--method",
            "GET",
            "--url",
            "HTTPS://API.example:443/orders?x=1",
            "--dpop-nonce",
            "n-1",
            "--dpop-max-age",
            "600",
        ],
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
    // An unbound token without a proof is a bearer token as before.
    assert!(setup.validate(&unbound, &[]).status.success());
    // --method without --dpop is a usage error.
    assert_eq!(setup.validate(&unbound, &["--method", "GET"]).status.code(), Some(2));
}

#[test]
fn bench_has_a_dpop_row() {
    let out = idm(&["bench", "--alg", "ES256", "--dpop", "--json", "--rounds", "1", "--batch-ms", "1"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let rows = stdout_json(&out);
    let row = &rows.as_array().unwrap()[1];
    assert_eq!(
        (row["alg"].as_str(), row["token_alg"].as_str(), row["proof_alg"].as_str()),
        (Some("DPoP"), Some("RS256"), Some("ES256"))
    );
    for key in ["validate_ns", "verify_ns", "ratio"] {
        assert!(row[key].as_f64().is_some_and(|v| v > 0.0), "{key} in {row}");
    }
}

/// Proofs no honest client makes (forged by hand): each is `invalid_dpop_proof` at the CLI.
#[test]
fn forged_proofs_are_invalid_dpop_proof() {
    use identity_model::base64url;
    let setup = Setup::new();
    let signer = SigningKey::generate(Algorithm::ES256).unwrap();
    let mut public = signer.verification_jwk();
    public.retain(|k, _| matches!(k.as_str(), "kty" | "crv" | "x" | "y"));
    let token = setup.token(Some(&signer.thumbprint()));
    let claims = json!({
        "jti": "j", "htm": "GET", "htu": URL, "iat": NOW, "ath": identity_model::access_token_hash(&token)
    });
    let sign = |key: &SigningKey, header: Value| {
        let mut text = base64url::encode(header.to_string());
        text.push('.');
        text.push_str(&base64url::encode(claims.to_string()));
        let signature = key.sign(text.as_bytes()).unwrap();
        format!("{text}.{}", base64url::encode(signature))
    };
    let mut private = signer.private_jwk().unwrap();
    private.retain(|k, _| matches!(k.as_str(), "kty" | "crv" | "x" | "y" | "d"));
    let hmac = SigningKey::generate(Algorithm::HS256).unwrap();
    let forged = [
        ("honest", sign(&signer, json!({"typ": "dpop+jwt", "alg": "ES256", "jwk": public})), None),
        (
            "typ JWT",
            sign(&signer, json!({"typ": "JWT", "alg": "ES256", "jwk": public})),
            Some("invalid_dpop_proof"),
        ),
        ("no jwk", sign(&signer, json!({"typ": "dpop+jwt", "alg": "ES256"})), Some("invalid_dpop_proof")),
        (
            "private jwk",
            sign(&signer, json!({"typ": "dpop+jwt", "alg": "ES256", "jwk": private})),
            Some("invalid_dpop_proof"),
        ),
        (
            "HS256",
            sign(&hmac, json!({"typ": "dpop+jwt", "alg": "HS256", "jwk": hmac.verification_jwk()})),
            Some("invalid_dpop_proof"),
        ),
        (
            "none",
            format!(
                "{}.{}.",
                base64url::encode(json!({"typ": "dpop+jwt", "alg": "none", "jwk": public}).to_string()),
                base64url::encode(claims.to_string())
            ),
            Some("invalid_dpop_proof"),
        ),
    ];
    for (name, proof, expected) in forged {
        let out = setup.validate(&token, &["--dpop", &proof, "--method", "GET", "--url", URL]);
        match expected {
            None => assert!(out.status.success(), "{name}: {}", String::from_utf8_lossy(&out.stdout)),
            Some(kind) => assert_eq!(self::kind(&out), kind, "{name}"),
        }
    }
}

/// Issue 19, item 5: a proof gets the token's leeway (`--leeway`, 60 s by default) unless
/// `--dpop-leeway` says otherwise: a client clock 30 s fast passes for token and proof alike.
#[test]
fn the_proof_leeway_follows_the_token_leeway() {
    let setup = Setup::new();
    let key = DpopKey::generate_default().unwrap();
    let bound = setup.token(Some(key.thumbprint()));
    let request = ProofRequest::new("GET", URL).with_access_token(&bound);
    let ahead = key.proof(&request, UnixTime::from_secs(NOW + 30)).unwrap();
    let with = |extra: &[&str]| {
        let mut args = vec!["--dpop", ahead.as_str(), "--method", "GET", "--url", URL];
        args.extend_from_slice(extra);
        setup.validate(&bound, &args)
    };
    let out = with(&[]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stdout));
    assert_eq!(kind(&with(&["--leeway", "10"])), "invalid_dpop_proof", "the token leeway, inherited");
    assert_eq!(kind(&with(&["--dpop-leeway", "5"])), "invalid_dpop_proof");
    let out = with(&["--leeway", "10", "--dpop-leeway", "45"]);
    assert_eq!(out.status.code(), Some(0), "an explicit proof leeway wins");
}
