//! Second factors as a library, on the in-memory stores: the sign-in link of a user with an
//! authenticator app takes a second step too, a spent recovery code is mailed about, a
//! password change ends pending logins, secrets are sealed at rest and follow a key rotation,
//! and an authenticator without second factors says so.

use std::sync::Arc;
use std::time::Duration;

use keycard::account::{Accounts, Links};
use keycard::mail::{DefaultRenderer, MailQueue, OutgoingMail};
use keycard::mfa::{
    KeyId, MemorySecondFactorStore, SecondFactorProof, SecondFactorStore, SecondFactors, SecretBox,
    SecretKey, TotpEnrollment,
};
use keycard::one_time::{MemoryOneTimeStore, OneTimeTokenStore, OneTimeTokens};
use keycard::{
    Argon2Hasher, AuthMethod, Authenticator, ClientInfo, Error, ManualClock, MemoryTokenStore,
    MemoryUserStore, UserRecord,
};

use crate::support::recorder::Recorder;

const ANN: &str = "ann@example.com";
const PASSWORD: &str = "correct horse battery staple";

type Users = Arc<MemoryUserStore<UserRecord>>;

struct Rig {
    auth: Authenticator<Users>,
    accounts: Accounts<Users>,
    factors: Arc<MemorySecondFactorStore>,
    pending: Arc<MemoryOneTimeStore>,
    users: Users,
    mail: Recorder,
    clock: ManualClock,
}

fn client() -> ClientInfo {
    ClientInfo::none().with_ip([192, 0, 2, 9].into())
}

fn authenticator(
    users: Users,
    factors: Arc<MemorySecondFactorStore>,
    pending: Arc<MemoryOneTimeStore>,
    secret_box: SecretBox,
    clock: &ManualClock,
) -> Authenticator<Users> {
    let factors: Arc<dyn SecondFactorStore> = factors;
    let pending: Arc<dyn OneTimeTokenStore> = pending;
    Authenticator::builder(users, MemoryTokenStore::new())
        .password_hasher(Argon2Hasher::insecure_for_tests())
        .clock(clock.clone())
        .second_factors(SecondFactors::from_arcs(factors, pending, secret_box))
        .build()
}

fn key_one() -> SecretBox {
    SecretBox::new(KeyId::new(1), SecretKey::from_bytes([1; 32]))
}

async fn rig() -> Rig {
    let users: Users = Arc::new(MemoryUserStore::new());
    let clock = ManualClock::new(time::OffsetDateTime::now_utc());
    let factors = Arc::new(MemorySecondFactorStore::new());
    let pending = Arc::new(MemoryOneTimeStore::new());
    let auth = authenticator(
        users.clone(),
        factors.clone(),
        pending.clone(),
        key_one(),
        &clock,
    );
    let mail = Recorder::default();
    let queue = MailQueue::spawn(mail.clone(), DefaultRenderer::new("Example"));
    let one_time = OneTimeTokens::new(MemoryOneTimeStore::new()).with_clock(clock.clone());
    let links = Links::new("https://app.example.com").expect("a valid URL");
    let accounts = Accounts::builder(auth.clone(), one_time, queue, links).build();
    let hash = auth.hash_password(PASSWORD).await.expect("hash");
    users
        .insert(UserRecord::new(1_i64, ANN, hash))
        .expect("insert");
    Rig {
        auth,
        accounts,
        factors,
        pending,
        users,
        mail,
        clock,
    }
}

impl Rig {
    /// Enrols and confirms an app for Ann; returns the enrolment and the recovery codes.
    async fn enrolled(&self) -> (TotpEnrollment, Vec<String>) {
        let login = self
            .auth
            .login(ANN, PASSWORD, client())
            .await
            .expect("login");
        let enrolment = self.auth.begin_totp(&login.session).await.expect("begin");
        let code = self.auth.current_totp_code(&enrolment).expect("code");
        let codes = self
            .auth
            .confirm_totp(&login.session, &code, &client())
            .await
            .expect("confirm");
        self.clock.advance(Duration::from_secs(30));
        let codes = codes.codes().iter().map(ToString::to_string).collect();
        (enrolment, codes)
    }

    async fn pending_login(&self) -> String {
        match self.auth.login(ANN, PASSWORD, client()).await {
            Err(Error::SecondFactorRequired(pending)) => pending.token.expose_secret().to_owned(),
            other => panic!("expected a second step, got {other:?}"),
        }
    }

    async fn mails(&self) -> Vec<OutgoingMail> {
        self.accounts.flush().await;
        self.mail.sent()
    }
}

#[tokio::test]
async fn a_sign_in_link_takes_the_second_step_too() {
    let rig = rig().await;
    let (enrolment, _) = rig.enrolled().await;
    rig.accounts
        .request_sign_in_link(ANN, &client())
        .await
        .expect("request");
    let mail = rig
        .mails()
        .await
        .into_iter()
        .rev()
        .find(|m| m.to == ANN)
        .expect("a sign-in mail");
    let start = mail.text.find("#token=").expect("a link") + "#token=".len();
    let link: String = mail.text[start..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
        .collect();
    let pending = match rig.accounts.sign_in_with_link(&link, client()).await {
        Err(Error::SecondFactorRequired(pending)) => pending,
        other => panic!("a link alone must not start a session: {other:?}"),
    };
    let code = rig.auth.current_totp_code(&enrolment).expect("code");
    let login = rig
        .accounts
        .complete_login(
            pending.token.expose_secret(),
            SecondFactorProof::Totp(&code),
            client(),
        )
        .await
        .expect("second step");
    assert_eq!(
        login.session.amr.names().collect::<Vec<_>>(),
        ["otp", "email_link"]
    );
}

#[tokio::test]
async fn a_spent_recovery_code_is_mailed_about_and_works_once() {
    let rig = rig().await;
    let (_, codes) = rig.enrolled().await;
    let token = rig.pending_login().await;
    let login = rig
        .accounts
        .complete_login(&token, SecondFactorProof::RecoveryCode(&codes[3]), client())
        .await
        .expect("a recovery code");
    assert!(login.session.amr.contains(AuthMethod::RecoveryCode));
    let mails = rig.mails().await;
    let notice = mails.last().expect("a mail");
    assert_eq!(notice.to, ANN);
    assert!(notice.subject.contains("recovery code"), "{notice:?}");
    assert!(notice
        .text
        .contains(&format!("{} unused codes are left", codes.len() - 1)));
    // It does not work twice.
    let again = rig.pending_login().await;
    let reused = rig
        .accounts
        .complete_login(&again, SecondFactorProof::RecoveryCode(&codes[3]), client())
        .await;
    assert!(matches!(reused, Err(Error::InvalidCode)), "{reused:?}");
}

#[tokio::test]
async fn a_password_change_ends_pending_logins() {
    let rig = rig().await;
    let (enrolment, _) = rig.enrolled().await;
    let token = rig.pending_login().await;
    let hash = rig
        .auth
        .hash_password("another long passphrase")
        .await
        .expect("hash");
    keycard::UserStore::set_password_hash(&*rig.users, &keycard::UserId::from(1_i64), &hash)
        .await
        .expect("a new password");
    let code = rig.auth.current_totp_code(&enrolment).expect("code");
    let outcome = rig
        .auth
        .complete_login(&token, SecondFactorProof::Totp(&code), client())
        .await;
    assert!(
        matches!(outcome, Err(Error::InvalidPendingLogin)),
        "{outcome:?}"
    );
}

#[tokio::test]
async fn secrets_are_sealed_at_rest_and_follow_a_key_rotation() {
    let rig = rig().await;
    let (enrolment, codes) = rig.enrolled().await;
    let id = keycard::UserId::from(1_i64);
    let record = rig
        .factors
        .totp(&id)
        .await
        .expect("store")
        .expect("a factor");
    let raw = keycard::mfa::TotpSecret::from_base32(&enrolment.secret).expect("base32");
    let sealed = &record.sealed_secret;
    assert!(
        !sealed
            .windows(raw.as_bytes().len())
            .any(|w| w == raw.as_bytes()),
        "the raw secret is not stored"
    );
    assert!(!format!("{:?}", rig.factors).contains(enrolment.secret.as_str()));
    for code in &codes {
        assert!(!format!("{:?}", rig.factors).contains(code.as_str()));
    }

    // A new key, the old one kept for reading: logins still work, and the secret is sealed
    // again under the new key at its first use.
    let rotated = SecretBox::new(KeyId::new(2), SecretKey::from_bytes([2; 32]))
        .with_old_key(KeyId::new(1), SecretKey::from_bytes([1; 32]));
    let auth = authenticator(
        rig.users.clone(),
        rig.factors.clone(),
        rig.pending.clone(),
        rotated.clone(),
        &rig.clock,
    );
    assert!(rotated.needs_reseal(&record.sealed_secret));
    let token = match auth.login(ANN, PASSWORD, client()).await {
        Err(Error::SecondFactorRequired(p)) => p.token.expose_secret().to_owned(),
        other => panic!("{other:?}"),
    };
    let code = auth.current_totp_code(&enrolment).expect("code");
    auth.complete_login(&token, SecondFactorProof::Totp(&code), client())
        .await
        .expect("login under the rotated key");
    let resealed = rig
        .factors
        .totp(&id)
        .await
        .expect("store")
        .expect("a factor");
    assert!(!rotated.needs_reseal(&resealed.sealed_secret));
    // Without the old key, the old sealing does not open: a configuration error, not a
    // wrong code.
    let only_new = SecretBox::new(KeyId::new(2), SecretKey::from_bytes([3; 32]));
    let auth = authenticator(
        rig.users.clone(),
        rig.factors.clone(),
        rig.pending.clone(),
        only_new,
        &rig.clock,
    );
    rig.clock.advance(Duration::from_secs(30));
    let token = match auth.login(ANN, PASSWORD, client()).await {
        Err(Error::SecondFactorRequired(p)) => p.token.expose_secret().to_owned(),
        other => panic!("{other:?}"),
    };
    let code = auth.current_totp_code(&enrolment).expect("code");
    let outcome = auth
        .complete_login(&token, SecondFactorProof::Totp(&code), client())
        .await;
    assert!(matches!(outcome, Err(Error::SecretBox(_))), "{outcome:?}");
}

#[tokio::test]
async fn without_second_factors_the_operations_say_so() {
    let users: Users = Arc::new(MemoryUserStore::new());
    let auth = Authenticator::builder(users.clone(), MemoryTokenStore::new())
        .password_hasher(Argon2Hasher::insecure_for_tests())
        .build();
    let hash = auth.hash_password(PASSWORD).await.expect("hash");
    users
        .insert(UserRecord::new(1_i64, ANN, hash))
        .expect("insert");
    let login = auth.login(ANN, PASSWORD, client()).await.expect("one step");
    let outcome = auth.begin_totp(&login.session).await;
    assert!(
        matches!(outcome, Err(Error::SecondFactorConfig(_))),
        "{outcome:?}"
    );
    let status = auth
        .second_factor_status(&login.session)
        .await
        .expect("status");
    assert!(!status.totp);
    auth.require_second_factor(&login.session)
        .await
        .expect("nothing to step up to");
}

#[tokio::test]
async fn a_policy_can_require_a_second_factor_on_every_session() {
    let users: Users = Arc::new(MemoryUserStore::new());
    let factors: Arc<dyn SecondFactorStore> = Arc::new(MemorySecondFactorStore::new());
    let pending: Arc<dyn OneTimeTokenStore> = Arc::new(MemoryOneTimeStore::new());
    let auth = Authenticator::builder(users.clone(), MemoryTokenStore::new())
        .password_hasher(Argon2Hasher::insecure_for_tests())
        .second_factors(
            SecondFactors::from_arcs(factors, pending, key_one()).required_for_every_session(true),
        )
        .build();
    let hash = auth.hash_password(PASSWORD).await.expect("hash");
    users
        .insert(UserRecord::new(1_i64, ANN, hash))
        .expect("insert");
    // A user without an app logs in (to enrol one), but the session does not pass.
    let login = auth.login(ANN, PASSWORD, client()).await.expect("one step");
    let refused = auth.require_second_factor(&login.session).await;
    assert!(
        matches!(
            refused,
            Err(Error::InsufficientAuthentication {
                second_factor: true,
                ..
            })
        ),
        "{refused:?}"
    );
    let enrolment = auth
        .begin_totp(&login.session)
        .await
        .expect("enrolment is allowed");
    let code = auth.current_totp_code(&enrolment).expect("code");
    auth.confirm_totp(&login.session, &code, &client())
        .await
        .expect("confirm");
}

#[tokio::test]
async fn step_up_names_what_is_missing() {
    let rig = rig().await;
    let first = rig
        .auth
        .login(ANN, PASSWORD, client())
        .await
        .expect("login");
    let (enrolment, _) = rig.enrolled().await;
    let five_minutes = Duration::from_secs(300);
    // A pre-enrolment session, recent: the factor is missing.
    let outcome = rig.auth.require_step_up(&first.session, five_minutes).await;
    assert!(
        matches!(
            outcome,
            Err(Error::InsufficientAuthentication {
                second_factor: true,
                max_age: None
            })
        ),
        "{outcome:?}"
    );
    // A two-step session passes, then grows old.
    let token = rig.pending_login().await;
    let code = rig.auth.current_totp_code(&enrolment).expect("code");
    let strong = rig
        .auth
        .complete_login(&token, SecondFactorProof::Totp(&code), client())
        .await
        .expect("second step");
    rig.auth
        .require_step_up(&strong.session, five_minutes)
        .await
        .expect("recent and with the factor");
    rig.clock.advance(Duration::from_secs(600));
    let outcome = rig
        .auth
        .require_step_up(&strong.session, five_minutes)
        .await;
    assert!(
        matches!(
            outcome,
            Err(Error::InsufficientAuthentication {
                second_factor: false,
                max_age: Some(age)
            }) if age == five_minutes
        ),
        "{outcome:?}"
    );
}
