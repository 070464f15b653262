//! The tower adapter: [`AuthLayer`], a [`Layer`] that authenticates every request before it
//! reaches the inner service, for any tower-based server (axum routers, hyper services,
//! tonic...).
//!
//! A request with a live token goes on with the [`Session`] (and, unless the layer is
//! [`session_only`](AuthLayer::session_only), the [`Authenticated<U>`] user and session) in
//! its extensions; any other gets the protocol's rejection (401, 503...) and never reaches
//! the inner service. Everything that is not about tower's types lives in [`crate::http`].
//!
//! ```
//! use axum::{routing::get, Extension, Router};
//! use keycard::http::{HttpAuth, StandardApi};
//! use keycard::tower::AuthLayer;
//! use keycard::{Authenticated, Authenticator, MemoryTokenStore, MemoryUserStore, UserRecord};
//!
//! async fn me(Extension(me): Extension<Authenticated<UserRecord>>) -> String {
//!     me.user.email
//! }
//!
//! let auth = Authenticator::builder(MemoryUserStore::<UserRecord>::new(), MemoryTokenStore::new()).build();
//! let app: Router = Router::new()
//!     .route("/me", get(me))
//!     .layer(AuthLayer::new(HttpAuth::new(auth, StandardApi)));
//! # let _ = app;
//! ```
//!
//! With [API tokens](crate::api_tokens), the layer checks scopes itself:
//! [`require_scope`](AuthLayer::require_scope) refuses a session without the scope with 403
//! (in [`StandardApi`](crate::http::StandardApi), `WWW-Authenticate: Bearer
//! error="insufficient_scope", error_description="...", scope="..."`, RFC 6750 §3.1), and
//! [`interactive_only`](AuthLayer::interactive_only) refuses every API token with 403
//! (`interactive_session_required`); neither request reaches the inner service.
//!
//! ```
//! use axum::{routing::post, Router};
//! use keycard::api_tokens::ApiTokens;
//! use keycard::http::{HttpAuth, StandardApi};
//! use keycard::tower::AuthLayer;
//! use keycard::{Authenticator, MemoryTokenStore, MemoryUserStore, UserRecord};
//!
//! let auth = Authenticator::builder(MemoryUserStore::<UserRecord>::new(), MemoryTokenStore::new())
//!     .api_tokens(ApiTokens::new(["notes:read", "notes:write"]).expect("valid scopes"))
//!     .build();
//! let http = HttpAuth::new(auth, StandardApi);
//! let notes: Router = Router::new()
//!     .route("/notes", post(|| async { "noted" }))
//!     .layer(AuthLayer::session_only(http.clone()).require_scope("notes:write"));
//! let settings: Router = Router::new()
//!     .route("/settings", post(|| async { "saved" }))
//!     .layer(AuthLayer::session_only(http).interactive_only());
//! # let _ = (notes, settings);
//! ```
//!
//! Every answer to a request the layer let through gets `Cache-Control: no-store` unless the
//! inner service set a `Cache-Control` of its own, so that no browser or shared cache keeps a
//! user's data; the layer's own rejections carry it too.
//!
//! The response body type of the inner service must be buildable from a `String`
//! (`axum::body::Body`, `http_body_util::Full<Bytes>`, `String` all are), so the layer can
//! answer a rejection itself.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use tower_layer::Layer;
use tower_service::Service;

use crate::authenticator::Authenticated;
use crate::http::http1::{to_http, HttpHead};
use crate::http::{HttpAuth, Rejection};
use crate::session::Session;
use crate::user::User;

/// Authenticates requests with an [`HttpAuth<U>`] (see the [module docs](self)).
pub struct AuthLayer<U> {
    http: HttpAuth<U>,
    session_only: bool,
    checks: Arc<Checks>,
}

/// What a live session must also pass: the scopes it must hold, and whether an API token is
/// refused.
#[derive(Debug, Clone, Default)]
struct Checks {
    scopes: Vec<Box<str>>,
    interactive_only: bool,
}

impl Checks {
    fn check<U: User + Clone + 'static>(
        &self,
        http: &HttpAuth<U>,
        session: &Session,
    ) -> Result<(), Rejection> {
        if self.interactive_only {
            http.require_interactive(session)?;
        }
        for scope in &self.scopes {
            http.require_scope(session, scope)?;
        }
        Ok(())
    }
}

impl<U> AuthLayer<U> {
    /// Validates each request's token and loads its user: the inner service finds
    /// [`Authenticated<U>`] and [`Session`] in the request's extensions.
    pub fn new(http: HttpAuth<U>) -> Self {
        Self {
            http,
            session_only: false,
            checks: Arc::default(),
        }
    }

    /// Validates each request's token without loading the user (one store read): the inner
    /// service finds only the [`Session`] in the request's extensions.
    pub fn session_only(http: HttpAuth<U>) -> Self {
        Self {
            http,
            session_only: true,
            checks: Arc::default(),
        }
    }

    /// Also requires `scope` ([`HttpAuth::require_scope`]): a session without it is answered
    /// 403 (`insufficient_scope`, with the RFC 6750 challenge in
    /// [`StandardApi`](crate::http::StandardApi)) and never reaches the inner service. An
    /// [API token](crate::api_tokens) must carry the scope; an interactive session (a login)
    /// holds every scope the service declared. Called again, every scope named is required.
    #[must_use]
    pub fn require_scope(mut self, scope: &str) -> Self {
        Arc::make_mut(&mut self.checks)
            .scopes
            .push(Box::from(scope));
        self
    }

    /// Also refuses [API tokens](crate::api_tokens) ([`HttpAuth::require_interactive`]):
    /// 403 (`interactive_session_required`), and the inner service is not called. For routes
    /// only a person may use (account settings, token management).
    #[must_use]
    pub fn interactive_only(mut self) -> Self {
        Arc::make_mut(&mut self.checks).interactive_only = true;
        self
    }
}

impl<S, U> Layer<S> for AuthLayer<U> {
    type Service = AuthService<S, U>;

    fn layer(&self, inner: S) -> Self::Service {
        AuthService {
            inner,
            http: self.http.clone(),
            session_only: self.session_only,
            checks: Arc::clone(&self.checks),
        }
    }
}

/// The service [`AuthLayer`] wraps around yours.
pub struct AuthService<S, U> {
    inner: S,
    http: HttpAuth<U>,
    session_only: bool,
    checks: Arc<Checks>,
}

impl<S, U, ReqBody, ResBody> Service<http::Request<ReqBody>> for AuthService<S, U>
where
    S: Service<http::Request<ReqBody>, Response = http::Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send,
    ReqBody: Send + 'static,
    ResBody: From<String>,
    U: User + Clone + Send + Sync + 'static,
{
    type Response = http::Response<ResBody>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<ReqBody>) -> Self::Future {
        // The clone that was polled ready serves this request (tower's usual pattern).
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let http = self.http.clone();
        let session_only = self.session_only;
        let checks = Arc::clone(&self.checks);
        Box::pin(async move {
            let head = HttpHead::new(request.method(), request.headers(), request.uri(), None);
            let outcome = if session_only {
                http.validate_session(&head)
                    .await
                    .map(|session| (session, None))
            } else {
                http.validate(&head)
                    .await
                    .map(|me| (me.session.clone(), Some(me)))
            };
            let outcome = outcome.and_then(|(session, me)| {
                checks.check(&http, &session)?;
                Ok((session, me))
            });
            match outcome {
                Ok((session, me)) => {
                    let extensions = request.extensions_mut();
                    extensions.insert::<Session>(session);
                    if let Some(me) = me {
                        extensions.insert::<Authenticated<U>>(me);
                    }
                    let mut response = inner.call(request).await?;
                    let headers = response.headers_mut();
                    if !headers.contains_key(http::header::CACHE_CONTROL) {
                        headers.insert(
                            http::header::CACHE_CONTROL,
                            http::HeaderValue::from_static("no-store"),
                        );
                    }
                    Ok(response)
                }
                Err(rejection) => Ok(to_http(http.render(&rejection))),
            }
        })
    }
}

impl<U> Clone for AuthLayer<U> {
    fn clone(&self) -> Self {
        Self {
            http: self.http.clone(),
            session_only: self.session_only,
            checks: Arc::clone(&self.checks),
        }
    }
}

impl<S: Clone, U> Clone for AuthService<S, U> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            http: self.http.clone(),
            session_only: self.session_only,
            checks: Arc::clone(&self.checks),
        }
    }
}

impl<U> fmt::Debug for AuthLayer<U> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthLayer")
            .field("http", &self.http)
            .field("session_only", &self.session_only)
            .field("scopes", &self.checks.scopes)
            .field("interactive_only", &self.checks.interactive_only)
            .finish()
    }
}

impl<S: fmt::Debug, U> fmt::Debug for AuthService<S, U> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthService")
            .field("inner", &self.inner)
            .field("session_only", &self.session_only)
            .field("scopes", &self.checks.scopes)
            .field("interactive_only", &self.checks.interactive_only)
            .finish_non_exhaustive()
    }
}
