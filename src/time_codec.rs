//! The one place where the backends convert [`OffsetDateTime`] to and from what they store.
//!
//! | backend | stored as | here |
//! |---|---|---|
//! | Memory token store | Unix microseconds in its records | [`to_micros`], [`from_micros_saturating`] |
//! | SQLite token store, SQLite throttle, migration records | `INTEGER` Unix microseconds | [`to_micros`], [`from_micros`] |
//! | Redis token store | Unix microseconds as decimal text in the session hash; key expiry in milliseconds, rounded up | [`to_micros`], [`from_micros_text`], [`micros_to_millis_ceil`] |
//! | Redis throttle | Unix milliseconds, rounded down | [`to_millis`] |
//! | PostgreSQL | `TIMESTAMPTZ` (microseconds), bound as `OffsetDateTime` and converted by sqlx; the throttle computes with times cut to what the column keeps | [`truncate_to_micros`] |
//!
//! Sub-microsecond digits are always dropped (rounded towards the past). Every
//! `OffsetDateTime` fits in an `i64` of microseconds (±9999 years is about ±3.2e17 µs), so
//! the conversions to integers saturate only in theory.
#![cfg_attr(
    not(all(feature = "sqlite", feature = "postgres", feature = "redis")),
    allow(dead_code)
)]

use time::OffsetDateTime;

use crate::StoreError;

/// Microseconds since the Unix epoch, rounded down: whole seconds and the microseconds of
/// the second, in 64-bit arithmetic. Every year up to 9999 fits; only the far years the
/// `time` crate's `large-dates` feature allows would saturate.
#[inline]
pub(crate) fn to_micros(t: OffsetDateTime) -> i64 {
    let seconds = t.unix_timestamp();
    seconds
        .checked_mul(1_000_000)
        .and_then(|micros| micros.checked_add(i64::from(t.microsecond())))
        .unwrap_or(if seconds < 0 { i64::MIN } else { i64::MAX })
}

/// The instant `micros` microseconds after the Unix epoch, built from its whole seconds and
/// the microseconds left: no 128-bit division, and no walk of the calendar as
/// `UNIX_EPOCH + Duration` does (a tenth of a memory store's validate, which reads three).
#[inline]
fn checked_from_micros(micros: i64) -> Result<OffsetDateTime, time::error::ComponentRange> {
    let within_second = u32::try_from(micros.rem_euclid(1_000_000)).unwrap_or(0);
    OffsetDateTime::from_unix_timestamp(micros.div_euclid(1_000_000))
        .and_then(|second| second.replace_microsecond(within_second))
}

/// The instant `micros` microseconds after the Unix epoch.
///
/// # Errors
/// [`StoreError::Corrupt`] if it is out of `OffsetDateTime`'s range.
pub(crate) fn from_micros(micros: i64) -> Result<OffsetDateTime, StoreError> {
    checked_from_micros(micros).map_err(StoreError::corrupt)
}

/// The instant `micros` microseconds after the Unix epoch, for values this process wrote
/// itself (the memory store's records): one outside `OffsetDateTime`'s range, which none
/// is, reads as the range's first or last instant.
#[inline]
pub(crate) fn from_micros_saturating(micros: i64) -> OffsetDateTime {
    checked_from_micros(micros).unwrap_or_else(|_| match micros < 0 {
        true => time::PrimitiveDateTime::MIN.assume_utc(),
        false => time::PrimitiveDateTime::MAX.assume_utc(),
    })
}

/// The instant written as decimal Unix microseconds (the Redis session hash).
///
/// # Errors
/// [`StoreError::Corrupt`] if `text` is not an integer or out of range.
pub(crate) fn from_micros_text(text: &str) -> Result<OffsetDateTime, StoreError> {
    from_micros(text.parse().map_err(StoreError::corrupt)?)
}

/// Milliseconds since the Unix epoch, rounded down.
pub(crate) fn to_millis(t: OffsetDateTime) -> i64 {
    let ms = t.unix_timestamp_nanos().div_euclid(1_000_000);
    i64::try_from(ms).unwrap_or(if ms < 0 { i64::MIN } else { i64::MAX })
}

/// Unix microseconds as Unix milliseconds, rounded up (a Redis key never expires before its
/// session does).
pub(crate) fn micros_to_millis_ceil(micros: i64) -> i64 {
    micros.div_euclid(1000) + i64::from(micros.rem_euclid(1000) > 0)
}

/// `t` without its sub-microsecond digits, as `TIMESTAMPTZ` keeps it, so that times computed
/// in Rust and times read back from PostgreSQL agree exactly.
pub(crate) fn truncate_to_micros(t: OffsetDateTime) -> OffsetDateTime {
    t.replace_nanosecond(t.nanosecond() / 1000 * 1000)
        .unwrap_or(t)
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::Duration;

    #[test]
    fn micros_round_trip_and_cover_the_whole_range() {
        for t in [
            OffsetDateTime::UNIX_EPOCH,
            OffsetDateTime::UNIX_EPOCH - Duration::microseconds(1),
            from_micros(1_795_000_000_123_456).expect("2026"),
            time::Date::MAX
                .with_hms_micro(23, 59, 59, 999_999)
                .expect("valid")
                .assume_utc(),
            time::Date::MIN.midnight().assume_utc(),
        ] {
            assert_eq!(from_micros(to_micros(t)).expect("in range"), t);
            assert_eq!(
                from_micros_text(&to_micros(t).to_string()).expect("in range"),
                t
            );
            assert_eq!(truncate_to_micros(t), t);
        }
        assert!(from_micros(i64::MAX).is_err());
        assert!(from_micros_text("12x").is_err());
    }

    /// Built from seconds and microseconds, an instant is the one the calendar gives for
    /// the same count: every microsecond of a second on each side of the epoch and of one
    /// in 2026, and the far past and future.
    #[test]
    fn micros_read_back_as_the_calendar_counts_them() {
        for base in [-1_000_000_i64, 0, 1_795_000_000_000_000] {
            for step in 0..1_000_000 {
                let m = base + step;
                let expected = OffsetDateTime::UNIX_EPOCH + Duration::microseconds(m);
                assert_eq!(from_micros_saturating(m), expected, "{m}");
                assert_eq!(to_micros(expected), m, "{m}");
            }
        }
        for t in [
            OffsetDateTime::UNIX_EPOCH - Duration::new(86_400 * 365, 999_999_000),
            OffsetDateTime::UNIX_EPOCH + Duration::new(4_102_444_799, 999_999_000),
        ] {
            assert_eq!(from_micros_saturating(to_micros(t)), t, "{t}");
        }
        // Outside the range, which no record holds: its ends, not a panic.
        let (first, last) = (
            time::PrimitiveDateTime::MIN.assume_utc(),
            time::PrimitiveDateTime::MAX.assume_utc(),
        );
        assert_eq!(from_micros_saturating(i64::MIN), first);
        assert_eq!(from_micros_saturating(i64::MAX), last);
    }

    #[test]
    fn sub_microsecond_digits_round_towards_the_past() {
        let t = from_micros(1_795_000_000_123_456).expect("2026") + Duration::nanoseconds(999);
        assert_eq!(to_micros(t), 1_795_000_000_123_456);
        assert_eq!(truncate_to_micros(t), t - Duration::nanoseconds(999));
        let before_epoch = OffsetDateTime::UNIX_EPOCH - Duration::nanoseconds(1);
        assert_eq!(to_micros(before_epoch), -1);
        assert_eq!(to_millis(before_epoch), -1);
        assert_eq!(to_millis(t), 1_795_000_000_123);
    }

    #[test]
    fn key_expiry_rounds_up_to_the_millisecond() {
        assert_eq!(micros_to_millis_ceil(1_000), 1);
        assert_eq!(micros_to_millis_ceil(1_001), 2);
        assert_eq!(micros_to_millis_ceil(0), 0);
        assert_eq!(micros_to_millis_ceil(-1), 0);
        assert_eq!(micros_to_millis_ceil(-1_000), -1);
    }
}
