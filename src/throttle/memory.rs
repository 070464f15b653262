//! The in-process throttle: the embedded default.

use std::collections::HashMap;
use std::fmt;
use std::net::IpAddr;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use time::OffsetDateTime;

use super::{
    until, window_end, Admission, Limit, LimitKind, Reservation, Throttle, ThrottleKey,
    ThrottleLimits,
};
use crate::error::StoreError;

/// Counts login attempts in this process: one lock around two bounded tables, so every
/// reserve is atomic.
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

#[derive(Default)]
struct State {
    counters: HashMap<Counter, Window>,
    /// (account, IP) → trusted until.
    trusted: HashMap<(String, IpAddr), OffsetDateTime>,
    /// When the counter table was last pruned because it was full (at most once a second,
    /// so a full table cannot make every attempt scan it).
    last_full_prune: Option<OffsetDateTime>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Counter {
    AccountIp(String, Option<IpAddr>),
    Ip(IpAddr),
    Account(String),
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

    /// The counters an attempt under `key` touches, with their limits.
    fn counters(&self, key: &ThrottleKey, with_account: bool) -> Vec<(Counter, Limit, LimitKind)> {
        let l = &self.limits;
        let mut counters = vec![(
            Counter::AccountIp(key.account().to_owned(), key.ip()),
            l.per_account_ip_limit(),
            LimitKind::AccountIp,
        )];
        if let Some(ip) = key.ip() {
            counters.push((Counter::Ip(ip), l.per_ip_limit(), LimitKind::Ip));
        }
        if with_account {
            counters.push((
                Counter::Account(key.account().to_owned()),
                l.per_account_limit(),
                LimitKind::Account,
            ));
        }
        counters
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
        self.counters.get(counter).filter(|w| w.end > now)
    }

    fn is_trusted(&self, key: &ThrottleKey, now: OffsetDateTime) -> bool {
        key.ip().is_some_and(|ip| {
            self.trusted
                .get(&(key.account().to_owned(), ip))
                .is_some_and(|until| *until > now)
        })
    }

    fn prune(&mut self, now: OffsetDateTime) -> u64 {
        let before = self.counters.len() + self.trusted.len();
        self.counters.retain(|_, w| w.end > now);
        self.trusted.retain(|_, until| *until > now);
        (before - self.counters.len() - self.trusted.len()) as u64
    }

    /// Takes one back from `counter`, dropping it at zero.
    fn give_back(&mut self, counter: &Counter, now: OffsetDateTime) {
        if let Some(w) = self.counters.get_mut(counter) {
            w.count = w.count.saturating_sub(1);
            if w.count == 0 || w.end <= now {
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
    ) -> Result<Admission, StoreError> {
        let mut state = self.lock();
        let with_account = !state.is_trusted(key, now);
        let counters = self.counters(key, with_account);

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
            .filter(|(c, _, _)| !state.counters.contains_key(c))
            .count();
        if state.counters.len() + new > self.capacity {
            let may_prune = state
                .last_full_prune
                .map_or(true, |last| now - last >= Duration::from_secs(1));
            if may_prune {
                state.last_full_prune = Some(now);
                state.counters.retain(|_, w| w.end > now);
            }
            if state.counters.len() + new > self.capacity {
                let soonest = state.counters.values().map(|w| w.end).min();
                let retry_after = soonest
                    .map_or(Duration::ZERO, |end| until(end, now))
                    .max(Duration::from_secs(1));
                return Ok(Admission::Refused {
                    limit: LimitKind::Capacity,
                    retry_after,
                });
            }
        }

        for (counter, limit, _) in counters {
            let fresh = Window {
                end: window_end(now, limit.window()),
                count: 1,
            };
            state
                .counters
                .entry(counter)
                .and_modify(|w| match w.end > now {
                    true => w.count = w.count.saturating_add(1),
                    false => *w = fresh,
                })
                .or_insert(fresh);
        }
        Ok(Admission::Allowed(Reservation::new(with_account)))
    }

    async fn record_success(
        &self,
        key: &ThrottleKey,
        _reservation: Reservation,
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        let mut state = self.lock();
        state
            .counters
            .remove(&Counter::AccountIp(key.account().to_owned(), key.ip()));
        state
            .counters
            .remove(&Counter::Account(key.account().to_owned()));
        let Some(ip) = key.ip() else {
            return Ok(());
        };
        state.give_back(&Counter::Ip(ip), now);
        let trusted_for = self.limits.trusted_duration();
        if trusted_for.is_zero() {
            return Ok(());
        }
        let slot = (key.account().to_owned(), ip);
        if !state.trusted.contains_key(&slot) && state.trusted.len() >= self.capacity {
            state.trusted.retain(|_, until| *until > now);
            if state.trusted.len() >= self.capacity {
                return Ok(());
            }
        }
        state.trusted.insert(slot, window_end(now, trusted_for));
        Ok(())
    }

    async fn release(
        &self,
        key: &ThrottleKey,
        reservation: Reservation,
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        let mut state = self.lock();
        for (counter, _, _) in self.counters(key, reservation.account_counted()) {
            state.give_back(&counter, now);
        }
        Ok(())
    }

    async fn prune(&self, now: OffsetDateTime) -> Result<u64, StoreError> {
        Ok(self.lock().prune(now))
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
