//! The `Throttle` contract suite against the in-memory throttle (the shared backends run it
//! in their own test files, under their features).

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

#[cfg(feature = "sqlite")]
async fn sqlite_throttle(dir: &tempfile::TempDir) -> keycard::sqlite::SqliteThrottle {
    let throttle =
        keycard::sqlite::SqliteThrottle::open(dir.path().join("throttle.db"), suite::limits())
            .await
            .expect("open");
    throttle.migrate().await.expect("migrate");
    throttle.migrate().await.expect("migrate is idempotent");
    throttle
}

#[cfg(feature = "sqlite")]
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_throttle_keeps_the_contract() {
    let dir = tempfile::tempdir().expect("temp dir");
    let throttle: Arc<dyn Throttle> = Arc::new(sqlite_throttle(&dir).await);
    suite::run_all(&*throttle).await;
    suite::concurrent_tasks(throttle).await;
}

#[cfg(feature = "sqlite")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_throttle_keeps_the_contract_through_a_box() {
    let dir = tempfile::tempdir().expect("temp dir");
    let boxed: Box<dyn Throttle> = Box::new(sqlite_throttle(&dir).await);
    suite::run_all(&boxed).await;
}

/// Two instances (two pools over one file) hitting one rate key and giving the hits back, at
/// once.
#[cfg(feature = "sqlite")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_give_backs_from_two_instances_keep_the_count() {
    let dir = tempfile::tempdir().expect("temp dir");
    let a = sqlite_throttle(&dir).await;
    let b = sqlite_throttle(&dir).await;
    suite::concurrent_give_backs(&a, &b).await;
}

#[cfg(feature = "sqlite")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_throttle_prunes_ended_entries_and_hides_keys_from_debug() {
    use std::time::Duration;

    use keycard::throttle::{Admission, ThrottleKey};
    use time::OffsetDateTime;

    let dir = tempfile::tempdir().expect("temp dir");
    let throttle = sqlite_throttle(&dir).await;
    let now = OffsetDateTime::now_utc();
    let key = ThrottleKey::new("ann@example.com", Some("198.18.0.9".parse().expect("ip")));
    let past = now - Duration::from_secs(2 * 3600);
    let r = match throttle.reserve(&key, past).await.expect("reserve") {
        Admission::Allowed(r) => r,
        other => panic!("{other:?}"),
    };
    // Forgets pair and account, gives the IP count back (deleting it), trusts for an hour.
    throttle
        .record_success(&key, r, past)
        .await
        .expect("record_success");
    throttle.reserve(&key, now).await.expect("reserve");
    // The lapsed trust; the live window's pair and IP counters stay (the account counted
    // too: the trust had lapsed).
    assert_eq!(throttle.prune(now).await.expect("prune"), 1);
    assert_eq!(throttle.prune(now + suite::WINDOW).await.expect("prune"), 3);
    assert_eq!(throttle.prune(now + suite::WINDOW).await.expect("prune"), 0);
    let debug = format!("{throttle:?}");
    assert!(debug.contains("keycard_throttle"), "{debug}");
    assert!(
        !debug.contains(key.account()) && !debug.contains("198.18"),
        "{debug}"
    );
}
