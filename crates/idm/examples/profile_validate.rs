//! Runs N full validations of one algorithm's benchmark token, for profilers:
//! `valgrind --tool=callgrind target/release/examples/profile_validate HS256 100000 [facade]`.

use identity_model::Algorithm;

fn main() {
    let mut args = std::env::args().skip(1);
    let alg: Algorithm = args.next().unwrap_or_else(|| "HS256".into()).parse().expect("algorithm name");
    let n: u64 = args.next().map_or(100_000, |n| n.parse().expect("count"));
    let case = idm::speed::case(alg).expect("benchmark case");
    if args.next().as_deref() == Some("facade") {
        let facade = idm::speed::facade(&case).expect("façade case");
        let through = (0..n).filter(|_| facade.validate(&case.token).is_ok()).count();
        println!("{alg}: {through} validations through the Authority");
    }
    let valid = (0..n).filter(|_| case.validate()).count();
    let verified = (0..n).filter(|_| case.verify()).count();
    println!("{alg}: {valid} validations, {verified} raw verifications");
}
