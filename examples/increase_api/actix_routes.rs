//! The increase API on actix-web: routing and extractors only (the answers are in `app.rs`).

use actix_web::guard;
use actix_web::web::{self, Data, ServiceConfig};
use keycard::actix_web::{resource, CurrentUser, LoginRequest, LogoutRequest, NoStore};
use keycard::http::Response;
use keycard::UserRecord;

use super::app::Api;

/// The routes of the increase API, for `App::configure`: the same answers as the axum
/// routes, JSON 404 and 405 included (keycard's `configure` and `resource`), and a 413 above
/// the body limit (`app::BODY_LIMIT`, the `HttpAuth`'s).
pub(crate) fn configure(api: Api) -> impl Fn(&mut ServiceConfig) + Clone + Send + 'static {
    move |config: &mut ServiceConfig| {
        config
            // The `HttpAuth`, its `RequestRules` and the protocol's 404 for unknown paths.
            .configure(keycard::actix_web::configure(api.http().clone()))
            .app_data(Data::new(api.clone()))
            .service(resource("/login").route(web::post().to(login)))
            .service(resource("/logout").route(web::delete().to(logout)))
            // The authenticated route: `NoStore`, so that no cache keeps a user's data.
            .service(
                resource("/client")
                    .route(get_or_head().to(client))
                    .wrap(NoStore),
            );
    }
}

/// `GET`, and `HEAD` answered as `GET` (without the body), as axum's `get` routes do.
fn get_or_head() -> actix_web::Route {
    web::route().guard(guard::Any(guard::Get()).or(guard::Head()))
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
async fn client(api: Data<Api>, me: CurrentUser<UserRecord>) -> Response {
    api.client(&me.user)
}
