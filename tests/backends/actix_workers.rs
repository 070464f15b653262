//! Shared stores across actix-web's per-worker runtimes: each worker runs its own
//! single-threaded runtime, while the sqlx pool, the Redis connection manager and the SQLite
//! pool were opened on another. An app on keycard's actix-web extractors with two workers,
//! over each store, takes concurrent logins and validations (spread over both workers), and a
//! logout seen by one worker holds on the other.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::Duration;

use actix_web::{web, App, HttpServer};
use keycard::actix_web::{CurrentUser, LoginRequest, LogoutRequest};
use keycard::http::{HttpAuth, Response, StandardApi};
use keycard::{Argon2Hasher, Authenticator, MemoryUserStore, TokenStore, UserRecord};

const EMAIL: &str = "ann@example.com";
const PASSWORD: &str = "correct horse battery staple";

async fn login(request: LoginRequest<UserRecord>) -> Response {
    request.login().await
}

async fn logout(request: LogoutRequest<UserRecord>) -> Response {
    request.logout().await
}

async fn me(me: CurrentUser<UserRecord>) -> String {
    me.user.email
}

/// An actix-web server with two workers (each its own thread and single-threaded runtime) on
/// a free loopback port, in an actix system on a thread of its own; stopped on drop.
struct TwoWorkers {
    base: String,
    handle: actix_web::dev::ServerHandle,
}

impl TwoWorkers {
    fn start(http: HttpAuth<UserRecord>) -> Self {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
        let addr = listener.local_addr().expect("bound address");
        let (handle_tx, handle_rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            actix_web::rt::System::new().block_on(async move {
                let server = HttpServer::new(move || {
                    App::new()
                        .app_data(http.clone())
                        .route("/login", web::post().to(login))
                        .route("/logout", web::delete().to(logout))
                        .route("/me", web::get().to(me))
                })
                .workers(2)
                .disable_signals()
                .listen(listener)
                .expect("listen on the bound port")
                .run();
                handle_tx
                    .send(server.handle())
                    .expect("the test waits for the handle");
                server.await.expect("server runs until the test ends");
            });
        });
        let handle = handle_rx.recv().expect("the actix server starts");
        Self {
            base: format!("http://{addr}"),
            handle,
        }
    }
}

impl Drop for TwoWorkers {
    fn drop(&mut self) {
        drop(self.handle.stop(false));
    }
}

/// A client whose connections come from 127.0.0.`2 + n`: a distinct client to the server.
fn client_from(n: u8) -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .local_address(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2 + n)))
        .build()
        .expect("HTTP client builds")
}

/// The app over `tokens` with two actix-web workers; 40 concurrent logins, each token then
/// validated, then every token logged out and refused: all on whichever worker takes them.
async fn exercise(tokens: Arc<dyn TokenStore>) {
    let users = Arc::new(MemoryUserStore::<UserRecord>::new());
    let auth = Authenticator::builder(Arc::clone(&users), tokens)
        .password_hasher(Argon2Hasher::insecure_for_tests())
        .idle_timeout(Duration::from_secs(3600))
        .max_queued_hashes(64)
        .without_throttle()
        .build();
    let hash = auth.hash_password(PASSWORD).await.expect("hash");
    users
        .insert(UserRecord::new(1_i64, EMAIL, hash))
        .expect("a fresh store");
    let server = TwoWorkers::start(HttpAuth::new(auth, StandardApi));
    let server = &server;
    let body = serde_json::json!({ "email": EMAIL, "password": PASSWORD });
    let body = &body;
    let logins = (0..40).map(|n| async move {
        // Distinct client addresses, as 40 users would have.
        let client = client_from(n);
        let reply = client
            .post(format!("{}/login", server.base))
            .json(body)
            .send()
            .await
            .expect("the server answers");
        assert_eq!(reply.status(), 200, "{reply:?}");
        let reply: serde_json::Value = reply.json().await.expect("JSON");
        let token = reply["token"].as_str().expect("a token").to_owned();
        let me = client
            .get(format!("{}/me", server.base))
            .bearer_auth(&token)
            .send()
            .await
            .expect("the server answers");
        assert_eq!(me.status(), 200, "{me:?}");
        assert_eq!(me.text().await.expect("a body"), EMAIL);
        token
    });
    let tokens = futures_util::future::join_all(logins).await;
    let client = client_from(0);
    let client = &client;
    let logouts = tokens.iter().map(|token| async move {
        let logout = client
            .delete(format!("{}/logout", server.base))
            .bearer_auth(token)
            .send()
            .await
            .expect("the server answers");
        assert_eq!(logout.status(), 204, "{logout:?}");
        let me = client
            .get(format!("{}/me", server.base))
            .bearer_auth(token)
            .send()
            .await
            .expect("the server answers");
        assert_eq!(me.status(), 401, "a dead token on any worker: {me:?}");
    });
    futures_util::future::join_all(logouts).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_pool_serves_every_worker() {
    let schema = crate::support::stores::PgSchema::new().await;
    exercise(Arc::new(schema.token_store().await)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_connection_manager_serves_every_worker() {
    let prefix = crate::support::stores::RedisPrefix::new().await;
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
