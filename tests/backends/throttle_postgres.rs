//! The `Throttle` contract suite against `PostgresThrottle` on a live server
//! (`KEYCARD_POSTGRES_URL`, default `postgres://postgres@127.0.0.1:5432/test`), plus its
//! migration and pruning. Each test works in its own fresh schema and drops it afterwards.
//! Fails, never skips, when the server is not running.

use std::sync::Arc;
use std::time::Duration;

use crate::support::stores::PgSchema;
use keycard::conformance::throttle as suite;
use keycard::postgres::PostgresThrottle;
use keycard::throttle::{Admission, Throttle, ThrottleKey};
use time::OffsetDateTime;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_throttle_keeps_the_contract() {
    let schema = PgSchema::new().await;
    let throttle: Arc<dyn Throttle> = Arc::new(schema.throttle(suite::limits()).await);
    suite::run_all(&*throttle).await;
    suite::concurrent_tasks(throttle).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_throttle_keeps_the_contract_through_a_box() {
    let schema = PgSchema::new().await;
    let boxed: Box<dyn Throttle> = Box::new(schema.throttle(suite::limits()).await);
    suite::run_all(&boxed).await;
}

/// Two instances (two pools) hitting one rate key and giving the hits back, at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn give_backs_from_two_instances_keep_the_count() {
    let schema = PgSchema::new().await;
    let a = schema.throttle(suite::limits()).await;
    let b = schema.throttle(suite::limits()).await;
    suite::concurrent_give_backs(&a, &b).await;
}

#[tokio::test]
async fn migrate_is_idempotent_and_concurrent_and_names_are_checked() {
    let schema = PgSchema::new().await;
    let a = schema.throttle(suite::limits()).await;
    let b = PostgresThrottle::new(a.pool().clone(), suite::limits())
        .with_table(&schema.table("throttle"))
        .expect("valid");
    let (ra, rb) = tokio::join!(a.migrate(), b.migrate());
    ra.expect("migrate a");
    rb.expect("migrate b");
    let versions: Vec<(String, i64)> = sqlx::query_as(&format!(
        "SELECT target, version FROM \"{}\".keycard_migrations ORDER BY target, version",
        schema.name
    ))
    .fetch_all(a.pool())
    .await
    .expect("read migrations");
    assert_eq!(
        versions,
        vec![("throttle".to_owned(), 1), ("throttle".to_owned(), 2)]
    );
    let functions: Vec<(String,)> = sqlx::query_as(
        "SELECT p.proname::text FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace \
         WHERE n.nspname = $1 ORDER BY 1",
    )
    .bind(&schema.name)
    .fetch_all(a.pool())
    .await
    .expect("list functions");
    assert_eq!(
        functions,
        [
            ("throttle_hit".to_owned(),),
            ("throttle_record_success".to_owned(),),
            ("throttle_release".to_owned(),),
            ("throttle_reserve".to_owned(),)
        ]
    );
    assert!(a.clone().with_table("bad name").is_err());
    assert!(a.clone().with_table(&"t".repeat(49)).is_err());
    assert!(a.clone().with_table(&"t".repeat(48)).is_ok());
    let debug = format!("{a:?}");
    assert!(
        debug.contains("throttle") && !debug.contains("postgres://"),
        "{debug}"
    );
}

#[tokio::test]
async fn prune_deletes_ended_windows_and_lapsed_trust_only() {
    let schema = PgSchema::new().await;
    let throttle = schema.throttle(suite::limits()).await;
    let now = OffsetDateTime::now_utc();
    let past = now - Duration::from_secs(2 * 3600);
    // In the past: three counters (pair, ip, account) and, after a success, a trust that
    // lapsed an hour later, plus the IP counter given back to zero; then, from the trusted
    // address, (pair, ip, account_trusted).
    let old = ThrottleKey::new("old@example.com", Some("198.18.0.1".parse().expect("ip")));
    let r = match throttle.reserve(&old, past).await.expect("reserve") {
        Admission::Allowed(r) => r,
        other => panic!("{other:?}"),
    };
    throttle
        .record_success(&old, r, past)
        .await
        .expect("record_success");
    throttle.reserve(&old, past).await.expect("reserve");
    // Live now.
    let live = ThrottleKey::new("live@example.com", Some("198.18.0.2".parse().expect("ip")));
    throttle.reserve(&live, now).await.expect("reserve");
    let rows = || async {
        sqlx::query_as::<_, (String,)>(&format!(
            "SELECT split_part(key, ':', 1) FROM \"{}\".throttle ORDER BY 1",
            schema.name
        ))
        .fetch_all(throttle.pool())
        .await
        .expect("rows")
        .into_iter()
        .map(|(k,)| k)
        .collect::<Vec<_>>()
    };
    assert_eq!(
        rows().await,
        [
            "account",
            "account_trusted",
            "ip",
            "ip",
            "pair",
            "pair",
            "trusted"
        ]
    );
    assert_eq!(throttle.prune(now).await.expect("prune"), 4);
    assert_eq!(rows().await, ["account", "ip", "pair"]);
    assert_eq!(
        throttle
            .prune(now + Duration::from_secs(3600))
            .await
            .expect("prune"),
        3
    );
    assert!(rows().await.is_empty());
}
