//! One-time tokens (the links of account mails) on every backend: `OneTimeTokens::issue` and
//! `OneTimeTokens::consume` beside the cheapest round trip of the same client, in one run;
//! and the request path of "forgot password" for a known and an unknown email.
//!
//! `cargo bench --bench one_time --all-features`. Needs the servers of the live tests
//! (`KEYCARD_POSTGRES_URL`, default `postgres://postgres@127.0.0.1:5432/test`;
//! `KEYCARD_MYSQL_URL`, default `mysql://root@127.0.0.1:3306/test`; `KEYCARD_REDIS_URL`,
//! default `redis://127.0.0.1:6379`). Tokens go to the default tables and key prefix, for user
//! ids of this run, and are retired at the end. Figures are in BENCHMARKS.md.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use criterion::{criterion_main, Criterion};
use keycard::account::{Accounts, Links};
use keycard::async_trait;
use keycard::mail::{DefaultRenderer, MailError, MailQueue, Mailer, OutgoingMail};
use keycard::one_time::{
    Binding, MemoryOneTimeStore, OneTimePurpose, OneTimeTokenStore, OneTimeTokens,
};
use keycard::{
    Argon2Hasher, Authenticator, ClientInfo, MemoryTokenStore, MemoryUserStore, UserId, UserRecord,
};

fn env_or(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_owned())
}

/// 1,000 users of this run, taken in turn, so each user's cap of 3 outstanding tokens
/// retires the oldest as in real use.
fn users() -> Vec<UserId> {
    let run = std::process::id();
    (0..1000)
        .map(|n| UserId::from(format!("bench-{run}-{n}")))
        .collect()
}

/// `<name>/issue` and `<name>/consume` on `store`.
fn bench_store(
    c: &mut Criterion,
    rt: &tokio::runtime::Runtime,
    name: &str,
    store: Arc<dyn OneTimeTokenStore>,
) {
    let tokens = OneTimeTokens::from_arc(store);
    let users = users();
    let purpose = OneTimePurpose::PasswordReset;
    let next = AtomicU64::new(0);
    let user = || {
        let n = next.fetch_add(1, Ordering::Relaxed) as usize;
        users[n % users.len()].clone()
    };
    c.bench_function(&format!("{name}/issue"), |b| {
        b.to_async(rt).iter(|| async {
            tokens
                .issue(&user(), &purpose, Binding::none(), None)
                .await
                .expect("issue")
        })
    });
    // Each consume spends a fresh token, issued untimed before the timed batch.
    c.bench_function(&format!("{name}/consume"), |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let mut spent = Duration::ZERO;
                let mut left = iters;
                while left > 0 {
                    let chunk = left.min(256);
                    let mut batch = Vec::with_capacity(chunk as usize);
                    for _ in 0..chunk {
                        // One user per token here: the cap of 3 would retire the others.
                        let issued = tokens
                            .issue(&user(), &purpose, Binding::none(), None)
                            .await
                            .expect("issue");
                        batch.push(issued.token.expose_secret().to_owned());
                    }
                    let started = std::time::Instant::now();
                    for token in &batch {
                        tokens
                            .consume(token, &purpose, &Binding::none())
                            .await
                            .expect("consume");
                    }
                    spent += started.elapsed();
                    left -= chunk;
                }
                spent
            })
        })
    });
    rt.block_on(async {
        for user in &users {
            tokens.retire_all(user, &purpose).await.expect("retire");
        }
    });
}

/// A mailer that drops everything: the forgot-password bench measures the request path.
#[derive(Debug)]
struct Discard;

#[async_trait]
impl Mailer for Discard {
    async fn send(&self, _: &OutgoingMail) -> Result<(), MailError> {
        Ok(())
    }
}

fn one_time(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");

    bench_store(c, &rt, "memory", Arc::new(MemoryOneTimeStore::new()));

    let dir = tempfile::tempdir().expect("temp dir");
    let sqlite = rt.block_on(async {
        let db = keycard::sqlite::Sqlite::open(dir.path().join("bench.db"))
            .await
            .expect("open");
        db.migrate().await.expect("migrate");
        db
    });
    bench_store(c, &rt, "sqlite", Arc::new(sqlite.one_time_store()));
    let sqlite_tokens = sqlite.token_store();
    c.bench_function("sqlite/raw round trip (SELECT 1, same pool)", |b| {
        b.to_async(&rt)
            .iter(|| async { sqlite_tokens.ping().await.expect("ping") })
    });

    let pg_url = env_or(
        "KEYCARD_POSTGRES_URL",
        "postgres://postgres@127.0.0.1:5432/test",
    );
    let pg = rt.block_on(async {
        let db = keycard::postgres::Postgres::connect(&pg_url)
            .await
            .unwrap_or_else(|e| {
                panic!("start PostgreSQL at {pg_url} or set KEYCARD_POSTGRES_URL: {e:?}")
            });
        db.migrate().await.expect("migrate");
        db
    });
    bench_store(c, &rt, "postgres", Arc::new(pg.one_time_store()));
    c.bench_function("postgres/raw round trip (SELECT 1, same pool)", |b| {
        b.to_async(&rt).iter(|| async {
            sqlx::query("SELECT 1")
                .execute(pg.pool())
                .await
                .expect("SELECT 1")
        })
    });

    // A durable write, raw: one single-row INSERT committed on the same pool (what issue and
    // consume each end with), into a scratch table of this run.
    let pg_scratch = format!("keycard_bench_writes_{}", std::process::id());
    rt.block_on(sqlx::raw_sql(&format!("CREATE TABLE {pg_scratch} (n BIGINT)")).execute(pg.pool()))
        .expect("scratch table");
    let pg_insert = format!("INSERT INTO {pg_scratch} (n) VALUES ($1)");
    c.bench_function(
        "postgres/raw durable write (INSERT one row, same pool)",
        |b| {
            b.to_async(&rt).iter(|| async {
                sqlx::query(&pg_insert)
                    .bind(1_i64)
                    .execute(pg.pool())
                    .await
                    .expect("INSERT")
            })
        },
    );
    rt.block_on(sqlx::raw_sql(&format!("DROP TABLE {pg_scratch}")).execute(pg.pool()))
        .expect("drop scratch table");

    let my_url = env_or("KEYCARD_MYSQL_URL", "mysql://root@127.0.0.1:3306/test");
    let my = rt.block_on(async {
        let db = keycard::mysql::Mysql::connect(&my_url)
            .await
            .unwrap_or_else(|e| {
                panic!("start MariaDB at {my_url} or set KEYCARD_MYSQL_URL: {e:?}")
            });
        db.migrate().await.expect("migrate");
        db
    });
    bench_store(c, &rt, "mysql", Arc::new(my.one_time_store()));
    c.bench_function("mysql/raw round trip (SELECT 1, same pool)", |b| {
        b.to_async(&rt)
            .iter(|| async { my.ping().await.expect("ping") })
    });

    let my_scratch = format!("keycard_bench_writes_{}", std::process::id());
    rt.block_on(
        sqlx::raw_sql(&format!(
            "CREATE TABLE `{my_scratch}` (n BIGINT) ENGINE=InnoDB"
        ))
        .execute(my.pool()),
    )
    .expect("scratch table");
    let my_insert = format!("INSERT INTO `{my_scratch}` (n) VALUES (?)");
    c.bench_function("mysql/raw durable write (INSERT one row, same pool)", |b| {
        b.to_async(&rt).iter(|| async {
            sqlx::query(&my_insert)
                .bind(1_i64)
                .execute(my.pool())
                .await
                .expect("INSERT")
        })
    });
    rt.block_on(sqlx::raw_sql(&format!("DROP TABLE `{my_scratch}`")).execute(my.pool()))
        .expect("drop scratch table");

    let redis_url = env_or("KEYCARD_REDIS_URL", "redis://127.0.0.1:6379");
    let redis = rt.block_on(async {
        keycard::redis::Redis::connect(&redis_url)
            .await
            .unwrap_or_else(|e| {
                panic!("start Redis at {redis_url} or set KEYCARD_REDIS_URL: {e:?}")
            })
    });
    bench_store(c, &rt, "redis", Arc::new(redis.one_time_store()));
    c.bench_function("redis/raw round trip (PING, same connection)", |b| {
        b.to_async(&rt).iter(|| async {
            let mut conn = redis.connection();
            let pong: String = redis::cmd("PING")
                .query_async(&mut conn)
                .await
                .expect("PING");
            pong
        })
    });

    // "Forgot password": the request path for a known and an unknown email, interleaved in
    // one run (the lookup, token and mail happen on the background worker). No throttle, so
    // that one client address can repeat the request without meeting its limit.
    let accounts = rt.block_on(async {
        let users = Arc::new(MemoryUserStore::<UserRecord>::new());
        let auth = Authenticator::builder(users.clone(), MemoryTokenStore::new())
            .password_hasher(Argon2Hasher::insecure_for_tests())
            .without_throttle()
            .build();
        let hash = auth.hash_password("correct horse battery staple").await;
        users
            .insert(UserRecord::new(
                1_i64,
                "ann@example.com",
                hash.expect("hash"),
            ))
            .expect("a fresh store");
        Accounts::builder(
            auth,
            OneTimeTokens::new(MemoryOneTimeStore::new()),
            MailQueue::spawn(Discard, DefaultRenderer::new("Bench")),
            Links::new("https://app.example.com").expect("a URL"),
        )
        .build()
    });
    let client = ClientInfo::none().with_ip([192, 0, 2, 7].into());
    let mut group = c.benchmark_group("forgot_password");
    for (name, email) in [
        ("known", "ann@example.com"),
        ("unknown", "nobody@example.com"),
    ] {
        // Timed in chunks of 256 requests, the worker drained between chunks (untimed), so
        // its bounded queue never fills.
        group.bench_function(name, |b| {
            b.iter_custom(|iters| {
                rt.block_on(async {
                    let mut spent = Duration::ZERO;
                    let mut left = iters;
                    while left > 0 {
                        let chunk = left.min(256);
                        let started = std::time::Instant::now();
                        for _ in 0..chunk {
                            accounts
                                .forgot_password(email, &client)
                                .await
                                .expect("accepted");
                        }
                        spent += started.elapsed();
                        left -= chunk;
                        accounts.flush().await;
                    }
                    spent
                })
            })
        });
    }
    group.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4))
}

/// The benchmark group (`criterion_group!` generates an undocumented `pub fn`, hence the module).
mod groups {
    #![allow(missing_docs)]
    criterion::criterion_group! {
        name = benches;
        config = super::config();
        targets = super::one_time
    }
}
criterion_main!(groups::benches);
