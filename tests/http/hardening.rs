//! Security hardening of the HTTP edge: `Cache-Control: no-store` on the app's own
//! authenticated routes (axum's `no_store()`, the tower layer) over real HTTP, the axum
//! `Client` extractor over real HTTP, the login redacted in every `Debug`, and the audit
//! events for cross-site refusals and bursts of invalid tokens (with no secret in them).
//!
//! The audit tests read a global `tracing` subscriber (installed once for this binary, so no
//! call site's interest is cached before it exists); each test uses client addresses of its
//! own and looks only at its lines.

use std::net::IpAddr;
use std::time::Duration;

use crate::support::adapter::{http_with_cookie, Fixture, EMAIL, PASSWORD};
use crate::support::log::log;
use crate::support::server::Server;
use axum::http::header::CACHE_CONTROL;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use keycard::axum::CurrentUser;
use keycard::http::{HttpAuth, RequestHead, TrustedProxies};
use keycard::{ClientInfo, UserRecord};
use serde_json::json;

// --- helpers -----------------------------------------------------------------------------

/// A request as some framework would hand it over.
struct Head {
    method: &'static str,
    peer: IpAddr,
    headers: Vec<(&'static str, String)>,
}

impl Head {
    fn new(method: &'static str, peer: &str) -> Self {
        Self {
            method,
            peer: peer.parse().expect("test address"),
            headers: Vec::new(),
        }
    }

    fn header(mut self, name: &'static str, value: &str) -> Self {
        self.headers.push((name, value.to_owned()));
        self
    }
}

impl RequestHead for Head {
    fn header_values<'a>(&'a self, name: &str) -> Box<dyn Iterator<Item = &'a str> + 'a> {
        let name = name.to_owned();
        Box::new(
            self.headers
                .iter()
                .filter(move |(n, _)| n.eq_ignore_ascii_case(&name))
                .map(|(_, v)| v.as_str()),
        )
    }
    fn method(&self) -> &str {
        self.method
    }
    fn query(&self) -> Option<&str> {
        None
    }
    fn peer_ip(&self) -> Option<IpAddr> {
        Some(self.peer)
    }
}

async fn token(fixture: &Fixture) -> String {
    fixture
        .auth
        .login(EMAIL, PASSWORD, ClientInfo::none())
        .await
        .expect("login")
        .token
        .expose_secret()
        .to_owned()
}

// --- Cache-Control: no-store -------------------------------------------------------------

async fn data(me: CurrentUser<UserRecord>) -> axum::Json<serde_json::Value> {
    axum::Json(json!({ "email": me.user.email }))
}

async fn cached(me: CurrentUser<UserRecord>) -> axum::response::Response {
    (
        [(CACHE_CONTROL, "private, max-age=60")],
        axum::Json(json!({ "email": me.user.email })),
    )
        .into_response()
}

async fn client(client: keycard::axum::Client<UserRecord>) -> String {
    client
        .into_inner()
        .ip
        .map_or_else(|| "-".to_owned(), |ip| ip.to_string())
}

#[tokio::test]
async fn axum_no_store_covers_the_routes_it_wraps_and_keeps_their_own_cache_control() {
    let fixture = Fixture::new().await;
    let app = Router::new()
        .route("/data", get(data))
        .route("/cached", get(cached))
        .route_layer(keycard::axum::no_store())
        .route("/public", get(|| async { "hello" }))
        .with_state(fixture.http());
    let server = Server::start(app).await;
    let token = token(&fixture).await;

    let ok = crate::support::server::send(server.request("GET", "/data").bearer_auth(&token)).await;
    assert_eq!(ok.pair(), (200, r#"{"email":"ann@example.com"}"#));
    assert_eq!(ok.header("content-type"), Some("application/json"));
    assert_eq!(ok.header("cache-control"), Some("no-store"));

    let own =
        crate::support::server::send(server.request("GET", "/cached").bearer_auth(&token)).await;
    assert_eq!(own.status, 200);
    assert_eq!(own.header("cache-control"), Some("private, max-age=60"));
    assert_eq!(own.headers.get_all("cache-control").iter().count(), 1);

    let refused = server.call("GET", "/data").await;
    assert_eq!(refused.status, 401);
    assert_eq!(refused.header("cache-control"), Some("no-store"));

    let public = server.call("GET", "/public").await;
    assert_eq!(public.pair(), (200, "hello"));
    assert_eq!(
        public.header("cache-control"),
        None,
        "only the wrapped routes"
    );
}

#[cfg(feature = "tower")]
#[tokio::test]
async fn the_tower_layer_adds_no_store_to_what_it_let_through() {
    use axum::Extension;
    use keycard::tower::AuthLayer;
    use keycard::Authenticated;

    async fn me(
        Extension(me): Extension<Authenticated<UserRecord>>,
    ) -> axum::Json<serde_json::Value> {
        axum::Json(json!({ "email": me.user.email }))
    }
    async fn own(Extension(me): Extension<Authenticated<UserRecord>>) -> axum::response::Response {
        ([(CACHE_CONTROL, "private, max-age=60")], me.user.email).into_response()
    }

    let fixture = Fixture::new().await;
    let app = Router::new()
        .route("/me", get(me))
        .route("/own", get(own))
        .layer(AuthLayer::new(fixture.http()));
    let server = Server::start(app).await;
    let token = token(&fixture).await;

    let ok = crate::support::server::send(server.request("GET", "/me").bearer_auth(&token)).await;
    assert_eq!(ok.pair(), (200, r#"{"email":"ann@example.com"}"#));
    assert_eq!(ok.header("cache-control"), Some("no-store"));

    let kept =
        crate::support::server::send(server.request("GET", "/own").bearer_auth(&token)).await;
    assert_eq!(kept.pair(), (200, "ann@example.com"));
    assert_eq!(kept.header("cache-control"), Some("private, max-age=60"));

    let refused = server.call("GET", "/me").await;
    assert_eq!(refused.status, 401);
    assert_eq!(refused.header("cache-control"), Some("no-store"));
}

// --- the Client extractor ------------------------------------------------------------------

#[tokio::test]
async fn axum_client_is_the_request_peer_as_login_computes_it() {
    let fixture = Fixture::new().await;
    let direct = Server::start(
        Router::new()
            .route("/client", get(client))
            .with_state(fixture.http()),
    )
    .await;
    let reply = direct.call("GET", "/client").await;
    assert_eq!(reply.pair(), (200, "127.0.0.1"));
    // From another loopback address: that one, and a forged header from an untrusted peer is
    // ignored.
    let source = crate::support::server::client_ip(7);
    let reply = crate::support::server::send(
        crate::support::server::client_from(source)
            .get(direct.url("/client"))
            .header("x-forwarded-for", "203.0.113.9"),
    )
    .await;
    assert_eq!(reply.pair(), (200, source.to_string().as_str()));

    // Behind a trusted proxy: the address it forwarded, as at login.
    let proxied: HttpAuth<UserRecord> =
        fixture
            .http()
            .with_trusted_proxies(TrustedProxies::new(["127.0.0.0/8"
                .parse()
                .expect("a network")]));
    let behind = Server::start(
        Router::new()
            .route("/client", get(client))
            .with_state(proxied),
    )
    .await;
    let reply = crate::support::server::send(
        behind
            .request("GET", "/client")
            .header("x-forwarded-for", "203.0.113.9"),
    )
    .await;
    assert_eq!(reply.pair(), (200, "203.0.113.9"));
}

// --- Debug redaction -------------------------------------------------------------------------

#[tokio::test]
async fn debug_never_shows_the_login_or_the_password() {
    let fixture = Fixture::new().await;
    let http = fixture.http();
    // A password typed into the email field, and a password.
    let body = r#"{"email":"Tr0ub4dor&3-typed-here","password":"correct-horse-battery"}"#;
    let request = Head::new("POST", "192.0.2.50").header("content-type", "application/json");
    let login = http
        .login_request(&request, body.as_bytes())
        .expect("a login body");
    for shown in [
        format!("{login:?}"),
        format!("{login:#?}"),
        format!("{:?}", login.credentials),
        format!("{:#?}", login.credentials),
    ] {
        assert!(!shown.contains("Tr0ub4dor"), "{shown}");
        assert!(!shown.contains("correct-horse"), "{shown}");
        assert!(shown.contains("redacted"), "{shown}");
    }
    assert_eq!(login.credentials.login, "Tr0ub4dor&3-typed-here");
}

// --- audit events ----------------------------------------------------------------------------

#[tokio::test]
async fn a_burst_of_invalid_tokens_is_one_event_a_minute_with_its_count() {
    let log = log();
    let fixture = Fixture::new().await;
    let http = fixture.http();
    let forged = crate::support::server::forged_token();
    tokio::time::pause();
    for n in 0..1_000 {
        let token = if n % 2 == 0 {
            "not-a-token"
        } else {
            forged.as_str()
        };
        let request =
            Head::new("GET", "192.0.2.77").header("authorization", &format!("Bearer {token}"));
        assert!(http.validate(&request).await.is_err());
    }
    let events = log.events("tokens.invalid", "192.0.2.77");
    assert_eq!(events.len(), 1, "{events:#?}");
    assert!(events[0].contains(" count=1 "), "{}", events[0]);
    assert!(events[0].contains("keycard::audit"), "{}", events[0]);

    // Another address is reported on its own.
    let other = Head::new("GET", "192.0.2.76").header("authorization", "Bearer nope");
    assert!(http.validate_session(&other).await.is_err());
    assert_eq!(log.events("tokens.invalid", "192.0.2.76").len(), 1);

    // A minute on, the next failure reports the 999 counted since, and itself.
    tokio::time::advance(Duration::from_secs(60)).await;
    let request = Head::new("GET", "192.0.2.77").header("authorization", "Bearer nope");
    assert!(http.validate(&request).await.is_err());
    let events = log.events("tokens.invalid", "192.0.2.77");
    assert_eq!(events.len(), 2, "{events:#?}");
    assert!(events[1].contains(" count=1000 "), "{}", events[1]);
    assert!(!log.text().contains(&forged), "no token in the log");

    // A missing token is no invalid one.
    let bare = Head::new("GET", "192.0.2.75");
    assert!(http.validate(&bare).await.is_err());
    assert!(log.events("tokens.invalid", "192.0.2.75").is_empty());
}

#[tokio::test]
async fn a_cross_site_refusal_is_an_event_without_the_cookie() {
    let log = log();
    let fixture = Fixture::new().await;
    let http = http_with_cookie(&fixture);
    let secret = "cookie-secret-0123456789";

    // An `http://` page of the same host, for an `https://` app: refused.
    let request = Head::new("POST", "192.0.2.78")
        .header("host", "app.example")
        .header("origin", "http://app.example")
        .header("cookie", &format!("__Host-session={secret}"));
    assert!(matches!(
        http.find_token(&request),
        Err(keycard::http::Rejection::CrossSite)
    ));
    let events = log.events("csrf.refused", "192.0.2.78");
    assert_eq!(events.len(), 1, "{events:#?}");
    for expected in [
        r#"check="cookie_token""#,
        r#"method="POST""#,
        r#"origin="http://app.example""#,
    ] {
        assert!(events[0].contains(expected), "{expected} in {}", events[0]);
    }

    // The same page over https passes, with no event.
    let same = Head::new("POST", "192.0.2.79")
        .header("host", "app.example")
        .header("origin", "https://app.example:443")
        .header("cookie", &format!("__Host-session={secret}"));
    assert!(http.find_token(&same).expect("same origin").is_some());
    assert!(log.events("csrf.refused", "192.0.2.79").is_empty());

    // A login started by another site, told by its Referer.
    let login = Head::new("POST", "192.0.2.80")
        .header("host", "app.example")
        .header("referer", "https://evil.example/page?user=x");
    assert!(http.check_login_origin(&login).is_err());
    let events = log.events("csrf.refused", "192.0.2.80");
    assert_eq!(events.len(), 1, "{events:#?}");
    assert!(events[0].contains(r#"check="login""#), "{}", events[0]);
    assert!(
        events[0].contains(r#"origin="https://evil.example""#),
        "{}",
        events[0]
    );

    // An unparsable origin is logged as such, never verbatim.
    let garbage = Head::new("DELETE", "192.0.2.81")
        .header("host", "app.example")
        .header("origin", "https://app.example\u{7f}evil")
        .header("cookie", &format!("__Host-session={secret}"));
    assert!(http.find_token(&garbage).is_err());
    let events = log.events("csrf.refused", "192.0.2.81");
    assert!(events[0].contains(r#"origin="invalid""#), "{}", events[0]);
    assert!(events[0].contains(r#"method="DELETE""#), "{}", events[0]);

    assert!(!log.text().contains(secret), "no cookie in the log");
}
