//! Where one-time tokens live: the [`OneTimeTokenStore`] contract and what it stores.

use std::fmt::Debug;
use std::sync::Arc;

use async_trait::async_trait;
use time::OffsetDateTime;

use super::purpose::{Binding, OneTimePurpose};
use super::token::OneTimeId;
use crate::error::StoreError;
use crate::token::SecretHash;
use crate::user::UserId;

/// One issued one-time token as a store keeps it: everything but the secret, of which only
/// the SHA-256 digest is here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OneTimeRecord {
    /// The public id: the store's key.
    pub id: OneTimeId,
    /// Whom the token was issued to.
    pub user_id: UserId,
    /// What it is for.
    pub purpose: OneTimePurpose,
    /// SHA-256 of the token's secret.
    pub secret_hash: SecretHash,
    /// Digest of the account state it was issued for.
    pub binding: Binding,
    /// Optional data for the flow (the new address of an email change), at most
    /// [`MAX_PAYLOAD_LEN`](super::MAX_PAYLOAD_LEN) bytes.
    pub payload: Option<String>,
    /// When it was issued (whole microseconds).
    pub created_at: OffsetDateTime,
    /// When it dies: refused from this instant on (whole microseconds).
    pub expires_at: OffsetDateTime,
}

impl OneTimeRecord {
    /// Whether the token is dead at `now` (`expires_at <= now`).
    pub fn is_expired(&self, now: OffsetDateTime) -> bool {
        self.expires_at <= now
    }
}

/// Persists one-time tokens. Dyn-compatible: [`OneTimeTokens`](super::OneTimeTokens) holds an
/// `Arc<dyn OneTimeTokenStore>`. keycard ships one per backend (memory, SQLite, PostgreSQL,
/// MySQL / MariaDB, Redis and Redis Cluster); the `conformance` feature's
/// `keycard::conformance::one_time` checks yours.
///
/// # Contract
/// - **The store never sees a secret**: it keeps the [`OneTimeRecord`] as given, whose
///   `secret_hash` is a digest.
/// - **issue never overwrites** (an existing id is [`StoreError::Duplicate`]) and **caps
///   atomically**: the new record is stored, and the oldest live records of the same user
///   and purpose are deleted until at most `max_outstanding` remain (the new one always
///   stays), in one atomic step (statement, transaction or script), so that at no moment does
///   a reader see the new record without the retirement. Returns how many live records it
///   retired. It may also delete that user's and purpose's expired records.
/// - **consume is atomic and single-use**: it deletes and returns the record with `id` only
///   if it has `purpose`, its digest equals `secret_hash` and it is live at `now`; otherwise
///   it changes nothing and returns `None`. Of any number of concurrent consumes of one
///   record, through any number of store instances over the same backend, exactly one gets
///   it. A wrong secret, a wrong purpose or an expired record leave the record as it was.
/// - **expired records are never returned** by `find` or `consume` (`expires_at <= now`),
///   purged or not.
/// - **`retire_all`** deletes every record of the user and purpose and counts them;
///   **`purge_expired`** deletes every record expired at `now` and counts them (a store
///   whose backend drops records at their expiry by itself says so with
///   [`expires_natively`](Self::expires_natively), and may count nothing).
/// - Ids and user ids are untrusted input: never build a query by concatenation.
/// - Errors mean the backend failed; "not found" is `Ok(None)` / `Ok(0)`.
/// - Times round-trip to the microsecond.
#[async_trait]
pub trait OneTimeTokenStore: Send + Sync + Debug {
    /// Stores `record`, then retires the oldest live records of its user and purpose beyond
    /// `max_outstanding` (at least 1), atomically. Returns how many it retired.
    ///
    /// # Errors
    /// [`StoreError::Duplicate`] if the id exists; [`StoreError::Backend`] on backend failure
    /// (a bounded store that is full returns a [`CapacityExceeded`](super::CapacityExceeded)
    /// inside it).
    async fn issue(
        &self,
        record: &OneTimeRecord,
        max_outstanding: u32,
        now: OffsetDateTime,
    ) -> Result<u64, StoreError>;

    /// The record with `id`, unless absent or expired at `now`. Consumes nothing: a flow
    /// reads the user id with it, loads the user, computes the current [`Binding`], then
    /// consumes.
    ///
    /// # Errors
    /// [`StoreError`] on backend failure or undecodable data.
    async fn find(
        &self,
        id: &OneTimeId,
        now: OffsetDateTime,
    ) -> Result<Option<OneTimeRecord>, StoreError>;

    /// Deletes and returns the record with `id` if it has `purpose`, its digest equals
    /// `secret_hash` and it is live at `now`, atomically; otherwise `None`, changing nothing.
    ///
    /// # Errors
    /// [`StoreError`] on backend failure or undecodable data.
    async fn consume(
        &self,
        id: &OneTimeId,
        purpose: &OneTimePurpose,
        secret_hash: &SecretHash,
        now: OffsetDateTime,
    ) -> Result<Option<OneTimeRecord>, StoreError>;

    /// Deletes every record of `user` for `purpose`. Returns how many.
    ///
    /// # Errors
    /// [`StoreError`] on backend failure.
    async fn retire_all(&self, user: &UserId, purpose: &OneTimePurpose) -> Result<u64, StoreError>;

    /// Deletes every record expired at `now`. Returns how many.
    ///
    /// # Errors
    /// [`StoreError`] on backend failure.
    async fn purge_expired(&self, now: OffsetDateTime) -> Result<u64, StoreError>;

    /// Whether the backend deletes each record at its `expires_at` by itself (Redis
    /// `PEXPIREAT`), so that [`purge_expired`](Self::purge_expired) has little or nothing to
    /// do. `false` by default.
    fn expires_natively(&self) -> bool {
        false
    }
}

macro_rules! forward_one_time_store {
    ($($ptr:ty),*) => {$(
        #[async_trait]
        impl<S: OneTimeTokenStore + ?Sized> OneTimeTokenStore for $ptr {
            async fn issue(&self, record: &OneTimeRecord, max_outstanding: u32, now: OffsetDateTime) -> Result<u64, StoreError> {
                (**self).issue(record, max_outstanding, now).await
            }
            async fn find(&self, id: &OneTimeId, now: OffsetDateTime) -> Result<Option<OneTimeRecord>, StoreError> {
                (**self).find(id, now).await
            }
            async fn consume(&self, id: &OneTimeId, purpose: &OneTimePurpose, secret_hash: &SecretHash, now: OffsetDateTime) -> Result<Option<OneTimeRecord>, StoreError> {
                (**self).consume(id, purpose, secret_hash, now).await
            }
            async fn retire_all(&self, user: &UserId, purpose: &OneTimePurpose) -> Result<u64, StoreError> {
                (**self).retire_all(user, purpose).await
            }
            async fn purge_expired(&self, now: OffsetDateTime) -> Result<u64, StoreError> {
                (**self).purge_expired(now).await
            }
            fn expires_natively(&self) -> bool {
                (**self).expires_natively()
            }
        }
    )*};
}

forward_one_time_store!(Arc<S>, Box<S>);
