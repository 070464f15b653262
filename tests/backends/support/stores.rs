//! Shared helpers for the tests that need a PostgreSQL or Redis server: URLs from the
//! environment, a unique namespace per run, cleanup, and a clear failure when the server is
//! not running.

#[cfg(feature = "postgres")]
use std::time::Duration;

/// The PostgreSQL URL the tests use.
#[cfg(feature = "postgres")]
pub(crate) const POSTGRES_ENV: &str = "KEYCARD_POSTGRES_URL";
/// The Redis URL the tests use.
#[cfg(feature = "redis")]
pub(crate) const REDIS_ENV: &str = "KEYCARD_REDIS_URL";

#[cfg(feature = "postgres")]
pub(crate) fn postgres_url() -> String {
    std::env::var(POSTGRES_ENV)
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

#[cfg(feature = "redis")]
pub(crate) fn redis_url() -> String {
    std::env::var(REDIS_ENV).unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned())
}

/// Panics with instructions: the server a test needs is not running. Tests never skip.
pub(crate) fn unreachable(server: &str, url: &str, env: &str, error: &dyn std::fmt::Debug) -> ! {
    let how = match server {
        "PostgreSQL" => {
            "start it (e.g. `pg_ctlcluster 15 main start`, or `docker run -d -p 5432:5432 \
             -e POSTGRES_HOST_AUTH_METHOD=trust -e POSTGRES_DB=test postgres:16`)"
        }
        _ => "start it (e.g. `redis-server --daemonize yes`, or `docker run -d -p 6379:6379 redis:7`)",
    };
    panic!(
        "{server} is not reachable at {url}: {error:?}\n\
         These tests need a running {server} server: {how}, or set {env} to the URL of one."
    )
}

fn unique(tag: &str) -> String {
    format!("{tag}_{}_{:08x}", std::process::id(), rand::random::<u32>())
}

#[cfg(feature = "postgres")]
/// A fresh PostgreSQL schema for one test; dropped (with everything in it) on drop, even
/// when the test panics.
#[derive(Debug)]
pub(crate) struct PgSchema {
    pub(crate) url: String,
    pub(crate) name: String,
}

#[cfg(feature = "postgres")]
impl PgSchema {
    /// Checks that the server answers (panicking with instructions if not) and names a fresh
    /// schema; the stores' `migrate` creates it.
    pub(crate) async fn new() -> Self {
        let url = postgres_url();
        if let Err(e) = keycard::postgres::PostgresTokenStore::connect(&url).await {
            unreachable("PostgreSQL", &url, POSTGRES_ENV, &e);
        }
        Self {
            url,
            name: unique("keycard_test"),
        }
    }

    /// `schema.table`.
    pub(crate) fn table(&self, table: &str) -> String {
        format!("{}.{table}", self.name)
    }

    /// A token store on its own pool over `schema.sessions`, migrated.
    pub(crate) async fn token_store(&self) -> keycard::postgres::PostgresTokenStore {
        let store = keycard::postgres::PostgresTokenStore::connect(&self.url)
            .await
            .unwrap_or_else(|e| unreachable("PostgreSQL", &self.url, POSTGRES_ENV, &e))
            .with_table(&self.table("sessions"))
            .expect("valid table name");
        store.migrate().await.expect("migrate the sessions table");
        store
    }

    /// A throttle on its own pool over `schema.throttle`, migrated.
    pub(crate) async fn throttle(
        &self,
        limits: keycard::throttle::ThrottleLimits,
    ) -> keycard::postgres::PostgresThrottle {
        let throttle = keycard::postgres::PostgresThrottle::connect(&self.url, limits)
            .await
            .unwrap_or_else(|e| unreachable("PostgreSQL", &self.url, POSTGRES_ENV, &e))
            .with_table(&self.table("throttle"))
            .expect("valid table name");
        throttle
            .migrate()
            .await
            .expect("migrate the throttle table");
        throttle
    }

    #[cfg(feature = "conformance")]
    /// A second factor store on its own pool over `schema.totp` and
    /// `schema.recovery_codes`, migrated.
    pub(crate) async fn second_factor_store(&self) -> keycard::postgres::PostgresSecondFactorStore {
        let db = keycard::postgres::Postgres::connect(&self.url)
            .await
            .unwrap_or_else(|e| unreachable("PostgreSQL", &self.url, POSTGRES_ENV, &e));
        let store = db
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
    /// A passkey store on its own pool over `schema.passkeys`, migrated.
    pub(crate) async fn passkey_store(&self) -> keycard::postgres::PostgresPasskeyStore {
        let db = keycard::postgres::Postgres::connect(&self.url)
            .await
            .unwrap_or_else(|e| unreachable("PostgreSQL", &self.url, POSTGRES_ENV, &e));
        let store = db
            .passkey_store()
            .with_table(&self.table("passkeys"))
            .expect("valid table name");
        store.migrate().await.expect("migrate the passkeys table");
        store
    }

    /// A user store on its own pool over `schema.users`, migrated.
    pub(crate) async fn user_store(&self) -> keycard::postgres::PostgresUserStore {
        let store = keycard::postgres::PostgresUserStore::connect(&self.url)
            .await
            .unwrap_or_else(|e| unreachable("PostgreSQL", &self.url, POSTGRES_ENV, &e))
            .with_table(&self.table("users"))
            .expect("valid table name");
        store.migrate().await.expect("migrate the users table");
        store
    }
}

#[cfg(feature = "postgres")]
impl Drop for PgSchema {
    fn drop(&mut self) {
        let url = self.url.clone();
        let sql = format!("DROP SCHEMA IF EXISTS \"{}\" CASCADE", self.name);
        // Drop runs inside the test's runtime: clean up from a thread with its own.
        let cleanup = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async {
                let pool = sqlx::postgres::PgPoolOptions::new()
                    .max_connections(1)
                    .acquire_timeout(Duration::from_secs(5))
                    .connect(&url)
                    .await?;
                sqlx::raw_sql(&sql).execute(&pool).await?;
                pool.close().await;
                Ok::<_, sqlx::Error>(())
            })
        });
        match cleanup.join() {
            Ok(Ok(())) => {}
            other => eprintln!("could not drop test schema {}: {other:?}", self.name),
        }
    }
}

#[cfg(feature = "redis")]
/// A fresh Redis key prefix for one test; its keys are deleted on drop, even when the test
/// panics.
#[derive(Debug)]
pub(crate) struct RedisPrefix {
    pub(crate) url: String,
    pub(crate) prefix: String,
}

#[cfg(feature = "redis")]
impl RedisPrefix {
    /// Checks that the server answers (panicking with instructions if not) and names a fresh
    /// prefix.
    pub(crate) async fn new() -> Self {
        let url = redis_url();
        if let Err(e) = keycard::redis::RedisTokenStore::connect(&url).await {
            unreachable("Redis", &url, REDIS_ENV, &e);
        }
        Self {
            url,
            prefix: format!("{}:", unique("keycard-test")),
        }
    }

    /// A store on its own connection under this prefix.
    pub(crate) async fn token_store(&self) -> keycard::redis::RedisTokenStore {
        keycard::redis::RedisTokenStore::connect(&self.url)
            .await
            .unwrap_or_else(|e| unreachable("Redis", &self.url, REDIS_ENV, &e))
            .with_key_prefix(self.prefix.clone())
    }

    /// A throttle on its own connection, its keys under this prefix.
    pub(crate) async fn throttle(
        &self,
        limits: keycard::throttle::ThrottleLimits,
    ) -> keycard::redis::RedisThrottle {
        keycard::redis::RedisThrottle::connect(&self.url, limits)
            .await
            .unwrap_or_else(|e| unreachable("Redis", &self.url, REDIS_ENV, &e))
            .with_key_prefix(self.throttle_prefix())
    }

    /// The throttle's key prefix: under this prefix, so its keys are deleted too.
    pub(crate) fn throttle_prefix(&self) -> String {
        format!("{}throttle:", self.prefix)
    }

    /// The keys under this prefix.
    pub(crate) fn keys(&self) -> Vec<String> {
        let client = redis::Client::open(self.url.as_str()).expect("valid URL");
        let mut conn = client.get_connection().expect("connect");
        redis::cmd("KEYS")
            .arg(format!("{}*", self.prefix))
            .query(&mut conn)
            .expect("list keys")
    }
}

#[cfg(feature = "redis")]
impl Drop for RedisPrefix {
    fn drop(&mut self) {
        let keys = self.keys();
        if keys.is_empty() {
            return;
        }
        let client = redis::Client::open(self.url.as_str()).expect("valid URL");
        match client.get_connection() {
            Ok(mut conn) => {
                if let Err(e) = redis::cmd("DEL").arg(&keys).query::<()>(&mut conn) {
                    eprintln!("could not delete test keys under {}: {e}", self.prefix);
                }
            }
            Err(e) => eprintln!("could not delete test keys under {}: {e}", self.prefix),
        }
    }
}

/// The Redis Cluster node URLs the cluster tests use, comma-separated.
#[cfg(feature = "redis")]
pub(crate) const REDIS_CLUSTER_ENV: &str = "KEYCARD_REDIS_CLUSTER_URLS";

/// The seed node URLs of the test Redis Cluster (default: the three loopback nodes
/// `.ci/redis-cluster` starts).
#[cfg(feature = "redis")]
pub(crate) fn redis_cluster_urls() -> Vec<String> {
    std::env::var(REDIS_CLUSTER_ENV)
        .unwrap_or_else(|_| {
            "redis://127.0.0.1:7000,redis://127.0.0.1:7001,redis://127.0.0.1:7002".to_owned()
        })
        .split(',')
        .map(|u| u.trim().to_owned())
        .filter(|u| !u.is_empty())
        .collect()
}

#[cfg(feature = "redis")]
/// Panics with instructions: the Redis Cluster is not running. Tests never skip.
pub(crate) fn cluster_unreachable(urls: &[String], error: &dyn std::fmt::Debug) -> ! {
    panic!(
        "the Redis Cluster is not reachable at {urls:?}: {error:?}\n\
         These tests need a running Redis Cluster: start the local 3-master one with \
         `bash .ci/redis-cluster` (needs `redis-server`), or set {REDIS_CLUSTER_ENV} to the \
         comma-separated node URLs of one."
    )
}

#[cfg(feature = "redis")]
/// A fresh key prefix on the test Redis Cluster for one test; its keys (on every master) are
/// deleted on drop, even when the test panics.
#[derive(Debug)]
pub(crate) struct RedisClusterPrefix {
    pub(crate) urls: Vec<String>,
    pub(crate) prefix: String,
}

#[cfg(feature = "redis")]
impl RedisClusterPrefix {
    /// Checks that the cluster answers (panicking with instructions if not) and names a fresh
    /// prefix.
    pub(crate) async fn new() -> Self {
        let urls = redis_cluster_urls();
        match keycard::redis::RedisTokenStore::connect_cluster(&urls).await {
            Ok(store) => {
                if let Err(e) = store.ping().await {
                    cluster_unreachable(&urls, &e);
                }
            }
            Err(e) => cluster_unreachable(&urls, &e),
        }
        Self {
            urls,
            prefix: format!("{}:", unique("keycard-cluster-test")),
        }
    }

    /// A store on its own cluster connection under this prefix.
    pub(crate) async fn token_store(&self) -> keycard::redis::RedisTokenStore {
        keycard::redis::RedisTokenStore::connect_cluster(&self.urls)
            .await
            .unwrap_or_else(|e| cluster_unreachable(&self.urls, &e))
            .with_key_prefix(self.prefix.clone())
    }

    /// A throttle on its own cluster connection, its keys under this prefix.
    pub(crate) async fn throttle(
        &self,
        limits: keycard::throttle::ThrottleLimits,
    ) -> keycard::redis::RedisThrottle {
        keycard::redis::RedisThrottle::connect_cluster(&self.urls, limits)
            .await
            .unwrap_or_else(|e| cluster_unreachable(&self.urls, &e))
            .with_key_prefix(format!("{}throttle:", self.prefix))
    }

    /// The addresses (`host:port`) of the cluster's masters, from `CLUSTER NODES`.
    pub(crate) fn masters(&self) -> Vec<String> {
        let client = redis::Client::open(self.urls[0].as_str()).expect("valid URL");
        let mut conn = client
            .get_connection()
            .unwrap_or_else(|e| cluster_unreachable(&self.urls, &e));
        let nodes: String = redis::cmd("CLUSTER")
            .arg("NODES")
            .query(&mut conn)
            .expect("CLUSTER NODES");
        nodes
            .lines()
            .filter(|line| line.split(' ').nth(2).is_some_and(|f| f.contains("master")))
            .filter_map(|line| line.split(' ').nth(1))
            .filter_map(|addr| addr.split('@').next())
            .map(str::to_owned)
            .collect()
    }

    /// The keys under this prefix, per master (`host:port` -> keys).
    pub(crate) fn keys_by_master(&self) -> Vec<(String, Vec<String>)> {
        self.masters()
            .into_iter()
            .map(|addr| {
                let client = redis::Client::open(format!("redis://{addr}")).expect("valid URL");
                let mut conn = client.get_connection().expect("connect to a master");
                let keys: Vec<String> = redis::cmd("KEYS")
                    .arg(format!("{}*", self.prefix))
                    .query(&mut conn)
                    .expect("list keys");
                (addr, keys)
            })
            .collect()
    }

    /// The keys under this prefix, on every master.
    #[cfg(feature = "conformance")]
    pub(crate) fn keys(&self) -> Vec<String> {
        let mut keys: Vec<String> = self
            .keys_by_master()
            .into_iter()
            .flat_map(|(_, keys)| keys)
            .collect();
        keys.sort();
        keys
    }
}

#[cfg(feature = "redis")]
impl Drop for RedisClusterPrefix {
    fn drop(&mut self) {
        for (addr, keys) in self.keys_by_master() {
            let client = redis::Client::open(format!("redis://{addr}")).expect("valid URL");
            let Ok(mut conn) = client.get_connection() else {
                eprintln!("could not delete test keys under {} on {addr}", self.prefix);
                continue;
            };
            // One key per DEL: the keys of one master may sit in different slots.
            for key in keys {
                if let Err(e) = redis::cmd("DEL").arg(&key).query::<()>(&mut conn) {
                    eprintln!("could not delete test key {key}: {e}");
                }
            }
        }
    }
}
