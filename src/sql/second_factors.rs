//! What the SQL second factor stores share: the statements of SQLite and PostgreSQL (one
//! text, two placeholder styles), the bounds every backend enforces before writing, and the
//! decoding of a TOTP row, which MySQL uses too.

use std::collections::HashSet;

use time::OffsetDateTime;

use super::{Placeholders, TableName};
use crate::mfa::{RecoveryCodeDigest, TotpRecord};
use crate::{StoreError, UserId};

/// The TOTP table's columns, in the order every statement reads and writes them.
pub(crate) const TOTP_COLUMNS: &str = "user_id, sealed_secret, created_at, confirmed_at, last_step";

pub(crate) use crate::mfa::store::MAX_RECOVERY_CODES;

/// The placeholder key of the recovery codes table in `second_factors_0001.sql`: `{codes}`,
/// `{codes_name}`.
pub(crate) const CODES_KEY: &str = "codes";

/// The statements of the SQLite and PostgreSQL second factor stores.
#[derive(Debug)]
pub(crate) struct SecondFactorQueries {
    /// The TOTP table, the migration target.
    pub(crate) totp_table: TableName,
    /// The recovery codes table.
    pub(crate) codes_table: TableName,
    /// `(user)`.
    pub(crate) totp: String,
    /// `(5 columns)`: inserts, or replaces a pending factor; changes nothing (0 rows) when
    /// the user's factor is confirmed.
    pub(crate) begin: String,
    /// `(user, sealed secret, confirmed at, step)`.
    pub(crate) confirm: String,
    /// `(user, step)`: the compare-and-set.
    pub(crate) use_step: String,
    /// `(user, old, new)`.
    pub(crate) reseal: String,
    /// `(user)`.
    pub(crate) remove: String,
    /// `(user)`: every recovery code of the user.
    pub(crate) delete_codes: String,
    /// `(user, digest, created at)`.
    pub(crate) insert_code: String,
    /// `(user, digest)`.
    pub(crate) use_code: String,
    /// `(user)`.
    pub(crate) codes_left: String,
}

impl SecondFactorQueries {
    pub(crate) fn new(
        totp_table: TableName,
        codes_table: TableName,
        placeholders: Placeholders,
    ) -> Self {
        let (t, c) = (totp_table.quoted(), codes_table.quoted());
        let p = |n| placeholders.nth(n);
        let values = (1..=5).map(p).collect::<Vec<_>>().join(", ");
        let (p1, p2, p3, p4) = (p(1), p(2), p(3), p(4));
        Self {
            totp: format!("SELECT {TOTP_COLUMNS} FROM {t} WHERE user_id = {p1}"),
            begin: format!(
                "INSERT INTO {t} AS t ({TOTP_COLUMNS}) VALUES ({values}) \
                 ON CONFLICT (user_id) DO UPDATE SET sealed_secret = excluded.sealed_secret, \
                 created_at = excluded.created_at, confirmed_at = excluded.confirmed_at, \
                 last_step = excluded.last_step WHERE t.confirmed_at IS NULL"
            ),
            confirm: format!(
                "UPDATE {t} SET confirmed_at = {p3}, last_step = {p4} \
                 WHERE user_id = {p1} AND sealed_secret = {p2} AND confirmed_at IS NULL"
            ),
            use_step: format!(
                "UPDATE {t} SET last_step = {p2} WHERE user_id = {p1} \
                 AND confirmed_at IS NOT NULL AND (last_step IS NULL OR last_step < {p2})"
            ),
            reseal: format!(
                "UPDATE {t} SET sealed_secret = {p3} WHERE user_id = {p1} AND sealed_secret = {p2}"
            ),
            remove: format!("DELETE FROM {t} WHERE user_id = {p1}"),
            delete_codes: format!("DELETE FROM {c} WHERE user_id = {p1}"),
            insert_code: format!(
                "INSERT INTO {c} (user_id, digest, created_at) VALUES ({p1}, {p2}, {p3})"
            ),
            use_code: format!("DELETE FROM {c} WHERE user_id = {p1} AND digest = {p2}"),
            codes_left: format!("SELECT COUNT(*) FROM {c} WHERE user_id = {p1}"),
            totp_table,
            codes_table,
        }
    }
}

/// Refuses a sealed secret longer than [`TotpRecord::MAX_SEALED_LEN`] before it reaches a
/// column that would truncate or reject it.
///
/// # Errors
/// [`StoreError::Backend`] naming the bound.
pub(crate) fn check_sealed(sealed: &[u8]) -> Result<(), StoreError> {
    if sealed.len() > TotpRecord::MAX_SEALED_LEN {
        return Err(StoreError::backend(format!(
            "a sealed TOTP secret of {} bytes is longer than TotpRecord::MAX_SEALED_LEN ({} bytes)",
            sealed.len(),
            TotpRecord::MAX_SEALED_LEN
        )));
    }
    Ok(())
}

/// The distinct digests of a new set of recovery codes (a digest given twice is stored
/// once), or a refusal of more than [`MAX_RECOVERY_CODES`].
///
/// # Errors
/// [`StoreError::Backend`] naming the bound.
pub(crate) fn distinct_codes(codes: &[RecoveryCodeDigest]) -> Result<Vec<[u8; 32]>, StoreError> {
    if codes.len() > MAX_RECOVERY_CODES {
        return Err(StoreError::backend(format!(
            "{} recovery codes are more than a store keeps per user ({MAX_RECOVERY_CODES})",
            codes.len()
        )));
    }
    let mut seen = HashSet::with_capacity(codes.len());
    Ok(codes
        .iter()
        .map(|c| *c.as_bytes())
        .filter(|c| seen.insert(*c))
        .collect())
}

/// A time step as a `BIGINT`.
///
/// # Errors
/// [`StoreError::Backend`] for a step beyond `i64::MAX` (no clock reaches it).
pub(crate) fn step_param(step: u64) -> Result<i64, StoreError> {
    i64::try_from(step)
        .map_err(|_| StoreError::backend("a TOTP time step beyond i64::MAX cannot be stored"))
}

/// A TOTP row, its times already decoded.
pub(crate) struct TotpRow {
    pub(crate) user_id: String,
    pub(crate) sealed_secret: Vec<u8>,
    pub(crate) created_at: OffsetDateTime,
    pub(crate) confirmed_at: Option<OffsetDateTime>,
    pub(crate) last_step: Option<i64>,
}

impl TotpRow {
    pub(crate) fn into_record(self) -> Result<TotpRecord, StoreError> {
        let last_step = self
            .last_step
            .map(u64::try_from)
            .transpose()
            .map_err(|_| StoreError::corrupt("last_step is negative"))?;
        Ok(TotpRecord {
            user_id: UserId::new(self.user_id),
            sealed_secret: self.sealed_secret,
            created_at: self.created_at,
            confirmed_at: self.confirmed_at,
            last_step,
        })
    }
}

/// A stored count as the contract's `u32`.
pub(crate) fn count(n: i64) -> Result<u32, StoreError> {
    u32::try_from(n).map_err(|_| StoreError::corrupt("a negative or huge recovery code count"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_are_refused_not_truncated() {
        assert!(check_sealed(&[0; TotpRecord::MAX_SEALED_LEN]).is_ok());
        assert!(matches!(
            check_sealed(&[0; TotpRecord::MAX_SEALED_LEN + 1]),
            Err(StoreError::Backend(_))
        ));
        let codes: Vec<_> = (0..=MAX_RECOVERY_CODES)
            .map(|i| RecoveryCodeDigest::from_bytes([u8::try_from(i).expect("small"); 32]))
            .collect();
        assert_eq!(
            distinct_codes(&codes[..MAX_RECOVERY_CODES])
                .expect("at the bound")
                .len(),
            MAX_RECOVERY_CODES
        );
        assert!(matches!(
            distinct_codes(&codes),
            Err(StoreError::Backend(_))
        ));
        let twice = [codes[1], codes[2], codes[1]];
        assert_eq!(
            distinct_codes(&twice).expect("distinct"),
            vec![[1; 32], [2; 32]]
        );
        assert_eq!(step_param(7).expect("fits"), 7);
        assert!(step_param(u64::MAX).is_err());
        assert!(count(-1).is_err());
        let row = TotpRow {
            user_id: "u".into(),
            sealed_secret: vec![1],
            created_at: OffsetDateTime::UNIX_EPOCH,
            confirmed_at: None,
            last_step: Some(-1),
        };
        assert!(matches!(row.into_record(), Err(StoreError::Corrupt(_))));
    }
}
