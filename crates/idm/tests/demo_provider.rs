//! `idm demo` and `idm provider`, run as a user would.

#![allow(clippy::unwrap_used)] // tests fail loudly by design

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use serde_json::{Value, json};

fn idm() -> Command {
    Command::new(env!("CARGO_BIN_EXE_idm"))
}

#[test]
fn demo_json_walks_every_step_and_checks_what_it_shows() {
    let out = idm().args(["demo", "--json"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["ok"], true);
    let steps: Vec<&str> =
        report["steps"].as_array().unwrap().iter().map(|s| s["step"].as_str().unwrap()).collect();
    assert_eq!(
        steps,
        [
            "provider",
            "discovery",
            "client_credentials",
            "validate",
            "key_cache",
            "rotation",
            "rejections",
            "sidecar"
        ]
    );
    let step =
        |name: &str| report["steps"].as_array().unwrap().iter().find(|s| s["step"] == name).unwrap().clone();
    assert!(step("provider")["issuer"].as_str().unwrap().starts_with("http://127.0.0.1:"));
    assert_eq!(step("client_credentials")["header"]["typ"], "at+jwt");
    assert_eq!(step("validate")["claims"]["sub"], "demo-service");
    assert_eq!(step("key_cache")["provider_jwks_requests"], 1);
    assert_eq!(step("key_cache")["kids"].as_array().unwrap().len(), 3);
    assert_eq!(step("rotation")["jwks_requests"], 1);
    assert_eq!(step("rotation")["concurrent_callers"], 100);
    let rejections = step("rejections");
    let errors: Vec<&str> =
        rejections["rejected"].as_array().unwrap().iter().map(|r| r["error"].as_str().unwrap()).collect();
    assert_eq!(errors, ["token_expired", "invalid_audience", "invalid_signature", "algorithm_not_allowed"]);
    assert!(step("validate")["ms"].is_number());
    let sidecar = step("sidecar");
    assert_eq!(sidecar["allowed"], json!({"status": 200, "user": "demo-user"}));
    assert_eq!(sidecar["refused"]["status"], 401);
    assert_eq!(sidecar["refused"]["www_authenticate"], r#"Bearer realm="api""#);
    assert_eq!(sidecar["refused"]["body"]["error"], "missing_token");
}

#[test]
fn demo_narrates_for_people() {
    let out = idm().arg("demo").output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    for expected in [
        "1. provider",
        "7. rejections",
        "8. sidecar",
        "without a token: 401",
        "caused 1 key set request",
        "alg none",
        "all steps behaved as expected",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in\n{text}");
    }
}

/// Starts `idm provider` and reads its banner up to the last line.
fn start_provider(args: &[&str]) -> (std::process::Child, Vec<String>) {
    let mut child =
        idm().arg("provider").args(args).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let mut reader = BufReader::new(child.stdout.take().unwrap());
    let mut lines: Vec<String> = Vec::new();
    while !lines.last().is_some_and(|l| l.starts_with("Ctrl-C stops.")) {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!("provider exited early: {lines:?} {}", String::from_utf8_lossy(&out.stderr));
        }
        lines.push(line.trim_end().to_owned());
    }
    (child, lines)
}

#[cfg(unix)]
#[test]
fn provider_serves_tokens_that_idm_validates_and_stops_on_interrupt() {
    let (child, banner) = start_provider(&["--port", "0"]);
    let issuer = banner.iter().find_map(|l| l.strip_prefix("issuer")).unwrap().trim().to_owned();
    assert!(
        banner.iter().any(|l| l.trim_start().starts_with("demo-service") && l.contains("secret demo-secret"))
    );
    assert!(banner.iter().any(|l| l.contains("https://opaque.example") && l.contains("opaque")));
    let discover = idm().args(["discover", &issuer, "--allow-http"]).output().unwrap();
    assert!(discover.status.success(), "{}", String::from_utf8_lossy(&discover.stderr));
    let got = idm()
        .args(["token", "client-credentials", "--issuer", &issuer, "--allow-http"])
        .args(["--client-id", "demo-service", "--client-secret", "demo-secret", "--json"])
        .output()
        .unwrap();
    assert!(got.status.success(), "{}", String::from_utf8_lossy(&got.stderr));
    let body: Value = serde_json::from_slice(&got.stdout).unwrap();
    let token = body["access_token"].as_str().unwrap();
    let validate = idm()
        .args(["validate", token, "--issuer", &issuer, "--allow-http", "--audience", "https://api.example"])
        .output()
        .unwrap();
    assert!(validate.status.success(), "{}", String::from_utf8_lossy(&validate.stdout));
    let status = Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap();
    assert!(status.success());
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "exit {:?}", out.status);
    assert!(String::from_utf8_lossy(&out.stderr).contains("provider stopped"));
}

#[cfg(unix)]
#[test]
fn provider_reads_a_configuration_file() {
    let dir = std::env::temp_dir().join(format!("idm-provider-config-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("provider.json");
    let config = serde_json::json!({
        "clients": [{"id": "billing", "secret": "s3cret", "auth_methods": ["client_secret_post"],
                     "grant_types": ["client_credentials"], "scopes": ["invoices"]}],
        "resources": [{"id": "https://billing.example", "format": "jwt", "alg": "ES256"}],
        "algorithms": ["ES256"]
    });
    std::fs::write(&path, config.to_string()).unwrap();
    let (mut child, banner) = start_provider(&["--port", "0", "--config", path.to_str().unwrap()]);
    assert!(banner.iter().any(|l| l.contains("billing") && l.contains("client_secret_post")), "{banner:?}");
    assert!(!banner.iter().any(|l| l.contains("demo-service")));
    Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    assert!(child.wait().unwrap().success());

    std::fs::write(&path, r#"{"clients": [{"id": 1}]}"#).unwrap();
    let out = idm().args(["provider", "--port", "0", "--config", path.to_str().unwrap()]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("invalid provider configuration"));
    let _ = std::fs::remove_dir_all(dir);
}
