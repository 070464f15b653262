//! Where passkeys live: the [`PasskeyStore`] contract, what it stores ([`PasskeyRecord`]) and
//! the in-memory store.

use std::collections::HashMap;
use std::fmt::{self, Debug};
use std::sync::{Arc, Mutex, PoisonError};

use async_trait::async_trait;
use time::OffsetDateTime;

use crate::error::StoreError;
use crate::user::UserId;

/// One registered passkey as a store keeps it: whose it is, the credential id the browser
/// names it by, the name the user gave it, and the credential itself (its public key, counter
/// and backup flags), as webauthn-rs serializes it. No secret: a passkey's private key never
/// leaves the authenticator.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct PasskeyRecord {
    /// Whose passkey this is.
    pub user_id: UserId,
    /// The WebAuthn credential id (1 to
    /// [`MAX_CREDENTIAL_ID_LEN`](Self::MAX_CREDENTIAL_ID_LEN) bytes), unique across all users.
    pub credential_id: Vec<u8>,
    /// The name the user gave it (at most [`MAX_NAME_LEN`](Self::MAX_NAME_LEN) characters).
    pub name: String,
    /// The webauthn-rs `Passkey`, as JSON: public key, signature counter, backup state.
    pub passkey: String,
    /// When it was registered (whole microseconds).
    pub created_at: OffsetDateTime,
    /// When it last signed a login in (whole microseconds); `None` if never.
    pub last_used_at: Option<OffsetDateTime>,
}

impl PasskeyRecord {
    /// The longest name, in characters.
    pub const MAX_NAME_LEN: usize = 64;
    /// The longest credential id accepted at registration, in bytes. WebAuthn allows 1023;
    /// passkeys use 16 to 64, and keeping ids short keeps a ceremony's state (which lists
    /// the user's ids) within a one-time token's payload.
    pub const MAX_CREDENTIAL_ID_LEN: usize = 255;
    /// The longest serialized passkey a store must keep, in bytes.
    pub const MAX_PASSKEY_LEN: usize = 8192;
    /// How many passkeys one user may register, by default.
    pub const DEFAULT_MAX_PER_USER: u32 = 10;

    /// A new record, registered at `now`, never used.
    pub fn new(
        user_id: UserId,
        credential_id: Vec<u8>,
        name: impl Into<String>,
        passkey: String,
        now: OffsetDateTime,
    ) -> Self {
        Self {
            user_id,
            credential_id,
            name: name.into(),
            passkey,
            created_at: crate::session::truncate_to_micros(now),
            last_used_at: None,
        }
    }
}

impl Debug for PasskeyRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PasskeyRecord")
            .field("user_id", &self.user_id)
            .field(
                "credential_id",
                &format_args!("<{} bytes>", self.credential_id.len()),
            )
            .field("name", &self.name)
            .field("passkey", &format_args!("<{} bytes>", self.passkey.len()))
            .field("created_at", &self.created_at)
            .field("last_used_at", &self.last_used_at)
            .finish()
    }
}

/// What [`PasskeyStore::add`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum PasskeyAdded {
    /// The passkey is stored.
    Added,
    /// Refused: a passkey with this credential id exists (this user's or another's).
    Duplicate,
    /// Refused: the user has the most passkeys allowed already.
    TooMany,
}

/// Persists passkeys beside the users. Dyn-compatible: the
/// [`Authenticator`](crate::Authenticator) holds an `Arc<dyn PasskeyStore>`. keycard's:
/// [`MemoryPasskeyStore`], and `SqlitePasskeyStore`, `PostgresPasskeyStore` and
/// `MysqlPasskeyStore` (table `keycard_passkeys`, from `passkey_store()` on the backend's
/// handle; each needs only its backend's feature, not `passkeys`). The `conformance`
/// feature's `keycard::conformance::passkeys` checks yours.
///
/// # Contract
/// - **A credential id is unique across all users**: [`add`](Self::add) refuses one that
///   exists ([`PasskeyAdded::Duplicate`], changing nothing), whoever owns it (a SQL store:
///   a primary key or unique index on the credential id).
/// - **The per-user cap holds**: `add` refuses ([`PasskeyAdded::TooMany`]) when the user has
///   `max_per_user` passkeys already; check and insert are one atomic step (a transaction
///   that locks the user's rows, or a conditional insert), so concurrent adds never leave
///   more.
/// - [`list`](Self::list) returns the user's passkeys, oldest first.
/// - [`find`](Self::find) looks a passkey up by credential id alone (a passwordless login
///   knows no user until then).
/// - [`update_after_use`](Self::update_after_use) replaces the stored passkey JSON and sets
///   `last_used_at`.
/// - **Only the owner** renames or removes: [`rename`](Self::rename) and
///   [`remove`](Self::remove) match the user id and the credential id together, and return
///   `false` (changing nothing) for another user's passkey.
/// - User ids, names and credential ids are untrusted input: never build a query by
///   concatenation.
/// - Errors mean the backend failed; "not found" is `Ok(None)` / `Ok(false)`.
/// - Times round-trip to the microsecond.
#[async_trait]
pub trait PasskeyStore: Send + Sync + Debug {
    /// Stores `record` unless its credential id exists or its user has `max_per_user`
    /// passkeys already (see the contract).
    ///
    /// # Errors
    /// [`StoreError`] if the backend failed.
    async fn add(
        &self,
        record: &PasskeyRecord,
        max_per_user: u32,
    ) -> Result<PasskeyAdded, StoreError>;

    /// The user's passkeys, oldest first.
    ///
    /// # Errors
    /// [`StoreError`] if the backend failed.
    async fn list(&self, user: &UserId) -> Result<Vec<PasskeyRecord>, StoreError>;

    /// The passkey with this credential id, whoever owns it.
    ///
    /// # Errors
    /// [`StoreError`] if the backend failed.
    async fn find(&self, credential_id: &[u8]) -> Result<Option<PasskeyRecord>, StoreError>;

    /// Replaces the stored passkey JSON (its counter or backup state changed) and records
    /// `now` as its last use; whether the passkey exists.
    ///
    /// # Errors
    /// [`StoreError`] if the backend failed.
    async fn update_after_use(
        &self,
        credential_id: &[u8],
        passkey: &str,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError>;

    /// Renames the user's passkey; `false` if the user has none with this credential id.
    ///
    /// # Errors
    /// [`StoreError`] if the backend failed.
    async fn rename(
        &self,
        user: &UserId,
        credential_id: &[u8],
        name: &str,
    ) -> Result<bool, StoreError>;

    /// Deletes the user's passkey; `false` if the user has none with this credential id.
    ///
    /// # Errors
    /// [`StoreError`] if the backend failed.
    async fn remove(&self, user: &UserId, credential_id: &[u8]) -> Result<bool, StoreError>;
}

macro_rules! forward_passkey_store {
    ($($ptr:ty),*) => {$(
        #[async_trait]
        impl<T: PasskeyStore + ?Sized> PasskeyStore for $ptr {
            async fn add(&self, record: &PasskeyRecord, max_per_user: u32) -> Result<PasskeyAdded, StoreError> {
                (**self).add(record, max_per_user).await
            }
            async fn list(&self, user: &UserId) -> Result<Vec<PasskeyRecord>, StoreError> {
                (**self).list(user).await
            }
            async fn find(&self, credential_id: &[u8]) -> Result<Option<PasskeyRecord>, StoreError> {
                (**self).find(credential_id).await
            }
            async fn update_after_use(&self, credential_id: &[u8], passkey: &str, now: OffsetDateTime) -> Result<bool, StoreError> {
                (**self).update_after_use(credential_id, passkey, now).await
            }
            async fn rename(&self, user: &UserId, credential_id: &[u8], name: &str) -> Result<bool, StoreError> {
                (**self).rename(user, credential_id, name).await
            }
            async fn remove(&self, user: &UserId, credential_id: &[u8]) -> Result<bool, StoreError> {
                (**self).remove(user, credential_id).await
            }
        }
    )*};
}

forward_passkey_store!(Arc<T>, Box<T>);

/// Passkeys in process memory: lost on restart, not shared between processes. For tests,
/// demos and single-process services, beside a [`MemoryUserStore`](crate::MemoryUserStore).
/// One mutex around the map makes every operation atomic; memory grows with the passkeys
/// registered (at most the per-user cap each).
#[derive(Debug, Default)]
pub struct MemoryPasskeyStore {
    /// Records by credential id.
    state: Mutex<HashMap<Vec<u8>, PasskeyRecord>>,
}

impl MemoryPasskeyStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn with<R>(&self, f: impl FnOnce(&mut HashMap<Vec<u8>, PasskeyRecord>) -> R) -> R {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        f(&mut state)
    }
}

#[async_trait]
impl PasskeyStore for MemoryPasskeyStore {
    async fn add(
        &self,
        record: &PasskeyRecord,
        max_per_user: u32,
    ) -> Result<PasskeyAdded, StoreError> {
        Ok(self.with(|s| {
            if s.contains_key(&record.credential_id) {
                return PasskeyAdded::Duplicate;
            }
            let owned = s.values().filter(|r| r.user_id == record.user_id).count();
            if owned >= usize::try_from(max_per_user).unwrap_or(usize::MAX) {
                return PasskeyAdded::TooMany;
            }
            let mut record = record.clone();
            record.created_at = crate::session::truncate_to_micros(record.created_at);
            record.last_used_at = record.last_used_at.map(crate::session::truncate_to_micros);
            s.insert(record.credential_id.clone(), record);
            PasskeyAdded::Added
        }))
    }

    async fn list(&self, user: &UserId) -> Result<Vec<PasskeyRecord>, StoreError> {
        let mut records: Vec<PasskeyRecord> =
            self.with(|s| s.values().filter(|r| &r.user_id == user).cloned().collect());
        records.sort_by(|a, b| {
            (a.created_at, &a.credential_id).cmp(&(b.created_at, &b.credential_id))
        });
        Ok(records)
    }

    async fn find(&self, credential_id: &[u8]) -> Result<Option<PasskeyRecord>, StoreError> {
        Ok(self.with(|s| s.get(credential_id).cloned()))
    }

    async fn update_after_use(
        &self,
        credential_id: &[u8],
        passkey: &str,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        Ok(self.with(|s| match s.get_mut(credential_id) {
            Some(record) => {
                passkey.clone_into(&mut record.passkey);
                record.last_used_at = Some(crate::session::truncate_to_micros(now));
                true
            }
            None => false,
        }))
    }

    async fn rename(
        &self,
        user: &UserId,
        credential_id: &[u8],
        name: &str,
    ) -> Result<bool, StoreError> {
        Ok(self.with(|s| match s.get_mut(credential_id) {
            Some(record) if &record.user_id == user => {
                name.clone_into(&mut record.name);
                true
            }
            _ => false,
        }))
    }

    async fn remove(&self, user: &UserId, credential_id: &[u8]) -> Result<bool, StoreError> {
        Ok(self.with(|s| match s.get(credential_id) {
            Some(record) if &record.user_id == user => s.remove(credential_id).is_some(),
            _ => false,
        }))
    }
}

#[cfg(all(test, feature = "conformance"))]
mod tests {
    use super::MemoryPasskeyStore;

    #[tokio::test]
    async fn memory_store_keeps_the_contract() {
        crate::conformance::passkeys::run_all(&MemoryPasskeyStore::new()).await;
    }
}
