//! The increase API server on axum: `POST /login`, `DELETE /logout` and the token-protected
//! `GET /client`. `increase_api_actix` serves the same on actix-web. See
//! `examples/README.md`.
//!
//! ```sh
//! cargo run --example increase_api --features axum -- --addr 127.0.0.1:3000
//! ```

mod app;
mod axum_routes;
#[path = "../common/axum_serve.rs"]
mod axum_serve;
#[path = "../common/mod.rs"]
mod common;
#[path = "../common/server.rs"]
mod server;

use clap::Parser;

#[tokio::main]
async fn main() {
    let args = common::Args::parse();
    server::init_logging();
    if let Err(error) = run(args).await {
        eprintln!("increase_api: {error}");
        std::process::exit(1);
    }
}

async fn run(args: common::Args) -> Result<(), server::BoxError> {
    let stores = server::open_stores(&args.store).await?;
    let auth = stores.authenticator(app::authenticator, args.session_ttl());
    stores.seed_user(app::demo_user(&auth).await?).await?;
    let _expiry = auth.spawn_expiry_task(server::EXPIRY_INTERVAL);
    let api = app::Api::new(auth, args.trusted_proxies());
    axum_serve::serve(args.addr, axum_routes::router(api)).await
}
