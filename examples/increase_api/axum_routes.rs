//! The increase API on axum: routing and extractors only (the answers are in `app.rs`).

use std::sync::Arc;

use axum::extract::{FromRef, State};
use axum::routing::{delete, get, post};
use axum::Router;
use keycard::axum::{CurrentUser, LoginRequest, LogoutRequest};
use keycard::http::{HttpAuth, Protocol, Response};
use keycard::UserRecord;

use super::app::Api;

/// The routes of the increase API, with JSON answers for unknown routes and wrong methods and
/// a 413 above the body limit (`app::BODY_LIMIT`, the `HttpAuth`'s).
pub(crate) fn router(api: Api) -> Router {
    let routes = Router::new()
        .route("/client", get(client))
        // The authenticated route above: no cache keeps a user's data.
        .route_layer(keycard::axum::no_store())
        .route("/login", post(login))
        .route("/logout", delete(logout));
    keycard::axum::json_fallbacks(routes).with_state(api)
}

impl FromRef<Api> for HttpAuth<UserRecord> {
    fn from_ref(api: &Api) -> Self {
        api.http().clone()
    }
}

impl FromRef<Api> for Arc<dyn Protocol> {
    fn from_ref(api: &Api) -> Self {
        Arc::<dyn Protocol>::from_ref(api.http())
    }
}

/// `POST /login` with a JSON body.
async fn login(request: LoginRequest<UserRecord>) -> Response {
    request.login().await
}

/// `DELETE /logout` with `{"auth_token": ...}` (or `?auth_token=`, or Bearer). Succeeds
/// whether or not the token named a session.
async fn logout(request: LogoutRequest<UserRecord>) -> Response {
    request.logout().await
}

/// `GET /client?auth_token=` (or Bearer): the logged-in client's profile.
async fn client(State(api): State<Api>, me: CurrentUser<UserRecord>) -> Response {
    api.client(&me.user)
}
