//! The account flows on actix-web: `HttpAccounts` in `web::Data`, the flow bodies through
//! actix's own `web::Json`, the client through `keycard::actix_web::Client`, mail over real
//! SMTP to a server on a loopback port. Registration answers alike for new and taken
//! addresses; forgot / reset and a sign-in link work end to end in actix's runtime.

use std::sync::Arc;

use actix_web::{test, web, App};
use keycard::account::{Accounts, Links};
use keycard::actix_web::{Client, CurrentSession};
use keycard::http::{
    Credentials, EmailBody, EmailChangeBody, HttpAccounts, HttpAuth, PasswordResetBody, Response,
    StandardApi, TokenBody,
};
use keycard::mail::{DefaultRenderer, MailQueue, SmtpMailer};
use keycard::one_time::{MemoryOneTimeStore, OneTimeTokens};
use keycard::{Argon2Hasher, Authenticator, MemoryTokenStore, MemoryUserStore, UserRecord};
use serde_json::{json, Value};

use crate::support::smtp_sink::SmtpSink;

type Users = Arc<MemoryUserStore<UserRecord>>;
type Flows = web::Data<HttpAccounts<Users>>;

async fn register(
    flows: Flows,
    client: Client<UserRecord>,
    body: web::Json<Credentials>,
) -> Response {
    flows.register(&body, &client).await
}

async fn forgot(flows: Flows, client: Client<UserRecord>, body: web::Json<EmailBody>) -> Response {
    flows.forgot_password(&body, &client).await
}

async fn reset(
    flows: Flows,
    client: Client<UserRecord>,
    body: web::Json<PasswordResetBody>,
) -> Response {
    flows.reset_password(&body, &client).await
}

async fn sign_in(flows: Flows, client: Client<UserRecord>, body: web::Json<TokenBody>) -> Response {
    flows.sign_in_with_link(&body, client.into_inner()).await
}

async fn link(flows: Flows, client: Client<UserRecord>, body: web::Json<EmailBody>) -> Response {
    flows.request_sign_in_link(&body, &client).await
}

async fn change_email(
    flows: Flows,
    me: CurrentSession<UserRecord>,
    client: Client<UserRecord>,
    body: web::Json<EmailChangeBody>,
) -> Response {
    flows
        .request_email_change(&me.session, &body, &client)
        .await
}

#[test]
fn the_account_flows_on_actix_web() {
    actix_web::rt::System::new().block_on(async {
        let sink = SmtpSink::start().await;
        let users: Users = Arc::new(MemoryUserStore::new());
        let auth = Authenticator::builder(users, MemoryTokenStore::new())
            .password_hasher(Argon2Hasher::insecure_for_tests())
            .build();
        let http = HttpAuth::new(auth.clone(), StandardApi);
        let mailer = SmtpMailer::from_url(&sink.url(), "accounts@example.com").expect("loopback");
        let accounts = Accounts::builder(
            auth,
            OneTimeTokens::new(MemoryOneTimeStore::new()),
            MailQueue::spawn(mailer, DefaultRenderer::new("Example")),
            Links::new("https://app.example.com").expect("a URL"),
        )
        .build();
        let flows = web::Data::new(HttpAccounts::new(accounts, http.clone()));
        let app = test::init_service(
            App::new()
                .app_data(http)
                .app_data(flows)
                .route("/register", web::post().to(register))
                .route("/password/forgot", web::post().to(forgot))
                .route("/password/reset", web::post().to(reset))
                .route("/login/email", web::post().to(link))
                .route("/login/email/verify", web::post().to(sign_in))
                .route("/email", web::post().to(change_email)),
        )
        .await;
        let post = |path: &'static str, body: Value| {
            test::TestRequest::post()
                .uri(path)
                .insert_header(("content-type", "application/json"))
                .set_payload(body.to_string())
                .to_request()
        };

        let ann = json!({ "email": "ann@example.com", "password": "correct horse battery staple" });
        let new = test::call_service(&app, post("/register", ann.clone())).await;
        assert_eq!(new.status(), 202);
        let new_body = test::read_body(new).await;
        let taken = test::call_service(&app, post("/register", ann)).await;
        assert_eq!(taken.status(), 202);
        assert_eq!(test::read_body(taken).await, new_body);

        for email in ["ann@example.com", "nobody@example.com"] {
            let reply =
                test::call_service(&app, post("/password/forgot", json!({ "email": email }))).await;
            assert_eq!(reply.status(), 202);
        }
        // Verification, the taken-address notice, the reset link.
        let mails = sink.wait_for("ann@example.com", 3).await;
        let reset_token = mails[2].token().expect("a reset link");
        let weak = test::call_service(
            &app,
            post(
                "/password/reset",
                json!({ "token": reset_token, "new_password": "password1" }),
            ),
        )
        .await;
        assert_eq!(weak.status(), 422);
        let done = test::call_service(
            &app,
            post(
                "/password/reset",
                json!({ "token": reset_token, "new_password": "a brand new long passphrase" }),
            ),
        )
        .await;
        assert_eq!(done.status(), 200);

        let asked = test::call_service(
            &app,
            post("/login/email", json!({ "email": "ann@example.com" })),
        )
        .await;
        assert_eq!(asked.status(), 202);
        let mails = sink.wait_for("ann@example.com", 5).await;
        let link_token = mails[4].token().expect("a sign-in link");
        let signed_in = test::call_service(
            &app,
            post("/login/email/verify", json!({ "token": link_token })),
        )
        .await;
        assert_eq!(signed_in.status(), 200);
        let body: Value = test::read_body_json(signed_in).await;
        let token = body["token"].as_str().expect("a session token").to_owned();

        let change = test::TestRequest::post()
            .uri("/email")
            .insert_header(("authorization", format!("Bearer {token}")))
            .insert_header(("content-type", "application/json"))
            .set_payload(
                json!({ "new_email": "ann@new.example", "password": "a brand new long passphrase" })
                    .to_string(),
            )
            .to_request();
        assert_eq!(test::call_service(&app, change).await.status(), 202);
        assert!(sink.wait_for("ann@new.example", 1).await[0]
            .token()
            .is_some());
    });
}
