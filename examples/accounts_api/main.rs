//! The accounts API server on axum: registration, login (Bearer token and browser cookie),
//! `/me`, the session list, revoking sessions, logging out others and changing the password,
//! with the standards-based protocol. See `examples/README.md`.
//!
//! ```sh
//! cargo run --example accounts_api --features axum -- --addr 127.0.0.1:3000
//! ```

mod app;
#[path = "../common/axum_serve.rs"]
mod axum_serve;
#[path = "../common/mod.rs"]
mod common;
#[path = "../common/server.rs"]
mod server;

use clap::Parser;
use keycard::http::SessionCookie;

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
    let auth = app::authenticator(
        stores.registry.clone(),
        stores.tokens.clone(),
        args.common.session_ttl(),
    )
    .throttle(stores.throttle.clone())
    .build();
    let _expiry = auth.spawn_expiry_task(server::EXPIRY_INTERVAL);
    let cookie = if args.insecure_cookie {
        SessionCookie::default().insecure_for_local_development()
    } else {
        SessionCookie::default()
    };
    let accounts = app::Accounts::new(auth, cookie, args.common.trusted_proxies());
    axum_serve::serve(args.common.addr, app::router(accounts)).await
}
