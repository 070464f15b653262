//! The increase API (the login document: `POST /login`, `DELETE /logout` and the
//! token-protected `GET /client`), without any web framework: the authenticator's
//! configuration, the demo user, the answers and the JSON-only body rules. `axum_routes.rs`
//! and `actix_routes.rs` only route requests here; the binaries and the tests in
//! `tests/http_increase.rs` share all of it.

use std::sync::Arc;
use std::time::Duration;

use keycard::http::{CredentialFields, HttpAuth, LoginApi, Response, TokenSource, TrustedProxies};
use keycard::{Authenticator, AuthenticatorBuilder, TokenStore, UserRecord, UserStore};
use serde_json::json;

/// The user store the app runs on, whatever the backend.
pub(crate) type Users = Arc<dyn UserStore<User = UserRecord>>;
/// The authenticator the app runs on.
pub(crate) type Auth = Authenticator<Users>;

/// The document's user.
pub(crate) const DEMO_EMAIL: &str = "test@increasecard.com";
/// The document's password.
pub(crate) const DEMO_PASSWORD: &str = "password";
/// Largest request body keycard's extractors read ([`HttpAuth::with_body_limit`], the same on
/// axum and actix-web); larger ones get a 413 in the protocol's shape. keycard's default, made
/// explicit: far above any login (the core caps emails at 320 and passwords at 1024 bytes),
/// far below anything that could hurt.
pub(crate) const BODY_LIMIT: usize = keycard::http::DEFAULT_BODY_LIMIT;

/// An authenticator builder configured for this protocol: sessions last `session_ttl` (the
/// document says 24 hours, the binary's default). Unknown emails stay indistinguishable from
/// wrong passwords (the library default), as the document answers both alike.
pub(crate) fn authenticator(
    users: Users,
    tokens: Arc<dyn TokenStore>,
    session_ttl: Duration,
) -> AuthenticatorBuilder<Users> {
    Authenticator::builder(users, tokens).session_ttl(session_ttl)
}

/// The document's user, Test Increase, with its password hashed by `auth`.
///
/// # Errors
/// If hashing fails.
pub(crate) async fn demo_user(auth: &Auth) -> keycard::Result<UserRecord> {
    let hash = auth.hash_password(DEMO_PASSWORD).await?;
    Ok(UserRecord::new(1_i64, DEMO_EMAIL, hash).with_name("Test", "Increase"))
}

/// The app: its HTTP edge (the login protocol; tokens in `?auth_token=`, the logout body's
/// `auth_token` or `Authorization: Bearer`). Cloning is cheap; every framework's routes hold
/// one.
#[derive(Clone, Debug)]
pub(crate) struct Api {
    http: HttpAuth<UserRecord>,
}

impl Api {
    /// The app over `auth`; forwarding headers are believed from `proxies` only.
    pub(crate) fn new(auth: Auth, proxies: TrustedProxies) -> Self {
        Self {
            http: HttpAuth::new(auth, LoginApi)
                .with_token_source(TokenSource::login_api())
                // The document speaks JSON only: a form login is a 415.
                .with_credential_fields(CredentialFields::default().json_only())
                .with_trusted_proxies(proxies)
                .with_body_limit(BODY_LIMIT),
        }
    }

    /// The HTTP edge the keycard extractors read.
    pub(crate) fn http(&self) -> &HttpAuth<UserRecord> {
        &self.http
    }

    /// `GET /client`: the logged-in client's profile.
    pub(crate) fn client(&self, user: &UserRecord) -> Response {
        Response::json(
            200,
            &json!({
                "client": {
                    "email": user.email,
                    "first_name": user.first_name,
                    "last_name": user.last_name,
                }
            }),
        )
    }
}
