//! The Increasecard API app (seed 003): routes and state, shared by the `increase_api` binary
//! and the tests in `tests/http_increase.rs`.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{DefaultBodyLimit, State};
use axum::routing::{delete, get, post};
use axum::Router;
use keycard::axum::{
    AuthState, ClientMeta, Credentials, CurrentUser, Json, SessionToken, TokenSource,
};
use keycard::http::{LoginApi, Response, TrustedProxies};
use keycard::{Authenticator, AuthenticatorBuilder, TokenStore, UserRecord, UserStore};
use serde_json::{json, Value};

/// The user store the app runs on, whatever the backend.
pub(crate) type Users = Arc<dyn UserStore<User = UserRecord>>;
/// The authenticator the app runs on.
pub(crate) type Auth = Authenticator<Users>;

/// The document's user.
pub(crate) const DEMO_EMAIL: &str = "test@increasecard.com";
/// The document's password.
pub(crate) const DEMO_PASSWORD: &str = "password";
/// Largest request body accepted; larger ones get a 413. Far above any login (the core caps
/// emails at 320 and passwords at 1024 bytes), far below anything that could hurt.
pub(crate) const BODY_LIMIT: usize = 16 * 1024;

/// An authenticator builder configured for this protocol: sessions last `session_ttl` (the
/// document says 24 hours, the binary's default). Unknown emails stay indistinguishable from
/// wrong passwords (the library default), as the document answers both alike.
pub(crate) fn authenticator(
    users: Users,
    tokens: Arc<dyn TokenStore>,
    session_ttl: Duration,
) -> AuthenticatorBuilder<Users> {
    Authenticator::builder(users, tokens).session_ttl(session_ttl)
}

/// The document's user, Test Increase, with its password hashed by `auth`.
///
/// # Errors
/// If hashing fails.
pub(crate) async fn demo_user(auth: &Auth) -> keycard::Result<UserRecord> {
    let hash = auth.hash_password(DEMO_PASSWORD).await?;
    Ok(UserRecord::new(1_i64, DEMO_EMAIL, hash).with_name("Test", "Increase"))
}

/// The routes of seed 003, with JSON answers for unknown routes and wrong methods. Login
/// takes the client's address from the connection, or from `proxies`' forwarding headers.
pub(crate) fn router(auth: Auth, proxies: TrustedProxies) -> Router {
    let state =
        AuthState::new(auth, LoginApi, TokenSource::login_api()).with_trusted_proxies(proxies);
    let routes = Router::new()
        .route("/login", post(login))
        .route("/logout", delete(logout))
        .route("/client", get(client));
    keycard::axum::json_fallbacks(routes)
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .with_state(state)
}

/// The router state: authenticator, protocol and where tokens are found.
type AppState = AuthState<Users>;

/// `POST /login` with a JSON body.
async fn login(
    State(state): State<AppState>,
    ClientMeta(client): ClientMeta,
    Json(credentials): Json<Credentials>,
) -> Response {
    keycard::axum::login(
        &state.auth,
        &*state.protocol,
        &credentials.email,
        &credentials.password,
        client,
    )
    .await
}

/// `DELETE /logout` with `{"auth_token": ...}` (or `?auth_token=`, or Bearer). Succeeds
/// whether or not the token named a session.
async fn logout(State(state): State<AppState>, token: SessionToken) -> Response {
    keycard::axum::logout(&state.auth, &*state.protocol, &token).await
}

/// `GET /client?auth_token=` (or Bearer): the logged-in client's profile.
async fn client(me: CurrentUser<Users>) -> axum::Json<Value> {
    axum::Json(json!({
        "client": {
            "email": me.user.email,
            "first_name": me.user.first_name,
            "last_name": me.user.last_name,
        }
    }))
}
