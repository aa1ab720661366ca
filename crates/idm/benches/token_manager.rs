//! TokenManager: the cached path (a hit: one atomic load and an Arc clone), and 10,000
//! concurrent callers on an empty cache against a token endpoint answering in 50 ms (one
//! request; everyone served when it returns).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use identity_model::transport::{BoxFuture, HttpRequest, HttpResponse, HttpTransport, TransportError};
use identity_model::{Client, Endpoints, FormRequest, TokenClient, TokenManager};
use tokio::task::JoinSet;

const CALLERS: usize = 10_000;
const PROVIDER_DELAY: Duration = Duration::from_millis(50);

#[derive(Debug, Default)]
struct Endpoint {
    requests: AtomicU64,
}

impl HttpTransport for Endpoint {
    fn get(&self, _: HttpRequest) -> BoxFuture<'_, Result<HttpResponse, TransportError>> {
        Box::pin(async {
            Err(TransportError { message: "no GET here".into(), timeout: false, source: None })
        })
    }

    fn send(&self, _: FormRequest, _: usize) -> BoxFuture<'_, Result<HttpResponse, TransportError>> {
        Box::pin(async move {
            let n = self.requests.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(PROVIDER_DELAY).await;
            Ok(HttpResponse {
                status: 200,
                content_type: Some("application/json".into()),
                body: format!(r#"{{"access_token":"t{n}","token_type":"Bearer","expires_in":3600}}"#)
                    .into_bytes(),
                ..HttpResponse::default()
            })
        })
    }
}

fn manager() -> (Arc<Endpoint>, TokenManager) {
    let endpoint = Arc::new(Endpoint::default());
    let client = TokenClient::builder(Client::with_secret("svc", "secret"))
        .endpoints(Endpoints {
            issuer: Some("https://op.example".into()),
            token: Some("https://op.example/token".into()),
            ..Endpoints::default()
        })
        .transport(endpoint.clone())
        .build()
        .expect("client");
    (endpoint, TokenManager::new(client, &["api:read"], &[]))
}

fn bench(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    let (_, cached) = manager();
    runtime.block_on(cached.get()).expect("first token");
    c.bench_function("token_manager_cached_get", |b| {
        b.iter(|| runtime.block_on(cached.get()).expect("token"));
    });
    let mut group = c.benchmark_group("token_manager_10000_callers_50ms_provider");
    group.sample_size(10);
    group.bench_function("cold", |b| {
        b.iter_custom(|iters| {
            (0..iters)
                .map(|_| {
                    let (endpoint, manager) = manager();
                    let elapsed = runtime.block_on(async {
                        let start = Instant::now();
                        let mut set = JoinSet::new();
                        for _ in 0..CALLERS {
                            let manager = manager.clone();
                            set.spawn(async move { manager.get().await.is_ok() });
                        }
                        assert!(set.join_all().await.into_iter().all(|ok| ok));
                        start.elapsed()
                    });
                    assert_eq!(endpoint.requests.load(Ordering::SeqCst), 1);
                    elapsed
                })
                .sum()
        })
    });
    group.finish();
}

#[allow(missing_docs)]
mod harness {
    use super::*;
    criterion_group!(benches, bench);
}

criterion_main!(harness::benches);
