//! The session lifecycle beyond login and logout: re-verifying a password, changing it,
//! logging out other devices, revoking one session, listing sessions, and the password
//! policy. Against the in-memory stores.

use crate::support::down_store::DownTokenStore;

use crate::support::counting_hasher::CountingHasher;

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use keycard::throttle::{Limit, ThrottleLimits};
use keycard::{
    Argon2Hasher, Authenticator, ClientInfo, CommonPasswords, Error, ManualClock, MemoryThrottle,
    MemoryTokenStore, MemoryUserStore, PasswordBlocklist, PasswordHasher, PasswordPolicy,
    PasswordRule, Session, StoreError, TokenStore, User, UserId, UserRecord, UserStore,
    MAX_PASSWORD_LEN,
};
use time::OffsetDateTime;

const EMAIL: &str = "ann.lee@example.com";
const PASSWORD: &str = "correct horse battery staple";
const NEW_PASSWORD: &str = "a new and longer passphrase";
const OTHER_EMAIL: &str = "bob@example.com";

type Users = Arc<MemoryUserStore>;

struct Fixture {
    auth: Authenticator<Users>,
    users: Users,
    clock: ManualClock,
    hasher: CountingHasher,
}

impl Fixture {
    fn verifies(&self) -> usize {
        self.hasher.verifies()
    }
    fn hashes(&self) -> usize {
        self.hasher.hashes()
    }
}

fn fixture_with(
    tokens: impl TokenStore + 'static,
    configure: impl FnOnce(keycard::AuthenticatorBuilder<Users>) -> keycard::AuthenticatorBuilder<Users>,
) -> Fixture {
    let hasher = CountingHasher::new(Argon2Hasher::insecure_for_tests());
    let users: Users = Arc::new(MemoryUserStore::new());
    for (id, email) in [(1_i64, EMAIL), (2, OTHER_EMAIL)] {
        let phc = hasher.inner.hash(PASSWORD.as_bytes()).expect("hash");
        users
            .insert(UserRecord::new(id, email, phc))
            .expect("new user");
    }
    let clock = ManualClock::new(OffsetDateTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000));
    let builder = Authenticator::builder(Arc::clone(&users), tokens)
        .password_hasher(hasher.clone())
        .clock(clock.clone());
    Fixture {
        auth: configure(builder).build(),
        users,
        clock,
        hasher,
    }
}

fn fixture() -> Fixture {
    fixture_with(MemoryTokenStore::new(), |b| b)
}

fn ip(last: u8) -> IpAddr {
    IpAddr::from([203, 0, 113, last])
}

/// The client of a request from `203.0.113.<last>`.
fn at(last: u8) -> ClientInfo {
    ClientInfo::none().with_ip(ip(last))
}

/// Logs `email` in from `203.0.113.<last>`; returns the token and its session.
async fn login_from(f: &Fixture, email: &str, last: u8) -> (String, Session) {
    let login = f
        .auth
        .login(
            email,
            PASSWORD,
            ClientInfo::none().with_ip(ip(last)).with_user_agent("test"),
        )
        .await
        .expect("login succeeds");
    (login.token.expose_secret().to_owned(), login.session)
}

async fn stored_hash(f: &Fixture, id: i64) -> String {
    f.users
        .find_by_id(&UserId::from(id))
        .await
        .expect("lookup")
        .expect("user exists")
        .password_hash()
        .to_owned()
}

// ---------------------------------------------------------------------------------------------
// verify_password

#[tokio::test]
async fn verify_password_returns_the_user_for_the_right_password_only() {
    let f = fixture();
    let (_, session) = login_from(&f, EMAIL, 1).await;
    let user = f
        .auth
        .verify_password(&session, PASSWORD, &at(1))
        .await
        .expect("right password");
    assert_eq!(user.email, EMAIL);
    let by_id = f
        .auth
        .verify_password(&UserId::from(1_i64), PASSWORD, &at(1))
        .await
        .expect("by id too");
    assert_eq!(by_id.id, UserId::from(1_i64));
    for wrong in [
        "correct horse battery stapl",
        "",
        "CORRECT HORSE BATTERY STAPLE",
    ] {
        let err = f
            .auth
            .verify_password(&session, wrong, &at(1))
            .await
            .expect_err("wrong password");
        assert!(matches!(err, Error::IncorrectPassword), "{err:?}");
    }
}

#[tokio::test]
async fn verify_password_costs_exactly_one_verification_like_login() {
    let f = fixture_with(MemoryTokenStore::new(), |b| b.reveal_unknown_email(true));
    let (_, session) = login_from(&f, EMAIL, 1).await;

    let before = f.verifies();
    f.auth
        .login(EMAIL, "wrong", ClientInfo::none().with_ip(ip(9)))
        .await
        .expect_err("wrong");
    assert_eq!(f.verifies() - before, 1, "login with a wrong password");

    for (what, who, password) in [
        ("a wrong password", session.user_id.clone(), "wrong"),
        ("the right password", session.user_id.clone(), PASSWORD),
        ("a user who does not exist", UserId::from(404_i64), PASSWORD),
    ] {
        let before = f.verifies();
        let result = f.auth.verify_password(&who, password, &at(1)).await;
        assert_eq!(
            f.verifies() - before,
            1,
            "verify_password with {what} must do exactly one verification, as login does"
        );
        if what != "the right password" {
            // Never UnknownEmail, even with reveal_unknown_email on: the caller is logged in.
            assert!(
                matches!(result, Err(Error::IncorrectPassword)),
                "{what}: {result:?}"
            );
        }
    }
    assert_eq!(f.hashes(), 0, "verification hashes nothing new");
}

#[tokio::test]
async fn verify_password_refuses_an_over_long_password_before_hashing() {
    let f = fixture();
    let (_, session) = login_from(&f, EMAIL, 1).await;
    let before = f.verifies();
    let err = f
        .auth
        .verify_password(&session, &"x".repeat(MAX_PASSWORD_LEN + 1), &at(1))
        .await
        .expect_err("too long");
    assert!(matches!(err, Error::InputTooLong { .. }), "{err:?}");
    assert_eq!(f.verifies(), before);
}

#[tokio::test]
async fn wrong_passwords_in_verify_password_are_counted_by_the_login_throttle() {
    let f = fixture_with(MemoryTokenStore::new(), |b| {
        b.throttle(MemoryThrottle::new(
            ThrottleLimits::default().per_account_ip(Limit::new(3, Duration::from_secs(60))),
        ))
    });
    let (_, session) = login_from(&f, EMAIL, 1).await;
    for _ in 0..3 {
        let err = f
            .auth
            .verify_password(&session, "guess", &at(1))
            .await
            .expect_err("wrong");
        assert!(matches!(err, Error::IncorrectPassword), "{err:?}");
    }
    let before = f.verifies();
    let err = f
        .auth
        .verify_password(&session, PASSWORD, &at(1))
        .await
        .expect_err("throttled, even with the right password");
    assert!(matches!(err, Error::Throttled { .. }), "{err:?}");
    // The same account and address at login is throttled too.
    let err = f
        .auth
        .login(EMAIL, PASSWORD, ClientInfo::none().with_ip(ip(1)))
        .await
        .expect_err("throttled login");
    assert!(matches!(err, Error::Throttled { .. }), "{err:?}");
    assert_eq!(f.verifies(), before, "a throttled check hashes nothing");
}

/// A stolen token used from elsewhere: its wrong guesses are counted under the thief's
/// address, so the owner, at the address the session logged in from, still logs in.
#[tokio::test]
async fn reverification_is_counted_under_the_requests_address_not_the_sessions() {
    let f = fixture_with(MemoryTokenStore::new(), |b| {
        b.throttle(MemoryThrottle::new(
            ThrottleLimits::default().per_account_ip(Limit::new(3, Duration::from_secs(900))),
        ))
    });
    let (_, session) = login_from(&f, EMAIL, 40).await;
    for _ in 0..3 {
        let err = f
            .auth
            .reauthenticate(&session, "guess", &at(41))
            .await
            .expect_err("wrong");
        assert!(matches!(err, Error::IncorrectPassword), "{err:?}");
    }
    let err = f
        .auth
        .verify_password(&session, PASSWORD, &at(41))
        .await
        .expect_err("the thief's address is throttled");
    assert!(matches!(err, Error::Throttled { .. }), "{err:?}");
    f.auth
        .login(EMAIL, PASSWORD, at(40))
        .await
        .expect("the owner's own address is not locked out");
}

// ---------------------------------------------------------------------------------------------
// change_password

#[tokio::test]
async fn change_password_rotates_the_callers_session_and_ends_the_others() {
    let f = fixture();
    let (mine, session) = login_from(&f, EMAIL, 1).await;
    let (laptop, _) = login_from(&f, EMAIL, 2).await;
    let (phone, _) = login_from(&f, EMAIL, 3).await;
    let (bobs, _) = login_from(&f, OTHER_EMAIL, 4).await;

    let changed = f
        .auth
        .change_password(&session, PASSWORD, NEW_PASSWORD, &at(5))
        .await
        .expect("password changed");
    assert_eq!(
        changed.ended, 3,
        "the two other sessions and the caller's old one"
    );

    let fresh = changed.login.token.expose_secret();
    let me = f
        .auth
        .validate(fresh)
        .await
        .expect("the caller goes on with the new token");
    assert_ne!(me.session.id, session.id, "a new session");
    assert_eq!(
        me.session.expires_at, session.expires_at,
        "no longer than before"
    );
    assert_eq!(me.session.client.ip, Some(ip(5)), "the request's client");
    for other in [&mine, &laptop, &phone] {
        let err = f.auth.validate(other).await.expect_err("ended");
        assert!(matches!(err, Error::InvalidToken), "{err:?}");
    }
    f.auth
        .validate(&bobs)
        .await
        .expect("another user's session is untouched");

    let err = f
        .auth
        .login(EMAIL, PASSWORD, ClientInfo::none())
        .await
        .expect_err("the old password no longer works");
    assert!(matches!(err, Error::InvalidCredentials), "{err:?}");
    f.auth
        .login(EMAIL, NEW_PASSWORD, ClientInfo::none())
        .await
        .expect("the new password works");
    f.auth
        .login(OTHER_EMAIL, PASSWORD, ClientInfo::none())
        .await
        .expect("another user's password is unchanged");
    assert!(
        stored_hash(&f, 1).await.starts_with("$argon2id$"),
        "a PHC hash is stored, never the password"
    );
}

#[tokio::test]
async fn a_wrong_current_password_changes_nothing_and_is_counted_by_the_throttle() {
    let f = fixture_with(MemoryTokenStore::new(), |b| {
        b.throttle(MemoryThrottle::new(
            ThrottleLimits::default().per_account_ip(Limit::new(3, Duration::from_secs(60))),
        ))
    });
    let (mine, session) = login_from(&f, EMAIL, 1).await;
    let (other, _) = login_from(&f, EMAIL, 2).await;
    let hash = stored_hash(&f, 1).await;
    let hashes = f.hashes();
    for _ in 0..3 {
        let before = f.verifies();
        let err = f
            .auth
            .change_password(&session, "not my password", NEW_PASSWORD, &at(1))
            .await
            .expect_err("wrong current password");
        assert!(matches!(err, Error::IncorrectPassword), "{err:?}");
        assert_eq!(f.verifies() - before, 1, "one verification, as at login");
    }
    assert_eq!(stored_hash(&f, 1).await, hash, "the hash is unchanged");
    assert_eq!(f.hashes(), hashes, "nothing new was hashed");
    f.auth.validate(&mine).await.expect("still logged in");
    f.auth.validate(&other).await.expect("others untouched");
    let err = f
        .auth
        .change_password(&session, PASSWORD, NEW_PASSWORD, &at(1))
        .await
        .expect_err("the fourth attempt is throttled");
    assert!(matches!(err, Error::Throttled { .. }), "{err:?}");
    assert_eq!(stored_hash(&f, 1).await, hash);
}

#[tokio::test]
async fn change_password_applies_the_policy_before_checking_anything() {
    let f = fixture();
    let (mine, session) = login_from(&f, EMAIL, 1).await;
    let (other, _) = login_from(&f, EMAIL, 2).await;
    let before = f.verifies();
    for (weak, rule) in [
        ("short", "at least 8 characters"),
        ("Password", "commonly used"),
        ("ann.lee@example.com", "email"),
        ("xxann.leexx", "email"),
    ] {
        let err = f
            .auth
            .change_password(&session, PASSWORD, weak, &at(1))
            .await
            .expect_err("weak new password");
        match &err {
            Error::WeakPassword(rejection) => assert!(!rejection.failed().is_empty()),
            other => panic!("{weak:?}: expected WeakPassword, got {other:?}"),
        }
        assert!(err.to_string().contains(rule), "{weak:?}: {err}");
        assert!(
            !err.to_string().contains(weak),
            "the password is not echoed"
        );
    }
    assert_eq!(
        f.verifies(),
        before,
        "a weak new password costs no verification"
    );
    f.auth.validate(&mine).await.expect("nothing changed");
    f.auth.validate(&other).await.expect("nothing changed");
    f.auth
        .login(EMAIL, PASSWORD, ClientInfo::none())
        .await
        .expect("the old password still works");
}

#[tokio::test]
async fn change_password_of_a_deleted_user_is_an_incorrect_password_after_one_verification() {
    let f = fixture();
    let (_, session) = login_from(&f, EMAIL, 1).await;
    f.users.remove(&session.user_id).expect("removed");
    let before = f.verifies();
    let err = f
        .auth
        .change_password(&session, PASSWORD, NEW_PASSWORD, &at(1))
        .await
        .expect_err("no such user");
    assert!(matches!(err, Error::IncorrectPassword), "{err:?}");
    assert_eq!(f.verifies() - before, 1);
}

#[tokio::test]
async fn change_password_fails_with_the_token_store_and_reports_it() {
    let f = fixture_with(DownTokenStore, |b| b);
    let token = keycard::Token::generate().expect("rng");
    let session = Session::new(
        &token,
        UserId::from(1_i64),
        f.auth.now(),
        Duration::from_secs(60),
        ClientInfo::none(),
    );
    let err = f
        .auth
        .change_password(&session, PASSWORD, NEW_PASSWORD, &at(1))
        .await
        .expect_err("the token store is down");
    assert!(matches!(err, Error::Store(_)), "{err:?}");
    let err = f.auth.logout_others(&session).await.expect_err("down");
    assert!(matches!(err, Error::Store(_)), "{err:?}");
    let err = f
        .auth
        .revoke_session(&session.user_id, &session.id)
        .await
        .expect_err("down");
    assert!(matches!(err, Error::Store(_)), "{err:?}");
}

// ---------------------------------------------------------------------------------------------
// logout_others, logout_all, revoke

#[tokio::test]
async fn logout_others_keeps_the_caller_and_logout_all_does_not() {
    let f = fixture();
    let (mine, session) = login_from(&f, EMAIL, 1).await;
    let (a, _) = login_from(&f, EMAIL, 2).await;
    let (b, _) = login_from(&f, EMAIL, 3).await;
    let (bobs, _) = login_from(&f, OTHER_EMAIL, 4).await;
    assert_eq!(f.auth.logout_others(&session).await.expect("others"), 2);
    f.auth.validate(&mine).await.expect("the caller stays");
    for gone in [&a, &b] {
        assert!(matches!(
            f.auth.validate(gone).await,
            Err(Error::InvalidToken)
        ));
    }
    f.auth
        .validate(&bobs)
        .await
        .expect("another user untouched");
    assert_eq!(f.auth.logout_others(&session).await.expect("again"), 0);

    assert_eq!(
        f.auth.logout_all(&session.user_id).await.expect("all"),
        1,
        "logout_all ends the caller's own session too"
    );
    assert!(matches!(
        f.auth.validate(&mine).await,
        Err(Error::InvalidToken)
    ));
    f.auth
        .validate(&bobs)
        .await
        .expect("another user untouched");
}

#[tokio::test]
async fn revoke_ends_only_the_owners_own_sessions() {
    let f = fixture();
    let (mine, session) = login_from(&f, EMAIL, 1).await;
    let (laptop, laptop_session) = login_from(&f, EMAIL, 2).await;
    let (bobs, bob_session) = login_from(&f, OTHER_EMAIL, 3).await;
    let ann = session.user_id.clone();

    // Another user's session id: exactly as unknown, and nothing is deleted.
    assert!(!f
        .auth
        .revoke_session(&ann, &bob_session.id)
        .await
        .expect("revoke"));
    f.auth
        .validate(&bobs)
        .await
        .expect("bob's session survives");
    let unknown = keycard::Token::generate().expect("rng").id();
    assert!(!f.auth.revoke_session(&ann, &unknown).await.expect("revoke"));

    assert!(f
        .auth
        .revoke_session(&ann, &laptop_session.id)
        .await
        .expect("revoke"));
    assert!(matches!(
        f.auth.validate(&laptop).await,
        Err(Error::InvalidToken)
    ));
    assert!(
        !f.auth
            .revoke_session(&ann, &laptop_session.id)
            .await
            .expect("revoke twice"),
        "a second revoke finds nothing"
    );
    f.auth.validate(&mine).await.expect("the caller survives");
}

#[tokio::test]
async fn revoke_of_an_expired_session_finds_nothing() {
    let f = fixture();
    let (_, session) = login_from(&f, EMAIL, 1).await;
    f.clock.advance(Duration::from_secs(24 * 3600));
    assert!(!f
        .auth
        .revoke_session(&session.user_id, &session.id)
        .await
        .expect("revoke"));
}

// ---------------------------------------------------------------------------------------------
// session_views

#[tokio::test]
async fn session_views_mark_the_current_one_and_leak_nothing() {
    let f = fixture_with(MemoryTokenStore::new(), |b| {
        b.idle_timeout(Duration::from_secs(600))
    });
    let (first, _) = login_from(&f, EMAIL, 1).await;
    f.clock.advance(Duration::from_secs(500));
    let (mine, session) = login_from(&f, EMAIL, 2).await;
    let (bobs, _) = login_from(&f, OTHER_EMAIL, 3).await;
    let views = f.auth.list_sessions(&session).await.expect("views");
    assert_eq!(views.len(), 2, "ann's two sessions, not bob's");
    assert!(!views[0].current);
    assert!(views[1].current);
    assert_eq!(views[1].id, session.id);
    assert_eq!(views[1].ip, Some(ip(2)));
    assert_eq!(views[1].user_agent.as_deref(), Some("test"));
    assert!(views[0].created_at < views[1].created_at, "oldest first");

    let json = serde_json::to_string(&views).expect("serializes");
    for token in [&first, &mine, &bobs] {
        let secret = token.split_once('.').expect("dot").1;
        assert!(!json.contains(secret), "a secret leaked in {json}");
    }
    let digest: String = session
        .secret_hash
        .as_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert!(!json.contains(&digest));
    assert!(!json.contains("user_id"), "{json}");
    assert!(!json.contains("secret"), "{json}");

    // Idle past the timeout: the first session is dead and left out.
    f.clock.advance(Duration::from_secs(200));
    f.auth.validate(&mine).await.expect("touch mine");
    let views = f.auth.list_sessions(&session).await.expect("views");
    assert_eq!(views.len(), 1, "{views:?}");
    assert!(views[0].current);
}

// ---------------------------------------------------------------------------------------------
// The password policy

#[test]
fn the_policy_counts_characters_not_bytes() {
    let policy = PasswordPolicy::default().without_blocklist();
    assert!(
        policy.check("ääääääää", None).is_ok(),
        "8 characters, 16 bytes"
    );
    let rejection = policy.check("äääääää", None).expect_err("7 characters");
    assert_eq!(
        rejection.failed(),
        &[PasswordRule::TooShort {
            min_chars: 8,
            chars: 7
        }]
    );
    assert!(policy.check("1234567x", None).is_ok());
    assert!(policy.check("", None).is_err());
}

#[test]
fn the_minimum_is_configurable_and_never_zero() {
    let policy = PasswordPolicy::default().min_chars(12).without_blocklist();
    assert_eq!(policy.min_len(), 12);
    assert!(policy.check("elevenchars", None).is_err());
    assert!(policy.check("twelve chars", None).is_ok());
    let policy = PasswordPolicy::default().min_chars(0).without_blocklist();
    assert_eq!(policy.min_len(), 1);
    assert!(policy.check("", None).is_err());
}

#[test]
fn the_maximum_is_the_login_maximum_in_bytes() {
    let policy = PasswordPolicy::default();
    assert!(policy.check(&"x".repeat(MAX_PASSWORD_LEN), None).is_ok());
    let rejection = policy
        .check(&"x".repeat(MAX_PASSWORD_LEN + 1), None)
        .expect_err("too long");
    assert_eq!(
        rejection.failed(),
        &[PasswordRule::TooLong {
            max_bytes: MAX_PASSWORD_LEN
        }]
    );
}

#[test]
fn common_passwords_are_refused_whatever_their_case() {
    let policy = PasswordPolicy::default();
    for common in [
        "password",
        "PassWord",
        "12345678",
        "QWERTYUIOP",
        "iloveyou",
        "password1",
    ] {
        let rejection = policy.check(common, None).expect_err(common);
        assert!(
            rejection.failed().contains(&PasswordRule::Common),
            "{common}: {rejection:?}"
        );
    }
    assert!(CommonPasswords.contains("Letmein"));
    assert!(!CommonPasswords.contains("correct horse battery staple"));
    assert!(CommonPasswords::LIST.len() >= 100);
    assert!(PasswordPolicy::default()
        .without_blocklist()
        .check("password", None)
        .is_ok());
}

#[derive(Debug)]
struct NoHorses;

impl PasswordBlocklist for NoHorses {
    fn contains(&self, password: &str) -> bool {
        password.to_lowercase().contains("horse")
    }
}

#[test]
fn the_blocklist_is_pluggable() {
    let policy = PasswordPolicy::default().blocklist(NoHorses);
    assert!(policy.check("correct horse battery staple", None).is_err());
    assert!(
        policy.check("password", None).is_ok(),
        "replaces the built-in list"
    );
}

#[test]
fn the_email_and_its_local_part_are_refused_in_the_password() {
    let policy = PasswordPolicy::default();
    let email = Some("Ann.Lee@Example.com");
    for bad in [
        "ann.lee@example.com",
        "ANN.LEE@EXAMPLE.COM",
        "ann.lee",
        "my ann.lee password",
        "xxAnn.Leexx",
    ] {
        let rejection = policy.check(bad, email).expect_err(bad);
        assert!(
            rejection.failed().contains(&PasswordRule::ContainsEmail),
            "{bad}: {rejection:?}"
        );
    }
    assert!(policy.check("correct horse battery staple", email).is_ok());
    // A short local part is refused only as the whole password.
    let short = Some("al@example.com");
    assert!(policy.check("totally alright", short).is_ok());
    assert!(PasswordPolicy::default()
        .min_chars(2)
        .check("AL", short)
        .is_err());
    assert!(PasswordPolicy::default()
        .context_words(false)
        .check("ann.lee@example.com", email)
        .is_ok());
}

#[test]
fn every_failed_rule_is_listed_in_order() {
    let rejection = PasswordPolicy::default()
        .check("Ann", Some("ann@example.com"))
        .expect_err("weak");
    assert_eq!(
        rejection.failed(),
        &[
            PasswordRule::TooShort {
                min_chars: 8,
                chars: 3
            },
            PasswordRule::ContainsEmail
        ]
    );
    let rejection = PasswordPolicy::default()
        .check("1234", None)
        .expect_err("weak");
    assert_eq!(
        rejection.to_string(),
        "choose another password: it must be at least 8 characters long (it has 4); \
         it is one of the most commonly used passwords"
    );
    let err = Error::WeakPassword(rejection);
    assert_eq!(
        err.to_string(),
        "choose another password: it must be at least 8 characters long (it has 4); \
         it is one of the most commonly used passwords"
    );
}

#[tokio::test]
async fn hash_new_password_applies_the_policy_and_hash_password_does_not() {
    let f = fixture_with(MemoryTokenStore::new(), |b| {
        b.password_policy(PasswordPolicy::default().min_chars(10))
    });
    assert_eq!(f.auth.password_policy().min_len(), 10);
    let err = f
        .auth
        .hash_password_with_policy("ninechars", "new@example.com")
        .await
        .expect_err("too short for this policy");
    assert!(matches!(err, Error::WeakPassword(_)), "{err:?}");
    let err = f
        .auth
        .hash_password_with_policy("new@example.com!", "new@example.com")
        .await
        .expect_err("contains the email");
    assert!(matches!(err, Error::WeakPassword(_)), "{err:?}");
    assert_eq!(f.hashes(), 0, "nothing was hashed");

    // Never truncated or trimmed: the hash matches the exact input only.
    let spaced = "  spaced out passphrase  ";
    let phc = f
        .auth
        .hash_password_with_policy(spaced, "new@example.com")
        .await
        .expect("strong");
    assert!(f
        .hasher
        .inner
        .verify(spaced.as_bytes(), &phc)
        .expect("verify"));
    assert!(!f
        .hasher
        .inner
        .verify(spaced.trim().as_bytes(), &phc)
        .expect("verify"));

    // The documented demo user's password is still hashable for seeding.
    f.auth
        .hash_password("111111")
        .await
        .expect("hash_password applies no policy");
}

// ---------------------------------------------------------------------------------------------
// User ids over your own table

#[test]
fn integer_user_ids_convert_both_ways_in_canonical_form_only() {
    for n in [0_i64, 1, 42, -7, i64::MAX, i64::MIN] {
        let id = UserId::from(n);
        assert_eq!(id.as_i64(), Some(n));
        assert_eq!(i64::try_from(&id), Ok(n));
    }
    assert_eq!(UserId::from(7_i32), UserId::from(7_i64));
    assert_eq!(UserId::from(7_u32), UserId::from(7_u64));
    for not_canonical in [
        "042",
        "+42",
        " 42",
        "42 ",
        "4_2",
        "",
        "u-42",
        "9223372036854775808",
    ] {
        let id = UserId::from(not_canonical);
        assert_eq!(id.as_i64(), None, "{not_canonical:?}");
        let err = i64::try_from(&id).expect_err("not an integer");
        assert_eq!(
            err.to_string(),
            "the user id is not an integer in canonical form"
        );
    }
}

#[cfg(feature = "uuid")]
#[test]
fn uuid_user_ids_convert_both_ways_in_canonical_form_only() {
    let u = uuid::Uuid::from_u128(0x67e5_5044_10b1_426f_9247_bb68_0e5f_e0c8);
    let id = UserId::from(u);
    assert_eq!(id.as_str(), "67e55044-10b1-426f-9247-bb680e5fe0c8");
    assert_eq!(id.as_uuid(), Some(u));
    assert_eq!(uuid::Uuid::try_from(&id), Ok(u));
    for other in [
        "67E55044-10B1-426F-9247-BB680E5FE0C8",
        "67e5504410b1426f9247bb680e5fe0c8",
        "{67e55044-10b1-426f-9247-bb680e5fe0c8}",
        "42",
    ] {
        assert_eq!(UserId::from(other).as_uuid(), None, "{other:?}");
    }
    assert_eq!(id.as_i64(), None);
}

/// A user store over "your own table", written with keycard's re-exported `async_trait`.
#[derive(Debug, Default)]
struct OwnTable(std::sync::Mutex<Vec<(i64, String, String)>>);

#[derive(Debug, Clone)]
struct OwnUser {
    id: i64,
    email: String,
    hash: String,
}

impl User for OwnUser {
    fn id(&self) -> UserId {
        UserId::from(self.id)
    }
    fn email(&self) -> &str {
        &self.email
    }
    fn password_hash(&self) -> &str {
        &self.hash
    }
}

#[keycard::async_trait]
impl UserStore for OwnTable {
    type User = OwnUser;
    async fn find_by_email(&self, email: &str) -> Result<Option<OwnUser>, StoreError> {
        let rows = self.0.lock().expect("lock");
        Ok(rows.iter().find(|r| r.1 == email).map(|r| OwnUser {
            id: r.0,
            email: r.1.clone(),
            hash: r.2.clone(),
        }))
    }
    async fn find_by_id(&self, id: &UserId) -> Result<Option<OwnUser>, StoreError> {
        let Some(id) = id.as_i64() else {
            return Ok(None);
        };
        let rows = self.0.lock().expect("lock");
        Ok(rows.iter().find(|r| r.0 == id).map(|r| OwnUser {
            id: r.0,
            email: r.1.clone(),
            hash: r.2.clone(),
        }))
    }
    async fn set_password_hash(&self, id: &UserId, phc: &str) -> Result<(), StoreError> {
        let id = i64::try_from(id).map_err(StoreError::backend)?;
        let mut rows = self.0.lock().expect("lock");
        if let Some(row) = rows.iter_mut().find(|r| r.0 == id) {
            row.2 = phc.to_owned();
        }
        Ok(())
    }
}

#[tokio::test]
async fn the_whole_lifecycle_over_your_own_integer_keyed_table() {
    let table = Arc::new(OwnTable::default());
    let auth = Authenticator::builder(Arc::clone(&table), MemoryTokenStore::new())
        .password_hasher(Argon2Hasher::insecure_for_tests())
        .build();
    let phc = auth
        .hash_password_with_policy(PASSWORD, EMAIL)
        .await
        .expect("strong");
    table
        .0
        .lock()
        .expect("lock")
        .push((7, EMAIL.to_owned(), phc));
    let login = auth
        .login(EMAIL, PASSWORD, ClientInfo::none())
        .await
        .expect("login");
    assert_eq!(login.session.user_id.as_i64(), Some(7));
    let other = auth
        .login(EMAIL, PASSWORD, ClientInfo::none())
        .await
        .expect("login");
    assert_eq!(
        auth.change_password(&login.session, PASSWORD, NEW_PASSWORD, &ClientInfo::none())
            .await
            .map(|changed| changed.ended)
            .expect("changed"),
        2
    );
    assert!(auth.validate(other.token.expose_secret()).await.is_err());
    auth.login(EMAIL, NEW_PASSWORD, ClientInfo::none())
        .await
        .expect("the new password is in your table");
}

/// "Remember me": a login may ask for its own lifetime, kept within 1 second and the policy's
/// maximum; the idle timeout still applies to a long session.
#[tokio::test]
async fn per_login_lifetime_stays_within_the_maximum_and_idle_still_applies() {
    const DAY: Duration = Duration::from_secs(24 * 60 * 60);
    let users = Arc::new(MemoryUserStore::new());
    let clock = ManualClock::default();
    let auth = Authenticator::builder(Arc::clone(&users), MemoryTokenStore::new())
        .password_hasher(Argon2Hasher::insecure_for_tests())
        .clock(clock.clone())
        .session_ttl(DAY)
        .max_session_ttl(30 * DAY)
        .idle_timeout(7 * DAY)
        .build();
    let hash = auth.hash_password(PASSWORD).await.expect("hash");
    users
        .insert(UserRecord::new(1_i64, EMAIL, hash))
        .expect("a fresh store");
    let lifetime = |asked: Option<Duration>| {
        let auth = auth.clone();
        async move {
            let options = match asked {
                Some(asked) => keycard::LoginOptions::default().with_lifetime(asked),
                None => keycard::LoginOptions::default(),
            };
            let login = auth
                .login_with(EMAIL, PASSWORD, ClientInfo::none(), options)
                .await
                .expect("login");
            (login.session.expires_at - login.session.created_at, login)
        }
    };
    assert_eq!(lifetime(None).await.0, time::Duration::days(1));
    assert_eq!(
        lifetime(Some(Duration::from_secs(3600))).await.0,
        time::Duration::hours(1)
    );
    assert_eq!(lifetime(Some(365 * DAY)).await.0, time::Duration::days(30));
    assert_eq!(
        lifetime(Some(Duration::ZERO)).await.0,
        time::Duration::seconds(1)
    );

    // A remembered session still dies after a week unused.
    let (_, remembered) = lifetime(Some(30 * DAY)).await;
    let token = remembered.token.expose_secret().to_owned();
    clock.advance(6 * DAY);
    auth.validate(&token)
        .await
        .expect("used within the idle timeout");
    clock.advance(7 * DAY + Duration::from_secs(1));
    assert!(matches!(
        auth.validate(&token).await,
        Err(Error::SessionExpired)
    ));
}

/// An authenticator with a session cap, no throttle, and room for many logins at once.
async fn capped(cap: keycard::SessionCap) -> (Authenticator<Users>, Arc<dyn TokenStore>) {
    let users = Arc::new(MemoryUserStore::new());
    let tokens: Arc<dyn TokenStore> = Arc::new(MemoryTokenStore::new());
    let auth = Authenticator::builder(Arc::clone(&users), Arc::clone(&tokens))
        .password_hasher(Argon2Hasher::insecure_for_tests())
        .without_throttle()
        .max_queued_hashes(256)
        .session_cap(cap)
        .build();
    let hash = auth.hash_password(PASSWORD).await.expect("hash");
    users
        .insert(UserRecord::new(1_i64, EMAIL, hash))
        .expect("a fresh store");
    (auth, tokens)
}

fn from(n: u32) -> ClientInfo {
    ClientInfo::none().with_ip(IpAddr::from([10, 0, (n >> 8) as u8, n as u8]))
}

#[tokio::test]
async fn the_session_cap_evicts_the_oldest_sessions() {
    let (auth, tokens) = capped(keycard::SessionCap::evict_oldest(3)).await;
    let mut issued = Vec::new();
    for n in 0..5 {
        let login = auth.login(EMAIL, PASSWORD, from(n)).await.expect("login");
        issued.push(login.token.expose_secret().to_owned());
    }
    let live = tokens
        .list_for_user(&UserId::from(1_i64), OffsetDateTime::now_utc())
        .await
        .expect("list");
    assert_eq!(live.len(), 3);
    for (n, token) in issued.iter().enumerate() {
        let valid = auth.validate(token).await.is_ok();
        assert_eq!(valid, n >= 2, "token {n}: only the 3 newest live");
    }
}

#[tokio::test]
async fn the_session_cap_can_refuse_new_logins_instead() {
    let (auth, tokens) = capped(keycard::SessionCap::refuse(2)).await;
    let first = auth.login(EMAIL, PASSWORD, from(1)).await.expect("login");
    auth.login(EMAIL, PASSWORD, from(2)).await.expect("login");
    let third = auth.login(EMAIL, PASSWORD, from(3)).await;
    assert!(
        matches!(third, Err(Error::TooManySessions { max: 2 })),
        "{third:?}"
    );
    let user = UserId::from(1_i64);
    let live = tokens.list_for_user(&user, OffsetDateTime::now_utc()).await;
    assert_eq!(
        live.expect("list").len(),
        2,
        "the refused login left nothing behind"
    );
    auth.logout(first.token.expose_secret())
        .await
        .expect("logout");
    auth.login(EMAIL, PASSWORD, from(4))
        .await
        .expect("room again");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_logins_never_leave_more_than_the_cap() {
    for cap in [
        keycard::SessionCap::evict_oldest(5),
        keycard::SessionCap::refuse(5),
    ] {
        let (auth, tokens) = capped(cap).await;
        let logins = (0..32).map(|n| {
            let auth = auth.clone();
            tokio::spawn(async move { auth.login(EMAIL, PASSWORD, from(n)).await })
        });
        let mut succeeded = 0;
        for login in futures_util::future::join_all(logins).await {
            match login.expect("the task ran") {
                Ok(_) => succeeded += 1,
                Err(Error::TooManySessions { .. }) => {}
                Err(other) => panic!("{other:?}"),
            }
        }
        let user = UserId::from(1_i64);
        let live = tokens.list_for_user(&user, OffsetDateTime::now_utc()).await;
        let live = live.expect("list").len();
        if cap.policy == keycard::CapPolicy::Refuse {
            assert!(live <= 5, "{cap:?}: {live} live");
            assert_eq!(succeeded, live, "every refused login ended its own session");
        } else {
            assert_eq!(live, 5, "{cap:?}");
            assert_eq!(succeeded, 32);
        }
    }
}
