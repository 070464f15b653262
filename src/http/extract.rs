//! What the adapters' extractors produce, framework-neutral: [`CurrentUser`],
//! [`CurrentSession`], [`LoginRequest`] and [`LogoutRequest`], and the [`HttpAuth`] steps that
//! make each from a request. An adapter reads its framework's request (and, for login and
//! logout, the body), calls one of these steps, and converts a [`Rejection`].

use std::fmt;
use std::marker::PhantomData;
use std::ops::Deref;
use std::task::Poll;

use super::{Credentials, HttpAuth, Rejection, RequestHead, Response, SessionToken};
use crate::api_tokens::RequiredScope;
use crate::authenticator::Authenticated;
use crate::session::{ClientInfo, Session};
use crate::user::User;

/// The authenticated user and session: the request's token (see
/// [`TokenSource`](super::TokenSource)) checked by
/// [`Authenticator::validate`](crate::Authenticator::validate) (one token store read and one
/// user lookup). `U` is your user type.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct CurrentUser<U> {
    /// The user the token belongs to.
    pub user: U,
    /// The live session.
    pub session: Session,
}

/// The session only: the request's token checked by
/// [`Authenticator::validate_session`](crate::Authenticator::validate_session) (one token
/// store read, no user lookup). Use it on routes that only need the user id
/// ([`Session::user_id`]). `U` is the user type of your [`HttpAuth<U>`].
#[non_exhaustive]
pub struct CurrentSession<U> {
    /// The live session.
    pub session: Session,
    http: HttpAuth<U>,
}

/// A session that passed step-up: the request's token validated, and, if its user has a
/// second factor (or the policy requires one on every session), authenticated with one
/// ([`Authenticator::require_second_factor`](crate::Authenticator::require_second_factor)).
/// Use it on sensitive routes; a session without the needed factor is refused with
/// [`Error::InsufficientAuthentication`](crate::Error::InsufficientAuthentication) (401
/// `insufficient_user_authentication`, `acr_values="mfa"` in
/// [`StandardApi`](super::StandardApi)).
#[non_exhaustive]
pub struct SecondFactorSession<U> {
    /// The live session.
    pub session: Session,
    http: HttpAuth<U>,
}

impl<U> SecondFactorSession<U> {
    /// The HTTP layer it was checked by.
    pub fn http(&self) -> &HttpAuth<U> {
        &self.http
    }
}

/// The authenticated user and session, holding the scope `S` names: the request's token
/// validated as for [`CurrentUser`], then checked with
/// [`HttpAuth::require_scope`]`(session, S::SCOPE)`. A session without the scope is
/// refused with [`Error::InsufficientScope`](crate::Error::InsufficientScope) (403; in
/// [`StandardApi`](super::StandardApi) with `WWW-Authenticate: Bearer
/// error="insufficient_scope", error_description="...", scope="..."`), so the handler never
/// runs. An [API token](crate::api_tokens) must carry the scope; an interactive session (a
/// login) holds every scope the service declared.
///
/// Derefs to the [`Authenticated<U>`]: `me.user`, `me.session`.
///
/// ```
/// use keycard::api_tokens::RequiredScope;
/// use keycard::http::RequireScope;
/// use keycard::UserRecord;
///
/// struct NotesWrite;
/// impl RequiredScope for NotesWrite {
///     const SCOPE: &'static str = "notes:write";
/// }
///
/// // As an axum or actix-web handler's argument: only a session holding `notes:write`
/// // gets here.
/// async fn add_note(me: RequireScope<UserRecord, NotesWrite>) -> String {
///     format!("a note for {}", me.user.email)
/// }
/// # let _ = add_note;
/// ```
#[non_exhaustive]
pub struct RequireScope<U, S: RequiredScope> {
    /// The user and the session, which holds the scope.
    pub authenticated: Authenticated<U>,
    scope: PhantomData<fn() -> S>,
}

impl<U, S: RequiredScope> RequireScope<U, S> {
    /// The user and the session.
    pub fn into_inner(self) -> Authenticated<U> {
        self.authenticated
    }

    /// The scope checked: [`S::SCOPE`](RequiredScope::SCOPE).
    pub fn scope(&self) -> &'static str {
        S::SCOPE
    }
}

impl<U, S: RequiredScope> Deref for RequireScope<U, S> {
    type Target = Authenticated<U>;

    fn deref(&self) -> &Authenticated<U> {
        &self.authenticated
    }
}

impl<U: Clone, S: RequiredScope> Clone for RequireScope<U, S> {
    fn clone(&self) -> Self {
        Self {
            authenticated: self.authenticated.clone(),
            scope: PhantomData,
        }
    }
}

impl<U: fmt::Debug, S: RequiredScope> fmt::Debug for RequireScope<U, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RequireScope")
            .field("scope", &S::SCOPE)
            .field("authenticated", &self.authenticated)
            .finish()
    }
}

/// A session a person started (a login), not an [API token](crate::api_tokens): the
/// request's token validated as for [`CurrentSession`] (no user lookup), then checked with
/// [`HttpAuth::require_interactive`]. An API token is refused with
/// [`Error::InteractiveSessionRequired`](crate::Error::InteractiveSessionRequired) (403).
/// Use it on routes of your own that a script must not reach; keycard's account operations
/// (API tokens, the password, the email, second factors, sessions) refuse API tokens
/// themselves when handed the session.
#[non_exhaustive]
pub struct InteractiveSession<U> {
    /// The live, interactive session.
    pub session: Session,
    http: HttpAuth<U>,
}

impl<U> InteractiveSession<U> {
    /// The [`HttpAuth`] the session was validated with.
    pub fn http(&self) -> &HttpAuth<U> {
        &self.http
    }
}

impl<U> Clone for InteractiveSession<U> {
    fn clone(&self) -> Self {
        Self {
            session: self.session.clone(),
            http: self.http.clone(),
        }
    }
}

impl<U> fmt::Debug for InteractiveSession<U> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InteractiveSession")
            .field("session", &self.session)
            .finish_non_exhaustive()
    }
}

/// A login request: the credentials (a JSON or form body, chosen by `Content-Type`, with the
/// [`CredentialFields`](super::CredentialFields) of your [`HttpAuth`]) and the client's
/// address and user agent. Extracting it consumes the body: it must be the handler's last
/// extractor.
#[non_exhaustive]
pub struct LoginRequest<U> {
    /// What the client sent.
    pub credentials: Credentials,
    /// Who sent it.
    pub client: ClientInfo,
    http: HttpAuth<U>,
}

/// A logout request: the raw token, unchecked (logout must not fail on a dead token), from
/// the query, the JSON body field when the [`TokenSource`](super::TokenSource) names one (this
/// consumes the body, so it must be the handler's last extractor), `Authorization: Bearer`,
/// or the cookie.
#[non_exhaustive]
pub struct LogoutRequest<U> {
    /// The token as sent.
    pub token: SessionToken,
    http: HttpAuth<U>,
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
    /// `session`, validated by `http`.
    pub(crate) fn new(session: Session, http: HttpAuth<U>) -> Self {
        Self { session, http }
    }

    /// The [`HttpAuth`] the session was validated with.
    pub fn http(&self) -> &HttpAuth<U> {
        &self.http
    }
}

impl<U: User + Clone + 'static> HttpAuth<U> {
    /// The [`CurrentUser`] of `request`.
    ///
    /// # Errors
    /// As [`validate`](Self::validate).
    pub async fn current_user(
        &self,
        request: &(impl RequestHead + Sync + ?Sized),
    ) -> Result<CurrentUser<U>, Rejection> {
        let me = self.validate(request).await?;
        Ok(CurrentUser {
            user: me.user,
            session: me.session,
        })
    }

    /// The [`CurrentUser`] of `request`, or `None` when it carries no token at all.
    ///
    /// # Errors
    /// As [`validate`](Self::validate), but for [`Error::MissingToken`](crate::Error::MissingToken).
    pub async fn optional_user(
        &self,
        request: &(impl RequestHead + Sync + ?Sized),
    ) -> Result<Option<CurrentUser<U>>, Rejection> {
        let Some(token) = self.find_token_borrowed(request)? else {
            return Ok(None);
        };
        let me = self.validate_found(request, &token).await?;
        Ok(Some(CurrentUser {
            user: me.user,
            session: me.session,
        }))
    }

    /// The [`CurrentSession`] of `request`.
    ///
    /// # Errors
    /// As [`validate_session`](Self::validate_session).
    pub async fn current_session(
        &self,
        request: &(impl RequestHead + Sync + ?Sized),
    ) -> Result<CurrentSession<U>, Rejection> {
        let session = self.validate_session(request).await?;
        Ok(CurrentSession::new(session, self.clone()))
    }

    /// [`current_session`](Self::current_session) when it needs no I/O and no wait (see
    /// the core's immediate validate), as a future's answer; `Pending` when it would, and
    /// then [`current_session_async`](Self::current_session_async) decides afresh. A
    /// rejection is turned into the adapter's error by `reject` here, so that the answer is
    /// built once, where it is returned: one copy of the session fewer.
    #[cfg_attr(not(feature = "actix-web"), allow(dead_code))]
    pub(crate) fn current_session_now<E>(
        &self,
        request: &(impl RequestHead + ?Sized),
        reject: impl FnOnce(&Self, Rejection) -> E,
    ) -> Poll<Result<CurrentSession<U>, E>> {
        let outcome = match self.require_token_borrowed(request) {
            Ok(token) => match self.validate_session_found_now(request, &token) {
                Some(outcome) => outcome,
                None => return Poll::Pending,
            },
            Err(rejection) => Err(rejection),
        };
        Poll::Ready(match outcome {
            Ok(session) => Ok(CurrentSession::new(session, self.clone())),
            Err(rejection) => Err(reject(self, rejection)),
        })
    }

    /// What [`current_session`](Self::current_session) does once
    /// [`current_session_now`](Self::current_session_now) could not answer: the core's async
    /// validate, without trying the immediate path again.
    #[cfg_attr(not(feature = "actix-web"), allow(dead_code))]
    pub(crate) async fn current_session_async(
        &self,
        request: &(impl RequestHead + Sync + ?Sized),
    ) -> Result<CurrentSession<U>, Rejection> {
        let token = self.require_token_borrowed(request)?;
        let session = self.validate_session_async(request, &token).await?;
        Ok(CurrentSession::new(session, self.clone()))
    }

    /// The [`SecondFactorSession`] of `request`.
    ///
    /// # Errors
    /// As [`validate_session`](Self::validate_session), and
    /// [`Error::InsufficientAuthentication`](crate::Error::InsufficientAuthentication) when
    /// the session lacks a second factor it needs.
    pub async fn second_factor_session(
        &self,
        request: &(impl RequestHead + Sync + ?Sized),
    ) -> Result<SecondFactorSession<U>, Rejection> {
        let session = self.validate_session(request).await?;
        self.require_second_factor(&session).await?;
        Ok(SecondFactorSession {
            session,
            http: self.clone(),
        })
    }

    /// The [`RequireScope`] of `request`: [`current_user`](Self::current_user), then
    /// [`require_scope`](Self::require_scope) with `S::SCOPE`.
    ///
    /// # Errors
    /// As [`validate`](Self::validate), and
    /// [`Error::InsufficientScope`](crate::Error::InsufficientScope) when the session lacks
    /// the scope.
    pub async fn require_scope_of<S: RequiredScope>(
        &self,
        request: &(impl RequestHead + Sync + ?Sized),
    ) -> Result<RequireScope<U, S>, Rejection> {
        let authenticated = self.validate(request).await?;
        self.require_scope(&authenticated.session, S::SCOPE)?;
        Ok(RequireScope {
            authenticated,
            scope: PhantomData,
        })
    }

    /// The [`InteractiveSession`] of `request`: [`current_session`](Self::current_session),
    /// then [`require_interactive`](Self::require_interactive).
    ///
    /// # Errors
    /// As [`validate_session`](Self::validate_session), and
    /// [`Error::InteractiveSessionRequired`](crate::Error::InteractiveSessionRequired) for an
    /// API token.
    pub async fn interactive_session(
        &self,
        request: &(impl RequestHead + Sync + ?Sized),
    ) -> Result<InteractiveSession<U>, Rejection> {
        let session = self.validate_session(request).await?;
        self.require_interactive(&session)?;
        Ok(InteractiveSession {
            session,
            http: self.clone(),
        })
    }

    /// The [`CurrentSession`] of `request`, or `None` when it carries no token at all.
    ///
    /// # Errors
    /// As [`validate_session`](Self::validate_session), but for
    /// [`Error::MissingToken`](crate::Error::MissingToken).
    pub async fn optional_session(
        &self,
        request: &(impl RequestHead + Sync + ?Sized),
    ) -> Result<Option<CurrentSession<U>>, Rejection> {
        match self.validate_session(request).await {
            Ok(session) => Ok(Some(CurrentSession::new(session, self.clone()))),
            // Only a request without a token is refused as missing one.
            Err(Rejection::Auth(crate::Error::MissingToken)) => Ok(None),
            Err(rejection) => Err(rejection),
        }
    }

    /// The [`LoginRequest`] of `request` with body `body`. Call
    /// [`check_login_origin`](Self::check_login_origin) before reading the body.
    ///
    /// # Errors
    /// As [`CredentialFields::from_body`](super::CredentialFields::from_body).
    pub fn login_request(
        &self,
        request: &(impl RequestHead + ?Sized),
        body: &[u8],
    ) -> Result<LoginRequest<U>, Rejection> {
        let credentials = self
            .credential_fields()
            .from_body(request.media_type().as_deref(), body)?;
        Ok(LoginRequest {
            credentials,
            client: self.client_of(request),
            http: self.clone(),
        })
    }

    /// Whether finding the logout token needs the body: no token in the query, and the token
    /// source names a JSON field. Adapters read the body only then.
    pub fn logout_needs_body(&self, request: &(impl RequestHead + ?Sized)) -> bool {
        let source = self.token_source();
        source.json_field().is_some() && source.find_in_query(request).is_none()
    }

    /// The [`LogoutRequest`] of `request` with body `body` (empty when
    /// [`logout_needs_body`](Self::logout_needs_body) said no).
    ///
    /// # Errors
    /// As [`TokenSource::require_with_body`](super::TokenSource::require_with_body) and
    /// [`check_token_origin`](Self::check_token_origin).
    pub fn logout_request(
        &self,
        request: &(impl RequestHead + ?Sized),
        body: &[u8],
    ) -> Result<LogoutRequest<U>, Rejection> {
        let token = self.token_source().require_with_body(request, body)?;
        self.check_token_origin(request, &token)?;
        Ok(LogoutRequest {
            token,
            http: self.clone(),
        })
    }
}

impl<U> fmt::Debug for SecondFactorSession<U> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecondFactorSession")
            .field("session", &self.session)
            .finish_non_exhaustive()
    }
}

impl<U> fmt::Debug for CurrentSession<U> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CurrentSession")
            .field("session", &self.session)
            .finish_non_exhaustive()
    }
}

impl<U> Clone for CurrentSession<U> {
    fn clone(&self) -> Self {
        Self {
            session: self.session.clone(),
            http: self.http.clone(),
        }
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
