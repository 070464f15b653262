//! PostgreSQL token and user stores (feature `postgres`): for several application instances
//! sharing one database.

use std::time::Duration;

use async_trait::async_trait;
use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::Row as _;
use time::OffsetDateTime;

use crate::sql::{
    self, InvalidTableName, Migration, Placeholders, SessionQueries, TableName, UserQueries,
    MIGRATIONS_TABLE,
};
use crate::{
    normalize_email, Session, SessionId, StoreError, TokenStore, UserId, UserRecord, UserStore,
};

/// The schema changes of the sessions table, in order.
const SESSION_MIGRATIONS: &[Migration] = &[Migration {
    version: 1,
    sql: include_str!("../../migrations/postgres/sessions_0001.sql"),
}];

/// The schema changes of the users table, in order.
const USER_MIGRATIONS: &[Migration] = &[Migration {
    version: 1,
    sql: include_str!("../../migrations/postgres/users_0001.sql"),
}];

/// How many expired sessions one purge statement deletes. Each batch is its own short
/// transaction and skips rows another purger has locked, so purges from several instances
/// share the work instead of queueing.
const PURGE_BATCH: i64 = 1000;

/// Advisory lock key serializing `migrate` calls across instances ("keycard" in ASCII).
const MIGRATION_LOCK: i64 = 0x006b_6579_6361_7264;

/// The pool [`PostgresTokenStore::connect`], [`PostgresUserStore::connect`] and
/// [`PostgresThrottle::connect`](crate::throttle::PostgresThrottle::connect) build: at most
/// `max_connections` connections, no ping on checkout, 2 s acquire timeout.
///
/// # Errors
/// [`StoreError::Backend`] if the URL is invalid or the server cannot be reached.
pub(crate) async fn connect_pool(url: &str, max_connections: u32) -> Result<PgPool, StoreError> {
    PgPoolOptions::new()
        .max_connections(max_connections)
        .test_before_acquire(false)
        .acquire_timeout(Duration::from_secs(2))
        .connect(url)
        .await
        .map_err(StoreError::backend)
}

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
/// [`migrate`](Self::migrate); its schema ships in `migrations/postgres/sessions_0001.sql`:
///
/// | column | type | |
/// |---|---|---|
/// | `id` | `TEXT PRIMARY KEY` | the public session id (22 characters) |
/// | `user_id` | `TEXT` | indexed with `created_at` |
/// | `secret_hash` | `BYTEA` | SHA-256 of the token's secret (32 bytes) |
/// | `created_at`, `expires_at`, `last_seen_at` | `TIMESTAMPTZ` | `expires_at` indexed |
/// | `ip`, `user_agent` | `TEXT NULL` | client metadata |
///
/// Create is one `INSERT ... ON CONFLICT (id) DO NOTHING` (the primary key decides, so a
/// duplicate never overwrites); delete, delete-for-user and each purge batch are single
/// statements returning their row counts. Timestamps keep microseconds, as `TIMESTAMPTZ` does.
///
/// ```no_run
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// use keycard::store::PostgresTokenStore;
/// let tokens = PostgresTokenStore::connect("postgres://app@db/app")
///     .await?
///     .with_table("auth.sessions")?;
/// tokens.migrate().await?;
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

    /// Connects a pool of up to 10 connections to `url`
    /// (`postgres://user:password@host:port/database`), tuned for lookups (see the module
    /// docs). Does not create the table: call [`migrate`](Self::migrate).
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

    /// The connection pool (to share it with [`PostgresUserStore::new`] or your own queries).
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
);

fn into_session(row: SessionTuple) -> Result<Session, StoreError> {
    let (id, user_id, secret_hash, created_at, expires_at, last_seen_at, ip, user_agent) = row;
    Ok(Session {
        id: sql::session_id(&id)?,
        user_id: UserId::new(user_id),
        secret_hash: sql::secret_hash(&secret_hash)?,
        created_at,
        expires_at,
        last_seen_at,
        client: sql::client_info(ip, user_agent)?,
    })
}

#[async_trait]
impl TokenStore for PostgresTokenStore {
    async fn create(&self, session: &Session) -> Result<(), StoreError> {
        let done = sqlx::query(&self.queries.insert)
            .bind(session.id.to_string())
            .bind(session.user_id.as_str())
            .bind(session.secret_hash.as_bytes().as_slice())
            .bind(session.created_at)
            .bind(session.expires_at)
            .bind(session.last_seen_at)
            .bind(session.client.ip.map(|ip| ip.to_string()))
            .bind(session.client.user_agent.as_deref())
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

/// Users in a PostgreSQL table, for apps and examples that need no user code of their own.
///
/// The table (default `keycard_users`, optionally schema-qualified) is created by
/// [`migrate`](Self::migrate); its schema ships in `migrations/postgres/users_0001.sql`:
///
/// | column | type | |
/// |---|---|---|
/// | `id` | `TEXT PRIMARY KEY` | [`UserId`] |
/// | `email` | `TEXT UNIQUE` | normalized with [`normalize_email`] |
/// | `password_hash` | `TEXT` | PHC string (`$argon2id$...`) |
/// | `first_name`, `last_name` | `TEXT` | default `''` |
///
/// Rows you write yourself must store the email normalized, or logins will not find them.
///
/// ```no_run
/// # async fn run() -> Result<(), keycard::StoreError> {
/// use keycard::store::{PostgresTokenStore, PostgresUserStore};
/// use keycard::UserRecord;
/// let tokens = PostgresTokenStore::connect("postgres://app@db/app").await?;
/// let users = PostgresUserStore::new(tokens.pool().clone());
/// users.migrate().await?;
/// users.insert_if_absent(&UserRecord::new(1_i64, "ann@example.com", "$argon2id$...")).await?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct PostgresUserStore {
    pool: PgPool,
    queries: std::sync::Arc<UserQueries>,
}

impl PostgresUserStore {
    /// The default table name.
    pub const DEFAULT_TABLE: &'static str = "keycard_users";

    /// Connects a pool of up to 10 connections to `url`, as [`PostgresTokenStore::connect`]
    /// does. Does not create the table: call [`migrate`](Self::migrate).
    ///
    /// # Errors
    /// [`StoreError::Backend`] if the URL is invalid or the server cannot be reached.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        Ok(Self::new(connect_pool(url, 10).await?))
    }

    /// Uses an existing pool (for example [`PostgresTokenStore::pool`]).
    pub fn new(pool: PgPool) -> Self {
        Self {
            pool,
            queries: std::sync::Arc::new(UserQueries::new(
                TableName::builtin(Self::DEFAULT_TABLE),
                Placeholders::Dollar,
            )),
        }
    }

    /// Uses `table` (`name` or `schema.name`) instead of `keycard_users`.
    ///
    /// # Errors
    /// [`InvalidTableName`] unless each part is a plain identifier (`[A-Za-z_][A-Za-z0-9_]*`).
    pub fn with_table(mut self, table: &str) -> Result<Self, InvalidTableName> {
        self.queries = std::sync::Arc::new(UserQueries::new(
            TableName::parse(table, true)?,
            Placeholders::Dollar,
        ));
        Ok(self)
    }

    /// Creates or upgrades the users table. Idempotent; see
    /// [`PostgresTokenStore::migrate`].
    ///
    /// # Errors
    /// [`StoreError::Backend`] if a statement fails.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        migrate(&self.pool, &self.queries.table, USER_MIGRATIONS).await
    }

    /// Inserts `user` unless a user with the same id or (normalized) email exists, in which
    /// case nothing changes. Returns whether it inserted. Use it to seed a demo user on every
    /// start: concurrent calls from several instances are safe.
    ///
    /// # Errors
    /// [`StoreError::Backend`] if the statement fails.
    pub async fn insert_if_absent(&self, user: &UserRecord) -> Result<bool, StoreError> {
        let done = sqlx::query(&self.queries.insert_if_absent)
            .bind(user.id.as_str())
            .bind(normalize_email(&user.email))
            .bind(&user.password_hash)
            .bind(&user.first_name)
            .bind(&user.last_name)
            .execute(&self.pool)
            .await
            .map_err(error)?;
        Ok(done.rows_affected() == 1)
    }
}

type UserTuple = (String, String, String, String, String);

fn into_user((id, email, password_hash, first_name, last_name): UserTuple) -> UserRecord {
    UserRecord {
        id: UserId::new(id),
        email,
        password_hash,
        first_name,
        last_name,
    }
}

#[async_trait]
impl UserStore for PostgresUserStore {
    type User = UserRecord;

    async fn find_by_email(&self, email: &str) -> Result<Option<UserRecord>, StoreError> {
        // PostgreSQL text cannot hold NUL: no stored email has one, and sending it would be
        // a server error (a 503 for what is only an unknown email).
        if email.contains('\0') {
            return Ok(None);
        }
        Ok(sqlx::query_as::<_, UserTuple>(&self.queries.by_email)
            .bind(email)
            .fetch_optional(&self.pool)
            .await
            .map_err(error)?
            .map(into_user))
    }

    async fn find_by_id(&self, id: &UserId) -> Result<Option<UserRecord>, StoreError> {
        if id.as_str().contains('\0') {
            return Ok(None);
        }
        Ok(sqlx::query_as::<_, UserTuple>(&self.queries.by_id)
            .bind(id.as_str())
            .fetch_optional(&self.pool)
            .await
            .map_err(error)?
            .map(into_user))
    }

    async fn set_password_hash(&self, id: &UserId, phc: &str) -> Result<(), StoreError> {
        sqlx::query(&self.queries.set_password_hash)
            .bind(id.as_str())
            .bind(phc)
            .execute(&self.pool)
            .await
            .map_err(error)?;
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// Queries and helpers

/// Maps a sqlx error: undecodable data is [`StoreError::Corrupt`], the rest is a backend
/// failure.
pub(crate) fn error(e: sqlx::Error) -> StoreError {
    match e {
        sqlx::Error::ColumnDecode { .. } | sqlx::Error::Decode(_) => StoreError::corrupt(e),
        e => StoreError::backend(e),
    }
}

async fn ping(pool: &PgPool) -> Result<(), StoreError> {
    sqlx::query("SELECT 1")
        .fetch_one(pool)
        .await
        .map(drop)
        .map_err(error)
}

/// Applies the migrations of `table` not yet recorded, in one transaction, under an advisory
/// lock.
pub(crate) async fn migrate(
    pool: &PgPool,
    table: &TableName,
    migrations: &[Migration],
) -> Result<(), StoreError> {
    let mut tx = pool.begin().await.map_err(error)?;
    // `IF NOT EXISTS` on an existing object makes the server send a notice ("already exists,
    // skipping"), which sqlx logs at INFO on every start: keep this transaction to warnings.
    sqlx::raw_sql("SET LOCAL client_min_messages TO warning")
        .execute(&mut *tx)
        .await
        .map_err(error)?;
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(MIGRATION_LOCK)
        .execute(&mut *tx)
        .await
        .map_err(error)?;
    if let Some(schema) = &table.schema {
        sqlx::raw_sql(&format!("CREATE SCHEMA IF NOT EXISTS \"{schema}\""))
            .execute(&mut *tx)
            .await
            .map_err(error)?;
    }
    let tracking = table.sibling(MIGRATIONS_TABLE);
    sqlx::raw_sql(&format!(
        "CREATE TABLE IF NOT EXISTS {tracking} (\
             target TEXT NOT NULL, version BIGINT NOT NULL, \
             applied_at TIMESTAMPTZ NOT NULL DEFAULT now(), \
             PRIMARY KEY (target, version))"
    ))
    .execute(&mut *tx)
    .await
    .map_err(error)?;
    let applied: Vec<i64> =
        sqlx::query(&format!("SELECT version FROM {tracking} WHERE target = $1"))
            .bind(&table.name)
            .fetch_all(&mut *tx)
            .await
            .map_err(error)?
            .iter()
            .map(|row| row.try_get::<i64, _>(0))
            .collect::<Result<_, _>>()
            .map_err(error)?;
    for m in migrations.iter().filter(|m| !applied.contains(&m.version)) {
        sqlx::raw_sql(&table.render(m.sql))
            .execute(&mut *tx)
            .await
            .map_err(error)?;
        sqlx::query(&format!(
            "INSERT INTO {tracking} (target, version) VALUES ($1, $2)"
        ))
        .bind(&table.name)
        .bind(m.version)
        .execute(&mut *tx)
        .await
        .map_err(error)?;
    }
    tx.commit().await.map_err(error)
}
