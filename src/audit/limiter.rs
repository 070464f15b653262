//! Rate limiting of the `tokens.invalid` audit event: at most one event per client address
//! per interval (a minute), carrying the count of failures since that address's last event,
//! under a global cap of events per second, over a bounded table of addresses. A flood of bad
//! tokens, from one address or from many, cannot flood the log.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// The most addresses tracked; a new one beyond it drops the longest tracked.
pub(crate) const MAX_TRACKED: usize = 10_000;
/// The least time between two events about one address.
pub(crate) const INTERVAL: Duration = Duration::from_secs(60);
/// The most events in any one second, whatever the addresses.
pub(crate) const MAX_EVENTS_PER_SECOND: u32 = 20;

/// Counts token failures per client address and says when one may be reported.
#[derive(Debug)]
pub(crate) struct FailureLimiter {
    state: Mutex<State>,
    max_tracked: usize,
    interval: Duration,
    max_per_second: u32,
}

#[derive(Debug, Default)]
struct State {
    clients: HashMap<Option<IpAddr>, Client>,
    /// The tracked addresses, the longest tracked first.
    order: VecDeque<Option<IpAddr>>,
    /// When the current one-second window of the global cap started.
    second_started: Option<Instant>,
    events_this_second: u32,
}

#[derive(Debug, Default)]
struct Client {
    /// Failures not yet reported.
    unreported: u64,
    /// When this address's last event was emitted.
    last_event: Option<Instant>,
}

impl Default for FailureLimiter {
    fn default() -> Self {
        Self::new(MAX_TRACKED, INTERVAL, MAX_EVENTS_PER_SECOND)
    }
}

impl FailureLimiter {
    /// A limiter tracking at most `max_tracked` addresses, one event per address per
    /// `interval`, at most `max_per_second` events per second.
    pub(crate) fn new(max_tracked: usize, interval: Duration, max_per_second: u32) -> Self {
        Self {
            state: Mutex::new(State::default()),
            max_tracked,
            interval,
            max_per_second,
        }
    }

    /// Counts one failure from `ip` at `now`. `Some(count)` when an event is due now, `count`
    /// being the failures since this address's last event, this one included; `None` when the
    /// failure is only counted (reported with a later one).
    pub(crate) fn record(&self, ip: Option<IpAddr>, now: Instant) -> Option<u64> {
        let mut guard = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let State {
            clients,
            order,
            second_started,
            events_this_second,
        } = &mut *guard;
        if !clients.contains_key(&ip) {
            while clients.len() >= self.max_tracked.max(1) {
                match order.pop_front() {
                    Some(oldest) => {
                        clients.remove(&oldest);
                    }
                    None => break,
                }
            }
            order.push_back(ip);
        }
        let client = clients.entry(ip).or_default();
        client.unreported = client.unreported.saturating_add(1);
        let due = client
            .last_event
            .is_none_or(|last| now.saturating_duration_since(last) >= self.interval);
        if !due {
            return None;
        }
        let window_open = second_started
            .is_some_and(|start| now.saturating_duration_since(start) < Duration::from_secs(1));
        if !window_open {
            *second_started = Some(now);
            *events_this_second = 0;
        }
        if *events_this_second >= self.max_per_second {
            return None;
        }
        *events_this_second += 1;
        client.last_event = Some(now);
        Some(std::mem::take(&mut client.unreported))
    }

    /// How many addresses are tracked.
    #[cfg(test)]
    fn tracked(&self) -> usize {
        let guard = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        debug_assert_eq!(guard.clients.len(), guard.order.len());
        guard.clients.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(n: u32) -> Option<IpAddr> {
        Some(IpAddr::from(n.to_be_bytes()))
    }

    #[test]
    fn one_event_per_address_per_interval_with_the_count_since_the_last() {
        let limiter = FailureLimiter::default();
        let start = Instant::now();
        assert_eq!(limiter.record(ip(1), start), Some(1));
        for i in 0..999 {
            assert_eq!(
                limiter.record(ip(1), start + Duration::from_millis(i)),
                None
            );
        }
        assert_eq!(limiter.record(ip(1), start + Duration::from_secs(59)), None);
        // The 999 counted, the one at 59 s and this one.
        assert_eq!(limiter.record(ip(1), start + INTERVAL), Some(1001));
        assert_eq!(limiter.record(ip(1), start + INTERVAL), None);
        // Another address has its own interval.
        assert_eq!(limiter.record(ip(2), start + INTERVAL), Some(1));
        assert_eq!(limiter.record(None, start + INTERVAL), Some(1));
        assert_eq!(limiter.record(None, start + INTERVAL), None);
    }

    #[test]
    fn a_global_cap_per_second() {
        let limiter = FailureLimiter::new(MAX_TRACKED, INTERVAL, 3);
        let start = Instant::now();
        let events = (0..100)
            .filter(|&n| limiter.record(ip(n), start).is_some())
            .count();
        assert_eq!(events, 3);
        // An address refused by the cap keeps its count and is reported in a later second.
        assert_eq!(
            limiter.record(ip(50), start + Duration::from_secs(1)),
            Some(2)
        );
        assert_eq!(
            limiter.record(ip(51), start + Duration::from_millis(1500)),
            Some(2)
        );
        assert_eq!(
            limiter.record(ip(52), start + Duration::from_millis(1900)),
            Some(2)
        );
        assert_eq!(
            limiter.record(ip(53), start + Duration::from_millis(1950)),
            None
        );
        assert_eq!(
            limiter.record(ip(53), start + Duration::from_secs(2)),
            Some(3)
        );
    }

    #[test]
    fn the_table_is_bounded_and_drops_the_longest_tracked() {
        let limiter = FailureLimiter::new(100, INTERVAL, u32::MAX);
        let start = Instant::now();
        for n in 0..10_000 {
            limiter.record(ip(n), start);
        }
        assert_eq!(limiter.tracked(), 100);
        // The last 100 are still tracked (no new event), the first ones were dropped (a new
        // event, counting from scratch).
        assert_eq!(limiter.record(ip(9_999), start), None);
        assert_eq!(limiter.record(ip(0), start), Some(1));
        assert_eq!(limiter.tracked(), 100);
        assert_eq!(FailureLimiter::default().max_tracked, MAX_TRACKED);
    }
}
