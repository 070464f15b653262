//! The core: login, logout, validate, expire, the session lifecycle, token formats, abuse,
//! the password policy and the HTTP mapping table, all over the in-memory stores. Needs no
//! feature and no server: `cargo test --test core`.

#[cfg(feature = "passkeys")]
#[path = "../shared/soft_passkey.rs"]
mod soft_passkey;
mod support;

mod abuse;
mod account_flows;
mod api_tokens;
mod authenticator;
mod http_mapping;
mod lifecycle;
mod mail;
#[cfg(feature = "passkeys")]
mod passkeys;
mod password_blocklist;
mod second_factors;
mod throttle_nist_cap;
mod tokens;
