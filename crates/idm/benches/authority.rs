//! Authority latency with a provider that answers in 50 ms: a cold start with 1000 concurrent
//! validations (discovery then keys: ~100 ms expected, one fetch each), and a rotation burst of
//! 1000 concurrent tokens signed with a newly published key (~50 ms: one key set refetch).

use std::sync::atomic::Ordering::Relaxed;
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
            set.spawn(async move { authority.validate(&token).await.map(|_| ()) });
        }
        let failed: Vec<_> = set.join_all().await.into_iter().filter_map(Result::err).collect();
        assert!(failed.is_empty(), "{} of {CALLERS} failed, first: {}", failed.len(), failed[0]);
        start.elapsed()
    })
}

/// The request counts the scenario must keep (not a speed assertion: a broken single flight).
fn requests(authority: &identity_model::Authority, discovery: u64, all: u64) {
    let stats = authority.stats();
    let counted = (stats.discovery_fetches.load(Relaxed), stats.requests.load(Relaxed));
    assert_eq!(counted, (discovery, all), "(discovery, all requests)");
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
                    let took = burst(&runtime, &authority, &old.token);
                    requests(&authority, 1, 2); // 1 discovery + 1 key set
                    took
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
                    let took = burst(&runtime, &authority, &new.token);
                    requests(&authority, 1, 3); // + 1 key set refetch
                    took
                })
                .sum()
        })
    });
    group.finish();
}

/// The validated-token cache: a repeated RS256 token answered by a hash lookup, on one thread
/// and on two threads at once (per-call wall time; halving means it scales).
fn token_cache_hit(c: &mut Criterion) {
    let case = speed::case(Algorithm::RS256).expect("case");
    let authority = speed::cached_facade(&case).expect("authority");
    let mut group = c.benchmark_group("token_cache_hit");
    group.bench_function("1_thread", |b| b.iter(|| authority.validate(&case.token).is_ok()));
    group.bench_function("2_threads", |b| {
        b.iter_custom(|iters| {
            let start = Instant::now();
            std::thread::scope(|scope| {
                for _ in 0..2 {
                    scope.spawn(|| {
                        for _ in 0..iters / 2 {
                            assert!(authority.validate(&case.token).is_ok());
                        }
                    });
                }
            });
            start.elapsed()
        })
    });
    group.finish();
    let stats = authority.as_async().token_cache_stats().expect("cache on");
    assert!(stats.hits.load(Relaxed) > 0 && stats.misses.load(Relaxed) <= 1, "every call a hit");
}

/// A flood of tokens with random `kid`s inside the kid-miss cooldown: each is refused at once
/// (no lock held across a fetch, no request). Per-token time, on the caller's thread.
fn unknown_kid_flood(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    let case = speed::case(Algorithm::ES256).expect("case");
    let attacker = identity_model::SigningKey::generate(Algorithm::ES256).expect("key");
    let cache = identity_model::CacheConfig {
        kid_miss_refresh_cooldown: Duration::from_secs(24 * 3600),
        ..identity_model::CacheConfig::default()
    };
    let (authority, _) = speed::authority_with(&case, PROVIDER_DELAY, cache).expect("authority");
    let claims: Value = serde_json::from_str(&format!(
        r#"{{"iss":"{}","aud":"https://api.example","exp":{}}}"#,
        speed::ISSUER,
        speed::NOW + 3600
    ))
    .expect("claims");
    let tokens: Vec<String> = (0..1024)
        .map(|i| {
            let mut header = serde_json::Map::new();
            header.insert("kid".into(), format!("random-{i}").into());
            attacker.sign_compact(header, claims.to_string().as_bytes()).expect("token")
        })
        .collect();
    runtime.block_on(async {
        authority.validate(&case.token).await.expect("warm");
        // The first unknown kid refetches once and starts the cooldown.
        assert!(authority.validate(&tokens[0]).await.is_err());
    });
    let before = authority.stats().requests.load(Relaxed);
    let mut i = 0;
    c.bench_function("unknown_kid_flood_in_cooldown", |b| {
        b.iter(|| {
            i = (i + 1) % tokens.len();
            runtime.block_on(authority.validate(&tokens[i])).is_err()
        })
    });
    assert_eq!(authority.stats().requests.load(Relaxed), before, "no request during the flood");
}

#[allow(missing_docs)]
mod harness {
    use super::*;
    criterion_group!(benches, latency, unknown_kid_flood, token_cache_hit);
}
criterion_main!(harness::benches);
