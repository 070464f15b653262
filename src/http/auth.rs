//! [`HttpAuth`]: everything an adapter needs, in one cloneable value.

use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use super::cookie::{not_cross_site, same_origin_or_safe, WebOrigin};
use super::{
    render_error, CredentialFields, Credentials, FoundToken, Protocol, Rejection, RequestHead,
    RequestRules, Response, SecondFactorLoginBody, SessionCookie, SessionToken, TokenOrigin,
    TokenSource, TrustedProxies, DEFAULT_BODY_LIMIT,
};
use crate::audit::limiter::FailureLimiter;
use crate::authenticator::{Authenticated, Authenticator, Login, LoginOptions, Logout};
use crate::error::{Error, Result};
use crate::mfa::SecondFactorProof;
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
    cookie: Option<SessionCookie>,
    body_limit: usize,
    /// Rate-limits the `tokens.invalid` audit event.
    token_failures: Arc<FailureLimiter>,
}

impl<U: User + Clone + 'static> HttpAuth<U> {
    /// The HTTP edge of `authenticator`, rendering with `protocol`. Tokens are looked for in
    /// `Authorization: Bearer` only, no proxy is trusted (the client is the connection's
    /// peer), login bodies have fields `email` and `password` and bodies are read up to
    /// [`DEFAULT_BODY_LIMIT`]; the `with_*` methods change each.
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
                cookie: None,
                body_limit: DEFAULT_BODY_LIMIT,
                token_failures: Arc::default(),
            }),
        }
    }

    /// Where requests carry their token. With a [session cookie](Self::with_session_cookie),
    /// the cookie is read too.
    #[must_use]
    pub fn with_token_source(self, tokens: TokenSource) -> Self {
        self.map(|inner| {
            inner.tokens = match &inner.cookie {
                Some(cookie) => tokens.with_cookie(cookie.name().to_owned()),
                None => tokens,
            }
        })
    }

    /// Browser sessions: login also sets `cookie` (alongside the protocol's body), logout
    /// clears it, tokens are read from it too, and a cookie-authenticated request with an
    /// unsafe method, or a login, from another site is refused with
    /// [`Rejection::CrossSite`] (see [`SessionCookie`]). Bearer tokens keep working on the
    /// same routes.
    #[must_use]
    pub fn with_session_cookie(self, cookie: SessionCookie) -> Self {
        self.map(|inner| {
            inner.tokens = inner.tokens.clone().with_cookie(cookie.name().to_owned());
            inner.cookie = Some(cookie);
        })
    }

    /// The reverse proxies whose client-address header (the one
    /// [`TrustedProxies::with_header`] names, `X-Forwarded-For` by default) is believed.
    #[must_use]
    pub fn with_trusted_proxies(self, proxies: TrustedProxies) -> Self {
        self.map(|inner| inner.proxies = proxies)
    }

    /// The login body's field names.
    #[must_use]
    pub fn with_credential_fields(self, fields: CredentialFields) -> Self {
        self.map(|inner| inner.credentials = fields)
    }

    /// The largest request body keycard's extractors read, in bytes: login and logout bodies
    /// and the adapters' `ApiJson` and `ApiForm`, the same in every adapter. A larger body is
    /// refused with 413 in the protocol's shape (`Request body is too large`) before it is
    /// buffered. Default: [`DEFAULT_BODY_LIMIT`] (16 KiB); your framework's own limit
    /// (axum's `DefaultBodyLimit`, actix-web's `PayloadConfig`) does not apply to them.
    #[must_use]
    pub fn with_body_limit(self, limit: usize) -> Self {
        self.map(|inner| inner.body_limit = limit)
    }

    fn map(self, change: impl FnOnce(&mut Inner<U>)) -> Self {
        let mut inner = Arc::try_unwrap(self.inner).unwrap_or_else(|shared| Inner {
            authenticator: Arc::clone(&shared.authenticator),
            protocol: Arc::clone(&shared.protocol),
            tokens: shared.tokens.clone(),
            proxies: shared.proxies.clone(),
            credentials: shared.credentials.clone(),
            cookie: shared.cookie.clone(),
            body_limit: shared.body_limit,
            token_failures: Arc::clone(&shared.token_failures),
        });
        change(&mut inner);
        Self {
            inner: Arc::new(inner),
        }
    }

    /// Finds the request's token and validates it: one token store read and one user lookup
    /// ([`Authenticator::validate`]). An [API token](crate::api_tokens)'s use from a new
    /// client address (the request's, as [`client_of`](Self::client_of) computes it, only
    /// when its last use is written) is recorded, as
    /// [`Authenticator::validate_session_from`] does.
    ///
    /// # Errors
    /// [`Rejection::Auth`] with [`Error::MissingToken`](crate::Error::MissingToken) or the
    /// core's error.
    pub async fn validate(
        &self,
        request: &(impl RequestHead + Sync + ?Sized),
    ) -> Result<Authenticated<U>, Rejection> {
        let token = self.require_token_borrowed(request)?;
        self.validate_found(request, &token).await
    }

    /// Finds the request's token and validates it without a user lookup
    /// ([`Authenticator::validate_session`]); an API token's new client address is recorded
    /// as by [`validate`](Self::validate).
    ///
    /// # Errors
    /// As [`validate`](Self::validate).
    pub async fn validate_session(
        &self,
        request: &(impl RequestHead + Sync + ?Sized),
    ) -> Result<Session, Rejection> {
        let token = self.require_token_borrowed(request)?;
        // Most validates need no I/O (a memory store, or a cached session not due for a
        // touch): answered at once, the session moves through no inner future.
        match self.validate_session_found_now(request, &token) {
            Some(outcome) => outcome,
            None => self.validate_session_async(request, &token).await,
        }
    }

    /// Validates `token`, found in `request`, with the request's client address asked for
    /// lazily; a malformed, invalid or expired token is counted for the audit.
    pub(super) async fn validate_found(
        &self,
        request: &(impl RequestHead + Sync + ?Sized),
        token: &str,
    ) -> Result<Authenticated<U>, Rejection> {
        let client_ip = || self.client_of(request).ip;
        let outcome = self
            .inner
            .authenticator
            .validate_lazy(token, &client_ip)
            .await
            .map_err(Rejection::from);
        if let Err(rejection) = &outcome {
            self.note_token_failure(request, rejection);
        }
        outcome
    }

    /// The core's validate without a user lookup, when it needs no I/O and no wait.
    pub(super) fn validate_session_now(&self, token: &str) -> Option<Result<Session, Rejection>> {
        let outcome = self.inner.authenticator.validate_session_immediate(token)?;
        Some(outcome.map_err(Rejection::from))
    }

    /// [`validate_session_now`](Self::validate_session_now) of `token`, found in `request`;
    /// a failure is counted for the audit.
    pub(super) fn validate_session_found_now(
        &self,
        request: &(impl RequestHead + ?Sized),
        token: &str,
    ) -> Option<Result<Session, Rejection>> {
        let outcome = self.validate_session_now(token)?;
        if let Err(rejection) = &outcome {
            self.note_token_failure(request, rejection);
        }
        Some(outcome)
    }

    /// As [`validate_session`](Self::validate_session) once
    /// [`validate_session_now`](Self::validate_session_now) could not answer: the core's
    /// async validate (a store round trip, or a touch that is due).
    pub(super) async fn validate_session_async(
        &self,
        request: &(impl RequestHead + Sync + ?Sized),
        token: &str,
    ) -> Result<Session, Rejection> {
        let client_ip = || self.client_of(request).ip;
        let outcome = self
            .inner
            .authenticator
            .validate_session_io(token, &client_ip)
            .await
            .map_err(Rejection::from);
        if let Err(rejection) = &outcome {
            self.note_token_failure(request, rejection);
        }
        outcome
    }

    /// Checks that `session` holds `scope` ([`Authenticator::require_scope`]): an
    /// [API token](crate::api_tokens) must carry it; an interactive session (a login) holds
    /// every scope its user has, unless the service narrowed them with
    /// [`ApiTokens::interactive_scopes`](crate::api_tokens::ApiTokens::interactive_scopes).
    /// The adapters' `RequireScope` extractors and the tower layer's `AuthLayer::require_scope`
    /// call this; call it yourself
    /// where the scope depends on the request.
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// use keycard::api_tokens::{ApiTokens, NewApiToken};
    /// use keycard::http::{HttpAuth, StandardApi};
    /// use keycard::{Authenticator, ClientInfo, MemoryTokenStore, MemoryUserStore, UserRecord};
    ///
    /// let auth = Authenticator::builder(MemoryUserStore::<UserRecord>::new(), MemoryTokenStore::new())
    ///     .api_tokens(ApiTokens::new(["notes:read", "notes:write"])?)
    ///     .build();
    /// let hash = auth.hash_password("s3cret-passw0rd").await?;
    /// auth.users().insert(UserRecord::new(1_i64, "ann@example.com", hash)).expect("new user");
    /// let login = auth.login("ann@example.com", "s3cret-passw0rd", ClientInfo::none()).await?;
    /// let read_only = auth
    ///     .create_api_token(&login.session, NewApiToken::new("backup", ["notes:read"]))
    ///     .await?;
    ///
    /// let http = HttpAuth::new(auth, StandardApi);
    /// assert!(http.require_scope(&read_only.session, "notes:read").is_ok());
    /// let refused = http.require_scope(&read_only.session, "notes:write").unwrap_err();
    /// let answer = http.render(&refused);
    /// assert_eq!(answer.status, 403);
    /// assert!(answer.header("www-authenticate").unwrap().contains(r#"scope="notes:write""#));
    /// // The login holds every scope.
    /// assert!(http.require_scope(&login.session, "notes:write").is_ok());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// ```
    ///
    /// # Errors
    /// [`Rejection::Auth`] with [`Error::InsufficientScope`] (403; in
    /// [`StandardApi`](super::StandardApi) with `WWW-Authenticate: Bearer
    /// error="insufficient_scope", error_description="...", scope="..."`, RFC 6750 §3.1).
    pub fn require_scope(&self, session: &Session, scope: &str) -> Result<(), Rejection> {
        Ok(self.inner.authenticator.require_scope(session, scope)?)
    }

    /// Refuses an [API token](crate::api_tokens): `Ok` for an interactive session (a login)
    /// ([`Authenticator::require_interactive`]). The core's account operations (API tokens,
    /// the password, the email, second factors, sessions) check this themselves when handed
    /// the session; routes of your own that only a person may use call it, or take the
    /// adapters' `InteractiveSession` extractor.
    ///
    /// # Errors
    /// [`Rejection::Auth`] with [`Error::InteractiveSessionRequired`] (403).
    pub fn require_interactive(&self, session: &Session) -> Result<(), Rejection> {
        Ok(self.inner.authenticator.require_interactive(session)?)
    }

    /// Step-up: [`Authenticator::require_second_factor`] for `session`.
    ///
    /// # Errors
    /// The core's error, as [`Rejection::Auth`].
    pub async fn require_second_factor(&self, session: &Session) -> Result<(), Rejection> {
        Ok(self
            .inner
            .authenticator
            .require_second_factor(session)
            .await?)
    }

    /// Validates a token already found, with no request at hand: an API token's client
    /// address is not recorded (the request-taking [`validate`](Self::validate) records it).
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
            .validate_lazy(token.expose_secret(), &|| None)
            .await?)
    }

    /// Validates a token already found, without a user lookup (and, as
    /// [`validate_token`](Self::validate_token), without a client address).
    ///
    /// # Errors
    /// The core's error, as [`Rejection::Auth`].
    pub async fn validate_session_token(&self, token: &SessionToken) -> Result<Session, Rejection> {
        let token = token.expose_secret();
        if let Some(outcome) = self.validate_session_now(token) {
            return outcome;
        }
        Ok(self
            .inner
            .authenticator
            .validate_session_io(token, &|| None)
            .await?)
    }

    /// Logs in and renders the outcome: [`Protocol::login_succeeded`] or the error.
    pub async fn login(&self, credentials: &Credentials, client: ClientInfo) -> Response {
        let options = if credentials.remember_me {
            LoginOptions::default().with_lifetime(self.inner.authenticator.max_ttl())
        } else {
            LoginOptions::default()
        };
        let outcome = self
            .inner
            .authenticator
            .login(&credentials.login, &credentials.password, client, options)
            .await;
        match outcome {
            Ok(login) => self.login_response(&login, credentials.remember_me),
            Err(error) => render_error(self.protocol(), &error),
        }
    }

    /// The second step of a login ([`Authenticator::complete_login`]): the pending login's
    /// token and a code, answered like a login ([`Protocol::login_succeeded`], and the
    /// session cookie in cookie mode; the first step set none).
    pub async fn complete_login(
        &self,
        body: &SecondFactorLoginBody,
        client: ClientInfo,
    ) -> Response {
        let outcome = match body.proof.proof() {
            Ok(proof) => {
                self.inner
                    .authenticator
                    .complete_login(&body.mfa_token, proof, client)
                    .await
            }
            Err(error) => Err(error),
        };
        match outcome {
            Ok(login) => self.login_response(&login, false),
            Err(error) => render_error(self.protocol(), &error),
        }
    }

    /// The answer to a session just started (by a login, or by
    /// [`Authenticator::reauthenticate`]): [`Protocol::login_succeeded`] and, with a session
    /// cookie, the cookie (persistent until the session's expiry when `persistent`, a
    /// browser-session cookie otherwise).
    pub fn login_response(&self, login: &Login<U>, persistent: bool) -> Response {
        let response = self
            .protocol()
            .login_succeeded(&login.token, &login.user, &login.session);
        match &self.inner.cookie {
            Some(cookie) => response.with_header(
                "set-cookie",
                cookie.for_session(
                    login.token.expose_secret(),
                    persistent.then_some(&login.session),
                ),
            ),
            None => response,
        }
    }

    /// Logs `token` out and renders the outcome with [`Protocol::logged_out`] (or 503 if the
    /// store is down). With a session cookie, the answer also clears it.
    pub async fn logout(&self, token: &SessionToken) -> Response {
        let response = match self.inner.authenticator.logout(token.expose_secret()).await {
            Ok(outcome) => self.protocol().logged_out(token.expose_secret(), &outcome),
            Err(error) => render_error(self.protocol(), &error),
        };
        match &self.inner.cookie {
            Some(cookie) if response.status < 500 => {
                response.with_header("set-cookie", cookie.clear_cookie())
            }
            _ => response,
        }
    }
}

impl<U> HttpAuth<U> {
    /// The request's token (see [`TokenSource::find`]), if it may be used: a token from the
    /// session cookie on an unsafe method must come with same-origin evidence
    /// ([`check_token_origin`](Self::check_token_origin)).
    ///
    /// # Errors
    /// [`Rejection::CrossSite`].
    pub fn find_token(
        &self,
        request: &(impl RequestHead + ?Sized),
    ) -> Result<Option<SessionToken>, Rejection> {
        let token = self.token_source().find(request);
        if let Some(token) = &token {
            self.check_token_origin(request, token)?;
        }
        Ok(token)
    }

    /// As [`find_token`](Self::find_token), borrowing the token from the request where it
    /// can (a header or a cookie): validation keeps no copy of it.
    pub(super) fn find_token_borrowed<'r>(
        &self,
        request: &'r (impl RequestHead + ?Sized),
    ) -> Result<Option<FoundToken<'r>>, Rejection> {
        let token = self.token_source().find_borrowed(request);
        if let Some(token) = &token {
            if token.origin == TokenOrigin::Cookie && !same_origin_or_safe(request, self.secure()) {
                self.note_cross_site(request, "cookie_token");
                return Err(Rejection::CrossSite);
            }
        }
        Ok(token)
    }

    /// [`find_token_borrowed`](Self::find_token_borrowed), where no token is
    /// [`Error::MissingToken`].
    pub(super) fn require_token_borrowed<'r>(
        &self,
        request: &'r (impl RequestHead + ?Sized),
    ) -> Result<FoundToken<'r>, Rejection> {
        self.find_token_borrowed(request)?
            .ok_or(Rejection::Auth(Error::MissingToken))
    }

    /// Refuses a token that came from the session cookie on an unsafe method without
    /// evidence that the request comes from this site (see [`SessionCookie`]). Tokens from
    /// anywhere else pass: a browser never sends them on its own.
    ///
    /// # Errors
    /// [`Rejection::CrossSite`].
    pub fn check_token_origin(
        &self,
        request: &(impl RequestHead + ?Sized),
        token: &SessionToken,
    ) -> Result<(), Rejection> {
        if token.origin() == TokenOrigin::Cookie && !same_origin_or_safe(request, self.secure()) {
            self.note_cross_site(request, "cookie_token");
            return Err(Rejection::CrossSite);
        }
        Ok(())
    }

    /// With a session cookie, refuses a login another site started (login CSRF: logging the
    /// victim's browser into the attacker's account). Clients that send no browser headers
    /// pass.
    ///
    /// # Errors
    /// [`Rejection::CrossSite`].
    pub fn check_login_origin(
        &self,
        request: &(impl RequestHead + ?Sized),
    ) -> Result<(), Rejection> {
        if self.inner.cookie.is_some() && !not_cross_site(request, self.secure()) {
            self.note_cross_site(request, "login");
            return Err(Rejection::CrossSite);
        }
        Ok(())
    }

    /// Whether the app is served over HTTPS, as far as the origin checks go: yes unless the
    /// session cookie is not `Secure` (see [`SessionCookie`]).
    fn secure(&self) -> bool {
        self.inner
            .cookie
            .as_ref()
            .is_none_or(SessionCookie::is_secure)
    }

    /// Logs the `csrf.refused` audit event: the client, the method and the reported origin,
    /// never a cookie or a token.
    fn note_cross_site(&self, request: &(impl RequestHead + ?Sized), check: &str) {
        let reported = request
            .header("origin")
            .or_else(|| request.header("referer"));
        let origin = match reported.map(|value| WebOrigin::parse(value.trim())) {
            None => "-".to_owned(),
            Some(None) => "invalid".to_owned(),
            Some(Some(origin)) => origin.to_string(),
        };
        let method = request.method();
        let method = if method.len() <= 16 && method.bytes().all(|b| b.is_ascii_alphabetic()) {
            method
        } else {
            "other"
        };
        crate::audit::csrf_refused(check, method, &origin, self.client_of(request).ip);
    }

    /// Counts a malformed, invalid or expired token for the `tokens.invalid` audit event,
    /// and logs the event when its rate limit allows (see [`crate::audit`]). For the
    /// neutral layer's paths that validate a token found by hand (`optional_user`, ...).
    pub(super) fn note_token_failure(
        &self,
        request: &(impl RequestHead + ?Sized),
        rejection: &Rejection,
    ) {
        if !matches!(
            rejection.error(),
            Some(Error::MalformedToken | Error::InvalidToken | Error::SessionExpired)
        ) {
            return;
        }
        let ip = self.client_of(request).ip;
        let now = tokio::time::Instant::now().into_std();
        if let Some(count) = self.inner.token_failures.record(ip, now) {
            crate::audit::tokens_invalid(count, ip);
        }
    }

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

    /// The largest request body keycard's extractors read (see
    /// [`with_body_limit`](Self::with_body_limit)).
    pub fn body_limit(&self) -> usize {
        self.inner.body_limit
    }

    /// The protocol and the body limit, without the user type: what the adapters' `ApiJson`,
    /// `ApiForm` and `ApiQuery` extractors and fallbacks read.
    pub fn request_rules(&self) -> RequestRules {
        RequestRules::new(Arc::clone(&self.inner.protocol), self.inner.body_limit)
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

    /// Whether this HTTP edge runs on `authenticator` (or a clone of it: they share one core).
    #[cfg_attr(not(feature = "axum"), allow(dead_code))]
    pub(crate) fn runs_on<S: UserStore>(&self, authenticator: &Authenticator<S>) -> bool {
        std::ptr::eq(
            self.inner.authenticator.core(),
            Arc::as_ptr(&authenticator.inner).cast::<()>(),
        )
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
            .field("cookie", &self.inner.cookie)
            .field("body_limit", &self.inner.body_limit)
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
        options: LoginOptions,
    ) -> Result<Login<Self::User>>;
    async fn complete_login(
        &self,
        pending_token: &str,
        proof: SecondFactorProof<'_>,
        client: ClientInfo,
    ) -> Result<Login<Self::User>>;
    async fn require_second_factor(&self, session: &Session) -> Result<()>;
    fn max_ttl(&self) -> Duration;
    async fn logout(&self, token: &str) -> Result<Logout>;
    async fn validate_lazy(
        &self,
        token: &str,
        client_ip: &(dyn Fn() -> Option<IpAddr> + Send + Sync),
    ) -> Result<Authenticated<Self::User>>;
    /// [`Authenticator::validate_session_io`]: the async validate, for when
    /// [`validate_session_immediate`](Self::validate_session_immediate) could not answer.
    async fn validate_session_io(
        &self,
        token: &str,
        client_ip: &(dyn Fn() -> Option<IpAddr> + Send + Sync),
    ) -> Result<Session>;
    /// [`Authenticator::validate_session_immediate`]: an answer without a boxed future when
    /// no I/O is needed.
    fn validate_session_immediate(&self, token: &str) -> Option<Result<Session>>;
    fn require_scope(&self, session: &Session, scope: &str) -> Result<()>;
    fn require_interactive(&self, session: &Session) -> Result<()>;
    /// The address of the authenticator's shared core, which its clones share.
    fn core(&self) -> *const ();
}

#[async_trait]
impl<S: UserStore + 'static> Authenticate for Authenticator<S> {
    type User = S::User;

    async fn login(
        &self,
        login: &str,
        password: &str,
        client: ClientInfo,
        options: LoginOptions,
    ) -> Result<Login<S::User>> {
        Authenticator::login_with(self, login, password, client, options).await
    }

    async fn complete_login(
        &self,
        pending_token: &str,
        proof: SecondFactorProof<'_>,
        client: ClientInfo,
    ) -> Result<Login<S::User>> {
        Authenticator::complete_login(self, pending_token, proof, client).await
    }

    async fn require_second_factor(&self, session: &Session) -> Result<()> {
        Authenticator::require_second_factor(self, session).await
    }

    fn max_ttl(&self) -> Duration {
        self.policy().max_ttl()
    }

    async fn logout(&self, token: &str) -> Result<Logout> {
        Authenticator::logout(self, token).await
    }

    async fn validate_lazy(
        &self,
        token: &str,
        client_ip: &(dyn Fn() -> Option<IpAddr> + Send + Sync),
    ) -> Result<Authenticated<S::User>> {
        Authenticator::validate_lazy(self, token, client_ip).await
    }

    async fn validate_session_io(
        &self,
        token: &str,
        client_ip: &(dyn Fn() -> Option<IpAddr> + Send + Sync),
    ) -> Result<Session> {
        Authenticator::validate_session_io(self, token, client_ip).await
    }

    fn validate_session_immediate(&self, token: &str) -> Option<Result<Session>> {
        Authenticator::validate_session_immediate(self, token)
    }

    fn require_scope(&self, session: &Session, scope: &str) -> Result<()> {
        Authenticator::require_scope(self, session, scope)
    }

    fn require_interactive(&self, session: &Session) -> Result<()> {
        Authenticator::require_interactive(self, session)
    }

    fn core(&self) -> *const () {
        Arc::as_ptr(&self.inner).cast::<()>()
    }
}
