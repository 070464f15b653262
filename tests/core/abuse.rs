//! Login abuse against the core, as an attacker would try it: racing guesses, locking the real
//! user out, accounts with unusable stored hashes.

use crate::support::counting_hasher::CountingHasher;

use std::net::IpAddr;
use std::time::Duration;

use keycard::throttle::{Limit, MemoryThrottle, ThrottleLimits};
use keycard::{
    Argon2Hasher, Authenticator, ClientInfo, Error, MemoryTokenStore, MemoryUserStore,
    PasswordHasher, UserRecord,
};

const EMAIL: &str = "ann@example.com";
const PASSWORD: &str = "correct horse battery staple";

type Users = MemoryUserStore<UserRecord>;

fn auth_with(
    hasher: &CountingHasher,
    configure: impl FnOnce(keycard::AuthenticatorBuilder<Users>) -> keycard::AuthenticatorBuilder<Users>,
) -> Authenticator<Users> {
    let auth = configure(
        Authenticator::builder(Users::new(), MemoryTokenStore::new())
            .password_hasher(hasher.clone()),
    )
    .build();
    let phc = hasher.inner.hash(PASSWORD.as_bytes()).expect("hash");
    auth.users()
        .insert(UserRecord::new(1_i64, EMAIL, phc))
        .expect("new user");
    auth
}

fn from(ip: &str) -> ClientInfo {
    ClientInfo::none().with_ip(ip.parse::<IpAddr>().expect("test ip"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_guesses_get_exactly_the_limit_verified() {
    let hasher = CountingHasher::new(Argon2Hasher::insecure_for_tests());
    // No per-address in-flight bound and room in the queue: only the throttle stands.
    let auth = auth_with(&hasher, |b| {
        b.max_logins_in_flight_per_ip(1000).max_queued_hashes(1000)
    });
    let tasks: Vec<_> = (0..200)
        .map(|i| {
            let auth = auth.clone();
            tokio::spawn(async move {
                auth.login(EMAIL, &format!("guess {i}"), from("192.0.2.1"))
                    .await
            })
        })
        .collect();
    let (mut invalid, mut throttled) = (0, 0);
    for task in tasks {
        match task.await.expect("joined") {
            Err(Error::InvalidCredentials) => invalid += 1,
            Err(Error::Throttled { .. }) => throttled += 1,
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!((invalid, throttled), (10, 190));
    assert_eq!(
        hasher.verifies(),
        10,
        "exactly the limit of guesses was verified"
    );
    // The right password at the end of the burst, from the same address: refused.
    assert!(matches!(
        auth.login(EMAIL, PASSWORD, from("192.0.2.1")).await,
        Err(Error::Throttled { .. })
    ));
}

#[tokio::test]
async fn an_attacker_cannot_lock_the_real_user_out() {
    let hasher = CountingHasher::new(Argon2Hasher::insecure_for_tests());
    let auth = auth_with(&hasher, |b| b);
    // The real user logged in from home before.
    auth.login(EMAIL, PASSWORD, from("198.51.100.7"))
        .await
        .expect("first login");
    // An attacker locks their own address...
    for _ in 0..12 {
        let _ = auth.login(EMAIL, "guess", from("203.0.113.1")).await;
    }
    // ...then fills the per-account limit from 100 more addresses, 1 guess each.
    for i in 0..105 {
        let _ = auth
            .login(EMAIL, "guess", from(&format!("203.0.113.{}", i + 2)))
            .await;
    }
    assert!(
        matches!(
            auth.login(EMAIL, "guess", from("203.0.114.1")).await,
            Err(Error::Throttled { .. })
        ),
        "a new address meets the per-account limit"
    );
    // The real user, at an address they used before, still logs in.
    auth.login(EMAIL, PASSWORD, from("198.51.100.7"))
        .await
        .expect("the trusted address is not held by the per-account limit");
}

#[tokio::test]
async fn unusable_stored_hashes_cost_a_dummy_verification_and_count_as_failures() {
    let hasher = CountingHasher::new(Argon2Hasher::insecure_for_tests());
    let auth = auth_with(&hasher, |b| {
        b.throttle(MemoryThrottle::new(
            ThrottleLimits::default().per_account_ip(Limit::new(3, Duration::from_secs(60))),
        ))
    });
    for (id, stored) in [
        (2_i64, "!"),
        (3, ""),
        (
            4,
            "$2b$12$R9h/cIPz0gi.URNNX3kh2OPST9/PgBkqquzi.Ss7KIUgO2t0jWMUW",
        ),
        (
            5,
            "$argon2id$v=19$m=4194304,t=2,p=1$c29tZXNhbHQ$AAAAAAAAAAAAAAAAAAAAAA",
        ),
    ] {
        let email = format!("user{id}@example.com");
        auth.users()
            .insert(UserRecord::new(id, &email, stored.to_owned()))
            .expect("insert");
        let dummies = hasher.dummy_verifies();
        for _ in 0..3 {
            let err = auth
                .login(&email, "anything", from("192.0.2.9"))
                .await
                .expect_err("no password matches an unusable hash");
            assert!(
                matches!(err, Error::InvalidCredentials),
                "{stored}: {err:?}"
            );
        }
        assert_eq!(
            hasher.dummy_verifies() - dummies,
            3,
            "{stored}: each attempt verified against the dummy hash, like an unknown user"
        );
        assert!(
            matches!(
                auth.login(&email, "anything", from("192.0.2.9")).await,
                Err(Error::Throttled { .. })
            ),
            "{stored}: the failures were counted"
        );
    }
}
