//! The budgets API example (the sessions document) over real HTTP on a loopback port: every
//! request and response of the document byte for byte, then expiry, independent sessions,
//! forged tokens, concurrency, bad input, a store that is down and throttling.
//!
//! Every test body takes a [`Framework`] and runs against that framework's app
//! (`budgets_api`'s axum routes, `budgets_api_actix`'s actix-web routes with two workers): the
//! macro at the bottom runs each body on every framework enabled, as `axum::NAME` and
//! `actix::NAME`.

use crate::budgets::app;

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
const NOT_CHECKED_IN: &str = r#"{"message":"You are not checked in"}"#;
const LOGIN_BODY: &str = r#"{"email":"bondhansarker100@gmail.com","password":"111111"}"#;

struct App {
    server: Server,
    clock: ManualClock,
    users: Arc<MemoryUserStore<UserRecord>>,
    auth: app::Auth,
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
    let api = app::Api::new(auth.clone(), TrustedProxies::none());
    App {
        server: serve(framework, api).await,
        clock,
        users,
        auth,
    }
}

/// Serves `api` with `framework`'s routes: the same ones the example binaries serve.
async fn serve(framework: Framework, api: app::Api) -> Server {
    match framework {
        #[cfg(feature = "axum")]
        Framework::Axum => Server::start(crate::budgets::axum_routes::router(api)).await,
        #[cfg(feature = "actix-web")]
        Framework::Actix => Server::start_actix(crate::budgets::actix_routes::configure(api)),
    }
}

async fn start(framework: Framework) -> App {
    start_with(framework, DAY, Arc::new(MemoryTokenStore::new())).await
}

impl App {
    async fn login(&self) -> String {
        Self::token_of(self.server.json("POST", "/api/sessions", LOGIN_BODY).await)
    }

    async fn login_from(&self, source: IpAddr) -> String {
        Self::token_of(
            self.server
                .json_from(source, "POST", "/api/sessions", LOGIN_BODY)
                .await,
        )
    }

    /// The token of a successful login reply, checked against the document's body.
    fn token_of(reply: Reply) -> String {
        assert_eq!(reply.status, 200, "{reply:?}");
        let token = reply.json()["token"]
            .as_str()
            .expect("a token string")
            .to_owned();
        assert_eq!(reply.body, format!(r#"{{"token":"{token}"}}"#));
        token
    }

    async fn budgets(&self, token: &str) -> (u16, String) {
        let reply = self
            .server
            .call("GET", &format!("/api/budgets?token={token}"))
            .await;
        (reply.status, reply.body)
    }
}

const BUDGETS: &str = concat!(
    r#"{"budgets":[{"amount":300.0,"category":"Groceries","id":1,"month":3,"year":2020},"#,
    r#"{"amount":120.0,"category":"Transport","id":2,"month":3,"year":2020}]}"#
);

/// The document's payload, as written (indented with a tab).
const DOCUMENT_PAYLOAD: &str =
    "    {\n    \t\"email\": \"bondhansarker100@gmail.com\",\n    \t\"password\": \"111111\"\n    }";

async fn document_create_session_success(framework: Framework) {
    let app = start(framework).await;
    let reply = app
        .server
        .json("POST", "/api/sessions", DOCUMENT_PAYLOAD)
        .await;
    assert_eq!(reply.status, 200);
    let token = reply.json()["token"].as_str().expect("token").to_owned();
    assert_eq!(reply.body, format!(r#"{{"token":"{token}"}}"#));
    assert_eq!(token.len(), TOKEN_LEN);
    assert_eq!(reply.header("content-type"), Some("application/json"));
    assert_eq!(reply.header("cache-control"), Some("no-store"));
}

async fn document_create_session_errors(framework: Framework) {
    let app = start(framework).await;
    let wrong = r#"{"email":"bondhansarker100@gmail.com","password":"222222"}"#;
    let reply = app.server.json("POST", "/api/sessions", wrong).await;
    assert_eq!(
        reply.pair(),
        (422, r#"{"message":"Email or password is invalid"}"#)
    );
    let unknown = r#"{"email":"nobody@example.com","password":"111111"}"#;
    let reply = app.server.json("POST", "/api/sessions", unknown).await;
    assert_eq!(reply.pair(), (422, r#"{"message":"User not found"}"#));
}

async fn document_sign_out(framework: Framework) {
    let app = start(framework).await;
    let token = app.login().await;
    let reply = app
        .server
        .call("PATCH", &format!("/api/sessions/sign_out?token={token}"))
        .await;
    assert_eq!(reply.status, 200);
    assert_eq!(
        reply.body,
        format!(r#"{{"message":"{token} has been destroyed successfully"}}"#)
    );

    // The document's own token names no session here.
    let reply = app
        .server
        .call("PATCH", "/api/sessions/sign_out?token=bzcU7GNsVLT6-mxp7MyT")
        .await;
    assert_eq!(reply.pair(), (422, NOT_CHECKED_IN));
    // Signing out twice, or without a token, is "not checked in".
    let again = app
        .server
        .call("PATCH", &format!("/api/sessions/sign_out?token={token}"))
        .await;
    assert_eq!(again.pair(), (422, NOT_CHECKED_IN));
    let none = app.server.call("PATCH", "/api/sessions/sign_out").await;
    assert_eq!(none.pair(), (422, NOT_CHECKED_IN));
}

async fn document_resources_take_the_token_parameter(framework: Framework) {
    let app = start(framework).await;
    let token = app.login().await;
    assert_eq!(app.budgets(&token).await, (200, BUDGETS.to_owned()));

    let reply = app
        .server
        .call("GET", &format!("/api/expenses?token={token}"))
        .await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.json()["expenses"].as_array().map(Vec::len), Some(3));

    let path = format!("/api/budgets/show_all_expenses.json?token={token}&month=3&year=2020");
    let reply = app.server.call("GET", &path).await;
    assert_eq!(
        reply.pair(),
        (
            200,
            concat!(
                r#"{"expenses":[{"amount":42.5,"budget_id":1,"day":2,"description":"Market","id":1,"month":3,"year":2020},"#,
                r#"{"amount":15.0,"budget_id":2,"day":9,"description":"Bus pass","id":2,"month":3,"year":2020}],"#,
                r#""month":3,"total":57.5,"year":2020}"#
            )
        )
    );

    // The document's example tokens name no session here.
    for path in [
        "/api/budgets?token=U4fXGfN2vNz1rvUzY6Nn",
        "/api/expenses?token=U4fXGfN2vNz1rvUzY6Nn",
        "/api/budgets/show_all_expenses.json?token=U4fXGfN2vNz1rvUzY6Nn&month=3&year=2020",
        "/api/budgets",
    ] {
        let reply = app.server.call("GET", path).await;
        assert_eq!(reply.pair(), (422, NOT_CHECKED_IN), "{path}");
    }
}

async fn bearer_header_works_too(framework: Framework) {
    let app = start(framework).await;
    let token = app.login().await;
    let reply = crate::support::server::send(
        app.server
            .request("GET", "/api/budgets")
            .bearer_auth(&token),
    )
    .await;
    assert_eq!(reply.pair(), (200, BUDGETS));
    let reply = crate::support::server::send(
        app.server
            .request("PATCH", "/api/sessions/sign_out")
            .bearer_auth(&token),
    )
    .await;
    assert_eq!(reply.status, 200);
    assert_eq!(app.budgets(&token).await.0, 422);
}

async fn form_encoded_login_works(framework: Framework) {
    let app = start(framework).await;
    let reply = crate::support::server::send(
        app.server
            .request("POST", "/api/sessions")
            .header("content-type", "application/x-www-form-urlencoded")
            .body("email=bondhansarker100%40gmail.com&password=111111"),
    )
    .await;
    assert_eq!(reply.status, 200, "{reply:?}");
    let token = reply.json()["token"].as_str().expect("token").to_owned();
    assert_eq!(app.budgets(&token).await, (200, BUDGETS.to_owned()));
}

async fn demo_data_is_per_user(framework: Framework) {
    let app = start(framework).await;
    let hash = app.auth.hash_password("other-pass").await.expect("hash");
    app.users
        .insert(UserRecord::new(2_i64, "other@example.com", hash))
        .expect("a new user");
    let reply = app
        .server
        .json(
            "POST",
            "/api/sessions",
            r#"{"email":"other@example.com","password":"other-pass"}"#,
        )
        .await;
    let token = reply.json()["token"].as_str().expect("token").to_owned();
    assert_eq!(
        app.budgets(&token).await,
        (200, r#"{"budgets":[]}"#.to_owned())
    );
}

async fn token_dies_at_logout_and_at_ttl_expiry(framework: Framework) {
    let ttl = Duration::from_secs(600);
    let app = start_with(framework, ttl, Arc::new(MemoryTokenStore::new())).await;
    let token = app.login().await;
    app.server
        .call("PATCH", &format!("/api/sessions/sign_out?token={token}"))
        .await;
    assert_eq!(app.budgets(&token).await, (422, NOT_CHECKED_IN.to_owned()));

    let token = app.login().await;
    app.clock.advance(ttl - Duration::from_secs(1));
    assert_eq!(app.budgets(&token).await.0, 200);
    app.clock.advance(Duration::from_secs(1));
    assert_eq!(app.budgets(&token).await, (422, NOT_CHECKED_IN.to_owned()));
}

async fn two_logins_are_independent_sessions(framework: Framework) {
    let app = start(framework).await;
    let first = app.login().await;
    let second = app.login().await;
    assert_ne!(first, second);
    app.server
        .call("PATCH", &format!("/api/sessions/sign_out?token={first}"))
        .await;
    assert_eq!(app.budgets(&first).await.0, 422);
    assert_eq!(app.budgets(&second).await, (200, BUDGETS.to_owned()));
}

async fn forged_and_malformed_tokens_are_refused(framework: Framework) {
    let app = start(framework).await;
    let real = app.login().await;
    let long = "A".repeat(4000);
    for token in [
        forged_token(),
        tampered(&real),
        real[..real.len() - 1].to_owned(),
        format!("{real}x"),
        "abc".to_owned(),
        "%00%FF".to_owned(),
        long,
    ] {
        assert_eq!(
            app.budgets(&token).await,
            (422, NOT_CHECKED_IN.to_owned()),
            "{token}"
        );
    }
    // The session id alone (public) is not a token.
    let id = real.split_once('.').expect("id.secret").0;
    assert_eq!(app.budgets(id).await.0, 422);
    assert_eq!(app.budgets(&real).await.0, 200);
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
            tokio::spawn(async move { app.budgets(&token).await })
        })
        .collect();
    for check in checks {
        assert_eq!(
            check.await.expect("validate task"),
            (200, BUDGETS.to_owned())
        );
    }
}

async fn bad_input_gets_a_json_answer_and_the_server_stays_up(framework: Framework) {
    let app = start(framework).await;
    let s = &app.server;
    for (body, status) in [
        ("{", 400),
        ("not json", 400),
        ("", 400),
        (r#"{"email":"bondhansarker100@gmail.com"}"#, 422),
        (r#"{"email":1,"password":"111111"}"#, 422),
        (r#"["bondhansarker100@gmail.com","111111"]"#, 422),
        ("null", 422),
    ] {
        let reply = s.json("POST", "/api/sessions", body).await;
        assert_error_shape(&reply, status, "message");
    }
    let invalid_utf8 = crate::support::server::send(
        s.request("POST", "/api/sessions")
            .header("content-type", "application/json")
            .body(vec![b'{', b'"', 0xff, 0xfe, b'"', b'}']),
    )
    .await;
    assert_error_shape(&invalid_utf8, 400, "message");

    // Wrong or missing content type.
    let plain = crate::support::server::send(
        s.request("POST", "/api/sessions")
            .header("content-type", "text/plain")
            .body(LOGIN_BODY),
    )
    .await;
    assert_error_shape(&plain, 415, "message");
    let untyped =
        crate::support::server::send(s.request("POST", "/api/sessions").body(LOGIN_BODY)).await;
    assert_error_shape(&untyped, 415, "message");
    let bad_form = crate::support::server::send(
        s.request("POST", "/api/sessions")
            .header("content-type", "application/x-www-form-urlencoded")
            .body("email=x"),
    )
    .await;
    assert_error_shape(&bad_form, 422, "message");

    // Over the body limit: 413. A long password under it: refused by the core, before hashing.
    let huge = format!(
        r#"{{"email":"a@b.c","password":"{}"}}"#,
        "x".repeat(app::BODY_LIMIT)
    );
    assert_error_shape(
        &s.json("POST", "/api/sessions", &huge).await,
        413,
        "message",
    );
    let long = format!(
        r#"{{"email":"bondhansarker100@gmail.com","password":"{}"}}"#,
        "x".repeat(keycard::MAX_PASSWORD_LEN + 1)
    );
    assert_eq!(
        s.json("POST", "/api/sessions", &long).await.pair(),
        (
            422,
            r#"{"message":"Password is too long (maximum is 1024 bytes)"}"#
        )
    );

    // Unknown routes and wrong methods.
    assert_eq!(
        s.call("GET", "/api/nothing").await.pair(),
        (404, r#"{"message":"Not found"}"#)
    );
    assert_eq!(
        s.call("GET", "/api/sessions").await.pair(),
        (405, r#"{"message":"Method not allowed"}"#)
    );
    assert_eq!(
        s.call("DELETE", "/api/budgets").await.pair(),
        (405, r#"{"message":"Method not allowed"}"#)
    );

    // Bad query parameters on a protected resource, with a valid token.
    let token = app.login().await;
    for (query, status) in [
        ("month=13&year=2020", 422),
        ("month=abc&year=2020", 400),
        ("year=2020", 400),
        ("month=&year=", 400),
    ] {
        let path = format!("/api/budgets/show_all_expenses.json?token={token}&{query}");
        assert_error_shape(&s.call("GET", &path).await, status, "message");
    }

    // Still up and serving.
    assert_eq!(app.budgets(&token).await, (200, BUDGETS.to_owned()));
}

async fn store_down_is_503_without_detail(framework: Framework) {
    let app = start_with(framework, DAY, Arc::new(DownTokenStore)).await;
    let unavailable = r#"{"message":"Service unavailable, try again later"}"#;
    let reply = app.server.json("POST", "/api/sessions", LOGIN_BODY).await;
    assert_eq!(reply.pair(), (503, unavailable));
    let token = forged_token();
    assert_eq!(app.budgets(&token).await, (503, unavailable.to_owned()));
    let reply = app
        .server
        .call("PATCH", &format!("/api/sessions/sign_out?token={token}"))
        .await;
    assert_eq!(reply.pair(), (503, unavailable));
}

async fn repeated_failures_are_throttled_with_retry_after(framework: Framework) {
    let app = start(framework).await;
    let wrong = r#"{"email":"bondhansarker100@gmail.com","password":"nope"}"#;
    for _ in 0..10 {
        assert_eq!(
            app.server.json("POST", "/api/sessions", wrong).await.status,
            422
        );
    }
    let reply = app.server.json("POST", "/api/sessions", LOGIN_BODY).await;
    assert_eq!(
        reply.pair(),
        (
            429,
            r#"{"message":"Too many login attempts, try again in 900 seconds"}"#
        )
    );
    assert_eq!(reply.header("retry-after"), Some("900"));
    app.clock.advance(Duration::from_secs(900));
    assert_eq!(
        app.server
            .json("POST", "/api/sessions", LOGIN_BODY)
            .await
            .status,
        200
    );
}

for_each_framework!(
    document_create_session_success,
    document_create_session_errors,
    document_sign_out,
    document_resources_take_the_token_parameter,
    bearer_header_works_too,
    form_encoded_login_works,
    demo_data_is_per_user,
    token_dies_at_logout_and_at_ttl_expiry,
    two_logins_are_independent_sessions,
    forged_and_malformed_tokens_are_refused,
    concurrent_logins_and_validations_all_succeed_with_unique_tokens,
    bad_input_gets_a_json_answer_and_the_server_stays_up,
    store_down_is_503_without_detail,
    repeated_failures_are_throttled_with_retry_after,
);
