//! Revocations over PostgreSQL `LISTEN/NOTIFY`.

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::postgres::{PgListener, PgPool};

use crate::error::StoreError;
use crate::store::cache::{
    resubscribe_forever, Revocation, RevocationChannel, RevocationSink, Subscriber,
};

/// How long connecting and `LISTEN` may take before the attempt counts as failed.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// How often each instance notifies the channel to prove its listener alive.
const HEARTBEAT: Duration = Duration::from_millis(500);
/// How long the listener may hear nothing (not even a heartbeat) before it counts as lost.
const SILENCE: Duration = Duration::from_millis(1500);
/// The heartbeat's payload (not a revocation; ignored).
const HEARTBEAT_PAYLOAD: &str = "heartbeat";

/// A [`RevocationChannel`] over PostgreSQL `LISTEN/NOTIFY`: `pg_notify` on the pool, and a
/// listener that holds one connection of the pool and reconnects on any loss.
///
/// A silently lost connection (no error, no end of stream) is noticed by heartbeats: each
/// instance notifies the channel every 500 ms, and a listener that hears nothing for 1.5 s
/// counts as lost.
///
/// ```no_run
/// # async fn run() -> Result<(), keycard::StoreError> {
/// use keycard::postgres::Postgres;
/// use keycard::store::{CacheOptions, CachedTokenStore};
///
/// let db = Postgres::connect("postgres://localhost/app").await?;
/// let tokens = CachedTokenStore::new(db.token_store(), db.revocation_channel(), CacheOptions::default());
/// # let _ = tokens; Ok(()) }
/// ```
#[derive(Clone)]
pub struct PostgresRevocationChannel {
    pool: PgPool,
    channel: String,
}

impl fmt::Debug for PostgresRevocationChannel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresRevocationChannel")
            .field("channel", &self.channel)
            .finish_non_exhaustive()
    }
}

impl PostgresRevocationChannel {
    /// The default notification channel name.
    pub const DEFAULT_CHANNEL: &'static str = "keycard_revocations";

    /// Notifies and listens through `pool` (for instance
    /// [`Postgres::pool`](super::Postgres::pool)). The listener
    /// keeps one of the pool's connections.
    pub fn new(pool: PgPool) -> Self {
        Self {
            pool,
            channel: Self::DEFAULT_CHANNEL.to_owned(),
        }
    }

    /// Uses the channel `name` instead of `keycard_revocations` (one per application sharing
    /// a database; every instance of one application must use the same). PostgreSQL
    /// truncates channel names to 63 bytes.
    #[must_use]
    pub fn with_channel(mut self, name: impl Into<String>) -> Self {
        self.channel = name.into();
        self
    }

    /// The channel name.
    pub fn channel(&self) -> &str {
        &self.channel
    }

    /// Listens and delivers until the connection is lost.
    async fn listen_once(&self, sink: &RevocationSink) -> Result<(), sqlx::Error> {
        let mut listener = tokio::time::timeout(CONNECT_TIMEOUT, async {
            let mut listener = PgListener::connect_with(&self.pool).await?;
            listener.listen(&self.channel).await?;
            Ok::<_, sqlx::Error>(listener)
        })
        .await
        .map_err(|_| sqlx::Error::PoolTimedOut)??;
        let pool = self.pool.clone();
        let channel = self.channel.clone();
        let _heartbeat = Subscriber(tokio::spawn(async move {
            let mut beat = tokio::time::interval(HEARTBEAT);
            loop {
                beat.tick().await;
                let sent = sqlx::query("SELECT pg_notify($1, $2)")
                    .bind(&channel)
                    .bind(HEARTBEAT_PAYLOAD)
                    .execute(&pool);
                // A failure shows as silence on the listener.
                let _ = tokio::time::timeout(HEARTBEAT, sent).await;
            }
        }));
        sink.connected();
        loop {
            // On a timeout the listener is dropped, so cancelling `try_recv` is harmless.
            let received = tokio::time::timeout(SILENCE, listener.try_recv())
                .await
                .map_err(|_| sqlx::Error::Io(std::io::ErrorKind::TimedOut.into()))??;
            let Some(notification) = received else {
                return Ok(());
            };
            let payload = notification.payload();
            if payload == HEARTBEAT_PAYLOAD {
                continue;
            }
            match Revocation::decode(payload) {
                Ok(revocation) => sink.revoke(&revocation),
                Err(_) => sink.malformed(payload),
            }
        }
    }
}

#[async_trait]
impl RevocationChannel for PostgresRevocationChannel {
    async fn publish(&self, revocation: &Revocation) -> Result<(), StoreError> {
        let payload = revocation.encode()?;
        sqlx::query("SELECT pg_notify($1, $2)")
            .bind(&self.channel)
            .bind(payload)
            .execute(&self.pool)
            .await
            .map_err(StoreError::backend)?;
        Ok(())
    }

    async fn run(&self, sink: RevocationSink) {
        resubscribe_forever(&sink, "postgres revocation listener", &self.channel, || {
            self.listen_once(&sink)
        })
        .await;
    }
}
