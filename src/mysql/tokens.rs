//! The MySQL token store.

use std::net::IpAddr;
use std::sync::Arc;

use async_trait::async_trait;
use sqlx::mysql::MySqlPool;
use time::OffsetDateTime;

use super::migrate::{migrate, parse_table, quoted};
use super::{error, is_duplicate, text};
use crate::sql::{self, InvalidTableName, Migration, TableName};
use crate::time_codec::{from_micros, to_micros};
use crate::{Session, SessionId, StoreError, TokenStore, UserId};

/// The schema changes of the sessions table, in order.
const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        sql: include_str!("../../migrations/mysql/sessions_0001.sql"),
    },
    Migration {
        version: 2,
        sql: include_str!("../../migrations/mysql/sessions_0002.sql"),
    },
    Migration {
        version: 3,
        sql: include_str!("../../migrations/mysql/sessions_0003.sql"),
    },
];

/// How many expired sessions one purge statement deletes (each batch is its own short
/// statement, so a purge never holds many row locks for long).
const PURGE_BATCH: i64 = 1000;

/// Sessions in a MySQL or MariaDB table. Get one from [`Mysql::token_store`](super::Mysql::token_store).
///
/// The table (default `keycard_sessions`, optionally `database.table`) is created by
/// [`migrate`](Self::migrate); its schema ships in `migrations/mysql/sessions_0001.sql` to
/// `sessions_0003.sql`:
///
/// | column | type | |
/// |---|---|---|
/// | `id` | `VARBINARY(64) PRIMARY KEY` | the public session id (22 characters) |
/// | `user_id` | `VARBINARY(767)` | indexed with `created_at` |
/// | `secret_hash` | `BINARY(32)` | SHA-256 of the token's secret |
/// | `created_at`, `expires_at`, `last_seen_at` | `BIGINT` | Unix microseconds; `expires_at` indexed |
/// | `ip`, `user_agent` | `VARCHAR(64)`, `TEXT` (`utf8mb4_bin`), `NULL` | client metadata |
/// | `amr` | `SMALLINT`, default 0 | how the session was authenticated ([`AuthMethods::bits`](crate::AuthMethods::bits)); 0 for sessions of version 1 |
/// | `token_name`, `token_scopes` | `TEXT` (`utf8mb4_bin`) `NULL` | an [API token](crate::api_tokens)'s name and space-separated scopes; both `NULL` for an interactive session (and for sessions of versions 1 and 2) |
///
/// Ids are binary strings, compared byte for byte. Create is one `INSERT` (the primary key
/// refuses a duplicate, [`StoreError::Duplicate`], and never overwrites); a validate is one
/// `SELECT` by primary key; delete, delete-for-user (with or without a session kept) and
/// each purge batch are single statements returning their row counts.
#[derive(Debug, Clone)]
pub struct MysqlTokenStore {
    pool: MySqlPool,
    queries: Arc<Queries>,
}

impl MysqlTokenStore {
    /// The default table name.
    pub const DEFAULT_TABLE: &'static str = "keycard_sessions";

    /// Uses `pool` and the default table. (Also [`Mysql::token_store`](super::Mysql::token_store).)
    pub fn new(pool: MySqlPool) -> Self {
        Self {
            pool,
            queries: Arc::new(Queries::new(TableName::builtin(Self::DEFAULT_TABLE))),
        }
    }

    /// Uses `table` (`name` or `database.name`) instead of `keycard_sessions`.
    ///
    /// # Errors
    /// [`InvalidTableName`] unless each part is a plain identifier (`[A-Za-z_][A-Za-z0-9_]*`)
    /// and the name is at most 52 bytes (index names add up to 12).
    pub fn with_table(mut self, table: &str) -> Result<Self, InvalidTableName> {
        self.queries = Arc::new(Queries::new(parse_table(table)?));
        Ok(self)
    }

    /// The connection pool.
    pub fn pool(&self) -> &MySqlPool {
        &self.pool
    }

    /// Creates or upgrades the sessions table. Idempotent and safe to run from several
    /// instances at once (see [`Mysql::migrate`](super::Mysql::migrate)).
    ///
    /// # Errors
    /// [`StoreError::Backend`] if a statement fails.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        migrate(&self.pool, &self.queries.table, MIGRATIONS).await
    }
}

/// A sessions row as selected.
type SessionRow = (
    Vec<u8>,
    Vec<u8>,
    Vec<u8>,
    i64,
    i64,
    i64,
    Option<Vec<u8>>,
    Option<Vec<u8>>,
    i16,
    Option<Vec<u8>>,
    Option<Vec<u8>>,
);

fn into_session(row: SessionRow) -> Result<Session, StoreError> {
    let (
        id,
        user_id,
        secret_hash,
        created_at,
        expires_at,
        last_seen_at,
        ip,
        user_agent,
        amr,
        token_name,
        token_scopes,
    ) = row;
    Ok(Session {
        id: sql::session_id(&text(id)?)?,
        user_id: UserId::new(text(user_id)?),
        secret_hash: sql::secret_hash(&secret_hash)?,
        created_at: from_micros(created_at)?,
        expires_at: from_micros(expires_at)?,
        last_seen_at: from_micros(last_seen_at)?,
        client: sql::client_info(ip.map(text).transpose()?, user_agent.map(text).transpose()?)?,
        amr: sql::auth_methods(amr)?,
        kind: sql::session_kind(
            token_name.map(text).transpose()?,
            token_scopes.map(text).transpose()?,
        )?,
    })
}

#[async_trait]
impl TokenStore for MysqlTokenStore {
    async fn create(&self, session: &Session) -> Result<(), StoreError> {
        let (token_name, token_scopes) = sql::kind_columns(&session.kind);
        let done = sqlx::query(&self.queries.insert)
            .bind(session.id.to_string())
            .bind(session.user_id.as_str())
            .bind(session.secret_hash.as_bytes().as_slice())
            .bind(to_micros(session.created_at))
            .bind(to_micros(session.expires_at))
            .bind(to_micros(session.last_seen_at))
            .bind(session.client.ip.map(|ip| ip.to_string()))
            .bind(session.client.user_agent.as_deref())
            .bind(i16::from(session.amr.bits()))
            .bind(token_name)
            .bind(token_scopes)
            .execute(&self.pool)
            .await;
        match done {
            Ok(_) => Ok(()),
            Err(e) if is_duplicate(&e) => Err(StoreError::Duplicate),
            Err(e) => Err(error(e)),
        }
    }

    async fn get(
        &self,
        id: &SessionId,
        now: OffsetDateTime,
    ) -> Result<Option<Session>, StoreError> {
        sqlx::query_as::<_, SessionRow>(&self.queries.get)
            .bind(id.to_string())
            .bind(to_micros(now))
            .fetch_optional(&self.pool)
            .await
            .map_err(error)?
            .map(into_session)
            .transpose()
    }

    async fn touch(
        &self,
        id: &SessionId,
        last_seen_at: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let at = to_micros(last_seen_at);
        // sqlx connects with CLIENT_FOUND_ROWS: the count is of matched rows, so a touch that
        // changes nothing (an older `last_seen_at`) still reports the session found.
        let done = sqlx::query(&self.queries.touch)
            .bind(at)
            .bind(id.to_string())
            .bind(at)
            .execute(&self.pool)
            .await
            .map_err(error)?;
        Ok(done.rows_affected() == 1)
    }

    async fn touch_from(
        &self,
        id: &SessionId,
        last_seen_at: OffsetDateTime,
        ip: IpAddr,
    ) -> Result<bool, StoreError> {
        let at = to_micros(last_seen_at);
        // Matched rows, as for `touch` (CLIENT_FOUND_ROWS).
        let done = sqlx::query(&self.queries.touch_from)
            .bind(at)
            .bind(ip.to_string())
            .bind(id.to_string())
            .bind(at)
            .execute(&self.pool)
            .await
            .map_err(error)?;
        Ok(done.rows_affected() == 1)
    }

    async fn delete(&self, id: &SessionId) -> Result<bool, StoreError> {
        let done = sqlx::query(&self.queries.delete)
            .bind(id.to_string())
            .execute(&self.pool)
            .await
            .map_err(error)?;
        Ok(done.rows_affected() == 1)
    }

    async fn delete_for_user(&self, user: &UserId) -> Result<u64, StoreError> {
        let done = sqlx::query(&self.queries.delete_for_user)
            .bind(user.as_str())
            .execute(&self.pool)
            .await
            .map_err(error)?;
        Ok(done.rows_affected())
    }

    async fn delete_for_user_except(
        &self,
        user: &UserId,
        keep: &SessionId,
    ) -> Result<u64, StoreError> {
        let done = sqlx::query(&self.queries.delete_for_user_except)
            .bind(user.as_str())
            .bind(keep.to_string())
            .execute(&self.pool)
            .await
            .map_err(error)?;
        Ok(done.rows_affected())
    }

    async fn list_for_user(
        &self,
        user: &UserId,
        now: OffsetDateTime,
    ) -> Result<Vec<Session>, StoreError> {
        let rows = sqlx::query_as::<_, SessionRow>(&self.queries.list_for_user)
            .bind(user.as_str())
            .bind(to_micros(now))
            .fetch_all(&self.pool)
            .await
            .map_err(error)?;
        let mut sessions = rows
            .into_iter()
            .map(into_session)
            .collect::<Result<Vec<_>, _>>()?;
        sessions.sort_by_key(|s| (s.created_at, s.id));
        Ok(sessions)
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

/// The statements over the sessions table.
#[derive(Debug)]
struct Queries {
    table: TableName,
    insert: String,
    get: String,
    touch: String,
    /// `last_seen_at`, `ip`, `id`, `last_seen_at`.
    touch_from: String,
    delete: String,
    delete_for_user: String,
    delete_for_user_except: String,
    list_for_user: String,
    purge_batch: String,
}

/// The sessions table's columns, in the order every statement reads and writes them.
const COLUMNS: &str = sql::SESSION_COLUMNS;

impl Queries {
    fn new(table: TableName) -> Self {
        let t = quoted(&table);
        Self {
            insert: format!("INSERT INTO {t} ({COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"),
            get: format!("SELECT {COLUMNS} FROM {t} WHERE id = ? AND expires_at > ?"),
            touch: format!(
                "UPDATE {t} SET last_seen_at = GREATEST(last_seen_at, ?) \
                 WHERE id = ? AND expires_at > ?"
            ),
            touch_from: format!(
                "UPDATE {t} SET last_seen_at = GREATEST(last_seen_at, ?), ip = ? \
                 WHERE id = ? AND expires_at > ?"
            ),
            delete: format!("DELETE FROM {t} WHERE id = ?"),
            delete_for_user: format!("DELETE FROM {t} WHERE user_id = ?"),
            delete_for_user_except: format!(
                "DELETE FROM {t} WHERE user_id = ? AND id <> ? AND token_name IS NULL"
            ),
            list_for_user: format!(
                "SELECT {COLUMNS} FROM {t} WHERE user_id = ? AND expires_at > ? \
                 ORDER BY created_at, id"
            ),
            purge_batch: format!(
                "DELETE FROM {t} WHERE expires_at <= ? ORDER BY expires_at LIMIT ?"
            ),
            table,
        }
    }
}
