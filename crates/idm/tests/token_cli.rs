//! `idm token ...` against the test provider, run as a user would: every subcommand, the
//! `--json` shapes, and the exit codes (0 success, 1 refused, 2 usage).

#![allow(clippy::unwrap_used)] // tests fail loudly by design

use std::io::{BufRead, BufReader};
use std::process::{Command, Output, Stdio};

use identity_model::{Algorithm, SigningKey};
use identity_model_testkit::{ClientConfig, Endpoint, ProviderConfig, TestProvider};
use serde_json::{Value, json};

fn idm(args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_idm"));
    command.arg("token").args(args).env_remove("IDM_CLIENT_SECRET");
    command
}

async fn run(mut command: Command) -> Output {
    tokio::task::spawn_blocking(move || command.output().unwrap()).await.unwrap()
}

fn json_of(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!("{e}: {} / {}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
    })
}

async fn provider(extra: Vec<ClientConfig>) -> TestProvider {
    let mut config = ProviderConfig { device_poll_interval: 1, ..ProviderConfig::default() };
    config.clients.extend(extra);
    TestProvider::builder().config(config).start().await.unwrap()
}

fn service<'a>(issuer: &'a str, sub: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec![
        sub,
        "--issuer",
        issuer,
        "--allow-http",
        "--client-id",
        "demo-service",
        "--client-secret",
        "demo-secret",
    ];
    args.extend_from_slice(extra);
    args
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_credentials_exchange_introspect_revoke() {
    let p = provider(vec![]).await;
    let iss = p.issuer().to_owned();

    let out = run(idm(&service(&iss, "client-credentials", &["--scope", "api:read", "--json"]))).await;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let tokens = json_of(&out);
    assert_eq!((tokens["token_type"].as_str(), tokens["scope"].as_str()), (Some("Bearer"), Some("api:read")));
    let access = tokens["access_token"].as_str().unwrap().to_owned();
    assert!(p.recorded(Endpoint::Token)[0].header("authorization").unwrap().starts_with("Basic "));

    let human = run(idm(&service(&iss, "client-credentials", &["--auth", "post"]))).await;
    assert!(String::from_utf8(human.stdout).unwrap().contains("token_type: Bearer"));
    assert!(p.recorded(Endpoint::Token)[1].form().iter().any(|(n, _)| n == "client_secret"));

    let out =
        run(idm(&service(&iss, "exchange", &[&access, "--audience", "https://api.example", "--json"]))).await;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(json_of(&out)["issued_token_type"], "urn:ietf:params:oauth:token-type:access_token");

    let out =
        run(idm(&service(&iss, "client-credentials", &["--resource", "https://opaque.example", "--json"])))
            .await;
    let opaque = json_of(&out)["access_token"].as_str().unwrap().to_owned();
    let out = run(idm(&service(&iss, "introspect", &[&opaque, "--json"]))).await;
    assert_eq!(json_of(&out)["active"], true);
    let out = run(idm(&service(&iss, "revoke", &[&opaque]))).await;
    assert_eq!(out.status.code(), Some(0));
    let out = run(idm(&service(&iss, "introspect", &[&opaque, "--json"]))).await;
    assert_eq!(json_of(&out), json!({"active": false}));
    // base64url tokens may start with '-': still a token, not a flag.
    let out = run(idm(&service(&iss, "introspect", &["-uAbc", "--json"]))).await;
    assert_eq!(json_of(&out), json!({"active": false}));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_exit_1_with_the_oauth_error_as_json_and_usage_errors_exit_2() {
    let p = provider(vec![]).await;
    let iss = p.issuer().to_owned();
    let args = [
        "client-credentials",
        "--issuer",
        &iss,
        "--allow-http",
        "--client-id",
        "demo-service",
        "--client-secret",
        "wrong",
        "--json",
    ];
    let out = run(idm(&args)).await;
    assert_eq!(out.status.code(), Some(1));
    let error = json_of(&out);
    assert_eq!((error["error"].as_str(), error["status"].as_u64()), (Some("invalid_client"), Some(401)));
    assert!(error.get("error_description").is_some());

    let out = run(idm(&service(&iss, "client-credentials", &["--scope", "admin", "--json"]))).await;
    assert_eq!((out.status.code(), json_of(&out)["error"].as_str()), (Some(1), Some("invalid_scope")));

    // Without --allow-http the loopback issuer is refused by policy: exit 1, a kind, no request.
    let strict = ["client-credentials", "--issuer", &iss, "--client-id", "x", "--json"];
    let out = run(idm(&strict)).await;
    assert_eq!((out.status.code(), json_of(&out)["error"].as_str()), (Some(1), Some("policy_violation")));

    let out =
        run(idm(&["client-credentials", "--issuer", &iss, "--client-id", "x", "--auth", "private-key-jwt"]))
            .await;
    assert_eq!(out.status.code(), Some(2));
    let out =
        run(idm(&["client-credentials", "--issuer", &iss, "--client-id", "x", "--key", "/nonexistent.json"]))
            .await;
    assert_eq!(out.status.code(), Some(2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn private_key_jwt_from_a_jwk_file() {
    for alg in [Algorithm::ES256, Algorithm::EdDSA] {
        let key = SigningKey::generate(alg).unwrap();
        let jwks = json!({"keys": [Value::Object(key.verification_jwk())]});
        let p = provider(vec![ClientConfig::private_key_jwt("key-service", jwks)]).await;
        let dir = std::env::temp_dir().join(format!("idm-token-cli-{}-{alg}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("key.json");
        std::fs::write(&file, Value::Object(key.private_jwk().unwrap()).to_string()).unwrap();
        let iss = p.issuer().to_owned();
        let args = [
            "client-credentials",
            "--issuer",
            &iss,
            "--allow-http",
            "--client-id",
            "key-service",
            "--key",
            file.to_str().unwrap(),
            "--json",
        ];
        let out = run(idm(&args)).await;
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(out.status.success(), "{alg}: {}", String::from_utf8_lossy(&out.stdout));
        let form = p.recorded(Endpoint::Token)[0].form();
        assert!(form.iter().any(|(n, _)| n == "client_assertion"), "{alg}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn device_flow_refresh_and_userinfo() {
    let p = provider(vec![]).await;
    let iss = p.issuer().to_owned();
    let mut child = idm(&[
        "device",
        "--issuer",
        &iss,
        "--allow-http",
        "--client-id",
        "demo-app",
        "--scope",
        "openid offline_access",
        "--json",
    ])
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    // Read stderr to its end on a thread (a closed pipe would break the CLI's later lines);
    // the first line carries the user code.
    let stderr = child.stderr.take().unwrap();
    let (first_line, lines) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        let mut all = Vec::new();
        for line in BufReader::new(stderr).lines() {
            let line = line.unwrap();
            if all.is_empty() {
                first_line.send(line.clone()).unwrap();
            }
            all.push(line);
        }
        all
    });
    let line = tokio::task::spawn_blocking(move || lines.recv().unwrap()).await.unwrap();
    let user_code = line.rsplit(' ').next().unwrap().to_owned();
    assert!(p.approve_device(&user_code, "alice"), "user code {user_code:?}");
    let out = tokio::task::spawn_blocking(move || child.wait_with_output().unwrap()).await.unwrap();
    let stderr = reader.join().unwrap();
    assert!(out.status.success(), "{stderr:?}");
    assert!(stderr.iter().any(|l| l.starts_with("Waiting (polling every 1 s")), "{stderr:?}");
    let tokens = json_of(&out);
    let access = tokens["access_token"].as_str().unwrap();
    let refresh = tokens["refresh_token"].as_str().unwrap();

    let userinfo = ["userinfo", access, "--issuer", &iss, "--allow-http", "--json"];
    let out = run(idm(&userinfo)).await;
    assert_eq!(json_of(&out)["sub"], "alice");
    let out = run(idm(&[&userinfo[..], &["--expected-sub", "bob"]].concat())).await;
    assert_eq!((out.status.code(), json_of(&out)["error"].as_str()), (Some(1), Some("invalid_claim")));

    let args = ["refresh", refresh, "--issuer", &iss, "--allow-http", "--client-id", "demo-app", "--json"];
    let out = run(idm(&args)).await;
    assert!(
        out.status.success(),
        "{} / {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_ne!(json_of(&out)["refresh_token"].as_str(), Some(refresh), "rotated");
    let out = run(idm(&args)).await;
    assert_eq!((out.status.code(), json_of(&out)["error"].as_str()), (Some(1), Some("invalid_grant")));
}

/// `idm token client-credentials --dpop-key`: a DPoP-bound token from the provider (which
/// demands a nonce: one retry), bound to the key `idm dpop key` wrote, and `idm validate
/// --dpop` accepts it with a proof from `idm dpop proof`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dpop_key_gets_a_bound_token_that_validate_accepts_with_a_proof() {
    let p = provider(vec![]).await;
    p.require_dpop_nonce(Some("cli-nonce"));
    let iss = p.issuer().to_owned();
    let dir = std::env::temp_dir().join(format!("idm-token-dpop-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let key_file = dir.join("dpop.jwk");
    let mut command = Command::new(env!("CARGO_BIN_EXE_idm"));
    command.args(["dpop", "key"]);
    let out = run(command).await;
    std::fs::write(&key_file, &out.stdout).unwrap();
    let key_path = key_file.to_str().unwrap();
    let out = run(idm(&service(&iss, "client-credentials", &["--dpop-key", key_path, "--json"]))).await;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let tokens = json_of(&out);
    assert_eq!(tokens["token_type"], "DPoP");
    assert_eq!(p.requests(Endpoint::Token), 2, "one use_dpop_nonce answer, one retry");
    let access = tokens["access_token"].as_str().unwrap().to_owned();

    let url = "https://api.example/orders";
    let mut command = Command::new(env!("CARGO_BIN_EXE_idm"));
    command.args(["dpop", "proof", "--key", key_path, "--method", "GET", "--url", url, "--token", &access]);
    let proof = String::from_utf8(run(command).await.stdout).unwrap();
    let mut command = Command::new(env!("CARGO_BIN_EXE_idm"));
    command.args(["validate", &access, "--issuer", &iss, "--allow-http", "--audience", p.default_audience()]);
    command.args(["--dpop", proof.trim(), "--method", "GET", "--url", url]);
    let out = run(command).await;
    assert!(
        out.status.success(),
        "{} {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let mut command = Command::new(env!("CARGO_BIN_EXE_idm"));
    command.args(["validate", &access, "--issuer", &iss, "--allow-http", "--audience", p.default_audience()]);
    let out = run(command).await;
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(json_of(&out)["error"], "dpop_proof_required");
    std::fs::remove_dir_all(&dir).unwrap();
}
