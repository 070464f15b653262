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
use crate::session::{truncate_to_micros, ClientInfo, Session, SessionPolicy};
use crate::store::TokenStore;
use crate::throttle::in_flight::InFlight;
use crate::throttle::{
    Admission, LimitKind, MemoryThrottle, Reservation, Throttle, ThrottleKey, ThrottleOutage,
};
use crate::token::Token;
use crate::user::{normalize_email, User, UserId, UserStore};

/// The longest email accepted, in bytes (RFC 5321's path limit is 256; 320 leaves room for
/// any address a mail server takes). Longer ones fail with [`Error::InputTooLong`].
pub const MAX_EMAIL_LEN: usize = 320;
/// The longest password accepted, in bytes (at least 256 four-byte characters). Longer ones
/// fail with [`Error::InputTooLong`] before any hashing.
pub const MAX_PASSWORD_LEN: usize = 1024;

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
    inner: Arc<Inner<U>>,
}

struct Inner<U> {
    users: U,
    tokens: Arc<dyn TokenStore>,
    hashing: HashPool,
    policy: SessionPolicy,
    clock: Arc<dyn Clock>,
    throttle: Option<Arc<dyn Throttle>>,
    throttle_outage: ThrottleOutage,
    in_flight: InFlight,
    reveal_unknown_email: bool,
}

/// What checking a password found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    Matched,
    WrongPassword,
    UnknownAccount,
    UnusableHash,
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

/// A valid token's session and user.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Authenticated<T> {
    /// The live session.
    pub session: Session,
    /// Its user.
    pub user: T,
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
            max_concurrent_hashes: None,
            max_queued_hashes: None,
            max_logins_in_flight_per_ip: AuthenticatorBuilder::<U>::DEFAULT_LOGINS_IN_FLIGHT_PER_IP,
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
        check_len(Field::Email, email, MAX_EMAIL_LEN)?;
        check_len(Field::Password, password, MAX_PASSWORD_LEN)?;
        let inner = &*self.inner;
        let email = normalize_email(email);
        let key = ThrottleKey::new(&email, client.ip);
        let Some(_in_flight) = inner.in_flight.enter(key.ip()) else {
            audit::login_throttled("in_flight", OVERLOADED_RETRY_AFTER, &key, client.ip);
            return Err(Error::Throttled {
                retry_after: OVERLOADED_RETRY_AFTER,
            });
        };
        if inner.hashing.is_full() {
            audit::login_overloaded("hashing", OVERLOADED_RETRY_AFTER, client.ip);
            return Err(Error::Overloaded {
                retry_after: OVERLOADED_RETRY_AFTER,
            });
        }
        let reservation = self.reserve(&key, client.ip).await?;
        let checked = self.check_password(&email, password, &key, client.ip).await;
        if let (Some(throttle), Some(reservation)) = (&inner.throttle, reservation) {
            let settled = match &checked {
                Ok(_) => throttle.record_success(&key, reservation, self.now()).await,
                // A wrong password stays counted; an attempt that checked nothing is given back.
                Err(Error::InvalidCredentials | Error::UnknownEmail) => Ok(()),
                Err(_) => throttle.release(&key, reservation, self.now()).await,
            };
            if let Err(error) = settled {
                // The attempt stays counted as a failure: safe, if stricter than it should be.
                tracing::warn!(error = %crate::error::chain(&error), "keycard: settling a login attempt with the throttle failed");
            }
        }
        let (user, rehashed) = checked?;
        if let Some(phc) = rehashed {
            inner.users.set_password_hash(&user.id(), &phc).await?;
        }
        let (token, session) = self.start_session(user.id(), client).await?;
        audit::login_succeeded(&session.user_id, &session.id, session.client.ip);
        Ok(Login {
            token,
            session,
            user,
        })
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
        email: &str,
        password: &str,
        key: &ThrottleKey,
        ip: Option<IpAddr>,
    ) -> Result<(U::User, Option<String>)> {
        let inner = &*self.inner;
        let user = inner.users.find_by_email(email).await?;
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
    /// [`Logout::NoSession`], so a protocol can choose to answer "not checked in" (seed 000)
    /// or succeed anyway (seed 003).
    ///
    /// # Errors
    /// [`Error::Store`] if the token store fails.
    pub async fn logout(&self, token: &str) -> Result<Logout> {
        let Ok(token) = token.parse::<Token>() else {
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
        let (id, digest) = crate::token::parse_id_and_digest(token)?;
        let now = self.now();
        let inner = &*self.inner;
        // Call the `dyn TokenStore` itself: a call on the `Arc` goes through the `Arc`
        // forwarding impl as well, one more boxed future per call.
        let tokens: &dyn TokenStore = &*inner.tokens;
        let mut session = tokens.get(&id, now).await?.ok_or(Error::InvalidToken)?;
        if !session.secret_hash.matches(&digest) {
            return Err(Error::InvalidToken);
        }
        if inner.policy.is_dead(&session, now) {
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

    /// Ends every session of `user` (log out everywhere, or after a password change).
    /// Returns how many were ended.
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

    /// Hashes a password for registration or a password change, with the same hasher, thread
    /// pool and concurrency bound as login. Store the returned PHC string in your user table.
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

    async fn start_session(&self, user_id: UserId, client: ClientInfo) -> Result<(Token, Session)> {
        // A 128-bit random id collides with negligible probability; retry rather than fail.
        let mut attempts = 0;
        loop {
            let token = Token::generate()?;
            let session = Session::new(
                &token,
                user_id.clone(),
                self.now(),
                self.inner.policy.ttl(),
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
    max_concurrent_hashes: Option<usize>,
    max_queued_hashes: Option<usize>,
    max_logins_in_flight_per_ip: usize,
}

impl<U: UserStore> AuthenticatorBuilder<U> {
    /// The default number of logins one client address may have in flight at once.
    pub const DEFAULT_LOGINS_IN_FLIGHT_PER_IP: usize = 4;
    /// The default length of the hashing queue, per concurrent hash.
    pub const DEFAULT_QUEUED_HASHES_PER_PERMIT: usize = 16;

    /// Absolute session lifetime. Default: 24 hours.
    pub fn session_ttl(mut self, ttl: Duration) -> Self {
        self.policy = self.policy.with_ttl(ttl);
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

    /// How many logins (and [`hash_password`](Authenticator::hash_password) calls) may wait
    /// for a hashing slot. Beyond it, login fails at once with [`Error::Overloaded`] (HTTP
    /// 503 with `Retry-After`) instead of queueing without bound. Default:
    /// [`DEFAULT_QUEUED_HASHES_PER_PERMIT`](Self::DEFAULT_QUEUED_HASHES_PER_PERMIT) ×
    /// [`max_concurrent_hashes`](Self::max_concurrent_hashes): with OWASP parameters (about
    /// 20 ms a hash per core) no login waits much over a third of a second. `0` refuses any
    /// login that finds every slot busy.
    pub fn max_queued_hashes(mut self, n: usize) -> Self {
        self.max_queued_hashes = Some(n);
        self
    }

    /// How many logins one client address (IPv6: one `/64`) may have in flight at once in
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
    /// protocols that require it (seed 000 answers "User not found").
    pub fn reveal_unknown_email(mut self, reveal: bool) -> Self {
        self.reveal_unknown_email = reveal;
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
                hashing: HashPool::new(hasher, max, queued),
                policy: self.policy,
                clock: self.clock,
                throttle: self.throttle,
                throttle_outage: self.throttle_outage,
                in_flight: InFlight::new(self.max_logins_in_flight_per_ip),
                reveal_unknown_email: self.reveal_unknown_email,
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

fn check_len(field: Field, value: &str, max: usize) -> Result<()> {
    match value.len() > max {
        true => Err(Error::InputTooLong { field, max }),
        false => Ok(()),
    }
}
