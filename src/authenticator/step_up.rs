//! Step-up: re-verifying a logged-in user's password, re-authentication (a fresh session),
//! recent-authentication checks and password changes.

use std::net::IpAddr;
use std::time::Duration;

use super::login::Lookup;
use super::{check_len, Authenticator, Login, PasswordChanged, Subject, MAX_PASSWORD_LEN};
use crate::audit;
use crate::error::{Error, Field, Result};
use crate::hashing::OVERLOADED_RETRY_AFTER;
use crate::session::{truncate_to_micros, ClientInfo, Session};
use crate::store::TokenStore;
use crate::throttle::ThrottleKey;
use crate::token::Token;
use crate::user::{normalize_email, User, UserId, UserStore};

#[cfg(doc)]
use {super::Authenticated, crate::password_policy::PasswordPolicy};

impl<U: UserStore> Authenticator<U> {
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
        self.require_interactive(subject)?;
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
        self.start_session(session.user_id.clone(), client.clone(), left, session.amr)
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
    /// let hash = auth.hash_password_with_policy("correct horse battery staple", "ann@example.com").await?;
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
        self.require_interactive(session)?;
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
        self.api_tokens_after_password_change(&session.user_id)
            .await?;
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
}
