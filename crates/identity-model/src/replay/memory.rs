//! The in-memory replay store: O(1) amortized insert and expiry, bounded.
//!
//! Each shard holds a hash map (key → expiry second) and the keys grouped by expiry second in
//! order. An insert first drops the groups whose second has passed (each entry is dropped
//! once, so the sweep is amortized O(1) per insert; nothing ever scans the whole store), then
//! looks the key up. The groups are kept in a `BTreeMap` by second: there are at most as many
//! as distinct expiry seconds in the window (a few hundred), not as many as entries.
//!
//! Full: when a shard holds its share of `max_entries` after the sweep, the insert is refused
//! with an error (`dpop_replay` at the caller): failing closed, since accepting a proof that
//! cannot be remembered would let it be replayed.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use identity_model_core::{Error, ErrorKind, UnixTime};

use super::{ReplayFuture, ReplayStore};
use crate::clock::{Clock, SystemClock};

const SHARDS: usize = 16;

#[derive(Default)]
struct Shard {
    expiry: HashMap<u64, i64>,
    by_second: BTreeMap<i64, Vec<u64>>,
}

impl Shard {
    fn sweep(&mut self, now: i64) {
        while let Some(entry) = self.by_second.first_entry() {
            if *entry.key() > now {
                break;
            }
            let (second, keys) = entry.remove_entry();
            for key in keys {
                if self.expiry.get(&key) == Some(&second) {
                    self.expiry.remove(&key);
                }
            }
        }
    }
}

/// A bounded in-process [`ReplayStore`] (default 1,000,000 entries), on an injectable clock.
///
/// ```
/// use identity_model::{MemoryReplayStore, ReplayStore, UnixTime};
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let store = MemoryReplayStore::new(10_000);
/// let key = [7u8; 32];
/// let until = UnixTime::from_secs(i64::MAX / 2);
/// assert!(store.insert_once(&key, until).await.unwrap());
/// assert!(!store.insert_once(&key, until).await.unwrap(), "a replay");
/// # });
/// ```
pub struct MemoryReplayStore {
    shards: Box<[Mutex<Shard>]>,
    per_shard: usize,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for MemoryReplayStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryReplayStore")
            .field("max_entries", &(self.per_shard * SHARDS))
            .finish_non_exhaustive()
    }
}

impl Default for MemoryReplayStore {
    fn default() -> Self {
        MemoryReplayStore::new(1_000_000)
    }
}

impl MemoryReplayStore {
    /// A store for at most `max_entries` live keys (spread over 16 shards).
    pub fn new(max_entries: usize) -> Self {
        MemoryReplayStore {
            shards: (0..SHARDS).map(|_| Mutex::new(Shard::default())).collect(),
            per_shard: max_entries.div_ceil(SHARDS).max(1),
            clock: Arc::new(SystemClock),
        }
    }

    /// Expiry judged by `clock` (tests, simulations).
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Live entries (those past their expiry but not yet swept included).
    pub fn len(&self) -> usize {
        self.shards.iter().map(|s| s.lock().unwrap_or_else(|p| p.into_inner()).expiry.len()).sum()
    }

    /// Whether nothing is remembered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The synchronous insert behind [`ReplayStore::insert_once`].
    pub fn insert_once_now(&self, key: &[u8; 32], expires_at: UnixTime) -> Result<bool, Error> {
        let now = self.clock.now().as_secs();
        // 64 bits of the SHA-256 key: a collision (about 3e-8 at a million live entries) only
        // refuses a proof as a replay, the safe side.
        let short = u64::from_le_bytes(key[..8].try_into().expect("8 bytes"));
        let mut shard = self.shards[usize::from(key[16]) % SHARDS].lock().unwrap_or_else(|p| p.into_inner());
        shard.sweep(now);
        if shard.expiry.contains_key(&short) {
            return Ok(false);
        }
        let until = expires_at.as_secs();
        if until <= now {
            // Already expired: nothing to remember, and a proof that old is refused anyway.
            return Ok(true);
        }
        if shard.expiry.len() >= self.per_shard {
            return Err(Error::new(
                ErrorKind::DpopReplay,
                "the replay store is full: refused until entries expire (fail closed)",
            ));
        }
        shard.expiry.insert(short, until);
        shard.by_second.entry(until).or_default().push(short);
        Ok(true)
    }
}

impl ReplayStore for MemoryReplayStore {
    fn insert_once<'a>(&'a self, key: &'a [u8; 32], expires_at: UnixTime) -> ReplayFuture<'a> {
        let answer = self.insert_once_now(key, expires_at);
        Box::pin(std::future::ready(answer))
    }
}
