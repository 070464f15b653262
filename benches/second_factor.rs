//! What a second factor adds to a login: the TOTP check (opening the sealed secret and
//! checking the code) and a recovery code's digest, beside the password verification they
//! follow; and the whole second step (`complete_login`: the pending login read and spent, the
//! code counted and checked, its step recorded, the session created) beside one token store
//! read, on the in-memory stores.
//!
//! With `--features postgres`, the second step again with every store and the throttle on
//! PostgreSQL (`KEYCARD_POSTGRES_URL`, default `postgres://postgres@127.0.0.1:5432/test`),
//! beside one raw round trip on the same pool.
//!
//! `cargo bench --bench second_factor` (`--features postgres` for the PostgreSQL rows).
//! Figures in BENCHMARKS.md.

use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{criterion_main, Criterion};
use keycard::mfa::{
    KeyId, MemorySecondFactorStore, RecoveryCode, RecoveryCodes, SecondFactorProof, SecondFactors,
    SecretBox, SecretKey, TotpPolicy, TotpSecret,
};
use keycard::one_time::MemoryOneTimeStore;
use keycard::{
    Argon2Hasher, Authenticator, ClientInfo, Error, ManualClock, MemoryTokenStore, MemoryUserStore,
    PasswordHasher, TokenStore, UserId, UserRecord,
};

const PASSWORD: &str = "correct horse battery staple";

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// The per-login checks, without stores.
fn checks(c: &mut Criterion) {
    let mut group = c.benchmark_group("second_factor/check");
    let hasher = Argon2Hasher::default();
    let phc = hasher.hash(PASSWORD.as_bytes()).expect("hash");
    group.bench_function("password_verify_argon2id", |b| {
        b.iter(|| hasher.verify(PASSWORD.as_bytes(), &phc).expect("verify"));
    });
    let user = UserId::new("42");
    let secret_box = SecretBox::new(KeyId::new(1), SecretKey::generate().expect("os rng"));
    let secret = TotpSecret::generate().expect("os rng");
    let sealed = secret_box
        .seal(secret.as_bytes(), user.as_str().as_bytes())
        .expect("seal");
    let policy = TotpPolicy::default();
    let now = time::OffsetDateTime::now_utc();
    let code = policy.code_at(&secret, now);
    group.bench_function("totp_open_and_verify", |b| {
        b.iter(|| {
            let opened = secret_box
                .open(&sealed, user.as_str().as_bytes())
                .expect("open");
            let secret = TotpSecret::try_from_bytes(opened).expect("secret");
            policy.verify(&secret, &code, now, None)
        });
    });
    let codes = RecoveryCodes::generate(RecoveryCodes::DEFAULT_COUNT).expect("os rng");
    let typed = codes.codes()[0].to_string();
    group.bench_function("recovery_code_parse_and_digest", |b| {
        b.iter(|| RecoveryCode::parse(&typed).expect("a code").digest(&user));
    });
    group.finish();
}

/// The second step end to end on the in-memory stores, beside one token store read.
fn second_step(c: &mut Criterion) {
    let rt = runtime();
    let users = Arc::new(MemoryUserStore::<UserRecord>::new());
    let tokens = Arc::new(MemoryTokenStore::new());
    let clock = ManualClock::new(time::OffsetDateTime::now_utc());
    let factors = SecondFactors::new(
        MemorySecondFactorStore::new(),
        MemoryOneTimeStore::new(),
        SecretBox::new(KeyId::new(1), SecretKey::generate().expect("os rng")),
    );
    let auth = Authenticator::builder(users.clone(), tokens.clone())
        .password_hasher(Argon2Hasher::insecure_for_tests())
        .clock(clock.clone())
        .without_throttle()
        .second_factors(factors)
        .build();
    let (enrolment, session_id) = rt.block_on(async {
        let hash = auth.hash_password(PASSWORD).await.expect("hash");
        users
            .insert(UserRecord::new(1_i64, "ann@example.com", hash))
            .expect("insert");
        let login = auth
            .login("ann@example.com", PASSWORD, ClientInfo::none())
            .await
            .expect("login");
        let enrolment = auth.begin_totp(&login.session).await.expect("begin");
        let code = auth.current_totp_code(&enrolment).expect("code");
        auth.confirm_totp(&login.session, &code, &ClientInfo::none())
            .await
            .expect("confirm");
        (enrolment, login.session.id)
    });
    let mut group = c.benchmark_group("second_factor/step");
    group.bench_function("complete_login_totp_memory", |b| {
        b.to_async(&rt).iter_custom(|iters| {
            let (auth, clock, enrolment) = (&auth, &clock, &enrolment);
            async move {
                let mut spent = Duration::ZERO;
                for _ in 0..iters {
                    // A fresh time step (a code is accepted once) and a fresh pending login,
                    // outside the timing.
                    clock.advance(Duration::from_secs(30));
                    let pending = auth
                        .login("ann@example.com", PASSWORD, ClientInfo::none())
                        .await;
                    let Err(Error::SecondFactorRequired(pending)) = pending else {
                        panic!("a pending login");
                    };
                    let code = auth.current_totp_code(enrolment).expect("code");
                    let started = Instant::now();
                    let login = auth
                        .complete_login(
                            pending.token.expose_secret(),
                            SecondFactorProof::Totp(&code),
                            ClientInfo::none(),
                        )
                        .await
                        .expect("second step");
                    spent += started.elapsed();
                    // Keep the store's size steady, outside the timing.
                    auth.logout(login.token.expose_secret())
                        .await
                        .expect("logout");
                }
                spent
            }
        });
    });
    let now = keycard::Clock::now(&clock);
    group.bench_function("token_store_get_memory", |b| {
        b.to_async(&rt)
            .iter(|| async { tokens.get(&session_id, now).await.expect("get") });
    });
    group.finish();
}

/// The second step with users, sessions, second factors, pending logins and the throttle on
/// PostgreSQL, beside one `SELECT 1` on the same pool.
#[cfg(feature = "postgres")]
fn second_step_postgres(c: &mut Criterion) {
    use keycard::throttle::ThrottleLimits;
    let rt = runtime();
    let url = std::env::var("KEYCARD_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned());
    let db = rt.block_on(async {
        let db = keycard::postgres::Postgres::connect(&url)
            .await
            .unwrap_or_else(|e| {
                panic!("start PostgreSQL at {url} or set KEYCARD_POSTGRES_URL: {e:?}")
            });
        db.migrate().await.expect("migrate");
        db
    });
    let clock = ManualClock::new(time::OffsetDateTime::now_utc());
    let auth = Authenticator::builder(db.user_store(), db.token_store())
        .password_hasher(Argon2Hasher::insecure_for_tests())
        .clock(clock.clone())
        .throttle(db.throttle(ThrottleLimits::default()))
        .second_factors(SecondFactors::new(
            db.second_factor_store(),
            db.one_time_store(),
            SecretBox::new(KeyId::new(1), SecretKey::generate().expect("os rng")),
        ))
        .build();
    let email = format!("bench-2fa-{}@example.com", std::process::id());
    let enrolment = rt.block_on(async {
        auth.register(&email, PASSWORD, &ClientInfo::none())
            .await
            .expect("register");
        let login = auth
            .login(&email, PASSWORD, ClientInfo::none())
            .await
            .expect("login");
        let enrolment = auth.begin_totp(&login.session).await.expect("begin");
        let code = auth.current_totp_code(&enrolment).expect("code");
        auth.confirm_totp(&login.session, &code, &ClientInfo::none())
            .await
            .expect("confirm");
        enrolment
    });
    let mut group = c.benchmark_group("second_factor/step");
    group.bench_function("complete_login_totp_postgres", |b| {
        b.to_async(&rt).iter_custom(|iters| {
            let (auth, clock, enrolment, email) = (&auth, &clock, &enrolment, &email);
            async move {
                let mut spent = Duration::ZERO;
                for _ in 0..iters {
                    clock.advance(Duration::from_secs(30));
                    let Err(Error::SecondFactorRequired(pending)) =
                        auth.login(email, PASSWORD, ClientInfo::none()).await
                    else {
                        panic!("a pending login");
                    };
                    let code = auth.current_totp_code(enrolment).expect("code");
                    let started = Instant::now();
                    let login = auth
                        .complete_login(
                            pending.token.expose_secret(),
                            SecondFactorProof::Totp(&code),
                            ClientInfo::none(),
                        )
                        .await
                        .expect("second step");
                    spent += started.elapsed();
                    auth.logout(login.token.expose_secret())
                        .await
                        .expect("logout");
                }
                spent
            }
        });
    });
    group.bench_function("postgres_raw_round_trip_select_1", |b| {
        b.to_async(&rt).iter(|| async {
            sqlx::query("SELECT 1")
                .execute(db.pool())
                .await
                .expect("SELECT 1")
        });
    });
    group.finish();
}

fn benches() {
    let mut c = Criterion::default()
        .configure_from_args()
        .measurement_time(Duration::from_secs(3))
        .warm_up_time(Duration::from_secs(1));
    checks(&mut c);
    second_step(&mut c);
    #[cfg(feature = "postgres")]
    second_step_postgres(&mut c);
}

criterion_main!(benches);
