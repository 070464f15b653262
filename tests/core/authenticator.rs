//! The core operations (login, logout, validate, expire) against the in-memory stores.

use crate::support::down_store::DownTokenStore;

use crate::support::counting_hasher::CountingHasher;

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use keycard::throttle::{Limit, ThrottleLimits};
use keycard::Clock as _;
use keycard::{
    Argon2Hasher, Authenticator, ClientInfo, Error, Field, Logout, ManualClock, MemoryThrottle,
    MemoryTokenStore, MemoryUserStore, PasswordHasher, Session, SessionId, StoreError, TokenStore,
    UserId, UserRecord, UserStore, MAX_EMAIL_LEN, MAX_PASSWORD_LEN,
};
use time::OffsetDateTime;

const EMAIL: &str = "ann@example.com";
const PASSWORD: &str = "correct horse battery staple";

/// The memory store, counting writes of `last_seen_at`.
#[derive(Debug, Default)]
struct CountingTouches {
    inner: MemoryTokenStore,
    touches: AtomicUsize,
}

#[async_trait]
impl TokenStore for CountingTouches {
    async fn create(&self, s: &Session) -> Result<(), StoreError> {
        self.inner.create(s).await
    }
    async fn get(
        &self,
        id: &SessionId,
        now: OffsetDateTime,
    ) -> Result<Option<Session>, StoreError> {
        self.inner.get(id, now).await
    }
    async fn touch(&self, id: &SessionId, at: OffsetDateTime) -> Result<bool, StoreError> {
        self.touches.fetch_add(1, Ordering::SeqCst);
        self.inner.touch(id, at).await
    }
    async fn touch_from(
        &self,
        id: &SessionId,
        at: OffsetDateTime,
        ip: std::net::IpAddr,
    ) -> Result<bool, StoreError> {
        self.touches.fetch_add(1, Ordering::SeqCst);
        self.inner.touch_from(id, at, ip).await
    }
    async fn delete(&self, id: &SessionId) -> Result<bool, StoreError> {
        self.inner.delete(id).await
    }
    async fn delete_for_user(&self, u: &UserId) -> Result<u64, StoreError> {
        self.inner.delete_for_user(u).await
    }
    async fn delete_for_user_except(
        &self,
        u: &UserId,
        keep: &SessionId,
    ) -> Result<u64, StoreError> {
        self.inner.delete_for_user_except(u, keep).await
    }
    async fn list_for_user(
        &self,
        u: &UserId,
        now: OffsetDateTime,
    ) -> Result<Vec<Session>, StoreError> {
        self.inner.list_for_user(u, now).await
    }
    async fn purge_expired(&self, now: OffsetDateTime) -> Result<u64, StoreError> {
        self.inner.purge_expired(now).await
    }
}

type Users = Arc<MemoryUserStore>;

struct Fixture {
    auth: Authenticator<Users>,
    users: Users,
    clock: ManualClock,
    hasher: CountingHasher,
}

fn fixture_with(
    tokens: impl TokenStore + 'static,
    configure: impl FnOnce(keycard::AuthenticatorBuilder<Users>) -> keycard::AuthenticatorBuilder<Users>,
) -> Fixture {
    let hasher = CountingHasher::new(Argon2Hasher::insecure_for_tests());
    let users: Users = Arc::new(MemoryUserStore::new());
    let phc = hasher.inner.hash(PASSWORD.as_bytes()).expect("hash");
    users
        .insert(UserRecord::new(1_i64, EMAIL, phc).with_name("Ann", "Lee"))
        .expect("new user");
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

/// `token`'s session id with the secret of another, freshly generated token.
fn with_foreign_secret(token: &str) -> String {
    let (id, _) = token.split_once('.').expect("dot");
    let other = keycard::Token::generate().expect("rng");
    let (_, secret) = other.expose_secret().split_once('.').expect("dot");
    format!("{id}.{secret}")
}

async fn login(f: &Fixture) -> String {
    let login = f
        .auth
        .login(EMAIL, PASSWORD, ClientInfo::none())
        .await
        .expect("login succeeds");
    login.token.expose_secret().to_owned()
}

#[tokio::test]
async fn login_returns_a_token_a_session_and_the_user() {
    let f = fixture();
    let client = ClientInfo::none()
        .with_ip("127.0.0.1".parse().expect("ip"))
        .with_user_agent("curl/8");
    let login = f
        .auth
        .login("  Ann@Example.com ", PASSWORD, client.clone())
        .await
        .expect("login");
    assert_eq!(login.user.email, EMAIL);
    assert_eq!(login.session.user_id, UserId::from(1_i64));
    assert_eq!(login.session.id, login.token.id());
    assert_eq!(login.session.client, client);
    assert_eq!(login.session.created_at, f.clock.now());
    assert_eq!(
        login.session.expires_at - login.session.created_at,
        time::Duration::hours(24)
    );
    assert!(login.session.secret_hash.verify(&login.token));
    let stored = f
        .auth
        .tokens()
        .get(&login.token.id(), f.auth.now())
        .await
        .expect("get");
    assert_eq!(stored, Some(login.session));
}

#[tokio::test]
async fn wrong_password_and_unknown_email_cost_exactly_one_verify_each() {
    let f = fixture();
    let err = f
        .auth
        .login(EMAIL, "wrong", ClientInfo::none())
        .await
        .expect_err("wrong password");
    assert!(matches!(err, Error::InvalidCredentials), "{err:?}");
    assert_eq!(f.hasher.verifies(), 1);

    let err = f
        .auth
        .login("nobody@example.com", PASSWORD, ClientInfo::none())
        .await
        .expect_err("unknown");
    assert!(
        matches!(err, Error::InvalidCredentials),
        "unknown email is not revealed by default: {err:?}"
    );
    assert_eq!(f.hasher.verifies(), 2);

    // A successful login verifies once too, and does not rehash a current hash.
    login(&f).await;
    assert_eq!(f.hasher.verifies(), 3);
    assert_eq!(f.hasher.hashes(), 0);
}

#[tokio::test]
async fn unknown_email_is_its_own_error_when_the_policy_reveals_it() {
    let f = fixture_with(MemoryTokenStore::new(), |b| b.reveal_unknown_email(true));
    let err = f
        .auth
        .login("nobody@example.com", PASSWORD, ClientInfo::none())
        .await
        .expect_err("unknown");
    assert!(matches!(err, Error::UnknownEmail), "{err:?}");
    assert_eq!(f.hasher.verifies(), 1, "the dummy verify still runs");
    let err = f
        .auth
        .login(EMAIL, "wrong", ClientInfo::none())
        .await
        .expect_err("wrong password");
    assert!(matches!(err, Error::InvalidCredentials), "{err:?}");
}

#[tokio::test]
async fn oversized_inputs_are_refused_before_any_hashing() {
    let f = fixture();
    let long_pw = "x".repeat(MAX_PASSWORD_LEN + 1);
    let err = f
        .auth
        .login(EMAIL, &long_pw, ClientInfo::none())
        .await
        .expect_err("too long");
    assert!(
        matches!(
            err,
            Error::InputTooLong {
                field: Field::Password,
                max: MAX_PASSWORD_LEN
            }
        ),
        "{err:?}"
    );
    let long_email = format!("{}@example.com", "a".repeat(MAX_EMAIL_LEN));
    let err = f
        .auth
        .login(&long_email, PASSWORD, ClientInfo::none())
        .await
        .expect_err("too long");
    assert!(
        matches!(
            err,
            Error::InputTooLong {
                field: Field::Email,
                ..
            }
        ),
        "{err:?}"
    );
    let err = f.auth.hash_password(&long_pw).await.expect_err("too long");
    assert!(
        matches!(
            err,
            Error::InputTooLong {
                field: Field::Password,
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!((f.hasher.verifies(), f.hasher.hashes()), (0, 0));

    // The bound allows generous passwords: 64 four-byte characters, and exactly the maximum.
    for pw in ["🔑".repeat(64), "y".repeat(MAX_PASSWORD_LEN)] {
        let phc = f.auth.hash_password(&pw).await.expect("hash");
        f.users
            .insert(UserRecord::new(
                pw.len() as i64,
                &format!("{}@x.io", pw.len()),
                phc,
            ))
            .expect("insert");
        f.auth
            .login(&format!("{}@x.io", pw.len()), &pw, ClientInfo::none())
            .await
            .expect("login");
    }
}

#[tokio::test]
async fn outdated_hashes_are_replaced_at_login() {
    // The stored hash was made with weaker parameters than the authenticator's (OWASP) ones.
    let old = Argon2Hasher::insecure_for_tests()
        .hash(b"hunter22")
        .expect("hash");
    let users: Users = Arc::new(MemoryUserStore::new());
    users
        .insert(UserRecord::new(7_i64, "bo@example.com", old.clone()))
        .expect("insert");
    let hasher = CountingHasher::new(Argon2Hasher::default());
    let auth = Authenticator::builder(Arc::clone(&users), MemoryTokenStore::new())
        .password_hasher(hasher.clone())
        .build();

    auth.login("bo@example.com", "hunter22", ClientInfo::none())
        .await
        .expect("login");
    let stored = users
        .find_by_id(&UserId::from(7_i64))
        .await
        .expect("lookup")
        .expect("exists");
    let new = stored.password_hash;
    assert_ne!(new, old);
    assert!(new.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{new}");
    assert_eq!((hasher.verifies(), hasher.hashes()), (1, 1));

    // The new hash verifies and is current: no second rehash.
    auth.login("bo@example.com", "hunter22", ClientInfo::none())
        .await
        .expect("login again");
    assert_eq!((hasher.verifies(), hasher.hashes()), (2, 1));

    // A wrong password never triggers a rehash.
    auth.login("bo@example.com", "nope", ClientInfo::none())
        .await
        .expect_err("wrong");
    assert_eq!(hasher.hashes(), 1);
}

#[tokio::test]
async fn repeated_failures_are_throttled_without_hashing_and_success_resets() {
    let f = fixture_with(MemoryTokenStore::new(), |b| {
        b.throttle(MemoryThrottle::new(
            ThrottleLimits::default().per_account_ip(Limit::new(3, Duration::from_secs(60))),
        ))
    });
    for _ in 0..3 {
        f.auth
            .login(EMAIL, "wrong", ClientInfo::none())
            .await
            .expect_err("wrong");
    }
    let err = f
        .auth
        .login(EMAIL, PASSWORD, ClientInfo::none())
        .await
        .expect_err("throttled");
    assert!(
        matches!(err, Error::Throttled { retry_after } if retry_after == Duration::from_secs(60)),
        "{err:?}"
    );
    assert_eq!(err.retry_after_secs(), Some(60));
    assert_eq!(
        f.hasher.verifies(),
        3,
        "a throttled attempt does no hashing"
    );

    // Unknown emails are counted the same way, so throttling reveals nothing.
    for _ in 0..3 {
        f.auth
            .login("ghost@example.com", "x", ClientInfo::none())
            .await
            .expect_err("unknown");
    }
    assert!(matches!(
        f.auth
            .login("ghost@example.com", "x", ClientInfo::none())
            .await,
        Err(Error::Throttled { .. })
    ));

    f.clock.advance(Duration::from_secs(60));
    login(&f).await;
    // Success forgot the failures: two more wrong passwords are not yet throttled.
    for _ in 0..2 {
        let err = f
            .auth
            .login(EMAIL, "wrong", ClientInfo::none())
            .await
            .expect_err("wrong");
        assert!(matches!(err, Error::InvalidCredentials));
    }
}

#[tokio::test]
async fn validate_accepts_a_live_token_and_refuses_everything_else() {
    let f = fixture();
    let token = login(&f).await;
    let me = f.auth.validate(&token).await.expect("valid");
    assert_eq!(me.user.first_name, "Ann");
    assert_eq!(me.session.user_id, UserId::from(1_i64));
    assert_eq!(
        f.auth.validate_session(&token).await.expect("valid").id,
        me.session.id
    );

    assert!(matches!(
        f.auth.validate("").await,
        Err(Error::MalformedToken)
    ));
    assert!(matches!(
        f.auth.validate("garbage").await,
        Err(Error::MalformedToken)
    ));

    // Right id, wrong secret: refused, and the real session is untouched.
    let forged = with_foreign_secret(&token);
    assert!(matches!(
        f.auth.validate(&forged).await,
        Err(Error::InvalidToken)
    ));
    f.auth.validate(&token).await.expect("still valid");

    // A well-formed token nobody issued.
    let stranger = keycard::Token::generate().expect("rng");
    assert!(matches!(
        f.auth.validate(stranger.expose_secret()).await,
        Err(Error::InvalidToken)
    ));
}

#[tokio::test]
async fn sessions_die_at_their_absolute_expiry_without_sleeping() {
    let f = fixture_with(MemoryTokenStore::new(), |b| {
        b.session_ttl(Duration::from_secs(3600))
    });
    let token = login(&f).await;
    f.clock.advance(Duration::from_secs(3599));
    f.auth
        .validate(&token)
        .await
        .expect("valid one second before expiry");
    f.clock.advance(Duration::from_secs(1));
    assert!(matches!(
        f.auth.validate(&token).await,
        Err(Error::InvalidToken)
    ));
    assert!(matches!(f.auth.logout(&token).await, Ok(Logout::NoSession)));
}

#[tokio::test]
async fn default_lifetime_is_24_hours() {
    let f = fixture();
    let token = login(&f).await;
    f.clock.advance(Duration::from_secs(24 * 3600 - 1));
    f.auth
        .validate(&token)
        .await
        .expect("valid just under 24 h");
    f.clock.advance(Duration::from_secs(1));
    assert!(f.auth.validate(&token).await.is_err());
}

#[tokio::test]
async fn idle_sessions_expire_and_touches_are_throttled() {
    let store = Arc::new(CountingTouches::default());
    let f = fixture_with(Arc::clone(&store), |b| {
        b.idle_timeout(Duration::from_secs(600))
    });
    assert_eq!(f.auth.policy().touch_interval(), Duration::from_secs(60));
    let token = login(&f).await;

    // Many validations within the touch interval: one read each, no write.
    for _ in 0..20 {
        f.clock.advance(Duration::from_secs(2));
        f.auth.validate(&token).await.expect("valid");
    }
    assert_eq!(store.touches.load(Ordering::SeqCst), 0);
    f.clock.advance(Duration::from_secs(20));
    let s = f.auth.validate(&token).await.expect("valid");
    assert_eq!(store.touches.load(Ordering::SeqCst), 1);
    assert_eq!(s.session.last_seen_at, f.auth.now());

    // Activity keeps it alive past the first idle deadline...
    f.clock.advance(Duration::from_secs(599));
    f.auth
        .validate(&token)
        .await
        .expect("active session stays alive");
    // ...and 600 s without activity kill it. It is deleted, not just refused.
    f.clock.advance(Duration::from_secs(600));
    assert!(matches!(
        f.auth.validate(&token).await,
        Err(Error::SessionExpired)
    ));
    assert!(store.inner.is_empty());
    assert!(matches!(
        f.auth.validate(&token).await,
        Err(Error::InvalidToken)
    ));
}

#[tokio::test]
async fn logout_destroys_once_and_needs_the_secret() {
    let f = fixture();
    let token = login(&f).await;

    // The session id alone (public, loggable) cannot log anyone out.
    let (id, _) = token.split_once('.').expect("dot");
    assert_eq!(
        f.auth
            .logout(&with_foreign_secret(&token))
            .await
            .expect("logout"),
        Logout::NoSession
    );
    f.auth.validate(&token).await.expect("still logged in");

    match f.auth.logout(&token).await.expect("logout") {
        Logout::Destroyed(s) => assert_eq!(s.id.to_string(), id),
        other => panic!("expected Destroyed, got {other:?}"),
    }
    assert!(matches!(
        f.auth.validate(&token).await,
        Err(Error::InvalidToken)
    ));
    assert_eq!(
        f.auth.logout(&token).await.expect("logout"),
        Logout::NoSession
    );
    assert_eq!(
        f.auth.logout("not a token").await.expect("logout"),
        Logout::NoSession
    );
    assert_eq!(f.auth.logout("").await.expect("logout"), Logout::NoSession);
}

#[tokio::test]
async fn two_logins_are_independent_sessions() {
    let f = fixture();
    let a = login(&f).await;
    let b = login(&f).await;
    assert_ne!(a, b);
    assert_eq!(
        f.auth
            .list_for_user(&UserId::from(1_i64))
            .await
            .expect("list")
            .len(),
        2
    );
    assert!(f.auth.logout(&a).await.expect("logout").destroyed());
    f.auth
        .validate(&b)
        .await
        .expect("the other session lives on");
    assert_eq!(
        f.auth
            .list_for_user(&UserId::from(1_i64))
            .await
            .expect("list")
            .len(),
        1
    );
}

#[tokio::test]
async fn logout_all_ends_every_session_of_a_user() {
    let f = fixture();
    let tokens = [login(&f).await, login(&f).await, login(&f).await];
    assert_eq!(
        f.auth
            .logout_all(&UserId::from(1_i64))
            .await
            .expect("logout all"),
        3
    );
    for t in &tokens {
        assert!(f.auth.validate(t).await.is_err());
    }
    assert_eq!(
        f.auth
            .logout_all(&UserId::from(1_i64))
            .await
            .expect("logout all"),
        0
    );
}

#[tokio::test]
async fn a_deleted_user_cannot_validate_and_loses_the_session() {
    let f = fixture();
    let token = login(&f).await;
    f.users.remove(&UserId::from(1_i64)).expect("user existed");
    assert!(matches!(
        f.auth.validate(&token).await,
        Err(Error::InvalidToken)
    ));
    assert!(f
        .auth
        .list_for_user(&UserId::from(1_i64))
        .await
        .expect("list")
        .is_empty());
}

#[tokio::test]
async fn expire_purges_expired_sessions_and_counts_them() {
    let f = fixture_with(MemoryTokenStore::new(), |b| {
        b.session_ttl(Duration::from_secs(100))
    });
    for _ in 0..3 {
        login(&f).await;
    }
    f.clock.advance(Duration::from_secs(50));
    let live = login(&f).await;
    assert_eq!(f.auth.expire().await.expect("expire"), 0);
    f.clock.advance(Duration::from_secs(50));
    assert_eq!(f.auth.expire().await.expect("expire"), 3);
    assert_eq!(f.auth.expire().await.expect("expire"), 0);
    f.auth
        .validate(&live)
        .await
        .expect("the younger session survives");
}

#[tokio::test(start_paused = true)]
async fn the_expiry_task_purges_periodically() {
    let store = Arc::new(MemoryTokenStore::new());
    let f = fixture_with(Arc::clone(&store), |b| {
        b.session_ttl(Duration::from_secs(10))
    });
    login(&f).await;
    let task = f.auth.spawn_expiry_task(Duration::from_secs(30));
    // First tick (at once): nothing has expired yet.
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(store.len(), 1);

    // Each later tick purges what expired since: the task keeps running, every 30 s.
    for round in 0..3 {
        f.clock.advance(Duration::from_secs(10));
        login(&f).await; // created now, expires in 10 s: survives this tick
        tokio::time::sleep(Duration::from_secs(30)).await;
        assert_eq!(
            store.len(),
            1,
            "round {round}: the expired session was purged, the new one kept"
        );
    }
    f.clock.advance(Duration::from_secs(10));
    tokio::time::sleep(Duration::from_secs(30)).await;
    assert!(store.is_empty());
    task.abort();
}

#[tokio::test]
async fn a_store_outage_is_a_typed_error_with_its_source() {
    let f = fixture_with(DownTokenStore, |b| b);
    let err = f
        .auth
        .login(EMAIL, PASSWORD, ClientInfo::none())
        .await
        .expect_err("store down");
    assert!(
        matches!(err, Error::Store(StoreError::Backend(_))),
        "{err:?}"
    );
    let root = std::error::Error::source(&err)
        .and_then(std::error::Error::source)
        .expect("chain");
    assert_eq!(root.to_string(), "connection refused (test store is down)");
    let token = keycard::Token::generate().expect("rng");
    assert!(matches!(
        f.auth.validate(token.expose_secret()).await,
        Err(Error::Store(_))
    ));
    assert!(matches!(
        f.auth.logout(token.expose_secret()).await,
        Err(Error::Store(_))
    ));
    assert!(matches!(f.auth.expire().await, Err(Error::Store(_))));
    assert!(matches!(
        f.auth.logout_all(&UserId::from(1_i64)).await,
        Err(Error::Store(_))
    ));
    assert!(matches!(
        f.auth.list_for_user(&UserId::from(1_i64)).await,
        Err(Error::Store(_))
    ));
}

#[tokio::test]
async fn no_debug_output_or_error_message_contains_the_token() {
    let f = fixture_with(MemoryTokenStore::new(), |b| {
        b.idle_timeout(Duration::from_secs(60))
    });
    let login = f
        .auth
        .login(EMAIL, PASSWORD, ClientInfo::none())
        .await
        .expect("login");
    let token = login.token.expose_secret().to_owned();
    let (_, secret) = token.split_once('.').expect("dot");
    let me = f.auth.validate(&token).await.expect("valid");

    let mut outputs = vec![
        format!("{login:?}"),
        format!("{login:#?}"),
        format!("{me:?}"),
        format!("{:?}", f.auth),
        format!(
            "{:?}",
            f.auth
                .list_for_user(&UserId::from(1_i64))
                .await
                .expect("list")
        ),
        format!("{:?}", f.auth.logout(&token).await.expect("logout")),
        serde_json::to_string(&keycard::SessionView::new(&login.session, true)).expect("json"),
    ];
    f.clock.advance(Duration::from_secs(3600));
    for attempt in [token.as_str(), &token[..token.len() - 1], secret] {
        let err = f.auth.validate(attempt).await.expect_err("refused");
        outputs.push(format!("{err} {err:?}"));
    }
    for output in &outputs {
        assert!(!output.contains(secret), "secret leaked in {output}");
        assert!(!output.contains(PASSWORD), "password leaked in {output}");
        assert!(
            !output.contains("$argon2"),
            "password hash leaked in {output}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_logins_validations_and_logouts_lose_nothing_and_resurrect_nothing() {
    let f = Arc::new(fixture_with(MemoryTokenStore::new(), |b| {
        // Room for all 200 logins in the hashing queue: this test is about the stores.
        b.without_throttle()
            .max_queued_hashes(200)
            .touch_interval(Duration::ZERO)
    }));
    for id in 2..=20_i64 {
        let phc = f.hasher.inner.hash(PASSWORD.as_bytes()).expect("hash");
        f.users
            .insert(UserRecord::new(id, &format!("u{id}@example.com"), phc))
            .expect("insert");
    }
    let emails: Vec<String> = std::iter::once(EMAIL.to_owned())
        .chain((2..=20).map(|id| format!("u{id}@example.com")))
        .collect();

    // 200 logins at once: all succeed, all tokens distinct.
    let mut tasks = Vec::new();
    for i in 0..200 {
        let (f, email) = (Arc::clone(&f), emails[i % emails.len()].clone());
        tasks.push(tokio::spawn(async move {
            f.auth
                .login(&email, PASSWORD, ClientInfo::none())
                .await
                .expect("login")
                .token
                .expose_secret()
                .to_owned()
        }));
    }
    let mut tokens = Vec::new();
    for t in tasks {
        tokens.push(t.await.expect("task"));
    }
    assert_eq!(tokens.iter().collect::<HashSet<_>>().len(), 200);

    // Log out every other token while validating (and touching) all of them concurrently.
    let mut tasks = Vec::new();
    for (i, token) in tokens.iter().enumerate() {
        let (auth, token) = (f.auth.clone(), token.clone());
        tasks.push(tokio::spawn(async move {
            if i % 2 == 0 {
                assert!(auth.logout(&token).await.expect("logout").destroyed());
            } else {
                for _ in 0..5 {
                    auth.validate(&token)
                        .await
                        .expect("kept session stays valid");
                }
            }
        }));
        let (auth, token) = (f.auth.clone(), tokens[(i + 1) % tokens.len()].clone());
        tasks.push(tokio::spawn(async move {
            // Racing validations of sessions being logged out: either outcome, never a panic.
            let _ = auth.validate(&token).await;
        }));
    }
    for t in tasks {
        t.await.expect("task");
    }
    for (i, token) in tokens.iter().enumerate() {
        let result = f.auth.validate(token).await;
        if i % 2 == 0 {
            assert!(
                matches!(result, Err(Error::InvalidToken)),
                "logged-out token {i} resurrected"
            );
        } else {
            result.expect("kept session lost");
        }
    }
    let mut live = 0;
    for id in 1..=20_i64 {
        live += f
            .auth
            .list_for_user(&UserId::from(id))
            .await
            .expect("list")
            .len();
    }
    assert_eq!(live, 100, "exactly the sessions not logged out remain");
}
