//! The SQLite migration runner: applies each table's schema changes once, recorded in
//! `keycard_migrations`.

use std::collections::HashSet;

use rusqlite::{params, Connection, TransactionBehavior};
use time::OffsetDateTime;

use super::backend;
use crate::sql::{fill_companions, Companions, Migration, TableName, MIGRATIONS_TABLE};
use crate::time_codec;
use crate::StoreError;

/// Applies the migrations of `table` not yet recorded, in one immediate transaction.
pub(crate) fn migrate(
    conn: &mut Connection,
    table: &TableName,
    migrations: &[Migration],
) -> Result<(), StoreError> {
    migrate_with(conn, table, &[], migrations)
}

/// As [`migrate`], for migrations that also create `companions` (recorded under `table`).
pub(crate) fn migrate_with(
    conn: &mut Connection,
    table: &TableName,
    companions: Companions<'_>,
    migrations: &[Migration],
) -> Result<(), StoreError> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(backend)?;
    tx.execute_batch(&format!(
        "CREATE TABLE IF NOT EXISTS \"{MIGRATIONS_TABLE}\" (\
             target TEXT NOT NULL, version INTEGER NOT NULL, applied_at INTEGER NOT NULL, \
             PRIMARY KEY (target, version))"
    ))
    .map_err(backend)?;
    let applied: HashSet<i64> = {
        let mut st = tx
            .prepare(&format!(
                "SELECT version FROM \"{MIGRATIONS_TABLE}\" WHERE target = ?1"
            ))
            .map_err(backend)?;
        let versions = st
            .query_map(params![table.name], |r| r.get(0))
            .and_then(|rows| rows.collect::<Result<HashSet<i64>, _>>())
            .map_err(backend)?;
        versions
    };
    for m in migrations.iter().filter(|m| !applied.contains(&m.version)) {
        let sql = fill_companions(m.sql, companions, TableName::quoted);
        tx.execute_batch(&table.render(&sql)).map_err(backend)?;
        tx.execute(
            &format!(
                "INSERT INTO \"{MIGRATIONS_TABLE}\" (target, version, applied_at) VALUES (?1, ?2, ?3)"
            ),
            params![
                table.name,
                m.version,
                time_codec::to_micros(OffsetDateTime::now_utc())
            ],
        )
        .map_err(backend)?;
    }
    tx.commit().map_err(backend)
}
