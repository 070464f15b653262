//! The PostgreSQL second factor store.

use std::sync::Arc;

use async_trait::async_trait;
use sha2::{Digest, Sha256};
use sqlx::postgres::PgPool;
use time::OffsetDateTime;

use super::{error, migrate_with};
use crate::mfa::{RecoveryCodeDigest, SecondFactorStore, TotpRecord};
use crate::session::truncate_to_micros;
use crate::sql::second_factors::{
    check_sealed, count, distinct_codes, step_param, SecondFactorQueries, TotpRow, CODES_KEY,
};
use crate::sql::{InvalidTableName, Migration, Placeholders, TableName};
use crate::{StoreError, UserId};

/// The schema changes of the two tables (recorded under the TOTP table's name), in order.
const MIGRATIONS: &[Migration] = &[Migration {
    version: 1,
    sql: include_str!("../../migrations/postgres/second_factors_0001.sql"),
}];

/// Second factors (TOTP factors and recovery codes) in PostgreSQL. Get one from
/// [`Postgres::second_factor_store`](super::Postgres::second_factor_store).
///
/// Two tables (optionally schema-qualified), created together by [`migrate`](Self::migrate)
/// (or [`Postgres::migrate`](super::Postgres::migrate)) and recorded in `keycard_migrations`
/// under the TOTP table's name; the schema ships in
/// `migrations/postgres/second_factors_0001.sql`. The TOTP table (default `keycard_totp`):
///
/// | column | type | |
/// |---|---|---|
/// | `user_id` | `TEXT PRIMARY KEY` | one factor per user |
/// | `sealed_secret` | `BYTEA` | the secret sealed with the application's key (at most 255 bytes) |
/// | `created_at` | `TIMESTAMPTZ` | |
/// | `confirmed_at` | `TIMESTAMPTZ NULL` | `NULL` while enrolment waits for a code |
/// | `last_step` | `BIGINT NULL` | the last time step whose code was accepted |
///
/// The recovery codes table (default `keycard_recovery_codes`):
///
/// | column | type | |
/// |---|---|---|
/// | `user_id`, `digest` | `TEXT`, `BYTEA` | primary key; the digest is SHA-256 of the user and the code (32 bytes) |
/// | `created_at` | `TIMESTAMPTZ` | |
///
/// No plain secret and no code is stored. Every promise of the contract is one statement:
/// beginning an enrolment is one `INSERT ... ON CONFLICT (user_id) DO UPDATE ... WHERE
/// confirmed_at IS NULL`; confirming, using a time step (a compare-and-set on `last_step`)
/// and resealing are one `UPDATE` each, and using a recovery code one `DELETE`, each judged
/// by the rows it changed, so of concurrent calls from any instance exactly one wins.
/// Replacing the recovery codes (delete, then insert; a digest given twice is kept once) is
/// one transaction under a transaction-scoped advisory lock on the user, so concurrent
/// replacements leave one whole set. A sealed secret over [`TotpRecord::MAX_SEALED_LEN`]
/// bytes or more than 64 codes are refused with [`StoreError::Backend`], writing nothing.
#[derive(Debug, Clone)]
pub struct PostgresSecondFactorStore {
    pool: PgPool,
    queries: Arc<SecondFactorQueries>,
}

impl PostgresSecondFactorStore {
    /// The default TOTP table name.
    pub const DEFAULT_TOTP_TABLE: &'static str = "keycard_totp";
    /// The default recovery codes table name.
    pub const DEFAULT_RECOVERY_CODES_TABLE: &'static str = "keycard_recovery_codes";

    /// Uses `pool` and the default tables. (Also
    /// [`Postgres::second_factor_store`](super::Postgres::second_factor_store).)
    pub fn new(pool: PgPool) -> Self {
        Self {
            pool,
            queries: Arc::new(SecondFactorQueries::new(
                TableName::builtin(Self::DEFAULT_TOTP_TABLE),
                TableName::builtin(Self::DEFAULT_RECOVERY_CODES_TABLE),
                Placeholders::Dollar,
            )),
        }
    }

    /// Uses `totp` and `recovery_codes` (each `name` or `schema.name`) instead of
    /// `keycard_totp` and `keycard_recovery_codes`. Migrations are recorded under the TOTP
    /// table's name (in its schema), so change both names together, before the first
    /// [`migrate`](Self::migrate).
    ///
    /// # Errors
    /// [`InvalidTableName`] unless each part is a plain identifier (`[A-Za-z_][A-Za-z0-9_]*`),
    /// or if both name the same table.
    pub fn with_tables(
        mut self,
        totp: &str,
        recovery_codes: &str,
    ) -> Result<Self, InvalidTableName> {
        let totp_table = TableName::parse(totp, true)?;
        let codes_table = TableName::parse(recovery_codes, true)?;
        if totp_table == codes_table {
            return Err(InvalidTableName(recovery_codes.to_owned()));
        }
        self.queries = Arc::new(SecondFactorQueries::new(
            totp_table,
            codes_table,
            Placeholders::Dollar,
        ));
        Ok(self)
    }

    /// The connection pool.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Creates or upgrades both tables (and their schemas, if qualified). Idempotent; one
    /// transaction under an advisory lock, so instances starting together do not race.
    ///
    /// # Errors
    /// [`StoreError::Backend`] if a statement fails.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        let q = &self.queries;
        migrate_with(
            &self.pool,
            &q.totp_table,
            &[(CODES_KEY, &q.codes_table)],
            MIGRATIONS,
        )
        .await
    }

    /// The advisory lock key of one user's recovery codes in this table.
    fn lock_key(&self, user: &UserId) -> i64 {
        let table = &self.queries.codes_table;
        let digest = Sha256::new()
            .chain_update(b"keycard recovery codes\0")
            .chain_update(table.schema.as_deref().unwrap_or("").as_bytes())
            .chain_update(b"\0")
            .chain_update(table.name.as_bytes())
            .chain_update(b"\0")
            .chain_update(user.as_str().as_bytes())
            .finalize();
        let mut key = [0u8; 8];
        key.copy_from_slice(&digest[..8]);
        i64::from_be_bytes(key)
    }

    /// Runs `query` (an `UPDATE` or `DELETE`); whether it changed exactly one row.
    async fn changed_one(
        &self,
        query: sqlx::query::Query<'_, sqlx::Postgres, sqlx::postgres::PgArguments>,
    ) -> Result<bool, StoreError> {
        let done = query.execute(&self.pool).await.map_err(error)?;
        Ok(done.rows_affected() == 1)
    }
}

type Tuple = (
    String,
    Vec<u8>,
    OffsetDateTime,
    Option<OffsetDateTime>,
    Option<i64>,
);

fn decode(row: Tuple) -> Result<TotpRecord, StoreError> {
    let (user_id, sealed_secret, created_at, confirmed_at, last_step) = row;
    TotpRow {
        user_id,
        sealed_secret,
        created_at,
        confirmed_at,
        last_step,
    }
    .into_record()
}

#[async_trait]
impl SecondFactorStore for PostgresSecondFactorStore {
    async fn totp(&self, user: &UserId) -> Result<Option<TotpRecord>, StoreError> {
        sqlx::query_as::<_, Tuple>(&self.queries.totp)
            .bind(user.as_str())
            .fetch_optional(&self.pool)
            .await
            .map_err(error)?
            .map(decode)
            .transpose()
    }

    async fn begin_totp(&self, record: &TotpRecord) -> Result<bool, StoreError> {
        check_sealed(&record.sealed_secret)?;
        let last_step = record.last_step.map(step_param).transpose()?;
        self.changed_one(
            sqlx::query(&self.queries.begin)
                .bind(record.user_id.as_str())
                .bind(record.sealed_secret.as_slice())
                .bind(truncate_to_micros(record.created_at))
                .bind(record.confirmed_at.map(truncate_to_micros))
                .bind(last_step),
        )
        .await
    }

    async fn confirm_totp(
        &self,
        user: &UserId,
        sealed_secret: &[u8],
        step: u64,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        self.changed_one(
            sqlx::query(&self.queries.confirm)
                .bind(user.as_str())
                .bind(sealed_secret)
                .bind(truncate_to_micros(now))
                .bind(step_param(step)?),
        )
        .await
    }

    async fn use_totp_step(&self, user: &UserId, step: u64) -> Result<bool, StoreError> {
        self.changed_one(
            sqlx::query(&self.queries.use_step)
                .bind(user.as_str())
                .bind(step_param(step)?),
        )
        .await
    }

    async fn reseal_totp(&self, user: &UserId, old: &[u8], new: &[u8]) -> Result<bool, StoreError> {
        check_sealed(new)?;
        self.changed_one(
            sqlx::query(&self.queries.reseal)
                .bind(user.as_str())
                .bind(old)
                .bind(new),
        )
        .await
    }

    async fn remove_totp(&self, user: &UserId) -> Result<bool, StoreError> {
        self.changed_one(sqlx::query(&self.queries.remove).bind(user.as_str()))
            .await
    }

    async fn replace_recovery_codes(
        &self,
        user: &UserId,
        codes: &[RecoveryCodeDigest],
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        let codes = distinct_codes(codes)?;
        let q = &self.queries;
        let now = truncate_to_micros(now);
        let mut tx = self.pool.begin().await.map_err(error)?;
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(self.lock_key(user))
            .execute(&mut *tx)
            .await
            .map_err(error)?;
        sqlx::query(&q.delete_codes)
            .bind(user.as_str())
            .execute(&mut *tx)
            .await
            .map_err(error)?;
        for digest in &codes {
            sqlx::query(&q.insert_code)
                .bind(user.as_str())
                .bind(digest.as_slice())
                .bind(now)
                .execute(&mut *tx)
                .await
                .map_err(error)?;
        }
        tx.commit().await.map_err(error)
    }

    async fn use_recovery_code(
        &self,
        user: &UserId,
        code: &RecoveryCodeDigest,
    ) -> Result<bool, StoreError> {
        self.changed_one(
            sqlx::query(&self.queries.use_code)
                .bind(user.as_str())
                .bind(code.as_bytes().as_slice()),
        )
        .await
    }

    async fn recovery_codes_left(&self, user: &UserId) -> Result<u32, StoreError> {
        let n: i64 = sqlx::query_scalar(&self.queries.codes_left)
            .bind(user.as_str())
            .fetch_one(&self.pool)
            .await
            .map_err(error)?;
        count(n)
    }
}
