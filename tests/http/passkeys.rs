//! Passkeys over real HTTP, through the `accounts_api` app, without a browser: what a client
//! without an authenticator can try. Ceremonies forged, reused, expired or another user's are
//! refused; a made-up assertion is refused and spends its ceremony; beginning a passwordless
//! login is counted per client address; the registration options ask for a discoverable
//! credential on the configured relying party; passkeys are managed by their owner only.
//! (The ceremonies with a real authenticator run in `browser`.)

use std::sync::Arc;
use std::time::Duration;

use keycard::http::{SessionCookie, TrustedProxies};
use keycard::mfa::MemoryPasskeyStore;
use keycard::one_time::{MemoryOneTimeStore, OneTimeTokenStore};
use keycard::{Argon2Hasher, ManualClock, MemoryTokenStore, MemoryUserStore, UserRecord};
use serde_json::{json, Value};

use crate::support::server::{client_ip, send, Reply, Server};

const PASSWORD: &str = "correct horse battery staple";

struct App {
    server: Server,
    clock: ManualClock,
}

async fn start() -> App {
    let clock = ManualClock::new(time::OffsetDateTime::now_utc());
    let one_time: Arc<dyn OneTimeTokenStore> = Arc::new(MemoryOneTimeStore::new());
    let passkeys = crate::app::passkeys("localhost", "http://localhost:3000", one_time)
        .expect("a valid relying party");
    let day = Duration::from_secs(24 * 60 * 60);
    let auth = crate::app::authenticator(
        Arc::new(MemoryUserStore::<UserRecord>::new()),
        Arc::new(MemoryTokenStore::new()),
        day,
    )
    .password_hasher(Argon2Hasher::insecure_for_tests())
    .clock(clock.clone())
    .passkeys(passkeys, MemoryPasskeyStore::new())
    .build();
    let app = crate::support::accounts::app(auth, SessionCookie::default(), TrustedProxies::none());
    App {
        server: Server::start(crate::app::router(app)).await,
        clock,
    }
}

/// Registers `email` and logs in: the bearer token.
async fn session(server: &Server, email: &str) -> String {
    let body = json!({ "email": email, "password": PASSWORD }).to_string();
    assert_eq!(server.json("POST", "/register", &body).await.status, 202);
    let login = server.json("POST", "/login", &body).await;
    assert_eq!(login.status, 200, "{}", login.body);
    json_of(&login)["token"]
        .as_str()
        .expect("a token")
        .to_owned()
}

fn json_of(reply: &Reply) -> Value {
    serde_json::from_str(&reply.body).expect("a JSON body")
}

async fn call(server: &Server, method: &str, path: &str, token: &str, body: Value) -> Reply {
    send(
        server
            .request(method, path)
            .bearer_auth(token)
            .header("content-type", "application/json")
            .body(body.to_string()),
    )
    .await
}

/// An assertion no authenticator made, well-formed JSON.
fn made_up_assertion() -> Value {
    json!({
        "id": "AAECAwQFBgcICQoLDA0ODw",
        "rawId": "AAECAwQFBgcICQoLDA0ODw",
        "type": "public-key",
        "response": {
            "authenticatorData": "SZYN5YgOjGh0NBcPZHZgW4_krrmihjLHmVzzuoMdl2MFAAAAAQ",
            "clientDataJSON": "eyJ0eXBlIjoid2ViYXV0aG4uZ2V0In0",
            "signature": "MEUCIQ",
            "userHandle": null
        }
    })
}

/// An attestation no authenticator made, well-formed JSON.
fn made_up_attestation() -> Value {
    json!({
        "id": "AAECAwQFBgcICQoLDA0ODw",
        "rawId": "AAECAwQFBgcICQoLDA0ODw",
        "type": "public-key",
        "response": {
            "attestationObject": "o2NmbXRkbm9uZQ",
            "clientDataJSON": "eyJ0eXBlIjoid2ViYXV0aG4uY3JlYXRlIn0"
        }
    })
}

/// The problem document's text, where its code is.
fn problem(reply: &Reply) -> String {
    json_of(reply).to_string()
}

async fn begin_login(server: &Server) -> String {
    let begun = server.json("POST", "/login/passkey", "{}").await;
    assert_eq!(begun.status, 200, "{}", begun.body);
    let body = json_of(&begun);
    assert!(
        body["options"]["publicKey"]["challenge"].is_string(),
        "{body}"
    );
    assert_eq!(body["options"]["publicKey"]["rpId"], "localhost", "{body}");
    body["ceremony"].as_str().expect("a ceremony").to_owned()
}

#[tokio::test]
async fn forged_reused_and_expired_login_ceremonies_are_refused() {
    let app = start().await;
    let server = &app.server;
    let finish = |ceremony: String| {
        json!({ "ceremony": ceremony, "credential": made_up_assertion() }).to_string()
    };

    // A ceremony nobody issued.
    let forged = server
        .json(
            "POST",
            "/login/passkey/finish",
            &finish("kcot_forged".into()),
        )
        .await;
    assert_eq!(forged.status, 400, "{}", forged.body);
    assert!(
        problem(&forged).contains("invalid_ceremony"),
        "{}",
        forged.body
    );

    // A real ceremony, a made-up answer: refused, and the ceremony is spent.
    let ceremony = begin_login(server).await;
    let rejected = server
        .json("POST", "/login/passkey/finish", &finish(ceremony.clone()))
        .await;
    assert_eq!(rejected.status, 403, "{}", rejected.body);
    assert!(
        problem(&rejected).contains("passkey_rejected"),
        "{}",
        rejected.body
    );
    assert!(rejected.headers.get("set-cookie").is_none());
    let reused = server
        .json("POST", "/login/passkey/finish", &finish(ceremony))
        .await;
    assert_eq!(reused.status, 400, "{}", reused.body);
    assert!(
        problem(&reused).contains("invalid_ceremony"),
        "{}",
        reused.body
    );

    // Five minutes later a ceremony is dead.
    let ceremony = begin_login(server).await;
    app.clock.advance(Duration::from_secs(5 * 60 + 1));
    let expired = server
        .json("POST", "/login/passkey/finish", &finish(ceremony))
        .await;
    assert_eq!(expired.status, 400, "{}", expired.body);
    assert!(
        problem(&expired).contains("invalid_ceremony"),
        "{}",
        expired.body
    );
}

#[tokio::test]
async fn beginning_passwordless_logins_is_counted_per_address() {
    let app = start().await;
    let server = &app.server;
    let (flood, other) = (client_ip(40), client_ip(41));
    for i in 0..30 {
        let begun = server
            .json_from(flood, "POST", "/login/passkey", "{}")
            .await;
        assert_eq!(begun.status, 200, "begin {i}: {}", begun.body);
    }
    let refused = server
        .json_from(flood, "POST", "/login/passkey", "{}")
        .await;
    assert_eq!(refused.status, 429, "{}", refused.body);
    assert!(refused.headers.get("retry-after").is_some());
    let elsewhere = server
        .json_from(other, "POST", "/login/passkey", "{}")
        .await;
    assert_eq!(elsewhere.status, 200, "{}", elsewhere.body);
    app.clock.advance(Duration::from_secs(61));
    let later = server
        .json_from(flood, "POST", "/login/passkey", "{}")
        .await;
    assert_eq!(later.status, 200, "{}", later.body);
}

#[tokio::test]
async fn registration_ceremonies_are_the_users_own_and_checked() {
    let app = start().await;
    let server = &app.server;
    let ann = session(server, "ann@example.com").await;
    let eve = session(server, "eve@example.com").await;

    let anonymous = server.json("POST", "/passkeys/register", "{}").await;
    assert_eq!(anonymous.status, 401, "{}", anonymous.body);

    let begun = call(server, "POST", "/passkeys/register", &ann, json!({})).await;
    assert_eq!(begun.status, 200, "{}", begun.body);
    let body = json_of(&begun);
    let options = &body["options"]["publicKey"];
    assert_eq!(options["rp"]["id"], "localhost", "{body}");
    assert_eq!(options["user"]["name"], "ann@example.com", "{body}");
    assert_eq!(
        options["authenticatorSelection"]["residentKey"], "required",
        "a discoverable credential, for passwordless login: {body}"
    );
    assert_eq!(
        options["authenticatorSelection"]["userVerification"],
        "required"
    );
    let ceremony = body["ceremony"].as_str().expect("a ceremony").to_owned();
    let finish = |ceremony: &str| json!({ "ceremony": ceremony, "credential": made_up_attestation(), "name": "laptop" });

    // Eve cannot finish Ann's ceremony (and it stays Ann's).
    let stolen = call(
        server,
        "POST",
        "/passkeys/register/finish",
        &eve,
        finish(&ceremony),
    )
    .await;
    assert_eq!(stolen.status, 400, "{}", stolen.body);
    // Ann's made-up answer is refused and spends the ceremony.
    let rejected = call(
        server,
        "POST",
        "/passkeys/register/finish",
        &ann,
        finish(&ceremony),
    )
    .await;
    assert_eq!(rejected.status, 403, "{}", rejected.body);
    assert!(
        problem(&rejected).contains("passkey_rejected"),
        "{}",
        rejected.body
    );
    let reused = call(
        server,
        "POST",
        "/passkeys/register/finish",
        &ann,
        finish(&ceremony),
    )
    .await;
    assert_eq!(reused.status, 400, "{}", reused.body);

    // A login ceremony is no registration ceremony.
    let login_ceremony = begin_login(server).await;
    let crossed = call(
        server,
        "POST",
        "/passkeys/register/finish",
        &ann,
        finish(&login_ceremony),
    )
    .await;
    assert_eq!(crossed.status, 400, "{}", crossed.body);

    // Nothing was stored; unknown ids are "not found" for rename and remove.
    let listed = send(server.request("GET", "/passkeys").bearer_auth(&ann)).await;
    assert_eq!(listed.status, 200);
    assert_eq!(json_of(&listed), json!({ "passkeys": [] }));
    let renamed = call(
        server,
        "PATCH",
        "/passkeys/AAECAw",
        &ann,
        json!({ "name": "x" }),
    )
    .await;
    assert_eq!(renamed.status, 404, "{}", renamed.body);
    let removed = call(server, "DELETE", "/passkeys/not-base64!", &ann, json!({})).await;
    assert_eq!(removed.status, 404, "{}", removed.body);
    let long = "n".repeat(65);
    let too_long = call(
        server,
        "PATCH",
        "/passkeys/AAECAw",
        &ann,
        json!({ "name": long }),
    )
    .await;
    assert_eq!(too_long.status, 422, "{}", too_long.body);
}

#[tokio::test]
async fn a_second_step_passkey_needs_a_live_pending_login() {
    let app = start().await;
    let server = &app.server;
    let begun = server
        .json(
            "POST",
            "/login/mfa/passkey",
            &json!({ "mfa_token": "kcot_nothing" }).to_string(),
        )
        .await;
    // No second factors configured here: the server says so, and starts nothing.
    assert!(begun.status >= 400, "{}", begun.body);
    assert!(!begun.body.contains("ceremony"), "{}", begun.body);
}
