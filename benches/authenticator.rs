//! Criterion benchmarks of the core operations on the in-memory stores.
//!
//! `cargo bench --bench authenticator`. Figures and the machine they came from are in
//! BENCHMARKS.md; compare ratios within one run, not absolute times across machines.

use std::sync::Arc;
use std::time::Duration;

use criterion::{criterion_main, BenchmarkId, Criterion};
use keycard::{
    Argon2Hasher, Authenticator, ClientInfo, MemoryTokenStore, MemoryUserStore, PasswordHasher,
    Token, UserRecord,
};

type Auth = Authenticator<Arc<MemoryUserStore>>;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// An authenticator with OWASP argon2id parameters, one user, no throttle (benchmarks fail
/// logins on purpose, thousands of times).
fn authenticator(hasher: Argon2Hasher) -> Auth {
    let users = Arc::new(MemoryUserStore::new());
    let phc = hasher.hash(b"correct horse battery staple").expect("hash");
    users
        .insert(UserRecord::new(1_i64, "ann@example.com", phc))
        .expect("insert");
    Authenticator::builder(users, MemoryTokenStore::new())
        .password_hasher(hasher)
        .without_throttle()
        .build()
}

fn validate(c: &mut Criterion) {
    let rt = runtime();
    let mut group = c.benchmark_group("validate");
    for sessions in [1_usize, 100_000] {
        let auth = authenticator(Argon2Hasher::insecure_for_tests());
        let token = rt.block_on(async {
            for _ in 1..sessions {
                auth.login(
                    "ann@example.com",
                    "correct horse battery staple",
                    ClientInfo::none(),
                )
                .await
                .expect("login");
            }
            auth.login(
                "ann@example.com",
                "correct horse battery staple",
                ClientInfo::none(),
            )
            .await
            .expect("login")
            .token
        });
        let t = token.expose_secret().to_owned();
        group.bench_with_input(
            BenchmarkId::new("session_and_user", sessions),
            &t,
            |b, t| {
                b.to_async(&rt)
                    .iter(|| async { auth.validate(t).await.expect("valid") });
            },
        );
        group.bench_with_input(BenchmarkId::new("session_only", sessions), &t, |b, t| {
            b.to_async(&rt)
                .iter(|| async { auth.validate_session(t).await.expect("valid") });
        });
        // Baseline: the store read alone, and parsing + hashing the token alone.
        let id = token.id();
        group.bench_with_input(
            BenchmarkId::new("store_get_only", sessions),
            &id,
            |b, id| {
                b.to_async(&rt)
                    .iter(|| async { auth.tokens().get(id, auth.now()).await.expect("get") });
            },
        );
        group.bench_with_input(
            BenchmarkId::new("parse_and_digest_only", sessions),
            &t,
            |b, t| {
                b.iter(|| t.parse::<Token>().expect("parses").secret_hash());
            },
        );
    }
    group.finish();
}

fn login(c: &mut Criterion) {
    let rt = runtime();
    let auth = authenticator(Argon2Hasher::default());
    let mut group = c.benchmark_group("login_owasp_argon2id");
    group
        .sample_size(20)
        .measurement_time(Duration::from_secs(10));
    group.bench_function("success", |b| {
        b.to_async(&rt).iter(|| async {
            auth.login(
                "ann@example.com",
                "correct horse battery staple",
                ClientInfo::none(),
            )
            .await
            .expect("login")
        });
    });
    // These two must cost the same: that is what keeps emails from being enumerated.
    group.bench_function("wrong_password", |b| {
        b.to_async(&rt).iter(|| async {
            auth.login("ann@example.com", "wrong password", ClientInfo::none())
                .await
                .expect_err("wrong")
        });
    });
    group.bench_function("unknown_email", |b| {
        b.to_async(&rt).iter(|| async {
            auth.login("nobody@example.com", "wrong password", ClientInfo::none())
                .await
                .expect_err("unknown")
        });
    });
    group.finish();
    rt.block_on(auth.expire()).expect("expire");
}

/// The benchmark groups (`criterion_group!` generates an undocumented `pub fn`, hence the module).
mod groups {
    #![allow(missing_docs)]
    criterion::criterion_group!(benches, super::validate, super::login);
}
criterion_main!(groups::benches);
