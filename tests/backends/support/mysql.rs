//! Shared helpers for the tests that need a MySQL or MariaDB server (`KEYCARD_MYSQL_URL`,
//! default `mysql://root@127.0.0.1:3306/test`): tables with a unique suffix per test, dropped
//! afterwards, and a clear failure (never a skip) when the server is not running.

use std::time::Duration;

use keycard::mysql::{Mysql, MysqlThrottle, MysqlTokenStore, MysqlUserStore};
use keycard::throttle::ThrottleLimits;

/// The environment variable naming the server.
pub(crate) const MYSQL_ENV: &str = "KEYCARD_MYSQL_URL";

/// The URL the tests use.
pub(crate) fn mysql_url() -> String {
    std::env::var(MYSQL_ENV).unwrap_or_else(|_| "mysql://root@127.0.0.1:3306/test".to_owned())
}

/// Panics with instructions: the server is not running. Tests never skip.
pub(crate) fn unreachable(url: &str, error: &dyn std::fmt::Debug) -> ! {
    panic!(
        "MySQL / MariaDB is not reachable at {url}: {error:?}\n\
         These tests need a running MariaDB or MySQL server with a database `test`: start it \
         (e.g. `apt-get install mariadb-server && service mariadb start`, then \
         `mysql -u root -e 'CREATE DATABASE IF NOT EXISTS test'`; or `docker run -d -p \
         3306:3306 -e MARIADB_ALLOW_EMPTY_ROOT_PASSWORD=1 -e MARIADB_DATABASE=test \
         mariadb:11`), or set {MYSQL_ENV} to the URL of one."
    )
}

/// Tables of one test (`<kind>_<suffix>`), dropped on drop with their migration records,
/// even when the test panics.
#[derive(Debug)]
pub(crate) struct MyTables {
    pub(crate) url: String,
    pub(crate) suffix: String,
}

impl MyTables {
    /// Checks that the server answers (panicking with instructions if not) and picks a
    /// fresh suffix.
    pub(crate) async fn new() -> Self {
        let url = mysql_url();
        let mysql = Mysql::connect(&url)
            .await
            .unwrap_or_else(|e| unreachable(&url, &e));
        if let Err(e) = mysql.ping().await {
            unreachable(&url, &e);
        }
        Self {
            url,
            suffix: format!("{}_{:08x}", std::process::id(), rand::random::<u32>()),
        }
    }

    /// The name of this test's table of `kind`.
    pub(crate) fn table(&self, kind: &str) -> String {
        format!("kc_{kind}_{}", self.suffix)
    }

    /// A new handle on its own pool.
    pub(crate) async fn mysql(&self) -> Mysql {
        Mysql::connect(&self.url)
            .await
            .unwrap_or_else(|e| unreachable(&self.url, &e))
    }

    /// A token store on its own pool over this test's sessions table, migrated.
    pub(crate) async fn token_store(&self) -> MysqlTokenStore {
        let store = self
            .mysql()
            .await
            .token_store()
            .with_table(&self.table("sessions"))
            .expect("valid table name");
        store.migrate().await.expect("migrate the sessions table");
        store
    }

    /// A user store on its own pool over this test's users table, migrated.
    pub(crate) async fn user_store(&self) -> MysqlUserStore {
        let store = self
            .mysql()
            .await
            .user_store()
            .with_table(&self.table("users"))
            .expect("valid table name");
        store.migrate().await.expect("migrate the users table");
        store
    }

    #[cfg(feature = "conformance")]
    /// A second factor store on its own pool over this test's TOTP and recovery codes
    /// tables, migrated.
    pub(crate) async fn second_factor_store(&self) -> keycard::mysql::MysqlSecondFactorStore {
        let store = self
            .mysql()
            .await
            .second_factor_store()
            .with_tables(&self.table("totp"), &self.table("recovery_codes"))
            .expect("valid table names");
        store
            .migrate()
            .await
            .expect("migrate the second factor tables");
        store
    }

    #[cfg(feature = "conformance")]
    /// A passkey store on its own pool over this test's passkeys table, migrated.
    pub(crate) async fn passkey_store(&self) -> keycard::mysql::MysqlPasskeyStore {
        let store = self
            .mysql()
            .await
            .passkey_store()
            .with_table(&self.table("passkeys"))
            .expect("valid table name");
        store.migrate().await.expect("migrate the passkeys table");
        store
    }

    /// A throttle on its own pool over this test's throttle table, migrated.
    pub(crate) async fn throttle(&self, limits: ThrottleLimits) -> MysqlThrottle {
        let throttle = self
            .mysql()
            .await
            .throttle(limits)
            .with_table(&self.table("throttle"))
            .expect("valid table name");
        throttle
            .migrate()
            .await
            .expect("migrate the throttle table");
        throttle
    }
}

impl Drop for MyTables {
    fn drop(&mut self) {
        let url = self.url.clone();
        let tables: Vec<String> = [
            "sessions",
            "users",
            "throttle",
            "totp",
            "recovery_codes",
            "passkeys",
        ]
        .iter()
        .map(|kind| self.table(kind))
        .collect();
        // Drop runs inside the test's runtime: clean up from a thread with its own.
        let cleanup = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async {
                let pool = sqlx::mysql::MySqlPoolOptions::new()
                    .max_connections(1)
                    .acquire_timeout(Duration::from_secs(5))
                    .connect(&url)
                    .await?;
                for table in &tables {
                    sqlx::raw_sql(&format!("DROP TABLE IF EXISTS `{table}`"))
                        .execute(&pool)
                        .await?;
                    // The records table may not exist if no migration ran.
                    let _ = sqlx::query("DELETE FROM keycard_migrations WHERE target = ?")
                        .bind(table)
                        .execute(&pool)
                        .await;
                }
                pool.close().await;
                Ok::<_, sqlx::Error>(())
            })
        });
        if let Ok(Err(e)) = cleanup.join() {
            eprintln!("could not drop the test tables: {e}");
        }
    }
}
