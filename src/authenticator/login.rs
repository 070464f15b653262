//! Starting and checking sessions: login (throttled, bounded, one verification), logout,
//! validate, and the session cap.

use std::net::IpAddr;
use std::time::Duration;

use time::OffsetDateTime;
use zeroize::Zeroizing;

use crate::amr::{AuthMethod, AuthMethods};

use super::{
    check_len, Authenticated, Authenticator, CapPolicy, Login, LoginOptions, Logout, MAX_EMAIL_LEN,
    MAX_PASSWORD_LEN,
};
use crate::audit::{self, FailureReason};
use crate::error::{Error, Field, Result, StoreError};
use crate::hashing::OVERLOADED_RETRY_AFTER;
use crate::session::{truncate_to_micros, ClientInfo, Session, SessionKind};
use crate::store::TokenStore;
use crate::throttle::{Admission, LimitKind, Reservation, ThrottleKey, ThrottleOutage};
use crate::token::{Token, TokenFormat};
use crate::user::{normalize_email, User, UserId, UserStore};

#[cfg(doc)]
use {super::AuthenticatorBuilder, crate::session::SessionPolicy};

/// What checking a password found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    Matched,
    WrongPassword,
    UnknownAccount,
    UnusableHash,
}

/// How [`Authenticator::attempt`] finds the user whose password it checks.
pub(super) enum Lookup<'a, T> {
    /// By normalized email, after the throttle admitted the attempt (login).
    Email(&'a str),
    /// Already looked up by id (re-verification); `None` if the user is gone.
    Found(Option<T>),
}

impl<U: UserStore> Authenticator<U> {
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
    /// - [`Error::EmailNotVerified`] when the password matched but the user's email is not
    ///   verified and [`require_verified_email`](AuthenticatorBuilder::require_verified_email)
    ///   is on;
    /// - [`Error::Store`] if a store fails; [`Error::ThrottleUnavailable`] if the throttle's
    ///   backend does under [`ThrottleOutage::FailClosed`] (the default);
    ///   [`Error::Randomness`] if no token could be generated.
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
        if inner.require_verified_email && !user.email_verified() {
            audit::login_unverified(&user.id(), client.ip);
            return Err(Error::EmailNotVerified);
        }
        self.open_session(user, client, options, AuthMethod::Password)
            .await
    }

    /// Starts a session for `user`, whose first factor (`method`) was checked by the caller
    /// (a password here, a sign-in link in [`crate::account`]), or, if the user has a second
    /// factor, a pending login instead ([`Error::SecondFactorRequired`]).
    pub(crate) async fn open_session(
        &self,
        user: U::User,
        client: ClientInfo,
        options: LoginOptions,
        method: AuthMethod,
    ) -> Result<Login<U::User>> {
        if let Some(pending) = self.pending_login(&user, &client, &options, method).await? {
            return Err(Error::SecondFactorRequired(Box::new(pending)));
        }
        self.finish_login(user, client, options.lifetime, AuthMethods::from(method))
            .await
    }

    /// Starts the session of a login whose every step was checked (`amr`): the session, the
    /// cap, the audit event.
    pub(super) async fn finish_login(
        &self,
        user: U::User,
        client: ClientInfo,
        lifetime: Option<Duration>,
        amr: AuthMethods,
    ) -> Result<Login<U::User>> {
        let lifetime = self.inner.policy.lifetime_for(lifetime);
        let (token, session) = self.start_session(user.id(), client, lifetime, amr).await?;
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
    pub(super) async fn attempt(
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
                    Err(Error::ThrottleUnavailable(error))
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
        let Ok(token) = self.format_of(token).parse(token) else {
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
        self.validate_lazy(token, &|| None).await
    }

    /// As [`validate`](Self::validate), with the request's client address asked for lazily
    /// (see [`validate_session_from`](Self::validate_session_from)).
    pub(crate) async fn validate_lazy(
        &self,
        token: &str,
        client_ip: &(dyn Fn() -> Option<IpAddr> + Send + Sync),
    ) -> Result<Authenticated<U::User>> {
        let session = self.validate_session_lazy(token, client_ip).await?;
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
        self.validate_session_from(token, None).await
    }

    /// As [`validate_session`](Self::validate_session), for a request from `client_ip`: an
    /// [API token](crate::api_tokens)'s use from a new address is then recorded with its
    /// last use (at most once a minute) and audited (`api_token.new_address`). The HTTP
    /// adapters call this.
    ///
    /// # Errors
    /// As [`validate_session`](Self::validate_session).
    pub async fn validate_session_from(
        &self,
        token: &str,
        client_ip: Option<IpAddr>,
    ) -> Result<Session> {
        self.validate_session_lazy(token, &|| client_ip).await
    }

    /// As [`validate_session_from`](Self::validate_session_from), asking `client_ip` for the
    /// address only when an API token's last use is written (the HTTP layer's client address
    /// costs a header parse behind proxies).
    pub(crate) async fn validate_session_lazy(
        &self,
        token: &str,
        client_ip: &(dyn Fn() -> Option<IpAddr> + Send + Sync),
    ) -> Result<Session> {
        // Most validates need no I/O (a memory store, or a cached session not due for a
        // touch): answered at once, the session is not moved through the futures below.
        if let Some(outcome) = self.validate_session_immediate(token) {
            return outcome;
        }
        self.validate_session_io(token, client_ip).await
    }

    /// [`validate_session_lazy`](Self::validate_session_lazy) once the immediate path could
    /// not answer: a store round trip, or a touch or an end that is due. Decides afresh.
    pub(crate) async fn validate_session_io(
        &self,
        token: &str,
        client_ip: &(dyn Fn() -> Option<IpAddr> + Send + Sync),
    ) -> Result<Session> {
        // The token is not kept: parse it into its id and digest without allocating.
        let (id, digest) = self.format_of(token).parse_id_and_digest(token)?;
        let now = self.now();
        let inner = &*self.inner;
        // Call the `dyn TokenStore` itself: a call on the `Arc` goes through the `Arc`
        // forwarding impl as well, one more boxed future per call.
        let tokens: &dyn TokenStore = &*inner.tokens;
        let found = match tokens.get_immediate(&id, now) {
            Some(found) => found,
            None => tokens.get(&id, now).await,
        };
        let session = found?.ok_or(Error::InvalidToken)?;
        if !session.secret_hash.matches(&digest) {
            return Err(Error::InvalidToken);
        }
        self.finish_validate(session, now, client_ip).await
    }

    /// [`validate_session`](Self::validate_session) when it needs no I/O and no wait: the
    /// store answers at once ([`TokenStore::get_immediate`]) and the session needs neither a
    /// touch nor an end. `None` when it would: then call the async path, which decides
    /// afresh. The HTTP layer asks this first, as an answer here costs no boxed future.
    ///
    /// A prefixed token's CRC-32 is computed only when the answer is a refusal (a mistyped
    /// token is still malformed): for a found session, the matching digest covers the
    /// checksum. The async path, which asks a store that needs a round trip, checks it first.
    pub(crate) fn validate_session_immediate(&self, token: &str) -> Option<Result<Session>> {
        let checked = match self.format_of(token).parse_for_lookup(token) {
            Ok(checked) => checked,
            Err(e) => return Some(Err(e.into())),
        };
        // A refusal names a wrong checksum first, as a parse that checks it would have.
        let refuse = |e: Error| match checked.checksum_holds() {
            true => e,
            false => Error::MalformedToken,
        };
        let now = self.now();
        let inner = &*self.inner;
        // A store that cannot answer at once (a server) returns here, before any hashing:
        // the async path, which parses again (the checksum too), then does the whole check
        // once.
        let session = match inner.tokens.get_immediate(&checked.id, now)? {
            Ok(Some(session)) => session,
            Ok(None) => {
                // The same work as for a found session, as on the async path.
                std::hint::black_box(checked.digest());
                return Some(Err(refuse(Error::InvalidToken)));
            }
            Err(e) => return Some(Err(refuse(e.into()))),
        };
        if !session.secret_hash.matches(&checked.digest()) {
            return Some(Err(refuse(Error::InvalidToken)));
        }
        if inner.policy.is_dead(&session, now) || inner.policy.should_touch(&session, now) {
            return None;
        }
        Some(Ok(session))
    }

    /// The end of a validate once the session is found and its secret matches: ends it when
    /// it is dead, touches it when due.
    async fn finish_validate(
        &self,
        mut session: Session,
        now: OffsetDateTime,
        client_ip: &(dyn Fn() -> Option<IpAddr> + Send + Sync),
    ) -> Result<Session> {
        let inner = &*self.inner;
        let tokens: &dyn TokenStore = &*inner.tokens;
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
                match session.kind.is_api_token() {
                    true => audit::api_token_expired(&session.user_id, &session.id),
                    false => audit::session_expired(&session.user_id, &session.id),
                }
            }
            return Err(Error::SessionExpired);
        }
        if inner.policy.should_touch(&session, now) {
            // At least a microsecond after creation: an API token's first use must show.
            let seen =
                truncate_to_micros(now).max(session.created_at + time::Duration::MICROSECOND);
            let moved = match &session.kind {
                SessionKind::ApiToken(_) => client_ip().filter(|ip| session.client.ip != Some(*ip)),
                SessionKind::Interactive => None,
            };
            // A concurrent logout may have deleted it since the read: then it is gone.
            let found = match moved {
                Some(ip) => tokens.touch_from(&session.id, seen, ip).await?,
                None => tokens.touch(&session.id, seen).await?,
            };
            if !found {
                return Err(Error::InvalidToken);
            }
            if let Some(ip) = moved {
                audit::api_token_new_address(&session.user_id, &session.id, Some(ip));
                session.client.ip = Some(ip);
            }
            session.last_seen_at = seen;
        }
        Ok(session)
    }

    /// The format `token` is spelled in: the API tokens' when it has their prefix, the
    /// sessions' otherwise.
    #[inline]
    pub(super) fn format_of(&self, token: &str) -> &TokenFormat {
        let api = &self.inner.api_format;
        match api.starts(token) {
            true => api,
            false => &self.inner.token_format,
        }
    }

    /// Applies the [`SessionCap`] after `new` was created (see there).
    async fn enforce_cap(&self, new: &Session) -> Result<()> {
        let Some(cap) = self.inner.session_cap else {
            return Ok(());
        };
        let tokens = &self.inner.tokens;
        let mut live = tokens.list_for_user(&new.user_id, self.now()).await?;
        // API tokens have their own cap.
        live.retain(|s| s.kind.is_interactive());
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

    pub(super) async fn start_session(
        &self,
        user_id: UserId,
        client: ClientInfo,
        lifetime: Duration,
        amr: AuthMethods,
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
            )
            .with_amr(amr);
            match self.inner.tokens.create(&session).await {
                Ok(()) => return Ok((token, session)),
                Err(StoreError::Duplicate) if attempts < 3 => attempts += 1,
                Err(e) => return Err(e.into()),
            }
        }
    }
}
