//! The axum adapter: extractors that authenticate a request through
//! [`HttpAuth`], and a typed rejection rendered through its
//! [`Protocol`].
//!
//! Everything that is not about axum's types lives in [`crate::http`]; this module only
//! reads axum's request parts and converts [`Response`]s.
//!
//! # The state
//! Use [`AuthState<S>`] as the router state (`S` is your user store):
//! `.with_state(AuthState::new(authenticator, protocol))`. Then every extractor below,
//! [`json_fallbacks`], and handlers taking `State<Authenticator<S>>` (register, change
//! password, sessions, second factors), `State<HttpAuth<S::User>>` or
//! `State<Arc<dyn Protocol>>` work, and you implement nothing. A state of your own holds an
//! `AuthState<S>` in a field and implements `FromRef` for what its handlers take (see
//! [`AuthState`]).
//!
//! What each needs from the state `S`, if you build it yourself:
//! [`HttpAuth<U>`](crate::http::HttpAuth)`: FromRef<S>` for the auth extractors (`U` is your
//! user type); [`RequestRules`]`: FromRef<S>` for [`ApiJson`], [`ApiForm`] and [`ApiQuery`] (the
//! protocol and the body limit); `Arc<dyn Protocol>: FromRef<S>` for [`json_fallbacks`].
//! `HttpAuth<U>` alone as the state provides all three, but not the authenticator.
//!
//! | extractor | what it does | rejects with |
//! |---|---|---|
//! | [`CurrentUser<U>`] | finds the token, validates it, loads the user | [`AuthRejection`] |
//! | [`CurrentSession<U>`] | finds the token, validates it (no user lookup) | [`AuthRejection`] |
//! | [`SecondFactorSession<U>`] | as `CurrentSession`, then step-up: a second factor if the user has one | [`AuthRejection`] (401 `insufficient_user_authentication`) |
//! | [`RequireScope<U, S>`] | as `CurrentUser`, then the scope `S` names ([`RequiredScope`]) | [`AuthRejection`] (403 `insufficient_scope`, `WWW-Authenticate: Bearer error="insufficient_scope", ..., scope="..."`) |
//! | [`InteractiveSession<U>`] | as `CurrentSession`, then refuses an [API token](crate::api_tokens) | [`AuthRejection`] (403 `interactive_session_required`) |
//! | `Option<CurrentUser<U>>`, `Option<CurrentSession<U>>` | `None` when the request carries no token | [`AuthRejection`] for a bad token or a store that is down |
//! | [`LoginRequest<U>`] | reads the credentials (JSON or form) and the client's address | [`AuthRejection`] (400/413/415/422) |
//! | [`LogoutRequest<U>`] | finds the raw token, in the body too where the protocol puts it there | [`AuthRejection`] |
//! | [`Client<U>`] | the request's client address and user agent, as login computes them | never |
//! | [`ApiJson`], [`ApiForm`], [`ApiQuery`] | axum's, with rejections in the protocol's shape | [`Response`] |
//!
//! Every keycard extractor that reads a body (login, logout, [`ApiJson`], [`ApiForm`]) reads at
//! most [`HttpAuth::with_body_limit`](crate::http::HttpAuth::with_body_limit) bytes
//! ([`DEFAULT_BODY_LIMIT`](crate::http::DEFAULT_BODY_LIMIT), 16 KiB, by default), whatever
//! axum's `DefaultBodyLimit` says; a larger body is 413 in the protocol's shape, as on
//! actix-web.
//!
//! Server-side failures (a store that is down, with its causes) are reported through
//! [`tracing`](https://docs.rs/tracing): install a subscriber at start-up, for example
//! `tracing_subscriber::fmt::init()`, or they are not shown anywhere.
//!
//! A whole server in one file (login, a protected route, logout): `examples/minimal_axum.rs`.
//!
//! ```
//! use axum::routing::{delete, get, post};
//! use axum::Router;
//! use keycard::axum::{AuthState, CurrentUser, LoginRequest, LogoutRequest};
//! use keycard::http::{Response, StandardApi};
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
//! let auth = Authenticator::builder(MemoryUserStore::<UserRecord>::new(), MemoryTokenStore::new()).build();
//! let app: Router = keycard::axum::json_fallbacks(
//!     Router::new()
//!         .route("/login", post(login))
//!         .route("/logout", delete(logout))
//!         .route("/me", get(me)),
//! )
//! .with_state(AuthState::new(auth, StandardApi));
//! # let _ = app;
//! ```
//!
//! # API tokens
//! With [API tokens](crate::api_tokens) enabled, scopes are checked by the library, not by
//! each handler: a handler taking [`RequireScope<U, S>`] never runs for a session without the
//! scope, and one taking [`InteractiveSession<U>`] never runs for an API token.
//!
//! ```
//! use axum::routing::post;
//! use axum::Router;
//! use keycard::api_tokens::{ApiTokens, RequiredScope};
//! use keycard::axum::{AuthState, InteractiveSession, RequireScope};
//! use keycard::http::StandardApi;
//! use keycard::{Authenticator, MemoryTokenStore, MemoryUserStore, UserRecord};
//!
//! struct NotesWrite;
//! impl RequiredScope for NotesWrite {
//!     const SCOPE: &'static str = "notes:write";
//! }
//!
//! // A token without `notes:write`: 403, `WWW-Authenticate: Bearer error="insufficient_scope", ...`.
//! async fn add_note(me: RequireScope<UserRecord, NotesWrite>) -> String {
//!     format!("noted for {}", me.user.email)
//! }
//! // Any API token: 403 `interactive_session_required`.
//! async fn settings(me: InteractiveSession<UserRecord>) -> String {
//!     format!("settings of {}", me.session.user_id)
//! }
//!
//! let auth = Authenticator::builder(MemoryUserStore::<UserRecord>::new(), MemoryTokenStore::new())
//!     .api_tokens(ApiTokens::new(["notes:read", "notes:write"]).expect("valid scopes"))
//!     .build();
//! let app: Router = Router::new()
//!     .route("/notes", post(add_note))
//!     .route("/settings", post(settings))
//!     .with_state(AuthState::new(auth, StandardApi));
//! # let _ = app;
//! ```
//!
//! # If a handler does not compile
//! axum reports any extractor it cannot build as ``the trait bound `fn(...) {handler}:
//! Handler<_, _>` is not satisfied``, without saying which. The causes with keycard:
//!
//! - **The state lacks a `FromRef`.** With a state of your own, each keycard extractor needs
//!   `HttpAuth<U>: FromRef<YourState>`, keycard's `ApiJson`, `ApiForm` and `ApiQuery` need
//!   `RequestRules: FromRef<YourState>`, and `State<Authenticator<S>>` needs
//!   `Authenticator<S>: FromRef<YourState>`. Fix: use [`AuthState`] as the state, or add
//!   the `FromRef` impls its docs show. (`HttpAuth<U>` as the state has no
//!   `Authenticator<S>`: switch to `AuthState`.)
//! - **The user type differs.** `CurrentUser<U>` and the others name the *user* type of the
//!   state's `HttpAuth<U>` (`S::User`, e.g. `UserRecord`), not the store type.
//! - **A body extractor is not last.** [`LoginRequest`], [`LogoutRequest`], [`ApiJson`] and
//!   [`ApiForm`] read the body: only the last argument may, and only one of them. Put
//!   [`CurrentSession`], [`CurrentUser`], [`RequireScope`], [`InteractiveSession`],
//!   [`Client`] and `State` before it.
//!
//! [`json_fallbacks`] without `Arc<dyn Protocol>: FromRef<YourState>` says so directly.
//! axum's `#[debug_handler]` (its `macros` feature) names the argument at fault.
//!
//! # Caching
//! Every answer keycard renders carries `Cache-Control: no-store`; your own handlers' answers
//! do not. Add [`no_store()`] to the authenticated routes so that no shared cache keeps a
//! user's data: `.route_layer(keycard::axum::no_store())`.
//!
//! The client's address is the connection's peer: serve with
//! `into_make_service_with_connect_info::<SocketAddr>()`, or login throttling has no address
//! to key by.
//!
//! # Typed rejections
//! [`AuthRejection`] holds a [`Rejection`] (the core [`Error`] or a bad request) and renders
//! it with the protocol. Take `Result<CurrentUser<U>, AuthRejection>` to decide yourself:
//!
//! ```
//! use axum::response::{IntoResponse, Response};
//! use keycard::axum::{AuthRejection, CurrentUser};
//! use keycard::{Error, UserRecord};
//!
//! async fn page(me: Result<CurrentUser<UserRecord>, AuthRejection>) -> Response {
//!     match me {
//!         Ok(me) => format!("hello {}", me.user.email).into_response(),
//!         Err(r) if matches!(r.error(), Some(Error::SessionExpired)) => "please log in again".into_response(),
//!         Err(r) => r.into_response(),
//!     }
//! }
//! ```

use std::fmt;
use std::future::{ready, Ready};
use std::marker::PhantomData;
use std::net::SocketAddr;
use std::ops::Deref;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{
    ConnectInfo, FromRef, FromRequest, FromRequestParts, OptionalFromRequestParts, Request, State,
};
use axum::http::request::Parts;
use axum::http::{header, HeaderValue, Method};
use axum::middleware::{map_response, MapResponseLayer};
use axum::response::IntoResponse;
use axum::Router;
use http_body_util::{BodyExt, LengthLimitError, Limited};
use serde::de::DeserializeOwned;

pub use crate::http::{
    CurrentSession, CurrentUser, InteractiveSession, LoginRequest, LogoutRequest, RequireScope,
    SecondFactorSession,
};
pub use state::AuthState;

mod state;

use crate::api_tokens::RequiredScope;
use crate::error::Error;
use crate::http::http1::{to_http, HttpHead};
use crate::http::{body, HttpAuth, Protocol, Rejection, RequestRules, Response};
use crate::session::ClientInfo;
use crate::user::User;

/// Why an extractor refused a request, with the protocol to render it. Its
/// [`IntoResponse`] is the protocol's answer; [`error`](Self::error) tells why.
pub struct AuthRejection {
    rejection: Rejection,
    protocol: Arc<dyn Protocol>,
}

/// Like [`axum::Json`], but the body limit is [`HttpAuth`]'s and rejections are in the
/// protocol's shape, with axum's statuses and messages: 415 without a JSON `Content-Type`,
/// 413 over the body limit, 400 for malformed JSON, 422 for JSON that does not fit `T`.
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiJson<T>(pub T);

/// Like [`axum::Form`], but the body limit is [`HttpAuth`]'s and rejections are in the
/// protocol's shape, with axum's statuses and messages.
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiForm<T>(pub T);

/// Like [`axum::extract::Query`], but rejections are in the protocol's shape.
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiQuery<T>(pub T);

impl AuthRejection {
    fn new<U>(http: &HttpAuth<U>, rejection: impl Into<Rejection>) -> Self {
        Self {
            rejection: rejection.into(),
            protocol: http.protocol_arc(),
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
    pub fn response(&self) -> Response {
        self.rejection.render(&*self.protocol)
    }
}

impl fmt::Debug for AuthRejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthRejection")
            .field("rejection", &self.rejection)
            .finish_non_exhaustive()
    }
}

impl fmt::Display for AuthRejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.rejection.fmt(f)
    }
}

impl std::error::Error for AuthRejection {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.rejection)
    }
}

impl IntoResponse for AuthRejection {
    fn into_response(self) -> axum::response::Response {
        self.response().into_response()
    }
}

/// Copies the status, every header (`Content-Type`, `Cache-Control: no-store`,
/// `Retry-After`, `WWW-Authenticate`, ...) and the body.
impl IntoResponse for Response {
    fn into_response(self) -> axum::response::Response {
        to_http::<axum::body::Body>(self)
    }
}

impl<U> FromRef<HttpAuth<U>> for Arc<dyn Protocol> {
    fn from_ref(http: &HttpAuth<U>) -> Self {
        http.protocol_arc()
    }
}

impl<U> FromRef<HttpAuth<U>> for RequestRules {
    fn from_ref(http: &HttpAuth<U>) -> Self {
        http.request_rules()
    }
}

/// The request's head as the neutral layer reads it; the peer from `ConnectInfo`.
fn head(parts: &Parts) -> HttpHead<'_> {
    HttpHead::with_peer_in(
        &parts.method,
        &parts.headers,
        &parts.uri,
        &parts.extensions,
        |extensions| {
            extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|ConnectInfo(addr)| addr.ip())
        },
    )
}

impl<S, U> FromRequestParts<S> for CurrentUser<U>
where
    S: Send + Sync,
    U: User + Clone + 'static,
    HttpAuth<U>: FromRef<S>,
{
    type Rejection = AuthRejection;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, AuthRejection> {
        let http = HttpAuth::<U>::from_ref(state);
        let outcome = http.current_user(&head(parts)).await;
        outcome.map_err(|rejection| AuthRejection::new(&http, rejection))
    }
}

impl<S, U> OptionalFromRequestParts<S> for CurrentUser<U>
where
    S: Send + Sync,
    U: User + Clone + 'static,
    HttpAuth<U>: FromRef<S>,
{
    type Rejection = AuthRejection;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &S,
    ) -> Result<Option<Self>, AuthRejection> {
        let http = HttpAuth::<U>::from_ref(state);
        let outcome = http.optional_user(&head(parts)).await;
        outcome.map_err(|rejection| AuthRejection::new(&http, rejection))
    }
}

impl<S, U> FromRequestParts<S> for CurrentSession<U>
where
    S: Send + Sync,
    U: User + Clone + 'static,
    HttpAuth<U>: FromRef<S>,
{
    type Rejection = AuthRejection;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, AuthRejection> {
        let http = HttpAuth::<U>::from_ref(state);
        // The state's copy of the HTTP layer moves into the extractor: no second count.
        match http.validate_session(&head(parts)).await {
            Ok(session) => Ok(CurrentSession::new(session, http)),
            Err(rejection) => Err(AuthRejection::new(&http, rejection)),
        }
    }
}

impl<S, U> FromRequestParts<S> for SecondFactorSession<U>
where
    S: Send + Sync,
    U: User + Clone + 'static,
    HttpAuth<U>: FromRef<S>,
{
    type Rejection = AuthRejection;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, AuthRejection> {
        let http = HttpAuth::<U>::from_ref(state);
        let outcome = http.second_factor_session(&head(parts)).await;
        outcome.map_err(|rejection| AuthRejection::new(&http, rejection))
    }
}

impl<S, U> OptionalFromRequestParts<S> for CurrentSession<U>
where
    S: Send + Sync,
    U: User + Clone + 'static,
    HttpAuth<U>: FromRef<S>,
{
    type Rejection = AuthRejection;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &S,
    ) -> Result<Option<Self>, AuthRejection> {
        let http = HttpAuth::<U>::from_ref(state);
        let outcome = http.optional_session(&head(parts)).await;
        outcome.map_err(|rejection| AuthRejection::new(&http, rejection))
    }
}

impl<St, U, S> FromRequestParts<St> for RequireScope<U, S>
where
    St: Send + Sync,
    U: User + Clone + 'static,
    S: RequiredScope,
    HttpAuth<U>: FromRef<St>,
{
    type Rejection = AuthRejection;

    async fn from_request_parts(parts: &mut Parts, state: &St) -> Result<Self, AuthRejection> {
        let http = HttpAuth::<U>::from_ref(state);
        let outcome = http.require_scope_of::<S>(&head(parts)).await;
        outcome.map_err(|rejection| AuthRejection::new(&http, rejection))
    }
}

impl<S, U> FromRequestParts<S> for InteractiveSession<U>
where
    S: Send + Sync,
    U: User + Clone + 'static,
    HttpAuth<U>: FromRef<S>,
{
    type Rejection = AuthRejection;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, AuthRejection> {
        let http = HttpAuth::<U>::from_ref(state);
        let outcome = http.interactive_session(&head(parts)).await;
        outcome.map_err(|rejection| AuthRejection::new(&http, rejection))
    }
}

/// The client of the request being handled: its address and user agent, computed exactly as
/// [`LoginRequest`] does ([`HttpAuth::client_of`]: the connection's peer from `ConnectInfo`,
/// or the address your [trusted proxies](crate::http::TrustedProxies) forwarded). Never
/// rejects: without `ConnectInfo` the address is `None`.
///
/// Handlers that re-verify a password (`verify_password`, `reauthenticate`,
/// `change_password`) pass this, the *request's* client, to the core, not the address the
/// session logged in from, so throttling and audit events name whoever is asking now. `U` is
/// the user type of your [`HttpAuth<U>`] (the state it is read from).
///
/// ```
/// use keycard::axum::{Client, CurrentSession};
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

impl<S, U> FromRequestParts<S> for Client<U>
where
    S: Send + Sync,
    HttpAuth<U>: FromRef<S>,
{
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &S,
    ) -> Result<Self, std::convert::Infallible> {
        let http = HttpAuth::<U>::from_ref(state);
        Ok(Self {
            info: http.client_of(&head(parts)),
            user: PhantomData,
        })
    }
}

/// The request's `Content-Type`, as text.
fn content_type(parts: &Parts) -> Option<&str> {
    parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
}

/// The body's bytes, at most `limit` of them (see [`HttpAuth::with_body_limit`]): 413 over
/// it, whatever axum's `DefaultBodyLimit` says.
async fn body_bytes(
    parts: &Parts,
    body: axum::body::Body,
    limit: usize,
) -> Result<Bytes, Rejection> {
    let length = parts.headers.get(header::CONTENT_LENGTH);
    body::check_length(length.and_then(|value| value.to_str().ok()), limit)?;
    match Limited::new(body, limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(error) if over_limit(&*error) => Err(body::too_large()),
        Err(error) => Err(body::unreadable(error)),
    }
}

/// Whether a body error is, or was caused by, a length limit (ours, or a layer's).
fn over_limit(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut cause = Some(error);
    while let Some(error) = cause {
        if error.is::<LengthLimitError>() {
            return true;
        }
        cause = error.source();
    }
    false
}

impl<S, U> FromRequest<S> for LoginRequest<U>
where
    S: Send + Sync,
    U: User + Clone + 'static,
    HttpAuth<U>: FromRef<S>,
{
    type Rejection = AuthRejection;

    async fn from_request(req: Request, state: &S) -> Result<Self, AuthRejection> {
        let http = HttpAuth::<U>::from_ref(state);
        let (parts, body) = req.into_parts();
        let outcome = async {
            http.check_login_origin(&head(&parts))?;
            let bytes = body_bytes(&parts, body, http.body_limit()).await?;
            http.login_request(&head(&parts), &bytes)
        };
        outcome
            .await
            .map_err(|rejection| AuthRejection::new(&http, rejection))
    }
}

impl<S, U> FromRequest<S> for LogoutRequest<U>
where
    S: Send + Sync,
    U: User + Clone + 'static,
    HttpAuth<U>: FromRef<S>,
{
    type Rejection = AuthRejection;

    async fn from_request(req: Request, state: &S) -> Result<Self, AuthRejection> {
        let http = HttpAuth::<U>::from_ref(state);
        let (parts, body) = req.into_parts();
        let outcome = async {
            let bytes = if http.logout_needs_body(&head(&parts)) {
                body_bytes(&parts, body, http.body_limit()).await?
            } else {
                Bytes::new()
            };
            http.logout_request(&head(&parts), &bytes)
        };
        outcome
            .await
            .map_err(|rejection| AuthRejection::new(&http, rejection))
    }
}

impl<S, T> FromRequest<S> for ApiJson<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
    RequestRules: FromRef<S>,
{
    type Rejection = Response;

    async fn from_request(req: Request, state: &S) -> Result<Self, Response> {
        let rules = RequestRules::from_ref(state);
        let (parts, payload) = req.into_parts();
        let outcome = async {
            if !body::is_json_content_type(content_type(&parts)) {
                return Err(body::not_json());
            }
            let bytes = body_bytes(&parts, payload, rules.body_limit()).await?;
            body::json(&bytes)
        };
        outcome.await.map(Self).map_err(|r| rules.render(&r))
    }
}

impl<S, T> FromRequest<S> for ApiForm<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
    RequestRules: FromRef<S>,
{
    type Rejection = Response;

    async fn from_request(req: Request, state: &S) -> Result<Self, Response> {
        let rules = RequestRules::from_ref(state);
        let (parts, payload) = req.into_parts();
        let outcome = async {
            if parts.method == Method::GET {
                let query = parts.uri.query().unwrap_or_default();
                return body::form(query.as_bytes(), true);
            }
            if !body::is_form_content_type(content_type(&parts)) {
                return Err(body::not_a_form());
            }
            let bytes = body_bytes(&parts, payload, rules.body_limit()).await?;
            body::form(&bytes, parts.method == Method::HEAD)
        };
        outcome.await.map(Self).map_err(|r| rules.render(&r))
    }
}

impl<S, T> FromRequestParts<S> for ApiQuery<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
    RequestRules: FromRef<S>,
{
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Response> {
        body::query(parts.uri.query().unwrap_or_default())
            .map(Self)
            .map_err(|r| RequestRules::from_ref(state).render(&r))
    }
}

/// The layer [`no_store()`] returns: a [`MapResponseLayer`] that adds
/// `Cache-Control: no-store`.
pub type NoStoreLayer =
    MapResponseLayer<fn(axum::response::Response) -> Ready<axum::response::Response>, (), ()>;

/// A layer that adds `Cache-Control: no-store` to every answer of the routes it wraps, unless
/// the handler set a `Cache-Control` of its own. Put it on your authenticated routes, so that
/// no browser or shared cache keeps a user's data after logout: keycard's own answers
/// (logins, rejections) already carry it.
///
/// ```
/// use axum::routing::get;
/// use axum::Router;
/// use keycard::axum::CurrentUser;
/// use keycard::http::{HttpAuth, StandardApi};
/// use keycard::{Authenticator, MemoryTokenStore, MemoryUserStore, UserRecord};
///
/// async fn me(me: CurrentUser<UserRecord>) -> String {
///     me.user.email
/// }
///
/// let auth = Authenticator::builder(MemoryUserStore::<UserRecord>::new(), MemoryTokenStore::new()).build();
/// let app: Router = Router::new()
///     .route("/me", get(me))
///     // Every route above this line answers with `Cache-Control: no-store`.
///     .route_layer(keycard::axum::no_store())
///     .with_state(HttpAuth::new(auth, StandardApi));
/// # let _ = app;
/// ```
pub fn no_store() -> NoStoreLayer {
    map_response(add_no_store as fn(_) -> _)
}

/// Adds `Cache-Control: no-store` unless the response has a `Cache-Control`.
fn add_no_store(mut response: axum::response::Response) -> Ready<axum::response::Response> {
    let headers = response.headers_mut();
    if !headers.contains_key(header::CACHE_CONTROL) {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    ready(response)
}

/// Fallback handler for unknown routes: 404 in the protocol's shape.
pub async fn not_found(State(protocol): State<Arc<dyn Protocol>>) -> Response {
    protocol.rejection(404, "Not found")
}

/// Fallback handler for a known route called with another method: 405 in the protocol's
/// shape.
pub async fn method_not_allowed(State(protocol): State<Arc<dyn Protocol>>) -> Response {
    protocol.rejection(405, "Method not allowed")
}

/// Installs [`not_found`] and [`method_not_allowed`] as the router's fallbacks, so that no
/// answer is axum's empty or plain-text default.
pub fn json_fallbacks<S>(router: Router<S>) -> Router<S>
where
    S: Clone + Send + Sync + 'static,
    Arc<dyn Protocol>: FromRef<S>,
{
    router
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::StatusCode;

    #[test]
    fn response_copies_status_and_every_header() {
        let r = Response::json(429, &serde_json::json!({"message": "slow down"}))
            .with_retry_after(Some(7))
            .with_header("www-authenticate", "Bearer")
            .into_response();
        assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(r.headers()[header::CONTENT_TYPE], "application/json");
        assert_eq!(r.headers()[header::CACHE_CONTROL], "no-store");
        assert_eq!(r.headers()[header::RETRY_AFTER], "7");
        assert_eq!(r.headers()[header::WWW_AUTHENTICATE], "Bearer");
    }
}
