//! MySQL and MariaDB (feature `mysql`): token store, user store and login throttle in one
//! database, shared by every application instance using it.
//!
//! One handle, [`Mysql`], owns the connection pool (sqlx's MySQL driver, re-exported as
//! [`driver`]) and hands out the stores, each over its own tables:
//!
//! | store | type | default table | schema |
//! |---|---|---|---|
//! | sessions | [`MysqlTokenStore`] | `keycard_sessions` | `migrations/mysql/sessions_0001.sql`, `sessions_0002.sql` |
//! | users | [`MysqlUserStore`] | `keycard_users` | `migrations/mysql/users_0001.sql` |
//! | throttle | [`MysqlThrottle`] | `keycard_throttle` | `migrations/mysql/throttle_0001.sql` |
//! | one-time tokens | [`MysqlOneTimeStore`] | `keycard_one_time_tokens` | `migrations/mysql/one_time_0001.sql` |
//! | second factors | [`MysqlSecondFactorStore`] | `keycard_totp`, `keycard_recovery_codes` | `migrations/mysql/second_factors_0001.sql` |
//! | passkeys | [`MysqlPasskeyStore`] | `keycard_passkeys` | `migrations/mysql/passkeys_0001.sql` |
//!
//! [`Mysql::migrate`] creates or upgrades all of them (versions recorded in
//! `keycard_migrations`); each store's own `migrate` does one, for tables renamed with
//! `with_table`. Times are stored as `BIGINT` Unix microseconds, so the server's time zone
//! never matters; ids and emails are binary strings, compared byte for byte whatever the
//! server's default collation. Tested against MariaDB; MySQL 8 speaks the same SQL.
//!
//! [`Mysql::connect`] tunes the pool for the validate path: up to 10 connections, no ping on
//! checkout (sqlx's default pings every connection before use, doubling the cost of a
//! lookup), statements prepared once per connection, and a 2 s acquire timeout, so a dead
//! server turns into [`StoreError::Backend`] quickly. A validate is one `SELECT` by primary
//! key. For other settings (TLS: enable one of sqlx's TLS features in your own
//! `Cargo.toml` and add `ssl-mode=REQUIRED` to the URL), build your own pool and use
//! [`Mysql::new`].
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use keycard::mysql::Mysql;
//! let mysql = Mysql::connect("mysql://app:secret@db:3306/app").await?;
//! mysql.migrate().await?;
//! // The shared throttle (default limits) is already set; add a hasher, a policy...
//! let auth = mysql.authenticator().build();
//! # let _ = auth;
//! # Ok(()) }
//! ```

use std::time::Duration;

use sqlx::mysql::{MySql, MySqlConnection, MySqlPool, MySqlPoolOptions};
use sqlx::pool::PoolConnection;

use crate::throttle::ThrottleLimits;
use crate::{Authenticator, AuthenticatorBuilder, StoreError};

mod migrate;
mod one_time;
mod passkeys;
mod second_factors;
mod throttle;
mod tokens;
mod users;

pub use crate::sql::InvalidTableName;
pub use one_time::MysqlOneTimeStore;
pub use passkeys::MysqlPasskeyStore;
pub use second_factors::MysqlSecondFactorStore;
pub use throttle::MysqlThrottle;
pub use tokens::MysqlTokenStore;
pub use users::MysqlUserStore;

/// The MySQL driver keycard is built on ([`sqlx`] with its `mysql` feature): build a
/// `MySqlPool` for [`Mysql::new`], or run your own queries on [`Mysql::pool`] with the same
/// version.
pub use sqlx as driver;

/// A MySQL or MariaDB database holding keycard's tables: the connection pool, and the
/// stores over it. Cheap to clone (the pool is shared).
#[derive(Debug, Clone)]
pub struct Mysql {
    pool: MySqlPool,
}

impl Mysql {
    /// Connects a pool of up to 10 connections to `url`
    /// (`mysql://user:password@host:port/database`), tuned for lookups (see the
    /// [module docs](self)). Creates no table: call [`migrate`](Self::migrate).
    ///
    /// # Errors
    /// [`StoreError::Backend`] if the URL is invalid or the server cannot be reached.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        let pool = MySqlPoolOptions::new()
            .max_connections(10)
            .test_before_acquire(false)
            .acquire_timeout(Duration::from_secs(2))
            .connect(url)
            .await
            .map_err(StoreError::backend)?;
        Ok(Self::new(pool))
    }

    /// Uses your own pool. Build it with `test_before_acquire(false)` unless you want a ping
    /// before every query.
    pub fn new(pool: MySqlPool) -> Self {
        Self { pool }
    }

    /// The connection pool.
    pub fn pool(&self) -> &MySqlPool {
        &self.pool
    }

    /// Creates or upgrades the default tables (sessions, users, one-time tokens, second
    /// factors, passkeys, throttle). Idempotent, and safe to run from several instances starting
    /// together: each table's migrations run under the server-wide named lock
    /// `keycard_migrations` (`GET_LOCK`), and the versions applied are recorded in
    /// `keycard_migrations`.
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

    /// The token store over `keycard_sessions` (rename it with
    /// [`MysqlTokenStore::with_table`]).
    pub fn token_store(&self) -> MysqlTokenStore {
        MysqlTokenStore::new(self.pool.clone())
    }

    /// The user store over `keycard_users` (rename it with [`MysqlUserStore::with_table`]).
    pub fn user_store(&self) -> MysqlUserStore {
        MysqlUserStore::new(self.pool.clone())
    }

    /// The one-time token store over `keycard_one_time_tokens` (rename it with
    /// [`MysqlOneTimeStore::with_table`]).
    pub fn one_time_store(&self) -> MysqlOneTimeStore {
        MysqlOneTimeStore::new(self.pool.clone())
    }

    /// The second factor store over `keycard_totp` and `keycard_recovery_codes` (rename them
    /// with [`MysqlSecondFactorStore::with_tables`]).
    pub fn second_factor_store(&self) -> MysqlSecondFactorStore {
        MysqlSecondFactorStore::new(self.pool.clone())
    }

    /// The passkey store over `keycard_passkeys` (rename it with
    /// [`MysqlPasskeyStore::with_table`]).
    pub fn passkey_store(&self) -> MysqlPasskeyStore {
        MysqlPasskeyStore::new(self.pool.clone())
    }

    /// The throttle over `keycard_throttle` with `limits` (rename it with
    /// [`MysqlThrottle::with_table`]).
    pub fn throttle(&self, limits: ThrottleLimits) -> MysqlThrottle {
        MysqlThrottle::new(self.pool.clone(), limits)
    }

    /// An [`Authenticator`] builder over the user and token stores, with the shared throttle
    /// ([`ThrottleLimits::default`]) in place of the in-process one, so every instance
    /// counts the same attempts.
    pub fn authenticator(&self) -> AuthenticatorBuilder<MysqlUserStore> {
        Authenticator::builder(self.user_store(), self.token_store())
            .throttle(self.throttle(ThrottleLimits::default()))
    }

    /// One trivial query (`SELECT 1`): a health check, and the baseline a validate is
    /// measured against.
    ///
    /// # Errors
    /// [`StoreError::Backend`] if the server cannot be reached.
    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map(drop)
            .map_err(error)
    }
}

/// Maps a sqlx error: undecodable data is [`StoreError::Corrupt`], the rest is a backend
/// failure.
fn error(e: sqlx::Error) -> StoreError {
    match e {
        sqlx::Error::ColumnDecode { .. } | sqlx::Error::Decode(_) => StoreError::corrupt(e),
        e => StoreError::backend(e),
    }
}

/// Whether `e` is a duplicate key (ER_DUP_ENTRY).
fn is_duplicate(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(db) if db.is_unique_violation())
}

/// Whether `e` is InnoDB picking this transaction as a deadlock victim (SQLSTATE 40001).
fn is_deadlock(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(db) if db.code().as_deref() == Some("40001"))
}

/// How many times a statement that InnoDB picked as a deadlock victim is retried.
const DEADLOCK_RETRIES: usize = 5;

/// Text stored in a binary column.
fn text(bytes: Vec<u8>) -> Result<String, StoreError> {
    String::from_utf8(bytes).map_err(StoreError::corrupt)
}

/// A pooled connection holding a server-wide named lock (`GET_LOCK`): work that must not run
/// twice at once for one key, from any instance, runs on [`conn`](Self::conn) between
/// [`acquire`](Self::acquire) and [`release`](Self::release). Dropped while it may still hold
/// the lock (a failed release, a cancelled call), the connection is closed rather than
/// returned to the pool, which releases the lock.
struct NamedLock {
    conn: PoolConnection<MySql>,
    name: String,
    held: bool,
}

impl NamedLock {
    /// Takes the lock `name` (at most 64 characters) on a connection of `pool`, waiting at
    /// most `wait_secs` seconds; `what` names the work in the error of a timeout.
    async fn acquire(
        pool: &MySqlPool,
        name: String,
        wait_secs: i64,
        what: &str,
    ) -> Result<Self, sqlx::Error> {
        let mut lock = Self {
            conn: pool.acquire().await?,
            name,
            // Until GET_LOCK answers, the server may have granted it.
            held: true,
        };
        let locked: Option<i64> = sqlx::query_scalar("SELECT GET_LOCK(?, ?)")
            .bind(&lock.name)
            .bind(wait_secs)
            .fetch_one(&mut *lock.conn)
            .await?;
        if locked != Some(1) {
            lock.held = false;
            return Err(sqlx::Error::Protocol(format!(
                "timed out after {wait_secs} s waiting for a concurrent {what} (lock {})",
                lock.name
            )));
        }
        Ok(lock)
    }

    /// The connection holding the lock.
    fn conn(&mut self) -> &mut MySqlConnection {
        &mut self.conn
    }

    /// Releases the lock; the connection goes back to the pool.
    async fn release(mut self) -> Result<(), sqlx::Error> {
        sqlx::query("SELECT RELEASE_LOCK(?)")
            .bind(&self.name)
            .execute(&mut *self.conn)
            .await?;
        self.held = false;
        Ok(())
    }
}

impl Drop for NamedLock {
    fn drop(&mut self) {
        if self.held {
            self.conn.close_on_drop();
        }
    }
}
