//! What the backend tests share: a fresh PostgreSQL schema, Redis key prefix, Redis Cluster
//! prefix or set of MySQL tables per test, cleaned up on drop, and a clear failure with
//! instructions when a server is not running.

#[cfg(feature = "mysql")]
pub(crate) mod mysql;
#[cfg(any(feature = "postgres", feature = "redis"))]
pub(crate) mod stores;
