//! Versioned migrations for the MySQL tables, serialized across instances by a named lock.

use sqlx::mysql::{MySqlConnection, MySqlPool};
use time::OffsetDateTime;

use super::error;
use crate::sql::{
    fill_companions, Companions, InvalidTableName, Migration, TableName, MIGRATIONS_TABLE,
};
use crate::time_codec::to_micros;
use crate::StoreError;

/// The server-wide lock name (`GET_LOCK`) that serializes `migrate` calls across instances.
const MIGRATION_LOCK: &str = "keycard_migrations";

/// How long a `migrate` waits for another instance's, in seconds.
const LOCK_WAIT_SECS: i64 = 60;

/// The longest suffix a migration adds to the table name for an index (`_expires_idx`):
/// MySQL identifiers are at most 64 characters.
const LONGEST_SUFFIX: usize = "_expires_idx".len();

/// Parses `raw` (`table` or `database.table`) for a MySQL store.
pub(crate) fn parse_table(raw: &str) -> Result<TableName, InvalidTableName> {
    let table = TableName::parse(raw, true)?;
    if table.name.len() + LONGEST_SUFFIX > 64 {
        return Err(InvalidTableName(raw.to_owned()));
    }
    Ok(table)
}

/// The name quoted for MySQL: `` `database`.`table` `` or `` `table` ``. Identifiers are
/// plain (`[A-Za-z_][A-Za-z0-9_]*`, checked by [`TableName::parse`]), so nothing needs
/// escaping.
pub(crate) fn quoted(table: &TableName) -> String {
    sibling(table, &table.name)
}

/// Another table in the same database, quoted.
pub(crate) fn sibling(table: &TableName, other: &str) -> String {
    match &table.schema {
        Some(database) => format!("`{database}`.`{other}`"),
        None => format!("`{other}`"),
    }
}

/// Fills a migration template: `{table}` is the quoted table, `{name}` its bare name,
/// `{database}` its database as an SQL string (`'database'`, or `DATABASE()` for the
/// connection's), for `information_schema` queries. Identifiers are plain, so nothing needs
/// escaping.
fn render(table: &TableName, template: &str) -> String {
    let database = table
        .schema
        .as_ref()
        .map_or_else(|| "DATABASE()".to_owned(), |d| format!("'{d}'"));
    template
        .replace("{table}", &quoted(table))
        .replace("{name}", &table.name)
        .replace("{database}", &database)
}

/// Applies the migrations of `table` not yet recorded in `keycard_migrations` (in the same
/// database), holding the named lock `keycard_migrations` on one connection meanwhile, so
/// instances starting together apply each version once. MySQL commits DDL implicitly, so a
/// version is recorded after its statements succeed; they are all `IF NOT EXISTS`, so a
/// version interrupted half-way is simply applied again.
pub(crate) async fn migrate(
    pool: &MySqlPool,
    table: &TableName,
    migrations: &[Migration],
) -> Result<(), StoreError> {
    migrate_with(pool, table, &[], migrations).await
}

/// As [`migrate`], for migrations that also create `companions` (recorded under `table`;
/// their databases are created too).
pub(crate) async fn migrate_with(
    pool: &MySqlPool,
    table: &TableName,
    companions: Companions<'_>,
    migrations: &[Migration],
) -> Result<(), StoreError> {
    let mut conn = pool.acquire().await.map_err(error)?;
    let locked: Option<i64> = sqlx::query_scalar("SELECT GET_LOCK(?, ?)")
        .bind(MIGRATION_LOCK)
        .bind(LOCK_WAIT_SECS)
        .fetch_one(&mut *conn)
        .await
        .map_err(error)?;
    if locked != Some(1) {
        return Err(StoreError::backend(
            "timed out waiting for another instance's migration (lock keycard_migrations)",
        ));
    }
    let applied = apply(&mut conn, table, companions, migrations).await;
    let released = sqlx::query("SELECT RELEASE_LOCK(?)")
        .bind(MIGRATION_LOCK)
        .execute(&mut *conn)
        .await;
    if released.is_err() {
        // A connection that may still hold the lock must not go back to the pool.
        conn.close_on_drop();
    }
    applied?;
    released.map(drop).map_err(error)
}

async fn apply(
    conn: &mut MySqlConnection,
    table: &TableName,
    companions: Companions<'_>,
    migrations: &[Migration],
) -> Result<(), StoreError> {
    let databases = std::iter::once(table).chain(companions.iter().map(|(_, t)| *t));
    for database in databases.filter_map(|t| t.schema.as_ref()) {
        sqlx::raw_sql(&format!("CREATE DATABASE IF NOT EXISTS `{database}`"))
            .execute(&mut *conn)
            .await
            .map_err(error)?;
    }
    let tracking = sibling(table, MIGRATIONS_TABLE);
    sqlx::raw_sql(&format!(
        "CREATE TABLE IF NOT EXISTS {tracking} (\
             target VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL, \
             version BIGINT NOT NULL, \
             applied_at BIGINT NOT NULL, \
             PRIMARY KEY (target, version)) ENGINE = InnoDB"
    ))
    .execute(&mut *conn)
    .await
    .map_err(error)?;
    let applied: Vec<i64> =
        sqlx::query_scalar(&format!("SELECT version FROM {tracking} WHERE target = ?"))
            .bind(&table.name)
            .fetch_all(&mut *conn)
            .await
            .map_err(error)?;
    for m in migrations.iter().filter(|m| !applied.contains(&m.version)) {
        sqlx::raw_sql(&render(table, &fill_companions(m.sql, companions, quoted)))
            .execute(&mut *conn)
            .await
            .map_err(error)?;
        sqlx::query(&format!(
            "INSERT INTO {tracking} (target, version, applied_at) VALUES (?, ?, ?)"
        ))
        .bind(&table.name)
        .bind(m.version)
        .bind(to_micros(OffsetDateTime::now_utc()))
        .execute(&mut *conn)
        .await
        .map_err(error)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_quoted_with_backticks_and_bounded() {
        let t = parse_table("auth.sessions").expect("valid");
        assert_eq!(quoted(&t), "`auth`.`sessions`");
        assert_eq!(sibling(&t, "x"), "`auth`.`x`");
        assert_eq!(
            render(&t, "{table} `{name}_idx` {database}"),
            "`auth`.`sessions` `sessions_idx` 'auth'"
        );
        let bare = parse_table("sessions").expect("valid");
        assert_eq!(render(&bare, "{database}"), "DATABASE()");
        assert!(parse_table(&"a".repeat(52)).is_ok());
        assert!(parse_table(&"a".repeat(53)).is_err());
        assert!(parse_table("a`b").is_err());
        assert!(parse_table("a.b.c").is_err());
    }
}
