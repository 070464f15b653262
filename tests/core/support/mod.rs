//! What the core tests share: a hasher that counts its work, and a token store that is down.

pub(crate) mod counting_hasher;
pub(crate) mod down_store;
