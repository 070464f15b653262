//! The validation cache (`keycard::store::CachedTokenStore`): hits do not read the store,
//! revocations on one instance reach the others through the channel, a lost channel means
//! direct reads, staleness is bounded, expiry is never extended, idle timeouts survive other
//! instances' touches, memory is bounded, an API token revoked on one instance is refused by
//! the others, and the store contract holds through the cache.
//!
//! The Redis and PostgreSQL cases need the servers of the `redis_store` and
//! `postgres` modules (`KEYCARD_REDIS_URL`, `KEYCARD_POSTGRES_URL`) and fail when they are
//! down.

#[cfg(any(feature = "redis", feature = "postgres"))]
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[cfg(any(feature = "redis", feature = "postgres"))]
use keycard::api_tokens::{ApiTokens, NewApiToken};
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
    async fn touch_from(
        &self,
        id: &SessionId,
        at: OffsetDateTime,
        ip: std::net::IpAddr,
    ) -> Result<bool, StoreError> {
        self.store.touch_from(id, at, ip).await
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
    assert!(a.revoke_session(&s3.user_id, &s3.id).await.expect("revoke"));
    until_rejected(&b, &three, Duration::from_secs(1)).await;

    // password change ends the others
    let (four, s4) = login(&a).await;
    let (five, _) = login(&a).await;
    b.validate(&five).await.expect("valid");
    let changed = a
        .change_password(
            &s4,
            PASSWORD,
            "another long enough passphrase 42",
            &keycard::ClientInfo::none(),
        )
        .await
        .expect("change password");
    until_rejected(&b, &five, Duration::from_secs(1)).await;
    until_rejected(&b, &four, Duration::from_secs(1)).await;
    b.validate(changed.login.token.expose_secret())
        .await
        .expect("the changing session goes on under its new token");
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
    // The bound, plus slack for a loaded machine's timers.
    assert!(
        took <= Duration::from_millis(350),
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

/// Scenario shared by the server-backed channels: two instances, each with its own cache
/// (bound 30 s, so only the channel can make a revocation visible quickly), see each other's
/// logouts, revocations and "log out other devices" within a second.
#[cfg(any(feature = "redis", feature = "postgres"))]
async fn revocations_cross_instances<S: TokenStore + 'static>(
    ca: CachedTokenStore<S>,
    cb: CachedTokenStore<S>,
) {
    let users = users().await;
    let a = instance(&users, ca);
    let b = instance(&users, cb.clone());
    let limit = Duration::from_secs(1);

    let (token, _) = login(&a).await;
    b.validate(&token).await.expect("valid on B");
    b.validate(&token).await.expect("valid on B (hit)");
    assert!(a.logout(&token).await.expect("logout").destroyed());
    let took = until_rejected(&b, &token, limit).await;
    eprintln!("logout on A seen on B after {took:?}");

    let (one, s1) = login(&a).await;
    let (two, _) = login(&a).await;
    b.validate(&one).await.expect("valid");
    b.validate(&two).await.expect("valid");
    a.logout_others(&s1).await.expect("others");
    until_rejected(&b, &two, limit).await;
    b.validate(&one).await.expect("kept");
    a.revoke_session(&s1.user_id, &s1.id).await.expect("revoke");
    until_rejected(&b, &one, limit).await;

    let (three, s3) = login(&b).await;
    a.validate(&three).await.expect("valid on A");
    b.logout_all(&s3.user_id).await.expect("all");
    until_rejected(&a, &three, limit).await;

    // The subscription stays up (heartbeats included) and cached entries stay served.
    let (four, _) = login(&a).await;
    b.validate(&four).await.expect("valid");
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_eq!(cb.channel_connects(), 1, "the channel never dropped");
    assert_eq!(cb.channel_state(), ChannelState::Connected);
    assert!(!cb.is_empty(), "entries within the bound are kept");
}

/// An instance with API tokens enabled (scopes `notes:read`, `notes:write`).
#[cfg(any(feature = "redis", feature = "postgres"))]
fn api_instance(users: &Users, tokens: impl TokenStore + 'static) -> Authenticator<Users> {
    Authenticator::builder(Arc::clone(users), tokens)
        .password_hasher(Argon2Hasher::insecure_for_tests())
        .without_throttle()
        .api_tokens(ApiTokens::new(["notes:read", "notes:write"]).expect("scopes"))
        .build()
}

/// Scenario shared by the server-backed channels: an API token created on A and used on A
/// and B (each from its own address, each behind its own cache, bound 30 s) is revoked on A
/// with `revoke_api_token`; B refuses it within a second, pushed by the channel, well inside
/// the bound, and the owner's login lives on.
#[cfg(any(feature = "redis", feature = "postgres"))]
async fn api_token_revocation_crosses_instances<S: TokenStore + 'static>(
    ca: CachedTokenStore<S>,
    cb: CachedTokenStore<S>,
) {
    let users = users().await;
    let a = api_instance(&users, ca);
    let b = api_instance(&users, cb.clone());
    let limit = Duration::from_secs(1);

    let (login_token, me) = login(&a).await;
    let created = a
        .create_api_token(&me, NewApiToken::new("ci", ["notes:read"]))
        .await
        .expect("create an API token on A");
    let pat = created.token.expose_secret().to_owned();
    let id = created.view.id;

    let from_a: IpAddr = "192.0.2.10".parse().expect("ip");
    let from_b: IpAddr = "2001:db8::b".parse().expect("ip");
    let on_a = a
        .validate_session_from(&pat, Some(from_a))
        .await
        .expect("valid on A");
    assert_eq!(on_a.id, id);
    a.require_scope(&on_a, "notes:read")
        .expect("its scope on A");
    for _ in 0..2 {
        let on_b = b
            .validate_session_from(&pat, Some(from_b))
            .await
            .expect("valid on B (a miss, then a hit)");
        assert_eq!(on_b.id, id);
        assert_eq!(
            on_b.kind.api_token().map(|g| g.name()),
            Some("ci"),
            "B reads the token's kind and name from the shared store"
        );
        b.require_scope(&on_b, "notes:read")
            .expect("its scope on B");
        assert!(matches!(
            b.require_scope(&on_b, "notes:write"),
            Err(Error::InsufficientScope { .. })
        ));
    }
    let listed = b.list_api_tokens(&me).await.expect("list on B");
    assert_eq!(
        listed.iter().map(|t| t.id).collect::<Vec<_>>(),
        vec![id],
        "B lists the token A created"
    );

    // B has validated only the token: it now serves it from its cache, so only the pushed
    // revocation can make B refuse it within the second (the bound is 30 s).
    assert!(!cb.is_empty(), "B holds the token in its cache");
    assert!(a.revoke_api_token(&me, &id).await.expect("revoke on A"));
    assert!(
        matches!(a.validate_session(&pat).await, Err(Error::InvalidToken)),
        "A refuses the token it revoked at once"
    );
    let took = until_rejected(&b, &pat, limit).await;
    eprintln!("API token revoked on A refused on B after {took:?}");
    assert!(
        matches!(b.validate_session(&pat).await, Err(Error::InvalidToken)),
        "B keeps refusing it"
    );
    b.validate(&login_token)
        .await
        .expect("revoking an API token leaves the owner's login alone");
    assert!(b.list_api_tokens(&me).await.expect("list").is_empty());
    assert_eq!(cb.channel_connects(), 1, "the channel never dropped");
}

/// A session deleted behind the caches' backs (no message) is still served by B until its
/// channel is killed: then B flushes on reconnection (and reads directly while it is down),
/// rejects it within the bound, and the channel works again.
#[cfg(any(feature = "redis", feature = "postgres"))]
async fn killed_channel_falls_back_and_comes_back<S, K, F>(
    ca: CachedTokenStore<S>,
    cb: CachedTokenStore<S>,
    kill: K,
) where
    S: TokenStore + 'static,
    K: FnOnce() -> F,
    F: std::future::Future<Output = usize>,
{
    let users = users().await;
    let a = instance(&users, ca.clone());
    let b = instance(&users, cb.clone());
    let (token, session) = login(&a).await;
    b.validate(&token).await.expect("valid on B");
    assert!(ca.store().delete(&session.id).await.expect("delete"));
    b.validate(&token)
        .await
        .expect("no message: B's entry is within its 30 s bound");
    assert_eq!(cb.channel_connects(), 1);

    assert!(kill().await >= 1, "found B's subscriber to kill");
    let took = until_rejected(&b, &token, Duration::from_secs(2)).await;
    eprintln!("after the kill, B rejected the session in {took:?}");
    let start = Instant::now();
    while cb.channel_connects() < 2 || cb.channel_state() != ChannelState::Connected {
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "the channel never came back"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // Back: revocations are pushed again.
    let (again, _) = login(&a).await;
    b.validate(&again).await.expect("valid");
    assert!(a.logout(&again).await.expect("logout").destroyed());
    until_rejected(&b, &again, Duration::from_secs(1)).await;
}

#[cfg(any(feature = "redis", feature = "postgres"))]
fn host_port(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let rest = rest.rsplit_once('@').map_or(rest, |(_, rest)| rest);
    rest.split(['/', '?']).next().expect("host:port")
}

#[cfg(any(feature = "redis", feature = "postgres"))]
/// A TCP proxy (to Redis or PostgreSQL) that the test can freeze: while frozen, no byte
/// passes (the connections stay open, as in a network partition); on thaw every connection
/// that was frozen is closed.
struct Proxy {
    /// `host:port` to connect to instead of the server.
    addr: String,
    frozen: watch::Sender<bool>,
}

#[cfg(any(feature = "redis", feature = "postgres"))]
impl Proxy {
    /// Proxies to the server of `url` (`scheme://[user@]host:port[/...]`).
    async fn start(url: &str) -> Self {
        let target = host_port(url).to_owned();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr").to_string();
        let frozen = watch::Sender::new(false);
        let state = frozen.clone();
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let Ok(server) = tokio::net::TcpStream::connect(&target).await else {
                    continue;
                };
                let (cr, cw) = client.into_split();
                let (sr, sw) = server.into_split();
                tokio::spawn(pump(cr, sw, state.subscribe()));
                tokio::spawn(pump(sr, cw, state.subscribe()));
            }
        });
        Self { addr, frozen }
    }

    /// `url` with the proxy in place of the server.
    fn url(&self, url: &str) -> String {
        url.replacen(host_port(url), &self.addr, 1)
    }

    fn freeze(&self, frozen: bool) {
        self.frozen.send_replace(frozen);
    }
}

#[cfg(any(feature = "redis", feature = "postgres"))]
async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    mut frozen: watch::Receiver<bool>,
) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut buf = vec![0_u8; 16 * 1024];
    loop {
        let is_frozen = *frozen.borrow();
        if is_frozen {
            // Hold the connection silently, then drop it on thaw.
            let thawed = frozen.wait_for(|f| !*f).await.is_ok();
            let _ = thawed;
            return;
        }
        let read = tokio::time::timeout(Duration::from_millis(5), from.read(&mut buf)).await;
        let n = match read {
            Err(_) => continue,
            Ok(Ok(n)) if n > 0 => n,
            Ok(_) => return,
        };
        let is_frozen = *frozen.borrow();
        if !is_frozen && to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}

/// B's channel goes through `proxy`. A silent partition (no error, no EOF) is noticed by the
/// heartbeat within about a second; meanwhile and after, B reads the store directly, so a
/// revocation whose message is lost is still seen at once; on thaw the channel comes back.
#[cfg(any(feature = "redis", feature = "postgres"))]
async fn partitioned_channel_means_direct_reads<S: TokenStore + 'static>(
    proxy: &Proxy,
    ca: CachedTokenStore<S>,
    cb: CachedTokenStore<S>,
) {
    let users = users().await;
    let a = instance(&users, ca);
    let b = instance(&users, cb.clone());
    let (token, _) = login(&a).await;
    b.validate(&token).await.expect("valid on B");

    // A silent partition: no error, no EOF. The heartbeat notices within about a second.
    proxy.freeze(true);
    let start = Instant::now();
    while cb.channel_state() == ChannelState::Connected {
        assert!(
            start.elapsed() < Duration::from_secs(3),
            "the heartbeat never noticed the partition"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    eprintln!("partition noticed after {:?}", start.elapsed());
    // The message is lost in the partition; B reads the store directly and rejects at once.
    assert!(a.logout(&token).await.expect("logout").destroyed());
    assert!(matches!(b.validate(&token).await, Err(Error::InvalidToken)));
    assert_eq!(cb.channel_state(), ChannelState::Disconnected);

    proxy.freeze(false);
    let start = Instant::now();
    while cb.channel_state() != ChannelState::Connected {
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "never reconnected"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert!(cb.channel_connects() >= 2);
    let (again, _) = login(&a).await;
    b.validate(&again).await.expect("valid");
    assert!(a.logout(&again).await.expect("logout").destroyed());
    until_rejected(&b, &again, Duration::from_secs(1)).await;
}

#[cfg(feature = "redis")]
mod redis_channel {
    use super::*;
    use crate::support::stores::RedisPrefix;
    use keycard::redis::{RedisRevocationChannel, RedisTokenStore};

    /// The kill test finds B's subscriber by listing pub/sub clients: no other test of this
    /// file may open one meanwhile.
    static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

    async fn cached(ns: &RedisPrefix, options: CacheOptions) -> CachedTokenStore<RedisTokenStore> {
        let channel = RedisRevocationChannel::connect(&ns.url)
            .await
            .expect("connect the channel")
            .with_channel(format!("{}revocations", ns.prefix));
        let cache = CachedTokenStore::new(ns.token_store().await, channel, options);
        assert!(
            cache.wait_connected(Duration::from_secs(5)).await,
            "the Redis subscriber did not connect"
        );
        cache
    }

    async fn pubsub_clients(store: &RedisTokenStore) -> Vec<String> {
        let list: String = keycard::redis::driver::cmd("CLIENT")
            .arg("LIST")
            .arg("TYPE")
            .arg("pubsub")
            .query_async(&mut store.connection())
            .await
            .expect("CLIENT LIST");
        list.lines()
            .filter_map(|l| l.split(' ').find_map(|f| f.strip_prefix("id=")))
            .map(str::to_owned)
            .collect()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn redis_revocations_cross_instances() {
        let _serial = SERIAL.lock().await;
        let ns = RedisPrefix::new().await;
        let ca = cached(&ns, bound(30_000)).await;
        let cb = cached(&ns, bound(30_000)).await;
        revocations_cross_instances(ca, cb).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn redis_killed_subscriber_falls_back_and_comes_back() {
        let _serial = SERIAL.lock().await;
        let ns = RedisPrefix::new().await;
        let ca = cached(&ns, bound(30_000)).await;
        let before = pubsub_clients(ca.store()).await;
        let cb = cached(&ns, bound(30_000)).await;
        let admin = ca.store().clone();
        let kill = || async move {
            let ids: Vec<String> = pubsub_clients(&admin)
                .await
                .into_iter()
                .filter(|id| !before.contains(id))
                .collect();
            for id in &ids {
                let _: i64 = keycard::redis::driver::cmd("CLIENT")
                    .arg("KILL")
                    .arg("ID")
                    .arg(id)
                    .query_async(&mut admin.connection())
                    .await
                    .expect("CLIENT KILL");
            }
            ids.len()
        };
        killed_channel_falls_back_and_comes_back(ca, cb, kill).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn redis_partitioned_subscriber_means_direct_reads() {
        let _serial = SERIAL.lock().await;
        let ns = RedisPrefix::new().await;
        let proxy = Proxy::start(&ns.url).await;
        let ca = cached(&ns, bound(30_000)).await;
        // B's subscriber goes through the proxy; its store and publisher do not.
        let channel = RedisRevocationChannel::new(
            keycard::redis::driver::Client::open(proxy.url(&ns.url)).expect("proxy URL"),
            ns.token_store().await.connection(),
        )
        .with_channel(format!("{}revocations", ns.prefix));
        let cb = CachedTokenStore::new(ns.token_store().await, channel, bound(30_000));
        assert!(cb.wait_connected(Duration::from_secs(5)).await);
        partitioned_channel_means_direct_reads(&proxy, ca, cb).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn redis_api_token_revocation_crosses_instances() {
        let _serial = SERIAL.lock().await;
        let ns = RedisPrefix::new().await;
        let ca = cached(&ns, bound(30_000)).await;
        let cb = cached(&ns, bound(30_000)).await;
        api_token_revocation_crosses_instances(ca, cb).await;
    }

    #[cfg(feature = "conformance")]
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn redis_store_through_the_cache_keeps_the_contract() {
        let _serial = SERIAL.lock().await;
        let ns = RedisPrefix::new().await;
        let cache = cached(&ns, CacheOptions::default()).await;
        keycard::conformance::run_all(&cache).await;
        keycard::conformance::concurrent_tasks(Arc::new(cache)).await;
    }
}

#[cfg(feature = "postgres")]
mod postgres_channel {
    use super::*;
    use crate::support::stores::PgSchema;
    use keycard::postgres::{PostgresRevocationChannel, PostgresTokenStore};

    /// A store over `schema.sessions` whose connections carry `application_name = app`, and
    /// its cache on the schema's channel.
    async fn cached(
        schema: &PgSchema,
        app: &str,
        options: CacheOptions,
    ) -> CachedTokenStore<PostgresTokenStore> {
        let sep = if schema.url.contains('?') { '&' } else { '?' };
        let url = format!("{}{sep}application_name={app}", schema.url);
        let store = PostgresTokenStore::connect(&url)
            .await
            .expect("connect")
            .with_table(&schema.table("sessions"))
            .expect("valid table name");
        store.migrate().await.expect("migrate");
        let channel =
            PostgresRevocationChannel::new(store.pool().clone()).with_channel(&schema.name);
        let cache = CachedTokenStore::new(store, channel, options);
        assert!(
            cache.wait_connected(Duration::from_secs(5)).await,
            "the PostgreSQL listener did not connect"
        );
        cache
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres_revocations_cross_instances() {
        let schema = PgSchema::new().await;
        let ca = cached(&schema, &format!("{}_a", schema.name), bound(30_000)).await;
        let cb = cached(&schema, &format!("{}_b", schema.name), bound(30_000)).await;
        revocations_cross_instances(ca, cb).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres_api_token_revocation_crosses_instances() {
        let schema = PgSchema::new().await;
        let ca = cached(&schema, &format!("{}_a", schema.name), bound(30_000)).await;
        let cb = cached(&schema, &format!("{}_b", schema.name), bound(30_000)).await;
        api_token_revocation_crosses_instances(ca, cb).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres_killed_listener_falls_back_and_comes_back() {
        let schema = PgSchema::new().await;
        let app_b = format!("{}_b", schema.name);
        let ca = cached(&schema, &format!("{}_a", schema.name), bound(30_000)).await;
        let cb = cached(&schema, &app_b, bound(30_000)).await;
        let admin = ca.store().pool().clone();
        let kill = || async move {
            let killed: Vec<(bool,)> = sqlx::query_as(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
                 WHERE application_name = $1 AND query LIKE 'LISTEN %'",
            )
            .bind(&app_b)
            .fetch_all(&admin)
            .await
            .expect("pg_terminate_backend");
            killed.len()
        };
        killed_channel_falls_back_and_comes_back(ca, cb, kill).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres_partitioned_listener_means_direct_reads() {
        let schema = PgSchema::new().await;
        let proxy = Proxy::start(&schema.url).await;
        let ca = cached(&schema, &format!("{}_a", schema.name), bound(30_000)).await;
        // B's listener (and heartbeats) go through the proxy; its store does not.
        let pool = sqlx::postgres::PgPoolOptions::new()
            .max_connections(2)
            .acquire_timeout(Duration::from_secs(1))
            .connect(&proxy.url(&schema.url))
            .await
            .expect("connect through the proxy");
        let store = PostgresTokenStore::connect(&schema.url)
            .await
            .expect("connect")
            .with_table(&schema.table("sessions"))
            .expect("valid table name");
        let channel = PostgresRevocationChannel::new(pool).with_channel(&schema.name);
        let cb = CachedTokenStore::new(store, channel, bound(30_000));
        assert!(cb.wait_connected(Duration::from_secs(5)).await);
        partitioned_channel_means_direct_reads(&proxy, ca, cb).await;
    }

    #[cfg(feature = "conformance")]
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn postgres_store_through_the_cache_keeps_the_contract() {
        let schema = PgSchema::new().await;
        let cache = cached(&schema, "keycard_conformance", CacheOptions::default()).await;
        keycard::conformance::run_all(&cache).await;
        keycard::conformance::concurrent_tasks(Arc::new(cache)).await;
    }
}
