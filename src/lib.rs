//! Token-session authentication for Rust web services: log a user in with email and
//! password, hand back an opaque bearer token, check that token on every request, log out,
//! and let sessions expire; with the account flows around it (registration, email
//! verification, password reset by mail), second factors and passkeys. The core knows no web
//! framework; the adapters for axum, actix-web and tower map its typed errors to HTTP.
//!
//! # What keycard is, and is not
//!
//! keycard is a library that runs inside your service and owns:
//!
//! - **sessions**: login, [`validate`](Authenticator::validate) on every request, logout,
//!   absolute and idle expiry, session lists, revocation, "confirm it's you" and step-up
//!   checks. A token is `<session id>.<secret>` (128 + 256 random bits); the stores keep only
//!   a digest of the secret ([`Token`], [`Session`], [`TokenStore`]);
//! - **passwords**: argon2id hashing off the async executor with bounded memory and queue
//!   ([`Argon2Hasher`]), a password policy with a common-password blocklist
//!   ([`PasswordPolicy`]), and login throttling before any lookup or hashing
//!   ([`throttle`]);
//! - **accounts**: registration that does not reveal who has an account, email verification,
//!   forgot / reset password, email sign-in links and email change ([`account`]), on
//!   single-use [one-time tokens](one_time), with the **mail** they send: a queue off the
//!   request path, a replaceable renderer and an SMTP sender ([`mail`]);
//! - **second factors**: TOTP authenticator apps with recovery codes, and **passkeys**
//!   (WebAuthn) as a second factor or a passwordless login ([`mfa`]);
//! - **API tokens**: named, scoped, revocable personal access tokens for scripts and
//!   machines, which cannot manage the account ([`api_tokens`]);
//! - **the HTTP edge**: extractors and a layer for three frameworks, three wire protocols,
//!   bearer tokens and session cookies (with a cross-site request check), the client's
//!   address behind your proxies ([`http`]), and audit events ([`audit`]);
//! - **storage** for all of it: in memory, SQLite, PostgreSQL, MySQL / MariaDB and Redis,
//!   every backend held to one contract suite ([`conformance`][mod-conformance]).
//!
//! It is **not**:
//!
//! - an OAuth 2.0 or OpenID Connect provider or client: no authorization codes, no "sign in
//!   with ...", no JWTs. Tokens are opaque and each validate asks the store (one round trip,
//!   or none with the [validation cache](store::CachedTokenStore));
//! - authorization: no roles or permissions. keycard tells a handler who the user is and how
//!   the session was authenticated ([`Session::amr`]); what the user may do is your code;
//! - a schema for your application's users: it needs an id, an email and a password hash
//!   ([`User`]). Keep them in keycard's own users table, or read them from yours through
//!   [`UserStore`]; your profile data stays in your tables;
//! - a session store for arbitrary data (a session holds no key-value map), a user
//!   interface (no login pages: the HTTP layer answers JSON), or a general rate limiter (its
//!   limits count logins, registrations, codes and account mail).
//!
//! # Install
//!
//! One framework feature, plus a backend feature for every server that keeps your sessions
//! and users (without one, everything lives in memory and is gone at exit):
//!
//! ```sh
//! cargo add keycard --features axum        # axum 0.8: extractors, typed rejections
//! cargo add keycard --features actix-web   # actix-web 4: extractors, ResponseError
//! cargo add keycard --features tower       # a tower Layer, for any tower-based server
//!
//! cargo add keycard --features sqlite      # SQLite: one file, bundled (nothing to install)
//! cargo add keycard --features postgres    # PostgreSQL, through sqlx 0.8
//! cargo add keycard --features mysql       # MySQL / MariaDB, through sqlx 0.8
//! cargo add keycard --features redis       # Redis or Redis Cluster (sessions, throttle; no users)
//!
//! cargo add keycard --features smtp        # send account mail over SMTP
//! cargo add keycard --features passkeys    # passkeys (WebAuthn); needs OpenSSL's headers
//! cargo add keycard --features uuid        # UserId from and to uuid::Uuid
//! cargo add keycard --dev --features conformance   # the contract suites, for your own stores
//! ```
//!
//! Features combine (`--features axum,postgres,smtp`). keycard runs on Tokio, the runtime of
//! all three frameworks: `cargo add tokio --features macros,rt-multi-thread` for a
//! `#[tokio::main]`.
//!
//! # Quick start
//!
//! The whole session lifecycle on the in-memory stores:
//!
//! ```
//! use keycard::{Authenticator, ClientInfo, Error, MemoryTokenStore, MemoryUserStore, UserRecord};
//!
//! #[tokio::main]
//! async fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     let auth = Authenticator::builder(MemoryUserStore::new(), MemoryTokenStore::new()).build();
//!
//!     // A user: hash the password (argon2id, off the async executor) and store the record.
//!     // (`auth.register(..)` does this with the password policy and a registration limit.)
//!     let hash = auth.hash_password("correct horse battery staple").await?;
//!     auth.users()
//!         .insert(UserRecord::new(1_i64, "ann@example.com", hash).with_name("Ann", "Lee"))?;
//!
//!     // Login: the token goes to the client, once; keycard keeps only its digest.
//!     let login = auth
//!         .login("ann@example.com", "correct horse battery staple", ClientInfo::none())
//!         .await?;
//!     let token = login.token.expose_secret().to_owned();
//!
//!     // Every request: validate the token the client sent back.
//!     let me = auth.validate(&token).await?;
//!     assert_eq!(me.user.first_name, "Ann");
//!
//!     // A wrong password is a typed error (the HTTP layer renders it as 401).
//!     let wrong = auth.login("ann@example.com", "guess", ClientInfo::none()).await;
//!     assert!(matches!(wrong, Err(Error::InvalidCredentials)));
//!
//!     // Logout: the token is dead from now on.
//!     assert!(auth.logout(&token).await?.destroyed());
//!     assert!(matches!(auth.validate(&token).await, Err(Error::InvalidToken)));
//!     Ok(())
//! }
//! ```
//!
//! In a web app, the framework's extractors do the same work. With axum (feature `axum`),
//! `POST /login`, a protected `GET /me` and `POST /logout`, answered as bearer tokens and
//! RFC 9457 problem details ([`http::StandardApi`]):
//!
//! ```
//! # #[cfg(feature = "axum")] fn main() {
//! use axum::routing::{get, post};
//! use axum::Router;
//! use keycard::axum::{AuthState, CurrentUser, LoginRequest, LogoutRequest};
//! use keycard::http::{Response, StandardApi};
//! use keycard::{Authenticator, MemoryTokenStore, MemoryUserStore, UserRecord};
//!
//! // `{"email", "password"}` (JSON or form) in, `{"token", "expires_at"}` out.
//! async fn login(request: LoginRequest<UserRecord>) -> Response {
//!     request.login().await
//! }
//!
//! // `Authorization: Bearer <token>`; without a live token the extractor answers 401.
//! async fn me(me: CurrentUser<UserRecord>) -> String {
//!     me.user.email
//! }
//!
//! async fn logout(request: LogoutRequest<UserRecord>) -> Response {
//!     request.logout().await
//! }
//!
//! let users = MemoryUserStore::<UserRecord>::new();
//! let auth = Authenticator::builder(users, MemoryTokenStore::new()).build();
//! let app: Router = Router::new()
//!     .route("/login", post(login))
//!     .route("/me", get(me))
//!     .route("/logout", post(logout))
//!     .with_state(AuthState::new(auth, StandardApi));
//! # let _ = app; }
//! # #[cfg(not(feature = "axum"))] fn main() {}
//! ```
//!
//! The smallest real app is this one as a server, in one file: `examples/minimal_axum.rs`
//! in the package's source (and in the repository). From a checkout, `cargo run --example
//! minimal_axum --features axum` serves it and prints the `curl` lines to try it. The same
//! routes on actix-web and behind a tower layer: the [`actix_web`][mod-actix_web] and
//! [`tower`][mod-tower] module docs.
//!
//! # Next steps
//!
//! - **Sessions that survive a restart**: open a backend's handle once and build the
//!   authenticator from it: `Sqlite::open(path)`, `Postgres::connect(url)`,
//!   `Mysql::connect(url)` or `Redis::connect(url)`, then `migrate()` (SQL) and
//!   `authenticator()` (`authenticator(users)` on Redis, which keeps no users). Its login
//!   throttle then counts in the backend, shared by every instance of your service. See
//!   [`sqlite`][mod-sqlite], [`postgres`][mod-postgres], [`mysql`][mod-mysql] and
//!   [`redis`][mod-redis].
//! - **Your own users table**: implement [`User`] and [`UserStore`] (three methods) over it,
//!   with [`UserRegistry`] for [`register`](Authenticator::register) and [`AccountStore`] for
//!   the account flows; the [`UserStore`] docs show a whole one, and
//!   `examples/custom_user_table.rs` one over SQLite.
//! - **Purge expired sessions**: [`Authenticator::spawn_expiry_task`], or
//!   [`Authenticator::expire`] from your scheduler.
//! - **Sign-up, verification and password reset by mail**: [`account::Accounts`], over HTTP
//!   with [`http::HttpAccounts`]; mail over SMTP with the `smtp` feature.
//! - **Second factors and passkeys**: [`AuthenticatorBuilder::second_factors`] and the
//!   [`mfa`] module.
//! - **Tokens for scripts and CI**: [`AuthenticatorBuilder::api_tokens`] and the
//!   [`api_tokens`] module (scopes, checked by [`Authenticator::require_scope`] and the
//!   adapters).
//! - **Browsers**: the session cookie and its cross-site request check,
//!   [`http::SessionCookie`]; behind a reverse proxy, [`http::TrustedProxies`].
//!
//! # Features
//!
//! No feature is on by default. "Crates" is how many crates the feature adds to the
//! dependency graph on its own (normal and build dependencies, counted with `cargo tree` on
//! the crate's lock file), over the core's 83; most are shared with what your application
//! already uses (an axum app has axum's).
//!
//! | feature | adds | needs | crates |
//! |---|---|---|---|
//! | (none) | the core ([`Authenticator`]), in-memory stores for everything, the framework-neutral [`http`] layer with its three protocols, the [`account`] flows, the [`mail`] queue and renderer, TOTP and recovery codes ([`mfa`]) | Tokio | 83 |
//! | `axum` | [`axum`][mod-axum]: extractors, typed rejections, `no_store` | axum 0.8 | +26 |
//! | `actix-web` | [`actix_web`][mod-actix_web]: extractors, `ResponseError`, `configure` | actix-web 4 (without its default features) | +76 |
//! | `tower` | [`tower`][mod-tower]: `AuthLayer`, for any tower-based server | tower-layer and tower-service 0.3 | +4 |
//! | `sqlite` | [`sqlite`][mod-sqlite]: every store and the throttle in one SQLite file | rusqlite, with SQLite compiled from C: a C compiler | +14 |
//! | `postgres` | [`postgres`][mod-postgres]: every store, the throttle, `LISTEN/NOTIFY` revocation | sqlx 0.8, without TLS (enable an sqlx TLS feature in your own `Cargo.toml` for it) | +73 |
//! | `mysql` | [`mysql`][mod-mysql]: every store and the throttle, on MySQL or MariaDB | sqlx 0.8, without TLS (as for `postgres`) | +86 |
//! | `redis` | [`redis`][mod-redis]: sessions, one-time tokens, the throttle, pub/sub revocation; standalone or Redis Cluster; no user store | the redis crate 0.32 | +51 |
//! | `smtp` | `mail::SmtpMailer`: account mail over SMTP, implicit TLS or STARTTLS (plain SMTP only to loopback) | lettre 0.11 with rustls (ring: a C compiler) and the Mozilla roots | +54 |
//! | `passkeys` | `mfa::Passkeys` and the passkey stores: WebAuthn passwordless login and second factor | webauthn-rs 0.5, which links OpenSSL: its headers and `pkg-config` to build (Debian: `apt-get install libssl-dev pkg-config`), libssl at run time | +68 |
//! | `uuid` | [`UserId`] from and to `uuid::Uuid` | uuid 1 | +1 |
//! | `conformance` | [`conformance`][mod-conformance]: the contract suites for token, user, one-time, second-factor and passkey stores and throttles | for your tests: put it under `[dev-dependencies]` | +5 |
//!
//! # Modules
//!
//! - The crate root: [`Authenticator`] (built with [`Authenticator::builder`], then
//!   [`AuthenticatorBuilder`]'s settings: lifetimes, [`SessionPolicy`], [`SessionCap`],
//!   [`TokenFormat`], [`PasswordPolicy`], the throttle), what its calls return ([`Login`],
//!   [`Authenticated`], [`Session`], [`SessionView`], [`Error`]), the user side ([`User`],
//!   [`UserStore`], [`UserRegistry`], [`AccountStore`], [`UserRecord`] and
//!   [`MemoryUserStore`]) and [`ClientInfo`], the request's address and user agent.
//! - [`store`]: where sessions live, the [`TokenStore`] contract, [`MemoryTokenStore`] and the
//!   validation cache ([`store::CachedTokenStore`]).
//! - [`throttle`]: login throttling ([`Throttle`], [`MemoryThrottle`], the limits).
//! - [`http`]: the framework-neutral HTTP layer: [`http::HttpAuth`], where tokens are found,
//!   cookies, trusted proxies, the wire protocols ([`http::StandardApi`],
//!   [`http::SessionsApi`], [`http::LoginApi`], or yours), [`http::HttpAccounts`].
//! - [`axum`][mod-axum], [`actix_web`][mod-actix_web], [`tower`][mod-tower]: one adapter
//!   per framework (features `axum`, `actix-web`, `tower`).
//! - [`account`]: registration, email verification, password reset, sign-in links and email
//!   change ([`account::Accounts`]).
//! - [`one_time`]: the single-use tokens in account links.
//! - [`mail`]: the account mail, its rendering and its queue; SMTP with `smtp`.
//! - [`mfa`]: TOTP, recovery codes, the second-factor store; passkeys with `passkeys`.
//! - [`api_tokens`]: personal access tokens: [`api_tokens::ApiTokens`] (the configuration),
//!   [`api_tokens::Scope`] and [`api_tokens::Scopes`], what a listing shows
//!   ([`api_tokens::ApiTokenView`]).
//! - [`sqlite`][mod-sqlite], [`postgres`][mod-postgres], [`mysql`][mod-mysql],
//!   [`redis`][mod-redis]: one module per backend, each with one handle that opens the
//!   connection once and hands out every store (features of the same names).
//! - [`audit`]: the security events keycard logs, under the target `keycard::audit`.
//! - [`conformance`][mod-conformance]: the contract suites (feature `conformance`).
//!
//! # Supported versions
//!
//! | dependency | versions |
//! |---|---|
//! | Rust | 1.89 or newer (the crate's `rust-version`) |
//! | Tokio | 1 |
//! | axum | 0.8 |
//! | actix-web | 4 (4.4 or newer) |
//! | tower | tower-layer and tower-service 0.3 (the traits of tower 0.4 and 0.5), over `http` 1 requests and responses; tested with tower 0.5 and axum 0.8 |
//! | sqlx | 0.8 (`postgres`, `mysql`; re-exported as `keycard::postgres::driver`, `keycard::mysql::driver`) |
//! | redis (crate) | 0.32 (re-exported as `keycard::redis::driver`) |
//! | rusqlite | 0.32, with its bundled SQLite 3.46 (re-exported as `keycard::sqlite::driver`) |
//!
//! The servers the test suite runs against (Debian 12's packages); older releases are not
//! tested:
//!
//! | server | tested | notes |
//! |---|---|---|
//! | PostgreSQL | 15 | |
//! | MariaDB | 10.11 | MySQL 8 speaks the same SQL but is not tested |
//! | Redis | 7.0, standalone | the scripts need Redis 5 or newer |
//! | Redis Cluster | 7.0, three masters | every script touches one key or one hash slot |
//! | SQLite | 3.46, bundled | nothing to install |
//!
//! # Debug builds: optimise the password hash
//!
//! A dependency's profile settings do not reach its dependents, so in your debug builds
//! argon2 runs unoptimised, about 20 times slower: every login and registration of `cargo
//! run` takes about half a second. keycard logs one warning saying so the first time a hash
//! takes over 200 ms in a debug build. Add to your `Cargo.toml` (the workspace root's):
//!
//! ```toml
//! [profile.dev.package.argon2]
//! opt-level = 3
//! [profile.dev.package.blake2]
//! opt-level = 3
//! ```
//!
//! # Logging: install a tracing subscriber
//!
//! keycard reports through [`tracing`](https://docs.rs/tracing): server-side failures (a
//! store that is down, a mail not sent, an adapter's missing configuration), the debug-build
//! warning above, and its [`audit`] events (logins, failures, throttling, revocations). With
//! no subscriber installed they are shown nowhere: install one at start-up, for example with
//! the `tracing-subscriber` crate (`cargo add tracing-subscriber`), first thing in `main`:
//!
//! ```
//! tracing_subscriber::fmt::init();
//! ```
//!
//! Filter on the target `keycard::audit` to send the security events to their own log.
//!
//! # Safety and errors
//!
//! `#![forbid(unsafe_code)]`. Every fallible call returns a typed error ([`Error`],
//! [`StoreError`], ...) that says what failed; HTTP answers never carry backend detail, and no
//! `Debug` output shows a token, a password, a hash or an attempted email.
//!
// Links to the modules behind a feature: the module when the feature is on (docs.rs builds
// with every feature), else the feature table, so that `cargo doc` with any features is clean.
#![cfg_attr(feature = "axum", doc = "[mod-axum]: mod@crate::axum")]
#![cfg_attr(not(feature = "axum"), doc = "[mod-axum]: #features")]
#![cfg_attr(feature = "actix-web", doc = "[mod-actix_web]: mod@crate::actix_web")]
#![cfg_attr(not(feature = "actix-web"), doc = "[mod-actix_web]: #features")]
#![cfg_attr(feature = "tower", doc = "[mod-tower]: mod@crate::tower")]
#![cfg_attr(not(feature = "tower"), doc = "[mod-tower]: #features")]
#![cfg_attr(feature = "sqlite", doc = "[mod-sqlite]: mod@crate::sqlite")]
#![cfg_attr(not(feature = "sqlite"), doc = "[mod-sqlite]: #features")]
#![cfg_attr(feature = "postgres", doc = "[mod-postgres]: mod@crate::postgres")]
#![cfg_attr(not(feature = "postgres"), doc = "[mod-postgres]: #features")]
#![cfg_attr(feature = "mysql", doc = "[mod-mysql]: mod@crate::mysql")]
#![cfg_attr(not(feature = "mysql"), doc = "[mod-mysql]: #features")]
#![cfg_attr(feature = "redis", doc = "[mod-redis]: mod@crate::redis")]
#![cfg_attr(not(feature = "redis"), doc = "[mod-redis]: #features")]
#![cfg_attr(
    feature = "conformance",
    doc = "[mod-conformance]: mod@crate::conformance"
)]
#![cfg_attr(not(feature = "conformance"), doc = "[mod-conformance]: #features")]
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

/// The README's code blocks, compiled and run by `cargo test --doc` so that the repository's
/// front page stays true; not part of the API (it exists only when doctests are collected).
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
