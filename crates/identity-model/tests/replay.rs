//! The replay store: once per key, expiry on the injected clock, bounded and failing closed.

#![allow(clippy::unwrap_used)] // tests fail loudly by design

use std::sync::Arc;

use identity_model::{
    DpopKey, DpopRules, ErrorKind, FixedClock, MemoryReplayStore, ProofRequest, ReplayStore, UnixTime,
    logout_replay_key, record_proof, sha256,
};

fn key(i: u64) -> [u8; 32] {
    sha256(&i.to_le_bytes())
}

#[tokio::test]
async fn once_per_key_until_it_expires() {
    let clock = FixedClock::new(UnixTime::from_secs(1_000));
    let store = MemoryReplayStore::new(1_000).with_clock(Arc::new(clock.clone()));
    let until = UnixTime::from_secs(1_300);
    assert!(store.insert_once(&key(1), until).await.unwrap());
    assert!(!store.insert_once(&key(1), until).await.unwrap(), "a replay");
    assert!(store.insert_once(&key(2), until).await.unwrap(), "another key is independent");
    clock.set(UnixTime::from_secs(1_299));
    assert!(!store.insert_once(&key(1), until).await.unwrap(), "still inside its life");
    clock.set(UnixTime::from_secs(1_300));
    assert!(
        store.insert_once(&key(1), UnixTime::from_secs(1_600)).await.unwrap(),
        "expired: a first use again"
    );
}

#[tokio::test]
async fn expired_entries_make_room_as_time_moves() {
    let clock = FixedClock::new(UnixTime::from_secs(0));
    let store = MemoryReplayStore::new(1_600).with_clock(Arc::new(clock.clone()));
    for i in 0..20_000u64 {
        let now = (i / 10) as i64;
        clock.set(UnixTime::from_secs(now));
        assert!(store.insert_once(&key(i), UnixTime::from_secs(now + 5)).await.unwrap(), "insert {i}");
    }
    assert!(store.len() <= 1_600, "{} entries", store.len());
}

#[tokio::test]
async fn full_means_refused_until_entries_expire() {
    let clock = FixedClock::new(UnixTime::from_secs(0));
    // 16 shards of one entry each.
    let store = MemoryReplayStore::new(16).with_clock(Arc::new(clock.clone()));
    let mut refused = 0;
    for i in 0..200 {
        match store.insert_once(&key(i), UnixTime::from_secs(10)).await {
            Ok(true) => {}
            Ok(false) => panic!("distinct keys are never replays"),
            Err(e) => {
                assert_eq!(e.kind(), ErrorKind::DpopReplay);
                refused += 1;
            }
        }
    }
    assert!(store.len() <= 16, "{} entries", store.len());
    assert_eq!(refused, 200 - store.len());
    // Past their expiry the entries make room: the key refused for lack of room (or the one
    // first recorded) is a first use again, and fills its shard once more.
    clock.set(UnixTime::from_secs(10));
    assert!(store.insert_once(&key(0), UnixTime::from_secs(20)).await.unwrap());
    assert!(!store.insert_once(&key(0), UnixTime::from_secs(20)).await.unwrap(), "and a replay after that");
}

#[tokio::test]
async fn an_insert_counts_even_when_its_future_is_dropped_unpolled() {
    // Cancellation: a request abandoned after its proof was checked has used the proof.
    let store = MemoryReplayStore::new(100).with_clock(Arc::new(FixedClock::new(UnixTime::from_secs(0))));
    let until = UnixTime::from_secs(100);
    drop(store.insert_once(&key(7), until));
    assert!(!store.insert_once(&key(7), until).await.unwrap(), "the dropped insert was recorded");
}

#[test]
fn threads_racing_on_one_key_let_exactly_one_through() {
    let store = MemoryReplayStore::new(1_000);
    let until = UnixTime::from_secs(i64::MAX / 2);
    let firsts: usize = std::thread::scope(|scope| {
        let handles: Vec<_> =
            (0..8).map(|_| scope.spawn(|| store.insert_once_now(&key(42), until).unwrap())).collect();
        handles.into_iter().map(|h| usize::from(h.join().unwrap())).sum()
    });
    assert_eq!(firsts, 1);
}

#[tokio::test]
async fn a_replayed_proof_is_dpop_replay_and_one_clients_jti_does_not_burn_anothers() {
    let now = UnixTime::from_secs(1_800_000_000);
    let store = MemoryReplayStore::new(1_000).with_clock(Arc::new(FixedClock::new(now)));
    let url = "https://api.example/orders";
    let a = DpopKey::generate_default().unwrap();
    let proof = a.proof(&ProofRequest::new("GET", url), now).unwrap();
    let verified = DpopRules::new().verify(&proof, "GET", url, None, now).unwrap();
    record_proof(&store, &verified).await.unwrap();
    assert_eq!(record_proof(&store, &verified).await.unwrap_err().kind(), ErrorKind::DpopReplay);
    // Another key's proof with the very same jti.
    let mut same_jti = verified.clone();
    same_jti.jkt = DpopKey::generate_default().unwrap().thumbprint().to_owned();
    let mut keyed = same_jti.jkt.clone().into_bytes();
    keyed.push(0);
    keyed.extend_from_slice(same_jti.jti.as_bytes());
    same_jti.replay_key = sha256(&keyed);
    record_proof(&store, &same_jti).await.unwrap();
}

#[test]
fn logout_keys_are_per_issuer() {
    assert_ne!(logout_replay_key("https://a.example", "j"), logout_replay_key("https://b.example", "j"));
    assert_eq!(logout_replay_key("https://a.example", "j"), logout_replay_key("https://a.example", "j"));
    assert_ne!(
        logout_replay_key("https://a.example", "j\0x"),
        logout_replay_key("https://a.example\0j", "x")
    );
}

#[tokio::test]
async fn a_logout_token_jti_is_used_once_per_issuer() {
    let store = MemoryReplayStore::new(100).with_clock(Arc::new(FixedClock::new(UnixTime::from_secs(0))));
    let exp = UnixTime::from_secs(600);
    identity_model::record_logout(&store, "https://a.example", "j-1", exp).await.unwrap();
    let again = identity_model::record_logout(&store, "https://a.example", "j-1", exp).await.unwrap_err();
    assert_eq!((again.kind(), again.claim()), (ErrorKind::InvalidClaim, Some("jti")));
    identity_model::record_logout(&store, "https://b.example", "j-1", exp).await.unwrap();
}

#[test]
fn an_introspected_jkt_binds_like_a_claim() {
    let now = UnixTime::from_secs(1_800_000_000);
    let key = DpopKey::generate_default().unwrap();
    let url = "https://api.example/r";
    let proof = key.proof(&ProofRequest::new("GET", url).with_access_token("opaque"), now).unwrap();
    let verified = DpopRules::new().verify(&proof, "GET", url, Some("opaque"), now).unwrap();
    identity_model::check_jkt_binding(Some(key.thumbprint()), Some(&verified)).unwrap();
    let err = identity_model::check_jkt_binding(Some("other"), Some(&verified)).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::DpopKeyMismatch);
    let err = identity_model::check_jkt_binding(Some(key.thumbprint()), None).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::DpopProofRequired);
}
