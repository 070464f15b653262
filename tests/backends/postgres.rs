//! PostgreSQL token and user stores against a live server (`KEYCARD_POSTGRES_URL`, default
//! `postgres://postgres@127.0.0.1:5432/test`). Each test works in its own fresh schema and
//! drops it afterwards. Fails, never skips, when the server is not running.

use std::sync::Arc;
use std::time::Duration;

use crate::support::stores::PgSchema;
use keycard::postgres::{PostgresTokenStore, PostgresUserStore};
use keycard::{
    conformance, ClientInfo, Session, StoreError, Token, TokenStore, UserId, UserRecord, UserStore,
};
use time::OffsetDateTime;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_store_keeps_the_contract() {
    let schema = PgSchema::new().await;
    let store: Arc<dyn TokenStore> = Arc::new(schema.token_store().await);
    conformance::run_all(&*store).await;
    conformance::concurrent_tasks(store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_store_keeps_the_contract_through_a_box() {
    let schema = PgSchema::new().await;
    let boxed: Box<dyn TokenStore> = Box::new(schema.token_store().await);
    conformance::run_all(&boxed).await;
}

#[tokio::test]
async fn migrate_is_idempotent_and_safe_to_run_concurrently() {
    let schema = PgSchema::new().await;
    let a = schema.token_store().await;
    let b = PostgresTokenStore::new(a.pool().clone())
        .with_table(&schema.table("sessions"))
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
        vec![
            ("sessions".to_owned(), 1),
            ("sessions".to_owned(), 2),
            ("sessions".to_owned(), 3)
        ]
    );
    let constraint: (String,) = sqlx::query_as(
        "SELECT pg_get_constraintdef(c.oid) FROM pg_constraint c \
         JOIN pg_namespace n ON n.oid = c.connamespace \
         WHERE n.nspname = $1 AND c.conname = 'sessions_pkey'",
    )
    .bind(&schema.name)
    .fetch_one(a.pool())
    .await
    .expect("primary key exists");
    assert_eq!(constraint.0, "PRIMARY KEY (id)");
}

#[tokio::test]
async fn purge_deletes_many_rows_in_batches() {
    let schema = PgSchema::new().await;
    let store = schema.token_store().await;
    let now = OffsetDateTime::now_utc();
    // 2500 expired rows, inserted in one statement to keep the test fast.
    sqlx::query(&format!(
        "INSERT INTO \"{}\".sessions (id, user_id, secret_hash, created_at, expires_at, last_seen_at) \
         SELECT lpad(i::text, 22, '0'), 'bulk', decode(repeat('00', 32), 'hex'), $1, $1, $1 \
         FROM generate_series(1, 2500) AS i",
        schema.name
    ))
    .bind(now - Duration::from_secs(3600))
    .execute(store.pool())
    .await
    .expect("bulk insert");
    let token = Token::generate().expect("rng");
    let live = Session::new(
        &token,
        UserId::from("bulk"),
        now,
        Duration::from_secs(60),
        ClientInfo::none(),
    );
    store.create(&live).await.expect("create");
    assert_eq!(store.purge_expired(now).await.expect("purge"), 2500);
    assert_eq!(store.purge_expired(now).await.expect("purge again"), 0);
    assert_eq!(
        store
            .list_for_user(&UserId::from("bulk"), now)
            .await
            .expect("list")
            .len(),
        1
    );
}

#[tokio::test]
async fn a_corrupt_row_is_a_typed_error_not_a_panic() {
    let schema = PgSchema::new().await;
    let store = schema.token_store().await;
    let token = Token::generate().expect("rng");
    let now = OffsetDateTime::now_utc();
    sqlx::query(&format!(
        "INSERT INTO \"{}\".sessions (id, user_id, secret_hash, created_at, expires_at, last_seen_at) \
         VALUES ($1, 'u', '\\x00'::bytea, $2, $2 + interval '1 hour', $2)",
        schema.name
    ))
    .bind(token.id().to_string())
    .bind(now)
    .execute(store.pool())
    .await
    .expect("insert a row with a 1-byte secret hash");
    let err = store.get(&token.id(), now).await.expect_err("corrupt");
    assert!(matches!(err, StoreError::Corrupt(_)), "{err:?}");
}

#[tokio::test]
async fn an_unreachable_server_is_a_backend_error() {
    // Port 1 on loopback refuses connections.
    let err = PostgresTokenStore::connect("postgres://postgres@127.0.0.1:1/test")
        .await
        .expect_err("nothing listens on port 1");
    assert!(matches!(err, StoreError::Backend(_)), "{err:?}");
    assert!(
        std::error::Error::source(&err).is_some(),
        "the sqlx error is kept as the source"
    );
}

#[tokio::test]
async fn invalid_table_names_are_refused() {
    let schema = PgSchema::new().await;
    let store = schema.token_store().await;
    for bad in ["x; DROP TABLE users", "a.b.c", "\"quoted\"", ""] {
        assert!(store.clone().with_table(bad).is_err(), "{bad:?}");
    }
}

#[tokio::test]
async fn user_store_finds_users_and_seeding_is_idempotent() {
    let schema = PgSchema::new().await;
    let users: PostgresUserStore = schema.user_store().await;
    users.migrate().await.expect("migrate twice");
    let ann = UserRecord::new(1_i64, "  Ann@Example.COM", "$argon2id$x").with_name("Ann", "Lee");
    assert!(users.insert_if_absent(&ann).await.expect("insert"));
    assert!(!users.insert_if_absent(&ann).await.expect("again"));
    let same_email = UserRecord::new(2_i64, "ann@example.com", "$argon2id$y");
    assert!(!users
        .insert_if_absent(&same_email)
        .await
        .expect("same email"));
    let same_id = UserRecord::new(1_i64, "other@example.com", "$argon2id$y");
    assert!(!users.insert_if_absent(&same_id).await.expect("same id"));
    assert_eq!(
        users.find_by_email("ann@example.com").await.expect("find"),
        Some(ann.clone())
    );
    assert_eq!(
        users
            .find_by_email("nobody@example.com")
            .await
            .expect("find"),
        None
    );
    assert_eq!(
        users.find_by_id(&UserId::from(1_i64)).await.expect("find"),
        Some(ann.clone())
    );
    assert_eq!(
        users
            .find_by_id(&UserId::from("x' OR '1'='1"))
            .await
            .expect("find"),
        None
    );
    users
        .set_password_hash(&ann.id, "$argon2id$new")
        .await
        .expect("update");
    let found = users
        .find_by_id(&ann.id)
        .await
        .expect("find")
        .expect("exists");
    assert_eq!(found.password_hash, "$argon2id$new");
    // Concurrent seeding from several instances: exactly one insert wins.
    let bob = UserRecord::new(3_i64, "bob@example.com", "$argon2id$b");
    let results =
        futures_util::future::join_all((0..8).map(|_| users.insert_if_absent(&bob))).await;
    let wins = results
        .into_iter()
        .filter(|r| *r.as_ref().expect("insert"))
        .count();
    assert_eq!(wins, 1);
}
