//! Password hashing: argon2id, PHC strings, a dummy hash for unknown users, rehash checks.

use std::fmt;
use std::sync::{Mutex, OnceLock, PoisonError};

use argon2::password_hash::errors::InvalidValue;
use argon2::password_hash::{Output, ParamsString, PasswordHash, Salt, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use rand::TryRngCore as _;
use subtle::ConstantTimeEq as _;
use zeroize::Zeroizing;

use crate::error::{HashError, RandomnessError};

/// Hashes and verifies passwords. [`Argon2Hasher`] is the implementation keycard uses; the
/// trait exists so you can wrap it (to count or time verifications, or to verify legacy
/// hashes during a migration).
///
/// Its methods fail with a [`HashError`] only, never another [`Error`](crate::Error): a
/// hasher of your own returns the one a wrapped hasher gave it, or builds one with
/// [`HashError::other`]. The authenticator turns it into
/// [`Error::PasswordHash`](crate::Error::PasswordHash) (or
/// [`Error::Randomness`](crate::Error::Randomness) for
/// [`HashErrorKind::Randomness`](crate::HashErrorKind::Randomness)).
///
/// ```
/// use keycard::{Argon2Hasher, HashError, PasswordHasher};
///
/// /// Refuses passwords while a maintenance flag is set, else hashes with argon2.
/// #[derive(Debug, Default)]
/// struct Guarded {
///     inner: Argon2Hasher,
///     maintenance: bool,
/// }
///
/// impl PasswordHasher for Guarded {
///     fn hash(&self, password: &[u8]) -> Result<String, HashError> {
///         if self.maintenance {
///             return Err(HashError::other("password changes are paused for maintenance"));
///         }
///         self.inner.hash(password)
///     }
///     fn verify(&self, password: &[u8], phc: &str) -> Result<bool, HashError> {
///         self.inner.verify(password, phc)
///     }
///     fn needs_rehash(&self, phc: &str) -> bool {
///         self.inner.needs_rehash(phc)
///     }
///     fn dummy_hash(&self) -> &str {
///         self.inner.dummy_hash()
///     }
/// }
/// # let h = Guarded { inner: Argon2Hasher::insecure_for_tests(), maintenance: true };
/// # assert!(h.hash(b"pw").is_err());
/// ```
///
/// All methods are synchronous and CPU-bound: the authenticator calls them on a blocking
/// thread, never on the async executor.
pub trait PasswordHasher: Send + Sync + fmt::Debug + 'static {
    /// Hashes `password` with a fresh random salt into a PHC string.
    ///
    /// # Errors
    /// A [`HashError`] of kind [`Argon2`](crate::HashErrorKind::Argon2) if the parameters
    /// refuse the input, or [`Randomness`](crate::HashErrorKind::Randomness) if no salt could
    /// be drawn.
    fn hash(&self, password: &[u8]) -> Result<String, HashError>;

    /// Whether `password` matches the PHC string `phc`. A mismatch is `Ok(false)`.
    ///
    /// # Errors
    /// A [`HashError`] of kind [`InvalidStoredHash`](crate::HashErrorKind::InvalidStoredHash)
    /// if `phc` is not a valid hash. A login then fails as invalid credentials, after a
    /// dummy verification so that timing does not tell the case apart.
    fn verify(&self, password: &[u8], phc: &str) -> Result<bool, HashError>;

    /// Whether `phc` was made with other parameters than this hasher's current ones and
    /// should be replaced after a successful login.
    fn needs_rehash(&self, phc: &str) -> bool;

    /// A valid hash made with the current parameters, verified against when the email is
    /// unknown so that an unknown email costs the same work as a wrong password.
    fn dummy_hash(&self) -> &str;
}

/// argon2id with configurable parameters; the default is OWASP's minimum recommendation:
/// m = 19456 KiB (19 MiB), t = 2, p = 1.
///
/// # Memory
///
/// The hasher keeps a pool of reusable argon2 memory buffers, each `m_cost` KiB, instead of
/// allocating one per hash: a hash or verification takes a buffer from the pool (allocating
/// one only when the pool is empty) and puts it back when done. The pool therefore holds as
/// many buffers as ran at once at the busiest moment so far, and keeps them for the hasher's
/// life. The authenticator runs at most
/// [`max_concurrent_hashes`](crate::AuthenticatorBuilder::max_concurrent_hashes) at once, so
/// hashing memory is bounded by `max_concurrent_hashes × m_cost` (2 × 19 MiB with the
/// defaults on a 2-CPU machine), paid once rather than per login. Used outside the
/// authenticator, the pool never keeps more than 64 buffers; extra ones are freed.
///
/// Argon2 writes every block of its memory before it first reads it, so a buffer's previous
/// content never affects a result. Buffers are cleared (zeroed) before they go back to the pool or are
/// freed, because argon2 memory is derived from the password; this costs one `memset` of
/// `m_cost` KiB per hash (measured: about 1 ms for 19 MiB against 21 ms for the hash, 5%).
///
/// # Stored hashes with other parameters
///
/// [`verify`](PasswordHasher::verify) uses the algorithm, version and parameters recorded in
/// the stored hash (argon2id, argon2i or argon2d; version 0x13 or 0x10), so hashes made with
/// earlier settings keep working:
///
/// - memory up to this hasher's `m_cost`: verified in a pooled buffer;
/// - more memory, up to the cap below: verified in a temporary buffer of that size, freed
///   afterwards (the allocator may keep it for later allocations). While such users log in,
///   hashing memory can reach `max_concurrent_hashes ×` their `m_cost`, never more than
///   `max_concurrent_hashes ×` the cap;
/// - above any cap: refused with a [`HashError`] of kind
///   [`InvalidStoredHash`](crate::HashErrorKind::InvalidStoredHash) before anything is
///   allocated, like a hash that does not parse or is not argon2.
///
/// The caps are 4 × this hasher's own value or a floor, whichever is larger: `m_cost` at most
/// 4 × `m_cost` or 256 MiB (a corrupt or hostile row with m = 4 GiB must not make one login
/// allocate 4 GiB; 256 MiB still accepts every OWASP and RFC 9106 memory-constrained
/// setting), `t_cost` at most 4 × `t_cost` or 16, `p_cost` at most 4 × `p_cost` or 16. The
/// output length must be within argon2's and the PHC format's bounds (10 to 64 bytes).
///
/// A verification takes time proportional to the stored hash's own `m_cost × t_cost`, so a
/// user whose hash has other parameters is answered faster or slower than the dummy hash
/// used for unknown emails (which has the current parameters). The authenticator rehashes
/// such a user's password with the current parameters at their next successful login,
/// which closes the difference.
///
/// ```
/// use keycard::{Argon2Hasher, PasswordHasher};
/// let hasher = Argon2Hasher::default();
/// let phc = hasher.hash(b"correct horse")?;
/// assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
/// assert!(hasher.verify(b"correct horse", &phc)?);
/// assert!(!hasher.verify(b"wrong", &phc)?);
/// # Ok::<(), keycard::HashError>(())
/// ```
pub struct Argon2Hasher {
    params: Params,
    dummy: OnceLock<String>,
    pool: BufferPool,
}

/// The most buffers a hasher's pool keeps; buffers returned beyond it are freed.
const POOL_CAP: usize = 64;
/// Stored hashes may use up to this many times the hasher's own cost, per parameter...
const STORED_COST_FACTOR: u32 = 4;
/// ... or at least this much memory, in KiB (256 MiB)...
const STORED_M_COST_FLOOR: u32 = 256 * 1024;
/// ... and at least this many passes...
const STORED_T_COST_FLOOR: u32 = 16;
/// ... and at least this many lanes.
const STORED_P_COST_FLOOR: u32 = 16;

impl Argon2Hasher {
    /// OWASP's minimum memory cost, in KiB.
    pub const MIN_M_COST: u32 = 19_456;
    /// OWASP's minimum iterations at [`Self::MIN_M_COST`].
    pub const MIN_T_COST: u32 = 2;

    /// A hasher with explicit argon2id parameters: memory in KiB, iterations, parallelism.
    ///
    /// Parameters below OWASP's minimum (m = 19456, t = 2, p = 1) are refused: use
    /// [`Argon2Hasher::insecure_for_tests`] for fast tests.
    ///
    /// # Errors
    /// A [`HashError`] of kind [`Parameters`](crate::HashErrorKind::Parameters) if argon2
    /// rejects the parameters or they are below the minimum.
    pub fn new(m_cost_kib: u32, t_cost: u32, p_cost: u32) -> Result<Self, HashError> {
        if m_cost_kib < Self::MIN_M_COST || t_cost < Self::MIN_T_COST {
            return Err(HashError::parameters(
                argon2::password_hash::Error::ParamValueInvalid(InvalidValue::TooShort),
            ));
        }
        Self::with_params(m_cost_kib, t_cost, p_cost)
    }

    /// A hasher with tiny parameters (m = 8 KiB, t = 1), for tests that hash many passwords.
    /// Never use it in production: such hashes are cheap to brute-force.
    pub fn insecure_for_tests() -> Self {
        Self::with_params(8, 1, 1).unwrap_or_default()
    }

    fn with_params(m: u32, t: u32, p: u32) -> Result<Self, HashError> {
        let params = Params::new(m, t, p, None).map_err(|e| HashError::parameters(e.into()))?;
        Ok(Self::from_params(params))
    }

    fn from_params(params: Params) -> Self {
        Self {
            pool: BufferPool::new(params.block_count()),
            params,
            dummy: OnceLock::new(),
        }
    }

    /// The memory cost in use, in KiB (argon2's `m`).
    pub fn m_cost_kib(&self) -> u32 {
        self.params.m_cost()
    }

    /// The number of iterations in use (argon2's `t`).
    pub fn t_cost(&self) -> u32 {
        self.params.t_cost()
    }

    /// The degree of parallelism in use (argon2's `p`).
    pub fn p_cost(&self) -> u32 {
        self.params.p_cost()
    }

    fn argon2(&self) -> Argon2<'static> {
        Argon2::new(Algorithm::Argon2id, Version::V0x13, self.params.clone())
    }

    /// Hashes with the given raw salt into a PHC string, in a pooled buffer.
    fn hash_with_salt(&self, password: &[u8], salt: &[u8]) -> Result<String, HashError> {
        let argon2_err = HashError::argon2;
        let salt_string = SaltString::encode_b64(salt).map_err(argon2_err)?;
        let output_len = self
            .params
            .output_len()
            .unwrap_or(Params::DEFAULT_OUTPUT_LEN);
        let output = {
            let mut memory = self.pool.take();
            Output::init_with(output_len, |out| {
                self.argon2()
                    .hash_password_into_with_memory(password, salt, out, memory.blocks())
                    .map_err(Into::into)
            })
            .map_err(argon2_err)?
        };
        // The same fields, in the same order, as argon2's own `hash_password`.
        let phc = PasswordHash {
            algorithm: Algorithm::Argon2id.ident(),
            version: Some(Version::V0x13.into()),
            params: ParamsString::try_from(&self.params).map_err(argon2_err)?,
            salt: Some(salt_string.as_salt()),
            hash: Some(output),
        };
        Ok(phc.to_string())
    }

    /// Refuses stored parameters above the caps documented on [`Argon2Hasher`].
    fn check_stored_params(&self, stored: &Params) -> Result<(), argon2::password_hash::Error> {
        let cap = |own: u32, floor: u32| own.saturating_mul(STORED_COST_FACTOR).max(floor);
        let max_m = cap(self.params.m_cost(), STORED_M_COST_FLOOR);
        let too_costly = stored.m_cost() > max_m
            // block_count() <= m_cost() for valid params; checked anyway, it is what we allocate.
            || stored.block_count() > max_m as usize
            || stored.t_cost() > cap(self.params.t_cost(), STORED_T_COST_FLOOR)
            || stored.p_cost() > cap(self.params.p_cost(), STORED_P_COST_FLOOR);
        if too_costly {
            return Err(argon2::password_hash::Error::ParamValueInvalid(
                InvalidValue::TooLong,
            ));
        }
        // Output's parser already enforces 10..=64 bytes; argon2 alone would accept 4..2^32.
        let len = stored.output_len().unwrap_or(Params::DEFAULT_OUTPUT_LEN);
        let (min, max) = (
            Output::MIN_LENGTH.max(Params::MIN_OUTPUT_LEN),
            Output::MAX_LENGTH,
        );
        let provided = len.cmp(&len.clamp(min, max));
        match provided {
            std::cmp::Ordering::Equal => Ok(()),
            std::cmp::Ordering::Less => Err(argon2::password_hash::Error::OutputSize {
                provided,
                expected: min,
            }),
            std::cmp::Ordering::Greater => Err(argon2::password_hash::Error::OutputSize {
                provided,
                expected: max,
            }),
        }
    }

    /// Number of buffers currently in the pool (for tests).
    #[cfg(test)]
    fn pooled_buffers(&self) -> usize {
        self.pool.len()
    }
}

impl Default for Argon2Hasher {
    fn default() -> Self {
        let params = Params::new(Self::MIN_M_COST, Self::MIN_T_COST, 1, None)
            .unwrap_or_else(|_| Params::default());
        Self::from_params(params)
    }
}

impl fmt::Debug for Argon2Hasher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Argon2Hasher")
            .field("m_cost", &self.params.m_cost())
            .field("t_cost", &self.params.t_cost())
            .field("p_cost", &self.params.p_cost())
            .field("pooled_buffers", &self.pool.len())
            .finish()
    }
}

impl PasswordHasher for Argon2Hasher {
    fn hash(&self, password: &[u8]) -> Result<String, HashError> {
        let mut salt = [0u8; 16];
        rand::rngs::OsRng
            .try_fill_bytes(&mut salt)
            .map_err(|e| HashError::randomness(RandomnessError::new(e)))?;
        self.hash_with_salt(password, &salt)
    }

    fn verify(&self, password: &[u8], phc: &str) -> Result<bool, HashError> {
        use argon2::password_hash::Error as PhcError;
        let invalid = HashError::invalid_stored_hash;

        // Verification uses the algorithm, version and parameters recorded in the hash, not
        // ours, within the caps; everything is checked before any memory is allocated.
        let parsed = PasswordHash::new(phc).map_err(invalid)?;
        let algorithm = Algorithm::try_from(parsed.algorithm).map_err(invalid)?;
        // No version field means 0x13, as argon2's own verifier reads it.
        let version = match parsed.version {
            Some(v) => Version::try_from(v).map_err(|e| invalid(e.into()))?,
            None => Version::V0x13,
        };
        let (Some(salt), Some(expected)) = (parsed.salt, parsed.hash) else {
            return Err(invalid(PhcError::PhcStringField));
        };
        let params = Params::try_from(&parsed).map_err(invalid)?;
        self.check_stored_params(&params).map_err(invalid)?;
        let mut salt_buf = [0u8; Salt::MAX_LENGTH];
        let salt = salt.decode_b64(&mut salt_buf).map_err(invalid)?;
        if salt.len() < argon2::MIN_SALT_LEN {
            return Err(invalid(PhcError::SaltInvalid(InvalidValue::TooShort)));
        }

        let block_count = params.block_count();
        let mut memory = match block_count <= self.pool.blocks_per_buffer {
            true => self.pool.take(),
            false => Buffer::temporary(block_count),
        };
        let mut computed = Zeroizing::new([0u8; Output::MAX_LENGTH]);
        let computed = &mut computed[..expected.len()];
        Argon2::new(algorithm, version, params)
            .hash_password_into_with_memory(password, salt, &mut *computed, memory.blocks())
            .map_err(|e| HashError::argon2(e.into()))?;
        Ok(bool::from(computed.ct_eq(expected.as_bytes())))
    }

    fn needs_rehash(&self, phc: &str) -> bool {
        let Ok(parsed) = PasswordHash::new(phc) else {
            return true;
        };
        if parsed.algorithm != argon2::ARGON2ID_IDENT
            || parsed.version != Some(Version::V0x13.into())
        {
            return true;
        }
        match Params::try_from(&parsed) {
            Ok(p) => {
                p.m_cost() != self.params.m_cost()
                    || p.t_cost() != self.params.t_cost()
                    || p.p_cost() != self.params.p_cost()
            }
            Err(_) => true,
        }
    }

    fn dummy_hash(&self) -> &str {
        self.dummy.get_or_init(|| {
            // A random password nobody knows, hashed with the current parameters. If hashing
            // fails here it fails for real users too; the fallback still parses and verifies
            // with the same parameters, so the timing stays comparable.
            let mut pw = Zeroizing::new([0u8; 32]);
            let _ = rand::rngs::OsRng.try_fill_bytes(pw.as_mut());
            self.hash(pw.as_ref()).unwrap_or_else(|_| {
                format!(
                    "$argon2id$v=19$m={},t={},p={}$c29tZXNhbHRzb21lc2FsdA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
                    self.params.m_cost(),
                    self.params.t_cost(),
                    self.params.p_cost()
                )
            })
        })
    }
}

/// Reusable argon2 memory buffers of one size (the hasher's own block count).
struct BufferPool {
    blocks_per_buffer: usize,
    free: Mutex<Vec<Vec<Block>>>,
}

impl BufferPool {
    fn new(blocks_per_buffer: usize) -> Self {
        Self {
            blocks_per_buffer,
            free: Mutex::new(Vec::new()),
        }
    }

    /// A buffer from the pool, or a new one if the pool is empty; it goes back on drop.
    fn take(&self) -> Buffer<'_> {
        let pooled = self.lock().pop();
        Buffer {
            blocks: pooled.unwrap_or_else(|| vec![Block::new(); self.blocks_per_buffer]),
            pool: Some(self),
        }
    }

    fn put_back(&self, blocks: Vec<Block>) {
        let mut free = self.lock();
        if free.len() < POOL_CAP {
            free.push(blocks);
        }
    }

    fn len(&self) -> usize {
        self.lock().len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Vec<Block>>> {
        // A panic while the lock was held cannot leave the list half-updated (push and pop
        // are its only writes), so a poisoned pool is still a valid pool.
        self.free.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Argon2 memory for one hash: pooled (returned to the pool on drop) or temporary (freed).
/// Cleared on drop either way, since it holds password-derived data.
struct Buffer<'a> {
    blocks: Vec<Block>,
    pool: Option<&'a BufferPool>,
}

impl Buffer<'_> {
    fn temporary(block_count: usize) -> Self {
        Self {
            blocks: vec![Block::new(); block_count],
            pool: None,
        }
    }

    fn blocks(&mut self) -> &mut [Block] {
        &mut self.blocks
    }
}

impl Drop for Buffer<'_> {
    fn drop(&mut self) {
        self.blocks.fill(Block::new());
        // Keeps the compiler from dropping the stores as dead when the buffer is freed next.
        std::hint::black_box(&mut self.blocks);
        let blocks = std::mem::take(&mut self.blocks);
        if let Some(pool) = self.pool {
            pool.put_back(blocks);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::HashErrorKind;

    #[test]
    fn default_parameters_meet_owasp() {
        let h = Argon2Hasher::default();
        assert_eq!(h.m_cost_kib(), 19_456);
        assert_eq!(h.t_cost(), 2);
        assert_eq!(h.p_cost(), 1);
    }

    #[test]
    fn new_refuses_weak_parameters() {
        for (m, t, p) in [(1024, 2, 1), (19_456, 1, 1), (19_456, 2, 0)] {
            let e = Argon2Hasher::new(m, t, p).expect_err("weak or invalid");
            assert_eq!(e.kind(), HashErrorKind::Parameters, "{m} {t} {p}");
            assert!(
                e.to_string()
                    .starts_with("the argon2 parameters are invalid"),
                "{e}"
            );
        }
        assert!(Argon2Hasher::new(65_536, 3, 1).is_ok());
    }

    #[test]
    fn needs_rehash_detects_outdated_parameters() {
        let weak = Argon2Hasher::insecure_for_tests();
        let phc = weak.hash(b"pw").expect("hash");
        assert!(!weak.needs_rehash(&phc));
        assert!(Argon2Hasher::default().needs_rehash(&phc));
        assert!(weak.needs_rehash("not a phc string"));
        let argon2i = "$argon2i$v=19$m=8,t=1,p=1$c29tZXNhbHQ$RdescudvJCsgt3ub+b+dWRWJTmaaJObG";
        assert!(weak.needs_rehash(argon2i));
    }

    #[test]
    fn dummy_hash_uses_current_parameters_and_verifies_false() {
        let h = Argon2Hasher::insecure_for_tests();
        let dummy = h.dummy_hash().to_owned();
        assert!(!h.needs_rehash(&dummy));
        assert!(!h.verify(b"", &dummy).expect("valid hash"));
        assert_eq!(h.dummy_hash(), dummy, "computed once");
    }

    #[test]
    fn corrupt_stored_hash_is_an_error_not_a_mismatch() {
        let h = Argon2Hasher::insecure_for_tests();
        assert!(matches!(
            h.verify(b"pw", "garbage"),
            Err(e) if e.kind() == HashErrorKind::InvalidStoredHash
        ));
        // argon2's error is kept as the source, for logs, without being part of the API.
        let e = h.verify(b"pw", "garbage").expect_err("corrupt");
        let source = std::error::Error::source(&e).expect("a source");
        assert!(source.is::<argon2::password_hash::Error>(), "{source:?}");
        assert!(matches!(
            crate::Error::from(e),
            crate::Error::PasswordHash(ref h) if h.kind() == HashErrorKind::InvalidStoredHash
        ));
    }

    /// A hash made by argon2's own `hash_password` (the code path before the buffer pool).
    fn argon2_crate_hash(
        algorithm: Algorithm,
        version: Version,
        params: Params,
        password: &[u8],
    ) -> String {
        use argon2::password_hash::PasswordHasher as _;
        let salt = SaltString::encode_b64(b"0123456789abcdef").expect("salt");
        Argon2::new(algorithm, version, params)
            .hash_password(password, &salt)
            .expect("hash")
            .to_string()
    }

    fn params(m: u32, t: u32, p: u32) -> Params {
        Params::new(m, t, p, None).expect("params")
    }

    fn is_invalid_stored_hash(r: Result<bool, HashError>) -> bool {
        matches!(r, Err(e) if e.kind() == HashErrorKind::InvalidStoredHash)
    }

    #[test]
    fn round_trip() {
        let h = Argon2Hasher::insecure_for_tests();
        let phc = h.hash(b"correct horse").expect("hash");
        assert!(phc.starts_with("$argon2id$v=19$m=8,t=1,p=1$"), "{phc}");
        assert!(h.verify(b"correct horse", &phc).expect("valid"));
        assert!(!h.verify(b"correct horsf", &phc).expect("valid"));
        assert!(!h.verify(b"", &phc).expect("valid"));
    }

    #[test]
    fn hash_is_byte_identical_to_argon2_hash_password() {
        use argon2::password_hash::PasswordHasher as _;
        for h in [Argon2Hasher::insecure_for_tests(), Argon2Hasher::default()] {
            let salt = *b"0123456789abcdef";
            let ours = h.hash_with_salt(b"pw", &salt).expect("hash");
            let salt = SaltString::encode_b64(&salt).expect("salt");
            let theirs = h.argon2().hash_password(b"pw", &salt).expect("hash");
            assert_eq!(ours, theirs.to_string());
        }
    }

    #[test]
    fn hashes_from_argon2_verify_and_ours_verify_with_argon2() {
        use argon2::password_hash::PasswordVerifier as _;
        let h = Argon2Hasher::insecure_for_tests();
        for (alg, ver) in [
            (Algorithm::Argon2id, Version::V0x13),
            (Algorithm::Argon2i, Version::V0x13),
            (Algorithm::Argon2d, Version::V0x10),
        ] {
            let old = argon2_crate_hash(alg, ver, params(8, 1, 1), b"pw");
            assert!(h.verify(b"pw", &old).expect("valid"), "{old}");
            assert!(!h.verify(b"px", &old).expect("valid"), "{old}");
        }
        let ours = h.hash(b"pw").expect("hash");
        let parsed = PasswordHash::new(&ours).expect("phc");
        assert!(Argon2::default().verify_password(b"pw", &parsed).is_ok());
        assert!(Argon2::default().verify_password(b"px", &parsed).is_err());
    }

    #[test]
    fn default_hash_made_by_argon2_verifies() {
        let h = Argon2Hasher::default();
        let old = argon2_crate_hash(Algorithm::Argon2id, Version::V0x13, h.params.clone(), b"pw");
        assert!(old.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
        assert!(h.verify(b"pw", &old).expect("valid"));
        assert_eq!(h.pooled_buffers(), 1);
    }

    #[test]
    fn other_parameters_verify_smaller_pooled_larger_temporary() {
        let h = Argon2Hasher::insecure_for_tests();
        // Larger memory than ours (within the cap): a temporary buffer, not pooled.
        let larger =
            argon2_crate_hash(Algorithm::Argon2id, Version::V0x13, params(64, 2, 2), b"pw");
        assert!(h.verify(b"pw", &larger).expect("valid"));
        assert!(!h.verify(b"px", &larger).expect("valid"));
        assert_eq!(h.pooled_buffers(), 0);
        // Smaller memory than ours: a pooled buffer.
        let big = Argon2Hasher::with_params(64, 1, 1).expect("params");
        let smaller =
            argon2_crate_hash(Algorithm::Argon2id, Version::V0x13, params(8, 1, 1), b"pw");
        assert!(big.verify(b"pw", &smaller).expect("valid"));
        assert_eq!(big.pooled_buffers(), 1);
        // A 64-byte output and associated data are argon2 features too.
        let p = argon2::ParamsBuilder::new()
            .m_cost(8)
            .t_cost(1)
            .p_cost(1)
            .output_len(64)
            .data(argon2::AssociatedData::new(b"ad").expect("ad"))
            .build()
            .expect("params");
        let long = argon2_crate_hash(Algorithm::Argon2id, Version::V0x13, p, b"pw");
        assert!(h.verify(b"pw", &long).expect("valid"), "{long}");
        assert!(!h.verify(b"px", &long).expect("valid"));
    }

    #[test]
    fn foreign_corrupt_and_absurd_hashes_are_refused_without_allocating() {
        let h = Argon2Hasher::insecure_for_tests();
        let out = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
        let salt = "c29tZXNhbHRzb21lc2FsdA";
        let refused = [
            "$2b$12$R9h/cIPz0gi.URNNX3kh2OPST9/PgBkqquzi.Ss7KIUgO2t0jWMUW".to_owned(),
            "garbage".to_owned(),
            "!".to_owned(),
            String::new(),
            format!("$scrypt$ln=16,r=8,p=1${salt}${out}"),
            format!("$argon2x$v=19$m=8,t=1,p=1${salt}${out}"),
            format!("$argon2id$v=18$m=8,t=1,p=1${salt}${out}"),
            // 4 GiB, and just over the 256 MiB floor.
            format!("$argon2id$v=19$m=4194304,t=2,p=1${salt}${out}"),
            format!("$argon2id$v=19$m=262145,t=1,p=1${salt}${out}"),
            format!("$argon2id$v=19$m=4294967295,t=1,p=1${salt}${out}"),
            format!("$argon2id$v=19$m=8,t=17,p=1${salt}${out}"),
            format!("$argon2id$v=19$m=8,t=4294967295,p=1${salt}${out}"),
            format!("$argon2id$v=19$m=262144,t=1,p=17${salt}${out}"),
            format!("$argon2id$v=19$m=8,t=1,p=2${salt}${out}"),
            format!("$argon2id$v=19$m=8,t=0,p=1${salt}${out}"),
            format!("$argon2id$v=19$m=8,t=1,p=1,x=1${salt}${out}"),
            // No hash, no salt, a salt too short for argon2, an output too short.
            format!("$argon2id$v=19$m=8,t=1,p=1${salt}"),
            "$argon2id$v=19$m=8,t=1,p=1".to_owned(),
            format!("$argon2id$v=19$m=8,t=1,p=1$c29tZQ${out}"),
            format!("$argon2id$v=19$m=8,t=1,p=1${salt}$AAAAAAAA"),
        ];
        for phc in &refused {
            let started = std::time::Instant::now();
            assert!(is_invalid_stored_hash(h.verify(b"pw", phc)), "{phc:?}");
            assert!(
                started.elapsed() < std::time::Duration::from_millis(100),
                "{phc:?} took {:?}",
                started.elapsed()
            );
        }
        assert_eq!(h.pooled_buffers(), 0, "nothing was hashed");
    }

    #[test]
    fn caps_scale_with_own_parameters() {
        let h = Argon2Hasher::with_params(100_000, 5, 5).expect("params");
        let cap_m = h.check_stored_params(&params(400_000, 20, 20));
        assert!(cap_m.is_ok(), "{cap_m:?}");
        assert!(h.check_stored_params(&params(400_001, 1, 1)).is_err());
        assert!(h.check_stored_params(&params(8, 21, 1)).is_err());
        assert!(h.check_stored_params(&params(400_000, 1, 21)).is_err());
        let small = Argon2Hasher::insecure_for_tests();
        assert!(small.check_stored_params(&params(262_144, 16, 16)).is_ok());
    }

    #[test]
    fn pool_holds_at_most_the_number_of_concurrent_users() {
        let h = Argon2Hasher::insecure_for_tests();
        let threads = 8;
        let start = std::sync::Barrier::new(threads);
        std::thread::scope(|s| {
            for _ in 0..threads {
                s.spawn(|| {
                    start.wait();
                    for _ in 0..25 {
                        let phc = h.hash(b"pw").expect("hash");
                        assert!(h.verify(b"pw", &phc).expect("valid"));
                    }
                });
            }
        });
        let pooled = h.pooled_buffers();
        assert!((1..=threads).contains(&pooled), "{pooled}");
        // Sequential use afterwards reuses them and adds none.
        for _ in 0..10 {
            h.hash(b"pw").expect("hash");
        }
        assert_eq!(h.pooled_buffers(), pooled);
    }

    #[test]
    fn pool_cap_holds() {
        let h = Argon2Hasher::insecure_for_tests();
        let held: Vec<_> = (0..POOL_CAP + 36).map(|_| h.pool.take()).collect();
        assert_eq!(h.pooled_buffers(), 0);
        drop(held);
        assert_eq!(h.pooled_buffers(), POOL_CAP);
    }

    #[test]
    fn returned_buffers_are_cleared_and_keep_their_size() {
        let h = Argon2Hasher::insecure_for_tests();
        h.hash(b"pw").expect("hash");
        let free = h.pool.lock();
        assert_eq!(free.len(), 1);
        assert_eq!(free[0].len(), h.params.block_count());
        let zero = format!("{:?}", Block::new());
        assert!(free[0].iter().all(|b| format!("{b:?}") == zero));
    }
}
