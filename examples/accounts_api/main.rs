//! The accounts API server on axum: registration without enumeration, email verification,
//! forgot / reset password, sign-in links, email change, login (Bearer token and browser
//! cookie), `/me`, the session list, revoking sessions, logging out others, changing the
//! password, and scoped API tokens (with a small notes resource to use them on), with the
//! standards-based protocol. See `examples/README.md`.
//!
//! ```sh
//! # Mails printed to the log; login does not require a verified address:
//! cargo run --example accounts_api --features axum -- --addr 127.0.0.1:3000
//! # Mails over SMTP; login requires a verified address:
//! cargo run --example accounts_api --features axum,smtp -- --smtp smtp://127.0.0.1:1025 \
//!     --mail-from accounts@example.com --public-url http://127.0.0.1:3000
//! ```

mod app;
#[path = "../common/axum_serve.rs"]
mod axum_serve;
#[path = "../common/mod.rs"]
mod common;
#[path = "../common/server.rs"]
mod server;

use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use keycard::http::SessionCookie;
use keycard::mail::{LogMailer, Mailer};
use keycard::mfa::SecretKey;
use keycard::one_time::{OneTimePurpose, OneTimeTokens};

/// The common options, and the cookie's. (Not named `Args` like the flattened common
/// options: clap names each derived argument group after its struct, and two groups may not
/// share a name.)
#[derive(Debug, clap::Parser)]
#[command(
    version,
    about = "The keycard accounts API example server (see examples/README.md)"
)]
struct AccountsArgs {
    #[command(flatten)]
    common: common::Args,
    /// Drop `Secure` from the session cookie (and its `__Host-` prefix), for browsers on
    /// plain HTTP other than `localhost`. Development only: the cookie then travels in clear.
    #[arg(long)]
    insecure_cookie: bool,
    /// Send mail through this SMTP server: `smtp://HOST:PORT` (plain, loopback only),
    /// `smtp://HOST:PORT?tls=starttls` or `smtps://HOST:PORT` (TLS), credentials in the
    /// userinfo. Login then requires a verified email. Without it, mails are printed to the
    /// log and addresses need no verification (the in-terminal demo). Needs the `smtp`
    /// feature.
    #[arg(long, value_name = "URL")]
    smtp: Option<String>,
    /// The From address of mails.
    #[arg(
        long,
        value_name = "ADDR",
        default_value = "accounts@localhost.localdomain"
    )]
    mail_from: String,
    /// The base of the links in mails (where this server's page is reached).
    #[arg(long, value_name = "URL", default_value = "http://127.0.0.1:3000")]
    public_url: String,
    /// The passkey relying party id: a domain (`localhost`, `example.com`), never an IP
    /// address; the host of `--rp-origin` or a parent of it. Default: the host of
    /// `--rp-origin`. Needs the `passkeys` feature; without these flags, passkeys are off when
    /// `--public-url` names an IP address.
    #[arg(long, value_name = "DOMAIN")]
    rp_id: Option<String>,
    /// The origin pages using passkeys run on. Default: `--public-url`.
    #[arg(long, value_name = "URL")]
    rp_origin: Option<String>,
    /// How long a password reset link lives, in seconds.
    #[arg(long, value_name = "SECS", default_value_t = 1800, value_parser = clap::value_parser!(u64).range(1..=2_592_000))]
    reset_ttl: u64,
}

#[tokio::main]
async fn main() {
    let args = AccountsArgs::parse();
    server::init_logging();
    if let Err(error) = run(args).await {
        eprintln!("accounts_api: {error}");
        std::process::exit(1);
    }
}

async fn run(args: AccountsArgs) -> Result<(), server::BoxError> {
    let stores = server::open_stores(&args.common.store).await?;
    let mailer = mailer(&args)?;
    let auth = app::authenticator(
        stores.registry.clone(),
        stores.tokens.clone(),
        args.common.session_ttl(),
    )
    .throttle(stores.throttle.clone())
    .require_verified_email(args.smtp.is_some())
    .second_factors(app::second_factors(
        stores.second_factors.clone(),
        stores.one_time.clone(),
        secret_key()?,
    ));
    let auth = with_passkeys(auth, &args, &stores)?.build();
    let one_time = OneTimeTokens::from_arc(stores.one_time.clone()).with_lifetime(
        OneTimePurpose::PasswordReset,
        Duration::from_secs(args.reset_ttl),
    );
    let flows = app::flows(auth.clone(), one_time, mailer, &args.public_url)
        .map_err(|e| format!("--public-url: {e}"))?;
    let _expiry = flows.spawn_expiry_task(server::EXPIRY_INTERVAL);
    let cookie = if args.insecure_cookie {
        SessionCookie::default().insecure_for_local_development()
    } else {
        SessionCookie::default()
    };
    let app = app::AccountsApp::new(auth, flows, cookie, args.common.trusted_proxies());
    axum_serve::serve(args.common.addr, app::router(app)).await
}

/// Passkeys (feature `passkeys`) for `--rp-id` on `--rp-origin`, kept beside the users (in
/// the SQLite, PostgreSQL or MySQL database of `--store`; in memory for `memory` and
/// `redis`); ceremonies among the one-time tokens.
#[cfg(feature = "passkeys")]
fn with_passkeys(
    builder: keycard::AuthenticatorBuilder<app::Users>,
    args: &AccountsArgs,
    stores: &server::Stores,
) -> Result<keycard::AuthenticatorBuilder<app::Users>, server::BoxError> {
    let origin = args.rp_origin.as_deref().unwrap_or(&args.public_url);
    let host = origin
        .split_once("://")
        .map(|(_, rest)| rest.split(['/', ':']).next().unwrap_or_default())
        .unwrap_or_default();
    let rp_id = args.rp_id.as_deref().unwrap_or(host);
    match app::passkeys(rp_id, origin, stores.one_time.clone()) {
        Ok(passkeys) => Ok(builder.passkeys(passkeys, stores.passkeys.clone())),
        // Asked for explicitly: a configuration error.
        Err(e) if args.rp_id.is_some() || args.rp_origin.is_some() => {
            Err(format!("passkeys: {e}").into())
        }
        // The default --public-url names an IP address, which no relying party can be.
        Err(e) => {
            tracing::warn!("passkeys are off: {e}; serve the page on a domain, e.g. --public-url http://localhost:3000 (then open that URL)");
            Ok(builder)
        }
    }
}

/// Without the `passkeys` feature: the builder as it is.
#[cfg(not(feature = "passkeys"))]
fn with_passkeys(
    builder: keycard::AuthenticatorBuilder<app::Users>,
    args: &AccountsArgs,
    _stores: &server::Stores,
) -> Result<keycard::AuthenticatorBuilder<app::Users>, server::BoxError> {
    if args.rp_id.is_some() || args.rp_origin.is_some() {
        return Err("--rp-id and --rp-origin need the `passkeys` feature".into());
    }
    Ok(builder)
}

/// The key that seals authenticator-app secrets at rest: `KEYCARD_SECRET_KEY` (32 bytes in
/// base64), or a fresh one for this run only (apps enrolled now stop working at a restart).
fn secret_key() -> Result<SecretKey, server::BoxError> {
    match std::env::var("KEYCARD_SECRET_KEY") {
        Ok(text) => SecretKey::from_base64(text.trim())
            .map_err(|e| format!("KEYCARD_SECRET_KEY: {e}").into()),
        Err(_) => {
            tracing::warn!("KEYCARD_SECRET_KEY is not set: authenticator apps enrolled now are sealed with a key that lives until this process ends; set it to 32 random bytes in base64 (`openssl rand -base64 32`) to keep them");
            Ok(SecretKey::generate()?)
        }
    }
}

/// The mailer `--smtp` names, or the log.
fn mailer(args: &AccountsArgs) -> Result<Arc<dyn Mailer>, server::BoxError> {
    match &args.smtp {
        None => Ok(Arc::new(LogMailer::new())),
        #[cfg(feature = "smtp")]
        Some(url) => Ok(Arc::new(keycard::mail::SmtpMailer::from_url(
            url,
            &args.mail_from,
        )?)),
        #[cfg(not(feature = "smtp"))]
        Some(_) => {
            let _ = &args.mail_from;
            Err("--smtp needs the `smtp` feature: cargo run --example accounts_api --features axum,smtp".into())
        }
    }
}
