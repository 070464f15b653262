//! What the HTTP tests share: the adapter contract every framework adapter is held to, a
//! loopback server with a real HTTP client, a token store that is down, and the `accounts_api`
//! app put together as its binary does.

#[cfg(feature = "axum")]
pub(crate) mod accounts;
#[cfg(any(feature = "axum", feature = "actix-web", feature = "tower"))]
pub(crate) mod adapter;
#[cfg(any(feature = "axum", feature = "actix-web", feature = "tower"))]
pub(crate) mod down_store;
#[cfg(any(feature = "axum", feature = "actix-web"))]
pub(crate) mod log;
#[cfg(any(feature = "axum", feature = "actix-web"))]
pub(crate) mod real_hashing;
#[cfg(any(feature = "axum", feature = "actix-web"))]
pub(crate) mod server;
#[cfg(feature = "smtp")]
pub(crate) mod smtp_sink;
