//! The in-process throttle: the embedded default.

use std::collections::hash_map::RandomState;
use std::fmt;
use std::hash::{BuildHasher, Hash};
use std::net::IpAddr;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use time::OffsetDateTime;

mod buckets;

use buckets::{capacities, Buckets, BUCKETS};

use super::ThrottleError;
use super::{
    AccountCounter, Admission, Limit, LimitKind, RateKey, Reservation, Throttle, ThrottleKey,
    ThrottleLimits,
};

/// Counts login attempts in this process: one lock around two bounded tables, so every
/// reserve is atomic. Each table is split into buckets: [`prune`](Throttle::prune) holds the
/// lock for one bucket at a time and yields to the async runtime between them, and no attempt
/// by an untrusted address scans a whole table, even a full one (a refused attempt costs about
/// a microsecond under the lock; BENCHMARKS.md).
///
/// Each process counts on its own, and counts are lost on restart: with several instances,
/// or when a restart must not grant fresh guesses, use a shared backend (see the
/// [module docs](crate::throttle)).
///
/// # Bounded by memory, and failing safe
/// The tables are sized from a byte budget ([`with_memory_limit`](Self::with_memory_limit);
/// default [`DEFAULT_MEMORY_LIMIT`](Self::DEFAULT_MEMORY_LIMIT), 64 MiB, which holds
/// [`DEFAULT_CAPACITY`](Self::DEFAULT_CAPACITY), about 1.38 million, counters and 350,000
/// trusted addresses). A counter takes a 25-byte table slot (an 8-byte key, a 16-byte window,
/// a control byte); the tables are sized so that a full one fills at most 70% of its slots and
/// never grows past the budget: measured with `cargo bench --bench throttle`, 52.4 bytes per
/// counter at 1 million counters (50.0 MiB) and 38.0 at the default capacity (the same 50.0
/// MiB). Keys are kept as 64-bit keyed hashes (SipHash with a
/// random key per throttle) of the account digest and address: two keys sharing a hash would
/// share a counter, a chance of about 3 in 100 million for a full table, which no client can
/// aim for.
///
/// When the counter table holds [`capacity`](Self::capacity) counters of live windows, an
/// attempt that needs a new counter is refused ([`LimitKind::Capacity`], which login reports
/// as [`Error::Overloaded`](crate::Error::Overloaded), HTTP 503) rather than forgetting a live
/// window: junk keys can never free a locked attacker. Attempts on keys already counted go on
/// as usual. Windows that ended are dropped by [`prune`](Throttle::prune) (run by
/// [`Authenticator::expire`](crate::Authenticator::expire)) or when the table fills.
///
/// **A full table never refuses a trusted address.** Attackers with fresh accounts and
/// addresses can fill the table, but never an attempt from an address trusted for its account
/// (one that logged into it, which takes the password). Such attempts first use a reserve of
/// `capacity / 16` more counters that untrusted attempts cannot use; when the reserve is full
/// too, they make room by evicting the window whose loss costs least: one that has ended if
/// any, otherwise the one with the fewest counted attempts that has not reached its limit
/// (forgetting it gives back at most that many attempts to whoever filled it). A live window
/// at its limit (a locked key) is never evicted: only if every window in the table is locked
/// is a trusted attempt refused. Eviction scans one bucket (1/64 of the table) under the lock.
/// When the trusted-address table is full, new successes are not remembered (those users meet
/// the untrusted per-account limit like anyone else, until room frees up).
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// use std::time::Duration;
/// use keycard::throttle::{Admission, Limit, MemoryThrottle, Throttle, ThrottleKey, ThrottleLimits};
///
/// let limits = ThrottleLimits::default().per_account_ip(Limit::new(2, Duration::from_secs(60)));
/// let throttle = MemoryThrottle::new(limits);
/// let key = ThrottleKey::new("ann@example.com", Some("192.0.2.1".parse()?));
/// let now = time::OffsetDateTime::UNIX_EPOCH;
/// assert!(matches!(throttle.reserve(&key, now).await?, Admission::Allowed(_)));
/// assert!(matches!(throttle.reserve(&key, now).await?, Admission::Allowed(_)));
/// assert!(matches!(
///     throttle.reserve(&key, now).await?,
///     Admission::Refused { retry_after, .. } if retry_after == Duration::from_secs(60)
/// ));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # });
/// ```
pub struct MemoryThrottle {
    limits: ThrottleLimits,
    /// Counters untrusted attempts may fill.
    capacity: usize,
    /// Trusted addresses kept.
    trusted_capacity: usize,
    /// Keys the tables by 64-bit keyed hashes.
    hasher: RandomState,
    state: Mutex<State>,
}

struct State {
    counters: Buckets<Window>,
    /// Hash of (account, IP) → trusted until (Unix microseconds).
    trusted: Buckets<i64>,
    /// When the counter table was last pruned because it was full (at most once a second,
    /// so a full table cannot make every attempt prune).
    last_full_prune: Option<i64>,
    /// The next bucket a full counter table prunes.
    full_prune_cursor: usize,
    /// The next bucket a trusted attempt on a full table evicts from.
    evict_cursor: usize,
    /// Per counter bucket, no window in it ends before this: lowered by every new window,
    /// recomputed when the bucket is pruned. A refusal for capacity tells the client to wait
    /// until the least of them (64 reads, no scan of the table).
    soonest_end: Vec<Option<i64>>,
}

impl Default for State {
    fn default() -> Self {
        Self {
            counters: Buckets::default(),
            trusted: Buckets::default(),
            last_full_prune: None,
            full_prune_cursor: 0,
            evict_cursor: 0,
            soonest_end: vec![None; BUCKETS],
        }
    }
}

/// The counters, as hashed: by account digest and address.
#[derive(Hash)]
enum Counter<'a> {
    AccountIp(&'a str, Option<IpAddr>),
    Ip(IpAddr),
    Account(&'a str),
    AccountTrusted(&'a str),
    /// A [`RateKey`], by its text.
    Rate(&'a str),
}

#[derive(Debug, Clone, Copy)]
struct Window {
    /// Unix microseconds.
    end: i64,
    count: u32,
    /// The limit's maximum: a live window at it is locked and never evicted.
    max: u32,
}

impl Window {
    fn live(&self, now: i64) -> bool {
        self.end > now
    }

    fn locked(&self, now: i64) -> bool {
        self.live(now) && self.count >= self.max
    }
}

/// Unix microseconds, saturating.
fn micros(t: OffsetDateTime) -> i64 {
    let us = t.unix_timestamp_nanos() / 1000;
    i64::try_from(us).unwrap_or(if us < 0 { i64::MIN } else { i64::MAX })
}

/// The end of a window of `limit` opening at `now`.
fn end_of(limit: Limit, now: i64) -> i64 {
    now.saturating_add(i64::try_from(limit.window().as_micros()).unwrap_or(i64::MAX))
}

/// The time from `now` until `end` (zero if past).
fn left(end: i64, now: i64) -> Duration {
    Duration::from_micros(u64::try_from(end.saturating_sub(now)).unwrap_or(0))
}

impl MemoryThrottle {
    /// The default memory budget: 64 MiB.
    pub const DEFAULT_MEMORY_LIMIT: usize = 64 << 20;

    /// The number of counters the default budget holds (about 1.38 million).
    pub const DEFAULT_CAPACITY: usize = capacities(Self::DEFAULT_MEMORY_LIMIT).0;

    /// A throttle with these limits and the default memory budget
    /// ([`DEFAULT_MEMORY_LIMIT`](Self::DEFAULT_MEMORY_LIMIT)). Memory is allocated as
    /// counters are, not up front.
    pub fn new(limits: ThrottleLimits) -> Self {
        Self::with_memory_limit(limits, Self::DEFAULT_MEMORY_LIMIT)
    }

    /// A throttle whose tables never take more than `bytes` (at least 64 KiB): 80% for
    /// counters (about 38 bytes each when full), the rest for trusted addresses. See the
    /// type's docs; [`capacity`](Self::capacity) tells how many counters fit.
    pub fn with_memory_limit(limits: ThrottleLimits, bytes: usize) -> Self {
        let (counters, trusted) = capacities(bytes.max(64 << 10));
        Self::with_capacities(limits, counters, trusted)
    }

    /// A throttle keeping at most `capacity` counters for untrusted attempts (plus a reserve
    /// of `capacity / 16` for trusted addresses) and `capacity` trusted addresses (at least 16
    /// each).
    pub fn with_capacity(limits: ThrottleLimits, capacity: usize) -> Self {
        Self::with_capacities(limits, capacity, capacity)
    }

    fn with_capacities(limits: ThrottleLimits, counters: usize, trusted: usize) -> Self {
        Self {
            limits,
            capacity: counters.max(16),
            trusted_capacity: trusted.max(16),
            hasher: RandomState::new(),
            state: Mutex::new(State::default()),
        }
    }

    /// The limits in force.
    pub fn limits(&self) -> &ThrottleLimits {
        &self.limits
    }

    /// How many counters untrusted attempts may fill; trusted addresses have `capacity / 16`
    /// more.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// How many counters are held (live or ended but not yet pruned).
    pub fn len(&self) -> usize {
        self.lock().counters.len()
    }

    /// Whether no counter is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // Every critical section leaves the tables consistent, so a poisoned lock is usable.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn hash(&self, counter: Counter<'_>) -> u64 {
        self.hasher.hash_one(counter)
    }

    fn trusted_slot(&self, key: &ThrottleKey, ip: IpAddr) -> u64 {
        self.hasher.hash_one(("trusted", key.account(), ip))
    }

    /// The counters an attempt under `key` touches, with their limits: the per-account one
    /// `account` names.
    fn counters(&self, key: &ThrottleKey, account: AccountCounter) -> Vec<(u64, Limit, LimitKind)> {
        let l = &self.limits;
        let a = key.account();
        let mut counters = vec![(
            self.hash(Counter::AccountIp(a, key.ip())),
            l.per_account_ip_limit(),
            LimitKind::AccountIp,
        )];
        if let Some(ip) = key.ip() {
            counters.push((self.hash(Counter::Ip(ip)), l.per_ip_limit(), LimitKind::Ip));
        }
        match account {
            AccountCounter::Untrusted => counters.push((
                self.hash(Counter::Account(a)),
                l.per_account_limit(),
                LimitKind::Account,
            )),
            AccountCounter::Trusted => counters.push((
                self.hash(Counter::AccountTrusted(a)),
                l.per_account_trusted_limit(),
                LimitKind::AccountTrusted,
            )),
            AccountCounter::NotCounted => {}
        }
        counters
    }

    /// Checks and counts `counters` in one step under the lock: refused if one of them is at
    /// its limit, or if the table has no room for the new ones (for a `trusted` attempt: only
    /// if every window is locked).
    fn admit(
        &self,
        state: &mut State,
        counters: &[(u64, Limit, LimitKind)],
        trusted: bool,
        now: i64,
    ) -> Option<Admission> {
        let mut refused: Option<(LimitKind, Duration)> = None;
        for &(counter, limit, kind) in counters {
            if let Some(w) = state.counters.get(counter).filter(|w| w.live(now)) {
                if w.count >= limit.max_failures() {
                    let retry_after = left(w.end, now);
                    if refused.is_none_or(|(_, longest)| retry_after > longest) {
                        refused = Some((kind, retry_after));
                    }
                }
            }
        }
        if let Some((limit, retry_after)) = refused {
            return Some(Admission::Refused { limit, retry_after });
        }

        let new = counters
            .iter()
            .filter(|(c, _, _)| !state.counters.contains(*c))
            .count();
        let capacity = match trusted {
            true => self.capacity + self.capacity / 16,
            false => self.capacity,
        };
        if let Some(refusal) = self.make_room(state, new, capacity, now) {
            if !trusted {
                return Some(refusal);
            }
            // A trusted address is never refused for room while a window can go.
            for _ in 0..(state.counters.len() + new).saturating_sub(capacity) {
                if !state.evict_one(now, counters) {
                    return Some(refusal);
                }
            }
        }
        for &(counter, limit, _) in counters {
            state.count(counter, limit, now);
        }
        None
    }

    /// Makes room for `new` counters within `capacity`, pruning a few buckets if the table is
    /// full (at most once a second); the refusal to answer if there is still no room.
    fn make_room(
        &self,
        state: &mut State,
        new: usize,
        capacity: usize,
        now: i64,
    ) -> Option<Admission> {
        if state.counters.len() + new <= capacity {
            return None;
        }
        let may_prune = state
            .last_full_prune
            .is_none_or(|last| now.saturating_sub(last) >= 1_000_000);
        if may_prune {
            // A few buckets, not the whole table: bounded work under the lock. Ended
            // windows are spread over every bucket, so a table full of them frees room
            // at once; `prune` (run by `Authenticator::expire`) does the rest.
            state.last_full_prune = Some(now);
            for _ in 0..FULL_PRUNE_BUCKETS {
                let b = state.full_prune_cursor;
                state.full_prune_cursor = (b + 1) % BUCKETS;
                state.prune_counters(b, now);
                if state.counters.len() + new <= capacity {
                    return None;
                }
            }
        }
        // No scan for the soonest end: one refusal must cost the lock next to nothing, or
        // refusals become the attack. (A bucket whose mark has passed holds ended windows a
        // prune can free: then retry in a second.)
        let retry_after = state
            .soonest_end
            .iter()
            .flatten()
            .min()
            .map_or(Duration::ZERO, |end| left(*end, now))
            .max(Duration::from_secs(1));
        Some(Admission::Refused {
            limit: LimitKind::Capacity,
            retry_after,
        })
    }
}

/// Buckets an attempt that finds the counter table full prunes (at most once a second).
const FULL_PRUNE_BUCKETS: usize = 4;

impl Default for MemoryThrottle {
    fn default() -> Self {
        Self::new(ThrottleLimits::default())
    }
}

impl fmt::Debug for MemoryThrottle {
    /// Limits and table sizes only: the keys (account digests and addresses) stay out of logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.lock();
        f.debug_struct("MemoryThrottle")
            .field("limits", &self.limits)
            .field("capacity", &self.capacity)
            .field("trusted_capacity", &self.trusted_capacity)
            .field("counters", &state.counters.len())
            .field("trusted", &state.trusted.len())
            .finish()
    }
}

impl State {
    /// Drops the ended windows and trusts of bucket `b`; returns how many.
    fn prune_bucket(&mut self, b: usize, now: i64) -> u64 {
        let counters = self.prune_counters(b, now);
        let trusted = self.trusted.retain_bucket(b, |until| *until > now);
        (counters + trusted) as u64
    }

    /// Drops the ended windows of counter bucket `b`; returns how many.
    fn prune_counters(&mut self, b: usize, now: i64) -> usize {
        let dropped = self.counters.retain_bucket(b, |w| w.live(now));
        self.soonest_end[b] = self.counters.bucket_entries(b).map(|(_, w)| w.end).min();
        dropped
    }

    /// Evicts the window whose loss costs least from one bucket (the next holding one): an
    /// ended window, else the live one with the fewest attempts that is not locked; never one
    /// of `keep` (the attempt's own). `false` if every window is locked.
    fn evict_one(&mut self, now: i64, keep: &[(u64, Limit, LimitKind)]) -> bool {
        for _ in 0..BUCKETS {
            let b = self.evict_cursor;
            self.evict_cursor = (b + 1) % BUCKETS;
            let victim = self
                .counters
                .bucket_entries(b)
                .filter(|(k, w)| !w.locked(now) && keep.iter().all(|(c, _, _)| c != *k))
                .min_by_key(|(_, w)| (w.live(now), w.count, w.end))
                .map(|(k, _)| *k);
            if let Some(k) = victim {
                self.counters.remove(k);
                return true;
            }
        }
        false
    }

    /// Counts one under `counter`, opening a window if it has none live.
    fn count(&mut self, counter: u64, limit: Limit, now: i64) {
        let max = limit.max_failures();
        match self.counters.get_mut(counter) {
            Some(w) if w.live(now) => {
                w.count = w.count.saturating_add(1);
                w.max = max;
                return;
            }
            _ => {}
        }
        let end = end_of(limit, now);
        self.counters.insert(counter, Window { end, count: 1, max });
        let soonest = &mut self.soonest_end[Buckets::<Window>::bucket(counter)];
        if soonest.is_none_or(|e| end < e) {
            *soonest = Some(end);
        }
    }

    /// Takes one back from `counter`'s live window, dropping it at zero; drops it if its
    /// window has ended (nothing is counted there). An unknown counter stays unknown.
    fn give_back(&mut self, counter: u64, now: i64) {
        if let Some(w) = self.counters.get_mut(counter) {
            w.count = w.count.saturating_sub(1);
            if w.count == 0 || !w.live(now) {
                self.counters.remove(counter);
            }
        }
    }
}

#[async_trait]
impl Throttle for MemoryThrottle {
    async fn reserve(
        &self,
        key: &ThrottleKey,
        now: OffsetDateTime,
    ) -> Result<Admission, ThrottleError> {
        let now = micros(now);
        let slot = key.ip().map(|ip| self.trusted_slot(key, ip));
        let mut state = self.lock();
        let trusted = slot.is_some_and(|slot| state.trusted.get(slot).is_some_and(|u| *u > now));
        let account = match trusted {
            true => AccountCounter::Trusted,
            false => AccountCounter::Untrusted,
        };
        let counters = self.counters(key, account);
        if let Some(refusal) = self.admit(&mut state, &counters, trusted, now) {
            return Ok(refusal);
        }
        Ok(Admission::Allowed(Reservation::counting(account)))
    }

    async fn record_success(
        &self,
        key: &ThrottleKey,
        _reservation: Reservation,
        now: OffsetDateTime,
    ) -> Result<(), ThrottleError> {
        let now = micros(now);
        let a = key.account();
        let forget = [
            self.hash(Counter::AccountIp(a, key.ip())),
            self.hash(Counter::Account(a)),
            self.hash(Counter::AccountTrusted(a)),
        ];
        let ip = key
            .ip()
            .map(|ip| (self.hash(Counter::Ip(ip)), self.trusted_slot(key, ip)));
        let mut state = self.lock();
        for counter in forget {
            state.counters.remove(counter);
        }
        let Some((ip, slot)) = ip else {
            return Ok(());
        };
        state.give_back(ip, now);
        let trusted_for = self.limits.trusted_duration();
        if trusted_for.is_zero() {
            return Ok(());
        }
        if !state.trusted.contains(slot) && state.trusted.len() >= self.trusted_capacity {
            // Make room in this slot's bucket only: bounded work under the lock.
            let b = Buckets::<i64>::bucket(slot);
            state.trusted.retain_bucket(b, |until| *until > now);
            if state.trusted.len() >= self.trusted_capacity {
                return Ok(());
            }
        }
        let until = now.saturating_add(i64::try_from(trusted_for.as_micros()).unwrap_or(i64::MAX));
        state.trusted.insert(slot, until);
        Ok(())
    }

    async fn release(
        &self,
        key: &ThrottleKey,
        reservation: Reservation,
        now: OffsetDateTime,
    ) -> Result<(), ThrottleError> {
        let now = micros(now);
        let counters = self.counters(key, reservation.account_counter());
        let mut state = self.lock();
        for (counter, _, _) in counters {
            state.give_back(counter, now);
        }
        Ok(())
    }

    async fn hit(
        &self,
        key: &RateKey,
        limit: Limit,
        now: OffsetDateTime,
    ) -> Result<Admission, ThrottleError> {
        let now = micros(now);
        let counter = [(
            self.hash(Counter::Rate(key.as_str())),
            limit,
            LimitKind::Rate,
        )];
        let mut state = self.lock();
        if let Some(refusal) = self.admit(&mut state, &counter, false, now) {
            return Ok(refusal);
        }
        Ok(Admission::Allowed(Reservation::counting(
            AccountCounter::NotCounted,
        )))
    }

    /// Takes one back from the key's live window under the lock. A window given back to zero
    /// is dropped, and so is one that has ended: either frees its slot (a later hit opens a
    /// fresh window, as it would over a count of zero). Never adds a counter, so it needs no
    /// room and never refuses.
    async fn give_back(&self, key: &RateKey, now: OffsetDateTime) -> Result<(), ThrottleError> {
        let now = micros(now);
        let counter = self.hash(Counter::Rate(key.as_str()));
        self.lock().give_back(counter, now);
        Ok(())
    }

    async fn prune(&self, now: OffsetDateTime) -> Result<u64, ThrottleError> {
        let now = micros(now);
        let mut pruned = 0;
        for b in 0..BUCKETS {
            pruned += self.lock().prune_bucket(b, now);
            // Hand the thread back between buckets: `prune` usually runs as a task beside
            // the request handlers (`spawn_expiry_task`).
            tokio::task::yield_now().await;
        }
        Ok(pruned)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use buckets::{COUNTER_SLOT, FILL_PERCENT, TRUSTED_SLOT};

    const T0: OffsetDateTime = OffsetDateTime::UNIX_EPOCH;

    fn key(account: &str, ip: &str) -> ThrottleKey {
        ThrottleKey::new(account, Some(ip.parse().expect("test ip")))
    }

    fn tight() -> ThrottleLimits {
        ThrottleLimits::default()
            .per_account_ip(Limit::new(2, Duration::from_secs(60)))
            .per_ip(Limit::new(5, Duration::from_secs(60)))
            .per_account(Limit::new(3, Duration::from_secs(60)))
    }

    async fn allowed(t: &MemoryThrottle, k: &ThrottleKey, now: OffsetDateTime) -> bool {
        matches!(
            t.reserve(k, now).await.expect("memory"),
            Admission::Allowed(_)
        )
    }

    #[tokio::test]
    async fn a_full_table_refuses_new_keys_and_keeps_live_windows() {
        let t = MemoryThrottle::with_capacity(tight(), 16);
        let victim = key("victim", "192.0.2.1");
        assert!(allowed(&t, &victim, T0).await);
        assert!(allowed(&t, &victim, T0).await);
        assert!(!allowed(&t, &victim, T0).await, "victim's pair is locked");
        // Junk keys fill the table...
        let mut refused_for_capacity = 0;
        for i in 0..40 {
            match t
                .reserve(&key(&format!("junk{i}"), &format!("198.51.100.{i}")), T0)
                .await
            {
                Ok(Admission::Refused {
                    limit: LimitKind::Capacity,
                    ..
                }) => refused_for_capacity += 1,
                Ok(_) => {}
                Err(e) => panic!("{e}"),
            }
        }
        assert!(refused_for_capacity > 0);
        assert!(t.len() <= 16);
        // ...but the locked pair stays locked.
        assert!(!allowed(&t, &victim, T0).await);
        // Once windows end, pruning makes room again.
        assert!(t.prune(T0 + Duration::from_secs(61)).await.expect("prune") > 0);
        assert!(allowed(&t, &key("new", "203.0.113.1"), T0 + Duration::from_secs(61)).await);
    }

    /// A key of its own for attempt `i`: a distinct account and address.
    fn distinct(i: usize) -> ThrottleKey {
        key(
            &format!("user{i}"),
            &format!("10.0.{}.{}", i / 256, i % 256),
        )
    }

    #[tokio::test]
    async fn a_full_table_says_when_to_retry_and_frees_ended_windows_itself() {
        let t = MemoryThrottle::with_capacity(tight(), 999);
        let at = |secs| T0 + Duration::from_secs(secs);
        let refused_for = |admission| match admission {
            Ok(Admission::Refused {
                limit: LimitKind::Capacity,
                retry_after,
            }) => retry_after,
            other => panic!("{other:?}"),
        };
        // Three counters per attempt (60 s windows): 150 attempts at 0 s and 183 at 30 s
        // fill the table.
        for i in 0..150 {
            assert!(allowed(&t, &distinct(i), at(0)).await);
        }
        for i in 150..333 {
            assert!(allowed(&t, &distinct(i), at(30)).await);
        }
        assert_eq!(t.len(), 999);
        // Full of live windows: refused, and told to wait until the first of them ends.
        let wait = refused_for(t.reserve(&distinct(1000), at(40)).await);
        assert_eq!(wait, Duration::from_secs(20));
        // After a prune the wait is exact again: the next windows end at 90 s.
        assert_eq!(t.prune(at(61)).await.expect("prune"), 450);
        for i in 333..483 {
            assert!(allowed(&t, &distinct(i), at(61)).await);
        }
        let wait = refused_for(t.reserve(&distinct(1000), at(62)).await);
        assert_eq!(wait, Duration::from_secs(28));
        // Once they have all ended, an attempt makes room itself (no `prune` call).
        assert!(allowed(&t, &distinct(1000), at(200)).await);
        assert!(t.len() < 999);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_fresh_keys_never_overfill_the_table_or_free_a_locked_pair() {
        let t = std::sync::Arc::new(MemoryThrottle::with_capacity(tight(), 999));
        let victim = key("victim", "192.0.2.1");
        assert!(allowed(&t, &victim, T0).await);
        assert!(allowed(&t, &victim, T0).await);
        // Eight attackers, each with 500 fresh accounts and addresses, some of it after the
        // first windows could be pruned (they have not ended: nothing may be freed).
        let attackers: Vec<_> = (0..8)
            .map(|a| {
                let t = t.clone();
                tokio::spawn(async move {
                    let mut refused = 0;
                    for i in 0..500 {
                        let now = T0 + Duration::from_millis(i * 50);
                        match t.reserve(&distinct(a * 1000 + i as usize), now).await {
                            Ok(Admission::Refused {
                                limit: LimitKind::Capacity,
                                ..
                            }) => refused += 1,
                            Ok(_) => {}
                            Err(e) => panic!("{e}"),
                        }
                        assert!(t.len() <= 999);
                    }
                    refused
                })
            })
            .collect();
        let mut refused = 0;
        for a in attackers {
            refused += a.await.expect("attacker");
        }
        // 4 000 attempts, room for 332 more after the victim's 3 counters.
        assert_eq!(refused, 4_000 - 332);
        assert_eq!(t.len(), 999);
        assert!(!allowed(&t, &victim, T0 + Duration::from_secs(59)).await);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn prune_lets_the_tasks_on_its_thread_run_between_buckets() {
        let t = std::sync::Arc::new(MemoryThrottle::with_capacity(tight(), 30_000));
        for i in 0..3_000 {
            assert!(allowed(&t, &distinct(i), T0).await);
        }
        let prune = tokio::spawn({
            let t = t.clone();
            async move { t.prune(T0 + Duration::from_secs(61)).await }
        });
        let turns = crate::test_support::turns_while_running(&prune).await;
        assert_eq!(prune.await.expect("task").expect("prune"), 9_000);
        assert!(t.is_empty());
        assert!(turns >= BUCKETS / 2, "{turns} turns during the prune");
    }

    #[tokio::test]
    async fn a_full_table_still_admits_trusted_addresses_and_keeps_locked_windows() {
        let t = MemoryThrottle::with_capacity(tight(), 160);
        // Twenty users log in (each from an address of their own), before any attack.
        let homes: Vec<ThrottleKey> = (0..20)
            .map(|i| key(&format!("user{i}"), &format!("192.0.2.{}", i + 1)))
            .collect();
        for home in &homes {
            let r = match t.reserve(home, T0).await.expect("memory") {
                Admission::Allowed(r) => r,
                other => panic!("{other:?}"),
            };
            t.record_success(home, r, T0).await.expect("success");
        }
        // A locked pair.
        let victim = key("victim", "198.51.100.1");
        assert!(allowed(&t, &victim, T0).await);
        assert!(allowed(&t, &victim, T0).await);
        assert!(!allowed(&t, &victim, T0).await, "victim's pair is locked");
        // Attackers fill the table with fresh keys.
        let mut refused_for_capacity = 0;
        for i in 0..200 {
            match t.reserve(&distinct(i), T0).await {
                Ok(Admission::Refused {
                    limit: LimitKind::Capacity,
                    ..
                }) => refused_for_capacity += 1,
                Ok(_) => {}
                Err(e) => panic!("{e}"),
            }
        }
        assert!(refused_for_capacity > 100, "{refused_for_capacity}");
        assert!(t.len() <= 160);
        // Every trusted address still gets in: 60 new counters, more than the reserve (10):
        // the rest evict attackers' windows...
        for home in &homes {
            match t.reserve(home, T0).await.expect("memory") {
                Admission::Allowed(r) => assert_eq!(r.account_counter(), AccountCounter::Trusted),
                other => panic!("a trusted address on a full table: {other:?}"),
            }
        }
        assert!(t.len() <= 160 + 10, "{}", t.len());
        // ...never the locked pair.
        assert!(
            !allowed(&t, &victim, T0).await,
            "the locked pair stays locked"
        );
        // An untrusted attempt on the full table is still refused.
        assert!(matches!(
            t.reserve(&distinct(1000), T0).await,
            Ok(Admission::Refused {
                limit: LimitKind::Capacity,
                ..
            })
        ));
    }

    #[tokio::test]
    async fn give_back_frees_empty_and_ended_windows_and_never_adds_one() {
        let t = MemoryThrottle::with_capacity(tight(), 16);
        let limit = Limit::new(3, Duration::from_secs(60));
        let hit = |key: RateKey, now| {
            let t = &t;
            async move { matches!(t.hit(&key, limit, now).await, Ok(Admission::Allowed(_))) }
        };
        let a = RateKey::new("code", "a");
        // Unknown keys take no room, even on a full table.
        t.give_back(&a, T0).await.expect("give_back");
        assert!(t.is_empty());
        for i in 0..16 {
            assert!(hit(RateKey::new("fill", &i.to_string()), T0).await);
        }
        assert_eq!(t.len(), 16);
        t.give_back(&a, T0).await.expect("give_back");
        assert_eq!(t.len(), 16, "give_back on a full table adds nothing");
        assert!(!hit(a.clone(), T0).await, "the table is full");
        // Given back to zero, a window frees its slot for another key.
        let full = RateKey::new("fill", "0");
        t.give_back(&full, T0).await.expect("give_back");
        assert_eq!(t.len(), 15);
        assert!(hit(a.clone(), T0).await);
        assert!(hit(a.clone(), T0).await);
        t.give_back(&a, T0).await.expect("give_back");
        assert_eq!(t.len(), 16, "a window with a count left stays");
        assert!(hit(a.clone(), T0).await);
        assert!(hit(a.clone(), T0).await);
        assert!(!hit(a.clone(), T0).await, "3 of 3 after one given back");
        // An ended window is dropped rather than counted down.
        let ended = T0 + Duration::from_secs(60);
        t.give_back(&RateKey::new("fill", "1"), ended)
            .await
            .expect("give_back");
        assert_eq!(t.len(), 15);
        assert!(hit(a, ended).await, "a fresh window after the first ended");
    }

    #[test]
    fn the_default_budget_holds_a_million_counters_in_64_mib() {
        let (counters, trusted) = capacities(MemoryThrottle::DEFAULT_MEMORY_LIMIT);
        assert_eq!(counters, MemoryThrottle::DEFAULT_CAPACITY);
        assert!(counters >= 1_000_000, "{counters}");
        // The tables' slots at their largest (counters with the trusted reserve, 70% full).
        let counter_slots = (counters + counters / 16) * 100 / FILL_PERCENT;
        let counter_slots = counter_slots.next_power_of_two();
        let trusted_slots = (trusted * 100 / FILL_PERCENT).next_power_of_two();
        let bytes = counter_slots * COUNTER_SLOT + trusted_slots * TRUSTED_SLOT;
        assert!(bytes <= 64 << 20, "{bytes}");
        assert!(trusted >= 300_000, "{trusted}");
        let t = MemoryThrottle::with_memory_limit(ThrottleLimits::default(), 1 << 20);
        assert!(t.capacity() >= 16_000, "{}", t.capacity());
    }

    #[tokio::test]
    async fn debug_shows_no_keys() {
        let t = MemoryThrottle::default();
        let k = key("ann@example.com", "192.0.2.77");
        assert!(allowed(&t, &k, T0).await);
        let debug = format!("{t:?}");
        assert!(!debug.contains("ann"), "{debug}");
        assert!(!debug.contains(k.account()), "{debug}");
        assert!(!debug.contains("192.0.2.77"), "{debug}");
    }
}
