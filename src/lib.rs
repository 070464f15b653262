#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod audit;
mod authenticator;
#[cfg(feature = "axum")]
#[cfg_attr(docsrs, doc(cfg(feature = "axum")))]
pub mod axum;
mod clock;
#[cfg(feature = "conformance")]
#[cfg_attr(docsrs, doc(cfg(feature = "conformance")))]
pub mod conformance;
mod error;
mod hashing;
pub mod http;
mod password;
mod password_policy;
mod session;
pub mod store;
pub mod throttle;
mod token;
mod user;

pub use authenticator::{
    Authenticated, Authenticator, AuthenticatorBuilder, Login, Logout, Subject, MAX_EMAIL_LEN,
    MAX_PASSWORD_LEN,
};
pub use clock::{Clock, ManualClock, SystemClock};
pub use error::{Error, Field, HashError, Result, StoreError};
pub use password::{Argon2Hasher, PasswordHasher};
pub use password_policy::{
    CommonPasswords, PasswordBlocklist, PasswordPolicy, PasswordRejection, PasswordRule,
};
pub use session::{ClientInfo, Session, SessionPolicy, SessionView};
pub use store::{MemoryTokenStore, TokenStore};
pub use throttle::{MemoryThrottle, Throttle};
pub use token::{SecretHash, SessionId, Token, TOKEN_LEN};
pub use user::{
    normalize_email, DuplicateUser, MemoryUserStore, SetPasswordHash, User, UserId, UserRecord,
    UserStore,
};
