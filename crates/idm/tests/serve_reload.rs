//! `idm serve` (issue 22): live reload on a file change and on SIGHUP, issuers kept (no key
//! refetch), a bad configuration refused while the old one serves, `--check-config`.

#![allow(clippy::unwrap_used)] // tests fail loudly by design

mod support;

use std::time::Duration;

use identity_model_testkit::Endpoint;
use support::{ConfigFile, Sidecar, metric, provider_on, reloads, until};

fn issuer_block(provider: &identity_model_testkit::TestProvider) -> String {
    format!(
        "[[issuer]]\nissuer = \"{}\"\naudience = \"{}\"\nallow_http = true\n",
        provider.issuer(),
        provider.default_audience()
    )
}

#[test]
fn a_changed_file_is_checked_and_swapped_in_keeping_the_key_caches() {
    let p = provider_on(0);
    let other = provider_on(0);
    let path = std::env::temp_dir().join(format!("idm-serve-reload-{}.toml", std::process::id()));
    let file = ConfigFile(path.clone());
    let strict =
        format!("{}\n[[route]]\nprefix = \"/admin\"\nscopes = [\"admin\"]\n", issuer_block(&p.provider));
    std::fs::write(&path, &strict).unwrap();
    let sidecar = Sidecar::start(&["--config", file.arg()]);
    let token = format!("Bearer {}", p.provider.token().sign());
    let admin = || sidecar.get("/auth", &[("X-Original-URI", "/admin/x"), ("Authorization", &token)]).status;
    assert_eq!(admin(), 403);
    let fetched = (p.provider.requests(Endpoint::Discovery), p.provider.requests(Endpoint::Jwks));

    // Loosened, and a second issuer added: swapped in, the first issuer's keys kept.
    let loose = format!(
        "{}\n{}\n[[route]]\nprefix = \"/admin\"\nscopes = []\n",
        issuer_block(&p.provider),
        issuer_block(&other.provider)
    );
    std::fs::write(&path, &loose).unwrap();
    until("the new rules serve", Duration::from_secs(10), || admin() == 200);
    assert_eq!((p.provider.requests(Endpoint::Discovery), p.provider.requests(Endpoint::Jwks)), fetched);
    let second = format!("Bearer {}", other.provider.token().sign());
    let status = sidecar.get("/auth", &[("X-Original-URI", "/x"), ("Authorization", &second)]).status;
    assert_eq!(status, 200, "the added issuer is trusted");
    let ready = sidecar.get("/readyz", &[]).json();
    assert_eq!(ready["last_reload"]["ok"], true);
    assert_eq!(ready["issuers"].as_array().unwrap().len(), 2);
    assert_eq!(reloads(&sidecar, "success"), 1.0);

    // A broken file: refused with its problems, the loose rules keep serving.
    std::fs::write(&path, "[[route]]\nprefix = \"admin\"\n").unwrap();
    until("the refusal is reported", Duration::from_secs(10), || {
        sidecar.get("/readyz", &[]).json()["last_reload"]["ok"] == false
    });
    let problems = sidecar.get("/readyz", &[]).json()["last_reload"]["problems"].clone();
    let problems: Vec<String> =
        problems.as_array().unwrap().iter().map(|p| p.as_str().unwrap().to_owned()).collect();
    assert!(problems.iter().any(|p| p.contains("must start with '/'")), "{problems:?}");
    assert!(problems.iter().any(|p| p.contains("no issuer")), "every problem: {problems:?}");
    assert_eq!(admin(), 200);
    assert_eq!(reloads(&sidecar, "failure"), 1.0);
    let gauge = metric(&sidecar.get("/metrics", &[]).body, "idm_serve_config_last_reload_success");
    assert_eq!(gauge, Some(0.0));

    // What needs a restart is refused too (the listener's limits).
    std::fs::write(&path, format!("header_timeout_secs = 3\n{loose}")).unwrap();
    until("the limits change is refused", Duration::from_secs(10), || reloads(&sidecar, "failure") == 2.0);
    let problems = sidecar.get("/readyz", &[]).json()["last_reload"]["problems"].to_string();
    assert!(problems.contains("cannot change without a restart"), "{problems}");

    // SIGHUP reloads the file as it is (the strict rules again).
    std::fs::write(&path, &strict).unwrap();
    until("the strict rules serve", Duration::from_secs(10), || admin() == 403);
    let before = reloads(&sidecar, "success");
    let hup = std::process::Command::new("kill").args(["-HUP", &sidecar.child.id().to_string()]).status();
    assert!(hup.unwrap().success());
    until("SIGHUP reloads", Duration::from_secs(10), || reloads(&sidecar, "success") == before + 1.0);
    assert_eq!(admin(), 403);
}

#[test]
fn check_config_exits_0_or_2_listing_every_problem() {
    let p = provider_on(0);
    let good = support::issuer_config(&p.provider, "[[route]]\nprefix = \"/a\"\nscopes = [\"x\"]\n");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_idm"))
        .args(["serve", "--check-config", good.arg()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("configuration is good"));
    let bad = support::issuer_config(
        &p.provider,
        "[[route]]\nprefix = \"a\"\n\n[[route]]\nprefix = \"/b\"\nmethods = [\"GE T\"]\n",
    );
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_idm"))
        .args(["serve", "--check-config", bad.arg()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("must start with '/'") && stderr.contains("not an HTTP method"), "{stderr}");
}
