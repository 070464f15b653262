//! The store server goes away mid-run and comes back: every operation fails with
//! `StoreError::Backend` (nothing panics, nothing hangs), and service resumes by itself when
//! the server is reachable again. A TCP proxy in front of the real PostgreSQL / Redis plays
//! the outage: it drops every connection and stops listening, then listens again.
//!
//! The same for a login throttle behind the cut: login fails closed (`Error::ThrottleUnavailable`, no
//! password checked) or, if so configured, fails open (the password is checked, unthrottled),
//! in bounded time, and throttles again once the server is back.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use keycard::throttle::{Limit, Throttle, ThrottleError, ThrottleLimits, ThrottleOutage};
use keycard::{
    Argon2Hasher, Authenticator, ClientInfo, Error, MemoryTokenStore, MemoryUserStore, Session,
    StoreError, Token, TokenStore, UserId, UserRecord,
};
use time::OffsetDateTime;
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::task::JoinHandle;

/// A loopback TCP proxy that can cut and restore the path to `target`.
#[derive(Debug)]
struct Proxy {
    addr: SocketAddr,
    target: SocketAddr,
    tasks: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

impl Proxy {
    async fn start(target: SocketAddr) -> Self {
        let listener = listen("127.0.0.1:0".parse().expect("addr"));
        let proxy = Self {
            addr: listener.local_addr().expect("local addr"),
            target,
            tasks: Arc::new(Mutex::new(Vec::new())),
        };
        proxy.serve(listener);
        proxy
    }

    fn serve(&self, listener: TcpListener) {
        let target = self.target;
        let tasks = Arc::clone(&self.tasks);
        let accept = tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                let relay = tokio::spawn(async move {
                    if let Ok(mut outbound) = TcpStream::connect(target).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
                tasks.lock().expect("lock").push(relay);
            }
        });
        self.tasks.lock().expect("lock").push(accept);
    }

    /// The server "dies": open connections drop, new ones are refused.
    fn cut(&self) {
        for task in self.tasks.lock().expect("lock").drain(..) {
            task.abort();
        }
    }

    /// The server is back on the same address.
    async fn restore(&self) {
        // Aborted tasks drop their sockets on their next poll; give them a moment.
        tokio::time::sleep(Duration::from_millis(50)).await;
        self.serve(listen(self.addr));
    }
}

fn listen(addr: SocketAddr) -> TcpListener {
    let socket = TcpSocket::new_v4().expect("socket");
    socket.set_reuseaddr(true).expect("reuseaddr");
    socket.bind(addr).expect("bind");
    socket.listen(64).expect("listen")
}

fn target_of(url: &str, default_port: u16) -> SocketAddr {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let host_port = rest.rsplit_once('@').map_or(rest, |(_, hp)| hp);
    let host_port = host_port.split(['/', '?']).next().expect("host");
    let (host, port) = host_port
        .rsplit_once(':')
        .map_or((host_port, default_port), |(h, p)| {
            (h, p.parse().expect("port"))
        });
    let host = if host == "localhost" {
        "127.0.0.1"
    } else {
        host
    };
    SocketAddr::new(host.parse().expect("an IP host in the test URL"), port)
}

fn with_addr(url: &str, from: SocketAddr, to: SocketAddr) -> String {
    url.replace(&from.to_string(), &to.to_string())
        .replace(&format!("localhost:{}", from.port()), &to.to_string())
}

fn session(user: &UserId) -> Session {
    let token = Token::generate().expect("rng");
    // Whole seconds: every backend keeps them exactly.
    Session::new(
        &token,
        user.clone(),
        OffsetDateTime::now_utc()
            .replace_nanosecond(0)
            .expect("valid"),
        Duration::from_secs(3600),
        ClientInfo::none(),
    )
}

/// Every operation fails with a backend error, in bounded time.
async fn every_operation_fails_cleanly(store: &dyn TokenStore, known: &Session) {
    let now = OffsetDateTime::now_utc();
    let started = Instant::now();
    macro_rules! attempt {
        ($op:literal, $call:expr) => {{
            let t = Instant::now();
            let result = $call.await.map(drop);
            let took = t.elapsed();
            eprintln!("{} returned after {took:?}", $op);
            assert!(
                took < Duration::from_secs(5),
                "{} took {took:?}: not bounded",
                $op
            );
            ($op, result)
        }};
    }
    let results: Vec<(&str, Result<(), StoreError>)> = vec![
        attempt!("create", store.create(&session(&known.user_id))),
        attempt!("get", store.get(&known.id, now)),
        attempt!("touch", store.touch(&known.id, now)),
        attempt!("delete", store.delete(&known.id)),
        attempt!("delete_for_user", store.delete_for_user(&known.user_id)),
        attempt!(
            "delete_for_user_except",
            store.delete_for_user_except(&known.user_id, &known.id)
        ),
        attempt!("list_for_user", store.list_for_user(&known.user_id, now)),
        attempt!("purge_expired", store.purge_expired(now)),
    ];
    for (op, result) in results {
        match result {
            Err(StoreError::Backend(source)) => {
                assert!(
                    !source.to_string().is_empty(),
                    "{op}: the backend error is kept"
                )
            }
            other => panic!("{op} during the outage: expected StoreError::Backend, got {other:?}"),
        }
    }
    let took = started.elapsed();
    assert!(
        took < Duration::from_secs(30),
        "seven failing operations took {took:?}"
    );
    eprintln!("seven operations failed in {took:?}");
}

/// After the outage the store works again, without being rebuilt.
async fn service_resumes(store: &dyn TokenStore, known: &Session) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match store.get(&known.id, OffsetDateTime::now_utc()).await {
            Ok(found) => {
                assert_eq!(
                    found.as_ref(),
                    Some(known),
                    "data written before the outage is intact"
                );
                break;
            }
            Err(e) if Instant::now() < deadline => {
                eprintln!("not yet back: {e}");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(e) => panic!("the store did not recover within 30 s: {e:?}"),
        }
    }
    let s = session(&known.user_id);
    store.create(&s).await.expect("create after recovery");
    assert!(store.delete(&s.id).await.expect("delete after recovery"));
    assert!(store.delete(&known.id).await.expect("cleanup"));
}

#[cfg(feature = "postgres")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_outage_is_a_typed_error_and_service_resumes() {
    let schema = crate::support::stores::PgSchema::new().await;
    let url = crate::support::stores::postgres_url();
    let target = target_of(&url, 5432);
    let proxy = Proxy::start(target).await;
    let store =
        keycard::postgres::PostgresTokenStore::connect(&with_addr(&url, target, proxy.addr))
            .await
            .expect("connect through the proxy")
            .with_table(&schema.table("sessions"))
            .expect("valid table");
    store.migrate().await.expect("migrate");
    let known = session(&UserId::from("outage"));
    store.create(&known).await.expect("create");

    proxy.cut();
    every_operation_fails_cleanly(&store, &known).await;
    proxy.restore().await;
    service_resumes(&store, &known).await;
}

/// The same for MySQL / MariaDB (the `mysql` module's server).
#[cfg(feature = "mysql")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mysql_outage_is_a_typed_error_and_service_resumes() {
    let tables = crate::support::mysql::MyTables::new().await;
    let url = crate::support::mysql::mysql_url();
    let target = target_of(&url, 3306);
    let proxy = Proxy::start(target).await;
    let store = keycard::mysql::Mysql::connect(&with_addr(&url, target, proxy.addr))
        .await
        .expect("connect through the proxy")
        .token_store()
        .with_table(&tables.table("sessions"))
        .expect("valid table");
    store.migrate().await.expect("migrate");
    let known = session(&UserId::from("outage"));
    store.create(&known).await.expect("create");

    proxy.cut();
    every_operation_fails_cleanly(&store, &known).await;
    proxy.restore().await;
    service_resumes(&store, &known).await;
}

#[cfg(feature = "redis")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_outage_is_a_typed_error_and_service_resumes() {
    let ns = crate::support::stores::RedisPrefix::new().await;
    let url = crate::support::stores::redis_url();
    let target = target_of(&url, 6379);
    let proxy = Proxy::start(target).await;
    let store = keycard::redis::RedisTokenStore::connect(&with_addr(&url, target, proxy.addr))
        .await
        .expect("connect through the proxy")
        .with_key_prefix(ns.prefix.clone());
    let known = session(&UserId::from("outage"));
    store.create(&known).await.expect("create");

    proxy.cut();
    every_operation_fails_cleanly(&store, &known).await;
    proxy.restore().await;
    service_resumes(&store, &known).await;
}

// ---------------------------------------------------------------------------------------------
// A throttle behind the cut

const EMAIL: &str = "ann@example.com";
const PASSWORD: &str = "correct horse battery staple";
/// Wrong passwords allowed per (account, address).
const GUESSES: u32 = 3;

fn guess_limits() -> ThrottleLimits {
    ThrottleLimits::default().per_account_ip(Limit::new(GUESSES, Duration::from_secs(900)))
}

fn from(ip: &str) -> ClientInfo {
    ClientInfo::none().with_ip(ip.parse().expect("test address"))
}

/// `f` finished within the bound every outage test holds operations to.
async fn bounded<T>(what: &str, f: impl std::future::Future<Output = T>) -> T {
    let started = Instant::now();
    let out = f.await;
    let took = started.elapsed();
    eprintln!("{what} returned after {took:?}");
    assert!(
        took < Duration::from_secs(5),
        "{what} took {took:?}: not bounded"
    );
    out
}

/// Users and sessions in memory (they stay up); only `throttle` is behind `proxy`.
async fn login_behind_a_cut_throttle(throttle: impl Throttle + Clone + 'static, proxy: &Proxy) {
    let users = Arc::new(MemoryUserStore::new());
    let build = |outage: ThrottleOutage| {
        Authenticator::builder(Arc::clone(&users), MemoryTokenStore::new())
            .password_hasher(Argon2Hasher::insecure_for_tests())
            .throttle(throttle.clone())
            .throttle_outage(outage)
            .build()
    };
    let closed = build(ThrottleOutage::default());
    let open = build(ThrottleOutage::FailOpen);
    let hash = closed.hash_password(PASSWORD).await.expect("hash");
    users
        .insert(UserRecord::new(UserId::from("ann"), EMAIL, hash))
        .expect("seed");
    closed
        .login(EMAIL, PASSWORD, from("198.18.60.1"))
        .await
        .expect("login before the outage");

    proxy.cut();
    match bounded(
        "fail-closed login",
        closed.login(EMAIL, PASSWORD, from("198.18.60.1")),
    )
    .await
    {
        Err(Error::ThrottleUnavailable(ThrottleError::Backend(_))) => {}
        other => panic!(
            "fail closed: expected Error::ThrottleUnavailable(Backend), got {:?}",
            other.map(drop)
        ),
    }
    match bounded(
        "fail-open login",
        open.login(EMAIL, "wrong password", from("198.18.60.1")),
    )
    .await
    {
        Err(Error::InvalidCredentials) => {}
        other => panic!(
            "fail open: the password must be checked, got {:?}",
            other.map(drop)
        ),
    }
    bounded(
        "fail-open login",
        open.login(EMAIL, PASSWORD, from("198.18.60.1")),
    )
    .await
    .expect("fail open: the right password logs in");

    proxy.restore().await;
    let attacker = from("198.18.60.2");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match closed
            .login(EMAIL, "wrong password", attacker.clone())
            .await
        {
            Err(Error::InvalidCredentials) => break,
            Err(Error::ThrottleUnavailable(e)) if Instant::now() < deadline => {
                eprintln!("throttle not yet back: {e}");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            other => panic!(
                "the throttle did not recover within 30 s: {:?}",
                other.map(drop)
            ),
        }
    }
    for i in 1..GUESSES {
        assert!(
            matches!(
                closed
                    .login(EMAIL, "wrong password", attacker.clone())
                    .await,
                Err(Error::InvalidCredentials)
            ),
            "guess {} of {GUESSES} after recovery",
            i + 1
        );
    }
    assert!(
        matches!(
            closed.login(EMAIL, PASSWORD, attacker).await,
            Err(Error::Throttled { .. })
        ),
        "throttling works again after the outage"
    );
}

#[cfg(feature = "postgres")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_throttle_outage_fails_closed_or_open_and_recovers() {
    let schema = crate::support::stores::PgSchema::new().await;
    let url = crate::support::stores::postgres_url();
    let target = target_of(&url, 5432);
    let proxy = Proxy::start(target).await;
    let throttle = keycard::postgres::PostgresThrottle::connect(
        &with_addr(&url, target, proxy.addr),
        guess_limits(),
    )
    .await
    .expect("connect through the proxy")
    .with_table(&schema.table("throttle"))
    .expect("valid table");
    throttle.migrate().await.expect("migrate");
    login_behind_a_cut_throttle(throttle, &proxy).await;
}

#[cfg(feature = "mysql")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mysql_throttle_outage_fails_closed_or_open_and_recovers() {
    let tables = crate::support::mysql::MyTables::new().await;
    let url = crate::support::mysql::mysql_url();
    let target = target_of(&url, 3306);
    let proxy = Proxy::start(target).await;
    let throttle = keycard::mysql::Mysql::connect(&with_addr(&url, target, proxy.addr))
        .await
        .expect("connect through the proxy")
        .throttle(guess_limits())
        .with_table(&tables.table("throttle"))
        .expect("valid table");
    throttle.migrate().await.expect("migrate");
    login_behind_a_cut_throttle(throttle, &proxy).await;
}

#[cfg(feature = "redis")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_throttle_outage_fails_closed_or_open_and_recovers() {
    let ns = crate::support::stores::RedisPrefix::new().await;
    let url = crate::support::stores::redis_url();
    let target = target_of(&url, 6379);
    let proxy = Proxy::start(target).await;
    let throttle = keycard::redis::RedisThrottle::connect(
        &with_addr(&url, target, proxy.addr),
        guess_limits(),
    )
    .await
    .expect("connect through the proxy")
    .with_key_prefix(ns.throttle_prefix());
    login_behind_a_cut_throttle(throttle, &proxy).await;
}
