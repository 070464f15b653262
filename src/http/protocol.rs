//! [`Protocol`]: how outcomes and errors look on the wire, and the three built-in ones.

use std::fmt::Debug;

use serde_json::{json, Map, Value};
use time::format_description::well_known::Rfc3339;

use super::Response;
use crate::authenticator::Logout;
use crate::email::EmailRejection;
use crate::error::Error;
use crate::mfa::{PendingLogin, RecoveryCodes, TotpEnrollment};
use crate::password_policy::PasswordRule;
use crate::session::Session;
use crate::token::Token;
use crate::user::User;

/// How one HTTP API spells outcomes and errors. Adapters call it and only copy the
/// [`Response`] onto their framework's.
///
/// Implement it for an API of your own; every method returns a complete response, headers
/// included (`Cache-Control: no-store` comes with every [`Response`] constructor).
pub trait Protocol: Send + Sync + Debug + 'static {
    /// The response to a successful login. `session` is the new session (its
    /// [`expires_at`](Session::expires_at), for instance).
    fn login_succeeded(&self, token: &Token, user: &dyn User, session: &Session) -> Response;

    /// The response to a logout. `token` is the string the client sent.
    fn logged_out(&self, token: &str, outcome: &Logout) -> Response;

    /// The response to an error from any operation, or to a missing token.
    fn error(&self, error: &Error) -> Response;

    /// A plain message in this protocol's error shape, for rejections that happen before the
    /// core is called (malformed JSON, missing field, unknown route, body too large).
    fn rejection(&self, status: u16, message: &str) -> Response;

    /// The answer to a request that may send a mail (registration, forgot password, a
    /// sign-in link, a verification resend, an email change): the same whether or not the
    /// address has an account. Default: 202 `{"message":"..."}`.
    fn mail_accepted(&self) -> Response {
        Response::json(
            202,
            &json!({ "message": "If the address can receive it, a mail is on its way; follow its link" }),
        )
    }

    /// The answer to a first login step (password or sign-in link) of a user with a second
    /// factor: no session, no cookie, a pending-login token for
    /// [`Authenticator::complete_login`](crate::Authenticator::complete_login). Default: 200
    /// `{"mfa_required":true,"mfa_token":"...","expires_at":"<RFC 3339>","methods":["totp","recovery_code"]}`.
    fn second_factor_required(&self, pending: &PendingLogin) -> Response {
        Response::json(
            200,
            &json!({
                "mfa_required": true,
                "mfa_token": pending.token.expose_secret(),
                "expires_at": rfc3339(pending.expires_at),
                "methods": pending.methods,
            }),
        )
    }

    /// The start of an authenticator-app enrolment. Default: 200
    /// `{"secret":"BASE32","otpauth_uri":"otpauth://totp/..."}`.
    fn totp_enrollment(&self, enrollment: &TotpEnrollment) -> Response {
        Response::json(
            200,
            &json!({
                "secret": enrollment.secret.as_str(),
                "otpauth_uri": enrollment.otpauth_uri.as_str(),
            }),
        )
    }

    /// New recovery codes (at a confirmed enrolment or a regeneration), shown once. Default:
    /// 200 `{"recovery_codes":["abcd-efgh-ijkl-mnop", ...]}`.
    fn recovery_codes(&self, codes: &RecoveryCodes) -> Response {
        Response::json(200, &json!({ "recovery_codes": codes }))
    }

    /// The answer to an account change made with a link's token (an address verified or
    /// changed, a password reset). Default: 200 `{"message": ...}`.
    fn account_updated(&self, update: AccountUpdate) -> Response {
        let message = match update {
            AccountUpdate::EmailVerified => "Your email address is verified",
            AccountUpdate::PasswordReset => {
                "Your password was changed and every session ended; log in with the new password"
            }
            AccountUpdate::EmailChanged => "Your email address was changed",
        };
        Response::json(200, &json!({ "message": message }))
    }
}

/// Which account change [`Protocol::account_updated`] reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum AccountUpdate {
    /// A verification link proved the address.
    EmailVerified,
    /// A reset link set a new password (every session ended).
    PasswordReset,
    /// An email change was confirmed from the new address.
    EmailChanged,
}

/// The Rails-style sessions API: `POST /api/sessions` answers `{"token": T}`,
/// `PATCH /api/sessions/sign_out?token=` ends the session, and every error is 422
/// `{"message": ...}` (429 and 503 aside). Pair it with
/// [`reveal_unknown_email(true)`](crate::AuthenticatorBuilder::reveal_unknown_email), since the
/// API answers "User not found".
///
/// ```
/// use keycard::{http::{Protocol, SessionsApi}, Error};
/// let r = SessionsApi.error(&Error::InvalidCredentials);
/// assert_eq!((r.status, r.body.as_str()), (422, r#"{"message":"Email or password is invalid"}"#));
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct SessionsApi;

/// The client login API: `POST /login` answers
/// `{"client": {"auth_token", "email", ...profile}}`, `DELETE /logout` takes `auth_token` and
/// always succeeds; bad credentials and tokens are 401 `{"error": ...}` with a
/// `WWW-Authenticate: Bearer` challenge.
///
/// ```
/// use keycard::{http::{Protocol, LoginApi}, Error};
/// let r = LoginApi.error(&Error::UnknownEmail);
/// assert_eq!((r.status, r.body.as_str()), (401, r#"{"error":"Invalid email/password"}"#));
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct LoginApi;

/// The standards-based protocol for new APIs: RFC 6750 bearer tokens and RFC 9457 problem
/// details.
///
/// - login: 200 `{"expires_at": RFC 3339, "token": T}`;
/// - logout: 204, whether or not the token named a session (logout is idempotent);
/// - every error: `application/problem+json` with `type` (`about:blank`), `title` (the status
///   phrase), `status`, `detail` (the core error's message, which never holds a secret or a
///   backend's detail; 5xx say only that the service is unavailable) and `code`, a stable
///   machine-readable string (`missing_token`, `invalid_token`, `invalid_credentials`, ...);
/// - 401 carries `WWW-Authenticate: Bearer`, with `error="invalid_token"` when a token was
///   sent but is malformed, unknown or expired (RFC 6750 §3.1);
/// - 429 and 503 carry `Retry-After`.
///
/// ```
/// use keycard::{http::{Protocol, StandardApi}, Error};
/// let r = StandardApi.error(&Error::InvalidToken);
/// assert_eq!(r.status, 401);
/// assert_eq!(r.header("content-type"), Some("application/problem+json"));
/// assert_eq!(
///     r.header("www-authenticate"),
///     Some(r#"Bearer error="invalid_token", error_description="the session token is not valid; log in again""#)
/// );
/// let body: serde_json::Value = serde_json::from_str(&r.body).unwrap();
/// assert_eq!(body["code"], "invalid_token");
/// assert_eq!(body["title"], "Unauthorized");
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct StandardApi;

impl Protocol for SessionsApi {
    fn login_succeeded(&self, token: &Token, _user: &dyn User, _session: &Session) -> Response {
        Response::json(200, &json!({ "token": token.expose_secret() }))
    }

    fn logged_out(&self, token: &str, outcome: &Logout) -> Response {
        match outcome {
            Logout::Destroyed(_) => Response::json(
                200,
                &json!({ "message": format!("{token} has been destroyed successfully") }),
            ),
            Logout::NoSession => self.rejection(422, NOT_CHECKED_IN),
        }
    }

    fn error(&self, error: &Error) -> Response {
        let (status, message) = match error {
            Error::InvalidCredentials => (422, "Email or password is invalid".to_owned()),
            Error::UnknownEmail => (422, "User not found".to_owned()),
            Error::MissingToken
            | Error::MalformedToken
            | Error::InvalidToken
            | Error::SessionExpired => (422, NOT_CHECKED_IN.to_owned()),
            Error::InputTooLong { field, max } => (
                422,
                format!(
                    "{} is too long (maximum is {max} bytes)",
                    capitalized(&field.to_string())
                ),
            ),
            Error::IncorrectPassword => (422, "Password is invalid".to_owned()),
            Error::EmailTaken => (422, "Email has already been taken".to_owned()),
            Error::EmailNotVerified => (422, "Email is not verified".to_owned()),
            Error::SecondFactorRequired(pending) => return self.second_factor_required(pending),
            Error::InvalidLink
            | Error::StaleLink
            | Error::InvalidCode
            | Error::InvalidPendingLogin
            | Error::SecondFactorAlreadyEnabled
            | Error::SecondFactorNotEnabled
            | Error::PasskeyRejected
            | Error::InvalidCeremony
            | Error::TooManyPasskeys { .. }
            | Error::InsufficientAuthentication { .. } => (422, capitalized(&error.to_string())),
            Error::InteractiveSessionRequired
            | Error::InsufficientScope { .. }
            | Error::InvalidScope(_)
            | Error::TooManyApiTokens { .. }
            | Error::InvalidApiTokenRequest(_) => (422, capitalized(&error.to_string())),
            Error::WeakPassword(_)
            | Error::InvalidEmail(_)
            | Error::TooManySessions { .. }
            | Error::ReauthenticationRequired { .. } => (422, capitalized(&error.to_string())),
            Error::Throttled { .. } => (429, throttled_message(error)),
            Error::Overloaded { .. } | Error::Store(_) | Error::ThrottleUnavailable(_) => {
                (503, UNAVAILABLE.to_owned())
            }
            _ => (500, INTERNAL.to_owned()),
        };
        self.rejection(status, &message)
            .with_retry_after(error.retry_after_secs())
    }

    fn rejection(&self, status: u16, message: &str) -> Response {
        Response::json(status, &json!({ "message": message }))
    }
}

impl Protocol for LoginApi {
    fn login_succeeded(&self, token: &Token, user: &dyn User, _session: &Session) -> Response {
        let mut client = Map::new();
        client.insert("auth_token".into(), token.expose_secret().into());
        client.insert("email".into(), user.email().into());
        for (key, value) in user.profile() {
            client.entry(key).or_insert(value);
        }
        Response::json(200, &json!({ "client": client }))
    }

    fn logged_out(&self, _token: &str, _outcome: &Logout) -> Response {
        Response::json(200, &json!({ "message": "Successfully logged out" }))
    }

    fn error(&self, error: &Error) -> Response {
        let (status, message) = match error {
            Error::InvalidCredentials | Error::UnknownEmail => {
                (401, "Invalid email/password".to_owned())
            }
            Error::MissingToken => (401, "Missing auth_token".to_owned()),
            Error::MalformedToken | Error::InvalidToken | Error::SessionExpired => {
                (401, "Invalid or expired auth_token".to_owned())
            }
            Error::InputTooLong { field, max } => {
                (400, format!("{field} is too long (maximum is {max} bytes)"))
            }
            Error::IncorrectPassword => (403, "Invalid password".to_owned()),
            Error::EmailNotVerified => (403, error.to_string()),
            Error::SecondFactorRequired(pending) => return self.second_factor_required(pending),
            Error::InvalidLink | Error::StaleLink => (400, error.to_string()),
            Error::InvalidCode => (403, "Invalid code".to_owned()),
            Error::InvalidPendingLogin => (401, error.to_string()),
            Error::InsufficientAuthentication { .. } => (401, error.to_string()),
            Error::SecondFactorAlreadyEnabled | Error::SecondFactorNotEnabled => {
                (409, error.to_string())
            }
            Error::PasskeyRejected => (403, error.to_string()),
            Error::InvalidCeremony => (400, error.to_string()),
            Error::TooManyPasskeys { .. } => (409, error.to_string()),
            Error::InteractiveSessionRequired | Error::InsufficientScope { .. } => {
                (403, error.to_string())
            }
            Error::InvalidScope(_) | Error::InvalidApiTokenRequest(_) => (422, error.to_string()),
            Error::TooManyApiTokens { .. } => (409, error.to_string()),
            Error::WeakPassword(_) | Error::InvalidEmail(_) => (422, error.to_string()),
            Error::TooManySessions { .. } | Error::EmailTaken => (409, error.to_string()),
            Error::ReauthenticationRequired { .. } => (403, error.to_string()),
            Error::Throttled { .. } => (429, throttled_message(error)),
            Error::Overloaded { .. } | Error::Store(_) | Error::ThrottleUnavailable(_) => {
                (503, UNAVAILABLE.to_owned())
            }
            _ => (500, INTERNAL.to_owned()),
        };
        let response = self
            .rejection(status, &message)
            .with_retry_after(error.retry_after_secs());
        match bearer_challenge(error) {
            Some(challenge) if status == 401 => response.with_header("www-authenticate", challenge),
            _ => response,
        }
    }

    fn rejection(&self, status: u16, message: &str) -> Response {
        Response::json(status, &json!({ "error": message }))
    }
}

impl Protocol for StandardApi {
    fn login_succeeded(&self, token: &Token, _user: &dyn User, session: &Session) -> Response {
        Response::json(
            200,
            &json!({ "expires_at": rfc3339(session.expires_at), "token": token.expose_secret() }),
        )
    }

    fn logged_out(&self, _token: &str, _outcome: &Logout) -> Response {
        Response::empty(204)
    }

    fn error(&self, error: &Error) -> Response {
        let (status, code) = match error {
            Error::InvalidCredentials | Error::UnknownEmail => (401, "invalid_credentials"),
            Error::MissingToken => (401, "missing_token"),
            Error::MalformedToken | Error::InvalidToken | Error::SessionExpired => {
                (401, "invalid_token")
            }
            // The session is fine; the password typed to confirm an action is not.
            Error::IncorrectPassword => (403, "invalid_credentials"),
            Error::InputTooLong { .. } => (422, "input_too_long"),
            Error::WeakPassword(_) => (422, "weak_password"),
            Error::InvalidEmail(_) => (422, "invalid_email"),
            Error::EmailTaken => (409, "email_taken"),
            Error::EmailNotVerified => (403, "email_not_verified"),
            Error::InvalidLink => (400, "invalid_link"),
            Error::StaleLink => (400, "stale_link"),
            Error::TooManySessions { .. } => (409, "too_many_sessions"),
            Error::ReauthenticationRequired { .. } => (401, "reauthentication_required"),
            Error::SecondFactorRequired(pending) => return self.second_factor_required(pending),
            // The session (or pending login) is fine; the code is not.
            Error::InvalidCode => (403, "invalid_code"),
            Error::InvalidPendingLogin => (401, "invalid_mfa_token"),
            Error::SecondFactorAlreadyEnabled => (409, "mfa_already_enabled"),
            Error::SecondFactorNotEnabled => (409, "mfa_not_enabled"),
            Error::PasskeyRejected => (403, "passkey_rejected"),
            Error::InvalidCeremony => (400, "invalid_ceremony"),
            Error::TooManyPasskeys { .. } => (409, "too_many_passkeys"),
            Error::InsufficientAuthentication { .. } => (401, "insufficient_user_authentication"),
            // The token is fine; it may not do this.
            Error::InteractiveSessionRequired => (403, "interactive_session_required"),
            Error::InsufficientScope { .. } => (403, "insufficient_scope"),
            Error::InvalidScope(_) => (422, "invalid_scope"),
            Error::TooManyApiTokens { .. } => (409, "too_many_api_tokens"),
            Error::InvalidApiTokenRequest(_) => (422, "invalid_api_token_request"),
            Error::Throttled { .. } => (429, "throttled"),
            Error::Overloaded { .. } => (503, "overloaded"),
            Error::Store(_) | Error::ThrottleUnavailable(_) => (503, "unavailable"),
            _ => (500, "internal"),
        };
        let detail = match status {
            503 => UNAVAILABLE.to_owned(),
            500 => INTERNAL.to_owned(),
            _ => error.to_string(),
        };
        let mut body = problem_body(status, code, &detail);
        if let Error::WeakPassword(rejection) = error {
            // An RFC 9457 extension member: which rules failed, for clients to show each.
            let rules: Vec<&str> = rejection.failed().iter().map(rule_code).collect();
            body["failed_rules"] = json!(rules);
        }
        if let Error::InvalidEmail(rejection) = error {
            body["email_rule"] = json!(email_rule_code(rejection));
        }
        if let Error::InsufficientScope { scope } = error {
            body["scope"] = json!(scope.as_str());
        }
        let response =
            Response::problem_json(status, &body).with_retry_after(error.retry_after_secs());
        match bearer_challenge(error) {
            Some(challenge) => response.with_header("www-authenticate", challenge),
            None => response,
        }
    }

    fn rejection(&self, status: u16, message: &str) -> Response {
        let code = match status {
            403 => "cross_site_request",
            404 => "not_found",
            405 => "method_not_allowed",
            409 => "conflict",
            413 => "body_too_large",
            415 => "unsupported_media_type",
            _ => "bad_request",
        };
        Response::problem_json(status, &problem_body(status, code, message))
    }
}

/// A stable name for a password rule, for machine-readable problem details.
fn rule_code(rule: &PasswordRule) -> &'static str {
    match rule {
        PasswordRule::TooShort { .. } => "too_short",
        PasswordRule::TooLong { .. } => "too_long",
        PasswordRule::Common => "common",
        PasswordRule::ContainsEmail => "contains_email",
        PasswordRule::ContainsName => "contains_name",
        PasswordRule::ContainsServiceName => "contains_service_name",
    }
}

/// A stable name for an email rejection, for machine-readable problem details.
fn email_rule_code(rejection: &EmailRejection) -> &'static str {
    match rejection {
        EmailRejection::Empty => "empty",
        EmailRejection::TooLong { .. } => "too_long",
        EmailRejection::ControlCharacter => "control_character",
        EmailRejection::NotOneAt => "not_one_at",
        EmailRejection::ImplausibleDomain => "implausible_domain",
        _ => "invalid_syntax",
    }
}

/// An RFC 9457 problem details body, with our `code` extension member.
fn rfc3339(t: time::OffsetDateTime) -> String {
    t.format(&Rfc3339).unwrap_or_else(|_| t.to_string())
}

fn problem_body(status: u16, code: &str, detail: &str) -> Value {
    json!({
        "code": code,
        "detail": detail,
        "status": status,
        "title": status_title(status),
        "type": "about:blank",
    })
}

/// The RFC 6750 challenge for a 401 about a token or credentials: `Bearer`, with
/// `error="invalid_token"` when a token was sent but is not usable. `None` for errors that
/// are not about authentication.
fn bearer_challenge(error: &Error) -> Option<String> {
    match error {
        Error::MissingToken | Error::InvalidCredentials | Error::UnknownEmail => {
            Some("Bearer".to_owned())
        }
        Error::MalformedToken | Error::InvalidToken | Error::SessionExpired => Some(format!(
            r#"Bearer error="invalid_token", error_description="{error}""#
        )),
        // RFC 9470 (step-up authentication): the token is fine, the proof is too old.
        Error::ReauthenticationRequired { within } => Some(format!(
            r#"Bearer error="insufficient_user_authentication", error_description="re-authenticate and retry", max_age={}"#,
            within.as_secs()
        )),
        // RFC 9470 again: the session lacks a second factor (acr `mfa`), or is too old.
        Error::InsufficientAuthentication {
            second_factor,
            max_age,
        } => {
            let mut challenge = format!(
                r#"Bearer error="insufficient_user_authentication", error_description="{error}""#
            );
            if *second_factor {
                challenge.push_str(r#", acr_values="mfa""#);
            }
            if let Some(age) = max_age {
                challenge.push_str(&format!(", max_age={}", age.as_secs()));
            }
            Some(challenge)
        }
        // RFC 6750 §3.1: the token is valid but lacks the scope; `scope` names the one needed
        // (scope tokens never hold `"` or `\`, so it needs no escaping).
        Error::InsufficientScope { scope } => Some(format!(
            r#"Bearer error="insufficient_scope", error_description="{error}", scope="{scope}""#
        )),
        _ => None,
    }
}

/// The reason phrase of the statuses keycard answers with (RFC 9110), for problem titles.
fn status_title(status: u16) -> &'static str {
    match status {
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        409 => "Conflict",
        413 => "Content Too Large",
        415 => "Unsupported Media Type",
        422 => "Unprocessable Content",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Error",
    }
}

const NOT_CHECKED_IN: &str = "You are not checked in";
const UNAVAILABLE: &str = "Service unavailable, try again later";
const INTERNAL: &str = "Internal server error";

fn throttled_message(error: &Error) -> String {
    format!(
        "Too many login attempts, try again in {} seconds",
        error.retry_after_secs().unwrap_or(1)
    )
}

fn capitalized(s: &str) -> String {
    let mut chars = s.chars();
    chars
        .next()
        .map(|first| first.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}
