//! The validation cache's hit path against a plain in-memory validate, same run.
//!
//! `cargo bench --bench validation_cache` (add `--features redis,postgres` for the
//! server-backed rows, which need the servers of `tests/backends/redis_store.rs` and
//! `tests/backends/postgres.rs`).
//! The requirement: a cached validate (a hit) costs at most 2x a `MemoryTokenStore` validate.

use std::sync::Arc;
use std::time::Duration;

use criterion::{criterion_main, Criterion};
use keycard::store::{CacheOptions, CachedTokenStore, LocalChannel};
use keycard::{
    Argon2Hasher, Authenticator, ClientInfo, MemoryTokenStore, MemoryUserStore, PasswordHasher,
    TokenStore, UserRecord,
};

type Auth = Authenticator<Arc<MemoryUserStore>>;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime")
}

fn authenticator(tokens: impl TokenStore + 'static) -> Auth {
    let hasher = Argon2Hasher::insecure_for_tests();
    let users = Arc::new(MemoryUserStore::new());
    let phc = hasher.hash(b"correct horse battery staple").expect("hash");
    users
        .insert(UserRecord::new(1_i64, "ann@example.com", phc))
        .expect("insert");
    Authenticator::builder(users, tokens)
        .password_hasher(hasher)
        .without_throttle()
        .build()
}

/// Logs in `extra` sessions to populate the store, then one more whose token is returned.
async fn token(auth: &Auth, extra: usize) -> String {
    for _ in 0..extra {
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
    .expose_secret()
    .to_owned()
}

fn bench(c: &mut Criterion, rt: &tokio::runtime::Runtime, name: &str, auth: &Auth, token: &str) {
    rt.block_on(auth.validate_session(token)).expect("valid");
    c.bench_function(name, |b| {
        b.to_async(rt)
            .iter(|| async { auth.validate_session(token).await.expect("valid") });
    });
}

fn cached<S: TokenStore + 'static>(rt: &tokio::runtime::Runtime, store: S) -> CachedTokenStore<S> {
    rt.block_on(async {
        // A bound longer than a measurement, so every iteration is a hit.
        let options = CacheOptions::default().with_max_staleness(Duration::from_secs(3600));
        let cache = CachedTokenStore::new(store, LocalChannel::new(), options);
        assert!(cache.wait_connected(Duration::from_secs(5)).await);
        cache
    })
}

fn validate_session(c: &mut Criterion) {
    let rt = runtime();
    let memory = authenticator(MemoryTokenStore::new());
    let t = rt.block_on(token(&memory, 1000));
    bench(c, &rt, "validate_session/memory", &memory, &t);

    let cache = cached(&rt, MemoryTokenStore::new());
    let hit = authenticator(cache);
    let t = rt.block_on(token(&hit, 1000));
    bench(c, &rt, "validate_session/cached_memory_hit", &hit, &t);

    #[cfg(feature = "redis")]
    {
        let url = std::env::var("KEYCARD_REDIS_URL")
            .unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned());
        let store = || {
            rt.block_on(keycard::redis::RedisTokenStore::connect(&url))
                .expect("Redis is not reachable: set KEYCARD_REDIS_URL")
                .with_key_prefix("keycard-bench-cache:")
        };
        let direct = authenticator(store());
        let t = rt.block_on(token(&direct, 0));
        bench(c, &rt, "validate_session/redis", &direct, &t);
        let hit = authenticator(cached(&rt, store()));
        let t = rt.block_on(token(&hit, 0));
        bench(c, &rt, "validate_session/cached_redis_hit", &hit, &t);
    }

    #[cfg(feature = "postgres")]
    {
        let url = std::env::var("KEYCARD_POSTGRES_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned());
        let store = || {
            let store = rt
                .block_on(keycard::postgres::PostgresTokenStore::connect(&url))
                .expect("PostgreSQL is not reachable: set KEYCARD_POSTGRES_URL")
                .with_table("keycard_bench_cache_sessions")
                .expect("table name");
            rt.block_on(store.migrate()).expect("migrate");
            store
        };
        let direct = authenticator(store());
        let t = rt.block_on(token(&direct, 0));
        bench(c, &rt, "validate_session/postgres", &direct, &t);
        let hit = authenticator(cached(&rt, store()));
        let t = rt.block_on(token(&hit, 0));
        bench(c, &rt, "validate_session/cached_postgres_hit", &hit, &t);
    }
}

/// The benchmark group (`criterion_group!` generates an undocumented `pub fn`, hence the module).
mod groups {
    #![allow(missing_docs)]
    criterion::criterion_group!(benches, super::validate_session);
}
criterion_main!(groups::benches);
