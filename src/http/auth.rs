//! [`HttpAuth`]: everything an adapter needs, in one cloneable value.

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;

use super::{
    render_error, CredentialFields, Credentials, Protocol, Rejection, RequestHead, Response,
    SessionToken, TokenSource, TrustedProxies,
};
use crate::authenticator::{Authenticated, Authenticator, Login, Logout};
use crate::error::Result;
use crate::session::{ClientInfo, Session};
use crate::user::{User, UserStore};

/// Everything the HTTP edge needs, whatever the framework: the authenticator, the
/// [`Protocol`] that renders outcomes, where tokens are found ([`TokenSource`]), which
/// proxies to believe ([`TrustedProxies`]) and the login body's field names
/// ([`CredentialFields`]). Cloning is one reference count.
///
/// `U` is your **user type** (what [`UserStore::User`] returns), not the store: the store's
/// type is erased here, so extractors read `CurrentUser<MyUser>`.
///
/// Each adapter takes it from its framework's state: axum's `FromRef`, actix-web's
/// `app_data`, or the tower layer's constructor.
///
/// ```
/// use keycard::http::{HttpAuth, StandardApi, TokenSource};
/// use keycard::{Authenticator, MemoryTokenStore, MemoryUserStore, UserRecord};
///
/// let auth = Authenticator::builder(MemoryUserStore::<UserRecord>::new(), MemoryTokenStore::new()).build();
/// let http: HttpAuth<UserRecord> = HttpAuth::new(auth, StandardApi)
///     .with_token_source(TokenSource::bearer().with_cookie("__Host-session"));
/// # let _ = http;
/// ```
pub struct HttpAuth<U> {
    inner: Arc<Inner<U>>,
}

struct Inner<U> {
    authenticator: Arc<dyn Authenticate<User = U>>,
    protocol: Arc<dyn Protocol>,
    tokens: TokenSource,
    proxies: TrustedProxies,
    credentials: CredentialFields,
}

impl<U: User + Clone + 'static> HttpAuth<U> {
    /// The HTTP edge of `authenticator`, rendering with `protocol`. Tokens are looked for in
    /// `Authorization: Bearer` only, no proxy is trusted (the client is the connection's
    /// peer) and login bodies have fields `email` and `password`; the `with_*` methods change
    /// each.
    pub fn new<S>(authenticator: Authenticator<S>, protocol: impl Protocol) -> Self
    where
        S: UserStore<User = U> + 'static,
    {
        Self {
            inner: Arc::new(Inner {
                authenticator: Arc::new(authenticator),
                protocol: Arc::new(protocol),
                tokens: TokenSource::bearer(),
                proxies: TrustedProxies::none(),
                credentials: CredentialFields::default(),
            }),
        }
    }

    /// Where requests carry their token.
    #[must_use]
    pub fn with_token_source(self, tokens: TokenSource) -> Self {
        self.map(|inner| inner.tokens = tokens)
    }

    /// The reverse proxies whose `Forwarded` / `X-Forwarded-For` headers are believed.
    #[must_use]
    pub fn with_trusted_proxies(self, proxies: TrustedProxies) -> Self {
        self.map(|inner| inner.proxies = proxies)
    }

    /// The login body's field names.
    #[must_use]
    pub fn with_credential_fields(self, fields: CredentialFields) -> Self {
        self.map(|inner| inner.credentials = fields)
    }

    fn map(self, change: impl FnOnce(&mut Inner<U>)) -> Self {
        let mut inner = Arc::try_unwrap(self.inner).unwrap_or_else(|shared| Inner {
            authenticator: Arc::clone(&shared.authenticator),
            protocol: Arc::clone(&shared.protocol),
            tokens: shared.tokens.clone(),
            proxies: shared.proxies.clone(),
            credentials: shared.credentials.clone(),
        });
        change(&mut inner);
        Self {
            inner: Arc::new(inner),
        }
    }

    /// Finds the request's token and validates it: one token store read and one user lookup
    /// ([`Authenticator::validate`]).
    ///
    /// # Errors
    /// [`Rejection::Auth`] with [`Error::MissingToken`](crate::Error::MissingToken) or the
    /// core's error.
    pub async fn validate(
        &self,
        request: &(impl RequestHead + ?Sized),
    ) -> Result<Authenticated<U>, Rejection> {
        let token = self.token_source().require(request)?;
        Ok(self
            .inner
            .authenticator
            .validate(token.expose_secret())
            .await?)
    }

    /// Finds the request's token and validates it without a user lookup
    /// ([`Authenticator::validate_session`]).
    ///
    /// # Errors
    /// As [`validate`](Self::validate).
    pub async fn validate_session(
        &self,
        request: &(impl RequestHead + ?Sized),
    ) -> Result<Session, Rejection> {
        let token = self.token_source().require(request)?;
        Ok(self
            .inner
            .authenticator
            .validate_session(token.expose_secret())
            .await?)
    }

    /// Validates a token already found.
    ///
    /// # Errors
    /// The core's error, as [`Rejection::Auth`].
    pub async fn validate_token(
        &self,
        token: &SessionToken,
    ) -> Result<Authenticated<U>, Rejection> {
        Ok(self
            .inner
            .authenticator
            .validate(token.expose_secret())
            .await?)
    }

    /// Validates a token already found, without a user lookup.
    ///
    /// # Errors
    /// The core's error, as [`Rejection::Auth`].
    pub async fn validate_session_token(&self, token: &SessionToken) -> Result<Session, Rejection> {
        Ok(self
            .inner
            .authenticator
            .validate_session(token.expose_secret())
            .await?)
    }

    /// Logs in and renders the outcome: [`Protocol::login_succeeded`] or the error.
    pub async fn login(&self, credentials: &Credentials, client: ClientInfo) -> Response {
        let outcome = self
            .inner
            .authenticator
            .login(&credentials.login, &credentials.password, client)
            .await;
        match outcome {
            Ok(login) => self
                .protocol()
                .login_succeeded(&login.token, &login.user, &login.session),
            Err(error) => render_error(self.protocol(), &error),
        }
    }

    /// Logs `token` out and renders the outcome with [`Protocol::logged_out`] (or 503 if the
    /// store is down).
    pub async fn logout(&self, token: &SessionToken) -> Response {
        match self.inner.authenticator.logout(token.expose_secret()).await {
            Ok(outcome) => self.protocol().logged_out(token.expose_secret(), &outcome),
            Err(error) => render_error(self.protocol(), &error),
        }
    }
}

impl<U> HttpAuth<U> {
    /// The protocol.
    pub fn protocol(&self) -> &dyn Protocol {
        &*self.inner.protocol
    }

    /// Where tokens are found.
    pub fn token_source(&self) -> &TokenSource {
        &self.inner.tokens
    }

    /// The trusted proxies.
    pub fn trusted_proxies(&self) -> &TrustedProxies {
        &self.inner.proxies
    }

    /// The login body's field names.
    pub fn credential_fields(&self) -> &CredentialFields {
        &self.inner.credentials
    }

    /// Renders a rejection with the protocol.
    pub fn render(&self, rejection: &Rejection) -> Response {
        rejection.render(self.protocol())
    }

    /// The client's address and user agent (see [`TrustedProxies::client_of`]).
    pub fn client_of(&self, request: &(impl RequestHead + ?Sized)) -> ClientInfo {
        self.trusted_proxies().client_of(request)
    }

    #[cfg_attr(not(feature = "axum"), allow(dead_code))]
    pub(crate) fn protocol_arc(&self) -> Arc<dyn Protocol> {
        Arc::clone(&self.inner.protocol)
    }
}

impl<U> Clone for HttpAuth<U> {
    fn clone(&self) -> Self {
        Self {
            inner: Arc::clone(&self.inner),
        }
    }
}

impl<U> fmt::Debug for HttpAuth<U> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpAuth")
            .field("authenticator", &self.inner.authenticator)
            .field("protocol", &self.inner.protocol)
            .field("tokens", &self.inner.tokens)
            .field("proxies", &self.inner.proxies)
            .field("credentials", &self.inner.credentials)
            .finish()
    }
}

/// The operations the HTTP edge calls, with the user store's type erased.
#[async_trait]
trait Authenticate: Send + Sync + fmt::Debug {
    type User;
    async fn login(
        &self,
        login: &str,
        password: &str,
        client: ClientInfo,
    ) -> Result<Login<Self::User>>;
    async fn logout(&self, token: &str) -> Result<Logout>;
    async fn validate(&self, token: &str) -> Result<Authenticated<Self::User>>;
    async fn validate_session(&self, token: &str) -> Result<Session>;
}

#[async_trait]
impl<S: UserStore + 'static> Authenticate for Authenticator<S> {
    type User = S::User;

    async fn login(
        &self,
        login: &str,
        password: &str,
        client: ClientInfo,
    ) -> Result<Login<S::User>> {
        Authenticator::login(self, login, password, client).await
    }

    async fn logout(&self, token: &str) -> Result<Logout> {
        Authenticator::logout(self, token).await
    }

    async fn validate(&self, token: &str) -> Result<Authenticated<S::User>> {
        Authenticator::validate(self, token).await
    }

    async fn validate_session(&self, token: &str) -> Result<Session> {
        Authenticator::validate_session(self, token).await
    }
}
