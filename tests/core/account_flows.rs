//! The account flows as a library (`keycard::account::Accounts`), on the in-memory stores with
//! a recording mailer: what each operation answers and which mail it sends to whom. (Over
//! HTTP and real SMTP: `tests/http/account_recovery.rs`.)

use std::sync::Arc;
use std::time::Duration;

use keycard::account::{Accounts, Links};
use keycard::mail::{DefaultRenderer, MailQueue, OutgoingMail};
use keycard::one_time::{MemoryOneTimeStore, OneTimeTokens};
use keycard::{
    Argon2Hasher, Authenticator, ClientInfo, Error, ManualClock, MemoryTokenStore, MemoryUserStore,
    User, UserRecord, UserStore,
};

use crate::support::recorder::Recorder;

const ANN: &str = "ann@example.com";
const PASSWORD: &str = "correct horse battery staple";
const NEW_PASSWORD: &str = "a brand new long passphrase";

struct Rig {
    accounts: Accounts<Arc<MemoryUserStore<UserRecord>>>,
    users: Arc<MemoryUserStore<UserRecord>>,
    mail: Recorder,
    clock: ManualClock,
}

fn client() -> ClientInfo {
    ClientInfo::none().with_ip([192, 0, 2, 7].into())
}

fn rig_with(reveal_taken: bool) -> Rig {
    let users = Arc::new(MemoryUserStore::<UserRecord>::new());
    let clock = ManualClock::new(time::OffsetDateTime::now_utc());
    let auth = Authenticator::builder(users.clone(), MemoryTokenStore::new())
        .password_hasher(Argon2Hasher::insecure_for_tests())
        .clock(clock.clone())
        .require_verified_email(true)
        .build();
    let mail = Recorder::default();
    let queue = MailQueue::spawn(mail.clone(), DefaultRenderer::new("Example"));
    let one_time = OneTimeTokens::new(MemoryOneTimeStore::new()).with_clock(clock.clone());
    let links = Links::new("https://app.example.com").expect("a valid URL");
    let accounts = Accounts::builder(auth, one_time, queue, links)
        .reveal_taken_email(reveal_taken)
        .build();
    Rig {
        accounts,
        users,
        mail,
        clock,
    }
}

fn rig() -> Rig {
    rig_with(false)
}

/// The token of a link in a mail's text.
fn token(mail: &OutgoingMail) -> Option<String> {
    let start = mail.text.find("#token=")? + "#token=".len();
    Some(
        mail.text[start..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
            .collect(),
    )
}

impl Rig {
    /// Every mail sent so far, once everything asked for was handed to the mailer.
    async fn mails(&self) -> Vec<OutgoingMail> {
        self.accounts.flush().await;
        self.mail.sent()
    }

    async fn last_mail_to(&self, to: &str) -> OutgoingMail {
        self.mails()
            .await
            .into_iter()
            .rev()
            .find(|mail| mail.to == to)
            .unwrap_or_else(|| panic!("no mail to {to}"))
    }

    async fn registered_and_verified(&self) {
        self.accounts
            .register(ANN, PASSWORD, &client())
            .await
            .expect("register");
        let link = token(&self.last_mail_to(ANN).await).expect("a verification link");
        self.accounts
            .verify_email(&link, &client())
            .await
            .expect("verify");
    }
}

#[tokio::test]
async fn registration_answers_alike_and_a_taken_address_gets_a_notice_without_a_token() {
    let rig = rig();
    rig.accounts
        .register(" Ann@Example.com ", PASSWORD, &client())
        .await
        .expect("a new address");
    rig.accounts
        .register("ANN@example.com", NEW_PASSWORD, &client())
        .await
        .expect("a taken address answers the same");
    let mails = rig.mails().await;
    // Both go to the address as stored (as typed, trimmed), never the request's spelling.
    assert_eq!(mails.len(), 2, "{mails:#?}");
    assert!(
        mails.iter().all(|m| m.to == "Ann@Example.com"),
        "{mails:#?}"
    );
    assert!(token(&mails[0]).is_some(), "the verification link");
    assert!(token(&mails[1]).is_none(), "the notice carries no token");
    assert!(mails[1]
        .text
        .contains("https://app.example.com/forgot-password"));
    // The first registration holds.
    let user = rig
        .users
        .find_by_email(ANN)
        .await
        .expect("store")
        .expect("ann");
    assert!(!user.email_verified());

    let revealing = rig_with(true);
    revealing
        .accounts
        .register(ANN, PASSWORD, &client())
        .await
        .expect("new");
    let taken = revealing.accounts.register(ANN, PASSWORD, &client()).await;
    assert!(matches!(taken, Err(Error::EmailTaken)), "{taken:?}");
}

#[tokio::test]
async fn verification_gates_login_works_once_and_resend_only_mails_unverified_accounts() {
    let rig = rig();
    let auth = rig.accounts.authenticator().clone();
    rig.accounts
        .register(ANN, PASSWORD, &client())
        .await
        .expect("register");
    let early = auth.login(ANN, PASSWORD, client()).await;
    assert!(matches!(early, Err(Error::EmailNotVerified)), "{early:?}");
    // A wrong password is still just a wrong password: nothing about verification.
    let wrong = auth.login(ANN, "wrong password!", client()).await;
    assert!(matches!(wrong, Err(Error::InvalidCredentials)), "{wrong:?}");

    rig.accounts
        .resend_verification(ANN, &client())
        .await
        .expect("resend");
    let link = token(&rig.last_mail_to(ANN).await).expect("a new link");
    let user = rig
        .accounts
        .verify_email(&link, &client())
        .await
        .expect("verify");
    assert!(user.email_verified());
    let again = rig.accounts.verify_email(&link, &client()).await;
    assert!(matches!(again, Err(Error::InvalidLink)), "{again:?}");
    auth.login(ANN, PASSWORD, client()).await.expect("verified");

    let before = rig.mails().await.len();
    for email in [ANN, "nobody@example.com"] {
        rig.accounts
            .resend_verification(email, &client())
            .await
            .expect("the same answer");
    }
    assert_eq!(
        rig.mails().await.len(),
        before,
        "no mail to verified or unknown addresses"
    );
}

#[tokio::test]
async fn a_refused_password_leaves_the_reset_link_usable_and_a_reset_ends_every_session() {
    let rig = rig();
    rig.registered_and_verified().await;
    let auth = rig.accounts.authenticator().clone();
    let session = auth.login(ANN, PASSWORD, client()).await.expect("login");
    rig.accounts
        .forgot_password(ANN, &client())
        .await
        .expect("forgot");
    let link = token(&rig.last_mail_to(ANN).await).expect("a reset link");

    let weak = rig
        .accounts
        .reset_password(&link, "password1", &client())
        .await;
    assert!(matches!(weak, Err(Error::WeakPassword(_))), "{weak:?}");
    let done = rig
        .accounts
        .reset_password(&link, NEW_PASSWORD, &client())
        .await
        .expect("the link still works");
    assert_eq!(done.sessions_ended, 1);
    let old = auth.validate(session.token.expose_secret()).await;
    assert!(old.is_err(), "the old session ended");
    let notice = rig.last_mail_to(ANN).await;
    assert!(token(&notice).is_none(), "{notice:?}");
    auth.login(ANN, NEW_PASSWORD, client())
        .await
        .expect("new password");
}

#[tokio::test]
async fn links_expire_and_are_purged_with_the_sessions() {
    let rig = rig();
    rig.registered_and_verified().await;
    rig.accounts
        .request_sign_in_link(ANN, &client())
        .await
        .expect("asked");
    let link = token(&rig.last_mail_to(ANN).await).expect("a sign-in link");
    rig.clock.advance(Duration::from_secs(15 * 60 + 1));
    let late = rig.accounts.sign_in_with_link(&link, client()).await;
    assert!(matches!(late, Err(Error::InvalidLink)), "{late:?}");
    let (_, purged) = rig.accounts.expire().await.expect("expire");
    assert_eq!(purged, 1, "the expired sign-in link");
}

#[tokio::test]
async fn a_sign_in_link_verifies_the_address_and_gives_a_session_once() {
    let rig = rig();
    rig.accounts
        .register(ANN, PASSWORD, &client())
        .await
        .expect("register");
    rig.accounts
        .request_sign_in_link(ANN, &client())
        .await
        .expect("asked");
    let link = token(&rig.last_mail_to(ANN).await).expect("a sign-in link");
    let login = rig
        .accounts
        .sign_in_with_link(&link, client())
        .await
        .expect("a session");
    assert!(
        login.user.email_verified(),
        "following the link proved the mailbox"
    );
    let again = rig.accounts.sign_in_with_link(&link, client()).await;
    assert!(matches!(again, Err(Error::InvalidLink)), "{again:?}");
}

#[tokio::test]
async fn an_email_change_needs_the_password_and_rechecks_the_address_at_confirmation() {
    let rig = rig();
    rig.registered_and_verified().await;
    let ann = rig
        .users
        .find_by_email(ANN)
        .await
        .expect("store")
        .expect("ann");
    let wrong = rig
        .accounts
        .request_email_change(&ann.id(), "ann@new.example", "wrong password!", &client())
        .await;
    assert!(matches!(wrong, Err(Error::IncorrectPassword)), "{wrong:?}");

    rig.accounts
        .request_email_change(&ann.id(), "Ann@New.Example", PASSWORD, &client())
        .await
        .expect("asked");
    let confirm = token(&rig.last_mail_to("Ann@New.Example").await).expect("a confirm link");
    let notice = rig.last_mail_to(ANN).await;
    assert!(token(&notice).is_none() && notice.text.contains("Ann@New.Example"));

    // Someone else takes the address meanwhile: the confirmation is refused.
    let taker = rig_taker(&rig).await;
    let taken = rig.accounts.confirm_email_change(&confirm, &client()).await;
    assert!(
        matches!(taken, Err(Error::EmailTaken)),
        "{taken:?} ({taker})"
    );

    rig.accounts
        .request_email_change(&ann.id(), "ann@other.example", PASSWORD, &client())
        .await
        .expect("asked again");
    let confirm = token(&rig.last_mail_to("ann@other.example").await).expect("a link");
    let changed = rig
        .accounts
        .confirm_email_change(&confirm, &client())
        .await
        .expect("confirmed");
    assert_eq!(changed.email(), "ann@other.example");
    let told = rig.last_mail_to(ANN).await;
    assert!(told.text.contains("ann@other.example"), "{told:?}");
    let auth = rig.accounts.authenticator();
    auth.login("ann@other.example", PASSWORD, client())
        .await
        .expect("the new address logs in");
    assert!(auth.login(ANN, PASSWORD, client()).await.is_err());
}

/// Registers another user with `ann@new.example` (in another case) directly in the store.
async fn rig_taker(rig: &Rig) -> &'static str {
    let hash = rig
        .accounts
        .authenticator()
        .hash_password(NEW_PASSWORD)
        .await
        .expect("hash");
    rig.users
        .insert(UserRecord::new(99_i64, "ANN@new.example", hash))
        .expect("a free address");
    "ANN@new.example"
}
