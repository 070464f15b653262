//! The SQLite connection pool and its settings.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};
use tokio::sync::Semaphore;

use crate::StoreError;

/// Connection settings for [`SqliteTokenStore`](super::SqliteTokenStore) and
/// [`SqliteUserStore`](super::SqliteUserStore).
///
/// ```
/// use std::time::Duration;
/// use keycard::sqlite::SqliteOptions;
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

/// At most `max` connections to one file; work runs on Tokio's blocking threads, so SQLite's
/// synchronous calls never stall the async executor.
pub(crate) struct Pool {
    path: PathBuf,
    options: SqliteOptions,
    idle: Mutex<Vec<Connection>>,
    permits: Arc<Semaphore>,
    /// Connections for [`Pool::read_now`]: busy timeout 0, so they never wait for a lock.
    readers: Mutex<Vec<Connection>>,
    pub(super) readers_open: AtomicUsize,
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

    /// Runs `sql` of `queries` (a `DELETE` of rows expired at `?1`, at most `?2` of them) until
    /// a batch deletes fewer than `batch` rows, one short statement per batch so a large purge
    /// never holds the write lock for long. Returns how many rows it deleted.
    pub(crate) async fn delete_in_batches<Q: Send + Sync + 'static>(
        self: &Arc<Self>,
        queries: &Arc<Q>,
        sql: fn(&Q) -> &str,
        now: i64,
        batch: i64,
    ) -> Result<u64, StoreError> {
        let mut total = 0;
        loop {
            let q = Arc::clone(queries);
            let deleted = self
                .run(move |conn| {
                    conn.prepare_cached(sql(&q))
                        .and_then(|mut st| st.execute(rusqlite::params![now, batch]))
                        .map_err(backend)
                })
                .await?;
            total += deleted as u64;
            if (deleted as i64) < batch {
                return Ok(total);
            }
        }
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
    pub(super) async fn read<T, F>(self: &Arc<Self>, work: F) -> Result<T, StoreError>
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
    pub(super) fn read_now<T>(
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
    pub(super) fn add_reader(&self) {
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

pub(crate) fn backend(e: rusqlite::Error) -> StoreError {
    StoreError::backend(e)
}

pub(super) fn ping(conn: &mut Connection) -> Result<(), StoreError> {
    conn.prepare_cached("SELECT 1")
        .and_then(|mut st| st.query_row([], |r| r.get::<_, i64>(0)))
        .map(drop)
        .map_err(backend)
}
