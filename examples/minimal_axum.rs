//! The smallest real keycard server, on axum: one user in memory, `POST /login`, a protected
//! `GET /me` and `POST /logout`, answered in `StandardApi`'s shape (bearer tokens, RFC 9457
//! problem details). Start here; the other examples build on the same pieces.
//!
//! ```sh
//! cargo run --example minimal_axum --features axum            # on 127.0.0.1:3000
//! cargo run --example minimal_axum --features axum -- 127.0.0.1:0   # any free port
//! ```

use std::net::SocketAddr;

use axum::routing::{get, post};
use axum::Router;
use keycard::axum::{AuthState, CurrentUser, LoginRequest, LogoutRequest};
use keycard::http::{Response, StandardApi};
use keycard::{Authenticator, MemoryTokenStore, MemoryUserStore, UserRecord};

/// `POST /login` with `{"email", "password"}` (JSON or form): `{"token", "expires_at"}`.
async fn login(request: LoginRequest<UserRecord>) -> Response {
    request.login().await
}

/// `GET /me` with `Authorization: Bearer <token>`; without a live token, 401.
async fn me(me: CurrentUser<UserRecord>) -> String {
    format!("hello {}\n", me.user.email)
}

/// `POST /logout` with `Authorization: Bearer <token>`: 204, and the token is dead.
async fn logout(request: LogoutRequest<UserRecord>) -> Response {
    request.logout().await
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Users and sessions in memory: gone when the server stops (see `custom_user_table` and
    // the `sqlite`, `postgres`, `mysql` and `redis` features for stores that last).
    let users = MemoryUserStore::new();
    let auth = Authenticator::builder(users, MemoryTokenStore::new()).build();
    let hash = auth.hash_password("correct horse battery staple").await?;
    auth.users()
        .insert(UserRecord::new(1_i64, "ann@example.com", hash))?;

    // One state for every keycard extractor (and `State<Authenticator<_>>` if a handler
    // wants the authenticator itself); `json_fallbacks` answers 404 and 405 as problems too.
    let app = keycard::axum::json_fallbacks(
        Router::new()
            .route("/me", get(me))
            .route_layer(keycard::axum::no_store()) // no cache keeps `/me`'s answer
            .route("/login", post(login))
            .route("/logout", post(logout)),
    )
    .with_state(AuthState::new(auth, StandardApi));

    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:3000".into());
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let base = format!("http://{}", listener.local_addr()?);
    println!("listening on {base}");
    println!("  curl -s {base}/login -H 'content-type: application/json' \\");
    println!("       -d '{{\"email\":\"ann@example.com\",\"password\":\"correct horse battery staple\"}}'");
    println!("  curl -s {base}/me -H 'authorization: Bearer TOKEN'");
    println!("  curl -si -X POST {base}/logout -H 'authorization: Bearer TOKEN'");
    // The peer's address feeds login throttling and the sessions' client info.
    let service = app.into_make_service_with_connect_info::<SocketAddr>();
    axum::serve(listener, service).await?;
    Ok(())
}
