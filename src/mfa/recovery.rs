//! Recovery codes: single-use codes a user writes down at enrolment and types when the
//! authenticator app is lost. Stores keep only their digests
//! ([`RecoveryCodeDigest`]), bound to the user.

use std::fmt;

use rand::TryRngCore as _;
use serde::{Serialize, Serializer};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq as _;
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use super::store::RecoveryCodeDigest;
use crate::error::RandomnessError;
use crate::user::UserId;

/// Random bytes in a code: 80 bits.
const CODE_BYTES: usize = 10;
/// Base32 characters in a code, without the hyphens.
const CODE_CHARS: usize = 16;
/// Characters per group of the shown form.
const GROUP: usize = 4;
/// The shown form: four groups of four, three hyphens.
const SHOWN_LEN: usize = CODE_CHARS + CODE_CHARS / GROUP - 1;
/// Mixed into each digest, so that it is of no use as any other SHA-256.
const DIGEST_DOMAIN: &[u8] = b"keycard recovery code\0";
/// RFC 4648 base32, lower case, no padding.
const BASE32: base32::Alphabet = base32::Alphabet::Rfc4648Lower { padding: false };

/// One recovery code: 80 random bits, shown as 16 lowercase base32 characters in groups of
/// four, `xxxx-xxxx-xxxx-xxxx`. Zeroized on drop; its `Debug` shows nothing of it.
///
/// ```
/// use keycard::mfa::RecoveryCode;
/// use keycard::UserId;
/// let code = RecoveryCode::parse("ABCD EFGH ijkl mn23").expect("16 base32 characters");
/// assert_eq!(code.as_str(), "abcd-efgh-ijkl-mn23");
/// assert_eq!(format!("{code:?}"), "RecoveryCode(..)");
/// let alice = code.digest(&UserId::new("alice"));
/// assert_ne!(alice, code.digest(&UserId::new("bob")));
/// assert!(RecoveryCode::parse("abcd-efgh-ijkl-mn2").is_none());
/// ```
#[derive(Zeroize, ZeroizeOnDrop)]
pub struct RecoveryCode {
    bytes: [u8; CODE_BYTES],
    shown: String,
}

impl RecoveryCode {
    /// The longest input [`parse`](Self::parse) looks at, in bytes; longer input is refused
    /// before any work.
    pub const MAX_INPUT_LEN: usize = 64;

    fn generate() -> Result<Self, RandomnessError> {
        let mut bytes = Zeroizing::new([0u8; CODE_BYTES]);
        rand::rngs::OsRng
            .try_fill_bytes(bytes.as_mut())
            .map_err(RandomnessError::new)?;
        Ok(Self::from_bytes(*bytes))
    }

    fn from_bytes(bytes: [u8; CODE_BYTES]) -> Self {
        let chars = Zeroizing::new(base32::encode(BASE32, &bytes));
        let mut shown = String::with_capacity(SHOWN_LEN);
        for (i, c) in chars.chars().enumerate() {
            if i > 0 && i % GROUP == 0 {
                shown.push('-');
            }
            shown.push(c);
        }
        Self { bytes, shown }
    }

    /// The code in `input` as a user typed it: surrounding whitespace trimmed, spaces and
    /// hyphens anywhere dropped, either case; then exactly 16 base32 characters (`a`-`z`,
    /// `2`-`7`). Anything else, or input over [`MAX_INPUT_LEN`](Self::MAX_INPUT_LEN) bytes,
    /// is `None`.
    pub fn parse(input: &str) -> Option<Self> {
        if input.len() > Self::MAX_INPUT_LEN {
            return None;
        }
        let mut chars = Zeroizing::new([0u8; CODE_CHARS]);
        let mut len = 0;
        for &c in input.trim().as_bytes() {
            if c == b' ' || c == b'-' {
                continue;
            }
            *chars.get_mut(len)? = c.to_ascii_lowercase();
            len += 1;
        }
        if len != CODE_CHARS {
            return None;
        }
        let text = std::str::from_utf8(chars.get(..len)?).ok()?;
        let decoded = Zeroizing::new(base32::decode(BASE32, text)?);
        let bytes = Zeroizing::new(<[u8; CODE_BYTES]>::try_from(decoded.as_slice()).ok()?);
        Some(Self::from_bytes(*bytes))
    }

    /// The code as shown to the user, `xxxx-xxxx-xxxx-xxxx` (also its `Display`).
    pub fn as_str(&self) -> &str {
        &self.shown
    }

    /// The digest a store keeps for this code of `user`: SHA-256 over a domain string, the
    /// user id (length-prefixed) and the code's 10 bytes. Two users' equal codes have
    /// different digests, so a copy of the store cannot be searched for all users at once.
    pub fn digest(&self, user: &UserId) -> RecoveryCodeDigest {
        let id = user.as_str().as_bytes();
        let id_len = u64::try_from(id.len()).unwrap_or(u64::MAX);
        let digest = Sha256::new()
            .chain_update(DIGEST_DOMAIN)
            .chain_update(id_len.to_be_bytes())
            .chain_update(id)
            .chain_update(self.bytes)
            .finalize();
        RecoveryCodeDigest::from_bytes(digest.into())
    }
}

impl fmt::Display for RecoveryCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.shown)
    }
}

impl fmt::Debug for RecoveryCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RecoveryCode(..)")
    }
}

/// A fresh set of recovery codes, to show the user once (it serializes as the list of their
/// shown forms) and to store as [`digests`](Self::digests). Its `Debug` shows only the
/// count.
///
/// ```
/// use keycard::mfa::{RecoveryCode, RecoveryCodes};
/// use keycard::UserId;
/// let codes = RecoveryCodes::generate(RecoveryCodes::DEFAULT_COUNT)?;
/// assert_eq!(codes.codes().len(), 10);
/// let user = UserId::new("42");
/// let stored = codes.digests(&user);
/// // Later, the user types one of them.
/// let typed = RecoveryCode::parse(&codes.codes()[3].as_str().to_uppercase()).expect("a code");
/// assert!(stored.contains(&typed.digest(&user)));
/// let json = serde_json::to_string(&codes)?;
/// assert!(json.starts_with(&format!("[\"{}\",", codes.codes()[0])));
/// assert_eq!(format!("{codes:?}"), "RecoveryCodes { count: 10 }");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct RecoveryCodes {
    codes: Vec<RecoveryCode>,
}

impl RecoveryCodes {
    /// The number of codes to generate unless you have a reason to choose another.
    pub const DEFAULT_COUNT: usize = 10;
    /// The fewest codes [`generate`](Self::generate) makes.
    pub const MIN_COUNT: usize = 8;
    /// The most codes [`generate`](Self::generate) makes.
    pub const MAX_COUNT: usize = 32;

    /// `count` distinct codes (clamped to [`MIN_COUNT`](Self::MIN_COUNT) to
    /// [`MAX_COUNT`](Self::MAX_COUNT)), each from the operating system's CSPRNG.
    ///
    /// # Errors
    /// [`RandomnessError`] if the operating system cannot supply random bytes (or keeps
    /// drawing the same code).
    pub fn generate(count: usize) -> Result<Self, RandomnessError> {
        let count = count.clamp(Self::MIN_COUNT, Self::MAX_COUNT);
        let mut codes: Vec<RecoveryCode> = Vec::with_capacity(count);
        while codes.len() < count {
            // Two equal draws of 80 bits do not happen with a working generator; a few tries
            // tell a fluke from a broken one.
            let mut tries = 0;
            let code = loop {
                let code = RecoveryCode::generate()?;
                if !codes.iter().any(|c| bool::from(c.bytes.ct_eq(&code.bytes))) {
                    break code;
                }
                tries += 1;
                if tries == 3 {
                    return Err(RandomnessError::new(
                        "the random number generator drew the same recovery code repeatedly",
                    ));
                }
            };
            codes.push(code);
        }
        Ok(Self { codes })
    }

    /// The codes, to show the user once.
    pub fn codes(&self) -> &[RecoveryCode] {
        &self.codes
    }

    /// The digests to store for `user` (see [`RecoveryCode::digest`]), in the codes' order.
    pub fn digests(&self, user: &UserId) -> Vec<RecoveryCodeDigest> {
        self.codes.iter().map(|c| c.digest(user)).collect()
    }
}

impl Serialize for RecoveryCodes {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.codes.iter().map(RecoveryCode::as_str))
    }
}

impl fmt::Debug for RecoveryCodes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RecoveryCodes")
            .field("count", &self.codes.len())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    fn is_shown_form(s: &str) -> bool {
        s.len() == SHOWN_LEN
            && s.split('-').count() == 4
            && s.split('-').all(|g| {
                g.len() == 4
                    && g.bytes()
                        .all(|b| b.is_ascii_lowercase() || (b'2'..=b'7').contains(&b))
            })
    }

    #[test]
    fn codes_have_the_shown_format() {
        let codes = RecoveryCodes::generate(RecoveryCodes::DEFAULT_COUNT).expect("os rng");
        assert_eq!(codes.codes().len(), 10);
        for code in codes.codes() {
            assert!(is_shown_form(code.as_str()), "{}", code.as_str());
            assert_eq!(code.to_string(), code.as_str());
        }
        // All 32 characters and both bit ends encode as expected.
        let code = RecoveryCode::from_bytes([0xff; 10]);
        assert_eq!(code.as_str(), "7777-7777-7777-7777");
        let code = RecoveryCode::from_bytes([0; 10]);
        assert_eq!(code.as_str(), "aaaa-aaaa-aaaa-aaaa");
        let code = RecoveryCode::from_bytes(*b"0123456789");
        assert_eq!(code.as_str(), "gayt-emzu-gu3d-oobz");
    }

    #[test]
    fn counts_are_clamped_and_codes_distinct() {
        for (asked, made) in [
            (0, 8),
            (1, 8),
            (8, 8),
            (10, 10),
            (32, 32),
            (33, 32),
            (usize::MAX, 32),
        ] {
            let codes = RecoveryCodes::generate(asked).expect("os rng");
            assert_eq!(codes.codes().len(), made, "asked {asked}");
            let distinct: HashSet<&str> = codes.codes().iter().map(RecoveryCode::as_str).collect();
            assert_eq!(distinct.len(), made);
        }
    }

    #[test]
    fn parse_round_trips_through_case_space_and_hyphen_variants() {
        let codes = RecoveryCodes::generate(8).expect("os rng");
        for code in codes.codes() {
            let shown = code.as_str();
            let bare = shown.replace('-', "");
            let variants = [
                shown.to_owned(),
                shown.to_uppercase(),
                bare.clone(),
                bare.to_uppercase(),
                shown.replace('-', " "),
                format!("  {shown}\n"),
                format!("-{}-", shown.replace('-', "--")),
                bare.chars().flat_map(|c| [c, ' ']).collect(),
                bare.chars()
                    .enumerate()
                    .map(|(i, c)| {
                        if i % 2 == 0 {
                            c.to_ascii_uppercase()
                        } else {
                            c
                        }
                    })
                    .collect(),
            ];
            for variant in variants {
                let parsed = RecoveryCode::parse(&variant).expect(&variant);
                assert_eq!(parsed.as_str(), shown, "{variant:?}");
                let user = UserId::new("u");
                assert_eq!(parsed.digest(&user), code.digest(&user));
            }
        }
    }

    #[test]
    fn parse_refuses_other_input() {
        for bad in [
            "",
            "abcd-efgh-ijkl-mno",
            "abcd-efgh-ijkl-mnopq",
            "abcd-efgh-ijkl-mn01",
            "abcd-efgh-ijkl-mn8a",
            "abcd_efgh_ijkl_mnop",
            "abcd\tefgh-ijkl-mnop",
            "abcd-efgh-ijkl-mnoé",
            "ａbcd-efgh-ijkl-mnop",
            "abcd-efgh-ijkl-mnop=",
        ] {
            assert!(RecoveryCode::parse(bad).is_none(), "{bad:?}");
        }
        assert!(RecoveryCode::parse("abcd-efgh-ijkl-mnop").is_some());
        // Bounded before any work, whatever the content.
        let long = format!(
            "{}abcdefghijklmnop",
            " ".repeat(RecoveryCode::MAX_INPUT_LEN)
        );
        assert!(RecoveryCode::parse(&long).is_none());
        assert!(RecoveryCode::parse(&"-".repeat(100_000)).is_none());
    }

    #[test]
    fn digests_depend_on_the_user_and_the_code() {
        let code = RecoveryCode::parse("abcd-efgh-ijkl-mnop").expect("a code");
        let other = RecoveryCode::parse("abcd-efgh-ijkl-mnoq").expect("a code");
        let (a, b) = (UserId::new("1"), UserId::new("2"));
        assert_ne!(code.digest(&a), code.digest(&b));
        assert_ne!(code.digest(&a), other.digest(&a));
        assert_eq!(code.digest(&a), code.digest(&UserId::new("1")));
        // The length prefix keeps the id and the code apart: no two (id, code) pairs share
        // a hashed string.
        let mut expected = Sha256::new();
        expected.update(DIGEST_DOMAIN);
        expected.update(1u64.to_be_bytes());
        expected.update(b"1");
        expected.update(code.bytes);
        let expected: [u8; 32] = expected.finalize().into();
        assert_eq!(code.digest(&a).as_bytes(), &expected);
        let codes = RecoveryCodes::generate(8).expect("os rng");
        let digests = codes.digests(&a);
        assert_eq!(digests.len(), 8);
        for (code, digest) in codes.codes().iter().zip(&digests) {
            assert_eq!(code.digest(&a), *digest);
        }
    }

    #[test]
    fn serializes_as_the_shown_codes_and_hides_them_from_debug() {
        let codes = RecoveryCodes::generate(8).expect("os rng");
        let json: Vec<String> =
            serde_json::from_value(serde_json::to_value(&codes).expect("json")).expect("a list");
        let shown: Vec<&str> = codes.codes().iter().map(RecoveryCode::as_str).collect();
        assert_eq!(json, shown);
        let debug = format!("{codes:?} {:?}", codes.codes());
        for code in shown {
            assert!(!debug.contains(code), "{debug}");
        }
        assert_eq!(format!("{codes:?}"), "RecoveryCodes { count: 8 }");
    }
}
