//! Login throttling: how many password guesses an attacker gets, counted before any hashing.
//!
//! # The model
//! Every login attempt is counted under up to three keys, each with its own limit and window
//! ([`ThrottleLimits`]):
//!
//! | limit | key | default | stops |
//! |---|---|---|---|
//! | [`per_account_ip`](ThrottleLimits::per_account_ip) | (account, client IP) | 10 failures / 15 min | guessing one account's password from one address |
//! | [`per_ip`](ThrottleLimits::per_ip) | client IP, across accounts | 50 failures / 15 min | password spraying: one password tried on many accounts |
//! | [`per_account`](ThrottleLimits::per_account) | account, across addresses *not* trusted for it | 100 failures / 24 h | distributed guessing (NIST SP 800-63B §5.2.2: at most 100 consecutive failures) |
//! | [`per_account_trusted`](ThrottleLimits::per_account_trusted) | account, across addresses trusted for it | 100 failures / 24 h | guessing from behind an address the user logged in from (same NAT, CGNAT, IPv6 /64) |
//!
//! An attempt counts under the (account, IP) key, the IP key, and exactly one of the two
//! per-account keys: the *trusted* one when its address logged into the account within
//! [`trusted_for`](ThrottleLimits::trusted_for) (default 30 days), the other one otherwise.
//!
//! IPv6 clients are keyed by their `/64` network, which one subscriber usually controls
//! whole. The account is keyed by a SHA-256 digest of the normalized email
//! ([`ThrottleKey::account`]), so no backend stores or logs the email, nor a password typed
//! into the email field.
//!
//! **No lockout button, and no exemption.** Who can fill which counter:
//!
//! - the (account, IP) and IP counters hold only the address that filled them;
//! - the per-account counter is filled by untrusted addresses (anyone, anywhere) and holds
//!   only untrusted addresses: the real user, at an address they used before, still logs in
//!   with the right password while the account is under a distributed attack;
//! - the per-account *trusted* counter can only be filled from addresses trusted for the
//!   account, that is by someone sharing an address the user logged in from, and it caps
//!   them: guessing from behind a trusted address gets at most
//!   [`per_account_trusted`](ThrottleLimits::per_account_trusted) failures per window (100
//!   per 24 hours by default) across all such addresses, as NIST requires, never the
//!   (account, IP) limit forever.
//!
//! A success clears both per-account counters (NIST counts *consecutive* failures).
//!
//! **Reserve, then settle.** [`Throttle::reserve`] counts the attempt as a failure in one
//! atomic step, before the user lookup and the password check, and refuses it if any of its
//! limits is reached; attempts in flight therefore count, and no amount of concurrency gets
//! more guesses verified than the limits allow. After the check the authenticator settles the
//! reservation: [`Throttle::record_success`] forgets the account's consecutive failures and
//! remembers the address; [`Throttle::release`] takes the count back for an attempt that
//! checked no password (a store error, an overloaded hasher). A wrong password needs no
//! settling, and neither does a reservation lost to a crash: it stays counted, which fails
//! safe.
//!
//! Windows are fixed: a key's window opens at its first counted attempt and lasts the
//! limit's window; once the limit is reached, attempts are refused until the window ends
//! (the error carries the time left, for `Retry-After`).
//!
//! # Backends
//! [`MemoryThrottle`] counts in this process. With several instances behind a load balancer,
//! or to keep counts across restarts, use a shared backend: `keycard::redis::RedisThrottle`
//! (feature `redis`), `keycard::postgres::PostgresThrottle` (feature `postgres`) or
//! `keycard::sqlite::SqliteThrottle` (feature `sqlite`, processes on one machine). Building
//! the authenticator from a backend handle (`Postgres::authenticator`,
//! `Sqlite::authenticator`, `Redis::authenticator`) makes that backend's throttle the
//! default. Every backend passes the same contract suite
//! (`keycard::conformance::throttle`, feature `conformance`).

use std::fmt::{self, Debug};
use std::net::{IpAddr, Ipv6Addr};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

pub(crate) mod in_flight;
mod memory;
#[cfg(any(feature = "redis", feature = "postgres", feature = "sqlite"))]
pub(crate) mod shared;

pub use crate::error::ThrottleError;
pub use memory::MemoryThrottle;

/// Counts login attempts and says when to refuse them. See the [module docs](self) for the
/// model.
///
/// # Contract
/// Implementations must keep these promises (the `conformance` feature checks them):
///
/// - **reserve is atomic.** Checking every applicable limit and counting the attempt under
///   every applicable key is one indivisible step: under any concurrency, at most `max`
///   reservations are allowed per key and window. A refused attempt counts under no key.
/// - **Keys applied.** The (account, IP) key always, and the IP key when the key has an IP;
///   then exactly one per-account key: the trusted one ([`LimitKind::AccountTrusted`],
///   limit [`ThrottleLimits::per_account_trusted`]) when the IP is trusted for the account
///   (it logged in successfully within [`ThrottleLimits::trusted_for`]), the untrusted one
///   ([`LimitKind::Account`], limit [`ThrottleLimits::per_account`]) otherwise. Untrusted
///   attempts never count under the trusted key, nor trusted ones under the untrusted key.
///   Without an IP, the (account, IP) key uses one shared "no address" value, the IP key is
///   skipped and the address is never trusted. The [`Reservation`] records which per-account
///   key was counted ([`Reservation::account_counter`]).
/// - **Windows.** A key's window opens at its first counted attempt (at the caller's `now`)
///   and ends `window` later; from then on the key counts from zero. A refusal's
///   `retry_after` is the time until the refusing key's window ends (the longest, if several
///   refuse).
/// - **record_success** deletes the (account, IP) count and both per-account counts (trusted
///   and untrusted), takes one back from the IP count, and trusts the IP for the account for
///   [`ThrottleLimits::trusted_for`].
/// - **release** takes one back from every count the reservation added (never below zero).
/// - **Bounded.** A backend that must bound its memory refuses new keys when full
///   ([`LimitKind::Capacity`]); it never forgets a live window to make room.
/// - Errors mean the backend failed. The authenticator then applies its
///   [`ThrottleOutage`] policy.
/// - Time is the caller's `now`, not the server's, so all instances and tests agree.
#[async_trait]
pub trait Throttle: Send + Sync + Debug {
    /// Counts one attempt under `key`'s keys, or refuses it. See the contract.
    ///
    /// # Errors
    /// [`ThrottleError`] if the backend failed; nothing was counted.
    async fn reserve(
        &self,
        key: &ThrottleKey,
        now: OffsetDateTime,
    ) -> Result<Admission, ThrottleError>;

    /// Settles an allowed attempt whose password matched.
    ///
    /// # Errors
    /// [`ThrottleError`] if the backend failed.
    async fn record_success(
        &self,
        key: &ThrottleKey,
        reservation: Reservation,
        now: OffsetDateTime,
    ) -> Result<(), ThrottleError>;

    /// Settles an allowed attempt that checked no password: takes its counts back.
    ///
    /// # Errors
    /// [`ThrottleError`] if the backend failed.
    async fn release(
        &self,
        key: &ThrottleKey,
        reservation: Reservation,
        now: OffsetDateTime,
    ) -> Result<(), ThrottleError>;

    /// Counts one event under `key` within `limit`'s window, or refuses it: for rate limits
    /// that are not password guesses (registrations per address, mails per address). Atomic
    /// like [`reserve`](Self::reserve): under any concurrency, at most `limit.max_failures()`
    /// hits are allowed per key and window; a refused hit counts nothing. Allowed hits return
    /// [`Admission::Allowed`] with a reservation that counted no account
    /// ([`AccountCounter::NotCounted`]), and are never settled: they stay counted until the
    /// window ends. Refusals are [`LimitKind::Rate`] with the time left in the window (or
    /// [`LimitKind::Capacity`] from a full bounded backend).
    ///
    /// # Errors
    /// [`ThrottleError`] if the backend failed; nothing was counted.
    async fn hit(
        &self,
        key: &RateKey,
        limit: Limit,
        now: OffsetDateTime,
    ) -> Result<Admission, ThrottleError>;

    /// Takes back one [`hit`](Self::hit) counted under `key` in its current window (never
    /// below zero; nothing if the window has ended or the key has no count): for limits that
    /// count every attempt up front, so a race cannot pass them, and forgive the ones that
    /// succeeded (a right second-factor code). Atomic like `hit`.
    ///
    /// The default does nothing, which is safe (the hit stays counted, so the limit is only
    /// stricter); every built-in backend takes the hit back.
    ///
    /// # Errors
    /// [`ThrottleError`] if the backend failed; nothing was changed.
    async fn give_back(&self, key: &RateKey, now: OffsetDateTime) -> Result<(), ThrottleError> {
        let _ = (key, now);
        Ok(())
    }

    /// Deletes windows that ended and trusts that lapsed at `now`; returns how many entries
    /// were removed. Called by [`Authenticator::expire`](crate::Authenticator::expire).
    ///
    /// # Errors
    /// [`ThrottleError`] if the backend failed.
    async fn prune(&self, now: OffsetDateTime) -> Result<u64, ThrottleError>;
}

/// What an attempt is counted under: the account (as a digest) and the client's address.
///
/// Its `Debug` and `Display` show the digest, never the email.
///
/// ```
/// use keycard::throttle::ThrottleKey;
/// let key = ThrottleKey::new("ann@example.com", Some("2001:db8:0:1:2:3:4:5".parse()?));
/// assert_eq!(key.account().len(), 22);
/// assert!(!format!("{key:?}").contains("ann"));
/// // IPv6 clients are keyed by their /64.
/// assert_eq!(key.ip(), Some("2001:db8:0:1::".parse()?));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct ThrottleKey {
    account: String,
    ip: Option<IpAddr>,
}

impl ThrottleKey {
    /// The key for a login with `email` (already [normalized](crate::normalize_email)) from
    /// `ip`.
    pub fn new(email: &str, ip: Option<IpAddr>) -> Self {
        let digest = Sha256::new()
            .chain_update(b"keycard throttle account\0")
            .chain_update(email.as_bytes())
            .finalize();
        Self {
            account: URL_SAFE_NO_PAD.encode(&digest[..16]),
            ip: ip.map(network_of),
        }
    }

    /// The account: 22 base64url characters of a SHA-256 digest of the email. Safe to store
    /// and to log.
    pub fn account(&self) -> &str {
        &self.account
    }

    /// The client's address as counted: IPv4 as is, IPv6 reduced to its `/64` network.
    pub fn ip(&self) -> Option<IpAddr> {
        self.ip
    }

    /// [`ip`](Self::ip) as text, or `-` without an address: the value backends store for the
    /// (account, IP) key.
    pub fn ip_text(&self) -> String {
        self.ip.map_or_else(|| "-".to_owned(), |ip| ip.to_string())
    }
}

impl Debug for ThrottleKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ThrottleKey({self})")
    }
}

impl fmt::Display for ThrottleKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}", self.account, self.ip_text())
    }
}

/// What a [`Throttle::hit`] is counted under: a bucket (what is limited, for example
/// `"register"`) and a digest of the subject (an address, an email), so no backend stores or
/// logs the subject.
///
/// Its `Debug` and `Display` show the backend key (bucket and digest), never the subject.
///
/// ```
/// use keycard::throttle::RateKey;
/// let key = RateKey::new("reset-mail", "ann@example.com");
/// assert!(key.as_str().starts_with("rate:reset-mail:"));
/// assert_eq!(key.digest().len(), 22);
/// assert!(!format!("{key:?}").contains("ann"));
/// // IPv6 clients are keyed by their /64.
/// assert_eq!(
///     RateKey::ip("register", "2001:db8::1".parse()?),
///     RateKey::ip("register", "2001:db8::ffff".parse()?)
/// );
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct RateKey {
    bucket: &'static str,
    /// `rate:<bucket>:<digest>`.
    text: String,
}

impl RateKey {
    /// The key for `subject` in `bucket`. `subject` is hashed (SHA-256, with the bucket), so
    /// it may be anything: an email, a user id.
    pub fn new(bucket: &'static str, subject: &str) -> Self {
        let digest = Sha256::new()
            .chain_update(b"keycard rate\0")
            .chain_update(bucket.as_bytes())
            .chain_update(b"\0")
            .chain_update(subject.as_bytes())
            .finalize();
        Self {
            bucket,
            text: format!("rate:{bucket}:{}", URL_SAFE_NO_PAD.encode(&digest[..16])),
        }
    }

    /// The key for the client address `ip` in `bucket`: IPv4 as is, IPv6 by its `/64`
    /// network, as [`ThrottleKey`] counts addresses.
    pub fn ip(bucket: &'static str, ip: IpAddr) -> Self {
        Self::new(bucket, &network_of(ip).to_string())
    }

    /// The bucket.
    pub fn bucket(&self) -> &'static str {
        self.bucket
    }

    /// The subject's digest: 22 base64url characters. Safe to store and to log.
    pub fn digest(&self) -> &str {
        let start = self.text.len().saturating_sub(22);
        self.text.get(start..).unwrap_or_default()
    }

    /// The key as backends store it: `rate:<bucket>:<digest>`.
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

impl Debug for RateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RateKey({})", self.text)
    }
}

impl fmt::Display for RateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// IPv4 as is; IPv6 (other than IPv4-mapped) masked to its /64.
pub(crate) fn network_of(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V6(v6) => {
            let bits = u128::from(v6) & !((1u128 << 64) - 1);
            IpAddr::V6(Ipv6Addr::from(bits))
        }
        v4 => v4,
    }
}

/// One limit: at most `max_failures` counted attempts per `window`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit {
    max_failures: u32,
    window: Duration,
}

impl Limit {
    /// At most `max_failures` (at least 1) per `window` (at least one second).
    pub fn new(max_failures: u32, window: Duration) -> Self {
        Self {
            max_failures: max_failures.max(1),
            window: window.max(Duration::from_secs(1)),
        }
    }

    /// How many attempts a window allows.
    pub fn max_failures(&self) -> u32 {
        self.max_failures
    }

    /// How long a window lasts.
    pub fn window(&self) -> Duration {
        self.window
    }
}

/// The four limits and how long a successful address stays trusted. Every backend takes
/// one; the defaults are the secure ones in the [module table](self).
///
/// ```
/// use std::time::Duration;
/// use keycard::throttle::{Limit, ThrottleLimits};
/// let limits = ThrottleLimits::default()
///     .per_ip(Limit::new(200, Duration::from_secs(15 * 60))); // a large office behind one NAT
/// assert_eq!(limits.per_account_ip_limit().max_failures(), 10);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThrottleLimits {
    per_account_ip: Limit,
    per_ip: Limit,
    per_account: Limit,
    per_account_trusted: Limit,
    trusted_for: Duration,
}

impl ThrottleLimits {
    /// Sets the (account, client IP) limit. Default: 10 per 15 minutes.
    #[must_use]
    pub fn per_account_ip(mut self, limit: Limit) -> Self {
        self.per_account_ip = limit;
        self
    }

    /// Sets the per-client-IP limit, across accounts. Default: 50 per 15 minutes.
    #[must_use]
    pub fn per_ip(mut self, limit: Limit) -> Self {
        self.per_ip = limit;
        self
    }

    /// Sets the per-account limit, across addresses not trusted for the account. Default:
    /// 100 per 24 hours. NIST SP 800-63B allows at most 100 consecutive failures.
    #[must_use]
    pub fn per_account(mut self, limit: Limit) -> Self {
        self.per_account = limit;
        self
    }

    /// Sets the per-account limit across addresses trusted for the account (they logged into
    /// it within [`trusted_for`](Self::trusted_for)). Default: 100 per 24 hours, the NIST SP
    /// 800-63B cap, so that guessing from behind an address the user shares (NAT, CGNAT, one
    /// IPv6 /64) is capped too. Only trusted addresses count under it: outsiders cannot fill
    /// it.
    #[must_use]
    pub fn per_account_trusted(mut self, limit: Limit) -> Self {
        self.per_account_trusted = limit;
        self
    }

    /// How long an address that logged into an account stays trusted for it: its attempts
    /// count under [`per_account_trusted`](Self::per_account_trusted) instead of
    /// [`per_account`](Self::per_account). Default: 30 days. `Duration::ZERO` trusts no
    /// address.
    #[must_use]
    pub fn trusted_for(mut self, trusted_for: Duration) -> Self {
        self.trusted_for = trusted_for;
        self
    }

    /// The (account, client IP) limit.
    pub fn per_account_ip_limit(&self) -> Limit {
        self.per_account_ip
    }

    /// The per-client-IP limit.
    pub fn per_ip_limit(&self) -> Limit {
        self.per_ip
    }

    /// The per-account limit (untrusted addresses).
    pub fn per_account_limit(&self) -> Limit {
        self.per_account
    }

    /// The per-account limit of trusted addresses.
    pub fn per_account_trusted_limit(&self) -> Limit {
        self.per_account_trusted
    }

    /// How long a successful address stays trusted for its account.
    pub fn trusted_duration(&self) -> Duration {
        self.trusted_for
    }

    /// The limit for one kind of key (`None` for [`LimitKind::Capacity`] and
    /// [`LimitKind::Rate`], whose limit the caller passes).
    pub fn limit(&self, kind: LimitKind) -> Option<Limit> {
        match kind {
            LimitKind::AccountIp => Some(self.per_account_ip),
            LimitKind::Ip => Some(self.per_ip),
            LimitKind::Account => Some(self.per_account),
            LimitKind::AccountTrusted => Some(self.per_account_trusted),
            LimitKind::Capacity | LimitKind::Rate => None,
        }
    }
}

impl Default for ThrottleLimits {
    fn default() -> Self {
        const MINUTE: u64 = 60;
        Self {
            per_account_ip: Limit::new(10, Duration::from_secs(15 * MINUTE)),
            per_ip: Limit::new(50, Duration::from_secs(15 * MINUTE)),
            per_account: Limit::new(100, Duration::from_secs(24 * 60 * MINUTE)),
            per_account_trusted: Limit::new(100, Duration::from_secs(24 * 60 * MINUTE)),
            trusted_for: Duration::from_secs(30 * 24 * 60 * MINUTE),
        }
    }
}

/// Which limit refused an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum LimitKind {
    /// The (account, client IP) limit.
    AccountIp,
    /// The per-client-IP limit.
    Ip,
    /// The per-account limit (addresses not trusted for the account).
    Account,
    /// The backend is full and cannot count a new key; it refuses rather than forget.
    Capacity,
    /// The per-account limit of addresses trusted for the account.
    AccountTrusted,
    /// A rate limit counted by [`Throttle::hit`].
    Rate,
}

impl LimitKind {
    /// A stable name for logs: `account_ip`, `ip`, `account`, `account_trusted`, `rate` or
    /// `capacity`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::AccountIp => "account_ip",
            Self::Ip => "ip",
            Self::Account => "account",
            Self::AccountTrusted => "account_trusted",
            Self::Rate => "rate",
            Self::Capacity => "capacity",
        }
    }
}

impl fmt::Display for LimitKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The answer to [`Throttle::reserve`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Admission {
    /// Counted: check the password, then settle.
    Allowed(Reservation),
    /// Not counted: refuse without checking anything.
    Refused {
        /// Which limit refused.
        limit: LimitKind,
        /// How long until that limit's window ends.
        retry_after: Duration,
    },
}

/// What a [`Throttle::reserve`] counted, handed back when settling.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reservation {
    account: AccountCounter,
}

/// Which per-account counter a [`Reservation`] counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AccountCounter {
    /// The per-account counter of untrusted addresses ([`LimitKind::Account`]).
    Untrusted,
    /// The per-account counter of addresses trusted for the account
    /// ([`LimitKind::AccountTrusted`]).
    Trusted,
    /// Neither: a [`Throttle::hit`], which counts no account.
    NotCounted,
}

impl Reservation {
    /// A reservation that counted the untrusted per-account counter (`account_counted`), or
    /// the trusted one because the address is trusted for the account.
    pub fn new(account_counted: bool) -> Self {
        Self::counting(if account_counted {
            AccountCounter::Untrusted
        } else {
            AccountCounter::Trusted
        })
    }

    /// A reservation that counted `account`.
    pub fn counting(account: AccountCounter) -> Self {
        Self { account }
    }

    /// Which per-account counter was counted.
    pub fn account_counter(&self) -> AccountCounter {
        self.account
    }

    /// Whether the untrusted per-account counter ([`LimitKind::Account`]) was counted.
    pub fn account_counted(&self) -> bool {
        self.account == AccountCounter::Untrusted
    }
}

/// What login does when the throttle's backend fails.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum ThrottleOutage {
    /// Refuse the login with [`Error::ThrottleUnavailable`](crate::Error::ThrottleUnavailable) (HTTP 503): no password
    /// is checked while attempts cannot be counted. The default.
    #[default]
    FailClosed,
    /// Check the password without counting, and log a warning. Logins keep working during
    /// the outage, and so does guessing, unlimited.
    FailOpen,
}

macro_rules! forward_throttle {
    ($($ptr:ty),*) => {$(
        #[async_trait]
        impl<T: Throttle + ?Sized> Throttle for $ptr {
            async fn reserve(&self, key: &ThrottleKey, now: OffsetDateTime) -> Result<Admission, ThrottleError> {
                (**self).reserve(key, now).await
            }
            async fn record_success(&self, key: &ThrottleKey, reservation: Reservation, now: OffsetDateTime) -> Result<(), ThrottleError> {
                (**self).record_success(key, reservation, now).await
            }
            async fn release(&self, key: &ThrottleKey, reservation: Reservation, now: OffsetDateTime) -> Result<(), ThrottleError> {
                (**self).release(key, reservation, now).await
            }
            async fn hit(&self, key: &RateKey, limit: Limit, now: OffsetDateTime) -> Result<Admission, ThrottleError> {
                (**self).hit(key, limit, now).await
            }
            async fn give_back(&self, key: &RateKey, now: OffsetDateTime) -> Result<(), ThrottleError> {
                (**self).give_back(key, now).await
            }
            async fn prune(&self, now: OffsetDateTime) -> Result<u64, ThrottleError> {
                (**self).prune(now).await
            }
        }
    )*};
}

forward_throttle!(Arc<T>, Box<T>);

/// When a window that opened at `started` with length `window` ends.
#[cfg(any(feature = "redis", feature = "postgres", feature = "sqlite"))]
pub(crate) fn window_end(started: OffsetDateTime, window: Duration) -> OffsetDateTime {
    started.saturating_add(time::Duration::try_from(window).unwrap_or(time::Duration::MAX))
}

/// The time from `now` until `end` (zero if past).
#[cfg(feature = "postgres")]
pub(crate) fn until(end: OffsetDateTime, now: OffsetDateTime) -> Duration {
    let left = end - now;
    if left.is_positive() {
        left.unsigned_abs()
    } else {
        Duration::ZERO
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_hide_the_email_and_group_ipv6_by_64() {
        let a = ThrottleKey::new("ann@example.com", Some("2001:db8::1".parse().expect("ip")));
        let b = ThrottleKey::new(
            "ann@example.com",
            Some("2001:db8::ffff".parse().expect("ip")),
        );
        let c = ThrottleKey::new(
            "ann@example.com",
            Some("2001:db8:0:1::1".parse().expect("ip")),
        );
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert!(!a.to_string().contains("ann"));
        let v4 = ThrottleKey::new("x", Some("::ffff:192.0.2.1".parse().expect("ip")));
        assert_eq!(v4.ip_text(), "192.0.2.1");
        assert_eq!(ThrottleKey::new("x", None).ip_text(), "-");
        assert_ne!(
            ThrottleKey::new("x", None).account(),
            ThrottleKey::new("y", None).account()
        );
    }

    #[test]
    fn rate_keys_hide_the_subject_and_group_ipv6_by_64() {
        let a = RateKey::new("register", "ann@example.com");
        assert_eq!(a.bucket(), "register");
        assert_eq!(a.as_str(), format!("rate:register:{}", a.digest()));
        assert_eq!(a.digest().len(), 22);
        assert!(!format!("{a:?} {a}").contains("ann"));
        assert_ne!(a, RateKey::new("mail", "ann@example.com"));
        assert_ne!(a.digest(), RateKey::new("mail", "ann@example.com").digest());
        let v6 = |ip: &str| RateKey::ip("register", ip.parse().expect("ip"));
        assert_eq!(v6("2001:db8::1"), v6("2001:db8::2"));
        assert_ne!(v6("2001:db8::1"), v6("2001:db8:0:1::1"));
        assert_eq!(v6("::ffff:192.0.2.1"), v6("192.0.2.1"));
        assert_ne!(v6("192.0.2.1"), v6("192.0.2.2"));
    }

    #[test]
    fn limits_have_floors_and_secure_defaults() {
        let l = Limit::new(0, Duration::ZERO);
        assert_eq!((l.max_failures(), l.window()), (1, Duration::from_secs(1)));
        let d = ThrottleLimits::default();
        assert_eq!(d.per_account_ip_limit().max_failures(), 10);
        assert!(d.per_account_limit().max_failures() <= 100);
        let trusted = d.per_account_trusted_limit();
        assert_eq!(
            (trusted.max_failures(), trusted.window()),
            (100, Duration::from_secs(24 * 3600))
        );
        assert_eq!(d.limit(LimitKind::AccountTrusted), Some(trusted));
        assert_eq!(LimitKind::AccountTrusted.as_str(), "account_trusted");
        assert_eq!(LimitKind::Rate.as_str(), "rate");
        assert_eq!(d.limit(LimitKind::Capacity), None);
        assert!(!Reservation::new(false).account_counted());
        assert_eq!(
            Reservation::new(false).account_counter(),
            AccountCounter::Trusted
        );
    }
}
