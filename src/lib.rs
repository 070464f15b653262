#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod account;
mod account_store;
#[cfg(feature = "actix-web")]
#[cfg_attr(docsrs, doc(cfg(feature = "actix-web")))]
pub mod actix_web;
mod amr;
pub mod api_tokens;
pub mod audit;
mod authenticator;
#[cfg(feature = "axum")]
#[cfg_attr(docsrs, doc(cfg(feature = "axum")))]
pub mod axum;
mod clock;
#[cfg(feature = "conformance")]
#[cfg_attr(docsrs, doc(cfg(feature = "conformance")))]
pub mod conformance;
mod email;
mod error;
mod hashing;
pub mod http;
mod limits;
pub mod mail;
pub mod mfa;
#[cfg(feature = "mysql")]
#[cfg_attr(docsrs, doc(cfg(feature = "mysql")))]
pub mod mysql;
pub mod one_time;
mod password;
mod password_policy;
#[cfg(feature = "postgres")]
#[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
pub mod postgres;
#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub mod redis;
mod registration;
mod session;
#[cfg(any(feature = "sqlite", feature = "postgres", feature = "mysql"))]
#[cfg_attr(
    not(any(feature = "sqlite", feature = "postgres")),
    allow(dead_code, unused_variables)
)]
mod sql;
#[cfg(feature = "sqlite")]
#[cfg_attr(docsrs, doc(cfg(feature = "sqlite")))]
pub mod sqlite;
pub mod store;
#[cfg(test)]
mod test_support;
pub mod throttle;
#[cfg(any(
    feature = "sqlite",
    feature = "postgres",
    feature = "redis",
    feature = "mysql"
))]
mod time_codec;
mod token;
#[cfg(feature = "tower")]
#[cfg_attr(docsrs, doc(cfg(feature = "tower")))]
pub mod tower;
mod user;

pub use account_store::{AccountStore, EmailChange};
pub use amr::{AuthMethod, AuthMethods};
pub use authenticator::{
    Authenticated, Authenticator, AuthenticatorBuilder, CapPolicy, Login, LoginOptions, Logout,
    PasswordChanged, SessionCap, Subject,
};
pub use clock::{Clock, ManualClock, SystemClock};
pub use email::{check_email, EmailRejection};
pub use error::{
    Error, Field, HashError, HashErrorKind, RandomnessError, Result, StoreError, ThrottleError,
    TokenError,
};
pub use limits::{MAX_EMAIL_LEN, MAX_PASSWORD_LEN};
pub use password::{Argon2Hasher, PasswordHasher};
pub use password_policy::{
    CommonPasswords, PasswordBlocklist, PasswordContext, PasswordList, PasswordPolicy,
    PasswordRejection, PasswordRule,
};
pub use registration::{NewUser, Registered, UserRegistry};
pub use session::{ClientInfo, Session, SessionKind, SessionPolicy, SessionView};
pub use store::{MemoryTokenStore, TokenStore};
pub use throttle::{MemoryThrottle, Throttle};
pub use token::{InvalidTokenPrefix, SecretHash, SessionId, Token, TokenFormat, TOKEN_LEN};
pub use user::{
    normalize_email, DuplicateUser, MemoryUserStore, SetEmail, SetPasswordHash, User, UserId,
    UserIdTypeError, UserRecord, UserStore,
};

/// The `async_trait` attribute, re-exported: put `#[keycard::async_trait]` on your
/// [`UserStore`] and [`TokenStore`] implementations without depending on the crate yourself.
pub use async_trait::async_trait;
