//! The actix-web adapter: `FromRequest` extractors that authenticate a request through
//! [`HttpAuth`], and an error type rendered through its [`Protocol`](crate::http::Protocol).
//!
//! Everything that is not about actix-web's types lives in [`crate::http`]; this module only
//! reads actix-web's request and converts [`Response`]s.
//!
//! | extractor | what it does |
//! |---|---|
//! | [`CurrentUser<U>`] | finds the token, validates it, loads the user |
//! | [`CurrentSession<U>`] | finds the token, validates it (no user lookup) |
//! | [`SecondFactorSession<U>`] | as `CurrentSession`, then step-up: a second factor if the user has one |
//! | [`RequireScope<U, S>`] | as `CurrentUser`, then the scope `S` names ([`RequiredScope`](crate::api_tokens::RequiredScope)): 403 `insufficient_scope` without it (`WWW-Authenticate: Bearer error="insufficient_scope", ..., scope="..."` in `StandardApi`) |
//! | [`InteractiveSession<U>`] | as `CurrentSession`, then refuses an [API token](crate::api_tokens) with 403 `interactive_session_required` |
//! | [`LoginRequest<U>`] | the credentials (JSON or form) and the client's address |
//! | [`LogoutRequest<U>`] | the raw token, unchecked: query, JSON body field (where the protocol puts it there), `Authorization: Bearer`, cookie |
//! | [`Client<U>`] | the request's client address and user agent, as login computes them |
//! | [`ApiJson`], [`ApiForm`], [`ApiQuery`] | actix-web's, read like axum's, with rejections in the protocol's shape (400, 413, 415, 422) |
//!
//! Each rejects with [`AuthRejection`], a [`ResponseError`] whose response is the protocol's.
//! `Option<…>` of each is `None` whenever the extractor would reject (actix-web's rule for
//! every `Option` extractor): take `Result<CurrentUser<U>, AuthRejection>` to tell a missing
//! token from a store that is down.
//!
//! # Configuration
//! `U` is your user type. Configuration is one value, an [`HttpAuth<U>`], registered with
//! [`App::configure`](::actix_web::App::configure) and [`configure`]: that adds the
//! `HttpAuth<U>` and its [`RequestRules`] (what [`ApiJson`], [`ApiForm`], [`ApiQuery`] and the
//! fallbacks read, since they do not know `U`) to the app data, and [`not_found`] as the
//! default service. Registering them yourself works too: `.app_data(http.clone())` (plain,
//! or in [`web::Data`](::actix_web::web::Data)) and `.app_data(http.request_rules())`. The
//! value is shared by every worker: each worker's `App` holds a clone of the same
//! authenticator, stores and connection pools.
//!
//! A forgotten registration compiles: every request through the extractors that need it is
//! then answered 500 with a JSON body saying it is a server configuration error, and the
//! first one logs (once per process, at error level) what to add and where.
//!
//! # Logging
//! Server-side failures (a store that is down, a missing registration) are reported through
//! [`tracing`](https://docs.rs/tracing): install a subscriber at start-up, for example
//! `tracing_subscriber::fmt::init()`, or they are not shown anywhere (keycard prints a
//! missing registration to stderr as well when no subscriber is installed).
//!
//! # Unknown routes, wrong methods, bodies
//! [`not_found`] (the default service [`configure`] installs) answers unknown paths with 404
//! in the protocol's shape; build your resources with [`resource`] so that a wrong method is
//! 405 in the protocol's shape too, instead of actix-web's empty answers. Bodies are read up
//! to [`HttpAuth::with_body_limit`] ([`DEFAULT_BODY_LIMIT`](crate::http::DEFAULT_BODY_LIMIT),
//! 16 KiB, by default) by every keycard extractor, whatever actix-web's `PayloadConfig` says;
//! a larger one is 413 in the protocol's shape.
//!
//! # Caching
//! Every answer keycard renders carries `Cache-Control: no-store`; your own handlers' answers
//! do not. Wrap your authenticated routes in [`NoStore`] so that no shared cache keeps a
//! user's data.
//!
//! ```
//! use actix_web::{test, web, App};
//! use keycard::actix_web::{resource, CurrentUser, LoginRequest, LogoutRequest};
//! use keycard::http::{HttpAuth, Response, StandardApi};
//! use keycard::{Authenticator, MemoryTokenStore, MemoryUserStore, UserRecord};
//!
//! async fn login(request: LoginRequest<UserRecord>) -> Response {
//!     request.login().await
//! }
//! async fn logout(request: LogoutRequest<UserRecord>) -> Response {
//!     request.logout().await
//! }
//! // Without a live `Authorization: Bearer` token: 401 with `WWW-Authenticate: Bearer`.
//! async fn me(me: CurrentUser<UserRecord>) -> String {
//!     me.user.email
//! }
//!
//! actix_web::rt::System::new().block_on(async {
//!     let auth = Authenticator::builder(MemoryUserStore::<UserRecord>::new(), MemoryTokenStore::new()).build();
//!     let http = HttpAuth::new(auth, StandardApi);
//!     // In a server: `HttpServer::new(move || App::new().configure(keycard::actix_web::configure(http.clone()))...)`.
//!     let app = test::init_service(
//!         App::new()
//!             .configure(keycard::actix_web::configure(http.clone()))
//!             .service(resource("/login").route(web::post().to(login)))
//!             .service(resource("/logout").route(web::delete().to(logout)))
//!             .service(resource("/me").route(web::get().to(me))),
//!     )
//!     .await;
//!     let call = |req: test::TestRequest| test::call_service(&app, req.to_request());
//!     let anonymous = call(test::TestRequest::get().uri("/me")).await;
//!     assert_eq!(anonymous.status(), 401);
//!     assert_eq!(anonymous.headers().get("www-authenticate").unwrap(), "Bearer");
//!     // Unknown paths and wrong methods: problem details, not actix-web's empty answers.
//!     assert_eq!(call(test::TestRequest::get().uri("/nothing")).await.status(), 404);
//!     assert_eq!(call(test::TestRequest::delete().uri("/me")).await.status(), 405);
//! });
//! ```

use std::fmt;
use std::future::Future;
use std::pin::Pin;

use ::actix_web::body::BoxBody;
use ::actix_web::http::header::{HeaderName, HeaderValue};
use ::actix_web::http::StatusCode;
use ::actix_web::{HttpRequest, HttpResponse, Responder, ResponseError};

pub use crate::http::{
    CurrentSession, CurrentUser, InteractiveSession, LoginRequest, LogoutRequest, RequireScope,
    SecondFactorSession,
};

mod body;
mod config;
mod extract;
mod fallbacks;
mod no_store;

pub use body::{ApiForm, ApiJson, ApiQuery};
pub use extract::{Client, CurrentSessionFuture};
pub use fallbacks::{configure, method_not_allowed, not_found, resource};
pub use no_store::{NoStore, NoStoreService};

use crate::error::Error;
use crate::http::{HttpAuth, Rejection, RequestRules, Response};

/// The former name of [`AuthRejection`] (axum's rejection has that name too: one word per
/// concept).
#[deprecated(
    since = "0.2.0",
    note = "renamed `AuthRejection`, as in `keycard::axum`"
)]
pub type AuthError = AuthRejection;

/// Why an extractor refused a request, with the protocol's answer. A [`ResponseError`]:
/// returning it (or letting an extractor return it) sends that answer.
pub struct AuthRejection {
    rejection: Rejection,
    response: Response,
}

impl AuthRejection {
    fn new<U>(http: &HttpAuth<U>, rejection: impl Into<Rejection>) -> Self {
        let rejection = rejection.into();
        Self {
            response: http.render(&rejection),
            rejection,
        }
    }

    fn with_rules(rules: &RequestRules, rejection: Rejection) -> Self {
        Self {
            response: rules.render(&rejection),
            rejection,
        }
    }

    /// Why the request was refused.
    pub fn rejection(&self) -> &Rejection {
        &self.rejection
    }

    /// The core error, unless the request itself was unreadable.
    pub fn error(&self) -> Option<&Error> {
        self.rejection.error()
    }

    /// The protocol's answer.
    pub fn response(&self) -> &Response {
        &self.response
    }
}

type LocalFuture<T> = Pin<Box<dyn Future<Output = Result<T, ::actix_web::Error>>>>;

/// Converts a keycard [`Response`] into an actix-web one: status, every header, body.
fn to_actix(response: &Response) -> HttpResponse<BoxBody> {
    let status = StatusCode::from_u16(response.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut out = HttpResponse::build(status);
    for (name, value) in &response.headers {
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(value),
        ) {
            out.append_header((name, value));
        }
    }
    out.body(response.body.clone())
}

/// Sends the status, every header and the body.
impl Responder for Response {
    type Body = BoxBody;

    fn respond_to(self, _: &HttpRequest) -> HttpResponse<BoxBody> {
        to_actix(&self)
    }
}

impl ResponseError for AuthRejection {
    fn status_code(&self) -> StatusCode {
        StatusCode::from_u16(self.response.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    fn error_response(&self) -> HttpResponse<BoxBody> {
        to_actix(&self.response)
    }
}

impl fmt::Debug for AuthRejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthRejection")
            .field("rejection", &self.rejection)
            .field("status", &self.response.status)
            .finish()
    }
}

impl fmt::Display for AuthRejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.rejection.fmt(f)
    }
}
