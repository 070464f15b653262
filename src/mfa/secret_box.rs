//! Encryption at rest of TOTP secrets with the application's key: XChaCha20-Poly1305, a
//! random nonce per value, a key id in the header so that keys can be rotated, and
//! associated data that binds each value to its owner.

use std::fmt;

use base64::alphabet;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, STANDARD};
use base64::engine::DecodePaddingMode;
use base64::Engine as _;
use chacha20poly1305::aead::AeadInPlace as _;
use chacha20poly1305::{Key, KeyInit as _, Tag, XChaCha20Poly1305, XNonce};
use rand::TryRngCore as _;
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use crate::error::RandomnessError;

/// The format version, the first byte of every sealed value.
const VERSION: u8 = 1;
/// Version byte and key id.
const HEADER_LEN: usize = 1 + 4;
const NONCE_LEN: usize = 24;
const TAG_LEN: usize = 16;
const KEY_LEN: usize = 32;
/// The longest key text [`SecretKey::from_base64`] reads (a key is 43 or 44 characters).
const MAX_KEY_TEXT_LEN: usize = 64;

/// Base64 with either padding, in each alphabet: keys come from env vars and secret
/// managers, written by `openssl rand -base64 32` or by hand.
const STANDARD_ANY_PAD: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);
const URL_SAFE_ANY_PAD: GeneralPurpose = GeneralPurpose::new(
    &alphabet::URL_SAFE,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// A 256-bit key of a [`SecretBox`]: the application's secret, kept in its configuration
/// (an env var holding [`to_base64`](Self::to_base64)'s text, a secret manager), never in the
/// database it protects. Zeroized on drop; its `Debug` shows nothing of it.
///
/// ```
/// use keycard::mfa::SecretKey;
/// let key = SecretKey::generate()?;
/// let text = key.to_base64();
/// assert_eq!(text.len(), 44);
/// let again = SecretKey::from_base64(&text)?;
/// assert_eq!(format!("{again:?}"), "SecretKey(..)");
/// assert!(SecretKey::from_base64("too short").is_err());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct SecretKey([u8; KEY_LEN]);

impl SecretKey {
    /// The key from its 32 bytes.
    pub fn from_bytes(bytes: [u8; KEY_LEN]) -> Self {
        Self(bytes)
    }

    /// A fresh key from the operating system's CSPRNG.
    ///
    /// # Errors
    /// [`RandomnessError`] if the operating system cannot supply random bytes.
    pub fn generate() -> Result<Self, RandomnessError> {
        let mut key = Self([0; KEY_LEN]);
        rand::rngs::OsRng
            .try_fill_bytes(&mut key.0)
            .map_err(RandomnessError::new)?;
        Ok(key)
    }

    /// The key from base64 text: standard or URL-safe alphabet, with or without padding,
    /// surrounding whitespace ignored (a trailing newline from a file or env var).
    ///
    /// # Errors
    /// [`InvalidKey`] unless the text is the base64 of exactly 32 bytes. The error does not
    /// repeat the text.
    pub fn from_base64(text: &str) -> Result<Self, InvalidKey> {
        let text = text.trim();
        if text.len() > MAX_KEY_TEXT_LEN {
            return Err(InvalidKey::new("it is too long"));
        }
        // 64 characters decode to at most 48 bytes, so the engine never refuses for room.
        let mut buf = Zeroizing::new([0u8; 48]);
        let n = STANDARD_ANY_PAD
            .decode_slice(text, buf.as_mut())
            .or_else(|_| URL_SAFE_ANY_PAD.decode_slice(text, buf.as_mut()))
            .map_err(|_| InvalidKey::new("it is not base64"))?;
        let bytes = buf
            .get(..n)
            .and_then(|b| <[u8; KEY_LEN]>::try_from(b).ok())
            .ok_or_else(|| InvalidKey::new("it does not decode to 32 bytes"))?;
        Ok(Self(bytes))
    }

    /// The key as standard base64 with padding (44 characters), to keep in an env var. It is
    /// the key: zeroized on drop, to be written to your secret store only.
    pub fn to_base64(&self) -> Zeroizing<String> {
        let mut text = Zeroizing::new(String::with_capacity(44));
        STANDARD.encode_string(self.0, &mut text);
        text
    }

    fn cipher(&self) -> XChaCha20Poly1305 {
        // The array is exactly a key's length: `from_slice` borrows it, no copy.
        XChaCha20Poly1305::new(Key::from_slice(&self.0))
    }
}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretKey(..)")
    }
}

/// Text that is not a [`SecretKey`] (see [`SecretKey::from_base64`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid secret key: {reason}; a key is 32 bytes in base64 (make one with SecretKey::generate()?.to_base64(), or `openssl rand -base64 32`)")]
#[non_exhaustive]
pub struct InvalidKey {
    /// What is wrong with it.
    pub reason: &'static str,
}

impl InvalidKey {
    fn new(reason: &'static str) -> Self {
        Self { reason }
    }
}

/// The number a [`SecretBox`] writes in front of each value it seals, naming the key that
/// sealed it. Give each key a new id when you rotate (1, 2, 3…); the ids are not secret.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeyId(u32);

impl KeyId {
    /// The key id `id`.
    pub const fn new(id: u32) -> Self {
        Self(id)
    }

    /// The number.
    pub const fn get(self) -> u32 {
        self.0
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

/// Seals TOTP secrets (or any small secret) for storage: XChaCha20-Poly1305 under the current
/// key, with a random 24-byte nonce, and opens what it or an earlier key sealed.
///
/// A sealed value is `[version 1][key id, u32 big-endian][nonce, 24 bytes][ciphertext][tag,
/// 16 bytes]`: 45 bytes more than the plaintext (65 for a generated TOTP secret, within
/// [`TotpRecord::MAX_SEALED_LEN`](super::TotpRecord::MAX_SEALED_LEN)). The associated data
/// (`aad`: pass the user id) and the header are authenticated, so a value copied to another
/// user's row, or altered, does not open.
///
/// # Key rotation
/// Make a box with the new key as current and the old one added with
/// [`with_old_key`](Self::with_old_key): it seals under the new key and opens both. Values
/// for which [`needs_reseal`](Self::needs_reseal) is true can be opened and sealed again
/// (the authenticator does so on use); once none is left, drop the old key.
///
/// ```
/// use keycard::mfa::{KeyId, SealError, SecretBox, SecretKey};
/// let old_key = SecretKey::generate()?;
/// let old = SecretBox::new(KeyId::new(1), old_key.clone());
/// let sealed = old.seal(b"20 bytes of a secret", b"user 42")?;
/// assert_eq!(old.open(&sealed, b"user 42")?.as_slice(), b"20 bytes of a secret");
/// // Another owner's associated data does not open it.
/// assert!(matches!(old.open(&sealed, b"user 43"), Err(SealError::Forged)));
///
/// let new = SecretBox::new(KeyId::new(2), SecretKey::generate()?).with_old_key(KeyId::new(1), old_key);
/// assert!(new.needs_reseal(&sealed));
/// let resealed = new.seal(&new.open(&sealed, b"user 42")?, b"user 42")?;
/// assert!(!new.needs_reseal(&resealed));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct SecretBox {
    current: (KeyId, SecretKey),
    old: Vec<(KeyId, SecretKey)>,
}

impl SecretBox {
    /// The length a sealed value adds to its plaintext: header, nonce and tag (45 bytes).
    pub const OVERHEAD: usize = HEADER_LEN + NONCE_LEN + TAG_LEN;

    /// A box that seals and opens with `key`, named `id` in what it seals.
    pub fn new(id: KeyId, key: SecretKey) -> Self {
        Self {
            current: (id, key),
            old: Vec::new(),
        }
    }

    /// The same box also opening values sealed under `key` (named `id`), for a key rotation.
    /// It never seals with it. A key with the current key's id is ignored (the current key
    /// wins); adding an id twice keeps the last key.
    #[must_use]
    pub fn with_old_key(mut self, id: KeyId, key: SecretKey) -> Self {
        if id != self.current.0 {
            self.old.retain(|(old, _)| *old != id);
            self.old.push((id, key));
        }
        self
    }

    /// The id of the key that [`seal`](Self::seal) uses.
    pub fn current_key_id(&self) -> KeyId {
        self.current.0
    }

    /// Encrypts and authenticates `plaintext` under the current key, bound to `aad` (the
    /// owner's user id: the same `aad` must be given to [`open`](Self::open)).
    ///
    /// # Errors
    /// [`SealError::Randomness`] if the operating system cannot supply a nonce.
    pub fn seal(&self, plaintext: &[u8], aad: &[u8]) -> Result<Vec<u8>, SealError> {
        let (id, key) = &self.current;
        let mut nonce = [0u8; NONCE_LEN];
        rand::rngs::OsRng
            .try_fill_bytes(&mut nonce)
            .map_err(|e| SealError::Randomness(RandomnessError::new(e)))?;
        let header = header(*id);
        let mut sealed = Vec::with_capacity(Self::OVERHEAD + plaintext.len());
        sealed.extend_from_slice(&header);
        sealed.extend_from_slice(&nonce);
        sealed.extend_from_slice(plaintext);
        let body = sealed
            .get_mut(HEADER_LEN + NONCE_LEN..)
            .ok_or(SealError::Malformed)?;
        // Fails only for a plaintext over 256 GiB.
        let tag = key
            .cipher()
            .encrypt_in_place_detached(&XNonce::from(nonce), &bound_aad(&header, aad), body)
            .map_err(|_| SealError::Malformed)?;
        sealed.extend_from_slice(&tag);
        Ok(sealed)
    }

    /// Decrypts `sealed`, checking that it was sealed by a key this box holds, with this
    /// `aad`, and not altered since.
    ///
    /// # Errors
    /// - [`SealError::Malformed`]: too short, or not of a known version;
    /// - [`SealError::UnknownKey`]: sealed under a key id this box does not hold;
    /// - [`SealError::Forged`]: authentication failed (wrong key, wrong `aad`, or altered).
    pub fn open(&self, sealed: &[u8], aad: &[u8]) -> Result<Zeroizing<Vec<u8>>, SealError> {
        let parts = Parts::parse(sealed)?;
        let key = self
            .key(parts.key_id)
            .ok_or(SealError::UnknownKey(parts.key_id))?;
        let mut plaintext = Zeroizing::new(parts.ciphertext.to_vec());
        key.cipher()
            .decrypt_in_place_detached(
                &XNonce::from(parts.nonce),
                &bound_aad(&parts.header, aad),
                &mut plaintext,
                &Tag::from(parts.tag),
            )
            .map_err(|_| SealError::Forged)?;
        Ok(plaintext)
    }

    /// Whether `sealed` was sealed under a key other than the current one, and should be
    /// opened and sealed again. `false` for a malformed value ([`open`](Self::open) says what
    /// is wrong with it).
    pub fn needs_reseal(&self, sealed: &[u8]) -> bool {
        Parts::parse(sealed).is_ok_and(|parts| parts.key_id != self.current.0)
    }

    fn key(&self, id: KeyId) -> Option<&SecretKey> {
        std::iter::once(&self.current)
            .chain(&self.old)
            .find(|(key_id, _)| *key_id == id)
            .map(|(_, key)| key)
    }
}

impl fmt::Debug for SecretBox {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let old: Vec<KeyId> = self.old.iter().map(|(id, _)| *id).collect();
        f.debug_struct("SecretBox")
            .field("current_key_id", &self.current.0)
            .field("old_key_ids", &old)
            .finish()
    }
}

fn header(id: KeyId) -> [u8; HEADER_LEN] {
    let [a, b, c, d] = id.0.to_be_bytes();
    [VERSION, a, b, c, d]
}

/// The associated data the cipher authenticates: the header (fixed length), then the
/// caller's `aad`.
fn bound_aad(header: &[u8; HEADER_LEN], aad: &[u8]) -> Vec<u8> {
    let mut bound = Vec::with_capacity(HEADER_LEN + aad.len());
    bound.extend_from_slice(header);
    bound.extend_from_slice(aad);
    bound
}

/// A sealed value cut into its parts.
struct Parts<'a> {
    header: [u8; HEADER_LEN],
    key_id: KeyId,
    nonce: [u8; NONCE_LEN],
    ciphertext: &'a [u8],
    tag: [u8; TAG_LEN],
}

impl<'a> Parts<'a> {
    fn parse(sealed: &'a [u8]) -> Result<Self, SealError> {
        let (header, rest) = split::<HEADER_LEN>(sealed)?;
        let (nonce, rest) = split::<NONCE_LEN>(rest)?;
        let at = rest
            .len()
            .checked_sub(TAG_LEN)
            .ok_or(SealError::Malformed)?;
        let (ciphertext, tag) = rest.split_at(at);
        let tag = <[u8; TAG_LEN]>::try_from(tag).map_err(|_| SealError::Malformed)?;
        let [version, a, b, c, d] = header;
        if version != VERSION {
            return Err(SealError::Malformed);
        }
        Ok(Self {
            header,
            key_id: KeyId(u32::from_be_bytes([a, b, c, d])),
            nonce,
            ciphertext,
            tag,
        })
    }
}

/// The first `N` bytes as an array, and the rest.
fn split<const N: usize>(bytes: &[u8]) -> Result<([u8; N], &[u8]), SealError> {
    let head = bytes.get(..N).ok_or(SealError::Malformed)?;
    let rest = bytes.get(N..).ok_or(SealError::Malformed)?;
    let head = <[u8; N]>::try_from(head).map_err(|_| SealError::Malformed)?;
    Ok((head, rest))
}

/// Why a [`SecretBox`] could not seal or open a value.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SealError {
    /// The value is too short or of an unknown format version: it was not made by
    /// [`SecretBox::seal`], or was cut short in storage.
    #[error("the sealed value is malformed (too short, or of an unknown version); it was not made by SecretBox::seal or was truncated in storage")]
    Malformed,
    /// The value names a key this box does not hold.
    #[error("sealed with key {0}, which this SecretBox does not hold; add it with with_old_key")]
    UnknownKey(KeyId),
    /// Authentication failed: the key under the value's key id is not the one that sealed
    /// it, the associated data differs (the value belongs to another owner), or the value
    /// was altered. Nothing was decrypted.
    #[error("the sealed value does not authenticate: the key with its id is not the one that sealed it, the associated data (owner) differs, or it was altered; nothing was decrypted")]
    Forged,
    /// The operating system's random number generator failed, so no nonce could be drawn;
    /// nothing was sealed.
    #[error("the system random number generator failed; nothing was sealed, retry later")]
    Randomness(#[source] RandomnessError),
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mfa::TotpRecord;

    fn boxed(id: u32) -> SecretBox {
        SecretBox::new(KeyId::new(id), SecretKey::generate().expect("os rng"))
    }

    #[test]
    fn round_trip_within_the_stored_length() {
        let sb = boxed(7);
        let secret = [0x5a_u8; 20];
        let sealed = sb.seal(&secret, b"user-1").expect("seal");
        assert_eq!(sealed.len(), 20 + SecretBox::OVERHEAD);
        assert!(sealed.len() <= TotpRecord::MAX_SEALED_LEN);
        assert_eq!(sealed[0], VERSION);
        assert_eq!(&sealed[1..5], &7u32.to_be_bytes());
        assert_eq!(
            sb.open(&sealed, b"user-1").expect("open").as_slice(),
            secret
        );
        // The longest TOTP secret fits too.
        let longest = sb.seal(&[1; 64], b"user-1").expect("seal");
        assert!(longest.len() <= TotpRecord::MAX_SEALED_LEN);
        // Empty plaintext and empty aad are values like others.
        let empty = sb.seal(b"", b"").expect("seal");
        assert!(sb.open(&empty, b"").expect("open").is_empty());
        assert!(matches!(sb.open(&empty, b"x"), Err(SealError::Forged)));
    }

    #[test]
    fn each_seal_draws_a_new_nonce() {
        let sb = boxed(1);
        let a = sb.seal(b"same", b"u").expect("seal");
        let b = sb.seal(b"same", b"u").expect("seal");
        assert_ne!(a, b);
        assert_ne!(a[5..29], b[5..29]);
    }

    #[test]
    fn the_ciphertext_does_not_contain_the_plaintext() {
        let sb = boxed(1);
        let secret = b"12345678901234567890";
        let sealed = sb.seal(secret, b"u").expect("seal");
        assert!(!sealed.windows(4).any(|w| secret.windows(4).any(|s| s == w)));
    }

    #[test]
    fn wrong_aad_tampering_truncation_and_unknown_keys_are_refused() {
        let sb = boxed(3);
        let sealed = sb.seal(b"a totp secret", b"user-1").expect("seal");
        assert!(matches!(
            sb.open(&sealed, b"user-2"),
            Err(SealError::Forged)
        ));
        assert!(matches!(sb.open(&sealed, b""), Err(SealError::Forged)));
        for i in 5..sealed.len() {
            let mut tampered = sealed.clone();
            tampered[i] ^= 0x01;
            assert!(
                matches!(sb.open(&tampered, b"user-1"), Err(SealError::Forged)),
                "byte {i}"
            );
        }
        let mut version = sealed.clone();
        version[0] = 2;
        assert!(matches!(
            sb.open(&version, b"user-1"),
            Err(SealError::Malformed)
        ));
        for len in 0..SecretBox::OVERHEAD {
            assert!(
                matches!(
                    sb.open(&sealed[..len], b"user-1"),
                    Err(SealError::Malformed)
                ),
                "length {len}"
            );
        }
        // Cut short but still long enough to parse: the tag no longer matches.
        let cut = &sealed[..sealed.len() - 1];
        assert!(matches!(sb.open(cut, b"user-1"), Err(SealError::Forged)));
        let other = boxed(4);
        match other.open(&sealed, b"user-1") {
            Err(e @ SealError::UnknownKey(id)) => {
                assert_eq!(id, KeyId::new(3));
                assert!(e.to_string().contains("key 3"), "{e}");
            }
            other => panic!("{other:?}"),
        }
        // Another key under the same id: the tag fails.
        let impostor = boxed(3);
        assert!(matches!(
            impostor.open(&sealed, b"user-1"),
            Err(SealError::Forged)
        ));
        // A header naming another key id is authenticated too.
        let both = boxed(3).with_old_key(KeyId::new(9), SecretKey::from_bytes([0; 32]));
        let sealed = both.seal(b"x", b"u").expect("seal");
        let mut relabelled = sealed.clone();
        relabelled[1..5].copy_from_slice(&9u32.to_be_bytes());
        assert!(matches!(
            both.open(&relabelled, b"u"),
            Err(SealError::Forged)
        ));
    }

    #[test]
    fn rotation_opens_old_values_and_reseals_under_the_new_key() {
        let old_key = SecretKey::generate().expect("os rng");
        let old = SecretBox::new(KeyId::new(1), old_key.clone());
        let sealed = old.seal(b"secret", b"user-1").expect("seal");
        assert!(!old.needs_reseal(&sealed));

        let new = SecretBox::new(KeyId::new(2), SecretKey::generate().expect("os rng"))
            .with_old_key(KeyId::new(1), old_key);
        assert_eq!(new.current_key_id(), KeyId::new(2));
        assert!(new.needs_reseal(&sealed));
        let plain = new.open(&sealed, b"user-1").expect("old key opens");
        assert_eq!(plain.as_slice(), b"secret");
        let resealed = new.seal(&plain, b"user-1").expect("seal");
        assert!(!new.needs_reseal(&resealed));
        assert_eq!(&resealed[1..5], &2u32.to_be_bytes());
        assert_eq!(
            new.open(&resealed, b"user-1").expect("open").as_slice(),
            b"secret"
        );
        // The old box cannot open what the new key sealed.
        assert!(matches!(
            old.open(&resealed, b"user-1"),
            Err(SealError::UnknownKey(id)) if id == KeyId::new(2)
        ));
        assert!(!new.needs_reseal(b"short"));
    }

    #[test]
    fn with_old_key_never_replaces_the_current_key() {
        let key = SecretKey::generate().expect("os rng");
        let sb = SecretBox::new(KeyId::new(1), key.clone())
            .with_old_key(KeyId::new(1), SecretKey::from_bytes([0; 32]))
            .with_old_key(KeyId::new(0), SecretKey::from_bytes([1; 32]))
            .with_old_key(KeyId::new(0), SecretKey::from_bytes([2; 32]));
        let sealed = SecretBox::new(KeyId::new(1), key)
            .seal(b"x", b"")
            .expect("seal");
        assert_eq!(sb.open(&sealed, b"").expect("open").as_slice(), b"x");
        let sealed = SecretBox::new(KeyId::new(0), SecretKey::from_bytes([2; 32]))
            .seal(b"y", b"")
            .expect("seal");
        assert_eq!(sb.open(&sealed, b"").expect("open").as_slice(), b"y");
        assert_eq!(
            format!("{sb:?}"),
            "SecretBox { current_key_id: KeyId(1), old_key_ids: [KeyId(0)] }"
        );
    }

    #[test]
    fn keys_parse_from_base64_in_either_alphabet() {
        let bytes: [u8; 32] = std::array::from_fn(|i| (i as u8).wrapping_mul(37).wrapping_add(251));
        let key = SecretKey::from_bytes(bytes);
        let text = key.to_base64();
        assert_eq!(text.len(), 44);
        assert!(
            text.contains('+') || text.contains('/'),
            "{}",
            text.as_str()
        );
        let sealed = SecretBox::new(KeyId::new(1), key)
            .seal(b"x", b"")
            .expect("seal");
        let url_safe = text.replace('+', "-").replace('/', "_");
        for variant in [
            text.to_string(),
            text.trim_end_matches('=').to_owned(),
            url_safe.clone(),
            url_safe.trim_end_matches('=').to_owned(),
            format!("  {}\n", text.as_str()),
        ] {
            let parsed = SecretKey::from_base64(&variant).expect("a key");
            let sb = SecretBox::new(KeyId::new(1), parsed);
            assert_eq!(sb.open(&sealed, b"").expect("same key").as_slice(), b"x");
        }
        for bad in [
            "",
            "AAAA",
            &"A".repeat(42),
            &"A".repeat(48),
            &"A".repeat(1000),
            "not base64 at all, not even close to it!!!!",
            &format!("{}+_", &text[..41]),
        ] {
            let err = SecretKey::from_base64(bad).map(|_| ()).expect_err(bad);
            assert!(err.to_string().contains("32 bytes in base64"), "{err}");
        }
        assert_eq!(
            format!("{:?}", SecretKey::from_bytes(bytes)),
            "SecretKey(..)"
        );
        assert!(!format!("{:?}", boxed(1)).contains("SecretKey"));
    }
}
