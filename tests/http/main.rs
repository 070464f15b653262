//! keycard over HTTP: the axum, actix-web and tower adapters through their frameworks' real
//! pipelines, the hardening of the HTTP edge, and the example apps (`budgets_api`,
//! `increase_api`, `accounts_api` and their actix-web twins) served on loopback ports and
//! attacked as an attacker would, behind a real forwarding proxy and in a real browser; mail:
//! `SmtpMailer` (`smtp_mailer`) and the account flows (`account_recovery`) against a real SMTP
//! server on a loopback port (`support::smtp_sink`).
//!
//! Needs `axum`, `actix-web` or `tower` (each module runs under the features it needs);
//! no server. `browser` is ignored by default: it needs Chromium and ChromeDriver
//! (`cargo test --all-features --test http browser -- --ignored`).
//!
//! `support::log` installs this binary's global `tracing` subscriber (the first time a test
//! reading it runs: the `hardening` audit tests, `front_door`'s missing-configuration test);
//! the other modules' events go to it too, and each of those tests looks only at its own
//! lines (the audit tests at client addresses 192.0.2.75 to 192.0.2.81).

mod support;

// The example apps, compiled from their own source: the tests build them in process, over
// the stores, clocks and hashers each test needs, which running the example binaries (as
// `tests/examples` does) cannot do. `accounts_api`'s app reaches the examples' command line
// (`examples/common/mod.rs`) as `crate::common`; `proxy` tests that command line.
#[cfg(feature = "axum")]
#[path = "../../examples/accounts_api/app.rs"]
mod app;
#[cfg(any(feature = "axum", feature = "actix-web"))]
#[path = "../../examples/budgets_api/api.rs"]
mod budgets;
#[cfg(feature = "axum")]
#[path = "../../examples/common/mod.rs"]
mod common;
#[cfg(any(feature = "axum", feature = "actix-web"))]
#[path = "../../examples/increase_api/api.rs"]
mod increase;

#[cfg(any(feature = "axum", feature = "actix-web"))]
mod abuse;
#[cfg(all(feature = "axum", feature = "smtp"))]
mod account_recovery;
#[cfg(feature = "axum")]
mod accounts_api;
#[cfg(feature = "axum")]
mod accounts_attacks;
#[cfg(all(feature = "actix-web", feature = "smtp"))]
mod actix_accounts;
#[cfg(feature = "actix-web")]
mod actix_adapter;
#[cfg(feature = "actix-web")]
mod actix_hardening;
#[cfg(feature = "actix-web")]
mod actix_second_factors;
#[cfg(any(feature = "axum", feature = "actix-web"))]
mod api_tokens;
#[cfg(feature = "axum")]
mod axum_adapter;
#[cfg(feature = "axum")]
mod browser;
#[cfg(any(feature = "axum", feature = "actix-web"))]
mod budgets_api;
#[cfg(feature = "actix-web")]
mod front_door;
#[cfg(feature = "axum")]
mod hardening;
#[cfg(any(feature = "axum", feature = "actix-web"))]
mod increase_api;
#[cfg(all(feature = "axum", feature = "passkeys"))]
mod passkeys;
#[cfg(feature = "axum")]
mod proxy;
#[cfg(feature = "axum")]
mod second_factors;
#[cfg(feature = "smtp")]
mod smtp_mailer;
#[cfg(feature = "tower")]
mod tower_adapter;
