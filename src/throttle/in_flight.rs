//! How many logins one client address has in flight at once, in this process.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Mutex, PoisonError};

/// Counts logins in flight per client address (as the throttle keys it: IPv6 by `/64`).
/// Memory is bounded by the number of logins in flight.
#[derive(Debug)]
pub(crate) struct InFlight {
    max_per_ip: usize,
    by_ip: Mutex<HashMap<IpAddr, usize>>,
}

impl InFlight {
    pub(crate) fn new(max_per_ip: usize) -> Self {
        Self {
            max_per_ip: max_per_ip.max(1),
            by_ip: Mutex::new(HashMap::new()),
        }
    }

    pub(crate) fn max_per_ip(&self) -> usize {
        self.max_per_ip
    }

    /// A place for one more login from `ip`, or `None` if it already has the maximum in
    /// flight. Logins without an address are not counted.
    pub(crate) fn enter(&self, ip: Option<IpAddr>) -> Option<InFlightGuard<'_>> {
        let Some(ip) = ip else {
            return Some(InFlightGuard {
                owner: self,
                ip: None,
            });
        };
        let mut by_ip = self.by_ip.lock().unwrap_or_else(PoisonError::into_inner);
        let n = by_ip.entry(ip).or_insert(0);
        if *n >= self.max_per_ip {
            return None;
        }
        *n += 1;
        Some(InFlightGuard {
            owner: self,
            ip: Some(ip),
        })
    }
}

/// Gives its place back on drop, also when the login's future is dropped.
pub(crate) struct InFlightGuard<'a> {
    owner: &'a InFlight,
    ip: Option<IpAddr>,
}

impl Drop for InFlightGuard<'_> {
    fn drop(&mut self) {
        let Some(ip) = self.ip else { return };
        let mut by_ip = self
            .owner
            .by_ip
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(n) = by_ip.get_mut(&ip) {
            *n -= 1;
            if *n == 0 {
                by_ip.remove(&ip);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn places_are_counted_per_address_and_given_back() {
        let f = InFlight::new(2);
        let a: IpAddr = "192.0.2.1".parse().expect("ip");
        let b: IpAddr = "192.0.2.2".parse().expect("ip");
        let one = f.enter(Some(a)).expect("first");
        let _two = f.enter(Some(a)).expect("second");
        assert!(f.enter(Some(a)).is_none());
        assert!(f.enter(Some(b)).is_some());
        assert!(f.enter(None).is_some());
        drop(one);
        assert!(f.enter(Some(a)).is_some());
        drop(_two);
        assert!(f.by_ip.lock().expect("lock").is_empty());
    }
}
