//! The [`Throttle`] contract as a reusable test suite.
//!
//! Build the throttle under test with [`limits()`], then run [`run_all`] (and
//! [`concurrent_tasks`] on a multi-thread runtime):
//!
//! ```
//! use std::sync::Arc;
//! use keycard::conformance::throttle;
//! use keycard::throttle::{MemoryThrottle, Throttle};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let t: Arc<dyn Throttle> = Arc::new(MemoryThrottle::new(throttle::limits()));
//! throttle::run_all(&*t).await;
//! throttle::concurrent_tasks(t).await;
//! # }
//! ```
//!
//! Like the token store checks, these create their own keys only (random accounts, random
//! addresses in the documentation ranges `198.18.0.0/15` and `2001:db8::/32`), so several
//! runs may share one live server. Times are the current time, rounded to the millisecond,
//! plus offsets of at most a few minutes; [`prune_keeps_live_windows`] prunes at the current
//! time only, so it never disturbs another run's live windows.
//!
//! # Panics
//! Every check panics when the throttle breaks the contract or returns an error.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::join_all;
use time::OffsetDateTime;

use super::base_time;
use crate::throttle::{
    AccountCounter, Admission, Limit, LimitKind, RateKey, Reservation, Throttle, ThrottleKey,
    ThrottleLimits,
};

/// The window of every limit in [`limits()`].
pub const WINDOW: Duration = Duration::from_secs(60);
/// [`limits()`]' (account, IP) limit.
pub const PER_ACCOUNT_IP: u32 = 4;
/// [`limits()`]' per-IP limit.
pub const PER_IP: u32 = 12;
/// [`limits()`]' per-account limit (untrusted addresses).
pub const PER_ACCOUNT: u32 = 8;
/// [`limits()`]' per-account limit of trusted addresses.
pub const PER_ACCOUNT_TRUSTED: u32 = 6;

/// The limits the throttle under test must be built with: (account, IP) 4, IP 12, account 8,
/// account from trusted addresses 6, each per 60 seconds; addresses trusted for an hour.
pub fn limits() -> ThrottleLimits {
    ThrottleLimits::default()
        .per_account_ip(Limit::new(PER_ACCOUNT_IP, WINDOW))
        .per_ip(Limit::new(PER_IP, WINDOW))
        .per_account(Limit::new(PER_ACCOUNT, WINDOW))
        .per_account_trusted(Limit::new(PER_ACCOUNT_TRUSTED, WINDOW))
        .trusted_for(Duration::from_secs(3600))
}

/// Runs every check: [`per_account_ip_limit`], [`per_ip_limit`],
/// [`per_account_limit_spares_trusted_addresses`], [`trusted_addresses_are_capped_apart`],
/// [`windows_end`],
/// [`success_resets_and_release_gives_back`], [`refused_attempts_count_nowhere`],
/// [`without_an_address`], [`prune_keeps_live_windows`], [`concurrent_reservations`],
/// [`rate_hits`], [`give_back_takes_one_hit_back`], [`give_back_opens_no_window`],
/// [`give_back_stops_at_zero`] and [`concurrent_give_backs`] (with `throttle` as both
/// instances).
///
/// # Panics
/// When the throttle breaks the contract or fails.
pub async fn run_all(throttle: &dyn Throttle) {
    per_account_ip_limit(throttle).await;
    per_ip_limit(throttle).await;
    per_account_limit_spares_trusted_addresses(throttle).await;
    trusted_addresses_are_capped_apart(throttle).await;
    windows_end(throttle).await;
    success_resets_and_release_gives_back(throttle).await;
    refused_attempts_count_nowhere(throttle).await;
    without_an_address(throttle).await;
    prune_keeps_live_windows(throttle).await;
    concurrent_reservations(throttle).await;
    rate_hits(throttle).await;
    give_back_takes_one_hit_back(throttle).await;
    give_back_opens_no_window(throttle).await;
    give_back_stops_at_zero(throttle).await;
    concurrent_give_backs(throttle, throttle).await;
}

/// (account, IP): exactly [`PER_ACCOUNT_IP`] attempts, then refusals with the time left;
/// another address or another account is not held.
///
/// # Panics
/// When the throttle breaks the contract or fails.
pub async fn per_account_ip_limit(t: &dyn Throttle) {
    let now = base_time();
    let (account, ip) = (account("pair"), ipv4());
    let key = ThrottleKey::new(&account, Some(ip));
    for i in 0..PER_ACCOUNT_IP {
        allowed(
            t,
            &key,
            now,
            &format!("attempt {} of {PER_ACCOUNT_IP}", i + 1),
        )
        .await;
    }
    let later = now + Duration::from_secs(20);
    let (limit, retry_after) = refused(t, &key, later, "one attempt over the limit").await;
    assert_eq!(
        limit,
        LimitKind::AccountIp,
        "the (account, IP) limit refuses"
    );
    assert_eq!(
        retry_after,
        WINDOW - Duration::from_secs(20),
        "retry_after is the time left in the window"
    );
    allowed(
        t,
        &ThrottleKey::new(&account, Some(ipv4())),
        later,
        "same account, other address",
    )
    .await;
    allowed(
        t,
        &ThrottleKey::new(&self::account("pair-other"), Some(ip)),
        later,
        "same address, other account",
    )
    .await;
}

/// Client IP across accounts: exactly [`PER_IP`] attempts over many accounts, then refusals.
/// IPv6 addresses of one `/64` count as one.
///
/// # Panics
/// When the throttle breaks the contract or fails.
pub async fn per_ip_limit(t: &dyn Throttle) {
    let now = base_time();
    let net = ipv6_net();
    for i in 0..PER_IP {
        // A different host of the same /64 each time.
        let ip = IpAddr::V6(Ipv6Addr::from(u128::from(net) | u128::from(i + 1)));
        let key = ThrottleKey::new(&account("spray"), Some(ip));
        allowed(
            t,
            &key,
            now,
            &format!("spraying attempt {} of {PER_IP}", i + 1),
        )
        .await;
    }
    let key = ThrottleKey::new(&account("spray"), Some(IpAddr::V6(net)));
    let (limit, _) = refused(t, &key, now, "one more account from the same /64").await;
    assert_eq!(limit, LimitKind::Ip, "the per-IP limit refuses");
}

/// Account across addresses: exactly [`PER_ACCOUNT`] attempts from untrusted addresses, then
/// refusals; an address that logged in successfully is trusted and still allowed.
///
/// # Panics
/// When the throttle breaks the contract or fails.
pub async fn per_account_limit_spares_trusted_addresses(t: &dyn Throttle) {
    let now = base_time();
    let account = account("account");
    let home = ThrottleKey::new(&account, Some(ipv4()));
    let r = allowed(t, &home, now, "the real user's login").await;
    assert!(
        r.account_counted(),
        "an untrusted address counts under the account"
    );
    t.record_success(&home, r, now)
        .await
        .expect("record_success");

    for i in 0..PER_ACCOUNT {
        // Each attacker address stays under its own (account, IP) limit.
        let key = ThrottleKey::new(&account, Some(ipv4()));
        allowed(
            t,
            &key,
            now,
            &format!("distributed attempt {} of {PER_ACCOUNT}", i + 1),
        )
        .await;
    }
    let (limit, _) = refused(
        t,
        &ThrottleKey::new(&account, Some(ipv4())),
        now,
        "a new address once the account is full",
    )
    .await;
    assert_eq!(limit, LimitKind::Account, "the per-account limit refuses");

    let r = allowed(
        t,
        &home,
        now,
        "the trusted address while the account is under attack",
    )
    .await;
    assert!(
        !r.account_counted(),
        "a trusted address does not count under the account"
    );
    t.record_success(&home, r, now)
        .await
        .expect("record_success");
}

/// Trusted addresses are capped too, on a counter of their own: with the untrusted
/// per-account counter full, two trusted addresses together get exactly
/// [`PER_ACCOUNT_TRUSTED`] attempts (each within its (account, IP) limit), then refusals
/// ([`LimitKind::AccountTrusted`]); release gives one back; a success clears both per-account
/// counters.
///
/// # Panics
/// When the throttle breaks the contract or fails.
pub async fn trusted_addresses_are_capped_apart(t: &dyn Throttle) {
    let now = base_time();
    let account = account("trusted-cap");
    let homes = [
        ThrottleKey::new(&account, Some(ipv4())),
        ThrottleKey::new(&account, Some(IpAddr::V6(ipv6_net()))),
    ];
    for home in &homes {
        let r = allowed(t, home, now, "the real user's login").await;
        t.record_success(home, r, now)
            .await
            .expect("record_success");
    }
    // Outsiders fill the untrusted per-account counter...
    for i in 0..PER_ACCOUNT {
        let key = ThrottleKey::new(&account, Some(ipv4()));
        let r = allowed(
            t,
            &key,
            now,
            &format!("outsider attempt {} of {PER_ACCOUNT}", i + 1),
        )
        .await;
        assert_eq!(r.account_counter(), AccountCounter::Untrusted);
    }
    let (limit, _) = refused(
        t,
        &ThrottleKey::new(&account, Some(ipv4())),
        now,
        "an outsider once the account is full",
    )
    .await;
    assert_eq!(limit, LimitKind::Account);
    // ...which does not touch the trusted addresses' counter: they get all of theirs.
    let mut reservations = Vec::new();
    for i in 0..PER_ACCOUNT_TRUSTED {
        let home = &homes[(i / PER_ACCOUNT_IP) as usize];
        let r = allowed(
            t,
            home,
            now,
            &format!("trusted attempt {} of {PER_ACCOUNT_TRUSTED}", i + 1),
        )
        .await;
        assert_eq!(
            r.account_counter(),
            AccountCounter::Trusted,
            "a trusted address counts under the trusted per-account counter"
        );
        reservations.push(r);
    }
    let second = &homes[1];
    let (limit, retry_after) = refused(t, second, now, "a trusted address over the cap").await;
    assert_eq!(
        limit,
        LimitKind::AccountTrusted,
        "the trusted per-account limit refuses"
    );
    assert_eq!(retry_after, WINDOW);
    // A trusted address never counts under the untrusted counter (still exactly full).
    let (limit, _) = refused(
        t,
        &ThrottleKey::new(&account, Some(ipv4())),
        now,
        "an outsider after the trusted attempts",
    )
    .await;
    assert_eq!(limit, LimitKind::Account);

    // Release gives the trusted attempt back.
    let last = reservations.pop().expect("an attempt");
    t.release(second, last, now).await.expect("release");
    allowed(t, second, now, "the trusted attempt given back").await;
    let (limit, _) = refused(t, second, now, "release gives back one attempt only").await;
    assert_eq!(limit, LimitKind::AccountTrusted);

    // A success (the first home's first attempt had the right password) clears both.
    t.record_success(&homes[0], reservations[0], now)
        .await
        .expect("record_success");
    for i in 0..PER_ACCOUNT_IP {
        allowed(
            t,
            &homes[0],
            now,
            &format!("trusted attempt {} after a success", i + 1),
        )
        .await;
    }
    allowed(
        t,
        &ThrottleKey::new(&account, Some(ipv4())),
        now,
        "an outsider after a success: the untrusted counter was cleared too",
    )
    .await;
}

/// A full window refuses until it ends, then counts from zero.
///
/// # Panics
/// When the throttle breaks the contract or fails.
pub async fn windows_end(t: &dyn Throttle) {
    let now = base_time();
    let key = ThrottleKey::new(&account("window"), Some(ipv4()));
    for _ in 0..PER_ACCOUNT_IP {
        allowed(t, &key, now, "filling the window").await;
    }
    let almost = now + WINDOW - Duration::from_millis(1);
    let (_, retry_after) = refused(t, &key, almost, "1 ms before the window ends").await;
    assert_eq!(retry_after, Duration::from_millis(1));
    let next = now + WINDOW;
    for i in 0..PER_ACCOUNT_IP {
        allowed(
            t,
            &key,
            next,
            &format!("attempt {} of the next window", i + 1),
        )
        .await;
    }
    refused(t, &key, next, "the next window is full too").await;
}

/// A success forgets the (account, IP) failures; a release takes its attempt back.
///
/// # Panics
/// When the throttle breaks the contract or fails.
pub async fn success_resets_and_release_gives_back(t: &dyn Throttle) {
    let now = base_time();
    let key = ThrottleKey::new(&account("settle"), Some(ipv4()));
    for _ in 0..PER_ACCOUNT_IP - 1 {
        allowed(t, &key, now, "failures before a success").await;
    }
    let r = allowed(t, &key, now, "the successful attempt").await;
    t.record_success(&key, r, now)
        .await
        .expect("record_success");
    let mut last = None;
    for i in 0..PER_ACCOUNT_IP {
        last = Some(allowed(t, &key, now, &format!("attempt {} after a success", i + 1)).await);
    }
    refused(t, &key, now, "the limit holds again after a success").await;
    let last = last.expect("at least one attempt");
    t.release(&key, last, now).await.expect("release");
    allowed(t, &key, now, "the attempt given back by release").await;
    refused(t, &key, now, "release gives back one attempt only").await;
}

/// A refused attempt counts under no key: hammering a locked (account, IP) pair neither fills
/// the account nor the address.
///
/// # Panics
/// When the throttle breaks the contract or fails.
pub async fn refused_attempts_count_nowhere(t: &dyn Throttle) {
    let now = base_time();
    let account = account("refused");
    let ip = ipv4();
    let key = ThrottleKey::new(&account, Some(ip));
    for _ in 0..PER_ACCOUNT_IP {
        allowed(t, &key, now, "filling the pair").await;
    }
    for _ in 0..3 * PER_IP {
        refused(t, &key, now, "hammering a locked pair").await;
    }
    for i in PER_ACCOUNT_IP..PER_ACCOUNT {
        let other = ThrottleKey::new(&account, Some(ipv4()));
        allowed(
            t,
            &other,
            now,
            &format!("account attempt {} after the hammering", i + 1),
        )
        .await;
    }
    for i in PER_ACCOUNT_IP..PER_IP {
        let other = ThrottleKey::new(&self::account("refused-other"), Some(ip));
        allowed(
            t,
            &other,
            now,
            &format!("address attempt {} after the hammering", i + 1),
        )
        .await;
    }
}

/// Without a client address the (account, "no address") key is counted and no IP key.
///
/// # Panics
/// When the throttle breaks the contract or fails.
pub async fn without_an_address(t: &dyn Throttle) {
    let now = base_time();
    let key = ThrottleKey::new(&account("no-ip"), None);
    for _ in 0..PER_ACCOUNT_IP {
        allowed(t, &key, now, "attempts without an address").await;
    }
    let (limit, _) = refused(t, &key, now, "over the limit without an address").await;
    assert_eq!(limit, LimitKind::AccountIp);
    allowed(
        t,
        &ThrottleKey::new(&account("no-ip"), None),
        now,
        "another account without an address",
    )
    .await;
}

/// Pruning at the current time drops windows that ended and keeps live ones.
///
/// # Panics
/// When the throttle breaks the contract or fails.
pub async fn prune_keeps_live_windows(t: &dyn Throttle) {
    let now = base_time();
    let live = ThrottleKey::new(&account("prune-live"), Some(ipv4()));
    for _ in 0..PER_ACCOUNT_IP {
        allowed(t, &live, now, "filling a live window").await;
    }
    let ended = ThrottleKey::new(&account("prune-ended"), Some(ipv4()));
    let past = now - 2 * WINDOW;
    for _ in 0..PER_ACCOUNT_IP {
        allowed(t, &ended, past, "filling a window that has ended").await;
    }
    t.prune(now).await.expect("prune");
    refused(t, &live, now, "a live window survives prune").await;
    allowed(t, &ended, now, "an ended window does not refuse").await;
}

/// 200 concurrent reservations of one key: exactly [`PER_ACCOUNT_IP`] are allowed.
///
/// # Panics
/// When the throttle breaks the contract or fails.
pub async fn concurrent_reservations(t: &dyn Throttle) {
    let now = base_time();
    let key = ThrottleKey::new(&account("race"), Some(ipv4()));
    let outcomes = join_all((0..200).map(|_| t.reserve(&key, now))).await;
    let allowed = count_allowed(outcomes.into_iter());
    assert_eq!(
        allowed, PER_ACCOUNT_IP,
        "200 racing reservations of one key: exactly the limit may pass"
    );
}

/// [`Throttle::hit`]: 50 concurrent hits on one key allow exactly the limit (10), refusals
/// are [`LimitKind::Rate`] with the time left; the window ends and counts from zero; keys of
/// other subjects or other buckets are independent; the addresses of one IPv6 `/64` are one
/// key.
///
/// # Panics
/// When the throttle breaks the contract or fails.
pub async fn rate_hits(t: &dyn Throttle) {
    const MAX: u32 = 10;
    let limit = Limit::new(MAX, WINDOW);
    let now = base_time();
    let subject = account("rate");
    let key = RateKey::new("conformance", &subject);
    let outcomes = join_all((0..50).map(|_| t.hit(&key, limit, now))).await;
    let mut allowed = 0;
    for outcome in outcomes {
        match outcome {
            Ok(Admission::Allowed(r)) => {
                assert_eq!(r.account_counter(), AccountCounter::NotCounted);
                allowed += 1;
            }
            Ok(Admission::Refused { limit, retry_after }) => {
                assert_eq!(limit, LimitKind::Rate, "a full rate key refuses as Rate");
                assert_eq!(retry_after, WINDOW, "the time left in the window");
            }
            Err(e) => panic!("a racing hit failed: {e:?}"),
        }
    }
    assert_eq!(
        allowed, MAX,
        "50 racing hits on one key: exactly the limit may pass"
    );

    let later = now + Duration::from_secs(20);
    let retry_after = hit_refused(t, &key, limit, later, "a hit on the full key").await;
    assert_eq!(retry_after, WINDOW - Duration::from_secs(20));
    hit_allowed(
        t,
        &RateKey::new("conformance", &account("rate-other")),
        limit,
        later,
        "another subject",
    )
    .await;
    hit_allowed(
        t,
        &RateKey::new("conformance-other", &subject),
        limit,
        later,
        "another bucket",
    )
    .await;

    let next = now + WINDOW;
    for i in 0..MAX {
        hit_allowed(
            t,
            &key,
            limit,
            next,
            &format!("hit {} of the next window", i + 1),
        )
        .await;
    }
    hit_refused(t, &key, limit, next, "the next window is full too").await;

    let net = u128::from(ipv6_net());
    let host = |h: u128| IpAddr::V6(Ipv6Addr::from(net | h));
    let one = Limit::new(1, WINDOW);
    hit_allowed(
        t,
        &RateKey::ip("conformance", host(1)),
        one,
        now,
        "an address's first hit",
    )
    .await;
    hit_refused(
        t,
        &RateKey::ip("conformance", host(2)),
        one,
        now,
        "another host of the /64",
    )
    .await;
}

/// The rate limit of the [`Throttle::give_back`] checks: 10 hits per [`WINDOW`].
const GIVE_BACK_MAX: u32 = 10;

/// [`Throttle::give_back`] on a full key: one more hit is allowed, then the key refuses
/// again, with the time left in the same window (give_back never extends it).
///
/// # Panics
/// When the throttle breaks the contract or fails.
pub async fn give_back_takes_one_hit_back(t: &dyn Throttle) {
    let limit = Limit::new(GIVE_BACK_MAX, WINDOW);
    let now = base_time();
    let key = RateKey::new("conformance-give-back", &account("give-back"));
    for i in 0..GIVE_BACK_MAX {
        hit_allowed(
            t,
            &key,
            limit,
            now,
            &format!("hit {} of {GIVE_BACK_MAX}", i + 1),
        )
        .await;
    }
    hit_refused(t, &key, limit, now, "a hit over the limit").await;
    let later = now + Duration::from_secs(20);
    give_back(t, &key, later).await;
    hit_allowed(t, &key, limit, later, "the hit given back").await;
    let retry_after = hit_refused(t, &key, limit, later, "give_back takes back one hit only").await;
    assert_eq!(
        retry_after,
        WINDOW - Duration::from_secs(20),
        "give_back keeps the window's end"
    );
    // Given back twice, two more.
    give_back(t, &key, later).await;
    give_back(t, &key, later).await;
    hit_allowed(t, &key, limit, later, "the first of two hits given back").await;
    hit_allowed(t, &key, limit, later, "the second of two hits given back").await;
    hit_refused(t, &key, limit, later, "two given back, two more hits").await;
}

/// [`Throttle::give_back`] changes nothing on a key with no count, nor on a window that has
/// ended (at its end or later): the next hit opens a fresh window (the time left is the
/// whole window from that hit), allowed exactly up to the limit.
///
/// # Panics
/// When the throttle breaks the contract or fails.
pub async fn give_back_opens_no_window(t: &dyn Throttle) {
    let limit = Limit::new(GIVE_BACK_MAX, WINDOW);
    let now = base_time();

    let unknown = RateKey::new("conformance-give-back", &account("give-back-unknown"));
    for _ in 0..3 {
        give_back(t, &unknown, now).await;
    }
    let later = now + Duration::from_secs(20);
    fill_fresh_window(t, &unknown, limit, later, "a key given back before any hit").await;

    let ended = RateKey::new("conformance-give-back", &account("give-back-ended"));
    for i in 0..GIVE_BACK_MAX {
        hit_allowed(
            t,
            &ended,
            limit,
            now,
            &format!("hit {} of the window", i + 1),
        )
        .await;
    }
    let end = now + WINDOW;
    give_back(t, &ended, end).await;
    give_back(t, &ended, end + Duration::from_secs(5)).await;
    fill_fresh_window(
        t,
        &ended,
        limit,
        end + Duration::from_secs(10),
        "a key given back after its window ended",
    )
    .await;
    // Given back at the very instant its window ends: nothing to take back either.
    let at_end = RateKey::new("conformance-give-back", &account("give-back-at-end"));
    for i in 0..GIVE_BACK_MAX {
        hit_allowed(
            t,
            &at_end,
            limit,
            now,
            &format!("hit {} of the window", i + 1),
        )
        .await;
    }
    give_back(t, &at_end, end).await;
    fill_fresh_window(
        t,
        &at_end,
        limit,
        end,
        "a key given back as its window ended",
    )
    .await;
}

/// [`Throttle::give_back`] never takes a count below zero: three give-backs on one hit, then
/// exactly the limit's worth of hits.
///
/// # Panics
/// When the throttle breaks the contract or fails.
pub async fn give_back_stops_at_zero(t: &dyn Throttle) {
    let limit = Limit::new(GIVE_BACK_MAX, WINDOW);
    let now = base_time();
    let key = RateKey::new("conformance-give-back", &account("give-back-zero"));
    hit_allowed(t, &key, limit, now, "the first hit").await;
    for _ in 0..3 {
        give_back(t, &key, now).await;
    }
    let mut allowed = 0;
    for _ in 0..2 * GIVE_BACK_MAX {
        match t.hit(&key, limit, now).await {
            Ok(Admission::Allowed(_)) => allowed += 1,
            Ok(Admission::Refused { limit, .. }) => assert_eq!(limit, LimitKind::Rate),
            Err(e) => panic!("a hit after the give-backs failed: {e:?}"),
        }
    }
    assert_eq!(
        allowed, GIVE_BACK_MAX,
        "three give-backs on a count of 1: exactly the limit's worth of hits, no more"
    );
}

/// 40 concurrent [`Throttle::hit`]s on one key (limit 10), alternating between `a` and `b`
/// (two instances over one backend, or the same one twice), each followed by a
/// [`Throttle::give_back`] when it was allowed: every allowed hit is given back, so
/// afterwards exactly 10 of 20 concurrent hits are allowed again.
///
/// # Panics
/// When the throttle breaks the contract or fails.
pub async fn concurrent_give_backs(a: &dyn Throttle, b: &dyn Throttle) {
    let limit = Limit::new(GIVE_BACK_MAX, WINDOW);
    let now = base_time();
    let key = RateKey::new("conformance-give-back", &account("give-back-race"));
    let instance = |i: u32| if i.is_multiple_of(2) { a } else { b };
    let rounds = join_all((0..4 * GIVE_BACK_MAX).map(|i| {
        let (t, key) = (instance(i), &key);
        async move {
            match t.hit(key, limit, now).await {
                Ok(Admission::Allowed(_)) => {
                    t.give_back(key, now)
                        .await
                        .unwrap_or_else(|e| panic!("a racing give_back failed: {e:?}"));
                    true
                }
                Ok(Admission::Refused { limit, .. }) => {
                    assert_eq!(limit, LimitKind::Rate, "a full rate key refuses as Rate");
                    false
                }
                Err(e) => panic!("a racing hit failed: {e:?}"),
            }
        }
    }))
    .await;
    assert!(
        rounds.into_iter().filter(|&given| given).count() >= GIVE_BACK_MAX as usize,
        "at least the limit's worth of racing hits pass"
    );
    let outcomes =
        join_all((0..2 * GIVE_BACK_MAX).map(|i| instance(i).hit(&key, limit, now))).await;
    assert_eq!(
        count_allowed(outcomes.into_iter()),
        GIVE_BACK_MAX,
        "every racing hit given back: exactly the limit's worth of hits again"
    );
}

/// [`concurrent_reservations`] over 200 Tokio tasks (threads, on a multi-thread runtime),
/// plus 200 racing reservations over 100 accounts from one address: exactly [`PER_IP`] pass;
/// plus [`concurrent_give_backs`] over 40 tasks.
///
/// # Panics
/// When the throttle breaks the contract or fails, or outside a Tokio runtime.
pub async fn concurrent_tasks(t: Arc<dyn Throttle>) {
    let now = base_time();
    let key = ThrottleKey::new(&account("race-tasks"), Some(ipv4()));
    let tasks: Vec<_> = (0..200)
        .map(|_| {
            let (t, key) = (Arc::clone(&t), key.clone());
            tokio::spawn(async move { t.reserve(&key, now).await })
        })
        .collect();
    let mut outcomes = Vec::new();
    for task in tasks {
        outcomes.push(task.await.expect("a reservation task panicked"));
    }
    assert_eq!(
        count_allowed(outcomes.into_iter()),
        PER_ACCOUNT_IP,
        "200 racing tasks on one key: exactly the limit may pass"
    );

    let ip = ipv4();
    let accounts: Vec<String> = (0..100).map(|_| account("race-spray")).collect();
    let tasks: Vec<_> = (0..200)
        .map(|i| {
            let t = Arc::clone(&t);
            let key = ThrottleKey::new(&accounts[i % 100], Some(ip));
            tokio::spawn(async move { t.reserve(&key, now).await })
        })
        .collect();
    let mut outcomes = Vec::new();
    for task in tasks {
        outcomes.push(task.await.expect("a reservation task panicked"));
    }
    assert_eq!(
        count_allowed(outcomes.into_iter()),
        PER_IP,
        "200 racing tasks from one address: exactly the per-IP limit may pass"
    );

    let limit = Limit::new(GIVE_BACK_MAX, WINDOW);
    let key = RateKey::new("conformance-give-back", &account("give-back-tasks"));
    let tasks: Vec<_> = (0..4 * GIVE_BACK_MAX)
        .map(|_| {
            let (t, key) = (Arc::clone(&t), key.clone());
            tokio::spawn(async move {
                let admission = t.hit(&key, limit, now).await?;
                if let Admission::Allowed(_) = admission {
                    t.give_back(&key, now).await?;
                }
                Ok::<_, crate::throttle::ThrottleError>(admission)
            })
        })
        .collect();
    for task in tasks {
        if let Err(e) = task.await.expect("a give-back task panicked") {
            panic!("a racing hit or give_back failed: {e:?}");
        }
    }
    let outcomes = join_all((0..2 * GIVE_BACK_MAX).map(|_| t.hit(&key, limit, now))).await;
    assert_eq!(
        count_allowed(outcomes.into_iter()),
        GIVE_BACK_MAX,
        "40 racing tasks each giving back its hit: exactly the limit's worth of hits again"
    );
}

// ---------------------------------------------------------------------------------------------
// Helpers

fn account(check: &str) -> String {
    format!(
        "conformance-{check}-{:016x}@example.test",
        rand::random::<u64>()
    )
}

/// A random address in 198.18.0.0/15 (benchmarking range, never a real client).
fn ipv4() -> IpAddr {
    let low = rand::random::<u32>() & 0x0001_ffff;
    IpAddr::V4(Ipv4Addr::from(0xc612_0000 | low))
}

/// A random /64 in 2001:db8::/32 (documentation range).
fn ipv6_net() -> Ipv6Addr {
    let middle = u128::from(rand::random::<u32>()) << 64;
    Ipv6Addr::from((0x2001_0db8_u128 << 96) | middle)
}

async fn allowed(
    t: &dyn Throttle,
    key: &ThrottleKey,
    now: OffsetDateTime,
    what: &str,
) -> Reservation {
    match t.reserve(key, now).await {
        Ok(Admission::Allowed(r)) => r,
        Ok(refusal) => panic!("{what}: must be allowed, was {refusal:?}"),
        Err(e) => panic!("{what}: the throttle failed: {e:?}"),
    }
}

async fn refused(
    t: &dyn Throttle,
    key: &ThrottleKey,
    now: OffsetDateTime,
    what: &str,
) -> (LimitKind, Duration) {
    match t.reserve(key, now).await {
        Ok(Admission::Refused { limit, retry_after }) => {
            assert!(
                retry_after > Duration::ZERO,
                "{what}: a refusal needs a positive retry_after"
            );
            (limit, retry_after)
        }
        Ok(allowed) => panic!("{what}: must be refused, was {allowed:?}"),
        Err(e) => panic!("{what}: the throttle failed: {e:?}"),
    }
}

async fn hit_allowed(
    t: &dyn Throttle,
    key: &RateKey,
    limit: Limit,
    now: OffsetDateTime,
    what: &str,
) {
    match t.hit(key, limit, now).await {
        Ok(Admission::Allowed(_)) => {}
        Ok(refusal) => panic!("{what}: must be allowed, was {refusal:?}"),
        Err(e) => panic!("{what}: the throttle failed: {e:?}"),
    }
}

async fn hit_refused(
    t: &dyn Throttle,
    key: &RateKey,
    limit: Limit,
    now: OffsetDateTime,
    what: &str,
) -> Duration {
    match t.hit(key, limit, now).await {
        Ok(Admission::Refused { limit, retry_after }) => {
            assert_eq!(limit, LimitKind::Rate, "{what}");
            assert!(
                retry_after > Duration::ZERO,
                "{what}: a refusal needs a positive retry_after"
            );
            retry_after
        }
        Ok(allowed) => panic!("{what}: must be refused, was {allowed:?}"),
        Err(e) => panic!("{what}: the throttle failed: {e:?}"),
    }
}

async fn give_back(t: &dyn Throttle, key: &RateKey, now: OffsetDateTime) {
    if let Err(e) = t.give_back(key, now).await {
        panic!("give_back: the throttle failed: {e:?}");
    }
}

/// Hits `key` at `now` until it refuses: exactly `limit`'s worth must pass, and the refusal's
/// time left must be the whole window (the first hit opened it at `now`).
async fn fill_fresh_window(
    t: &dyn Throttle,
    key: &RateKey,
    limit: Limit,
    now: OffsetDateTime,
    what: &str,
) {
    for i in 0..limit.max_failures() {
        hit_allowed(
            t,
            key,
            limit,
            now,
            &format!("{what}: hit {} of a fresh window", i + 1),
        )
        .await;
    }
    let retry_after = hit_refused(t, key, limit, now, &format!("{what}: over the limit")).await;
    assert_eq!(
        retry_after,
        limit.window(),
        "{what}: the first hit opens a fresh window"
    );
}

fn count_allowed(
    outcomes: impl Iterator<Item = Result<Admission, crate::throttle::ThrottleError>>,
) -> u32 {
    let mut allowed = 0;
    for outcome in outcomes {
        match outcome {
            Ok(Admission::Allowed(_)) => allowed += 1,
            Ok(Admission::Refused { limit, .. }) => {
                assert_ne!(
                    limit,
                    LimitKind::Capacity,
                    "a racing reservation was refused for capacity, not by a limit"
                )
            }
            Err(e) => panic!("a racing reservation failed: {e:?}"),
        }
    }
    allowed
}
