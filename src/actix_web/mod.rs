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
//! | [`LoginRequest<U>`] | the credentials (JSON or form) and the client's address |
//! | [`LogoutRequest<U>`] | the raw token, unchecked: query, JSON body field (where the protocol puts it there), `Authorization: Bearer`, cookie |
//! | [`Client<U>`] | the request's client address and user agent, as login computes them |
//!
//! Each rejects with [`AuthError`], a [`ResponseError`] whose response is the protocol's.
//! `Option<…>` of each is `None` whenever the extractor would reject (actix-web's rule for
//! every `Option` extractor): take `Result<CurrentUser<U>, AuthError>` to tell a missing
//! token from a store that is down.
//!
//! `U` is your user type. Configuration is one value: register an
//! [`HttpAuth<U>`] with [`App::app_data`](::actix_web::App::app_data) (plain, or in
//! [`web::Data`](::actix_web::web::Data)). It is shared by every worker: each worker's
//! `App` holds a clone of the same authenticator, stores and connection pools.
//!
//! Every answer keycard renders carries `Cache-Control: no-store`; your own handlers' answers
//! do not. Wrap your authenticated routes in [`NoStore`] so that no shared cache keeps a
//! user's data.
//!
//! ```
//! use actix_web::{test, web, App};
//! use keycard::actix_web::{CurrentUser, LoginRequest, LogoutRequest};
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
//!     // In a server: `HttpServer::new(move || App::new().app_data(http.clone())...)`.
//!     let app = test::init_service(
//!         App::new()
//!             .app_data(http.clone())
//!             .route("/login", web::post().to(login))
//!             .route("/logout", web::delete().to(logout))
//!             .route("/me", web::get().to(me)),
//!     )
//!     .await;
//!     let anonymous = test::call_service(&app, test::TestRequest::get().uri("/me").to_request()).await;
//!     assert_eq!(anonymous.status(), 401);
//!     assert_eq!(anonymous.headers().get("www-authenticate").unwrap(), "Bearer");
//! });
//! ```

use std::fmt;
use std::future::{ready, Future, Ready};
use std::marker::PhantomData;
use std::net::IpAddr;
use std::ops::Deref;
use std::pin::Pin;

use ::actix_web::body::BoxBody;
use ::actix_web::dev::{
    forward_ready, Payload, Service, ServiceRequest, ServiceResponse, Transform,
};
use ::actix_web::http::header::{HeaderName, HeaderValue, CACHE_CONTROL};
use ::actix_web::http::StatusCode;
use ::actix_web::web::{Bytes, Data};
use ::actix_web::{FromRequest, HttpRequest, HttpResponse, Responder, ResponseError};

pub use crate::http::{
    CurrentSession, CurrentUser, LoginRequest, LogoutRequest, SecondFactorSession,
};

use crate::error::Error;
use crate::http::{HttpAuth, Rejection, RequestHead, Response};
use crate::session::ClientInfo;
use crate::user::User;

/// Why an extractor refused a request, with the protocol's answer. A [`ResponseError`]:
/// returning it (or letting an extractor return it) sends that answer.
pub struct AuthError {
    rejection: Rejection,
    response: Response,
}

impl AuthError {
    fn new<U>(http: &HttpAuth<U>, rejection: impl Into<Rejection>) -> Self {
        let rejection = rejection.into();
        Self {
            response: http.render(&rejection),
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

/// An actix-web request as the neutral layer reads it.
struct Head<'a>(&'a HttpRequest);

impl RequestHead for Head<'_> {
    fn header_values<'a>(&'a self, name: &str) -> Box<dyn Iterator<Item = &'a str> + 'a> {
        Box::new(
            self.0
                .headers()
                .get_all(name)
                .filter_map(|value| value.to_str().ok()),
        )
    }

    fn method(&self) -> &str {
        self.0.method().as_str()
    }

    fn query(&self) -> Option<&str> {
        Some(self.0.query_string()).filter(|q| !q.is_empty())
    }

    fn peer_ip(&self) -> Option<IpAddr> {
        self.0.peer_addr().map(|addr| addr.ip())
    }
}

/// The registered [`HttpAuth<U>`], plain or in `web::Data`.
fn http_auth<U: 'static>(req: &HttpRequest) -> Result<HttpAuth<U>, ::actix_web::Error> {
    if let Some(http) = req.app_data::<HttpAuth<U>>() {
        return Ok(http.clone());
    }
    if let Some(http) = req.app_data::<Data<HttpAuth<U>>>() {
        return Ok(HttpAuth::clone(http));
    }
    tracing::error!(
        "keycard: no HttpAuth<{}> registered; add it with App::app_data",
        std::any::type_name::<U>()
    );
    Err(::actix_web::error::ErrorInternalServerError(
        "Internal server error",
    ))
}

type LocalFuture<T> = Pin<Box<dyn Future<Output = Result<T, ::actix_web::Error>>>>;

impl<U: User + Clone + 'static> FromRequest for CurrentUser<U> {
    type Error = ::actix_web::Error;
    type Future = LocalFuture<Self>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            let http = http_auth::<U>(&req)?;
            let outcome = http.current_user(&Head(&req)).await;
            outcome.map_err(|rejection| AuthError::new(&http, rejection).into())
        })
    }
}

impl<U: User + Clone + 'static> FromRequest for CurrentSession<U> {
    type Error = ::actix_web::Error;
    type Future = LocalFuture<Self>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            let http = http_auth::<U>(&req)?;
            let outcome = http.current_session(&Head(&req)).await;
            outcome.map_err(|rejection| AuthError::new(&http, rejection).into())
        })
    }
}

impl<U: User + Clone + 'static> FromRequest for SecondFactorSession<U> {
    type Error = ::actix_web::Error;
    type Future = LocalFuture<Self>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            let http = http_auth::<U>(&req)?;
            let outcome = http.second_factor_session(&Head(&req)).await;
            outcome.map_err(|rejection| AuthError::new(&http, rejection).into())
        })
    }
}

/// The client of the request being handled: its address and user agent, computed exactly as
/// [`LoginRequest`] does ([`HttpAuth::client_of`]: the connection's peer, or the address your
/// [trusted proxies](crate::http::TrustedProxies) forwarded). Fails (500) only when no
/// [`HttpAuth<U>`] is registered.
///
/// Handlers that re-verify a password (`verify_password`, `reauthenticate`,
/// `change_password`) pass this, the *request's* client, to the core, not the address the
/// session logged in from, so throttling and audit events name whoever is asking now.
///
/// ```
/// use keycard::actix_web::{Client, CurrentSession};
/// use keycard::UserRecord;
///
/// async fn whoami(me: CurrentSession<UserRecord>, client: Client<UserRecord>) -> String {
///     let ip = client.info.ip.map_or_else(|| "-".to_owned(), |ip| ip.to_string());
///     format!("user {} from {ip}", me.session.user_id)
/// }
/// ```
pub struct Client<U> {
    /// The client's address and user agent.
    pub info: ClientInfo,
    user: PhantomData<fn() -> U>,
}

impl<U> Client<U> {
    /// The client's address and user agent.
    pub fn into_inner(self) -> ClientInfo {
        self.info
    }
}

impl<U> Deref for Client<U> {
    type Target = ClientInfo;

    fn deref(&self) -> &ClientInfo {
        &self.info
    }
}

impl<U> Clone for Client<U> {
    fn clone(&self) -> Self {
        Self {
            info: self.info.clone(),
            user: PhantomData,
        }
    }
}

impl<U> fmt::Debug for Client<U> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Client").field(&self.info).finish()
    }
}

impl<U: 'static> FromRequest for Client<U> {
    type Error = ::actix_web::Error;
    type Future = Ready<Result<Self, ::actix_web::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(http_auth::<U>(req).map(|http| Self {
            info: http.client_of(&Head(req)),
            user: PhantomData,
        }))
    }
}

/// The body's bytes under actix-web's payload limit, or the status actix would answer.
async fn body_bytes(req: &HttpRequest, payload: &mut Payload) -> Result<Bytes, Rejection> {
    Bytes::from_request(req, payload).await.map_err(|error| {
        let status = error.as_response_error().status_code().as_u16();
        Rejection::unreadable_body(status, error.to_string())
    })
}

impl<U: User + Clone + 'static> FromRequest for LoginRequest<U> {
    type Error = ::actix_web::Error;
    type Future = LocalFuture<Self>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let req = req.clone();
        let mut payload = payload.take();
        Box::pin(async move {
            let http = http_auth::<U>(&req)?;
            let outcome = async {
                http.check_login_origin(&Head(&req))?;
                let bytes = body_bytes(&req, &mut payload).await?;
                http.login_request(&Head(&req), &bytes)
            };
            outcome
                .await
                .map_err(|rejection| AuthError::new(&http, rejection).into())
        })
    }
}

impl<U: User + Clone + 'static> FromRequest for LogoutRequest<U> {
    type Error = ::actix_web::Error;
    type Future = LocalFuture<Self>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let req = req.clone();
        let mut payload = payload.take();
        Box::pin(async move {
            let http = http_auth::<U>(&req)?;
            let outcome = async {
                let bytes = if http.logout_needs_body(&Head(&req)) {
                    body_bytes(&req, &mut payload).await?
                } else {
                    Bytes::new()
                };
                http.logout_request(&Head(&req), &bytes)
            };
            outcome
                .await
                .map_err(|rejection| AuthError::new(&http, rejection).into())
        })
    }
}

/// Middleware that adds `Cache-Control: no-store` to every answer of the app, scope or resource
/// it wraps, unless the handler set a `Cache-Control` of its own. Wrap your authenticated
/// routes in it, so that no browser or shared cache keeps a user's data after logout:
/// keycard's own answers (logins, rejections) already carry it.
///
/// ```
/// use actix_web::{test, web, App};
/// use keycard::actix_web::NoStore;
///
/// actix_web::rt::System::new().block_on(async {
///     let app = test::init_service(
///         App::new().service(
///             web::scope("/api")
///                 .wrap(NoStore)
///                 .route("/budgets", web::get().to(|| async { "[]" })),
///         ),
///     )
///     .await;
///     let reply = test::call_service(&app, test::TestRequest::get().uri("/api/budgets").to_request()).await;
///     assert_eq!(reply.headers().get("cache-control").unwrap(), "no-store");
/// });
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct NoStore;

/// The service [`NoStore`] wraps around yours.
#[derive(Debug)]
pub struct NoStoreService<S> {
    inner: S,
}

impl<S, B> Transform<S, ServiceRequest> for NoStore
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = ::actix_web::Error>,
    S::Future: 'static,
{
    type Response = ServiceResponse<B>;
    type Error = ::actix_web::Error;
    type Transform = NoStoreService<S>;
    type InitError = ();
    type Future = Ready<Result<NoStoreService<S>, ()>>;

    fn new_transform(&self, inner: S) -> Self::Future {
        ready(Ok(NoStoreService { inner }))
    }
}

impl<S, B> Service<ServiceRequest> for NoStoreService<S>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = ::actix_web::Error>,
    S::Future: 'static,
{
    type Response = ServiceResponse<B>;
    type Error = ::actix_web::Error;
    type Future = LocalFuture<ServiceResponse<B>>;

    forward_ready!(inner);

    fn call(&self, request: ServiceRequest) -> Self::Future {
        let answer = self.inner.call(request);
        Box::pin(async move {
            let mut response = answer.await?;
            let headers = response.headers_mut();
            if !headers.contains_key(CACHE_CONTROL) {
                headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
            }
            Ok(response)
        })
    }
}

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

impl ResponseError for AuthError {
    fn status_code(&self) -> StatusCode {
        StatusCode::from_u16(self.response.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    fn error_response(&self) -> HttpResponse<BoxBody> {
        to_actix(&self.response)
    }
}

impl fmt::Debug for AuthError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthError")
            .field("rejection", &self.rejection)
            .field("status", &self.response.status)
            .finish()
    }
}

impl fmt::Display for AuthError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.rejection.fmt(f)
    }
}
