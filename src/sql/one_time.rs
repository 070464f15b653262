//! What the SQL one-time token stores share: the statements of SQLite and PostgreSQL (one
//! text, two placeholder styles) and the decoding of a row, which MySQL uses too.

use time::OffsetDateTime;

use super::{Placeholders, TableName};
use crate::one_time::{Binding, OneTimePurpose, OneTimeRecord};
use crate::{StoreError, UserId};

/// The one-time tokens table's columns, in the order every statement reads and writes them.
pub(crate) const ONE_TIME_COLUMNS: &str =
    "id, user_id, purpose, secret_hash, binding, payload, created_at, expires_at";

/// The statements of the SQLite and PostgreSQL one-time token stores.
#[derive(Debug)]
pub(crate) struct OneTimeQueries {
    pub(crate) table: TableName,
    /// `(8 columns)`; inserts nothing if the id exists.
    pub(crate) insert: String,
    /// `(user, purpose, now)`: the user's expired tokens of the purpose.
    pub(crate) delete_expired_of: String,
    /// `(user, purpose, new id, keep)`: every token of the user and purpose but the new one
    /// and the `keep` newest others.
    pub(crate) retire_excess: String,
    /// `(id, now)`.
    pub(crate) find: String,
    /// `(id, purpose, secret hash, now)`: deletes and returns the matching live token.
    pub(crate) consume: String,
    /// `(user, purpose)`.
    pub(crate) retire_all: String,
    /// `(now, batch)`.
    pub(crate) purge_batch: String,
}

impl OneTimeQueries {
    pub(crate) fn new(table: TableName, placeholders: Placeholders) -> Self {
        let t = table.quoted();
        let p = |n| placeholders.nth(n);
        let values = (1..=8).map(p).collect::<Vec<_>>().join(", ");
        let (p1, p2, p3, p4) = (p(1), p(2), p(3), p(4));
        let lock = placeholders.purge_lock();
        Self {
            insert: format!(
                "INSERT INTO {t} ({ONE_TIME_COLUMNS}) VALUES ({values}) ON CONFLICT (id) DO NOTHING"
            ),
            delete_expired_of: format!(
                "DELETE FROM {t} WHERE user_id = {p1} AND purpose = {p2} AND expires_at <= {p3}"
            ),
            retire_excess: format!(
                "DELETE FROM {t} WHERE user_id = {p1} AND purpose = {p2} AND id <> {p3} \
                 AND id NOT IN (SELECT id FROM {t} WHERE user_id = {p1} AND purpose = {p2} \
                 AND id <> {p3} ORDER BY created_at DESC, id DESC LIMIT {p4})"
            ),
            find: format!(
                "SELECT {ONE_TIME_COLUMNS} FROM {t} WHERE id = {p1} AND expires_at > {p2}"
            ),
            consume: format!(
                "DELETE FROM {t} WHERE id = {p1} AND purpose = {p2} AND secret_hash = {p3} \
                 AND expires_at > {p4} RETURNING {ONE_TIME_COLUMNS}"
            ),
            retire_all: format!("DELETE FROM {t} WHERE user_id = {p1} AND purpose = {p2}"),
            purge_batch: format!(
                "DELETE FROM {t} WHERE id IN (SELECT id FROM {t} WHERE expires_at <= {p1} \
                 ORDER BY expires_at LIMIT {p2}{lock})"
            ),
            table,
        }
    }
}

/// A one-time token row, its times already decoded.
pub(crate) struct OneTimeRow {
    pub(crate) id: String,
    pub(crate) user_id: String,
    pub(crate) purpose: String,
    pub(crate) secret_hash: Vec<u8>,
    pub(crate) binding: Vec<u8>,
    pub(crate) payload: Option<String>,
    pub(crate) created_at: OffsetDateTime,
    pub(crate) expires_at: OffsetDateTime,
}

impl OneTimeRow {
    pub(crate) fn into_record(self) -> Result<OneTimeRecord, StoreError> {
        let binding: [u8; 32] = self
            .binding
            .as_slice()
            .try_into()
            .map_err(|_| StoreError::corrupt("binding is not 32 bytes"))?;
        Ok(OneTimeRecord {
            id: self.id.parse().map_err(StoreError::corrupt)?,
            user_id: UserId::new(self.user_id),
            purpose: OneTimePurpose::from_name(&self.purpose).map_err(StoreError::corrupt)?,
            secret_hash: super::secret_hash(&self.secret_hash)?,
            binding: Binding::from_bytes(binding),
            payload: self.payload,
            created_at: self.created_at,
            expires_at: self.expires_at,
        })
    }
}

/// How many tokens besides the new one an issue with `max_outstanding` keeps.
pub(crate) fn keep_others(max_outstanding: u32) -> i64 {
    i64::from(max_outstanding.max(1)) - 1
}
