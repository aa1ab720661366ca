//! The validated-token cache (opt-in): a token that validated before is answered by a hash
//! lookup and a full comparison, without parsing or verifying again.
//!
//! Bounded: at most `max_entries` tokens of at most `max_token_bytes` each (longer tokens are
//! not cached), in shards evicted oldest first. An entry is served only inside the token's
//! validity window (`nbf` and `exp` with the rules' leeway, against the injected clock), only
//! while its key is in the current key set (checked by `kid` when the key set changed; a token
//! without `kid` only within the key generation that verified it). Failures are never cached:
//! an invalid token pays a full validation every time (unknown `kid`s have their own cheap
//! refusal), so no attacker-chosen token can poison the cache.
//!
//! Scaling: each thread keeps its last few hits in a small front (thread-local, shared
//! entries), checked before the shards, so a hot token served on every core takes no lock
//! and writes no shared memory (hits are counted on per-thread stripes). A front entry is
//! judged exactly like a shard entry (window and key on every hit) and belongs to one cache
//! and one `clear` epoch.

use std::cell::RefCell;
use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use super::striped::StripedCounter;

use identity_model_core::ValidToken;

use crate::telemetry::{TokenCacheMeters, tally};

/// Settings of the validated-token cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenCacheConfig {
    /// Most tokens kept (default 10,000).
    pub max_entries: usize,
    /// Longest token kept, in bytes (default 4096); longer ones are validated every time.
    pub max_token_bytes: usize,
}

impl Default for TokenCacheConfig {
    fn default() -> Self {
        TokenCacheConfig { max_entries: 10_000, max_token_bytes: 4096 }
    }
}

/// Counters of the validated-token cache.
#[derive(Debug, Default)]
pub struct TokenCacheStats {
    /// Validations answered from the cache.
    pub hits: StripedCounter,
    /// Lookups that found nothing usable.
    pub misses: StripedCounter,
    /// Entries dropped to stay within `max_entries`.
    pub evictions: AtomicU64,
    /// Entries dropped because their token expired or their key left the key set.
    pub invalidations: AtomicU64,
}

struct Entry {
    token: Box<str>,
    valid: ValidToken,
    window: (f64, f64),
    generation: u64,
    kid: Option<Box<str>>,
}

#[derive(Default)]
struct Shard {
    entries: HashMap<u64, Arc<Entry>>,
    order: VecDeque<u64>,
}

const SHARDS: usize = 16;

/// Entries in each thread's front.
const FRONT: usize = 4;

/// One front slot: the cache (by its unique id, never reused) and `clear` epoch it came from.
struct Slot {
    cache: u64,
    epoch: u64,
    entry: Arc<Entry>,
}

thread_local! {
    static FRONTS: RefCell<(usize, [Option<Slot>; FRONT])> = const { RefCell::new((0, [None, None, None, None])) };
}

pub(crate) struct TokenCache {
    /// Unique in the process: a front slot of a dropped cache never matches a new one.
    id: u64,
    /// Bumped by `clear`: front slots of an earlier epoch are dead.
    epoch: AtomicU64,
    config: TokenCacheConfig,
    per_shard: usize,
    hasher: std::collections::hash_map::RandomState,
    shards: Box<[Mutex<Shard>]>,
    pub(crate) stats: TokenCacheStats,
    #[cfg_attr(not(feature = "metrics"), allow(dead_code))]
    meters: TokenCacheMeters,
}

impl Entry {
    /// Inside the token's validity window, with its key still published.
    fn servable(&self, now: f64, keys: &KeysNow<'_>) -> bool {
        let in_window = now >= self.window.0 && now < self.window.1;
        let key_present =
            self.generation == keys.generation || self.kid.as_deref().is_some_and(|kid| (keys.has_kid)(kid));
        in_window && key_present
    }
}

/// Where a hit's key is checked: the current key generation and a way to ask for a `kid`.
pub(crate) struct KeysNow<'a> {
    pub(crate) generation: u64,
    pub(crate) has_kid: &'a dyn Fn(&str) -> bool,
}

impl TokenCache {
    pub(crate) fn new(config: TokenCacheConfig, issuer: &str) -> TokenCache {
        static IDS: AtomicU64 = AtomicU64::new(0);
        let per_shard = config.max_entries.div_ceil(SHARDS).max(1);
        TokenCache {
            id: IDS.fetch_add(1, Ordering::Relaxed),
            epoch: AtomicU64::new(0),
            config,
            per_shard,
            hasher: std::collections::hash_map::RandomState::new(),
            shards: (0..SHARDS).map(|_| Mutex::new(Shard::default())).collect(),
            stats: TokenCacheStats::default(),
            meters: TokenCacheMeters::new(&[("issuer", issuer)]),
        }
    }

    /// The lookup hash: the token's length and its last 48 bytes (the end of the signature,
    /// which only the issuer's key can produce for a cached token), keyed per process.
    /// Entries are only ever valid tokens, and every hit is confirmed by comparing the whole
    /// token, so hashing the tail costs no safety and keeps a hit cheap for long tokens.
    fn hash(&self, token: &str) -> u64 {
        let bytes = token.as_bytes();
        let mut hasher = self.hasher.build_hasher();
        hasher.write_usize(bytes.len());
        hasher.write(&bytes[bytes.len().saturating_sub(48)..]);
        hasher.finish()
    }

    fn shard(&self, hash: u64) -> std::sync::MutexGuard<'_, Shard> {
        self.shards[(hash as usize) % SHARDS].lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The cached validation of `token` at `now`, if it may still be served.
    pub(crate) fn get(&self, token: &str, now: f64, keys: &KeysNow<'_>) -> Option<ValidToken> {
        if token.len() > self.config.max_token_bytes {
            return None;
        }
        let epoch = self.epoch.load(Ordering::Acquire);
        if let Some(entry) = self.front(token, epoch) {
            if entry.servable(now, keys) {
                tally!(self, hits);
                return Some(entry.valid.clone());
            }
            // Expired or its key is gone: the shard's copy goes below.
        }
        let hash = self.hash(token);
        let mut shard = self.shard(hash);
        let Some(entry) = shard.entries.get(&hash) else {
            tally!(self, misses);
            return None;
        };
        if *entry.token != *token {
            // A hash collision: the full comparison says this is another token.
            tally!(self, misses);
            return None;
        }
        if !entry.servable(now, keys) {
            shard.entries.remove(&hash);
            drop(shard);
            self.forget_front(token);
            tally!(self, invalidations);
            return None;
        }
        let entry = Arc::clone(entry);
        drop(shard);
        tally!(self, hits);
        let valid = entry.valid.clone();
        self.keep_in_front(entry, epoch);
        Some(valid)
    }

    /// This thread's front entry for `token`, if it has one from this cache and epoch.
    fn front(&self, token: &str, epoch: u64) -> Option<Arc<Entry>> {
        FRONTS.with(|fronts| {
            let fronts = fronts.borrow();
            fronts.1.iter().flatten().find_map(|slot| {
                (slot.cache == self.id && slot.epoch == epoch && *slot.entry.token == *token)
                    .then(|| Arc::clone(&slot.entry))
            })
        })
    }

    fn keep_in_front(&self, entry: Arc<Entry>, epoch: u64) {
        FRONTS.with(|fronts| {
            let mut fronts = fronts.borrow_mut();
            let (next, slots) = &mut *fronts;
            slots[*next % FRONT] = Some(Slot { cache: self.id, epoch, entry });
            *next = next.wrapping_add(1);
        });
    }

    fn forget_front(&self, token: &str) {
        FRONTS.with(|fronts| {
            for slot in fronts.borrow_mut().1.iter_mut() {
                if slot.as_ref().is_some_and(|s| s.cache == self.id && *s.entry.token == *token) {
                    *slot = None;
                }
            }
        });
    }

    /// Remembers a successful validation.
    pub(crate) fn insert(&self, token: &str, valid: &ValidToken, window: (f64, f64), generation: u64) {
        if token.len() > self.config.max_token_bytes {
            return;
        }
        let hash = self.hash(token);
        let mut shard = self.shard(hash);
        if shard.entries.contains_key(&hash) {
            return;
        }
        while shard.entries.len() >= self.per_shard {
            let Some(oldest) = shard.order.pop_front() else { break };
            if shard.entries.remove(&oldest).is_some() {
                tally!(self, evictions);
            }
        }
        // Keys of entries removed early stay in `order` until they reach its front: bound it.
        if shard.order.len() > self.per_shard * 2 {
            let live: std::collections::HashSet<u64> = shard.entries.keys().copied().collect();
            shard.order.retain(|h| live.contains(h));
        }
        let kid = valid.header.kid().map(Box::from);
        let entry = Entry { token: token.into(), valid: valid.clone(), window, generation, kid };
        shard.entries.insert(hash, Arc::new(entry));
        shard.order.push_back(hash);
    }

    pub(crate) fn clear(&self) {
        self.epoch.fetch_add(1, Ordering::AcqRel);
        for shard in self.shards.iter() {
            let mut shard = shard.lock().unwrap_or_else(|p| p.into_inner());
            shard.entries.clear();
            shard.order.clear();
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.shards.iter().map(|s| s.lock().unwrap_or_else(|p| p.into_inner()).entries.len()).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use identity_model_core::{Algorithm, KeySet, SigningKey, UnixTime, Validation};
    use serde_json::json;

    fn valid(exp: u64, kid: &str) -> (String, ValidToken) {
        let key = SigningKey::generate(Algorithm::ES256).unwrap().with_kid(kid);
        let keys = KeySet::from_jwks([key.verification_jwk().into()]);
        let token = key.sign_jwt(None, &json!({"iss": "i", "aud": "a", "exp": exp})).unwrap();
        let rules = Validation::new("i").audience("a");
        let valid = rules.validate(&token, &keys, UnixTime::from_secs(0)).unwrap();
        (token, valid)
    }

    #[test]
    fn bounded_windowed_and_tied_to_the_key() {
        let cache = TokenCache::new(
            TokenCacheConfig { max_entries: 32, max_token_bytes: 4096 },
            "https://issuer.example",
        );
        let same = KeysNow { generation: 1, has_kid: &|_| false };
        let (token, v) = valid(100, "k");
        cache.insert(&token, &v, (0.0, 100.0), 1);
        assert!(cache.get(&token, 50.0, &same).is_some());
        assert!(cache.get(&token, 100.0, &same).is_none(), "expired: gone");
        cache.insert(&token, &v, (0.0, 100.0), 1);
        let rotated_kept = KeysNow { generation: 2, has_kid: &|kid| kid == "k" };
        assert!(cache.get(&token, 50.0, &rotated_kept).is_some(), "its key is still published");
        let rotated_away = KeysNow { generation: 3, has_kid: &|_| false };
        assert!(cache.get(&token, 50.0, &rotated_away).is_none(), "its key left the set");
        assert!(cache.get(&"x".repeat(5000), 1.0, &same).is_none());
        for i in 0..1000 {
            let (t, v) = valid(100, &format!("k{i}"));
            cache.insert(&t, &v, (0.0, 100.0), 1);
        }
        assert!(cache.len() <= 32, "{} entries", cache.len());
        assert!(cache.stats.evictions.load(std::sync::atomic::Ordering::Relaxed) > 0);
    }

    #[test]
    fn the_thread_front_is_judged_like_the_shards_and_dies_with_clear() {
        let config = TokenCacheConfig { max_entries: 32, max_token_bytes: 4096 };
        let cache = TokenCache::new(config, "https://issuer.example");
        let other = TokenCache::new(config, "https://other.example");
        let same = KeysNow { generation: 1, has_kid: &|_| false };
        let (token, v) = valid(100, "k");
        cache.insert(&token, &v, (0.0, 100.0), 1);
        assert!(cache.get(&token, 10.0, &same).is_some(), "a shard hit puts it in front");
        assert!(cache.get(&token, 11.0, &same).is_some(), "a front hit");
        assert_eq!(cache.stats.hits.load(Ordering::Relaxed), 2);
        assert!(other.get(&token, 11.0, &same).is_none(), "another cache never sees this front");
        let rotated_away = KeysNow { generation: 2, has_kid: &|_| false };
        assert!(cache.get(&token, 12.0, &rotated_away).is_none(), "its key left: refused from the front too");
        assert!(cache.get(&token, 12.0, &same).is_none(), "and gone from the shard");
        cache.insert(&token, &v, (0.0, 100.0), 1);
        assert!(cache.get(&token, 13.0, &same).is_some());
        assert!(cache.get(&token, 100.0, &same).is_none(), "expired: refused from the front");
        cache.insert(&token, &v, (0.0, 100.0), 1);
        assert!(cache.get(&token, 14.0, &same).is_some());
        cache.clear();
        assert!(cache.get(&token, 15.0, &same).is_none(), "clear reaches the fronts");
        assert_eq!(cache.stats.hits.load(Ordering::Relaxed), 4);
    }
}
