//! The server half of `http_cost.sh`: what a protected route costs the server beyond an open
//! one, on axum (beside axum-login) and on actix-web.
//!
//! `cargo run --release --example http_cost_server -- <axum|actix> <dir>` serves, on one
//! thread (a current-thread Tokio runtime for axum, one worker for actix-web), with 1,000 users
//! each holding one live session:
//!
//! - axum on 127.0.0.1:18080: `/open` (no extractor), `/extractor` (a no-op extractor: what
//!   the framework charges for any extractor), `/session` (`CurrentSession`), `/user`
//!   (`CurrentUser`); axum-login on 127.0.0.1:18081: `/hello` behind `login_required!` over a
//!   tower-sessions `MemoryStore`;
//! - actix-web on 127.0.0.1:18090: `/open`, `/extractor`, `/session`, `/user`.
//!
//! Before serving it writes, in `<dir>`: `tokens.txt` (one `Authorization` header value per
//! line), `cookies.txt` for axum-login (one `Cookie` value per line), `validate_ns.txt` (the
//! in-process cost of `Authenticator::validate_session` over the same sessions, on the same
//! thread, the floor a protected route is held to) and `ready` last.
//!
//! `http_cost_server in_process <axum|actix>` prints the in-process figures alone (the
//! routes called through the framework's service, beside `validate_session` and `validate`)
//! and exits; `http_cost_server count <axum|actix> <case> <calls>` is for callgrind
//! (`http_cost/count.sh`).

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::IntoFuture;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use axum_login::{login_required, AuthManagerLayerBuilder, AuthSession, AuthUser, AuthnBackend};
use keycard::http::{HttpAuth, StandardApi};
use keycard::{
    Argon2Hasher, Authenticator, ClientInfo, MemoryTokenStore, MemoryUserStore, PasswordHasher,
    UserRecord,
};
use serde::{Deserialize, Serialize};
use tower_sessions::{MemoryStore, SessionManagerLayer};

const USERS: usize = 1_000;
const PASSWORD: &str = "correct horse battery staple";
const KEYCARD_AXUM: &str = "127.0.0.1:18080";
const AXUM_LOGIN: &str = "127.0.0.1:18081";
const KEYCARD_ACTIX: &str = "127.0.0.1:18090";

type Auth = Authenticator<Arc<MemoryUserStore<UserRecord>>>;

#[derive(Serialize)]
struct Hello {
    ok: bool,
    message: &'static str,
}

const HELLO: Hello = Hello {
    ok: true,
    message: "hello",
};

/// An extractor that checks nothing: the `/extractor` route, which measures what the
/// framework itself charges a route for having an extractor (axum splits the request into
/// its parts and runs a larger handler future), apart from what keycard's extractors do.
struct NoCheck;

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for NoCheck {
    type Rejection = Infallible;

    async fn from_request_parts(
        _: &mut axum::http::request::Parts,
        _: &S,
    ) -> Result<Self, Infallible> {
        Ok(NoCheck)
    }
}

impl actix_web::FromRequest for NoCheck {
    type Error = actix_web::Error;
    type Future = std::future::Ready<Result<Self, actix_web::Error>>;

    fn from_request(_: &actix_web::HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        std::future::ready(Ok(NoCheck))
    }
}

fn email(i: usize) -> String {
    format!("user{i}@example.com")
}

/// 1,000 users with one live session each; the tokens, in order.
async fn keycard_sessions() -> (Auth, Vec<String>) {
    keycard_sessions_n(USERS).await
}

/// One user with `n` API tokens (scope `notes:read`), each used once already (an API
/// token's first use is a touch).
async fn keycard_api_tokens(n: usize) -> (Auth, Vec<String>) {
    use keycard::api_tokens::{ApiTokens, NewApiToken};
    let hasher = Argon2Hasher::insecure_for_tests();
    let users = Arc::new(MemoryUserStore::new());
    let phc = hasher.hash(PASSWORD.as_bytes()).expect("hash");
    users
        .insert(UserRecord::new(1_i64, "a@example.com", phc))
        .expect("insert");
    let auth = Authenticator::builder(users, MemoryTokenStore::new())
        .password_hasher(hasher)
        .without_throttle()
        .api_tokens(ApiTokens::new(["notes:read"]).expect("scopes"))
        .build();
    let login = auth
        .login("a@example.com", PASSWORD, ClientInfo::none())
        .await
        .expect("login");
    let mut tokens = Vec::with_capacity(n);
    for i in 0..n {
        let new = NewApiToken::new(format!("t{i}"), ["notes:read"]);
        let created = auth
            .create_api_token(&login.session, new)
            .await
            .expect("token");
        let token = created.token.expose_secret().to_owned();
        auth.validate_session(&token).await.expect("first use");
        tokens.push(token);
    }
    (auth, tokens)
}

/// `n` users with one live session each.
async fn keycard_sessions_n(n: usize) -> (Auth, Vec<String>) {
    let hasher = Argon2Hasher::insecure_for_tests();
    let users = Arc::new(MemoryUserStore::new());
    let phc = hasher.hash(PASSWORD.as_bytes()).expect("hash");
    for i in 0..n {
        let id = i64::try_from(i).expect("small") + 1;
        users
            .insert(UserRecord::new(id, &email(i), phc.clone()))
            .expect("insert");
    }
    let auth = Authenticator::builder(users, MemoryTokenStore::new())
        .password_hasher(hasher)
        .without_throttle()
        .build();
    let mut tokens = Vec::with_capacity(n);
    for i in 0..n {
        let login = auth
            .login(&email(i), PASSWORD, ClientInfo::none())
            .await
            .expect("login");
        tokens.push(login.token.expose_secret().to_owned());
    }
    (auth, tokens)
}

/// The in-process floors: `validate_session` and `validate` (which also loads the user) over
/// the tokens in rotation, on this thread, in ns: best of 5 runs of 400,000 calls.
async fn validate_ns(auth: &Auth, tokens: &[String]) -> (f64, f64) {
    const CALLS: usize = 400_000;
    for token in tokens {
        auth.validate_session(token).await.expect("valid");
    }
    let (mut session, mut user) = (f64::MAX, f64::MAX);
    for _ in 0..5 {
        let start = Instant::now();
        for i in 0..CALLS {
            let found = auth.validate_session(&tokens[i % tokens.len()]).await;
            std::hint::black_box(found.expect("valid"));
        }
        session = session.min(start.elapsed().as_nanos() as f64 / CALLS as f64);
        let start = Instant::now();
        for i in 0..CALLS {
            let found = auth.validate(&tokens[i % tokens.len()]).await;
            std::hint::black_box(found.expect("valid"));
        }
        user = user.min(start.elapsed().as_nanos() as f64 / CALLS as f64);
    }
    (session, user)
}

fn write_lines(path: &Path, lines: &[String]) {
    std::fs::write(path, lines.join("\n") + "\n").expect("write");
}

// ---------------------------------------------------------------------------------------------
// axum-login, as in benches/peers.rs
// ---------------------------------------------------------------------------------------------

#[derive(Clone)]
struct PeerUser {
    id: i64,
    password: String,
    auth_hash: Vec<u8>,
}

impl std::fmt::Debug for PeerUser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PeerUser")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

impl AuthUser for PeerUser {
    type Id = i64;
    fn id(&self) -> i64 {
        self.id
    }
    fn session_auth_hash(&self) -> &[u8] {
        &self.auth_hash
    }
}

#[derive(Clone, Deserialize)]
struct PeerCredentials {
    id: i64,
    password: String,
}

#[derive(Clone, Debug)]
struct PeerBackend {
    users: Arc<HashMap<i64, PeerUser>>,
}

impl AuthnBackend for PeerBackend {
    type User = PeerUser;
    type Credentials = PeerCredentials;
    type Error = Infallible;

    async fn authenticate(&self, creds: PeerCredentials) -> Result<Option<PeerUser>, Infallible> {
        Ok(self
            .users
            .get(&creds.id)
            .filter(|u| u.password == creds.password)
            .cloned())
    }

    async fn get_user(&self, id: &i64) -> Result<Option<PeerUser>, Infallible> {
        Ok(self.users.get(id).cloned())
    }
}

async fn axum_login_login(
    mut auth: AuthSession<PeerBackend>,
    Json(creds): Json<PeerCredentials>,
) -> StatusCode {
    match auth.authenticate(creds).await {
        Ok(Some(user)) => match auth.login(&user).await {
            Ok(()) => StatusCode::OK,
            Err(_) => StatusCode::INTERNAL_SERVER_ERROR,
        },
        _ => StatusCode::UNAUTHORIZED,
    }
}

fn axum_login_app() -> Router {
    let users = (1..=USERS as i64)
        .map(|id| {
            let user = PeerUser {
                id,
                password: PASSWORD.to_owned(),
                auth_hash: vec![7; 32],
            };
            (id, user)
        })
        .collect();
    let backend = PeerBackend {
        users: Arc::new(users),
    };
    let sessions = SessionManagerLayer::new(MemoryStore::default()).with_secure(false);
    let auth_layer = AuthManagerLayerBuilder::new(backend, sessions).build();
    Router::new()
        .route("/hello", get(|| async { Json(HELLO) }))
        .route_layer(login_required!(PeerBackend))
        .route("/login", post(axum_login_login))
        .layer(auth_layer)
}

/// One axum-login session per user, by real logins over HTTP; the `Cookie` values.
async fn axum_login_cookies() -> Vec<String> {
    let client = reqwest::Client::new();
    let mut cookies = Vec::with_capacity(USERS);
    for id in 1..=USERS as i64 {
        let response = client
            .post(format!("http://{AXUM_LOGIN}/login"))
            .json(&serde_json::json!({ "id": id, "password": PASSWORD }))
            .send()
            .await
            .expect("login");
        assert_eq!(response.status(), 200);
        let cookie = response
            .headers()
            .get("set-cookie")
            .expect("set-cookie")
            .to_str()
            .expect("ascii");
        cookies.push(cookie.split(';').next().expect("pair").to_owned());
    }
    cookies
}

fn keycard_router(http: HttpAuth<UserRecord>) -> Router {
    Router::new()
        .route("/open", get(|| async { Json(HELLO) }))
        .route("/extractor", get(|_: NoCheck| async { Json(HELLO) }))
        .route(
            "/session",
            get(|_: keycard::axum::CurrentSession<UserRecord>| async { Json(HELLO) }),
        )
        .route(
            "/user",
            get(|_: keycard::axum::CurrentUser<UserRecord>| async { Json(HELLO) }),
        )
        .with_state(http)
}

async fn serve_axum(dir: PathBuf) {
    let (auth, tokens) = keycard_sessions().await;
    let ns = validate_ns(&auth, &tokens).await;
    let http = HttpAuth::new(auth, StandardApi);
    let keycard = keycard_router(http);
    let in_process = axum_in_process(&keycard, &tokens).await;
    std::fs::write(dir.join("in_process.txt"), in_process).expect("write");
    for (addr, app) in [(KEYCARD_AXUM, keycard), (AXUM_LOGIN, axum_login_app())] {
        let listener = tokio::net::TcpListener::bind(addr).await.expect("bind");
        let service = app.into_make_service_with_connect_info::<SocketAddr>();
        tokio::spawn(axum::serve(listener, service).into_future());
    }
    let cookies = axum_login_cookies().await;
    write_files(&dir, &tokens, &cookies, ns);
    std::future::pending::<()>().await;
}

/// Calls per in-process measurement, and how many measurements (the best is kept).
const IN_PROCESS_CALLS: usize = 200_000;
const IN_PROCESS_TRIES: usize = 5;

/// The server's own work per request, without socket or HTTP parsing: each route called in
/// process over the tokens in rotation, best of several tries, as `name ns` lines (open,
/// extractor, session, user).
async fn axum_in_process(app: &Router, tokens: &[String]) -> String {
    let bearer = bearer_values::<axum::http::HeaderValue>(tokens);
    time_routes(|path, calls| axum_calls(app, path, &bearer, calls)).await
}

/// Every token as an `Authorization: Bearer` header value.
fn bearer_values<V: std::str::FromStr>(tokens: &[String]) -> Vec<V>
where
    V::Err: std::fmt::Debug,
{
    tokens
        .iter()
        .map(|t| format!("Bearer {t}").parse().expect("header value"))
        .collect()
}

/// Times `calls(path, IN_PROCESS_CALLS)` for each route, best of `IN_PROCESS_TRIES`, as
/// `name ns` lines.
async fn time_routes<F, Fut>(mut calls: F) -> String
where
    F: FnMut(String, usize) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let mut out = String::new();
    for name in ["open", "extractor", "session", "user"] {
        let mut best = f64::MAX;
        for _ in 0..IN_PROCESS_TRIES {
            let start = Instant::now();
            calls(format!("/{name}"), IN_PROCESS_CALLS).await;
            best = best.min(start.elapsed().as_nanos() as f64 / IN_PROCESS_CALLS as f64);
        }
        out.push_str(&format!("{name} {best:.1}\n"));
    }
    out
}

/// `calls` requests to `path` through the router, in process, each with the next token;
/// panics unless each answers 200. Every route gets the header, so that only the extractor
/// differs.
async fn axum_calls(app: &Router, path: String, bearer: &[axum::http::HeaderValue], calls: usize) {
    use tower::ServiceExt;
    for i in 0..calls {
        let request = axum::http::Request::get(path.as_str())
            .header("authorization", bearer[i % bearer.len()].clone())
            .body(axum::body::Body::empty())
            .expect("request");
        let response = app.clone().oneshot(request).await.expect("infallible");
        assert_eq!(response.status(), 200, "{path}");
    }
}

/// As [`axum_calls`], through actix-web's test service.
async fn actix_calls<S, B>(
    service: &S,
    path: String,
    bearer: &[actix_web::http::header::HeaderValue],
    calls: usize,
) where
    S: actix_web::dev::Service<
        actix_http::Request,
        Response = actix_web::dev::ServiceResponse<B>,
        Error = actix_web::Error,
    >,
{
    for i in 0..calls {
        let request = actix_web::test::TestRequest::get()
            .uri(&path)
            .insert_header(("authorization", bearer[i % bearer.len()].clone()));
        let response = actix_web::test::call_service(service, request.to_request()).await;
        assert_eq!(response.status(), 200, "{path}");
    }
}

fn write_files(dir: &Path, tokens: &[String], cookies: &[String], validate_ns: (f64, f64)) {
    let bearer: Vec<String> = tokens.iter().map(|t| format!("Bearer {t}")).collect();
    write_lines(&dir.join("tokens.txt"), &bearer);
    write_lines(&dir.join("cookies.txt"), cookies);
    std::fs::write(
        dir.join("validate_ns.txt"),
        format!("{:.1} {:.1}\n", validate_ns.0, validate_ns.1),
    )
    .expect("write");
    std::fs::write(dir.join("ready"), "").expect("write");
}

/// The actix-web app: the same four routes.
macro_rules! actix_app {
    ($http:expr) => {{
        use actix_web::{web, App, HttpResponse};
        App::new()
            .configure(keycard::actix_web::configure($http))
            .route(
                "/open",
                web::get().to(|| async { HttpResponse::Ok().json(HELLO) }),
            )
            .route(
                "/extractor",
                web::get().to(|_: NoCheck| async { HttpResponse::Ok().json(HELLO) }),
            )
            .route(
                "/session",
                web::get().to(|_: keycard::actix_web::CurrentSession<UserRecord>| async {
                    HttpResponse::Ok().json(HELLO)
                }),
            )
            .route(
                "/user",
                web::get().to(|_: keycard::actix_web::CurrentUser<UserRecord>| async {
                    HttpResponse::Ok().json(HELLO)
                }),
            )
    }};
}

fn serve_actix(dir: PathBuf) {
    use actix_web::HttpServer;
    let rt = actix_web::rt::System::new();
    rt.block_on(async move {
        let (auth, tokens) = keycard_sessions().await;
        let ns = validate_ns(&auth, &tokens).await;
        let http = HttpAuth::new(auth, StandardApi);
        let app = move || actix_app!(http.clone());
        let in_process = {
            let service = actix_web::test::init_service(app()).await;
            let bearer = bearer_values::<actix_web::http::header::HeaderValue>(&tokens);
            time_routes(|path, calls| actix_calls(&service, path, &bearer, calls)).await
        };
        std::fs::write(dir.join("in_process.txt"), in_process).expect("write");
        let server = HttpServer::new(app)
            .workers(1)
            .bind(KEYCARD_ACTIX)
            .expect("bind")
            .run();
        write_files(&dir, &tokens, &[], ns);
        server.await.expect("serve");
    });
}

/// Instruction counting under callgrind (`--toggle-collect='*measured*'`): `calls` calls of
/// one case in process, over 100 sessions in rotation, and nothing else collected. A case is
/// `open`, `extractor`, `session`, `user` (a route) or `validate`
/// (`Authenticator::validate_session`).
fn count(framework: &str, case: &str, calls: usize) {
    let runtime = || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime")
    };
    let path = format!("/{case}");
    match (framework, case) {
        (_, "validate_api") => {
            let rt = runtime();
            let (auth, tokens) = rt.block_on(keycard_api_tokens(40));
            measured_validate_api(&rt, &auth, &tokens, calls);
        }
        (_, "validate" | "validate_user") => {
            let rt = runtime();
            let (auth, tokens) = rt.block_on(keycard_sessions_n(100));
            measured_validate(&rt, &auth, &tokens, calls, case == "validate_user");
        }
        ("axum", _) => {
            let rt = runtime();
            let (auth, tokens) = rt.block_on(keycard_sessions_n(100));
            let app = keycard_router(HttpAuth::new(auth, StandardApi));
            let bearer = bearer_values::<axum::http::HeaderValue>(&tokens);
            measured_axum(&rt, &app, &path, &bearer, calls);
        }
        ("actix", _) => {
            let system = actix_web::rt::System::new();
            let (service, bearer) = system.block_on(async {
                let (auth, tokens) = keycard_sessions_n(100).await;
                let http = HttpAuth::new(auth, StandardApi);
                let service = actix_web::test::init_service(actix_app!(http.clone())).await;
                let bearer = bearer_values::<actix_web::http::header::HeaderValue>(&tokens);
                (service, bearer)
            });
            measured_actix(&system, &service, &path, &bearer, calls);
        }
        _ => panic!("unknown framework {framework:?}"),
    }
}

#[inline(never)]
fn measured_validate_api(
    rt: &tokio::runtime::Runtime,
    auth: &Auth,
    tokens: &[String],
    calls: usize,
) {
    rt.block_on(async {
        for i in 0..calls {
            let session = auth
                .validate_session(&tokens[i % tokens.len()])
                .await
                .expect("valid");
            auth.require_scope(&session, "notes:read").expect("scope");
            std::hint::black_box(session);
        }
    });
}

#[inline(never)]
fn measured_validate(
    rt: &tokio::runtime::Runtime,
    auth: &Auth,
    tokens: &[String],
    calls: usize,
    with_user: bool,
) {
    rt.block_on(async {
        for i in 0..calls {
            let token = &tokens[i % tokens.len()];
            if with_user {
                std::hint::black_box(auth.validate(token).await.expect("valid"));
            } else {
                std::hint::black_box(auth.validate_session(token).await.expect("valid"));
            }
        }
    });
}

#[inline(never)]
fn measured_axum(
    rt: &tokio::runtime::Runtime,
    app: &Router,
    path: &str,
    bearer: &[axum::http::HeaderValue],
    calls: usize,
) {
    rt.block_on(axum_calls(app, path.to_owned(), bearer, calls));
}

#[inline(never)]
fn measured_actix<S, B>(
    system: &actix_web::rt::SystemRunner,
    service: &S,
    path: &str,
    bearer: &[actix_web::http::header::HeaderValue],
    calls: usize,
) where
    S: actix_web::dev::Service<
        actix_http::Request,
        Response = actix_web::dev::ServiceResponse<B>,
        Error = actix_web::Error,
    >,
{
    system.block_on(actix_calls(service, path.to_owned(), bearer, calls));
}

/// The in-process figures alone, printed (what `run.sh` reports beside its loopback runs): a
/// quicker check than a loopback run while working on the adapters.
fn print_in_process(framework: &str) {
    let report = |ns: (f64, f64), in_process: String| {
        println!(
            "validate_session {:.1}\nvalidate {:.1}\n{in_process}",
            ns.0, ns.1
        );
    };
    match framework {
        "axum" => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime")
            .block_on(async {
                let (auth, tokens) = keycard_sessions().await;
                let ns = validate_ns(&auth, &tokens).await;
                let keycard = keycard_router(HttpAuth::new(auth, StandardApi));
                report(ns, axum_in_process(&keycard, &tokens).await);
            }),
        "actix" => actix_web::rt::System::new().block_on(async {
            let (auth, tokens) = keycard_sessions().await;
            let ns = validate_ns(&auth, &tokens).await;
            let http = HttpAuth::new(auth, StandardApi);
            let service = actix_web::test::init_service(actix_app!(http.clone())).await;
            let bearer = bearer_values::<actix_web::http::header::HeaderValue>(&tokens);
            report(
                ns,
                time_routes(|path, calls| actix_calls(&service, path, &bearer, calls)).await,
            );
        }),
        other => panic!("unknown framework {other:?}: axum or actix"),
    }
}

fn main() {
    let mut args = std::env::args().skip(1);
    let framework = args.next().unwrap_or_default();
    if framework == "in_process" {
        let framework = args.next().expect("in_process <axum|actix>");
        return print_in_process(&framework);
    }
    if framework == "count" {
        let framework = args.next().expect("count <axum|actix> <case> <calls>");
        let case = args.next().expect("case");
        let calls = args.next().and_then(|n| n.parse().ok()).expect("calls");
        return count(&framework, &case, calls);
    }
    let dir = PathBuf::from(
        args.next()
            .expect("usage: http_cost_server <axum|actix> <dir>"),
    );
    match framework.as_str() {
        "axum" => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime")
            .block_on(serve_axum(dir)),
        "actix" => serve_actix(dir),
        other => panic!("unknown framework {other:?}: axum or actix"),
    }
}
