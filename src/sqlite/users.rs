//! The SQLite user store.

use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;
use rusqlite::{params, OptionalExtension, Row};
use time::OffsetDateTime;

use super::{backend, migrate, Pool, SqliteOptions};
use crate::sql::{
    rekey_collision, rekeys, InvalidTableName, Migration, Placeholders, TableName, UserQueries,
};
use crate::time_codec::{from_micros, to_micros};
use crate::{
    normalize_email, AccountStore, EmailChange, StoreError, UserId, UserRecord, UserStore,
};

/// The schema changes of the users table, in order.
const USER_MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        sql: include_str!("../../migrations/sqlite/users_0001.sql"),
    },
    Migration {
        version: 2,
        sql: include_str!("../../migrations/sqlite/users_0002.sql"),
    },
];

/// Users in a SQLite file, for apps and examples that need no user code of their own.
///
/// The table (default `keycard_users`) is created and upgraded by [`migrate`](Self::migrate);
/// its schema ships in `migrations/sqlite/users_0001.sql` and `users_0002.sql`:
///
/// | column | type | |
/// |---|---|---|
/// | `id` | `TEXT PRIMARY KEY` | [`UserId`] |
/// | `email` | `TEXT UNIQUE` | the address as typed (trimmed); mail goes here (its `UNIQUE` is version 1's, kept: `email_key` decides) |
/// | `email_key` | `TEXT`, unique index | [`normalize_email`] of `email`; lookups match it |
/// | `password_hash` | `TEXT` | PHC string (`$argon2id$...`) |
/// | `first_name`, `last_name` | `TEXT` | default `''` |
/// | `email_verified_at` | `INTEGER` (Unix µs), nullable | when the address was verified |
///
/// Rows you write yourself must set `email_key` to [`normalize_email`] of the address, or
/// logins will not find them. It is also an [`AccountStore`].
/// Lookups by id and email take the same path as session lookups (on the calling thread, a
/// few microseconds), so [`Authenticator::validate`](crate::Authenticator::validate) over two
/// SQLite stores costs two primary-key reads and no thread hop.
///
/// ```no_run
/// # async fn run() -> Result<(), keycard::StoreError> {
/// use keycard::sqlite::Sqlite;
/// use keycard::UserRecord;
/// let db = Sqlite::open("keycard.db").await?;
/// db.migrate().await?;
/// let users = db.user_store();
/// // Safe on every start: does nothing if the id or email exists.
/// users.insert_if_absent(&UserRecord::new(1_i64, "ann@example.com", "$argon2id$...")).await?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct SqliteUserStore {
    pub(super) pool: Arc<Pool>,
    queries: Arc<UserQueries>,
}

impl SqliteUserStore {
    /// The default table name.
    pub const DEFAULT_TABLE: &'static str = "keycard_users";

    /// Opens (creating if needed) the database file at `path` with default
    /// [`SqliteOptions`], on a pool of its own. Does not create the table: call
    /// [`migrate`](Self::migrate). [`Sqlite::user_store`](super::Sqlite::user_store) shares
    /// the handle's pool.
    ///
    /// # Errors
    /// [`StoreError::Backend`] if the file cannot be opened or configured.
    pub async fn open(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        Self::open_with(path, SqliteOptions::default()).await
    }

    /// Opens (creating if needed) the database file at `path` with `options`.
    ///
    /// # Errors
    /// [`StoreError::Backend`] if the file cannot be opened or configured, or if `path` is
    /// empty or `:memory:` (every pooled connection would have a database of its own).
    pub async fn open_with(
        path: impl AsRef<Path>,
        options: SqliteOptions,
    ) -> Result<Self, StoreError> {
        Ok(Self::from_pool(Pool::open(path.as_ref(), options).await?))
    }

    /// A store on an open pool (the [`Sqlite`](super::Sqlite) handle's), default table.
    pub(crate) fn from_pool(pool: Arc<Pool>) -> Self {
        let table = TableName::builtin(Self::DEFAULT_TABLE);
        Self {
            pool,
            queries: Arc::new(UserQueries::new(table, Placeholders::Question)),
        }
    }

    /// Uses `table` instead of `keycard_users`.
    ///
    /// # Errors
    /// [`InvalidTableName`] unless `table` is a plain identifier (`[A-Za-z_][A-Za-z0-9_]*`).
    pub fn with_table(mut self, table: &str) -> Result<Self, InvalidTableName> {
        self.queries = Arc::new(UserQueries::new(
            TableName::parse(table, false)?,
            Placeholders::Question,
        ));
        Ok(self)
    }

    /// Creates or upgrades the users table. Idempotent.
    ///
    /// # Errors
    /// [`StoreError::Backend`] if a statement fails.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        let table = self.queries.table.clone();
        self.pool
            .run(move |conn| migrate(conn, &table, USER_MIGRATIONS))
            .await?;
        self.rekey_legacy_rows().await
    }

    /// Makes the keys of rows stored before migration 2 canonical (see
    /// [`rekeys`](crate::sql::rekeys)): one scan of the table, then an update per such row.
    async fn rekey_legacy_rows(&self) -> Result<(), StoreError> {
        let t = self.queries.table.quoted();
        self.pool
            .run(move |conn| {
                let rows = conn
                    .prepare(&format!(
                        "SELECT id, email_key FROM {t} \
                         WHERE email_key = email AND email_key GLOB '*[^ -~]*'"
                    ))
                    .and_then(|mut st| {
                        st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
                            .collect::<rusqlite::Result<Vec<(String, String)>>>()
                    })
                    .map_err(backend)?;
                let update =
                    format!("UPDATE {t} SET email_key = ?3 WHERE id = ?1 AND email_key = ?2");
                for r in rekeys(rows) {
                    match conn.execute(&update, params![r.id, r.old, r.new]) {
                        Ok(_) => {}
                        Err(e) if is_unique_violation(&e) => rekey_collision(&r.id),
                        Err(e) => return Err(backend(e)),
                    }
                }
                Ok(())
            })
            .await
    }

    /// Inserts `user` unless a user with the same id or canonical email exists, in which
    /// case nothing changes. Returns whether it inserted. Use it to seed a demo user on every
    /// start.
    ///
    /// # Errors
    /// [`StoreError::Backend`] if the statement fails.
    pub async fn insert_if_absent(&self, user: &UserRecord) -> Result<bool, StoreError> {
        let q = Arc::clone(&self.queries);
        let user = user.clone();
        self.pool
            .run(move |conn| {
                conn.prepare_cached(&q.insert_if_absent)
                    .and_then(|mut st| {
                        st.execute(params![
                            user.id.as_str(),
                            user.email.trim(),
                            normalize_email(&user.email),
                            user.password_hash,
                            user.first_name,
                            user.last_name,
                            user.email_verified_at.map(to_micros),
                        ])
                    })
                    .map(|n| n == 1)
                    .map_err(backend)
            })
            .await
    }
}

#[async_trait]
impl UserStore for SqliteUserStore {
    type User = UserRecord;

    async fn find_by_email(&self, email: &str) -> Result<Option<UserRecord>, StoreError> {
        let q = Arc::clone(&self.queries);
        let email = email.to_owned();
        self.pool
            .read(move |conn| {
                conn.prepare_cached(&q.by_email)
                    .and_then(|mut st| st.query_row(params![email], read_user).optional())
            })
            .await
    }

    async fn find_by_id(&self, id: &UserId) -> Result<Option<UserRecord>, StoreError> {
        let q = Arc::clone(&self.queries);
        let id = id.as_str().to_owned();
        self.pool
            .read(move |conn| {
                conn.prepare_cached(&q.by_id)
                    .and_then(|mut st| st.query_row(params![id], read_user).optional())
            })
            .await
    }

    async fn set_password_hash(&self, id: &UserId, phc: &str) -> Result<(), StoreError> {
        let q = Arc::clone(&self.queries);
        let id = id.as_str().to_owned();
        let phc = phc.to_owned();
        self.pool
            .run(move |conn| {
                conn.prepare_cached(&q.set_password_hash)
                    .and_then(|mut st| st.execute(params![id, phc]))
                    .map(drop)
                    .map_err(backend)
            })
            .await
    }
}

#[async_trait]
impl AccountStore for SqliteUserStore {
    async fn mark_email_verified(
        &self,
        id: &UserId,
        email: &str,
        at: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let q = Arc::clone(&self.queries);
        let (id, key) = (id.as_str().to_owned(), normalize_email(email));
        self.pool
            .run(move |conn| {
                conn.prepare_cached(&q.mark_email_verified)
                    .and_then(|mut st| st.execute(params![id, key, to_micros(at)]))
                    .map(|n| n == 1)
                    .map_err(backend)
            })
            .await
    }

    async fn change_email(
        &self,
        id: &UserId,
        new_email: &str,
        verified_at: OffsetDateTime,
    ) -> Result<EmailChange, StoreError> {
        let q = Arc::clone(&self.queries);
        let id = id.as_str().to_owned();
        let (email, key) = (new_email.trim().to_owned(), normalize_email(new_email));
        self.pool
            .run(move |conn| {
                let changed = conn
                    .prepare_cached(&q.change_email)
                    .and_then(|mut st| st.execute(params![id, email, key, to_micros(verified_at)]));
                match changed {
                    Ok(0) => Ok(EmailChange::UnknownUser),
                    Ok(_) => Ok(EmailChange::Changed),
                    Err(e) if is_unique_violation(&e) => Ok(EmailChange::Taken),
                    Err(e) => Err(backend(e)),
                }
            })
            .await
    }
}

/// Whether `e` is a `UNIQUE` index refusing a row (here: another user's address).
fn is_unique_violation(e: &rusqlite::Error) -> bool {
    matches!(e, rusqlite::Error::SqliteFailure(f, _)
        if f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE)
}

fn read_user(row: &Row<'_>) -> rusqlite::Result<UserRecord> {
    let verified_at = row
        .get::<_, Option<i64>>(5)?
        .map(|micros| {
            from_micros(micros).map_err(|e| {
                rusqlite::Error::FromSqlConversionFailure(
                    5,
                    rusqlite::types::Type::Integer,
                    Box::new(e),
                )
            })
        })
        .transpose()?;
    Ok(UserRecord {
        id: UserId::new(row.get::<_, String>(0)?),
        email: row.get(1)?,
        password_hash: row.get(2)?,
        first_name: row.get(3)?,
        last_name: row.get(4)?,
        email_verified_at: verified_at,
    })
}
