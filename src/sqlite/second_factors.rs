//! The SQLite second factor store.

use std::sync::Arc;

use async_trait::async_trait;
use rusqlite::{params, OptionalExtension, Row, TransactionBehavior};
use time::OffsetDateTime;

use super::{backend, migrate_with, Pool};
use crate::mfa::{RecoveryCodeDigest, SecondFactorStore, TotpRecord};
use crate::sql::second_factors::{
    check_sealed, count, distinct_codes, step_param, SecondFactorQueries, TotpRow, CODES_KEY,
};
use crate::sql::{InvalidTableName, Migration, Placeholders, TableName};
use crate::time_codec::{from_micros, to_micros};
use crate::{StoreError, UserId};

/// The schema changes of the two tables (recorded under the TOTP table's name), in order.
const MIGRATIONS: &[Migration] = &[Migration {
    version: 1,
    sql: include_str!("../../migrations/sqlite/second_factors_0001.sql"),
}];

/// Second factors (TOTP factors and recovery codes) in a SQLite file. Get one from
/// [`Sqlite::second_factor_store`](super::Sqlite::second_factor_store).
///
/// Two tables, created together by [`migrate`](Self::migrate) (or
/// [`Sqlite::migrate`](super::Sqlite::migrate)) and recorded in `keycard_migrations` under
/// the TOTP table's name; the schema ships in `migrations/sqlite/second_factors_0001.sql`.
/// The TOTP table (default `keycard_totp`):
///
/// | column | type | |
/// |---|---|---|
/// | `user_id` | `TEXT PRIMARY KEY` | one factor per user |
/// | `sealed_secret` | `BLOB` | the secret sealed with the application's key (at most 255 bytes) |
/// | `created_at` | `INTEGER` | Unix microseconds |
/// | `confirmed_at` | `INTEGER NULL` | Unix microseconds; `NULL` while enrolment waits for a code |
/// | `last_step` | `INTEGER NULL` | the last time step whose code was accepted |
///
/// The recovery codes table (default `keycard_recovery_codes`):
///
/// | column | type | |
/// |---|---|---|
/// | `user_id`, `digest` | `TEXT`, `BLOB` | primary key; the digest is SHA-256 of the user and the code (32 bytes) |
/// | `created_at` | `INTEGER` | Unix microseconds |
///
/// No plain secret and no code is stored. Every promise of the contract is one statement:
/// beginning an enrolment is one upsert that replaces only an unconfirmed factor; confirming,
/// using a time step (a compare-and-set on `last_step`) and resealing are one `UPDATE`
/// each, and using a recovery code one `DELETE`, each judged by the rows it changed, so of
/// concurrent calls from any process on the file exactly one wins. Replacing the recovery
/// codes (delete, then insert; a digest given twice is kept once) is one `BEGIN IMMEDIATE`
/// transaction. A sealed secret over [`TotpRecord::MAX_SEALED_LEN`] bytes or more than 64
/// codes are refused with [`StoreError::Backend`], writing nothing.
#[derive(Debug, Clone)]
pub struct SqliteSecondFactorStore {
    pool: Arc<Pool>,
    queries: Arc<SecondFactorQueries>,
}

impl SqliteSecondFactorStore {
    /// The default TOTP table name.
    pub const DEFAULT_TOTP_TABLE: &'static str = "keycard_totp";
    /// The default recovery codes table name.
    pub const DEFAULT_RECOVERY_CODES_TABLE: &'static str = "keycard_recovery_codes";

    /// A store on an open pool (the [`Sqlite`](super::Sqlite) handle's), default tables.
    pub(crate) fn from_pool(pool: Arc<Pool>) -> Self {
        Self {
            pool,
            queries: Arc::new(SecondFactorQueries::new(
                TableName::builtin(Self::DEFAULT_TOTP_TABLE),
                TableName::builtin(Self::DEFAULT_RECOVERY_CODES_TABLE),
                Placeholders::Question,
            )),
        }
    }

    /// Uses `totp` and `recovery_codes` instead of `keycard_totp` and
    /// `keycard_recovery_codes`. Migrations are recorded under the TOTP table's name, so
    /// change both names together, before the first [`migrate`](Self::migrate).
    ///
    /// # Errors
    /// [`InvalidTableName`] unless each is a plain identifier (`[A-Za-z_][A-Za-z0-9_]*`), or
    /// if both are the same.
    pub fn with_tables(
        mut self,
        totp: &str,
        recovery_codes: &str,
    ) -> Result<Self, InvalidTableName> {
        let totp_table = TableName::parse(totp, false)?;
        let codes_table = TableName::parse(recovery_codes, false)?;
        if totp_table.name.eq_ignore_ascii_case(&codes_table.name) {
            return Err(InvalidTableName(recovery_codes.to_owned()));
        }
        self.queries = Arc::new(SecondFactorQueries::new(
            totp_table,
            codes_table,
            Placeholders::Question,
        ));
        Ok(self)
    }

    /// Creates or upgrades both tables. Idempotent and safe to run from several processes at
    /// once (one `BEGIN IMMEDIATE` transaction); applied versions are recorded in
    /// `keycard_migrations`.
    ///
    /// # Errors
    /// [`StoreError::Backend`] if a statement fails.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        let q = Arc::clone(&self.queries);
        self.pool
            .run(move |conn| {
                migrate_with(
                    conn,
                    &q.totp_table,
                    &[(CODES_KEY, &q.codes_table)],
                    MIGRATIONS,
                )
            })
            .await
    }

    /// One `UPDATE` or `DELETE` of `sql` with `values`; whether it changed exactly one row.
    async fn changed_one<P>(
        &self,
        sql: fn(&SecondFactorQueries) -> &str,
        values: P,
    ) -> Result<bool, StoreError>
    where
        P: rusqlite::Params + Send + 'static,
    {
        let q = Arc::clone(&self.queries);
        self.pool
            .run(move |conn| {
                conn.prepare_cached(sql(&q))
                    .and_then(|mut st| st.execute(values))
                    .map(|n| n == 1)
                    .map_err(backend)
            })
            .await
    }
}

/// A TOTP row's columns before its times are decoded.
type Columns = (String, Vec<u8>, i64, Option<i64>, Option<i64>);

fn read(row: &Row<'_>) -> rusqlite::Result<Columns> {
    Ok((
        row.get(0)?,
        row.get(1)?,
        row.get(2)?,
        row.get(3)?,
        row.get(4)?,
    ))
}

fn decode(
    (user_id, sealed_secret, created, confirmed, last_step): Columns,
) -> Result<TotpRecord, StoreError> {
    TotpRow {
        user_id,
        sealed_secret,
        created_at: from_micros(created)?,
        confirmed_at: confirmed.map(from_micros).transpose()?,
        last_step,
    }
    .into_record()
}

#[async_trait]
impl SecondFactorStore for SqliteSecondFactorStore {
    async fn totp(&self, user: &UserId) -> Result<Option<TotpRecord>, StoreError> {
        let q = Arc::clone(&self.queries);
        let user = user.as_str().to_owned();
        let row = self
            .pool
            .read(move |conn| {
                conn.prepare_cached(&q.totp)
                    .and_then(|mut st| st.query_row(params![user], read).optional())
            })
            .await?;
        row.map(decode).transpose()
    }

    async fn begin_totp(&self, record: &TotpRecord) -> Result<bool, StoreError> {
        check_sealed(&record.sealed_secret)?;
        let last_step = record.last_step.map(step_param).transpose()?;
        let values = (
            record.user_id.as_str().to_owned(),
            record.sealed_secret.clone(),
            to_micros(record.created_at),
            record.confirmed_at.map(to_micros),
            last_step,
        );
        self.changed_one(|q| &q.begin, values).await
    }

    async fn confirm_totp(
        &self,
        user: &UserId,
        sealed_secret: &[u8],
        step: u64,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let values = (
            user.as_str().to_owned(),
            sealed_secret.to_vec(),
            to_micros(now),
            step_param(step)?,
        );
        self.changed_one(|q| &q.confirm, values).await
    }

    async fn use_totp_step(&self, user: &UserId, step: u64) -> Result<bool, StoreError> {
        let values = (user.as_str().to_owned(), step_param(step)?);
        self.changed_one(|q| &q.use_step, values).await
    }

    async fn reseal_totp(&self, user: &UserId, old: &[u8], new: &[u8]) -> Result<bool, StoreError> {
        check_sealed(new)?;
        let values = (user.as_str().to_owned(), old.to_vec(), new.to_vec());
        self.changed_one(|q| &q.reseal, values).await
    }

    async fn remove_totp(&self, user: &UserId) -> Result<bool, StoreError> {
        self.changed_one(|q| &q.remove, (user.as_str().to_owned(),))
            .await
    }

    async fn replace_recovery_codes(
        &self,
        user: &UserId,
        codes: &[RecoveryCodeDigest],
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        let codes = distinct_codes(codes)?;
        let q = Arc::clone(&self.queries);
        let user = user.as_str().to_owned();
        let now = to_micros(now);
        self.pool
            .run(move |conn| {
                let tx = conn
                    .transaction_with_behavior(TransactionBehavior::Immediate)
                    .map_err(backend)?;
                tx.prepare_cached(&q.delete_codes)
                    .and_then(|mut st| st.execute(params![user]))
                    .map_err(backend)?;
                {
                    let mut insert = tx.prepare_cached(&q.insert_code).map_err(backend)?;
                    for digest in &codes {
                        insert
                            .execute(params![user, digest.as_slice(), now])
                            .map_err(backend)?;
                    }
                }
                tx.commit().map_err(backend)
            })
            .await
    }

    async fn use_recovery_code(
        &self,
        user: &UserId,
        code: &RecoveryCodeDigest,
    ) -> Result<bool, StoreError> {
        let values = (user.as_str().to_owned(), code.as_bytes().to_vec());
        self.changed_one(|q| &q.use_code, values).await
    }

    async fn recovery_codes_left(&self, user: &UserId) -> Result<u32, StoreError> {
        let q = Arc::clone(&self.queries);
        let user = user.as_str().to_owned();
        let n = self
            .pool
            .read(move |conn| {
                conn.prepare_cached(&q.codes_left)
                    .and_then(|mut st| st.query_row(params![user], |r| r.get::<_, i64>(0)))
            })
            .await?;
        count(n)
    }
}
