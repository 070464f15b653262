//! The PostgreSQL token store.

use std::net::IpAddr;

use async_trait::async_trait;
use sqlx::postgres::PgPool;
use time::OffsetDateTime;

use super::{connect_pool, error, migrate, ping};
use crate::sql::{self, InvalidTableName, Migration, Placeholders, SessionQueries, TableName};
use crate::{Session, SessionId, StoreError, TokenStore, UserId};

/// The schema changes of the sessions table, in order.
const SESSION_MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        sql: include_str!("../../migrations/postgres/sessions_0001.sql"),
    },
    Migration {
        version: 2,
        sql: include_str!("../../migrations/postgres/sessions_0002.sql"),
    },
    Migration {
        version: 3,
        sql: include_str!("../../migrations/postgres/sessions_0003.sql"),
    },
];

/// How many expired sessions one purge statement deletes. Each batch is its own short
/// transaction and skips rows another purger has locked, so purges from several instances
/// share the work instead of queueing.
const PURGE_BATCH: i64 = 1000;

/// Sessions in a PostgreSQL table.
///
/// Built on [`sqlx`]'s `PgPool`. [`PostgresTokenStore::connect`] configures the pool for the
/// validate path: `test_before_acquire` is off (sqlx's default pings every connection on
/// checkout, which doubles the cost of a lookup; a broken connection surfaces as an error on
/// that one query and is then discarded by the pool), statements are prepared once per
/// connection and cached, and acquiring a connection gives up after 2 seconds, so a dead server
/// turns into [`StoreError::Backend`] quickly (build your own pool and use
/// [`PostgresTokenStore::new`] for other settings). A validate is one `SELECT` by primary key.
///
/// TLS: enable one of sqlx's TLS features in your own `Cargo.toml`, for example
/// `sqlx = { version = "0.8", features = ["tls-rustls"] }`, and add `sslmode=require` to the
/// URL; Cargo unifies the features.
///
/// The table (default `keycard_sessions`, optionally schema-qualified) is created by
/// [`migrate`](Self::migrate); its schema ships in `migrations/postgres/sessions_0001.sql` to
/// `sessions_0003.sql`:
///
/// | column | type | |
/// |---|---|---|
/// | `id` | `TEXT PRIMARY KEY` | the public session id (22 characters) |
/// | `user_id` | `TEXT` | indexed with `created_at` |
/// | `secret_hash` | `BYTEA` | SHA-256 of the token's secret (32 bytes) |
/// | `created_at`, `expires_at`, `last_seen_at` | `TIMESTAMPTZ` | `expires_at` indexed |
/// | `ip`, `user_agent` | `TEXT NULL` | client metadata |
/// | `amr` | `SMALLINT`, default 0 | how the session was authenticated ([`AuthMethods::bits`](crate::AuthMethods::bits)); 0 for sessions of version 1 |
/// | `token_name`, `token_scopes` | `TEXT NULL` | an [API token](crate::api_tokens)'s name and space-separated scopes; both `NULL` for an interactive session (and for sessions of versions 1 and 2) |
///
/// Create is one `INSERT ... ON CONFLICT (id) DO NOTHING` (the primary key decides, so a
/// duplicate never overwrites); delete, delete-for-user and each purge batch are single
/// statements returning their row counts. Timestamps keep microseconds, as `TIMESTAMPTZ` does.
///
/// ```no_run
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// use keycard::postgres::{Postgres, PostgresTokenStore};
/// let db = Postgres::connect("postgres://app@db/app").await?;
/// db.migrate().await?;
/// let tokens = db.token_store();
/// // Or, in a table of your choosing, on the same pool:
/// let custom = PostgresTokenStore::new(db.pool().clone()).with_table("auth.sessions")?;
/// custom.migrate().await?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct PostgresTokenStore {
    pool: PgPool,
    queries: std::sync::Arc<SessionQueries>,
}

impl PostgresTokenStore {
    /// The default table name.
    pub const DEFAULT_TABLE: &'static str = "keycard_sessions";

    /// Connects a pool of its own of up to 10 connections to `url`
    /// (`postgres://user:password@host:port/database`), tuned for lookups (see above). Does
    /// not create the table: call [`migrate`](Self::migrate).
    /// [`Postgres::token_store`](super::Postgres::token_store) shares one pool instead.
    ///
    /// # Errors
    /// [`StoreError::Backend`] if the URL is invalid or the server cannot be reached.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        Ok(Self::new(connect_pool(url, 10).await?))
    }

    /// Uses your own pool. Build it with `test_before_acquire(false)` unless you want a ping
    /// before every query.
    pub fn new(pool: PgPool) -> Self {
        Self {
            pool,
            queries: std::sync::Arc::new(SessionQueries::new(
                TableName::builtin(Self::DEFAULT_TABLE),
                Placeholders::Dollar,
            )),
        }
    }

    /// Uses `table` (`name` or `schema.name`) instead of `keycard_sessions`.
    ///
    /// # Errors
    /// [`InvalidTableName`] unless each part is a plain identifier (`[A-Za-z_][A-Za-z0-9_]*`).
    pub fn with_table(mut self, table: &str) -> Result<Self, InvalidTableName> {
        self.queries = std::sync::Arc::new(SessionQueries::new(
            TableName::parse(table, true)?,
            Placeholders::Dollar,
        ));
        Ok(self)
    }

    /// The connection pool (to share it with [`PostgresUserStore::new`](super::PostgresUserStore::new) or your own queries).
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Creates or upgrades the sessions table (and its schema, if qualified). Idempotent; runs
    /// in one transaction under an advisory lock, so instances starting together do not race.
    /// Applied versions are recorded in `keycard_migrations` in the same schema.
    ///
    /// # Errors
    /// [`StoreError::Backend`] if a statement fails.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        migrate(&self.pool, &self.queries.table, SESSION_MIGRATIONS).await
    }

    /// One trivial query (`SELECT 1`) through the pool: a health check, and the baseline that
    /// `get` is measured against.
    ///
    /// # Errors
    /// [`StoreError::Backend`] if the server cannot be reached.
    pub async fn ping(&self) -> Result<(), StoreError> {
        ping(&self.pool).await
    }
}

type SessionTuple = (
    String,
    String,
    Vec<u8>,
    OffsetDateTime,
    OffsetDateTime,
    OffsetDateTime,
    Option<String>,
    Option<String>,
    i16,
    Option<String>,
    Option<String>,
);

fn into_session(row: SessionTuple) -> Result<Session, StoreError> {
    let (
        id,
        user_id,
        secret_hash,
        created_at,
        expires_at,
        last_seen_at,
        ip,
        user_agent,
        amr,
        token_name,
        token_scopes,
    ) = row;
    Ok(Session {
        id: sql::session_id(&id)?,
        user_id: UserId::new(user_id),
        secret_hash: sql::secret_hash(&secret_hash)?,
        created_at,
        expires_at,
        last_seen_at,
        client: sql::client_info(ip, user_agent)?,
        amr: sql::auth_methods(amr)?,
        kind: sql::session_kind(token_name, token_scopes)?,
    })
}

#[async_trait]
impl TokenStore for PostgresTokenStore {
    async fn create(&self, session: &Session) -> Result<(), StoreError> {
        let (token_name, token_scopes) = sql::kind_columns(&session.kind);
        let done = sqlx::query(&self.queries.insert)
            .bind(session.id.to_string())
            .bind(session.user_id.as_str())
            .bind(session.secret_hash.as_bytes().as_slice())
            .bind(session.created_at)
            .bind(session.expires_at)
            .bind(session.last_seen_at)
            .bind(session.client.ip.map(|ip| ip.to_string()))
            .bind(session.client.user_agent.as_deref())
            .bind(i16::from(session.amr.bits()))
            .bind(token_name)
            .bind(token_scopes)
            .execute(&self.pool)
            .await
            .map_err(error)?;
        match done.rows_affected() {
            1 => Ok(()),
            _ => Err(StoreError::Duplicate),
        }
    }

    async fn get(
        &self,
        id: &SessionId,
        now: OffsetDateTime,
    ) -> Result<Option<Session>, StoreError> {
        sqlx::query_as::<_, SessionTuple>(&self.queries.get)
            .bind(id.to_string())
            .bind(now)
            .fetch_optional(&self.pool)
            .await
            .map_err(error)?
            .map(into_session)
            .transpose()
    }

    async fn touch(
        &self,
        id: &SessionId,
        last_seen_at: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(&self.queries.touch)
            .bind(id.to_string())
            .bind(last_seen_at)
            .execute(&self.pool)
            .await
            .map_err(error)?;
        Ok(done.rows_affected() == 1)
    }

    async fn touch_from(
        &self,
        id: &SessionId,
        last_seen_at: OffsetDateTime,
        ip: IpAddr,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(&self.queries.touch_from)
            .bind(id.to_string())
            .bind(last_seen_at)
            .bind(ip.to_string())
            .execute(&self.pool)
            .await
            .map_err(error)?;
        Ok(done.rows_affected() == 1)
    }

    async fn delete(&self, id: &SessionId) -> Result<bool, StoreError> {
        let done = sqlx::query(&self.queries.delete)
            .bind(id.to_string())
            .execute(&self.pool)
            .await
            .map_err(error)?;
        Ok(done.rows_affected() == 1)
    }

    async fn delete_for_user(&self, user: &UserId) -> Result<u64, StoreError> {
        let done = sqlx::query(&self.queries.delete_for_user)
            .bind(user.as_str())
            .execute(&self.pool)
            .await
            .map_err(error)?;
        Ok(done.rows_affected())
    }

    async fn delete_for_user_except(
        &self,
        user: &UserId,
        keep: &SessionId,
    ) -> Result<u64, StoreError> {
        let done = sqlx::query(&self.queries.delete_for_user_except)
            .bind(user.as_str())
            .bind(keep.to_string())
            .execute(&self.pool)
            .await
            .map_err(error)?;
        Ok(done.rows_affected())
    }

    async fn list_for_user(
        &self,
        user: &UserId,
        now: OffsetDateTime,
    ) -> Result<Vec<Session>, StoreError> {
        let rows = sqlx::query_as::<_, SessionTuple>(&self.queries.list_for_user)
            .bind(user.as_str())
            .bind(now)
            .fetch_all(&self.pool)
            .await
            .map_err(error)?;
        let mut sessions = rows
            .into_iter()
            .map(into_session)
            .collect::<Result<Vec<_>, _>>()?;
        sessions.sort_by_key(|s| (s.created_at, s.id));
        Ok(sessions)
    }

    async fn purge_expired(&self, now: OffsetDateTime) -> Result<u64, StoreError> {
        let mut total = 0;
        loop {
            let done = sqlx::query(&self.queries.purge_batch)
                .bind(now)
                .bind(PURGE_BATCH)
                .execute(&self.pool)
                .await
                .map_err(error)?;
            total += done.rows_affected();
            if done.rows_affected() < PURGE_BATCH as u64 {
                return Ok(total);
            }
        }
    }
}
