//! Authority latency with a provider that answers in 50 ms: a cold start with 1000 concurrent
//! validations (discovery then keys: ~100 ms expected, one fetch each), and a rotation burst of
//! 1000 concurrent tokens signed with a newly published key (~50 ms: one key set refetch).

use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use identity_model::{Algorithm, KeySet};
use idm::speed;
use serde_json::Value;
use tokio::task::JoinSet;

const CALLERS: usize = 1000;
const PROVIDER_DELAY: Duration = Duration::from_millis(50);

fn burst(runtime: &tokio::runtime::Runtime, authority: &identity_model::Authority, token: &str) -> Duration {
    runtime.block_on(async {
        let start = Instant::now();
        let mut set = JoinSet::new();
        for _ in 0..CALLERS {
            let (authority, token) = (authority.clone(), token.to_owned());
            set.spawn(async move { authority.validate(&token).await.is_ok() });
        }
        let valid = set.join_all().await.into_iter().filter(|ok| *ok).count();
        assert_eq!(valid, CALLERS);
        start.elapsed()
    })
}

fn latency(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    let old = speed::case(Algorithm::ES256).expect("case");
    let new = speed::case(Algorithm::ES256).expect("case");
    let both =
        KeySet::from_jwks([&new, &old].map(|case| Value::Object(case.keys.keys()[0].members().clone())));
    let mut group = c.benchmark_group("authority_1000_callers_50ms_provider");
    group.sample_size(10);
    group.bench_function("cold_start", |b| {
        b.iter_custom(|iters| {
            (0..iters)
                .map(|_| {
                    let (authority, _) = speed::authority(&old, PROVIDER_DELAY).expect("authority");
                    burst(&runtime, &authority, &old.token)
                })
                .sum()
        })
    });
    group.bench_function("rotation_burst", |b| {
        b.iter_custom(|iters| {
            (0..iters)
                .map(|_| {
                    let (authority, rotation) = speed::authority(&old, PROVIDER_DELAY).expect("authority");
                    burst(&runtime, &authority, &old.token);
                    rotation.rotate(&both);
                    burst(&runtime, &authority, &new.token)
                })
                .sum()
        })
    });
    group.finish();
}

#[allow(missing_docs)]
mod harness {
    use super::*;
    criterion_group!(benches, latency);
}
criterion_main!(harness::benches);
