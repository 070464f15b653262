//! Redis (feature `redis`): sessions, login throttling and revocation notices on a standalone
//! Redis or a Redis Cluster, shared by every application instance that connects to it.
//!
//! Everything keycard keeps in Redis starts from one handle, [`Redis`]: it holds one
//! [`RedisConnection`] (a multiplexed connection to a standalone server, or a cluster
//! connection), and everything it hands out shares that connection:
//!
//! | method | gives | keys or channel |
//! |---|---|---|
//! | [`Redis::token_store`] | [`RedisTokenStore`] | `keycard:*` |
//! | [`Redis::throttle`] | [`RedisThrottle`] | `keycard:throttle:*` |
//! | [`Redis::one_time_store`] | [`RedisOneTimeStore`] | `keycard:ott:*` |
//! | [`Redis::revocation_channel`] | [`RedisRevocationChannel`] | pub/sub on `keycard:revocations` |
//!
//! There is no schema to create: keys appear on first use. Redis keeps no users: bring
//! your own [`UserStore`] (a SQL one, or yours) to
//! [`Redis::authenticator`], whose login throttle then counts in Redis, so a user throttled
//! through one instance is throttled on all of them.
//!
//! The Lua scripts that make each operation atomic are in `scripts/`, one file each. The
//! driver, the [`redis`](driver) crate, is re-exported as [`driver`], for your own commands
//! on [`Redis::connection`].
//!
//! ```no_run
//! # async fn run() -> Result<(), keycard::StoreError> {
//! use keycard::redis::Redis;
//! use keycard::{MemoryUserStore, UserRecord};
//! let redis = Redis::connect("redis://127.0.0.1:6379").await?;
//! let users = MemoryUserStore::<UserRecord>::new(); // or your own UserStore
//! let auth = redis.authenticator(users).build();
//! # let _ = auth;
//! # Ok(()) }
//! ```

mod connection;
mod one_time;
mod revocation;
mod throttle;
mod tokens;

pub use connection::RedisConnection;
pub use one_time::RedisOneTimeStore;
pub use revocation::RedisRevocationChannel;
pub use throttle::RedisThrottle;
pub use tokens::RedisTokenStore;

/// The Redis driver keycard is built on: the [`redis`](https://docs.rs/redis) crate,
/// re-exported for your own commands on [`Redis::connection`] with the same version.
pub use ::redis as driver;

use crate::throttle::ThrottleLimits;
use crate::{AuthenticatorBuilder, StoreError, UserStore};

/// One Redis server or cluster, connected once: the handle every Redis store is built from.
///
/// Clones share the connection. See the [module docs](self).
#[derive(Clone)]
pub struct Redis {
    conn: RedisConnection,
    /// Where the revocation channel's subscriber connects: the URL given to `connect`, or
    /// the first seed node of `connect_cluster` (Redis Cluster forwards every `PUBLISH` to
    /// every node).
    subscriber: Option<::redis::Client>,
}

impl std::fmt::Debug for Redis {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Redis")
            .field("cluster", &self.conn.is_cluster())
            .finish_non_exhaustive()
    }
}

impl Redis {
    /// Connects to `url` (`redis://[user:password@]host:port[/db]`, or `rediss://` with the
    /// redis crate's TLS feature) with 2 s connection and response timeouts, one quick
    /// reconnection retry per failing request, and automatic reconnection.
    ///
    /// # Errors
    /// [`StoreError::Backend`] if the URL is invalid or the server cannot be reached.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        let subscriber = ::redis::Client::open(url).map_err(StoreError::backend)?;
        Ok(Self {
            conn: connection::connect_manager(url).await?.into(),
            subscriber: Some(subscriber),
        })
    }

    /// Connects to a Redis Cluster through `urls`, its seed nodes (one reachable node is
    /// enough to learn the others), with 2 s connection and response timeouts and at most
    /// two retries per request.
    ///
    /// # Errors
    /// [`StoreError::Backend`] if no URL is given, a URL is invalid or no node can be
    /// reached.
    pub async fn connect_cluster<S: AsRef<str>>(urls: &[S]) -> Result<Self, StoreError> {
        let conn = connection::connect_cluster(urls).await?;
        let subscriber = match urls.first() {
            Some(url) => Some(::redis::Client::open(url.as_ref()).map_err(StoreError::backend)?),
            None => None,
        };
        Ok(Self {
            conn: conn.into(),
            subscriber,
        })
    }

    /// Uses your own connection: a [`ConnectionManager`](::redis::aio::ConnectionManager)
    /// (standalone Redis, for other timeouts or retry settings), a
    /// [`ClusterConnection`](::redis::cluster_async::ClusterConnection) (Redis Cluster) or a
    /// [`RedisConnection`]. Such a handle has no URL to subscribe with: give it one with
    /// [`with_subscriber`](Self::with_subscriber) before asking for a
    /// [`revocation_channel`](Self::revocation_channel).
    pub fn new(conn: impl Into<RedisConnection>) -> Self {
        Self {
            conn: conn.into(),
            subscriber: None,
        }
    }

    /// Subscribes the [`revocation_channel`](Self::revocation_channel) with connections from
    /// `client` (any node of a cluster will do).
    #[must_use]
    pub fn with_subscriber(mut self, client: ::redis::Client) -> Self {
        self.subscriber = Some(client);
        self
    }

    /// The connection (a cheap clone of it), for your own commands.
    pub fn connection(&self) -> RedisConnection {
        self.conn.clone()
    }

    /// Whether this handle is connected to a Redis Cluster.
    pub fn is_cluster(&self) -> bool {
        self.conn.is_cluster()
    }

    /// The token store (key prefix `keycard:`), on this handle's connection.
    pub fn token_store(&self) -> RedisTokenStore {
        RedisTokenStore::new(self.conn.clone())
    }

    /// The one-time token store (keys `keycard:ott:*`), on this handle's connection.
    pub fn one_time_store(&self) -> RedisOneTimeStore {
        RedisOneTimeStore::new(self.conn.clone())
    }

    /// The login throttle (key prefix `keycard:throttle:`) with `limits`, on this handle's
    /// connection: counts shared by every instance using the server.
    pub fn throttle(&self, limits: ThrottleLimits) -> RedisThrottle {
        RedisThrottle::new(self.conn.clone(), limits)
    }

    /// The revocation channel (pub/sub on `keycard:revocations`) for a
    /// [`CachedTokenStore`](crate::store::CachedTokenStore): it publishes on this handle's
    /// connection and subscribes on a connection of its own, to the URL given to
    /// [`connect`](Self::connect) or the first seed node of
    /// [`connect_cluster`](Self::connect_cluster).
    ///
    /// # Errors
    /// [`StoreError::Backend`] if the handle was built with [`new`](Self::new) and given no
    /// [`with_subscriber`](Self::with_subscriber).
    pub fn revocation_channel(&self) -> Result<RedisRevocationChannel, StoreError> {
        let client = self.subscriber.clone().ok_or_else(|| {
            StoreError::backend(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "a Redis handle built with Redis::new needs with_subscriber for a revocation channel",
            ))
        })?;
        Ok(RedisRevocationChannel::new(client, self.conn.clone()))
    }

    /// An authenticator builder over `users` (Redis keeps no users: your user store) and this
    /// server's token store, whose login throttle is this server's
    /// [`throttle`](Self::throttle) with the default limits instead of the in-process
    /// [`MemoryThrottle`](crate::MemoryThrottle) of
    /// [`Authenticator::builder`](crate::Authenticator::builder): every instance on the
    /// server counts attempts together. Call [`throttle`](AuthenticatorBuilder::throttle) on
    /// the builder to change the limits.
    pub fn authenticator<U: UserStore>(&self, users: U) -> AuthenticatorBuilder<U> {
        crate::Authenticator::builder(users, self.token_store())
            .throttle(self.throttle(ThrottleLimits::default()))
    }
}
