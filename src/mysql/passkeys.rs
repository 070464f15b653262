//! The MySQL / MariaDB passkey store.

use std::sync::Arc;

use async_trait::async_trait;
use sha2::{Digest, Sha256};
use sqlx::mysql::{MySqlConnection, MySqlPool};
use sqlx::Connection as _;
use time::OffsetDateTime;

use super::migrate::{migrate, parse_table, quoted};
use super::{error, is_deadlock, is_duplicate, text, NamedLock, DEADLOCK_RETRIES};
use crate::mfa::{PasskeyAdded, PasskeyRecord, PasskeyStore};
use crate::sql::passkeys::{
    cap, check_name, check_passkey, check_record, PasskeyRow, LIST_ORDER, PASSKEY_COLUMNS,
};
use crate::sql::{InvalidTableName, Migration, TableName};
use crate::time_codec::{from_micros, to_micros};
use crate::{StoreError, UserId};

/// How long an add waits for a concurrent one for the same user, in seconds.
const LOCK_WAIT_SECS: i64 = 10;

/// The schema changes of the passkeys table, in order.
const MIGRATIONS: &[Migration] = &[Migration {
    version: 1,
    sql: include_str!("../../migrations/mysql/passkeys_0001.sql"),
}];

/// Passkeys (WebAuthn credentials) in MySQL or MariaDB. Get one from
/// [`Mysql::passkey_store`](super::Mysql::passkey_store). Needs no `passkeys` feature: it
/// keeps the credential as JSON text.
///
/// The table (default `keycard_passkeys`, optionally `database.table`) is created by
/// [`migrate`](Self::migrate) (or [`Mysql::migrate`](super::Mysql::migrate)); its schema
/// ships in `migrations/mysql/passkeys_0001.sql`:
///
/// | column | type | |
/// |---|---|---|
/// | `user_id` | `VARBINARY(767)` | indexed with `created_at` |
/// | `credential_id` | `VARBINARY(255) PRIMARY KEY` | the WebAuthn credential id, unique across users |
/// | `name` | `VARCHAR(64)` (`utf8mb4_bin`) | the name the user gave it |
/// | `passkey` | `TEXT` (`utf8mb4_bin`) | the webauthn-rs `Passkey` as JSON: public key, counter, backup state (at most 8192 bytes) |
/// | `created_at` | `BIGINT` | Unix microseconds |
/// | `last_used_at` | `BIGINT NULL` | Unix microseconds; `NULL` if never used |
///
/// No secret is stored: a passkey's private key never leaves the authenticator. Ids are
/// binary strings, compared byte for byte. Adding (refuse a taken credential id, count the
/// user's passkeys against the cap, insert; a duplicate key from a concurrent add of the same
/// id is [`PasskeyAdded::Duplicate`]) is one transaction under a server-wide named lock of
/// the user (`GET_LOCK`, a digest of the table and the user), so concurrent adds for one
/// user, from any instance, queue and the cap holds; it is retried if InnoDB picks it as a
/// deadlock victim. Recording a use, renaming and removing are one statement each, judged by
/// the rows matched; renaming and removing match the user and the credential id together,
/// so nobody touches another user's passkey. A credential id empty or over
/// [`PasskeyRecord::MAX_CREDENTIAL_ID_LEN`] bytes, a name over
/// [`PasskeyRecord::MAX_NAME_LEN`] characters or a passkey over
/// [`PasskeyRecord::MAX_PASSKEY_LEN`] bytes is refused with [`StoreError::Backend`],
/// writing nothing.
#[derive(Debug, Clone)]
pub struct MysqlPasskeyStore {
    pool: MySqlPool,
    queries: Arc<Queries>,
}

impl MysqlPasskeyStore {
    /// The default table name.
    pub const DEFAULT_TABLE: &'static str = "keycard_passkeys";

    /// Uses `pool` and the default table. (Also
    /// [`Mysql::passkey_store`](super::Mysql::passkey_store).)
    pub fn new(pool: MySqlPool) -> Self {
        Self {
            pool,
            queries: Arc::new(Queries::new(TableName::builtin(Self::DEFAULT_TABLE))),
        }
    }

    /// Uses `table` (`name` or `database.name`) instead of `keycard_passkeys`.
    ///
    /// # Errors
    /// [`InvalidTableName`] unless each part is a plain identifier (`[A-Za-z_][A-Za-z0-9_]*`)
    /// and the name at most 52 bytes.
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

    /// The named lock (`GET_LOCK`) of one user's passkeys in this table: at most 64
    /// characters, so a digest.
    fn lock_name(&self, user: &UserId) -> String {
        let table = &self.queries.table;
        let digest = Sha256::new()
            .chain_update(b"keycard passkeys\0")
            .chain_update(table.schema.as_deref().unwrap_or("").as_bytes())
            .chain_update(b"\0")
            .chain_update(table.name.as_bytes())
            .chain_update(b"\0")
            .chain_update(user.as_str().as_bytes())
            .finalize();
        let hex: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
        format!("kc_passkeys_{hex}")
    }

    /// Runs `query` (an `UPDATE` or `DELETE`); whether it matched exactly one row.
    async fn changed_one(
        &self,
        query: sqlx::query::Query<'_, sqlx::MySql, sqlx::mysql::MySqlArguments>,
    ) -> Result<bool, StoreError> {
        let done = query.execute(&self.pool).await.map_err(error)?;
        Ok(done.rows_affected() == 1)
    }

    /// One attempt at [`add`](PasskeyStore::add), the user's lock held.
    async fn try_add(
        &self,
        conn: &mut MySqlConnection,
        record: &PasskeyRecord,
        max: i64,
    ) -> Result<PasskeyAdded, sqlx::Error> {
        let q = &self.queries;
        let id = record.credential_id.as_slice();
        let mut tx = conn.begin().await?;
        let taken: i64 = sqlx::query_scalar(&q.taken)
            .bind(id)
            .fetch_one(&mut *tx)
            .await?;
        if taken > 0 {
            tx.rollback().await?;
            return Ok(PasskeyAdded::Duplicate);
        }
        let owned: i64 = sqlx::query_scalar(&q.count)
            .bind(record.user_id.as_str())
            .fetch_one(&mut *tx)
            .await?;
        if owned >= max {
            tx.rollback().await?;
            return Ok(PasskeyAdded::TooMany);
        }
        let inserted = sqlx::query(&q.insert)
            .bind(record.user_id.as_str())
            .bind(id)
            .bind(&record.name)
            .bind(&record.passkey)
            .bind(to_micros(record.created_at))
            .bind(record.last_used_at.map(to_micros))
            .execute(&mut *tx)
            .await;
        match inserted {
            // Another user's concurrent add took the id first.
            Err(e) if is_duplicate(&e) => {
                tx.rollback().await?;
                Ok(PasskeyAdded::Duplicate)
            }
            Err(e) => Err(e),
            Ok(_) => {
                tx.commit().await?;
                Ok(PasskeyAdded::Added)
            }
        }
    }
}

/// A passkey row as selected.
type Tuple = (Vec<u8>, Vec<u8>, Vec<u8>, Vec<u8>, i64, Option<i64>);

fn decode(row: Tuple) -> Result<PasskeyRecord, StoreError> {
    let (user_id, credential_id, name, passkey, created_at, last_used_at) = row;
    Ok(PasskeyRow {
        user_id: text(user_id)?,
        credential_id,
        name: text(name)?,
        passkey: text(passkey)?,
        created_at: from_micros(created_at)?,
        last_used_at: last_used_at.map(from_micros).transpose()?,
    }
    .into_record())
}

#[async_trait]
impl PasskeyStore for MysqlPasskeyStore {
    async fn add(
        &self,
        record: &PasskeyRecord,
        max_per_user: u32,
    ) -> Result<PasskeyAdded, StoreError> {
        check_record(record)?;
        let max = cap(max_per_user);
        let mut lock = NamedLock::acquire(
            &self.pool,
            self.lock_name(&record.user_id),
            LOCK_WAIT_SECS,
            "passkey registration",
        )
        .await
        .map_err(error)?;
        let mut attempt = 0;
        let added = loop {
            match self.try_add(lock.conn(), record, max).await {
                Err(e) if is_deadlock(&e) && attempt < DEADLOCK_RETRIES => attempt += 1,
                done => break done,
            }
        };
        let released = lock.release().await;
        let added = added.map_err(error)?;
        released.map_err(error)?;
        Ok(added)
    }

    async fn list(&self, user: &UserId) -> Result<Vec<PasskeyRecord>, StoreError> {
        sqlx::query_as::<_, Tuple>(&self.queries.list)
            .bind(user.as_str())
            .fetch_all(&self.pool)
            .await
            .map_err(error)?
            .into_iter()
            .map(decode)
            .collect()
    }

    async fn find(&self, credential_id: &[u8]) -> Result<Option<PasskeyRecord>, StoreError> {
        sqlx::query_as::<_, Tuple>(&self.queries.find)
            .bind(credential_id)
            .fetch_optional(&self.pool)
            .await
            .map_err(error)?
            .map(decode)
            .transpose()
    }

    async fn update_after_use(
        &self,
        credential_id: &[u8],
        passkey: &str,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        check_passkey(passkey)?;
        self.changed_one(
            sqlx::query(&self.queries.used)
                .bind(passkey)
                .bind(to_micros(now))
                .bind(credential_id),
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
        self.changed_one(
            sqlx::query(&self.queries.rename)
                .bind(name)
                .bind(user.as_str())
                .bind(credential_id),
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

/// The statements over the table.
#[derive(Debug)]
struct Queries {
    table: TableName,
    /// `(credential id)`.
    find: String,
    /// `(user)`.
    list: String,
    /// `(credential id)`: whether it is taken.
    taken: String,
    /// `(user)`: how many passkeys the user has.
    count: String,
    /// `(6 columns)`.
    insert: String,
    /// `(passkey, last used at, credential id)`.
    used: String,
    /// `(name, user, credential id)`.
    rename: String,
    /// `(user, credential id)`.
    remove: String,
}

impl Queries {
    fn new(table: TableName) -> Self {
        let t = quoted(&table);
        Self {
            find: format!("SELECT {PASSKEY_COLUMNS} FROM {t} WHERE credential_id = ?"),
            list: format!("SELECT {PASSKEY_COLUMNS} FROM {t} WHERE user_id = ? {LIST_ORDER}"),
            taken: format!("SELECT COUNT(*) FROM {t} WHERE credential_id = ?"),
            count: format!("SELECT COUNT(*) FROM {t} WHERE user_id = ?"),
            insert: format!("INSERT INTO {t} ({PASSKEY_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?)"),
            used: format!("UPDATE {t} SET passkey = ?, last_used_at = ? WHERE credential_id = ?"),
            rename: format!("UPDATE {t} SET name = ? WHERE user_id = ? AND credential_id = ?"),
            remove: format!("DELETE FROM {t} WHERE user_id = ? AND credential_id = ?"),
            table,
        }
    }
}
