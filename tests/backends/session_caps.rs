//! The per-user session cap over the shared stores, with two instances: concurrent logins
//! spread over two authenticators on one SQLite file, one PostgreSQL schema or one Redis
//! prefix never leave more live sessions than the cap, under either policy.

use std::net::IpAddr;
use std::sync::Arc;

use keycard::{
    Argon2Hasher, Authenticator, ClientInfo, Error, MemoryUserStore, SessionCap, TokenStore,
    UserId, UserRecord,
};
use time::OffsetDateTime;

const EMAIL: &str = "ann@example.com";
const PASSWORD: &str = "correct horse battery staple";
const CAP: usize = 4;

/// Two instances over `tokens` (one user store, as a shared user table would be), 24
/// concurrent logins alternating between them; then the live sessions are counted.
async fn two_instances_hold_the_cap(tokens: Arc<dyn TokenStore>) {
    for cap in [SessionCap::evict_oldest(CAP), SessionCap::refuse(CAP)] {
        let users = Arc::new(MemoryUserStore::<UserRecord>::new());
        let instance = || {
            Authenticator::builder(Arc::clone(&users), Arc::clone(&tokens))
                .password_hasher(Argon2Hasher::insecure_for_tests())
                .without_throttle()
                .max_queued_hashes(256)
                .session_cap(cap)
                .build()
        };
        let (a, b) = (instance(), instance());
        let hash = a.hash_password(PASSWORD).await.expect("hash");
        users
            .insert(UserRecord::new(1_i64, EMAIL, hash))
            .expect("a fresh user store");
        let user = UserId::from(1_i64);
        tokens.delete_for_user(&user).await.expect("a clean start");
        let logins = (0..24u8).map(|n| {
            let auth = if n % 2 == 0 { a.clone() } else { b.clone() };
            let client = ClientInfo::none().with_ip(IpAddr::from([10, 0, 0, n]));
            tokio::spawn(async move { auth.login(EMAIL, PASSWORD, client).await })
        });
        let mut succeeded = 0;
        for login in futures_util::future::join_all(logins).await {
            match login.expect("the task ran") {
                Ok(_) => succeeded += 1,
                Err(Error::TooManySessions { .. }) => {}
                Err(other) => panic!("{other:?}"),
            }
        }
        let live = tokens
            .list_for_user(&user, OffsetDateTime::now_utc())
            .await
            .expect("list");
        assert!(live.len() <= CAP, "{cap:?}: {} live", live.len());
        if cap == SessionCap::evict_oldest(CAP) {
            assert!(!live.is_empty(), "eviction never empties an account");
        }
        if cap == SessionCap::refuse(CAP) {
            assert_eq!(
                succeeded,
                live.len(),
                "a refused login leaves nothing behind"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_file() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let store = keycard::sqlite::SqliteTokenStore::open(dir.path().join("sessions.db"))
        .await
        .expect("open SQLite");
    store.migrate().await.expect("migrate");
    two_instances_hold_the_cap(Arc::new(store)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_schema() {
    let schema = crate::support::stores::PgSchema::new().await;
    two_instances_hold_the_cap(Arc::new(schema.token_store().await)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_prefix() {
    let prefix = crate::support::stores::RedisPrefix::new().await;
    two_instances_hold_the_cap(Arc::new(prefix.token_store().await)).await;
}
