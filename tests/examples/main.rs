//! The example programs as their users run them: every example server binary (its address,
//! flags, `--store`, shutdown on SIGINT and SIGTERM, each actix-web twin answering as its axum
//! original), the servers keeping users and sessions in a SQLite file across restarts, and
//! `custom_user_table`'s user store held to the `UserStore` contract.
//!
//! The server binaries are built by the test itself with its own features (a no-op after
//! `cargo test` built them); those modules need `axum` or `actix-web`, on Unix.
//! `custom_user_table` needs `sqlite` and `conformance`. No server.

#[cfg(all(any(feature = "axum", feature = "actix-web"), unix))]
mod support;

// The example is compiled from its own source: the test holds its `Accounts` store to the
// `UserStore` contract in process, which running the binary cannot do.
#[cfg(all(feature = "sqlite", feature = "conformance"))]
#[path = "../../examples/custom_user_table.rs"]
mod custom_user_table_example;

#[cfg(all(any(feature = "axum", feature = "actix-web"), unix))]
mod binaries;
#[cfg(all(feature = "sqlite", feature = "conformance"))]
mod custom_user_table;
#[cfg(all(any(feature = "axum", feature = "actix-web"), feature = "sqlite", unix))]
mod sqlite_store;
