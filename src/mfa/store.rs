//! Where second factors live: the [`SecondFactorStore`] contract, what it stores
//! ([`TotpRecord`], [`RecoveryCodeDigest`]) and the in-memory store.

use std::collections::HashMap;
use std::fmt::{self, Debug};
use std::sync::{Arc, Mutex, PoisonError};

use async_trait::async_trait;
use subtle::ConstantTimeEq;
use time::OffsetDateTime;

use crate::error::StoreError;
use crate::user::UserId;

/// The most recovery codes a store keeps per user; a larger set is refused.
pub(crate) const MAX_RECOVERY_CODES: usize = 64;

/// A user's TOTP factor as a store keeps it. The secret is sealed (encrypted and
/// authenticated by a [`SecretBox`](super::SecretBox) with the application's key), never
/// plain.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct TotpRecord {
    /// Whose factor this is.
    pub user_id: UserId,
    /// The secret, sealed: key id, nonce and ciphertext (at most
    /// [`MAX_SEALED_LEN`](Self::MAX_SEALED_LEN) bytes).
    pub sealed_secret: Vec<u8>,
    /// When enrolment began (whole microseconds).
    pub created_at: OffsetDateTime,
    /// When the user proved a code and the factor became active; `None` while enrolment
    /// waits for that proof (the factor is not used for logins until then).
    pub confirmed_at: Option<OffsetDateTime>,
    /// The last time step whose code was accepted: a code for it or an earlier step is a
    /// replay.
    pub last_step: Option<u64>,
}

impl TotpRecord {
    /// The longest sealed secret a store must keep, in bytes.
    pub const MAX_SEALED_LEN: usize = 255;

    /// A pending (unconfirmed) factor for `user_id`, created at `now`.
    pub fn pending(user_id: UserId, sealed_secret: Vec<u8>, now: OffsetDateTime) -> Self {
        Self {
            user_id,
            sealed_secret,
            created_at: crate::session::truncate_to_micros(now),
            confirmed_at: None,
            last_step: None,
        }
    }

    /// Whether the factor is active (its enrolment was confirmed with a code).
    pub fn is_confirmed(&self) -> bool {
        self.confirmed_at.is_some()
    }
}

impl Debug for TotpRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TotpRecord")
            .field("user_id", &self.user_id)
            .field(
                "sealed_secret",
                &format_args!("<{} bytes>", self.sealed_secret.len()),
            )
            .field("created_at", &self.created_at)
            .field("confirmed_at", &self.confirmed_at)
            .field("last_step", &self.last_step)
            .finish()
    }
}

/// The digest a store keeps of one recovery code: SHA-256 over the user id and the code
/// (see [`RecoveryCode::digest`](super::RecoveryCode::digest)). A code has 80 random bits, so
/// a copy of the store yields no code.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct RecoveryCodeDigest([u8; 32]);

impl RecoveryCodeDigest {
    /// The digest from its 32 bytes (as a store kept them).
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// The 32 bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// The digest from a stored byte slice.
    ///
    /// # Errors
    /// [`StoreError::Corrupt`] unless `bytes` is 32 bytes long.
    pub fn from_slice(bytes: &[u8]) -> Result<Self, StoreError> {
        <[u8; 32]>::try_from(bytes)
            .map(Self)
            .map_err(|_| StoreError::corrupt("a recovery code digest is not 32 bytes"))
    }
}

impl Debug for RecoveryCodeDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RecoveryCodeDigest(..)")
    }
}

/// Persists second factors beside the users: each user's TOTP factor and recovery codes.
/// Dyn-compatible: the [`Authenticator`](crate::Authenticator) holds an
/// `Arc<dyn SecondFactorStore>`. keycard ships one per user backend (memory, SQLite,
/// PostgreSQL, MySQL / MariaDB); the `conformance` feature's
/// `keycard::conformance::second_factors` checks yours.
///
/// # Contract
/// - **No plain secret**: the store keeps what it is given, a sealed TOTP secret and code
///   digests; it never sees a secret or a code.
/// - **One TOTP factor per user.** [`begin_totp`](Self::begin_totp) stores a pending factor,
///   replacing a pending one, and refuses (returns `false`, changing nothing) if the user
///   has a confirmed one; atomic.
/// - **[`confirm_totp`](Self::confirm_totp)** activates the pending factor only if its sealed
///   secret is still `sealed_secret` (a re-enrolment that replaced it meanwhile is not
///   activated), and records `step` as its last used step; atomic.
/// - **[`use_totp_step`](Self::use_totp_step) is a compare-and-set**: it records `step` only
///   if the user has a confirmed factor whose last step is absent or lower, and returns
///   whether it did. Of any number of concurrent calls with one step, through any number of
///   store instances over one backend, exactly one gets `true`: a code is accepted once.
/// - **[`use_recovery_code`](Self::use_recovery_code) is atomic and single use**: it deletes
///   the user's code with that digest and returns whether it did; of concurrent calls, one
///   gets `true`.
/// - [`replace_recovery_codes`](Self::replace_recovery_codes) replaces the whole set in one
///   transaction (the old codes stop working as the new ones start).
/// - User ids are untrusted input: never build a query by concatenation.
/// - Errors mean the backend failed; "not found" is `Ok(None)` / `Ok(false)` / `Ok(0)`.
#[async_trait]
pub trait SecondFactorStore: Send + Sync + Debug {
    /// The user's TOTP factor, confirmed or pending.
    ///
    /// # Errors
    /// [`StoreError`] if the backend failed.
    async fn totp(&self, user: &UserId) -> Result<Option<TotpRecord>, StoreError>;

    /// Stores `record` (pending: `confirmed_at` and `last_step` are `None`) as the user's
    /// factor, replacing a pending one; `false` if the user has a confirmed factor.
    ///
    /// # Errors
    /// [`StoreError`] if the backend failed.
    async fn begin_totp(&self, record: &TotpRecord) -> Result<bool, StoreError>;

    /// Activates the user's pending factor if its sealed secret is `sealed_secret`, with
    /// `step` as its last used step and `now` as `confirmed_at`; `false` otherwise.
    ///
    /// # Errors
    /// [`StoreError`] if the backend failed.
    async fn confirm_totp(
        &self,
        user: &UserId,
        sealed_secret: &[u8],
        step: u64,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError>;

    /// Records `step` as the last used step of the user's confirmed factor if it is later
    /// than the stored one; whether it did (see the contract).
    ///
    /// # Errors
    /// [`StoreError`] if the backend failed.
    async fn use_totp_step(&self, user: &UserId, step: u64) -> Result<bool, StoreError>;

    /// Replaces the sealed secret (after a key rotation) if it is still `old`; whether it
    /// did.
    ///
    /// # Errors
    /// [`StoreError`] if the backend failed.
    async fn reseal_totp(&self, user: &UserId, old: &[u8], new: &[u8]) -> Result<bool, StoreError>;

    /// Deletes the user's TOTP factor, pending or confirmed; whether there was one.
    ///
    /// # Errors
    /// [`StoreError`] if the backend failed.
    async fn remove_totp(&self, user: &UserId) -> Result<bool, StoreError>;

    /// Replaces the user's recovery codes with `codes` (an empty slice deletes them all), in
    /// one transaction.
    ///
    /// # Errors
    /// [`StoreError`] if the backend failed.
    async fn replace_recovery_codes(
        &self,
        user: &UserId,
        codes: &[RecoveryCodeDigest],
        now: OffsetDateTime,
    ) -> Result<(), StoreError>;

    /// Deletes the user's recovery code with digest `code`; whether it did (see the
    /// contract).
    ///
    /// # Errors
    /// [`StoreError`] if the backend failed.
    async fn use_recovery_code(
        &self,
        user: &UserId,
        code: &RecoveryCodeDigest,
    ) -> Result<bool, StoreError>;

    /// How many unused recovery codes the user has.
    ///
    /// # Errors
    /// [`StoreError`] if the backend failed.
    async fn recovery_codes_left(&self, user: &UserId) -> Result<u32, StoreError>;
}

macro_rules! forward_second_factor_store {
    ($($ptr:ty),*) => {$(
        #[async_trait]
        impl<T: SecondFactorStore + ?Sized> SecondFactorStore for $ptr {
            async fn totp(&self, user: &UserId) -> Result<Option<TotpRecord>, StoreError> {
                (**self).totp(user).await
            }
            async fn begin_totp(&self, record: &TotpRecord) -> Result<bool, StoreError> {
                (**self).begin_totp(record).await
            }
            async fn confirm_totp(&self, user: &UserId, sealed_secret: &[u8], step: u64, now: OffsetDateTime) -> Result<bool, StoreError> {
                (**self).confirm_totp(user, sealed_secret, step, now).await
            }
            async fn use_totp_step(&self, user: &UserId, step: u64) -> Result<bool, StoreError> {
                (**self).use_totp_step(user, step).await
            }
            async fn reseal_totp(&self, user: &UserId, old: &[u8], new: &[u8]) -> Result<bool, StoreError> {
                (**self).reseal_totp(user, old, new).await
            }
            async fn remove_totp(&self, user: &UserId) -> Result<bool, StoreError> {
                (**self).remove_totp(user).await
            }
            async fn replace_recovery_codes(&self, user: &UserId, codes: &[RecoveryCodeDigest], now: OffsetDateTime) -> Result<(), StoreError> {
                (**self).replace_recovery_codes(user, codes, now).await
            }
            async fn use_recovery_code(&self, user: &UserId, code: &RecoveryCodeDigest) -> Result<bool, StoreError> {
                (**self).use_recovery_code(user, code).await
            }
            async fn recovery_codes_left(&self, user: &UserId) -> Result<u32, StoreError> {
                (**self).recovery_codes_left(user).await
            }
        }
    )*};
}

forward_second_factor_store!(Arc<T>, Box<T>);

/// Refuses a sealed secret over [`TotpRecord::MAX_SEALED_LEN`], as the SQL stores do.
fn check_sealed_len(sealed: &[u8]) -> Result<(), StoreError> {
    if sealed.len() > TotpRecord::MAX_SEALED_LEN {
        return Err(StoreError::backend(format!(
            "a sealed TOTP secret of {} bytes is longer than TotpRecord::MAX_SEALED_LEN ({} bytes)",
            sealed.len(),
            TotpRecord::MAX_SEALED_LEN
        )));
    }
    Ok(())
}

/// Second factors in process memory: lost on restart, not shared between processes. For
/// tests, demos and single-process services, beside a
/// [`MemoryUserStore`](crate::MemoryUserStore). Every operation holds one mutex for a few map
/// operations, which makes each atomic. Memory grows with the users who enrol (one record of
/// at most [`TotpRecord::MAX_SEALED_LEN`] bytes and at most 64 distinct digests each), like the
/// user store beside it.
#[derive(Debug, Default)]
pub struct MemorySecondFactorStore {
    state: Mutex<HashMap<UserId, Factors>>,
}

#[derive(Debug, Default)]
struct Factors {
    totp: Option<TotpRecord>,
    recovery: Vec<RecoveryCodeDigest>,
}

impl MemorySecondFactorStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn with<R>(&self, f: impl FnOnce(&mut HashMap<UserId, Factors>) -> R) -> R {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let out = f(&mut state);
        state.retain(|_, factors| factors.totp.is_some() || !factors.recovery.is_empty());
        out
    }
}

#[async_trait]
impl SecondFactorStore for MemorySecondFactorStore {
    async fn totp(&self, user: &UserId) -> Result<Option<TotpRecord>, StoreError> {
        Ok(self.with(|s| s.get(user).and_then(|f| f.totp.clone())))
    }

    async fn begin_totp(&self, record: &TotpRecord) -> Result<bool, StoreError> {
        check_sealed_len(&record.sealed_secret)?;
        Ok(self.with(|s| {
            let factors = s.entry(record.user_id.clone()).or_default();
            if factors.totp.as_ref().is_some_and(TotpRecord::is_confirmed) {
                return false;
            }
            factors.totp = Some(record.clone());
            true
        }))
    }

    async fn confirm_totp(
        &self,
        user: &UserId,
        sealed_secret: &[u8],
        step: u64,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        Ok(self.with(|s| {
            let Some(totp) = s.get_mut(user).and_then(|f| f.totp.as_mut()) else {
                return false;
            };
            if totp.is_confirmed() || totp.sealed_secret != sealed_secret {
                return false;
            }
            totp.confirmed_at = Some(crate::session::truncate_to_micros(now));
            totp.last_step = Some(step);
            true
        }))
    }

    async fn use_totp_step(&self, user: &UserId, step: u64) -> Result<bool, StoreError> {
        Ok(
            self.with(|s| match s.get_mut(user).and_then(|f| f.totp.as_mut()) {
                Some(totp) if totp.is_confirmed() && totp.last_step.is_none_or(|l| l < step) => {
                    totp.last_step = Some(step);
                    true
                }
                _ => false,
            }),
        )
    }

    async fn reseal_totp(&self, user: &UserId, old: &[u8], new: &[u8]) -> Result<bool, StoreError> {
        check_sealed_len(new)?;
        Ok(
            self.with(|s| match s.get_mut(user).and_then(|f| f.totp.as_mut()) {
                Some(totp) if totp.sealed_secret == old => {
                    totp.sealed_secret = new.to_vec();
                    true
                }
                _ => false,
            }),
        )
    }

    async fn remove_totp(&self, user: &UserId) -> Result<bool, StoreError> {
        Ok(self.with(|s| s.get_mut(user).and_then(|f| f.totp.take()).is_some()))
    }

    async fn replace_recovery_codes(
        &self,
        user: &UserId,
        codes: &[RecoveryCodeDigest],
        _now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        if codes.len() > MAX_RECOVERY_CODES {
            return Err(StoreError::backend(format!(
                "{} recovery codes are more than a store keeps per user ({MAX_RECOVERY_CODES})",
                codes.len()
            )));
        }
        let mut distinct: Vec<RecoveryCodeDigest> = Vec::with_capacity(codes.len());
        for code in codes {
            if !distinct.contains(code) {
                distinct.push(*code);
            }
        }
        self.with(|s| s.entry(user.clone()).or_default().recovery = distinct);
        Ok(())
    }

    async fn use_recovery_code(
        &self,
        user: &UserId,
        code: &RecoveryCodeDigest,
    ) -> Result<bool, StoreError> {
        Ok(self.with(|s| {
            let Some(factors) = s.get_mut(user) else {
                return false;
            };
            let found = factors
                .recovery
                .iter()
                .position(|d| bool::from(d.as_bytes().ct_eq(code.as_bytes())));
            found.map(|i| factors.recovery.swap_remove(i)).is_some()
        }))
    }

    async fn recovery_codes_left(&self, user: &UserId) -> Result<u32, StoreError> {
        Ok(self.with(|s| {
            s.get(user)
                .map_or(0, |f| u32::try_from(f.recovery.len()).unwrap_or(u32::MAX))
        }))
    }
}
