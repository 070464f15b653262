//! Revocations over Redis pub/sub.

use std::fmt;
use std::time::Duration;

use ::redis::aio::ConnectionManager;

use ::redis::AsyncCommands;
use async_trait::async_trait;
use futures_util::StreamExt;

use super::RedisConnection;
use crate::error::StoreError;
use crate::store::cache::{resubscribe_forever, Revocation, RevocationChannel, RevocationSink};

/// How long connecting and subscribing may take before the attempt counts as failed.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// How often the subscriber pings the server to notice a silently lost connection.
const HEARTBEAT: Duration = Duration::from_millis(500);

/// A [`RevocationChannel`] over Redis pub/sub: `PUBLISH` on a shared connection, one
/// dedicated subscriber connection that reconnects on any loss.
///
/// Use the Redis server (or any server) every instance reaches, e.g. the one behind your
/// `RedisTokenStore`:
///
/// ```no_run
/// # async fn run() -> Result<(), keycard::StoreError> {
/// use keycard::redis::Redis;
/// use keycard::store::{CacheOptions, CachedTokenStore};
///
/// let redis = Redis::connect("redis://127.0.0.1:6379").await?;
/// let tokens = CachedTokenStore::new(
///     redis.token_store(),
///     redis.revocation_channel()?,
///     CacheOptions::default(),
/// );
/// # let _ = tokens; Ok(()) }
/// ```
#[derive(Clone)]
pub struct RedisRevocationChannel {
    client: ::redis::Client,
    publisher: RedisConnection,
    channel: String,
}

impl fmt::Debug for RedisRevocationChannel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisRevocationChannel")
            .field("channel", &self.channel)
            .finish_non_exhaustive()
    }
}

impl RedisRevocationChannel {
    /// The default pub/sub channel name.
    pub const DEFAULT_CHANNEL: &'static str = "keycard:revocations";

    /// Subscribes with connections from `client` and publishes on `publisher` (for instance
    /// [`RedisTokenStore::connection`](super::RedisTokenStore::connection)).
    pub fn new(client: ::redis::Client, publisher: impl Into<RedisConnection>) -> Self {
        Self {
            client,
            publisher: publisher.into(),
            channel: Self::DEFAULT_CHANNEL.to_owned(),
        }
    }

    /// Connects to `url` for both publishing and subscribing.
    ///
    /// # Errors
    /// [`StoreError::Backend`] if the URL is invalid or the server cannot be reached.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        let client = ::redis::Client::open(url).map_err(StoreError::backend)?;
        let publisher =
            tokio::time::timeout(CONNECT_TIMEOUT, ConnectionManager::new(client.clone()))
                .await
                .map_err(StoreError::backend)?
                .map_err(StoreError::backend)?;
        Ok(Self::new(client, publisher))
    }

    /// Uses the pub/sub channel `name` instead of `keycard:revocations` (one per application
    /// sharing a server; every instance of one application must use the same).
    #[must_use]
    pub fn with_channel(mut self, name: impl Into<String>) -> Self {
        self.channel = name.into();
        self
    }

    /// The pub/sub channel name.
    pub fn channel(&self) -> &str {
        &self.channel
    }

    /// Subscribes and delivers until the connection is lost or stops answering.
    async fn subscribe_once(&self, sink: &RevocationSink) -> Result<(), ::redis::RedisError> {
        let pubsub = tokio::time::timeout(CONNECT_TIMEOUT, async {
            let mut pubsub = self.client.get_async_pubsub().await?;
            pubsub.subscribe(&self.channel).await?;
            Ok::<_, ::redis::RedisError>(pubsub)
        })
        .await
        .map_err(|_| timed_out())??;
        let (mut control, mut messages) = pubsub.split();
        sink.connected();
        let mut heartbeat =
            tokio::time::interval_at(tokio::time::Instant::now() + HEARTBEAT, HEARTBEAT);
        heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                message = messages.next() => {
                    let Some(message) = message else { return Ok(()) };
                    match message.get_payload::<String>() {
                        Ok(payload) => match Revocation::decode(&payload) {
                            Ok(revocation) => sink.revoke(&revocation),
                            Err(_) => sink.malformed(&payload),
                        },
                        Err(_) => sink.malformed(""),
                    }
                }
                _ = heartbeat.tick() => {
                    tokio::time::timeout(HEARTBEAT, control.ping::<::redis::Value>())
                        .await
                        .map_err(|_| timed_out())??;
                }
            }
        }
    }
}

fn timed_out() -> ::redis::RedisError {
    ::redis::RedisError::from(std::io::Error::new(
        std::io::ErrorKind::TimedOut,
        "the revocation subscriber timed out",
    ))
}

#[async_trait]
impl RevocationChannel for RedisRevocationChannel {
    async fn publish(&self, revocation: &Revocation) -> Result<(), StoreError> {
        let payload = revocation.encode()?;
        let mut conn = self.publisher.clone();
        let _: i64 = conn
            .publish(&self.channel, payload)
            .await
            .map_err(StoreError::backend)?;
        Ok(())
    }

    async fn run(&self, sink: RevocationSink) {
        resubscribe_forever(&sink, "redis revocation subscriber", &self.channel, || {
            self.subscribe_once(&sink)
        })
        .await;
    }
}
