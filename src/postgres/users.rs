//! The PostgreSQL user store.

use async_trait::async_trait;
use sqlx::postgres::PgPool;
use time::OffsetDateTime;

use super::{connect_pool, error, migrate};
use crate::sql::{
    rekey_collision, rekeys, InvalidTableName, Migration, Placeholders, TableName, UserQueries,
};
use crate::{
    normalize_email, AccountStore, EmailChange, StoreError, UserId, UserRecord, UserStore,
};

/// The schema changes of the users table, in order.
const USER_MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        sql: include_str!("../../migrations/postgres/users_0001.sql"),
    },
    Migration {
        version: 2,
        sql: include_str!("../../migrations/postgres/users_0002.sql"),
    },
];

/// Users in a PostgreSQL table, for apps and examples that need no user code of their own.
///
/// The table (default `keycard_users`, optionally schema-qualified) is created and upgraded
/// by [`migrate`](Self::migrate); its schema ships in `migrations/postgres/users_0001.sql` and
/// `users_0002.sql`:
///
/// | column | type | |
/// |---|---|---|
/// | `id` | `TEXT PRIMARY KEY` | [`UserId`] |
/// | `email` | `TEXT` | the address as typed (trimmed); mail goes here |
/// | `email_key` | `TEXT NOT NULL UNIQUE` | [`normalize_email`] of `email`; lookups match it |
/// | `password_hash` | `TEXT` | PHC string (`$argon2id$...`) |
/// | `first_name`, `last_name` | `TEXT` | default `''` |
/// | `email_verified_at` | `TIMESTAMPTZ`, nullable | when the address was verified |
///
/// Rows you write yourself must set `email_key` to [`normalize_email`] of the address, or
/// logins will not find them. It is also an [`AccountStore`]: [`change_email`](AccountStore::change_email)
/// is one `UPDATE`, which the unique constraint on `email_key` refuses for another user's
/// address (retried if the server picks it as a deadlock victim).
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
        migrate(&self.pool, &self.queries.table, USER_MIGRATIONS).await?;
        self.rekey_legacy_rows().await
    }

    /// Makes the keys of rows stored before migration 2 canonical (see
    /// [`rekeys`](crate::sql::rekeys)): one scan of the table, then an update per such row.
    async fn rekey_legacy_rows(&self) -> Result<(), StoreError> {
        let t = self.queries.table.quoted();
        let rows: Vec<(String, String)> = sqlx::query_as(&format!(
            "SELECT id, email_key FROM {t} \
             WHERE email_key = email AND octet_length(email_key) <> char_length(email_key)"
        ))
        .fetch_all(&self.pool)
        .await
        .map_err(error)?;
        let update = format!("UPDATE {t} SET email_key = $3 WHERE id = $1 AND email_key = $2");
        for r in rekeys(rows) {
            let done = sqlx::query(&update)
                .bind(&r.id)
                .bind(&r.old)
                .bind(&r.new)
                .execute(&self.pool)
                .await;
            match done {
                Ok(_) => {}
                Err(sqlx::Error::Database(db)) if db.is_unique_violation() => {
                    rekey_collision(&r.id);
                }
                Err(e) => return Err(error(e)),
            }
        }
        Ok(())
    }

    /// Inserts `user` unless a user with the same id or canonical email exists, in which
    /// case nothing changes. Returns whether it inserted. Use it to seed a demo user on every
    /// start: concurrent calls from several instances are safe.
    ///
    /// # Errors
    /// [`StoreError::Backend`] if the statement fails.
    pub async fn insert_if_absent(&self, user: &UserRecord) -> Result<bool, StoreError> {
        let done = sqlx::query(&self.queries.insert_if_absent)
            .bind(user.id.as_str())
            .bind(user.email.trim())
            .bind(normalize_email(&user.email))
            .bind(&user.password_hash)
            .bind(&user.first_name)
            .bind(&user.last_name)
            .bind(user.email_verified_at)
            .execute(&self.pool)
            .await
            .map_err(error)?;
        Ok(done.rows_affected() == 1)
    }
}

/// How many times a change the server picked as a deadlock victim is retried.
const DEADLOCK_RETRIES: usize = 5;

/// Whether `e` is the server ending the statement to break a deadlock (SQLSTATE 40P01) or a
/// serialization failure (40001): retrying is safe.
fn is_deadlock(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(db)
        if matches!(db.code().as_deref(), Some("40P01" | "40001")))
}

type UserTuple = (
    String,
    String,
    String,
    String,
    String,
    Option<OffsetDateTime>,
);

fn into_user(row: UserTuple) -> UserRecord {
    let (id, email, password_hash, first_name, last_name, email_verified_at) = row;
    UserRecord {
        id: UserId::new(id),
        email,
        password_hash,
        first_name,
        last_name,
        email_verified_at,
    }
}

#[async_trait]
impl AccountStore for PostgresUserStore {
    async fn mark_email_verified(
        &self,
        id: &UserId,
        email: &str,
        at: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        // PostgreSQL text cannot hold NUL: no stored id or address has one.
        if id.as_str().contains('\0') || email.contains('\0') {
            return Ok(false);
        }
        let done = sqlx::query(&self.queries.mark_email_verified)
            .bind(id.as_str())
            .bind(normalize_email(email))
            .bind(at)
            .execute(&self.pool)
            .await
            .map_err(error)?;
        Ok(done.rows_affected() == 1)
    }

    async fn change_email(
        &self,
        id: &UserId,
        new_email: &str,
        verified_at: OffsetDateTime,
    ) -> Result<EmailChange, StoreError> {
        if id.as_str().contains('\0') {
            return Ok(EmailChange::UnknownUser);
        }
        if new_email.contains('\0') {
            return Err(StoreError::backend(
                "the new email contains a NUL character, which PostgreSQL text cannot hold; \
                 check addresses with keycard::check_email before changing to them",
            ));
        }
        let key = normalize_email(new_email);
        let mut attempt = 0;
        loop {
            let done = sqlx::query(&self.queries.change_email)
                .bind(id.as_str())
                .bind(new_email.trim())
                .bind(&key)
                .bind(verified_at)
                .execute(&self.pool)
                .await;
            return match done {
                Ok(done) if done.rows_affected() == 0 => Ok(EmailChange::UnknownUser),
                Ok(_) => Ok(EmailChange::Changed),
                Err(sqlx::Error::Database(db)) if db.is_unique_violation() => {
                    Ok(EmailChange::Taken)
                }
                Err(e) if is_deadlock(&e) && attempt < DEADLOCK_RETRIES => {
                    attempt += 1;
                    continue;
                }
                Err(e) => Err(error(e)),
            };
        }
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
