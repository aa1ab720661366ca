//! Kids proven missing: a refresh that started after the token arrived completed, succeeded,
//! and its keys lack the `kid`. Remembered for one kid-miss cooldown, for one key generation,
//! at most [`MAX_MISSING_KIDS`] of them (a flood of random kids cannot grow it).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// Most kids remembered; past it the memory starts over.
pub(crate) const MAX_MISSING_KIDS: usize = 1024;
/// Longest `kid` remembered (longer ones are remembered by this prefix).
const MAX_KID_CHARS: usize = 256;

#[derive(Debug, Default)]
pub(crate) struct MissingKids {
    inner: Mutex<Generation>,
}

#[derive(Debug, Default)]
struct Generation {
    generation: u64,
    kids: HashMap<String, Instant>,
}

fn bounded(kid: &str) -> &str {
    match kid.char_indices().nth(MAX_KID_CHARS) {
        Some((at, _)) => &kid[..at],
        None => kid,
    }
}

impl MissingKids {
    fn lock(&self) -> std::sync::MutexGuard<'_, Generation> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether `kid` was proven missing from `generation` less than `ttl` ago.
    pub(crate) fn contains(&self, kid: &str, generation: u64, now: Instant, ttl: Duration) -> bool {
        let missing = self.lock();
        missing.generation == generation
            && missing.kids.get(bounded(kid)).is_some_and(|at| now.saturating_duration_since(*at) < ttl)
    }

    /// Remembers `kid` as missing from `generation` (proven at `now`).
    pub(crate) fn insert(&self, kid: &str, generation: u64, now: Instant) {
        let mut missing = self.lock();
        if missing.generation != generation || missing.kids.len() >= MAX_MISSING_KIDS {
            missing.kids.clear();
            missing.generation = generation;
        }
        missing.kids.insert(bounded(kid).to_owned(), now);
    }

    /// How many kids are remembered.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.lock().kids.len()
    }

    pub(crate) fn clear(&self) {
        self.lock().kids.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded_by_count_generation_and_time() {
        let kids = MissingKids::default();
        let t0 = Instant::now();
        let ttl = Duration::from_secs(5);
        for i in 0..(MAX_MISSING_KIDS * 3) {
            kids.insert(&format!("k{i}"), 1, t0);
        }
        assert!(kids.len() <= MAX_MISSING_KIDS);
        kids.insert("x", 1, t0);
        assert!(kids.contains("x", 1, t0 + Duration::from_secs(4), ttl));
        assert!(!kids.contains("x", 1, t0 + ttl, ttl), "forgotten after the cooldown");
        assert!(!kids.contains("x", 2, t0, ttl), "another generation");
        let long = "é".repeat(10_000);
        kids.insert(&long, 1, t0);
        assert!(kids.contains(&long, 1, t0, ttl));
    }
}
