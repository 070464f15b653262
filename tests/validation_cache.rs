//! The validation cache (`keycard::store::CachedTokenStore`): hits do not read the store,
//! revocations on one instance reach the others through the channel, a lost channel means
//! direct reads, staleness is bounded, expiry is never extended, idle timeouts survive other
//! instances' touches, memory is bounded, and the store contract holds through the cache.
//!
//! The Redis and PostgreSQL cases need the servers of `tests/redis.rs` and
//! `tests/postgres.rs` (`KEYCARD_REDIS_URL`, `KEYCARD_POSTGRES_URL`) and fail when they are
//! down.

#[cfg(any(feature = "postgres", feature = "redis"))]
mod stores_support;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use keycard::store::{
    CacheOptions, CachedTokenStore, ChannelState, LocalChannel, Revocation, RevocationChannel,
    RevocationSink,
};
use keycard::{
    async_trait, Argon2Hasher, Authenticator, ClientInfo, Clock, Error, ManualClock,
    MemoryTokenStore, MemoryUserStore, Session, SessionId, StoreError, TokenStore, UserId,
    UserRecord,
};
use time::OffsetDateTime;
use tokio::sync::{broadcast, watch};

const EMAIL: &str = "ann@example.com";
const PASSWORD: &str = "correct horse battery staple";

type Users = Arc<MemoryUserStore<UserRecord>>;

/// One user store holding ann, shared by the instances.
async fn users() -> Users {
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

fn instance(users: &Users, tokens: impl TokenStore + 'static) -> Authenticator<Users> {
    Authenticator::builder(Arc::clone(users), tokens)
        .password_hasher(Argon2Hasher::insecure_for_tests())
        .without_throttle()
        .build()
}

async fn login(auth: &Authenticator<Users>) -> (String, Session) {
    let login = auth
        .login(EMAIL, PASSWORD, ClientInfo::none())
        .await
        .expect("login");
    (login.token.expose_secret().to_owned(), login.session)
}

/// Polls `auth` until `token` fails to validate; returns how long that took.
async fn until_rejected(auth: &Authenticator<Users>, token: &str, limit: Duration) -> Duration {
    let start = Instant::now();
    loop {
        match auth.validate_session(token).await {
            Err(Error::InvalidToken | Error::SessionExpired) => return start.elapsed(),
            Err(other) => panic!("unexpected error: {other:?}"),
            Ok(_) => {}
        }
        assert!(
            start.elapsed() < limit,
            "the revocation was not seen within {limit:?}"
        );
        tokio::time::sleep(Duration::from_micros(200)).await;
    }
}

/// A memory store that counts reads.
#[derive(Debug, Default)]
struct Counting {
    store: MemoryTokenStore,
    gets: AtomicU64,
}

impl Counting {
    fn gets(&self) -> u64 {
        self.gets.load(Ordering::SeqCst)
    }
}

#[async_trait]
impl TokenStore for Counting {
    async fn create(&self, session: &Session) -> Result<(), StoreError> {
        self.store.create(session).await
    }
    async fn get(
        &self,
        id: &SessionId,
        now: OffsetDateTime,
    ) -> Result<Option<Session>, StoreError> {
        self.gets.fetch_add(1, Ordering::SeqCst);
        self.store.get(id, now).await
    }
    async fn touch(&self, id: &SessionId, at: OffsetDateTime) -> Result<bool, StoreError> {
        self.store.touch(id, at).await
    }
    async fn delete(&self, id: &SessionId) -> Result<bool, StoreError> {
        self.store.delete(id).await
    }
    async fn delete_for_user(&self, user: &UserId) -> Result<u64, StoreError> {
        self.store.delete_for_user(user).await
    }
    async fn delete_for_user_except(
        &self,
        user: &UserId,
        keep: &SessionId,
    ) -> Result<u64, StoreError> {
        self.store.delete_for_user_except(user, keep).await
    }
    async fn list_for_user(
        &self,
        user: &UserId,
        now: OffsetDateTime,
    ) -> Result<Vec<Session>, StoreError> {
        self.store.list_for_user(user, now).await
    }
    async fn purge_expired(&self, now: OffsetDateTime) -> Result<u64, StoreError> {
        self.store.purge_expired(now).await
    }
}

/// A channel the test can cut: while it is down, messages are lost and the subscriber is
/// disconnected.
#[derive(Debug, Clone)]
struct Switch {
    up: watch::Sender<bool>,
    bus: broadcast::Sender<Revocation>,
}

impl Switch {
    fn new(up: bool) -> Self {
        Self {
            up: watch::Sender::new(up),
            bus: broadcast::channel(64).0,
        }
    }
    fn set(&self, up: bool) {
        self.up.send_replace(up);
    }
}

#[async_trait]
impl RevocationChannel for Switch {
    async fn publish(&self, revocation: &Revocation) -> Result<(), StoreError> {
        if *self.up.borrow() {
            let _ = self.bus.send(revocation.clone());
        }
        Ok(())
    }
    async fn run(&self, sink: RevocationSink) {
        let mut state = self.up.subscribe();
        loop {
            if state.wait_for(|up| *up).await.is_err() {
                return;
            }
            let mut messages = self.bus.subscribe();
            sink.connected();
            loop {
                tokio::select! {
                    m = messages.recv() => if let Ok(r) = m { sink.revoke(&r) },
                    _ = state.wait_for(|up| !*up) => break,
                }
            }
            sink.disconnected();
        }
    }
}

async fn wait_state<S: TokenStore>(cache: &CachedTokenStore<S>, want: ChannelState) {
    let start = Instant::now();
    while cache.channel_state() != want {
        assert!(start.elapsed() < Duration::from_secs(5), "never {want:?}");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

fn bound(ms: u64) -> CacheOptions {
    CacheOptions::default().with_max_staleness(Duration::from_millis(ms))
}

#[tokio::test]
async fn a_hit_does_not_read_the_store() {
    let users = users().await;
    let store = Arc::new(Counting::default());
    let cache = CachedTokenStore::new(Arc::clone(&store), LocalChannel::new(), bound(60_000));
    assert!(cache.wait_connected(Duration::from_secs(1)).await);
    let auth = instance(&users, cache.clone());
    let (token, _) = login(&auth).await;
    for _ in 0..10 {
        auth.validate(&token).await.expect("valid");
    }
    assert_eq!(
        store.gets(),
        1,
        "one read fills the cache, the rest are hits"
    );
    assert_eq!(cache.len(), 1);
}

#[tokio::test]
async fn without_the_cache_every_validate_reads_the_store() {
    let users = users().await;
    let store = Arc::new(Counting::default());
    let auth = instance(&users, Arc::clone(&store));
    let (token, _) = login(&auth).await;
    for _ in 0..10 {
        auth.validate(&token).await.expect("valid");
    }
    assert_eq!(store.gets(), 10);
}

#[tokio::test]
async fn revocations_reach_the_other_instance() {
    let users = users().await;
    let store = Arc::new(MemoryTokenStore::new());
    let channel = LocalChannel::new();
    let ca = CachedTokenStore::new(Arc::clone(&store), channel.clone(), bound(60_000));
    let cb = CachedTokenStore::new(Arc::clone(&store), channel, bound(60_000));
    assert!(ca.wait_connected(Duration::from_secs(1)).await);
    assert!(cb.wait_connected(Duration::from_secs(1)).await);
    let a = instance(&users, ca);
    let b = instance(&users, cb.clone());

    // logout
    let (token, _) = login(&a).await;
    b.validate(&token).await.expect("valid on B");
    assert!(a.logout(&token).await.expect("logout").destroyed());
    until_rejected(&b, &token, Duration::from_secs(1)).await;

    // logout_others and logout_all
    let (one, s1) = login(&a).await;
    let (two, _) = login(&a).await;
    b.validate(&one).await.expect("valid");
    b.validate(&two).await.expect("valid");
    assert_eq!(a.logout_others(&s1).await.expect("others"), 1);
    until_rejected(&b, &two, Duration::from_secs(1)).await;
    b.validate(&one)
        .await
        .expect("the kept session stays valid");
    assert_eq!(a.logout_all(&s1.user_id).await.expect("all"), 1);
    until_rejected(&b, &one, Duration::from_secs(1)).await;

    // revoke by id
    let (three, s3) = login(&a).await;
    b.validate(&three).await.expect("valid");
    assert!(a.revoke(&s3.user_id, &s3.id).await.expect("revoke"));
    until_rejected(&b, &three, Duration::from_secs(1)).await;

    // password change ends the others
    let (four, s4) = login(&a).await;
    let (five, _) = login(&a).await;
    b.validate(&five).await.expect("valid");
    a.change_password(&s4, PASSWORD, "another long enough passphrase 42")
        .await
        .expect("change password");
    until_rejected(&b, &five, Duration::from_secs(1)).await;
    b.validate(&four)
        .await
        .expect("the changing session stays valid");
}

#[tokio::test]
async fn a_lost_channel_means_direct_reads_until_it_is_back() {
    let users = users().await;
    let store = Arc::new(Counting::default());
    let switch = Switch::new(true);
    let ca = CachedTokenStore::new(Arc::clone(&store), switch.clone(), bound(60_000));
    let cb = CachedTokenStore::new(Arc::clone(&store), switch.clone(), bound(60_000));
    wait_state(&ca, ChannelState::Connected).await;
    wait_state(&cb, ChannelState::Connected).await;
    let a = instance(&users, ca);
    let b = instance(&users, cb.clone());
    let (token, _) = login(&a).await;
    let (other, _) = login(&a).await;
    b.validate(&token).await.expect("valid");
    b.validate(&other).await.expect("valid");
    let before = store.gets();
    b.validate(&token).await.expect("valid");
    assert_eq!(store.gets(), before, "a hit");

    switch.set(false);
    wait_state(&cb, ChannelState::Disconnected).await;
    b.validate(&other).await.expect("valid");
    assert_eq!(store.gets(), before + 1, "no channel: a direct read");
    // The message is lost; B reads the store and sees the logout anyway.
    assert!(a.logout(&token).await.expect("logout").destroyed());
    assert!(matches!(b.validate(&token).await, Err(Error::InvalidToken)));

    switch.set(true);
    wait_state(&cb, ChannelState::Connected).await;
    assert_eq!(cb.channel_connects(), 2);
    assert!(cb.is_empty(), "flushed on reconnection");
    b.validate(&other).await.expect("valid");
    let reads = store.gets();
    b.validate(&other).await.expect("valid");
    assert_eq!(store.gets(), reads, "cached again");
}

#[tokio::test]
async fn no_channel_yet_means_direct_reads() {
    let users = users().await;
    let store = Arc::new(Counting::default());
    let cache = CachedTokenStore::new(Arc::clone(&store), Switch::new(false), bound(60_000));
    let auth = instance(&users, cache.clone());
    let (token, _) = login(&auth).await;
    for _ in 0..5 {
        auth.validate(&token).await.expect("valid");
    }
    assert_eq!(store.gets(), 5);
    assert_eq!(cache.channel_state(), ChannelState::Disconnected);
    assert!(cache.is_empty());
}

#[tokio::test]
async fn staleness_is_bounded_even_without_messages() {
    let users = users().await;
    let store = Arc::new(MemoryTokenStore::new());
    let cache = CachedTokenStore::new(Arc::clone(&store), LocalChannel::new(), bound(200));
    assert!(cache.wait_connected(Duration::from_secs(1)).await);
    let auth = instance(&users, cache);
    let (token, session) = login(&auth).await;
    auth.validate(&token).await.expect("valid");
    // Deleted behind the cache's back: no message.
    assert!(store.delete(&session.id).await.expect("delete"));
    let took = until_rejected(&auth, &token, Duration::from_secs(2)).await;
    assert!(
        took <= Duration::from_millis(250),
        "seen after {took:?}, bound 200 ms"
    );
}

#[tokio::test]
async fn expiry_is_never_extended() {
    let users = users().await;
    let clock = ManualClock::new(OffsetDateTime::now_utc());
    let store = Arc::new(Counting::default());
    let cache = CachedTokenStore::new(Arc::clone(&store), LocalChannel::new(), bound(60_000));
    assert!(cache.wait_connected(Duration::from_secs(1)).await);
    let auth = Authenticator::builder(Arc::clone(&users), cache.clone())
        .password_hasher(Argon2Hasher::insecure_for_tests())
        .without_throttle()
        .session_ttl(Duration::from_secs(60))
        .clock(clock.clone())
        .build();
    let (token, session) = login(&auth).await;
    auth.validate(&token).await.expect("valid");
    clock.advance(Duration::from_secs(59));
    auth.validate(&token).await.expect("still valid");
    assert_eq!(store.gets(), 1, "served from the cache");
    clock.set(session.expires_at);
    assert!(auth.validate(&token).await.is_err(), "dead at expires_at");
    clock.advance(Duration::from_secs(1));
    assert!(auth.validate(&token).await.is_err());
}

#[tokio::test]
async fn idle_timeout_sees_touches_from_other_instances() {
    let users = users().await;
    let clock = ManualClock::new(OffsetDateTime::now_utc());
    let store = Arc::new(MemoryTokenStore::new());
    let channel = LocalChannel::new();
    let build = |tokens: CachedTokenStore<Arc<MemoryTokenStore>>| {
        Authenticator::builder(Arc::clone(&users), tokens)
            .password_hasher(Argon2Hasher::insecure_for_tests())
            .without_throttle()
            .idle_timeout(Duration::from_secs(60))
            .touch_interval(Duration::from_secs(10))
            .clock(clock.clone())
            .build()
    };
    let ca = CachedTokenStore::new(Arc::clone(&store), channel.clone(), bound(60_000));
    let cb = CachedTokenStore::new(Arc::clone(&store), channel, bound(60_000));
    assert!(ca.wait_connected(Duration::from_secs(1)).await);
    assert!(cb.wait_connected(Duration::from_secs(1)).await);
    let a = build(ca);
    let b = build(cb);
    let (token, _) = login(&a).await;
    a.validate(&token).await.expect("valid on A (cached)");
    clock.advance(Duration::from_secs(50));
    let seen = b.validate(&token).await.expect("valid on B, touches");
    // A's cached copy says idle for 61 s; the store says 11 s.
    clock.advance(Duration::from_secs(11));
    let on_a = a.validate(&token).await.expect("not idle: B touched it");
    assert!(on_a.session.last_seen_at >= seen.session.last_seen_at);
    // Truly idle: dead everywhere.
    clock.advance(Duration::from_secs(61));
    assert!(matches!(
        b.validate(&token).await,
        Err(Error::SessionExpired)
    ));
    assert!(a.validate(&token).await.is_err());
}

#[tokio::test]
async fn touches_keep_the_cached_copy_current() {
    let users = users().await;
    let clock = ManualClock::new(OffsetDateTime::now_utc());
    let store = Arc::new(Counting::default());
    let cache = CachedTokenStore::new(Arc::clone(&store), LocalChannel::new(), bound(60_000));
    assert!(cache.wait_connected(Duration::from_secs(1)).await);
    let auth = Authenticator::builder(Arc::clone(&users), cache)
        .password_hasher(Argon2Hasher::insecure_for_tests())
        .without_throttle()
        .idle_timeout(Duration::from_secs(60))
        .touch_interval(Duration::from_secs(10))
        .clock(clock.clone())
        .build();
    let (token, _) = login(&auth).await;
    for _ in 0..20 {
        clock.advance(Duration::from_secs(15));
        auth.validate(&token).await.expect("kept alive by touches");
    }
    // Touches kept the entry fresh: one read in all.
    assert_eq!(store.gets(), 1);
    let stored = store
        .get(
            &auth.validate(&token).await.expect("valid").session.id,
            clock.now(),
        )
        .await
        .expect("get")
        .expect("live");
    assert_eq!(stored.last_seen_at, time_micros(clock.now()));
}

fn time_micros(t: OffsetDateTime) -> OffsetDateTime {
    let nanos = t.nanosecond();
    t.replace_nanosecond(nanos - nanos % 1_000).expect("valid")
}

#[tokio::test]
async fn the_cache_is_bounded() {
    let store = Arc::new(MemoryTokenStore::new());
    let cache = CachedTokenStore::new(
        Arc::clone(&store),
        LocalChannel::new(),
        CacheOptions::default().with_max_entries(64),
    );
    assert!(cache.wait_connected(Duration::from_secs(1)).await);
    let now = OffsetDateTime::now_utc();
    for i in 0..1000 {
        let token = keycard::Token::generate().expect("token");
        let session = Session::new(
            &token,
            UserId::from(format!("u{i}")),
            now,
            Duration::from_secs(60),
            ClientInfo::none(),
        );
        store.create(&session).await.expect("create");
        assert!(cache.get(&session.id, now).await.expect("get").is_some());
        assert!(cache.len() <= 64, "{} entries", cache.len());
    }
}

#[tokio::test]
async fn revocations_carry_only_public_ids() {
    let id = keycard::Token::generate().expect("token").id();
    for revocation in [
        Revocation::Session(id),
        Revocation::User(UserId::from("ann")),
        Revocation::UserExcept {
            user: UserId::from(42_i64),
            keep: id,
        },
    ] {
        let wire = revocation.encode().expect("encode");
        assert!(wire.len() < 128, "{wire}");
        assert_eq!(Revocation::decode(&wire).expect("decode"), revocation);
    }
    assert!(Revocation::decode("{\"session\":\"nope\"}").is_err());
}

#[cfg(feature = "conformance")]
mod conformance_through_the_cache {
    use super::*;
    use keycard::conformance;

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn memory_store_through_the_cache_keeps_the_contract() {
        let cache = CachedTokenStore::new(
            MemoryTokenStore::new(),
            LocalChannel::new(),
            CacheOptions::default(),
        );
        assert!(cache.wait_connected(Duration::from_secs(1)).await);
        conformance::run_all(&cache).await;
        conformance::concurrent_tasks(Arc::new(cache)).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn memory_store_through_a_small_cache_keeps_the_contract() {
        let cache = CachedTokenStore::new(
            MemoryTokenStore::new(),
            LocalChannel::new(),
            CacheOptions::default().with_max_entries(16),
        );
        assert!(cache.wait_connected(Duration::from_secs(1)).await);
        conformance::run_all(&cache).await;
    }
}
