//! The `accounts_api` example over real HTTP on a loopback port: every route and error, each
//! authenticated route both with a Bearer token and with the session cookie, and a cross-site
//! `POST` refused with the cookie but allowed with a Bearer token.

use std::sync::Arc;
use std::time::Duration;

use crate::support::server::{Reply, Server};
use keycard::http::{SessionCookie, TrustedProxies};
use keycard::throttle::{Limit, ThrottleLimits};
use keycard::{Argon2Hasher, MemoryThrottle, MemoryTokenStore, MemoryUserStore, UserRecord};
use serde_json::{json, Value};

const ANN: &str = "ann@example.com";
const ANN_PASSWORD: &str = "correct horse battery staple";
const BOB: &str = "bob@example.com";
const BOB_PASSWORD: &str = "a different long passphrase";

/// How a request proves who it is.
#[derive(Debug, Clone, Copy)]
enum Via {
    /// `Authorization: Bearer`.
    Bearer,
    /// The `__Host-session` cookie, from a page of the same origin.
    Cookie,
}

const BOTH: [Via; 2] = [Via::Bearer, Via::Cookie];

/// A logged-in client: the token and the cookie login set.
#[derive(Debug, Clone)]
struct Login {
    token: String,
    cookie: String,
}

struct App {
    server: Server,
}

/// The app over memory stores, with a fast (test-only) hasher and at most 3 failed password
/// checks per account and address.
async fn start() -> App {
    start_with_clock(keycard::ManualClock::new(time::OffsetDateTime::now_utc())).await
}

/// [`start`] on a clock the test moves.
async fn start_with_clock(clock: keycard::ManualClock) -> App {
    let users = Arc::new(MemoryUserStore::<UserRecord>::new());
    let limits = ThrottleLimits::default().per_account_ip(Limit::new(3, Duration::from_secs(60)));
    let day = Duration::from_secs(24 * 60 * 60);
    let auth = crate::app::authenticator(users.clone(), Arc::new(MemoryTokenStore::new()), day)
        .password_hasher(Argon2Hasher::insecure_for_tests())
        .throttle(MemoryThrottle::new(limits))
        .clock(clock)
        .build();
    let accounts =
        crate::app::Accounts::new(auth, SessionCookie::default(), TrustedProxies::none());
    App {
        server: Server::start(crate::app::router(accounts)).await,
    }
}

impl App {
    fn request(
        &self,
        method: &str,
        path: &str,
        via: Via,
        login: &Login,
    ) -> reqwest::RequestBuilder {
        let request = self.server.request(method, path);
        match via {
            Via::Bearer => request.bearer_auth(&login.token),
            Via::Cookie => request
                .header("cookie", &login.cookie)
                .header("sec-fetch-site", "same-origin"),
        }
    }

    async fn call(&self, method: &str, path: &str, via: Via, login: &Login) -> Reply {
        crate::support::server::send(self.request(method, path, via, login)).await
    }

    async fn register(&self, email: &str, password: &str) -> Reply {
        let body = json!({ "email": email, "password": password }).to_string();
        self.server.json("POST", "/register", &body).await
    }

    async fn login_with(&self, email: &str, password: &str, remember: bool) -> Reply {
        let body = json!({ "email": email, "password": password, "remember_me": remember });
        self.server.json("POST", "/login", &body.to_string()).await
    }

    async fn login(&self, email: &str, password: &str) -> Login {
        let reply = self.login_with(email, password, false).await;
        assert_eq!(reply.status, 200, "{reply:?}");
        let token = reply.json()["token"].as_str().expect("a token").to_owned();
        let set_cookie = reply.header("set-cookie").expect("a session cookie");
        let cookie = set_cookie.split(';').next().expect("name=value").to_owned();
        assert_eq!(cookie, format!("__Host-session={token}"));
        Login { token, cookie }
    }

    /// Ann and Bob, registered.
    async fn with_users(self) -> Self {
        for (email, password) in [(ANN, ANN_PASSWORD), (BOB, BOB_PASSWORD)] {
            assert_eq!(self.register(email, password).await.status, 201);
        }
        self
    }
}

/// A problem details answer with this status and code.
#[track_caller]
fn assert_problem(reply: &Reply, status: u16, code: &str) -> Value {
    assert_eq!(reply.status, status, "{reply:?}");
    assert_eq!(
        reply.header("content-type"),
        Some("application/problem+json")
    );
    assert_eq!(reply.header("cache-control"), Some("no-store"));
    let body = reply.json();
    assert_eq!(body["code"], code, "{body}");
    body
}

#[tokio::test]
async fn register_creates_a_user_refuses_weak_passwords_and_taken_emails() {
    let app = start().await;
    let reply = app.register("  Ann@Example.com ", ANN_PASSWORD).await;
    assert_eq!(reply.status, 201, "{reply:?}");
    let body = reply.json();
    // The address is kept as typed (trimmed); accounts are compared by its canonical form.
    assert_eq!(body["user"]["email"], "Ann@Example.com");
    assert!(body["user"]["id"].as_str().is_some_and(|id| !id.is_empty()));
    assert_eq!(body.as_object().map(|o| o.len()), Some(1));

    let taken = app.register(ANN, "another long passphrase").await;
    assert_problem(&taken, 409, "email_taken");

    // What a review stored before: an empty, blank, address-less or huge email.
    let huge = format!("{}@example.com", "a".repeat(15_000));
    for (email, rule) in [
        ("", "empty"),
        ("   ", "empty"),
        ("not-an-email", "not_one_at"),
        (huge.as_str(), "too_long"),
        ("ann@localhost", "implausible_domain"),
    ] {
        let reply = app.register(email, ANN_PASSWORD).await;
        assert_eq!(
            assert_problem(&reply, 422, "invalid_email")["email_rule"],
            rule,
            "{email:.40}"
        );
    }

    let weak = app.register(BOB, "bob").await;
    let problem = assert_problem(&weak, 422, "weak_password");
    assert_eq!(
        problem["failed_rules"],
        json!(["too_short", "contains_email"])
    );
    let common = app.register(BOB, "password123").await;
    assert_eq!(
        assert_problem(&common, 422, "weak_password")["failed_rules"],
        json!(["common"])
    );

    for (body, status) in [("{", 400), (r#"{"email":"x@y.z"}"#, 422), ("[]", 422)] {
        let reply = app.server.json("POST", "/register", body).await;
        assert_eq!(reply.status, status, "{body}: {reply:?}");
    }
    // The weak and malformed registrations created nobody.
    assert_eq!(app.login_with(BOB, "bob", false).await.status, 401);
}

#[tokio::test]
async fn login_answers_token_expiry_and_cookie_and_remember_me_lasts_longer() {
    let app = start().await.with_users().await;
    let reply = app.login_with(ANN, ANN_PASSWORD, false).await;
    assert_eq!(reply.status, 200, "{reply:?}");
    let body = reply.json();
    let object = body.as_object().expect("an object");
    assert_eq!(object.len(), 2, "{body}");
    let token = body["token"].as_str().expect("a token");
    let expires_at = body["expires_at"].as_str().expect("an expiry");
    let expires_at =
        time::OffsetDateTime::parse(expires_at, &time::format_description::well_known::Rfc3339)
            .expect("RFC 3339");
    let left = expires_at - time::OffsetDateTime::now_utc();
    assert!(
        left > time::Duration::hours(23) && left <= time::Duration::hours(24),
        "{left}"
    );
    assert_eq!(
        reply.header("set-cookie"),
        Some(format!("__Host-session={token}; HttpOnly; SameSite=Lax; Secure; Path=/").as_str())
    );

    let remembered = app.login_with(ANN, ANN_PASSWORD, true).await;
    let set_cookie = remembered.header("set-cookie").expect("a cookie");
    assert!(set_cookie.ends_with("; Max-Age=2592000"), "{set_cookie}");

    let wrong = app.login_with(ANN, "not the password", false).await;
    assert_problem(&wrong, 401, "invalid_credentials");
    assert_eq!(wrong.header("www-authenticate"), Some("Bearer"));
    assert_eq!(wrong.header("set-cookie"), None);
}

#[tokio::test]
async fn me_and_sessions_show_public_views_only() {
    let app = start().await.with_users().await;
    for via in BOTH {
        let laptop = app.login(ANN, ANN_PASSWORD).await;
        let phone = app.login(ANN, ANN_PASSWORD).await;

        let me = app.call("GET", "/me", via, &laptop).await;
        assert_eq!(me.status, 200, "{via:?} {me:?}");
        let body = me.json();
        assert_eq!(body["user"]["email"], ANN);
        assert_eq!(body["session"]["current"], true);
        assert_eq!(
            body["session"]["id"],
            laptop.token.split('.').next().expect("id")
        );
        for secret in ["secret_hash", "user_id"] {
            assert!(!me.body.contains(secret), "{secret} in {}", me.body);
        }

        let list = app.call("GET", "/sessions", via, &phone).await;
        assert_eq!(list.status, 200, "{via:?} {list:?}");
        let sessions = list.json()["sessions"].as_array().expect("a list").clone();
        assert!(sessions.len() >= 2, "{sessions:?}");
        let current: Vec<&Value> = sessions.iter().filter(|s| s["current"] == true).collect();
        assert_eq!(current.len(), 1);
        assert_eq!(current[0]["id"], phone.token.split('.').next().expect("id"));
        assert!(!list.body.contains("secret_hash") && !list.body.contains(&phone.token));
    }
    // Without a token: a bare Bearer challenge.
    let reply = app.server.call("GET", "/me").await;
    assert_problem(&reply, 401, "missing_token");
    assert_eq!(reply.header("www-authenticate"), Some("Bearer"));
}

#[tokio::test]
async fn deleting_a_session_works_for_mine_only() {
    let app = start().await.with_users().await;
    for via in BOTH {
        let me = app.login(ANN, ANN_PASSWORD).await;
        let my_other = app.login(ANN, ANN_PASSWORD).await;
        let bob = app.login(BOB, BOB_PASSWORD).await;
        let id_of = |login: &Login| login.token.split('.').next().expect("id").to_owned();

        let path = format!("/sessions/{}", id_of(&bob));
        let reply = app.call("DELETE", &path, via, &me).await;
        assert_problem(&reply, 404, "not_found");
        assert_eq!(app.call("GET", "/me", Via::Bearer, &bob).await.status, 200);

        let path = format!("/sessions/{}", id_of(&my_other));
        let reply = app.call("DELETE", &path, via, &me).await;
        assert_eq!((reply.status, reply.body.as_str()), (204, ""), "{via:?}");
        assert_eq!(
            app.call("GET", "/me", Via::Bearer, &my_other).await.status,
            401
        );
        assert_eq!(app.call("DELETE", &path, via, &me).await.status, 404);
        assert_eq!(
            app.call("DELETE", "/sessions/not-an-id", via, &me)
                .await
                .status,
            404
        );
        assert_eq!(app.call("GET", "/me", via, &me).await.status, 200);
    }
}

#[tokio::test]
async fn logout_and_logout_others() {
    let app = start().await.with_users().await;
    for via in BOTH {
        let me = app.login(ANN, ANN_PASSWORD).await;
        let others = [
            app.login(ANN, ANN_PASSWORD).await,
            app.login(ANN, ANN_PASSWORD).await,
        ];
        let bob = app.login(BOB, BOB_PASSWORD).await;

        let reply = app.call("POST", "/logout-others", via, &me).await;
        assert_eq!(reply.status, 200, "{via:?} {reply:?}");
        assert!(
            reply.json()["revoked"].as_u64().is_some_and(|n| n >= 2),
            "{reply:?}"
        );
        for other in &others {
            assert_eq!(app.call("GET", "/me", Via::Bearer, other).await.status, 401);
        }
        assert_eq!(app.call("GET", "/me", via, &me).await.status, 200);
        assert_eq!(app.call("GET", "/me", Via::Bearer, &bob).await.status, 200);

        let reply = app.call("POST", "/logout", via, &me).await;
        assert_eq!((reply.status, reply.body.as_str()), (204, ""), "{via:?}");
        assert_eq!(
            reply.header("set-cookie"),
            Some("__Host-session=; HttpOnly; SameSite=Lax; Secure; Path=/; Max-Age=0")
        );
        assert_eq!(app.call("GET", "/me", via, &me).await.status, 401);
    }
}

#[tokio::test]
async fn changing_the_password_rotates_this_session_and_ends_the_others() {
    let app = start().await.with_users().await;
    let mut password = ANN_PASSWORD.to_owned();
    for (round, via) in BOTH.into_iter().enumerate() {
        let me = app.login(ANN, &password).await;
        let other = app.login(ANN, &password).await;
        let change = |current: &str, new: &str| {
            let body = json!({ "current_password": current, "new_password": new }).to_string();
            let request = app
                .request("POST", "/password", via, &me)
                .header("content-type", "application/json")
                .body(body);
            crate::support::server::send(request)
        };
        // A typo is not a dead session: 403 without a challenge, so a client keeps its token.
        let wrong = change("not my password", "a fine new passphrase").await;
        assert_problem(&wrong, 403, "invalid_credentials");
        assert_eq!(wrong.header("www-authenticate"), None);
        let weak = change(&password, "short").await;
        assert_problem(&weak, 422, "weak_password");
        let common = change(&password, "P@ssw0rd").await;
        assert_problem(&common, 422, "weak_password");

        let new_password = format!("a brand new passphrase {round}");
        let reply = change(&password, &new_password).await;
        assert_eq!(reply.status, 200, "{via:?} {reply:?}");
        let body = reply.json();
        let token = body["token"].as_str().expect("a new token").to_owned();
        assert!(body["expires_at"].is_string(), "{body}");
        assert_ne!(token, me.token);
        let set_cookie = reply.header("set-cookie").expect("the cookie, renewed");
        assert!(
            set_cookie.starts_with(&format!("__Host-session={token};")),
            "{set_cookie}"
        );
        assert_eq!(reply.header("cache-control"), Some("no-store"));
        let fresh = Login {
            cookie: format!("__Host-session={token}"),
            token,
        };
        assert_eq!(
            app.call("GET", "/me", via, &me).await.status,
            401,
            "the old token ended: it may be the stolen one"
        );
        assert_eq!(app.call("GET", "/me", via, &fresh).await.status, 200);
        assert_eq!(
            app.call("GET", "/me", Via::Bearer, &other).await.status,
            401
        );
        assert_eq!(app.login_with(ANN, &password, false).await.status, 401);
        password = new_password;
        app.login(ANN, &password).await;
    }
}

#[tokio::test]
async fn wrong_current_passwords_are_throttled_like_logins() {
    let app = start().await.with_users().await;
    let me = app.login(ANN, ANN_PASSWORD).await;
    let body = json!({ "current_password": "guess", "new_password": "a fine new passphrase" });
    let mut statuses = Vec::new();
    for _ in 0..4 {
        let request = app
            .request("POST", "/password", Via::Bearer, &me)
            .header("content-type", "application/json")
            .body(body.to_string());
        statuses.push(crate::support::server::send(request).await.status);
    }
    assert_eq!(statuses, [403, 403, 403, 429]);
    // The login of the same account from the same address is held too.
    assert_eq!(app.login_with(ANN, ANN_PASSWORD, false).await.status, 429);
}

#[tokio::test]
async fn a_cross_site_post_with_the_cookie_is_refused_and_with_bearer_allowed() {
    let app = start().await.with_users().await;
    let me = app.login(ANN, ANN_PASSWORD).await;
    let cross_site = |request: reqwest::RequestBuilder| {
        crate::support::server::send(request.header("sec-fetch-site", "cross-site"))
    };
    let by_cookie = app
        .server
        .request("POST", "/logout-others")
        .header("cookie", &me.cookie);
    let reply = cross_site(by_cookie).await;
    assert_problem(&reply, 403, "cross_site_request");
    let no_evidence = app
        .server
        .request("POST", "/logout")
        .header("cookie", &me.cookie);
    assert_problem(
        &crate::support::server::send(no_evidence).await,
        403,
        "cross_site_request",
    );
    assert_eq!(
        app.call("GET", "/me", Via::Cookie, &me).await.status,
        200,
        "not logged out"
    );

    let by_bearer = app
        .server
        .request("POST", "/logout-others")
        .bearer_auth(&me.token);
    let reply = cross_site(by_bearer).await;
    assert_eq!(reply.status, 200, "{reply:?}");

    // A login started by another site is refused too (login CSRF).
    let body = json!({ "email": ANN, "password": ANN_PASSWORD }).to_string();
    let login = app
        .server
        .request("POST", "/login")
        .header("content-type", "application/json")
        .body(body);
    assert_problem(&cross_site(login).await, 403, "cross_site_request");
}

#[tokio::test]
async fn a_sensitive_action_needs_a_recent_password_and_reauthenticating_rotates_the_token() {
    let clock = keycard::ManualClock::new(time::OffsetDateTime::now_utc());
    let app = start_with_clock(clock.clone()).await.with_users().await;
    for via in BOTH {
        let me = app.login(ANN, ANN_PASSWORD).await;
        clock.advance(crate::app::RECENT_AUTH + Duration::from_secs(1));

        let reply = app.call("POST", "/logout-others", via, &me).await;
        assert_problem(&reply, 401, "reauthentication_required");
        let challenge = reply.header("www-authenticate").expect("a challenge");
        assert!(
            challenge.starts_with(r#"Bearer error="insufficient_user_authentication""#)
                && challenge.ends_with("max_age=300"),
            "{challenge}"
        );

        let reauth = |password: &str| {
            let body = json!({ "password": password }).to_string();
            let request = app
                .request("POST", "/reauthenticate", via, &me)
                .header("content-type", "application/json")
                .body(body);
            crate::support::server::send(request)
        };
        assert_problem(&reauth("not my password").await, 403, "invalid_credentials");
        let reply = reauth(ANN_PASSWORD).await;
        assert_eq!(reply.status, 200, "{via:?} {reply:?}");
        let token = reply.json()["token"].as_str().expect("a token").to_owned();
        assert_ne!(token, me.token);
        let set_cookie = reply.header("set-cookie").expect("the cookie, renewed");
        assert!(
            set_cookie.starts_with(&format!("__Host-session={token};")),
            "{set_cookie}"
        );
        let fresh = Login {
            cookie: format!("__Host-session={token}"),
            token,
        };
        assert_eq!(
            app.call("GET", "/me", via, &me).await.status,
            401,
            "the old token ended"
        );
        let reply = app.call("POST", "/logout-others", via, &fresh).await;
        assert_eq!(reply.status, 200, "{via:?} {reply:?}");
    }
}
