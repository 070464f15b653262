//! The MySQL throttle: counts shared by every instance using one database.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::mysql::{MySql, MySqlPool};
use sqlx::Transaction;
use time::OffsetDateTime;

use super::migrate::{migrate, parse_table, quoted};
use super::{error as store_error, text};
use crate::sql::{InvalidTableName, Migration, TableName};
use crate::throttle::{
    AccountCounter, Admission, Limit, LimitKind, RateKey, Reservation, Throttle, ThrottleError,
    ThrottleKey, ThrottleLimits,
};
use crate::time_codec::to_micros;
use crate::StoreError;

/// The schema changes of the throttle table, in order.
const MIGRATIONS: &[Migration] = &[Migration {
    version: 1,
    sql: include_str!("../../migrations/mysql/throttle_0001.sql"),
}];

/// How many ended entries one prune statement deletes.
const PRUNE_BATCH: i64 = 1000;

/// How often a step is retried when InnoDB picks it as a deadlock victim (the whole
/// transaction was rolled back, so a retry is safe).
const RETRIES: u32 = 10;

/// Login attempts counted in a MySQL or MariaDB table, shared by every application instance
/// using the database. Get one from [`Mysql::throttle`](super::Mysql::throttle).
///
/// # Table
/// [`migrate`](Self::migrate) creates one table (default `keycard_throttle`, optionally
/// `database.table`; schema in `migrations/mysql/throttle_0001.sql`) holding every counter
/// and every trusted address, one row each:
///
/// | column | type | |
/// |---|---|---|
/// | `key` | `VARBINARY(512) PRIMARY KEY` | `pair:<account>:<ip>`, `ip:<ip>`, `account:<account>`, `account_trusted:<account>`, `trusted:<account>:<ip>`, or `rate:<bucket>:<digest>` ([`RateKey::as_str`]) |
/// | `count` | `BIGINT` | attempts counted in the window; 0 for a trusted address |
/// | `ends_at` | `BIGINT` | Unix microseconds: when the window ends, or the trust lapses; indexed |
///
/// `<account>` is [`ThrottleKey::account`] (a digest, never the email); `<ip>` is
/// [`ThrottleKey::ip_text`].
///
/// # One short transaction per step
/// [`reserve`](Throttle::reserve) is one `READ COMMITTED` transaction: it reads whether the
/// address is trusted, creates the attempt's missing counter rows and locks all of them with
/// one `INSERT ... ON DUPLICATE KEY UPDATE` (rows in key order, so concurrent reserves do not
/// deadlock on each other), reads them `FOR UPDATE`, and then either counts under every
/// applicable key (one more upsert) and commits, or rolls back having counted nothing. No
/// other step can change or delete a locked row before the commit, so under any concurrency,
/// from any number of instances, no limit is exceeded. [`hit`](Throttle::hit) is the same
/// over one row; [`record_success`](Throttle::record_success) locks its rows in key order,
/// then deletes, decrements and trusts in one transaction; [`release`](Throttle::release) is
/// one `UPDATE`, and so is [`give_back`](Throttle::give_back), which takes one from a live
/// window's count (a window given back to zero stays until pruned, and is not live). A step
/// that InnoDB rolls back as a deadlock victim (or after a lock wait timeout) is retried, up
/// to 10 times.
///
/// # Time and pruning
/// Windows are decided by the caller's `now` and the stored `ends_at`, never by the database
/// server's clock, to the microsecond. Nothing expires by itself: [`prune`](Throttle::prune)
/// (run by [`Authenticator::expire`](crate::Authenticator::expire)) deletes rows whose
/// `ends_at` has passed, 1000 per statement.
#[derive(Clone)]
pub struct MysqlThrottle {
    pool: MySqlPool,
    limits: ThrottleLimits,
    queries: Arc<Queries>,
}

impl std::fmt::Debug for MysqlThrottle {
    /// The table and limits only.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MysqlThrottle")
            .field("table", &self.queries.t)
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

impl MysqlThrottle {
    /// The default table name.
    pub const DEFAULT_TABLE: &'static str = "keycard_throttle";

    /// Uses `pool` and the default table. (Also [`Mysql::throttle`](super::Mysql::throttle).)
    pub fn new(pool: MySqlPool, limits: ThrottleLimits) -> Self {
        Self {
            pool,
            limits,
            queries: Arc::new(Queries::new(TableName::builtin(Self::DEFAULT_TABLE))),
        }
    }

    /// Uses `table` (`name` or `database.name`) instead of `keycard_throttle`.
    ///
    /// # Errors
    /// [`InvalidTableName`] unless each part is a plain identifier (`[A-Za-z_][A-Za-z0-9_]*`)
    /// and the name is at most 52 bytes.
    pub fn with_table(mut self, table: &str) -> Result<Self, InvalidTableName> {
        self.queries = Arc::new(Queries::new(parse_table(table)?));
        Ok(self)
    }

    /// The limits in force.
    pub fn limits(&self) -> &ThrottleLimits {
        &self.limits
    }

    /// The connection pool.
    pub fn pool(&self) -> &MySqlPool {
        &self.pool
    }

    /// Creates or upgrades the throttle table. Idempotent and safe to run from several
    /// instances at once (see [`Mysql::migrate`](super::Mysql::migrate)).
    ///
    /// # Errors
    /// [`StoreError::Backend`] if a statement fails.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        migrate(&self.pool, &self.queries.table, MIGRATIONS).await
    }

    /// Starts a `READ COMMITTED` transaction.
    async fn begin(&self) -> Result<Transaction<'static, MySql>, sqlx::Error> {
        let mut conn = self.pool.acquire().await?;
        sqlx::query("SET TRANSACTION ISOLATION LEVEL READ COMMITTED")
            .execute(&mut *conn)
            .await?;
        Transaction::begin(conn, None).await
    }

    async fn reserve_once(
        &self,
        key: &ThrottleKey,
        now: i64,
    ) -> Result<Result<Reservation, (LimitKind, i64)>, sqlx::Error> {
        let q = &self.queries;
        let mut tx = self.begin().await?;
        let trusted = match trusted_name(key) {
            Some(name) => sqlx::query_scalar::<_, i64>(&q.ends_at)
                .bind(name)
                .fetch_optional(&mut *tx)
                .await?
                .is_some_and(|ends| ends > now),
            None => false,
        };
        let mut counters: Vec<Counter> = counters(key, &self.limits)
            .into_iter()
            .filter(|c| applies(c.kind, trusted))
            .collect();
        lock(&mut tx, q, counters.iter().map(|c| c.name.as_str()), now).await?;
        let rows = read_locked(&mut tx, q, counters.iter().map(|c| c.name.as_str())).await?;
        for c in &mut counters {
            if let Some((_, count, ends)) = rows.iter().find(|(name, _, _)| *name == c.name) {
                c.state = Some((*count, *ends));
            }
        }
        // The refusing counter whose window ends last, the first in check order on a tie.
        let mut refused: Option<(LimitKind, i64)> = None;
        for c in &counters {
            if let Some((count, ends)) = c.live(now) {
                if count >= i64::from(c.limit.max_failures())
                    && refused.is_none_or(|(_, until)| ends > until)
                {
                    refused = Some((c.kind, ends));
                }
            }
        }
        if let Some(refusal) = refused {
            tx.rollback().await?;
            return Ok(Err(refusal));
        }
        let updates: Vec<(&str, i64, i64)> = counters
            .iter()
            .map(|c| match c.live(now) {
                Some((count, ends)) => (c.name.as_str(), count + 1, ends),
                None => (c.name.as_str(), 1, fresh_end(now, c.limit)),
            })
            .collect();
        write(&mut tx, q, &updates).await?;
        tx.commit().await?;
        Ok(Ok(Reservation::new(!trusted)))
    }

    async fn record_success_once(
        &self,
        key: &ThrottleKey,
        trusted: Option<(&str, i64)>,
    ) -> Result<(), sqlx::Error> {
        let q = &self.queries;
        let forget = [pair_name(key), account_name(key), account_trusted_name(key)];
        let ip = key.ip().map(|_| format!("ip:{}", key.ip_text()));
        let mut all: Vec<&str> = forget.iter().map(String::as_str).collect();
        all.extend(ip.as_deref());
        all.extend(trusted.map(|(name, _)| name));
        all.sort_unstable();
        let mut tx = self.begin().await?;
        let lock_statement = in_list(&q.lock_prefix, all.len(), " ORDER BY `key` FOR UPDATE");
        let mut lock = sqlx::query(&lock_statement);
        for name in &all {
            lock = lock.bind(*name);
        }
        lock.execute(&mut *tx).await?;
        let delete_statement = in_list(&q.delete_prefix, forget.len(), "");
        let mut delete = sqlx::query(&delete_statement);
        for name in &forget {
            delete = delete.bind(name.as_str());
        }
        delete.execute(&mut *tx).await?;
        if let Some(ip) = &ip {
            sqlx::query(&in_list(&q.decrement_prefix, 1, " AND `count` > 0"))
                .bind(ip.as_str())
                .execute(&mut *tx)
                .await?;
        }
        if let Some((name, until)) = trusted {
            sqlx::query(&q.trust)
                .bind(name)
                .bind(until)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await
    }

    async fn hit_once(
        &self,
        key: &RateKey,
        limit: Limit,
        now: i64,
    ) -> Result<Result<(), i64>, sqlx::Error> {
        let q = &self.queries;
        let mut tx = self.begin().await?;
        lock(&mut tx, q, [key.as_str()], now).await?;
        let rows = read_locked(&mut tx, q, [key.as_str()]).await?;
        let state = rows.first().map(|(_, count, ends)| (*count, *ends));
        let counter = Counter {
            name: key.as_str().to_owned(),
            kind: LimitKind::Rate,
            limit,
            state,
        };
        let update = match counter.live(now) {
            Some((count, ends)) if count >= i64::from(limit.max_failures()) => {
                tx.rollback().await?;
                return Ok(Err(ends));
            }
            Some((count, ends)) => (key.as_str(), count + 1, ends),
            None => (key.as_str(), 1, fresh_end(now, limit)),
        };
        write(&mut tx, q, &[update]).await?;
        tx.commit().await?;
        Ok(Ok(()))
    }
}

/// A driver error as a throttle error: decoding failures are corrupt data, the rest the
/// backend's.
fn error(e: sqlx::Error) -> ThrottleError {
    store_error(e).into()
}

#[async_trait]
impl Throttle for MysqlThrottle {
    async fn reserve(
        &self,
        key: &ThrottleKey,
        now: OffsetDateTime,
    ) -> Result<Admission, ThrottleError> {
        let now = to_micros(now);
        match retrying(|| self.reserve_once(key, now))
            .await
            .map_err(error)?
        {
            Ok(reservation) => Ok(Admission::Allowed(reservation)),
            Err((limit, ends)) => Ok(Admission::Refused {
                limit,
                retry_after: until(ends, now),
            }),
        }
    }

    async fn record_success(
        &self,
        key: &ThrottleKey,
        _reservation: Reservation,
        now: OffsetDateTime,
    ) -> Result<(), ThrottleError> {
        let trusted_for = self.limits.trusted_duration();
        let trusted = trusted_name(key)
            .filter(|_| !trusted_for.is_zero())
            .map(|name| (name, to_micros(now).saturating_add(micros(trusted_for))));
        let trusted = trusted
            .as_ref()
            .map(|(name, until)| (name.as_str(), *until));
        retrying(|| self.record_success_once(key, trusted))
            .await
            .map_err(error)
    }

    async fn release(
        &self,
        key: &ThrottleKey,
        reservation: Reservation,
        _now: OffsetDateTime,
    ) -> Result<(), ThrottleError> {
        let mut names = vec![pair_name(key)];
        if key.ip().is_some() {
            names.push(format!("ip:{}", key.ip_text()));
        }
        match reservation.account_counter() {
            AccountCounter::Untrusted => names.push(account_name(key)),
            AccountCounter::Trusted => names.push(account_trusted_name(key)),
            _ => {}
        }
        let statement = in_list(
            &self.queries.decrement_prefix,
            names.len(),
            " AND `count` > 0",
        );
        retrying(|| async {
            let mut release = sqlx::query(&statement);
            for name in &names {
                release = release.bind(name.as_str());
            }
            release.execute(&self.pool).await.map(drop)
        })
        .await
        .map_err(error)
    }

    async fn hit(
        &self,
        key: &RateKey,
        limit: Limit,
        now: OffsetDateTime,
    ) -> Result<Admission, ThrottleError> {
        let now = to_micros(now);
        match retrying(|| self.hit_once(key, limit, now))
            .await
            .map_err(error)?
        {
            Ok(()) => Ok(Admission::Allowed(Reservation::counting(
                AccountCounter::NotCounted,
            ))),
            Err(ends) => Ok(Admission::Refused {
                limit: LimitKind::Rate,
                retry_after: until(ends, now),
            }),
        }
    }

    async fn give_back(&self, key: &RateKey, now: OffsetDateTime) -> Result<(), ThrottleError> {
        let now = to_micros(now);
        retrying(|| {
            sqlx::query(&self.queries.give_back)
                .bind(key.as_str())
                .bind(now)
                .execute(&self.pool)
        })
        .await
        .map(drop)
        .map_err(error)
    }

    async fn prune(&self, now: OffsetDateTime) -> Result<u64, ThrottleError> {
        let now = to_micros(now);
        let mut total = 0;
        loop {
            let done = retrying(|| {
                sqlx::query(&self.queries.prune_batch)
                    .bind(now)
                    .bind(PRUNE_BATCH)
                    .execute(&self.pool)
            })
            .await
            .map_err(error)?;
            total += done.rows_affected();
            if done.rows_affected() < PRUNE_BATCH.unsigned_abs() {
                return Ok(total);
            }
        }
    }
}

/// Runs `step` again while InnoDB rolls it back as a deadlock victim or after a lock wait
/// timeout, with a short random pause, at most [`RETRIES`] times.
async fn retrying<T, F, Fut>(mut step: F) -> Result<T, sqlx::Error>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, sqlx::Error>>,
{
    let mut attempt = 0;
    loop {
        match step().await {
            Err(e) if attempt < RETRIES && is_conflict(&e) => {
                attempt += 1;
                let pause = rand::random_range(1..=2_000 * u64::from(attempt));
                tokio::time::sleep(Duration::from_micros(pause)).await;
            }
            done => return done,
        }
    }
}

/// ER_LOCK_DEADLOCK (1213) or ER_LOCK_WAIT_TIMEOUT (1205).
fn is_conflict(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Database(db) => db
            .try_downcast_ref::<sqlx::mysql::MySqlDatabaseError>()
            .is_some_and(|e| matches!(e.number(), 1205 | 1213)),
        _ => false,
    }
}

/// Creates the missing rows among `names` (count 0: not live) and locks every one of them,
/// in key order.
async fn lock<'a>(
    tx: &mut Transaction<'static, MySql>,
    q: &Queries,
    names: impl IntoIterator<Item = &'a str>,
    now: i64,
) -> Result<(), sqlx::Error> {
    let mut names: Vec<&str> = names.into_iter().collect();
    names.sort_unstable();
    let statement = format!(
        "{}{} ON DUPLICATE KEY UPDATE `count` = `count`",
        q.insert_prefix,
        vec!["(?, 0, ?)"; names.len()].join(", ")
    );
    let mut insert = sqlx::query(&statement);
    for name in names {
        insert = insert.bind(name).bind(now);
    }
    insert.execute(&mut **tx).await.map(drop)
}

/// The locked rows among `names`: name, count, window end.
async fn read_locked<'a>(
    tx: &mut Transaction<'static, MySql>,
    q: &Queries,
    names: impl IntoIterator<Item = &'a str>,
) -> Result<Vec<(String, i64, i64)>, sqlx::Error> {
    let names: Vec<&str> = names.into_iter().collect();
    let statement = in_list(&q.select_prefix, names.len(), " FOR UPDATE");
    let mut select = sqlx::query_as::<_, (Vec<u8>, i64, i64)>(&statement);
    for name in names {
        select = select.bind(name);
    }
    let rows = select.fetch_all(&mut **tx).await?;
    rows.into_iter()
        .map(|(name, count, ends)| {
            text(name)
                .map(|name| (name, count, ends))
                .map_err(|e| sqlx::Error::Decode(Box::new(e)))
        })
        .collect()
}

/// Writes the new count and window end of locked rows.
async fn write(
    tx: &mut Transaction<'static, MySql>,
    q: &Queries,
    rows: &[(&str, i64, i64)],
) -> Result<(), sqlx::Error> {
    let statement = format!(
        "{}{} ON DUPLICATE KEY UPDATE `count` = VALUES(`count`), ends_at = VALUES(ends_at)",
        q.insert_prefix,
        vec!["(?, ?, ?)"; rows.len()].join(", ")
    );
    let mut upsert = sqlx::query(&statement);
    for (name, count, ends) in rows {
        upsert = upsert.bind(*name).bind(*count).bind(*ends);
    }
    upsert.execute(&mut **tx).await.map(drop)
}

/// `prefix` followed by `(?, ?, ...)` with `n` placeholders and `suffix`.
fn in_list(prefix: &str, n: usize, suffix: &str) -> String {
    format!("{prefix}({}){suffix}", vec!["?"; n].join(", "))
}

/// One counter an attempt touches, and its row once read.
#[derive(Debug)]
struct Counter {
    name: String,
    kind: LimitKind,
    limit: Limit,
    /// Count and window end, as locked.
    state: Option<(i64, i64)>,
}

impl Counter {
    /// Count and window end, if the window is live at `now`.
    fn live(&self, now: i64) -> Option<(i64, i64)> {
        self.state.filter(|&(count, ends)| count > 0 && ends > now)
    }
}

/// Every counter a reserve under `key` may count, in check order: (account, IP), IP (with an
/// address), account (untrusted addresses), account (trusted addresses, with an address).
fn counters(key: &ThrottleKey, limits: &ThrottleLimits) -> Vec<Counter> {
    let counter = |name: String, kind: LimitKind, limit: Limit| Counter {
        name,
        kind,
        limit,
        state: None,
    };
    let mut counters = vec![counter(
        pair_name(key),
        LimitKind::AccountIp,
        limits.per_account_ip_limit(),
    )];
    if key.ip().is_some() {
        counters.push(counter(
            format!("ip:{}", key.ip_text()),
            LimitKind::Ip,
            limits.per_ip_limit(),
        ));
    }
    counters.push(counter(
        account_name(key),
        LimitKind::Account,
        limits.per_account_limit(),
    ));
    if key.ip().is_some() {
        counters.push(counter(
            account_trusted_name(key),
            LimitKind::AccountTrusted,
            limits.per_account_trusted_limit(),
        ));
    }
    counters
}

/// Whether counter `kind` applies to an attempt from a trusted address or not: exactly one
/// of the two per-account counters does.
fn applies(kind: LimitKind, trusted: bool) -> bool {
    match kind {
        LimitKind::Account => !trusted,
        LimitKind::AccountTrusted => trusted,
        _ => true,
    }
}

fn pair_name(key: &ThrottleKey) -> String {
    format!("pair:{}:{}", key.account(), key.ip_text())
}

fn account_name(key: &ThrottleKey) -> String {
    format!("account:{}", key.account())
}

fn account_trusted_name(key: &ThrottleKey) -> String {
    format!("account_trusted:{}", key.account())
}

/// The entry trusting the key's address for its account, with an address.
fn trusted_name(key: &ThrottleKey) -> Option<String> {
    key.ip()
        .map(|_| format!("trusted:{}:{}", key.account(), key.ip_text()))
}

/// `d` in microseconds, saturating.
fn micros(d: Duration) -> i64 {
    i64::try_from(d.as_micros()).unwrap_or(i64::MAX)
}

/// The end of a window of `limit` opening at `now` (microseconds).
fn fresh_end(now: i64, limit: Limit) -> i64 {
    now.saturating_add(micros(limit.window()))
}

/// The time from `now` until `end` (microseconds; zero if past).
fn until(end: i64, now: i64) -> Duration {
    Duration::from_micros(end.saturating_sub(now).max(0).unsigned_abs())
}

/// The statements over the throttle table (those with a variable number of keys are
/// completed per call).
#[derive(Debug)]
struct Queries {
    table: TableName,
    /// The quoted table.
    t: String,
    ends_at: String,
    insert_prefix: String,
    select_prefix: String,
    lock_prefix: String,
    delete_prefix: String,
    decrement_prefix: String,
    give_back: String,
    trust: String,
    prune_batch: String,
}

impl Queries {
    fn new(table: TableName) -> Self {
        let t = quoted(&table);
        Self {
            ends_at: format!("SELECT ends_at FROM {t} WHERE `key` = ?"),
            insert_prefix: format!("INSERT INTO {t} (`key`, `count`, ends_at) VALUES "),
            select_prefix: format!("SELECT `key`, `count`, ends_at FROM {t} WHERE `key` IN "),
            lock_prefix: format!("SELECT `key` FROM {t} WHERE `key` IN "),
            delete_prefix: format!("DELETE FROM {t} WHERE `key` IN "),
            decrement_prefix: format!("UPDATE {t} SET `count` = `count` - 1 WHERE `key` IN "),
            // A live window only (count 0 is not live: the next hit opens a fresh one).
            give_back: format!(
                "UPDATE {t} SET `count` = `count` - 1 \
                 WHERE `key` = ? AND `count` > 0 AND ends_at > ?"
            ),
            trust: format!(
                "INSERT INTO {t} (`key`, `count`, ends_at) VALUES (?, 0, ?) \
                 ON DUPLICATE KEY UPDATE `count` = 0, ends_at = VALUES(ends_at)"
            ),
            prune_batch: format!("DELETE FROM {t} WHERE ends_at <= ? ORDER BY ends_at LIMIT ?"),
            t,
            table,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_and_windows() {
        let limits = ThrottleLimits::default();
        let key = ThrottleKey::new("ann@example.com", Some("2001:db8::1".parse().expect("ip")));
        let a = key.account();
        let names: Vec<String> = counters(&key, &limits)
            .into_iter()
            .map(|c| c.name)
            .collect();
        assert_eq!(
            names,
            [
                format!("pair:{a}:2001:db8::"),
                "ip:2001:db8::".to_owned(),
                format!("account:{a}"),
                format!("account_trusted:{a}"),
            ]
        );
        assert_eq!(trusted_name(&key), Some(format!("trusted:{a}:2001:db8::")));
        let none = ThrottleKey::new("ann@example.com", None);
        assert_eq!(counters(&none, &limits).len(), 2);
        assert_eq!(trusted_name(&none), None);
        assert_eq!(until(5, 2), Duration::from_micros(3));
        assert_eq!(until(2, 5), Duration::ZERO);
        assert_eq!(
            fresh_end(i64::MAX - 1, Limit::new(1, Duration::MAX)),
            i64::MAX
        );
        assert_eq!(in_list("x ", 3, ";"), "x (?, ?, ?);");
    }
}
