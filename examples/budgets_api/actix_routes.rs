//! The budgets API on actix-web: routing and extractors only (the answers are in `app.rs`).

use actix_web::guard;
use actix_web::web::{self, Data, ServiceConfig};
use actix_web::HttpRequest;
use keycard::actix_web::{resource, CurrentUser, LoginRequest, LogoutRequest, NoStore};
use keycard::http::Response;
use keycard::UserRecord;

use super::app::Api;

/// The routes of the budgets API, for `App::configure`: the same answers as the axum routes,
/// JSON 404 and 405 included (keycard's `configure` and `resource`), and a 413 above
/// the body limit (`app::BODY_LIMIT`, the `HttpAuth`'s).
pub(crate) fn configure(api: Api) -> impl Fn(&mut ServiceConfig) + Clone + Send + 'static {
    move |config: &mut ServiceConfig| {
        config
            // The `HttpAuth`, its `RequestRules` and the protocol's 404 for unknown paths.
            .configure(keycard::actix_web::configure(api.http().clone()))
            .app_data(Data::new(api.clone()))
            .service(resource("/api/sessions").route(web::post().to(login)))
            .service(resource("/api/sessions/sign_out").route(web::patch().to(logout)))
            // The authenticated routes: `NoStore`, so that no cache keeps a user's data.
            .service(
                resource("/api/budgets")
                    .route(get_or_head().to(budgets))
                    .wrap(NoStore),
            )
            .service(
                resource("/api/expenses")
                    .route(get_or_head().to(expenses))
                    .wrap(NoStore),
            )
            .service(
                resource("/api/budgets/show_all_expenses.json")
                    .route(get_or_head().to(show_all_expenses))
                    .wrap(NoStore),
            );
    }
}

/// `GET`, and `HEAD` answered as `GET` (without the body), as axum's `get` routes do.
fn get_or_head() -> actix_web::Route {
    web::route().guard(guard::Any(guard::Get()).or(guard::Head()))
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
async fn budgets(api: Data<Api>, me: CurrentUser<UserRecord>) -> Response {
    api.budgets(&me.user)
}

/// `GET /api/expenses?token=`.
async fn expenses(api: Data<Api>, me: CurrentUser<UserRecord>) -> Response {
    api.expenses(&me.user)
}

/// `GET /api/budgets/show_all_expenses.json?token=&month=&year=`. The query is read after
/// the token is checked, as on axum.
async fn show_all_expenses(
    api: Data<Api>,
    me: CurrentUser<UserRecord>,
    request: HttpRequest,
) -> Response {
    api.show_all_expenses(&me.user, request.query_string())
}
