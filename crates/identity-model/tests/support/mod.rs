//! A counting, scriptable in-process provider and helpers shared by the Authority tests.

#![allow(dead_code, unreachable_pub, clippy::unwrap_used)]

pub mod testkit;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use identity_model::transport::{BoxFuture, HttpRequest, HttpResponse, HttpTransport, TransportError};
use identity_model::{Algorithm, Authority, DiscoveryPolicy, ErrorKind, HttpConfig, SigningKey, Validation};
use serde_json::{Value, json};
use tokio::task::JoinSet;

pub const ISS: &str = "https://issuer.example";

#[derive(Debug, Default)]
pub struct Provider {
    pub keys: Mutex<Vec<Value>>,
    pub delay: Mutex<Duration>,
    pub down: Mutex<bool>,
    /// The issuer it serves, when not `ISS`.
    pub issuer: Mutex<Option<String>>,
    /// Statuses (with Retry-After) to answer before behaving normally.
    pub script: Mutex<std::collections::VecDeque<(u16, Option<&'static str>)>>,
    pub discovery_hits: AtomicUsize,
    pub jwks_hits: AtomicUsize,
    /// While set, every request waits (after being counted) until the value turns `true`.
    pub gate: Mutex<Option<tokio::sync::watch::Receiver<bool>>>,
}

impl Provider {
    pub fn publish(&self, keys: &[&SigningKey]) {
        *self.keys.lock().unwrap() = keys.iter().map(|k| Value::Object(k.verification_jwk())).collect();
    }
}

impl HttpTransport for Provider {
    fn get(&self, request: HttpRequest) -> BoxFuture<'_, Result<HttpResponse, TransportError>> {
        Box::pin(async move {
            let delay = *self.delay.lock().unwrap();
            let is_metadata = request.url.contains("/.well-known/");
            if is_metadata {
                self.discovery_hits.fetch_add(1, Ordering::SeqCst);
            } else {
                self.jwks_hits.fetch_add(1, Ordering::SeqCst);
            }
            let gate = self.gate.lock().unwrap().clone();
            if let Some(mut gate) = gate {
                let _ = gate.wait_for(|open| *open).await;
            }
            tokio::time::sleep(delay).await;
            let scripted = self.script.lock().unwrap().pop_front();
            if let Some((status, retry_after)) = scripted {
                return Ok(HttpResponse {
                    status,
                    retry_after: retry_after.map(str::to_owned),
                    ..HttpResponse::default()
                });
            }
            if *self.down.lock().unwrap() {
                return Err(TransportError {
                    message: "connection refused".into(),
                    timeout: false,
                    source: None,
                });
            }
            let body = if is_metadata {
                let issuer = self.issuer.lock().unwrap().clone().unwrap_or_else(|| ISS.to_owned());
                json!({"issuer": issuer, "jwks_uri": format!("{issuer}/jwks")})
            } else {
                json!({"keys": *self.keys.lock().unwrap()})
            };
            Ok(HttpResponse {
                status: 200,
                content_type: Some("application/json".into()),
                body: body.to_string().into_bytes(),
                ..HttpResponse::default()
            })
        })
    }
}

pub fn authority(provider: &Arc<Provider>) -> Authority {
    Authority::builder(ISS)
        .rules(Validation::new(ISS).audience("api"))
        .policy(DiscoveryPolicy::default().resource_server_fields())
        .config(HttpConfig::default())
        .transport(Arc::clone(provider) as Arc<dyn HttpTransport>)
        .build()
        .unwrap()
}

pub fn token(key: &SigningKey) -> String {
    token_with_kid(key, key.kid().unwrap())
}

pub fn token_with_kid(key: &SigningKey, kid: &str) -> String {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let mut header = serde_json::Map::new();
    header.insert("kid".into(), kid.into());
    header.insert("typ".into(), "at+jwt".into());
    let claims = json!({"iss": ISS, "aud": "api", "sub": "s", "exp": now + 86_400 * 3});
    key.sign_compact(header, claims.to_string().as_bytes()).unwrap()
}

pub async fn validate_all(authority: &Authority, tokens: Vec<String>) -> Vec<Result<(), ErrorKind>> {
    let mut set = JoinSet::new();
    for token in tokens {
        let authority = authority.clone();
        set.spawn(async move { authority.validate(&token).await.map(|_| ()).map_err(|e| e.kind()) });
    }
    set.join_all().await
}

pub fn setup() -> (Arc<Provider>, SigningKey) {
    let key = SigningKey::generate(Algorithm::ES256).unwrap();
    let provider = Arc::new(Provider::default());
    provider.publish(&[&key]);
    *provider.delay.lock().unwrap() = Duration::from_millis(50);
    (provider, key)
}

/// Whether a validation failed because keys could not be obtained (the first caller sees the
/// cause, callers inside the failure backoff or an open circuit see `keys_unavailable`).
/// The kinds of `error`'s chain of sources that are this library's errors, outermost first
/// (the error itself included).
pub fn kinds(error: &identity_model::Error) -> Vec<ErrorKind> {
    let mut kinds = vec![error.kind()];
    let mut next = std::error::Error::source(error);
    while let Some(source) = next {
        if let Some(e) = source.downcast_ref::<identity_model::Error>() {
            kinds.push(e.kind());
        }
        next = source.source();
    }
    kinds
}

/// Whether `error` is the provider's failure as validation reports it: `keys_unavailable`,
/// with `cause` somewhere in its sources.
pub fn unavailable_because(error: &identity_model::Error, cause: ErrorKind) -> bool {
    let kinds = kinds(error);
    kinds[0] == ErrorKind::KeysUnavailable && kinds.contains(&cause)
}

pub fn unobtainable(result: &Result<(), ErrorKind>) -> bool {
    matches!(result, Err(ErrorKind::KeysUnavailable | ErrorKind::TransportError | ErrorKind::HttpStatus))
}

/// Holds every request to `provider` until the returned sender sends `true`.
pub fn hold(provider: &Provider) -> tokio::sync::watch::Sender<bool> {
    let (open, gate) = tokio::sync::watch::channel(false);
    *provider.gate.lock().unwrap() = Some(gate);
    open
}

/// Yields until `condition` holds; panics after `rounds` yields (paused-time tests: no clock).
pub async fn until(mut condition: impl FnMut() -> bool, rounds: usize, what: &str) {
    for _ in 0..rounds {
        if condition() {
            return;
        }
        tokio::task::yield_now().await;
    }
    panic!("{what}: not reached after {rounds} yields");
}
