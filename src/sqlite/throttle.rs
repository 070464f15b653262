//! The SQLite throttle: counts shared by the processes using one file.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use rusqlite::{params, Connection, OptionalExtension, Transaction, TransactionBehavior};
use time::OffsetDateTime;

use super::{backend, migrate, Pool, SqliteOptions};
use crate::sql::InvalidTableName;
use crate::sql::{Migration, TableName};
use crate::throttle::shared::{self, Counter};
use crate::throttle::ThrottleError;
use crate::throttle::{
    window_end, AccountCounter, Admission, Limit, LimitKind, RateKey, Reservation, Throttle,
    ThrottleKey, ThrottleLimits,
};
use crate::time_codec;
use crate::StoreError;

/// The schema changes of the throttle table, in order.
const MIGRATIONS: &[Migration] = &[Migration {
    version: 1,
    sql: include_str!("../../migrations/sqlite/throttle_0001.sql"),
}];

/// How many ended entries one prune statement deletes; each batch is its own short
/// transaction, so other writers get the lock between batches.
const PRUNE_BATCH: i64 = 1000;

/// Login attempts counted in a SQLite file, shared by the processes on one machine that use
/// it (for example several workers behind one port, or a server and its restarts).
///
/// Built on the connection pool of [`SqliteTokenStore`](super::SqliteTokenStore):
/// every step runs on Tokio's blocking thread pool, so waiting for SQLite's write lock never
/// stalls the async executor, with the same [`SqliteOptions`] (WAL, busy timeout). It can
/// share the token store's file.
///
/// # Table
/// [`migrate`](Self::migrate) creates one table (default `keycard_throttle`; schema in
/// `migrations/sqlite/throttle_0001.sql`) holding every counter and every trusted address, one
/// row each:
///
/// | column | type | |
/// |---|---|---|
/// | `key` | `TEXT PRIMARY KEY` | `pair:<account>:<ip>`, `ip:<ip>`, `account:<account>`, `account_trusted:<account>`, `trusted:<account>:<ip>`, or `rate:<bucket>:<digest>` ([`RateKey::as_str`], counted by [`hit`](Throttle::hit)) |
/// | `count` | `INTEGER` | attempts counted in the window; 0 for a trusted address |
/// | `ends_at` | `INTEGER` | Unix microseconds: when the window ends, or the trust lapses; indexed |
///
/// `<account>` is the digest of [`ThrottleKey::account`], never the email; `<ip>` the address
/// as counted (`-` without one).
///
/// # One transaction per step
/// [`reserve`](Throttle::reserve), [`record_success`](Throttle::record_success),
/// [`release`](Throttle::release) and [`hit`](Throttle::hit) each run in one `BEGIN IMMEDIATE`
/// transaction on a pooled
/// connection. SQLite runs one such transaction at a time per file, whichever process or
/// connection starts it, so each step is atomic: reserve reads the trusted address, then the
/// three counters that apply (the per-account one chosen by that trust), then counts under
/// all of them or none, and no concurrency gets past a limit.
/// [`give_back`](Throttle::give_back) is one `UPDATE` that takes one from a live window's
/// count (a window given back to zero stays until pruned; it is not live).
///
/// # Time and pruning
/// Windows are decided by the caller's `now` and the stored `ends_at`, in microseconds.
/// Nothing expires by itself: [`prune`](Throttle::prune) (run by
/// [`Authenticator::expire`](crate::Authenticator::expire)) deletes rows whose `ends_at` has
/// passed (ended windows, lapsed trust), 1000 rows per statement, and returns how many it
/// deleted.
///
/// ```no_run
/// # async fn run() -> Result<(), keycard::StoreError> {
/// use keycard::sqlite::Sqlite;
/// use keycard::throttle::ThrottleLimits;
/// let db = Sqlite::open("keycard.db").await?;
/// db.migrate().await?;
/// let throttle = db.throttle(ThrottleLimits::default());
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct SqliteThrottle {
    pool: Arc<Pool>,
    limits: ThrottleLimits,
    queries: Arc<Queries>,
}

impl std::fmt::Debug for SqliteThrottle {
    /// The file, options, table and limits only.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteThrottle")
            .field("pool", &self.pool)
            .field("table", &self.queries.table.name)
            .field("limits", &self.limits)
            .finish()
    }
}

impl SqliteThrottle {
    /// The default table name.
    pub const DEFAULT_TABLE: &'static str = "keycard_throttle";

    /// Opens (creating if needed) the database file at `path` with default
    /// [`SqliteOptions`], on a pool of its own. Does not create the table: call
    /// [`migrate`](Self::migrate). [`Sqlite::throttle`](super::Sqlite::throttle) shares the
    /// handle's pool.
    ///
    /// # Errors
    /// [`StoreError::Backend`] if the file cannot be opened or configured.
    pub async fn open(path: impl AsRef<Path>, limits: ThrottleLimits) -> Result<Self, StoreError> {
        Self::open_with(path, SqliteOptions::default(), limits).await
    }

    /// Opens (creating if needed) the database file at `path` with `options`.
    ///
    /// # Errors
    /// [`StoreError::Backend`] if the file cannot be opened or configured, or if `path` is
    /// empty or `:memory:` (every pooled connection would have a database of its own).
    pub async fn open_with(
        path: impl AsRef<Path>,
        options: SqliteOptions,
        limits: ThrottleLimits,
    ) -> Result<Self, StoreError> {
        Ok(Self::from_pool(
            Pool::open(path.as_ref(), options).await?,
            limits,
        ))
    }

    /// A throttle on an open pool (the [`Sqlite`](super::Sqlite) handle's), default table.
    pub(crate) fn from_pool(pool: Arc<Pool>, limits: ThrottleLimits) -> Self {
        Self {
            pool,
            limits,
            queries: Arc::new(Queries::new(TableName::builtin(Self::DEFAULT_TABLE))),
        }
    }

    /// Uses `table` instead of `keycard_throttle`.
    ///
    /// # Errors
    /// [`InvalidTableName`] unless `table` is a plain identifier (`[A-Za-z_][A-Za-z0-9_]*`).
    pub fn with_table(mut self, table: &str) -> Result<Self, InvalidTableName> {
        self.queries = Arc::new(Queries::new(TableName::parse(table, false)?));
        Ok(self)
    }

    /// The limits in force.
    pub fn limits(&self) -> &ThrottleLimits {
        &self.limits
    }

    /// Creates or upgrades the throttle table. Idempotent and safe to run from several
    /// processes at once (it runs in one `BEGIN IMMEDIATE` transaction). Applied versions are
    /// recorded in `keycard_migrations`.
    ///
    /// # Errors
    /// [`StoreError::Backend`] if a statement fails.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        let table = self.queries.table.clone();
        self.pool
            .run(move |conn| migrate(conn, &table, MIGRATIONS))
            .await
    }
}

#[async_trait]
impl Throttle for SqliteThrottle {
    async fn reserve(
        &self,
        key: &ThrottleKey,
        now: OffsetDateTime,
    ) -> Result<Admission, ThrottleError> {
        let q = Arc::clone(&self.queries);
        let trusted = shared::trusted_name(key);
        let counters: Vec<(Counter, i64)> = shared::reserve_counters(key, &self.limits)
            .into_iter()
            .map(|c| {
                let end = time_codec::to_micros(c.fresh_end(now));
                (c, end)
            })
            .collect();
        let now = time_codec::to_micros(now);
        self.pool
            .run(move |conn| {
                let tx = immediate(conn)?;
                let is_trusted = match &trusted {
                    Some(name) => ends_at(&tx, &q, name)?.is_some_and(|until| until > now),
                    None => false,
                };
                let counted: Vec<&(Counter, i64)> = counters
                    .iter()
                    .filter(|(c, _)| shared::applies(c.kind, is_trusted))
                    .collect();
                let mut live = Vec::with_capacity(counted.len());
                let mut refused: Option<(LimitKind, i64)> = None;
                for (c, _) in &counted {
                    let window =
                        window(&tx, &q, &c.name)?.filter(|&(count, end)| count > 0 && end > now);
                    if let Some((count, end)) = window {
                        let left = end - now;
                        if count >= i64::from(c.limit.max_failures())
                            && refused.is_none_or(|(_, longest)| left > longest)
                        {
                            refused = Some((c.kind, left));
                        }
                    }
                    live.push(window.is_some());
                }
                if let Some((limit, left)) = refused {
                    // Nothing was written; dropping the transaction rolls it back.
                    return Ok(Admission::Refused {
                        limit,
                        retry_after: Duration::from_micros(u64::try_from(left).unwrap_or(0)),
                    });
                }
                for ((c, fresh_end), live) in counted.into_iter().zip(live) {
                    if live {
                        execute(&tx, &q.increment, params![c.name])?;
                    } else {
                        execute(&tx, &q.open_window, params![c.name, fresh_end])?;
                    }
                }
                tx.commit().map_err(backend)?;
                Ok(Admission::Allowed(Reservation::new(!is_trusted)))
            })
            .await
            .map_err(ThrottleError::from)
    }

    async fn record_success(
        &self,
        key: &ThrottleKey,
        _reservation: Reservation,
        now: OffsetDateTime,
    ) -> Result<(), ThrottleError> {
        let q = Arc::clone(&self.queries);
        let forget = [
            shared::pair_name(key),
            shared::account_name(key),
            shared::account_trusted_name(key),
        ];
        let ip = shared::ip_name(key);
        let trusted = shared::trusted_until(&self.limits, now).and_then(|until| {
            shared::trusted_name(key).map(|name| (name, time_codec::to_micros(until)))
        });
        let now = time_codec::to_micros(now);
        self.pool
            .run(move |conn| {
                let tx = immediate(conn)?;
                for name in &forget {
                    execute(&tx, &q.delete, params![name])?;
                }
                if let Some(ip) = &ip {
                    give_back(&tx, &q, ip, now)?;
                }
                if let Some((name, until)) = &trusted {
                    execute(&tx, &q.trust, params![name, until])?;
                }
                tx.commit().map_err(backend)
            })
            .await
            .map_err(ThrottleError::from)
    }

    async fn release(
        &self,
        key: &ThrottleKey,
        reservation: Reservation,
        now: OffsetDateTime,
    ) -> Result<(), ThrottleError> {
        let q = Arc::clone(&self.queries);
        let counters = shared::counters(key, &self.limits, reservation.account_counter());
        let now = time_codec::to_micros(now);
        self.pool
            .run(move |conn| {
                let tx = immediate(conn)?;
                for c in &counters {
                    give_back(&tx, &q, &c.name, now)?;
                }
                tx.commit().map_err(backend)
            })
            .await
            .map_err(ThrottleError::from)
    }

    async fn hit(
        &self,
        key: &RateKey,
        limit: Limit,
        now: OffsetDateTime,
    ) -> Result<Admission, ThrottleError> {
        let q = Arc::clone(&self.queries);
        let name = key.as_str().to_owned();
        let fresh_end = time_codec::to_micros(window_end(now, limit.window()));
        let max = i64::from(limit.max_failures());
        let now = time_codec::to_micros(now);
        self.pool
            .run(move |conn| {
                let tx = immediate(conn)?;
                let live = window(&tx, &q, &name)?.filter(|&(count, end)| count > 0 && end > now);
                match live {
                    Some((count, end)) if count >= max => {
                        return Ok(Admission::Refused {
                            limit: LimitKind::Rate,
                            retry_after: Duration::from_micros(
                                u64::try_from(end - now).unwrap_or(0),
                            ),
                        });
                    }
                    Some(_) => execute(&tx, &q.increment, params![name])?,
                    None => execute(&tx, &q.open_window, params![name, fresh_end])?,
                }
                tx.commit().map_err(backend)?;
                Ok(Admission::Allowed(Reservation::counting(
                    AccountCounter::NotCounted,
                )))
            })
            .await
            .map_err(ThrottleError::from)
    }

    async fn give_back(&self, key: &RateKey, now: OffsetDateTime) -> Result<(), ThrottleError> {
        let q = Arc::clone(&self.queries);
        let name = key.as_str().to_owned();
        let now = time_codec::to_micros(now);
        self.pool
            .run(move |conn| {
                conn.prepare_cached(&q.give_back)
                    .and_then(|mut st| st.execute(params![name, now]))
                    .map(drop)
                    .map_err(backend)
            })
            .await
            .map_err(ThrottleError::from)
    }

    async fn prune(&self, now: OffsetDateTime) -> Result<u64, ThrottleError> {
        let now = time_codec::to_micros(now);
        self.pool
            .delete_in_batches(&self.queries, |q| &q.prune_batch, now, PRUNE_BATCH)
            .await
            .map_err(ThrottleError::from)
    }
}

fn immediate(conn: &mut Connection) -> Result<Transaction<'_>, StoreError> {
    conn.transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(backend)
}

fn execute(
    tx: &Transaction<'_>,
    sql: &str,
    params: impl rusqlite::Params,
) -> Result<(), StoreError> {
    tx.prepare_cached(sql)
        .and_then(|mut st| st.execute(params))
        .map(drop)
        .map_err(backend)
}

/// An entry's `ends_at`, if it exists.
fn ends_at(tx: &Transaction<'_>, q: &Queries, name: &str) -> Result<Option<i64>, StoreError> {
    tx.prepare_cached(&q.ends_at)
        .and_then(|mut st| st.query_row(params![name], |r| r.get(0)).optional())
        .map_err(backend)
}

/// A counter's count and window end, if it exists.
fn window(tx: &Transaction<'_>, q: &Queries, name: &str) -> Result<Option<(i64, i64)>, StoreError> {
    tx.prepare_cached(&q.window)
        .and_then(|mut st| {
            st.query_row(params![name], |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()
        })
        .map_err(backend)
}

/// Takes one back from a counter, deleting it when it reaches zero or its window has ended.
fn give_back(tx: &Transaction<'_>, q: &Queries, name: &str, now: i64) -> Result<(), StoreError> {
    match window(tx, q, name)? {
        Some((count, end)) if count <= 1 || end <= now => execute(tx, &q.delete, params![name]),
        Some(_) => execute(tx, &q.decrement, params![name]),
        None => Ok(()),
    }
}

#[derive(Debug)]
struct Queries {
    table: TableName,
    ends_at: String,
    window: String,
    increment: String,
    decrement: String,
    give_back: String,
    open_window: String,
    delete: String,
    trust: String,
    prune_batch: String,
}

impl Queries {
    fn new(table: TableName) -> Self {
        let t = table.quoted();
        Self {
            ends_at: format!("SELECT ends_at FROM {t} WHERE key = ?1"),
            window: format!("SELECT count, ends_at FROM {t} WHERE key = ?1"),
            increment: format!("UPDATE {t} SET count = count + 1 WHERE key = ?1"),
            decrement: format!("UPDATE {t} SET count = count - 1 WHERE key = ?1"),
            // A live window only (count 0 is not live: the next hit opens a fresh one).
            give_back: format!(
                "UPDATE {t} SET count = count - 1 WHERE key = ?1 AND count > 0 AND ends_at > ?2"
            ),
            open_window: format!(
                "INSERT INTO {t} (key, count, ends_at) VALUES (?1, 1, ?2) \
                 ON CONFLICT (key) DO UPDATE SET count = 1, ends_at = excluded.ends_at"
            ),
            delete: format!("DELETE FROM {t} WHERE key = ?1"),
            trust: format!(
                "INSERT INTO {t} (key, count, ends_at) VALUES (?1, 0, ?2) \
                 ON CONFLICT (key) DO UPDATE SET count = 0, ends_at = excluded.ends_at"
            ),
            prune_batch: format!(
                "DELETE FROM {t} WHERE key IN \
                 (SELECT key FROM {t} WHERE ends_at <= ?1 ORDER BY ends_at LIMIT ?2)"
            ),
            table,
        }
    }
}
