//! Failed-login accounting: after too many failures for one email, refuse logins for a while.

use std::collections::HashMap;
use std::fmt::Debug;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use time::OffsetDateTime;

/// Counts failed logins per key (the normalized email) and says when to refuse.
///
/// The authenticator calls [`check`](Throttle::check) before any lookup or hashing, so a
/// throttled attempt costs nothing and reveals nothing: unknown and known emails are counted
/// alike.
pub trait Throttle: Send + Sync + Debug {
    /// `Err(retry_after)` if logins for `key` are refused at `now`.
    ///
    /// # Errors
    /// The time left until a login for `key` is accepted again.
    fn check(&self, key: &str, now: OffsetDateTime) -> Result<(), Duration>;
    /// Records one failed login for `key` at `now`.
    fn record_failure(&self, key: &str, now: OffsetDateTime);
    /// Forgets `key`'s failures (called after a successful login).
    fn reset(&self, key: &str);
    /// Drops entries whose window has passed at `now`; called by `expire`.
    fn prune(&self, now: OffsetDateTime);
}

/// An in-process fixed-window throttle: at most `max_failures` failed logins per email per
/// `window`; once reached, logins for that email are refused until the window ends.
///
/// The default is 10 failures per 15 minutes. The table is bounded: at most
/// [`MemoryThrottle::MAX_KEYS`] emails are tracked, the oldest windows are dropped first.
/// Each process counts on its own; several app instances each allow `max_failures`.
///
/// ```
/// use keycard::{MemoryThrottle, Throttle};
/// use std::time::Duration;
/// let t = MemoryThrottle::new(2, Duration::from_secs(60));
/// let now = time::OffsetDateTime::UNIX_EPOCH;
/// t.record_failure("ann@example.com", now);
/// assert!(t.check("ann@example.com", now).is_ok());
/// t.record_failure("ann@example.com", now);
/// assert_eq!(t.check("ann@example.com", now), Err(Duration::from_secs(60)));
/// ```
#[derive(Debug)]
pub struct MemoryThrottle {
    max_failures: u32,
    window: Duration,
    windows: Mutex<HashMap<String, Window>>,
}

#[derive(Debug, Clone, Copy)]
struct Window {
    started: OffsetDateTime,
    failures: u32,
}

impl MemoryThrottle {
    /// The most emails tracked at once.
    pub const MAX_KEYS: usize = 100_000;

    /// At most `max_failures` failures per `window` (a `max_failures` of 0 is treated as 1).
    pub fn new(max_failures: u32, window: Duration) -> Self {
        Self {
            max_failures: max_failures.max(1),
            window,
            windows: Mutex::new(HashMap::new()),
        }
    }

    fn remaining(&self, w: &Window, now: OffsetDateTime) -> Option<Duration> {
        let elapsed = now - w.started;
        let left = time::Duration::try_from(self.window).ok()? - elapsed;
        (left > time::Duration::ZERO).then(|| left.unsigned_abs())
    }
}

impl Default for MemoryThrottle {
    fn default() -> Self {
        Self::new(10, Duration::from_secs(15 * 60))
    }
}

impl Throttle for MemoryThrottle {
    fn check(&self, key: &str, now: OffsetDateTime) -> Result<(), Duration> {
        let windows = self.windows.lock().unwrap_or_else(PoisonError::into_inner);
        match windows.get(key) {
            Some(w) if w.failures >= self.max_failures => match self.remaining(w, now) {
                Some(left) => Err(left),
                None => Ok(()),
            },
            _ => Ok(()),
        }
    }

    fn record_failure(&self, key: &str, now: OffsetDateTime) {
        let mut windows = self.windows.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(w) = windows.get_mut(key) {
            if self.remaining(w, now).is_some() {
                w.failures = w.failures.saturating_add(1);
            } else {
                *w = Window {
                    started: now,
                    failures: 1,
                };
            }
            return;
        }
        if windows.len() >= Self::MAX_KEYS {
            windows.retain(|_, w| self.remaining(w, now).is_some());
            if windows.len() >= Self::MAX_KEYS {
                // Still full of live windows: drop the oldest tenth.
                let mut starts: Vec<_> = windows.values().map(|w| w.started).collect();
                starts.sort_unstable();
                let cutoff = starts[starts.len() / 10];
                windows.retain(|_, w| w.started > cutoff);
            }
        }
        windows.insert(
            key.to_owned(),
            Window {
                started: now,
                failures: 1,
            },
        );
    }

    fn reset(&self, key: &str) {
        self.windows
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(key);
    }

    fn prune(&self, now: OffsetDateTime) {
        let mut windows = self.windows.lock().unwrap_or_else(PoisonError::into_inner);
        windows.retain(|_, w| self.remaining(w, now).is_some());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: OffsetDateTime = OffsetDateTime::UNIX_EPOCH;

    #[test]
    fn window_ends_and_counting_restarts() {
        let t = MemoryThrottle::new(3, Duration::from_secs(60));
        for _ in 0..3 {
            t.record_failure("k", T0);
        }
        assert_eq!(
            t.check("k", T0 + Duration::from_secs(20)),
            Err(Duration::from_secs(40))
        );
        assert!(t.check("other", T0).is_ok());
        assert!(t.check("k", T0 + Duration::from_secs(60)).is_ok());
        t.record_failure("k", T0 + Duration::from_secs(61));
        assert!(t.check("k", T0 + Duration::from_secs(61)).is_ok());
    }

    #[test]
    fn reset_and_prune_forget() {
        let t = MemoryThrottle::new(1, Duration::from_secs(60));
        t.record_failure("a", T0);
        t.record_failure("b", T0);
        t.reset("a");
        assert!(t.check("a", T0).is_ok());
        assert!(t.check("b", T0).is_err());
        t.prune(T0 + Duration::from_secs(61));
        assert!(t.windows.lock().expect("not poisoned").is_empty());
    }

    #[test]
    fn table_is_bounded() {
        let t = MemoryThrottle::new(5, Duration::from_secs(60));
        for i in 0..MemoryThrottle::MAX_KEYS + 10 {
            t.record_failure(&i.to_string(), T0 + Duration::from_millis(i as u64));
        }
        assert!(t.windows.lock().expect("not poisoned").len() <= MemoryThrottle::MAX_KEYS);
    }
}
