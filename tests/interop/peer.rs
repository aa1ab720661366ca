//! Shared by the Rust interop tests (included with `#[path]`): where the npm peers live, and
//! whether they can run. Without node or the package a test skips loudly; under CI it fails.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// `tests/interop/`, from a crate two levels below the workspace root.
pub(crate) fn interop_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/interop")
}

/// Whether node runs and the npm `package` is installed in `tests/interop/node_modules`.
pub(crate) fn peer_available(package: &str, what: &str) -> bool {
    let node = Command::new("node").arg("--version").output().is_ok_and(|o| o.status.success());
    let installed = interop_dir().join("node_modules").join(package).join("package.json").is_file();
    if node && installed {
        return true;
    }
    let why = if node {
        "tests/interop/node_modules is missing (run npm ci there)"
    } else {
        "node is not installed"
    };
    assert!(std::env::var("CI").is_err(), "interop peer unavailable under CI: {why}");
    eprintln!("\n*** SKIPPED: {what}: {why} ***\n");
    false
}

/// panva's oidc-provider (`provider.mjs`), killed when dropped.
#[allow(dead_code)] // not every test binary starts one
pub(crate) struct OidcProvider {
    child: Child,
    pub(crate) issuer: String,
}

impl Drop for OidcProvider {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts the provider on `port` with the private JWK Set in `keys`.
#[allow(dead_code)]
pub(crate) fn start(port: u16, keys: &Path) -> OidcProvider {
    start_with(port, keys, None)
}

/// Starts the provider; `client_jwks` registers the private_key_jwt client with those keys.
#[allow(dead_code)]
pub(crate) fn start_with(port: u16, keys: &Path, client_jwks: Option<&Path>) -> OidcProvider {
    let mut child = Command::new("node")
        .arg(interop_dir().join("provider.mjs"))
        .arg(port.to_string())
        .arg(keys)
        .args(client_jwks)
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
    // Keep draining: oidc-provider logs notices to stdout, and a closed pipe would kill it.
    std::thread::spawn(move || lines.for_each(drop));
    OidcProvider { child, issuer }
}

/// Adds a new RS256 key (first) to the private JWK Set in `keys`; its kid.
#[allow(dead_code)]
pub(crate) fn add_key(keys: &Path) -> String {
    let out = Command::new("node").arg(interop_dir().join("keys.mjs")).arg(keys).output().unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}
