//! The one-time token string, `kcot_<id>.<secret>_<checksum>`: generation, parsing (total:
//! any input gives a token or [`MalformedOneTimeToken`], never a panic) and the digest a store
//! keeps. The only place that sees a one-time token's secret.

use std::fmt;
use std::str::FromStr;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use rand::TryRngCore as _;
use sha2::{Digest, Sha256};
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use crate::error::RandomnessError;
use crate::token::SecretHash;
use crate::user::UserId;

/// The prefix of every one-time token. Secret scanners can look for
/// `kcot_[A-Za-z0-9_-]{22}\.[A-Za-z0-9_-]{43}_[0-9A-Za-z]{6}`.
pub const ONE_TIME_PREFIX: &str = "kcot_";
const ID_BYTES: usize = 16;
const ID_LEN: usize = 22;
const SECRET_BYTES: usize = 32;
const SECRET_LEN: usize = 43;
const CHECKSUM_LEN: usize = 6;
/// The length of a one-time token's text: `kcot_` + 22 + `.` + 43 + `_` + 6 = 78 ASCII
/// characters. Longer or shorter input is refused before anything else is looked at.
pub const ONE_TIME_TOKEN_LEN: usize =
    ONE_TIME_PREFIX.len() + ID_LEN + 1 + SECRET_LEN + 1 + CHECKSUM_LEN;
/// The checksum alphabet: base62, in ASCII order.
const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
/// Mixed into the checksum, so that a session token given this token's prefix does not pass
/// as a one-time token (nor the reverse): the two kinds never share a valid spelling.
const CHECKSUM_DOMAIN: &[u8] = b"keycard one-time token\0";
/// Mixed into the shard tag derived from a user id.
const SHARD_DOMAIN: &[u8] = b"keycard one-time shard\0";

/// The public half of a one-time token: names one token in its store. Safe to log.
///
/// 16 bytes, shown as 22 base64url characters. The first two bytes are the token's
/// [`shard`](Self::shard), a digest of the user id it was issued to, so that a store can keep
/// all of one user's tokens together (a Redis Cluster hash slot) and still find a token by id
/// alone; the other 14 bytes (112 bits) are random.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct OneTimeId([u8; ID_BYTES]);

impl OneTimeId {
    /// The 16 raw bytes.
    pub fn as_bytes(&self) -> &[u8; ID_BYTES] {
        &self.0
    }

    /// Builds an id from its 16 raw bytes.
    pub fn from_bytes(bytes: [u8; ID_BYTES]) -> Self {
        Self(bytes)
    }

    /// The shard tag: the first two bytes, equal to [`shard_of`] the user the token was
    /// issued to.
    pub fn shard(&self) -> u16 {
        u16::from_be_bytes([self.0[0], self.0[1]])
    }

    /// A fresh id for a token of `user`: its shard, then 14 random bytes.
    fn generate(user: &UserId) -> Result<Self, RandomnessError> {
        let mut id = [0u8; ID_BYTES];
        rand::rngs::OsRng
            .try_fill_bytes(&mut id[2..])
            .map_err(RandomnessError::new)?;
        id[..2].copy_from_slice(&shard_of(user).to_be_bytes());
        Ok(Self(id))
    }
}

/// The shard tag of `user`'s one-time tokens: the first two bytes of
/// SHA-256(`"keycard one-time shard\0"` ‖ user id). Every token of one user has it as the
/// start of its [`OneTimeId`].
pub fn shard_of(user: &UserId) -> u16 {
    let digest = Sha256::new()
        .chain_update(SHARD_DOMAIN)
        .chain_update(user.as_str().as_bytes())
        .finalize();
    u16::from_be_bytes([digest[0], digest[1]])
}

impl fmt::Display for OneTimeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut buf = [0u8; ID_LEN];
        let n = URL_SAFE_NO_PAD
            .encode_slice(self.0, &mut buf)
            .map_err(|_| fmt::Error)?;
        f.write_str(std::str::from_utf8(&buf[..n]).map_err(|_| fmt::Error)?)
    }
}

impl fmt::Debug for OneTimeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "OneTimeId({self})")
    }
}

impl FromStr for OneTimeId {
    type Err = MalformedOneTimeToken;

    /// # Errors
    /// [`MalformedOneTimeToken`] unless `s` is exactly 22 canonical base64url characters.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        decode_exact::<ID_BYTES>(s, ID_LEN).map(Self)
    }
}

/// A string that is not a one-time token: wrong length, prefix, characters or checksum. One
/// opaque error whatever failed, so a probe learns nothing from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
#[error("the one-time token is malformed; use the link exactly as it was sent")]
pub struct MalformedOneTimeToken {
    _private: (),
}

const MALFORMED: MalformedOneTimeToken = MalformedOneTimeToken { _private: () };

/// A whole one-time token: its id and its 256-bit secret. Holds a secret: its `Debug` is
/// redacted and its memory zeroized on drop.
///
/// ```
/// use keycard::one_time::{OneTimeToken, ONE_TIME_TOKEN_LEN};
/// // Any string parses to a token or an error, never a panic.
/// assert!("kcot_not-a-token".parse::<OneTimeToken>().is_err());
/// assert_eq!(ONE_TIME_TOKEN_LEN, 78);
/// ```
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct OneTimeToken {
    #[zeroize(skip)]
    id: OneTimeId,
    secret: [u8; SECRET_BYTES],
    encoded: String,
}

impl OneTimeToken {
    /// A fresh token for `user`: a 16-byte id (its shard and 112 random bits) and a 256-bit
    /// secret, from the operating system's CSPRNG.
    ///
    /// # Errors
    /// [`RandomnessError`] if the operating system cannot supply random bytes.
    pub(crate) fn generate(user: &UserId) -> Result<Self, RandomnessError> {
        let id = OneTimeId::generate(user)?;
        let mut secret = Zeroizing::new([0u8; SECRET_BYTES]);
        rand::rngs::OsRng
            .try_fill_bytes(secret.as_mut())
            .map_err(RandomnessError::new)?;
        Ok(Self::from_parts(id, &secret))
    }

    fn from_parts(id: OneTimeId, secret: &[u8; SECRET_BYTES]) -> Self {
        let mut encoded = String::with_capacity(ONE_TIME_TOKEN_LEN);
        encoded.push_str(ONE_TIME_PREFIX);
        encoded.push_str(&id.to_string());
        encoded.push('.');
        URL_SAFE_NO_PAD.encode_string(secret, &mut encoded);
        encoded.push('_');
        checksum(encoded.as_bytes())
            .iter()
            .for_each(|&c| encoded.push(char::from(c)));
        Self {
            id,
            secret: *secret,
            encoded,
        }
    }

    /// A well-formed token with `id` and a fresh random secret: what a forger who knows an id
    /// could present (for the conformance suite).
    #[cfg(feature = "conformance")]
    pub(crate) fn with_random_secret(id: OneTimeId) -> Result<Self, RandomnessError> {
        let mut secret = Zeroizing::new([0u8; SECRET_BYTES]);
        rand::rngs::OsRng
            .try_fill_bytes(secret.as_mut())
            .map_err(RandomnessError::new)?;
        Ok(Self::from_parts(id, &secret))
    }

    /// Parses a one-time token. Total: every input gives a token or an error, and the only
    /// accepted spelling of a token is the one it was issued in (canonical base64url, exact
    /// prefix and separators, the checksum in its one encoding). Looks at no store.
    ///
    /// # Errors
    /// [`MalformedOneTimeToken`] for anything else, including a session token.
    pub fn parse(s: &str) -> Result<Self, MalformedOneTimeToken> {
        let (id, secret) = split(s)?;
        Ok(Self {
            id,
            secret: *secret,
            encoded: s.to_owned(),
        })
    }

    /// The id of the token: what a store keys it by.
    pub fn id(&self) -> OneTimeId {
        self.id
    }

    /// The token as it goes in the link. This is the secret: put it in the mail and nowhere
    /// else (not in logs, not in the store).
    pub fn expose_secret(&self) -> &str {
        &self.encoded
    }

    /// The digest a store keeps in place of the secret: SHA-256 of the prefix and the secret.
    /// 256 random bits need no salt nor slow hash: the digest cannot be reversed.
    pub fn secret_hash(&self) -> SecretHash {
        digest(&self.secret)
    }
}

impl fmt::Debug for OneTimeToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OneTimeToken")
            .field("id", &self.id)
            .field("secret", &"[redacted]")
            .finish()
    }
}

impl FromStr for OneTimeToken {
    type Err = MalformedOneTimeToken;

    /// As [`OneTimeToken::parse`].
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

/// The id and the digest of `s`, without keeping the secret (zeroized before returning).
pub(crate) fn parse_id_and_digest(
    s: &str,
) -> Result<(OneTimeId, SecretHash), MalformedOneTimeToken> {
    let (id, secret) = split(s)?;
    Ok((id, digest(&secret)))
}

fn digest(secret: &[u8; SECRET_BYTES]) -> SecretHash {
    let mut d = Sha256::new();
    d.update(ONE_TIME_PREFIX.as_bytes());
    d.update(secret);
    SecretHash::from_bytes(d.finalize().into())
}

/// The id and secret of `s`, checked as [`OneTimeToken::parse`] says.
fn split(s: &str) -> Result<(OneTimeId, Zeroizing<[u8; SECRET_BYTES]>), MalformedOneTimeToken> {
    let bytes = s.as_bytes();
    if bytes.len() != ONE_TIME_TOKEN_LEN || !bytes.starts_with(ONE_TIME_PREFIX.as_bytes()) {
        return Err(MALFORMED);
    }
    let (signed, sum) = bytes.split_at(ONE_TIME_TOKEN_LEN - CHECKSUM_LEN);
    if signed.last() != Some(&b'_') || sum != checksum(signed) {
        return Err(MALFORMED);
    }
    // The checked bytes above are ASCII; `get` refuses anything that is not a boundary.
    let start = ONE_TIME_PREFIX.len();
    let id = s.get(start..start + ID_LEN).ok_or(MALFORMED)?;
    if bytes.get(start + ID_LEN) != Some(&b'.') {
        return Err(MALFORMED);
    }
    let secret_start = start + ID_LEN + 1;
    let secret = s
        .get(secret_start..secret_start + SECRET_LEN)
        .ok_or(MALFORMED)?;
    let id = id.parse::<OneTimeId>()?;
    let secret = Zeroizing::new(decode_exact::<SECRET_BYTES>(secret, SECRET_LEN)?);
    Ok((id, secret))
}

/// CRC-32 (IEEE) of the domain and `signed`, as 6 base62 digits, most significant first.
fn checksum(signed: &[u8]) -> [u8; CHECKSUM_LEN] {
    let mut crc = crc32fast::Hasher::new();
    crc.update(CHECKSUM_DOMAIN);
    crc.update(signed);
    let mut n = crc.finalize();
    let mut out = [BASE62[0]; CHECKSUM_LEN];
    for c in out.iter_mut().rev() {
        // `n % 62 < 62`, so the index is in range.
        *c = BASE62[(n % 62) as usize];
        n /= 62;
    }
    out
}

/// Decodes exactly `N` bytes from exactly `len` canonical base64url characters.
fn decode_exact<const N: usize>(s: &str, len: usize) -> Result<[u8; N], MalformedOneTimeToken> {
    if s.len() != len {
        return Err(MALFORMED);
    }
    let mut out = [0u8; N];
    match URL_SAFE_NO_PAD.decode_slice(s, &mut out) {
        Ok(n) if n == N => Ok(out),
        _ => {
            out.zeroize();
            Err(MALFORMED)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn fresh() -> OneTimeToken {
        OneTimeToken::generate(&UserId::from(7_i64)).expect("os rng")
    }

    #[test]
    fn generated_tokens_round_trip_and_carry_the_shard() {
        let t = fresh();
        let s = t.expose_secret();
        assert_eq!(s.len(), ONE_TIME_TOKEN_LEN);
        assert!(s.starts_with("kcot_"));
        let parsed = OneTimeToken::parse(s).expect("own token parses");
        assert_eq!(parsed.id(), t.id());
        assert_eq!(parsed.secret_hash(), t.secret_hash());
        assert_eq!(t.id().shard(), shard_of(&UserId::from(7_i64)));
        let (id, digest) = parse_id_and_digest(s).expect("parses");
        assert_eq!((id, digest), (t.id(), t.secret_hash()));
        assert_ne!(fresh().secret_hash(), t.secret_hash());
        assert_eq!(t.id().to_string().parse::<OneTimeId>(), Ok(t.id()));
    }

    #[test]
    fn debug_never_shows_the_secret() {
        let t = fresh();
        let secret = &t.expose_secret()[28..71];
        let dbg = format!("{t:?}");
        assert!(!dbg.contains(secret) && dbg.contains("[redacted]"), "{dbg}");
    }

    #[test]
    fn every_single_change_is_refused() {
        let t = fresh();
        let s = t.expose_secret();
        for i in 0..s.len() {
            let mut b = s.as_bytes().to_vec();
            b[i] = if b[i] == b'A' { b'B' } else { b'A' };
            let changed = String::from_utf8(b).expect("ascii");
            assert!(OneTimeToken::parse(&changed).is_err(), "change at {i}");
        }
    }

    #[test]
    fn session_tokens_are_not_one_time_tokens() {
        let format = crate::TokenFormat::prefixed("kcot_").expect("valid prefix");
        let session = format.generate().expect("os rng");
        assert_eq!(session.expose_secret().len(), ONE_TIME_TOKEN_LEN);
        assert!(OneTimeToken::parse(session.expose_secret()).is_err());
        let plain = crate::Token::generate().expect("os rng");
        assert!(OneTimeToken::parse(plain.expose_secret()).is_err());
        assert!(crate::TokenFormat::plain()
            .parse(fresh().expose_secret())
            .is_err());
    }

    #[test]
    fn known_shapes_are_refused() {
        let t = fresh();
        let s = t.expose_secret();
        for bad in [
            String::new(),
            "kcot_".into(),
            s[..s.len() - 1].into(),
            format!("{s}A"),
            s.replacen("kcot_", "kcoT_", 1),
            s.replacen('.', "!", 1),
            "é".repeat(39),
            s.to_uppercase(),
        ] {
            assert_eq!(OneTimeToken::parse(&bad).err(), Some(MALFORMED), "{bad:?}");
        }
        assert_eq!(
            MALFORMED.to_string(),
            "the one-time token is malformed; use the link exactly as it was sent"
        );
    }

    proptest! {
        #[test]
        fn parsing_any_string_never_panics(s in ".{0,120}") {
            let _ = OneTimeToken::parse(&s);
            let _ = s.parse::<OneTimeId>();
            let _ = parse_id_and_digest(&s);
        }

        #[test]
        fn parsing_token_shaped_noise_never_panics(
            body in "[A-Za-z0-9_-]{22}[.!][A-Za-z0-9_-]{43}",
            sum in "[_-][0-9A-Za-z]{6}",
        ) {
            let s = format!("kcot_{body}{sum}");
            if let Ok(t) = OneTimeToken::parse(&s) {
                prop_assert_eq!(t.expose_secret(), s.as_str());
            }
        }

        /// Every token round-trips, whoever it is for, and any single-character change to it
        /// is refused.
        #[test]
        fn tokens_round_trip_and_changes_are_refused(
            user in ".{0,40}",
            at in any::<prop::sample::Index>(),
            with in any::<char>(),
        ) {
            let user = UserId::new(user);
            let t = OneTimeToken::generate(&user).expect("os rng");
            let s = t.expose_secret();
            let parsed = OneTimeToken::parse(s).expect("parses");
            prop_assert_eq!(parsed.id(), t.id());
            prop_assert_eq!(parsed.secret_hash(), t.secret_hash());
            prop_assert_eq!(t.id().shard(), shard_of(&user));
            let i = at.index(s.len());
            prop_assume!(!s[i..].starts_with(with));
            let changed = format!("{}{with}{}", &s[..i], &s[i + 1..]);
            prop_assert!(OneTimeToken::parse(&changed).is_err(), "{changed:?}");
        }
    }
}
