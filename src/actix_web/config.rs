//! Finding keycard's configuration in the app data, and saying loudly when it is not there:
//! a forgotten `.app_data(http.clone())` compiles, so it is reported once, at error level, with
//! what to add and where, and every request it breaks is answered 500 with a body that says
//! it is a configuration error.

use std::any::{type_name, TypeId};
use std::fmt;
use std::sync::{Mutex, PoisonError};

use ::actix_web::body::BoxBody;
use ::actix_web::http::StatusCode;
use ::actix_web::web::Data;
use ::actix_web::{HttpRequest, HttpResponse, ResponseError};
use serde_json::json;

use super::to_actix;
use crate::http::{HttpAuth, RequestRules, Response};

/// The registered [`HttpAuth<U>`], plain or in `web::Data`.
pub(super) fn http_auth<U: 'static>(req: &HttpRequest) -> Result<HttpAuth<U>, ::actix_web::Error> {
    if let Some(http) = registered_http_auth::<U>(req) {
        return Ok(http.clone());
    }
    let name = type_name::<HttpAuth<U>>();
    report_once::<HttpAuth<U>>(|| {
        format!(
            "keycard: no `{name}` in the actix-web app data, so every request through keycard's \
             extractors for this user type is answered 500 (server configuration error). Add it \
             to the `App` built in your `HttpServer::new` closure: \
             `App::new().app_data(http.clone())` (or \
             `.configure(keycard::actix_web::configure(http.clone()))`), where `http` is the \
             `{name}` you built. Reported once."
        )
    });
    Err(Misconfigured.into())
}

/// The registered [`HttpAuth<U>`] by reference, if there is one; the caller clones only
/// what it keeps. [`http_auth`] reports a missing one.
pub(super) fn registered_http_auth<U: 'static>(req: &HttpRequest) -> Option<&HttpAuth<U>> {
    req.app_data::<HttpAuth<U>>()
        .or_else(|| req.app_data::<Data<HttpAuth<U>>>().map(Data::get_ref))
}

/// The registered [`RequestRules`], plain or in `web::Data`.
pub(super) fn request_rules(req: &HttpRequest) -> Result<RequestRules, ::actix_web::Error> {
    if let Some(rules) = req.app_data::<RequestRules>() {
        return Ok(rules.clone());
    }
    if let Some(rules) = req.app_data::<Data<RequestRules>>() {
        return Ok(RequestRules::clone(rules));
    }
    report_once::<RequestRules>(|| {
        "keycard: no `keycard::http::RequestRules` in the actix-web app data, so every request \
         through keycard's `ApiJson`, `ApiForm` and `ApiQuery` extractors and its fallbacks is answered \
         500 (server configuration error). Add it to the `App` built in your `HttpServer::new` \
         closure: `App::new().app_data(http.request_rules())` (or \
         `.configure(keycard::actix_web::configure(http.clone()))`, which registers it with \
         the `HttpAuth`), where `http` is your `HttpAuth`. Reported once."
            .to_owned()
    });
    Err(Misconfigured.into())
}

/// Logs `message` at error level the first time a missing `T` is reported in this process,
/// and prints it to stderr too when no global `tracing` subscriber is installed (where the
/// event would go nowhere).
fn report_once<T: 'static>(message: impl FnOnce() -> String) {
    static REPORTED: Mutex<Vec<TypeId>> = Mutex::new(Vec::new());
    {
        let mut reported = REPORTED.lock().unwrap_or_else(PoisonError::into_inner);
        if reported.contains(&TypeId::of::<T>()) {
            return;
        }
        reported.push(TypeId::of::<T>());
    }
    let message = message();
    tracing::error!("{message}");
    if !tracing::dispatcher::has_been_set() {
        eprintln!("{message}");
    }
}

/// keycard's configuration is missing from the app data: 500, in a neutral JSON shape (no
/// protocol is available to shape it).
struct Misconfigured;

impl Misconfigured {
    fn response() -> Response {
        Response::json(
            500,
            &json!({
                "error": "server_configuration_error",
                "message": "Server configuration error: keycard is not set up in this app; the server's log says what to add",
            }),
        )
    }
}

impl fmt::Debug for Misconfigured {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Misconfigured")
    }
}

impl fmt::Display for Misconfigured {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("keycard is not registered in the actix-web app data")
    }
}

impl ResponseError for Misconfigured {
    fn status_code(&self) -> StatusCode {
        StatusCode::INTERNAL_SERVER_ERROR
    }

    fn error_response(&self) -> HttpResponse<BoxBody> {
        to_actix(&Self::response())
    }
}
