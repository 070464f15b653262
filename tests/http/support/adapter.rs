//! One contract for every framework adapter: the same requests, the same expected answers
//! (statuses, `WWW-Authenticate`, `Cache-Control`, `Retry-After`, problem bodies), sent through
//! each framework's real request pipeline by a [`Client`] the adapter's test provides (axum and
//! actix-web; the tower adapter's tests use the fixture only).
//!
//! The app under test serves, with [`StandardApi`] and tokens in `Authorization: Bearer` or the
//! cookie `sid`:
//! - `POST /login` (the login extractor), `DELETE /logout` (the logout extractor);
//! - `GET /me` and `POST /me`: the user's email (the user extractor);
//! - `GET /session`: the session's user id (the session-only extractor);
//! - `GET /maybe`: the email, or `anonymous` without a token (`Option` of the user extractor);
//! - `GET /maybe_session`: the session's user id, or `anonymous` without a token (`Option` of
//!   the session-only extractor).

use std::sync::Arc;
use std::time::Duration;

use super::down_store::DownTokenStore;

#[cfg(any(feature = "axum", feature = "actix-web"))]
use async_trait::async_trait;
#[cfg(any(feature = "axum", feature = "actix-web"))]
use keycard::http::SessionCookie;
use keycard::http::{HttpAuth, StandardApi, TokenSource};
use keycard::throttle::{Limit, ThrottleLimits};
use keycard::{
    Argon2Hasher, Authenticator, ManualClock, MemoryThrottle, MemoryTokenStore, MemoryUserStore,
    UserRecord,
};

pub(crate) const EMAIL: &str = "ann@example.com";
pub(crate) const PASSWORD: &str = "pw-123456";
pub(crate) const IDLE: Duration = Duration::from_secs(30 * 60);
/// The longest session a login may ask for ("remember me").
pub(crate) const REMEMBERED: Duration = Duration::from_secs(30 * 24 * 60 * 60);

#[cfg(any(feature = "axum", feature = "actix-web"))]
/// A request, framework-neutral.
#[derive(Debug, Clone)]
pub(crate) struct Req {
    pub(crate) method: &'static str,
    pub(crate) path: String,
    pub(crate) headers: Vec<(&'static str, String)>,
    pub(crate) body: String,
}

#[cfg(any(feature = "axum", feature = "actix-web"))]
impl Req {
    pub(crate) fn get(path: &str) -> Self {
        Self {
            method: "GET",
            path: path.to_owned(),
            headers: Vec::new(),
            body: String::new(),
        }
    }

    pub(crate) fn bearer(self, token: &str) -> Self {
        self.header("authorization", &format!("Bearer {token}"))
    }

    pub(crate) fn header(mut self, name: &'static str, value: &str) -> Self {
        self.headers.push((name, value.to_owned()));
        self
    }

    fn login(content_type: &str, body: &str) -> Self {
        Self {
            method: "POST",
            path: "/login".to_owned(),
            headers: vec![("content-type", content_type.to_owned())],
            body: body.to_owned(),
        }
    }
}

#[cfg(any(feature = "axum", feature = "actix-web"))]
/// A response, framework-neutral.
#[derive(Debug)]
pub(crate) struct Res {
    pub(crate) status: u16,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: String,
}

#[cfg(any(feature = "axum", feature = "actix-web"))]
impl Res {
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("JSON body ({e}): {self:?}"))
    }

    /// A problem details answer with this status and code, never cached.
    #[track_caller]
    fn assert_problem(&self, status: u16, code: &str) {
        assert_eq!(self.status, status, "{self:?}");
        assert_eq!(
            self.header("content-type"),
            Some("application/problem+json")
        );
        assert_eq!(self.header("cache-control"), Some("no-store"), "{self:?}");
        assert_eq!(self.json()["code"], code, "{self:?}");
    }
}

#[cfg(any(feature = "axum", feature = "actix-web"))]
/// Sends a request through one framework's pipeline to the app under test.
#[async_trait(?Send)]
pub(crate) trait Client {
    async fn send(&self, req: Req) -> Res;
}

/// The authenticator behind the app under test, and its clock.
pub(crate) struct Fixture {
    pub(crate) auth: Authenticator<Arc<MemoryUserStore<UserRecord>>>,
    /// Advanced by the contracts that run through a framework (axum, actix-web).
    #[cfg(any(feature = "axum", feature = "actix-web"))]
    pub(crate) clock: ManualClock,
}

impl Fixture {
    /// Ann, a 30-minute idle timeout, at most 2 failures per account and address.
    pub(crate) async fn new() -> Self {
        let users = Arc::new(MemoryUserStore::<UserRecord>::new());
        let clock = ManualClock::default();
        let limits =
            ThrottleLimits::default().per_account_ip(Limit::new(2, Duration::from_secs(60)));
        let auth = Authenticator::builder(Arc::clone(&users), MemoryTokenStore::new())
            .password_hasher(Argon2Hasher::insecure_for_tests())
            .clock(clock.clone())
            .idle_timeout(IDLE)
            .max_session_ttl(REMEMBERED)
            .throttle(MemoryThrottle::new(limits))
            .build();
        let hash = auth.hash_password(PASSWORD).await.expect("hash");
        users
            .insert(UserRecord::new(7_i64, EMAIL, hash))
            .expect("a fresh store");
        Self {
            auth,
            #[cfg(any(feature = "axum", feature = "actix-web"))]
            clock,
        }
    }

    /// The adapter configuration every app under test uses.
    pub(crate) fn http(&self) -> HttpAuth<UserRecord> {
        HttpAuth::new(self.auth.clone(), StandardApi)
            .with_token_source(TokenSource::bearer().with_cookie("sid"))
    }
}

#[cfg(any(feature = "axum", feature = "actix-web"))]
/// Browser sessions: the default `__Host-session` cookie, and Bearer on the same routes.
pub(crate) fn http_with_cookie(fixture: &Fixture) -> HttpAuth<UserRecord> {
    HttpAuth::new(fixture.auth.clone(), StandardApi).with_session_cookie(SessionCookie::default())
}

/// The same configuration over a token store that is down.
pub(crate) fn http_over_down_store() -> HttpAuth<UserRecord> {
    let auth = Authenticator::builder(MemoryUserStore::<UserRecord>::new(), DownTokenStore)
        .password_hasher(Argon2Hasher::insecure_for_tests())
        .build();
    HttpAuth::new(auth, StandardApi).with_token_source(TokenSource::bearer().with_cookie("sid"))
}

#[cfg(any(feature = "axum", feature = "actix-web"))]
/// Logs Ann in; returns the token.
pub(crate) async fn login(client: &impl Client) -> String {
    let body = format!(r#"{{"email":"{EMAIL}","password":"{PASSWORD}"}}"#);
    let res = client.send(Req::login("application/json", &body)).await;
    assert_eq!(res.status, 200, "{res:?}");
    assert_eq!(res.header("cache-control"), Some("no-store"));
    res.json()["token"].as_str().expect("a token").to_owned()
}

#[cfg(any(feature = "axum", feature = "actix-web"))]
/// Every rejection of the validating extractors, and what a valid token gets.
pub(crate) async fn validation_contract(fixture: &Fixture, client: &impl Client) {
    // Missing: a bare challenge (RFC 6750 3.1).
    let res = client.send(Req::get("/me")).await;
    res.assert_problem(401, "missing_token");
    assert_eq!(res.header("www-authenticate"), Some("Bearer"));
    // Malformed, and well formed but unknown: invalid_token.
    let forged = keycard::Token::generate().expect("randomness");
    for bad in ["garbage", forged.expose_secret()] {
        for path in ["/me", "/session"] {
            let res = client.send(Req::get(path).bearer(bad)).await;
            res.assert_problem(401, "invalid_token");
            let challenge = res.header("www-authenticate").expect("a challenge");
            assert!(
                challenge.contains(r#"error="invalid_token""#),
                "{challenge}"
            );
        }
    }
    // A live token: in the header or in the cookie.
    let token = login(client).await;
    let me = client.send(Req::get("/me").bearer(&token)).await;
    assert_eq!((me.status, me.body.as_str()), (200, EMAIL));
    let by_cookie = client
        .send(Req::get("/me").header("cookie", &format!("theme=dark; sid={token}")))
        .await;
    assert_eq!((by_cookie.status, by_cookie.body.as_str()), (200, EMAIL));
    let session = client.send(Req::get("/session").bearer(&token)).await;
    assert_eq!((session.status, session.body.as_str()), (200, "7"));
    // Half the idle timeout later a touch is due: the session extractor's validate writes
    // to the store (the adapters' waiting path, not their immediate one) and still answers.
    fixture.clock.advance(IDLE / 2);
    let touched = client.send(Req::get("/session").bearer(&token)).await;
    assert_eq!((touched.status, touched.body.as_str()), (200, "7"));
    // The touch was written: past the idle timeout since login, but not since the touch.
    fixture.clock.advance(IDLE * 3 / 4);
    let kept = client.send(Req::get("/session").bearer(&token)).await;
    assert_eq!((kept.status, kept.body.as_str()), (200, "7"));
    // Idle past the timeout: expired, the same answer as any dead token.
    fixture.clock.advance(IDLE + Duration::from_secs(1));
    for path in ["/me", "/session"] {
        client
            .send(Req::get(path).bearer(&token))
            .await
            .assert_problem(401, "invalid_token");
    }
}

#[cfg(any(feature = "axum", feature = "actix-web"))]
/// `Option` of the user and session extractors: `None` without a token, the user or session
/// with a live one; a bad token is a rejection where the framework lets the adapter say so
/// (`bad_token_rejected`), `None` where its `Option` rule swallows every error (actix-web).
pub(crate) async fn optional_contract(client: &impl Client, bad_token_rejected: bool) {
    let token = login(client).await;
    let user_id = client.send(Req::get("/session").bearer(&token)).await.body;
    assert!(!user_id.is_empty() && user_id != "anonymous");
    for (path, owner) in [("/maybe", EMAIL), ("/maybe_session", user_id.as_str())] {
        let res = client.send(Req::get(path)).await;
        assert_eq!(
            (res.status, res.body.as_str()),
            (200, "anonymous"),
            "{path}"
        );
        let res = client.send(Req::get(path).bearer(&token)).await;
        assert_eq!((res.status, res.body.as_str()), (200, owner), "{path}");
        let res = client.send(Req::get(path).bearer("garbage")).await;
        if bad_token_rejected {
            res.assert_problem(401, "invalid_token");
        } else {
            assert_eq!(
                (res.status, res.body.as_str()),
                (200, "anonymous"),
                "{path}"
            );
        }
    }
}

#[cfg(any(feature = "axum", feature = "actix-web"))]
/// Login and logout: bad bodies, throttling with `Retry-After`, idempotent logout.
pub(crate) async fn login_logout_contract(client: &impl Client) {
    for (content_type, body, status) in [
        ("text/plain", "x", 415),
        ("application/json", "{", 400),
        ("application/json", r#"{"email":"a@b.c"}"#, 422),
        ("application/x-www-form-urlencoded", "email=a", 422),
    ] {
        let res = client.send(Req::login(content_type, body)).await;
        assert_eq!(res.status, status, "{body}: {res:?}");
        assert_eq!(res.header("content-type"), Some("application/problem+json"));
    }
    let form = format!("email={}&password={PASSWORD}", EMAIL.replace('@', "%40"));
    let res = client
        .send(Req::login("application/x-www-form-urlencoded", &form))
        .await;
    assert_eq!(res.status, 200, "{res:?}");

    let token = login(client).await;
    for _ in 0..2 {
        let res = client
            .send(Req {
                method: "DELETE",
                ..Req::get("/logout").bearer(&token)
            })
            .await;
        assert_eq!((res.status, res.body.as_str()), (204, ""), "{res:?}");
        assert_eq!(res.header("cache-control"), Some("no-store"));
    }
    client
        .send(Req::get("/me").bearer(&token))
        .await
        .assert_problem(401, "invalid_token");

    let wrong = format!(r#"{{"email":"{EMAIL}","password":"wrong"}}"#);
    for _ in 0..2 {
        let res = client.send(Req::login("application/json", &wrong)).await;
        res.assert_problem(401, "invalid_credentials");
        assert_eq!(res.header("www-authenticate"), Some("Bearer"));
    }
    let res = client.send(Req::login("application/json", &wrong)).await;
    res.assert_problem(429, "throttled");
    let retry: u64 = res
        .header("retry-after")
        .expect("Retry-After")
        .parse()
        .expect("seconds");
    assert!((1..=60).contains(&retry), "{retry}");
}

#[cfg(any(feature = "axum", feature = "actix-web"))]
/// The cookie transport (an app configured with [`http_with_cookie`]): login sets the
/// hardened cookie, a cookie-authenticated unsafe request must come from this origin, Bearer
/// needs no such evidence, a cross-site login is refused, logout clears the cookie.
pub(crate) async fn cookie_contract(client: &impl Client) {
    const HOST: &str = "app.example";
    let body = format!(r#"{{"email":"{EMAIL}","password":"{PASSWORD}"}}"#);
    let cross_site_login = client
        .send(Req::login("application/json", &body).header("sec-fetch-site", "cross-site"))
        .await;
    cross_site_login.assert_problem(403, "cross_site_request");
    assert_eq!(cross_site_login.header("set-cookie"), None);

    let res = client
        .send(Req::login("application/json", &body).header("sec-fetch-site", "same-origin"))
        .await;
    assert_eq!(res.status, 200, "{res:?}");
    let token = res.json()["token"].as_str().expect("a token").to_owned();
    // A browser session cookie: no Max-Age.
    assert_eq!(
        res.header("set-cookie").map(str::to_owned),
        Some(format!(
            "__Host-session={token}; HttpOnly; SameSite=Lax; Secure; Path=/"
        ))
    );
    // "Remember me": a persistent cookie as long as the longest session allowed.
    let remembered = format!(r#"{{"email":"{EMAIL}","password":"{PASSWORD}","remember_me":true}}"#);
    let res = client
        .send(Req::login("application/json", &remembered).header("sec-fetch-site", "same-origin"))
        .await;
    assert_eq!(res.status, 200, "{res:?}");
    let long = res.json()["token"].as_str().expect("a token").to_owned();
    assert_eq!(
        res.header("set-cookie").map(str::to_owned),
        Some(format!(
            "__Host-session={long}; HttpOnly; SameSite=Lax; Secure; Path=/; Max-Age={}",
            REMEMBERED.as_secs()
        ))
    );
    let cookie = format!("__Host-session={token}");
    let post_me = |extra: &[(&'static str, &str)]| {
        let mut req = Req {
            method: "POST",
            ..Req::get("/me")
        }
        .header("host", HOST)
        .header("cookie", &cookie);
        for (name, value) in extra {
            req = req.header(name, value);
        }
        req
    };
    // Cross-site, or no evidence at all: refused before the session is even looked up.
    for extra in [
        &[("sec-fetch-site", "cross-site")][..],
        &[("sec-fetch-site", "same-site")],
        &[("origin", "https://evil.example")],
        &[],
    ] {
        client
            .send(post_me(extra))
            .await
            .assert_problem(403, "cross_site_request");
    }
    // Same origin, by Fetch Metadata or by Origin.
    for extra in [
        &[("sec-fetch-site", "same-origin")][..],
        &[("origin", "https://app.example")],
    ] {
        let res = client.send(post_me(extra)).await;
        assert_eq!((res.status, res.body.as_str()), (200, EMAIL), "{extra:?}");
    }
    // A safe method with the cookie, and Bearer from anywhere, need no evidence.
    let res = client
        .send(
            Req::get("/me")
                .header("cookie", &cookie)
                .header("sec-fetch-site", "cross-site"),
        )
        .await;
    assert_eq!(res.status, 200, "{res:?}");
    let res = client
        .send(
            Req {
                method: "POST",
                ..Req::get("/me")
            }
            .bearer(&token)
            .header("sec-fetch-site", "cross-site"),
        )
        .await;
    assert_eq!(res.status, 200, "{res:?}");
    // Logout by cookie: refused cross-site, then done same-origin, clearing the cookie.
    let logout = |site: &str| {
        Req {
            method: "DELETE",
            ..Req::get("/logout")
        }
        .header("cookie", &cookie)
        .header("sec-fetch-site", site)
    };
    client
        .send(logout("cross-site"))
        .await
        .assert_problem(403, "cross_site_request");
    let res = client.send(logout("same-origin")).await;
    assert_eq!(res.status, 204, "{res:?}");
    assert_eq!(
        res.header("set-cookie"),
        Some("__Host-session=; HttpOnly; SameSite=Lax; Secure; Path=/; Max-Age=0")
    );
    client
        .send(Req::get("/me").header("cookie", &cookie))
        .await
        .assert_problem(401, "invalid_token");
}

#[cfg(any(feature = "axum", feature = "actix-web"))]
/// A token store that is down: 503, no detail, never cached.
pub(crate) async fn outage_contract(client: &impl Client) {
    let forged = keycard::Token::generate().expect("randomness");
    for path in ["/me", "/session"] {
        let res = client
            .send(Req::get(path).bearer(forged.expose_secret()))
            .await;
        res.assert_problem(503, "unavailable");
        assert!(!res.body.contains("refused"), "{path}: {res:?}");
        assert_eq!(res.header("www-authenticate"), None, "{path}");
    }
}
