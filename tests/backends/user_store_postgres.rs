//! The `UserStore` contract suite (`keycard::conformance::users`) against `PostgresUserStore`
//! on a live server (`KEYCARD_POSTGRES_URL`, default `postgres://postgres@127.0.0.1:5432/test`).
//! Each test works in its own fresh schema and drops it afterwards. Fails, never skips, when
//! the server is not running.

use std::sync::Arc;

use crate::support::stores::PgSchema;
use keycard::conformance::users::{self, SeedUsers};
use keycard::UserRecord;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_user_store_keeps_the_contract() {
    let schema = PgSchema::new().await;
    let store = Arc::new(schema.user_store().await);
    users::run_all(&*store).await;
    users::run_account_checks(&*store).await;
    users::concurrent_tasks(store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_user_store_keeps_the_contract_through_dyn() {
    let schema = PgSchema::new().await;
    let store: Arc<dyn SeedUsers<User = UserRecord>> = Arc::new(schema.user_store().await);
    users::run_all(&*store).await;
}

/// PostgreSQL text cannot hold NUL: an email with one must be "invalid credentials", like any
/// unknown email, not a store failure (503).
#[tokio::test]
async fn login_with_a_nul_in_the_email_is_invalid_credentials() {
    let schema = PgSchema::new().await;
    let auth = keycard::Authenticator::builder(
        schema.user_store().await,
        keycard::MemoryTokenStore::new(),
    )
    .password_hasher(keycard::Argon2Hasher::insecure_for_tests())
    .build();
    let result = auth
        .login(
            "ann@example.com\0",
            "correct horse battery staple",
            keycard::ClientInfo::none(),
        )
        .await;
    assert!(
        matches!(result, Err(keycard::Error::InvalidCredentials)),
        "{result:?}"
    );
}
