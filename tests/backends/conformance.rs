//! The `TokenStore` contract suite run against every backend that needs no server: memory and
//! SQLite (PostgreSQL and Redis run it in the `postgres` and `redis_store` modules).

use std::sync::Arc;

use keycard::{conformance, MemoryTokenStore, TokenStore};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn memory_store_keeps_the_contract() {
    let store: Arc<dyn TokenStore> = Arc::new(MemoryTokenStore::new());
    conformance::run_all(&*store).await;
    conformance::concurrent_tasks(store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn memory_store_keeps_the_contract_through_a_box() {
    let boxed: Box<dyn TokenStore> = Box::new(MemoryTokenStore::new());
    conformance::run_all(&boxed).await;
}

#[tokio::test(flavor = "current_thread")]
async fn memory_store_keeps_the_contract_on_one_thread() {
    conformance::run_all(&MemoryTokenStore::new()).await;
}

#[cfg(feature = "sqlite")]
mod sqlite {
    use super::*;
    use keycard::sqlite::SqliteTokenStore;

    async fn open(dir: &tempfile::TempDir, table: &str) -> SqliteTokenStore {
        let store = SqliteTokenStore::open(dir.path().join("keycard.db"))
            .await
            .expect("open a SQLite file in a temporary directory")
            .with_table(table)
            .expect("a valid table name");
        store.migrate().await.expect("migrate");
        store
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn sqlite_store_keeps_the_contract() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store: Arc<dyn TokenStore> = Arc::new(open(&dir, "keycard_sessions").await);
        conformance::run_all(&*store).await;
        conformance::concurrent_tasks(store).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn sqlite_store_keeps_the_contract_through_a_box() {
        let dir = tempfile::tempdir().expect("temp dir");
        let boxed: Box<dyn TokenStore> = Box::new(open(&dir, "other_sessions").await);
        conformance::run_all(&boxed).await;
    }
}
