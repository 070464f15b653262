//! The MySQL / MariaDB one-time token store.

use std::sync::Arc;

use async_trait::async_trait;
use sha2::{Digest, Sha256};
use sqlx::mysql::{MySqlConnection, MySqlPool};
use sqlx::Connection as _;
use time::OffsetDateTime;

use super::migrate::{migrate, parse_table, quoted};
use super::{error, is_deadlock, is_duplicate, text, NamedLock, DEADLOCK_RETRIES};
use crate::one_time::{OneTimeId, OneTimePurpose, OneTimeRecord, OneTimeTokenStore};
use crate::sql::one_time::{keep_others, OneTimeRow, ONE_TIME_COLUMNS};
use crate::sql::{InvalidTableName, Migration, TableName};
use crate::time_codec::{from_micros, to_micros};
use crate::{SecretHash, StoreError, UserId};

/// The schema changes of the one-time tokens table, in order.
const MIGRATIONS: &[Migration] = &[Migration {
    version: 1,
    sql: include_str!("../../migrations/mysql/one_time_0001.sql"),
}];

/// How many expired tokens one purge statement deletes.
const PURGE_BATCH: i64 = 1000;

/// How long an issue waits for a concurrent issue for the same user and purpose, in seconds.
const LOCK_WAIT_SECS: i64 = 10;

/// One-time tokens (password reset, email verification, sign-in links) in a MySQL or MariaDB
/// table. Get one from [`Mysql::one_time_store`](super::Mysql::one_time_store).
///
/// The table (default `keycard_one_time_tokens`, optionally `database.table`) is created by
/// [`migrate`](Self::migrate) (or [`Mysql::migrate`](super::Mysql::migrate)); its schema
/// ships in `migrations/mysql/one_time_0001.sql`:
///
/// | column | type | |
/// |---|---|---|
/// | `id` | `VARBINARY(64) PRIMARY KEY` | the public token id (22 characters) |
/// | `user_id`, `purpose` | `VARBINARY(767)`, `VARBINARY(64)` | indexed with `created_at` |
/// | `secret_hash` | `BINARY(32)` | SHA-256 of the token's secret |
/// | `binding` | `BINARY(32)` | digest of the account state it was issued for |
/// | `payload` | `TEXT` (`utf8mb4_bin`) `NULL` | the flow's data |
/// | `created_at`, `expires_at` | `BIGINT` | Unix microseconds; `expires_at` indexed |
///
/// No secret is stored. Issue is one transaction (insert, delete the user's expired tokens of
/// the purpose and those beyond the cap) run under a server-wide named lock of the user and
/// purpose (`GET_LOCK`, a digest of table, user and purpose), so concurrent issues for one user,
/// from any instance, queue and keep the cap; gap locks would make them deadlock instead. Consume reads the matching live row, then
/// deletes it with the same conditions: the delete that removes the row is the one winner of
/// any number of concurrent consumes. (MySQL has no `DELETE ... RETURNING`.)
#[derive(Debug, Clone)]
pub struct MysqlOneTimeStore {
    pool: MySqlPool,
    queries: Arc<Queries>,
}

impl MysqlOneTimeStore {
    /// The default table name.
    pub const DEFAULT_TABLE: &'static str = "keycard_one_time_tokens";

    /// Uses `pool` and the default table. (Also
    /// [`Mysql::one_time_store`](super::Mysql::one_time_store).)
    pub fn new(pool: MySqlPool) -> Self {
        Self {
            pool,
            queries: Arc::new(Queries::new(TableName::builtin(Self::DEFAULT_TABLE))),
        }
    }

    /// Uses `table` (`name` or `database.name`) instead of `keycard_one_time_tokens`.
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

    /// Creates or upgrades the table. Idempotent and safe to run from several instances at
    /// once (see [`Mysql::migrate`](super::Mysql::migrate)).
    ///
    /// # Errors
    /// [`StoreError::Backend`] if a statement fails.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        migrate(&self.pool, &self.queries.table, MIGRATIONS).await
    }

    /// The named lock (`GET_LOCK`) of one user's tokens of one purpose in this table: at most
    /// 64 characters, so a digest.
    fn lock_name(&self, user: &UserId, purpose: &OneTimePurpose) -> String {
        let table = &self.queries.table;
        let digest = Sha256::new()
            .chain_update(b"keycard one-time issue\0")
            .chain_update(table.schema.as_deref().unwrap_or("").as_bytes())
            .chain_update(b"\0")
            .chain_update(table.name.as_bytes())
            .chain_update(b"\0")
            .chain_update(purpose.name().as_bytes())
            .chain_update(b"\0")
            .chain_update(user.as_str().as_bytes())
            .finalize();
        let hex: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
        format!("kc_ott_{hex}")
    }

    /// One issue, under the user's named lock (taken before the transaction begins, so its
    /// reads see every issue that held the lock before).
    async fn try_issue(
        &self,
        record: &OneTimeRecord,
        max_outstanding: u32,
        now: OffsetDateTime,
    ) -> Result<u64, sqlx::Error> {
        let mut lock = NamedLock::acquire(
            &self.pool,
            self.lock_name(&record.user_id, &record.purpose),
            LOCK_WAIT_SECS,
            "one-time token issue",
        )
        .await?;
        let issued = self
            .issue_locked(lock.conn(), record, max_outstanding, now)
            .await;
        let released = lock.release().await;
        let retired = issued?;
        released?;
        Ok(retired)
    }

    async fn issue_locked(
        &self,
        conn: &mut MySqlConnection,
        record: &OneTimeRecord,
        max_outstanding: u32,
        now: OffsetDateTime,
    ) -> Result<u64, sqlx::Error> {
        let q = &self.queries;
        let id = record.id.to_string();
        let (user, purpose) = (record.user_id.as_str(), record.purpose.name());
        let mut tx = conn.begin().await?;
        sqlx::query(&q.insert)
            .bind(&id)
            .bind(user)
            .bind(purpose)
            .bind(record.secret_hash.as_bytes().as_slice())
            .bind(record.binding.as_bytes().as_slice())
            .bind(record.payload.as_deref())
            .bind(to_micros(record.created_at))
            .bind(to_micros(record.expires_at))
            .execute(&mut *tx)
            .await?;
        sqlx::query(&q.delete_expired_of)
            .bind(user)
            .bind(purpose)
            .bind(to_micros(now))
            .execute(&mut *tx)
            .await?;
        let others: Vec<Vec<u8>> = sqlx::query_scalar(&q.others_newest_first)
            .bind(user)
            .bind(purpose)
            .bind(&id)
            .fetch_all(&mut *tx)
            .await?;
        let keep = usize::try_from(keep_others(max_outstanding)).unwrap_or(usize::MAX);
        let mut retired = 0;
        for other in others.iter().skip(keep) {
            retired += sqlx::query(&q.delete)
                .bind(other.as_slice())
                .execute(&mut *tx)
                .await?
                .rows_affected();
        }
        tx.commit().await?;
        Ok(retired)
    }
}

/// A row as selected.
type Tuple = (
    Vec<u8>,
    Vec<u8>,
    Vec<u8>,
    Vec<u8>,
    Vec<u8>,
    Option<Vec<u8>>,
    i64,
    i64,
);

fn decode(row: Tuple) -> Result<OneTimeRecord, StoreError> {
    let (id, user_id, purpose, secret_hash, binding, payload, created_at, expires_at) = row;
    OneTimeRow {
        id: text(id)?,
        user_id: text(user_id)?,
        purpose: text(purpose)?,
        secret_hash,
        binding,
        payload: payload.map(text).transpose()?,
        created_at: from_micros(created_at)?,
        expires_at: from_micros(expires_at)?,
    }
    .into_record()
}

#[async_trait]
impl OneTimeTokenStore for MysqlOneTimeStore {
    async fn issue(
        &self,
        record: &OneTimeRecord,
        max_outstanding: u32,
        now: OffsetDateTime,
    ) -> Result<u64, StoreError> {
        let mut attempt = 0;
        loop {
            match self.try_issue(record, max_outstanding, now).await {
                Ok(retired) => return Ok(retired),
                Err(e) if is_duplicate(&e) => return Err(StoreError::Duplicate),
                Err(e) if is_deadlock(&e) && attempt < DEADLOCK_RETRIES => attempt += 1,
                Err(e) => return Err(error(e)),
            }
        }
    }

    async fn find(
        &self,
        id: &OneTimeId,
        now: OffsetDateTime,
    ) -> Result<Option<OneTimeRecord>, StoreError> {
        sqlx::query_as::<_, Tuple>(&self.queries.find)
            .bind(id.to_string())
            .bind(to_micros(now))
            .fetch_optional(&self.pool)
            .await
            .map_err(error)?
            .map(decode)
            .transpose()
    }

    async fn consume(
        &self,
        id: &OneTimeId,
        purpose: &OneTimePurpose,
        secret_hash: &SecretHash,
        now: OffsetDateTime,
    ) -> Result<Option<OneTimeRecord>, StoreError> {
        let (id, now) = (id.to_string(), to_micros(now));
        let digest = secret_hash.as_bytes().as_slice();
        let Some(row) = sqlx::query_as::<_, Tuple>(&self.queries.select_matching)
            .bind(&id)
            .bind(purpose.name())
            .bind(digest)
            .bind(now)
            .fetch_optional(&self.pool)
            .await
            .map_err(error)?
        else {
            return Ok(None);
        };
        let done = sqlx::query(&self.queries.delete_matching)
            .bind(&id)
            .bind(purpose.name())
            .bind(digest)
            .bind(now)
            .execute(&self.pool)
            .await
            .map_err(error)?;
        match done.rows_affected() {
            1 => decode(row).map(Some),
            _ => Ok(None),
        }
    }

    async fn retire_all(&self, user: &UserId, purpose: &OneTimePurpose) -> Result<u64, StoreError> {
        let done = sqlx::query(&self.queries.retire_all)
            .bind(user.as_str())
            .bind(purpose.name())
            .execute(&self.pool)
            .await
            .map_err(error)?;
        Ok(done.rows_affected())
    }

    async fn purge_expired(&self, now: OffsetDateTime) -> Result<u64, StoreError> {
        let mut total = 0;
        loop {
            let done = sqlx::query(&self.queries.purge_batch)
                .bind(to_micros(now))
                .bind(PURGE_BATCH)
                .execute(&self.pool)
                .await
                .map_err(error)?;
            total += done.rows_affected();
            if done.rows_affected() < PURGE_BATCH.unsigned_abs() {
                return Ok(total);
            }
        }
    }
}

/// The statements over the one-time tokens table.
#[derive(Debug)]
struct Queries {
    table: TableName,
    insert: String,
    delete_expired_of: String,
    others_newest_first: String,
    delete: String,
    find: String,
    select_matching: String,
    delete_matching: String,
    retire_all: String,
    purge_batch: String,
}

impl Queries {
    fn new(table: TableName) -> Self {
        let t = quoted(&table);
        let matching = "id = ? AND purpose = ? AND secret_hash = ? AND expires_at > ?";
        Self {
            insert: format!("INSERT INTO {t} ({ONE_TIME_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"),
            delete_expired_of: format!(
                "DELETE FROM {t} WHERE user_id = ? AND purpose = ? AND expires_at <= ?"
            ),
            others_newest_first: format!(
                "SELECT id FROM {t} WHERE user_id = ? AND purpose = ? AND id <> ? \
                 ORDER BY created_at DESC, id DESC"
            ),
            delete: format!("DELETE FROM {t} WHERE id = ?"),
            find: format!("SELECT {ONE_TIME_COLUMNS} FROM {t} WHERE id = ? AND expires_at > ?"),
            select_matching: format!("SELECT {ONE_TIME_COLUMNS} FROM {t} WHERE {matching}"),
            delete_matching: format!("DELETE FROM {t} WHERE {matching}"),
            retire_all: format!("DELETE FROM {t} WHERE user_id = ? AND purpose = ?"),
            purge_batch: format!(
                "DELETE FROM {t} WHERE expires_at <= ? ORDER BY expires_at LIMIT ?"
            ),
            table,
        }
    }
}
