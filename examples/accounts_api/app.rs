//! The accounts API: a complete account service on axum with the standards-based protocol
//! (`StandardApi`: RFC 6750 bearer tokens, RFC 9457 problem details), JSON bodies, and the
//! token in `Authorization: Bearer` or the `__Host-session` cookie.
//!
//! | route | answer |
//! |---|---|
//! | `GET /` (and `/reset-password`, `/verify-email`, `/sign-in`, `/confirm-email`, `/forgot-password`, `GET /login`) | a tiny browser page: log in, see who you are, log out (the cookie at work), forgot / reset password, and the pages mailed links open (they read the token from the URL fragment and POST it) |
//! | `POST /register` `{"email","password"}` | 202, the same status and body for a new and a taken email (a new one is mailed a verification link, a taken one's owner a notice); 422 naming the failed password rules or the email rule; 429 when this address registered too often |
//! | `POST /email/verify` `{"token"}` | 200 once; 400 `invalid_link` after (or for a bad token) |
//! | `POST /email/verify/resend` `{"email"}` | 202 always |
//! | `POST /password/forgot` `{"email"}` | 202, the same for known and unknown emails; a known one is mailed a reset link |
//! | `POST /password/reset` `{"token","new_password"}` | 200, every session of the user ended; 422 `weak_password` (the link stays usable); 400 `invalid_link` |
//! | `POST /login/email` `{"email"}` | 202, the same for known and unknown emails; a known one is mailed a sign-in link |
//! | `POST /login/email/verify` `{"token"}` | 200 `{"token","expires_at"}` and the session cookie, once |
//! | `POST /email` `{"new_email","password"}` | 202 (authenticated): a confirm link to the new address, a notice to the old one; 403 `invalid_credentials` for a wrong password |
//! | `POST /email/confirm` `{"token"}` | 200: the address changed; 409 `email_taken` if another account took it meanwhile |
//! | `POST /login` `{"email","password","remember_me"?}` | 200 `{"token","expires_at"}` and the session cookie; for a user with an authenticator app, 200 `{"mfa_required":true,"mfa_token","expires_at","methods"}` and no token, no cookie; 403 `email_not_verified` when the server requires verified addresses (`--smtp`) and this one is not |
//! | `POST /login/mfa` `{"mfa_token","code"}`, `{"mfa_token","recovery_code"}` or `{"mfa_token","passkey":{"ceremony","credential"}}` | 200 `{"token","expires_at"}` and the session cookie; 403 `invalid_code`; 401 `invalid_mfa_token` (expired, used, or after 5 wrong codes); 429 after 10 wrong codes on the account in 15 minutes |
//! | `GET /mfa` | 200 `{"totp","totp_pending","recovery_codes_left"}` |
//! | `POST /mfa/totp` | 200 `{"secret","otpauth_uri"}`: an enrolment, not active until confirmed; 409 `mfa_already_enabled` |
//! | `POST /mfa/totp/confirm` `{"code"}` | 200 `{"recovery_codes":[...]}` (shown once): active from now; 403 `invalid_code` |
//! | `DELETE /mfa/totp` `{"code"}` or `{"recovery_code"}` | 204: the app and the recovery codes removed; 403 `invalid_code`; 409 `mfa_not_enabled` |
//! | `POST /mfa/recovery-codes` `{"code"}` or `{"recovery_code"}` | 200 `{"recovery_codes":[...]}`: a new set, the old one retired |
//! | `POST /login/passkey` | 200 `{"ceremony","options"}`: a passwordless login begun; pass `options.publicKey` to `navigator.credentials.get` (feature `passkeys`, as every passkey route); 429 past 30 per address per minute |
//! | `POST /login/passkey/finish` `{"ceremony","credential"}` | 200 `{"token","expires_at"}` and the session cookie (`amr` `hwk`); 403 `passkey_rejected`; 400 `invalid_ceremony` (unknown, expired or used) |
//! | `POST /login/mfa/passkey` `{"mfa_token"}` | 200 `{"ceremony","options"}`: a login's second step answered by a passkey; then `POST /login/mfa` `{"mfa_token","passkey":{"ceremony","credential"}}` |
//! | `POST /passkeys/register` | 200 `{"ceremony","options"}` (authenticated): pass `options.publicKey` to `navigator.credentials.create`; 409 `too_many_passkeys` |
//! | `POST /passkeys/register/finish` `{"ceremony","credential","name"?}` | 201 `{"id","name","created_at","last_used_at"}`; 403 `passkey_rejected`; 400 `invalid_ceremony` |
//! | `GET /passkeys` | 200 `{"passkeys":[{"id","name","created_at","last_used_at"}]}` |
//! | `PATCH /passkeys/{id}` `{"name"}` | 204; 404 for an unknown id or another user's |
//! | `DELETE /passkeys/{id}` | 204; 404 for an unknown id or another user's |
//! | `GET /me` | 200 `{"user":{"id","email"},"session":{...}}` |
//! | `GET /sessions` | 200 `{"sessions":[...]}`, the current one marked |
//! | `DELETE /sessions/{id}` | 204 for one of mine, 404 otherwise |
//! | `POST /tokens` `{"name","scopes":[...],"expires_in_days"?}` | 201 `{"id","token","name","scopes","expires_at"}` (the token shown this once; scopes among `notes:read`, `notes:write`; 90 days by default, at most 366); 403 `interactive_session_required` for an API token; 422 `invalid_scope` or `invalid_api_token_request`; 409 `too_many_api_tokens` past 50 |
//! | `GET /tokens` | 200 `{"tokens":[{"id","name","scopes","created_at","last_used_at","expires_at"}]}`, no secrets |
//! | `DELETE /tokens/{id}` | 204 for one of mine, 404 otherwise |
//! | `GET /notes` | 200 `{"notes":[{"text","created_at"}]}`; needs the scope `notes:read` (403 `insufficient_scope`, `WWW-Authenticate: Bearer error="insufficient_scope", ..., scope="notes:read"`); a login holds every scope |
//! | `POST /notes` `{"text"}` | 201 `{"text","created_at"}`; needs `notes:write`; at most 20 notes per user (the oldest go) of at most 500 bytes |
//! | `POST /logout` | 204, the cookie cleared |
//! | `POST /logout-others` | 200 `{"revoked":N}`; needs the password proved within 5 minutes (401 `reauthentication_required` otherwise) and, for a user with an authenticator app, a session that used it (401 `insufficient_user_authentication`, `WWW-Authenticate: Bearer error="insufficient_user_authentication", acr_values="mfa"`) |
//! | `POST /reauthenticate` `{"password"}` | 200 `{"token","expires_at"}` and the cookie: a fresh session proving the password now; the old token ends; 403 `invalid_credentials` for a wrong password |
//! | `POST /password` `{"current_password","new_password"}` | 200 `{"token","expires_at"}` and the cookie: the caller's session rotated, every other session ended; 403 `invalid_credentials` for a wrong current password (counted by the throttle under the request's address) |
//!
//! Every authenticated route's answer carries `Cache-Control: no-store`.
//!
//! API tokens (`kcpat_...`, sent as `Authorization: Bearer`) reach the notes within their
//! scopes, and nothing that manages the account: creating or listing tokens, the password,
//! the email, second factors, passkeys and sessions answer an API token 403
//! `interactive_session_required`.
//!
//! A cookie-authenticated `POST` or `DELETE` from another site is refused (403), a Bearer one
//! is not: browsers never add `Authorization` on their own. Shared by the `accounts_api`
//! binary and the tests in `tests/http/` (which run it in process).

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::extract::{DefaultBodyLimit, FromRef, Path, State};
use axum::response::{IntoResponse, Response as AxumResponse};
use axum::routing::{delete, get, post};
use axum::Router;
use keycard::account::{Accounts as Flows, Links};
use keycard::api_tokens::{ApiTokens, NewApiToken, RequiredScope};
use keycard::axum::{
    ApiJson, Client, CurrentSession, CurrentUser, InteractiveSession, LoginRequest, LogoutRequest,
    RequireScope, SecondFactorSession,
};
use keycard::http::{
    render_error, CodeBody, Credentials, EmailBody, EmailChangeBody, HttpAccounts, HttpAuth,
    PasswordResetBody, Protocol, RequestRules, Response, SecondFactorLoginBody, SessionCookie,
    StandardApi, TokenBody, TokenSource, TrustedProxies,
};
use keycard::mail::{DefaultRenderer, MailQueue, Mailer};
use keycard::mfa::{KeyId, SecondFactorStore, SecondFactors, SecretBox, SecretKey};
use keycard::one_time::OneTimeTokenStore;
use keycard::one_time::OneTimeTokens;
use keycard::{
    Authenticator, AuthenticatorBuilder, Login, SessionId, SessionView, TokenStore, UserId,
    UserRecord,
};
use serde::Deserialize;
use serde_json::json;
use zeroize::Zeroizing;

/// The user store the app runs on, whatever the backend: one that creates users too.
pub(crate) type Users = crate::common::Registry;
/// The authenticator the app runs on.
pub(crate) type Auth = Authenticator<Users>;

/// The longest session a login may ask for with `"remember_me": true`.
pub(crate) const REMEMBER_ME: Duration = Duration::from_secs(30 * 24 * 60 * 60);
/// Largest request body accepted; larger ones get a 413: keycard's extractors read it from
/// the `HttpAuth` ([`HttpAuth::with_body_limit`], keycard's default made explicit), axum's
/// own from the `DefaultBodyLimit` layer.
pub(crate) const BODY_LIMIT: usize = keycard::http::DEFAULT_BODY_LIMIT;

/// The scopes API tokens may carry: reading and writing notes.
pub(crate) const SCOPES: [&str; 2] = [NotesRead::SCOPE, NotesWrite::SCOPE];

/// Reading notes (`GET /notes`).
pub(crate) struct NotesRead;

impl RequiredScope for NotesRead {
    const SCOPE: &'static str = "notes:read";
}

/// Writing notes (`POST /notes`).
pub(crate) struct NotesWrite;

impl RequiredScope for NotesWrite {
    const SCOPE: &'static str = "notes:write";
}

/// Sessions last `session_ttl` (24 hours by default), or up to 30 days when the login asks
/// to be remembered. API tokens carry [`SCOPES`], with keycard's defaults (90 days, at most
/// 366, at most 50 per user).
pub(crate) fn authenticator(
    users: Users,
    tokens: Arc<dyn TokenStore>,
    session_ttl: Duration,
) -> AuthenticatorBuilder<Users> {
    Authenticator::builder(users, tokens)
        .session_ttl(session_ttl)
        .max_session_ttl(REMEMBER_ME)
        .api_tokens(ApiTokens::new(SCOPES).expect("the scopes are valid RFC 6749 scopes"))
}

/// Second factors (authenticator apps and recovery codes) stored in `store`, pending logins
/// among the one-time tokens, secrets sealed with `key`.
pub(crate) fn second_factors(
    store: Arc<dyn SecondFactorStore>,
    one_time: Arc<dyn OneTimeTokenStore>,
    key: SecretKey,
) -> SecondFactors {
    SecondFactors::from_arcs(store, one_time, SecretBox::new(KeyId::new(1), key))
        .with_issuer("keycard accounts")
}

/// Passkeys for relying party `rp_id` on pages at `rp_origin`, ceremonies among the
/// one-time tokens.
#[cfg(feature = "passkeys")]
pub(crate) fn passkeys(
    rp_id: &str,
    rp_origin: &str,
    one_time: Arc<dyn OneTimeTokenStore>,
) -> Result<keycard::mfa::Passkeys, keycard::mfa::PasskeyConfigError> {
    keycard::mfa::Passkeys::from_arc(rp_id, rp_origin, "keycard accounts", one_time)
}

/// The account flows (registration, verification, recovery, sign-in links, email change)
/// over `auth`, with one-time tokens from `one_time`, mail through `mailer` (off the request
/// path) and links under `public_url`.
pub(crate) fn flows(
    auth: Auth,
    one_time: OneTimeTokens,
    mailer: Arc<dyn Mailer>,
    public_url: &str,
) -> Result<Flows<Users>, keycard::account::InvalidLink> {
    let mail = MailQueue::spawn(mailer, DefaultRenderer::new("keycard accounts"));
    Ok(Flows::builder(auth, one_time, mail, Links::new(public_url)?).build())
}

/// The app's state: the authenticator (for the lifecycle operations), its HTTP edge, and the
/// account flows over HTTP.
#[derive(Clone)]
pub(crate) struct AccountsApp {
    auth: Auth,
    http: HttpAuth<UserRecord>,
    flows: HttpAccounts<Users>,
    notes: Arc<Notes>,
}

impl AccountsApp {
    /// The app over `auth` and its account `flows`. `cookie` is the session cookie
    /// (`SessionCookie::default()` in production).
    pub(crate) fn new(
        auth: Auth,
        flows: Flows<Users>,
        cookie: SessionCookie,
        proxies: TrustedProxies,
    ) -> Self {
        let http = HttpAuth::new(auth.clone(), StandardApi)
            .with_token_source(TokenSource::bearer())
            .with_session_cookie(cookie)
            .with_trusted_proxies(proxies)
            .with_body_limit(BODY_LIMIT);
        let flows = HttpAccounts::new(flows, http.clone());
        Self {
            auth,
            http,
            flows,
            notes: Arc::default(),
        }
    }

    /// The account flows (to wait for their mails in tests).
    #[allow(dead_code)] // the tests only
    pub(crate) fn flows(&self) -> &Flows<Users> {
        self.flows.accounts()
    }

    /// The answer to an operation that replaced the caller's session (re-authentication, a
    /// password change): the new token and, in cookie mode, the new cookie. A remembered
    /// session stays remembered: its cookie lives until its expiry.
    fn fresh_session(&self, login: &Login<UserRecord>) -> Response {
        let remembered = login.session.expires_at - login.session.created_at
            > time::Duration::try_from(self.auth.policy().ttl()).unwrap_or(time::Duration::MAX);
        self.http.login_response(login, remembered)
    }

    fn error(&self, error: &keycard::Error) -> Response {
        render_error(self.http.protocol(), error)
    }

    fn reject(&self, status: u16, message: &str) -> Response {
        self.http.protocol().rejection(status, message)
    }
}

impl FromRef<AccountsApp> for HttpAuth<UserRecord> {
    fn from_ref(app: &AccountsApp) -> Self {
        app.http.clone()
    }
}

impl FromRef<AccountsApp> for Arc<dyn Protocol> {
    fn from_ref(app: &AccountsApp) -> Self {
        Arc::<dyn Protocol>::from_ref(&app.http)
    }
}

/// What keycard's `ApiJson` reads: the protocol and the body limit.
impl FromRef<AccountsApp> for RequestRules {
    fn from_ref(app: &AccountsApp) -> Self {
        app.http.request_rules()
    }
}

/// The routes, with problem-details answers for unknown routes, wrong methods and bodies over
/// [`BODY_LIMIT`].
pub(crate) fn router(app: AccountsApp) -> Router {
    let routes = Router::new()
        .route("/", get(page))
        .route("/reset-password", get(page))
        .route("/verify-email", get(page))
        .route("/sign-in", get(page))
        .route("/confirm-email", get(page))
        .route("/forgot-password", get(page))
        .route("/register", post(register))
        .route("/email/verify", post(verify_email))
        .route("/email/verify/resend", post(resend_verification))
        .route("/password/forgot", post(forgot_password))
        .route("/password/reset", post(reset_password))
        .route("/login/email", post(request_sign_in_link))
        .route("/login/email/verify", post(sign_in_with_link))
        .route("/email", post(request_email_change))
        .route("/email/confirm", post(confirm_email_change))
        .route("/login", get(page).post(login))
        .route("/login/mfa", post(login_second_step))
        .route("/mfa", get(second_factor_status))
        .route("/mfa/totp", post(begin_totp).delete(disable_totp))
        .route("/mfa/totp/confirm", post(confirm_totp))
        .route("/mfa/recovery-codes", post(regenerate_recovery_codes))
        .route("/me", get(me))
        .route("/sessions", get(sessions))
        .route("/sessions/{id}", delete(revoke_session))
        .route("/tokens", get(list_tokens).post(create_token))
        .route("/tokens/{id}", delete(revoke_token))
        .route("/notes", get(list_notes).post(add_note))
        .route("/logout", post(logout))
        .route("/logout-others", post(logout_others))
        .route("/reauthenticate", post(reauthenticate))
        .route("/password", post(change_password));
    #[cfg(feature = "passkeys")]
    let routes = routes
        .route("/login/passkey", post(passkeys::begin_login))
        .route("/login/passkey/finish", post(passkeys::finish_login))
        .route("/login/mfa/passkey", post(passkeys::begin_second_factor))
        .route("/passkeys", get(passkeys::list))
        .route("/passkeys/register", post(passkeys::begin_registration))
        .route(
            "/passkeys/register/finish",
            post(passkeys::finish_registration),
        )
        .route(
            "/passkeys/{id}",
            axum::routing::patch(passkeys::rename).delete(passkeys::remove),
        );
    keycard::axum::json_fallbacks(routes)
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .with_state(app)
}

/// `GET /`: a tiny browser page that logs in with the cookie and asks `/me`.
async fn page() -> axum::response::Html<&'static str> {
    axum::response::Html(include_str!("page.html"))
}

/// `POST /register`: keycard's registration (the email checked, the password policy, this
/// address's registration limit and hashing bound), answering 202 for a new and a taken
/// email alike; the mail (a verification link, or a notice to the owner) goes out off the
/// request path.
async fn register(
    State(app): State<AccountsApp>,
    client: Client<UserRecord>,
    ApiJson(new): ApiJson<Credentials>,
) -> Response {
    app.flows.register(&new, &client).await
}

/// `POST /email/verify`: marks the address verified, once.
async fn verify_email(
    State(app): State<AccountsApp>,
    client: Client<UserRecord>,
    ApiJson(body): ApiJson<TokenBody>,
) -> Response {
    app.flows.verify_email(&body, &client).await
}

/// `POST /email/verify/resend`: a new verification link, if the address is an unverified
/// account; 202 always.
async fn resend_verification(
    State(app): State<AccountsApp>,
    client: Client<UserRecord>,
    ApiJson(body): ApiJson<EmailBody>,
) -> Response {
    app.flows.resend_verification(&body, &client).await
}

/// `POST /password/forgot`: a reset link to a known address; 202 always.
async fn forgot_password(
    State(app): State<AccountsApp>,
    client: Client<UserRecord>,
    ApiJson(body): ApiJson<EmailBody>,
) -> Response {
    app.flows.forgot_password(&body, &client).await
}

/// `POST /password/reset`: the new password, with the reset link's token.
async fn reset_password(
    State(app): State<AccountsApp>,
    client: Client<UserRecord>,
    ApiJson(body): ApiJson<PasswordResetBody>,
) -> Response {
    app.flows.reset_password(&body, &client).await
}

/// `POST /login/email`: a sign-in link to a known address; 202 always.
async fn request_sign_in_link(
    State(app): State<AccountsApp>,
    client: Client<UserRecord>,
    ApiJson(body): ApiJson<EmailBody>,
) -> Response {
    app.flows.request_sign_in_link(&body, &client).await
}

/// `POST /login/email/verify`: a session for the sign-in link's token, once.
async fn sign_in_with_link(
    State(app): State<AccountsApp>,
    client: Client<UserRecord>,
    ApiJson(body): ApiJson<TokenBody>,
) -> Response {
    app.flows
        .sign_in_with_link(&body, client.into_inner())
        .await
}

/// `POST /email`: asks to change my address (the password proved again); 202.
async fn request_email_change(
    State(app): State<AccountsApp>,
    me: InteractiveSession<UserRecord>,
    client: Client<UserRecord>,
    ApiJson(body): ApiJson<EmailChangeBody>,
) -> Response {
    app.flows
        .request_email_change(&me.session, &body, &client)
        .await
}

/// `POST /email/confirm`: the change, confirmed from the new address.
async fn confirm_email_change(
    State(app): State<AccountsApp>,
    client: Client<UserRecord>,
    ApiJson(body): ApiJson<TokenBody>,
) -> Response {
    app.flows.confirm_email_change(&body, &client).await
}

/// `POST /login`: the token, its expiry, and the session cookie.
async fn login(request: LoginRequest<UserRecord>) -> Response {
    request.login().await
}

/// `POST /login/mfa`: the second step of a login: the pending login's token and a code (or
/// a recovery code, which mails the user about it) for a session.
async fn login_second_step(
    State(app): State<AccountsApp>,
    client: Client<UserRecord>,
    ApiJson(body): ApiJson<SecondFactorLoginBody>,
) -> Response {
    app.flows.complete_login(&body, client.into_inner()).await
}

/// `GET /mfa`: my second factors.
async fn second_factor_status(
    State(app): State<AccountsApp>,
    me: CurrentSession<UserRecord>,
) -> AxumResponse {
    match app.auth.second_factor_status(&me.session).await {
        Ok(status) => axum::Json(status).into_response(),
        Err(error) => app.error(&error).into_response(),
    }
}

/// `POST /mfa/totp`: starts enrolling an authenticator app (not active until confirmed).
async fn begin_totp(State(app): State<AccountsApp>, me: CurrentSession<UserRecord>) -> Response {
    match app.auth.begin_totp(&me.session).await {
        Ok(enrollment) => app.http.protocol().totp_enrollment(&enrollment),
        Err(error) => app.error(&error),
    }
}

/// The body of `POST /mfa/totp/confirm`; zeroized on drop.
#[derive(Deserialize)]
struct Confirmation {
    #[serde(deserialize_with = "secret")]
    code: Zeroizing<String>,
}

/// `POST /mfa/totp/confirm`: a code from the app activates it; the answer holds the recovery
/// codes, shown this once.
async fn confirm_totp(
    State(app): State<AccountsApp>,
    me: InteractiveSession<UserRecord>,
    client: Client<UserRecord>,
    ApiJson(body): ApiJson<Confirmation>,
) -> Response {
    match app
        .auth
        .confirm_totp(&me.session, &body.code, &client)
        .await
    {
        Ok(codes) => app.http.protocol().recovery_codes(&codes),
        Err(error) => app.error(&error),
    }
}

/// `DELETE /mfa/totp`: removes the app and the recovery codes, with a current code or a
/// recovery code.
async fn disable_totp(
    State(app): State<AccountsApp>,
    me: InteractiveSession<UserRecord>,
    client: Client<UserRecord>,
    ApiJson(body): ApiJson<CodeBody>,
) -> Response {
    let outcome = match body.proof() {
        Ok(proof) => app.auth.disable_totp(&me.session, proof, &client).await,
        Err(error) => Err(error),
    };
    match outcome {
        Ok(()) => Response::empty(204),
        Err(error) => app.error(&error),
    }
}

/// `POST /mfa/recovery-codes`: a new set of recovery codes (the old set stops working), with
/// a current code or a recovery code.
async fn regenerate_recovery_codes(
    State(app): State<AccountsApp>,
    me: InteractiveSession<UserRecord>,
    client: Client<UserRecord>,
    ApiJson(body): ApiJson<CodeBody>,
) -> Response {
    let outcome = match body.proof() {
        Ok(proof) => {
            app.auth
                .regenerate_recovery_codes(&me.session, proof, &client)
                .await
        }
        Err(error) => Err(error),
    };
    match outcome {
        Ok(codes) => app.http.protocol().recovery_codes(&codes),
        Err(error) => app.error(&error),
    }
}

/// `GET /me`: who I am and this session.
async fn me(me: CurrentUser<UserRecord>) -> axum::Json<serde_json::Value> {
    axum::Json(json!({
        "user": { "id": me.user.id.to_string(), "email": me.user.email },
        "session": SessionView::new(&me.session, true),
    }))
}

/// `GET /sessions`: every live session of mine, this one marked.
async fn sessions(State(app): State<AccountsApp>, me: CurrentSession<UserRecord>) -> AxumResponse {
    match app.auth.list_sessions(&me.session).await {
        Ok(sessions) => axum::Json(json!({ "sessions": sessions })).into_response(),
        Err(error) => app.error(&error).into_response(),
    }
}

/// `DELETE /sessions/{id}`: ends one of my sessions; anything else is "not found". The
/// session itself is handed to keycard, which refuses an API token.
async fn revoke_session(
    State(app): State<AccountsApp>,
    me: CurrentSession<UserRecord>,
    Path(id): Path<String>,
) -> AxumResponse {
    let Ok(id) = id.parse::<SessionId>() else {
        return app.reject(404, "no such session").into_response();
    };
    match app.auth.revoke_session(&me.session, &id).await {
        Ok(true) => Response::empty(204).into_response(),
        Ok(false) => app.reject(404, "no such session").into_response(),
        Err(error) => app.error(&error).into_response(),
    }
}

/// The body of `POST /tokens`.
#[derive(Deserialize)]
struct NewToken {
    name: String,
    scopes: Vec<String>,
    #[serde(default)]
    expires_in_days: Option<u64>,
}

/// `POST /tokens`: a new API token for me, shown this once. keycard refuses an API token
/// (a token cannot mint tokens), unknown scopes, and lifetimes past the maximum.
async fn create_token(
    State(app): State<AccountsApp>,
    me: InteractiveSession<UserRecord>,
    ApiJson(body): ApiJson<NewToken>,
) -> Response {
    let mut request = NewApiToken::new(body.name, body.scopes);
    if let Some(days) = body.expires_in_days {
        if days == 0 {
            return app.reject(422, "expires_in_days must be at least 1");
        }
        request = request.expires_in(Duration::from_secs(days.saturating_mul(24 * 60 * 60)));
    }
    let created = match app.auth.create_api_token(&me.session, request).await {
        Ok(created) => created,
        Err(error) => return app.error(&error),
    };
    // The listing's fields (times in RFC 3339), the secret added, the rest left out.
    let listed = json!(created.view);
    Response::json(
        201,
        &json!({
            "id": listed["id"],
            "token": created.token.expose_secret(),
            "name": listed["name"],
            "scopes": listed["scopes"],
            "expires_at": listed["expires_at"],
        }),
    )
}

/// `GET /tokens`: my API tokens, without their secrets.
async fn list_tokens(State(app): State<AccountsApp>, me: CurrentSession<UserRecord>) -> Response {
    match app.auth.list_api_tokens(&me.session).await {
        Ok(tokens) => Response::json(200, &json!({ "tokens": tokens })),
        Err(error) => app.error(&error),
    }
}

/// `DELETE /tokens/{id}`: revokes one of my API tokens; anything else is "not found".
async fn revoke_token(
    State(app): State<AccountsApp>,
    me: CurrentSession<UserRecord>,
    Path(id): Path<String>,
) -> Response {
    let Ok(id) = id.parse::<SessionId>() else {
        return app.reject(404, "no such token");
    };
    match app.auth.revoke_api_token(&me.session, &id).await {
        Ok(true) => Response::empty(204),
        Ok(false) => app.reject(404, "no such token"),
        Err(error) => app.error(&error),
    }
}

/// The notes: a tiny per-user resource in memory, there to show scopes at work. Bounded: at
/// most [`Notes::PER_USER`] notes per user (the oldest go), [`Notes::MAX_TEXT`] bytes each,
/// [`Notes::MAX_USERS`] users.
#[derive(Debug, Default)]
pub(crate) struct Notes {
    by_user: Mutex<HashMap<UserId, VecDeque<Note>>>,
}

/// One note.
#[derive(Debug, Clone, serde::Serialize)]
struct Note {
    text: String,
    #[serde(with = "time::serde::rfc3339")]
    created_at: time::OffsetDateTime,
}

impl Notes {
    /// The most notes kept per user.
    const PER_USER: usize = 20;
    /// The longest note, in bytes.
    const MAX_TEXT: usize = 500;
    /// The most users with notes.
    const MAX_USERS: usize = 10_000;

    fn list(&self, user: &UserId) -> Vec<Note> {
        let by_user = self.by_user.lock().unwrap_or_else(PoisonError::into_inner);
        by_user
            .get(user)
            .map(|notes| notes.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// Keeps `note` for `user`; `false` if the demo is full of users.
    fn add(&self, user: &UserId, note: Note) -> bool {
        let mut by_user = self.by_user.lock().unwrap_or_else(PoisonError::into_inner);
        if !by_user.contains_key(user) && by_user.len() >= Self::MAX_USERS {
            return false;
        }
        let notes = by_user.entry(user.clone()).or_default();
        if notes.len() >= Self::PER_USER {
            notes.pop_front();
        }
        notes.push_back(note);
        true
    }
}

/// `GET /notes`: my notes; needs the scope `notes:read` (checked by the extractor).
async fn list_notes(
    State(app): State<AccountsApp>,
    me: RequireScope<UserRecord, NotesRead>,
) -> Response {
    let notes = app.notes.list(&me.session.user_id);
    Response::json(200, &json!({ "notes": notes }))
}

/// The body of `POST /notes`.
#[derive(Deserialize)]
struct NewNote {
    text: String,
}

/// `POST /notes`: adds a note; needs the scope `notes:write` (checked by the extractor).
async fn add_note(
    State(app): State<AccountsApp>,
    me: RequireScope<UserRecord, NotesWrite>,
    ApiJson(body): ApiJson<NewNote>,
) -> Response {
    let text = body.text.trim();
    if text.is_empty() || text.len() > Notes::MAX_TEXT {
        return app.reject(422, "text must be 1 to 500 bytes");
    }
    let note = Note {
        text: text.to_owned(),
        created_at: time::OffsetDateTime::now_utc(),
    };
    if !app.notes.add(&me.session.user_id, note.clone()) {
        return app.reject(503, "the notes demo is full; try again later");
    }
    Response::json(201, &json!(note))
}

/// `POST /logout`: ends this session and clears the cookie.
async fn logout(request: LogoutRequest<UserRecord>) -> Response {
    request.logout().await
}

/// How recently the password must have been proved for a sensitive action.
pub(crate) const RECENT_AUTH: Duration = Duration::from_secs(5 * 60);

/// `POST /logout-others`: ends every other session of mine. Sensitive: needs a password proof
/// (login or re-authentication) within [`RECENT_AUTH`] and, for a user with an authenticator
/// app, a session that used it (step-up: [`SecondFactorSession`]).
async fn logout_others(
    State(app): State<AccountsApp>,
    me: SecondFactorSession<UserRecord>,
) -> AxumResponse {
    if let Err(error) = app.auth.require_recent_auth(&me.session, RECENT_AUTH) {
        return app.error(&error).into_response();
    }
    match app.auth.logout_others(&me.session).await {
        Ok(revoked) => axum::Json(json!({ "revoked": revoked })).into_response(),
        Err(error) => app.error(&error).into_response(),
    }
}

/// The body of `POST /reauthenticate`; zeroized on drop.
#[derive(Deserialize)]
struct Reauthentication {
    #[serde(deserialize_with = "secret")]
    password: Zeroizing<String>,
}

/// `POST /reauthenticate`: proves the password again (throttled like a login, under this
/// request's address) and answers with a fresh session, as a login does; the old token ends.
async fn reauthenticate(
    State(app): State<AccountsApp>,
    me: CurrentSession<UserRecord>,
    client: Client<UserRecord>,
    ApiJson(proof): ApiJson<Reauthentication>,
) -> AxumResponse {
    match app
        .auth
        .reauthenticate(&me.session, &proof.password, &client)
        .await
    {
        Ok(login) => app.fresh_session(&login).into_response(),
        Err(error) => app.error(&error).into_response(),
    }
}

/// The body of `POST /password`; both passwords are zeroized on drop.
#[derive(Deserialize)]
struct PasswordChange {
    #[serde(deserialize_with = "secret")]
    current_password: Zeroizing<String>,
    #[serde(deserialize_with = "secret")]
    new_password: Zeroizing<String>,
}

fn secret<'de, D: serde::Deserializer<'de>>(de: D) -> Result<Zeroizing<String>, D::Error> {
    String::deserialize(de).map(Zeroizing::new)
}

/// `POST /password`: verifies the current password (throttled like a login, under this
/// request's address), applies the policy, stores the new hash, and rotates this session:
/// the answer carries the new token (and cookie); every other session, and this one's old
/// token, end.
async fn change_password(
    State(app): State<AccountsApp>,
    me: InteractiveSession<UserRecord>,
    client: Client<UserRecord>,
    ApiJson(change): ApiJson<PasswordChange>,
) -> AxumResponse {
    match app
        .auth
        .change_password(
            &me.session,
            &change.current_password,
            &change.new_password,
            &client,
        )
        .await
    {
        Ok(changed) => app.fresh_session(&changed.login).into_response(),
        Err(error) => app.error(&error).into_response(),
    }
}

/// The passkey routes (feature `passkeys`).
#[cfg(feature = "passkeys")]
mod passkeys {
    use axum::extract::{Path, State};
    use axum::response::{IntoResponse, Response as AxumResponse};
    use keycard::axum::{ApiJson, Client, CurrentSession};
    use keycard::http::Response;
    use keycard::mfa::{PublicKeyCredential, RegisterPublicKeyCredential};
    use keycard::one_time::OneTimeToken;
    use keycard::UserRecord;
    use serde::Deserialize;
    use serde_json::json;

    use super::AccountsApp;

    /// A ceremony begun: its token and the options for the browser.
    fn ceremony(token: &OneTimeToken, options: &impl serde::Serialize) -> Response {
        Response::json(
            200,
            &json!({ "ceremony": token.expose_secret(), "options": options }),
        )
    }

    /// `POST /passkeys/register`: begins registering a passkey for me.
    pub(super) async fn begin_registration(
        State(app): State<AccountsApp>,
        me: CurrentSession<UserRecord>,
    ) -> Response {
        match app.auth.begin_passkey_registration(&me.session).await {
            Ok((token, options)) => ceremony(&token, &options),
            Err(error) => app.error(&error),
        }
    }

    /// The body of `POST /passkeys/register/finish`.
    #[derive(Deserialize)]
    pub(super) struct Registration {
        ceremony: String,
        credential: Box<RegisterPublicKeyCredential>,
        #[serde(default)]
        name: String,
    }

    /// `POST /passkeys/register/finish`: the authenticator's answer; the passkey stored.
    pub(super) async fn finish_registration(
        State(app): State<AccountsApp>,
        me: CurrentSession<UserRecord>,
        client: Client<UserRecord>,
        ApiJson(body): ApiJson<Registration>,
    ) -> Response {
        match app
            .auth
            .finish_passkey_registration(
                &me.session,
                &body.ceremony,
                &body.credential,
                &body.name,
                &client,
            )
            .await
        {
            Ok(view) => Response::json(201, &json!(view)),
            Err(error) => app.error(&error),
        }
    }

    /// `GET /passkeys`: my passkeys.
    pub(super) async fn list(
        State(app): State<AccountsApp>,
        me: CurrentSession<UserRecord>,
    ) -> Response {
        match app.auth.passkeys(&me.session).await {
            Ok(passkeys) => Response::json(200, &json!({ "passkeys": passkeys })),
            Err(error) => app.error(&error),
        }
    }

    /// The body of `PATCH /passkeys/{id}`.
    #[derive(Deserialize)]
    pub(super) struct Rename {
        name: String,
    }

    /// `PATCH /passkeys/{id}`: renames one of my passkeys.
    pub(super) async fn rename(
        State(app): State<AccountsApp>,
        me: CurrentSession<UserRecord>,
        Path(id): Path<String>,
        ApiJson(body): ApiJson<Rename>,
    ) -> AxumResponse {
        match app.auth.rename_passkey(&me.session, &id, &body.name).await {
            Ok(true) => Response::empty(204).into_response(),
            Ok(false) => app.reject(404, "no such passkey").into_response(),
            Err(error) => app.error(&error).into_response(),
        }
    }

    /// `DELETE /passkeys/{id}`: removes one of my passkeys.
    pub(super) async fn remove(
        State(app): State<AccountsApp>,
        me: CurrentSession<UserRecord>,
        client: Client<UserRecord>,
        Path(id): Path<String>,
    ) -> AxumResponse {
        match app.auth.remove_passkey(&me.session, &id, &client).await {
            Ok(true) => Response::empty(204).into_response(),
            Ok(false) => app.reject(404, "no such passkey").into_response(),
            Err(error) => app.error(&error).into_response(),
        }
    }

    /// `POST /login/passkey`: begins a passwordless login (counted per address).
    pub(super) async fn begin_login(
        State(app): State<AccountsApp>,
        client: Client<UserRecord>,
    ) -> Response {
        match app.auth.begin_passkey_login(&client).await {
            Ok((token, options)) => ceremony(&token, &options),
            Err(error) => app.error(&error),
        }
    }

    /// The body of `POST /login/passkey/finish`.
    #[derive(Deserialize)]
    pub(super) struct Assertion {
        ceremony: String,
        credential: Box<PublicKeyCredential>,
    }

    /// `POST /login/passkey/finish`: the passkey's answer; a session and its cookie.
    pub(super) async fn finish_login(
        State(app): State<AccountsApp>,
        client: Client<UserRecord>,
        ApiJson(body): ApiJson<Assertion>,
    ) -> Response {
        match app
            .auth
            .finish_passkey_login(&body.ceremony, &body.credential, client.into_inner())
            .await
        {
            Ok(login) => app.http.login_response(&login, false),
            Err(error) => app.error(&error),
        }
    }

    /// The body of `POST /login/mfa/passkey`.
    #[derive(Deserialize)]
    pub(super) struct Pending {
        mfa_token: String,
    }

    /// `POST /login/mfa/passkey`: begins answering a login's second step with a passkey.
    pub(super) async fn begin_second_factor(
        State(app): State<AccountsApp>,
        ApiJson(body): ApiJson<Pending>,
    ) -> Response {
        match app.auth.begin_passkey_second_factor(&body.mfa_token).await {
            Ok((token, options)) => ceremony(&token, &options),
            Err(error) => app.error(&error),
        }
    }
}
