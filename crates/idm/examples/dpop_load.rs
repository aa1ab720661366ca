//! For `scripts/bench-redis`: the testkit provider on a free port, one DPoP-bound access token,
//! and N distinct DPoP proofs for `GET https://api.example/orders` written to a file (one per
//! line, each with its own `jti`). Prints `issuer ISS`, `audience AUD` and `token TOKEN`, then
//! serves until standard input closes.
//!
//! `cargo run --release -p idm --example dpop_load -- PROOFS_FILE N`

#![allow(clippy::unwrap_used)] // a benchmark helper: fail loudly

use std::io::{BufRead, Write};

use identity_model::{Clock as _, DpopKey, ProofRequest, SystemClock};
use identity_model_testkit::TestProvider;

fn main() {
    let mut args = std::env::args().skip(1);
    let path = args.next().expect("PROOFS_FILE");
    let count: usize = args.next().map_or(200_000, |n| n.parse().expect("N"));
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let provider = runtime.block_on(TestProvider::start()).unwrap();
    let key = DpopKey::generate_default().unwrap();
    let token = provider
        .token()
        .subject("bench")
        .claim("cnf", serde_json::json!({"jkt": key.thumbprint()}))
        .expires_in(3600)
        .sign();
    let request = ProofRequest::new("GET", "https://api.example/orders").with_access_token(&token);
    let mut out = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
    let now = SystemClock.now();
    for _ in 0..count {
        writeln!(out, "{}", key.proof(&request, now).unwrap()).unwrap();
    }
    out.flush().unwrap();
    println!("issuer {}", provider.issuer());
    println!("audience {}", provider.default_audience());
    println!("token {token}");
    std::io::stdout().flush().unwrap();
    for _ in std::io::stdin().lock().lines() {}
}
