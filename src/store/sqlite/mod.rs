//! SQLite token and user stores (feature `sqlite`): embedded, persistent, one file.
//!
//! One job per file: `pool` (the connection pool and its settings), `migrate` (the migration
//! runner), `tokens` (the token store) and `users` (the user store). The SQL shared with
//! PostgreSQL lives in `store::sql`.

mod migrate;
mod pool;
mod tokens;
mod users;

pub(crate) use migrate::migrate;
pub use pool::SqliteOptions;
pub(crate) use pool::{backend, Pool};
pub use tokens::SqliteTokenStore;
pub use users::SqliteUserStore;

#[cfg(test)]
mod tests;
