//! Registration: a new account from an email and a password, with the same bounds as login.

use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;

use async_trait::async_trait;

use crate::audit;
use crate::authenticator::Authenticator;
use crate::email::check_email;
use crate::error::{Error, Result, StoreError};
use crate::session::ClientInfo;
use crate::throttle::{Admission, RateKey, ThrottleOutage};
use crate::user::{MemoryUserStore, User, UserId, UserRecord, UserStore};

/// A user about to be created by [`Authenticator::register`]: the normalized email and the
/// password's PHC hash. The store picks the id.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct NewUser {
    /// The login email, normalized and checked ([`check_email`]).
    pub email: String,
    /// The password's hash, a PHC string.
    pub password_hash: String,
}

impl fmt::Debug for NewUser {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NewUser")
            .field("email", &self.email)
            .field("password_hash", &"[redacted]")
            .finish()
    }
}

/// What [`UserRegistry::create_user`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Registered<T> {
    /// The user was created.
    Created(T),
    /// A user with this email exists; nothing was stored.
    EmailTaken,
}

/// A [`UserStore`] that can also create users, for [`Authenticator::register`].
///
/// Implement it over your own user table with one atomic insert that fails on a taken email
/// (a unique index on the normalized email column, `INSERT ... ON CONFLICT DO NOTHING`):
/// two concurrent registrations of one email must create one user. keycard's own stores
/// implement it for [`UserRecord`], with a random 63-bit integer id.
///
/// ```
/// use keycard::{NewUser, Registered, StoreError, User, UserId, UserRegistry, UserStore};
/// # #[derive(Debug, Clone)]
/// # struct Account { id: i64, email: String, password_hash: String }
/// # impl User for Account {
/// #     fn id(&self) -> UserId { UserId::from(self.id) }
/// #     fn email(&self) -> &str { &self.email }
/// #     fn password_hash(&self) -> &str { &self.password_hash }
/// # }
/// # #[derive(Debug)]
/// # struct Accounts;
/// # #[keycard::async_trait]
/// # impl UserStore for Accounts {
/// #     type User = Account;
/// #     async fn find_by_email(&self, _: &str) -> Result<Option<Account>, StoreError> { Ok(None) }
/// #     async fn find_by_id(&self, _: &UserId) -> Result<Option<Account>, StoreError> { Ok(None) }
/// #     async fn set_password_hash(&self, _: &UserId, _: &str) -> Result<(), StoreError> { Ok(()) }
/// # }
/// #[keycard::async_trait]
/// impl UserRegistry for Accounts {
///     async fn create_user(&self, new: &NewUser) -> Result<Registered<Account>, StoreError> {
///         // INSERT INTO accounts (email, password_hash) VALUES ($1, $2)
///         //     ON CONFLICT (email) DO NOTHING RETURNING id
///         let id = Some(7); // the returned id; `None` when the email was taken
///         Ok(match id {
///             Some(id) => Registered::Created(Account {
///                 id,
///                 email: new.email.clone(),
///                 password_hash: new.password_hash.clone(),
///             }),
///             None => Registered::EmailTaken,
///         })
///     }
/// }
/// ```
#[async_trait]
pub trait UserRegistry: UserStore {
    /// Creates a user with `new`'s email and hash, unless the email is taken.
    ///
    /// # Errors
    /// A [`StoreError`] when the backend fails.
    async fn create_user(&self, new: &NewUser) -> Result<Registered<Self::User>, StoreError>;
}

#[async_trait]
impl<S: UserRegistry + ?Sized> UserRegistry for Arc<S> {
    async fn create_user(&self, new: &NewUser) -> Result<Registered<Self::User>, StoreError> {
        (**self).create_user(new).await
    }
}

/// A random positive 63-bit id for a new [`UserRecord`]: unguessable and collision-free in
/// practice; stores retry on the rare duplicate.
pub(crate) fn random_user_id() -> UserId {
    UserId::from(i64::from_le_bytes(rand::random::<[u8; 8]>()) & i64::MAX)
}

/// How often a store retries a new user whose random id was taken (a 63-bit id collides
/// with negligible probability; more than one retry means something else is wrong).
pub(crate) const ID_ATTEMPTS: usize = 3;

/// Implements [`UserRegistry`] for a store of [`UserRecord`]s from its insert that refuses a
/// taken email or id (`$insert` evaluates to `Result<bool, StoreError>`: whether it inserted):
/// a random id, retried if the refusal was the id's.
macro_rules! registry_of_records {
    ($store:ty, |$this:ident, $user:ident| $insert:expr) => {
        #[async_trait]
        impl UserRegistry for $store {
            async fn create_user(
                &self,
                new: &NewUser,
            ) -> Result<Registered<UserRecord>, StoreError> {
                let $this = self;
                for _ in 0..ID_ATTEMPTS {
                    let $user =
                        UserRecord::new(random_user_id(), &new.email, new.password_hash.clone());
                    if $insert {
                        return Ok(Registered::Created($user));
                    }
                    if $this.find_by_email(&new.email).await?.is_some() {
                        return Ok(Registered::EmailTaken);
                    }
                }
                Err(StoreError::backend("no free user id after 3 random tries"))
            }
        }
    };
}

registry_of_records!(MemoryUserStore<UserRecord>, |store, user| store
    .insert(user.clone())
    .is_ok());
#[cfg(feature = "sqlite")]
registry_of_records!(crate::store::SqliteUserStore, |store, user| store
    .insert_if_absent(&user)
    .await?);
#[cfg(feature = "postgres")]
registry_of_records!(crate::store::PostgresUserStore, |store, user| store
    .insert_if_absent(&user)
    .await?);

impl<U: UserRegistry> Authenticator<U> {
    /// Registers a new user with `email` and `password`, from the client of the request
    /// (`client`, whose address bounds how often it may register).
    ///
    /// In order, before any hashing:
    /// 1. the email is normalized and checked ([`check_email`]: not empty, at most
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
    /// assert_eq!(ann.email(), "ann@example.com");
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
    /// - [`Error::Store`] if the user store or the throttle's backend fails (the throttle
    ///   under [`ThrottleOutage::FailClosed`](crate::throttle::ThrottleOutage::FailClosed));
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
        if inner.users.find_by_email(&email).await?.is_some() {
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
        let inner = &*self.inner;
        let (Some(throttle), Some(ip)) = (&inner.throttle, ip) else {
            return Ok(());
        };
        let key = RateKey::ip("register", ip);
        match throttle
            .hit(&key, inner.registration_limit, self.now())
            .await
        {
            Ok(Admission::Allowed(_)) => Ok(()),
            Ok(Admission::Refused { retry_after, .. }) => Err(Error::Throttled { retry_after }),
            Err(error) => match inner.throttle_outage {
                ThrottleOutage::FailClosed => {
                    audit::throttle_unavailable("fail_closed", &error, Some(ip));
                    Err(Error::Store(error))
                }
                ThrottleOutage::FailOpen => {
                    audit::throttle_unavailable("fail_open", &error, Some(ip));
                    Ok(())
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
        Error::Store(_) => "unavailable",
        _ => "internal",
    }
}
