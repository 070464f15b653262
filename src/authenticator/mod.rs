//! The operations: login, logout, validate, expire.
//!
//! One file per concern: [`builder`] configures an [`Authenticator`], [`login`] starts and
//! checks sessions, [`step_up`] re-verifies a logged-in user's password, [`sessions`] lists
//! and ends a user's sessions, [`register`] creates accounts and hashes new passwords,
//! [`maintenance`] purges expired sessions.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use time::OffsetDateTime;

use crate::clock::Clock;
use crate::error::{Error, Field, Result};
use crate::hashing::HashPool;
use crate::password_policy::PasswordPolicy;
use crate::session::{Session, SessionPolicy};
use crate::store::TokenStore;
use crate::throttle::in_flight::InFlight;
use crate::throttle::{Limit, Throttle, ThrottleOutage};
use crate::token::{Token, TokenFormat};
use crate::user::{UserId, UserStore};

mod api_tokens;
mod builder;
mod login;
mod maintenance;
#[cfg(feature = "passkeys")]
mod passkey;
mod register;
pub(crate) mod second_factor;
mod sessions;
mod step_up;

pub use builder::AuthenticatorBuilder;

pub(crate) use crate::limits::{MAX_EMAIL_LEN, MAX_PASSWORD_LEN};

/// Logs users in and out and checks their tokens. Cheap to clone (one `Arc`); share one per
/// application.
///
/// Build it with [`Authenticator::builder`]. Every operation reads the time from the
/// configured [`Clock`] and talks to the stores it was built with; nothing else is global.
///
/// ```
/// # tokio_test_block_on(async {
/// use keycard::{Authenticator, ClientInfo, MemoryTokenStore, MemoryUserStore, UserRecord};
///
/// let users = MemoryUserStore::new();
/// let auth = Authenticator::builder(users, MemoryTokenStore::new()).build();
/// let hash = auth.hash_password("s3cret-passw0rd").await?;
/// auth.users().insert(UserRecord::new(1_i64, "ann@example.com", hash)).expect("new user");
///
/// let login = auth.login("ann@example.com", "s3cret-passw0rd", ClientInfo::none()).await?;
/// let token = login.token.expose_secret();
/// let me = auth.validate(token).await?;
/// assert_eq!(me.user.email, "ann@example.com");
/// assert!(auth.logout(token).await?.destroyed());
/// assert!(auth.validate(token).await.is_err());
/// # Ok::<(), keycard::Error>(())
/// # });
/// # fn tokio_test_block_on<F: std::future::Future>(f: F) -> F::Output {
/// #     tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(f)
/// # }
/// ```
pub struct Authenticator<U: UserStore> {
    pub(crate) inner: Arc<Inner<U>>,
}

pub(crate) struct Inner<U> {
    pub(crate) users: U,
    pub(crate) tokens: Arc<dyn TokenStore>,
    pub(crate) hashing: HashPool,
    pub(crate) policy: SessionPolicy,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) throttle: Option<Arc<dyn Throttle>>,
    pub(crate) throttle_outage: ThrottleOutage,
    pub(crate) in_flight: InFlight,
    pub(crate) reveal_unknown_email: bool,
    pub(crate) password_policy: PasswordPolicy,
    pub(crate) token_format: TokenFormat,
    pub(crate) session_cap: Option<SessionCap>,
    pub(crate) registration_limit: Limit,
    pub(crate) require_verified_email: bool,
    pub(crate) second_factors: Option<second_factor::FactorsRuntime>,
    pub(crate) api_tokens: Option<crate::api_tokens::ApiTokens>,
    /// How API tokens are spelled (the default `kcpat_` format when none are configured).
    pub(crate) api_format: TokenFormat,
    #[cfg(feature = "passkeys")]
    pub(crate) passkeys: Option<passkey::PasskeysRuntime>,
}

/// A per-user limit on live sessions, and what a login over it does
/// ([`AuthenticatorBuilder::session_cap`]).
///
/// Enforced after each session is created: the login lists the user's live sessions and, if
/// there are more than the cap, ends those beyond it, oldest first but never its own
/// ([`CapPolicy::EvictOldest`]), or ends its own new session and fails
/// ([`CapPolicy::Refuse`]). Every login lists after its own create, so the last one to list
/// sees every session that stays: concurrent logins never leave more than the cap in place
/// (at worst, for an instant, a few more exist). This uses only
/// [`TokenStore::list_for_user`] and [`TokenStore::delete`], so it holds over every store,
/// yours included. Under `Refuse`, logins racing at the cap may all back off (none is sure it
/// came first); the client retries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct SessionCap {
    /// The most live sessions one user may have.
    pub max: usize,
    /// What a login over the cap does.
    pub policy: CapPolicy,
}

/// What a login over the [`SessionCap`] does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum CapPolicy {
    /// The login succeeds and the user's oldest sessions end (the default).
    EvictOldest,
    /// The login fails with [`Error::TooManySessions`]; the user must log out elsewhere.
    Refuse,
}

impl SessionCap {
    /// The default cap: 100 live sessions per user, the oldest evicted.
    pub const DEFAULT: Self = Self {
        max: 100,
        policy: CapPolicy::EvictOldest,
    };

    /// At most `max` live sessions per user (at least 1), the oldest evicted.
    pub fn evict_oldest(max: usize) -> Self {
        Self {
            max: max.max(1),
            policy: CapPolicy::EvictOldest,
        }
    }

    /// At most `max` live sessions per user (at least 1); logins over it are refused.
    pub fn refuse(max: usize) -> Self {
        Self {
            max: max.max(1),
            policy: CapPolicy::Refuse,
        }
    }
}

/// A successful login.
#[derive(Debug)]
#[non_exhaustive]
pub struct Login<T> {
    /// The bearer token to send to the client (once).
    pub token: Token,
    /// The new session, as stored.
    pub session: Session,
    /// The user who logged in.
    pub user: T,
}

/// Options for one login ([`Authenticator::login_with`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct LoginOptions {
    /// The session's lifetime, if not the policy's TTL: kept within 1 second and the
    /// policy's [`max_ttl`](SessionPolicy::max_ttl).
    pub lifetime: Option<Duration>,
}

impl LoginOptions {
    /// Asks for a session lifetime ("remember me" asks for a long one, a shared computer for
    /// a short one).
    #[must_use]
    pub fn with_lifetime(mut self, lifetime: Duration) -> Self {
        self.lifetime = Some(lifetime);
        self
    }
}

/// A valid token's session and user.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Authenticated<T> {
    /// The live session.
    pub session: Session,
    /// Its user.
    pub user: T,
}

/// Whose password [`Authenticator::verify_password`] checks: a [`Session`], an
/// [`Authenticated`] or a [`UserId`]. Only the user is taken from it: the attempt is counted
/// under the address of the request that makes it, passed separately, never the address a
/// session logged in from (a stolen token used elsewhere must not spend its owner's budget).
///
/// Operations that manage the account (second factors, passkeys, the password, the email,
/// sessions, API tokens) refuse a subject whose [`session`](Self::session) is an
/// [API token](crate::api_tokens) with [`Error::InteractiveSessionRequired`]. A bare
/// [`UserId`] has no session: pass one only on trusted paths (an administrator's), never
/// for a request authenticated by a token.
pub trait Subject: Send + Sync {
    /// The user.
    fn user_id(&self) -> &UserId;

    /// The session the request was authenticated with, if the subject has one.
    fn session(&self) -> Option<&Session> {
        None
    }
}

impl Subject for UserId {
    fn user_id(&self) -> &UserId {
        self
    }
}

impl Subject for Session {
    fn user_id(&self) -> &UserId {
        &self.user_id
    }

    fn session(&self) -> Option<&Session> {
        Some(self)
    }
}

impl<T: Send + Sync> Subject for Authenticated<T> {
    fn user_id(&self) -> &UserId {
        &self.session.user_id
    }

    fn session(&self) -> Option<&Session> {
        Some(&self.session)
    }
}

/// What [`Authenticator::change_password`] did: the caller's session, replaced by a fresh one
/// (send its token to the client; the old token no longer works), and how many other sessions
/// of the user it ended.
#[derive(Debug)]
#[non_exhaustive]
pub struct PasswordChanged<T> {
    /// The caller's new session, token and user, as a login returns them.
    pub login: Login<T>,
    /// How many other sessions of the user were ended.
    pub ended: u64,
}

/// What [`Authenticator::logout`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Logout {
    /// The token named a live session; it is deleted.
    Destroyed(Session),
    /// The token named no live session (unknown, already logged out, expired, malformed, or
    /// its secret did not match). Nothing changed.
    NoSession,
}

impl Logout {
    /// Whether a session was destroyed.
    pub fn destroyed(&self) -> bool {
        matches!(self, Self::Destroyed(_))
    }
}

impl<U: UserStore> Authenticator<U> {
    /// The password policy applied to new passwords.
    pub fn password_policy(&self) -> &PasswordPolicy {
        &self.inner.password_policy
    }

    /// The user store.
    pub fn users(&self) -> &U {
        &self.inner.users
    }

    /// The token store.
    pub fn tokens(&self) -> &Arc<dyn TokenStore> {
        &self.inner.tokens
    }

    /// The session lifetime policy.
    pub fn policy(&self) -> &SessionPolicy {
        &self.inner.policy
    }

    /// The clock.
    pub fn now(&self) -> OffsetDateTime {
        self.inner.clock.now()
    }
}

impl<U: UserStore> Clone for Authenticator<U> {
    fn clone(&self) -> Self {
        Self {
            inner: Arc::clone(&self.inner),
        }
    }
}

impl<U: UserStore> fmt::Debug for Authenticator<U> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let inner = &*self.inner;
        f.debug_struct("Authenticator")
            .field("users", &inner.users)
            .field("tokens", &inner.tokens)
            .field("hashing", &inner.hashing)
            .field("policy", &inner.policy)
            .field("clock", &inner.clock)
            .field("throttle", &inner.throttle)
            .field("throttle_outage", &inner.throttle_outage)
            .field("in_flight", &inner.in_flight.max_per_ip())
            .field("reveal_unknown_email", &inner.reveal_unknown_email)
            .field("password_policy", &inner.password_policy)
            .field("token_format", &inner.token_format)
            .finish()
    }
}

pub(crate) fn check_len(field: Field, value: &str, max: usize) -> Result<()> {
    match value.len() > max {
        true => Err(Error::InputTooLong { field, max }),
        false => Ok(()),
    }
}
