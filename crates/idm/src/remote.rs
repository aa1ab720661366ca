//! What the commands that talk to an issuer share: the runtime, the authority, exit codes.

use std::process::ExitCode;

use identity_model::{Authority, DiscoveryPolicy, Error, ErrorKind, Fault, Settings};
use serde_json::Value;

/// Exit code when keys or metadata could not be obtained.
pub(crate) const EXIT_NO_KEYS: u8 = 3;

/// Runs a future on the command's one runtime (the library's runtime helper; the CLI is
/// otherwise synchronous).
pub(crate) fn block_on<F: std::future::Future>(future: F) -> Result<F::Output, ExitCode> {
    match identity_model::new_runtime(2) {
        Ok(runtime) => Ok(runtime.block_on(future)),
        Err(e) => {
            eprintln!("idm: {}", e.message());
            Err(ExitCode::FAILURE)
        }
    }
}

/// The policy for a command: strict, or HTTP allowed on loopback.
pub(crate) fn policy(allow_http: bool) -> DiscoveryPolicy {
    let policy = DiscoveryPolicy::default();
    if allow_http { policy.allow_http_on_loopback() } else { policy }
}

/// Settings from the environment (`HTTP_TIMEOUT`, `HTTP_RETRY_MAX_ATTEMPTS`, `JWKS_CACHE_TTL`,
/// ...). An invalid environment is a usage error: every problem is printed, exit 2.
pub(crate) fn config() -> Result<Settings, ExitCode> {
    Settings::from_env().map_err(|e| {
        for problem in &e.problems {
            eprintln!("idm: {}: {}", problem.variable, problem.reason);
        }
        ExitCode::from(2)
    })
}

/// An authority for `issuer` that only fetches (only `issuer` and `jwks_uri` required of its
/// metadata; it validates no token).
pub(crate) fn authority(issuer: &str, allow_http: bool, settings: Settings) -> Result<Authority, Error> {
    Authority::builder(issuer).policy(policy(allow_http).resource_server_fields()).settings(settings).build()
}

/// The exit code for an error, by whose fault it is ([`ErrorKind::fault`]): the token's 1,
/// the provider's or a shared store's 3, the configuration's 2.
pub(crate) fn exit_code(kind: ErrorKind) -> u8 {
    match kind.fault() {
        Fault::Token => 1,
        Fault::Provider | Fault::Store => EXIT_NO_KEYS,
        _ => 2,
    }
}

/// The provider's own reason behind `keys_unavailable` (the first library error among its
/// sources), or `error` itself.
pub(crate) fn reason(error: &Error) -> &Error {
    if error.kind() != ErrorKind::KeysUnavailable {
        return error;
    }
    let mut next = std::error::Error::source(error);
    while let Some(source) = next {
        if let Some(inner) = source.downcast_ref::<Error>() {
            return inner;
        }
        next = source.source();
    }
    error
}

/// Prints `{"error": KIND, "message": "..."}`, says it on stderr, and exits by the
/// error's fault ([`exit_code`]).
pub(crate) fn print_error(e: &Error) -> ExitCode {
    eprintln!("idm: {e}");
    println!("{{\"error\":{},\"message\":{}}}", Value::from(e.kind().as_str()), Value::from(e.message()));
    ExitCode::from(exit_code(e.kind()))
}
