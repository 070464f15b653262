//! A token store whose backend is down.
//!
//! `tests/core/support/down_store.rs` is the same store: two test binaries cannot share a module
//! without `#[path]`, and these 40 lines are cheaper kept twice than bent into one.

use async_trait::async_trait;
use keycard::{Session, SessionId, StoreError, TokenStore, UserId};
use time::OffsetDateTime;

/// A token store whose backend is down: every call fails with `StoreError::Backend`. It tests
/// how keycard handles a store failure, not any real store.
#[derive(Debug, Default)]
pub(crate) struct DownTokenStore;

fn down() -> StoreError {
    StoreError::backend(std::io::Error::new(
        std::io::ErrorKind::ConnectionRefused,
        "connection refused (test store is down)",
    ))
}

#[async_trait]
impl TokenStore for DownTokenStore {
    async fn create(&self, _: &Session) -> Result<(), StoreError> {
        Err(down())
    }
    async fn get(&self, _: &SessionId, _: OffsetDateTime) -> Result<Option<Session>, StoreError> {
        Err(down())
    }
    async fn touch(&self, _: &SessionId, _: OffsetDateTime) -> Result<bool, StoreError> {
        Err(down())
    }
    async fn touch_from(
        &self,
        _: &SessionId,
        _: OffsetDateTime,
        _: std::net::IpAddr,
    ) -> Result<bool, StoreError> {
        Err(down())
    }
    async fn delete(&self, _: &SessionId) -> Result<bool, StoreError> {
        Err(down())
    }
    async fn delete_for_user(&self, _: &UserId) -> Result<u64, StoreError> {
        Err(down())
    }
    async fn delete_for_user_except(&self, _: &UserId, _: &SessionId) -> Result<u64, StoreError> {
        Err(down())
    }
    async fn list_for_user(
        &self,
        _: &UserId,
        _: OffsetDateTime,
    ) -> Result<Vec<Session>, StoreError> {
        Err(down())
    }
    async fn purge_expired(&self, _: OffsetDateTime) -> Result<u64, StoreError> {
        Err(down())
    }
}
