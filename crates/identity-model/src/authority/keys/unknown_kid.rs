//! What a token the cached keys cannot judge leads to: a cold start or keys past the allowed
//! staleness fetch (or fail closed); an unknown `kid` (or a signature failing on a cached key)
//! joins a refresh in flight, looks at keys newer than the caller saw, asks the memory of kids
//! proven missing, refuses at once during an outage or a running cooldown, and otherwise
//! refetches once. Validation and the token client's ID-token checks both come here.
//!
//! The caller says how keys judge its token with `verify`: an error of kind `key_not_found` or
//! `invalid_signature` means "not signed by these keys"; any other error settles the token.

use std::sync::Arc;

use identity_model_core::{Error, ErrorKind, KeySet};
use tokio::time::Instant;

use super::refresh::Reason;
use super::snapshot::Snapshot;
use super::{KeySource, unavailable, unobtainable};
use crate::flight::shared;
use crate::telemetry::tally;

/// Why the cached keys could not judge a token.
#[derive(Debug)]
pub(crate) enum Lack {
    /// No keys yet.
    Cold,
    /// The cached keys are older than the allowed staleness.
    TooStale(Arc<Snapshot>),
    /// The cached keys lack the token's `kid`, or its signature fails on them (`miss`).
    UnknownKey { seen: Arc<Snapshot>, miss: Error },
}

/// Whether `error` says the keys did not sign the token (another key set may).
pub(crate) fn is_miss(error: &Error) -> bool {
    matches!(error.kind(), ErrorKind::KeyNotFound | ErrorKind::InvalidSignature)
}

impl KeySource {
    /// Judges a token with the cached keys, or, when they cannot, as [`KeySource::obtain`]
    /// decides: for callers outside the hot path (the token client's ID-token checks).
    pub(crate) async fn verify<T>(
        self: &Arc<Self>,
        kid: Option<&str>,
        verify: impl Fn(&KeySet) -> Result<T, Error>,
    ) -> Result<T, Error> {
        let arrived = self.flights_started();
        let lack = match self.snapshot() {
            None => Lack::Cold,
            Some(snapshot) if Instant::now() > snapshot.stale_after => Lack::TooStale(snapshot),
            Some(snapshot) => match verify(&snapshot.keys) {
                Err(miss) if is_miss(&miss) => Lack::UnknownKey { seen: snapshot, miss },
                settled => return settled,
            },
        };
        self.obtain(lack, arrived, kid, verify).await
    }

    /// Gets the keys the cached ones lacked and judges the token (`kid`, checked by `verify`)
    /// with them. `arrived` is [`KeySource::flights_started`] read when the token arrived.
    /// Errors that are not the token's fault are `keys_unavailable` with the cause as source.
    pub(crate) async fn obtain<T>(
        self: &Arc<Self>,
        lack: Lack,
        arrived: u64,
        kid: Option<&str>,
        verify: impl Fn(&KeySet) -> Result<T, Error>,
    ) -> Result<T, Error> {
        match lack {
            Lack::Cold => {
                let (snapshot, seq) = self.refresh(Reason::Cold, None).await?;
                self.settle(kid, &snapshot, seq > arrived, None, &verify)
            }
            Lack::TooStale(seen) => {
                // Too old to trust: like a cold start, refresh now or fail closed.
                let (snapshot, seq) = match self.refresh(Reason::Stale, Some(seen.generation)).await {
                    Ok(done) if done.0.generation != seen.generation => done,
                    Ok(_) => {
                        return Err(unavailable("the last good keys are older than the allowed staleness"));
                    }
                    Err(e) => {
                        return Err(unavailable(format!(
                            "the last good keys are older than the allowed staleness ({})",
                            e.message()
                        ))
                        .with_source(e));
                    }
                };
                self.settle(kid, &snapshot, seq > arrived, None, &verify)
            }
            Lack::UnknownKey { seen, miss } => self.after_miss(kid, seen, miss, arrived, &verify).await,
        }
    }

    /// Judges with `snapshot`'s keys; an unknown `kid` is remembered missing when `proof` (the
    /// keys were fetched after the token arrived), and blamed on `cause` (a failed refresh)
    /// when there is one.
    fn settle<T>(
        &self,
        kid: Option<&str>,
        snapshot: &Snapshot,
        proof: bool,
        cause: Option<Error>,
        verify: &impl Fn(&KeySet) -> Result<T, Error>,
    ) -> Result<T, Error> {
        verify(&snapshot.keys).map_err(|e| {
            if e.kind() != ErrorKind::KeyNotFound {
                return e;
            }
            if let (Some(kid), true) = (kid, proof) {
                self.missing_kids.insert(kid, snapshot.generation, Instant::now());
            }
            match cause {
                Some(cause) => because(e, cause),
                None => e,
            }
        })
    }

    /// An unknown `kid` (or a failing signature) on the keys `seen`. In order: a refresh in
    /// flight (joined); keys newer than `seen`; the memory of kids proven missing; an outage
    /// or a running cooldown (refused at once); else one kid-miss refetch.
    async fn after_miss<T>(
        self: &Arc<Self>,
        kid: Option<&str>,
        seen: Arc<Snapshot>,
        miss: Error,
        arrived: u64,
        verify: &impl Fn(&KeySet) -> Result<T, Error>,
    ) -> Result<T, Error> {
        tally!(self, kid_misses);
        let mut seen = seen;
        let cooldown = self.cache.kid_miss_refresh_cooldown;
        // At most a few passes: a flight that starts or ends while this caller looks is
        // looked at again rather than taken for a running cooldown.
        let mut may_fetch = false;
        for _ in 0..3 {
            // A refresh in flight may bring the key: join it. Its keys prove the kid missing
            // only if it started after the token arrived.
            if let Some(ticket) = self.keys_flight.in_flight() {
                tally!(self, coalesced);
                let seq = ticket.seq;
                match ticket.outcome().await {
                    Ok(snapshot) if seq > arrived => return self.settle(kid, &snapshot, true, None, verify),
                    Ok(snapshot) => match verify(&snapshot.keys) {
                        Err(e) if is_miss(&e) => seen = snapshot,
                        settled => return settled,
                    },
                    Err(e) => return Err(because(miss, e)),
                }
            }
            // Keys newer than the caller saw (flights end after storing their keys, so with
            // none in flight any that ended are visible here).
            if let Some(current) = self.snapshot() {
                if current.generation != seen.generation {
                    match verify(&current.keys) {
                        Err(e) if is_miss(&e) => seen = current,
                        settled => return settled,
                    }
                }
            }
            if let Some(kid) = kid {
                if self.missing_kids.contains(kid, seen.generation, Instant::now(), cooldown) {
                    tally!(self, negative_kid_hits);
                    return Err(miss);
                }
            }
            if let Some(failure) = self.outage() {
                tally!(self, kid_miss_refusals);
                return Err(because(miss, failure));
            }
            if self.kid_miss_budget(Instant::now()) {
                may_fetch = true;
                break;
            }
            // The cooldown runs. If its refetch is (or was, a moment ago) in flight, look again.
            let moved = self.keys_flight.in_flight().is_some()
                || self.peek().as_ref().is_some_and(|s| s.generation != seen.generation);
            if !moved {
                break;
            }
        }
        if !may_fetch {
            tally!(self, kid_miss_refusals);
            return Err(miss);
        }
        match self.refresh(Reason::KidMiss, Some(seen.generation)).await {
            Ok((snapshot, seq)) => self.settle(kid, &snapshot, seq > arrived, None, verify),
            // The cached keys still judge the token; the refresh failure is the cause.
            Err(e) => self.settle(kid, &seen, false, Some(e), verify),
        }
    }

    /// Whether an unknown `kid` may start a refetch now (the cooldown since the last one passed).
    fn kid_miss_budget(&self, now: Instant) -> bool {
        let cooldown = self.cache.kid_miss_refresh_cooldown;
        let started = self.state().kid_miss_started;
        started.is_none_or(|at| now.saturating_duration_since(at) >= cooldown)
    }

    /// Why keys cannot be fetched right now, if they cannot: the last refresh failed within
    /// the backoff, or the key host's circuit is open.
    fn outage(&self) -> Option<Error> {
        if let Some(failure) = self.recent_failure(Instant::now()) {
            return Some(unobtainable(shared(&failure)));
        }
        let document = self.document.load();
        let jwks_uri = match self.keys_from() {
            super::KeysFrom::JwksUri(url) => url.as_str(),
            super::KeysFrom::Discovery => document.as_ref().and_then(|d| d.0.jwks_uri())?,
            super::KeysFrom::File(_) | super::KeysFrom::Inline(_) => return None,
        };
        self.fetcher
            .circuit_open(jwks_uri)
            .then(|| unavailable("the key set's host is failing: circuit open, no request sent"))
    }
}

/// `miss` (an unknown kid) that a refresh could not settle because the provider is failing:
/// the token may be signed by a key published since, so this is the provider's fault
/// (`keys_unavailable`, 503), never the token's; the refresh failure is the source.
fn because(miss: Error, cause: Error) -> Error {
    let message = format!("{} and the keys could not be refreshed: {}", miss.message(), cause.message());
    Error::new(ErrorKind::KeysUnavailable, message).with_source(cause)
}
