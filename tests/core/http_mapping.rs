//! Every row of the HTTP mapping table, for the three built-in protocols, from real core
//! outcomes.

use std::sync::Arc;
use std::time::Duration;

use keycard::http::{LoginApi, Protocol, Response, SessionsApi, StandardApi};
use keycard::{
    Argon2Hasher, Authenticator, ClientInfo, Error, Field, Logout, MemoryThrottle,
    MemoryTokenStore, MemoryUserStore, PasswordHasher, StoreError, UserRecord,
};
use proptest::prelude::*;

type Auth = Authenticator<Arc<MemoryUserStore>>;

/// The documents' users, behind an authenticator with the given unknown-email policy.
fn seeded(reveal_unknown_email: bool) -> Auth {
    let hasher = Argon2Hasher::insecure_for_tests();
    let users = Arc::new(MemoryUserStore::new());
    let budgets = hasher.hash(b"111111").expect("hash");
    users
        .insert(UserRecord::new(
            1_i64,
            "bondhansarker100@gmail.com",
            budgets,
        ))
        .expect("insert");
    let increase = hasher.hash(b"password").expect("hash");
    users
        .insert(
            UserRecord::new(2_i64, "test@increasecard.com", increase).with_name("Test", "Increase"),
        )
        .expect("insert");
    Authenticator::builder(users, MemoryTokenStore::new())
        .password_hasher(hasher)
        .throttle(MemoryThrottle::new(
            keycard::throttle::ThrottleLimits::default()
                .per_account_ip(keycard::throttle::Limit::new(2, Duration::from_secs(90))),
        ))
        .reveal_unknown_email(reveal_unknown_email)
        .build()
}

fn assert_response(r: &Response, status: u16, body: &str) {
    assert_eq!((r.status, r.body.as_str()), (status, body));
}

async fn login_error(auth: &Auth, email: &str, password: &str) -> Error {
    auth.login(email, password, ClientInfo::none())
        .await
        .expect_err("login fails")
}

#[tokio::test]
async fn sessions_api_every_row() {
    let auth = seeded(true);
    let p = SessionsApi;

    // POST /api/sessions, success.
    let login = auth
        .login("bondhansarker100@gmail.com", "111111", ClientInfo::none())
        .await
        .expect("login");
    let token = login.token.expose_secret();
    assert_response(
        &p.login_succeeded(&login.token, &login.user, &login.session),
        200,
        &format!(r#"{{"token":"{token}"}}"#),
    );

    // Wrong password, unknown email.
    let e = login_error(&auth, "bondhansarker100@gmail.com", "222222").await;
    assert_response(
        &p.error(&e),
        422,
        r#"{"message":"Email or password is invalid"}"#,
    );
    let e = login_error(&auth, "nobody@gmail.com", "111111").await;
    assert_response(&p.error(&e), 422, r#"{"message":"User not found"}"#);

    // Resource access with a missing, malformed or unknown token.
    for e in [
        Error::MissingToken,
        auth.validate("bzcU7GNsVLT6-mxp7MyT")
            .await
            .expect_err("malformed"),
        auth.validate(keycard::Token::generate().expect("rng").expose_secret())
            .await
            .expect_err("unknown"),
    ] {
        assert_response(&p.error(&e), 422, r#"{"message":"You are not checked in"}"#);
    }

    // PATCH /api/sessions/sign_out?token=T: destroyed, then "not checked in".
    let outcome = auth.logout(token).await.expect("logout");
    assert!(outcome.destroyed());
    assert_response(
        &p.logged_out(token, &outcome),
        200,
        &format!(r#"{{"message":"{token} has been destroyed successfully"}}"#),
    );
    let again = auth.logout(token).await.expect("logout");
    assert_eq!(again, Logout::NoSession);
    assert_response(
        &p.logged_out(token, &again),
        422,
        r#"{"message":"You are not checked in"}"#,
    );

    // Oversized input, throttling, store down, internal failure.
    let e = login_error(&auth, "bondhansarker100@gmail.com", &"1".repeat(5000)).await;
    assert_response(
        &p.error(&e),
        422,
        r#"{"message":"Password is too long (maximum is 1024 bytes)"}"#,
    );
    let e = Error::InputTooLong {
        field: Field::Email,
        max: 320,
    };
    assert_response(
        &p.error(&e),
        422,
        r#"{"message":"Email is too long (maximum is 320 bytes)"}"#,
    );
    login_error(&auth, "bondhansarker100@gmail.com", "x").await;
    let e = login_error(&auth, "bondhansarker100@gmail.com", "111111").await;
    let r = p.error(&e);
    assert_response(
        &r,
        429,
        r#"{"message":"Too many login attempts, try again in 90 seconds"}"#,
    );
    assert_eq!(r.retry_after(), Some(90));
    let down = Error::Store(StoreError::backend(
        "password=hunter2 host=db.internal refused",
    ));
    assert_response(
        &p.error(&down),
        503,
        r#"{"message":"Service unavailable, try again later"}"#,
    );
    let internal = Argon2Hasher::insecure_for_tests()
        .verify(b"x", "not a hash")
        .expect_err("bad hash");
    assert_response(
        &p.error(&Error::from(internal)),
        500,
        r#"{"message":"Internal server error"}"#,
    );
    assert_response(
        &p.rejection(404, "Not found"),
        404,
        r#"{"message":"Not found"}"#,
    );
}

#[tokio::test]
async fn login_api_every_row() {
    // The library default: unknown emails are not revealed; the protocol hides them anyway.
    let auth = seeded(false);
    let p = LoginApi;

    // POST /login, success: the client object, keys in the document's order.
    let login = auth
        .login("test@increasecard.com", "password", ClientInfo::none())
        .await
        .expect("login");
    let token = login.token.expose_secret();
    assert_response(
        &p.login_succeeded(&login.token, &login.user, &login.session),
        200,
        &format!(
            r#"{{"client":{{"auth_token":"{token}","email":"test@increasecard.com","first_name":"Test","last_name":"Increase"}}}}"#
        ),
    );

    // Wrong password and unknown email: the same 401.
    for (email, password) in [
        ("test@increasecard.com", "notpassword"),
        ("nobody@increasecard.com", "password"),
    ] {
        let e = login_error(&auth, email, password).await;
        assert_response(&p.error(&e), 401, r#"{"error":"Invalid email/password"}"#);
    }
    assert_response(
        &p.error(&Error::UnknownEmail),
        401,
        r#"{"error":"Invalid email/password"}"#,
    );

    // Resource access.
    assert_response(
        &p.error(&Error::MissingToken),
        401,
        r#"{"error":"Missing auth_token"}"#,
    );
    let e = auth
        .validate("2731c82cb6ac8ebe7ab4f1aec46436c19d589440")
        .await
        .expect_err("malformed");
    assert_response(
        &p.error(&e),
        401,
        r#"{"error":"Invalid or expired auth_token"}"#,
    );
    assert_response(
        &p.error(&Error::SessionExpired),
        401,
        r#"{"error":"Invalid or expired auth_token"}"#,
    );

    // DELETE /logout: the same 200 whether or not a session existed.
    let outcome = auth.logout(token).await.expect("logout");
    assert!(outcome.destroyed());
    assert_response(
        &p.logged_out(token, &outcome),
        200,
        r#"{"message":"Successfully logged out"}"#,
    );
    let again = auth.logout(token).await.expect("logout");
    assert_response(
        &p.logged_out(token, &again),
        200,
        r#"{"message":"Successfully logged out"}"#,
    );
    let garbage = auth
        .logout("2731c82cb6ac8ebe7ab4f1aec46436c19d589440")
        .await
        .expect("logout");
    assert_response(
        &p.logged_out("x", &garbage),
        200,
        r#"{"message":"Successfully logged out"}"#,
    );

    // Oversized input, throttling, store down, internal failure.
    let e = login_error(&auth, &"e".repeat(400), "password").await;
    assert_response(
        &p.error(&e),
        400,
        r#"{"error":"email is too long (maximum is 320 bytes)"}"#,
    );
    login_error(&auth, "test@increasecard.com", "x").await;
    let e = login_error(&auth, "test@increasecard.com", "password").await;
    assert!(
        matches!(e, Error::Throttled { .. }),
        "two failures reached the limit: {e:?}"
    );
    let r = p.error(&e);
    assert_eq!((r.status, r.retry_after()), (429, Some(90)));
    assert_eq!(r.header("cache-control"), Some("no-store"));
    assert_eq!(
        r.body,
        r#"{"error":"Too many login attempts, try again in 90 seconds"}"#
    );
    let down = Error::Store(StoreError::backend("connection to 10.0.0.5:5432 refused"));
    assert_response(
        &p.error(&down),
        503,
        r#"{"error":"Service unavailable, try again later"}"#,
    );
    assert_response(
        &p.rejection(413, "Payload too large"),
        413,
        r#"{"error":"Payload too large"}"#,
    );
}

/// The problem details body of `r`, checked for the RFC 9457 members and our `code`.
fn problem(r: &Response, status: u16, code: &str) -> serde_json::Value {
    assert_eq!(r.status, status, "{r:?}");
    assert_eq!(r.header("content-type"), Some("application/problem+json"));
    assert_eq!(r.header("cache-control"), Some("no-store"));
    let body: serde_json::Value = serde_json::from_str(&r.body).expect("JSON");
    assert_eq!(body["type"], "about:blank");
    assert_eq!(body["status"], status);
    assert_eq!(body["code"], code, "{body}");
    assert!(body["title"].as_str().is_some_and(|t| !t.is_empty()));
    assert!(body["detail"].as_str().is_some_and(|d| !d.is_empty()));
    body
}

#[tokio::test]
async fn standard_api_every_row() {
    let auth = seeded(false);
    let p = StandardApi;

    // Login: the token and when it expires.
    let login = auth
        .login("test@increasecard.com", "password", ClientInfo::none())
        .await
        .expect("login");
    let ok = p.login_succeeded(&login.token, &login.user, &login.session);
    assert_eq!(ok.status, 200);
    assert_eq!(ok.header("content-type"), Some("application/json"));
    assert_eq!(ok.header("cache-control"), Some("no-store"));
    let body: serde_json::Value = serde_json::from_str(&ok.body).expect("JSON");
    assert_eq!(body["token"], login.token.expose_secret());
    let expires_at = time::OffsetDateTime::parse(
        body["expires_at"].as_str().expect("a string"),
        &time::format_description::well_known::Rfc3339,
    )
    .expect("RFC 3339");
    assert_eq!(expires_at, login.session.expires_at);

    // Credentials: 401 with a bare Bearer challenge, the same for an unknown email.
    let e = login_error(&auth, "test@increasecard.com", "notpassword").await;
    let wrong = p.error(&e);
    problem(&wrong, 401, "invalid_credentials");
    assert_eq!(wrong.header("www-authenticate"), Some("Bearer"));
    let unknown = p.error(&login_error(&auth, "nobody@increasecard.com", "password").await);
    assert_eq!(unknown, wrong);

    // Tokens: missing is a bare challenge (RFC 6750 3.1); a bad one names invalid_token.
    let missing = p.error(&Error::MissingToken);
    problem(&missing, 401, "missing_token");
    assert_eq!(missing.header("www-authenticate"), Some("Bearer"));
    for e in [
        Error::MalformedToken,
        Error::InvalidToken,
        Error::SessionExpired,
    ] {
        let r = p.error(&e);
        problem(&r, 401, "invalid_token");
        let challenge = r.header("www-authenticate").expect("a challenge");
        assert!(
            challenge.starts_with(r#"Bearer error="invalid_token", error_description=""#),
            "{challenge}"
        );
    }

    // Logout: 204 without a body, whether or not a session existed.
    let token = login.token.expose_secret();
    for _ in 0..2 {
        let outcome = auth.logout(token).await.expect("logout");
        let r = p.logged_out(token, &outcome);
        assert_eq!((r.status, r.body.as_str()), (204, ""));
        assert_eq!(r.header("content-type"), None);
        assert_eq!(r.header("cache-control"), Some("no-store"));
    }

    // Input, throttling, overload, outage, internal: no backend detail ever.
    let long = p.error(&login_error(&auth, &"e".repeat(400), "password").await);
    problem(&long, 422, "input_too_long");
    login_error(&auth, "test@increasecard.com", "x").await;
    let throttled = p.error(&login_error(&auth, "test@increasecard.com", "password").await);
    problem(&throttled, 429, "throttled");
    assert_eq!(throttled.retry_after(), Some(90));
    let down = Error::Store(StoreError::backend("connection to 10.0.0.5:5432 refused"));
    let r = p.error(&down);
    let body = problem(&r, 503, "unavailable");
    assert!(!r.body.contains("10.0.0.5"), "{body}");
    assert_eq!(r.header("www-authenticate"), None);
    let overloaded = Error::Overloaded {
        retry_after: Duration::from_secs(1),
    };
    let r = p.error(&overloaded);
    problem(&r, 503, "overloaded");
    assert_eq!(r.retry_after(), Some(1));
    let r = p.error(&Error::PasswordHash(keycard::HashError::other(
        "corrupt hash",
    )));
    problem(&r, 500, "internal");

    // A weak new password: 422, every failed rule named.
    let weak = keycard::PasswordPolicy::default()
        .check("password", Some("password@example.com"))
        .expect_err("weak");
    let r = p.error(&Error::WeakPassword(weak.clone()));
    let body = problem(&r, 422, "weak_password");
    assert_eq!(
        body["failed_rules"],
        serde_json::json!(["common", "contains_email"])
    );
    assert!(
        body["detail"]
            .as_str()
            .is_some_and(|d| d.contains("common")),
        "{body}"
    );
    assert_eq!(
        SessionsApi.error(&Error::WeakPassword(weak.clone())).status,
        422
    );
    let r = LoginApi.error(&Error::WeakPassword(weak));
    assert_eq!(r.status, 422);
    assert!(
        r.body.starts_with(r#"{"error":"choose another password: "#),
        "{}",
        r.body
    );

    // Over the session cap (refuse policy): 409.
    let r = p.error(&Error::TooManySessions { max: 100 });
    let body = problem(&r, 409, "too_many_sessions");
    assert!(
        body["detail"].as_str().is_some_and(|d| d.contains("100")),
        "{body}"
    );
    assert_eq!(
        SessionsApi
            .error(&Error::TooManySessions { max: 100 })
            .status,
        422
    );
    assert_eq!(
        LoginApi.error(&Error::TooManySessions { max: 100 }).status,
        409
    );

    // A proof of the password too old for the action: RFC 9470's step-up challenge.
    let stale = Error::ReauthenticationRequired {
        within: Duration::from_secs(300),
    };
    let r = p.error(&stale);
    problem(&r, 401, "reauthentication_required");
    assert_eq!(
        r.header("www-authenticate"),
        Some(
            r#"Bearer error="insufficient_user_authentication", error_description="re-authenticate and retry", max_age=300"#
        )
    );
    assert_eq!(SessionsApi.error(&stale).status, 422);
    let r = LoginApi.error(&stale);
    assert_eq!((r.status, r.header("www-authenticate")), (403, None));

    // Rejections before the core: the status's own title and code.
    let body = problem(
        &p.rejection(415, "JSON only"),
        415,
        "unsupported_media_type",
    );
    assert_eq!(body["title"], "Unsupported Media Type");
    assert_eq!(body["detail"], "JSON only");
    problem(&p.rejection(404, "Not found"), 404, "not_found");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Whatever bytes a client sends as a token, validate and logout answer with a typed
    /// outcome (never a panic), and both protocols render it.
    #[test]
    fn garbage_tokens_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200), shaped in "[A-Za-z0-9_.-]{60,70}") {
        let rt = tokio::runtime::Builder::new_current_thread().build().expect("runtime");
        let auth = seeded(false);
        for candidate in [String::from_utf8_lossy(&bytes).into_owned(), shaped] {
            rt.block_on(async {
                let err = auth.validate(&candidate).await.expect_err("no such session");
                prop_assert!(matches!(err, Error::MalformedToken | Error::InvalidToken), "{err:?}");
                prop_assert!(SessionsApi.error(&err).status == 422);
                prop_assert!(LoginApi.error(&err).status == 401);
                prop_assert!(StandardApi.error(&err).status == 401);
                prop_assert_eq!(auth.logout(&candidate).await.expect("logout"), Logout::NoSession);
                Ok(())
            })?;
        }
    }
}
