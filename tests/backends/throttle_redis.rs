//! The `Throttle` contract suite against `RedisThrottle` on a live server
//! (`KEYCARD_REDIS_URL`, default `redis://127.0.0.1:6379`), plus its key layout and native
//! expiry. Each test uses its own key prefix and deletes its keys afterwards. Fails, never
//! skips, when the server is not running.

use std::sync::Arc;
use std::time::Duration;

use crate::support::stores::RedisPrefix;
use keycard::conformance::throttle as suite;
use keycard::throttle::{Admission, Throttle, ThrottleKey};
use redis::AsyncCommands;
use time::OffsetDateTime;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redis_throttle_keeps_the_contract() {
    let ns = RedisPrefix::new().await;
    let throttle: Arc<dyn Throttle> = Arc::new(ns.throttle(suite::limits()).await);
    suite::run_all(&*throttle).await;
    suite::concurrent_tasks(throttle).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redis_throttle_keeps_the_contract_through_a_box() {
    let ns = RedisPrefix::new().await;
    let boxed: Box<dyn Throttle> = Box::new(ns.throttle(suite::limits()).await);
    suite::run_all(&boxed).await;
}

/// Two instances (two connections) hitting one rate key and giving the hits back, at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn give_backs_from_two_instances_keep_the_count() {
    let ns = RedisPrefix::new().await;
    let a = ns.throttle(suite::limits()).await;
    let b = ns.throttle(suite::limits()).await;
    suite::concurrent_give_backs(&a, &b).await;
}

#[tokio::test]
async fn keys_share_one_slot_hold_no_email_and_expire_after_their_window() {
    let ns = RedisPrefix::new().await;
    let throttle = ns.throttle(suite::limits()).await;
    let email = "keys-test@example.com";
    let key = ThrottleKey::new(email, Some("198.18.7.9".parse().expect("ip")));
    let now = OffsetDateTime::now_utc();
    let reservation = match throttle.reserve(&key, now).await.expect("reserve") {
        Admission::Allowed(r) => r,
        other => panic!("{other:?}"),
    };
    throttle
        .record_success(&key, reservation, now)
        .await
        .expect("record_success");
    throttle.reserve(&key, now).await.expect("reserve again");

    let mut keys = ns.keys();
    keys.sort();
    let p = ns.throttle_prefix();
    let a = key.account();
    assert_eq!(
        keys,
        [
            format!("{p}{{t}}:account_trusted:{a}"),
            format!("{p}{{t}}:ip:198.18.7.9"),
            format!("{p}{{t}}:pair:{a}:198.18.7.9"),
            format!("{p}{{t}}:trusted:{a}:198.18.7.9"),
        ],
        "a trusted address's attempt counts the trusted account key, not the other"
    );
    assert!(keys.iter().all(|k| !k.contains("keys-test")));

    let mut conn = redis::Client::open(ns.url.as_str())
        .expect("url")
        .get_multiplexed_async_connection()
        .await
        .expect("connect");
    // Cluster: every key in one slot.
    let mut slots = Vec::new();
    for k in &keys {
        let slot: i64 = redis::cmd("CLUSTER")
            .arg("KEYSLOT")
            .arg(k)
            .query_async(&mut conn)
            .await
            .unwrap_or_else(|_| i64::from(crc16_slot(k)));
        slots.push(slot);
    }
    slots.dedup();
    assert_eq!(slots.len(), 1, "all keys in one slot: {keys:?}");

    // Native expiry: a minute after the window (60 s) or the trust (an hour).
    let window_ms = suite::WINDOW.as_millis() as i64;
    for k in &keys {
        let ttl: i64 = conn.pttl(k).await.expect("pttl");
        let expected = if k.contains(":trusted:") {
            3_600_000 + 60_000
        } else {
            window_ms + 60_000
        };
        assert!(
            (expected - 10_000..=expected).contains(&ttl),
            "{k}: PTTL {ttl}, expected about {expected}"
        );
    }
    assert_eq!(
        throttle
            .prune(now + Duration::from_secs(7200))
            .await
            .expect("prune"),
        0,
        "Redis expires keys by itself"
    );
    let debug = format!("{throttle:?}");
    assert!(!debug.contains(a) && !debug.contains("198.18"), "{debug}");
}

/// The slot of `key` (CRC16 of its hash tag, mod 16384), for servers not in cluster mode.
fn crc16_slot(key: &str) -> u16 {
    let bytes = key.as_bytes();
    let tagged = key
        .find('{')
        .and_then(|open| {
            key[open + 1..]
                .find('}')
                .filter(|&len| len > 0)
                .map(|len| &bytes[open + 1..open + 1 + len])
        })
        .unwrap_or(bytes);
    let mut crc: u16 = 0;
    for &b in tagged {
        crc ^= u16::from(b) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 {
                (crc << 1) ^ 0x1021
            } else {
                crc << 1
            };
        }
    }
    crc % 16384
}
