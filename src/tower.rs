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
use std::task::{Context, Poll};

use tower_layer::Layer;
use tower_service::Service;

use crate::authenticator::Authenticated;
use crate::http::http1::{to_http, HttpHead};
use crate::http::HttpAuth;
use crate::session::Session;
use crate::user::User;

/// Authenticates requests with an [`HttpAuth<U>`] (see the [module docs](self)).
pub struct AuthLayer<U> {
    http: HttpAuth<U>,
    session_only: bool,
}

impl<U> AuthLayer<U> {
    /// Validates each request's token and loads its user: the inner service finds
    /// [`Authenticated<U>`] and [`Session`] in the request's extensions.
    pub fn new(http: HttpAuth<U>) -> Self {
        Self {
            http,
            session_only: false,
        }
    }

    /// Validates each request's token without loading the user (one store read): the inner
    /// service finds only the [`Session`] in the request's extensions.
    pub fn session_only(http: HttpAuth<U>) -> Self {
        Self {
            http,
            session_only: true,
        }
    }
}

impl<S, U> Layer<S> for AuthLayer<U> {
    type Service = AuthService<S, U>;

    fn layer(&self, inner: S) -> Self::Service {
        AuthService {
            inner,
            http: self.http.clone(),
            session_only: self.session_only,
        }
    }
}

/// The service [`AuthLayer`] wraps around yours.
pub struct AuthService<S, U> {
    inner: S,
    http: HttpAuth<U>,
    session_only: bool,
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
        }
    }
}

impl<S: Clone, U> Clone for AuthService<S, U> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            http: self.http.clone(),
            session_only: self.session_only,
        }
    }
}

impl<U> fmt::Debug for AuthLayer<U> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthLayer")
            .field("http", &self.http)
            .field("session_only", &self.session_only)
            .finish()
    }
}

impl<S: fmt::Debug, U> fmt::Debug for AuthService<S, U> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthService")
            .field("inner", &self.inner)
            .field("session_only", &self.session_only)
            .finish_non_exhaustive()
    }
}
