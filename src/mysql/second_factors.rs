//! The MySQL / MariaDB second factor store.

use std::sync::Arc;

use async_trait::async_trait;
use sha2::{Digest, Sha256};
use sqlx::mysql::{MySqlConnection, MySqlPool};
use sqlx::Connection as _;
use time::OffsetDateTime;

use super::migrate::{migrate_with, parse_table, quoted};
use super::{error, is_deadlock, is_duplicate, text, NamedLock, DEADLOCK_RETRIES};
use crate::mfa::{RecoveryCodeDigest, SecondFactorStore, TotpRecord};
use crate::sql::second_factors::{
    check_sealed, count, distinct_codes, step_param, TotpRow, CODES_KEY, TOTP_COLUMNS,
};
use crate::sql::{InvalidTableName, Migration, TableName};
use crate::time_codec::{from_micros, to_micros};
use crate::{StoreError, UserId};

/// How long an enrolment or a replacement of recovery codes waits for a concurrent one for
/// the same user, in seconds.
const LOCK_WAIT_SECS: i64 = 10;

/// The schema changes of the two tables (recorded under the TOTP table's name), in order.
const MIGRATIONS: &[Migration] = &[Migration {
    version: 1,
    sql: include_str!("../../migrations/mysql/second_factors_0001.sql"),
}];

/// Second factors (TOTP factors and recovery codes) in MySQL or MariaDB. Get one from
/// [`Mysql::second_factor_store`](super::Mysql::second_factor_store).
///
/// Two tables (optionally `database.table`), created together by [`migrate`](Self::migrate)
/// (or [`Mysql::migrate`](super::Mysql::migrate)) and recorded in `keycard_migrations` under
/// the TOTP table's name; the schema ships in `migrations/mysql/second_factors_0001.sql`. The
/// TOTP table (default `keycard_totp`):
///
/// | column | type | |
/// |---|---|---|
/// | `user_id` | `VARBINARY(767) PRIMARY KEY` | one factor per user |
/// | `sealed_secret` | `VARBINARY(255)` | the secret sealed with the application's key |
/// | `created_at` | `BIGINT` | Unix microseconds |
/// | `confirmed_at` | `BIGINT NULL` | Unix microseconds; `NULL` while enrolment waits for a code |
/// | `last_step` | `BIGINT NULL` | the last time step whose code was accepted |
///
/// The recovery codes table (default `keycard_recovery_codes`):
///
/// | column | type | |
/// |---|---|---|
/// | `user_id`, `digest` | `VARBINARY(767)`, `BINARY(32)` | primary key; the digest is SHA-256 of the user and the code |
/// | `created_at` | `BIGINT` | Unix microseconds |
///
/// No plain secret and no code is stored; ids and sealed secrets are binary strings, compared
/// byte for byte. Confirming, using a time step (a compare-and-set on `last_step`) and
/// resealing are one `UPDATE` each, and using a recovery code one `DELETE`, each judged by
/// the rows it matched (sqlx connects with `CLIENT_FOUND_ROWS`; each statement's conditions
/// exclude the rows it would leave unchanged), so of concurrent calls from any instance
/// exactly one wins. Beginning an enrolment is one transaction that locks the user's row
/// (`SELECT ... FOR UPDATE`) and replaces it only while unconfirmed; replacing the recovery
/// codes (delete, then insert; a digest given twice is kept once) is one transaction. Both
/// run under a server-wide named lock of the user (`GET_LOCK`, a digest of the table and the
/// user), so concurrent ones for one user, from any instance, queue (InnoDB's gap locks would
/// make them deadlock instead), and are retried if InnoDB still picks them as a deadlock
/// victim. A sealed secret over
/// [`TotpRecord::MAX_SEALED_LEN`] bytes or more than 64 codes are refused with
/// [`StoreError::Backend`], writing nothing.
#[derive(Debug, Clone)]
pub struct MysqlSecondFactorStore {
    pool: MySqlPool,
    queries: Arc<Queries>,
}

impl MysqlSecondFactorStore {
    /// The default TOTP table name.
    pub const DEFAULT_TOTP_TABLE: &'static str = "keycard_totp";
    /// The default recovery codes table name.
    pub const DEFAULT_RECOVERY_CODES_TABLE: &'static str = "keycard_recovery_codes";

    /// Uses `pool` and the default tables. (Also
    /// [`Mysql::second_factor_store`](super::Mysql::second_factor_store).)
    pub fn new(pool: MySqlPool) -> Self {
        Self {
            pool,
            queries: Arc::new(Queries::new(
                TableName::builtin(Self::DEFAULT_TOTP_TABLE),
                TableName::builtin(Self::DEFAULT_RECOVERY_CODES_TABLE),
            )),
        }
    }

    /// Uses `totp` and `recovery_codes` (each `name` or `database.name`) instead of
    /// `keycard_totp` and `keycard_recovery_codes`. Migrations are recorded under the TOTP
    /// table's name (in its database), so change both names together, before the first
    /// [`migrate`](Self::migrate).
    ///
    /// # Errors
    /// [`InvalidTableName`] unless each part is a plain identifier (`[A-Za-z_][A-Za-z0-9_]*`)
    /// and each name at most 52 bytes, or if both name the same table.
    pub fn with_tables(
        mut self,
        totp: &str,
        recovery_codes: &str,
    ) -> Result<Self, InvalidTableName> {
        let totp_table = parse_table(totp)?;
        let codes_table = parse_table(recovery_codes)?;
        if totp_table.schema == codes_table.schema
            && totp_table.name.eq_ignore_ascii_case(&codes_table.name)
        {
            return Err(InvalidTableName(recovery_codes.to_owned()));
        }
        self.queries = Arc::new(Queries::new(totp_table, codes_table));
        Ok(self)
    }

    /// The connection pool.
    pub fn pool(&self) -> &MySqlPool {
        &self.pool
    }

    /// Creates or upgrades both tables. Idempotent and safe to run from several instances at
    /// once (see [`Mysql::migrate`](super::Mysql::migrate)).
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

    /// The named lock (`GET_LOCK`) of one user's second factors in these tables: at most 64
    /// characters, so a digest.
    fn lock_name(&self, user: &UserId) -> String {
        let table = &self.queries.totp_table;
        let digest = Sha256::new()
            .chain_update(b"keycard second factors\0")
            .chain_update(table.schema.as_deref().unwrap_or("").as_bytes())
            .chain_update(b"\0")
            .chain_update(table.name.as_bytes())
            .chain_update(b"\0")
            .chain_update(user.as_str().as_bytes())
            .finalize();
        let hex: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
        format!("kc_2fa_{hex}")
    }

    /// Runs `query` (an `UPDATE` or `DELETE`); whether it matched exactly one row.
    async fn changed_one(
        &self,
        query: sqlx::query::Query<'_, sqlx::MySql, sqlx::mysql::MySqlArguments>,
    ) -> Result<bool, StoreError> {
        let done = query.execute(&self.pool).await.map_err(error)?;
        Ok(done.rows_affected() == 1)
    }

    /// One attempt at [`begin_totp`](SecondFactorStore::begin_totp): lock the user's row (or
    /// the gap where it would be), then insert, replace a pending factor, or refuse.
    async fn try_begin(
        &self,
        conn: &mut MySqlConnection,
        record: &TotpRecord,
        last_step: Option<i64>,
    ) -> Result<bool, sqlx::Error> {
        let q = &self.queries;
        let user = record.user_id.as_str();
        let mut tx = conn.begin().await?;
        let existing: Option<Option<i64>> = sqlx::query_scalar(&q.lock_confirmed_at)
            .bind(user)
            .fetch_optional(&mut *tx)
            .await?;
        let sql = match existing {
            Some(Some(_)) => {
                tx.rollback().await?;
                return Ok(false);
            }
            Some(None) => &q.replace_pending,
            None => &q.insert_totp,
        };
        sqlx::query(sql)
            .bind(record.sealed_secret.as_slice())
            .bind(to_micros(record.created_at))
            .bind(record.confirmed_at.map(to_micros))
            .bind(last_step)
            .bind(user)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// One attempt at [`replace_recovery_codes`](SecondFactorStore::replace_recovery_codes).
    async fn try_replace(
        &self,
        conn: &mut MySqlConnection,
        user: &UserId,
        codes: &[[u8; 32]],
        now: i64,
    ) -> Result<(), sqlx::Error> {
        let q = &self.queries;
        let mut tx = conn.begin().await?;
        sqlx::query(&q.delete_codes)
            .bind(user.as_str())
            .execute(&mut *tx)
            .await?;
        for digest in codes {
            sqlx::query(&q.insert_code)
                .bind(user.as_str())
                .bind(digest.as_slice())
                .bind(now)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await
    }
}

/// Whether a failed transaction is worth running again: InnoDB picked it as a deadlock
/// victim, or a concurrent transaction inserted the key it was about to (rolled back, the
/// next attempt sees that row).
fn retryable(e: &sqlx::Error) -> bool {
    is_deadlock(e) || is_duplicate(e)
}

/// A TOTP row as selected.
type Tuple = (Vec<u8>, Vec<u8>, i64, Option<i64>, Option<i64>);

fn decode(row: Tuple) -> Result<TotpRecord, StoreError> {
    let (user_id, sealed_secret, created_at, confirmed_at, last_step) = row;
    TotpRow {
        user_id: text(user_id)?,
        sealed_secret,
        created_at: from_micros(created_at)?,
        confirmed_at: confirmed_at.map(from_micros).transpose()?,
        last_step,
    }
    .into_record()
}

#[async_trait]
impl SecondFactorStore for MysqlSecondFactorStore {
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
        let mut lock = NamedLock::acquire(
            &self.pool,
            self.lock_name(&record.user_id),
            LOCK_WAIT_SECS,
            "TOTP enrolment",
        )
        .await
        .map_err(error)?;
        let mut attempt = 0;
        let begun = loop {
            match self.try_begin(lock.conn(), record, last_step).await {
                Err(e) if retryable(&e) && attempt < DEADLOCK_RETRIES => attempt += 1,
                done => break done,
            }
        };
        let released = lock.release().await;
        let begun = begun.map_err(error)?;
        released.map_err(error)?;
        Ok(begun)
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
                .bind(to_micros(now))
                .bind(step_param(step)?)
                .bind(user.as_str())
                .bind(sealed_secret),
        )
        .await
    }

    async fn use_totp_step(&self, user: &UserId, step: u64) -> Result<bool, StoreError> {
        let step = step_param(step)?;
        self.changed_one(
            sqlx::query(&self.queries.use_step)
                .bind(step)
                .bind(user.as_str())
                .bind(step),
        )
        .await
    }

    async fn reseal_totp(&self, user: &UserId, old: &[u8], new: &[u8]) -> Result<bool, StoreError> {
        check_sealed(new)?;
        self.changed_one(
            sqlx::query(&self.queries.reseal)
                .bind(new)
                .bind(user.as_str())
                .bind(old),
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
        let now = to_micros(now);
        let mut lock = NamedLock::acquire(
            &self.pool,
            self.lock_name(user),
            LOCK_WAIT_SECS,
            "replacement of recovery codes",
        )
        .await
        .map_err(error)?;
        let mut attempt = 0;
        let replaced = loop {
            match self.try_replace(lock.conn(), user, &codes, now).await {
                Err(e) if retryable(&e) && attempt < DEADLOCK_RETRIES => attempt += 1,
                done => break done,
            }
        };
        let released = lock.release().await;
        replaced.map_err(error)?;
        released.map_err(error)
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

/// The statements over the two tables.
#[derive(Debug)]
struct Queries {
    totp_table: TableName,
    codes_table: TableName,
    totp: String,
    /// `(user)`: the row's `confirmed_at`, locked (or the gap where the row would be).
    lock_confirmed_at: String,
    /// `(sealed secret, created at, confirmed at, last step, user)`.
    insert_totp: String,
    /// `(sealed secret, created at, confirmed at, last step, user)`.
    replace_pending: String,
    /// `(confirmed at, step, user, sealed secret)`.
    confirm: String,
    /// `(step, user, step)`.
    use_step: String,
    /// `(new, user, old)`.
    reseal: String,
    remove: String,
    delete_codes: String,
    /// `(user, digest, created at)`.
    insert_code: String,
    /// `(user, digest)`.
    use_code: String,
    codes_left: String,
}

impl Queries {
    fn new(totp_table: TableName, codes_table: TableName) -> Self {
        let (t, c) = (quoted(&totp_table), quoted(&codes_table));
        Self {
            totp: format!("SELECT {TOTP_COLUMNS} FROM {t} WHERE user_id = ?"),
            lock_confirmed_at: format!("SELECT confirmed_at FROM {t} WHERE user_id = ? FOR UPDATE"),
            insert_totp: format!(
                "INSERT INTO {t} (sealed_secret, created_at, confirmed_at, last_step, user_id) \
                 VALUES (?, ?, ?, ?, ?)"
            ),
            replace_pending: format!(
                "UPDATE {t} SET sealed_secret = ?, created_at = ?, confirmed_at = ?, \
                 last_step = ? WHERE user_id = ? AND confirmed_at IS NULL"
            ),
            confirm: format!(
                "UPDATE {t} SET confirmed_at = ?, last_step = ? \
                 WHERE user_id = ? AND sealed_secret = ? AND confirmed_at IS NULL"
            ),
            use_step: format!(
                "UPDATE {t} SET last_step = ? WHERE user_id = ? \
                 AND confirmed_at IS NOT NULL AND (last_step IS NULL OR last_step < ?)"
            ),
            reseal: format!(
                "UPDATE {t} SET sealed_secret = ? WHERE user_id = ? AND sealed_secret = ?"
            ),
            remove: format!("DELETE FROM {t} WHERE user_id = ?"),
            delete_codes: format!("DELETE FROM {c} WHERE user_id = ?"),
            insert_code: format!("INSERT INTO {c} (user_id, digest, created_at) VALUES (?, ?, ?)"),
            use_code: format!("DELETE FROM {c} WHERE user_id = ? AND digest = ?"),
            codes_left: format!("SELECT COUNT(*) FROM {c} WHERE user_id = ?"),
            totp_table,
            codes_table,
        }
    }
}
