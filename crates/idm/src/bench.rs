//! `idm bench`: like `openssl speed`, measures in one run, per algorithm, a full validation and
//! a raw signature verification on a key prepared once, and their ratio.

use std::process::ExitCode;
use std::time::Duration;

use clap::Args as ClapArgs;
use identity_model::Algorithm;
use idm::speed::{case, dpop_case, measure, measure_dpop};
use serde_json::Value;

#[derive(Debug, ClapArgs)]
pub(crate) struct Args {
    /// Algorithm to measure (repeatable; default: all).
    #[arg(long = "alg", value_parser = crate::validate::parse_alg)]
    algs: Vec<Algorithm>,
    /// Print a JSON array of {"alg", "validate_ns", "verify_ns", "ratio"}.
    #[arg(long)]
    json: bool,
    /// Rounds per algorithm; the median round counts.
    #[arg(long, default_value_t = 9)]
    rounds: usize,
    /// Target time of one timed batch, in milliseconds.
    #[arg(long, default_value_t = 25)]
    batch_ms: u64,
    /// Add the DPoP row (also there when no --alg is given): an RS256 access token bound to
    /// an ES256 DPoP key, token validation plus proof verification and binding, against the
    /// raw verification of both signatures. Its JSON row is {"alg": "DPoP", "token_alg",
    /// "proof_alg", "validate_ns", "verify_ns", "ratio"}.
    #[arg(long)]
    dpop: bool,
}

pub(crate) fn run(args: Args) -> ExitCode {
    let dpop = args.dpop || args.algs.is_empty();
    let algs = if args.algs.is_empty() { Algorithm::ALL.to_vec() } else { args.algs };
    let batch = Duration::from_millis(args.batch_ms.max(1));
    let mut rows = Vec::new();
    if !args.json {
        println!("{:<8} {:>14} {:>14} {:>8}", "alg", "validate", "raw verify", "ratio");
    }
    for alg in algs {
        let case = match case(alg) {
            Ok(case) => case,
            Err(e) => {
                eprintln!("idm: bench {alg}: {e}");
                return ExitCode::FAILURE;
            }
        };
        let (validate_ns, verify_ns) = measure(&case, args.rounds, batch);
        let ratio = validate_ns / verify_ns;
        if !args.json {
            println!("{:<8} {:>11.0} ns {:>11.0} ns {:>8.3}", alg.as_str(), validate_ns, verify_ns, ratio);
        }
        // Members in the documented order: alg, validate_ns, verify_ns, ratio.
        rows.push(format!(
            "{{\"alg\":{},\"validate_ns\":{},\"verify_ns\":{},\"ratio\":{}}}",
            Value::from(alg.as_str()),
            Value::from((validate_ns * 10.0).round() / 10.0),
            Value::from((verify_ns * 10.0).round() / 10.0),
            Value::from((ratio * 1000.0).round() / 1000.0),
        ));
    }
    if dpop {
        let case = match dpop_case(Algorithm::RS256, Algorithm::ES256) {
            Ok(case) => case,
            Err(e) => {
                eprintln!("idm: bench DPoP: {e}");
                return ExitCode::FAILURE;
            }
        };
        let (validate_ns, verify_ns) = measure_dpop(&case, args.rounds, batch);
        let ratio = validate_ns / verify_ns;
        if !args.json {
            println!(
                "{:<8} {:>11.0} ns {:>11.0} ns {:>8.3}  (RS256 token + ES256 proof)",
                "DPoP", validate_ns, verify_ns, ratio
            );
        }
        rows.push(format!(
            "{{\"alg\":\"DPoP\",\"token_alg\":\"RS256\",\"proof_alg\":\"ES256\",\"validate_ns\":{},\"verify_ns\":{},\"ratio\":{}}}",
            Value::from((validate_ns * 10.0).round() / 10.0),
            Value::from((verify_ns * 10.0).round() / 10.0),
            Value::from((ratio * 1000.0).round() / 1000.0),
        ));
    }
    if args.json {
        println!("[{}]", rows.join(","));
    }
    ExitCode::SUCCESS
}
