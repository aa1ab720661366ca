//! Criterion benchmarks: per algorithm, a full validation and the raw prepared-key signature
//! verification in the same group, so their ratio is read from one run.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use identity_model::Algorithm;
use idm::speed;

fn validation(c: &mut Criterion) {
    for alg in Algorithm::ALL {
        let case = speed::case(alg).expect("benchmark case");
        let mut group = c.benchmark_group(alg.as_str());
        group.bench_function("validate", |b| b.iter(|| black_box(case.validate())));
        group.bench_function("raw_verify", |b| b.iter(|| black_box(case.verify())));
        if !alg.is_symmetric() {
            let facade = speed::facade(&case).expect("façade case");
            group.bench_function("authority", |b| b.iter(|| black_box(facade.validate(&case.token).is_ok())));
        }
        group.finish();
    }
}

#[allow(missing_docs)]
mod harness {
    use super::*;
    criterion_group!(benches, validation);
}
criterion_main!(harness::benches);
