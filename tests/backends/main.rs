//! The stores and throttles on every backend: the `TokenStore`, `UserStore`, `Throttle` and
//! `OneTimeTokenStore` contract suites on memory, SQLite, PostgreSQL, MySQL / MariaDB, Redis and Redis Cluster,
//! the `SecondFactorStore` and `PasskeyStore` suites on memory, SQLite, PostgreSQL and
//! MySQL / MariaDB;
//! each backend's own behaviour (migrations, purging, key layout); the backend handles; two
//! instances over one database (`multi_instance`), a server going away and coming back
//! (`outage`), per-user session caps, the validation cache and its revocation channels, and
//! the shared stores serving actix-web's per-worker runtimes.
//!
//! Each module runs under the features it needs. The PostgreSQL, MySQL, Redis and Redis
//! Cluster modules need those servers (`KEYCARD_POSTGRES_URL`, `KEYCARD_MYSQL_URL`,
//! `KEYCARD_REDIS_URL`, `KEYCARD_REDIS_CLUSTER_URLS`; defaults on 127.0.0.1) and fail, never
//! skip, when one is down. Every test works in its own schema, tables or key prefix.

mod support;

#[cfg(all(
    feature = "actix-web",
    feature = "sqlite",
    feature = "postgres",
    feature = "redis"
))]
mod actix_workers;
#[cfg(feature = "conformance")]
mod conformance;
#[cfg(any(feature = "postgres", feature = "sqlite", feature = "redis"))]
mod handles;
#[cfg(any(
    feature = "postgres",
    feature = "redis",
    feature = "sqlite",
    feature = "mysql"
))]
mod multi_instance;
#[cfg(all(feature = "mysql", feature = "conformance"))]
mod mysql;
#[cfg(feature = "conformance")]
mod one_time_tokens;
#[cfg(any(feature = "postgres", feature = "redis", feature = "mysql"))]
mod outage;
#[cfg(feature = "conformance")]
mod passkeys;
#[cfg(all(feature = "postgres", feature = "conformance"))]
mod postgres;
#[cfg(all(feature = "redis", feature = "conformance"))]
mod redis_cluster;
#[cfg(all(feature = "redis", feature = "conformance"))]
mod redis_store;
#[cfg(feature = "conformance")]
mod second_factors;
#[cfg(all(feature = "sqlite", feature = "postgres", feature = "redis"))]
mod session_caps;
#[cfg(any(feature = "sqlite", feature = "postgres", feature = "mysql"))]
mod sessions_amr;
#[cfg(feature = "conformance")]
mod throttle_conformance;
#[cfg(all(feature = "postgres", feature = "conformance"))]
mod throttle_postgres;
#[cfg(all(feature = "redis", feature = "conformance"))]
mod throttle_redis;
#[cfg(feature = "conformance")]
mod user_store_conformance;
#[cfg(all(feature = "postgres", feature = "conformance"))]
mod user_store_postgres;
#[cfg(any(feature = "sqlite", feature = "postgres", feature = "mysql"))]
mod users_email_key;
mod validation_cache;
