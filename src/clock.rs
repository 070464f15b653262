//! Injectable time, so expiry can be tested without sleeping.

use std::fmt::Debug;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use time::OffsetDateTime;

/// A source of the current time. The authenticator asks it for "now" on every operation and
/// passes that instant to the stores, so one clock rules expiry everywhere.
pub trait Clock: Send + Sync + Debug {
    /// The current time, in UTC.
    fn now(&self) -> OffsetDateTime;
}

/// The system's wall clock. The default.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    /// `OffsetDateTime::now_utc()`, built from the whole seconds since the Unix epoch with
    /// the nanoseconds set: `now_utc` adds the duration to the epoch, a walk of the calendar
    /// that cost every validate more than reading the clock did. A clock set before 1970
    /// takes `now_utc`'s own way.
    fn now(&self) -> OffsetDateTime {
        SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .ok()
            .and_then(after_the_epoch)
            .unwrap_or_else(OffsetDateTime::now_utc)
    }
}

/// The instant `since` after the Unix epoch, from its whole seconds with the nanoseconds
/// set; `None` past `OffsetDateTime`'s range.
fn after_the_epoch(since: Duration) -> Option<OffsetDateTime> {
    let second = OffsetDateTime::from_unix_timestamp(i64::try_from(since.as_secs()).ok()?).ok()?;
    second.replace_nanosecond(since.subsec_nanos()).ok()
}

/// A clock that only moves when told to; clones share the same time. For tests.
///
/// ```
/// use keycard::{Clock, ManualClock};
/// use std::time::Duration;
/// let clock = ManualClock::new(time::OffsetDateTime::UNIX_EPOCH);
/// let shared = clock.clone();
/// clock.advance(Duration::from_secs(90));
/// assert_eq!(shared.now().unix_timestamp(), 90);
/// ```
#[derive(Debug, Clone)]
pub struct ManualClock(Arc<Mutex<OffsetDateTime>>);

impl ManualClock {
    /// A clock stopped at `start`.
    pub fn new(start: OffsetDateTime) -> Self {
        Self(Arc::new(Mutex::new(start)))
    }

    /// Moves the clock forward by `by`.
    pub fn advance(&self, by: Duration) {
        let mut now = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        *now += by;
    }

    /// Sets the clock to `to`.
    pub fn set(&self, to: OffsetDateTime) {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner) = to;
    }
}

impl Default for ManualClock {
    /// A clock stopped at the current system time.
    fn default() -> Self {
        Self::new(OffsetDateTime::now_utc())
    }
}

impl Clock for ManualClock {
    fn now(&self) -> OffsetDateTime {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl<C: Clock + ?Sized> Clock for std::sync::Arc<C> {
    fn now(&self) -> OffsetDateTime {
        (**self).now()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_instant_after_the_epoch_is_the_calendars() {
        let seconds = [
            0,
            1,
            59,
            86_399,
            86_400,
            951_782_400,
            1_795_000_000,
            253_402_300_799,
        ];
        for s in seconds {
            for nanos in [0, 1, 999, 123_456_789, 999_999_999] {
                let since = Duration::new(s, nanos);
                let expected = OffsetDateTime::UNIX_EPOCH + since;
                assert_eq!(after_the_epoch(since), Some(expected), "{since:?}");
            }
        }
        // Past the year 9999: no instant, and the clock falls back to `now_utc`'s way.
        assert_eq!(after_the_epoch(Duration::from_secs(253_402_300_800)), None);
        assert_eq!(after_the_epoch(Duration::MAX), None);
    }

    #[test]
    fn the_system_clock_reads_as_now_utc() {
        for _ in 0..1_000 {
            let before = OffsetDateTime::now_utc();
            let now = SystemClock.now();
            let after = OffsetDateTime::now_utc();
            assert!(before <= now && now <= after, "{before} {now} {after}");
            assert!(now.offset().is_utc());
        }
    }
}
