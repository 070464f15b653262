//! What the HTTP tests share: the adapter contract every framework adapter is held to, a
//! loopback server with a real HTTP client, and a token store that is down.

#[cfg(any(feature = "axum", feature = "actix-web", feature = "tower"))]
pub(crate) mod adapter;
#[cfg(any(feature = "axum", feature = "actix-web", feature = "tower"))]
pub(crate) mod down_store;
#[cfg(any(feature = "axum", feature = "actix-web"))]
pub(crate) mod server;
