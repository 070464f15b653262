//! Errors returned by the authenticator, by stores and by throttles.

use std::error::Error as StdError;
use std::fmt;
use std::time::Duration;

/// A `Result` whose error is keycard's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in [`login`](crate::Authenticator::login),
/// [`logout`](crate::Authenticator::logout), [`validate`](crate::Authenticator::validate) and
/// [`expire`](crate::Authenticator::expire).
///
/// Each variant says what the caller (usually an HTTP adapter) should tell the client; the
/// [`http`](crate::http) module maps every variant to a status and a JSON body. Messages never
/// contain a token, a password or a backend's internal detail: the backend error is kept as
/// the [`source`](std::error::Error::source) for your logs.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The email and password do not match a user. Returned for an unknown email too, unless
    /// [`reveal_unknown_email`](crate::AuthenticatorBuilder::reveal_unknown_email) is on.
    #[error("invalid email or password; check both and try again")]
    InvalidCredentials,

    /// A password re-checked for a logged-in user ([`verify_password`](crate::Authenticator::verify_password),
    /// [`reauthenticate`](crate::Authenticator::reauthenticate),
    /// [`change_password`](crate::Authenticator::change_password)) is wrong. Counted by the
    /// throttle like a failed login. Unlike [`Error::InvalidCredentials`] it does not mean the
    /// session is dead: HTTP adapters answer 403, not 401, so a client does not throw a valid
    /// session away over a typo.
    #[error("the password is not correct; enter your current password and try again")]
    IncorrectPassword,

    /// The email given at registration is not one keycard accepts as a login; the rejection
    /// says why. Nothing was hashed or stored.
    #[error("{0}")]
    InvalidEmail(crate::EmailRejection),

    /// [`register`](crate::Authenticator::register) was given an email that already has an
    /// account. Nothing was stored.
    #[error("an account with this email already exists; log in, or reset your password")]
    EmailTaken,

    /// No user has this email. Only returned when
    /// [`reveal_unknown_email`](crate::AuthenticatorBuilder::reveal_unknown_email) is on;
    /// otherwise an unknown email is [`Error::InvalidCredentials`].
    #[error("no user is registered with this email")]
    UnknownEmail,

    /// An input is longer than keycard accepts; it was refused before any hashing or lookup.
    #[error("{field} is longer than the {max} bytes allowed; send a shorter one")]
    InputTooLong {
        /// Which input was too long.
        field: Field,
        /// The largest accepted length, in bytes.
        max: usize,
    },

    /// The request carried no session token. Adapters return this when the protocol's place
    /// for the token (and `Authorization: Bearer`) is empty.
    #[error("no session token was sent; log in and send the token you were given")]
    MissingToken,

    /// The token is not shaped like a keycard token (wrong length, alphabet or separator).
    #[error("the session token is malformed; send the token exactly as login returned it")]
    MalformedToken,

    /// The token is well formed but names no live session, or its secret does not match.
    #[error("the session token is not valid; log in again")]
    InvalidToken,

    /// The session was found but has been idle longer than the idle timeout; it has been
    /// deleted. (A session past its absolute lifetime is not returned by the store at all,
    /// so it gives [`Error::InvalidToken`].)
    #[error("the session has expired; log in again")]
    SessionExpired,

    /// Too many login attempts for this account from this address, from this address across
    /// accounts, or for this account from unknown addresses (see [`crate::throttle`]), or too
    /// many logins from this address at once; nothing was checked.
    #[error("too many login attempts; retry in {} seconds", retry_after_secs(*retry_after))]
    Throttled {
        /// How long until the refusing limit's window ends.
        retry_after: Duration,
    },

    /// The server is too busy to check a password now: the queue of logins waiting to hash is
    /// full (or the throttle cannot track another key). Nothing was checked or counted; try
    /// again after `retry_after`. HTTP adapters answer 503 with `Retry-After`.
    #[error("too many logins are waiting to be checked; retry in {} seconds", retry_after_secs(*retry_after))]
    Overloaded {
        /// A suggested wait before retrying.
        retry_after: Duration,
    },

    /// A new password does not meet the [`PasswordPolicy`](crate::PasswordPolicy); the
    /// rejection lists every rule it failed. Nothing was hashed or stored. HTTP adapters
    /// should answer 422 with the message (it names the rules, never the password).
    #[error("{0}")]
    WeakPassword(crate::PasswordRejection),

    /// The user already has the most live sessions the
    /// [`SessionCap`](crate::SessionCap) allows, under [`CapPolicy::Refuse`](crate::CapPolicy):
    /// no session was started. Log out elsewhere, or revoke a session, first.
    #[error("this account already has {max} live sessions; log out on another device first")]
    TooManySessions {
        /// The cap.
        max: usize,
    },

    /// The action needs the password proved more recently than the session's last proof
    /// ([`Authenticator::require_recent_auth`](crate::Authenticator::require_recent_auth)):
    /// re-authenticate, then retry.
    #[error("this action needs your password again (proved within the last {} seconds); re-authenticate and retry", within.as_secs())]
    ReauthenticationRequired {
        /// How recent the proof must be.
        within: Duration,
    },

    /// The token store or user store failed; see the source for the backend's error.
    #[error("the session or user store is unavailable; retry later")]
    Store(#[from] StoreError),

    /// The [throttle](crate::throttle)'s backend failed, so no attempt could be counted, and
    /// under [`ThrottleOutage::FailClosed`](crate::throttle::ThrottleOutage::FailClosed) (the
    /// default) nothing was checked; see the source for the backend's error. HTTP adapters
    /// answer 503 with `Retry-After`, as for a store outage; logs tell the two apart.
    #[error(
        "the login throttle's backend is unavailable, so no password was checked; retry later"
    )]
    ThrottleUnavailable(#[from] ThrottleError),

    /// Hashing or verifying a password failed for a reason other than a wrong password (for
    /// example a stored hash that is not a valid PHC string); [`HashError::kind`] says which.
    /// HTTP adapters answer 500: the cause is on the server.
    #[error("password hashing failed on the server; retry later")]
    PasswordHash(#[source] HashError),

    /// The operating system's random number generator failed, so no token, session id or
    /// password salt could be drawn; nothing was issued or stored.
    #[error("the system random number generator failed; nothing was issued, retry later")]
    Randomness(#[source] RandomnessError),

    /// The password matched, but the account's email address is not verified and this
    /// authenticator requires it
    /// ([`require_verified_email`](crate::AuthenticatorBuilder::require_verified_email)): no
    /// session was started. Follow the link of the verification mail, or ask for a new one
    /// ([`Accounts::resend_verification`](crate::account::Accounts::resend_verification)).
    /// `StandardApi` answers 403 `email_not_verified`.
    #[error("the email address is not verified yet; follow the link in the verification mail, or ask for a new one")]
    EmailNotVerified,

    /// A link's token (email verification, password reset, sign-in, email change) is
    /// malformed, unknown, already used, expired, or was issued for another purpose: nothing
    /// was changed. One variant for all of these, so that a probe cannot tell them apart
    /// ([`OneTimeError::Invalid`](crate::one_time::OneTimeError::Invalid)).
    #[error("the link is invalid or has expired; ask for a new one")]
    InvalidLink,

    /// A link's token was valid, but the account changed since it was issued (its password or
    /// email): the token is spent and nothing was changed
    /// ([`OneTimeError::Stale`](crate::one_time::OneTimeError::Stale)).
    #[error(
        "the link was issued before the account changed and is no longer valid; ask for a new one"
    )]
    StaleLink,

    /// The password (or sign-in link) was right, and the user has a second factor: no
    /// session yet. Send the pending login's token back with a code to
    /// [`Authenticator::complete_login`](crate::Authenticator::complete_login). HTTP layers
    /// answer it as a success (`mfa_required`), not as an error.
    #[error("a second factor is required: send a code from your authenticator app (or a recovery code) with the pending-login token")]
    SecondFactorRequired(Box<crate::mfa::PendingLogin>),

    /// A second-factor code was wrong, expired, already used, or not a code at all.
    #[error("the code is not valid; enter the current code from your authenticator app, or an unused recovery code")]
    InvalidCode,

    /// The pending-login token is unknown, expired, already used, or ended by too many wrong
    /// codes.
    #[error("the sign-in step has expired or ended; log in again")]
    InvalidPendingLogin,

    /// An authenticator app is already active for this user.
    #[error("an authenticator app is already active on this account; disable it before enrolling another")]
    SecondFactorAlreadyEnabled,

    /// The action needs an authenticator app the user does not have (confirming an
    /// enrolment that was never started, disabling an app that is not active).
    #[error("no authenticator app enrolment is waiting for a code on this account; start the enrolment again")]
    SecondFactorNotEnabled,

    /// A passkey's answer was refused: its signature, challenge, origin or user
    /// verification did not check out, the passkey is unknown or not this user's, or (at
    /// registration) it is registered already.
    #[error("the passkey was not accepted; try again, or use another way to sign in")]
    PasskeyRejected,

    /// A passkey ceremony token is malformed, unknown, already used or expired: begin again.
    #[error("the passkey request has expired or was already used; start again")]
    InvalidCeremony,

    /// The user has the most passkeys allowed
    /// (`Passkeys::with_max_per_user`, feature `passkeys`).
    #[error("this account has the most passkeys allowed ({max}); remove one first")]
    TooManyPasskeys {
        /// The most passkeys one user may have.
        max: usize,
    },

    /// The action needs a second factor the session was not authenticated with, or a more
    /// recent authentication (step-up).
    #[error("this action needs a stronger sign-in: {}", step_up_text(*second_factor, *max_age))]
    InsufficientAuthentication {
        /// Whether a second factor is needed (the session was authenticated without one).
        second_factor: bool,
        /// How recent the authentication must be, if that is what is missing.
        max_age: Option<Duration>,
    },

    /// Second factors are used but the authenticator has none configured, or a stored secret
    /// does not open with the configured keys. A server configuration error.
    #[error("second factors are not set up on the server: {0}")]
    SecondFactorConfig(&'static str),

    /// A stored TOTP secret could not be decrypted with the configured keys.
    #[error("a stored second-factor secret could not be decrypted; check the secret keys the server was given")]
    SecretBox(#[source] crate::mfa::SealError),

    /// A one-time token could not be issued for a reason other than the store or the random
    /// number generator (an over-long user id or payload); see the source.
    #[error("a one-time link could not be issued; see the server log")]
    OneTimeToken(#[source] crate::one_time::OneTimeError),

    /// The credential is an [API token](crate::api_tokens) and the action needs a person
    /// signed in: creating API tokens, changing the password or email, managing second
    /// factors and passkeys, listing or ending sessions. 403: the token is fine, it just may
    /// not do this.
    #[error("API tokens cannot do this; sign in with your password and retry from that session")]
    InteractiveSessionRequired,

    /// The API token lacks the scope the action needs (403, with `WWW-Authenticate: Bearer
    /// error="insufficient_scope"` in [`StandardApi`](crate::http::StandardApi)).
    #[error("this token does not have the scope `{scope}`; create a token that has it")]
    InsufficientScope {
        /// The scope that was needed.
        scope: crate::api_tokens::Scope,
    },

    /// A scope in an API token request is not valid, or not one this service knows.
    #[error("{0}; ask only for the scopes this service lists")]
    InvalidScope(#[source] crate::api_tokens::InvalidScope),

    /// The user has the most live API tokens allowed
    /// ([`ApiTokens::with_max_per_user`](crate::api_tokens::ApiTokens::with_max_per_user)).
    #[error("this account has the most API tokens allowed ({max}); revoke one first")]
    TooManyApiTokens {
        /// The most live API tokens one user may hold.
        max: usize,
    },

    /// An API token request is not valid: an empty name, or a lifetime the service does not
    /// allow (the reason says which).
    #[error("the API token request is not valid: {0}")]
    InvalidApiTokenRequest(&'static str),

    /// API tokens are used but the authenticator was built without
    /// [`AuthenticatorBuilder::api_tokens`](crate::AuthenticatorBuilder::api_tokens). A
    /// server configuration error.
    #[error("API tokens are not set up on the server; give the authenticator an ApiTokens configuration")]
    ApiTokensNotEnabled,
}

impl From<crate::one_time::OneTimeError> for Error {
    fn from(error: crate::one_time::OneTimeError) -> Self {
        use crate::one_time::OneTimeError;
        match error {
            OneTimeError::Invalid => Self::InvalidLink,
            OneTimeError::Stale => Self::StaleLink,
            OneTimeError::Store(e) => Self::Store(e),
            OneTimeError::Randomness(e) => Self::Randomness(e),
            OneTimeError::CapacityExceeded(_) => Self::Overloaded {
                retry_after: Self::STORE_RETRY_AFTER,
            },
            other => Self::OneTimeToken(other),
        }
    }
}

/// Which user input an [`Error::InputTooLong`] refers to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Field {
    /// The login email.
    Email,
    /// The password.
    Password,
    /// The client's user agent string.
    UserAgent,
    /// A name the user gives something (a passkey).
    Name,
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Email => "email",
            Self::Password => "password",
            Self::UserAgent => "user agent",
            Self::Name => "name",
        })
    }
}

/// The error a [`TokenStore`](crate::TokenStore) or [`UserStore`](crate::UserStore) returns.
///
/// Backends wrap their own error with [`StoreError::backend`], which keeps it as the
/// [`source`](std::error::Error::source) rather than flattening it to a string.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// [`TokenStore::create`](crate::TokenStore::create) was given a session id that already
    /// exists. The existing session is untouched.
    #[error("a session with this id already exists")]
    Duplicate,

    /// The backend (database, network, cache) failed.
    #[error("the store backend failed")]
    Backend(#[source] Box<dyn StdError + Send + Sync>),

    /// The backend returned data keycard cannot decode (a corrupt row or key).
    #[error("the store returned data that cannot be decoded")]
    Corrupt(#[source] Box<dyn StdError + Send + Sync>),
}

impl StoreError {
    /// Wraps a backend's error, keeping it as the source.
    ///
    /// ```
    /// use keycard::StoreError;
    /// let io = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
    /// let err = StoreError::backend(io);
    /// assert_eq!(err.to_string(), "the store backend failed");
    /// assert!(std::error::Error::source(&err).is_some());
    /// ```
    pub fn backend(error: impl Into<Box<dyn StdError + Send + Sync>>) -> Self {
        Self::Backend(error.into())
    }

    /// Wraps a decoding error for data the backend returned.
    pub fn corrupt(error: impl Into<Box<dyn StdError + Send + Sync>>) -> Self {
        Self::Corrupt(error.into())
    }
}

/// The error a [`Throttle`](crate::throttle::Throttle) returns: its backend failed, so the
/// attempt could not be counted (or settled, or pruned).
///
/// Backends wrap their own error with [`ThrottleError::backend`] (or
/// [`ThrottleError::corrupt`] for data they cannot decode), which keeps it as the
/// [`source`](std::error::Error::source) rather than flattening it to a string. A backend
/// that shares helpers with a store may use `?` on a [`StoreError`]: `From<StoreError>` keeps
/// [`Corrupt`](StoreError::Corrupt) as [`Corrupt`](Self::Corrupt) and wraps anything else in
/// [`Backend`](Self::Backend).
///
/// `From<ThrottleError> for Error` gives [`Error::ThrottleUnavailable`]. Setting a backend
/// up (its `connect`, `open` or `migrate`, which go through the database shared with the
/// stores) still returns [`StoreError`]; only the [`Throttle`](crate::throttle::Throttle)
/// steps return this type.
///
/// ```
/// use keycard::throttle::ThrottleError;
/// let io = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
/// let err = ThrottleError::backend(io);
/// assert_eq!(
///     err.to_string(),
///     "the throttle backend failed; check that its server is reachable, then retry"
/// );
/// assert!(std::error::Error::source(&err).is_some());
/// assert!(matches!(keycard::Error::from(err), keycard::Error::ThrottleUnavailable(_)));
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ThrottleError {
    /// The backend (database, network) failed.
    #[error("the throttle backend failed; check that its server is reachable, then retry")]
    Backend(#[source] Box<dyn StdError + Send + Sync>),

    /// The backend returned data keycard cannot decode (a corrupt row, key or script reply).
    #[error(
        "the throttle backend returned data that cannot be decoded; check its table or keys for foreign writes"
    )]
    Corrupt(#[source] Box<dyn StdError + Send + Sync>),
}

impl ThrottleError {
    /// Wraps a backend's error, keeping it as the source.
    ///
    /// ```
    /// use keycard::throttle::ThrottleError;
    /// let err = ThrottleError::backend("connection reset");
    /// assert!(matches!(err, ThrottleError::Backend(_)));
    /// assert_eq!(
    ///     std::error::Error::source(&err).map(ToString::to_string).as_deref(),
    ///     Some("connection reset")
    /// );
    /// ```
    pub fn backend(error: impl Into<Box<dyn StdError + Send + Sync>>) -> Self {
        Self::Backend(error.into())
    }

    /// Wraps a decoding error for data the backend returned.
    ///
    /// ```
    /// use keycard::throttle::ThrottleError;
    /// let err = ThrottleError::corrupt("unknown limit code 9");
    /// assert!(matches!(err, ThrottleError::Corrupt(_)));
    /// assert!(err.to_string().starts_with("the throttle backend returned data"));
    /// ```
    pub fn corrupt(error: impl Into<Box<dyn StdError + Send + Sync>>) -> Self {
        Self::Corrupt(error.into())
    }
}

impl From<StoreError> for ThrottleError {
    /// [`StoreError::Corrupt`] stays [`ThrottleError::Corrupt`] (same source);
    /// [`StoreError::Backend`] becomes [`ThrottleError::Backend`] (same source); a
    /// [`StoreError::Duplicate`], which no throttle step should meet, becomes
    /// [`ThrottleError::Backend`] wrapping it.
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::Backend(source) => Self::Backend(source),
            StoreError::Corrupt(source) => Self::Corrupt(source),
            duplicate @ StoreError::Duplicate => Self::Backend(Box::new(duplicate)),
        }
    }
}

/// Why hashing or verifying a password failed (not a wrong password, which is `Ok(false)`
/// from [`PasswordHasher::verify`](crate::PasswordHasher::verify) and
/// [`Error::InvalidCredentials`] from a login). What a [`PasswordHasher`](crate::PasswordHasher)
/// returns.
///
/// Opaque: [`kind`](Self::kind) says what went wrong, and the underlying error (argon2's,
/// the operating system's, a panicked task's) is kept as the
/// [`source`](std::error::Error::source) for your logs, never as a public type, so upgrading
/// those dependencies does not change keycard's API. A hasher of your own builds one with
/// [`HashError::other`], or returns the one a wrapped hasher gave it.
///
/// `From<HashError> for Error` gives [`Error::PasswordHash`], or [`Error::Randomness`] for
/// [`HashErrorKind::Randomness`].
///
/// ```
/// use keycard::{Argon2Hasher, Error, HashErrorKind, PasswordHasher};
/// let err = Argon2Hasher::insecure_for_tests()
///     .verify(b"pw", "not a PHC string")
///     .unwrap_err();
/// assert_eq!(err.kind(), HashErrorKind::InvalidStoredHash);
/// assert!(std::error::Error::source(&err).is_some());
/// assert!(matches!(Error::from(err), Error::PasswordHash(_)));
/// ```
#[derive(Debug)]
pub struct HashError {
    kind: HashErrorKind,
    source: Option<Box<dyn StdError + Send + Sync>>,
}

/// What kind of [`HashError`] happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum HashErrorKind {
    /// The hasher's parameters are invalid, or below OWASP's minimum
    /// ([`Argon2Hasher::new`](crate::Argon2Hasher::new)).
    Parameters,
    /// Argon2 refused to hash the password with the hasher's parameters.
    Argon2,
    /// The stored password hash is not a valid PHC string, not argon2, or has parameters
    /// above the hasher's caps. The user cannot log in until the password is reset.
    InvalidStoredHash,
    /// The blocking task that ran the hash panicked or was cancelled.
    TaskFailed,
    /// No salt could be drawn: the operating system's random number generator failed. The
    /// source is a [`RandomnessError`].
    Randomness,
    /// Any other failure, from a hasher outside keycard ([`HashError::other`]).
    Other,
}

impl HashError {
    /// A failure of a [`PasswordHasher`](crate::PasswordHasher) of your own, keeping `error`
    /// as the [`source`](std::error::Error::source); its kind is [`HashErrorKind::Other`].
    ///
    /// ```
    /// use keycard::{HashError, HashErrorKind};
    /// let err = HashError::other("the legacy hash service timed out");
    /// assert_eq!(err.kind(), HashErrorKind::Other);
    /// assert_eq!(
    ///     std::error::Error::source(&err).map(ToString::to_string).as_deref(),
    ///     Some("the legacy hash service timed out")
    /// );
    /// ```
    pub fn other(error: impl Into<Box<dyn StdError + Send + Sync>>) -> Self {
        Self::new(HashErrorKind::Other, error)
    }

    /// What went wrong.
    pub fn kind(&self) -> HashErrorKind {
        self.kind
    }

    pub(crate) fn new(
        kind: HashErrorKind,
        source: impl Into<Box<dyn StdError + Send + Sync>>,
    ) -> Self {
        Self {
            kind,
            source: Some(source.into()),
        }
    }

    /// Argon2 refused to hash.
    pub(crate) fn argon2(error: argon2::password_hash::Error) -> Self {
        Self::new(HashErrorKind::Argon2, error)
    }

    /// Invalid or too weak parameters.
    pub(crate) fn parameters(error: argon2::password_hash::Error) -> Self {
        Self::new(HashErrorKind::Parameters, error)
    }

    /// A stored hash that cannot be verified.
    pub(crate) fn invalid_stored_hash(error: argon2::password_hash::Error) -> Self {
        Self::new(HashErrorKind::InvalidStoredHash, error)
    }

    /// The hashing task panicked or was cancelled.
    pub(crate) fn task_failed(error: tokio::task::JoinError) -> Self {
        Self::new(HashErrorKind::TaskFailed, error)
    }

    /// No salt could be drawn.
    pub(crate) fn randomness(error: RandomnessError) -> Self {
        Self::new(HashErrorKind::Randomness, error)
    }
}

impl fmt::Display for HashError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self.kind {
            HashErrorKind::Parameters => {
                "the argon2 parameters are invalid or below OWASP's minimum (m = 19456 KiB, t = 2); choose stronger ones"
            }
            HashErrorKind::Argon2 => {
                "argon2 could not hash the password; check the hasher's parameters"
            }
            HashErrorKind::InvalidStoredHash => {
                "the stored password hash is not a valid argon2 PHC string within the hasher's limits; reset this user's password"
            }
            HashErrorKind::TaskFailed => {
                "the password hashing task panicked or was cancelled; retry, and check the logs for a panic"
            }
            HashErrorKind::Randomness => {
                "no password salt could be drawn from the system random number generator; retry later"
            }
            HashErrorKind::Other => "the password hasher failed; see the source error",
        })
    }
}

impl StdError for HashError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.source
            .as_deref()
            .map(|e| e as &(dyn StdError + 'static))
    }
}

impl From<HashError> for Error {
    /// [`Error::Randomness`] for [`HashErrorKind::Randomness`] (the same error a token
    /// generation gives), [`Error::PasswordHash`] for every other kind.
    fn from(error: HashError) -> Self {
        match error {
            HashError {
                kind: HashErrorKind::Randomness,
                source: Some(source),
            } => match source.downcast::<RandomnessError>() {
                Ok(randomness) => Self::Randomness(*randomness),
                Err(source) => Self::PasswordHash(HashError {
                    kind: HashErrorKind::Randomness,
                    source: Some(source),
                }),
            },
            other => Self::PasswordHash(other),
        }
    }
}

/// The operating system's random number generator failed (no token, session id or salt
/// could be drawn).
///
/// Opaque: the operating system's error is kept as the
/// [`source`](std::error::Error::source), never as a public type. `From<RandomnessError> for
/// Error` gives [`Error::Randomness`].
#[derive(Debug)]
pub struct RandomnessError {
    source: Box<dyn StdError + Send + Sync>,
}

impl RandomnessError {
    pub(crate) fn new(source: impl Into<Box<dyn StdError + Send + Sync>>) -> Self {
        Self {
            source: source.into(),
        }
    }
}

impl fmt::Display for RandomnessError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(
            "the operating system's random number generator failed; check that the system can supply entropy, then retry",
        )
    }
}

impl StdError for RandomnessError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        Some(&*self.source)
    }
}

impl From<RandomnessError> for Error {
    fn from(error: RandomnessError) -> Self {
        Self::Randomness(error)
    }
}

/// A string that is not a keycard token or session id: what
/// [`TokenFormat::parse`](crate::TokenFormat::parse), `str::parse::<Token>` and
/// `str::parse::<SessionId>` return for anything they do not accept (a wrong length,
/// alphabet, separator, prefix or checksum).
///
/// Opaque and deliberately uninformative: which check failed is not said, so a client
/// probing for the token's shape learns nothing. `From<TokenError> for Error` gives
/// [`Error::MalformedToken`].
///
/// ```
/// use keycard::{Error, Token};
/// let err = "not a token".parse::<Token>().unwrap_err();
/// assert_eq!(err.to_string(), "the token is malformed; send it exactly as issued");
/// assert!(matches!(Error::from(err), Error::MalformedToken));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TokenError {
    _private: (),
}

impl TokenError {
    pub(crate) const fn new() -> Self {
        Self { _private: () }
    }
}

impl fmt::Display for TokenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the token is malformed; send it exactly as issued")
    }
}

impl StdError for TokenError {}

impl From<TokenError> for Error {
    fn from(_: TokenError) -> Self {
        Self::MalformedToken
    }
}

fn step_up_text(second_factor: bool, max_age: Option<Duration>) -> String {
    match (second_factor, max_age) {
        (true, Some(age)) => format!(
            "sign in again with your second factor (within the last {} seconds)",
            age.as_secs()
        ),
        (true, None) => "confirm it's you with your second factor".to_owned(),
        (false, Some(age)) => format!(
            "authenticate again (within the last {} seconds)",
            age.as_secs()
        ),
        (false, None) => "authenticate again".to_owned(),
    }
}

fn retry_after_secs(d: Duration) -> u64 {
    // Round up so a client that waits the advertised time is never refused again.
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

impl Error {
    /// How long to wait before retrying: the refusal's own time for [`Error::Throttled`] and
    /// [`Error::Overloaded`], and [`STORE_RETRY_AFTER`](Self::STORE_RETRY_AFTER) for
    /// [`Error::Store`] (an outage is usually short, and a client told nothing retries at
    /// once). `None` for errors a retry will not fix.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::Throttled { retry_after } | Self::Overloaded { retry_after } => {
                Some(*retry_after)
            }
            Self::Store(_) | Self::ThrottleUnavailable(_) => Some(Self::STORE_RETRY_AFTER),
            _ => None,
        }
    }

    /// The wait advertised for a store outage ([`Error::Store`]): 5 seconds.
    pub const STORE_RETRY_AFTER: Duration = Duration::from_secs(5);

    /// Seconds to advertise in a `Retry-After` header (every 503 and 429 carries one): see
    /// [`retry_after`](Self::retry_after), rounded up.
    pub fn retry_after_secs(&self) -> Option<u64> {
        self.retry_after().map(retry_after_secs)
    }
}

/// `error` followed by each of its sources, `: `-separated, for logs.
pub(crate) fn chain(error: &dyn StdError) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_strings_are_lowercase_and_actionable() {
        assert_eq!(
            Error::InvalidCredentials.to_string(),
            "invalid email or password; check both and try again"
        );
        assert_eq!(
            Error::InputTooLong {
                field: Field::Password,
                max: 1024
            }
            .to_string(),
            "password is longer than the 1024 bytes allowed; send a shorter one"
        );
        assert_eq!(
            Error::Throttled {
                retry_after: Duration::from_millis(1500)
            }
            .to_string(),
            "too many login attempts; retry in 2 seconds"
        );
    }

    #[test]
    fn store_errors_keep_their_source_chain() {
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "port 5432 refused");
        let err = Error::from(StoreError::backend(io));
        assert_eq!(
            err.to_string(),
            "the session or user store is unavailable; retry later"
        );
        let store = err.source().expect("Error::Store has a source");
        assert_eq!(store.to_string(), "the store backend failed");
        let backend = store.source().expect("StoreError::Backend has a source");
        assert_eq!(backend.to_string(), "port 5432 refused");
        assert!(backend.downcast_ref::<std::io::Error>().is_some());
    }

    /// keycard's own types and std's: what a public variant may carry. A dependency's type
    /// (argon2, rand, tokio, base64, ...) has no impl, so carrying one fails to compile here.
    trait OwnType {}
    impl OwnType for HashError {}
    impl OwnType for RandomnessError {}
    impl OwnType for StoreError {}
    impl OwnType for ThrottleError {}
    impl OwnType for Field {}
    impl OwnType for usize {}
    impl OwnType for Duration {}
    impl OwnType for crate::EmailRejection {}
    impl OwnType for crate::PasswordRejection {}
    impl OwnType for crate::one_time::OneTimeError {}
    impl OwnType for Box<crate::mfa::PendingLogin> {}
    impl OwnType for crate::mfa::SealError {}
    impl OwnType for bool {}
    impl OwnType for Option<Duration> {}
    impl OwnType for &'static str {}
    impl OwnType for Box<dyn StdError + Send + Sync> {}
    impl OwnType for crate::api_tokens::Scope {}
    impl OwnType for crate::api_tokens::InvalidScope {}
    fn own<T: OwnType>(_: &T) {}

    /// Exhaustive on purpose: a new variant must be added here, with its payload checked.
    #[allow(dead_code)]
    fn every_variant_carries_only_keycard_or_std_types(
        e: &Error,
        s: &StoreError,
        t: &ThrottleError,
    ) {
        match e {
            Error::InvalidCredentials
            | Error::IncorrectPassword
            | Error::EmailTaken
            | Error::UnknownEmail
            | Error::MissingToken
            | Error::MalformedToken
            | Error::InvalidToken
            | Error::SessionExpired
            | Error::EmailNotVerified
            | Error::InvalidLink
            | Error::StaleLink
            | Error::InvalidCode
            | Error::InvalidPendingLogin
            | Error::SecondFactorAlreadyEnabled
            | Error::SecondFactorNotEnabled
            | Error::PasskeyRejected
            | Error::InvalidCeremony
            | Error::InteractiveSessionRequired
            | Error::ApiTokensNotEnabled => {}
            Error::InsufficientScope { scope } => own(scope),
            Error::InvalidScope(e) => own(e),
            Error::TooManyApiTokens { max } => own(max),
            Error::InvalidApiTokenRequest(m) => own(m),
            Error::TooManyPasskeys { max } => own(max),
            Error::SecondFactorRequired(p) => own(p),
            Error::InsufficientAuthentication {
                second_factor,
                max_age,
            } => {
                own(second_factor);
                own(max_age);
            }
            Error::SecondFactorConfig(m) => own(m),
            Error::SecretBox(e) => own(e),
            Error::OneTimeToken(e) => own(e),
            Error::InvalidEmail(r) => own(r),
            Error::InputTooLong { field, max } => {
                own(field);
                own(max);
            }
            Error::Throttled { retry_after } | Error::Overloaded { retry_after } => {
                own(retry_after)
            }
            Error::WeakPassword(r) => own(r),
            Error::TooManySessions { max } => own(max),
            Error::ReauthenticationRequired { within } => own(within),
            Error::Store(e) => own(e),
            Error::ThrottleUnavailable(e) => own(e),
            Error::PasswordHash(e) => own(e),
            Error::Randomness(e) => own(e),
        }
        match s {
            StoreError::Duplicate => {}
            StoreError::Backend(e) | StoreError::Corrupt(e) => own(e),
        }
        match t {
            ThrottleError::Backend(e) | ThrottleError::Corrupt(e) => own(e),
        }
    }

    fn argon2_error() -> argon2::password_hash::Error {
        argon2::password_hash::Error::PhcStringField
    }

    #[test]
    fn hash_errors_keep_their_source_and_say_what_to_do() {
        let kinds = [
            (
                HashError::parameters(argon2_error()),
                HashErrorKind::Parameters,
            ),
            (HashError::argon2(argon2_error()), HashErrorKind::Argon2),
            (
                HashError::invalid_stored_hash(argon2_error()),
                HashErrorKind::InvalidStoredHash,
            ),
        ];
        for (err, kind) in kinds {
            assert_eq!(err.kind(), kind);
            let source = err.source().expect("the argon2 error is the source");
            assert_eq!(
                source.downcast_ref::<argon2::password_hash::Error>(),
                Some(&argon2_error())
            );
            let text = err.to_string();
            assert!(text.contains("; "), "{text}");
            assert!(text.starts_with(char::is_lowercase), "{text}");
        }
        assert_eq!(
            HashError::invalid_stored_hash(argon2_error()).to_string(),
            "the stored password hash is not a valid argon2 PHC string within the hasher's limits; reset this user's password"
        );
        let other = HashError::other("legacy service down");
        assert_eq!(other.kind(), HashErrorKind::Other);
        assert_eq!(
            other.to_string(),
            "the password hasher failed; see the source error"
        );
        assert_eq!(
            other.source().map(ToString::to_string).as_deref(),
            Some("legacy service down")
        );
        assert_eq!(
            chain(&Error::from(HashError::argon2(argon2_error()))),
            format!(
                "password hashing failed on the server; retry later: argon2 could not hash the password; check the hasher's parameters: {}",
                argon2_error()
            )
        );
    }

    #[test]
    fn conversions_into_error() {
        let err = Error::from(HashError::invalid_stored_hash(argon2_error()));
        match &err {
            Error::PasswordHash(h) => assert_eq!(h.kind(), HashErrorKind::InvalidStoredHash),
            other => panic!("{other:?}"),
        }
        assert_eq!(
            err.to_string(),
            "password hashing failed on the server; retry later"
        );
        assert_eq!(err.retry_after(), None);

        // A salt that could not be drawn is the same error as a token that could not be.
        let os = std::io::Error::other("getrandom: ENOSYS");
        let salt = HashError::randomness(RandomnessError::new(os));
        assert_eq!(salt.kind(), HashErrorKind::Randomness);
        assert_eq!(
            salt.to_string(),
            "no password salt could be drawn from the system random number generator; retry later"
        );
        let err = Error::from(salt);
        assert!(matches!(err, Error::Randomness(_)), "{err:?}");
        assert_eq!(
            chain(&err),
            "the system random number generator failed; nothing was issued, retry later: \
             the operating system's random number generator failed; check that the system can \
             supply entropy, then retry: getrandom: ENOSYS"
        );
        // A third-party error of kind Randomness without a RandomnessError stays a hash error.
        let odd = HashError::new(HashErrorKind::Randomness, "odd");
        assert!(matches!(Error::from(odd), Error::PasswordHash(_)));

        let rng = RandomnessError::new(std::io::Error::other("no entropy"));
        assert!(rng.source().is_some_and(|s| s.is::<std::io::Error>()));
        assert!(matches!(Error::from(rng), Error::Randomness(_)));

        let malformed = TokenError::new();
        assert_eq!(
            malformed.to_string(),
            "the token is malformed; send it exactly as issued"
        );
        assert!(malformed.source().is_none());
        assert!(matches!(Error::from(malformed), Error::MalformedToken));
    }

    #[test]
    fn throttle_errors_keep_their_source_and_say_what_to_do() {
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "port 6379 refused");
        let err = Error::from(ThrottleError::backend(io));
        assert!(matches!(err, Error::ThrottleUnavailable(_)), "{err:?}");
        assert_eq!(
            chain(&err),
            "the login throttle's backend is unavailable, so no password was checked; retry later: \
             the throttle backend failed; check that its server is reachable, then retry: \
             port 6379 refused"
        );
        assert_eq!(err.retry_after_secs(), Some(5));
        let corrupt = ThrottleError::corrupt("unknown limit code 9");
        assert_eq!(
            corrupt.to_string(),
            "the throttle backend returned data that cannot be decoded; check its table or keys for foreign writes"
        );

        // A store helper's error keeps its kind and its source through `?`.
        let from_store = ThrottleError::from(StoreError::backend(std::io::Error::other("down")));
        match &from_store {
            ThrottleError::Backend(source) => assert!(source.is::<std::io::Error>()),
            other => panic!("{other:?}"),
        }
        let from_store = ThrottleError::from(StoreError::corrupt("bad row"));
        assert!(
            matches!(from_store, ThrottleError::Corrupt(_)),
            "{from_store:?}"
        );
        let from_store = ThrottleError::from(StoreError::Duplicate);
        match &from_store {
            ThrottleError::Backend(source) => {
                assert!(matches!(
                    source.downcast_ref::<StoreError>(),
                    Some(StoreError::Duplicate)
                ));
            }
            other => panic!("{other:?}"),
        }
    }

    fn assert_send_sync_static<T: Send + Sync + 'static>() {}

    #[test]
    fn error_types_are_send_sync_and_static() {
        assert_send_sync_static::<Error>();
        assert_send_sync_static::<HashError>();
        assert_send_sync_static::<ThrottleError>();
        assert_send_sync_static::<RandomnessError>();
        assert_send_sync_static::<TokenError>();
    }

    #[test]
    fn retry_after_rounds_up() {
        let e = Error::Throttled {
            retry_after: Duration::from_secs(3),
        };
        assert_eq!(e.retry_after_secs(), Some(3));
        let e = Error::Throttled {
            retry_after: Duration::from_millis(1),
        };
        assert_eq!(e.retry_after_secs(), Some(1));
        assert_eq!(Error::InvalidToken.retry_after_secs(), None);
        let outage = Error::Store(StoreError::backend(std::io::Error::other("down")));
        assert_eq!(outage.retry_after_secs(), Some(5));
    }
}
