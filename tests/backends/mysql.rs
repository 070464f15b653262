//! `keycard::mysql` against a live MariaDB or MySQL (`KEYCARD_MYSQL_URL`, default
//! `mysql://root@127.0.0.1:3306/test`): the token store, user store and throttle contract
//! suites, migrations, purging, registration and the handle's authenticator. Each test works
//! on its own tables (unique suffix) and drops them afterwards. Fails, never skips, when the
//! server is not running.

use std::sync::Arc;
use std::time::Duration;

use crate::support::mysql::MyTables;
use keycard::conformance::throttle as throttle_suite;
use keycard::conformance::users::{self, SeedUsers};
use keycard::mysql::{Mysql, MysqlThrottle, MysqlTokenStore, MysqlUserStore};
use keycard::throttle::{Admission, Limit, RateKey, Throttle, ThrottleKey, ThrottleLimits};
use keycard::{
    conformance, ClientInfo, Session, StoreError, Token, TokenStore, UserId, UserRecord, UserStore,
};
use time::OffsetDateTime;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn mysql_token_store_keeps_the_contract() {
    let tables = MyTables::new().await;
    let store: Arc<dyn TokenStore> = Arc::new(tables.token_store().await);
    conformance::run_all(&*store).await;
    conformance::concurrent_tasks(store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn mysql_user_store_keeps_the_contract() {
    let tables = MyTables::new().await;
    let store = Arc::new(tables.user_store().await);
    users::run_all(&*store).await;
    users::run_account_checks(&*store).await;
    users::concurrent_tasks(store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mysql_user_store_keeps_the_contract_through_dyn() {
    let tables = MyTables::new().await;
    let store: Arc<dyn SeedUsers<User = UserRecord>> = Arc::new(tables.user_store().await);
    users::run_all(&*store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn mysql_throttle_keeps_the_contract() {
    let tables = MyTables::new().await;
    let throttle: Arc<dyn Throttle> = Arc::new(tables.throttle(throttle_suite::limits()).await);
    throttle_suite::run_all(&*throttle).await;
    throttle_suite::concurrent_tasks(throttle).await;
}

/// Two instances (two pools) reserving the same key at once never exceed the limit, and
/// hits they give back at once are all given back.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_reserves_from_two_instances_never_exceed_a_limit() {
    let tables = MyTables::new().await;
    let limits = ThrottleLimits::default().per_account_ip(Limit::new(7, Duration::from_secs(60)));
    let a = Arc::new(tables.throttle(limits).await);
    let b = Arc::new(tables.throttle(limits).await);
    let key = ThrottleKey::new("race@example.com", Some("192.0.2.7".parse().expect("ip")));
    let now = OffsetDateTime::now_utc();
    let tasks: Vec<_> = (0..40)
        .map(|i| {
            let t: Arc<MysqlThrottle> = if i % 2 == 0 { a.clone() } else { b.clone() };
            let key = key.clone();
            tokio::spawn(async move { t.reserve(&key, now).await })
        })
        .collect();
    let mut allowed = 0;
    for task in tasks {
        if let Admission::Allowed(_) = task.await.expect("join").expect("reserve") {
            allowed += 1;
        }
    }
    assert_eq!(allowed, 7);
    let rate = RateKey::new("register", "race");
    let hits: Vec<_> = (0..20)
        .map(|i| {
            let t: Arc<MysqlThrottle> = if i % 2 == 0 { a.clone() } else { b.clone() };
            let rate = rate.clone();
            tokio::spawn(async move {
                t.hit(&rate, Limit::new(5, Duration::from_secs(60)), now)
                    .await
            })
        })
        .collect();
    let mut allowed = 0;
    for hit in hits {
        if let Admission::Allowed(_) = hit.await.expect("join").expect("hit") {
            allowed += 1;
        }
    }
    assert_eq!(allowed, 5);
    throttle_suite::concurrent_give_backs(&*a, &*b).await;
}

#[tokio::test]
async fn migrate_is_idempotent_and_safe_to_run_concurrently() {
    let tables = MyTables::new().await;
    let a = tables.token_store().await;
    let b = MysqlTokenStore::new(a.pool().clone())
        .with_table(&tables.table("sessions"))
        .expect("valid");
    let c = tables.mysql().await.throttle(ThrottleLimits::default());
    let c = c.with_table(&tables.table("throttle")).expect("valid");
    let d = MysqlUserStore::new(a.pool().clone())
        .with_table(&tables.table("users"))
        .expect("valid");
    let (ra, rb, rc, rd) = tokio::join!(a.migrate(), b.migrate(), c.migrate(), d.migrate());
    ra.expect("migrate a");
    rb.expect("migrate b");
    rc.expect("migrate c");
    rd.expect("migrate d");
    let versions: Vec<(String, i64)> = sqlx::query_as(
        "SELECT CAST(target AS CHAR), version FROM keycard_migrations \
         WHERE target LIKE CONCAT('%', ?) ORDER BY target, version",
    )
    .bind(&tables.suffix)
    .fetch_all(a.pool())
    .await
    .expect("read migrations");
    let mut expected = vec![
        (tables.table("sessions"), 1),
        (tables.table("sessions"), 2),
        (tables.table("sessions"), 3),
        (tables.table("throttle"), 1),
        (tables.table("users"), 1),
        (tables.table("users"), 2),
    ];
    expected.sort();
    assert_eq!(versions, expected);
    for bad in ["a-b", "x; DROP TABLE t", "a.b.c", "a`b", &"a".repeat(53)] {
        assert!(
            MysqlTokenStore::new(a.pool().clone())
                .with_table(bad)
                .is_err(),
            "{bad}"
        );
        assert!(
            MysqlUserStore::new(a.pool().clone())
                .with_table(bad)
                .is_err(),
            "{bad}"
        );
        assert!(
            MysqlThrottle::new(a.pool().clone(), ThrottleLimits::default())
                .with_table(bad)
                .is_err(),
            "{bad}"
        );
    }
}

#[tokio::test]
async fn purge_deletes_many_rows_in_batches_and_create_refuses_duplicates() {
    let tables = MyTables::new().await;
    let store = tables.token_store().await;
    let now = OffsetDateTime::now_utc();
    let expired = (now - Duration::from_secs(3600)).unix_timestamp() * 1_000_000;
    // 2500 expired rows, inserted in one statement to keep the test fast.
    sqlx::query(&format!(
        "INSERT INTO `{}` (id, user_id, secret_hash, created_at, expires_at, last_seen_at) \
         WITH RECURSIVE n (i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < 49) \
         SELECT LPAD(a.i * 50 + b.i, 22, '0'), 'bulk', UNHEX(REPEAT('00', 32)), ?, ?, ? \
         FROM n a CROSS JOIN n b",
        tables.table("sessions")
    ))
    .bind(expired)
    .bind(expired)
    .bind(expired)
    .execute(store.pool())
    .await
    .expect("bulk insert");
    let token = Token::generate().expect("rng");
    let live = Session::new(
        &token,
        UserId::new("ann"),
        now,
        Duration::from_secs(3600),
        ClientInfo::none().with_ip("192.0.2.1".parse().expect("ip")),
    );
    store.create(&live).await.expect("create");
    assert!(matches!(
        store.create(&live).await,
        Err(StoreError::Duplicate)
    ));
    assert_eq!(store.purge_expired(now).await.expect("purge"), 2500);
    assert_eq!(store.get(&live.id, now).await.expect("get"), Some(live));
}

#[tokio::test]
async fn registration_refuses_a_taken_email_and_the_authenticator_logs_in() {
    let tables = MyTables::new().await;
    let users = tables.user_store().await;
    let hasher = keycard::Argon2Hasher::insecure_for_tests();
    let registrar =
        keycard::Authenticator::builder(users.clone(), keycard::MemoryTokenStore::new())
            .password_hasher(keycard::Argon2Hasher::insecure_for_tests())
            .build();
    let client = ClientInfo::none().with_ip("192.0.2.8".parse().expect("ip"));
    let password = "a long enough password for the policy 42";
    let (a, b) = tokio::join!(
        registrar.register("ann@example.com", password, &client),
        registrar.register("ann@example.com", password, &client)
    );
    assert_eq!(
        [a.is_ok(), b.is_ok()].iter().filter(|ok| **ok).count(),
        1,
        "one registration of an email wins: {a:?} {b:?}"
    );
    assert!(users
        .find_by_email("ann@example.com")
        .await
        .expect("find")
        .is_some());
    // Trailing spaces and case are different emails (binary comparison).
    assert!(users
        .find_by_email("ann@example.com ")
        .await
        .expect("find")
        .is_none());
    assert!(users
        .find_by_email("ANN@example.com")
        .await
        .expect("find")
        .is_none());

    // The handle's authenticator: its stores and the shared throttle.
    let mysql: Mysql = tables.mysql().await;
    let hash =
        keycard::PasswordHasher::hash(&hasher, b"correct horse battery staple").expect("hash");
    let user_store = mysql
        .user_store()
        .with_table(&tables.table("users"))
        .expect("valid");
    assert!(user_store
        .insert_if_absent(&UserRecord::new(7_i64, "bob@example.com", hash))
        .await
        .expect("insert"));
    let auth = keycard::Authenticator::builder(
        user_store,
        mysql
            .token_store()
            .with_table(&tables.table("sessions"))
            .expect("valid"),
    )
    .throttle(tables.throttle(ThrottleLimits::default()).await)
    .password_hasher(hasher)
    .build();
    tables.token_store().await;
    let login = auth
        .login(
            "bob@example.com",
            "correct horse battery staple",
            ClientInfo::none().with_ip("192.0.2.9".parse().expect("ip")),
        )
        .await
        .expect("login");
    let authed = auth
        .validate(login.token.expose_secret())
        .await
        .expect("validate");
    assert_eq!(authed.user.id, UserId::from(7_i64));
    let _builder = mysql.authenticator();
}
