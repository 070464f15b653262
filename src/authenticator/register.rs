//! Registration ([`Authenticator::register`], with the same bounds as login) and hashing new
//! passwords for your own account creation or seeding.

use std::net::IpAddr;
use std::time::Duration;

use zeroize::Zeroizing;

use super::{check_len, Authenticator, MAX_PASSWORD_LEN};
use crate::audit;
use crate::email::check_email;
use crate::error::{Error, Field, Result};
use crate::registration::{NewUser, Registered, UserRegistry};
use crate::session::ClientInfo;
use crate::throttle::{Admission, Limit, RateKey, ThrottleOutage};
use crate::user::normalize_email;
use crate::user::{User, UserStore};

#[cfg(doc)]
use crate::password_policy::PasswordPolicy;

impl<U: UserRegistry> Authenticator<U> {
    /// Registers a new user with `email` and `password`, from the client of the request
    /// (`client`, whose address bounds how often it may register).
    ///
    /// In order, before any hashing:
    /// 1. the email is trimmed and checked ([`check_email`]: not empty, at most
    ///    [`MAX_EMAIL_LEN`](crate::MAX_EMAIL_LEN) bytes, no control characters, one `@`, a
    ///    plausible domain, valid syntax) and the password against the
    ///    [`PasswordPolicy`](crate::PasswordPolicy) (with the email as a context word);
    /// 2. the client's address gets one of its places in flight (shared with its logins,
    ///    [`max_logins_in_flight_per_ip`](crate::AuthenticatorBuilder::max_logins_in_flight_per_ip))
    ///    and is counted against the
    ///    [`registration_limit`](crate::AuthenticatorBuilder::registration_limit) by the
    ///    throttle;
    /// 3. a taken email is refused without hashing;
    /// 4. the password is hashed through the hashing queue, as a login's is checked, and the
    ///    user is created with [`UserRegistry::create_user`].
    ///
    /// Every outcome is an [audit event](crate::audit) (`registration.accepted` or
    /// `registration.refused` with the reason).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> keycard::Result<()> {
    /// use keycard::{Authenticator, ClientInfo, Error, MemoryTokenStore, MemoryUserStore, User};
    ///
    /// let auth = Authenticator::builder(MemoryUserStore::new(), MemoryTokenStore::new()).build();
    /// let client = ClientInfo::none().with_ip([192, 0, 2, 7].into());
    /// let ann = auth.register(" Ann@Example.com", "correct horse battery staple", &client).await?;
    /// // Kept as typed (trimmed); accounts are compared by `normalize_email`.
    /// assert_eq!(ann.email(), "Ann@Example.com");
    /// assert!(matches!(
    ///     auth.register("ann@example.com", "another good passphrase", &client).await,
    ///     Err(Error::EmailTaken)
    /// ));
    /// assert!(matches!(
    ///     auth.register("not-an-email", "correct horse battery staple", &client).await,
    ///     Err(Error::InvalidEmail(_))
    /// ));
    /// auth.login("ann@example.com", "correct horse battery staple", client).await?;
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// - [`Error::InvalidEmail`] for an email [`check_email`] refuses;
    /// - [`Error::InputTooLong`] for a password over
    ///   [`MAX_PASSWORD_LEN`](crate::MAX_PASSWORD_LEN) bytes;
    /// - [`Error::WeakPassword`] for a password the policy refuses;
    /// - [`Error::Throttled`] when the address registered too often or has too many checks in
    ///   flight; [`Error::Overloaded`] when the hashing queue is full;
    /// - [`Error::EmailTaken`] when the email has an account;
    /// - [`Error::Store`] if the user store fails; [`Error::ThrottleUnavailable`] if the
    ///   throttle's backend does (under
    ///   [`ThrottleOutage::FailClosed`](crate::throttle::ThrottleOutage::FailClosed));
    ///   [`Error::PasswordHash`] or [`Error::Randomness`] if hashing fails.
    pub async fn register(
        &self,
        email: &str,
        password: &str,
        client: &ClientInfo,
    ) -> Result<U::User> {
        let outcome = self.try_register(email, password, client).await;
        match &outcome {
            Ok(user) => audit::registration_accepted(&user.id(), client.ip),
            Err(error) => audit::registration_refused(refusal_reason(error), client.ip),
        }
        outcome
    }

    async fn try_register(
        &self,
        email: &str,
        password: &str,
        client: &ClientInfo,
    ) -> Result<U::User> {
        let inner = &*self.inner;
        let email = check_email(email).map_err(Error::InvalidEmail)?;
        crate::authenticator::check_len(crate::Field::Password, password, crate::MAX_PASSWORD_LEN)?;
        inner
            .password_policy
            .check(password, Some(&email))
            .map_err(Error::WeakPassword)?;
        let ip = client.ip.map(crate::throttle::network_of);
        let Some(_in_flight) = inner.in_flight.enter(ip) else {
            return Err(Error::Throttled {
                retry_after: crate::hashing::OVERLOADED_RETRY_AFTER,
            });
        };
        inner.hashing.admit()?;
        self.count_registration(client.ip).await?;
        if inner
            .users
            .find_by_email(&normalize_email(&email))
            .await?
            .is_some()
        {
            return Err(Error::EmailTaken);
        }
        let password_hash = self.hash_password(password).await?;
        let new = NewUser {
            email,
            password_hash,
        };
        match inner.users.create_user(&new).await? {
            Registered::Created(user) => Ok(user),
            Registered::EmailTaken => Err(Error::EmailTaken),
        }
    }

    /// Counts one registration from `ip` against the registration limit, applying the
    /// throttle's outage policy. Without an address (or a throttle) nothing is counted.
    async fn count_registration(&self, ip: Option<IpAddr>) -> Result<()> {
        let Some(ip) = ip else {
            return Ok(());
        };
        let key = RateKey::ip("register", ip);
        match self
            .count_rate(&key, self.inner.registration_limit, Some(ip))
            .await?
        {
            None => Ok(()),
            Some(retry_after) => Err(Error::Throttled { retry_after }),
        }
    }
}

impl<U: UserStore> Authenticator<U> {
    /// Counts one event under `key` against `limit` on the throttle, applying its outage
    /// policy: `None` when allowed (or there is no throttle, or it is down and fails open),
    /// `Some(retry_after)` when the limit is reached. `ip` is for the audit event only.
    pub(crate) async fn count_rate(
        &self,
        key: &RateKey,
        limit: Limit,
        ip: Option<IpAddr>,
    ) -> Result<Option<Duration>> {
        let inner = &*self.inner;
        let Some(throttle) = &inner.throttle else {
            return Ok(None);
        };
        match throttle.hit(key, limit, self.now()).await {
            Ok(Admission::Allowed(_)) => Ok(None),
            Ok(Admission::Refused { retry_after, .. }) => Ok(Some(retry_after)),
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
}

/// The `reason` of a `registration.refused` event.
fn refusal_reason(error: &Error) -> &'static str {
    match error {
        Error::InvalidEmail(_) => "invalid_email",
        Error::InputTooLong { .. } => "input_too_long",
        Error::WeakPassword(_) => "weak_password",
        Error::Throttled { .. } => "throttled",
        Error::Overloaded { .. } => "overloaded",
        Error::EmailTaken => "email_taken",
        Error::Store(_) | Error::ThrottleUnavailable(_) => "unavailable",
        _ => "internal",
    }
}

impl<U: UserStore> Authenticator<U> {
    /// Checks a new user's password against the [`PasswordPolicy`] (with `email` for the
    /// context-word rule), then hashes it like [`hash_password`](Self::hash_password). Use it
    /// at registration; store the returned PHC string in your user table.
    ///
    /// # Errors
    /// [`Error::WeakPassword`] if the password fails the policy (nothing is hashed); otherwise
    /// as [`hash_password`](Self::hash_password).
    pub async fn hash_password_with_policy(&self, password: &str, email: &str) -> Result<String> {
        self.inner
            .password_policy
            .check(password, Some(email))
            .map_err(Error::WeakPassword)?;
        self.hash_password(password).await
    }

    /// The old name of [`hash_password_with_policy`](Self::hash_password_with_policy).
    ///
    /// # Errors
    /// As [`hash_password_with_policy`](Self::hash_password_with_policy).
    #[deprecated(since = "0.2.0", note = "renamed to `hash_password_with_policy`")]
    pub async fn hash_new_password(&self, password: &str, email: &str) -> Result<String> {
        self.hash_password_with_policy(password, email).await
    }

    /// Hashes a password for registration or a password change, with the same hasher, thread
    /// pool and concurrency bound as login. Store the returned PHC string in your user table.
    ///
    /// It applies no [`PasswordPolicy`] (only the length limit), so that existing or seeded
    /// passwords can be hashed as they are; for passwords users choose, use
    /// [`hash_password_with_policy`](Self::hash_password_with_policy).
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
}
