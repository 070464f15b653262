//! `MemoryThrottle` with a full table (the default 64 MiB budget: about 1.38 million
//! counters, as an attack with fresh accounts and addresses leaves it): the bytes a counter
//! takes (allocated bytes counted by a global allocator, at 1 million counters and at full),
//! what a refused attempt costs under the throttle's lock, and how long `prune` keeps a task
//! on the same thread waiting.
//!
//! ```sh
//! cargo bench --bench throttle
//! ```
//!
//! Figures are in BENCHMARKS.md.

use std::alloc::System;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use keycard::throttle::{Admission, MemoryThrottle, Throttle, ThrottleKey, ThrottleLimits};
use stats_alloc::{StatsAlloc, INSTRUMENTED_SYSTEM};
use time::OffsetDateTime;

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// Bytes allocated and not yet freed.
fn live_bytes() -> isize {
    let stats = GLOBAL.stats();
    // Reallocations are already in both counts.
    stats.bytes_allocated as isize - stats.bytes_deallocated as isize
}

/// Attempt `i`: an account and an address of its own (three new counters).
fn key(i: u32) -> ThrottleKey {
    let ip = IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + i));
    ThrottleKey::new(&format!("user{i}@example.com"), Some(ip))
}

fn main() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    rt.block_on(async {
        let t0 = OffsetDateTime::now_utc();
        let before = live_bytes();
        let throttle = Arc::new(MemoryThrottle::new(ThrottleLimits::default()));
        let mut i = 0;
        while throttle.len() < 1_000_000 {
            let _ = throttle.reserve(&key(i), t0).await.expect("memory");
            i += 1;
        }
        let bytes = live_bytes() - before;
        println!(
            "{} counters: {bytes} bytes allocated ({:.1} MiB), {:.1} bytes per counter",
            throttle.len(),
            bytes as f64 / f64::from(1 << 20),
            bytes as f64 / throttle.len() as f64
        );
        while throttle.len() + 3 <= MemoryThrottle::DEFAULT_CAPACITY {
            let _ = throttle.reserve(&key(i), t0).await.expect("memory");
            i += 1;
        }
        let bytes = live_bytes() - before;
        println!(
            "table: {} counters (capacity {}, budget {} MiB): {bytes} bytes allocated ({:.1} MiB), {:.1} bytes per counter",
            throttle.len(),
            MemoryThrottle::DEFAULT_CAPACITY,
            MemoryThrottle::DEFAULT_MEMORY_LIMIT >> 20,
            bytes as f64 / f64::from(1 << 20),
            bytes as f64 / throttle.len() as f64
        );
        assert!(bytes <= MemoryThrottle::DEFAULT_MEMORY_LIMIT as isize);

        // Fresh keys, a millisecond apart, while every window is live: all refused.
        let attempts = 5_000;
        let mut times = Vec::with_capacity(attempts);
        for j in 0..attempts as u32 {
            let now = t0 + Duration::from_secs(2) + Duration::from_millis(u64::from(j));
            let start = Instant::now();
            let admission = throttle.reserve(&key(1_000_000 + j), now).await;
            times.push(start.elapsed());
            assert!(
                matches!(admission, Ok(Admission::Refused { .. })),
                "{admission:?}"
            );
        }
        times.sort_unstable();
        let mean = times.iter().sum::<Duration>() / attempts as u32;
        println!(
            "refused attempt on the full table ({attempts}): mean {mean:?}, p99 {:?}, max {:?}",
            times[attempts * 99 / 100],
            times[attempts - 1]
        );

        // Every window ended: `prune` beside a task that yields in a loop, on one thread.
        let probe = tokio::spawn(async {
            let mut longest = Duration::ZERO;
            for _ in 0..200_000 {
                let start = Instant::now();
                tokio::task::yield_now().await;
                longest = longest.max(start.elapsed());
            }
            longest
        });
        tokio::task::yield_now().await;
        let start = Instant::now();
        let pruned = throttle
            .prune(t0 + Duration::from_secs(3 * 24 * 3600))
            .await
            .expect("prune");
        let took = start.elapsed();
        let longest = probe.await.expect("probe");
        println!(
            "prune of {pruned} ended counters: {took:?}; longest wait of a task on the same thread: {longest:?}"
        );
    });
}
