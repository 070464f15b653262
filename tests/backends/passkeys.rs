//! Passkey stores: the conformance suite on every backend that keeps them (memory, SQLite,
//! PostgreSQL, MySQL / MariaDB), the per-user cap under concurrent adds through two
//! instances over one store, the bounds the SQL stores enforce, and renamed tables.
//!
//! The server-backed tests read `KEYCARD_POSTGRES_URL` and `KEYCARD_MYSQL_URL` (defaults: the
//! loopback services of `.ci/run`), each in a namespace of its own (schema, table suffix)
//! removed afterwards. They fail with instructions, never skip, when a server is down.

use std::sync::Arc;

use futures_util::future::join_all;
use keycard::conformance::passkeys as suite;
use keycard::mfa::{MemoryPasskeyStore, PasskeyAdded, PasskeyRecord, PasskeyStore};
#[cfg(any(feature = "sqlite", feature = "postgres", feature = "mysql"))]
use keycard::StoreError;
use keycard::UserId;
use time::OffsetDateTime;

/// A record of `user` with a random 32-byte credential id.
fn record(user: &UserId, name: &str) -> PasskeyRecord {
    PasskeyRecord::new(
        user.clone(),
        rand::random::<[u8; 32]>().to_vec(),
        name,
        r#"{"cred":"k","counter":0}"#.to_owned(),
        OffsetDateTime::now_utc(),
    )
}

fn user(tag: &str) -> UserId {
    UserId::new(format!("{tag}-{:016x}", rand::random::<u64>()))
}

/// `N` concurrent adds for one user, alternating between `a` and `b` (two instances over one
/// store), leave exactly the cap: as many `Added`, the rest `TooMany`.
async fn cap_holds_across_instances(a: &dyn PasskeyStore, b: &dyn PasskeyStore) {
    const CAP: u32 = 4;
    const N: usize = 16;
    let who = user("cap");
    let records: Vec<PasskeyRecord> = (0..N).map(|_| record(&who, "k")).collect();
    let outcomes = join_all(records.iter().enumerate().map(|(i, r)| async move {
        let store = if i % 2 == 0 { a } else { b };
        store.add(r, CAP).await.expect("add")
    }))
    .await;
    let added = outcomes
        .iter()
        .filter(|o| **o == PasskeyAdded::Added)
        .count();
    let refused = outcomes
        .iter()
        .filter(|o| **o == PasskeyAdded::TooMany)
        .count();
    assert_eq!(
        added, CAP as usize,
        "exactly the cap is added: {outcomes:?}"
    );
    assert_eq!(
        refused,
        N - CAP as usize,
        "the others are refused as too many"
    );
    assert_eq!(a.list(&who).await.expect("list").len(), CAP as usize);
    assert_eq!(b.list(&who).await.expect("list").len(), CAP as usize);
    for r in a.list(&who).await.expect("list") {
        assert!(b.remove(&who, &r.credential_id).await.expect("remove"));
    }
}

// ---------------------------------------------------------------------------------------------
// Memory

#[tokio::test]
async fn memory_store_keeps_the_contract() {
    suite::run_all(&MemoryPasskeyStore::new()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn memory_store_keeps_the_cap_through_two_arcs() {
    let shared: Arc<dyn PasskeyStore> = Arc::new(MemoryPasskeyStore::new());
    let other = Arc::clone(&shared);
    suite::run_all(&shared).await;
    cap_holds_across_instances(&shared, &other).await;
}

// ---------------------------------------------------------------------------------------------
// What the SQL stores add: bounds

/// A credential id empty or over 255 bytes, a name over 64 characters and a passkey over
/// 8192 bytes are refused with an error, writing nothing; the bounds themselves fit.
#[cfg(any(feature = "sqlite", feature = "postgres", feature = "mysql"))]
async fn bounds_are_refused_and_nothing_is_written(store: &dyn PasskeyStore) {
    let who = user("bounds");
    let refused = |r: Result<PasskeyAdded, StoreError>| matches!(r, Err(StoreError::Backend(_)));
    let mut long_id = record(&who, "k");
    long_id.credential_id = vec![1; PasskeyRecord::MAX_CREDENTIAL_ID_LEN + 1];
    let mut empty_id = record(&who, "k");
    empty_id.credential_id = Vec::new();
    let long_name = record(&who, &"é".repeat(PasskeyRecord::MAX_NAME_LEN + 1));
    let mut long_passkey = record(&who, "k");
    long_passkey.passkey = "x".repeat(PasskeyRecord::MAX_PASSKEY_LEN + 1);
    for bad in [&long_id, &empty_id, &long_name, &long_passkey] {
        assert!(refused(store.add(bad, 10).await), "{bad:?} is refused");
    }
    assert!(
        store.list(&who).await.expect("list").is_empty(),
        "nothing written"
    );

    let mut fits = record(&who, &"名".repeat(PasskeyRecord::MAX_NAME_LEN));
    fits.credential_id = (0..PasskeyRecord::MAX_CREDENTIAL_ID_LEN)
        .map(|i| u8::try_from(i % 256).expect("a byte"))
        .collect();
    fits.passkey = "é".repeat(PasskeyRecord::MAX_PASSKEY_LEN / 2);
    assert_eq!(
        store.add(&fits, 10).await.expect("at the bounds"),
        PasskeyAdded::Added
    );
    assert_eq!(
        store.find(&fits.credential_id).await.expect("find"),
        Some(fits.clone())
    );
    let id = &fits.credential_id;
    assert!(matches!(
        store
            .rename(&who, id, &"x".repeat(PasskeyRecord::MAX_NAME_LEN + 1))
            .await,
        Err(StoreError::Backend(_))
    ));
    let over = "y".repeat(PasskeyRecord::MAX_PASSKEY_LEN + 1);
    assert!(matches!(
        store
            .update_after_use(id, &over, OffsetDateTime::now_utc())
            .await,
        Err(StoreError::Backend(_))
    ));
    assert_eq!(
        store.find(id).await.expect("find"),
        Some(fits.clone()),
        "a refused change keeps the passkey as it was"
    );
    assert!(!store
        .remove(&who, &[1; PasskeyRecord::MAX_CREDENTIAL_ID_LEN + 1])
        .await
        .expect("an over-long id is nobody's"),);
    assert_eq!(
        store.add(&fits, 0).await.expect("add"),
        PasskeyAdded::Duplicate
    );
    assert_eq!(
        store.add(&record(&who, "k"), 1).await.expect("add"),
        PasskeyAdded::TooMany
    );
    assert!(store.remove(&who, id).await.expect("cleanup"));
}

// ---------------------------------------------------------------------------------------------
// SQLite

#[cfg(feature = "sqlite")]
mod sqlite {
    use super::*;
    use keycard::sqlite::driver::Connection;
    use keycard::sqlite::{Sqlite, SqlitePasskeyStore};

    async fn open(path: &std::path::Path) -> Sqlite {
        let db = Sqlite::open(path).await.expect("open");
        db.migrate().await.expect("migrate");
        db
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn sqlite_store_keeps_the_contract() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = open(&dir.path().join("passkeys.db")).await;
        suite::run_all(&db.passkey_store()).await;
        bounds_are_refused_and_nothing_is_written(&db.passkey_store()).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn two_handles_on_one_file_keep_the_contract_and_the_cap() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("passkeys.db");
        let (a, b) = (open(&path).await, open(&path).await);
        let (a, b) = (a.passkey_store(), b.passkey_store());
        suite::run_all(&a).await;
        suite::run_all(&b).await;
        cap_holds_across_instances(&a, &b).await;
    }

    #[tokio::test]
    async fn renamed_table_works_and_bad_names_are_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("passkeys.db");
        let db = Sqlite::open(&path).await.expect("open");
        for bad in ["x; DROP TABLE y", "1keys", "a.b", ""] {
            assert!(db.passkey_store().with_table(bad).is_err(), "{bad:?}");
        }
        let renamed = db.passkey_store().with_table("my_keys").expect("valid");
        renamed.migrate().await.expect("migrate");
        renamed.migrate().await.expect("idempotent");
        suite::run_all(&renamed).await;
        let conn = Connection::open(&path).expect("open");
        let tables: Vec<String> = conn
            .prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
            .and_then(|mut st| {
                st.query_map([], |r| r.get(0))?
                    .collect::<Result<Vec<_>, _>>()
            })
            .expect("tables");
        assert_eq!(tables, ["keycard_migrations", "my_keys"]);
        assert_eq!(SqlitePasskeyStore::DEFAULT_TABLE, "keycard_passkeys");
    }

    #[tokio::test]
    async fn sqlite_migrate_creates_the_default_table() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("passkeys.db");
        open(&path).await;
        let conn = Connection::open(&path).expect("open");
        let n: i64 = conn
            .query_row(
                "SELECT COUNT(*) FROM sqlite_master WHERE name IN ('keycard_passkeys', 'keycard_passkeys_user_idx')",
                [],
                |r| r.get(0),
            )
            .expect("count");
        assert_eq!(n, 2, "Sqlite::migrate creates the table and its index");
    }
}

// ---------------------------------------------------------------------------------------------
// PostgreSQL

#[cfg(feature = "postgres")]
mod postgres {
    use super::*;
    use crate::support::stores::PgSchema;
    use keycard::postgres::PostgresPasskeyStore;

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn postgres_store_keeps_the_contract() {
        let schema = PgSchema::new().await;
        let store = schema.passkey_store().await;
        suite::run_all(&store).await;
        bounds_are_refused_and_nothing_is_written(&store).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn two_pools_on_one_database_keep_the_contract_and_the_cap() {
        let schema = PgSchema::new().await;
        let (a, b) = (schema.passkey_store().await, schema.passkey_store().await);
        suite::run_all(&a).await;
        suite::run_all(&b).await;
        cap_holds_across_instances(&a, &b).await;
    }

    /// PostgreSQL text cannot hold NUL: a name or passkey with one is refused with an error,
    /// writing nothing, never truncated.
    #[tokio::test]
    async fn a_nul_in_text_is_refused() {
        let schema = PgSchema::new().await;
        let store = schema.passkey_store().await;
        let who = user("nul");
        let named = record(&who, "a\0b");
        let mut json = record(&who, "k");
        json.passkey = "{\"a\":\"\0\"}".to_owned();
        for bad in [&named, &json] {
            assert!(matches!(
                store.add(bad, 10).await,
                Err(StoreError::Backend(_))
            ));
        }
        assert!(store.list(&who).await.expect("list").is_empty());
        let fine = record(&who, "k");
        store.add(&fine, 10).await.expect("add");
        let id = &fine.credential_id;
        assert!(store.rename(&who, id, "x\0").await.is_err());
        assert!(store
            .update_after_use(id, "\0", OffsetDateTime::now_utc())
            .await
            .is_err());
        assert_eq!(store.find(id).await.expect("find"), Some(fine.clone()));
        assert!(store.remove(&who, id).await.expect("remove"));
    }

    #[tokio::test]
    async fn migrate_is_idempotent_concurrent_and_names_are_checked() {
        let schema = PgSchema::new().await;
        let a = schema.passkey_store().await;
        let b = PostgresPasskeyStore::new(a.pool().clone())
            .with_table(&schema.table("passkeys"))
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
        assert_eq!(versions, vec![("passkeys".to_owned(), 1)]);
        for bad in ["a.b.c", "bad name", "x\"; DROP TABLE y; --", ""] {
            assert!(
                PostgresPasskeyStore::new(a.pool().clone())
                    .with_table(bad)
                    .is_err(),
                "{bad:?}"
            );
        }
        assert_eq!(PostgresPasskeyStore::DEFAULT_TABLE, "keycard_passkeys");
    }
}

// ---------------------------------------------------------------------------------------------
// MySQL / MariaDB

#[cfg(feature = "mysql")]
mod mysql {
    use super::*;
    use crate::support::mysql::MyTables;
    use keycard::mysql::MysqlPasskeyStore;

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn mysql_store_keeps_the_contract() {
        let tables = MyTables::new().await;
        let store = tables.passkey_store().await;
        suite::run_all(&store).await;
        bounds_are_refused_and_nothing_is_written(&store).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn two_pools_on_one_database_keep_the_contract_and_the_cap() {
        let tables = MyTables::new().await;
        let (a, b) = (tables.passkey_store().await, tables.passkey_store().await);
        suite::run_all(&a).await;
        suite::run_all(&b).await;
        cap_holds_across_instances(&a, &b).await;
    }

    /// MySQL keeps what PostgreSQL cannot: a NUL in a name or in the passkey text round-trips.
    #[tokio::test]
    async fn a_nul_in_text_round_trips() {
        let tables = MyTables::new().await;
        let store = tables.passkey_store().await;
        let who = user("nul");
        let mut key = record(&who, "a\0b");
        key.passkey = "{\"a\":\"\0\"}".to_owned();
        store.add(&key, 10).await.expect("add");
        assert_eq!(
            store.find(&key.credential_id).await.expect("find"),
            Some(key.clone())
        );
        assert!(store
            .remove(&who, &key.credential_id)
            .await
            .expect("remove"));
    }

    #[tokio::test]
    async fn migrate_is_idempotent_concurrent_and_names_are_checked() {
        let tables = MyTables::new().await;
        let a = tables.passkey_store().await;
        let b = MysqlPasskeyStore::new(a.pool().clone())
            .with_table(&tables.table("passkeys"))
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
        assert_eq!(versions, vec![(tables.table("passkeys"), 1)]);
        for bad in ["a.b.c", "a`b", "bad name", &"a".repeat(53)] {
            assert!(
                MysqlPasskeyStore::new(a.pool().clone())
                    .with_table(bad)
                    .is_err(),
                "{bad:?}"
            );
        }
        assert_eq!(MysqlPasskeyStore::DEFAULT_TABLE, "keycard_passkeys");
    }
}
