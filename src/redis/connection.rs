//! The connection of the Redis backends (feature `redis`): a standalone Redis through a
//! [`ConnectionManager`], or a Redis Cluster through a [`ClusterConnection`].

use std::time::Duration;

use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster::ClusterClient;
use redis::cluster_async::ClusterConnection;
use redis::{Cmd, Pipeline, RedisFuture, Value};

use crate::StoreError;

/// The connection of [`RedisTokenStore`](super::RedisTokenStore) and
/// [`RedisThrottle`](super::RedisThrottle): one multiplexed connection to a
/// standalone Redis, or a cluster connection (one multiplexed connection per node, requests
/// routed by key slot, `MOVED` / `ASK` redirections followed).
///
/// Cheap to clone (clones share the connection). It implements the redis crate's
/// [`ConnectionLike`], so every command of [`redis::AsyncCommands`] works on it:
///
/// ```no_run
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// use keycard::redis::driver::AsyncCommands;
/// use keycard::redis::RedisTokenStore;
/// let tokens = RedisTokenStore::connect_cluster(&["redis://127.0.0.1:7000"]).await?;
/// let mut conn = tokens.connection();
/// let _: () = conn.set("myapp:hello", "world").await?;
/// # Ok(()) }
/// ```
///
/// Opaque: which kind it is shows through [`is_cluster`](Self::is_cluster), and the redis
/// crate's connection types only go in, through `From<ConnectionManager>` and
/// `From<ClusterConnection>` (from the re-exported [`driver`](super::driver)), so a new
/// connection kind is not a breaking change:
///
/// ```no_run
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// use keycard::redis::driver::{aio::ConnectionManager, Client};
/// use keycard::redis::RedisConnection;
/// let manager = ConnectionManager::new(Client::open("redis://127.0.0.1:6379")?).await?;
/// let conn = RedisConnection::from(manager);
/// assert!(!conn.is_cluster());
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct RedisConnection {
    inner: Inner,
}

/// What a [`RedisConnection`] holds.
#[derive(Clone)]
enum Inner {
    /// A standalone Redis (or the primary Sentinel points to).
    Standalone(ConnectionManager),
    /// A Redis Cluster.
    Cluster(ClusterConnection),
}

impl RedisConnection {
    /// Whether this is a cluster connection.
    pub fn is_cluster(&self) -> bool {
        matches!(self.inner, Inner::Cluster(_))
    }
}

impl std::fmt::Debug for RedisConnection {
    /// The kind only: `RedisConnection::Standalone` or `RedisConnection::Cluster`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self.inner {
            Inner::Standalone(_) => "RedisConnection::Standalone",
            Inner::Cluster(_) => "RedisConnection::Cluster",
        })
    }
}

impl From<ConnectionManager> for RedisConnection {
    /// A standalone connection.
    fn from(conn: ConnectionManager) -> Self {
        Self {
            inner: Inner::Standalone(conn),
        }
    }
}

impl From<ClusterConnection> for RedisConnection {
    /// A cluster connection.
    fn from(conn: ClusterConnection) -> Self {
        Self {
            inner: Inner::Cluster(conn),
        }
    }
}

impl ConnectionLike for RedisConnection {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match &mut self.inner {
            Inner::Standalone(conn) => conn.req_packed_command(cmd),
            Inner::Cluster(conn) => conn.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        cmd: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match &mut self.inner {
            Inner::Standalone(conn) => conn.req_packed_commands(cmd, offset, count),
            Inner::Cluster(conn) => conn.req_packed_commands(cmd, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match &self.inner {
            Inner::Standalone(conn) => conn.get_db(),
            Inner::Cluster(conn) => conn.get_db(),
        }
    }
}

/// The connection [`RedisTokenStore::connect`](super::RedisTokenStore::connect) and
/// [`RedisThrottle::connect`](super::RedisThrottle::connect) build: 2 s connection
/// and response timeouts, one quick reconnection retry per failing request, and automatic
/// reconnection.
///
/// # Errors
/// [`StoreError::Backend`] if the URL is invalid or the server cannot be reached.
pub(crate) async fn connect_manager(url: &str) -> Result<ConnectionManager, StoreError> {
    let client = redis::Client::open(url).map_err(StoreError::backend)?;
    let config = ConnectionManagerConfig::new()
        .set_connection_timeout(Duration::from_secs(2))
        .set_response_timeout(Duration::from_secs(2))
        .set_number_of_retries(1)
        .set_max_delay(200);
    ConnectionManager::new_with_config(client, config)
        .await
        .map_err(StoreError::backend)
}

/// The cluster connection `connect_cluster` builds: `urls` are seed nodes (any reachable one
/// is enough to learn the slot map), 2 s connection and response timeouts, and at most two
/// retries per request (redirections and reconnections), 50 to 500 ms apart.
///
/// # Errors
/// [`StoreError::Backend`] if a URL is invalid, no URL is given, or no node can be reached.
pub(crate) async fn connect_cluster<S: AsRef<str>>(
    urls: &[S],
) -> Result<ClusterConnection, StoreError> {
    if urls.is_empty() {
        return Err(StoreError::backend(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "connect_cluster needs at least one node URL",
        )));
    }
    let client = ClusterClient::builder(urls.iter().map(|u| u.as_ref().to_owned()))
        .connection_timeout(Duration::from_secs(2))
        .response_timeout(Duration::from_secs(2))
        .retries(2)
        .min_retry_wait(50)
        .max_retry_wait(500)
        .build()
        .map_err(StoreError::backend)?;
    client
        .get_async_connection()
        .await
        .map_err(StoreError::backend)
}
