//! The `Throttle` contract suite against the in-memory throttle (the shared backends run it
//! in their own test files, under their features).
#![cfg(feature = "conformance")]

use std::sync::Arc;

use keycard::conformance::throttle as suite;
use keycard::throttle::{MemoryThrottle, Throttle};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn memory_throttle_keeps_the_contract() {
    let throttle: Arc<dyn Throttle> = Arc::new(MemoryThrottle::new(suite::limits()));
    suite::run_all(&*throttle).await;
    suite::concurrent_tasks(throttle).await;
}

#[tokio::test(flavor = "current_thread")]
async fn memory_throttle_keeps_the_contract_through_a_box() {
    let boxed: Box<dyn Throttle> = Box::new(MemoryThrottle::new(suite::limits()));
    suite::run_all(&boxed).await;
}
