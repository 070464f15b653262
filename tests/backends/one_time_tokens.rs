//! One-time tokens (issue 17's primitive): the conformance suite on every backend (memory,
//! SQLite, PostgreSQL, MySQL / MariaDB, Redis, Redis Cluster), two instances over one store,
//! no plain text at rest, and the `OneTimeTokens` API.
//!
//! The server-backed tests read `KEYCARD_POSTGRES_URL`, `KEYCARD_MYSQL_URL`,
//! `KEYCARD_REDIS_URL` and `KEYCARD_REDIS_CLUSTER_URLS` (defaults: the loopback services of
//! `.ci/run`), each in a namespace of its own (schema, table suffix, key prefix) removed
//! afterwards. They fail with instructions, never skip, when a server is down.

use std::sync::Arc;
use std::time::Duration;

use keycard::conformance::one_time as suite;
use keycard::one_time::{
    Binding, MemoryOneTimeStore, OneTimeError, OneTimePurpose, OneTimeTokenStore, OneTimeTokens,
    MAX_PAYLOAD_LEN, MAX_USER_ID_LEN,
};
use keycard::{ManualClock, MemoryUserStore, UserId, UserRecord};

/// Panics with instructions: the server a test needs is not running. Tests never skip.
#[cfg(any(feature = "postgres", feature = "mysql", feature = "redis"))]
fn unreachable(server: &str, url: &str, env: &str, error: &dyn std::fmt::Debug) -> ! {
    panic!(
        "{server} is not reachable at {url}: {error:?}\n\
         These tests need a running {server}: start it (`bash .ci/run` starts every service \
         the tests use; `bash .ci/redis-cluster start` the Redis Cluster), or set {env} to \
         the URL of one."
    )
}

#[cfg(any(feature = "postgres", feature = "mysql", feature = "redis"))]
fn unique(tag: &str) -> String {
    format!("{tag}_{}_{:08x}", std::process::id(), rand::random::<u32>())
}

// ---------------------------------------------------------------------------------------------
// Memory

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn memory_store_keeps_the_contract() {
    let store: Arc<dyn OneTimeTokenStore> = Arc::new(MemoryOneTimeStore::new());
    suite::run_all(Arc::clone(&store)).await;
    suite::two_instances(Arc::clone(&store), store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn memory_store_keeps_the_contract_through_a_box() {
    let boxed: Box<dyn OneTimeTokenStore> = Box::new(MemoryOneTimeStore::new());
    suite::run_all(Arc::new(boxed)).await;
}

#[tokio::test]
async fn a_full_memory_store_refuses_with_a_typed_error_then_recovers_after_expiry() {
    let clock = ManualClock::default();
    let store = Arc::new(MemoryOneTimeStore::with_capacity(3));
    let tokens = OneTimeTokens::from_arc(store.clone()).with_clock(clock.clone());
    let purpose = OneTimePurpose::EmailVerification;
    for i in 0..3_i64 {
        tokens
            .issue(&UserId::from(i), &purpose, Binding::none(), None)
            .await
            .expect("room left");
    }
    let full = tokens
        .issue(&UserId::from(9_i64), &purpose, Binding::none(), None)
        .await;
    match full {
        Err(OneTimeError::CapacityExceeded(e)) => {
            assert_eq!(e.capacity, 3);
            assert!(e.to_string().contains("full"), "{e}");
        }
        other => panic!("expected CapacityExceeded, got {other:?}"),
    }
    assert_eq!(store.len(), 3, "a refused issue stores nothing");
    // A user at the cap can still issue: the retirement makes room.
    let capped = OneTimeTokens::from_arc(store.clone())
        .with_clock(clock.clone())
        .with_max_outstanding(1);
    let again = capped
        .issue(&UserId::from(0_i64), &purpose, Binding::none(), None)
        .await
        .expect("the retired token makes room");
    assert_eq!(again.retired, 1);
    // Once the tokens expire, issuing purges them and succeeds.
    clock.advance(tokens.lifetime(&purpose));
    tokens
        .issue(&UserId::from(9_i64), &purpose, Binding::none(), None)
        .await
        .expect("expired tokens make room");
    assert_eq!(store.len(), 1);
}

// ---------------------------------------------------------------------------------------------
// The OneTimeTokens API

#[tokio::test]
async fn lifetimes_are_the_issue_defaults_and_configurable() {
    let tokens = OneTimeTokens::new(MemoryOneTimeStore::new());
    let minutes = |m: u64| Duration::from_secs(m * 60);
    assert_eq!(tokens.lifetime(&OneTimePurpose::PasswordReset), minutes(30));
    assert_eq!(tokens.lifetime(&OneTimePurpose::EmailSignIn), minutes(15));
    assert_eq!(
        tokens.lifetime(&OneTimePurpose::EmailVerification),
        minutes(24 * 60)
    );
    assert_eq!(tokens.max_outstanding(), 3);
    let tokens = tokens
        .with_lifetime(OneTimePurpose::PasswordReset, minutes(5))
        .with_lifetime(OneTimePurpose::PasswordReset, minutes(10))
        .with_lifetime(OneTimePurpose::EmailSignIn, Duration::ZERO)
        .with_max_outstanding(0);
    assert_eq!(tokens.lifetime(&OneTimePurpose::PasswordReset), minutes(10));
    assert_eq!(
        tokens.lifetime(&OneTimePurpose::EmailSignIn),
        Duration::from_secs(1)
    );
    assert_eq!(tokens.max_outstanding(), 1);

    let clock = ManualClock::default();
    let tokens = OneTimeTokens::new(MemoryOneTimeStore::new())
        .with_clock(clock.clone())
        .with_lifetime(OneTimePurpose::PasswordReset, minutes(10));
    let user = UserId::from(1_i64);
    let reset = OneTimePurpose::PasswordReset;
    let issued = tokens
        .issue(&user, &reset, Binding::none(), None)
        .await
        .expect("issue");
    assert_eq!(issued.expires_at - clock.now_for_test(), minutes(10));
    clock.advance(minutes(10) - Duration::from_millis(1));
    tokens
        .inspect(issued.token.expose_secret(), &reset)
        .await
        .expect("live until its expiry");
    clock.advance(Duration::from_millis(1));
    assert!(matches!(
        tokens
            .consume(issued.token.expose_secret(), &reset, &Binding::none())
            .await,
        Err(OneTimeError::Invalid)
    ));
    assert_eq!(tokens.purge_expired().await.expect("purge"), 1);
}

trait NowForTest {
    fn now_for_test(&self) -> time::OffsetDateTime;
}

impl NowForTest for ManualClock {
    fn now_for_test(&self) -> time::OffsetDateTime {
        let now = keycard::Clock::now(self);
        now.replace_microsecond(now.microsecond()).expect("valid")
    }
}

#[tokio::test]
async fn oversized_input_is_refused_before_the_store() {
    let store = Arc::new(MemoryOneTimeStore::new());
    let tokens = OneTimeTokens::from_arc(store.clone());
    let purpose = OneTimePurpose::EmailChange;
    let long_user = UserId::new("u".repeat(MAX_USER_ID_LEN + 1));
    assert!(matches!(
        tokens
            .issue(&long_user, &purpose, Binding::none(), None)
            .await,
        Err(OneTimeError::UserIdTooLong {
            max: MAX_USER_ID_LEN
        })
    ));
    let payload = "p".repeat(MAX_PAYLOAD_LEN + 1);
    assert!(matches!(
        tokens
            .issue(
                &UserId::from(1_i64),
                &purpose,
                Binding::none(),
                Some(&payload)
            )
            .await,
        Err(OneTimeError::PayloadTooLong {
            max: MAX_PAYLOAD_LEN
        })
    ));
    assert!(store.is_empty());
    let at_limit = "p".repeat(MAX_PAYLOAD_LEN);
    let user = UserId::new("u".repeat(MAX_USER_ID_LEN));
    let issued = tokens
        .issue(&user, &purpose, Binding::none(), Some(&at_limit))
        .await
        .expect("at the limits");
    let used = tokens
        .consume(issued.token.expose_secret(), &purpose, &Binding::none())
        .await
        .expect("consume");
    assert_eq!(used.payload.as_deref(), Some(at_limit.as_str()));
    assert_eq!(used.user_id, user);
}

#[tokio::test]
async fn any_string_is_refused_without_a_panic() {
    let tokens = OneTimeTokens::new(MemoryOneTimeStore::new());
    let issued = tokens
        .issue(
            &UserId::from(1_i64),
            &OneTimePurpose::PasswordReset,
            Binding::none(),
            None,
        )
        .await
        .expect("issue");
    let real = issued.token.expose_secret();
    let session = keycard::TokenFormat::prefixed("kcot_")
        .expect("valid")
        .generate()
        .expect("rng");
    let huge = "k".repeat(1 << 20);
    for s in [
        "",
        "kcot_",
        &real[..real.len() - 1],
        &format!("{real} "),
        &real.to_uppercase(),
        session.expose_secret(),
        &huge,
        "\u{0}\u{feff}é🔑",
    ] {
        for purpose in [OneTimePurpose::PasswordReset, OneTimePurpose::EmailSignIn] {
            assert!(matches!(
                tokens.inspect(s, &purpose).await,
                Err(OneTimeError::Invalid)
            ));
            assert!(matches!(
                tokens.consume(s, &purpose, &Binding::none()).await,
                Err(OneTimeError::Invalid)
            ));
        }
    }
    // The real one is still there.
    tokens
        .consume(real, &OneTimePurpose::PasswordReset, &Binding::none())
        .await
        .expect("untouched by the probes");
}

#[tokio::test]
async fn issued_tokens_redact_their_secret_and_errors_say_what_to_do() {
    let tokens = OneTimeTokens::new(MemoryOneTimeStore::new());
    let issued = tokens
        .issue(
            &UserId::from(1_i64),
            &OneTimePurpose::EmailSignIn,
            Binding::none(),
            None,
        )
        .await
        .expect("issue");
    let secret = &issued.token.expose_secret()[28..71];
    let dbg = format!("{issued:?}");
    assert!(!dbg.contains(secret), "{dbg}");
    assert!(dbg.contains("[redacted]"), "{dbg}");
    for e in [OneTimeError::Invalid, OneTimeError::Stale] {
        assert!(e.to_string().contains("ask for a new one"), "{e}");
    }
}

#[tokio::test]
async fn consume_for_user_binds_to_the_account_as_it_is_now() {
    let users = MemoryUserStore::<UserRecord>::new();
    users
        .insert(UserRecord::new(1_i64, "ann@example.com", "$hash-1"))
        .expect("new user");
    users
        .insert(UserRecord::new(2_i64, "bob@example.com", "$hash-1"))
        .expect("new user");
    let tokens = OneTimeTokens::new(MemoryOneTimeStore::new());
    let reset = OneTimePurpose::PasswordReset;
    let verify = OneTimePurpose::EmailVerification;
    let ann = users
        .find_by_id_for_test(&UserId::from(1_i64))
        .await
        .expect("ann");
    let issue = |purpose: OneTimePurpose, user: UserRecord| {
        let tokens = tokens.clone();
        async move {
            tokens
                .issue(&user.id, &purpose, Binding::for_user(&purpose, &user), None)
                .await
                .expect("issue")
                .token
                .expose_secret()
                .to_owned()
        }
    };
    let t = issue(reset.clone(), ann.clone()).await;
    let (consumed, user) = tokens
        .consume_for_user(&t, &reset, &users)
        .await
        .expect("consume");
    assert_eq!(
        (consumed.user_id, user.email),
        (ann.id.clone(), ann.email.clone())
    );

    // Reset tokens die with a password change; verification tokens do not.
    let reset_token = issue(reset.clone(), ann.clone()).await;
    let verify_token = issue(verify.clone(), ann.clone()).await;
    users.set_password_hash_for_test(&ann.id, "$hash-2").await;
    assert!(matches!(
        tokens.consume_for_user(&reset_token, &reset, &users).await,
        Err(OneTimeError::Stale)
    ));
    tokens
        .consume_for_user(&verify_token, &verify, &users)
        .await
        .expect("verification survives a password change");

    // A token of a deleted account is refused and spent.
    let bob = users
        .find_by_id_for_test(&UserId::from(2_i64))
        .await
        .expect("bob");
    let bob_token = issue(reset.clone(), bob.clone()).await;
    let others = MemoryUserStore::<UserRecord>::new();
    assert!(matches!(
        tokens.consume_for_user(&bob_token, &reset, &others).await,
        Err(OneTimeError::Invalid)
    ));
    assert!(matches!(
        tokens.consume_for_user(&bob_token, &reset, &users).await,
        Err(OneTimeError::Invalid)
    ));
}

/// Test-only conveniences over the user store trait.
trait UserStoreExt {
    async fn find_by_id_for_test(&self, id: &UserId) -> Option<UserRecord>;
    async fn set_password_hash_for_test(&self, id: &UserId, phc: &str);
}

impl UserStoreExt for MemoryUserStore<UserRecord> {
    async fn find_by_id_for_test(&self, id: &UserId) -> Option<UserRecord> {
        keycard::UserStore::find_by_id(self, id)
            .await
            .expect("memory")
    }
    async fn set_password_hash_for_test(&self, id: &UserId, phc: &str) {
        keycard::UserStore::set_password_hash(self, id, phc)
            .await
            .expect("memory");
    }
}

#[tokio::test]
async fn a_successful_reset_can_retire_every_other_reset_token() {
    let tokens = OneTimeTokens::new(MemoryOneTimeStore::new());
    let user = UserId::from(1_i64);
    let reset = OneTimePurpose::PasswordReset;
    let mut issued = Vec::new();
    for _ in 0..3 {
        issued.push(
            tokens
                .issue(&user, &reset, Binding::none(), None)
                .await
                .expect("issue"),
        );
    }
    // A fourth retires the oldest.
    let fourth = tokens
        .issue(&user, &reset, Binding::none(), None)
        .await
        .expect("issue");
    assert_eq!(fourth.retired, 1);
    assert!(matches!(
        tokens
            .consume(issued[0].token.expose_secret(), &reset, &Binding::none())
            .await,
        Err(OneTimeError::Invalid)
    ));
    tokens
        .consume(issued[1].token.expose_secret(), &reset, &Binding::none())
        .await
        .expect("the reset");
    assert_eq!(tokens.retire_all(&user, &reset).await.expect("retire"), 2);
    for t in [&issued[2], &fourth] {
        assert!(matches!(
            tokens
                .consume(t.token.expose_secret(), &reset, &Binding::none())
                .await,
            Err(OneTimeError::Invalid)
        ));
    }
}

// ---------------------------------------------------------------------------------------------
// No plain text at rest

/// Checks a stored row, column by column: neither the token, nor its secret (as text or as
/// raw bytes) appears anywhere, and the stored digest is SHA-256 of the prefix and secret.
#[cfg(any(
    feature = "sqlite",
    feature = "postgres",
    feature = "mysql",
    feature = "redis"
))]
fn assert_no_plain_text(columns: &[Vec<u8>], token: &str) {
    use base64::Engine as _;
    use sha2::Digest as _;
    let secret_text = &token[28..71];
    let secret = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(secret_text)
        .expect("the secret is base64url");
    let contains = |hay: &[u8], needle: &[u8]| hay.windows(needle.len()).any(|w| w == needle);
    assert!(!columns.is_empty(), "the row was not found");
    for (i, column) in columns.iter().enumerate() {
        for (needle, what) in [
            (token.as_bytes(), "the token"),
            (secret_text.as_bytes(), "the secret as text"),
            (secret.as_slice(), "the secret's bytes"),
        ] {
            assert!(
                !contains(column, needle),
                "column {i} of the stored row holds {what}"
            );
        }
    }
    let digest = sha2::Sha256::new()
        .chain_update(b"kcot_")
        .chain_update(&secret)
        .finalize();
    assert!(
        columns.iter().any(|c| c.as_slice() == digest.as_slice()),
        "the row keeps the SHA-256 digest of the secret"
    );
}

/// Issues a token through `tokens` and returns its text.
#[cfg(any(
    feature = "sqlite",
    feature = "postgres",
    feature = "mysql",
    feature = "redis"
))]
async fn issue_one(tokens: &OneTimeTokens, user: &str) -> String {
    tokens
        .issue(
            &UserId::new(user),
            &OneTimePurpose::EmailChange,
            Binding::of(&[b"state"]),
            Some("new@example.com"),
        )
        .await
        .expect("issue")
        .token
        .expose_secret()
        .to_owned()
}

// ---------------------------------------------------------------------------------------------
// SQLite

#[cfg(feature = "sqlite")]
mod sqlite {
    use super::*;
    use keycard::sqlite::Sqlite;

    async fn open(path: &std::path::Path) -> Sqlite {
        let db = Sqlite::open(path).await.expect("open");
        db.migrate().await.expect("migrate");
        db
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn sqlite_store_keeps_the_contract() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = open(&dir.path().join("ott.db")).await;
        suite::run_all(Arc::new(db.one_time_store())).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn two_handles_on_one_file_let_exactly_one_consume_win() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("ott.db");
        let a = open(&path).await;
        let b = open(&path).await;
        suite::two_instances(Arc::new(a.one_time_store()), Arc::new(b.one_time_store())).await;
    }

    #[tokio::test]
    async fn a_renamed_table_works_and_bad_names_are_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = open(&dir.path().join("ott.db")).await;
        assert!(db.one_time_store().with_table("x; DROP TABLE y").is_err());
        let store = db.one_time_store().with_table("my_tokens").expect("valid");
        store.migrate().await.expect("migrate");
        store.migrate().await.expect("idempotent");
        suite::issue_find_consume_once(&store).await;
    }

    #[tokio::test]
    async fn the_file_holds_no_token_in_plain_text() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("ott.db");
        let db = open(&path).await;
        let tokens = OneTimeTokens::new(db.one_time_store());
        let token = issue_one(&tokens, "plain-text-check").await;
        let conn = keycard::sqlite::driver::Connection::open(&path).expect("open");
        let columns: Vec<Vec<u8>> = conn
            .query_row(
                "SELECT CAST(id AS BLOB), CAST(user_id AS BLOB), CAST(purpose AS BLOB), \
                 secret_hash, binding, CAST(payload AS BLOB), CAST(created_at AS BLOB), \
                 CAST(expires_at AS BLOB) FROM keycard_one_time_tokens",
                [],
                |row| (0..8).map(|i| row.get::<_, Vec<u8>>(i)).collect(),
            )
            .expect("one row");
        assert_no_plain_text(&columns, &token);
        // The whole file, journal included, does not hold it either.
        drop(conn);
        for entry in std::fs::read_dir(dir.path()).expect("dir") {
            let bytes = std::fs::read(entry.expect("entry").path()).expect("read");
            assert!(
                !bytes.windows(43).any(|w| w == &token.as_bytes()[28..71]),
                "a database file holds the secret"
            );
        }
    }
}

/// Runs `cleanup` on a thread with a runtime of its own (a `Drop` runs inside the test's
/// runtime, which cannot be blocked on).
#[cfg(any(feature = "postgres", feature = "mysql"))]
fn clean_up<F, Fut>(what: &str, cleanup: F)
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = Result<(), String>>,
{
    let done = std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?
            .block_on(cleanup())
    })
    .join();
    match done {
        Ok(Ok(())) => {}
        other => eprintln!("could not clean up {what}: {other:?}"),
    }
}

// ---------------------------------------------------------------------------------------------
// PostgreSQL

#[cfg(feature = "postgres")]
mod postgres {
    use super::*;
    use keycard::postgres::{driver as sqlx, Postgres, PostgresOneTimeStore};

    const ENV: &str = "KEYCARD_POSTGRES_URL";

    /// A fresh schema, dropped with everything in it on drop.
    struct Schema {
        url: String,
        name: String,
    }

    impl Schema {
        async fn new() -> Self {
            let url = std::env::var(ENV)
                .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned());
            if let Err(e) = Postgres::connect(&url).await {
                unreachable("PostgreSQL", &url, ENV, &e);
            }
            Self {
                url,
                name: unique("keycard_ott"),
            }
        }

        /// A store on a pool of its own over `schema.one_time`, migrated.
        async fn store(&self) -> PostgresOneTimeStore {
            let db = Postgres::connect(&self.url)
                .await
                .unwrap_or_else(|e| unreachable("PostgreSQL", &self.url, ENV, &e));
            let store = db
                .one_time_store()
                .with_table(&format!("{}.one_time", self.name))
                .expect("valid table name");
            store.migrate().await.expect("migrate");
            store
        }
    }

    impl Drop for Schema {
        fn drop(&mut self) {
            let url = self.url.clone();
            let sql = format!("DROP SCHEMA IF EXISTS \"{}\" CASCADE", self.name);
            clean_up(&self.name, move || async move {
                let pool = sqlx::postgres::PgPool::connect(&url)
                    .await
                    .map_err(|e| e.to_string())?;
                sqlx::raw_sql(&sql)
                    .execute(&pool)
                    .await
                    .map_err(|e| e.to_string())?;
                pool.close().await;
                Ok(())
            });
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn postgres_store_keeps_the_contract() {
        let schema = Schema::new().await;
        suite::run_all(Arc::new(schema.store().await)).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn two_pools_on_one_database_let_exactly_one_consume_win() {
        let schema = Schema::new().await;
        let (a, b) = (schema.store().await, schema.store().await);
        suite::two_instances(Arc::new(a), Arc::new(b)).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_issues_through_two_pools_keep_the_cap() {
        let schema = Schema::new().await;
        let a = OneTimeTokens::new(schema.store().await);
        let b = OneTimeTokens::new(schema.store().await);
        let user = UserId::new("capped");
        let purpose = OneTimePurpose::PasswordReset;
        let issues = (0..20).map(|i| {
            let tokens = if i % 2 == 0 { a.clone() } else { b.clone() };
            let (user, purpose) = (user.clone(), purpose.clone());
            tokio::spawn(async move {
                tokens
                    .issue(&user, &purpose, Binding::none(), None)
                    .await
                    .expect("issue")
                    .token
                    .expose_secret()
                    .to_owned()
            })
        });
        let mut live = 0;
        let mut tokens = Vec::new();
        for issue in issues {
            tokens.push(issue.await.expect("task"));
        }
        for t in &tokens {
            live += usize::from(a.inspect(t, &purpose).await.is_ok());
        }
        assert_eq!(
            live, 3,
            "20 concurrent issues must leave exactly the cap outstanding"
        );
    }

    #[tokio::test]
    async fn the_table_holds_no_token_in_plain_text() {
        let schema = Schema::new().await;
        let store = schema.store().await;
        let pool = store.pool().clone();
        let token = issue_one(&OneTimeTokens::new(store), "plain-text-check").await;
        let row = sqlx::query(&format!(
            "SELECT convert_to(id, 'UTF8'), convert_to(user_id, 'UTF8'), \
                 convert_to(purpose, 'UTF8'), secret_hash, binding, \
                 convert_to(payload, 'UTF8'), convert_to(created_at::text, 'UTF8'), \
                 convert_to(expires_at::text, 'UTF8') FROM \"{}\".one_time",
            schema.name
        ))
        .fetch_one(&pool)
        .await
        .expect("one row");
        let columns: Vec<Vec<u8>> = (0..8)
            .map(|i| sqlx::Row::try_get(&row, i).expect("bytes"))
            .collect();
        assert_no_plain_text(&columns, &token);
    }
}

// ---------------------------------------------------------------------------------------------
// MySQL / MariaDB

#[cfg(feature = "mysql")]
mod mysql {
    use super::*;
    use keycard::mysql::{driver as sqlx, Mysql, MysqlOneTimeStore};

    const ENV: &str = "KEYCARD_MYSQL_URL";

    /// A table of one test, dropped (with its migration records) on drop.
    struct Table {
        url: String,
        name: String,
    }

    impl Table {
        async fn new() -> Self {
            let url =
                std::env::var(ENV).unwrap_or_else(|_| "mysql://root@127.0.0.1:3306/test".into());
            match Mysql::connect(&url).await {
                Ok(db) => {
                    if let Err(e) = db.ping().await {
                        unreachable("MySQL / MariaDB", &url, ENV, &e);
                    }
                }
                Err(e) => unreachable("MySQL / MariaDB", &url, ENV, &e),
            }
            Self {
                url,
                name: unique("kc_ott"),
            }
        }

        /// A store on a pool of its own over this table, migrated.
        async fn store(&self) -> MysqlOneTimeStore {
            let db = Mysql::connect(&self.url)
                .await
                .unwrap_or_else(|e| unreachable("MySQL / MariaDB", &self.url, ENV, &e));
            let store = db.one_time_store().with_table(&self.name).expect("valid");
            store.migrate().await.expect("migrate");
            store
        }
    }

    impl Drop for Table {
        fn drop(&mut self) {
            let (url, name) = (self.url.clone(), self.name.clone());
            clean_up(&self.name, move || async move {
                let pool = sqlx::mysql::MySqlPool::connect(&url)
                    .await
                    .map_err(|e| e.to_string())?;
                sqlx::raw_sql(&format!("DROP TABLE IF EXISTS `{name}`"))
                    .execute(&pool)
                    .await
                    .map_err(|e| e.to_string())?;
                sqlx::query("DELETE FROM keycard_migrations WHERE target = ?")
                    .bind(&name)
                    .execute(&pool)
                    .await
                    .map_err(|e| e.to_string())?;
                pool.close().await;
                Ok(())
            });
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn mysql_store_keeps_the_contract() {
        let table = Table::new().await;
        suite::run_all(Arc::new(table.store().await)).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn two_pools_on_one_database_let_exactly_one_consume_win() {
        let table = Table::new().await;
        let (a, b) = (table.store().await, table.store().await);
        suite::two_instances(Arc::new(a), Arc::new(b)).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_issues_through_two_pools_keep_the_cap() {
        let table = Table::new().await;
        let a = OneTimeTokens::new(table.store().await);
        let b = OneTimeTokens::new(table.store().await);
        let user = UserId::new("capped");
        let purpose = OneTimePurpose::PasswordReset;
        let issues: Vec<_> = (0..20)
            .map(|i| {
                let tokens = if i % 2 == 0 { a.clone() } else { b.clone() };
                let (user, purpose) = (user.clone(), purpose.clone());
                tokio::spawn(async move {
                    tokens
                        .issue(&user, &purpose, Binding::none(), None)
                        .await
                        .expect("issue")
                        .token
                        .expose_secret()
                        .to_owned()
                })
            })
            .collect();
        let mut tokens = Vec::new();
        for issue in issues {
            tokens.push(issue.await.expect("task"));
        }
        let mut live = 0;
        for t in &tokens {
            live += usize::from(a.inspect(t, &purpose).await.is_ok());
        }
        assert_eq!(
            live, 3,
            "20 concurrent issues must leave exactly the cap outstanding"
        );
    }

    #[tokio::test]
    async fn the_table_holds_no_token_in_plain_text() {
        let table = Table::new().await;
        let store = table.store().await;
        let pool = store.pool().clone();
        let token = issue_one(&OneTimeTokens::new(store), "plain-text-check").await;
        let row = sqlx::query(&format!(
            "SELECT id, user_id, purpose, secret_hash, binding, CAST(payload AS BINARY), \
             CAST(created_at AS BINARY), CAST(expires_at AS BINARY) FROM `{}`",
            table.name
        ))
        .fetch_one(&pool)
        .await
        .expect("one row");
        let columns: Vec<Vec<u8>> = (0..8)
            .map(|i| sqlx::Row::try_get(&row, i).expect("bytes"))
            .collect();
        assert_no_plain_text(&columns, &token);
    }
}

// ---------------------------------------------------------------------------------------------
// Redis and Redis Cluster

#[cfg(feature = "redis")]
mod redis {
    use super::*;
    use keycard::redis::driver::{self as redis, AsyncCommands};
    use keycard::redis::{Redis, RedisOneTimeStore};

    const ENV: &str = "KEYCARD_REDIS_URL";
    const CLUSTER_ENV: &str = "KEYCARD_REDIS_CLUSTER_URLS";

    fn url() -> String {
        std::env::var(ENV).unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
    }

    fn cluster_urls() -> Vec<String> {
        std::env::var(CLUSTER_ENV)
            .unwrap_or_else(|_| {
                "redis://127.0.0.1:7000,redis://127.0.0.1:7001,redis://127.0.0.1:7002".into()
            })
            .split(',')
            .map(|u| u.trim().to_owned())
            .filter(|u| !u.is_empty())
            .collect()
    }

    /// A key prefix of one test; its keys are deleted from every node on drop.
    struct Prefix {
        nodes: Vec<String>,
        prefix: String,
        cluster: bool,
    }

    impl Prefix {
        async fn standalone() -> Self {
            let url = url();
            match Redis::connect(&url).await {
                Ok(db) => {
                    if let Err(e) = db.token_store().ping().await {
                        unreachable("Redis", &url, ENV, &e);
                    }
                }
                Err(e) => unreachable("Redis", &url, ENV, &e),
            }
            Self {
                nodes: vec![url],
                prefix: format!("{}:", unique("kc_ott")),
                cluster: false,
            }
        }

        async fn cluster() -> Self {
            let urls = cluster_urls();
            if let Err(e) = Redis::connect_cluster(&urls).await {
                unreachable("Redis Cluster", &urls.join(","), CLUSTER_ENV, &e);
            }
            Self {
                nodes: urls,
                prefix: format!("{}:", unique("kc_ott")),
                cluster: true,
            }
        }

        /// A store over a connection of its own.
        async fn store(&self) -> RedisOneTimeStore {
            let db = if self.cluster {
                Redis::connect_cluster(&self.nodes).await
            } else {
                Redis::connect(&self.nodes[0]).await
            };
            let db = db.unwrap_or_else(|e| unreachable("Redis", &self.nodes.join(","), ENV, &e));
            assert_eq!(db.is_cluster(), self.cluster);
            db.one_time_store().with_key_prefix(self.prefix.clone())
        }

        /// Every key under the prefix, with the node that holds it.
        fn keys(&self) -> Vec<(String, String)> {
            let mut found = Vec::new();
            for node in &self.nodes {
                let Ok(mut conn) =
                    redis::Client::open(node.as_str()).and_then(|c| c.get_connection())
                else {
                    continue;
                };
                let keys: Vec<String> = redis::cmd("KEYS")
                    .arg(format!("{}*", self.prefix))
                    .query(&mut conn)
                    .unwrap_or_default();
                found.extend(keys.into_iter().map(|k| (node.clone(), k)));
            }
            found
        }
    }

    impl Drop for Prefix {
        fn drop(&mut self) {
            for (node, key) in self.keys() {
                if let Ok(mut conn) =
                    redis::Client::open(node.as_str()).and_then(|c| c.get_connection())
                {
                    let _ = redis::cmd("DEL").arg(&key).query::<()>(&mut conn);
                }
            }
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn redis_store_keeps_the_contract() {
        let ns = Prefix::standalone().await;
        let store = ns.store().await;
        assert!(store.expires_natively());
        suite::run_all(Arc::new(store)).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn two_connections_let_exactly_one_consume_win() {
        let ns = Prefix::standalone().await;
        suite::two_instances(Arc::new(ns.store().await), Arc::new(ns.store().await)).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn cluster_store_keeps_the_contract() {
        let ns = Prefix::cluster().await;
        suite::run_all(Arc::new(ns.store().await)).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn two_cluster_connections_let_exactly_one_consume_win() {
        let ns = Prefix::cluster().await;
        suite::two_instances(Arc::new(ns.store().await), Arc::new(ns.store().await)).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn a_users_keys_share_one_slot_and_tokens_expire_natively() {
        let ns = Prefix::cluster().await;
        let store = ns.store().await;
        let tokens = OneTimeTokens::new(store.clone());
        for user in ["ann", "bob"] {
            for purpose in [
                OneTimePurpose::PasswordReset,
                OneTimePurpose::EmailVerification,
            ] {
                tokens
                    .issue(&UserId::new(user), &purpose, Binding::none(), None)
                    .await
                    .expect("issue");
            }
        }
        let keys = ns.keys();
        assert_eq!(
            keys.len(),
            8,
            "a token and an index per user and purpose: {keys:?}"
        );
        let mut conn = Redis::connect_cluster(&ns.nodes)
            .await
            .expect("cluster")
            .connection();
        for user in ["ann", "bob"] {
            let mut slots = std::collections::HashSet::new();
            for (_, key) in keys.iter().filter(|(_, k)| {
                k.ends_with(&format!(":{user}"))
                    || k.contains(&format!(
                        "{{{:04x}}}:t:",
                        keycard::one_time::shard_of(&UserId::new(user))
                    ))
            }) {
                let slot: i64 = redis::cmd("CLUSTER")
                    .arg("KEYSLOT")
                    .arg(key)
                    .query_async(&mut conn)
                    .await
                    .expect("keyslot");
                slots.insert(slot);
            }
            assert_eq!(slots.len(), 1, "{user}'s keys must share one hash slot");
        }
        // Native expiry: the token key carries the token's expiry as a TTL.
        let (_, token_key) = keys
            .iter()
            .find(|(_, k)| k.contains(":t:"))
            .expect("a token key");
        let ttl: i64 = conn.pttl(token_key).await.expect("pttl");
        assert!(ttl > 0 && ttl <= 24 * 3600 * 1000, "ttl {ttl}");
    }

    #[tokio::test]
    async fn the_hash_holds_no_token_in_plain_text() {
        let ns = Prefix::standalone().await;
        let tokens = OneTimeTokens::new(ns.store().await);
        let token = issue_one(&tokens, "plain-text-check").await;
        let keys = ns.keys();
        let (_, key) = keys
            .iter()
            .find(|(_, k)| k.contains(":t:"))
            .expect("the token key");
        assert!(!key.contains(&token[28..71]), "the key names the secret");
        let mut conn = redis::Client::open(url().as_str())
            .and_then(|c| c.get_connection())
            .expect("connect");
        let fields: Vec<Vec<u8>> = redis::cmd("HGETALL")
            .arg(key)
            .query(&mut conn)
            .expect("hgetall");
        assert_no_plain_text(&fields, &token);
        for (_, key) in &keys {
            assert!(!key.contains(&token[28..71]), "a key names the secret");
        }
    }
}
