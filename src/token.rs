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

use std::fmt;
use std::str::FromStr;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use rand::TryRngCore as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use crate::error::Error;

const ID_BYTES: usize = 16;
const SECRET_BYTES: usize = 32;
/// Length of a session id in its text form.
const ID_LEN: usize = 22;
/// Length of a secret in its text form.
const SECRET_LEN: usize = 43;
/// Length of a whole token in its text form: `id` + `.` + `secret`.
pub const TOKEN_LEN: usize = ID_LEN + 1 + SECRET_LEN;

/// The public half of a token: names one session. Safe to log and display.
///
/// ```
/// use keycard::SessionId;
/// let id: SessionId = "AAECAwQFBgcICQoLDA0ODw".parse()?;
/// assert_eq!(id.to_string(), "AAECAwQFBgcICQoLDA0ODw");
/// assert!("not an id".parse::<SessionId>().is_err());
/// # Ok::<(), keycard::Error>(())
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
    type Err = Error;

    /// # Errors
    /// [`Error::MalformedToken`] unless `s` is exactly 22 base64url characters.
    fn from_str(s: &str) -> Result<Self, Error> {
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
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct Token {
    #[zeroize(skip)]
    id: SessionId,
    secret: [u8; SECRET_BYTES],
    encoded: String,
}

impl Token {
    /// Generates a fresh token: 128-bit random id, 256-bit secret, both from the operating
    /// system's CSPRNG.
    ///
    /// # Errors
    /// [`Error::Randomness`] if the operating system cannot supply random bytes.
    pub fn generate() -> Result<Self, Error> {
        let mut id = [0u8; ID_BYTES];
        let mut secret = Zeroizing::new([0u8; SECRET_BYTES]);
        let mut rng = rand::rngs::OsRng;
        rng.try_fill_bytes(&mut id).map_err(Error::Randomness)?;
        rng.try_fill_bytes(secret.as_mut())
            .map_err(Error::Randomness)?;
        Ok(Self::from_parts(SessionId(id), *secret))
    }

    fn from_parts(id: SessionId, secret: [u8; SECRET_BYTES]) -> Self {
        let mut encoded = String::with_capacity(TOKEN_LEN);
        encoded.push_str(&id.to_string());
        encoded.push('.');
        URL_SAFE_NO_PAD.encode_string(secret, &mut encoded);
        Self {
            id,
            secret,
            encoded,
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

    /// The digest a store keeps in place of the secret.
    pub fn secret_hash(&self) -> SecretHash {
        SecretHash(Sha256::digest(self.secret).into())
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Token")
            .field("id", &self.id)
            .field("secret", &"[redacted]")
            .finish()
    }
}

impl FromStr for Token {
    type Err = Error;

    /// Parses a client's token. Rejects anything that is not exactly
    /// `<22 base64url chars>.<43 base64url chars>` without looking at any store.
    ///
    /// # Errors
    /// [`Error::MalformedToken`] for any other input.
    fn from_str(s: &str) -> Result<Self, Error> {
        if s.len() != TOKEN_LEN {
            return Err(Error::MalformedToken);
        }
        let (id, secret) = s.split_once('.').ok_or(Error::MalformedToken)?;
        let id = id.parse::<SessionId>()?;
        let secret = decode_exact::<SECRET_BYTES>(secret, SECRET_LEN)?;
        // Decoding is canonical (trailing bits must be zero), so `s` is the one spelling.
        Ok(Self {
            id,
            secret,
            encoded: s.to_owned(),
        })
    }
}

/// Parses a client's token for a check without keeping it: the session id and the digest of
/// the secret. Accepts exactly what [`Token::from_str`] accepts, but allocates nothing (the
/// validate path), and the decoded secret is zeroized.
pub(crate) fn parse_id_and_digest(s: &str) -> Result<(SessionId, SecretHash), Error> {
    if s.len() != TOKEN_LEN {
        return Err(Error::MalformedToken);
    }
    let (id, secret) = s.split_once('.').ok_or(Error::MalformedToken)?;
    let id = id.parse::<SessionId>()?;
    let secret = Zeroizing::new(decode_exact::<SECRET_BYTES>(secret, SECRET_LEN)?);
    Ok((id, SecretHash(Sha256::digest(secret.as_ref()).into())))
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
        self.0.ct_eq(&token.secret_hash().0).into()
    }

    /// Compares two digests in constant time.
    pub(crate) fn matches(&self, other: &SecretHash) -> bool {
        self.0.ct_eq(&other.0).into()
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

/// Decodes exactly `N` bytes from exactly `len` base64url characters.
fn decode_exact<const N: usize>(s: &str, len: usize) -> Result<[u8; N], Error> {
    if s.len() != len {
        return Err(Error::MalformedToken);
    }
    // Room for the decoder's worst case; the length check above makes it exactly N.
    let mut buf = Zeroizing::new([0u8; 48]);
    let n = URL_SAFE_NO_PAD
        .decode_slice(s, buf.as_mut())
        .map_err(|_| Error::MalformedToken)?;
    // The engine refuses non-canonical input (set trailing bits), so each value has exactly
    // one spelling and a token cannot be varied without changing its bytes.
    buf.get(..n)
        .and_then(|b| b.try_into().ok())
        .ok_or(Error::MalformedToken)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

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
                matches!(bad.parse::<Token>(), Err(Error::MalformedToken)),
                "{bad:?}"
            );
        }
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

    #[test]
    fn parse_id_and_digest_agrees_with_token_parsing() {
        let t = Token::generate().expect("os rng");
        let (id, digest) = parse_id_and_digest(t.expose_secret()).expect("parses");
        assert_eq!(id, t.id());
        assert!(digest.matches(&t.secret_hash()));
        assert!(!digest.matches(&Token::generate().expect("os rng").secret_hash()));
        for bad in [
            "",
            ".",
            &t.expose_secret()[1..],
            &t.expose_secret().replace('.', "!"),
        ] {
            assert!(parse_id_and_digest(bad).is_err(), "{bad:?}");
        }
    }

    proptest! {
        #[test]
        fn parsing_any_string_never_panics(s in ".{0,100}") {
            let _ = s.parse::<Token>();
            let _ = s.parse::<SessionId>();
            prop_assert_eq!(parse_id_and_digest(&s).is_ok(), s.parse::<Token>().is_ok());
        }

        #[test]
        fn parsing_token_shaped_noise_never_panics(s in "[A-Za-z0-9_.+/=-]{60,70}") {
            if let Ok(t) = s.parse::<Token>() {
                prop_assert_eq!(t.expose_secret(), s.as_str());
            }
        }
    }
}
