//! The NIST SP 800-63B cap (at most 100 consecutive failures per account) holds through the
//! real `Authenticator` with its default `MemoryThrottle`, even from an address trusted for
//! the account (one the user logged in from: the same NAT, CGNAT or IPv6 /64 as an
//! attacker), while outsiders still cannot lock the user out.

use std::net::IpAddr;
use std::time::Duration;

use crate::support::counting_hasher::CountingHasher;
use keycard::{
    Argon2Hasher, Authenticator, ClientInfo, Error, ManualClock, MemoryTokenStore, MemoryUserStore,
    PasswordHasher, UserRecord,
};
use time::OffsetDateTime;

const EMAIL: &str = "ann@example.com";
const PASSWORD: &str = "correct horse battery staple";
const HOME: &str = "192.0.2.10";

type Users = MemoryUserStore<UserRecord>;

struct Fixture {
    auth: Authenticator<Users>,
    clock: ManualClock,
    hasher: CountingHasher,
}

/// The default authenticator (default throttle limits), a fast hasher and a manual clock.
fn fixture() -> Fixture {
    let hasher = CountingHasher::new(Argon2Hasher::insecure_for_tests());
    let clock = ManualClock::new(OffsetDateTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000));
    let auth = Authenticator::builder(Users::new(), MemoryTokenStore::new())
        .password_hasher(hasher.clone())
        .clock(clock.clone())
        .build();
    let phc = hasher.inner.hash(PASSWORD.as_bytes()).expect("hash");
    auth.users()
        .insert(UserRecord::new(1_i64, EMAIL, phc))
        .expect("new user");
    Fixture {
        auth,
        clock,
        hasher,
    }
}

fn from(ip: &str) -> ClientInfo {
    ClientInfo::none().with_ip(ip.parse::<IpAddr>().expect("test ip"))
}

/// One wrong guess: `true` if the password was checked, `false` if throttled.
async fn guess(f: &Fixture, ip: &str, n: usize) -> bool {
    match f.auth.login(EMAIL, &format!("guess {n}"), from(ip)).await {
        Err(Error::InvalidCredentials) => true,
        Err(Error::Throttled { .. }) => false,
        other => panic!("guess {n} from {ip}: unexpected {other:?}"),
    }
}

#[tokio::test]
async fn a_trusted_address_gets_at_most_100_checked_guesses_a_day() {
    let f = fixture();
    f.auth
        .login(EMAIL, PASSWORD, from(HOME))
        .await
        .expect("the user logs in from home: the address is now trusted");
    let verifies_before = f.hasher.verifies();

    // An attacker behind the same address guesses for 72 hours: every 15 minutes, until
    // refused.
    const STEP: Duration = Duration::from_secs(15 * 60);
    let mut checked_per_day = [0usize; 3];
    let mut n = 0;
    let mut refused_after_100 = false;
    for step in 0..72 * 4 {
        let day = step / (24 * 4);
        loop {
            n += 1;
            if !guess(&f, HOME, n).await {
                if checked_per_day[day] == 100 {
                    refused_after_100 = true;
                }
                break;
            }
            checked_per_day[day] += 1;
            assert!(
                checked_per_day[day] <= 100,
                "more than 100 checked guesses on day {day}"
            );
        }
        f.clock.advance(STEP);
    }
    let total: usize = checked_per_day.iter().sum();
    assert!(total <= 300, "{total} checked guesses in 72 h");
    assert_eq!(checked_per_day, [100, 100, 100], "the cap, not less");
    assert!(
        refused_after_100,
        "refused (Throttled) once 100 were checked"
    );
    assert_eq!(
        f.hasher.verifies() - verifies_before,
        total,
        "only the checked guesses cost a verification"
    );
}

#[tokio::test]
async fn outsiders_filling_the_account_do_not_lock_out_the_trusted_user() {
    let f = fixture();
    f.auth
        .login(EMAIL, PASSWORD, from(HOME))
        .await
        .expect("the user logs in from home: the address is now trusted");

    // 200 wrong guesses from 200 other (untrusted) addresses: the per-account limit (100 a
    // day) lets the first 100 be checked and refuses the rest.
    let mut checked = 0;
    for i in 0..200 {
        let ip = format!("198.51.100.{}", i + 1);
        if guess(&f, &ip, i).await {
            checked += 1;
        }
        f.clock.advance(Duration::from_secs(1));
    }
    assert_eq!(checked, 100, "the per-account cap on untrusted addresses");

    // The real user, at the address they logged in from, still gets in.
    f.auth
        .login(EMAIL, PASSWORD, from(HOME))
        .await
        .expect("the trusted user logs in with the right password");
    // Their success cleared the account's consecutive failures: outsiders count from zero.
    assert!(guess(&f, "203.0.113.7", 999).await);
}
