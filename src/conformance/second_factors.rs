//! The [`SecondFactorStore`] contract as a reusable test suite.
//!
//! Each check is a public `async fn` that panics with a message naming the broken promise.
//! [`run_all`] runs them all over one store; [`two_instances`] races time steps, recovery
//! codes, enrolments and replacements through two store instances over one backend (two
//! pools, two connections). Racing calls run at once on one task (`join_all`), so the checks
//! need no particular runtime.
//!
//! ```
//! use keycard::mfa::MemorySecondFactorStore;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let store = MemorySecondFactorStore::new();
//! keycard::conformance::second_factors::run_all(&store).await;
//! # }
//! ```
//!
//! Like the other suites, these create their own data only (fresh user ids
//! `conformance-2fa-<check>-<random>`), so runs may share a database, and every check that
//! passes deletes what it created. Times are the current time plus whole microseconds, and
//! one check gives nanoseconds to see that they are cut to the microsecond.
//!
//! What the checks cannot see from outside, that a store only ever receives sealed secrets
//! and digests, holds by construction: no method of [`SecondFactorStore`] takes a plain
//! secret or a recovery code.
//!
//! # Panics
//! Every check panics when the store breaks the contract or returns an error.

use std::time::Duration;

use futures_util::future::join_all;
use time::OffsetDateTime;

use super::base_time;
use crate::mfa::{RecoveryCodeDigest, SecondFactorStore, TotpRecord};
use crate::UserId;

/// How many calls race in [`two_instances`].
pub const RACERS: usize = 16;

/// Runs every check on one store: [`enrolment_is_pending_until_confirmed`],
/// [`time_steps_are_compare_and_set`], [`reseal_replaces_the_expected_secret_only`],
/// [`remove_totp_deletes_the_factor_only`], [`recovery_codes_work_once`],
/// [`users_are_isolated`], [`times_round_trip_to_the_microsecond`],
/// [`debug_never_shows_sealed_bytes`], [`hostile_user_ids_round_trip`] and
/// [`two_instances`] with the store as both instances.
///
/// # Panics
/// When the store breaks the contract or fails.
pub async fn run_all(store: &dyn SecondFactorStore) {
    enrolment_is_pending_until_confirmed(store).await;
    time_steps_are_compare_and_set(store).await;
    reseal_replaces_the_expected_secret_only(store).await;
    remove_totp_deletes_the_factor_only(store).await;
    recovery_codes_work_once(store).await;
    users_are_isolated(store).await;
    times_round_trip_to_the_microsecond(store).await;
    debug_never_shows_sealed_bytes(store).await;
    hostile_user_ids_round_trip(store).await;
    two_instances(store, store).await;
}

/// A begun factor is pending and read back exactly; a second `begin_totp` replaces a pending
/// one; `confirm_totp` activates it only with its current sealed secret (not a replaced one,
/// nor one a byte shorter or longer), once, recording `now` and the step; then `begin_totp`
/// is refused and changes nothing, and `use_totp_step` works only once confirmed.
///
/// # Panics
/// When the store breaks the contract or fails.
pub async fn enrolment_is_pending_until_confirmed(store: &dyn SecondFactorStore) {
    let now = base_time();
    let who = user("enrol");
    assert_eq!(store.totp(&who).await.expect("totp"), None, "no factor yet");
    let first = TotpRecord::pending(who.clone(), sealed(1), now);
    assert!(
        store.begin_totp(&first).await.expect("begin"),
        "begin_totp without a factor must store it"
    );
    assert_eq!(
        store.totp(&who).await.expect("totp"),
        Some(first.clone()),
        "a begun factor must read back exactly, pending"
    );
    assert!(
        !store.use_totp_step(&who, 10).await.expect("use"),
        "a pending factor must not accept a time step"
    );
    let second = TotpRecord::pending(who.clone(), sealed(2), now + MICRO * 3);
    assert!(
        store.begin_totp(&second).await.expect("begin again"),
        "begin_totp must replace a pending factor"
    );
    assert_eq!(store.totp(&who).await.expect("totp"), Some(second.clone()));
    let later = now + Duration::from_secs(30);
    let current = &second.sealed_secret;
    let shorter = &current[..current.len() - 1];
    let longer = [current.as_slice(), &[0]].concat();
    for (secret, what) in [
        (first.sealed_secret.as_slice(), "a replaced secret"),
        (shorter, "the secret without its last byte"),
        (longer.as_slice(), "the secret with one more byte"),
        (&[][..], "an empty secret"),
    ] {
        assert!(
            !store
                .confirm_totp(&who, secret, 100, later)
                .await
                .expect("confirm"),
            "confirm_totp with {what} must be refused"
        );
    }
    assert_eq!(
        store.totp(&who).await.expect("totp"),
        Some(second.clone()),
        "refused confirmations must change nothing"
    );
    assert!(
        store
            .confirm_totp(&who, current, 100, later)
            .await
            .expect("confirm"),
        "confirm_totp with the pending factor's secret must activate it"
    );
    let confirmed = TotpRecord {
        confirmed_at: Some(later),
        last_step: Some(100),
        ..second.clone()
    };
    assert_eq!(
        store.totp(&who).await.expect("totp"),
        Some(confirmed.clone()),
        "a confirmed factor must record confirmed_at and the step"
    );
    assert!(
        !store
            .confirm_totp(&who, current, 200, later + MICRO)
            .await
            .expect("confirm again"),
        "a confirmed factor must not be confirmed again"
    );
    let intruder = TotpRecord::pending(who.clone(), sealed(3), later);
    assert!(
        !store.begin_totp(&intruder).await.expect("begin"),
        "begin_totp must be refused while the user has a confirmed factor"
    );
    assert_eq!(
        store.totp(&who).await.expect("totp"),
        Some(confirmed),
        "a refused begin_totp must change nothing"
    );
    assert!(
        !store
            .confirm_totp(&user("enrol-nobody"), current, 1, later)
            .await
            .expect("confirm unknown"),
        "confirm_totp of a user without a factor must be refused"
    );
    clean(store, &who).await;
}

/// `use_totp_step` records a step only if it is later than the last one: an equal or lower
/// step is refused (a replayed code) and leaves the last step as it was; a user without a
/// factor gets `false`.
///
/// # Panics
/// When the store breaks the contract or fails.
pub async fn time_steps_are_compare_and_set(store: &dyn SecondFactorStore) {
    let now = base_time();
    let who = confirmed(store, "steps", 100, now).await;
    for (step, expected, what) in [
        (100, false, "the confirming step again"),
        (99, false, "a lower step"),
        (101, true, "the next step"),
        (101, false, "the same step twice"),
        (150, true, "a much later step"),
        (120, false, "a step between"),
        (0, false, "step 0"),
        (150, false, "the last step again"),
    ] {
        assert_eq!(
            store.use_totp_step(&who, step).await.expect("use"),
            expected,
            "use_totp_step with {what} ({step}) must return {expected}"
        );
    }
    let last = store.totp(&who).await.expect("totp").expect("factor");
    assert_eq!(
        last.last_step,
        Some(150),
        "refused steps must not move last_step"
    );
    let big = i64::MAX.unsigned_abs();
    assert!(
        store.use_totp_step(&who, big).await.expect("use"),
        "the largest step a BIGINT holds must be accepted"
    );
    assert!(!store.use_totp_step(&who, big).await.expect("use"));
    assert!(
        !store
            .use_totp_step(&user("steps-nobody"), 1000)
            .await
            .expect("use unknown"),
        "a user without a factor must get false"
    );
    clean(store, &who).await;
}

/// `reseal_totp` replaces the sealed secret only if it is still `old` (pending or
/// confirmed), and changes nothing else.
///
/// # Panics
/// When the store breaks the contract or fails.
pub async fn reseal_replaces_the_expected_secret_only(store: &dyn SecondFactorStore) {
    let now = base_time();
    let who = confirmed(store, "reseal", 7, now).await;
    let before = store.totp(&who).await.expect("totp").expect("factor");
    let new = sealed(9);
    assert!(
        !store
            .reseal_totp(&who, &sealed(8), &new)
            .await
            .expect("reseal"),
        "reseal_totp with a stale `old` must be refused"
    );
    assert_eq!(store.totp(&who).await.expect("totp"), Some(before.clone()));
    assert!(
        store
            .reseal_totp(&who, &before.sealed_secret, &new)
            .await
            .expect("reseal"),
        "reseal_totp with the current secret must replace it"
    );
    assert_eq!(
        store.totp(&who).await.expect("totp"),
        Some(TotpRecord {
            sealed_secret: new.clone(),
            ..before.clone()
        }),
        "reseal_totp must change the sealed secret only"
    );
    assert!(
        store.use_totp_step(&who, 8).await.expect("use"),
        "a resealed factor stays confirmed"
    );
    assert!(
        !store
            .reseal_totp(&user("reseal-nobody"), &new, &sealed(10))
            .await
            .expect("reseal unknown"),
        "reseal_totp of a user without a factor must be refused"
    );
    let pending = user("reseal-pending");
    let record = TotpRecord::pending(pending.clone(), sealed(11), now);
    assert!(store.begin_totp(&record).await.expect("begin"));
    let resealed = sealed(12);
    assert!(
        store
            .reseal_totp(&pending, &record.sealed_secret, &resealed)
            .await
            .expect("reseal"),
        "a pending factor can be resealed"
    );
    assert!(
        store
            .confirm_totp(&pending, &resealed, 1, now)
            .await
            .expect("confirm"),
        "a resealed pending factor is confirmed with its new sealed secret"
    );
    clean(store, &who).await;
    clean(store, &pending).await;
}

/// `remove_totp` deletes a pending or confirmed factor and says whether there was one; it
/// leaves the user's recovery codes, and a new enrolment can begin afterwards.
///
/// # Panics
/// When the store breaks the contract or fails.
pub async fn remove_totp_deletes_the_factor_only(store: &dyn SecondFactorStore) {
    let now = base_time();
    let who = user("remove");
    let pending = TotpRecord::pending(who.clone(), sealed(1), now);
    assert!(store.begin_totp(&pending).await.expect("begin"));
    assert!(
        store.remove_totp(&who).await.expect("remove"),
        "remove_totp of a pending factor must report true"
    );
    assert_eq!(store.totp(&who).await.expect("totp"), None);
    assert!(
        !store.remove_totp(&who).await.expect("remove again"),
        "remove_totp without a factor must report false"
    );
    let who = confirmed(store, "remove-confirmed", 5, now).await;
    let codes = digests(3);
    store
        .replace_recovery_codes(&who, &codes, now)
        .await
        .expect("replace");
    assert!(
        store.remove_totp(&who).await.expect("remove"),
        "remove_totp of a confirmed factor must report true"
    );
    assert_eq!(store.totp(&who).await.expect("totp"), None);
    assert!(
        !store.use_totp_step(&who, 6).await.expect("use"),
        "a removed factor must not accept a step"
    );
    assert_eq!(
        store.recovery_codes_left(&who).await.expect("left"),
        3,
        "remove_totp must leave the recovery codes"
    );
    let again = TotpRecord::pending(who.clone(), sealed(2), now);
    assert!(
        store.begin_totp(&again).await.expect("begin"),
        "after remove_totp a new enrolment must begin"
    );
    clean(store, &who).await;
}

/// Recovery codes: `replace_recovery_codes` stores a set and retires the previous one; each
/// code works once; an unknown code never works; `recovery_codes_left` counts what is left;
/// an empty set deletes them all.
///
/// # Panics
/// When the store breaks the contract or fails.
pub async fn recovery_codes_work_once(store: &dyn SecondFactorStore) {
    let now = base_time();
    let who = user("codes");
    assert_eq!(store.recovery_codes_left(&who).await.expect("left"), 0);
    let old = digests(5);
    store
        .replace_recovery_codes(&who, &old, now)
        .await
        .expect("replace");
    assert_eq!(store.recovery_codes_left(&who).await.expect("left"), 5);
    assert!(store.use_recovery_code(&who, &old[0]).await.expect("use"));
    let new = digests(10);
    store
        .replace_recovery_codes(&who, &new, now + MICRO)
        .await
        .expect("replace again");
    assert_eq!(
        store.recovery_codes_left(&who).await.expect("left"),
        10,
        "replace_recovery_codes must replace the whole set"
    );
    for code in &old {
        assert!(
            !store.use_recovery_code(&who, code).await.expect("use old"),
            "a code of a replaced set must not work"
        );
    }
    assert!(
        !store
            .use_recovery_code(&who, &digests(1)[0])
            .await
            .expect("use unknown"),
        "an unknown code must not work"
    );
    for (i, code) in new.iter().enumerate() {
        assert!(
            store.use_recovery_code(&who, code).await.expect("use"),
            "each code must work once"
        );
        assert!(
            !store
                .use_recovery_code(&who, code)
                .await
                .expect("use again"),
            "a used code must not work again"
        );
        assert_eq!(
            store.recovery_codes_left(&who).await.expect("left"),
            u32::try_from(new.len() - i - 1).expect("small"),
            "recovery_codes_left must count the unused codes"
        );
    }
    store
        .replace_recovery_codes(&who, &digests(4), now)
        .await
        .expect("replace");
    store
        .replace_recovery_codes(&who, &[], now)
        .await
        .expect("replace with none");
    assert_eq!(
        store.recovery_codes_left(&who).await.expect("left"),
        0,
        "an empty set must delete every code"
    );
}

/// One user's factor and codes are invisible to, unusable by and untouched by another's
/// operations.
///
/// # Panics
/// When the store breaks the contract or fails.
pub async fn users_are_isolated(store: &dyn SecondFactorStore) {
    let now = base_time();
    let ann = confirmed(store, "isolated-ann", 10, now).await;
    let bob = user("isolated-bob");
    let ann_factor = store.totp(&ann).await.expect("totp").expect("factor");
    let ann_codes = digests(3);
    store
        .replace_recovery_codes(&ann, &ann_codes, now)
        .await
        .expect("replace");
    assert_eq!(store.totp(&bob).await.expect("totp"), None);
    assert!(!store.use_totp_step(&bob, 11).await.expect("use"));
    assert!(
        !store
            .confirm_totp(&bob, &ann_factor.sealed_secret, 11, now)
            .await
            .expect("confirm"),
        "another user's sealed secret must not confirm anything"
    );
    assert!(!store
        .reseal_totp(&bob, &ann_factor.sealed_secret, &sealed(5))
        .await
        .expect("reseal"));
    assert!(!store.remove_totp(&bob).await.expect("remove"));
    for code in &ann_codes {
        assert!(
            !store.use_recovery_code(&bob, code).await.expect("use"),
            "one user's code must not work for another"
        );
    }
    assert_eq!(store.recovery_codes_left(&bob).await.expect("left"), 0);
    // Bob's own enrolment and codes leave Ann's alone.
    let bob_factor = TotpRecord::pending(bob.clone(), ann_factor.sealed_secret.clone(), now);
    assert!(store.begin_totp(&bob_factor).await.expect("begin"));
    store
        .replace_recovery_codes(&bob, &ann_codes[..1], now)
        .await
        .expect("replace");
    store
        .replace_recovery_codes(&bob, &[], now)
        .await
        .expect("replace");
    assert!(store.remove_totp(&bob).await.expect("remove"));
    assert_eq!(
        store.totp(&ann).await.expect("totp"),
        Some(ann_factor),
        "another user's operations must not touch a factor"
    );
    assert_eq!(
        store.recovery_codes_left(&ann).await.expect("left"),
        3,
        "another user's operations must not touch codes"
    );
    assert!(
        store.use_totp_step(&ann, 11).await.expect("use"),
        "a user's factor keeps working beside another's"
    );
    clean(store, &ann).await;
}

/// `created_at` and `confirmed_at` read back to the microsecond: a record's times as given
/// (whole microseconds), and a confirmation's `now` cut to the microsecond.
///
/// # Panics
/// When the store breaks the contract or fails.
pub async fn times_round_trip_to_the_microsecond(store: &dyn SecondFactorStore) {
    let now = base_time();
    let who = user("times");
    let odd = now + Duration::from_nanos(123_456_789);
    let record = TotpRecord::pending(who.clone(), sealed(1), odd);
    assert_eq!(
        record.created_at.nanosecond() % 1000,
        0,
        "TotpRecord::pending keeps whole microseconds"
    );
    assert!(store.begin_totp(&record).await.expect("begin"));
    let read = store.totp(&who).await.expect("totp").expect("factor");
    assert_eq!(
        read.created_at, record.created_at,
        "created_at must round-trip to the microsecond"
    );
    let confirm_at = now + Duration::from_nanos(987_654_321);
    assert!(store
        .confirm_totp(&who, &record.sealed_secret, 1, confirm_at)
        .await
        .expect("confirm"));
    let read = store.totp(&who).await.expect("totp").expect("factor");
    let expected = now + Duration::from_nanos(987_654_000);
    assert_eq!(
        read.confirmed_at,
        Some(expected),
        "confirmed_at must be `now` cut to the microsecond"
    );
    // Before 1970 and far ahead, too.
    for (i, at) in [
        OffsetDateTime::UNIX_EPOCH - Duration::from_micros(1_234_567),
        OffsetDateTime::UNIX_EPOCH + Duration::from_secs(4_102_444_800) + MICRO * 7,
    ]
    .into_iter()
    .enumerate()
    {
        let other = user(&format!("times-{i}"));
        let record = TotpRecord::pending(other.clone(), sealed(2), at);
        assert!(store.begin_totp(&record).await.expect("begin"));
        assert_eq!(
            store
                .totp(&other)
                .await
                .expect("totp")
                .expect("factor")
                .created_at,
            at,
            "created_at {at} must round-trip"
        );
        clean(store, &other).await;
    }
    clean(store, &who).await;
}

/// The `Debug` of a [`TotpRecord`], as built and as read back, never shows the sealed bytes
/// (as text, as a byte list or as hex), and a [`RecoveryCodeDigest`]'s never shows its bytes.
///
/// # Panics
/// When the store breaks the contract or fails.
pub async fn debug_never_shows_sealed_bytes(store: &dyn SecondFactorStore) {
    let now = base_time();
    let who = user("debug");
    let marker = b"keycard-sealed-marker-0123456789".to_vec();
    let record = TotpRecord::pending(who.clone(), marker.clone(), now);
    assert!(store.begin_totp(&record).await.expect("begin"));
    let read = store.totp(&who).await.expect("totp").expect("factor");
    let hex: String = marker.iter().map(|b| format!("{b:02x}")).collect();
    let list = format!("{marker:?}");
    let list_inner = list.trim_start_matches('[').trim_end_matches(']');
    for (what, record) in [("built", &record), ("read back", &read)] {
        let shown = format!("{record:?} {record:#?}");
        for needle in ["keycard-sealed-marker", hex.as_str(), list_inner] {
            assert!(
                !shown.contains(needle),
                "Debug of a TotpRecord ({what}) shows its sealed bytes: {shown}"
            );
        }
    }
    let digest = RecoveryCodeDigest::from_bytes([0xab; 32]);
    let shown = format!("{digest:?} {digest:#?}");
    assert!(
        !shown.to_ascii_lowercase().contains("abab") && !shown.contains("171"),
        "Debug of a RecoveryCodeDigest shows its bytes: {shown}"
    );
    clean(store, &who).await;
}

/// User ids that look like SQL, `LIKE` or glob syntax, or are not ASCII, are matched as
/// plain data: a factor and codes are found under their exact id only.
///
/// # Panics
/// When the store breaks the contract or fails.
pub async fn hostile_user_ids_round_trip(store: &dyn SecondFactorStore) {
    let now = base_time();
    let tag = user("hostile");
    for name in [
        "'; DROP TABLE keycard_totp; --",
        "%",
        "_",
        "a:b:{c}*?[x]",
        "ユーザー ✓",
        "\\x00\"",
        "trailing ",
    ] {
        let who = UserId::new(format!("{tag}-{name}"));
        let record = TotpRecord::pending(who.clone(), sealed(1), now);
        assert!(store.begin_totp(&record).await.expect("begin"));
        assert_eq!(
            store.totp(&who).await.expect("totp"),
            Some(record),
            "a hostile user id must round-trip: {who:?}"
        );
        let codes = digests(2);
        store
            .replace_recovery_codes(&who, &codes, now)
            .await
            .expect("replace");
        for near in [
            format!("{tag}-"),
            format!("{tag}-{name}x"),
            format!("{tag}-{}", name.trim_end()),
        ] {
            let near = UserId::new(near);
            if near == who {
                continue;
            }
            assert_eq!(
                store.totp(&near).await.expect("totp"),
                None,
                "{near:?} must not match {who:?}"
            );
            assert_eq!(
                store.recovery_codes_left(&near).await.expect("left"),
                0,
                "{near:?} must not match {who:?}"
            );
        }
        assert!(store.use_recovery_code(&who, &codes[0]).await.expect("use"));
        clean(store, &who).await;
    }
}

/// Two store instances over one backend (or one store twice): a factor begun through one is
/// confirmed through the other; [`RACERS`] concurrent uses of one time step, half through
/// each, let exactly one succeed, as do [`RACERS`] concurrent uses of one recovery code;
/// [`RACERS`] concurrent enrolments of a new user all succeed and leave one of them
/// pending; concurrent replacements of a user's codes leave exactly one whole set.
///
/// # Panics
/// When the stores break the contract or fail.
pub async fn two_instances(a: &dyn SecondFactorStore, b: &dyn SecondFactorStore) {
    let now = base_time();
    let pick = |i: usize| if i.is_multiple_of(2) { a } else { b };

    let who = user("instances");
    let record = TotpRecord::pending(who.clone(), sealed(1), now);
    assert!(a.begin_totp(&record).await.expect("begin"));
    assert_eq!(
        b.totp(&who).await.expect("totp"),
        Some(record.clone()),
        "a factor begun through one instance must be seen through the other"
    );
    assert!(b
        .confirm_totp(&who, &record.sealed_secret, 1000, now)
        .await
        .expect("confirm"));
    for step in [1001, 1002] {
        let wins = count_true(
            join_all((0..RACERS).map(|i| pick(i).use_totp_step(&who, step))).await,
            "use_totp_step",
        );
        assert_eq!(
            wins, 1,
            "exactly one of {RACERS} concurrent uses of step {step} must succeed"
        );
    }
    assert_eq!(
        a.totp(&who).await.expect("totp").expect("factor").last_step,
        Some(1002)
    );

    let codes = digests(3);
    a.replace_recovery_codes(&who, &codes, now)
        .await
        .expect("replace");
    let wins = count_true(
        join_all((0..RACERS).map(|i| pick(i).use_recovery_code(&who, &codes[1]))).await,
        "use_recovery_code",
    );
    assert_eq!(
        wins, 1,
        "exactly one of {RACERS} concurrent uses of one recovery code must succeed"
    );
    assert_eq!(b.recovery_codes_left(&who).await.expect("left"), 2);

    // Concurrent replacements: one whole set survives.
    let sets: Vec<Vec<RecoveryCodeDigest>> = (0..RACERS / 2).map(|_| digests(4)).collect();
    let replaced = join_all(
        sets.iter()
            .enumerate()
            .map(|(i, set)| pick(i).replace_recovery_codes(&who, set, now)),
    )
    .await;
    for r in replaced {
        r.expect("a concurrent replace_recovery_codes failed");
    }
    assert_eq!(
        a.recovery_codes_left(&who).await.expect("left"),
        4,
        "concurrent replacements must leave one set, not a mix"
    );
    let mut whole = 0;
    for set in &sets {
        let mut working = 0;
        for code in set {
            working += usize::from(b.use_recovery_code(&who, code).await.expect("use"));
        }
        assert!(
            working == 0 || working == set.len(),
            "concurrent replacements must leave one whole set, found {working} of a set"
        );
        whole += usize::from(working == set.len());
    }
    assert_eq!(whole, 1, "exactly one replaced set must survive");
    clean(a, &who).await;

    // Concurrent enrolments of a new user: all succeed, one stays.
    let fresh = user("instances-enrol");
    let records: Vec<TotpRecord> = (0..RACERS)
        .map(|i| TotpRecord::pending(fresh.clone(), sealed(i), now))
        .collect();
    let begun = join_all(
        records
            .iter()
            .enumerate()
            .map(|(i, r)| pick(i).begin_totp(r)),
    )
    .await;
    assert_eq!(
        count_true(begun, "begin_totp"),
        RACERS,
        "concurrent enrolments of a user without a confirmed factor must all succeed"
    );
    let kept = a.totp(&fresh).await.expect("totp").expect("factor");
    assert!(
        records.contains(&kept),
        "the factor left by concurrent enrolments must be one of them"
    );
    clean(a, &fresh).await;
}

// ---------------------------------------------------------------------------------------------
// Helpers

const MICRO: Duration = Duration::from_micros(1);

fn user(check: &str) -> UserId {
    UserId::new(format!(
        "conformance-2fa-{check}-{:016x}",
        rand::random::<u64>()
    ))
}

/// A sealed secret of the size a real one has (65 bytes), random but for its first byte
/// (`tag`) and its last two (a space and a zero, which a padding column would lose).
fn sealed(tag: usize) -> Vec<u8> {
    let mut bytes: Vec<u8> = (0..65).map(|_| rand::random::<u8>()).collect();
    bytes[0] = u8::try_from(tag % 256).unwrap_or(0);
    bytes[63] = b' ';
    bytes[64] = 0;
    bytes
}

/// `n` random recovery code digests.
fn digests(n: usize) -> Vec<RecoveryCodeDigest> {
    (0..n)
        .map(|_| RecoveryCodeDigest::from_bytes(rand::random()))
        .collect()
}

/// A user with a confirmed factor whose last step is `step`.
async fn confirmed(
    store: &dyn SecondFactorStore,
    check: &str,
    step: u64,
    now: OffsetDateTime,
) -> UserId {
    let who = user(check);
    let record = TotpRecord::pending(who.clone(), sealed(0), now);
    assert!(store.begin_totp(&record).await.expect("begin"));
    assert!(store
        .confirm_totp(&who, &record.sealed_secret, step, now)
        .await
        .expect("confirm"));
    who
}

/// How many of racing calls returned `true`; any error fails the check.
fn count_true(results: Vec<Result<bool, crate::StoreError>>, what: &str) -> usize {
    results
        .into_iter()
        .map(|r| r.unwrap_or_else(|e| panic!("a concurrent {what} failed: {e:?}")))
        .filter(|won| *won)
        .count()
}

/// Deletes the user's factor and codes.
async fn clean(store: &dyn SecondFactorStore, who: &UserId) {
    store.remove_totp(who).await.expect("cleanup");
    store
        .replace_recovery_codes(who, &[], base_time())
        .await
        .expect("cleanup");
}
