//! `idm dpop`: DPoP keys and proofs (RFC 9449).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args as ClapArgs, Subcommand};
use identity_model::{Algorithm, Clock as _, DpopKey, ProofRequest, SystemClock, UnixTime};
use serde_json::{Map, Value};

#[derive(Debug, ClapArgs)]
pub(crate) struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Print a new private DPoP key as a JWK (keep it secret). Exit 2: an algorithm that
    /// cannot sign proofs.
    Key {
        /// ES256 (default), ES384, ES512, EdDSA, PS256, PS384, PS512, RS256 or RS384.
        #[arg(long, default_value = "ES256", value_parser = crate::validate::parse_alg)]
        alg: Algorithm,
    },
    /// Print a DPoP proof for one request. Exit 2: the key file cannot be read or used.
    Proof {
        /// The private JWK file (from `idm dpop key`).
        #[arg(long, value_name = "JWK_FILE")]
        key: PathBuf,
        /// The request's HTTP method (htm).
        #[arg(long, value_name = "M")]
        method: String,
        /// The request URL (htu; query and fragment are left out).
        #[arg(long, value_name = "U")]
        url: String,
        /// The access token the request carries (adds ath).
        #[arg(long, value_name = "T")]
        token: Option<String>,
        /// The server's DPoP-Nonce.
        #[arg(long, value_name = "N")]
        nonce: Option<String>,
        /// Issue the proof as of this time (Unix seconds) instead of now.
        #[arg(long)]
        now: Option<i64>,
    },
}

fn usage(message: &str) -> ExitCode {
    eprintln!("idm dpop: {message}");
    ExitCode::from(2)
}

/// Reads a private JWK file as a DPoP key.
pub(crate) fn load_key(path: &std::path::Path) -> Result<DpopKey, String> {
    let text = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let jwk: Map<String, Value> =
        serde_json::from_slice(&text).map_err(|e| format!("{} is not a JSON object: {e}", path.display()))?;
    DpopKey::from_jwk(&jwk, None).map_err(|e| format!("{}: {}", path.display(), e.message()))
}

pub(crate) fn run(args: Args) -> ExitCode {
    match args.command {
        Command::Key { alg } => match DpopKey::generate(alg) {
            Err(e) => usage(e.message()),
            Ok(key) => match key.private_jwk() {
                Some(jwk) => {
                    println!("{}", Value::Object(jwk));
                    ExitCode::SUCCESS
                }
                None => usage(&format!("a {alg} key cannot be exported")),
            },
        },
        Command::Proof { key, method, url, token, nonce, now } => {
            let key = match load_key(&key) {
                Ok(key) => key,
                Err(message) => return usage(&message),
            };
            if identity_model::normalize_htu(&url).is_none() {
                return usage(&format!("--url {url:?} is not an absolute http(s) URL"));
            }
            let mut request = ProofRequest::new(&method, &url);
            if let Some(token) = &token {
                request = request.with_access_token(token);
            }
            if let Some(nonce) = &nonce {
                request = request.with_nonce(nonce);
            }
            let now = now.map_or_else(|| SystemClock.now(), UnixTime::from_secs);
            match key.proof(&request, now) {
                Ok(proof) => {
                    println!("{proof}");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("idm dpop: {e}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}
