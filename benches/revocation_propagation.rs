//! How long a revocation on instance A takes to be seen by instance B, each with its own
//! validation cache over one shared server (loopback): Redis pub/sub and PostgreSQL
//! `LISTEN/NOTIFY`.
//!
//! `cargo bench --bench revocation_propagation --features redis,postgres [-- N]` (default
//! N = 500 revocations per backend). For each: log in on A, validate on B (B caches the
//! session), then log out on A and poll B's `validate_session` until it fails. The time is
//! from the start of A's `logout` to B's first failing validate. B's staleness bound is set
//! to 60 s, so only the pushed message can make B notice.

use std::sync::Arc;
use std::time::{Duration, Instant};

use keycard::postgres::{PostgresRevocationChannel, PostgresTokenStore};
use keycard::redis::{RedisRevocationChannel, RedisTokenStore};
use keycard::store::{CacheOptions, CachedTokenStore};
use keycard::{
    Argon2Hasher, Authenticator, ClientInfo, MemoryUserStore, PasswordHasher, TokenStore,
    UserRecord,
};

type Auth = Authenticator<Arc<MemoryUserStore>>;

const BOUND: Duration = Duration::from_secs(60);

fn instance(users: &Arc<MemoryUserStore>, tokens: impl TokenStore + 'static) -> Auth {
    Authenticator::builder(Arc::clone(users), tokens)
        .password_hasher(Argon2Hasher::insecure_for_tests())
        .without_throttle()
        .build()
}

async fn measure(name: &str, a: &Auth, b: &Auth, n: usize) {
    let mut times = Vec::with_capacity(n);
    for _ in 0..n {
        let login = a
            .login(
                "ann@example.com",
                "correct horse battery staple",
                ClientInfo::none(),
            )
            .await
            .expect("login");
        let token = login.token.expose_secret();
        b.validate_session(token).await.expect("valid on B");
        b.validate_session(token).await.expect("valid on B (a hit)");
        let start = Instant::now();
        assert!(a.logout(token).await.expect("logout").destroyed());
        loop {
            if b.validate_session(token).await.is_err() {
                break;
            }
            assert!(start.elapsed() < BOUND, "never seen");
            tokio::task::yield_now().await;
        }
        times.push(start.elapsed());
    }
    times.sort();
    let pct = |p: f64| times[((times.len() as f64 * p).ceil() as usize).clamp(1, times.len()) - 1];
    println!(
        "{name}: n={n} p50={:?} p99={:?} max={:?} (min={:?})",
        pct(0.50),
        pct(0.99),
        times[times.len() - 1],
        times[0]
    );
}

fn main() {
    let n: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(500);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let hasher = Argon2Hasher::insecure_for_tests();
        let users = Arc::new(MemoryUserStore::new());
        let phc = hasher.hash(b"correct horse battery staple").expect("hash");
        users
            .insert(UserRecord::new(1_i64, "ann@example.com", phc))
            .expect("insert");
        let options = CacheOptions::default().with_max_staleness(BOUND);

        let redis_url = std::env::var("KEYCARD_REDIS_URL")
            .unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned());
        let redis_cache = || async {
            let store = RedisTokenStore::connect(&redis_url)
                .await
                .expect("Redis is not reachable: set KEYCARD_REDIS_URL")
                .with_key_prefix("keycard-bench-propagation:");
            let channel = RedisRevocationChannel::connect(&redis_url)
                .await
                .expect("connect")
                .with_channel("keycard-bench-propagation:revocations");
            let cache = CachedTokenStore::new(store, channel, options);
            assert!(cache.wait_connected(Duration::from_secs(5)).await);
            cache
        };
        let a = instance(&users, redis_cache().await);
        let b = instance(&users, redis_cache().await);
        measure("redis pub/sub", &a, &b, n).await;

        let pg_url = std::env::var("KEYCARD_POSTGRES_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned());
        let pg_cache = || async {
            let store = PostgresTokenStore::connect(&pg_url)
                .await
                .expect("PostgreSQL is not reachable: set KEYCARD_POSTGRES_URL")
                .with_table("keycard_bench_propagation_sessions")
                .expect("table name");
            store.migrate().await.expect("migrate");
            let channel = PostgresRevocationChannel::new(store.pool().clone())
                .with_channel("keycard_bench_propagation");
            let cache = CachedTokenStore::new(store, channel, options);
            assert!(cache.wait_connected(Duration::from_secs(5)).await);
            cache
        };
        let a = instance(&users, pg_cache().await);
        let b = instance(&users, pg_cache().await);
        measure("postgres LISTEN/NOTIFY", &a, &b, n).await;
    });
}
