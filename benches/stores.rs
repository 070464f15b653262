//! The validate path of every token store (`get` by session id) beside a raw round trip of the
//! same client, measured in one run: memory, SQLite (pooled rusqlite on blocking threads; plus
//! rusqlite called directly), PostgreSQL (sqlx; plus a pool with sqlx's default ping on
//! checkout), MySQL / MariaDB (sqlx) and Redis (`HMGET` vs `PING` on one multiplexed
//! connection).
//!
//! `cargo bench --bench stores --features sqlite,postgres,redis,mysql`. Needs the servers of
//! the live tests (`KEYCARD_POSTGRES_URL`, default `postgres://postgres@127.0.0.1:5432/test`;
//! `KEYCARD_MYSQL_URL`, default `mysql://root@127.0.0.1:3306/test`; `KEYCARD_REDIS_URL`,
//! default `redis://127.0.0.1:6379`); uses a fresh schema, table and key prefix and removes
//! them at the end. Figures are in BENCHMARKS.md.

use std::sync::Arc;
use std::time::Duration;

use criterion::{criterion_main, Criterion};
use keycard::postgres::PostgresTokenStore;
use keycard::redis::RedisTokenStore;
use keycard::sqlite::SqliteTokenStore;
use keycard::{
    Authenticator, ClientInfo, MemoryTokenStore, MemoryUserStore, Session, SessionId, Token,
    TokenStore, UserId, UserRecord,
};
use time::OffsetDateTime;

fn env_or(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_owned())
}

fn session() -> Session {
    let token = Token::generate().expect("os rng");
    Session::new(
        &token,
        UserId::from("bench"),
        OffsetDateTime::now_utc(),
        Duration::from_secs(24 * 3600),
        ClientInfo::none().with_user_agent("criterion"),
    )
}

/// Benchmarks `get` of one stored session on `store` under `name/get`, and the whole
/// `Authenticator::validate_session` (parse the token, one `get`, SHA-256 and a constant-time
/// compare) under `name/validate_session`.
fn bench_get(
    c: &mut Criterion,
    rt: &tokio::runtime::Runtime,
    name: &str,
    store: Arc<dyn TokenStore>,
) -> SessionId {
    let token = Token::generate().expect("os rng");
    let now = OffsetDateTime::now_utc();
    let held = Session::new(
        &token,
        UserId::from("bench"),
        now,
        Duration::from_secs(24 * 3600),
        ClientInfo::none(),
    );
    rt.block_on(store.create(&held)).expect("create");
    let auth =
        Authenticator::builder(MemoryUserStore::<UserRecord>::new(), Arc::clone(&store)).build();
    let secret = token.expose_secret().to_owned();
    c.bench_function(&format!("{name}/validate_session"), |b| {
        b.to_async(rt)
            .iter(|| async { auth.validate_session(&secret).await.expect("valid") })
    });

    let s = session();
    rt.block_on(store.create(&s)).expect("create");
    let now = OffsetDateTime::now_utc();
    c.bench_function(&format!("{name}/get"), |b| {
        b.to_async(rt).iter(|| async {
            store
                .get(&s.id, now)
                .await
                .expect("get")
                .expect("session exists")
        })
    });
    s.id
}

fn stores(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");

    // Memory: no I/O at all, the floor.
    bench_get(c, &rt, "memory", Arc::new(MemoryTokenStore::new()));

    // SQLite: the store's get and a `SELECT 1` through the same pool (both pay the hop to a
    // blocking thread), and rusqlite's own lookup on the calling thread for reference.
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("bench.db");
    let sqlite = rt.block_on(async {
        let store = SqliteTokenStore::open(&path).await.expect("open");
        store.migrate().await.expect("migrate");
        store
    });
    bench_get(c, &rt, "sqlite", Arc::new(sqlite.clone()));
    c.bench_function("sqlite/ping (SELECT 1, same pool)", |b| {
        b.to_async(&rt)
            .iter(|| async { sqlite.ping().await.expect("ping") })
    });
    {
        let s = session();
        rt.block_on(sqlite.create(&s)).expect("create");
        let conn = rusqlite::Connection::open(&path).expect("open");
        let id = s.id.to_string();
        let now = s.created_at.unix_timestamp_nanos() / 1000;
        let now = i64::try_from(now).expect("fits");
        c.bench_function(
            "sqlite/rusqlite direct lookup (same query, calling thread)",
            |b| {
                b.iter(|| {
                    conn.prepare_cached(
                    "SELECT id, user_id, secret_hash, created_at, expires_at, last_seen_at, ip, \
                     user_agent, amr FROM keycard_sessions WHERE id = ?1 AND expires_at > ?2",
                )
                .and_then(|mut st| {
                    st.query_row(rusqlite::params![id, now], |r| r.get::<_, Vec<u8>>(2))
                })
                .expect("row")
                })
            },
        );
    }

    // PostgreSQL: the store on its tuned pool, `SELECT 1` on that pool, and the store on a
    // pool with sqlx's defaults (a ping before every checkout).
    let pg_url = env_or(
        "KEYCARD_POSTGRES_URL",
        "postgres://postgres@127.0.0.1:5432/test",
    );
    let schema = format!("keycard_bench_{}", std::process::id());
    let (pg, pg_default) = rt.block_on(async {
        let store = PostgresTokenStore::connect(&pg_url)
            .await
            .unwrap_or_else(|e| {
                panic!("start PostgreSQL at {pg_url} or set KEYCARD_POSTGRES_URL: {e:?}")
            })
            .with_table(&format!("{schema}.sessions"))
            .expect("valid table");
        store.migrate().await.expect("migrate");
        let default_pool = sqlx::postgres::PgPoolOptions::new()
            .max_connections(10)
            .connect(&pg_url)
            .await
            .expect("connect");
        let default = PostgresTokenStore::new(default_pool)
            .with_table(&format!("{schema}.sessions"))
            .expect("valid table");
        (store, default)
    });
    let held = bench_get(c, &rt, "postgres", Arc::new(pg.clone()));
    // The same lookup, raw: the store's own statement on the same pool, rows not decoded.
    let lookup = format!(
        "SELECT id, user_id, secret_hash, created_at, expires_at, last_seen_at, ip, user_agent, \
         amr FROM {schema}.sessions WHERE id = $1 AND expires_at > $2"
    );
    let (held_id, now) = (held.to_string(), OffsetDateTime::now_utc());
    c.bench_function("postgres/raw lookup (same query, same pool)", |b| {
        b.to_async(&rt).iter(|| async {
            sqlx::query(&lookup)
                .bind(&held_id)
                .bind(now)
                .fetch_optional(pg.pool())
                .await
                .expect("query")
                .expect("the row")
        })
    });
    c.bench_function("postgres/ping (SELECT 1, same pool)", |b| {
        b.to_async(&rt)
            .iter(|| async { pg.ping().await.expect("ping") })
    });
    bench_get(
        c,
        &rt,
        "postgres (sqlx default pool: test_before_acquire)",
        Arc::new(pg_default),
    );

    // MySQL / MariaDB: the store on the handle's tuned pool, the same lookup raw, and
    // `SELECT 1`, all on that pool.
    let my_url = env_or("KEYCARD_MYSQL_URL", "mysql://root@127.0.0.1:3306/test");
    let my_table = format!("keycard_bench_sessions_{}", std::process::id());
    let my = rt.block_on(async {
        let mysql = keycard::mysql::Mysql::connect(&my_url)
            .await
            .unwrap_or_else(|e| {
                panic!("start MariaDB at {my_url} or set KEYCARD_MYSQL_URL: {e:?}")
            });
        let store = mysql
            .token_store()
            .with_table(&my_table)
            .expect("valid table");
        store.migrate().await.expect("migrate");
        (mysql, store)
    });
    let held = bench_get(c, &rt, "mysql", Arc::new(my.1.clone()));
    // The same lookup, raw: the store's own statement on the same pool, rows not decoded.
    let my_lookup = format!(
        "SELECT id, user_id, secret_hash, created_at, expires_at, last_seen_at, ip, user_agent, \
         amr FROM `{my_table}` WHERE id = ? AND expires_at > ?"
    );
    let (held_id, now_micros) = (
        held.to_string(),
        OffsetDateTime::now_utc().unix_timestamp() * 1_000_000,
    );
    c.bench_function("mysql/raw lookup (same query, same pool)", |b| {
        b.to_async(&rt).iter(|| async {
            sqlx::query(&my_lookup)
                .bind(&held_id)
                .bind(now_micros)
                .fetch_optional(my.0.pool())
                .await
                .expect("query")
                .expect("the row")
        })
    });
    c.bench_function("mysql/ping (SELECT 1, same pool)", |b| {
        b.to_async(&rt)
            .iter(|| async { my.0.ping().await.expect("ping") })
    });

    // Redis: HMGET vs PING on the same multiplexed connection.
    let redis_url = env_or("KEYCARD_REDIS_URL", "redis://127.0.0.1:6379");
    let prefix = format!("keycard-bench-{}:", std::process::id());
    let redis = rt.block_on(async {
        RedisTokenStore::connect(&redis_url)
            .await
            .unwrap_or_else(|e| {
                panic!("start Redis at {redis_url} or set KEYCARD_REDIS_URL: {e:?}")
            })
            .with_key_prefix(prefix.clone())
    });
    let held = bench_get(c, &rt, "redis", Arc::new(redis.clone()));
    // The same lookup, raw: the store's HMGET of the session's fields on the same
    // connection, not decoded.
    let key = format!("{prefix}session:{held}");
    c.bench_function("redis/raw lookup (HMGET, same connection)", |b| {
        b.to_async(&rt).iter(|| async {
            let mut conn = redis.connection();
            let values: Vec<Option<Vec<u8>>> = redis::cmd("HMGET")
                .arg(&key)
                .arg(&RedisTokenStore::LOOKUP_FIELDS[..])
                .query_async(&mut conn)
                .await
                .expect("HMGET");
            assert!(values.iter().any(Option::is_some));
            values
        })
    });
    c.bench_function("redis/ping (PING, same connection)", |b| {
        b.to_async(&rt)
            .iter(|| async { redis.ping().await.expect("ping") })
    });

    // Cleanup.
    rt.block_on(async {
        sqlx::raw_sql(&format!("DROP TABLE IF EXISTS `{my_table}`"))
            .execute(my.0.pool())
            .await
            .expect("drop bench table");
        sqlx::query("DELETE FROM keycard_migrations WHERE target = ?")
            .bind(&my_table)
            .execute(my.0.pool())
            .await
            .expect("forget bench migrations");
        sqlx::raw_sql(&format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"))
            .execute(pg.pool())
            .await
            .expect("drop bench schema");
        redis
            .delete_for_user(&UserId::from("bench"))
            .await
            .expect("delete bench sessions");
        redis
            .purge_expired(OffsetDateTime::now_utc() + Duration::from_secs(365 * 24 * 3600))
            .await
            .expect("clear the expiry index");
    });
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
        targets = super::stores
    }
}
criterion_main!(groups::benches);
