//! [`HttpAccounts`]: the account flows of [`crate::account`] over HTTP, and their bodies.

use std::fmt;

use serde::{Deserialize, Deserializer};
use zeroize::Zeroizing;

use super::{
    render_error, AccountUpdate, Credentials, HttpAuth, Protocol, Response, SecondFactorLoginBody,
};
use crate::account::{AccountStore, Accounts};
use crate::session::{ClientInfo, Session};

/// A body with one `email` field: forgot password, sign-in link, verification resend.
#[derive(Clone, Deserialize)]
#[non_exhaustive]
pub struct EmailBody {
    /// The address, as typed.
    pub email: String,
}

/// A body with one `token` field: the token of a link (verify, sign in, confirm a change).
/// The token is zeroized on drop and redacted in `Debug`.
#[derive(Clone, Deserialize)]
#[non_exhaustive]
pub struct TokenBody {
    /// The link's token.
    #[serde(deserialize_with = "secret")]
    pub token: Zeroizing<String>,
}

/// The body of a password reset: `{"token", "new_password"}`, both zeroized and redacted.
#[derive(Clone, Deserialize)]
#[non_exhaustive]
pub struct PasswordResetBody {
    /// The reset link's token.
    #[serde(deserialize_with = "secret")]
    pub token: Zeroizing<String>,
    /// The new password.
    #[serde(deserialize_with = "secret")]
    pub new_password: Zeroizing<String>,
}

/// The body of an email change request: `{"new_email", "password"}`; the password is
/// zeroized and redacted.
#[derive(Clone, Deserialize)]
#[non_exhaustive]
pub struct EmailChangeBody {
    /// The new address.
    pub new_email: String,
    /// The current password, proving it is the user.
    #[serde(deserialize_with = "secret")]
    pub password: Zeroizing<String>,
}

fn secret<'de, D: Deserializer<'de>>(de: D) -> Result<Zeroizing<String>, D::Error> {
    String::deserialize(de).map(Zeroizing::new)
}

impl fmt::Debug for EmailBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Users type passwords into email fields by mistake.
        f.debug_struct("EmailBody")
            .field("email", &"[redacted]")
            .finish()
    }
}

impl fmt::Debug for TokenBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenBody")
            .field("token", &"[redacted]")
            .finish()
    }
}

impl fmt::Debug for PasswordResetBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PasswordResetBody")
            .field("token", &"[redacted]")
            .field("new_password", &"[redacted]")
            .finish()
    }
}

impl fmt::Debug for EmailChangeBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EmailChangeBody")
            .field("new_email", &"[redacted]")
            .field("password", &"[redacted]")
            .finish()
    }
}

/// The [account flows](crate::account) rendered by a [`Protocol`]: each method takes the
/// parsed body and the request's client (an adapter's `Client` extractor, or
/// [`HttpAuth::client_of`]) and returns the complete [`Response`].
///
/// | method | success |
/// |---|---|
/// | [`register`](Self::register), [`forgot_password`](Self::forgot_password), [`request_sign_in_link`](Self::request_sign_in_link), [`resend_verification`](Self::resend_verification), [`request_email_change`](Self::request_email_change) | 202 [`Protocol::mail_accepted`], the same for known and unknown addresses |
/// | [`verify_email`](Self::verify_email), [`reset_password`](Self::reset_password), [`confirm_email_change`](Self::confirm_email_change) | 200 [`Protocol::account_updated`] |
/// | [`sign_in_with_link`](Self::sign_in_with_link), [`complete_login`](Self::complete_login) | as a login: the token, and the cookie in cookie mode (a sign-in link of a user with a second factor answers [`Protocol::second_factor_required`]) |
///
/// Errors are rendered by the protocol: in [`StandardApi`](super::StandardApi) a used,
/// expired or unknown link is 400 `invalid_link` (`stale_link` when the account changed
/// since), a refused new password 422 `weak_password`, a login before verification 403
/// `email_not_verified`, too many requests from one address 429 with `Retry-After`.
///
/// Tokens reach these routes in a POST body, sent by your page from the link's fragment
/// (see [`Links`](crate::account::Links)): never in a URL the server logs.
pub struct HttpAccounts<U: AccountStore> {
    accounts: Accounts<U>,
    http: HttpAuth<U::User>,
}

impl<U: AccountStore> Clone for HttpAccounts<U> {
    fn clone(&self) -> Self {
        Self {
            accounts: self.accounts.clone(),
            http: self.http.clone(),
        }
    }
}

impl<U: AccountStore> fmt::Debug for HttpAccounts<U> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpAccounts")
            .field("accounts", &self.accounts)
            .field("http", &self.http)
            .finish()
    }
}

impl<U: AccountStore + 'static> HttpAccounts<U> {
    /// The flows of `accounts`, answered in `http`'s protocol (and its session cookie, for
    /// [`sign_in_with_link`](Self::sign_in_with_link)).
    pub fn new(accounts: Accounts<U>, http: HttpAuth<U::User>) -> Self {
        Self { accounts, http }
    }

    /// The flows underneath.
    pub fn accounts(&self) -> &Accounts<U> {
        &self.accounts
    }

    /// The HTTP edge of the authenticator.
    pub fn http(&self) -> &HttpAuth<U::User> {
        &self.http
    }

    fn protocol(&self) -> &dyn Protocol {
        self.http.protocol()
    }

    fn mail_accepted(&self, outcome: crate::Result<()>) -> Response {
        match outcome {
            Ok(()) => self.protocol().mail_accepted(),
            Err(error) => render_error(self.protocol(), &error),
        }
    }

    fn updated<T>(&self, outcome: crate::Result<T>, update: AccountUpdate) -> Response {
        match outcome {
            Ok(_) => self.protocol().account_updated(update),
            Err(error) => render_error(self.protocol(), &error),
        }
    }

    /// `{"email","password"}`: [`Accounts::register`]; 202 for a new and a taken email.
    pub async fn register(&self, body: &Credentials, client: &ClientInfo) -> Response {
        let outcome = self
            .accounts
            .register(&body.login, &body.password, client)
            .await;
        self.mail_accepted(outcome)
    }

    /// `{"token"}`: [`Accounts::verify_email`].
    pub async fn verify_email(&self, body: &TokenBody, client: &ClientInfo) -> Response {
        let outcome = self.accounts.verify_email(&body.token, client).await;
        self.updated(outcome, AccountUpdate::EmailVerified)
    }

    /// `{"email"}`: [`Accounts::resend_verification`]; 202 always.
    pub async fn resend_verification(&self, body: &EmailBody, client: &ClientInfo) -> Response {
        let outcome = self.accounts.resend_verification(&body.email, client).await;
        self.mail_accepted(outcome)
    }

    /// `{"email"}`: [`Accounts::forgot_password`]; 202 for known and unknown emails.
    pub async fn forgot_password(&self, body: &EmailBody, client: &ClientInfo) -> Response {
        let outcome = self.accounts.forgot_password(&body.email, client).await;
        self.mail_accepted(outcome)
    }

    /// `{"token","new_password"}`: [`Accounts::reset_password`].
    pub async fn reset_password(&self, body: &PasswordResetBody, client: &ClientInfo) -> Response {
        let outcome = self
            .accounts
            .reset_password(&body.token, &body.new_password, client)
            .await;
        self.updated(outcome, AccountUpdate::PasswordReset)
    }

    /// `{"email"}`: [`Accounts::request_sign_in_link`]; 202 for known and unknown emails.
    pub async fn request_sign_in_link(&self, body: &EmailBody, client: &ClientInfo) -> Response {
        let outcome = self
            .accounts
            .request_sign_in_link(&body.email, client)
            .await;
        self.mail_accepted(outcome)
    }

    /// `{"token"}`: [`Accounts::sign_in_with_link`]; answered as a login (the token, and the
    /// cookie in cookie mode).
    pub async fn sign_in_with_link(&self, body: &TokenBody, client: ClientInfo) -> Response {
        match self.accounts.sign_in_with_link(&body.token, client).await {
            Ok(login) => self.http.login_response(&login, false),
            Err(error) => render_error(self.protocol(), &error),
        }
    }

    /// `{"mfa_token","code"}` or `{"mfa_token","recovery_code"}`: [`Accounts::complete_login`]
    /// (a spent recovery code is mailed about), answered as a login.
    pub async fn complete_login(
        &self,
        body: &SecondFactorLoginBody,
        client: ClientInfo,
    ) -> Response {
        let outcome = match body.proof.proof() {
            Ok(proof) => {
                self.accounts
                    .complete_login(&body.mfa_token, proof, client)
                    .await
            }
            Err(error) => Err(error),
        };
        match outcome {
            Ok(login) => self.http.login_response(&login, false),
            Err(error) => render_error(self.protocol(), &error),
        }
    }

    /// `{"new_email","password"}` from the logged-in `session`: [`Accounts::request_email_change`]; 202.
    /// The session itself is handed to the core, so an [API token](crate::api_tokens) is
    /// refused with 403 ([`Error::InteractiveSessionRequired`](crate::Error::InteractiveSessionRequired)).
    pub async fn request_email_change(
        &self,
        session: &Session,
        body: &EmailChangeBody,
        client: &ClientInfo,
    ) -> Response {
        let outcome = self
            .accounts
            .request_email_change(session, &body.new_email, &body.password, client)
            .await;
        self.mail_accepted(outcome)
    }

    /// `{"token"}`: [`Accounts::confirm_email_change`].
    pub async fn confirm_email_change(&self, body: &TokenBody, client: &ClientInfo) -> Response {
        let outcome = self
            .accounts
            .confirm_email_change(&body.token, client)
            .await;
        self.updated(outcome, AccountUpdate::EmailChanged)
    }
}
