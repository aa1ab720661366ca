//! Shared by the Rust interop tests (included with `#[path]`): where the npm peers live, and
//! whether they can run. Without node or the package a test skips loudly; under CI it fails.

use std::path::PathBuf;
use std::process::Command;

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
