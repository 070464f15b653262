//! The increase API example (the login document) over real HTTP on a loopback port: every
//! request and response of the document byte for byte, then 24-hour expiry, independent
//! sessions, forged tokens, concurrency, bad input, a store that is down and throttling.
//!
//! Every test body takes a [`Framework`] and runs against that framework's app
//! (`increase_api`'s axum routes, `increase_api_actix`'s actix-web routes with two workers):
//! the macro at the bottom runs each body on every framework enabled, as `axum::NAME` and
//! `actix::NAME`.

use crate::increase::app;

use std::collections::HashSet;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use crate::support::down_store::DownTokenStore;
use crate::support::server::{
    assert_error_shape, client_ip, for_each_framework, forged_token, tampered, Framework, Reply,
    Server,
};
use keycard::http::TrustedProxies;
use keycard::{
    Argon2Hasher, AuthenticatorBuilder, ManualClock, MemoryTokenStore, MemoryUserStore, TokenStore,
};
use keycard::{UserRecord, TOKEN_LEN};

const DAY: Duration = Duration::from_secs(24 * 60 * 60);
const LOGIN_BODY: &str = r#"{
    "email": "test@increasecard.com",
    "password": "password"
}"#;
const LOGGED_OUT: &str = r#"{"message":"Successfully logged out"}"#;
const CLIENT: &str =
    r#"{"client":{"email":"test@increasecard.com","first_name":"Test","last_name":"Increase"}}"#;
const MISSING: &str = r#"{"error":"Missing auth_token"}"#;
const INVALID: &str = r#"{"error":"Invalid or expired auth_token"}"#;

struct App {
    server: Server,
    clock: ManualClock,
}

/// The app on `framework`, over memory stores, with a manual clock and a fast (test-only)
/// hasher.
async fn start_with(framework: Framework, ttl: Duration, tokens: Arc<dyn TokenStore>) -> App {
    start_configured(framework, ttl, tokens, |builder| builder).await
}

/// Like [`start_with`], the authenticator configured further by `configure`.
async fn start_configured(
    framework: Framework,
    ttl: Duration,
    tokens: Arc<dyn TokenStore>,
    configure: impl FnOnce(AuthenticatorBuilder<app::Users>) -> AuthenticatorBuilder<app::Users>,
) -> App {
    let users = Arc::new(MemoryUserStore::<UserRecord>::new());
    let clock = ManualClock::default();
    let builder = app::authenticator(users.clone(), tokens, ttl)
        .password_hasher(Argon2Hasher::insecure_for_tests())
        .clock(clock.clone());
    let auth = configure(builder).build();
    let demo = app::demo_user(&auth).await.expect("hash the demo password");
    users.insert(demo).expect("a fresh store");
    App {
        server: serve(framework, app::Api::new(auth, TrustedProxies::none())).await,
        clock,
    }
}

/// Serves `api` with `framework`'s routes: the same ones the example binaries serve.
async fn serve(framework: Framework, api: app::Api) -> Server {
    match framework {
        #[cfg(feature = "axum")]
        Framework::Axum => Server::start(crate::increase::axum_routes::router(api)).await,
        #[cfg(feature = "actix-web")]
        Framework::Actix => Server::start_actix(crate::increase::actix_routes::configure(api)),
    }
}

/// With the binary's default `--session-ttl` (24 hours, as the document says).
async fn start(framework: Framework) -> App {
    start_with(framework, DAY, Arc::new(MemoryTokenStore::new())).await
}

impl App {
    async fn login(&self) -> String {
        Self::token_of(self.server.json("POST", "/login", LOGIN_BODY).await)
    }

    async fn login_from(&self, source: IpAddr) -> String {
        Self::token_of(
            self.server
                .json_from(source, "POST", "/login", LOGIN_BODY)
                .await,
        )
    }

    /// The token of a successful login reply, checked against the document's body.
    fn token_of(reply: Reply) -> String {
        assert_eq!(reply.status, 200, "{reply:?}");
        let token = reply.json()["client"]["auth_token"]
            .as_str()
            .expect("an auth_token string")
            .to_owned();
        assert_eq!(
            reply.body,
            format!(
                r#"{{"client":{{"auth_token":"{token}","email":"test@increasecard.com","first_name":"Test","last_name":"Increase"}}}}"#
            )
        );
        token
    }

    async fn client(&self, token: &str) -> (u16, String) {
        let reply = self
            .server
            .call("GET", &format!("/client?auth_token={token}"))
            .await;
        (reply.status, reply.body)
    }

    async fn logout(&self, token: &str) -> Reply {
        let body = format!("{{\n    \"auth_token\": \"{token}\"\n}}");
        self.server.json("DELETE", "/logout", &body).await
    }
}

async fn document_login_success(framework: Framework) {
    let app = start(framework).await;
    let token = app.login().await;
    assert_eq!(token.len(), TOKEN_LEN);
}

async fn document_login_invalid_combination(framework: Framework) {
    let app = start(framework).await;
    let body = r#"{
    "email": "test@increasecard.com",
    "password": "notpassword"
}"#;
    let reply = app.server.json("POST", "/login", body).await;
    assert_eq!(reply.pair(), (401, r#"{"error":"Invalid email/password"}"#));
    // An unknown email gets the same answer.
    let body = r#"{"email":"nobody@increasecard.com","password":"password"}"#;
    let reply = app.server.json("POST", "/login", body).await;
    assert_eq!(reply.pair(), (401, r#"{"error":"Invalid email/password"}"#));
}

async fn document_logout_and_its_idempotence(framework: Framework) {
    let app = start(framework).await;
    let token = app.login().await;
    assert_eq!(app.logout(&token).await.pair(), (200, LOGGED_OUT));
    // "If there is no session associated to the given auth_token, the same message".
    assert_eq!(app.logout(&token).await.pair(), (200, LOGGED_OUT));
    let reply = app.logout("2731c82cb6ac8ebe7ab4f1aec46436c19d589440").await;
    assert_eq!(reply.pair(), (200, LOGGED_OUT));
    assert_eq!(app.logout(&forged_token()).await.pair(), (200, LOGGED_OUT));
}

async fn client_takes_auth_token_or_bearer(framework: Framework) {
    let app = start(framework).await;
    let token = app.login().await;
    assert_eq!(app.client(&token).await, (200, CLIENT.to_owned()));
    let bearer =
        crate::support::server::send(app.server.request("GET", "/client").bearer_auth(&token))
            .await;
    assert_eq!(bearer.pair(), (200, CLIENT));
    assert_eq!(
        app.server.call("GET", "/client").await.pair(),
        (401, MISSING)
    );
    assert_eq!(
        app.server.call("GET", "/client?auth_token=").await.pair(),
        (401, MISSING)
    );
}

async fn logout_takes_query_or_bearer_too(framework: Framework) {
    let app = start(framework).await;
    let token = app.login().await;
    let reply = app
        .server
        .call("DELETE", &format!("/logout?auth_token={token}"))
        .await;
    assert_eq!(reply.pair(), (200, LOGGED_OUT));
    assert_eq!(app.client(&token).await, (401, INVALID.to_owned()));

    let token = app.login().await;
    let reply =
        crate::support::server::send(app.server.request("DELETE", "/logout").bearer_auth(&token))
            .await;
    assert_eq!(reply.pair(), (200, LOGGED_OUT));
    assert_eq!(app.client(&token).await, (401, INVALID.to_owned()));

    // No token anywhere: the client is told so.
    assert_eq!(
        app.server.call("DELETE", "/logout").await.pair(),
        (401, MISSING)
    );
    assert_eq!(
        app.server.json("DELETE", "/logout", "{}").await.pair(),
        (401, MISSING)
    );
}

async fn token_dies_at_logout_and_after_24_hours(framework: Framework) {
    let app = start(framework).await;
    let token = app.login().await;
    app.logout(&token).await;
    assert_eq!(app.client(&token).await, (401, INVALID.to_owned()));

    let token = app.login().await;
    app.clock.advance(DAY - Duration::from_secs(1));
    assert_eq!(app.client(&token).await, (200, CLIENT.to_owned()));
    app.clock.advance(Duration::from_secs(1));
    assert_eq!(app.client(&token).await, (401, INVALID.to_owned()));
}

async fn session_ttl_is_configurable(framework: Framework) {
    let app = start_with(
        framework,
        Duration::from_secs(5),
        Arc::new(MemoryTokenStore::new()),
    )
    .await;
    let token = app.login().await;
    app.clock.advance(Duration::from_secs(5));
    assert_eq!(app.client(&token).await, (401, INVALID.to_owned()));
}

async fn two_logins_are_independent_sessions(framework: Framework) {
    let app = start(framework).await;
    let first = app.login().await;
    let second = app.login().await;
    assert_ne!(first, second);
    app.logout(&first).await;
    assert_eq!(app.client(&first).await.0, 401);
    assert_eq!(app.client(&second).await, (200, CLIENT.to_owned()));
}

async fn forged_and_malformed_tokens_are_refused(framework: Framework) {
    let app = start(framework).await;
    let real = app.login().await;
    for token in [
        forged_token(),
        tampered(&real),
        real[..real.len() - 1].to_owned(),
        "2731c82cb6ac8ebe7ab4f1aec46436c19d589440".to_owned(),
        "..".to_owned(),
        "A".repeat(4000),
    ] {
        assert_eq!(
            app.client(&token).await,
            (401, INVALID.to_owned()),
            "{token}"
        );
    }
    // Forged tokens cannot log a real session out.
    assert_eq!(app.logout(&tampered(&real)).await.pair(), (200, LOGGED_OUT));
    assert_eq!(app.client(&real).await, (200, CLIENT.to_owned()));
}

async fn concurrent_logins_and_validations_all_succeed_with_unique_tokens(framework: Framework) {
    // 50 logins at once reach a server with several workers (actix-web) all at once: a hashing
    // queue long enough for all of them, as load shedding is not what this test is about
    // (`http_abuse` tests it).
    let app = Arc::new(
        start_configured(
            framework,
            DAY,
            Arc::new(MemoryTokenStore::new()),
            |builder| builder.max_queued_hashes(64),
        )
        .await,
    );
    // From 50 distinct client addresses: one address gets at most a few logins in flight.
    let logins: Vec<_> = (0..50)
        .map(|i| {
            let app = Arc::clone(&app);
            tokio::spawn(async move { app.login_from(client_ip(i)).await })
        })
        .collect();
    let mut tokens = HashSet::new();
    for login in logins {
        tokens.insert(login.await.expect("login task"));
    }
    assert_eq!(tokens.len(), 50);
    let checks: Vec<_> = tokens
        .iter()
        .cloned()
        .map(|token| {
            let app = Arc::clone(&app);
            tokio::spawn(async move { app.client(&token).await })
        })
        .collect();
    for check in checks {
        assert_eq!(
            check.await.expect("validate task"),
            (200, CLIENT.to_owned())
        );
    }
}

async fn bad_input_gets_a_json_answer_and_the_server_stays_up(framework: Framework) {
    let app = start(framework).await;
    let s = &app.server;
    for (body, status) in [
        ("{", 400),
        ("", 400),
        (r#"{"email":"test@increasecard.com"}"#, 422),
        (
            r#"{"email":"test@increasecard.com","password":["password"]}"#,
            422,
        ),
        ("42", 422),
    ] {
        assert_error_shape(&s.json("POST", "/login", body).await, status, "error");
    }
    // The document speaks JSON only.
    let form = crate::support::server::send(
        s.request("POST", "/login")
            .header("content-type", "application/x-www-form-urlencoded")
            .body("email=test%40increasecard.com&password=password"),
    )
    .await;
    assert_error_shape(&form, 415, "error");

    // Logout bodies: not JSON, not an object, a non-string token.
    assert_error_shape(&s.json("DELETE", "/logout", "{").await, 400, "error");
    assert_error_shape(&s.json("DELETE", "/logout", "[1]").await, 422, "error");
    assert_error_shape(
        &s.json("DELETE", "/logout", r#"{"auth_token":5}"#).await,
        422,
        "error",
    );
    let plain = crate::support::server::send(
        s.request("DELETE", "/logout")
            .header("content-type", "text/plain")
            .body("token"),
    )
    .await;
    assert_error_shape(&plain, 415, "error");

    // Over the body limit: 413; a long password under it: refused by the core before hashing.
    let huge = format!(r#"{{"auth_token":"{}"}}"#, "x".repeat(app::BODY_LIMIT));
    assert_error_shape(&s.json("DELETE", "/logout", &huge).await, 413, "error");
    let huge = format!(
        r#"{{"email":"a@b.c","password":"{}"}}"#,
        "x".repeat(app::BODY_LIMIT)
    );
    assert_error_shape(&s.json("POST", "/login", &huge).await, 413, "error");
    let long = format!(
        r#"{{"email":"test@increasecard.com","password":"{}"}}"#,
        "x".repeat(keycard::MAX_PASSWORD_LEN + 1)
    );
    assert_eq!(
        s.json("POST", "/login", &long).await.pair(),
        (
            400,
            r#"{"error":"password is too long (maximum is 1024 bytes)"}"#
        )
    );
    let long_email = format!(
        r#"{{"email":"{}@x.y","password":"password"}}"#,
        "e".repeat(keycard::MAX_EMAIL_LEN)
    );
    assert_eq!(
        s.json("POST", "/login", &long_email).await.pair(),
        (
            400,
            r#"{"error":"email is too long (maximum is 320 bytes)"}"#
        )
    );

    // Unknown routes and wrong methods.
    assert_eq!(
        s.call("GET", "/").await.pair(),
        (404, r#"{"error":"Not found"}"#)
    );
    assert_eq!(
        s.call("GET", "/login").await.pair(),
        (405, r#"{"error":"Method not allowed"}"#)
    );
    assert_eq!(
        s.call("POST", "/logout").await.pair(),
        (405, r#"{"error":"Method not allowed"}"#)
    );

    // Still up and serving.
    let token = app.login().await;
    assert_eq!(app.client(&token).await, (200, CLIENT.to_owned()));
}

async fn store_down_is_503_without_detail(framework: Framework) {
    let app = start_with(framework, DAY, Arc::new(DownTokenStore)).await;
    let unavailable = r#"{"error":"Service unavailable, try again later"}"#;
    assert_eq!(
        app.server.json("POST", "/login", LOGIN_BODY).await.pair(),
        (503, unavailable)
    );
    let token = forged_token();
    assert_eq!(app.client(&token).await, (503, unavailable.to_owned()));
    assert_eq!(app.logout(&token).await.pair(), (503, unavailable));
}

async fn repeated_failures_are_throttled_with_retry_after(framework: Framework) {
    let app = start(framework).await;
    let wrong = r#"{"email":"test@increasecard.com","password":"notpassword"}"#;
    for _ in 0..10 {
        assert_eq!(app.server.json("POST", "/login", wrong).await.status, 401);
    }
    let reply = app.server.json("POST", "/login", LOGIN_BODY).await;
    assert_eq!(
        reply.pair(),
        (
            429,
            r#"{"error":"Too many login attempts, try again in 900 seconds"}"#
        )
    );
    assert_eq!(reply.header("retry-after"), Some("900"));
    app.clock.advance(Duration::from_secs(900));
    app.login().await;
}

for_each_framework!(
    document_login_success,
    document_login_invalid_combination,
    document_logout_and_its_idempotence,
    client_takes_auth_token_or_bearer,
    logout_takes_query_or_bearer_too,
    token_dies_at_logout_and_after_24_hours,
    session_ttl_is_configurable,
    two_logins_are_independent_sessions,
    forged_and_malformed_tokens_are_refused,
    concurrent_logins_and_validations_all_succeed_with_unique_tokens,
    bad_input_gets_a_json_answer_and_the_server_stays_up,
    store_down_is_503_without_detail,
    repeated_failures_are_throttled_with_retry_after,
);
