//! What the adapters' extractors produce, framework-neutral: [`CurrentUser`],
//! [`CurrentSession`], [`LoginRequest`] and [`LogoutRequest`], and the [`HttpAuth`] steps that
//! make each from a request. An adapter reads its framework's request (and, for login and
//! logout, the body), calls one of these steps, and converts a [`Rejection`].

use std::fmt;

use super::{Credentials, HttpAuth, Rejection, RequestHead, Response, SessionToken};
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
        request: &(impl RequestHead + ?Sized),
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
        request: &(impl RequestHead + ?Sized),
    ) -> Result<Option<CurrentUser<U>>, Rejection> {
        let Some(token) = self.find_token(request)? else {
            return Ok(None);
        };
        let me = self.validate_token(&token).await.inspect_err(|rejection| {
            self.note_token_failure(request, rejection);
        })?;
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
        request: &(impl RequestHead + ?Sized),
    ) -> Result<CurrentSession<U>, Rejection> {
        let session = self.validate_session(request).await?;
        Ok(CurrentSession {
            session,
            http: self.clone(),
        })
    }

    /// The [`SecondFactorSession`] of `request`.
    ///
    /// # Errors
    /// As [`validate_session`](Self::validate_session), and
    /// [`Error::InsufficientAuthentication`](crate::Error::InsufficientAuthentication) when
    /// the session lacks a second factor it needs.
    pub async fn second_factor_session(
        &self,
        request: &(impl RequestHead + ?Sized),
    ) -> Result<SecondFactorSession<U>, Rejection> {
        let session = self.validate_session(request).await?;
        self.require_second_factor(&session).await?;
        Ok(SecondFactorSession {
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
        request: &(impl RequestHead + ?Sized),
    ) -> Result<Option<CurrentSession<U>>, Rejection> {
        let Some(token) = self.find_token(request)? else {
            return Ok(None);
        };
        let session = self
            .validate_session_token(&token)
            .await
            .inspect_err(|rejection| self.note_token_failure(request, rejection))?;
        Ok(Some(CurrentSession {
            session,
            http: self.clone(),
        }))
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
