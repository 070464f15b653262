//! Where sessions live: the [`TokenStore`] contract and its backends.
//!
//! | backend | type | feature | shared between processes |
//! |---|---|---|---|
//! | memory | [`MemoryTokenStore`] | always | no |
//! | SQLite | `keycard::sqlite` (`SqliteTokenStore`, `SqliteUserStore`) | `sqlite` | processes on one machine (one file) |
//! | PostgreSQL | `keycard::postgres` (`PostgresTokenStore`, `PostgresUserStore`) | `postgres` | yes |
//! | Redis | `keycard::redis` (`RedisTokenStore`: sessions only; standalone or Redis Cluster) | `redis` | yes |
//!
//! Every backend passes the same contract suite (module `keycard::conformance`, feature
//! `conformance`). A validate costs one store round trip on each of them, unless you put a
//! [`CachedTokenStore`] (module [`cache`]) in front of the store.

use std::fmt::Debug;
use std::net::IpAddr;
use std::sync::Arc;

use async_trait::async_trait;
use time::OffsetDateTime;

use crate::error::StoreError;
use crate::session::Session;
use crate::token::SessionId;
use crate::user::UserId;

pub mod cache;
mod memory;

#[cfg(any(feature = "sqlite", feature = "postgres"))]
#[cfg_attr(docsrs, doc(cfg(any(feature = "sqlite", feature = "postgres"))))]
pub use crate::sql::InvalidTableName;
pub use cache::{
    CacheOptions, CachedTokenStore, ChannelState, LocalChannel, Revocation, RevocationChannel,
    RevocationSink,
};
pub use memory::MemoryTokenStore;

/// Persists [`Session`]s. Dyn-compatible: the authenticator holds an `Arc<dyn TokenStore>`.
///
/// # Contract
/// Every implementation must keep these promises (the `conformance` feature checks them):
///
/// - **create never overwrites.** Creating a session whose id exists fails with
///   [`StoreError::Duplicate`] and leaves the existing session as it was. Create is atomic.
/// - **expired sessions are never returned.** `get` and `list_for_user` take the caller's
///   `now` and treat a session with `expires_at <= now` as absent, whether or not it has been
///   purged yet.
/// - **delete really deletes** and reports whether it deleted: `true` once, then `false`.
///   A deleted session is never returned again (no resurrection by a racing `touch`).
/// - **touch** only updates `last_seen_at` of an existing, unexpired session; it never creates
///   one, and reports whether it found one. **`touch_from`** does the same and also sets the
///   session's `client.ip`.
/// - **every field round-trips**, including [`Session::kind`](crate::Session::kind): an API
///   token's name and scopes ([`ApiTokenGrant`](crate::api_tokens::ApiTokenGrant)) and an
///   expiry as late as [`ApiTokens::NEVER`](crate::api_tokens::ApiTokens::NEVER).
/// - **`delete_for_user` and `purge_expired`** are atomic per session and return how many
///   sessions they removed.
/// - **`delete_for_user` deletes every kind** (sessions and API tokens);
///   **`delete_for_user_except` deletes interactive sessions only**: API tokens
///   ([`SessionKind::ApiToken`](crate::SessionKind::ApiToken)) survive it, as "log out my
///   other devices" and a password change must leave them working.
/// - **`delete_for_user_except` is one atomic operation**: every interactive session of the
///   user that existed when it began is gone when it returns, except `keep`, which is never
///   deleted.
///   It must not be built from `list_for_user` and `delete` calls, which a concurrent login
///   could slip between: use one statement, transaction or script.
/// - **ids are untrusted input**: they come from clients. Never build queries by string
///   concatenation.
/// - The store keeps the [`Session`] as given, including its `secret_hash`; it never sees the
///   token's secret.
/// - Errors mean the backend failed; "not found" is `Ok(None)` / `Ok(false)`.
/// - Timestamps round-trip at least to the microsecond ([`Session::new`] creates them at that
///   precision).
#[async_trait]
pub trait TokenStore: Send + Sync + Debug {
    /// Stores a new session.
    ///
    /// # Errors
    /// [`StoreError::Duplicate`] if the id exists; [`StoreError::Backend`] on backend failure.
    async fn create(&self, session: &Session) -> Result<(), StoreError>;

    /// The session with this id, unless absent or expired at `now`.
    ///
    /// # Errors
    /// [`StoreError`] on backend failure or undecodable data.
    async fn get(&self, id: &SessionId, now: OffsetDateTime)
        -> Result<Option<Session>, StoreError>;

    /// What [`get`](Self::get) would answer, if this store can answer without waiting: an
    /// in-memory store always can, a cache when it holds the session. `None` (the default)
    /// means only `get` can answer. The authenticator asks this first on every validate, as
    /// an answer here costs no boxed future.
    ///
    /// An implementation returns `Some` only with exactly what `get` would return at this
    /// moment, and never does I/O or waits for anything but a short in-memory lock.
    ///
    /// # Errors
    /// As [`get`](Self::get), inside the `Some`.
    fn get_immediate(
        &self,
        id: &SessionId,
        now: OffsetDateTime,
    ) -> Option<Result<Option<Session>, StoreError>> {
        let _ = (id, now);
        None
    }

    /// As [`get`](Self::get), but past any cache in front of the backend (a
    /// [`CachedTokenStore`] reads its store). The authenticator uses it before it ends a
    /// session for idleness, since a cached `last_seen_at` may lag another instance's touch.
    /// Stores without a cache keep this default, which is `get`.
    ///
    /// # Errors
    /// As [`get`](Self::get).
    async fn get_uncached(
        &self,
        id: &SessionId,
        now: OffsetDateTime,
    ) -> Result<Option<Session>, StoreError> {
        self.get(id, now).await
    }

    /// Sets `last_seen_at` of a live session. Returns whether the session was found.
    ///
    /// # Errors
    /// [`StoreError`] on backend failure.
    async fn touch(&self, id: &SessionId, last_seen_at: OffsetDateTime)
        -> Result<bool, StoreError>;

    /// As [`touch`](Self::touch), and sets the session's `client.ip` to `ip`: where an API
    /// token was last used from, written (with its last use) at most once a minute, so that
    /// a use from a new address can be told apart.
    ///
    /// # Errors
    /// [`StoreError`] on backend failure.
    async fn touch_from(
        &self,
        id: &SessionId,
        last_seen_at: OffsetDateTime,
        ip: IpAddr,
    ) -> Result<bool, StoreError>;

    /// Deletes a session. Returns whether it existed.
    ///
    /// # Errors
    /// [`StoreError`] on backend failure.
    async fn delete(&self, id: &SessionId) -> Result<bool, StoreError>;

    /// Deletes every session of `user`, API tokens included. Returns how many were deleted.
    ///
    /// # Errors
    /// [`StoreError`] on backend failure.
    async fn delete_for_user(&self, user: &UserId) -> Result<u64, StoreError>;

    /// Deletes every interactive session of `user` except `keep`, in one atomic operation
    /// (one SQL statement, one Lua script), and returns how many it deleted. `keep` is never
    /// deleted, whoever it belongs to; if it is not one of `user`'s sessions, every
    /// interactive session of `user` is deleted. API tokens are never deleted by it. Used by
    /// "log out my other devices" and password changes.
    ///
    /// Every interactive session of `user` that existed when the call began and is not `keep`
    /// is gone when it returns; a session created concurrently may survive (it began after).
    ///
    /// # Errors
    /// [`StoreError`] on backend failure.
    async fn delete_for_user_except(
        &self,
        user: &UserId,
        keep: &SessionId,
    ) -> Result<u64, StoreError>;

    /// The live sessions of `user` at `now`, API tokens included, oldest first.
    ///
    /// # Errors
    /// [`StoreError`] on backend failure or undecodable data.
    async fn list_for_user(
        &self,
        user: &UserId,
        now: OffsetDateTime,
    ) -> Result<Vec<Session>, StoreError>;

    /// Deletes every session expired at `now`. Returns how many were deleted.
    ///
    /// # Errors
    /// [`StoreError`] on backend failure.
    async fn purge_expired(&self, now: OffsetDateTime) -> Result<u64, StoreError>;
}

macro_rules! forward_token_store {
    ($($ptr:ty),*) => {$(
        #[async_trait]
        impl<S: TokenStore + ?Sized> TokenStore for $ptr {
            async fn create(&self, session: &Session) -> Result<(), StoreError> {
                (**self).create(session).await
            }
            async fn get(&self, id: &SessionId, now: OffsetDateTime) -> Result<Option<Session>, StoreError> {
                (**self).get(id, now).await
            }
            async fn get_uncached(&self, id: &SessionId, now: OffsetDateTime) -> Result<Option<Session>, StoreError> {
                (**self).get_uncached(id, now).await
            }
            fn get_immediate(&self, id: &SessionId, now: OffsetDateTime) -> Option<Result<Option<Session>, StoreError>> {
                (**self).get_immediate(id, now)
            }
            async fn touch(&self, id: &SessionId, last_seen_at: OffsetDateTime) -> Result<bool, StoreError> {
                (**self).touch(id, last_seen_at).await
            }
            async fn touch_from(&self, id: &SessionId, last_seen_at: OffsetDateTime, ip: IpAddr) -> Result<bool, StoreError> {
                (**self).touch_from(id, last_seen_at, ip).await
            }
            async fn delete(&self, id: &SessionId) -> Result<bool, StoreError> {
                (**self).delete(id).await
            }
            async fn delete_for_user(&self, user: &UserId) -> Result<u64, StoreError> {
                (**self).delete_for_user(user).await
            }
            async fn delete_for_user_except(&self, user: &UserId, keep: &SessionId) -> Result<u64, StoreError> {
                (**self).delete_for_user_except(user, keep).await
            }
            async fn list_for_user(&self, user: &UserId, now: OffsetDateTime) -> Result<Vec<Session>, StoreError> {
                (**self).list_for_user(user, now).await
            }
            async fn purge_expired(&self, now: OffsetDateTime) -> Result<u64, StoreError> {
                (**self).purge_expired(now).await
            }
        }
    )*};
}

forward_token_store!(Arc<S>, Box<S>);
