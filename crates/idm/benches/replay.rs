//! The replay store's insert at 10,000 and at 1,000,000 live entries (steady state: entries
//! expire as fast as new ones come, so the live count holds), and its memory per entry
//! (resident memory growth over the fill). Figures go to docs/PERFORMANCE.md.

use std::sync::Arc;
use std::time::Instant;

use criterion::{Criterion, criterion_group, criterion_main};
use identity_model::{FixedClock, MemoryReplayStore, UnixTime};

/// The process's resident memory in bytes (Linux `/proc/self/status`), 0 elsewhere. The
/// workspace forbids `unsafe`, so no counting allocator: RSS growth over a fill is the figure.
fn resident_bytes() -> i64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse::<i64>().ok())
        .map_or(0, |kb| kb * 1024)
}

/// Unique, well-spread 32-byte keys from a counter (splitmix64), cheaper than a hash.
fn key(n: u64) -> [u8; 32] {
    let mut out = [0u8; 32];
    let mut z = n;
    for chunk in out.chunks_mut(8) {
        z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut x = z;
        x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        chunk.copy_from_slice(&(x ^ (x >> 31)).to_le_bytes());
    }
    out
}

/// Entries live `WINDOW` seconds; `live / WINDOW` come per second, so `live` are alive.
const WINDOW: i64 = 100;

struct Steady {
    store: MemoryReplayStore,
    clock: FixedClock,
    per_second: u64,
    next: u64,
}

impl Steady {
    fn new(live: u64) -> Steady {
        let clock = FixedClock::new(UnixTime::from_secs(0));
        let store = MemoryReplayStore::new(live as usize * 2).with_clock(Arc::new(clock.clone()));
        let mut steady = Steady { store, clock, per_second: live / WINDOW as u64, next: 0 };
        for _ in 0..live {
            steady.insert();
        }
        steady
    }

    fn insert(&mut self) {
        let now = (self.next / self.per_second) as i64;
        if self.next % self.per_second == 0 {
            self.clock.set(UnixTime::from_secs(now));
        }
        let first = self.store.insert_once_now(&key(self.next), UnixTime::from_secs(now + WINDOW));
        assert!(matches!(first, Ok(true)), "a fresh key is a first use");
        self.next += 1;
    }
}

fn replay_insert(c: &mut Criterion) {
    let mut group = c.benchmark_group("replay_insert");
    for live in [10_000u64, 1_000_000] {
        let before = resident_bytes();
        let mut steady = Steady::new(live);
        let bytes = resident_bytes() - before;
        let entries = steady.store.len();
        println!(
            "replay store: {entries} live entries, resident memory +{bytes} bytes: {:.1} bytes per entry",
            bytes as f64 / entries as f64
        );
        group.bench_function(format!("{live}_live"), |b| {
            b.iter_custom(|iters| {
                let start = Instant::now();
                for _ in 0..iters {
                    steady.insert();
                }
                start.elapsed()
            })
        });
        let entries = steady.store.len() as u64;
        assert!(entries <= live * 2 && entries >= live / 2, "steady state held: {entries} live");
    }
    group.finish();
}

mod harness {
    #![allow(missing_docs)]
    use super::*;
    criterion_group!(benches, replay_insert);
}

criterion_main!(harness::benches);
