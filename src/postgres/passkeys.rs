//! The PostgreSQL passkey store.

use std::sync::Arc;

use async_trait::async_trait;
use sha2::{Digest, Sha256};
use sqlx::postgres::PgPool;
use time::OffsetDateTime;

use super::{error, migrate};
use crate::mfa::{PasskeyAdded, PasskeyRecord, PasskeyStore};
use crate::session::truncate_to_micros;
use crate::sql::passkeys::{
    cap, check_name, check_passkey, check_record, PasskeyQueries, PasskeyRow,
};
use crate::sql::{InvalidTableName, Migration, Placeholders, TableName};
use crate::{StoreError, UserId};

/// The schema changes of the passkeys table, in order.
const MIGRATIONS: &[Migration] = &[Migration {
    version: 1,
    sql: include_str!("../../migrations/postgres/passkeys_0001.sql"),
}];

/// Passkeys (WebAuthn credentials) in PostgreSQL. Get one from
/// [`Postgres::passkey_store`](super::Postgres::passkey_store). Needs no `passkeys` feature:
/// it keeps the credential as JSON text.
///
/// The table (default `keycard_passkeys`, optionally schema-qualified) is created by
/// [`migrate`](Self::migrate) (or [`Postgres::migrate`](super::Postgres::migrate)); its
/// schema ships in `migrations/postgres/passkeys_0001.sql`:
///
/// | column | type | |
/// |---|---|---|
/// | `user_id` | `TEXT` | indexed with `created_at` |
/// | `credential_id` | `BYTEA PRIMARY KEY` | the WebAuthn credential id (1 to 255 bytes), unique across users |
/// | `name` | `TEXT` | the name the user gave it (at most 64 characters) |
/// | `passkey` | `TEXT` | the webauthn-rs `Passkey` as JSON: public key, counter, backup state (at most 8192 bytes) |
/// | `created_at` | `TIMESTAMPTZ` | |
/// | `last_used_at` | `TIMESTAMPTZ NULL` | `NULL` if never used |
///
/// No secret is stored: a passkey's private key never leaves the authenticator. Adding
/// (refuse a taken credential id, count the user's passkeys against the cap, then `INSERT
/// ... ON CONFLICT (credential_id) DO NOTHING`) is one transaction under a
/// transaction-scoped advisory lock on the user, so concurrent adds for one user, from any
/// instance, queue and the cap holds. Recording a use, renaming and removing are one
/// statement each; renaming and removing match the user and the credential id together, so
/// nobody touches another user's passkey. A credential id empty or over
/// [`PasskeyRecord::MAX_CREDENTIAL_ID_LEN`] bytes, a name over
/// [`PasskeyRecord::MAX_NAME_LEN`] characters, a passkey over
/// [`PasskeyRecord::MAX_PASSKEY_LEN`] bytes, or a name or passkey holding a NUL character
/// (PostgreSQL text cannot; serialized JSON never does) is refused with
/// [`StoreError::Backend`], writing nothing.
#[derive(Debug, Clone)]
pub struct PostgresPasskeyStore {
    pool: PgPool,
    queries: Arc<PasskeyQueries>,
}

impl PostgresPasskeyStore {
    /// The default table name.
    pub const DEFAULT_TABLE: &'static str = "keycard_passkeys";

    /// Uses `pool` and the default table. (Also
    /// [`Postgres::passkey_store`](super::Postgres::passkey_store).)
    pub fn new(pool: PgPool) -> Self {
        Self {
            pool,
            queries: Arc::new(PasskeyQueries::new(
                TableName::builtin(Self::DEFAULT_TABLE),
                Placeholders::Dollar,
            )),
        }
    }

    /// Uses `table` (`name` or `schema.name`) instead of `keycard_passkeys`.
    ///
    /// # Errors
    /// [`InvalidTableName`] unless each part is a plain identifier (`[A-Za-z_][A-Za-z0-9_]*`).
    pub fn with_table(mut self, table: &str) -> Result<Self, InvalidTableName> {
        self.queries = Arc::new(PasskeyQueries::new(
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

    /// The advisory lock key of one user's passkeys in this table.
    fn lock_key(&self, user: &UserId) -> i64 {
        let table = &self.queries.table;
        let digest = Sha256::new()
            .chain_update(b"keycard passkeys\0")
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

/// Refuses text PostgreSQL cannot hold (a NUL character), naming the field.
fn check_no_nul(field: &str, text: &str) -> Result<(), StoreError> {
    if text.contains('\0') {
        return Err(StoreError::backend(format!(
            "a passkey {field} with a NUL character cannot be stored: PostgreSQL text cannot hold it"
        )));
    }
    Ok(())
}

type Tuple = (
    String,
    Vec<u8>,
    String,
    String,
    OffsetDateTime,
    Option<OffsetDateTime>,
);

fn decode(row: Tuple) -> PasskeyRecord {
    let (user_id, credential_id, name, passkey, created_at, last_used_at) = row;
    PasskeyRow {
        user_id,
        credential_id,
        name,
        passkey,
        created_at,
        last_used_at,
    }
    .into_record()
}

#[async_trait]
impl PasskeyStore for PostgresPasskeyStore {
    async fn add(
        &self,
        record: &PasskeyRecord,
        max_per_user: u32,
    ) -> Result<PasskeyAdded, StoreError> {
        check_record(record)?;
        check_no_nul("name", &record.name)?;
        check_no_nul("JSON", &record.passkey)?;
        let q = &self.queries;
        let user = record.user_id.as_str();
        let id = record.credential_id.as_slice();
        let mut tx = self.pool.begin().await.map_err(error)?;
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(self.lock_key(&record.user_id))
            .execute(&mut *tx)
            .await
            .map_err(error)?;
        let taken: i64 = sqlx::query_scalar(&q.taken)
            .bind(id)
            .fetch_one(&mut *tx)
            .await
            .map_err(error)?;
        if taken > 0 {
            return Ok(PasskeyAdded::Duplicate);
        }
        let owned: i64 = sqlx::query_scalar(&q.count)
            .bind(user)
            .fetch_one(&mut *tx)
            .await
            .map_err(error)?;
        if owned >= cap(max_per_user) {
            return Ok(PasskeyAdded::TooMany);
        }
        let inserted = sqlx::query(&q.insert)
            .bind(user)
            .bind(id)
            .bind(&record.name)
            .bind(&record.passkey)
            .bind(truncate_to_micros(record.created_at))
            .bind(record.last_used_at.map(truncate_to_micros))
            .execute(&mut *tx)
            .await
            .map_err(error)?
            .rows_affected();
        tx.commit().await.map_err(error)?;
        Ok(match inserted {
            1 => PasskeyAdded::Added,
            // Another user's concurrent add took the id first.
            _ => PasskeyAdded::Duplicate,
        })
    }

    async fn list(&self, user: &UserId) -> Result<Vec<PasskeyRecord>, StoreError> {
        let rows = sqlx::query_as::<_, Tuple>(&self.queries.list)
            .bind(user.as_str())
            .fetch_all(&self.pool)
            .await
            .map_err(error)?;
        Ok(rows.into_iter().map(decode).collect())
    }

    async fn find(&self, credential_id: &[u8]) -> Result<Option<PasskeyRecord>, StoreError> {
        Ok(sqlx::query_as::<_, Tuple>(&self.queries.find)
            .bind(credential_id)
            .fetch_optional(&self.pool)
            .await
            .map_err(error)?
            .map(decode))
    }

    async fn update_after_use(
        &self,
        credential_id: &[u8],
        passkey: &str,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        check_passkey(passkey)?;
        check_no_nul("JSON", passkey)?;
        self.changed_one(
            sqlx::query(&self.queries.used)
                .bind(credential_id)
                .bind(passkey)
                .bind(truncate_to_micros(now)),
        )
        .await
    }

    async fn rename(
        &self,
        user: &UserId,
        credential_id: &[u8],
        name: &str,
    ) -> Result<bool, StoreError> {
        check_name(name)?;
        check_no_nul("name", name)?;
        self.changed_one(
            sqlx::query(&self.queries.rename)
                .bind(user.as_str())
                .bind(credential_id)
                .bind(name),
        )
        .await
    }

    async fn remove(&self, user: &UserId, credential_id: &[u8]) -> Result<bool, StoreError> {
        self.changed_one(
            sqlx::query(&self.queries.remove)
                .bind(user.as_str())
                .bind(credential_id),
        )
        .await
    }
}
