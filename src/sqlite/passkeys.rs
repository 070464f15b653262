//! The SQLite passkey store.

use std::sync::Arc;

use async_trait::async_trait;
use rusqlite::{params, OptionalExtension, Row, TransactionBehavior};
use time::OffsetDateTime;

use super::{backend, migrate, Pool};
use crate::mfa::{PasskeyAdded, PasskeyRecord, PasskeyStore};
use crate::sql::passkeys::{
    cap, check_name, check_passkey, check_record, PasskeyQueries, PasskeyRow,
};
use crate::sql::{InvalidTableName, Migration, Placeholders, TableName};
use crate::time_codec::{from_micros, to_micros};
use crate::{StoreError, UserId};

/// The schema changes of the passkeys table, in order.
const MIGRATIONS: &[Migration] = &[Migration {
    version: 1,
    sql: include_str!("../../migrations/sqlite/passkeys_0001.sql"),
}];

/// Passkeys (WebAuthn credentials) in a SQLite file. Get one from
/// [`Sqlite::passkey_store`](super::Sqlite::passkey_store). Needs no `passkeys` feature: it
/// keeps the credential as JSON text.
///
/// The table (default `keycard_passkeys`) is created by [`migrate`](Self::migrate) (or
/// [`Sqlite::migrate`](super::Sqlite::migrate)); its schema ships in
/// `migrations/sqlite/passkeys_0001.sql`:
///
/// | column | type | |
/// |---|---|---|
/// | `user_id` | `TEXT` | indexed with `created_at` |
/// | `credential_id` | `BLOB PRIMARY KEY` | the WebAuthn credential id (1 to 255 bytes), unique across users |
/// | `name` | `TEXT` | the name the user gave it (at most 64 characters) |
/// | `passkey` | `TEXT` | the webauthn-rs `Passkey` as JSON: public key, counter, backup state (at most 8192 bytes) |
/// | `created_at` | `INTEGER` | Unix microseconds |
/// | `last_used_at` | `INTEGER NULL` | Unix microseconds; `NULL` if never used |
///
/// No secret is stored: a passkey's private key never leaves the authenticator. Adding
/// (refuse a taken credential id, count the user's passkeys against the cap, insert) is one
/// `BEGIN IMMEDIATE` transaction, so adds are serialized across every process on the file
/// and the cap holds under concurrency. Recording a use, renaming and removing are one
/// statement each; renaming and removing match the user and the credential id together, so
/// nobody touches another user's passkey. A credential id empty or over
/// [`PasskeyRecord::MAX_CREDENTIAL_ID_LEN`] bytes, a name over
/// [`PasskeyRecord::MAX_NAME_LEN`] characters or a passkey over
/// [`PasskeyRecord::MAX_PASSKEY_LEN`] bytes is refused with [`StoreError::Backend`],
/// writing nothing.
#[derive(Debug, Clone)]
pub struct SqlitePasskeyStore {
    pool: Arc<Pool>,
    queries: Arc<PasskeyQueries>,
}

impl SqlitePasskeyStore {
    /// The default table name.
    pub const DEFAULT_TABLE: &'static str = "keycard_passkeys";

    /// A store on an open pool (the [`Sqlite`](super::Sqlite) handle's), default table.
    pub(crate) fn from_pool(pool: Arc<Pool>) -> Self {
        Self {
            pool,
            queries: Arc::new(PasskeyQueries::new(
                TableName::builtin(Self::DEFAULT_TABLE),
                Placeholders::Question,
            )),
        }
    }

    /// Uses `table` instead of `keycard_passkeys`.
    ///
    /// # Errors
    /// [`InvalidTableName`] unless `table` is a plain identifier (`[A-Za-z_][A-Za-z0-9_]*`).
    pub fn with_table(mut self, table: &str) -> Result<Self, InvalidTableName> {
        self.queries = Arc::new(PasskeyQueries::new(
            TableName::parse(table, false)?,
            Placeholders::Question,
        ));
        Ok(self)
    }

    /// Creates or upgrades the table. Idempotent and safe to run from several processes at
    /// once (one `BEGIN IMMEDIATE` transaction); applied versions are recorded in
    /// `keycard_migrations`.
    ///
    /// # Errors
    /// [`StoreError::Backend`] if a statement fails.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        let table = self.queries.table.clone();
        self.pool
            .run(move |conn| migrate(conn, &table, MIGRATIONS))
            .await
    }

    /// One `UPDATE` or `DELETE` of `sql` with `values`; whether it changed exactly one row.
    async fn changed_one<P>(
        &self,
        sql: fn(&PasskeyQueries) -> &str,
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

/// A passkey row's columns before its times are decoded.
type Columns = (String, Vec<u8>, String, String, i64, Option<i64>);

fn read(row: &Row<'_>) -> rusqlite::Result<Columns> {
    Ok((
        row.get(0)?,
        row.get(1)?,
        row.get(2)?,
        row.get(3)?,
        row.get(4)?,
        row.get(5)?,
    ))
}

fn decode(
    (user_id, credential_id, name, passkey, created, last_used): Columns,
) -> Result<PasskeyRecord, StoreError> {
    Ok(PasskeyRow {
        user_id,
        credential_id,
        name,
        passkey,
        created_at: from_micros(created)?,
        last_used_at: last_used.map(from_micros).transpose()?,
    }
    .into_record())
}

#[async_trait]
impl PasskeyStore for SqlitePasskeyStore {
    async fn add(
        &self,
        record: &PasskeyRecord,
        max_per_user: u32,
    ) -> Result<PasskeyAdded, StoreError> {
        check_record(record)?;
        let q = Arc::clone(&self.queries);
        let values = (
            record.user_id.as_str().to_owned(),
            record.credential_id.clone(),
            record.name.clone(),
            record.passkey.clone(),
            to_micros(record.created_at),
            record.last_used_at.map(to_micros),
        );
        let max = cap(max_per_user);
        self.pool
            .run(move |conn| {
                let tx = conn
                    .transaction_with_behavior(TransactionBehavior::Immediate)
                    .map_err(backend)?;
                let count = |sql: &str, value: &dyn rusqlite::ToSql| {
                    tx.prepare_cached(sql)
                        .and_then(|mut st| st.query_row([value], |r| r.get::<_, i64>(0)))
                        .map_err(backend)
                };
                if count(&q.taken, &values.1)? > 0 {
                    return Ok(PasskeyAdded::Duplicate);
                }
                if count(&q.count, &values.0)? >= max {
                    return Ok(PasskeyAdded::TooMany);
                }
                let inserted = tx
                    .prepare_cached(&q.insert)
                    .and_then(|mut st| st.execute(values))
                    .map_err(backend)?;
                tx.commit().map_err(backend)?;
                Ok(match inserted {
                    1 => PasskeyAdded::Added,
                    _ => PasskeyAdded::Duplicate,
                })
            })
            .await
    }

    async fn list(&self, user: &UserId) -> Result<Vec<PasskeyRecord>, StoreError> {
        let q = Arc::clone(&self.queries);
        let user = user.as_str().to_owned();
        let rows = self
            .pool
            .read(move |conn| {
                conn.prepare_cached(&q.list).and_then(|mut st| {
                    st.query_map(params![user], read)?
                        .collect::<rusqlite::Result<Vec<_>>>()
                })
            })
            .await?;
        rows.into_iter().map(decode).collect()
    }

    async fn find(&self, credential_id: &[u8]) -> Result<Option<PasskeyRecord>, StoreError> {
        let q = Arc::clone(&self.queries);
        let id = credential_id.to_vec();
        let row = self
            .pool
            .read(move |conn| {
                conn.prepare_cached(&q.find)
                    .and_then(|mut st| st.query_row(params![id], read).optional())
            })
            .await?;
        row.map(decode).transpose()
    }

    async fn update_after_use(
        &self,
        credential_id: &[u8],
        passkey: &str,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        check_passkey(passkey)?;
        let values = (credential_id.to_vec(), passkey.to_owned(), to_micros(now));
        self.changed_one(|q| &q.used, values).await
    }

    async fn rename(
        &self,
        user: &UserId,
        credential_id: &[u8],
        name: &str,
    ) -> Result<bool, StoreError> {
        check_name(name)?;
        let values = (
            user.as_str().to_owned(),
            credential_id.to_vec(),
            name.to_owned(),
        );
        self.changed_one(|q| &q.rename, values).await
    }

    async fn remove(&self, user: &UserId, credential_id: &[u8]) -> Result<bool, StoreError> {
        let values = (user.as_str().to_owned(), credential_id.to_vec());
        self.changed_one(|q| &q.remove, values).await
    }
}
