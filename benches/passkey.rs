//! What a passkey costs at login: `finish_passkey_login` (the ceremony spent, the credential
//! found, the assertion's P-256 signature and counter verified by webauthn-rs, the credential
//! updated, the session created), on the in-memory stores, beside the password verification
//! it replaces, in one run. The assertions come from a software authenticator
//! (`tests/shared/soft_passkey.rs`: a real key, real signatures), made outside the timing.
//!
//! `cargo bench --bench passkey --features passkeys`. Figures in BENCHMARKS.md.

use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{criterion_main, Criterion};
use keycard::mfa::{
    MemoryPasskeyStore, Passkeys, PublicKeyCredential, RegisterPublicKeyCredential,
};
use keycard::one_time::{MemoryOneTimeStore, OneTimeTokenStore};
use keycard::{
    Argon2Hasher, Authenticator, ClientInfo, MemoryTokenStore, MemoryUserStore, PasswordHasher,
    UserRecord,
};

#[path = "../tests/shared/soft_passkey.rs"]
mod soft_passkey;
use soft_passkey::SoftPasskey;

const PASSWORD: &str = "correct horse battery staple";
const RP_ID: &str = "localhost";
const ORIGIN: &str = "http://localhost:3000";

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
}

fn json<T: serde::Serialize>(value: &T) -> serde_json::Value {
    serde_json::to_value(value).expect("serializes")
}

fn benches() {
    let mut c = Criterion::default()
        .configure_from_args()
        .measurement_time(Duration::from_secs(3))
        .warm_up_time(Duration::from_secs(1));
    let rt = runtime();
    let users = Arc::new(MemoryUserStore::<UserRecord>::new());
    let one_time: Arc<dyn OneTimeTokenStore> = Arc::new(MemoryOneTimeStore::new());
    let passkeys = Passkeys::from_arc(RP_ID, ORIGIN, "Bench", one_time).expect("a valid RP");
    let auth = Authenticator::builder(users.clone(), MemoryTokenStore::new())
        .password_hasher(Argon2Hasher::insecure_for_tests())
        .without_throttle()
        .passkeys(passkeys, MemoryPasskeyStore::new())
        .build();
    let mut key = SoftPasskey::new(RP_ID, ORIGIN, 9);
    rt.block_on(async {
        let hash = auth.hash_password(PASSWORD).await.expect("hash");
        users
            .insert(UserRecord::new(1_i64, "ann@example.com", hash))
            .expect("insert");
        let login = auth
            .login("ann@example.com", PASSWORD, ClientInfo::none())
            .await
            .expect("login");
        let (ceremony, options) = auth
            .begin_passkey_registration(&login.session)
            .await
            .expect("begin");
        let credential: RegisterPublicKeyCredential =
            serde_json::from_value(key.register(&json(&options))).expect("a credential");
        auth.finish_passkey_registration(
            &login.session,
            ceremony.expose_secret(),
            &credential,
            "Bench",
            &ClientInfo::none(),
        )
        .await
        .expect("registered");
    });

    let mut group = c.benchmark_group("passkey");
    let hasher = Argon2Hasher::default();
    let phc = hasher.hash(PASSWORD.as_bytes()).expect("hash");
    group.bench_function("password_verify_argon2id", |b| {
        b.iter(|| hasher.verify(PASSWORD.as_bytes(), &phc).expect("verify"));
    });
    let key = std::sync::Mutex::new(key);
    group.bench_function("finish_passkey_login_memory", |b| {
        b.to_async(&rt).iter_custom(|iters| {
            let (auth, key) = (&auth, &key);
            async move {
                let mut spent = Duration::ZERO;
                for _ in 0..iters {
                    let (ceremony, options) = auth
                        .begin_passkey_login(&ClientInfo::none())
                        .await
                        .expect("begin");
                    let answer = key.lock().expect("not poisoned").assert(&json(&options));
                    let answer: PublicKeyCredential =
                        serde_json::from_value(answer).expect("an assertion");
                    let started = Instant::now();
                    let login = auth
                        .finish_passkey_login(ceremony.expose_secret(), &answer, ClientInfo::none())
                        .await
                        .expect("a passkey login");
                    spent += started.elapsed();
                    auth.logout(login.token.expose_secret())
                        .await
                        .expect("logout");
                }
                spent
            }
        });
    });
    group.finish();
}

criterion_main!(benches);
