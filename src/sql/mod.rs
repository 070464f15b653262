//! Helpers shared by the SQL backends: table names, statements, row decoding. (Times:
//! `store::time_codec`.)

use std::error::Error as StdError;
use std::fmt;
use std::net::IpAddr;

use crate::{AuthMethods, ClientInfo, SecretHash, SessionId, SessionKind, StoreError};

pub(crate) mod one_time;
pub(crate) mod passkeys;
pub(crate) mod second_factors;

/// A table name given to a SQL store was not a plain identifier.
///
/// Table names are spliced into SQL (identifiers cannot be bound as parameters), so keycard
/// accepts only `[A-Za-z_][A-Za-z0-9_]*`, at most 63 bytes, optionally (PostgreSQL only)
/// qualified by a schema of the same shape: `schema.table`. Names are also quoted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidTableName(pub(crate) String);

impl fmt::Display for InvalidTableName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "invalid table name {:?}: use letters, digits and underscores, starting with a letter or underscore",
            self.0
        )
    }
}

impl StdError for InvalidTableName {}

/// A validated, quoted table name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TableName {
    /// The schema, if qualified.
    pub(crate) schema: Option<String>,
    /// The bare table name.
    pub(crate) name: String,
}

impl TableName {
    /// Parses `table` or, if `allow_schema`, `schema.table`.
    pub(crate) fn parse(raw: &str, allow_schema: bool) -> Result<Self, InvalidTableName> {
        let invalid = || InvalidTableName(raw.to_owned());
        let (schema, name) = match raw.split_once('.') {
            Some((schema, name)) if allow_schema => (Some(schema), name),
            Some(_) => return Err(invalid()),
            None => (None, raw),
        };
        if !schema.is_none_or(is_identifier) || !is_identifier(name) {
            return Err(invalid());
        }
        Ok(Self {
            schema: schema.map(str::to_owned),
            name: name.to_owned(),
        })
    }

    /// One of keycard's built-in default names, which are valid identifiers.
    pub(crate) fn builtin(name: &'static str) -> Self {
        Self {
            schema: None,
            name: name.to_owned(),
        }
    }

    /// The quoted, possibly qualified name: `"schema"."table"` or `"table"`.
    pub(crate) fn quoted(&self) -> String {
        self.sibling(&self.name)
    }

    /// Another object in the same schema, quoted: `"schema"."other"`.
    pub(crate) fn sibling(&self, other: &str) -> String {
        match &self.schema {
            Some(schema) => format!("\"{schema}\".\"{other}\""),
            None => format!("\"{other}\""),
        }
    }

    /// Fills a migration template: `{table}` is the quoted table, `{name}` the bare name (for
    /// index and constraint names), `{schema}` the quoted schema and a dot, or nothing (to
    /// qualify other objects, such as functions: `{schema}"{name}_f"`).
    pub(crate) fn render(&self, template: &str) -> String {
        let schema = self
            .schema
            .as_ref()
            .map_or_else(String::new, |schema| format!("\"{schema}\"."));
        template
            .replace("{table}", &self.quoted())
            .replace("{name}", &self.name)
            .replace("{schema}", &schema)
    }
}

/// Tables a migration creates beside its target, by placeholder key: `{key}` in the template
/// is the table's quoted name, `{key_name}` its bare name. (The second factor migration
/// creates the recovery codes table beside the TOTP table, its target.)
pub(crate) type Companions<'a> = &'a [(&'static str, &'a TableName)];

/// Fills a migration template's companion placeholders, quoting each table with `quote`.
pub(crate) fn fill_companions(
    template: &str,
    companions: Companions<'_>,
    quote: impl Fn(&TableName) -> String,
) -> String {
    companions
        .iter()
        .fold(template.to_owned(), |sql, (key, table)| {
            sql.replace(&format!("{{{key}}}"), &quote(table))
                .replace(&format!("{{{key}_name}}"), &table.name)
        })
}

fn is_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c == '_' || c.is_ascii_alphabetic())
        && chars.all(|c| c == '_' || c.is_ascii_alphanumeric())
        && s.len() <= 63
}

/// One schema change, applied once per table and recorded in `keycard_migrations`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Migration {
    /// Increasing version number.
    pub(crate) version: i64,
    /// SQL with `{table}` / `{name}` placeholders.
    pub(crate) sql: &'static str,
}

/// The name of the table recording applied migrations (one row per table and version).
pub(crate) const MIGRATIONS_TABLE: &str = "keycard_migrations";

/// Decodes a stored session id.
pub(crate) fn session_id(text: &str) -> Result<SessionId, StoreError> {
    text.parse().map_err(StoreError::corrupt)
}

/// Decodes a stored secret digest.
pub(crate) fn secret_hash(bytes: &[u8]) -> Result<SecretHash, StoreError> {
    let bytes: [u8; 32] = bytes
        .try_into()
        .map_err(|_| StoreError::corrupt("secret_hash is not 32 bytes"))?;
    Ok(SecretHash::from_bytes(bytes))
}

/// Decodes a stored `amr` column ([`AuthMethods::bits`]); a value that is no bit set of
/// 8 bits is corrupt.
pub(crate) fn auth_methods<T: TryInto<u8>>(bits: T) -> Result<AuthMethods, StoreError> {
    bits.try_into()
        .map(AuthMethods::from_bits)
        .map_err(|_| StoreError::corrupt("amr is not a bit set of 8 bits"))
}

/// Rebuilds client metadata from its stored columns.
pub(crate) fn client_info(
    ip: Option<String>,
    user_agent: Option<String>,
) -> Result<ClientInfo, StoreError> {
    let mut client = ClientInfo::none();
    if let Some(ip) = ip {
        client = client.with_ip(ip.parse::<IpAddr>().map_err(StoreError::corrupt)?);
    }
    if let Some(ua) = user_agent {
        client = client.with_user_agent(&ua);
    }
    Ok(client)
}

/// A session's kind as its `token_name` and `token_scopes` columns: both `NULL` for an
/// interactive session, the name and the space-separated scopes for an API token.
pub(crate) fn kind_columns(kind: &SessionKind) -> (Option<&str>, Option<String>) {
    match kind.api_token() {
        Some(grant) => (Some(grant.name()), Some(grant.scopes().to_string())),
        None => (None, None),
    }
}

/// Decodes a stored `token_name` and `token_scopes` ([`SessionKind::from_stored`]).
pub(crate) fn session_kind(
    name: Option<String>,
    scopes: Option<String>,
) -> Result<SessionKind, StoreError> {
    SessionKind::from_stored(name.as_deref(), scopes.as_deref())
}

/// How a SQL dialect spells positional parameters. (`$n` cannot serve both: SQLite numbers
/// `$n` parameters by first appearance, not by `n`.)
#[derive(Debug, Clone, Copy)]
pub(crate) enum Placeholders {
    /// PostgreSQL: `$1`, `$2`, ...
    #[cfg(feature = "postgres")]
    Dollar,
    /// SQLite: `?1`, `?2`, ...
    #[cfg(feature = "sqlite")]
    Question,
}

impl Placeholders {
    fn nth(self, n: usize) -> String {
        match self {
            #[cfg(feature = "postgres")]
            Self::Dollar => format!("${n}"),
            #[cfg(feature = "sqlite")]
            Self::Question => format!("?{n}"),
        }
    }

    /// The larger of two values: the one other word the session statements spell
    /// differently.
    fn greatest(self) -> &'static str {
        match self {
            #[cfg(feature = "postgres")]
            Self::Dollar => "GREATEST",
            #[cfg(feature = "sqlite")]
            Self::Question => "MAX",
        }
    }

    /// Appended to the purge's inner `SELECT`: PostgreSQL lets concurrent purges skip each
    /// other's rows; SQLite has one writer at a time and no row locks.
    fn purge_lock(self) -> &'static str {
        match self {
            #[cfg(feature = "postgres")]
            Self::Dollar => " FOR UPDATE SKIP LOCKED",
            #[cfg(feature = "sqlite")]
            Self::Question => "",
        }
    }
}

/// The statements of the SQL token stores, over the documented sessions table (the same
/// columns in both dialects; times are `INTEGER` microseconds in SQLite, `TIMESTAMPTZ` in
/// PostgreSQL).
#[derive(Debug)]
pub(crate) struct SessionQueries {
    pub(crate) table: TableName,
    pub(crate) insert: String,
    pub(crate) get: String,
    pub(crate) touch: String,
    /// `id`, `last_seen_at`, `ip`.
    pub(crate) touch_from: String,
    pub(crate) delete: String,
    pub(crate) delete_for_user: String,
    pub(crate) delete_for_user_except: String,
    pub(crate) list_for_user: String,
    pub(crate) purge_batch: String,
}

/// The sessions table's columns, in the order every statement reads and writes them.
pub(crate) const SESSION_COLUMNS: &str = "id, user_id, secret_hash, created_at, expires_at, \
     last_seen_at, ip, user_agent, amr, token_name, token_scopes";

/// How many columns [`SESSION_COLUMNS`] names.
pub(crate) const SESSION_COLUMN_COUNT: usize = 11;

impl SessionQueries {
    pub(crate) fn new(table: TableName, placeholders: Placeholders) -> Self {
        let t = table.quoted();
        let p = |n| placeholders.nth(n);
        let values = (1..=SESSION_COLUMN_COUNT)
            .map(p)
            .collect::<Vec<_>>()
            .join(", ");
        let (p1, p2, p3) = (p(1), p(2), p(3));
        let greatest = placeholders.greatest();
        let lock = placeholders.purge_lock();
        Self {
            insert: format!(
                "INSERT INTO {t} ({SESSION_COLUMNS}) VALUES ({values}) ON CONFLICT (id) DO NOTHING"
            ),
            get: format!("SELECT {SESSION_COLUMNS} FROM {t} WHERE id = {p1} AND expires_at > {p2}"),
            touch: format!(
                "UPDATE {t} SET last_seen_at = {greatest}(last_seen_at, {p2}) \
                 WHERE id = {p1} AND expires_at > {p2}"
            ),
            touch_from: format!(
                "UPDATE {t} SET last_seen_at = {greatest}(last_seen_at, {p2}), ip = {p3} \
                 WHERE id = {p1} AND expires_at > {p2}"
            ),
            delete: format!("DELETE FROM {t} WHERE id = {p1}"),
            delete_for_user: format!("DELETE FROM {t} WHERE user_id = {p1}"),
            delete_for_user_except: format!(
                "DELETE FROM {t} WHERE user_id = {p1} AND id <> {p2} AND token_name IS NULL"
            ),
            list_for_user: format!(
                "SELECT {SESSION_COLUMNS} FROM {t} WHERE user_id = {p1} AND expires_at > {p2} \
                 ORDER BY created_at, id"
            ),
            purge_batch: format!(
                "DELETE FROM {t} WHERE id IN (SELECT id FROM {t} WHERE expires_at <= {p1} \
                 ORDER BY expires_at LIMIT {p2}{lock})"
            ),
            table,
        }
    }
}

/// A key stored before users migration 2 that the canonical form changes: version 1 keyed
/// addresses by `trim().to_lowercase()`, which leaves compatibility characters (fullwidth
/// letters, ligatures, the Kelvin sign) that NFKC folds.
#[derive(Debug)]
pub(crate) struct Rekey {
    pub(crate) id: String,
    pub(crate) old: String,
    pub(crate) new: String,
}

/// Of `(id, email_key)` rows found by a backend's legacy-key query (non-ASCII keys still
/// equal to their address), those whose key is not canonical.
pub(crate) fn rekeys(rows: Vec<(String, String)>) -> Vec<Rekey> {
    rows.into_iter()
        .filter_map(|(id, old)| {
            let new = crate::normalize_email(&old);
            (new != old).then_some(Rekey { id, old, new })
        })
        .collect()
}

/// Logs a legacy key that could not be made canonical: another account holds the canonical
/// form (two version-1 accounts that are one under the new rule).
pub(crate) fn rekey_collision(id: &str) {
    tracing::warn!(
        user_id = %id,
        "keycard: this user's email key stays in its pre-NFKC form because another account has \
         the canonical form of the same address; it logs in only with its old spelling until \
         one of the two addresses is changed"
    );
}

/// The statements of the SQL user stores, over the documented `users` table. Rows are
/// selected as [`USER_COLUMNS`]; `email_key` is the canonical form of `email`.
#[derive(Debug)]
pub(crate) struct UserQueries {
    pub(crate) table: TableName,
    /// `id, email, email_key, password_hash, first_name, last_name, email_verified_at`.
    pub(crate) insert_if_absent: String,
    /// By `email_key`.
    pub(crate) by_email: String,
    pub(crate) by_id: String,
    /// `id`, `phc`.
    pub(crate) set_password_hash: String,
    /// `id`, `email_key`, `at`: sets `email_verified_at` unless set.
    pub(crate) mark_email_verified: String,
    /// `id`, `email`, `email_key`, `verified_at`.
    pub(crate) change_email: String,
}

/// The users table's columns, in the order every select reads them.
pub(crate) const USER_COLUMNS: &str =
    "id, email, password_hash, first_name, last_name, email_verified_at";

impl UserQueries {
    pub(crate) fn new(table: TableName, placeholders: Placeholders) -> Self {
        let t = table.quoted();
        let p = |n| placeholders.nth(n);
        let values = (1..=7).map(p).collect::<Vec<_>>().join(", ");
        let (p1, p2, p3, p4) = (p(1), p(2), p(3), p(4));
        Self {
            insert_if_absent: format!(
                "INSERT INTO {t} (id, email, email_key, password_hash, first_name, last_name, \
                 email_verified_at) VALUES ({values}) ON CONFLICT DO NOTHING"
            ),
            by_email: format!("SELECT {USER_COLUMNS} FROM {t} WHERE email_key = {p1}"),
            by_id: format!("SELECT {USER_COLUMNS} FROM {t} WHERE id = {p1}"),
            set_password_hash: format!("UPDATE {t} SET password_hash = {p2} WHERE id = {p1}"),
            mark_email_verified: format!(
                "UPDATE {t} SET email_verified_at = COALESCE(email_verified_at, {p3}) \
                 WHERE id = {p1} AND email_key = {p2}"
            ),
            change_email: format!(
                "UPDATE {t} SET email = {p2}, email_key = {p3}, email_verified_at = {p4} \
                 WHERE id = {p1}"
            ),
            table,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_amr_decodes_or_is_corrupt() {
        let amr = AuthMethods::from(crate::AuthMethod::Password).with(crate::AuthMethod::Totp);
        assert_eq!(auth_methods(i64::from(amr.bits())).expect("valid"), amr);
        assert_eq!(auth_methods(0_i16).expect("valid"), AuthMethods::none());
        for bad in [-1_i64, 256, i64::MAX] {
            assert!(
                matches!(auth_methods(bad), Err(StoreError::Corrupt(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn table_names_are_identifiers_only() {
        for ok in ["sessions", "_s1", "keycard_sessions"] {
            assert!(TableName::parse(ok, false).is_ok(), "{ok}");
        }
        let qualified = TableName::parse("auth.sessions", true).expect("qualified");
        assert_eq!(qualified.quoted(), "\"auth\".\"sessions\"");
        assert_eq!(qualified.sibling("x"), "\"auth\".\"x\"");
        assert_eq!(
            qualified.render("{schema}\"{name}_f\" {table}"),
            "\"auth\".\"sessions_f\" \"auth\".\"sessions\""
        );
        assert_eq!(
            TableName::parse("t", false)
                .expect("valid")
                .render("{schema}\"{name}_f\""),
            "\"t_f\""
        );
        for bad in [
            "",
            "1abc",
            "a-b",
            "a b",
            "s\"; DROP TABLE users; --",
            "a.b.c",
            ".a",
            "é",
            &"a".repeat(64),
        ] {
            assert!(TableName::parse(bad, true).is_err(), "{bad:?}");
        }
        assert!(TableName::parse("a.b", false).is_err());
        let err = TableName::parse("x y", false).expect_err("invalid");
        assert!(err.to_string().starts_with("invalid table name \"x y\""));
    }

    /// The statements each backend used before they were shared, verbatim, with the `amr`
    /// column of sessions version 2 and the API token columns of version 3.
    #[test]
    fn session_statements_are_unchanged() {
        let cols = "id, user_id, secret_hash, created_at, expires_at, last_seen_at, ip, \
                    user_agent, amr, token_name, token_scopes";
        #[cfg(feature = "sqlite")]
        {
            let q = SessionQueries::new(TableName::builtin("s"), Placeholders::Question);
            assert_eq!(
                q.insert,
                format!("INSERT INTO \"s\" ({cols}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11) ON CONFLICT (id) DO NOTHING")
            );
            assert_eq!(
                q.get,
                format!("SELECT {cols} FROM \"s\" WHERE id = ?1 AND expires_at > ?2")
            );
            assert_eq!(
                q.touch,
                "UPDATE \"s\" SET last_seen_at = MAX(last_seen_at, ?2) WHERE id = ?1 AND expires_at > ?2"
            );
            assert_eq!(
                q.touch_from,
                "UPDATE \"s\" SET last_seen_at = MAX(last_seen_at, ?2), ip = ?3 WHERE id = ?1 AND expires_at > ?2"
            );
            assert_eq!(q.delete, "DELETE FROM \"s\" WHERE id = ?1");
            assert_eq!(q.delete_for_user, "DELETE FROM \"s\" WHERE user_id = ?1");
            assert_eq!(
                q.delete_for_user_except,
                "DELETE FROM \"s\" WHERE user_id = ?1 AND id <> ?2 AND token_name IS NULL"
            );
            assert_eq!(
                q.list_for_user,
                format!("SELECT {cols} FROM \"s\" WHERE user_id = ?1 AND expires_at > ?2 ORDER BY created_at, id")
            );
            assert_eq!(
                q.purge_batch,
                "DELETE FROM \"s\" WHERE id IN (SELECT id FROM \"s\" WHERE expires_at <= ?1 ORDER BY expires_at LIMIT ?2)"
            );
        }
        #[cfg(feature = "postgres")]
        {
            let q = SessionQueries::new(
                TableName::parse("a.s", true).expect("valid"),
                Placeholders::Dollar,
            );
            let t = "\"a\".\"s\"";
            assert_eq!(
                q.insert,
                format!("INSERT INTO {t} ({cols}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) ON CONFLICT (id) DO NOTHING")
            );
            assert_eq!(
                q.get,
                format!("SELECT {cols} FROM {t} WHERE id = $1 AND expires_at > $2")
            );
            assert_eq!(
                q.touch,
                format!("UPDATE {t} SET last_seen_at = GREATEST(last_seen_at, $2) WHERE id = $1 AND expires_at > $2")
            );
            assert_eq!(
                q.touch_from,
                format!("UPDATE {t} SET last_seen_at = GREATEST(last_seen_at, $2), ip = $3 WHERE id = $1 AND expires_at > $2")
            );
            assert_eq!(q.delete, format!("DELETE FROM {t} WHERE id = $1"));
            assert_eq!(
                q.delete_for_user,
                format!("DELETE FROM {t} WHERE user_id = $1")
            );
            assert_eq!(
                q.delete_for_user_except,
                format!("DELETE FROM {t} WHERE user_id = $1 AND id <> $2 AND token_name IS NULL")
            );
            assert_eq!(
                q.list_for_user,
                format!("SELECT {cols} FROM {t} WHERE user_id = $1 AND expires_at > $2 ORDER BY created_at, id")
            );
            assert_eq!(
                q.purge_batch,
                format!("DELETE FROM {t} WHERE id IN (SELECT id FROM {t} WHERE expires_at <= $1 ORDER BY expires_at LIMIT $2 FOR UPDATE SKIP LOCKED)")
            );
        }
        let _ = cols;
    }
}
