//! One-time tokens: the primitive under email verification, password reset, email sign-in
//! links and email change.
//!
//! A one-time token is a link's secret. [`OneTimeTokens`] issues one for a user, a
//! [purpose](OneTimePurpose) and a [binding](Binding) (a digest of the account state it is
//! issued for), and later consumes it, once:
//!
//! - **purpose-bound**: a password-reset token is refused as an email-verification token,
//!   and so on; applications add their own purposes ([`OneTimePurpose::custom`]);
//! - **short-lived**: reset 30 minutes, sign-in 15 minutes, verification 24 hours, email
//!   change 1 hour by default ([`OneTimeTokens::with_lifetime`]); expired tokens are refused
//!   and purged ([`OneTimeTokens::purge_expired`], [`OneTimeTokens::spawn_purge_task`]);
//! - **single use**: consuming is one atomic step in the store (a conditional `DELETE`, a Lua
//!   script, a mutex): of two concurrent consumes, on one instance or two over one database,
//!   exactly one wins;
//! - **256 bits from the OS CSPRNG, never stored in plain text**: the token is
//!   `kcot_<id>.<secret>_<checksum>`, the split-token scheme of sessions with its own prefix
//!   and checksum; the store keeps the public id and the SHA-256 digest of the secret
//!   ([`OneTimeRecord`]), and the [`OneTimeTokenStore`] trait never receives the secret;
//! - **bound to the account state**: [`Binding::for_user`] digests the email (verification)
//!   or the email and the password hash (reset, sign-in, email change); consuming with a
//!   different binding refuses the token ([`OneTimeError::Stale`]) and spends it, so a reset
//!   link dies when the password or the email changes;
//! - **capped**: at most 3 outstanding per user and purpose by default
//!   ([`OneTimeTokens::with_max_outstanding`]); issuing one more retires the oldest in the same
//!   atomic step; [`OneTimeTokens::retire_all`] retires every one (after a successful reset);
//! - **bounded input**: a token string is exactly [`ONE_TIME_TOKEN_LEN`] characters and its
//!   parser is total (any input: a token or [`MalformedOneTimeToken`], never a panic); user
//!   ids are at most [`MAX_USER_ID_LEN`] bytes, payloads at most [`MAX_PAYLOAD_LEN`].
//!
//! # Why stored digests rather than stateless signed tokens
//! A signed token (Rails' `generates_token_for`, a JWT) needs no table, but these tokens need
//! state anyway: single use means remembering that a token was used, and "at most 3
//! outstanding, the oldest retired" and "a successful reset retires the others" mean knowing
//! which are outstanding. A signed token also needs a server key, which can leak (letting
//! anyone mint reset links for any account) and must be rotated; a stored digest has no key,
//! a dump of the table yields no usable token, and any token can be revoked by deleting its
//! row. So keycard stores tokens as sessions are stored: by id, with a SHA-256 digest of
//! 256 random bits (no salt or slow hash needed: it cannot be brute-forced).
//!
//! The secret is compared twice: the store matches the digest inside its atomic delete (a
//! database compares digests, which an attacker cannot steer byte by byte, so the comparison's
//! timing tells nothing about the secret), and [`OneTimeTokens`] compares the returned digest
//! again in constant time, so a faulty store cannot accept a wrong secret.
//!
//! # One error for every refusal
//! [`OneTimeError::Invalid`] covers a malformed, unknown, used, retired, expired or
//! wrong-purpose token and a wrong secret alike, so a probe cannot tell them apart; only a
//! holder of a once-valid token learns [`OneTimeError::Stale`] ("the account changed since").
//! The HTTP layer answers both with one 4xx.
//!
//! # Stores
//! | backend | type | feature |
//! |---|---|---|
//! | memory (bounded) | [`MemoryOneTimeStore`] | always |
//! | SQLite | `keycard::sqlite::Sqlite::one_time_store` | `sqlite` |
//! | PostgreSQL | `keycard::postgres::Postgres::one_time_store` | `postgres` |
//! | MySQL / MariaDB | `keycard::mysql::Mysql::one_time_store` | `mysql` |
//! | Redis, Redis Cluster | `keycard::redis::Redis::one_time_store` | `redis` |
//!
//! The conformance suite `keycard::conformance::one_time` (feature `conformance`) checks a
//! store of your own against the contract.
//!
//! ```
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! use keycard::one_time::{Binding, MemoryOneTimeStore, OneTimeError, OneTimePurpose, OneTimeTokens};
//! use keycard::UserRecord;
//!
//! let tokens = OneTimeTokens::new(MemoryOneTimeStore::new());
//! let mut ann = UserRecord::new(1_i64, "ann@example.com", "$argon2id$v=19$...");
//! let reset = OneTimePurpose::PasswordReset;
//!
//! // "Forgot password": issue a token bound to Ann's current password hash and email, and
//! // mail `issued.token.expose_secret()` in a link.
//! let issued = tokens
//!     .issue(&ann.id, &reset, Binding::for_user(&reset, &ann), None)
//!     .await?;
//! let link_token = issued.token.expose_secret().to_owned();
//!
//! // The link is followed: consume with the binding of the account as it is now.
//! let used = tokens
//!     .consume(&link_token, &reset, &Binding::for_user(&reset, &ann))
//!     .await?;
//! assert_eq!(used.user_id, ann.id);
//! // Once only.
//! let again = tokens.consume(&link_token, &reset, &Binding::for_user(&reset, &ann)).await;
//! assert!(matches!(again, Err(OneTimeError::Invalid)));
//!
//! // A token issued before a password change dies with it.
//! let issued = tokens.issue(&ann.id, &reset, Binding::for_user(&reset, &ann), None).await?;
//! ann.password_hash = "$argon2id$v=19$changed".into();
//! let stale = tokens
//!     .consume(issued.token.expose_secret(), &reset, &Binding::for_user(&reset, &ann))
//!     .await;
//! assert!(matches!(stale, Err(OneTimeError::Stale)));
//! # Ok::<(), OneTimeError>(())
//! # }).unwrap();
//! ```

use std::sync::Arc;
use std::time::Duration;

use subtle::ConstantTimeEq;
use time::OffsetDateTime;

use crate::clock::{Clock, SystemClock};
use crate::error::{RandomnessError, StoreError};
use crate::session::truncate_to_micros;
use crate::user::{UserId, UserStore};

mod memory;
mod purpose;
mod store;
mod token;

pub use memory::{CapacityExceeded, MemoryOneTimeStore};
pub use purpose::{Binding, CustomPurpose, InvalidPurpose, OneTimePurpose};
pub use store::{OneTimeRecord, OneTimeTokenStore};
pub use token::{
    shard_of, MalformedOneTimeToken, OneTimeId, OneTimeToken, ONE_TIME_PREFIX, ONE_TIME_TOKEN_LEN,
};

/// The longest payload a token carries, in bytes: room for a passkey ceremony's serialized
/// WebAuthn state. Every store keeps payloads as unbounded text (`TEXT` columns, Redis
/// strings).
pub const MAX_PAYLOAD_LEN: usize = 8192;
/// The longest user id a token is issued to, in bytes.
pub const MAX_USER_ID_LEN: usize = 255;
/// How many tokens of one user and purpose are outstanding at most, by default.
pub const DEFAULT_MAX_OUTSTANDING: u32 = 3;
/// The longest lifetime [`OneTimeTokens::with_lifetime`] accepts: 30 days.
pub const MAX_LIFETIME: Duration = Duration::from_secs(30 * 24 * 3600);

/// Why a one-time token operation failed.
///
/// `Invalid` is deliberately one variant for every refusal an attacker could probe (see the
/// [module docs](self)).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OneTimeError {
    /// The token is malformed, unknown, already used, retired, expired, issued for another
    /// purpose, or its secret is wrong. Nothing tells these apart.
    #[error("the link is invalid or has expired; ask for a new one")]
    Invalid,

    /// The token was valid, but the account changed since it was issued (its password or
    /// email, per its [`Binding`]): it is now spent.
    #[error(
        "the link was issued before the account changed and is no longer valid; ask for a new one"
    )]
    Stale,

    /// The payload is longer than [`MAX_PAYLOAD_LEN`] bytes; nothing was issued.
    #[error("the one-time token payload is longer than {max} bytes; nothing was issued")]
    PayloadTooLong {
        /// The limit.
        max: usize,
    },

    /// The user id is longer than [`MAX_USER_ID_LEN`] bytes; nothing was issued.
    #[error("the user id is longer than {max} bytes; nothing was issued")]
    UserIdTooLong {
        /// The limit.
        max: usize,
    },

    /// A bounded in-memory store is full; nothing was issued. Retry once tokens expire, or
    /// give the store more room.
    #[error("the one-time token store is full; nothing was issued, retry later")]
    CapacityExceeded(#[source] CapacityExceeded),

    /// The store's backend failed; see the source.
    #[error("the one-time token store is unavailable; retry later")]
    Store(#[source] StoreError),

    /// The operating system's random number generator failed; nothing was issued.
    #[error("the system random number generator failed; nothing was issued, retry later")]
    Randomness(#[source] RandomnessError),
}

impl From<StoreError> for OneTimeError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Backend(source) => match source.downcast::<CapacityExceeded>() {
                Ok(full) => Self::CapacityExceeded(*full),
                Err(source) => Self::Store(StoreError::Backend(source)),
            },
            e => Self::Store(e),
        }
    }
}

/// A token just issued: send [`token`](Self::token)'s
/// [`expose_secret`](OneTimeToken::expose_secret) in a link, to the address stored for the
/// user. Holds the secret: its `Debug` is redacted.
#[derive(Debug)]
#[non_exhaustive]
pub struct IssuedToken {
    /// The token.
    pub token: OneTimeToken,
    /// When it dies.
    pub expires_at: OffsetDateTime,
    /// How many older tokens of the same user and purpose this issue retired (the cap).
    pub retired: u64,
}

/// A live token, looked at without being consumed ([`OneTimeTokens::inspect`]): whose it is,
/// so a flow can load the user and compute the current [`Binding`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Pending {
    /// Whom the token was issued to.
    pub user_id: UserId,
    /// Its payload.
    pub payload: Option<String>,
    /// When it dies.
    pub expires_at: OffsetDateTime,
}

/// A token consumed: it is gone from the store, and this is what it carried.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Consumed {
    /// Whom the token was issued to.
    pub user_id: UserId,
    /// Its purpose.
    pub purpose: OneTimePurpose,
    /// Its payload.
    pub payload: Option<String>,
    /// When it was issued.
    pub issued_at: OffsetDateTime,
}

/// Issues and consumes one-time tokens over a [`OneTimeTokenStore`], with a clock, lifetimes
/// and a cap. Cheap to clone; independent of the [`Authenticator`](crate::Authenticator). See
/// the [module docs](self) for an example.
#[derive(Debug, Clone)]
pub struct OneTimeTokens {
    store: Arc<dyn OneTimeTokenStore>,
    clock: Arc<dyn Clock>,
    lifetimes: Arc<Vec<(OneTimePurpose, Duration)>>,
    max_outstanding: u32,
}

impl OneTimeTokens {
    /// Tokens in `store`, on the system clock, with the default lifetimes and at most
    /// [`DEFAULT_MAX_OUTSTANDING`] per user and purpose.
    pub fn new(store: impl OneTimeTokenStore + 'static) -> Self {
        Self::from_arc(Arc::new(store))
    }

    /// As [`new`](Self::new), over a shared store.
    pub fn from_arc(store: Arc<dyn OneTimeTokenStore>) -> Self {
        Self {
            store,
            clock: Arc::new(SystemClock),
            lifetimes: Arc::new(Vec::new()),
            max_outstanding: DEFAULT_MAX_OUTSTANDING,
        }
    }

    /// Reads the time from `clock` (a [`ManualClock`](crate::ManualClock) in tests).
    #[must_use]
    pub fn with_clock(mut self, clock: impl Clock + 'static) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// Tokens of `purpose` live `lifetime`, clamped to 1 second ..= [`MAX_LIFETIME`].
    #[must_use]
    pub fn with_lifetime(mut self, purpose: OneTimePurpose, lifetime: Duration) -> Self {
        let lifetime = lifetime.clamp(Duration::from_secs(1), MAX_LIFETIME);
        let lifetimes = Arc::make_mut(&mut self.lifetimes);
        lifetimes.retain(|(p, _)| p != &purpose);
        lifetimes.push((purpose, lifetime));
        self
    }

    /// At most `max` (at least 1) tokens outstanding per user and purpose; issuing one more
    /// retires the oldest.
    #[must_use]
    pub fn with_max_outstanding(mut self, max: u32) -> Self {
        self.max_outstanding = max.max(1);
        self
    }

    /// How long tokens of `purpose` live.
    pub fn lifetime(&self, purpose: &OneTimePurpose) -> Duration {
        self.lifetimes
            .iter()
            .find(|(p, _)| p == purpose)
            .map_or_else(|| purpose.default_lifetime(), |(_, d)| *d)
    }

    /// The most tokens outstanding per user and purpose.
    pub fn max_outstanding(&self) -> u32 {
        self.max_outstanding
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn OneTimeTokenStore> {
        &self.store
    }

    /// Issues a token for `user` and `purpose`, bound to `binding` (usually
    /// [`Binding::for_user`]), carrying `payload`. Retires the oldest outstanding tokens of
    /// the same user and purpose beyond the cap, in the same atomic step.
    ///
    /// # Errors
    /// [`OneTimeError::UserIdTooLong`] / [`OneTimeError::PayloadTooLong`] for oversized
    /// input, [`OneTimeError::CapacityExceeded`] if a bounded store is full,
    /// [`OneTimeError::Store`] if the store fails, [`OneTimeError::Randomness`] if the
    /// operating system's random number generator does.
    pub async fn issue(
        &self,
        user: &UserId,
        purpose: &OneTimePurpose,
        binding: Binding,
        payload: Option<&str>,
    ) -> Result<IssuedToken, OneTimeError> {
        if user.as_str().len() > MAX_USER_ID_LEN {
            return Err(OneTimeError::UserIdTooLong {
                max: MAX_USER_ID_LEN,
            });
        }
        if payload.is_some_and(|p| p.len() > MAX_PAYLOAD_LEN) {
            return Err(OneTimeError::PayloadTooLong {
                max: MAX_PAYLOAD_LEN,
            });
        }
        let now = truncate_to_micros(self.clock.now());
        let expires_at = now + self.lifetime(purpose);
        // 112 random id bits make a collision practically impossible; a duplicate is retried.
        let mut attempts = 0;
        loop {
            let token = OneTimeToken::generate(user).map_err(OneTimeError::Randomness)?;
            let record = OneTimeRecord {
                id: token.id(),
                user_id: user.clone(),
                purpose: purpose.clone(),
                secret_hash: token.secret_hash(),
                binding,
                payload: payload.map(str::to_owned),
                created_at: now,
                expires_at,
            };
            match self.store.issue(&record, self.max_outstanding, now).await {
                Ok(retired) => {
                    return Ok(IssuedToken {
                        token,
                        expires_at,
                        retired,
                    })
                }
                Err(StoreError::Duplicate) if attempts < 2 => attempts += 1,
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Looks at a live token of `purpose` without consuming it: whose it is. A flow loads
    /// that user, computes the current [`Binding`], then calls [`consume`](Self::consume)
    /// (or uses [`consume_for_user`](Self::consume_for_user), which does all three).
    ///
    /// # Errors
    /// [`OneTimeError::Invalid`] unless `token` is a live token of `purpose` with the right
    /// secret; [`OneTimeError::Store`] if the store fails.
    pub async fn inspect(
        &self,
        token: &str,
        purpose: &OneTimePurpose,
    ) -> Result<Pending, OneTimeError> {
        let (id, digest) = token::parse_id_and_digest(token).map_err(|_| OneTimeError::Invalid)?;
        let now = self.clock.now();
        let record = self
            .store
            .find(&id, now)
            .await?
            .ok_or(OneTimeError::Invalid)?;
        let same_secret: bool = record
            .secret_hash
            .as_bytes()
            .ct_eq(digest.as_bytes())
            .into();
        if !same_secret || &record.purpose != purpose || record.is_expired(now) {
            return Err(OneTimeError::Invalid);
        }
        Ok(Pending {
            user_id: record.user_id,
            payload: record.payload,
            expires_at: record.expires_at,
        })
    }

    /// Consumes `token` for `purpose`, given the `binding` of the account as it is now. At
    /// most once: of concurrent calls with one token, one succeeds.
    ///
    /// # Errors
    /// [`OneTimeError::Invalid`] unless `token` is a live token of `purpose` with the right
    /// secret (nothing is consumed then); [`OneTimeError::Stale`] if it was, but `binding`
    /// differs from the one it was issued with (the token is spent);
    /// [`OneTimeError::Store`] if the store fails.
    pub async fn consume(
        &self,
        token: &str,
        purpose: &OneTimePurpose,
        binding: &Binding,
    ) -> Result<Consumed, OneTimeError> {
        let (id, digest) = token::parse_id_and_digest(token).map_err(|_| OneTimeError::Invalid)?;
        let record = self
            .store
            .consume(&id, purpose, &digest, self.clock.now())
            .await?
            .ok_or(OneTimeError::Invalid)?;
        let same_secret: bool = record
            .secret_hash
            .as_bytes()
            .ct_eq(digest.as_bytes())
            .into();
        if !same_secret || &record.purpose != purpose {
            return Err(OneTimeError::Invalid);
        }
        if &record.binding != binding {
            return Err(OneTimeError::Stale);
        }
        Ok(Consumed {
            user_id: record.user_id,
            purpose: record.purpose,
            payload: record.payload,
            issued_at: record.created_at,
        })
    }

    /// [`inspect`](Self::inspect), load the user from `users`, then
    /// [`consume`](Self::consume) with [`Binding::for_user`]: what the flows do. Returns what
    /// the token carried and the user as loaded.
    ///
    /// # Errors
    /// As [`consume`](Self::consume); [`OneTimeError::Invalid`] also if the user no longer
    /// exists (the token is spent); [`OneTimeError::Store`] if `users` fails.
    pub async fn consume_for_user<S: UserStore + ?Sized>(
        &self,
        token: &str,
        purpose: &OneTimePurpose,
        users: &S,
    ) -> Result<(Consumed, S::User), OneTimeError> {
        let pending = self.inspect(token, purpose).await?;
        match users.find_by_id(&pending.user_id).await? {
            Some(user) => {
                let consumed = self
                    .consume(token, purpose, &Binding::for_user(purpose, &user))
                    .await?;
                Ok((consumed, user))
            }
            None => {
                // The account is gone: spend the token, whatever binding it had.
                let _ = self.consume(token, purpose, &Binding::none()).await;
                Err(OneTimeError::Invalid)
            }
        }
    }

    /// Retires every outstanding token of `user` for `purpose` (after a successful reset, the
    /// other reset links). Returns how many.
    ///
    /// # Errors
    /// [`OneTimeError::Store`] if the store fails.
    pub async fn retire_all(
        &self,
        user: &UserId,
        purpose: &OneTimePurpose,
    ) -> Result<u64, OneTimeError> {
        Ok(self.store.retire_all(user, purpose).await?)
    }

    /// Deletes every expired token from the store. Returns how many.
    ///
    /// # Errors
    /// [`OneTimeError::Store`] if the store fails.
    pub async fn purge_expired(&self) -> Result<u64, OneTimeError> {
        Ok(self.store.purge_expired(self.clock.now()).await?)
    }

    /// Spawns a Tokio task that calls [`purge_expired`](Self::purge_expired) every `every` (at
    /// least one second) until the handle is aborted or the runtime shuts down. Failures are
    /// logged with `tracing` and retried at the next tick.
    ///
    /// # Panics
    /// If called outside a Tokio runtime, like [`tokio::spawn`].
    pub fn spawn_purge_task(&self, every: Duration) -> tokio::task::JoinHandle<()> {
        let this = self.clone();
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(every.max(Duration::from_secs(1)));
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticks.tick().await;
                match this.purge_expired().await {
                    Ok(purged) => {
                        tracing::debug!(purged, "keycard: purged expired one-time tokens")
                    }
                    Err(error) => {
                        tracing::warn!(%error, source = ?std::error::Error::source(&error), "keycard: purging expired one-time tokens failed")
                    }
                }
            }
        })
    }
}
