//! The in-process throttle: the embedded default.

use std::collections::hash_map::RandomState;
use std::collections::HashMap;
use std::fmt;
use std::hash::{BuildHasher, Hash};
use std::net::IpAddr;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use time::OffsetDateTime;

use super::{
    until, window_end, AccountCounter, Admission, Limit, LimitKind, RateKey, Reservation, Throttle,
    ThrottleKey, ThrottleLimits,
};
use crate::error::StoreError;

/// Counts login attempts in this process: one lock around two bounded tables, so every
/// reserve is atomic. Each table is split into buckets: [`prune`](Throttle::prune) holds the
/// lock for one bucket at a time and yields to the async runtime between them, and no attempt
/// scans a whole table, even a full one (a refused attempt costs about a microsecond under
/// the lock; BENCHMARKS.md).
///
/// Each process counts on its own, and counts are lost on restart: with several instances,
/// or when a restart must not grant fresh guesses, use a shared backend (see the
/// [module docs](crate::throttle)).
///
/// # Bounded, and failing safe
/// At most [`capacity`](Self::with_capacity) counters (default
/// [`DEFAULT_CAPACITY`](Self::DEFAULT_CAPACITY), about 150 bytes each) and as many trusted
/// addresses are kept. When the counter table is full of live windows, an attempt that needs
/// a new counter is refused ([`LimitKind::Capacity`], which login reports as
/// [`Error::Overloaded`](crate::Error::Overloaded), HTTP 503) rather than forgetting a live
/// window: junk keys can never free a locked attacker. Attempts on keys already counted go on
/// as usual. Windows that ended are dropped by [`prune`](Throttle::prune) (run by
/// [`Authenticator::expire`](crate::Authenticator::expire)) or when the table fills. When the
/// trusted-address table is full, new successes are not remembered (those users meet the
/// per-account limit like anyone else, until room frees up).
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
    capacity: usize,
    state: Mutex<State>,
}

/// Buckets each table is split into. Every bucket is under the one lock (a reserve stays
/// atomic); pruning holds the lock for one bucket at a time, so no attempt waits for a scan of
/// the whole table (7 ms for a full one of 200 000 counters, measured).
const BUCKETS: usize = 64;
/// Buckets an attempt that finds the counter table full prunes (at most once a second).
const FULL_PRUNE_BUCKETS: usize = 4;

struct State {
    counters: Buckets<Counter, Window>,
    /// (account, IP) → trusted until.
    trusted: Buckets<(String, IpAddr), OffsetDateTime>,
    /// When the counter table was last pruned because it was full (at most once a second,
    /// so a full table cannot make every attempt prune).
    last_full_prune: Option<OffsetDateTime>,
    /// The next bucket a full counter table prunes.
    full_prune_cursor: usize,
    /// Per counter bucket, no window in it ends before this: lowered by every new window,
    /// recomputed when the bucket is pruned. A refusal for capacity tells the client to wait
    /// until the least of them (64 reads, no scan of the table).
    soonest_end: Vec<Option<OffsetDateTime>>,
}

impl Default for State {
    fn default() -> Self {
        Self {
            counters: Buckets::default(),
            trusted: Buckets::default(),
            last_full_prune: None,
            full_prune_cursor: 0,
            soonest_end: vec![None; BUCKETS],
        }
    }
}

/// A map split into [`BUCKETS`] maps by key hash, so that it can be pruned a bucket at a
/// time.
struct Buckets<K, V> {
    maps: Vec<HashMap<K, V>>,
    hasher: RandomState,
}

impl<K, V> Default for Buckets<K, V> {
    fn default() -> Self {
        Self {
            maps: (0..BUCKETS).map(|_| HashMap::new()).collect(),
            hasher: RandomState::new(),
        }
    }
}

impl<K: Hash + Eq, V> Buckets<K, V> {
    /// The bucket `key` belongs in.
    fn bucket(&self, key: &K) -> usize {
        (self.hasher.hash_one(key) % BUCKETS as u64) as usize
    }

    /// The map of `key`'s bucket.
    fn map(&self, key: &K) -> &HashMap<K, V> {
        &self.maps[self.bucket(key)]
    }

    /// The map of `key`'s bucket, to change.
    fn map_mut(&mut self, key: &K) -> &mut HashMap<K, V> {
        let b = self.bucket(key);
        &mut self.maps[b]
    }

    /// Entries in all buckets (64 reads).
    fn len(&self) -> usize {
        self.maps.iter().map(HashMap::len).sum()
    }

    /// Keeps the entries of bucket `b` that `keep` accepts; returns how many it dropped.
    fn retain_bucket(&mut self, b: usize, mut keep: impl FnMut(&V) -> bool) -> usize {
        let map = &mut self.maps[b];
        let before = map.len();
        map.retain(|_, v| keep(v));
        before - map.len()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Counter {
    AccountIp(String, Option<IpAddr>),
    Ip(IpAddr),
    Account(String),
    AccountTrusted(String),
    /// A [`RateKey`], by its text.
    Rate(String),
}

#[derive(Debug, Clone, Copy)]
struct Window {
    end: OffsetDateTime,
    count: u32,
}

impl MemoryThrottle {
    /// The default number of counters (and of trusted addresses) kept.
    pub const DEFAULT_CAPACITY: usize = 200_000;

    /// A throttle with these limits and the default capacity.
    pub fn new(limits: ThrottleLimits) -> Self {
        Self::with_capacity(limits, Self::DEFAULT_CAPACITY)
    }

    /// A throttle keeping at most `capacity` counters and `capacity` trusted addresses (at
    /// least 16 each).
    pub fn with_capacity(limits: ThrottleLimits, capacity: usize) -> Self {
        Self {
            limits,
            capacity: capacity.max(16),
            state: Mutex::new(State::default()),
        }
    }

    /// The limits in force.
    pub fn limits(&self) -> &ThrottleLimits {
        &self.limits
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

    /// The counters an attempt under `key` touches, with their limits: the per-account one
    /// `account` names.
    fn counters(
        &self,
        key: &ThrottleKey,
        account: AccountCounter,
    ) -> Vec<(Counter, Limit, LimitKind)> {
        let l = &self.limits;
        let mut counters = vec![(
            Counter::AccountIp(key.account().to_owned(), key.ip()),
            l.per_account_ip_limit(),
            LimitKind::AccountIp,
        )];
        if let Some(ip) = key.ip() {
            counters.push((Counter::Ip(ip), l.per_ip_limit(), LimitKind::Ip));
        }
        match account {
            AccountCounter::Untrusted => counters.push((
                Counter::Account(key.account().to_owned()),
                l.per_account_limit(),
                LimitKind::Account,
            )),
            AccountCounter::Trusted => counters.push((
                Counter::AccountTrusted(key.account().to_owned()),
                l.per_account_trusted_limit(),
                LimitKind::AccountTrusted,
            )),
            AccountCounter::NotCounted => {}
        }
        counters
    }
    /// Makes room for `new` counters, pruning a few buckets if the table is full (at most once
    /// a second); the refusal to answer if there is still no room.
    fn make_room(&self, state: &mut State, new: usize, now: OffsetDateTime) -> Option<Admission> {
        if state.counters.len() + new <= self.capacity {
            return None;
        }
        let may_prune = state
            .last_full_prune
            .map_or(true, |last| now - last >= Duration::from_secs(1));
        if may_prune {
            // A few buckets, not the whole table: bounded work under the lock. Ended
            // windows are spread over every bucket, so a table full of them frees room
            // at once; `prune` (run by `Authenticator::expire`) does the rest.
            state.last_full_prune = Some(now);
            for _ in 0..FULL_PRUNE_BUCKETS {
                let b = state.full_prune_cursor;
                state.full_prune_cursor = (b + 1) % BUCKETS;
                state.prune_counters(b, now);
                if state.counters.len() + new <= self.capacity {
                    return None;
                }
            }
        }
        if state.counters.len() + new <= self.capacity {
            return None;
        }
        // No scan for the soonest end: one refusal must cost the lock next to nothing, or
        // refusals become the attack. (A bucket whose mark has passed holds ended windows a
        // prune can free: then retry in a second.)
        let retry_after = state
            .soonest_end
            .iter()
            .flatten()
            .min()
            .map_or(Duration::ZERO, |end| until(*end, now))
            .max(Duration::from_secs(1));
        Some(Admission::Refused {
            limit: LimitKind::Capacity,
            retry_after,
        })
    }
}

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
            .field("counters", &state.counters.len())
            .field("trusted", &state.trusted.len())
            .finish()
    }
}

impl State {
    fn live(&self, counter: &Counter, now: OffsetDateTime) -> Option<&Window> {
        self.counters
            .map(counter)
            .get(counter)
            .filter(|w| w.end > now)
    }

    /// Drops the ended windows and trusts of bucket `b`; returns how many.
    fn prune_bucket(&mut self, b: usize, now: OffsetDateTime) -> u64 {
        let counters = self.prune_counters(b, now);
        let trusted = self.trusted.retain_bucket(b, |until| *until > now);
        (counters + trusted) as u64
    }

    /// Drops the ended windows of counter bucket `b`; returns how many.
    fn prune_counters(&mut self, b: usize, now: OffsetDateTime) -> usize {
        let dropped = self.counters.retain_bucket(b, |w| w.end > now);
        self.soonest_end[b] = self.counters.maps[b].values().map(|w| w.end).min();
        dropped
    }

    fn is_trusted(&self, key: &ThrottleKey, now: OffsetDateTime) -> bool {
        key.ip().is_some_and(|ip| {
            let slot = (key.account().to_owned(), ip);
            self.trusted
                .map(&slot)
                .get(&slot)
                .is_some_and(|until| *until > now)
        })
    }

    /// Counts one under `counter`, opening a window if it has none live.
    fn count(&mut self, counter: Counter, limit: Limit, now: OffsetDateTime) {
        let fresh = Window {
            end: window_end(now, limit.window()),
            count: 1,
        };
        let b = self.counters.bucket(&counter);
        self.counters.maps[b]
            .entry(counter)
            .and_modify(|w| match w.end > now {
                true => w.count = w.count.saturating_add(1),
                false => *w = fresh,
            })
            .or_insert(fresh);
        let soonest = &mut self.soonest_end[b];
        if soonest.map_or(true, |end| fresh.end < end) {
            *soonest = Some(fresh.end);
        }
    }

    /// Takes one back from `counter`, dropping it at zero.
    fn give_back(&mut self, counter: &Counter, now: OffsetDateTime) {
        let map = self.counters.map_mut(counter);
        if let Some(w) = map.get_mut(counter) {
            w.count = w.count.saturating_sub(1);
            if w.count == 0 || w.end <= now {
                map.remove(counter);
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
    ) -> Result<Admission, StoreError> {
        let mut state = self.lock();
        let account = match state.is_trusted(key, now) {
            true => AccountCounter::Trusted,
            false => AccountCounter::Untrusted,
        };
        let counters = self.counters(key, account);

        let mut refused: Option<(LimitKind, Duration)> = None;
        for (counter, limit, kind) in &counters {
            if let Some(w) = state.live(counter, now) {
                if w.count >= limit.max_failures() {
                    let retry_after = until(w.end, now);
                    if refused.map_or(true, |(_, longest)| retry_after > longest) {
                        refused = Some((*kind, retry_after));
                    }
                }
            }
        }
        if let Some((limit, retry_after)) = refused {
            return Ok(Admission::Refused { limit, retry_after });
        }

        let new = counters
            .iter()
            .filter(|(c, _, _)| !state.counters.map(c).contains_key(c))
            .count();
        if let Some(refusal) = self.make_room(&mut state, new, now) {
            return Ok(refusal);
        }

        for (counter, limit, _) in counters {
            state.count(counter, limit, now);
        }
        Ok(Admission::Allowed(Reservation::counting(account)))
    }

    async fn record_success(
        &self,
        key: &ThrottleKey,
        _reservation: Reservation,
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        let mut state = self.lock();
        for counter in [
            Counter::AccountIp(key.account().to_owned(), key.ip()),
            Counter::Account(key.account().to_owned()),
            Counter::AccountTrusted(key.account().to_owned()),
        ] {
            state.counters.map_mut(&counter).remove(&counter);
        }
        let Some(ip) = key.ip() else {
            return Ok(());
        };
        state.give_back(&Counter::Ip(ip), now);
        let trusted_for = self.limits.trusted_duration();
        if trusted_for.is_zero() {
            return Ok(());
        }
        let slot = (key.account().to_owned(), ip);
        if !state.trusted.map(&slot).contains_key(&slot) && state.trusted.len() >= self.capacity {
            // Make room in this slot's bucket only: bounded work under the lock.
            let b = state.trusted.bucket(&slot);
            state.trusted.retain_bucket(b, |until| *until > now);
            if state.trusted.len() >= self.capacity {
                return Ok(());
            }
        }
        state
            .trusted
            .map_mut(&slot)
            .insert(slot, window_end(now, trusted_for));
        Ok(())
    }

    async fn release(
        &self,
        key: &ThrottleKey,
        reservation: Reservation,
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        let mut state = self.lock();
        for (counter, _, _) in self.counters(key, reservation.account_counter()) {
            state.give_back(&counter, now);
        }
        Ok(())
    }

    async fn hit(
        &self,
        key: &RateKey,
        limit: Limit,
        now: OffsetDateTime,
    ) -> Result<Admission, StoreError> {
        let counter = Counter::Rate(key.as_str().to_owned());
        let mut state = self.lock();
        if let Some(w) = state.live(&counter, now) {
            if w.count >= limit.max_failures() {
                return Ok(Admission::Refused {
                    limit: LimitKind::Rate,
                    retry_after: until(w.end, now),
                });
            }
        }
        let new = usize::from(!state.counters.map(&counter).contains_key(&counter));
        if let Some(refusal) = self.make_room(&mut state, new, now) {
            return Ok(refusal);
        }
        state.count(counter, limit, now);
        Ok(Admission::Allowed(Reservation::counting(
            AccountCounter::NotCounted,
        )))
    }

    async fn prune(&self, now: OffsetDateTime) -> Result<u64, StoreError> {
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
