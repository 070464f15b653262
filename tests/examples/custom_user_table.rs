//! `examples/custom_user_table.rs`, tested from its own source: its `UserStore` over an
//! `accounts` table with integer ids keeps the `UserStore` contract
//! (`keycard::conformance::users`), and its demo runs to the end.

use std::sync::Arc;

use crate::custom_user_table_example::Accounts;
use keycard::conformance::users::{self, SeedUsers};
use keycard::{StoreError, UserId, UserStore};

#[keycard::async_trait]
impl SeedUsers for Accounts {
    async fn seed_user(&self, email: &str, password_hash: &str) -> Result<UserId, StoreError> {
        self.register(email, "Conformance", password_hash).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_example_store_keeps_the_user_store_contract() {
    let store = Arc::new(Accounts::open(None).expect("in-memory database"));
    users::run_all(&*store).await;
    users::concurrent_tasks(store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_example_store_keeps_the_contract_in_a_file() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Accounts::open(Some(&dir.path().join("accounts.db"))).expect("open");
    users::run_all(&store).await;
}

#[tokio::test]
async fn ids_are_integers_and_other_ids_are_unknown() {
    let store = Accounts::open(None).expect("in-memory database");
    let first = store
        .register(" Ann@Example.com ", "Ann", "$argon2id$x")
        .await
        .expect("insert");
    let second = store
        .register("bob@example.com", "Bob", "$argon2id$y")
        .await
        .expect("insert");
    assert_eq!(first.as_i64(), Some(1));
    assert_eq!(second.as_i64(), Some(2));
    let ann = store
        .find_by_email("ann@example.com")
        .await
        .expect("find")
        .expect("found");
    assert_eq!(ann.account_no, 1);
    assert_eq!(ann.display_name, "Ann");
    for other in ["01", "1.0", " 1", "one", ""] {
        assert!(
            store
                .find_by_id(&UserId::from(other))
                .await
                .expect("find")
                .is_none(),
            "{other:?}"
        );
    }
    assert!(
        store
            .register("ann@example.com", "Ann again", "h")
            .await
            .is_err(),
        "emails are unique"
    );
    assert!(
        !format!("{ann:?}").contains("$argon2id$"),
        "Debug hides the hash"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_example_runs_to_the_end() {
    let accounts = Accounts::open(None).expect("in-memory database");
    crate::custom_user_table_example::demo(accounts.clone())
        .await
        .expect("the demo succeeds");
    let ann = accounts
        .find_by_email("ann.lee@example.com")
        .await
        .expect("find")
        .expect("registered by the demo");
    assert!(ann.pw_phc.starts_with("$argon2id$"));
}

/// The example's own `main`, as `cargo run --example custom_user_table` runs it.
#[test]
fn the_example_main_runs_to_the_end() {
    crate::custom_user_table_example::main().expect("the example succeeds");
}
