//! The increase API on actix-web: routing and extractors only (the answers and body rules are
//! in `app.rs`).

use std::future::Future;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::error::InternalError;
use actix_web::guard;
use actix_web::http::header::{self, HeaderMap, HeaderName};
use actix_web::web::{self, Data, PayloadConfig, ServiceConfig};
use actix_web::{FromRequest, HttpRequest, Responder};
use keycard::actix_web::{CurrentUser, LoginRequest, LogoutRequest};
use keycard::http::Response;
use keycard::UserRecord;

use super::app::{Api, BODY_LIMIT};

/// The routes of the increase API, for `App::configure`: the same answers as the axum
/// routes, JSON 404 and 405 included, and a 413 above [`BODY_LIMIT`].
pub(crate) fn configure(api: Api) -> impl Fn(&mut ServiceConfig) + Clone + Send + 'static {
    move |config: &mut ServiceConfig| {
        config
            .app_data(api.http().clone())
            .app_data(Data::new(api.clone()))
            .app_data(PayloadConfig::new(BODY_LIMIT))
            .service(resource("/login").route(web::post().to(login)))
            .service(resource("/logout").route(web::delete().to(logout)))
            .service(resource("/client").route(get_or_head().to(client)))
            .default_service(web::to(not_found));
    }
}

/// `GET`, and `HEAD` answered as `GET` (without the body), as axum's `get` routes do.
fn get_or_head() -> actix_web::Route {
    web::route().guard(guard::Any(guard::Get()).or(guard::Head()))
}

/// A route whose other methods get the protocol's 405.
fn resource(path: &str) -> actix_web::Resource {
    web::resource(path).default_service(web::to(method_not_allowed))
}

fn header(headers: &HeaderMap, name: HeaderName) -> Option<&str> {
    headers.get(name).and_then(|value| value.to_str().ok())
}

/// The app registered with the routes.
fn api_of(req: &HttpRequest) -> Result<Data<Api>, actix_web::Error> {
    req.app_data::<Data<Api>>()
        .cloned()
        .ok_or_else(|| actix_web::error::ErrorInternalServerError("Internal server error"))
}

type LocalFuture<T> = Pin<Box<dyn Future<Output = Result<T, actix_web::Error>>>>;

/// The protocol's refusal, as an actix-web error whose response it is.
fn refuse(req: &HttpRequest, refused: Response) -> actix_web::Error {
    let message = refused.body.clone();
    InternalError::from_response(message, refused.respond_to(req)).into()
}

/// A login with a JSON body (see [`Api::login_body_is_json`]).
struct JsonLogin(LoginRequest<UserRecord>);

impl FromRequest for JsonLogin {
    type Error = actix_web::Error;
    type Future = LocalFuture<Self>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let checked = api_of(req).and_then(|api| {
            api.login_body_is_json(header(req.headers(), header::CONTENT_TYPE))
                .map_err(|refused| refuse(req, refused))
        });
        if let Err(error) = checked {
            return Box::pin(async move { Err(error) });
        }
        let login = LoginRequest::<UserRecord>::from_request(req, payload);
        Box::pin(async move { Ok(Self(login.await?)) })
    }
}

/// A logout whose body, if any, is JSON (see [`Api::logout_body_is_json`]).
struct JsonLogout(LogoutRequest<UserRecord>);

impl FromRequest for JsonLogout {
    type Error = actix_web::Error;
    type Future = LocalFuture<Self>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let headers = req.headers();
        let checked = api_of(req).and_then(|api| {
            api.logout_body_is_json(
                header(headers, header::CONTENT_TYPE),
                header(headers, header::CONTENT_LENGTH),
                headers.contains_key(header::TRANSFER_ENCODING),
            )
            .map_err(|refused| refuse(req, refused))
        });
        if let Err(error) = checked {
            return Box::pin(async move { Err(error) });
        }
        let logout = LogoutRequest::<UserRecord>::from_request(req, payload);
        Box::pin(async move { Ok(Self(logout.await?)) })
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
async fn client(api: Data<Api>, me: CurrentUser<UserRecord>) -> Response {
    api.client(&me.user)
}

async fn not_found(api: Data<Api>) -> Response {
    api.rejection(404, "Not found")
}

async fn method_not_allowed(api: Data<Api>) -> Response {
    api.rejection(405, "Method not allowed")
}
