//! Existing users tables migrate in place to version 2 (`email_key`, `email_verified_at`) on
//! every SQL backend: a table created by version 1, with users stored the old way (the
//! address trimmed and lowercased), is upgraded by `migrate`, and the users still log in with
//! any spelling of the address, keep it, are unverified, and still hold the address against
//! a new registration; a key NFKC changes is made canonical unless another account has it. PostgreSQL and MySQL need their servers and fail, never skip, when one
//! is down.

use keycard::{
    AccountStore, Argon2Hasher, Authenticator, ClientInfo, EmailChange, Error, MemoryTokenStore,
    PasswordHasher, User,
};

const PASSWORD: &str = "correct horse battery staple";

/// Users as version 1 stored them (trimmed, lowercased): `(id, email)`. Lowercasing left
/// fullwidth letters as they were; NFKC folds them, so `migrate` rekeys the second user,
/// and the last two are one address under the new rule (the plain one keeps it).
const LEGACY: [(&str, &str); 4] = [
    ("7", "ann@example.com"),
    ("8", "\u{FF42}ob@example.com"),
    ("9", "carl@example.com"),
    ("10", "\u{FF43}arl@example.com"),
];

/// A PHC hash of [`PASSWORD`], cheap to verify.
fn old_hash() -> String {
    Argon2Hasher::insecure_for_tests()
        .hash(PASSWORD.as_bytes())
        .expect("hash")
}

/// Fills a version-1 migration template: `{table}` is `quoted`, `{name}` the bare `name`.
fn render(template: &str, quoted: &str, name: &str) -> String {
    template.replace("{table}", quoted).replace("{name}", name)
}

/// What a migrated store must do for the user `ann@example.com` stored by version 1.
async fn the_old_user_still_logs_in<U>(users: U)
where
    U: AccountStore<User = keycard::UserRecord> + Clone + 'static,
{
    let auth = Authenticator::builder(users.clone(), MemoryTokenStore::new())
        .password_hasher(Argon2Hasher::insecure_for_tests())
        .build();
    for spelling in [
        "ann@example.com",
        " Ann@Example.COM ",
        "\u{FF41}nn@example.com",
    ] {
        let login = auth
            .login(spelling, PASSWORD, ClientInfo::none())
            .await
            .unwrap_or_else(|e| panic!("the migrated user must log in as {spelling:?}: {e}"));
        assert_eq!(login.user.email(), "ann@example.com");
        assert!(!login.user.email_verified());
    }
    let client = ClientInfo::none().with_ip("192.0.2.9".parse().expect("ip"));
    let taken = auth
        .register(
            "ANN@example.com",
            "a long enough password for the policy 42",
            &client,
        )
        .await;
    assert!(matches!(taken, Err(Error::EmailTaken)), "{taken:?}");
    let login = auth
        .login("ann@example.com", PASSWORD, ClientInfo::none())
        .await
        .expect("login");
    let id = login.user.id();
    assert!(users
        .mark_email_verified(&id, "Ann@example.com", time::OffsetDateTime::now_utc())
        .await
        .expect("mark"));
    assert_eq!(
        users
            .change_email(
                &id,
                "Ann.Moved@Example.com",
                time::OffsetDateTime::now_utc()
            )
            .await
            .expect("change"),
        EmailChange::Changed
    );
    let moved = auth
        .login("ann.moved@example.com", PASSWORD, ClientInfo::none())
        .await
        .expect("login with the new address");
    assert_eq!(moved.user.email(), "Ann.Moved@Example.com");
    assert!(moved.user.email_verified());

    let bob = auth
        .login("BOB@example.com", PASSWORD, ClientInfo::none())
        .await
        .expect("a legacy fullwidth address is rekeyed to its canonical form");
    assert_eq!(bob.user.id().as_str(), "8");
    assert_eq!(bob.user.email(), "\u{FF42}ob@example.com");
    let carl = auth
        .login("\u{FF43}arl@example.com", PASSWORD, ClientInfo::none())
        .await
        .expect("the canonical address logs in");
    assert_eq!(
        carl.user.id().as_str(),
        "9",
        "the plain address keeps the key"
    );
    let stuck = users
        .find_by_email("\u{FF43}arl@example.com")
        .await
        .expect("find")
        .expect("the colliding legacy row keeps its old key");
    assert_eq!(stuck.id().as_str(), "10");
}

#[cfg(feature = "sqlite")]
mod sqlite {
    use super::*;
    use keycard::sqlite::driver::{params, Connection};
    use keycard::sqlite::SqliteUserStore;

    #[tokio::test]
    async fn a_version_1_table_migrates_in_place() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("keycard.db");
        {
            let conn = Connection::open(&path).expect("open");
            conn.execute_batch(
                "CREATE TABLE keycard_migrations (target TEXT NOT NULL, version INTEGER NOT NULL, \
                 applied_at INTEGER NOT NULL, PRIMARY KEY (target, version))",
            )
            .expect("tracking table");
            conn.execute_batch(&render(
                include_str!("../../migrations/sqlite/users_0001.sql"),
                "\"old_users\"",
                "old_users",
            ))
            .expect("version 1");
            conn.execute(
                "INSERT INTO keycard_migrations VALUES ('old_users', 1, 0)",
                params![],
            )
            .expect("record version 1");
            for (id, email) in LEGACY {
                conn.execute(
                    "INSERT INTO old_users (id, email, password_hash) VALUES (?1, ?2, ?3)",
                    params![id, email, old_hash()],
                )
                .expect("a user of version 1");
            }
        }
        let users = SqliteUserStore::open(&path)
            .await
            .expect("open")
            .with_table("old_users")
            .expect("valid");
        users.migrate().await.expect("migrate to version 2");
        users.migrate().await.expect("migrate is idempotent");
        the_old_user_still_logs_in(users).await;
    }
}

#[cfg(feature = "postgres")]
mod postgres {
    use super::*;
    use crate::support::stores::PgSchema;
    use keycard::postgres::PostgresUserStore;

    #[tokio::test]
    async fn a_version_1_table_migrates_in_place() {
        let schema = PgSchema::new().await;
        let users = PostgresUserStore::connect(&schema.url)
            .await
            .expect("connect")
            .with_table(&schema.table("users"))
            .expect("valid");
        let pool = users_pool(&schema).await;
        let table = format!("\"{}\".\"users\"", schema.name);
        sqlx::raw_sql(&format!(
            "CREATE SCHEMA \"{s}\"; \
             CREATE TABLE \"{s}\".keycard_migrations (target TEXT NOT NULL, version BIGINT NOT NULL, \
             applied_at TIMESTAMPTZ NOT NULL DEFAULT now(), PRIMARY KEY (target, version)); \
             INSERT INTO \"{s}\".keycard_migrations (target, version) VALUES ('users', 1);",
            s = schema.name
        ))
        .execute(&pool)
        .await
        .expect("tracking table");
        sqlx::raw_sql(&render(
            include_str!("../../migrations/postgres/users_0001.sql"),
            &table,
            "users",
        ))
        .execute(&pool)
        .await
        .expect("version 1");
        for (id, email) in LEGACY {
            sqlx::query(&format!(
                "INSERT INTO {table} (id, email, password_hash) VALUES ($1, $2, $3)"
            ))
            .bind(id)
            .bind(email)
            .bind(old_hash())
            .execute(&pool)
            .await
            .expect("a user of version 1");
        }
        users.migrate().await.expect("migrate to version 2");
        users.migrate().await.expect("migrate is idempotent");
        let versions: Vec<(i64,)> = sqlx::query_as(&format!(
            "SELECT version FROM \"{}\".keycard_migrations WHERE target = 'users' ORDER BY version",
            schema.name
        ))
        .fetch_all(&pool)
        .await
        .expect("versions");
        assert_eq!(versions, vec![(1,), (2,)]);
        the_old_user_still_logs_in(users).await;
    }

    async fn users_pool(schema: &PgSchema) -> sqlx::PgPool {
        sqlx::PgPool::connect(&schema.url).await.expect("connect")
    }
}

#[cfg(feature = "mysql")]
mod mysql {
    use super::*;
    use crate::support::mysql::MyTables;

    #[tokio::test]
    async fn a_version_1_table_migrates_in_place() {
        let tables = MyTables::new().await;
        let name = tables.table("users");
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
            include_str!("../../migrations/mysql/users_0001.sql"),
            &format!("`{name}`"),
            &name,
        ))
        .execute(&pool)
        .await
        .expect("version 1");
        for (id, email) in LEGACY {
            sqlx::query(&format!(
                "INSERT INTO `{name}` (id, email, password_hash, first_name, last_name) \
                 VALUES (?, ?, ?, '', '')"
            ))
            .bind(id)
            .bind(email)
            .bind(old_hash())
            .execute(&pool)
            .await
            .expect("a user of version 1");
        }
        let users = mysql.user_store().with_table(&name).expect("valid");
        users.migrate().await.expect("migrate to version 2");
        users.migrate().await.expect("migrate is idempotent");
        the_old_user_still_logs_in(users).await;
    }
}
