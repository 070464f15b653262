//! Existing sessions tables migrate in place to version 2 (`amr`) and version 3 (API tokens:
//! `token_name`, `token_scopes`) on every SQL backend: a table created by version 1, with a
//! session stored the old way (without the columns), is upgraded by `migrate`; the old
//! session reads back unchanged, interactive, with no method recorded, and new sessions and
//! API tokens keep theirs. A row whose API token columns do not decode is a typed error.
//! PostgreSQL and MySQL need their servers and fail, never skip, when one is down.

use std::time::Duration;

use keycard::api_tokens::{ApiTokenGrant, ApiTokens, Scopes};
use keycard::{
    AuthMethod, AuthMethods, ClientInfo, Session, SessionKind, StoreError, Token, TokenStore,
    UserId,
};
use time::OffsetDateTime;

/// Fills a version-1 migration template: `{table}` is `quoted`, `{name}` the bare `name`.
fn render(template: &str, quoted: &str, name: &str) -> String {
    template.replace("{table}", quoted).replace("{name}", name)
}

/// A session as version 1 stored it (no `amr`).
fn old_session() -> Session {
    let token = Token::generate().expect("rng");
    let client = ClientInfo::none()
        .with_ip("192.0.2.7".parse().expect("ip"))
        .with_user_agent("old/1.0");
    Session::new(
        &token,
        UserId::new("old-user"),
        OffsetDateTime::now_utc(),
        Duration::from_secs(3600),
        client,
    )
}

#[cfg(any(feature = "sqlite", feature = "mysql"))]
fn micros(t: OffsetDateTime) -> i64 {
    i64::try_from(t.unix_timestamp_nanos() / 1000).expect("in range")
}

/// What a migrated store must do with `old`, the session stored by version 1.
async fn the_old_session_reads_back_with_no_method(store: &dyn TokenStore, old: &Session) {
    let now = old.created_at;
    let read = store
        .get(&old.id, now)
        .await
        .expect("get")
        .expect("the old session survives the migration");
    assert!(read.amr.is_empty(), "an old session has no method recorded");
    assert!(read.kind.is_interactive(), "an old session is interactive");
    assert_eq!(&read, old, "the old session reads back unchanged");
    assert_eq!(
        store.list_for_user(&old.user_id, now).await.expect("list"),
        vec![old.clone()]
    );
    let amr = AuthMethods::from(AuthMethod::Password).with(AuthMethod::Totp);
    let token = Token::generate().expect("rng");
    let new = Session::new(
        &token,
        old.user_id.clone(),
        now + Duration::from_millis(1),
        Duration::from_secs(3600),
        ClientInfo::none(),
    )
    .with_amr(amr);
    store
        .create(&new)
        .await
        .expect("create after the migration");
    assert_eq!(
        store.get(&new.id, now).await.expect("get"),
        Some(new.clone()),
        "a new session keeps its amr"
    );
    let token = Token::generate().expect("rng");
    let mut api = Session::new(
        &token,
        old.user_id.clone(),
        now + Duration::from_millis(2),
        Duration::from_secs(3600),
        ClientInfo::none(),
    )
    .with_kind(SessionKind::ApiToken(ApiTokenGrant::new(
        "after the migration",
        Scopes::new(["notes:read", "notes:write"]).expect("scopes"),
    )));
    api.expires_at = ApiTokens::NEVER;
    store.create(&api).await.expect("create an API token");
    assert_eq!(
        store.get(&api.id, now).await.expect("get"),
        Some(api.clone()),
        "a new API token keeps its kind, name, scopes and expiry"
    );
    assert_eq!(
        store
            .delete_for_user_except(&old.user_id, &new.id)
            .await
            .expect("delete except"),
        1,
        "the old session goes, the API token stays"
    );
    assert_eq!(
        store.list_for_user(&old.user_id, now).await.expect("list"),
        vec![new.clone(), api.clone()]
    );
    assert_eq!(
        store.delete_for_user(&old.user_id).await.expect("delete"),
        2
    );
}

/// The API token columns of a corrupt row, as `(token_name, token_scopes)`: one without the
/// other, and scopes that do not parse.
const CORRUPT_KINDS: [(Option<&str>, Option<&str>); 3] = [
    (Some("name only"), None),
    (None, Some("notes:read")),
    (Some("bad scopes"), Some("notes:read bad\"scope")),
];

/// A read of a corrupt row must be `StoreError::Corrupt`.
fn assert_corrupt(result: Result<Option<Session>, StoreError>, case: &str) {
    match result {
        Err(StoreError::Corrupt(_)) => {}
        other => panic!("{case}: expected Corrupt, got {other:?}"),
    }
}

#[cfg(feature = "sqlite")]
mod sqlite {
    use super::*;
    use keycard::sqlite::driver::{params, Connection};
    use keycard::sqlite::SqliteTokenStore;

    #[tokio::test]
    async fn a_version_1_table_migrates_in_place() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("keycard.db");
        let old = old_session();
        {
            let conn = Connection::open(&path).expect("open");
            conn.execute_batch(
                "CREATE TABLE keycard_migrations (target TEXT NOT NULL, version INTEGER NOT NULL, \
                 applied_at INTEGER NOT NULL, PRIMARY KEY (target, version))",
            )
            .expect("tracking table");
            conn.execute_batch(&render(
                include_str!("../../migrations/sqlite/sessions_0001.sql"),
                "\"old_sessions\"",
                "old_sessions",
            ))
            .expect("version 1");
            conn.execute(
                "INSERT INTO keycard_migrations VALUES ('old_sessions', 1, 0)",
                params![],
            )
            .expect("record version 1");
            conn.execute(
                "INSERT INTO old_sessions (id, user_id, secret_hash, created_at, expires_at, \
                 last_seen_at, ip, user_agent) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                params![
                    old.id.to_string(),
                    old.user_id.as_str(),
                    old.secret_hash.as_bytes().as_slice(),
                    micros(old.created_at),
                    micros(old.expires_at),
                    micros(old.last_seen_at),
                    "192.0.2.7",
                    "old/1.0",
                ],
            )
            .expect("a session of version 1");
        }
        let store = SqliteTokenStore::open(&path)
            .await
            .expect("open")
            .with_table("old_sessions")
            .expect("valid");
        store.migrate().await.expect("migrate to version 3");
        store.migrate().await.expect("migrate is idempotent");
        let conn = Connection::open(&path).expect("open");
        let versions: Vec<i64> = conn
            .prepare(
                "SELECT version FROM keycard_migrations WHERE target = 'old_sessions' \
                 ORDER BY version",
            )
            .and_then(|mut st| {
                st.query_map([], |r| r.get(0))?
                    .collect::<Result<Vec<i64>, _>>()
            })
            .expect("versions");
        assert_eq!(versions, [1, 2, 3]);
        let stored: i64 = conn
            .query_row(
                "SELECT amr FROM old_sessions WHERE id = ?1",
                params![old.id.to_string()],
                |r| r.get(0),
            )
            .expect("the column exists");
        assert_eq!(stored, 0, "existing rows get 0, no method recorded");
        the_old_session_reads_back_with_no_method(&store, &old).await;
        // A value no AuthMethods has is a typed error, not a panic.
        let odd = old_session();
        for bad in [-1_i64, 256] {
            conn.execute(
                "INSERT OR REPLACE INTO old_sessions (id, user_id, secret_hash, created_at,                  expires_at, last_seen_at, amr) VALUES (?1, 'u', ?2, ?3, ?4, ?3, ?5)",
                params![
                    odd.id.to_string(),
                    odd.secret_hash.as_bytes().as_slice(),
                    micros(odd.created_at),
                    micros(odd.expires_at),
                    bad,
                ],
            )
            .expect("a row with a bad amr");
            let err = store
                .get(&odd.id, odd.created_at)
                .await
                .expect_err("corrupt");
            assert!(matches!(err, keycard::StoreError::Corrupt(_)), "{err:?}");
        }
        let odd_kind = old_session();
        for (name, scopes) in CORRUPT_KINDS {
            conn.execute(
                "INSERT OR REPLACE INTO old_sessions (id, user_id, secret_hash, created_at, \
                 expires_at, last_seen_at, token_name, token_scopes) \
                 VALUES (?1, 'u', ?2, ?3, ?4, ?3, ?5, ?6)",
                params![
                    odd_kind.id.to_string(),
                    odd_kind.secret_hash.as_bytes().as_slice(),
                    micros(odd_kind.created_at),
                    micros(odd_kind.expires_at),
                    name,
                    scopes,
                ],
            )
            .expect("a row with corrupt API token columns");
            assert_corrupt(
                store.get(&odd_kind.id, odd_kind.created_at).await,
                &format!("token_name {name:?}, token_scopes {scopes:?}"),
            );
        }
    }
}

#[cfg(feature = "postgres")]
mod postgres {
    use super::*;
    use crate::support::stores::PgSchema;
    use keycard::postgres::PostgresTokenStore;

    #[tokio::test]
    async fn a_version_1_table_migrates_in_place() {
        let schema = PgSchema::new().await;
        let store = PostgresTokenStore::connect(&schema.url)
            .await
            .expect("connect")
            .with_table(&schema.table("sessions"))
            .expect("valid");
        let pool = store.pool().clone();
        let table = format!("\"{}\".\"sessions\"", schema.name);
        sqlx::raw_sql(&format!(
            "CREATE SCHEMA \"{s}\"; \
             CREATE TABLE \"{s}\".keycard_migrations (target TEXT NOT NULL, version BIGINT NOT NULL, \
             applied_at TIMESTAMPTZ NOT NULL DEFAULT now(), PRIMARY KEY (target, version)); \
             INSERT INTO \"{s}\".keycard_migrations (target, version) VALUES ('sessions', 1);",
            s = schema.name
        ))
        .execute(&pool)
        .await
        .expect("tracking table");
        sqlx::raw_sql(&render(
            include_str!("../../migrations/postgres/sessions_0001.sql"),
            &table,
            "sessions",
        ))
        .execute(&pool)
        .await
        .expect("version 1");
        let old = old_session();
        sqlx::query(&format!(
            "INSERT INTO {table} (id, user_id, secret_hash, created_at, expires_at, \
             last_seen_at, ip, user_agent) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
        ))
        .bind(old.id.to_string())
        .bind(old.user_id.as_str())
        .bind(old.secret_hash.as_bytes().as_slice())
        .bind(old.created_at)
        .bind(old.expires_at)
        .bind(old.last_seen_at)
        .bind("192.0.2.7")
        .bind("old/1.0")
        .execute(&pool)
        .await
        .expect("a session of version 1");
        store.migrate().await.expect("migrate to version 3");
        store.migrate().await.expect("migrate is idempotent");
        let versions: Vec<(i64,)> = sqlx::query_as(&format!(
            "SELECT version FROM \"{}\".keycard_migrations WHERE target = 'sessions' \
             ORDER BY version",
            schema.name
        ))
        .fetch_all(&pool)
        .await
        .expect("versions");
        assert_eq!(versions, vec![(1,), (2,), (3,)]);
        the_old_session_reads_back_with_no_method(&store, &old).await;
        let odd = old_session();
        for (name, scopes) in CORRUPT_KINDS {
            sqlx::query(&format!("DELETE FROM {table} WHERE id = $1"))
                .bind(odd.id.to_string())
                .execute(&pool)
                .await
                .expect("delete");
            sqlx::query(&format!(
                "INSERT INTO {table} (id, user_id, secret_hash, created_at, expires_at, \
                 last_seen_at, token_name, token_scopes) VALUES ($1, 'u', $2, $3, $4, $3, $5, $6)"
            ))
            .bind(odd.id.to_string())
            .bind(odd.secret_hash.as_bytes().as_slice())
            .bind(odd.created_at)
            .bind(odd.expires_at)
            .bind(name)
            .bind(scopes)
            .execute(&pool)
            .await
            .expect("a row with corrupt API token columns");
            assert_corrupt(
                store.get(&odd.id, odd.created_at).await,
                &format!("token_name {name:?}, token_scopes {scopes:?}"),
            );
        }
    }
}

#[cfg(feature = "mysql")]
mod mysql {
    use super::*;
    use crate::support::mysql::MyTables;

    #[tokio::test]
    async fn a_version_1_table_migrates_in_place() {
        let tables = MyTables::new().await;
        let name = tables.table("sessions");
        let mysql = tables.mysql().await;
        let pool = mysql.pool().clone();
        sqlx::raw_sql(
            "CREATE TABLE IF NOT EXISTS keycard_migrations (\
             target VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL, \
             version BIGINT NOT NULL, applied_at BIGINT NOT NULL, \
             PRIMARY KEY (target, version)) ENGINE = InnoDB",
        )
        .execute(&pool)
        .await
        .expect("tracking table");
        sqlx::query("INSERT INTO keycard_migrations VALUES (?, 1, 0)")
            .bind(&name)
            .execute(&pool)
            .await
            .expect("record version 1");
        sqlx::raw_sql(&render(
            include_str!("../../migrations/mysql/sessions_0001.sql"),
            &format!("`{name}`"),
            &name,
        ))
        .execute(&pool)
        .await
        .expect("version 1");
        let old = old_session();
        sqlx::query(&format!(
            "INSERT INTO `{name}` (id, user_id, secret_hash, created_at, expires_at, \
             last_seen_at, ip, user_agent) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
        ))
        .bind(old.id.to_string())
        .bind(old.user_id.as_str())
        .bind(old.secret_hash.as_bytes().as_slice())
        .bind(micros(old.created_at))
        .bind(micros(old.expires_at))
        .bind(micros(old.last_seen_at))
        .bind("192.0.2.7")
        .bind("old/1.0")
        .execute(&pool)
        .await
        .expect("a session of version 1");
        let store = mysql.token_store().with_table(&name).expect("valid");
        store.migrate().await.expect("migrate to version 3");
        store.migrate().await.expect("migrate is idempotent");
        // DDL commits on its own: versions 2 and 3 applied but not recorded run again
        // cleanly.
        sqlx::query("DELETE FROM keycard_migrations WHERE target = ? AND version >= 2")
            .bind(&name)
            .execute(&pool)
            .await
            .expect("forget versions 2 and 3");
        store.migrate().await.expect("versions 2 and 3 run again");
        let versions: Vec<(i64,)> = sqlx::query_as(
            "SELECT version FROM keycard_migrations WHERE target = ? ORDER BY version",
        )
        .bind(&name)
        .fetch_all(&pool)
        .await
        .expect("versions");
        assert_eq!(versions, vec![(1,), (2,), (3,)]);
        the_old_session_reads_back_with_no_method(&store, &old).await;
        let odd = old_session();
        for (name, scopes) in CORRUPT_KINDS {
            sqlx::query(&format!(
                "REPLACE INTO `{name_}` (id, user_id, secret_hash, created_at, expires_at, \
                 last_seen_at, token_name, token_scopes) VALUES (?, 'u', ?, ?, ?, ?, ?, ?)",
                name_ = tables.table("sessions")
            ))
            .bind(odd.id.to_string())
            .bind(odd.secret_hash.as_bytes().as_slice())
            .bind(micros(odd.created_at))
            .bind(micros(odd.expires_at))
            .bind(micros(odd.created_at))
            .bind(name)
            .bind(scopes)
            .execute(&pool)
            .await
            .expect("a row with corrupt API token columns");
            assert_corrupt(
                store.get(&odd.id, odd.created_at).await,
                &format!("token_name {name:?}, token_scopes {scopes:?}"),
            );
        }
    }
}
