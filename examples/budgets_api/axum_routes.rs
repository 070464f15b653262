//! The budgets API on axum: routing and extractors only (the answers are in `app.rs`).

use std::sync::Arc;

use axum::extract::{FromRef, RawQuery, State};
use axum::routing::{get, patch, post};
use axum::Router;
use keycard::axum::{CurrentUser, LoginRequest, LogoutRequest};
use keycard::http::{HttpAuth, Protocol, Response};
use keycard::UserRecord;

use super::app::Api;

/// The routes of the budgets API, with JSON answers for unknown routes and wrong methods and
/// a 413 above the body limit (`app::BODY_LIMIT`, the `HttpAuth`'s).
pub(crate) fn router(api: Api) -> Router {
    let routes = Router::new()
        .route("/api/budgets", get(budgets))
        .route("/api/expenses", get(expenses))
        .route(
            "/api/budgets/show_all_expenses.json",
            get(show_all_expenses),
        )
        // The authenticated routes above: no cache keeps a user's data.
        .route_layer(keycard::axum::no_store())
        .route("/api/sessions", post(login))
        .route("/api/sessions/sign_out", patch(logout));
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

/// `POST /api/sessions`, JSON or form-encoded.
async fn login(request: LoginRequest<UserRecord>) -> Response {
    request.login().await
}

/// `PATCH /api/sessions/sign_out?token=`.
async fn logout(request: LogoutRequest<UserRecord>) -> Response {
    request.logout().await
}

/// `GET /api/budgets?token=`.
async fn budgets(State(api): State<Api>, me: CurrentUser<UserRecord>) -> Response {
    api.budgets(&me.user)
}

/// `GET /api/expenses?token=`.
async fn expenses(State(api): State<Api>, me: CurrentUser<UserRecord>) -> Response {
    api.expenses(&me.user)
}

/// `GET /api/budgets/show_all_expenses.json?token=&month=&year=`.
async fn show_all_expenses(
    State(api): State<Api>,
    me: CurrentUser<UserRecord>,
    RawQuery(query): RawQuery,
) -> Response {
    api.show_all_expenses(&me.user, query.as_deref().unwrap_or_default())
}
