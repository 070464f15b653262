//! The audit events a login, a failure, throttling and logouts leave, with no secret in them.
//! Alone in its test binary: `tracing` caches per call site whether anyone listens, so a
//! scoped subscriber must not race other tests that hit the same call sites first.

use std::io::Write;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use keycard::api_tokens::{ApiTokens, NewApiToken};
use keycard::throttle::{Limit, MemoryThrottle, ThrottleLimits};
use keycard::{
    Argon2Hasher, Authenticator, ClientInfo, MemoryTokenStore, MemoryUserStore, UserRecord,
};

const EMAIL: &str = "ann@example.com";
const PASSWORD: &str = "correct horse battery staple";
const NEW_PASSWORD: &str = "a brand new passphrase";

type Users = MemoryUserStore<UserRecord>;

fn from(ip: &str) -> ClientInfo {
    ClientInfo::none().with_ip(ip.parse::<IpAddr>().expect("test ip"))
}

/// Everything written by a `tracing` fmt subscriber, for assertions.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Captured {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().expect("not poisoned")).into_owned()
    }
}

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("not poisoned").extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn audit_events_tell_what_happened_and_nothing_secret() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .with_max_level(tracing::Level::DEBUG)
        .finish();
    let hasher = Argon2Hasher::insecure_for_tests();
    let phc = keycard::PasswordHasher::hash(&hasher, PASSWORD.as_bytes()).expect("hash");
    let mut api_secret = String::new();
    let token = tracing::subscriber::with_default(subscriber, || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime")
            .block_on(async {
                let auth = Authenticator::builder(Users::new(), MemoryTokenStore::new())
                    .password_hasher(hasher)
                    .api_tokens(ApiTokens::new(["notes:read", "notes:write"]).expect("scopes"))
                    .throttle(MemoryThrottle::new(
                        ThrottleLimits::default()
                            .per_account_ip(Limit::new(2, Duration::from_secs(60))),
                    ))
                    .build();
                auth.users()
                    .insert(UserRecord::new(1_i64, EMAIL, phc))
                    .expect("new user");
                let login = auth
                    .login(EMAIL, PASSWORD, from("192.0.2.1"))
                    .await
                    .expect("login");
                auth.login(EMAIL, PASSWORD, from("192.0.2.1"))
                    .await
                    .expect("second login");
                let changed = auth
                    .change_password(&login.session, PASSWORD, NEW_PASSWORD, &from("192.0.2.1"))
                    .await
                    .expect("change_password");
                assert_eq!(changed.ended, 2);
                let token = changed.login.token.expose_secret().to_owned();
                let third = auth
                    .login(EMAIL, NEW_PASSWORD, from("192.0.2.1"))
                    .await
                    .expect("third login");
                assert!(auth
                    .revoke_session(&third.session.user_id, &third.session.id)
                    .await
                    .expect("revoke"));
                let _ = auth.login(EMAIL, "hunter2-wrong", from("192.0.2.2")).await;
                let _ = auth
                    .login("typo-secret-pw@example.com", "x", from("192.0.2.2"))
                    .await;
                let _ = auth.login(EMAIL, "hunter2-wrong", from("192.0.2.2")).await;
                let _ = auth.login(EMAIL, "hunter2-wrong", from("192.0.2.2")).await;
                assert!(auth.logout(&token).await.expect("logout").destroyed());
                let owner = auth
                    .login(EMAIL, NEW_PASSWORD, from("192.0.2.1"))
                    .await
                    .expect("login for tokens");
                let created = auth
                    .create_api_token(&owner.session, NewApiToken::new("backup", ["notes:read"]))
                    .await
                    .expect("create_api_token");
                let pat = created.token.expose_secret().to_owned();
                let used = auth
                    .validate_session_from(&pat, Some("198.51.100.7".parse().expect("ip")))
                    .await
                    .expect("validate api token");
                let _ = auth.require_scope(&used, "notes:write");
                assert!(auth
                    .revoke_api_token(&owner.session, &created.view.id)
                    .await
                    .expect("revoke_api_token"));
                api_secret.push_str(&pat);
                auth.logout_all(&keycard::UserId::from(1_i64))
                    .await
                    .expect("logout_all");
                auth.register(
                    "bob@example.com",
                    "a perfectly fine passphrase",
                    &from("192.0.2.3"),
                )
                .await
                .expect("register");
                let _ = auth
                    .register(
                        "not-an-email",
                        "a perfectly fine passphrase",
                        &from("192.0.2.3"),
                    )
                    .await;
                token
            })
    });
    let log = captured.text();
    for expected in [
        "keycard::audit",
        r#"event="login.succeeded""#,
        r#"event="login.failed" reason="wrong_password" user_id=1"#,
        r#"reason="unknown_account" user_id=-"#,
        r#"event="login.throttled" limit="account_ip""#,
        r#"event="logout""#,
        r#"event="sessions.revoked""#,
        r#"event="password.changed" user_id=1"#,
        r#"event="session.revoked" user_id=1"#,
        "client_ip=192.0.2.2",
        r#"event="registration.accepted""#,
        r#"event="registration.refused" reason="invalid_email" client_ip=192.0.2.3"#,
        r#"event="api_token.created" user_id=1"#,
        r#"name="backup" scopes=notes:read"#,
        r#"event="api_token.new_address" user_id=1"#,
        "client_ip=198.51.100.7",
        r#"event="api_token.scope_refused" user_id=1"#,
        r#"scope="notes:write""#,
        r#"event="api_token.revoked" user_id=1"#,
    ] {
        assert!(log.contains(expected), "missing {expected} in:\n{log}");
    }
    let (id, secret) = token.split_once('.').expect("id.secret");
    assert!(log.contains(id), "the public session id is logged");
    // `kcpat_<id>.<secret: 43 characters>_<checksum>`
    let pat_secret = api_secret
        .split_once('.')
        .and_then(|(_, rest)| rest.get(..43))
        .expect("an API token has a dot and a secret");
    for secret in [
        secret,
        pat_secret,
        PASSWORD,
        NEW_PASSWORD,
        "hunter2-wrong",
        "typo-secret-pw",
        EMAIL,
        "bob@example.com",
        "not-an-email",
        "a perfectly fine passphrase",
        "$argon2",
    ] {
        assert!(!log.contains(secret), "{secret} leaked into:\n{log}");
    }
}
