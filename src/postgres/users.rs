//! The PostgreSQL user store.

use async_trait::async_trait;
use sqlx::postgres::PgPool;

use super::{connect_pool, error, migrate};
use crate::sql::{InvalidTableName, Migration, Placeholders, TableName, UserQueries};
use crate::{normalize_email, StoreError, UserId, UserRecord, UserStore};

/// The schema changes of the users table, in order.
const USER_MIGRATIONS: &[Migration] = &[Migration {
    version: 1,
    sql: include_str!("../../migrations/postgres/users_0001.sql"),
}];

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
/// use keycard::postgres::Postgres;
/// use keycard::UserRecord;
/// let db = Postgres::connect("postgres://app@db/app").await?;
/// db.migrate().await?;
/// let users = db.user_store();
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

    /// Connects a pool of up to 10 connections to `url`, as [`PostgresTokenStore::connect`](super::PostgresTokenStore::connect)
    /// does. Does not create the table: call [`migrate`](Self::migrate).
    ///
    /// # Errors
    /// [`StoreError::Backend`] if the URL is invalid or the server cannot be reached.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        Ok(Self::new(connect_pool(url, 10).await?))
    }

    /// Uses an existing pool (for example [`Postgres::pool`](super::Postgres::pool)).
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
    /// [`PostgresTokenStore::migrate`](super::PostgresTokenStore::migrate).
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
