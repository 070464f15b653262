//! SQLite token and user stores (feature `sqlite`): embedded, persistent, one file.

use std::collections::HashSet;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use rusqlite::{params, Connection, OpenFlags, OptionalExtension, Row, TransactionBehavior};
use time::OffsetDateTime;
use tokio::sync::Semaphore;

use super::sql::{
    self, InvalidTableName, Migration, Placeholders, TableName, UserQueries, MIGRATIONS_TABLE,
};
use crate::{
    normalize_email, Session, SessionId, StoreError, TokenStore, UserId, UserRecord, UserStore,
};

/// The schema changes of the sessions table, in order.
const SESSION_MIGRATIONS: &[Migration] = &[Migration {
    version: 1,
    sql: include_str!("../../migrations/sqlite/sessions_0001.sql"),
}];

/// The schema changes of the users table, in order.
const USER_MIGRATIONS: &[Migration] = &[Migration {
    version: 1,
    sql: include_str!("../../migrations/sqlite/users_0001.sql"),
}];

/// How many expired sessions one purge statement deletes; each batch is its own short
/// transaction, so other writers get the lock between batches.
const PURGE_BATCH: i64 = 1000;

/// Connection settings for [`SqliteTokenStore`] and [`SqliteUserStore`].
///
/// ```
/// use std::time::Duration;
/// use keycard::store::SqliteOptions;
/// let options = SqliteOptions::default()
///     .max_connections(8)
///     .busy_timeout(Duration::from_secs(10));
/// ```
#[derive(Debug, Clone)]
#[must_use]
pub struct SqliteOptions {
    max_connections: usize,
    busy_timeout: Duration,
}

impl Default for SqliteOptions {
    /// Four connections, a 5 second busy timeout.
    fn default() -> Self {
        Self {
            max_connections: 4,
            busy_timeout: Duration::from_secs(5),
        }
    }
}

impl SqliteOptions {
    /// The most operations running at once on Tokio's blocking threads, each on its own
    /// connection (at least 1); up to as many more read-only connections serve lookups on the
    /// calling thread. SQLite runs one writer at a time whatever this is; extra connections
    /// let reads proceed in parallel (WAL). Default: 4.
    pub fn max_connections(mut self, n: usize) -> Self {
        self.max_connections = n.max(1);
        self
    }

    /// How long a statement waits for another connection's write lock before failing with
    /// [`StoreError::Backend`]. Default: 5 seconds.
    pub fn busy_timeout(mut self, timeout: Duration) -> Self {
        self.busy_timeout = timeout;
        self
    }
}

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
/// The table (default `keycard_sessions`) is created by [`migrate`](Self::migrate); its schema
/// ships in `migrations/sqlite/` of the crate:
///
/// | column | type | |
/// |---|---|---|
/// | `id` | `TEXT PRIMARY KEY` | the public session id (22 characters) |
/// | `user_id` | `TEXT` | indexed with `created_at` |
/// | `secret_hash` | `BLOB` | SHA-256 of the token's secret (32 bytes) |
/// | `created_at`, `expires_at`, `last_seen_at` | `INTEGER` | Unix microseconds; `expires_at` indexed |
/// | `ip`, `user_agent` | `TEXT NULL` | client metadata |
///
/// A validate is one `SELECT` by primary key. Purging deletes at most 1000 rows per
/// statement, so a large purge never holds the write lock for long.
///
/// ```no_run
/// # async fn run() -> Result<(), keycard::StoreError> {
/// use keycard::store::SqliteTokenStore;
/// let tokens = SqliteTokenStore::open("keycard.db").await?;
/// tokens.migrate().await?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct SqliteTokenStore {
    pool: Arc<Pool>,
    queries: Arc<SessionQueries>,
}

impl SqliteTokenStore {
    /// The default table name.
    pub const DEFAULT_TABLE: &'static str = "keycard_sessions";

    /// Opens (creating if needed) the database file at `path` with default
    /// [`SqliteOptions`]. Does not create the table: call [`migrate`](Self::migrate).
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
        let pool = Pool::open(path.as_ref(), options).await?;
        let table = TableName::builtin(Self::DEFAULT_TABLE);
        Ok(Self {
            pool,
            queries: Arc::new(SessionQueries::new(table)),
        })
    }

    /// Uses `table` instead of `keycard_sessions` (for example to keep several applications in
    /// one file).
    ///
    /// # Errors
    /// [`InvalidTableName`] unless `table` is a plain identifier (`[A-Za-z_][A-Za-z0-9_]*`).
    pub fn with_table(mut self, table: &str) -> Result<Self, InvalidTableName> {
        self.queries = Arc::new(SessionQueries::new(TableName::parse(table, false)?));
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
        let now = sql::to_micros(now);
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
        let seen = sql::to_micros(last_seen_at);
        self.pool
            .run(move |conn| {
                conn.prepare_cached(&q.touch)
                    .and_then(|mut st| st.execute(params![id, seen]))
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
        let now = sql::to_micros(now);
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
        let now = sql::to_micros(now);
        let mut total = 0;
        loop {
            let q = Arc::clone(&self.queries);
            let deleted = self
                .pool
                .run(move |conn| {
                    conn.prepare_cached(&q.purge_batch)
                        .and_then(|mut st| st.execute(params![now, PURGE_BATCH]))
                        .map_err(backend)
                })
                .await?;
            total += deleted as u64;
            if (deleted as i64) < PURGE_BATCH {
                return Ok(total);
            }
        }
    }
}

/// Users in a SQLite file, for apps and examples that need no user code of their own.
///
/// The table (default `keycard_users`) is created by [`migrate`](Self::migrate); its schema
/// ships in `migrations/sqlite/users_0001.sql`:
///
/// | column | type | |
/// |---|---|---|
/// | `id` | `TEXT PRIMARY KEY` | [`UserId`] |
/// | `email` | `TEXT UNIQUE` | normalized with [`normalize_email`] |
/// | `password_hash` | `TEXT` | PHC string (`$argon2id$...`) |
/// | `first_name`, `last_name` | `TEXT` | default `''` |
///
/// Rows you write yourself must store the email normalized, or logins will not find them.
/// Lookups by id and email take the same path as session lookups (on the calling thread, a
/// few microseconds), so [`Authenticator::validate`](crate::Authenticator::validate) over two
/// SQLite stores costs two primary-key reads and no thread hop.
///
/// ```no_run
/// # async fn run() -> Result<(), keycard::StoreError> {
/// use keycard::store::SqliteUserStore;
/// use keycard::UserRecord;
/// let users = SqliteUserStore::open("keycard.db").await?;
/// users.migrate().await?;
/// // Safe on every start: does nothing if the id or email exists.
/// users.insert_if_absent(&UserRecord::new(1_i64, "ann@example.com", "$argon2id$...")).await?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct SqliteUserStore {
    pool: Arc<Pool>,
    queries: Arc<UserQueries>,
}

impl SqliteUserStore {
    /// The default table name.
    pub const DEFAULT_TABLE: &'static str = "keycard_users";

    /// Opens (creating if needed) the database file at `path` with default
    /// [`SqliteOptions`]. Does not create the table: call [`migrate`](Self::migrate).
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
        let pool = Pool::open(path.as_ref(), options).await?;
        let table = TableName::builtin(Self::DEFAULT_TABLE);
        Ok(Self {
            pool,
            queries: Arc::new(UserQueries::new(table, Placeholders::Question)),
        })
    }

    /// Uses `table` instead of `keycard_users`.
    ///
    /// # Errors
    /// [`InvalidTableName`] unless `table` is a plain identifier (`[A-Za-z_][A-Za-z0-9_]*`).
    pub fn with_table(mut self, table: &str) -> Result<Self, InvalidTableName> {
        self.queries = Arc::new(UserQueries::new(
            TableName::parse(table, false)?,
            Placeholders::Question,
        ));
        Ok(self)
    }

    /// Creates or upgrades the users table. Idempotent.
    ///
    /// # Errors
    /// [`StoreError::Backend`] if a statement fails.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        let table = self.queries.table.clone();
        self.pool
            .run(move |conn| migrate(conn, &table, USER_MIGRATIONS))
            .await
    }

    /// Inserts `user` unless a user with the same id or (normalized) email exists, in which
    /// case nothing changes. Returns whether it inserted. Use it to seed a demo user on every
    /// start.
    ///
    /// # Errors
    /// [`StoreError::Backend`] if the statement fails.
    pub async fn insert_if_absent(&self, user: &UserRecord) -> Result<bool, StoreError> {
        let q = Arc::clone(&self.queries);
        let user = user.clone();
        self.pool
            .run(move |conn| {
                conn.prepare_cached(&q.insert_if_absent)
                    .and_then(|mut st| {
                        st.execute(params![
                            user.id.as_str(),
                            normalize_email(&user.email),
                            user.password_hash,
                            user.first_name,
                            user.last_name,
                        ])
                    })
                    .map(|n| n == 1)
                    .map_err(backend)
            })
            .await
    }
}

#[async_trait]
impl UserStore for SqliteUserStore {
    type User = UserRecord;

    async fn find_by_email(&self, email: &str) -> Result<Option<UserRecord>, StoreError> {
        let q = Arc::clone(&self.queries);
        let email = email.to_owned();
        self.pool
            .read(move |conn| {
                conn.prepare_cached(&q.by_email)
                    .and_then(|mut st| st.query_row(params![email], read_user).optional())
            })
            .await
    }

    async fn find_by_id(&self, id: &UserId) -> Result<Option<UserRecord>, StoreError> {
        let q = Arc::clone(&self.queries);
        let id = id.as_str().to_owned();
        self.pool
            .read(move |conn| {
                conn.prepare_cached(&q.by_id)
                    .and_then(|mut st| st.query_row(params![id], read_user).optional())
            })
            .await
    }

    async fn set_password_hash(&self, id: &UserId, phc: &str) -> Result<(), StoreError> {
        let q = Arc::clone(&self.queries);
        let id = id.as_str().to_owned();
        let phc = phc.to_owned();
        self.pool
            .run(move |conn| {
                conn.prepare_cached(&q.set_password_hash)
                    .and_then(|mut st| st.execute(params![id, phc]))
                    .map(drop)
                    .map_err(backend)
            })
            .await
    }
}

// ---------------------------------------------------------------------------------------------
// Queries and rows

#[derive(Debug)]
struct SessionQueries {
    table: TableName,
    insert: String,
    get: String,
    touch: String,
    delete: String,
    delete_for_user: String,
    delete_for_user_except: String,
    list_for_user: String,
    purge_batch: String,
}

const SESSION_COLUMNS: &str =
    "id, user_id, secret_hash, created_at, expires_at, last_seen_at, ip, user_agent";

impl SessionQueries {
    fn new(table: TableName) -> Self {
        let t = table.quoted();
        Self {
            insert: format!(
                "INSERT INTO {t} ({SESSION_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) \
                 ON CONFLICT (id) DO NOTHING"
            ),
            get: format!("SELECT {SESSION_COLUMNS} FROM {t} WHERE id = ?1 AND expires_at > ?2"),
            touch: format!(
                "UPDATE {t} SET last_seen_at = MAX(last_seen_at, ?2) \
                 WHERE id = ?1 AND expires_at > ?2"
            ),
            delete: format!("DELETE FROM {t} WHERE id = ?1"),
            delete_for_user: format!("DELETE FROM {t} WHERE user_id = ?1"),
            delete_for_user_except: format!("DELETE FROM {t} WHERE user_id = ?1 AND id <> ?2"),
            list_for_user: format!(
                "SELECT {SESSION_COLUMNS} FROM {t} WHERE user_id = ?1 AND expires_at > ?2 \
                 ORDER BY created_at, id"
            ),
            purge_batch: format!(
                "DELETE FROM {t} WHERE id IN \
                 (SELECT id FROM {t} WHERE expires_at <= ?1 ORDER BY expires_at LIMIT ?2)"
            ),
            table,
        }
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
}

impl From<&Session> for SessionRow {
    fn from(s: &Session) -> Self {
        Self {
            id: s.id.to_string(),
            user_id: s.user_id.as_str().to_owned(),
            secret_hash: s.secret_hash.as_bytes().to_vec(),
            created_at: sql::to_micros(s.created_at),
            expires_at: sql::to_micros(s.expires_at),
            last_seen_at: sql::to_micros(s.last_seen_at),
            ip: s.client.ip.map(|ip| ip.to_string()),
            user_agent: s.client.user_agent.clone(),
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
        })
    }

    fn into_session(self) -> Result<Session, StoreError> {
        Ok(Session {
            id: sql::session_id(&self.id)?,
            user_id: UserId::new(self.user_id),
            secret_hash: sql::secret_hash(&self.secret_hash)?,
            created_at: sql::from_micros(self.created_at)?,
            expires_at: sql::from_micros(self.expires_at)?,
            last_seen_at: sql::from_micros(self.last_seen_at)?,
            client: sql::client_info(self.ip, self.user_agent)?,
        })
    }
}

fn read_user(row: &Row<'_>) -> rusqlite::Result<UserRecord> {
    Ok(UserRecord {
        id: UserId::new(row.get::<_, String>(0)?),
        email: row.get(1)?,
        password_hash: row.get(2)?,
        first_name: row.get(3)?,
        last_name: row.get(4)?,
    })
}

pub(crate) fn backend(e: rusqlite::Error) -> StoreError {
    StoreError::backend(e)
}

fn ping(conn: &mut Connection) -> Result<(), StoreError> {
    conn.prepare_cached("SELECT 1")
        .and_then(|mut st| st.query_row([], |r| r.get::<_, i64>(0)))
        .map(drop)
        .map_err(backend)
}

/// Applies the migrations of `table` not yet recorded, in one immediate transaction.
pub(crate) fn migrate(
    conn: &mut Connection,
    table: &TableName,
    migrations: &[Migration],
) -> Result<(), StoreError> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(backend)?;
    tx.execute_batch(&format!(
        "CREATE TABLE IF NOT EXISTS \"{MIGRATIONS_TABLE}\" (\
             target TEXT NOT NULL, version INTEGER NOT NULL, applied_at INTEGER NOT NULL, \
             PRIMARY KEY (target, version))"
    ))
    .map_err(backend)?;
    let applied: HashSet<i64> = {
        let mut st = tx
            .prepare(&format!(
                "SELECT version FROM \"{MIGRATIONS_TABLE}\" WHERE target = ?1"
            ))
            .map_err(backend)?;
        let versions = st
            .query_map(params![table.name], |r| r.get(0))
            .and_then(|rows| rows.collect::<Result<HashSet<i64>, _>>())
            .map_err(backend)?;
        versions
    };
    for m in migrations.iter().filter(|m| !applied.contains(&m.version)) {
        tx.execute_batch(&table.render(m.sql)).map_err(backend)?;
        tx.execute(
            &format!(
                "INSERT INTO \"{MIGRATIONS_TABLE}\" (target, version, applied_at) VALUES (?1, ?2, ?3)"
            ),
            params![
                table.name,
                m.version,
                sql::to_micros(OffsetDateTime::now_utc())
            ],
        )
        .map_err(backend)?;
    }
    tx.commit().map_err(backend)
}

// ---------------------------------------------------------------------------------------------
// The connection pool

/// At most `max` connections to one file; work runs on Tokio's blocking threads, so SQLite's
/// synchronous calls never stall the async executor.
pub(crate) struct Pool {
    path: PathBuf,
    options: SqliteOptions,
    idle: Mutex<Vec<Connection>>,
    permits: Arc<Semaphore>,
    /// Connections for [`Pool::read_now`]: busy timeout 0, so they never wait for a lock.
    readers: Mutex<Vec<Connection>>,
    readers_open: AtomicUsize,
}

impl fmt::Debug for Pool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pool")
            .field("path", &self.path)
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

impl Pool {
    /// Opens the pool and one connection, so a bad path fails here rather than later.
    pub(crate) async fn open(path: &Path, options: SqliteOptions) -> Result<Arc<Self>, StoreError> {
        // Each pooled connection to ":memory:" (or "", a private temporary file) would be a
        // database of its own: sessions would come and go depending on the connection.
        if path.as_os_str().is_empty() || path.as_os_str() == ":memory:" {
            return Err(StoreError::backend(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "the SQLite stores need a file path; for an in-memory store use MemoryTokenStore",
            )));
        }
        let pool = Arc::new(Self {
            path: path.to_owned(),
            permits: Arc::new(Semaphore::new(options.max_connections)),
            options,
            idle: Mutex::new(Vec::new()),
            readers: Mutex::new(Vec::new()),
            readers_open: AtomicUsize::new(0),
        });
        pool.run(|_| Ok(())).await?;
        Ok(pool)
    }

    /// Runs `work` on a pooled connection on a blocking thread. The connection goes back to
    /// the pool inside the blocking task, so it is not lost if the caller stops waiting.
    pub(crate) async fn run<T, F>(self: &Arc<Self>, work: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    {
        // The semaphore is never closed, so acquiring only waits.
        let permit = Arc::clone(&self.permits)
            .acquire_owned()
            .await
            .map_err(StoreError::backend)?;
        let pool = Arc::clone(self);
        let job = move || {
            let _permit = permit;
            let mut conn = match pool
                .idle
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .pop()
            {
                Some(conn) => conn,
                None => pool.connect()?,
            };
            let out = work(&mut conn);
            pool.idle
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(conn);
            out
        };
        match tokio::runtime::Handle::try_current() {
            Ok(handle) => handle
                .spawn_blocking(job)
                .await
                .map_err(StoreError::backend)?,
            // Outside a Tokio runtime there is no blocking pool: run inline.
            Err(_) => job(),
        }
    }

    /// A short read (a primary-key lookup): on the calling thread when
    /// [`read_now`](Self::read_now) can, otherwise on a blocking thread, which then opens a
    /// reader connection for next time.
    async fn read<T, F>(self: &Arc<Self>, work: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: Fn(&Connection) -> rusqlite::Result<T> + Send + 'static,
    {
        if let Some(done) = self.read_now(&work) {
            return done;
        }
        let pool = Arc::clone(self);
        self.run(move |conn| {
            let out = work(conn).map_err(backend)?;
            pool.add_reader();
            Ok(out)
        })
        .await
    }

    /// Runs a short read on the calling thread, on an idle reader connection, if there is
    /// one and SQLite can answer without waiting for a lock. `None` means "use
    /// [`run`](Self::run)". In WAL mode readers do not wait for writers, so a primary-key
    /// lookup costs a few microseconds of CPU, well under what an async task may run between
    /// two awaits; hopping to a blocking thread would cost several times more.
    fn read_now<T>(
        &self,
        work: impl FnOnce(&Connection) -> rusqlite::Result<T>,
    ) -> Option<Result<T, StoreError>> {
        let conn = self
            .readers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop()?;
        let out = work(&conn);
        self.readers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(conn);
        match out {
            Err(rusqlite::Error::SqliteFailure(e, _))
                if matches!(
                    e.code,
                    rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked
                ) =>
            {
                None
            }
            other => Some(other.map_err(backend)),
        }
    }

    /// Opens one more reader connection, up to `max_connections`. Called on a blocking
    /// thread after a read had to take the slow path; failures only mean no fast path yet.
    fn add_reader(&self) {
        let max = self.options.max_connections;
        if self
            .readers_open
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < max).then_some(n + 1)
            })
            .is_err()
        {
            return;
        }
        match self.connect().and_then(|conn| {
            conn.busy_timeout(Duration::ZERO).map_err(backend)?;
            Ok(conn)
        }) {
            Ok(conn) => self
                .readers
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(conn),
            Err(error) => {
                self.readers_open.fetch_sub(1, Ordering::AcqRel);
                tracing::debug!(%error, "keycard: could not open a SQLite reader connection");
            }
        }
    }

    fn connect(&self) -> Result<Connection, StoreError> {
        let conn = Connection::open_with_flags(
            &self.path,
            OpenFlags::SQLITE_OPEN_READ_WRITE
                | OpenFlags::SQLITE_OPEN_CREATE
                | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(backend)?;
        conn.busy_timeout(self.options.busy_timeout)
            .map_err(backend)?;
        let mode: String = conn
            .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
            .map_err(backend)?;
        if !mode.eq_ignore_ascii_case("wal") {
            tracing::warn!(%mode, path = %self.path.display(), "keycard: SQLite did not switch to WAL");
        }
        conn.execute_batch("PRAGMA synchronous = NORMAL;")
            .map_err(backend)?;
        conn.set_prepared_statement_cache_capacity(32);
        Ok(conn)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::ClientInfo;
    use crate::token::Token;

    fn session(user: &str, now: OffsetDateTime, ttl: Duration) -> Session {
        let t = Token::generate().expect("os rng");
        Session::new(&t, UserId::from(user), now, ttl, ClientInfo::none())
    }

    #[tokio::test]
    async fn the_file_is_in_wal_mode_and_sessions_survive_reopening() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("k.db");
        let now = OffsetDateTime::now_utc()
            .replace_nanosecond(0)
            .expect("valid");
        let s = session("u", now, Duration::from_secs(60));
        {
            let store = SqliteTokenStore::open(&path).await.expect("open");
            store.migrate().await.expect("migrate");
            store.migrate().await.expect("migrate is idempotent");
            store.create(&s).await.expect("create");
            let mode = store
                .pool
                .run(|c| {
                    c.query_row("PRAGMA journal_mode", [], |r| r.get::<_, String>(0))
                        .map_err(backend)
                })
                .await
                .expect("pragma");
            assert_eq!(mode, "wal");
        }
        let store = SqliteTokenStore::open(&path).await.expect("reopen");
        assert_eq!(store.get(&s.id, now).await.expect("get"), Some(s));
    }

    #[tokio::test]
    async fn purge_deletes_in_batches_and_counts_every_row() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = SqliteTokenStore::open(dir.path().join("k.db"))
            .await
            .expect("open");
        store.migrate().await.expect("migrate");
        let now = OffsetDateTime::now_utc()
            .replace_nanosecond(0)
            .expect("valid");
        let n = 2 * PURGE_BATCH as usize + 17;
        for _ in 0..n {
            store
                .create(&session("u", now, Duration::from_secs(1)))
                .await
                .expect("create");
        }
        let live = session("u", now, Duration::from_secs(3600));
        store.create(&live).await.expect("create");
        let purged = store
            .purge_expired(now + Duration::from_secs(1))
            .await
            .expect("purge");
        assert_eq!(purged, n as u64);
        assert_eq!(
            store
                .list_for_user(&UserId::from("u"), now)
                .await
                .expect("list"),
            vec![live]
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn lookups_run_inline_once_a_reader_exists_and_fall_back_when_busy() {
        use std::sync::atomic::AtomicBool;
        let dir = tempfile::tempdir().expect("temp dir");
        let store = SqliteTokenStore::open(dir.path().join("k.db"))
            .await
            .expect("open");
        store.migrate().await.expect("migrate");
        let pool = &store.pool;
        let thread = || std::thread::current().id();
        // No reader yet: the first lookup runs on a blocking thread and opens one.
        let first = pool.read(move |_| Ok(thread())).await.expect("read");
        assert_ne!(first, thread());
        assert_eq!(pool.readers_open.load(Ordering::Acquire), 1);
        // Now it runs on the calling thread.
        let second = pool.read(move |_| Ok(thread())).await.expect("read");
        assert_eq!(second, thread());
        // A busy file sends the lookup to the blocking pool, which may wait for the lock.
        let tried_inline = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&tried_inline);
        let answer = pool
            .read(move |_| {
                if flag.swap(true, Ordering::AcqRel) {
                    Ok(thread())
                } else {
                    Err(rusqlite::Error::SqliteFailure(
                        rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_BUSY),
                        None,
                    ))
                }
            })
            .await
            .expect("the fallback answers");
        assert!(tried_inline.load(Ordering::Acquire));
        assert_ne!(answer, thread(), "the retry ran on a blocking thread");
    }

    #[tokio::test]
    async fn in_memory_databases_are_refused() {
        for path in ["", ":memory:"] {
            let err = SqliteTokenStore::open(path).await.expect_err(path);
            assert!(matches!(err, StoreError::Backend(_)), "{err:?}");
            assert!(SqliteUserStore::open(path).await.is_err());
        }
    }

    #[tokio::test]
    async fn an_unopenable_path_is_a_backend_error() {
        let dir = tempfile::tempdir().expect("temp dir");
        let err = SqliteTokenStore::open(dir.path().join("missing/dir/k.db"))
            .await
            .expect_err("no such directory");
        assert!(matches!(err, StoreError::Backend(_)), "{err:?}");
    }

    #[tokio::test]
    async fn a_missing_table_is_a_backend_error_not_a_panic() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = SqliteTokenStore::open(dir.path().join("k.db"))
            .await
            .expect("open");
        let id = Token::generate().expect("os rng").id();
        let err = store
            .get(&id, OffsetDateTime::now_utc())
            .await
            .expect_err("no table yet");
        assert!(matches!(err, StoreError::Backend(_)), "{err:?}");
    }

    #[tokio::test]
    async fn users_are_found_by_normalized_email_and_seeding_is_idempotent() {
        let dir = tempfile::tempdir().expect("temp dir");
        let users = SqliteUserStore::open(dir.path().join("k.db"))
            .await
            .expect("open")
            .with_table("people")
            .expect("valid name");
        users.migrate().await.expect("migrate");
        let ann = UserRecord::new(1_i64, " Ann@Example.com", "$argon2id$x").with_name("Ann", "Lee");
        assert!(users.insert_if_absent(&ann).await.expect("insert"));
        assert!(!users.insert_if_absent(&ann).await.expect("again"));
        let same_email = UserRecord::new(2_i64, "ann@example.com", "$argon2id$y");
        assert!(!users
            .insert_if_absent(&same_email)
            .await
            .expect("dup email"));
        let found = users
            .find_by_email("ann@example.com")
            .await
            .expect("find")
            .expect("exists");
        assert_eq!(found, ann);
        assert_eq!(
            users.find_by_id(&UserId::from(1_i64)).await.expect("find"),
            Some(ann.clone())
        );
        assert_eq!(
            users.find_by_id(&UserId::from(2_i64)).await.expect("find"),
            None
        );
        users
            .set_password_hash(&ann.id, "$argon2id$new")
            .await
            .expect("update");
        let found = users
            .find_by_id(&ann.id)
            .await
            .expect("find")
            .expect("exists");
        assert_eq!(found.password_hash, "$argon2id$new");
        assert_eq!(
            users
                .find_by_email("nobody@example.com")
                .await
                .expect("find"),
            None
        );
    }
}
