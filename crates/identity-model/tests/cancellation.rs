//! Callers are dropped at any `.await` (client disconnects, proxy timeouts, `select!`): no
//! state may depend on a future finishing. Paused tokio time and an in-process provider whose
//! requests can be held: the leader of a fetch is aborted or times out mid-request, mid-probe,
//! and the next caller must fetch (or take the running fetch's result) and succeed, with no
//! `kid` remembered missing by mistake.

#![allow(clippy::unwrap_used)]

mod support;

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use identity_model::transport::{BoxFuture, HttpRequest, HttpResponse, HttpTransport, TransportError};
use identity_model::{
    Algorithm, CircuitConfig, Client, DiscoveryPolicy, Endpoints, ErrorKind, FormRequest, HttpConfig,
    SigningKey, TokenClient,
};
use support::*;

fn hits(provider: &Provider) -> (usize, usize) {
    (provider.discovery_hits.load(Ordering::SeqCst), provider.jwks_hits.load(Ordering::SeqCst))
}

#[tokio::test(start_paused = true)]
async fn an_aborted_half_open_probe_does_not_leave_the_circuit_probing() {
    let (provider, key) = setup();
    *provider.down.lock().unwrap() = true;
    let authority = authority(&provider);
    let good = token(&key);
    // Two failed cold starts (3 + 2 attempts) open the circuit for 30 s.
    assert!(authority.validate(&good).await.is_err());
    tokio::time::advance(Duration::from_millis(1500)).await;
    assert!(authority.validate(&good).await.is_err());
    assert_eq!(authority.stats().circuit_opens.load(Ordering::Relaxed), 1);
    // The provider recovers; the half-open probe is held in flight and its caller aborted.
    *provider.down.lock().unwrap() = false;
    let open = hold(&provider);
    tokio::time::advance(Duration::from_secs(30)).await;
    let leader = {
        let (authority, good) = (authority.clone(), good.clone());
        tokio::spawn(async move { authority.validate(&good).await.map(|_| ()) })
    };
    until(|| hits(&provider).0 == 6, 1000, "the probe is sent").await;
    leader.abort();
    assert!(leader.await.unwrap_err().is_cancelled());
    // A second caller gives up on its own deadline while the probe is out.
    let impatient = tokio::time::timeout(Duration::from_millis(10), authority.validate(&good)).await;
    assert!(impatient.is_err(), "still waiting for the held probe");
    open.send(true).unwrap();
    // The probe was never cancelled: it lands, closes the circuit, and the next caller succeeds.
    authority.validate(&good).await.unwrap();
    assert_eq!(hits(&provider), (6, 1), "one probe, one key set request; nothing sent twice");
    assert!(authority.validate(&good).await.is_ok());
}

#[tokio::test(start_paused = true)]
async fn a_dropped_rotation_leader_does_not_get_the_new_kid_remembered_missing() {
    let (provider, old) = setup();
    let authority = authority(&provider);
    authority.validate(&token(&old)).await.unwrap();
    let new = SigningKey::generate(Algorithm::ES256).unwrap();
    provider.publish(&[&new, &old]);
    let open = hold(&provider);
    let leader = {
        let (authority, t) = (authority.clone(), token(&new));
        tokio::spawn(async move { authority.validate(&t).await.map(|_| ()) })
    };
    until(|| hits(&provider).1 == 2, 1000, "the kid-miss refetch is sent").await;
    leader.abort();
    assert!(leader.await.unwrap_err().is_cancelled());
    // Within the cooldown, a caller that gives up while the refetch is held changes nothing.
    let impatient = tokio::time::timeout(Duration::from_millis(10), authority.validate(&token(&new))).await;
    assert!(impatient.is_err());
    assert!(!authority.is_known_missing(new.kid().unwrap()));
    open.send(true).unwrap();
    authority.validate(&token(&new)).await.unwrap();
    assert_eq!(hits(&provider).1, 2, "the aborted leader's refetch served everyone");
    assert!(!authority.is_known_missing(new.kid().unwrap()));
}

#[tokio::test(start_paused = true)]
async fn a_transport_that_never_answers_times_out_and_the_next_caller_recovers() {
    let (provider, old) = setup();
    let authority = authority(&provider);
    authority.validate(&token(&old)).await.unwrap();
    let new = SigningKey::generate(Algorithm::ES256).unwrap();
    provider.publish(&[&new, &old]);
    let open = hold(&provider); // never opened until the timeout has fired
    let leader = {
        let (authority, t) = (authority.clone(), token(&new));
        tokio::spawn(async move { authority.validate(&t).await })
    };
    until(|| hits(&provider).1 == 2, 1000, "the kid-miss refetch is sent").await;
    // The fetch loop's own timeout (30 s) ends the silent request; the caller gets
    // keys_unavailable (the provider's fault, not the token's), caused by the timed-out
    // refresh, and nothing is remembered missing.
    let e = leader.await.unwrap().unwrap_err();
    assert_eq!(e.kind(), ErrorKind::KeysUnavailable, "{e}");
    let mut cause = std::error::Error::source(&e);
    let mut timed_out = false;
    while let Some(c) = cause {
        timed_out |= c.downcast_ref::<identity_model::Error>().is_some_and(|e| e.is_timeout());
        cause = c.source();
    }
    assert!(timed_out, "the timed-out refresh is in the sources of {e}");
    assert!(!authority.is_known_missing(new.kid().unwrap()));
    // Unknown kids during the failure backoff are refused at once, without a request (the
    // provider's fault: keys_unavailable).
    let before = tokio::time::Instant::now();
    assert_eq!(authority.validate(&token(&new)).await.unwrap_err().kind(), ErrorKind::KeysUnavailable);
    assert_eq!((tokio::time::Instant::now(), hits(&provider).1), (before, 2));
    // The provider answers again; after the cooldown the next caller fetches and succeeds.
    open.send(true).unwrap();
    tokio::time::advance(Duration::from_secs(5)).await;
    authority.validate(&token(&new)).await.unwrap();
    assert_eq!(hits(&provider).1, 3);
}

/// A token endpoint: answers from a script (503s), holds requests while gated, then issues.
#[derive(Debug, Default)]
struct TokenEndpoint {
    script: Mutex<VecDeque<u16>>,
    gate: Mutex<Option<tokio::sync::watch::Receiver<bool>>>,
    hits: AtomicUsize,
}

impl HttpTransport for TokenEndpoint {
    fn get(&self, request: HttpRequest) -> BoxFuture<'_, Result<HttpResponse, TransportError>> {
        Box::pin(async move {
            Err(TransportError {
                message: format!("no GET here: {}", request.url),
                timeout: false,
                source: None,
            })
        })
    }

    fn send(&self, _: FormRequest, _: usize) -> BoxFuture<'_, Result<HttpResponse, TransportError>> {
        Box::pin(async move {
            self.hits.fetch_add(1, Ordering::SeqCst);
            let gate = self.gate.lock().unwrap().clone();
            if let Some(mut gate) = gate {
                let _ = gate.wait_for(|open| *open).await;
            }
            let status = self.script.lock().unwrap().pop_front().unwrap_or(200);
            let body = if status == 200 {
                r#"{"access_token":"at","token_type":"Bearer","expires_in":300}"#
            } else {
                r#"{"error":"temporarily_unavailable"}"#
            };
            Ok(HttpResponse {
                status,
                content_type: Some("application/json".into()),
                body: body.as_bytes().to_vec(),
                ..HttpResponse::default()
            })
        })
    }
}

#[tokio::test(start_paused = true)]
async fn a_dropped_token_request_releases_the_half_open_probe() {
    let endpoint = Arc::new(TokenEndpoint::default());
    endpoint.script.lock().unwrap().extend([503, 503]);
    let config = HttpConfig { retry_max_attempts: 1, ..HttpConfig::default() };
    let circuit = CircuitConfig { failure_threshold: 2, open_for: Duration::from_secs(30) };
    let client = TokenClient::builder(Client::with_secret("svc", "secret"))
        .endpoints(Endpoints {
            issuer: Some(ISS.into()),
            token: Some(format!("{ISS}/token")),
            ..Endpoints::default()
        })
        .policy(DiscoveryPolicy::default())
        .transport(Arc::clone(&endpoint) as Arc<dyn HttpTransport>)
        .config(config)
        .circuit(circuit)
        .build()
        .unwrap();
    for _ in 0..2 {
        assert_eq!(client.client_credentials(&[], &[]).await.unwrap_err().kind(), ErrorKind::OAuthError);
    }
    let open = client.client_credentials(&[], &[]).await.unwrap_err();
    assert!(open.message().contains("circuit open"), "{open}");
    assert_eq!(endpoint.hits.load(Ordering::SeqCst), 2, "nothing sent while open");
    // Half-open: the probe's caller gives up mid-request (its future is dropped).
    tokio::time::advance(Duration::from_secs(30)).await;
    let (gate_open, gate) = tokio::sync::watch::channel(false);
    *endpoint.gate.lock().unwrap() = Some(gate);
    let dropped = tokio::time::timeout(Duration::from_secs(1), client.client_credentials(&[], &[])).await;
    assert!(dropped.is_err());
    assert_eq!(endpoint.hits.load(Ordering::SeqCst), 3);
    // The probe was released with it: the next caller probes, and the circuit closes.
    gate_open.send(true).unwrap();
    let tokens = client.client_credentials(&[], &[]).await.unwrap();
    assert_eq!(tokens.access_token.expose(), "at");
    assert_eq!(endpoint.hits.load(Ordering::SeqCst), 4);
}

#[tokio::test(start_paused = true)]
async fn an_aborted_ensure_fresh_keys_leaves_its_fetch_to_finish_for_everyone() {
    let (provider, key) = setup();
    let authority = authority(&provider);
    let open = hold(&provider);
    let keeper = {
        let authority = authority.clone();
        tokio::spawn(async move { authority.ensure_fresh_keys().await })
    };
    until(|| hits(&provider).0 == 1, 1000, "the discovery request is sent").await;
    keeper.abort();
    assert!(keeper.await.unwrap_err().is_cancelled());
    assert!(!authority.key_status().usable);
    open.send(true).unwrap();
    // The fetch the aborted caller started lands; a validation joins or uses it.
    authority.validate(&token(&key)).await.unwrap();
    assert!(authority.key_status().usable);
    assert_eq!(hits(&provider), (1, 1), "one discovery and one key set request in all");
}
