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
//! | [`LoginRequest<U>`] | the credentials (JSON or form) and the client's address |
//! | [`LogoutRequest<U>`] | the raw token, unchecked: query, JSON body field (where the protocol puts it there), `Authorization: Bearer`, cookie |
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
//! ```no_run
//! use actix_web::{web, App, HttpServer};
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
//! # fn main() -> std::io::Result<()> {
//! actix_web::rt::System::new().block_on(async {
//!     let auth = Authenticator::builder(MemoryUserStore::<UserRecord>::new(), MemoryTokenStore::new()).build();
//!     let http = HttpAuth::new(auth, StandardApi);
//!     HttpServer::new(move || {
//!         App::new()
//!             .app_data(http.clone())
//!             .route("/login", web::post().to(login))
//!             .route("/logout", web::delete().to(logout))
//!             .route("/me", web::get().to(me))
//!     })
//!     .bind("127.0.0.1:8080")?
//!     .run()
//!     .await
//! })
//! # }
//! ```

use std::fmt;
use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;

use ::actix_web::body::BoxBody;
use ::actix_web::dev::Payload;
use ::actix_web::http::header::{HeaderName, HeaderValue};
use ::actix_web::http::StatusCode;
use ::actix_web::web::{Bytes, Data};
use ::actix_web::{FromRequest, HttpRequest, HttpResponse, Responder, ResponseError};

use crate::error::Error;
use crate::http::{Credentials, HttpAuth, Rejection, RequestHead, Response, SessionToken};
use crate::session::{ClientInfo, Session};
use crate::user::User;

/// The authenticated user and session ([`HttpAuth::validate`]).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct CurrentUser<U> {
    /// The user the token belongs to.
    pub user: U,
    /// The live session.
    pub session: Session,
}

/// The session only, without a user lookup ([`HttpAuth::validate_session`]). `U` is the user
/// type of the registered [`HttpAuth<U>`].
#[non_exhaustive]
pub struct CurrentSession<U> {
    /// The live session.
    pub session: Session,
    http: HttpAuth<U>,
}

/// A login request: the credentials (a JSON or form body, chosen by `Content-Type`) and the
/// client's address and user agent. The body size limit is actix-web's
/// [`PayloadConfig`](::actix_web::web::PayloadConfig) (413 above it).
#[non_exhaustive]
pub struct LoginRequest<U> {
    /// What the client sent.
    pub credentials: Credentials,
    /// Who sent it.
    pub client: ClientInfo,
    http: HttpAuth<U>,
}

/// A logout request: the raw token, unchecked (logout must not fail on a dead token), looked
/// for in the JSON body too when the [`TokenSource`](crate::http::TokenSource) names a field.
#[non_exhaustive]
pub struct LogoutRequest<U> {
    /// The token as sent.
    pub token: SessionToken,
    http: HttpAuth<U>,
}

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

impl<U: User + Clone + 'static> LoginRequest<U> {
    /// Logs in and renders the outcome ([`HttpAuth::login`]).
    pub async fn login(&self) -> Response {
        self.http
            .login(&self.credentials, self.client.clone())
            .await
    }
}

impl<U: User + Clone + 'static> LogoutRequest<U> {
    /// Logs out and renders the outcome ([`HttpAuth::logout`]).
    pub async fn logout(&self) -> Response {
        self.http.logout(&self.token).await
    }
}

impl<U> CurrentSession<U> {
    /// The [`HttpAuth`] the session was validated with.
    pub fn http(&self) -> &HttpAuth<U> {
        &self.http
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
            match http.validate(&Head(&req)).await {
                Ok(me) => Ok(Self {
                    user: me.user,
                    session: me.session,
                }),
                Err(rejection) => Err(AuthError::new(&http, rejection).into()),
            }
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
            match http.validate_session(&Head(&req)).await {
                Ok(session) => Ok(Self { session, http }),
                Err(rejection) => Err(AuthError::new(&http, rejection).into()),
            }
        })
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
            let head = Head(&req);
            let parsed = match http.check_login_origin(&head) {
                Ok(()) => match body_bytes(&req, &mut payload).await {
                    Ok(bytes) => http
                        .credential_fields()
                        .from_body(head.media_type().as_deref(), &bytes),
                    Err(rejection) => Err(rejection),
                },
                Err(rejection) => Err(rejection),
            };
            match parsed {
                Ok(credentials) => Ok(Self {
                    credentials,
                    client: http.client_of(&head),
                    http,
                }),
                Err(rejection) => Err(AuthError::new(&http, rejection).into()),
            }
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
            let source = http.token_source();
            let found = match source.find_in_query(&Head(&req)) {
                Some(token) => Ok(token),
                None => match source.json_field() {
                    Some(_) => match body_bytes(&req, &mut payload).await {
                        Ok(bytes) => source.require_with_body(&Head(&req), &bytes),
                        Err(rejection) => Err(rejection),
                    },
                    None => source.require_with_body(&Head(&req), &[]),
                },
            };
            let checked = found.and_then(|token| {
                http.check_token_origin(&Head(&req), &token)?;
                Ok(token)
            });
            match checked {
                Ok(token) => Ok(Self { token, http }),
                Err(rejection) => Err(AuthError::new(&http, rejection).into()),
            }
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

impl<U> fmt::Debug for CurrentSession<U> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CurrentSession")
            .field("session", &self.session)
            .finish_non_exhaustive()
    }
}

impl<U> fmt::Debug for LoginRequest<U> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LoginRequest")
            .field("credentials", &self.credentials)
            .field("client", &self.client)
            .finish_non_exhaustive()
    }
}

impl<U> fmt::Debug for LogoutRequest<U> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LogoutRequest")
            .field("token", &self.token)
            .finish_non_exhaustive()
    }
}
