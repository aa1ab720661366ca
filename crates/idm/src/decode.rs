//! `idm decode`: shows a token without verifying it.

use std::process::ExitCode;

use clap::Args as ClapArgs;
use identity_model::base64url;
use serde_json::{Value, json};

#[derive(Debug, ClapArgs)]
pub(crate) struct Args {
    /// The token, or `-` to read it from standard input.
    token: String,
    /// Print {"verified": false, "header": ..., "payload": ...} instead of text.
    #[arg(long)]
    json: bool,
}

const BANNER: &str = "UNVERIFIED: the signature has NOT been checked and the claims are NOT validated";

fn part(encoded: &str, what: &str) -> Result<Value, String> {
    let bytes =
        base64url::decode(encoded.as_bytes()).map_err(|e| format!("the {what} is not base64url: {e}"))?;
    Ok(serde_json::from_slice(&bytes)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned())))
}

pub(crate) fn run(args: Args) -> ExitCode {
    let token = match crate::read_token(&args.token) {
        Ok(token) => token,
        Err(code) => return code,
    };
    let parts = match identity_model::jws::compact_segments(&token) {
        Ok(parts) => parts,
        Err(e) => {
            eprintln!("idm: not a compact JWS (3 parts) or JWE (5 parts): {}", e.message());
            return ExitCode::from(1);
        }
    };
    let header = match part(parts[0], "header") {
        Ok(header) => header,
        Err(message) => {
            eprintln!("idm: {message}");
            return ExitCode::from(1);
        }
    };
    let payload = if parts.len() == 5 {
        Value::String("(encrypted: JWE payloads cannot be shown)".into())
    } else {
        match part(parts[1], "payload") {
            Ok(payload) => payload,
            Err(message) => {
                eprintln!("idm: {message}");
                return ExitCode::from(1);
            }
        }
    };
    if args.json {
        println!("{}", json!({"verified": false, "header": header, "payload": payload}));
    } else {
        let pretty = |v: &Value| serde_json::to_string_pretty(v).unwrap_or_default();
        println!("=== {BANNER} ===");
        println!("Header:\n{}", pretty(&header));
        println!("Payload:\n{}", pretty(&payload));
        println!("=== {BANNER} ===");
    }
    ExitCode::SUCCESS
}
