//! The conformance cases (py-identity-model's suite, vendored in identity-model-core) that need
//! an HTTP provider: the core runner lists them as deferred to the Authority, and this runner
//! executes exactly those ids, checking the list against the core runner's source.

#![allow(clippy::unwrap_used)] // tests fail loudly by design

mod support;

use std::collections::BTreeSet;
use std::sync::atomic::Ordering;
use std::time::Duration;

use identity_model::{Algorithm, ErrorKind, SigningKey};
use support::*;

const CORE_RUNNER: &str = include_str!("../../identity-model-core/tests/conformance.rs");

/// The ids the core runner defers with a note starting "Authority:".
fn deferred_to_authority() -> BTreeSet<String> {
    // Each note is the second member of a `("ID", "Authority: ...")` tuple, however rustfmt
    // lays it out: the id is the string literal just before the note.
    CORE_RUNNER
        .match_indices("\"Authority:")
        .filter_map(|(at, _)| CORE_RUNNER[..at].rsplit('"').nth(1).map(str::to_owned))
        .collect()
}

#[tokio::test(start_paused = true)]
async fn the_authority_executes_every_case_the_core_runner_defers_to_it() {
    let mut executed = BTreeSet::new();

    // JWKS-005 / DISC-004: hits within the TTL make no request.
    let (provider, key) = setup();
    let authority = authority(&provider);
    for _ in 0..5 {
        authority.validate(&token(&key)).await.unwrap();
    }
    assert_eq!(
        (provider.discovery_hits.load(Ordering::SeqCst), provider.jwks_hits.load(Ordering::SeqCst)),
        (1, 1)
    );
    executed.extend(["JWKS-005".to_owned(), "DISC-004".to_owned()]);

    // JWT-010 / JWKS-004: an unknown kid forces a refresh, then resolution is retried.
    let rotated = SigningKey::generate(Algorithm::ES256).unwrap();
    provider.publish(&[&rotated, &key]);
    authority.validate(&token(&rotated)).await.unwrap();
    assert_eq!(provider.jwks_hits.load(Ordering::SeqCst), 2);
    let stranger = SigningKey::generate(Algorithm::ES256).unwrap();
    tokio::time::advance(Duration::from_secs(6)).await;
    assert_eq!(authority.validate(&token(&stranger)).await.unwrap_err().kind(), ErrorKind::KeyNotFound);
    assert_eq!(provider.jwks_hits.load(Ordering::SeqCst), 3, "refreshed before failing");
    executed.extend(["JWT-010".to_owned(), "JWKS-004".to_owned()]);

    // JWKS-006: a signature failure on a cached key refreshes the set.
    tokio::time::advance(Duration::from_secs(6)).await;
    let rekeyed = SigningKey::generate(Algorithm::ES256).unwrap().with_kid(key.kid().unwrap());
    provider.publish(&[&rekeyed]);
    authority.validate(&token(&rekeyed)).await.unwrap();
    assert_eq!(provider.jwks_hits.load(Ordering::SeqCst), 4);
    executed.insert("JWKS-006".to_owned());

    // DISC-005: after the discovery TTL (1 h by default) a refresh fetches discovery again.
    tokio::time::advance(Duration::from_secs(3700)).await;
    let later = SigningKey::generate(Algorithm::ES256).unwrap();
    provider.publish(&[&later]);
    authority.validate(&token(&later)).await.unwrap();
    assert_eq!(provider.discovery_hits.load(Ordering::SeqCst), 2);
    executed.insert("DISC-005".to_owned());

    // DISC-006: HTTP errors surface with their status code.
    for status in [404u16, 500] {
        let (provider, key) = setup();
        provider.script.lock().unwrap().extend([(status, None); 3]);
        let err = support::authority(&provider).validate(&token(&key)).await.unwrap_err();
        // Through validation the provider's failure is keys_unavailable (503 at the layer),
        // with the HTTP error as its source and its status in the message.
        assert!(support::unavailable_because(&err, ErrorKind::HttpStatus), "{:?}", support::kinds(&err));
        assert!(err.message().contains(&format!("HTTP {status}")), "{err}");
    }
    executed.insert("DISC-006".to_owned());

    assert_eq!(
        executed,
        deferred_to_authority(),
        "executed here vs deferred to the Authority by the core runner"
    );
}
