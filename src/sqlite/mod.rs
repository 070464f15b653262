//! SQLite (feature `sqlite`): sessions, users and login throttling in one file, shared by
//! the processes on one machine that open it.
//!
//! Everything keycard keeps in SQLite starts from one handle, [`Sqlite`]: it opens the file
//! once, with one connection pool ([`SqliteOptions`]), and every store it hands out shares
//! that pool:
//!
//! | method | gives | table |
//! |---|---|---|
//! | [`Sqlite::token_store`] | [`SqliteTokenStore`] | `keycard_sessions` |
//! | [`Sqlite::user_store`] | [`SqliteUserStore`] | `keycard_users` |
//! | [`Sqlite::throttle`] | [`SqliteThrottle`] | `keycard_throttle` |
//! | [`Sqlite::one_time_store`] | [`SqliteOneTimeStore`] | `keycard_one_time_tokens` |
//! | [`Sqlite::second_factor_store`] | [`SqliteSecondFactorStore`] | `keycard_totp`, `keycard_recovery_codes` |
//! | [`Sqlite::passkey_store`] | [`SqlitePasskeyStore`] | `keycard_passkeys` |
//! | [`Sqlite::migrate`] | creates or upgrades all of them | `keycard_migrations` |
//!
//! [`Sqlite::authenticator`] builds an authenticator over the three: its login throttle
//! counts in the file, so every process using the file sees the same counts.
//!
//! The driver, [`rusqlite`](driver) with the bundled SQLite, is re-exported as [`driver`].
//!
//! ```no_run
//! # async fn run() -> Result<(), keycard::StoreError> {
//! use keycard::sqlite::Sqlite;
//! let db = Sqlite::open("keycard.db").await?;
//! db.migrate().await?;
//! let auth = db.authenticator().build();
//! # let _ = auth;
//! # Ok(()) }
//! ```
//!
//! One job per file: `pool` (the connection pool and its settings), `migrate` (the migration
//! runner), `tokens` (the token store), `users` (the user store), `one_time` (the one-time
//! token store), `second_factors` (the second factor store), `passkeys` (the passkey store) and
//! `throttle` (the throttle). The SQL shared with PostgreSQL lives in `crate::sql`.

use std::path::Path;
use std::sync::Arc;

mod migrate;
mod one_time;
mod passkeys;
mod pool;
mod second_factors;
mod throttle;
mod tokens;
mod users;

pub(crate) use migrate::{migrate, migrate_with};
pub use one_time::SqliteOneTimeStore;
pub use passkeys::SqlitePasskeyStore;
pub use pool::SqliteOptions;
pub(crate) use pool::{backend, Pool};
pub use second_factors::SqliteSecondFactorStore;
pub use throttle::SqliteThrottle;
pub use tokens::SqliteTokenStore;
pub use users::SqliteUserStore;

/// The SQLite driver keycard is built on: the [`rusqlite`](https://docs.rs/rusqlite) crate,
/// re-exported so you can use the same version for your own queries.
pub use rusqlite as driver;

pub use crate::sql::InvalidTableName;
use crate::throttle::ThrottleLimits;
use crate::{AuthenticatorBuilder, StoreError};

/// One SQLite file, opened once: the handle every SQLite store is built from.
///
/// Clones share the pool. See the [module docs](self).
#[derive(Debug, Clone)]
pub struct Sqlite {
    pool: Arc<Pool>,
}

impl Sqlite {
    /// Opens (creating if needed) the database file at `path` with default
    /// [`SqliteOptions`]. Does not create the tables: call [`migrate`](Self::migrate).
    ///
    /// # Errors
    /// [`StoreError::Backend`] if the file cannot be opened or configured, or if `path` is
    /// empty or `:memory:` (every pooled connection would have a database of its own).
    pub async fn open(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        Self::open_with(path, SqliteOptions::default()).await
    }

    /// Opens (creating if needed) the database file at `path` with `options`.
    ///
    /// # Errors
    /// As [`open`](Self::open).
    pub async fn open_with(
        path: impl AsRef<Path>,
        options: SqliteOptions,
    ) -> Result<Self, StoreError> {
        Ok(Self {
            pool: Pool::open(path.as_ref(), options).await?,
        })
    }

    /// Creates or upgrades every table this backend keeps with its default name: sessions,
    /// users, one-time tokens, second factors (TOTP and recovery codes), passkeys and throttle.
    /// Idempotent and safe to run from several processes at once.
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
    pub fn token_store(&self) -> SqliteTokenStore {
        SqliteTokenStore::from_pool(Arc::clone(&self.pool))
    }

    /// The user store (table `keycard_users`), on this handle's pool.
    pub fn user_store(&self) -> SqliteUserStore {
        SqliteUserStore::from_pool(Arc::clone(&self.pool))
    }

    /// The one-time token store (table `keycard_one_time_tokens`), on this handle's pool.
    pub fn one_time_store(&self) -> SqliteOneTimeStore {
        SqliteOneTimeStore::from_pool(Arc::clone(&self.pool))
    }

    /// The second factor store (tables `keycard_totp` and `keycard_recovery_codes`), on this
    /// handle's pool.
    pub fn second_factor_store(&self) -> SqliteSecondFactorStore {
        SqliteSecondFactorStore::from_pool(Arc::clone(&self.pool))
    }

    /// The passkey store (table `keycard_passkeys`), on this handle's pool.
    pub fn passkey_store(&self) -> SqlitePasskeyStore {
        SqlitePasskeyStore::from_pool(Arc::clone(&self.pool))
    }

    /// The login throttle (table `keycard_throttle`) with `limits`, on this handle's pool:
    /// counts shared by every process using the file.
    pub fn throttle(&self, limits: ThrottleLimits) -> SqliteThrottle {
        SqliteThrottle::from_pool(Arc::clone(&self.pool), limits)
    }

    /// An authenticator builder over this file's user and token stores, whose login throttle
    /// is this file's [`throttle`](Self::throttle) with the default limits instead of the
    /// in-process [`MemoryThrottle`](crate::MemoryThrottle) of
    /// [`Authenticator::builder`](crate::Authenticator::builder): every process using the
    /// file counts attempts together. Call
    /// [`throttle`](AuthenticatorBuilder::throttle) on the builder to change the limits.
    pub fn authenticator(&self) -> AuthenticatorBuilder<SqliteUserStore> {
        crate::Authenticator::builder(self.user_store(), self.token_store())
            .throttle(self.throttle(ThrottleLimits::default()))
    }
}

#[cfg(test)]
mod tests;
