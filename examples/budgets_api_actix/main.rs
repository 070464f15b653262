//! The budgets API server on actix-web: the same routes and answers as `budgets_api` (axum),
//! byte for byte. See `examples/README.md`.
//!
//! ```sh
//! cargo run --example budgets_api_actix --features actix-web -- --addr 127.0.0.1:3000
//! ```

#[path = "../budgets_api/actix_routes.rs"]
mod actix_routes;
#[path = "../common/actix_serve.rs"]
mod actix_serve;
#[path = "../budgets_api/app.rs"]
mod app;
#[path = "../common/mod.rs"]
mod common;
#[path = "../common/server.rs"]
mod server;

use clap::Parser;

fn main() {
    let args = common::Args::parse();
    server::init_logging();
    if let Err(error) = actix_web::rt::System::new().block_on(run(args)) {
        eprintln!("budgets_api_actix: {error}");
        std::process::exit(1);
    }
}

async fn run(args: common::Args) -> Result<(), server::BoxError> {
    let stores = server::open_stores(&args.store).await?;
    let auth = stores.authenticator(app::authenticator, args.session_ttl());
    stores.seed_user(app::demo_user(&auth).await?).await?;
    let _expiry = auth.spawn_expiry_task(server::EXPIRY_INTERVAL);
    let api = app::Api::new(auth, args.trusted_proxies());
    actix_serve::serve(args.addr, actix_routes::configure(api)).await
}
