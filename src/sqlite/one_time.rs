//! The SQLite one-time token store.

use std::sync::Arc;

use async_trait::async_trait;
use rusqlite::{params, OptionalExtension, Row, TransactionBehavior};
use time::OffsetDateTime;

use super::{backend, migrate, Pool};
use crate::one_time::{OneTimeId, OneTimePurpose, OneTimeRecord, OneTimeTokenStore};
use crate::sql::one_time::{keep_others, OneTimeQueries, OneTimeRow};
use crate::sql::{InvalidTableName, Migration, Placeholders, TableName};
use crate::time_codec::{from_micros, to_micros};
use crate::{SecretHash, StoreError, UserId};

/// The schema changes of the one-time tokens table, in order.
const MIGRATIONS: &[Migration] = &[Migration {
    version: 1,
    sql: include_str!("../../migrations/sqlite/one_time_0001.sql"),
}];

/// How many expired tokens one purge statement deletes.
const PURGE_BATCH: i64 = 1000;

/// One-time tokens (password reset, email verification, sign-in links) in a SQLite file. Get
/// one from [`Sqlite::one_time_store`](super::Sqlite::one_time_store).
///
/// The table (default `keycard_one_time_tokens`) is created by [`migrate`](Self::migrate)
/// (or [`Sqlite::migrate`](super::Sqlite::migrate)); its schema ships in
/// `migrations/sqlite/one_time_0001.sql`:
///
/// | column | type | |
/// |---|---|---|
/// | `id` | `TEXT PRIMARY KEY` | the public token id (22 characters) |
/// | `user_id`, `purpose` | `TEXT` | indexed with `created_at` |
/// | `secret_hash` | `BLOB` | SHA-256 of the token's secret (32 bytes) |
/// | `binding` | `BLOB` | digest of the account state it was issued for (32 bytes) |
/// | `payload` | `TEXT NULL` | the flow's data (an email change's new address) |
/// | `created_at`, `expires_at` | `INTEGER` | Unix microseconds; `expires_at` indexed |
///
/// No secret is stored. Issue (insert, then retire the user's expired tokens and those beyond
/// the cap) is one `BEGIN IMMEDIATE` transaction, so issues are serialized and the cap holds
/// under concurrency; consume is one `DELETE ... RETURNING` that matches the id, purpose,
/// digest and expiry, so of concurrent consumes, from any process on the file, one wins.
#[derive(Debug, Clone)]
pub struct SqliteOneTimeStore {
    pool: Arc<Pool>,
    queries: Arc<OneTimeQueries>,
}

impl SqliteOneTimeStore {
    /// The default table name.
    pub const DEFAULT_TABLE: &'static str = "keycard_one_time_tokens";

    /// A store on an open pool (the [`Sqlite`](super::Sqlite) handle's), default table.
    pub(crate) fn from_pool(pool: Arc<Pool>) -> Self {
        Self {
            pool,
            queries: Arc::new(OneTimeQueries::new(
                TableName::builtin(Self::DEFAULT_TABLE),
                Placeholders::Question,
            )),
        }
    }

    /// Uses `table` instead of `keycard_one_time_tokens`.
    ///
    /// # Errors
    /// [`InvalidTableName`] unless `table` is a plain identifier (`[A-Za-z_][A-Za-z0-9_]*`).
    pub fn with_table(mut self, table: &str) -> Result<Self, InvalidTableName> {
        self.queries = Arc::new(OneTimeQueries::new(
            TableName::parse(table, false)?,
            Placeholders::Question,
        ));
        Ok(self)
    }

    /// Creates or upgrades the table. Idempotent and safe to run from several processes at
    /// once; applied versions are recorded in `keycard_migrations`.
    ///
    /// # Errors
    /// [`StoreError::Backend`] if a statement fails.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        let table = self.queries.table.clone();
        self.pool
            .run(move |conn| migrate(conn, &table, MIGRATIONS))
            .await
    }
}

fn read(row: &Row<'_>) -> rusqlite::Result<(OneTimeRow0, i64, i64)> {
    Ok((
        OneTimeRow0 {
            id: row.get(0)?,
            user_id: row.get(1)?,
            purpose: row.get(2)?,
            secret_hash: row.get(3)?,
            binding: row.get(4)?,
            payload: row.get(5)?,
        },
        row.get(6)?,
        row.get(7)?,
    ))
}

/// A row's columns before its times are decoded.
struct OneTimeRow0 {
    id: String,
    user_id: String,
    purpose: String,
    secret_hash: Vec<u8>,
    binding: Vec<u8>,
    payload: Option<String>,
}

fn decode((r, created, expires): (OneTimeRow0, i64, i64)) -> Result<OneTimeRecord, StoreError> {
    OneTimeRow {
        id: r.id,
        user_id: r.user_id,
        purpose: r.purpose,
        secret_hash: r.secret_hash,
        binding: r.binding,
        payload: r.payload,
        created_at: from_micros(created)?,
        expires_at: from_micros(expires)?,
    }
    .into_record()
}

#[async_trait]
impl OneTimeTokenStore for SqliteOneTimeStore {
    async fn issue(
        &self,
        record: &OneTimeRecord,
        max_outstanding: u32,
        now: OffsetDateTime,
    ) -> Result<u64, StoreError> {
        let q = Arc::clone(&self.queries);
        let r = record.clone();
        let now = to_micros(now);
        let keep = keep_others(max_outstanding);
        self.pool
            .run(move |conn| {
                let tx = conn
                    .transaction_with_behavior(TransactionBehavior::Immediate)
                    .map_err(backend)?;
                let id = r.id.to_string();
                let inserted = tx
                    .prepare_cached(&q.insert)
                    .and_then(|mut st| {
                        st.execute(params![
                            id,
                            r.user_id.as_str(),
                            r.purpose.name(),
                            r.secret_hash.as_bytes().as_slice(),
                            r.binding.as_bytes().as_slice(),
                            r.payload,
                            to_micros(r.created_at),
                            to_micros(r.expires_at),
                        ])
                    })
                    .map_err(backend)?;
                if inserted != 1 {
                    return Err(StoreError::Duplicate);
                }
                tx.prepare_cached(&q.delete_expired_of)
                    .and_then(|mut st| {
                        st.execute(params![r.user_id.as_str(), r.purpose.name(), now])
                    })
                    .map_err(backend)?;
                let retired = tx
                    .prepare_cached(&q.retire_excess)
                    .and_then(|mut st| {
                        st.execute(params![r.user_id.as_str(), r.purpose.name(), id, keep])
                    })
                    .map_err(backend)?;
                tx.commit().map_err(backend)?;
                Ok(retired as u64)
            })
            .await
    }

    async fn find(
        &self,
        id: &OneTimeId,
        now: OffsetDateTime,
    ) -> Result<Option<OneTimeRecord>, StoreError> {
        let q = Arc::clone(&self.queries);
        let id = id.to_string();
        let now = to_micros(now);
        let row = self
            .pool
            .read(move |conn| {
                conn.prepare_cached(&q.find)
                    .and_then(|mut st| st.query_row(params![id, now], read).optional())
            })
            .await?;
        row.map(decode).transpose()
    }

    async fn consume(
        &self,
        id: &OneTimeId,
        purpose: &OneTimePurpose,
        secret_hash: &SecretHash,
        now: OffsetDateTime,
    ) -> Result<Option<OneTimeRecord>, StoreError> {
        let q = Arc::clone(&self.queries);
        let id = id.to_string();
        let purpose = purpose.name().to_owned();
        let digest = *secret_hash.as_bytes();
        let now = to_micros(now);
        let row = self
            .pool
            .run(move |conn| {
                conn.prepare_cached(&q.consume)
                    .and_then(|mut st| {
                        st.query_row(params![id, purpose, digest.as_slice(), now], read)
                            .optional()
                    })
                    .map_err(backend)
            })
            .await?;
        row.map(decode).transpose()
    }

    async fn retire_all(&self, user: &UserId, purpose: &OneTimePurpose) -> Result<u64, StoreError> {
        let q = Arc::clone(&self.queries);
        let user = user.as_str().to_owned();
        let purpose = purpose.name().to_owned();
        self.pool
            .run(move |conn| {
                conn.prepare_cached(&q.retire_all)
                    .and_then(|mut st| st.execute(params![user, purpose]))
                    .map(|n| n as u64)
                    .map_err(backend)
            })
            .await
    }

    async fn purge_expired(&self, now: OffsetDateTime) -> Result<u64, StoreError> {
        self.pool
            .delete_in_batches(
                &self.queries,
                |q| &q.purge_batch,
                to_micros(now),
                PURGE_BATCH,
            )
            .await
    }
}
