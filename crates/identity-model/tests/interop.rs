//! Interop with a real, independently written provider: panva's oidc-provider (npm), started
//! here on a free loopback port by `tests/interop/provider.mjs`. `scripts/test` installs it
//! (`npm ci`). Without node or the package the tests skip loudly, except under CI, where they
//! fail.

#![allow(clippy::unwrap_used)] // tests fail loudly by design

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

use identity_model::{Authority, DiscoveryPolicy, Validation, base64url};
use serde_json::Value;

#[path = "../../../tests/interop/peer.rs"]
mod peer;

use peer::interop_dir;

struct Provider {
    child: Child,
    issuer: String,
}

impl Drop for Provider {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(port: u16, keys: &Path) -> Provider {
    let mut child = Command::new("node")
        .arg(interop_dir().join("provider.mjs"))
        .arg(port.to_string())
        .arg(keys)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let issuer = loop {
        let line = lines.next().expect("provider exited before listening").unwrap();
        if let Some(issuer) = line.strip_prefix("ISSUER ") {
            break issuer.to_owned();
        }
    };
    Provider { child, issuer }
}

fn add_key(keys: &Path) -> String {
    let out = Command::new("node").arg(interop_dir().join("keys.mjs")).arg(keys).output().unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

async fn client_credentials(issuer: &str) -> String {
    let basic = base64::encode_basic("interop:interop-secret");
    let response = reqwest::Client::new()
        .post(format!("{issuer}/token"))
        .header("authorization", format!("Basic {basic}"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("grant_type=client_credentials&scope=read&resource=urn%3Ainterop%3Aapi")
        .send()
        .await
        .unwrap();
    let body: Value = serde_json::from_slice(&response.bytes().await.unwrap()).unwrap();
    body["access_token"].as_str().unwrap_or_else(|| panic!("no access_token: {body}")).to_owned()
}

mod base64 {
    /// Standard base64 with padding, for the Basic header (the library only does base64url).
    pub(crate) fn encode_basic(text: &str) -> String {
        let url = super::base64url::encode(text.as_bytes()).replace('-', "+").replace('_', "/");
        let pad = (4 - url.len() % 4) % 4;
        url + &"=".repeat(pad)
    }
}

fn kid_of(token: &str) -> String {
    let header = base64url::decode(token.split('.').next().unwrap().as_bytes()).unwrap();
    serde_json::from_slice::<Value>(&header).unwrap()["kid"].as_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn validates_oidc_provider_tokens_through_discovery_and_key_rotation() {
    if !peer::peer_available("oidc-provider", "oidc-provider interop tests") {
        return;
    }
    let dir = std::env::temp_dir().join(format!("idm-interop-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let keys = dir.join("keys.json");
    let first_kid = add_key(&keys);
    let port = free_port();
    let provider = start(port, &keys);
    let issuer = provider.issuer.clone();

    let rules = Validation::new(issuer.clone()).audience("urn:interop:api").token_type("at+jwt");
    let authority = Authority::builder(&issuer)
        .rules(rules)
        .policy(DiscoveryPolicy::default().allow_http_on_loopback())
        .build()
        .unwrap();

    let token = client_credentials(&issuer).await;
    assert_eq!(kid_of(&token), first_kid);
    let valid = authority.validate(&token).await.unwrap();
    assert_eq!(valid.claims.get("client_id").and_then(Value::as_str), Some("interop"));
    assert_eq!(valid.header.typ(), Some("at+jwt"));

    // Rotation: a new provider instance with the new key first and the old one after.
    drop(provider);
    let second_kid = add_key(&keys);
    let provider = start(port, &keys);
    let rotated = client_credentials(&issuer).await;
    assert_eq!(kid_of(&rotated), second_kid);
    assert!(authority.validate(&rotated).await.is_ok(), "token signed with the rotated key");
    assert!(authority.validate(&token).await.is_ok(), "token signed with the previous key");
    let stats = authority.stats();
    assert_eq!(stats.kid_misses.load(std::sync::atomic::Ordering::Relaxed), 1);
    drop(provider);
    std::fs::remove_dir_all(&dir).unwrap();
}
