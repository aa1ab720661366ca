//! End to end: Debian's `caddy` with `forward_auth` in front of a tiny upstream, `idm serve
//! --proxy caddy` answering its checks, the testkit provider issuing the tokens. The Caddyfile
//! is README.md's, verbatim (only the three addresses are replaced). Under `CI=true` a missing
//! caddy fails the test; elsewhere the test says loudly that it is skipped.

#![allow(clippy::unwrap_used)] // tests fail loudly by design

mod support;

use std::process::{Command, Stdio};
use std::time::Duration;

use identity_model_testkit::TestProvider;
use support::peer::{Peer, binary, readme_snippet, required, upstream};
use support::{Sidecar, free_port, request, until};

#[test]
fn caddy_forward_auth_in_front_of_idm_serve() {
    let Some(caddy) =
        required("caddy", binary("IDM_CADDY", &["/usr/bin/caddy", "/usr/local/bin/caddy"]), "caddy")
    else {
        return;
    };
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let provider = runtime.block_on(TestProvider::start()).unwrap();
    let config = support::rules_config(&provider, "proxy = \"caddy\"", "");
    let sidecar = Sidecar::start(&["--config", config.arg()]);
    until("the sidecar is ready", Duration::from_secs(30), || sidecar.get("/readyz", &[]).status == 200);
    let upstream = upstream();

    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    let dir = std::env::temp_dir().join(format!("idm-caddy-{}-{port}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let caddyfile = readme_snippet("caddy")
        .replace("127.0.0.1:8080", &addr)
        .replace("127.0.0.1:9401", &sidecar.addr)
        .replace("127.0.0.1:3000", &upstream);
    std::fs::write(dir.join("Caddyfile"), caddyfile).unwrap();
    let mut command = Command::new(&caddy);
    command
        .args(["run", "--adapter", "caddyfile", "--config"])
        .arg(dir.join("Caddyfile"))
        .env("HOME", &dir)
        .env("XDG_DATA_HOME", &dir)
        .env("XDG_CONFIG_HOME", &dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let mut caddy = Peer::spawn("caddy", command, addr, dir);
    let send = |method: &str, path: &str, token: Option<&str>, extra: &[(&str, &str)]| {
        let auth = token.map(|t| format!("Bearer {t}"));
        let mut headers: Vec<(&str, &str)> = auth.iter().map(|a| ("Authorization", a.as_str())).collect();
        headers.extend_from_slice(extra);
        request(&caddy.addr, method, path, &headers)
    };

    // A valid token reaches the upstream with its user; no token, an expired or a forged one
    // does not.
    let alice = provider.token().subject("alice").claim("scope", "orders:read").sign();
    let reply = send("GET", "/orders/1", Some(&alice), &[]);
    assert_eq!((reply.status, reply.body.as_str()), (200, "upstream saw alice"), "{reply:?}");
    let missing = send("GET", "/orders/1", None, &[]);
    assert_eq!(missing.status, 401);
    assert_eq!(missing.header("www-authenticate"), Some(r#"Bearer realm="api""#));
    for bad in [provider.token().expired().sign(), provider.token().tampered_signature()] {
        let reply = send("GET", "/orders/1", Some(&bad), &[]);
        assert_eq!(reply.status, 401, "{reply:?}");
        assert!(!reply.body.contains("upstream saw"));
    }
    assert_eq!(send("GET", "/admin/users", Some(&alice), &[]).status, 403);
    assert_eq!(send("DELETE", "/orders/1", Some(&alice), &[]).status, 403);

    // Defect 1 through a real proxy: Caddy copies every client header to the check, so a
    // client's X-Original-URI reaches the sidecar, which refuses it.
    let injected = send("GET", "/admin/users", None, &[("X-Original-URI", "/public/x")]);
    assert_eq!(injected.status, 400, "{injected:?}");
    assert!(!injected.body.contains("upstream saw"));

    // A client-sent identity header never reaches the upstream.
    let forged = [("X-Auth-Request-User", "root")];
    assert_eq!(send("GET", "/orders/1", Some(&alice), &forged).body, "upstream saw alice");
    let anonymous = send("GET", "/public/x", None, &forged);
    assert_eq!(anonymous.status, 200);
    assert!(!anonymous.body.contains("root"), "{anonymous:?}");

    // Path tricks are refused through Caddy too.
    assert_eq!(send("GET", "/public/..;/admin", None, &[]).status, 400);
    assert_eq!(send("GET", "/admin;x", Some(&alice), &[]).status, 400);

    // No process of caddy survives.
    let listening = caddy.addr.clone();
    caddy.stop();
    assert!(caddy.survivors().is_empty());
    assert!(std::net::TcpStream::connect(&listening).is_err(), "something still listens on {listening}");
}
