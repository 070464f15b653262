//! The PostgreSQL one-time token store.

use std::sync::Arc;

use async_trait::async_trait;
use sha2::{Digest, Sha256};
use sqlx::postgres::PgPool;
use time::OffsetDateTime;

use super::{error, migrate};
use crate::one_time::{OneTimeId, OneTimePurpose, OneTimeRecord, OneTimeTokenStore};
use crate::sql::one_time::{keep_others, OneTimeQueries, OneTimeRow};
use crate::sql::{InvalidTableName, Migration, Placeholders, TableName};
use crate::{SecretHash, StoreError, UserId};

/// The schema changes of the one-time tokens table, in order.
const MIGRATIONS: &[Migration] = &[Migration {
    version: 1,
    sql: include_str!("../../migrations/postgres/one_time_0001.sql"),
}];

/// How many expired tokens one purge statement deletes.
const PURGE_BATCH: i64 = 1000;

/// One-time tokens (password reset, email verification, sign-in links) in a PostgreSQL
/// table. Get one from [`Postgres::one_time_store`](super::Postgres::one_time_store).
///
/// The table (default `keycard_one_time_tokens`, optionally schema-qualified) is created by
/// [`migrate`](Self::migrate) (or [`Postgres::migrate`](super::Postgres::migrate)); its schema
/// ships in `migrations/postgres/one_time_0001.sql`:
///
/// | column | type | |
/// |---|---|---|
/// | `id` | `TEXT PRIMARY KEY` | the public token id (22 characters) |
/// | `user_id`, `purpose` | `TEXT` | indexed with `created_at` |
/// | `secret_hash` | `BYTEA` | SHA-256 of the token's secret (32 bytes) |
/// | `binding` | `BYTEA` | digest of the account state it was issued for (32 bytes) |
/// | `payload` | `TEXT NULL` | the flow's data (an email change's new address) |
/// | `created_at`, `expires_at` | `TIMESTAMPTZ` | `expires_at` indexed |
///
/// No secret is stored. Issue is one transaction under a transaction-scoped advisory lock on
/// the user and purpose (so concurrent issues for one user, from any instance, keep the cap):
/// insert, then delete the user's expired tokens and those beyond the cap. Consume is one
/// `DELETE ... RETURNING` matching id, purpose, digest and expiry: of concurrent consumes,
/// from any instance, one wins. Purge batches skip rows another purger has locked.
#[derive(Debug, Clone)]
pub struct PostgresOneTimeStore {
    pool: PgPool,
    queries: Arc<OneTimeQueries>,
}

impl PostgresOneTimeStore {
    /// The default table name.
    pub const DEFAULT_TABLE: &'static str = "keycard_one_time_tokens";

    /// Uses `pool` and the default table. (Also
    /// [`Postgres::one_time_store`](super::Postgres::one_time_store).)
    pub fn new(pool: PgPool) -> Self {
        Self {
            pool,
            queries: Arc::new(OneTimeQueries::new(
                TableName::builtin(Self::DEFAULT_TABLE),
                Placeholders::Dollar,
            )),
        }
    }

    /// Uses `table` (`name` or `schema.name`) instead of `keycard_one_time_tokens`.
    ///
    /// # Errors
    /// [`InvalidTableName`] unless each part is a plain identifier (`[A-Za-z_][A-Za-z0-9_]*`).
    pub fn with_table(mut self, table: &str) -> Result<Self, InvalidTableName> {
        self.queries = Arc::new(OneTimeQueries::new(
            TableName::parse(table, true)?,
            Placeholders::Dollar,
        ));
        Ok(self)
    }

    /// The connection pool.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Creates or upgrades the table (and its schema, if qualified). Idempotent; one
    /// transaction under an advisory lock, so instances starting together do not race.
    ///
    /// # Errors
    /// [`StoreError::Backend`] if a statement fails.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        migrate(&self.pool, &self.queries.table, MIGRATIONS).await
    }

    /// The advisory lock key of one user's tokens of one purpose in this table.
    fn lock_key(&self, user: &UserId, purpose: &OneTimePurpose) -> i64 {
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
        let mut key = [0u8; 8];
        key.copy_from_slice(&digest[..8]);
        i64::from_be_bytes(key)
    }
}

type Tuple = (
    String,
    String,
    String,
    Vec<u8>,
    Vec<u8>,
    Option<String>,
    OffsetDateTime,
    OffsetDateTime,
);

fn decode(row: Tuple) -> Result<OneTimeRecord, StoreError> {
    let (id, user_id, purpose, secret_hash, binding, payload, created_at, expires_at) = row;
    OneTimeRow {
        id,
        user_id,
        purpose,
        secret_hash,
        binding,
        payload,
        created_at,
        expires_at,
    }
    .into_record()
}

#[async_trait]
impl OneTimeTokenStore for PostgresOneTimeStore {
    async fn issue(
        &self,
        record: &OneTimeRecord,
        max_outstanding: u32,
        now: OffsetDateTime,
    ) -> Result<u64, StoreError> {
        let q = &self.queries;
        let id = record.id.to_string();
        let (user, purpose) = (record.user_id.as_str(), record.purpose.name());
        let mut tx = self.pool.begin().await.map_err(error)?;
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(self.lock_key(&record.user_id, &record.purpose))
            .execute(&mut *tx)
            .await
            .map_err(error)?;
        let inserted = sqlx::query(&q.insert)
            .bind(&id)
            .bind(user)
            .bind(purpose)
            .bind(record.secret_hash.as_bytes().as_slice())
            .bind(record.binding.as_bytes().as_slice())
            .bind(record.payload.as_deref())
            .bind(record.created_at)
            .bind(record.expires_at)
            .execute(&mut *tx)
            .await
            .map_err(error)?;
        if inserted.rows_affected() != 1 {
            return Err(StoreError::Duplicate);
        }
        sqlx::query(&q.delete_expired_of)
            .bind(user)
            .bind(purpose)
            .bind(now)
            .execute(&mut *tx)
            .await
            .map_err(error)?;
        let retired = sqlx::query(&q.retire_excess)
            .bind(user)
            .bind(purpose)
            .bind(&id)
            .bind(keep_others(max_outstanding))
            .execute(&mut *tx)
            .await
            .map_err(error)?;
        tx.commit().await.map_err(error)?;
        Ok(retired.rows_affected())
    }

    async fn find(
        &self,
        id: &OneTimeId,
        now: OffsetDateTime,
    ) -> Result<Option<OneTimeRecord>, StoreError> {
        sqlx::query_as::<_, Tuple>(&self.queries.find)
            .bind(id.to_string())
            .bind(now)
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
        sqlx::query_as::<_, Tuple>(&self.queries.consume)
            .bind(id.to_string())
            .bind(purpose.name())
            .bind(secret_hash.as_bytes().as_slice())
            .bind(now)
            .fetch_optional(&self.pool)
            .await
            .map_err(error)?
            .map(decode)
            .transpose()
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
                .bind(now)
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
