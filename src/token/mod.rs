//! Opaque bearer tokens: generation, parsing and hashing. The only module that sees secrets.
//!
//! A token is `<session id>.<secret>`, both base64url without padding:
//!
//! - the **session id** is 128 random bits (22 characters). It is public: stores key sessions
//!   by it, and it is safe to log and to show in a list of a user's sessions;
//! - the **secret** is 256 bits from the operating system's CSPRNG (43 characters). It leaves
//!   the process once, in the login response. Stores keep only its SHA-256 digest
//!   ([`SecretHash`]), and [`SecretHash::verify`] compares digests in constant time.
//!
//! A dump of the session store therefore yields no usable token. The whole token is 66 ASCII
//! characters from `[A-Za-z0-9_-.]`, safe in a URL query, a header or a JSON string.
//!
//! # Scanner-friendly tokens
//!
//! [`TokenFormat::prefixed`] wraps the same two parts in a prefix of your choosing and a
//! checksum: `myapp_<session id>.<secret>_<checksum>`, where the checksum is the CRC-32 of
//! everything before it, as 6 base62 characters (`[0-9A-Za-z]`). The prefix lets secret
//! scanners (GitHub secret scanning, gitleaks, trufflehog) find leaked tokens with a precise
//! pattern, and the checksum lets them, and keycard, tell a real token from a look-alike
//! without asking anyone: a token with a wrong checksum is refused as
//! [`TokenError`] ([`Error::MalformedToken`](crate::Error::MalformedToken) from the
//! authenticator) before any store round trip.
//!
//! Every format parses every token it might meet, so switching costs no session:
//!
//! - plain tokens (`<id>.<secret>`) are accepted whatever the format, so turning a prefix on
//!   does not log anyone out;
//! - [`TokenFormat::plain`] (the default, and `Token::from_str`) also accepts prefixed tokens
//!   with any well-formed prefix and a valid checksum, so turning a prefix off does not
//!   either;
//! - [`TokenFormat::prefixed`] accepts its own prefix only: a token with another prefix is
//!   a [`TokenError`]. Changing the prefix therefore ends the sessions issued under
//!   the old one.
//!
//! The prefix is part of the credential: a prefixed token's [`SecretHash`] covers its secret,
//! its checksum and its prefix, so stripping the prefix and checksum from a token (or adding
//! them to a plain one) gives a string that names the same session but does not verify. Each
//! session has exactly one spelling.
//!
//! Because the digest covers the checksum, a validate against a store that answers from
//! memory (the memory store, the [validation cache](crate::store::CachedTokenStore)) does
//! not compute the CRC for a token it finds: the matching digest proves it. A token it does
//! not find, or whose digest differs, has its checksum checked then, so a mistyped one is
//! still refused as malformed; a store that needs a round trip is asked only about tokens
//! whose checksum holds.

use std::fmt;
use std::str::FromStr;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use subtle::ConstantTimeEq;
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::error::{RandomnessError, TokenError};

mod format;

use format::checksum;
#[cfg(test)]
use format::decode_checksum;
pub use format::{InvalidTokenPrefix, TokenFormat};

const ID_BYTES: usize = 16;
const SECRET_BYTES: usize = 32;
/// Length of a session id in its text form.
const ID_LEN: usize = 22;
/// Length of a secret in its text form.
const SECRET_LEN: usize = 43;
/// Length of a whole token in its text form: `id` + `.` + `secret`.
pub const TOKEN_LEN: usize = ID_LEN + 1 + SECRET_LEN;
/// Length of the checksum of a prefixed token.
const CHECKSUM_LEN: usize = 6;
/// The separator between a prefixed token's body and its checksum.
const CHECKSUM_SEPARATOR: u8 = b'_';
/// The checksum alphabet: base62, in ASCII order.
const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
/// The one parse error.
const MALFORMED: TokenError = TokenError::new();

/// The public half of a token: names one session. Safe to log and display.
///
/// ```
/// use keycard::SessionId;
/// let id: SessionId = "AAECAwQFBgcICQoLDA0ODw".parse()?;
/// assert_eq!(id.to_string(), "AAECAwQFBgcICQoLDA0ODw");
/// assert!("not an id".parse::<SessionId>().is_err());
/// # Ok::<(), keycard::TokenError>(())
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SessionId([u8; ID_BYTES]);

impl SessionId {
    /// The 16 raw bytes.
    pub fn as_bytes(&self) -> &[u8; ID_BYTES] {
        &self.0
    }

    /// Builds an id from its 16 raw bytes (for stores that keep ids as binary).
    pub fn from_bytes(bytes: [u8; ID_BYTES]) -> Self {
        Self(bytes)
    }
}

impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut buf = [0u8; ID_LEN];
        let n = URL_SAFE_NO_PAD
            .encode_slice(self.0, &mut buf)
            .map_err(|_| fmt::Error)?;
        f.write_str(std::str::from_utf8(&buf[..n]).map_err(|_| fmt::Error)?)
    }
}

impl fmt::Debug for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SessionId({self})")
    }
}

impl FromStr for SessionId {
    type Err = TokenError;

    /// # Errors
    /// [`TokenError`] unless `s` is exactly 22 base64url characters.
    fn from_str(s: &str) -> Result<Self, TokenError> {
        decode_exact::<ID_BYTES>(s, ID_LEN).map(Self)
    }
}

impl Serialize for SessionId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for SessionId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// A whole bearer token: session id plus secret. Holds a secret, so its `Debug` is redacted
/// and its memory is zeroized on drop.
///
/// You get one from [`Authenticator::login`](crate::Authenticator::login) and send
/// [`expose_secret`](Token::expose_secret) to the client; on later requests the adapter passes
/// the client's string to [`Authenticator::validate`](crate::Authenticator::validate).
///
/// ```
/// use keycard::Token;
/// let token = Token::generate()?;
/// assert_eq!(token.expose_secret().len(), 66);
/// assert!(!format!("{token:?}").contains(token.expose_secret()));
/// let parsed: Token = token.expose_secret().parse()?;
/// assert_eq!(parsed.id(), token.id());
/// # Ok::<(), keycard::Error>(())
/// ```
///
/// A token may also carry a prefix and a checksum ([`TokenFormat::prefixed`]); parsing with
/// `str::parse` accepts both forms (see [`TokenFormat::plain`]).
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct Token {
    #[zeroize(skip)]
    id: SessionId,
    secret: [u8; SECRET_BYTES],
    encoded: String,
    /// Length of the prefix at the start of `encoded`; 0 for a plain token.
    #[zeroize(skip)]
    prefix_len: u8,
}

impl Token {
    /// Generates a fresh plain token (`<id>.<secret>`): 128-bit random id, 256-bit secret,
    /// both from the operating system's CSPRNG. [`TokenFormat::generate`] makes tokens of
    /// other formats.
    ///
    /// # Errors
    /// [`RandomnessError`] if the operating system cannot supply random bytes.
    pub fn generate() -> Result<Self, RandomnessError> {
        TokenFormat::plain().generate()
    }

    fn from_parts(id: SessionId, secret: [u8; SECRET_BYTES], format: &TokenFormat) -> Self {
        let prefix = format.prefix_bytes();
        let mut encoded = String::with_capacity(format.token_len());
        // The prefix is validated ASCII; the rest is base64url and base62.
        encoded.push_str(format.prefix().unwrap_or(""));
        encoded.push_str(&id.to_string());
        encoded.push('.');
        URL_SAFE_NO_PAD.encode_string(secret, &mut encoded);
        if !prefix.is_empty() {
            encoded.push(char::from(CHECKSUM_SEPARATOR));
            let sum = checksum(encoded.as_bytes());
            sum.iter().for_each(|&c| encoded.push(char::from(c)));
        }
        Self {
            id,
            secret,
            encoded,
            prefix_len: format.len,
        }
    }

    /// The session this token names.
    pub fn id(&self) -> SessionId {
        self.id
    }

    /// The token as the client must send it back. This is the secret: put it in the login
    /// response and nowhere else (not in logs, not in the store).
    pub fn expose_secret(&self) -> &str {
        &self.encoded
    }

    /// The prefix this token carries (`Some("myapp_")`), or `None` for a plain token.
    pub fn prefix(&self) -> Option<&str> {
        self.encoded
            .get(..usize::from(self.prefix_len))
            .filter(|p| !p.is_empty())
    }

    /// The digest a store keeps in place of the secret: SHA-256 of the secret, for a
    /// prefixed token followed by the prefix (padded with zero bytes to
    /// [`TokenFormat::MAX_PREFIX_LEN`]) and the checksum's characters, so a token is valid
    /// in the spelling it was issued in only, and a found session whose digest matches proves
    /// the checksum without computing it.
    pub fn secret_hash(&self) -> SecretHash {
        format::digest(self.encoded.as_bytes(), self.prefix_len, &self.secret)
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Token");
        d.field("id", &self.id);
        if let Some(prefix) = self.prefix() {
            d.field("prefix", &prefix);
        }
        d.field("secret", &"[redacted]").finish()
    }
}

impl FromStr for Token {
    type Err = TokenError;

    /// Parses a client's token as [`TokenFormat::plain`] does: a plain token
    /// (`<22 base64url chars>.<43 base64url chars>`), or a prefixed one with any well-formed
    /// prefix and a valid checksum. Looks at no store.
    ///
    /// # Errors
    /// [`TokenError`] for any other input.
    fn from_str(s: &str) -> Result<Self, TokenError> {
        TokenFormat::plain().parse(s)
    }
}

/// Whether two 32-byte digests are equal, in constant time: compared as four 64-bit words
/// with `subtle` (one optimisation barrier per word; byte by byte costs 32, a fifth of a
/// memory-store validate).
pub(crate) fn digests_equal(a: &[u8; 32], b: &[u8; 32]) -> bool {
    let words = |bytes: &[u8; 32]| -> [u64; 4] {
        let (chunks, _) = bytes.as_chunks::<8>();
        std::array::from_fn(|i| u64::from_ne_bytes(chunks[i]))
    };
    words(a)[..].ct_eq(&words(b)[..]).into()
}

/// SHA-256 of a token's secret: what a store keeps instead of the secret.
///
/// The secret has 256 bits of entropy, so a plain (unsalted, fast) hash is enough: it cannot
/// be brute-forced, and it lets validation cost one digest rather than a password hash.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct SecretHash([u8; 32]);

impl SecretHash {
    /// Compares this stored digest with the digest of `token`'s secret, in constant time.
    pub fn verify(&self, token: &Token) -> bool {
        digests_equal(&self.0, &token.secret_hash().0)
    }

    /// Compares two digests in constant time.
    pub(crate) fn matches(&self, other: &SecretHash) -> bool {
        digests_equal(&self.0, &other.0)
    }

    /// The 32 raw bytes (for stores that keep the digest as binary).
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Rebuilds a digest from its 32 raw bytes.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }
}

impl fmt::Debug for SecretHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretHash(..)")
    }
}

impl Serialize for SecretHash {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&URL_SAFE_NO_PAD.encode(self.0))
    }
}

impl<'de> Deserialize<'de> for SecretHash {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        decode_exact::<32>(&s, 43)
            .map(Self)
            .map_err(|_| serde::de::Error::custom("invalid secret hash"))
    }
}

/// Decodes exactly `N` bytes from exactly `len` base64url characters, straight into the
/// returned array (no intermediate buffer to clean). What a failed decode wrote is zeroized;
/// a caller decoding a secret wraps the result in [`Zeroizing`].
fn decode_exact<const N: usize>(s: &str, len: usize) -> Result<[u8; N], TokenError> {
    if s.len() != len {
        return Err(MALFORMED);
    }
    let mut out = [0u8; N];
    // `len` characters decode to exactly `N` bytes or fail: the engine refuses to write past
    // `out`, and refuses non-canonical input (set trailing bits), so each value has exactly
    // one spelling and a token cannot be varied without changing its bytes.
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
    use sha2::{Digest, Sha256};

    #[test]
    fn digests_equal_tells_every_byte() {
        let a: [u8; 32] = std::array::from_fn(|i| i as u8);
        assert!(digests_equal(&a, &a));
        for i in 0..32 {
            for bit in 0..8 {
                let mut b = a;
                b[i] ^= 1 << bit;
                assert!(!digests_equal(&a, &b), "byte {i} bit {bit}");
            }
        }
    }

    #[test]
    fn generated_tokens_round_trip_and_differ() {
        let a = Token::generate().expect("os rng");
        let b = Token::generate().expect("os rng");
        assert_ne!(a.expose_secret(), b.expose_secret());
        assert_ne!(a.id(), b.id());
        assert_eq!(a.expose_secret().len(), TOKEN_LEN);
        let parsed: Token = a.expose_secret().parse().expect("own token parses");
        assert_eq!(parsed.id(), a.id());
        assert!(a.secret_hash().verify(&parsed));
        assert!(!a.secret_hash().verify(&b));
    }

    #[test]
    fn debug_never_shows_the_secret() {
        let t = Token::generate().expect("os rng");
        let secret_part = t.expose_secret().split_once('.').expect("has a dot").1;
        let dbg = format!("{t:?} {:?}", t.secret_hash());
        assert!(!dbg.contains(secret_part), "{dbg}");
        assert!(dbg.contains("[redacted]"));
    }

    #[test]
    fn a_token_with_a_changed_secret_does_not_verify() {
        let t = Token::generate().expect("os rng");
        let mut forged = t.expose_secret().to_owned();
        let last = forged.pop().expect("non-empty");
        forged.push(if last == 'A' { 'Q' } else { 'A' });
        // Either the forgery is non-canonical (malformed) or it verifies false.
        if let Ok(f) = forged.parse::<Token>() {
            assert_eq!(f.id(), t.id());
            assert!(!t.secret_hash().verify(&f));
        }
    }

    #[test]
    fn each_token_has_exactly_one_spelling() {
        let t = Token::generate().expect("os rng");
        let s = t.expose_secret();
        // The last base64 character carries 2 padding bits; any other value for them is refused.
        let last = s.chars().last().expect("non-empty");
        let alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        let accepted = alphabet
            .chars()
            .filter(|&c| format!("{}{c}", &s[..s.len() - 1]).parse::<Token>().is_ok())
            .collect::<Vec<_>>();
        assert_eq!(
            accepted.len(),
            16,
            "only the 16 canonical final characters decode"
        );
        assert!(accepted.contains(&last));
    }

    #[test]
    fn rejects_wrong_shapes() {
        let t = Token::generate().expect("os rng");
        let s = t.expose_secret();
        for bad in [
            "",
            ".",
            &s[..TOKEN_LEN - 1],
            &format!("{s}A"),
            &s.replace('.', "!"),
            &format!("{}+{}", &s[..22], &s[23..]),
            &"é".repeat(33),
        ] {
            assert!(
                matches!(bad.parse::<Token>(), Err(TokenError { .. })),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn parse_errors_are_opaque_and_become_malformed_token() {
        let t = Token::generate().expect("os rng");
        let e = t.expose_secret()[1..]
            .parse::<Token>()
            .expect_err("too short");
        let id = "not an id".parse::<SessionId>().expect_err("not an id");
        let prefix = myapp()
            .parse(&"x".repeat(TOKEN_LEN + 14))
            .expect_err("no checksum");
        for e in [e, id, prefix] {
            assert_eq!(e, MALFORMED, "one error whatever failed: nothing to probe");
            assert_eq!(
                e.to_string(),
                "the token is malformed; send it exactly as issued"
            );
            assert!(std::error::Error::source(&e).is_none());
            assert!(matches!(
                crate::Error::from(e),
                crate::Error::MalformedToken
            ));
        }
        // Stores wrap it as corrupt data.
        let store = crate::StoreError::corrupt(id);
        assert!(matches!(store, crate::StoreError::Corrupt(_)));
    }

    #[test]
    fn serde_round_trips_public_parts() {
        let t = Token::generate().expect("os rng");
        let json = serde_json::to_string(&(t.id(), t.secret_hash())).expect("serializes");
        let (id, hash): (SessionId, SecretHash) = serde_json::from_str(&json).expect("parses");
        assert_eq!(id, t.id());
        assert!(hash.verify(&t));
        assert!(!json.contains(t.expose_secret().split_once('.').expect("dot").1));
    }

    fn myapp() -> TokenFormat {
        TokenFormat::prefixed("myapp_").expect("valid prefix")
    }

    /// The lookup parse leaves a prefixed token's checksum (CRC and spelling) to its caller,
    /// and the digest covers the checksum: a token whose checksum alone is wrong parses for
    /// the lookup, says its checksum does not hold, and does not match the real token's
    /// digest.
    #[test]
    fn the_digest_covers_the_checksum_that_the_lookup_parse_leaves_unchecked() {
        let t = myapp().generate().expect("os rng");
        let s = t.expose_secret();
        let real = myapp().parse_for_lookup(s).expect("parses");
        assert_eq!(real.id, t.id());
        assert!(real.checksum_holds());
        assert!(real.digest().matches(&t.secret_hash()));

        let (signed, sum) = s.split_at(s.len() - CHECKSUM_LEN);
        let n = decode_checksum(sum.as_bytes()).expect("a checksum");
        let mut other = [BASE62[0]; CHECKSUM_LEN];
        let mut m = n ^ 1;
        for c in other.iter_mut().rev() {
            *c = BASE62[(m % 62) as usize];
            m /= 62;
        }
        let wrong = format!("{signed}{}", std::str::from_utf8(&other).expect("ascii"));
        assert!(myapp().parse(&wrong).is_err(), "the full parse refuses it");
        assert!(myapp().parse_id_and_digest(&wrong).is_err());
        let deferred = myapp()
            .parse_for_lookup(&wrong)
            .expect("the CRC is deferred");
        assert_eq!(deferred.id, t.id());
        assert!(!deferred.checksum_holds());
        assert!(!deferred.digest().matches(&t.secret_hash()));
        // A checksum that is not 6 base62 digits is deferred the same way, and refused by
        // the full parse.
        let unspelled = format!("{signed}00000!");
        assert!(myapp().parse(&unspelled).is_err());
        let deferred = myapp()
            .parse_for_lookup(&unspelled)
            .expect("the spelling is deferred with the CRC");
        assert!(!deferred.checksum_holds());
        assert!(!deferred.digest().matches(&t.secret_hash()));
        // Plain tokens have no checksum to defer.
        let p = Token::generate().expect("os rng");
        let plain = TokenFormat::plain()
            .parse_for_lookup(p.expose_secret())
            .expect("parses");
        assert!(plain.checksum_holds());
        assert!(plain.digest().matches(&p.secret_hash()));
    }

    #[test]
    fn a_prefixed_digest_hashes_the_secret_the_padded_prefix_and_the_checksum() {
        // Pinned: stores keep this digest, so changing it ends every prefixed session.
        let secret = [7u8; SECRET_BYTES];
        for prefix in ["kc_", "kcpat_", "sixteen_chars_k_"] {
            let format = TokenFormat::prefixed(prefix).expect("a valid prefix");
            let t = Token::from_parts(SessionId([1; ID_BYTES]), secret, &format);
            let s = t.expose_secret().as_bytes();
            let mut padded = [0u8; TokenFormat::MAX_PREFIX_LEN];
            padded[..prefix.len()].copy_from_slice(prefix.as_bytes());
            let expected = Sha256::new()
                .chain_update(secret)
                .chain_update(padded)
                .chain_update(&s[s.len() - CHECKSUM_LEN..])
                .finalize();
            assert_eq!(t.secret_hash().as_bytes(), expected.as_slice(), "{prefix}");
            let parsed = format.parse_for_lookup(t.expose_secret()).expect("parses");
            assert!(parsed.digest().matches(&t.secret_hash()), "{prefix}");
        }
    }

    #[test]
    fn a_format_starts_only_tokens_with_its_prefix() {
        let api = TokenFormat::prefixed("kcpat_").expect("a valid prefix");
        let token = api.generate().expect("os rng");
        assert!(api.starts(token.expose_secret()));
        assert!(!myapp().starts(token.expose_secret()));
        assert!(
            !TokenFormat::plain().starts(token.expose_secret()),
            "plain has no prefix"
        );
        assert!(!api.starts("kcpat"));
        assert!(!api.starts(""));
        assert!(api.starts("kcpat_"), "shorter than 16 bytes");
        assert!(api.starts("kcpat_x"));
        assert!(!api.starts("kcpaT_x"));
    }

    proptest! {
        /// `starts` (a masked 16-byte comparison) answers as `starts_with` would, for every
        /// prefix length and tokens shorter and longer than 16 bytes.
        #[test]
        fn starts_agrees_with_a_byte_comparison(
            prefix in "[a-c][a-c_]{0,14}_",
            token in "[a-c_]{0,24}",
            lead in proptest::bool::ANY,
        ) {
            let format = TokenFormat::prefixed(&prefix).expect("a valid prefix");
            // Half the cases start with the prefix, so both answers are exercised.
            let token = if lead { format!("{prefix}{token}") } else { token };
            prop_assert_eq!(format.starts(&token), token.starts_with(prefix.as_str()));
        }
    }

    #[test]
    fn parse_id_and_digest_agrees_with_token_parsing() {
        for format in [TokenFormat::plain(), myapp()] {
            let t = format.generate().expect("os rng");
            let (id, digest) = format
                .parse_id_and_digest(t.expose_secret())
                .expect("parses");
            assert_eq!(id, t.id());
            assert!(digest.matches(&t.secret_hash()));
            assert!(!digest.matches(&format.generate().expect("os rng").secret_hash()));
            for bad in [
                "",
                ".",
                &t.expose_secret()[1..],
                &t.expose_secret().replace('.', "!"),
            ] {
                assert!(format.parse_id_and_digest(bad).is_err(), "{bad:?}");
                assert!(format.parse_for_lookup(bad).is_err(), "{bad:?}");
            }
        }
    }

    #[test]
    fn prefixed_tokens_round_trip() {
        let format = myapp();
        let t = format.generate().expect("os rng");
        let s = t.expose_secret();
        assert_eq!(s.len(), 6 + TOKEN_LEN + 1 + CHECKSUM_LEN);
        assert_eq!(s.len(), format.token_len());
        assert!(s.starts_with("myapp_"));
        assert_eq!(s.as_bytes()[6 + TOKEN_LEN], b'_');
        assert!(s[s.len() - CHECKSUM_LEN..]
            .bytes()
            .all(|c| c.is_ascii_alphanumeric()));
        assert_eq!(t.prefix(), Some("myapp_"));
        assert_eq!(&s[6..28], t.id().to_string());
        for parser in [format, TokenFormat::plain()] {
            let parsed = parser.parse(s).expect("own token parses");
            assert_eq!(parsed.id(), t.id());
            assert_eq!(parsed.expose_secret(), s);
            assert_eq!(parsed.prefix(), Some("myapp_"));
            assert!(t.secret_hash().verify(&parsed));
        }
        let parsed: Token = s.parse().expect("FromStr accepts prefixed tokens");
        assert!(t.secret_hash().verify(&parsed));
    }

    #[test]
    fn the_checksum_is_crc32_in_base62() {
        let t = myapp().generate().expect("os rng");
        let s = t.expose_secret();
        let (signed, sum) = s.split_at(s.len() - CHECKSUM_LEN);
        let mut n = u64::from(crc32fast::hash(signed.as_bytes()));
        let mut decoded = 0u64;
        for c in sum.bytes() {
            let digit = BASE62.iter().position(|&d| d == c).expect("base62 digit");
            decoded = decoded * 62 + digit as u64;
        }
        assert_eq!(decoded, n);
        // Independent check of the encoding with a known value: CRC-32("123456789").
        n = u64::from(crc32fast::hash(b"123456789"));
        assert_eq!(n, 0xCBF4_3926);
        // 0xCBF43926 in base62 (0-9A-Za-z), computed independently.
        assert_eq!(&checksum(b"123456789"), b"3jZRME");
        // Decoding is the inverse, and refuses what no CRC-32 spells.
        assert_eq!(decode_checksum(b"3jZRME"), Some(0xCBF4_3926));
        assert_eq!(decode_checksum(b"000000"), Some(0));
        assert_eq!(decode_checksum(b"4gfFC3"), Some(u32::MAX));
        assert_eq!(decode_checksum(b"4gfFC4"), None, "2^32 does not fit");
        assert_eq!(decode_checksum(b"zzzzzz"), None);
        assert_eq!(decode_checksum(b"3jZRM-"), None);
        assert_eq!(decode_checksum(b"3jZRM\xff"), None);
        assert_eq!(&checksum(b""), b"000000");
    }

    #[test]
    fn plain_tokens_parse_under_every_format() {
        let t = Token::generate().expect("os rng");
        for format in [TokenFormat::plain(), myapp()] {
            let parsed = format.parse(t.expose_secret()).expect("plain parses");
            assert_eq!(parsed.prefix(), None);
            assert!(t.secret_hash().verify(&parsed));
        }
    }

    #[test]
    fn a_prefixed_format_refuses_other_prefixes() {
        let other = TokenFormat::prefixed("other_")
            .expect("valid")
            .generate()
            .expect("os rng");
        assert!(matches!(
            myapp().parse(other.expose_secret()),
            Err(TokenError { .. })
        ));
        // Same length, same checksum rule, different prefix: still refused.
        let same_len = TokenFormat::prefixed("myapq_")
            .expect("valid")
            .generate()
            .expect("os rng");
        assert!(matches!(
            myapp().parse(same_len.expose_secret()),
            Err(TokenError { .. })
        ));
        assert!(TokenFormat::plain().parse(other.expose_secret()).is_ok());
    }

    #[test]
    fn a_wrong_checksum_is_malformed() {
        let t = myapp().generate().expect("os rng");
        let s = t.expose_secret();
        for i in 0..s.len() {
            let mut b = s.as_bytes().to_vec();
            b[i] = if b[i] == b'A' { b'B' } else { b'A' };
            let changed = String::from_utf8(b).expect("ascii");
            for format in [myapp(), TokenFormat::plain()] {
                assert!(
                    matches!(format.parse(&changed), Err(TokenError { .. })),
                    "{format:?} accepted a change at {i}"
                );
            }
        }
    }

    #[test]
    fn stripping_or_adding_a_prefix_does_not_verify() {
        let t = myapp().generate().expect("os rng");
        let s = t.expose_secret();
        let stripped = &s[6..6 + TOKEN_LEN];
        let plain = myapp().parse(stripped).expect("a plain token parses");
        assert_eq!(plain.id(), t.id(), "names the same session");
        assert!(!t.secret_hash().verify(&plain), "but does not verify");

        let p = Token::generate().expect("os rng");
        let mut wrapped = format!("myapp_{}_", p.expose_secret());
        let sum = checksum(wrapped.as_bytes());
        wrapped.push_str(std::str::from_utf8(&sum).expect("ascii"));
        let parsed = myapp().parse(&wrapped).expect("well-formed");
        assert_eq!(parsed.id(), p.id());
        assert!(!p.secret_hash().verify(&parsed));
        // Plain digests are unchanged: SHA-256 of the secret alone.
        assert_eq!(
            p.secret_hash().as_bytes(),
            &<[u8; 32]>::from(Sha256::digest(p.secret))
        );
    }

    #[test]
    fn prefix_rules() {
        for ok in ["ab_", "myapp_", "kc_live_", "A_", "x0123456789abcd_"] {
            let f = TokenFormat::prefixed(ok).unwrap_or_else(|e| panic!("{ok}: {e}"));
            assert_eq!(f.prefix(), Some(ok));
            assert_eq!(f.generate().expect("os rng").prefix(), Some(ok));
        }
        for bad in [
            "",
            "_",
            "a",
            "myapp",
            "my-app_",
            "1app_",
            "_app_",
            "myapp._",
            "my app_",
            "appé_",
            "x0123456789abcde_",
            "myapp_\n",
        ] {
            let e = TokenFormat::prefixed(bad).expect_err(bad);
            assert_eq!(e.prefix, bad);
            assert!(e.to_string().contains("invalid token prefix"), "{e}");
        }
        assert_eq!(TokenFormat::default(), TokenFormat::plain());
        assert_eq!(TokenFormat::plain().prefix(), None);
        assert_eq!(TokenFormat::plain().token_len(), TOKEN_LEN);
        assert_eq!(TokenFormat::MAX_TOKEN_LEN, 16 + 73);
        assert_eq!(
            format!("{:?}", myapp()),
            "TokenFormat::prefixed(\"myapp_\")"
        );
    }

    #[test]
    fn prefixed_debug_never_shows_the_secret() {
        let t = myapp().generate().expect("os rng");
        let s = t.expose_secret();
        let dbg = format!("{t:?}");
        assert!(!dbg.contains(&s[29..6 + TOKEN_LEN]), "{dbg}");
        assert!(!dbg.contains(&s[s.len() - CHECKSUM_LEN..]), "{dbg}");
        assert!(
            dbg.contains("myapp_") && dbg.contains("[redacted]"),
            "{dbg}"
        );
    }

    #[test]
    fn prefixed_tokens_have_one_spelling() {
        let t = myapp().generate().expect("os rng");
        let s = t.expose_secret();
        // Lowercase/uppercase variants of the checksum or prefix, and a non-canonical final
        // secret character with a recomputed checksum, are all refused.
        assert!(myapp().parse(&s.to_uppercase()).is_err());
        let body_end = 6 + TOKEN_LEN;
        let last = s.as_bytes()[body_end - 1];
        let alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        let accepted = alphabet
            .bytes()
            .filter(|&c| {
                let mut v = s.as_bytes()[..body_end].to_vec();
                v[body_end - 1] = c;
                v.push(b'_');
                let sum = checksum(&v);
                v.extend_from_slice(&sum);
                myapp()
                    .parse(std::str::from_utf8(&v).expect("ascii"))
                    .is_ok()
            })
            .collect::<Vec<_>>();
        assert_eq!(accepted.len(), 16);
        assert!(accepted.contains(&last));
    }

    #[test]
    fn rejects_wrong_prefixed_shapes() {
        let t = myapp().generate().expect("os rng");
        let s = t.expose_secret();
        let n = s.len();
        for bad in [
            format!("{s}A"),
            s[..n - 1].to_owned(),
            s.replacen('_', "-", 1),
            format!("{}.{}", &s[..n - 7], &s[n - 6..]),
            format!("{}é{}", &s[..3], &s[5..]),
            format!("x{s}"),
            "é".repeat(40),
            "a".repeat(TokenFormat::MAX_TOKEN_LEN + 1),
        ] {
            for format in [myapp(), TokenFormat::plain()] {
                assert!(
                    matches!(format.parse(&bad), Err(TokenError { .. })),
                    "{format:?} {bad:?}"
                );
            }
        }
    }

    proptest! {
        #[test]
        fn parsing_any_string_never_panics(s in ".{0,100}") {
            let _ = s.parse::<Token>();
            let _ = s.parse::<SessionId>();
        }

        #[test]
        fn parsing_token_shaped_noise_never_panics(s in "[A-Za-z0-9_.+/=-]{60,90}") {
            if let Ok(t) = s.parse::<Token>() {
                prop_assert_eq!(t.expose_secret(), s.as_str());
            }
            if let Ok(t) = myapp().parse(&s) {
                prop_assert_eq!(t.expose_secret(), s.as_str());
            }
        }

        #[test]
        fn parsing_prefixed_shaped_noise_never_panics(
            prefix in "[a-z][a-z0-9_]{0,14}_",
            body in "[A-Za-z0-9_-]{22}[.][A-Za-z0-9_-]{43}",
            sum in "[_-][0-9A-Za-z]{6}",
        ) {
            let s = format!("{prefix}{body}{sum}");
            for format in [TokenFormat::plain(), myapp()] {
                if let Ok(t) = format.parse(&s) {
                    prop_assert_eq!(t.expose_secret(), s.as_str());
                }
            }
        }

        /// Every generated token parses back, under its own format and the plain one, to
        /// the same id and a secret that verifies.
        #[test]
        fn generated_tokens_parse_back(prefix in "[A-Za-z][A-Za-z0-9_]{0,14}_") {
            let format = TokenFormat::prefixed(&prefix).expect("valid prefix");
            for f in [format, TokenFormat::plain()] {
                let t = f.generate().expect("os rng");
                for parser in [format, TokenFormat::plain()] {
                    let parsed = parser.parse(t.expose_secret()).expect("parses");
                    prop_assert_eq!(parsed.id(), t.id());
                    prop_assert_eq!(parsed.expose_secret(), t.expose_secret());
                    prop_assert!(t.secret_hash().verify(&parsed));
                }
            }
        }

        /// Any single-character change to a token is refused: a prefixed token's checksum
        /// catches it before any store is asked; a plain token either fails to parse or
        /// names another session or does not verify.
        #[test]
        fn any_single_character_change_is_refused(
            prefix in "[A-Za-z][A-Za-z0-9_]{0,14}_",
            at in any::<prop::sample::Index>(),
            with in any::<char>(),
        ) {
            let format = TokenFormat::prefixed(&prefix).expect("valid prefix");
            for f in [format, TokenFormat::plain()] {
                let t = f.generate().expect("os rng");
                let s = t.expose_secret();
                let i = at.index(s.len());
                prop_assume!(!s[i..].starts_with(with));
                let changed = format!("{}{with}{}", &s[..i], &s[i + 1..]);
                for parser in [format, TokenFormat::plain()] {
                    match parser.parse(&changed) {
                        Err(TokenError { .. }) => {}
                        Ok(p) if t.prefix().is_none() => prop_assert!(
                            p.id() != t.id() || !t.secret_hash().verify(&p),
                            "{changed:?} still names the session with the same secret"
                        ),
                        other => prop_assert!(false, "{changed:?}: {other:?}"),
                    }
                }
            }
        }
    }
}
