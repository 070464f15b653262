//! PostgreSQL (feature `postgres`): sessions, users, login throttling and revocation
//! notices in one database, shared by every application instance that connects to it.
//!
//! Everything keycard keeps in PostgreSQL starts from one handle, [`Postgres`]: it holds one
//! connection pool (sqlx's `PgPool`), and every store it hands out shares that pool:
//!
//! | method | gives | table or channel |
//! |---|---|---|
//! | [`Postgres::token_store`] | [`PostgresTokenStore`] | `keycard_sessions` |
//! | [`Postgres::user_store`] | [`PostgresUserStore`] | `keycard_users` |
//! | [`Postgres::throttle`] | [`PostgresThrottle`] | `keycard_throttle` |
//! | [`Postgres::one_time_store`] | [`PostgresOneTimeStore`] | `keycard_one_time_tokens` |
//! | [`Postgres::second_factor_store`] | [`PostgresSecondFactorStore`] | `keycard_totp`, `keycard_recovery_codes` |
//! | [`Postgres::passkey_store`] | [`PostgresPasskeyStore`] | `keycard_passkeys` |
//! | [`Postgres::revocation_channel`] | [`PostgresRevocationChannel`] | `LISTEN/NOTIFY` on `keycard_revocations` |
//! | [`Postgres::migrate`] | creates or upgrades all the tables | `keycard_migrations` |
//!
//! [`Postgres::authenticator`] builds an authenticator over them whose login throttle counts
//! in the database: a user throttled through one instance is throttled on all of them.
//!
//! The driver, [`sqlx`](driver), is re-exported as [`driver`]: build a `PgPool` of your own
//! for [`Postgres::new`], or query your own tables with the same version.
//!
//! ```no_run
//! # async fn run() -> Result<(), keycard::StoreError> {
//! use keycard::postgres::Postgres;
//! let db = Postgres::connect("postgres://app@db/app").await?;
//! db.migrate().await?;
//! let auth = db.authenticator().build();
//! # let _ = auth;
//! # Ok(()) }
//! ```
//!
//! One job per file: `tokens` (the token store), `users` (the user store), `one_time` (the
//! one-time token store), `second_factors` (the second factor store), `passkeys` (the passkey
//! store), `throttle` (the throttle) and `revocation` (the revocation channel); this module
//! holds the handle, the pool settings and the migration runner. The SQL shared with SQLite lives in `crate::sql`.

use std::time::Duration;

use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::Row as _;

mod one_time;
mod passkeys;
mod revocation;
mod second_factors;
mod throttle;
mod tokens;
mod users;

pub use one_time::PostgresOneTimeStore;
pub use passkeys::PostgresPasskeyStore;
pub use revocation::PostgresRevocationChannel;
pub use second_factors::PostgresSecondFactorStore;
pub use throttle::PostgresThrottle;
pub use tokens::PostgresTokenStore;
pub use users::PostgresUserStore;

/// The PostgreSQL driver keycard is built on: the [`sqlx`](https://docs.rs/sqlx) crate,
/// re-exported so you can build a `PgPool` for [`Postgres::new`] or query your own tables
/// with the same version.
pub use sqlx as driver;

pub use crate::sql::InvalidTableName;
use crate::sql::{fill_companions, Companions, Migration, TableName, MIGRATIONS_TABLE};
use crate::throttle::ThrottleLimits;
use crate::{AuthenticatorBuilder, StoreError};

/// One PostgreSQL database, connected once: the handle every PostgreSQL store is built from.
///
/// Clones share the pool. See the [module docs](self).
#[derive(Debug, Clone)]
pub struct Postgres {
    pool: PgPool,
}

impl Postgres {
    /// Connects a pool of up to 10 connections to `url`
    /// (`postgres://user:password@host:port/database`), tuned for lookups: no ping on
    /// checkout, statements prepared once per connection, a 2 s acquire timeout (see
    /// [`PostgresTokenStore`]). Does not create the tables: call [`migrate`](Self::migrate).
    ///
    /// # Errors
    /// [`StoreError::Backend`] if the URL is invalid or the server cannot be reached.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        Ok(Self::new(connect_pool(url, 10).await?))
    }

    /// Uses your own pool. Build it with `test_before_acquire(false)` unless you want a ping
    /// before every query.
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }

    /// The connection pool, for your own queries.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Creates or upgrades every table this backend keeps with its default name: sessions,
    /// users, one-time tokens, second factors (TOTP and recovery codes), passkeys and throttle
    /// (with its functions). Idempotent; each runs in one transaction under an advisory lock,
    /// so instances starting together do not race.
    ///
    /// # Errors
    /// [`StoreError::Backend`] if a statement fails.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        self.token_store().migrate().await?;
        self.user_store().migrate().await?;
        self.one_time_store().migrate().await?;
        self.second_factor_store().migrate().await?;
        self.passkey_store().migrate().await?;
        self.throttle(ThrottleLimits::default()).migrate().await
    }

    /// The token store (table `keycard_sessions`), on this handle's pool.
    pub fn token_store(&self) -> PostgresTokenStore {
        PostgresTokenStore::new(self.pool.clone())
    }

    /// The user store (table `keycard_users`), on this handle's pool.
    pub fn user_store(&self) -> PostgresUserStore {
        PostgresUserStore::new(self.pool.clone())
    }

    /// The one-time token store (table `keycard_one_time_tokens`), on this handle's pool.
    pub fn one_time_store(&self) -> PostgresOneTimeStore {
        PostgresOneTimeStore::new(self.pool.clone())
    }

    /// The second factor store (tables `keycard_totp` and `keycard_recovery_codes`), on this
    /// handle's pool.
    pub fn second_factor_store(&self) -> PostgresSecondFactorStore {
        PostgresSecondFactorStore::new(self.pool.clone())
    }

    /// The passkey store (table `keycard_passkeys`), on this handle's pool.
    pub fn passkey_store(&self) -> PostgresPasskeyStore {
        PostgresPasskeyStore::new(self.pool.clone())
    }

    /// The login throttle (table `keycard_throttle`) with `limits`, on this handle's pool:
    /// counts shared by every instance using the database.
    pub fn throttle(&self, limits: ThrottleLimits) -> PostgresThrottle {
        PostgresThrottle::new(self.pool.clone(), limits)
    }

    /// The revocation channel (`LISTEN/NOTIFY` on `keycard_revocations`) for a
    /// [`CachedTokenStore`](crate::store::CachedTokenStore), on this handle's pool.
    pub fn revocation_channel(&self) -> PostgresRevocationChannel {
        PostgresRevocationChannel::new(self.pool.clone())
    }

    /// An authenticator builder over this database's user and token stores, whose login
    /// throttle is this database's [`throttle`](Self::throttle) with the default limits
    /// instead of the in-process [`MemoryThrottle`](crate::MemoryThrottle) of
    /// [`Authenticator::builder`](crate::Authenticator::builder): every instance on the
    /// database counts attempts together. Call [`throttle`](AuthenticatorBuilder::throttle)
    /// on the builder to change the limits.
    pub fn authenticator(&self) -> AuthenticatorBuilder<PostgresUserStore> {
        crate::Authenticator::builder(self.user_store(), self.token_store())
            .throttle(self.throttle(ThrottleLimits::default()))
    }
}

/// Advisory lock key serializing `migrate` calls across instances ("keycard" in ASCII).
const MIGRATION_LOCK: i64 = 0x006b_6579_6361_7264;

/// The pool [`Postgres::connect`], [`PostgresTokenStore::connect`],
/// [`PostgresUserStore::connect`] and [`PostgresThrottle::connect`] build: at most
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

/// Maps a sqlx error: undecodable data is [`StoreError::Corrupt`], the rest is a backend
/// failure.
pub(crate) fn error(e: sqlx::Error) -> StoreError {
    match e {
        sqlx::Error::ColumnDecode { .. } | sqlx::Error::Decode(_) => StoreError::corrupt(e),
        e => StoreError::backend(e),
    }
}

pub(crate) async fn ping(pool: &PgPool) -> Result<(), StoreError> {
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
    migrate_with(pool, table, &[], migrations).await
}

/// As [`migrate`], for migrations that also create `companions` (recorded under `table`;
/// their schemas are created too).
pub(crate) async fn migrate_with(
    pool: &PgPool,
    table: &TableName,
    companions: Companions<'_>,
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
    let schemas = std::iter::once(table).chain(companions.iter().map(|(_, t)| *t));
    for schema in schemas.filter_map(|t| t.schema.as_ref()) {
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
        sqlx::raw_sql(&table.render(&fill_companions(m.sql, companions, TableName::quoted)))
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
