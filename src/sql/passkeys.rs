//! What the SQL passkey stores share: the statements of SQLite and PostgreSQL (one text, two
//! placeholder styles), the bounds every backend enforces before writing, and the decoding
//! of a passkey row, which MySQL uses too.

use time::OffsetDateTime;

use super::{Placeholders, TableName};
use crate::mfa::PasskeyRecord;
use crate::{StoreError, UserId};

/// The passkeys table's columns, in the order every statement reads and writes them.
pub(crate) const PASSKEY_COLUMNS: &str =
    "user_id, credential_id, name, passkey, created_at, last_used_at";

/// The order [`PasskeyStore::list`](crate::mfa::PasskeyStore::list) returns a user's
/// passkeys in: oldest first, ties by credential id (bytes).
pub(crate) const LIST_ORDER: &str = "ORDER BY created_at, credential_id";

/// The statements of the SQLite and PostgreSQL passkey stores.
#[derive(Debug)]
pub(crate) struct PasskeyQueries {
    /// The table, the migration target.
    pub(crate) table: TableName,
    /// `(credential id)`.
    pub(crate) find: String,
    /// `(user)`.
    pub(crate) list: String,
    /// `(credential id)`: whether it is taken.
    pub(crate) taken: String,
    /// `(user)`: how many passkeys the user has.
    pub(crate) count: String,
    /// `(6 columns)`: inserts unless the credential id is taken (0 rows then).
    pub(crate) insert: String,
    /// `(credential id, passkey, last used at)`.
    pub(crate) used: String,
    /// `(user, credential id, name)`.
    pub(crate) rename: String,
    /// `(user, credential id)`.
    pub(crate) remove: String,
}

impl PasskeyQueries {
    pub(crate) fn new(table: TableName, placeholders: Placeholders) -> Self {
        let t = table.quoted();
        let p = |n| placeholders.nth(n);
        let values = (1..=6).map(p).collect::<Vec<_>>().join(", ");
        let (p1, p2, p3) = (p(1), p(2), p(3));
        Self {
            find: format!("SELECT {PASSKEY_COLUMNS} FROM {t} WHERE credential_id = {p1}"),
            list: format!("SELECT {PASSKEY_COLUMNS} FROM {t} WHERE user_id = {p1} {LIST_ORDER}"),
            taken: format!("SELECT COUNT(*) FROM {t} WHERE credential_id = {p1}"),
            count: format!("SELECT COUNT(*) FROM {t} WHERE user_id = {p1}"),
            insert: format!(
                "INSERT INTO {t} ({PASSKEY_COLUMNS}) VALUES ({values}) \
                 ON CONFLICT (credential_id) DO NOTHING"
            ),
            used: format!(
                "UPDATE {t} SET passkey = {p2}, last_used_at = {p3} WHERE credential_id = {p1}"
            ),
            rename: format!(
                "UPDATE {t} SET name = {p3} WHERE user_id = {p1} AND credential_id = {p2}"
            ),
            remove: format!("DELETE FROM {t} WHERE user_id = {p1} AND credential_id = {p2}"),
            table,
        }
    }
}

/// Refuses a record a column would truncate or reject: a credential id empty or longer than
/// [`PasskeyRecord::MAX_CREDENTIAL_ID_LEN`] bytes, a name longer than
/// [`PasskeyRecord::MAX_NAME_LEN`] characters, a passkey longer than
/// [`PasskeyRecord::MAX_PASSKEY_LEN`] bytes.
///
/// # Errors
/// [`StoreError::Backend`] naming the bound.
pub(crate) fn check_record(record: &PasskeyRecord) -> Result<(), StoreError> {
    let id = record.credential_id.len();
    if id == 0 || id > PasskeyRecord::MAX_CREDENTIAL_ID_LEN {
        return Err(StoreError::backend(format!(
            "a credential id of {id} bytes is not 1 to PasskeyRecord::MAX_CREDENTIAL_ID_LEN ({} bytes)",
            PasskeyRecord::MAX_CREDENTIAL_ID_LEN
        )));
    }
    check_name(&record.name)?;
    check_passkey(&record.passkey)
}

/// Refuses a name longer than [`PasskeyRecord::MAX_NAME_LEN`] characters.
///
/// # Errors
/// [`StoreError::Backend`] naming the bound.
pub(crate) fn check_name(name: &str) -> Result<(), StoreError> {
    let chars = name.chars().count();
    if chars > PasskeyRecord::MAX_NAME_LEN {
        return Err(StoreError::backend(format!(
            "a passkey name of {chars} characters is longer than PasskeyRecord::MAX_NAME_LEN ({})",
            PasskeyRecord::MAX_NAME_LEN
        )));
    }
    Ok(())
}

/// Refuses a serialized passkey longer than [`PasskeyRecord::MAX_PASSKEY_LEN`] bytes.
///
/// # Errors
/// [`StoreError::Backend`] naming the bound.
pub(crate) fn check_passkey(passkey: &str) -> Result<(), StoreError> {
    if passkey.len() > PasskeyRecord::MAX_PASSKEY_LEN {
        return Err(StoreError::backend(format!(
            "a serialized passkey of {} bytes is longer than PasskeyRecord::MAX_PASSKEY_LEN ({} bytes)",
            passkey.len(),
            PasskeyRecord::MAX_PASSKEY_LEN
        )));
    }
    Ok(())
}

/// The cap as the `BIGINT` a count is compared with.
pub(crate) fn cap(max_per_user: u32) -> i64 {
    i64::from(max_per_user)
}

/// A passkey row, its times already decoded.
pub(crate) struct PasskeyRow {
    pub(crate) user_id: String,
    pub(crate) credential_id: Vec<u8>,
    pub(crate) name: String,
    pub(crate) passkey: String,
    pub(crate) created_at: OffsetDateTime,
    pub(crate) last_used_at: Option<OffsetDateTime>,
}

impl PasskeyRow {
    pub(crate) fn into_record(self) -> PasskeyRecord {
        PasskeyRecord {
            user_id: UserId::new(self.user_id),
            credential_id: self.credential_id,
            name: self.name,
            passkey: self.passkey,
            created_at: self.created_at,
            last_used_at: self.last_used_at,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(id_len: usize, name: &str, passkey_len: usize) -> PasskeyRecord {
        PasskeyRecord::new(
            UserId::new("u"),
            vec![1; id_len],
            name,
            "x".repeat(passkey_len),
            OffsetDateTime::UNIX_EPOCH,
        )
    }

    #[test]
    fn bounds_are_refused_not_truncated() {
        let (id, name, passkey) = (
            PasskeyRecord::MAX_CREDENTIAL_ID_LEN,
            "é".repeat(PasskeyRecord::MAX_NAME_LEN),
            PasskeyRecord::MAX_PASSKEY_LEN,
        );
        assert!(check_record(&record(id, &name, passkey)).is_ok());
        assert!(check_record(&record(1, "", 0)).is_ok());
        for bad in [
            record(0, "k", 1),
            record(id + 1, "k", 1),
            record(1, &format!("{name}x"), 1),
            record(1, "k", passkey + 1),
        ] {
            assert!(
                matches!(check_record(&bad), Err(StoreError::Backend(_))),
                "{bad:?}"
            );
        }
        assert_eq!(cap(u32::MAX), 4_294_967_295);
    }

    #[test]
    fn statements_bind_the_owner_and_the_id_together() {
        #[cfg(feature = "sqlite")]
        {
            let q = PasskeyQueries::new(TableName::builtin("p"), Placeholders::Question);
            assert_eq!(
                q.remove,
                "DELETE FROM \"p\" WHERE user_id = ?1 AND credential_id = ?2"
            );
            assert_eq!(
                q.rename,
                "UPDATE \"p\" SET name = ?3 WHERE user_id = ?1 AND credential_id = ?2"
            );
        }
        #[cfg(feature = "postgres")]
        {
            let q = PasskeyQueries::new(
                TableName::parse("a.p", true).expect("valid"),
                Placeholders::Dollar,
            );
            assert_eq!(
                q.insert,
                format!(
                    "INSERT INTO \"a\".\"p\" ({PASSKEY_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6) \
                     ON CONFLICT (credential_id) DO NOTHING"
                )
            );
            assert_eq!(
                q.list,
                format!(
                    "SELECT {PASSKEY_COLUMNS} FROM \"a\".\"p\" WHERE user_id = $1 {LIST_ORDER}"
                )
            );
        }
    }
}
