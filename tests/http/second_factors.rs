//! Second factors over real HTTP, through the `accounts_api` app: enrolment, the two-step
//! login, replays refused (also across two instances over one store), recovery codes single
//! use under concurrency, guessing capped per account across 25 pending logins from 25
//! addresses, a pending-login token that is not a session, disabling, and step-up refusals.

use std::sync::Arc;
use std::time::Duration;

use futures_util::future::join_all;
use keycard::http::{SessionCookie, TrustedProxies};
use keycard::mfa::{MemorySecondFactorStore, SecondFactorStore, SecretKey, TotpPolicy, TotpSecret};
use keycard::one_time::{MemoryOneTimeStore, OneTimeTokenStore};
use keycard::throttle::Throttle;
use keycard::{
    Argon2Hasher, ManualClock, MemoryThrottle, MemoryTokenStore, MemoryUserStore, TokenStore,
    UserRecord,
};
use serde_json::{json, Value};

use crate::support::server::{client_ip, send, Reply, Server};

const ANN: &str = "ann@example.com";
const PASSWORD: &str = "correct horse battery staple";

/// The stores one or more app instances share.
#[derive(Clone)]
struct Shared {
    users: Arc<MemoryUserStore<UserRecord>>,
    tokens: Arc<dyn TokenStore>,
    factors: Arc<dyn SecondFactorStore>,
    one_time: Arc<dyn OneTimeTokenStore>,
    throttle: Arc<dyn Throttle>,
    key: String,
    clock: ManualClock,
}

impl Shared {
    fn new() -> Self {
        let key = SecretKey::generate()
            .expect("os rng")
            .to_base64()
            .to_string();
        Self {
            users: Arc::new(MemoryUserStore::new()),
            tokens: Arc::new(MemoryTokenStore::new()),
            factors: Arc::new(MemorySecondFactorStore::new()),
            one_time: Arc::new(MemoryOneTimeStore::new()),
            throttle: Arc::new(MemoryThrottle::default()),
            key,
            clock: ManualClock::new(time::OffsetDateTime::now_utc()),
        }
    }

    /// One instance of the app over these stores.
    async fn start(&self) -> Server {
        let day = Duration::from_secs(24 * 60 * 60);
        let auth = crate::app::authenticator(self.users.clone(), self.tokens.clone(), day)
            .password_hasher(Argon2Hasher::insecure_for_tests())
            .throttle(self.throttle.clone())
            .clock(self.clock.clone())
            .second_factors(crate::app::second_factors(
                self.factors.clone(),
                self.one_time.clone(),
                SecretKey::from_base64(&self.key).expect("the key"),
            ))
            .build();
        let app =
            crate::support::accounts::app(auth, SessionCookie::default(), TrustedProxies::none());
        Server::start(crate::app::router(app)).await
    }

    /// The code Ann's app shows now.
    fn code(&self, secret: &str) -> String {
        let secret = TotpSecret::from_base32(secret).expect("a base32 secret");
        TotpPolicy::default().code_at(&secret, self.clock_now())
    }

    fn clock_now(&self) -> time::OffsetDateTime {
        keycard::Clock::now(&self.clock)
    }

    fn next_step(&self) {
        self.clock.advance(Duration::from_secs(30));
    }
}

fn bearer(
    server: &Server,
    method: &str,
    path: &str,
    token: &str,
    body: Option<Value>,
) -> reqwest::RequestBuilder {
    let request = server.request(method, path).bearer_auth(token);
    match body {
        Some(body) => request
            .header("content-type", "application/json")
            .body(body.to_string()),
        None => request,
    }
}

async fn call(
    server: &Server,
    method: &str,
    path: &str,
    token: &str,
    body: Option<Value>,
) -> Reply {
    send(bearer(server, method, path, token, body)).await
}

async fn register(server: &Server, email: &str) {
    let body = json!({ "email": email, "password": PASSWORD }).to_string();
    assert_eq!(server.json("POST", "/register", &body).await.status, 202);
}

async fn password_step(server: &Server, email: &str) -> Reply {
    let body = json!({ "email": email, "password": PASSWORD }).to_string();
    server.json("POST", "/login", &body).await
}

/// A full session token from a one-step login (no second factor yet).
async fn session(server: &Server, email: &str) -> String {
    let reply = password_step(server, email).await;
    assert_eq!(reply.status, 200, "{reply:?}");
    reply.json()["token"].as_str().expect("a token").to_owned()
}

/// Enrols and confirms an app for the session's user; returns its secret and the recovery
/// codes.
async fn enrol(shared: &Shared, server: &Server, token: &str) -> (String, Vec<String>) {
    let reply = call(server, "POST", "/mfa/totp", token, None).await;
    assert_eq!(reply.status, 200, "{reply:?}");
    let body = reply.json();
    let secret = body["secret"].as_str().expect("a secret").to_owned();
    let uri = body["otpauth_uri"].as_str().expect("a URI");
    assert!(uri.starts_with("otpauth://totp/"), "{uri}");
    assert!(uri.contains(&format!("secret={secret}")), "{uri}");
    // Not active yet: the password alone still logs in.
    assert!(password_step(server, ANN).await.json()["token"].is_string());
    let code = shared.code(&secret);
    let reply = call(
        server,
        "POST",
        "/mfa/totp/confirm",
        token,
        Some(json!({ "code": code })),
    )
    .await;
    assert_eq!(reply.status, 200, "{reply:?}");
    let codes: Vec<String> = reply.json()["recovery_codes"]
        .as_array()
        .expect("recovery codes")
        .iter()
        .map(|c| c.as_str().expect("a code").to_owned())
        .collect();
    (secret, codes)
}

/// The first step of Ann's login, which must ask for the second: its pending-login token.
async fn pending(server: &Server) -> String {
    let reply = password_step(server, ANN).await;
    assert_eq!(reply.status, 200, "{reply:?}");
    assert!(
        reply.header("set-cookie").is_none(),
        "no cookie before the second step: {reply:?}"
    );
    let body = reply.json();
    assert_eq!(body["mfa_required"], true, "{body}");
    assert!(
        body.get("token").is_none(),
        "no session token before the second step: {body}"
    );
    body["mfa_token"].as_str().expect("an mfa_token").to_owned()
}

async fn second_step(server: &Server, mfa_token: &str, proof: Value) -> Reply {
    let mut body = proof;
    body["mfa_token"] = json!(mfa_token);
    server.json("POST", "/login/mfa", &body.to_string()).await
}

#[track_caller]
fn assert_problem(reply: &Reply, status: u16, code: &str) {
    assert_eq!(reply.status, status, "{reply:?}");
    assert_eq!(reply.json()["code"], code, "{reply:?}");
}

#[tokio::test]
async fn enrol_then_log_in_in_two_steps_and_a_code_is_accepted_once() {
    let shared = Shared::new();
    let server = shared.start().await;
    register(&server, ANN).await;
    let first = session(&server, ANN).await;
    let status = call(&server, "GET", "/mfa", &first, None).await;
    assert_eq!(
        status.json(),
        json!({"totp": false, "totp_pending": false, "recovery_codes_left": 0})
    );

    // A wrong confirmation code leaves the app inactive.
    let reply = call(&server, "POST", "/mfa/totp", &first, None).await;
    let secret = reply.json()["secret"].as_str().expect("secret").to_owned();
    let wrong = call(
        &server,
        "POST",
        "/mfa/totp/confirm",
        &first,
        Some(json!({"code": "000000"})),
    )
    .await;
    if shared.code(&secret) != "000000" {
        assert_problem(&wrong, 403, "invalid_code");
    }
    let (secret, codes) = enrol(&shared, &server, &first).await;
    assert!(codes.len() >= 8);
    let status = call(&server, "GET", "/mfa", &first, None).await;
    assert_eq!(status.json()["totp"], true);
    assert_eq!(status.json()["recovery_codes_left"], codes.len());
    // Enrolling again while active is a conflict.
    assert_problem(
        &call(&server, "POST", "/mfa/totp", &first, None).await,
        409,
        "mfa_already_enabled",
    );

    // The code that confirmed the enrolment is spent: the next step's code is needed.
    let mfa_token = pending(&server).await;
    let replay = second_step(&server, &mfa_token, json!({"code": shared.code(&secret)})).await;
    assert_problem(&replay, 403, "invalid_code");
    shared.next_step();
    let code = shared.code(&secret);
    let reply = second_step(&server, &mfa_token, json!({"code": code})).await;
    assert_eq!(reply.status, 200, "{reply:?}");
    let token = reply.json()["token"].as_str().expect("a token").to_owned();
    assert!(reply.json()["expires_at"].is_string());
    assert!(reply
        .header("set-cookie")
        .is_some_and(|c| c.starts_with("__Host-session=")));
    let me = call(&server, "GET", "/me", &token, None).await;
    assert_eq!(me.json()["session"]["amr"], json!(["pwd", "otp"]));

    // The pending token was single use, and the same code does not work twice.
    assert_problem(
        &second_step(&server, &mfa_token, json!({"code": code})).await,
        401,
        "invalid_mfa_token",
    );
    let again = pending(&server).await;
    assert_problem(
        &second_step(&server, &again, json!({"code": code})).await,
        403,
        "invalid_code",
    );
}

#[tokio::test]
async fn a_pending_login_token_is_not_a_session_and_dies_after_five_wrong_codes() {
    let shared = Shared::new();
    let server = shared.start().await;
    register(&server, ANN).await;
    let first = session(&server, ANN).await;
    let (secret, _) = enrol(&shared, &server, &first).await;
    shared.next_step();

    let mfa_token = pending(&server).await;
    for path in ["/me", "/sessions", "/mfa"] {
        let reply = call(&server, "GET", path, &mfa_token, None).await;
        assert_eq!(reply.status, 401, "{path}: {reply:?}");
    }
    let right = shared.code(&secret);
    let wrong = if right == "123456" {
        "654321"
    } else {
        "123456"
    };
    for _ in 0..5 {
        assert_problem(
            &second_step(&server, &mfa_token, json!({"code": wrong})).await,
            403,
            "invalid_code",
        );
    }
    // The sixth try ends it, even with the right code.
    assert_problem(
        &second_step(&server, &mfa_token, json!({"code": right})).await,
        401,
        "invalid_mfa_token",
    );
    // And it stays ended.
    assert_problem(
        &second_step(&server, &mfa_token, json!({"code": right})).await,
        401,
        "invalid_mfa_token",
    );
    // A malformed or missing code is refused without a session.
    let fresh = pending(&server).await;
    assert_problem(
        &second_step(&server, &fresh, json!({})).await,
        403,
        "invalid_code",
    );
    assert_problem(
        &second_step(
            &server,
            &fresh,
            json!({"code": "12345678901234567890123456789012345"}),
        )
        .await,
        403,
        "invalid_code",
    );
}

#[tokio::test]
async fn guessing_is_capped_per_account_across_25_pending_logins_from_25_addresses() {
    let shared = Shared::new();
    let server = shared.start().await;
    register(&server, ANN).await;
    let first = session(&server, ANN).await;
    let (secret, _) = enrol(&shared, &server, &first).await;
    shared.next_step();

    let mut tokens = Vec::new();
    for n in 0..25 {
        let body = json!({ "email": ANN, "password": PASSWORD }).to_string();
        let reply = server
            .json_from(client_ip(10 + n), "POST", "/login", &body)
            .await;
        assert_eq!(reply.status, 200, "{reply:?}");
        tokens.push(
            reply.json()["mfa_token"]
                .as_str()
                .expect("mfa_token")
                .to_owned(),
        );
    }
    let right = shared.code(&secret);
    let wrong = if right == "111111" {
        "222222"
    } else {
        "111111"
    };
    let guesses = tokens.iter().enumerate().map(|(n, token)| {
        let body = json!({ "mfa_token": token, "code": wrong }).to_string();
        let server = &server;
        async move {
            server
                .json_from(client_ip(10 + n as u32), "POST", "/login/mfa", &body)
                .await
        }
    });
    let replies = join_all(guesses).await;
    let checked = replies.iter().filter(|r| r.status == 403).count();
    let throttled = replies.iter().filter(|r| r.status == 429).count();
    assert_eq!((checked, throttled), (10, 15), "{replies:?}");
    assert!(replies
        .iter()
        .filter(|r| r.status == 429)
        .all(|r| r.header("retry-after").is_some()));
    // The right code is refused unchecked while the account is at its limit...
    let reply = second_step(&server, &tokens[24], json!({"code": right})).await;
    assert_problem(&reply, 429, "throttled");
    // ...and works once the window has passed (with a fresh pending login: the old ones
    // lived 5 minutes).
    shared.clock.advance(Duration::from_secs(15 * 60));
    let fresh = pending(&server).await;
    let reply = second_step(&server, &fresh, json!({"code": shared.code(&secret)})).await;
    assert_eq!(reply.status, 200, "{reply:?}");
}

#[tokio::test]
async fn a_recovery_code_works_once_under_concurrency_and_replays_fail_across_two_instances() {
    let shared = Shared::new();
    let one = shared.start().await;
    let two = shared.start().await;
    register(&one, ANN).await;
    let first = session(&one, ANN).await;
    let (secret, codes) = enrol(&shared, &one, &first).await;
    shared.next_step();

    // Ten pending logins, half on each instance, all spending one recovery code at once.
    let mut pendings = Vec::new();
    for n in 0..10 {
        pendings.push(pending(if n % 2 == 0 { &one } else { &two }).await);
    }
    let code = codes[0].to_uppercase().replace('-', " ");
    let spends = pendings.iter().enumerate().map(|(n, token)| {
        let server = if n % 2 == 0 { &one } else { &two };
        let code = code.clone();
        async move { second_step(server, token, json!({"recovery_code": code})).await }
    });
    let replies = join_all(spends).await;
    let ok: Vec<&Reply> = replies.iter().filter(|r| r.status == 200).collect();
    assert_eq!(ok.len(), 1, "{replies:?}");
    assert!(
        replies.iter().all(|r| r.status == 200 || r.status == 403),
        "{replies:?}"
    );
    let token = ok[0].json()["token"].as_str().expect("token").to_owned();
    let me = call(&two, "GET", "/me", &token, None).await;
    assert_eq!(me.json()["session"]["amr"], json!(["pwd", "recovery_code"]));
    let status = call(&one, "GET", "/mfa", &token, None).await;
    assert_eq!(status.json()["recovery_codes_left"], codes.len() - 1);

    // One TOTP code sent to both instances at once: accepted once.
    shared.next_step();
    let (a, b) = (pending(&one).await, pending(&two).await);
    let totp = shared.code(&secret);
    let (ra, rb) = tokio::join!(
        second_step(&one, &a, json!({"code": totp})),
        second_step(&two, &b, json!({"code": totp}))
    );
    let mut statuses = [ra.status, rb.status];
    statuses.sort_unstable();
    assert_eq!(statuses, [200, 403], "{ra:?} {rb:?}");
}

#[tokio::test]
async fn disabling_needs_a_fresh_code_and_a_pre_enrolment_session_is_refused_sensitive_actions() {
    let shared = Shared::new();
    let server = shared.start().await;
    register(&server, ANN).await;
    let first = session(&server, ANN).await;
    let (secret, codes) = enrol(&shared, &server, &first).await;

    // Step-up: the session from before the enrolment has no second factor.
    let reply = call(&server, "POST", "/logout-others", &first, None).await;
    assert_problem(&reply, 401, "insufficient_user_authentication");
    let challenge = reply.header("www-authenticate").expect("a challenge");
    assert!(
        challenge.contains(r#"error="insufficient_user_authentication""#),
        "{challenge}"
    );
    assert!(challenge.contains(r#"acr_values="mfa""#), "{challenge}");

    // A two-step session may.
    shared.next_step();
    let mfa_token = pending(&server).await;
    let reply = second_step(&server, &mfa_token, json!({"code": shared.code(&secret)})).await;
    let strong = reply.json()["token"].as_str().expect("token").to_owned();
    assert_eq!(
        call(&server, "POST", "/logout-others", &strong, None)
            .await
            .status,
        200
    );

    // Regenerating retires the old codes.
    let reply = call(
        &server,
        "POST",
        "/mfa/recovery-codes",
        &strong,
        Some(json!({"recovery_code": codes[1]})),
    )
    .await;
    assert_eq!(reply.status, 200, "{reply:?}");
    let fresh_codes = reply.json()["recovery_codes"]
        .as_array()
        .expect("codes")
        .clone();
    let reply = call(
        &server,
        "DELETE",
        "/mfa/totp",
        &strong,
        Some(json!({"recovery_code": codes[2]})),
    )
    .await;
    assert_problem(&reply, 403, "invalid_code");

    // Disabling: a wrong code is refused, a right one removes the app.
    shared.next_step();
    let right = shared.code(&secret);
    let wrong = if right == "999999" {
        "888888"
    } else {
        "999999"
    };
    assert_problem(
        &call(
            &server,
            "DELETE",
            "/mfa/totp",
            &strong,
            Some(json!({"code": wrong})),
        )
        .await,
        403,
        "invalid_code",
    );
    assert_problem(
        &call(&server, "DELETE", "/mfa/totp", &strong, Some(json!({}))).await,
        403,
        "invalid_code",
    );
    let reply = call(
        &server,
        "DELETE",
        "/mfa/totp",
        &strong,
        Some(json!({"code": right})),
    )
    .await;
    assert_eq!(reply.status, 204, "{reply:?}");
    let status = call(&server, "GET", "/mfa", &strong, None).await;
    assert_eq!(
        status.json(),
        json!({"totp": false, "totp_pending": false, "recovery_codes_left": 0})
    );
    assert!(!fresh_codes.is_empty());
    // One step again.
    assert!(password_step(&server, ANN).await.json()["token"].is_string());
    assert_problem(
        &call(
            &server,
            "DELETE",
            "/mfa/totp",
            &strong,
            Some(json!({"code": right})),
        )
        .await,
        409,
        "mfa_not_enabled",
    );
}
