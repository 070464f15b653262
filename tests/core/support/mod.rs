//! What the core tests share: a hasher that counts its work, a token store that is down, and
//! a mailer that records what it is handed.

pub(crate) mod counting_hasher;
pub(crate) mod down_store;
pub(crate) mod recorder;
