//! An opt-in validation cache in front of any [`TokenStore`], kept honest by pushed
//! revocations.
//!
//! [`CachedTokenStore`] serves [`TokenStore::get`] from a bounded in-process map and forwards
//! every write to the store it wraps. Every delete that goes through it is published as a
//! [`Revocation`] on a [`RevocationChannel`] (Redis pub/sub, PostgreSQL `LISTEN/NOTIFY`, or
//! [`LocalChannel`] inside one process), and every instance drops the revoked sessions from
//! its own map when the message arrives.
//!
//! What it promises:
//!
//! - **Bounded staleness.** An entry is served for at most
//!   [`max_staleness`](CacheOptions::with_max_staleness) (default 1 s) after it was read from
//!   the store; after that the next `get` reads the store again, whether or not the channel
//!   works. A session revoked on another instance is therefore never accepted here for longer
//!   than that bound, and normally only for the channel's latency (milliseconds).
//! - **Lost channel, direct reads.** While the channel is down (connection dropped,
//!   subscriber error, not yet connected) every `get` reads the store, as without the cache.
//!   When the channel is back, the map is flushed first, since notifications may have been
//!   missed.
//! - **Expiry is never extended.** A cached session is absent from its own `expires_at` on,
//!   exactly as in the store.
//! - **Bounded memory.** At most [`max_entries`](CacheOptions::with_max_entries) sessions are
//!   kept; old entries are evicted first.
//!
//! Messages carry only public ids (session ids, user ids), never a token or its secret.
//!
//! # Idle timeouts and touches
//! Each instance caches the `last_seen_at` it read (or wrote with `touch`). Another
//! instance's touch is seen here when the entry is next re-read, at most `max_staleness`
//! later. So an instance may touch a session somewhat more often than the touch interval
//! (harmless), and before the authenticator ends a session for idleness it re-reads it with
//! [`TokenStore::get_uncached`], so a session kept alive on another instance is never ended
//! on a stale `last_seen_at`.
//!
//! ```
//! # tokio_test_block_on(async {
//! use keycard::store::{CacheOptions, CachedTokenStore, LocalChannel};
//! use keycard::{Authenticator, MemoryTokenStore, MemoryUserStore, UserRecord};
//!
//! // One process: a local channel. Across processes use `RedisRevocationChannel` or
//! // `PostgresRevocationChannel` over the store the instances share.
//! let tokens = CachedTokenStore::new(MemoryTokenStore::new(), LocalChannel::new(), CacheOptions::default());
//! let users = MemoryUserStore::<UserRecord>::new();
//! let auth = Authenticator::builder(users, tokens.clone()).build();
//! // Until the channel is subscribed, every validate reads the store.
//! assert!(tokens.wait_connected(std::time::Duration::from_secs(1)).await);
//! assert_eq!(tokens.channel_state(), keycard::store::ChannelState::Connected);
//! # let _ = auth;
//! # });
//! # fn tokio_test_block_on<F: std::future::Future>(f: F) -> F::Output {
//! #     tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(f)
//! # }
//! ```

use std::collections::HashMap;
use std::fmt;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use tokio::sync::{broadcast, watch};

use super::TokenStore;
use crate::error::StoreError;
use crate::session::Session;
use crate::token::SessionId;
use crate::user::UserId;

/// How many shards the map is split into (lock striping).
const SHARDS: usize = 16;

#[cfg(any(feature = "redis", feature = "postgres"))]
/// The delay between two reconnection attempts of a channel's subscriber, doubling up to
/// [`MAX_RECONNECT_DELAY`].
pub(crate) const MIN_RECONNECT_DELAY: Duration = Duration::from_millis(50);
#[cfg(any(feature = "redis", feature = "postgres"))]
/// The longest delay between two reconnection attempts.
pub(crate) const MAX_RECONNECT_DELAY: Duration = Duration::from_secs(1);

/// Settings of a [`CachedTokenStore`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CacheOptions {
    max_entries: usize,
    max_staleness: Duration,
}

impl CacheOptions {
    /// The default bound on how long an entry is served without re-reading the store: 1 s.
    pub const DEFAULT_MAX_STALENESS: Duration = Duration::from_secs(1);
    /// The default number of sessions kept: 10 000.
    pub const DEFAULT_MAX_ENTRIES: usize = 10_000;

    /// Keeps at most `n` sessions (at least 1 per shard, 16 in all). When full, expired and
    /// stale entries are evicted first, then the oldest.
    #[must_use]
    pub fn with_max_entries(mut self, n: usize) -> Self {
        self.max_entries = n.max(SHARDS);
        self
    }

    /// Serves an entry for at most `bound` after it was read from the store (default 1 s):
    /// the longest a revocation on another instance can go unnoticed here, even when the
    /// channel is silently lost. `Duration::ZERO` turns caching off (every `get` reads the
    /// store).
    #[must_use]
    pub fn with_max_staleness(mut self, bound: Duration) -> Self {
        self.max_staleness = bound;
        self
    }

    /// The most sessions kept.
    pub fn max_entries(&self) -> usize {
        self.max_entries
    }

    /// The staleness bound.
    pub fn max_staleness(&self) -> Duration {
        self.max_staleness
    }
}

impl Default for CacheOptions {
    fn default() -> Self {
        Self {
            max_entries: Self::DEFAULT_MAX_ENTRIES,
            max_staleness: Self::DEFAULT_MAX_STALENESS,
        }
    }
}

/// Sessions that no longer exist in the store: what a [`RevocationChannel`] carries. Only
/// public ids, never a token or a secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Revocation {
    /// One session (logout, revoke, idle or deleted-user cleanup).
    Session(SessionId),
    /// Every session of a user (log out everywhere).
    User(UserId),
    /// Every session of a user but one (log out other devices, password change).
    UserExcept {
        /// The user.
        user: UserId,
        /// The session that was kept.
        keep: SessionId,
    },
}

impl Revocation {
    /// The message's wire form (JSON, a few dozen bytes).
    ///
    /// # Errors
    /// [`StoreError::Corrupt`] if it cannot be encoded (never, for these types).
    pub fn encode(&self) -> Result<String, StoreError> {
        serde_json::to_string(self).map_err(StoreError::corrupt)
    }

    /// Parses a message's wire form.
    ///
    /// # Errors
    /// [`StoreError::Corrupt`] if `payload` is not a revocation.
    pub fn decode(payload: &str) -> Result<Self, StoreError> {
        serde_json::from_str(payload).map_err(StoreError::corrupt)
    }

    fn covers(&self, session: &Session) -> bool {
        match self {
            Self::Session(id) => session.id == *id,
            Self::User(user) => session.user_id == *user,
            // `delete_for_user_except` leaves API tokens in place.
            Self::UserExcept { user, keep } => {
                session.user_id == *user && session.id != *keep && session.kind.is_interactive()
            }
        }
    }
}

/// Whether a [`CachedTokenStore`] currently trusts its cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ChannelState {
    /// The subscriber is connected: cached entries are served (within the staleness bound).
    Connected,
    /// The subscriber is not connected (yet, or any more): every `get` reads the store.
    Disconnected,
}

/// Carries [`Revocation`]s between the instances that share a store.
///
/// Implementations: [`LocalChannel`] (one process), `RedisRevocationChannel` (feature
/// `redis`), `PostgresRevocationChannel` (feature `postgres`). A channel must deliver every
/// message published after [`RevocationSink::connected`] was called, until
/// [`RevocationSink::disconnected`]; it reports every loss of its subscription it notices.
#[async_trait]
pub trait RevocationChannel: Send + Sync + fmt::Debug + 'static {
    /// Sends `revocation` to every subscribed instance (this one's included).
    ///
    /// # Errors
    /// [`StoreError::Backend`] if the message could not be sent.
    async fn publish(&self, revocation: &Revocation) -> Result<(), StoreError>;

    /// Runs the subscriber for as long as the cache lives (the task is aborted when the last
    /// clone of the [`CachedTokenStore`] is dropped): subscribe, call
    /// [`RevocationSink::connected`], pass every message to [`RevocationSink::revoke`]; on
    /// any loss call [`RevocationSink::disconnected`] and subscribe again.
    async fn run(&self, sink: RevocationSink);
}

#[async_trait]
impl<C: RevocationChannel + ?Sized> RevocationChannel for Arc<C> {
    async fn publish(&self, revocation: &Revocation) -> Result<(), StoreError> {
        (**self).publish(revocation).await
    }
    async fn run(&self, sink: RevocationSink) {
        (**self).run(sink).await;
    }
}

/// Where a [`RevocationChannel`]'s subscriber reports: the cache of one [`CachedTokenStore`].
#[derive(Clone)]
pub struct RevocationSink {
    shared: Arc<Shared>,
}

impl fmt::Debug for RevocationSink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RevocationSink")
            .field("state", &self.shared.state())
            .finish_non_exhaustive()
    }
}

impl RevocationSink {
    /// The subscription is (again) in place: flushes the cache (messages may have been
    /// missed while it was not) and starts serving from it.
    pub fn connected(&self) {
        let shared = &self.shared;
        shared.generation.fetch_add(1, Ordering::AcqRel);
        for shard in &shared.shards {
            lock(shard).clear();
        }
        shared.connects.fetch_add(1, Ordering::AcqRel);
        shared.up.store(true, Ordering::Release);
        shared.state_tx.send_replace(ChannelState::Connected);
        tracing::debug!("revocation channel connected; validation cache flushed");
    }

    /// The subscription is lost: every `get` reads the store until
    /// [`connected`](Self::connected).
    pub fn disconnected(&self) {
        let shared = &self.shared;
        let was_up = shared.up.swap(false, Ordering::AcqRel);
        shared.generation.fetch_add(1, Ordering::AcqRel);
        shared.state_tx.send_replace(ChannelState::Disconnected);
        if was_up {
            tracing::warn!("revocation channel lost; validating against the store directly");
        }
    }

    /// A revocation arrived: drops the sessions it names from the cache.
    pub fn revoke(&self, revocation: &Revocation) {
        self.shared.invalidate(revocation);
    }

    /// A message arrived that is not a revocation: logged and ignored.
    pub fn malformed(&self, payload: &str) {
        tracing::warn!(
            len = payload.len(),
            "ignoring a malformed message on the revocation channel"
        );
    }
}

struct Entry {
    session: Session,
    fetched: Instant,
}

type Shard = Mutex<HashMap<SessionId, Entry>>;

struct Shared {
    shards: Box<[Shard]>,
    per_shard: usize,
    max_staleness: Duration,
    /// Bumped by every invalidation, flush and disconnection; a read fills the cache only
    /// if it did not change while the read was in flight.
    generation: AtomicU64,
    up: AtomicBool,
    connects: AtomicU64,
    state_tx: watch::Sender<ChannelState>,
}

fn lock(shard: &Shard) -> MutexGuard<'_, HashMap<SessionId, Entry>> {
    shard.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Shared {
    fn new(options: CacheOptions) -> Self {
        let (state_tx, _) = watch::channel(ChannelState::Disconnected);
        Self {
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
            per_shard: options.max_entries.max(SHARDS).div_ceil(SHARDS),
            max_staleness: options.max_staleness,
            generation: AtomicU64::new(0),
            up: AtomicBool::new(false),
            connects: AtomicU64::new(0),
            state_tx,
        }
    }

    fn state(&self) -> ChannelState {
        match self.up.load(Ordering::Acquire) {
            true => ChannelState::Connected,
            false => ChannelState::Disconnected,
        }
    }

    fn shard(&self, id: &SessionId) -> &Shard {
        &self.shards[usize::from(id.as_bytes()[0]) % SHARDS]
    }

    /// The cached session, if the cache may be trusted and the entry is fresh. `Some(None)`:
    /// cached, but expired at `now`.
    fn lookup(&self, id: &SessionId, now: OffsetDateTime) -> Option<Option<Session>> {
        if !self.up.load(Ordering::Acquire) {
            return None;
        }
        let mut shard = lock(self.shard(id));
        let entry = shard.get(id)?;
        if entry.fetched.elapsed() >= self.max_staleness {
            return None;
        }
        if entry.session.is_expired(now) {
            shard.remove(id);
            return Some(None);
        }
        Some(Some(entry.session.clone()))
    }

    /// Caches `session`, read from the store at `fetched`, unless an invalidation, flush or
    /// disconnection happened since `generation` was read.
    fn fill(&self, session: &Session, fetched: Instant, generation: u64) {
        if self.max_staleness.is_zero() {
            return;
        }
        let mut shard = lock(self.shard(&session.id));
        if !self.up.load(Ordering::Acquire) || self.generation.load(Ordering::Acquire) != generation
        {
            return;
        }
        if shard.len() >= self.per_shard && !shard.contains_key(&session.id) {
            self.evict(&mut shard);
        }
        shard.insert(
            session.id,
            Entry {
                session: session.clone(),
                fetched,
            },
        );
    }

    /// Makes room in a full shard: drops stale entries, or else the oldest one.
    fn evict(&self, shard: &mut HashMap<SessionId, Entry>) {
        let bound = self.max_staleness;
        shard.retain(|_, e| e.fetched.elapsed() < bound);
        if shard.len() >= self.per_shard {
            let oldest = shard
                .iter()
                .min_by_key(|(_, e)| e.fetched)
                .map(|(id, _)| *id);
            if let Some(id) = oldest {
                shard.remove(&id);
            }
        }
    }

    /// Drops an entry the store no longer has. No generation bump: ids are never reused and
    /// sessions never come back, and every deletion that could race a fill bumps it itself.
    fn forget(&self, id: &SessionId) {
        lock(self.shard(id)).remove(id);
    }

    fn invalidate(&self, revocation: &Revocation) {
        self.generation.fetch_add(1, Ordering::AcqRel);
        match revocation {
            Revocation::Session(id) => {
                lock(self.shard(id)).remove(id);
            }
            _ => {
                for shard in &self.shards {
                    lock(shard).retain(|_, e| !revocation.covers(&e.session));
                }
            }
        }
    }

    /// Records a successful touch: the session existed when it began.
    fn touched(&self, id: &SessionId, seen: OffsetDateTime, started: Instant, generation: u64) {
        let mut shard = lock(self.shard(id));
        if self.generation.load(Ordering::Acquire) != generation {
            // A revocation arrived meanwhile: the entry cannot be trusted to be current, and
            // keeping it would serve the `last_seen_at` from before this touch. Drop it; the
            // next read fetches the store's copy.
            shard.remove(id);
            return;
        }
        if let Some(entry) = shard.get_mut(id) {
            if seen > entry.session.last_seen_at {
                entry.session.last_seen_at = seen;
            }
            entry.fetched = entry.fetched.max(started);
        }
    }

    /// Records the address a successful `touch_from` wrote.
    fn moved(&self, id: &SessionId, ip: IpAddr) {
        if let Some(entry) = lock(self.shard(id)).get_mut(id) {
            entry.session.client.ip = Some(ip);
        }
    }

    fn len(&self) -> usize {
        self.shards.iter().map(|s| lock(s).len()).sum()
    }
}

/// Aborts the subscriber task when the last clone of the store is dropped.
pub(crate) struct Subscriber(pub(crate) tokio::task::JoinHandle<()>);

impl Drop for Subscriber {
    fn drop(&mut self) {
        self.0.abort();
    }
}

struct Inner<S> {
    store: S,
    shared: Arc<Shared>,
    channel: Arc<dyn RevocationChannel>,
    options: CacheOptions,
    _subscriber: Subscriber,
}

/// A [`TokenStore`] that serves `get` from a bounded in-process cache, kept current by
/// [`Revocation`]s pushed over a [`RevocationChannel`]. See the [module](self) docs for what
/// it promises. Cheap to clone (one `Arc`): keep a clone to watch
/// [`channel_state`](Self::channel_state) after handing one to the authenticator.
///
/// Every instance that shares the store must put its deletes through a `CachedTokenStore`
/// on the same channel (or tolerate the staleness bound): a delete that bypasses it is only
/// noticed when entries are re-read.
pub struct CachedTokenStore<S> {
    inner: Arc<Inner<S>>,
}

impl<S> Clone for CachedTokenStore<S> {
    fn clone(&self) -> Self {
        Self {
            inner: Arc::clone(&self.inner),
        }
    }
}

impl<S: fmt::Debug> fmt::Debug for CachedTokenStore<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CachedTokenStore")
            .field("store", &self.inner.store)
            .field("channel", &self.inner.channel)
            .field("options", &self.inner.options)
            .field("state", &self.inner.shared.state())
            .finish_non_exhaustive()
    }
}

impl<S: TokenStore> CachedTokenStore<S> {
    /// Wraps `store` and starts `channel`'s subscriber on the current tokio runtime. Until
    /// the subscriber reports [`Connected`](ChannelState::Connected), every `get` reads the
    /// store.
    ///
    /// # Panics
    /// Outside a tokio runtime (it spawns the subscriber task).
    pub fn new(store: S, channel: impl RevocationChannel, options: CacheOptions) -> Self {
        let shared = Arc::new(Shared::new(options));
        let channel: Arc<dyn RevocationChannel> = Arc::new(channel);
        let sink = RevocationSink {
            shared: Arc::clone(&shared),
        };
        let runner = Arc::clone(&channel);
        let task = tokio::spawn(async move { runner.run(sink).await });
        Self {
            inner: Arc::new(Inner {
                store,
                shared,
                channel,
                options,
                _subscriber: Subscriber(task),
            }),
        }
    }

    /// The wrapped store.
    pub fn store(&self) -> &S {
        &self.inner.store
    }

    /// The options.
    pub fn options(&self) -> CacheOptions {
        self.inner.options
    }

    /// Whether the cache is in use ([`Connected`](ChannelState::Connected)) or every `get`
    /// reads the store.
    pub fn channel_state(&self) -> ChannelState {
        self.inner.shared.state()
    }

    /// How many times the channel has connected (1 after the first subscription; each
    /// reconnection adds one).
    pub fn channel_connects(&self) -> u64 {
        self.inner.shared.connects.load(Ordering::Acquire)
    }

    /// Waits until the channel is [`Connected`](ChannelState::Connected), at most `timeout`.
    /// Returns whether it is.
    pub async fn wait_connected(&self, timeout: Duration) -> bool {
        let mut rx = self.inner.shared.state_tx.subscribe();
        let wait = async move { rx.wait_for(|s| *s == ChannelState::Connected).await.is_ok() };
        tokio::time::timeout(timeout, wait).await.unwrap_or(false)
    }

    /// How many sessions are cached now.
    pub fn len(&self) -> usize {
        self.inner.shared.len()
    }

    /// Whether no session is cached.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Drops every cached session (the next `get` of each reads the store).
    pub fn clear(&self) {
        let shared = &self.inner.shared;
        shared.generation.fetch_add(1, Ordering::AcqRel);
        for shard in &shared.shards {
            lock(shard).clear();
        }
    }

    /// Applies `revocation` here and publishes it to the other instances. A failed publish
    /// is logged, not returned: the store change is done, and the others notice it within
    /// the staleness bound.
    async fn revoked(&self, revocation: Revocation) {
        self.inner.shared.invalidate(&revocation);
        if let Err(error) = self.inner.channel.publish(&revocation).await {
            tracing::warn!(
                error = %error,
                "could not publish a revocation; other instances see it within the staleness bound"
            );
        }
    }

    async fn read(
        &self,
        id: &SessionId,
        now: OffsetDateTime,
    ) -> Result<Option<Session>, StoreError> {
        let shared = &self.inner.shared;
        let generation = shared.generation.load(Ordering::Acquire);
        let started = Instant::now();
        let found = self.inner.store.get_uncached(id, now).await?;
        match &found {
            Some(session) => shared.fill(session, started, generation),
            None => shared.forget(id),
        }
        Ok(found)
    }
}

#[async_trait]
impl<S: TokenStore> TokenStore for CachedTokenStore<S> {
    async fn create(&self, session: &Session) -> Result<(), StoreError> {
        self.inner.store.create(session).await
    }

    async fn get(
        &self,
        id: &SessionId,
        now: OffsetDateTime,
    ) -> Result<Option<Session>, StoreError> {
        if let Some(hit) = self.inner.shared.lookup(id, now) {
            return Ok(hit);
        }
        self.read(id, now).await
    }

    async fn get_uncached(
        &self,
        id: &SessionId,
        now: OffsetDateTime,
    ) -> Result<Option<Session>, StoreError> {
        self.read(id, now).await
    }

    /// A cache hit; `None` on a miss (then `get` reads the store and fills the cache).
    fn get_immediate(
        &self,
        id: &SessionId,
        now: OffsetDateTime,
    ) -> Option<Result<Option<Session>, StoreError>> {
        self.inner.shared.lookup(id, now).map(Ok)
    }

    async fn touch(
        &self,
        id: &SessionId,
        last_seen_at: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let shared = &self.inner.shared;
        let generation = shared.generation.load(Ordering::Acquire);
        let started = Instant::now();
        let found = self.inner.store.touch(id, last_seen_at).await?;
        match found {
            true => shared.touched(id, last_seen_at, started, generation),
            false => shared.forget(id),
        }
        Ok(found)
    }

    async fn touch_from(
        &self,
        id: &SessionId,
        last_seen_at: OffsetDateTime,
        ip: IpAddr,
    ) -> Result<bool, StoreError> {
        let shared = &self.inner.shared;
        let generation = shared.generation.load(Ordering::Acquire);
        let started = Instant::now();
        let found = self.inner.store.touch_from(id, last_seen_at, ip).await?;
        match found {
            true => {
                shared.touched(id, last_seen_at, started, generation);
                shared.moved(id, ip);
            }
            false => shared.forget(id),
        }
        Ok(found)
    }

    async fn delete(&self, id: &SessionId) -> Result<bool, StoreError> {
        let deleted = self.inner.store.delete(id).await?;
        match deleted {
            true => self.revoked(Revocation::Session(*id)).await,
            false => self.inner.shared.forget(id),
        }
        Ok(deleted)
    }

    async fn delete_for_user(&self, user: &UserId) -> Result<u64, StoreError> {
        let count = self.inner.store.delete_for_user(user).await?;
        let revocation = Revocation::User(user.clone());
        match count {
            0 => self.inner.shared.invalidate(&revocation),
            _ => self.revoked(revocation).await,
        }
        Ok(count)
    }

    async fn delete_for_user_except(
        &self,
        user: &UserId,
        keep: &SessionId,
    ) -> Result<u64, StoreError> {
        let count = self.inner.store.delete_for_user_except(user, keep).await?;
        let revocation = Revocation::UserExcept {
            user: user.clone(),
            keep: *keep,
        };
        match count {
            0 => self.inner.shared.invalidate(&revocation),
            _ => self.revoked(revocation).await,
        }
        Ok(count)
    }

    async fn list_for_user(
        &self,
        user: &UserId,
        now: OffsetDateTime,
    ) -> Result<Vec<Session>, StoreError> {
        self.inner.store.list_for_user(user, now).await
    }

    async fn purge_expired(&self, now: OffsetDateTime) -> Result<u64, StoreError> {
        // Expired sessions are never served from the cache either: nothing to announce.
        self.inner.store.purge_expired(now).await
    }
}

/// A [`RevocationChannel`] inside one process: every clone shares one bus, so several
/// [`CachedTokenStore`]s over one shared store (or one instance alone) stay consistent.
/// Always connected.
#[derive(Clone)]
pub struct LocalChannel {
    bus: broadcast::Sender<Revocation>,
}

impl fmt::Debug for LocalChannel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LocalChannel")
            .field("subscribers", &self.bus.receiver_count())
            .finish()
    }
}

impl LocalChannel {
    /// A new bus.
    pub fn new() -> Self {
        let (bus, _) = broadcast::channel(1024);
        Self { bus }
    }
}

impl Default for LocalChannel {
    fn default() -> Self {
        Self::new()
    }
}

#[async_trait]
impl RevocationChannel for LocalChannel {
    async fn publish(&self, revocation: &Revocation) -> Result<(), StoreError> {
        // No subscriber is not an error: nobody caches anything.
        let _ = self.bus.send(revocation.clone());
        Ok(())
    }

    async fn run(&self, sink: RevocationSink) {
        let mut rx = self.bus.subscribe();
        sink.connected();
        loop {
            match rx.recv().await {
                Ok(revocation) => sink.revoke(&revocation),
                // Messages were dropped: flush, as after a reconnection.
                Err(broadcast::error::RecvError::Lagged(_)) => {
                    sink.disconnected();
                    sink.connected();
                }
                Err(broadcast::error::RecvError::Closed) => {
                    sink.disconnected();
                    return;
                }
            }
        }
    }
}

#[cfg(any(feature = "redis", feature = "postgres"))]
/// Runs `once` (one subscription, until it ends) forever: after each end the sink is told the
/// channel is lost, the failure logged, and the next attempt waits, doubling the wait up to a
/// second, but starting over from the shortest wait after a subscription that had connected.
pub(crate) async fn resubscribe_forever<F, Fut, E>(
    sink: &RevocationSink,
    what: &str,
    channel: &str,
    mut once: F,
) where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<(), E>>,
    E: fmt::Display,
{
    let mut delay = MIN_RECONNECT_DELAY;
    loop {
        let connects = sink.shared.connects.load(Ordering::Acquire);
        let outcome = once().await;
        sink.disconnected();
        if let Err(error) = outcome {
            tracing::warn!(error = %error, channel = %channel, "{what} failed");
        }
        if sink.shared.connects.load(Ordering::Acquire) != connects {
            // It had connected: retry at once, then back off.
            delay = MIN_RECONNECT_DELAY;
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(MAX_RECONNECT_DELAY);
    }
}
