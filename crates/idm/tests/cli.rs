//! The `idm` command line as scripts use it: exit codes, stdout JSON shapes, stdin tokens.

#![allow(clippy::unwrap_used)] // tests fail loudly by design

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use identity_model::{Algorithm, SigningKey};
use serde_json::{Value, json};

const ISS: &str = "https://issuer.example";

fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples")
}

fn idm(args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_idm"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    if let Some(input) = stdin {
        child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    }
    drop(child.stdin.take());
    child.wait_with_output().unwrap()
}

fn stdout_json(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {}", String::from_utf8_lossy(&out.stdout)))
}

fn example_token() -> String {
    std::fs::read_to_string(examples().join("access-token.jwt")).unwrap().trim().to_owned()
}

fn jwks_arg() -> String {
    examples().join("jwks.json").to_string_lossy().into_owned()
}

#[test]
fn validates_the_bundled_example_from_an_argument_and_from_stdin() {
    let jwks = jwks_arg();
    let token = example_token();
    for (token_arg, stdin) in [(token.as_str(), None), ("-", Some(format!("{token}\n")))] {
        let out = idm(
            &[
                "validate",
                token_arg,
                "--issuer",
                ISS,
                "--jwks",
                &jwks,
                "--audience",
                "https://api.example",
                "--token-type",
                "at+jwt",
            ],
            stdin.as_deref(),
        );
        assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
        let claims = stdout_json(&out);
        assert_eq!(claims["sub"], "user-1234");
        assert_eq!(claims["iss"], ISS);
    }
}

#[test]
fn invalid_tokens_exit_1_with_the_error_object_in_order() {
    let jwks = jwks_arg();
    let token = example_token();
    let cases: &[(&[&str], &str)] = &[
        (&["--issuer", "https://other.example"], "invalid_issuer"),
        (&["--issuer", ISS, "--audience", "https://elsewhere.example"], "invalid_audience"),
        (&["--issuer", ISS, "--token-type", "dpop+jwt"], "invalid_token_type"),
        (&["--issuer", ISS, "--algorithms", "RS256,PS256"], "algorithm_not_allowed"),
        (&["--issuer", ISS, "--now", "4102444800", "--leeway", "0"], "token_expired"),
        (&["--issuer", ISS, "--now", "1759999000", "--leeway", "60"], "issued_in_future"),
    ];
    for (extra, kind) in cases {
        let mut args = vec!["validate", token.as_str(), "--jwks", &jwks];
        args.extend_from_slice(extra);
        let out = idm(&args, None);
        assert_eq!(out.status.code(), Some(1), "{extra:?}");
        let text = String::from_utf8(out.stdout.clone()).unwrap();
        assert!(text.starts_with(&format!("{{\"valid\":false,\"error\":\"{kind}\",\"message\":")), "{text}");
        let body = stdout_json(&out);
        assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()));
    }
    // A leeway that covers the expiry makes the same token valid again.
    let out = idm(
        &["validate", &token, "--jwks", &jwks, "--issuer", ISS, "--now", "4102444830", "--leeway", "60"],
        None,
    );
    assert_eq!(out.status.code(), Some(0));
    // Garbage and a tampered signature.
    let out = idm(&["validate", "not.a.token!", "--jwks", &jwks, "--issuer", ISS], None);
    assert_eq!((out.status.code(), stdout_json(&out)["error"].clone()), (Some(1), json!("malformed_token")));
    let mut tampered = token.clone();
    tampered.pop();
    tampered.push(if token.ends_with('A') { 'B' } else { 'A' });
    let out = idm(&["validate", &tampered, "--jwks", &jwks, "--issuer", ISS], None);
    assert_eq!(
        (out.status.code(), stdout_json(&out)["error"].clone()),
        (Some(1), json!("invalid_signature"))
    );
}

#[test]
fn audience_not_checked_is_said_on_stderr() {
    let out = idm(&["validate", &example_token(), "--jwks", &jwks_arg(), "--issuer", ISS], None);
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stderr).contains("audience is not checked"));
    let out = idm(
        &[
            "validate",
            &example_token(),
            "--jwks",
            &jwks_arg(),
            "--issuer",
            ISS,
            "--audience",
            "https://api.example",
        ],
        None,
    );
    assert!(!String::from_utf8_lossy(&out.stderr).contains("audience is not checked"));
}

#[test]
fn keys_that_cannot_be_obtained_exit_3() {
    let dir = std::env::temp_dir().join(format!("idm-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let invalid = dir.join("invalid.json");
    std::fs::write(&invalid, "{\"keys\": 7}").unwrap();
    for (path, kind) in [(dir.join("missing.json"), "keys_unavailable"), (invalid, "invalid_key_set")] {
        let out =
            idm(&["validate", &example_token(), "--issuer", ISS, "--jwks", path.to_str().unwrap()], None);
        assert_eq!(out.status.code(), Some(3), "{}", path.display());
        assert_eq!(stdout_json(&out)["error"], kind);
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Issue 11: a JWK Set whose keys were all set aside is still a JWK Set: the token is judged
/// as usual (exit 1), not "keys unavailable" (exit 3).
#[test]
fn a_set_with_no_usable_key_judges_the_token_and_exits_1() {
    let dir = std::env::temp_dir().join(format!("idm-cli-unusable-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let unusable = dir.join("unusable.json");
    std::fs::write(&unusable, r#"{"keys":[{"kty":"RSA","kid":"weak","n":"AQAB","e":"AQAB"}]}"#).unwrap();
    let jwks = unusable.to_str().unwrap();
    let key = SigningKey::generate(Algorithm::RS256).unwrap();
    let sign = |kid: &str| {
        let mut header = serde_json::Map::new();
        header.insert("kid".into(), kid.into());
        let claims = json!({"iss": ISS, "exp": 4_000_000_000u64}).to_string();
        key.sign_compact(header, claims.as_bytes()).unwrap()
    };
    for (token, kind) in [
        (sign("weak"), "invalid_key"),
        (sign("other"), "key_not_found"),
        ("eyJhbGciOiJSU0EtT0FFUCIsImVuYyI6IkEyNTZHQ00ifQ.a.b.c.d".to_owned(), "malformed_token"),
        ("not-a-jwt".to_owned(), "malformed_token"),
    ] {
        let out = idm(&["validate", &token, "--issuer", ISS, "--jwks", jwks], None);
        assert_eq!(out.status.code(), Some(1), "{token}: {}", String::from_utf8_lossy(&out.stderr));
        assert_eq!(stdout_json(&out)["error"], kind, "{token}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Issue 11: `typ` is compared exactly (case-insensitively, `application/` optional), with no
/// whitespace trimming.
#[test]
fn token_type_is_compared_exactly() {
    let key = SigningKey::generate(Algorithm::ES256).unwrap().with_kid("k");
    let dir = std::env::temp_dir().join(format!("idm-cli-typ-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let jwks = dir.join("jwks.json");
    std::fs::write(&jwks, json!({"keys": [key.verification_jwk()]}).to_string()).unwrap();
    let claims = json!({"iss": ISS, "exp": 4_000_000_000u64}).to_string();
    for (typ, code) in
        [("at+jwt", 0), ("Application/AT+JWT", 0), (" at+jwt", 1), ("at+jwt ", 1), ("at+jwt\n", 1)]
    {
        let mut header = serde_json::Map::new();
        header.insert("kid".into(), "k".into());
        header.insert("typ".into(), typ.into());
        let token = key.sign_compact(header, claims.as_bytes()).unwrap();
        let out = idm(
            &[
                "validate",
                &token,
                "--issuer",
                ISS,
                "--jwks",
                jwks.to_str().unwrap(),
                "--token-type",
                "at+jwt",
            ],
            None,
        );
        assert_eq!(out.status.code(), Some(code), "{typ:?}: {}", String::from_utf8_lossy(&out.stdout));
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn usage_errors_exit_2() {
    for args in [
        vec!["validate"],
        vec!["validate", "x", "--jwks", "f"],
        vec!["validate", "x", "--issuer", "i", "--jwks", "f", "--algorithms", "none"],
        vec!["validate", "x", "--issuer", "i", "--jwks", "f", "--leeway", "-1"],
        vec!["frobnicate"],
    ] {
        assert_eq!(idm(&args, None).status.code(), Some(2), "{args:?}");
    }
}

#[test]
fn hmac_needs_the_algorithm_listed() {
    let key = SigningKey::generate(Algorithm::HS256).unwrap();
    let token = key.sign_jwt(None, &json!({"iss": ISS, "exp": 4_000_000_000u64})).unwrap();
    let path = std::env::temp_dir().join(format!("idm-hs-{}.json", std::process::id()));
    std::fs::write(&path, json!({"keys": [key.verification_jwk()]}).to_string()).unwrap();
    let jwks = path.to_str().unwrap();
    let out = idm(&["validate", &token, "--issuer", ISS, "--jwks", jwks], None);
    assert_eq!(
        (out.status.code(), stdout_json(&out)["error"].clone()),
        (Some(1), json!("algorithm_not_allowed"))
    );
    let out = idm(&["validate", &token, "--issuer", ISS, "--jwks", jwks, "--algorithms", "HS256"], None);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    std::fs::remove_file(&path).unwrap();
}

#[test]
fn decode_shows_an_unverified_banner() {
    let out = idm(&["decode", &example_token()], None);
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.starts_with("=== UNVERIFIED"), "{text}");
    assert!(text.contains("\"typ\": \"at+jwt\"") && text.contains("\"sub\": \"user-1234\""), "{text}");
    let out = idm(&["decode", "-", "--json"], Some(&example_token()));
    let body = stdout_json(&out);
    assert_eq!((body["verified"].clone(), body["header"]["alg"].clone()), (json!(false), json!("ES256")));
    assert_eq!(idm(&["decode", "x.y"], None).status.code(), Some(1));
    assert_eq!(idm(&["decode", "%%%.e30.x"], None).status.code(), Some(1));
}

#[test]
fn bench_prints_the_documented_json_shape() {
    let out = idm(
        &["bench", "--alg", "HS256", "--alg", "ES256", "--json", "--rounds", "1", "--batch-ms", "1"],
        None,
    );
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout.clone()).unwrap();
    assert!(text.starts_with("[{\"alg\":\"HS256\",\"validate_ns\":"), "{text}");
    let rows = stdout_json(&out);
    let rows = rows.as_array().unwrap();
    assert_eq!(rows.len(), 2);
    for (row, alg) in rows.iter().zip(["HS256", "ES256"]) {
        let keys: Vec<&str> = row.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(row["alg"], alg);
        for key in ["validate_ns", "verify_ns", "ratio"] {
            assert!(row[key].as_f64().is_some_and(|v| v > 0.0), "{key} in {row}");
            assert!(keys.contains(&key));
        }
    }
}

/// A loopback issuer serving discovery and one key, for the commands that fetch.
fn issuer_with(key: &SigningKey) -> (tokio::runtime::Runtime, wiremock::MockServer) {
    use wiremock::matchers::path;
    use wiremock::{Mock, MockServer, ResponseTemplate};
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let server = runtime.block_on(async {
        let server = MockServer::start().await;
        let issuer = server.uri();
        let disco = json!({"issuer": issuer, "jwks_uri": format!("{issuer}/jwks")}).to_string();
        Mock::given(path("/.well-known/openid-configuration"))
            .respond_with(ResponseTemplate::new(200).set_body_raw(disco, "application/json"))
            .mount(&server)
            .await;
        let jwks = json!({"keys": [key.verification_jwk(), {"kty": "RSA", "kid": "weak", "n": "AQAB", "e": "AQAB"}]});
        Mock::given(path("/jwks"))
            .respond_with(ResponseTemplate::new(200).set_body_raw(jwks.to_string(), "application/json"))
            .mount(&server)
            .await;
        server
    });
    (runtime, server)
}

#[test]
fn validate_discover_and_jwks_through_an_issuer() {
    let key = SigningKey::generate(Algorithm::ES256).unwrap().with_kid("k1");
    let (_runtime, server) = issuer_with(&key);
    let issuer = server.uri();
    let token = key.sign_jwt(None, &json!({"iss": issuer, "exp": 4_000_000_000u64})).unwrap();
    // Without --allow-http a loopback http issuer is refused: a configuration mistake
    // (exit 2, by the fault of policy_violation), not a provider outage.
    let out = idm(&["validate", &token, "--issuer", &issuer], None);
    assert_eq!((out.status.code(), stdout_json(&out)["error"].clone()), (Some(2), json!("policy_violation")));
    let out = idm(&["validate", &token, "--issuer", &issuer, "--allow-http"], None);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(stdout_json(&out)["iss"], issuer.as_str());
    let expired = idm(
        &["validate", &token, "--issuer", &issuer, "--allow-http", "--now", "4000000100", "--leeway", "0"],
        None,
    );
    assert_eq!(
        (expired.status.code(), stdout_json(&expired)["error"].clone()),
        (Some(1), json!("token_expired"))
    );
    let out = idm(&["discover", &issuer, "--allow-http"], None);
    assert_eq!(out.status.code(), Some(3), "the OIDC-required members are missing");
    assert_eq!(stdout_json(&out)["error"], "missing_fields");
    let out = idm(&["jwks", &issuer, "--allow-http", "--json"], None);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let body = stdout_json(&out);
    assert_eq!(body["keys"][0]["kid"], "k1");
    assert_eq!(body["keys"][0]["thumbprint"], key.thumbprint());
    assert_eq!(body["rejected"][0]["kid"], "weak");
    let out = idm(&["jwks", "--jwks-uri", &format!("{issuer}/jwks"), "--allow-http"], None);
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).contains("set aside: key #1 (kid weak)"));
    let out = idm(&["jwks", "http://127.0.0.1:9", "--allow-http"], None);
    assert_eq!((out.status.code(), stdout_json(&out)["error"].clone()), (Some(3), json!("transport_error")));
}

#[test]
fn an_invalid_environment_is_a_usage_error_listing_every_problem() {
    let out = Command::new(env!("CARGO_BIN_EXE_idm"))
        .args(["discover", "https://issuer.example"])
        .env("HTTP_TIMEOUT", "soon")
        .env("MAX_JWKS_KEYS", "0")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("HTTP_TIMEOUT") && stderr.contains("MAX_JWKS_KEYS"), "{stderr}");
}
