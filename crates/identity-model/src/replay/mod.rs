//! Replay records: a DPoP proof's `jti` (per proof key) and a back-channel logout token's
//! `jti` (per issuer) may be used once. [`ReplayStore`] is the seam (a shared store such as
//! Redis goes behind it for several instances); [`MemoryReplayStore`] is the in-process one.

mod memory;

use std::future::Future;
use std::pin::Pin;

use identity_model_core::{Error, UnixTime, VerifiedProof, sha256};

pub use memory::MemoryReplayStore;

/// What [`ReplayStore::insert_once`] returns.
pub type ReplayFuture<'a> = Pin<Box<dyn Future<Output = Result<bool, Error>> + Send + 'a>>;

/// Remembers keys until they expire.
pub trait ReplayStore: Send + Sync + std::fmt::Debug {
    /// Records `key` until `expires_at`: `Ok(true)` when it was not there (first use),
    /// `Ok(false)` when it was (a replay). An `Err` means the store could not decide (full,
    /// unreachable): callers refuse the request, failing closed.
    fn insert_once<'a>(&'a self, key: &'a [u8; 32], expires_at: UnixTime) -> ReplayFuture<'a>;
}

/// The replay key of a back-channel logout token: SHA-256 over the issuer (length-prefixed) and the `jti`, so
/// two issuers' `jti`s never collide (and never collide with a DPoP proof's key, which
/// hashes a thumbprint).
pub fn logout_replay_key(issuer: &str, jti: &str) -> [u8; 32] {
    let mut keyed = Vec::with_capacity(7 + 8 + issuer.len() + jti.len());
    keyed.extend_from_slice(b"logout\0");
    keyed.extend_from_slice(&(issuer.len() as u64).to_be_bytes());
    keyed.extend_from_slice(issuer.as_bytes());
    keyed.extend_from_slice(jti.as_bytes());
    sha256(&keyed)
}

/// Records a verified DPoP proof's `jti` in `store`: `dpop_replay` when it was seen before or
/// the store refused it (full); `replay_store_unavailable` as it is when a shared store could
/// not be asked (503: not the client's fault, and never let through).
pub async fn record_proof(store: &dyn ReplayStore, proof: &VerifiedProof) -> Result<(), Error> {
    use identity_model_core::ErrorKind;
    match store.insert_once(&proof.replay_key, proof.replay_until).await {
        Ok(true) => Ok(()),
        Ok(false) => {
            Err(Error::new(ErrorKind::DpopReplay, "this DPoP proof was used before (its jti was seen)"))
        }
        Err(e) if e.kind() == ErrorKind::ReplayStoreUnavailable => Err(e),
        Err(e) => Err(Error::new(
            ErrorKind::DpopReplay,
            format!("the replay store cannot record the proof, so it is refused: {}", e.message()),
        )
        .with_source(e)),
    }
}

/// Records a back-channel logout token's `jti` (per issuer) until its `exp`: a second use is
/// refused (`invalid_claim` on `jti`), as is one the store cannot record (fail closed); a
/// shared store that cannot be asked gives `replay_store_unavailable` as it is.
pub async fn record_logout(
    store: &dyn ReplayStore,
    issuer: &str,
    jti: &str,
    expires_at: UnixTime,
) -> Result<(), Error> {
    use identity_model_core::ErrorKind;
    let key = logout_replay_key(issuer, jti);
    match store.insert_once(&key, expires_at).await {
        Ok(true) => Ok(()),
        Ok(false) => {
            Err(Error::new(ErrorKind::InvalidClaim, "this logout token was used before").with_claim("jti"))
        }
        Err(e) if e.kind() == ErrorKind::ReplayStoreUnavailable => Err(e),
        Err(e) => Err(Error::new(
            ErrorKind::InvalidClaim,
            format!("the replay store cannot record the logout token, so it is refused: {}", e.message()),
        )
        .with_claim("jti")
        .with_source(e)),
    }
}
