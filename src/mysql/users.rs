//! The MySQL user store.

use std::sync::Arc;

use async_trait::async_trait;
use sqlx::mysql::MySqlPool;
use time::OffsetDateTime;

use super::migrate::{migrate, parse_table, quoted};
use super::{error, is_deadlock, is_duplicate, text, DEADLOCK_RETRIES};
use crate::registration::{random_user_id, ID_ATTEMPTS};
use crate::sql::{rekey_collision, rekeys, InvalidTableName, Migration, TableName};
use crate::time_codec::{from_micros, to_micros};
use crate::{
    normalize_email, AccountStore, EmailChange, NewUser, Registered, StoreError, UserId,
    UserRecord, UserRegistry, UserStore,
};

/// The schema changes of the users table, in order.
const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        sql: include_str!("../../migrations/mysql/users_0001.sql"),
    },
    Migration {
        version: 2,
        sql: include_str!("../../migrations/mysql/users_0002.sql"),
    },
];

/// Users in a MySQL or MariaDB table, for apps that need no user code of their own. Get one
/// from [`Mysql::user_store`](super::Mysql::user_store).
///
/// The table (default `keycard_users`, optionally `database.table`) is created and upgraded
/// by [`migrate`](Self::migrate); its schema ships in `migrations/mysql/users_0001.sql` and
/// `users_0002.sql`:
///
/// | column | type | |
/// |---|---|---|
/// | `id` | `VARBINARY(767) PRIMARY KEY` | [`UserId`] |
/// | `email` | `VARBINARY(1024)` | the address as typed (trimmed); mail goes here |
/// | `email_key` | `VARBINARY(1024) UNIQUE` | [`normalize_email`] of `email`; lookups match it |
/// | `password_hash` | `TEXT` (`utf8mb4_bin`) | PHC string (`$argon2id$...`) |
/// | `first_name`, `last_name` | `TEXT` (`utf8mb4_bin`) | |
/// | `email_verified_at` | `BIGINT` (Unix µs), nullable | when the address was verified |
///
/// `id`, `email` and `email_key` are binary strings, so lookups match byte for byte: no case,
/// accent or trailing-space folding, whatever the server's default collation. Rows you write
/// yourself must set `email_key` to [`normalize_email`] of the address, or logins will not
/// find them. It is also a [`UserRegistry`]: [`Authenticator::register`](crate::Authenticator::register)
/// creates users with random integer ids, and the `UNIQUE` index refuses a taken email; and
/// an [`AccountStore`].
#[derive(Debug, Clone)]
pub struct MysqlUserStore {
    pool: MySqlPool,
    queries: Arc<Queries>,
}

impl MysqlUserStore {
    /// The default table name.
    pub const DEFAULT_TABLE: &'static str = "keycard_users";

    /// Uses `pool` and the default table. (Also [`Mysql::user_store`](super::Mysql::user_store).)
    pub fn new(pool: MySqlPool) -> Self {
        Self {
            pool,
            queries: Arc::new(Queries::new(TableName::builtin(Self::DEFAULT_TABLE))),
        }
    }

    /// Uses `table` (`name` or `database.name`) instead of `keycard_users`.
    ///
    /// # Errors
    /// [`InvalidTableName`] unless each part is a plain identifier (`[A-Za-z_][A-Za-z0-9_]*`)
    /// and the name is at most 52 bytes.
    pub fn with_table(mut self, table: &str) -> Result<Self, InvalidTableName> {
        self.queries = Arc::new(Queries::new(parse_table(table)?));
        Ok(self)
    }

    /// The connection pool.
    pub fn pool(&self) -> &MySqlPool {
        &self.pool
    }

    /// Creates or upgrades the users table. Idempotent and safe to run from several
    /// instances at once (see [`Mysql::migrate`](super::Mysql::migrate)).
    ///
    /// # Errors
    /// [`StoreError::Backend`] if a statement fails.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        migrate(&self.pool, &self.queries.table, MIGRATIONS).await?;
        self.rekey_legacy_rows().await
    }

    /// Makes the keys of rows stored before migration 2 canonical (see
    /// [`rekeys`](crate::sql::rekeys)): one scan of the table, then an update per such row.
    /// Non-ASCII keys are those whose hex digits are not all pairs below `80`.
    async fn rekey_legacy_rows(&self) -> Result<(), StoreError> {
        let t = quoted(&self.queries.table);
        let rows: Vec<(Vec<u8>, Vec<u8>)> = sqlx::query_as(&format!(
            "SELECT id, email_key FROM {t} \
             WHERE email_key = email AND HEX(email_key) NOT REGEXP '^([0-7][0-9A-F])*$'"
        ))
        .fetch_all(&self.pool)
        .await
        .map_err(error)?;
        let rows = rows
            .into_iter()
            .map(|(id, key)| Ok((text(id)?, text(key)?)))
            .collect::<Result<Vec<_>, StoreError>>()?;
        let update = format!("UPDATE {t} SET email_key = ? WHERE id = ? AND email_key = ?");
        for r in rekeys(rows) {
            let done = sqlx::query(&update)
                .bind(&r.new)
                .bind(&r.id)
                .bind(&r.old)
                .execute(&self.pool)
                .await;
            match done {
                Ok(_) => {}
                Err(e) if is_duplicate(&e) => rekey_collision(&r.id),
                Err(e) => return Err(error(e)),
            }
        }
        Ok(())
    }

    /// Inserts `user` unless a user with the same id or canonical email exists,
    /// in which case nothing changes. Returns whether it inserted. Safe to call concurrently
    /// from several instances, for example to seed a demo user on every start.
    ///
    /// # Errors
    /// [`StoreError::Backend`] if the statement fails for another reason than a taken id or
    /// email.
    pub async fn insert_if_absent(&self, user: &UserRecord) -> Result<bool, StoreError> {
        let done = sqlx::query(&self.queries.insert)
            .bind(user.id.as_str())
            .bind(user.email.trim())
            .bind(normalize_email(&user.email))
            .bind(&user.password_hash)
            .bind(&user.first_name)
            .bind(&user.last_name)
            .bind(user.email_verified_at.map(to_micros))
            .execute(&self.pool)
            .await;
        match done {
            Ok(_) => Ok(true),
            Err(e) if is_duplicate(&e) => Ok(false),
            Err(e) => Err(error(e)),
        }
    }

    async fn find(&self, statement: &str, value: &str) -> Result<Option<UserRecord>, StoreError> {
        sqlx::query_as::<_, UserRow>(statement)
            .bind(value)
            .fetch_optional(&self.pool)
            .await
            .map_err(error)?
            .map(into_user)
            .transpose()
    }
}

/// A users row as selected.
type UserRow = (Vec<u8>, Vec<u8>, Vec<u8>, Vec<u8>, Vec<u8>, Option<i64>);

fn into_user(row: UserRow) -> Result<UserRecord, StoreError> {
    let (id, email, password_hash, first_name, last_name, verified_at) = row;
    Ok(UserRecord {
        id: UserId::new(text(id)?),
        email: text(email)?,
        password_hash: text(password_hash)?,
        first_name: text(first_name)?,
        last_name: text(last_name)?,
        email_verified_at: verified_at.map(from_micros).transpose()?,
    })
}

#[async_trait]
impl UserStore for MysqlUserStore {
    type User = UserRecord;

    async fn find_by_email(&self, email: &str) -> Result<Option<UserRecord>, StoreError> {
        self.find(&self.queries.by_email, email).await
    }

    async fn find_by_id(&self, id: &UserId) -> Result<Option<UserRecord>, StoreError> {
        self.find(&self.queries.by_id, id.as_str()).await
    }

    async fn set_password_hash(&self, id: &UserId, phc: &str) -> Result<(), StoreError> {
        sqlx::query(&self.queries.set_password_hash)
            .bind(phc)
            .bind(id.as_str())
            .execute(&self.pool)
            .await
            .map_err(error)?;
        Ok(())
    }
}

#[async_trait]
impl UserRegistry for MysqlUserStore {
    /// A random integer id (retried on the rare collision); the email's `UNIQUE` index
    /// decides a race between two registrations of one email.
    async fn create_user(&self, new: &NewUser) -> Result<Registered<UserRecord>, StoreError> {
        for _ in 0..ID_ATTEMPTS {
            let user = UserRecord::new(random_user_id(), &new.email, new.password_hash.clone());
            if self.insert_if_absent(&user).await? {
                return Ok(Registered::Created(user));
            }
            if self
                .find_by_email(&normalize_email(&new.email))
                .await?
                .is_some()
            {
                return Ok(Registered::EmailTaken);
            }
        }
        Err(StoreError::backend("no free user id after 3 random tries"))
    }
}

#[async_trait]
impl AccountStore for MysqlUserStore {
    async fn mark_email_verified(
        &self,
        id: &UserId,
        email: &str,
        at: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        // The connection reports rows matched (`CLIENT_FOUND_ROWS`), not rows changed, so an
        // address verified earlier counts as marked.
        let done = sqlx::query(&self.queries.mark_email_verified)
            .bind(to_micros(at))
            .bind(id.as_str())
            .bind(normalize_email(email))
            .execute(&self.pool)
            .await
            .map_err(error)?;
        Ok(done.rows_affected() == 1)
    }

    /// One `UPDATE`: the `UNIQUE` index on `email_key` refuses another user's address. A
    /// statement InnoDB picks as a deadlock victim (concurrent changes to one address) is
    /// retried.
    async fn change_email(
        &self,
        id: &UserId,
        new_email: &str,
        verified_at: OffsetDateTime,
    ) -> Result<EmailChange, StoreError> {
        let key = normalize_email(new_email);
        let mut attempt = 0;
        loop {
            let done = sqlx::query(&self.queries.change_email)
                .bind(new_email.trim())
                .bind(&key)
                .bind(to_micros(verified_at))
                .bind(id.as_str())
                .execute(&self.pool)
                .await;
            return match done {
                Ok(done) if done.rows_affected() == 0 => Ok(EmailChange::UnknownUser),
                Ok(_) => Ok(EmailChange::Changed),
                Err(e) if is_duplicate(&e) => Ok(EmailChange::Taken),
                Err(e) if is_deadlock(&e) && attempt < DEADLOCK_RETRIES => {
                    attempt += 1;
                    continue;
                }
                Err(e) => Err(error(e)),
            };
        }
    }
}

#[cfg(feature = "conformance")]
#[async_trait]
impl crate::conformance::users::SeedUsers for MysqlUserStore {
    async fn seed_user(&self, email: &str, password_hash: &str) -> Result<UserId, StoreError> {
        let id = random_user_id();
        match self
            .insert_if_absent(&UserRecord::new(id.clone(), email, password_hash))
            .await?
        {
            true => Ok(id),
            false => Err(StoreError::backend("the seeded email or id exists")),
        }
    }
}

/// The statements over the users table.
#[derive(Debug)]
struct Queries {
    table: TableName,
    insert: String,
    by_email: String,
    by_id: String,
    set_password_hash: String,
    mark_email_verified: String,
    change_email: String,
}

const COLUMNS: &str = "id, email, password_hash, first_name, last_name, email_verified_at";

impl Queries {
    fn new(table: TableName) -> Self {
        let t = quoted(&table);
        Self {
            insert: format!(
                "INSERT INTO {t} (id, email, email_key, password_hash, first_name, last_name, \
                 email_verified_at) VALUES (?, ?, ?, ?, ?, ?, ?)"
            ),
            by_email: format!("SELECT {COLUMNS} FROM {t} WHERE email_key = ?"),
            by_id: format!("SELECT {COLUMNS} FROM {t} WHERE id = ?"),
            set_password_hash: format!("UPDATE {t} SET password_hash = ? WHERE id = ?"),
            mark_email_verified: format!(
                "UPDATE {t} SET email_verified_at = COALESCE(email_verified_at, ?) \
                 WHERE id = ? AND email_key = ?"
            ),
            change_email: format!(
                "UPDATE {t} SET email = ?, email_key = ?, email_verified_at = ? WHERE id = ?"
            ),
            table,
        }
    }
}
