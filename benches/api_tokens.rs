//! What validating an API token with a scope check costs beside a session validate, on the
//! memory store, PostgreSQL and Redis; on the servers also beside a raw lookup of the same row
//! (the store's own query on the same pool, rows not decoded; the store's `HMGET` of the
//! session's fields on the same connection).
//!
//! Cases per backend: `session` is `Authenticator::validate_session` of a login's token;
//! `api_token` is `validate_session` of an API token (its prefix and checksum checked) plus
//! `require_scope`; `raw` (servers only) is the bare query. Criterion measures each; then the
//! same cases run again interleaved (rounds in rotating order, median of the rounds), which
//! holds up better than back-to-back figures when other work shares the machine, and the
//! bench prints those medians and the ratios the issue names, each the median of the rounds'
//! own ratios: `api_token / session` (target ≤ 1.05 on memory) and `api_token / raw` (target
//! ≤ 1.1 on PostgreSQL and Redis). On the memory store it then times the API token's own
//! steps alone (the prefix and checksum, the grant's shared count, the scope check) and
//! prints each as a share of the session validate: together they are the floor of
//! `api_token / session` there. The memory store also validates a session whose tokens
//! carry a prefix and checksum as API tokens do (`session_prefixed`): `api_token /
//! session_prefixed` is what an API token costs beyond the checksum.
//!
//! `cargo bench --bench api_tokens --features postgres,redis`. Needs the servers of the live
//! tests (`KEYCARD_POSTGRES_URL`, default `postgres://postgres@127.0.0.1:5432/test`;
//! `KEYCARD_REDIS_URL`, default `redis://127.0.0.1:6379`); uses a fresh schema and key prefix
//! and removes them at the end. Figures are in BENCHMARKS.md.

use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{criterion_main, Criterion};
use keycard::api_tokens::{ApiTokens, NewApiToken};
use keycard::postgres::PostgresTokenStore;
use keycard::redis::RedisTokenStore;
use keycard::{
    Argon2Hasher, Authenticator, ClientInfo, MemoryTokenStore, MemoryUserStore, TokenFormat,
    TokenStore, UserRecord,
};
use time::OffsetDateTime;

type Auth = Authenticator<MemoryUserStore<UserRecord>>;

const EMAIL: &str = "bench@example.com";
const PASSWORD: &str = "correct horse battery staple";

fn env_or(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_owned())
}

/// An authenticator over `store` with one user, a login's token (in `sessions`' format) and
/// an API token.
fn rig(
    rt: &tokio::runtime::Runtime,
    store: Arc<dyn TokenStore>,
    sessions: TokenFormat,
) -> (Auth, String, String) {
    rt.block_on(async {
        let auth = Authenticator::builder(MemoryUserStore::new(), store)
            .password_hasher(Argon2Hasher::insecure_for_tests())
            .token_format(sessions)
            .api_tokens(ApiTokens::new(["notes:read", "notes:write"]).expect("scopes"))
            .build();
        let hash = auth.hash_password(PASSWORD).await.expect("hash");
        auth.users()
            .insert(UserRecord::new(1_i64, EMAIL, hash))
            .expect("user");
        let login = auth
            .login(EMAIL, PASSWORD, ClientInfo::none())
            .await
            .expect("login");
        let created = auth
            .create_api_token(
                &login.session,
                NewApiToken::new("bench", ["notes:read", "notes:write"]),
            )
            .await
            .expect("create_api_token");
        let session = login.token.expose_secret().to_owned();
        let api = created.token.expose_secret().to_owned();
        // Both checked before they are timed.
        auth.validate_session(&session).await.expect("session");
        let s = auth.validate_session(&api).await.expect("api token");
        auth.require_scope(&s, "notes:write").expect("scope");
        (auth, session, api)
    })
}

async fn validate_session(auth: &Auth, token: &str) {
    std::hint::black_box(auth.validate_session(token).await.expect("valid"));
}

async fn validate_api_token(auth: &Auth, token: &str) {
    let session = auth.validate_session(token).await.expect("valid");
    auth.require_scope(&session, "notes:write").expect("scope");
    std::hint::black_box(session);
}

/// One boxed case of the interleaved run.
type Case<'a> = (
    &'a str,
    Box<dyn Fn() -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + 'a>> + 'a>,
);

/// Runs `cases` interleaved: `rounds` rounds, each timing `per_round` calls of every case in
/// a rotating order; returns each case's time per call in every round.
fn interleaved(
    rt: &tokio::runtime::Runtime,
    cases: &[Case<'_>],
    rounds: usize,
    per_round: usize,
) -> Vec<(String, Vec<Duration>)> {
    let samples = rotate(cases.len(), rounds, |i| {
        let run = &cases[i].1;
        let start = Instant::now();
        rt.block_on(async {
            for _ in 0..per_round {
                run().await;
            }
        });
        start.elapsed() / per_round as u32
    });
    cases
        .iter()
        .zip(samples)
        .map(|((name, _), s)| ((*name).to_owned(), s))
        .collect()
}

/// `rounds` rounds over `cases` cases in a rotating order: `time(i)` times case `i` once;
/// returns each case's times, a round each.
fn rotate(
    cases: usize,
    rounds: usize,
    mut time: impl FnMut(usize) -> Duration,
) -> Vec<Vec<Duration>> {
    let mut samples: Vec<Vec<Duration>> = vec![Vec::new(); cases];
    for round in 0..rounds {
        for k in 0..cases {
            let i = (round + k) % cases;
            samples[i].push(time(i));
        }
    }
    samples
}

/// The median of `times`, in nanoseconds.
fn median_ns(times: &[Duration]) -> f64 {
    median(times.iter().map(|d| d.as_secs_f64() * 1e9).collect())
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// Prints each case's median time per call and the ratios the issue names, each the median
/// of the rounds' own ratios: the two cases of one round ran seconds apart, so a machine that
/// speeds up or slows down between rounds moves both alike.
fn report(backend: &str, rounds: &[(String, Vec<Duration>)]) {
    let get = |name: &str| {
        rounds
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, d)| d.as_slice())
    };
    let ratio = |a: &[Duration], b: &[Duration]| {
        median(
            a.iter()
                .zip(b)
                .map(|(a, b)| a.as_secs_f64() / b.as_secs_f64())
                .collect(),
        )
    };
    let cells: Vec<String> = rounds
        .iter()
        .map(|(n, d)| {
            let us = median_ns(d) / 1e3;
            format!("{n} {us:.3} µs")
        })
        .collect();
    let mut line = format!("{backend} interleaved medians: {}", cells.join(", "));
    for base in ["session", "session_prefixed", "raw"] {
        if let (Some(api), Some(other)) = (get("api_token"), get(base)) {
            line.push_str(&format!("; api_token/{base} {:.3}", ratio(api, other)));
        }
    }
    println!("{line}");
}

/// What the API token's own steps cost, beside the session validate of the same run: the
/// floor of `api_token / session` on the memory store.
/// - the prefix and checksum: a prefixed session's validate less a plain one's, the median
///   of the interleaved rounds' own differences (a found token's CRC is not computed, so
///   this is the prefix's parse and the longer digest input);
/// - the grant's shared count: a clone and drop of the API token's `SessionKind`;
/// - the scope check: `require_scope` of a validated API token.
///
/// The last two are the median of 41 interleaved rounds of 200,000 calls each, as is, in
/// the same rounds, the digest a store keeps (`Token::secret_hash`) of the API token and of
/// its body parsed as a plain token: the digest is the prefix's largest share.
fn components(
    rt: &tokio::runtime::Runtime,
    auth: &Auth,
    api: &str,
    memory: &[(String, Vec<Duration>)],
) {
    use std::hint::black_box;
    let api_session = rt.block_on(auth.validate_session(api)).expect("api token");
    let format = ApiTokens::new(["notes:read"])
        .expect("scopes")
        .token_format();
    let prefixed = format.parse(api).expect("an API token");
    let prefix_len = format.prefix().map_or(0, str::len);
    let plain = TokenFormat::plain()
        .parse(&api[prefix_len..prefix_len + keycard::TOKEN_LEN])
        .expect("its body, a plain token");
    let steps: [&dyn Fn(); 4] = [
        &|| {
            black_box(black_box(&api_session.kind).clone());
        },
        &|| {
            auth.require_scope(black_box(&api_session), black_box("notes:write"))
                .expect("scope");
        },
        &|| {
            black_box(black_box(&plain).secret_hash());
        },
        &|| {
            black_box(black_box(&prefixed).secret_hash());
        },
    ];
    let per_round = 200_000;
    let samples = rotate(steps.len(), 41, |i| {
        let start = Instant::now();
        for _ in 0..per_round {
            steps[i]();
        }
        start.elapsed() / per_round
    });
    let ns: Vec<f64> = samples.iter().map(|s| median_ns(s)).collect();
    let case = |name: &str| {
        memory
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, d)| d.as_slice())
            .expect("a memory case")
    };
    let session_ns = median_ns(case("session"));
    let prefix_ns = median(
        case("session_prefixed")
            .iter()
            .zip(case("session"))
            .map(|(p, s)| (p.as_secs_f64() - s.as_secs_f64()) * 1e9)
            .collect(),
    );
    let share = |extra: f64| format!("{extra:.1} ns = {:.1} %", 100.0 * extra / session_ns);
    println!(
        "memory components (medians; a session validate {session_ns:.0} ns): prefix and \
         checksum {}, grant clone+drop {}, require_scope {}; digest of a plain token \
         {:.1} ns, of a prefixed one {:.1} ns",
        share(prefix_ns),
        share(ns[0]),
        share(ns[1]),
        ns[2],
        ns[3],
    );
}

fn api_tokens(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");

    // Memory.
    let (auth, session, api) = rig(&rt, Arc::new(MemoryTokenStore::new()), TokenFormat::plain());
    // Sessions that carry a prefix and checksum too (`TokenFormat::prefixed`, a prefix as long
    // as the API tokens' `kcpat_`): the same parse as an API token's.
    let (auth_prefixed, session_prefixed, _) = rig(
        &rt,
        Arc::new(MemoryTokenStore::new()),
        TokenFormat::prefixed("kcses_").expect("a valid prefix"),
    );
    c.bench_function("memory/session (validate_session)", |b| {
        b.to_async(&rt).iter(|| validate_session(&auth, &session))
    });
    c.bench_function("memory/api_token (validate_session + require_scope)", |b| {
        b.to_async(&rt).iter(|| validate_api_token(&auth, &api))
    });
    let cases: Vec<Case<'_>> = vec![
        (
            "session",
            Box::new(|| Box::pin(validate_session(&auth, &session))),
        ),
        (
            "api_token",
            Box::new(|| Box::pin(validate_api_token(&auth, &api))),
        ),
        (
            "session_prefixed",
            Box::new(|| Box::pin(validate_session(&auth_prefixed, &session_prefixed))),
        ),
    ];
    let memory = interleaved(&rt, &cases, 41, 20_000);
    report("memory", &memory);
    components(&rt, &auth, &api, &memory);

    // PostgreSQL.
    let pg_url = env_or(
        "KEYCARD_POSTGRES_URL",
        "postgres://postgres@127.0.0.1:5432/test",
    );
    let schema = format!("keycard_bench_pat_{}", std::process::id());
    let table = format!("{schema}.sessions");
    let pg = rt.block_on(async {
        let store = PostgresTokenStore::connect(&pg_url)
            .await
            .unwrap_or_else(|e| {
                panic!("start PostgreSQL at {pg_url} or set KEYCARD_POSTGRES_URL: {e:?}")
            })
            .with_table(&table)
            .expect("valid table");
        store.migrate().await.expect("migrate");
        store
    });
    let (auth, session, api) = rig(&rt, Arc::new(pg.clone()), TokenFormat::plain());
    let api_id = api
        .trim_start_matches("kcpat_")
        .split_once('.')
        .expect("id.secret")
        .0
        .to_owned();
    let lookup = format!("SELECT * FROM {table} WHERE id = $1 AND expires_at > $2");
    let raw_pg = || async {
        std::hint::black_box(
            sqlx::query(&lookup)
                .bind(&api_id)
                .bind(OffsetDateTime::now_utc())
                .fetch_optional(pg.pool())
                .await
                .expect("query")
                .expect("the row"),
        );
    };
    c.bench_function("postgres/session (validate_session)", |b| {
        b.to_async(&rt).iter(|| validate_session(&auth, &session))
    });
    c.bench_function(
        "postgres/api_token (validate_session + require_scope)",
        |b| b.to_async(&rt).iter(|| validate_api_token(&auth, &api)),
    );
    c.bench_function(
        "postgres/raw lookup (SELECT * of the row, same pool)",
        |b| b.to_async(&rt).iter(raw_pg),
    );
    let cases: Vec<Case<'_>> = vec![
        (
            "session",
            Box::new(|| Box::pin(validate_session(&auth, &session))),
        ),
        (
            "api_token",
            Box::new(|| Box::pin(validate_api_token(&auth, &api))),
        ),
        ("raw", Box::new(|| Box::pin(raw_pg()))),
    ];
    report("postgres", &interleaved(&rt, &cases, 21, 500));

    // Redis.
    let redis_url = env_or("KEYCARD_REDIS_URL", "redis://127.0.0.1:6379");
    let prefix = format!("keycard-bench-pat-{}:", std::process::id());
    let redis = rt.block_on(async {
        RedisTokenStore::connect(&redis_url)
            .await
            .unwrap_or_else(|e| {
                panic!("start Redis at {redis_url} or set KEYCARD_REDIS_URL: {e:?}")
            })
            .with_key_prefix(prefix.clone())
    });
    let (auth, session, api) = rig(&rt, Arc::new(redis.clone()), TokenFormat::plain());
    let key = format!(
        "{prefix}session:{}",
        api.trim_start_matches("kcpat_")
            .split_once('.')
            .expect("id.secret")
            .0
    );
    let raw_redis = || async {
        let mut conn = redis.connection();
        let values: Vec<Option<Vec<u8>>> = redis::cmd("HMGET")
            .arg(&key)
            .arg(&RedisTokenStore::LOOKUP_FIELDS[..])
            .query_async(&mut conn)
            .await
            .expect("HMGET");
        assert!(
            values.iter().any(Option::is_some),
            "the token's hash at {key}"
        );
        std::hint::black_box(values);
    };
    c.bench_function("redis/session (validate_session)", |b| {
        b.to_async(&rt).iter(|| validate_session(&auth, &session))
    });
    c.bench_function("redis/api_token (validate_session + require_scope)", |b| {
        b.to_async(&rt).iter(|| validate_api_token(&auth, &api))
    });
    c.bench_function("redis/raw lookup (HMGET, same connection)", |b| {
        b.to_async(&rt).iter(raw_redis)
    });
    let cases: Vec<Case<'_>> = vec![
        (
            "session",
            Box::new(|| Box::pin(validate_session(&auth, &session))),
        ),
        (
            "api_token",
            Box::new(|| Box::pin(validate_api_token(&auth, &api))),
        ),
        ("raw", Box::new(|| Box::pin(raw_redis()))),
    ];
    report("redis", &interleaved(&rt, &cases, 21, 500));

    // Cleanup.
    rt.block_on(async {
        sqlx::raw_sql(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
            .execute(pg.pool())
            .await
            .expect("drop schema");
        let mut conn = redis.connection();
        let keys: Vec<String> = redis::cmd("KEYS")
            .arg(format!("{prefix}*"))
            .query_async(&mut conn)
            .await
            .expect("KEYS");
        for key in keys {
            let _: () = redis::cmd("DEL")
                .arg(key)
                .query_async(&mut conn)
                .await
                .expect("DEL");
        }
    });
}

fn benches() {
    let mut c = Criterion::default()
        .configure_from_args()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    api_tokens(&mut c);
}

criterion_main!(benches);
