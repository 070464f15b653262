//! keycard beside axum-login + tower-sessions, in one run.
//!
//! `cd benches/peers && cargo bench`. Two groups:
//!
//! - `lookup`: in process, on one Tokio runtime with 2 workers. keycard's
//!   `Authenticator::validate_session` on a `MemoryTokenStore` beside tower-sessions'
//!   `MemoryStore::load` of an existing record (the record axum-login writes at login), with 1
//!   and 100 000 live sessions in each store. `tower_sessions_parse_and_load` adds the parse of
//!   the cookie value into an `Id`, the counterpart of keycard's token parse.
//! - `route`: the same tiny JSON handler served by axum over loopback HTTP/1.1 with keep-alive,
//!   each server on its own port, all in this process on the same 2-worker runtime; one
//!   reqwest client sends sequential requests and criterion times each request. `unprotected`
//!   is the bare handler; `keycard_current_session` takes `CurrentSession<UserRecord>` (Bearer
//!   token from a real `POST /login`); `keycard_current_user` takes `CurrentUser<UserRecord>`
//!   (one user lookup more, like axum-login's `get_user`); `axum_login` is behind
//!   `login_required!` with axum-login's `AuthManagerLayer` over a tower-sessions
//!   `MemoryStore` (session cookie from a real `POST /login`).
//!
//! - `route_in_process`: the same four routers called with `oneshot` (no socket, no HTTP
//!   parsing, no client): what each server does per request.
//!
//! Every protected route is checked to answer 401 without credentials and 200 with them
//! before it is measured. After each criterion group the same cases run again interleaved
//! (rounds in rotating order; the median of the rounds), and the bench prints those medians and
//! their ratios: on a shared machine they hold up better than back-to-back criterion figures.

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::IntoFuture;
use std::net::SocketAddr;
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use axum_login::{login_required, AuthManagerLayerBuilder, AuthSession, AuthUser, AuthnBackend};
use criterion::{criterion_main, BenchmarkId, Criterion};
use keycard::axum::{CurrentSession, CurrentUser, LoginRequest};
use keycard::http::{HttpAuth, StandardApi};
use keycard::{
    Argon2Hasher, Authenticator, ClientInfo, MemoryTokenStore, MemoryUserStore, PasswordHasher,
    UserRecord,
};
use serde::{Deserialize, Serialize};
use tokio::net::TcpListener;
use tokio::runtime::Runtime;
use tower::ServiceExt;
use tower_sessions::session::{Id, Record};
use tower_sessions::{MemoryStore, SessionManagerLayer, SessionStore};

const EMAIL: &str = "ann@example.com";
const PASSWORD: &str = "correct horse battery staple";
/// axum-login's default key for its data in the tower-sessions record.
const AXUM_LOGIN_DATA_KEY: &str = "axum-login.data";

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime")
}

// ---------------------------------------------------------------------------------------------
// Group 1: in-process lookups
// ---------------------------------------------------------------------------------------------

/// A keycard authenticator with `sessions` live sessions of one user; returns the token of the
/// last one.
async fn keycard_with_sessions(
    sessions: usize,
) -> (Authenticator<Arc<MemoryUserStore<UserRecord>>>, String) {
    let hasher = Argon2Hasher::insecure_for_tests();
    let users = Arc::new(MemoryUserStore::new());
    let phc = hasher.hash(PASSWORD.as_bytes()).expect("hash");
    users
        .insert(UserRecord::new(1_i64, EMAIL, phc))
        .expect("insert");
    let auth = Authenticator::builder(users, MemoryTokenStore::new())
        .password_hasher(hasher)
        .without_throttle()
        .build();
    let mut token = String::new();
    for _ in 0..sessions {
        let login = auth
            .login(EMAIL, PASSWORD, ClientInfo::none())
            .await
            .expect("login");
        token = login.token.expose_secret().to_owned();
    }
    (auth, token)
}

/// The record axum-login leaves in tower-sessions after a login: its data key holding the user
/// id and the user's session auth hash (32 bytes here).
fn axum_login_record() -> Record {
    let data = serde_json::json!({ "user_id": 1_i64, "auth_hash": vec![7_u8; 32] });
    Record {
        id: Id::default(),
        data: HashMap::from([(AXUM_LOGIN_DATA_KEY.to_owned(), data)]),
        expiry_date: time::OffsetDateTime::now_utc() + time::Duration::days(1),
    }
}

/// A tower-sessions memory store with `sessions` records; returns the id of the last one.
async fn tower_sessions_with_records(sessions: usize) -> (MemoryStore, Id) {
    let store = MemoryStore::default();
    let mut id = Id::default();
    for _ in 0..sessions {
        let mut record = axum_login_record();
        store.create(&mut record).await.expect("create");
        id = record.id;
    }
    (store, id)
}

fn lookup(c: &mut Criterion) {
    let rt = runtime();
    let mut group = c.benchmark_group("lookup");
    group
        .sample_size(50)
        .warm_up_time(Duration::from_secs(2))
        .measurement_time(Duration::from_secs(5));
    for sessions in [1_usize, 100_000] {
        let (auth, token) = rt.block_on(keycard_with_sessions(sessions));
        let (store, id) = rt.block_on(tower_sessions_with_records(sessions));
        let cookie_value = id.to_string();

        group.bench_with_input(
            BenchmarkId::new("keycard_validate_session", sessions),
            &token,
            |b, token| {
                b.to_async(&rt)
                    .iter(|| async { auth.validate_session(token).await.expect("valid") });
            },
        );
        group.bench_with_input(
            BenchmarkId::new("tower_sessions_load", sessions),
            &id,
            |b, id| {
                b.to_async(&rt)
                    .iter(|| async { store.load(id).await.expect("load").expect("record") });
            },
        );
        group.bench_with_input(
            BenchmarkId::new("tower_sessions_parse_and_load", sessions),
            &cookie_value,
            |b, value| {
                b.to_async(&rt).iter(|| async {
                    let id = Id::from_str(value).expect("id");
                    store.load(&id).await.expect("load").expect("record")
                });
            },
        );
        // The same three, interleaved in rotating order, against load drift.
        let names = [
            "keycard_validate_session",
            "tower_sessions_load",
            "tower_sessions_parse_and_load",
        ];
        let per_call = rt.block_on(interleave(names.len(), 101, 5_000, |which| {
            let (auth, token, store, id, value) = (&auth, &token, &store, &id, &cookie_value);
            async move {
                match which {
                    0 => drop(auth.validate_session(token).await.expect("valid")),
                    1 => drop(store.load(id).await.expect("load").expect("record")),
                    _ => {
                        let id = Id::from_str(value).expect("id");
                        drop(store.load(&id).await.expect("load").expect("record"));
                    }
                }
            }
        }));
        report(
            &format!("lookup, {sessions} live sessions"),
            101,
            &names,
            &per_call,
        );
        drop((auth, store));
    }
    group.finish();
}

/// Rounds of interleaved measurement: each round times `per_round` sequential calls of every
/// case (the order rotates from round to round), so a change in the machine's load hits every
/// case alike. Returns each case's per-call time, the median over the rounds.
async fn interleave<F, Fut>(
    cases: usize,
    rounds: usize,
    per_round: u32,
    mut call: F,
) -> Vec<Duration>
where
    F: FnMut(usize) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let mut times = vec![Vec::with_capacity(rounds); cases];
    for round in 0..rounds {
        for k in 0..cases {
            let which = (round + k) % cases;
            let start = Instant::now();
            for _ in 0..per_round {
                call(which).await;
            }
            times[which].push(start.elapsed() / per_round);
        }
    }
    times
        .into_iter()
        .map(|mut t| {
            t.sort();
            t[t.len() / 2]
        })
        .collect()
}

/// Prints the interleaved medians and each one's ratio to the first case.
fn report(title: &str, rounds: usize, names: &[&str], per_call: &[Duration]) {
    println!("interleaved ({title}): median of {rounds} rounds, per call");
    for (name, time) in names.iter().zip(per_call) {
        println!(
            "  {name:<32} {:>10.3} µs  {:>5.2}× {}",
            time.as_secs_f64() * 1e6,
            time.as_secs_f64() / per_call[0].as_secs_f64(),
            names[0],
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Group 2: protected routes over loopback HTTP
// ---------------------------------------------------------------------------------------------

/// The tiny JSON body every route answers.
#[derive(Serialize)]
struct Hello {
    ok: bool,
    message: &'static str,
}

async fn hello() -> Json<Hello> {
    Json(Hello {
        ok: true,
        message: "hello",
    })
}

async fn keycard_hello(_session: CurrentSession<UserRecord>) -> Json<Hello> {
    hello().await
}

async fn keycard_hello_user(_me: CurrentUser<UserRecord>) -> Json<Hello> {
    hello().await
}

async fn keycard_login(request: LoginRequest<UserRecord>) -> keycard::http::Response {
    request.login().await
}

/// axum-login's user: looked up in memory by id.
#[derive(Clone)]
struct PeerUser {
    id: i64,
    email: String,
    password: String,
    auth_hash: Vec<u8>,
}

impl std::fmt::Debug for PeerUser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PeerUser")
            .field("id", &self.id)
            .field("email", &self.email)
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
    email: String,
    password: String,
}

/// A minimal axum-login backend: users in a `HashMap` by id. Login compares the password as
/// given (login is not measured; the protected route only calls `get_user`).
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
            .values()
            .find(|u| u.email == creds.email && u.password == creds.password)
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
        Ok(None) => StatusCode::UNAUTHORIZED,
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// Serves `app` on a fresh loopback port (with the peer address, as keycard's docs ask) and
/// returns the base URL.
async fn serve(app: Router) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let service = app.into_make_service_with_connect_info::<SocketAddr>();
    tokio::spawn(axum::serve(listener, service).into_future());
    format!("http://{addr}")
}

async fn keycard_app() -> Router {
    let users = MemoryUserStore::<UserRecord>::new();
    let auth = Authenticator::builder(users, MemoryTokenStore::new()).build();
    let phc = auth.hash_password(PASSWORD).await.expect("hash");
    auth.users()
        .insert(UserRecord::new(1_i64, EMAIL, phc))
        .expect("insert");
    Router::new()
        .route("/login", post(keycard_login))
        .route("/hello", get(keycard_hello))
        .route("/hello_user", get(keycard_hello_user))
        .with_state(HttpAuth::new(auth, StandardApi))
}

fn axum_login_app() -> Router {
    let user = PeerUser {
        id: 1,
        email: EMAIL.to_owned(),
        password: PASSWORD.to_owned(),
        auth_hash: vec![7; 32],
    };
    let backend = PeerBackend {
        users: Arc::new(HashMap::from([(user.id, user)])),
    };
    let sessions = SessionManagerLayer::new(MemoryStore::default()).with_secure(false);
    let auth_layer = AuthManagerLayerBuilder::new(backend, sessions).build();
    Router::new()
        .route("/hello", get(hello))
        .route_layer(login_required!(PeerBackend))
        .route("/login", post(axum_login_login))
        .layer(auth_layer)
}

/// The same request without the network: `oneshot` on a clone of the router (what the server
/// runs per request, minus HTTP parsing, the socket and the client).
async fn oneshot_status(app: &Router, path: &str, header: Header<'_>, expected: u16) {
    let mut request = axum::http::Request::get(path);
    if let Some((name, value)) = header {
        request = request.header(name, value);
    }
    let request = request.body(axum::body::Body::empty()).expect("request");
    let response = app.clone().oneshot(request).await.expect("infallible");
    let status = response.status().as_u16();
    let body = axum::body::to_bytes(response.into_body(), 1 << 16)
        .await
        .expect("body");
    assert_eq!(status, expected, "{path}: {body:?}");
}

/// One measured route: over HTTP at `url`, in process as `path` on `app`.
struct Case<'a> {
    name: &'static str,
    url: String,
    path: &'static str,
    app: Router,
    header: Header<'a>,
}

#[derive(Deserialize)]
struct KeycardLogin {
    token: String,
}

fn credentials() -> serde_json::Value {
    serde_json::json!({ "email": EMAIL, "password": PASSWORD })
}

/// A request header: name and value.
type Header<'a> = Option<(&'static str, &'a str)>;

/// One request; panics unless the status is `expected`. Reads the body so the connection goes
/// back to the pool.
async fn get_status(client: &reqwest::Client, url: &str, header: Header<'_>, expected: u16) {
    let mut request = client.get(url);
    if let Some((name, value)) = header {
        request = request.header(name, value);
    }
    let response = request.send().await.expect("request");
    let status = response.status().as_u16();
    let body = response.bytes().await.expect("body");
    assert_eq!(status, expected, "{url}: {body:?}");
}

fn route(c: &mut Criterion) {
    let rt = runtime();
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(1)
        .tcp_nodelay(true)
        .build()
        .expect("client");

    let plain_app = Router::new().route("/hello", get(hello));
    let keycard_app = rt.block_on(keycard_app());
    let peer_app = axum_login_app();
    let (plain, keycard, peer) = rt.block_on(async {
        (
            serve(plain_app.clone()).await,
            serve(keycard_app.clone()).await,
            serve(peer_app.clone()).await,
        )
    });

    // Real logins: keycard's Bearer token, axum-login's session cookie.
    let (bearer, cookie) = rt.block_on(async {
        let login: KeycardLogin = client
            .post(format!("{keycard}/login"))
            .json(&credentials())
            .send()
            .await
            .expect("keycard login")
            .error_for_status()
            .expect("keycard login ok")
            .json()
            .await
            .expect("keycard login body");
        let response = client
            .post(format!("{peer}/login"))
            .json(&credentials())
            .send()
            .await
            .expect("axum-login login")
            .error_for_status()
            .expect("axum-login login ok");
        let set_cookie = response
            .headers()
            .get("set-cookie")
            .expect("axum-login sets a cookie")
            .to_str()
            .expect("ascii cookie");
        let cookie = set_cookie.split(';').next().expect("name=value").to_owned();
        (format!("Bearer {}", login.token), cookie)
    });

    let bearer = Some(("authorization", bearer.as_str()));
    let cookie = Some(("cookie", cookie.as_str()));
    let cases = [
        Case {
            name: "unprotected",
            url: format!("{plain}/hello"),
            path: "/hello",
            app: plain_app,
            header: None,
        },
        Case {
            name: "keycard_current_session",
            url: format!("{keycard}/hello"),
            path: "/hello",
            app: keycard_app.clone(),
            header: bearer,
        },
        Case {
            name: "keycard_current_user",
            url: format!("{keycard}/hello_user"),
            path: "/hello_user",
            app: keycard_app,
            header: bearer,
        },
        Case {
            name: "axum_login",
            url: format!("{peer}/hello"),
            path: "/hello",
            app: peer_app,
            header: cookie,
        },
    ];
    let names: Vec<&str> = cases.iter().map(|case| case.name).collect();

    // The protection is real: no credentials, 401; the login's credentials, 200.
    rt.block_on(async {
        for case in &cases {
            if case.header.is_some() {
                get_status(&client, &case.url, None, 401).await;
                oneshot_status(&case.app, case.path, None, 401).await;
            }
            get_status(&client, &case.url, case.header, 200).await;
            oneshot_status(&case.app, case.path, case.header, 200).await;
        }
    });

    let mut group = c.benchmark_group("route");
    group
        .sample_size(50)
        .warm_up_time(Duration::from_secs(2))
        .measurement_time(Duration::from_secs(5));
    for case in &cases {
        group.bench_function(case.name, |b| {
            b.to_async(&rt)
                .iter(|| get_status(&client, &case.url, case.header, 200));
        });
    }
    group.finish();
    let per_request = rt.block_on(interleave(cases.len(), 301, 20, |which| {
        let case = &cases[which];
        get_status(&client, &case.url, case.header, 200)
    }));
    report("route", 301, &names, &per_request);

    let mut group = c.benchmark_group("route_in_process");
    group
        .sample_size(50)
        .warm_up_time(Duration::from_secs(2))
        .measurement_time(Duration::from_secs(5));
    for case in &cases {
        group.bench_function(case.name, |b| {
            b.to_async(&rt)
                .iter(|| oneshot_status(&case.app, case.path, case.header, 200));
        });
    }
    group.finish();
    let per_request = rt.block_on(interleave(cases.len(), 301, 200, |which| {
        let case = &cases[which];
        oneshot_status(&case.app, case.path, case.header, 200)
    }));
    report("route_in_process", 301, &names, &per_request);
}

/// The benchmark groups (`criterion_group!` generates an undocumented `pub fn`, hence the module).
mod groups {
    #![allow(missing_docs)]
    criterion::criterion_group!(benches, super::lookup, super::route);
}
criterion_main!(groups::benches);
