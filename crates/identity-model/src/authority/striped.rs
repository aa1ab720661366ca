//! A counter that many threads bump at once without sharing a cache line: one padded atomic
//! per stripe, each thread on its own stripe, summed when read. The validated-token cache
//! counts its hits with it, so that a hot token served on every core does not serialise the
//! cores on one counter.

use std::cell::Cell;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

const STRIPES: usize = 8;

#[derive(Debug, Default)]
#[repr(align(128))]
struct Padded(AtomicU64);

/// A sum of per-thread stripes; reads are `load`, as for an `AtomicU64`.
#[derive(Debug, Default)]
pub struct StripedCounter {
    stripes: [Padded; STRIPES],
}

/// The calling thread's stripe, handed out round robin on first use.
fn stripe() -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local! {
        static MINE: Cell<usize> = const { Cell::new(usize::MAX) };
    }
    MINE.with(|mine| {
        if mine.get() == usize::MAX {
            mine.set(NEXT.fetch_add(1, Ordering::Relaxed) % STRIPES);
        }
        mine.get()
    })
}

impl StripedCounter {
    /// Adds `n` on the calling thread's stripe.
    pub fn fetch_add(&self, n: u64, ordering: Ordering) {
        self.stripes[stripe()].0.fetch_add(n, ordering);
    }

    /// The sum of every stripe. Bumps racing with the read may or may not be in it.
    pub fn load(&self, ordering: Ordering) -> u64 {
        self.stripes.iter().map(|s| s.0.load(ordering)).fold(0, u64::wrapping_add)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_bump_from_every_thread_is_in_the_sum() {
        let counter = StripedCounter::default();
        std::thread::scope(|scope| {
            for _ in 0..12 {
                scope.spawn(|| {
                    for _ in 0..1000 {
                        counter.fetch_add(1, Ordering::Relaxed);
                    }
                });
            }
        });
        assert_eq!(counter.load(Ordering::Relaxed), 12_000);
    }
}
