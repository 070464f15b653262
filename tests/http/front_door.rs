//! The front door over real HTTP: actix-web's `Json`, `Form` and `Query` reject in the
//! protocol's shape (400, 413, 415, 422), its 404 and 405 fallbacks answer in it too, both
//! byte for byte as axum's (with axum on); one body limit, keycard's, on both adapters (at the
//! limit accepted, one byte over 413); and a forgotten `app_data` is a 500 saying it is a
//! configuration error, logged once.

use actix_web::web;
use keycard::actix_web as kactix;
use keycard::http::{HttpAuth, LoginApi, Response, DEFAULT_BODY_LIMIT};
use keycard::UserRecord;
use serde::Deserialize;

use crate::support::adapter::{Fixture, EMAIL, PASSWORD};
use crate::support::server::{send, Reply, Server};

#[derive(Deserialize)]
struct Note {
    text: String,
}

#[derive(Deserialize)]
struct Page {
    page: u32,
}

async fn actix_note(kactix::ApiJson(note): kactix::ApiJson<Note>) -> String {
    note.text
}

async fn actix_form(kactix::ApiForm(note): kactix::ApiForm<Note>) -> String {
    note.text
}

async fn actix_paged(kactix::ApiQuery(page): kactix::ApiQuery<Page>) -> String {
    page.page.to_string()
}

async fn actix_login(request: kactix::LoginRequest<UserRecord>) -> Response {
    request.login().await
}

/// `POST /notes` (JSON), `GET`/`POST /form`, `GET /paged`, `POST /login`, with keycard's
/// `configure` and `resource`.
fn actix_app(http: HttpAuth<UserRecord>) -> Server {
    Server::start_actix(move |config: &mut web::ServiceConfig| {
        config
            .configure(kactix::configure(http.clone()))
            .service(kactix::resource("/notes").route(web::post().to(actix_note)))
            .service(
                kactix::resource("/form")
                    .route(web::get().to(actix_form))
                    .route(web::post().to(actix_form)),
            )
            .service(kactix::resource("/paged").route(web::get().to(actix_paged)))
            .service(kactix::resource("/login").route(web::post().to(actix_login)));
    })
}

/// The same app on axum.
#[cfg(feature = "axum")]
async fn axum_app(http: HttpAuth<UserRecord>) -> Server {
    use axum::routing::{get, post};
    use keycard::axum as kaxum;

    async fn note(kaxum::ApiJson(note): kaxum::ApiJson<Note>) -> String {
        note.text
    }
    async fn form(kaxum::ApiForm(note): kaxum::ApiForm<Note>) -> String {
        note.text
    }
    async fn paged(kaxum::ApiQuery(page): kaxum::ApiQuery<Page>) -> String {
        page.page.to_string()
    }
    async fn login(request: kaxum::LoginRequest<UserRecord>) -> Response {
        request.login().await
    }
    let routes = axum::Router::new()
        .route("/notes", post(note))
        .route("/form", get(form).post(form))
        .route("/paged", get(paged))
        .route("/login", post(login));
    Server::start(kaxum::json_fallbacks(routes).with_state(http)).await
}

/// Sends `method path` with an optional `Content-Type` and a body.
async fn call(server: &Server, method: &str, path: &str, content_type: &str, body: &str) -> Reply {
    let mut request = server.request(method, path).body(body.to_owned());
    if !content_type.is_empty() {
        request = request.header("content-type", content_type);
    }
    send(request).await
}

const JSON: &str = "application/json";
const FORM: &str = "application/x-www-form-urlencoded";

/// A JSON note of exactly `len` bytes.
fn note_of(len: usize) -> String {
    let frame = r#"{"text":""}"#.len();
    format!(r#"{{"text":"{}"}}"#, "x".repeat(len - frame))
}

/// Each request, the status it must get, and (for the successes) the body.
fn cases() -> Vec<(&'static str, String, &'static str, String, u16)> {
    let over = note_of(DEFAULT_BODY_LIMIT + 1);
    vec![
        (
            "POST",
            "/notes".into(),
            JSON,
            r#"{"text":"hi"}"#.into(),
            200,
        ),
        (
            "POST",
            "/notes".into(),
            "text/plain",
            r#"{"text":"hi"}"#.into(),
            415,
        ),
        ("POST", "/notes".into(), "", r#"{"text":"hi"}"#.into(), 415),
        ("POST", "/notes".into(), JSON, "{".into(), 400),
        (
            "POST",
            "/notes".into(),
            JSON,
            r#"{"text":"hi"} x"#.into(),
            400,
        ),
        ("POST", "/notes".into(), JSON, r#"{"text":1}"#.into(), 422),
        ("POST", "/notes".into(), JSON, "{}".into(), 422),
        ("POST", "/notes".into(), JSON, over.clone(), 413),
        ("POST", "/form".into(), FORM, "text=hi".into(), 200),
        ("POST", "/form".into(), JSON, "text=hi".into(), 415),
        ("POST", "/form".into(), FORM, "nothing=here".into(), 422),
        ("GET", "/form?text=hi".into(), "", String::new(), 200),
        ("GET", "/form?nothing=here".into(), "", String::new(), 400),
        ("GET", "/paged?page=2".into(), "", String::new(), 200),
        ("GET", "/paged?page=x".into(), "", String::new(), 400),
        ("GET", "/paged".into(), "", String::new(), 400),
        ("GET", "/nothing".into(), "", String::new(), 404),
        ("DELETE", "/notes".into(), "", String::new(), 405),
        ("GET", "/login".into(), "", String::new(), 405),
        ("POST", "/login".into(), JSON, over, 413),
        ("POST", "/login".into(), "text/plain", "{}".into(), 415),
        ("POST", "/login".into(), JSON, "{".into(), 400),
        ("POST", "/login".into(), FORM, "email=x".into(), 422),
    ]
}

/// The shape refusals must have.
#[derive(Clone, Copy)]
enum Shape {
    /// `StandardApi`'s problem details.
    Problem,
    /// The login API's `{"error": ...}`.
    Error,
    /// Not checked (compared with another framework's instead).
    #[cfg(feature = "axum")]
    Any,
}

/// Runs every case against `server`, checking the status and the shape of the refusals;
/// returns each reply's status, `Content-Type` and body.
async fn run_cases(server: &Server, shape: Shape) -> Vec<(u16, String, String)> {
    let mut replies = Vec::new();
    for (method, path, content_type, body, status) in cases() {
        let reply = call(server, method, &path, content_type, &body).await;
        assert_eq!(reply.status, status, "{method} {path}: {reply:?}");
        if status >= 400 {
            assert_eq!(reply.header("cache-control"), Some("no-store"), "{reply:?}");
            let json = reply.json();
            match shape {
                Shape::Problem => {
                    assert_eq!(
                        reply.header("content-type"),
                        Some("application/problem+json"),
                        "{method} {path}: {reply:?}"
                    );
                    assert_eq!(json["status"], status, "{reply:?}");
                    assert!(json["detail"].as_str().is_some_and(|d| !d.is_empty()));
                }
                Shape::Error => {
                    crate::support::server::assert_error_shape(&reply, status, "error");
                }
                #[cfg(feature = "axum")]
                Shape::Any => {}
            }
        }
        replies.push((
            reply.status,
            reply.header("content-type").unwrap_or_default().to_owned(),
            reply.body,
        ));
    }
    replies
}

#[tokio::test]
async fn actix_rejections_and_fallbacks_are_in_the_standard_apis_shape() {
    let fixture = Fixture::new().await;
    let actix = actix_app(fixture.http());
    let replies = run_cases(&actix, Shape::Problem).await;
    assert_eq!(replies[0].2, "hi");
    let missing = actix.call("GET", "/nothing").await.json();
    assert_eq!(missing["detail"], "Not found");
    let wrong_method = actix.call("DELETE", "/notes").await.json();
    assert_eq!(wrong_method["detail"], "Method not allowed");
    let too_large = call(
        &actix,
        "POST",
        "/notes",
        JSON,
        &note_of(DEFAULT_BODY_LIMIT + 1),
    )
    .await;
    assert_eq!(too_large.json()["detail"], "Request body is too large");
    let json_wanted = call(&actix, "POST", "/notes", "text/plain", "{}").await;
    assert_eq!(
        json_wanted.json()["detail"],
        "Expected request with `Content-Type: application/json`"
    );
}

#[tokio::test]
async fn actix_rejections_and_fallbacks_are_in_the_login_apis_shape() {
    let fixture = Fixture::new().await;
    let actix = actix_app(HttpAuth::new(fixture.auth.clone(), LoginApi));
    run_cases(&actix, Shape::Error).await;
    assert_eq!(
        actix.call("GET", "/nothing").await.pair(),
        (404, r#"{"error":"Not found"}"#)
    );
    assert_eq!(
        actix.call("DELETE", "/notes").await.pair(),
        (405, r#"{"error":"Method not allowed"}"#)
    );
}

/// Every answer, refusals included, is axum's byte for byte.
#[cfg(feature = "axum")]
#[tokio::test]
async fn actix_answers_as_axum_does() {
    let fixture = Fixture::new().await;
    for http in [
        fixture.http(),
        HttpAuth::new(fixture.auth.clone(), LoginApi),
    ] {
        let actix = run_cases(&actix_app(http.clone()), Shape::Any).await;
        let axum = run_cases(&axum_app(http).await, Shape::Any).await;
        for ((case, actix), axum) in cases().iter().zip(&actix).zip(&axum) {
            assert_eq!(actix, axum, "{} {}", case.0, case.1);
        }
    }
}

/// A login body of exactly `len` bytes with the right credentials (extra fields are ignored).
fn login_of(len: usize) -> String {
    let frame = format!(r#"{{"email":"{EMAIL}","password":"{PASSWORD}","pad":""}}"#).len();
    format!(
        r#"{{"email":"{EMAIL}","password":"{PASSWORD}","pad":"{}"}}"#,
        "x".repeat(len - frame)
    )
}

/// keycard's limit, the default and a configured one: at the limit accepted, one byte over
/// 413, for login bodies and `Json` alike.
async fn body_limit_holds(server: &Server, limit: usize) {
    let at = call(server, "POST", "/notes", JSON, &note_of(limit)).await;
    assert_eq!(at.status, 200, "{limit}: {at:?}");
    let over = call(server, "POST", "/notes", JSON, &note_of(limit + 1)).await;
    assert_eq!(over.status, 413, "{limit}: {over:?}");
    assert_eq!(over.json()["detail"], "Request body is too large");
    let login = call(server, "POST", "/login", JSON, &login_of(limit)).await;
    assert_eq!(login.status, 200, "{limit}: {login:?}");
    let over = call(server, "POST", "/login", JSON, &login_of(limit + 1)).await;
    assert_eq!(over.status, 413, "{limit}: {over:?}");
    let form = format!("text={}", "x".repeat(limit - "text=".len()));
    assert_eq!(call(server, "POST", "/form", FORM, &form).await.status, 200);
    let form = format!("{form}x");
    assert_eq!(call(server, "POST", "/form", FORM, &form).await.status, 413);
}

#[tokio::test]
async fn actix_body_limit_is_keycards_default_or_the_configured_one() {
    let fixture = Fixture::new().await;
    body_limit_holds(&actix_app(fixture.http()), DEFAULT_BODY_LIMIT).await;
    body_limit_holds(&actix_app(fixture.http().with_body_limit(200)), 200).await;
    let large = 1024 * 1024; // 1 MiB: above actix-web's 256 KiB `Bytes` default
    body_limit_holds(&actix_app(fixture.http().with_body_limit(large)), large).await;
}

#[cfg(feature = "axum")]
#[tokio::test]
async fn axum_body_limit_is_keycards_default_or_the_configured_one() {
    let fixture = Fixture::new().await;
    body_limit_holds(&axum_app(fixture.http()).await, DEFAULT_BODY_LIMIT).await;
    body_limit_holds(&axum_app(fixture.http().with_body_limit(200)).await, 200).await;
    let large = 3 * 1024 * 1024; // above axum's 2 MiB `DefaultBodyLimit`
    body_limit_holds(
        &axum_app(fixture.http().with_body_limit(large)).await,
        large,
    )
    .await;
}

/// A user type no test registers.
#[derive(Debug, Clone)]
struct Unregistered;

async fn whoami(client: kactix::Client<Unregistered>) -> String {
    format!("{:?}", client.info.ip)
}

#[tokio::test]
async fn a_forgotten_app_data_is_a_500_saying_so_and_is_logged_once() {
    let log = crate::support::log::log();
    let server = Server::start_actix(|config: &mut web::ServiceConfig| {
        config
            .route("/whoami", web::get().to(whoami))
            .route("/notes", web::post().to(actix_note));
    });
    for _ in 0..3 {
        for reply in [
            server.call("GET", "/whoami").await,
            call(&server, "POST", "/notes", JSON, r#"{"text":"hi"}"#).await,
        ] {
            assert_eq!(reply.status, 500, "{reply:?}");
            assert_eq!(reply.header("content-type"), Some("application/json"));
            assert_eq!(reply.header("cache-control"), Some("no-store"));
            let body = reply.json();
            assert_eq!(body["error"], "server_configuration_error", "{body}");
            let message = body["message"].as_str().expect("a message");
            assert!(message.contains("configuration error"), "{message}");
        }
    }

    let text = log.text();
    let missing_auth: Vec<_> = text
        .lines()
        .filter(|line| line.contains("HttpAuth<") && line.contains("Unregistered"))
        .collect();
    assert_eq!(missing_auth.len(), 1, "once: {missing_auth:#?}");
    let line = missing_auth[0];
    assert!(line.contains("ERROR"), "{line}");
    assert!(line.contains(".app_data(http.clone())"), "{line}");
    assert!(line.contains("HttpServer::new"), "{line}");
    let missing_rules: Vec<_> = text
        .lines()
        .filter(|line| line.contains("no `keycard::http::RequestRules`"))
        .collect();
    assert_eq!(missing_rules.len(), 1, "once: {missing_rules:#?}");
    assert!(missing_rules[0].contains("ERROR"));
    assert!(missing_rules[0].contains(".app_data(http.request_rules())"));
}
