//! End to end: Debian's nginx (`nginx-light`) with `auth_request` in front of a tiny upstream,
//! `idm serve` answering its checks, the testkit provider issuing the tokens. The nginx block
//! is README.md's, verbatim (only the three addresses are replaced). Under `CI=true` a missing
//! nginx fails the test; elsewhere the test says loudly that it is skipped.

#![allow(clippy::unwrap_used)] // tests fail loudly by design

mod support;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use identity_model_testkit::{Endpoint, Rotation, TestProvider};
use support::{Sidecar, free_port, request, until};

fn nginx_binary() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("IDM_NGINX") {
        return Some(PathBuf::from(path));
    }
    ["/usr/sbin/nginx", "/usr/bin/nginx", "/usr/local/sbin/nginx"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
}

/// README.md's block between `<!-- snippet: NAME -->` and `<!-- end snippet -->`, without the
/// code fence.
fn readme_snippet(name: &str) -> String {
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../README.md")).unwrap();
    let start =
        readme.find(&format!("<!-- snippet: {name} -->")).unwrap_or_else(|| panic!("no {name} snippet"));
    let rest = &readme[start..];
    let end = rest.find("<!-- end snippet -->").unwrap();
    let block = &rest[..end];
    let body_start = block.find("```").unwrap();
    let body = &block[body_start..];
    let body = &body[body.find('\n').unwrap() + 1..];
    body[..body.rfind("```").unwrap()].to_owned()
}

/// An upstream that answers 200 with the `X-Auth-Request-User` it was sent (or `-`).
fn upstream() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            std::thread::spawn(move || {
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut user = "-".to_owned();
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                        break;
                    }
                    if let Some((name, value)) = line.split_once(':') {
                        if name.eq_ignore_ascii_case("x-auth-request-user") {
                            user = value.trim().to_owned();
                        }
                    }
                }
                let body = format!("upstream saw {user}");
                let _ = write!(
                    stream,
                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
            });
        }
    });
    addr
}

struct Nginx {
    child: Child,
    addr: String,
    _dir: PathBuf,
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self._dir);
    }
}

fn start_nginx(binary: &Path, sidecar: &str, upstream: &str) -> Nginx {
    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    let dir = std::env::temp_dir().join(format!("idm-nginx-{}-{port}", std::process::id()));
    std::fs::create_dir_all(dir.join("logs")).unwrap();
    let server = readme_snippet("nginx")
        .replace("127.0.0.1:8080", &addr)
        .replace("127.0.0.1:9401", sidecar)
        .replace("127.0.0.1:3000", upstream);
    let conf = format!(
        "daemon off;\nworker_processes 1;\npid {dir}/nginx.pid;\nerror_log {dir}/logs/error.log warn;\n\
         events {{ worker_connections 256; }}\nhttp {{\n  access_log off;\n  \
         client_body_temp_path {dir}/body;\n  proxy_temp_path {dir}/proxy;\n  \
         fastcgi_temp_path {dir}/fastcgi;\n  uwsgi_temp_path {dir}/uwsgi;\n  scgi_temp_path {dir}/scgi;\n\
         {server}\n}}\n",
        dir = dir.display()
    );
    std::fs::write(dir.join("nginx.conf"), conf).unwrap();
    let child = Command::new(binary)
        .arg("-p")
        .arg(&dir)
        .arg("-e")
        .arg(dir.join("logs/error.log"))
        .arg("-c")
        .arg(dir.join("nginx.conf"))
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start nginx");
    let mut nginx = Nginx { child, addr, _dir: dir };
    until("nginx accepts connections", Duration::from_secs(30), || {
        assert!(nginx.child.try_wait().unwrap().is_none(), "nginx exited: see its error log above");
        std::net::TcpStream::connect(&nginx.addr).is_ok()
    });
    nginx
}

#[test]
fn nginx_auth_request_in_front_of_idm_serve() {
    let Some(nginx) = nginx_binary() else {
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!("nginx is required under CI (scripts/test installs nginx-light)");
        }
        eprintln!(
            "\n*** SKIPPED nginx_auth_request_in_front_of_idm_serve: nginx not found (apt-get install nginx-light) ***\n"
        );
        return;
    };
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let provider = runtime.block_on(TestProvider::start()).unwrap();
    let config = std::env::temp_dir().join(format!("idm-nginx-{}.toml", std::process::id()));
    std::fs::write(
        &config,
        format!(
            "[[issuer]]\nissuer = \"{}\"\naudience = \"{}\"\nallow_http = true\n\n\
             [[route]]\nprefix = \"/admin\"\nscopes = [\"admin\"]\n",
            provider.issuer(),
            provider.default_audience()
        ),
    )
    .unwrap();
    let sidecar = Sidecar::start(&["--config", config.to_str().unwrap()]);
    until("the sidecar is ready", Duration::from_secs(30), || sidecar.get("/readyz", &[]).status == 200);
    let upstream = upstream();
    let nginx = start_nginx(&nginx, &sidecar.addr, &upstream);
    let get = |path: &str, token: Option<&str>| {
        let auth = token.map(|t| format!("Bearer {t}"));
        let headers: Vec<(&str, &str)> = auth.iter().map(|a| ("Authorization", a.as_str())).collect();
        request(&nginx.addr, "GET", path, &headers)
    };

    // A valid token reaches the upstream with the user.
    let valid = provider.token().subject("alice").sign();
    let reply = get("/orders", Some(&valid));
    assert_eq!((reply.status, reply.body.as_str()), (200, "upstream saw alice"), "{reply:?}");

    // A key rotation is followed with one key set request (before the forged token below:
    // its failed signature starts the kid-miss cooldown, inside which unknown kids wait).
    let before = provider.requests(Endpoint::Jwks);
    provider.rotate_keys(Rotation::Replace);
    let rotated = provider.token().subject("carol").sign();
    for _ in 0..3 {
        assert_eq!(get("/orders", Some(&rotated)).body, "upstream saw carol");
    }
    assert_eq!(provider.requests(Endpoint::Jwks) - before, 1);

    // Missing, expired, forged, wrong-audience tokens: 401 with the challenge, no upstream.
    let missing = get("/orders", None);
    assert_eq!(missing.status, 401);
    assert_eq!(missing.header("www-authenticate"), Some(r#"Bearer realm="api""#));
    let token = provider.token();
    for (bad, what) in [
        (token.clone().expired().sign(), "expired"),
        (token.clone().tampered_signature(), "forged"),
        (token.clone().audience("https://other.example").sign(), "wrong audience"),
    ] {
        let reply = get("/orders", Some(&bad));
        assert_eq!(reply.status, 401, "{what}: {reply:?}");
        let challenge = reply.header("www-authenticate").unwrap_or_default();
        assert!(challenge.contains(r#"error="invalid_token""#), "{what}: {challenge}");
        assert!(!reply.body.contains("upstream saw"), "{what} reached the upstream");
    }

    // A route that needs a scope the token lacks: 403.
    let forbidden = get("/admin/users", Some(&rotated));
    assert_eq!(forbidden.status, 403, "{forbidden:?}");
    let admin = provider.token().subject("root").claim("scope", "admin").sign();
    assert_eq!(get("/admin/users", Some(&admin)).body, "upstream saw root");

    // The provider stopped, keys cached: valid tokens still pass (a new one: no cache hit).
    provider.shutdown();
    until("the provider is down", Duration::from_secs(30), || {
        std::net::TcpStream::connect(provider.addr()).is_err()
    });
    let after = provider.token().subject("dave").sign();
    assert_eq!(get("/orders", Some(&after)).body, "upstream saw dave");

    // A sidecar started while the provider is down: not ready, and nginx answers 503.
    let down = Sidecar::start(&[
        "--issuer",
        provider.issuer(),
        "--audience",
        provider.default_audience(),
        "--allow-http",
    ]);
    assert_eq!(down.get("/readyz", &[]).status, 503);
    let nginx_down = start_nginx(&nginx_binary().unwrap(), &down.addr, &upstream);
    let reply = request(&nginx_down.addr, "GET", "/orders", &[("Authorization", &format!("Bearer {after}"))]);
    assert_eq!(reply.status, 503, "{reply:?}");
    let _ = std::fs::remove_file(config);
}

#[test]
fn traefik_and_envoy_snippets_match_what_the_sidecar_does() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let provider = runtime.block_on(TestProvider::start()).unwrap();
    let sidecar = Sidecar::start(&[
        "--issuer",
        provider.issuer(),
        "--audience",
        provider.default_audience(),
        "--allow-http",
    ]);
    let token =
        format!("Bearer {}", provider.token().subject("erin").claim("email", "erin@example.com").sign());

    // Traefik: the address's path is the check endpoint; every header it forwards is one the
    // sidecar sets (those the token has).
    let traefik = readme_snippet("traefik");
    let address = traefik.lines().find_map(|l| l.trim().strip_prefix("address: ")).unwrap().trim_matches('"');
    let path = address.strip_prefix("http://127.0.0.1:9401").unwrap();
    let reply = sidecar.get(
        path,
        &[
            ("Authorization", &token),
            ("X-Forwarded-Method", "GET"),
            ("X-Forwarded-Uri", "/x"),
            ("X-Forwarded-Proto", "https"),
            ("X-Forwarded-Host", "api.example"),
        ],
    );
    assert_eq!(reply.status, 200);
    let forwarded: Vec<&str> = traefik.lines().filter_map(|l| l.trim().strip_prefix("- ")).collect();
    assert!(forwarded.len() >= 4);
    for header in ["X-Auth-Request-User", "X-Auth-Request-Email", "X-Auth-Request-Client-Id"] {
        assert!(forwarded.contains(&header), "{header} not forwarded by the snippet");
        assert!(reply.header(header).is_some(), "{header} not set by the sidecar");
    }

    // Envoy: path_prefix + the original path; the headers let upstream match the prefix.
    let envoy = readme_snippet("envoy");
    let prefix = envoy.lines().find_map(|l| l.trim().strip_prefix("path_prefix: ")).unwrap();
    let pattern = envoy.lines().find_map(|l| l.trim().strip_prefix("- prefix: ")).unwrap();
    let reply = request(&sidecar.addr, "GET", &format!("{prefix}/orders/1"), &[("Authorization", &token)]);
    assert_eq!(reply.status, 200);
    let identity: Vec<&(String, String)> =
        reply.headers.iter().filter(|(n, _)| n.starts_with(pattern)).collect();
    assert!(identity.iter().any(|(n, v)| n == "x-auth-request-user" && v == "erin"), "{identity:?}");
    let refused = request(&sidecar.addr, "GET", &format!("{prefix}/orders/1"), &[]);
    assert_eq!(refused.status, 401);
}
