//! Second factors through the actix-web adapter over real HTTP: in cookie mode the first
//! step sets no cookie and answers the pending login, the second step sets it, and the
//! `SecondFactorSession` extractor refuses a session without the second factor its user has.

use std::sync::Arc;

use actix_web::web;
use keycard::actix_web::{Client, LoginRequest, SecondFactorSession};
use keycard::http::{
    HttpAuth, Response, SecondFactorLoginBody, SessionCookie, StandardApi, TokenSource,
    TrustedProxies,
};
use keycard::mfa::{KeyId, MemorySecondFactorStore, SecondFactors, SecretBox, SecretKey};
use keycard::one_time::MemoryOneTimeStore;
use keycard::{
    Argon2Hasher, Authenticator, ClientInfo, ManualClock, MemoryTokenStore, MemoryUserStore,
    UserRecord,
};
use serde_json::json;

use crate::support::server::{send, Server};

const EMAIL: &str = "ann@example.com";
const PASSWORD: &str = "correct horse battery staple";

async fn login(request: LoginRequest<UserRecord>) -> Response {
    request.login().await
}

async fn second_step(
    http: web::Data<HttpAuth<UserRecord>>,
    client: Client<UserRecord>,
    body: web::Json<SecondFactorLoginBody>,
) -> Response {
    http.complete_login(&body, client.into_inner()).await
}

async fn strong(me: SecondFactorSession<UserRecord>) -> String {
    me.session.amr.names().collect::<Vec<_>>().join(",")
}

#[tokio::test]
async fn the_cookie_waits_for_the_second_step_and_step_up_is_enforced() {
    let users = Arc::new(MemoryUserStore::<UserRecord>::new());
    let clock = ManualClock::new(time::OffsetDateTime::now_utc());
    let auth = Authenticator::builder(users.clone(), MemoryTokenStore::new())
        .password_hasher(Argon2Hasher::insecure_for_tests())
        .clock(clock.clone())
        .second_factors(SecondFactors::new(
            MemorySecondFactorStore::new(),
            MemoryOneTimeStore::new(),
            SecretBox::new(KeyId::new(1), SecretKey::generate().expect("os rng")),
        ))
        .build();
    let hash = auth.hash_password(PASSWORD).await.expect("hash");
    users
        .insert(UserRecord::new(1_i64, EMAIL, hash))
        .expect("insert");
    // A session from before the enrolment, then the enrolment.
    let before = auth
        .login(EMAIL, PASSWORD, ClientInfo::none())
        .await
        .expect("login");
    let enrolment = auth.begin_totp(&before.session).await.expect("begin");
    let code = auth.current_totp_code(&enrolment).expect("code");
    auth.confirm_totp(&before.session, &code, &ClientInfo::none())
        .await
        .expect("confirm");
    clock.advance(std::time::Duration::from_secs(30));

    let http = HttpAuth::new(auth.clone(), StandardApi)
        .with_token_source(TokenSource::bearer())
        .with_session_cookie(SessionCookie::default())
        .with_trusted_proxies(TrustedProxies::none());
    let data = web::Data::new(http.clone());
    let server = Server::start_actix(move |config: &mut web::ServiceConfig| {
        config
            .app_data(http.clone())
            .app_data(data.clone())
            .route("/login", web::post().to(login))
            .route("/login/mfa", web::post().to(second_step))
            .route("/strong", web::get().to(strong));
    });

    let refused = send(
        server
            .request("GET", "/strong")
            .bearer_auth(before.token.expose_secret()),
    )
    .await;
    assert_eq!(refused.status, 401, "{refused:?}");
    assert_eq!(refused.json()["code"], "insufficient_user_authentication");
    assert!(refused
        .header("www-authenticate")
        .is_some_and(|c| c.contains(r#"acr_values="mfa""#)));

    let first = send(
        server
            .request("POST", "/login")
            .header("content-type", "application/json")
            .header("sec-fetch-site", "same-origin")
            .body(json!({ "email": EMAIL, "password": PASSWORD }).to_string()),
    )
    .await;
    assert_eq!(first.status, 200, "{first:?}");
    assert!(first.header("set-cookie").is_none(), "{first:?}");
    assert_eq!(first.json()["mfa_required"], true);
    let mfa_token = first.json()["mfa_token"]
        .as_str()
        .expect("token")
        .to_owned();

    let code = auth.current_totp_code(&enrolment).expect("code");
    let second = send(
        server
            .request("POST", "/login/mfa")
            .header("content-type", "application/json")
            .body(json!({ "mfa_token": mfa_token, "code": code }).to_string()),
    )
    .await;
    assert_eq!(second.status, 200, "{second:?}");
    assert!(second
        .header("set-cookie")
        .is_some_and(|c| c.starts_with("__Host-session=")));
    let token = second.json()["token"].as_str().expect("token").to_owned();
    let ok = send(server.request("GET", "/strong").bearer_auth(&token)).await;
    assert_eq!(ok.pair(), (200, "pwd,otp"));
}
