//! For `scripts/bench-serve`: the testkit provider on a free port, with N distinct RS256
//! access tokens written to a file (one per line). Prints `issuer ISS` and `audience AUD`,
//! then serves until standard input closes.
//!
//! `cargo run --release -p idm --example load_provider -- TOKENS_FILE N`

#![allow(clippy::unwrap_used)] // a benchmark helper: fail loudly

use std::io::{BufRead, Write};

use identity_model::Algorithm;
use identity_model_testkit::TestProvider;

fn main() {
    let mut args = std::env::args().skip(1);
    let path = args.next().expect("TOKENS_FILE");
    let count: usize = args.next().map_or(100_000, |n| n.parse().expect("N"));
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let provider = runtime.block_on(TestProvider::start()).unwrap();
    let key = provider.signing_key(Some(Algorithm::RS256));
    let mut out = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
    let builder = provider.token().key(key).expires_in(3600);
    for i in 0..count {
        writeln!(out, "{}", builder.clone().subject(&format!("user-{i}")).sign()).unwrap();
    }
    out.flush().unwrap();
    println!("issuer {}", provider.issuer());
    println!("audience {}", provider.default_audience());
    std::io::stdout().flush().unwrap();
    for _ in std::io::stdin().lock().lines() {}
}
