//! The axum adapter on its own: the adapter contract (every rejection, `Option`, headers)
//! through axum's real request pipeline; typed rejections; and, in a small app over real HTTP,
//! `CurrentSession` does not touch the user store, a bearer-only `TokenSource` ignores the
//! query and the body, the login extractor records the client's IP and user agent, and `ApiQuery`
//! rejections are protocol-shaped JSON.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use crate::support::adapter::{Client, Fixture, Req, Res};
use crate::support::server::{assert_error_shape, Server};
use async_trait::async_trait;
use axum::response::IntoResponse;
use axum::routing::{delete, get, post};
use axum::Router;
use keycard::axum::{
    ApiQuery, AuthRejection, CurrentSession, CurrentUser, LoginRequest, LogoutRequest,
};
use keycard::http::{HttpAuth, LoginApi, Response, TokenSource};
use keycard::{
    Argon2Hasher, Authenticator, MemoryTokenStore, MemoryUserStore, StoreError, UserId, UserRecord,
    UserStore,
};
use serde::Deserialize;
use tower::ServiceExt;

/// A memory user store whose lookups by id can be made to fail, to see who calls them.
#[derive(Debug, Default)]
struct Users {
    inner: MemoryUserStore<UserRecord>,
    by_id_down: AtomicBool,
}

#[async_trait]
impl UserStore for Users {
    type User = UserRecord;
    async fn find_by_email(&self, email: &str) -> Result<Option<UserRecord>, StoreError> {
        self.inner.find_by_email(email).await
    }
    async fn find_by_id(&self, id: &UserId) -> Result<Option<UserRecord>, StoreError> {
        if self.by_id_down.load(Ordering::SeqCst) {
            return Err(StoreError::backend("user table unreachable (test)"));
        }
        self.inner.find_by_id(id).await
    }
    async fn set_password_hash(&self, id: &UserId, phc: &str) -> Result<(), StoreError> {
        self.inner.set_password_hash(id, phc).await
    }
}

type Auth = Authenticator<Arc<Users>>;

async fn login(request: LoginRequest<UserRecord>) -> Response {
    request.login().await
}

async fn logout(request: LogoutRequest<UserRecord>) -> Response {
    request.logout().await
}

async fn session(s: CurrentSession<UserRecord>) -> String {
    s.session.user_id.to_string()
}

async fn user(u: CurrentUser<UserRecord>) -> String {
    u.user.email
}

async fn maybe(u: Option<CurrentUser<UserRecord>>) -> String {
    u.map_or_else(|| "anonymous".to_owned(), |u| u.user.email)
}

async fn maybe_session(s: Option<CurrentSession<UserRecord>>) -> String {
    s.map_or_else(|| "anonymous".to_owned(), |s| s.session.user_id.to_string())
}

/// A handler that decides itself what each rejection means.
async fn typed(me: Result<CurrentUser<UserRecord>, AuthRejection>) -> axum::response::Response {
    match me {
        Ok(me) => me.user.email.into_response(),
        Err(rejection) => match rejection.error() {
            Some(keycard::Error::MissingToken) => "who are you?".into_response(),
            Some(keycard::Error::MalformedToken) => "that is not a token".into_response(),
            _ => rejection.into_response(),
        },
    }
}

/// The contract app: the routes `adapter_support` expects.
fn contract_app(http: HttpAuth<UserRecord>) -> Router {
    keycard::axum::json_fallbacks(
        Router::new()
            .route("/login", post(login))
            .route("/logout", delete(logout))
            .route("/me", get(user).post(user))
            .route("/session", get(session))
            .route("/maybe", get(maybe))
            .route("/maybe_session", get(maybe_session))
            .route("/typed", get(typed)),
    )
    .with_state(http)
}

/// Sends through the router's real service, in process.
struct Axum(Router);

#[async_trait(?Send)]
impl Client for Axum {
    async fn send(&self, req: Req) -> Res {
        let mut builder = axum::http::Request::builder()
            .method(req.method)
            .uri(&req.path);
        for (name, value) in &req.headers {
            builder = builder.header(*name, value);
        }
        let request = builder
            .body(axum::body::Body::from(req.body))
            .expect("a valid request");
        let response = self.0.clone().oneshot(request).await.expect("infallible");
        let status = response.status().as_u16();
        let headers = response
            .headers()
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_str().expect("text").to_owned()))
            .collect();
        let body = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .expect("a body");
        Res {
            status,
            headers,
            body: String::from_utf8(body.to_vec()).expect("UTF-8"),
        }
    }
}

#[tokio::test]
async fn contract_validation() {
    let fixture = Fixture::new().await;
    crate::support::adapter::validation_contract(&fixture, &Axum(contract_app(fixture.http())))
        .await;
}

#[tokio::test]
async fn contract_optional() {
    let fixture = Fixture::new().await;
    crate::support::adapter::optional_contract(&Axum(contract_app(fixture.http())), true).await;
}

#[tokio::test]
async fn contract_login_logout() {
    let fixture = Fixture::new().await;
    crate::support::adapter::login_logout_contract(&Axum(contract_app(fixture.http()))).await;
}

#[tokio::test]
async fn contract_cookie() {
    let fixture = Fixture::new().await;
    let app = Axum(contract_app(crate::support::adapter::http_with_cookie(
        &fixture,
    )));
    crate::support::adapter::cookie_contract(&app).await;
}

#[tokio::test]
async fn contract_outage() {
    let app = Axum(contract_app(crate::support::adapter::http_over_down_store()));
    crate::support::adapter::outage_contract(&app).await;
}

#[tokio::test]
async fn handlers_can_match_on_typed_rejections() {
    let fixture = Fixture::new().await;
    let app = Axum(contract_app(fixture.http()));
    let res = app.send(Req::get("/typed")).await;
    assert_eq!((res.status, res.body.as_str()), (200, "who are you?"));
    let res = app.send(Req::get("/typed").bearer("garbage")).await;
    assert_eq!(
        (res.status, res.body.as_str()),
        (200, "that is not a token")
    );
    let forged = keycard::Token::generate().expect("randomness");
    let res = app
        .send(Req::get("/typed").bearer(forged.expose_secret()))
        .await;
    assert_eq!(
        res.status, 401,
        "other rejections render as the protocol's: {res:?}"
    );
    let token = crate::support::adapter::login(&app).await;
    let res = app.send(Req::get("/typed").bearer(&token)).await;
    assert_eq!(
        (res.status, res.body.as_str()),
        (200, crate::support::adapter::EMAIL)
    );
}

#[derive(Deserialize)]
struct Page {
    page: u32,
}

async fn paged(ApiQuery(p): ApiQuery<Page>) -> String {
    p.page.to_string()
}

struct App {
    server: Server,
    auth: Auth,
    users: Arc<Users>,
}

/// Seed 003's protocol with the token only in `Authorization: Bearer`.
async fn start() -> App {
    let users = Arc::new(Users::default());
    let auth = Authenticator::builder(Arc::clone(&users), MemoryTokenStore::new())
        .password_hasher(Argon2Hasher::insecure_for_tests())
        .build();
    let hash = auth.hash_password("pw-123456").await.expect("hash");
    users
        .inner
        .insert(UserRecord::new(7_i64, "ann@example.com", hash))
        .expect("a fresh store");
    let state = HttpAuth::new(auth.clone(), LoginApi).with_token_source(TokenSource::bearer());
    let routes = Router::new()
        .route("/login", post(login))
        .route("/logout", delete(logout))
        .route("/session", get(session))
        .route("/user", get(user))
        .route("/paged", get(paged));
    App {
        server: Server::start(keycard::axum::json_fallbacks(routes).with_state(state)).await,
        auth,
        users,
    }
}

impl App {
    async fn login(&self) -> String {
        let reply = crate::support::server::send(
            self.server
                .request("POST", "/login")
                .header("user-agent", "keycard-test/1")
                .json(&serde_json::json!({"email": "ann@example.com", "password": "pw-123456"})),
        )
        .await;
        assert_eq!(reply.status, 200, "{reply:?}");
        reply.json()["client"]["auth_token"]
            .as_str()
            .expect("auth_token")
            .to_owned()
    }

    async fn get(&self, path: &str, token: &str) -> (u16, String) {
        let reply =
            crate::support::server::send(self.server.request("GET", path).bearer_auth(token)).await;
        (reply.status, reply.body)
    }
}

#[tokio::test]
async fn current_session_needs_no_user_lookup_and_current_user_does() {
    let app = start().await;
    let token = app.login().await;
    assert_eq!(app.get("/session", &token).await, (200, "7".to_owned()));
    assert_eq!(
        app.get("/user", &token).await,
        (200, "ann@example.com".to_owned())
    );

    app.users.by_id_down.store(true, Ordering::SeqCst);
    assert_eq!(app.get("/session", &token).await, (200, "7".to_owned()));
    assert_eq!(
        app.get("/user", &token).await,
        (
            503,
            r#"{"error":"Service unavailable, try again later"}"#.to_owned()
        )
    );
}

#[tokio::test]
async fn a_bearer_only_source_ignores_the_query_and_the_body() {
    let app = start().await;
    let token = app.login().await;
    let missing = r#"{"error":"Missing auth_token"}"#;
    let reply = app
        .server
        .call("GET", &format!("/session?auth_token={token}"))
        .await;
    assert_eq!(reply.pair(), (401, missing));
    let body = format!(r#"{{"auth_token":"{token}"}}"#);
    assert_eq!(
        app.server.json("DELETE", "/logout", &body).await.pair(),
        (401, missing)
    );
    assert_eq!(app.get("/session", &token).await.0, 200);

    let reply =
        crate::support::server::send(app.server.request("DELETE", "/logout").bearer_auth(&token))
            .await;
    assert_eq!(
        reply.pair(),
        (200, r#"{"message":"Successfully logged out"}"#)
    );
    assert_eq!(
        app.get("/session", &token).await,
        (
            401,
            r#"{"error":"Invalid or expired auth_token"}"#.to_owned()
        )
    );
}

#[tokio::test]
async fn login_records_the_client_ip_and_user_agent() {
    let app = start().await;
    app.login().await;
    let sessions = app
        .auth
        .list_for_user(&UserId::from(7_i64))
        .await
        .expect("list sessions");
    assert_eq!(sessions.len(), 1);
    let client = &sessions[0].client;
    assert_eq!(
        client.ip,
        Some(std::net::IpAddr::from([127, 0, 0, 1])),
        "{client:?}"
    );
    assert_eq!(client.user_agent.as_deref(), Some("keycard-test/1"));
}

#[tokio::test]
async fn query_rejections_are_protocol_json() {
    let app = start().await;
    assert_eq!(
        app.server.call("GET", "/paged?page=2").await.pair(),
        (200, "2")
    );
    for path in ["/paged", "/paged?page=x", "/paged?page=-1"] {
        assert_error_shape(&app.server.call("GET", path).await, 400, "error");
    }
}
