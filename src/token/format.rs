//! Token formats: how a token is spelled (plain, or prefixed with a checksum), generated
//! and parsed. See the [parent module](super) for the formats and why each exists.

use std::fmt;

use rand::TryRngCore as _;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use super::decode_exact;
use super::{
    SecretHash, SessionId, Token, BASE62, CHECKSUM_LEN, CHECKSUM_SEPARATOR, ID_BYTES, ID_LEN,
    MALFORMED, SECRET_BYTES, SECRET_LEN, TOKEN_LEN,
};
use crate::error::{RandomnessError, TokenError};

/// How tokens are spelled: plain `<id>.<secret>` (the default) or with a prefix and a
/// checksum, `myapp_<id>.<secret>_<checksum>`, which secret scanners can find and which fails
/// fast on typos. Set it with
/// [`AuthenticatorBuilder::token_format`](crate::AuthenticatorBuilder::token_format).
///
/// Every format parses the tokens it may meet, so switching costs no session: plain tokens
/// parse under every format, and [`plain`](Self::plain) also parses prefixed tokens with any
/// well-formed prefix; a [`prefixed`](Self::prefixed) format refuses other prefixes, so
/// changing the prefix ends the sessions issued under the old one.
///
/// The prefix is part of the credential: a prefixed token's [`SecretHash`] covers its prefix
/// and its secret, so stripping the prefix and checksum from a token (or adding them to a
/// plain one) gives a string that names the same session but does not verify. Each session
/// has exactly one spelling.
///
/// ```
/// use keycard::{Error, Token, TokenFormat};
/// let format = TokenFormat::prefixed("myapp_")?;
/// let token = format.generate()?;
/// let s = token.expose_secret();
/// assert!(s.starts_with("myapp_"));
/// assert_eq!(s.len(), format.token_len());
/// assert_eq!(format.parse(s)?.id(), token.id());
/// // A typo fails the checksum: refused without a store lookup.
/// let typo = s.replacen("myapp_", "myapq_", 1);
/// let refused = TokenFormat::plain().parse(&typo).map_err(Error::from);
/// assert!(matches!(refused, Err(Error::MalformedToken)));
/// // Plain tokens, issued before the prefix was turned on, still parse.
/// let old = Token::generate()?;
/// assert_eq!(format.parse(old.expose_secret())?.id(), old.id());
/// // Prefixes are checked when the format is made.
/// assert!(TokenFormat::prefixed("my-app").is_err());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct TokenFormat {
    prefix: [u8; TokenFormat::MAX_PREFIX_LEN],
    /// The prefix's length; 0 for the plain format.
    pub(super) len: u8,
}

impl TokenFormat {
    /// The shortest prefix [`prefixed`](Self::prefixed) accepts.
    pub const MIN_PREFIX_LEN: usize = 2;
    /// The longest prefix [`prefixed`](Self::prefixed) accepts.
    pub const MAX_PREFIX_LEN: usize = 16;
    /// The length of the longest token any format makes or accepts.
    pub const MAX_TOKEN_LEN: usize = Self::MAX_PREFIX_LEN + TOKEN_LEN + 1 + CHECKSUM_LEN;

    /// The plain format, `<id>.<secret>` ([`TOKEN_LEN`] characters): the default.
    ///
    /// Parsing with it accepts plain tokens and prefixed tokens with any well-formed prefix
    /// and a valid checksum (so a service that turns its prefix off keeps its sessions).
    pub const fn plain() -> Self {
        Self {
            prefix: [0; Self::MAX_PREFIX_LEN],
            len: 0,
        }
    }

    /// The scanner-friendly format `<prefix><id>.<secret>_<checksum>`: the checksum is the
    /// CRC-32 of everything before it, as 6 base62 characters.
    ///
    /// Parsing with it accepts plain tokens and tokens with this prefix and a valid checksum;
    /// any other prefix is a [`TokenError`].
    ///
    /// Pick a prefix that names your service (`myapp_`, `acme_live_`) and register the
    /// pattern `<prefix>[A-Za-z0-9_-]{22}\.[A-Za-z0-9_-]{43}_[0-9A-Za-z]{6}` with your secret
    /// scanners.
    ///
    /// # Errors
    /// [`InvalidTokenPrefix`] unless `prefix` is 2 to 16 characters of `[A-Za-z0-9_]`,
    /// starting with a letter and ending with `_` (`myapp_`, `kc_live_`).
    pub fn prefixed(prefix: &str) -> Result<Self, InvalidTokenPrefix> {
        if let Err(reason) = check_prefix(prefix.as_bytes()) {
            return Err(InvalidTokenPrefix {
                prefix: prefix.to_owned(),
                reason,
            });
        }
        let mut bytes = [0; Self::MAX_PREFIX_LEN];
        let len = prefix.len();
        bytes
            .get_mut(..len)
            .ok_or_else(|| InvalidTokenPrefix {
                prefix: prefix.to_owned(),
                reason: "it is too long",
            })?
            .copy_from_slice(prefix.as_bytes());
        Ok(Self {
            prefix: bytes,
            len: u8::try_from(len).map_err(|_| InvalidTokenPrefix {
                prefix: prefix.to_owned(),
                reason: "it is too long",
            })?,
        })
    }

    /// The prefix, or `None` for the plain format.
    pub fn prefix(&self) -> Option<&str> {
        std::str::from_utf8(self.prefix_bytes())
            .ok()
            .filter(|p| !p.is_empty())
    }

    /// Whether `token` starts with this format's prefix (never for the plain format). One
    /// comparison of two 16-byte values, on every validate: cheaper than
    /// [`prefix`](Self::prefix), which checks the prefix is UTF-8, or a slice comparison,
    /// which calls `memcmp`.
    #[inline]
    pub(crate) fn starts(&self, token: &str) -> bool {
        self.len > 0 && self.is_prefix_of(token.as_bytes(), self.len)
    }

    /// Whether the first `len` bytes of `token` are this format's prefix, `len` long.
    #[inline]
    fn is_prefix_of(&self, token: &[u8], len: u8) -> bool {
        len == self.len && padded_prefix(token, len) == self.prefix
    }

    pub(super) fn prefix_bytes(&self) -> &[u8] {
        self.prefix.get(..usize::from(self.len)).unwrap_or(&[])
    }

    /// The length of the tokens this format generates: [`TOKEN_LEN`] for the plain format,
    /// the prefix's length + 73 for a prefixed one.
    pub fn token_len(&self) -> usize {
        match self.len {
            0 => TOKEN_LEN,
            n => usize::from(n) + TOKEN_LEN + 1 + CHECKSUM_LEN,
        }
    }

    /// Generates a fresh token in this format (128-bit random id, 256-bit secret, from the
    /// operating system's CSPRNG).
    ///
    /// # Errors
    /// [`RandomnessError`] if the operating system cannot supply random bytes.
    pub fn generate(&self) -> Result<Token, RandomnessError> {
        let mut id = [0u8; ID_BYTES];
        let mut secret = Zeroizing::new([0u8; SECRET_BYTES]);
        let mut rng = rand::rngs::OsRng;
        rng.try_fill_bytes(&mut id).map_err(RandomnessError::new)?;
        rng.try_fill_bytes(secret.as_mut())
            .map_err(RandomnessError::new)?;
        Ok(Token::from_parts(SessionId(id), *secret, self))
    }

    /// Parses a client's token: a plain one, or a prefixed one this format accepts (see
    /// [`plain`](Self::plain) and [`prefixed`](Self::prefixed)). Looks at no store; the only
    /// allocation is the returned token's copy of `s`.
    ///
    /// Every accepted string is the one spelling of its token: the base64url parts must be
    /// canonical, the prefix and separators exact and the checksum in its one encoding.
    ///
    /// # Errors
    /// [`TokenError`] for anything else, including a prefixed token with a wrong checksum or
    /// a prefix this format does not accept (`From<TokenError> for Error` gives
    /// [`Error::MalformedToken`](crate::Error::MalformedToken)).
    pub fn parse(&self, s: &str) -> Result<Token, TokenError> {
        let (prefix_len, id, secret) = self.split(s, Crc::Verify)?;
        Ok(Token {
            id,
            secret,
            encoded: s.to_owned(),
            prefix_len,
        })
    }

    /// Parses a client's token for a check without keeping it: the session id and the digest
    /// a store keeps ([`Token::secret_hash`]). Accepts exactly what [`parse`](Self::parse)
    /// accepts, but allocates nothing (the validate path before a store round trip), and the
    /// decoded secret is zeroized.
    ///
    /// # Errors
    /// As [`parse`](Self::parse).
    pub(crate) fn parse_id_and_digest(
        &self,
        s: &str,
    ) -> Result<(SessionId, SecretHash), TokenError> {
        let (prefix_len, id, secret) = self.split(s, Crc::Verify)?;
        let secret = Zeroizing::new(secret);
        Ok((id, digest(s.as_bytes(), prefix_len, &secret)))
    }

    /// As [`parse_id_and_digest`](Self::parse_id_and_digest), for a lookup that needs no
    /// round trip (a store or cache that answers from memory): everything is checked but a
    /// prefixed token's checksum (its CRC-32 and its spelling), and the digest is computed
    /// only when asked for, so a caller that may find no session (a store that cannot answer
    /// at once) hashes nothing.
    ///
    /// The checksum is left out because the digest covers its characters
    /// ([`Token::secret_hash`]): a found session whose digest matches proves the checksum
    /// right. A caller that refuses the token asks [`CheckedToken::checksum_holds`], to
    /// refuse a mistyped one as malformed; before a store round trip it parses again with
    /// [`parse_id_and_digest`](Self::parse_id_and_digest), which checks the checksum.
    ///
    /// # Errors
    /// As [`parse`](Self::parse), but for a wrong checksum.
    pub(crate) fn parse_for_lookup<'s>(&self, s: &'s str) -> Result<CheckedToken<'s>, TokenError> {
        let (prefix_len, id, secret) = self.split(s, Crc::Defer)?;
        Ok(CheckedToken {
            id,
            token: s.as_bytes(),
            secret: Zeroizing::new(secret),
            prefix_len,
        })
    }

    /// The prefix length, session id and secret of `s`, checked as [`parse`](Self::parse)
    /// says (the CRC-32 only if `crc` asks), without allocating.
    fn split(&self, s: &str, crc: Crc) -> Result<(u8, SessionId, [u8; SECRET_BYTES]), TokenError> {
        let prefix_len = match s.len() {
            TOKEN_LEN => 0,
            _ => self.check_wrapping(s.as_bytes(), crc)?,
        };
        // The prefix is ASCII, so these are character boundaries; `get` refuses otherwise.
        let body = s.get(prefix_len..prefix_len + TOKEN_LEN).ok_or(MALFORMED)?;
        // One call site, so the body's parse is inlined for plain and prefixed tokens alike.
        let (id, secret) = parse_body(body)?;
        let prefix_len = u8::try_from(prefix_len).map_err(|_| MALFORMED)?;
        Ok((prefix_len, id, secret))
    }

    /// Checks the prefix and checksum around a prefixed token's body (the checksum, its
    /// spelling and CRC-32, only if `crc` asks); returns the prefix's length.
    fn check_wrapping(&self, bytes: &[u8], crc: Crc) -> Result<usize, TokenError> {
        let prefix_len = bytes
            .len()
            .checked_sub(TOKEN_LEN + 1 + CHECKSUM_LEN)
            .filter(|n| (Self::MIN_PREFIX_LEN..=Self::MAX_PREFIX_LEN).contains(n))
            .ok_or(MALFORMED)?;
        let (prefix, rest) = bytes.split_at(prefix_len);
        match self.len {
            0 => check_prefix(prefix).map_err(|_| MALFORMED)?,
            _ if !self.is_prefix_of(bytes, u8::try_from(prefix_len).unwrap_or(0)) => {
                return Err(MALFORMED)
            }
            _ => {}
        }
        // The checksum's spelling is part of the CRC check (a character outside base62
        // decodes to nothing), so a deferred check defers it too: the digest covers the
        // checksum's characters, and a refusal checks them.
        if rest.get(TOKEN_LEN) != Some(&CHECKSUM_SEPARATOR)
            || matches!(crc, Crc::Verify) && !checksum_matches(bytes)
        {
            return Err(MALFORMED);
        }
        Ok(prefix_len)
    }
}

/// Whether a parse computes a prefixed token's CRC-32 now or leaves it to the caller
/// ([`TokenFormat::parse_for_lookup`]).
#[derive(Clone, Copy)]
enum Crc {
    Verify,
    Defer,
}

/// A client's token parsed for a lookup ([`TokenFormat::parse_for_lookup`]): its session
/// id, and what the digest and the checksum need (the secret zeroized on drop). Small, as it
/// is returned by value on every validate.
pub(crate) struct CheckedToken<'s> {
    pub(crate) id: SessionId,
    /// The whole token as the client sent it.
    token: &'s [u8],
    secret: Zeroizing<[u8; SECRET_BYTES]>,
    /// The prefix's length; 0 for a plain token (which has no checksum either).
    prefix_len: u8,
}

impl CheckedToken<'_> {
    /// The digest a store keeps for this token ([`Token::secret_hash`]).
    pub(crate) fn digest(&self) -> SecretHash {
        digest(self.token, self.prefix_len, &self.secret)
    }

    /// Whether a prefixed token's checksum is its CRC-32 (always true for a plain token).
    pub(crate) fn checksum_holds(&self) -> bool {
        self.prefix_len == 0 || checksum_matches(self.token)
    }
}

/// Whether a prefixed token's last 6 characters spell the CRC-32 of everything before them.
/// Decoding the 6 characters and comparing numbers is the same test as encoding the CRC and
/// comparing text (each value has one 6-digit spelling), with less work.
fn checksum_matches(token: &[u8]) -> bool {
    let (signed, sum) = token.split_at(token.len() - CHECKSUM_LEN);
    decode_checksum(sum) == Some(crc32fast::hash(signed))
}

/// The digest a store keeps for `token`, a well-formed token whose prefix is `prefix_len`
/// bytes long and whose secret is `secret` ([`Token::secret_hash`]): SHA-256 of the secret,
/// for a prefixed token followed by the prefix and the checksum's characters.
#[inline]
pub(super) fn digest(token: &[u8], prefix_len: u8, secret: &[u8; SECRET_BYTES]) -> SecretHash {
    if prefix_len == 0 {
        // The common case inline, in one SHA-256 call.
        return SecretHash(Sha256::digest(secret).into());
    }
    digest_of(secret, token, prefix_len)
}

/// The first `prefix_len` bytes of `token` (at most [`TokenFormat::MAX_PREFIX_LEN`]), padded
/// with zero bytes to [`TokenFormat::MAX_PREFIX_LEN`]: one 16-byte load and a mask, where a
/// copy of a variable length costs a `memcpy` call, or a loop of byte stores.
#[inline]
fn padded_prefix(token: &[u8], prefix_len: u8) -> [u8; TokenFormat::MAX_PREFIX_LEN] {
    let mut head = [0; TokenFormat::MAX_PREFIX_LEN];
    match token.first_chunk::<{ TokenFormat::MAX_PREFIX_LEN }>() {
        Some(first) => head = *first,
        // Too short for any prefixed token: a client's odd input, on the slow path.
        None => head[..token.len()].copy_from_slice(token),
    }
    let bits = 8 * u32::from(prefix_len);
    let mask = u128::MAX.checked_shr(128 - bits.min(128)).unwrap_or(0);
    (u128::from_le_bytes(head) & mask).to_le_bytes()
}

/// A prefixed token's digest: SHA-256 of the secret, the prefix padded with zero bytes to
/// [`TokenFormat::MAX_PREFIX_LEN`] (a prefix has no zero byte, so the padding is
/// unambiguous) and the checksum's characters. 32 + 16 + 6 = 54 bytes, one SHA-256 block,
/// and always the same length: hashing parts of fixed lengths is about a quarter of the cost
/// of hashing a prefix of the token's own length (BENCHMARKS.md "API tokens").
///
/// The order and the padding are chosen for the hasher's block buffer: the secret fills its
/// first 32 bytes and the padded prefix the next 16, each written whole, so the SHA-256
/// rounds read them back without a store-forwarding stall. With the 6 checksum bytes in the
/// middle, every later 16-byte read straddled two writes, and the digest cost about 10 ns
/// more than a plain token's; in this order it costs about 1 ns more. Not inlined: in the
/// validate path, the inlined copy slowed prefixed tokens' validates by about 3 %.
#[inline(never)]
fn digest_of(secret: &[u8; SECRET_BYTES], token: &[u8], prefix_len: u8) -> SecretHash {
    // A well-formed prefixed token is longer than its checksum; a zeroed checksum (never
    // reached) would only give a digest that matches nothing.
    let sum = token
        .last_chunk::<CHECKSUM_LEN>()
        .unwrap_or(&[0; CHECKSUM_LEN]);
    // Padded here, not by the caller: a 16-byte value the caller had just written to memory
    // would be read back before the write completes (a store-forwarding stall).
    let prefix = padded_prefix(token, prefix_len);
    let mut digest = Sha256::new();
    digest.update(secret);
    digest.update(prefix);
    digest.update(sum);
    SecretHash(digest.finalize().into())
}

impl Default for TokenFormat {
    /// [`TokenFormat::plain`].
    fn default() -> Self {
        Self::plain()
    }
}

impl fmt::Debug for TokenFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.prefix() {
            None => f.write_str("TokenFormat::plain()"),
            Some(p) => write!(f, "TokenFormat::prefixed({p:?})"),
        }
    }
}

/// [`TokenFormat::prefixed`] was given a prefix it does not accept.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid token prefix {prefix:?}: {reason} (a prefix is 2 to 16 characters of [A-Za-z0-9_], starting with a letter and ending with '_')")]
#[non_exhaustive]
pub struct InvalidTokenPrefix {
    /// The prefix given.
    pub prefix: String,
    /// What is wrong with it.
    pub reason: &'static str,
}

/// Whether `prefix` is a valid token prefix; if not, why.
pub(super) fn check_prefix(prefix: &[u8]) -> Result<(), &'static str> {
    if prefix.len() < TokenFormat::MIN_PREFIX_LEN {
        return Err("it is too short");
    }
    if prefix.len() > TokenFormat::MAX_PREFIX_LEN {
        return Err("it is too long");
    }
    if !prefix.first().is_some_and(u8::is_ascii_alphabetic) {
        return Err("it does not start with a letter");
    }
    if prefix.last() != Some(&b'_') {
        return Err("it does not end with '_'");
    }
    if !prefix
        .iter()
        .all(|&c| c.is_ascii_alphanumeric() || c == b'_')
    {
        return Err("it has a character outside [A-Za-z0-9_]");
    }
    Ok(())
}

/// Parses `<22 base64url chars>.<43 base64url chars>`.
#[inline]
pub(super) fn parse_body(s: &str) -> Result<(SessionId, [u8; SECRET_BYTES]), TokenError> {
    if s.len() != TOKEN_LEN {
        return Err(MALFORMED);
    }
    // The separator sits at a fixed place: the id is exactly `ID_LEN` characters. (A dot
    // anywhere else is outside base64url, so the decodes below refuse it.)
    if s.as_bytes().get(ID_LEN) != Some(&b'.') {
        return Err(MALFORMED);
    }
    let (id, secret) = (s.get(..ID_LEN), s.get(ID_LEN + 1..));
    let (Some(id), Some(secret)) = (id, secret) else {
        return Err(MALFORMED);
    };
    let id = id.parse::<SessionId>()?;
    let secret = decode_exact::<SECRET_BYTES>(secret, SECRET_LEN)?;
    // Decoding is canonical (trailing bits must be zero), so `s` is the one spelling.
    Ok((id, secret))
}

/// The checksum of a prefixed token: CRC-32 (IEEE) of `signed`, as 6 base62 digits, most
/// significant first, zero-padded.
pub(super) fn checksum(signed: &[u8]) -> [u8; CHECKSUM_LEN] {
    let mut n = crc32fast::hash(signed);
    let mut out = [BASE62[0]; CHECKSUM_LEN];
    for c in out.iter_mut().rev() {
        // `n % 62 < 62`, so the index is in range.
        *c = BASE62[(n % 62) as usize];
        n /= 62;
    }
    out
}

/// The number a checksum spells ([`checksum`] backwards): `None` if a character is not a
/// base62 digit or the number does not fit a CRC-32.
#[inline]
pub(super) fn decode_checksum(sum: &[u8]) -> Option<u32> {
    let mut n: u64 = 0;
    let mut invalid = 0u8;
    for &c in sum {
        let digit = BASE62_DIGITS[usize::from(c)];
        invalid |= digit;
        n = n * 62 + u64::from(digit & 0x3f);
    }
    // Non-digits map to 0x40 and above (0xff), digits below 62.
    match invalid & 0x40 {
        0 => u32::try_from(n).ok(),
        _ => None,
    }
}

/// The value of each byte as a base62 digit, or 0xff.
const BASE62_DIGITS: [u8; 256] = {
    let mut table = [0xff_u8; 256];
    let mut i = 0;
    while i < BASE62.len() {
        table[BASE62[i] as usize] = i as u8;
        i += 1;
    }
    table
};
