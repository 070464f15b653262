//! [`AuthState`]: one router state for every keycard extractor and the authenticator.

use std::fmt;
use std::sync::Arc;

use axum::extract::FromRef;

use crate::authenticator::Authenticator;
use crate::http::{HttpAuth, Protocol, RequestRules};
use crate::user::UserStore;

/// A router state that gives handlers everything keycard has: the [`Authenticator<S>`] (for
/// register, change password, sessions, second factors), its HTTP edge
/// [`HttpAuth<S::User>`](HttpAuth) (for every keycard extractor), the [`Protocol`] (for
/// [`json_fallbacks`](super::json_fallbacks)) and the [`RequestRules`] (for keycard's
/// [`ApiJson`](super::ApiJson), [`ApiForm`](super::ApiForm) and [`ApiQuery`](super::ApiQuery)).
///
/// `S` is your **user store** (the authenticator's type parameter); the extractors name your
/// user type, `S::User`. Cloning is two reference counts.
///
/// With `.with_state(AuthState::new(authenticator, protocol))` a handler takes
/// `State<Authenticator<S>>`, `State<HttpAuth<S::User>>`, `State<Arc<dyn Protocol>>` or any
/// keycard extractor, and you implement nothing:
///
/// ```
/// use axum::extract::State;
/// use axum::routing::{get, post};
/// use axum::Router;
/// use keycard::axum::{AuthState, Client, CurrentSession, ApiJson};
/// use keycard::http::{Response, StandardApi};
/// use keycard::{Authenticator, MemoryTokenStore, MemoryUserStore, UserRecord};
///
/// type Users = MemoryUserStore<UserRecord>;
///
/// #[derive(serde::Deserialize)]
/// struct NewPassword {
///     current: String,
///     new: String,
/// }
///
/// // The authenticator beside the extractors: no `FromRef` of yours.
/// async fn change_password(
///     State(auth): State<Authenticator<Users>>,
///     State(http): State<keycard::http::HttpAuth<UserRecord>>,
///     me: CurrentSession<UserRecord>,
///     client: Client<UserRecord>,
///     ApiJson(body): ApiJson<NewPassword>,
/// ) -> Response {
///     match auth.change_password(&me.session, &body.current, &body.new, &client.info).await {
///         // The new session's token, as a login answers it.
///         Ok(changed) => http.login_response(&changed.login, false),
///         Err(error) => http.render(&error.into()),
///     }
/// }
///
/// async fn sessions(State(auth): State<Authenticator<Users>>, me: CurrentSession<UserRecord>) -> String {
///     let sessions = auth.list_sessions(&me.session).await.unwrap_or_default();
///     format!("{} sessions", sessions.len())
/// }
///
/// let auth = Authenticator::builder(Users::new(), MemoryTokenStore::new()).build();
/// let app: Router = keycard::axum::json_fallbacks(
///     Router::new()
///         .route("/password", post(change_password))
///         .route("/sessions", get(sessions)),
/// )
/// .with_state(AuthState::new(auth, StandardApi));
/// # let _ = app;
/// ```
///
/// Configure the HTTP edge (token source, session cookie, proxies, body limit) with
/// [`map_http`](Self::map_http), or start from an [`HttpAuth`] you already have with
/// [`from_parts`](Self::from_parts).
///
/// # In a state of your own
/// If your app has state of its own, give it a field of this type and implement `FromRef`
/// from your state for what your handlers take, each a one-line body reading the field: axum
/// has no transitive `FromRef`, so these cannot come for free.
///
/// ```
/// use std::sync::Arc;
///
/// use axum::extract::FromRef;
/// use keycard::axum::AuthState;
/// use keycard::http::{HttpAuth, Protocol, RequestRules};
/// use keycard::{Authenticator, MemoryUserStore, UserRecord};
///
/// type Users = MemoryUserStore<UserRecord>;
///
/// #[derive(Clone)]
/// struct App {
///     auth: AuthState<Users>,
///     greeting: Arc<str>,
/// }
///
/// // Every keycard extractor (`CurrentUser`, `LoginRequest`, `Client`, ...).
/// impl FromRef<App> for HttpAuth<UserRecord> {
///     fn from_ref(app: &App) -> Self { HttpAuth::from_ref(&app.auth) }
/// }
/// // keycard's `ApiJson`, `ApiForm` and `ApiQuery`.
/// impl FromRef<App> for RequestRules {
///     fn from_ref(app: &App) -> Self { RequestRules::from_ref(&app.auth) }
/// }
/// // `json_fallbacks`.
/// impl FromRef<App> for Arc<dyn Protocol> {
///     fn from_ref(app: &App) -> Self { Arc::from_ref(&app.auth) }
/// }
/// // `State<Authenticator<Users>>`, if your handlers take it.
/// impl FromRef<App> for Authenticator<Users> {
///     fn from_ref(app: &App) -> Self { Authenticator::from_ref(&app.auth) }
/// }
/// ```
pub struct AuthState<S: UserStore> {
    authenticator: Authenticator<S>,
    http: HttpAuth<S::User>,
}

impl<S: UserStore + 'static> AuthState<S> {
    /// The state of `authenticator`, rendering with `protocol`: its HTTP edge is
    /// [`HttpAuth::new`]`(authenticator, protocol)` (bearer tokens, no trusted proxy, the
    /// default body limit; see [`map_http`](Self::map_http) to change them).
    pub fn new(authenticator: Authenticator<S>, protocol: impl Protocol) -> Self {
        Self {
            http: HttpAuth::new(authenticator.clone(), protocol),
            authenticator,
        }
    }

    /// The state of `authenticator` with an HTTP edge you already configured, or `None` if
    /// `http` does not run on `authenticator` (it was not made by
    /// [`HttpAuth::new`]`(authenticator.clone(), ...)` or a clone of one): handlers taking
    /// `State<Authenticator<S>>` and the extractors would then not share sessions, throttles
    /// or stores.
    pub fn from_parts(authenticator: Authenticator<S>, http: HttpAuth<S::User>) -> Option<Self> {
        http.runs_on(&authenticator).then_some(Self {
            authenticator,
            http,
        })
    }

    /// The state with its HTTP edge changed by `configure`, which receives the current one:
    /// `.map_http(|http| http.with_session_cookie(cookie))`. Use the `with_*` methods of
    /// [`HttpAuth`] on it; an `HttpAuth` made from another authenticator is not kept (the
    /// state keeps its own).
    #[must_use]
    pub fn map_http(self, configure: impl FnOnce(HttpAuth<S::User>) -> HttpAuth<S::User>) -> Self {
        let http = configure(self.http.clone());
        if http.runs_on(&self.authenticator) {
            Self {
                authenticator: self.authenticator,
                http,
            }
        } else {
            self
        }
    }
}

impl<S: UserStore> AuthState<S> {
    /// The authenticator.
    pub fn authenticator(&self) -> &Authenticator<S> {
        &self.authenticator
    }

    /// The HTTP edge the extractors read.
    pub fn http(&self) -> &HttpAuth<S::User> {
        &self.http
    }
}

impl<S: UserStore> Clone for AuthState<S> {
    fn clone(&self) -> Self {
        Self {
            authenticator: self.authenticator.clone(),
            http: self.http.clone(),
        }
    }
}

impl<S: UserStore> fmt::Debug for AuthState<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthState")
            .field("http", &self.http)
            .finish_non_exhaustive()
    }
}

impl<S: UserStore> FromRef<AuthState<S>> for Authenticator<S> {
    fn from_ref(state: &AuthState<S>) -> Self {
        state.authenticator.clone()
    }
}

impl<S: UserStore> FromRef<AuthState<S>> for HttpAuth<S::User> {
    fn from_ref(state: &AuthState<S>) -> Self {
        state.http.clone()
    }
}

impl<S: UserStore> FromRef<AuthState<S>> for Arc<dyn Protocol> {
    fn from_ref(state: &AuthState<S>) -> Self {
        state.http.protocol_arc()
    }
}

impl<S: UserStore> FromRef<AuthState<S>> for RequestRules {
    fn from_ref(state: &AuthState<S>) -> Self {
        state.http.request_rules()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::{LoginApi, StandardApi, TokenSource};
    use crate::{MemoryTokenStore, MemoryUserStore, UserRecord};

    type Users = MemoryUserStore<UserRecord>;

    fn authenticator() -> Authenticator<Users> {
        Authenticator::builder(Users::new(), MemoryTokenStore::new()).build()
    }

    #[test]
    fn from_parts_takes_only_an_http_edge_of_the_same_authenticator() {
        let auth = authenticator();
        let http = HttpAuth::new(auth.clone(), StandardApi).with_body_limit(100);
        let state = AuthState::from_parts(auth.clone(), http.clone()).expect("same core");
        assert_eq!(RequestRules::from_ref(&state).body_limit(), 100);
        assert!(AuthState::from_parts(authenticator(), http).is_none());
    }

    #[test]
    fn map_http_keeps_the_authenticator() {
        let auth = authenticator();
        let state = AuthState::new(auth.clone(), StandardApi).map_http(|http| {
            http.with_token_source(TokenSource::login_api())
                .with_body_limit(7)
        });
        assert_eq!(state.http().body_limit(), 7);
        assert!(state.http().runs_on(&Authenticator::from_ref(&state)));
        // An edge made from another authenticator is refused: the state keeps its own.
        let other = authenticator();
        let state = state.map_http(|_| HttpAuth::new(other, LoginApi));
        assert_eq!(state.http().body_limit(), 7);
        assert!(state.http().runs_on(&auth));
    }
}
