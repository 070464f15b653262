//! Registration's store side: [`UserRegistry`], the [`UserStore`] that can create users, and
//! its implementations for keycard's stores of [`UserRecord`]s. The operation itself,
//! [`Authenticator::register`], lives with the other operations (`authenticator/register.rs`).

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;

use crate::error::{Result, StoreError};
use crate::user::{MemoryUserStore, UserId, UserRecord, UserStore};

#[cfg(doc)]
use crate::{authenticator::Authenticator, email::check_email, user::normalize_email};

/// A user about to be created by [`Authenticator::register`]: the email as typed (trimmed and
/// checked) and the password's PHC hash. The store picks the id, and keeps the email with its
/// canonical form ([`normalize_email`]) as the unique key; the new address is not verified.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct NewUser {
    /// The login email as typed, trimmed and checked ([`check_email`]). Compare it by
    /// [`normalize_email`].
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
/// (a unique index on the canonical email column, `INSERT ... ON CONFLICT DO NOTHING`):
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
///         // INSERT INTO accounts (email, email_key, password_hash) VALUES ($1, $2, $3)
///         //     ON CONFLICT DO NOTHING RETURNING id
///         let key = keycard::normalize_email(&new.email); // $2, the UNIQUE column
///         # let _ = key;
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
                    if $this
                        .find_by_email(&crate::user::normalize_email(&new.email))
                        .await?
                        .is_some()
                    {
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
registry_of_records!(crate::sqlite::SqliteUserStore, |store, user| store
    .insert_if_absent(&user)
    .await?);
#[cfg(feature = "postgres")]
registry_of_records!(crate::postgres::PostgresUserStore, |store, user| store
    .insert_if_absent(&user)
    .await?);
