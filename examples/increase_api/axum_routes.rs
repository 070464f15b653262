//! The increase API on axum: routing and extractors only (the answers and body rules are in
//! `app.rs`).

use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, FromRef, FromRequest, Request, State};
use axum::http::{header, HeaderMap};
use axum::response::IntoResponse;
use axum::routing::{delete, get, post};
use axum::Router;
use keycard::axum::{CurrentUser, LoginRequest, LogoutRequest};
use keycard::http::{HttpAuth, Protocol, Response};
use keycard::UserRecord;

use super::app::{Api, BODY_LIMIT};

/// The routes of the increase API, with JSON answers for unknown routes and wrong methods and
/// a 413 above [`BODY_LIMIT`].
pub(crate) fn router(api: Api) -> Router {
    let routes = Router::new()
        .route("/login", post(login))
        .route("/logout", delete(logout))
        .route("/client", get(client));
    keycard::axum::json_fallbacks(routes)
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .with_state(api)
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

fn header(headers: &HeaderMap, name: header::HeaderName) -> Option<&str> {
    headers.get(name).and_then(|value| value.to_str().ok())
}

/// A login with a JSON body (see [`Api::login_body_is_json`]).
struct JsonLogin(LoginRequest<UserRecord>);

impl FromRequest<Api> for JsonLogin {
    type Rejection = axum::response::Response;

    async fn from_request(req: Request, api: &Api) -> Result<Self, Self::Rejection> {
        api.login_body_is_json(header(req.headers(), header::CONTENT_TYPE))
            .map_err(IntoResponse::into_response)?;
        match LoginRequest::from_request(req, api).await {
            Ok(request) => Ok(Self(request)),
            Err(rejection) => Err(rejection.into_response()),
        }
    }
}

/// A logout whose body, if any, is JSON (see [`Api::logout_body_is_json`]).
struct JsonLogout(LogoutRequest<UserRecord>);

impl FromRequest<Api> for JsonLogout {
    type Rejection = axum::response::Response;

    async fn from_request(req: Request, api: &Api) -> Result<Self, Self::Rejection> {
        let headers = req.headers();
        api.logout_body_is_json(
            header(headers, header::CONTENT_TYPE),
            header(headers, header::CONTENT_LENGTH),
            headers.contains_key(header::TRANSFER_ENCODING),
        )
        .map_err(IntoResponse::into_response)?;
        match LogoutRequest::from_request(req, api).await {
            Ok(request) => Ok(Self(request)),
            Err(rejection) => Err(rejection.into_response()),
        }
    }
}

/// `POST /login` with a JSON body.
async fn login(JsonLogin(request): JsonLogin) -> Response {
    request.login().await
}

/// `DELETE /logout` with `{"auth_token": ...}` (or `?auth_token=`, or Bearer). Succeeds
/// whether or not the token named a session.
async fn logout(JsonLogout(request): JsonLogout) -> Response {
    request.logout().await
}

/// `GET /client?auth_token=` (or Bearer): the logged-in client's profile.
async fn client(State(api): State<Api>, me: CurrentUser<UserRecord>) -> Response {
    api.client(&me.user)
}
