//! A budgets API server speaking seed 000 (`POST /api/sessions`,
//! `PATCH /api/sessions/sign_out?token=`, and token-protected budgets and expenses).
//!
//! ```sh
//! cargo run --example budgets_api --features axum -- --addr 127.0.0.1:3000
//! ```

mod app;
#[path = "../common/mod.rs"]
mod common;

use std::time::Duration;

use clap::Parser;

#[tokio::main]
async fn main() {
    let args = common::Args::parse();
    common::init_logging();
    if let Err(error) = run(args).await {
        eprintln!("budgets_api: {error}");
        std::process::exit(1);
    }
}

async fn run(args: common::Args) -> Result<(), common::BoxError> {
    let stores = common::open_stores(&args.store).await?;
    let auth = app::authenticator(
        stores.users.clone(),
        stores.tokens.clone(),
        args.session_ttl(),
    )
    .throttle(stores.throttle.clone())
    .build();
    stores.seed_user(app::demo_user(&auth).await?).await?;
    let _expiry = auth.spawn_expiry_task(Duration::from_secs(60));
    common::serve(args.addr, app::router(auth)).await
}
