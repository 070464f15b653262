//! API tokens over real HTTP on loopback ports: the `accounts_api` example on axum (create,
//! use, scopes refused with the RFC 6750 challenge, no escalation, a listing without
//! secrets, revocation, expiry on a manual clock, the new client address recorded, and
//! revocation seen by a second instance behind the validation cache), and the same checks
//! through actix-web's `RequireScope` and `InteractiveSession` extractors and the tower
//! layer's `require_scope` and `interactive_only`.

#[cfg(feature = "actix-web")]
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use crate::support::server::{send, Reply, Server};
#[cfg(any(feature = "actix-web", all(feature = "tower", feature = "axum")))]
use keycard::api_tokens::{ApiTokens, NewApiToken};
use keycard::{Argon2Hasher, ManualClock, MemoryTokenStore, MemoryUserStore, UserRecord};
#[cfg(any(feature = "actix-web", all(feature = "tower", feature = "axum")))]
use keycard::{Authenticator, ClientInfo};
use serde_json::{json, Value};

const ANN: &str = "ann@example.com";
const ANN_PASSWORD: &str = "correct horse battery staple";
const BOB: &str = "bob@example.com";
const BOB_PASSWORD: &str = "a different long passphrase";

/// The challenge a token without `scope` gets (RFC 6750 §3.1), byte for byte.
fn challenge(scope: &str) -> String {
    format!(
        "Bearer error=\"insufficient_scope\", error_description=\"this token does not have the \
         scope `{scope}`; create a token that has it\", scope=\"{scope}\""
    )
}

/// `method path` with `Authorization: Bearer token` and, if any, a JSON body.
async fn call(
    server: &Server,
    method: &str,
    path: &str,
    token: &str,
    body: Option<Value>,
) -> Reply {
    let request = server.request(method, path).bearer_auth(token);
    let request = match body {
        Some(body) => request
            .header("content-type", "application/json")
            .body(body.to_string()),
        None => request,
    };
    send(request).await
}

/// A problem details answer with this status and code.
#[track_caller]
fn assert_problem(reply: &Reply, status: u16, code: &str) {
    assert_eq!(reply.status, status, "{reply:?}");
    assert_eq!(
        reply.header("content-type"),
        Some("application/problem+json"),
        "{reply:?}"
    );
    assert_eq!(reply.header("cache-control"), Some("no-store"));
    assert_eq!(reply.json()["code"], code, "{reply:?}");
}

/// 403 `insufficient_scope` for `scope`, with the exact challenge.
#[track_caller]
fn assert_scope_refused(reply: &Reply, scope: &str) {
    assert_problem(reply, 403, "insufficient_scope");
    assert_eq!(
        reply.header("www-authenticate"),
        Some(challenge(scope).as_str())
    );
    assert_eq!(reply.json()["scope"], scope);
}

/// Users Ann (id 1) and Bob (id 2), for the actix-web and tower apps.
#[cfg(any(feature = "actix-web", all(feature = "tower", feature = "axum")))]
type Users = Arc<MemoryUserStore<UserRecord>>;

#[cfg(any(feature = "actix-web", all(feature = "tower", feature = "axum")))]
/// An authenticator over memory stores with API tokens for `notes:read` and `notes:write`,
/// Ann and Bob in its user store.
async fn core_auth(clock: ManualClock) -> Authenticator<Users> {
    let users: Users = Arc::new(MemoryUserStore::new());
    let auth = Authenticator::builder(Arc::clone(&users), MemoryTokenStore::new())
        .password_hasher(Argon2Hasher::insecure_for_tests())
        .clock(clock)
        .api_tokens(ApiTokens::new(["notes:read", "notes:write"]).expect("valid scopes"))
        .build();
    for (id, email, password) in [(1_i64, ANN, ANN_PASSWORD), (2_i64, BOB, BOB_PASSWORD)] {
        let hash = auth.hash_password(password).await.expect("hash");
        users
            .insert(UserRecord::new(id, email, hash))
            .expect("a fresh store");
    }
    auth
}

#[cfg(any(feature = "actix-web", all(feature = "tower", feature = "axum")))]
/// Ann's login token and an API token of hers with `scopes`, made through the core.
async fn ann_tokens(auth: &Authenticator<Users>, scopes: &[&str]) -> (String, String) {
    let login = auth
        .login(ANN, ANN_PASSWORD, ClientInfo::none())
        .await
        .expect("login");
    let created = auth
        .create_api_token(
            &login.session,
            NewApiToken::new("script", scopes.iter().copied()),
        )
        .await
        .expect("an API token");
    (
        login.token.expose_secret().to_owned(),
        created.token.expose_secret().to_owned(),
    )
}

#[cfg(feature = "actix-web")]
/// The client address an API token was last used from, as stored.
async fn token_ip(auth: &Authenticator<Users>, token: &str) -> Option<IpAddr> {
    let session = auth.validate_session(token).await.expect("live");
    session.client.ip
}

#[cfg(feature = "axum")]
mod accounts_api {
    use super::*;
    use crate::support::server::client_ip;
    use keycard::http::{SessionCookie, TrustedProxies};
    use keycard::store::{CacheOptions, CachedTokenStore, LocalChannel};
    use keycard::TokenStore;

    /// The `accounts_api` app on a loopback port, with the authenticator behind it.
    struct App {
        server: Server,
        auth: crate::app::Auth,
    }

    type SharedUsers = Arc<MemoryUserStore<UserRecord>>;

    /// The app over `users` and `tokens`, on `clock`, as its binary builds it (API tokens
    /// for `notes:read` and `notes:write` included), with a fast test-only hasher.
    async fn start_over(
        users: SharedUsers,
        tokens: Arc<dyn TokenStore>,
        clock: ManualClock,
    ) -> App {
        let day = Duration::from_secs(24 * 60 * 60);
        let auth = crate::app::authenticator(users, tokens, day)
            .password_hasher(Argon2Hasher::insecure_for_tests())
            .clock(clock)
            .build();
        let app = crate::support::accounts::app(
            auth.clone(),
            SessionCookie::default(),
            TrustedProxies::none(),
        );
        App {
            server: Server::start(crate::app::router(app)).await,
            auth,
        }
    }

    /// The app over memory stores, Ann and Bob registered.
    async fn start(clock: ManualClock) -> App {
        let app = start_over(
            Arc::new(MemoryUserStore::new()),
            Arc::new(MemoryTokenStore::new()),
            clock,
        )
        .await;
        app.register(ANN, ANN_PASSWORD).await;
        app.register(BOB, BOB_PASSWORD).await;
        app
    }

    impl App {
        async fn register(&self, email: &str, password: &str) {
            let body = json!({ "email": email, "password": password }).to_string();
            let reply = self.server.json("POST", "/register", &body).await;
            assert_eq!(reply.status, 202, "{reply:?}");
        }

        /// Logs in; the session token.
        async fn login(&self, email: &str, password: &str) -> String {
            let body = json!({ "email": email, "password": password }).to_string();
            let reply = self.server.json("POST", "/login", &body).await;
            assert_eq!(reply.status, 200, "{reply:?}");
            reply.json()["token"].as_str().expect("a token").to_owned()
        }

        async fn call(&self, method: &str, path: &str, token: &str, body: Option<Value>) -> Reply {
            call(&self.server, method, path, token, body).await
        }

        /// `POST /tokens` with `session`; the answer, asserted 201.
        async fn create(&self, session: &str, body: Value) -> Value {
            let reply = self.call("POST", "/tokens", session, Some(body)).await;
            assert_eq!(reply.status, 201, "{reply:?}");
            assert_eq!(reply.header("cache-control"), Some("no-store"));
            reply.json()
        }
    }

    fn keys(value: &Value) -> Vec<&str> {
        let mut keys: Vec<&str> = value
            .as_object()
            .expect("an object")
            .keys()
            .map(String::as_str)
            .collect();
        keys.sort_unstable();
        keys
    }

    #[tokio::test]
    async fn create_use_list_and_revoke() {
        let app = start(ManualClock::new(time::OffsetDateTime::now_utc())).await;
        let ann = app.login(ANN, ANN_PASSWORD).await;
        let created = app
            .create(
                &ann,
                json!({ "name": "backup script", "scopes": ["notes:read"] }),
            )
            .await;
        assert_eq!(
            keys(&created),
            ["expires_at", "id", "name", "scopes", "token"]
        );
        assert_eq!(created["name"], "backup script");
        assert_eq!(created["scopes"], json!(["notes:read"]));
        assert!(created["expires_at"].is_string(), "{created}");
        let pat = created["token"].as_str().expect("the token").to_owned();
        assert!(pat.starts_with("kcpat_"), "{pat}");
        let id = created["id"].as_str().expect("an id").to_owned();

        // Reading is in its scopes; writing is not, and is refused with the challenge
        // before the handler runs.
        let read = app.call("GET", "/notes", &pat, None).await;
        assert_eq!(read.status, 200, "{read:?}");
        assert_eq!(read.json(), json!({ "notes": [] }));
        let write = app
            .call(
                "POST",
                "/notes",
                &pat,
                Some(json!({ "text": "from the script" })),
            )
            .await;
        assert_scope_refused(&write, "notes:write");
        // The login holds every scope: it writes, the token reads what it wrote.
        let written = app
            .call("POST", "/notes", &ann, Some(json!({ "text": "from Ann" })))
            .await;
        assert_eq!(written.status, 201, "{written:?}");
        let read = app.call("GET", "/notes", &pat, None).await;
        assert_eq!(read.json()["notes"][0]["text"], "from Ann", "{read:?}");
        // Without a token: 401, not 403.
        let anonymous = app.server.call("GET", "/notes").await;
        assert_problem(&anonymous, 401, "missing_token");

        // The listing: what the owner may see, never the token or its secret.
        let listed = app.call("GET", "/tokens", &ann, None).await;
        assert_eq!(listed.status, 200, "{listed:?}");
        assert_eq!(listed.header("cache-control"), Some("no-store"));
        let tokens = listed.json()["tokens"].clone();
        assert_eq!(tokens.as_array().map(Vec::len), Some(1), "{tokens}");
        assert_eq!(
            keys(&tokens[0]),
            [
                "created_at",
                "expires_at",
                "id",
                "last_used_at",
                "name",
                "scopes"
            ]
        );
        assert_eq!(tokens[0]["id"], id.as_str());
        assert_eq!(tokens[0]["scopes"], json!(["notes:read"]));
        assert!(tokens[0]["last_used_at"].is_string(), "used: {tokens}");
        let secret = pat.split_once('.').expect("id.secret").1;
        assert!(!listed.body.contains(&pat), "{}", listed.body);
        assert!(!listed.body.contains(secret), "{}", listed.body);

        // Bob cannot revoke it (nor tell it from an unknown id), Ann can, once.
        let bob = app.login(BOB, BOB_PASSWORD).await;
        let path = format!("/tokens/{id}");
        assert_problem(
            &app.call("DELETE", &path, &bob, None).await,
            404,
            "not_found",
        );
        assert_eq!(app.call("GET", "/notes", &pat, None).await.status, 200);
        assert_problem(
            &app.call("DELETE", "/tokens/nonsense", &ann, None).await,
            404,
            "not_found",
        );
        // Ann's own session id is no token of hers either.
        let me = app.call("GET", "/me", &ann, None).await.json();
        let session_id = me["session"]["id"].as_str().expect("a session id");
        let session_path = format!("/tokens/{session_id}");
        assert_problem(
            &app.call("DELETE", &session_path, &ann, None).await,
            404,
            "not_found",
        );
        let revoked = app.call("DELETE", &path, &ann, None).await;
        assert_eq!(revoked.status, 204, "{revoked:?}");
        assert_problem(
            &app.call("GET", "/notes", &pat, None).await,
            401,
            "invalid_token",
        );
        assert_problem(
            &app.call("DELETE", &path, &ann, None).await,
            404,
            "not_found",
        );
        let listed = app.call("GET", "/tokens", &ann, None).await;
        assert_eq!(listed.json(), json!({ "tokens": [] }));
    }

    #[tokio::test]
    async fn bad_requests_are_refused() {
        let app = start(ManualClock::new(time::OffsetDateTime::now_utc())).await;
        let ann = app.login(ANN, ANN_PASSWORD).await;
        for (body, code) in [
            (json!({ "name": "x", "scopes": ["admin"] }), "invalid_scope"),
            (
                json!({ "name": "x", "scopes": ["not a scope"] }),
                "invalid_scope",
            ),
            (
                json!({ "name": "  ", "scopes": ["notes:read"] }),
                "invalid_api_token_request",
            ),
            (
                json!({ "name": "x", "scopes": ["notes:read"], "expires_in_days": 400 }),
                "invalid_api_token_request",
            ),
        ] {
            let reply = app.call("POST", "/tokens", &ann, Some(body.clone())).await;
            assert_problem(&reply, 422, code);
        }
        let zero = json!({ "name": "x", "scopes": ["notes:read"], "expires_in_days": 0 });
        let reply = app.call("POST", "/tokens", &ann, Some(zero)).await;
        assert_eq!(reply.status, 422, "{reply:?}");
        let listed = app.call("GET", "/tokens", &ann, None).await;
        assert_eq!(listed.json(), json!({ "tokens": [] }));
    }

    #[tokio::test]
    async fn an_api_token_cannot_manage_the_account() {
        let app = start(ManualClock::new(time::OffsetDateTime::now_utc())).await;
        let ann = app.login(ANN, ANN_PASSWORD).await;
        let created = app
            .create(
                &ann,
                json!({ "name": "everything", "scopes": ["notes:read", "notes:write"] }),
            )
            .await;
        let pat = created["token"].as_str().expect("a token").to_owned();
        let id = created["id"].as_str().expect("an id").to_owned();
        let me = app.call("GET", "/me", &ann, None).await.json();
        let session_id = me["session"]["id"].as_str().expect("an id").to_owned();

        let refused = [
            (
                "POST",
                "/tokens".to_owned(),
                Some(json!({ "name": "more", "scopes": ["notes:write"] })),
            ),
            ("GET", "/tokens".to_owned(), None),
            ("DELETE", format!("/tokens/{id}"), None),
            (
                "POST",
                "/password".to_owned(),
                Some(json!({
                    "current_password": ANN_PASSWORD,
                    "new_password": "a password the token chose",
                })),
            ),
            (
                "POST",
                "/email".to_owned(),
                Some(json!({ "new_email": "mallory@example.com", "password": ANN_PASSWORD })),
            ),
            ("GET", "/sessions".to_owned(), None),
            ("DELETE", format!("/sessions/{session_id}"), None),
            ("POST", "/mfa/totp".to_owned(), None),
            ("GET", "/mfa".to_owned(), None),
            (
                "POST",
                "/reauthenticate".to_owned(),
                Some(json!({ "password": ANN_PASSWORD })),
            ),
        ];
        for (method, path, body) in refused {
            let reply = app.call(method, &path, &pat, body).await;
            assert_eq!(reply.status, 403, "{method} {path}: {reply:?}");
            assert_problem(&reply, 403, "interactive_session_required");
            assert_eq!(reply.header("www-authenticate"), None, "{method} {path}");
        }
        // Refused before the body is read: without one, still 403 (not 415 or 422).
        for (method, path) in [
            ("POST", "/tokens"),
            ("POST", "/password"),
            ("POST", "/email"),
            ("POST", "/mfa/totp/confirm"),
            ("DELETE", "/mfa/totp"),
            ("POST", "/mfa/recovery-codes"),
        ] {
            let reply = app.call(method, path, &pat, None).await;
            assert_eq!(
                reply.status, 403,
                "{method} {path} without a body: {reply:?}"
            );
            assert_problem(&reply, 403, "interactive_session_required");
        }
        // Nothing changed: the password, the session, the token list.
        app.login(ANN, ANN_PASSWORD).await;
        assert_eq!(app.call("GET", "/me", &ann, None).await.status, 200);
        let listed = app.call("GET", "/tokens", &ann, None).await.json();
        assert_eq!(listed["tokens"].as_array().map(Vec::len), Some(1));
        // The token still does what it may.
        let note = json!({ "text": "still fine" });
        assert_eq!(
            app.call("POST", "/notes", &pat, Some(note)).await.status,
            201
        );
    }

    #[tokio::test]
    async fn tokens_expire_on_the_clock() {
        let clock = ManualClock::new(time::OffsetDateTime::now_utc());
        let app = start(clock.clone()).await;
        let ann = app.login(ANN, ANN_PASSWORD).await;
        let short = app
            .create(
                &ann,
                json!({ "name": "short", "scopes": ["notes:read"], "expires_in_days": 2 }),
            )
            .await;
        let long = app
            .create(&ann, json!({ "name": "long", "scopes": ["notes:read"] }))
            .await;
        let (short, long) = (
            short["token"].as_str().expect("a token").to_owned(),
            long["token"].as_str().expect("a token").to_owned(),
        );
        assert_eq!(app.call("GET", "/notes", &short, None).await.status, 200);
        clock.advance(Duration::from_secs(2 * 24 * 60 * 60 - 60));
        assert_eq!(app.call("GET", "/notes", &short, None).await.status, 200);
        clock.advance(Duration::from_secs(61));
        let expired = app.call("GET", "/notes", &short, None).await;
        assert_problem(&expired, 401, "invalid_token");
        // The default lifetime (90 days) is still running; no idle timeout applies.
        assert_eq!(app.call("GET", "/notes", &long, None).await.status, 200);
        clock.advance(Duration::from_secs(88 * 24 * 60 * 60));
        assert_problem(
            &app.call("GET", "/notes", &long, None).await,
            401,
            "invalid_token",
        );
        // The login (24 hours) is long gone too; a new one lists no live token.
        let ann = app.login(ANN, ANN_PASSWORD).await;
        let listed = app.call("GET", "/tokens", &ann, None).await;
        assert_eq!(listed.json(), json!({ "tokens": [] }));
    }

    #[tokio::test]
    async fn a_new_client_address_is_recorded() {
        let app = start(ManualClock::new(time::OffsetDateTime::now_utc())).await;
        let ann = app.login(ANN, ANN_PASSWORD).await;
        let created = app
            .create(&ann, json!({ "name": "roaming", "scopes": ["notes:read"] }))
            .await;
        let pat = created["token"].as_str().expect("a token").to_owned();
        let from = client_ip(5);
        let reply = send(
            crate::support::server::client_from(from)
                .get(app.server.url("/notes"))
                .bearer_auth(&pat),
        )
        .await;
        assert_eq!(reply.status, 200, "{reply:?}");
        let session = app.auth.validate_session(&pat).await.expect("live");
        assert_eq!(session.client.ip, Some(from));
    }

    /// Polls `server` with `token` until it is refused; how long that took.
    async fn until_refused(server: &Server, token: &str, limit: Duration) -> Duration {
        let start = std::time::Instant::now();
        loop {
            let reply = call(server, "GET", "/notes", token, None).await;
            match reply.status {
                200 => {}
                401 => return start.elapsed(),
                _ => panic!("unexpected answer: {reply:?}"),
            }
            assert!(start.elapsed() < limit, "still accepted after {limit:?}");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    #[tokio::test]
    async fn a_revocation_reaches_a_second_instance_behind_the_cache() {
        let clock = ManualClock::new(time::OffsetDateTime::now_utc());
        let users: SharedUsers = Arc::new(MemoryUserStore::new());
        let store = Arc::new(MemoryTokenStore::new());

        // Pushed: A and B share a revocation channel; B caches for up to a minute, and
        // still refuses the token as soon as A revokes it.
        let channel = LocalChannel::new();
        let minute = CacheOptions::default().with_max_staleness(Duration::from_secs(60));
        let ca = CachedTokenStore::new(Arc::clone(&store), channel.clone(), minute);
        let cb = CachedTokenStore::new(Arc::clone(&store), channel, minute);
        assert!(ca.wait_connected(Duration::from_secs(1)).await);
        assert!(cb.wait_connected(Duration::from_secs(1)).await);
        let a = start_over(Arc::clone(&users), Arc::new(ca), clock.clone()).await;
        let b = start_over(Arc::clone(&users), Arc::new(cb), clock.clone()).await;
        a.register(ANN, ANN_PASSWORD).await;
        let ann = a.login(ANN, ANN_PASSWORD).await;
        let created = a
            .create(&ann, json!({ "name": "pushed", "scopes": ["notes:read"] }))
            .await;
        let pat = created["token"].as_str().expect("a token").to_owned();
        let id = created["id"].as_str().expect("an id").to_owned();
        // B validates it (and caches it), then A revokes it.
        assert_eq!(
            call(&b.server, "GET", "/notes", &pat, None).await.status,
            200
        );
        assert_eq!(
            call(&b.server, "GET", "/notes", &pat, None).await.status,
            200
        );
        let path = format!("/tokens/{id}");
        assert_eq!(a.call("DELETE", &path, &ann, None).await.status, 204);
        let took = until_refused(&b.server, &pat, Duration::from_secs(5)).await;
        assert!(took < Duration::from_secs(5), "pushed, seen after {took:?}");

        // Not pushed: C and D hear nothing from each other; D's cache may keep the token
        // for its staleness bound (300 ms), never longer.
        let bound = Duration::from_millis(300);
        let options = CacheOptions::default().with_max_staleness(bound);
        let cc = CachedTokenStore::new(Arc::clone(&store), LocalChannel::new(), options);
        let cd = CachedTokenStore::new(Arc::clone(&store), LocalChannel::new(), options);
        assert!(cc.wait_connected(Duration::from_secs(1)).await);
        assert!(cd.wait_connected(Duration::from_secs(1)).await);
        let c = start_over(Arc::clone(&users), Arc::new(cc), clock.clone()).await;
        let d = start_over(Arc::clone(&users), Arc::new(cd), clock).await;
        let ann = c.login(ANN, ANN_PASSWORD).await;
        let created = c
            .create(&ann, json!({ "name": "bounded", "scopes": ["notes:read"] }))
            .await;
        let pat = created["token"].as_str().expect("a token").to_owned();
        let id = created["id"].as_str().expect("an id").to_owned();
        assert_eq!(
            call(&d.server, "GET", "/notes", &pat, None).await.status,
            200
        );
        let path = format!("/tokens/{id}");
        assert_eq!(c.call("DELETE", &path, &ann, None).await.status, 204);
        // C itself refuses it at once.
        assert_problem(
            &c.call("GET", "/notes", &pat, None).await,
            401,
            "invalid_token",
        );
        // D within the bound, plus slack for a loaded machine's timers.
        let took = until_refused(&d.server, &pat, Duration::from_secs(2)).await;
        assert!(
            took <= bound + Duration::from_millis(250),
            "seen after {took:?}, bound {bound:?}"
        );
    }
}

#[cfg(feature = "actix-web")]
mod actix {
    use super::*;
    use crate::support::server::{client_from, client_ip};
    use actix_web::web;
    use keycard::actix_web::{resource, CurrentSession, InteractiveSession, RequireScope};
    use keycard::api_tokens::RequiredScope;
    use keycard::http::{render_error, HttpAuth, Response, StandardApi};

    struct NotesRead;
    impl RequiredScope for NotesRead {
        const SCOPE: &'static str = "notes:read";
    }

    struct NotesWrite;
    impl RequiredScope for NotesWrite {
        const SCOPE: &'static str = "notes:write";
    }

    async fn read_notes(me: RequireScope<UserRecord, NotesRead>) -> String {
        format!("notes of {}", me.user.email)
    }

    async fn write_note(me: RequireScope<UserRecord, NotesWrite>) -> String {
        format!("{} wrote ({})", me.user.email, me.scope())
    }

    async fn settings(me: InteractiveSession<UserRecord>) -> String {
        format!("settings of {}", me.session.user_id)
    }

    /// `POST /tokens`: the core refuses a token (the session is handed over).
    async fn create_token(
        auth: web::Data<Authenticator<Users>>,
        me: CurrentSession<UserRecord>,
    ) -> Response {
        let request = NewApiToken::new("from a token", ["notes:read"]);
        match auth.create_api_token(&me.session, request).await {
            Ok(created) => Response::json(201, &json!({ "id": created.view.id })),
            Err(error) => render_error(me.http().protocol(), &error),
        }
    }

    /// `GET /sessions`.
    async fn sessions(
        auth: web::Data<Authenticator<Users>>,
        me: CurrentSession<UserRecord>,
    ) -> Response {
        match auth.list_sessions(&me.session).await {
            Ok(sessions) => Response::json(200, &json!({ "sessions": sessions })),
            Err(error) => render_error(me.http().protocol(), &error),
        }
    }

    fn start(auth: &Authenticator<Users>) -> Server {
        let http = HttpAuth::new(auth.clone(), StandardApi);
        let data = web::Data::new(auth.clone());
        Server::start_actix(move |cfg: &mut web::ServiceConfig| {
            keycard::actix_web::configure(http.clone())(cfg);
            cfg.app_data(data.clone())
                .service(
                    resource("/notes")
                        .route(web::get().to(read_notes))
                        .route(web::post().to(write_note)),
                )
                .service(resource("/settings").route(web::post().to(settings)))
                .service(resource("/tokens").route(web::post().to(create_token)))
                .service(resource("/sessions").route(web::get().to(sessions)));
        })
    }

    #[tokio::test]
    async fn extractors_check_scopes_and_refuse_tokens_where_a_person_is_needed() {
        let clock = ManualClock::new(time::OffsetDateTime::now_utc());
        let auth = core_auth(clock.clone()).await;
        let server = start(&auth);
        let (login, pat) = ann_tokens(&auth, &["notes:read"]).await;

        let read = call(&server, "GET", "/notes", &pat, None).await;
        assert_eq!(
            (read.status, read.body.as_str()),
            (200, "notes of ann@example.com")
        );
        assert_scope_refused(
            &call(&server, "POST", "/notes", &pat, None).await,
            "notes:write",
        );
        let wrote = call(&server, "POST", "/notes", &login, None).await;
        assert_eq!(
            (wrote.status, wrote.body.as_str()),
            (200, "ann@example.com wrote (notes:write)")
        );
        assert_problem(&server.call("GET", "/notes").await, 401, "missing_token");

        for (method, path) in [
            ("POST", "/settings"),
            ("POST", "/tokens"),
            ("GET", "/sessions"),
        ] {
            let reply = call(&server, method, path, &pat, None).await;
            assert_problem(&reply, 403, "interactive_session_required");
        }
        assert_eq!(
            call(&server, "POST", "/settings", &login, None)
                .await
                .status,
            200
        );
        assert_eq!(
            call(&server, "GET", "/sessions", &login, None).await.status,
            200
        );
        assert_eq!(
            call(&server, "POST", "/tokens", &login, None).await.status,
            201
        );

        // Its first use was from 127.0.0.1; used from a new address once its last use is
        // due for a write again (a minute later), the new address is recorded.
        let localhost = IpAddr::from([127, 0, 0, 1]);
        assert_eq!(token_ip(&auth, &pat).await, Some(localhost));
        clock.advance(ApiTokens::LAST_USED_PRECISION + Duration::from_secs(1));
        let from = client_ip(6);
        let reply = send(
            client_from(from)
                .get(server.url("/notes"))
                .bearer_auth(&pat),
        )
        .await;
        assert_eq!(reply.status, 200, "{reply:?}");
        assert_eq!(token_ip(&auth, &pat).await, Some(from));

        // Expired on the clock: 401, not 403.
        clock.advance(ApiTokens::DEFAULT_LIFETIME + Duration::from_secs(1));
        assert_problem(
            &call(&server, "GET", "/notes", &pat, None).await,
            401,
            "invalid_token",
        );
    }
}

#[cfg(all(feature = "tower", feature = "axum"))]
mod tower_layer {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use axum::routing::{get, post};
    use axum::Router;
    use keycard::http::{HttpAuth, StandardApi};
    use keycard::tower::AuthLayer;

    /// `/notes` (GET needs `notes:read`, POST `notes:write`) and `/settings` (no API
    /// token), each behind its own layer; `calls` counts what reached the handlers.
    fn router(http: &HttpAuth<UserRecord>, calls: &Arc<AtomicUsize>) -> Router {
        let counted = |answer: &'static str| {
            let calls = Arc::clone(calls);
            move || {
                calls.fetch_add(1, Ordering::SeqCst);
                async move { answer }
            }
        };
        let read = Router::new()
            .route("/notes", get(counted("read")))
            .layer(AuthLayer::session_only(http.clone()).require_scope("notes:read"));
        let write = Router::new()
            .route("/notes/new", post(counted("written")))
            .layer(AuthLayer::new(http.clone()).require_scope("notes:write"));
        let settings = Router::new()
            .route("/settings", post(counted("saved")))
            .layer(AuthLayer::session_only(http.clone()).interactive_only());
        let both = Router::new()
            .route("/notes/admin", post(counted("both")))
            .layer(
                AuthLayer::session_only(http.clone())
                    .interactive_only()
                    .require_scope("notes:write"),
            );
        read.merge(write).merge(settings).merge(both)
    }

    #[tokio::test]
    async fn the_layer_checks_scopes_and_refuses_tokens_where_a_person_is_needed() {
        let clock = ManualClock::new(time::OffsetDateTime::now_utc());
        let auth = core_auth(clock.clone()).await;
        let http = HttpAuth::new(auth.clone(), StandardApi);
        let calls = Arc::new(AtomicUsize::new(0));
        let server = Server::start(router(&http, &calls)).await;
        let (login, pat) = ann_tokens(&auth, &["notes:read"]).await;

        let read = call(&server, "GET", "/notes", &pat, None).await;
        assert_eq!((read.status, read.body.as_str()), (200, "read"));
        assert_eq!(read.header("cache-control"), Some("no-store"));
        assert_eq!(calls.load(Ordering::SeqCst), 1);

        assert_scope_refused(
            &call(&server, "POST", "/notes/new", &pat, None).await,
            "notes:write",
        );
        assert_problem(
            &call(&server, "POST", "/settings", &pat, None).await,
            403,
            "interactive_session_required",
        );
        assert_problem(
            &call(&server, "POST", "/notes/admin", &pat, None).await,
            403,
            "interactive_session_required",
        );
        assert_problem(&server.call("GET", "/notes").await, 401, "missing_token");
        assert_eq!(
            calls.load(Ordering::SeqCst),
            1,
            "no refusal reached a handler"
        );

        for path in ["/notes/new", "/settings", "/notes/admin"] {
            let reply = call(&server, "POST", path, &login, None).await;
            assert_eq!(reply.status, 200, "{path}: {reply:?}");
        }
        assert_eq!(calls.load(Ordering::SeqCst), 4);

        // A token holding `notes:write` passes the scope check.
        let (_, writer) = ann_tokens(&auth, &["notes:write"]).await;
        let wrote = call(&server, "POST", "/notes/new", &writer, None).await;
        assert_eq!((wrote.status, wrote.body.as_str()), (200, "written"));
        assert_scope_refused(
            &call(&server, "GET", "/notes", &writer, None).await,
            "notes:read",
        );

        clock.advance(ApiTokens::DEFAULT_LIFETIME + Duration::from_secs(1));
        assert_problem(
            &call(&server, "POST", "/notes/new", &writer, None).await,
            401,
            "invalid_token",
        );
        assert_eq!(calls.load(Ordering::SeqCst), 5);
    }
}
