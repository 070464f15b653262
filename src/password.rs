//! Password hashing: argon2id, PHC strings, a dummy hash for unknown users, rehash checks.

use std::fmt;
use std::sync::OnceLock;

use argon2::password_hash::{PasswordHash, PasswordHasher as _, PasswordVerifier as _, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use rand::TryRngCore as _;
use zeroize::Zeroizing;

use crate::error::{Error, HashError};

/// Hashes and verifies passwords. [`Argon2Hasher`] is the implementation keycard uses; the
/// trait exists so you can wrap it (to count or time verifications, or to verify legacy
/// hashes during a migration).
///
/// All methods are synchronous and CPU-bound: the authenticator calls them on a blocking
/// thread, never on the async executor.
pub trait PasswordHasher: Send + Sync + fmt::Debug + 'static {
    /// Hashes `password` with a fresh random salt into a PHC string.
    ///
    /// # Errors
    /// [`Error::PasswordHash`] if the parameters refuse the input, or
    /// [`Error::Randomness`] if no salt could be drawn.
    fn hash(&self, password: &[u8]) -> Result<String, Error>;

    /// Whether `password` matches the PHC string `phc`. A mismatch is `Ok(false)`.
    ///
    /// # Errors
    /// [`Error::PasswordHash`] if `phc` is not a valid hash.
    fn verify(&self, password: &[u8], phc: &str) -> Result<bool, Error>;

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
/// Memory: each hash in progress holds `m_cost` KiB. The authenticator bounds how many run
/// at once ([`AuthenticatorBuilder::max_concurrent_hashes`](crate::AuthenticatorBuilder::max_concurrent_hashes)),
/// so the peak is that bound times `m_cost`.
///
/// ```
/// use keycard::{Argon2Hasher, PasswordHasher};
/// let hasher = Argon2Hasher::default();
/// let phc = hasher.hash(b"correct horse")?;
/// assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
/// assert!(hasher.verify(b"correct horse", &phc)?);
/// assert!(!hasher.verify(b"wrong", &phc)?);
/// # Ok::<(), keycard::Error>(())
/// ```
pub struct Argon2Hasher {
    params: Params,
    dummy: OnceLock<String>,
}

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
    /// [`Error::PasswordHash`] if argon2 rejects the parameters or they are below the minimum.
    pub fn new(m_cost_kib: u32, t_cost: u32, p_cost: u32) -> Result<Self, Error> {
        if m_cost_kib < Self::MIN_M_COST || t_cost < Self::MIN_T_COST {
            return Err(Error::PasswordHash(HashError::Argon2(
                argon2::password_hash::Error::ParamValueInvalid(
                    argon2::password_hash::errors::InvalidValue::TooShort,
                ),
            )));
        }
        Self::with_params(m_cost_kib, t_cost, p_cost)
    }

    /// A hasher with tiny parameters (m = 8 KiB, t = 1), for tests that hash many passwords.
    /// Never use it in production: such hashes are cheap to brute-force.
    pub fn insecure_for_tests() -> Self {
        Self::with_params(8, 1, 1).unwrap_or_default()
    }

    fn with_params(m: u32, t: u32, p: u32) -> Result<Self, Error> {
        let params = Params::new(m, t, p, None)
            .map_err(|e| Error::PasswordHash(HashError::Argon2(e.into())))?;
        Ok(Self {
            params,
            dummy: OnceLock::new(),
        })
    }

    /// The argon2 parameters in use.
    pub fn params(&self) -> &Params {
        &self.params
    }

    fn argon2(&self) -> Argon2<'static> {
        Argon2::new(Algorithm::Argon2id, Version::V0x13, self.params.clone())
    }
}

impl Default for Argon2Hasher {
    fn default() -> Self {
        let params = Params::new(Self::MIN_M_COST, Self::MIN_T_COST, 1, None)
            .unwrap_or_else(|_| Params::default());
        Self {
            params,
            dummy: OnceLock::new(),
        }
    }
}

impl fmt::Debug for Argon2Hasher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Argon2Hasher")
            .field("m_cost", &self.params.m_cost())
            .field("t_cost", &self.params.t_cost())
            .field("p_cost", &self.params.p_cost())
            .finish()
    }
}

impl PasswordHasher for Argon2Hasher {
    fn hash(&self, password: &[u8]) -> Result<String, Error> {
        let mut salt = [0u8; 16];
        rand::rngs::OsRng
            .try_fill_bytes(&mut salt)
            .map_err(Error::Randomness)?;
        let salt =
            SaltString::encode_b64(&salt).map_err(|e| Error::PasswordHash(HashError::Argon2(e)))?;
        self.argon2()
            .hash_password(password, &salt)
            .map(|h| h.to_string())
            .map_err(|e| Error::PasswordHash(HashError::Argon2(e)))
    }

    fn verify(&self, password: &[u8], phc: &str) -> Result<bool, Error> {
        let parsed = PasswordHash::new(phc)
            .map_err(|e| Error::PasswordHash(HashError::InvalidStoredHash(e)))?;
        // Verification uses the parameters recorded in the hash, not ours.
        match self.argon2().verify_password(password, &parsed) {
            Ok(()) => Ok(true),
            Err(argon2::password_hash::Error::Password) => Ok(false),
            Err(e) => Err(Error::PasswordHash(HashError::Argon2(e))),
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_parameters_meet_owasp() {
        let h = Argon2Hasher::default();
        assert_eq!(h.params().m_cost(), 19_456);
        assert_eq!(h.params().t_cost(), 2);
        assert_eq!(h.params().p_cost(), 1);
    }

    #[test]
    fn new_refuses_weak_parameters() {
        assert!(Argon2Hasher::new(1024, 2, 1).is_err());
        assert!(Argon2Hasher::new(19_456, 1, 1).is_err());
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
            Err(Error::PasswordHash(HashError::InvalidStoredHash(_)))
        ));
    }
}
