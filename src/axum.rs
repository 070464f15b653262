//! The axum adapter: extractors that find the session token where the protocol puts it,
//! check it with the core, and render every rejection through a [`Protocol`].
//!
//! The adapter only extracts, calls the [`Authenticator`] and renders: which status and body
//! an outcome gets is decided by the [`Protocol`] (see [`crate::http`]), never here.
//!
//! # State
//! The extractors take what they need from your router state with [`FromRef`]; [`AuthState`]
//! provides all of it:
//!
//! | extractor | needs from state |
//! |---|---|
//! | [`CurrentUser<U>`], [`CurrentSession<U>`] | [`Authenticator<U>`], `Arc<dyn Protocol>`, [`TokenSource`] |
//! | [`SessionToken`] | `Arc<dyn Protocol>`, [`TokenSource`] |
//! | [`Json`], [`Form`], [`Query`], [`JsonOrForm`] | `Arc<dyn Protocol>` |
//! | [`ClientMeta`] | nothing |
//!
//! ```
//! use axum::extract::{DefaultBodyLimit, State};
//! use axum::routing::{delete, get, post};
//! use axum::Router;
//! use keycard::axum::{AuthState, ClientMeta, Credentials, CurrentUser, Json, SessionToken, TokenSource};
//! use keycard::http::{LoginApi, Response};
//! use keycard::{Authenticator, MemoryTokenStore, MemoryUserStore, UserRecord};
//!
//! type Users = MemoryUserStore<UserRecord>;
//!
//! // POST /login {"email": ..., "password": ...}
//! async fn login(
//!     State(s): State<AuthState<Users>>,
//!     ClientMeta(client): ClientMeta,
//!     Json(c): Json<Credentials>,
//! ) -> Response {
//!     keycard::axum::login(&s.auth, &*s.protocol, &c.email, &c.password, client).await
//! }
//!
//! // DELETE /logout {"auth_token": ...} (or ?auth_token=, or Authorization: Bearer)
//! async fn logout(State(s): State<AuthState<Users>>, token: SessionToken) -> Response {
//!     keycard::axum::logout(&s.auth, &*s.protocol, &token).await
//! }
//!
//! // GET /me?auth_token=... : without a live token, the protocol's 401 (503 if the store is down)
//! async fn me(me: CurrentUser<Users>) -> String {
//!     me.user.email
//! }
//!
//! // `AuthState` holds the authenticator, the protocol and the token source, and hands each
//! // extractor its part. An app with more state implements `FromRef` for those three instead.
//! let auth = Authenticator::builder(Users::new(), MemoryTokenStore::new()).build();
//! let state = AuthState::new(auth, LoginApi, TokenSource::login_api());
//! let routes = Router::new()
//!     .route("/login", post(login))
//!     .route("/logout", delete(logout))
//!     .route("/me", get(me));
//! // JSON 404 and 405 in the protocol's shape; bodies over 16 KiB get a JSON 413.
//! let app: Router = keycard::axum::json_fallbacks(routes)
//!     .layer(DefaultBodyLimit::max(16 * 1024))
//!     .with_state(state);
//! # let _ = app;
//! ```
//!
//! # Where the token is looked for
//! A [`TokenSource`] names the protocol's place: a query parameter (`?token=` for seed 000,
//! `?auth_token=` for seed 003) and, for [`SessionToken`] only, a field of a JSON body (seed
//! 003's logout). `Authorization: Bearer <token>` is accepted as well. An empty value counts as
//! absent; no token at all is [`Error::MissingToken`].
//!
//! # Rejections
//! Every rejection is a [`crate::http::Response`] built by the protocol: core errors through
//! [`Protocol::error`], malformed input through [`Protocol::rejection`] with the status axum
//! would have used (400 bad JSON syntax, 413 body over the limit, 415 wrong content type, 422
//! missing or mistyped field). Server-side failures (5xx) are logged with `tracing`, with the
//! error's source chain; the body never carries it.

use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, FromRef, FromRequest, FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::IntoResponse;
use axum::Router;
use serde::de::{self, DeserializeOwned, IgnoredAny, MapAccess, Visitor};
use serde::{Deserialize, Deserializer};
use serde_json::{Map, Value};
use zeroize::Zeroizing;

use crate::authenticator::Authenticator;
use crate::error::Error;
use crate::http::{Protocol, Response, TrustedProxies};
use crate::session::{ClientInfo, Session};
use crate::user::UserStore;

/// Where a request carries its session token, besides `Authorization: Bearer`.
///
/// ```
/// use keycard::axum::TokenSource;
/// // seed 000: `?token=` on every request
/// let budgets = TokenSource::sessions_api();
/// // seed 003: `?auth_token=`, or `{"auth_token": ...}` in a JSON body (logout)
/// let increase = TokenSource::login_api();
/// assert_eq!(increase, TokenSource::query("auth_token").with_json_field("auth_token"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenSource {
    query: Option<Cow<'static, str>>,
    json_field: Option<Cow<'static, str>>,
}

impl TokenSource {
    /// The token is in the query parameter `name`, or in `Authorization: Bearer`.
    pub fn query(name: impl Into<Cow<'static, str>>) -> Self {
        Self {
            query: Some(name.into()),
            json_field: None,
        }
    }

    /// The token is only in `Authorization: Bearer`.
    pub fn bearer() -> Self {
        Self {
            query: None,
            json_field: None,
        }
    }

    /// [`SessionToken`] also looks in the JSON body's field `name` (a string). The other
    /// extractors never read the body.
    #[must_use]
    pub fn with_json_field(mut self, name: impl Into<Cow<'static, str>>) -> Self {
        self.json_field = Some(name.into());
        self
    }

    /// Seed 000 ([`SessionsApi`](crate::http::SessionsApi)): `?token=`.
    pub fn sessions_api() -> Self {
        Self::query("token")
    }

    /// Seed 003 ([`LoginApi`](crate::http::LoginApi)): `?auth_token=`, or `auth_token` in a
    /// JSON body.
    pub fn login_api() -> Self {
        Self::query("auth_token").with_json_field("auth_token")
    }
}

/// Router state holding everything the extractors need: the authenticator, the protocol and
/// where tokens are found. Use it as your router's state when authentication is all your
/// state holds; it implements [`FromRef`] for each of the three parts, so every extractor in
/// this module works with it as is. An app with more state holds the three parts itself and
/// implements [`FromRef`] for each (see `examples/budgets_api/app.rs`).
///
/// ```
/// use axum::{routing::get, Router};
/// use keycard::axum::{AuthState, CurrentUser, TokenSource};
/// use keycard::http::LoginApi;
/// use keycard::{Authenticator, MemoryTokenStore, MemoryUserStore, UserRecord};
///
/// type Users = MemoryUserStore<UserRecord>;
/// async fn me(me: CurrentUser<Users>) -> String {
///     me.user.email
/// }
/// let auth = Authenticator::builder(Users::new(), MemoryTokenStore::new()).build();
/// let app: Router = Router::new()
///     .route("/me", get(me))
///     .with_state(AuthState::new(auth, LoginApi, TokenSource::login_api()));
/// ```
#[non_exhaustive]
pub struct AuthState<U: UserStore> {
    /// The authenticator.
    pub auth: Authenticator<U>,
    /// How outcomes and errors are rendered.
    pub protocol: Arc<dyn Protocol>,
    /// Where requests carry their token.
    pub tokens: TokenSource,
    /// The reverse proxies whose forwarding headers [`ClientMeta`] believes.
    pub proxies: TrustedProxies,
}

impl<U: UserStore> AuthState<U> {
    /// Bundles an authenticator, a protocol and a token source. No proxy is trusted: the
    /// client's address is the connection's peer.
    pub fn new(auth: Authenticator<U>, protocol: impl Protocol, tokens: TokenSource) -> Self {
        Self {
            auth,
            protocol: Arc::new(protocol),
            tokens,
            proxies: TrustedProxies::none(),
        }
    }

    /// Trusts these reverse proxies' `Forwarded` / `X-Forwarded-For` headers (see
    /// [`TrustedProxies`]).
    #[must_use]
    pub fn with_trusted_proxies(mut self, proxies: TrustedProxies) -> Self {
        self.proxies = proxies;
        self
    }
}

impl<U: UserStore> Clone for AuthState<U> {
    fn clone(&self) -> Self {
        Self {
            auth: self.auth.clone(),
            protocol: Arc::clone(&self.protocol),
            tokens: self.tokens.clone(),
            proxies: self.proxies.clone(),
        }
    }
}

impl<U: UserStore> fmt::Debug for AuthState<U> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthState")
            .field("auth", &self.auth)
            .field("protocol", &self.protocol)
            .field("tokens", &self.tokens)
            .field("proxies", &self.proxies)
            .finish()
    }
}

impl<U: UserStore> FromRef<AuthState<U>> for Authenticator<U> {
    fn from_ref(state: &AuthState<U>) -> Self {
        state.auth.clone()
    }
}

impl<U: UserStore> FromRef<AuthState<U>> for Arc<dyn Protocol> {
    fn from_ref(state: &AuthState<U>) -> Self {
        Arc::clone(&state.protocol)
    }
}

impl<U: UserStore> FromRef<AuthState<U>> for TokenSource {
    fn from_ref(state: &AuthState<U>) -> Self {
        state.tokens.clone()
    }
}

impl<U: UserStore> FromRef<AuthState<U>> for TrustedProxies {
    fn from_ref(state: &AuthState<U>) -> Self {
        state.proxies.clone()
    }
}

/// Extracts the authenticated user and session: finds the token (see [`TokenSource`]) and
/// calls [`Authenticator::validate`] (one token store read and one user lookup).
///
/// Rejects with the protocol's rendering of [`Error::MissingToken`] or of the core's error
/// (invalid or expired token, 503 when a store is down).
#[non_exhaustive]
pub struct CurrentUser<U: UserStore> {
    /// The user the token belongs to.
    pub user: U::User,
    /// The live session.
    pub session: Session,
}

/// Extracts the session only: finds the token and calls
/// [`Authenticator::validate_session`] (one token store read, no user lookup). Use it on
/// routes that only need the user id ([`Session::user_id`]).
///
/// `U` is the user store type of the [`Authenticator<U>`] in your state.
pub struct CurrentSession<U> {
    /// The live session.
    pub session: Session,
    store: PhantomData<fn() -> U>,
}

/// The raw session token a request carries, unchecked: for logout, which must not fail on a
/// dead token. Looks in the query, then in the JSON body field when the [`TokenSource`] names
/// one (this consumes the body, so it must be the handler's last extractor), then in
/// `Authorization: Bearer`.
///
/// Rejects with [`Error::MissingToken`] when there is none, and with a protocol-shaped
/// 400/413/415/422 when the body is unreadable.
pub struct SessionToken {
    token: Zeroizing<String>,
}

impl SessionToken {
    /// The token as the client sent it.
    pub fn expose_secret(&self) -> &str {
        &self.token
    }
}

/// The client's IP and `User-Agent`, for [`Authenticator::login`]. Never rejects.
///
/// The IP is the connection's peer ([`ConnectInfo<SocketAddr>`]: start the server with
/// `into_make_service_with_connect_info::<SocketAddr>()`, or login throttling has no address
/// to key by), or, when the peer is one of the [`TrustedProxies`] in your state, the client
/// address its `Forwarded` / `X-Forwarded-For` headers name. Needs `TrustedProxies:
/// FromRef<S>` ([`AuthState`] provides it).
#[derive(Debug, Clone)]
pub struct ClientMeta(pub ClientInfo);

/// Like [`axum::Json`], but rejections are JSON in the protocol's shape.
#[derive(Debug, Clone, Copy, Default)]
pub struct Json<T>(pub T);

/// Like [`axum::Form`], but rejections are JSON in the protocol's shape.
#[derive(Debug, Clone, Copy, Default)]
pub struct Form<T>(pub T);

/// Like [`axum::extract::Query`], but rejections are JSON in the protocol's shape.
#[derive(Debug, Clone, Copy, Default)]
pub struct Query<T>(pub T);

/// A body that is either JSON or `application/x-www-form-urlencoded`, chosen by its
/// `Content-Type` (as Rails apps accept). Anything else is a 415 in the protocol's shape.
#[derive(Debug, Clone, Copy, Default)]
pub struct JsonOrForm<T>(pub T);

/// A login body: a JSON object or form with string fields `email` and `password` (other
/// fields are ignored), as both seed protocols send it. Anything else, an array included, is a
/// deserialization error. `Debug` redacts the password.
#[derive(Clone)]
#[non_exhaustive]
pub struct Credentials {
    /// The email, as sent.
    pub email: String,
    /// The password, as sent; zeroized on drop.
    pub password: Zeroizing<String>,
}

/// Logs `email` in and renders the outcome: [`Protocol::login_succeeded`] or the error.
pub async fn login<U: UserStore>(
    auth: &Authenticator<U>,
    protocol: &dyn Protocol,
    email: &str,
    password: &str,
    client: ClientInfo,
) -> Response {
    match auth.login(email, password, client).await {
        Ok(login) => protocol.login_succeeded(&login.token, &login.user),
        Err(error) => render_error(protocol, &error),
    }
}

/// Logs `token` out and renders the outcome with [`Protocol::logged_out`] (or 503 if the
/// store is down).
pub async fn logout<U: UserStore>(
    auth: &Authenticator<U>,
    protocol: &dyn Protocol,
    token: &SessionToken,
) -> Response {
    match auth.logout(token.expose_secret()).await {
        Ok(outcome) => protocol.logged_out(token.expose_secret(), &outcome),
        Err(error) => render_error(protocol, &error),
    }
}

/// Renders a core error with [`Protocol::error`], logging server-side failures (5xx) with
/// their source chain first.
pub fn render_error(protocol: &dyn Protocol, error: &Error) -> Response {
    let response = protocol.error(error);
    if response.status >= 500 {
        let mut causes = String::new();
        let mut source = std::error::Error::source(error);
        while let Some(cause) = source {
            causes.push_str(": ");
            causes.push_str(&cause.to_string());
            source = cause.source();
        }
        tracing::warn!(status = response.status, "keycard: {error}{causes}");
    }
    response
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

/// Renders the status, the JSON body with `Content-Type: application/json`, `Retry-After`
/// when set, and `Cache-Control: no-store` (responses may carry tokens).
impl IntoResponse for Response {
    fn into_response(self) -> axum::response::Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut response = (status, self.body).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        if let Some(secs) = self.retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}

impl<S, U> FromRequestParts<S> for CurrentUser<U>
where
    S: Send + Sync,
    U: UserStore + 'static,
    Authenticator<U>: FromRef<S>,
    Arc<dyn Protocol>: FromRef<S>,
    TokenSource: FromRef<S>,
{
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Response> {
        let protocol = Arc::<dyn Protocol>::from_ref(state);
        let token = required_token(parts, &TokenSource::from_ref(state), &*protocol)?;
        match Authenticator::<U>::from_ref(state).validate(&token).await {
            Ok(me) => Ok(Self {
                user: me.user,
                session: me.session,
            }),
            Err(error) => Err(render_error(&*protocol, &error)),
        }
    }
}

impl<S, U> FromRequestParts<S> for CurrentSession<U>
where
    S: Send + Sync,
    U: UserStore + 'static,
    Authenticator<U>: FromRef<S>,
    Arc<dyn Protocol>: FromRef<S>,
    TokenSource: FromRef<S>,
{
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Response> {
        let protocol = Arc::<dyn Protocol>::from_ref(state);
        let token = required_token(parts, &TokenSource::from_ref(state), &*protocol)?;
        match Authenticator::<U>::from_ref(state)
            .validate_session(&token)
            .await
        {
            Ok(session) => Ok(Self {
                session,
                store: PhantomData,
            }),
            Err(error) => Err(render_error(&*protocol, &error)),
        }
    }
}

impl<S> FromRequest<S> for SessionToken
where
    S: Send + Sync,
    Arc<dyn Protocol>: FromRef<S>,
    TokenSource: FromRef<S>,
{
    type Rejection = Response;

    async fn from_request(req: Request, state: &S) -> Result<Self, Response> {
        let protocol = Arc::<dyn Protocol>::from_ref(state);
        let source = TokenSource::from_ref(state);
        let (parts, body) = req.into_parts();
        if let Some(token) = query_token(&parts, &source, &*protocol)? {
            return Ok(Self {
                token: Zeroizing::new(token),
            });
        }
        if let Some(field) = &source.json_field {
            let bytes = Bytes::from_request(Request::from_parts(parts.clone(), body), state)
                .await
                .map_err(|r| protocol.rejection(r.status().as_u16(), &r.body_text()))?;
            if !bytes.is_empty() {
                let req = Request::from_parts(parts.clone(), Body::from(bytes));
                let Json(object) = Json::<Map<String, Value>>::from_request(req, state).await?;
                match object.get(field.as_ref()) {
                    Some(Value::String(token)) if !token.is_empty() => {
                        return Ok(Self {
                            token: Zeroizing::new(token.clone()),
                        })
                    }
                    None | Some(Value::Null) | Some(Value::String(_)) => {}
                    Some(_) => {
                        return Err(protocol.rejection(422, &format!("`{field}` must be a string")))
                    }
                }
            }
        }
        match bearer_token(&parts.headers) {
            Some(token) => Ok(Self {
                token: Zeroizing::new(token),
            }),
            None => Err(render_error(&*protocol, &Error::MissingToken)),
        }
    }
}

impl<S> FromRequestParts<S> for ClientMeta
where
    S: Send + Sync,
    TrustedProxies: FromRef<S>,
{
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(addr)| addr.ip());
        let values = |name| {
            parts
                .headers
                .get_all(name)
                .iter()
                .filter_map(|v| v.to_str().ok())
        };
        let user_agent = values(header::USER_AGENT).next();
        Ok(Self(TrustedProxies::from_ref(state).client_info(
            peer,
            values(header::FORWARDED),
            values(HeaderName::from_static("x-forwarded-for")),
            user_agent,
        )))
    }
}

impl<S, T> FromRequest<S> for Json<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
    Arc<dyn Protocol>: FromRef<S>,
{
    type Rejection = Response;

    async fn from_request(req: Request, state: &S) -> Result<Self, Response> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(value)) => Ok(Self(value)),
            Err(r) => Err(reject(state, r.status(), &r.body_text())),
        }
    }
}

impl<S, T> FromRequest<S> for Form<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
    Arc<dyn Protocol>: FromRef<S>,
{
    type Rejection = Response;

    async fn from_request(req: Request, state: &S) -> Result<Self, Response> {
        match axum::Form::<T>::from_request(req, state).await {
            Ok(axum::Form(value)) => Ok(Self(value)),
            Err(r) => Err(reject(state, r.status(), &r.body_text())),
        }
    }
}

impl<S, T> FromRequestParts<S> for Query<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
    Arc<dyn Protocol>: FromRef<S>,
{
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Response> {
        match axum::extract::Query::<T>::try_from_uri(&parts.uri) {
            Ok(axum::extract::Query(value)) => Ok(Self(value)),
            Err(r) => Err(reject(state, r.status(), &r.body_text())),
        }
    }
}

impl<S, T> FromRequest<S> for JsonOrForm<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
    Arc<dyn Protocol>: FromRef<S>,
{
    type Rejection = Response;

    async fn from_request(req: Request, state: &S) -> Result<Self, Response> {
        match media_type(req.headers()).as_deref() {
            Some("application/x-www-form-urlencoded") => {
                let Form(value) = Form::<T>::from_request(req, state).await?;
                Ok(Self(value))
            }
            Some(json) if json == "application/json" || json.ends_with("+json") => {
                let Json(value) = Json::<T>::from_request(req, state).await?;
                Ok(Self(value))
            }
            _ => Err(reject(
                state,
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "Expected `Content-Type: application/json` or `application/x-www-form-urlencoded`",
            )),
        }
    }
}

impl<'de> Deserialize<'de> for Credentials {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Fields;
        impl<'de> Visitor<'de> for Fields {
            type Value = Credentials;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object with string fields `email` and `password`")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Credentials, A::Error> {
                let (mut email, mut password) = (None, None);
                while let Some(key) = map.next_key::<Cow<'de, str>>()? {
                    let slot = match key.as_ref() {
                        "email" => &mut email,
                        "password" => &mut password,
                        _ => {
                            map.next_value::<IgnoredAny>()?;
                            continue;
                        }
                    };
                    if slot.is_some() {
                        return Err(de::Error::custom(format_args!("duplicate field `{key}`")));
                    }
                    *slot = Some(map.next_value::<String>()?);
                }
                Ok(Credentials {
                    email: email.ok_or_else(|| de::Error::missing_field("email"))?,
                    password: Zeroizing::new(
                        password.ok_or_else(|| de::Error::missing_field("password"))?,
                    ),
                })
            }
        }
        deserializer.deserialize_map(Fields)
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("email", &self.email)
            .field("password", &"[redacted]")
            .finish()
    }
}

impl<U: UserStore> fmt::Debug for CurrentUser<U> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CurrentUser")
            .field("user", &self.user)
            .field("session", &self.session)
            .finish()
    }
}

impl<U: UserStore> Clone for CurrentUser<U> {
    fn clone(&self) -> Self {
        Self {
            user: self.user.clone(),
            session: self.session.clone(),
        }
    }
}

impl<U> fmt::Debug for CurrentSession<U> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CurrentSession")
            .field("session", &self.session)
            .finish()
    }
}

impl<U> Clone for CurrentSession<U> {
    fn clone(&self) -> Self {
        Self {
            session: self.session.clone(),
            store: PhantomData,
        }
    }
}

impl fmt::Debug for SessionToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SessionToken([redacted])")
    }
}

/// The token from the query or `Authorization: Bearer`, or the protocol's "missing token".
fn required_token(
    parts: &Parts,
    source: &TokenSource,
    protocol: &dyn Protocol,
) -> Result<String, Response> {
    match query_token(parts, source, protocol)? {
        Some(token) => Ok(token),
        None => {
            bearer_token(&parts.headers).ok_or_else(|| render_error(protocol, &Error::MissingToken))
        }
    }
}

/// The first non-empty value of the source's query parameter. A query string that does not
/// decode is a 400.
fn query_token(
    parts: &Parts,
    source: &TokenSource,
    protocol: &dyn Protocol,
) -> Result<Option<String>, Response> {
    let Some(name) = &source.query else {
        return Ok(None);
    };
    let axum::extract::Query(pairs) =
        axum::extract::Query::<Vec<(String, String)>>::try_from_uri(&parts.uri)
            .map_err(|r| protocol.rejection(r.status().as_u16(), &r.body_text()))?;
    Ok(pairs
        .into_iter()
        .find(|(key, value)| key == name && !value.is_empty())
        .map(|(_, value)| value))
}

/// The token of an `Authorization: Bearer <token>` header (scheme case-insensitive).
fn bearer_token(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then(|| token.to_owned())
}

/// The `Content-Type` without parameters, lowercase.
fn media_type(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::CONTENT_TYPE)?.to_str().ok()?;
    let essence = value.split(';').next().unwrap_or_default().trim();
    Some(essence.to_ascii_lowercase())
}

fn reject<S>(state: &S, status: StatusCode, message: &str) -> Response
where
    Arc<dyn Protocol>: FromRef<S>,
{
    Arc::<dyn Protocol>::from_ref(state).rejection(status.as_u16(), message)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(authorization: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_str(authorization).expect("valid header"),
        );
        h
    }

    #[test]
    fn bearer_scheme_is_case_insensitive_and_other_schemes_are_ignored() {
        assert_eq!(bearer_token(&headers("Bearer abc")).as_deref(), Some("abc"));
        assert_eq!(
            bearer_token(&headers("bearer  abc ")).as_deref(),
            Some("abc")
        );
        assert_eq!(bearer_token(&headers("Basic abc")), None);
        assert_eq!(bearer_token(&headers("Bearer ")), None);
        assert_eq!(bearer_token(&HeaderMap::new()), None);
    }

    #[test]
    fn credentials_are_an_object_with_two_strings() {
        let ok: Credentials =
            serde_json::from_str(r#"{"password":"p","email":"e","remember":true}"#)
                .expect("an object");
        assert_eq!((ok.email.as_str(), ok.password.as_str()), ("e", "p"));
        assert!(!format!("{ok:?}").contains("\"p\""));
        for bad in [
            r#"["e","p"]"#,
            r#"{"email":"e"}"#,
            r#"{"email":"e","password":1}"#,
            r#"{"email":"e","email":"f","password":"p"}"#,
            "null",
        ] {
            assert!(serde_json::from_str::<Credentials>(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn response_renders_status_json_and_retry_after() {
        let r = Response::json(429, &serde_json::json!({"message": "slow down"}))
            .with_retry_after(Some(7))
            .into_response();
        assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(r.headers()[header::CONTENT_TYPE], "application/json");
        assert_eq!(r.headers()[header::RETRY_AFTER], "7");
    }
}
