//! Two application instances (two `Authenticator`s with their own store objects) sharing one
//! PostgreSQL database, two sharing one Redis, two sharing one Redis Cluster and two sharing
//! one SQLite file: what one does, the other sees at once, sessions and login throttling
//! alike. The PostgreSQL, Redis and Redis Cluster cases need the servers of
//! the `postgres`, `redis_store` and `redis_cluster` modules and fail when they are
//! down.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use keycard::throttle::{Limit, Throttle, ThrottleLimits};
use keycard::{
    Argon2Hasher, Authenticator, ClientInfo, Error, ManualClock, MemoryTokenStore, MemoryUserStore,
    TokenStore, UserId, UserRecord, UserStore,
};
use time::OffsetDateTime;
use tokio::task::JoinSet;

const EMAIL: &str = "ann@example.com";
const PASSWORD: &str = "correct horse battery staple";
const TTL: Duration = Duration::from_secs(3600);

/// Builds one instance over its own stores.
fn instance<U: UserStore>(
    users: U,
    tokens: impl TokenStore + 'static,
    clock: &ManualClock,
) -> Authenticator<U> {
    Authenticator::builder(users, tokens)
        .password_hasher(Argon2Hasher::insecure_for_tests())
        .session_ttl(TTL)
        .clock(clock.clone())
        .build()
}

/// The scenario, on any pair of instances whose stores share one server.
async fn two_instances_share_sessions<U: UserStore, V: UserStore>(
    a: &Authenticator<U>,
    b: &Authenticator<V>,
    clock: &ManualClock,
) {
    // A login on A validates on B.
    let login = a
        .login(EMAIL, PASSWORD, ClientInfo::none())
        .await
        .expect("login on A");
    let token = login.token.expose_secret().to_owned();
    let on_b = b.validate(&token).await.expect("A's token validates on B");
    assert_eq!(on_b.session.id, login.session.id);
    assert_eq!(
        b.list_for_user(&login.session.user_id)
            .await
            .expect("list on B")
            .len(),
        1
    );

    // A logout on B is seen at once by A.
    assert!(b.logout(&token).await.expect("logout on B").destroyed());
    assert!(
        matches!(a.validate(&token).await, Err(Error::InvalidToken)),
        "A must see B's logout at once"
    );
    assert!(!a
        .logout(&token)
        .await
        .expect("logout again on A")
        .destroyed());

    // Logout everywhere on A ends B's sessions.
    let one = b
        .login(EMAIL, PASSWORD, ClientInfo::none())
        .await
        .expect("login on B");
    let two = b
        .login(EMAIL, PASSWORD, ClientInfo::none())
        .await
        .expect("login on B");
    assert_eq!(
        a.logout_all(&one.session.user_id)
            .await
            .expect("logout_all on A"),
        2
    );
    for t in [&one.token, &two.token] {
        assert!(matches!(
            b.validate(t.expose_secret()).await,
            Err(Error::InvalidToken)
        ));
    }

    // A purge on one instance is seen by both.
    let first = a
        .login(EMAIL, PASSWORD, ClientInfo::none())
        .await
        .expect("login on A");
    let second = b
        .login(EMAIL, PASSWORD, ClientInfo::none())
        .await
        .expect("login on B");
    clock.advance(TTL + Duration::from_secs(1));
    let fresh = a
        .login(EMAIL, PASSWORD, ClientInfo::none())
        .await
        .expect("login after expiry");
    let purged = b.expire().await.expect("purge on B");
    assert!(
        purged >= 2,
        "B's purge removed both expired sessions, got {purged}"
    );
    let user = first.session.user_id.clone();
    for s in [&first.session, &second.session] {
        // Look as of login time: a purged session is gone, not just hidden as expired.
        for tokens in [a.tokens(), b.tokens()] {
            assert_eq!(
                tokens.get(&s.id, s.created_at).await.expect("get"),
                None,
                "purged on B, gone for both"
            );
        }
    }
    for t in [&first.token, &second.token] {
        assert!(matches!(
            a.validate(t.expose_secret()).await,
            Err(Error::InvalidToken)
        ));
        assert!(matches!(
            b.validate(t.expose_secret()).await,
            Err(Error::InvalidToken)
        ));
    }
    let live_a = a.list_for_user(&user).await.expect("list on A");
    let live_b = b.list_for_user(&user).await.expect("list on B");
    assert_eq!(live_a.len(), 1);
    assert_eq!(live_a, live_b, "both instances list the same live session");
    assert_eq!(live_a[0].id, fresh.session.id);
    b.validate(fresh.token.expose_secret())
        .await
        .expect("the fresh session is live on B");
}

#[cfg(feature = "sqlite")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_over_one_sqlite_file() {
    use keycard::sqlite::{SqliteTokenStore, SqliteUserStore};
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("shared.db");
    let clock = ManualClock::new(OffsetDateTime::now_utc());
    let open = || async {
        let tokens = SqliteTokenStore::open(&path).await.expect("open");
        tokens.migrate().await.expect("migrate");
        let users = SqliteUserStore::open(&path).await.expect("open");
        users.migrate().await.expect("migrate");
        (users, tokens)
    };
    let (users_a, tokens_a) = open().await;
    let (users_b, tokens_b) = open().await;
    let a = instance(users_a, tokens_a, &clock);
    let b = instance(users_b, tokens_b, &clock);
    let hash = a.hash_password(PASSWORD).await.expect("hash");
    let ann = keycard::UserRecord::new(UserId::from("ann"), EMAIL, hash);
    assert!(a.users().insert_if_absent(&ann).await.expect("seed on A"));
    assert!(!b.users().insert_if_absent(&ann).await.expect("seed on B"));
    two_instances_share_sessions(&a, &b, &clock).await;
}

#[cfg(feature = "postgres")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_over_one_postgres() {
    let schema = crate::support::stores::PgSchema::new().await;
    let clock = ManualClock::new(OffsetDateTime::now_utc());
    let a = instance(
        schema.user_store().await,
        schema.token_store().await,
        &clock,
    );
    let b = instance(
        schema.user_store().await,
        schema.token_store().await,
        &clock,
    );
    let hash = a.hash_password(PASSWORD).await.expect("hash");
    let ann = keycard::UserRecord::new(UserId::from("ann"), EMAIL, hash);
    // Both instances seed on start; the second seeding is a no-op.
    assert!(a.users().insert_if_absent(&ann).await.expect("seed on A"));
    assert!(!b.users().insert_if_absent(&ann).await.expect("seed on B"));
    two_instances_share_sessions(&a, &b, &clock).await;
}

#[cfg(feature = "redis")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_over_one_redis() {
    let ns = crate::support::stores::RedisPrefix::new().await;
    let clock = ManualClock::new(OffsetDateTime::now_utc());
    // With Redis, users stay in each instance (here: memory, seeded identically).
    let users = || keycard::MemoryUserStore::new();
    let a = instance(users(), ns.token_store().await, &clock);
    let b = instance(users(), ns.token_store().await, &clock);
    let hash = a.hash_password(PASSWORD).await.expect("hash");
    for auth in [&a, &b] {
        auth.users()
            .insert(keycard::UserRecord::new(
                UserId::from("ann"),
                EMAIL,
                hash.clone(),
            ))
            .expect("seed");
    }
    two_instances_share_sessions(&a, &b, &clock).await;
}

/// The same over one MySQL / MariaDB database (the `mysql` module's server).
#[cfg(feature = "mysql")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_over_one_mysql() {
    let tables = crate::support::mysql::MyTables::new().await;
    let clock = ManualClock::new(OffsetDateTime::now_utc());
    let a = instance(
        tables.user_store().await,
        tables.token_store().await,
        &clock,
    );
    let b = instance(
        tables.user_store().await,
        tables.token_store().await,
        &clock,
    );
    let hash = a.hash_password(PASSWORD).await.expect("hash");
    let ann = keycard::UserRecord::new(UserId::from("ann"), EMAIL, hash);
    // Both instances seed on start; the second seeding is a no-op.
    assert!(a.users().insert_if_absent(&ann).await.expect("seed on A"));
    assert!(!b.users().insert_if_absent(&ann).await.expect("seed on B"));
    two_instances_share_sessions(&a, &b, &clock).await;
}

// ---------------------------------------------------------------------------------------------
// One throttle shared by several instances

/// Wrong passwords allowed per (account, address) in the throttle scenarios.
const GUESSES: u32 = 5;

fn guess_limits() -> ThrottleLimits {
    ThrottleLimits::default().per_account_ip(Limit::new(GUESSES, Duration::from_secs(900)))
}

type SharedUsers = Arc<MemoryUserStore<UserRecord>>;

/// One user store (the throttle, not the users, is what the instances share here) holding
/// ann.
async fn shared_users() -> SharedUsers {
    let users = Arc::new(MemoryUserStore::new());
    let hasher = Authenticator::builder(Arc::clone(&users), MemoryTokenStore::new())
        .password_hasher(Argon2Hasher::insecure_for_tests())
        .build();
    let hash = hasher.hash_password(PASSWORD).await.expect("hash");
    users
        .insert(UserRecord::new(UserId::from("ann"), EMAIL, hash))
        .expect("seed");
    users
}

/// An instance whose logins are throttled by `throttle` alone: its per-process bounds (logins
/// in flight per address, hashing queue) are set out of the way.
fn guarded(users: &SharedUsers, throttle: impl Throttle + 'static) -> Authenticator<SharedUsers> {
    Authenticator::builder(Arc::clone(users), MemoryTokenStore::new())
        .password_hasher(Argon2Hasher::insecure_for_tests())
        .max_logins_in_flight_per_ip(256)
        .max_queued_hashes(256)
        .throttle(throttle)
        .build()
}

fn from(ip: &str) -> ClientInfo {
    ClientInfo::none().with_ip(ip.parse::<IpAddr>().expect("test address"))
}

/// Concurrent wrong passwords for one account from one address, spread over two instances:
/// exactly [`GUESSES`] are checked in total, the rest refused; then a restarted instance (a
/// new throttle over the same store) grants no fresh guess.
async fn instances_share_one_throttle(
    a: &Authenticator<SharedUsers>,
    b: &Authenticator<SharedUsers>,
    restarted: impl std::future::Future<Output = Authenticator<SharedUsers>>,
) {
    let attacker = "198.18.40.2";
    let mut logins = JoinSet::new();
    for i in 0..6 * GUESSES {
        let auth = if i % 2 == 0 { a.clone() } else { b.clone() };
        logins.spawn(async move {
            auth.login(EMAIL, "wrong password", from(attacker))
                .await
                .map(drop)
        });
    }
    let (mut checked, mut throttled) = (0, 0);
    while let Some(outcome) = logins.join_next().await {
        match outcome.expect("a login task panicked") {
            Err(Error::InvalidCredentials) => checked += 1,
            Err(Error::Throttled { .. }) => throttled += 1,
            other => panic!("a wrong password must be checked or throttled, got {other:?}"),
        }
    }
    assert_eq!(
        checked, GUESSES,
        "two instances together check exactly the (account, IP) limit of wrong passwords"
    );
    assert_eq!(throttled, 5 * GUESSES);
    for auth in [a, b] {
        assert!(
            matches!(
                auth.login(EMAIL, PASSWORD, from(attacker)).await,
                Err(Error::Throttled { .. })
            ),
            "the pair is held on both instances, even for the right password"
        );
    }

    let restarted = restarted.await;
    for password in ["wrong password", PASSWORD] {
        assert!(
            matches!(
                restarted.login(EMAIL, password, from(attacker)).await,
                Err(Error::Throttled { .. })
            ),
            "a restart grants no fresh guesses"
        );
    }
    restarted
        .login(EMAIL, PASSWORD, from("198.18.40.3"))
        .await
        .expect("the account still logs in from another address");
}

#[cfg(feature = "sqlite")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instances_share_one_sqlite_throttle() {
    use keycard::sqlite::SqliteThrottle;
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("throttle.db");
    let open = || async {
        let throttle = SqliteThrottle::open(&path, guess_limits())
            .await
            .expect("open");
        throttle.migrate().await.expect("migrate");
        throttle
    };
    let users = shared_users().await;
    let a = guarded(&users, open().await);
    let b = guarded(&users, open().await);
    instances_share_one_throttle(&a, &b, async { guarded(&users, open().await) }).await;
}

#[cfg(feature = "postgres")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instances_share_one_postgres_throttle() {
    let schema = crate::support::stores::PgSchema::new().await;
    let users = shared_users().await;
    let a = guarded(&users, schema.throttle(guess_limits()).await);
    let b = guarded(&users, schema.throttle(guess_limits()).await);
    instances_share_one_throttle(&a, &b, async {
        guarded(&users, schema.throttle(guess_limits()).await)
    })
    .await;
}

/// The same over one MySQL / MariaDB throttle table.
#[cfg(feature = "mysql")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instances_share_one_mysql_throttle() {
    let tables = crate::support::mysql::MyTables::new().await;
    let users = shared_users().await;
    let a = guarded(&users, tables.throttle(guess_limits()).await);
    let b = guarded(&users, tables.throttle(guess_limits()).await);
    instances_share_one_throttle(&a, &b, async {
        guarded(&users, tables.throttle(guess_limits()).await)
    })
    .await;
}

#[cfg(feature = "redis")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instances_share_one_redis_throttle() {
    let ns = crate::support::stores::RedisPrefix::new().await;
    let users = shared_users().await;
    let a = guarded(&users, ns.throttle(guess_limits()).await);
    let b = guarded(&users, ns.throttle(guess_limits()).await);
    instances_share_one_throttle(&a, &b, async {
        guarded(&users, ns.throttle(guess_limits()).await)
    })
    .await;
}

#[cfg(feature = "redis")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_over_one_redis_cluster() {
    let ns = crate::support::stores::RedisClusterPrefix::new().await;
    let clock = ManualClock::new(OffsetDateTime::now_utc());
    let users = || keycard::MemoryUserStore::new();
    let a = instance(users(), ns.token_store().await, &clock);
    let b = instance(users(), ns.token_store().await, &clock);
    let hash = a.hash_password(PASSWORD).await.expect("hash");
    for auth in [&a, &b] {
        auth.users()
            .insert(keycard::UserRecord::new(
                UserId::from("ann"),
                EMAIL,
                hash.clone(),
            ))
            .expect("seed");
    }
    two_instances_share_sessions(&a, &b, &clock).await;
}

#[cfg(feature = "redis")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instances_share_one_redis_cluster_throttle() {
    let ns = crate::support::stores::RedisClusterPrefix::new().await;
    let users = shared_users().await;
    let a = guarded(&users, ns.throttle(guess_limits()).await);
    let b = guarded(&users, ns.throttle(guess_limits()).await);
    instances_share_one_throttle(&a, &b, async {
        guarded(&users, ns.throttle(guess_limits()).await)
    })
    .await;
}
