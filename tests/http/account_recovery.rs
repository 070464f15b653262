//! Account recovery and verification over real HTTP and real SMTP: the `accounts_api` app as
//! its binary runs with `--smtp` (login requires a verified address), its mails sent by
//! `SmtpMailer` to an SMTP server on a loopback port (`support::smtp_sink`), on the in-memory
//! stores and on PostgreSQL. Every flow of the contract (register, verify, forgot / reset,
//! sign-in links, email change), enumeration, single use under 50 concurrent consumes, expiry
//! on a manual clock, a reset link outliving a password change, a look-alike address, and
//! mail-bombing.

use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use keycard::account::Accounts;
use keycard::http::{SessionCookie, TrustedProxies};
use keycard::mail::SmtpMailer;
use keycard::one_time::{MemoryOneTimeStore, OneTimeTokenStore, OneTimeTokens};
use keycard::{Argon2Hasher, ManualClock, MemoryThrottle, MemoryTokenStore, MemoryUserStore};
use keycard::{TokenStore, UserRecord};
use serde_json::{json, Value};

use crate::app::Users;
use crate::support::server::{client_ip, Reply, Server};
use crate::support::smtp_sink::SmtpSink;

const PASSWORD: &str = "correct horse battery staple";
const NEW_PASSWORD: &str = "a brand new long passphrase";
const FROM: &str = "accounts@example.com";

/// Where users, sessions and one-time tokens live.
#[derive(Debug, Clone, Copy)]
enum Backing {
    Memory,
    #[cfg(feature = "postgres")]
    Postgres,
}

/// The app, its SMTP server, its flows (to wait for mail) and its clock.
struct Rig {
    server: Server,
    sink: SmtpSink,
    flows: Accounts<Users>,
    clock: ManualClock,
}

/// A fresh address for this run (PostgreSQL keeps the users of earlier runs).
fn fresh(name: &str) -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!(
        "{name}-{nanos:x}-{}@example.com",
        N.fetch_add(1, Ordering::Relaxed)
    )
}

async fn stores(backing: Backing) -> (Users, Arc<dyn TokenStore>, Arc<dyn OneTimeTokenStore>) {
    match backing {
        Backing::Memory => (
            Arc::new(MemoryUserStore::<UserRecord>::new()),
            Arc::new(MemoryTokenStore::new()),
            Arc::new(MemoryOneTimeStore::new()),
        ),
        #[cfg(feature = "postgres")]
        Backing::Postgres => {
            let url = std::env::var("KEYCARD_POSTGRES_URL")
                .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned());
            let db = keycard::postgres::Postgres::connect(&url)
                .await
                .unwrap_or_else(|e| {
                    panic!(
                        "PostgreSQL at {url} is unreachable ({e}): start it, or point \
                     KEYCARD_POSTGRES_URL at one; these tests never skip"
                    )
                });
            db.migrate().await.expect("migrate");
            (
                Arc::new(db.user_store()),
                Arc::new(db.token_store()),
                Arc::new(db.one_time_store()),
            )
        }
    }
}

/// The app as `accounts_api --smtp` runs it, on `backing`.
async fn rig(backing: Backing) -> Rig {
    let sink = SmtpSink::start().await;
    let clock = ManualClock::new(time::OffsetDateTime::now_utc());
    let (users, tokens, one_time) = stores(backing).await;
    let day = Duration::from_secs(24 * 60 * 60);
    let auth = crate::app::authenticator(users, tokens, day)
        .password_hasher(Argon2Hasher::insecure_for_tests())
        .throttle(MemoryThrottle::default())
        .clock(clock.clone())
        .require_verified_email(true)
        .build();
    let one_time = OneTimeTokens::from_arc(one_time).with_clock(clock.clone());
    let mailer = SmtpMailer::from_url(&sink.url(), FROM).expect("a loopback SMTP URL");
    let app = crate::support::accounts::app_with(
        auth,
        one_time,
        Arc::new(mailer),
        SessionCookie::default(),
        TrustedProxies::none(),
    );
    let flows = app.flows().clone();
    Rig {
        server: Server::start(crate::app::router(app)).await,
        sink,
        flows,
        clock,
    }
}

impl Rig {
    async fn post(&self, path: &str, body: Value) -> Reply {
        self.server.json("POST", path, &body.to_string()).await
    }

    async fn post_from(&self, from: IpAddr, path: &str, body: Value) -> Reply {
        self.server
            .json_from(from, "POST", path, &body.to_string())
            .await
    }

    async fn login(&self, email: &str, password: &str) -> Reply {
        self.post("/login", json!({ "email": email, "password": password }))
            .await
    }

    /// The token of the `n`th mail (1-based) to `to`, once it arrived.
    async fn token_of_mail(&self, to: &str, n: usize) -> String {
        let mails = self.sink.wait_for(to, n).await;
        mails[n - 1]
            .token()
            .unwrap_or_else(|| panic!("no token= link in {:#?}", mails[n - 1]))
    }

    /// Registers `email` and verifies it by the mailed link.
    async fn verified_user(&self, email: &str) {
        let reply = self
            .post("/register", json!({ "email": email, "password": PASSWORD }))
            .await;
        assert_eq!(reply.status, 202, "{reply:?}");
        let token = self.token_of_mail(email, 1).await;
        let reply = self.post("/email/verify", json!({ "token": token })).await;
        assert_eq!(reply.status, 200, "{reply:?}");
    }
}

#[track_caller]
fn assert_code(reply: &Reply, status: u16, code: &str) {
    assert_eq!(reply.status, status, "{reply:?}");
    assert_eq!(reply.json()["code"], code, "{reply:?}");
}

fn token_of(reply: &Reply) -> String {
    reply.json()["token"]
        .as_str()
        .unwrap_or_else(|| panic!("no token in {reply:?}"))
        .to_owned()
}

async fn whole_lifecycle(backing: Backing) {
    let rig = rig(backing).await;
    let ann = fresh("ann");

    // Register: 202, a verification link by mail; no login before it is followed.
    let reply = rig
        .post("/register", json!({ "email": ann, "password": PASSWORD }))
        .await;
    assert_eq!(reply.status, 202, "{reply:?}");
    assert_code(&rig.login(&ann, PASSWORD).await, 403, "email_not_verified");
    let verification = rig.sink.wait_for(&ann, 1).await.remove(0);
    let text = verification.decoded();
    assert!(text.contains("/verify-email#token=kcot_"), "{text}");
    let token = verification.token().expect("a link");
    assert_eq!(
        rig.post("/email/verify", json!({ "token": token }))
            .await
            .status,
        200
    );
    assert_code(
        &rig.post("/email/verify", json!({ "token": token })).await,
        400,
        "invalid_link",
    );
    let first = rig.login(&ann, PASSWORD).await;
    assert_eq!(first.status, 200, "{first:?}");
    let session = token_of(&first);

    // Forgot / reset: a weak password is refused and leaves the link usable; the reset ends
    // every session and mails a notice.
    assert_eq!(
        rig.post("/password/forgot", json!({ "email": ann }))
            .await
            .status,
        202
    );
    let reset = rig.token_of_mail(&ann, 2).await;
    let weak = rig
        .post(
            "/password/reset",
            json!({ "token": reset, "new_password": "password1" }),
        )
        .await;
    assert_code(&weak, 422, "weak_password");
    let done = rig
        .post(
            "/password/reset",
            json!({ "token": reset, "new_password": NEW_PASSWORD }),
        )
        .await;
    assert_eq!(done.status, 200, "{done:?}");
    let me =
        crate::support::server::send(rig.server.request("GET", "/me").bearer_auth(&session)).await;
    assert_eq!(me.status, 401, "the reset ended the old session: {me:?}");
    let notice = rig.sink.wait_for(&ann, 3).await.remove(2);
    assert!(notice.token().is_none(), "{notice:?}");
    assert_eq!(rig.login(&ann, PASSWORD).await.status, 401);
    assert_eq!(rig.login(&ann, NEW_PASSWORD).await.status, 200);

    // A sign-in link gives a session, once.
    assert_eq!(
        rig.post("/login/email", json!({ "email": ann }))
            .await
            .status,
        202
    );
    let link = rig.token_of_mail(&ann, 4).await;
    let signed_in = rig
        .post("/login/email/verify", json!({ "token": link }))
        .await;
    assert_eq!(signed_in.status, 200, "{signed_in:?}");
    let body = signed_in.json();
    assert!(body["expires_at"].is_string(), "{body}");
    assert!(signed_in.header("set-cookie").is_some());
    let session = token_of(&signed_in);
    assert_code(
        &rig.post("/login/email/verify", json!({ "token": link }))
            .await,
        400,
        "invalid_link",
    );

    // Email change: the password proved, a link to the new address, a notice to the old;
    // the change happens on confirmation.
    let new_address = fresh("ann-new");
    let wrong = crate::support::server::send(
        rig.server
            .request("POST", "/email")
            .bearer_auth(&session)
            .json(&json!({ "new_email": new_address, "password": "wrong password" })),
    )
    .await;
    assert_code(&wrong, 403, "invalid_credentials");
    let asked = crate::support::server::send(
        rig.server
            .request("POST", "/email")
            .bearer_auth(&session)
            .json(&json!({ "new_email": new_address, "password": NEW_PASSWORD })),
    )
    .await;
    assert_eq!(asked.status, 202, "{asked:?}");
    let confirm = rig.token_of_mail(&new_address, 1).await;
    let told = rig.sink.wait_for(&ann, 5).await.remove(4);
    assert!(
        told.token().is_none(),
        "the old address gets no token: {told:?}"
    );
    assert_eq!(rig.login(&new_address, NEW_PASSWORD).await.status, 401);
    let confirmed = rig
        .post("/email/confirm", json!({ "token": confirm }))
        .await;
    assert_eq!(confirmed.status, 200, "{confirmed:?}");
    assert_eq!(rig.login(&new_address, NEW_PASSWORD).await.status, 200);
    assert_eq!(rig.login(&ann, NEW_PASSWORD).await.status, 401);
    rig.sink.wait_for(&ann, 6).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_flow_over_http_and_smtp_on_memory_stores() {
    whole_lifecycle(Backing::Memory).await;
}

#[cfg(feature = "postgres")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_flow_over_http_and_smtp_on_postgres() {
    whole_lifecycle(Backing::Postgres).await;
}

/// Known and unknown emails: the same status and body at registration and at "forgot
/// password", and within noise the same time; the owner of a taken address gets a notice
/// with no token in it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn known_and_unknown_emails_get_the_same_answer_in_the_same_time() {
    let rig = rig(Backing::Memory).await;
    let ann = fresh("ann");
    rig.verified_user(&ann).await;

    let taken = rig
        .post(
            "/register",
            json!({ "email": ann, "password": NEW_PASSWORD }),
        )
        .await;
    let stranger = fresh("stranger");
    let new = rig
        .post(
            "/register",
            json!({ "email": stranger, "password": NEW_PASSWORD }),
        )
        .await;
    assert_eq!(taken.pair(), new.pair());
    let notice = rig.sink.wait_for(&ann, 2).await.remove(1);
    assert!(notice.token().is_none(), "{notice:?}");
    assert!(notice.decoded().contains("/forgot-password"), "{notice:?}");
    assert!(rig.sink.wait_for(&stranger, 1).await[0].token().is_some());

    // Forgot password, timed from distinct addresses (each under its own limit): known and
    // unknown interleaved.
    let unknown = fresh("nobody");
    let (mut known_times, mut unknown_times) = (Vec::new(), Vec::new());
    let mut from = 100;
    for _ in 0..16 {
        for (email, times) in [(&ann, &mut known_times), (&unknown, &mut unknown_times)] {
            from += 1;
            let started = Instant::now();
            let reply = rig
                .post_from(
                    client_ip(from),
                    "/password/forgot",
                    json!({ "email": email }),
                )
                .await;
            times.push(started.elapsed());
            assert_eq!(reply.pair(), taken_forgot_answer(&reply));
        }
    }
    known_times.sort();
    unknown_times.sort();
    let (known, unknown_median) = (known_times[8], unknown_times[8]);
    eprintln!("forgot password, median answer: known {known:?}, unknown {unknown_median:?}");
    let (slow, fast) = (known.max(unknown_median), known.min(unknown_median));
    assert!(
        slow <= fast * 3 + Duration::from_millis(2),
        "known {known:?} vs unknown {unknown_median:?}"
    );
}

/// The one answer "forgot password" gives: 202 and the protocol's message.
fn taken_forgot_answer(reply: &Reply) -> (u16, &str) {
    assert_eq!(reply.status, 202, "{reply:?}");
    (
        202,
        r#"{"message":"If the address can receive it, a mail is on its way; follow its link"}"#,
    )
}

/// 50 concurrent resets with one link: exactly one wins; the others are told the link is
/// invalid.
async fn fifty_concurrent_consumes(backing: Backing) {
    let rig = Arc::new(rig(backing).await);
    let ann = fresh("ann");
    rig.verified_user(&ann).await;
    rig.post("/password/forgot", json!({ "email": ann })).await;
    let reset = rig.token_of_mail(&ann, 2).await;
    // From 50 addresses, as an attacker holding a leaked link would (one address would meet
    // its own bound on hashes in flight first: 429).
    let tasks: Vec<_> = (0..50)
        .map(|n| {
            let (rig, reset) = (Arc::clone(&rig), reset.clone());
            tokio::spawn(async move {
                let body = json!({ "token": reset, "new_password": NEW_PASSWORD });
                rig.post_from(client_ip(300 + n), "/password/reset", body)
                    .await
                    .status
            })
        })
        .collect();
    let mut statuses = Vec::new();
    for task in tasks {
        statuses.push(task.await.expect("a reset task"));
    }
    let won = statuses.iter().filter(|s| **s == 200).count();
    let refused = statuses.iter().filter(|s| **s == 400).count();
    assert_eq!((won, refused), (1, 49), "{statuses:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_concurrent_resets_with_one_link_one_wins_on_memory() {
    fifty_concurrent_consumes(Backing::Memory).await;
}

#[cfg(feature = "postgres")]
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_concurrent_resets_with_one_link_one_wins_on_postgres() {
    fifty_concurrent_consumes(Backing::Postgres).await;
}

/// A reset link expires after 30 minutes (on the app's clock).
#[tokio::test]
async fn a_reset_link_expires() {
    let rig = rig(Backing::Memory).await;
    let ann = fresh("ann");
    rig.verified_user(&ann).await;
    rig.post("/password/forgot", json!({ "email": ann })).await;
    let reset = rig.token_of_mail(&ann, 2).await;
    rig.clock.advance(Duration::from_secs(30 * 60 + 1));
    let late = rig
        .post(
            "/password/reset",
            json!({ "token": reset, "new_password": NEW_PASSWORD }),
        )
        .await;
    assert_code(&late, 400, "invalid_link");
    assert_eq!(rig.login(&ann, PASSWORD).await.status, 200);
}

/// A reset link issued before a password change is refused after it.
#[tokio::test]
async fn a_reset_link_dies_with_a_password_change() {
    let rig = rig(Backing::Memory).await;
    let ann = fresh("ann");
    rig.verified_user(&ann).await;
    rig.post("/password/forgot", json!({ "email": ann })).await;
    let reset = rig.token_of_mail(&ann, 2).await;
    let session = token_of(&rig.login(&ann, PASSWORD).await);
    let changed = crate::support::server::send(
        rig.server
            .request("POST", "/password")
            .bearer_auth(&session)
            .json(&json!({ "current_password": PASSWORD, "new_password": NEW_PASSWORD })),
    )
    .await;
    assert_eq!(changed.status, 200, "{changed:?}");
    let stale = rig
        .post(
            "/password/reset",
            json!({ "token": reset, "new_password": "yet another long passphrase" }),
        )
        .await;
    assert_code(&stale, 400, "stale_link");
    assert_eq!(rig.login(&ann, NEW_PASSWORD).await.status, 200);
}

/// "Forgot password" for a look-alike of a stored address (a Kelvin sign for the `k`) mails
/// the stored address and nothing else; a distinct letter (dotless ı) is another address,
/// with no account, and gets nothing.
#[tokio::test]
async fn a_look_alike_address_mails_only_the_stored_one() {
    let rig = rig(Backing::Memory).await;
    let kim = fresh("kim");
    rig.verified_user(&kim).await;
    let kelvin = kim.replacen('k', "\u{212A}", 1);
    let dotless = kim.replacen('i', "\u{0131}", 1);
    for email in [&kelvin, &dotless] {
        let reply = rig
            .post("/password/forgot", json!({ "email": email }))
            .await;
        assert_eq!(reply.status, 202, "{reply:?}");
    }
    rig.flows.flush().await;
    let reset = rig.sink.wait_for(&kim, 2).await;
    assert_eq!(reset.len(), 2, "one verification, one reset: {reset:#?}");
    let recipients: Vec<Vec<String>> = rig.sink.mails().into_iter().map(|m| m.to).collect();
    assert!(
        recipients.iter().flatten().all(|to| to == &kim),
        "only the stored address is ever mailed: {recipients:?}"
    );
}

/// Nobody can mail-bomb a user: 12 "forgot password" requests for one address from 12
/// addresses send at most 5 mails; one address asking for many emails is refused (429) past
/// its own limit.
#[tokio::test]
async fn mail_bombing_is_capped() {
    let rig = rig(Backing::Memory).await;
    let ann = fresh("ann");
    rig.verified_user(&ann).await;
    for n in 0..12 {
        let reply = rig
            .post_from(
                client_ip(200 + n),
                "/password/forgot",
                json!({ "email": ann }),
            )
            .await;
        assert_eq!(reply.status, 202, "{reply:?}");
    }
    rig.flows.flush().await;
    let resets = rig.sink.mails_to(&ann).len() - 1;
    assert_eq!(resets, 5, "at most 5 reset mails per address per hour");

    let attacker = client_ip(240);
    let mut statuses = Vec::new();
    for _ in 0..22 {
        let reply = rig
            .post_from(
                attacker,
                "/password/forgot",
                json!({ "email": fresh("victim") }),
            )
            .await;
        statuses.push(reply.status);
        if reply.status == 429 {
            assert!(reply.header("retry-after").is_some(), "{reply:?}");
        }
    }
    assert_eq!(
        statuses.iter().filter(|s| **s == 202).count(),
        20,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 429).count(),
        2,
        "{statuses:?}"
    );
}
