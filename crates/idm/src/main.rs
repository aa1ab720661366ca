//! `idm`: the identity-model command line.

mod bench;
mod decode;
mod demo;
mod discover;
mod dpop;
mod provider;
mod remote;
mod serve;
mod token;
mod validate;

use std::io::Read as _;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// OpenID Connect and OAuth 2.0 tokens from the command line.
#[derive(Debug, Parser)]
#[command(name = "idm", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Validate a JWT against a JWK Set file, or the issuer's keys through discovery. Exit 0: valid (claims JSON on stdout); 1: invalid
    /// ({"valid": false, "error": KIND, "message": ...}); 2: usage error; 3: keys could not be obtained.
    Validate(validate::Args),
    /// Show a token's header and payload WITHOUT verifying anything.
    Decode(decode::Args),
    /// Fetch and check an issuer's discovery document. Exit 3 when it cannot be obtained or is invalid.
    Discover(discover::DiscoverArgs),
    /// List an issuer's keys (kid, kty, alg, use, thumbprint). Exit 3 when they cannot be obtained.
    Jwks(discover::JwksArgs),
    /// Measure full validation against raw signature verification, per algorithm.
    Bench(bench::Args),
    /// Run an embedded OpenID provider and walk through discovery, a token, validation, key
    /// rotation and rejected tokens, with timings. Exit 0 when every step behaved as expected.
    Demo(demo::Args),
    /// Serve the embedded OpenID provider for development (Ctrl-C stops it).
    Provider(provider::Args),
    /// A forward-auth sidecar for one proxy (--proxy): nginx auth_request, Traefik forwardAuth
    /// or Caddy forward_auth (GET /auth), Envoy ext_authz (/ext-authz/...), with /healthz,
    /// /readyz and /metrics. Exit 0 after SIGTERM or Ctrl-C once checks in flight are answered
    /// (within --shutdown-timeout); 2: configuration problems (all listed).
    Serve(Box<serve::Args>),
    /// Get tokens (client credentials, refresh, exchange, device), introspect, revoke, userinfo.
    /// Exit 0: success; 1: the provider refused (the OAuth error as JSON with --json); 2: usage.
    Token(token::Args),
    /// DPoP (RFC 9449): `idm dpop key` prints a new private JWK, `idm dpop proof` a proof for
    /// one request.
    Dpop(dpop::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Validate(args) => validate::run(args),
        Command::Decode(args) => decode::run(args),
        Command::Discover(args) => discover::run_discover(args),
        Command::Jwks(args) => discover::run_jwks(args),
        Command::Bench(args) => bench::run(args),
        Command::Demo(args) => demo::run(args),
        Command::Provider(args) => provider::run(args),
        Command::Token(args) => token::run(args),
        Command::Serve(args) => serve::run(*args),
        Command::Dpop(args) => dpop::run(args),
    }
}

/// The token argument: itself, or standard input when it is `-`. When standard input cannot
/// be read, says so and gives the usage-error exit code.
fn read_token(arg: &str) -> Result<String, ExitCode> {
    if arg != "-" {
        return Ok(arg.trim().to_owned());
    }
    let mut input = String::new();
    match std::io::stdin().take(1024 * 1024).read_to_string(&mut input) {
        Ok(_) => Ok(input.trim().to_owned()),
        Err(e) => {
            eprintln!("idm: cannot read the token from standard input: {e}");
            Err(ExitCode::from(2))
        }
    }
}
