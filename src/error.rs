//! Errors returned by the authenticator and by stores.

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

    /// Hashing or verifying a password failed for a reason other than a wrong password (for
    /// example a stored hash that is not a valid PHC string).
    #[error("password hashing failed")]
    PasswordHash(#[source] HashError),

    /// The operating system's random number generator failed; no token was issued.
    #[error("the system random number generator failed; no token was issued")]
    Randomness(#[source] rand::rand_core::OsError),
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
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Email => "email",
            Self::Password => "password",
            Self::UserAgent => "user agent",
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

/// Why hashing or verifying a password failed (not a wrong password, which is
/// [`Error::InvalidCredentials`]).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HashError {
    /// The argon2 / PHC layer refused the input or the stored hash.
    #[error("argon2 failed")]
    Argon2(#[source] argon2::password_hash::Error),
    /// The stored password hash is not a valid PHC string.
    #[error("the stored password hash is not a valid PHC string")]
    InvalidStoredHash(#[source] argon2::password_hash::Error),
    /// The blocking task that ran the hash panicked or was cancelled.
    #[error("the password hashing task did not complete")]
    TaskFailed(#[source] tokio::task::JoinError),
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
            Self::Store(_) => Some(Self::STORE_RETRY_AFTER),
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
