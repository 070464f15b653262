//! The framework-neutral HTTP layer: everything between a request and the core that is not
//! specific to one web framework.
//!
//! - [`RequestHead`]: the few things keycard reads from a request (headers, query, peer);
//!   each adapter implements it for its framework's request type.
//! - [`TokenSource`]: where tokens are found (`Authorization: Bearer`, a query parameter, a
//!   JSON body field, a cookie), giving a zeroized [`SessionToken`].
//! - [`Credentials`] and [`CredentialFields`]: login bodies (JSON or form) with configurable
//!   field names; the password is zeroized and redacted.
//! - [`SessionCookie`]: the browser cookie transport, with its cross-site request check.
//! - [`TrustedProxies`]: the client's address, believing forwarding headers only from your
//!   proxies.
//! - [`Protocol`]: how outcomes and errors look on the wire, rendered as a [`Response`]
//!   (status, headers, body); [`Rejection`] is why a request was refused.
//! - [`HttpAuth`]: all of the above plus the authenticator, in one value each adapter takes
//!   from its framework's state, with `login`, `logout` and `validate` helpers.
//! - [`DEFAULT_BODY_LIMIT`] (16 KiB): the largest body keycard's extractors read, in every
//!   adapter ([`HttpAuth::with_body_limit`] changes it); [`RequestRules`]: the protocol and
//!   that limit without the user type, for the adapters' `ApiJson`, `ApiForm` and `ApiQuery`.
//! - [`RequireScope`] and [`InteractiveSession`]: [API tokens](crate::api_tokens) at the
//!   edge. A route needing a scope ([`RequiredScope`](crate::api_tokens::RequiredScope))
//!   refuses a session without it with 403 (`WWW-Authenticate: Bearer
//!   error="insufficient_scope"` in [`StandardApi`]); a route only a person may use refuses
//!   an API token with 403 ([`HttpAuth::require_scope`], [`HttpAuth::require_interactive`]).
//! - [`HttpAccounts`]: the [account flows](crate::account) (registration without
//!   enumeration, verification, forgot / reset password, sign-in links, email change) over
//!   HTTP, with their bodies ([`EmailBody`], [`TokenBody`], [`PasswordResetBody`],
//!   [`EmailChangeBody`]) and answers ([`Protocol::mail_accepted`], 202;
//!   [`Protocol::account_updated`]).
//!
//! An adapter (see `keycard::axum`, `keycard::actix_web`, `keycard::tower`) only implements
//! [`RequestHead`], calls [`HttpAuth`] and converts the [`Response`].
//!
//! # Protocols
//! Three are built in. [`StandardApi`] is the one for new APIs (RFC 6750 bearer tokens, RFC
//! 9457 problem details). The other two reproduce two existing public APIs byte for byte:
//!
//! | outcome | [`SessionsApi`] (`POST /api/sessions`) | [`LoginApi`] (`POST /login`) | [`StandardApi`] |
//! |---|---|---|---|
//! | login ok | 200 `{"token":T}` | 200 `{"client":{"auth_token":T,"email":E,"first_name":F,"last_name":L}}` | 200 `{"expires_at":X,"token":T}` |
//! | wrong password | 422 `{"message":"Email or password is invalid"}` | 401 `{"error":"Invalid email/password"}` | 401 problem, `invalid_credentials` |
//! | unknown email (revealed) | 422 `{"message":"User not found"}` | 401 `{"error":"Invalid email/password"}` | 401 problem, `invalid_credentials` |
//! | logout ok | 200 `{"message":"T has been destroyed successfully"}` | 200 `{"message":"Successfully logged out"}` | 204 |
//! | logout, no session | 422 `{"message":"You are not checked in"}` | 200 `{"message":"Successfully logged out"}` | 204 |
//! | token missing | 422 `{"message":"You are not checked in"}` | 401 `{"error":"Missing auth_token"}` | 401 problem, `missing_token`, `WWW-Authenticate: Bearer` |
//! | token malformed / invalid / expired | 422 `{"message":"You are not checked in"}` | 401 `{"error":"Invalid or expired auth_token"}` | 401 problem, `invalid_token`, `WWW-Authenticate: Bearer error="invalid_token"` |
//! | wrong password on an authenticated request (re-verification, password change) | 422 `{"message":"Password is invalid"}` | 403 `{"error":"Invalid password"}` | 403 problem, `invalid_credentials`, no `WWW-Authenticate` (the session is fine) |
//! | registration: invalid email / taken email | 422 `{"message":...}` / 422 `{"message":"Email has already been taken"}` | 422 / 409 `{"error":...}` | 422 problem, `invalid_email` (with `email_rule`) / 409 problem, `email_taken` |
//! | input too long | 422 `{"message":"Password is too long (maximum is 1024 bytes)"}` | 400 `{"error":"password is too long (maximum is 1024 bytes)"}` | 422 problem, `input_too_long` |
//! | throttled | 429 + `Retry-After` | 429 + `Retry-After` | 429 problem + `Retry-After` |
//! | overloaded (login queue full) | 503 + `Retry-After` | 503 + `Retry-After` | 503 problem + `Retry-After` |
//! | store or throttle down | 503 + `Retry-After: 5`, no detail | 503 + `Retry-After: 5`, no detail | 503 problem + `Retry-After: 5`, no detail |
//! | anything else | 500, no detail | 500, no detail | 500 problem, no detail |
//!
//! [`LoginApi`]'s 401s carry `WWW-Authenticate: Bearer` too. Every response carries
//! `Cache-Control: no-store`. JSON bodies are compact with keys in lexicographic order. No
//! body ever carries a backend error's text: [`render_error`] logs the source chain of 5xx
//! errors instead.

mod accounts;
mod auth;
pub(crate) mod body;
mod client_ip;
mod cookie;
mod credentials;
mod extract;
#[cfg(any(feature = "axum", feature = "tower"))]
pub(crate) mod http1;
mod protocol;
mod rejection;
mod request;
mod response;
mod second_factor;
mod token_source;

pub use accounts::{EmailBody, EmailChangeBody, HttpAccounts, PasswordResetBody, TokenBody};
pub use auth::HttpAuth;
pub use body::{RequestRules, DEFAULT_BODY_LIMIT};
pub use client_ip::{ClientIpHeader, InvalidClientIpHeader, InvalidProxy, TrustedProxies};
pub use cookie::{SameSite, SessionCookie};
pub use credentials::{CredentialFields, Credentials};
pub use extract::{
    CurrentSession, CurrentUser, InteractiveSession, LoginRequest, LogoutRequest, RequireScope,
    SecondFactorSession,
};
pub use protocol::{AccountUpdate, LoginApi, Protocol, SessionsApi, StandardApi};
pub use rejection::{render_error, Rejection};
pub use request::RequestHead;
pub use response::Response;
#[cfg(feature = "passkeys")]
pub use second_factor::PasskeyProofBody;
pub use second_factor::{CodeBody, SecondFactorLoginBody};
pub(crate) use token_source::FoundToken;
pub use token_source::{SessionToken, TokenOrigin, TokenSource};
