//! Redis throttle (feature `redis`): counts shared by every instance using one Redis.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use redis::{Script, ScriptInvocation};
use time::OffsetDateTime;

use super::connection::{connect_cluster, connect_manager, RedisConnection};
use super::tokens::error as store_error;
use crate::throttle::shared::{self, Counter};
use crate::throttle::{
    window_end, AccountCounter, Admission, Limit, LimitKind, RateKey, Reservation, Throttle,
    ThrottleError, ThrottleKey, ThrottleLimits,
};
use crate::time_codec::to_millis;
use crate::StoreError;

/// How long after its window (or trust) ends Redis keeps a key, in milliseconds: a margin for
/// instances whose clocks run behind the Redis server's.
const EXPIRY_GRACE_MS: i64 = 60_000;

/// Login attempts counted in Redis, shared by every application instance that uses it.
///
/// # Keys
/// With the default prefix `keycard:throttle:` (`<account>` is the 22-character digest of
/// [`ThrottleKey::account`], `<ip>` the address as counted, `-` without one):
///
/// | key | type | holds | expires (`PEXPIREAT`) |
/// |---|---|---|---|
/// | `keycard:throttle:{t}:pair:<account>:<ip>` | hash | `n` (count), `end` (window end, Unix ms) | a minute after `end` |
/// | `keycard:throttle:{t}:ip:<ip>` | hash | `n`, `end` | a minute after `end` |
/// | `keycard:throttle:{t}:account:<account>` | hash | `n`, `end` | a minute after `end` |
/// | `keycard:throttle:{t}:account_trusted:<account>` | hash | `n`, `end` | a minute after `end` |
/// | `keycard:throttle:{t}:trusted:<account>:<ip>` | string | trusted until (Unix ms) | a minute after that |
/// | `keycard:throttle:{t}:rate:<bucket>:<digest>` | hash | `n`, `end` ([`hit`](Throttle::hit); [`RateKey::as_str`]) | a minute after `end` |
///
/// **One hash tag.** Every key carries the Redis Cluster hash tag `{t}`, so all of them live
/// in one slot: each script below touches several keys, and Redis Cluster runs a script only
/// when all its keys share a slot. Throttle traffic is login traffic, small next to session
/// validation, so one slot (one shard) is plenty; the scripts receive every key in `KEYS` and
/// never build key names, as Cluster requires. (The first `{...}` of a key is its hash tag:
/// keep `{` and `}` out of the prefix.) The keys cannot be spread over several slots: reserve
/// checks the (account, address) pair, the address and the account together, so the one
/// thing all its keys share is the throttle itself. On a cluster
/// ([`RedisThrottle::connect_cluster`]) the throttle's load therefore sits on one master.
///
/// # One script per step
/// [`reserve`](Throttle::reserve), [`record_success`](Throttle::record_success),
/// [`release`](Throttle::release), [`hit`](Throttle::hit) and
/// [`give_back`](Throttle::give_back) are each one Lua script (`EVALSHA`), which Redis runs
/// atomically: reserve reads the trusted-address key, then the three counters that apply (the
/// per-account one chosen by that trust), refuses or counts under all of them, in one step, so concurrent attempts from any number of instances
/// never get past a limit.
///
/// # Time and expiry
/// Windows are decided by the caller's `now` (Unix milliseconds, passed to every script) and
/// the window end stored in each counter, never by the Redis server's clock, so every instance
/// and every test agrees. Redis' own expiry only cleans up: each counter expires a minute after
/// its window ends, each trusted address a minute after its trust lapses, by the Redis
/// server's clock. [`prune`](Throttle::prune) therefore has nothing to do and returns 0. An
/// instance whose clock runs more than a minute behind the Redis server's loses its counts
/// that much early.
///
/// Times are kept to the millisecond. Redis 5 or newer.
///
/// ```no_run
/// # async fn run() -> Result<(), keycard::StoreError> {
/// use keycard::redis::RedisThrottle;
/// use keycard::throttle::ThrottleLimits;
/// let throttle = RedisThrottle::connect("redis://127.0.0.1:6379", ThrottleLimits::default())
///     .await?
///     .with_key_prefix("myapp:throttle:");
/// # let _ = throttle;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct RedisThrottle {
    conn: RedisConnection,
    limits: ThrottleLimits,
    keys: Arc<Keys>,
    scripts: Arc<Scripts>,
}

impl std::fmt::Debug for RedisThrottle {
    /// The prefix and limits only.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisThrottle")
            .field("prefix", &self.keys.prefix)
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

impl RedisThrottle {
    /// The default key prefix.
    pub const DEFAULT_PREFIX: &'static str = "keycard:throttle:";

    /// Connects to `url` with the settings of
    /// [`RedisTokenStore::connect`](super::RedisTokenStore::connect): 2 s connection
    /// and response timeouts, one quick reconnection retry per failing request, and automatic
    /// reconnection.
    ///
    /// # Errors
    /// [`StoreError::Backend`] if the URL is invalid or the server cannot be reached.
    pub async fn connect(url: &str, limits: ThrottleLimits) -> Result<Self, StoreError> {
        Ok(Self::new(connect_manager(url).await?, limits))
    }

    /// Connects to a Redis Cluster through `urls`, its seed nodes, with the settings of
    /// [`RedisTokenStore::connect_cluster`](super::RedisTokenStore::connect_cluster).
    /// Every key of the throttle lives in one slot (see the type's docs).
    ///
    /// # Errors
    /// [`StoreError::Backend`] if no URL is given, a URL is invalid or no node can be
    /// reached.
    pub async fn connect_cluster<S: AsRef<str>>(
        urls: &[S],
        limits: ThrottleLimits,
    ) -> Result<Self, StoreError> {
        Ok(Self::new(connect_cluster(urls).await?, limits))
    }

    /// Uses your own connection: a [`ConnectionManager`](redis::aio::ConnectionManager), a
    /// [`ClusterConnection`](redis::cluster_async::ClusterConnection), or the token store's
    /// ([`RedisTokenStore::connection`](super::RedisTokenStore::connection)).
    pub fn new(conn: impl Into<RedisConnection>, limits: ThrottleLimits) -> Self {
        Self {
            conn: conn.into(),
            limits,
            keys: Arc::new(Keys::new(Self::DEFAULT_PREFIX.to_owned())),
            scripts: Arc::new(Scripts::new()),
        }
    }

    /// Prefixes every key with `prefix` instead of `keycard:throttle:` (the hash tag `{t}`
    /// follows it). Keep `{` and `}` out of it.
    #[must_use]
    pub fn with_key_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.keys = Arc::new(Keys::new(prefix.into()));
        self
    }

    /// The key prefix.
    pub fn key_prefix(&self) -> &str {
        &self.keys.prefix
    }

    /// The limits in force.
    pub fn limits(&self) -> &ThrottleLimits {
        &self.limits
    }

    fn counter_keys<'a>(&'a self, counters: &'a [Counter]) -> impl Iterator<Item = String> + 'a {
        counters.iter().map(|c| self.keys.key(&c.name))
    }
}

/// A driver error as a throttle error: decoding failures are corrupt data, the rest the
/// backend's.
fn error(e: redis::RedisError) -> ThrottleError {
    store_error(e).into()
}

#[async_trait]
impl Throttle for RedisThrottle {
    async fn reserve(
        &self,
        key: &ThrottleKey,
        now: OffsetDateTime,
    ) -> Result<Admission, ThrottleError> {
        // Without an address nothing is ever trusted: the key named here then never exists.
        let trusted =
            shared::trusted_name(key).unwrap_or_else(|| format!("trusted:{}:-", key.account()));
        let counters = shared::reserve_counters(key, &self.limits);
        let mut call = self.scripts.reserve.prepare_invoke();
        call.key(self.keys.key(&trusted))
            .arg(to_millis(now))
            .arg(counters.len());
        for (c, name) in counters.iter().zip(self.counter_keys(&counters)) {
            let end = to_millis(c.fresh_end(now));
            call.key(name)
                .arg(shared::kind_code(c.kind))
                .arg(c.limit.max_failures())
                .arg(end)
                .arg(end.saturating_add(EXPIRY_GRACE_MS));
        }
        let (verdict, detail, left): (i64, i64, i64) = invoke(&call, &self.conn).await?;
        match verdict {
            1 => Ok(Admission::Allowed(Reservation::new(detail == 1))),
            0 => Ok(Admission::Refused {
                limit: shared::kind_of(detail)?,
                retry_after: Duration::from_millis(u64::try_from(left).unwrap_or(0)),
            }),
            other => Err(ThrottleError::corrupt(format!(
                "the reserve script returned verdict {other}"
            ))),
        }
    }

    async fn record_success(
        &self,
        key: &ThrottleKey,
        _reservation: Reservation,
        now: OffsetDateTime,
    ) -> Result<(), ThrottleError> {
        let mut call = self.scripts.record_success.prepare_invoke();
        call.key(self.keys.key(&shared::pair_name(key)))
            .key(self.keys.key(&shared::account_name(key)))
            .key(self.keys.key(&shared::account_trusted_name(key)))
            .arg(to_millis(now));
        if let (Some(ip), Some(trusted)) = (shared::ip_name(key), shared::trusted_name(key)) {
            call.key(self.keys.key(&ip)).key(self.keys.key(&trusted));
            match shared::trusted_until(&self.limits, now) {
                Some(until) => {
                    let until = to_millis(until);
                    call.arg(until).arg(until.saturating_add(EXPIRY_GRACE_MS));
                }
                None => {
                    call.arg(0).arg(0);
                }
            }
        }
        let _: i64 = invoke(&call, &self.conn).await?;
        Ok(())
    }

    async fn release(
        &self,
        key: &ThrottleKey,
        reservation: Reservation,
        now: OffsetDateTime,
    ) -> Result<(), ThrottleError> {
        let counters = shared::counters(key, &self.limits, reservation.account_counter());
        let mut call = self.scripts.release.prepare_invoke();
        for name in self.counter_keys(&counters) {
            call.key(name);
        }
        call.arg(to_millis(now));
        let _: i64 = invoke(&call, &self.conn).await?;
        Ok(())
    }

    async fn hit(
        &self,
        key: &RateKey,
        limit: Limit,
        now: OffsetDateTime,
    ) -> Result<Admission, ThrottleError> {
        let end = to_millis(window_end(now, limit.window()));
        let mut call = self.scripts.hit.prepare_invoke();
        call.key(self.keys.key(key.as_str()))
            .arg(to_millis(now))
            .arg(limit.max_failures())
            .arg(end)
            .arg(end.saturating_add(EXPIRY_GRACE_MS));
        let (verdict, left): (i64, i64) = invoke(&call, &self.conn).await?;
        match verdict {
            1 => Ok(Admission::Allowed(Reservation::counting(
                AccountCounter::NotCounted,
            ))),
            0 => Ok(Admission::Refused {
                limit: LimitKind::Rate,
                retry_after: Duration::from_millis(u64::try_from(left).unwrap_or(0)),
            }),
            other => Err(ThrottleError::corrupt(format!(
                "the hit script returned verdict {other}"
            ))),
        }
    }

    async fn give_back(&self, key: &RateKey, now: OffsetDateTime) -> Result<(), ThrottleError> {
        let mut call = self.scripts.give_back.prepare_invoke();
        call.key(self.keys.key(key.as_str())).arg(to_millis(now));
        let _: i64 = invoke(&call, &self.conn).await?;
        Ok(())
    }

    /// Does nothing and returns 0: Redis expires every key by itself (see the type's docs).
    async fn prune(&self, _now: OffsetDateTime) -> Result<u64, ThrottleError> {
        Ok(0)
    }
}

async fn invoke<T: redis::FromRedisValue>(
    call: &ScriptInvocation<'_>,
    conn: &RedisConnection,
) -> Result<T, ThrottleError> {
    call.invoke_async(&mut conn.clone()).await.map_err(error)
}

#[derive(Debug)]
struct Keys {
    prefix: String,
    /// The prefix and the hash tag: `<prefix>{t}:`.
    tagged: String,
}

impl Keys {
    fn new(prefix: String) -> Self {
        Self {
            tagged: format!("{prefix}{{t}}:"),
            prefix,
        }
    }

    fn key(&self, name: &str) -> String {
        format!("{}{name}", self.tagged)
    }
}

/// The Lua scripts. `Script` sends `EVALSHA` and falls back to `EVAL` when the server has not
/// cached the script yet.
struct Scripts {
    reserve: Script,
    record_success: Script,
    release: Script,
    hit: Script,
    give_back: Script,
}

impl Scripts {
    fn new() -> Self {
        Self {
            reserve: Script::new(RESERVE),
            record_success: Script::new(RECORD_SUCCESS),
            release: Script::new(RELEASE),
            hit: Script::new(HIT),
            give_back: Script::new(GIVE_BACK),
        }
    }
}

/// KEYS: the trusted-address key, then the counters in check order. ARGV: now (ms), the
/// number of counters, then per counter: kind code, max, fresh window end (ms), expiry (ms).
/// A counter of kind 3 (the per-account counter of untrusted addresses) applies unless the
/// address is trusted, one of kind 5 (trusted addresses) only if it is; the others always. A
/// counter is live while `n > 0` and `end > now`.
///
/// Returns `{1, account_counted, 0}` when allowed (1: kind 3 was counted, 0: kind 5 or
/// none), `{0, kind, ms left}` when refused (the refusing counter whose window ends last; the
/// first in order on a tie).
const RESERVE: &str = include_str!("scripts/throttle_reserve.lua");

/// KEYS: the (account, IP) counter, the two account counters (untrusted, trusted), and with
/// an address the IP counter and the trusted-address key. ARGV: now (ms), and with an
/// address: trusted until (ms, 0 for no trust) and its expiry (ms). Forgets the account's
/// failures, takes one back from the IP counter, trusts the address.
const RECORD_SUCCESS: &str = include_str!("scripts/throttle_record_success.lua");

/// KEYS: the counters a reservation counted. ARGV: now (ms). Takes one back from each,
/// deleting a counter that reaches zero or whose window has ended.
const RELEASE: &str = include_str!("scripts/throttle_release.lua");

/// KEYS: the rate counter. ARGV: now (ms), max, fresh window end (ms), expiry (ms). Counts one
/// hit, or refuses it without counting when the live window is full.
///
/// Returns `{1, 0}` when allowed, `{0, ms left}` when refused.
const HIT: &str = include_str!("scripts/throttle_hit.lua");

/// KEYS: the rate counter. ARGV: now (ms). Takes one back from a live window's count,
/// deleting the counter when it reaches zero; does nothing to a window that has ended or a
/// missing counter, and never opens or extends a window.
///
/// Returns 1 when it took one back, 0 otherwise.
const GIVE_BACK: &str = include_str!("scripts/throttle_give_back.lua");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_share_one_hash_tag() {
        let keys = Keys::new(RedisThrottle::DEFAULT_PREFIX.to_owned());
        assert_eq!(
            keys.key("ip:192.0.2.1"),
            "keycard:throttle:{t}:ip:192.0.2.1"
        );
        assert_eq!(
            to_millis(OffsetDateTime::UNIX_EPOCH - time::Duration::nanoseconds(1)),
            -1
        );
    }
}
