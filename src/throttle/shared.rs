//! What the shared throttle backends (Redis, PostgreSQL, SQLite) have in common: the names of
//! their counters and trusted addresses, and the codes of the limit kinds they store.
//!
//! Every backend keeps one entry per key, named as below (`<account>` is
//! [`ThrottleKey::account`], `<ip>` is [`ThrottleKey::ip_text`]):
//!
//! | entry | name | holds |
//! |---|---|---|
//! | (account, IP) counter | `pair:<account>:<ip>` | count, window end |
//! | IP counter | `ip:<ip>` | count, window end |
//! | account counter (untrusted addresses) | `account:<account>` | count, window end |
//! | account counter (trusted addresses) | `account_trusted:<account>` | count, window end |
//! | trusted address | `trusted:<account>:<ip>` | trusted until |
//!
//! The account is 22 base64url characters (no `:`), so names never collide.

use time::OffsetDateTime;

use super::{window_end, AccountCounter, Limit, LimitKind, ThrottleKey, ThrottleLimits};

/// One counter an attempt touches.
#[derive(Debug, Clone)]
pub(crate) struct Counter {
    /// The entry's name (see the module docs).
    pub(crate) name: String,
    /// Which limit it enforces.
    pub(crate) kind: LimitKind,
    /// That limit.
    pub(crate) limit: Limit,
}

impl Counter {
    /// When a window of this counter opening at `now` ends.
    pub(crate) fn fresh_end(&self, now: OffsetDateTime) -> OffsetDateTime {
        window_end(now, self.limit.window())
    }
}

/// The counters a reservation under `key` counted, in the order the contract checks them: the
/// (account, IP) counter, the IP counter (with an address), then the per-account counter
/// `account` names (none for [`AccountCounter::NotCounted`]).
pub(crate) fn counters(
    key: &ThrottleKey,
    limits: &ThrottleLimits,
    account: AccountCounter,
) -> Vec<Counter> {
    let mut counters = vec![Counter {
        name: pair_name(key),
        kind: LimitKind::AccountIp,
        limit: limits.per_account_ip_limit(),
    }];
    if key.ip().is_some() {
        counters.push(Counter {
            name: format!("ip:{}", key.ip_text()),
            kind: LimitKind::Ip,
            limit: limits.per_ip_limit(),
        });
    }
    match account {
        AccountCounter::Untrusted => counters.push(account_counter(key, limits)),
        AccountCounter::Trusted => counters.push(account_trusted_counter(key, limits)),
        AccountCounter::NotCounted => {}
    }
    counters
}

/// Every counter a reserve under `key` may count, for a backend that decides trust in the
/// same atomic step: [`counters`] with the untrusted per-account counter, then (with an
/// address) the trusted one. Exactly one of the two per-account counters applies: the
/// trusted one if the address is trusted for the account.
pub(crate) fn reserve_counters(key: &ThrottleKey, limits: &ThrottleLimits) -> Vec<Counter> {
    let mut counters = counters(key, limits, AccountCounter::Untrusted);
    if key.ip().is_some() {
        counters.push(account_trusted_counter(key, limits));
    }
    counters
}

/// Whether counter `kind` applies to an attempt whose address is trusted (`trusted`) or not.
#[cfg(feature = "sqlite")]
pub(crate) fn applies(kind: LimitKind, trusted: bool) -> bool {
    match kind {
        LimitKind::Account => !trusted,
        LimitKind::AccountTrusted => trusted,
        _ => true,
    }
}

fn account_counter(key: &ThrottleKey, limits: &ThrottleLimits) -> Counter {
    Counter {
        name: account_name(key),
        kind: LimitKind::Account,
        limit: limits.per_account_limit(),
    }
}

fn account_trusted_counter(key: &ThrottleKey, limits: &ThrottleLimits) -> Counter {
    Counter {
        name: account_trusted_name(key),
        kind: LimitKind::AccountTrusted,
        limit: limits.per_account_trusted_limit(),
    }
}

/// The (account, IP) counter's name.
pub(crate) fn pair_name(key: &ThrottleKey) -> String {
    format!("pair:{}:{}", key.account(), key.ip_text())
}

/// The account counter's name.
pub(crate) fn account_name(key: &ThrottleKey) -> String {
    format!("account:{}", key.account())
}

/// The trusted addresses' account counter's name.
pub(crate) fn account_trusted_name(key: &ThrottleKey) -> String {
    format!("account_trusted:{}", key.account())
}

/// The IP counter's name, with an address.
pub(crate) fn ip_name(key: &ThrottleKey) -> Option<String> {
    key.ip().map(|ip| format!("ip:{ip}"))
}

/// The name of the entry that trusts the key's address for its account, with an address.
pub(crate) fn trusted_name(key: &ThrottleKey) -> Option<String> {
    key.ip().map(|ip| format!("trusted:{}:{ip}", key.account()))
}

/// Until when a success at `now` trusts the address, unless trust is off
/// ([`ThrottleLimits::trusted_for`] zero).
pub(crate) fn trusted_until(
    limits: &ThrottleLimits,
    now: OffsetDateTime,
) -> Option<OffsetDateTime> {
    let trusted_for = limits.trusted_duration();
    (!trusted_for.is_zero()).then(|| window_end(now, trusted_for))
}

/// The code a backend passes around for a limit kind: 1 to 6.
#[cfg(any(feature = "redis", feature = "postgres"))]
pub(crate) fn kind_code(kind: LimitKind) -> i16 {
    match kind {
        LimitKind::AccountIp => 1,
        LimitKind::Ip => 2,
        LimitKind::Account => 3,
        LimitKind::Capacity => 4,
        LimitKind::AccountTrusted => 5,
        LimitKind::Rate => 6,
    }
}

/// The limit kind of a code.
#[cfg(any(feature = "redis", feature = "postgres"))]
pub(crate) fn kind_of(code: i64) -> Result<LimitKind, crate::throttle::ThrottleError> {
    match code {
        1 => Ok(LimitKind::AccountIp),
        2 => Ok(LimitKind::Ip),
        3 => Ok(LimitKind::Account),
        5 => Ok(LimitKind::AccountTrusted),
        6 => Ok(LimitKind::Rate),
        other => Err(crate::throttle::ThrottleError::corrupt(format!(
            "the throttle backend returned an unknown limit kind {other}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_codes() {
        let limits = ThrottleLimits::default();
        let key = ThrottleKey::new("ann@example.com", Some("2001:db8::1".parse().expect("ip")));
        let names: Vec<String> = reserve_counters(&key, &limits)
            .into_iter()
            .map(|c| c.name)
            .collect();
        let a = key.account();
        assert_eq!(
            names,
            [
                format!("pair:{a}:2001:db8::"),
                "ip:2001:db8::".to_owned(),
                format!("account:{a}"),
                format!("account_trusted:{a}"),
            ]
        );
        let trusted = counters(&key, &limits, AccountCounter::Trusted);
        assert_eq!(trusted.len(), 3);
        assert_eq!(trusted[2].kind, LimitKind::AccountTrusted);
        assert_eq!(trusted_name(&key), Some(format!("trusted:{a}:2001:db8::")));
        let none = ThrottleKey::new("ann@example.com", None);
        assert_eq!(
            counters(&none, &limits, AccountCounter::NotCounted).len(),
            1
        );
        assert_eq!(reserve_counters(&none, &limits).len(), 2);
        assert_eq!(trusted_name(&none), None);
        assert_eq!(ip_name(&none), None);
        #[cfg(any(feature = "redis", feature = "postgres"))]
        {
            for kind in [
                LimitKind::AccountIp,
                LimitKind::Ip,
                LimitKind::Account,
                LimitKind::AccountTrusted,
                LimitKind::Rate,
            ] {
                assert_eq!(kind_of(i64::from(kind_code(kind))).expect("known"), kind);
            }
            assert!(kind_of(4).is_err());
        }
        assert_eq!(
            trusted_until(
                &limits.trusted_for(std::time::Duration::ZERO),
                OffsetDateTime::UNIX_EPOCH
            ),
            None
        );
    }
}
