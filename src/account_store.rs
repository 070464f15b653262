//! The account flows' store side: [`AccountStore`], what email verification and email change
//! need of a user store beyond registration, and [`EmailChange`], its answer to a change.
//! keycard's user stores implement it (memory here and in `user.rs`, SQL in each backend's
//! `users.rs`).

use std::sync::Arc;

use async_trait::async_trait;
use time::OffsetDateTime;

use crate::error::StoreError;
use crate::registration::UserRegistry;
use crate::user::UserId;

#[cfg(doc)]
use crate::user::{normalize_email, User};

/// What [`AccountStore::change_email`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum EmailChange {
    /// The address was replaced and marked verified.
    Changed,
    /// Another user holds an address with the same canonical form; nothing changed.
    Taken,
    /// No user has this id; nothing changed.
    UnknownUser,
}

/// What the account flows (verification, email change) need beyond registration.
///
/// Both operations are single atomic steps in the store, so that a verification link dies
/// when the address changed, and two users can never end up with one canonical address
/// (a `UNIQUE` index on the canonical column, which the update runs into).
///
/// Addresses follow the same rule as everywhere in keycard: the store keeps the address as
/// given (trimmed; [`User::email`] returns it, mail goes to it) and compares by its
/// canonical form, [`normalize_email`].
///
/// keycard implements it for [`MemoryUserStore`](crate::MemoryUserStore) (of any user type
/// with [`SetEmail`](crate::SetEmail)), the SQLite, PostgreSQL and MySQL user stores, and
/// `Arc`s of them. `keycard::conformance::users::run_account_checks` checks an
/// implementation of your own.
#[async_trait]
pub trait AccountStore: UserRegistry {
    /// Marks `id`'s address verified at `at`, only if its stored address still has the
    /// canonical form of `email` (a verification link dies when the address changed).
    /// Returns `Ok(true)` when marked (or it already was verified), `Ok(false)` when the user
    /// is gone or the address differs. An address verified earlier keeps its first time.
    ///
    /// # Errors
    /// A [`StoreError`] when the backend fails.
    async fn mark_email_verified(
        &self,
        id: &UserId,
        email: &str,
        at: OffsetDateTime,
    ) -> Result<bool, StoreError>;

    /// Replaces `id`'s address with `new_email` (stored trimmed as given; key =
    /// [`normalize_email`]) and marks it verified at `verified_at`, in one atomic step that
    /// refuses when another user holds the same canonical key. Changing to another spelling
    /// of one's own address is a change.
    ///
    /// # Errors
    /// A [`StoreError`] when the backend fails.
    async fn change_email(
        &self,
        id: &UserId,
        new_email: &str,
        verified_at: OffsetDateTime,
    ) -> Result<EmailChange, StoreError>;
}

#[async_trait]
impl<S: AccountStore + ?Sized> AccountStore for Arc<S> {
    async fn mark_email_verified(
        &self,
        id: &UserId,
        email: &str,
        at: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        (**self).mark_email_verified(id, email, at).await
    }

    async fn change_email(
        &self,
        id: &UserId,
        new_email: &str,
        verified_at: OffsetDateTime,
    ) -> Result<EmailChange, StoreError> {
        (**self).change_email(id, new_email, verified_at).await
    }
}
