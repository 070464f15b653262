//! The operations: login, logout, validate, expire.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use std::net::IpAddr;

use time::OffsetDateTime;
use zeroize::Zeroizing;

use crate::audit::{self, FailureReason};
use crate::clock::{Clock, SystemClock};
use crate::error::{Error, Field, Result, StoreError};
use crate::hashing::{HashPool, OVERLOADED_RETRY_AFTER};
use crate::password::{Argon2Hasher, PasswordHasher};
use crate::password_policy::PasswordPolicy;
use crate::session::{truncate_to_micros, ClientInfo, Session, SessionPolicy, SessionView};
use crate::store::TokenStore;
use crate::throttle::in_flight::InFlight;
use crate::throttle::{
    Admission, Limit, LimitKind, MemoryThrottle, Reservation, Throttle, ThrottleKey, ThrottleOutage,
};
use crate::token::{SessionId, Token, TokenFormat};
use crate::user::{normalize_email, User, UserId, UserStore};

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

/// What checking a password found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    Matched,
    WrongPassword,
    UnknownAccount,
    UnusableHash,
}

/// How [`Authenticator::attempt`] finds the user whose password it checks.
enum Lookup<'a, T> {
    /// By normalized email, after the throttle admitted the attempt (login).
    Email(&'a str),
    /// Already looked up by id (re-verification); `None` if the user is gone.
    Found(Option<T>),
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
pub trait Subject: Send + Sync {
    /// The user.
    fn user_id(&self) -> &UserId;
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
}

impl<T: Send + Sync> Subject for Authenticated<T> {
    fn user_id(&self) -> &UserId {
        &self.session.user_id
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
    /// Starts building an authenticator over your user store and a token store.
    pub fn builder(users: U, tokens: impl TokenStore + 'static) -> AuthenticatorBuilder<U> {
        AuthenticatorBuilder {
            users,
            tokens: Arc::new(tokens),
            hasher: None,
            policy: SessionPolicy::default(),
            clock: Arc::new(SystemClock),
            throttle: Some(Arc::new(MemoryThrottle::default())),
            throttle_outage: ThrottleOutage::default(),
            reveal_unknown_email: false,
            password_policy: PasswordPolicy::default(),
            max_concurrent_hashes: None,
            max_queued_hashes: None,
            max_logins_in_flight_per_ip: AuthenticatorBuilder::<U>::DEFAULT_LOGINS_IN_FLIGHT_PER_IP,
            max_hash_wait: AuthenticatorBuilder::<U>::DEFAULT_MAX_HASH_WAIT,
            token_format: TokenFormat::plain(),
            session_cap: Some(SessionCap::DEFAULT),
            registration_limit: AuthenticatorBuilder::<U>::default_registration_limit(),
        }
    }

    /// Checks an email and password and, if they match, starts a session.
    ///
    /// In order, before any password is hashed:
    /// 1. lengths are checked ([`MAX_EMAIL_LEN`], [`MAX_PASSWORD_LEN`]) and the email is
    ///    normalized ([`normalize_email`]);
    /// 2. the client's address (`client.ip`) gets a place among its logins in flight
    ///    ([`max_logins_in_flight_per_ip`](AuthenticatorBuilder::max_logins_in_flight_per_ip));
    /// 3. the attempt is reserved with the [throttle](crate::throttle) in one atomic step, so
    ///    concurrent attempts count too. Pass the client's real address: the limits are keyed
    ///    by it, and without one every attempt on an account shares one (account, address)
    ///    limit, which anyone could fill;
    /// 4. the user is looked up and the password verified on the blocking pool, behind the
    ///    bounded hashing queue.
    ///
    /// Unknown emails, wrong passwords and users whose stored hash is unusable (not a PHC
    /// string keycard can verify, such as `!` for a disabled account) cost the same: exactly
    /// one verification, against a dummy hash made with the current parameters when the
    /// user's own cannot be used, and each counts as a failure. If the user's stored hash was
    /// made with other parameters than the current ones, it is replaced by a fresh hash of the
    /// same password. Every outcome is an [audit event](crate::audit).
    ///
    /// # Errors
    /// - [`Error::InputTooLong`] for an email over [`MAX_EMAIL_LEN`] or a password over
    ///   [`MAX_PASSWORD_LEN`] bytes (checked before anything else);
    /// - [`Error::Throttled`] when a throttle limit is reached, or the address has too many
    ///   logins in flight;
    /// - [`Error::Overloaded`] when the hashing queue is full (or the in-memory throttle's
    ///   table is);
    /// - [`Error::InvalidCredentials`] for a wrong password, an unusable stored hash, or an
    ///   unknown email unless [`reveal_unknown_email`](AuthenticatorBuilder::reveal_unknown_email)
    ///   is on, in which case [`Error::UnknownEmail`];
    /// - [`Error::Store`] if a store fails, or the throttle's backend does under
    ///   [`ThrottleOutage::FailClosed`] (the default); [`Error::Randomness`] if no token
    ///   could be generated.
    pub async fn login(
        &self,
        email: &str,
        password: &str,
        client: ClientInfo,
    ) -> Result<Login<U::User>> {
        self.login_with(email, password, client, LoginOptions::default())
            .await
    }

    /// [`login`](Self::login), with options for this one login: its session's lifetime
    /// ("remember me", within the policy's [`max_ttl`](SessionPolicy::max_ttl); the idle
    /// timeout still applies).
    ///
    /// ```
    /// # use std::time::Duration;
    /// # use keycard::{Authenticator, ClientInfo, LoginOptions, MemoryTokenStore, MemoryUserStore, UserRecord};
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> keycard::Result<()> {
    /// let auth = Authenticator::builder(MemoryUserStore::<UserRecord>::new(), MemoryTokenStore::new())
    ///     .max_session_ttl(Duration::from_secs(30 * 24 * 3600))
    ///     .build();
    /// # let hash = auth.hash_password("correct horse").await?;
    /// # auth.users().insert(UserRecord::new(1_i64, "ann@example.com", hash)).unwrap();
    /// let remember_me = LoginOptions::default().with_lifetime(Duration::from_secs(30 * 24 * 3600));
    /// let login = auth.login_with("ann@example.com", "correct horse", ClientInfo::none(), remember_me).await?;
    /// assert_eq!(login.session.expires_at - login.session.created_at, time::Duration::days(30));
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// As [`login`](Self::login).
    pub async fn login_with(
        &self,
        email: &str,
        password: &str,
        client: ClientInfo,
        options: LoginOptions,
    ) -> Result<Login<U::User>> {
        check_len(Field::Email, email, MAX_EMAIL_LEN)?;
        check_len(Field::Password, password, MAX_PASSWORD_LEN)?;
        let inner = &*self.inner;
        let email = normalize_email(email);
        let key = ThrottleKey::new(&email, client.ip);
        let (user, rehashed) = self
            .attempt(&key, client.ip, Lookup::Email(&email), password)
            .await?;
        if let Some(phc) = rehashed {
            inner.users.set_password_hash(&user.id(), &phc).await?;
        }
        let lifetime = inner.policy.lifetime_for(options.lifetime);
        let (token, session) = self.start_session(user.id(), client, lifetime).await?;
        self.enforce_cap(&session).await?;
        audit::login_succeeded(&session.user_id, &session.id, session.client.ip);
        Ok(Login {
            token,
            session,
            user,
        })
    }

    /// One guarded password check, as login does it: a place among the address's checks in
    /// flight, room in the hashing queue, a throttle reservation, the lookup and exactly one
    /// verification, then the reservation settled (a wrong password stays counted).
    async fn attempt(
        &self,
        key: &ThrottleKey,
        ip: Option<IpAddr>,
        lookup: Lookup<'_, U::User>,
        password: &str,
    ) -> Result<(U::User, Option<String>)> {
        let inner = &*self.inner;
        let Some(_in_flight) = inner.in_flight.enter(key.ip()) else {
            audit::login_throttled("in_flight", OVERLOADED_RETRY_AFTER, key, ip);
            return Err(Error::Throttled {
                retry_after: OVERLOADED_RETRY_AFTER,
            });
        };
        if let Err(overloaded) = inner.hashing.admit() {
            let retry_after = overloaded.retry_after().unwrap_or(OVERLOADED_RETRY_AFTER);
            audit::login_overloaded("hashing", retry_after, ip);
            return Err(overloaded);
        }
        let reservation = self.reserve(key, ip).await?;
        let checked = self.check_password(lookup, password, key, ip).await;
        if let (Some(throttle), Some(reservation)) = (&inner.throttle, reservation) {
            let settled = match &checked {
                Ok(_) => throttle.record_success(key, reservation, self.now()).await,
                // A wrong password stays counted; an attempt that checked nothing is given back.
                Err(Error::InvalidCredentials | Error::UnknownEmail) => Ok(()),
                Err(_) => throttle.release(key, reservation, self.now()).await,
            };
            if let Err(error) = settled {
                // The attempt stays counted as a failure: safe, if stricter than it should be.
                tracing::warn!(error = %crate::error::chain(&error), "keycard: settling a login attempt with the throttle failed");
            }
        }
        checked
    }

    /// Reserves an attempt with the throttle, applying the outage policy. `None` when there is
    /// no throttle, or it is down and the policy is to fail open.
    async fn reserve(&self, key: &ThrottleKey, ip: Option<IpAddr>) -> Result<Option<Reservation>> {
        let inner = &*self.inner;
        let Some(throttle) = &inner.throttle else {
            return Ok(None);
        };
        match throttle.reserve(key, self.now()).await {
            Ok(Admission::Allowed(reservation)) => Ok(Some(reservation)),
            Ok(Admission::Refused {
                limit: LimitKind::Capacity,
                retry_after,
            }) => {
                audit::login_overloaded("throttle_capacity", retry_after, ip);
                Err(Error::Overloaded { retry_after })
            }
            Ok(Admission::Refused { limit, retry_after }) => {
                audit::login_throttled(limit.as_str(), retry_after, key, ip);
                Err(Error::Throttled { retry_after })
            }
            Err(error) => match inner.throttle_outage {
                ThrottleOutage::FailClosed => {
                    audit::throttle_unavailable("fail_closed", &error, ip);
                    Err(Error::Store(error))
                }
                ThrottleOutage::FailOpen => {
                    audit::throttle_unavailable("fail_open", &error, ip);
                    Ok(None)
                }
            },
        }
    }

    /// Looks the user up and verifies the password: the user and, if the stored hash is
    /// outdated, a fresh one. Every failure is audited.
    async fn check_password(
        &self,
        lookup: Lookup<'_, U::User>,
        password: &str,
        key: &ThrottleKey,
        ip: Option<IpAddr>,
    ) -> Result<(U::User, Option<String>)> {
        let inner = &*self.inner;
        let user = match lookup {
            Lookup::Email(email) => inner.users.find_by_email(email).await?,
            Lookup::Found(user) => user,
        };
        let stored = user.as_ref().map(|u| u.password_hash().to_owned());
        let password = Zeroizing::new(password.as_bytes().to_vec());
        let (verdict, rehashed) = inner
            .hashing
            .run(move |hasher| {
                let verdict = match stored.as_deref() {
                    None => {
                        hasher.verify(&password, hasher.dummy_hash())?;
                        Verdict::UnknownAccount
                    }
                    Some(phc) => match hasher.verify(&password, phc) {
                        Ok(true) => Verdict::Matched,
                        Ok(false) => Verdict::WrongPassword,
                        Err(_) => {
                            // Same work as an unknown user: no timing tells this case apart.
                            hasher.verify(&password, hasher.dummy_hash())?;
                            Verdict::UnusableHash
                        }
                    },
                };
                let rehashed = match (verdict, stored.as_deref()) {
                    (Verdict::Matched, Some(phc)) if hasher.needs_rehash(phc) => {
                        Some(hasher.hash(&password)?)
                    }
                    _ => None,
                };
                Ok((verdict, rehashed))
            })
            .await?;
        let failure = match (verdict, user) {
            (Verdict::Matched, Some(user)) => return Ok((user, rehashed)),
            (Verdict::UnusableHash, Some(user)) => {
                tracing::warn!(user_id = %user.id(), "keycard: the stored password hash of this user is not one keycard can verify (not an argon2 PHC string, or parameters out of bounds); login refused as invalid credentials");
                (FailureReason::UnusableHash, Some(user.id()))
            }
            (Verdict::UnknownAccount, _) | (_, None) => (FailureReason::UnknownAccount, None),
            (_, Some(user)) => (FailureReason::WrongPassword, Some(user.id())),
        };
        audit::login_failed(failure.0, failure.1.as_ref(), key, ip);
        Err(match failure.0 {
            FailureReason::UnknownAccount if inner.reveal_unknown_email => Error::UnknownEmail,
            _ => Error::InvalidCredentials,
        })
    }

    /// Ends the session `token` names, if there is one. The token's secret must match: a
    /// session id alone (which is public) cannot log anyone out.
    ///
    /// Logging out twice, or with a malformed or unknown token, is not an error: it returns
    /// [`Logout::NoSession`], so a protocol can choose to answer "not checked in" (the sessions API)
    /// or succeed anyway (the login API).
    ///
    /// # Errors
    /// [`Error::Store`] if the token store fails.
    pub async fn logout(&self, token: &str) -> Result<Logout> {
        let Ok(token) = self.inner.token_format.parse(token) else {
            return Ok(Logout::NoSession);
        };
        let now = self.now();
        let tokens = &self.inner.tokens;
        let Some(session) = tokens.get(&token.id(), now).await? else {
            return Ok(Logout::NoSession);
        };
        if !session.secret_hash.verify(&token) {
            return Ok(Logout::NoSession);
        }
        let deleted = tokens.delete(&session.id).await?;
        Ok(match deleted && !self.inner.policy.is_dead(&session, now) {
            true => {
                audit::logout(&session.user_id, &session.id);
                Logout::Destroyed(session)
            }
            false => Logout::NoSession,
        })
    }

    /// Checks a token and returns its session and user.
    ///
    /// One token store read; plus a `last_seen_at` write at most once per
    /// [touch interval](SessionPolicy::touch_interval); plus one user lookup. Use
    /// [`validate_session`](Self::validate_session) when you only need the session.
    ///
    /// # Errors
    /// - [`Error::MalformedToken`] if `token` is not shaped like a keycard token;
    /// - [`Error::InvalidToken`] if it names no live session, its secret does not match, or
    ///   its user no longer exists (the session is then deleted);
    /// - [`Error::SessionExpired`] if the session is past its lifetime or idle timeout (it is
    ///   deleted);
    /// - [`Error::Store`] if a store fails.
    pub async fn validate(&self, token: &str) -> Result<Authenticated<U::User>> {
        let session = self.validate_session(token).await?;
        match self.inner.users.find_by_id(&session.user_id).await? {
            Some(user) => Ok(Authenticated { session, user }),
            None => {
                self.inner.tokens.delete(&session.id).await?;
                Err(Error::InvalidToken)
            }
        }
    }

    /// Checks a token and returns its session, without loading the user: one token store
    /// read (and an occasional touch).
    ///
    /// # Errors
    /// As [`validate`](Self::validate), except that a deleted user is not noticed.
    pub async fn validate_session(&self, token: &str) -> Result<Session> {
        // The token is not kept: parse it into its id and digest without allocating.
        let (id, digest) = self.inner.token_format.parse_id_and_digest(token)?;
        let now = self.now();
        let inner = &*self.inner;
        // Call the `dyn TokenStore` itself: a call on the `Arc` goes through the `Arc`
        // forwarding impl as well, one more boxed future per call.
        let tokens: &dyn TokenStore = &*inner.tokens;
        let found = match tokens.get_immediate(&id, now) {
            Some(found) => found,
            None => tokens.get(&id, now).await,
        };
        let mut session = found?.ok_or(Error::InvalidToken)?;
        if !session.secret_hash.matches(&digest) {
            return Err(Error::InvalidToken);
        }
        let mut dead = inner.policy.is_dead(&session, now);
        if dead && !session.is_expired(now) {
            // Idle by this copy's `last_seen_at`: a cache in front of the store may lag a
            // touch by another instance, so decide on the store's copy.
            session = inner
                .tokens
                .get_uncached(&session.id, now)
                .await?
                .ok_or(Error::InvalidToken)?;
            dead = inner.policy.is_dead(&session, now);
        }
        if dead {
            if tokens.delete(&session.id).await? {
                audit::session_expired(&session.user_id, &session.id);
            }
            return Err(Error::SessionExpired);
        }
        if inner.policy.should_touch(&session, now) {
            let seen = truncate_to_micros(now);
            // A concurrent logout may have deleted it since the read: then it is gone.
            if !tokens.touch(&session.id, seen).await? {
                return Err(Error::InvalidToken);
            }
            session.last_seen_at = seen;
        }
        Ok(session)
    }

    /// Deletes every expired session from the token store and returns how many. Also prunes
    /// the throttle's ended windows ([`Throttle::prune`]).
    ///
    /// Sessions dead by idle timeout are deleted when next presented, or by this call once
    /// their absolute lifetime ends. Run it periodically with
    /// [`spawn_expiry_task`](Self::spawn_expiry_task), or from your own scheduler.
    ///
    /// # Errors
    /// [`Error::Store`] if the token store or the throttle's backend fails.
    pub async fn expire(&self) -> Result<u64> {
        let now = self.now();
        let purged = self.inner.tokens.purge_expired(now).await?;
        audit::sessions_purged(purged);
        if let Some(throttle) = &self.inner.throttle {
            throttle.prune(now).await?;
        }
        Ok(purged)
    }

    /// Ends every session of `user`, including the one making the request (log out
    /// everywhere, or after an administrator reset a password). Returns how many were ended.
    /// To keep the caller's own session, use [`logout_others`](Self::logout_others); after a
    /// password change by the user, [`change_password`](Self::change_password) does that
    /// itself.
    ///
    /// # Errors
    /// [`Error::Store`] if the token store fails.
    pub async fn logout_all(&self, user: &UserId) -> Result<u64> {
        let count = self.inner.tokens.delete_for_user(user).await?;
        audit::sessions_revoked(user, count);
        Ok(count)
    }

    /// The live sessions of `user`, oldest first (for a "where you're logged in" page).
    ///
    /// # Errors
    /// [`Error::Store`] if the token store fails.
    pub async fn sessions_of(&self, user: &UserId) -> Result<Vec<Session>> {
        Ok(self.inner.tokens.list_for_user(user, self.now()).await?)
    }

    /// Re-checks the password of a logged-in user (before a sensitive action such as changing
    /// the email, or "confirm it's you"), and returns the user.
    ///
    /// `subject` is a [`Session`] (or [`Authenticated`], or a bare [`UserId`]); `client` is
    /// the client of the request making this check (its address, as login takes it), not the
    /// session's. It costs and counts what a login costs: the same length limit, the same
    /// bounded hashing queue and per-address in-flight bound, the same throttle (keyed by the
    /// user's email and the request's address), exactly one verification (against a dummy
    /// hash if the user is gone or their hash is unusable), and a wrong password is counted
    /// as a failed attempt on the account, so a stolen session cannot be used to guess the
    /// password faster than login allows, and guesses made with it from elsewhere are counted
    /// against the guesser's address, never the owner's. An outdated hash is upgraded as at
    /// login.
    ///
    /// # Errors
    /// - [`Error::InputTooLong`] for a password over [`MAX_PASSWORD_LEN`] bytes;
    /// - [`Error::IncorrectPassword`] for a wrong password, an unusable stored hash, or a
    ///   user who no longer exists;
    /// - [`Error::Throttled`], [`Error::Overloaded`], [`Error::Store`] as for
    ///   [`login`](Self::login).
    pub async fn verify_password<S: Subject + ?Sized>(
        &self,
        subject: &S,
        password: &str,
        client: &ClientInfo,
    ) -> Result<U::User> {
        let (user, rehashed) = self
            .reverify(subject.user_id(), client.ip, password)
            .await?;
        if let Some(phc) = rehashed {
            self.inner.users.set_password_hash(&user.id(), &phc).await?;
        }
        Ok(user)
    }

    /// Re-authentication: re-checks the password of `session`'s user (throttled, counted and
    /// timed like a login, under the address of `client`, the request's; see
    /// [`verify_password`](Self::verify_password)) and, if it matches, replaces the session
    /// with a fresh one: a new token (the old one stops working at once, as OWASP recommends
    /// after any privilege change) whose [`created_at`](Session::created_at) records this
    /// verification, the same absolute expiry as before (re-authenticating never extends a
    /// session), and `client` as its client metadata.
    ///
    /// A session's `created_at` is therefore always the last time its user proved the
    /// password; [`require_recent_auth`](Self::require_recent_auth) checks it before
    /// sensitive actions.
    ///
    /// ```
    /// # use std::time::Duration;
    /// # use keycard::{Authenticator, ClientInfo, Error, ManualClock, MemoryTokenStore, MemoryUserStore, UserRecord};
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> keycard::Result<()> {
    /// let clock = ManualClock::default();
    /// let auth = Authenticator::builder(MemoryUserStore::<UserRecord>::new(), MemoryTokenStore::new())
    ///     .clock(clock.clone())
    ///     .build();
    /// # let hash = auth.hash_password("correct horse").await?;
    /// # auth.users().insert(UserRecord::new(1_i64, "ann@example.com", hash)).unwrap();
    /// let login = auth.login("ann@example.com", "correct horse", ClientInfo::none()).await?;
    /// clock.advance(Duration::from_secs(3600));
    /// let five_minutes = Duration::from_secs(300);
    /// assert!(matches!(
    ///     auth.require_recent_auth(&login.session, five_minutes),
    ///     Err(Error::ReauthenticationRequired { .. })
    /// ));
    /// let fresh = auth.reauthenticate(&login.session, "correct horse", &ClientInfo::none()).await?;
    /// auth.require_recent_auth(&fresh.session, five_minutes)?;
    /// assert_eq!(fresh.session.expires_at, login.session.expires_at);
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// As [`verify_password`](Self::verify_password); [`Error::InvalidToken`] if `session`
    /// has ended meanwhile; [`Error::Store`] if a store fails.
    pub async fn reauthenticate(
        &self,
        session: &Session,
        password: &str,
        client: &ClientInfo,
    ) -> Result<Login<U::User>> {
        let user = self.verify_password(session, password, client).await?;
        let (token, fresh) = self.replace_session(session, client).await?;
        self.inner.tokens.delete(&session.id).await?;
        audit::session_revoked(&session.user_id, &session.id);
        audit::login_succeeded(&fresh.user_id, &fresh.id, fresh.client.ip);
        Ok(Login {
            token,
            session: fresh,
            user,
        })
    }

    /// A fresh session for `session`'s user with the same absolute expiry and `client`'s
    /// metadata, if `session` is still live (a session revoked meanwhile must not come back
    /// under a new token). The old session is left for the caller to end.
    async fn replace_session(
        &self,
        session: &Session,
        client: &ClientInfo,
    ) -> Result<(Token, Session)> {
        let now = self.now();
        let tokens: &dyn TokenStore = &*self.inner.tokens;
        if tokens.get(&session.id, now).await?.is_none() {
            return Err(Error::InvalidToken);
        }
        // Sessions start at `now` to the microsecond: leave exactly the old expiry.
        let left = (session.expires_at - truncate_to_micros(now))
            .try_into()
            .unwrap_or(Duration::ZERO)
            .max(Duration::from_secs(1));
        self.start_session(session.user_id.clone(), client.clone(), left)
            .await
    }

    /// Checks that `session`'s user proved the password within `within` (at login or by
    /// [`reauthenticate`](Self::reauthenticate)), before a sensitive action such as changing
    /// the email or deleting the account.
    ///
    /// # Errors
    /// [`Error::ReauthenticationRequired`] when the last proof is older.
    pub fn require_recent_auth(&self, session: &Session, within: Duration) -> Result<()> {
        let age = self.now() - session.created_at;
        if age > within {
            return Err(Error::ReauthenticationRequired { within });
        }
        Ok(())
    }

    /// Checks `password` for the user with id `who` as login would, through
    /// [`attempt`](Self::attempt).
    async fn reverify(
        &self,
        who: &UserId,
        ip: Option<IpAddr>,
        password: &str,
    ) -> Result<(U::User, Option<String>)> {
        check_len(Field::Password, password, MAX_PASSWORD_LEN)?;
        let user = self.inner.users.find_by_id(who).await?;
        let account = match &user {
            Some(user) => normalize_email(user.email()),
            None => who.as_str().to_owned(),
        };
        let key = ThrottleKey::new(&account, ip);
        match self.attempt(&key, ip, Lookup::Found(user), password).await {
            Err(Error::UnknownEmail | Error::InvalidCredentials) => Err(Error::IncorrectPassword),
            other => other,
        }
    }

    /// Changes the password of the user logged in with `session`: verifies `current` as
    /// [`verify_password`](Self::verify_password) does (throttled and counted under the
    /// address of `client`, the request's), checks `new` against the [`PasswordPolicy`],
    /// hashes it (through the same hashing queue and per-address bound as a login), stores the
    /// hash ([`UserStore::set_password_hash`]), then **rotates the caller's session**: a fresh
    /// session with a new token and the same absolute expiry replaces it, and every other
    /// session of the user, the old one included, ends in one atomic store operation
    /// ([`TokenStore::delete_for_user_except`]). Whoever else held a session, or a copy of the
    /// caller's token (a stolen token is the usual reason to change a password), is logged
    /// out; the caller continues with the new token, which the answer must carry.
    ///
    /// The new hash is stored before sessions are ended: if ending them fails, the password
    /// is already changed and the call returns [`Error::Store`]; call
    /// [`logout_all`](Self::logout_all). A login that verified the old password at the very
    /// moment of the change may start a session after the revocation; the two stores (users
    /// and sessions) share no transaction.
    ///
    /// # Errors
    /// - [`Error::WeakPassword`] if `new` fails the policy (checked first; nothing is hashed,
    ///   counted or stored);
    /// - [`Error::InputTooLong`] for a current password over [`MAX_PASSWORD_LEN`] bytes;
    /// - [`Error::IncorrectPassword`] if `current` is wrong (counted by the throttle);
    /// - [`Error::InvalidToken`] if `session` ended meanwhile (the password is changed);
    /// - [`Error::Throttled`], [`Error::Overloaded`], [`Error::Store`],
    ///   [`Error::PasswordHash`], [`Error::Randomness`] as for login and
    ///   [`hash_password`](Self::hash_password).
    ///
    /// ```
    /// # tokio_test_block_on(async {
    /// use keycard::{Authenticator, ClientInfo, Error, MemoryTokenStore, MemoryUserStore, UserRecord};
    ///
    /// let auth = Authenticator::builder(MemoryUserStore::new(), MemoryTokenStore::new()).build();
    /// let hash = auth.hash_new_password("correct horse battery staple", "ann@example.com").await?;
    /// auth.users().insert(UserRecord::new(1_i64, "ann@example.com", hash)).expect("new user");
    /// let laptop = auth.login("ann@example.com", "correct horse battery staple", ClientInfo::none()).await?;
    /// let phone = auth.login("ann@example.com", "correct horse battery staple", ClientInfo::none()).await?;
    ///
    /// // On the phone: a weak new password is refused, naming every rule it failed.
    /// let here = ClientInfo::none(); // the request's client, as the HTTP layer gives it
    /// let weak = auth.change_password(&phone.session, "correct horse battery staple", "ann", &here).await;
    /// assert!(matches!(weak, Err(Error::WeakPassword(_))));
    ///
    /// let changed = auth
    ///     .change_password(&phone.session, "correct horse battery staple", "a new long passphrase", &here)
    ///     .await?;
    /// assert_eq!(changed.ended, 2); // the laptop, and the phone's old session
    /// assert!(auth.validate(laptop.token.expose_secret()).await.is_err());
    /// assert!(auth.validate(phone.token.expose_secret()).await.is_err());
    /// assert!(auth.validate(changed.login.token.expose_secret()).await.is_ok());
    /// # Ok::<(), keycard::Error>(())
    /// # });
    /// # fn tokio_test_block_on<F: std::future::Future>(f: F) -> F::Output {
    /// #     tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(f)
    /// # }
    /// ```
    pub async fn change_password(
        &self,
        session: &Session,
        current: &str,
        new: &str,
        client: &ClientInfo,
    ) -> Result<PasswordChanged<U::User>> {
        let inner = &*self.inner;
        let email = inner
            .users
            .find_by_id(&session.user_id)
            .await?
            .map(|user| user.email().to_owned());
        inner
            .password_policy
            .check(new, email.as_deref())
            .map_err(Error::WeakPassword)?;
        let (user, _) = self.reverify(&session.user_id, client.ip, current).await?;
        let phc = self.hash_for_client(new, client.ip).await?;
        inner.users.set_password_hash(&user.id(), &phc).await?;
        audit::password_changed(&session.user_id, &session.id);
        let (token, fresh) = self.replace_session(session, client).await?;
        let ended = inner
            .tokens
            .delete_for_user_except(&session.user_id, &fresh.id)
            .await?;
        audit::sessions_revoked(&session.user_id, ended);
        audit::login_succeeded(&fresh.user_id, &fresh.id, fresh.client.ip);
        Ok(PasswordChanged {
            login: Login {
                token,
                session: fresh,
                user,
            },
            ended,
        })
    }

    /// Hashes `password` for the client at `ip` through the hashing queue, holding one of the
    /// address's places in flight (as a login does), so that no client can fill the queue
    /// others log in through.
    pub(crate) async fn hash_for_client(
        &self,
        password: &str,
        ip: Option<IpAddr>,
    ) -> Result<String> {
        check_len(Field::Password, password, MAX_PASSWORD_LEN)?;
        let inner = &*self.inner;
        let Some(_in_flight) = inner.in_flight.enter(ip.map(crate::throttle::network_of)) else {
            return Err(Error::Throttled {
                retry_after: OVERLOADED_RETRY_AFTER,
            });
        };
        self.hash_password(password).await
    }

    /// Ends every session of `session`'s user except `session` itself ("log out my other
    /// devices"), in one atomic store operation. Returns how many were ended. Unlike
    /// [`logout_all`](Self::logout_all), the caller stays logged in.
    ///
    /// # Errors
    /// [`Error::Store`] if the token store fails.
    pub async fn logout_others(&self, session: &Session) -> Result<u64> {
        let count = self
            .inner
            .tokens
            .delete_for_user_except(&session.user_id, &session.id)
            .await?;
        audit::sessions_revoked(&session.user_id, count);
        Ok(count)
    }

    /// Ends one session of `user` by its public id (the "log out" button next to a device in
    /// a sessions list; ids come from [`session_views`](Self::session_views)). Returns whether
    /// a live session was ended.
    ///
    /// Only `user`'s own sessions can be ended: the id of another user's session is treated
    /// exactly as an unknown id (`false`, and nothing is deleted), so a client cannot end, or
    /// learn of, other users' sessions by guessing ids. Pass the id of the user the request's
    /// token belongs to, never one the client sent.
    ///
    /// # Errors
    /// [`Error::Store`] if the token store fails.
    pub async fn revoke(&self, user: &UserId, session: &SessionId) -> Result<bool> {
        let tokens = &self.inner.tokens;
        // A session's user never changes and ids are never reused (create never overwrites),
        // so the owner read here is still the owner at the delete.
        let owned = match tokens.get(session, self.now()).await? {
            Some(found) => found.user_id == *user,
            None => false,
        };
        if !owned || !tokens.delete(session).await? {
            return Ok(false);
        }
        audit::session_revoked(user, session);
        Ok(true)
    }

    /// The live sessions of `current`'s user as [`SessionView`]s (safe to serialize to the
    /// client: no secret digest, no user id), oldest first, with `current` marked. Sessions
    /// past their idle timeout are left out.
    ///
    /// # Errors
    /// [`Error::Store`] if the token store fails.
    pub async fn session_views(&self, current: &Session) -> Result<Vec<SessionView>> {
        let now = self.now();
        let sessions = self
            .inner
            .tokens
            .list_for_user(&current.user_id, now)
            .await?;
        Ok(sessions
            .iter()
            .filter(|s| !self.inner.policy.is_dead(s, now))
            .map(|s| SessionView::new(s, s.id == current.id))
            .collect())
    }

    /// Checks a new user's password against the [`PasswordPolicy`] (with `email` for the
    /// context-word rule), then hashes it like [`hash_password`](Self::hash_password). Use it
    /// at registration; store the returned PHC string in your user table.
    ///
    /// # Errors
    /// [`Error::WeakPassword`] if the password fails the policy (nothing is hashed); otherwise
    /// as [`hash_password`](Self::hash_password).
    pub async fn hash_new_password(&self, password: &str, email: &str) -> Result<String> {
        self.inner
            .password_policy
            .check(password, Some(email))
            .map_err(Error::WeakPassword)?;
        self.hash_password(password).await
    }

    /// The password policy applied to new passwords.
    pub fn password_policy(&self) -> &PasswordPolicy {
        &self.inner.password_policy
    }

    /// Hashes a password for registration or a password change, with the same hasher, thread
    /// pool and concurrency bound as login. Store the returned PHC string in your user table.
    ///
    /// It applies no [`PasswordPolicy`] (only the length limit), so that existing or seeded
    /// passwords can be hashed as they are; for passwords users choose, use
    /// [`hash_new_password`](Self::hash_new_password).
    ///
    /// # Errors
    /// [`Error::InputTooLong`] over [`MAX_PASSWORD_LEN`] bytes; [`Error::Overloaded`] when the
    /// hashing queue is full; [`Error::PasswordHash`] or [`Error::Randomness`] if hashing
    /// fails.
    pub async fn hash_password(&self, password: &str) -> Result<String> {
        check_len(Field::Password, password, MAX_PASSWORD_LEN)?;
        let password = Zeroizing::new(password.as_bytes().to_vec());
        self.inner
            .hashing
            .run(move |hasher| hasher.hash(&password))
            .await
    }

    /// Spawns a Tokio task that calls [`expire`](Self::expire) every `every` (at least one
    /// second) until the handle is aborted or the runtime shuts down. Failures are logged with
    /// `tracing` and retried at the next tick.
    ///
    /// # Panics
    /// If called outside a Tokio runtime, like [`tokio::spawn`].
    pub fn spawn_expiry_task(&self, every: Duration) -> tokio::task::JoinHandle<()>
    where
        U: 'static,
    {
        let this = self.clone();
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(every.max(Duration::from_secs(1)));
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticks.tick().await;
                match this.expire().await {
                    Ok(purged) => tracing::debug!(purged, "keycard: purged expired sessions"),
                    Err(error) => {
                        tracing::warn!(%error, source = ?std::error::Error::source(&error), "keycard: purging expired sessions failed")
                    }
                }
            }
        })
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

    /// Applies the [`SessionCap`] after `new` was created (see there).
    async fn enforce_cap(&self, new: &Session) -> Result<()> {
        let Some(cap) = self.inner.session_cap else {
            return Ok(());
        };
        let tokens = &self.inner.tokens;
        let live = tokens.list_for_user(&new.user_id, self.now()).await?;
        if live.len() <= cap.max {
            return Ok(());
        }
        // Oldest first, one order every instance agrees on.
        let mut live: Vec<&Session> = live.iter().collect();
        live.sort_by_key(|s| (s.created_at, s.id));
        match cap.policy {
            CapPolicy::EvictOldest => {
                let excess = live.len() - cap.max;
                let mut evicted = 0;
                // Never the session this login just started, even if a skewed clock elsewhere
                // made another look newer.
                let others = live.iter().filter(|s| s.id != new.id);
                for old in others.take(excess) {
                    if tokens.delete(&old.id).await? {
                        evicted += 1;
                    }
                }
                audit::sessions_revoked(&new.user_id, evicted);
                Ok(())
            }
            CapPolicy::Refuse => {
                // Over the cap once this session is in: back off. Ordering by age instead
                // would let a session whose clock read came first but whose insert came last
                // count itself in after a younger one already had: the count is what is safe.
                tokens.delete(&new.id).await?;
                Err(Error::TooManySessions { max: cap.max })
            }
        }
    }

    async fn start_session(
        &self,
        user_id: UserId,
        client: ClientInfo,
        lifetime: Duration,
    ) -> Result<(Token, Session)> {
        // A 128-bit random id collides with negligible probability; retry rather than fail.
        let mut attempts = 0;
        loop {
            let token = self.inner.token_format.generate()?;
            let session = Session::new(
                &token,
                user_id.clone(),
                self.now(),
                lifetime,
                client.clone(),
            );
            match self.inner.tokens.create(&session).await {
                Ok(()) => return Ok((token, session)),
                Err(StoreError::Duplicate) if attempts < 3 => attempts += 1,
                Err(e) => return Err(e.into()),
            }
        }
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

/// Configures an [`Authenticator`]. Every setting has a secure default.
///
/// ```
/// use std::time::Duration;
/// use keycard::{Authenticator, MemoryTokenStore, MemoryUserStore, UserRecord};
/// let auth = Authenticator::builder(MemoryUserStore::<UserRecord>::new(), MemoryTokenStore::new())
///     .session_ttl(Duration::from_secs(8 * 3600))
///     .idle_timeout(Duration::from_secs(30 * 60))
///     .max_concurrent_hashes(4)
///     .build();
/// assert_eq!(auth.policy().ttl(), Duration::from_secs(8 * 3600));
/// ```
#[must_use]
pub struct AuthenticatorBuilder<U> {
    users: U,
    tokens: Arc<dyn TokenStore>,
    hasher: Option<Arc<dyn PasswordHasher>>,
    policy: SessionPolicy,
    clock: Arc<dyn Clock>,
    throttle: Option<Arc<dyn Throttle>>,
    throttle_outage: ThrottleOutage,
    reveal_unknown_email: bool,
    password_policy: PasswordPolicy,
    max_concurrent_hashes: Option<usize>,
    max_queued_hashes: Option<usize>,
    max_logins_in_flight_per_ip: usize,
    max_hash_wait: Duration,
    token_format: TokenFormat,
    session_cap: Option<SessionCap>,
    registration_limit: Limit,
}

impl<U: UserStore> AuthenticatorBuilder<U> {
    /// The default number of password checks and hashes (logins, registrations,
    /// re-verifications, password changes) one client address may have in flight at once.
    pub const DEFAULT_LOGINS_IN_FLIGHT_PER_IP: usize = 4;
    /// The default hard bound on the hashing queue, per concurrent hash: the memory bound on
    /// waiting callers. The queue is normally shorter: see
    /// [`max_hash_wait`](Self::max_hash_wait).
    pub const DEFAULT_QUEUED_HASHES_PER_PERMIT: usize = 256;
    /// The default longest wait for a hashing slot: 2 seconds.
    pub const DEFAULT_MAX_HASH_WAIT: Duration = Duration::from_secs(2);
    /// The default registration limit per client address (IPv6: per `/64`): 20 per hour.
    pub fn default_registration_limit() -> Limit {
        Limit::new(20, Duration::from_secs(3600))
    }

    /// Absolute session lifetime. Default: 24 hours.
    pub fn session_ttl(mut self, ttl: Duration) -> Self {
        self.policy = self.policy.with_ttl(ttl);
        self
    }

    /// The longest session lifetime a login may ask for with
    /// [`LoginOptions::with_lifetime`] ("remember me"). Default: the session TTL (no login
    /// outlives it).
    pub fn max_session_ttl(mut self, max: Duration) -> Self {
        self.policy = self.policy.with_max_ttl(max);
        self
    }

    /// The per-user limit on live sessions and what a login over it does. Default:
    /// [`SessionCap::DEFAULT`] (100, the oldest evicted), so no account can fill the store
    /// with sessions.
    pub fn session_cap(mut self, cap: SessionCap) -> Self {
        self.session_cap = Some(cap);
        self
    }

    /// No limit on sessions per user. Only for stores you trust to hold whatever an account
    /// can create.
    pub fn without_session_cap(mut self) -> Self {
        self.session_cap = None;
        self
    }

    /// Ends sessions unused for `idle`. Default: no idle timeout.
    pub fn idle_timeout(mut self, idle: Duration) -> Self {
        self.policy = self.policy.with_idle_timeout(Some(idle));
        self
    }

    /// How often at most `validate` writes `last_seen_at` per session. Default: 60 s (capped
    /// at a tenth of the idle timeout).
    pub fn touch_interval(mut self, every: Duration) -> Self {
        self.policy = self.policy.with_touch_interval(every);
        self
    }

    /// Replaces the whole session policy.
    pub fn policy(mut self, policy: SessionPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// The clock. Default: [`SystemClock`].
    pub fn clock(mut self, clock: impl Clock + 'static) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// The password hasher. Default: [`Argon2Hasher::default`] (argon2id, m = 19456 KiB,
    /// t = 2, p = 1).
    pub fn password_hasher(mut self, hasher: impl PasswordHasher) -> Self {
        self.hasher = Some(Arc::new(hasher));
        self
    }

    /// How many password hashes may run at once. Each holds the hasher's memory cost (19 MiB
    /// by default), so this bounds hashing memory. Default: the number of CPUs. At least 1.
    pub fn max_concurrent_hashes(mut self, n: usize) -> Self {
        self.max_concurrent_hashes = Some(n.max(1));
        self
    }

    /// The hard bound on callers waiting for a hashing slot (logins, registrations,
    /// re-verifications, password changes, [`hash_password`](Authenticator::hash_password)).
    /// Beyond it, they fail at once with [`Error::Overloaded`] (HTTP 503 with `Retry-After`)
    /// instead of queueing without bound. Default:
    /// [`DEFAULT_QUEUED_HASHES_PER_PERMIT`](Self::DEFAULT_QUEUED_HASHES_PER_PERMIT) ×
    /// [`max_concurrent_hashes`](Self::max_concurrent_hashes). Usually
    /// [`max_hash_wait`](Self::max_hash_wait) is the bound that applies first. `0` refuses any
    /// caller that finds every slot busy.
    pub fn max_queued_hashes(mut self, n: usize) -> Self {
        self.max_queued_hashes = Some(n);
        self
    }

    /// The longest a caller may expect to wait for a hashing slot. Admission is by expected
    /// wait, not by a fixed count: a caller that finds every slot busy joins the queue only if
    /// the queue ahead of it, times the time one hash takes (learned from the hashes run so
    /// far), divided by [`max_concurrent_hashes`](Self::max_concurrent_hashes), is within
    /// this; otherwise it gets [`Error::Overloaded`] at once, with the expected excess as
    /// `retry_after`. So a burst of ordinary size (40 logins at once on 2 cores) waits its
    /// turn, and a storm is refused fast. Hashing memory stays bounded by the concurrent
    /// hashes alone: waiting callers hold none. Default:
    /// [`DEFAULT_MAX_HASH_WAIT`](Self::DEFAULT_MAX_HASH_WAIT).
    pub fn max_hash_wait(mut self, wait: Duration) -> Self {
        self.max_hash_wait = wait;
        self
    }

    /// How many [registrations](Authenticator::register) one client address (IPv6: one
    /// `/64`) may make per window, counted by the [throttle](crate::throttle) (shared by every
    /// instance when the throttle is). Registration needs no password an attacker must
    /// guess, so without it one address could hash as fast as it can send. Default:
    /// [`default_registration_limit`](Self::default_registration_limit).
    pub fn registration_limit(mut self, limit: Limit) -> Self {
        self.registration_limit = limit;
        self
    }

    /// How many password checks and hashes (logins, registrations, re-verifications,
    /// password changes) one client address (IPv6: one `/64`) may have in flight at once in
    /// this process; more get [`Error::Throttled`] at once. Keeps one client from filling the
    /// hashing queue. Default:
    /// [`DEFAULT_LOGINS_IN_FLIGHT_PER_IP`](Self::DEFAULT_LOGINS_IN_FLIGHT_PER_IP). At least 1.
    pub fn max_logins_in_flight_per_ip(mut self, n: usize) -> Self {
        self.max_logins_in_flight_per_ip = n.max(1);
        self
    }

    /// The login throttle. Default: [`MemoryThrottle::default`], with the limits of
    /// [`ThrottleLimits::default`](crate::throttle::ThrottleLimits::default). With several
    /// instances, give them one shared backend (see [`crate::throttle`]).
    pub fn throttle(mut self, throttle: impl Throttle + 'static) -> Self {
        self.throttle = Some(Arc::new(throttle));
        self
    }

    /// What login does when the throttle's backend fails. Default:
    /// [`ThrottleOutage::FailClosed`] (refuse with [`Error::Store`], HTTP 503).
    pub fn throttle_outage(mut self, policy: ThrottleOutage) -> Self {
        self.throttle_outage = policy;
        self
    }

    /// Turns login throttling off (for example when a gateway already limits attempts per
    /// account and per address). The hashing queue and the per-address in-flight bound stay.
    pub fn without_throttle(mut self) -> Self {
        self.throttle = None;
        self
    }

    /// Whether login reports an unknown email as [`Error::UnknownEmail`] instead of
    /// [`Error::InvalidCredentials`]. Default: `false`, because telling "no such user" apart
    /// from "wrong password" lets anyone test which emails have accounts. Turn it on only for
    /// protocols that require it (the sessions API answers "User not found").
    pub fn reveal_unknown_email(mut self, reveal: bool) -> Self {
        self.reveal_unknown_email = reveal;
        self
    }

    /// The rules new passwords must meet in
    /// [`change_password`](Authenticator::change_password) and
    /// [`hash_new_password`](Authenticator::hash_new_password). Default:
    /// [`PasswordPolicy::default`] (8 characters, common passwords and the user's email
    /// refused).
    pub fn password_policy(mut self, policy: PasswordPolicy) -> Self {
        self.password_policy = policy;
        self
    }

    /// How login spells new tokens. Default: [`TokenFormat::plain`] (`<id>.<secret>`).
    ///
    /// [`TokenFormat::prefixed`] issues `myapp_<id>.<secret>_<checksum>` tokens, which secret
    /// scanners find and which fail fast (before any store read) on a typo or a wrong prefix.
    /// Either way, tokens already issued stay valid: plain ones parse under every format, and
    /// the plain format parses prefixed ones; only a change from one prefix to another ends
    /// the sessions issued under the old prefix.
    ///
    /// ```
    /// use keycard::{Authenticator, MemoryTokenStore, MemoryUserStore, TokenFormat, UserRecord};
    /// let auth = Authenticator::builder(MemoryUserStore::<UserRecord>::new(), MemoryTokenStore::new())
    ///     .token_format(TokenFormat::prefixed("myapp_").expect("a valid prefix"))
    ///     .build();
    /// # let _ = auth;
    /// ```
    pub fn token_format(mut self, format: TokenFormat) -> Self {
        self.token_format = format;
        self
    }

    /// Builds the authenticator.
    pub fn build(self) -> Authenticator<U> {
        let max = self.max_concurrent_hashes.unwrap_or_else(|| {
            std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
        });
        let queued = self
            .max_queued_hashes
            .unwrap_or(max * Self::DEFAULT_QUEUED_HASHES_PER_PERMIT);
        let hasher = self
            .hasher
            .unwrap_or_else(|| Arc::new(Argon2Hasher::default()));
        Authenticator {
            inner: Arc::new(Inner {
                users: self.users,
                tokens: self.tokens,
                hashing: HashPool::new(hasher, max, queued, self.max_hash_wait),
                policy: self.policy,
                clock: self.clock,
                throttle: self.throttle,
                throttle_outage: self.throttle_outage,
                in_flight: InFlight::new(self.max_logins_in_flight_per_ip),
                reveal_unknown_email: self.reveal_unknown_email,
                password_policy: self.password_policy,
                token_format: self.token_format,
                session_cap: self.session_cap,
                registration_limit: self.registration_limit,
            }),
        }
    }
}

impl<U: fmt::Debug> fmt::Debug for AuthenticatorBuilder<U> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthenticatorBuilder")
            .field("users", &self.users)
            .field("tokens", &self.tokens)
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

pub(crate) fn check_len(field: Field, value: &str, max: usize) -> Result<()> {
    match value.len() > max {
        true => Err(Error::InputTooLong { field, max }),
        false => Ok(()),
    }
}
