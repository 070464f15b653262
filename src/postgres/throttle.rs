//! The PostgreSQL throttle: counts shared by every instance using one database.

use std::sync::Arc;

use async_trait::async_trait;
use sqlx::postgres::PgPool;
use time::OffsetDateTime;

use super::{connect_pool, error, migrate};
use crate::sql::InvalidTableName;
use crate::sql::{Migration, TableName};
use crate::throttle::shared;
use crate::throttle::ThrottleError;
use crate::throttle::{
    until, window_end, AccountCounter, Admission, Limit, LimitKind, RateKey, Reservation, Throttle,
    ThrottleKey, ThrottleLimits,
};
use crate::time_codec::truncate_to_micros;
use crate::StoreError;

/// The schema changes of the throttle table, in order.
const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        sql: include_str!("../../migrations/postgres/throttle_0001.sql"),
    },
    Migration {
        version: 2,
        sql: include_str!("../../migrations/postgres/throttle_0002.sql"),
    },
];

/// How many ended entries one prune statement deletes.
const PRUNE_BATCH: i64 = 1000;

/// The longest suffix added to the table name for the functions (`_record_success`), so that
/// every function name fits PostgreSQL's 63-byte identifiers.
const LONGEST_SUFFIX: usize = "_record_success".len();

/// Login attempts counted in a PostgreSQL table, shared by every application instance using
/// the database.
///
/// # Table and functions
/// [`migrate`](Self::migrate) creates one table (default `keycard_throttle`, optionally
/// schema-qualified; schema in `migrations/postgres/throttle_0001.sql` and
/// `throttle_0002.sql`) holding every counter and every trusted address, one row each, and
/// four PL/pgSQL functions next to it, `<table>_reserve`, `<table>_record_success`,
/// `<table>_release` and `<table>_hit`:
///
/// | column | type | |
/// |---|---|---|
/// | `key` | `TEXT PRIMARY KEY` | `pair:<account>:<ip>`, `ip:<ip>`, `account:<account>`, `account_trusted:<account>`, `trusted:<account>:<ip>`, or `rate:<bucket>:<digest>` ([`RateKey::as_str`], counted by [`hit`](Throttle::hit)) |
/// | `count` | `BIGINT` | attempts counted in the window; 0 for a trusted address |
/// | `ends_at` | `TIMESTAMPTZ` | when the window ends, or the trust lapses; indexed |
///
/// `<account>` is the digest of [`ThrottleKey::account`], never the email; `<ip>` the address
/// as counted (`-` without one).
///
/// # One statement per step
/// [`reserve`](Throttle::reserve), [`record_success`](Throttle::record_success),
/// [`release`](Throttle::release) and [`hit`](Throttle::hit) are each one `SELECT` of one of
/// those functions, so each is one transaction; [`give_back`](Throttle::give_back) is one
/// `UPDATE` of the key's row, which takes one from a live window's count (it waits for the
/// row's lock and rechecks the window, so it is atomic with a concurrent hit; a window given
/// back to zero stays until pruned, and is not live). Reserve creates the attempt's missing
/// counter rows and locks all of them, in key order (concurrent reserves never deadlock), with one `INSERT ... ON CONFLICT DO
/// UPDATE`, then checks every limit and counts under every key or none: under any
/// concurrency, from any number of instances, no limit is exceeded. (A plain `ON CONFLICT DO
/// NOTHING` followed by `SELECT ... FOR UPDATE` would leave a gap in which a concurrent prune
/// could delete an ended row before it is locked.) The functions need the default `READ
/// COMMITTED` isolation.
///
/// # Time and pruning
/// Windows are decided by the caller's `now` and the stored `ends_at`, never by the database
/// server's clock. Times are kept to the microsecond. Nothing expires by itself:
/// [`prune`](Throttle::prune) (run by
/// [`Authenticator::expire`](crate::Authenticator::expire)) deletes rows whose `ends_at` has
/// passed (ended windows, lapsed trust), 1000 rows per statement, skipping rows another
/// instance holds, and returns how many it deleted.
///
/// ```no_run
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// use keycard::postgres::{Postgres, PostgresThrottle};
/// use keycard::throttle::ThrottleLimits;
/// let db = Postgres::connect("postgres://app@db/app").await?;
/// db.migrate().await?;
/// let throttle = db.throttle(ThrottleLimits::default());
/// // Or, in a table of your choosing, on the same pool:
/// let custom = PostgresThrottle::new(db.pool().clone(), ThrottleLimits::default())
///     .with_table("auth.throttle")?;
/// custom.migrate().await?;
/// # let _ = throttle;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct PostgresThrottle {
    pool: PgPool,
    limits: ThrottleLimits,
    queries: Arc<Queries>,
}

impl std::fmt::Debug for PostgresThrottle {
    /// The table and limits only.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresThrottle")
            .field("table", &self.queries.table.quoted())
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

impl PostgresThrottle {
    /// The default table name.
    pub const DEFAULT_TABLE: &'static str = "keycard_throttle";

    /// Connects a pool of up to 10 connections to `url`, as
    /// [`PostgresTokenStore::connect`](super::PostgresTokenStore::connect) does. Does
    /// not create the table: call [`migrate`](Self::migrate).
    ///
    /// # Errors
    /// [`StoreError::Backend`] if the URL is invalid or the server cannot be reached.
    pub async fn connect(url: &str, limits: ThrottleLimits) -> Result<Self, StoreError> {
        Ok(Self::new(connect_pool(url, 10).await?, limits))
    }

    /// Uses an existing pool (for example [`Postgres::pool`](super::Postgres::pool)).
    pub fn new(pool: PgPool, limits: ThrottleLimits) -> Self {
        Self {
            pool,
            limits,
            queries: Arc::new(Queries::new(TableName::builtin(Self::DEFAULT_TABLE))),
        }
    }

    /// Uses `table` (`name` or `schema.name`) instead of `keycard_throttle`.
    ///
    /// # Errors
    /// [`InvalidTableName`] unless each part is a plain identifier (`[A-Za-z_][A-Za-z0-9_]*`)
    /// and the name is at most 48 bytes (the function names add up to 15).
    pub fn with_table(mut self, table: &str) -> Result<Self, InvalidTableName> {
        let parsed = TableName::parse(table, true)?;
        if parsed.name.len() + LONGEST_SUFFIX > 63 {
            return Err(InvalidTableName(table.to_owned()));
        }
        self.queries = Arc::new(Queries::new(parsed));
        Ok(self)
    }

    /// The limits in force.
    pub fn limits(&self) -> &ThrottleLimits {
        &self.limits
    }

    /// The connection pool.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Creates or upgrades the table and its functions (and its schema, if qualified).
    /// Idempotent; runs in one transaction under the advisory lock of
    /// [`PostgresTokenStore::migrate`](super::PostgresTokenStore::migrate), so
    /// instances starting together do not race. Applied versions are recorded in
    /// `keycard_migrations` in the same schema.
    ///
    /// # Errors
    /// [`StoreError::Backend`] if a statement fails.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        migrate(&self.pool, &self.queries.table, MIGRATIONS).await
    }
}

/// What the reserve function returns.
type Verdict = (bool, bool, Option<i16>, Option<OffsetDateTime>);

#[async_trait]
impl Throttle for PostgresThrottle {
    async fn reserve(
        &self,
        key: &ThrottleKey,
        now: OffsetDateTime,
    ) -> Result<Admission, ThrottleError> {
        let now = truncate_to_micros(now);
        let counters = shared::reserve_counters(key, &self.limits);
        let (allowed, account_counted, kind, ends): Verdict = sqlx::query_as(&self.queries.reserve)
            .bind(now)
            .bind(shared::trusted_name(key))
            .bind(counters.iter().map(|c| c.name.clone()).collect::<Vec<_>>())
            .bind(
                counters
                    .iter()
                    .map(|c| shared::kind_code(c.kind))
                    .collect::<Vec<_>>(),
            )
            .bind(
                counters
                    .iter()
                    .map(|c| i64::from(c.limit.max_failures()))
                    .collect::<Vec<_>>(),
            )
            .bind(
                counters
                    .iter()
                    .map(|c| truncate_to_micros(c.fresh_end(now)))
                    .collect::<Vec<_>>(),
            )
            .fetch_one(&self.pool)
            .await
            .map_err(error)?;
        if allowed {
            return Ok(Admission::Allowed(Reservation::new(account_counted)));
        }
        match (kind, ends) {
            (Some(kind), Some(ends)) => Ok(Admission::Refused {
                limit: shared::kind_of(i64::from(kind))?,
                retry_after: until(ends, now),
            }),
            _ => Err(ThrottleError::corrupt(
                "the reserve function refused without naming a limit",
            )),
        }
    }

    async fn record_success(
        &self,
        key: &ThrottleKey,
        _reservation: Reservation,
        now: OffsetDateTime,
    ) -> Result<(), ThrottleError> {
        let trusted =
            shared::trusted_until(&self.limits, truncate_to_micros(now)).and_then(|until| {
                shared::trusted_name(key).map(|name| (name, truncate_to_micros(until)))
            });
        sqlx::query(&self.queries.record_success)
            .bind(vec![
                shared::pair_name(key),
                shared::account_name(key),
                shared::account_trusted_name(key),
            ])
            .bind(shared::ip_name(key))
            .bind(trusted.as_ref().map(|(name, _)| name.clone()))
            .bind(trusted.map(|(_, until)| until))
            .execute(&self.pool)
            .await
            .map_err(error)?;
        Ok(())
    }

    async fn release(
        &self,
        key: &ThrottleKey,
        reservation: Reservation,
        _now: OffsetDateTime,
    ) -> Result<(), ThrottleError> {
        let names: Vec<String> = shared::counters(key, &self.limits, reservation.account_counter())
            .into_iter()
            .map(|c| c.name)
            .collect();
        sqlx::query(&self.queries.release)
            .bind(names)
            .execute(&self.pool)
            .await
            .map_err(error)?;
        Ok(())
    }

    async fn hit(
        &self,
        key: &RateKey,
        limit: Limit,
        now: OffsetDateTime,
    ) -> Result<Admission, ThrottleError> {
        let now = truncate_to_micros(now);
        let (allowed, ends): (bool, Option<OffsetDateTime>) = sqlx::query_as(&self.queries.hit)
            .bind(key.as_str())
            .bind(now)
            .bind(i64::from(limit.max_failures()))
            .bind(truncate_to_micros(window_end(now, limit.window())))
            .fetch_one(&self.pool)
            .await
            .map_err(error)?;
        match (allowed, ends) {
            (true, _) => Ok(Admission::Allowed(Reservation::counting(
                AccountCounter::NotCounted,
            ))),
            (false, Some(ends)) => Ok(Admission::Refused {
                limit: LimitKind::Rate,
                retry_after: until(ends, now),
            }),
            (false, None) => Err(ThrottleError::corrupt(
                "the hit function refused without a window end",
            )),
        }
    }

    async fn give_back(&self, key: &RateKey, now: OffsetDateTime) -> Result<(), ThrottleError> {
        sqlx::query(&self.queries.give_back)
            .bind(key.as_str())
            .bind(truncate_to_micros(now))
            .execute(&self.pool)
            .await
            .map_err(error)?;
        Ok(())
    }

    async fn prune(&self, now: OffsetDateTime) -> Result<u64, ThrottleError> {
        let mut total = 0;
        loop {
            let done = sqlx::query(&self.queries.prune_batch)
                .bind(truncate_to_micros(now))
                .bind(PRUNE_BATCH)
                .execute(&self.pool)
                .await
                .map_err(error)?;
            total += done.rows_affected();
            if done.rows_affected() < PRUNE_BATCH as u64 {
                return Ok(total);
            }
        }
    }
}

#[derive(Debug)]
struct Queries {
    table: TableName,
    reserve: String,
    record_success: String,
    release: String,
    hit: String,
    give_back: String,
    prune_batch: String,
}

impl Queries {
    fn new(table: TableName) -> Self {
        let t = table.quoted();
        let function = |suffix: &str| table.sibling(&format!("{}_{suffix}", table.name));
        Self {
            reserve: format!(
                "SELECT o_allowed, o_account_counted, o_refused_kind, o_refused_until \
                 FROM {}($1, $2, $3, $4, $5, $6)",
                function("reserve")
            ),
            record_success: format!("SELECT {}($1, $2, $3, $4)", function("record_success")),
            release: format!("SELECT {}($1)", function("release")),
            hit: format!(
                "SELECT o_allowed, o_until FROM {}($1, $2, $3, $4)",
                function("hit")
            ),
            // A live window only (count 0 is not live: the next hit opens a fresh one).
            give_back: format!(
                "UPDATE {t} SET count = count - 1 WHERE key = $1 AND count > 0 AND ends_at > $2"
            ),
            prune_batch: format!(
                "DELETE FROM {t} WHERE key IN (SELECT key FROM {t} WHERE ends_at <= $1 \
                 ORDER BY ends_at LIMIT $2 FOR UPDATE SKIP LOCKED)"
            ),
            table,
        }
    }
}
