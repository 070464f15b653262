//! Shared stores across actix-web's per-worker runtimes: each worker runs its own
//! single-threaded runtime, while the sqlx pool, the Redis connection manager and the SQLite
//! pool were opened on another. The budgets API on actix-web with two workers, over each
//! store, takes concurrent logins and validations (spread over both workers), and a logout
//! seen by one worker holds on the other.
#![cfg(all(
    feature = "actix-web",
    feature = "sqlite",
    feature = "postgres",
    feature = "redis"
))]

#[allow(dead_code)]
#[path = "../examples/budgets_api/api.rs"]
mod budgets;
#[allow(dead_code)]
mod http_support;
mod stores_support;

use std::sync::Arc;
use std::time::Duration;

use budgets::app;
use http_support::Server;
use keycard::http::TrustedProxies;
use keycard::{Argon2Hasher, MemoryUserStore, TokenStore, UserRecord};

const LOGIN_BODY: &str = r#"{"email":"bondhansarker100@gmail.com","password":"111111"}"#;

/// The app over `tokens` with two actix-web workers; 40 concurrent logins, each token then
/// validated, then every token logged out and refused: all on whichever worker takes them.
async fn exercise(tokens: Arc<dyn TokenStore>) {
    let users = Arc::new(MemoryUserStore::<UserRecord>::new());
    let auth = app::authenticator(users.clone(), tokens, Duration::from_secs(3600))
        .password_hasher(Argon2Hasher::insecure_for_tests())
        .max_queued_hashes(64)
        .without_throttle()
        .build();
    users
        .insert(app::demo_user(&auth).await.expect("hash"))
        .expect("a fresh store");
    let server = Server::start_actix(budgets::actix_routes::configure(app::Api::new(
        auth,
        TrustedProxies::none(),
    )));
    let server = &server;
    let logins = (0..40).map(|n| async move {
        // Distinct client addresses, as 40 users would have.
        let from = http_support::client_ip(n);
        let reply = server
            .json_from(from, "POST", "/api/sessions", LOGIN_BODY)
            .await;
        assert_eq!(reply.status, 200, "{reply:?}");
        let token = reply.json()["token"].as_str().expect("a token").to_owned();
        let budgets = server
            .call("GET", &format!("/api/budgets?token={token}"))
            .await;
        assert_eq!(budgets.status, 200, "{budgets:?}");
        token
    });
    let tokens = futures_util::future::join_all(logins).await;
    let logouts = tokens.iter().map(|token| async move {
        let path = format!("/api/sessions/sign_out?token={token}");
        assert_eq!(server.call("PATCH", &path).await.status, 200);
        let budgets = server
            .call("GET", &format!("/api/budgets?token={token}"))
            .await;
        assert_eq!(
            budgets.status, 422,
            "a dead token on any worker: {budgets:?}"
        );
    });
    futures_util::future::join_all(logouts).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_pool_serves_every_worker() {
    let schema = stores_support::PgSchema::new().await;
    exercise(Arc::new(schema.token_store().await)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_connection_manager_serves_every_worker() {
    let prefix = stores_support::RedisPrefix::new().await;
    exercise(Arc::new(prefix.token_store().await)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_pool_serves_every_worker() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let path = dir.path().join("sessions.db");
    let store = keycard::sqlite::SqliteTokenStore::open(&path)
        .await
        .expect("open SQLite");
    store.migrate().await.expect("migrate");
    exercise(Arc::new(store)).await;
}
