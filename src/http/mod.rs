//! Framework-agnostic HTTP mapping: operation outcomes and errors to a status and a JSON body.
//!
//! A [`Protocol`] decides what each outcome looks like on the wire. Two are built in, one per
//! public protocol keycard serves byte for byte:
//!
//! | outcome | [`SessionsApi`] (`POST /api/sessions`) | [`LoginApi`] (`POST /login`) |
//! |---|---|---|
//! | login ok | 200 `{"token":T}` | 200 `{"client":{"auth_token":T,"email":E,"first_name":F,"last_name":L}}` |
//! | wrong password | 422 `{"message":"Email or password is invalid"}` | 401 `{"error":"Invalid email/password"}` |
//! | unknown email (revealed) | 422 `{"message":"User not found"}` | 401 `{"error":"Invalid email/password"}` |
//! | logout ok | 200 `{"message":"T has been destroyed successfully"}` | 200 `{"message":"Successfully logged out"}` |
//! | logout, no session | 422 `{"message":"You are not checked in"}` | 200 `{"message":"Successfully logged out"}` |
//! | token missing / malformed / invalid / expired | 422 `{"message":"You are not checked in"}` | 401 `{"error":"Missing auth_token"}` / `{"error":"Invalid or expired auth_token"}` |
//! | input too long | 422 `{"message":"Password is too long (maximum is 1024 bytes)"}` | 400 `{"error":"password is too long (maximum is 1024 bytes)"}` |
//! | throttled | 429 + `Retry-After` | 429 + `Retry-After` |
//! | overloaded (login queue full) | 503 + `Retry-After` | 503 + `Retry-After` |
//! | store down | 503, no detail | 503, no detail |
//! | anything else | 500, no detail | 500, no detail |
//!
//! Bodies are compact JSON with keys in lexicographic order. No body ever carries a backend
//! error's text; log the [`Error`]'s source chain yourself.

use std::fmt::Debug;

use serde_json::{json, Map, Value};

use crate::authenticator::Logout;
use crate::error::Error;
use crate::token::Token;
use crate::user::User;

mod client_ip;

pub use client_ip::{InvalidProxy, TrustedProxies};

/// An HTTP response, independent of any web framework.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Response {
    /// Status code.
    pub status: u16,
    /// Body: compact JSON, to be sent with `Content-Type: application/json`.
    pub body: String,
    /// Seconds for a `Retry-After` header, when the client should retry later.
    pub retry_after: Option<u64>,
}

impl Response {
    /// A response with a JSON body.
    pub fn json(status: u16, body: &Value) -> Self {
        Self {
            status,
            body: body.to_string(),
            retry_after: None,
        }
    }

    /// Adds a `Retry-After`.
    #[must_use]
    pub fn with_retry_after(mut self, secs: Option<u64>) -> Self {
        self.retry_after = secs;
        self
    }
}

/// How one public protocol spells outcomes and errors. Adapters call it and only render.
pub trait Protocol: Send + Sync + Debug + 'static {
    /// The response to a successful login.
    fn login_succeeded(&self, token: &Token, user: &dyn User) -> Response;

    /// The response to a logout. `token` is the string the client sent.
    fn logged_out(&self, token: &str, outcome: &Logout) -> Response;

    /// The response to an error from any operation.
    fn error(&self, error: &Error) -> Response;

    /// A plain message in this protocol's error shape, for rejections that happen before the
    /// core is called (malformed JSON, missing field, unknown route, body too large).
    fn rejection(&self, status: u16, message: &str) -> Response;
}

/// Seed 000, the budgets API: `POST /api/sessions`, `PATCH /api/sessions/sign_out?token=`;
/// every error is 422 `{"message": ...}`. Pair it with
/// [`reveal_unknown_email(true)`](crate::AuthenticatorBuilder::reveal_unknown_email), since the
/// protocol answers "User not found".
///
/// ```
/// use keycard::{http::{Protocol, SessionsApi}, Error};
/// let r = SessionsApi.error(&Error::InvalidCredentials);
/// assert_eq!((r.status, r.body.as_str()), (422, r#"{"message":"Email or password is invalid"}"#));
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct SessionsApi;

/// Seed 003, the Increasecard API: `POST /login`, `DELETE /logout` with `auth_token`; bad
/// credentials are 401 `{"error": ...}`; logout always succeeds.
///
/// ```
/// use keycard::{http::{Protocol, LoginApi}, Error};
/// let r = LoginApi.error(&Error::UnknownEmail);
/// assert_eq!((r.status, r.body.as_str()), (401, r#"{"error":"Invalid email/password"}"#));
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct LoginApi;

impl Protocol for SessionsApi {
    fn login_succeeded(&self, token: &Token, _user: &dyn User) -> Response {
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
            Error::Throttled { .. } => (429, throttled_message(error)),
            Error::Overloaded { .. } | Error::Store(_) => (503, UNAVAILABLE.to_owned()),
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
    fn login_succeeded(&self, token: &Token, user: &dyn User) -> Response {
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
            Error::Throttled { .. } => (429, throttled_message(error)),
            Error::Overloaded { .. } | Error::Store(_) => (503, UNAVAILABLE.to_owned()),
            _ => (500, INTERNAL.to_owned()),
        };
        self.rejection(status, &message)
            .with_retry_after(error.retry_after_secs())
    }

    fn rejection(&self, status: u16, message: &str) -> Response {
        Response::json(status, &json!({ "error": message }))
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
