//! Second factor stores: the conformance suite on every backend that keeps them (memory,
//! SQLite, PostgreSQL, MySQL / MariaDB), two instances over one store, the bounds the SQL
//! stores enforce, renamed tables, and stores that break the contract being caught.
//!
//! The server-backed tests read `KEYCARD_POSTGRES_URL` and `KEYCARD_MYSQL_URL` (defaults: the
//! loopback services of `.ci/run`), each in a namespace of its own (schema, table suffix)
//! removed afterwards. They fail with instructions, never skip, when a server is down.

use std::sync::Arc;

use keycard::conformance::second_factors as suite;
use keycard::mfa::{MemorySecondFactorStore, RecoveryCodeDigest, SecondFactorStore, TotpRecord};
use keycard::{StoreError, UserId};
use time::OffsetDateTime;

// ---------------------------------------------------------------------------------------------
// Memory

#[tokio::test]
async fn memory_store_keeps_the_contract() {
    suite::run_all(&MemorySecondFactorStore::new()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn memory_store_keeps_the_contract_through_an_arc_and_a_box() {
    let shared: Arc<dyn SecondFactorStore> = Arc::new(MemorySecondFactorStore::new());
    suite::run_all(&shared).await;
    let boxed: Box<dyn SecondFactorStore> = Box::new(MemorySecondFactorStore::new());
    keycard::conformance::second_factor_store(&boxed).await;
}

/// A store that breaks one promise, to see the suite catch it.
#[derive(Debug, Default)]
struct Broken {
    inner: MemorySecondFactorStore,
    /// `use_totp_step` also accepts the last step again (a replayed code).
    accept_replays: bool,
    /// `begin_totp` replaces a confirmed factor too.
    overwrite_confirmed: bool,
}

#[async_trait::async_trait]
impl SecondFactorStore for Broken {
    async fn totp(&self, user: &UserId) -> Result<Option<TotpRecord>, StoreError> {
        self.inner.totp(user).await
    }
    async fn begin_totp(&self, record: &TotpRecord) -> Result<bool, StoreError> {
        if self.overwrite_confirmed {
            self.inner.remove_totp(&record.user_id).await?;
        }
        self.inner.begin_totp(record).await
    }
    async fn confirm_totp(
        &self,
        user: &UserId,
        sealed_secret: &[u8],
        step: u64,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        self.inner
            .confirm_totp(user, sealed_secret, step, now)
            .await
    }
    async fn use_totp_step(&self, user: &UserId, step: u64) -> Result<bool, StoreError> {
        if self.inner.use_totp_step(user, step).await? {
            return Ok(true);
        }
        let last = self.inner.totp(user).await?.and_then(|t| t.last_step);
        Ok(self.accept_replays && last == Some(step))
    }
    async fn reseal_totp(&self, user: &UserId, old: &[u8], new: &[u8]) -> Result<bool, StoreError> {
        self.inner.reseal_totp(user, old, new).await
    }
    async fn remove_totp(&self, user: &UserId) -> Result<bool, StoreError> {
        self.inner.remove_totp(user).await
    }
    async fn replace_recovery_codes(
        &self,
        user: &UserId,
        codes: &[RecoveryCodeDigest],
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        self.inner.replace_recovery_codes(user, codes, now).await
    }
    async fn use_recovery_code(
        &self,
        user: &UserId,
        code: &RecoveryCodeDigest,
    ) -> Result<bool, StoreError> {
        self.inner.use_recovery_code(user, code).await
    }
    async fn recovery_codes_left(&self, user: &UserId) -> Result<u32, StoreError> {
        self.inner.recovery_codes_left(user).await
    }
}

#[tokio::test]
#[should_panic(expected = "must return false")]
async fn a_store_accepting_a_replayed_step_is_caught() {
    let store = Broken {
        accept_replays: true,
        ..Broken::default()
    };
    suite::time_steps_are_compare_and_set(&store).await;
}

#[tokio::test]
#[should_panic(expected = "exactly one of")]
async fn a_store_accepting_a_replayed_step_is_caught_under_concurrency() {
    let store = Broken {
        accept_replays: true,
        ..Broken::default()
    };
    suite::two_instances(&store, &store).await;
}

#[tokio::test]
#[should_panic(expected = "confirmed factor")]
async fn a_store_overwriting_a_confirmed_factor_is_caught() {
    let store = Broken {
        overwrite_confirmed: true,
        ..Broken::default()
    };
    suite::enrolment_is_pending_until_confirmed(&store).await;
}

#[tokio::test]
async fn an_honest_wrapper_passes() {
    suite::run_all(&Broken::default()).await;
}

// ---------------------------------------------------------------------------------------------
// What the SQL stores add: bounds

/// A sealed secret over `TotpRecord::MAX_SEALED_LEN` bytes, more than 64 codes and a step
/// beyond `i64::MAX` are refused with an error, writing nothing; a digest given twice is
/// stored once.
#[cfg(any(feature = "sqlite", feature = "postgres", feature = "mysql"))]
async fn bounds_are_refused_and_nothing_is_written(store: &dyn SecondFactorStore) {
    let now = OffsetDateTime::now_utc();
    let who = UserId::new(format!("bounds-{:016x}", rand::random::<u64>()));
    let max = TotpRecord::MAX_SEALED_LEN;
    let long = TotpRecord::pending(who.clone(), vec![7; max + 1], now);
    assert!(matches!(
        store.begin_totp(&long).await,
        Err(StoreError::Backend(_))
    ));
    assert_eq!(store.totp(&who).await.expect("totp"), None);
    let fits = TotpRecord::pending(who.clone(), vec![7; max], now);
    assert!(store.begin_totp(&fits).await.expect("at the bound"));
    assert_eq!(store.totp(&who).await.expect("totp"), Some(fits.clone()));
    assert!(matches!(
        store
            .reseal_totp(&who, &fits.sealed_secret, &[8; 256])
            .await,
        Err(StoreError::Backend(_))
    ));
    assert_eq!(store.totp(&who).await.expect("totp"), Some(fits.clone()));
    assert!(store
        .confirm_totp(&who, &fits.sealed_secret, 5, now)
        .await
        .expect("confirm"));
    assert!(matches!(
        store.use_totp_step(&who, u64::MAX).await,
        Err(StoreError::Backend(_))
    ));
    assert!(store.use_totp_step(&who, 6).await.expect("still works"));

    let codes = |n: usize| -> Vec<RecoveryCodeDigest> {
        (0..n)
            .map(|_| RecoveryCodeDigest::from_bytes(rand::random()))
            .collect()
    };
    let three = codes(3);
    store
        .replace_recovery_codes(&who, &three, now)
        .await
        .expect("replace");
    assert!(matches!(
        store.replace_recovery_codes(&who, &codes(65), now).await,
        Err(StoreError::Backend(_))
    ));
    assert_eq!(
        store.recovery_codes_left(&who).await.expect("left"),
        3,
        "a refused replacement must keep the old set"
    );
    store
        .replace_recovery_codes(&who, &codes(64), now)
        .await
        .expect("at the bound");
    assert_eq!(store.recovery_codes_left(&who).await.expect("left"), 64);
    let twice = [three[0], three[1], three[0]];
    store
        .replace_recovery_codes(&who, &twice, now)
        .await
        .expect("a digest given twice");
    assert_eq!(store.recovery_codes_left(&who).await.expect("left"), 2);
    assert!(store.use_recovery_code(&who, &three[0]).await.expect("use"));
    assert!(!store.use_recovery_code(&who, &three[0]).await.expect("use"));
    store.remove_totp(&who).await.expect("cleanup");
    store
        .replace_recovery_codes(&who, &[], now)
        .await
        .expect("cleanup");
}

// ---------------------------------------------------------------------------------------------
// SQLite

#[cfg(feature = "sqlite")]
mod sqlite {
    use super::*;
    use keycard::sqlite::driver::Connection;
    use keycard::sqlite::{Sqlite, SqliteSecondFactorStore};

    async fn open(path: &std::path::Path) -> Sqlite {
        let db = Sqlite::open(path).await.expect("open");
        db.migrate().await.expect("migrate");
        db
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn sqlite_store_keeps_the_contract() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = open(&dir.path().join("2fa.db")).await;
        suite::run_all(&db.second_factor_store()).await;
        bounds_are_refused_and_nothing_is_written(&db.second_factor_store()).await;
    }

    /// Enrols a user through the authenticator on SQLite, then reads every byte of the
    /// database (and its write-ahead log): neither the TOTP secret (raw or base32) nor any
    /// recovery code (as shown, or its raw bytes as base32) is there.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_database_file_yields_no_secret_and_no_recovery_code() {
        use keycard::mfa::{KeyId, SecondFactors, SecretBox, SecretKey, TotpSecret};
        use keycard::{Argon2Hasher, Authenticator, ClientInfo};
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("at-rest.db");
        let db = open(&path).await;
        let auth = Authenticator::builder(db.user_store(), db.token_store())
            .password_hasher(Argon2Hasher::insecure_for_tests())
            .second_factors(SecondFactors::new(
                db.second_factor_store(),
                db.one_time_store(),
                SecretBox::new(KeyId::new(1), SecretKey::generate().expect("os rng")),
            ))
            .build();
        let user = auth
            .register(
                "ann@example.com",
                "correct horse battery staple",
                &ClientInfo::none(),
            )
            .await
            .expect("register");
        let login = auth
            .login(
                "ann@example.com",
                "correct horse battery staple",
                ClientInfo::none(),
            )
            .await
            .expect("login");
        let enrolment = auth.begin_totp(&login.session).await.expect("begin");
        let code = auth.current_totp_code(&enrolment).expect("code");
        let codes = auth
            .confirm_totp(&login.session, &code, &ClientInfo::none())
            .await
            .expect("confirm");
        drop((auth, db, user));
        let mut bytes = std::fs::read(&path).expect("the database file");
        for extra in ["at-rest.db-wal", "at-rest.db-journal"] {
            if let Ok(more) = std::fs::read(dir.path().join(extra)) {
                bytes.extend(more);
            }
        }
        let contains = |needle: &[u8]| bytes.windows(needle.len()).any(|w| w == needle);
        let secret = TotpSecret::from_base32(&enrolment.secret).expect("base32");
        assert!(
            !contains(secret.as_bytes()),
            "the raw TOTP secret is in the file"
        );
        assert!(
            !contains(enrolment.secret.as_bytes()),
            "the base32 secret is in the file"
        );
        assert!(!contains(enrolment.secret.to_lowercase().as_bytes()));
        for code in codes.codes() {
            let shown = code.as_str();
            assert!(
                !contains(shown.as_bytes()),
                "a recovery code is in the file"
            );
            let bare = shown.replace('-', "");
            assert!(!contains(bare.as_bytes()));
            assert!(!contains(bare.to_uppercase().as_bytes()));
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn two_handles_on_one_file_let_exactly_one_use_win() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("2fa.db");
        let (a, b) = (open(&path).await, open(&path).await);
        suite::two_instances(&a.second_factor_store(), &b.second_factor_store()).await;
    }

    #[tokio::test]
    async fn renamed_tables_work_and_bad_names_are_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("2fa.db");
        let db = Sqlite::open(&path).await.expect("open");
        let store = || db.second_factor_store();
        for (totp, codes) in [
            ("x; DROP TABLE y", "codes"),
            ("totp", "1codes"),
            ("my_2fa", "MY_2FA"),
            ("a.b", "c"),
        ] {
            assert!(store().with_tables(totp, codes).is_err(), "{totp}, {codes}");
        }
        let renamed = store()
            .with_tables("my_totp", "my_codes")
            .expect("valid names");
        renamed.migrate().await.expect("migrate");
        renamed.migrate().await.expect("idempotent");
        suite::enrolment_is_pending_until_confirmed(&renamed).await;
        suite::recovery_codes_work_once(&renamed).await;
        let conn = Connection::open(&path).expect("open");
        let versions: Vec<(String, i64)> = conn
            .prepare("SELECT target, version FROM keycard_migrations ORDER BY target")
            .and_then(|mut st| {
                st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
                    .collect::<Result<Vec<_>, _>>()
            })
            .expect("versions");
        assert_eq!(
            versions,
            [("my_totp".to_owned(), 1)],
            "both tables are one migration target, the TOTP table"
        );
        let tables: Vec<String> = conn
            .prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
            .and_then(|mut st| {
                st.query_map([], |r| r.get(0))?
                    .collect::<Result<Vec<_>, _>>()
            })
            .expect("tables");
        assert_eq!(tables, ["keycard_migrations", "my_codes", "my_totp"]);
        assert_eq!(
            SqliteSecondFactorStore::DEFAULT_TOTP_TABLE,
            "keycard_totp",
            "the default names"
        );
        assert_eq!(
            SqliteSecondFactorStore::DEFAULT_RECOVERY_CODES_TABLE,
            "keycard_recovery_codes"
        );
    }

    #[tokio::test]
    async fn sqlite_migrate_creates_the_default_tables() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("2fa.db");
        open(&path).await;
        let conn = Connection::open(&path).expect("open");
        for table in ["keycard_totp", "keycard_recovery_codes"] {
            let n: i64 = conn
                .query_row(
                    "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = ?1",
                    [table],
                    |r| r.get(0),
                )
                .expect("count");
            assert_eq!(n, 1, "Sqlite::migrate creates {table}");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// PostgreSQL

#[cfg(feature = "postgres")]
mod postgres {
    use super::*;
    use crate::support::stores::PgSchema;

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn postgres_store_keeps_the_contract() {
        let schema = PgSchema::new().await;
        let store = schema.second_factor_store().await;
        suite::run_all(&store).await;
        bounds_are_refused_and_nothing_is_written(&store).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn two_pools_on_one_database_let_exactly_one_use_win() {
        let schema = PgSchema::new().await;
        let (a, b) = (
            schema.second_factor_store().await,
            schema.second_factor_store().await,
        );
        suite::two_instances(&a, &b).await;
    }

    #[tokio::test]
    async fn migrate_is_idempotent_concurrent_and_one_target() {
        let schema = PgSchema::new().await;
        let a = schema.second_factor_store().await;
        let b = keycard::postgres::PostgresSecondFactorStore::new(a.pool().clone())
            .with_tables(&schema.table("totp"), &schema.table("recovery_codes"))
            .expect("valid");
        let (ra, rb) = tokio::join!(a.migrate(), b.migrate());
        ra.expect("migrate a");
        rb.expect("migrate b");
        let versions: Vec<(String, i64)> = sqlx::query_as(&format!(
            "SELECT target, version FROM \"{}\".keycard_migrations ORDER BY target",
            schema.name
        ))
        .fetch_all(a.pool())
        .await
        .expect("versions");
        assert_eq!(versions, vec![("totp".to_owned(), 1)]);
        for (totp, codes) in [
            ("a.b.c", "d"),
            ("x", "x"),
            ("s.t", "s.t"),
            ("t", "bad name"),
        ] {
            assert!(
                keycard::postgres::PostgresSecondFactorStore::new(a.pool().clone())
                    .with_tables(totp, codes)
                    .is_err(),
                "{totp}, {codes}"
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------
// MySQL / MariaDB

#[cfg(feature = "mysql")]
mod mysql {
    use super::*;
    use crate::support::mysql::MyTables;

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn mysql_store_keeps_the_contract() {
        let tables = MyTables::new().await;
        let store = tables.second_factor_store().await;
        suite::run_all(&store).await;
        bounds_are_refused_and_nothing_is_written(&store).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn two_pools_on_one_database_let_exactly_one_use_win() {
        let tables = MyTables::new().await;
        let (a, b) = (
            tables.second_factor_store().await,
            tables.second_factor_store().await,
        );
        suite::two_instances(&a, &b).await;
    }

    #[tokio::test]
    async fn migrate_is_idempotent_concurrent_and_one_target() {
        let tables = MyTables::new().await;
        let a = tables.second_factor_store().await;
        let b = keycard::mysql::MysqlSecondFactorStore::new(a.pool().clone())
            .with_tables(&tables.table("totp"), &tables.table("recovery_codes"))
            .expect("valid");
        let (ra, rb) = tokio::join!(a.migrate(), b.migrate());
        ra.expect("migrate a");
        rb.expect("migrate b");
        let versions: Vec<(String, i64)> = sqlx::query_as(
            "SELECT CAST(target AS CHAR), version FROM keycard_migrations \
             WHERE target LIKE CONCAT('%', ?) ORDER BY target",
        )
        .bind(&tables.suffix)
        .fetch_all(a.pool())
        .await
        .expect("versions");
        assert_eq!(versions, vec![(tables.table("totp"), 1)]);
        for (totp, codes) in [
            ("a.b.c", "d"),
            ("x", "X"),
            ("t", "a`b"),
            ("t", &"a".repeat(53)),
        ] {
            assert!(
                keycard::mysql::MysqlSecondFactorStore::new(a.pool().clone())
                    .with_tables(totp, codes)
                    .is_err(),
                "{totp}, {codes}"
            );
        }
    }
}
