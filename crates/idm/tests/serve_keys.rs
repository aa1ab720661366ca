//! `idm serve` (issue 22): keys without discovery per issuer (`jwks_uri`, `jwks_file`,
//! inline `keys`), each in `/readyz`; a key file re-read when it changes.

#![allow(clippy::unwrap_used)] // tests fail loudly by design

mod support;

use identity_model_testkit::Endpoint;
use support::{ConfigFile, Sidecar, provider_on};

fn write(name: &str, text: &str) -> ConfigFile {
    let path = std::env::temp_dir().join(format!("idm-serve-keys-{}-{name}", std::process::id()));
    std::fs::write(&path, text).unwrap();
    ConfigFile(path)
}

#[test]
fn keys_from_a_jwks_uri_a_file_or_inline() {
    let p = provider_on(0);
    let provider = &p.provider;
    let jwks = provider.jwks();
    let token = format!("Bearer {}", provider.token().subject("k8s-sa").sign());
    let check =
        |sidecar: &Sidecar| sidecar.get("/auth", &[("X-Original-URI", "/"), ("Authorization", &token)]);
    let issuer = |extra: &str| {
        format!(
            "[[issuer]]\nissuer = \"{}\"\naudience = \"{}\"\nallow_http = true\n{extra}\n",
            provider.issuer(),
            provider.default_audience()
        )
    };

    let by_uri = write("uri.toml", &issuer(&format!("jwks_uri = \"{}/jwks\"", provider.issuer())));
    let sidecar = Sidecar::start(&["--config", by_uri.arg()]);
    assert_eq!(check(&sidecar).header("x-auth-request-user"), Some("k8s-sa"));
    let ready = sidecar.get("/readyz", &[]).json();
    assert_eq!(ready["issuers"][0]["keys_from"], "jwks_uri");
    assert_eq!(provider.requests(Endpoint::Discovery), 0);

    let file = write("jwks.json", &jwks.to_string());
    let by_file = write("file.toml", &issuer(&format!("jwks_file = \"{}\"", file.arg())));
    let sidecar = Sidecar::start(&["--config", by_file.arg()]);
    assert_eq!(check(&sidecar).status, 200);
    assert_eq!(sidecar.get("/readyz", &[]).json()["issuers"][0]["keys_from"], "jwks_file");
    // A broken version of the file: the last good keys keep serving.
    std::fs::write(&file.0, "not json").unwrap();
    assert_eq!(check(&sidecar).status, 200);

    let inline: Vec<String> = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|key| {
            let members: Vec<String> =
                key.as_object().unwrap().iter().map(|(n, v)| format!("{n} = {v}")).collect();
            format!("{{ {} }}", members.join(", "))
        })
        .collect();
    let by_keys = write("inline.toml", &issuer(&format!("keys = [{}]", inline.join(", "))));
    let sidecar = Sidecar::start(&["--config", by_keys.arg()]);
    assert_eq!(check(&sidecar).status, 200);
    let ready = sidecar.get("/readyz", &[]).json();
    assert_eq!(
        (ready["ready"].as_bool(), ready["issuers"][0]["keys_from"].as_str()),
        (Some(true), Some("keys"))
    );
    assert_eq!(provider.requests(Endpoint::Discovery), 0, "no issuer above used discovery");

    let both = write("both.toml", &issuer("jwks_uri = \"https://keys.example/jwks\"\njwks_file = \"/x\""));
    assert!(support::config_problems(&both).contains("at most one of jwks_uri, jwks_file, keys"));
    let unusable = write("bad.toml", &issuer("keys = [{ kty = \"RSA\", n = \"AQAB\", e = \"AQAB\" }]"));
    assert!(support::config_problems(&unusable).contains("keys"));
}
