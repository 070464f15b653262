//! Passkeys in process, with a software authenticator (`tests/shared/soft_passkey.rs`: a real
//! P-256 key, real signatures) answering the ceremonies webauthn-rs verifies: registration,
//! a passwordless login, a passkey as a login's second step, and what is refused: a replayed
//! assertion, a spent ceremony, another origin, another key.

use std::sync::Arc;

use keycard::mfa::{
    KeyId, MemoryPasskeyStore, MemorySecondFactorStore, Passkeys, PublicKeyCredential,
    RegisterPublicKeyCredential, SecondFactorProof, SecondFactors, SecretBox, SecretKey,
};
use keycard::one_time::{MemoryOneTimeStore, OneTimeTokenStore};
use keycard::{
    Argon2Hasher, AuthMethod, Authenticator, ClientInfo, Error, MemoryTokenStore, MemoryUserStore,
    UserRecord,
};
use serde_json::Value;

use crate::soft_passkey::SoftPasskey;

const ANN: &str = "ann@example.com";
const PASSWORD: &str = "correct horse battery staple";
const RP_ID: &str = "localhost";
const ORIGIN: &str = "http://localhost:3000";

type Users = Arc<MemoryUserStore<UserRecord>>;

async fn authenticator() -> Authenticator<Users> {
    let users: Users = Arc::new(MemoryUserStore::new());
    let one_time: Arc<dyn OneTimeTokenStore> = Arc::new(MemoryOneTimeStore::new());
    let passkeys =
        Passkeys::from_arc(RP_ID, ORIGIN, "Example", one_time.clone()).expect("a valid RP");
    let auth = Authenticator::builder(users.clone(), MemoryTokenStore::new())
        .password_hasher(Argon2Hasher::insecure_for_tests())
        .second_factors(SecondFactors::from_arcs(
            Arc::new(MemorySecondFactorStore::new()),
            one_time,
            SecretBox::new(KeyId::new(1), SecretKey::generate().expect("os rng")),
        ))
        .passkeys(passkeys, MemoryPasskeyStore::new())
        .build();
    let hash = auth.hash_password(PASSWORD).await.expect("hash");
    users
        .insert(UserRecord::new(1_i64, ANN, hash))
        .expect("insert");
    auth
}

fn json<T: serde::Serialize>(value: &T) -> Value {
    serde_json::to_value(value).expect("serializes")
}

fn assertion(value: Value) -> PublicKeyCredential {
    serde_json::from_value(value).expect("an assertion")
}

/// Logs Ann in with her password and registers `key` as her passkey.
async fn registered(auth: &Authenticator<Users>, key: &mut SoftPasskey) {
    let login = auth
        .login(ANN, PASSWORD, ClientInfo::none())
        .await
        .expect("login");
    let (ceremony, options) = auth
        .begin_passkey_registration(&login.session)
        .await
        .expect("begin");
    let credential: RegisterPublicKeyCredential =
        serde_json::from_value(key.register(&json(&options))).expect("a credential");
    let view = auth
        .finish_passkey_registration(
            &login.session,
            ceremony.expose_secret(),
            &credential,
            "Laptop",
            &ClientInfo::none(),
        )
        .await
        .expect("registered");
    assert_eq!(view.name, "Laptop");
}

#[tokio::test]
async fn a_passkey_logs_in_alone_and_answers_a_second_step() {
    let auth = authenticator().await;
    let mut key = SoftPasskey::new(RP_ID, ORIGIN, 1);
    registered(&auth, &mut key).await;

    // Passwordless: one ceremony, one session with `hwk`.
    let (ceremony, options) = auth
        .begin_passkey_login(&ClientInfo::none())
        .await
        .expect("begin");
    let answer = assertion(key.assert(&json(&options)));
    let login = auth
        .finish_passkey_login(ceremony.expose_secret(), &answer, ClientInfo::none())
        .await
        .expect("a passkey login");
    assert!(login.session.amr.contains(AuthMethod::Passkey));
    assert_eq!(login.user.email, ANN);
    // The ceremony is spent: the same answer again is refused.
    let again = auth
        .finish_passkey_login(ceremony.expose_secret(), &answer, ClientInfo::none())
        .await;
    assert!(again.is_err(), "{again:?}");

    // With a passkey, the password alone starts no session; the passkey completes it.
    let pending = match auth.login(ANN, PASSWORD, ClientInfo::none()).await {
        Err(Error::SecondFactorRequired(pending)) => pending,
        other => panic!("a second step, got {other:?}"),
    };
    let (ceremony, options) = auth
        .begin_passkey_second_factor(pending.token.expose_secret())
        .await
        .expect("begin");
    let answer = assertion(key.assert(&json(&options)));
    let login = auth
        .complete_login(
            pending.token.expose_secret(),
            SecondFactorProof::Passkey {
                ceremony: ceremony.expose_secret(),
                credential: &answer,
            },
            ClientInfo::none(),
        )
        .await
        .expect("the second step");
    assert_eq!(
        login.session.amr.names().collect::<Vec<_>>(),
        ["pwd", "hwk"]
    );
}

#[tokio::test]
async fn assertions_from_another_key_origin_or_an_old_counter_are_refused() {
    let auth = authenticator().await;
    let mut key = SoftPasskey::new(RP_ID, ORIGIN, 2);
    registered(&auth, &mut key).await;

    // Another key claiming the same credential id: its signature does not verify.
    let mut forger = SoftPasskey::new(RP_ID, ORIGIN, 3);
    let (ceremony, options) = auth
        .begin_passkey_login(&ClientInfo::none())
        .await
        .expect("begin");
    forger.register(&serde_json::json!({"publicKey": {"challenge": "x", "user": {"id": null}}}));
    let mut forged = forger.assert(&json(&options));
    let real = key.assert(&json(&options));
    forged["id"] = real["id"].clone();
    forged["rawId"] = real["rawId"].clone();
    forged["response"]["userHandle"] = real["response"]["userHandle"].clone();
    let outcome = auth
        .finish_passkey_login(
            ceremony.expose_secret(),
            &assertion(forged),
            ClientInfo::none(),
        )
        .await;
    assert!(
        matches!(outcome, Err(Error::PasskeyRejected)),
        "{outcome:?}"
    );

    // Another origin (a phishing page) is refused.
    let mut phished = SoftPasskey::new(RP_ID, "http://evil.localhost:3000", 2);
    phished.register(&serde_json::json!({"publicKey": {"challenge": "x", "user": {"id": real["response"]["userHandle"]}}}));
    let (ceremony, options) = auth
        .begin_passkey_login(&ClientInfo::none())
        .await
        .expect("begin");
    let outcome = auth
        .finish_passkey_login(
            ceremony.expose_secret(),
            &assertion(phished.assert(&json(&options))),
            ClientInfo::none(),
        )
        .await;
    assert!(
        matches!(outcome, Err(Error::PasskeyRejected)),
        "{outcome:?}"
    );

    // The real key still works, twice.
    for _ in 0..2 {
        let (ceremony, options) = auth
            .begin_passkey_login(&ClientInfo::none())
            .await
            .expect("begin");
        auth.finish_passkey_login(
            ceremony.expose_secret(),
            &assertion(key.assert(&json(&options))),
            ClientInfo::none(),
        )
        .await
        .expect("the real passkey");
    }
    // A cloned key (same secret, its counter behind the stored one) is refused: the counter
    // must grow, as webauthn-rs checks.
    let mut clone = SoftPasskey::new(RP_ID, ORIGIN, 2);
    clone.register(&serde_json::json!({"publicKey": {"challenge": "x", "user": {"id": real["response"]["userHandle"]}}}));
    let (ceremony, options) = auth
        .begin_passkey_login(&ClientInfo::none())
        .await
        .expect("begin");
    let outcome = auth
        .finish_passkey_login(
            ceremony.expose_secret(),
            &assertion(clone.assert(&json(&options))),
            ClientInfo::none(),
        )
        .await;
    assert!(
        matches!(outcome, Err(Error::PasskeyRejected)),
        "{outcome:?}"
    );
}

#[tokio::test]
async fn a_session_from_before_the_passkey_is_refused_step_up() {
    let auth = authenticator().await;
    let before = auth
        .login(ANN, PASSWORD, ClientInfo::none())
        .await
        .expect("login");
    auth.require_second_factor(&before.session)
        .await
        .expect("no second factor yet: nothing to step up to");
    let mut key = SoftPasskey::new(RP_ID, ORIGIN, 4);
    registered(&auth, &mut key).await;
    // Ann has a passkey (and no authenticator app): her password-only session is refused.
    let outcome = auth.require_second_factor(&before.session).await;
    assert!(
        matches!(
            outcome,
            Err(Error::InsufficientAuthentication {
                second_factor: true,
                ..
            })
        ),
        "{outcome:?}"
    );
    // A session that used the passkey passes.
    let (ceremony, options) = auth
        .begin_passkey_login(&ClientInfo::none())
        .await
        .expect("begin");
    let login = auth
        .finish_passkey_login(
            ceremony.expose_secret(),
            &assertion(key.assert(&json(&options))),
            ClientInfo::none(),
        )
        .await
        .expect("a passkey login");
    auth.require_second_factor(&login.session)
        .await
        .expect("step-up passed");
}
