//! The [`TokenStore`](crate::TokenStore) contract as a reusable test suite (feature `conformance`).
//!
//! Every backend keycard ships runs these checks, and so can yours: each check is a public
//! `async fn` over `&dyn TokenStore` that panics with a message naming the broken promise.
//! [`run_all`] runs them all; [`concurrent_tasks`] adds the same concurrency check on many
//! Tokio tasks, which needs a shared (`Arc`) store. The [`users`] module does the same for
//! [`UserStore`](crate::UserStore)s, [`throttle`] for login throttles, [`one_time`] for
//! one-time token stores and [`second_factors`] for
//! [`SecondFactorStore`](crate::mfa::SecondFactorStore)s.
//!
//! ```
//! use std::sync::Arc;
//! use keycard::{MemoryTokenStore, TokenStore};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! // In your crate: `#[tokio::test(flavor = "multi_thread")] async fn store_keeps_the_contract()`.
//! let store: Arc<dyn TokenStore> = Arc::new(MemoryTokenStore::new());
//! keycard::conformance::run_all(&*store).await;
//! keycard::conformance::concurrent_tasks(store).await;
//! # }
//! ```
//!
//! What the checks assume, so that they can run against a live, shared server:
//!
//! - They create their own data only: every check uses fresh random session ids and user ids
//!   (`conformance-<check>-<random>`), so several runs may share one database, schema or key
//!   prefix at the same time, and leftovers of other applications do not disturb them. The
//!   store must be ready to use (migrated).
//! - Timestamps are the current time rounded down to a whole millisecond, plus whole
//!   milliseconds or seconds, so stores that keep microseconds compare exactly. The sessions
//!   live one hour unless a check is about expiry, so stores that expire records natively
//!   (Redis TTLs) behave as the caller's `now` says.
//! - [`purge_expired_counts`] purges sessions that expired an hour ago, by the caller's
//!   clock. A purge is global, so that one check needs that nothing else purges the same
//!   namespace at the same moment; the others tolerate any concurrent traffic.
//! - Cleanup: every check that passes deletes what it created (a failing check may leave its
//!   sessions behind; they expire within the hour).
//!
//! # Panics
//! Every check panics when the store breaks the contract or returns an error.
//!
//! One file per suite: `tokens` (the token store's single-caller checks and [`run_all`]),
//! `races` (the token store under concurrency), [`users`], [`throttle`], [`one_time`] and
//! [`second_factors`] and [`passkeys`].

use std::time::Duration;

use time::OffsetDateTime;

use crate::{AuthMethod, AuthMethods, ClientInfo, Session, SessionId, Token, UserId};

mod accounts;
pub mod one_time;
pub mod passkeys;
/// The one-time token store suite: [`one_time::run_all`].
pub use one_time::run_all as one_time_store;
mod races;
pub mod second_factors;
/// The second factor store suite: [`second_factors::run_all`].
pub use second_factors::run_all as second_factor_store;
pub mod throttle;
mod tokens;
pub mod users;

pub use races::{concurrent_operations, concurrent_tasks, delete_for_user_except_races_creates};
pub use tokens::{
    amr_round_trips_and_survives_touch, api_tokens_round_trip,
    client_info_and_hostile_ids_round_trip, create_get_delete,
    delete_for_user_except_keeps_api_tokens, delete_for_user_except_keeps_one, delete_twice,
    duplicate_create_is_refused, expired_sessions_are_never_returned,
    get_immediate_agrees_with_get, list_and_delete_for_user, purge_expired_counts, run_all,
    touch_from_records_the_address, touch_updates_but_never_resurrects,
};

/// How long the sessions of the checks live, unless a check is about expiry.
const HOUR: Duration = Duration::from_secs(3600);

// ---------------------------------------------------------------------------------------------
// Helpers

/// The current time, rounded down to a whole millisecond.
pub(crate) fn base_time() -> OffsetDateTime {
    let now = OffsetDateTime::now_utc();
    now.replace_nanosecond(now.nanosecond() / 1_000_000 * 1_000_000)
        .unwrap_or(now)
}

/// A fresh, unique user id for one check.
fn user(check: &str) -> UserId {
    UserId::new(format!(
        "conformance-{check}-{:016x}",
        rand::random::<u64>()
    ))
}

/// A fresh session id that names nothing.
fn fresh_id() -> SessionId {
    Token::generate().expect("os rng").id()
}

/// The authentication methods of the checks' sessions: a password and a TOTP code, so every
/// round trip the checks compare covers `amr` too.
fn checks_amr() -> AuthMethods {
    AuthMethods::from(AuthMethod::Password).with(AuthMethod::Totp)
}

/// A new session of `who` with [`checks_amr`].
fn session(who: &UserId, created: OffsetDateTime, ttl: Duration, client: ClientInfo) -> Session {
    let token = Token::generate().expect("os rng");
    Session::new(&token, who.clone(), created, ttl, client).with_amr(checks_amr())
}

/// Unwraps a task's result, re-raising its panic so the check's message is kept.
fn joined<T>(result: Result<T, tokio::task::JoinError>) -> T {
    match result {
        Ok(value) => value,
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Err(e) => panic!("a check task was cancelled: {e}"),
    }
}
