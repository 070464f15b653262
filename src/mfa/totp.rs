//! Time-based one-time passwords (RFC 6238): the shared secret, the policy that turns it into
//! codes, and the check of a code a user typed. The HMAC and the dynamic truncation of
//! RFC 4226 are `totp-rs`'s; this module draws the secret, bounds and parses the input,
//! compares in constant time and tells a replay from a wrong code.

use std::fmt::{self, Write as _};
use std::time::Duration;

use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use rand::TryRngCore as _;
use subtle::{Choice, ConditionallySelectable as _, ConstantTimeEq as _};
use time::OffsetDateTime;
use totp_rs::{Algorithm, TOTP};
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use crate::error::RandomnessError;

/// Everything but RFC 3986's unreserved characters is percent-encoded in an otpauth URI.
const URI_COMPONENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// A TOTP shared secret: the key of the HMAC behind the codes, held by the server and the
/// user's authenticator app. Zeroized on drop; its `Debug` shows nothing of it.
///
/// Keep it sealed at rest ([`SecretBox`](super::SecretBox)); it leaves the server once, in
/// the enrolment QR code or its [`to_base32`](Self::to_base32) text.
///
/// ```
/// use keycard::mfa::TotpSecret;
/// let secret = TotpSecret::generate()?;
/// assert_eq!(secret.as_bytes().len(), 20);
/// assert_eq!(secret.to_base32().len(), 32);
/// assert_eq!(format!("{secret:?}"), "TotpSecret(..)");
/// # Ok::<(), keycard::RandomnessError>(())
/// ```
#[derive(Zeroize, ZeroizeOnDrop)]
pub struct TotpSecret(Vec<u8>);

impl TotpSecret {
    /// The length of a generated secret: 20 bytes (160 bits), RFC 4226's recommendation.
    pub const GENERATED_LEN: usize = 20;
    /// The shortest secret accepted: 16 bytes (128 bits), RFC 4226's minimum.
    pub const MIN_LEN: usize = 16;
    /// The longest secret accepted: 64 bytes (an HMAC-SHA-512 block's worth).
    pub const MAX_LEN: usize = 64;

    /// A fresh 160-bit secret from the operating system's CSPRNG.
    ///
    /// # Errors
    /// [`RandomnessError`] if the operating system cannot supply random bytes.
    pub fn generate() -> Result<Self, RandomnessError> {
        let mut bytes = vec![0u8; Self::GENERATED_LEN];
        match rand::rngs::OsRng.try_fill_bytes(&mut bytes) {
            Ok(()) => Ok(Self(bytes)),
            Err(e) => {
                bytes.zeroize();
                Err(RandomnessError::new(e))
            }
        }
    }

    /// The secret from its bytes (as [`SecretBox::open`](super::SecretBox::open) returned
    /// them). Takes a `Vec<u8>` or a `Zeroizing<Vec<u8>>`; the bytes are zeroized if refused.
    ///
    /// # Errors
    /// [`InvalidTotpSecret`] unless the secret is [`MIN_LEN`](Self::MIN_LEN) to
    /// [`MAX_LEN`](Self::MAX_LEN) bytes long.
    pub fn try_from_bytes(bytes: impl Into<Zeroizing<Vec<u8>>>) -> Result<Self, InvalidTotpSecret> {
        let mut bytes = bytes.into();
        let len = bytes.len();
        if !(Self::MIN_LEN..=Self::MAX_LEN).contains(&len) {
            return Err(InvalidTotpSecret { len });
        }
        Ok(Self(std::mem::take(&mut *bytes)))
    }

    /// The raw secret (to seal it, or to hand it to another HOTP/TOTP implementation).
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The secret as authenticator apps take it typed in: RFC 4648 base32, upper case, no
    /// padding (32 characters for a generated secret).
    pub fn to_base32(&self) -> Zeroizing<String> {
        Zeroizing::new(base32::encode(BASE32, &self.0))
    }

    /// The secret from its base32 form (as [`to_base32`](Self::to_base32) gives it, or as a
    /// user copied it: either case, spaces ignored).
    ///
    /// # Errors
    /// [`InvalidTotpSecret`] if the text is not base32 or the secret's length is out of
    /// range.
    pub fn from_base32(text: &str) -> Result<Self, InvalidTotpSecret> {
        if text.len() > 2 * Self::MAX_LEN * 8 / 5 {
            return Err(InvalidTotpSecret {
                len: text.len() * 5 / 8,
            });
        }
        let cleaned: Zeroizing<String> = Zeroizing::new(
            text.chars()
                .filter(|c| !c.is_ascii_whitespace())
                .map(|c| c.to_ascii_uppercase())
                .collect(),
        );
        let bytes = base32::decode(BASE32, &cleaned).ok_or(InvalidTotpSecret { len: 0 })?;
        Self::try_from_bytes(bytes)
    }
}

/// RFC 4648 base32, upper case, no padding: what authenticator apps take.
const BASE32: base32::Alphabet = base32::Alphabet::Rfc4648 { padding: false };

impl fmt::Debug for TotpSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TotpSecret(..)")
    }
}

/// A TOTP secret of a refused length (see [`TotpSecret::try_from_bytes`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "a TOTP secret must be 16 to 64 bytes long, not {len}; generate one with TotpSecret::generate"
)]
#[non_exhaustive]
pub struct InvalidTotpSecret {
    /// The length given, in bytes.
    pub len: usize,
}

/// A code as typed by a user, parsed by [`TotpPolicy::parse_code`]: exactly the policy's
/// number of ASCII digits. Zeroized on drop; its `Debug` shows nothing of it.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct TotpCode {
    digits: [u8; 8],
    len: u8,
}

impl TotpCode {
    /// The digits, without spaces (`"123456"`).
    pub fn as_str(&self) -> &str {
        let digits = self.digits.get(..usize::from(self.len)).unwrap_or(&[]);
        std::str::from_utf8(digits).unwrap_or("")
    }
}

impl fmt::Debug for TotpCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TotpCode(..)")
    }
}

/// What [`TotpPolicy::verify`] made of a code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TotpVerdict {
    /// The code is the one of time step `step`, later than the last step used: record `step`
    /// (with [`SecondFactorStore::use_totp_step`](super::SecondFactorStore::use_totp_step),
    /// whose compare-and-set lets one of two concurrent uses through) and let the user in.
    Accepted {
        /// The time step whose code it is.
        step: u64,
    },
    /// The code is not one of the accepted steps' codes (or is not a code at all).
    Rejected,
    /// The code is right, but for a step at or before the last one used: it was already
    /// spent (or a later code was), so it is refused.
    Replayed,
}

/// How TOTP codes are made and checked: HMAC-SHA-1, 6 digits, 30-second steps, and one step
/// of clock drift accepted either way, the settings every authenticator app supports
/// (Google Authenticator ignores any other algorithm and period).
///
/// ```
/// use keycard::mfa::{TotpPolicy, TotpSecret, TotpVerdict};
/// use time::OffsetDateTime;
///
/// let policy = TotpPolicy::default();
/// let secret = TotpSecret::generate()?;
/// let now = OffsetDateTime::now_utc();
/// let code = policy.code_at(&secret, now);
/// let step = policy.step_at(now);
/// assert_eq!(policy.verify(&secret, &code, now, None), TotpVerdict::Accepted { step });
/// // Once step is recorded as used, the same code is a replay.
/// assert_eq!(policy.verify(&secret, &code, now, Some(step)), TotpVerdict::Replayed);
/// assert_eq!(policy.verify(&secret, "12345x", now, None), TotpVerdict::Rejected);
/// # Ok::<(), keycard::RandomnessError>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct TotpPolicy {
    digits: u32,
    period: u64,
    drift: u64,
}

impl Default for TotpPolicy {
    fn default() -> Self {
        Self {
            digits: 6,
            period: 30,
            drift: 1,
        }
    }
}

impl TotpPolicy {
    /// The longest input [`parse_code`](Self::parse_code) looks at, in bytes; longer input
    /// is refused before any work.
    pub const MAX_INPUT_LEN: usize = 32;

    /// The same policy with codes of `digits` digits, clamped to 6 to 8 (RFC 4226's range).
    /// Most apps show 6; some take 8 from the otpauth URI.
    #[must_use]
    pub fn with_digits(mut self, digits: u32) -> Self {
        self.digits = digits.clamp(6, 8);
        self
    }

    /// The number of digits of a code.
    pub fn digits(&self) -> u32 {
        self.digits
    }

    /// The length of a time step.
    pub fn period(&self) -> Duration {
        Duration::from_secs(self.period)
    }

    /// The time step of `at`: whole periods since the Unix epoch. Times before 1970 are
    /// step 0.
    pub fn step_at(&self, at: OffsetDateTime) -> u64 {
        u64::try_from(at.unix_timestamp()).map_or(0, |secs| secs / self.period)
    }

    /// The code an authenticator app shows at `at` (for tests and demos: a server only
    /// verifies codes).
    pub fn code_at(&self, secret: &TotpSecret, at: OffsetDateTime) -> String {
        self.engine(secret).generate(self.step_at(at))
    }

    /// Checks `code`, typed by the user at `now`, against the codes of the steps around now
    /// (one before, the current one, one after); `last_step` is the last step whose code was
    /// accepted ([`TotpRecord::last_step`](super::TotpRecord::last_step)).
    ///
    /// Every candidate is computed and compared in constant time, whichever matches. A code
    /// that is no code ([`parse_code`](Self::parse_code) refuses it) and any `now` before
    /// 1970 give [`TotpVerdict::Rejected`]. Never panics.
    pub fn verify(
        &self,
        secret: &TotpSecret,
        code: &str,
        now: OffsetDateTime,
        last_step: Option<u64>,
    ) -> TotpVerdict {
        let Some(code) = self.parse_code(code) else {
            return TotpVerdict::Rejected;
        };
        let Ok(secs) = u64::try_from(now.unix_timestamp()) else {
            return TotpVerdict::Rejected;
        };
        let current = secs / self.period;
        let engine = self.engine(secret);
        let mut matched = Choice::from(0);
        let mut step = 0u64;
        // On a (one in a million) match of two steps, the latest wins: a code that is also
        // the next step's is not a replay of the previous one's.
        for candidate in current.saturating_sub(self.drift)..=current.saturating_add(self.drift) {
            let expected = Zeroizing::new(engine.generate(candidate));
            let equal = expected.as_bytes().ct_eq(code.as_str().as_bytes());
            step.conditional_assign(&candidate, equal);
            matched |= equal;
        }
        if !bool::from(matched) {
            TotpVerdict::Rejected
        } else if last_step.is_some_and(|last| last >= step) {
            TotpVerdict::Replayed
        } else {
            TotpVerdict::Accepted { step }
        }
    }

    /// The code in `input` as a user typed it: exactly [`digits`](Self::digits) ASCII digits
    /// once spaces are removed (apps show `123 456`). Anything else (other characters,
    /// non-ASCII digits, a wrong count, input over [`MAX_INPUT_LEN`](Self::MAX_INPUT_LEN)
    /// bytes) is `None`.
    pub fn parse_code(&self, input: &str) -> Option<TotpCode> {
        if input.len() > Self::MAX_INPUT_LEN {
            return None;
        }
        let mut code = TotpCode {
            digits: [0; 8],
            len: 0,
        };
        for &b in input.as_bytes().iter().filter(|&&b| b != b' ') {
            if !b.is_ascii_digit() {
                return None;
            }
            *code.digits.get_mut(usize::from(code.len))? = b;
            code.len += 1;
        }
        (u32::from(code.len) == self.digits).then_some(code)
    }

    /// The `otpauth://` URI of Google Authenticator's key-uri format, to show as a QR code at
    /// enrolment: `otpauth://totp/{issuer}:{account}?secret=...&issuer=...&algorithm=SHA1&digits=6&period=30`,
    /// with the label's parts and the issuer percent-encoded. An empty `issuer` gives the
    /// label `{account}` and no issuer parameter.
    ///
    /// It contains the secret, so it is zeroized on drop: send it to the user once, log it
    /// nowhere.
    pub fn otpauth_uri(
        &self,
        secret: &TotpSecret,
        issuer: &str,
        account: &str,
    ) -> Zeroizing<String> {
        let issuer_enc = utf8_percent_encode(issuer, URI_COMPONENT);
        let account_enc = utf8_percent_encode(account, URI_COMPONENT);
        let encoded_secret = secret.to_base32();
        let mut uri = Zeroizing::new(String::with_capacity(
            96 + 3 * (2 * issuer.len() + account.len()) + encoded_secret.len(),
        ));
        // Writing to a String does not fail.
        let _ = if issuer.is_empty() {
            write!(uri, "otpauth://totp/{account_enc}?secret=")
        } else {
            write!(uri, "otpauth://totp/{issuer_enc}:{account_enc}?secret=")
        };
        uri.push_str(&encoded_secret);
        if !issuer.is_empty() {
            let _ = write!(uri, "&issuer={issuer_enc}");
        }
        let _ = write!(
            uri,
            "&algorithm=SHA1&digits={}&period={}",
            self.digits, self.period
        );
        uri
    }

    /// The HOTP engine for `secret`: `totp-rs` with a step of 1, so that `generate(n)` is
    /// the code of counter `n` (HMAC and RFC 4226 truncation). It holds a copy of the
    /// secret, zeroized on drop.
    fn engine(&self, secret: &TotpSecret) -> TOTP {
        // `digits` is 6 to 8 (clamped), the range totp-rs formats; the length of the secret
        // was checked at construction, and HMAC takes any key length.
        TOTP::new_unchecked(
            Algorithm::SHA1,
            self.digits as usize,
            0,
            1,
            secret.as_bytes().to_vec(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: i64) -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(secs).expect("a valid time")
    }

    fn rfc_secret() -> TotpSecret {
        TotpSecret::try_from_bytes(b"12345678901234567890".to_vec()).expect("20 bytes")
    }

    #[test]
    fn rfc_6238_appendix_b_sha1_vectors() {
        let policy = TotpPolicy::default().with_digits(8);
        let secret = rfc_secret();
        for (time, code) in [
            (59, "94287082"),
            (1_111_111_109, "07081804"),
            (1_111_111_111, "14050471"),
            (1_234_567_890, "89005924"),
            (2_000_000_000, "69279037"),
            (20_000_000_000, "65353130"),
        ] {
            assert_eq!(policy.code_at(&secret, at(time)), code, "at {time}");
            let step = u64::try_from(time).expect("positive") / 30;
            assert_eq!(
                policy.verify(&secret, code, at(time), None),
                TotpVerdict::Accepted { step },
                "at {time}"
            );
        }
    }

    #[test]
    fn six_digit_codes_are_the_last_six_of_eight() {
        let secret = rfc_secret();
        let six = TotpPolicy::default().code_at(&secret, at(1_234_567_890));
        assert_eq!(six, "005924");
        assert_eq!(TotpPolicy::default().with_digits(3).digits(), 6);
        assert_eq!(TotpPolicy::default().with_digits(12).digits(), 8);
    }

    #[test]
    fn one_step_of_drift_is_accepted_two_are_not() {
        let policy = TotpPolicy::default();
        let secret = TotpSecret::generate().expect("os rng");
        let now = at(1_700_000_015);
        let step = policy.step_at(now);
        for (offset, accepted) in [(-2, false), (-1, true), (0, true), (1, true), (2, false)] {
            let then = now + time::Duration::seconds(30 * offset);
            let code = policy.code_at(&secret, then);
            let verdict = policy.verify(&secret, &code, now, None);
            let expected_step = step.checked_add_signed(offset).expect("no overflow");
            if accepted {
                assert_eq!(
                    verdict,
                    TotpVerdict::Accepted {
                        step: expected_step
                    },
                    "offset {offset}"
                );
            } else if verdict != TotpVerdict::Rejected {
                // A code of step ±2 may equal one of the accepted steps' (one in a million).
                let near = [step - 1, step, step + 1];
                assert!(
                    near.iter()
                        .any(|&s| policy.code_at(&secret, at(30 * s as i64)) == code),
                    "offset {offset}: {verdict:?}"
                );
            }
        }
    }

    #[test]
    fn replays_are_told_apart_from_wrong_codes() {
        let policy = TotpPolicy::default();
        let secret = rfc_secret();
        let now = at(1_111_111_111);
        let step = policy.step_at(now);
        let code = policy.code_at(&secret, now);
        assert_eq!(
            policy.verify(&secret, &code, now, Some(step - 1)),
            TotpVerdict::Accepted { step }
        );
        assert_eq!(
            policy.verify(&secret, &code, now, Some(step)),
            TotpVerdict::Replayed
        );
        // A later code was used: this one is spent too.
        assert_eq!(
            policy.verify(&secret, &code, now, Some(step + 1)),
            TotpVerdict::Replayed
        );
        // The previous step's code, after the current one was used.
        let previous = policy.code_at(&secret, now - time::Duration::seconds(30));
        assert_eq!(
            policy.verify(&secret, &previous, now, Some(step)),
            TotpVerdict::Replayed
        );
        let wrong = if code == "000000" { "000001" } else { "000000" };
        assert_eq!(
            policy.verify(&secret, wrong, now, Some(step)),
            TotpVerdict::Rejected
        );
        let other = TotpSecret::generate().expect("os rng");
        let other_code = policy.code_at(&other, now);
        if other_code != code {
            assert_eq!(
                policy.verify(&secret, &other_code, now, None),
                TotpVerdict::Rejected
            );
        }
    }

    #[test]
    fn times_before_1970_and_at_the_epoch_do_not_panic() {
        let policy = TotpPolicy::default();
        let secret = rfc_secret();
        let before = at(-1);
        assert_eq!(policy.step_at(before), 0);
        let code = policy.code_at(&secret, before);
        assert_eq!(
            policy.verify(&secret, &code, before, None),
            TotpVerdict::Rejected
        );
        assert_eq!(
            policy.verify(&secret, &code, at(0), None),
            TotpVerdict::Accepted { step: 0 }
        );
        let latest = OffsetDateTime::new_utc(
            time::Date::from_calendar_date(9999, time::Month::December, 31).expect("a date"),
            time::Time::MIDNIGHT,
        );
        let code = policy.code_at(&secret, latest);
        assert!(matches!(
            policy.verify(&secret, &code, latest, None),
            TotpVerdict::Accepted { .. }
        ));
    }

    #[test]
    fn parse_code_edge_cases() {
        let six = TotpPolicy::default();
        let eight = TotpPolicy::default().with_digits(8);
        let parsed = |p: &TotpPolicy, s: &str| p.parse_code(s).map(|c| c.as_str().to_owned());
        assert_eq!(parsed(&six, "123456").as_deref(), Some("123456"));
        assert_eq!(parsed(&six, "123 456").as_deref(), Some("123456"));
        assert_eq!(parsed(&six, " 12 34 56 ").as_deref(), Some("123456"));
        assert_eq!(parsed(&eight, "1234 5678").as_deref(), Some("12345678"));
        for bad in [
            "",
            "      ",
            "12345",
            "1234567",
            "12345a",
            "123-456",
            "123\t456",
            "１２３４５６",
            "١٢٣٤٥٦",
            "+12345",
            "-12345",
            "123456\n",
        ] {
            assert!(six.parse_code(bad).is_none(), "{bad:?}");
        }
        assert!(eight.parse_code("123456").is_none());
        // Long input is refused before it is read, spaces or not.
        let padded = format!("{}123456", " ".repeat(TotpPolicy::MAX_INPUT_LEN));
        assert!(six.parse_code(&padded).is_none());
        let just_fits = format!("{}123456", " ".repeat(TotpPolicy::MAX_INPUT_LEN - 6));
        assert!(six.parse_code(&just_fits).is_some());
        assert!(six.parse_code(&"1".repeat(10_000)).is_none());
        assert_eq!(
            format!("{:?}", six.parse_code("123456").expect("a code")),
            "TotpCode(..)"
        );
    }

    #[test]
    fn otpauth_uri_encodes_label_and_issuer() {
        let policy = TotpPolicy::default();
        let secret = rfc_secret();
        let uri = policy.otpauth_uri(&secret, "Acme: Billing", "ann+x@example.com");
        assert_eq!(
            uri.as_str(),
            "otpauth://totp/Acme%3A%20Billing:ann%2Bx%40example.com\
             ?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ\
             &issuer=Acme%3A%20Billing&algorithm=SHA1&digits=6&period=30"
        );
        let uri = policy
            .with_digits(8)
            .otpauth_uri(&secret, "", "ann@example.com");
        assert_eq!(
            uri.as_str(),
            "otpauth://totp/ann%40example.com?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ\
             &algorithm=SHA1&digits=8&period=30"
        );
        let uri = policy.otpauth_uri(&secret, "Ünï", "a/b?c&d#e");
        assert!(
            uri.starts_with("otpauth://totp/%C3%9Cn%C3%AF:a%2Fb%3Fc%26d%23e?secret="),
            "{}",
            uri.as_str()
        );
    }

    #[test]
    fn secrets_have_bounded_lengths_and_hidden_debug() {
        let secret = TotpSecret::generate().expect("os rng");
        assert_eq!(secret.as_bytes().len(), 20);
        assert_ne!(
            secret.as_bytes(),
            TotpSecret::generate().expect("os rng").as_bytes()
        );
        assert_eq!(format!("{secret:?}"), "TotpSecret(..)");
        assert_eq!(
            rfc_secret().to_base32().as_str(),
            "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"
        );
        for len in [0, 15, 65, 1000] {
            assert_eq!(
                TotpSecret::try_from_bytes(vec![7; len]).map(|_| ()),
                Err(InvalidTotpSecret { len })
            );
        }
        for len in [16, 64] {
            let secret = TotpSecret::try_from_bytes(Zeroizing::new(vec![7; len])).expect("ok");
            assert_eq!(secret.as_bytes().len(), len);
        }
    }
}
