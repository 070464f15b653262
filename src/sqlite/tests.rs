//! Unit tests of the SQLite stores and pool.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use time::OffsetDateTime;

use super::tokens::PURGE_BATCH;
use super::*;
use crate::session::ClientInfo;
use crate::token::Token;
use crate::{Session, StoreError, TokenStore, UserId, UserRecord, UserStore};

fn session(user: &str, now: OffsetDateTime, ttl: Duration) -> Session {
    let t = Token::generate().expect("os rng");
    Session::new(&t, UserId::from(user), now, ttl, ClientInfo::none())
}

#[tokio::test]
async fn the_file_is_in_wal_mode_and_sessions_survive_reopening() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("k.db");
    let now = OffsetDateTime::now_utc()
        .replace_nanosecond(0)
        .expect("valid");
    let s = session("u", now, Duration::from_secs(60));
    {
        let store = SqliteTokenStore::open(&path).await.expect("open");
        store.migrate().await.expect("migrate");
        store.migrate().await.expect("migrate is idempotent");
        store.create(&s).await.expect("create");
        let mode = store
            .pool
            .run(|c| {
                c.query_row("PRAGMA journal_mode", [], |r| r.get::<_, String>(0))
                    .map_err(backend)
            })
            .await
            .expect("pragma");
        assert_eq!(mode, "wal");
    }
    let store = SqliteTokenStore::open(&path).await.expect("reopen");
    assert_eq!(store.get(&s.id, now).await.expect("get"), Some(s));
}

#[tokio::test]
async fn purge_deletes_in_batches_and_counts_every_row() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = SqliteTokenStore::open(dir.path().join("k.db"))
        .await
        .expect("open");
    store.migrate().await.expect("migrate");
    let now = OffsetDateTime::now_utc()
        .replace_nanosecond(0)
        .expect("valid");
    let n = 2 * PURGE_BATCH as usize + 17;
    for _ in 0..n {
        store
            .create(&session("u", now, Duration::from_secs(1)))
            .await
            .expect("create");
    }
    let live = session("u", now, Duration::from_secs(3600));
    store.create(&live).await.expect("create");
    let purged = store
        .purge_expired(now + Duration::from_secs(1))
        .await
        .expect("purge");
    assert_eq!(purged, n as u64);
    assert_eq!(
        store
            .list_for_user(&UserId::from("u"), now)
            .await
            .expect("list"),
        vec![live]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lookups_run_inline_once_a_reader_exists_and_fall_back_when_busy() {
    use std::sync::atomic::AtomicBool;
    let dir = tempfile::tempdir().expect("temp dir");
    let store = SqliteTokenStore::open(dir.path().join("k.db"))
        .await
        .expect("open");
    store.migrate().await.expect("migrate");
    let pool = &store.pool;
    let thread = || std::thread::current().id();
    // No reader yet: the first lookup runs on a blocking thread and opens one.
    let first = pool.read(move |_| Ok(thread())).await.expect("read");
    assert_ne!(first, thread());
    assert_eq!(pool.readers_open.load(Ordering::Acquire), 1);
    // Now it runs on the calling thread.
    let second = pool.read(move |_| Ok(thread())).await.expect("read");
    assert_eq!(second, thread());
    // A busy file sends the lookup to the blocking pool, which may wait for the lock.
    let tried_inline = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&tried_inline);
    let answer = pool
        .read(move |_| {
            if flag.swap(true, Ordering::AcqRel) {
                Ok(thread())
            } else {
                Err(rusqlite::Error::SqliteFailure(
                    rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_BUSY),
                    None,
                ))
            }
        })
        .await
        .expect("the fallback answers");
    assert!(tried_inline.load(Ordering::Acquire));
    assert_ne!(answer, thread(), "the retry ran on a blocking thread");
}

#[tokio::test]
async fn in_memory_databases_are_refused() {
    for path in ["", ":memory:"] {
        let err = SqliteTokenStore::open(path).await.expect_err(path);
        assert!(matches!(err, StoreError::Backend(_)), "{err:?}");
        assert!(SqliteUserStore::open(path).await.is_err());
    }
}

#[tokio::test]
async fn an_unopenable_path_is_a_backend_error() {
    let dir = tempfile::tempdir().expect("temp dir");
    let err = SqliteTokenStore::open(dir.path().join("missing/dir/k.db"))
        .await
        .expect_err("no such directory");
    assert!(matches!(err, StoreError::Backend(_)), "{err:?}");
}

#[tokio::test]
async fn a_missing_table_is_a_backend_error_not_a_panic() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = SqliteTokenStore::open(dir.path().join("k.db"))
        .await
        .expect("open");
    let id = Token::generate().expect("os rng").id();
    let err = store
        .get(&id, OffsetDateTime::now_utc())
        .await
        .expect_err("no table yet");
    assert!(matches!(err, StoreError::Backend(_)), "{err:?}");
}

#[tokio::test]
async fn users_are_found_by_normalized_email_and_seeding_is_idempotent() {
    let dir = tempfile::tempdir().expect("temp dir");
    let users = SqliteUserStore::open(dir.path().join("k.db"))
        .await
        .expect("open")
        .with_table("people")
        .expect("valid name");
    users.migrate().await.expect("migrate");
    let ann = UserRecord::new(1_i64, " Ann@Example.com", "$argon2id$x").with_name("Ann", "Lee");
    assert!(users.insert_if_absent(&ann).await.expect("insert"));
    assert!(!users.insert_if_absent(&ann).await.expect("again"));
    let same_email = UserRecord::new(2_i64, "ann@example.com", "$argon2id$y");
    assert!(!users
        .insert_if_absent(&same_email)
        .await
        .expect("dup email"));
    let found = users
        .find_by_email("ann@example.com")
        .await
        .expect("find")
        .expect("exists");
    assert_eq!(found, ann);
    assert_eq!(
        users.find_by_id(&UserId::from(1_i64)).await.expect("find"),
        Some(ann.clone())
    );
    assert_eq!(
        users.find_by_id(&UserId::from(2_i64)).await.expect("find"),
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
    assert_eq!(
        users
            .find_by_email("nobody@example.com")
            .await
            .expect("find"),
        None
    );
}
