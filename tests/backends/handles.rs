//! The backend handles (`keycard::postgres::Postgres`, `keycard::sqlite::Sqlite`,
//! `keycard::redis::Redis`): an authenticator built from a handle throttles logins in the
//! backend by default, so a user throttled through one instance is refused through another
//! instance over the same database, with no throttle configured by hand.
//!
//! Needs the servers of the other live tests (`KEYCARD_POSTGRES_URL`, `KEYCARD_REDIS_URL`).

use std::net::IpAddr;

use keycard::{Argon2Hasher, Authenticator, ClientInfo, Error, UserStore};

const PASSWORD: &str = "correct horse battery staple";
/// The default (account, IP) limit: 10 failures per 15 minutes.
const DEFAULT_GUESSES: usize = 10;

/// An email of this run only, so counts of earlier runs (the handles use the default tables
/// and keys) never interfere.
fn unique_email(tag: &str) -> String {
    format!(
        "{tag}-{}-{:08x}@example.com",
        std::process::id(),
        rand::random::<u32>()
    )
}

fn from(ip: &str) -> ClientInfo {
    ClientInfo::none().with_ip(ip.parse::<IpAddr>().expect("test address"))
}

/// The password's hash with the test hasher.
async fn test_hash() -> String {
    let auth = Authenticator::builder(
        keycard::MemoryUserStore::<keycard::UserRecord>::new(),
        keycard::MemoryTokenStore::new(),
    )
    .password_hasher(Argon2Hasher::insecure_for_tests())
    .build();
    auth.hash_password(PASSWORD).await.expect("hash")
}

/// Fails `DEFAULT_GUESSES` logins of `email` through `a`, then checks that `b` refuses even
/// the right password from the same address, and still lets the user in from another one.
async fn throttled_through_one_is_refused_through_the_other<U: UserStore, V: UserStore>(
    a: &Authenticator<U>,
    b: &Authenticator<V>,
    email: &str,
) {
    let attacker = "198.51.100.7";
    for _ in 0..DEFAULT_GUESSES {
        assert!(matches!(
            a.login(email, "wrong password", from(attacker)).await,
            Err(Error::InvalidCredentials)
        ));
    }
    assert!(
        matches!(
            a.login(email, PASSWORD, from(attacker)).await,
            Err(Error::Throttled { .. })
        ),
        "the instance that counted refuses"
    );
    assert!(
        matches!(
            b.login(email, PASSWORD, from(attacker)).await,
            Err(Error::Throttled { .. })
        ),
        "the other instance refuses too: the handle's throttle is shared by default"
    );
    b.login(email, PASSWORD, from("198.51.100.8"))
        .await
        .expect("the user still logs in from another address");
}

#[cfg(feature = "postgres")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_postgres_handles_share_the_default_throttle() {
    use keycard::postgres::Postgres;
    let url = crate::support::stores::postgres_url();
    let connect = || async {
        Postgres::connect(&url).await.unwrap_or_else(|e| {
            crate::support::stores::unreachable(
                "PostgreSQL",
                &url,
                crate::support::stores::POSTGRES_ENV,
                &e,
            )
        })
    };
    let (one, two) = (connect().await, connect().await);
    one.migrate().await.expect("migrate");
    two.migrate().await.expect("migrate again: idempotent");
    let email = unique_email("pg");
    let id = email.clone();
    one.user_store()
        .insert_if_absent(&keycard::UserRecord::new(
            id.as_str(),
            &email,
            test_hash().await,
        ))
        .await
        .expect("seed");
    let build = |db: &Postgres| {
        db.authenticator()
            .password_hasher(Argon2Hasher::insecure_for_tests())
            .build()
    };
    throttled_through_one_is_refused_through_the_other(&build(&one), &build(&two), &email).await;
}

#[cfg(feature = "sqlite")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_sqlite_handles_on_one_file_share_the_default_throttle() {
    use keycard::sqlite::Sqlite;
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("keycard.db");
    let one = Sqlite::open(&path).await.expect("open");
    one.migrate().await.expect("migrate");
    let two = Sqlite::open(&path).await.expect("open again");
    two.migrate().await.expect("migrate again: idempotent");
    let email = unique_email("sqlite");
    one.user_store()
        .insert_if_absent(&keycard::UserRecord::new("ann", &email, test_hash().await))
        .await
        .expect("seed");
    let build = |db: &Sqlite| {
        db.authenticator()
            .password_hasher(Argon2Hasher::insecure_for_tests())
            .build()
    };
    throttled_through_one_is_refused_through_the_other(&build(&one), &build(&two), &email).await;
    // One pool per handle: the stores a handle gives share it, so sessions written through
    // one handle's store are read through the other's.
    let auth = build(&two);
    let login = auth
        .login(&email, PASSWORD, from("198.51.100.9"))
        .await
        .expect("login");
    build(&one)
        .validate(login.token.expose_secret())
        .await
        .expect("the session is in the file");
}

#[cfg(feature = "redis")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_redis_handles_share_the_default_throttle() {
    use keycard::redis::Redis;
    let url = crate::support::stores::redis_url();
    let connect = || async {
        Redis::connect(&url).await.unwrap_or_else(|e| {
            crate::support::stores::unreachable(
                "Redis",
                &url,
                crate::support::stores::REDIS_ENV,
                &e,
            )
        })
    };
    let (one, two) = (connect().await, connect().await);
    let email = unique_email("redis");
    let hash = test_hash().await;
    // Redis keeps no users: each instance has the app's user store (here one in memory each).
    let users = || {
        let users = keycard::MemoryUserStore::new();
        users
            .insert(keycard::UserRecord::new("ann", &email, hash.clone()))
            .expect("seed");
        users
    };
    let build = |redis: &Redis| {
        redis
            .authenticator(users())
            .password_hasher(Argon2Hasher::insecure_for_tests())
            .build()
    };
    throttled_through_one_is_refused_through_the_other(&build(&one), &build(&two), &email).await;
    assert!(
        one.revocation_channel().is_ok(),
        "connect keeps a subscriber URL"
    );
}
