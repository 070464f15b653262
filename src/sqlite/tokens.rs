//! The SQLite token store.

use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;
use rusqlite::{params, OptionalExtension, Row};
use time::OffsetDateTime;

use super::pool::ping;
use super::{backend, migrate, Pool, SqliteOptions};
use crate::sql::{self, InvalidTableName, Migration, Placeholders, SessionQueries, TableName};
use crate::time_codec;
use crate::{Session, SessionId, StoreError, TokenStore, UserId};

/// The schema changes of the sessions table, in order.
const SESSION_MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        sql: include_str!("../../migrations/sqlite/sessions_0001.sql"),
    },
    Migration {
        version: 2,
        sql: include_str!("../../migrations/sqlite/sessions_0002.sql"),
    },
    Migration {
        version: 3,
        sql: include_str!("../../migrations/sqlite/sessions_0003.sql"),
    },
];

/// How many expired sessions one purge statement deletes; each batch is its own short
/// transaction, so other writers get the lock between batches.
pub(super) const PURGE_BATCH: i64 = 1000;

/// Sessions in a SQLite file.
///
/// Built on [`rusqlite`] (the bundled SQLite) with a small connection pool. A session lookup
/// (`get`, the validate path) is a prepared, cached primary-key `SELECT` run on the calling
/// thread: a few microseconds, less than the hop to another thread would cost (see
/// `BENCHMARKS.md`), and never waiting for a lock (those connections have a busy timeout of
/// 0; if SQLite reports the file busy, the lookup moves to the blocking pool and waits there).
/// Everything that may wait for the write lock (create, touch, deletes, purges, lists,
/// migrations) runs on Tokio's blocking thread pool, so it never stalls the async executor.
///
/// Every connection is opened with `journal_mode = WAL` (readers never wait for the writer),
/// `synchronous = NORMAL` (durable across application crashes; the last transactions may be
/// lost on power failure, the usual WAL trade-off) and a busy timeout (default 5 s), so
/// concurrent writers, including other processes on the same file, wait instead of failing.
///
/// Times are stored as integer Unix microseconds (UTC); sub-microsecond digits are dropped.
/// Only the [`Session`] fields are stored: the token's secret never reaches the store, only
/// its SHA-256 digest.
///
/// The table (default `keycard_sessions`) is created and upgraded by [`migrate`](Self::migrate);
/// its schema ships in `migrations/sqlite/sessions_0001.sql` to `sessions_0003.sql`:
///
/// | column | type | |
/// |---|---|---|
/// | `id` | `TEXT PRIMARY KEY` | the public session id (22 characters) |
/// | `user_id` | `TEXT` | indexed with `created_at` |
/// | `secret_hash` | `BLOB` | SHA-256 of the token's secret (32 bytes) |
/// | `created_at`, `expires_at`, `last_seen_at` | `INTEGER` | Unix microseconds; `expires_at` indexed |
/// | `ip`, `user_agent` | `TEXT NULL` | client metadata |
/// | `amr` | `INTEGER`, default 0 | how the session was authenticated ([`AuthMethods::bits`](crate::AuthMethods::bits)); 0 for sessions of version 1 |
/// | `token_name`, `token_scopes` | `TEXT NULL` | an [API token](crate::api_tokens)'s name and space-separated scopes; both `NULL` for an interactive session (and for sessions of versions 1 and 2) |
///
/// A validate is one `SELECT` by primary key. Purging deletes at most 1000 rows per
/// statement, so a large purge never holds the write lock for long.
///
/// ```no_run
/// # async fn run() -> Result<(), keycard::StoreError> {
/// use keycard::sqlite::Sqlite;
/// let db = Sqlite::open("keycard.db").await?;
/// db.migrate().await?;
/// let tokens = db.token_store();
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct SqliteTokenStore {
    pub(super) pool: Arc<Pool>,
    queries: Arc<SessionQueries>,
}

impl SqliteTokenStore {
    /// The default table name.
    pub const DEFAULT_TABLE: &'static str = "keycard_sessions";

    /// Opens (creating if needed) the database file at `path` with default
    /// [`SqliteOptions`], on a pool of its own. Does not create the table: call
    /// [`migrate`](Self::migrate). [`Sqlite::token_store`](super::Sqlite::token_store) shares
    /// one pool between the token store, the user store and the throttle.
    ///
    /// # Errors
    /// [`StoreError::Backend`] if the file cannot be opened or configured.
    pub async fn open(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        Self::open_with(path, SqliteOptions::default()).await
    }

    /// Opens (creating if needed) the database file at `path` with `options`.
    ///
    /// # Errors
    /// [`StoreError::Backend`] if the file cannot be opened or configured, or if `path` is
    /// empty or `:memory:` (every pooled connection would have a database of its own).
    pub async fn open_with(
        path: impl AsRef<Path>,
        options: SqliteOptions,
    ) -> Result<Self, StoreError> {
        Ok(Self::from_pool(Pool::open(path.as_ref(), options).await?))
    }

    /// A store on an open pool (the [`Sqlite`](super::Sqlite) handle's), default table.
    pub(crate) fn from_pool(pool: Arc<Pool>) -> Self {
        let table = TableName::builtin(Self::DEFAULT_TABLE);
        Self {
            pool,
            queries: Arc::new(SessionQueries::new(table, Placeholders::Question)),
        }
    }

    /// Uses `table` instead of `keycard_sessions` (for example to keep several applications in
    /// one file).
    ///
    /// # Errors
    /// [`InvalidTableName`] unless `table` is a plain identifier (`[A-Za-z_][A-Za-z0-9_]*`).
    pub fn with_table(mut self, table: &str) -> Result<Self, InvalidTableName> {
        self.queries = Arc::new(SessionQueries::new(
            TableName::parse(table, false)?,
            Placeholders::Question,
        ));
        Ok(self)
    }

    /// Creates or upgrades the sessions table. Idempotent and safe to run from several
    /// processes at once (it runs in one `BEGIN IMMEDIATE` transaction). Applied versions are
    /// recorded in `keycard_migrations`.
    ///
    /// # Errors
    /// [`StoreError::Backend`] if a statement fails.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        let table = self.queries.table.clone();
        self.pool
            .run(move |conn| migrate(conn, &table, SESSION_MIGRATIONS))
            .await
    }

    /// One trivial query (`SELECT 1`) through the pool: a health check, and the baseline that
    /// `get` is measured against.
    ///
    /// # Errors
    /// [`StoreError::Backend`] if the database cannot be reached.
    pub async fn ping(&self) -> Result<(), StoreError> {
        self.pool.run(ping).await
    }
}

#[async_trait]
impl TokenStore for SqliteTokenStore {
    async fn create(&self, session: &Session) -> Result<(), StoreError> {
        let q = Arc::clone(&self.queries);
        let row = SessionRow::from(session);
        self.pool
            .run(move |conn| {
                let inserted = conn
                    .prepare_cached(&q.insert)
                    .and_then(|mut st| {
                        st.execute(params![
                            row.id,
                            row.user_id,
                            row.secret_hash,
                            row.created_at,
                            row.expires_at,
                            row.last_seen_at,
                            row.ip,
                            row.user_agent,
                            row.amr,
                            row.token_name,
                            row.token_scopes,
                        ])
                    })
                    .map_err(backend)?;
                match inserted {
                    1 => Ok(()),
                    _ => Err(StoreError::Duplicate),
                }
            })
            .await
    }

    async fn get(
        &self,
        id: &SessionId,
        now: OffsetDateTime,
    ) -> Result<Option<Session>, StoreError> {
        let q = Arc::clone(&self.queries);
        let id = id.to_string();
        let now = time_codec::to_micros(now);
        let row = self
            .pool
            .read(move |conn| {
                conn.prepare_cached(&q.get)
                    .and_then(|mut st| st.query_row(params![id, now], SessionRow::read).optional())
            })
            .await?;
        row.map(SessionRow::into_session).transpose()
    }

    async fn touch(
        &self,
        id: &SessionId,
        last_seen_at: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let q = Arc::clone(&self.queries);
        let id = id.to_string();
        let seen = time_codec::to_micros(last_seen_at);
        self.pool
            .run(move |conn| {
                conn.prepare_cached(&q.touch)
                    .and_then(|mut st| st.execute(params![id, seen]))
                    .map(|n| n == 1)
                    .map_err(backend)
            })
            .await
    }

    async fn touch_from(
        &self,
        id: &SessionId,
        last_seen_at: OffsetDateTime,
        ip: IpAddr,
    ) -> Result<bool, StoreError> {
        let q = Arc::clone(&self.queries);
        let id = id.to_string();
        let seen = time_codec::to_micros(last_seen_at);
        let ip = ip.to_string();
        self.pool
            .run(move |conn| {
                conn.prepare_cached(&q.touch_from)
                    .and_then(|mut st| st.execute(params![id, seen, ip]))
                    .map(|n| n == 1)
                    .map_err(backend)
            })
            .await
    }

    async fn delete(&self, id: &SessionId) -> Result<bool, StoreError> {
        let q = Arc::clone(&self.queries);
        let id = id.to_string();
        self.pool
            .run(move |conn| {
                conn.prepare_cached(&q.delete)
                    .and_then(|mut st| st.execute(params![id]))
                    .map(|n| n == 1)
                    .map_err(backend)
            })
            .await
    }

    async fn delete_for_user(&self, user: &UserId) -> Result<u64, StoreError> {
        let q = Arc::clone(&self.queries);
        let user = user.as_str().to_owned();
        self.pool
            .run(move |conn| {
                conn.prepare_cached(&q.delete_for_user)
                    .and_then(|mut st| st.execute(params![user]))
                    .map(|n| n as u64)
                    .map_err(backend)
            })
            .await
    }

    async fn delete_for_user_except(
        &self,
        user: &UserId,
        keep: &SessionId,
    ) -> Result<u64, StoreError> {
        let q = Arc::clone(&self.queries);
        let user = user.as_str().to_owned();
        let keep = keep.to_string();
        self.pool
            .run(move |conn| {
                conn.prepare_cached(&q.delete_for_user_except)
                    .and_then(|mut st| st.execute(params![user, keep]))
                    .map(|n| n as u64)
                    .map_err(backend)
            })
            .await
    }

    async fn list_for_user(
        &self,
        user: &UserId,
        now: OffsetDateTime,
    ) -> Result<Vec<Session>, StoreError> {
        let q = Arc::clone(&self.queries);
        let user = user.as_str().to_owned();
        let now = time_codec::to_micros(now);
        let rows = self
            .pool
            .run(move |conn| {
                let mut st = conn.prepare_cached(&q.list_for_user).map_err(backend)?;
                let rows = st
                    .query_map(params![user, now], SessionRow::read)
                    .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
                    .map_err(backend)?;
                Ok(rows)
            })
            .await?;
        let mut sessions = rows
            .into_iter()
            .map(SessionRow::into_session)
            .collect::<Result<Vec<_>, _>>()?;
        sessions.sort_by_key(|s| (s.created_at, s.id));
        Ok(sessions)
    }

    async fn purge_expired(&self, now: OffsetDateTime) -> Result<u64, StoreError> {
        let now = time_codec::to_micros(now);
        self.pool
            .delete_in_batches(&self.queries, |q| &q.purge_batch, now, PURGE_BATCH)
            .await
    }
}

/// A session as its columns.
#[derive(Debug)]
struct SessionRow {
    id: String,
    user_id: String,
    secret_hash: Vec<u8>,
    created_at: i64,
    expires_at: i64,
    last_seen_at: i64,
    ip: Option<String>,
    user_agent: Option<String>,
    amr: i64,
    token_name: Option<String>,
    token_scopes: Option<String>,
}

impl From<&Session> for SessionRow {
    fn from(s: &Session) -> Self {
        let (token_name, token_scopes) = sql::kind_columns(&s.kind);
        Self {
            id: s.id.to_string(),
            user_id: s.user_id.as_str().to_owned(),
            secret_hash: s.secret_hash.as_bytes().to_vec(),
            created_at: time_codec::to_micros(s.created_at),
            expires_at: time_codec::to_micros(s.expires_at),
            last_seen_at: time_codec::to_micros(s.last_seen_at),
            ip: s.client.ip.map(|ip| ip.to_string()),
            user_agent: s.client.user_agent.clone(),
            amr: i64::from(s.amr.bits()),
            token_name: token_name.map(str::to_owned),
            token_scopes,
        }
    }
}

impl SessionRow {
    fn read(row: &Row<'_>) -> rusqlite::Result<Self> {
        Ok(Self {
            id: row.get(0)?,
            user_id: row.get(1)?,
            secret_hash: row.get(2)?,
            created_at: row.get(3)?,
            expires_at: row.get(4)?,
            last_seen_at: row.get(5)?,
            ip: row.get(6)?,
            user_agent: row.get(7)?,
            amr: row.get(8)?,
            token_name: row.get(9)?,
            token_scopes: row.get(10)?,
        })
    }

    fn into_session(self) -> Result<Session, StoreError> {
        Ok(Session {
            id: sql::session_id(&self.id)?,
            user_id: UserId::new(self.user_id),
            secret_hash: sql::secret_hash(&self.secret_hash)?,
            created_at: time_codec::from_micros(self.created_at)?,
            expires_at: time_codec::from_micros(self.expires_at)?,
            last_seen_at: time_codec::from_micros(self.last_seen_at)?,
            client: sql::client_info(self.ip, self.user_agent)?,
            amr: sql::auth_methods(self.amr)?,
            kind: sql::session_kind(self.token_name, self.token_scopes)?,
        })
    }
}
